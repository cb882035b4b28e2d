//! Presets: the compile-time SSZ list and vector limits that differ between mainnet-like
//! and minimal networks, as typenum types so containers are typed by their limits.

use std::fmt::Debug;

use ssz_types::typenum::{Unsigned, U128, U131072, U16, U2, U2048, U32, U4, U512, U64, U8, U8192};

/// A network's preset, as named by `PRESET_BASE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Preset {
    /// The mainnet preset.
    Mainnet,
    /// The minimal preset (test networks, devnets).
    Minimal,
    /// Gnosis: mainnet SSZ limits, 16 slots per epoch.
    Gnosis,
}

impl Preset {
    /// Parses a `PRESET_BASE` value.
    pub fn from_name(name: &str) -> Option<Preset> {
        match name.to_ascii_lowercase().as_str() {
            "mainnet" => Some(Preset::Mainnet),
            "minimal" => Some(Preset::Minimal),
            "gnosis" => Some(Preset::Gnosis),
            _ => None,
        }
    }

    /// The `PRESET_BASE` name.
    pub fn name(&self) -> &'static str {
        match self {
            Preset::Mainnet => "mainnet",
            Preset::Minimal => "minimal",
            Preset::Gnosis => "gnosis",
        }
    }

    /// `SLOTS_PER_EPOCH`.
    pub fn slots_per_epoch(&self) -> u64 {
        match self {
            Preset::Mainnet => 32,
            Preset::Minimal => 8,
            Preset::Gnosis => 16,
        }
    }

    /// The usual slot length of networks on this preset (consensus-specs' configs:
    /// mainnet 12 s, minimal 6 s; Gnosis 5 s), for configs without `SECONDS_PER_SLOT`.
    pub fn default_slot_duration_ms(&self) -> u64 {
        match self {
            Preset::Mainnet => 12_000,
            Preset::Minimal => 6_000,
            Preset::Gnosis => 5_000,
        }
    }
}

/// Bounds every typenum limit needs for SSZ hashing and serde.
pub trait Limit: Unsigned + Clone + Debug + PartialEq + Send + Sync + 'static {}
impl<T: Unsigned + Clone + Debug + PartialEq + Send + Sync + 'static> Limit for T {}

/// The SSZ limits of one preset family. Only the limits of containers a signer hashes in
/// full are here (phase0/altair blocks, attestations, aggregates, sync contributions).
pub trait PresetSpec: Clone + Debug + Send + Sync + 'static {
    /// `MAX_VALIDATORS_PER_COMMITTEE`.
    type MaxValidatorsPerCommittee: Limit;
    /// `MAX_COMMITTEES_PER_SLOT` (Electra `committee_bits` length).
    type MaxCommitteesPerSlot: Limit;
    /// `MAX_VALIDATORS_PER_COMMITTEE * MAX_COMMITTEES_PER_SLOT` (Electra aggregation bits).
    type MaxValidatorsPerSlot: Limit;
    /// `SYNC_COMMITTEE_SIZE`.
    type SyncCommitteeSize: Limit;
    /// `SYNC_COMMITTEE_SIZE / SYNC_COMMITTEE_SUBNET_COUNT`.
    type SyncSubcommitteeSize: Limit;
    /// `MAX_PROPOSER_SLASHINGS`.
    type MaxProposerSlashings: Limit;
    /// `MAX_ATTESTER_SLASHINGS` (phase0..deneb).
    type MaxAttesterSlashings: Limit;
    /// `MAX_ATTESTATIONS` (phase0..deneb).
    type MaxAttestations: Limit;
    /// `MAX_DEPOSITS`.
    type MaxDeposits: Limit;
    /// `MAX_VOLUNTARY_EXITS`.
    type MaxVoluntaryExits: Limit;
}

/// Mainnet (and gnosis) limits.
#[derive(Debug, Clone)]
pub struct MainnetSpec;

impl PresetSpec for MainnetSpec {
    type MaxValidatorsPerCommittee = U2048;
    type MaxCommitteesPerSlot = U64;
    type MaxValidatorsPerSlot = U131072;
    type SyncCommitteeSize = U512;
    type SyncSubcommitteeSize = U128;
    type MaxProposerSlashings = U16;
    type MaxAttesterSlashings = U2;
    type MaxAttestations = U128;
    type MaxDeposits = U16;
    type MaxVoluntaryExits = U16;
}

/// Minimal-preset limits.
#[derive(Debug, Clone)]
pub struct MinimalSpec;

impl PresetSpec for MinimalSpec {
    type MaxValidatorsPerCommittee = U2048;
    type MaxCommitteesPerSlot = U4;
    type MaxValidatorsPerSlot = U8192;
    type SyncCommitteeSize = U32;
    type SyncSubcommitteeSize = U8;
    type MaxProposerSlashings = U16;
    type MaxAttesterSlashings = U2;
    type MaxAttestations = U128;
    type MaxDeposits = U16;
    type MaxVoluntaryExits = U16;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check<P: PresetSpec>(committees: usize, sync: usize) {
        assert_eq!(P::MaxCommitteesPerSlot::to_usize(), committees);
        assert_eq!(
            P::MaxValidatorsPerSlot::to_usize(),
            P::MaxValidatorsPerCommittee::to_usize() * committees
        );
        assert_eq!(P::SyncCommitteeSize::to_usize(), sync);
        assert_eq!(P::SyncSubcommitteeSize::to_usize() * 4, sync);
    }

    #[test]
    fn derived_limits_are_consistent() {
        check::<MainnetSpec>(64, 512);
        check::<MinimalSpec>(4, 32);
    }

    #[test]
    fn names() {
        assert_eq!(Preset::from_name("'x'"), None);
        assert_eq!(Preset::from_name("MINIMAL"), Some(Preset::Minimal));
        assert_eq!(Preset::Gnosis.slots_per_epoch(), 16);
    }
}
