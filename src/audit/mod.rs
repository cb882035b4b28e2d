//! The audit log: an append-only, SHA-256 hash-chained JSON-lines record of every signing
//! decision and key lifecycle event.
//!
//! SCAFFOLD: the config is final; the behaviour is filled in by the audit work (#6).

use std::path::PathBuf;

use serde::Deserialize;

use crate::access::ClientIdentity;
use crate::consensus::{RequestType, SlashingSubject};
use crate::keys::PubkeyBytes;
use crate::metrics::Outcome;

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

/// One signing decision, as the sign handler saw it.
#[derive(Debug)]
pub struct SigningDecision<'a> {
    /// Who asked.
    pub client: &'a ClientIdentity,
    /// The key asked for (as sent, when it did not parse).
    pub pubkey: &'a str,
    /// The request type, once parsed.
    pub request_type: Option<RequestType>,
    /// Slot or epochs of a block or attestation.
    pub subject: Option<SlashingSubject>,
    /// The recomputed signing root, once computed.
    pub signing_root: Option<[u8; 32]>,
    /// How it ended.
    pub outcome: Outcome,
}

/// The audit log could not take an event and `on_failure = "refuse"`.
#[derive(Debug, thiserror::Error)]
#[error("the audit log cannot be written: {0}")]
pub struct AuditUnavailable(pub String);

/// The audit log writer handle.
#[derive(Debug, Default)]
pub struct AuditLog {}

impl AuditLog {
    /// A log that records nothing (audit disabled).
    pub fn disabled() -> Self {
        Self::default()
    }

    /// Called before a signature is released: Err means refuse (audit broken and
    /// `on_failure = "refuse"`).
    pub fn ready(&self) -> Result<(), AuditUnavailable> {
        Ok(())
    }

    /// Queues a signing decision.
    pub fn record_signing(&self, _decision: &SigningDecision<'_>) {}

    /// Queues a key lifecycle event (load, import, delete, seal).
    pub fn record_key_event(&self, _event: &str, _pubkey: &PubkeyBytes, _detail: &str) {}
}
