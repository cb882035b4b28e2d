//! The storage seam: what the EIP-3076 rules, import, export and pruning need from a
//! backend, inside one open transaction. Each backend (SQLite, PostgreSQL) implements
//! [`Records`] once; the rules (`checks.rs`), the interchange import/export and
//! pruning are written once on top of it.

use crate::error::DbError;

/// A validator's row id in the database.
pub(crate) type ValidatorId = i64;

/// A signing root as stored: `None` is SQL NULL (unknown).
pub(crate) type StoredRoot = Option<[u8; 32]>;

/// The per-validator maxima that decide a normal next block or attestation without
/// reading the history (see `checks::decide_from_summary`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Summary {
    /// Highest recorded block slot.
    pub max_block_slot: Option<u64>,
    /// Highest recorded attestation source epoch.
    pub max_source: Option<u64>,
    /// Highest recorded attestation target epoch.
    pub max_target: Option<u64>,
}

impl Summary {
    /// The summary after recording a block at `slot`.
    pub fn with_block(mut self, slot: u64) -> Summary {
        self.max_block_slot = Some(self.max_block_slot.map_or(slot, |m| m.max(slot)));
        self
    }

    /// The summary after recording an attestation `source -> target`.
    pub fn with_attestation(mut self, source: u64, target: u64) -> Summary {
        self.max_source = Some(self.max_source.map_or(source, |m| m.max(source)));
        self.max_target = Some(self.max_target.map_or(target, |m| m.max(target)));
        self
    }
}

/// Database-wide settings: the chain binding and the kill switch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Meta {
    /// The genesis validators root the database is bound to.
    pub gvr: Option<[u8; 32]>,
    /// High watermark slot (kill switch), if set.
    pub hw_slot: Option<u64>,
    /// High watermark epoch (kill switch), if set.
    pub hw_epoch: Option<u64>,
}

/// The oldest records of one validator that a pruning step may delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PruneRange {
    /// How many records.
    pub count: usize,
    /// The highest slot (blocks) or target epoch (attestations) among them.
    pub highest: u64,
    /// Attestations: the highest source epoch among them (blocks: 0).
    pub highest_source: u64,
}

/// A [`PruneRange`] from `COUNT(*)` and the (decoded) maxima of a pruning query.
pub(crate) fn prune_range(
    count: i64,
    highest: Option<u64>,
    highest_source: Option<u64>,
) -> Option<PruneRange> {
    Some(PruneRange {
        count: usize::try_from(count).unwrap_or(0),
        highest: highest?,
        highest_source: highest_source.unwrap_or(0),
    })
}

/// Reads and writes of one open transaction. Every write is part of that transaction and
/// visible to the reads after it; nothing is durable before the backend commits.
pub(crate) trait Records {
    /// Prepares a batch of sign requests for `pubkeys` (sorted, deduplicated): a backend
    /// shared by several processes registers and locks their rows here, in this order, so
    /// that concurrent batches cannot deadlock. The default does nothing.
    fn lock_validators(&mut self, pubkeys: &[[u8; 48]]) -> Result<(), DbError> {
        let _ = pubkeys;
        Ok(())
    }
    /// The database-wide settings.
    fn meta(&mut self) -> Result<Meta, DbError>;
    /// Binds the database to `gvr` (it must be unbound).
    fn bind_gvr(&mut self, gvr: &[u8; 32]) -> Result<(), DbError>;
    /// Sets (or clears, with `None`) the high watermarks.
    fn set_high_watermark(&mut self, slot: Option<u64>, epoch: Option<u64>) -> Result<(), DbError>;

    /// The id of a known validator.
    fn find_validator(&mut self, pubkey: &[u8; 48]) -> Result<Option<ValidatorId>, DbError>;
    /// The id of a validator, registering it if unknown.
    fn register_validator(&mut self, pubkey: &[u8; 48]) -> Result<ValidatorId, DbError>;
    /// Every known validator, ordered by id.
    fn validators(&mut self) -> Result<Vec<(ValidatorId, [u8; 48])>, DbError>;
    /// The validator's maxima (exact, as of this transaction).
    fn summary(&mut self, vid: ValidatorId) -> Result<Summary, DbError>;

    /// The root of the block recorded at `slot`, if one is (`Some(None)`: a null root).
    fn block_at(&mut self, vid: ValidatorId, slot: u64) -> Result<Option<StoredRoot>, DbError>;
    /// The lowest recorded block slot.
    fn lowest_block_slot(&mut self, vid: ValidatorId) -> Result<Option<u64>, DbError>;
    /// Every recorded block `(slot, root)`, by slot.
    fn blocks(&mut self, vid: ValidatorId) -> Result<Vec<(u64, StoredRoot)>, DbError>;
    /// Records a block.
    fn insert_block(
        &mut self,
        vid: ValidatorId,
        slot: u64,
        root: StoredRoot,
    ) -> Result<(), DbError>;
    /// The validator's `limit` oldest blocks below `below_slot` (`None` if there are
    /// none): what one pruning step may delete (`highest_source` is unused).
    fn oldest_blocks(
        &mut self,
        vid: ValidatorId,
        below_slot: u64,
        limit: usize,
    ) -> Result<Option<PruneRange>, DbError>;
    /// Deletes the validator's blocks below `slot`; returns how many.
    fn delete_blocks_below(&mut self, vid: ValidatorId, slot: u64) -> Result<usize, DbError>;
    /// Deletes all of the validator's blocks.
    fn delete_all_blocks(&mut self, vid: ValidatorId) -> Result<(), DbError>;

    /// `(source, root)` of the attestation recorded for `target`, if one is.
    fn attestation_at_target(
        &mut self,
        vid: ValidatorId,
        target: u64,
    ) -> Result<Option<(u64, StoredRoot)>, DbError>;
    /// A record `(source, target)` with `source < s` and `target > t` (it surrounds `s -> t`).
    fn record_surrounding(
        &mut self,
        vid: ValidatorId,
        s: u64,
        t: u64,
    ) -> Result<Option<(u64, u64)>, DbError>;
    /// A record `(source, target)` with `source > s` and `target < t` (`s -> t` surrounds it).
    fn record_surrounded(
        &mut self,
        vid: ValidatorId,
        s: u64,
        t: u64,
    ) -> Result<Option<(u64, u64)>, DbError>;
    /// The lowest recorded source and the lowest recorded target epoch.
    fn lowest_source_and_target(
        &mut self,
        vid: ValidatorId,
    ) -> Result<(Option<u64>, Option<u64>), DbError>;
    /// Every recorded attestation `(source, target, root)`, by target.
    fn attestations(&mut self, vid: ValidatorId) -> Result<Vec<(u64, u64, StoredRoot)>, DbError>;
    /// The root of the attestation recorded as exactly `source -> target`, if one is.
    fn attestation_root(
        &mut self,
        vid: ValidatorId,
        source: u64,
        target: u64,
    ) -> Result<Option<StoredRoot>, DbError>;
    /// Records an attestation.
    fn insert_attestation(
        &mut self,
        vid: ValidatorId,
        source: u64,
        target: u64,
        root: StoredRoot,
    ) -> Result<(), DbError>;
    /// The validator's `limit` oldest attestations with target below `below_target`
    /// (`None` if there are none): what one pruning step may delete.
    fn oldest_attestations(
        &mut self,
        vid: ValidatorId,
        below_target: u64,
        limit: usize,
    ) -> Result<Option<PruneRange>, DbError>;
    /// True if an attestation with source below `source` and target above `target` is
    /// recorded (pruning up to `target` would then lower the source watermark).
    fn attestation_below_source_above_target(
        &mut self,
        vid: ValidatorId,
        source: u64,
        target: u64,
    ) -> Result<bool, DbError>;
    /// Deletes the validator's attestations with target at or below `target`; returns how
    /// many.
    fn delete_attestations_through(
        &mut self,
        vid: ValidatorId,
        target: u64,
    ) -> Result<usize, DbError>;
    /// Deletes all of the validator's attestations.
    fn delete_all_attestations(&mut self, vid: ValidatorId) -> Result<(), DbError>;
}

/// An open transaction of a backend.
pub(crate) trait Transaction: Records {
    /// Commits. `Ok` only once the transaction is durable; on `Err` its outcome may be
    /// unknown, and nothing of it may be acted on. Dropping without commit rolls back.
    fn commit(self: Box<Self>) -> Result<(), DbError>;
}

/// A storage backend, owned by the writer thread.
pub(crate) trait Backend: Send {
    /// Opens a transaction that takes the backend's write lock.
    fn begin(&mut self) -> Result<Box<dyn Transaction + '_>, DbError>;
    /// True if several processes may write the database at once: each batch then
    /// registers and locks its validators first, in pubkey order
    /// ([`Records::lock_validators`]).
    fn locks_rows(&self) -> bool {
        false
    }
    /// Checks the connection while idle: `Some(Ok)` reachable, `Some(Err)` not,
    /// `None` when the backend has no such notion (health then follows transactions only).
    fn probe(&mut self) -> Option<Result<(), DbError>> {
        None
    }
    /// Where the database is, for logs and errors (never with a password).
    fn describe(&self) -> String;
    /// Runs raw SQL outside any transaction (tests inject faults with it).
    #[cfg(test)]
    fn execute_raw(&mut self, sql: &str) -> Result<(), DbError>;
}
