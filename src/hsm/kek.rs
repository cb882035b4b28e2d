//! The key-encryption key (KEK): an AES-256 key generated inside the token that can
//! encrypt and decrypt but never leave it.

use std::path::Path;

use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, KeyType, ObjectClass};

use super::{sealed, HsmConfig, HsmError, HsmSession};

/// Creates the configured KEK in the token. Refuses if any object already carries the
/// label: overwriting a KEK would make every key sealed under it unloadable.
pub fn init_kek(config: &HsmConfig) -> Result<(), HsmError> {
    let hsm = HsmSession::open(config)?;
    create_kek(&hsm, &config.kek_label)
}

/// Creates a KEK labelled `label` on an open session (e.g. the new KEK of a rotation).
/// Refuses if any object already carries the label.
pub fn create_kek(hsm: &HsmSession, label: &str) -> Result<(), HsmError> {
    if label.is_empty() {
        return Err(HsmError::Config("KEK label must not be empty".into()));
    }
    if !hsm.find_objects_labelled(label, None)?.is_empty() {
        return Err(HsmError::KekExists {
            label: label.to_string(),
            token: hsm.token_label().to_string(),
        });
    }
    let template = [
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::AES),
        Attribute::ValueLen(32.into()),
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Encrypt(true),
        Attribute::Decrypt(true),
        // Nothing else: no wrapping, signing or derivation, so the KEK cannot be used to
        // export other keys or be turned into something readable.
        Attribute::Wrap(false),
        Attribute::Unwrap(false),
        Attribute::Sign(false),
        Attribute::Verify(false),
        Attribute::Derive(false),
        Attribute::Modifiable(false),
        Attribute::Label(label.as_bytes().to_vec()),
    ];
    hsm.with_main(|s| s.generate_key(&Mechanism::AesKeyGen, &template))
        .map_err(|source| hsm.p11("C_GenerateKey", source))?;
    tracing::info!(
        kek = label,
        token = hsm.token_label(),
        "created key-encryption key"
    );
    Ok(())
}

/// Destroys a KEK, after checking that no sealed file in `sealed_dir` still names it
/// (the last step of a rotation). A KEK destroyed while files use it loses those keys.
pub fn destroy_kek(hsm: &HsmSession, label: &str, sealed_dir: &Path) -> Result<(), HsmError> {
    let users: Vec<_> = sealed::list_sealed(sealed_dir)?
        .into_iter()
        .filter(|f| f.kek_label == label)
        .collect();
    if let Some(first) = users.first() {
        return Err(HsmError::KekInUse {
            label: label.to_string(),
            dir: sealed_dir.to_path_buf(),
            count: users.len(),
            example: first.path.clone(),
        });
    }
    let kek = hsm.find_kek(label)?;
    hsm.with_main(|s| s.destroy_object(kek))
        .map_err(|source| hsm.p11("C_DestroyObject", source))?;
    hsm.forget_kek(label);
    tracing::info!(
        kek = label,
        token = hsm.token_label(),
        "destroyed key-encryption key"
    );
    Ok(())
}
