//! BLS12-381 for Ethereum proof of stake: the byte types of public keys and signatures,
//! a local secret key and its signing paths (plain, with a pre-hashed root, with a
//! fixed-base table), and signature verification.
//!
//! A leaf module: it imports nothing else of the crate, so the arithmetic can be read,
//! tested and benchmarked on its own. Where a key comes from and who may use it is
//! `keys/`'s business; when a signature may be released is `signer/`'s.

mod fixed_base;
mod secret_key;

pub use fixed_base::FixedBaseTable;
pub use secret_key::{HashedRoot, InvalidSecret, SecretKey};

/// A compressed BLS12-381 G1 public key.
pub type PubkeyBytes = [u8; 48];
/// A compressed BLS12-381 G2 signature.
pub type SignatureBytes = [u8; 96];

/// The Ethereum proof-of-stake BLS ciphersuite (proof-of-possession scheme).
pub const BLS_DST: &[u8] = b"BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_";

/// True if `pubkey` is a valid public key (a point of the G1 subgroup, not infinity).
pub fn is_valid_pubkey(pubkey: &PubkeyBytes) -> bool {
    blst::min_pk::PublicKey::key_validate(pubkey).is_ok()
}

/// True if `signature` is `pubkey`'s signature of `message` under the Ethereum ciphersuite.
/// Both points are checked to be in their subgroups; anything that does not decode is
/// simply not a valid signature. Costs two pairings (about a millisecond).
pub fn verify(pubkey: &PubkeyBytes, message: &[u8; 32], signature: &SignatureBytes) -> bool {
    let Ok(pk) = blst::min_pk::PublicKey::key_validate(pubkey) else {
        return false;
    };
    let Ok(sig) = blst::min_pk::Signature::from_bytes(signature) else {
        return false;
    };
    sig.verify(true, message, BLS_DST, &[], &pk, false) == blst::BLST_ERROR::BLST_SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;
    use zeroize::Zeroizing;

    fn key(n: u8) -> SecretKey {
        let mut b = [0u8; 32];
        b[31] = n;
        SecretKey::from_bytes(&Zeroizing::new(b)).expect("valid scalar")
    }

    #[test]
    fn verify_accepts_the_signature_and_nothing_else() {
        let (a, b) = (key(3), key(4));
        let root = [7u8; 32];
        let sig = a.sign(&root);
        assert!(verify(&a.public_key(), &root, &sig));
        assert!(!verify(&b.public_key(), &root, &sig), "other key");
        assert!(!verify(&a.public_key(), &[8u8; 32], &sig), "other root");
        assert!(!verify(&a.public_key(), &root, &[0u8; 96]), "not a point");
        assert!(!verify(&[0u8; 48], &root, &sig), "not a key");
    }

    #[test]
    fn pubkey_validity() {
        assert!(is_valid_pubkey(&key(9).public_key()));
        assert!(!is_valid_pubkey(&[0u8; 48]));
        let mut infinity = [0u8; 48];
        infinity[0] = 0xc0;
        assert!(!is_valid_pubkey(&infinity));
    }
}
