//! check+record throughput with group commit (default `max_batch`) vs one transaction per
//! request (`max_batch = 1`), same workload, same run: bursts of concurrent attestation
//! requests from distinct validators, each answered only after its commit (fsync).
//! Prints the measured ratio at the end.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use slashing_db::{Epoch, OpenOptions, SlashingDb, Subject};

const BURST: u64 = 512;
const GVR: [u8; 32] = [1; 32];

fn pubkey(i: u64) -> [u8; 48] {
    let mut p = [0u8; 48];
    p[0] = 0x80;
    p[1..9].copy_from_slice(&i.to_be_bytes());
    p
}

struct Setup {
    _dir: tempfile::TempDir,
    db: SlashingDb,
    epoch: AtomicU64,
    rt: tokio::runtime::Runtime,
}

fn setup(max_batch: usize) -> Setup {
    // Under the target dir: a real disk, so fsync costs what it costs.
    let base = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target");
    let dir = tempfile::tempdir_in(base).expect("tempdir");
    let db = SlashingDb::open(
        &dir.path().join("bench.sqlite"),
        OpenOptions {
            max_batch,
            ..OpenOptions::default()
        },
    )
    .expect("open");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("rt");
    Setup {
        _dir: dir,
        db,
        epoch: AtomicU64::new(1),
        rt,
    }
}

/// One burst of BURST concurrent requests; returns its duration.
fn burst(s: &Setup) -> Duration {
    let epoch = s.epoch.fetch_add(1, Ordering::Relaxed);
    let db = s.db.clone();
    s.rt.block_on(async move {
        let t0 = Instant::now();
        let mut set = tokio::task::JoinSet::new();
        for v in 0..BURST {
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
                .expect("allowed")
            });
        }
        while let Some(r) = set.join_next().await {
            r.expect("join");
        }
        t0.elapsed()
    })
}

fn ops_per_sec(s: &Setup, bursts: u32) -> f64 {
    let total: Duration = (0..bursts).map(|_| burst(s)).sum();
    (bursts as u64 * BURST) as f64 / total.as_secs_f64()
}

fn group_commit(c: &mut Criterion) {
    let grouped = setup(1024);
    let single = setup(1);
    let mut g = c.benchmark_group("check_and_record_attestation_burst512");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(8));
    g.throughput(Throughput::Elements(BURST));
    g.bench_function("group_commit", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| burst(&grouped)).sum())
    });
    g.bench_function("one_transaction_per_request", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| burst(&single)).sum())
    });
    g.finish();
    // Same-run ratio, interleaved so both see the same disk conditions.
    let (mut a, mut b) = (0.0, 0.0);
    for _ in 0..3 {
        a += ops_per_sec(&grouped, 8);
        b += ops_per_sec(&single, 4);
    }
    let (a, b) = (a / 3.0, b / 3.0);
    println!(
        "\nGROUP COMMIT: {a:.0} ops/s; ONE TXN PER REQUEST: {b:.0} ops/s; ratio {:.1}x\n",
        a / b
    );
}

criterion_group!(benches, group_commit);
criterion_main!(benches);
