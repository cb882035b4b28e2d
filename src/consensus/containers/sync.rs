//! Sync-committee payloads (Altair and later).

use serde::Deserialize;
use ssz_types::BitVector;
use tree_hash_derive::TreeHash;

use crate::consensus::preset::PresetSpec;
use crate::consensus::wire::{Bytes32, Quantity, SignatureHex};

/// `sync_committee_message: {beacon_block_root, slot}`.
#[derive(Debug, Clone, Deserialize)]
pub struct SyncCommitteeMessagePayload {
    /// The block root that is signed.
    #[serde(alias = "beaconBlockRoot")]
    pub beacon_block_root: Bytes32,
    /// The slot that picks the fork.
    pub slot: Quantity,
}

/// `SyncAggregatorSelectionData`.
#[derive(Debug, Clone, Deserialize, TreeHash)]
pub struct SyncAggregatorSelectionData {
    /// `slot`.
    pub slot: Quantity,
    /// `subcommittee_index`.
    #[serde(alias = "subcommitteeIndex")]
    pub subcommittee_index: Quantity,
}

/// `SyncCommitteeContribution`.
#[derive(Debug, Clone, Deserialize, TreeHash)]
#[serde(bound = "")]
pub struct SyncCommitteeContribution<P: PresetSpec> {
    /// `slot`.
    pub slot: Quantity,
    /// `beacon_block_root`.
    #[serde(alias = "beaconBlockRoot")]
    pub beacon_block_root: Bytes32,
    /// `subcommittee_index`.
    #[serde(alias = "subcommitteeIndex")]
    pub subcommittee_index: Quantity,
    /// `aggregation_bits`: `Bitvector[SYNC_COMMITTEE_SIZE // SYNC_COMMITTEE_SUBNET_COUNT]`.
    #[serde(alias = "aggregationBits")]
    pub aggregation_bits: BitVector<P::SyncSubcommitteeSize>,
    /// `signature`.
    pub signature: SignatureHex,
}

/// `ContributionAndProof`.
#[derive(Debug, Clone, Deserialize, TreeHash)]
#[serde(bound = "")]
pub struct ContributionAndProof<P: PresetSpec> {
    /// `aggregator_index`.
    #[serde(alias = "aggregatorIndex")]
    pub aggregator_index: Quantity,
    /// `contribution`.
    pub contribution: SyncCommitteeContribution<P>,
    /// `selection_proof`.
    #[serde(alias = "selectionProof")]
    pub selection_proof: SignatureHex,
}

/// `SyncAggregate` (Altair block bodies).
#[derive(Debug, Clone, Deserialize, TreeHash)]
#[serde(bound = "")]
pub struct SyncAggregate<P: PresetSpec> {
    /// `sync_committee_bits`: `Bitvector[SYNC_COMMITTEE_SIZE]`.
    #[serde(alias = "syncCommitteeBits")]
    pub sync_committee_bits: BitVector<P::SyncCommitteeSize>,
    /// `sync_committee_signature`.
    #[serde(alias = "syncCommitteeSignature")]
    pub sync_committee_signature: SignatureHex,
}
