//! The PostgreSQL schema and its versioned migrations.
//!
//! Every table is prefixed `keyguard_`, so the schema can live beside others (for example
//! a Web3Signer database being migrated from). Slots and epochs are `u64`, stored in
//! `BIGINT` with [`enc`](crate::sqlite::schema::enc) (top bit flipped), which keeps `u64`
//! order under signed comparison for the whole range. Several instances may start at once:
//! migrations run under a transaction-scoped advisory lock.

use std::path::PathBuf;

use postgres::Client;

use crate::error::DbError;

/// Migrations, in order. Migration `i` brings the version from `i` to `i + 1`.
/// Never edit a released entry; append a new one.
pub(crate) const MIGRATIONS: &[&str] = &[
    // 1: initial schema.
    "CREATE TABLE keyguard_meta (
        id INT PRIMARY KEY CHECK (id = 0),
        genesis_validators_root BYTEA CHECK (genesis_validators_root IS NULL OR length(genesis_validators_root) = 32),
        high_watermark_slot BIGINT,
        high_watermark_epoch BIGINT
    );
    INSERT INTO keyguard_meta (id) VALUES (0);
    CREATE TABLE keyguard_validators (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        pubkey BYTEA NOT NULL UNIQUE CHECK (length(pubkey) = 48)
    );
    CREATE TABLE keyguard_signed_blocks (
        validator_id BIGINT NOT NULL REFERENCES keyguard_validators(id),
        slot BIGINT NOT NULL,
        signing_root BYTEA CHECK (signing_root IS NULL OR length(signing_root) = 32),
        PRIMARY KEY (validator_id, slot)
    );
    CREATE TABLE keyguard_signed_attestations (
        validator_id BIGINT NOT NULL REFERENCES keyguard_validators(id),
        source_epoch BIGINT NOT NULL,
        target_epoch BIGINT NOT NULL,
        signing_root BYTEA CHECK (signing_root IS NULL OR length(signing_root) = 32),
        PRIMARY KEY (validator_id, target_epoch)
    );
    CREATE INDEX keyguard_signed_attestations_by_source
        ON keyguard_signed_attestations (validator_id, source_epoch);",
];

/// Schema version this build writes.
pub(crate) const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Advisory lock key taken while migrating ("kgsd" in ASCII).
const MIGRATION_LOCK: i64 = 0x6b67_7364;

/// Brings the schema to [`SCHEMA_VERSION`], or refuses a newer one.
pub(crate) fn migrate(client: &mut Client, location: &str) -> Result<(), DbError> {
    let mut tx = client.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS keyguard_schema_version (
            id INT PRIMARY KEY CHECK (id = 0),
            version BIGINT NOT NULL
        )",
    )?;
    let found: i64 = match tx.query_opt(
        "SELECT version FROM keyguard_schema_version WHERE id = 0",
        &[],
    )? {
        Some(row) => row.try_get(0)?,
        None => 0,
    };
    if found > SCHEMA_VERSION {
        return Err(DbError::SchemaTooNew {
            path: PathBuf::from(location),
            found,
            supported: SCHEMA_VERSION,
        });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(found.max(0) as usize) {
        tx.batch_execute(sql)?;
        let version = i as i64 + 1;
        tx.execute(
            "INSERT INTO keyguard_schema_version (id, version) VALUES (0, $1)
             ON CONFLICT (id) DO UPDATE SET version = EXCLUDED.version",
            &[&version],
        )?;
        tracing::info!(version, "slashing database migrated");
    }
    tx.commit()?;
    Ok(())
}
