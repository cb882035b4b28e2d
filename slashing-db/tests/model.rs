//! Property tests on SQLite: the database against the reference model of the EIP-3076
//! rules in `model_rules` (shared with the PostgreSQL run in
//! `interop-tests/tests/slashing_model_postgres.rs`).
//!
//! * Sequential: every answer (allowed / refused) must equal the model's.
//! * Concurrent (async API, all requests in flight at once, so they are grouped into
//!   batches in an order we do not control): the recorded set must be free of slashable
//!   pairs, every accepted request must be recorded, and nothing refused may be recorded.

mod model_rules;

use model_rules::{
    check_concurrent, check_concurrent_among, check_sequential, check_sequential_among, op,
};
use proptest::prelude::*;
use slashing_db::{OpenOptions, SlashingDb};

fn open(dir: &tempfile::TempDir) -> SlashingDb {
    SlashingDb::open(&dir.path().join("p.sqlite"), OpenOptions::default()).expect("open")
}

/// With a recent attestation tier of `rows` per group: 2 moves a group's oldest record to
/// the per-validator tier whenever it has two, so histories straddle both tiers.
fn open_with_recent_tier(dir: &tempfile::TempDir, rows: usize) -> SlashingDb {
    let options = OpenOptions {
        sqlite_recent_rows_per_group: rows,
        ..OpenOptions::default()
    };
    SlashingDb::open(&dir.path().join("p.sqlite"), options).expect("open")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn sequential_answers_match_the_model(ops in prop::collection::vec(op(), 1..50)) {
        let dir = tempfile::tempdir().expect("tempdir");
        check_sequential(&open(&dir), &ops)?;
    }

    /// With 62 fillers registered first, the three validators get ids 63, 64 and 65:
    /// on SQLite the first shares attestation group 0 (ids 0 to 63, `GROUP_BITS` = 6)
    /// with the fillers' histories and the other two start group 1, so every query must
    /// pick its own validator's rows out of a group.
    #[test]
    fn sequential_answers_match_the_model_across_groups(ops in prop::collection::vec(op(), 1..50)) {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = open(&dir);
        check_sequential_among(&db, 62, &ops)?;
    }

    /// The concurrent property with the validators placed as in the test above.
    #[test]
    fn concurrent_answers_are_safe_across_groups(ops in prop::collection::vec(op(), 1..80)) {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = open(&dir);
        check_concurrent_among(&db, 62, &ops)?;
    }

    /// The answers do not depend on which tier a record is in.
    #[test]
    fn sequential_answers_match_the_model_across_tiers(
        ops in prop::collection::vec(op(), 1..50),
        rows in 2..6usize,
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = open_with_recent_tier(&dir, rows);
        check_sequential_among(&db, 62, &ops)?;
    }

    /// The concurrent property with records moving between tiers inside the batches.
    #[test]
    fn concurrent_answers_are_safe_across_tiers(
        ops in prop::collection::vec(op(), 1..80),
        rows in 2..6usize,
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = open_with_recent_tier(&dir, rows);
        check_concurrent_among(&db, 62, &ops)?;
    }

    /// Everything submitted at once through the async API (so batches are formed).
    #[test]
    fn concurrent_answers_are_safe(ops in prop::collection::vec(op(), 1..80)) {
        let dir = tempfile::tempdir().expect("tempdir");
        check_concurrent(&open(&dir), &ops)?;
    }
}
