//! The reference model of the EIP-3076 rules and the two properties checked against it,
//! shared by `slashing-db/tests/model.rs` (SQLite) and
//! `interop-tests/tests/slashing_model_postgres.rs` (a throw-away PostgreSQL): a tiny
//! in-memory model written straight from the rules, random operations over small
//! slot/epoch ranges (so conflicts are frequent), and
//!
//! * [`check_sequential`]: every answer (allowed / refused) equals the model's, and the
//!   database holds exactly the model's records;
//! * [`check_concurrent`]: everything submitted at once through the async API (grouped
//!   into batches in an order the test does not control): the records are free of
//!   slashable pairs, every accepted request is recorded, nothing refused is.

use std::collections::{HashMap, HashSet};

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use slashing_db::{Approval, Epoch, ExportFormat, SignCheckError, SlashingDb, Slot, Subject};

/// The genesis validators root every operation uses.
pub const GVR: [u8; 32] = [3u8; 32];

/// Validator `v`'s pubkey.
pub fn pk(v: u8) -> [u8; 48] {
    let mut p = [0u8; 48];
    p[0] = 0x80;
    p[1] = v;
    p
}

/// Validators from this number up are fillers (see [`register_fillers`]): they share
/// storage with the validators under test but are not part of the model.
pub const FILLER_BASE: u8 = 190;

/// Registers `count` filler validators before any operation, each with a history over the
/// same small epoch range as the operations, so that the validators under test get ids
/// after them (on SQLite: other attestation groups, and peers' rows inside their own).
fn register_fillers(db: &SlashingDb, count: u8) {
    for i in 0..count {
        for (source, target) in [(0, 2), (2, 3), (3, 6)] {
            let r = submit_blocking(
                db,
                Op::Att {
                    v: FILLER_BASE + i,
                    source,
                    target,
                    root: 1,
                },
            );
            assert!(answer(r), "filler {i} ({source}, {target})");
        }
    }
}

/// Root 0 is the null (all-zero) root.
pub fn root(i: u8) -> [u8; 32] {
    let mut r = [0u8; 32];
    r[31] = i;
    r
}

/// One sign request: a block or an attestation of validator `v`.
#[derive(Debug, Clone, Copy)]
pub enum Op {
    Block {
        v: u8,
        slot: u64,
        root: u8,
    },
    Att {
        v: u8,
        source: u64,
        target: u64,
        root: u8,
    },
}

/// A random operation over small ranges.
pub fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..3u8, 0..10u64, 0..3u8).prop_map(|(v, slot, root)| Op::Block { v, slot, root }),
        (0..3u8, 0..7u64, 0..7u64, 0..3u8).prop_map(|(v, source, target, root)| Op::Att {
            v,
            source,
            target,
            root
        }),
    ]
}

/// The reference model, written straight from the rules (no SQL, no cleverness).
#[derive(Default)]
pub struct Model {
    blocks: HashMap<u8, Vec<(u64, u8)>>,
    atts: HashMap<u8, Vec<(u64, u64, u8)>>,
}

impl Model {
    /// The model's answer to `op` (and its record when allowed).
    pub fn apply(&mut self, op: Op) -> bool {
        match op {
            Op::Block { v, slot, root } => {
                let bs = self.blocks.entry(v).or_default();
                if let Some(&(_, r)) = bs.iter().find(|b| b.0 == slot) {
                    return r != 0 && r == root;
                }
                if let Some(min) = bs.iter().map(|b| b.0).min() {
                    if slot <= min {
                        return false;
                    }
                }
                bs.push((slot, root));
                true
            }
            Op::Att {
                v,
                source,
                target,
                root,
            } => {
                let atts = self.atts.entry(v).or_default();
                if let Some(&(s, _, r)) = atts.iter().find(|a| a.1 == target) {
                    return r != 0 && r == root && s == source;
                }
                if source > target {
                    return false;
                }
                let surround = atts
                    .iter()
                    .any(|&(s, t, _)| (s < source && target < t) || (source < s && t < target));
                if surround {
                    return false;
                }
                if let Some(min_s) = atts.iter().map(|a| a.0).min() {
                    if source < min_s {
                        return false;
                    }
                }
                if let Some(min_t) = atts.iter().map(|a| a.1).min() {
                    if target <= min_t {
                        return false;
                    }
                }
                atts.push((source, target, root));
                true
            }
        }
    }
}

/// Allowed (true) or refused (false); a database error fails the test.
pub fn answer(r: Result<Approval, SignCheckError>) -> bool {
    match r {
        Ok(_) => true,
        Err(SignCheckError::Refused(_)) => false,
        Err(SignCheckError::Db(e)) => panic!("database error: {e}"),
    }
}

/// Blocks (validator, slot, root) and attestations (validator, source, target, root).
pub type Records = (HashSet<(u8, u64, u8)>, HashSet<(u8, u64, u64, u8)>);

/// Reads back every record of the database (complete export).
pub fn records(db: &SlashingDb) -> Records {
    let json = db
        .export_interchange(None, ExportFormat::Complete)
        .expect("export");
    let v: serde_json::Value = serde_json::from_slice(&json).expect("json");
    let (mut blocks, mut atts) = (HashSet::new(), HashSet::new());
    let num = |x: &serde_json::Value| x.as_str().and_then(|s| s.parse::<u64>().ok()).expect("num");
    let rt = |x: &serde_json::Value| {
        x.as_str()
            .map(|s| u8::from_str_radix(&s[s.len() - 2..], 16).expect("hex"))
            .unwrap_or(0)
    };
    for d in v["data"].as_array().expect("data") {
        let pk = d["pubkey"].as_str().expect("pubkey");
        let val = u8::from_str_radix(&pk[4..6], 16).expect("pk");
        if val >= FILLER_BASE {
            continue;
        }
        for b in d["signed_blocks"].as_array().expect("blocks") {
            blocks.insert((val, num(&b["slot"]), rt(&b["signing_root"])));
        }
        for a in d["signed_attestations"].as_array().expect("atts") {
            atts.insert((
                val,
                num(&a["source_epoch"]),
                num(&a["target_epoch"]),
                rt(&a["signing_root"]),
            ));
        }
    }
    (blocks, atts)
}

/// Submits `op` through the blocking API.
pub fn submit_blocking(db: &SlashingDb, op: Op) -> Result<Approval, SignCheckError> {
    match op {
        Op::Block { v, slot, root: r } => db.check_and_record_blocking(
            GVR.into(),
            pk(v).into(),
            Subject::Block { slot: Slot(slot) },
            root(r).into(),
        ),
        Op::Att {
            v,
            source,
            target,
            root: r,
        } => db.check_and_record_blocking(
            GVR.into(),
            pk(v).into(),
            Subject::Attestation {
                source: Epoch(source),
                target: Epoch(target),
            },
            root(r).into(),
        ),
    }
}

/// Submits `ops` one after the other: every answer must be the model's, and the database
/// must end up holding exactly the model's records.
pub fn check_sequential(db: &SlashingDb, ops: &[Op]) -> Result<(), TestCaseError> {
    let mut model = Model::default();
    for (i, op) in ops.iter().enumerate() {
        let expected = model.apply(*op);
        let got = answer(submit_blocking(db, *op));
        prop_assert_eq!(got, expected, "op {} {:?}", i, op);
    }
    // The database holds exactly the model's records.
    let (blocks, atts) = records(db);
    let mb: HashSet<_> = model
        .blocks
        .iter()
        .flat_map(|(v, bs)| bs.iter().map(move |b| (*v, b.0, b.1)))
        .collect();
    let ma: HashSet<_> = model
        .atts
        .iter()
        .flat_map(|(v, a)| a.iter().map(move |a| (*v, a.0, a.1, a.2)))
        .collect();
    prop_assert_eq!(blocks, mb);
    prop_assert_eq!(atts, ma);
    Ok(())
}

/// Submits `ops` all at once through the async API (so batches are formed): the records
/// must be mutually safe, every accepted request recorded and nothing refused recorded.
pub fn check_concurrent(db: &SlashingDb, ops: &[Op]) -> Result<(), TestCaseError> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("rt");
    let answers: Vec<bool> = rt.block_on(async {
        let handles: Vec<_> = ops
            .iter()
            .map(|op| {
                let db = db.clone();
                let op = *op;
                tokio::spawn(async move {
                    match op {
                        Op::Block { v, slot, root: r } => {
                            db.check_and_record(
                                GVR.into(),
                                pk(v).into(),
                                Subject::Block { slot: Slot(slot) },
                                root(r).into(),
                            )
                            .await
                        }
                        Op::Att {
                            v,
                            source,
                            target,
                            root: r,
                        } => {
                            db.check_and_record(
                                GVR.into(),
                                pk(v).into(),
                                Subject::Attestation {
                                    source: Epoch(source),
                                    target: Epoch(target),
                                },
                                root(r).into(),
                            )
                            .await
                        }
                    }
                })
            })
            .collect();
        let mut out = Vec::new();
        for h in handles {
            out.push(answer(h.await.expect("join")));
        }
        out
    });
    let (blocks, atts) = records(db);
    // Every accepted request is recorded (or is an exact repeat of a record).
    for (op, ok) in ops.iter().zip(&answers) {
        if !*ok {
            continue;
        }
        match *op {
            Op::Block { v, slot, root } => {
                prop_assert!(blocks.contains(&(v, slot, root)), "{:?}", op)
            }
            Op::Att {
                v,
                source,
                target,
                root,
            } => prop_assert!(atts.contains(&(v, source, target, root)), "{:?}", op),
        }
    }
    // Nothing is recorded that was not accepted.
    let accepted_block = |v: u8, s: u64, r: u8| {
        ops.iter().zip(&answers).any(|(op, ok)| {
            *ok && matches!(*op, Op::Block { v: v2, slot, root } if v2 == v && slot == s && root == r)
        })
    };
    let all_accepted = blocks.iter().all(|&(v, s, r)| accepted_block(v, s, r));
    prop_assert!(all_accepted, "a block was recorded that was not accepted");
    let accepted_att = |v: u8, s: u64, t: u64, r: u8| {
        ops.iter().zip(&answers).any(|(op, ok)| {
            *ok && matches!(*op, Op::Att { v: v2, source, target, root } if v2 == v && source == s && target == t && root == r)
        })
    };
    let all_accepted = atts.iter().all(|&(v, s, t, r)| accepted_att(v, s, t, r));
    prop_assert!(
        all_accepted,
        "an attestation was recorded that was not accepted"
    );
    // The records are mutually safe: no double proposal/vote, no surround.
    let bl: Vec<_> = blocks.iter().collect();
    for (i, a) in bl.iter().enumerate() {
        for b in &bl[i + 1..] {
            prop_assert!(
                !(a.0 == b.0 && a.1 == b.1),
                "double proposal {:?} {:?}",
                a,
                b
            );
        }
    }
    let at: Vec<_> = atts.iter().collect();
    for (i, a) in at.iter().enumerate() {
        prop_assert!(a.1 <= a.2);
        for b in &at[i + 1..] {
            if a.0 != b.0 {
                continue;
            }
            prop_assert!(a.2 != b.2, "double vote {:?} {:?}", a, b);
            let surround = (a.1 < b.1 && b.2 < a.2) || (b.1 < a.1 && a.2 < b.2);
            prop_assert!(!surround, "surround {:?} {:?}", a, b);
        }
    }
    Ok(())
}

/// [`check_sequential`] after `fillers` filler validators were registered.
pub fn check_sequential_among(
    db: &SlashingDb,
    fillers: u8,
    ops: &[Op],
) -> Result<(), TestCaseError> {
    register_fillers(db, fillers);
    check_sequential(db, ops)
}

/// [`check_concurrent`] after `fillers` filler validators were registered.
pub fn check_concurrent_among(
    db: &SlashingDb,
    fillers: u8,
    ops: &[Op],
) -> Result<(), TestCaseError> {
    register_fillers(db, fillers);
    check_concurrent(db, ops)
}
