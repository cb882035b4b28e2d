//! Keymanager counters, registered on the process's metrics registry:
//! `keyguard_keymanager_imports_total{status}`, `keyguard_keymanager_deletes_total{status}`
//! and `keyguard_keymanager_auth_failures_total{reason}`.

use prometheus::{IntCounterVec, Opts, Registry};

use super::{DeleteStatus, ImportStatus};

/// The keymanager's metric handles.
#[derive(Debug, Clone)]
pub struct KeymanagerMetrics {
    imports: IntCounterVec,
    deletes: IntCounterVec,
    auth_failures: IntCounterVec,
}

impl KeymanagerMetrics {
    /// Creates the counters and registers them on `registry`.
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let vec =
            |name: &str, help: &str, label: &str| -> Result<IntCounterVec, prometheus::Error> {
                let c = IntCounterVec::new(Opts::new(name, help), &[label])?;
                registry.register(Box::new(c.clone()))?;
                Ok(c)
            };
        let m = KeymanagerMetrics {
            imports: vec(
                "keyguard_keymanager_imports_total",
                "Keystores submitted to the keymanager API, by result.",
                "status",
            )?,
            deletes: vec(
                "keyguard_keymanager_deletes_total",
                "Pubkeys submitted for deletion to the keymanager API, by result.",
                "status",
            )?,
            auth_failures: vec(
                "keyguard_keymanager_auth_failures_total",
                "Keymanager API requests refused for their credentials, by reason.",
                "reason",
            )?,
        };
        // Every series exists from the start, so rates work before the first event.
        for s in [
            ImportStatus::Imported,
            ImportStatus::Duplicate,
            ImportStatus::Error,
        ] {
            m.imports.with_label_values(&[s.as_str()]);
        }
        for s in [
            DeleteStatus::Deleted,
            DeleteStatus::NotActive,
            DeleteStatus::NotFound,
            DeleteStatus::Error,
        ] {
            m.deletes.with_label_values(&[s.as_str()]);
        }
        for r in ["missing", "wrong"] {
            m.auth_failures.with_label_values(&[r]);
        }
        Ok(m)
    }

    /// One keystore's import ended with `status`.
    pub fn import(&self, status: ImportStatus) {
        self.imports.with_label_values(&[status.as_str()]).inc();
    }

    /// One pubkey's deletion ended with `status`.
    pub fn delete(&self, status: DeleteStatus) {
        self.deletes.with_label_values(&[status.as_str()]).inc();
    }

    /// A request was refused: `"missing"` (401) or `"wrong"` (403) credentials.
    pub fn auth_failure(&self, reason: &'static str) {
        self.auth_failures.with_label_values(&[reason]).inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus::Encoder;

    #[test]
    fn counters_are_registered_and_counted() {
        let registry = Registry::new();
        let m = KeymanagerMetrics::register(&registry).unwrap();
        m.import(ImportStatus::Imported);
        m.import(ImportStatus::Imported);
        m.delete(DeleteStatus::NotActive);
        m.auth_failure("wrong");
        let mut out = Vec::new();
        prometheus::TextEncoder::new()
            .encode(&registry.gather(), &mut out)
            .unwrap();
        let text = String::from_utf8(out).unwrap();
        for line in [
            r#"keyguard_keymanager_imports_total{status="imported"} 2"#,
            r#"keyguard_keymanager_imports_total{status="error"} 0"#,
            r#"keyguard_keymanager_deletes_total{status="not_active"} 1"#,
            r#"keyguard_keymanager_auth_failures_total{reason="wrong"} 1"#,
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line} missing in:\n{text}"
            );
        }
        // A second registration on the same registry is a bug, reported as an error.
        assert!(KeymanagerMetrics::register(&registry).is_err());
    }
}
