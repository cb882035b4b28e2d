//! The audit log: an append-only, SHA-256 hash-chained JSON-lines record of every signing
//! decision and key lifecycle event.
//!
//! Events are queued (bounded, `audit.queue_capacity`) and written by one thread that owns
//! the file (the `writer` module), so signing never waits for the disk. With
//! `on_failure = "refuse"`, a signature is released only after its event holds a place in
//! the queue ([`AuditLog::ready`] reserves it, [`AuditLog::record_signing`] fills it), and
//! nothing is signed while the file cannot be written. [`verify`] checks a log.

mod file;
mod metrics;
mod record;
pub mod verify;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use tokio::sync::mpsc::{self, OwnedPermit, Sender};

pub use crate::config::audit::{AuditConfig, OnFailure};

use crate::consensus::{RequestType, SlashingSubject};
use crate::identity::ClientIdentity;
use crate::keys::PubkeyBytes;
use crate::outcome::Outcome;

pub use file::{AuditError, ChainHead, LogFile, Sink};
pub use metrics::AuditMetrics;
pub use record::{
    Event, EventName, Fields, KeyFields, OpenFields, RecoveredFields, RefusedFields, SignFields,
};

/// How often a failing writer tries again.
const RETRY_INTERVAL: Duration = Duration::from_secs(1);

/// Longest `pubkey` written for a request: the path segment is whatever the client sent.
const MAX_PUBKEY_CHARS: usize = 200;

/// One signing decision, as the sign handler saw it.
#[derive(Debug)]
pub struct SigningDecision<'a> {
    /// Who asked.
    pub client: &'a ClientIdentity,
    /// The key asked for (as sent, when it did not parse).
    pub pubkey: &'a str,
    /// The request type, once parsed.
    pub request_type: Option<RequestType>,
    /// Slot or epochs of a block or attestation.
    pub subject: Option<SlashingSubject>,
    /// The recomputed signing root, once computed.
    pub signing_root: Option<[u8; 32]>,
    /// How it ended.
    pub outcome: Outcome,
    /// Why it was refused (`double_vote`, `out_of_scope`, `type_not_allowed`, ...).
    pub reason: Option<&'static str>,
}

/// The audit log could not take an event and `on_failure = "refuse"`. The reason is for
/// the server log; clients read only the fixed message.
#[derive(Debug, thiserror::Error)]
#[error("audit log cannot be written")]
pub struct AuditUnavailable(pub String);

/// A place held in the queue for one signing decision (see [`AuditLog::ready`]). Empty
/// when the log is disabled, or full in `continue` mode. Dropping it frees the place.
#[derive(Debug, Default)]
pub struct AuditReservation(Option<OwnedPermit<Event>>);

/// Places held in the queue for the lifecycle events of one operation (a keymanager
/// import or delete), taken before it changes anything; see [`AuditLog::reserve_lifecycle`].
/// Dropping it frees the places that were not used. Operations that reserve places must
/// not overlap (the keymanager runs one at a time under its operations lock).
#[must_use = "the places are freed when this is dropped"]
pub struct LifecycleReservation<'a> {
    log: &'a AuditLog,
    count: usize,
}

impl Drop for LifecycleReservation<'_> {
    fn drop(&mut self) {
        if let Some(inner) = &self.log.inner {
            let mut stash = inner.lifecycle.lock();
            let keep = stash.len().saturating_sub(self.count);
            stash.truncate(keep);
        }
    }
}

/// Lifecycle events were lost with `on_failure = "refuse"`: the command must fail.
#[derive(Debug, thiserror::Error)]
#[error("{0} audit lifecycle event(s) could not be written to the audit log")]
pub struct LifecycleLost(pub u64);

/// The audit log's state as `/healthcheck` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditHealth {
    /// Audit is off.
    Disabled,
    /// Events are being written.
    Up,
    /// Writes fail; with `refuse`, nothing is signed until they work again.
    Failing {
        /// What the writer last saw.
        reason: String,
        /// The configured policy.
        on_failure: OnFailure,
    },
}

/// The audit log writer handle.
#[derive(Default)]
pub struct AuditLog {
    inner: Option<Inner>,
}

struct Inner {
    path: PathBuf,
    on_failure: OnFailure,
    /// `None` once closed.
    sender: RwLock<Option<Sender<Event>>>,
    /// Places reserved for lifecycle events ([`AuditLog::reserve_lifecycle`]), used first
    /// by [`AuditLog::record_key_event`].
    lifecycle: Mutex<Vec<OwnedPermit<Event>>>,
    /// The process's name for `log_close` (`keyguard run`, ...).
    by: Mutex<String>,
    shared: Arc<writer::Shared>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.inner {
            None => f.write_str("AuditLog(disabled)"),
            Some(inner) => write!(f, "AuditLog({})", inner.path.display()),
        }
    }
}

impl AuditLog {
    /// A log that records nothing (audit disabled).
    pub fn disabled() -> Self {
        Self::default()
    }

    /// Opens the configured log (or returns a disabled one): takes its lock, continues its
    /// chain (closing a torn last line), writes a `log_open` event naming `by`, and starts
    /// the writer. Metrics are registered on `registry` when given.
    pub fn open(
        config: &AuditConfig,
        data_dir: &Path,
        by: &str,
        registry: Option<&prometheus::Registry>,
    ) -> Result<AuditLog, AuditError> {
        if !config.enabled {
            return Ok(Self::disabled());
        }
        let path = config.resolved_path(data_dir);
        let mut file = LogFile::open(&path)?;
        let (mut head, torn) = file.read_head()?;
        if let Some(torn) = torn {
            head = recover_torn(&mut file, head, &torn).map_err(|source| AuditError::Recover {
                path: path.clone(),
                source,
            })?;
            tracing::warn!(
                path = %path.display(),
                offset = torn.offset,
                "the audit log ended with a partial line (crash?); closed it and recorded a \
                 log_recovered event"
            );
        }
        let metrics = registry.map(AuditMetrics::register).transpose()?;
        let log = Self::start(Box::new(file), head, config, path.clone(), metrics);
        if let Some(inner) = &log.inner {
            *inner.by.lock() = by.to_string();
        }
        log.record(Event::now(EventName::LogOpen, open_fields(by)));
        tracing::info!(path = %path.display(), on_failure = ?config.on_failure, "audit log enabled");
        Ok(log)
    }

    /// Starts a writer over any sink (tests use failing ones).
    pub fn start(
        sink: Box<dyn Sink>,
        head: ChainHead,
        config: &AuditConfig,
        path: PathBuf,
        metrics: Option<AuditMetrics>,
    ) -> AuditLog {
        Self::start_with_retry(sink, head, config, path, metrics, RETRY_INTERVAL)
    }

    fn start_with_retry(
        sink: Box<dyn Sink>,
        head: ChainHead,
        config: &AuditConfig,
        path: PathBuf,
        metrics: Option<AuditMetrics>,
        retry: Duration,
    ) -> AuditLog {
        let (tx, rx) = mpsc::channel(config.queue_capacity.max(1));
        let shared = Arc::new(writer::Shared::new(metrics));
        let thread_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("keyguard-audit".into())
            .spawn(move || writer::run(sink, head, rx, thread_shared, retry));
        let thread = match thread {
            Ok(handle) => Some(handle),
            Err(e) => {
                // Without a writer nothing drains the queue: it fills up and the failure
                // policy applies, exactly as for a full disk.
                tracing::error!(error = %e, "cannot start the audit writer thread");
                None
            }
        };
        AuditLog {
            inner: Some(Inner {
                path,
                on_failure: config.on_failure,
                sender: RwLock::new(Some(tx)),
                lifecycle: Mutex::new(Vec::new()),
                by: Mutex::new(String::new()),
                shared,
                thread: Mutex::new(thread),
            }),
        }
    }

    /// True when events are recorded.
    pub fn is_enabled(&self) -> bool {
        self.inner.is_some()
    }

    /// Called before a signature is released: holds a place in the queue for the
    /// decision. Err means refuse (the log cannot be written, or the queue is full, and
    /// `on_failure = "refuse"`). In `continue` mode this never fails.
    pub fn ready(&self) -> Result<AuditReservation, AuditUnavailable> {
        let Some(inner) = &self.inner else {
            return Ok(AuditReservation(None));
        };
        let refuse = inner.on_failure == OnFailure::Refuse;
        if refuse {
            if let Some(reason) = inner.shared.failure() {
                return Err(AuditUnavailable(reason));
            }
        }
        let sender = inner.sender.read().clone();
        let reserved = sender
            .ok_or_else(|| "the audit log is closed".to_string())
            .and_then(|s| {
                s.try_reserve_owned()
                    .map_err(|_| "the audit queue is full".to_string())
            });
        match reserved {
            Ok(permit) => Ok(AuditReservation(Some(permit))),
            Err(reason) if refuse => Err(AuditUnavailable(reason)),
            // The decision is still offered to the queue when it is recorded.
            Err(_) => Ok(AuditReservation(None)),
        }
    }

    /// Queues a signing decision, into its reserved place when there is one.
    pub fn record_signing(
        &self,
        decision: &SigningDecision<'_>,
        reservation: Option<AuditReservation>,
    ) {
        if self.inner.is_none() {
            return;
        }
        let event = Event::now(EventName::Sign, Fields::Sign(sign_fields(decision)));
        match reservation.and_then(|r| r.0) {
            Some(permit) => self.send_reserved(permit, event),
            None => self.record(event),
        }
    }

    /// Queues an `access_refused` event. Only while the queue is at most half full: a
    /// flood of refused requests must not take the room that signing decisions need
    /// (with `refuse`, a full queue stops signing); refusals beyond that are counted in
    /// `keyguard_audit_failures_total`, never waited for.
    pub fn record_access_refused(&self, fields: RefusedFields) {
        let Some(inner) = &self.inner else {
            return;
        };
        let sender = inner.sender.read().clone();
        let room = sender
            .as_ref()
            .is_some_and(|s| s.capacity() > s.max_capacity() / 2);
        if !room {
            inner.shared.lost(
                1,
                0,
                "the audit queue is half full; access refusals are not queued",
            );
            return;
        }
        self.record(Event::now(
            EventName::AccessRefused,
            Fields::Refused(fields),
        ));
    }

    /// Holds `count` places in the queue for the lifecycle events of one operation, before
    /// it changes anything; [`AuditLog::record_key_event`] uses them first. Err means
    /// refuse the operation (`on_failure = "refuse"` and the log cannot be written, or
    /// has no room); in `continue` mode this never fails and holds what it can.
    pub fn reserve_lifecycle(
        &self,
        count: usize,
    ) -> Result<LifecycleReservation<'_>, AuditUnavailable> {
        let mut held = LifecycleReservation {
            log: self,
            count: 0,
        };
        let Some(inner) = &self.inner else {
            return Ok(held);
        };
        let refuse = inner.on_failure == OnFailure::Refuse;
        if refuse {
            if let Some(reason) = inner.shared.failure() {
                return Err(AuditUnavailable(reason));
            }
        }
        let sender = inner.sender.read().clone();
        for _ in 0..count {
            let permit = sender
                .clone()
                .ok_or_else(|| "the audit log is closed".to_string())
                .and_then(|s| {
                    s.try_reserve_owned()
                        .map_err(|_| "the audit queue is full".to_string())
                });
            match permit {
                Ok(permit) => {
                    inner.lifecycle.lock().push(permit);
                    held.count += 1;
                }
                Err(reason) if refuse => return Err(AuditUnavailable(reason)),
                Err(_) => break,
            }
        }
        Ok(held)
    }

    /// Queues a key lifecycle event (load, import, delete, seal), in a place held by
    /// [`AuditLog::reserve_lifecycle`] when there is one. Outside the async runtime, use
    /// [`AuditLog::record_key_event_waiting`], which cannot lose it to a full queue.
    pub fn record_key_event(&self, event: EventName, pubkey: &PubkeyBytes, detail: &str) {
        let Some(inner) = &self.inner else {
            return;
        };
        let event = key_event(event, pubkey, detail);
        let reserved = inner.lifecycle.lock().pop();
        match reserved {
            Some(permit) => self.send_reserved(permit, event),
            None => self.record(event),
        }
    }

    /// Fills a reserved place.
    fn send_reserved(&self, permit: OwnedPermit<Event>, event: Event) {
        if let Some(inner) = &self.inner {
            inner.shared.accepted(1);
        }
        permit.send(event);
    }

    /// Like [`AuditLog::record_key_event`], but waits for room in the queue instead of
    /// counting the event as lost: for threads outside the async runtime (start-up key
    /// loading, where 100,000 keys can outrun the writer and waiting delays no request).
    /// Must not be called from an async task.
    pub fn record_key_event_waiting(&self, event: EventName, pubkey: &PubkeyBytes, detail: &str) {
        self.record_waiting(key_event(event, pubkey, detail));
    }

    /// Queues `event`, waiting for room (not from an async task).
    fn record_waiting(&self, event: Event) {
        let Some(inner) = &self.inner else {
            return;
        };
        let lifecycle = usize::from(event.name.is_lifecycle());
        let sender = inner.sender.read().clone();
        let accepted = sender.is_some_and(|s| s.blocking_send(event).is_ok());
        if accepted {
            inner.shared.accepted(1);
        } else {
            inner.shared.lost(1, lifecycle, "the audit log is closed");
        }
    }

    /// Waits until every event queued so far is written (synced), for at most `timeout`.
    /// Commands that change keys call it first with `on_failure = "refuse"`, so that a log
    /// that cannot be written stops them before anything changes. Not from an async task.
    pub fn wait_written(&self, timeout: Duration) -> Result<(), AuditUnavailable> {
        let Some(inner) = &self.inner else {
            return Ok(());
        };
        let deadline = std::time::Instant::now() + timeout;
        // A failing writer retries: wait for it until the deadline, then say why.
        while !inner.shared.all_written() {
            if std::time::Instant::now() >= deadline {
                return Err(AuditUnavailable(inner.shared.failure().unwrap_or_else(
                    || format!("not written within {} ms", timeout.as_millis()),
                )));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(())
    }

    /// The state `/healthcheck` reports.
    pub fn health(&self) -> AuditHealth {
        let Some(inner) = &self.inner else {
            return AuditHealth::Disabled;
        };
        match inner.shared.failure() {
            None => AuditHealth::Up,
            Some(reason) => AuditHealth::Failing {
                reason,
                on_failure: inner.on_failure,
            },
        }
    }

    /// Writes a `log_close` event, stops taking events, writes everything queued and
    /// waits for the writer. A writer that keeps failing gives up after a few attempts
    /// (the lost events are counted). Later events are counted as lost. Not from an async
    /// task (it waits for room for `log_close`).
    ///
    /// Err when `on_failure = "refuse"` and a lifecycle event (start, stop, key load,
    /// import, delete, seal, ...) was lost at any time: the caller must fail (exit
    /// non-zero) rather than end as if everything was recorded.
    pub fn close(&self) -> Result<(), LifecycleLost> {
        let Some(inner) = &self.inner else {
            return Ok(());
        };
        let by = inner.by.lock().clone();
        if !by.is_empty() {
            self.record_waiting(Event::now(EventName::LogClose, open_fields(&by)));
        }
        inner.shared.begin_close();
        inner.lifecycle.lock().clear();
        inner.sender.write().take();
        if let Some(thread) = inner.thread.lock().take() {
            if thread.join().is_err() {
                tracing::error!("the audit writer thread panicked");
            }
        }
        let lost = inner.shared.lifecycle_lost();
        if lost > 0 && inner.on_failure == OnFailure::Refuse {
            return Err(LifecycleLost(lost));
        }
        Ok(())
    }

    /// Offers an event to the queue without waiting; counts it as lost if there is no room.
    fn record(&self, event: Event) {
        let Some(inner) = &self.inner else {
            return;
        };
        let lifecycle = usize::from(event.name.is_lifecycle());
        let sender = inner.sender.read().clone();
        let accepted = sender.is_some_and(|s| s.try_send(event).is_ok());
        if accepted {
            inner.shared.accepted(1);
        } else {
            inner
                .shared
                .lost(1, lifecycle, "the audit queue is full or the log is closed");
        }
    }
}

/// A key lifecycle event.
fn key_event(event: EventName, pubkey: &PubkeyBytes, detail: &str) -> Event {
    Event::now(
        event,
        Fields::Key(KeyFields {
            pubkey: crate::keys::pubkey_hex(pubkey),
            detail: detail.to_string(),
        }),
    )
}

/// Closes a torn last line with a newline and a `log_recovered` line that chains to the
/// last complete line, written and synced in one append.
fn recover_torn(
    file: &mut LogFile,
    head: ChainHead,
    torn: &file::TornLine,
) -> std::io::Result<ChainHead> {
    let event = Event::now(
        EventName::LogRecovered,
        Fields::Recovered(RecoveredFields {
            torn_offset: torn.offset,
            torn_bytes: torn.len,
            torn_sha256: hex::encode(torn.sha256),
        }),
    );
    let (lines, next) = writer::chain_batch(std::slice::from_ref(&event), head);
    let mut bytes = Vec::with_capacity(lines.len() + 1);
    bytes.push(b'\n');
    bytes.extend_from_slice(&lines);
    file.append(&bytes)?;
    Ok(next)
}

fn open_fields(by: &str) -> Fields {
    Fields::Open(OpenFields {
        by: by.to_string(),
        version: env!("CARGO_PKG_VERSION"),
        pid: std::process::id(),
    })
}

fn sign_fields(d: &SigningDecision<'_>) -> SignFields {
    let (slot, source_epoch, target_epoch) = match d.subject {
        Some(SlashingSubject::Block { slot }) => (Some(slot), None, None),
        Some(SlashingSubject::Attestation {
            source_epoch,
            target_epoch,
        }) => (None, Some(source_epoch), Some(target_epoch)),
        None => (None, None, None),
    };
    let reason = d
        .reason
        .or(Some(d.outcome.reason()))
        .filter(|r| !r.is_empty());
    SignFields {
        client: d.client.to_string(),
        pubkey: d.pubkey.chars().take(MAX_PUBKEY_CHARS).collect(),
        request_type: d.request_type.map(|t| t.as_str()),
        slot,
        source_epoch,
        target_epoch,
        signing_root: d.signing_root.map(|r| format!("0x{}", hex::encode(r))),
        outcome: d.outcome.as_str(),
        reason,
    }
}

#[cfg(test)]
mod tests;
