//! The EIP-3076 checks and the recording of signed messages, as small SQL functions that
//! run inside a caller-provided transaction. The writer thread calls them for every
//! request of a batch in order, so each request is checked against the committed state
//! plus the records of the earlier requests of the same batch.
//!
//! A signing root of all zeroes is treated as "null" (unknown): it is stored as NULL and
//! never counts as an exact repeat.

use std::collections::HashMap;

use rusqlite::{params, Connection, OptionalExtension};

use crate::error::{DbError, Refusal};
use crate::schema::{dec, enc};

/// State mirrored from the database by the writer thread. Reloaded after every rollback so
/// it never holds anything that was not committed.
#[derive(Debug, Default)]
pub(crate) struct Cache {
    /// pubkey -> validators.id
    pub validators: HashMap<[u8; 48], i64>,
    /// The genesis validators root the database is bound to.
    pub gvr: Option<[u8; 32]>,
    /// High watermark slot (kill switch), if set.
    pub hw_slot: Option<u64>,
    /// High watermark epoch (kill switch), if set.
    pub hw_epoch: Option<u64>,
}

impl Cache {
    /// Reads the cached state from the database.
    pub fn load(conn: &Connection) -> Result<Cache, DbError> {
        let (gvr, hw_slot, hw_epoch): (Option<Vec<u8>>, Option<i64>, Option<i64>) = conn
            .query_row(
                "SELECT genesis_validators_root, high_watermark_slot, high_watermark_epoch FROM meta WHERE id = 0",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )?;
        let gvr = match gvr {
            None => None,
            Some(v) => Some(to_root(v)?),
        };
        let mut validators = HashMap::new();
        let mut stmt = conn.prepare("SELECT id, pubkey FROM validators")?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let id: i64 = row.get(0)?;
            let pk: Vec<u8> = row.get(1)?;
            let pk: [u8; 48] = pk
                .try_into()
                .map_err(|_| DbError::Corrupt(format!("validator {id}: pubkey is not 48 bytes")))?;
            validators.insert(pk, id);
        }
        Ok(Cache {
            validators,
            gvr,
            hw_slot: hw_slot.map(dec),
            hw_epoch: hw_epoch.map(dec),
        })
    }
}

/// What a successful check did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// A new record was written.
    Recorded,
    /// Exact repeat of a recorded message (same non-null signing root): nothing written.
    Repeat,
}

/// Result of a check: `Err` is a database failure, `Ok(Err)` a refusal.
pub(crate) type CheckResult = Result<Result<Outcome, Refusal>, DbError>;

/// `None` for the all-zero ("null") root.
pub(crate) fn non_null(root: &[u8; 32]) -> Option<&[u8; 32]> {
    if root.iter().all(|b| *b == 0) {
        None
    } else {
        Some(root)
    }
}

pub(crate) fn to_root(v: Vec<u8>) -> Result<[u8; 32], DbError> {
    v.try_into()
        .map_err(|_| DbError::Corrupt("a stored root is not 32 bytes".into()))
}

/// Checks the request's genesis validators root, binding the database to it if unbound
/// (inside the current transaction).
pub(crate) fn check_gvr(
    conn: &Connection,
    cache: &mut Cache,
    gvr: &[u8; 32],
) -> Result<Result<(), Refusal>, DbError> {
    match cache.gvr {
        Some(bound) if bound == *gvr => Ok(Ok(())),
        Some(bound) => Ok(Err(Refusal::WrongGenesisValidatorsRoot {
            bound,
            requested: *gvr,
        })),
        None => {
            bind_gvr(conn, gvr)?;
            cache.gvr = Some(*gvr);
            Ok(Ok(()))
        }
    }
}

/// Writes the genesis validators root binding.
pub(crate) fn bind_gvr(conn: &Connection, gvr: &[u8; 32]) -> Result<(), DbError> {
    conn.prepare_cached("UPDATE meta SET genesis_validators_root = ?1 WHERE id = 0")?
        .execute(params![&gvr[..]])?;
    Ok(())
}

/// Returns the validator's id, registering it if unknown.
pub(crate) fn validator_id(
    conn: &Connection,
    cache: &mut Cache,
    pubkey: &[u8; 48],
) -> Result<i64, DbError> {
    if let Some(id) = cache.validators.get(pubkey) {
        return Ok(*id);
    }
    conn.prepare_cached("INSERT INTO validators (pubkey) VALUES (?1)")?
        .execute(params![&pubkey[..]])?;
    let id = conn.last_insert_rowid();
    cache.validators.insert(*pubkey, id);
    Ok(id)
}

/// Pure block check against the recorded blocks of one validator.
pub(crate) fn check_block(conn: &Connection, vid: i64, slot: u64, root: &[u8; 32]) -> CheckResult {
    let same_slot: Option<Option<Vec<u8>>> = conn
        .prepare_cached(
            "SELECT signing_root FROM signed_blocks WHERE validator_id = ?1 AND slot = ?2",
        )?
        .query_row(params![vid, enc(slot)], |r| r.get(0))
        .optional()?;
    if let Some(existing) = same_slot {
        return Ok(match (existing, non_null(root)) {
            (Some(e), Some(r)) if e.as_slice() == r.as_slice() => Ok(Outcome::Repeat),
            _ => Err(Refusal::DoubleBlockProposal { slot }),
        });
    }
    let lowest: Option<i64> = conn
        .prepare_cached("SELECT MIN(slot) FROM signed_blocks WHERE validator_id = ?1")?
        .query_row(params![vid], |r| r.get(0))?;
    if let Some(lowest) = lowest.map(dec) {
        if slot <= lowest {
            return Ok(Err(Refusal::BlockSlotNotAboveWatermark {
                slot,
                lowest_slot: lowest,
            }));
        }
    }
    Ok(Ok(Outcome::Recorded))
}

/// Records a signed block.
pub(crate) fn insert_block(
    conn: &Connection,
    vid: i64,
    slot: u64,
    root: Option<&[u8; 32]>,
) -> Result<(), DbError> {
    conn.prepare_cached(
        "INSERT INTO signed_blocks (validator_id, slot, signing_root) VALUES (?1, ?2, ?3)",
    )?
    .execute(params![vid, enc(slot), root.map(|r| &r[..])])?;
    Ok(())
}

/// Pure attestation check against the recorded attestations of one validator.
pub(crate) fn check_attestation(
    conn: &Connection,
    vid: i64,
    source: u64,
    target: u64,
    root: &[u8; 32],
) -> CheckResult {
    let same_target: Option<(i64, Option<Vec<u8>>)> = conn
        .prepare_cached(
            "SELECT source_epoch, signing_root FROM signed_attestations WHERE validator_id = ?1 AND target_epoch = ?2",
        )?
        .query_row(params![vid, enc(target)], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    if let Some((existing_source, existing_root)) = same_target {
        let existing_source = dec(existing_source);
        return Ok(match (existing_root, non_null(root)) {
            (Some(e), Some(r)) if e.as_slice() == r.as_slice() && existing_source == source => {
                Ok(Outcome::Repeat)
            }
            _ => Err(Refusal::DoubleVote {
                source_epoch: source,
                target_epoch: target,
                existing_source_epoch: existing_source,
            }),
        });
    }
    if source > target {
        return Ok(Err(Refusal::SourceGreaterThanTarget {
            source_epoch: source,
            target_epoch: target,
        }));
    }
    // Surrounded by a record: r.source < source AND r.target > target. Drive the lookup by
    // the target (few records lie above a new target); the unary `+` keeps SQLite off the
    // source index for this query.
    let surrounding: Option<(i64, i64)> = conn
        .prepare_cached(
            "SELECT source_epoch, target_epoch FROM signed_attestations
             WHERE validator_id = ?1 AND target_epoch > ?3 AND +source_epoch < ?2 LIMIT 1",
        )?
        .query_row(params![vid, enc(source), enc(target)], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()?;
    if let Some((s, t)) = surrounding {
        return Ok(Err(Refusal::SurroundedVote {
            source_epoch: source,
            target_epoch: target,
            existing_source_epoch: dec(s),
            existing_target_epoch: dec(t),
        }));
    }
    // Surrounding a record: r.source > source AND r.target < target (driven by the source).
    let surrounded: Option<(i64, i64)> = conn
        .prepare_cached(
            "SELECT source_epoch, target_epoch FROM signed_attestations INDEXED BY signed_attestations_by_source
             WHERE validator_id = ?1 AND source_epoch > ?2 AND +target_epoch < ?3 LIMIT 1",
        )?
        .query_row(params![vid, enc(source), enc(target)], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()?;
    if let Some((s, t)) = surrounded {
        return Ok(Err(Refusal::SurroundingVote {
            source_epoch: source,
            target_epoch: target,
            existing_source_epoch: dec(s),
            existing_target_epoch: dec(t),
        }));
    }
    let lowest_source: Option<i64> = conn
        .prepare_cached(
            "SELECT MIN(source_epoch) FROM signed_attestations INDEXED BY signed_attestations_by_source WHERE validator_id = ?1",
        )?
        .query_row(params![vid], |r| r.get(0))?;
    if let Some(lowest) = lowest_source.map(dec) {
        if source < lowest {
            return Ok(Err(Refusal::AttestationSourceBelowWatermark {
                source_epoch: source,
                lowest_source_epoch: lowest,
            }));
        }
    }
    let lowest_target: Option<i64> = conn
        .prepare_cached(
            "SELECT MIN(target_epoch) FROM signed_attestations WHERE validator_id = ?1",
        )?
        .query_row(params![vid], |r| r.get(0))?;
    if let Some(lowest) = lowest_target.map(dec) {
        if target <= lowest {
            return Ok(Err(Refusal::AttestationTargetNotAboveWatermark {
                target_epoch: target,
                lowest_target_epoch: lowest,
            }));
        }
    }
    Ok(Ok(Outcome::Recorded))
}

/// Records a signed attestation.
pub(crate) fn insert_attestation(
    conn: &Connection,
    vid: i64,
    source: u64,
    target: u64,
    root: Option<&[u8; 32]>,
) -> Result<(), DbError> {
    conn.prepare_cached(
        "INSERT INTO signed_attestations (validator_id, source_epoch, target_epoch, signing_root) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![vid, enc(source), enc(target), root.map(|r| &r[..])])?;
    Ok(())
}

/// Full check-and-record of a block request: genesis root, high watermark, rules, insert.
pub(crate) fn check_and_record_block(
    conn: &Connection,
    cache: &mut Cache,
    gvr: &[u8; 32],
    pubkey: &[u8; 48],
    slot: u64,
    root: &[u8; 32],
) -> CheckResult {
    if let Err(r) = check_gvr(conn, cache, gvr)? {
        return Ok(Err(r));
    }
    if let Some(hw) = cache.hw_slot {
        if slot >= hw {
            return Ok(Err(Refusal::HighWatermarkBlock {
                slot,
                watermark_slot: hw,
            }));
        }
    }
    let vid = validator_id(conn, cache, pubkey)?;
    let outcome = check_block(conn, vid, slot, root)?;
    if outcome == Ok(Outcome::Recorded) {
        insert_block(conn, vid, slot, non_null(root))?;
    }
    Ok(outcome)
}

/// Full check-and-record of an attestation request.
pub(crate) fn check_and_record_attestation(
    conn: &Connection,
    cache: &mut Cache,
    gvr: &[u8; 32],
    pubkey: &[u8; 48],
    source: u64,
    target: u64,
    root: &[u8; 32],
) -> CheckResult {
    if let Err(r) = check_gvr(conn, cache, gvr)? {
        return Ok(Err(r));
    }
    if let Some(hw) = cache.hw_epoch {
        if source >= hw || target >= hw {
            return Ok(Err(Refusal::HighWatermarkAttestation {
                source_epoch: source,
                target_epoch: target,
                watermark_epoch: hw,
            }));
        }
    }
    let vid = validator_id(conn, cache, pubkey)?;
    let outcome = check_attestation(conn, vid, source, target, root)?;
    if outcome == Ok(Outcome::Recorded) {
        insert_attestation(conn, vid, source, target, non_null(root))?;
    }
    Ok(outcome)
}
