//! The slashing database's property tests against the reference model of the EIP-3076
//! rules (`slashing-db/tests/model_rules`, also run on SQLite by
//! `slashing-db/tests/model.rs`), here on a throw-away PostgreSQL: every case gets a fresh
//! database of one cluster.

#[path = "../../slashing-db/tests/model_rules/mod.rs"]
mod model_rules;

use model_rules::{
    check_concurrent, check_concurrent_among, check_sequential, check_sequential_among, op, Op,
};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use slashing_db::{DatabaseLocation, OpenOptions, SlashingDb};

use interop_tests::postgres::{require_postgres, TestPostgres};

/// Fewer cases than on SQLite: each one creates a database.
const CASES: u32 = 24;

fn fresh(pg: &TestPostgres) -> Result<SlashingDb, TestCaseError> {
    let url = pg
        .create_database()
        .map_err(|e| TestCaseError::fail(format!("create database: {e:#}")))?;
    let location = DatabaseLocation::parse(&url).map_err(|e| TestCaseError::fail(e.to_string()))?;
    SlashingDb::open_location(&location, OpenOptions::default())
        .map_err(|e| TestCaseError::fail(e.to_string()))
}

fn run(test: &str, max_ops: usize, check: fn(&SlashingDb, &[Op]) -> Result<(), TestCaseError>) {
    let Some(pg) = require_postgres(test) else {
        return;
    };
    let mut runner = TestRunner::new(Config {
        cases: CASES,
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&prop::collection::vec(op(), 1..max_ops), |ops| {
        check(&fresh(&pg)?, &ops)
    });
    if let Err(e) = result {
        panic!("{test}: {e}\nserver log:\n{}", pg.log());
    }
}

#[test]
fn sequential_answers_match_the_model_on_postgres() {
    run(
        "sequential_answers_match_the_model_on_postgres",
        50,
        check_sequential,
    );
}

#[test]
fn concurrent_answers_are_safe_on_postgres() {
    run(
        "concurrent_answers_are_safe_on_postgres",
        80,
        check_concurrent,
    );
}

/// Other validators' records beside the ones under test never decide their answers.
#[test]
fn sequential_answers_match_the_model_among_peers_on_postgres() {
    run(
        "sequential_answers_match_the_model_among_peers_on_postgres",
        50,
        |db, ops| check_sequential_among(db, 8, ops),
    );
}

/// The concurrent property beside other validators' records.
#[test]
fn concurrent_answers_are_safe_among_peers_on_postgres() {
    run(
        "concurrent_answers_are_safe_among_peers_on_postgres",
        80,
        |db, ops| check_concurrent_among(db, 8, ops),
    );
}
