//! The BLS signing pool: signatures are computed on dedicated threads sized to the cores,
//! never on the async runtime's threads, so HTTP and database work keep flowing.

use std::sync::Arc;

use crate::keys::{SignatureBytes, ValidatorKey};

/// A fixed pool of signing threads.
pub struct SigningPool {
    pool: rayon::ThreadPool,
}

/// The signing pool is gone (shutting down).
#[derive(Debug, thiserror::Error)]
#[error("signing pool is shut down")]
pub struct PoolClosed;

impl SigningPool {
    /// A pool with `threads` threads (0 = one per core).
    pub fn new(threads: usize) -> std::io::Result<Self> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("keyguard-bls-{i}"))
            .build()
            .map_err(std::io::Error::other)?;
        Ok(Self { pool })
    }

    /// Signs `signing_root` with `key` on the pool and returns the compressed signature.
    pub async fn sign(
        &self,
        key: Arc<ValidatorKey>,
        signing_root: [u8; 32],
    ) -> Result<SignatureBytes, PoolClosed> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.pool.spawn(move || {
            let _ = tx.send(key.sign(&signing_root));
        });
        rx.await.map_err(|_| PoolClosed)
    }
}
