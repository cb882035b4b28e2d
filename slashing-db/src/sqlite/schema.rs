//! Opening the SQLite file: pragmas, the exclusive lock, and versioned migrations.
//!
//! Slots and epochs are `u64`; SQLite integers are `i64`. They are stored with [`enc`]
//! (flip the top bit, reinterpret as `i64`), which preserves `u64` order under SQLite's
//! signed comparisons, so `MIN`/`MAX`/ranges work for the whole `u64` range.

use std::path::Path;

use rusqlite::{Connection, ErrorCode, OpenFlags};

use crate::error::DbError;

/// Migrations, in order. Migration `i` brings `PRAGMA user_version` from `i` to `i + 1`.
/// Never edit a released entry; append a new one.
pub(crate) const MIGRATIONS: &[&str] = &[
    // 1: initial schema.
    "CREATE TABLE meta (
        id INTEGER PRIMARY KEY CHECK (id = 0),
        genesis_validators_root BLOB CHECK (genesis_validators_root IS NULL OR length(genesis_validators_root) = 32),
        high_watermark_slot INTEGER,
        high_watermark_epoch INTEGER
    );
    INSERT INTO meta (id) VALUES (0);
    CREATE TABLE validators (
        id INTEGER PRIMARY KEY,
        pubkey BLOB NOT NULL UNIQUE CHECK (length(pubkey) = 48)
    );
    CREATE TABLE signed_blocks (
        validator_id INTEGER NOT NULL REFERENCES validators(id),
        slot INTEGER NOT NULL,
        signing_root BLOB CHECK (signing_root IS NULL OR length(signing_root) = 32),
        PRIMARY KEY (validator_id, slot)
    ) WITHOUT ROWID;
    CREATE TABLE signed_attestations (
        validator_id INTEGER NOT NULL REFERENCES validators(id),
        source_epoch INTEGER NOT NULL,
        target_epoch INTEGER NOT NULL,
        signing_root BLOB CHECK (signing_root IS NULL OR length(signing_root) = 32),
        PRIMARY KEY (validator_id, target_epoch)
    ) WITHOUT ROWID;
    CREATE INDEX signed_attestations_by_source ON signed_attestations (validator_id, source_epoch);",
    // 2: the recent tier of attestations (see `sqlite/attestations.rs`); older records
    // stay where they are, in `signed_attestations`, whose source index is dropped (every
    // scan of that tier reads one validator's rows by target).
    "CREATE TABLE recent_attestations (
        vgroup INTEGER NOT NULL,
        target_epoch INTEGER NOT NULL,
        validator_id INTEGER NOT NULL REFERENCES validators(id),
        source_epoch INTEGER NOT NULL,
        signing_root BLOB CHECK (signing_root IS NULL OR length(signing_root) = 32),
        CHECK (vgroup = validator_id >> 6),
        PRIMARY KEY (vgroup, target_epoch, validator_id)
    ) WITHOUT ROWID;
    DROP INDEX signed_attestations_by_source;",
];

/// Recent attestations are stored by `(vgroup, target_epoch, validator_id)` with
/// `vgroup = validator_id >> GROUP_BITS` (migration 2; its SQL spells the same shift), so
/// one epoch's records of 64 consecutive validator ids are adjacent (see
/// `sqlite/attestations.rs` for why and for the measured choice of 64).
pub(crate) const GROUP_BITS: u32 = 6;

/// The attestation group of a validator id (see [`GROUP_BITS`]).
pub(crate) fn group_of(validator_id: i64) -> i64 {
    validator_id >> GROUP_BITS
}

/// Schema version this build writes.
pub(crate) const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Order-preserving `u64` -> `i64` encoding for storage.
pub(crate) fn enc(v: u64) -> i64 {
    (v ^ (1u64 << 63)) as i64
}

/// Inverse of [`enc`].
pub(crate) fn dec(v: i64) -> u64 {
    (v as u64) ^ (1u64 << 63)
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy) | Some(ErrorCode::DatabaseLocked)
    )
}

/// Opens (creating if needed) the database, takes the exclusive lock, checks durability
/// settings and migrates the schema.
pub(crate) fn open_connection(path: &Path) -> Result<Connection, DbError> {
    let in_use = || DbError::InUse {
        path: path.to_path_buf(),
    };
    let map = |e: rusqlite::Error| if is_busy(&e) { in_use() } else { e.into() };
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(map)?;
    // The check path alone uses a dozen statements, import and export more: keep them all
    // prepared (rusqlite's default cache of 16 would re-parse SQL under mixed load).
    conn.set_prepared_statement_cache_capacity(64);
    // Fail fast instead of waiting when another process holds the lock.
    conn.busy_timeout(std::time::Duration::ZERO).map_err(map)?;
    // Exclusive locking first: the WAL index then lives in heap memory (no -shm) and the
    // lock, once taken, is held until the connection closes.
    let mode: String = conn
        .query_row("PRAGMA locking_mode = EXCLUSIVE", [], |r| r.get(0))
        .map_err(map)?;
    if !mode.eq_ignore_ascii_case("exclusive") {
        return Err(DbError::Sqlite(format!(
            "locking_mode reads back as {mode}"
        )));
    }
    let journal: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .map_err(map)?;
    if !journal.eq_ignore_ascii_case("wal") {
        return Err(DbError::NotWal {
            path: path.to_path_buf(),
            actual: journal,
        });
    }
    conn.execute_batch("PRAGMA synchronous = FULL")
        .map_err(map)?;
    let sync: i64 = conn
        .query_row("PRAGMA synchronous", [], |r| r.get(0))
        .map_err(map)?;
    if sync != 2 {
        return Err(DbError::NotDurable {
            path: path.to_path_buf(),
            actual: sync,
        });
    }
    // Performance: a 64 MiB page cache (per-validator records scatter over many pages,
    // the default 2 MiB thrashes), and checkpoints every ~10,000 WAL pages (~40 MB) so hot
    // pages rewritten by successive group commits are copied back to the file once.
    conn.execute_batch("PRAGMA cache_size = -65536; PRAGMA wal_autocheckpoint = 10000")
        .map_err(map)?;
    // Take the exclusive lock now (it is kept: locking_mode = EXCLUSIVE) and migrate.
    conn.execute_batch("BEGIN EXCLUSIVE").map_err(map)?;
    let migrated = migrate(&conn, path);
    match migrated {
        Ok(()) => conn.execute_batch("COMMIT").map_err(map)?,
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            return Err(e);
        }
    }
    Ok(conn)
}

fn migrate(conn: &Connection, path: &Path) -> Result<(), DbError> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version > SCHEMA_VERSION {
        return Err(DbError::SchemaTooNew {
            path: path.to_path_buf(),
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version.max(0) as usize) {
        if version > 0 {
            // Upgrading an existing file can rewrite every record (migration 2): say why
            // this start-up takes longer, once.
            tracing::info!(
                from = version,
                to = i + 1,
                "migrating the slashing database schema"
            );
        }
        conn.execute_batch(sql)?;
        conn.execute_batch(&format!("PRAGMA user_version = {}", i + 1))?;
        tracing::info!(version = i + 1, "slashing database migrated");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_preserves_order() {
        let vals = [
            0u64,
            1,
            2,
            1 << 62,
            (1 << 63) - 1,
            1 << 63,
            u64::MAX - 1,
            u64::MAX,
        ];
        for w in vals.windows(2) {
            assert!(enc(w[0]) < enc(w[1]));
        }
        for v in vals {
            assert_eq!(dec(enc(v)), v);
        }
    }
}
