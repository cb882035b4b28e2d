//! A local BLS secret key: zeroized on drop, locked against swap, never printed.

use std::sync::atomic::{AtomicBool, Ordering};

use zeroize::Zeroizing;

use super::{FixedBaseTable, PubkeyBytes, SignatureBytes, BLS_DST};

/// Set once the kernel refuses to lock key memory, so the warning is logged only once.
static MLOCK_WARNED: AtomicBool = AtomicBool::new(false);

/// The 32 bytes are not a valid BLS12-381 scalar (zero or not below the group order).
/// Carries nothing of the bytes.
#[derive(Debug, thiserror::Error)]
#[error("secret key is not a valid BLS12-381 scalar")]
pub struct InvalidSecret;

/// A BLS12-381 secret scalar in memory.
///
/// The scalar lives in its own heap allocation, locked into RAM (`mlock`) and zeroized
/// when dropped (blst's `SecretKey` zeroizes itself). `Debug` prints nothing of it.
pub struct SecretKey {
    scalar: Box<blst::min_pk::SecretKey>,
}

impl SecretKey {
    /// The key of 32 big-endian secret bytes.
    pub fn from_bytes(secret: &Zeroizing<[u8; 32]>) -> Result<Self, InvalidSecret> {
        let sk = blst::min_pk::SecretKey::from_bytes(secret.as_ref()).map_err(|_| InvalidSecret)?;
        let scalar = Box::new(sk);
        lock_scalar(&scalar);
        Ok(Self { scalar })
    }

    /// The compressed public key (a scalar multiplication: compute it once and keep it).
    pub fn public_key(&self) -> PubkeyBytes {
        self.scalar.sk_to_pk().compress()
    }

    /// Signs a 32-byte signing root with the Ethereum BLS ciphersuite.
    pub fn sign(&self, signing_root: &[u8; 32]) -> SignatureBytes {
        self.scalar.sign(signing_root, BLS_DST, &[]).compress()
    }

    /// Signs a signing root whose hash-to-G2 point was computed beforehand (see
    /// [`HashedRoot`]): only the constant-time scalar multiplication is done here, so many
    /// keys signing the same root share one hash-to-curve.
    pub fn sign_hashed(&self, hashed: &HashedRoot) -> SignatureBytes {
        let mut point = blst::blst_p2::default();
        let mut out = [0u8; 96];
        // SAFETY: all pointers refer to live, properly typed values for the call's duration.
        unsafe {
            blst::blst_sign_pk_in_g1(&mut point, &hashed.0, self.blst_scalar());
            blst::blst_p2_compress(out.as_mut_ptr(), &point);
        }
        out
    }

    /// Signs with a fixed-base table of the root's hash-to-G2 point (see
    /// [`FixedBaseTable`]): the same signature as [`SecretKey::sign`], at under half the
    /// cost of the multiplication in [`SecretKey::sign_hashed`], for roots that many keys
    /// sign.
    pub fn sign_with_table(&self, table: &FixedBaseTable) -> SignatureBytes {
        table.multiply_compressed(self.blst_scalar())
    }

    /// The secret as 32 big-endian bytes in zeroizing memory, for sealing or export.
    pub fn to_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.scalar.to_bytes())
    }

    /// The scalar as blst's raw type, for the low-level multiplications.
    fn blst_scalar(&self) -> &blst::blst_scalar {
        // `SecretKey` is `#[repr(transparent)]` over `blst_scalar`, so the cast is a view
        // of the same bytes, living as long as `self`.
        let scalar = (&*self.scalar as *const blst::min_pk::SecretKey).cast::<blst::blst_scalar>();
        // SAFETY: the pointer refers to the live, boxed scalar for the borrow's duration.
        unsafe { &*scalar }
    }
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(..)")
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

/// Locks the page(s) holding a scalar. Failure is logged once and tolerated: refusing to
/// start because `RLIMIT_MEMLOCK` is small would take validators offline; the README tells
/// operators how to raise it.
fn lock_scalar(scalar: &blst::min_pk::SecretKey) {
    let ptr = (scalar as *const blst::min_pk::SecretKey).cast::<libc::c_void>();
    let len = std::mem::size_of::<blst::min_pk::SecretKey>();
    // SAFETY: mlock only reads the address range, which is a live allocation.
    let locked = unsafe { libc::mlock(ptr, len) == 0 };
    if !locked && !MLOCK_WARNED.swap(true, Ordering::Relaxed) {
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
        assert!(SecretKey::from_bytes(&secret(0)).is_err());
    }

    #[test]
    fn signature_verifies_under_pubkey() {
        let key = SecretKey::from_bytes(&secret(7)).unwrap();
        let sig = blst::min_pk::Signature::from_bytes(&key.sign(&[9u8; 32])).unwrap();
        let pk = blst::min_pk::PublicKey::from_bytes(&key.public_key()).unwrap();
        assert_eq!(
            sig.verify(true, &[9u8; 32], BLS_DST, &[], &pk, true),
            blst::BLST_ERROR::BLST_SUCCESS
        );
    }

    #[test]
    fn sign_hashed_equals_sign() {
        for n in 1..20u8 {
            let key = SecretKey::from_bytes(&secret(n)).unwrap();
            let root = [n.wrapping_mul(37); 32];
            assert_eq!(key.sign(&root), key.sign_hashed(&HashedRoot::new(&root)));
        }
    }

    #[test]
    fn round_trips_and_debug_prints_nothing() {
        let key = SecretKey::from_bytes(&secret(7)).unwrap();
        assert_eq!(*key.to_bytes(), *secret(7));
        assert_eq!(format!("{key:?}"), "SecretKey(..)");
    }
}
