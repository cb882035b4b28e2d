//! Connection metrics of the signing API: open connections, refusals by reason and
//! timeouts by phase. Every series exists (at zero) from start-up, so alerts and `rate()`
//! work before the first event.

use prometheus::{IntCounter, IntCounterVec, IntGauge, Opts, Registry};

/// Why a connection was closed right after `accept`, without being served.
pub const REFUSAL_REASONS: [&str; 3] = [
    "max_connections",
    "max_connections_per_peer",
    "tls_handshake_slots",
];

/// Which deadline a connection missed.
pub const TIMEOUT_PHASES: [&str; 3] = ["header", "body", "idle"];

/// `keyguard_http_connections_*` and `keyguard_http_connection_timeouts_total`.
#[derive(Clone)]
pub struct ConnectionMetrics {
    open: IntGauge,
    accepted: IntCounter,
    refused: IntCounterVec,
    timeouts: IntCounterVec,
}

impl ConnectionMetrics {
    /// Registers the connection metrics on `registry` (the one of `crate::metrics::Metrics`).
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let open = IntGauge::new(
            "keyguard_http_connections_open",
            "Connections to the signing API open now (TLS handshakes in progress included)",
        )?;
        let accepted = IntCounter::new(
            "keyguard_http_connections_accepted_total",
            "Connections to the signing API accepted within the connection limits",
        )?;
        let refused = IntCounterVec::new(
            Opts::new(
                "keyguard_http_connections_refused_total",
                "Connections to the signing API closed right after accept, by reason: \
                 max_connections, max_connections_per_peer (server.max_connections*), or \
                 tls_handshake_slots (server.max_pending_tls_handshakes)",
            ),
            &["reason"],
        )?;
        let timeouts = IntCounterVec::new(
            Opts::new(
                "keyguard_http_connection_timeouts_total",
                "Connections to the signing API closed for missing a deadline, by phase: \
                 header (server.header_read_timeout_ms), body (server.body_read_timeout_ms) \
                 or idle (server.idle_timeout_ms)",
            ),
            &["phase"],
        )?;
        registry.register(Box::new(open.clone()))?;
        registry.register(Box::new(accepted.clone()))?;
        registry.register(Box::new(refused.clone()))?;
        registry.register(Box::new(timeouts.clone()))?;
        for reason in REFUSAL_REASONS {
            refused.with_label_values(&[reason]);
        }
        for phase in TIMEOUT_PHASES {
            timeouts.with_label_values(&[phase]);
        }
        Ok(Self {
            open,
            accepted,
            refused,
            timeouts,
        })
    }

    /// A connection was admitted.
    pub(super) fn opened(&self) {
        self.accepted.inc();
        self.open.inc();
    }

    /// An admitted connection closed.
    pub(super) fn closed(&self) {
        self.open.dec();
    }

    /// A connection was closed unserved; `reason` is one of [`REFUSAL_REASONS`].
    pub fn refused(&self, reason: &'static str) {
        self.refused.with_label_values(&[reason]).inc();
    }

    /// A connection missed a deadline; `phase` is one of [`TIMEOUT_PHASES`].
    pub(super) fn timed_out(&self, phase: &'static str) {
        self.timeouts.with_label_values(&[phase]).inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_series_exists_at_zero() {
        let registry = Registry::new();
        let metrics = ConnectionMetrics::register(&registry).unwrap();
        metrics.refused("max_connections_per_peer");
        let families = registry.gather();
        let series = |name: &str| {
            families
                .iter()
                .find(|f| f.name() == name)
                .map(|f| f.get_metric().len())
                .unwrap_or(0)
        };
        assert_eq!(series("keyguard_http_connections_refused_total"), 3);
        assert_eq!(series("keyguard_http_connection_timeouts_total"), 3);
        assert_eq!(series("keyguard_http_connections_open"), 1);
        assert_eq!(
            metrics
                .refused
                .with_label_values(&["max_connections_per_peer"])
                .get(),
            1
        );
    }
}
