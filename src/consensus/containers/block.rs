//! Full phase0/altair blocks (the only forks whose clients send a whole `BeaconBlock`).

use serde::Deserialize;
use ssz_types::typenum::U33;
use ssz_types::{BitList, FixedVector, VariableList};
use tree_hash::{Hash256, TreeHash};
use tree_hash_derive::TreeHash;

use super::common::{AttestationData, BeaconBlockHeader};
use super::misc::SignedVoluntaryExit;
use super::sync::SyncAggregate;
use crate::consensus::fork::Fork;
use crate::consensus::preset::PresetSpec;
use crate::consensus::wire::{container_root, Bytes32, PubkeyHex, Quantity, SignatureHex};

/// `Eth1Data`.
#[derive(Debug, Clone, Deserialize, TreeHash)]
pub struct Eth1Data {
    /// `deposit_root`.
    #[serde(alias = "depositRoot")]
    pub deposit_root: Bytes32,
    /// `deposit_count`.
    #[serde(alias = "depositCount")]
    pub deposit_count: Quantity,
    /// `block_hash`.
    #[serde(alias = "blockHash")]
    pub block_hash: Bytes32,
}

/// `SignedBeaconBlockHeader`.
#[derive(Debug, Clone, Deserialize, TreeHash)]
pub struct SignedBeaconBlockHeader {
    /// `message`.
    pub message: BeaconBlockHeader,
    /// `signature`.
    pub signature: SignatureHex,
}

/// `ProposerSlashing`.
#[derive(Debug, Clone, Deserialize, TreeHash)]
pub struct ProposerSlashing {
    /// `signed_header_1`.
    #[serde(alias = "signedHeader1")]
    pub signed_header_1: SignedBeaconBlockHeader,
    /// `signed_header_2`.
    #[serde(alias = "signedHeader2")]
    pub signed_header_2: SignedBeaconBlockHeader,
}

/// `IndexedAttestation` (phase0..deneb).
#[derive(Debug, Clone, Deserialize, TreeHash)]
#[serde(bound = "")]
pub struct IndexedAttestation<P: PresetSpec> {
    /// `attesting_indices`.
    #[serde(alias = "attestingIndices")]
    pub attesting_indices: VariableList<Quantity, P::MaxValidatorsPerCommittee>,
    /// `data`.
    pub data: AttestationData,
    /// `signature`.
    pub signature: SignatureHex,
}

/// `AttesterSlashing` (phase0..deneb).
#[derive(Debug, Clone, Deserialize, TreeHash)]
#[serde(bound = "")]
pub struct AttesterSlashing<P: PresetSpec> {
    /// `attestation_1`.
    #[serde(alias = "attestation1")]
    pub attestation_1: IndexedAttestation<P>,
    /// `attestation_2`.
    #[serde(alias = "attestation2")]
    pub attestation_2: IndexedAttestation<P>,
}

/// `Attestation` (phase0..deneb).
#[derive(Debug, Clone, Deserialize, TreeHash)]
#[serde(bound = "")]
pub struct Attestation<P: PresetSpec> {
    /// `aggregation_bits`.
    #[serde(alias = "aggregationBits")]
    pub aggregation_bits: BitList<P::MaxValidatorsPerCommittee>,
    /// `data`.
    pub data: AttestationData,
    /// `signature`.
    pub signature: SignatureHex,
}

/// `DepositData`.
#[derive(Debug, Clone, Deserialize, TreeHash)]
pub struct DepositData {
    /// `pubkey`.
    pub pubkey: PubkeyHex,
    /// `withdrawal_credentials`.
    #[serde(alias = "withdrawalCredentials")]
    pub withdrawal_credentials: Bytes32,
    /// `amount`.
    pub amount: Quantity,
    /// `signature`.
    pub signature: SignatureHex,
}

/// `Deposit`: the proof is `Vector[Bytes32, DEPOSIT_CONTRACT_TREE_DEPTH + 1]`.
#[derive(Debug, Clone, Deserialize, TreeHash)]
pub struct Deposit {
    /// `proof`.
    pub proof: FixedVector<Bytes32, U33>,
    /// `data`.
    pub data: DepositData,
}

/// A phase0 or altair `BeaconBlockBody`: `sync_aggregate` exists from altair on.
#[derive(Debug, Clone, Deserialize)]
#[serde(bound = "")]
pub struct BeaconBlockBody<P: PresetSpec> {
    /// `randao_reveal`.
    #[serde(alias = "randaoReveal")]
    pub randao_reveal: SignatureHex,
    /// `eth1_data`.
    #[serde(alias = "eth1Data")]
    pub eth1_data: Eth1Data,
    /// `graffiti`.
    pub graffiti: Bytes32,
    /// `proposer_slashings`.
    #[serde(alias = "proposerSlashings")]
    pub proposer_slashings: VariableList<ProposerSlashing, P::MaxProposerSlashings>,
    /// `attester_slashings`.
    #[serde(alias = "attesterSlashings")]
    pub attester_slashings: VariableList<AttesterSlashing<P>, P::MaxAttesterSlashings>,
    /// `attestations`.
    pub attestations: VariableList<Attestation<P>, P::MaxAttestations>,
    /// `deposits`.
    pub deposits: VariableList<Deposit, P::MaxDeposits>,
    /// `voluntary_exits`.
    #[serde(alias = "voluntaryExits")]
    pub voluntary_exits: VariableList<SignedVoluntaryExit, P::MaxVoluntaryExits>,
    /// `sync_aggregate` (altair).
    #[serde(alias = "syncAggregate")]
    pub sync_aggregate: Option<SyncAggregate<P>>,
}

/// Why a full block does not fit the fork it is sent for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyShapeError {
    /// The fork has no full-block support here (Bellatrix and later: send the header).
    UnsupportedFork(Fork),
    /// An altair body without `sync_aggregate`.
    MissingSyncAggregate,
    /// A phase0 body with `sync_aggregate`.
    UnexpectedSyncAggregate,
}

impl<P: PresetSpec> BeaconBlockBody<P> {
    /// The body's root as the container of `fork`.
    pub fn root(&self, fork: Fork) -> Result<Hash256, BodyShapeError> {
        let mut roots = vec![
            self.randao_reveal.tree_hash_root(),
            self.eth1_data.tree_hash_root(),
            self.graffiti.tree_hash_root(),
            self.proposer_slashings.tree_hash_root(),
            self.attester_slashings.tree_hash_root(),
            self.attestations.tree_hash_root(),
            self.deposits.tree_hash_root(),
            self.voluntary_exits.tree_hash_root(),
        ];
        match (fork, &self.sync_aggregate) {
            (Fork::Phase0, None) => {}
            (Fork::Phase0, Some(_)) => return Err(BodyShapeError::UnexpectedSyncAggregate),
            (Fork::Altair, Some(sync)) => roots.push(sync.tree_hash_root()),
            (Fork::Altair, None) => return Err(BodyShapeError::MissingSyncAggregate),
            (other, _) => return Err(BodyShapeError::UnsupportedFork(other)),
        }
        Ok(container_root(&roots))
    }
}

/// A phase0 or altair `BeaconBlock`.
#[derive(Debug, Clone, Deserialize)]
#[serde(bound = "")]
pub struct BeaconBlock<P: PresetSpec> {
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
    /// `body`.
    pub body: BeaconBlockBody<P>,
}

impl<P: PresetSpec> BeaconBlock<P> {
    /// The block's root as the container of `fork` (equal to its header's root).
    pub fn root(&self, fork: Fork) -> Result<Hash256, BodyShapeError> {
        let header = BeaconBlockHeader {
            slot: self.slot,
            proposer_index: self.proposer_index,
            parent_root: self.parent_root,
            state_root: self.state_root,
            body_root: crate::consensus::wire::Bytes(self.body.root(fork)?.0),
        };
        Ok(header.tree_hash_root())
    }
}
