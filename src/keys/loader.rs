//! Key loading: every key source turns into [`LoadJob`]s, which run in parallel across the
//! cores while the server already answers; [`LoadProgress`] is what `/healthcheck` reports.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rayon::prelude::*;

use super::{KeySource, KeyTable, ValidatorKey};

/// One unit of key-loading work (decrypt one keystore, unseal one blob, ...).
pub struct LoadJob {
    /// Where the key comes from (a path or a label); never secret.
    pub origin: String,
    /// Which kind of source the key comes from, when known (labels failures in metrics).
    pub source: Option<KeySource>,
    /// Produces the key, or an error message that names the problem without secrets.
    pub run: Box<dyn FnOnce() -> Result<ValidatorKey, String> + Send>,
}

impl LoadJob {
    /// A job from an origin and a closure.
    pub fn new(
        origin: impl Into<String>,
        run: impl FnOnce() -> Result<ValidatorKey, String> + Send + 'static,
    ) -> Self {
        Self {
            origin: origin.into(),
            source: None,
            run: Box::new(run),
        }
    }

    /// Records which kind of source this job loads from.
    pub fn with_source(mut self, source: KeySource) -> Self {
        self.source = Some(source);
        self
    }
}

/// A key that failed to load, as reported by `/healthcheck` and `keys list`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LoadFailure {
    /// Where the key came from.
    pub origin: String,
    /// The kind of source, when known.
    pub source: Option<KeySource>,
    /// Why it failed.
    pub error: String,
}

/// Progress of key loading, shared between the loader, the health check and the
/// metrics (`keyguard_key_loading_duration_seconds` is [`LoadProgress::elapsed`]).
pub struct LoadProgress {
    total: AtomicUsize,
    loaded: AtomicUsize,
    failures: Mutex<Vec<LoadFailure>>,
    finished: AtomicBool,
    started: Instant,
    /// How long loading took, once finished.
    took: Mutex<Option<Duration>>,
}

impl Default for LoadProgress {
    fn default() -> Self {
        Self {
            total: AtomicUsize::new(0),
            loaded: AtomicUsize::new(0),
            failures: Mutex::new(Vec::new()),
            finished: AtomicBool::new(false),
            started: Instant::now(),
            took: Mutex::new(None),
        }
    }
}

/// A point-in-time copy of [`LoadProgress`].
#[derive(Debug, Clone, serde::Serialize)]
pub struct ProgressSnapshot {
    /// Keys found in all sources.
    pub total: usize,
    /// Keys loaded and ready to sign.
    pub loaded: usize,
    /// Keys that failed.
    pub failed: usize,
    /// True once every job has run.
    pub finished: bool,
    /// The failures, in the order they happened.
    pub failures: Vec<LoadFailure>,
}

impl LoadProgress {
    /// Fresh progress: nothing found yet, not finished; loading time counts from now.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `n` jobs to the total.
    pub fn add_total(&self, n: usize) {
        self.total.fetch_add(n, Ordering::Relaxed);
    }

    /// Records one key loaded.
    pub fn record_loaded(&self) {
        self.loaded.fetch_add(1, Ordering::Relaxed);
    }

    /// Records one key that failed to load.
    pub fn record_failed(&self, origin: String, error: String) {
        self.record_failure(LoadFailure {
            origin,
            source: None,
            error,
        });
    }

    /// Records one key that failed to load, with its source when known.
    pub fn record_failure(&self, failure: LoadFailure) {
        tracing::error!(origin = %failure.origin, error = %failure.error, "key failed to load");
        self.failures.lock().push(failure);
    }

    /// Marks loading as complete and fixes [`LoadProgress::elapsed`].
    pub fn finish(&self) {
        self.took
            .lock()
            .get_or_insert_with(|| self.started.elapsed());
        self.finished.store(true, Ordering::Release);
    }

    /// How long loading took (once finished) or has taken so far.
    pub fn elapsed(&self) -> Duration {
        self.took.lock().unwrap_or_else(|| self.started.elapsed())
    }

    /// A consistent-enough copy for reporting.
    pub fn snapshot(&self) -> ProgressSnapshot {
        let failures = self.failures.lock().clone();
        ProgressSnapshot {
            total: self.total.load(Ordering::Relaxed),
            loaded: self.loaded.load(Ordering::Relaxed),
            failed: failures.len(),
            finished: self.finished.load(Ordering::Acquire),
            failures,
        }
    }
}

/// Runs jobs in parallel on the current rayon pool (blocking), inserting each key into
/// `table`. A duplicate pubkey counts as a failure of the later job.
pub fn run_jobs(jobs: Vec<LoadJob>, table: &KeyTable, progress: &LoadProgress) {
    jobs.into_par_iter().for_each(|job| {
        let (origin, source) = (job.origin, job.source);
        let error = match (job.run)() {
            Ok(key) => match table.insert(key) {
                Ok(_) => return progress.record_loaded(),
                Err(dup) => dup.to_string(),
            },
            Err(error) => error,
        };
        progress.record_failure(LoadFailure {
            origin,
            source,
            error,
        });
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::KeySource;
    use zeroize::Zeroizing;

    fn job(n: u8, origin: &str) -> LoadJob {
        LoadJob::new(origin, move || {
            let mut b = [0u8; 32];
            b[31] = n;
            ValidatorKey::from_secret_bytes(&Zeroizing::new(b), KeySource::Keystore, "x")
                .map_err(|e| e.to_string())
        })
    }

    #[test]
    fn failures_and_duplicates_are_counted() {
        let table = KeyTable::new();
        let progress = LoadProgress::new();
        let jobs = vec![
            job(1, "a"),
            job(2, "b"),
            job(1, "dup"),
            LoadJob::new("bad", || Err("wrong password".into())),
        ];
        progress.add_total(jobs.len());
        run_jobs(jobs, &table, &progress);
        progress.finish();
        let s = progress.snapshot();
        assert_eq!((s.total, s.loaded, s.failed, s.finished), (4, 2, 2, true));
        // Finished loading has a fixed duration.
        let took = progress.elapsed();
        std::thread::sleep(std::time::Duration::from_millis(5));
        assert_eq!(progress.elapsed(), took);
        assert_eq!(table.len(), 2);
        assert!(s
            .failures
            .iter()
            .any(|f| f.origin == "bad" && f.error == "wrong password"));
    }
}
