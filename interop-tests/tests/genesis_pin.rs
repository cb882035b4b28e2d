//! The pinned genesis validators root (issue #14, item 3) through the real binary: a bogus
//! root on a fresh database is refused and binds nothing, every type with `fork_info` is
//! checked, a built-in network refuses to start on another chain's database, and the
//! keymanager's delete export carries the bound root and every deleted key.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use interop_tests::keyguard_process::{
    free_port, keyguard_binary, keyguard_command, slashing_export, workspace_root, KeyguardProcess,
};
use interop_tests::requests::{self, TEST_GVR};
use keyguard::keys::{interop_secret, pubkey_hex, Kdf, KeySource, Keystore, ValidatorKey};
use reqwest::blocking::Client;
use serde_json::{json, Value};

const NETWORK: &str = "config/networks/devnet-minimal.yaml";
/// A root of no chain the tests use.
const BOGUS_GVR: &str = "0x9999999999999999999999999999999999999999999999999999999999999999";
/// Sepolia's genesis validators root (another built-in chain than mainnet).
const SEPOLIA_GVR: &str = "0xd8ea171f3c94aea21ebc42a1ed61052acf3f9209c00e4efbaaddac09ed9b8078";

fn start(data: &Path, log_dir: &Path, extra: &[&str]) -> KeyguardProcess {
    let mut args = vec!["--network", NETWORK, "--data-dir", data.to_str().unwrap()];
    args.extend_from_slice(extra);
    let mut kg = KeyguardProcess::start(&args, log_dir).unwrap();
    kg.wait_healthy(Duration::from_secs(60)).unwrap();
    kg
}

/// `body` with its `fork_info` naming `root` instead of the test root.
fn with_root(body: &str, root: &str) -> String {
    assert!(body.contains(TEST_GVR));
    body.replace(TEST_GVR, root)
}

/// The requests of every type with `fork_info` that the helpers build.
fn every_type() -> Vec<(&'static str, String)> {
    vec![
        ("ATTESTATION", requests::attestation(1, 2, 1)),
        ("BLOCK_V2", requests::block_header(20, 1)),
        ("RANDAO_REVEAL", requests::randao(3)),
        ("AGGREGATION_SLOT", requests::aggregation_slot(20)),
        (
            "AGGREGATE_AND_PROOF",
            requests::aggregate_and_proof(20, 1, 2),
        ),
        (
            "SYNC_COMMITTEE_MESSAGE",
            requests::sync_committee_message(20),
        ),
        (
            "SYNC_SELECTION_PROOF",
            requests::sync_selection_proof(20, 0),
        ),
        ("CONTRIBUTION", requests::contribution_and_proof(20, 1, 0)),
        ("VOLUNTARY_EXIT", voluntary_exit(4)),
    ]
}

fn voluntary_exit(epoch: u64) -> String {
    requests::randao(epoch)
        .replace(r#""type":"RANDAO_REVEAL""#, r#""type":"VOLUNTARY_EXIT""#)
        .replace(
            &format!(r#""randao_reveal":{{"epoch":"{epoch}"}}"#),
            &format!(r#""voluntary_exit":{{"epoch":"{epoch}","validator_index":"1"}}"#),
        )
}

#[test]
fn a_bogus_root_on_a_fresh_database_is_refused_and_binds_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut kg = start(
        &data,
        tmp.path(),
        &["--interop-keys", "2", "--genesis-validators-root", TEST_GVR],
    );
    let pk = kg.public_keys().unwrap()[0].clone();

    // Every type that carries fork_info, slashable or not, is refused with another root.
    for (name, body) in every_type() {
        let (status, json) = kg.sign_json(&pk, &with_root(&body, BOGUS_GVR));
        assert_eq!(status, 400, "{name}: {json}");
        let message = json["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("genesis_validators_root") && message.contains("another chain"),
            "{name}: {json}"
        );
    }
    // Then the right root signs blocks and attestations: nothing was bound by the bogus one.
    for (name, body) in every_type() {
        let (status, json) = kg.sign_json(&pk, &body);
        assert_eq!(status, 200, "{name}: {json}");
    }
    kg.terminate(Duration::from_secs(20)).unwrap();
    let exported = slashing_export(NETWORK, &data);
    assert_eq!(exported["metadata"]["genesis_validators_root"], TEST_GVR);
    // Only the good block and attestation were recorded.
    let records = &exported["data"][0];
    assert_eq!(
        records["signed_blocks"].as_array().unwrap().len(),
        1,
        "{exported}"
    );
    assert_eq!(
        records["signed_attestations"].as_array().unwrap().len(),
        1,
        "{exported}"
    );
}

#[test]
fn an_unpinned_custom_network_is_bound_by_its_first_request_with_a_warning() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let kg = start(&data, tmp.path(), &["--interop-keys", "1"]);
    assert!(
        kg.log().contains("GENESIS VALIDATORS ROOT NOT PINNED"),
        "{}",
        kg.log()
    );
    let pk = kg.public_keys().unwrap()[0].clone();
    assert_eq!(kg.sign_json(&pk, &requests::randao(1)).0, 200);
    assert!(
        kg.log().contains("BOUND BY THE FIRST REQUEST"),
        "{}",
        kg.log()
    );
    // From then on another root is refused, also for non-slashable types.
    let (status, json) = kg.sign_json(&pk, &with_root(&requests::randao(2), BOGUS_GVR));
    assert_eq!(status, 400, "{json}");
    assert_eq!(kg.sign_json(&pk, &requests::attestation(1, 2, 1)).0, 200);
}

/// Runs `keyguard run ARGS` until it exits (at most 60 s); its status and standard error.
fn run_until_exit(args: &[&str]) -> (std::process::ExitStatus, String) {
    let listen = format!("127.0.0.1:{}", free_port());
    let mut child = Command::new(keyguard_binary())
        .arg("run")
        .args(args)
        .args(["--listen", &listen])
        .env_remove("KEYGUARD_CONFIG")
        .current_dir(workspace_root())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("keyguard kept running on another chain's database");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    use std::io::Read;
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    (status, stderr)
}

#[test]
fn a_builtin_network_refuses_to_start_on_another_chains_database() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let file = tmp.path().join("sepolia.json");
    let interchange = json!({
        "metadata": { "interchange_format_version": "5", "genesis_validators_root": SEPOLIA_GVR },
        "data": []
    });
    std::fs::write(&file, interchange.to_string()).unwrap();
    let data_arg = data.to_str().unwrap();
    let out = keyguard_command(&[
        "slashing",
        "import",
        "--network",
        "sepolia",
        "--data-dir",
        data_arg,
        file.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let (status, stderr) = run_until_exit(&["--network", "mainnet", "--data-dir", data_arg]);
    assert!(!status.success(), "{stderr}");
    let line = stderr
        .lines()
        .find(|l| l.starts_with("keyguard: error:"))
        .unwrap_or_else(|| panic!("no error line: {stderr}"));
    assert!(
        line.contains(&SEPOLIA_GVR[2..])
            && line.contains("mainnet")
            && line.contains("another chain"),
        "{line}"
    );

    // The same database starts on its own chain.
    let mut kg = KeyguardProcess::start(
        &["--network", "sepolia", "--data-dir", data_arg],
        tmp.path(),
    )
    .unwrap();
    kg.check_running().unwrap();
}

/// A key for interop secret `n`, as a pbkdf2 keystore JSON with `password`.
fn keystore(n: u64, password: &str) -> (String, String) {
    let secret = interop_secret(n);
    let key = ValidatorKey::from_secret_bytes(&secret, KeySource::Keystore, "test").unwrap();
    let path = format!("m/12381/3600/{n}/0/0");
    let ks = Keystore::encrypt(&secret, key.pubkey(), password, Kdf::Pbkdf2, &path).unwrap();
    (pubkey_hex(key.pubkey()), ks.to_json())
}

fn keymanager(
    kg: &KeyguardProcess,
    data: &Path,
    method: reqwest::Method,
    body: Value,
) -> (u16, Value) {
    let token = std::fs::read_to_string(data.join("keymanager-token")).unwrap();
    let resp = Client::new()
        .request(method, format!("{}/eth/v1/keystores", kg.url))
        .header("Authorization", format!("Bearer {}", token.trim()))
        .json(&body)
        .send()
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().unwrap())
}

#[test]
fn delete_export_carries_the_bound_root_and_a_key_without_records() {
    let tmp = tempfile::tempdir().unwrap();
    let (data_a, data_b) = (tmp.path().join("a"), tmp.path().join("b"));
    let a = start(
        &data_a,
        tmp.path(),
        &[
            "--keymanager",
            "true",
            "--genesis-validators-root",
            TEST_GVR,
        ],
    );
    let (signed_pk, signed_ks) = keystore(310, "pw-310");
    let (idle_pk, idle_ks) = keystore(311, "pw-311");
    let (status, resp) = keymanager(
        &a,
        &data_a,
        reqwest::Method::POST,
        json!({ "keystores": [signed_ks, idle_ks], "passwords": ["pw-310", "pw-311"] }),
    );
    assert_eq!(status, 200, "{resp}");
    assert_eq!(
        a.sign_json(&signed_pk, &requests::block_header(30, 1)).0,
        200
    );

    let (status, resp) = keymanager(
        &a,
        &data_a,
        reqwest::Method::DELETE,
        json!({ "pubkeys": [signed_pk, idle_pk] }),
    );
    assert_eq!(status, 200, "{resp}");
    let exported = resp["slashing_protection"].as_str().unwrap().to_string();
    let doc: Value = serde_json::from_str(&exported).unwrap();
    assert_eq!(
        doc["metadata"]["genesis_validators_root"], TEST_GVR,
        "{doc}"
    );
    let entry = |pk: &str| {
        doc["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["pubkey"] == pk)
            .unwrap_or_else(|| panic!("{pk} missing from {doc}"))
            .clone()
    };
    assert_eq!(entry(&signed_pk)["signed_blocks"][0]["slot"], "30");
    let idle = entry(&idle_pk);
    assert_eq!(idle["signed_blocks"], json!([]));
    assert_eq!(idle["signed_attestations"], json!([]));

    // A fresh signer (nothing pinned) imports both keys with the export.
    let b = start(&data_b, tmp.path(), &["--keymanager", "true"]);
    let (status, resp) = keymanager(
        &b,
        &data_b,
        reqwest::Method::POST,
        json!({
            "keystores": [keystore(310, "pw-310").1, keystore(311, "pw-311").1],
            "passwords": ["pw-310", "pw-311"],
            "slashing_protection": exported,
        }),
    );
    assert_eq!(status, 200, "{resp}");
    let statuses: Vec<&str> = resp["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["imported", "imported"], "{resp}");
    // The import bound b to the export's root: the history holds, other roots are refused.
    assert_eq!(
        b.sign_json(&signed_pk, &requests::block_header(30, 2)).0,
        412
    );
    assert_eq!(
        b.sign_json(&signed_pk, &requests::block_header(31, 1)).0,
        200
    );
    assert_eq!(
        b.sign_json(&idle_pk, &requests::attestation(1, 2, 1)).0,
        200
    );
    let (status, json) = b.sign_json(&idle_pk, &with_root(&requests::randao(1), BOGUS_GVR));
    assert_eq!(status, 400, "{json}");
}

/// The same on PostgreSQL: the first start on a built-in network binds the shared database
/// to its root; another network's signer then refuses to start on it.
#[test]
fn postgres_is_bound_at_startup_and_refuses_another_chain() {
    let Some(pg) = interop_tests::postgres::require_postgres(
        "postgres_is_bound_at_startup_and_refuses_another_chain",
    ) else {
        return;
    };
    let url = pg.create_database().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let data_arg = data.to_str().unwrap();
    let db_args = ["--data-dir", data_arg, "--slashing-database", &url];
    let mut sepolia_args = vec!["--network", "sepolia"];
    sepolia_args.extend_from_slice(&db_args);
    let mut kg = KeyguardProcess::start(&sepolia_args, tmp.path()).unwrap();
    kg.check_running().unwrap();
    kg.terminate(Duration::from_secs(20)).unwrap();
    let bound = pg
        .psql(
            url.rsplit('/').next().unwrap(),
            "SELECT encode(genesis_validators_root, 'hex') FROM keyguard_meta",
        )
        .unwrap();
    assert_eq!(bound, &SEPOLIA_GVR[2..]);

    let mut mainnet_args = vec!["--network", "mainnet"];
    mainnet_args.extend_from_slice(&db_args);
    let (status, stderr) = run_until_exit(&mainnet_args);
    assert!(!status.success(), "{stderr}");
    assert!(
        stderr.contains(&SEPOLIA_GVR[2..]) && stderr.contains("another chain"),
        "{stderr}"
    );
}
