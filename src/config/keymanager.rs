//! `[keymanager]`: the keymanager API, and its flags.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::overrides::{set, set_opt};

/// Default body limit of the keymanager routes: a batch of keystores is ~1 KiB each, but
/// a slashing-protection interchange of many validators can be tens of MiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

/// `[keymanager]`: off unless enabled.
#[derive(Debug, Clone, Deserialize)]
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
    /// Largest request body of the keymanager routes, in bytes.
    pub max_body_bytes: usize,
}

impl Default for KeymanagerConfig {
    fn default() -> Self {
        KeymanagerConfig {
            enabled: false,
            token_file: None,
            dir: None,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        }
    }
}

impl KeymanagerConfig {
    /// The token file, defaulted under `data_dir`.
    pub fn token_path(&self, data_dir: &Path) -> PathBuf {
        self.token_file
            .clone()
            .unwrap_or_else(|| data_dir.join("keymanager-token"))
    }

    /// The storage directory, defaulted under `data_dir`.
    pub fn dir_path(&self, data_dir: &Path) -> PathBuf {
        self.dir
            .clone()
            .unwrap_or_else(|| data_dir.join("keymanager"))
    }
}

/// Flags of `[keymanager]`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct KeymanagerArgs {
    /// Serve the keymanager API /eth/v1/keystores [keymanager.enabled].
    #[arg(global = true, long, env = "KEYGUARD_KEYMANAGER", value_name = "BOOL")]
    pub keymanager: Option<bool>,
    /// Keymanager bearer token file, generated if missing [keymanager.token_file].
    #[arg(
        global = true,
        long,
        env = "KEYGUARD_KEYMANAGER_TOKEN_FILE",
        value_name = "FILE"
    )]
    pub keymanager_token_file: Option<PathBuf>,
    /// Where keys imported through the keymanager API are stored [keymanager.dir].
    #[arg(
        global = true,
        long,
        env = "KEYGUARD_KEYMANAGER_DIR",
        value_name = "DIR"
    )]
    pub keymanager_dir: Option<PathBuf>,
    /// Largest request body of the keymanager routes, in bytes
    /// [keymanager.max_body_bytes].
    #[arg(
        global = true,
        long,
        env = "KEYGUARD_KEYMANAGER_MAX_BODY_BYTES",
        value_name = "BYTES"
    )]
    pub keymanager_max_body_bytes: Option<usize>,
}

impl KeymanagerArgs {
    /// Applies the flags that were given to `c`.
    pub fn apply(&self, c: &mut KeymanagerConfig) {
        set(&mut c.enabled, &self.keymanager);
        set_opt(&mut c.token_file, &self.keymanager_token_file);
        set_opt(&mut c.dir, &self.keymanager_dir);
        set(&mut c.max_body_bytes, &self.keymanager_max_body_bytes);
    }
}
