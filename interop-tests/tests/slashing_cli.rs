//! `keyguard slashing ...` end to end with the real binary: import an EIP-3076 interchange,
//! see the signer refuse what it protects, export, and use the high-watermark kill switch.

use std::path::Path;
use std::time::Duration;

use interop_tests::keyguard_process::{keyguard_command, KeyguardProcess};
use interop_tests::requests;

/// Interop key 0's pubkey (well known).
const PK0: &str = "0xa99a76ed7796f7be22d5b7e85deeb7c5677e88e511e0b337618f8c4eb61349b4bf2d153f649f7b53359fe8b94a38e44c";

fn interchange(version: &str) -> String {
    format!(
        r#"{{"metadata":{{"interchange_format_version":"{version}","genesis_validators_root":"{gvr}"}},
        "data":[{{"pubkey":"{PK0}",
          "signed_blocks":[{{"slot":"100","signing_root":"{root}"}}],
          "signed_attestations":[{{"source_epoch":"5","target_epoch":"10","signing_root":"{root}"}}]}}]}}"#,
        gvr = requests::TEST_GVR,
        root = requests::root(0xaa)
    )
}

fn slashing(data: &Path, args: &[&str]) -> std::process::Output {
    let mut all = vec!["slashing"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--data-dir", data.to_str().unwrap()]);
    keyguard_command(&all)
}

fn start(data: &Path, log_dir: &Path) -> KeyguardProcess {
    let mut kg = KeyguardProcess::start(
        &[
            "--network",
            "config/networks/devnet-minimal.yaml",
            "--interop-keys",
            "1",
            "--data-dir",
            data.to_str().unwrap(),
        ],
        log_dir,
    )
    .unwrap();
    kg.wait_healthy(Duration::from_secs(30)).unwrap();
    kg
}

fn sign(kg: &KeyguardProcess, body: String) -> u16 {
    kg.sign_status(PK0, body).unwrap()
}

#[test]
fn import_protects_export_round_trips_and_high_watermark_stops_signing() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");

    // A bad file is refused with its location and changes nothing.
    let bad = tmp.path().join("bad.json");
    std::fs::write(&bad, interchange("4")).unwrap();
    let out = slashing(&data, &["import", bad.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("interchange_format_version"), "{err}");

    let good = tmp.path().join("good.json");
    std::fs::write(&good, interchange("5")).unwrap();
    let out = slashing(&data, &["import", good.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let kg = start(&data, tmp.path());
    assert_eq!(
        sign(&kg, requests::block_header(100, 1)),
        412,
        "same slot, other root"
    );
    assert_eq!(
        sign(&kg, requests::block_header(99, 1)),
        412,
        "below the imported slot"
    );
    assert_eq!(sign(&kg, requests::block_header(101, 1)), 200);
    assert_eq!(
        sign(&kg, requests::attestation(5, 10, 1)),
        412,
        "double vote"
    );
    assert_eq!(
        sign(&kg, requests::attestation(4, 11, 1)),
        412,
        "surrounds the imported vote"
    );
    assert_eq!(sign(&kg, requests::attestation(10, 11, 1)), 200);
    drop(kg);

    let export = tmp.path().join("export.json");
    let out = slashing(
        &data,
        &["export", export.to_str().unwrap(), "--pubkey", PK0],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&export).unwrap()).unwrap();
    assert_eq!(json["metadata"]["interchange_format_version"], "5");
    assert_eq!(
        json["metadata"]["genesis_validators_root"],
        requests::TEST_GVR
    );
    let v = &json["data"][0];
    assert_eq!(v["pubkey"], PK0);
    let slots: Vec<&str> = v["signed_blocks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["slot"].as_str().unwrap())
        .collect();
    assert!(slots.contains(&"101"), "{slots:?}");

    // The exported history protects another database just the same.
    let other = tmp.path().join("other");
    let out = slashing(&other, &["import", export.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let kg = start(&other, tmp.path());
    assert_eq!(sign(&kg, requests::block_header(101, 2)), 412);
    assert_eq!(sign(&kg, requests::attestation(10, 11, 2)), 412);
    drop(kg);

    // Kill switch: nothing at or past the watermark is signed until it is cleared.
    let out = slashing(
        &data,
        &["high-watermark", "set", "--slot", "200", "--epoch", "20"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let shown = slashing(&data, &["high-watermark", "show"]);
    assert!(String::from_utf8_lossy(&shown.stdout).contains("200"));
    let kg = start(&data, tmp.path());
    assert_eq!(sign(&kg, requests::block_header(200, 1)), 412);
    assert_eq!(sign(&kg, requests::attestation(19, 20, 1)), 412);
    assert_eq!(sign(&kg, requests::block_header(150, 1)), 200);
    drop(kg);
    assert!(slashing(&data, &["high-watermark", "clear"])
        .status
        .success());
    let kg = start(&data, tmp.path());
    assert_eq!(sign(&kg, requests::block_header(200, 1)), 200);
}

#[test]
fn second_signer_on_the_same_database_refuses_to_start() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let _first = start(&data, tmp.path());
    let second = KeyguardProcess::start(
        &[
            "--network",
            "config/networks/devnet-minimal.yaml",
            "--interop-keys",
            "1",
            "--data-dir",
            data.to_str().unwrap(),
        ],
        tmp.path(),
    );
    let err = second
        .err()
        .expect("second signer must not start")
        .to_string();
    assert!(err.contains("in use by another process"), "{err}");
}

/// `slashing prune` counts `--keep-epochs` in the configured network's epochs: with blocks
/// signed at slots 0, 50 and 100, 5 epochs of the minimal preset (8 slots) keep slots
/// 60..=100, while 5 mainnet epochs (32 slots) keep them all.
#[test]
fn prune_uses_the_slots_per_epoch_of_the_configured_network() {
    let tmp = tempfile::tempdir().unwrap();
    let signed = tmp.path().join("signed");
    let kg = start(&signed, tmp.path());
    for slot in [0, 50, 100] {
        assert_eq!(
            sign(&kg, requests::block_header(slot, 1)),
            200,
            "slot {slot}"
        );
    }
    drop(kg);
    for (network, deleted) in [("config/networks/devnet-minimal.yaml", 2), ("mainnet", 0)] {
        let data = tmp.path().join(format!("data-{deleted}"));
        std::fs::create_dir_all(&data).unwrap();
        for entry in std::fs::read_dir(&signed).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), data.join(entry.file_name())).unwrap();
        }
        let out = slashing(
            &data,
            &["prune", "--keep-epochs", "5", "--network", network],
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{out:?}");
        assert!(
            stdout.contains(&format!("pruned {deleted} block and 0 attestation records")),
            "{network}: {stdout}"
        );
    }
}
