//! Writer time per record on SQLite (#15.7), over 1,000 validators that have each signed
//! the attestations of epochs 1..=384 except a gap of missed epochs 32..=191 (a real
//! history, signed through the writer, so the table and its index have their production
//! shape before anything is measured).
//!
//! * `sqlite_writer_cpu_grouped`: what `keyguard_slashing_writer_cpu_seconds_total /
//!   keyguard_slashing_writer_requests_total` exports: the writer thread's CPU time over
//!   whole batches (checks, inserts, COMMIT and checkpoints; not the fsync wait), per
//!   record, with each epoch's 1,000 next attestations sent at once so the writer groups
//!   them as in production.
//! * `sqlite_summary_path`: the check-and-insert of one next attestation inside its batch
//!   (wall time, from the crate's `DbObserver::check_latency` hook; COMMIT excluded), one
//!   request per batch.
//! * `sqlite_full_checks`: requests the summary cannot decide, which read the history: per
//!   validator, a repeat of its last attestation (same root) and a vote surrounding its
//!   last two (refused), timed like `sqlite_summary_path`, per request.
//! * `sqlite_gap_fill`: the rare path's worst case, a late vote `31 -> t` into the gap
//!   (allowed and recorded): both surround scans find nothing, so they read every row of
//!   the range they scan, timed per request.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use slashing_db::{Approval, DbObserver, Epoch, OpenOptions, SignCheckError, SlashingDb, Subject};

const VALIDATORS: u64 = 1000;
const HISTORY: u64 = 384;
/// Epochs nobody attested (the validators were offline).
const GAP: std::ops::RangeInclusive<u64> = 32..=191;
/// Gap fills per `sqlite_gap_fill` iteration.
const FILLS_PER_ITER: u64 = 10;
const GVR: [u8; 32] = [1; 32];

fn pubkey(i: u64) -> [u8; 48] {
    let mut p = [0u8; 48];
    p[0] = 0x80;
    p[1..9].copy_from_slice(&i.to_be_bytes());
    p
}

/// Validator `v`'s signing root for its attestation of `epoch`.
fn epoch_root(epoch: u64, v: u64) -> [u8; 32] {
    let mut root = [0u8; 32];
    root[..8].copy_from_slice(&epoch.to_be_bytes());
    root[8..16].copy_from_slice(&v.to_be_bytes());
    root
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
                db.check_and_record(
                    GVR.into(),
                    pubkey(v).into(),
                    next_attestation(epoch),
                    epoch_root(epoch, v).into(),
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

/// One epoch of next attestations from every validator, one request per batch.
fn sign_epoch(db: &SlashingDb, epoch: u64) {
    for v in 0..VALIDATORS {
        db.check_and_record_blocking(
            GVR.into(),
            pubkey(v).into(),
            next_attestation(epoch),
            epoch_root(epoch, v).into(),
        )
        .expect("allowed");
    }
}

/// The attestation `epoch - 1 -> epoch`: the next one after the previous epoch's.
fn next_attestation(epoch: u64) -> Subject {
    Subject::Attestation {
        source: Epoch(epoch - 1),
        target: Epoch(epoch),
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
    // History: every validator signs epochs 1..=HISTORY, one epoch's requests at once.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("rt");
    for epoch in (1..=HISTORY).filter(|e| !GAP.contains(e)) {
        sign_epoch_concurrently(&db, &rt, epoch);
    }
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
    g.bench_function("sqlite_full_checks", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let last = epoch.load(Ordering::Relaxed) - 1;
                let before = observer.nanos.load(Ordering::Relaxed);
                full_check_requests(&db, last);
                let spent = observer.nanos.load(Ordering::Relaxed) - before;
                total += Duration::from_nanos(spent / (2 * VALIDATORS));
            }
            total
        })
    });
    let fills = AtomicU64::new(0);
    g.bench_function("sqlite_gap_fill", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let before = observer.nanos.load(Ordering::Relaxed);
                for _ in 0..FILLS_PER_ITER {
                    gap_fill(&db, fills.fetch_add(1, Ordering::Relaxed));
                }
                let spent = observer.nanos.load(Ordering::Relaxed) - before;
                total += Duration::from_nanos(spent / FILLS_PER_ITER);
            }
            total
        })
    });
    g.finish();
}

/// The `n`-th gap fill: validator `n % VALIDATORS` votes `31 -> t`, `t` the next target of
/// the gap it has not filled yet.
fn gap_fill(db: &SlashingDb, n: u64) {
    let v = n % VALIDATORS;
    let target = GAP.start() + n / VALIDATORS;
    assert!(GAP.contains(&target), "the bench ran out of gap");
    let filled = db.check_and_record_blocking(
        GVR.into(),
        pubkey(v).into(),
        Subject::Attestation {
            source: Epoch(GAP.start() - 1),
            target: Epoch(target),
        },
        epoch_root(target, v).into(),
    );
    assert_eq!(filled.expect("gap fill"), Approval::Recorded);
}

/// Per validator: the repeat of its attestation `last - 1 -> last` and a vote
/// `last - 3 -> last + 1`, which surrounds `last - 2 -> last - 1` (refused).
fn full_check_requests(db: &SlashingDb, last: u64) {
    for v in 0..VALIDATORS {
        let repeat = db.check_and_record_blocking(
            GVR.into(),
            pubkey(v).into(),
            Subject::Attestation {
                source: Epoch(last - 1),
                target: Epoch(last),
            },
            epoch_root(last, v).into(),
        );
        assert_eq!(repeat.expect("repeat"), Approval::Repeat);
        let surrounding = db.check_and_record_blocking(
            GVR.into(),
            pubkey(v).into(),
            Subject::Attestation {
                source: Epoch(last - 3),
                target: Epoch(last + 1),
            },
            epoch_root(last + 1, v).into(),
        );
        assert!(matches!(surrounding, Err(SignCheckError::Refused(_))));
    }
}

criterion_group!(benches, writer_cpu);
criterion_main!(benches);
