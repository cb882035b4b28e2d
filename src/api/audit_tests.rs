//! The audit hooks of the HTTP layer: every decision is recorded, and with
//! `on_failure = "refuse"` a broken audit log refuses signing (500), changes nothing in
//! the slashing database, and turns `/healthcheck` DOWN until writes work again.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use parking_lot::Mutex;
use tower::ServiceExt;
use zeroize::Zeroizing;

use super::*;
use crate::audit::{AuditConfig, AuditLog, ChainHead, OnFailure, Sink};
use crate::keys::{KeySource, ValidatorKey};
use crate::signer::{Signer, SigningPool};

const MAINNET_GVR: &str = "0x4b363db94e286120d76eb905340fdd4e54bfe9f06bf33ff6cf5ad27f511bfe95";

/// Lines in memory; fails while `fail` is set.
struct MemSink {
    written: Arc<Mutex<Vec<u8>>>,
    fail: Arc<AtomicBool>,
}

impl Sink for MemSink {
    fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        if self.fail.load(Ordering::SeqCst) {
            return Err(io::Error::other("disk full (test)"));
        }
        self.written.lock().extend_from_slice(bytes);
        Ok(())
    }
}

struct Harness {
    state: Arc<AppState>,
    pubkey: String,
    written: Arc<Mutex<Vec<u8>>>,
    fail: Arc<AtomicBool>,
    _dir: tempfile::TempDir,
}

fn harness(failing: bool) -> Harness {
    let keys = Arc::new(KeyTable::new());
    let secret = Zeroizing::new([7u8; 32]);
    let key = ValidatorKey::from_secret_bytes(&secret, KeySource::Interop, "test").unwrap();
    let key = keys.insert(key).unwrap();
    let progress = Arc::new(LoadProgress::new());
    progress.add_total(1);
    progress.record_loaded();
    progress.finish();
    let dir = tempfile::tempdir().unwrap();
    let db =
        slashing_db::SlashingDb::open(&dir.path().join("db.sqlite"), Default::default()).unwrap();
    let written = Arc::new(Mutex::new(Vec::new()));
    let fail = Arc::new(AtomicBool::new(failing));
    let sink = MemSink {
        written: Arc::clone(&written),
        fail: Arc::clone(&fail),
    };
    let config = AuditConfig {
        enabled: true,
        on_failure: OnFailure::Refuse,
        ..Default::default()
    };
    let audit = AuditLog::start(
        Box::new(sink),
        ChainHead::GENESIS,
        &config,
        "mem".into(),
        None,
    );
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
            slashing: Some(db),
            pool: SigningPool::new(1).unwrap(),
            access: Arc::new(crate::access::AccessPolicy::permissive()),
            audit: Arc::new(audit),
            metrics: Arc::new(crate::metrics::Metrics::new(false).unwrap()),
        },
        4096,
        None,
        None,
    ));
    Harness {
        state,
        pubkey: crate::keys::pubkey_hex(key.pubkey()),
        written,
        fail,
        _dir: dir,
    }
}

fn attestation_body(source: u64, target: u64) -> String {
    let root = format!("0x{}", hex::encode([1u8; 32]));
    format!(
        r#"{{"type":"ATTESTATION","fork_info":{{"fork":{{"previous_version":"0x00000000",
        "current_version":"0x00000000","epoch":"0"}},"genesis_validators_root":"{MAINNET_GVR}"}},
        "attestation":{{"slot":"{slot}","index":"0","beacon_block_root":"{root}",
        "source":{{"epoch":"{source}","root":"{root}"}},"target":{{"epoch":"{target}","root":"{root}"}}}}}}"#,
        slot = target * 32
    )
}

async fn call(h: &Harness, req: Request<Body>) -> (StatusCode, serde_json::Value) {
    let resp = router(Arc::clone(&h.state), None)
        .oneshot(req)
        .await
        .unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, serde_json::from_slice(&bytes).unwrap())
}

async fn sign(h: &Harness, pubkey: &str, body: String) -> (StatusCode, serde_json::Value) {
    let req = Request::post(format!("/api/v1/eth2/sign/{pubkey}"))
        .header("Accept", "application/json")
        .body(Body::from(body))
        .unwrap();
    call(h, req).await
}

async fn health(h: &Harness) -> (StatusCode, String) {
    let (status, body) = call(h, Request::get("/healthcheck").body(Body::empty()).unwrap()).await;
    let check = body["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "audit-log-check")
        .expect("an audit check")
        .clone();
    (status, check["status"].as_str().unwrap().to_owned())
}

async fn wait_until(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn lines(h: &Harness) -> Vec<serde_json::Value> {
    let _ = h.state.audit.close();
    let bytes = h.written.lock().clone();
    crate::audit::verify::verify(bytes.as_slice()).unwrap();
    bytes
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect()
}

#[tokio::test]
async fn every_decision_is_recorded_in_order() {
    let h = harness(false);
    let pk = h.pubkey.clone();
    assert_eq!(
        sign(&h, &pk, attestation_body(1, 2)).await.0,
        StatusCode::OK
    );
    assert_eq!(
        sign(&h, &pk, attestation_body(0, 3)).await.0,
        StatusCode::PRECONDITION_FAILED
    );
    assert_eq!(sign(&h, &pk, "{".into()).await.0, StatusCode::BAD_REQUEST);
    assert_eq!(
        sign(&h, "0x1234", attestation_body(5, 6)).await.0,
        StatusCode::NOT_FOUND
    );
    let lines = lines(&h);
    let outcomes: Vec<&str> = lines
        .iter()
        .map(|l| l["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(
        outcomes,
        ["signed", "slashing_refused", "bad_request", "unknown_key"]
    );
    assert_eq!(lines[1]["reason"], "surrounding_vote");
    assert_eq!(lines[1]["source_epoch"], 0);
    assert_eq!(lines[1]["target_epoch"], 3);
    assert!(lines[0]["signing_root"].as_str().unwrap().starts_with("0x"));
    assert!(
        lines[2].get("type").is_none(),
        "not parsed, so not recorded"
    );
}

#[tokio::test]
async fn broken_audit_log_refuses_signing_and_changes_nothing() {
    let h = harness(true);
    // The writer learns that the sink fails from its first write.
    h.state
        .audit
        .record_key_event(crate::audit::EventName::KeyLoad, &[1; 48], "test");
    wait_until("the audit log to fail", || {
        h.state.audit.health() != crate::audit::AuditHealth::Up
    })
    .await;
    let pk = h.pubkey.clone();
    let (status, body) = sign(&h, &pk, attestation_body(1, 2)).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        body["message"],
        "audit log cannot be written; nothing signed"
    );
    assert_eq!(
        health(&h).await,
        (StatusCode::SERVICE_UNAVAILABLE, "DOWN".to_owned())
    );

    // Writes work again: health recovers, and the refused attestation was never recorded
    // by slashing protection, so a conflicting one is signed now.
    h.fail.store(false, Ordering::SeqCst);
    wait_until("the audit log to recover", || {
        h.state.audit.health() == crate::audit::AuditHealth::Up
    })
    .await;
    assert_eq!(health(&h).await, (StatusCode::OK, "UP".to_owned()));
    let (status, _) = sign(&h, &pk, attestation_body(1, 2).replace("0x0101", "0x0202")).await;
    assert_eq!(status, StatusCode::OK);
    let lines = lines(&h);
    let outcomes: Vec<&str> = lines.iter().filter_map(|l| l["outcome"].as_str()).collect();
    assert_eq!(outcomes, ["error", "signed"]);
}
