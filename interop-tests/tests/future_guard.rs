//! The future guard (issue #14, item 4) through the real binary: on a network whose
//! genesis time is known, a far-future attestation or block is refused (400) and never
//! recorded, and normal duties after it still sign.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use interop_tests::keyguard_process::{slashing_export, KeyguardProcess};
use interop_tests::requests;

const NETWORK: &str = "config/networks/devnet-minimal.yaml";
/// The devnet's slot length (`SECONDS_PER_SLOT: 1`) and slots per epoch (minimal).
const SLOT_SECONDS: u64 = 1;
const SLOTS_PER_EPOCH: u64 = 8;
/// How far in the past the test chain started, in slots: "now" is about epoch 10000.
const SLOTS_SINCE_GENESIS: u64 = 80_000;

#[test]
fn a_far_future_attestation_is_refused_and_not_recorded() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let genesis = (now - SLOTS_SINCE_GENESIS * SLOT_SECONDS).to_string();
    let mut kg = KeyguardProcess::start(
        &[
            "--network",
            NETWORK,
            "--data-dir",
            data.to_str().unwrap(),
            "--interop-keys",
            "1",
            "--genesis-time",
            &genesis,
        ],
        tmp.path(),
    )
    .unwrap();
    kg.wait_healthy(Duration::from_secs(60)).unwrap();
    assert!(kg.log().contains("future guard on"), "{}", kg.log());
    let pk = kg.public_keys().unwrap()[0].clone();
    let current_epoch = SLOTS_SINCE_GENESIS / SLOTS_PER_EPOCH;

    // A vote for a target a million epochs ahead: refused, as a client error.
    let far_target = current_epoch + 1_000_000;
    let (status, json) = kg.sign_json(
        &pk,
        &requests::attestation(current_epoch - 1, far_target, 1),
    );
    assert_eq!(status, 400, "{json}");
    let message = json["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(&format!("epoch {far_target}")) && message.contains("future"),
        "{json}"
    );
    // A far-future block and RANDAO reveal too.
    let far_slot = SLOTS_SINCE_GENESIS + 10_000;
    assert_eq!(
        kg.sign_json(&pk, &requests::block_header(far_slot, 1)).0,
        400
    );
    assert_eq!(kg.sign_json(&pk, &requests::randao(far_target)).0, 400);

    // Normal duties still sign: the refused vote left nothing that surrounds them.
    let (status, json) = kg.sign_json(
        &pk,
        &requests::attestation(current_epoch - 2, current_epoch - 1, 1),
    );
    assert_eq!(status, 200, "{json}");
    let (status, json) = kg.sign_json(&pk, &requests::block_header(SLOTS_SINCE_GENESIS - 5, 1));
    assert_eq!(status, 200, "{json}");

    kg.terminate(Duration::from_secs(20)).unwrap();
    let exported = slashing_export(NETWORK, &data);
    let validator = &exported["data"][0];
    let targets: Vec<&str> = validator["signed_attestations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["target_epoch"].as_str().unwrap())
        .collect();
    assert_eq!(targets, [(current_epoch - 1).to_string()], "{exported}");
    let slots: Vec<&str> = validator["signed_blocks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["slot"].as_str().unwrap())
        .collect();
    assert_eq!(slots, [(SLOTS_SINCE_GENESIS - 5).to_string()], "{exported}");
}
