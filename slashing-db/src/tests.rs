//! Unit tests of the database handle: locking, durability, rules, writer failure handling.

use std::time::Duration;

use super::*;

const GVR: [u8; 32] = [7u8; 32];

fn pk(i: u32) -> [u8; 48] {
    let mut p = [0u8; 48];
    p[..4].copy_from_slice(&i.to_be_bytes());
    p[47] = 1;
    p
}

fn r(i: u32) -> [u8; 32] {
    let mut x = [0u8; 32];
    x[..4].copy_from_slice(&i.to_be_bytes());
    x[31] = 0xaa;
    x
}

fn open(dir: &tempfile::TempDir) -> SlashingDb {
    SlashingDb::open(&dir.path().join("db.sqlite"), OpenOptions::default()).expect("open")
}

fn reason(res: Result<Approval, SignCheckError>) -> &'static str {
    match res {
        Ok(_) => "ok",
        Err(SignCheckError::Refused(r)) => r.reason(),
        Err(SignCheckError::Db(e)) => panic!("db error: {e}"),
    }
}

#[test]
fn second_open_is_refused_cleanly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = open(&dir);
    db.check_and_record_blocking(
        GVR.into(),
        pk(1).into(),
        Subject::Block { slot: Slot(1) },
        r(1).into(),
    )
    .expect("sign");
    let path = dir.path().join("db.sqlite");
    let err = SlashingDb::open(&path, OpenOptions::default()).expect_err("second open must fail");
    assert_eq!(err, DbError::InUse { path: path.clone() });
    assert!(
        err.to_string().contains("is in use by another process"),
        "{err}"
    );
    // The first handle still works.
    db.check_and_record_blocking(
        GVR.into(),
        pk(1).into(),
        Subject::Block { slot: Slot(2) },
        r(2).into(),
    )
    .expect("sign");
    drop(db);
    let db = SlashingDb::open(&path, OpenOptions::default()).expect("reopen after close");
    assert_eq!(db.health(), Health::Up);
}

#[test]
fn ok_answers_survive_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = open(&dir);
    for v in 0..20 {
        db.check_and_record_blocking(
            GVR.into(),
            pk(v).into(),
            Subject::Block { slot: Slot(10) },
            r(v).into(),
        )
        .expect("block");
        db.check_and_record_blocking(
            GVR.into(),
            pk(v).into(),
            Subject::Attestation {
                source: Epoch(2),
                target: Epoch(3),
            },
            r(v).into(),
        )
        .expect("att");
    }
    drop(db);
    let db = open(&dir);
    assert_eq!(db.genesis_validators_root().expect("gvr"), Some(GVR));
    for v in 0..20 {
        assert_eq!(
            reason(db.check_and_record_blocking(
                GVR.into(),
                pk(v).into(),
                Subject::Block { slot: Slot(10) },
                r(v + 1).into()
            )),
            "double_block_proposal"
        );
        assert_eq!(
            reason(db.check_and_record_blocking(
                GVR.into(),
                pk(v).into(),
                Subject::Attestation {
                    source: Epoch(2),
                    target: Epoch(3)
                },
                r(v + 1).into()
            )),
            "double_vote"
        );
        // Exact repeats are still allowed.
        db.check_and_record_blocking(
            GVR.into(),
            pk(v).into(),
            Subject::Block { slot: Slot(10) },
            r(v).into(),
        )
        .expect("repeat");
    }
}

#[test]
fn block_rules() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = open(&dir);
    let b = |slot, root| {
        reason(db.check_and_record_blocking(
            GVR.into(),
            pk(1).into(),
            Subject::Block { slot: Slot(slot) },
            SigningRoot(root),
        ))
    };
    assert_eq!(b(10, r(1)), "ok");
    assert_eq!(b(10, r(1)), "ok"); // exact repeat
    assert_eq!(b(10, r(2)), "double_block_proposal");
    assert_eq!(b(10, [0; 32]), "double_block_proposal"); // null root never repeats
    assert_eq!(b(9, r(3)), "block_slot_not_above_watermark");
    assert_eq!(b(12, r(4)), "ok");
    assert_eq!(b(11, r(5)), "ok"); // above the lowest slot, gap is fine
    assert_eq!(b(12, [0; 32]), "double_block_proposal");
    assert_eq!(b(13, [0; 32]), "ok");
    assert_eq!(b(13, [0; 32]), "double_block_proposal");
    // Repeat records nothing new.
    let export = db
        .export_interchange(None, ExportFormat::Complete)
        .expect("export");
    let v: serde_json::Value = serde_json::from_slice(&export).expect("json");
    assert_eq!(
        v["data"][0]["signed_blocks"].as_array().map(|a| a.len()),
        Some(4)
    );
}

#[test]
fn attestation_rules() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = open(&dir);
    let a = |s, t, root| {
        reason(db.check_and_record_blocking(
            GVR.into(),
            pk(1).into(),
            Subject::Attestation {
                source: Epoch(s),
                target: Epoch(t),
            },
            SigningRoot(root),
        ))
    };
    assert_eq!(a(5, 4, r(9)), "source_greater_than_target");
    assert_eq!(a(2, 5, r(1)), "ok");
    assert_eq!(a(2, 5, r(1)), "ok"); // exact repeat
    assert_eq!(a(2, 5, r(2)), "double_vote");
    assert_eq!(a(3, 5, r(1)), "double_vote"); // same root but a different source
    assert_eq!(a(1, 6, r(3)), "surrounding_vote");
    assert_eq!(a(3, 4, r(4)), "surrounded_vote");
    assert_eq!(a(2, 4, r(4)), "attestation_target_not_above_watermark");
    assert_eq!(a(1, 7, r(5)), "surrounding_vote");
    assert_eq!(a(4, 8, r(6)), "ok");
    assert_eq!(a(3, 9, r(7)), "surrounding_vote");
    assert_eq!(a(1, 9, r(7)), "surrounding_vote");
    assert_eq!(a(8, 9, r(8)), "ok");
    assert_eq!(a(8, 9, [0; 32]), "double_vote");
    assert_eq!(a(5, 7, r(10)), "surrounded_vote");
    assert_eq!(a(6, 6, r(11)), "surrounded_vote");
}

#[test]
fn attestation_watermarks() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = open(&dir);
    let a = |s, t, root| {
        reason(db.check_and_record_blocking(
            GVR.into(),
            pk(1).into(),
            Subject::Attestation {
                source: Epoch(s),
                target: Epoch(t),
            },
            SigningRoot(root),
        ))
    };
    assert_eq!(a(5, 10, r(1)), "ok");
    assert_eq!(a(4, 11, r(2)), "surrounding_vote");
    assert_eq!(a(4, 9, r(2)), "attestation_source_below_watermark");
    assert_eq!(a(5, 9, r(3)), "attestation_target_not_above_watermark");
    assert_eq!(a(6, 7, r(3)), "surrounded_vote");
    assert_eq!(a(5, 11, r(4)), "ok");
}

#[test]
fn genesis_root_binding() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = open(&dir);
    assert_eq!(db.genesis_validators_root().expect("gvr"), None);
    db.check_and_record_blocking(
        GVR.into(),
        pk(1).into(),
        Subject::Attestation {
            source: Epoch(0),
            target: Epoch(1),
        },
        r(1).into(),
    )
    .expect("binds");
    assert_eq!(db.genesis_validators_root().expect("gvr"), Some(GVR));
    let err = db
        .check_and_record_blocking(
            GenesisValidatorsRoot([1; 32]),
            pk(1).into(),
            Subject::Block { slot: Slot(5) },
            r(1).into(),
        )
        .expect_err("wrong root");
    assert_eq!(reason(Err(err)), "wrong_genesis_validators_root");
    assert!(matches!(
        db.bind_genesis_validators_root([1; 32]),
        Err(DbError::GenesisValidatorsRootMismatch { .. })
    ));
    db.bind_genesis_validators_root(GVR)
        .expect("same root is fine");
}

#[test]
fn setting_one_high_watermark_field_keeps_the_other() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = SlashingDb::open(&dir.path().join("db.sqlite"), Default::default()).expect("open");
    db.set_high_watermark(Some(100), Some(3)).expect("set both");
    db.set_high_watermark(Some(200), None)
        .expect("raise the slot only");
    let hw = db.high_watermark().expect("hw").expect("set");
    assert_eq!((hw.slot, hw.epoch), (Some(200), Some(3)));
    db.set_high_watermark(None, Some(9))
        .expect("raise the epoch only");
    let hw = db.high_watermark().expect("hw").expect("set");
    assert_eq!((hw.slot, hw.epoch), (Some(200), Some(9)));
    db.clear_high_watermark().expect("clear");
    assert_eq!(db.high_watermark().expect("hw"), None);
}

#[test]
fn high_watermark_kill_switch_is_persisted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = open(&dir);
    assert_eq!(db.high_watermark().expect("hw"), None);
    db.set_high_watermark(Some(100), Some(3)).expect("set");
    assert_eq!(
        reason(db.check_and_record_blocking(
            GVR.into(),
            pk(1).into(),
            Subject::Block { slot: Slot(100) },
            r(1).into()
        )),
        "high_watermark"
    );
    assert_eq!(
        reason(db.check_and_record_blocking(
            GVR.into(),
            pk(1).into(),
            Subject::Block { slot: Slot(99) },
            r(1).into()
        )),
        "ok"
    );
    // An exact repeat at/above the watermark is refused too.
    assert_eq!(
        reason(db.check_and_record_blocking(
            GVR.into(),
            pk(1).into(),
            Subject::Attestation {
                source: Epoch(1),
                target: Epoch(3)
            },
            r(1).into()
        )),
        "high_watermark"
    );
    assert_eq!(
        reason(db.check_and_record_blocking(
            GVR.into(),
            pk(1).into(),
            Subject::Attestation {
                source: Epoch(3),
                target: Epoch(2)
            },
            r(1).into()
        )),
        "high_watermark"
    );
    assert_eq!(
        reason(db.check_and_record_blocking(
            GVR.into(),
            pk(1).into(),
            Subject::Attestation {
                source: Epoch(1),
                target: Epoch(2)
            },
            r(1).into()
        )),
        "ok"
    );
    drop(db);
    let db = open(&dir);
    assert_eq!(
        db.high_watermark().expect("hw"),
        Some(HighWatermark {
            slot: Some(100),
            epoch: Some(3)
        })
    );
    assert_eq!(
        reason(db.check_and_record_blocking(
            GVR.into(),
            pk(1).into(),
            Subject::Block { slot: Slot(150) },
            r(1).into()
        )),
        "high_watermark"
    );
    db.clear_high_watermark().expect("clear");
    assert_eq!(db.high_watermark().expect("hw"), None);
    assert_eq!(
        reason(db.check_and_record_blocking(
            GVR.into(),
            pk(1).into(),
            Subject::Block { slot: Slot(150) },
            r(1).into()
        )),
        "ok"
    );
}

#[test]
fn prune_keeps_the_maximal_records() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = open(&dir);
    for e in 1..=100u64 {
        db.check_and_record_blocking(
            GVR.into(),
            pk(1).into(),
            Subject::Attestation {
                source: Epoch(e - 1),
                target: Epoch(e),
            },
            r(e as u32).into(),
        )
        .expect("att");
        db.check_and_record_blocking(
            GVR.into(),
            pk(1).into(),
            Subject::Block { slot: Slot(e * 32) },
            r(e as u32).into(),
        )
        .expect("block");
    }
    db.check_and_record_blocking(
        GVR.into(),
        pk(2).into(),
        Subject::Attestation {
            source: Epoch(3),
            target: Epoch(4),
        },
        r(1).into(),
    )
    .expect("att");
    let s = db.prune(10, 32).expect("prune");
    assert_eq!(s.attestations_deleted, 89); // targets 1..=89 (< 100 - 10 = 90)
    assert_eq!(s.blocks_deleted, 89);
    // Everything pruned stays refused: the low watermarks rose.
    assert_eq!(
        reason(db.check_and_record_blocking(
            GVR.into(),
            pk(1).into(),
            Subject::Attestation {
                source: Epoch(40),
                target: Epoch(50)
            },
            r(999).into()
        )),
        "attestation_source_below_watermark"
    );
    assert_eq!(
        reason(db.check_and_record_blocking(
            GVR.into(),
            pk(1).into(),
            Subject::Block { slot: Slot(64) },
            r(999).into()
        )),
        "block_slot_not_above_watermark"
    );
    assert_eq!(
        reason(db.check_and_record_blocking(
            GVR.into(),
            pk(1).into(),
            Subject::Attestation {
                source: Epoch(99),
                target: Epoch(101)
            },
            r(1).into()
        )),
        "ok"
    );
    // Pruning everything but the maxima.
    db.prune(0, 32).expect("prune");
    let export = db
        .export_interchange(Some(&[pk(1)]), ExportFormat::Complete)
        .expect("export");
    let v: serde_json::Value = serde_json::from_slice(&export).expect("json");
    let atts = v["data"][0]["signed_attestations"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    // Only the highest record stays ((99, 100) goes too: its source is not above the
    // kept one's, so the source watermark does not fall).
    assert_eq!(atts.len(), 1);
    assert_eq!(atts[0]["target_epoch"], "101");
    assert_eq!(atts[0]["source_epoch"], "99");
    assert_eq!(
        v["data"][0]["signed_blocks"].as_array().map(|a| a.len()),
        Some(1)
    );
    assert_eq!(
        reason(db.check_and_record_blocking(
            GVR.into(),
            pk(2).into(),
            Subject::Attestation {
                source: Epoch(3),
                target: Epoch(4)
            },
            r(1).into()
        )),
        "ok"
    );
}

fn interchange(gvr: [u8; 32], body: &str) -> Vec<u8> {
    format!(
        r#"{{"metadata":{{"interchange_format_version":"5","genesis_validators_root":"0x{}"}},"data":[{body}]}}"#,
        hex::encode(gvr)
    )
    .into_bytes()
}

#[test]
fn import_is_atomic_and_checks_the_genesis_root() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = open(&dir);
    let good = format!(
        r#"{{"pubkey":"0x{}","signed_blocks":[{{"slot":"10"}}],"signed_attestations":[{{"source_epoch":"3","target_epoch":"4"}}]}}"#,
        hex::encode(pk(1))
    );
    let bad = format!(
        r#"{{"pubkey":"0x{}","signed_blocks":[{{"slot":"x"}}],"signed_attestations":[]}}"#,
        hex::encode(pk(2))
    );
    let err = db
        .import_interchange(&interchange(GVR, &format!("{good},{bad}")))
        .expect_err("bad file");
    assert!(
        err.to_string()
            .contains("data[1].signed_blocks[0].slot: not a decimal u64"),
        "{err}"
    );
    // Nothing changed: not even the binding.
    assert_eq!(db.genesis_validators_root().expect("gvr"), None);
    assert_eq!(
        reason(db.check_and_record_blocking(
            GenesisValidatorsRoot([9; 32]),
            pk(1).into(),
            Subject::Block { slot: Slot(5) },
            r(1).into()
        )),
        "ok"
    );
    let err = db
        .import_interchange(&interchange(GVR, &good))
        .expect_err("wrong root");
    assert!(matches!(
        err,
        ImportError::WrongGenesisValidatorsRoot { .. }
    ));

    let dir = tempfile::tempdir().expect("tempdir");
    let db = open(&dir);
    let s = db
        .import_interchange(&interchange(GVR, &format!("{good},{good}")))
        .expect("import");
    assert_eq!(s.validators, 1);
    assert_eq!(s.new_validators, 1);
    assert_eq!(s.blocks_in_file, 2);
    assert_eq!(db.genesis_validators_root().expect("gvr"), Some(GVR));
    assert_eq!(
        reason(db.check_and_record_blocking(
            GVR.into(),
            pk(1).into(),
            Subject::Block { slot: Slot(10) },
            r(1).into()
        )),
        "double_block_proposal"
    );
    assert_eq!(
        reason(db.check_and_record_blocking(
            GVR.into(),
            pk(1).into(),
            Subject::Block { slot: Slot(11) },
            r(1).into()
        )),
        "ok"
    );
    assert_eq!(
        reason(db.check_and_record_blocking(
            GVR.into(),
            pk(1).into(),
            Subject::Attestation {
                source: Epoch(3),
                target: Epoch(5)
            },
            r(1).into()
        )),
        "ok"
    );
    assert_eq!(
        reason(db.check_and_record_blocking(
            GVR.into(),
            pk(1).into(),
            Subject::Attestation {
                source: Epoch(2),
                target: Epoch(3)
            },
            r(1).into()
        )),
        "attestation_source_below_watermark"
    );
}

#[test]
fn export_minimal_and_complete_round_trip() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = open(&dir);
    for v in 0..3 {
        for e in 1..5u64 {
            db.check_and_record_blocking(
                GVR.into(),
                pk(v).into(),
                Subject::Attestation {
                    source: Epoch(e - 1),
                    target: Epoch(e),
                },
                r(e as u32).into(),
            )
            .expect("att");
            db.check_and_record_blocking(
                GVR.into(),
                pk(v).into(),
                Subject::Block { slot: Slot(e) },
                r(e as u32).into(),
            )
            .expect("block");
        }
    }
    let complete = db
        .export_interchange(None, ExportFormat::Complete)
        .expect("export");
    let minimal = db
        .export_interchange(Some(&[pk(1), pk(1), pk(77)]), ExportFormat::Minimal)
        .expect("export");
    let v: serde_json::Value = serde_json::from_slice(&minimal).expect("json");
    assert_eq!(v["data"].as_array().map(|a| a.len()), Some(1));
    assert_eq!(v["data"][0]["signed_blocks"][0]["slot"], "4");
    assert_eq!(v["data"][0]["signed_attestations"][0]["target_epoch"], "4");
    assert_eq!(
        v["data"][0]["signed_attestations"][0]["signing_root"],
        format!("0x{}", hex::encode(r(4)))
    );
    let c: serde_json::Value = serde_json::from_slice(&complete).expect("json");
    assert_eq!(c["data"].as_array().map(|a| a.len()), Some(3));
    assert_eq!(
        c["data"][2]["signed_attestations"]
            .as_array()
            .map(|a| a.len()),
        Some(4)
    );
    let dir2 = tempfile::tempdir().expect("tempdir");
    let db2 =
        SlashingDb::open(&dir2.path().join("x.sqlite"), OpenOptions::default()).expect("open");
    db2.import_interchange(&complete).expect("import complete");
    db2.import_interchange(&minimal).expect("import minimal");
    assert_eq!(
        reason(db2.check_and_record_blocking(
            GVR.into(),
            pk(2).into(),
            Subject::Block { slot: Slot(4) },
            r(4).into()
        )),
        "double_block_proposal"
    );
}

#[test]
fn db_failure_fails_closed_and_reports_down() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = open(&dir);
    db.check_and_record_blocking(
        GVR.into(),
        pk(0).into(),
        Subject::Block { slot: Slot(1) },
        r(1).into(),
    )
    .expect("sign");
    // Freeze the file size: the next new pages cannot be allocated (SQLITE_FULL).
    db.admin(|w| {
        w.backend
            .execute_raw("PRAGMA max_page_count = 1")
            .expect("pragma");
    })
    .expect("admin");
    let mut failed = 0;
    for v in 1..200 {
        match db.check_and_record_blocking(
            GVR.into(),
            pk(v).into(),
            Subject::Block { slot: Slot(1) },
            r(1).into(),
        ) {
            Ok(_) => {}
            Err(SignCheckError::Db(_)) => {
                failed += 1;
                break;
            }
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert_eq!(
        failed, 1,
        "inserting 200 validators must overflow the page limit"
    );
    assert!(
        matches!(db.health(), Health::Down { .. }),
        "{:?}",
        db.health()
    );
    db.admin(|w| {
        w.backend
            .execute_raw("PRAGMA max_page_count = 1073741823")
            .expect("pragma");
    })
    .expect("admin");
    // Works again, and the cache was reloaded: the rolled-back validators do not linger.
    for v in 1..200 {
        db.check_and_record_blocking(
            GVR.into(),
            pk(v).into(),
            Subject::Block { slot: Slot(1) },
            r(1).into(),
        )
        .expect("sign after recovery");
    }
    assert_eq!(db.health(), Health::Up);
}

struct CountingObserver {
    commits: std::sync::atomic::AtomicUsize,
    committed_ops: std::sync::atomic::AtomicUsize,
    refusals: std::sync::atomic::AtomicUsize,
}

impl DbObserver for CountingObserver {
    fn check_latency(&self, _d: Duration) {}
    fn commit(&self, batch_size: usize, _t: Duration) {
        use std::sync::atomic::Ordering::Relaxed;
        self.commits.fetch_add(1, Relaxed);
        self.committed_ops.fetch_add(batch_size, Relaxed);
    }
    fn refusal(&self, _reason: &'static str) {
        self.refusals
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Thousands of racing conflicting pairs: exactly one of each pair wins, and the commits
/// were grouped.
#[test]
fn racing_conflicting_pairs_exactly_one_wins() {
    use std::sync::atomic::Ordering::Relaxed;
    let dir = tempfile::tempdir().expect("tempdir");
    let obs = Arc::new(CountingObserver {
        commits: Default::default(),
        committed_ops: Default::default(),
        refusals: Default::default(),
    });
    let db = SlashingDb::open(
        &dir.path().join("db.sqlite"),
        OpenOptions {
            observer: Some(obs.clone()),
            ..OpenOptions::default()
        },
    )
    .expect("open");
    const PAIRS: u32 = 3000;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("runtime");
    let results = rt.block_on(async {
        let mut set = tokio::task::JoinSet::new();
        for i in 0..PAIRS {
            for side in 0..2u32 {
                let db = db.clone();
                set.spawn(async move {
                    let res = if i % 2 == 0 {
                        db.check_and_record(
                            GVR.into(),
                            pk(i).into(),
                            Subject::Block { slot: Slot(100) },
                            r(side).into(),
                        )
                        .await
                    } else {
                        db.check_and_record(
                            GVR.into(),
                            pk(i).into(),
                            Subject::Attestation {
                                source: Epoch(9),
                                target: Epoch(10),
                            },
                            r(side).into(),
                        )
                        .await
                    };
                    (i, res)
                });
            }
        }
        let mut wins = vec![0u32; PAIRS as usize];
        while let Some(j) = set.join_next().await {
            let (i, res) = j.expect("task");
            match res {
                Ok(_) => wins[i as usize] += 1,
                Err(SignCheckError::Refused(r)) => assert!(
                    matches!(r.reason(), "double_block_proposal" | "double_vote"),
                    "{r}"
                ),
                Err(e) => panic!("{e}"),
            }
        }
        wins
    });
    for (i, w) in results.iter().enumerate() {
        assert_eq!(*w, 1, "pair {i}: {w} winners");
    }
    assert_eq!(obs.refusals.load(Relaxed), PAIRS as usize);
    assert_eq!(obs.committed_ops.load(Relaxed), 2 * PAIRS as usize);
    assert!(
        obs.commits.load(Relaxed) < PAIRS as usize,
        "group commit should batch: {} commits",
        obs.commits.load(Relaxed)
    );
    // And the winners are durable.
    drop(db);
    let db = open(&dir);
    for i in 0..PAIRS {
        let res = if i % 2 == 0 {
            db.check_and_record_blocking(
                GVR.into(),
                pk(i).into(),
                Subject::Block { slot: Slot(100) },
                SigningRoot([0; 32]),
            )
        } else {
            db.check_and_record_blocking(
                GVR.into(),
                pk(i).into(),
                Subject::Attestation {
                    source: Epoch(9),
                    target: Epoch(10),
                },
                SigningRoot([0; 32]),
            )
        };
        assert!(matches!(res, Err(SignCheckError::Refused(_))), "pair {i}");
    }
}

#[test]
fn max_batch_one_still_works_and_queue_full_fails_closed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = SlashingDb::open(
        &dir.path().join("db.sqlite"),
        OpenOptions {
            max_batch: 1,
            queue_capacity: 1,
            ..OpenOptions::default()
        },
    )
    .expect("open");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt");
    let (ok, full) = rt.block_on(async {
        // Occupy the writer with an admin job so the queue fills up.
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let gate = db.clone();
        let blocker = std::thread::spawn(move || {
            gate.admin(move |_w| {
                let _ = rx.recv();
            })
        });
        std::thread::sleep(Duration::from_millis(100));
        let mut futs = Vec::new();
        for i in 0..5 {
            let db = db.clone();
            futs.push(tokio::spawn(async move {
                db.check_and_record(
                    GVR.into(),
                    pk(i).into(),
                    Subject::Block { slot: Slot(1) },
                    r(1).into(),
                )
                .await
            }));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        let _ = tx.send(());
        let _ = blocker.join();
        let (mut ok, mut full) = (0, 0);
        for f in futs {
            match f.await.expect("join") {
                Ok(_) => ok += 1,
                Err(SignCheckError::Db(DbError::QueueFull { .. })) => full += 1,
                Err(e) => panic!("{e}"),
            }
        }
        (ok, full)
    });
    assert_eq!(ok, 1, "queue of 1 holds one request");
    assert_eq!(full, 4);
}

#[test]
fn is_registered_tracks_known_validators() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = open(&dir);
    assert!(!db.is_registered(pk(1)).expect("query"));
    db.check_and_record_blocking(
        GVR.into(),
        pk(1).into(),
        Subject::Block { slot: Slot(5) },
        r(1).into(),
    )
    .expect("sign");
    assert!(db.is_registered(pk(1)).expect("query"));
    assert!(!db.is_registered(pk(2)).expect("query"));
}

/// The keymanager's delete relies on this: a check-and-record request submitted before an
/// admin call (here an export) is committed before the admin call runs, even when its
/// requester has gone away (dropped future) before the answer.
#[test]
fn abandoned_request_is_recorded_before_a_later_export() {
    use std::future::Future;
    use std::task::{Context, Poll, Waker};

    let dir = tempfile::tempdir().expect("tempdir");
    let db = open(&dir);
    let mut fut = Box::pin(db.check_and_record(
        GVR.into(),
        pk(3).into(),
        Subject::Block { slot: Slot(77) },
        r(3).into(),
    ));
    // One poll submits the request to the writer queue; then the requester vanishes.
    let polled = fut.as_mut().poll(&mut Context::from_waker(Waker::noop()));
    assert!(matches!(polled, Poll::Pending | Poll::Ready(Ok(_))));
    drop(fut);
    let export = db
        .export_interchange(Some(&[pk(3)]), ExportFormat::Complete)
        .expect("export");
    let v: serde_json::Value = serde_json::from_slice(&export).expect("json");
    assert_eq!(v["data"][0]["signed_blocks"][0]["slot"], "77");
}

/// A pacer with a fixed answer, counting how often it was asked.
struct FixedPacer {
    delay: Duration,
    asked: std::sync::atomic::AtomicUsize,
}

impl CommitPacer for FixedPacer {
    fn commit_delay(&self) -> Duration {
        self.asked
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.delay
    }
}

fn open_paced(
    dir: &tempfile::TempDir,
    delay: Duration,
) -> (SlashingDb, Arc<CountingObserver>, Arc<FixedPacer>) {
    let obs = Arc::new(CountingObserver {
        commits: Default::default(),
        committed_ops: Default::default(),
        refusals: Default::default(),
    });
    let pacer = Arc::new(FixedPacer {
        delay,
        asked: Default::default(),
    });
    let db = SlashingDb::open(
        &dir.path().join("db.sqlite"),
        OpenOptions {
            observer: Some(obs.clone()),
            pacer: Some(pacer.clone()),
            ..OpenOptions::default()
        },
    )
    .expect("open");
    (db, obs, pacer)
}

/// Requests that arrive one after another while the pacer holds the batch open share one
/// commit, and each is still answered only after that commit (its record is durable: a
/// fresh handle refuses the conflicting request).
#[test]
fn paced_writer_groups_requests_arriving_apart() {
    use std::sync::atomic::Ordering::Relaxed;
    let dir = tempfile::tempdir().expect("tempdir");
    let (db, obs, pacer) = open_paced(&dir, Duration::from_millis(500));
    let threads: Vec<_> = (0..4u32)
        .map(|i| {
            let db = db.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(20 * u64::from(i)));
                db.check_and_record_blocking(
                    GVR.into(),
                    pk(i).into(),
                    Subject::Attestation {
                        source: Epoch(1),
                        target: Epoch(2),
                    },
                    r(i).into(),
                )
            })
        })
        .collect();
    for t in threads {
        t.join().expect("thread").expect("recorded");
    }
    assert_eq!(
        obs.commits.load(Relaxed),
        1,
        "one commit for the held batch"
    );
    assert_eq!(obs.committed_ops.load(Relaxed), 4);
    assert_eq!(pacer.asked.load(Relaxed), 1, "asked once per batch");
    drop(db);
    let db = open(&dir);
    for i in 0..4u32 {
        assert_eq!(
            reason(db.check_and_record_blocking(
                GVR.into(),
                pk(i).into(),
                Subject::Attestation {
                    source: Epoch(1),
                    target: Epoch(2)
                },
                r(99).into()
            )),
            "double_vote"
        );
    }
}

/// A batch is held no longer than the pacer allows: with a zero delay every lone request
/// commits on its own, and a conflicting pair inside one held batch still has exactly one
/// winner.
#[test]
fn paced_writer_respects_zero_delay_and_batch_conflicts() {
    use std::sync::atomic::Ordering::Relaxed;
    let dir = tempfile::tempdir().expect("tempdir");
    let (db, obs, _) = open_paced(&dir, Duration::ZERO);
    for i in 0..3u32 {
        db.check_and_record_blocking(
            GVR.into(),
            pk(i).into(),
            Subject::Block { slot: Slot(10) },
            r(i).into(),
        )
        .expect("recorded");
    }
    assert_eq!(obs.commits.load(Relaxed), 3);
    drop(db);

    let dir = tempfile::tempdir().expect("tempdir");
    let (db, obs, _) = open_paced(&dir, Duration::from_millis(300));
    let racers: Vec<_> = (0..2u32)
        .map(|side| {
            let db = db.clone();
            std::thread::spawn(move || {
                db.check_and_record_blocking(
                    GVR.into(),
                    pk(1).into(),
                    Subject::Block { slot: Slot(10) },
                    r(side).into(),
                )
            })
        })
        .collect();
    let results: Vec<_> = racers
        .into_iter()
        .map(|t| reason(t.join().expect("thread")))
        .collect();
    assert_eq!(
        results.iter().filter(|r| **r == "ok").count(),
        1,
        "{results:?}"
    );
    assert!(results.contains(&"double_block_proposal"), "{results:?}");
    assert_eq!(obs.commits.load(Relaxed), 1);
}

/// An admin job (here an export) that arrives while a batch is held runs after the batch
/// has committed, and sees its records.
#[test]
fn admin_job_runs_after_the_held_batch_commits() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (db, obs, _) = open_paced(&dir, Duration::from_millis(300));
    let signer = {
        let db = db.clone();
        std::thread::spawn(move || {
            db.check_and_record_blocking(
                GVR.into(),
                pk(5).into(),
                Subject::Block { slot: Slot(42) },
                r(5).into(),
            )
        })
    };
    std::thread::sleep(Duration::from_millis(50));
    let export = db
        .export_interchange(Some(&[pk(5)]), ExportFormat::Complete)
        .expect("export");
    signer.join().expect("thread").expect("recorded");
    assert_eq!(
        obs.commits.load(std::sync::atomic::Ordering::Relaxed),
        1,
        "the block committed as one batch before the export"
    );
    let v: serde_json::Value = serde_json::from_slice(&export).expect("json");
    assert_eq!(v["data"][0]["signed_blocks"][0]["slot"], "42");
}

#[test]
fn a_schema_newer_than_this_build_refuses_to_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("db.sqlite");
    drop(open(&dir));
    {
        let conn = rusqlite::Connection::open(&path).expect("raw open");
        conn.execute_batch("PRAGMA user_version = 99")
            .expect("bump version");
    }
    let err = SlashingDb::open(&path, OpenOptions::default()).expect_err("must refuse");
    assert!(
        matches!(err, DbError::SchemaTooNew { found: 99, .. }),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(
        message.contains("schema version 99") && message.contains("supports up to"),
        "{message}"
    );
}
