//! A loaded validator key: its public data and the backend that signs with it.

use std::sync::Arc;

use zeroize::Zeroizing;

use super::backend::{KeyBackend, RemoteSigner};
use super::{KeyError, KeySource, PubkeyBytes};
use crate::bls::SecretKey;

/// A loaded validator key, ready to sign.
///
/// The public key, where it came from, and a [`KeyBackend`]: a local scalar (locked into
/// RAM, zeroized when the last reference drops) or a signer elsewhere. `Debug` prints only
/// public data.
pub struct ValidatorKey {
    pubkey: PubkeyBytes,
    source: KeySource,
    origin: String,
    derivation_path: Option<String>,
    backend: KeyBackend,
}

/// The key's secret is not in this process (its signatures are made elsewhere), so it
/// cannot be exported, sealed or backed up here.
#[derive(Debug, thiserror::Error)]
#[error("key {pubkey} signs through a {kind} backend; its secret is not here to export")]
pub struct NotExportable {
    /// The key (hex).
    pub pubkey: String,
    /// The backend's kind.
    pub kind: &'static str,
}

impl ValidatorKey {
    /// Builds a local key from its 32 big-endian secret bytes. `origin` says where it came
    /// from (a file path, a token label) for listings and error messages; it must not be
    /// secret.
    pub fn from_secret_bytes(
        secret: &Zeroizing<[u8; 32]>,
        source: KeySource,
        origin: impl Into<String>,
    ) -> Result<Self, KeyError> {
        let secret = SecretKey::from_bytes(secret).map_err(|_| KeyError::InvalidSecret)?;
        Ok(Self {
            pubkey: secret.public_key(),
            source,
            origin: origin.into(),
            derivation_path: None,
            backend: KeyBackend::Local(Arc::new(secret)),
        })
    }

    /// Like [`ValidatorKey::from_secret_bytes`], and checks the derived pubkey against the
    /// one the source recorded.
    pub fn from_secret_bytes_checked(
        secret: &Zeroizing<[u8; 32]>,
        expected_pubkey: &PubkeyBytes,
        source: KeySource,
        origin: impl Into<String>,
    ) -> Result<Self, KeyError> {
        let key = Self::from_secret_bytes(secret, source, origin)?;
        if &key.pubkey != expected_pubkey {
            return Err(KeyError::PubkeyMismatch {
                expected: hex::encode(expected_pubkey),
                derived: hex::encode(key.pubkey),
            });
        }
        Ok(key)
    }

    /// A key whose signatures `signer` makes elsewhere. The pubkey is what the signatures
    /// are verified against, so it must be the configured one, not one the remote reports.
    pub fn remote(
        pubkey: PubkeyBytes,
        signer: Arc<dyn RemoteSigner>,
        origin: impl Into<String>,
    ) -> Self {
        Self {
            pubkey,
            source: KeySource::Remote,
            origin: origin.into(),
            derivation_path: None,
            backend: KeyBackend::Remote(signer),
        }
    }

    /// The compressed public key.
    pub fn pubkey(&self) -> &PubkeyBytes {
        &self.pubkey
    }

    /// Where the key was loaded from.
    pub fn source(&self) -> KeySource {
        self.source
    }

    /// A non-secret description of the key's origin (file path, token label, remote URL).
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// How the key signs.
    pub fn backend(&self) -> &KeyBackend {
        &self.backend
    }

    /// The local scalar, when the key has one.
    pub fn local_secret(&self) -> Option<&SecretKey> {
        match &self.backend {
            KeyBackend::Local(secret) => Some(secret),
            KeyBackend::Remote(_) => None,
        }
    }

    /// The same key with another source and origin: a generic loader (e.g. of sealed
    /// files) built it, but it belongs to another source (the keymanager's own storage).
    pub fn relabel(mut self, source: KeySource, origin: impl Into<String>) -> Self {
        self.source = source;
        self.origin = origin.into();
        self
    }

    /// Records the EIP-2334 derivation path the key's keystore named (public data); an
    /// empty path records nothing.
    pub fn with_derivation_path(mut self, path: &str) -> Self {
        self.derivation_path = (!path.is_empty()).then(|| path.to_string());
        self
    }

    /// The EIP-2334 derivation path, when the source recorded one.
    pub fn derivation_path(&self) -> Option<&str> {
        self.derivation_path.as_deref()
    }

    /// The secret as 32 big-endian bytes in zeroizing memory, for sealing or export; an
    /// error for a key whose secret is elsewhere.
    pub fn secret_bytes(&self) -> Result<Zeroizing<[u8; 32]>, NotExportable> {
        match &self.backend {
            KeyBackend::Local(secret) => Ok(secret.to_bytes()),
            KeyBackend::Remote(remote) => Err(NotExportable {
                pubkey: super::pubkey_hex(&self.pubkey),
                kind: remote.kind(),
            }),
        }
    }
}

impl std::fmt::Debug for ValidatorKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ValidatorKey")
            .field("pubkey", &super::pubkey_hex(&self.pubkey))
            .field("source", &self.source)
            .field("origin", &self.origin)
            .field("backend", &self.backend.kind())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::backend::{RemoteSignFuture, RemoteSignRequest};

    fn secret(n: u8) -> Zeroizing<[u8; 32]> {
        let mut b = [0u8; 32];
        b[31] = n;
        Zeroizing::new(b)
    }

    #[test]
    fn zero_secret_is_rejected() {
        assert!(matches!(
            ValidatorKey::from_secret_bytes(&secret(0), KeySource::Keystore, "t"),
            Err(KeyError::InvalidSecret)
        ));
    }

    #[test]
    fn checked_constructor_rejects_wrong_pubkey() {
        let other = *ValidatorKey::from_secret_bytes(&secret(8), KeySource::Keystore, "t")
            .unwrap()
            .pubkey();
        let err =
            ValidatorKey::from_secret_bytes_checked(&secret(7), &other, KeySource::Keystore, "t")
                .unwrap_err();
        assert!(matches!(err, KeyError::PubkeyMismatch { .. }));
    }

    #[test]
    fn debug_does_not_print_secret() {
        let key = ValidatorKey::from_secret_bytes(&secret(7), KeySource::Keystore, "t").unwrap();
        let shown = format!("{key:?}");
        let secret_hex = hex::encode(*key.secret_bytes().unwrap());
        assert!(!shown.contains(&secret_hex));
        assert!(shown.contains(&hex::encode(key.pubkey())));
    }

    struct Nowhere;

    impl RemoteSigner for Nowhere {
        fn kind(&self) -> &'static str {
            "nowhere"
        }
        fn sign<'a>(&'a self, _: RemoteSignRequest<'a>) -> RemoteSignFuture<'a> {
            Box::pin(async { Err(crate::keys::BackendError::Unreachable("test".into())) })
        }
    }

    #[test]
    fn a_remote_key_has_no_secret_to_export() {
        let key = ValidatorKey::remote([1u8; 48], Arc::new(Nowhere), "http://x");
        assert!(key.local_secret().is_none());
        let err = key.secret_bytes().unwrap_err();
        assert_eq!(err.kind, "nowhere");
        assert!(err.to_string().contains("not here to export"), "{err}");
        assert_eq!(key.source(), KeySource::Remote);
    }
}
