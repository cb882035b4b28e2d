//! SHA-256 certificate fingerprints: computed over the DER certificate, written as hex
//! with or without `:` separators, in either case (the form `openssl x509 -fingerprint
//! -sha256` and `keytool -list` print, and the plain form `sha256sum` prints).

use sha2::{Digest, Sha256};

/// The SHA-256 of a DER certificate.
pub type Fingerprint = [u8; 32];

/// A fingerprint that is not 32 bytes of hex.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a SHA-256 fingerprint (64 hex digits, `:` separators allowed)")]
pub struct BadFingerprint(pub String);

/// The fingerprint of a DER certificate.
pub fn of_der(der: &[u8]) -> Fingerprint {
    Sha256::digest(der).into()
}

/// Parses `AB:CD:...`, `ab:cd:...` or `abcd...`; an optional `sha256:` style prefix is
/// not accepted, so that a fingerprint of another hash cannot be mistaken for one.
pub fn parse(text: &str) -> Result<Fingerprint, BadFingerprint> {
    let trimmed = text.trim();
    let digits: String = if trimmed.contains(':') {
        // With separators every group must be exactly one byte, so `A:BC` is refused.
        let groups: Vec<&str> = trimmed.split(':').collect();
        if groups.iter().any(|g| g.len() != 2) {
            return Err(BadFingerprint(text.to_string()));
        }
        groups.concat()
    } else {
        trimmed.to_string()
    };
    let mut out = [0u8; 32];
    hex::decode_to_slice(&digits, &mut out).map_err(|_| BadFingerprint(text.to_string()))?;
    Ok(out)
}

/// `AB:CD:...`, the form Web3Signer's known-clients file and `keytool` use.
pub fn to_colon_hex(fingerprint: &Fingerprint) -> String {
    fingerprint
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    const COLON_UPPER: &str =
        "DF:65:B8:02:08:5E:91:82:0F:91:F5:1C:96:56:92:C4:1A:F6:C6:27:FD:6C:FC:31:F2:BB:90:17:22:59:5B:50";
    const PLAIN_LOWER: &str = "df65b802085e91820f91f51c965692c41af6c627fd6cfc31f2bb901722595b50";

    #[test]
    fn accepts_every_spelling_of_the_same_fingerprint() {
        let expected: Fingerprint = [
            0xdf, 0x65, 0xb8, 0x02, 0x08, 0x5e, 0x91, 0x82, 0x0f, 0x91, 0xf5, 0x1c, 0x96, 0x56,
            0x92, 0xc4, 0x1a, 0xf6, 0xc6, 0x27, 0xfd, 0x6c, 0xfc, 0x31, 0xf2, 0xbb, 0x90, 0x17,
            0x22, 0x59, 0x5b, 0x50,
        ];
        assert_eq!(parse(COLON_UPPER), Ok(expected));
        assert_eq!(parse(&COLON_UPPER.to_lowercase()), Ok(expected));
        assert_eq!(parse(PLAIN_LOWER), Ok(expected));
        assert_eq!(parse(&PLAIN_LOWER.to_uppercase()), Ok(expected));
        assert_eq!(parse(&format!("  {PLAIN_LOWER}\n")), Ok(expected));
    }

    #[test]
    fn refuses_wrong_lengths_and_bad_groups() {
        assert!(parse("").is_err());
        assert!(parse(&PLAIN_LOWER[..62]).is_err());
        assert!(parse(&format!("{PLAIN_LOWER}00")).is_err());
        assert!(parse(&PLAIN_LOWER.replace('d', "g")).is_err());
        // A SHA-1 fingerprint (20 bytes) must not pass.
        assert!(parse("12:CA:86:0E:FE:BF:49:BD:AE:8C:C5:7F:2F:C3:48:3F:DA:EC:E2:9D").is_err());
        // Misplaced separators.
        assert!(parse(&COLON_UPPER.replacen(":", "", 1)).is_err());
    }

    #[test]
    fn colon_hex_is_upper_case_with_separators() {
        let fp = parse(PLAIN_LOWER).unwrap();
        assert_eq!(to_colon_hex(&fp), COLON_UPPER);
    }

    #[test]
    fn fingerprint_of_der_is_sha256() {
        // sha256("abc"), the FIPS 180-2 test vector.
        assert_eq!(
            hex::encode(of_der(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
