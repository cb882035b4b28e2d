//! Error and refusal types of the slashing-protection database.

use std::fmt;
use std::path::PathBuf;

/// A database-level failure: the operation could not be decided, nothing may be signed.
///
/// Cloneable so that one failed group commit can answer every request of its batch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DbError {
    /// Another process (or another handle in this process) holds the database's exclusive lock.
    #[error("slashing database {} is in use by another process", path.display())]
    InUse {
        /// Path of the database file.
        path: PathBuf,
    },
    /// `PRAGMA synchronous` did not read back as FULL after being set.
    #[error(
        "slashing database {}: PRAGMA synchronous reads back as {actual}, expected 2 (FULL); refusing to open",
        path.display()
    )]
    NotDurable {
        /// Path of the database file.
        path: PathBuf,
        /// The value read back.
        actual: i64,
    },
    /// `PRAGMA journal_mode=WAL` was not accepted.
    #[error("slashing database {}: journal mode is {actual:?}, expected \"wal\"; refusing to open", path.display())]
    NotWal {
        /// Path of the database file.
        path: PathBuf,
        /// The journal mode read back.
        actual: String,
    },
    /// The file was written by a newer keyguard with a schema this version does not know.
    #[error(
        "slashing database {} has schema version {found}, this keyguard supports up to {supported}",
        path.display()
    )]
    SchemaTooNew {
        /// Path of the database file.
        path: PathBuf,
        /// Schema version found in the file.
        found: i64,
        /// Highest schema version this build knows.
        supported: i64,
    },
    /// An SQLite call failed.
    #[error("slashing database error: {0}")]
    Sqlite(String),
    /// The database holds a value that cannot be decoded (e.g. a BLOB of the wrong length).
    #[error("slashing database is corrupt: {0}")]
    Corrupt(String),
    /// The request queue is full (the writer cannot keep up); the request was not queued.
    #[error("slashing database queue is full ({capacity} requests pending)")]
    QueueFull {
        /// Queue capacity.
        capacity: usize,
    },
    /// The writer thread is gone (it panicked or the database was closed).
    #[error("slashing database writer has stopped")]
    WriterStopped,
    /// The database is bound to a different genesis validators root.
    #[error(
        "slashing database is bound to genesis_validators_root 0x{}, not 0x{}",
        hex::encode(bound),
        hex::encode(requested)
    )]
    GenesisValidatorsRootMismatch {
        /// Root the database is bound to.
        bound: [u8; 32],
        /// Root that was requested.
        requested: [u8; 32],
    },
    /// The operation needs a bound genesis validators root and the database has none yet.
    #[error("slashing database has no genesis_validators_root yet (nothing was ever signed or imported)")]
    NoGenesisValidatorsRoot,
    /// The database location (path or URL) cannot be used.
    #[error("slashing database {location}: {message}")]
    InvalidLocation {
        /// The location, with any password replaced by `***`.
        location: String,
        /// What is wrong.
        message: String,
    },
    /// The PostgreSQL server cannot be reached or refused the connection.
    #[error("slashing database {location} is unavailable: {message}")]
    Unavailable {
        /// The location, with any password replaced by `***`.
        location: String,
        /// Why.
        message: String,
    },
    /// PostgreSQL acknowledges commits before they are durable.
    #[error(
        "slashing database {location}: synchronous_commit is {actual}, so a commit can be \
         acknowledged before it is durable and a crash could lose signed records; refusing \
         to start (set synchronous_commit = on, or accept the risk with \
         slashing.allow_async_commit / --slashing-allow-async-commit)"
    )]
    AsyncCommit {
        /// The location, with any password replaced by `***`.
        location: String,
        /// The setting read from the server.
        actual: String,
    },
    /// A PostgreSQL statement failed.
    #[error("slashing database error: {0}")]
    Postgres(String),
    /// A transaction conflicted with another writer (PostgreSQL deadlock `40P01` or
    /// serialization failure `40001`); it was rolled back.
    #[error("slashing database conflict, rolled back: {0}")]
    Conflict(String),
    /// An export could not be serialised.
    #[error("cannot serialise interchange: {0}")]
    Serialize(String),
}

impl DbError {
    /// True for a conflict with another writer of a shared database (deadlock or
    /// serialization failure): the transaction was rolled back and may be retried whole.
    pub fn is_conflict(&self) -> bool {
        matches!(self, DbError::Conflict(_))
    }
}

impl From<postgres::Error> for DbError {
    fn from(e: postgres::Error) -> Self {
        use postgres::error::SqlState;
        match e.code() {
            Some(c)
                if *c == SqlState::T_R_DEADLOCK_DETECTED
                    || *c == SqlState::T_R_SERIALIZATION_FAILURE =>
            {
                DbError::Conflict(e.to_string())
            }
            _ => match e.as_db_error() {
                // The server's message, not the driver's wrapper ("db error: ...").
                Some(db) => DbError::Postgres(format!("{}: {}", db.code().code(), db.message())),
                None => DbError::Postgres(e.to_string()),
            },
        }
    }
}

impl From<rusqlite::Error> for DbError {
    fn from(e: rusqlite::Error) -> Self {
        DbError::Sqlite(e.to_string())
    }
}

/// Why a signing request was not allowed. Maps to HTTP 412 (refused) or 500 (database).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignCheckError {
    /// Slashing protection refused the request: signing it could be slashable.
    #[error("refused by slashing protection: {0}")]
    Refused(Refusal),
    /// The decision could not be made or recorded durably; nothing may be signed.
    #[error(transparent)]
    Db(#[from] DbError),
}

/// A slashing-protection refusal, with the data an operator needs to understand it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The request names a different genesis validators root than the database is bound to.
    WrongGenesisValidatorsRoot {
        /// Root the database is bound to.
        bound: [u8; 32],
        /// Root of the request.
        requested: [u8; 32],
    },
    /// A block at or above the high watermark (kill switch) slot.
    HighWatermarkBlock {
        /// Requested slot.
        slot: u64,
        /// The high watermark slot.
        watermark_slot: u64,
    },
    /// An attestation whose source or target is at or above the high watermark epoch.
    HighWatermarkAttestation {
        /// Requested source epoch.
        source_epoch: u64,
        /// Requested target epoch.
        target_epoch: u64,
        /// The high watermark epoch.
        watermark_epoch: u64,
    },
    /// A different (or unknown, null) block was already signed at this slot.
    DoubleBlockProposal {
        /// The slot.
        slot: u64,
    },
    /// The slot is not above the lowest recorded slot of this validator.
    BlockSlotNotAboveWatermark {
        /// Requested slot.
        slot: u64,
        /// Lowest recorded block slot.
        lowest_slot: u64,
    },
    /// An attestation with source epoch > target epoch.
    SourceGreaterThanTarget {
        /// Requested source epoch.
        source_epoch: u64,
        /// Requested target epoch.
        target_epoch: u64,
    },
    /// A different (or unknown, null) attestation was already signed for this target epoch.
    DoubleVote {
        /// Requested source epoch.
        source_epoch: u64,
        /// Requested target epoch.
        target_epoch: u64,
        /// Source epoch of the recorded attestation with the same target.
        existing_source_epoch: u64,
    },
    /// The request surrounds a recorded attestation.
    SurroundingVote {
        /// Requested source epoch.
        source_epoch: u64,
        /// Requested target epoch.
        target_epoch: u64,
        /// Source epoch of the surrounded record.
        existing_source_epoch: u64,
        /// Target epoch of the surrounded record.
        existing_target_epoch: u64,
    },
    /// The request is surrounded by a recorded attestation.
    SurroundedVote {
        /// Requested source epoch.
        source_epoch: u64,
        /// Requested target epoch.
        target_epoch: u64,
        /// Source epoch of the surrounding record.
        existing_source_epoch: u64,
        /// Target epoch of the surrounding record.
        existing_target_epoch: u64,
    },
    /// The source epoch is below the lowest recorded source epoch.
    AttestationSourceBelowWatermark {
        /// Requested source epoch.
        source_epoch: u64,
        /// Lowest recorded source epoch.
        lowest_source_epoch: u64,
    },
    /// The target epoch is not above the lowest recorded target epoch.
    AttestationTargetNotAboveWatermark {
        /// Requested target epoch.
        target_epoch: u64,
        /// Lowest recorded target epoch.
        lowest_target_epoch: u64,
    },
}

impl Refusal {
    /// Every value [`Refusal::reason`] can return, so a metrics exporter can create each
    /// refusal series at 0 before the first refusal.
    pub const REASONS: [&'static str; 10] = [
        "wrong_genesis_validators_root",
        "high_watermark",
        "double_block_proposal",
        "block_slot_not_above_watermark",
        "source_greater_than_target",
        "double_vote",
        "surrounding_vote",
        "surrounded_vote",
        "attestation_source_below_watermark",
        "attestation_target_not_above_watermark",
    ];

    /// Stable snake_case label, for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::WrongGenesisValidatorsRoot { .. } => "wrong_genesis_validators_root",
            Refusal::HighWatermarkBlock { .. } | Refusal::HighWatermarkAttestation { .. } => {
                "high_watermark"
            }
            Refusal::DoubleBlockProposal { .. } => "double_block_proposal",
            Refusal::BlockSlotNotAboveWatermark { .. } => "block_slot_not_above_watermark",
            Refusal::SourceGreaterThanTarget { .. } => "source_greater_than_target",
            Refusal::DoubleVote { .. } => "double_vote",
            Refusal::SurroundingVote { .. } => "surrounding_vote",
            Refusal::SurroundedVote { .. } => "surrounded_vote",
            Refusal::AttestationSourceBelowWatermark { .. } => "attestation_source_below_watermark",
            Refusal::AttestationTargetNotAboveWatermark { .. } => {
                "attestation_target_not_above_watermark"
            }
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::WrongGenesisValidatorsRoot { bound, requested } => write!(
                f,
                "genesis_validators_root 0x{} does not match this database's 0x{}",
                hex::encode(requested),
                hex::encode(bound)
            ),
            Refusal::HighWatermarkBlock { slot, watermark_slot } => write!(
                f,
                "block at slot {slot} is at or above the high watermark slot {watermark_slot}"
            ),
            Refusal::HighWatermarkAttestation { source_epoch, target_epoch, watermark_epoch } => write!(
                f,
                "attestation source {source_epoch} / target {target_epoch} reaches the high watermark epoch {watermark_epoch}"
            ),
            Refusal::DoubleBlockProposal { slot } => write!(
                f,
                "a different block (or one with unknown signing root) was already signed at slot {slot}"
            ),
            Refusal::BlockSlotNotAboveWatermark { slot, lowest_slot } => write!(
                f,
                "block slot {slot} is not above the lowest recorded slot {lowest_slot}"
            ),
            Refusal::SourceGreaterThanTarget { source_epoch, target_epoch } => write!(
                f,
                "attestation source epoch {source_epoch} is greater than its target epoch {target_epoch}"
            ),
            Refusal::DoubleVote { source_epoch, target_epoch, existing_source_epoch } => write!(
                f,
                "double vote: attestation {source_epoch}->{target_epoch} conflicts with the recorded {existing_source_epoch}->{target_epoch} (different or unknown signing root)"
            ),
            Refusal::SurroundingVote { source_epoch, target_epoch, existing_source_epoch, existing_target_epoch } => write!(
                f,
                "attestation {source_epoch}->{target_epoch} surrounds the recorded {existing_source_epoch}->{existing_target_epoch}"
            ),
            Refusal::SurroundedVote { source_epoch, target_epoch, existing_source_epoch, existing_target_epoch } => write!(
                f,
                "attestation {source_epoch}->{target_epoch} is surrounded by the recorded {existing_source_epoch}->{existing_target_epoch}"
            ),
            Refusal::AttestationSourceBelowWatermark { source_epoch, lowest_source_epoch } => write!(
                f,
                "attestation source epoch {source_epoch} is below the lowest recorded source epoch {lowest_source_epoch}"
            ),
            Refusal::AttestationTargetNotAboveWatermark { target_epoch, lowest_target_epoch } => write!(
                f,
                "attestation target epoch {target_epoch} is not above the lowest recorded target epoch {lowest_target_epoch}"
            ),
        }
    }
}

/// One problem found in an interchange file, with its location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportProblem {
    /// JSON path, e.g. `data[3].signed_attestations[17].target_epoch`.
    pub location: String,
    /// What is wrong there.
    pub message: String,
}

impl fmt::Display for ImportProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.location, self.message)
    }
}

/// Why an interchange import failed. In every case the database is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImportError {
    /// The file is not well-formed JSON of the interchange shape.
    #[error("interchange is not valid JSON of the expected shape: {0}")]
    Json(String),
    /// The file is well-formed but has invalid values; every problem found is listed.
    #[error("interchange has {total} problem(s):{}", format_problems(problems, *total))]
    Invalid {
        /// The problems (capped at [`MAX_REPORTED_PROBLEMS`](crate::MAX_REPORTED_PROBLEMS)).
        problems: Vec<ImportProblem>,
        /// Total number of problems found (may exceed `problems.len()`).
        total: usize,
    },
    /// The file is for another chain than the one the database is bound to.
    #[error(
        "interchange genesis_validators_root 0x{} does not match this database's 0x{}",
        hex::encode(file),
        hex::encode(bound)
    )]
    WrongGenesisValidatorsRoot {
        /// Root the database is bound to.
        bound: [u8; 32],
        /// Root in the file.
        file: [u8; 32],
    },
    /// The database failed; the import transaction was rolled back.
    #[error(transparent)]
    Db(#[from] DbError),
}

fn format_problems(problems: &[ImportProblem], total: usize) -> String {
    let mut s = String::new();
    for p in problems.iter().take(100) {
        s.push_str("\n  ");
        s.push_str(&p.to_string());
    }
    if total > 100 {
        s.push_str(&format!("\n  ... and {} more", total - 100));
    }
    s
}

#[cfg(test)]
mod refusal_tests {
    use super::Refusal;

    #[test]
    fn every_reason_is_listed() {
        let (e, r) = (1, [0u8; 32]);
        let all = [
            Refusal::WrongGenesisValidatorsRoot {
                bound: r,
                requested: r,
            },
            Refusal::HighWatermarkBlock {
                slot: e,
                watermark_slot: e,
            },
            Refusal::HighWatermarkAttestation {
                source_epoch: e,
                target_epoch: e,
                watermark_epoch: e,
            },
            Refusal::DoubleBlockProposal { slot: e },
            Refusal::BlockSlotNotAboveWatermark {
                slot: e,
                lowest_slot: e,
            },
            Refusal::SourceGreaterThanTarget {
                source_epoch: e,
                target_epoch: e,
            },
            Refusal::DoubleVote {
                source_epoch: e,
                target_epoch: e,
                existing_source_epoch: e,
            },
            Refusal::SurroundingVote {
                source_epoch: e,
                target_epoch: e,
                existing_source_epoch: e,
                existing_target_epoch: e,
            },
            Refusal::SurroundedVote {
                source_epoch: e,
                target_epoch: e,
                existing_source_epoch: e,
                existing_target_epoch: e,
            },
            Refusal::AttestationSourceBelowWatermark {
                source_epoch: e,
                lowest_source_epoch: e,
            },
            Refusal::AttestationTargetNotAboveWatermark {
                target_epoch: e,
                lowest_target_epoch: e,
            },
        ];
        let mut seen: Vec<&str> = all.iter().map(Refusal::reason).collect();
        seen.sort_unstable();
        seen.dedup();
        let mut listed = Refusal::REASONS.to_vec();
        listed.sort_unstable();
        assert_eq!(seen, listed);
    }
}
