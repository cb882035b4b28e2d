//! Stage 2b: the future guard. A duty whose slot or epoch lies beyond the clock's current
//! slot plus a tolerance is refused before anything is recorded.
//!
//! Why: slashing protection records what it signs, and a record counts for good. One
//! attestation with a far-future target (from a client with a broken clock, or one that
//! is not the operator's) would make every later vote of that key look surrounded, and
//! a far-future block would refuse every proposal up to its slot; both travel with the
//! key in every interchange export. The refusal is a client error (HTTP 400), not a
//! slashing refusal (412): nothing is wrong with the key's history.
//!
//! Which types: every type whose payload names the duty's slot or epoch (see
//! `consensus::DutyTime`): blocks, attestations (target epoch), RANDAO reveals, selection
//! proofs, aggregates, sync committee messages and contributions, and the Gloas bids,
//! envelopes, PTC votes and proposer preferences. Not voluntary exits (a pre-signed exit
//! for a later epoch is legitimate), nor deposits, registrations or builder request
//! auths (no slot).

use std::sync::Arc;

use super::clock::Clock;
use super::SignError;
use crate::consensus::{DutyTime, Network};

/// The guard: off, or the chain's timing and the tolerance.
pub struct FutureGuard {
    timing: Option<ChainTiming>,
    clock: Arc<dyn Clock>,
}

/// What turns the clock into a slot.
#[derive(Debug, Clone, Copy)]
struct ChainTiming {
    genesis_ms: u64,
    slot_ms: u64,
    slots_per_epoch: u64,
    tolerance_slots: u64,
}

impl FutureGuard {
    /// A guard that never refuses.
    pub fn off() -> FutureGuard {
        FutureGuard {
            timing: None,
            clock: Arc::new(super::clock::SystemClock),
        }
    }

    /// A guard for `network`, reading `clock`; off when the network's genesis time is
    /// unknown.
    pub fn new(network: &Network, tolerance_slots: u64, clock: Arc<dyn Clock>) -> FutureGuard {
        let timing = network.genesis_time().map(|genesis| ChainTiming {
            genesis_ms: genesis.saturating_mul(1000),
            slot_ms: network.slot_duration_ms().max(1),
            slots_per_epoch: network.slots_per_epoch().max(1),
            tolerance_slots,
        });
        FutureGuard { timing, clock }
    }

    /// True when the guard can refuse anything.
    pub fn is_on(&self) -> bool {
        self.timing.is_some()
    }

    /// The latest slot a duty may have now, when the guard is on.
    pub fn latest_allowed_slot(&self) -> Option<u64> {
        let t = self.timing?;
        let now = self.clock.now_unix_ms();
        // Before genesis the current slot is 0.
        let current = now.saturating_sub(t.genesis_ms) / t.slot_ms;
        Some(current.saturating_add(t.tolerance_slots))
    }

    /// Refuses a duty beyond the latest allowed slot (or that slot's epoch).
    pub fn check(&self, duty: Option<DutyTime>) -> Result<(), SignError> {
        let (Some(duty), Some(t), Some(latest)) = (duty, self.timing, self.latest_allowed_slot())
        else {
            return Ok(());
        };
        let latest_epoch = latest / t.slots_per_epoch;
        let message = match duty {
            DutyTime::Slot(slot) if slot > latest => format!(
                "slot {slot} lies in the future: the clock allows at most slot {latest} \
                 (current slot + chain.future_tolerance_slots {}); nothing signed or recorded",
                t.tolerance_slots
            ),
            DutyTime::Epoch(epoch) if epoch > latest_epoch => format!(
                "epoch {epoch} lies in the future: the clock allows at most epoch \
                 {latest_epoch} (current slot + chain.future_tolerance_slots {}); nothing \
                 signed or recorded",
                t.tolerance_slots
            ),
            _ => return Ok(()),
        };
        Err(SignError::FutureDuty(message))
    }
}

#[cfg(test)]
mod tests {
    use super::super::clock::FixedClock;
    use super::*;
    use std::sync::atomic::Ordering;

    const MAINNET_GENESIS_MS: u64 = 1_606_824_023_000;

    fn guard_at(now_ms: u64, tolerance: u64) -> FutureGuard {
        let clock = Arc::new(FixedClock::default());
        clock.0.store(now_ms, Ordering::Relaxed);
        FutureGuard::new(&Network::builtin("mainnet").unwrap(), tolerance, clock)
    }

    #[test]
    fn slots_beyond_the_tolerance_are_refused() {
        // 1000 slots and 5 s after genesis: current slot 1000.
        let guard = guard_at(MAINNET_GENESIS_MS + 1000 * 12_000 + 5_000, 64);
        assert_eq!(guard.latest_allowed_slot(), Some(1064));
        assert!(guard.check(Some(DutyTime::Slot(1064))).is_ok());
        assert!(guard.check(Some(DutyTime::Slot(999))).is_ok());
        let err = guard.check(Some(DutyTime::Slot(1065))).unwrap_err();
        assert!(matches!(err, SignError::FutureDuty(ref m) if m.contains("slot 1065")));
        // Epoch of slot 1064 is 33.
        assert!(guard.check(Some(DutyTime::Epoch(33))).is_ok());
        let err = guard.check(Some(DutyTime::Epoch(34))).unwrap_err();
        assert!(matches!(err, SignError::FutureDuty(ref m) if m.contains("epoch 34")));
        assert!(guard.check(Some(DutyTime::Epoch(u64::MAX))).is_err());
        // Types without a duty time pass.
        assert!(guard.check(None).is_ok());
    }

    #[test]
    fn before_genesis_only_the_first_slots_pass() {
        let guard = guard_at(MAINNET_GENESIS_MS - 3_600_000, 2);
        assert_eq!(guard.latest_allowed_slot(), Some(2));
        assert!(guard.check(Some(DutyTime::Slot(2))).is_ok());
        assert!(guard.check(Some(DutyTime::Slot(3))).is_err());
    }

    #[test]
    fn unknown_genesis_time_or_off_never_refuses() {
        let clock = Arc::new(FixedClock::default());
        let guard = FutureGuard::new(&Network::devnet(), 1, clock);
        assert!(!guard.is_on());
        assert!(guard.check(Some(DutyTime::Slot(u64::MAX))).is_ok());
        assert!(FutureGuard::off()
            .check(Some(DutyTime::Epoch(u64::MAX)))
            .is_ok());
    }

    #[test]
    fn gnosis_uses_its_slot_length() {
        let clock = Arc::new(FixedClock::default());
        // 100 Gnosis slots (5 s) after its genesis.
        clock
            .0
            .store(1_638_993_340_000 + 100 * 5_000, Ordering::Relaxed);
        let guard = FutureGuard::new(&Network::builtin("gnosis").unwrap(), 16, clock);
        assert_eq!(guard.latest_allowed_slot(), Some(116));
    }
}
