//! Durable EIP-3076 slashing protection on SQLite.
//!
//! * One SQLite file per keyguard, opened in WAL mode with `synchronous=FULL` (read back,
//!   refused otherwise) and `locking_mode=EXCLUSIVE` (a second process, or a second handle
//!   in this process, gets [`DbError::InUse`]). The schema is versioned with
//!   `PRAGMA user_version` and migrated at open.
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

// Outside tests a failure is a typed error, never a panic: no unwrap, expect or panic!.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]
#![deny(missing_docs)]

mod checks;
mod error;
mod interchange;
mod schema;

use std::path::{Path, PathBuf};
use std::sync::mpsc::{self as std_mpsc, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::{params, Connection, TransactionBehavior};
use tokio::sync::oneshot;

use checks::{Cache, Outcome};
pub use error::{DbError, ImportError, ImportProblem, Refusal, SignCheckError};
pub use interchange::{
    ExportFormat, ImportSummary, INTERCHANGE_FORMAT_VERSION, MAX_REPORTED_PROBLEMS,
};
use schema::{dec, enc};

/// Metrics hooks, called from the writer thread. Keep them cheap.
pub trait DbObserver: Send + Sync {
    /// Time taken to check (and record) one request inside its batch.
    fn check_latency(&self, d: Duration);
    /// A batch of `batch_size` requests committed; `commit_time` is the COMMIT (fsync) time.
    fn commit(&self, batch_size: usize, commit_time: Duration);
    /// A request was refused; `reason` is [`Refusal::reason`].
    fn refusal(&self, reason: &'static str);
}

/// Tells the writer how long it may keep a batch open for more requests before committing
/// it. Every commit costs an fsync (and, in a VM, exits to the hypervisor) on the cores
/// that also sign; when the requests of a batch would only wait in a busy signing queue
/// after their commit anyway, holding the batch open a little costs them no latency and
/// lets many records share one fsync.
pub trait CommitPacer: Send + Sync {
    /// How long the writer may wait for more requests before committing the batch it
    /// holds (zero: commit now). Called once per batch, when the queue is empty.
    fn commit_delay(&self) -> Duration;
}

/// Options for [`SlashingDb::open`].
#[derive(Clone)]
pub struct OpenOptions {
    /// Largest number of check-and-record requests committed in one transaction
    /// (1 = one transaction per request).
    pub max_batch: usize,
    /// Capacity of the request queue. When it is full, requests fail at once with
    /// [`DbError::QueueFull`] (async API) or wait (blocking API).
    pub queue_capacity: usize,
    /// Optional metrics observer.
    pub observer: Option<Arc<dyn DbObserver>>,
    /// Optional commit pacing (none: every batch commits as soon as the queue is empty).
    pub pacer: Option<Arc<dyn CommitPacer>>,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            max_batch: 1024,
            queue_capacity: 65_536,
            observer: None,
            pacer: None,
        }
    }
}

impl std::fmt::Debug for OpenOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenOptions")
            .field("max_batch", &self.max_batch)
            .field("queue_capacity", &self.queue_capacity)
            .field("observer", &self.observer.is_some())
            .field("pacer", &self.pacer.is_some())
            .finish()
    }
}

/// Health of the database, for `/healthcheck`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// The last transaction committed.
    Up,
    /// The last transaction failed; requests are being refused.
    Down {
        /// What failed.
        reason: String,
    },
}

/// The kill switch: nothing at or above these is signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HighWatermark {
    /// Blocks at slot >= this are refused.
    pub slot: Option<u64>,
    /// Attestations with source or target epoch >= this are refused.
    pub epoch: Option<u64>,
}

/// What [`SlashingDb::prune`] deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PruneSummary {
    /// Block records deleted.
    pub blocks_deleted: usize,
    /// Attestation records deleted.
    pub attestations_deleted: usize,
}

// ---------------------------------------------------------------------------------------

enum Reply {
    Async(oneshot::Sender<Result<(), SignCheckError>>),
    Sync(std_mpsc::SyncSender<Result<(), SignCheckError>>),
}

impl Reply {
    fn send(self, r: Result<(), SignCheckError>) {
        // The requester may have gone away; its record (if any) is committed anyway.
        match self {
            Reply::Async(tx) => {
                let _ = tx.send(r);
            }
            Reply::Sync(tx) => {
                let _ = tx.send(r);
            }
        }
    }
}

enum SignKind {
    Block { slot: u64 },
    Attestation { source: u64, target: u64 },
}

struct SignOp {
    gvr: [u8; 32],
    pubkey: [u8; 48],
    root: [u8; 32],
    kind: SignKind,
    reply: Reply,
}

type AdminJob = Box<dyn FnOnce(&mut Writer) + Send>;

enum Command {
    Sign(SignOp),
    Admin(AdminJob),
}

struct Writer {
    conn: Connection,
    cache: Cache,
    /// The cache may disagree with the database (after a failed rollback/reload).
    stale: bool,
    health: Arc<Mutex<Health>>,
    observer: Option<Arc<dyn DbObserver>>,
    pacer: Option<Arc<dyn CommitPacer>>,
    max_batch: usize,
}

impl Writer {
    fn set_health(&self, h: Health) {
        let mut g = self.health.lock().unwrap_or_else(|e| e.into_inner());
        if let Health::Down { reason } = &h {
            tracing::error!(%reason, "slashing database DOWN");
        }
        *g = h;
    }

    fn fail(&mut self, e: &DbError) {
        self.stale = true;
        self.set_health(Health::Down {
            reason: e.to_string(),
        });
    }

    fn ensure_fresh(&mut self) -> Result<(), DbError> {
        if self.stale {
            match Cache::load(&self.conn) {
                Ok(c) => {
                    self.cache = c;
                    self.stale = false;
                }
                Err(e) => {
                    self.fail(&e);
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    fn run(mut self, rx: Receiver<Command>) {
        let mut batch: Vec<SignOp> = Vec::with_capacity(self.max_batch);
        while let Ok(cmd) = rx.recv() {
            let mut admin = None;
            match cmd {
                Command::Sign(op) => batch.push(op),
                Command::Admin(job) => admin = Some(job),
            }
            while admin.is_none() && batch.len() < self.max_batch {
                match rx.try_recv() {
                    Ok(Command::Sign(op)) => batch.push(op),
                    Ok(Command::Admin(job)) => admin = Some(job),
                    Err(_) => break,
                }
            }
            if admin.is_none() && !batch.is_empty() {
                admin = self.hold_batch_open(&rx, &mut batch);
            }
            if !batch.is_empty() {
                self.process_batch(&mut batch);
            }
            if let Some(job) = admin {
                job(&mut self);
            }
        }
        tracing::debug!("slashing database writer stopped");
    }

    /// Keeps the batch open for as long as the pacer allows (see [`CommitPacer`]), then
    /// adds what arrived meanwhile, up to a full batch or an admin job (returned, to run
    /// after the batch commits). The writer sleeps through the wait instead of waking for
    /// each arrival: every wake-up would be a context switch on the signing cores.
    fn hold_batch_open(&self, rx: &Receiver<Command>, batch: &mut Vec<SignOp>) -> Option<AdminJob> {
        let delay = self.pacer.as_ref()?.commit_delay();
        if delay.is_zero() || batch.len() >= self.max_batch {
            return None;
        }
        std::thread::sleep(delay);
        while batch.len() < self.max_batch {
            match rx.try_recv() {
                Ok(Command::Sign(op)) => batch.push(op),
                Ok(Command::Admin(job)) => return Some(job),
                Err(_) => break,
            }
        }
        None
    }

    fn process_batch(&mut self, batch: &mut Vec<SignOp>) {
        if let Err(e) = self.ensure_fresh() {
            for op in batch.drain(..) {
                op.reply.send(Err(SignCheckError::Db(e.clone())));
            }
            return;
        }
        let n = batch.len();
        let result = self.check_batch(batch);
        match result {
            Ok(outcomes) => {
                for (op, outcome) in batch.drain(..).zip(outcomes) {
                    match outcome {
                        Ok(_) => op.reply.send(Ok(())),
                        Err(refusal) => {
                            if let Some(o) = &self.observer {
                                o.refusal(refusal.reason());
                            }
                            op.reply.send(Err(SignCheckError::Refused(refusal)));
                        }
                    }
                }
                if n > 0 {
                    self.set_health_up();
                }
            }
            Err(e) => {
                self.fail(&e);
                for op in batch.drain(..) {
                    op.reply.send(Err(SignCheckError::Db(e.clone())));
                }
            }
        }
    }

    fn set_health_up(&self) {
        let mut g = self.health.lock().unwrap_or_else(|e| e.into_inner());
        if *g != Health::Up {
            tracing::info!("slashing database UP");
            *g = Health::Up;
        }
    }

    /// Checks and records every op in one transaction, then commits. On `Err` the
    /// transaction was rolled back.
    fn check_batch(&mut self, batch: &[SignOp]) -> Result<Vec<Result<Outcome, Refusal>>, DbError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut outcomes = Vec::with_capacity(batch.len());
        for op in batch {
            let t0 = Instant::now();
            let r = match op.kind {
                SignKind::Block { slot } => checks::check_and_record_block(
                    &tx,
                    &mut self.cache,
                    &op.gvr,
                    &op.pubkey,
                    slot,
                    &op.root,
                ),
                SignKind::Attestation { source, target } => checks::check_and_record_attestation(
                    &tx,
                    &mut self.cache,
                    &op.gvr,
                    &op.pubkey,
                    source,
                    target,
                    &op.root,
                ),
            };
            if let Some(o) = &self.observer {
                o.check_latency(t0.elapsed());
            }
            match r {
                Ok(outcome) => outcomes.push(outcome),
                Err(e) => {
                    drop(tx);
                    self.stale = true;
                    return Err(e);
                }
            }
        }
        let t0 = Instant::now();
        if let Err(e) = tx.commit() {
            self.stale = true;
            return Err(e.into());
        }
        if let Some(o) = &self.observer {
            o.commit(batch.len(), t0.elapsed());
        }
        Ok(outcomes)
    }

    /// Runs `f` in its own IMMEDIATE transaction; commits on `Ok`, rolls back on `Err`.
    /// `is_db_error` tells which errors are database failures (they set health DOWN).
    fn in_transaction<T, E: From<DbError>>(
        &mut self,
        f: impl FnOnce(&Connection, &mut Cache) -> Result<T, E>,
        is_db_error: impl Fn(&E) -> Option<String>,
    ) -> Result<T, E> {
        self.ensure_fresh()?;
        let conn = &mut self.conn;
        let cache = &mut self.cache;
        let result = (|| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(DbError::from)?;
            let v = f(&tx, cache)?;
            tx.commit().map_err(DbError::from)?;
            Ok(v)
        })();
        match &result {
            Ok(_) => self.set_health_up(),
            Err(e) => {
                // The cache may hold uncommitted state: reload it before the next use.
                self.stale = true;
                if let Some(reason) = is_db_error(e) {
                    self.set_health(Health::Down { reason });
                }
            }
        }
        result
    }
}

fn db_reason(e: &DbError) -> Option<String> {
    Some(e.to_string())
}

struct Inner {
    tx: Option<SyncSender<Command>>,
    thread: Option<JoinHandle<()>>,
    health: Arc<Mutex<Health>>,
    path: PathBuf,
    queue_capacity: usize,
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
            .field("path", &self.inner.path)
            .finish()
    }
}

impl SlashingDb {
    /// Opens (creating if needed) the database at `path`, takes its exclusive lock and
    /// starts the writer thread.
    pub fn open(path: &Path, options: OpenOptions) -> Result<SlashingDb, DbError> {
        let conn = schema::open_connection(path)?;
        let cache = Cache::load(&conn)?;
        let health = Arc::new(Mutex::new(Health::Up));
        let writer = Writer {
            conn,
            cache,
            stale: false,
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
                path: path.to_path_buf(),
                queue_capacity: capacity,
            }),
        })
    }

    /// Path of the database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
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

    async fn sign_async(&self, mk: impl FnOnce(Reply) -> SignOp) -> Result<(), SignCheckError> {
        let (tx, rx) = oneshot::channel();
        self.submit_nowait(mk(Reply::Async(tx)))?;
        rx.await.map_err(|_| DbError::WriterStopped)?
    }

    fn sign_blocking(&self, mk: impl FnOnce(Reply) -> SignOp) -> Result<(), SignCheckError> {
        let (tx, rx) = std_mpsc::sync_channel(1);
        self.sender()?
            .send(Command::Sign(mk(Reply::Sync(tx))))
            .map_err(|_| DbError::WriterStopped)?;
        rx.recv().map_err(|_| DbError::WriterStopped)?
    }

    /// Checks a block proposal and records it; `Ok(())` means it was durably recorded (or
    /// is an exact repeat of a recorded one) and may be signed.
    pub async fn check_and_record_block(
        &self,
        genesis_validators_root: [u8; 32],
        pubkey: [u8; 48],
        slot: u64,
        signing_root: [u8; 32],
    ) -> Result<(), SignCheckError> {
        self.sign_async(|reply| SignOp {
            gvr: genesis_validators_root,
            pubkey,
            root: signing_root,
            kind: SignKind::Block { slot },
            reply,
        })
        .await
    }

    /// Checks an attestation and records it; `Ok(())` means it was durably recorded (or is
    /// an exact repeat of a recorded one) and may be signed.
    pub async fn check_and_record_attestation(
        &self,
        genesis_validators_root: [u8; 32],
        pubkey: [u8; 48],
        source_epoch: u64,
        target_epoch: u64,
        signing_root: [u8; 32],
    ) -> Result<(), SignCheckError> {
        self.sign_async(|reply| SignOp {
            gvr: genesis_validators_root,
            pubkey,
            root: signing_root,
            kind: SignKind::Attestation {
                source: source_epoch,
                target: target_epoch,
            },
            reply,
        })
        .await
    }

    /// Blocking twin of [`check_and_record_block`](Self::check_and_record_block) (waits for
    /// queue space instead of failing when the queue is full).
    pub fn check_and_record_block_blocking(
        &self,
        genesis_validators_root: [u8; 32],
        pubkey: [u8; 48],
        slot: u64,
        signing_root: [u8; 32],
    ) -> Result<(), SignCheckError> {
        self.sign_blocking(|reply| SignOp {
            gvr: genesis_validators_root,
            pubkey,
            root: signing_root,
            kind: SignKind::Block { slot },
            reply,
        })
    }

    /// Blocking twin of [`check_and_record_attestation`](Self::check_and_record_attestation).
    pub fn check_and_record_attestation_blocking(
        &self,
        genesis_validators_root: [u8; 32],
        pubkey: [u8; 48],
        source_epoch: u64,
        target_epoch: u64,
        signing_root: [u8; 32],
    ) -> Result<(), SignCheckError> {
        self.sign_blocking(|reply| SignOp {
            gvr: genesis_validators_root,
            pubkey,
            root: signing_root,
            kind: SignKind::Attestation {
                source: source_epoch,
                target: target_epoch,
            },
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

    /// The genesis validators root this database is bound to, if any.
    pub fn genesis_validators_root(&self) -> Result<Option<[u8; 32]>, DbError> {
        self.admin(|w| {
            w.ensure_fresh()?;
            Ok(w.cache.gvr)
        })?
    }

    /// Binds the database to `root` if it is unbound; fails with
    /// [`DbError::GenesisValidatorsRootMismatch`] if it is bound to another one.
    pub fn bind_genesis_validators_root(&self, root: [u8; 32]) -> Result<(), DbError> {
        self.admin(move |w| {
            w.in_transaction(
                |conn, cache| match cache.gvr {
                    Some(bound) if bound == root => Ok(()),
                    Some(bound) => Err(DbError::GenesisValidatorsRootMismatch {
                        bound,
                        requested: root,
                    }),
                    None => {
                        checks::bind_gvr(conn, &root)?;
                        cache.gvr = Some(root);
                        Ok(())
                    }
                },
                |e| match e {
                    DbError::GenesisValidatorsRootMismatch { .. } => None,
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
                |conn, cache| interchange::apply_import(conn, cache, &parsed),
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
        self.admin(move |w| {
            w.ensure_fresh()?;
            let tx = w.conn.transaction()?;
            let out = interchange::export(&tx, &w.cache, pubkeys.as_deref(), format);
            drop(tx);
            out
        })?
    }

    /// True if the database knows `pubkey` (it has signed, been refused or been imported
    /// for it): its export would carry an entry for it. Runs on the writer thread, after
    /// every request queued before it.
    pub fn is_registered(&self, pubkey: [u8; 48]) -> Result<bool, DbError> {
        self.admin(move |w| {
            w.ensure_fresh()?;
            Ok(w.cache.validators.contains_key(&pubkey))
        })?
    }

    /// Sets the high watermark (kill switch); `None` leaves that kind unrestricted.
    pub fn set_high_watermark(&self, slot: Option<u64>, epoch: Option<u64>) -> Result<(), DbError> {
        self.admin(move |w| {
            w.in_transaction(
                |conn, cache| {
                    conn.execute(
                        "UPDATE meta SET high_watermark_slot = ?1, high_watermark_epoch = ?2 WHERE id = 0",
                        params![slot.map(enc), epoch.map(enc)],
                    )?;
                    cache.hw_slot = slot;
                    cache.hw_epoch = epoch;
                    Ok::<(), DbError>(())
                },
                db_reason,
            )
        })?
    }

    /// Removes the high watermark.
    pub fn clear_high_watermark(&self) -> Result<(), DbError> {
        self.set_high_watermark(None, None)
    }

    /// The high watermark, if one is set.
    pub fn high_watermark(&self) -> Result<Option<HighWatermark>, DbError> {
        self.admin(|w| {
            w.ensure_fresh()?;
            Ok(match (w.cache.hw_slot, w.cache.hw_epoch) {
                (None, None) => None,
                (slot, epoch) => Some(HighWatermark { slot, epoch }),
            })
        })?
    }

    /// Deletes, per validator, block records more than `keep_epochs * slots_per_epoch`
    /// slots below its highest recorded slot, and attestation records whose target is more
    /// than `keep_epochs` below its highest recorded target (rows holding the highest
    /// source are always kept). The highest records always stay, so the low watermarks
    /// only rise and every check stays safe: no deleted record could make a request that
    /// passes the remaining records slashable.
    pub fn prune(&self, keep_epochs: u64, slots_per_epoch: u64) -> Result<PruneSummary, DbError> {
        self.admin(move |w| {
            w.in_transaction(
                |conn, _cache| prune_in(conn, keep_epochs, slots_per_epoch),
                db_reason,
            )
        })?
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

fn prune_in(
    conn: &Connection,
    keep_epochs: u64,
    slots_per_epoch: u64,
) -> Result<PruneSummary, DbError> {
    let mut summary = PruneSummary::default();
    let keep_slots = keep_epochs.saturating_mul(slots_per_epoch);
    let maxima: Vec<(i64, i64)> = conn
        .prepare("SELECT validator_id, MAX(slot) FROM signed_blocks GROUP BY validator_id")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    for (vid, max_slot) in maxima {
        let cutoff = dec(max_slot).saturating_sub(keep_slots);
        summary.blocks_deleted += conn
            .prepare_cached("DELETE FROM signed_blocks WHERE validator_id = ?1 AND slot < ?2")?
            .execute(params![vid, enc(cutoff)])?;
    }
    let maxima: Vec<(i64, i64, i64)> = conn
        .prepare(
            "SELECT validator_id, MAX(target_epoch), MAX(source_epoch) FROM signed_attestations GROUP BY validator_id",
        )?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<_, _>>()?;
    for (vid, max_target, max_source) in maxima {
        let cutoff = dec(max_target).saturating_sub(keep_epochs);
        summary.attestations_deleted += conn
            .prepare_cached(
                "DELETE FROM signed_attestations WHERE validator_id = ?1 AND target_epoch < ?2 AND source_epoch < ?3",
            )?
            .execute(params![vid, enc(cutoff), max_source])?;
    }
    Ok(summary)
}

#[cfg(test)]
mod tests;
