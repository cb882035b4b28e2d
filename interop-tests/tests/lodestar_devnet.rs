//! End to end with a real validator client: a one-node Lodestar 1.5.1 devnet (minimal
//! preset, 8 validators, ALTAIR/BELLATRIX/CAPELLA at epochs 1/2/3) whose validator client
//! signs every duty through keyguard over the Web3Signer API, with slashing protection on.
//!
//! Phase 1: the chain must finalize two epochs past CAPELLA with every request keyguard saw
//! signed (metrics: only `outcome="signed"`), covering every duty type Lodestar sends.
//! Phase 2: keyguard is SIGKILLed mid-devnet and started again on the same port and data
//! directory; the chain must keep finalizing, again with nothing but signed outcomes (a
//! lost or corrupted slashing record would show as refusals); every slashing record from
//! before the kill must still be exported afterwards, and a double proposal at a slot
//! signed before the kill must be refused (412).
//! The beacon node must never have seen an invalid signature.
//!
//! Needs Node.js and npm (Lodestar is installed from the npm registry into
//! `target/lodestar-1.5.1` or `$KEYGUARD_LODESTAR_DIR` on first run). Without them the
//! test is skipped loudly, except under `CI=true`, where it fails.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use interop_tests::keyguard_process::keyguard_command;
use interop_tests::lodestar::{require_lodestar, DevnetParams, Signer};

/// Every type Lodestar 1.5.1 sends on this devnet (VALIDATOR_REGISTRATION only with
/// `--builder`, checked separately).
const REQUIRED_TYPES: [&str; 8] = [
    "BLOCK_V2",
    "ATTESTATION",
    "RANDAO_REVEAL",
    "AGGREGATION_SLOT",
    "AGGREGATE_AND_PROOF",
    "SYNC_COMMITTEE_MESSAGE",
    "SYNC_COMMITTEE_SELECTION_PROOF",
    "SYNC_COMMITTEE_CONTRIBUTION_AND_PROOF",
];

/// Per-type counts of signed requests; panics on any other outcome with a nonzero count.
fn signed_counts(
    phase: &str,
    counts: &BTreeMap<(String, String, String), u64>,
    keyguard_log: &str,
) -> BTreeMap<String, u64> {
    let bad: Vec<_> = counts
        .iter()
        .filter(|((_, outcome, _), n)| outcome != "signed" && **n > 0)
        .collect();
    assert!(
        bad.is_empty(),
        "{phase}: keyguard answered requests with something other than a signature: \
         {bad:?}\nkeyguard log tail:\n{}",
        tail(keyguard_log, 40)
    );
    let signed: BTreeMap<String, u64> = counts
        .iter()
        .filter(|((_, outcome, _), n)| outcome == "signed" && **n > 0)
        .map(|((ty, _, _), n)| (ty.clone(), *n))
        .collect();
    eprintln!("{phase}: signed requests per type:");
    for (ty, n) in &signed {
        eprintln!("  {ty:<40} {n}");
    }
    signed
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// One signed message of an EIP-3076 interchange export.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Record {
    Block {
        pubkey: String,
        slot: u64,
        root: String,
    },
    Attestation {
        pubkey: String,
        source: u64,
        target: u64,
        root: String,
    },
}

/// Every record of keyguard's slashing database, read with `keyguard slashing export`
/// (only while no server holds the database).
fn export_records(config: &Path, data: &Path) -> BTreeSet<Record> {
    let out = keyguard_command(&[
        "slashing",
        "export",
        "--network",
        config.to_str().unwrap(),
        "--data-dir",
        data.to_str().unwrap(),
        "-",
    ]);
    assert!(
        out.status.success(),
        "keyguard slashing export: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let num = |v: &serde_json::Value| v.as_str().unwrap().parse::<u64>().unwrap();
    let root = |v: &serde_json::Value| v["signing_root"].as_str().unwrap_or("").to_string();
    let mut records = BTreeSet::new();
    for validator in json["data"].as_array().unwrap() {
        let pubkey = validator["pubkey"].as_str().unwrap().to_string();
        for b in validator["signed_blocks"].as_array().unwrap() {
            records.insert(Record::Block {
                pubkey: pubkey.clone(),
                slot: num(&b["slot"]),
                root: root(b),
            });
        }
        for a in validator["signed_attestations"].as_array().unwrap() {
            records.insert(Record::Attestation {
                pubkey: pubkey.clone(),
                source: num(&a["source_epoch"]),
                target: num(&a["target_epoch"]),
                root: root(a),
            });
        }
    }
    records
}

/// A CAPELLA `BLOCK_V2` (block header, as Lodestar sends after ALTAIR) at `slot` whose
/// roots nobody signed: a double proposal for a key that already proposed at `slot`.
fn conflicting_block(slot: u64) -> String {
    let r = "0x4242424242424242424242424242424242424242424242424242424242424242";
    format!(
        r#"{{"type":"BLOCK_V2","fork_info":{{"fork":{{"previous_version":"0x02000001","current_version":"0x03000001","epoch":"3"}},"genesis_validators_root":"{DEVNET_GVR}"}},"beacon_block":{{"version":"CAPELLA","block_header":{{"slot":"{slot}","proposer_index":"0","parent_root":"{r}","state_root":"{r}","body_root":"{r}"}}}}}}"#
    )
}

/// The devnet's genesis validators root (8 interop validators).
const DEVNET_GVR: &str = "0x270d43e74ce340de4bca2b1936beca0f4f5408d9e78aec4850920baf659d5b69";

fn pubkeys(keystores: &Path) -> Vec<String> {
    let mut keys: Vec<String> = std::fs::read_dir(keystores)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("0x"))
        .collect();
    keys.sort();
    keys
}

#[test]
fn lodestar_devnet_signs_every_duty_through_keyguard_across_a_restart() {
    let test_start = Instant::now();
    let test = "lodestar_devnet";
    let Some(lodestar) = require_lodestar(test) else {
        return;
    };
    eprintln!("[{:>5.1?}] Lodestar ready", test_start.elapsed());

    // Two-second slots. Measured on a 2-core machine: with one-second slots the devnet
    // passes at a load average of ~5 (parallel cargo builds), but with two more busy
    // processes the validator client missed about a quarter of its attestations and
    // finality stalled for ~40 s (the beacon node, the validator client and keyguard share
    // two cores with ~40 sign requests per slot). With two-second slots and the same extra
    // load no duty was missed; the test takes ~3 minutes instead of ~1.7.
    // KEYGUARD_LODESTAR_SECONDS_PER_SLOT=1 runs the faster variant (timeouts scale).
    let seconds_per_slot = std::env::var("KEYGUARD_LODESTAR_SECONDS_PER_SLOT")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2);
    let params = DevnetParams {
        validators: 8,
        seconds_per_slot,
        altair_epoch: 1,
        bellatrix_epoch: 2,
        capella_epoch: 3,
    };
    let tmp = tempfile::Builder::new()
        .prefix("keyguard-lodestar-")
        .tempdir()
        .unwrap();
    // KEYGUARD_LODESTAR_KEEP=1 keeps the directory (every process's log) for inspection.
    let (root, _cleanup) = if std::env::var_os("KEYGUARD_LODESTAR_KEEP").is_some() {
        (tmp.keep(), None)
    } else {
        (tmp.path().to_path_buf(), Some(tmp))
    };
    let root = root.as_path();
    eprintln!("work directory: {}", root.display());

    // Devnet config and the validators' keystores, for keyguard.
    let testnet = root.join("testnet");
    lodestar.dump_testnet_files(&params, &testnet).unwrap();
    let keystores = testnet.join("keystores");
    let keys = pubkeys(&keystores);
    assert_eq!(keys.len(), 8, "dumped keystores: {keys:?}");

    let config = testnet.join("config.yaml");
    let secrets = testnet.join("secrets");
    let data = root.join("keyguard-data");
    let args = [
        "--network",
        config.to_str().unwrap(),
        "--keystores",
        keystores.to_str().unwrap(),
        "--passwords",
        secrets.to_str().unwrap(),
        "--data-dir",
        data.to_str().unwrap(),
    ];
    let mut signer = Signer::start(&args, root).unwrap();
    let listed: Vec<String> =
        reqwest::blocking::get(format!("{}/api/v1/eth2/publicKeys", signer.url()))
            .unwrap()
            .json()
            .unwrap();
    assert_eq!(listed.len(), 8, "keyguard lists {listed:?}");
    eprintln!(
        "[{:>5.1?}] keyguard healthy at {}",
        test_start.elapsed(),
        signer.url()
    );

    let mut beacon = lodestar
        .start_beacon_node(&params, &root.join("beacon"))
        .unwrap();
    eprintln!(
        "[{:>5.1?}] beacon node up at {}",
        test_start.elapsed(),
        beacon.rest_url
    );
    let mut validator = lodestar
        .start_validator_client(
            &params,
            &beacon.rest_url,
            &signer.url(),
            &root.join("validator"),
            true,
        )
        .unwrap();

    // Phase 1: two epochs of finality after CAPELLA. About 8 epochs of 16 s with 2 s slots.
    let epoch_secs = 8 * params.seconds_per_slot;
    let target = params.capella_epoch + 2;
    let phase1_timeout = Duration::from_secs(epoch_secs * (target + 6) + 30);
    let finalized = beacon
        .wait_finalized(target, phase1_timeout, &mut [&mut validator])
        .unwrap_or_else(|e| {
            panic!(
                "phase 1: {e:#}\nvalidator log tail:\n{}",
                validator.log_tail(40)
            )
        });
    signer.check_running().unwrap();
    eprintln!(
        "[{:>5.1?}] phase 1: finalized epoch {finalized}",
        test_start.elapsed()
    );
    let phase1 = signed_counts(
        "phase 1",
        &signer.sign_request_counts().unwrap(),
        &signer.log(),
    );
    let missing: Vec<&str> = REQUIRED_TYPES
        .into_iter()
        .filter(|ty| !phase1.contains_key(*ty))
        .collect();
    assert!(
        missing.is_empty(),
        "phase 1: no signed requests of {missing:?}; signed: {phase1:?}"
    );
    let registrations = phase1.get("VALIDATOR_REGISTRATION").copied().unwrap_or(0);
    assert!(
        registrations > 0,
        "phase 1: --builder sent no VALIDATOR_REGISTRATION; signed: {phase1:?}"
    );

    // Phase 2: SIGKILL keyguard mid-devnet, leave a gap of about a slot (the validator
    // client sees connection errors and misses those duties), then start it again on the
    // same port and data directory.
    signer.kill();
    let killed_at = Instant::now();
    // What survived the SIGKILL: at least every block and attestation keyguard had
    // answered with a signature when the metrics were read (each is a distinct record).
    let after_kill = export_records(&config, &data);
    for (ty, kind) in [("BLOCK_V2", "block"), ("ATTESTATION", "attestation")] {
        let recorded = after_kill
            .iter()
            .filter(|r| {
                matches!(
                    (r, kind),
                    (Record::Block { .. }, "block") | (Record::Attestation { .. }, "attestation")
                )
            })
            .count() as u64;
        assert!(
            recorded >= phase1[ty],
            "after the SIGKILL the database holds {recorded} {kind} records, but {} {ty} \
             requests had been signed",
            phase1[ty]
        );
    }
    std::thread::sleep(Duration::from_secs(params.seconds_per_slot));
    signer.restart().unwrap();
    // keyguard serves while its keystores decrypt (seconds in a debug build), answering
    // 404 (unknown key) until they are loaded: that is part of the gap. Judge phase 2 by
    // what happened after it reported healthy.
    let at_healthy = signer.sign_request_counts().unwrap();
    let during_load: u64 = at_healthy
        .iter()
        .filter(|((_, outcome, _), _)| outcome != "signed")
        .map(|(_, n)| n)
        .sum();
    eprintln!("requests answered without a signature while keys loaded: {during_load}");
    eprintln!(
        "[{:>5.1?}] keyguard restarted after SIGKILL ({:.1?} gap)",
        test_start.elapsed(),
        killed_at.elapsed()
    );
    let target2 = finalized + 3;
    let finalized2 = beacon
        .wait_finalized(
            target2,
            Duration::from_secs(epoch_secs * 8 + 30),
            &mut [&mut validator],
        )
        .unwrap_or_else(|e| {
            panic!(
                "phase 2: {e:#}\nvalidator log tail:\n{}",
                validator.log_tail(40)
            )
        });
    signer.check_running().unwrap();
    eprintln!(
        "[{:>5.1?}] phase 2: finalized epoch {finalized2}",
        test_start.elapsed()
    );
    let mut after = signer.sign_request_counts().unwrap();
    for (labels, n) in after.iter_mut() {
        *n -= at_healthy.get(labels).copied().unwrap_or(0);
    }
    let phase2 = signed_counts("phase 2 (after the restart)", &after, &signer.log());
    for ty in [
        "BLOCK_V2",
        "ATTESTATION",
        "RANDAO_REVEAL",
        "SYNC_COMMITTEE_MESSAGE",
    ] {
        assert!(
            phase2.contains_key(ty),
            "phase 2: no signed {ty} after the restart; signed: {phase2:?}"
        );
    }

    // The records from before the kill are enforced after the restart: a different block
    // at a slot signed before the kill is refused.
    let (pubkey, slot) = after_kill
        .iter()
        .find_map(|r| match r {
            Record::Block { pubkey, slot, .. } if *slot >= 8 * params.capella_epoch => {
                Some((pubkey.clone(), *slot))
            }
            _ => None,
        })
        .expect("a CAPELLA block was signed before the kill");
    let resp = reqwest::blocking::Client::new()
        .post(format!("{}/api/v1/eth2/sign/{pubkey}", signer.url()))
        .header("content-type", "application/json")
        .body(conflicting_block(slot))
        .send()
        .unwrap();
    let status = resp.status().as_u16();
    assert_eq!(
        status,
        412,
        "double proposal at slot {slot} for {pubkey}: want 412, got {status} {}",
        resp.text().unwrap_or_default()
    );

    let beacon_log = beacon.process.log();
    let invalid: Vec<&str> = beacon_log
        .lines()
        .filter(|l| l.contains("INVALID_SIGNATURE"))
        .take(5)
        .collect();
    assert!(
        invalid.is_empty(),
        "the beacon node saw invalid signatures:\n{}",
        invalid.join("\n")
    );
    let vc_log = validator.log();
    // Expected noise: the signer gap, and `--builder` trying a blinded block first (the
    // devnet has no builder; the client falls back to a full block).
    let count = |needle: &str| vc_log.lines().filter(|l| l.contains(needle)).count();
    eprintln!(
        "validator client: {} signer connection errors, {} 'no key loaded' answers (restart \
         gap), {} builder fallbacks",
        count("ECONNREFUSED"),
        count("is loaded\"}"),
        count("Failed to produce builder block")
    );

    drop(validator);
    drop(beacon);
    signer.terminate(Duration::from_secs(10)).unwrap();
    // Nothing that survived the kill went missing after the restart.
    let at_end = export_records(&config, &data);
    let lost: Vec<&Record> = after_kill.difference(&at_end).take(5).collect();
    assert!(
        lost.is_empty(),
        "records lost after the restart (of {}): {lost:?}",
        after_kill.len()
    );
    eprintln!(
        "slashing records: {} after the SIGKILL, {} at the end, none lost",
        after_kill.len(),
        at_end.len()
    );
    eprintln!(
        "lodestar devnet test passed in {:.1?} (seconds per slot: {})",
        test_start.elapsed(),
        params.seconds_per_slot
    );
}
