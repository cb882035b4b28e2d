//! Pruning on SQLite (the PostgreSQL twin is `interop-tests/tests/slashing_prune.rs`):
//! bounded steps, the window kept, everything below it still refused, the history that
//! would lower a watermark left alone, and the background pruner's life cycle.

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::test_support::{att, outcome};
use crate::{
    DbObserver, ExportFormat, OpenOptions, PruneSchedule, PruneSettings, SlashingDb, Slot, Subject,
};

const GVR: [u8; 32] = [9u8; 32];

fn pk(i: u32) -> [u8; 48] {
    let mut p = [0u8; 48];
    p[..4].copy_from_slice(&i.to_be_bytes());
    p[47] = 3;
    p
}

fn root(i: u64) -> [u8; 32] {
    let mut x = [0u8; 32];
    x[..8].copy_from_slice(&i.to_be_bytes());
    x[31] = 0xbb;
    x
}

fn sign(db: &SlashingDb, v: u32, subject: Subject, r: u64) -> &'static str {
    outcome(db.check_and_record_blocking(GVR.into(), pk(v).into(), subject, root(r).into()))
}

/// Records per pruning step and per round.
#[derive(Default)]
struct PruneLog {
    steps: Mutex<Vec<(usize, usize)>>,
    rounds_ok: AtomicUsize,
    rounds_failed: AtomicUsize,
}

impl PruneLog {
    fn deleted(&self) -> (usize, usize) {
        let steps = self.steps.lock().expect("lock");
        steps
            .iter()
            .fold((0, 0), |(b, a), (sb, sa)| (b + sb, a + sa))
    }
}

impl DbObserver for PruneLog {
    fn check_latency(&self, _d: Duration) {}
    fn commit(&self, _batch_size: usize, _commit_time: Duration) {}
    fn refusal(&self, _reason: &'static str) {}
    fn pruned(&self, blocks: usize, attestations: usize, _step_time: Duration) {
        self.steps
            .lock()
            .expect("lock")
            .push((blocks, attestations));
    }
    fn prune_round(&self, ok: bool, _elapsed: Duration) {
        if ok {
            self.rounds_ok.fetch_add(1, Relaxed);
        } else {
            self.rounds_failed.fetch_add(1, Relaxed);
        }
    }
}

fn open_observed(dir: &tempfile::TempDir, log: &Arc<PruneLog>) -> SlashingDb {
    SlashingDb::open(
        &dir.path().join("db.sqlite"),
        OpenOptions {
            observer: Some(log.clone()),
            ..OpenOptions::default()
        },
    )
    .expect("open")
}

/// Validator `v` signs epochs `from..=to`: attestation `e-1 -> e` and a block at slot
/// `32 * e`.
fn sign_history(db: &SlashingDb, v: u32, from: u64, to: u64) {
    for e in from..=to {
        assert_eq!(sign(db, v, att(e - 1, e), e), "ok");
        assert_eq!(sign(db, v, Subject::Block { slot: Slot(32 * e) }, e), "ok");
    }
}

fn exported_counts(db: &SlashingDb, v: u32) -> (usize, usize) {
    let export = db
        .export_interchange(Some(&[pk(v)]), ExportFormat::Complete)
        .expect("export");
    let json: serde_json::Value = serde_json::from_slice(&export).expect("json");
    let len = |key: &str| json["data"][0][key].as_array().map_or(0, |a| a.len());
    (len("signed_blocks"), len("signed_attestations"))
}

#[test]
fn pruning_in_small_steps_keeps_the_window_and_refuses_everything_below_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = Arc::new(PruneLog::default());
    let db = open_observed(&dir, &log);
    for v in 1..=3 {
        sign_history(&db, v, 1, 300);
    }
    let settings = PruneSettings {
        keep_epochs: 50,
        slots_per_epoch: 32,
        batch_rows: 40,
    };
    let summary = db.prune_round(&settings).expect("prune");
    // Per validator: blocks below slot 32 * 300 - 50 * 32 = 8000 (epochs 1..=249) and
    // attestations with target below 300 - 50 = 250 (targets 1..=249).
    assert_eq!(summary.blocks_deleted, 3 * 249);
    assert_eq!(summary.attestations_deleted, 3 * 249);
    assert_eq!(summary.validators_skipped, 0);
    let steps = log.steps.lock().expect("lock").clone();
    assert!(steps.len() >= (6 * 249) / 40, "{} steps", steps.len());
    for (blocks, attestations) in &steps {
        assert!(
            blocks + attestations <= 40,
            "a step deleted {blocks} + {attestations}"
        );
    }
    assert_eq!(log.deleted(), (3 * 249, 3 * 249));
    for v in 1..=3 {
        assert_eq!(exported_counts(&db, v), (51, 51));
    }
    // A second round finds nothing more.
    assert_eq!(
        db.prune_round(&settings).expect("prune again"),
        Default::default()
    );

    // Slashable against pruned records (a different root at a pruned slot or target, a
    // vote surrounding pruned ones): still refused, by the risen watermarks.
    assert_eq!(
        sign(
            &db,
            1,
            Subject::Block {
                slot: Slot(32 * 200)
            },
            7
        ),
        "block_slot_not_above_watermark"
    );
    assert_eq!(
        sign(&db, 1, att(199, 200), 7),
        "attestation_source_below_watermark"
    );
    assert_eq!(
        sign(&db, 1, att(100, 249), 7),
        "attestation_source_below_watermark"
    );
    // The oldest kept records are the watermarks, with EIP-3076's `<=`.
    assert_eq!(
        sign(&db, 1, Subject::Block { slot: Slot(8000) }, 7),
        "double_block_proposal"
    );
    assert_eq!(
        sign(&db, 1, Subject::Block { slot: Slot(7999) }, 7),
        "block_slot_not_above_watermark"
    );
    assert_eq!(
        sign(&db, 1, att(249, 249), 7),
        "attestation_target_not_above_watermark"
    );
    // What was kept still decides: a repeat is a repeat, a double vote is refused.
    assert_eq!(sign(&db, 1, att(259, 260), 260), "repeat");
    assert_eq!(sign(&db, 1, att(259, 260), 7), "double_vote");
    // Normal signing goes on.
    assert_eq!(sign(&db, 1, att(300, 301), 301), "ok");
    assert_eq!(
        sign(
            &db,
            1,
            Subject::Block {
                slot: Slot(32 * 301)
            },
            301
        ),
        "ok"
    );
}

#[test]
fn the_highest_records_always_stay() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = Arc::new(PruneLog::default());
    let db = open_observed(&dir, &log);
    sign_history(&db, 1, 1, 20);
    let summary = db.prune(0, 32).expect("prune");
    assert_eq!(
        (summary.blocks_deleted, summary.attestations_deleted),
        (19, 19)
    );
    assert_eq!(exported_counts(&db, 1), (1, 1));
    // Nothing at or below the kept maxima, everything above.
    assert_eq!(sign(&db, 1, att(19, 20), 20), "repeat");
    assert_eq!(
        sign(&db, 1, att(18, 19), 19),
        "attestation_source_below_watermark"
    );
    assert_eq!(sign(&db, 1, att(19, 21), 21), "ok");
}

/// A history in which a kept record has a lower source than an older one cannot come from
/// this database's checks (the kept one surrounds the older one), but pruning must not
/// lower the source watermark on it either: that validator's attestations are skipped.
#[test]
fn pruning_skips_a_history_whose_source_watermark_would_fall() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("db.sqlite");
    {
        let db = SlashingDb::open(&path, OpenOptions::default()).expect("open");
        assert_eq!(sign(&db, 1, att(10, 20), 1), "ok");
        assert_eq!(sign(&db, 2, att(10, 20), 1), "ok");
        assert_eq!(sign(&db, 2, att(20, 30), 2), "ok");
        // Validator 1 also gets (5, 30), written past the checks.
        let enc = |v: u64| (v ^ (1u64 << 63)) as i64;
        let sql = format!(
            "INSERT INTO signed_attestations (validator_id, source_epoch, target_epoch, signing_root)
             SELECT id, {}, {}, NULL FROM validators WHERE pubkey = x'{}'",
            enc(5),
            enc(30),
            hex::encode(pk(1))
        );
        db.admin(move |w| w.backend.execute_raw(&sql).expect("insert"))
            .expect("admin");
    }
    // Reopened, so the summaries are read from the file.
    let db = SlashingDb::open(&path, OpenOptions::default()).expect("reopen");
    let summary = db.prune(0, 32).expect("prune");
    assert_eq!(summary.validators_skipped, 1);
    assert_eq!(
        summary.attestations_deleted, 1,
        "validator 2's (10, 20) only"
    );
    assert_eq!(exported_counts(&db, 1), (0, 2));
    // Its source watermark is still 5: a vote from source 5 upwards surrounding nothing
    // kept is judged against both records.
    assert_eq!(sign(&db, 1, att(9, 25), 3), "surrounded_vote");
}

#[test]
fn background_pruner_prunes_while_signing_goes_on_and_stops_when_dropped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = Arc::new(PruneLog::default());
    let db = open_observed(&dir, &log);
    sign_history(&db, 1, 1, 100);
    let pruner = db
        .start_pruning(PruneSchedule {
            settings: PruneSettings {
                keep_epochs: 10,
                slots_per_epoch: 32,
                batch_rows: 16,
            },
            first_delay: Duration::ZERO,
            interval: Duration::from_millis(20),
        })
        .expect("start");
    // Signing goes on while rounds run.
    sign_history(&db, 1, 101, 200);
    let deadline = Instant::now() + Duration::from_secs(20);
    while log.deleted() != (189, 189) {
        assert!(
            Instant::now() < deadline,
            "pruned {:?}, expected (189, 189)",
            log.deleted()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(log.rounds_ok.load(Relaxed) >= 1);
    assert_eq!(log.rounds_failed.load(Relaxed), 0);
    assert_eq!(exported_counts(&db, 1), (11, 11));
    assert_eq!(
        sign(&db, 1, att(149, 150), 9),
        "attestation_source_below_watermark"
    );
    drop(pruner);
    let rounds = log.rounds_ok.load(Relaxed);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(
        log.rounds_ok.load(Relaxed),
        rounds,
        "a round ran after the drop"
    );
}

#[test]
fn the_pruner_does_not_keep_the_database_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("db.sqlite");
    let db = SlashingDb::open(&path, OpenOptions::default()).expect("open");
    let pruner = db
        .start_pruning(PruneSchedule {
            settings: PruneSettings {
                keep_epochs: 10,
                slots_per_epoch: 32,
                batch_rows: 16,
            },
            first_delay: Duration::from_millis(5),
            interval: Duration::from_millis(5),
        })
        .expect("start");
    std::thread::sleep(Duration::from_millis(30));
    drop(db);
    // The file's exclusive lock was released: the writer stopped with its last handle.
    let deadline = Instant::now() + Duration::from_secs(5);
    let reopened = loop {
        match SlashingDb::open(&path, OpenOptions::default()) {
            Ok(db) => break db,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => panic!("still open: {e}"),
        }
    };
    drop(pruner);
    drop(reopened);
}
