//! Importing a Web3Signer slashing-protection database (PostgreSQL):
//! [`SlashingDb::import_web3signer`].
//!
//! # The source, read only
//!
//! Web3Signer's PostgreSQL schema as its Flyway migrations V00001 to V00012 leave it (facts
//! read from its migration files): `validators(id, public_key BYTEA, enabled)`,
//! `signed_blocks(validator_id, slot NUMERIC(20), signing_root BYTEA NULL)`,
//! `signed_attestations(validator_id, source_epoch NUMERIC(20), target_epoch NUMERIC(20),
//! signing_root BYTEA NULL)`, `low_watermarks(validator_id UNIQUE, slot, target_epoch,
//! source_epoch)` (every column but the id nullable, the two epochs set together),
//! `metadata(id = 1, genesis_validators_root BYTEA, high_watermark_epoch,
//! high_watermark_slot)` and `database_version(id = 1, version)`, which Web3Signer itself
//! checks at start (migration V00007 created it at 7; each later one sets its number).
//! The version is checked first: only 12 is read; a newer one is refused (its layout is
//! unknown), an older one must be upgraded with Web3Signer's migrations first.
//! Everything is read in ONE `REPEATABLE READ, READ ONLY` transaction (one snapshot; the
//! source cannot be written by this command), and the per-validator maxima are computed
//! on the server.
//!
//! # Import semantics: the interchange import's
//!
//! Each validator becomes what an interchange file entry minifies to: its highest block
//! slot and its (highest source, highest target) attestation, where Web3Signer's low
//! watermark counts as a record too (Web3Signer refuses below it; keyguard's synthetic
//! record refuses at or below it, which is at least as strict). These summaries go
//! through the same function as an interchange import (one transaction, the genesis
//! validators root checked or bound, each validator's records replaced by one synthetic
//! record at the maximum of the database's and the source's), so the result is never
//! less protective than either. A high watermark in the source (Web3Signer's kill
//! switch, refused at or past, like keyguard's) is merged field by field taking the
//! lower, stricter limit.

use std::time::Duration;

use postgres::{Client, IsolationLevel, NoTls};
use zeroize::Zeroizing;

use crate::error::{DbError, ImportError};
use crate::interchange::{
    self, parse_decimal_u64, ImportSummary, ParsedInterchange, ValidatorSummary,
};
use crate::location::{PostgresLocation, PostgresTls};
use crate::options::HighWatermark;
use crate::records::Records;
use crate::SlashingDb;

/// The Web3Signer schema version (`database_version.version`) this build reads.
pub const WEB3SIGNER_SCHEMA_VERSION: i32 = 12;

/// How long connecting to the source may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a Web3Signer import failed. In every case keyguard's database is unchanged, and the
/// source was never written. No message contains a password.
#[derive(Debug, thiserror::Error)]
pub enum Web3SignerError {
    /// The source cannot be reached, or a query on it failed.
    #[error("Web3Signer database {location}: {message}")]
    Source {
        /// The source's location (no password).
        location: String,
        /// What failed.
        message: String,
    },
    /// The source is not a Web3Signer slashing-protection database of a known version.
    #[error("Web3Signer database {location}: {message}")]
    UnsupportedSchema {
        /// The source's location (no password).
        location: String,
        /// What was found and what to do.
        message: String,
    },
    /// The source holds a value that cannot be imported (e.g. a 47-byte public key).
    #[error("Web3Signer database {location} holds invalid data: {message}")]
    Invalid {
        /// The source's location (no password).
        location: String,
        /// What is wrong, and where.
        message: String,
    },
    /// Importing into keyguard's database failed; nothing was changed.
    #[error("import failed, nothing was changed: {0}")]
    Import(#[from] ImportError),
}

/// What [`SlashingDb::import_web3signer`] read and imported.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Web3SignerImport {
    /// The source's `database_version`.
    pub schema_version: i32,
    /// The interchange-style summary (validators, blocks and attestations in the source).
    pub summary: ImportSummary,
    /// Low-watermark rows in the source.
    pub low_watermarks: usize,
    /// Validators marked disabled in the source (their history is imported all the same).
    pub disabled_validators: usize,
    /// The source's high watermark, if it has one.
    pub source_high_watermark: Option<HighWatermark>,
    /// keyguard's high watermark after the import (the stricter of both, per field).
    pub high_watermark: Option<HighWatermark>,
}

/// Everything read from the source.
struct Source {
    schema_version: i32,
    parsed: Option<ParsedInterchange>,
    low_watermarks: usize,
    disabled_validators: usize,
    high_watermark: Option<HighWatermark>,
}

impl SlashingDb {
    /// Reads the Web3Signer slashing-protection database at `source` (read only, one
    /// snapshot) and imports it with the interchange import's semantics (see the module
    /// docs). `password` is used when the URL has none. Blocking.
    pub fn import_web3signer(
        &self,
        source: &PostgresLocation,
        password: Option<Zeroizing<String>>,
    ) -> Result<Web3SignerImport, Web3SignerError> {
        let read = read_source(source, password)?;
        let mut result = Web3SignerImport {
            schema_version: read.schema_version,
            low_watermarks: read.low_watermarks,
            disabled_validators: read.disabled_validators,
            source_high_watermark: read.high_watermark,
            ..Web3SignerImport::default()
        };
        let Some(parsed) = read.parsed else {
            // Never bound to a chain and no history: nothing protects anything yet.
            return Ok(result);
        };
        let source_hw = read.high_watermark;
        let (summary, high_watermark) = self
            .admin(move |w| {
                w.in_transaction(
                    |rec| {
                        let summary = interchange::apply_import(rec, &parsed)?;
                        let hw = merge_high_watermark(rec, source_hw)?;
                        Ok::<_, ImportError>((summary, hw))
                    },
                    |e| match e {
                        ImportError::Db(d) => Some(d.to_string()),
                        _ => None,
                    },
                )
            })
            .map_err(ImportError::Db)??;
        result.summary = summary;
        result.high_watermark = high_watermark;
        Ok(result)
    }
}

/// Sets each field of the high watermark to the lower of keyguard's and the source's.
fn merge_high_watermark(
    rec: &mut dyn Records,
    source: Option<HighWatermark>,
) -> Result<Option<HighWatermark>, DbError> {
    let meta = rec.meta()?;
    let stricter = |ours: Option<u64>, theirs: Option<u64>| match (ours, theirs) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let (slot, epoch) = match source {
        Some(hw) => (
            stricter(meta.hw_slot, hw.slot),
            stricter(meta.hw_epoch, hw.epoch),
        ),
        None => (meta.hw_slot, meta.hw_epoch),
    };
    if (slot, epoch) != (meta.hw_slot, meta.hw_epoch) {
        rec.set_high_watermark(slot, epoch)?;
    }
    Ok(match (slot, epoch) {
        (None, None) => None,
        (slot, epoch) => Some(HighWatermark { slot, epoch }),
    })
}

/// Connects like the PostgreSQL backend does (TLS verify-full or plain), without touching
/// the schema.
fn connect(
    location: &PostgresLocation,
    password: Option<Zeroizing<String>>,
) -> Result<Client, String> {
    let mut config = location.config.clone();
    if let Some(password) = &password {
        if config.get_password().is_none() {
            config.password(password.as_bytes());
        }
    }
    config
        .connect_timeout(CONNECT_TIMEOUT)
        .application_name("keyguard-import-web3signer");
    let connected = match &location.tls {
        PostgresTls::Disable => config.connect(NoTls),
        PostgresTls::VerifyFull { ca_file } => {
            let connector = crate::postgres::tls::RustlsConnector::from_ca_file(ca_file)?;
            config.ssl_mode(postgres::config::SslMode::Require);
            config.connect(connector)
        }
    };
    connected.map_err(|e| pg_message(&e))
}

/// The server's message, or the driver's (neither quotes the password).
fn pg_message(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => e.to_string(),
    }
}

/// One row of the per-validator query (see [`read_source`]).
struct ValidatorRow {
    id: i32,
    public_key: Vec<u8>,
    enabled: bool,
    max_block_slot: Option<String>,
    blocks: i64,
    max_source: Option<String>,
    max_target: Option<String>,
    attestations: i64,
    low_slot: Option<String>,
    low_source: Option<String>,
    low_target: Option<String>,
    has_low_watermark: bool,
}

impl ValidatorRow {
    fn read(row: &postgres::Row) -> Result<ValidatorRow, String> {
        Ok(ValidatorRow {
            id: column(row, 0)?,
            public_key: column(row, 1)?,
            enabled: column(row, 2)?,
            max_block_slot: column(row, 3)?,
            blocks: column(row, 4)?,
            max_source: column(row, 5)?,
            max_target: column(row, 6)?,
            attestations: column(row, 7)?,
            low_slot: column(row, 8)?,
            low_source: column(row, 9)?,
            low_target: column(row, 10)?,
            has_low_watermark: column(row, 11)?,
        })
    }
}

/// Column `i` of `row`, or why it has an unexpected type.
fn column<'a, T: postgres::types::FromSql<'a>>(
    row: &'a postgres::Row,
    i: usize,
) -> Result<T, String> {
    row.try_get(i)
        .map_err(|e| format!("unexpected column {i} ({e}); is this Web3Signer's schema?"))
}

/// Per validator: the record maxima and counts, and its low watermark.
const VALIDATORS_SQL: &str = "
    SELECT v.id, v.public_key, v.enabled,
           (SELECT max(b.slot)::text FROM signed_blocks b WHERE b.validator_id = v.id),
           (SELECT count(*) FROM signed_blocks b WHERE b.validator_id = v.id),
           (SELECT max(a.source_epoch)::text FROM signed_attestations a WHERE a.validator_id = v.id),
           (SELECT max(a.target_epoch)::text FROM signed_attestations a WHERE a.validator_id = v.id),
           (SELECT count(*) FROM signed_attestations a WHERE a.validator_id = v.id),
           w.slot::text, w.source_epoch::text, w.target_epoch::text,
           w.validator_id IS NOT NULL
    FROM validators v LEFT JOIN low_watermarks w ON w.validator_id = v.id
    ORDER BY v.id";

fn read_source(
    location: &PostgresLocation,
    password: Option<Zeroizing<String>>,
) -> Result<Source, Web3SignerError> {
    let name = location.to_string();
    let source_error = |message: String| Web3SignerError::Source {
        location: name.clone(),
        message,
    };
    let unsupported = |message: String| Web3SignerError::UnsupportedSchema {
        location: name.clone(),
        message,
    };
    let invalid = |message: String| Web3SignerError::Invalid {
        location: name.clone(),
        message,
    };
    let q = |e: postgres::Error| source_error(pg_message(&e));

    let mut client =
        connect(location, password).map_err(|m| source_error(format!("cannot connect: {m}")))?;
    let mut tx = client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .map_err(q)?;

    let has_version_table: bool = column(
        &tx.query_one("SELECT to_regclass('database_version') IS NOT NULL", &[])
            .map_err(q)?,
        0,
    )
    .map_err(&invalid)?;
    if !has_version_table {
        return Err(unsupported(
            "no database_version table: not a Web3Signer slashing-protection database, or \
             one older than migration V00007 (run Web3Signer's migrations up to V00012 first)"
                .into(),
        ));
    }
    let version: i32 = column(
        &tx.query_opt("SELECT version FROM database_version WHERE id = 1", &[])
            .map_err(q)?
            .ok_or_else(|| unsupported("database_version has no row with id 1".into()))?,
        0,
    )
    .map_err(&unsupported)?;
    if version > WEB3SIGNER_SCHEMA_VERSION {
        return Err(unsupported(format!(
            "schema version {version} is newer than the version {WEB3SIGNER_SCHEMA_VERSION} \
             (migrations V00001-V00012) this keyguard can read; refusing to guess its layout"
        )));
    }
    if version < WEB3SIGNER_SCHEMA_VERSION {
        return Err(unsupported(format!(
            "schema version {version} is older than {WEB3SIGNER_SCHEMA_VERSION}; upgrade it \
             with Web3Signer's migrations (up to V00012) first"
        )));
    }

    let meta = tx
        .query_opt(
            "SELECT genesis_validators_root, high_watermark_slot::text, \
             high_watermark_epoch::text FROM metadata WHERE id = 1",
            &[],
        )
        .map_err(q)?;
    let (gvr, high_watermark) = match meta {
        None => (None, None),
        Some(row) => {
            let root: Vec<u8> = column(&row, 0).map_err(&invalid)?;
            let root: [u8; 32] = root
                .try_into()
                .map_err(|_| invalid("metadata.genesis_validators_root is not 32 bytes".into()))?;
            let slot = column(&row, 1)
                .and_then(|v| number(v, "metadata.high_watermark_slot"))
                .map_err(&invalid)?;
            let epoch = column(&row, 2)
                .and_then(|v| number(v, "metadata.high_watermark_epoch"))
                .map_err(&invalid)?;
            let hw = (slot.is_some() || epoch.is_some()).then_some(HighWatermark { slot, epoch });
            (Some(root), hw)
        }
    };

    let rows = tx.query(VALIDATORS_SQL, &[]).map_err(q)?;
    let mut validators = Vec::with_capacity(rows.len());
    let (mut blocks, mut attestations) = (0usize, 0usize);
    let (mut low_watermarks, mut disabled_validators) = (0usize, 0usize);
    for row in &rows {
        let row = ValidatorRow::read(row).map_err(&invalid)?;
        blocks += usize::try_from(row.blocks).unwrap_or(0);
        attestations += usize::try_from(row.attestations).unwrap_or(0);
        low_watermarks += usize::from(row.has_low_watermark);
        disabled_validators += usize::from(!row.enabled);
        validators.push(summarise(&row).map_err(&invalid)?);
    }
    // Nothing is written; ending the read-only transaction releases its snapshot.
    tx.rollback().map_err(q)?;

    let has_history = validators
        .iter()
        .any(|v| v.max_block_slot.is_some() || v.max_attestation.is_some());
    let parsed = match gvr {
        Some(genesis_validators_root) => Some(ParsedInterchange {
            genesis_validators_root,
            validators,
            blocks,
            attestations,
        }),
        None if has_history => {
            return Err(invalid(
                "signing history but no genesis validators root in metadata".into(),
            ))
        }
        None => None,
    };
    Ok(Source {
        schema_version: version,
        parsed,
        low_watermarks,
        disabled_validators,
        high_watermark,
    })
}

/// A NUMERIC(20) read as text: a decimal `u64`, or `None` for NULL.
fn number(text: Option<String>, what: &str) -> Result<Option<u64>, String> {
    text.map(|t| parse_decimal_u64(&t).ok_or_else(|| format!("{what} {t:?} is not a u64")))
        .transpose()
}

fn max_opt(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    a.max(b)
}

/// A validator's interchange summary: record maxima, its low watermark counted as a record.
fn summarise(row: &ValidatorRow) -> Result<ValidatorSummary, String> {
    let at = |what: &str| format!("validator id {}: {what}", row.id);
    let pubkey: [u8; 48] = row
        .public_key
        .clone()
        .try_into()
        .map_err(|_| at("public_key is not 48 bytes"))?;
    let max_block_slot = max_opt(
        number(row.max_block_slot.clone(), "highest block slot").map_err(|e| at(&e))?,
        number(row.low_slot.clone(), "low watermark slot").map_err(|e| at(&e))?,
    );
    let source = max_opt(
        number(row.max_source.clone(), "highest source epoch").map_err(|e| at(&e))?,
        number(row.low_source.clone(), "low watermark source epoch").map_err(|e| at(&e))?,
    );
    let target = max_opt(
        number(row.max_target.clone(), "highest target epoch").map_err(|e| at(&e))?,
        number(row.low_target.clone(), "low watermark target epoch").map_err(|e| at(&e))?,
    );
    let max_attestation = match (source, target) {
        (Some(s), Some(t)) => Some((s, t)),
        (None, None) => None,
        _ => {
            return Err(at(
                "a low watermark with only one of source and target epoch",
            ))
        }
    };
    Ok(ValidatorSummary {
        pubkey,
        max_block_slot,
        max_attestation,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row() -> ValidatorRow {
        ValidatorRow {
            id: 1,
            public_key: vec![0xa1; 48],
            enabled: true,
            max_block_slot: None,
            blocks: 0,
            max_source: None,
            max_target: None,
            attestations: 0,
            low_slot: None,
            low_source: None,
            low_target: None,
            has_low_watermark: false,
        }
    }

    #[test]
    fn the_low_watermark_counts_as_a_record() {
        let mut r = row();
        r.max_block_slot = Some("90".into());
        r.low_slot = Some("120".into());
        r.max_source = Some("7".into());
        r.max_target = Some("8".into());
        r.low_source = Some("3".into());
        r.low_target = Some("12".into());
        let s = summarise(&r).unwrap();
        assert_eq!(s.max_block_slot, Some(120));
        assert_eq!(s.max_attestation, Some((7, 12)));
    }

    #[test]
    fn a_validator_without_history_has_no_maxima() {
        let s = summarise(&row()).unwrap();
        assert_eq!((s.max_block_slot, s.max_attestation), (None, None));
    }

    #[test]
    fn bad_values_are_refused_with_the_validator_named() {
        let mut r = row();
        r.public_key = vec![1; 47];
        assert!(summarise(&r).unwrap_err().contains("validator id 1"));
        let mut r = row();
        r.max_block_slot = Some("-1".into());
        assert!(summarise(&r).unwrap_err().contains("not a u64"));
        let mut r = row();
        r.max_block_slot = Some("18446744073709551616".into());
        assert!(summarise(&r).is_err());
    }

    #[test]
    fn the_stricter_high_watermark_wins_field_by_field() {
        let dir = tempfile::tempdir().unwrap();
        let db = SlashingDb::open(&dir.path().join("db.sqlite"), Default::default()).unwrap();
        db.set_high_watermark(Some(100), None).unwrap();
        let merged = db
            .in_transaction(|rec| {
                merge_high_watermark(
                    rec,
                    Some(HighWatermark {
                        slot: Some(200),
                        epoch: Some(5),
                    }),
                )
            })
            .unwrap();
        let expected = HighWatermark {
            slot: Some(100),
            epoch: Some(5),
        };
        assert_eq!(merged, Some(expected));
        assert_eq!(db.high_watermark().unwrap(), Some(expected));
    }
}
