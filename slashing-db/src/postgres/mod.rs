//! The PostgreSQL backend: several keyguard instances share one database.
//!
//! * One connection, owned by the writer thread (the sync `postgres` client, mirroring the
//!   SQLite writer). A dead connection is dropped and a new one opened on the next batch
//!   or idle probe; while none can be made every request is refused and health is DOWN.
//! * Every connection is checked before use: `synchronous_commit` must not be `off`
//!   (unless the operator accepted it), and the schema is migrated (or refused if newer).
//! * A batch of sign requests is one READ COMMITTED transaction. Its first message
//!   (`BEGIN`, then `SELECT … ORDER BY pubkey FOR UPDATE` on the batch's validators, then
//!   one statement reading the genesis binding, the kill switch and every validator's
//!   maxima, in a fresh snapshot taken after the locks are held) is one round trip; the
//!   decisions are then made in memory from those maxima (the common case) or from
//!   history queries; the records are inserted and committed in a second message. Row
//!   locks are taken in one global order (by pubkey), so batches of different instances
//!   cannot deadlock on them; a deadlock or serialization failure anywhere else rolls
//!   the whole batch back and the writer retries it. Anything that touches a validator's
//!   records locks its row first, so its maxima cannot change under a batch.
//! * A request is answered only from a transaction whose COMMIT returned; if the
//!   connection fails during COMMIT the outcome is unknown and the request is refused
//!   (a retry of the same signing root is then allowed by the same-root rule either way).

mod schema;
pub(crate) mod tls;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::Duration;

use postgres::types::ToSql;
use postgres::{Client, NoTls, SimpleQueryMessage, Statement};
use zeroize::Zeroizing;

use crate::error::DbError;
use crate::location::{PostgresLocation, PostgresTls};
use crate::records::{
    prune_range, Backend, Meta, PruneRange, Records, StoredRoot, Summary, Transaction, ValidatorId,
};
use crate::sqlite::limit_param;
use crate::sqlite::schema::{dec, enc};

/// How long a connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// An open, checked connection with its prepared statements.
struct Connection {
    client: Client,
    statements: HashMap<&'static str, Statement>,
    /// A rollback failed: the session state is unknown, reconnect before the next use.
    broken: bool,
}

impl Connection {
    fn statement(&mut self, sql: &'static str) -> Result<Statement, DbError> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let s = self.client.prepare(sql)?;
        self.statements.insert(sql, s.clone());
        Ok(s)
    }

    fn usable(&self) -> bool {
        !self.broken && !self.client.is_closed()
    }
}

/// The PostgreSQL backend (see the module docs).
pub(crate) struct PostgresBackend {
    location: PostgresLocation,
    password: Option<Zeroizing<String>>,
    allow_async_commit: bool,
    conn: Option<Connection>,
}

impl PostgresBackend {
    /// Connects, checks durability and migrates: a database that cannot be used fails
    /// here, at start-up.
    pub(crate) fn open(
        location: PostgresLocation,
        password: Option<Zeroizing<String>>,
        allow_async_commit: bool,
    ) -> Result<PostgresBackend, DbError> {
        let mut backend = PostgresBackend {
            location,
            password,
            allow_async_commit,
            conn: None,
        };
        backend.connection()?;
        Ok(backend)
    }

    fn unavailable(&self, message: String) -> DbError {
        DbError::Unavailable {
            location: self.location.to_string(),
            message,
        }
    }

    fn connect(&self) -> Result<Connection, DbError> {
        let mut config = self.location.config.clone();
        if let Some(password) = &self.password {
            config.password(password.as_bytes());
        }
        config
            .connect_timeout(CONNECT_TIMEOUT)
            .application_name("keyguard")
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(10))
            .keepalives_interval(Duration::from_secs(2))
            .keepalives_retries(3)
            .tcp_user_timeout(Duration::from_secs(15));
        let connected = match &self.location.tls {
            PostgresTls::Disable => config.connect(NoTls),
            PostgresTls::VerifyFull { ca_file } => {
                let connector =
                    tls::RustlsConnector::from_ca_file(ca_file).map_err(|e| self.unavailable(e))?;
                config.ssl_mode(postgres::config::SslMode::Require);
                config.connect(connector)
            }
        };
        let mut client = connected.map_err(|e| self.unavailable(connect_error(&e)))?;
        let actual: String = client
            .query_one("SHOW synchronous_commit", &[])?
            .try_get(0)?;
        if actual.eq_ignore_ascii_case("off") {
            if !self.allow_async_commit {
                return Err(DbError::AsyncCommit {
                    location: self.location.to_string(),
                    actual,
                });
            }
            tracing::warn!(
                database = %self.location,
                "synchronous_commit is off and slashing.allow_async_commit accepts it: a \
                 PostgreSQL crash can lose records of signatures already returned"
            );
        }
        schema::migrate(&mut client, &self.location.to_string())?;
        Ok(Connection {
            client,
            statements: HashMap::new(),
            broken: false,
        })
    }

    /// The live connection, reconnecting if the last one died.
    fn connection(&mut self) -> Result<&mut Connection, DbError> {
        if self.conn.as_ref().is_some_and(|c| !c.usable()) {
            tracing::warn!(database = %self.location, "slashing database connection lost; reconnecting");
            self.conn = None;
        }
        let conn = match self.conn.take() {
            Some(c) => c,
            None => self.connect()?,
        };
        Ok(self.conn.insert(conn))
    }
}

/// A connection error without anything the URL could have contributed but the host.
fn connect_error(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => e.to_string(),
    }
}

impl Backend for PostgresBackend {
    fn begin(&mut self) -> Result<Box<dyn Transaction + '_>, DbError> {
        let conn = self.connection()?;
        Ok(Box::new(PgTx {
            conn,
            begun: false,
            done: false,
            meta: None,
            ids: HashMap::new(),
            summaries: HashMap::new(),
            pending_blocks: Vec::new(),
            pending_attestations: Vec::new(),
        }))
    }

    fn locks_rows(&self) -> bool {
        true
    }

    fn probe(&mut self) -> Option<Result<(), DbError>> {
        let result = self
            .connection()
            .and_then(|c| c.client.is_valid(CONNECT_TIMEOUT).map_err(DbError::from));
        if result.is_err() {
            self.conn = None;
        }
        Some(result)
    }

    fn describe(&self) -> String {
        self.location.to_string()
    }

    #[cfg(test)]
    fn execute_raw(&mut self, sql: &str) -> Result<(), DbError> {
        Ok(self.connection()?.client.batch_execute(sql)?)
    }
}

/// One transaction. `BEGIN` is sent with the first statement, and the records of a batch
/// are buffered and sent with `COMMIT` (see the module docs).
struct PgTx<'a> {
    conn: &'a mut Connection,
    begun: bool,
    done: bool,
    meta: Option<Meta>,
    ids: HashMap<[u8; 48], ValidatorId>,
    summaries: HashMap<ValidatorId, Summary>,
    pending_blocks: Vec<(ValidatorId, u64, StoredRoot)>,
    pending_attestations: Vec<(ValidatorId, u64, u64, StoredRoot)>,
}

impl Drop for PgTx<'_> {
    fn drop(&mut self) {
        if self.begun && !self.done && self.conn.client.batch_execute("ROLLBACK").is_err() {
            self.conn.broken = true;
        }
    }
}

/// `decode('<hex>','hex')`: bytes as an SQL literal (hex digits only, nothing to escape).
fn bytea_literal(out: &mut String, bytes: &[u8]) {
    let _ = write!(out, "decode('{}','hex')", hex::encode(bytes));
}

fn root_literal(out: &mut String, root: &StoredRoot) {
    match root {
        Some(r) => bytea_literal(out, r),
        None => out.push_str("NULL"),
    }
}

fn parse_i64(v: Option<&str>) -> Result<Option<i64>, DbError> {
    v.map(|s| {
        s.parse::<i64>()
            .map_err(|_| DbError::Corrupt(format!("not an integer: {s:?}")))
    })
    .transpose()
}

fn parse_hex<const N: usize>(v: &str) -> Result<[u8; N], DbError> {
    let bytes =
        hex::decode(v).map_err(|_| DbError::Corrupt(format!("bad hex from server: {v:?}")))?;
    bytes
        .try_into()
        .map_err(|_| DbError::Corrupt(format!("a stored value is not {N} bytes")))
}

fn to_root(v: Option<Vec<u8>>) -> Result<StoredRoot, DbError> {
    v.map(|b| {
        b.try_into()
            .map_err(|_| DbError::Corrupt("a stored root is not 32 bytes".into()))
    })
    .transpose()
}

impl PgTx<'_> {
    fn ensure_begun(&mut self) -> Result<(), DbError> {
        if !self.begun {
            self.conn.client.batch_execute("BEGIN")?;
            self.begun = true;
        }
        Ok(())
    }

    /// The buffered records as INSERT statements (empty if none).
    fn pending_sql(&self) -> String {
        let mut sql = String::new();
        if !self.pending_blocks.is_empty() {
            sql.push_str(
                "INSERT INTO keyguard_signed_blocks (validator_id, slot, signing_root) VALUES ",
            );
            for (i, (vid, slot, root)) in self.pending_blocks.iter().enumerate() {
                let _ = write!(
                    sql,
                    "{}({vid},{},",
                    if i > 0 { "," } else { "" },
                    enc(*slot)
                );
                root_literal(&mut sql, root);
                sql.push(')');
            }
            sql.push(';');
        }
        if !self.pending_attestations.is_empty() {
            sql.push_str("INSERT INTO keyguard_signed_attestations (validator_id, source_epoch, target_epoch, signing_root) VALUES ");
            for (i, (vid, s, t, root)) in self.pending_attestations.iter().enumerate() {
                let _ = write!(
                    sql,
                    "{}({vid},{},{},",
                    if i > 0 { "," } else { "" },
                    enc(*s),
                    enc(*t)
                );
                root_literal(&mut sql, root);
                sql.push(')');
            }
            sql.push(';');
        }
        sql
    }

    /// Sends the buffered records (reads after this see them).
    fn flush(&mut self) -> Result<(), DbError> {
        if self.pending_blocks.is_empty() && self.pending_attestations.is_empty() {
            return Ok(());
        }
        self.ensure_begun()?;
        let sql = self.pending_sql();
        self.conn.client.batch_execute(&sql)?;
        self.pending_blocks.clear();
        self.pending_attestations.clear();
        Ok(())
    }

    fn query(
        &mut self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<postgres::Row>, DbError> {
        self.flush()?;
        self.ensure_begun()?;
        let stmt = self.conn.statement(sql)?;
        Ok(self.conn.client.query(&stmt, params)?)
    }

    fn execute(
        &mut self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, DbError> {
        self.flush()?;
        self.ensure_begun()?;
        let stmt = self.conn.statement(sql)?;
        Ok(self.conn.client.execute(&stmt, params)?)
    }

    fn forget_summary(&mut self, vid: ValidatorId) {
        self.summaries.remove(&vid);
    }
}

impl Transaction for PgTx<'_> {
    fn commit(mut self: Box<Self>) -> Result<(), DbError> {
        if !self.begun && self.pending_blocks.is_empty() && self.pending_attestations.is_empty() {
            self.done = true;
            return Ok(());
        }
        let mut sql = String::new();
        if !self.begun {
            sql.push_str("BEGIN;");
            self.begun = true;
        }
        sql.push_str(&self.pending_sql());
        sql.push_str("COMMIT");
        let result = self.conn.client.batch_execute(&sql);
        // Whatever happened, do not send ROLLBACK after a COMMIT that may have run: a
        // failed statement before it leaves the session in an aborted transaction, which
        // the next BEGIN would warn about, so the connection is re-made instead.
        self.done = true;
        if result.is_err() {
            self.conn.broken = true;
        }
        Ok(result?)
    }
}

impl Records for PgTx<'_> {
    fn lock_validators(&mut self, pubkeys: &[[u8; 48]]) -> Result<(), DbError> {
        if pubkeys.is_empty() {
            return Ok(());
        }
        self.flush()?;
        let mut list = String::new();
        for (i, pk) in pubkeys.iter().enumerate() {
            if i > 0 {
                list.push(',');
            }
            bytea_literal(&mut list, pk);
        }
        let mut sql = String::new();
        if !self.begun {
            sql.push_str("BEGIN;");
        }
        let _ = write!(
            sql,
            "SELECT encode(pubkey, 'hex') FROM keyguard_validators WHERE pubkey IN ({list}) ORDER BY pubkey FOR UPDATE;
             SELECT encode(m.genesis_validators_root, 'hex'), m.high_watermark_slot, m.high_watermark_epoch,
                    x.id, encode(x.pubkey, 'hex'), x.mb, x.ms, x.mt
             FROM keyguard_meta m LEFT JOIN LATERAL (
                 SELECT v.id, v.pubkey,
                   (SELECT max(b.slot) FROM keyguard_signed_blocks b WHERE b.validator_id = v.id) AS mb,
                   (SELECT max(a.source_epoch) FROM keyguard_signed_attestations a WHERE a.validator_id = v.id) AS ms,
                   (SELECT max(a.target_epoch) FROM keyguard_signed_attestations a WHERE a.validator_id = v.id) AS mt
                 FROM keyguard_validators v WHERE v.pubkey IN ({list})
             ) x ON true
             WHERE m.id = 0"
        );
        self.begun = true;
        let messages = self.conn.client.simple_query(&sql)?;
        // Only the rows the first statement locked may be decided from the summary read
        // here. A validator another instance registers meanwhile (invisible to the
        // locking statement, committed before the second one) is not locked by this
        // transaction: it goes through `register_validator`, which locks it and reads its
        // summary again, or two instances could decide on it at once.
        let mut locked = std::collections::HashSet::new();
        for message in &messages {
            if let SimpleQueryMessage::Row(row) = message {
                if row.len() == 1 {
                    if let Some(pk) = row.get(0) {
                        locked.insert(pk.to_owned());
                    }
                }
            }
        }
        for message in &messages {
            let SimpleQueryMessage::Row(row) = message else {
                continue;
            };
            if row.len() != 8 {
                continue; // a row of the locking statement
            }
            self.meta = Some(Meta {
                gvr: row.get(0).map(parse_hex::<32>).transpose()?,
                hw_slot: parse_i64(row.get(1))?.map(dec),
                hw_epoch: parse_i64(row.get(2))?.map(dec),
            });
            if let (Some(id), Some(pk)) = (parse_i64(row.get(3))?, row.get(4)) {
                if !locked.contains(pk) {
                    continue;
                }
                self.ids.insert(parse_hex::<48>(pk)?, id);
                self.summaries.insert(
                    id,
                    Summary {
                        max_block_slot: parse_i64(row.get(5))?.map(dec),
                        max_source: parse_i64(row.get(6))?.map(dec),
                        max_target: parse_i64(row.get(7))?.map(dec),
                    },
                );
            }
        }
        Ok(())
    }

    fn meta(&mut self) -> Result<Meta, DbError> {
        if let Some(meta) = self.meta {
            return Ok(meta);
        }
        let rows = self.query(
            "SELECT genesis_validators_root, high_watermark_slot, high_watermark_epoch FROM keyguard_meta WHERE id = 0",
            &[],
        )?;
        let row = rows
            .first()
            .ok_or_else(|| DbError::Corrupt("keyguard_meta has no row".into()))?;
        let gvr: Option<Vec<u8>> = row.try_get(0)?;
        let meta = Meta {
            gvr: to_root(gvr)?,
            hw_slot: row.try_get::<_, Option<i64>>(1)?.map(dec),
            hw_epoch: row.try_get::<_, Option<i64>>(2)?.map(dec),
        };
        self.meta = Some(meta);
        Ok(meta)
    }

    fn bind_gvr(&mut self, gvr: &[u8; 32]) -> Result<(), DbError> {
        let bound = self.execute(
            "UPDATE keyguard_meta SET genesis_validators_root = $1 WHERE id = 0 AND genesis_validators_root IS NULL",
            &[&&gvr[..]],
        )?;
        if bound == 0 {
            // Another instance bound it since this transaction read it: start over.
            return Err(DbError::Conflict(
                "the genesis validators root was bound concurrently".into(),
            ));
        }
        let mut meta = self.meta()?;
        meta.gvr = Some(*gvr);
        self.meta = Some(meta);
        Ok(())
    }

    fn set_high_watermark(&mut self, slot: Option<u64>, epoch: Option<u64>) -> Result<(), DbError> {
        let (s, e) = (slot.map(enc), epoch.map(enc));
        self.execute(
            "UPDATE keyguard_meta SET high_watermark_slot = $1, high_watermark_epoch = $2 WHERE id = 0",
            &[&s, &e],
        )?;
        let mut meta = self.meta()?;
        meta.hw_slot = slot;
        meta.hw_epoch = epoch;
        self.meta = Some(meta);
        Ok(())
    }

    fn find_validator(&mut self, pubkey: &[u8; 48]) -> Result<Option<ValidatorId>, DbError> {
        if let Some(id) = self.ids.get(pubkey) {
            return Ok(Some(*id));
        }
        let rows = self.query(
            "SELECT id FROM keyguard_validators WHERE pubkey = $1",
            &[&&pubkey[..]],
        )?;
        rows.first()
            .map(|r| r.try_get(0))
            .transpose()
            .map_err(DbError::from)
    }

    fn register_validator(&mut self, pubkey: &[u8; 48]) -> Result<ValidatorId, DbError> {
        if let Some(id) = self.ids.get(pubkey) {
            return Ok(*id);
        }
        let inserted = self.query(
            "INSERT INTO keyguard_validators (pubkey) VALUES ($1) ON CONFLICT (pubkey) DO NOTHING RETURNING id",
            &[&&pubkey[..]],
        )?;
        let id: i64 = match inserted.first() {
            Some(row) => {
                let id = row.try_get(0)?;
                // New in this transaction: no records yet.
                self.summaries.insert(id, Summary::default());
                id
            }
            None => {
                let rows = self.query(
                    "SELECT id FROM keyguard_validators WHERE pubkey = $1 FOR UPDATE",
                    &[&&pubkey[..]],
                )?;
                rows.first()
                    .ok_or_else(|| DbError::Corrupt("a registered validator vanished".into()))?
                    .try_get(0)?
            }
        };
        self.ids.insert(*pubkey, id);
        Ok(id)
    }

    fn validators(&mut self) -> Result<Vec<(ValidatorId, [u8; 48])>, DbError> {
        let rows = self.query(
            "SELECT id, pubkey FROM keyguard_validators ORDER BY id",
            &[],
        )?;
        rows.iter()
            .map(|r| {
                let id: i64 = r.try_get(0)?;
                let pk: Vec<u8> = r.try_get(1)?;
                let pk: [u8; 48] = pk.try_into().map_err(|_| {
                    DbError::Corrupt(format!("validator {id}: pubkey is not 48 bytes"))
                })?;
                Ok((id, pk))
            })
            .collect()
    }

    fn summary(&mut self, vid: ValidatorId) -> Result<Summary, DbError> {
        if let Some(s) = self.summaries.get(&vid) {
            return Ok(*s);
        }
        let rows = self.query(
            "SELECT (SELECT max(slot) FROM keyguard_signed_blocks WHERE validator_id = $1),
                    (SELECT max(source_epoch) FROM keyguard_signed_attestations WHERE validator_id = $1),
                    (SELECT max(target_epoch) FROM keyguard_signed_attestations WHERE validator_id = $1)",
            &[&vid],
        )?;
        let row = rows
            .first()
            .ok_or_else(|| DbError::Corrupt("no summary row".into()))?;
        let summary = Summary {
            max_block_slot: row.try_get::<_, Option<i64>>(0)?.map(dec),
            max_source: row.try_get::<_, Option<i64>>(1)?.map(dec),
            max_target: row.try_get::<_, Option<i64>>(2)?.map(dec),
        };
        self.summaries.insert(vid, summary);
        Ok(summary)
    }

    fn block_at(&mut self, vid: ValidatorId, slot: u64) -> Result<Option<StoredRoot>, DbError> {
        let rows = self.query(
            "SELECT signing_root FROM keyguard_signed_blocks WHERE validator_id = $1 AND slot = $2",
            &[&vid, &enc(slot)],
        )?;
        rows.first().map(|r| to_root(r.try_get(0)?)).transpose()
    }

    fn lowest_block_slot(&mut self, vid: ValidatorId) -> Result<Option<u64>, DbError> {
        let rows = self.query(
            "SELECT min(slot) FROM keyguard_signed_blocks WHERE validator_id = $1",
            &[&vid],
        )?;
        Ok(match rows.first() {
            Some(r) => r.try_get::<_, Option<i64>>(0)?.map(dec),
            None => None,
        })
    }

    fn blocks(&mut self, vid: ValidatorId) -> Result<Vec<(u64, StoredRoot)>, DbError> {
        let rows = self.query(
            "SELECT slot, signing_root FROM keyguard_signed_blocks WHERE validator_id = $1 ORDER BY slot",
            &[&vid],
        )?;
        rows.iter()
            .map(|r| Ok((dec(r.try_get(0)?), to_root(r.try_get(1)?)?)))
            .collect()
    }

    fn insert_block(
        &mut self,
        vid: ValidatorId,
        slot: u64,
        root: StoredRoot,
    ) -> Result<(), DbError> {
        if let Some(s) = self.summaries.get_mut(&vid) {
            *s = s.with_block(slot);
        }
        self.pending_blocks.push((vid, slot, root));
        Ok(())
    }

    fn oldest_blocks(
        &mut self,
        vid: ValidatorId,
        below_slot: u64,
        limit: usize,
    ) -> Result<Option<PruneRange>, DbError> {
        let rows = self.query(
            "SELECT count(*), max(slot) FROM (
                 SELECT slot FROM keyguard_signed_blocks
                 WHERE validator_id = $1 AND slot < $2 ORDER BY slot LIMIT $3) AS oldest",
            &[&vid, &enc(below_slot), &limit_param(limit)],
        )?;
        let Some(row) = rows.first() else {
            return Ok(None);
        };
        Ok(prune_range(
            row.try_get(0)?,
            row.try_get::<_, Option<i64>>(1)?.map(dec),
            None,
        ))
    }

    fn delete_blocks_below(&mut self, vid: ValidatorId, slot: u64) -> Result<usize, DbError> {
        let n = self.execute(
            "DELETE FROM keyguard_signed_blocks WHERE validator_id = $1 AND slot < $2",
            &[&vid, &enc(slot)],
        )?;
        self.forget_summary(vid);
        Ok(n as usize)
    }

    fn delete_all_blocks(&mut self, vid: ValidatorId) -> Result<(), DbError> {
        self.execute(
            "DELETE FROM keyguard_signed_blocks WHERE validator_id = $1",
            &[&vid],
        )?;
        self.forget_summary(vid);
        Ok(())
    }

    fn attestation_at_target(
        &mut self,
        vid: ValidatorId,
        target: u64,
    ) -> Result<Option<(u64, StoredRoot)>, DbError> {
        let rows = self.query(
            "SELECT source_epoch, signing_root FROM keyguard_signed_attestations WHERE validator_id = $1 AND target_epoch = $2",
            &[&vid, &enc(target)],
        )?;
        rows.first()
            .map(|r| Ok((dec(r.try_get(0)?), to_root(r.try_get(1)?)?)))
            .transpose()
    }

    fn record_surrounding(
        &mut self,
        vid: ValidatorId,
        s: u64,
        t: u64,
    ) -> Result<Option<(u64, u64)>, DbError> {
        let rows = self.query(
            "SELECT source_epoch, target_epoch FROM keyguard_signed_attestations
             WHERE validator_id = $1 AND target_epoch > $3 AND source_epoch < $2 LIMIT 1",
            &[&vid, &enc(s), &enc(t)],
        )?;
        rows.first()
            .map(|r| Ok((dec(r.try_get(0)?), dec(r.try_get(1)?))))
            .transpose()
    }

    fn record_surrounded(
        &mut self,
        vid: ValidatorId,
        s: u64,
        t: u64,
    ) -> Result<Option<(u64, u64)>, DbError> {
        let rows = self.query(
            "SELECT source_epoch, target_epoch FROM keyguard_signed_attestations
             WHERE validator_id = $1 AND source_epoch > $2 AND target_epoch < $3 LIMIT 1",
            &[&vid, &enc(s), &enc(t)],
        )?;
        rows.first()
            .map(|r| Ok((dec(r.try_get(0)?), dec(r.try_get(1)?))))
            .transpose()
    }

    fn lowest_source_and_target(
        &mut self,
        vid: ValidatorId,
    ) -> Result<(Option<u64>, Option<u64>), DbError> {
        let rows = self.query(
            "SELECT min(source_epoch), min(target_epoch) FROM keyguard_signed_attestations WHERE validator_id = $1",
            &[&vid],
        )?;
        Ok(match rows.first() {
            Some(r) => (
                r.try_get::<_, Option<i64>>(0)?.map(dec),
                r.try_get::<_, Option<i64>>(1)?.map(dec),
            ),
            None => (None, None),
        })
    }

    fn attestations(&mut self, vid: ValidatorId) -> Result<Vec<(u64, u64, StoredRoot)>, DbError> {
        let rows = self.query(
            "SELECT source_epoch, target_epoch, signing_root FROM keyguard_signed_attestations WHERE validator_id = $1 ORDER BY target_epoch",
            &[&vid],
        )?;
        rows.iter()
            .map(|r| {
                Ok((
                    dec(r.try_get(0)?),
                    dec(r.try_get(1)?),
                    to_root(r.try_get(2)?)?,
                ))
            })
            .collect()
    }

    fn attestation_root(
        &mut self,
        vid: ValidatorId,
        source: u64,
        target: u64,
    ) -> Result<Option<StoredRoot>, DbError> {
        let rows = self.query(
            "SELECT signing_root FROM keyguard_signed_attestations WHERE validator_id = $1 AND target_epoch = $2 AND source_epoch = $3",
            &[&vid, &enc(target), &enc(source)],
        )?;
        rows.first().map(|r| to_root(r.try_get(0)?)).transpose()
    }

    fn insert_attestation(
        &mut self,
        vid: ValidatorId,
        source: u64,
        target: u64,
        root: StoredRoot,
    ) -> Result<(), DbError> {
        if let Some(s) = self.summaries.get_mut(&vid) {
            *s = s.with_attestation(source, target);
        }
        self.pending_attestations.push((vid, source, target, root));
        Ok(())
    }

    fn oldest_attestations(
        &mut self,
        vid: ValidatorId,
        below_target: u64,
        limit: usize,
    ) -> Result<Option<PruneRange>, DbError> {
        let rows = self.query(
            "SELECT count(*), max(target_epoch), max(source_epoch) FROM (
                 SELECT target_epoch, source_epoch FROM keyguard_signed_attestations
                 WHERE validator_id = $1 AND target_epoch < $2 ORDER BY target_epoch LIMIT $3) AS oldest",
            &[&vid, &enc(below_target), &limit_param(limit)],
        )?;
        let Some(row) = rows.first() else {
            return Ok(None);
        };
        Ok(prune_range(
            row.try_get(0)?,
            row.try_get::<_, Option<i64>>(1)?.map(dec),
            row.try_get::<_, Option<i64>>(2)?.map(dec),
        ))
    }

    fn attestation_below_source_above_target(
        &mut self,
        vid: ValidatorId,
        source: u64,
        target: u64,
    ) -> Result<bool, DbError> {
        let rows = self.query(
            "SELECT 1 FROM keyguard_signed_attestations
             WHERE validator_id = $1 AND source_epoch < $2 AND target_epoch > $3 LIMIT 1",
            &[&vid, &enc(source), &enc(target)],
        )?;
        Ok(!rows.is_empty())
    }

    fn delete_attestations_through(
        &mut self,
        vid: ValidatorId,
        target: u64,
    ) -> Result<usize, DbError> {
        let n = self.execute(
            "DELETE FROM keyguard_signed_attestations WHERE validator_id = $1 AND target_epoch <= $2",
            &[&vid, &enc(target)],
        )?;
        self.forget_summary(vid);
        Ok(n as usize)
    }

    fn delete_all_attestations(&mut self, vid: ValidatorId) -> Result<(), DbError> {
        self.execute(
            "DELETE FROM keyguard_signed_attestations WHERE validator_id = $1",
            &[&vid],
        )?;
        self.forget_summary(vid);
        Ok(())
    }
}
