//! Remote keys end to end: a front keyguard holds `[[keys.remote]]` keys whose signatures
//! a second keyguard makes over the Web3Signer API. The front recomputes the root, applies
//! its own slashing protection first, and releases a remote signature only after it
//! verifies; a remote that lies, fails, errs or hangs is refused with 502 and nothing is
//! released.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::time::Duration;

use interop_tests::keyguard_process::{free_port, KeyguardProcess};
use interop_tests::requests;
use keyguard::consensus::{prepare, Network};
use keyguard::keys::{interop_secret, pubkey_hex, BLS_DST};

const NETWORK: &str = "config/networks/devnet-minimal.yaml";

/// The public key and secret scalar of interop key `i`, derived with blst directly.
fn interop_key(i: u64) -> (String, blst::min_pk::SecretKey) {
    let sk = blst::min_pk::SecretKey::from_bytes(interop_secret(i).as_ref()).unwrap();
    let pk = sk.sk_to_pk().compress();
    (pubkey_hex(&pk), sk)
}

fn devnet() -> Network {
    let path = interop_tests::keyguard_process::workspace_root().join(NETWORK);
    let text = std::fs::read_to_string(path).unwrap();
    Network::from_config_str(&text, "devnet-minimal").unwrap()
}

/// POSTs a sign request asking for JSON: (status, body).
fn sign(kg: &KeyguardProcess, pubkey: &str, body: &str) -> (u16, serde_json::Value) {
    let resp = reqwest::blocking::Client::new()
        .post(format!("{}/api/v1/eth2/sign/{pubkey}", kg.url))
        .header("Accept", "application/json")
        .body(body.to_string())
        .send()
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().unwrap_or(serde_json::Value::Null))
}

/// Verifies `signature_hex` as `pubkey`'s signature of the root of `body`.
fn verifies(pubkey: &str, body: &str, signature_hex: &str) -> bool {
    let root = prepare(body.as_bytes(), &devnet()).unwrap().signing_root;
    let pk = blst::min_pk::PublicKey::from_bytes(&hex::decode(&pubkey[2..]).unwrap()).unwrap();
    let sig = blst::min_pk::Signature::from_bytes(
        &hex::decode(signature_hex.trim_start_matches("0x")).unwrap(),
    )
    .unwrap();
    sig.verify(true, &root, BLS_DST, &[], &pk, true) == blst::BLST_ERROR::BLST_SUCCESS
}

/// Writes a config with one `[[keys.remote]]` entry per (url, pubkey, timeout_ms).
fn front_config(dir: &Path, remotes: &[(String, String, u64)]) -> String {
    let mut text = String::new();
    for (url, pubkey, timeout_ms) in remotes {
        text.push_str(&format!(
            "[[keys.remote]]\nurl = \"{url}\"\npubkeys = [\"{pubkey}\"]\ntimeout_ms = {timeout_ms}\n\n"
        ));
    }
    let path = dir.join("front.toml");
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

#[test]
fn a_remote_key_signs_through_another_keyguard_behind_local_slashing_protection() {
    let tmp = tempfile::tempdir().unwrap();
    let back_data = tmp.path().join("back");
    let front_data = tmp.path().join("front");
    let back = KeyguardProcess::start_healthy(
        &[
            "--network",
            NETWORK,
            "--interop-keys",
            "3",
            "--data-dir",
            back_data.to_str().unwrap(),
        ],
        tmp.path(),
    )
    .unwrap();
    let (pk0, sk0) = interop_key(0);
    let (pk1, _) = interop_key(1);
    let (pk2, _) = interop_key(2);
    let mut text = String::new();
    text.push_str(&format!(
        "[[keys.remote]]\nurl = \"{}/\"\npubkeys = [\"{pk0}\", \"{pk1}\"]\n",
        back.url
    ));
    let config = tmp.path().join("front.toml");
    std::fs::write(&config, text).unwrap();
    let front = KeyguardProcess::start_healthy(
        &[
            "--config",
            config.to_str().unwrap(),
            "--network",
            NETWORK,
            "--data-dir",
            front_data.to_str().unwrap(),
        ],
        tmp.path(),
    )
    .unwrap();
    let mut served = front.public_keys().unwrap();
    served.sort();
    let mut expected = vec![pk0.clone(), pk1.clone()];
    expected.sort();
    assert_eq!(served, expected, "the front serves exactly its remote keys");

    // A randao reveal: the remote's signature, verified, equal to the key's own.
    let randao = requests::randao(3);
    let (status, body) = sign(&front, &pk0, &randao);
    assert_eq!(status, 200, "{body}");
    let signature = body["signature"].as_str().unwrap().to_string();
    assert!(verifies(&pk0, &randao, &signature));
    let root = prepare(randao.as_bytes(), &devnet()).unwrap().signing_root;
    let direct = format!(
        "0x{}",
        hex::encode(sk0.sign(&root, BLS_DST, &[]).compress())
    );
    assert_eq!(signature, direct);

    // An attestation is recorded by the front before it is forwarded; a double vote is
    // refused by the front's own database and never reaches the remote.
    let vote = requests::attestation(1, 2, 0xaa);
    let (status, body) = sign(&front, &pk1, &vote);
    assert_eq!(status, 200, "{body}");
    assert!(verifies(&pk1, &vote, body["signature"].as_str().unwrap()));
    let double = requests::attestation(1, 2, 0xbb);
    let (status, body) = sign(&front, &pk1, &double);
    assert_eq!(status, 412, "{body}");
    assert!(body.get("signature").is_none());
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("slashing protection"),
        "{body}"
    );
    let attestations_at_back =
        back.metric("keyguard_sign_requests_total", &[("type", "ATTESTATION")]);
    assert_eq!(
        attestations_at_back, 1.0,
        "only the first vote was forwarded"
    );

    // A key the remote holds but the front was not given: unknown here, labelled with
    // its type.
    let (status, _) = sign(&front, &pk2, &randao);
    assert_eq!(status, 404);
    assert_eq!(
        front.metric(
            "keyguard_sign_requests_total",
            &[("type", "RANDAO_REVEAL"), ("outcome", "unknown_key")]
        ),
        1.0
    );
    assert_eq!(
        front.metric(
            "keyguard_keys_loaded",
            &[("source", "remote"), ("state", "loaded")]
        ),
        2.0
    );
}

/// How a fake remote answers.
#[derive(Clone, Copy)]
enum Fake {
    /// 200 with a valid signature by the right key, of another root.
    Lies,
    /// 500 with a JSON message.
    Errs,
    /// Reads the request and never answers.
    Hangs,
}

/// Serves `fake` on a free port in background threads; returns its URL.
fn spawn_fake(fake: Fake, signature: String) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let signature = signature.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut length = 0usize;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let lower = line.to_ascii_lowercase();
                    if let Some(v) = lower.strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap();
                    }
                    if line == "\r\n" {
                        break;
                    }
                }
                let mut body = vec![0u8; length];
                reader.read_exact(&mut body).unwrap();
                let (status, answer) = match fake {
                    Fake::Lies => ("200 OK", format!("{{\"signature\":\"{signature}\"}}")),
                    Fake::Errs => (
                        "500 Internal Server Error",
                        "{\"message\":\"the vault is sealed\"}".to_string(),
                    ),
                    Fake::Hangs => {
                        std::thread::sleep(Duration::from_secs(30));
                        return;
                    }
                };
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                    answer.len()
                );
            });
        }
    });
    url
}

#[test]
fn a_remote_that_lies_fails_errs_or_hangs_is_refused_and_nothing_is_released() {
    let tmp = tempfile::tempdir().unwrap();
    let (pk0, sk0) = interop_key(0);
    let (pk1, _) = interop_key(1);
    let (pk2, _) = interop_key(2);
    let (pk3, _) = interop_key(3);
    // The liar's answer: key 0's valid signature, of another root.
    let lie = format!(
        "0x{}",
        hex::encode(sk0.sign(&[0x77; 32], BLS_DST, &[]).compress())
    );
    let nobody = format!("http://127.0.0.1:{}", free_port());
    let config = front_config(
        tmp.path(),
        &[
            (spawn_fake(Fake::Lies, lie.clone()), pk0.clone(), 5000),
            (nobody, pk1.clone(), 5000),
            (spawn_fake(Fake::Errs, String::new()), pk2.clone(), 5000),
            (spawn_fake(Fake::Hangs, String::new()), pk3.clone(), 300),
        ],
    );
    let data = tmp.path().join("data");
    let front = KeyguardProcess::start_healthy(
        &[
            "--config",
            &config,
            "--network",
            NETWORK,
            "--data-dir",
            data.to_str().unwrap(),
        ],
        tmp.path(),
    )
    .unwrap();
    let randao = requests::randao(5);
    let cases = [
        (&pk0, "does not verify"),
        (&pk1, "unreachable"),
        (&pk2, "the vault is sealed"),
        (&pk3, "did not answer within 300 ms"),
    ];
    for (pubkey, why) in cases {
        let (status, body) = sign(&front, pubkey, &randao);
        assert_eq!(status, 502, "{pubkey}: {body}");
        assert!(body.get("signature").is_none(), "{body}");
        let message = body["message"].as_str().unwrap();
        assert!(message.contains(why), "{pubkey}: {message}");
        assert!(
            !message.contains(&lie[2..]),
            "the wrong signature is not shown"
        );
    }
    // Also for a block: recorded by the front, then refused because the remote lies.
    let (status, body) = sign(&front, &pk0, &requests::block_header(9, 1));
    assert_eq!(status, 502, "{body}");
    assert!(body.get("signature").is_none());
    assert_eq!(
        front.metric("keyguard_sign_requests_total", &[("outcome", "error")]),
        5.0
    );
    assert_eq!(
        front.metric("keyguard_sign_requests_total", &[("outcome", "signed")]),
        0.0
    );
}
