//! The access middleware of the signing listener: the Host allow-list on every route, and
//! on the signing routes (`/api/v1/eth2/*`, also under `server.http_path_prefix`) the
//! client identity, inserted as an `Extension<ClientIdentity>` for the handlers.
//!
//! Other routes (health, the keymanager API with its own admin token) get the
//! certificate identity or `Anonymous`; their `Authorization` header is left alone.

use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;

use super::ApiError;
use crate::access::{AccessPolicy, ClientIdentity, Denied};
use crate::tls::listener::PeerInfo;

/// What the middleware needs: the policy and where the signing routes are.
struct AccessContext {
    policy: Arc<AccessPolicy>,
    /// `/api/v1/eth2`, and the same under the path prefix if there is one.
    signing_roots: Vec<String>,
}

/// Wraps every route of `app` (fallback included) in the access checks.
pub fn apply(app: Router, policy: Arc<AccessPolicy>, prefix: Option<&str>) -> Router {
    let mut signing_roots = vec!["/api/v1/eth2".to_string()];
    if let Some(p) = prefix
        .map(|p| p.trim_end_matches('/'))
        .filter(|p| !p.is_empty())
    {
        signing_roots.push(format!("{p}/api/v1/eth2"));
    }
    let context = Arc::new(AccessContext {
        policy,
        signing_roots,
    });
    app.layer(axum::middleware::from_fn_with_state(context, check))
}

async fn check(State(ctx): State<Arc<AccessContext>>, mut req: Request, next: Next) -> Response {
    match identify(&ctx, &req) {
        Ok(identity) => {
            req.extensions_mut().insert(identity);
            next.run(req).await
        }
        Err(denied) => {
            tracing::info!(
                path = %req.uri().path(),
                reason = %denied,
                "request refused by access control"
            );
            let error = match denied {
                Denied::Unauthorized(m) => ApiError::Unauthorized(m),
                Denied::Forbidden(m) => ApiError::Forbidden(m),
            };
            error.into_response()
        }
    }
}

fn identify(ctx: &AccessContext, req: &Request) -> Result<ClientIdentity, Denied> {
    ctx.policy.check_host(host(req).as_deref())?;
    let certificate = req
        .extensions()
        .get::<ConnectInfo<PeerInfo>>()
        .and_then(|ConnectInfo(peer)| peer.certificate);
    if !is_signing_route(&ctx.signing_roots, req.uri().path()) {
        return Ok(
            certificate.map_or(ClientIdentity::Anonymous, |fingerprint| {
                ctx.policy.certificate_identity(&fingerprint)
            }),
        );
    }
    let authorization = req
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    ctx.policy
        .identify(certificate.as_ref(), authorization.as_deref())
}

/// The Host header, or the URI authority (absolute-form requests); `None` if neither.
fn host(req: &Request) -> Option<String> {
    match req.headers().get(header::HOST) {
        Some(value) => Some(String::from_utf8_lossy(value.as_bytes()).into_owned()),
        None => req.uri().authority().map(|a| a.as_str().to_string()),
    }
}

fn is_signing_route(roots: &[String], path: &str) -> bool {
    roots.iter().any(|root| {
        path.strip_prefix(root.as_str())
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signing_routes_with_and_without_prefix() {
        let roots = vec![
            "/api/v1/eth2".to_string(),
            "/signer/api/v1/eth2".to_string(),
        ];
        assert!(is_signing_route(&roots, "/api/v1/eth2/sign/0xab"));
        assert!(is_signing_route(&roots, "/api/v1/eth2/publicKeys"));
        assert!(is_signing_route(&roots, "/signer/api/v1/eth2/sign/0xab"));
        assert!(!is_signing_route(&roots, "/eth/v1/keystores"));
        assert!(!is_signing_route(&roots, "/signer/eth/v1/keystores"));
        assert!(!is_signing_route(&roots, "/upcheck"));
        assert!(!is_signing_route(&roots, "/api/v1/eth2x"));
    }
}
