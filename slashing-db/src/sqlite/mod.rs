//! The SQLite backend: one file, opened with an exclusive lock (this process is the only
//! writer), so the in-memory [`Cache`] (validator ids, the genesis binding, the kill switch,
//! every validator's [`Extremes`] and the size of each attestation group's recent tier) is
//! authoritative. It is reloaded after any transaction that did not commit, so it never
//! holds anything uncommitted. Attestations are kept in two tiers: see [`attestations`].

mod attestations;
pub(crate) mod schema;

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use crate::error::DbError;
use crate::records::{
    prune_range, Backend, Meta, PruneRange, Records, StoredRoot, Summary, Transaction, ValidatorId,
};
pub(crate) use attestations::DEFAULT_RECENT_ROWS_PER_GROUP;
use schema::{dec, enc, group_of};

/// What the cache knows of one validator's records, exact as of the last statement.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Extremes {
    /// The maxima that decide the common case.
    summary: Summary,
    /// Lowest recorded attestation source and target epoch (the attestation low
    /// watermarks; kept here so that the rules read them without a query, and so that
    /// surround scans that cannot match are skipped).
    lowest_source: Option<u64>,
    lowest_target: Option<u64>,
}

impl Extremes {
    /// False when no record can have `source < s` and `target > t` (one surrounding
    /// `s -> t`): the scan for it is skipped. Exact: it only compares with the extremes.
    fn may_hold_surrounding(&self, s: u64, t: u64) -> bool {
        self.lowest_source.is_some_and(|low| low < s)
            && self.summary.max_target.is_some_and(|max| max > t)
    }

    /// False when no record can have `source > s` and `target < t` (one that `s -> t`
    /// surrounds).
    fn may_hold_surrounded(&self, s: u64, t: u64) -> bool {
        self.summary.max_source.is_some_and(|max| max > s)
            && self.lowest_target.is_some_and(|low| low < t)
    }

    /// After recording an attestation `source -> target`.
    fn with_attestation(mut self, source: u64, target: u64) -> Extremes {
        self.summary = self.summary.with_attestation(source, target);
        self.lowest_source = Some(self.lowest_source.map_or(source, |m| m.min(source)));
        self.lowest_target = Some(self.lowest_target.map_or(target, |m| m.min(target)));
        self
    }
}

/// State mirrored from the database.
#[derive(Debug, Default)]
struct Cache {
    /// pubkey -> validators.id
    validators: HashMap<[u8; 48], ValidatorId>,
    /// validators.id -> extremes of its records (absent: no records).
    extremes: HashMap<ValidatorId, Extremes>,
    meta: Meta,
    /// Attestation group -> rows it holds in the recent tier.
    recent_rows: HashMap<i64, usize>,
    /// The groups holding `recent_limit` rows or more: compacted before the next commit.
    full_groups: BTreeSet<i64>,
    /// See [`attestations::DEFAULT_RECENT_ROWS_PER_GROUP`].
    recent_limit: usize,
}

impl Cache {
    /// Reads the cached state from the database.
    fn load(conn: &Connection, recent_limit: usize) -> Result<Cache, DbError> {
        let (gvr, hw_slot, hw_epoch): (Option<Vec<u8>>, Option<i64>, Option<i64>) = conn
            .query_row(
                "SELECT genesis_validators_root, high_watermark_slot, high_watermark_epoch FROM meta WHERE id = 0",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )?;
        let mut cache = Cache {
            meta: Meta {
                gvr: gvr.map(to_root).transpose()?,
                hw_slot: hw_slot.map(dec),
                hw_epoch: hw_epoch.map(dec),
            },
            recent_limit,
            ..Cache::default()
        };
        cache.load_validators(conn)?;
        cache.load_extremes(conn)?;
        Ok(cache)
    }

    fn load_validators(&mut self, conn: &Connection) -> Result<(), DbError> {
        let mut stmt = conn.prepare("SELECT id, pubkey FROM validators")?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let id: i64 = row.get(0)?;
            let pk: Vec<u8> = row.get(1)?;
            let pk: [u8; 48] = pk
                .try_into()
                .map_err(|_| DbError::Corrupt(format!("validator {id}: pubkey is not 48 bytes")))?;
            self.validators.insert(pk, id);
        }
        Ok(())
    }

    /// Every validator's extremes, and the rows of each group's recent tier.
    fn load_extremes(&mut self, conn: &Connection) -> Result<(), DbError> {
        let mut stmt = conn
            .prepare("SELECT validator_id, MAX(slot) FROM signed_blocks GROUP BY validator_id")?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let e = self.extremes.entry(row.get(0)?).or_default();
            e.summary.max_block_slot = Some(dec(row.get(1)?));
        }
        // Per-validator tier: in key order, so grouping needs no sort.
        let mut stmt = conn.prepare(
            "SELECT validator_id, MIN(source_epoch), MAX(source_epoch), MIN(target_epoch), MAX(target_epoch)
             FROM signed_attestations GROUP BY validator_id",
        )?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let e = self.extremes.entry(row.get(0)?).or_default();
            *e = e
                .with_attestation(dec(row.get(1)?), dec(row.get(3)?))
                .with_attestation(dec(row.get(2)?), dec(row.get(4)?));
        }
        let mut stmt = conn.prepare(
            "SELECT vgroup, validator_id, source_epoch, target_epoch FROM recent_attestations",
        )?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let e = self.extremes.entry(row.get(1)?).or_default();
            *e = e.with_attestation(dec(row.get(2)?), dec(row.get(3)?));
            self.add_recent(row.get(0)?, 1);
        }
        Ok(())
    }

    /// Counts `n` rows added to `group`'s recent tier.
    fn add_recent(&mut self, group: i64, n: usize) {
        let rows = self.recent_rows.entry(group).or_default();
        *rows += n;
        if *rows >= self.recent_limit {
            self.full_groups.insert(group);
        }
    }

    /// Counts `n` rows gone from `group`'s recent tier (deleted or moved).
    fn remove_recent(&mut self, group: i64, n: usize) {
        let rows = self.recent_rows.entry(group).or_default();
        *rows = rows.saturating_sub(n);
        if *rows < self.recent_limit {
            self.full_groups.remove(&group);
        }
        if *rows == 0 {
            self.recent_rows.remove(&group);
        }
    }
}

pub(crate) fn to_root(v: Vec<u8>) -> Result<[u8; 32], DbError> {
    v.try_into()
        .map_err(|_| DbError::Corrupt("a stored root is not 32 bytes".into()))
}

/// A row limit as an SQL parameter (saturating: no batch is that large).
pub(crate) fn limit_param(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

fn to_stored_root(v: Option<Vec<u8>>) -> Result<StoredRoot, DbError> {
    v.map(to_root).transpose()
}

/// The SQLite backend (see the module docs).
pub(crate) struct SqliteBackend {
    conn: Connection,
    cache: Cache,
    /// The cache may disagree with the database (a transaction did not commit).
    stale: bool,
    path: PathBuf,
}

impl SqliteBackend {
    /// Opens (creating and migrating if needed) the file and takes its exclusive lock.
    /// `recent_rows_per_group`: see [`DEFAULT_RECENT_ROWS_PER_GROUP`] (at least 2).
    pub(crate) fn open(
        path: &Path,
        recent_rows_per_group: usize,
    ) -> Result<SqliteBackend, DbError> {
        let conn = schema::open_connection(path)?;
        let cache = Cache::load(&conn, recent_rows_per_group.max(2))?;
        Ok(SqliteBackend {
            conn,
            cache,
            stale: false,
            path: path.to_path_buf(),
        })
    }
}

impl Backend for SqliteBackend {
    fn begin(&mut self) -> Result<Box<dyn Transaction + '_>, DbError> {
        if self.stale {
            self.cache = Cache::load(&self.conn, self.cache.recent_limit)?;
            self.stale = false;
        }
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        // Until this transaction commits, the cache may run ahead of the database.
        self.stale = true;
        Ok(Box::new(SqliteTx {
            tx,
            cache: &mut self.cache,
            stale: &mut self.stale,
            inserted: 0,
        }))
    }

    fn describe(&self) -> String {
        self.path.display().to_string()
    }

    #[cfg(test)]
    fn execute_raw(&mut self, sql: &str) -> Result<(), DbError> {
        Ok(self.conn.execute_batch(sql)?)
    }
}

struct SqliteTx<'a> {
    tx: rusqlite::Transaction<'a>,
    cache: &'a mut Cache,
    stale: &'a mut bool,
    /// Attestations recorded in this transaction (they set the compaction budget).
    inserted: usize,
}

impl SqliteTx<'_> {
    /// The cached extremes of a validator's records (all `None`: no records).
    fn extremes(&self, vid: ValidatorId) -> Extremes {
        self.cache.extremes.get(&vid).copied().unwrap_or_default()
    }

    /// The validator's newest attestation `(source, target)` if it satisfies `witness`.
    /// A conflicting vote usually conflicts with the newest record, and one point lookup
    /// finds it where a scan would read the rows of the validator's whole group.
    fn newest_if(
        &mut self,
        vid: ValidatorId,
        witness: impl Fn(u64, u64) -> bool,
    ) -> Result<Option<(u64, u64)>, DbError> {
        let Some(target) = self.extremes(vid).summary.max_target else {
            return Ok(None);
        };
        Ok(attestations::at_target(&self.tx, vid, target)?
            .map(|(source, _)| (source, target))
            .filter(|&(source, target)| witness(source, target)))
    }

    /// Recomputes a validator's extremes after a deletion.
    fn refresh_extremes(&mut self, vid: ValidatorId) -> Result<(), DbError> {
        let max_block: Option<i64> = self
            .tx
            .prepare_cached("SELECT MAX(slot) FROM signed_blocks WHERE validator_id = ?1")?
            .query_row(params![vid], |r| r.get(0))?;
        let mut extremes = Extremes::default();
        extremes.summary.max_block_slot = max_block.map(dec);
        if let Some((min_s, max_s, min_t, max_t)) = attestations::bounds(&self.tx, vid)? {
            extremes = extremes
                .with_attestation(min_s, min_t)
                .with_attestation(max_s, max_t);
        }
        if extremes == Extremes::default() {
            self.cache.extremes.remove(&vid);
        } else {
            self.cache.extremes.insert(vid, extremes);
        }
        Ok(())
    }

    /// Deletes attestations of `vid` (through `target`, or all) and refreshes the cache.
    fn delete_attestations(
        &mut self,
        vid: ValidatorId,
        target: Option<u64>,
    ) -> Result<usize, DbError> {
        let deleted = attestations::delete_through(&self.tx, vid, target)?;
        self.cache.remove_recent(group_of(vid), deleted.recent);
        let n = deleted.older + deleted.recent;
        if n > 0 {
            self.refresh_extremes(vid)?;
        }
        Ok(n)
    }

    /// Moves the oldest half of full groups' recent rows to the per-validator tier: at
    /// least as many rows as this transaction recorded, so the recent tier cannot outgrow
    /// its bound under any load, plus one group's half (the backlog of idle periods).
    fn compact(&mut self) -> Result<(), DbError> {
        let half = self.cache.recent_limit / 2;
        let budget = self.inserted + half;
        let mut moved = 0;
        while moved < budget {
            let Some(group) = self.cache.full_groups.first().copied() else {
                break;
            };
            let n = attestations::compact_group(&self.tx, group, half)?;
            if n == 0 {
                // Not full after all (cannot happen with an exact cache): stop retrying it.
                self.cache.full_groups.remove(&group);
            }
            self.cache.remove_recent(group, n);
            moved += n;
        }
        Ok(())
    }
}

impl Transaction for SqliteTx<'_> {
    fn commit(mut self: Box<Self>) -> Result<(), DbError> {
        self.compact()?;
        let SqliteTx { tx, stale, .. } = *self;
        tx.commit()?;
        *stale = false;
        Ok(())
    }
}

impl Records for SqliteTx<'_> {
    fn meta(&mut self) -> Result<Meta, DbError> {
        Ok(self.cache.meta)
    }

    fn bind_gvr(&mut self, gvr: &[u8; 32]) -> Result<(), DbError> {
        self.tx
            .prepare_cached("UPDATE meta SET genesis_validators_root = ?1 WHERE id = 0")?
            .execute(params![&gvr[..]])?;
        self.cache.meta.gvr = Some(*gvr);
        Ok(())
    }

    fn set_high_watermark(&mut self, slot: Option<u64>, epoch: Option<u64>) -> Result<(), DbError> {
        self.tx.execute(
            "UPDATE meta SET high_watermark_slot = ?1, high_watermark_epoch = ?2 WHERE id = 0",
            params![slot.map(enc), epoch.map(enc)],
        )?;
        self.cache.meta.hw_slot = slot;
        self.cache.meta.hw_epoch = epoch;
        Ok(())
    }

    fn find_validator(&mut self, pubkey: &[u8; 48]) -> Result<Option<ValidatorId>, DbError> {
        Ok(self.cache.validators.get(pubkey).copied())
    }

    fn register_validator(&mut self, pubkey: &[u8; 48]) -> Result<ValidatorId, DbError> {
        if let Some(id) = self.cache.validators.get(pubkey) {
            return Ok(*id);
        }
        self.tx
            .prepare_cached("INSERT INTO validators (pubkey) VALUES (?1)")?
            .execute(params![&pubkey[..]])?;
        let id = self.tx.last_insert_rowid();
        self.cache.validators.insert(*pubkey, id);
        Ok(id)
    }

    fn validators(&mut self) -> Result<Vec<(ValidatorId, [u8; 48])>, DbError> {
        let mut all: Vec<(ValidatorId, [u8; 48])> = self
            .cache
            .validators
            .iter()
            .map(|(pk, id)| (*id, *pk))
            .collect();
        all.sort_unstable_by_key(|(id, _)| *id);
        Ok(all)
    }

    fn summary(&mut self, vid: ValidatorId) -> Result<Summary, DbError> {
        Ok(self
            .cache
            .extremes
            .get(&vid)
            .map(|e| e.summary)
            .unwrap_or_default())
    }

    fn block_at(&mut self, vid: ValidatorId, slot: u64) -> Result<Option<StoredRoot>, DbError> {
        let found: Option<Option<Vec<u8>>> = self
            .tx
            .prepare_cached(
                "SELECT signing_root FROM signed_blocks WHERE validator_id = ?1 AND slot = ?2",
            )?
            .query_row(params![vid, enc(slot)], |r| r.get(0))
            .optional()?;
        found.map(to_stored_root).transpose()
    }

    fn lowest_block_slot(&mut self, vid: ValidatorId) -> Result<Option<u64>, DbError> {
        let lowest: Option<i64> = self
            .tx
            .prepare_cached("SELECT MIN(slot) FROM signed_blocks WHERE validator_id = ?1")?
            .query_row(params![vid], |r| r.get(0))?;
        Ok(lowest.map(dec))
    }

    fn blocks(&mut self, vid: ValidatorId) -> Result<Vec<(u64, StoredRoot)>, DbError> {
        let mut stmt = self.tx.prepare_cached(
            "SELECT slot, signing_root FROM signed_blocks WHERE validator_id = ?1 ORDER BY slot",
        )?;
        let mut rows = stmt.query(params![vid])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            out.push((dec(row.get(0)?), to_stored_root(row.get(1)?)?));
        }
        Ok(out)
    }

    fn insert_block(
        &mut self,
        vid: ValidatorId,
        slot: u64,
        root: StoredRoot,
    ) -> Result<(), DbError> {
        self.tx
            .prepare_cached(
                "INSERT INTO signed_blocks (validator_id, slot, signing_root) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![vid, enc(slot), root.as_ref().map(|r| &r[..])])?;
        let e = self.cache.extremes.entry(vid).or_default();
        e.summary = e.summary.with_block(slot);
        Ok(())
    }

    fn oldest_blocks(
        &mut self,
        vid: ValidatorId,
        below_slot: u64,
        limit: usize,
    ) -> Result<Option<PruneRange>, DbError> {
        let (count, highest): (i64, Option<i64>) = self
            .tx
            .prepare_cached(
                "SELECT COUNT(*), MAX(slot) FROM (
                     SELECT slot FROM signed_blocks
                     WHERE validator_id = ?1 AND slot < ?2 ORDER BY slot LIMIT ?3)",
            )?
            .query_row(params![vid, enc(below_slot), limit_param(limit)], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?;
        Ok(prune_range(count, highest.map(dec), None))
    }

    fn delete_blocks_below(&mut self, vid: ValidatorId, slot: u64) -> Result<usize, DbError> {
        let n = self
            .tx
            .prepare_cached("DELETE FROM signed_blocks WHERE validator_id = ?1 AND slot < ?2")?
            .execute(params![vid, enc(slot)])?;
        if n > 0 {
            self.refresh_extremes(vid)?;
        }
        Ok(n)
    }

    fn delete_all_blocks(&mut self, vid: ValidatorId) -> Result<(), DbError> {
        self.tx
            .prepare_cached("DELETE FROM signed_blocks WHERE validator_id = ?1")?
            .execute(params![vid])?;
        self.refresh_extremes(vid)
    }

    fn attestation_at_target(
        &mut self,
        vid: ValidatorId,
        target: u64,
    ) -> Result<Option<(u64, StoredRoot)>, DbError> {
        attestations::at_target(&self.tx, vid, target)
    }

    fn record_surrounding(
        &mut self,
        vid: ValidatorId,
        s: u64,
        t: u64,
    ) -> Result<Option<(u64, u64)>, DbError> {
        if !self.extremes(vid).may_hold_surrounding(s, t) {
            return Ok(None);
        }
        if let Some(found) = self.newest_if(vid, |source, target| source < s && target > t)? {
            return Ok(Some(found));
        }
        attestations::surrounding(&self.tx, vid, s, t)
    }

    fn record_surrounded(
        &mut self,
        vid: ValidatorId,
        s: u64,
        t: u64,
    ) -> Result<Option<(u64, u64)>, DbError> {
        if !self.extremes(vid).may_hold_surrounded(s, t) {
            return Ok(None);
        }
        if let Some(found) = self.newest_if(vid, |source, target| source > s && target < t)? {
            return Ok(Some(found));
        }
        attestations::surrounded(&self.tx, vid, s, t)
    }

    fn lowest_source_and_target(
        &mut self,
        vid: ValidatorId,
    ) -> Result<(Option<u64>, Option<u64>), DbError> {
        let e = self.extremes(vid);
        Ok((e.lowest_source, e.lowest_target))
    }

    fn attestations(&mut self, vid: ValidatorId) -> Result<Vec<(u64, u64, StoredRoot)>, DbError> {
        attestations::all(&self.tx, vid)
    }

    fn attestation_root(
        &mut self,
        vid: ValidatorId,
        source: u64,
        target: u64,
    ) -> Result<Option<StoredRoot>, DbError> {
        attestations::root_of(&self.tx, vid, source, target)
    }

    fn insert_attestation(
        &mut self,
        vid: ValidatorId,
        source: u64,
        target: u64,
        root: StoredRoot,
    ) -> Result<(), DbError> {
        attestations::insert(&self.tx, vid, source, target, root)?;
        self.inserted += 1;
        self.cache.add_recent(group_of(vid), 1);
        let e = self.cache.extremes.entry(vid).or_default();
        *e = e.with_attestation(source, target);
        Ok(())
    }

    fn oldest_attestations(
        &mut self,
        vid: ValidatorId,
        below_target: u64,
        limit: usize,
    ) -> Result<Option<PruneRange>, DbError> {
        attestations::oldest(&self.tx, vid, below_target, limit)
    }

    fn attestation_below_source_above_target(
        &mut self,
        vid: ValidatorId,
        source: u64,
        target: u64,
    ) -> Result<bool, DbError> {
        // Source below and target above: a record surrounding `source -> target`.
        Ok(attestations::surrounding(&self.tx, vid, source, target)?.is_some())
    }

    fn delete_attestations_through(
        &mut self,
        vid: ValidatorId,
        target: u64,
    ) -> Result<usize, DbError> {
        self.delete_attestations(vid, Some(target))
    }

    fn delete_all_attestations(&mut self, vid: ValidatorId) -> Result<(), DbError> {
        self.delete_attestations(vid, None).map(|_| ())
    }
}

#[cfg(test)]
mod tests;
