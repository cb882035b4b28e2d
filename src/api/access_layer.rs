//! The access middleware of the signing listener: the Host allow-list on every route, and
//! on the signing routes (`/api/v1/eth2/*`, also under `server.http_path_prefix`) the
//! client identity, inserted as an `Extension<ClientIdentity>` for the handlers.
//!
//! Other routes (health, the keymanager API with its own admin token) get the
//! certificate identity or `Anonymous`; their `Authorization` header is left alone.

use std::borrow::Cow;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;

use super::ApiError;
use crate::access::{AccessPolicy, ClientIdentity, Denied};
use crate::audit::{AuditLog, RefusedFields};
use crate::signer::queue::{ClientKey, SigningQueue};
use crate::tls::listener::PeerInfo;

/// What the middleware needs: the policy, the audit log, the signing queue (its tarpit
/// holds refusals of clients over their allowance) and where the signing routes are.
struct AccessContext {
    policy: Arc<AccessPolicy>,
    audit: Arc<AuditLog>,
    queue: Arc<SigningQueue>,
    /// `/api/v1/eth2`, and the same under the path prefix if there is one.
    signing_roots: Vec<String>,
}

/// Wraps every route of `app` (fallback included) in the access checks; every refusal is
/// an `access_refused` event in `audit`, answered late by `queue`'s tarpit when the peer
/// is over its allowance of cheap refusals.
pub fn apply(
    app: Router,
    policy: Arc<AccessPolicy>,
    audit: Arc<AuditLog>,
    queue: Arc<SigningQueue>,
    prefix: Option<&str>,
) -> Router {
    let mut signing_roots = vec!["/api/v1/eth2".to_string()];
    if let Some(p) = prefix
        .map(|p| p.trim_end_matches('/'))
        .filter(|p| !p.is_empty())
    {
        signing_roots.push(format!("{p}/api/v1/eth2"));
    }
    let context = Arc::new(AccessContext {
        policy,
        audit,
        queue,
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
            let path = crate::log_safe::path_segment(req.uri().path());
            tracing::info!(
                %path,
                reason = %crate::log_safe::text(&denied.to_string()),
                "request refused by access control"
            );
            let reason = denied.reason().as_str();
            let error = match denied {
                Denied::Unauthorized(_, m) => ApiError::Unauthorized(m),
                Denied::Forbidden(_, m) => ApiError::Forbidden(m),
            };
            let peer = peer(&req);
            ctx.audit.record_access_refused(RefusedFields {
                client: presented_credentials(&ctx.policy, &req),
                peer: peer.map(|p| p.addr.to_string()),
                path,
                reason,
                status: error.status().as_u16(),
            });
            // Refused before any identity was accepted: the peer's address is the client.
            let client = ClientKey::of(&ClientIdentity::Anonymous, peer.map(|p| p.addr.ip()));
            ctx.queue.hold_access_refusal(&client).await;
            error.into_response()
        }
    }
}

/// The connection's peer, when the server recorded it.
fn peer(req: &Request) -> Option<&PeerInfo> {
    req.extensions()
        .get::<ConnectInfo<PeerInfo>>()
        .map(|ConnectInfo(peer)| peer)
}

/// The `client` of an `access_refused` line: the certificate's identity when the
/// connection has one, else `token` when an `Authorization` header was sent (not
/// accepted), else `anonymous`.
fn presented_credentials(policy: &AccessPolicy, req: &Request) -> String {
    match peer(req).and_then(|p| p.certificate) {
        Some(fingerprint) => policy.certificate_identity(&fingerprint).to_string(),
        None if req.headers().contains_key(header::AUTHORIZATION) => "token".into(),
        None => ClientIdentity::Anonymous.to_string(),
    }
}

fn identify(ctx: &AccessContext, req: &Request) -> Result<ClientIdentity, Denied> {
    ctx.policy.check_host(host(req).as_deref())?;
    let certificate = peer(req).and_then(|peer| peer.certificate);
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
        .map(|v| String::from_utf8_lossy(v.as_bytes()));
    ctx.policy
        .identify(certificate.as_ref(), authorization.as_deref())
}

/// The Host header, or the URI authority (absolute-form requests); `None` if neither.
/// Borrowed (no allocation) unless the header is not valid UTF-8.
fn host(req: &Request) -> Option<Cow<'_, str>> {
    match req.headers().get(header::HOST) {
        Some(value) => Some(String::from_utf8_lossy(value.as_bytes())),
        None => req.uri().authority().map(|a| Cow::Borrowed(a.as_str())),
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
    use crate::access::{AccessConfig, ClientConfig};
    use crate::signer::queue::{QueueLimits, QueueMetrics, RefusalLimits};
    use axum::body::Body;
    use axum::extract::Extension;
    use axum::http::{Request as HttpRequest, StatusCode};
    use axum::routing::get;
    use tower::ServiceExt;

    /// Echoes the identity the layer resolved.
    async fn whoami(identity: Option<Extension<ClientIdentity>>) -> String {
        identity.map_or("none".into(), |Extension(id)| id.to_string())
    }

    struct Fixture {
        app: Router,
        _dir: tempfile::TempDir,
    }

    /// Hosts: localhost only. Client `vc` with token `t0k3n-4f9a2c7e1b8d3a6f0e5c` and certificate [7; 32].
    fn fixture(require_known_client: bool) -> Fixture {
        fixture_with_queue(
            require_known_client,
            SigningQueue::new(QueueLimits::default(), None),
        )
    }

    fn fixture_with_queue(require_known_client: bool, queue: Arc<SigningQueue>) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let token = dir.path().join("vc.token");
        std::fs::write(&token, "t0k3n-4f9a2c7e1b8d3a6f0e5c").unwrap();
        let config = AccessConfig {
            allowed_hosts: vec!["localhost".into()],
            require_known_client,
            clients: vec![ClientConfig {
                name: "vc".into(),
                fingerprints: vec![hex::encode([7u8; 32])],
                token_file: Some(token),
                ..Default::default()
            }],
        };
        let policy = Arc::new(AccessPolicy::from_config(&config, &[]).unwrap());
        let routes = Router::new()
            .route("/api/v1/eth2/publicKeys", get(whoami))
            .route("/eth/v1/keystores", get(whoami))
            .route("/upcheck", get(whoami));
        let app = Router::new().nest("/signer", routes.clone()).merge(routes);
        Fixture {
            app: apply(
                app,
                policy,
                Arc::new(AuditLog::disabled()),
                queue,
                Some("/signer/"),
            ),
            _dir: dir,
        }
    }

    async fn call(
        f: &Fixture,
        path: &str,
        headers: &[(&str, &str)],
        peer: Option<PeerInfo>,
    ) -> (StatusCode, String) {
        let mut req = HttpRequest::builder().uri(path);
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let mut req = req.body(Body::empty()).unwrap();
        if let Some(peer) = peer {
            req.extensions_mut().insert(ConnectInfo(peer));
        }
        let resp = f.app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }

    const LOCAL: (&str, &str) = ("host", "localhost:9000");

    #[tokio::test]
    async fn foreign_or_missing_host_is_refused_with_a_json_message() {
        let f = fixture(false);
        for path in [
            "/upcheck",
            "/eth/v1/keystores",
            "/api/v1/eth2/publicKeys",
            "/nope",
        ] {
            let (status, body) = call(&f, path, &[("host", "evil.example")], None).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
            let json: serde_json::Value = serde_json::from_str(&body).unwrap();
            assert_eq!(
                json["message"],
                "Host header `evil.example` is not allowed; add it to access.allowed_hosts"
            );
        }
        let (status, _) = call(&f, "/upcheck", &[], None).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }

    #[tokio::test]
    async fn token_identifies_on_signing_routes_with_and_without_prefix() {
        let f = fixture(false);
        let auth = ("authorization", "Bearer t0k3n-4f9a2c7e1b8d3a6f0e5c");
        for path in ["/api/v1/eth2/publicKeys", "/signer/api/v1/eth2/publicKeys"] {
            let (status, body) = call(&f, path, &[LOCAL, auth], None).await;
            assert_eq!(
                (status, body.as_str()),
                (StatusCode::OK, "token:vc"),
                "{path}"
            );
            let (status, _) =
                call(&f, path, &[LOCAL, ("authorization", "Bearer nope")], None).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
            let (status, _) = call(&f, path, &[LOCAL, ("authorization", "Basic eDp5")], None).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
        }
    }

    #[tokio::test]
    async fn other_routes_ignore_the_authorization_header() {
        let f = fixture(true);
        // The keymanager's admin token is not a client token: it must pass untouched.
        for path in ["/eth/v1/keystores", "/signer/eth/v1/keystores", "/upcheck"] {
            let headers = [LOCAL, ("authorization", "Bearer keymanager-admin-token")];
            let (status, body) = call(&f, path, &headers, None).await;
            assert_eq!(
                (status, body.as_str()),
                (StatusCode::OK, "anonymous"),
                "{path}"
            );
        }
    }

    #[tokio::test]
    async fn certificate_from_the_connection_identifies_the_client() {
        let f = fixture(true);
        let peer = |fp| PeerInfo {
            addr: "127.0.0.1:5000".parse().unwrap(),
            certificate: Some(fp),
        };
        let (status, body) =
            call(&f, "/api/v1/eth2/publicKeys", &[LOCAL], Some(peer([7; 32]))).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, format!("cert:vc:{}", hex::encode([7u8; 32])));
        // require_known_client: an unnamed certificate and an anonymous caller are refused.
        let (status, _) = call(&f, "/api/v1/eth2/publicKeys", &[LOCAL], Some(peer([8; 32]))).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, _) = call(&f, "/api/v1/eth2/publicKeys", &[LOCAL], None).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }

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

    /// A peer over its allowance of cheap refusals gets its 401s and 403s late (the
    /// signing queue's tarpit, as for unknown keys), other peers and accepted requests
    /// on time.
    #[tokio::test]
    async fn refusals_beyond_the_allowance_are_answered_late() {
        let registry = prometheus::Registry::new();
        let metrics = QueueMetrics::register(&registry).unwrap();
        let limits = QueueLimits {
            refusals: RefusalLimits { burst: 1, rate: 2 },
            ..QueueLimits::default()
        };
        let f = fixture_with_queue(true, SigningQueue::new(limits, Some(metrics)));
        let tarpitted = || {
            registry
                .gather()
                .iter()
                .filter(|m| m.name() == "keyguard_signing_queue_tarpitted_total")
                .flat_map(|m| m.get_metric())
                .map(|m| m.get_counter().value())
                .sum::<f64>()
        };
        let from = |ip: &str| PeerInfo {
            addr: format!("{ip}:5000").parse().unwrap(),
            certificate: None,
        };
        let bad_token = [LOCAL, ("authorization", "Bearer wrong")];
        let basic = [LOCAL, ("authorization", "Basic eDp5")];
        let path = "/api/v1/eth2/publicKeys";
        // The burst: on time.
        let (status, _) = call(&f, path, &bad_token, Some(from("10.0.0.9"))).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(tarpitted(), 0.0);
        // Beyond it: held about half a second (one refusal owed at 2 a second); a 401
        // counts like a 403.
        let started = std::time::Instant::now();
        let (status, _) = call(&f, path, &basic, Some(from("10.0.0.9"))).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(tarpitted(), 1.0);
        assert!(started.elapsed() >= std::time::Duration::from_millis(300));
        // A 403 (Host not allowed) of the same peer counts too.
        let (status, _) = call(
            &f,
            path,
            &[("host", "evil.example")],
            Some(from("10.0.0.9")),
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(tarpitted(), 2.0);
        // Another peer has its own allowance; an accepted request is never held.
        let (status, _) = call(&f, path, &bad_token, Some(from("10.0.0.10"))).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let token = [
            LOCAL,
            ("authorization", "Bearer t0k3n-4f9a2c7e1b8d3a6f0e5c"),
        ];
        let (status, _) = call(&f, path, &token, Some(from("10.0.0.9"))).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(tarpitted(), 2.0);
    }
}
