//! Replays every request of the shared reference vectors (Web3Signer's OpenAPI examples,
//! Teku's block fixtures, Lodestar 1.5.1's real requests) through
//! `keyguard::consensus::prepare` and checks the recomputed signing root against the
//! reference's own `signingRoot`.

use std::path::Path;

use keyguard::consensus::{prepare, Network};
use serde_json::Value;

/// Minimal preset, genesis version 0x00000001, nothing scheduled: the reference examples
/// carry their own fork_info, so only the preset and genesis version matter.
fn minimal_test_network() -> Network {
    Network::from_config_str(
        "PRESET_BASE: minimal\nCONFIG_NAME: minimal-test\nGENESIS_FORK_VERSION: 0x00000001\n",
        "minimal-test",
    )
    .unwrap()
}

fn mainnet_preset_test_network() -> Network {
    Network::from_config_str(
        "PRESET_BASE: mainnet\nCONFIG_NAME: mainnet-test\nGENESIS_FORK_VERSION: 0x00000001\n",
        "mainnet-test",
    )
    .unwrap()
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn expected_root(body: &Value, name: &str) -> [u8; 32] {
    let hex_root = body["signingRoot"]
        .as_str()
        .unwrap_or_else(|| panic!("{name}: no signingRoot"));
    hex::decode(hex_root.trim_start_matches("0x"))
        .unwrap()
        .try_into()
        .unwrap()
}

/// Recomputes `body`'s root without its signingRoot, then with it (must be accepted).
fn assert_replays(name: &str, body: &Value, network: &Network) {
    let expected = expected_root(body, name);
    let mut stripped = body.clone();
    stripped.as_object_mut().unwrap().remove("signingRoot");
    let bytes = serde_json::to_vec(&stripped).unwrap();
    let prepared = prepare(&bytes, network).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(
        hex::encode(prepared.signing_root),
        hex::encode(expected),
        "{name}: recomputed root differs from the reference"
    );
    let with_root = serde_json::to_vec(body).unwrap();
    prepare(&with_root, network).unwrap_or_else(|e| panic!("{name} (with signingRoot): {e}"));
}

#[test]
fn web3signer_openapi_examples() {
    let Some(shared) = interop_tests::require_shared_dir("web3signer_openapi_examples") else {
        return;
    };
    let doc = read_json(&shared.join("vectors/web3signer-openapi-examples.json"));
    let examples = doc["examples"].as_object().expect("examples object");
    let minimal = minimal_test_network();
    let mut replayed = 0;
    for (name, body) in examples {
        if name.starts_with("AGGREGATE_AND_PROOF_V2 (ELECTRA)")
            || name.starts_with("AGGREGATE_AND_PROOF_V2 (FULU)")
        {
            // Their signingRoot is not reproducible from the spec (see the vectors'
            // README); they use mainnet-sized committee_bits. They must still parse.
            let mut stripped = body.clone();
            stripped.as_object_mut().unwrap().remove("signingRoot");
            let bytes = serde_json::to_vec(&stripped).unwrap();
            prepare(&bytes, &mainnet_preset_test_network())
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            continue;
        }
        assert_replays(name, body, &minimal);
        replayed += 1;
    }
    assert!(replayed >= 20, "only {replayed} examples replayed");
}

#[test]
fn teku_block_fixtures() {
    let Some(shared) = interop_tests::require_shared_dir("teku_block_fixtures") else {
        return;
    };
    let network = minimal_test_network();
    let mut replayed = 0;
    for fork in ["phase0", "altair", "bellatrix"] {
        let path = shared.join(format!(
            "vectors/teku/{fork}BlockExternalSignerMessage.json"
        ));
        assert_replays(&path.display().to_string(), &read_json(&path), &network);
        replayed += 1;
    }
    assert_eq!(replayed, 3);
}

#[test]
fn lodestar_samples() {
    let Some(shared) = interop_tests::require_shared_dir("lodestar_samples") else {
        return;
    };
    let doc = read_json(&shared.join("lodestar/signing-request-samples.json"));
    let samples = doc["samples"].as_object().expect("samples object");
    let network = Network::devnet();
    for (name, sample) in samples {
        assert_replays(name, &sample["body"], &network);
    }
    assert!(samples.len() >= 12, "only {} samples", samples.len());
}

#[test]
fn lodestar_recorded_requests() {
    let Some(shared) = interop_tests::require_shared_dir("lodestar_recorded_requests") else {
        return;
    };
    let path = shared.join("lodestar/lodestar-1.5.1-sign-requests.jsonl");
    let text = std::fs::read_to_string(&path).unwrap();
    let network = Network::devnet();
    let mut replayed = 0;
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let record: Value = serde_json::from_str(line).unwrap();
        let body = &record["body"];
        let name = format!("{}:{} {}", path.display(), i + 1, body["type"]);
        assert_replays(&name, body, &network);
        replayed += 1;
    }
    assert!(replayed >= 48, "only {replayed} requests replayed");
}
