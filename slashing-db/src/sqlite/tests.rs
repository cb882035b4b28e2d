//! The two attestation tiers (`attestations.rs`): every query picks its own validator's
//! rows out of a group shared with peers whose histories would change the answer if they
//! leaked in, whichever tier the rows are in; compaction moves rows without losing or
//! duplicating any; a schema-1 file is migrated with nothing lost.

use rusqlite::Connection;

use super::schema::{enc, group_of, GROUP_BITS, MIGRATIONS};
use super::DEFAULT_RECENT_ROWS_PER_GROUP;
use crate::test_support::{att, outcome};
use crate::{ExportFormat, OpenOptions, PruneSettings, SlashingDb, Subject};

const GVR: [u8; 32] = [5u8; 32];

fn pk(i: u8) -> [u8; 48] {
    let mut p = [0u8; 48];
    p[0] = 0x90;
    p[1] = i;
    p
}

fn root(i: u8) -> [u8; 32] {
    [i; 32]
}

fn sign(db: &SlashingDb, v: u8, subject: Subject, r: u8) -> &'static str {
    outcome(db.check_and_record_blocking(GVR.into(), pk(v).into(), subject, root(r).into()))
}

/// `(source, target)` of every attestation of `v` in a complete export, by target.
fn attestations(db: &SlashingDb, v: u8) -> Vec<(u64, u64)> {
    let export = db
        .export_interchange(Some(&[pk(v)]), ExportFormat::Complete)
        .expect("export");
    let json: serde_json::Value = serde_json::from_slice(&export).expect("json");
    let num = |x: &serde_json::Value| x.as_str().and_then(|s| s.parse().ok()).expect("epoch");
    json["data"][0]["signed_attestations"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|r| (num(&r["source_epoch"]), num(&r["target_epoch"])))
                .collect()
        })
        .unwrap_or_default()
}

/// Recent-tier sizes the tests run with: the default (every record stays recent) and 2
/// (a group's oldest record moves out as soon as it has two, so histories straddle both
/// tiers and move between them all the time).
const RECENT_LIMITS: [usize; 2] = [DEFAULT_RECENT_ROWS_PER_GROUP, 2];

fn options(recent_limit: usize) -> OpenOptions {
    OpenOptions {
        sqlite_recent_rows_per_group: recent_limit,
        ..OpenOptions::default()
    }
}

/// Validators 1 (the peer) and 2 (under test) get ids 1 and 2: one group.
fn two_in_one_group(dir: &tempfile::TempDir, recent_limit: usize) -> SlashingDb {
    let db = SlashingDb::open(&dir.path().join("g.sqlite"), options(recent_limit)).expect("open");
    assert_eq!(sign(&db, 1, att(0, 1), 1), "ok");
    assert_eq!(sign(&db, 2, att(0, 1), 1), "ok");
    db
}

#[test]
fn group_arithmetic_matches_the_schema() {
    assert!(MIGRATIONS[1].contains(&format!("validator_id >> {GROUP_BITS}")));
    assert_eq!(group_of(1), 0);
    assert_eq!(group_of((1 << GROUP_BITS) - 1), 0);
    assert_eq!(group_of(1 << GROUP_BITS), 1);
}

/// Each history below sends the request under test down the full checks (the summary
/// cannot decide it), where the answer for validator 2 alone is "ok" but the peer's
/// record would refuse it.
#[test]
fn a_peers_records_never_decide_a_validators_checks() {
    for limit in RECENT_LIMITS {
        // record_surrounding: the peer's (2, 9) surrounds (3, 4).
        let dir = tempfile::tempdir().expect("tempdir");
        let db = two_in_one_group(&dir, limit);
        assert_eq!(sign(&db, 1, att(2, 9), 1), "ok");
        assert_eq!(sign(&db, 2, att(5, 6), 1), "ok");
        assert_eq!(sign(&db, 2, att(3, 4), 2), "ok");
        assert_eq!(sign(&db, 1, att(3, 4), 2), "surrounded_vote");

        // record_surrounded: (3, 6) surrounds the peer's (4, 5).
        let dir = tempfile::tempdir().expect("tempdir");
        let db = two_in_one_group(&dir, limit);
        assert_eq!(sign(&db, 1, att(4, 5), 1), "ok");
        assert_eq!(sign(&db, 2, att(7, 8), 1), "ok");
        assert_eq!(sign(&db, 2, att(3, 6), 2), "ok");
        assert_eq!(sign(&db, 1, att(3, 6), 2), "surrounding_vote");

        // attestation_at_target: the peer's (3, 4) under another root is no double vote of
        // validator 2's, and its own root is no repeat of validator 2's.
        let dir = tempfile::tempdir().expect("tempdir");
        let db = two_in_one_group(&dir, limit);
        assert_eq!(sign(&db, 1, att(3, 4), 7), "ok");
        assert_eq!(sign(&db, 2, att(5, 9), 1), "ok");
        assert_eq!(sign(&db, 2, att(3, 4), 8), "ok");
        assert_eq!(sign(&db, 2, att(3, 4), 8), "repeat");
        assert_eq!(sign(&db, 2, att(2, 3), 7), "ok");
        assert_eq!(sign(&db, 1, att(3, 4), 8), "double_vote");

        // The low watermarks are per validator (and so is their reload from the file): the
        // peer's (0, 1) must not lower validator 2's, which start at (6, 8).
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("w.sqlite");
        let db = SlashingDb::open(&path, options(limit)).expect("open");
        assert_eq!(sign(&db, 1, att(0, 1), 1), "ok");
        assert_eq!(sign(&db, 2, att(6, 8), 1), "ok");
        drop(db);
        let db = SlashingDb::open(&path, options(limit)).expect("reopen");
        assert_eq!(
            sign(&db, 2, att(5, 7), 1),
            "attestation_source_below_watermark"
        );
        assert_eq!(
            sign(&db, 2, att(6, 7), 1),
            "attestation_target_not_above_watermark"
        );
        assert_eq!(sign(&db, 1, att(1, 2), 1), "ok");
    }
}

#[test]
fn exports_imports_and_pruning_touch_only_their_validator() {
    for limit in RECENT_LIMITS {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = two_in_one_group(&dir, limit);
        for e in 2..=20 {
            assert_eq!(sign(&db, 1, att(e - 1, e), e as u8), "ok");
            if e % 2 == 0 {
                assert_eq!(sign(&db, 2, att(e - 2, e), e as u8), "ok");
            }
        }
        let peer: Vec<(u64, u64)> = (1..=20).map(|e| (e - 1, e)).collect();
        let own: Vec<(u64, u64)> = std::iter::once((0, 1))
            .chain((2..=20).step_by(2).map(|e| (e - 2, e)))
            .collect();
        assert_eq!(attestations(&db, 1), peer);
        assert_eq!(attestations(&db, 2), own);

        // Importing validator 2 alone replaces its history by one low watermark.
        let interchange = format!(
            r#"{{"metadata":{{"interchange_format_version":"5","genesis_validators_root":"0x{}"}},
                "data":[{{"pubkey":"0x{}","signed_blocks":[],
                          "signed_attestations":[{{"source_epoch":"3","target_epoch":"30"}}]}}]}}"#,
            hex::encode(GVR),
            hex::encode(pk(2))
        );
        db.import_interchange(interchange.as_bytes())
            .expect("import");
        assert_eq!(attestations(&db, 2), vec![(18, 30)]);
        assert_eq!(attestations(&db, 1), peer);
        assert_eq!(sign(&db, 2, att(19, 31), 1), "ok");

        // Pruning to the last 5 epochs of each validator's own history.
        let settings = PruneSettings {
            keep_epochs: 5,
            slots_per_epoch: 32,
            batch_rows: 3,
        };
        db.prune_round(&settings).expect("prune");
        // Each validator keeps the targets from its own highest target minus 5.
        assert_eq!(attestations(&db, 1), peer[14..].to_vec());
        assert_eq!(attestations(&db, 2), vec![(18, 30), (19, 31)]);
        // The peer's low watermarks moved up to its oldest kept record, (14, 15).
        assert_eq!(
            sign(&db, 1, att(14, 14), 9),
            "attestation_target_not_above_watermark"
        );
        assert_eq!(sign(&db, 1, att(20, 21), 9), "ok");
        assert_eq!(sign(&db, 2, att(19, 32), 9), "ok");
    }
}

/// A file written by schema 1 (attestations clustered by validator) opens, is migrated,
/// and keeps every record with its root; the rules then read the new layout.
#[test]
fn a_schema_1_file_is_migrated_with_every_record() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("v1.sqlite");
    {
        let conn = Connection::open(&path).expect("create");
        conn.execute_batch(MIGRATIONS[0]).expect("schema 1");
        conn.execute_batch("PRAGMA user_version = 1")
            .expect("version");
        conn.execute(
            "UPDATE meta SET genesis_validators_root = ?1 WHERE id = 0",
            [&GVR[..]],
        )
        .expect("gvr");
        for v in 1..=40u8 {
            conn.execute(
                "INSERT INTO validators (id, pubkey) VALUES (?1, ?2)",
                rusqlite::params![i64::from(v), &pk(v)[..]],
            )
            .expect("validator");
            for e in 1..=5u64 {
                conn.execute(
                    "INSERT INTO signed_attestations VALUES (?1, ?2, ?3, ?4)",
                    rusqlite::params![
                        i64::from(v),
                        enc(e - 1),
                        enc(e + u64::from(v)),
                        &root(v)[..]
                    ],
                )
                .expect("attestation");
            }
        }
    }
    let db = SlashingDb::open(&path, OpenOptions::default()).expect("migrate");
    for v in 1..=40u8 {
        let expected: Vec<(u64, u64)> = (1..=5).map(|e| (e - 1, e + u64::from(v))).collect();
        assert_eq!(attestations(&db, v), expected, "validator {v}");
        let last = 5 + u64::from(v);
        assert_eq!(sign(&db, v, att(4, last), v), "repeat", "validator {v}");
        assert_eq!(sign(&db, v, att(3, last + 1), 0), "surrounding_vote");
        assert_eq!(sign(&db, v, att(4, last + 1), 0), "ok");
    }
    drop(db);
    let conn = Connection::open(&path).expect("reopen raw");
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .expect("version");
    assert_eq!(version, MIGRATIONS.len() as i64);
    // The old records stayed in the per-validator tier; the 40 new ones are recent.
    assert_eq!(count(&conn, "signed_attestations"), 200);
    assert_eq!(count(&conn, "recent_attestations"), 40);
}

fn count(conn: &Connection, table: &str) -> i64 {
    conn.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
        .expect("count")
}

/// With a recent tier of 64 rows per group, 130 validators (three groups) signing 40
/// epochs move most rows to the per-validator tier in bulk; every record is still there
/// exactly once, with its root, the recent tier stays bounded, the rules still read both
/// tiers, and a reopened file reads the same.
#[test]
fn compaction_moves_rows_without_losing_or_duplicating_any() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("c.sqlite");
    let db = SlashingDb::open(&path, options(64)).expect("open");
    for e in 1..=40u64 {
        for v in 1..=130u8 {
            assert_eq!(sign(&db, v, att(e - 1, e), v), "ok");
        }
    }
    let expected: Vec<(u64, u64)> = (1..=40).map(|e| (e - 1, e)).collect();
    for v in [1u8, 63, 64, 130] {
        assert_eq!(attestations(&db, v), expected, "validator {v}");
        // A repeat and a double vote of an old (moved) record, then of recent ones.
        assert_eq!(sign(&db, v, att(2, 3), v), "repeat");
        assert_eq!(sign(&db, v, att(2, 3), 0), "double_vote");
        assert_eq!(sign(&db, v, att(38, 41), v), "surrounding_vote");
        assert_eq!(sign(&db, v, att(39, 40), 0), "double_vote");
    }
    drop(db);
    let conn = Connection::open(&path).expect("raw");
    assert_eq!(
        count(&conn, "signed_attestations") + count(&conn, "recent_attestations"),
        130 * 40
    );
    assert!(count(&conn, "signed_attestations") >= 130 * 40 - 3 * 64);
    let duplicated: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM signed_attestations s JOIN recent_attestations r
             ON r.validator_id = s.validator_id AND r.target_epoch = s.target_epoch",
            [],
            |r| r.get(0),
        )
        .expect("join");
    assert_eq!(duplicated, 0);
    let most: i64 = conn
        .query_row(
            "SELECT MAX(n) FROM (SELECT COUNT(*) AS n FROM recent_attestations GROUP BY vgroup)",
            [],
            |r| r.get(0),
        )
        .expect("max");
    assert!(most < 64, "a group holds {most} recent rows");
    drop(conn);
    let db = SlashingDb::open(&path, options(64)).expect("reopen");
    assert_eq!(attestations(&db, 130), expected);
    assert_eq!(sign(&db, 130, att(40, 41), 1), "ok");
    assert_eq!(sign(&db, 130, att(39, 42), 1), "surrounding_vote");
}

/// The signing root of validator 2's minimal export is its own record's, not that of the
/// peer's record with the same epochs (which comes first in the group).
#[test]
fn a_minimal_export_takes_the_root_from_its_own_record() {
    for limit in RECENT_LIMITS {
        let minimal_root = |db: &SlashingDb| {
            let export = db
                .export_interchange(Some(&[pk(2)]), ExportFormat::Minimal)
                .expect("export");
            let json: serde_json::Value = serde_json::from_slice(&export).expect("json");
            json["data"][0]["signed_attestations"][0]["signing_root"]
                .as_str()
                .map(str::to_owned)
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let db = two_in_one_group(&dir, limit);
        assert_eq!(sign(&db, 1, att(5, 6), 7), "ok");
        assert_eq!(sign(&db, 2, att(5, 6), 8), "ok");
        assert_eq!(
            minimal_root(&db),
            Some(format!("0x{}", hex::encode(root(8))))
        );
    }
}

/// A validator's maxima recomputed after pruning (the minimal export shows them) are its
/// own, not those of a peer with higher epochs.
#[test]
fn maxima_recomputed_after_pruning_are_the_validators_own() {
    for limit in RECENT_LIMITS {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = two_in_one_group(&dir, limit);
        for e in 2..=4 {
            assert_eq!(sign(&db, 2, att(e - 1, e), 1), "ok");
        }
        assert_eq!(sign(&db, 1, att(10, 11), 1), "ok");
        let settings = PruneSettings {
            keep_epochs: 1,
            slots_per_epoch: 32,
            batch_rows: 10,
        };
        db.prune_round(&settings).expect("prune");
        assert_eq!(attestations(&db, 2), vec![(2, 3), (3, 4)]);
        let export = db
            .export_interchange(Some(&[pk(2)]), ExportFormat::Minimal)
            .expect("export");
        let json: serde_json::Value = serde_json::from_slice(&export).expect("json");
        let minimal = &json["data"][0]["signed_attestations"][0];
        assert_eq!(minimal["source_epoch"], "3");
        assert_eq!(minimal["target_epoch"], "4");
        // And the summary still decides the next attestation from the validator's own maxima.
        assert_eq!(sign(&db, 2, att(4, 5), 1), "ok");
    }
}

/// The scans skipped from the cached extremes are exactly those that cannot find a row:
/// one record `(4, 8)`, whose extremes are its own epochs.
#[test]
fn surround_scans_are_skipped_only_when_no_record_can_match() {
    let one = super::Extremes::default().with_attestation(4, 8);
    // Surrounding `s -> t` needs a record with source < s and target > t.
    assert!(one.may_hold_surrounding(5, 7));
    assert!(!one.may_hold_surrounding(4, 7), "source 4 is not below 4");
    assert!(!one.may_hold_surrounding(5, 8), "target 8 is not above 8");
    // Surrounded by `s -> t` needs a record with source > s and target < t.
    assert!(one.may_hold_surrounded(3, 9));
    assert!(!one.may_hold_surrounded(4, 9), "source 4 is not above 4");
    assert!(!one.may_hold_surrounded(3, 8), "target 8 is not below 8");
    // No records: nothing to scan.
    let none = super::Extremes::default();
    assert!(!none.may_hold_surrounding(5, 7));
    assert!(!none.may_hold_surrounded(3, 9));
}

/// Pruning skips a validator whose kept history would lower its source watermark when
/// the record that proves it is in the recent tier (the twin of
/// `prune_tests::pruning_skips_a_history_whose_source_watermark_would_fall`, whose record
/// is in the per-validator tier).
#[test]
fn pruning_sees_a_recent_record_below_the_source_watermark() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("p.sqlite");
    {
        let db = SlashingDb::open(&path, OpenOptions::default()).expect("open");
        assert_eq!(sign(&db, 1, att(10, 20), 1), "ok");
        assert_eq!(sign(&db, 1, att(20, 30), 2), "ok");
    }
    {
        // (5, 31) written past the checks: it surrounds (10, 20), so pruning (10, 20)
        // away would leave 5 as the lowest source, below the pruned 10.
        let conn = Connection::open(&path).expect("raw");
        conn.execute(
            "INSERT INTO recent_attestations (vgroup, validator_id, source_epoch, target_epoch)
             SELECT id >> 6, id, ?1, ?2 FROM validators WHERE pubkey = ?3",
            rusqlite::params![enc(5), enc(31), &pk(1)[..]],
        )
        .expect("insert");
    }
    let db = SlashingDb::open(&path, OpenOptions::default()).expect("reopen");
    let settings = PruneSettings {
        keep_epochs: 5,
        slots_per_epoch: 32,
        batch_rows: 10,
    };
    let summary = db.prune_round(&settings).expect("prune");
    assert_eq!(summary.validators_skipped, 1);
    assert_eq!(summary.attestations_deleted, 0);
    assert_eq!(attestations(&db, 1), vec![(10, 20), (20, 30), (5, 31)]);
}
