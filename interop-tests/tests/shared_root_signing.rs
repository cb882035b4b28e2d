//! Many keys signing one root through the real binary: the first signatures of a root use
//! its cached hash-to-G2 point, later ones a fixed-base table of it. Every signature must
//! verify under its key against the signing root the executable spec computed for the
//! request (not a root keyguard computed), whichever path produced it, and a repeated
//! request must give the same signature.

use std::collections::HashMap;

use interop_tests::keyguard_process::KeyguardProcess;
use serde_json::Value;

const FIXTURES: &str = include_str!("../fixtures/signing-fixtures.json");
/// Well above the number of distinct keys after which a root gets its table (24).
const KEYS: usize = 80;
const DST: &[u8] = b"BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_";

fn verify(pubkey_hex: &str, signature_hex: &str, root: &[u8]) -> bool {
    let pk = hex::decode(pubkey_hex.trim_start_matches("0x")).expect("pubkey hex");
    let sig = hex::decode(signature_hex.trim_start_matches("0x")).expect("signature hex");
    let pk = blst::min_pk::PublicKey::from_bytes(&pk).expect("pubkey");
    let sig = blst::min_pk::Signature::from_bytes(&sig).expect("signature");
    sig.verify(true, root, DST, &[], &pk, true) == blst::BLST_ERROR::BLST_SUCCESS
}

fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

#[test]
fn many_keys_signing_one_root_all_verify() {
    let doc: Value = serde_json::from_str(FIXTURES).unwrap();
    let fixture = doc["fixtures"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "minimal/electra/ATTESTATION")
        .expect("fixture")
        .clone();
    let root = hex::decode(
        fixture["signing_root"]
            .as_str()
            .unwrap()
            .trim_start_matches("0x"),
    )
    .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let network = tmp.path().join("network.yaml");
    let config = doc["networks"][fixture["network"].as_str().unwrap()]["config"]
        .as_str()
        .expect("network config");
    std::fs::write(&network, config).unwrap();
    let data = tmp.path().join("data");
    let keys = KEYS.to_string();
    let args = [
        "--network",
        network.to_str().unwrap(),
        "--interop-keys",
        &keys,
        "--data-dir",
        data.to_str().unwrap(),
        "--signing-threads",
        "2",
    ];
    let mut kg = KeyguardProcess::start_healthy(&args, tmp.path()).unwrap();
    let pubkeys = kg.public_keys().unwrap();
    assert_eq!(pubkeys.len(), KEYS);
    let body = serde_json::to_string(&fixture["body"]).unwrap();

    let client = reqwest::blocking::Client::new();
    let sign = |pk: &str| -> String {
        let resp = client
            .post(format!("{}/api/v1/eth2/sign/{pk}", kg.url))
            .header("Accept", "application/json")
            .body(body.clone())
            .send()
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200, "{pk}");
        let v: Value = resp.json().unwrap();
        v["signature"].as_str().unwrap().to_string()
    };
    // Concurrently, so several signing threads use the root (and its table) at once.
    let first: HashMap<String, String> = std::thread::scope(|s| {
        let handles: Vec<_> = pubkeys
            .chunks(KEYS / 8)
            .map(|chunk| {
                s.spawn(move || {
                    chunk
                        .iter()
                        .map(|pk| (pk.clone(), sign(pk)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    assert_eq!(first.len(), KEYS);
    for (pk, sig) in &first {
        assert!(verify(pk, sig, &root), "signature of {pk} does not verify");
    }
    // An exact repeat is allowed by slashing protection and must give the same signature
    // (now certainly from the table).
    for pk in &pubkeys {
        assert_eq!(&sign(pk), &first[pk], "{pk}: repeat differs");
    }

    let text = kg.metrics().unwrap();
    let by_path = |p: &str| {
        metric(
            &text,
            &format!("keyguard_bls_signatures_total{{path=\"{p}\"}}"),
        )
    };
    let total = (2 * KEYS) as f64;
    assert_eq!(
        by_path("new_root") + by_path("cached_root") + by_path("fixed_base"),
        total,
        "{text}"
    );
    assert!(by_path("new_root") >= 1.0, "the first use hashes the root");
    // Every repeat (sent one at a time, after the table was built) used the table.
    assert!(
        by_path("fixed_base") >= KEYS as f64,
        "the repeats used the table: {}",
        by_path("fixed_base")
    );
    kg.check_running().unwrap();
}
