//! Stage 1: which key, and may this client use it for this type of request.
//!
//! The scope is checked on the pubkey as parsed from the path, before the key table is
//! consulted: a scoped client learns nothing about which keys outside its scope are
//! loaded (it gets the same 403 for every one of them, loaded or not). The request type
//! named by the body is checked next, also before the table: a client not allowed a type
//! gets the same 403 for every key.

use std::borrow::Cow;
use std::sync::Arc;

use serde::Deserialize;

use super::{SignError, Signer};
use crate::access::ClientIdentity;
use crate::consensus::RequestType;
use crate::keys::{self, ValidatorKey};

impl Signer {
    /// The key for `pubkey` if `client` may use it (and may sign `request_type`, the type
    /// the body names, when it names one) and it is loaded; while keys are still loading a
    /// missing key may yet appear, so that answer is "still loading" rather than a
    /// definite "not here".
    pub(super) fn find_key(
        &self,
        client: &ClientIdentity,
        pubkey: &str,
        request_type: Option<RequestType>,
    ) -> Result<Arc<ValidatorKey>, SignError> {
        let Some(parsed) = keys::parse_pubkey(pubkey) else {
            return Err(SignError::UnknownKey(pubkey.to_string()));
        };
        self.access
            .check_key(client, &parsed)
            .map_err(|e| SignError::OutOfScope(e.to_string()))?;
        if let Some(request_type) = request_type {
            self.check_type(client, request_type)?;
        }
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

    /// Ok if `client` may sign requests of `request_type`.
    pub(super) fn check_type(
        &self,
        client: &ClientIdentity,
        request_type: RequestType,
    ) -> Result<(), SignError> {
        self.access
            .check_type(client, request_type)
            .map_err(|e| SignError::TypeNotAllowed(e.to_string()))
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
