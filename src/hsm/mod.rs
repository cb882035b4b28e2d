//! The HSM backend, `pkcs11-sealed` mode: a PKCS#11 token holds an AES-256 key-encryption
//! key (KEK) that never leaves it; each BLS secret key is sealed by that KEK (AES-GCM inside
//! the token) into a small JSON file, and unsealed once at start-up into zeroizing,
//! mlock'ed memory.
//!
//! Standard PKCS#11 has no BLS12-381 mechanism, so signing itself happens in keyguard; see
//! `shared/docs/hsm-design.md` for what this mode protects against (stolen disks, backups
//! and config) and what it does not (a live root compromise of the signer host).
//!
//! Start-up sequence for the caller:
//! 1. [`harden_process`];
//! 2. [`HsmSession::open`] with an [`HsmConfig`], then [`HsmSession::require_kek`];
//! 3. [`sealed_load_jobs`] into `keys::loader::run_jobs`;
//! 4. [`liveness::HsmLiveness::spawn`]: [`HsmSession::check_alive`] in the background, read
//!    by the health check and the metrics;
//! 5. [`HsmMetrics::register`] and [`HsmSession::attach_metrics`]: the session counts its
//!    own operations and errors (the liveness monitor keeps `keyguard_hsm_up`).
//!
//! Setup and maintenance: [`init_kek`], [`seal_key`], [`generate_keys`], [`reseal_all`],
//! [`destroy_sealed`]; the `keyguard hsm …` / `keyguard keys …` commands that drive them
//! live in the `cli::hsm` module.

mod config;
mod error;
mod kek;
pub mod liveness;
mod metrics;
mod sealed;
mod token;

pub use crate::config::hsm::{HsmConfig, DEFAULT_KEK_LABEL};
pub use error::HsmError;

pub use kek::{create_kek, destroy_kek, init_kek};
pub use metrics::{HsmMetrics, HsmOperation};
pub use sealed::{
    destroy_sealed, generate_keys, generate_keys_with, list_sealed, read_sealed_file, reseal_all,
    seal_key, sealed_file_name, sealed_files, sealed_load_jobs, unseal_file, KeyCallbackError,
    ResealSummary, SealedFile, SEALED_FORMAT, SEALED_SUFFIX, SEALED_VERSION,
};
pub use token::{finalize_modules, list_tokens, HsmSession, KekProtection, TokenSummary};

/// Process hardening for a process that holds unsealed keys: no core dumps, no ptrace by
/// unprivileged users. Call once at start-up, before any key is loaded. Returns false (and
/// logs a warning) if the kernel refused.
pub fn harden_process() -> bool {
    let ok = crate::process::set_non_dumpable();
    if !ok {
        tracing::warn!(
            "could not mark the process non-dumpable; key material may end up in core dumps"
        );
    }
    ok
}

#[cfg(test)]
mod tests {
    #[test]
    fn process_can_be_hardened() {
        assert!(super::harden_process());
    }
}
