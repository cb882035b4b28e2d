//! Gloas (EIP-7732) end to end through the `keyguard` binary: every Gloas fixture of the
//! spec-generated file (minimal preset: interop keys are refused on public networks) is
//! signed to py_ecc's signature, a Gloas aggregate is signed over its progressive root and
//! not the Electra root of the same JSON, and bad input for each new type is a 400 with a
//! JSON message while nothing is signed.

use std::collections::BTreeMap;

use interop_tests::keyguard_process::KeyguardProcess;
use keyguard::consensus::{prepare, Network, RequestType};
use serde_json::{json, Value};

const FIXTURES: &str = include_str!("../fixtures/signing-fixtures.json");

const GLOAS_TYPES: [&str; 6] = [
    "EXECUTION_PAYLOAD_BID",
    "EXECUTION_PAYLOAD_ENVELOPE",
    "PAYLOAD_ATTESTATION_MESSAGE",
    "PAYLOAD_ATTESTATION",
    "PROPOSER_PREFERENCES",
    "BUILDER_REQUEST_AUTH",
];

struct Signer {
    kg: KeyguardProcess,
    client: reqwest::blocking::Client,
    audit_log: std::path::PathBuf,
    _tmp: tempfile::TempDir,
}

impl Signer {
    /// keyguard on the fixtures' minimal network (GLOAS at epoch 70) with 16 interop keys.
    fn start(doc: &Value) -> Signer {
        let tmp = tempfile::tempdir().unwrap();
        let config = tmp.path().join("minimal-fixtures.yaml");
        let text = doc["networks"]["minimal-fixtures"]["config"]
            .as_str()
            .unwrap();
        std::fs::write(&config, text).unwrap();
        let data = tmp.path().join("data");
        let audit_log = tmp.path().join("audit.jsonl");
        let args = [
            "--network",
            config.to_str().unwrap(),
            "--interop-keys",
            "16",
            "--data-dir",
            data.to_str().unwrap(),
            "--audit-log",
            audit_log.to_str().unwrap(),
        ];
        let kg = KeyguardProcess::start_healthy(&args, tmp.path()).unwrap();
        Signer {
            kg,
            client: reqwest::blocking::Client::new(),
            audit_log,
            _tmp: tmp,
        }
    }

    /// The `sign` events of the audit log (written before each answer).
    fn audited_signs(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.audit_log)
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str::<Value>(line).unwrap())
            .filter(|e| e["event"] == "sign")
            .collect()
    }

    /// POSTs `body` for `pubkey`; returns the status and the JSON answer.
    fn sign(&self, pubkey: &str, body: &Value) -> (u16, Value) {
        let response = self
            .client
            .post(format!("{}/api/v1/eth2/sign/{pubkey}", self.kg.url))
            .header("Accept", "application/json")
            .json(body)
            .send()
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().unwrap_or(Value::Null))
    }

    /// `keyguard_sign_requests_total` by (type, outcome).
    fn sign_counts(&self) -> BTreeMap<(String, String), f64> {
        let text = self.kg.metrics().unwrap();
        let mut counts = BTreeMap::new();
        for line in text.lines() {
            let Some(rest) = line.strip_prefix("keyguard_sign_requests_total{") else {
                continue;
            };
            let (labels, value) = rest.split_once("} ").unwrap();
            let label = |name: &str| {
                labels
                    .split(',')
                    .find_map(|kv| kv.strip_prefix(&format!("{name}=\"")))
                    .map(|v| v.trim_end_matches('"').to_string())
                    .unwrap_or_default()
            };
            *counts
                .entry((label("type"), label("outcome")))
                .or_insert(0.0) += value.trim().parse::<f64>().unwrap();
        }
        counts
    }
}

fn doc() -> Value {
    serde_json::from_str(FIXTURES).unwrap()
}

fn minimal_gloas_fixtures(doc: &Value) -> Vec<Value> {
    doc["fixtures"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["network"] == "minimal-fixtures")
        .filter(|f| f["fork"] == "GLOAS" || f.get("boundary").is_some())
        // The remote-signing-api examples use another genesis_validators_root, which the
        // slashing database (bound to the first one) refuses for blocks; signing_fixtures.rs
        // checks their roots and signatures.
        .filter(|f| f.get("source").is_none())
        .cloned()
        .collect()
}

#[test]
fn gloas_fixtures_are_signed_to_the_spec_signatures() {
    let doc = doc();
    let fixtures = minimal_gloas_fixtures(&doc);
    let signer = Signer::start(&doc);
    let mut types = std::collections::BTreeSet::new();
    for f in &fixtures {
        let name = f["name"].as_str().unwrap();
        let (status, answer) = signer.sign(f["pubkey"].as_str().unwrap(), &f["body"]);
        assert_eq!(status, 200, "{name}: {answer}");
        assert_eq!(answer["signature"], f["signature"], "{name}");
        types.insert(f["type"].as_str().unwrap().to_string());
    }
    for t in GLOAS_TYPES {
        assert!(types.contains(t), "no GLOAS fixture of {t}");
    }
    // The audit log names each Gloas type with the spec's signing root (polled briefly in
    // case the writer lags the answer).
    let gloas: Vec<&Value> = fixtures
        .iter()
        .filter(|f| GLOAS_TYPES.contains(&f["type"].as_str().unwrap()))
        .collect();
    let audited_all = |audited: &[Value]| {
        gloas.iter().all(|f| {
            audited.iter().any(|e| {
                e["type"] == f["type"]
                    && e["signing_root"] == f["signing_root"]
                    && e["outcome"] == "signed"
            })
        })
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !audited_all(&signer.audited_signs()) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(
        audited_all(&signer.audited_signs()),
        "a Gloas signature is missing from the audit log"
    );
    assert!(fixtures.iter().any(|f| f["boundary"] == "last-fulu-slot"));
    assert!(fixtures.iter().any(|f| f["boundary"] == "first-gloas-slot"));
}

#[test]
fn gloas_aggregate_is_signed_over_the_progressive_root() {
    let doc = doc();
    let network = Network::from_config_str(
        doc["networks"]["minimal-fixtures"]["config"]
            .as_str()
            .unwrap(),
        "minimal-fixtures",
    )
    .unwrap();
    let fixture = doc["fixtures"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "minimal/gloas/AGGREGATE_AND_PROOF_V2")
        .expect("Gloas V2 aggregate fixture")
        .clone();
    let gloas_body = fixture["body"].clone();
    let mut electra_body = gloas_body.clone();
    electra_body["aggregate_and_proof"]["version"] = json!("ELECTRA");
    let root = |b: &Value| prepare(&serde_json::to_vec(b).unwrap(), &network).unwrap();
    let gloas_root = root(&gloas_body).signing_root;
    let electra_root = root(&electra_body).signing_root;
    assert_ne!(gloas_root, electra_root, "same JSON, different SSZ types");
    assert_eq!(
        format!("0x{}", hex::encode(gloas_root)),
        fixture["signing_root"].as_str().unwrap()
    );

    let signer = Signer::start(&doc);
    let pubkey = fixture["pubkey"].as_str().unwrap();
    let (status, gloas) = signer.sign(pubkey, &gloas_body);
    assert_eq!(status, 200, "{gloas}");
    // py_ecc's signature over the spec's (progressive) root.
    assert_eq!(gloas["signature"], fixture["signature"]);
    // The bare form at the same Gloas slot takes the Gloas container from the schedule.
    let bare = json!({"type": "AGGREGATE_AND_PROOF", "fork_info": gloas_body["fork_info"],
                      "aggregate_and_proof": gloas_body["aggregate_and_proof"]["data"]});
    let (status, bare_answer) = signer.sign(pubkey, &bare);
    assert_eq!(status, 200, "{bare_answer}");
    assert_eq!(bare_answer["signature"], fixture["signature"]);
    // Asking for the Electra container of the same JSON gives another signature.
    let (status, electra) = signer.sign(pubkey, &electra_body);
    assert_eq!(status, 200, "{electra}");
    assert_ne!(electra["signature"], fixture["signature"]);
}

/// Bad variants of a valid Gloas body: (label, body).
fn bad_variants(body: &Value, request_type: &str) -> Vec<(String, Value)> {
    let key = RequestType::ALL
        .into_iter()
        .find(|t| t.as_str() == request_type)
        .unwrap()
        .payload_key();
    let mut out = Vec::new();
    let mut push = |label: &str, b: Value| out.push((format!("{request_type}: {label}"), b));
    let versioned = body[key].get("version").is_some();
    if versioned {
        let mut b = body.clone();
        b[key]["version"] = json!("ELECTRA");
        push("version ELECTRA", b);
        let mut b = body.clone();
        b[key]["version"] = json!("GLOAS_V9");
        push("unknown version", b);
        let mut b = body.clone();
        b[key].as_object_mut().unwrap().remove("data");
        push("missing data", b);
    }
    let mut b = body.clone();
    b.as_object_mut().unwrap().remove(key);
    push("missing payload", b);
    let mut b = body.clone();
    let object = if versioned {
        &mut b[key]["data"]
    } else {
        &mut b[key]
    };
    let fields = object.as_object_mut().unwrap();
    let (first_string, _) = fields
        .iter()
        .find(|(_, v)| v.as_str().is_some_and(|s| s.starts_with("0x")))
        .map(|(k, v)| (k.clone(), v.clone()))
        .unwrap();
    fields.insert(first_string, json!(12));
    push("wrong field type", b);
    let mut b = body.clone();
    b["signingRoot"] = json!(format!("0x{}", "ab".repeat(32)));
    push("signingRoot differs", b);
    out
}

#[test]
fn gloas_bad_input_is_refused_and_nothing_signed() {
    let doc = doc();
    let signer = Signer::start(&doc);
    let mut sent = BTreeMap::<String, f64>::new();
    for t in GLOAS_TYPES {
        let fixture = minimal_gloas_fixtures(&doc)
            .into_iter()
            .find(|f| f["type"] == t)
            .unwrap();
        let pubkey = fixture["pubkey"].as_str().unwrap().to_string();
        for (label, body) in bad_variants(&fixture["body"], t) {
            let (status, answer) = signer.sign(&pubkey, &body);
            assert_eq!(status, 400, "{label}: {answer}");
            let message = answer["message"].as_str().unwrap_or_default();
            assert!(!message.is_empty(), "{label}: no JSON message: {answer}");
            *sent.entry(t.to_string()).or_insert(0.0) += 1.0;
        }
    }
    let counts = signer.sign_counts();
    for t in GLOAS_TYPES {
        let signed = counts
            .get(&(t.to_string(), "signed".to_string()))
            .copied()
            .unwrap_or(0.0);
        assert_eq!(signed, 0.0, "{t}: something was signed");
    }
    // Every bad request is counted as a bad_request (under whatever type label the
    // server could give it).
    let bad: f64 = counts
        .iter()
        .filter(|((_, outcome), _)| outcome == "bad_request")
        .map(|(_, v)| v)
        .sum();
    assert_eq!(bad, sent.values().sum::<f64>(), "{counts:?}");
}
