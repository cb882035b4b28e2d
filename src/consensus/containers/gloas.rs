//! Gloas (EIP-7732, ePBS) signing containers.
//!
//! Sources, checked field by field:
//! - consensus-specs `specs/gloas/beacon-chain.md` (v1.7.0-alpha line; the executable spec
//!   `eth-consensus-specs` 1.7.0b4): `PayloadAttestationData`, `ExecutionPayloadBid`
//!   (`ProgressiveContainer`, 12 fields), `ExecutionPayloadEnvelope` (`ProgressiveContainer`,
//!   5 fields), `ExecutionPayload` (`ProgressiveContainer`, 19 fields), `ExecutionRequests`
//!   (`ProgressiveContainer`, 5 fields), every list among them a `ProgressiveList`;
//! - consensus-specs `specs/gloas/p2p-interface.md`: `ProposerPreferences` (plain container);
//! - builder-specs `specs/gloas/validator.md`: `RequestAuthV1 {data: ByteList[4096], slot}`
//!   (`BuilderRequestAuth` in remote-signing-api v1.4.0);
//! - JSON spelling: the beacon-API / remote-signing-api v1.4.0 convention, i.e. the spec's
//!   snake_case field names, decimal-string integers, `0x` hex for bytes, JSON booleans.

use serde::Deserialize;
use tree_hash::{Hash256, TreeHash};
use tree_hash_derive::TreeHash;

use crate::consensus::progressive::{
    progressive_container_root, progressive_list_root, progressive_list_root_packed,
};
use crate::consensus::wire::{
    byte_list_root, AddressHex, Bytes, Bytes32, HexBytes, PubkeyHex, Quantity, SignatureHex,
    Uint256,
};

/// `MAX_EXTRA_DATA_BYTES`.
const MAX_EXTRA_DATA_BYTES: usize = 32;
/// builder-specs `MAX_DATA_SIZE` of `RequestAuthV1.data`.
pub const MAX_REQUEST_AUTH_DATA: usize = 4096;

/// A 48-byte KZG commitment.
pub type KzgCommitmentHex = Bytes<48>;
/// A 256-byte logs bloom.
pub type LogsBloomHex = Bytes<256>;

/// `PayloadAttestationData` (beacon-chain.md). What a PTC member signs: the validator
/// index of `PayloadAttestationMessage` is not part of it.
#[derive(Debug, Clone, Deserialize, TreeHash)]
pub struct PayloadAttestationData {
    /// `beacon_block_root`.
    #[serde(alias = "beaconBlockRoot")]
    pub beacon_block_root: Bytes32,
    /// `slot`.
    pub slot: Quantity,
    /// `payload_present`.
    #[serde(alias = "payloadPresent")]
    pub payload_present: bool,
    /// `blob_data_available`.
    #[serde(alias = "blobDataAvailable")]
    pub blob_data_available: bool,
}

/// `ProposerPreferences` (p2p-interface.md), signed for the epoch of `proposal_slot`.
#[derive(Debug, Clone, Deserialize, TreeHash)]
pub struct ProposerPreferences {
    /// `dependent_root`.
    #[serde(alias = "dependentRoot")]
    pub dependent_root: Bytes32,
    /// `proposal_slot`.
    #[serde(alias = "proposalSlot")]
    pub proposal_slot: Quantity,
    /// `validator_index`.
    #[serde(alias = "validatorIndex")]
    pub validator_index: Quantity,
    /// `fee_recipient`.
    #[serde(alias = "feeRecipient")]
    pub fee_recipient: AddressHex,
    /// `target_gas_limit`.
    #[serde(alias = "targetGasLimit")]
    pub target_gas_limit: Quantity,
}

/// builder-specs `RequestAuthV1` (remote-signing-api: `BuilderRequestAuth`).
#[derive(Debug, Clone, Deserialize)]
pub struct BuilderRequestAuth {
    /// `data`: opaque bytes, normally the builder's URL.
    pub data: HexBytes,
    /// `slot`.
    pub slot: Quantity,
}

impl BuilderRequestAuth {
    /// The container root; `data` must hold 1 to 4096 bytes (builder-specs forbids an
    /// empty one, `ByteList[MAX_DATA_SIZE]` a longer one).
    pub fn root(&self) -> Result<Hash256, String> {
        let len = self.data.0.len();
        if !(1..=MAX_REQUEST_AUTH_DATA).contains(&len) {
            return Err(format!(
                "data: {len} bytes; must be 1 to {MAX_REQUEST_AUTH_DATA} bytes"
            ));
        }
        Ok(crate::consensus::wire::container_root(&[
            byte_list_root(&self.data.0, MAX_REQUEST_AUTH_DATA),
            self.slot.tree_hash_root(),
        ]))
    }
}

/// `ExecutionPayloadBid` (beacon-chain.md): a `ProgressiveContainer` of 12 fields.
#[derive(Debug, Clone, Deserialize)]
pub struct ExecutionPayloadBid {
    /// `parent_block_hash`.
    #[serde(alias = "parentBlockHash")]
    pub parent_block_hash: Bytes32,
    /// `parent_block_root`.
    #[serde(alias = "parentBlockRoot")]
    pub parent_block_root: Bytes32,
    /// `block_hash`.
    #[serde(alias = "blockHash")]
    pub block_hash: Bytes32,
    /// `prev_randao`.
    #[serde(alias = "prevRandao")]
    pub prev_randao: Bytes32,
    /// `fee_recipient`.
    #[serde(alias = "feeRecipient")]
    pub fee_recipient: AddressHex,
    /// `gas_limit`.
    #[serde(alias = "gasLimit")]
    pub gas_limit: Quantity,
    /// `builder_index` (`BUILDER_INDEX_SELF_BUILD` = 2^64 - 1 on self-build).
    #[serde(alias = "builderIndex")]
    pub builder_index: Quantity,
    /// `slot`: picks the fork version.
    pub slot: Quantity,
    /// `value`.
    pub value: Quantity,
    /// `execution_payment`.
    #[serde(alias = "executionPayment")]
    pub execution_payment: Quantity,
    /// `blob_kzg_commitments`: `ProgressiveList[KZGCommitment]`.
    #[serde(alias = "blobKzgCommitments")]
    pub blob_kzg_commitments: Vec<KzgCommitmentHex>,
    /// `execution_requests_root`.
    #[serde(alias = "executionRequestsRoot")]
    pub execution_requests_root: Bytes32,
}

impl ExecutionPayloadBid {
    /// `hash_tree_root(ExecutionPayloadBid)`.
    pub fn root(&self) -> Hash256 {
        let commitments: Vec<Hash256> = self
            .blob_kzg_commitments
            .iter()
            .map(TreeHash::tree_hash_root)
            .collect();
        progressive_container_root(&[
            self.parent_block_hash.tree_hash_root(),
            self.parent_block_root.tree_hash_root(),
            self.block_hash.tree_hash_root(),
            self.prev_randao.tree_hash_root(),
            self.fee_recipient.tree_hash_root(),
            self.gas_limit.tree_hash_root(),
            self.builder_index.tree_hash_root(),
            self.slot.tree_hash_root(),
            self.value.tree_hash_root(),
            self.execution_payment.tree_hash_root(),
            progressive_list_root(&commitments),
            self.execution_requests_root.tree_hash_root(),
        ])
    }
}

/// `Withdrawal` (Capella).
#[derive(Debug, Clone, Deserialize, TreeHash)]
pub struct Withdrawal {
    /// `index`.
    pub index: Quantity,
    /// `validator_index`.
    #[serde(alias = "validatorIndex")]
    pub validator_index: Quantity,
    /// `address`.
    pub address: AddressHex,
    /// `amount`.
    pub amount: Quantity,
}

/// `DepositRequest` (Electra).
#[derive(Debug, Clone, Deserialize, TreeHash)]
pub struct DepositRequest {
    /// `pubkey`.
    pub pubkey: PubkeyHex,
    /// `withdrawal_credentials`.
    #[serde(alias = "withdrawalCredentials")]
    pub withdrawal_credentials: Bytes32,
    /// `amount`.
    pub amount: Quantity,
    /// `signature`.
    pub signature: SignatureHex,
    /// `index`.
    pub index: Quantity,
}

/// `WithdrawalRequest` (Electra).
#[derive(Debug, Clone, Deserialize, TreeHash)]
pub struct WithdrawalRequest {
    /// `source_address`.
    #[serde(alias = "sourceAddress")]
    pub source_address: AddressHex,
    /// `validator_pubkey`.
    #[serde(alias = "validatorPubkey")]
    pub validator_pubkey: PubkeyHex,
    /// `amount`.
    pub amount: Quantity,
}

/// `ConsolidationRequest` (Electra).
#[derive(Debug, Clone, Deserialize, TreeHash)]
pub struct ConsolidationRequest {
    /// `source_address`.
    #[serde(alias = "sourceAddress")]
    pub source_address: AddressHex,
    /// `source_pubkey`.
    #[serde(alias = "sourcePubkey")]
    pub source_pubkey: PubkeyHex,
    /// `target_pubkey`.
    #[serde(alias = "targetPubkey")]
    pub target_pubkey: PubkeyHex,
}

/// `BuilderDepositRequest` (Gloas, EIP-8282).
#[derive(Debug, Clone, Deserialize, TreeHash)]
pub struct BuilderDepositRequest {
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

/// `BuilderExitRequest` (Gloas, EIP-8282).
#[derive(Debug, Clone, Deserialize, TreeHash)]
pub struct BuilderExitRequest {
    /// `source_address`.
    #[serde(alias = "sourceAddress")]
    pub source_address: AddressHex,
    /// `pubkey`.
    pub pubkey: PubkeyHex,
}

/// `ExecutionRequests` (Gloas): a `ProgressiveContainer` of five progressive lists.
#[derive(Debug, Clone, Deserialize)]
pub struct ExecutionRequests {
    /// `deposits`.
    pub deposits: Vec<DepositRequest>,
    /// `withdrawals`.
    pub withdrawals: Vec<WithdrawalRequest>,
    /// `consolidations`.
    pub consolidations: Vec<ConsolidationRequest>,
    /// `builder_deposits`.
    #[serde(alias = "builderDeposits")]
    pub builder_deposits: Vec<BuilderDepositRequest>,
    /// `builder_exits`.
    #[serde(alias = "builderExits")]
    pub builder_exits: Vec<BuilderExitRequest>,
}

/// The root of a `ProgressiveList` of containers.
fn list_root<T: TreeHash>(items: &[T]) -> Hash256 {
    let roots: Vec<Hash256> = items.iter().map(TreeHash::tree_hash_root).collect();
    progressive_list_root(&roots)
}

/// The root of a `ProgressiveList[Byte]` (`Transaction`, `BlockAccessList`).
fn progressive_bytes_root(bytes: &HexBytes) -> Hash256 {
    progressive_list_root_packed(&bytes.0, bytes.0.len())
}

impl ExecutionRequests {
    /// `hash_tree_root(ExecutionRequests)`.
    pub fn root(&self) -> Hash256 {
        progressive_container_root(&[
            list_root(&self.deposits),
            list_root(&self.withdrawals),
            list_root(&self.consolidations),
            list_root(&self.builder_deposits),
            list_root(&self.builder_exits),
        ])
    }
}

/// `ExecutionPayload` (Gloas): a `ProgressiveContainer` of 19 fields.
#[derive(Debug, Clone, Deserialize)]
pub struct ExecutionPayload {
    /// `parent_hash`.
    #[serde(alias = "parentHash")]
    pub parent_hash: Bytes32,
    /// `fee_recipient`.
    #[serde(alias = "feeRecipient")]
    pub fee_recipient: AddressHex,
    /// `state_root`.
    #[serde(alias = "stateRoot")]
    pub state_root: Bytes32,
    /// `receipts_root`.
    #[serde(alias = "receiptsRoot")]
    pub receipts_root: Bytes32,
    /// `logs_bloom`.
    #[serde(alias = "logsBloom")]
    pub logs_bloom: LogsBloomHex,
    /// `prev_randao`.
    #[serde(alias = "prevRandao")]
    pub prev_randao: Bytes32,
    /// `block_number`.
    #[serde(alias = "blockNumber")]
    pub block_number: Quantity,
    /// `gas_limit`.
    #[serde(alias = "gasLimit")]
    pub gas_limit: Quantity,
    /// `gas_used`.
    #[serde(alias = "gasUsed")]
    pub gas_used: Quantity,
    /// `timestamp`.
    pub timestamp: Quantity,
    /// `extra_data`: `ByteList[MAX_EXTRA_DATA_BYTES]`.
    #[serde(alias = "extraData")]
    pub extra_data: HexBytes,
    /// `base_fee_per_gas`: `uint256`.
    #[serde(alias = "baseFeePerGas")]
    pub base_fee_per_gas: Uint256,
    /// `block_hash`.
    #[serde(alias = "blockHash")]
    pub block_hash: Bytes32,
    /// `transactions`: `ProgressiveList[ProgressiveList[Byte]]`.
    pub transactions: Vec<HexBytes>,
    /// `withdrawals`.
    pub withdrawals: Vec<Withdrawal>,
    /// `blob_gas_used`.
    #[serde(alias = "blobGasUsed")]
    pub blob_gas_used: Quantity,
    /// `excess_blob_gas`.
    #[serde(alias = "excessBlobGas")]
    pub excess_blob_gas: Quantity,
    /// `block_access_list` (EIP-7928): `ProgressiveList[Byte]`.
    #[serde(alias = "blockAccessList")]
    pub block_access_list: HexBytes,
    /// `slot_number` (EIP-7843): the slot the envelope is signed for.
    #[serde(alias = "slotNumber")]
    pub slot_number: Quantity,
}

impl ExecutionPayload {
    /// `hash_tree_root(ExecutionPayload)`; refuses an over-long `extra_data`.
    pub fn root(&self) -> Result<Hash256, String> {
        let extra = self.extra_data.0.len();
        if extra > MAX_EXTRA_DATA_BYTES {
            return Err(format!(
                "payload.extra_data: {extra} bytes; at most {MAX_EXTRA_DATA_BYTES}"
            ));
        }
        let transactions: Vec<Hash256> = self
            .transactions
            .iter()
            .map(progressive_bytes_root)
            .collect();
        Ok(progressive_container_root(&[
            self.parent_hash.tree_hash_root(),
            self.fee_recipient.tree_hash_root(),
            self.state_root.tree_hash_root(),
            self.receipts_root.tree_hash_root(),
            self.logs_bloom.tree_hash_root(),
            self.prev_randao.tree_hash_root(),
            self.block_number.tree_hash_root(),
            self.gas_limit.tree_hash_root(),
            self.gas_used.tree_hash_root(),
            self.timestamp.tree_hash_root(),
            byte_list_root(&self.extra_data.0, MAX_EXTRA_DATA_BYTES),
            self.base_fee_per_gas.root(),
            self.block_hash.tree_hash_root(),
            progressive_list_root(&transactions),
            list_root(&self.withdrawals),
            self.blob_gas_used.tree_hash_root(),
            self.excess_blob_gas.tree_hash_root(),
            progressive_bytes_root(&self.block_access_list),
            self.slot_number.tree_hash_root(),
        ]))
    }
}

/// `ExecutionPayloadEnvelope` (Gloas): a `ProgressiveContainer` of 5 fields. Its slot is
/// `payload.slot_number` (the spec signs it at `compute_epoch_at_slot(state.slot)`).
#[derive(Debug, Clone, Deserialize)]
pub struct ExecutionPayloadEnvelope {
    /// `payload`.
    pub payload: ExecutionPayload,
    /// `execution_requests`.
    #[serde(alias = "executionRequests")]
    pub execution_requests: ExecutionRequests,
    /// `builder_index` (`BUILDER_INDEX_SELF_BUILD` = 2^64 - 1 when the proposer built it).
    #[serde(alias = "builderIndex")]
    pub builder_index: Quantity,
    /// `beacon_block_root`.
    #[serde(alias = "beaconBlockRoot")]
    pub beacon_block_root: Bytes32,
    /// `parent_beacon_block_root`.
    #[serde(alias = "parentBeaconBlockRoot")]
    pub parent_beacon_block_root: Bytes32,
}

impl ExecutionPayloadEnvelope {
    /// `hash_tree_root(ExecutionPayloadEnvelope)`.
    pub fn root(&self) -> Result<Hash256, String> {
        Ok(progressive_container_root(&[
            self.payload.root()?,
            self.execution_requests.root(),
            self.builder_index.tree_hash_root(),
            self.beacon_block_root.tree_hash_root(),
            self.parent_beacon_block_root.tree_hash_root(),
        ]))
    }

    /// The slot that picks the fork version.
    pub fn slot(&self) -> Quantity {
        self.payload.slot_number
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_auth_data_length() {
        let auth = |n: usize| BuilderRequestAuth {
            data: HexBytes(vec![0x61; n]),
            slot: Quantity(1),
        };
        assert!(auth(0).root().unwrap_err().contains("0 bytes"));
        assert!(auth(4097).root().is_err());
        assert!(auth(1).root().is_ok());
        assert_ne!(auth(4096).root().unwrap(), auth(4095).root().unwrap());
    }

    #[test]
    fn payload_attestation_booleans_are_json_booleans() {
        let ok = r#"{"beacon_block_root":"0x0000000000000000000000000000000000000000000000000000000000000000","slot":"1","payload_present":true,"blob_data_available":false}"#;
        assert!(serde_json::from_str::<PayloadAttestationData>(ok).is_ok());
        let bad = ok.replace("true", "\"true\"");
        assert!(serde_json::from_str::<PayloadAttestationData>(&bad).is_err());
    }
}
