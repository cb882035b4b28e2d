//! Slashing protection through the HTTP API of the real binary: racing conflicting requests
//! (exactly one of each pair is signed), and SIGKILL at random moments under load (every
//! signature a client received has its record in the database; nothing slashable was ever
//! signed).

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use interop_tests::duties::{Duty, Rng};
use interop_tests::keyguard_process::KeyguardProcess;
use interop_tests::requests;

/// Interop keys served by the test signer.
const KEYS: u64 = 32;

/// Starts the signer; the harness waits with a blocking HTTP client, so it must not run
/// on an async worker thread directly.
fn start(data: &Path, log_dir: &Path) -> KeyguardProcess {
    tokio::task::block_in_place(|| start_blocking(data, log_dir))
}

fn start_blocking(data: &Path, log_dir: &Path) -> KeyguardProcess {
    let data = data.to_str().unwrap();
    let keys = KEYS.to_string();
    let mut kg = KeyguardProcess::start(
        &[
            "--network",
            "config/networks/devnet-minimal.yaml",
            "--interop-keys",
            &keys,
            "--data-dir",
            data,
        ],
        log_dir,
    )
    .unwrap();
    kg.wait_healthy(Duration::from_secs(30)).unwrap();
    kg
}

async fn pubkeys(client: &reqwest::Client, url: &str) -> Vec<String> {
    client
        .get(format!("{url}/api/v1/eth2/publicKeys"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Sends one request; Some(status) or None when the connection failed (signer killed).
async fn send(client: &reqwest::Client, url: &str, pubkey: &str, body: String) -> Option<u16> {
    let resp = client
        .post(format!("{url}/api/v1/eth2/sign/{pubkey}"))
        .header("Accept", "application/json")
        .body(body)
        .send()
        .await
        .ok()?;
    let status = resp.status().as_u16();
    // A 200 counts only if the whole signature arrived.
    let body = resp.text().await.ok()?;
    (status != 200 || body.contains("signature")).then_some(status)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_conflicting_pairs_sign_exactly_one() {
    let tmp = tempfile::tempdir().unwrap();
    let kg = start(&tmp.path().join("data"), tmp.path());
    let client = reqwest::Client::new();
    let keys = pubkeys(&client, &kg.url).await;
    const ROUNDS: u64 = 40;

    // Each validator runs its rounds in order (so low watermarks never interfere); within
    // a round, two conflicting attestations and two conflicting blocks race.
    let mut tasks = Vec::new();
    for pk in keys.clone() {
        let (client, url) = (client.clone(), kg.url.clone());
        tasks.push(tokio::spawn(async move {
            let mut outcomes = Vec::new();
            for round in 1..=ROUNDS {
                let a = send(
                    &client,
                    &url,
                    &pk,
                    requests::attestation(round - 1, round, 1),
                );
                let b = send(
                    &client,
                    &url,
                    &pk,
                    requests::attestation(round - 1, round, 2),
                );
                let c = send(&client, &url, &pk, requests::block_header(round, 1));
                let d = send(&client, &url, &pk, requests::block_header(round, 2));
                let (a, b, c, d) = tokio::join!(a, b, c, d);
                outcomes.push((round, [a, b], [c, d]));
            }
            outcomes
        }));
    }
    let mut pairs = 0;
    for task in tasks {
        for (round, atts, blocks) in task.await.unwrap() {
            for pair in [atts, blocks] {
                let mut statuses = [pair[0].unwrap(), pair[1].unwrap()];
                statuses.sort();
                assert_eq!(
                    statuses,
                    [200, 412],
                    "round {round}: exactly one of a pair signed"
                );
                pairs += 1;
            }
        }
    }
    assert_eq!(pairs, 2 * ROUNDS as usize * keys.len());
}

/// Random requests in a narrow window so conflicts are frequent, until the signer dies.
async fn load(
    client: reqwest::Client,
    url: String,
    pubkey: String,
    base: u64,
    mut rng: Rng,
    signed: Arc<Mutex<Vec<(String, Duty)>>>,
) {
    loop {
        let item = Duty::random_near(base, &mut rng);
        let body = item.body();
        match send(&client, &url, &pubkey, body).await {
            Some(200) => signed.lock().unwrap().push((pubkey.clone(), item)),
            Some(_) => {}
            None => return,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_under_load_loses_no_record_and_signs_nothing_slashable() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let signed: Arc<Mutex<Vec<(String, Duty)>>> = Arc::default();
    let seed = Instant::now().elapsed().as_nanos() as u64
        ^ 0x9e37_79b9_7f4a_7c15
        ^ std::process::id() as u64;
    println!("crash test seed {seed}");
    let mut rng = Rng(seed | 1);
    const RESTARTS: u64 = 20;

    for round in 0..RESTARTS {
        let mut kg = start(&data, tmp.path());
        let client = reqwest::Client::new();
        let keys = pubkeys(&client, &kg.url).await;
        let mut tasks = Vec::new();
        for pk in keys.iter().take(8) {
            for _ in 0..4 {
                tasks.push(tokio::spawn(load(
                    client.clone(),
                    kg.url.clone(),
                    pk.clone(),
                    round * 4,
                    Rng(rng.next_u64() | 1),
                    Arc::clone(&signed),
                )));
            }
        }
        tokio::time::sleep(Duration::from_millis(100 + rng.below(400))).await;
        kg.kill();
        for t in tasks {
            t.await.unwrap();
        }
    }

    let signed = signed.lock().unwrap().clone();
    assert!(
        signed.len() > 100,
        "the load produced signatures: {}",
        signed.len()
    );

    // Every signature a client received has its record in the database.
    let db =
        slashing_db::SlashingDb::open(&data.join("slashing-protection.sqlite"), Default::default())
            .unwrap();
    let export = db
        .export_interchange(None, slashing_db::ExportFormat::Complete)
        .unwrap();
    let export: serde_json::Value = serde_json::from_slice(&export).unwrap();
    // The database holds recomputed signing roots: index its records by pubkey + root and
    // look up each signature's recomputed root with its slot or epochs.
    let network = keyguard::consensus::Network::from_config_file(
        &interop_tests::keyguard_process::workspace_root()
            .join("config/networks/devnet-minimal.yaml"),
    )
    .unwrap();
    let mut by_root: HashMap<String, Vec<(u64, u64, bool)>> = HashMap::new();
    for v in export["data"].as_array().unwrap() {
        let pk = v["pubkey"].as_str().unwrap().to_string();
        for b in v["signed_blocks"].as_array().unwrap() {
            let slot: u64 = b["slot"].as_str().unwrap().parse().unwrap();
            by_root
                .entry(format!("{pk}{}", b["signing_root"].as_str().unwrap_or("")))
                .or_default()
                .push((slot, 0, true));
        }
        for a in v["signed_attestations"].as_array().unwrap() {
            let s: u64 = a["source_epoch"].as_str().unwrap().parse().unwrap();
            let t: u64 = a["target_epoch"].as_str().unwrap().parse().unwrap();
            by_root
                .entry(format!("{pk}{}", a["signing_root"].as_str().unwrap_or("")))
                .or_default()
                .push((s, t, false));
        }
    }
    for (pk, item) in &signed {
        let body = item.body();
        let coords = match *item {
            Duty::Attestation { source, target, .. } => (source, target, false),
            Duty::Block { slot, .. } => (slot, 0, true),
        };
        let signing_root = keyguard::consensus::prepare(body.as_bytes(), &network)
            .unwrap()
            .signing_root;
        let key = format!("{pk}0x{}", hex::encode(signing_root));
        assert!(
            by_root.get(&key).is_some_and(|v| v.contains(&coords)),
            "signature returned for {item:?} of {pk} but no record in the database"
        );
    }

    // Nothing slashable was ever signed, across all restarts.
    let mut per_key: HashMap<&str, Vec<Duty>> = HashMap::new();
    for (pk, item) in &signed {
        per_key.entry(pk.as_str()).or_default().push(*item);
    }
    for (pk, items) in per_key {
        for (i, a) in items.iter().enumerate() {
            for b in &items[i + 1..] {
                assert!(
                    !a.slashable_with(b),
                    "{pk} signed a slashable pair: {a:?} and {b:?}"
                );
            }
        }
    }
}
