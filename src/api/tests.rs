//! In-process tests of the HTTP layer: routing, status codes, error bodies, content
//! negotiation and the slashing gate. Signing-root correctness is proven by the
//! known-answer fixtures in `interop-tests/`.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use tower::ServiceExt;
use zeroize::Zeroizing;

use super::*;
use crate::keys::{KeySource, ValidatorKey};
use crate::signer::{Signer, SigningPool};

const MAINNET_GVR: &str = "0x4b363db94e286120d76eb905340fdd4e54bfe9f06bf33ff6cf5ad27f511bfe95";

fn test_key(n: u8) -> ValidatorKey {
    let mut b = [0u8; 32];
    b[31] = n;
    ValidatorKey::from_secret_bytes(&Zeroizing::new(b), KeySource::Interop, format!("test-{n}"))
        .unwrap()
}

struct Harness {
    state: Arc<AppState>,
    pubkey: String,
    _dir: Option<tempfile::TempDir>,
}

fn harness(with_db: bool) -> Harness {
    let keys = Arc::new(KeyTable::new());
    let key = keys.insert(test_key(1)).unwrap();
    let progress = Arc::new(LoadProgress::new());
    progress.add_total(1);
    progress.record_loaded();
    progress.finish();
    let dir = with_db.then(|| tempfile::tempdir().unwrap());
    let slashing = dir.as_ref().map(|d| {
        slashing_db::SlashingDb::open(&d.path().join("db.sqlite"), Default::default()).unwrap()
    });
    let state = Arc::new(AppState::new(
        Signer {
            genesis: crate::signer::GenesisPin::at_startup(
                &Network::builtin("mainnet").unwrap(),
                None,
            )
            .unwrap(),
            future_guard: crate::signer::FutureGuard::new(
                &Network::builtin("mainnet").unwrap(),
                64,
                Arc::new(crate::signer::clock::SystemClock),
            ),
            network: Network::builtin("mainnet").unwrap(),
            keys,
            key_progress: progress,
            slashing,
            pool: SigningPool::new(1).unwrap(),
            access: Arc::new(crate::access::AccessPolicy::permissive()),
            audit: Arc::new(crate::audit::AuditLog::disabled()),
            metrics: Arc::new(crate::metrics::Metrics::new(false).unwrap()),
        },
        4096,
        None,
        None,
    ));
    Harness {
        state,
        pubkey: crate::keys::pubkey_hex(key.pubkey()),
        _dir: dir,
    }
}

async fn call(
    h: &Harness,
    prefix: Option<&str>,
    req: Request<Body>,
) -> (StatusCode, Option<String>, String) {
    let resp = router(Arc::clone(&h.state), prefix)
        .oneshot(req)
        .await
        .unwrap();
    let status = resp.status();
    let ctype = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_string());
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, ctype, String::from_utf8(bytes.to_vec()).unwrap())
}

fn post(path: &str, body: impl Into<Body>, accept: Option<&str>) -> Request<Body> {
    let mut b = Request::post(path).header(header::CONTENT_TYPE, "application/json");
    if let Some(a) = accept {
        b = b.header(header::ACCEPT, a);
    }
    b.body(body.into()).unwrap()
}

fn get(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).unwrap()
}

fn randao_body(epoch: u64) -> String {
    format!(
        r#"{{"type":"RANDAO_REVEAL","fork_info":{{"fork":{{"previous_version":"0x00000000",
        "current_version":"0x00000000","epoch":"0"}},"genesis_validators_root":"{MAINNET_GVR}"}},
        "randao_reveal":{{"epoch":"{epoch}"}}}}"#
    )
}

fn attestation_body(source: u64, target: u64, block_root_byte: u8) -> String {
    let root = format!("0x{}", hex::encode([block_root_byte; 32]));
    format!(
        r#"{{"type":"ATTESTATION","fork_info":{{"fork":{{"previous_version":"0x00000000",
        "current_version":"0x00000000","epoch":"0"}},"genesis_validators_root":"{MAINNET_GVR}"}},
        "attestation":{{"slot":"{slot}","index":"0","beacon_block_root":"{root}",
        "source":{{"epoch":"{source}","root":"{root}"}},"target":{{"epoch":"{target}","root":"{root}"}}}}}}"#,
        slot = target * 32
    )
}

fn message(body: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(body).expect("error body is JSON");
    v["message"].as_str().expect("message field").to_string()
}

fn assert_valid_signature(h: &Harness, body: &str, sig_hex: &str) {
    let prepared = crate::consensus::prepare(body.as_bytes(), &h.state.network).unwrap();
    let sig_bytes = hex::decode(sig_hex.trim_start_matches("0x")).unwrap();
    let sig = blst::min_pk::Signature::from_bytes(&sig_bytes).unwrap();
    let pk_bytes = hex::decode(h.pubkey.trim_start_matches("0x")).unwrap();
    let pk = blst::min_pk::PublicKey::from_bytes(&pk_bytes).unwrap();
    let res = sig.verify(
        true,
        &prepared.signing_root,
        crate::keys::BLS_DST,
        &[],
        &pk,
        true,
    );
    assert_eq!(res, blst::BLST_ERROR::BLST_SUCCESS);
}

#[tokio::test]
async fn upcheck_is_plain_ok() {
    let h = harness(false);
    let (status, ctype, body) = call(&h, None, get("/upcheck")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(ctype.unwrap().starts_with("text/plain"));
    assert_eq!(body, "OK");
}

#[tokio::test]
async fn public_keys_lists_lowercase_hex() {
    let h = harness(false);
    let (status, _, body) = call(&h, None, get("/api/v1/eth2/publicKeys")).await;
    assert_eq!(status, StatusCode::OK);
    let keys: Vec<String> = serde_json::from_str(&body).unwrap();
    assert_eq!(keys, vec![h.pubkey.clone()]);
}

#[tokio::test]
async fn unknown_key_is_404_with_json_message() {
    let h = harness(false);
    let other = crate::keys::pubkey_hex(test_key(2).pubkey());
    let (status, ctype, body) = call(
        &h,
        None,
        post(&format!("/api/v1/eth2/sign/{other}"), randao_body(1), None),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(ctype.unwrap().starts_with("application/json"));
    assert!(message(&body).contains(&other));
}

#[tokio::test]
async fn malformed_json_is_400() {
    let h = harness(false);
    let path = format!("/api/v1/eth2/sign/{}", h.pubkey);
    let (status, _, body) = call(&h, None, post(&path, "{not json", None)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(!message(&body).is_empty());
}

#[tokio::test]
async fn wrong_method_is_405_with_allow_header_and_json_message() {
    let h = harness(false);
    let sign = format!("/api/v1/eth2/sign/{}", h.pubkey);
    let cases = [
        (Method::GET, sign.clone(), None, "POST"),
        (Method::DELETE, "/upcheck".to_string(), None, "GET,HEAD"),
        (
            Method::PUT,
            "/signer/api/v1/eth2/publicKeys".into(),
            Some("/signer"),
            "GET,HEAD",
        ),
    ];
    for (method, path, prefix, allow) in cases {
        let request = Request::builder()
            .method(method.clone())
            .uri(&path)
            .body(Body::empty())
            .unwrap();
        let resp = router(Arc::clone(&h.state), prefix)
            .oneshot(request)
            .await
            .unwrap();
        assert_eq!(
            resp.status(),
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}"
        );
        assert_eq!(resp.headers()[header::ALLOW], allow, "{method} {path}");
        assert!(resp.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("application/json"));
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        let text = message(std::str::from_utf8(&bytes).unwrap());
        assert!(
            text.contains(method.as_str()) && text.contains(&path),
            "{text}"
        );
    }
    let (status, _, body) = call(&h, None, get("/metrics")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
}

#[tokio::test]
async fn oversize_body_is_413_with_json_message() {
    let h = harness(false);
    let path = format!("/api/v1/eth2/sign/{}", h.pubkey);
    let big = format!("{{\"pad\":\"{}\"}}", "x".repeat(10_000));
    let (status, _, body) = call(&h, None, post(&path, big, None)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(message(&body).contains("4096"));
}

#[tokio::test]
async fn signature_is_json_or_text_by_accept_header() {
    let h = harness(false);
    let path = format!("/api/v1/eth2/sign/{}", h.pubkey);
    let body = randao_body(5);

    let (status, ctype, text) = call(&h, None, post(&path, body.clone(), None)).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert!(ctype.unwrap().starts_with("text/plain"));
    assert_valid_signature(&h, &body, &text);

    for accept in ["application/json", "*/*"] {
        let (status, ctype, json) = call(&h, None, post(&path, body.clone(), Some(accept))).await;
        assert_eq!(status, StatusCode::OK);
        assert!(ctype.unwrap().starts_with("application/json"));
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["signature"].as_str().unwrap(), text);
    }
}

#[tokio::test]
async fn pubkey_in_path_is_case_insensitive_and_0x_optional() {
    let h = harness(false);
    let bare_upper = h.pubkey.trim_start_matches("0x").to_uppercase();
    let path = format!("/api/v1/eth2/sign/{bare_upper}");
    let (status, _, body) = call(&h, None, post(&path, randao_body(5), None)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn routes_also_served_under_prefix() {
    let h = harness(false);
    for path in ["/upcheck", "/signer/upcheck"] {
        let (status, _, _) = call(&h, Some("/signer"), get(path)).await;
        assert_eq!(status, StatusCode::OK, "{path}");
    }
}

#[tokio::test]
async fn attestation_refused_412_without_slashing_db() {
    let h = harness(false);
    let path = format!("/api/v1/eth2/sign/{}", h.pubkey);
    let (status, _, body) = call(&h, None, post(&path, attestation_body(1, 2, 7), None)).await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED);
    assert!(message(&body).contains("slashing protection is not configured"));
}

#[tokio::test]
async fn double_vote_refused_412_and_identical_resign_allowed() {
    let h = harness(true);
    let path = format!("/api/v1/eth2/sign/{}", h.pubkey);
    let first = attestation_body(1, 2, 7);
    let (status, _, sig1) = call(&h, None, post(&path, first.clone(), None)).await;
    assert_eq!(status, StatusCode::OK, "{sig1}");
    assert_valid_signature(&h, &first, &sig1);

    let (status, _, sig2) = call(&h, None, post(&path, first, None)).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "identical re-sign must be allowed: {sig2}"
    );
    assert_eq!(sig1, sig2);

    let conflicting = attestation_body(1, 2, 8);
    let (status, _, body) = call(&h, None, post(&path, conflicting, None)).await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED, "{body}");
    assert!(message(&body).starts_with("slashing protection"));
}

#[tokio::test]
async fn healthcheck_reflects_key_loading() {
    let h = harness(false);
    let (status, _, body) = call(&h, None, get("/healthcheck")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["status"], "UP");

    h.state
        .key_progress
        .record_failed("bad.json".into(), "wrong password".into());
    let (status, _, body) = call(&h, None, get("/healthcheck")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["status"], "DOWN");
    assert_eq!(v["checks"][0]["data"]["failed"], 1, "{body}");
    // Anyone may ask: no file names, no error text.
    assert!(!body.contains("bad.json"), "{body}");
    assert!(!body.contains("wrong password"), "{body}");
}

#[tokio::test]
async fn healthcheck_is_503_while_loading() {
    let h = harness(false);
    let state = Arc::new(AppState::new(
        Signer {
            genesis: crate::signer::GenesisPin::unbound(None),
            future_guard: crate::signer::FutureGuard::off(),
            network: h.state.network.clone(),
            keys: Arc::clone(&h.state.keys),
            key_progress: Arc::new(LoadProgress::new()),
            slashing: None,
            pool: SigningPool::new(1).unwrap(),
            access: Arc::new(crate::access::AccessPolicy::permissive()),
            audit: Arc::new(crate::audit::AuditLog::disabled()),
            metrics: Arc::clone(&h.state.metrics),
        },
        4096,
        None,
        None,
    ));
    let loading = Harness {
        state,
        pubkey: h.pubkey.clone(),
        _dir: None,
    };
    let (status, _, body) = call(&loading, None, get("/healthcheck")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(body.contains("LOADING"));

    // A key that is not loaded yet may still appear: 503, not 404.
    let other = crate::keys::pubkey_hex(test_key(9).pubkey());
    let path = format!("/api/v1/eth2/sign/{other}");
    let (status, _, body) = call(&loading, None, post(&path, randao_body(1), None)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(message(&body).contains("still loading"));
}

#[tokio::test]
async fn an_overloaded_signer_sheds_with_503_and_retry_after_before_anything_is_recorded() {
    use crate::signer::queue::{ClientKey, Priority, QueueLimits, SigningQueue};
    let Harness {
        state,
        pubkey,
        _dir,
    } = harness(true);
    let limits = QueueLimits {
        concurrency: 1,
        background_concurrency: 1,
        depth: 1,
        per_client: 1,
        ..QueueLimits::default()
    };
    let state = Arc::into_inner(state)
        .unwrap()
        .with_signing_queue(SigningQueue::new(limits, None));
    let h = Harness {
        state: Arc::new(state),
        pubkey,
        _dir,
    };
    // The only place in the pipeline is taken; one attestation waits for it.
    let held = h
        .state
        .signing_queue
        .admit(ClientKey::Unknown, Priority::Duty)
        .await
        .unwrap();
    let path = format!("/api/v1/eth2/sign/{}", h.pubkey);
    let waiting = tokio::spawn(router(Arc::clone(&h.state), None).oneshot(post(
        &path,
        attestation_body(1, 2, 7),
        Some("application/json"),
    )));
    while h.state.signing_queue.waiting() == 0 {
        tokio::task::yield_now().await;
    }
    // The client's share of the queue is full: shed, 503 with Retry-After and a message.
    let resp = router(Arc::clone(&h.state), None)
        .oneshot(post(&path, randao_body(3), Some("application/json")))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(resp.headers()[header::RETRY_AFTER], "1");
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    let text = message(std::str::from_utf8(&bytes).unwrap());
    assert!(text.contains("overloaded"), "{text}");
    // The waiting attestation is signed once the place is free.
    drop(held);
    let resp = waiting.await.unwrap().unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    let signed: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_valid_signature(
        &h,
        &attestation_body(1, 2, 7),
        signed["signature"].as_str().unwrap(),
    );
}

/// The sum of the series of counter or gauge `name` in `registry`.
fn metric_value(registry: &prometheus::Registry, name: &str) -> f64 {
    let families = registry.gather();
    let family = families.iter().find(|f| f.name() == name).unwrap();
    family
        .get_metric()
        .iter()
        .map(|m| m.get_counter().value() + m.get_gauge().value())
        .sum()
}

#[tokio::test]
async fn a_client_over_its_refusals_is_answered_late_without_holding_a_queue_place() {
    use crate::signer::queue::{QueueMetrics, RefusalLimits};
    let Harness {
        state,
        pubkey,
        _dir,
    } = harness(true);
    // One place in the pipeline; no free refusals, one a second after that.
    let limits = QueueLimits {
        concurrency: 1,
        background_concurrency: 1,
        refusals: RefusalLimits { burst: 0, rate: 1 },
        ..QueueLimits::default()
    };
    let registry = prometheus::Registry::new();
    let metrics = QueueMetrics::register(&registry).unwrap();
    let state = Arc::into_inner(state)
        .unwrap()
        .with_signing_queue(SigningQueue::new(limits, Some(metrics)));
    let h = Harness {
        state: Arc::new(state),
        pubkey,
        _dir,
    };
    let tarpitted = || metric_value(&registry, "keyguard_signing_queue_tarpitted_total");
    assert_eq!(tarpitted(), 0.0);
    let other = crate::keys::pubkey_hex(test_key(2).pubkey());
    let refused = tokio::spawn(router(Arc::clone(&h.state), None).oneshot(post(
        &format!("/api/v1/eth2/sign/{other}"),
        randao_body(1),
        Some("application/json"),
    )));
    while tarpitted() < 1.0 {
        tokio::task::yield_now().await;
    }
    // Held (for a second), but its place in the pipeline is already free.
    let running = metric_value(&registry, "keyguard_signing_queue_running");
    assert!(!refused.is_finished(), "answered before its delay");
    assert_eq!(running, 0.0, "the held request keeps its queue place");
    // Another request is signed meanwhile (it is 200: not a refusal, never held).
    let (status, _, body) = call(
        &h,
        None,
        post(
            &format!("/api/v1/eth2/sign/{}", h.pubkey),
            attestation_body(1, 2, 7),
            Some("application/json"),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // The held answer arrives, unchanged: 404 with a JSON message.
    let resp = refused.await.unwrap().unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    assert!(message(std::str::from_utf8(&bytes).unwrap()).contains(&other));
    assert_eq!(tarpitted(), 1.0);
}
