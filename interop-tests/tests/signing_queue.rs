//! The signing queue against the real binary: one client floods the signer with hundreds
//! of concurrent RANDAO reveals and attestations for unknown keys while a second client
//! signs attestations. The second client's attestations are all signed; the flooder gets
//! 503 with `Retry-After` and a JSON message (never 412) once over its share of the
//! queue, and is still served some of the time. Nothing here asserts on latency
//! (`keyguard-load flood` measures it); the timeouts only catch a hang.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use interop_tests::keyguard_process::KeyguardProcess;
use interop_tests::requests;

const VICTIM_TOKEN: &str = "victim-5e0c1d9a7b3f48e2a6c4b8d0f1e3a5c7";
const FLOOD_TOKEN: &str = "flooder-9a1b7c3d5e2f4a6b8c0d1e3f5a7b9c2d";
const FLOOD_WORKERS: usize = 300;
const VICTIM_ATTESTATIONS: u64 = 40;

/// A small queue (2 running, 1 of them background; 32 waiting, and one client may take
/// all 32, so only priority and displacement keep the victim's requests in) and two
/// clients known by bearer token, both connecting from 127.0.0.1 (told apart by identity).
fn start(tmp: &tempfile::TempDir) -> KeyguardProcess {
    use std::os::unix::fs::PermissionsExt;
    let token_file = |name: &str, token: &str| {
        let path = tmp.path().join(format!("{name}.token"));
        std::fs::write(&path, token).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        path.display().to_string()
    };
    let config = format!(
        "network = \"config/networks/devnet-minimal.yaml\"\n\
         data_dir = \"{data}\"\n\
         [keys]\ninterop_keys = 8\n\
         [slashing]\nenabled = true\n\
         [queue]\nconcurrency = 2\nbackground_concurrency = 1\ndepth = 32\nper_client = 32\n\
         [[access.clients]]\nname = \"victim\"\ntoken_file = \"{victim}\"\n\
         [[access.clients]]\nname = \"flooder\"\ntoken_file = \"{flooder}\"\n",
        data = tmp.path().join("data").display(),
        victim = token_file("victim", VICTIM_TOKEN),
        flooder = token_file("flooder", FLOOD_TOKEN),
    );
    let path = tmp.path().join("keyguard.toml");
    std::fs::write(&path, config).unwrap();
    KeyguardProcess::start_healthy(&["--config", path.to_str().unwrap()], tmp.path()).unwrap()
}

/// What the flooder's requests got.
#[derive(Default)]
struct FloodAnswers {
    signed: AtomicU64,
    not_found: AtomicU64,
    shed: AtomicU64,
    /// 503s without `Retry-After: 1` or without a JSON `message`.
    shed_malformed: AtomicU64,
    /// Anything else (412 above all).
    other: AtomicU64,
}

/// One flooder request: RANDAO reveals (background) and attestations for unknown keys
/// (duty class, but answered 404) in turn.
async fn flood_once(
    client: &reqwest::Client,
    url: &str,
    pubkey: &str,
    i: u64,
    answers: &FloodAnswers,
) {
    let (key, body) = if i % 2 == 0 {
        (pubkey.to_string(), requests::randao(i))
    } else {
        let mut unknown = [0xb0u8; 48];
        unknown[..8].copy_from_slice(&i.to_le_bytes());
        (
            format!("0x{}", hex::encode(unknown)),
            requests::attestation(1, 2, 7),
        )
    };
    let Ok(response) = client
        .post(format!("{url}/api/v1/eth2/sign/{key}"))
        .bearer_auth(FLOOD_TOKEN)
        .header("Accept", "application/json")
        .body(body)
        .send()
        .await
    else {
        answers.other.fetch_add(1, Ordering::Relaxed);
        return;
    };
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    let counter = match status {
        200 => &answers.signed,
        404 => &answers.not_found,
        503 if retry_after.as_deref() == Some("1") && body["message"].is_string() => &answers.shed,
        503 => &answers.shed_malformed,
        _ => &answers.other,
    };
    counter.fetch_add(1, Ordering::Relaxed);
}

#[test]
fn a_flooding_client_cannot_keep_another_clients_attestations_out() {
    let tmp = tempfile::tempdir().unwrap();
    let kg = start(&tmp);
    let keys = kg.public_keys().unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    let answers = runtime.block_on(flood_and_sign(&kg.url, &keys[0], &keys[1]));
    let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let summary = format!(
        "flooder: {} signed, {} unknown key, {} shed, {} shed without Retry-After/JSON, {} other",
        get(&answers.signed),
        get(&answers.not_found),
        get(&answers.shed),
        get(&answers.shed_malformed),
        get(&answers.other)
    );
    eprintln!("{summary}");
    assert!(
        get(&answers.shed) > 0,
        "the flood was never shed; {summary}"
    );
    assert_eq!(get(&answers.shed_malformed), 0, "{summary}");
    assert_eq!(
        get(&answers.other),
        0,
        "never 412 or anything else; {summary}"
    );
    assert!(
        get(&answers.signed) > 0,
        "background work starved; {summary}"
    );
    assert!(
        get(&answers.not_found) > 0,
        "unknown keys never reached; {summary}"
    );

    let metrics = kg.metrics().unwrap();
    let value = |series: &str| -> f64 {
        metrics
            .lines()
            .find(|l| l.starts_with(series))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no series {series} in:\n{metrics}"))
    };
    let rejected: f64 = ["queue_full", "client_queue_full", "displaced"]
        .iter()
        .map(|r| {
            value(&format!(
                "keyguard_signing_queue_rejected_total{{reason=\"{r}\"}}"
            ))
        })
        .sum();
    assert_eq!(rejected as u64, get(&answers.shed), "every 503 is counted");
    assert_eq!(
        value("keyguard_signing_queue_depth{priority=\"duty\"}"),
        0.0
    );
    assert!(
        value("keyguard_signing_queue_wait_seconds_count{priority=\"duty\"}")
            >= VICTIM_ATTESTATIONS as f64
    );
}

/// Floods from one client while the other signs its attestations one after another (as
/// one validator's would come); asserts every attestation was signed and returns what the
/// flooder got.
async fn flood_and_sign(url: &str, flood_key: &str, victim_key: &str) -> FloodAnswers {
    let client = reqwest::Client::builder()
        .http1_only()
        .pool_max_idle_per_host(FLOOD_WORKERS)
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let answers = Arc::new(FloodAnswers::default());
    let next = Arc::new(AtomicU64::new(0));
    let mut flood = tokio::task::JoinSet::new();
    for _ in 0..FLOOD_WORKERS {
        let (client, url, key) = (client.clone(), url.to_string(), flood_key.to_string());
        let (stop, answers, next) = (Arc::clone(&stop), Arc::clone(&answers), Arc::clone(&next));
        flood.spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let i = next.fetch_add(1, Ordering::Relaxed);
                flood_once(&client, &url, &key, i, &answers).await;
            }
        });
    }
    // The flood is under way once its first requests are shed.
    for _ in 0..600 {
        if answers.shed.load(Ordering::Relaxed) + answers.shed_malformed.load(Ordering::Relaxed) > 0
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The victim's attestations while the flood goes on.
    let shed = || answers.shed.load(Ordering::Relaxed);
    let shed_before = shed();
    let mut victim_statuses = Vec::new();
    for epoch in 1..=VICTIM_ATTESTATIONS {
        let response = client
            .post(format!("{url}/api/v1/eth2/sign/{victim_key}"))
            .bearer_auth(VICTIM_TOKEN)
            .header("Accept", "application/json")
            .body(requests::attestation(epoch - 1, epoch, 3))
            .send()
            .await
            .expect("the victim's request was answered");
        let status = response.status().as_u16();
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        if status == 200 {
            assert!(body["signature"].is_string(), "{body}");
        }
        victim_statuses.push(status);
    }
    let shed_during = shed() - shed_before;
    stop.store(true, Ordering::Relaxed);
    flood.join_all().await;

    assert!(
        shed_during > 0,
        "the flood was not on while the victim signed"
    );
    assert!(
        victim_statuses.iter().all(|s| *s == 200),
        "the victim's attestations: {victim_statuses:?}"
    );
    Arc::into_inner(answers).unwrap_or_default()
}
