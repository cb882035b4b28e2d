//! Small single-purpose payloads: epochs, slots, deposits, exits, registrations.

use serde::Deserialize;
use tree_hash_derive::TreeHash;

use crate::consensus::wire::{AddressHex, Bytes32, Bytes4, PubkeyHex, Quantity, SignatureHex};

/// `randao_reveal: {epoch}`.
#[derive(Debug, Clone, Deserialize)]
pub struct EpochPayload {
    /// The epoch whose RANDAO reveal is signed.
    pub epoch: Quantity,
}

/// `aggregation_slot: {slot}`.
#[derive(Debug, Clone, Deserialize)]
pub struct SlotPayload {
    /// The slot whose selection proof is signed.
    pub slot: Quantity,
}

/// `deposit`: a `DepositMessage` plus the fork version that decides its domain.
#[derive(Debug, Clone, Deserialize)]
pub struct DepositPayload {
    /// `pubkey`.
    pub pubkey: PubkeyHex,
    /// `withdrawal_credentials`.
    #[serde(alias = "withdrawalCredentials")]
    pub withdrawal_credentials: Bytes32,
    /// `amount` in Gwei.
    pub amount: Quantity,
    /// The network's `GENESIS_FORK_VERSION` as the client sees it.
    #[serde(alias = "genesisForkVersion")]
    pub genesis_fork_version: Bytes4,
}

/// `DepositMessage`.
#[derive(Debug, Clone, TreeHash)]
pub struct DepositMessage {
    /// `pubkey`.
    pub pubkey: PubkeyHex,
    /// `withdrawal_credentials`.
    pub withdrawal_credentials: Bytes32,
    /// `amount`.
    pub amount: Quantity,
}

/// `DepositData`: a signed `DepositMessage`, as the deposit contract takes it. Its root is
/// the `deposit_data_root` argument of the contract's `deposit` function.
#[derive(Debug, Clone, TreeHash)]
pub struct DepositData {
    /// `pubkey`.
    pub pubkey: PubkeyHex,
    /// `withdrawal_credentials`.
    pub withdrawal_credentials: Bytes32,
    /// `amount` in Gwei.
    pub amount: Quantity,
    /// `signature` over the deposit signing root.
    pub signature: SignatureHex,
}

impl DepositPayload {
    /// The `DepositMessage` that is signed.
    pub fn message(&self) -> DepositMessage {
        DepositMessage {
            pubkey: self.pubkey,
            withdrawal_credentials: self.withdrawal_credentials,
            amount: self.amount,
        }
    }
}

/// `VoluntaryExit`.
#[derive(Debug, Clone, Deserialize, TreeHash)]
pub struct VoluntaryExit {
    /// `epoch`.
    pub epoch: Quantity,
    /// `validator_index`.
    #[serde(alias = "validatorIndex")]
    pub validator_index: Quantity,
}

/// `SignedVoluntaryExit` (inside phase0/altair block bodies).
#[derive(Debug, Clone, Deserialize, TreeHash)]
pub struct SignedVoluntaryExit {
    /// `message`.
    pub message: VoluntaryExit,
    /// `signature`.
    pub signature: SignatureHex,
}

/// `ValidatorRegistrationV1` (builder-specs).
#[derive(Debug, Clone, Deserialize, TreeHash)]
pub struct ValidatorRegistration {
    /// `fee_recipient`.
    #[serde(alias = "feeRecipient")]
    pub fee_recipient: AddressHex,
    /// `gas_limit`.
    #[serde(alias = "gasLimit")]
    pub gas_limit: Quantity,
    /// `timestamp`.
    pub timestamp: Quantity,
    /// `pubkey`.
    pub pubkey: PubkeyHex,
}
