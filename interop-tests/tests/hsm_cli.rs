//! The HSM path from the command line, against a real SoftHSM2 token: create the KEK, seal
//! EIP-2335 keystores, generate keys inside the HSM, serve them with `keyguard run`, sign
//! over HTTP and verify, list, refuse duplicates across sources, destroy.

use std::path::Path;
use std::time::Duration;

use interop_tests::keyguard_process::{keyguard_command, KeyguardProcess};
use interop_tests::requests;
use interop_tests::softhsm;
use keyguard::keys::{Kdf, Keystore};
use zeroize::Zeroizing;

/// Everything keyguard printed in this test, checked for secrets at the end.
static OUTPUT: std::sync::Mutex<String> = std::sync::Mutex::new(String::new());

fn record(text: &str) {
    OUTPUT.lock().unwrap().push_str(text);
}

fn run_ok(args: &[String]) -> String {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = keyguard_command(&args);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    record(&stdout);
    record(&stderr);
    assert!(
        out.status.success(),
        "keyguard {args:?} failed:\n{stdout}\n{stderr}"
    );
    stdout
}

fn cmd(words: &[&str], extra: &[String]) -> Vec<String> {
    words
        .iter()
        .map(|s| s.to_string())
        .chain(extra.iter().cloned())
        .collect()
}

/// Two pbkdf2 keystores (interop keys 101 and 102), passwords in `<name>.txt`. Returns
/// the pubkeys and the secrets' hex (to look for in output).
fn write_keystores(ks: &Path, pw: &Path) -> (Vec<String>, Vec<String>) {
    std::fs::create_dir_all(ks).unwrap();
    std::fs::create_dir_all(pw).unwrap();
    let mut pubkeys = Vec::new();
    let mut secrets = Vec::new();
    for n in [101u64, 102] {
        let secret: Zeroizing<[u8; 32]> = keyguard::keys::interop_secret(n);
        secrets.push(hex::encode(*secret));
        let key = keyguard::keys::ValidatorKey::from_secret_bytes(
            &secret,
            keyguard::keys::KeySource::Keystore,
            "test",
        )
        .unwrap();
        let password = format!("password-{n}");
        let store = Keystore::encrypt(
            &secret,
            key.pubkey(),
            &password,
            Kdf::Pbkdf2,
            "m/12381/3600/0/0/0",
        )
        .unwrap();
        std::fs::write(ks.join(format!("key{n}.json")), store.to_json()).unwrap();
        std::fs::write(pw.join(format!("key{n}.txt")), format!("{password}\n")).unwrap();
        pubkeys.push(keyguard::keys::pubkey_hex(key.pubkey()));
    }
    (pubkeys, secrets)
}

fn sign_and_verify(kg: &KeyguardProcess, pubkey: &str) {
    let body = requests::randao(7);
    let network = keyguard::consensus::Network::devnet();
    let root = keyguard::consensus::prepare(body.as_bytes(), &network)
        .unwrap()
        .signing_root;
    let resp = reqwest::blocking::Client::new()
        .post(format!("{}/api/v1/eth2/sign/{pubkey}", kg.url))
        .body(body)
        .send()
        .unwrap();
    assert_eq!(resp.status(), 200);
    // reqwest sends `Accept: */*`, so the answer is JSON.
    let v: serde_json::Value = resp.json().unwrap();
    let sig = hex::decode(v["signature"].as_str().unwrap().trim_start_matches("0x")).unwrap();
    let sig = blst::min_pk::Signature::from_bytes(&sig).unwrap();
    let pk = blst::min_pk::PublicKey::from_bytes(&hex::decode(&pubkey[2..]).unwrap()).unwrap();
    assert_eq!(
        sig.verify(true, &root, keyguard::keys::BLS_DST, &[], &pk, true),
        blst::BLST_ERROR::BLST_SUCCESS,
        "signature of {pubkey} verifies"
    );
}

#[test]
fn sealed_keys_from_cli_to_signature() {
    let Some(hsm) = softhsm::softhsm() else {
        return;
    };
    let token = hsm.token();
    let tmp = tempfile::tempdir().unwrap();
    let (ks, pw, sealed, data) = (
        tmp.path().join("ks"),
        tmp.path().join("pw"),
        tmp.path().join("sealed"),
        tmp.path().join("data"),
    );
    let hsm_flags = token.cli_flags();

    run_ok(&cmd(&["hsm", "init-kek"], &hsm_flags));
    let again = keyguard_command(
        &cmd(&["hsm", "init-kek"], &hsm_flags)
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert!(
        !again.status.success(),
        "a second KEK with the same label is refused"
    );

    let (keystore_pubkeys, secrets) = write_keystores(&ks, &pw);
    let seal = cmd(
        &[
            "keys",
            "seal",
            "--out",
            sealed.to_str().unwrap(),
            "--keystores",
            ks.to_str().unwrap(),
            "--passwords",
            pw.to_str().unwrap(),
        ],
        &hsm_flags,
    );
    run_ok(&seal);
    run_ok(&cmd(
        &[
            "keys",
            "generate",
            "--count",
            "2",
            "--out",
            sealed.to_str().unwrap(),
        ],
        &hsm_flags,
    ));
    assert_eq!(std::fs::read_dir(&sealed).unwrap().count(), 4);

    let mut run_args = cmd(
        &[
            "--network",
            "config/networks/devnet-minimal.yaml",
            "--sealed-keys",
            sealed.to_str().unwrap(),
            "--data-dir",
            data.to_str().unwrap(),
        ],
        &hsm_flags,
    );
    let run_refs: Vec<&str> = run_args.iter().map(String::as_str).collect();
    let mut kg = KeyguardProcess::start(&run_refs, tmp.path()).unwrap();
    kg.wait_healthy(Duration::from_secs(30)).unwrap();
    let keys: Vec<String> = reqwest::blocking::get(format!("{}/api/v1/eth2/publicKeys", kg.url))
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(keys.len(), 4);
    for pk in &keystore_pubkeys {
        assert!(keys.contains(pk), "sealed keystore key {pk} is served");
    }
    for pk in &keys {
        sign_and_verify(&kg, pk);
    }
    // Give the first keystore key slashing history, which `keys destroy` must export.
    let att = reqwest::blocking::Client::new()
        .post(format!(
            "{}/api/v1/eth2/sign/{}",
            kg.url, keystore_pubkeys[0]
        ))
        .body(requests::attestation(3, 4, 1))
        .send()
        .unwrap();
    assert_eq!(att.status(), 200);
    let health = reqwest::blocking::get(format!("{}/healthcheck", kg.url))
        .unwrap()
        .text()
        .unwrap();
    assert!(health.contains("hsm-check"), "{health}");
    record(&kg.log());
    drop(kg);

    let listing = run_ok(&cmd(
        &["keys", "list", "--sealed-keys", sealed.to_str().unwrap()],
        &hsm_flags,
    ));
    assert_eq!(listing.matches(" sealed ").count(), 4, "{listing}");
    assert!(listing.contains("4 loaded, 0 failed"), "{listing}");

    // The same key from two sources: loaded once, the duplicate reported, health DOWN.
    run_args.extend([
        "--keystores".into(),
        ks.display().to_string(),
        "--passwords".into(),
        pw.display().to_string(),
    ]);
    let run_refs: Vec<&str> = run_args.iter().map(String::as_str).collect();
    let kg = KeyguardProcess::start(&run_refs, tmp.path()).unwrap();
    let mut health = String::new();
    for _ in 0..100 {
        let resp = reqwest::blocking::get(format!("{}/healthcheck", kg.url)).unwrap();
        let status = resp.status();
        health = resp.text().unwrap();
        if status == 503 && !health.contains("LOADING") {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(health.contains("DOWN"), "{health}");
    // Which key failed and why is in the log, never in the unauthenticated answer.
    assert!(!health.contains("loaded twice"), "{health}");
    assert!(kg.log().contains("loaded twice"), "{}", kg.log());
    record(&kg.log());
    drop(kg);

    // Destroy: the history is exported first, then the sealed file is gone for good.
    let victim = &keystore_pubkeys[0];
    let destroy = cmd(
        &[
            "keys",
            "destroy",
            "--pubkey",
            victim,
            "--dir",
            sealed.to_str().unwrap(),
            "--data-dir",
            data.to_str().unwrap(),
        ],
        &hsm_flags,
    );
    run_ok(&destroy);
    assert_eq!(std::fs::read_dir(&sealed).unwrap().count(), 3);
    let exported = data
        .join("destroyed-keys")
        .join(format!("{victim}-slashing-protection.json"));
    let output = OUTPUT.lock().unwrap().clone();
    assert!(
        output.contains("key loading finished"),
        "the signer's log was captured"
    );
    for secret in &secrets {
        assert!(
            !output.contains(secret.as_str()),
            "a secret key appeared in keyguard's output"
        );
    }
    assert!(
        !output.contains(&token.pin),
        "the HSM PIN appeared in keyguard's output"
    );
    let history: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&exported).expect("history exported")).unwrap();
    assert_eq!(history["data"][0]["pubkey"], victim.as_str());
    assert_eq!(
        history["data"][0]["signed_attestations"][0]["target_epoch"],
        "4"
    );
}
