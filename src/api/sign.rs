//! `POST /api/v1/eth2/sign/{pubkey}`: the signing path.
//!
//! Order, never changed for speed: look up the key -> recompute the signing root from the
//! payload -> (blocks and attestations) check and record durably in the slashing database
//! -> sign -> respond.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;

use super::{error::ApiError, AppState};
use crate::access::ClientIdentity;
use crate::audit::{AuditReservation, SigningDecision};
use crate::consensus::{self, PreparedRequest, RequestType, SlashingSubject};
use crate::keys::{self, PubkeyBytes, SignatureBytes, ValidatorKey};
use crate::metrics::{Outcome, UNKNOWN_REQUEST_TYPE};

/// What became known about a request on its way through the signing path; the audit log
/// records it whatever the outcome.
#[derive(Default)]
struct Progress {
    request_type: Option<RequestType>,
    subject: Option<SlashingSubject>,
    signing_root: Option<[u8; 32]>,
    /// The decision's place in the audit queue, held from before slashing protection
    /// records anything until the outcome is known.
    audit: Option<AuditReservation>,
}

/// The handler: turns the outcome into a response (signature or JSON error).
pub async fn sign(
    State(state): State<Arc<AppState>>,
    Path(pubkey): Path<String>,
    client: Option<Extension<ClientIdentity>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let started = Instant::now();
    let client = client.map_or(ClientIdentity::Anonymous, |Extension(c)| c);
    let mut progress = Progress::default();
    let result = sign_request(&state, &client, &pubkey, body, &mut progress).await;
    let type_label = progress
        .request_type
        .map_or(UNKNOWN_REQUEST_TYPE, |t| t.as_str());
    let outcome = match &result {
        Ok(_) => Outcome::Signed,
        Err(err) => err.outcome(),
    };
    state
        .metrics
        .observe_request(type_label, outcome, started.elapsed());
    let decision = SigningDecision {
        client: &client,
        pubkey: &pubkey,
        request_type: progress.request_type,
        subject: progress.subject,
        signing_root: progress.signing_root,
        outcome,
    };
    state.audit.record_signing(&decision, progress.audit.take());
    match result {
        Ok(signature) => signature_response(&headers, &signature),
        Err(err) => {
            log_refusal(&pubkey, &err);
            err.into_response()
        }
    }
}

/// Everything between the request and the signature; no response formatting.
async fn sign_request(
    state: &AppState,
    client: &ClientIdentity,
    pubkey: &str,
    body: Result<Bytes, BytesRejection>,
    progress: &mut Progress,
) -> Result<SignatureBytes, ApiError> {
    let key = lookup_key(state, pubkey)?;
    state
        .access
        .check_key(client, key.pubkey())
        .map_err(|e| ApiError::Forbidden(e.to_string()))?;
    let body = body.map_err(|rejection| body_error(state, rejection))?;
    let prepared = consensus::prepare(&body, &state.network)
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    progress.request_type = Some(prepared.request_type);
    progress.subject = prepared.slashing;
    progress.signing_root = Some(prepared.signing_root);
    // With `audit.on_failure = "refuse"`, nothing is recorded or signed while the audit
    // log is broken, and a signature is released only with a place for its record.
    let reservation = state.audit.ready().map_err(|e| {
        tracing::error!(reason = %e.0, "refused: the audit log cannot be written");
        ApiError::Internal(format!("{e}; nothing signed"))
    })?;
    progress.audit = Some(reservation);
    if let Some(subject) = prepared.slashing {
        protect(state, key.pubkey(), &prepared, subject).await?;
    }
    let signature = state
        .signer
        .sign(key, prepared.signing_root)
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(signature)
}

/// The key, or 404; while keys are still loading a missing key may yet appear, so the
/// answer is 503 (try again) rather than a definite "not here".
fn lookup_key(state: &AppState, pubkey: &str) -> Result<Arc<ValidatorKey>, ApiError> {
    let parsed: Option<PubkeyBytes> = keys::parse_pubkey(pubkey);
    if let Some(key) = parsed.and_then(|pk| state.keys.get(&pk)) {
        return Ok(key);
    }
    let progress = state.key_progress.snapshot();
    if parsed.is_some() && !progress.finished {
        return Err(ApiError::Unavailable(format!(
            "keys are still loading ({} of {} done); public key {pubkey} is not loaded yet",
            progress.loaded + progress.failed,
            progress.total
        )));
    }
    Err(ApiError::NotFound(format!(
        "no key for public key {pubkey} is loaded"
    )))
}

fn body_error(state: &AppState, rejection: BytesRejection) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::TooLarge(state.max_body_bytes)
    } else {
        ApiError::BadRequest(format!("cannot read request body: {rejection}"))
    }
}

/// Checks and durably records a block or attestation. Returns only after the record has
/// committed; any database problem refuses the request (fail closed).
async fn protect(
    state: &AppState,
    pubkey: &PubkeyBytes,
    prepared: &PreparedRequest,
    subject: SlashingSubject,
) -> Result<(), ApiError> {
    let Some(db) = &state.slashing else {
        tracing::warn!(?subject, "refused: slashing protection is not configured");
        return Err(ApiError::Refused {
            reason: "not_configured",
            message: format!(
                "{} refused: slashing protection is not configured, and blocks and \
                 attestations are never signed unprotected",
                prepared.request_type.as_str()
            ),
        });
    };
    let gvr = prepared.genesis_validators_root.ok_or_else(|| {
        ApiError::BadRequest("fork_info.genesis_validators_root is required".into())
    })?;
    let root = prepared.signing_root;
    let db_subject = match subject {
        SlashingSubject::Block { slot } => slashing_db::Subject::Block {
            slot: slashing_db::Slot(slot),
        },
        SlashingSubject::Attestation {
            source_epoch,
            target_epoch,
        } => slashing_db::Subject::Attestation {
            source: slashing_db::Epoch(source_epoch),
            target: slashing_db::Epoch(target_epoch),
        },
    };
    let result = db
        .check_and_record(gvr.into(), (*pubkey).into(), db_subject, root.into())
        .await;
    result.map(|_approval| ()).map_err(|e| match e {
        slashing_db::SignCheckError::Refused(refusal) => {
            tracing::warn!(
                pubkey = %keys::pubkey_hex(pubkey),
                r#type = prepared.request_type.as_str(),
                ?subject,
                reason = refusal.reason(),
                "refused by slashing protection: {refusal}"
            );
            ApiError::Refused {
                reason: refusal.reason(),
                message: format!("slashing protection: {refusal}"),
            }
        }
        slashing_db::SignCheckError::Db(db_err) => {
            ApiError::Internal(format!("slashing database error, nothing signed: {db_err}"))
        }
    })
}

/// 200 with the signature: JSON if the client accepts JSON (or anything), else plain text.
fn signature_response(headers: &HeaderMap, signature: &SignatureBytes) -> Response {
    let hex = format!("0x{}", hex::encode(signature));
    if accepts_json(headers) {
        axum::Json(serde_json::json!({ "signature": hex })).into_response()
    } else {
        ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], hex).into_response()
    }
}

/// True if any `Accept` value is `application/json` or `*/*` (parameters ignored).
fn accepts_json(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|item| item.split(';').next().unwrap_or("").trim())
        .any(|media| media.eq_ignore_ascii_case("application/json") || media == "*/*")
}

/// One log line per refused request: slashing refusals at WARN (an operator must see
/// them), client errors at INFO, internal errors at ERROR.
fn log_refusal(pubkey: &str, err: &ApiError) {
    match err {
        // Logged where the refusal is decided, with the slot or epochs.
        ApiError::Refused { .. } => {}
        ApiError::Internal(message) => tracing::error!(%pubkey, %message, "not signed"),
        other => {
            tracing::info!(%pubkey, message = %other, status = other.status().as_u16(), "bad request")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn with_accept(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(header::ACCEPT, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn accept_negotiation() {
        assert!(!accepts_json(&with_accept(&[])));
        assert!(!accepts_json(&with_accept(&["text/plain"])));
        assert!(accepts_json(&with_accept(&["application/json"])));
        assert!(accepts_json(&with_accept(&["*/*"])));
        assert!(accepts_json(&with_accept(&[
            "text/plain",
            "application/json"
        ])));
        assert!(accepts_json(&with_accept(&[
            "text/plain, application/json; q=0.9"
        ])));
        assert!(accepts_json(&with_accept(&["Application/JSON"])));
    }
}
