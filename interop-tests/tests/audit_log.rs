//! The audit log with the real binary: signed, refused and bad requests are recorded in
//! order, SIGTERM flushes the log, `keyguard audit verify` accepts it and names the right
//! line of a tampered copy, and a restart continues the chain.

use std::path::Path;
use std::time::Duration;

use interop_tests::keyguard_process::{keyguard_command, KeyguardProcess};
use interop_tests::requests;

/// Interop key 0's pubkey: a well-known value, independent of our code.
const INTEROP_PUBKEY_0: &str = "0xa99a76ed7796f7be22d5b7e85deeb7c5677e88e511e0b337618f8c4eb61349b4bf2d153f649f7b53359fe8b94a38e44c";
/// Interop keys served.
const KEYS: usize = 2;

fn start(data: &Path, log: &Path, tmp: &Path) -> KeyguardProcess {
    let mut kg = KeyguardProcess::start(
        &[
            "--network",
            "config/networks/devnet-minimal.yaml",
            "--interop-keys",
            &KEYS.to_string(),
            "--data-dir",
            data.to_str().unwrap(),
            "--audit-log",
            log.to_str().unwrap(),
        ],
        tmp,
    )
    .unwrap();
    kg.wait_healthy(Duration::from_secs(30)).unwrap();
    kg
}

fn sign(kg: &KeyguardProcess, pubkey: &str, body: String) -> (u16, serde_json::Value) {
    let resp = reqwest::blocking::Client::new()
        .post(format!("{}/api/v1/eth2/sign/{pubkey}", kg.url))
        .header("Accept", "application/json")
        .body(body)
        .send()
        .unwrap();
    (resp.status().as_u16(), resp.json().unwrap())
}

fn stop(kg: &mut KeyguardProcess) {
    let status = kg.terminate(Duration::from_secs(30)).unwrap();
    assert!(
        status.success(),
        "keyguard exited with {status}:\n{}",
        kg.log()
    );
}

/// `keyguard audit verify FILE`: (exit code, stdout, stderr).
fn verify(file: &Path) -> (i32, String, String) {
    let out = keyguard_command(&["audit", "verify", file.to_str().unwrap()]);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn read_lines(file: &Path) -> Vec<String> {
    std::fs::read_to_string(file)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn json(line: &str) -> serde_json::Value {
    serde_json::from_str(line).unwrap()
}

/// Writes `lines` to a copy and returns the line `verify` names in its error.
fn broken_line_of(tmp: &Path, name: &str, lines: &[String]) -> String {
    let copy = tmp.join(name);
    std::fs::write(&copy, lines.join("\n") + "\n").unwrap();
    let (code, stdout, stderr) = verify(&copy);
    assert_eq!(code, 1, "{name} verified: {stdout}");
    let at = stderr.find(": line ").expect("error names a line") + 2;
    stderr[at..].split(" (").next().unwrap().to_owned()
}

fn bls_verifies(pubkey_hex: &str, root_hex: &str, sig_hex: &str) -> bool {
    let decode = |h: &str| hex::decode(h.trim_start_matches("0x")).unwrap();
    let pk = blst::min_pk::PublicKey::from_bytes(&decode(pubkey_hex)).unwrap();
    let sig = blst::min_pk::Signature::from_bytes(&decode(sig_hex)).unwrap();
    sig.verify(
        true,
        &decode(root_hex),
        keyguard::keys::BLS_DST,
        &[],
        &pk,
        true,
    ) == blst::BLST_ERROR::BLST_SUCCESS
}

#[test]
fn signing_decisions_are_chained_verified_and_tamper_evident() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, log) = (
        tmp.path().join("data"),
        tmp.path().join("audit/audit.jsonl"),
    );
    let mut kg = start(&data, &log, tmp.path());

    let health: serde_json::Value = reqwest::blocking::get(format!("{}/healthcheck", kg.url))
        .unwrap()
        .json()
        .unwrap();
    let audit_check = health["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "audit-log-check")
        .expect("healthcheck has an audit check");
    assert_eq!(audit_check["status"], "UP");

    let (status, signed) = sign(&kg, INTEROP_PUBKEY_0, requests::attestation(1, 2, 1));
    assert_eq!(status, 200, "{signed}");
    let (status, _) = sign(&kg, INTEROP_PUBKEY_0, requests::attestation(1, 2, 2));
    assert_eq!(status, 412, "a double vote is refused");
    let (status, _) = sign(&kg, INTEROP_PUBKEY_0, "{not json".into());
    assert_eq!(status, 400);
    let unknown_pubkey = format!("0x{}", "11".repeat(48));
    let (status, _) = sign(&kg, &unknown_pubkey, requests::randao(1));
    assert_eq!(status, 404);
    stop(&mut kg);

    // SIGTERM flushed every event; the chain verifies.
    let (code, stdout, stderr) = verify(&log);
    let lines = read_lines(&log);
    // log_open, a key_load per key, four decisions, log_close.
    let expected = 1 + KEYS + 4 + 1;
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.contains(&format!("OK: {expected} lines, last seq {}", expected - 1)),
        "{stdout}"
    );
    assert_eq!(lines.len(), expected);
    let events: Vec<serde_json::Value> = lines.iter().map(|l| json(l)).collect();
    assert_eq!(events[0]["event"], "log_open");
    assert_eq!(events[0]["by"], "keyguard run");
    for e in &events[1..=KEYS] {
        assert_eq!(e["event"], "key_load");
    }
    assert_eq!(events[expected - 1]["event"], "log_close");
    assert_eq!(events[expected - 1]["by"], "keyguard run");
    let signs = &events[1 + KEYS..expected - 1];
    let outcomes: Vec<&str> = signs
        .iter()
        .map(|e| e["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(
        outcomes,
        ["signed", "slashing_refused", "bad_request", "unknown_key"]
    );
    let first = &signs[0];
    assert_eq!(first["event"], "sign");
    assert_eq!(first["client"], "anonymous");
    assert_eq!(first["pubkey"], INTEROP_PUBKEY_0);
    assert_eq!(first["type"], "ATTESTATION");
    assert_eq!(
        (
            first["source_epoch"].as_u64(),
            first["target_epoch"].as_u64()
        ),
        (Some(1), Some(2))
    );
    // The recorded root is the one that was signed.
    assert!(bls_verifies(
        INTEROP_PUBKEY_0,
        first["signing_root"].as_str().unwrap(),
        signed["signature"].as_str().unwrap()
    ));
    assert_eq!(signs[1]["reason"], "double_vote");
    assert_eq!(signs[3]["pubkey"], unknown_pubkey.as_str());
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.contains("secret"), "no secrets in the log");

    // Tampered copies: the refused attestation is line KEYS + 3.
    let refused_line = KEYS + 3;
    let mut changed = lines.clone();
    changed[refused_line - 1] = changed[refused_line - 1].replacen("double_vote", "double_votf", 1);
    assert_ne!(changed, lines);
    assert_eq!(
        broken_line_of(tmp.path(), "changed.jsonl", &changed),
        format!("line {refused_line}")
    );
    let mut deleted = lines.clone();
    deleted.remove(refused_line - 1);
    assert_eq!(
        broken_line_of(tmp.path(), "deleted.jsonl", &deleted),
        format!("line {refused_line}")
    );
    let mut swapped = lines.clone();
    swapped.swap(refused_line - 1, refused_line);
    assert_eq!(
        broken_line_of(tmp.path(), "swapped.jsonl", &swapped),
        format!("line {refused_line}")
    );

    // A restart on the same log continues the chain.
    let mut kg = start(&data, &log, tmp.path());
    let (status, _) = sign(&kg, INTEROP_PUBKEY_0, requests::attestation(2, 3, 1));
    assert_eq!(status, 200);
    stop(&mut kg);
    let (code, stdout, stderr) = verify(&log);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let all = read_lines(&log);
    // log_open, the key_loads, one decision, log_close.
    assert_eq!(all.len(), expected + 1 + KEYS + 1 + 1);
    let reopened = json(&all[expected]);
    assert_eq!(reopened["event"], "log_open");
    assert_eq!(reopened["seq"].as_u64(), Some(expected as u64));
    assert_eq!(json(&all[all.len() - 2])["outcome"], "signed");
    assert_eq!(json(all.last().unwrap())["event"], "log_close");
}

#[test]
fn access_refusals_are_audited() {
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("audit.jsonl");
    let token = tmp.path().join("scoped.token");
    std::fs::write(&token, "scoped-token-3e9c1a7b5d2f8064\n").unwrap();
    let config = tmp.path().join("keyguard.toml");
    std::fs::write(
        &config,
        format!(
            "[[access.clients]]\nname = \"scoped\"\ntoken_file = \"{}\"\n\
             pubkeys = [\"{INTEROP_PUBKEY_0}\"]\ntypes = [\"RANDAO_REVEAL\"]\n",
            token.display()
        ),
    )
    .unwrap();
    let mut kg = KeyguardProcess::start(
        &[
            "--network",
            "config/networks/devnet-minimal.yaml",
            "--interop-keys",
            &KEYS.to_string(),
            "--data-dir",
            tmp.path().join("data").to_str().unwrap(),
            "--audit-log",
            log.to_str().unwrap(),
            "--config",
            config.to_str().unwrap(),
        ],
        tmp.path(),
    )
    .unwrap();
    kg.wait_healthy(Duration::from_secs(30)).unwrap();
    let interop_key_1 = "0xb89bebc699769726a318c8e9971bd3171297c61aea4a6578a7a4f94b547dcba5bac16a89108b6b6a1fe3695d1a874a0b";
    let client = reqwest::blocking::Client::new();
    let post = |pubkey: &str, headers: &[(&str, &str)], body: String| {
        let mut req = client
            .post(format!("{}/api/v1/eth2/sign/{pubkey}", kg.url))
            .header("Accept", "application/json")
            .body(body);
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        req.send().unwrap().status().as_u16()
    };
    let scoped = ("Authorization", "Bearer scoped-token-3e9c1a7b5d2f8064");
    let randao = || requests::randao(1);
    // Refused by the access layer: a foreign Host, an unknown token, a malformed header.
    assert_eq!(
        post(INTEROP_PUBKEY_0, &[("Host", "evil.example")], randao()),
        403
    );
    assert_eq!(
        post(
            INTEROP_PUBKEY_0,
            &[("Authorization", "Bearer nope")],
            randao()
        ),
        403
    );
    assert_eq!(
        post(
            INTEROP_PUBKEY_0,
            &[("Authorization", "Basic eDp5")],
            randao()
        ),
        401
    );
    // Refused by scope and type: a key outside the scope, a type outside `types`, and an
    // anonymous caller once a client is scoped.
    assert_eq!(post(interop_key_1, &[scoped], randao()), 403);
    assert_eq!(
        post(INTEROP_PUBKEY_0, &[scoped], requests::aggregation_slot(8)),
        403
    );
    assert_eq!(post(INTEROP_PUBKEY_0, &[], randao()), 403);
    assert_eq!(post(INTEROP_PUBKEY_0, &[scoped], randao()), 200);
    stop(&mut kg);

    let (code, stdout, stderr) = verify(&log);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let events: Vec<serde_json::Value> = read_lines(&log).iter().map(|l| json(l)).collect();
    let refusals: Vec<(&str, &str, u64)> = events
        .iter()
        .filter(|e| e["event"] == "access_refused")
        .map(|e| {
            assert!(e["peer"].as_str().unwrap().starts_with("127.0.0.1:"), "{e}");
            assert_eq!(e["path"], format!("/api/v1/eth2/sign/{INTEROP_PUBKEY_0}"));
            (
                e["reason"].as_str().unwrap(),
                e["client"].as_str().unwrap(),
                e["status"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        refusals,
        [
            ("host_not_allowed", "anonymous", 403),
            ("unknown_token", "token", 403),
            ("malformed_authorization", "token", 401),
        ]
    );
    let decisions: Vec<(&str, &str, Option<&str>, Option<&str>)> = events
        .iter()
        .filter(|e| e["event"] == "sign")
        .map(|e| {
            (
                e["client"].as_str().unwrap(),
                e["outcome"].as_str().unwrap(),
                e["reason"].as_str(),
                e["type"].as_str(),
            )
        })
        .collect();
    assert_eq!(
        decisions,
        [
            (
                "token:scoped",
                "forbidden",
                Some("out_of_scope"),
                Some("RANDAO_REVEAL")
            ),
            (
                "token:scoped",
                "forbidden",
                Some("type_not_allowed"),
                Some("AGGREGATION_SLOT")
            ),
            (
                "anonymous",
                "forbidden",
                Some("out_of_scope"),
                Some("RANDAO_REVEAL")
            ),
            ("token:scoped", "signed", None, Some("RANDAO_REVEAL")),
        ]
    );
}

#[test]
fn lost_lifecycle_events_fail_the_exit_with_refuse() {
    // /dev/full fails every write with ENOSPC: a full disk for the whole run.
    let full = Path::new("/dev/full");
    assert!(full.exists(), "this test needs /dev/full (Linux)");
    let tmp = tempfile::tempdir().unwrap();
    let mut kg = KeyguardProcess::start(
        &[
            "--network",
            "config/networks/devnet-minimal.yaml",
            "--interop-keys",
            "1",
            "--data-dir",
            tmp.path().join("data").to_str().unwrap(),
            "--audit-log",
            full.to_str().unwrap(),
        ],
        tmp.path(),
    )
    .unwrap();
    // Signing is refused while the log cannot be written (on_failure = "refuse").
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = sign(&kg, INTEROP_PUBKEY_0, requests::randao(1));
        if status == 500 {
            assert_eq!(
                body["message"],
                "audit log cannot be written; nothing signed"
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still {status}: {body}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // log_open, key_load and log_close were never written: the exit says so.
    let status = kg.terminate(Duration::from_secs(30)).unwrap();
    assert!(!status.success(), "exited 0 with lost lifecycle events");
    let log = kg.log();
    assert!(
        log.contains("audit lifecycle event(s) could not be written"),
        "{log}"
    );
}

#[test]
fn a_second_keyguard_cannot_share_the_log() {
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("audit.jsonl");
    let _kg = start(&tmp.path().join("data1"), &log, tmp.path());
    let second = KeyguardProcess::start(
        &[
            "--network",
            "config/networks/devnet-minimal.yaml",
            "--interop-keys",
            "1",
            "--data-dir",
            tmp.path().join("data2").to_str().unwrap(),
            "--audit-log",
            log.to_str().unwrap(),
        ],
        tmp.path(),
    );
    let Err(err) = second else {
        panic!("a second keyguard started on the same audit log");
    };
    assert!(
        err.to_string().contains("is in use by a running keyguard"),
        "{err}"
    );
}

/// `keyguard ARGS` with the token's flags: (success, stdout + stderr).
fn run_keyguard(args: &[&str], extra: &[String]) -> (bool, String) {
    let mut all: Vec<&str> = args.to_vec();
    all.extend(extra.iter().map(String::as_str));
    let out = keyguard_command(&all);
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[test]
fn key_commands_are_audited_and_wait_for_the_server() {
    let Some(hsm) = interop_tests::softhsm::softhsm() else {
        return;
    };
    let token = hsm.token();
    let flags = token.cli_flags();
    let tmp = tempfile::tempdir().unwrap();
    let (sealed, data, log) = (
        tmp.path().join("sealed"),
        tmp.path().join("data"),
        tmp.path().join("audit.jsonl"),
    );
    let (sealed_s, data_s, log_s) = (
        sealed.to_str().unwrap(),
        data.to_str().unwrap(),
        log.to_str().unwrap(),
    );
    let (ok, out) = run_keyguard(&["hsm", "init-kek"], &flags);
    assert!(ok, "{out}");
    let audited = ["--audit-log", log_s, "--data-dir", data_s];
    let mut generate = vec!["keys", "generate", "--count", "1", "--out", sealed_s];
    generate.extend(audited);
    let (ok, out) = run_keyguard(&generate, &flags);
    assert!(ok, "{out}");
    let pubkey = out
        .lines()
        .find(|l| l.starts_with("0x") && l.len() == 98)
        .expect("generate prints the pubkey")
        .to_owned();

    let mut run_args = vec![
        "--network",
        "config/networks/devnet-minimal.yaml",
        "--sealed-keys",
        sealed_s,
    ];
    run_args.extend(audited);
    let run_args: Vec<String> = run_args
        .iter()
        .map(|s| s.to_string())
        .chain(flags.iter().cloned())
        .collect();
    let run_refs: Vec<&str> = run_args.iter().map(String::as_str).collect();
    let mut kg = KeyguardProcess::start(&run_refs, tmp.path()).unwrap();
    kg.wait_healthy(Duration::from_secs(30)).unwrap();

    // While the server holds the log, a key command refuses before changing anything.
    let mut destroy = vec!["keys", "destroy", "--pubkey", &pubkey, "--dir", sealed_s];
    destroy.extend(audited);
    let (ok, out) = run_keyguard(&destroy, &flags);
    assert!(!ok, "destroy ran while the server holds the audit log");
    assert!(out.contains("is in use by a running keyguard"), "{out}");
    assert_eq!(
        std::fs::read_dir(&sealed).unwrap().count(),
        1,
        "nothing changed"
    );
    stop(&mut kg);

    let (ok, out) = run_keyguard(&destroy, &flags);
    assert!(ok, "{out}");
    let (code, stdout, stderr) = verify(&log);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let events: Vec<(String, String)> = read_lines(&log)
        .iter()
        .map(|l| json(l))
        .map(|e| {
            let name = e["event"].as_str().unwrap().to_owned();
            let who = e["by"]
                .as_str()
                .or(e["pubkey"].as_str())
                .unwrap()
                .to_owned();
            (name, who)
        })
        .collect();
    let expected: Vec<(String, String)> = [
        ("log_open", "keyguard keys generate"),
        ("key_generate", pubkey.as_str()),
        ("log_close", "keyguard keys generate"),
        ("log_open", "keyguard run"),
        ("key_load", pubkey.as_str()),
        ("log_close", "keyguard run"),
        ("log_open", "keyguard keys destroy"),
        ("key_destroy", pubkey.as_str()),
        ("log_close", "keyguard keys destroy"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(events, expected);
}
