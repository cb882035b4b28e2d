//! Consensus-layer knowledge: sign-request types, SSZ containers, fork schedules and
//! presets, domains and signing roots.
//!
//! The one entry point for the API is [`prepare`]: it parses a sign-request body, recomputes
//! its signing root from the payload, and says what slashing protection must check.

mod network;

pub use network::{Network, NetworkError};

/// A 32-byte SSZ root.
pub type Root = [u8; 32];

/// The request types of the Web3Signer signing API, as named on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RequestType {
    /// `BLOCK`: legacy phase0 block (Teku).
    Block,
    /// `BLOCK_V2`: a block or block header of any fork.
    BlockV2,
    /// `ATTESTATION`: AttestationData.
    Attestation,
    /// `RANDAO_REVEAL`: an epoch.
    RandaoReveal,
    /// `DEPOSIT`: a DepositMessage.
    Deposit,
    /// `VOLUNTARY_EXIT`.
    VoluntaryExit,
    /// `AGGREGATION_SLOT`: the selection proof of an aggregator.
    AggregationSlot,
    /// `AGGREGATE_AND_PROOF`.
    AggregateAndProof,
    /// `AGGREGATE_AND_PROOF_V2`: `{version, data}`.
    AggregateAndProofV2,
    /// `SYNC_COMMITTEE_MESSAGE`.
    SyncCommitteeMessage,
    /// `SYNC_COMMITTEE_SELECTION_PROOF`.
    SyncCommitteeSelectionProof,
    /// `SYNC_COMMITTEE_CONTRIBUTION_AND_PROOF`.
    SyncCommitteeContributionAndProof,
    /// `VALIDATOR_REGISTRATION`: builder registration.
    ValidatorRegistration,
}

impl RequestType {
    /// Every request type, in wire-name order.
    pub const ALL: [RequestType; 13] = [
        RequestType::Block,
        RequestType::BlockV2,
        RequestType::Attestation,
        RequestType::RandaoReveal,
        RequestType::Deposit,
        RequestType::VoluntaryExit,
        RequestType::AggregationSlot,
        RequestType::AggregateAndProof,
        RequestType::AggregateAndProofV2,
        RequestType::SyncCommitteeMessage,
        RequestType::SyncCommitteeSelectionProof,
        RequestType::SyncCommitteeContributionAndProof,
        RequestType::ValidatorRegistration,
    ];

    /// The wire name, e.g. `BLOCK_V2`.
    pub fn as_str(&self) -> &'static str {
        match self {
            RequestType::Block => "BLOCK",
            RequestType::BlockV2 => "BLOCK_V2",
            RequestType::Attestation => "ATTESTATION",
            RequestType::RandaoReveal => "RANDAO_REVEAL",
            RequestType::Deposit => "DEPOSIT",
            RequestType::VoluntaryExit => "VOLUNTARY_EXIT",
            RequestType::AggregationSlot => "AGGREGATION_SLOT",
            RequestType::AggregateAndProof => "AGGREGATE_AND_PROOF",
            RequestType::AggregateAndProofV2 => "AGGREGATE_AND_PROOF_V2",
            RequestType::SyncCommitteeMessage => "SYNC_COMMITTEE_MESSAGE",
            RequestType::SyncCommitteeSelectionProof => "SYNC_COMMITTEE_SELECTION_PROOF",
            RequestType::SyncCommitteeContributionAndProof => {
                "SYNC_COMMITTEE_CONTRIBUTION_AND_PROOF"
            }
            RequestType::ValidatorRegistration => "VALIDATOR_REGISTRATION",
        }
    }
}

/// What slashing protection must check and record before a request may be signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlashingSubject {
    /// A block proposal at `slot`.
    Block {
        /// The block's slot.
        slot: u64,
    },
    /// An attestation from `source_epoch` to `target_epoch`.
    Attestation {
        /// `data.source.epoch`.
        source_epoch: u64,
        /// `data.target.epoch`.
        target_epoch: u64,
    },
}

/// A sign request reduced to what the signer needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreparedRequest {
    /// The request's type.
    pub request_type: RequestType,
    /// The signing root recomputed from the payload (never the one the client supplied).
    pub signing_root: Root,
    /// Set for blocks and attestations: what slashing protection checks and records.
    pub slashing: Option<SlashingSubject>,
    /// `fork_info.genesis_validators_root`, for the types that carry `fork_info`.
    pub genesis_validators_root: Option<Root>,
}

/// Why a sign request was refused before anything else happened. Every variant is a
/// client error (HTTP 400); messages name the offending field.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// Placeholder until the request parser lands.
    #[error("request parsing is not implemented")]
    NotImplemented,
}

/// Parses a sign-request body and recomputes its signing root under `network`.
///
/// A `signingRoot`/`signing_root` in the body that differs from the recomputed one is a
/// [`RequestError`].
pub fn prepare(body: &[u8], network: &Network) -> Result<PreparedRequest, RequestError> {
    let _ = (body, network);
    Err(RequestError::NotImplemented)
}
