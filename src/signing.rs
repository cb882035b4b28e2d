//! The BLS signing pool: signatures are computed on dedicated threads sized to the cores,
//! never on the async runtime's threads, so HTTP and database work keep flowing.
//!
//! Many validators sign the same root (from Electra on, every attestation of a slot that
//! agrees on the head; also randao reveals, aggregation slots, sync-committee messages).
//! Hash-to-G2 of a root is half the cost of a signature and public, so it is computed once
//! per root and kept in a small bounded cache.

use std::collections::{HashMap, VecDeque};
use std::sync::mpsc;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use parking_lot::Mutex;

use crate::keys::{HashedRoot, SignatureBytes, ValidatorKey};
use crate::metrics::Metrics;

/// How many distinct signing roots keep their hash-to-G2 point. A slot has at most a few
/// dozen distinct shared roots (committees, subnets), so this covers several slots.
pub const ROOT_CACHE_CAPACITY: usize = 1024;

/// A fixed pool of signing threads. Idle threads block on the job queue (no spinning), so
/// on a busy core they leave every cycle to the HTTP and database threads.
pub struct SigningPool {
    jobs: mpsc::Sender<SignJob>,
    metrics: Arc<OnceLock<Arc<Metrics>>>,
}

/// One signature to compute, and where to send it.
struct SignJob {
    key: Arc<ValidatorKey>,
    signing_root: [u8; 32],
    reply: tokio::sync::oneshot::Sender<SignatureBytes>,
}

/// The signing pool is gone (shutting down).
#[derive(Debug, thiserror::Error)]
#[error("signing pool is shut down")]
pub struct PoolClosed;

impl SigningPool {
    /// A pool with `threads` threads (0 = one per core).
    pub fn new(threads: usize) -> std::io::Result<Self> {
        let threads = match threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let (jobs, queue) = mpsc::channel::<SignJob>();
        let queue = Arc::new(Mutex::new(queue));
        let roots = Arc::new(RootCache::new(ROOT_CACHE_CAPACITY));
        let metrics = Arc::new(OnceLock::new());
        for i in 0..threads {
            let (queue, roots, metrics) =
                (Arc::clone(&queue), Arc::clone(&roots), Arc::clone(&metrics));
            std::thread::Builder::new()
                .name(format!("keyguard-bls-{i}"))
                .spawn(move || sign_jobs(&queue, &roots, &metrics))?;
        }
        Ok(Self { jobs, metrics })
    }

    /// Records each signature's BLS time in `metrics` (set once; later calls are ignored).
    pub fn with_metrics(self, metrics: Arc<Metrics>) -> Self {
        let _ = self.metrics.set(metrics);
        self
    }

    /// Signs `signing_root` with `key` on the pool and returns the compressed signature.
    pub async fn sign(
        &self,
        key: Arc<ValidatorKey>,
        signing_root: [u8; 32],
    ) -> Result<SignatureBytes, PoolClosed> {
        let (reply, rx) = tokio::sync::oneshot::channel();
        self.jobs
            .send(SignJob {
                key,
                signing_root,
                reply,
            })
            .map_err(|_| PoolClosed)?;
        rx.await.map_err(|_| PoolClosed)
    }
}

/// A signing thread: takes jobs until the pool is dropped.
fn sign_jobs(
    queue: &Mutex<mpsc::Receiver<SignJob>>,
    roots: &RootCache,
    metrics: &OnceLock<Arc<Metrics>>,
) {
    loop {
        // One thread waits on the queue, the others on the lock: no spinning either way.
        let job = queue.lock().recv();
        let Ok(job) = job else { return };
        let started = Instant::now();
        let hashed = roots.get_or_hash(&job.signing_root);
        let signature = job.key.sign_hashed(&hashed);
        drop(job.key);
        if let Some(m) = metrics.get() {
            m.observe_bls_sign(started.elapsed());
        }
        let _ = job.reply.send(signature);
    }
}

/// Bounded map signing root -> hash-to-G2 point, evicting the oldest entry when full.
struct RootCache {
    capacity: usize,
    inner: Mutex<RootCacheInner>,
}

#[derive(Default)]
struct RootCacheInner {
    points: HashMap<[u8; 32], Arc<HashedRoot>>,
    order: VecDeque<[u8; 32]>,
}

impl RootCache {
    fn new(capacity: usize) -> Self {
        Self {
            capacity,
            inner: Mutex::default(),
        }
    }

    /// The cached point, or hashes it (outside the lock: two threads may both hash a new
    /// root once, which is cheaper than making one wait) and caches it.
    fn get_or_hash(&self, root: &[u8; 32]) -> Arc<HashedRoot> {
        if let Some(hit) = self.inner.lock().points.get(root) {
            return Arc::clone(hit);
        }
        let hashed = Arc::new(HashedRoot::new(root));
        let mut inner = self.inner.lock();
        if inner.points.insert(*root, Arc::clone(&hashed)).is_none() {
            inner.order.push_back(*root);
            while inner.order.len() > self.capacity {
                if let Some(old) = inner.order.pop_front() {
                    inner.points.remove(&old);
                }
            }
        }
        hashed
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.inner.lock().points.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::KeySource;
    use zeroize::Zeroizing;

    #[test]
    fn cache_is_bounded_and_evicts_oldest() {
        let cache = RootCache::new(3);
        for i in 0..5u8 {
            cache.get_or_hash(&[i; 32]);
        }
        assert_eq!(cache.len(), 3);
        let inner = cache.inner.lock();
        assert!(!inner.points.contains_key(&[0u8; 32]));
        assert!(inner.points.contains_key(&[4u8; 32]));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_requests_each_get_their_own_signature() {
        let pool = Arc::new(SigningPool::new(3).unwrap());
        let tasks: Vec<_> = (1..=48u8)
            .map(|n| {
                let pool = Arc::clone(&pool);
                tokio::spawn(async move {
                    let mut b = [0u8; 32];
                    b[31] = n;
                    let key = Arc::new(
                        ValidatorKey::from_secret_bytes(
                            &Zeroizing::new(b),
                            KeySource::Keystore,
                            "t",
                        )
                        .unwrap(),
                    );
                    // Half the requests share a root, half have their own.
                    let root = if n % 2 == 0 { [9u8; 32] } else { [n; 32] };
                    let sig = pool.sign(Arc::clone(&key), root).await.unwrap();
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
        let mut b = [0u8; 32];
        b[31] = 5;
        let key = Arc::new(
            ValidatorKey::from_secret_bytes(&Zeroizing::new(b), KeySource::Keystore, "t").unwrap(),
        );
        for root in [[1u8; 32], [2u8; 32], [1u8; 32]] {
            let sig = pool.sign(Arc::clone(&key), root).await.unwrap();
            assert_eq!(sig, key.sign(&root));
        }
    }
}
