//! `[hsm]`: the PKCS#11 token holding the key-encryption key, and its flags. The checks
//! that need the HSM's knowledge (PIN sources) and the PIN itself are in the `hsm` module.

use std::path::PathBuf;

use super::error::ConfigError;
use super::overrides::set;

/// The default label of the key-encryption key.
pub const DEFAULT_KEK_LABEL: &str = "keyguard-kek";

/// Where to find the PKCS#11 token and its key-encryption key.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HsmConfig {
    /// Path of the PKCS#11 module (shared library), e.g. `/usr/lib/softhsm/libsofthsm2.so`.
    pub module: PathBuf,
    /// Label of the token. Tokens are found by label because slot ids change.
    pub token_label: String,
    /// File holding the user PIN (one trailing newline is ignored). Exclusive with `pin_env`.
    pub pin_file: Option<PathBuf>,
    /// Environment variable holding the user PIN. Exclusive with `pin_file`.
    pub pin_env: Option<String>,
    /// Label of the AES-256 key-encryption key inside the token.
    #[serde(default = "default_kek_label")]
    pub kek_label: String,
}

fn default_kek_label() -> String {
    DEFAULT_KEK_LABEL.to_string()
}

impl HsmConfig {
    /// A config with the default KEK label and no PIN source yet.
    pub fn new(module: impl Into<PathBuf>, token_label: impl Into<String>) -> Self {
        Self {
            module: module.into(),
            token_label: token_label.into(),
            pin_file: None,
            pin_env: None,
            kek_label: default_kek_label(),
        }
    }
}

/// Flags of `[hsm]`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct HsmArgs {
    /// PKCS#11 module of the HSM, e.g. /usr/lib/softhsm/libsofthsm2.so [hsm.module].
    #[arg(global = true, long, env = "KEYGUARD_HSM_MODULE", value_name = "FILE")]
    pub hsm_module: Option<PathBuf>,
    /// Label of the HSM token; tokens are selected by label [hsm.token_label].
    #[arg(
        global = true,
        long,
        env = "KEYGUARD_HSM_TOKEN_LABEL",
        value_name = "LABEL"
    )]
    pub hsm_token_label: Option<String>,
    /// File holding the token's user PIN; the PIN itself is never a flag [hsm.pin_file].
    #[arg(
        global = true,
        long,
        env = "KEYGUARD_HSM_PIN_FILE",
        value_name = "FILE"
    )]
    pub hsm_pin_file: Option<PathBuf>,
    /// Name of the environment variable holding the user PIN [hsm.pin_env].
    #[arg(global = true, long, env = "KEYGUARD_HSM_PIN_ENV", value_name = "VAR")]
    pub hsm_pin_env: Option<String>,
    /// Label of the key-encryption key in the token [hsm.kek_label].
    #[arg(
        global = true,
        long,
        env = "KEYGUARD_HSM_KEK_LABEL",
        value_name = "LABEL"
    )]
    pub hsm_kek_label: Option<String>,
}

impl HsmArgs {
    /// HSM flags complete or create the `[hsm]` section; a new one needs module and label.
    pub fn apply(&self, section: &mut Option<HsmConfig>) -> Result<(), ConfigError> {
        let any = self.hsm_module.is_some()
            || self.hsm_token_label.is_some()
            || self.hsm_pin_file.is_some()
            || self.hsm_pin_env.is_some()
            || self.hsm_kek_label.is_some();
        if !any {
            return Ok(());
        }
        let mut hsm = match section.take() {
            Some(hsm) => hsm,
            None => {
                let module = self.hsm_module.clone().ok_or_else(|| {
                    ConfigError::new("hsm.module", "HSM settings were given without the module")
                })?;
                let label = self.hsm_token_label.clone().ok_or_else(|| {
                    ConfigError::new(
                        "hsm.token_label",
                        "HSM settings were given without the token label",
                    )
                })?;
                HsmConfig::new(module, label)
            }
        };
        set(&mut hsm.module, &self.hsm_module);
        set(&mut hsm.token_label, &self.hsm_token_label);
        if self.hsm_pin_file.is_some() {
            hsm.pin_file = self.hsm_pin_file.clone();
            hsm.pin_env = None;
        }
        if self.hsm_pin_env.is_some() {
            hsm.pin_env = self.hsm_pin_env.clone();
            hsm.pin_file = None;
        }
        set(&mut hsm.kek_label, &self.hsm_kek_label);
        *section = Some(hsm);
        Ok(())
    }
}
