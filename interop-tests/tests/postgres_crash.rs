//! Three keyguard processes on one throw-away PostgreSQL under load from many client
//! tasks, while instances are SIGKILLed at random moments (and restarted) and PostgreSQL
//! itself is restarted (fast and immediate shutdowns). Afterwards:
//!
//! * every signature a client received verifies (signing root computed here from the
//!   spec) and has its record in the database (complete interchange export);
//! * no two signatures a client received for one validator, from whichever instance, are
//!   slashable with each other (the spec's conditions, written out in
//!   `interop_tests::duties`, not keyguard's);
//! * each restarted instance signs again;
//! * while PostgreSQL is down requests get 5xx and `/healthcheck` reports the slashing
//!   database DOWN, and it is UP again after the restart with no operator action.
//!
//! The moments are drawn from a seeded generator; the seed is printed and
//! `KEYGUARD_CRASH_SEED=<seed>` replays the same schedule.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use interop_tests::duties::{database_records, slashable_pairs, verify, Duty, Rng};
use interop_tests::instances::{self, Answer};
use interop_tests::keyguard_process::KeyguardProcess;
use interop_tests::postgres::{require_postgres, TestPostgres};

const INSTANCES: usize = 3;
/// Validators under random load; one more (the last key) is the probe validator.
const LOAD_KEYS: usize = 8;
const CLIENTS_PER_KEY: usize = 3;
const KILLS: usize = 21;
/// PostgreSQL is restarted after these kills.
const PG_RESTART_AFTER: [usize; 3] = [5, 12, 18];

/// What the clients saw.
#[derive(Default)]
struct Seen {
    /// Every signature received: pubkey, what was signed, signature.
    signed: Mutex<Vec<(String, Duty, String)>>,
    server_errors: AtomicU64,
    refused: AtomicU64,
    no_answer: AtomicU64,
    /// Statuses other than 200, 412 and 5xx (must stay empty).
    unexpected: Mutex<Vec<u16>>,
}

impl Seen {
    fn note(&self, pubkey: &str, duty: Duty, answer: Answer) {
        match answer {
            Answer::Signed(sig) => {
                let mut signed = self.signed.lock().expect("lock");
                signed.push((pubkey.to_owned(), duty, sig));
            }
            Answer::Status(412) => {
                self.refused.fetch_add(1, Ordering::Relaxed);
            }
            Answer::Status(s) if s >= 500 => {
                self.server_errors.fetch_add(1, Ordering::Relaxed);
            }
            Answer::Status(s) => self.unexpected.lock().expect("lock").push(s),
            Answer::NoAnswer => {
                self.no_answer.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// Random duties in a narrow window that moves up with `base` (so conflicts are frequent
/// and signing continues), each to a random instance, until `stop`.
async fn client_task(
    urls: Arc<RwLock<Vec<String>>>,
    pubkey: String,
    base: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    mut rng: Rng,
    seen: Arc<Seen>,
) {
    let client = instances::client();
    while !stop.load(Ordering::Relaxed) {
        let base = base.load(Ordering::Relaxed);
        let duty = Duty::random_near(base, &mut rng);
        let url = {
            let urls = urls.read().expect("lock");
            urls[rng.below(urls.len() as u64) as usize].clone()
        };
        let answer = instances::sign(&client, &url, &pubkey, duty.body()).await;
        if matches!(answer, Answer::NoAnswer | Answer::Status(500..)) {
            // That instance is dead or restarting, or PostgreSQL is: do not spin on it.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        seen.note(&pubkey, duty, answer);
    }
}

/// The probe validator's next block: must be signed by `url` (a fresh slot, so only a
/// broken signer refuses it).
async fn probe(url: &str, pubkey: &str, slot: &mut u64, seen: &Seen) -> Answer {
    *slot += 1;
    let duty = Duty::Block {
        slot: *slot,
        root: 7,
    };
    let answer = instances::sign(&instances::client(), url, pubkey, duty.body()).await;
    seen.note(pubkey, duty, answer.clone());
    answer
}

async fn health(url: &str) -> Option<(u16, serde_json::Value)> {
    let resp = instances::client()
        .get(format!("{url}/healthcheck"))
        .send()
        .await
        .ok()?;
    let status = resp.status().as_u16();
    Some((status, resp.json().await.ok()?))
}

fn db_check_status(body: &serde_json::Value) -> Option<&str> {
    body["checks"]
        .as_array()?
        .iter()
        .find(|c| c["id"] == "slashing-protection-db-health-check")?["status"]
        .as_str()
}

/// Polls every instance's `/healthcheck` until its database check is `want` (and the
/// status code matches), failing after `timeout`.
async fn wait_db_health(urls: &[String], want: &str, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    for url in urls {
        loop {
            if let Some((status, body)) = health(url).await {
                let code_ok = if want == "UP" {
                    status == 200
                } else {
                    status == 503
                };
                if code_ok && db_check_status(&body) == Some(want) {
                    break;
                }
            }
            assert!(
                Instant::now() < deadline,
                "{url}: /healthcheck never reported the database {want}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

struct Cluster {
    pg: TestPostgres,
    database_url: String,
    tmp: tempfile::TempDir,
    processes: Vec<KeyguardProcess>,
    urls: Arc<RwLock<Vec<String>>>,
}

impl Cluster {
    fn restart_instance(&mut self, i: usize) {
        let dir = self.tmp.path().join(format!("i{i}"));
        let process = tokio::task::block_in_place(|| {
            instances::start(&self.database_url, LOAD_KEYS + 1, &dir, self.tmp.path())
        })
        .expect("restart keyguard");
        self.urls.write().expect("lock")[i] = process.url.clone();
        self.processes[i] = process;
    }

    fn current_urls(&self) -> Vec<String> {
        self.urls.read().expect("lock").clone()
    }
}

/// Stops PostgreSQL (`immediate` = crash), checks that requests get 5xx and health goes
/// DOWN, starts it again and waits until every instance reports UP and signs.
async fn restart_postgres(
    cluster: &Cluster,
    immediate: bool,
    probe_key: &str,
    slot: &mut u64,
    seen: &Seen,
) {
    tokio::task::block_in_place(|| cluster.pg.stop(immediate)).expect("stop PostgreSQL");
    let urls = cluster.current_urls();
    for url in &urls {
        match probe(url, probe_key, slot, seen).await {
            Answer::Status(s) if s >= 500 => {}
            other => panic!("{url}: with PostgreSQL down a sign request got {other:?}"),
        }
    }
    wait_db_health(&urls, "DOWN", Duration::from_secs(15)).await;
    // Duties that need no slashing record are still signed.
    for url in &urls {
        let answer = instances::sign(
            &instances::client(),
            url,
            probe_key,
            interop_tests::requests::randao(*slot),
        )
        .await;
        assert!(
            matches!(answer, Answer::Signed(_)),
            "{url}: RANDAO reveal with PostgreSQL down: {answer:?}"
        );
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    tokio::task::block_in_place(|| cluster.pg.start_server()).expect("start PostgreSQL");
    wait_db_health(&urls, "UP", Duration::from_secs(30)).await;
    for url in &urls {
        let answer = probe(url, probe_key, slot, seen).await;
        assert!(
            matches!(answer, Answer::Signed(_)),
            "{url}: no signature after PostgreSQL came back: {answer:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkills_and_postgres_restarts_lose_no_record_and_sign_nothing_slashable() {
    let Some(pg) = require_postgres(
        "sigkills_and_postgres_restarts_lose_no_record_and_sign_nothing_slashable",
    ) else {
        return;
    };
    let seed = std::env::var("KEYGUARD_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
                ^ u64::from(std::process::id())
        });
    println!("crash test seed {seed} (replay with KEYGUARD_CRASH_SEED={seed})");
    let mut rng = Rng(seed | 1);

    let database_url = pg.create_database().expect("create database");
    let tmp = tempfile::tempdir().expect("tempdir");
    let processes: Vec<KeyguardProcess> = tokio::task::block_in_place(|| {
        (0..INSTANCES)
            .map(|i| {
                instances::start(
                    &database_url,
                    LOAD_KEYS + 1,
                    &tmp.path().join(format!("i{i}")),
                    tmp.path(),
                )
                .expect("start keyguard")
            })
            .collect()
    });
    let urls = Arc::new(RwLock::new(
        processes.iter().map(|p| p.url.clone()).collect::<Vec<_>>(),
    ));
    let keys = tokio::task::block_in_place(|| processes[0].public_keys()).expect("keys");
    let probe_key = keys[LOAD_KEYS].clone();
    let mut cluster = Cluster {
        pg,
        database_url,
        tmp,
        processes,
        urls: Arc::clone(&urls),
    };

    let seen = Arc::new(Seen::default());
    let stop = Arc::new(AtomicBool::new(false));
    let base = Arc::new(AtomicU64::new(1));
    let mut tasks = Vec::new();
    for pubkey in &keys[..LOAD_KEYS] {
        for _ in 0..CLIENTS_PER_KEY {
            tasks.push(tokio::spawn(client_task(
                Arc::clone(&urls),
                pubkey.clone(),
                Arc::clone(&base),
                Arc::clone(&stop),
                Rng(rng.next_u64() | 1),
                Arc::clone(&seen),
            )));
        }
    }

    let started = Instant::now();
    let mut probe_slot = 1_000_000;
    let mut pg_restarts = 0;
    for kill in 0..KILLS {
        tokio::time::sleep(Duration::from_millis(100 + rng.below(600))).await;
        let victim = rng.below(INSTANCES as u64) as usize;
        cluster.processes[victim].kill();
        // The window moves on now and then, so the load keeps finding unsigned duties.
        base.fetch_add(rng.below(3), Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(rng.below(300))).await;
        cluster.restart_instance(victim);
        let url = cluster.current_urls()[victim].clone();
        let answer = probe(&url, &probe_key, &mut probe_slot, &seen).await;
        assert!(
            matches!(answer, Answer::Signed(_)),
            "instance {victim} restarted after kill {kill} does not sign: {answer:?}"
        );
        if PG_RESTART_AFTER.contains(&kill) {
            let immediate = pg_restarts % 2 == 1;
            restart_postgres(&cluster, immediate, &probe_key, &mut probe_slot, &seen).await;
            pg_restarts += 1;
        }
    }
    // Some load after the last fault, then stop the clients.
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.expect("client task");
    }
    for p in &mut cluster.processes {
        p.kill();
    }

    let signed = seen.signed.lock().expect("lock").clone();
    println!(
        "{KILLS} SIGKILLs, {pg_restarts} PostgreSQL restarts in {:.1?}: {} signatures, {} refused \
         (412), {} server errors, {} without an answer",
        started.elapsed(),
        signed.len(),
        seen.refused.load(Ordering::Relaxed),
        seen.server_errors.load(Ordering::Relaxed),
        seen.no_answer.load(Ordering::Relaxed),
    );
    assert_eq!(pg_restarts, PG_RESTART_AFTER.len());
    assert!(
        seen.unexpected.lock().expect("lock").is_empty(),
        "unexpected statuses: {:?}",
        seen.unexpected.lock().expect("lock")
    );
    assert!(signed.len() > 200, "the load produced signatures");
    assert!(
        seen.refused.load(Ordering::Relaxed) > 0,
        "conflicts happened"
    );
    assert!(seen.server_errors.load(Ordering::Relaxed) > 0);

    // Every signature verifies and has its record in the database.
    let records = database_records(&cluster.database_url);
    for (pk, duty, sig) in &signed {
        assert!(
            verify(pk, &duty.signing_root(), sig),
            "the signature returned for {duty:?} of {pk} does not verify"
        );
        assert!(
            records.get(pk).is_some_and(|r| r.contains(&duty.record())),
            "a signature was returned for {duty:?} of {pk} but the database has no record"
        );
    }
    // Nothing slashable was signed, across all instances and restarts.
    let by_key: Vec<(String, Duty)> = signed.iter().map(|(pk, d, _)| (pk.clone(), *d)).collect();
    let bad = slashable_pairs(&by_key);
    assert!(bad.is_empty(), "slashable pairs signed: {bad:?}");
}
