//! The `keyguard` binary from the command line, as a user types it: the README's dev-mode
//! command, configuration errors and help.

use std::time::Duration;

use interop_tests::keyguard_process::{keyguard_command, KeyguardProcess};
use interop_tests::requests;

/// Interop key 0's pubkey: a well-known value, independent of our code.
const INTEROP_PUBKEY_0: &str = "0xa99a76ed7796f7be22d5b7e85deeb7c5677e88e511e0b337618f8c4eb61349b4bf2d153f649f7b53359fe8b94a38e44c";

fn verify(pubkey_hex: &str, root: &[u8; 32], sig_hex: &str) -> bool {
    let pk = hex::decode(pubkey_hex.trim_start_matches("0x")).unwrap();
    let sig = hex::decode(sig_hex.trim_start_matches("0x")).unwrap();
    let pk = blst::min_pk::PublicKey::from_bytes(&pk).unwrap();
    let sig = blst::min_pk::Signature::from_bytes(&sig).unwrap();
    sig.verify(true, root, keyguard::keys::BLS_DST, &[], &pk, true)
        == blst::BLST_ERROR::BLST_SUCCESS
}

#[test]
fn dev_mode_serves_interop_keys_and_signs() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut kg = KeyguardProcess::start(
        &[
            "--config",
            "config/dev.toml",
            "--data-dir",
            data.to_str().unwrap(),
        ],
        tmp.path(),
    )
    .unwrap();
    kg.wait_healthy(Duration::from_secs(30)).unwrap();

    let client = reqwest::blocking::Client::new();
    let keys = kg.public_keys().unwrap();
    assert_eq!(keys.len(), 8, "dev mode serves 8 interop keys");
    assert!(keys.contains(&INTEROP_PUBKEY_0.to_string()), "{keys:?}");

    let body = requests::randao(3);
    let network = keyguard::consensus::Network::from_config_file(
        &interop_tests::keyguard_process::workspace_root()
            .join("config/networks/devnet-minimal.yaml"),
    )
    .unwrap();
    let root = keyguard::consensus::prepare(body.as_bytes(), &network)
        .unwrap()
        .signing_root;
    let resp = client
        .post(format!("{}/api/v1/eth2/sign/{INTEROP_PUBKEY_0}", kg.url))
        .header("Accept", "application/json")
        .body(body)
        .send()
        .unwrap();
    assert_eq!(resp.status(), 200);
    let v: serde_json::Value = resp.json().unwrap();
    assert!(verify(
        INTEROP_PUBKEY_0,
        &root,
        v["signature"].as_str().unwrap()
    ));

    // The slashing database was created in the data dir given on the command line.
    assert!(data.join("slashing-protection.sqlite").exists());
    let status = kg.terminate(Duration::from_secs(10)).unwrap();
    assert!(
        status.success(),
        "clean exit on SIGTERM: {status}\n{}",
        kg.log()
    );
}

fn assert_config_error(args: &[&str], setting: &str) {
    let out = keyguard_command(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains(setting), "names {setting}: {stderr}");
}

#[test]
fn bad_configuration_is_one_line_and_exit_code_2() {
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[server]\nlisten = \"127.0.0.1:9000\"\nmax_body = 5\n",
    )
    .unwrap();
    assert_config_error(&["run", "--config", bad.to_str().unwrap()], "max_body");
    assert_config_error(&["run", "--listen", "not-an-address"], "server.listen");
    assert_config_error(&["run", "--network", "nonexistent-net"], "network");
    assert_config_error(
        &["run", "--network", "mainnet", "--interop-keys", "4"],
        "keys.interop_keys",
    );
    assert_config_error(&["run", "--queue-depth", "0"], "queue.depth");
}

#[test]
fn environment_variables_configure_too() {
    let out = std::process::Command::new(interop_tests::keyguard_process::keyguard_binary())
        .args(["run"])
        .env("KEYGUARD_LISTEN", "garbage")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("server.listen"));
}

#[test]
fn help_is_complete() {
    let out = keyguard_command(&["run", "--help"]);
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--config",
        "--network",
        "--listen",
        "--keystores",
        "--passwords",
        "--key-definitions",
        "--slashing-database",
        "--metrics-listen",
        "--log-format",
        "--queue-concurrency",
        "--queue-per-client",
        "--queue-refusal-rate",
        "KEYGUARD_NETWORK",
    ] {
        assert!(help.contains(flag), "run --help mentions {flag}");
    }
    for sub in [
        &["--help"][..],
        &["slashing", "--help"],
        &["slashing", "import", "--help"],
        &["slashing", "export", "--help"],
        &["slashing", "high-watermark", "set", "--help"],
    ] {
        let out = keyguard_command(sub);
        assert!(out.status.success(), "{sub:?}");
        assert!(!out.stdout.is_empty());
    }
}
