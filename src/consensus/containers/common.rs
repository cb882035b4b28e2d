//! Containers shared by several request types.

use serde::Deserialize;
use tree_hash_derive::TreeHash;

use crate::consensus::wire::{Bytes32, Quantity};

/// `Checkpoint`.
#[derive(Debug, Clone, Deserialize, TreeHash)]
pub struct Checkpoint {
    /// `epoch`.
    pub epoch: Quantity,
    /// `root`.
    pub root: Bytes32,
}

/// `AttestationData`.
#[derive(Debug, Clone, Deserialize, TreeHash)]
pub struct AttestationData {
    /// `slot`.
    pub slot: Quantity,
    /// `index` (committee index; 0 from Electra on).
    pub index: Quantity,
    /// `beacon_block_root`.
    #[serde(alias = "beaconBlockRoot")]
    pub beacon_block_root: Bytes32,
    /// `source`.
    pub source: Checkpoint,
    /// `target`.
    pub target: Checkpoint,
}

/// `BeaconBlockHeader`.
#[derive(Debug, Clone, Deserialize, TreeHash)]
pub struct BeaconBlockHeader {
    /// `slot`.
    pub slot: Quantity,
    /// `proposer_index`.
    #[serde(alias = "proposerIndex")]
    pub proposer_index: Quantity,
    /// `parent_root`.
    #[serde(alias = "parentRoot")]
    pub parent_root: Bytes32,
    /// `state_root`.
    #[serde(alias = "stateRoot")]
    pub state_root: Bytes32,
    /// `body_root`.
    #[serde(alias = "bodyRoot")]
    pub body_root: Bytes32,
}
