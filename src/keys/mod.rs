//! Validator keys: where they come from (key sources), how each signs (its
//! [`KeyBackend`]), and the in-memory key table that the signing path reads.
//!
//! Every source ends in the same place: a [`ValidatorKey`] inserted into the [`KeyTable`].
//! Local sources build it from 32 secret bytes ([`ValidatorKey::from_secret_bytes`]);
//! remote keys ([`remote`]) from a configured pubkey and the signer that holds the secret.

pub mod backend;
pub mod deposit_data;
pub mod interop;
pub mod keystore;
pub mod loader;
pub mod password;
pub mod remote;
pub mod sources;
mod table;
mod validator_key;
pub mod web3signer;

pub use crate::bls::{FixedBaseTable, HashedRoot, PubkeyBytes, SignatureBytes, BLS_DST};
pub use backend::{BackendError, KeyBackend, RemoteSignRequest, RemoteSigner};
pub use loader::{LoadJob, LoadProgress};
pub use table::{DuplicateKey, KeyTable};
pub use validator_key::{NotExportable, ValidatorKey};

pub use interop::interop_secret;
pub use keystore::{Kdf, Keystore, KeystoreError};
pub use sources::{load_jobs, SourceError};

/// Where a loaded key came from; shown by `keys list` and in metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeySource {
    /// An EIP-2335 keystore with a password file.
    Keystore,
    /// A Web3Signer key definition of `type: file-keystore`.
    Web3SignerKeystore,
    /// A Web3Signer key definition of `type: file-raw`.
    Web3SignerRaw,
    /// A well-known interop test key (public; devnets only).
    Interop,
    /// A key sealed by the HSM's key-encryption key.
    Sealed,
    /// A key imported through the keymanager API.
    Imported,
    /// A key signed for by another signer (`[[keys.remote]]`).
    Remote,
}

impl KeySource {
    /// Every key source, for metrics that report each one.
    pub const ALL: [KeySource; 7] = [
        KeySource::Keystore,
        KeySource::Web3SignerKeystore,
        KeySource::Web3SignerRaw,
        KeySource::Interop,
        KeySource::Sealed,
        KeySource::Imported,
        KeySource::Remote,
    ];

    /// The name used in metrics labels and listings.
    pub fn as_str(&self) -> &'static str {
        match self {
            KeySource::Keystore => "keystore",
            KeySource::Web3SignerKeystore => "web3signer-keystore",
            KeySource::Web3SignerRaw => "web3signer-raw",
            KeySource::Interop => "interop",
            KeySource::Sealed => "sealed",
            KeySource::Imported => "imported",
            KeySource::Remote => "remote",
        }
    }
}

/// Why 32 bytes could not become a validator key. Never carries secret material.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The bytes are not a valid BLS12-381 scalar (zero or not below the group order).
    #[error("secret key is not a valid BLS12-381 scalar")]
    InvalidSecret,
    /// The key derived from the secret is not the one the source recorded.
    #[error("secret key derives pubkey 0x{derived} but the source says 0x{expected}")]
    PubkeyMismatch {
        /// The pubkey the source recorded (hex).
        expected: String,
        /// The pubkey derived from the secret (hex).
        derived: String,
    },
}

/// Formats a pubkey the way the API shows it: `0x` and 96 lowercase hex digits.
pub fn pubkey_hex(pubkey: &PubkeyBytes) -> String {
    format!("0x{}", hex::encode(pubkey))
}

/// Parses a pubkey given with or without `0x`, in any case.
pub fn parse_pubkey(s: &str) -> Option<PubkeyBytes> {
    let digits = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .unwrap_or(s);
    let mut out = [0u8; 48];
    hex::decode_to_slice(digits, &mut out).ok()?;
    Some(out)
}
