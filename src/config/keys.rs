//! `[keys]`: where validator keys come from, and its flags. The one description of the key
//! sources: `keyguard run`, `keys list` and `keys seal` all read it.

use std::path::PathBuf;

use serde::Deserialize;

use super::overrides::set_opt;

/// `[keys]`: key sources; any combination may be used, a pubkey present twice is an error.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeysConfig {
    /// Directory of EIP-2335 keystores.
    pub keystores: Option<PathBuf>,
    /// Directory of password files, or one file holding the password of every keystore.
    pub passwords: Option<PathBuf>,
    /// Directory of Web3Signer YAML key definition files.
    pub key_definitions: Option<PathBuf>,
    /// Directory of HSM-sealed key files (needs `[hsm]`).
    pub sealed: Option<PathBuf>,
    /// Load the first N well-known interop test keys. They are PUBLIC: devnets only.
    pub interop_keys: Option<u64>,
    /// `[[keys.remote]]`: keys whose signatures another Web3Signer-compatible signer makes.
    pub remote: Vec<crate::keys::remote::RemoteKeysConfig>,
}

/// Flags of `[keys]`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct KeysArgs {
    /// Directory of EIP-2335 keystores [keys.keystores].
    #[arg(global = true, long, env = "KEYGUARD_KEYSTORES", value_name = "DIR")]
    pub keystores: Option<PathBuf>,
    /// Password directory or single password file [keys.passwords].
    #[arg(
        global = true,
        long,
        env = "KEYGUARD_PASSWORDS",
        value_name = "DIR|FILE"
    )]
    pub passwords: Option<PathBuf>,
    /// Directory of Web3Signer YAML key definitions [keys.key_definitions].
    #[arg(
        global = true,
        long,
        env = "KEYGUARD_KEY_DEFINITIONS",
        value_name = "DIR"
    )]
    pub key_definitions: Option<PathBuf>,
    /// Directory of HSM-sealed keys [keys.sealed].
    #[arg(global = true, long, env = "KEYGUARD_SEALED_KEYS", value_name = "DIR")]
    pub sealed_keys: Option<PathBuf>,
    /// Load the first N PUBLIC interop test keys; devnets only [keys.interop_keys].
    #[arg(global = true, long, env = "KEYGUARD_INTEROP_KEYS", value_name = "N")]
    pub interop_keys: Option<u64>,
}

impl KeysArgs {
    /// Applies the flags that were given to `c`.
    pub fn apply(&self, c: &mut KeysConfig) {
        set_opt(&mut c.keystores, &self.keystores);
        set_opt(&mut c.passwords, &self.passwords);
        set_opt(&mut c.key_definitions, &self.key_definitions);
        set_opt(&mut c.sealed, &self.sealed_keys);
        set_opt(&mut c.interop_keys, &self.interop_keys);
    }
}
