//! `keyguard slashing migrate` and `keyguard slashing import-web3signer` end to end, with
//! the real binary and a throw-away PostgreSQL (see `interop_tests::postgres`; under
//! `CI=true` a missing PostgreSQL fails these tests).
//!
//! * SQLite -> PostgreSQL -> SQLite: history written by signing through the binary and by
//!   an interchange import (null signing roots, a validator with no records), plus a high
//!   watermark, more history added on PostgreSQL; every hop compared by complete exports
//!   and by the high watermark, the final copy protects (signing through the binary), a
//!   non-empty target is refused and no password is printed.
//! * A Web3Signer database (schema version 12, created from a transcription of its
//!   migrations, see [`WEB3SIGNER_SCHEMA`]) with this test's own data, read through a
//!   SELECT-only role: the complete export afterwards, slashable requests refused by the
//!   binary, a newer schema version refused, and no password in any output.

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use interop_tests::keyguard_process::{keyguard_command, KeyguardProcess};
use interop_tests::postgres::{require_postgres, TestPostgres};
use interop_tests::requests;

/// Interop key 0's pubkey (well known).
const PK0: &str = "0xa99a76ed7796f7be22d5b7e85deeb7c5677e88e511e0b337618f8c4eb61349b4bf2d153f649f7b53359fe8b94a38e44c";
/// A validator known only from an imported interchange, with records.
const PK_IMPORTED: &str = "0xb1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1";
/// A validator imported into the PostgreSQL copy only.
const PK_PG: &str = "0xd3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3";
/// A validator known only from an imported interchange, without any record.
const PK_EMPTY: &str = "0xc2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2";

fn run_ok(args: &[&str]) -> Output {
    let out = keyguard_command(args);
    assert!(
        out.status.success(),
        "keyguard {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn text(out: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `keyguard slashing ARGS` on the database `db` (SQLite path or URL).
fn slashing(db: &str, args: &[&str]) -> Output {
    let mut all = vec!["slashing"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--slashing-database", db]);
    keyguard_command(&all)
}

/// The complete export of `db`, as bytes.
fn export(db: &str, dir: &Path, name: &str) -> Vec<u8> {
    let file = dir.join(name);
    let out = slashing(db, &["export", file.to_str().unwrap()]);
    assert!(out.status.success(), "export of {db}: {}", text(&out));
    std::fs::read(&file).unwrap()
}

fn high_watermark(db: &str) -> String {
    let out = slashing(db, &["high-watermark", "show"]);
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A signer with interop key 0 on database `db`.
fn start(db: &str, data: &Path, log_dir: &Path) -> KeyguardProcess {
    let mut kg = KeyguardProcess::start(
        &[
            "--network",
            "config/networks/devnet-minimal.yaml",
            "--interop-keys",
            "1",
            "--data-dir",
            data.to_str().unwrap(),
            "--slashing-database",
            db,
        ],
        log_dir,
    )
    .unwrap();
    kg.wait_healthy(Duration::from_secs(30)).unwrap();
    kg
}

fn sign(kg: &KeyguardProcess, body: String) -> u16 {
    kg.sign_status(PK0, body).unwrap()
}

/// An interchange with a validator with records (roots absent: null) and one with none.
fn interchange() -> String {
    format!(
        r#"{{"metadata":{{"interchange_format_version":"5","genesis_validators_root":"{gvr}"}},
        "data":[
          {{"pubkey":"{PK_EMPTY}","signed_blocks":[],"signed_attestations":[]}},
          {{"pubkey":"{PK_IMPORTED}",
            "signed_blocks":[{{"slot":"70"}}],
            "signed_attestations":[{{"source_epoch":"3","target_epoch":"4"}}]}}]}}"#,
        gvr = requests::TEST_GVR
    )
}

#[test]
fn sqlite_to_postgres_and_back_keeps_everything() {
    let Some(pg) = require_postgres("sqlite_to_postgres_and_back_keeps_everything") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let first = tmp.path().join("first.sqlite");
    let first = first.to_str().unwrap();

    // History from an interchange import and from signing through the binary.
    let file = tmp.path().join("interchange.json");
    std::fs::write(&file, interchange()).unwrap();
    run_ok(&[
        "slashing",
        "import",
        file.to_str().unwrap(),
        "--slashing-database",
        first,
    ]);
    let kg = start(first, &data, tmp.path());
    for slot in [10, 11] {
        assert_eq!(sign(&kg, requests::block_header(slot, 1)), 200);
    }
    assert_eq!(sign(&kg, requests::attestation(1, 2, 1)), 200);
    assert_eq!(sign(&kg, requests::attestation(2, 3, 1)), 200);
    // Not while a signer holds the source.
    let busy = pg.create_database().unwrap();
    let out = slashing(first, &["migrate", "--to", &busy]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("in use by another process"),
        "{}",
        text(&out)
    );
    drop(kg);
    assert!(slashing(
        first,
        &["high-watermark", "set", "--slot", "1000", "--epoch", "100"]
    )
    .status
    .success());
    let source_export = export(first, tmp.path(), "first.json");
    let json: serde_json::Value = serde_json::from_slice(&source_export).unwrap();
    let data_entries = json["data"].as_array().unwrap();
    assert_eq!(data_entries.len(), 3, "{json}");
    assert!(
        data_entries.iter().any(|v| v["pubkey"] == PK_EMPTY
            && v["signed_blocks"].as_array().unwrap().is_empty()
            && v["signed_attestations"].as_array().unwrap().is_empty()),
        "the validator without records: {json}"
    );
    assert!(
        data_entries
            .iter()
            .any(|v| v["pubkey"] == PK_IMPORTED && v["signed_blocks"][0]["signing_root"].is_null()),
        "a null signing root: {json}"
    );

    // SQLite -> PostgreSQL, the target's password from a file (never shown).
    let url = pg.create_database().unwrap();
    let password_file = tmp.path().join("target-password");
    std::fs::write(&password_file, "target-secret-pw\n").unwrap();
    let out = run_ok(&[
        "slashing",
        "migrate",
        "--to",
        &url,
        "--to-password-file",
        password_file.to_str().unwrap(),
        "--slashing-database",
        first,
    ]);
    let said = text(&out);
    assert!(
        said.contains("3 validators, 3 blocks, 3 attestations"),
        "{said}"
    );
    assert!(said.contains("verified"), "{said}");
    assert!(!said.contains("target-secret-pw"), "{said}");
    assert_eq!(export(&url, tmp.path(), "pg.json"), source_export);
    assert_eq!(high_watermark(&url), high_watermark(first));
    assert!(
        high_watermark(&url).contains("1000"),
        "{}",
        high_watermark(&url)
    );

    // New history written on PostgreSQL (an interchange import through the binary: a
    // validator known only there) travels back too. (Signing through `keyguard run` on
    // PostgreSQL needs the pgha branch's fix for opening the database inside the runtime.)
    let more = tmp.path().join("more.json");
    std::fs::write(
        &more,
        format!(
            r#"{{"metadata":{{"interchange_format_version":"5","genesis_validators_root":"{gvr}"}},
            "data":[{{"pubkey":"{PK_PG}","signed_blocks":[{{"slot":"300"}}],
              "signed_attestations":[]}}]}}"#,
            gvr = requests::TEST_GVR
        ),
    )
    .unwrap();
    run_ok(&[
        "slashing",
        "import",
        more.to_str().unwrap(),
        "--slashing-database",
        &url,
    ]);
    let pg_export = export(&url, tmp.path(), "pg2.json");
    assert_ne!(pg_export, source_export, "a validator was added");

    // A target that already holds data is refused, and left as it was.
    let out = slashing(first, &["migrate", "--to", &url]);
    assert!(!out.status.success());
    assert!(text(&out).contains("is not empty"), "{}", text(&out));
    assert_eq!(export(&url, tmp.path(), "pg3.json"), pg_export);

    // PostgreSQL -> SQLite.
    let second = tmp.path().join("second.sqlite");
    let second = second.to_str().unwrap();
    run_ok(&[
        "slashing",
        "migrate",
        "--to",
        second,
        "--slashing-database",
        &url,
    ]);
    assert_eq!(export(second, tmp.path(), "second.json"), pg_export);
    assert_eq!(high_watermark(second), high_watermark(&url));
    // The SQLite copy protects what the first database and PostgreSQL did, and signs on.
    let kg = start(second, &data, tmp.path());
    assert_eq!(
        sign(&kg, requests::block_header(11, 2)),
        412,
        "double proposal"
    );
    assert_eq!(
        sign(&kg, requests::block_header(11, 1)),
        200,
        "same root repeat"
    );
    assert_eq!(
        sign(&kg, requests::attestation(2, 3, 2)),
        412,
        "double vote"
    );
    assert_eq!(
        sign(&kg, requests::block_header(1000, 1)),
        412,
        "high watermark"
    );
    assert_eq!(sign(&kg, requests::block_header(12, 1)), 200);
    drop(kg);

    // A URL's password is never shown, even when the connection fails.
    let closed = format!(
        "postgresql://postgres:url-secret-pw@127.0.0.1:{}/x",
        interop_tests::keyguard_process::free_port()
    );
    let out = slashing(second, &["migrate", "--to", &closed]);
    assert!(!out.status.success());
    assert!(!text(&out).contains("url-secret-pw"), "{}", text(&out));
    assert!(text(&out).contains("postgres:***@"), "{}", text(&out));
}

/// Web3Signer's slashing-protection schema as its PostgreSQL migrations V00001-V00012
/// leave it: this test's own transcription of the facts (tables, column names and types,
/// constraints, the version row), written from reading those migration files, not a
/// copy of them. Left out: the `upsert_validators` function (V00009) and the watermark
/// trigger functions (V00012), which only guard Web3Signer's own writes.
const WEB3SIGNER_SCHEMA: &str = "
    -- V00001: validators, signed blocks and attestations; V00002 added serial ids to the
    -- record tables (V00011 made them bigint); V00008 restored the unique pairs.
    CREATE TABLE validators (
        id SERIAL PRIMARY KEY,
        public_key BYTEA NOT NULL UNIQUE,
        enabled BOOLEAN NOT NULL DEFAULT true             -- V00010
    );
    CREATE TABLE signed_blocks (
        validator_id INTEGER NOT NULL REFERENCES validators(id),
        slot NUMERIC(20) NOT NULL,
        signing_root BYTEA,
        id BIGSERIAL PRIMARY KEY,
        CONSTRAINT unique_signed_block UNIQUE (validator_id, slot)
    );
    CREATE TABLE signed_attestations (
        validator_id INTEGER REFERENCES validators(id),
        source_epoch NUMERIC(20) NOT NULL,
        target_epoch NUMERIC(20) NOT NULL,
        signing_root BYTEA,
        id BIGSERIAL PRIMARY KEY,
        CONSTRAINT unique_signed_attestation UNIQUE (validator_id, target_epoch)
    );
    -- V00006: indexes on the record tables.
    CREATE INDEX ON signed_attestations (validator_id, target_epoch);
    CREATE INDEX ON signed_blocks (validator_id, slot);
    -- V00003: low watermarks; V00005: both epochs set or both null.
    CREATE TABLE low_watermarks (
        validator_id INTEGER NOT NULL UNIQUE REFERENCES validators(id),
        slot NUMERIC(20),
        target_epoch NUMERIC(20),
        source_epoch NUMERIC(20),
        CONSTRAINT both_epochs_set_or_null CHECK (
            (target_epoch IS NULL) = (source_epoch IS NULL))
    );
    -- V00004: the genesis validators root (row id 1); V00012: the high watermark.
    CREATE TABLE metadata (
        id INTEGER PRIMARY KEY,
        genesis_validators_root BYTEA NOT NULL,
        high_watermark_epoch NUMERIC(20),
        high_watermark_slot NUMERIC(20)
    );
    -- V00007: the version table (row id 1); each later migration sets its number.
    CREATE TABLE database_version (id INTEGER PRIMARY KEY, version INTEGER NOT NULL);
    INSERT INTO database_version (id, version) VALUES (1, 12);";

fn hex_literal(hex0x: &str) -> String {
    format!("'\\x{}'::bytea", hex0x.trim_start_matches("0x"))
}

/// This test's Web3Signer data: interop key 0 with blocks and attestations (with and
/// without signing roots) and a low watermark; a validator with only a low watermark; a
/// disabled validator with nothing; the genesis validators root and a high watermark.
fn web3signer_data() -> String {
    let pk_low = PK_IMPORTED;
    let root = hex_literal(&requests::root(0xaa));
    format!(
        "INSERT INTO validators (id, public_key) VALUES (1, {pk0}), (2, {pk_low});
         INSERT INTO validators (id, public_key, enabled) VALUES (3, {pk_empty}, false);
         INSERT INTO signed_blocks (validator_id, slot, signing_root) VALUES
             (1, 90, NULL), (1, 100, {root});
         INSERT INTO signed_attestations (validator_id, source_epoch, target_epoch, signing_root)
             VALUES (1, 5, 10, {root}), (1, 6, 11, NULL), (1, 2, 8, {root});
         INSERT INTO low_watermarks (validator_id, slot, source_epoch, target_epoch) VALUES
             (1, 80, 2, 8), (2, 200, 20, 21);
         INSERT INTO metadata (id, genesis_validators_root, high_watermark_epoch,
             high_watermark_slot) VALUES (1, {gvr}, 500, 5000);",
        pk0 = hex_literal(PK0),
        pk_low = hex_literal(pk_low),
        pk_empty = hex_literal(PK_EMPTY),
        gvr = hex_literal(requests::TEST_GVR),
    )
}

/// Creates the Web3Signer database with its data and a SELECT-only role; returns the
/// database name.
fn web3signer_database(pg: &TestPostgres) -> String {
    let url = pg.create_database().unwrap();
    let name = url.rsplit('/').next().unwrap().to_owned();
    pg.psql(&name, WEB3SIGNER_SCHEMA).unwrap();
    pg.psql(&name, &web3signer_data()).unwrap();
    pg.psql(
        &name,
        "CREATE ROLE w3s_reader LOGIN PASSWORD 'reader-secret-pw';
         GRANT SELECT ON ALL TABLES IN SCHEMA public TO w3s_reader;",
    )
    .unwrap();
    name
}

/// Every row of the Web3Signer tables, to show the import changed nothing there.
fn web3signer_dump(pg: &TestPostgres, db: &str) -> String {
    [
        "validators ORDER BY id",
        "signed_blocks ORDER BY id",
        "signed_attestations ORDER BY id",
        "low_watermarks ORDER BY validator_id",
        "metadata",
        "database_version",
    ]
    .iter()
    .map(|t| pg.psql(db, &format!("SELECT * FROM {t}")).unwrap())
    .collect::<Vec<_>>()
    .join("\n")
}

#[test]
fn web3signer_database_is_imported_read_only_and_protects() {
    let Some(pg) = require_postgres("web3signer_database_is_imported_read_only_and_protects")
    else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let db = tmp.path().join("keyguard.sqlite");
    let db = db.to_str().unwrap();
    let w3s = web3signer_database(&pg);
    let before = web3signer_dump(&pg, &w3s);
    let source_url = format!("postgresql://w3s_reader@127.0.0.1:{}/{w3s}", pg.port());
    let password_file = tmp.path().join("w3s-password");
    std::fs::write(&password_file, "reader-secret-pw\n").unwrap();
    let import = |db: &str| {
        slashing(
            db,
            &[
                "import-web3signer",
                &source_url,
                "--source-password-file",
                password_file.to_str().unwrap(),
            ],
        )
    };

    // keyguard already signed below Web3Signer's history: after the import it refuses
    // what only Web3Signer's records forbid.
    let kg = start(db, &data, tmp.path());
    assert_eq!(sign(&kg, requests::block_header(95, 1)), 200);
    assert_eq!(sign(&kg, requests::attestation(1, 2, 1)), 200);
    drop(kg);

    let out = import(db);
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(!said.contains("reader-secret-pw"), "{said}");
    assert!(said.contains("schema version 12"), "{said}");
    assert!(
        said.contains("3 validators (2 new, 1 disabled in Web3Signer), 2 blocks, 3 attestations and 2 low watermarks"),
        "{said}"
    );
    assert_eq!(
        web3signer_dump(&pg, &w3s),
        before,
        "the source was not written"
    );

    // The complete export: one synthetic record per validator at the maxima over the
    // records and the low watermarks, with null signing roots (expected values by hand).
    let exported: serde_json::Value =
        serde_json::from_slice(&export(db, tmp.path(), "after.json")).unwrap();
    assert_eq!(
        exported["metadata"]["genesis_validators_root"],
        requests::TEST_GVR
    );
    let expected = serde_json::json!([
        {"pubkey": PK0,
         "signed_blocks": [{"slot": "100"}],
         "signed_attestations": [{"source_epoch": "6", "target_epoch": "11"}]},
        {"pubkey": PK_IMPORTED,
         "signed_blocks": [{"slot": "200"}],
         "signed_attestations": [{"source_epoch": "20", "target_epoch": "21"}]},
        {"pubkey": PK_EMPTY, "signed_blocks": [], "signed_attestations": []}
    ]);
    assert_eq!(exported["data"], expected, "{exported}");
    let hw = high_watermark(db);
    assert!(hw.contains("5000") && hw.contains("500"), "{hw}");

    // Importing again changes nothing (idempotent, never lowers anything).
    let first_import = export(db, tmp.path(), "after2.json");
    assert!(import(db).status.success());
    assert_eq!(export(db, tmp.path(), "after3.json"), first_import);

    // Signing through the binary: what Web3Signer signed is protected.
    let kg = start(db, &data, tmp.path());
    assert_eq!(
        sign(&kg, requests::block_header(100, 2)),
        412,
        "Web3Signer's block (keyguard alone would sign it: 100 > 95)"
    );
    assert_eq!(
        sign(&kg, requests::attestation(3, 4, 2)),
        412,
        "below Web3Signer's attestations (keyguard alone would sign it: after 1 -> 2)"
    );
    assert_eq!(
        sign(&kg, requests::attestation(5, 10, 2)),
        412,
        "Web3Signer's double vote"
    );
    assert_eq!(sign(&kg, requests::block_header(101, 1)), 200);
    assert_eq!(sign(&kg, requests::attestation(11, 12, 1)), 200);
    drop(kg);
    let after = export(db, tmp.path(), "signed.json");

    // A newer Web3Signer schema is refused with a clear message, and changes nothing.
    pg.psql(
        &w3s,
        "UPDATE database_version SET version = 13 WHERE id = 1",
    )
    .unwrap();
    let out = import(db);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("schema version 13 is newer"),
        "{}",
        text(&out)
    );
    assert_eq!(export(db, tmp.path(), "after4.json"), after);

    // Not a Web3Signer database at all.
    let other = pg.create_database().unwrap();
    let out = slashing(db, &["import-web3signer", &other]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("no database_version table"),
        "{}",
        text(&out)
    );
}
