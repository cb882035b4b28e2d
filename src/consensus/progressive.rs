//! Progressive merkleization (EIP-7916 `ProgressiveList` / `ProgressiveBitList`, EIP-7495
//! `ProgressiveContainer`), which Gloas uses for attestations, bids, envelopes and
//! execution payloads (consensus-specs `specs/gloas/beacon-chain.md`, EIP-7688).
//! `tree_hash` 0.12 has none of it.
//!
//! Follows `ssz/merkle-proofs`/`ssz/simple-serialize.md` of consensus-specs and the
//! `eth-ssz-specs` package the executable spec ships with:
//! - `merkleize_progressive(chunks, n = 1)`: empty is the zero chunk; otherwise
//!   `hash(merkleize(chunks[..n], limit = n), merkleize_progressive(chunks[n..], 4n))`.
//! - a progressive list or bitlist mixes in its element (bit) count;
//! - a progressive container puts one leaf per `active_fields` position (a zero leaf for an
//!   inactive one) and mixes in the `active_fields` bits, lowest position first.

use tree_hash::{merkle_root, mix_in_length, Hash256, BYTES_PER_CHUNK};

use super::wire::container_root;

/// `merkleize_progressive` over packed chunk bytes (the last chunk may be short: it is
/// zero-padded like SSZ packing pads it).
pub fn merkleize_progressive(packed: &[u8]) -> Hash256 {
    merkleize_level(packed, 1)
}

fn merkleize_level(packed: &[u8], num_leaves: usize) -> Hash256 {
    if packed.is_empty() {
        return Hash256::ZERO;
    }
    let level_bytes = num_leaves.saturating_mul(BYTES_PER_CHUNK).min(packed.len());
    let (this_level, rest) = packed.split_at(level_bytes);
    let subtree = merkle_root(this_level, num_leaves);
    let successor = merkleize_level(rest, num_leaves.saturating_mul(4));
    container_root(&[subtree, successor])
}

/// The root of a `ProgressiveList` of basic elements, given their packed little-endian
/// serialization and their count.
pub fn progressive_list_root_packed(packed: &[u8], count: usize) -> Hash256 {
    mix_in_length(&merkleize_progressive(packed), count)
}

/// The root of a `ProgressiveList` of composite elements, given the elements' roots.
pub fn progressive_list_root(element_roots: &[Hash256]) -> Hash256 {
    let mut packed = Vec::with_capacity(element_roots.len() * BYTES_PER_CHUNK);
    for root in element_roots {
        packed.extend_from_slice(root.as_slice());
    }
    mix_in_length(&merkleize_progressive(&packed), element_roots.len())
}

/// Why bytes are not an SSZ bitlist.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BitListError {
    /// No bytes at all: even an empty bitlist has its delimiter byte.
    #[error("empty; an SSZ bitlist has at least the delimiter byte 0x01")]
    Empty,
    /// The last byte is zero, so there is no delimiter bit.
    #[error("last byte is 0x00; an SSZ bitlist ends with its delimiter bit")]
    NoDelimiter,
}

/// The root of a `ProgressiveBitList` given its SSZ serialization (bits, then a delimiter
/// bit, little-endian bit order): the bits without the delimiter, merkleized
/// progressively, with the bit count mixed in.
pub fn progressive_bitlist_root(ssz_bytes: &[u8]) -> Result<Hash256, BitListError> {
    let (&last, _) = ssz_bytes.split_last().ok_or(BitListError::Empty)?;
    if last == 0 {
        return Err(BitListError::NoDelimiter);
    }
    let delimiter = 7 - last.leading_zeros() as usize;
    let bit_count = (ssz_bytes.len() - 1) * 8 + delimiter;
    let mut bits = ssz_bytes.to_vec();
    let last_index = bits.len() - 1;
    bits[last_index] &= !(1u8 << delimiter);
    bits.truncate(bit_count.div_ceil(8));
    Ok(mix_in_length(&merkleize_progressive(&bits), bit_count))
}

/// The root of a `ProgressiveContainer` whose `active_fields` are all set (every Gloas
/// container so far), given its field roots in order.
pub fn progressive_container_root(field_roots: &[Hash256]) -> Hash256 {
    let active = vec![true; field_roots.len()];
    progressive_container_root_with(&active, field_roots)
        .unwrap_or_else(|| merkleize_progressive(&[]))
}

/// The root of a `ProgressiveContainer` with layout `active_fields`: one leaf per
/// position, the n-th field root at the n-th set position, zero at cleared ones. `None`
/// if the field count does not match the set positions, or the layout is empty, longer
/// than 256 positions, or ends in a cleared position (EIP-7495 forbids all three).
pub fn progressive_container_root_with(
    active_fields: &[bool],
    field_roots: &[Hash256],
) -> Option<Hash256> {
    let set = active_fields.iter().filter(|b| **b).count();
    let well_formed = set == field_roots.len()
        && active_fields.len() <= 256
        && active_fields.last() == Some(&true);
    if !well_formed {
        return None;
    }
    let mut packed = Vec::with_capacity(active_fields.len() * BYTES_PER_CHUNK);
    let mut roots = field_roots.iter();
    let mut word = [0u8; 32];
    for (position, active) in active_fields.iter().enumerate() {
        if *active {
            word[position / 8] |= 1 << (position % 8);
            packed.extend_from_slice(roots.next()?.as_slice());
        } else {
            packed.extend_from_slice(&[0u8; 32]);
        }
    }
    let subtree = merkleize_progressive(&packed);
    Some(container_root(&[subtree, Hash256::from(word)]))
}

#[cfg(test)]
mod tests {
    //! Expected roots from `eth-ssz-specs` 0.1.0 (the SSZ library of the executable spec,
    //! eth-consensus-specs 1.7.0b4), independent of this code.
    use super::*;

    fn h(s: &str) -> String {
        s.to_string()
    }

    /// SSZ bytes of a bitlist of `n` bits where bit i is set iff i % 3 == 0.
    fn pattern_bitlist(n: usize) -> Vec<u8> {
        let mut bytes = vec![0u8; n / 8 + 1];
        for i in (0..n).filter(|i| i % 3 == 0) {
            bytes[i / 8] |= 1 << (i % 8);
        }
        bytes[n / 8] |= 1 << (n % 8);
        bytes
    }

    #[test]
    fn bitlists_match_the_spec_library() {
        let cases = [
            (
                0,
                "f5a5fd42d16a20302798ef6ed309979b43003d2320d9f0e8ea9831a92759fb4b",
            ),
            (
                1,
                "905efb51c2764c2c7a4efb0548e372569df06db82115c3b1896c186632f3fe5b",
            ),
            (
                7,
                "9a69c6c7ef656493ce1542e66bf4099da222663abdc991c9b0fc128fe7417ef0",
            ),
            (
                8,
                "8cbcee4a4ed21464e60ee6bcf3b35b89d02d2bd8049a9437b9b357ed51787cdd",
            ),
            (
                255,
                "c3362ae9ebd383368b0b2a19d830219a39c34a482f2975536c82e16b39128702",
            ),
            (
                256,
                "25f01ef233dd44d2615671507b9a90483b7823f384453d6be67e24f0f6bfb0c6",
            ),
            (
                257,
                "3b797742367734f4124d6277656bf7206f61bf2a1fab5fab053023adb02591db",
            ),
            (
                1280,
                "5b67954f2df7779b2b26b94d418bf9c1f3e6265bdfac04b73eaac7abb8703fed",
            ),
            (
                1281,
                "c39c1056fe04ce33083c66c7f6735b32dda129eb53e7f8a8eda013638f3fdb72",
            ),
            (
                5377,
                "1d87bbcb302afda9c2fd6e37923e42e8d2c1d94f05d0007d9f7aa52df5f132e4",
            ),
        ];
        for (n, expected) in cases {
            let root = progressive_bitlist_root(&pattern_bitlist(n)).unwrap();
            assert_eq!(hex::encode(root), h(expected), "{n} bits");
        }
    }

    #[test]
    fn bitlist_without_delimiter_is_refused() {
        assert_eq!(progressive_bitlist_root(&[]), Err(BitListError::Empty));
        assert_eq!(
            progressive_bitlist_root(&[0xff, 0x00]),
            Err(BitListError::NoDelimiter)
        );
    }

    #[test]
    fn uint64_lists_match_the_spec_library() {
        let cases = [
            (
                0,
                "f5a5fd42d16a20302798ef6ed309979b43003d2320d9f0e8ea9831a92759fb4b",
            ),
            (
                1,
                "905efb51c2764c2c7a4efb0548e372569df06db82115c3b1896c186632f3fe5b",
            ),
            (
                4,
                "9ccae24728404b6b958fc580660e9c8dd0f8ed5ca0c9676433e03e544897dc13",
            ),
            (
                5,
                "ee310cc3d732f05465f673ed272e52f77dfdd0f81c3fd3695b1d4b31d6b2cb00",
            ),
            (
                21,
                "520ecfbb8c5c965025c30e5889c66a5854f2c4c908ff38042b8a87c7b04eebb0",
            ),
            (
                22,
                "98b905d92ed132c60cf62b9a6bfbbdd0f5cdaa54a3d1ee013e1e279e57c9be4f",
            ),
            (
                100,
                "abec3c0c25138e18227a6eac57c15a4b87b15eaa92b0012a4a672fffad300c4f",
            ),
        ];
        for (n, expected) in cases {
            let packed: Vec<u8> = (0..n as u64)
                .flat_map(|i| (i * 3 + 1).to_le_bytes())
                .collect();
            let root = progressive_list_root_packed(&packed, n);
            assert_eq!(hex::encode(root), h(expected), "{n} elements");
        }
    }

    fn uint_root(v: u64) -> Hash256 {
        let mut chunk = [0u8; 32];
        chunk[..8].copy_from_slice(&v.to_le_bytes());
        Hash256::from(chunk)
    }

    #[test]
    fn containers_match_the_spec_library() {
        let sparse = progressive_container_root_with(
            &[true, false, true, true, false, false, true],
            &[uint_root(1), uint_root(2), uint_root(3), uint_root(4)],
        )
        .unwrap();
        assert_eq!(
            hex::encode(sparse),
            "050edae99aba5a1dc1bb69051c309aeea19dab97027cf3e09475e4acfe124d6a"
        );
        let dense = progressive_container_root(&(1..=6).map(uint_root).collect::<Vec<_>>());
        assert_eq!(
            hex::encode(dense),
            "5b3a785823a6af49e9add04543130b578f8ad774048632aec9d765f0eb949eab"
        );
    }

    #[test]
    fn malformed_layouts_have_no_root() {
        let one = [uint_root(1)];
        assert!(progressive_container_root_with(&[true, false], &one).is_none());
        assert!(progressive_container_root_with(&[true, true], &one).is_none());
        assert!(progressive_container_root_with(&[], &[]).is_none());
    }
}
