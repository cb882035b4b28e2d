//! The slashing database on a real, throw-away PostgreSQL (see `interop_tests::postgres`):
//! racing conflicting pairs from two handles (as two keyguard instances would), the
//! durability check at connect, the newer-schema refusal, reconnection after a restart
//! with health DOWN meanwhile, and the password never appearing in errors.

use std::sync::Arc;
use std::time::{Duration, Instant};

use interop_tests::postgres::{require_postgres, TestPostgres};
use slashing_db::{
    DatabaseLocation, DbError, Epoch, Health, OpenOptions, SignCheckError, SigningRoot, SlashingDb,
    Slot, Subject,
};

const GVR: [u8; 32] = [5u8; 32];

fn pk(i: u32) -> [u8; 48] {
    let mut p = [0u8; 48];
    p[..4].copy_from_slice(&i.to_be_bytes());
    p[47] = 0x11;
    p
}

fn root(side: u32) -> SigningRoot {
    let mut r = [0u8; 32];
    r[..4].copy_from_slice(&side.to_be_bytes());
    r[31] = 0x42;
    SigningRoot(r)
}

fn open(url: &str, options: OpenOptions) -> Result<SlashingDb, DbError> {
    SlashingDb::open_location(&DatabaseLocation::parse(url)?, options)
}

fn fresh(pg: &TestPostgres) -> String {
    pg.create_database().expect("create database")
}

/// Two handles on one database (two writers, two connections, like two instances); for
/// each of N validators one block and one attestation pair, each side of a pair sent to a
/// different handle at the same time: exactly one side of every pair wins.
#[test]
fn conflicting_pairs_across_two_writers_exactly_one_wins() {
    let Some(pg) = require_postgres("conflicting_pairs_across_two_writers_exactly_one_wins") else {
        return;
    };
    let url = fresh(&pg);
    let a = open(&url, OpenOptions::default()).expect("open a");
    let b = open(&url, OpenOptions::default()).expect("open b");
    const PAIRS: u32 = 1500;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("rt");
    let wins = rt.block_on(async {
        let mut set = tokio::task::JoinSet::new();
        for i in 0..PAIRS {
            for (side, db) in [(1u32, a.clone()), (2u32, b.clone())] {
                set.spawn(async move {
                    let block = db
                        .check_and_record(
                            GVR.into(),
                            pk(i).into(),
                            Subject::Block { slot: Slot(100) },
                            root(side),
                        )
                        .await;
                    let att = db
                        .check_and_record(
                            GVR.into(),
                            pk(i).into(),
                            Subject::Attestation {
                                source: Epoch(9),
                                target: Epoch(10),
                            },
                            root(side),
                        )
                        .await;
                    (i, block, att)
                });
            }
        }
        let mut wins = vec![(0u32, 0u32); PAIRS as usize];
        while let Some(r) = set.join_next().await {
            let (i, block, att) = r.expect("join");
            for (slot, result) in [(0, block), (1, att)] {
                match result {
                    Ok(_) => {
                        let w = &mut wins[i as usize];
                        if slot == 0 {
                            w.0 += 1
                        } else {
                            w.1 += 1
                        }
                    }
                    Err(SignCheckError::Refused(_)) => {}
                    Err(SignCheckError::Db(e)) => panic!("database error: {e}"),
                }
            }
        }
        wins
    });
    for (i, (blocks, atts)) in wins.iter().enumerate() {
        assert_eq!(
            *blocks, 1,
            "validator {i}: {blocks} block signatures allowed"
        );
        assert_eq!(
            *atts, 1,
            "validator {i}: {atts} attestation signatures allowed"
        );
    }
    // The records agree: one block and one attestation per validator, seen by both.
    let export = a
        .export_interchange(None, slashing_db::ExportFormat::Complete)
        .expect("export");
    let v: serde_json::Value = serde_json::from_slice(&export).expect("json");
    let data = v["data"].as_array().expect("data");
    assert_eq!(data.len(), PAIRS as usize);
    for d in data {
        assert_eq!(d["signed_blocks"].as_array().expect("blocks").len(), 1);
        assert_eq!(d["signed_attestations"].as_array().expect("atts").len(), 1);
    }
}

#[test]
fn synchronous_commit_off_is_refused_unless_accepted() {
    let Some(pg) = require_postgres("synchronous_commit_off_is_refused_unless_accepted") else {
        return;
    };
    let url = fresh(&pg);
    let db_name = url.rsplit('/').next().expect("db name").to_owned();
    pg.psql(
        "postgres",
        &format!("ALTER DATABASE {db_name} SET synchronous_commit = off"),
    )
    .expect("alter");
    let err = open(&url, OpenOptions::default()).expect_err("must refuse");
    assert!(matches!(err, DbError::AsyncCommit { .. }), "{err:?}");
    assert!(
        err.to_string().contains("synchronous_commit is off"),
        "{err}"
    );
    let accepted = OpenOptions {
        allow_async_commit: true,
        ..OpenOptions::default()
    };
    let db = open(&url, accepted).expect("accepted by the operator");
    db.check_and_record_blocking(
        GVR.into(),
        pk(1).into(),
        Subject::Block { slot: Slot(1) },
        root(1),
    )
    .expect("sign");
}

#[test]
fn a_newer_schema_refuses_to_open() {
    let Some(pg) = require_postgres("a_newer_schema_refuses_to_open") else {
        return;
    };
    let url = fresh(&pg);
    drop(open(&url, OpenOptions::default()).expect("create schema"));
    let db_name = url.rsplit('/').next().expect("db name").to_owned();
    pg.psql(&db_name, "UPDATE keyguard_schema_version SET version = 99")
        .expect("bump");
    let err = open(&url, OpenOptions::default()).expect_err("must refuse");
    assert!(
        matches!(err, DbError::SchemaTooNew { found: 99, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("schema version 99"), "{err}");
}

#[test]
fn the_password_never_appears_in_errors() {
    let Some(pg) = require_postgres("the_password_never_appears_in_errors") else {
        return;
    };
    pg.psql("postgres", "CREATE ROLE kg LOGIN PASSWORD 'right-horse'")
        .expect("role");
    // Trust auth accepts any password for the superuser; point at a closed port instead
    // so the connection fails, and check the message.
    let url = format!(
        "postgresql://kg:hunter2-secret@127.0.0.1:{}/postgres",
        interop_tests::keyguard_process::free_port()
    );
    let err = open(&url, OpenOptions::default()).expect_err("nothing listens there");
    let text = format!("{err} {err:?}");
    assert!(!text.contains("hunter2-secret"), "{text}");
    assert!(text.contains("kg:***@127.0.0.1"), "{text}");
}

/// PostgreSQL stopped (crash) while a handle is open: requests are refused, health goes
/// DOWN; after a restart the handle reconnects by itself and signs again, and what was
/// acknowledged before is still there.
#[test]
fn reconnects_after_a_restart_and_reports_down_meanwhile() {
    let Some(pg) = require_postgres("reconnects_after_a_restart_and_reports_down_meanwhile") else {
        return;
    };
    let url = fresh(&pg);
    let db = Arc::new(open(&url, OpenOptions::default()).expect("open"));
    let sign = |slot: u64| {
        db.check_and_record_blocking(
            GVR.into(),
            pk(7).into(),
            Subject::Block { slot: Slot(slot) },
            root(slot as u32),
        )
    };
    sign(10).expect("before the crash");
    pg.stop(true).expect("crash");
    assert!(
        matches!(sign(11), Err(SignCheckError::Db(_))),
        "no signature while the database is down"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while db.health() == Health::Up {
        assert!(Instant::now() < deadline, "health never went DOWN");
        std::thread::sleep(Duration::from_millis(100));
    }
    pg.start_server().expect("restart");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match sign(12) {
            Ok(_) => break,
            Err(e) => {
                assert!(Instant::now() < deadline, "never reconnected: {e}");
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }
    assert_eq!(db.health(), Health::Up);
    // The record acknowledged before the crash survived: slot 10 with another root is a
    // double proposal.
    let again = db.check_and_record_blocking(
        GVR.into(),
        pk(7).into(),
        Subject::Block { slot: Slot(10) },
        root(999),
    );
    assert!(
        matches!(again, Err(SignCheckError::Refused(_))),
        "{again:?}"
    );
}

/// keyguard opens the database from its async main thread: the synchronous PostgreSQL
/// client must not try to block on its own runtime there (it used to panic with "Cannot
/// start a runtime from within a runtime").
#[tokio::test(flavor = "current_thread")]
async fn opens_from_inside_an_async_runtime() {
    let Some(pg) = require_postgres("opens_from_inside_an_async_runtime") else {
        return;
    };
    let url = fresh(&pg);
    let db = open(&url, OpenOptions::default()).expect("open inside a runtime");
    let approval = db
        .check_and_record(
            GVR.into(),
            pk(1).into(),
            Subject::Block { slot: Slot(3) },
            root(1),
        )
        .await;
    assert!(approval.is_ok(), "{approval:?}");
    drop(db);
}

/// Instances binding a fresh database's genesis validators root at the same moment (at
/// start-up, or on their first requests): every one binding the same root succeeds, none
/// reports the database DOWN; of two binding different roots exactly one wins and the
/// other is told of the mismatch.
#[test]
fn racing_genesis_root_bindings_agree_or_exactly_one_wins() {
    let Some(pg) = require_postgres("racing_genesis_root_bindings_agree_or_exactly_one_wins")
    else {
        return;
    };
    const HANDLES: usize = 4;
    for round in 0..8 {
        let url = fresh(&pg);
        let dbs: Vec<SlashingDb> = (0..HANDLES)
            .map(|_| open(&url, OpenOptions::default()).expect("open"))
            .collect();
        // Even rounds: all bind GVR; odd rounds: half bind GVR, half another root.
        let roots: Vec<[u8; 32]> = (0..HANDLES)
            .map(|i| {
                if round % 2 == 1 && i % 2 == 1 {
                    [6u8; 32]
                } else {
                    GVR
                }
            })
            .collect();
        let barrier = Arc::new(std::sync::Barrier::new(HANDLES));
        let results: Vec<Result<(), DbError>> = std::thread::scope(|s| {
            let joins: Vec<_> = dbs
                .iter()
                .zip(&roots)
                .map(|(db, root)| {
                    let barrier = Arc::clone(&barrier);
                    s.spawn(move || {
                        barrier.wait();
                        db.bind_genesis_validators_root(*root)
                    })
                })
                .collect();
            joins.into_iter().map(|j| j.join().expect("join")).collect()
        });
        let bound = dbs[0]
            .genesis_validators_root()
            .expect("read")
            .expect("bound");
        for ((result, root), db) in results.iter().zip(&roots).zip(&dbs) {
            if *root == bound {
                assert!(result.is_ok(), "round {round}: {result:?}");
            } else {
                assert!(
                    matches!(result, Err(DbError::GenesisValidatorsRootMismatch { .. })),
                    "round {round}: {result:?}"
                );
            }
            assert!(
                matches!(db.health(), Health::Up),
                "round {round}: a lost race reported the database DOWN: {:?}",
                db.health()
            );
        }
    }
}
