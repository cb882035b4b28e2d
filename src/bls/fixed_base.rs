//! Fixed-base signing for a signing root that many keys sign.
//!
//! A BLS signature is `sk · H(m)`. When thousands of validators sign the same root (every
//! attestation of a slot from Electra on, selection proofs, sync-committee messages), the
//! point `H(m)` is fixed and only the scalar changes, so the multiples of `H(m)` can be
//! computed once: `T[i][j] = j · 2^(5i) · H(m)` for 52 windows of 5 bits and `j = 1..=16`.
//! A signature is then 52 mixed additions of table entries picked by the signed (Booth)
//! digits of `sk`, with no doublings at all, instead of blst's variable-base
//! multiplication (64 doublings, 52 additions and a per-call table of its own).
//!
//! Constant time: the digits are computed from the scalar without branches or
//! secret-dependent indexing; each table entry is fetched by reading all 16 entries of its
//! window and keeping one with a mask; the sign is applied with blst's branch-free
//! conditional negation; and blst's mixed additions handle the point at infinity (digit
//! 0, or the accumulator before the first non-zero digit) with selects, not branches. The
//! secret digits and the last selected entry are zeroized after use.

use zeroize::Zeroize;

/// Bits per window.
const WINDOW_BITS: usize = 5;
/// Windows needed for a scalar below the group order (< 2^255) with signed digits: the
/// last window (bits 254..259) only holds bit 254 and the carry, so its digit is 0 or 1.
const WINDOWS: usize = 52;
/// Table entries per window: the multiples 1..=16 (digits are in -16..=16; 0 is the point
/// at infinity and needs no entry).
const ENTRIES: usize = 1 << (WINDOW_BITS - 1);

/// The precomputed multiples of one hash-to-G2 point (about 156 KiB). Public data.
pub struct FixedBaseTable {
    /// `points[i * ENTRIES + (j - 1)] = j · 2^(5i) · H`, affine.
    points: Vec<blst::blst_p2_affine>,
}

impl FixedBaseTable {
    /// Builds the table for a hash-to-G2 point: 52 · 16 additions and doublings and one
    /// batched inversion, about the cost of five full signatures (2.2 ms).
    pub fn new(hash: &blst::blst_p2) -> Self {
        let mut jacobian = Vec::with_capacity(WINDOWS * ENTRIES);
        let mut base = *hash;
        for _ in 0..WINDOWS {
            let mut multiple = base;
            jacobian.push(multiple);
            for _ in 1..ENTRIES {
                let mut next = blst::blst_p2::default();
                // SAFETY: all pointers refer to live, properly typed values.
                unsafe { blst::blst_p2_add_or_double(&mut next, &multiple, &base) };
                multiple = next;
                jacobian.push(multiple);
            }
            // 2^5 · base = 2 · (16 · base).
            let mut next_base = blst::blst_p2::default();
            // SAFETY: as above.
            unsafe { blst::blst_p2_double(&mut next_base, &multiple) };
            base = next_base;
        }
        let pointers: Vec<*const blst::blst_p2> =
            jacobian.iter().map(|p| p as *const blst::blst_p2).collect();
        let mut points = vec![blst::blst_p2_affine::default(); jacobian.len()];
        // SAFETY: `points` has room for every input point; `pointers` holds one valid
        // pointer per point (no null terminator needed when the count is given).
        unsafe {
            blst::blst_p2s_to_affine(points.as_mut_ptr(), pointers.as_ptr(), pointers.len());
        }
        Self { points }
    }

    /// `scalar · H`, compressed (a BLS signature when `scalar` is a secret key and `H` the
    /// hash of the signing root). `scalar` is little-endian, as in `blst_scalar`, and must
    /// be non-zero and below the group order (every valid secret key is).
    pub fn multiply_compressed(&self, scalar: &blst::blst_scalar) -> [u8; 96] {
        let mut digits = booth_digits(&scalar.b);
        let mut acc = blst::blst_p2::default(); // Z = 0: the point at infinity.
        let mut entry = blst::blst_p2_affine::default();
        for (index, (window, &digit)) in self.points.chunks_exact(ENTRIES).zip(&digits).enumerate()
        {
            select_entry(window, digit, &mut entry);
            // After `index` windows the accumulator is s·H with |s| < 0.52 · 2^(5·index),
            // and the entry is d·2^(5·index)·H with 1 <= |d| <= 16 (or infinity, which
            // both additions handle by select). The two points are equal or opposite only
            // if s ∓ d·2^(5·index) is a non-zero multiple of the group order r, which
            // needs |s| + 16 · 2^(5·index) >= r: impossible below the last window. So
            // the cheaper addition without the doubling case is exact there; the last
            // window (digit 0 or 1) uses blst's addition that also doubles.
            // SAFETY: `acc` may be both output and input (blst reads its inputs before
            // writing the output).
            unsafe {
                if index + 1 < WINDOWS {
                    blst::blst_p2_add_affine(&mut acc, &acc, &entry);
                } else {
                    blst::blst_p2_add_or_double_affine(&mut acc, &acc, &entry);
                }
            }
        }
        let mut out = [0u8; 96];
        // SAFETY: `out` has the 96 bytes of a compressed G2 point.
        unsafe { blst::blst_p2_compress(out.as_mut_ptr(), &acc) };
        digits.zeroize();
        zeroize_affine(&mut entry);
        out
    }
}

/// The signed base-32 digits of a little-endian scalar below 2^255, Booth-encoded as in
/// blst: the low 5 bits hold the magnitude (0..=16), bit 7 the sign. Branch-free; every
/// access depends only on the window index.
fn booth_digits(scalar_le: &[u8; 32]) -> [u8; WINDOWS] {
    let mut digits = [0u8; WINDOWS];
    for (i, digit) in digits.iter_mut().enumerate() {
        // Six bits: bit 5i-1 (0 for the first window) up to bit 5i+4.
        let bits = window_bits(scalar_le, i * WINDOW_BITS) as u32;
        let sign = bits >> WINDOW_BITS; // 1 when the digit is negative
        let mask = 0u32.wrapping_sub(sign);
        let half = (bits + 1) >> 1;
        let magnitude = ((half & !mask) | (half.wrapping_neg() & mask)) & 0x1f;
        // A zero digit is the point at infinity whatever its sign: clear the sign so
        // the negation never turns (0, 0) into (0, p).
        let nonzero = (magnitude | magnitude.wrapping_neg()) >> 31;
        *digit = (magnitude | ((sign & nonzero) << 7)) as u8;
    }
    digits
}

/// Bits `start - 1 ..= start + 4` of the scalar (bits past 255 and before 0 read as 0).
fn window_bits(scalar_le: &[u8; 32], start: usize) -> u8 {
    // Read 24 bits around the window; the indices depend only on `start`.
    let byte = |i: isize| -> u32 {
        if (0..32).contains(&i) {
            u32::from(scalar_le[i as usize])
        } else {
            0
        }
    };
    let first = (start as isize - 1).div_euclid(8);
    let word = byte(first) | byte(first + 1) << 8 | byte(first + 2) << 16;
    let shift = (start as isize - 1).rem_euclid(8) as u32;
    ((word >> shift) & 0x3f) as u8
}

/// Copies the entry for `digit` (magnitude and sign, see [`booth_digits`]) of one window
/// into `out` in constant time: every entry is read, one is kept by mask; magnitude 0
/// leaves the all-zero affine point, which blst reads as infinity.
fn select_entry(window: &[blst::blst_p2_affine], digit: u8, out: &mut blst::blst_p2_affine) {
    use subtle::ConstantTimeEq;
    let magnitude = digit & 0x1f;
    let negative = (digit >> 7) & 1;
    let mut picked = [0u64; LIMBS];
    for (j, candidate) in window.iter().enumerate() {
        // All ones for the wanted entry, else zero; `subtle` keeps the compiler from
        // turning the comparison into a branch.
        let mask = u64::from(magnitude.ct_eq(&(j as u8 + 1)).unwrap_u8()).wrapping_neg();
        for (dst, src) in picked.iter_mut().zip(limbs(candidate)) {
            *dst |= src & mask;
        }
    }
    *out = from_limbs(&picked);
    picked.zeroize();
    let y = out.y;
    // SAFETY: `out.y` and the copy are live `blst_fp2` values; blst negates with a mask.
    unsafe { blst::blst_fp2_cneg(&mut out.y, &y, negative == 1) };
}

/// 64-bit limbs in an affine G2 point: two coordinates of two 384-bit field elements.
const LIMBS: usize = 24;

/// The limbs of an affine G2 point, x then y.
fn limbs(p: &blst::blst_p2_affine) -> [u64; LIMBS] {
    let mut out = [0u64; LIMBS];
    let parts = [&p.x.fp[0].l, &p.x.fp[1].l, &p.y.fp[0].l, &p.y.fp[1].l];
    for (chunk, part) in out.chunks_exact_mut(6).zip(parts) {
        chunk.copy_from_slice(part);
    }
    out
}

/// The inverse of [`limbs`].
fn from_limbs(l: &[u64; LIMBS]) -> blst::blst_p2_affine {
    let fp = |k: usize| {
        let mut f = blst::blst_fp::default();
        f.l.copy_from_slice(&l[6 * k..6 * k + 6]);
        f
    };
    blst::blst_p2_affine {
        x: blst::blst_fp2 { fp: [fp(0), fp(1)] },
        y: blst::blst_fp2 { fp: [fp(2), fp(3)] },
    }
}

/// Clears a point that was selected by secret digits (which entry it is reveals a digit),
/// with volatile writes the compiler cannot drop as dead stores.
fn zeroize_affine(p: &mut blst::blst_p2_affine) {
    let len = std::mem::size_of::<blst::blst_p2_affine>();
    // SAFETY: `blst_p2_affine` is plain `repr(C)` limbs with no padding or invalid bit
    // patterns; the slice covers exactly the value behind the exclusive reference.
    let bytes = unsafe {
        std::slice::from_raw_parts_mut((p as *mut blst::blst_p2_affine).cast::<u8>(), len)
    };
    bytes.zeroize();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bls::{HashedRoot, SecretKey};
    use zeroize::Zeroizing;

    /// The value the Booth digits stand for, as a big integer in 64-bit limbs (signed
    /// digits summed with carries), for comparison with the scalar.
    fn digits_value(digits: &[u8; WINDOWS]) -> [u64; 5] {
        // Accumulate as i128 per bit position would be heavy; use a simple big-int add.
        let mut acc = [0i128; 5];
        for (i, &d) in digits.iter().enumerate() {
            let magnitude = i128::from(d & 0x1f);
            let value = if d & 0x80 != 0 { -magnitude } else { magnitude };
            let bit = i * WINDOW_BITS;
            acc[bit / 64] += value << (bit % 64);
        }
        let mut out = [0u64; 5];
        let mut carry = 0i128;
        for k in 0..5 {
            let v = acc[k] + carry;
            out[k] = v as u64;
            carry = v >> 64;
        }
        out
    }

    fn le_limbs(bytes: &[u8; 32]) -> [u64; 5] {
        let mut out = [0u64; 5];
        for k in 0..4 {
            let mut w = [0u8; 8];
            w.copy_from_slice(&bytes[8 * k..8 * k + 8]);
            out[k] = u64::from_le_bytes(w);
        }
        out
    }

    #[test]
    fn booth_digits_sum_to_the_scalar() {
        let mut cases: Vec<[u8; 32]> = vec![[0; 32], [0xff; 32], [0x55; 32], [0xaa; 32]];
        cases.iter_mut().for_each(|c| c[31] &= 0x7f); // below 2^255
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..500 {
            let mut c = [0u8; 32];
            for b in c.iter_mut() {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *b = x as u8;
            }
            c[31] &= 0x7f;
            cases.push(c);
        }
        for c in cases {
            let digits = booth_digits(&c);
            for d in digits {
                assert!(d & 0x1f <= 16, "magnitude {d:#x}");
                assert!(d & 0x1f != 0 || d & 0x80 == 0, "negative zero {d:#x}");
            }
            assert_eq!(digits_value(&digits), le_limbs(&c), "{}", hex::encode(c));
        }
    }

    fn key(secret: [u8; 32]) -> SecretKey {
        SecretKey::from_bytes(&Zeroizing::new(secret)).expect("valid secret")
    }

    #[test]
    fn table_signature_equals_blst_signature() {
        let root = [0x42u8; 32];
        let hashed = HashedRoot::new(&root);
        let table = FixedBaseTable::new(hashed.point());
        // Small, large and pseudo-random secrets, including r - 1 (the largest).
        let r_minus_1 =
            hex::decode("73eda753299d7d483339d80809a1d80553bda402fffe5bfeffffffff00000000")
                .expect("hex");
        // 2^256 mod r and 2^255 mod r: the scalars nearest to the last window's edge cases.
        let edges = [
            "1824b159acc5056f998c4fefecbc4ff55884b7fa0003480200000001fffffffe",
            "0c1258acd66282b7ccc627f7f65e27faac425bfd0001a40100000000ffffffff",
        ];
        let mut secrets: Vec<[u8; 32]> = vec![r_minus_1.try_into().expect("32 bytes")];
        for e in edges {
            secrets.push(hex::decode(e).expect("hex").try_into().expect("32 bytes"));
        }
        for n in 1..=40u8 {
            let mut s = [0u8; 32];
            s[31] = n;
            secrets.push(s);
            let mut t = [n.wrapping_mul(151); 32];
            t[0] = n % 0x73; // big-endian: keep it below the group order
            secrets.push(t);
        }
        for s in secrets {
            let key = key(s);
            assert_eq!(
                key.sign_with_table(&table),
                key.sign(&root),
                "secret {}",
                hex::encode(s)
            );
        }
    }

    #[test]
    fn different_roots_give_different_tables() {
        let key = key([0x11; 32]);
        for root in [[1u8; 32], [2u8; 32]] {
            let table = FixedBaseTable::new(HashedRoot::new(&root).point());
            assert_eq!(key.sign_with_table(&table), key.sign(&root));
        }
    }
}
