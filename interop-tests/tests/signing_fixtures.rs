//! Known-answer tests from the executable consensus spec and py_ecc
//! (`interop-tests/scripts/gen_signing_fixtures.py`): every request type x fork x preset
//! must recompute the spec's signing root, and an interop key must sign it to the
//! signature py_ecc produced.

use std::collections::HashMap;

use keyguard::consensus::{prepare, Network};
use keyguard::keys::{KeySource, ValidatorKey};
use serde_json::Value;
use zeroize::Zeroizing;

const FIXTURES: &str = include_str!("../fixtures/signing-fixtures.json");

fn hex32(s: &str) -> [u8; 32] {
    hex::decode(s.trim_start_matches("0x"))
        .unwrap()
        .try_into()
        .unwrap()
}

fn networks(doc: &Value) -> HashMap<String, Network> {
    doc["networks"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(name, def)| {
            let network = match (def["builtin"].as_str(), def["config"].as_str()) {
                (Some(builtin), _) => Network::builtin(builtin).unwrap(),
                (None, Some(config)) => Network::from_config_str(config, name).unwrap(),
                _ => panic!("network {name}: neither builtin nor config"),
            };
            (name.clone(), network)
        })
        .collect()
}

fn fixtures() -> (Vec<Value>, HashMap<String, Network>) {
    let doc: Value = serde_json::from_str(FIXTURES).unwrap();
    let nets = networks(&doc);
    (doc["fixtures"].as_array().unwrap().clone(), nets)
}

#[test]
fn spec_signing_roots() {
    let (fixtures, nets) = fixtures();
    for f in &fixtures {
        let name = f["name"].as_str().unwrap();
        let network = &nets[f["network"].as_str().unwrap()];
        let body = serde_json::to_vec(&f["body"]).unwrap();
        let prepared = prepare(&body, network).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            hex::encode(prepared.signing_root),
            hex::encode(hex32(f["signing_root"].as_str().unwrap())),
            "{name}: signing root differs from the spec's"
        );
        // The same body with the expected root attached is accepted.
        let mut with_root = f["body"].clone();
        with_root["signingRoot"] = f["signing_root"].clone();
        prepare(&serde_json::to_vec(&with_root).unwrap(), network)
            .unwrap_or_else(|e| panic!("{name} (with signingRoot): {e}"));
    }
    assert!(fixtures.len() >= 230, "only {} fixtures", fixtures.len());
}

#[test]
fn spec_fixtures_cover_every_type_fork_and_preset() {
    let (fixtures, _) = fixtures();
    let mut seen = std::collections::HashSet::new();
    for f in &fixtures {
        seen.insert((
            f["preset"].as_str().unwrap().to_string(),
            f["type"].as_str().unwrap().to_string(),
        ));
    }
    for preset in ["mainnet", "minimal"] {
        for t in keyguard::consensus::RequestType::ALL {
            assert!(
                seen.contains(&(preset.to_string(), t.as_str().to_string())),
                "no {preset} fixture of type {t}"
            );
        }
    }
}

#[test]
fn gloas_fixtures_cover_the_fork_boundary_and_every_new_type() {
    let (fixtures, _) = fixtures();
    let names: std::collections::HashSet<&str> = fixtures
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    // Mainnet schedules no Gloas: the mainnet-preset Gloas fixtures run on Sepolia.
    for (preset, network) in [("mainnet", "sepolia"), ("minimal", "minimal-fixtures")] {
        let of = |fork: &str| {
            fixtures
                .iter()
                .filter(|f| f["preset"] == preset && f["network"] == network && f["fork"] == fork)
                .collect::<Vec<_>>()
        };
        let gloas_types: std::collections::HashSet<&str> = of("GLOAS")
            .iter()
            .map(|f| f["type"].as_str().unwrap())
            .collect();
        for t in keyguard::consensus::RequestType::ALL {
            let exists_at_gloas =
                !matches!(t.as_str(), "BLOCK" | "DEPOSIT" | "VALIDATOR_REGISTRATION");
            if exists_at_gloas {
                assert!(gloas_types.contains(t.as_str()), "{preset}: no GLOAS {t}");
            }
        }
        for (fork, boundary) in [("fulu", "last-fulu-slot"), ("gloas", "first-gloas-slot")] {
            for t in [
                "AGGREGATE_AND_PROOF",
                "AGGREGATE_AND_PROOF_V2",
                "ATTESTATION",
                "BLOCK_V2",
            ] {
                let name = format!("{preset}/{fork}/{t}@{boundary}");
                assert!(names.contains(name.as_str()), "missing {name}");
            }
        }
    }
    // remote-signing-api v1.4.0's GLOAS examples, with the spec's roots; its one published
    // Gloas root (BLOCK_V2 (GLOAS)) is checked here too.
    let examples: Vec<&Value> = fixtures
        .iter()
        .filter(|f| f["source"] == "remote-signing-api v1.4.0 example")
        .collect();
    assert_eq!(examples.len(), 6);
    let block = examples.iter().find(|f| f["type"] == "BLOCK_V2").unwrap();
    assert_eq!(
        block["signing_root"],
        "0xaa2e0c465c1a45d7b6637fcce4ad6ceb71fc12064b548078d619a411f0de8adc"
    );
}

#[test]
fn interop_keys_sign_to_py_ecc_signatures() {
    let (fixtures, nets) = fixtures();
    for f in &fixtures {
        let name = f["name"].as_str().unwrap();
        let network = &nets[f["network"].as_str().unwrap()];
        let body = serde_json::to_vec(&f["body"]).unwrap();
        let root = prepare(&body, network)
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .signing_root;
        let secret = Zeroizing::new(hex32(f["secret_key"].as_str().unwrap()));
        let key = ValidatorKey::from_secret_bytes(&secret, KeySource::Keystore, "fixture").unwrap();
        assert_eq!(
            format!("0x{}", hex::encode(key.pubkey())),
            f["pubkey"].as_str().unwrap(),
            "{name}: pubkey"
        );
        assert_eq!(
            format!(
                "0x{}",
                hex::encode(key.local_secret().expect("local key").sign(&root))
            ),
            f["signature"].as_str().unwrap(),
            "{name}: signature differs from py_ecc's"
        );
    }
}
