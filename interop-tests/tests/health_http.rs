//! `/healthcheck` over HTTP tells anyone who asks whether keyguard is healthy, but not
//! which files it reads or why something failed: those are in the log.

use std::time::{Duration, Instant};

use interop_tests::keyguard_process::KeyguardProcess;

#[test]
fn a_failed_key_is_counted_without_its_path_or_error() {
    let tmp = tempfile::tempdir().unwrap();
    let keystores = tmp.path().join("secret-keystores-dir");
    let passwords = tmp.path().join("passwords");
    std::fs::create_dir_all(&keystores).unwrap();
    std::fs::create_dir_all(&passwords).unwrap();
    // Not a keystore: loading it fails, naming the file.
    std::fs::write(keystores.join("broken-keystore.json"), "{\"crypto\": 1}").unwrap();
    let data = tmp.path().join("data");
    let kg = KeyguardProcess::start(
        &[
            "--network",
            "config/networks/devnet-minimal.yaml",
            "--data-dir",
            data.to_str().unwrap(),
            "--keystores",
            keystores.to_str().unwrap(),
            "--passwords",
            passwords.to_str().unwrap(),
        ],
        tmp.path(),
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let body = loop {
        let resp = reqwest::blocking::get(format!("{}/healthcheck", kg.url)).unwrap();
        let status = resp.status();
        let body = resp.text().unwrap();
        if status == 503 && !body.contains("LOADING") {
            break body;
        }
        assert!(
            Instant::now() < deadline,
            "never reported the failure: {body}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let health: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(health["status"], "DOWN", "{body}");
    let keys = health["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "keys-check")
        .unwrap();
    assert_eq!(keys["data"]["failed"], 1, "{body}");
    assert!(
        !body.contains("broken-keystore"),
        "a file name in the answer: {body}"
    );
    assert!(
        !body.contains("secret-keystores-dir"),
        "a path in the answer: {body}"
    );
    assert!(!body.contains("error"), "error text in the answer: {body}");
    assert!(
        kg.log().contains("broken-keystore.json"),
        "the failure is not in the log:\n{}",
        kg.log()
    );
}

#[test]
fn the_log_holds_no_colour_codes_and_no_forged_or_huge_path_segments() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let kg = KeyguardProcess::start(
        &[
            "--config",
            "config/dev.toml",
            "--data-dir",
            data.to_str().unwrap(),
        ],
        tmp.path(),
    )
    .unwrap();
    // A percent-encoded escape sequence and newline, then a very long tail.
    let forged = format!("0x%1b%5b31mred%0aFAKE-LOG-LINE{}", "a".repeat(4000));
    let status = kg
        .sign_status(&forged, interop_tests::requests::randao(1))
        .unwrap();
    assert!((400..500).contains(&status), "{status}");
    let log = kg.log();
    assert!(
        log.contains("bad request"),
        "the refusal is not logged:\n{log}"
    );
    assert!(
        !log.contains('\u{1b}'),
        "escape codes in the log file:\n{log:?}"
    );
    assert!(
        !log.lines().any(|l| l.starts_with("FAKE-LOG-LINE")),
        "a request forged a log line:\n{log}"
    );
    assert!(
        !log.contains(&"a".repeat(1000)),
        "a huge path segment was logged whole"
    );
}
