//! The audit log's Prometheus metrics, registered on the signer's registry.

use prometheus::{IntCounter, IntGauge, Registry};

/// Counters and gauges of the audit writer.
#[derive(Clone)]
pub struct AuditMetrics {
    /// Events lost: not accepted into the queue, or dropped at shutdown unwritten.
    pub failures: IntCounter,
    /// Events written and synced to the file.
    pub written: IntCounter,
    /// Events waiting in the queue.
    pub queue_depth: IntGauge,
    /// 1 while the last write succeeded, 0 while writes fail.
    pub writable: IntGauge,
}

impl AuditMetrics {
    /// Creates the metrics and registers them on `registry`.
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let m = Self {
            failures: IntCounter::new(
                "keyguard_audit_failures_total",
                "Audit events lost: not accepted into the queue (full, or log broken) or not \
                 written at shutdown.",
            )?,
            written: IntCounter::new(
                "keyguard_audit_events_written_total",
                "Audit events written and synced to the audit log.",
            )?,
            queue_depth: IntGauge::new(
                "keyguard_audit_queue_depth",
                "Audit events waiting to be written.",
            )?,
            writable: IntGauge::new(
                "keyguard_audit_writable",
                "1 while the audit log is being written, 0 while writes fail.",
            )?,
        };
        registry.register(Box::new(m.failures.clone()))?;
        registry.register(Box::new(m.written.clone()))?;
        registry.register(Box::new(m.queue_depth.clone()))?;
        registry.register(Box::new(m.writable.clone()))?;
        m.writable.set(1);
        Ok(m)
    }
}
