//! Writer time per record on SQLite (#15.7): the check-and-record work the single writer
//! does for one attestation inside its batch (rules + insert), excluding the shared COMMIT
//! (fsync). Measured with the crate's own `DbObserver::check_latency` hook over bursts of
//! next-epoch attestations from 1,000 validators, each with a history of 256 epochs (so
//! the O(1) summary path decides them). Reported as time per record.
//!
//! `sqlite_writer_cpu_grouped` measures what `keyguard_slashing_writer_cpu_seconds_total`
//! exports: the writer thread's CPU time over whole batches (checks, inserts, COMMIT;
//! not the fsync wait), per record, with each epoch's 1,000 requests sent concurrently so
//! the writer groups them as in production.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use slashing_db::{DbObserver, Epoch, OpenOptions, SlashingDb, Subject};

const VALIDATORS: u64 = 1000;
const HISTORY: u64 = 256;
const GVR: [u8; 32] = [1; 32];

fn pubkey(i: u64) -> [u8; 48] {
    let mut p = [0u8; 48];
    p[0] = 0x80;
    p[1..9].copy_from_slice(&i.to_be_bytes());
    p
}

#[derive(Default)]
struct CheckTime {
    nanos: AtomicU64,
    cpu_nanos: AtomicU64,
    requests: AtomicU64,
}

impl DbObserver for CheckTime {
    fn check_latency(&self, d: Duration) {
        self.nanos.fetch_add(d.as_nanos() as u64, Ordering::Relaxed);
    }
    fn commit(&self, _batch_size: usize, _commit_time: Duration) {}
    fn refusal(&self, _reason: &'static str) {}
    fn writer_batch(&self, requests: usize, _busy: Duration, cpu: Option<Duration>) {
        let cpu = cpu.expect("thread CPU clock");
        self.cpu_nanos
            .fetch_add(cpu.as_nanos() as u64, Ordering::Relaxed);
        self.requests.fetch_add(requests as u64, Ordering::Relaxed);
    }
}

/// One epoch of next attestations from every validator, sent at once.
fn sign_epoch_concurrently(db: &SlashingDb, rt: &tokio::runtime::Runtime, epoch: u64) {
    let db = db.clone();
    rt.block_on(async move {
        let mut set = tokio::task::JoinSet::new();
        for v in 0..VALIDATORS {
            let db = db.clone();
            set.spawn(async move {
                let mut root = [0u8; 32];
                root[..8].copy_from_slice(&epoch.to_be_bytes());
                root[8..16].copy_from_slice(&v.to_be_bytes());
                db.check_and_record(
                    GVR.into(),
                    pubkey(v).into(),
                    Subject::Attestation {
                        source: Epoch(epoch - 1),
                        target: Epoch(epoch),
                    },
                    root.into(),
                )
                .await
                .expect("allowed");
            });
        }
        while let Some(r) = set.join_next().await {
            r.expect("task");
        }
    });
}

fn sign_epoch(db: &SlashingDb, epoch: u64) {
    for v in 0..VALIDATORS {
        let mut root = [0u8; 32];
        root[..8].copy_from_slice(&epoch.to_be_bytes());
        root[8..16].copy_from_slice(&v.to_be_bytes());
        db.check_and_record_blocking(
            GVR.into(),
            pubkey(v).into(),
            Subject::Attestation {
                source: Epoch(epoch - 1),
                target: Epoch(epoch),
            },
            root.into(),
        )
        .expect("allowed");
    }
}

fn writer_cpu(c: &mut Criterion) {
    let base = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target");
    let dir = tempfile::tempdir_in(base).expect("tempdir");
    let observer = Arc::new(CheckTime::default());
    let db = SlashingDb::open(
        &dir.path().join("cpu.sqlite"),
        OpenOptions {
            observer: Some(observer.clone()),
            ..OpenOptions::default()
        },
    )
    .expect("open");
    // History, imported as one interchange (fast), then a few signed epochs on top.
    let mut json = format!(
        "{{\"metadata\":{{\"interchange_format_version\":\"5\",\"genesis_validators_root\":\"0x{}\"}},\"data\":[",
        hex::encode(GVR)
    );
    for v in 0..VALIDATORS {
        if v > 0 {
            json.push(',');
        }
        json.push_str(&format!(
            "{{\"pubkey\":\"0x{}\",\"signed_blocks\":[],\"signed_attestations\":[{{\"source_epoch\":\"{}\",\"target_epoch\":\"{}\"}}]}}",
            hex::encode(pubkey(v)),
            HISTORY - 1,
            HISTORY
        ));
    }
    json.push_str("]}");
    db.import_interchange(json.as_bytes()).expect("import");
    let epoch = AtomicU64::new(HISTORY + 1);
    let mut g = c.benchmark_group("writer_cpu_per_attestation_record");
    g.sample_size(10);
    g.bench_function("sqlite_summary_path", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let before = observer.nanos.load(Ordering::Relaxed);
                sign_epoch(&db, epoch.fetch_add(1, Ordering::Relaxed));
                let spent = observer.nanos.load(Ordering::Relaxed) - before;
                // Per record: criterion reports the time of one iteration.
                total += Duration::from_nanos(spent / VALIDATORS);
            }
            total
        })
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("rt");
    g.bench_function("sqlite_writer_cpu_grouped", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let cpu = observer.cpu_nanos.load(Ordering::Relaxed);
                let requests = observer.requests.load(Ordering::Relaxed);
                sign_epoch_concurrently(&db, &rt, epoch.fetch_add(1, Ordering::Relaxed));
                let spent = observer.cpu_nanos.load(Ordering::Relaxed) - cpu;
                let handled = observer.requests.load(Ordering::Relaxed) - requests;
                total += Duration::from_nanos(spent / handled.max(1));
            }
            total
        })
    });
    g.finish();
}

criterion_group!(benches, writer_cpu);
criterion_main!(benches);
