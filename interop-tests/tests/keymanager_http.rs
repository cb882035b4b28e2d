//! The keymanager API (`/eth/v1/keystores`) of the real binary: bearer-token auth, batch
//! import with slashing protection, persistence across restarts, deletion with a complete
//! interchange, moving a key to a second keyguard, and HSM-sealed storage (SoftHSM2).

use std::path::Path;
use std::time::Duration;

use interop_tests::keyguard_process::{keyguard_command, KeyguardProcess};
use interop_tests::requests::{self, TEST_GVR};
use interop_tests::softhsm;
use keyguard::keys::{interop_secret, pubkey_hex, Kdf, KeySource, Keystore, ValidatorKey};
use reqwest::blocking::{Client, RequestBuilder};
use serde_json::{json, Value};

const NETWORK: &str = "config/networks/devnet-minimal.yaml";
const KEYSTORES: &str = "/eth/v1/keystores";

/// Starts keyguard on `data` with the keymanager API on (plus `extra` flags).
fn start(data: &Path, log_dir: &Path, extra: &[String]) -> KeyguardProcess {
    let mut args: Vec<String> = [
        "--network",
        NETWORK,
        "--data-dir",
        data.to_str().unwrap(),
        "--keymanager",
        "true",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(extra.iter().cloned());
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut kg = KeyguardProcess::start(&refs, log_dir).unwrap();
    kg.wait_healthy(Duration::from_secs(60)).unwrap();
    kg
}

/// The lines of `keyguard keys list` on `data` that name `pubkey`.
fn keys_list_lines(data: &Path, pubkey: &str) -> Vec<String> {
    let out = keyguard_command(&[
        "keys",
        "list",
        "--network",
        NETWORK,
        "--data-dir",
        data.to_str().unwrap(),
    ]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "keys list failed: {text}");
    text.lines()
        .filter(|l| l.starts_with(pubkey))
        .map(str::to_string)
        .collect()
}

/// The generated token (default location under the data dir).
fn token(data: &Path) -> String {
    std::fs::read_to_string(data.join("keymanager-token"))
        .unwrap()
        .trim()
        .to_string()
}

/// A validator key for interop secret `n`, as a pbkdf2 keystore JSON with `password`.
fn keystore(n: u64, password: &str) -> (String, String) {
    let secret = interop_secret(n);
    let key = ValidatorKey::from_secret_bytes(&secret, KeySource::Keystore, "test").unwrap();
    let path = format!("m/12381/3600/{n}/0/0");
    let ks = Keystore::encrypt(&secret, key.pubkey(), password, Kdf::Pbkdf2, &path).unwrap();
    (pubkey_hex(key.pubkey()), ks.to_json())
}

/// An interchange for `pubkey`: one block at `slot`, one attestation `source -> target`.
fn interchange(pubkey: &str, slot: u64, source: u64, target: u64) -> String {
    json!({
        "metadata": { "interchange_format_version": "5", "genesis_validators_root": TEST_GVR },
        "data": [{
            "pubkey": pubkey,
            "signed_blocks": [{ "slot": slot.to_string() }],
            "signed_attestations": [{
                "source_epoch": source.to_string(),
                "target_epoch": target.to_string()
            }]
        }]
    })
    .to_string()
}

fn authed(req: RequestBuilder, token: &str) -> RequestBuilder {
    req.header("Authorization", format!("Bearer {token}"))
}

/// Sends a keymanager request; returns the status and the JSON body.
fn call(req: RequestBuilder) -> (u16, Value) {
    let resp = req.send().unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().unwrap();
    let body = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("status {status}: body is not JSON ({e}): {text}"));
    (status, body)
}

fn list(kg: &KeyguardProcess, token: &str) -> Vec<Value> {
    let (status, body) = call(authed(
        Client::new().get(format!("{}{KEYSTORES}", kg.url)),
        token,
    ));
    assert_eq!(status, 200, "{body}");
    body["data"].as_array().unwrap().clone()
}

fn import(kg: &KeyguardProcess, token: &str, body: &Value) -> (u16, Value) {
    call(authed(Client::new().post(format!("{}{KEYSTORES}", kg.url)), token).json(body))
}

fn delete(kg: &KeyguardProcess, token: &str, pubkeys: &[&str]) -> (u16, Value) {
    call(
        authed(
            Client::new().delete(format!("{}{KEYSTORES}", kg.url)),
            token,
        )
        .json(&json!({ "pubkeys": pubkeys })),
    )
}

fn statuses(body: &Value) -> Vec<String> {
    body["data"]
        .as_array()
        .unwrap_or_else(|| panic!("no data in {body}"))
        .iter()
        .map(|s| s["status"].as_str().unwrap().to_string())
        .collect()
}

/// Signs `body` with `pubkey`; returns the HTTP status.
fn sign(kg: &KeyguardProcess, pubkey: &str, body: String) -> u16 {
    kg.sign_status(pubkey, body).unwrap()
}

#[test]
fn missing_or_wrong_token_is_refused_and_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let kg = start(&data, tmp.path(), &[]);
    let token = token(&data);
    assert_eq!(
        token.len(),
        64,
        "a generated token is 32 random bytes in hex"
    );
    let url = format!("{}{KEYSTORES}", kg.url);
    let (_, good) = keystore(301, "pw-301");
    let body = json!({ "keystores": [good], "passwords": ["pw-301"] });
    let client = Client::new();

    let (status, err) = call(client.get(&url));
    assert_eq!(status, 401);
    assert!(
        err["message"].as_str().unwrap().contains("Authorization"),
        "{err}"
    );
    let (status, _) = call(
        client
            .post(&url)
            .header("Authorization", "Basic abc")
            .json(&body),
    );
    assert_eq!(status, 401);
    let (status, _) = call(client.post(&url).json(&body));
    assert_eq!(status, 401);
    let (status, err) = call(authed(client.post(&url), "not-the-token").json(&body));
    assert_eq!(status, 403);
    assert!(err["message"].as_str().unwrap().contains("wrong"), "{err}");
    let (status, _) =
        call(authed(client.delete(&url), "not-the-token").json(&json!({"pubkeys": []})));
    assert_eq!(status, 403);

    assert!(
        list(&kg, &token).is_empty(),
        "refused imports imported nothing"
    );
    assert!(!data
        .join("keymanager/keystores")
        .read_dir()
        .unwrap()
        .any(|_| true));
    let log = kg.log();
    assert!(
        log.contains("keymanager-token"),
        "the token's path is logged"
    );
    assert!(!log.contains(&token), "the token itself is never logged");

    // Disabled (the default): the routes do not exist.
    let off_data = tmp.path().join("off");
    let off = KeyguardProcess::start(
        &[
            "--network",
            NETWORK,
            "--data-dir",
            off_data.to_str().unwrap(),
        ],
        tmp.path(),
    )
    .unwrap();
    let (status, _) = call(authed(
        client.get(format!("{}{KEYSTORES}", off.url)),
        &token,
    ));
    assert_eq!(status, 404);
    assert!(!off_data.join("keymanager-token").exists());
}

#[test]
fn import_restart_delete_and_move_to_a_second_keyguard() {
    let tmp = tempfile::tempdir().unwrap();
    let (data_a, data_b) = (tmp.path().join("a"), tmp.path().join("b"));
    let mut a = start(&data_a, tmp.path(), &[]);
    let token_a = token(&data_a);
    let (pk, good) = keystore(302, "right-pw-302");
    let (wrong_pk, wrong) = keystore(303, "right-pw-303");

    // 1. A batch: malformed, wrong password, good (with slashing history).
    let body = json!({
        "keystores": ["{\"crypto\": {}, \"version\": 4}", wrong, good],
        "passwords": ["x", "WRONG-pw-303", "right-pw-302"],
        "slashing_protection": interchange(&pk, 100, 10, 11),
    });
    let (status, resp) = import(&a, &token_a, &body);
    assert_eq!(status, 200, "{resp}");
    assert_eq!(statuses(&resp), ["error", "error", "imported"]);
    let wrong_msg = resp["data"][1]["message"].as_str().unwrap();
    assert!(wrong_msg.contains("wrong password") && !wrong_msg.contains("WRONG-pw-303"));
    let listed = list(&a, &token_a);
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["validating_pubkey"], pk);
    assert_eq!(listed[0]["readonly"], false);
    assert_eq!(listed[0]["derivation_path"], "m/12381/3600/302/0/0");
    assert_eq!(sign(&a, &wrong_pk, requests::randao(1)), 404);

    let again = json!({ "keystores": [good], "passwords": ["right-pw-302"] });
    let (status, resp) = import(&a, &token_a, &again);
    assert_eq!(
        (status, statuses(&resp)),
        (200, vec!["duplicate".to_string()])
    );

    // 2. The imported history protects the key; what lies beyond it signs.
    assert_eq!(sign(&a, &pk, requests::block_header(100, 1)), 412);
    assert_eq!(sign(&a, &pk, requests::attestation(10, 11, 1)), 412);
    assert_eq!(sign(&a, &pk, requests::attestation(9, 10, 1)), 412);
    assert_eq!(sign(&a, &pk, requests::block_header(101, 1)), 200);
    assert_eq!(sign(&a, &pk, requests::attestation(11, 12, 1)), 200);

    // 3. A restart on the same data dir loads the imported key again.
    a.kill();
    drop(a);
    let a = start(&data_a, tmp.path(), &[]);
    let listed = list(&a, &token_a);
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (&listed[0]["validating_pubkey"], &listed[0]["readonly"]),
        (&json!(pk), &json!(false))
    );
    assert_eq!(sign(&a, &pk, requests::block_header(101, 2)), 412);
    assert_eq!(sign(&a, &pk, requests::block_header(102, 1)), 200);
    // `keyguard keys list` shows what `run` loads, imported keys included.
    let lines = keys_list_lines(&data_a, &pk);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].contains(KeySource::Imported.as_str()) && lines[0].contains("loaded"),
        "{lines:?}"
    );

    // 4. Delete: the key stops signing here and its whole history is exported.
    let (status, resp) = delete(&a, &token_a, &[&pk]);
    assert_eq!(status, 200, "{resp}");
    assert_eq!(statuses(&resp), ["deleted"]);
    let exported = resp["slashing_protection"].as_str().unwrap().to_string();
    let v: Value = serde_json::from_str(&exported).unwrap();
    assert_eq!(v["metadata"]["genesis_validators_root"], TEST_GVR);
    assert_eq!(v["data"][0]["pubkey"], pk);
    let slots: Vec<&str> = v["data"][0]["signed_blocks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["slot"].as_str().unwrap())
        .collect();
    assert!(
        slots.contains(&"101") && slots.contains(&"102"),
        "{slots:?}"
    );
    assert_eq!(sign(&a, &pk, requests::block_header(110, 1)), 404);
    assert!(list(&a, &token_a).is_empty());

    // 5. Move it: a second keyguard imports keystore + interchange and refuses what the
    //    first one signed.
    let b = start(&data_b, tmp.path(), &[]);
    let token_b = token(&data_b);
    assert_ne!(token_a, token_b);
    let moved = json!({
        "keystores": [good],
        "passwords": ["right-pw-302"],
        "slashing_protection": exported,
    });
    let (status, resp) = import(&b, &token_b, &moved);
    assert_eq!(
        (status, statuses(&resp)),
        (200, vec!["imported".to_string()])
    );
    assert_eq!(sign(&b, &pk, requests::block_header(102, 2)), 412);
    assert_eq!(sign(&b, &pk, requests::block_header(101, 1)), 412);
    assert_eq!(sign(&b, &pk, requests::attestation(11, 12, 2)), 412);
    assert_eq!(sign(&b, &pk, requests::block_header(103, 1)), 200);
    assert_eq!(sign(&b, &pk, requests::attestation(12, 13, 1)), 200);

    // 6. Deleting again on the first: not active, data still exported; unknown: not found.
    let unknown = pubkey_hex(&[0x8au8; 48]);
    let (status, resp) = delete(&a, &token_a, &[&pk, &unknown]);
    assert_eq!(status, 200, "{resp}");
    assert_eq!(statuses(&resp), ["not_active", "not_found"]);
    let v: Value = serde_json::from_str(resp["slashing_protection"].as_str().unwrap()).unwrap();
    assert_eq!(v["data"].as_array().unwrap().len(), 1);
    assert_eq!(v["data"][0]["pubkey"], pk);
    let (status, _) = delete(&a, &token_a, &["0x1234"]);
    assert_eq!(status, 400);

    // Deleted means deleted: it does not come back after a restart either.
    let mut a = a;
    a.kill();
    drop(a);
    let a = start(&data_a, tmp.path(), &[]);
    assert!(list(&a, &token_a).is_empty());
    assert!(keys_list_lines(&data_a, &pk).is_empty());

    for log in [a.log(), b.log()] {
        for secret in ["right-pw-302", "WRONG-pw-303", &token_a, &token_b] {
            assert!(!log.contains(secret), "a secret leaked into the log");
        }
    }
}

#[test]
fn sealed_imports_survive_restart() {
    let Some(hsm) = softhsm::softhsm() else {
        return;
    };
    let hsm_token = hsm.token();
    let flags = hsm_token.cli_flags();
    let mut init: Vec<&str> = vec!["hsm", "init-kek"];
    init.extend(flags.iter().map(String::as_str));
    let out = keyguard_command(&init);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut kg = start(&data, tmp.path(), &flags);
    let token = token(&data);
    let (pk, good) = keystore(304, "pw-304");
    let body = json!({ "keystores": [good], "passwords": ["pw-304"] });
    let (status, resp) = import(&kg, &token, &body);
    assert_eq!(
        (status, statuses(&resp)),
        (200, vec!["imported".to_string()])
    );

    let sealed = data
        .join("keymanager/sealed")
        .join(format!("{pk}.sealed.json"));
    assert!(
        sealed.is_file(),
        "the key is sealed into {}",
        sealed.display()
    );
    assert!(
        !data.join("keymanager/passwords").exists(),
        "no password is stored when the HSM seals keys"
    );
    kg.kill();
    drop(kg);

    let kg = start(&data, tmp.path(), &flags);
    let listed = list(&kg, &token);
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (&listed[0]["validating_pubkey"], &listed[0]["readonly"]),
        (&json!(pk), &json!(false))
    );
    assert_eq!(sign(&kg, &pk, requests::randao(3)), 200);

    let (status, resp) = delete(&kg, &token, &[&pk]);
    assert_eq!(
        (status, statuses(&resp)),
        (200, vec!["deleted".to_string()])
    );
    assert!(!sealed.exists());
}
