//! `/eth/v1/keystores`: the keymanager API's HTTP layer (the operations live in
//! `crate::keymanager`). Served only when `keymanager.enabled`; every request must carry
//! `Authorization: Bearer <token>`: none or a malformed header is 401, a wrong token 403.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};

use super::{error::ApiError, AppState};
use crate::keymanager::{ImportRequest, Keymanager, OpError, Services};

/// The path of every keymanager route.
pub const KEYSTORES_PATH: &str = "/eth/v1/keystores";

/// The keymanager routes, with their own body limit and the token check in front (before
/// the body is read).
pub fn routes(state: &Arc<AppState>, km: &Keymanager) -> Router<Arc<AppState>> {
    Router::new()
        .route(KEYSTORES_PATH, get(list).post(import).delete(delete_keys))
        .layer(DefaultBodyLimit::max(km.max_body_bytes()))
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(state),
            require_token,
        ))
}

/// Refuses requests without the right bearer token.
async fn require_token(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(km) = state.keymanager.as_deref() else {
        return ApiError::NotFound("the keymanager API is not enabled".into()).into_response();
    };
    match check_token(km, request.headers()) {
        Ok(()) => next.run(request).await,
        Err(e) => {
            tracing::warn!(status = e.status().as_u16(), message = %e, "keymanager request refused");
            e.into_response()
        }
    }
}

/// 401 for a missing or malformed `Authorization` header, 403 for a wrong token.
fn check_token(km: &Keymanager, headers: &HeaderMap) -> Result<(), ApiError> {
    let unauthorized = |m: &str| {
        km.metrics().auth_failure("missing");
        ApiError::Unauthorized(m.to_string())
    };
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(unauthorized(
            "missing Authorization header: send `Authorization: Bearer <token>` with the token from the keymanager token file",
        ));
    };
    let presented =
        value.to_str().ok().and_then(bearer_token).ok_or_else(|| {
            unauthorized("malformed Authorization header: expected `Bearer <token>`")
        })?;
    if km.token().matches(presented) {
        Ok(())
    } else {
        km.metrics().auth_failure("wrong");
        Err(ApiError::Forbidden("wrong keymanager API token".into()))
    }
}

/// The token of a `Bearer <token>` header value (scheme case-insensitive).
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// `GET`: every loaded key.
async fn list(State(state): State<Arc<AppState>>) -> Result<Response, ApiError> {
    let km = keymanager(&state)?;
    let data = km.list(&state.keys);
    Ok(Json(serde_json::json!({ "data": data })).into_response())
}

/// `POST`: import keystores (and their slashing protection).
async fn import(
    State(state): State<Arc<AppState>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let km = keymanager(&state)?;
    // The body holds passwords: keep it in memory that is wiped once parsed.
    let body = zeroize::Zeroizing::new(Vec::from(body.map_err(|r| body_error(km, r))?));
    let request = ImportRequest::parse(&body).map_err(op_error)?;
    drop(body);
    let statuses = km
        .import(services(&state), request)
        .await
        .map_err(op_error)?;
    Ok(Json(serde_json::json!({ "data": statuses })).into_response())
}

#[derive(serde::Deserialize)]
struct DeleteBody {
    pubkeys: Vec<String>,
}

/// `DELETE`: remove imported keys and export their slashing protection.
async fn delete_keys(
    State(state): State<Arc<AppState>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let km = keymanager(&state)?;
    let body = body.map_err(|r| body_error(km, r))?;
    let parsed: DeleteBody = crate::keymanager::parse_body(&body).map_err(op_error)?;
    let mut pubkeys = Vec::with_capacity(parsed.pubkeys.len());
    for (i, s) in parsed.pubkeys.iter().enumerate() {
        let pk = crate::keys::parse_pubkey(s).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "pubkeys[{i}] `{s}` is not a 48-byte hex public key; nothing deleted"
            ))
        })?;
        pubkeys.push(pk);
    }
    let response = km
        .delete(services(&state), pubkeys)
        .await
        .map_err(op_error)?;
    Ok(Json(response).into_response())
}

fn keymanager(state: &AppState) -> Result<&Arc<Keymanager>, ApiError> {
    state
        .keymanager
        .as_ref()
        .ok_or_else(|| ApiError::NotFound("the keymanager API is not enabled".into()))
}

fn services(state: &AppState) -> Services {
    Services {
        keys: Arc::clone(&state.keys),
        slashing: state.slashing.clone(),
        audit: Arc::clone(&state.audit),
        genesis_validators_root: state.signer.genesis.root(),
        loading_finished: state.key_progress.snapshot().finished,
    }
}

fn body_error(km: &Keymanager, rejection: BytesRejection) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::TooLarge(km.max_body_bytes())
    } else {
        ApiError::BadRequest(format!("cannot read request body: {rejection}"))
    }
}

fn op_error(e: OpError) -> ApiError {
    match e {
        OpError::BadRequest(m) => ApiError::BadRequest(m),
        OpError::Unavailable(m) => ApiError::Unavailable(m),
        OpError::Internal(m) => {
            tracing::error!(message = %m, "keymanager request failed");
            ApiError::Internal(m)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_header_parsing() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer  abc "), Some("abc"));
        assert_eq!(bearer_token("BEARER abc"), Some("abc"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearer"), None);
        assert_eq!(bearer_token("Bearer "), None);
        assert_eq!(bearer_token("abc"), None);
    }
}
