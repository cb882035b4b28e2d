//! JSON primitives of the signing API: decimal-string integers and `0x` hex byte strings,
//! with the SSZ hashing of their consensus types.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, Visitor};
use tree_hash::{Hash256, PackedEncoding, TreeHash, TreeHashType};

/// A `uint64` sent as a decimal string (clients) or a JSON integer (tolerated).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Quantity(pub u64);

/// Parses an unsigned decimal integer: ASCII digits only, no sign, no whitespace.
pub fn parse_decimal_u64(s: &str) -> Result<u64, String> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("expected an unsigned decimal integer, got {s:?}"));
    }
    s.parse::<u64>()
        .map_err(|_| format!("integer {s} does not fit in uint64"))
}

struct QuantityVisitor;

impl Visitor<'_> for QuantityVisitor {
    type Value = Quantity;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an unsigned decimal integer string")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Quantity, E> {
        parse_decimal_u64(v).map(Quantity).map_err(E::custom)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Quantity, E> {
        Ok(Quantity(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Quantity, E> {
        u64::try_from(v)
            .map(Quantity)
            .map_err(|_| E::custom(format!("expected an unsigned integer, got {v}")))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Quantity, E> {
        // serde_json hands integers beyond u64 to us as floats too.
        Err(E::custom(format!(
            "expected an unsigned decimal integer within uint64, got {v}"
        )))
    }
}

impl<'de> Deserialize<'de> for Quantity {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(QuantityVisitor)
    }
}

impl TreeHash for Quantity {
    fn tree_hash_type() -> TreeHashType {
        u64::tree_hash_type()
    }

    fn tree_hash_packed_encoding(&self) -> PackedEncoding {
        self.0.tree_hash_packed_encoding()
    }

    fn tree_hash_packing_factor() -> usize {
        u64::tree_hash_packing_factor()
    }

    fn tree_hash_root(&self) -> Hash256 {
        self.0.tree_hash_root()
    }
}

/// Decodes `0x`-prefixed hex (either case) into bytes.
pub fn decode_prefixed_hex(s: &str) -> Option<Vec<u8>> {
    let digits = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X"))?;
    hex::decode(digits).ok()
}

/// A fixed-length byte string (SSZ `Vector[byte, N]`) sent as `0x` + 2N hex digits:
/// roots, versions, pubkeys, signatures, addresses.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Bytes<const N: usize>(pub [u8; N]);

impl<const N: usize> Bytes<N> {
    /// All zeros.
    pub const ZERO: Self = Bytes([0u8; N]);

    /// Parses `0x` + 2N hex digits.
    pub fn from_hex(s: &str) -> Result<Self, String> {
        let expected = || format!("expected 0x + {} hex digits", 2 * N);
        let bytes = decode_prefixed_hex(s).ok_or_else(expected)?;
        <[u8; N]>::try_from(bytes.as_slice())
            .map(Bytes)
            .map_err(|_| expected())
    }
}

impl<const N: usize> fmt::Debug for Bytes<N> {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "0x{}", hex::encode(self.0))
    }
}

struct BytesVisitor<const N: usize>;

impl<const N: usize> Visitor<'_> for BytesVisitor<N> {
    type Value = Bytes<N>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "0x + {} hex digits", 2 * N)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Bytes<N>, E> {
        Bytes::from_hex(v).map_err(E::custom)
    }
}

impl<'de, const N: usize> Deserialize<'de> for Bytes<N> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(BytesVisitor::<N>)
    }
}

impl<const N: usize> TreeHash for Bytes<N> {
    fn tree_hash_type() -> TreeHashType {
        TreeHashType::Vector
    }

    fn tree_hash_packed_encoding(&self) -> PackedEncoding {
        // Composite type: containers hash it by root, never by packing.
        PackedEncoding::from_slice(&self.0)
    }

    fn tree_hash_packing_factor() -> usize {
        1
    }

    fn tree_hash_root(&self) -> Hash256 {
        tree_hash::merkle_root(&self.0, 0)
    }
}

/// A 32-byte root.
pub type Bytes32 = Bytes<32>;
/// A 4-byte fork version or domain type.
pub type Bytes4 = Bytes<4>;
/// A 48-byte compressed BLS public key.
pub type PubkeyHex = Bytes<48>;
/// A 96-byte compressed BLS signature.
pub type SignatureHex = Bytes<96>;
/// A 20-byte execution address.
pub type AddressHex = Bytes<20>;

/// Variable-length `0x` hex bytes whose SSZ type is decided later (bitfields whose limit
/// depends on the fork).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HexBytes(pub Vec<u8>);

struct HexBytesVisitor;

impl Visitor<'_> for HexBytesVisitor {
    type Value = HexBytes;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("0x-prefixed hex")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<HexBytes, E> {
        decode_prefixed_hex(v)
            .map(HexBytes)
            .ok_or_else(|| E::custom("expected 0x-prefixed hex with an even number of digits"))
    }
}

impl<'de> Deserialize<'de> for HexBytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(HexBytesVisitor)
    }
}

/// A `uint256` sent as a decimal string (beacon-API `base_fee_per_gas`), kept as its 32
/// little-endian SSZ bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Uint256(pub [u8; 32]);

/// Parses an unsigned decimal integer below 2^256 into little-endian bytes.
pub fn parse_decimal_u256(s: &str) -> Result<[u8; 32], String> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("expected an unsigned decimal integer, got {s:?}"));
    }
    let mut value = [0u8; 32];
    for digit in s.bytes().map(|b| u32::from(b - b'0')) {
        // value = value * 10 + digit, byte by byte with carry.
        let mut carry = digit;
        for byte in value.iter_mut() {
            let next = u32::from(*byte) * 10 + carry;
            *byte = (next & 0xff) as u8;
            carry = next >> 8;
        }
        if carry != 0 {
            return Err(format!("integer {s} does not fit in uint256"));
        }
    }
    Ok(value)
}

struct Uint256Visitor;

impl Visitor<'_> for Uint256Visitor {
    type Value = Uint256;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an unsigned decimal integer string (uint256)")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Uint256, E> {
        parse_decimal_u256(v).map(Uint256).map_err(E::custom)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Uint256, E> {
        let mut value = [0u8; 32];
        value[..8].copy_from_slice(&v.to_le_bytes());
        Ok(Uint256(value))
    }
}

impl<'de> Deserialize<'de> for Uint256 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(Uint256Visitor)
    }
}

impl Uint256 {
    /// `hash_tree_root(uint256)`: its 32 bytes are one chunk.
    pub fn root(&self) -> Hash256 {
        Hash256::from(self.0)
    }
}

/// `hash_tree_root(ByteList[limit])` of `bytes` (the caller checked the length).
pub fn byte_list_root(bytes: &[u8], limit: usize) -> Hash256 {
    let chunks = limit.div_ceil(tree_hash::BYTES_PER_CHUNK);
    tree_hash::mix_in_length(&tree_hash::merkle_root(bytes, chunks), bytes.len())
}

/// The root of a container whose field roots are given in order.
pub fn container_root(field_roots: &[Hash256]) -> Hash256 {
    let mut bytes = Vec::with_capacity(field_roots.len() * 32);
    for root in field_roots {
        bytes.extend_from_slice(root.as_slice());
    }
    tree_hash::merkle_root(&bytes, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(json: &str) -> Result<Quantity, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn quantities() {
        assert_eq!(q("\"0\"").unwrap(), Quantity(0));
        assert_eq!(q("\"18446744073709551615\"").unwrap(), Quantity(u64::MAX));
        assert_eq!(q("42").unwrap(), Quantity(42));
        for bad in [
            "\"18446744073709551616\"",
            "\"-1\"",
            "-1",
            "\"+1\"",
            "\" 1\"",
            "\"\"",
            "\"0x10\"",
            "1.5",
            "18446744073709551616",
            "true",
        ] {
            assert!(q(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn fixed_bytes() {
        let b: Bytes4 = serde_json::from_str("\"0x0A0b0c0d\"").unwrap();
        assert_eq!(b.0, [10, 11, 12, 13]);
        for bad in [
            "\"0a0b0c0d\"",
            "\"0x0a0b0c\"",
            "\"0x0a0b0c0d0e\"",
            "\"0xzz0b0c0d\"",
            "7",
        ] {
            assert!(
                serde_json::from_str::<Bytes4>(bad).is_err(),
                "{bad} accepted"
            );
        }
        let err = serde_json::from_str::<Bytes32>("\"0x12\"").unwrap_err();
        assert!(
            err.to_string().contains("expected 0x + 64 hex digits"),
            "{err}"
        );
    }

    #[test]
    fn uint256_decimal() {
        let max = "115792089237316195423570985008687907853269984665640564039457584007913129639935";
        assert_eq!(parse_decimal_u256(max).unwrap(), [0xff; 32]);
        let mut seven_e9 = [0u8; 32];
        seven_e9[..8].copy_from_slice(&7_000_000_000u64.to_le_bytes());
        assert_eq!(parse_decimal_u256("7000000000").unwrap(), seven_e9);
        let mut two_64 = [0u8; 32];
        two_64[8] = 1;
        assert_eq!(parse_decimal_u256("18446744073709551616").unwrap(), two_64);
        for bad in [
            "115792089237316195423570985008687907853269984665640564039457584007913129639936",
            "",
            "-1",
            "0x10",
            "1 ",
        ] {
            assert!(parse_decimal_u256(bad).is_err(), "{bad} accepted");
        }
        assert!(serde_json::from_str::<Uint256>("true").is_err());
        assert_eq!(serde_json::from_str::<Uint256>("\"1\"").unwrap().0[0], 1);
    }

    #[test]
    fn byte_vector_roots() {
        let mut pk = [0u8; 48];
        pk[47] = 1;
        let mut expected = [0u8; 64];
        expected[47] = 1;
        assert_eq!(
            Bytes(pk).tree_hash_root(),
            tree_hash::merkle_root(&expected, 0)
        );
        assert_eq!(Bytes([7u8; 32]).tree_hash_root().0, [7u8; 32]);
    }
}
