//! Online pruning of the slashing database (#15.8), on SQLite and on a real, throw-away
//! PostgreSQL:
//!
//! * the real binary with a tiny keep window and a one-second interval signs a long
//!   history; the pruned-records metric reaches exactly what falls out of the window, the
//!   database keeps only the window, a slashable request below the pruned range is refused
//!   (412) and normal signing goes on;
//! * on PostgreSQL, the library level: one handle prunes in small steps while another
//!   (another instance) signs the same validators, without deadlock or error, and every
//!   pruned record stays refused.

use std::time::{Duration, Instant};

use interop_tests::keyguard_process::{keyguard_command, KeyguardProcess};
use interop_tests::postgres::{require_postgres, TestPostgres};
use interop_tests::requests;
use slashing_db::{
    Approval, DatabaseLocation, Epoch, ExportFormat, OpenOptions, PruneSchedule, PruneSettings,
    SignCheckError, SlashingDb, Slot, Subject,
};

/// Interop keys served by the signer.
const KEYS: usize = 4;
/// Epochs signed per key.
const EPOCHS: u64 = 200;
/// Epochs kept (tiny, so that most of the history is pruned).
const KEEP: u64 = 8;

/// Records per key and kind that fall out of the window: attestations `e-1 -> e` with
/// target below `EPOCHS - KEEP`, blocks at `8 e` below `8 (EPOCHS - KEEP)`.
const PRUNED_PER_KEY: u64 = EPOCHS - KEEP - 1;

fn value(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

/// Runs the signer on `database` with pruning every second, signs the history, and
/// checks what the brief asks of online pruning. Returns the signer, still running.
fn sign_history_and_watch_pruning(
    database: &str,
    data: &std::path::Path,
    log_dir: &std::path::Path,
) -> KeyguardProcess {
    let keep = KEEP.to_string();
    let keys = KEYS.to_string();
    let mut kg = KeyguardProcess::start(
        &[
            "--network",
            "config/networks/devnet-minimal.yaml",
            "--interop-keys",
            &keys,
            "--data-dir",
            data.to_str().unwrap(),
            "--slashing-database",
            database,
            "--slashing-prune-keep-epochs",
            &keep,
            "--slashing-prune-interval-secs",
            "1",
            "--slashing-prune-batch-size",
            "16",
        ],
        log_dir,
    )
    .unwrap();
    kg.wait_healthy(Duration::from_secs(30)).unwrap();
    let pubkeys = kg.public_keys().unwrap();
    assert_eq!(pubkeys.len(), KEYS);
    // Each key signs its history in order; the pruner runs meanwhile.
    std::thread::scope(|scope| {
        for pk in &pubkeys {
            let kg = &kg;
            scope.spawn(move || {
                for e in 1..=EPOCHS {
                    let root = (e % 200) as u8 + 1;
                    assert_eq!(
                        kg.sign_status(pk, requests::attestation(e - 1, e, root))
                            .unwrap(),
                        200,
                        "attestation {e}"
                    );
                    assert_eq!(
                        kg.sign_status(
                            pk,
                            requests::block_header(e * requests::SLOTS_PER_EPOCH, root)
                        )
                        .unwrap(),
                        200,
                        "block {e}"
                    );
                }
            });
        }
    });
    let expected = (KEYS as u64 * PRUNED_PER_KEY) as f64;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let m = kg.metrics().unwrap();
        let atts = value(
            &m,
            "keyguard_slashing_pruned_records_total{kind=\"attestation\"}",
        );
        let blocks = value(&m, "keyguard_slashing_pruned_records_total{kind=\"block\"}");
        // Exact: nothing else can fall out of the window until more is signed.
        assert!(
            atts <= expected && blocks <= expected,
            "pruned more than fell out of the window: {atts} attestations, {blocks} blocks"
        );
        if atts == expected && blocks == expected {
            assert!(value(&m, "keyguard_slashing_prune_rounds_total{result=\"ok\"}") >= 1.0);
            assert_eq!(
                value(&m, "keyguard_slashing_prune_rounds_total{result=\"error\"}"),
                0.0
            );
            assert!(value(&m, "keyguard_slashing_prune_last_timestamp_seconds") > 1.7e9);
            // The writer's cost per record is exported.
            assert!(
                value(&m, "keyguard_slashing_writer_requests_total")
                    >= (2 * KEYS as u64 * EPOCHS) as f64
            );
            assert!(value(&m, "keyguard_slashing_writer_cpu_seconds_total") > 0.0);
            assert!(value(&m, "keyguard_slashing_writer_busy_seconds_total") > 0.0);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "pruned {atts} attestations and {blocks} blocks, expected {expected} each; log:\n{}",
            kg.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let pk = &pubkeys[0];
    // Slashable only against pruned records: a different root at a pruned target and slot,
    // a vote surrounding pruned ones. Refused (412): the watermarks rose with the pruning.
    assert_eq!(
        kg.sign_status(pk, requests::attestation(99, 100, 0xee))
            .unwrap(),
        412
    );
    assert_eq!(
        kg.sign_status(pk, requests::attestation(10, 150, 0xee))
            .unwrap(),
        412
    );
    assert_eq!(
        kg.sign_status(
            pk,
            requests::block_header(100 * requests::SLOTS_PER_EPOCH, 0xee)
        )
        .unwrap(),
        412
    );
    // Normal signing goes on.
    assert_eq!(
        kg.sign_status(pk, requests::attestation(EPOCHS, EPOCHS + 1, 1))
            .unwrap(),
        200
    );
    assert_eq!(
        kg.sign_status(
            pk,
            requests::block_header((EPOCHS + 1) * requests::SLOTS_PER_EPOCH, 1)
        )
        .unwrap(),
        200
    );
    // Two more rounds: one started after those, so the window moved up by one for that
    // key too (the counts below do not depend on timing).
    let rounds = |kg: &KeyguardProcess| {
        value(
            &kg.metrics().unwrap(),
            "keyguard_slashing_prune_rounds_total{result=\"ok\"}",
        )
    };
    let before = rounds(&kg);
    let deadline = Instant::now() + Duration::from_secs(30);
    while rounds(&kg) < before + 2.0 {
        assert!(
            Instant::now() < deadline,
            "no more pruning rounds; log:\n{}",
            kg.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    kg
}

/// The complete export's record counts of every validator: (blocks, attestations).
fn exported_counts(json: &[u8]) -> Vec<(usize, usize)> {
    let v: serde_json::Value = serde_json::from_slice(json).unwrap();
    v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["signed_blocks"].as_array().unwrap().len(),
                d["signed_attestations"].as_array().unwrap().len(),
            )
        })
        .collect()
}

/// Per key: the window of `KEEP + 1` epochs below its highest record, blocks and
/// attestations.
fn expected_counts() -> Vec<(usize, usize)> {
    let window = (KEEP + 1) as usize;
    vec![(window, window); KEYS]
}

#[test]
fn running_signer_prunes_sqlite_and_still_refuses_below_the_window() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let db = data.join("slashing.sqlite");
    let mut kg = sign_history_and_watch_pruning(db.to_str().unwrap(), &data, tmp.path());
    kg.terminate(Duration::from_secs(30)).unwrap();
    // The file holds only the window (the export reads every record).
    let export = tmp.path().join("export.json");
    let out = keyguard_command(&[
        "slashing",
        "export",
        export.to_str().unwrap(),
        "--data-dir",
        data.to_str().unwrap(),
        "--slashing-database",
        db.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        exported_counts(&std::fs::read(&export).unwrap()),
        expected_counts()
    );
}

#[test]
fn running_signer_prunes_postgres_and_still_refuses_below_the_window() {
    let Some(pg) =
        require_postgres("running_signer_prunes_postgres_and_still_refuses_below_the_window")
    else {
        return;
    };
    let url = pg.create_database().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let kg = sign_history_and_watch_pruning(&url, &data, tmp.path());
    // Read back through a second handle while the signer still runs (PostgreSQL is shared).
    let db = SlashingDb::open_location(
        &DatabaseLocation::parse(&url).unwrap(),
        OpenOptions::default(),
    )
    .unwrap();
    assert_eq!(
        exported_counts(&db.export_interchange(None, ExportFormat::Complete).unwrap()),
        expected_counts()
    );
    drop(kg);
    drop(pg);
}

const GVR: [u8; 32] = [0x33; 32];

fn pk(i: u32) -> [u8; 48] {
    let mut p = [0u8; 48];
    p[..4].copy_from_slice(&i.to_be_bytes());
    p[47] = 0x44;
    p
}

fn sign(db: &SlashingDb, v: u32, subject: Subject, root: u64) -> &'static str {
    let mut r = [0u8; 32];
    r[..8].copy_from_slice(&root.to_be_bytes());
    r[31] = 1;
    match db.check_and_record_blocking(GVR.into(), pk(v).into(), subject, r.into()) {
        Ok(Approval::Recorded) => "ok",
        Ok(Approval::Repeat) => "repeat",
        Err(SignCheckError::Refused(refusal)) => refusal.reason(),
        Err(SignCheckError::Db(e)) => panic!("db error: {e}"),
    }
}

fn att(s: u64, t: u64) -> Subject {
    Subject::Attestation {
        source: Epoch(s),
        target: Epoch(t),
    }
}

fn open(url: &str) -> SlashingDb {
    SlashingDb::open_location(
        &DatabaseLocation::parse(url).unwrap(),
        OpenOptions::default(),
    )
    .unwrap()
}

/// One handle signs 8 validators' histories while another prunes them in 10-row steps
/// every 10 ms, as two instances on one database would: no error, no deadlock; then one
/// more round leaves exactly the window, and below it everything stays refused.
#[test]
fn postgres_pruning_in_small_steps_beside_another_writer() {
    let Some(pg) = require_postgres("postgres_pruning_in_small_steps_beside_another_writer") else {
        return;
    };
    let url = pg.create_database().unwrap();
    let signer = open(&url);
    let pruner_db = open(&url);
    // Bind the genesis root and register the validators before the pruner starts.
    for v in 0..8 {
        assert_eq!(sign(&signer, v, att(0, 1), 1), "ok");
    }
    let settings = PruneSettings {
        keep_epochs: 20,
        slots_per_epoch: 32,
        batch_rows: 10,
    };
    let pruner = pruner_db
        .start_pruning(PruneSchedule {
            settings,
            first_delay: Duration::ZERO,
            interval: Duration::from_millis(10),
        })
        .unwrap();
    std::thread::scope(|scope| {
        for v in 0..8 {
            let signer = &signer;
            scope.spawn(move || {
                for e in 2..=150u64 {
                    assert_eq!(
                        sign(signer, v, att(e - 1, e), e),
                        "ok",
                        "validator {v} epoch {e}"
                    );
                    assert_eq!(
                        sign(signer, v, Subject::Block { slot: Slot(32 * e) }, e),
                        "ok"
                    );
                }
            });
        }
    });
    drop(pruner);
    let last = pruner_db.prune_round(&settings).unwrap();
    assert_eq!(last.validators_skipped, 0);
    let counts = exported_counts(
        &signer
            .export_interchange(None, ExportFormat::Complete)
            .unwrap(),
    );
    // Targets 130..=150 and blocks at slots 32 * 130 ..= 32 * 150.
    assert_eq!(counts, vec![(21, 21); 8]);
    for v in 0..8 {
        assert_eq!(
            sign(&signer, v, att(99, 100), 7),
            "attestation_source_below_watermark"
        );
        assert_eq!(
            sign(
                &signer,
                v,
                Subject::Block {
                    slot: Slot(32 * 100)
                },
                7
            ),
            "block_slot_not_above_watermark"
        );
        assert_eq!(
            sign(&signer, v, att(129, 129), 7),
            "attestation_target_not_above_watermark"
        );
        assert_eq!(sign(&signer, v, att(150, 151), 151), "ok");
    }
    drop((signer, pruner_db));
    let _: &TestPostgres = &pg;
}
