//! The slashing database's observer: the per-request families live in [`Metrics`]; the
//! writer's cost and the background pruning are registered here, on the same registry.
//!
//! | family | type | labels | fed by |
//! | --- | --- | --- | --- |
//! | `keyguard_slashing_writer_busy_seconds_total` | counter | | `DbObserver::writer_batch` (wall time of each batch's transaction, commit included) |
//! | `keyguard_slashing_writer_cpu_seconds_total` | counter | | `DbObserver::writer_batch` (the writer thread's CPU time over the same span) |
//! | `keyguard_slashing_writer_requests_total` | counter | | `DbObserver::writer_batch` (sign requests handled by the writer) |
//! | `keyguard_slashing_pruned_records_total` | counter | `kind` (`block`, `attestation`) | `DbObserver::pruned` |
//! | `keyguard_slashing_prune_rounds_total` | counter | `result` (`ok`, `error`) | `DbObserver::prune_round` |
//! | `keyguard_slashing_prune_last_timestamp_seconds` | gauge | | `DbObserver::prune_round` (Unix time the last round ended) |
//! | `keyguard_slashing_prune_last_duration_seconds` | gauge | | `DbObserver::prune_round` |
//!
//! `rate(keyguard_slashing_writer_cpu_seconds_total[5m]) /
//! rate(keyguard_slashing_writer_requests_total[5m])` is the writer's CPU per record.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prometheus::{Counter, Gauge, IntCounter, IntCounterVec, Opts, Registry};

use crate::metrics::Metrics;

/// Registers `collector` on `registry` and returns it.
fn register<C: prometheus::core::Collector + Clone + 'static>(
    registry: &Registry,
    collector: C,
) -> Result<C, prometheus::Error> {
    registry.register(Box::new(collector.clone()))?;
    Ok(collector)
}

/// Observes the slashing database: forwards checks, commits and refusals to [`Metrics`],
/// and records the writer's cost and the pruning itself.
pub struct SlashingDbObserver {
    metrics: Arc<Metrics>,
    writer_busy: Counter,
    writer_cpu: Counter,
    writer_requests: IntCounter,
    pruned_blocks: IntCounter,
    pruned_attestations: IntCounter,
    prune_rounds_ok: IntCounter,
    prune_rounds_failed: IntCounter,
    prune_last_timestamp: Gauge,
    prune_last_duration: Gauge,
}

impl std::fmt::Debug for SlashingDbObserver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlashingDbObserver").finish_non_exhaustive()
    }
}

impl SlashingDbObserver {
    /// Registers the writer and pruning families on `metrics`' registry.
    pub fn register(metrics: Arc<Metrics>) -> Result<SlashingDbObserver, prometheus::Error> {
        let registry = metrics.registry().clone();
        let counter = |name: &str, help: &str| -> Result<Counter, prometheus::Error> {
            register(&registry, Counter::with_opts(Opts::new(name, help))?)
        };
        let gauge = |name: &str, help: &str| -> Result<Gauge, prometheus::Error> {
            register(&registry, Gauge::with_opts(Opts::new(name, help))?)
        };
        let writer_busy = counter(
            "keyguard_slashing_writer_busy_seconds_total",
            "Wall time the slashing database writer spent on sign batches (transaction \
             and commit).",
        )?;
        let writer_cpu = counter(
            "keyguard_slashing_writer_cpu_seconds_total",
            "CPU time of the slashing database writer thread spent on sign batches.",
        )?;
        let writer_requests = register(
            &registry,
            IntCounter::with_opts(Opts::new(
                "keyguard_slashing_writer_requests_total",
                "Sign requests handled by the slashing database writer.",
            ))?,
        )?;
        let pruned = register(
            &registry,
            IntCounterVec::new(
                Opts::new(
                    "keyguard_slashing_pruned_records_total",
                    "Slashing-protection records deleted by pruning, by kind.",
                ),
                &["kind"],
            )?,
        )?;
        let rounds = register(
            &registry,
            IntCounterVec::new(
                Opts::new(
                    "keyguard_slashing_prune_rounds_total",
                    "Background pruning rounds of the slashing database, by result.",
                ),
                &["result"],
            )?,
        )?;
        Ok(SlashingDbObserver {
            writer_busy,
            writer_cpu,
            writer_requests,
            pruned_blocks: pruned.get_metric_with_label_values(&["block"])?,
            pruned_attestations: pruned.get_metric_with_label_values(&["attestation"])?,
            prune_rounds_ok: rounds.get_metric_with_label_values(&["ok"])?,
            prune_rounds_failed: rounds.get_metric_with_label_values(&["error"])?,
            prune_last_timestamp: gauge(
                "keyguard_slashing_prune_last_timestamp_seconds",
                "Unix time at which the last background pruning round ended (0: none yet).",
            )?,
            prune_last_duration: gauge(
                "keyguard_slashing_prune_last_duration_seconds",
                "Duration of the last background pruning round.",
            )?,
            metrics,
        })
    }
}

impl slashing_db::DbObserver for SlashingDbObserver {
    fn check_latency(&self, d: Duration) {
        self.metrics.slashing_check_latency(d);
    }

    fn commit(&self, batch_size: usize, commit_time: Duration) {
        self.metrics.slashing_commit(batch_size, commit_time);
    }

    fn refusal(&self, reason: &'static str) {
        self.metrics.slashing_refusal(reason);
    }

    fn writer_batch(&self, requests: usize, busy: Duration, cpu: Option<Duration>) {
        self.writer_busy.inc_by(busy.as_secs_f64());
        if let Some(cpu) = cpu {
            self.writer_cpu.inc_by(cpu.as_secs_f64());
        }
        self.writer_requests.inc_by(requests as u64);
    }

    fn pruned(&self, blocks: usize, attestations: usize, _step_time: Duration) {
        self.pruned_blocks.inc_by(blocks as u64);
        self.pruned_attestations.inc_by(attestations as u64);
    }

    fn prune_round(&self, ok: bool, elapsed: Duration) {
        if ok {
            self.prune_rounds_ok.inc();
        } else {
            self.prune_rounds_failed.inc();
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        self.prune_last_timestamp.set(now.as_secs_f64());
        self.prune_last_duration.set(elapsed.as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use slashing_db::DbObserver;

    fn sample(text: &str, series: &str) -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("{series} missing in\n{text}"))
    }

    #[test]
    fn writer_and_prune_hooks_feed_their_families() {
        let metrics = Arc::new(Metrics::new(false).expect("metrics"));
        let observer = SlashingDbObserver::register(Arc::clone(&metrics)).expect("register");
        observer.writer_batch(
            100,
            Duration::from_millis(3),
            Some(Duration::from_micros(500)),
        );
        observer.writer_batch(50, Duration::from_millis(1), None);
        observer.pruned(2, 30, Duration::from_millis(1));
        observer.pruned(0, 5, Duration::from_millis(1));
        observer.prune_round(true, Duration::from_millis(250));
        observer.prune_round(false, Duration::from_millis(10));
        let text = metrics.encode();
        assert_eq!(
            sample(&text, "keyguard_slashing_writer_requests_total"),
            150.0
        );
        assert!(
            (sample(&text, "keyguard_slashing_writer_busy_seconds_total") - 0.004).abs() < 1e-9
        );
        assert!(
            (sample(&text, "keyguard_slashing_writer_cpu_seconds_total") - 0.0005).abs() < 1e-9
        );
        assert_eq!(
            sample(
                &text,
                "keyguard_slashing_pruned_records_total{kind=\"attestation\"}"
            ),
            35.0
        );
        assert_eq!(
            sample(
                &text,
                "keyguard_slashing_pruned_records_total{kind=\"block\"}"
            ),
            2.0
        );
        assert_eq!(
            sample(&text, "keyguard_slashing_prune_rounds_total{result=\"ok\"}"),
            1.0
        );
        assert_eq!(
            sample(
                &text,
                "keyguard_slashing_prune_rounds_total{result=\"error\"}"
            ),
            1.0
        );
        assert!(
            (sample(&text, "keyguard_slashing_prune_last_duration_seconds") - 0.01).abs() < 1e-9
        );
        assert!(sample(&text, "keyguard_slashing_prune_last_timestamp_seconds") > 1.7e9);
    }
}
