//! The well-known interop test keys used by every consensus client's devnet tooling.
//!
//! These secrets are public: anyone can compute them. They exist so local testnets and
//! interop tests can sign with known validators, and must never hold real funds.

use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// The BLS12-381 group order r, big-endian.
const CURVE_ORDER: [u8; 32] = [
    0x73, 0xed, 0xa7, 0x53, 0x29, 0x9d, 0x7d, 0x48, 0x33, 0x39, 0xd8, 0x08, 0x09, 0xa1, 0xd8, 0x05,
    0x53, 0xbd, 0xa4, 0x02, 0xff, 0xfe, 0x5b, 0xfe, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x01,
];

/// The interop secret key for validator `index`, as 32 big-endian bytes:
/// `sk = int.from_bytes(sha256(index.to_bytes(32, 'little')), 'little') mod r`.
pub fn interop_secret(index: u64) -> Zeroizing<[u8; 32]> {
    let mut preimage = [0u8; 32];
    preimage[..8].copy_from_slice(&index.to_le_bytes());
    let digest: [u8; 32] = Sha256::digest(preimage).into();
    // The digest is a little-endian integer; work big-endian from here on.
    let mut value = Zeroizing::new(digest);
    value.reverse();
    // value < 2^256 < 3r, so at most two subtractions reduce it below r.
    while !less_than(&value, &CURVE_ORDER) {
        sub_assign(&mut value, &CURVE_ORDER);
    }
    value
}

/// `a < b` for big-endian 256-bit integers.
fn less_than(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a < b // lexicographic byte order is numeric order for equal-length big-endian values
}

/// `a -= b` for big-endian 256-bit integers, with `a >= b`.
fn sub_assign(a: &mut [u8; 32], b: &[u8; 32]) {
    let mut borrow = 0i16;
    for (x, y) in a.iter_mut().rev().zip(b.iter().rev()) {
        let mut d = i16::from(*x) - i16::from(*y) - borrow;
        borrow = 0;
        if d < 0 {
            d += 256;
            borrow = 1;
        }
        // 0 <= d < 256 here, so the cast is exact.
        *x = d as u8;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{KeySource, ValidatorKey};

    fn pubkey_of(index: u64) -> String {
        let key = ValidatorKey::from_secret_bytes(&interop_secret(index), KeySource::Interop, "t")
            .unwrap();
        hex::encode(key.pubkey())
    }

    #[test]
    fn well_known_interop_pubkeys() {
        assert_eq!(
            pubkey_of(0),
            "a99a76ed7796f7be22d5b7e85deeb7c5677e88e511e0b337618f8c4eb61349b4bf2d153f649f7b53359fe8b94a38e44c"
        );
        assert_eq!(
            pubkey_of(1),
            "b89bebc699769726a318c8e9971bd3171297c61aea4a6578a7a4f94b547dcba5bac16a89108b6b6a1fe3695d1a874a0b"
        );
    }

    #[test]
    fn reduction_is_mod_r() {
        let mut x = CURVE_ORDER;
        sub_assign(&mut x, &CURVE_ORDER);
        assert_eq!(x, [0u8; 32]);
        let mut y = [0xffu8; 32];
        sub_assign(&mut y, &CURVE_ORDER);
        sub_assign(&mut y, &CURVE_ORDER);
        assert!(less_than(&y, &CURVE_ORDER));
        // Every interop secret is a valid scalar (below r and non-zero).
        for i in 0..64 {
            let s = interop_secret(i);
            assert!(less_than(&s, &CURVE_ORDER));
            assert_ne!(*s, [0u8; 32]);
        }
    }
}
