//! The EIP-3076 rules, written once for every backend: they read and write through
//! [`Records`] inside the caller's transaction. The writer calls them for every request of
//! a batch in order, so each request is checked against the committed state plus the
//! records of the earlier requests of the same batch.
//!
//! The common case costs O(1): a validator's [`Summary`] (highest block slot, highest
//! source and target) proves a block above every recorded block, or an attestation above
//! every recorded target whose source is at least every recorded source, safe without
//! reading the history (nothing recorded can conflict with it, and it is above both low
//! watermarks). Everything else, including every refusal, goes through the full checks,
//! so a refusal's reason does not depend on the path taken.

use crate::error::{DbError, Refusal};
use crate::records::{Records, Summary, ValidatorId};
use crate::types::{Approval, GenesisValidatorsRoot, SigningRoot, Subject, ValidatorPubkey};

/// Result of a check: `Err` is a database failure, `Ok(Err)` a refusal.
pub(crate) type CheckResult = Result<Result<Approval, Refusal>, DbError>;

/// Full check-and-record of one request: genesis root, high watermark, rules, insert.
pub(crate) fn check_and_record(
    rec: &mut dyn Records,
    gvr: &GenesisValidatorsRoot,
    pubkey: &ValidatorPubkey,
    subject: Subject,
    root: &SigningRoot,
) -> CheckResult {
    let meta = rec.meta()?;
    match meta.gvr {
        Some(bound) if bound == gvr.0 => {}
        Some(bound) => {
            return Ok(Err(Refusal::WrongGenesisValidatorsRoot {
                bound,
                requested: gvr.0,
            }))
        }
        None => rec.bind_gvr(&gvr.0)?,
    }
    if let Err(refusal) = check_high_watermark(meta.hw_slot, meta.hw_epoch, subject) {
        return Ok(Err(refusal));
    }
    let vid = rec.register_validator(&pubkey.0)?;
    let summary = rec.summary(vid)?;
    let outcome = match decide_from_summary(&summary, subject) {
        Some(approval) => Ok(approval),
        None => match subject {
            Subject::Block { slot } => check_block(rec, vid, slot.0, root)?,
            Subject::Attestation { source, target } => {
                check_attestation(rec, vid, source.0, target.0, root)?
            }
        },
    };
    if outcome == Ok(Approval::Recorded) {
        let stored = root.known().copied();
        match subject {
            Subject::Block { slot } => rec.insert_block(vid, slot.0, stored)?,
            Subject::Attestation { source, target } => {
                rec.insert_attestation(vid, source.0, target.0, stored)?
            }
        }
    }
    Ok(outcome)
}

/// The kill switch: blocks at or above the watermark slot, attestations with source or
/// target at or above the watermark epoch are refused.
fn check_high_watermark(
    hw_slot: Option<u64>,
    hw_epoch: Option<u64>,
    subject: Subject,
) -> Result<(), Refusal> {
    match subject {
        Subject::Block { slot } => match hw_slot {
            Some(hw) if slot.0 >= hw => Err(Refusal::HighWatermarkBlock {
                slot: slot.0,
                watermark_slot: hw,
            }),
            _ => Ok(()),
        },
        Subject::Attestation { source, target } => match hw_epoch {
            Some(hw) if source.0 >= hw || target.0 >= hw => {
                Err(Refusal::HighWatermarkAttestation {
                    source_epoch: source.0,
                    target_epoch: target.0,
                    watermark_epoch: hw,
                })
            }
            _ => Ok(()),
        },
    }
}

/// Allows a request from the validator's maxima alone when they prove it safe (see the
/// module docs); `None` when the history must be read.
pub(crate) fn decide_from_summary(summary: &Summary, subject: Subject) -> Option<Approval> {
    let safe = match subject {
        Subject::Block { slot } => summary.max_block_slot.is_none_or(|max| slot.0 > max),
        Subject::Attestation { source, target } => {
            source <= target
                && match (summary.max_source, summary.max_target) {
                    (Some(max_source), Some(max_target)) => {
                        target.0 > max_target && source.0 >= max_source
                    }
                    _ => true,
                }
        }
    };
    safe.then_some(Approval::Recorded)
}

/// Block rules against the recorded blocks of one validator (nothing written).
pub(crate) fn check_block(
    rec: &mut dyn Records,
    vid: ValidatorId,
    slot: u64,
    root: &SigningRoot,
) -> CheckResult {
    if let Some(existing) = rec.block_at(vid, slot)? {
        return Ok(match (existing, root.known()) {
            (Some(e), Some(r)) if e == *r => Ok(Approval::Repeat),
            _ => Err(Refusal::DoubleBlockProposal { slot }),
        });
    }
    if let Some(lowest) = rec.lowest_block_slot(vid)? {
        if slot <= lowest {
            return Ok(Err(Refusal::BlockSlotNotAboveWatermark {
                slot,
                lowest_slot: lowest,
            }));
        }
    }
    Ok(Ok(Approval::Recorded))
}

/// Attestation rules against the recorded attestations of one validator (nothing
/// written).
pub(crate) fn check_attestation(
    rec: &mut dyn Records,
    vid: ValidatorId,
    source: u64,
    target: u64,
    root: &SigningRoot,
) -> CheckResult {
    if let Some((existing_source, existing_root)) = rec.attestation_at_target(vid, target)? {
        return Ok(match (existing_root, root.known()) {
            (Some(e), Some(r)) if e == *r && existing_source == source => Ok(Approval::Repeat),
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
    if let Some((s, t)) = rec.record_surrounding(vid, source, target)? {
        return Ok(Err(Refusal::SurroundedVote {
            source_epoch: source,
            target_epoch: target,
            existing_source_epoch: s,
            existing_target_epoch: t,
        }));
    }
    if let Some((s, t)) = rec.record_surrounded(vid, source, target)? {
        return Ok(Err(Refusal::SurroundingVote {
            source_epoch: source,
            target_epoch: target,
            existing_source_epoch: s,
            existing_target_epoch: t,
        }));
    }
    let (lowest_source, lowest_target) = rec.lowest_source_and_target(vid)?;
    if let Some(lowest) = lowest_source {
        if source < lowest {
            return Ok(Err(Refusal::AttestationSourceBelowWatermark {
                source_epoch: source,
                lowest_source_epoch: lowest,
            }));
        }
    }
    if let Some(lowest) = lowest_target {
        if target <= lowest {
            return Ok(Err(Refusal::AttestationTargetNotAboveWatermark {
                target_epoch: target,
                lowest_target_epoch: lowest,
            }));
        }
    }
    Ok(Ok(Approval::Recorded))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::att;
    use crate::types::Slot;

    #[test]
    fn summary_allows_only_what_is_above_every_record() {
        let empty = Summary::default();
        assert_eq!(
            decide_from_summary(&empty, Subject::Block { slot: Slot(0) }),
            Some(Approval::Recorded)
        );
        assert_eq!(
            decide_from_summary(&empty, att(3, 4)),
            Some(Approval::Recorded)
        );
        // source > target always goes to the full checks (which refuse it).
        assert_eq!(decide_from_summary(&empty, att(5, 4)), None);

        let s = Summary::default().with_block(10).with_attestation(4, 6);
        assert_eq!(
            decide_from_summary(&s, Subject::Block { slot: Slot(11) }),
            Some(Approval::Recorded)
        );
        // A repeat or anything at or below the highest slot needs the history.
        assert_eq!(
            decide_from_summary(&s, Subject::Block { slot: Slot(10) }),
            None
        );
        assert_eq!(
            decide_from_summary(&s, Subject::Block { slot: Slot(3) }),
            None
        );
        assert_eq!(decide_from_summary(&s, att(4, 7)), Some(Approval::Recorded));
        assert_eq!(decide_from_summary(&s, att(6, 7)), Some(Approval::Recorded));
        // Same target (a repeat or a double vote), lower target, or a source below the
        // highest source (could surround a record): full checks.
        assert_eq!(decide_from_summary(&s, att(4, 6)), None);
        assert_eq!(decide_from_summary(&s, att(3, 7)), None);
        assert_eq!(decide_from_summary(&s, att(1, 5)), None);
    }
}
