//! `/metrics` of the real binary after a known mix of requests: every counter moved by
//! exactly the right amount, and the exposition parses with an independent parser.

use interop_tests::keyguard_process::{sample_values, KeyguardProcess};
use interop_tests::requests;

/// The value of the sample `name` whose labels include all of `labels`.
fn value(scrape: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    let matching = sample_values(scrape, name, labels);
    assert_eq!(
        matching.len(),
        1,
        "exactly one {name} sample with {labels:?}"
    );
    matching[0]
}

#[test]
fn counters_move_by_exactly_the_requests_sent() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let args = [
        "--network",
        "config/networks/devnet-minimal.yaml",
        "--interop-keys",
        "2",
        "--data-dir",
        data.to_str().unwrap(),
        "--metrics-web3signer-compat",
        "true",
    ];
    let kg = KeyguardProcess::start_healthy(&args, tmp.path()).unwrap();
    let client = reqwest::blocking::Client::new();
    let keys = kg.public_keys().unwrap();
    let send = |pubkey: &str, body: String| {
        client
            .post(format!("{}/api/v1/eth2/sign/{pubkey}", kg.url))
            .body(body)
            .send()
            .unwrap()
            .status()
            .as_u16()
    };

    for epoch in 1..=3 {
        assert_eq!(send(&keys[0], requests::randao(epoch)), 200);
    }
    assert_eq!(send(&keys[0], requests::attestation(1, 2, 1)), 200);
    assert_eq!(send(&keys[0], requests::attestation(1, 2, 2)), 412);
    assert_eq!(send(&keys[1], "{broken".into()), 400);
    assert_eq!(send(&keys[1], r#"{"type":"RANDAO_REVEAL"}"#.into()), 400);
    let unknown = format!("0x{}", "ab".repeat(48));
    assert_eq!(send(&unknown, requests::randao(1)), 404);

    let text = kg.metrics().unwrap();
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string())))
        .expect("exposition parses");

    let requests_total =
        |labels: &[(&str, &str)]| value(&scrape, "keyguard_sign_requests_total", labels);
    assert_eq!(
        requests_total(&[("type", "RANDAO_REVEAL"), ("outcome", "signed")]),
        3.0
    );
    assert_eq!(
        requests_total(&[("type", "ATTESTATION"), ("outcome", "signed")]),
        1.0
    );
    assert_eq!(
        requests_total(&[
            ("type", "ATTESTATION"),
            ("outcome", "slashing_refused"),
            ("reason", "double_vote")
        ]),
        1.0
    );
    assert_eq!(
        requests_total(&[("type", "UNKNOWN"), ("outcome", "bad_request")]),
        2.0
    );
    // A request for a key that is not loaded keeps its parsed type.
    assert_eq!(
        requests_total(&[("type", "RANDAO_REVEAL"), ("outcome", "unknown_key")]),
        1.0
    );
    assert_eq!(
        value(
            &scrape,
            "keyguard_sign_request_duration_seconds_count",
            &[("type", "RANDAO_REVEAL"), ("outcome", "signed")]
        ),
        3.0
    );
    assert_eq!(
        value(&scrape, "keyguard_bls_sign_duration_seconds_count", &[]),
        4.0
    );
    assert_eq!(
        value(
            &scrape,
            "keyguard_slashing_refusals_total",
            &[("reason", "double_vote")]
        ),
        1.0
    );
    // Two attestations reached the database; each commit held at least one of them.
    let batches = value(&scrape, "keyguard_slashing_commit_batch_size_count", &[]);
    assert!((1.0..=2.0).contains(&batches), "{batches}");
    assert_eq!(
        value(
            &scrape,
            "keyguard_keys_loaded",
            &[("source", "interop"), ("state", "loaded")]
        ),
        2.0
    );
    assert_eq!(
        value(&scrape, "keyguard_key_loading_progress_ratio", &[]),
        1.0
    );

    // Web3Signer's names, fed by the same events.
    assert_eq!(
        value(
            &scrape,
            "eth2_slashingprotection_permitted_signings_total",
            &[]
        ),
        4.0
    );
    assert_eq!(
        value(
            &scrape,
            "eth2_slashingprotection_prevented_signings_total",
            &[]
        ),
        1.0
    );
    assert_eq!(
        value(&scrape, "http_bls_malformed_request_count_total", &[]),
        2.0
    );
    assert_eq!(
        value(&scrape, "signing_bls_missing_identifier_count_total", &[]),
        1.0
    );
    assert_eq!(value(&scrape, "signing_signers_loaded_count", &[]), 2.0);
}
