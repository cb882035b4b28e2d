//! Database size while a long history is signed, with online pruning off and on (#15.8).
//!
//! `cargo bench -p slashing-db --bench prune_growth`: V validators each sign one
//! attestation per epoch (and a block every 32 epochs) for N epochs, sent concurrently so
//! the writer groups them as in production. With pruning on, a pruning round (keep K
//! epochs, steps of B rows) runs every I epochs, as the signer's background pruner would,
//! while the next epoch's requests are being signed. Prints, at checkpoints, the file size
//! (database + WAL) and the records held, and for pruning the longest step (the most a sign
//! request can wait behind it). Sizes: PRUNE_BENCH_VALIDATORS, PRUNE_BENCH_EPOCHS,
//! PRUNE_BENCH_KEEP, PRUNE_BENCH_INTERVAL, PRUNE_BENCH_BATCH (PRUNE_BENCH_ONLY_ON=1: only
//! the run with pruning).

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use slashing_db::{
    DbObserver, Epoch, OpenOptions, PruneSettings, SigningRoot, SlashingDb, Slot, Subject,
};

const GVR: [u8; 32] = [1; 32];

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn pubkey(i: u64) -> [u8; 48] {
    let mut p = [0u8; 48];
    p[0] = 0x80;
    p[1..9].copy_from_slice(&i.to_be_bytes());
    p
}

fn root(v: u64, e: u64) -> SigningRoot {
    let mut r = [0u8; 32];
    r[..8].copy_from_slice(&e.to_be_bytes());
    r[8..16].copy_from_slice(&v.to_be_bytes());
    r[31] = 1;
    SigningRoot(r)
}

/// Records deleted and the longest pruning step.
#[derive(Default)]
struct PruneStats {
    deleted: AtomicU64,
    steps: AtomicU64,
    total_step_us: AtomicU64,
    longest_step_us: AtomicU64,
}

impl DbObserver for PruneStats {
    fn check_latency(&self, _d: Duration) {}
    fn commit(&self, _batch_size: usize, _commit_time: Duration) {}
    fn refusal(&self, _reason: &'static str) {}
    fn pruned(&self, blocks: usize, attestations: usize, step_time: Duration) {
        self.deleted
            .fetch_add((blocks + attestations) as u64, Relaxed);
        self.steps.fetch_add(1, Relaxed);
        self.total_step_us
            .fetch_add(step_time.as_micros() as u64, Relaxed);
        self.longest_step_us
            .fetch_max(step_time.as_micros() as u64, Relaxed);
    }
}

fn file_size(db: &Path) -> u64 {
    let size = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len());
    size(db) + size(&db.with_extension("sqlite-wal"))
}

struct Params {
    validators: u64,
    epochs: u64,
    keep: u64,
    interval: u64,
    batch: usize,
}

/// Signs the history; prunes every `interval` epochs if `prune`. Prints checkpoints.
fn run(params: &Params, prune: bool, rt: &tokio::runtime::Runtime) {
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target");
    let dir = tempfile::tempdir_in(base).expect("tempdir");
    let path = dir.path().join("growth.sqlite");
    let stats = Arc::new(PruneStats::default());
    let db = SlashingDb::open(
        &path,
        OpenOptions {
            observer: Some(stats.clone()),
            ..OpenOptions::default()
        },
    )
    .expect("open");
    let settings = PruneSettings {
        keep_epochs: params.keep,
        slots_per_epoch: 32,
        batch_rows: params.batch,
    };
    let label = if prune { "on " } else { "off" };
    let mut recorded = 0u64;
    let mut pruning: Option<std::thread::JoinHandle<()>> = None;
    let started = Instant::now();
    for e in 1..=params.epochs {
        if prune && e % params.interval == 0 {
            if let Some(h) = pruning.take() {
                h.join().expect("pruning round");
            }
            // The round runs beside the signing, as the background pruner's does.
            let db = db.clone();
            pruning = Some(std::thread::spawn(move || {
                db.prune_round(&settings).expect("prune");
            }));
        }
        let db2 = db.clone();
        let validators = params.validators;
        recorded += rt.block_on(async move {
            let mut set = tokio::task::JoinSet::new();
            for v in 0..validators {
                let db = db2.clone();
                set.spawn(async move {
                    let att = db.check_and_record(
                        GVR.into(),
                        pubkey(v).into(),
                        Subject::Attestation {
                            source: Epoch(e - 1),
                            target: Epoch(e),
                        },
                        root(v, e),
                    );
                    att.await.expect("attestation allowed");
                    if (e + v) % 32 == 0 {
                        db.check_and_record(
                            GVR.into(),
                            pubkey(v).into(),
                            Subject::Block {
                                slot: Slot(32 * e + v % 32),
                            },
                            root(v, e),
                        )
                        .await
                        .expect("block allowed");
                        2
                    } else {
                        1
                    }
                });
            }
            let mut n = 0u64;
            while let Some(r) = set.join_next().await {
                n += r.expect("task");
            }
            n
        });
        if e % (params.epochs / 8).max(1) == 0 || e == params.epochs {
            let held = recorded - stats.deleted.load(Relaxed);
            println!(
                "pruning {label} epoch {e:>6}: {:>8.1} MiB on disk, {held:>9} records held \
                 ({recorded} signed), {:.0} s",
                file_size(&path) as f64 / (1024.0 * 1024.0),
                started.elapsed().as_secs_f64()
            );
        }
    }
    if let Some(h) = pruning.take() {
        h.join().expect("pruning round");
    }
    if prune {
        let steps = stats.steps.load(Relaxed).max(1);
        println!(
            "pruning on: {} records deleted in {steps} steps of at most {} rows, mean step \
             {:.2} ms, longest {:.2} ms, {:.1} bytes/record held",
            stats.deleted.load(Relaxed),
            params.batch,
            stats.total_step_us.load(Relaxed) as f64 / steps as f64 / 1000.0,
            stats.longest_step_us.load(Relaxed) as f64 / 1000.0,
            file_size(&path) as f64 / (recorded - stats.deleted.load(Relaxed)) as f64
        );
    } else {
        println!(
            "pruning off: {:.1} bytes/record",
            file_size(&path) as f64 / recorded as f64
        );
    }
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs it with a tiny size.
    let quick = !std::env::args().any(|a| a == "--bench");
    let scale = |name: &str, full: u64, small: u64| env_or(name, if quick { small } else { full });
    let params = Params {
        validators: scale("PRUNE_BENCH_VALIDATORS", 1000, 20),
        epochs: scale("PRUNE_BENCH_EPOCHS", 2048, 64),
        keep: scale("PRUNE_BENCH_KEEP", 256, 8),
        interval: scale("PRUNE_BENCH_INTERVAL", 64, 8).max(1),
        batch: scale("PRUNE_BENCH_BATCH", 500, 50) as usize,
    };
    println!(
        "{} validators x {} epochs, keep {} epochs, a round every {} epochs, steps of {} rows",
        params.validators, params.epochs, params.keep, params.interval, params.batch
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("rt");
    // PRUNE_BENCH_ONLY_ON=1 skips the run without pruning.
    if env_or("PRUNE_BENCH_ONLY_ON", 0) == 0 {
        run(&params, false, &rt);
    }
    run(&params, true, &rt);
}
