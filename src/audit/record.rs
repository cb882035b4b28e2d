//! The line format: one JSON object per line, fields in a fixed order
//! (`seq`, `time`, `prev`, `event`, then the event's own fields).
//!
//! Verification hashes the raw bytes of each line, so the order does not matter for the
//! chain; it is fixed so that lines are easy to read and diff.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The `prev` of the first line: 64 zeros.
pub const GENESIS_PREV: [u8; 32] = [0; 32];

/// SHA-256 of a line's bytes, without its newline.
pub fn line_hash(line: &[u8]) -> [u8; 32] {
    Sha256::digest(line).into()
}

/// An event waiting to be chained: everything but `seq` and `prev`, which only the writer
/// knows.
#[derive(Debug, Clone)]
pub struct Event {
    /// When it happened (RFC 3339, UTC, milliseconds), taken when the event was queued,
    /// not when it was written.
    pub time: String,
    /// `sign`, `key_load`, `key_import`, `log_open`, ...
    pub name: String,
    /// The event's own fields.
    pub fields: Fields,
}

impl Event {
    /// An event that happens now.
    pub fn now(name: impl Into<String>, fields: Fields) -> Self {
        Self {
            time: rfc3339_millis(SystemTime::now()),
            name: name.into(),
            fields,
        }
    }
}

/// The fields of each kind of event.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Fields {
    /// A signing decision.
    Sign(SignFields),
    /// A key lifecycle event.
    Key(KeyFields),
    /// A process opened the log.
    Open(OpenFields),
    /// A line torn by a crash was found at start and closed.
    Recovered(RecoveredFields),
}

/// A `sign` line. Absent facts (not parsed, not computed) are left out rather than null.
#[derive(Debug, Clone, Serialize)]
pub struct SignFields {
    /// The client identity, as displayed (`anonymous`, `token:NAME`, `cert:...`).
    pub client: String,
    /// The pubkey as requested (a client may send anything here; it is cut to a bound).
    pub pubkey: String,
    /// The request type (`BLOCK_V2`, `ATTESTATION`, ...), once parsed.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub request_type: Option<&'static str>,
    /// A block's slot.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slot: Option<u64>,
    /// An attestation's source epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_epoch: Option<u64>,
    /// An attestation's target epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_epoch: Option<u64>,
    /// `0x` + hex of the signing root, once computed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signing_root: Option<String>,
    /// `signed`, `slashing_refused`, `bad_request`, `unknown_key`, `forbidden`, `error`.
    pub outcome: &'static str,
    /// Why slashing protection refused (`double_vote`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
}

/// A key lifecycle line (`key_load`, `key_import`, `key_delete`, `key_seal`, ...).
#[derive(Debug, Clone, Serialize)]
pub struct KeyFields {
    /// `0x` + hex of the validator pubkey.
    pub pubkey: String,
    /// Where the key came from or went (a path, a source name); never a secret.
    pub detail: String,
}

/// A `log_open` line: which process started writing, so restarts are visible.
#[derive(Debug, Clone, Serialize)]
pub struct OpenFields {
    /// The command that opened the log (`keyguard run`, `keyguard keys seal`, ...).
    pub by: String,
    /// keyguard's version.
    pub version: &'static str,
    /// Process id.
    pub pid: u32,
}

/// A `log_recovered` line: it follows the torn line and chains to the last complete line
/// before it, so the torn bytes are kept (and hashed here) but are not part of the chain.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecoveredFields {
    /// Byte offset in the file where the torn line starts.
    pub torn_offset: u64,
    /// Length of the torn line in bytes (without the newline added to close it).
    pub torn_bytes: u64,
    /// Hex SHA-256 of the torn bytes.
    pub torn_sha256: String,
}

/// The line as written.
#[derive(Serialize)]
struct Line<'a> {
    seq: u64,
    time: &'a str,
    prev: &'a str,
    event: &'a str,
    #[serde(flatten)]
    fields: &'a Fields,
}

/// The bytes of one line (without its newline) for `event` at `seq` after `prev`.
pub fn encode(event: &Event, seq: u64, prev: &[u8; 32]) -> Result<Vec<u8>, serde_json::Error> {
    let prev = hex::encode(prev);
    serde_json::to_vec(&Line {
        seq,
        time: &event.time,
        prev: &prev,
        event: &event.name,
        fields: &event.fields,
    })
}

/// What the chain needs of a line read back: other fields are not interpreted.
#[derive(Debug, Deserialize)]
pub struct ParsedLine {
    /// Sequence number.
    pub seq: u64,
    /// Hex SHA-256 of the previous line.
    pub prev: String,
    /// Event name.
    pub event: String,
    /// Event time.
    pub time: String,
    /// Set on `log_recovered` lines.
    #[serde(default)]
    pub torn_offset: Option<u64>,
    /// Set on `log_recovered` lines.
    #[serde(default)]
    pub torn_sha256: Option<String>,
}

impl ParsedLine {
    /// Parses a line; the message says what is missing or malformed.
    pub fn parse(line: &[u8]) -> Result<Self, String> {
        let parsed: ParsedLine = serde_json::from_slice(line).map_err(|e| e.to_string())?;
        if parsed.prev.len() != 64 || hex::decode(&parsed.prev).is_err() {
            return Err("`prev` is not 64 hex digits".into());
        }
        if !parsed.time.ends_with('Z') {
            return Err("`time` is not an RFC 3339 UTC time".into());
        }
        Ok(parsed)
    }

    /// `prev` as bytes (checked by [`ParsedLine::parse`]).
    pub fn prev_bytes(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        // Length and digits were checked when parsing.
        if let Ok(bytes) = hex::decode(&self.prev) {
            if bytes.len() == 32 {
                out.copy_from_slice(&bytes);
            }
        }
        out
    }
}

/// RFC 3339 in UTC with milliseconds, e.g. `2023-11-14T22:13:20.123Z`. Written here
/// rather than with a date crate: this is the only date the crate formats.
pub fn rfc3339_millis(t: SystemTime) -> String {
    let ms = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let secs = i64::try_from(ms / 1000).unwrap_or(i64::MAX / 2);
    let millis = ms % 1000;
    let (days, sod) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    )
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar
/// (H. Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(ms: u64) -> String {
        rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms))
    }

    #[test]
    fn time_format() {
        assert_eq!(at(0), "1970-01-01T00:00:00.000Z");
        // `date -u -d @1700000000` = Tue Nov 14 22:13:20 UTC 2023.
        assert_eq!(at(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
        // A leap day: `date -u -d @951782400` = Tue Feb 29 00:00:00 UTC 2000.
        assert_eq!(at(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(at(951_868_799_999), "2000-02-29T23:59:59.999Z");
    }

    #[test]
    fn sign_line_has_fixed_field_order_and_omits_unknowns() {
        let event = Event {
            time: "2000-01-01T00:00:00.000Z".into(),
            name: "sign".into(),
            fields: Fields::Sign(SignFields {
                client: "anonymous".into(),
                pubkey: "0xab".into(),
                request_type: Some("BLOCK_V2"),
                slot: Some(7),
                source_epoch: None,
                target_epoch: None,
                signing_root: None,
                outcome: "signed",
                reason: None,
            }),
        };
        let line = encode(&event, 3, &GENESIS_PREV).unwrap();
        let expected = format!(
            "{{\"seq\":3,\"time\":\"2000-01-01T00:00:00.000Z\",\"prev\":\"{}\",\
             \"event\":\"sign\",\"client\":\"anonymous\",\"pubkey\":\"0xab\",\
             \"type\":\"BLOCK_V2\",\"slot\":7,\"outcome\":\"signed\"}}",
            "0".repeat(64)
        );
        assert_eq!(String::from_utf8(line).unwrap(), expected);
    }

    #[test]
    fn parse_rejects_bad_prev() {
        let line = br#"{"seq":1,"time":"t","prev":"zz","event":"sign"}"#;
        assert!(ParsedLine::parse(line).unwrap_err().contains("prev"));
        assert!(ParsedLine::parse(b"{\"seq\":1}").is_err());
    }

    #[test]
    fn hash_is_sha256_of_the_bytes() {
        // FIPS 180-2 test vector for "abc".
        assert_eq!(
            hex::encode(line_hash(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
