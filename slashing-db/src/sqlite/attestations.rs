//! Attestation records in two tiers. Every record is in exactly one of them; every read
//! asks both.
//!
//! * `recent_attestations`: where new records go, clustered by group (64 consecutive
//!   validator ids, `schema::GROUP_BITS`) and then by target.
//! * `signed_attestations`: the older records, clustered by validator (the schema-1
//!   table: a file from before keeps its records there).
//!
//! Why two: a group commit writes every B-tree page it dirtied to the WAL (two `pwrite`s
//! per page) and a checkpoint copies each back; those system calls, not the bytes (a
//! 1 KiB page size changed nothing), were ~75% of the writer's CPU. Clustered by
//! validator, each validator's next record dirtied its own leaf page and one of a source
//! index: ~2 pages per record, ~22 µs of writer CPU. In the recent tier one epoch's
//! records of a group share a page. But a range scan for one validator in a
//! group-clustered table reads its group peers' rows too, so a table holding a whole
//! history in that order made the rare full-history checks slow without bound (a late
//! vote into a gap far below the newest records read ~100x the rows of the old layout,
//! 5.8 ms on a 384-epoch history, growing with the history). So the recent tier stays
//! short: once a group holds `recent_rows_per_group` rows (8,192: 128 epochs of 64
//! validators), its oldest half moves to the per-validator tier in one statement sorted by
//! validator ("compaction", before the commit of the transaction that filled it), where
//! each validator's moved records share a page. A scan of the recent tier reads at most
//! that many rows; a scan of the other tier reads one validator's rows by target. The
//! per-validator tier has no source index: one more B-tree write per moved record cost
//! more than the scans by target it saves (which stop at the validator's own rows).
//!
//! Measured (`benches/writer_cpu.rs`, 1,000 validators, one run each): writer CPU per
//! record 4.3-4.4 µs, the old layout ~22 µs; with a single group-clustered table and no second
//! tier, groups of 16 / 32 / 64 ids cost 4.6 / 3.8 / 3.1 µs but had the unbounded scans
//! above; two tiers with groups of 32 and 2,048 recent rows cost 7.2 µs (compaction too
//! frequent), with 8,192 rows 5.4 µs, and without the source index 4.3 µs.

use rusqlite::{params, Connection, OptionalExtension};

use super::schema::{dec, enc, group_of};
use super::{limit_param, to_stored_root};
use crate::error::DbError;
use crate::records::{prune_range, PruneRange, StoredRoot, ValidatorId};

/// Rows a group may hold in the recent tier before its oldest half is moved.
pub(crate) const DEFAULT_RECENT_ROWS_PER_GROUP: usize = 8192;

/// `(source, target)` read as stored.
type Pair = (i64, i64);

fn pair(r: &rusqlite::Row<'_>) -> rusqlite::Result<Pair> {
    Ok((r.get(0)?, r.get(1)?))
}

fn decoded(p: Option<Pair>) -> Option<(u64, u64)> {
    p.map(|(s, t)| (dec(s), dec(t)))
}

/// The first row `read` from the recent tier's `recent_sql`, else from the per-validator
/// tier's `older_sql`. Parameters: `?1` the group and `?2` the validator in `recent_sql`,
/// `?1` the validator in `older_sql`, then `args` in order (`?3`.. and `?2`..).
fn first_in_tiers<T>(
    c: &Connection,
    vid: ValidatorId,
    recent_sql: &str,
    older_sql: &str,
    args: &[&dyn rusqlite::ToSql],
    read: impl Fn(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> Result<Option<T>, DbError> {
    let group = group_of(vid);
    let recent_params: Vec<&dyn rusqlite::ToSql> = [&group as &dyn rusqlite::ToSql, &vid]
        .into_iter()
        .chain(args.iter().copied())
        .collect();
    let recent = c
        .prepare_cached(recent_sql)?
        .query_row(recent_params.as_slice(), &read)
        .optional()?;
    if recent.is_some() {
        return Ok(recent);
    }
    let older_params: Vec<&dyn rusqlite::ToSql> = std::iter::once(&vid as &dyn rusqlite::ToSql)
        .chain(args.iter().copied())
        .collect();
    Ok(c.prepare_cached(older_sql)?
        .query_row(older_params.as_slice(), read)
        .optional()?)
}

/// `(source, root)` of the record of `vid` for `target`, if one is.
pub(super) fn at_target(
    c: &Connection,
    vid: ValidatorId,
    target: u64,
) -> Result<Option<(u64, StoredRoot)>, DbError> {
    let found = first_in_tiers(
        c,
        vid,
        "SELECT source_epoch, signing_root FROM recent_attestations
         WHERE vgroup = ?1 AND target_epoch = ?3 AND validator_id = ?2",
        "SELECT source_epoch, signing_root FROM signed_attestations
         WHERE validator_id = ?1 AND target_epoch = ?2",
        &[&enc(target)],
        |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Option<Vec<u8>>>(1)?)),
    )?;
    found
        .map(|(s, root)| Ok((dec(s), to_stored_root(root)?)))
        .transpose()
}

/// A record of `vid` with `source < s` and `target > t`.
pub(super) fn surrounding(
    c: &Connection,
    vid: ValidatorId,
    s: u64,
    t: u64,
) -> Result<Option<(u64, u64)>, DbError> {
    // Both driven by the target: few records lie above a new target.
    let found = first_in_tiers(
        c,
        vid,
        "SELECT source_epoch, target_epoch FROM recent_attestations
         WHERE vgroup = ?1 AND target_epoch > ?4 AND validator_id = ?2 AND source_epoch < ?3
         LIMIT 1",
        "SELECT source_epoch, target_epoch FROM signed_attestations
         WHERE validator_id = ?1 AND target_epoch > ?3 AND source_epoch < ?2 LIMIT 1",
        &[&enc(s), &enc(t)],
        pair,
    )?;
    Ok(decoded(found))
}

/// A record of `vid` with `source > s` and `target < t`.
pub(super) fn surrounded(
    c: &Connection,
    vid: ValidatorId,
    s: u64,
    t: u64,
) -> Result<Option<(u64, u64)>, DbError> {
    let found = first_in_tiers(
        c,
        vid,
        "SELECT source_epoch, target_epoch FROM recent_attestations
         WHERE vgroup = ?1 AND target_epoch < ?4 AND validator_id = ?2 AND source_epoch > ?3
         ORDER BY target_epoch DESC LIMIT 1",
        "SELECT source_epoch, target_epoch FROM signed_attestations
         WHERE validator_id = ?1 AND target_epoch < ?3 AND source_epoch > ?2
         ORDER BY target_epoch DESC LIMIT 1",
        &[&enc(s), &enc(t)],
        pair,
    )?;
    Ok(decoded(found))
}

/// Runs `sql` with `params` and maps every row with `f`.
fn collect<T>(
    c: &Connection,
    sql: &str,
    params: &[&dyn rusqlite::ToSql],
    f: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> Result<Vec<T>, DbError> {
    let mut stmt = c.prepare_cached(sql)?;
    let rows = stmt.query_map(params, f)?;
    Ok(rows.collect::<rusqlite::Result<Vec<T>>>()?)
}

/// Every record of `vid`, `(source, target, root)` by target.
pub(super) fn all(
    c: &Connection,
    vid: ValidatorId,
) -> Result<Vec<(u64, u64, StoredRoot)>, DbError> {
    let read = |r: &rusqlite::Row<'_>| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, Option<Vec<u8>>>(2)?,
        ))
    };
    let mut rows = collect(
        c,
        "SELECT source_epoch, target_epoch, signing_root FROM signed_attestations
         WHERE validator_id = ?1",
        &[&vid],
        read,
    )?;
    rows.extend(collect(
        c,
        "SELECT source_epoch, target_epoch, signing_root FROM recent_attestations
         WHERE vgroup = ?1 AND validator_id = ?2",
        &[&group_of(vid), &vid],
        read,
    )?);
    let mut out = rows
        .into_iter()
        .map(|(s, t, root)| Ok((dec(s), dec(t), to_stored_root(root)?)))
        .collect::<Result<Vec<_>, DbError>>()?;
    out.sort_unstable_by_key(|(_, target, _)| *target);
    Ok(out)
}

/// The root of the record `source -> target` of `vid`, if there is one.
pub(super) fn root_of(
    c: &Connection,
    vid: ValidatorId,
    source: u64,
    target: u64,
) -> Result<Option<StoredRoot>, DbError> {
    Ok(match at_target(c, vid, target)? {
        Some((s, root)) if s == source => Some(root),
        _ => None,
    })
}

/// Records an attestation (in the recent tier).
pub(super) fn insert(
    c: &Connection,
    vid: ValidatorId,
    source: u64,
    target: u64,
    root: StoredRoot,
) -> Result<(), DbError> {
    c.prepare_cached(
        "INSERT INTO recent_attestations (vgroup, validator_id, source_epoch, target_epoch, signing_root)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        group_of(vid),
        vid,
        enc(source),
        enc(target),
        root.as_ref().map(|r| &r[..])
    ])?;
    Ok(())
}

/// The `limit` oldest records of `vid` with target below `below_target`, as a
/// [`PruneRange`] (`None`: there are none).
pub(super) fn oldest(
    c: &Connection,
    vid: ValidatorId,
    below_target: u64,
    limit_rows: usize,
) -> Result<Option<PruneRange>, DbError> {
    let (below, limit) = (enc(below_target), limit_param(limit_rows));
    let mut rows = collect(
        c,
        "SELECT source_epoch, target_epoch FROM signed_attestations
         WHERE validator_id = ?1 AND target_epoch < ?2 ORDER BY target_epoch LIMIT ?3",
        &[&vid, &below, &limit],
        pair,
    )?;
    rows.extend(collect(
        c,
        "SELECT source_epoch, target_epoch FROM recent_attestations
         WHERE vgroup = ?1 AND target_epoch < ?3 AND validator_id = ?2
         ORDER BY target_epoch LIMIT ?4",
        &[&group_of(vid), &vid, &below, &limit],
        pair,
    )?);
    rows.sort_unstable_by_key(|(_, target)| *target);
    rows.truncate(limit_rows);
    let count = i64::try_from(rows.len()).unwrap_or(i64::MAX);
    let highest = rows.iter().map(|(_, t)| *t).max();
    let highest_source = rows.iter().map(|(s, _)| *s).max();
    Ok(prune_range(
        count,
        highest.map(dec),
        highest_source.map(dec),
    ))
}

/// Rows deleted, per tier.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Deleted {
    /// From the per-validator tier.
    pub older: usize,
    /// From the recent tier.
    pub recent: usize,
}

/// Deletes the records of `vid` with target at or below `target` (`None`: all of them).
pub(super) fn delete_through(
    c: &Connection,
    vid: ValidatorId,
    target: Option<u64>,
) -> Result<Deleted, DbError> {
    let through = enc(target.unwrap_or(u64::MAX));
    let older = c
        .prepare_cached(
            "DELETE FROM signed_attestations WHERE validator_id = ?1 AND target_epoch <= ?2",
        )?
        .execute(params![vid, through])?;
    let recent = c
        .prepare_cached(
            "DELETE FROM recent_attestations
             WHERE vgroup = ?1 AND target_epoch <= ?3 AND validator_id = ?2",
        )?
        .execute(params![group_of(vid), vid, through])?;
    Ok(Deleted { older, recent })
}

/// Lowest and highest source and target of the records of `vid`, over both tiers:
/// `(min source, max source, min target, max target)`, `None` when it has none.
pub(super) type Bounds = Option<(u64, u64, u64, u64)>;

/// See [`Bounds`].
pub(super) fn bounds(c: &Connection, vid: ValidatorId) -> Result<Bounds, DbError> {
    let read = |r: &rusqlite::Row<'_>| {
        Ok((
            r.get::<_, Option<i64>>(0)?,
            r.get::<_, Option<i64>>(1)?,
            r.get::<_, Option<i64>>(2)?,
            r.get::<_, Option<i64>>(3)?,
        ))
    };
    let older = collect(
        c,
        "SELECT MIN(source_epoch), MAX(source_epoch), MIN(target_epoch), MAX(target_epoch)
         FROM signed_attestations WHERE validator_id = ?1",
        &[&vid],
        read,
    )?;
    let recent = collect(
        c,
        "SELECT MIN(source_epoch), MAX(source_epoch), MIN(target_epoch), MAX(target_epoch)
         FROM recent_attestations WHERE vgroup = ?1 AND validator_id = ?2",
        &[&group_of(vid), &vid],
        read,
    )?;
    let mut merged: Bounds = None;
    for row in older.into_iter().chain(recent) {
        if let (Some(a), Some(b), Some(x), Some(y)) = row {
            let tier = (dec(a), dec(b), dec(x), dec(y));
            merged = Some(match merged {
                None => tier,
                Some(m) => (
                    m.0.min(tier.0),
                    m.1.max(tier.1),
                    m.2.min(tier.2),
                    m.3.max(tier.3),
                ),
            });
        }
    }
    Ok(merged)
}

/// Moves at least `count` of the oldest recent records of `group` (all with the same
/// target as the last of them too) to the per-validator tier, in one statement sorted by
/// validator; returns how many moved (0 if the group holds fewer than `count`).
pub(super) fn compact_group(c: &Connection, group: i64, count: usize) -> Result<usize, DbError> {
    let cut: Option<i64> = c
        .prepare_cached(
            "SELECT target_epoch FROM recent_attestations WHERE vgroup = ?1
             ORDER BY target_epoch LIMIT 1 OFFSET ?2",
        )?
        .query_row(params![group, limit_param(count.saturating_sub(1))], |r| {
            r.get(0)
        })
        .optional()?;
    let Some(cut) = cut else {
        return Ok(0);
    };
    let copied = c
        .prepare_cached(
            "INSERT INTO signed_attestations (validator_id, source_epoch, target_epoch, signing_root)
             SELECT validator_id, source_epoch, target_epoch, signing_root FROM recent_attestations
             WHERE vgroup = ?1 AND target_epoch <= ?2 ORDER BY validator_id, target_epoch",
        )?
        .execute(params![group, cut])?;
    let moved = c
        .prepare_cached("DELETE FROM recent_attestations WHERE vgroup = ?1 AND target_epoch <= ?2")?
        .execute(params![group, cut])?;
    if copied != moved {
        return Err(DbError::Corrupt(format!(
            "compacting attestation group {group}: copied {copied} rows but removed {moved}"
        )));
    }
    Ok(moved)
}
