//! The BLS signing pool (local keys only): signatures are computed on dedicated threads sized to the cores,
//! never on the async runtime's threads, so HTTP and database work keep flowing.
//!
//! Many validators sign the same root (from Electra on, every attestation of a slot that
//! agrees on the head; also randao reveals, aggregation slots, sync-committee messages).
//! Hash-to-G2 of a root is half the cost of a signature and public, so it is computed once
//! per root and kept in a small bounded cache ([`super::root_cache`]). A root that keeps
//! being signed gets a fixed-base table of its point ([`FixedBaseTable`]), which halves the
//! remaining cost.
//!
//! The pool also paces the slashing database's group commit ([`SigningPool::pacer`]): while
//! signatures are queued, a commit may wait for more records without delaying anyone.
//!
//! Waiting signatures are served like the signing queue's waiting requests: duties before
//! background work, and within a class one client at a time in turn. The signing queue
//! admits up to `queue.concurrency` requests at once, so without turns here one client's
//! hundreds of admitted duties would all be signed before another client's one.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use super::queue::{ClassTurns, ClientKey, FairQueue, Priority};
pub use super::root_cache::SignerId;
use super::root_cache::{Prepared, RootCache, ROOT_CACHE_CAPACITY, TABLE_CAPACITY};
use crate::bls::{FixedBaseTable, SecretKey, SignatureBytes};
use crate::metrics::{Metrics, SignPath};

/// A fixed pool of signing threads. Idle threads block on the job queue (no spinning), so
/// on a busy core they leave every cycle to the HTTP and database threads.
pub struct SigningPool {
    jobs: Arc<JobQueue>,
    metrics: Arc<OnceLock<Arc<Metrics>>>,
    load: Arc<PoolLoad>,
}

/// One signature to compute, and where to send it.
struct SignJob {
    secret: Arc<SecretKey>,
    signing_root: [u8; 32],
    /// The key, when the request is attestation-like (its root may deserve a table).
    table_signer: Option<SignerId>,
    reply: tokio::sync::oneshot::Sender<SignatureBytes>,
}

/// Whose signature a job is: served in turn with other clients' (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Turn {
    /// The client that asked (as the signing queue counts clients).
    pub client: ClientKey,
    /// Its request's class.
    pub priority: Priority,
}

impl Turn {
    /// A duty of `client`.
    pub fn duty(client: ClientKey) -> Turn {
        Turn {
            client,
            priority: Priority::Duty,
        }
    }
}

/// Jobs waiting for a signing thread, and whether the pool still takes jobs.
struct JobQueue {
    state: Mutex<Jobs>,
    /// Signalled for each job queued, and for all threads when the pool closes.
    ready: Condvar,
}

struct Jobs {
    waiting: FairQueue<SignJob>,
    turns: ClassTurns,
    closed: bool,
}

impl JobQueue {
    fn new() -> Self {
        Self {
            state: Mutex::new(Jobs {
                waiting: FairQueue::new(),
                turns: ClassTurns::default(),
                closed: false,
            }),
            ready: Condvar::new(),
        }
    }

    /// Queues `job` in `turn`'s place; gives it back when the pool is closed.
    fn push(&self, turn: Turn, job: SignJob) -> Result<(), SignJob> {
        let mut state = self.state.lock();
        if state.closed {
            return Err(job);
        }
        state.waiting.push(turn.priority, turn.client, 0, job);
        drop(state);
        self.ready.notify_one();
        Ok(())
    }

    /// The next job by class and client turn, waiting while there is none; `None` once
    /// the pool is closed and every queued job was taken.
    fn next(&self) -> Option<SignJob> {
        let mut state = self.state.lock();
        loop {
            if let Some(job) = state.pop() {
                return Some(job);
            }
            if state.closed {
                return None;
            }
            self.ready.wait(&mut state);
        }
    }

    /// Takes no more jobs; threads finish the queued ones and exit.
    fn close(&self) {
        self.state.lock().closed = true;
        self.ready.notify_all();
    }
}

impl Jobs {
    fn pop(&mut self) -> Option<SignJob> {
        let ready = |p: Priority| self.waiting.len_of(p) > 0;
        let class = self
            .turns
            .choose(ready(Priority::Duty), ready(Priority::Background))?;
        self.turns.taken(class);
        self.waiting.pop(class)
    }
}

/// The signing pool is gone (shutting down).
#[derive(Debug, thiserror::Error)]
#[error("signing pool is shut down")]
pub struct PoolClosed;

/// How busy the pool is: jobs waiting for a thread, and the recent time per signature.
struct PoolLoad {
    threads: usize,
    queued: AtomicUsize,
    /// Moving average of one signature's time, in nanoseconds.
    sign_nanos: AtomicU64,
}

impl PoolLoad {
    /// Time until the threads have worked through the queued jobs (an estimate).
    fn drain_time(&self) -> Duration {
        let queued = self.queued.load(Ordering::Relaxed) as u64;
        let per_job = self.sign_nanos.load(Ordering::Relaxed);
        Duration::from_nanos(queued.saturating_mul(per_job) / self.threads.max(1) as u64)
    }

    /// Folds one signature's time into the moving average (weight 1/8). Threads race on
    /// the update; losing a sample now and then does not matter for an estimate.
    fn record(&self, took: Duration) {
        let sample = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        let old = self.sign_nanos.load(Ordering::Relaxed);
        let new = if old == 0 {
            sample
        } else {
            old - old / 8 + sample / 8
        };
        self.sign_nanos.store(new, Ordering::Relaxed);
    }
}

/// Paces the slashing database's commits by the signing queue: a record committed now
/// would only wait behind the queued signatures, so the commit may wait for more records
/// for half the queue's estimated drain time (at most `max`) without delaying anyone.
struct QueuePacer {
    load: Arc<PoolLoad>,
    max: Duration,
}

impl slashing_db::CommitPacer for QueuePacer {
    fn commit_delay(&self) -> Duration {
        (self.load.drain_time() / 2).min(self.max)
    }
}

impl SigningPool {
    /// A pool with `threads` threads (0 = one per core).
    pub fn new(threads: usize) -> std::io::Result<Self> {
        let threads = match threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let jobs = Arc::new(JobQueue::new());
        let roots = Arc::new(RootCache::new(ROOT_CACHE_CAPACITY, TABLE_CAPACITY));
        let metrics = Arc::new(OnceLock::new());
        let load = Arc::new(PoolLoad {
            threads,
            queued: AtomicUsize::new(0),
            sign_nanos: AtomicU64::new(0),
        });
        for i in 0..threads {
            let worker = Worker {
                queue: Arc::clone(&jobs),
                roots: Arc::clone(&roots),
                metrics: Arc::clone(&metrics),
                load: Arc::clone(&load),
            };
            std::thread::Builder::new()
                .name(format!("keyguard-bls-{i}"))
                .spawn(move || worker.run())?;
        }
        Ok(Self {
            jobs,
            metrics,
            load,
        })
    }

    /// Records each signature's BLS time in `metrics` (set once; later calls are ignored).
    pub fn with_metrics(self, metrics: Arc<Metrics>) -> Self {
        let _ = self.metrics.set(metrics);
        self
    }

    /// A commit pacer for the slashing database that holds a batch open for at most `max`
    /// while signatures are queued (see [`slashing_db::CommitPacer`]).
    pub fn pacer(&self, max: Duration) -> Arc<dyn slashing_db::CommitPacer> {
        Arc::new(QueuePacer {
            load: Arc::clone(&self.load),
            max,
        })
    }

    /// Signs `signing_root` with the local key `secret` on the pool and returns the
    /// compressed signature. `table_signer` is the key's id when the request is of a type
    /// whose roots many keys share (only those roots may earn a fixed-base table). `turn`
    /// places the job among the other waiting jobs (see the module docs).
    pub async fn sign(
        &self,
        secret: Arc<SecretKey>,
        signing_root: [u8; 32],
        table_signer: Option<SignerId>,
        turn: Turn,
    ) -> Result<SignatureBytes, PoolClosed> {
        let (reply, rx) = tokio::sync::oneshot::channel();
        self.load.queued.fetch_add(1, Ordering::Relaxed);
        let job = SignJob {
            secret,
            signing_root,
            table_signer,
            reply,
        };
        if self.jobs.push(turn, job).is_err() {
            self.load.queued.fetch_sub(1, Ordering::Relaxed);
            return Err(PoolClosed);
        }
        rx.await.map_err(|_| PoolClosed)
    }
}

impl Drop for SigningPool {
    /// The threads sign what is queued, then exit.
    fn drop(&mut self) {
        self.jobs.close();
    }
}

/// What one signing thread shares with the others.
struct Worker {
    queue: Arc<JobQueue>,
    roots: Arc<RootCache>,
    metrics: Arc<OnceLock<Arc<Metrics>>>,
    load: Arc<PoolLoad>,
}

impl Worker {
    /// Takes jobs until the pool is dropped.
    fn run(self) {
        // Idle threads sleep on the condition variable: no spinning.
        while let Some(job) = self.queue.next() {
            self.load.queued.fetch_sub(1, Ordering::Relaxed);
            let started = Instant::now();
            let (signature, path, table_build) =
                self.sign(&job.secret, &job.signing_root, job.table_signer);
            drop(job.secret);
            let took = started.elapsed();
            // A table build is a one-off: it must not inflate the per-signature estimate
            // that paces the database's commits.
            self.load.record(took.saturating_sub(table_build));
            if let Some(m) = self.metrics.get() {
                m.observe_bls_sign(path, took);
            }
            let _ = job.reply.send(signature);
        }
    }

    /// The signature, by the cheapest way the root cache allows, which way that was, and
    /// the time spent building the root's table (zero unless this call built it).
    fn sign(
        &self,
        key: &SecretKey,
        root: &[u8; 32],
        table_signer: Option<SignerId>,
    ) -> (SignatureBytes, SignPath, Duration) {
        let no_build = Duration::ZERO;
        match self.roots.prepare(root, table_signer) {
            Prepared::Table(table) => (key.sign_with_table(&table), SignPath::FixedBase, no_build),
            Prepared::Hashed(hashed) => (key.sign_hashed(&hashed), SignPath::CachedRoot, no_build),
            Prepared::NewRoot(hashed) => (key.sign_hashed(&hashed), SignPath::NewRoot, no_build),
            Prepared::BuildTable(hashed) => {
                let started = Instant::now();
                let table = Arc::new(FixedBaseTable::new(hashed.point()));
                self.roots.install_table(root, Arc::clone(&table));
                let built = started.elapsed();
                (key.sign_with_table(&table), SignPath::FixedBase, built)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::queue::DUTY_TURNS;
    use super::*;
    use zeroize::Zeroizing;

    fn secret(n: u8) -> Arc<SecretKey> {
        let mut b = [0u8; 32];
        b[31] = n;
        Arc::new(SecretKey::from_bytes(&Zeroizing::new(b)).unwrap())
    }

    #[test]
    fn pacer_waits_half_the_queue_drain_time_up_to_its_maximum() {
        let pool = SigningPool::new(2).unwrap();
        let pacer = pool.pacer(Duration::from_millis(3));
        assert_eq!(pacer.commit_delay(), Duration::ZERO, "nothing queued");
        pool.load.sign_nanos.store(400_000, Ordering::Relaxed);
        pool.load.queued.store(10, Ordering::Relaxed);
        // 10 jobs x 400 us on 2 threads = 2 ms to drain; wait half of it.
        assert_eq!(pacer.commit_delay(), Duration::from_millis(1));
        pool.load.queued.store(1000, Ordering::Relaxed);
        assert_eq!(pacer.commit_delay(), Duration::from_millis(3), "capped");
        pool.load.queued.store(0, Ordering::Relaxed);
    }

    #[test]
    fn load_average_follows_the_samples() {
        let pool = SigningPool::new(1).unwrap();
        pool.load.record(Duration::from_micros(400));
        assert_eq!(pool.load.sign_nanos.load(Ordering::Relaxed), 400_000);
        for _ in 0..100 {
            pool.load.record(Duration::from_micros(100));
        }
        let avg = pool.load.sign_nanos.load(Ordering::Relaxed);
        assert!((100_000..101_000).contains(&avg), "{avg}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_requests_each_get_their_own_signature() {
        let pool = Arc::new(SigningPool::new(3).unwrap());
        let tasks: Vec<_> = (1..=120u8)
            .map(|n| {
                let pool = Arc::clone(&pool);
                tokio::spawn(async move {
                    let key = secret(n);
                    // Half the requests share a root (more distinct keys than
                    // TABLE_MIN_SIGNERS, so the later ones use its table), half have
                    // their own.
                    let root = if n % 2 == 0 { [9u8; 32] } else { [n; 32] };
                    let mut pk = [0u8; 48];
                    pk[1] = n;
                    let id = Some(SignerId::of(&pk));
                    let turn = Turn::duty(ClientKey::Identified(format!("vc{}", n % 3)));
                    let sig = pool.sign(Arc::clone(&key), root, id, turn).await.unwrap();
                    assert_eq!(sig, key.sign(&root), "key {n}");
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
    }

    #[tokio::test]
    async fn pool_signature_equals_direct_signature() {
        let pool = SigningPool::new(2).unwrap();
        let key = secret(5);
        for root in [[1u8; 32], [2u8; 32], [1u8; 32]] {
            let turn = Turn::duty(ClientKey::Unknown);
            let sig = pool.sign(Arc::clone(&key), root, None, turn).await.unwrap();
            assert_eq!(sig, key.sign(&root));
        }
    }

    /// A job whose root's first byte is `marker`, and the receiver of its signature.
    fn job(marker: u8) -> (SignJob, tokio::sync::oneshot::Receiver<SignatureBytes>) {
        let (reply, rx) = tokio::sync::oneshot::channel();
        let job = SignJob {
            secret: secret(1),
            signing_root: [marker; 32],
            table_signer: None,
            reply,
        };
        (job, rx)
    }

    fn turn(client: &str, priority: Priority) -> Turn {
        Turn {
            client: ClientKey::Identified(client.into()),
            priority,
        }
    }

    /// The markers of every queued job, in the order the threads would take them.
    fn drain(queue: &JobQueue) -> Vec<u8> {
        let mut state = queue.state.lock();
        std::iter::from_fn(|| state.pop().map(|j| j.signing_root[0])).collect()
    }

    #[test]
    fn clients_take_turns_and_duties_come_first() {
        let queue = JobQueue::new();
        let mut receivers = Vec::new();
        let mut push = |client: &str, priority: Priority, marker: u8| {
            let (j, rx) = job(marker);
            receivers.push(rx);
            assert!(queue.push(turn(client, priority), j).is_ok());
        };
        // A flooding client's five duties, then another client's one, then background.
        for marker in 1..=5 {
            push("flooder", Priority::Duty, marker);
        }
        push("randao", Priority::Background, 20);
        push("victim", Priority::Duty, 10);
        assert_eq!(drain(&queue), [1, 10, 2, 3, 4, 5, 20]);
    }

    #[test]
    fn background_gets_a_turn_after_the_duty_turns() {
        let queue = JobQueue::new();
        for marker in 0..(DUTY_TURNS as u8 + 4) {
            assert!(queue.push(turn("a", Priority::Duty), job(marker).0).is_ok());
        }
        assert!(queue
            .push(turn("b", Priority::Background), job(200).0)
            .is_ok());
        let order = drain(&queue);
        assert_eq!(order.iter().position(|m| *m == 200), Some(DUTY_TURNS));
        assert_eq!(order.len(), DUTY_TURNS + 5);
    }

    #[test]
    fn a_closed_queue_hands_out_what_it_holds_then_nothing() {
        let queue = JobQueue::new();
        assert!(queue.push(turn("a", Priority::Duty), job(1).0).is_ok());
        queue.close();
        assert!(queue.push(turn("a", Priority::Duty), job(2).0).is_err());
        assert_eq!(queue.next().map(|j| j.signing_root[0]), Some(1));
        assert!(queue.next().is_none(), "closed and empty: the threads exit");
    }

    #[tokio::test]
    async fn a_dropped_pool_signs_its_queued_jobs_first() {
        let pool = SigningPool::new(1).unwrap();
        let key = secret(3);
        let receivers: Vec<_> = (0..20u8)
            .map(|marker| {
                let (j, rx) = job(marker);
                let j = SignJob {
                    secret: Arc::clone(&key),
                    ..j
                };
                pool.load.queued.fetch_add(1, Ordering::Relaxed);
                assert!(pool.jobs.push(Turn::duty(ClientKey::Unknown), j).is_ok());
                rx
            })
            .collect();
        drop(pool);
        for (marker, rx) in (0..20u8).zip(receivers) {
            assert_eq!(rx.await.unwrap(), key.sign(&[marker; 32]), "job {marker}");
        }
    }
}
