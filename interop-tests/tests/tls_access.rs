//! TLS, client certificates and access control through the real binary: CA-verified and
//! fingerprint-pinned client certificates (a refused client gets no TLS session, so no
//! HTTP response at all), a PKCS#12 server identity, bearer-token clients, key scopes and
//! the Host allow-list. Certificates are generated per test with rcgen.

use std::path::Path;

use interop_tests::requests;
use interop_tests::tls::{
    https_client, pkcs12, self_signed_client, CertKey, TestCa, TlsKeyguard, Validity,
};
use keyguard::keys::BLS_DST;
use reqwest::blocking::{Client, Response};

const NETWORK: &str = "config/networks/devnet-minimal.yaml";
/// Interop keys 0 and 1 (the well-known public test keys).
const KEY_0: &str = "0xa99a76ed7796f7be22d5b7e85deeb7c5677e88e511e0b337618f8c4eb61349b4bf2d153f649f7b53359fe8b94a38e44c";
const KEY_1: &str = "0xb89bebc699769726a318c8e9971bd3171297c61aea4a6578a7a4f94b547dcba5bac16a89108b6b6a1fe3695d1a874a0b";

fn write(dir: &Path, name: &str, content: impl AsRef<[u8]>) -> String {
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    path.to_str().unwrap().to_string()
}

/// Arguments shared by every test signer: two interop keys on the devnet.
fn base_args(data: &Path) -> Vec<String> {
    [
        "--network",
        NETWORK,
        "--interop-keys",
        "2",
        "--data-dir",
        data.to_str().unwrap(),
    ]
    .map(String::from)
    .to_vec()
}

fn start(args: &[String], log_dir: &Path, probe: &Client) -> TlsKeyguard {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    TlsKeyguard::start(&args, log_dir, probe).unwrap()
}

/// An `AGGREGATION_SLOT` request (not slashing-protected, so it can be repeated).
fn sign(client: &Client, url: &str, pubkey: &str) -> reqwest::Result<Response> {
    client
        .post(format!("{url}/api/v1/eth2/sign/{pubkey}"))
        .header("Accept", "application/json")
        .body(requests::aggregation_slot(8))
        .send()
}

/// Asserts a 200 with a valid BLS signature by `pubkey` over the request.
fn assert_signed(result: reqwest::Result<Response>, pubkey: &str) {
    let resp = result.expect("the request must get a response");
    assert_eq!(resp.status(), 200, "{:?}", resp.text());
    let body: serde_json::Value = resp.json().unwrap();
    let sig_hex = body["signature"].as_str().unwrap();
    let sig = hex::decode(sig_hex.trim_start_matches("0x")).unwrap();
    assert_eq!(sig.len(), 96);
    let network = keyguard::consensus::Network::from_config_file(
        &interop_tests::keyguard_process::workspace_root().join(NETWORK),
    )
    .unwrap();
    let root = keyguard::consensus::prepare(requests::aggregation_slot(8).as_bytes(), &network)
        .unwrap()
        .signing_root;
    let pk = blst::min_pk::PublicKey::from_bytes(&hex::decode(&pubkey[2..]).unwrap()).unwrap();
    let sig = blst::min_pk::Signature::from_bytes(&sig).unwrap();
    assert_eq!(
        sig.verify(true, &root, BLS_DST, &[], &pk, true),
        blst::BLST_ERROR::BLST_SUCCESS
    );
}

/// Asserts the request got no HTTP response at all: the TLS handshake failed.
fn assert_no_session(result: reqwest::Result<Response>, what: &str) {
    match result {
        Ok(resp) => panic!(
            "{what}: expected no TLS session, got HTTP {}",
            resp.status()
        ),
        Err(e) => assert!(e.status().is_none(), "{what}: {e}"),
    }
}

/// Asserts a JSON error with `status` whose message contains `needle`.
fn assert_refused(result: reqwest::Result<Response>, status: u16, needle: &str) {
    let resp = result.expect("the request must get a response");
    assert_eq!(resp.status(), status);
    let body: serde_json::Value = resp.json().unwrap();
    let message = body["message"].as_str().unwrap();
    assert!(message.contains(needle), "{message}");
}

fn public_keys(client: &Client, url: &str) -> Vec<String> {
    client
        .get(format!("{url}/api/v1/eth2/publicKeys"))
        .send()
        .unwrap()
        .json()
        .unwrap()
}

fn handshake_failures(metrics_url: &str, reason: &str) -> f64 {
    let text = reqwest::blocking::get(format!("{metrics_url}/metrics"))
        .unwrap()
        .text()
        .unwrap();
    let lines = text.lines().map(|l| Ok(l.to_string()));
    let scrape = prometheus_parse::Scrape::parse(lines).unwrap();
    scrape
        .samples
        .iter()
        .find(|s| {
            s.metric == "keyguard_tls_handshake_failures_total"
                && s.labels.get("reason") == Some(reason)
        })
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v) => v,
            _ => panic!("not a counter"),
        })
        .unwrap_or_else(|| panic!("no handshake failure series for {reason}:\n{text}"))
}

/// A signer with a PEM identity issued by `ca`, plus `extra` arguments.
struct PemServer {
    dir: tempfile::TempDir,
    ca: TestCa,
    args: Vec<String>,
}

impl PemServer {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let ca = TestCa::new("keyguard test server CA");
        let server = ca.server();
        let mut args = base_args(&dir.path().join("data"));
        let cert = write(dir.path(), "server.crt", &server.cert_pem);
        let key = write(dir.path(), "server.key", &server.key_pem);
        args.extend(["--tls-cert".into(), cert, "--tls-key".into(), key]);
        Self { dir, ca, args }
    }

    fn client(&self, identity: Option<&CertKey>) -> Client {
        https_client(&self.ca.cert_pem(), identity)
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

#[test]
fn ca_mode_admits_only_current_certificates_of_the_client_ca() {
    let s = PemServer::new();
    let client_ca = TestCa::new("validator clients CA");
    let good = client_ca.client("lighthouse", Validity::Current);
    let mut args = s.args.clone();
    args.extend([
        "--tls-client-ca".into(),
        write(s.path(), "clients-ca.pem", client_ca.cert_pem()),
    ]);
    let good_client = s.client(Some(&good));
    let kg = start(&args, s.path(), &good_client);

    assert_signed(sign(&good_client, &kg.url, KEY_0), KEY_0);

    let self_signed = self_signed_client("intruder");
    assert_no_session(
        sign(&s.client(Some(&self_signed)), &kg.url, KEY_0),
        "self-signed certificate",
    );
    let expired = client_ca.client("lighthouse", Validity::Expired);
    assert_no_session(
        sign(&s.client(Some(&expired)), &kg.url, KEY_0),
        "expired certificate of the right CA",
    );
    let other_ca = TestCa::new("someone else's CA");
    let foreign = other_ca.client("lighthouse", Validity::Current);
    assert_no_session(
        sign(&s.client(Some(&foreign)), &kg.url, KEY_0),
        "certificate of another CA",
    );
    assert_no_session(
        sign(&s.client(None), &kg.url, KEY_0),
        "no client certificate",
    );

    // Plain HTTP on the TLS port gets no HTTP answer either.
    let plain = reqwest::blocking::get(format!("http://127.0.0.1:{}/upcheck", kg.port));
    assert!(plain.is_err(), "plain HTTP must fail: {plain:?}");

    assert!(handshake_failures(&kg.metrics_url, "client_certificate") >= 4.0);
    assert!(handshake_failures(&kg.metrics_url, "protocol") >= 1.0);
}

#[test]
fn host_header_allow_list_on_tls() {
    let s = PemServer::new();
    let client = s.client(None);
    let kg = start(&s.args, s.path(), &client);
    let url = format!("{}/api/v1/eth2/sign/{KEY_0}", kg.url);
    let with_host = |host: &str| {
        client
            .post(&url)
            .header("Host", host)
            .header("Accept", "application/json")
            .body(requests::aggregation_slot(8))
            .send()
    };
    assert_refused(
        with_host("evil.example"),
        403,
        "Host header `evil.example` is not allowed; add it to access.allowed_hosts",
    );
    assert_signed(with_host(&format!("localhost:{}", kg.port)), KEY_0);
    // Health routes are behind the same check.
    let upcheck = client
        .get(format!("{}/upcheck", kg.url))
        .header("Host", "evil.example")
        .send()
        .unwrap();
    assert_eq!(upcheck.status(), 403);
}

#[test]
fn known_clients_file_and_key_scopes() {
    let s = PemServer::new();
    let listed = self_signed_client("teku");
    let scoped = self_signed_client("lighthouse-a");
    let all_keys = self_signed_client("ops");
    let unlisted = self_signed_client("intruder");
    // Web3Signer's format, lower-case and colon-less spellings mixed in.
    let known = format!("# known clients\n\nteku {}\n", listed.fingerprint());
    let config = format!(
        r#"[[access.clients]]
name = "lighthouse-a"
fingerprints = ["{}"]
pubkeys = ["{KEY_0}"]

[[access.clients]]
name = "ops"
fingerprints = ["{}"]
pubkeys = ["*"]
"#,
        scoped.fingerprint().replace(':', "").to_lowercase(),
        all_keys.fingerprint()
    );
    let mut args = s.args.clone();
    args.extend([
        "--tls-known-clients".into(),
        write(s.path(), "known-clients.txt", known),
        "--config".into(),
        write(s.path(), "keyguard.toml", config),
    ]);
    let listed_client = s.client(Some(&listed));
    let kg = start(&args, s.path(), &listed_client);

    // A client with `pubkeys = ["*"]` signs with every key and sees them all.
    let all_client = s.client(Some(&all_keys));
    assert_signed(sign(&all_client, &kg.url, KEY_0), KEY_0);
    assert_signed(sign(&all_client, &kg.url, KEY_1), KEY_1);
    let mut all = public_keys(&all_client, &kg.url);
    all.sort();
    assert_eq!(all, vec![KEY_0.to_string(), KEY_1.to_string()]);

    // A certificate of the known-clients file gets a session, but once a client is scoped
    // an identity without a scope gets no key (fail closed), loaded or not.
    assert_refused(
        sign(&listed_client, &kg.url, KEY_0),
        403,
        "may not sign with this key",
    );
    let unloaded = format!("0x{}", "b3".repeat(48));
    assert_refused(
        sign(&listed_client, &kg.url, &unloaded),
        403,
        "may not sign with this key",
    );
    assert!(public_keys(&listed_client, &kg.url).is_empty());

    // The scoped client signs with its key only, and sees only its key; a key outside its
    // scope gets the same answer whether it is loaded (KEY_1) or not.
    let scoped_client = s.client(Some(&scoped));
    assert_signed(sign(&scoped_client, &kg.url, KEY_0), KEY_0);
    let loaded = sign(&scoped_client, &kg.url, KEY_1).unwrap();
    let not_loaded = sign(&scoped_client, &kg.url, &unloaded).unwrap();
    assert_eq!(
        (loaded.status().as_u16(), not_loaded.status().as_u16()),
        (403, 403)
    );
    assert_eq!(loaded.text().unwrap(), not_loaded.text().unwrap());
    assert_eq!(
        public_keys(&scoped_client, &kg.url),
        vec![KEY_0.to_string()]
    );

    // An unlisted certificate gets no session.
    assert_no_session(
        sign(&s.client(Some(&unlisted)), &kg.url, KEY_0),
        "unlisted self-signed certificate",
    );
}

#[test]
fn a_scoped_token_under_client_certificate_tls() {
    let s = PemServer::new();
    let client_ca = TestCa::new("validator clients CA");
    // Issued by the CA but named by no entry: the token says who it is.
    let unnamed = client_ca.client("vc-host", Validity::Current);
    let named = client_ca.client("beacon-ops", Validity::Current);
    let token = write(s.path(), "vc.token", "vc-token-5d1e8a3c7b9f2046\n");
    let config = format!(
        r#"[access]
require_known_client = true

[[access.clients]]
name = "vc"
token_file = "{token}"
pubkeys = ["{KEY_1}"]

[[access.clients]]
name = "ops"
fingerprints = ["{}"]
pubkeys = ["{KEY_0}"]
"#,
        named.fingerprint()
    );
    let mut args = s.args.clone();
    args.extend([
        "--tls-client-ca".into(),
        write(s.path(), "clients-ca.pem", client_ca.cert_pem()),
        "--config".into(),
        write(s.path(), "keyguard.toml", config),
    ]);
    let unnamed_client = s.client(Some(&unnamed));
    let kg = start(&args, s.path(), &unnamed_client);
    let with_token = |client: &Client, pubkey: &str| {
        client
            .post(format!("{}/api/v1/eth2/sign/{pubkey}", kg.url))
            .header("Accept", "application/json")
            .header("Authorization", "Bearer vc-token-5d1e8a3c7b9f2046")
            .body(requests::aggregation_slot(8))
            .send()
    };

    // The token is honoured under the unnamed certificate, with its scope.
    assert_signed(with_token(&unnamed_client, KEY_1), KEY_1);
    assert_refused(
        with_token(&unnamed_client, KEY_0),
        403,
        "client token:vc may not sign with this key",
    );
    let listed: Vec<String> = unnamed_client
        .get(format!("{}/api/v1/eth2/publicKeys", kg.url))
        .header("Authorization", "Bearer vc-token-5d1e8a3c7b9f2046")
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(listed, vec![KEY_1.to_string()]);
    // Without the token, the unnamed certificate is not a known client.
    assert_refused(
        sign(&unnamed_client, &kg.url, KEY_1),
        403,
        "access.require_known_client",
    );
    // A named certificate signs as itself; with another client's token it is refused.
    let named_client = s.client(Some(&named));
    assert_signed(sign(&named_client, &kg.url, KEY_0), KEY_0);
    assert_refused(
        with_token(&named_client, KEY_0),
        403,
        "name different clients",
    );
}

#[test]
fn request_types_and_deposit_are_refused_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let depositor = write(
        dir.path(),
        "depositor.token",
        "dep-token-8c2f4a6e0b1d3957\n",
    );
    let attester = write(dir.path(), "attester.token", "att-token-1f3b5d7092e4c6a8\n");
    let config = format!(
        r#"[[access.clients]]
name = "depositor"
token_file = "{depositor}"
types = ["DEPOSIT"]

[[access.clients]]
name = "attester"
token_file = "{attester}"
types = ["ATTESTATION"]
"#
    );
    let mut args = base_args(&dir.path().join("data"));
    args.extend([
        "--config".into(),
        write(dir.path(), "keyguard.toml", config),
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut kg =
        interop_tests::keyguard_process::KeyguardProcess::start(&args, dir.path()).unwrap();
    kg.wait_healthy(std::time::Duration::from_secs(30)).unwrap();
    let post = |token: Option<&str>, body: String| {
        let mut req = Client::new()
            .post(format!("{}/api/v1/eth2/sign/{KEY_0}", kg.url))
            .header("Accept", "application/json")
            .body(body);
        if let Some(token) = token {
            req = req.header("Authorization", format!("Bearer {token}"));
        }
        req.send()
    };
    let deposit = requests::deposit(KEY_0);

    // DEPOSIT: refused for anonymous callers and clients without it in `types`.
    for token in [None, Some("att-token-1f3b5d7092e4c6a8")] {
        assert_refused(
            post(token, deposit.clone()),
            403,
            "may not sign DEPOSIT requests",
        );
    }
    assert_refused(
        post(None, deposit.clone()),
        403,
        "DEPOSIT needs a client whose types list it",
    );
    let signed = post(Some("dep-token-8c2f4a6e0b1d3957"), deposit).unwrap();
    assert_eq!(signed.status(), 200, "{:?}", signed.text());

    // `types` limits a client: the attester may not sign a selection proof, anonymous may.
    assert_refused(
        post(
            Some("att-token-1f3b5d7092e4c6a8"),
            requests::aggregation_slot(8),
        ),
        403,
        "client token:attester may not sign AGGREGATION_SLOT requests",
    );
    assert_signed(post(None, requests::aggregation_slot(8)), KEY_0);
    // A refused attestation records nothing: the same vote is then signed for another
    // client without being a double vote of the refused one.
    assert_refused(
        post(
            Some("dep-token-8c2f4a6e0b1d3957"),
            requests::attestation(1, 2, 1),
        ),
        403,
        "may not sign ATTESTATION requests",
    );
    let vote = post(
        Some("att-token-1f3b5d7092e4c6a8"),
        requests::attestation(1, 2, 2),
    )
    .unwrap();
    assert_eq!(vote.status(), 200, "{:?}", vote.text());
    kg.kill();
}

#[test]
fn pkcs12_identity_with_bearer_token_clients() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("keyguard test server CA");
    let server = ca.server();
    let p12 = write(dir.path(), "server.p12", pkcs12(&server, "p12 pass"));
    let password = write(dir.path(), "server.p12.password", "p12 pass\n");
    let token = write(dir.path(), "vc.token", "vc-token-0123456789abcdef\n");
    let config = format!(
        r#"[access]
require_known_client = true

[[access.clients]]
name = "vc"
token_file = "{token}"
pubkeys = ["{KEY_1}"]
"#
    );
    let mut args = base_args(&dir.path().join("data"));
    args.extend([
        "--tls-pkcs12".into(),
        p12,
        "--tls-pkcs12-password-file".into(),
        password,
        "--config".into(),
        write(dir.path(), "keyguard.toml", config),
    ]);
    let client = https_client(&ca.cert_pem(), None);
    let kg = start(&args, dir.path(), &client);

    let with_token = |token: &str, pubkey: &str| {
        client
            .post(format!("{}/api/v1/eth2/sign/{pubkey}", kg.url))
            .header("Accept", "application/json")
            .header("Authorization", format!("Bearer {token}"))
            .body(requests::aggregation_slot(8))
            .send()
    };
    assert_signed(with_token("vc-token-0123456789abcdef", KEY_1), KEY_1);
    assert_refused(
        with_token("vc-token-0123456789abcdef", KEY_0),
        403,
        "may not sign with this key",
    );
    assert_refused(with_token("wrong", KEY_1), 403, "matches no access.clients");
    assert_refused(
        sign(&client, &kg.url, KEY_1),
        403,
        "access.require_known_client",
    );
    // The secret files were written 0644: each is named in a warning.
    let log = kg.log();
    for file in ["vc.token", "server.p12.password", "server.p12"] {
        assert!(
            log.lines()
                .any(|l| l.contains("readable by group or others") && l.contains(file)),
            "no permission warning for {file}:\n{log}"
        );
    }
}

#[test]
fn weak_client_tokens_are_a_config_error() {
    let dir = tempfile::tempdir().unwrap();
    let token = write(dir.path(), "vc.token", "hunter2\n");
    let config = format!(
        "[access]\nrequire_known_client = true\n\n[[access.clients]]\nname = \"vc\"\n\
         token_file = \"{token}\"\n"
    );
    let out = interop_tests::keyguard_process::keyguard_command(&[
        "run",
        "--network",
        NETWORK,
        "--data-dir",
        dir.path().join("data").to_str().unwrap(),
        "--config",
        &write(dir.path(), "keyguard.toml", config),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("access.clients[0].token_file"), "{stderr}");
    assert!(stderr.contains("128"), "{stderr}");
}

#[test]
fn wrong_pkcs12_password_is_a_config_error() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestCa::new("ca").server();
    let p12 = write(dir.path(), "server.p12", pkcs12(&server, "right"));
    let password = write(dir.path(), "pw", "wrong");
    let out = interop_tests::keyguard_process::keyguard_command(&[
        "run",
        "--network",
        NETWORK,
        "--data-dir",
        dir.path().join("data").to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        "--tls-pkcs12",
        &p12,
        "--tls-pkcs12-password-file",
        &password,
    ]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("config error: tls.pkcs12: cannot open"),
        "{stderr}"
    );
}
