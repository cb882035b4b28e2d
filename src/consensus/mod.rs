//! Consensus-layer knowledge: sign-request types, SSZ containers, fork schedules and
//! presets, domains and signing roots.
//!
//! The one entry point for the API is [`prepare`]: it parses a sign-request body, recomputes
//! its signing root from the payload, and says what slashing protection must check.

pub mod containers;
pub mod domain;
pub mod fork;
mod network;
pub mod preset;
pub mod progressive;
mod request;
pub mod wire;

pub use fork::Fork;
pub use network::{Network, NetworkError, FAR_FUTURE_EPOCH};
pub use preset::Preset;
pub use request::{ForkInfo, ForkWire};

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
    /// `EXECUTION_PAYLOAD_BID` (Gloas): a builder's bid, `{version, data}`.
    ExecutionPayloadBid,
    /// `EXECUTION_PAYLOAD_ENVELOPE` (Gloas): the payload reveal, `{version, data}`; a
    /// proposer signs one when it builds its own payload.
    ExecutionPayloadEnvelope,
    /// `PAYLOAD_ATTESTATION_MESSAGE` (Gloas): a PTC vote, `{version, data}` with
    /// `PayloadAttestationData`.
    PayloadAttestationMessage,
    /// `PAYLOAD_ATTESTATION` (Gloas): Lighthouse's name for the same PTC vote, with a
    /// bare `payload_attestation_data` (sigp/lighthouse #9252).
    PayloadAttestation,
    /// `PROPOSER_PREFERENCES` (Gloas): fee recipient and gas limit for a proposal slot.
    ProposerPreferences,
    /// `BUILDER_REQUEST_AUTH` (Gloas, builder-specs): authenticates a bid request to a
    /// builder; no `fork_info`.
    BuilderRequestAuth,
}

impl RequestType {
    /// Every request type, in wire-name order.
    pub const ALL: [RequestType; 19] = [
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
        RequestType::ExecutionPayloadBid,
        RequestType::ExecutionPayloadEnvelope,
        RequestType::PayloadAttestationMessage,
        RequestType::PayloadAttestation,
        RequestType::ProposerPreferences,
        RequestType::BuilderRequestAuth,
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
            RequestType::ExecutionPayloadBid => "EXECUTION_PAYLOAD_BID",
            RequestType::ExecutionPayloadEnvelope => "EXECUTION_PAYLOAD_ENVELOPE",
            RequestType::PayloadAttestationMessage => "PAYLOAD_ATTESTATION_MESSAGE",
            RequestType::PayloadAttestation => "PAYLOAD_ATTESTATION",
            RequestType::ProposerPreferences => "PROPOSER_PREFERENCES",
            RequestType::BuilderRequestAuth => "BUILDER_REQUEST_AUTH",
        }
    }
}

/// What slashing protection must check and record before a request may be signed. Only
/// blocks and attestations are slashable; none of the Gloas types is (consensus-specs
/// `specs/gloas/`: no slashing condition covers bids, envelopes, PTC votes, preferences
/// or request auths).
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

/// When a duty falls: the slot or epoch that the signer's future guard compares with the
/// clock. Set for the slot- and epoch-bearing duty types (blocks, attestations, RANDAO
/// reveals, aggregation, sync committee and the Gloas bids, envelopes, PTC votes and
/// proposer preferences); `None` for deposits, registrations, builder request auths and
/// voluntary exits (an exit's epoch is the earliest it may be included, not a duty: a
/// pre-signed exit for a later epoch is legitimate and no protection depends on it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DutyTime {
    /// The duty's slot.
    Slot(u64),
    /// The duty's epoch (an attestation's target, a RANDAO reveal's epoch).
    Epoch(u64),
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
    /// The slot or epoch the duty belongs to, for the types that have one.
    pub duty: Option<DutyTime>,
}

/// Why a sign request was refused before anything else happened. Every variant is a
/// client error (HTTP 400); messages name the offending field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// Not JSON, or a field of the wrong JSON type, bad hex, wrong length, bad integer;
    /// the message starts with the field's path.
    #[error("malformed sign request: {0}")]
    Malformed(String),
    /// No `type` field.
    #[error("missing field `type`")]
    MissingType,
    /// A `type` that is not one of the signing API's types.
    #[error("unknown type {0:?}")]
    UnknownType(String),
    /// The type's payload key is absent.
    #[error("{request_type} request without its payload `{key}`")]
    MissingPayload {
        /// The request's type.
        request_type: RequestType,
        /// The key it needs.
        key: &'static str,
    },
    /// The body carries another type's payload instead of this type's.
    #[error("{request_type} request needs payload `{expected}`, but the body has `{found}`")]
    WrongPayload {
        /// The request's type.
        request_type: RequestType,
        /// The key it needs.
        expected: &'static str,
        /// The payload keys found instead.
        found: String,
    },
    /// Besides its own payload the body carries others.
    #[error("{request_type} request must carry exactly one payload; also found `{extra}`")]
    ExtraPayload {
        /// The request's type.
        request_type: RequestType,
        /// The superfluous payload keys.
        extra: String,
    },
    /// A type whose domain needs `fork_info` came without it.
    #[error("{0} request without `fork_info`")]
    MissingForkInfo(RequestType),
    /// A `version` that names no known fork.
    #[error("{field}: unknown fork version name {value:?}")]
    UnknownVersion {
        /// The field.
        field: &'static str,
        /// Its value.
        value: String,
    },
    /// A payload whose shape does not fit its fork or type.
    #[error("{field}: {reason}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The client's `signingRoot` is not the root recomputed from the payload.
    #[error("signingRoot mismatch: request says 0x{supplied}, payload hashes to 0x{computed}")]
    SigningRootMismatch {
        /// The client's root, hex.
        supplied: String,
        /// The recomputed root, hex.
        computed: String,
    },
}

impl std::fmt::Display for RequestType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Parses a sign-request body and recomputes its signing root under `network`.
///
/// A `signingRoot`/`signing_root` in the body that differs from the recomputed one is a
/// [`RequestError`]. The network's preset decides SSZ limits; its fork schedule matters
/// only for voluntary exits (EIP-7044), bare aggregates (Electra and Gloas containers),
/// and validator registrations and builder request auths (genesis fork version).
pub fn prepare(body: &[u8], network: &Network) -> Result<PreparedRequest, RequestError> {
    match network.preset() {
        Preset::Mainnet | Preset::Gnosis => {
            request::prepare_with::<preset::MainnetSpec>(body, network)
        }
        Preset::Minimal => request::prepare_with::<preset::MinimalSpec>(body, network),
    }
}

#[cfg(test)]
mod tests;
