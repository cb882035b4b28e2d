//! Durable EIP-3076 slashing protection on SQLite (one process) or PostgreSQL (several
//! processes sharing one database).
//!
//! * One API ([`SlashingDb`]) over backends behind the crate's `Backend`/`Records` traits;
//!   the EIP-3076 rules, the interchange import/export and pruning are written once on top
//!   of them. Where the database is comes from [`DatabaseLocation::parse`]: a
//!   `postgres://` or `postgresql://` URL, otherwise a SQLite file path.
//! * One SQLite file per keyguard, opened in WAL mode with `synchronous=FULL` (read back,
//!   refused otherwise) and `locking_mode=EXCLUSIVE` (a second process, or a second handle
//!   in this process, gets [`DbError::InUse`]). The schema is versioned with
//!   `PRAGMA user_version` and migrated at open. New attestations go to a short recent
//!   tier clustered by groups of 64 consecutive validator ids and then by target (one
//!   epoch's records of a group share a page, so a group commit writes few WAL frames),
//!   and move in bulk to a per-validator tier as they age; per-validator extremes (maxima
//!   and low watermarks) are held in memory.
//! * One writer thread owns the connection. Check-and-record requests are queued (bounded
//!   queue), and the writer drains up to [`OpenOptions::max_batch`] of them into ONE
//!   transaction (group commit): each is checked against the committed state plus the
//!   earlier requests of the same batch, and every request is answered only after the
//!   transaction holding its record has committed (fsync'd). If anything fails, the whole
//!   batch is rolled back and every request of it is answered with [`SignCheckError::Db`]
//!   (fail closed); [`SlashingDb::health`] then reports `Down` until a later commit works.
//! * Interchange (EIP-3076 v5) import validates the whole file (every problem reported
//!   with its JSON path), then MINIFIES, as Lighthouse does: per validator, all recorded
//!   blocks are replaced by one synthetic block at `max(recorded, file)` slot and all
//!   recorded attestations by one synthetic `(max source, max target)` attestation, both
//!   with a null signing root, in ONE transaction. With the low-watermark checks
//!   (`slot <= lowest`, `source < lowest source`, `target <= lowest target`) this refuses
//!   everything at or below what the file or the database knew, so slashable or
//!   contradictory data in a file cannot lead to a slashable signature, and re-importing
//!   is idempotent. This is the test suite's "minimal" strategy (`should_succeed`). The
//!   file is deserialised into per-validator maxima while it is parsed (no value tree, no
//!   list of all records).
//! * Rules (see [`Refusal`]): blocks are refused on a record at the same slot with a
//!   different or null root, or `slot <= lowest recorded slot`; attestations on
//!   `source > target`, a double vote (same target, different or null root), surrounding or
//!   being surrounded, `source < lowest source`, `target <= lowest target`. An exact repeat
//!   (same slot / same source and target, same non-null root) is allowed and records
//!   nothing. A signing root of all zeroes is treated as unknown (null): never a repeat.
//!   One database is bound to one `genesis_validators_root` (the first sign request or
//!   import binds it, in its own transaction). A high watermark (kill switch) refuses
//!   blocks at `slot >= watermark slot` and attestations with source or target
//!   `>= watermark epoch`.
//! * Blocking calls ([`SlashingDb::import_interchange`], exports, admin methods, the
//!   `*_blocking` twins) block the calling thread: from async code use `spawn_blocking`.
//! * Moving data: [`SlashingDb::migrate_into`] copies a whole database row by row into an
//!   empty one (SQLite or PostgreSQL, verified by complete exports);
//!   [`SlashingDb::import_web3signer`] reads a Web3Signer PostgreSQL database read-only and
//!   imports it as an interchange file would be.

// Outside tests a failure is a typed error, never a panic: no unwrap, expect or panic!.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]
#![deny(missing_docs)]

mod checks;
mod error;
mod interchange;
mod location;
mod migrate;
mod options;
mod postgres;
mod prune;
mod records;
mod sqlite;
mod types;
mod web3signer;
mod writer;

use std::path::Path;
use std::sync::mpsc::{self as std_mpsc, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use tokio::sync::oneshot;

pub use error::{DbError, ImportError, ImportProblem, Refusal, SignCheckError};
pub use interchange::{
    ExportFormat, ImportSummary, INTERCHANGE_FORMAT_VERSION, MAX_REPORTED_PROBLEMS,
};
pub use location::{is_postgres_url, DatabaseLocation, PostgresLocation, PostgresTls};
pub use migrate::{MigrateError, MigrateSummary};
pub use options::{CommitPacer, DbObserver, Health, HighWatermark, OpenOptions, PruneSummary};
pub use prune::{PruneSchedule, PruneSettings, Pruner, VALIDATORS_PER_STEP};
use records::{Backend, Records};
pub use types::{
    Approval, Epoch, GenesisValidatorsRoot, SigningRoot, Slot, Subject, ValidatorPubkey,
};
pub use web3signer::{Web3SignerError, Web3SignerImport, WEB3SIGNER_SCHEMA_VERSION};
use writer::{Command, Reply, SignOp, Writer};

/// How often a genesis-root binding that lost a race with another instance is retried.
const BIND_RETRIES: usize = 5;

struct Inner {
    tx: Option<SyncSender<Command>>,
    thread: Option<JoinHandle<()>>,
    health: Arc<Mutex<Health>>,
    /// Where the database is (path or redacted URL), for logs.
    location: String,
    queue_capacity: usize,
    /// The metrics observer, for the pruner (the writer holds its own clone).
    observer: Option<Arc<dyn DbObserver>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Closing the queue stops the writer after it has answered everything queued;
        // joining it closes the connection and releases the lock before we return.
        self.tx.take();
        if let Some(h) = self.thread.take() {
            let _ = h.join();
        }
    }
}

/// Handle to the slashing-protection database (cheap to clone; all clones share one writer
/// thread). The database is closed when the last clone is dropped.
#[derive(Clone)]
pub struct SlashingDb {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for SlashingDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlashingDb")
            .field("location", &self.inner.location)
            .finish()
    }
}

impl SlashingDb {
    /// Opens (creating if needed) the SQLite database at `path`, takes its exclusive lock
    /// and starts the writer thread.
    pub fn open(path: &Path, options: OpenOptions) -> Result<SlashingDb, DbError> {
        let backend = sqlite::SqliteBackend::open(path, options.sqlite_recent_rows_per_group)?;
        Self::start(Box::new(backend), options)
    }

    /// Opens the database at `location` (SQLite file or PostgreSQL URL) and starts the
    /// writer thread. PostgreSQL is connected, checked (`synchronous_commit`, see
    /// [`OpenOptions::allow_async_commit`]) and migrated here, so a database that cannot
    /// be used fails at start-up.
    pub fn open_location(
        location: &DatabaseLocation,
        options: OpenOptions,
    ) -> Result<SlashingDb, DbError> {
        match location {
            DatabaseLocation::Sqlite(path) => Self::open(path, options),
            DatabaseLocation::Postgres(pg) => {
                let (pg, password) = ((**pg).clone(), options.password.clone());
                let allow_async_commit = options.allow_async_commit;
                // The synchronous client blocks on a runtime of its own, which panics on a
                // thread that drives an async runtime (keyguard's main thread): connect on
                // a plain thread. Later use is on the writer thread, a plain thread too.
                let opened = std::thread::scope(|scope| {
                    scope
                        .spawn(move || {
                            postgres::PostgresBackend::open(pg, password, allow_async_commit)
                        })
                        .join()
                });
                let backend = opened.unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
                Self::start(Box::new(backend), options)
            }
        }
    }

    /// Starts the writer thread on an opened backend.
    fn start(backend: Box<dyn Backend>, options: OpenOptions) -> Result<SlashingDb, DbError> {
        let location = backend.describe();
        let health = Arc::new(Mutex::new(Health::Up));
        let writer = Writer {
            backend,
            health: health.clone(),
            observer: options.observer.clone(),
            pacer: options.pacer.clone(),
            max_batch: options.max_batch.max(1),
        };
        let capacity = options.queue_capacity.max(1);
        let (tx, rx) = std_mpsc::sync_channel(capacity);
        let thread = std::thread::Builder::new()
            .name("slashing-db-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| DbError::Sqlite(format!("cannot start writer thread: {e}")))?;
        Ok(SlashingDb {
            inner: Arc::new(Inner {
                tx: Some(tx),
                thread: Some(thread),
                health,
                location,
                queue_capacity: capacity,
                observer: options.observer,
            }),
        })
    }

    /// Where the database is: the SQLite file's path, or the PostgreSQL URL without its
    /// password.
    pub fn location(&self) -> &str {
        &self.inner.location
    }

    fn sender(&self) -> Result<&SyncSender<Command>, DbError> {
        self.inner.tx.as_ref().ok_or(DbError::WriterStopped)
    }

    fn submit_nowait(&self, op: SignOp) -> Result<(), DbError> {
        match self.sender()?.try_send(Command::Sign(op)) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => Err(DbError::QueueFull {
                capacity: self.inner.queue_capacity,
            }),
            Err(TrySendError::Disconnected(_)) => Err(DbError::WriterStopped),
        }
    }

    async fn sign_async(
        &self,
        mk: impl FnOnce(Reply) -> SignOp,
    ) -> Result<Approval, SignCheckError> {
        let (tx, rx) = oneshot::channel();
        self.submit_nowait(mk(Reply::Async(tx)))?;
        rx.await.map_err(|_| DbError::WriterStopped)?
    }

    fn sign_blocking(&self, mk: impl FnOnce(Reply) -> SignOp) -> Result<Approval, SignCheckError> {
        let (tx, rx) = std_mpsc::sync_channel(1);
        self.sender()?
            .send(Command::Sign(mk(Reply::Sync(tx))))
            .map_err(|_| DbError::WriterStopped)?;
        rx.recv().map_err(|_| DbError::WriterStopped)?
    }

    /// Checks a block proposal or attestation and records it. `Ok` means it was durably
    /// recorded ([`Approval::Recorded`]) or is an exact repeat of a recorded one
    /// ([`Approval::Repeat`]): it may be signed. A refusal says why
    /// ([`SignCheckError::Refused`]); a database failure refuses too ([`SignCheckError::Db`]).
    pub async fn check_and_record(
        &self,
        genesis_validators_root: GenesisValidatorsRoot,
        pubkey: ValidatorPubkey,
        subject: Subject,
        signing_root: SigningRoot,
    ) -> Result<Approval, SignCheckError> {
        self.sign_async(|reply| SignOp {
            gvr: genesis_validators_root,
            pubkey,
            root: signing_root,
            subject,
            reply,
        })
        .await
    }

    /// Blocking twin of [`check_and_record`](Self::check_and_record) (waits for queue space
    /// instead of failing when the queue is full).
    pub fn check_and_record_blocking(
        &self,
        genesis_validators_root: GenesisValidatorsRoot,
        pubkey: ValidatorPubkey,
        subject: Subject,
        signing_root: SigningRoot,
    ) -> Result<Approval, SignCheckError> {
        self.sign_blocking(|reply| SignOp {
            gvr: genesis_validators_root,
            pubkey,
            root: signing_root,
            subject,
            reply,
        })
    }

    /// Runs `f` on the writer thread (after the requests queued before it) and waits.
    /// Blocking: from async code, call the admin methods inside `spawn_blocking`.
    fn admin<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Writer) -> T + Send + 'static,
    ) -> Result<T, DbError> {
        let (tx, rx) = std_mpsc::sync_channel(1);
        self.sender()?
            .send(Command::Admin(Box::new(move |w: &mut Writer| {
                let _ = tx.send(f(w));
            })))
            .map_err(|_| DbError::WriterStopped)?;
        rx.recv().map_err(|_| DbError::WriterStopped)
    }

    /// Runs `f` in a transaction on the writer thread; database errors set health DOWN.
    fn in_transaction<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut dyn Records) -> Result<T, DbError> + Send + 'static,
    ) -> Result<T, DbError> {
        self.admin(move |w| w.in_transaction(f, db_reason))?
    }

    /// The genesis validators root this database is bound to, if any.
    pub fn genesis_validators_root(&self) -> Result<Option<[u8; 32]>, DbError> {
        self.in_transaction(|rec| Ok(rec.meta()?.gvr))
    }

    /// Binds the database to `root` if it is unbound; fails with
    /// [`DbError::GenesisValidatorsRootMismatch`] if it is bound to another one.
    ///
    /// Several instances on one fresh PostgreSQL database may bind at the same moment
    /// (at start-up, or on their first requests): the one that loses the race sees a
    /// conflict, which is retried here (the retry reads the root the winner bound: the same
    /// one is success, another one a mismatch), and is not a database failure.
    pub fn bind_genesis_validators_root(&self, root: [u8; 32]) -> Result<(), DbError> {
        let mut attempt = 0;
        loop {
            match self.bind_genesis_validators_root_once(root) {
                Err(e) if e.is_conflict() && attempt < BIND_RETRIES => attempt += 1,
                result => return result,
            }
        }
    }

    fn bind_genesis_validators_root_once(&self, root: [u8; 32]) -> Result<(), DbError> {
        self.admin(move |w| {
            w.in_transaction(
                |rec| match rec.meta()?.gvr {
                    Some(bound) if bound == root => Ok(()),
                    Some(bound) => Err(DbError::GenesisValidatorsRootMismatch {
                        bound,
                        requested: root,
                    }),
                    None => rec.bind_gvr(&root),
                },
                |e| match e {
                    DbError::GenesisValidatorsRootMismatch { .. } | DbError::Conflict(_) => None,
                    e => Some(e.to_string()),
                },
            )
        })?
    }

    /// Imports an EIP-3076 v5 interchange in one transaction (minifying, see the crate
    /// docs). The whole file is validated first; on any error nothing changes.
    /// Blocking (the file is parsed on the calling thread).
    pub fn import_interchange(&self, json: &[u8]) -> Result<ImportSummary, ImportError> {
        let parsed = interchange::parse_interchange(json)?;
        self.admin(move |w| {
            w.in_transaction(
                |rec| interchange::apply_import(rec, &parsed),
                |e| match e {
                    ImportError::Db(d) => Some(d.to_string()),
                    _ => None,
                },
            )
        })?
    }

    /// Exports the records of `pubkeys` (all validators if `None`) as interchange v5 JSON.
    /// Runs on the writer thread: signing waits while a large export is written.
    pub fn export_interchange(
        &self,
        pubkeys: Option<&[[u8; 48]]>,
        format: ExportFormat,
    ) -> Result<Vec<u8>, DbError> {
        let pubkeys: Option<Vec<[u8; 48]>> = pubkeys.map(|p| p.to_vec());
        self.in_transaction(move |rec| interchange::export(rec, pubkeys.as_deref(), format))
    }

    /// True if the database knows `pubkey` (it has signed, been refused or been imported
    /// for it): its export would carry an entry for it. Runs on the writer thread, after
    /// every request queued before it.
    pub fn is_registered(&self, pubkey: [u8; 48]) -> Result<bool, DbError> {
        self.in_transaction(move |rec| Ok(rec.find_validator(&pubkey)?.is_some()))
    }

    /// Sets the given fields of the high watermark (kill switch); a field given as `None`
    /// keeps its current value, so raising the slot never silently lifts an epoch limit
    /// (read and written in one transaction). [`Self::clear_high_watermark`] removes both.
    pub fn set_high_watermark(&self, slot: Option<u64>, epoch: Option<u64>) -> Result<(), DbError> {
        self.in_transaction(move |rec| {
            let current = rec.meta()?;
            rec.set_high_watermark(slot.or(current.hw_slot), epoch.or(current.hw_epoch))
        })
    }

    /// Removes the high watermark (both fields).
    pub fn clear_high_watermark(&self) -> Result<(), DbError> {
        self.in_transaction(|rec| rec.set_high_watermark(None, None))
    }

    /// The high watermark, if one is set.
    pub fn high_watermark(&self) -> Result<Option<HighWatermark>, DbError> {
        self.in_transaction(|rec| {
            let meta = rec.meta()?;
            Ok(match (meta.hw_slot, meta.hw_epoch) {
                (None, None) => None,
                (slot, epoch) => Some(HighWatermark { slot, epoch }),
            })
        })
    }

    /// Deletes, per validator, block records more than `keep_epochs * slots_per_epoch`
    /// slots below its highest recorded slot, and attestation records whose target is more
    /// than `keep_epochs` below its highest recorded target, without ever lowering
    /// protection (see [`PruneSettings`]: the low watermarks rise to the oldest record
    /// kept). Runs in large steps: for a stopped signer (`keyguard slashing prune`).
    pub fn prune(&self, keep_epochs: u64, slots_per_epoch: u64) -> Result<PruneSummary, DbError> {
        self.prune_round(&PruneSettings {
            keep_epochs,
            slots_per_epoch,
            batch_rows: prune::OFFLINE_BATCH_ROWS,
        })
    }

    /// One pruning pass over every validator in steps of at most `settings.batch_rows`
    /// records, each its own short transaction on the writer thread (sign requests are
    /// served between steps). Blocking.
    pub fn prune_round(&self, settings: &PruneSettings) -> Result<PruneSummary, DbError> {
        prune::run_round(self, settings, &|| false)
    }

    /// Starts pruning in the background: a first round after `schedule.first_delay`, then
    /// one every `schedule.interval`, reported to the observer ([`DbObserver::pruned`],
    /// [`DbObserver::prune_round`]). Pruning stops when the returned [`Pruner`] is dropped
    /// or the database is closed.
    pub fn start_pruning(&self, schedule: PruneSchedule) -> Result<Pruner, DbError> {
        prune::spawn(self, schedule)
    }

    /// Current health (`Down` after a failed transaction until one succeeds, or when the
    /// writer thread has stopped).
    pub fn health(&self) -> Health {
        if self.inner.thread.as_ref().is_none_or(|t| t.is_finished()) {
            return Health::Down {
                reason: "slashing database writer has stopped".into(),
            };
        }
        self.inner
            .health
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

fn db_reason(e: &DbError) -> Option<String> {
    Some(e.to_string())
}

#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;
