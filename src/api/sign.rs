//! `POST /api/v1/eth2/sign/{pubkey}`: HTTP in and out of the signing pipeline
//! ([`crate::signer`]), which decides everything else. Every request first takes its turn
//! in the signing queue ([`crate::signer::queue`]): by its type's priority, as its
//! client (identity, or peer address if anonymous); a request shed there is answered 503
//! before the pipeline sees it. A client over its allowance of cheap refusals (unknown
//! key, scope, malformed) gets them late ([`crate::signer::queue`]'s tarpit).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;

use super::{error::ApiError, AppState};
use crate::access::ClientIdentity;
use crate::keys::SignatureBytes;
use crate::signer::queue::{ClientKey, Priority};
use crate::signer::BodyError;
use crate::tls::listener::PeerInfo;

/// The handler: the signature (as JSON or text) or the refusal's status and JSON message.
pub async fn sign(
    State(state): State<Arc<AppState>>,
    Path(pubkey): Path<String>,
    client: Option<Extension<ClientIdentity>>,
    peer: Option<Extension<ConnectInfo<PeerInfo>>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let client = client.map_or(ClientIdentity::Anonymous, |Extension(c)| c);
    let body = match &body {
        Ok(bytes) => Ok(&bytes[..]),
        Err(rejection) => Err(body_error(&state, rejection)),
    };
    let peer = peer.map(|Extension(ConnectInfo(p))| p.addr.ip());
    let priority = body
        .as_ref()
        .map_or(Priority::Background, |b| Priority::of_body(b));
    let client_key = ClientKey::of(&client, peer);
    // Held until the answer is decided: the next request starts when this one is done.
    let permit = match state
        .signing_queue
        .admit(client_key.clone(), priority)
        .await
    {
        Ok(permit) => permit,
        Err(shed) => return ApiError::from(shed).into_response(),
    };
    // The signature's turn in the BLS pool is taken under the same client key.
    let outcome = state
        .signer
        .sign_as(&client, client_key.clone(), &pubkey, body)
        .await;
    drop(permit);
    match outcome {
        Ok(signed) => signature_response(&headers, &signed.signature),
        Err(err) => {
            // A client that keeps being refused cheaply waits for its answer, holding its
            // connection but no place in the pipeline (the permit is gone).
            state.signing_queue.hold_refusal(&client_key, &err).await;
            ApiError::from(err).into_response()
        }
    }
}

fn body_error(state: &AppState, rejection: &BytesRejection) -> BodyError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        BodyError::TooLarge(state.max_body_bytes)
    } else {
        BodyError::Unreadable(rejection.to_string())
    }
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
