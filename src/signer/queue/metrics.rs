//! Metrics of the signing queue: requests waiting and running per priority, requests shed
//! (answered 503) per reason, time spent waiting, and cheap refusals tarpitted (counted
//! and their delay summed). Every series exists (at zero) from start-up, so alerts and
//! `rate()` work before the first event.

use std::time::Duration;

use prometheus::{
    Counter, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry,
};

use super::priority::Priority;
use super::Shed;

/// Buckets of the queue wait, in seconds: most requests wait nothing or a few signatures;
/// the long tail is what an overloaded signer costs.
const WAIT_BUCKETS: [f64; 12] = [
    0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0,
];

/// `keyguard_signing_queue_*`.
#[derive(Clone)]
pub struct QueueMetrics {
    /// Per class, in [`Priority::ALL`] order (labelled series looked up once).
    waiting: [IntGauge; 2],
    running: [IntGauge; 2],
    wait: [Histogram; 2],
    rejected: IntCounterVec,
    tarpitted: IntCounter,
    tarpit_seconds: Counter,
}

impl QueueMetrics {
    /// Registers the queue metrics on `registry` (the one of `crate::metrics::Metrics`).
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let waiting = IntGaugeVec::new(
            Opts::new(
                "keyguard_signing_queue_depth",
                "Sign requests waiting in the signing queue now, by priority (duty or \
                 background)",
            ),
            &["priority"],
        )?;
        let running = IntGaugeVec::new(
            Opts::new(
                "keyguard_signing_queue_running",
                "Sign requests admitted from the signing queue and not yet answered, by \
                 priority",
            ),
            &["priority"],
        )?;
        let rejected = IntCounterVec::new(
            Opts::new(
                "keyguard_signing_queue_rejected_total",
                "Sign requests answered 503 by the signing queue before anything was \
                 checked or recorded, by reason: queue_full (queue.depth), \
                 client_queue_full (queue.per_client) or displaced (a queued request gave \
                 way to a higher-priority or fairer one)",
            ),
            &["reason"],
        )?;
        let wait = HistogramVec::new(
            HistogramOpts::new(
                "keyguard_signing_queue_wait_seconds",
                "Time admitted sign requests waited in the signing queue, by priority",
            )
            .buckets(WAIT_BUCKETS.to_vec()),
            &["priority"],
        )?;
        let tarpitted = IntCounter::new(
            "keyguard_signing_queue_tarpitted_total",
            "Sign requests refused cheaply (unknown key, out of scope, type not allowed, \
             malformed) whose answer was delayed because their client exceeded \
             queue.refusal_burst / queue.refusal_rate",
        )?;
        let tarpit_seconds = Counter::new(
            "keyguard_signing_queue_tarpit_delay_seconds_total",
            "Seconds the answers of tarpitted sign requests were delayed, in all",
        )?;
        registry.register(Box::new(tarpitted.clone()))?;
        registry.register(Box::new(tarpit_seconds.clone()))?;
        registry.register(Box::new(waiting.clone()))?;
        registry.register(Box::new(running.clone()))?;
        registry.register(Box::new(rejected.clone()))?;
        registry.register(Box::new(wait.clone()))?;
        for shed in Shed::ALL {
            rejected.with_label_values(&[shed.label()]);
        }
        let [duty, background] = Priority::ALL.map(|p| p.label());
        Ok(Self {
            waiting: [duty, background].map(|l| waiting.with_label_values(&[l])),
            running: [duty, background].map(|l| running.with_label_values(&[l])),
            wait: [duty, background].map(|l| wait.with_label_values(&[l])),
            rejected,
            tarpitted,
            tarpit_seconds,
        })
    }

    /// The gauges after a change: `waiting` and `running` per class, in [`Priority::ALL`]
    /// order.
    pub(super) fn set_counts(&self, waiting: [usize; 2], running: [usize; 2]) {
        for i in 0..2 {
            self.waiting[i].set(i64::try_from(waiting[i]).unwrap_or(i64::MAX));
            self.running[i].set(i64::try_from(running[i]).unwrap_or(i64::MAX));
        }
    }

    /// A request was shed.
    pub(super) fn rejected(&self, shed: Shed) {
        self.rejected.with_label_values(&[shed.label()]).inc();
    }

    /// A refused request's answer is delayed by `delay`.
    pub(super) fn tarpitted(&self, delay: Duration) {
        self.tarpitted.inc();
        self.tarpit_seconds.inc_by(delay.as_secs_f64());
    }

    /// A request of `priority` was admitted after waiting `waited`.
    pub(super) fn admitted(&self, priority: Priority, waited: Duration) {
        self.wait[priority.index()].observe(waited.as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_series_exists_at_zero() {
        let registry = Registry::new();
        let _metrics = QueueMetrics::register(&registry).unwrap();
        let families = registry.gather();
        let series = |name: &str| {
            families
                .iter()
                .find(|f| f.name() == name)
                .map(|f| f.get_metric().len())
                .unwrap_or(0)
        };
        assert_eq!(series("keyguard_signing_queue_depth"), 2);
        assert_eq!(series("keyguard_signing_queue_running"), 2);
        assert_eq!(series("keyguard_signing_queue_rejected_total"), 3);
        assert_eq!(series("keyguard_signing_queue_wait_seconds"), 2);
        assert_eq!(series("keyguard_signing_queue_tarpitted_total"), 1);
        assert_eq!(
            series("keyguard_signing_queue_tarpit_delay_seconds_total"),
            1
        );
    }
}
