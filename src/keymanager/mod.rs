//! The Ethereum keymanager API (`/eth/v1/keystores`): importing and deleting keys at
//! runtime, with their slashing-protection data, behind a bearer token.
//!
//! SCAFFOLD: the config is final; the behaviour is filled in by the keymanager work (#6).

use std::path::PathBuf;

use serde::Deserialize;

/// `[keymanager]`: off unless enabled.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeymanagerConfig {
    /// Serve `/eth/v1/keystores` on the signing API listener.
    pub enabled: bool,
    /// The bearer token file; generated (mode 0600) on first start if missing. Default
    /// `<data_dir>/keymanager-token`.
    pub token_file: Option<PathBuf>,
    /// Where imported keys are stored: sealed through the HSM when `[hsm]` is configured,
    /// otherwise as EIP-2335 keystores. Default `<data_dir>/keymanager`.
    pub dir: Option<PathBuf>,
}

/// The keymanager: owns imported keys' storage.
#[derive(Debug, Default)]
pub struct Keymanager {}
