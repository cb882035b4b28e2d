//! HSM liveness, probed on its own thread so that `/healthcheck` never waits for the token:
//! a hung or slow HSM cannot hold an HTTP worker, and so cannot delay signing.
//!
//! Each probe runs on a short-lived thread with a deadline; a probe past it counts as
//! DOWN (`timeout`) at once, and no new probe starts until the hung one returns. The
//! reasons go to the log (on every change) and to `keyguard_hsm_up` and
//! `keyguard_hsm_liveness_failures_total`, never
//! into the health answer.

use std::sync::mpsc;
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::Mutex;
use prometheus::{IntCounterVec, IntGauge, Opts, Registry};

use super::HsmSession;

/// Time between two probes.
pub const PROBE_INTERVAL: Duration = Duration::from_secs(5);
/// A probe that has not answered after this long makes the HSM DOWN.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// One probe: `Ok` when the token answered, else the reason (for the log only).
type Probe = Arc<dyn Fn() -> Result<(), String> + Send + Sync>;

/// The last known liveness of the HSM, kept fresh by a background thread.
pub struct HsmLiveness {
    up: Mutex<bool>,
    metrics: LivenessMetrics,
}

#[derive(Clone)]
struct LivenessMetrics {
    up: IntGauge,
    failures: IntCounterVec,
}

impl LivenessMetrics {
    fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let up = IntGauge::new(
            "keyguard_hsm_up",
            "1 while the last HSM liveness probe succeeded in time, else 0 (registered only \
             when an HSM is configured: no HSM must not read as HSM down)",
        )?;
        let failures = IntCounterVec::new(
            Opts::new(
                "keyguard_hsm_liveness_failures_total",
                "HSM liveness probes that failed, by reason: error (the token refused or \
                 went away) or timeout (no answer within 3 s)",
            ),
            &["reason"],
        )?;
        registry.register(Box::new(up.clone()))?;
        registry.register(Box::new(failures.clone()))?;
        for reason in ["error", "timeout"] {
            failures.with_label_values(&[reason]);
        }
        up.set(1);
        Ok(Self { up, failures })
    }
}

impl HsmLiveness {
    /// Starts probing `hsm` in the background (the session was just checked at start-up,
    /// so the HSM starts UP).
    pub fn spawn(
        hsm: Arc<HsmSession>,
        registry: &Registry,
    ) -> Result<Arc<Self>, prometheus::Error> {
        let probe: Probe = Arc::new(move || hsm.check_alive().map_err(|e| e.to_string()));
        Self::start(probe, PROBE_INTERVAL, PROBE_TIMEOUT, registry)
    }

    fn start(
        probe: Probe,
        interval: Duration,
        timeout: Duration,
        registry: &Registry,
    ) -> Result<Arc<Self>, prometheus::Error> {
        let liveness = Arc::new(Self {
            up: Mutex::new(true),
            metrics: LivenessMetrics::register(registry)?,
        });
        let weak = Arc::downgrade(&liveness);
        let spawned = std::thread::Builder::new()
            .name("hsm-liveness".into())
            .spawn(move || probe_loop(&weak, &probe, interval, timeout));
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start the HSM liveness thread");
        }
        Ok(liveness)
    }

    /// True when the last probe succeeded in time.
    pub fn is_up(&self) -> bool {
        *self.up.lock()
    }

    fn record(&self, result: Result<(), (&'static str, String)>) {
        let up = result.is_ok();
        let was_up = std::mem::replace(&mut *self.up.lock(), up);
        self.metrics.up.set(i64::from(up));
        match result {
            Ok(()) if !was_up => tracing::info!("the HSM answers again"),
            Ok(()) => {}
            Err((reason, detail)) => {
                self.metrics.failures.with_label_values(&[reason]).inc();
                if was_up {
                    tracing::warn!(reason, error = %detail, "the HSM liveness probe failed");
                }
            }
        }
    }
}

/// Probes every `interval` until the monitor is dropped.
fn probe_loop(weak: &Weak<HsmLiveness>, probe: &Probe, interval: Duration, timeout: Duration) {
    loop {
        let (tx, rx) = mpsc::channel();
        let run = Arc::clone(probe);
        let spawned = std::thread::Builder::new()
            .name("hsm-probe".into())
            .spawn(move || {
                let _ = tx.send(run());
            });
        let result = match spawned {
            Ok(_) => rx.recv_timeout(timeout),
            Err(e) => Ok(Err(format!("cannot start a probe thread: {e}"))),
        };
        let Some(liveness) = weak.upgrade() else {
            return;
        };
        match result {
            Ok(answer) => liveness.record(answer.map_err(|e| ("error", e))),
            Err(_) => {
                liveness.record(Err(("timeout", format!("no answer within {timeout:?}"))));
                drop(liveness);
                // Never pile up probes on a hung token: wait for this one first.
                let late = rx
                    .recv()
                    .unwrap_or_else(|_| Err("the probe thread died".into()));
                let Some(liveness) = weak.upgrade() else {
                    return;
                };
                liveness.record(late.map_err(|e| ("error", e)));
            }
        }
        std::thread::sleep(interval);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU8, Ordering};
    use std::time::Instant;

    /// 0: answers, 1: fails, 2: hangs for a second.
    fn probe(mode: &Arc<AtomicU8>) -> Probe {
        let mode = Arc::clone(mode);
        Arc::new(move || match mode.load(Ordering::SeqCst) {
            0 => Ok(()),
            1 => Err("token removed".into()),
            _ => {
                std::thread::sleep(Duration::from_secs(1));
                Ok(())
            }
        })
    }

    fn wait_until(liveness: &HsmLiveness, up: bool) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while liveness.is_up() != up {
            assert!(Instant::now() < deadline, "liveness never became {up}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn failures_and_hangs_turn_down_without_blocking_the_reader() {
        let mode = Arc::new(AtomicU8::new(0));
        let registry = Registry::new();
        let ms = Duration::from_millis;
        let liveness = HsmLiveness::start(probe(&mode), ms(10), ms(100), &registry).unwrap();
        assert!(liveness.is_up());
        mode.store(1, Ordering::SeqCst);
        wait_until(&liveness, false);
        mode.store(0, Ordering::SeqCst);
        wait_until(&liveness, true);
        mode.store(2, Ordering::SeqCst);
        let hung = Instant::now();
        wait_until(&liveness, false);
        assert!(
            hung.elapsed() < ms(900),
            "a hung probe is DOWN at its deadline"
        );
        // Reading never waits for the hung probe, which still hangs for about 900 ms;
        // the bound leaves room for a loaded CI machine to preempt the reader.
        let read = Instant::now();
        assert!(!liveness.is_up());
        assert!(read.elapsed() < ms(300));
        let timeouts = liveness
            .metrics
            .failures
            .with_label_values(&["timeout"])
            .get();
        assert!(timeouts >= 1);
        assert_eq!(liveness.metrics.up.get(), 0);
    }
}
