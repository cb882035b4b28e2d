//! Property tests on SQLite: the database against the reference model of the EIP-3076
//! rules in `model_rules` (shared with the PostgreSQL run in
//! `interop-tests/tests/slashing_model_postgres.rs`).
//!
//! * Sequential: every answer (allowed / refused) must equal the model's.
//! * Concurrent (async API, all requests in flight at once, so they are grouped into
//!   batches in an order we do not control): the recorded set must be free of slashable
//!   pairs, every accepted request must be recorded, and nothing refused may be recorded.

mod model_rules;

use model_rules::{check_concurrent, check_sequential, op};
use proptest::prelude::*;
use slashing_db::{OpenOptions, SlashingDb};

fn open(dir: &tempfile::TempDir) -> SlashingDb {
    SlashingDb::open(&dir.path().join("p.sqlite"), OpenOptions::default()).expect("open")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn sequential_answers_match_the_model(ops in prop::collection::vec(op(), 1..50)) {
        let dir = tempfile::tempdir().expect("tempdir");
        check_sequential(&open(&dir), &ops)?;
    }

    /// Everything submitted at once through the async API (so batches are formed).
    #[test]
    fn concurrent_answers_are_safe(ops in prop::collection::vec(op(), 1..80)) {
        let dir = tempfile::tempdir().expect("tempdir");
        check_concurrent(&open(&dir), &ops)?;
    }
}
