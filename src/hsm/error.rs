//! Errors of the HSM backend. None of them carries secret material: PINs, secret keys
//! and plaintext never appear in a message or a `Debug` dump.

use std::path::PathBuf;

/// Everything that can go wrong talking to the token or handling sealed-key files.
#[derive(Debug, thiserror::Error)]
pub enum HsmError {
    /// The configuration is incomplete or contradictory.
    #[error("HSM configuration: {0}")]
    Config(String),
    /// No file at the configured module path.
    #[error("PKCS#11 module {} does not exist (install the vendor's library or fix `module`)", path.display())]
    ModuleNotFound {
        /// The configured module path.
        path: PathBuf,
    },
    /// The module exists but could not be loaded or initialised.
    #[error("PKCS#11 module {} could not be loaded: {reason}", path.display())]
    ModuleLoad {
        /// The configured module path.
        path: PathBuf,
        /// What the loader or `C_Initialize` said.
        reason: String,
    },
    /// No initialised token carries the configured label.
    #[error(
        "no token labelled \"{label}\" in PKCS#11 module {}; tokens present: {}",
        module.display(),
        format_labels(available)
    )]
    TokenNotFound {
        /// The label looked for.
        label: String,
        /// The module searched.
        module: PathBuf,
        /// Labels of the initialised tokens that do exist.
        available: Vec<String>,
    },
    /// More than one token carries the label, so the choice would be arbitrary.
    #[error("{count} tokens are labelled \"{label}\" in PKCS#11 module {}; labels must be unique", module.display())]
    TokenAmbiguous {
        /// The label looked for.
        label: String,
        /// The module searched.
        module: PathBuf,
        /// How many tokens carry it.
        count: usize,
    },
    /// `C_Login` refused the PIN.
    #[error("wrong user PIN for token \"{token}\" (module {})", module.display())]
    WrongPin {
        /// The token label.
        token: String,
        /// The module path.
        module: PathBuf,
    },
    /// The token locked the user PIN after too many failures.
    #[error("the user PIN of token \"{token}\" is locked; unlock it with the SO PIN")]
    PinLocked {
        /// The token label.
        token: String,
    },
    /// The PIN file could not be read.
    #[error("cannot read PIN file {}: {source}", path.display())]
    PinFileUnreadable {
        /// The configured PIN file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The PIN environment variable is not set.
    #[error("environment variable {var} (pin_env) is not set")]
    PinEnvMissing {
        /// The variable name.
        var: String,
    },
    /// The PIN source is empty.
    #[error("the PIN from {from} is empty")]
    PinEmpty {
        /// Where the PIN was read from.
        from: String,
    },
    /// The PIN source is not UTF-8.
    #[error("the PIN from {from} is not valid UTF-8")]
    PinNotUtf8 {
        /// Where the PIN was read from.
        from: String,
    },
    /// No secret key with the KEK label exists in the token.
    #[error(
        "key-encryption key \"{label}\" not found in token \"{token}\" \
         (create it with `keyguard hsm init-kek`, or fix kek_label)"
    )]
    KekMissing {
        /// The KEK label.
        label: String,
        /// The token label.
        token: String,
    },
    /// The KEK exists but its attributes would let its value leave the token, or it is
    /// not an AES-256 key.
    #[error(
        "key-encryption key \"{label}\" in token \"{token}\" is not safe to use: {problems} \
         (create a proper one with `keyguard hsm init-kek` and reseal)"
    )]
    KekWeak {
        /// The KEK label.
        label: String,
        /// The token label.
        token: String,
        /// What is wrong, e.g. "CKA_EXTRACTABLE is true".
        problems: String,
    },
    /// `init_kek` found an object with the label already; it never overwrites.
    #[error("token \"{token}\" already has an object labelled \"{label}\"; refusing to create another KEK")]
    KekExists {
        /// The KEK label.
        label: String,
        /// The token label.
        token: String,
    },
    /// More than one secret key carries the KEK label.
    #[error("token \"{token}\" has {count} keys labelled \"{label}\"; KEK labels must be unique")]
    KekAmbiguous {
        /// The KEK label.
        label: String,
        /// The token label.
        token: String,
        /// How many keys carry it.
        count: usize,
    },
    /// A KEK is still referenced by sealed files and may not be destroyed.
    #[error("KEK \"{label}\" still seals {count} key file(s) in {}, e.g. {}; reseal them first", dir.display(), example.display())]
    KekInUse {
        /// The KEK label.
        label: String,
        /// The directory checked.
        dir: PathBuf,
        /// How many files still use it.
        count: usize,
        /// One of them.
        example: PathBuf,
    },
    /// A PKCS#11 call failed.
    #[error("PKCS#11 {op} on token \"{token}\" failed: {source}")]
    Pkcs11 {
        /// What keyguard was doing.
        op: &'static str,
        /// The token label.
        token: String,
        /// The binding's error (return value and function; never data).
        source: cryptoki::error::Error,
    },
    /// The health check found the token gone or unusable.
    #[error("HSM token \"{token}\" (module {}) is not usable: {reason}", module.display())]
    Unavailable {
        /// The token label.
        token: String,
        /// The module path.
        module: PathBuf,
        /// What failed.
        reason: String,
    },
    /// A sealed-key file is malformed (not JSON, wrong version, bad lengths, ...).
    #[error("sealed key file {}: {reason}", path.display())]
    BadSealedFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The HSM refused to decrypt: the file was modified or sealed under another KEK.
    #[error(
        "sealed key file {}: authentication failed (the file was modified, or it was sealed \
         under a different key-encryption key than \"{kek_label}\" in token \"{token}\")",
        path.display()
    )]
    UnsealFailed {
        /// The file.
        path: PathBuf,
        /// The KEK label the file names.
        kek_label: String,
        /// The token label.
        token: String,
    },
    /// The unsealed secret is not a valid key, or not the file's pubkey.
    #[error("sealed key file {}: {source}", path.display())]
    Key {
        /// The file.
        path: PathBuf,
        /// The check that failed.
        source: crate::keys::KeyError,
    },
    /// The key's secret is not in this process (a remote key): it cannot be sealed.
    #[error("{0}")]
    NotExportable(String),
    /// A key is already sealed in the output directory; sealed files are never overwritten.
    #[error("{} already exists; not overwriting a sealed key", path.display())]
    AlreadySealed {
        /// The existing file.
        path: PathBuf,
    },
    /// `destroy_sealed` found no file for the pubkey.
    #[error("no sealed key file {}", path.display())]
    SealedNotFound {
        /// The expected file.
        path: PathBuf,
    },
    /// A file system operation failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// KEK rotation stopped part-way. Every file is loadable: those listed as rotated under
    /// the new KEK, the others still under their old one.
    #[error(
        "KEK rotation to \"{new_kek}\" stopped at {}: {reason}. {rotated} file(s) were already \
         resealed under \"{new_kek}\" and remain valid; {remaining} file(s) are untouched and \
         still load under their old KEK; rerun the rotation to finish",
        failed.display()
    )]
    ResealIncomplete {
        /// The new KEK label.
        new_kek: String,
        /// The file that failed.
        failed: PathBuf,
        /// Why it failed.
        reason: String,
        /// Files rotated in this run before the failure.
        rotated: usize,
        /// Files not rotated (the failed one included).
        remaining: usize,
    },
    /// The caller's per-key callback in `generate_keys_with` failed.
    #[error("key {index}: {source}")]
    Callback {
        /// The EIP-2334 index of the key.
        index: u32,
        /// The caller's error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Key generation failed inside blst.
    #[error("key derivation failed: {0}")]
    Derivation(String),
}

impl From<crate::durable::DurableWriteError> for HsmError {
    fn from(e: crate::durable::DurableWriteError) -> Self {
        match e {
            crate::durable::DurableWriteError::AlreadyExists(path) => {
                HsmError::AlreadySealed { path }
            }
            crate::durable::DurableWriteError::Io { op, path, source } => {
                HsmError::Io { op, path, source }
            }
        }
    }
}

fn format_labels(labels: &[String]) -> String {
    if labels.is_empty() {
        "none".to_string()
    } else {
        labels
            .iter()
            .map(|l| format!("\"{l}\""))
            .collect::<Vec<_>>()
            .join(", ")
    }
}
