//! The HSM's Prometheus metrics, registered on the signer's registry and fed by
//! [`HsmSession`](super::HsmSession) itself: `keyguard_hsm_operations_total{operation}`,
//! `keyguard_hsm_errors_total{operation}`. `keyguard_hsm_up` belongs to the liveness monitor
//! (`liveness.rs`), the one place that knows about probes that never answer.

use prometheus::{IntCounterVec, Opts, Registry};

/// An HSM operation keyguard performs while it serves: the `operation` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HsmOperation {
    /// Logging in to the token (once, when the session opens).
    Login,
    /// Unsealing one sealed key (key loading, keymanager imports).
    Unseal,
    /// Sealing one key (keymanager imports, key generation).
    Seal,
    /// A liveness probe of the token (`/healthcheck` and each metrics scrape).
    HealthCheck,
}

impl HsmOperation {
    /// Every operation, so each series exists (at 0) from start-up.
    pub const ALL: [HsmOperation; 4] = [
        HsmOperation::Login,
        HsmOperation::Unseal,
        HsmOperation::Seal,
        HsmOperation::HealthCheck,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            HsmOperation::Login => "login",
            HsmOperation::Unseal => "unseal",
            HsmOperation::Seal => "seal",
            HsmOperation::HealthCheck => "health_check",
        }
    }
}

/// The HSM's metric handles.
#[derive(Debug, Clone)]
pub struct HsmMetrics {
    operations: IntCounterVec,
    errors: IntCounterVec,
}

impl HsmMetrics {
    /// Registers the operation and error counters on `registry`, every operation's series
    /// at 0 (so the dashboard's HSM panels and `increase()` see the first error).
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let vec = |name: &str, help: &str| -> Result<IntCounterVec, prometheus::Error> {
            let c = IntCounterVec::new(Opts::new(name, help), &["operation"])?;
            registry.register(Box::new(c.clone()))?;
            for op in HsmOperation::ALL {
                c.with_label_values(&[op.as_str()]);
            }
            Ok(c)
        };
        let operations = vec(
            "keyguard_hsm_operations_total",
            "HSM operations attempted, by operation.",
        )?;
        let errors = vec(
            "keyguard_hsm_errors_total",
            "HSM operations that failed, by operation.",
        )?;
        Ok(Self { operations, errors })
    }

    /// Records one operation: `keyguard_hsm_operations_total{operation}` +1 and, if it
    /// failed, `keyguard_hsm_errors_total{operation}` +1.
    pub fn observe(&self, operation: HsmOperation, succeeded: bool) {
        let label = [operation.as_str()];
        self.operations.with_label_values(&label).inc();
        if !succeeded {
            self.errors.with_label_values(&label).inc();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus::Encoder;

    fn text(registry: &Registry) -> String {
        let mut out = Vec::new();
        prometheus::TextEncoder::new()
            .encode(&registry.gather(), &mut out)
            .unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn series_exist_at_zero_and_count_operations_and_errors() {
        let registry = Registry::new();
        let m = HsmMetrics::register(&registry).unwrap();
        let start = text(&registry);
        for op in ["login", "unseal", "seal", "health_check"] {
            for family in ["operations", "errors"] {
                let line = format!(r#"keyguard_hsm_{family}_total{{operation="{op}"}} 0"#);
                assert!(start.lines().any(|l| l == line), "{line} in:\n{start}");
            }
        }

        m.observe(HsmOperation::Unseal, true);
        m.observe(HsmOperation::Unseal, false);
        m.observe(HsmOperation::HealthCheck, false);
        let after = text(&registry);
        for line in [
            r#"keyguard_hsm_operations_total{operation="unseal"} 2"#,
            r#"keyguard_hsm_errors_total{operation="unseal"} 1"#,
            r#"keyguard_hsm_operations_total{operation="health_check"} 1"#,
            r#"keyguard_hsm_errors_total{operation="health_check"} 1"#,
            r#"keyguard_hsm_errors_total{operation="login"} 0"#,
        ] {
            assert!(after.lines().any(|l| l == line), "{line} in:\n{after}");
        }
    }
}
