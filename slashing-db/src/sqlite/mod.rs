//! The SQLite backend: one file, opened with an exclusive lock (this process is the only
//! writer), so the in-memory [`Cache`] (validator ids, the genesis binding, the kill switch
//! and every validator's [`Summary`]) is authoritative. It is reloaded after any
//! transaction that did not commit, so it never holds anything uncommitted.

pub(crate) mod schema;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use crate::error::DbError;
use crate::records::{
    prune_range, Backend, Meta, PruneRange, Records, StoredRoot, Summary, Transaction, ValidatorId,
};
use schema::{dec, enc};

/// State mirrored from the database.
#[derive(Debug, Default)]
struct Cache {
    /// pubkey -> validators.id
    validators: HashMap<[u8; 48], ValidatorId>,
    /// validators.id -> maxima of its records (absent: no records).
    summaries: HashMap<ValidatorId, Summary>,
    meta: Meta,
}

impl Cache {
    /// Reads the cached state from the database.
    fn load(conn: &Connection) -> Result<Cache, DbError> {
        let (gvr, hw_slot, hw_epoch): (Option<Vec<u8>>, Option<i64>, Option<i64>) = conn
            .query_row(
                "SELECT genesis_validators_root, high_watermark_slot, high_watermark_epoch FROM meta WHERE id = 0",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )?;
        let meta = Meta {
            gvr: gvr.map(to_root).transpose()?,
            hw_slot: hw_slot.map(dec),
            hw_epoch: hw_epoch.map(dec),
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
        let mut summaries: HashMap<ValidatorId, Summary> = HashMap::new();
        let mut stmt = conn
            .prepare("SELECT validator_id, MAX(slot) FROM signed_blocks GROUP BY validator_id")?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let vid: i64 = row.get(0)?;
            let max: i64 = row.get(1)?;
            summaries.entry(vid).or_default().max_block_slot = Some(dec(max));
        }
        let mut stmt = conn.prepare(
            "SELECT validator_id, MAX(source_epoch), MAX(target_epoch) FROM signed_attestations GROUP BY validator_id",
        )?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let vid: i64 = row.get(0)?;
            let s = summaries.entry(vid).or_default();
            s.max_source = Some(dec(row.get(1)?));
            s.max_target = Some(dec(row.get(2)?));
        }
        Ok(Cache {
            validators,
            summaries,
            meta,
        })
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
    pub(crate) fn open(path: &Path) -> Result<SqliteBackend, DbError> {
        let conn = schema::open_connection(path)?;
        let cache = Cache::load(&conn)?;
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
            self.cache = Cache::load(&self.conn)?;
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
}

impl SqliteTx<'_> {
    /// Recomputes a validator's summary after a deletion.
    fn refresh_summary(&mut self, vid: ValidatorId) -> Result<(), DbError> {
        let max_block: Option<i64> = self
            .tx
            .prepare_cached("SELECT MAX(slot) FROM signed_blocks WHERE validator_id = ?1")?
            .query_row(params![vid], |r| r.get(0))?;
        let (s, t): (Option<i64>, Option<i64>) = self
            .tx
            .prepare_cached(
                "SELECT MAX(source_epoch), MAX(target_epoch) FROM signed_attestations WHERE validator_id = ?1",
            )?
            .query_row(params![vid], |r| Ok((r.get(0)?, r.get(1)?)))?;
        let summary = Summary {
            max_block_slot: max_block.map(dec),
            max_source: s.map(dec),
            max_target: t.map(dec),
        };
        if summary == Summary::default() {
            self.cache.summaries.remove(&vid);
        } else {
            self.cache.summaries.insert(vid, summary);
        }
        Ok(())
    }
}

impl Transaction for SqliteTx<'_> {
    fn commit(self: Box<Self>) -> Result<(), DbError> {
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
        Ok(self.cache.summaries.get(&vid).copied().unwrap_or_default())
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
        let summary = self.cache.summaries.entry(vid).or_default();
        *summary = summary.with_block(slot);
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
            self.refresh_summary(vid)?;
        }
        Ok(n)
    }

    fn delete_all_blocks(&mut self, vid: ValidatorId) -> Result<(), DbError> {
        self.tx
            .prepare_cached("DELETE FROM signed_blocks WHERE validator_id = ?1")?
            .execute(params![vid])?;
        self.refresh_summary(vid)
    }

    fn attestation_at_target(
        &mut self,
        vid: ValidatorId,
        target: u64,
    ) -> Result<Option<(u64, StoredRoot)>, DbError> {
        let found: Option<(i64, Option<Vec<u8>>)> = self
            .tx
            .prepare_cached(
                "SELECT source_epoch, signing_root FROM signed_attestations WHERE validator_id = ?1 AND target_epoch = ?2",
            )?
            .query_row(params![vid, enc(target)], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        found
            .map(|(s, root)| Ok((dec(s), to_stored_root(root)?)))
            .transpose()
    }

    fn record_surrounding(
        &mut self,
        vid: ValidatorId,
        s: u64,
        t: u64,
    ) -> Result<Option<(u64, u64)>, DbError> {
        // Driven by the target (few records lie above a new target); the unary `+` keeps
        // SQLite off the source index for this query.
        let found: Option<(i64, i64)> = self
            .tx
            .prepare_cached(
                "SELECT source_epoch, target_epoch FROM signed_attestations
                 WHERE validator_id = ?1 AND target_epoch > ?3 AND +source_epoch < ?2 LIMIT 1",
            )?
            .query_row(params![vid, enc(s), enc(t)], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        Ok(found.map(|(s, t)| (dec(s), dec(t))))
    }

    fn record_surrounded(
        &mut self,
        vid: ValidatorId,
        s: u64,
        t: u64,
    ) -> Result<Option<(u64, u64)>, DbError> {
        let found: Option<(i64, i64)> = self
            .tx
            .prepare_cached(
                "SELECT source_epoch, target_epoch FROM signed_attestations INDEXED BY signed_attestations_by_source
                 WHERE validator_id = ?1 AND source_epoch > ?2 AND +target_epoch < ?3 LIMIT 1",
            )?
            .query_row(params![vid, enc(s), enc(t)], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        Ok(found.map(|(s, t)| (dec(s), dec(t))))
    }

    fn lowest_source_and_target(
        &mut self,
        vid: ValidatorId,
    ) -> Result<(Option<u64>, Option<u64>), DbError> {
        let lowest_source: Option<i64> = self
            .tx
            .prepare_cached(
                "SELECT MIN(source_epoch) FROM signed_attestations INDEXED BY signed_attestations_by_source WHERE validator_id = ?1",
            )?
            .query_row(params![vid], |r| r.get(0))?;
        let lowest_target: Option<i64> = self
            .tx
            .prepare_cached(
                "SELECT MIN(target_epoch) FROM signed_attestations WHERE validator_id = ?1",
            )?
            .query_row(params![vid], |r| r.get(0))?;
        Ok((lowest_source.map(dec), lowest_target.map(dec)))
    }

    fn attestations(&mut self, vid: ValidatorId) -> Result<Vec<(u64, u64, StoredRoot)>, DbError> {
        let mut stmt = self.tx.prepare_cached(
            "SELECT source_epoch, target_epoch, signing_root FROM signed_attestations WHERE validator_id = ?1 ORDER BY target_epoch",
        )?;
        let mut rows = stmt.query(params![vid])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            out.push((
                dec(row.get(0)?),
                dec(row.get(1)?),
                to_stored_root(row.get(2)?)?,
            ));
        }
        Ok(out)
    }

    fn attestation_root(
        &mut self,
        vid: ValidatorId,
        source: u64,
        target: u64,
    ) -> Result<Option<StoredRoot>, DbError> {
        let found: Option<Option<Vec<u8>>> = self
            .tx
            .prepare_cached(
                "SELECT signing_root FROM signed_attestations WHERE validator_id = ?1 AND target_epoch = ?2 AND source_epoch = ?3",
            )?
            .query_row(params![vid, enc(target), enc(source)], |r| r.get(0))
            .optional()?;
        found.map(to_stored_root).transpose()
    }

    fn insert_attestation(
        &mut self,
        vid: ValidatorId,
        source: u64,
        target: u64,
        root: StoredRoot,
    ) -> Result<(), DbError> {
        self.tx
            .prepare_cached(
                "INSERT INTO signed_attestations (validator_id, source_epoch, target_epoch, signing_root) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![
                vid,
                enc(source),
                enc(target),
                root.as_ref().map(|r| &r[..])
            ])?;
        let summary = self.cache.summaries.entry(vid).or_default();
        *summary = summary.with_attestation(source, target);
        Ok(())
    }

    fn oldest_attestations(
        &mut self,
        vid: ValidatorId,
        below_target: u64,
        limit: usize,
    ) -> Result<Option<PruneRange>, DbError> {
        let (count, highest, highest_source): (i64, Option<i64>, Option<i64>) = self
            .tx
            .prepare_cached(
                "SELECT COUNT(*), MAX(target_epoch), MAX(source_epoch) FROM (
                     SELECT target_epoch, source_epoch FROM signed_attestations
                     WHERE validator_id = ?1 AND target_epoch < ?2 ORDER BY target_epoch LIMIT ?3)",
            )?
            .query_row(params![vid, enc(below_target), limit_param(limit)], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?;
        Ok(prune_range(
            count,
            highest.map(dec),
            highest_source.map(dec),
        ))
    }

    fn attestation_below_source_above_target(
        &mut self,
        vid: ValidatorId,
        source: u64,
        target: u64,
    ) -> Result<bool, DbError> {
        // Driven by the source index: only the records below `source` are read (the ones
        // about to be pruned, in a consistent history).
        Ok(self
            .tx
            .prepare_cached(
                "SELECT 1 FROM signed_attestations INDEXED BY signed_attestations_by_source
                 WHERE validator_id = ?1 AND source_epoch < ?2 AND +target_epoch > ?3 LIMIT 1",
            )?
            .query_row(params![vid, enc(source), enc(target)], |_| Ok(()))
            .optional()?
            .is_some())
    }

    fn delete_attestations_through(
        &mut self,
        vid: ValidatorId,
        target: u64,
    ) -> Result<usize, DbError> {
        let n = self
            .tx
            .prepare_cached(
                "DELETE FROM signed_attestations WHERE validator_id = ?1 AND target_epoch <= ?2",
            )?
            .execute(params![vid, enc(target)])?;
        if n > 0 {
            self.refresh_summary(vid)?;
        }
        Ok(n)
    }

    fn delete_all_attestations(&mut self, vid: ValidatorId) -> Result<(), DbError> {
        self.tx
            .prepare_cached("DELETE FROM signed_attestations WHERE validator_id = ?1")?
            .execute(params![vid])?;
        self.refresh_summary(vid)
    }
}
