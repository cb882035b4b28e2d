//! The load-balancer configurations shipped in `config/` against a real HAProxy, with only
//! their addresses and file paths replaced (`interop_tests::haproxy::shipped_config`):
//!
//! * both pass `haproxy -c`;
//! * `config/haproxy.cfg` (TLS terminated at HAProxy) in front of two keyguard instances
//!   on one PostgreSQL database, under a steady stream of attestations: one instance is
//!   SIGKILLed mid-stream and restarted on its port. What README "Running several
//!   instances" promises a client must hold: every request is answered with a signature
//!   (HAProxy retries what the dead instance did not answer on the other one), HAProxy
//!   takes the dead instance out and back in by its health check, the restarted one
//!   signs again, and every signature verifies and has its record in the database.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use interop_tests::duties::{database_records, verify, Duty};
use interop_tests::haproxy::{self, require_haproxy, shipped_config, HaproxyProcess};
use interop_tests::instances::{self, Answer};
use interop_tests::keyguard_process::free_port;
use interop_tests::postgres::require_postgres;
use interop_tests::tls::{https_client, CertKey, TestCa, TlsKeyguard, Validity};

const NETWORK: &str = "config/networks/devnet-minimal.yaml";
/// Validators signing (interop keys), one request stream each.
const KEYS: usize = 12;
/// The name the shipped configurations send as `Host` in their health check.
const HEALTH_CHECK_HOST: &str = "keyguard.internal";

/// Writes `text` to `dir/name` and returns the path as a string.
fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write file");
    path.display().to_string()
}

/// Certificate and key in one PEM file, as HAProxy's `crt` wants them.
fn pem_bundle(dir: &Path, name: &str, ck: &CertKey) -> String {
    write(dir, name, &format!("{}{}", ck.cert_pem, ck.key_pem))
}

/// The replacements that point a shipped configuration at this test's files and ports.
struct Site {
    frontend_port: u16,
    ports: [u16; 2],
    ca_file: String,
}

impl Site {
    fn backend_addresses(&self) -> [(&'static str, String); 2] {
        [
            ("10.0.0.11:9000", format!("127.0.0.1:{}", self.ports[0])),
            ("10.0.0.12:9000", format!("127.0.0.1:{}", self.ports[1])),
        ]
    }

    /// The replacements for `config/haproxy.cfg`; `frontend` is its certificate bundle.
    fn terminating(&self, frontend: &str) -> Vec<(&'static str, String)> {
        let [a, b] = self.backend_addresses();
        vec![
            (
                "bind :9443 ssl crt /etc/haproxy/keyguard-frontend.pem",
                format!("bind 127.0.0.1:{} ssl crt {frontend}", self.frontend_port),
            ),
            (
                "ca-file /etc/haproxy/keyguard-server-ca.pem",
                format!("ca-file {}", self.ca_file),
            ),
            a,
            b,
        ]
    }
}

#[test]
fn both_shipped_configurations_pass_haproxy_check() {
    let Some(binary) = require_haproxy("both_shipped_configurations_pass_haproxy_check") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = TestCa::new("keyguard instances CA");
    let site = Site {
        frontend_port: free_port(),
        ports: [free_port(), free_port()],
        ca_file: write(dir.path(), "ca.pem", &ca.cert_pem()),
    };
    let frontend = pem_bundle(dir.path(), "frontend.pem", &ca.server());
    let health_client = pem_bundle(
        dir.path(),
        "health.pem",
        &ca.client("haproxy", Validity::Current),
    );
    let [a, b] = site.backend_addresses();
    let configs = [
        ("haproxy.cfg", site.terminating(&frontend)),
        (
            "haproxy-passthrough.cfg",
            vec![
                (
                    "bind :9443",
                    format!("bind 127.0.0.1:{}", site.frontend_port),
                ),
                (
                    "ca-file /etc/haproxy/keyguard-server-ca.pem",
                    format!("ca-file {}", site.ca_file),
                ),
                (
                    "crt /etc/haproxy/healthcheck-client.pem",
                    format!("crt {health_client}"),
                ),
                a,
                b,
            ],
        ),
    ];
    for (name, replacements) in configs {
        let text = shipped_config(name, &replacements).expect("shipped config");
        let path = dir.path().join(name);
        std::fs::write(&path, text).expect("write config");
        let out = haproxy::check(&binary, &path).expect("haproxy -c");
        assert!(
            out.status.success(),
            "haproxy -c {name}:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// One instance's command line: TLS with a certificate for `name`, the shared database.
fn instance_args(dir: &Path, name: &str, ca: &TestCa, database: &str) -> Vec<String> {
    let cert = ca.server_for(&[name, "localhost", "127.0.0.1"]);
    let data = dir.join(name);
    vec![
        "--network".into(),
        NETWORK.into(),
        "--interop-keys".into(),
        KEYS.to_string(),
        "--data-dir".into(),
        data.display().to_string(),
        "--slashing-database".into(),
        database.into(),
        "--tls-cert".into(),
        write(dir, &format!("{name}.crt"), &cert.cert_pem),
        "--tls-key".into(),
        write(dir, &format!("{name}.key"), &cert.key_pem),
        "--allowed-hosts".into(),
        format!("localhost,127.0.0.1,{HEALTH_CHECK_HOST}"),
    ]
}

fn start_instance(
    args: &[String],
    dir: &Path,
    probe: &reqwest::blocking::Client,
    port: u16,
) -> TlsKeyguard {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    TlsKeyguard::start_at(&args, dir, probe, port).expect("start keyguard")
}

/// What one request stream sent and got.
type Sent = Vec<(String, Duty, Answer)>;

/// One validator's stream of attestations `e-1 -> e`, one at a time, until `stop`.
async fn stream(
    client: reqwest::Client,
    url: String,
    pubkey: String,
    stop: Arc<AtomicBool>,
) -> Sent {
    let mut sent = Vec::new();
    let mut epoch = 1;
    while !stop.load(Ordering::Relaxed) {
        let duty = Duty::Attestation {
            source: epoch - 1,
            target: epoch,
            root: 1,
        };
        let answer = instances::sign(&client, &url, &pubkey, duty.body()).await;
        sent.push((pubkey.clone(), duty, answer));
        epoch += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    sent
}

#[test]
fn a_killed_instance_behind_haproxy_costs_the_client_nothing() {
    let test = "a_killed_instance_behind_haproxy_costs_the_client_nothing";
    let Some(binary) = require_haproxy(test) else {
        return;
    };
    let Some(pg) = require_postgres(test) else {
        return;
    };
    let database = pg.create_database().expect("create database");
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = TestCa::new("keyguard instances CA");
    let probe = https_client(&ca.cert_pem(), None);
    let site = Site {
        frontend_port: free_port(),
        ports: [free_port(), free_port()],
        ca_file: write(dir.path(), "ca.pem", &ca.cert_pem()),
    };
    let names = ["keyguard-a.internal", "keyguard-b.internal"];
    let args: Vec<Vec<String>> = names
        .iter()
        .map(|n| instance_args(dir.path(), n, &ca, &database))
        .collect();
    let mut a = Some(start_instance(&args[0], dir.path(), &probe, site.ports[0]));
    let b = start_instance(&args[1], dir.path(), &probe, site.ports[1]);
    let keys: Vec<String> = probe
        .get(format!("{}/api/v1/eth2/publicKeys", b.url))
        .send()
        .and_then(|r| r.json())
        .expect("public keys");
    assert_eq!(keys.len(), KEYS);

    let frontend = pem_bundle(dir.path(), "frontend.pem", &ca.server());
    let mut replacements = site.terminating(&frontend);
    // 20,000 connections need 40,000 descriptors, more than a test machine's hard limit may
    // allow a process (HAProxy then refuses to start).
    replacements.push(("maxconn 20000", "maxconn 1000".to_owned()));
    let config = shipped_config("haproxy.cfg", &replacements).expect("shipped config");
    let config_path = dir.path().join("haproxy.cfg");
    std::fs::write(&config_path, config).expect("write config");
    let proxy = HaproxyProcess::start(&binary, &config_path, &dir.path().join("haproxy.log"))
        .expect("start haproxy");
    let url = format!("https://127.0.0.1:{}", site.frontend_port);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !probe
        .get(format!("{url}/healthcheck"))
        .send()
        .is_ok_and(|r| r.status() == 200)
    {
        assert!(
            std::time::Instant::now() < deadline,
            "HAProxy did not pass /healthcheck through; its log:\n{}",
            proxy.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // The streams run on their own runtime while this thread kills and restarts A.
    interop_tests::install_crypto_provider();
    let ca_cert = reqwest::Certificate::from_pem(ca.cert_pem().as_bytes()).expect("ca");
    let client = reqwest::Client::builder()
        .tls_certs_only([ca_cert])
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client");
    let stop = Arc::new(AtomicBool::new(false));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let streams: Vec<_> = keys
        .iter()
        .map(|pk| {
            runtime.spawn(stream(
                client.clone(),
                url.clone(),
                pk.clone(),
                stop.clone(),
            ))
        })
        .collect();

    std::thread::sleep(Duration::from_millis(1500));
    drop(a.take()); // SIGKILL, mid-stream
    std::thread::sleep(Duration::from_secs(4));
    let restarted = start_instance(&args[0], dir.path(), &probe, site.ports[0]);
    std::thread::sleep(Duration::from_secs(5));
    stop.store(true, Ordering::Relaxed);
    let sent: Sent = runtime.block_on(async {
        let mut all = Vec::new();
        for s in streams {
            all.extend(s.await.expect("stream"));
        }
        all
    });
    let log = proxy.log();

    let unsigned: Vec<String> = sent
        .iter()
        .filter(|(_, _, answer)| !matches!(answer, Answer::Signed(_)))
        .map(|(pk, duty, answer)| format!("{pk} {duty:?}: {answer:?}"))
        .collect();
    assert!(
        unsigned.is_empty(),
        "{} of {} requests got no signature:\n{}\nHAProxy log:\n{log}",
        unsigned.len(),
        sent.len(),
        unsigned.join("\n")
    );
    for (pk, duty, answer) in &sent {
        let Answer::Signed(sig) = answer else {
            unreachable!("checked above")
        };
        assert!(
            verify(pk, &duty.signing_root(), sig),
            "{pk} {duty:?}: bad signature"
        );
    }
    // HAProxy's health check took A out and back in; the restarted A signs again.
    let down = log.find("keyguard_instances/keyguard-a is DOWN");
    let up = log.rfind("keyguard_instances/keyguard-a is UP");
    assert!(
        matches!((down, up), (Some(d), Some(u)) if u > d),
        "HAProxy did not log keyguard-a going DOWN and then UP:\n{log}"
    );
    // Requests the dead instance did not answer were sent again: HAProxy's request log
    // shows a redispatch as `+N` in its retries field (`.../srv_conn/+1 queue`).
    let redispatched = log
        .lines()
        .filter(|l| l.contains("\"POST /api/v1/eth2/sign/"))
        .filter(|l| {
            l.split_whitespace()
                .any(|f| f.rsplit('/').next().is_some_and(|r| r.starts_with('+')))
        })
        .count();
    assert!(
        redispatched > 0,
        "no request was retried on the other instance, so the kill was not tested:\n{log}"
    );
    let signed_by_restarted =
        restarted.metric("keyguard_sign_requests_total", &[("outcome", "signed")]);
    assert!(
        signed_by_restarted > 0.0,
        "the restarted instance signed nothing; HAProxy log:\n{log}"
    );
    println!(
        "{} requests through HAProxy, all signed, {redispatched} of them after a retry on the \
         other instance; the restarted instance signed {signed_by_restarted}",
        sent.len()
    );

    // Every signature has its record.
    drop(restarted);
    drop(b);
    let records = database_records(&database);
    for (pk, duty, _) in &sent {
        assert!(
            records.get(pk).is_some_and(|r| r.contains(&duty.record())),
            "{pk} {duty:?} was signed but has no record"
        );
    }
}
