//! How the database is opened and observed: options, the hooks the server plugs in
//! (metrics, commit pacing), and the values it reads back (health, watermarks, pruning).

use std::sync::Arc;
use std::time::Duration;

/// Metrics hooks, called from the writer thread. Keep them cheap.
pub trait DbObserver: Send + Sync {
    /// Time taken to check (and record) one request inside its batch.
    fn check_latency(&self, d: Duration);
    /// A batch of `batch_size` requests committed; `commit_time` is the COMMIT (fsync) time.
    fn commit(&self, batch_size: usize, commit_time: Duration);
    /// A request was refused; `reason` is [`crate::Refusal::reason`].
    fn refusal(&self, reason: &'static str);
    /// The writer handled a batch of `requests` sign requests: `busy` is the wall time
    /// from opening its transaction to the end of its commit (fsync included), `cpu` the
    /// writer thread's CPU time over the same span (`None` where the platform cannot
    /// tell). Their sums over the request count give the writer's cost per record.
    fn writer_batch(&self, requests: usize, busy: Duration, cpu: Option<Duration>) {
        let _ = (requests, busy, cpu);
    }
    /// A pruning step committed, deleting these records; `step_time` is its whole
    /// transaction (what a sign request queued behind it waited at most).
    fn pruned(&self, blocks: usize, attestations: usize, step_time: Duration) {
        let _ = (blocks, attestations, step_time);
    }
    /// A background pruning round ended (`ok`: it went through every validator) after
    /// `elapsed`.
    fn prune_round(&self, ok: bool, elapsed: Duration) {
        let _ = (ok, elapsed);
    }
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
    /// PostgreSQL only: accept a server whose `synchronous_commit` is `off` (a commit is
    /// then acknowledged before it is durable: a crash can lose signed records).
    pub allow_async_commit: bool,
    /// PostgreSQL only: the password, when it is not in the URL (from
    /// `slashing.database_password_file` or `KEYGUARD_SLASHING_DATABASE_PASSWORD`).
    pub password: Option<zeroize::Zeroizing<String>>,
    /// SQLite only: how many rows a group of 64 validators keeps in the recent tier of
    /// attestations before the oldest half moves to the per-validator tier (at least 2).
    /// Larger: fewer, bigger moves; smaller: cheaper rare-path scans of the recent tier.
    pub sqlite_recent_rows_per_group: usize,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            max_batch: 1024,
            queue_capacity: 65_536,
            observer: None,
            pacer: None,
            allow_async_commit: false,
            password: None,
            sqlite_recent_rows_per_group: crate::sqlite::DEFAULT_RECENT_ROWS_PER_GROUP,
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
            .field("allow_async_commit", &self.allow_async_commit)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field(
                "sqlite_recent_rows_per_group",
                &self.sqlite_recent_rows_per_group,
            )
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

/// What [`crate::SlashingDb::prune`] or a pruning round deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PruneSummary {
    /// Block records deleted.
    pub blocks_deleted: usize,
    /// Attestation records deleted.
    pub attestations_deleted: usize,
    /// Validators whose attestations could not be pruned without lowering the source
    /// watermark (their history was kept; see [`crate::PruneSettings`]).
    pub validators_skipped: usize,
}

impl PruneSummary {
    /// Adds another step's or round's counts to these.
    pub fn add(&mut self, other: &PruneSummary) {
        self.blocks_deleted += other.blocks_deleted;
        self.attestations_deleted += other.attestations_deleted;
        self.validators_skipped += other.validators_skipped;
    }
}
