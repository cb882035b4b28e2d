//! A validator's secret key in memory: zeroized on drop, locked against swap, never printed.

use std::sync::atomic::{AtomicBool, Ordering};

use zeroize::Zeroizing;

use super::{FixedBaseTable, KeyError, KeySource, PubkeyBytes, SignatureBytes, BLS_DST};

/// Set once the kernel refuses to lock key memory, so the warning is logged only once.
static MLOCK_WARNED: AtomicBool = AtomicBool::new(false);

/// A loaded validator key, ready to sign.
///
/// The secret lives in its own heap allocation, locked into RAM (`mlock`) and zeroized
/// when dropped (blst's `SecretKey` zeroizes itself). `Debug` prints only the pubkey.
pub struct ValidatorKey {
    pubkey: PubkeyBytes,
    source: KeySource,
    origin: String,
    derivation_path: Option<String>,
    secret: Box<blst::min_pk::SecretKey>,
}

impl ValidatorKey {
    /// Builds a key from its 32 big-endian secret bytes. `origin` says where it came from
    /// (a file path, a token label) for listings and error messages; it must not be secret.
    pub fn from_secret_bytes(
        secret: &Zeroizing<[u8; 32]>,
        source: KeySource,
        origin: impl Into<String>,
    ) -> Result<Self, KeyError> {
        let sk = blst::min_pk::SecretKey::from_bytes(secret.as_ref())
            .map_err(|_| KeyError::InvalidSecret)?;
        let secret = Box::new(sk);
        lock_secret(&secret);
        let pubkey = secret.sk_to_pk().compress();
        Ok(Self {
            pubkey,
            source,
            origin: origin.into(),
            derivation_path: None,
            secret,
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

    /// The compressed public key.
    pub fn pubkey(&self) -> &PubkeyBytes {
        &self.pubkey
    }

    /// Where the key was loaded from.
    pub fn source(&self) -> KeySource {
        self.source
    }

    /// A non-secret description of the key's origin (file path, token label).
    pub fn origin(&self) -> &str {
        &self.origin
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

    /// Signs a 32-byte signing root with the Ethereum BLS ciphersuite.
    pub fn sign(&self, signing_root: &[u8; 32]) -> SignatureBytes {
        self.secret.sign(signing_root, BLS_DST, &[]).compress()
    }

    /// Signs a signing root whose hash-to-G2 point was computed beforehand (see
    /// [`HashedRoot`]): only the constant-time scalar multiplication is done here, so many
    /// keys signing the same root share one hash-to-curve.
    pub fn sign_hashed(&self, hashed: &HashedRoot) -> SignatureBytes {
        let mut point = blst::blst_p2::default();
        let mut out = [0u8; 96];
        // `SecretKey` is `#[repr(transparent)]` over `blst_scalar`, so the cast is a view
        // of the same bytes; blst's sign_pk_in_g1 multiplies in constant time.
        let scalar = (&*self.secret as *const blst::min_pk::SecretKey).cast::<blst::blst_scalar>();
        // SAFETY: all pointers refer to live, properly typed values for the call's duration.
        unsafe {
            blst::blst_sign_pk_in_g1(&mut point, &hashed.0, scalar);
            blst::blst_p2_compress(out.as_mut_ptr(), &point);
        }
        out
    }

    /// Signs with a fixed-base table of the root's hash-to-G2 point (see
    /// [`FixedBaseTable`]): the same signature as [`ValidatorKey::sign`], at under half
    /// the cost of the multiplication in [`ValidatorKey::sign_hashed`], for roots that many
    /// keys sign.
    pub fn sign_with_table(&self, table: &FixedBaseTable) -> SignatureBytes {
        // `SecretKey` is `#[repr(transparent)]` over `blst_scalar` (see `sign_hashed`).
        let scalar = (&*self.secret as *const blst::min_pk::SecretKey).cast::<blst::blst_scalar>();
        // SAFETY: the pointer refers to the live secret for the call's duration.
        table.multiply_compressed(unsafe { &*scalar })
    }

    /// The secret as 32 big-endian bytes in zeroizing memory, for sealing or export.
    pub fn secret_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.secret.to_bytes())
    }
}

/// A signing root hashed to a G2 point with the Ethereum ciphersuite. Public data: it
/// depends only on the message, so it can be cached and shared between keys.
#[derive(Clone)]
pub struct HashedRoot(blst::blst_p2);

impl HashedRoot {
    /// Hashes `signing_root` to G2 (the expensive half of a BLS signature).
    pub fn new(signing_root: &[u8; 32]) -> Self {
        let mut point = blst::blst_p2::default();
        // SAFETY: pointers and lengths describe live buffers for the call's duration.
        unsafe {
            blst::blst_hash_to_g2(
                &mut point,
                signing_root.as_ptr(),
                signing_root.len(),
                BLS_DST.as_ptr(),
                BLS_DST.len(),
                std::ptr::null(),
                0,
            );
        }
        Self(point)
    }

    /// The hash-to-G2 point.
    pub fn point(&self) -> &blst::blst_p2 {
        &self.0
    }
}

impl std::fmt::Debug for ValidatorKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ValidatorKey")
            .field("pubkey", &super::pubkey_hex(&self.pubkey))
            .field("source", &self.source)
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

/// Locks the page(s) holding a secret. Failure is logged once and tolerated: refusing to
/// start because `RLIMIT_MEMLOCK` is small would take validators offline; the README tells
/// operators how to raise it.
fn lock_secret(secret: &blst::min_pk::SecretKey) {
    let ptr = (secret as *const blst::min_pk::SecretKey).cast::<u8>();
    let len = std::mem::size_of::<blst::min_pk::SecretKey>();
    if !crate::process::lock_memory(ptr, len) && !MLOCK_WARNED.swap(true, Ordering::Relaxed) {
        tracing::warn!(
            "could not mlock key memory (raise RLIMIT_MEMLOCK, e.g. LimitMEMLOCK=infinity); \
             secrets may be swapped to disk"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn signature_verifies_under_pubkey() {
        let key = ValidatorKey::from_secret_bytes(&secret(7), KeySource::Keystore, "t").unwrap();
        let sig = blst::min_pk::Signature::from_bytes(&key.sign(&[9u8; 32])).unwrap();
        let pk = blst::min_pk::PublicKey::from_bytes(key.pubkey()).unwrap();
        assert_eq!(
            sig.verify(true, &[9u8; 32], BLS_DST, &[], &pk, true),
            blst::BLST_ERROR::BLST_SUCCESS
        );
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
    fn sign_hashed_equals_sign() {
        for n in 1..20u8 {
            let key =
                ValidatorKey::from_secret_bytes(&secret(n), KeySource::Keystore, "t").unwrap();
            let root = [n.wrapping_mul(37); 32];
            assert_eq!(key.sign(&root), key.sign_hashed(&HashedRoot::new(&root)));
        }
    }

    #[test]
    fn debug_does_not_print_secret() {
        let key = ValidatorKey::from_secret_bytes(&secret(7), KeySource::Keystore, "t").unwrap();
        let shown = format!("{key:?}");
        let secret_hex = hex::encode(*key.secret_bytes());
        assert!(!shown.contains(&secret_hex));
        assert!(shown.contains(&hex::encode(key.pubkey())));
    }
}
