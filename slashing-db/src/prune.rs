//! Pruning: deleting old records without lowering protection, offline
//! ([`SlashingDb::prune`]) or in the background of a running signer
//! ([`SlashingDb::start_pruning`]).
//!
//! * What is kept, per validator: blocks within `keep_epochs * slots_per_epoch` slots of its
//!   highest recorded slot, attestations with a target within `keep_epochs` of its highest
//!   recorded target. The reference is the validator's own history, not a clock: pruning
//!   needs no time source, never empties a validator's history (its highest records always
//!   stay, so the summary's maxima never change), and an idle validator keeps its window.
//! * Never lowering protection. There is no separate low-watermark table: the lowest
//!   records kept ARE the low watermarks (`slot <= lowest slot`, `source < lowest source`,
//!   `target <= lowest target` are refused, see `checks.rs`). Deleting the oldest records
//!   moves those watermarks up to the oldest record kept, which is EIP-3076's minimal
//!   strategy: a block is then allowed only above every pruned slot, an attestation only
//!   with a source at or above, and a target above, every pruned one. Pruning takes
//!   records oldest first (by slot, by target), and an attestation step is skipped (and
//!   counted in [`PruneSummary::validators_skipped`]) when a kept record has a lower
//!   source than a record it would delete: that would lower the source watermark. Such a
//!   history cannot come from this database's own checks; skipping only keeps more.
//! * Small steps. Each step is ONE short transaction on the writer thread (queued like a
//!   sign batch, so sign requests queued before it are committed first and those arriving
//!   while it runs wait for at most one step), deleting at most
//!   [`PruneSettings::batch_rows`] records over at most [`VALIDATORS_PER_STEP`]
//!   validators. On a backend shared by several processes the step locks its validators'
//!   rows first, in pubkey order, like a sign batch, so the two cannot deadlock; a
//!   conflict with another writer is retried.

use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::error::DbError;
use crate::options::{DbObserver, PruneSummary};
use crate::records::{Records, ValidatorId};
use crate::writer::Writer;
use crate::{Inner, SlashingDb};

/// Most validators one pruning step visits (bounds its reads when few records are due).
pub const VALIDATORS_PER_STEP: usize = 256;

/// How often a step that conflicted with another writer (PostgreSQL deadlock or
/// serialization failure: rolled back, nothing happened) is retried before the round
/// gives up until the next one.
const MAX_STEP_RETRIES: usize = 3;

/// Rows per step of the offline [`SlashingDb::prune`] (nothing else waits on it).
pub(crate) const OFFLINE_BATCH_ROWS: usize = 100_000;

/// What a pruning round keeps, and how much one step may delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PruneSettings {
    /// Epochs of history kept below each validator's highest record (blocks: this many
    /// epochs of slots).
    pub keep_epochs: u64,
    /// Slots per epoch of the network (to keep blocks by slot).
    pub slots_per_epoch: u64,
    /// Most records deleted by one step (one transaction).
    pub batch_rows: usize,
}

/// When the background pruner runs (see [`SlashingDb::start_pruning`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PruneSchedule {
    /// What each round keeps and how large its steps are.
    pub settings: PruneSettings,
    /// Time from the start of the writer to the first round.
    pub first_delay: Duration,
    /// Time between the end of one round and the start of the next.
    pub interval: Duration,
}

/// The background pruner; it stops (after at most the step in progress) when dropped, and
/// also when the database is closed.
#[derive(Debug)]
pub struct Pruner {
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Pruner {
    fn drop(&mut self) {
        // Closing the channel wakes the thread and ends its round between steps.
        self.stop.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Starts the pruner thread for `db` (see [`SlashingDb::start_pruning`]).
pub(crate) fn spawn(db: &SlashingDb, schedule: PruneSchedule) -> Result<Pruner, DbError> {
    let weak = Arc::downgrade(&db.inner);
    let (stop, stopped) = mpsc::channel();
    let thread = std::thread::Builder::new()
        .name("slashing-db-pruner".into())
        .spawn(move || run_schedule(&weak, &stopped, schedule))
        .map_err(|e| DbError::Sqlite(format!("cannot start the pruner thread: {e}")))?;
    Ok(Pruner {
        stop: Some(stop),
        thread: Some(thread),
    })
}

/// True once the [`Pruner`] was dropped.
fn is_stopped(stopped: &Receiver<()>) -> bool {
    !matches!(stopped.try_recv(), Err(TryRecvError::Empty))
}

/// The pruner thread: waits, runs a round, reports it; until stopped or the database is
/// closed (it holds the database only during a round, so it never keeps it open).
fn run_schedule(weak: &Weak<Inner>, stopped: &Receiver<()>, schedule: PruneSchedule) {
    let mut wait = schedule.first_delay;
    loop {
        match stopped.recv_timeout(wait) {
            Err(RecvTimeoutError::Timeout) => {}
            Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
        }
        let Some(inner) = weak.upgrade() else {
            return;
        };
        let db = SlashingDb { inner };
        let started = Instant::now();
        let result = run_round(&db, &schedule.settings, &|| is_stopped(stopped));
        let elapsed = started.elapsed();
        match &result {
            Ok(summary) => tracing::info!(
                blocks = summary.blocks_deleted,
                attestations = summary.attestations_deleted,
                skipped = summary.validators_skipped,
                elapsed_ms = elapsed.as_millis() as u64,
                "slashing database pruned"
            ),
            Err(e) => {
                tracing::warn!(error = %e, "slashing database pruning failed; retried next round")
            }
        }
        if let Some(o) = &db.inner.observer {
            o.prune_round(result.is_ok(), elapsed);
        }
        wait = schedule.interval;
    }
}

/// One pass over every validator, in steps (see the module docs); stops early, between
/// steps, when `stop` says so. Returns what was deleted.
pub(crate) fn run_round(
    db: &SlashingDb,
    settings: &PruneSettings,
    stop: &dyn Fn() -> bool,
) -> Result<PruneSummary, DbError> {
    let validators = db.in_transaction(|rec| rec.validators())?;
    let mut total = PruneSummary::default();
    let mut start = 0;
    while start < validators.len() && !stop() {
        let end = validators.len().min(start + VALIDATORS_PER_STEP);
        let chunk = validators[start..end].to_vec();
        let settings = *settings;
        let (summary, done) = db.admin(move |w| step_with_retries(w, &chunk, &settings))??;
        total.add(&summary);
        start += done;
    }
    Ok(total)
}

/// One step in its own transaction, retried on a conflict with another writer; reports
/// what it deleted to the observer.
fn step_with_retries(
    w: &mut Writer,
    chunk: &[(ValidatorId, [u8; 48])],
    settings: &PruneSettings,
) -> Result<(PruneSummary, usize), DbError> {
    let mut attempt = 0;
    loop {
        let started = Instant::now();
        let result = w.in_transaction(
            |rec| prune_step(rec, chunk, settings),
            // A conflict is retried (nothing happened); anything else sets health DOWN.
            |e: &DbError| (!e.is_conflict()).then(|| e.to_string()),
        );
        match result {
            Err(e) if e.is_conflict() && attempt < MAX_STEP_RETRIES => attempt += 1,
            Ok((summary, done)) => {
                if let Some(o) = &w.observer {
                    report_step(o.as_ref(), &summary, started.elapsed());
                }
                return Ok((summary, done));
            }
            Err(e) => return Err(e),
        }
    }
}

fn report_step(observer: &dyn DbObserver, summary: &PruneSummary, step_time: Duration) {
    if summary.blocks_deleted > 0 || summary.attestations_deleted > 0 {
        observer.pruned(
            summary.blocks_deleted,
            summary.attestations_deleted,
            step_time,
        );
    }
}

/// Deletes up to `settings.batch_rows` due records of `chunk`'s validators, in order, in
/// the caller's transaction. Returns what it deleted and how many validators of `chunk` it
/// finished (fewer than all when the row budget ran out; the next step starts at the
/// first unfinished one). Every step deletes at least one record or finishes a validator.
pub(crate) fn prune_step(
    rec: &mut dyn Records,
    chunk: &[(ValidatorId, [u8; 48])],
    settings: &PruneSettings,
) -> Result<(PruneSummary, usize), DbError> {
    let mut pubkeys: Vec<[u8; 48]> = chunk.iter().map(|(_, pk)| *pk).collect();
    pubkeys.sort_unstable();
    pubkeys.dedup();
    rec.lock_validators(&pubkeys)?;
    let keep_slots = settings
        .keep_epochs
        .saturating_mul(settings.slots_per_epoch);
    let mut budget = settings.batch_rows.max(1);
    let mut summary = PruneSummary::default();
    for (index, (vid, _)) in chunk.iter().enumerate() {
        let maxima = rec.summary(*vid)?;
        if let Some(max_slot) = maxima.max_block_slot {
            let cut = max_slot.saturating_sub(keep_slots);
            if let Some(range) = rec.oldest_blocks(*vid, cut, budget)? {
                let deleted = rec.delete_blocks_below(*vid, range.highest.saturating_add(1))?;
                summary.blocks_deleted += deleted;
                budget = budget.saturating_sub(deleted);
            }
        }
        if let (Some(max_target), true) = (maxima.max_target, budget > 0) {
            let cut = max_target.saturating_sub(settings.keep_epochs);
            match prune_attestations(rec, *vid, cut, budget)? {
                Some(deleted) => {
                    summary.attestations_deleted += deleted;
                    budget = budget.saturating_sub(deleted);
                }
                None => summary.validators_skipped += 1,
            }
        }
        if budget == 0 {
            // This validator may have more due: the next step starts with it.
            return Ok((summary, index));
        }
    }
    Ok((summary, chunk.len()))
}

/// Deletes up to `budget` of the validator's oldest attestations with target below
/// `cut`, unless that would lower the source watermark (see the module docs): `None`
/// when skipped for that reason.
fn prune_attestations(
    rec: &mut dyn Records,
    vid: ValidatorId,
    cut: u64,
    budget: usize,
) -> Result<Option<usize>, DbError> {
    let Some(range) = rec.oldest_attestations(vid, cut, budget)? else {
        return Ok(Some(0));
    };
    if rec.attestation_below_source_above_target(vid, range.highest_source, range.highest)? {
        tracing::warn!(
            validator_id = vid,
            "slashing database: attestation history has a kept record with a lower source \
             than an older one; not pruning it (that would lower the source watermark)"
        );
        return Ok(None);
    }
    rec.delete_attestations_through(vid, range.highest)
        .map(Some)
}

#[cfg(test)]
#[path = "prune_tests.rs"]
mod tests;
