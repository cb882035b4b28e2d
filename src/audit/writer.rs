//! The writer thread: owns the sink, assigns `seq` and `prev`, writes events in batches
//! and syncs each batch, off the signing path. A failed batch is kept and retried until it
//! is written, so a recovered disk loses nothing that was accepted into the queue.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::mpsc::Receiver;

use super::file::{ChainHead, Sink};
use super::metrics::AuditMetrics;
use super::record::{encode, line_hash, Event};

/// Most events written (and synced) at once.
const MAX_BATCH: usize = 1024;

/// Attempts at a failing write once shutdown has begun, before the batch is given up.
const ATTEMPTS_AT_SHUTDOWN: u32 = 3;

/// State shared by the writer thread and the handles that queue events.
#[derive(Default)]
pub struct Shared {
    /// False from a failed write until the next successful one.
    down: AtomicBool,
    /// Why the last write failed.
    reason: Mutex<Option<String>>,
    /// Set by `close`: the writer stops retrying forever.
    closing: AtomicBool,
    /// A loss was logged since the last successful write (one warning per episode).
    loss_logged: AtomicBool,
    /// Events taken into the queue, and events written: equal when nothing is pending.
    accepted: AtomicU64,
    written: AtomicU64,
    /// Lifecycle events lost (see `EventName::is_lifecycle`).
    lifecycle_lost: AtomicU64,
    /// Metrics, when the log belongs to the server.
    pub metrics: Option<AuditMetrics>,
}

impl Shared {
    /// Shared state with optional metrics.
    pub fn new(metrics: Option<AuditMetrics>) -> Self {
        Self {
            metrics,
            ..Default::default()
        }
    }

    /// Why writes fail, or `None` while they work.
    pub fn failure(&self) -> Option<String> {
        if self.down.load(Ordering::Acquire) {
            Some(
                self.reason
                    .lock()
                    .clone()
                    .unwrap_or_else(|| "write failed".into()),
            )
        } else {
            None
        }
    }

    /// Marks the start of shutdown.
    pub fn begin_close(&self) {
        self.closing.store(true, Ordering::Release);
    }

    /// Counts `n` events that will never be written, `lifecycle` of them lifecycle
    /// events (those are always logged).
    pub fn lost(&self, n: usize, lifecycle: usize, why: &str) {
        if let Some(m) = &self.metrics {
            m.failures.inc_by(n as u64);
        }
        if lifecycle > 0 {
            self.lifecycle_lost
                .fetch_add(lifecycle as u64, Ordering::AcqRel);
            tracing::error!(events = lifecycle, "audit lifecycle events lost: {why}");
        } else if !self.loss_logged.swap(true, Ordering::AcqRel) {
            tracing::error!(events = n, "audit events lost: {why}");
        }
    }

    /// Counts `n` events taken into the queue.
    pub fn accepted(&self, n: usize) {
        self.accepted.fetch_add(n as u64, Ordering::AcqRel);
    }

    /// True when every event taken into the queue so far was written or given up.
    pub fn all_written(&self) -> bool {
        self.written.load(Ordering::Acquire) >= self.accepted.load(Ordering::Acquire)
    }

    /// Lifecycle events lost so far.
    pub fn lifecycle_lost(&self) -> u64 {
        self.lifecycle_lost.load(Ordering::Acquire)
    }

    fn set_down(&self, reason: String) {
        if !self.down.swap(true, Ordering::AcqRel) {
            tracing::error!(%reason, "the audit log cannot be written; retrying");
        }
        *self.reason.lock() = Some(reason);
        if let Some(m) = &self.metrics {
            m.writable.set(0);
        }
    }

    fn set_written(&self, n: usize) {
        self.written.fetch_add(n as u64, Ordering::AcqRel);
        if self.down.swap(false, Ordering::AcqRel) {
            tracing::info!("the audit log is being written again");
        }
        self.loss_logged.store(false, Ordering::Release);
        if let Some(m) = &self.metrics {
            m.writable.set(1);
            m.written.inc_by(n as u64);
        }
    }

    fn set_depth(&self, depth: usize) {
        if let Some(m) = &self.metrics {
            m.queue_depth.set(i64::try_from(depth).unwrap_or(i64::MAX));
        }
    }
}

/// The writer's loop: runs until every sender is gone and the queue is drained.
pub fn run(
    mut sink: Box<dyn Sink>,
    mut head: ChainHead,
    mut rx: Receiver<Event>,
    shared: Arc<Shared>,
    retry: Duration,
) {
    while let Some(first) = rx.blocking_recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(event) => batch.push(event),
                Err(_) => break,
            }
        }
        shared.set_depth(rx.len());
        write_with_retry(sink.as_mut(), &mut head, &batch, &shared, &rx, retry);
        shared.set_depth(rx.len());
    }
}

/// Writes one batch, retrying every `retry` while it fails. Gives up only at shutdown.
fn write_with_retry(
    sink: &mut dyn Sink,
    head: &mut ChainHead,
    batch: &[Event],
    shared: &Shared,
    rx: &Receiver<Event>,
    retry: Duration,
) {
    let (bytes, next) = chain_batch(batch, *head);
    let mut attempts_closing = 0;
    loop {
        match sink.append(&bytes) {
            Ok(()) => {
                *head = next;
                shared.set_written(batch.len());
                return;
            }
            Err(e) => shared.set_down(e.to_string()),
        }
        if shared.closing.load(Ordering::Acquire) {
            attempts_closing += 1;
            if attempts_closing >= ATTEMPTS_AT_SHUTDOWN {
                let lifecycle = batch.iter().filter(|e| e.name.is_lifecycle()).count();
                shared.lost(
                    batch.len(),
                    lifecycle,
                    "the audit log could not be written at shutdown",
                );
                return;
            }
        }
        shared.set_depth(rx.len());
        std::thread::sleep(retry);
    }
}

/// The lines of `batch` chained after `head`, and the head after them.
pub fn chain_batch(batch: &[Event], head: ChainHead) -> (Vec<u8>, ChainHead) {
    let mut bytes = Vec::with_capacity(batch.len() * 256);
    let mut head = head;
    for event in batch {
        // Serializing strings and integers into a Vec cannot fail; if it ever did, the
        // event is skipped loudly rather than written half.
        let line = match encode(event, head.next_seq, &head.prev) {
            Ok(line) => line,
            Err(e) => {
                tracing::error!(event = %event.name, error = %e, "cannot encode audit event");
                continue;
            }
        };
        head = ChainHead {
            next_seq: head.next_seq + 1,
            prev: line_hash(&line),
        };
        bytes.extend_from_slice(&line);
        bytes.push(b'\n');
    }
    (bytes, head)
}
