//! Stage 1: which key, and may this client use it.
//!
//! The scope is checked on the pubkey as parsed from the path, before the key table is
//! consulted: a scoped client learns nothing about which keys outside its scope are
//! loaded (it gets 403 for every one of them).

use std::borrow::Cow;
use std::sync::Arc;

use serde::Deserialize;

use super::{SignError, Signer};
use crate::access::ClientIdentity;
use crate::consensus::RequestType;
use crate::keys::{self, ValidatorKey};

impl Signer {
    /// The key for `pubkey` if `client` may use it and it is loaded; while keys are still
    /// loading a missing key may yet appear, so that answer is "still loading" rather
    /// than a definite "not here".
    pub(super) fn find_key(
        &self,
        client: &ClientIdentity,
        pubkey: &str,
    ) -> Result<Arc<ValidatorKey>, SignError> {
        let Some(parsed) = keys::parse_pubkey(pubkey) else {
            return Err(SignError::UnknownKey(pubkey.to_string()));
        };
        self.access
            .check_key(client, &parsed)
            .map_err(|e| SignError::OutOfScope(e.to_string()))?;
        if let Some(key) = self.keys.get(&parsed) {
            return Ok(key);
        }
        let progress = self.key_progress.snapshot();
        if !progress.finished {
            return Err(SignError::StillLoading {
                pubkey: pubkey.to_string(),
                done: progress.loaded + progress.failed,
                total: progress.total,
            });
        }
        Err(SignError::UnknownKey(pubkey.to_string()))
    }
}

/// The request type named by a body, without parsing or checking anything else; labels the
/// metrics of a request refused before its payload was read (an unknown key). `None` when
/// the body is not a JSON object with a known `type`.
pub(super) fn request_type_of(body: &[u8]) -> Option<RequestType> {
    #[derive(Deserialize)]
    struct TypeOnly<'a> {
        #[serde(rename = "type", borrow)]
        request_type: Option<Cow<'a, str>>,
    }
    let parsed: TypeOnly<'_> = serde_json::from_slice(body).ok()?;
    RequestType::from_wire(&parsed.request_type?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_type_is_read_without_the_payload() {
        assert_eq!(
            request_type_of(br#"{"type":"ATTESTATION","attestation":{"bad":1}}"#),
            Some(RequestType::Attestation)
        );
        assert_eq!(
            request_type_of(br#"{"fork_info":{},"type":"block_v2"}"#),
            Some(RequestType::BlockV2)
        );
        assert_eq!(request_type_of(br#"{"type":"NOPE"}"#), None);
        assert_eq!(request_type_of(br#"{"type":1}"#), None);
        assert_eq!(request_type_of(b"not json"), None);
        assert_eq!(request_type_of(b"{}"), None);
    }
}
