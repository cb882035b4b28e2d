//! `[audit]`: the audit log, and its flags. The log itself is the `audit` module.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::error::ConfigError;
use super::overrides::set;

/// `[audit]`: the audit log.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// Write the audit log.
    pub enabled: bool,
    /// The log file; default `<data_dir>/audit.jsonl`.
    pub path: Option<PathBuf>,
    /// What to do when the log cannot be written: refuse to sign, or continue (and count
    /// the failure in a metric).
    pub on_failure: OnFailure,
    /// Most events waiting to be written.
    pub queue_capacity: usize,
}

/// `audit.on_failure`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum OnFailure {
    /// Refuse every signing request while the audit log cannot be written (fail closed).
    Refuse,
    /// Keep signing; count each lost event in `keyguard_audit_failures_total`.
    Continue,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            path: None,
            on_failure: OnFailure::Refuse,
            queue_capacity: 65_536,
        }
    }
}

impl AuditConfig {
    /// The log file: `path`, or `<data_dir>/audit.jsonl`.
    pub fn resolved_path(&self, data_dir: &Path) -> PathBuf {
        self.path
            .clone()
            .unwrap_or_else(|| data_dir.join("audit.jsonl"))
    }

    /// Checks the settings without touching the disk: the queue holds at least one event,
    /// the path is not a directory, and its directory exists or can be created (its
    /// nearest existing ancestor is a directory).
    pub fn validate(&self, data_dir: &Path) -> Result<(), ConfigError> {
        if !self.enabled {
            return Ok(());
        }
        if self.queue_capacity == 0 {
            return Err(ConfigError::new(
                "audit.queue_capacity",
                "must be at least 1",
            ));
        }
        let path = self.resolved_path(data_dir);
        if path.is_dir() {
            return Err(ConfigError::new(
                "audit.path",
                format!("{} is a directory, not a file", path.display()),
            ));
        }
        let mut ancestor = path.parent();
        while let Some(dir) = ancestor.filter(|d| !d.as_os_str().is_empty()) {
            if dir.exists() {
                if dir.is_dir() {
                    return Ok(());
                }
                return Err(ConfigError::new(
                    "audit.path",
                    format!(
                        "{} cannot be created: {} is not a directory",
                        path.display(),
                        dir.display()
                    ),
                ));
            }
            ancestor = dir.parent();
        }
        Ok(())
    }
}

/// Flags of `[audit]`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct AuditArgs {
    /// Write the audit log [audit.enabled].
    #[arg(global = true, long, env = "KEYGUARD_AUDIT", value_name = "BOOL")]
    pub audit: Option<bool>,
    /// Audit log file; implies --audit true [audit.path].
    #[arg(global = true, long, env = "KEYGUARD_AUDIT_LOG", value_name = "FILE")]
    pub audit_log: Option<PathBuf>,
    /// When the audit log cannot be written: refuse or continue [audit.on_failure].
    #[arg(global = true, long, env = "KEYGUARD_AUDIT_ON_FAILURE", value_enum)]
    pub audit_on_failure: Option<OnFailure>,
    /// Most audit events waiting to be written [audit.queue_capacity].
    #[arg(
        global = true,
        long,
        env = "KEYGUARD_AUDIT_QUEUE_CAPACITY",
        value_name = "N"
    )]
    pub audit_queue_capacity: Option<usize>,
}

impl AuditArgs {
    /// Applies the flags that were given to `c`; a log path turns the log on.
    pub fn apply(&self, c: &mut AuditConfig) {
        set(&mut c.enabled, &self.audit);
        if self.audit_log.is_some() {
            c.path = self.audit_log.clone();
            c.enabled = true;
        }
        set(&mut c.on_failure, &self.audit_on_failure);
        set(&mut c.queue_capacity, &self.audit_queue_capacity);
    }
}
