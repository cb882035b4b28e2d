//! The signing queue against the real binary: one client floods the signer with hundreds
//! of concurrent RANDAO reveals and attestations for unknown keys while a second client
//! signs attestations. The second client's attestations are all signed; the flooder gets
//! 503 with `Retry-After` and a JSON message (never 412) once over its share of the
//! queue, and is still served some of the time. Then the tarpit: a client flooding
//! unknown keys only (answered at once, so never queued) has its 404s delayed, and they
//! still arrive, while the second client's attestations are signed. Nothing here asserts
//! on latency (`keyguard-load flood` measures it); the timeouts only catch a hang.

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
/// all 32, so only priority and displacement keep the victim's requests in), with the
/// cheap-refusal settings `refusals` (TOML lines of `[queue]`), and two clients known by
/// bearer token, both connecting from 127.0.0.1 (told apart by identity).
fn start(tmp: &tempfile::TempDir, refusals: &str) -> KeyguardProcess {
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
         {refusals}\n\
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
    // The tarpit off: this test is about the queue (delayed 404s would thin the flood).
    let kg = start(&tmp, "refusal_rate = 0");
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

/// What the unknown-key flooder's requests got.
#[derive(Default)]
struct RefusalAnswers {
    /// 404 with a JSON `message`.
    not_found: AtomicU64,
    /// 503 with `Retry-After: 1`: the flood's first burst, before it is tarpitted, finds
    /// its share of the (small) queue full.
    shed: AtomicU64,
    /// Anything else (a 404 without its message, a 412, a dropped connection...).
    other: AtomicU64,
    /// The first of those, for the failure message.
    first_other: std::sync::Mutex<Option<String>>,
}

#[test]
fn an_unknown_key_flooder_is_tarpitted_while_another_clients_attestations_are_signed() {
    let tmp = tempfile::tempdir().unwrap();
    // Few free refusals, so the flood is tarpitted within a second.
    let kg = start(&tmp, "refusal_burst = 50\nrefusal_rate = 20");
    let keys = kg.public_keys().unwrap();
    let tarpitted = || kg.metric("keyguard_signing_queue_tarpitted_total", &[]);
    assert_eq!(tarpitted(), 0.0, "the counter exists at zero");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    let answers = runtime.block_on(refusal_flood_and_sign(&kg.url, &kg.metrics_url, &keys[1]));
    let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let (not_found, shed, other) = (
        get(&answers.not_found),
        get(&answers.shed),
        get(&answers.other),
    );
    let held = tarpitted();
    let first_other = answers.first_other.lock().unwrap().clone();
    eprintln!(
        "flooder: {not_found} unknown key (404), {shed} shed (503), {other} other; \
         {held} tarpitted"
    );
    assert_eq!(
        other, 0,
        "every refusal is a 404 with a JSON message or a 503; first other: {first_other:?}"
    );
    assert!(held > 0.0, "the flood was never tarpitted");
    // Every tarpitted request was answered (the workers are done): its 404 arrived late.
    assert!(
        not_found as f64 >= held,
        "{not_found} answered, {held} tarpitted"
    );
    assert!(kg.metric("keyguard_signing_queue_tarpit_delay_seconds_total", &[]) > 0.0);
}

/// Floods unknown keys from one client; once it is tarpitted, the other client signs its
/// attestations one after another, all of which must be signed; returns what the flooder
/// got.
async fn refusal_flood_and_sign(url: &str, metrics_url: &str, victim_key: &str) -> RefusalAnswers {
    let client = reqwest::Client::builder()
        .http1_only()
        .pool_max_idle_per_host(FLOOD_WORKERS)
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let answers = Arc::new(RefusalAnswers::default());
    let next = Arc::new(AtomicU64::new(0));
    let mut flood = tokio::task::JoinSet::new();
    for _ in 0..FLOOD_WORKERS {
        let (client, url) = (client.clone(), url.to_string());
        let (stop, answers, next) = (Arc::clone(&stop), Arc::clone(&answers), Arc::clone(&next));
        flood.spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let i = next.fetch_add(1, Ordering::Relaxed);
                refuse_once(&client, &url, i, &answers).await;
            }
        });
    }
    // The flood is under way once it is tarpitted (the hang guard: a minute).
    let tarpitted = || async {
        let text = client
            .get(format!("{metrics_url}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .find_map(|l| {
                l.strip_prefix("keyguard_signing_queue_tarpitted_total ")?
                    .parse::<f64>()
                    .ok()
            })
            .unwrap_or(0.0)
    };
    let mut tarpitted_before = 0.0;
    for _ in 0..1200 {
        tarpitted_before = tarpitted().await;
        if tarpitted_before > 0.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(tarpitted_before > 0.0, "the flood was never tarpitted");

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
        assert_eq!(status, 200, "the victim's attestation {epoch}: {body}");
        assert!(body["signature"].is_string(), "{body}");
    }
    let tarpitted_during = tarpitted().await - tarpitted_before;
    stop.store(true, Ordering::Relaxed);
    flood.join_all().await;
    assert!(
        tarpitted_during > 0.0,
        "the flood was not tarpitted while the victim signed"
    );
    Arc::into_inner(answers).unwrap_or_default()
}

/// One flooder request: an attestation for an unknown key (a fresh one each time).
async fn refuse_once(client: &reqwest::Client, url: &str, i: u64, answers: &RefusalAnswers) {
    let mut unknown = [0xb0u8; 48];
    unknown[..8].copy_from_slice(&i.to_le_bytes());
    let response = client
        .post(format!("{url}/api/v1/eth2/sign/0x{}", hex::encode(unknown)))
        .bearer_auth(FLOOD_TOKEN)
        .header("Accept", "application/json")
        .body(requests::attestation(1, 2, 7))
        .send()
        .await;
    let unexpected = match response {
        Ok(r) if r.status().as_u16() == 404 => {
            let body: serde_json::Value = r.json().await.unwrap_or_default();
            (!body["message"].is_string()).then(|| format!("404 without a message: {body}"))
        }
        Ok(r) if r.status().as_u16() == 503 && r.headers().contains_key("retry-after") => {
            answers.shed.fetch_add(1, Ordering::Relaxed);
            return;
        }
        Ok(r) => Some(format!("status {}", r.status())),
        Err(e) => Some(format!("no answer: {e:?}")),
    };
    match unexpected {
        None => answers.not_found.fetch_add(1, Ordering::Relaxed),
        Some(what) => {
            answers.first_other.lock().unwrap().get_or_insert(what);
            answers.other.fetch_add(1, Ordering::Relaxed)
        }
    };
}
