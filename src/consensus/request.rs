//! The sign-request body: one typed pass over the JSON, then per-type root computation.

use serde::Deserialize;
use tree_hash::{Hash256, TreeHash};

use super::containers::aggregate::{AggregateAndProofPayload, AttestationShapeError};
use super::containers::block::{BeaconBlock, BodyShapeError};
use super::containers::common::{AttestationData, BeaconBlockHeader};
use super::containers::gloas::{
    BuilderRequestAuth, ExecutionPayloadBid, ExecutionPayloadEnvelope, PayloadAttestationData,
    ProposerPreferences,
};
use super::containers::misc::{
    DepositPayload, EpochPayload, SlotPayload, ValidatorRegistration, VoluntaryExit,
};
use super::containers::sync::{
    ContributionAndProof, SyncAggregatorSelectionData, SyncCommitteeMessagePayload,
};
use super::domain::*;
use super::fork::{select_fork_version, Fork};
use super::network::Network;
use super::preset::PresetSpec;
use super::wire::{Bytes, Bytes32, Bytes4, Quantity};
use super::{DutyTime, PreparedRequest, RequestError, RequestType, SlashingSubject};

/// `fork_info.fork`.
#[derive(Debug, Clone, Deserialize)]
pub struct ForkWire {
    /// `previous_version`.
    #[serde(alias = "previousVersion")]
    pub previous_version: Bytes4,
    /// `current_version`.
    #[serde(alias = "currentVersion")]
    pub current_version: Bytes4,
    /// `epoch`: informational only (Lodestar sends the message's epoch here).
    pub epoch: Quantity,
}

/// `fork_info`.
#[derive(Debug, Clone, Deserialize)]
pub struct ForkInfo {
    /// `fork`.
    pub fork: ForkWire,
    /// `genesis_validators_root`.
    #[serde(alias = "genesisValidatorsRoot")]
    pub genesis_validators_root: Bytes32,
}

impl ForkInfo {
    /// `compute_domain` with the spec's fork-version rule at `epoch`.
    fn domain(&self, domain_type: DomainType, epoch: u64) -> super::Root {
        let version = select_fork_version(
            self.fork.previous_version,
            self.fork.current_version,
            self.fork.epoch.0,
            epoch,
        );
        compute_domain(domain_type, version, self.genesis_validators_root)
    }
}

/// `beacon_block: {version, block | block_header}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(bound = "")]
pub struct BlockV2Payload<P: PresetSpec> {
    /// The fork name.
    pub version: String,
    /// A full block (phase0/altair).
    pub block: Option<BeaconBlock<P>>,
    /// A block header (any fork; what clients send from bellatrix on).
    #[serde(alias = "blockHeader")]
    pub block_header: Option<BeaconBlockHeader>,
}

/// The `{version, data}` wrapper of the Gloas request types (remote-signing-api v1.4.0).
/// Both halves are optional here so that a missing one gets a precise message.
#[derive(Debug, Clone, Deserialize)]
pub struct Versioned<T> {
    /// The fork name: `GLOAS` or later.
    pub version: Option<String>,
    /// The signed object.
    pub data: Option<T>,
}

/// The whole request body. Every payload key is optional here; the type decides which
/// one must be present.
#[derive(Debug, Deserialize)]
#[serde(bound = "")]
struct Body<P: PresetSpec> {
    #[serde(rename = "type")]
    request_type: Option<String>,
    #[serde(alias = "forkInfo")]
    fork_info: Option<ForkInfo>,
    #[serde(rename = "signingRoot", alias = "signing_root")]
    signing_root: Option<Bytes32>,
    block: Option<BeaconBlock<P>>,
    #[serde(alias = "beaconBlock")]
    beacon_block: Option<BlockV2Payload<P>>,
    attestation: Option<AttestationData>,
    #[serde(alias = "randaoReveal")]
    randao_reveal: Option<EpochPayload>,
    deposit: Option<DepositPayload>,
    #[serde(alias = "voluntaryExit")]
    voluntary_exit: Option<VoluntaryExit>,
    #[serde(alias = "aggregationSlot")]
    aggregation_slot: Option<SlotPayload>,
    #[serde(alias = "aggregateAndProof")]
    aggregate_and_proof: Option<AggregateAndProofPayload>,
    #[serde(alias = "syncCommitteeMessage")]
    sync_committee_message: Option<SyncCommitteeMessagePayload>,
    #[serde(alias = "syncAggregatorSelectionData")]
    sync_aggregator_selection_data: Option<SyncAggregatorSelectionData>,
    #[serde(alias = "contributionAndProof")]
    contribution_and_proof: Option<ContributionAndProof<P>>,
    #[serde(alias = "validatorRegistration")]
    validator_registration: Option<ValidatorRegistration>,
    #[serde(alias = "executionPayloadBid")]
    execution_payload_bid: Option<Versioned<ExecutionPayloadBid>>,
    #[serde(alias = "executionPayloadEnvelope")]
    execution_payload_envelope: Option<Versioned<ExecutionPayloadEnvelope>>,
    #[serde(alias = "payloadAttestationMessage")]
    payload_attestation_message: Option<Versioned<PayloadAttestationData>>,
    #[serde(alias = "payloadAttestationData")]
    payload_attestation_data: Option<PayloadAttestationData>,
    #[serde(alias = "proposerPreferences")]
    proposer_preferences: Option<Versioned<ProposerPreferences>>,
    #[serde(alias = "builderRequestAuth")]
    builder_request_auth: Option<Versioned<BuilderRequestAuth>>,
}

impl RequestType {
    /// Parses a wire name, case-insensitively.
    pub fn from_wire(name: &str) -> Option<RequestType> {
        RequestType::ALL
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(name))
    }

    /// The body key that carries this type's payload.
    pub fn payload_key(&self) -> &'static str {
        match self {
            RequestType::Block => "block",
            RequestType::BlockV2 => "beacon_block",
            RequestType::Attestation => "attestation",
            RequestType::RandaoReveal => "randao_reveal",
            RequestType::Deposit => "deposit",
            RequestType::VoluntaryExit => "voluntary_exit",
            RequestType::AggregationSlot => "aggregation_slot",
            RequestType::AggregateAndProof | RequestType::AggregateAndProofV2 => {
                "aggregate_and_proof"
            }
            RequestType::SyncCommitteeMessage => "sync_committee_message",
            RequestType::SyncCommitteeSelectionProof => "sync_aggregator_selection_data",
            RequestType::SyncCommitteeContributionAndProof => "contribution_and_proof",
            RequestType::ValidatorRegistration => "validator_registration",
            RequestType::ExecutionPayloadBid => "execution_payload_bid",
            RequestType::ExecutionPayloadEnvelope => "execution_payload_envelope",
            RequestType::PayloadAttestationMessage => "payload_attestation_message",
            RequestType::PayloadAttestation => "payload_attestation_data",
            RequestType::ProposerPreferences => "proposer_preferences",
            RequestType::BuilderRequestAuth => "builder_request_auth",
        }
    }

    /// Whether the domain comes from `fork_info` (all but DEPOSIT, registrations and
    /// builder request auths, whose domains use the genesis fork version).
    pub fn needs_fork_info(&self) -> bool {
        !matches!(
            self,
            RequestType::Deposit
                | RequestType::ValidatorRegistration
                | RequestType::BuilderRequestAuth
        )
    }
}

impl<P: PresetSpec> Body<P> {
    /// The payload keys present in the body.
    fn present_payload_keys(&self) -> Vec<&'static str> {
        let keys = [
            ("block", self.block.is_some()),
            ("beacon_block", self.beacon_block.is_some()),
            ("attestation", self.attestation.is_some()),
            ("randao_reveal", self.randao_reveal.is_some()),
            ("deposit", self.deposit.is_some()),
            ("voluntary_exit", self.voluntary_exit.is_some()),
            ("aggregation_slot", self.aggregation_slot.is_some()),
            ("aggregate_and_proof", self.aggregate_and_proof.is_some()),
            (
                "sync_committee_message",
                self.sync_committee_message.is_some(),
            ),
            (
                "sync_aggregator_selection_data",
                self.sync_aggregator_selection_data.is_some(),
            ),
            (
                "contribution_and_proof",
                self.contribution_and_proof.is_some(),
            ),
            (
                "validator_registration",
                self.validator_registration.is_some(),
            ),
            (
                "execution_payload_bid",
                self.execution_payload_bid.is_some(),
            ),
            (
                "execution_payload_envelope",
                self.execution_payload_envelope.is_some(),
            ),
            (
                "payload_attestation_message",
                self.payload_attestation_message.is_some(),
            ),
            (
                "payload_attestation_data",
                self.payload_attestation_data.is_some(),
            ),
            ("proposer_preferences", self.proposer_preferences.is_some()),
            ("builder_request_auth", self.builder_request_auth.is_some()),
        ];
        keys.into_iter()
            .filter(|(_, present)| *present)
            .map(|(key, _)| key)
            .collect()
    }
}

/// The recomputed signing root and what slashing protection needs, before comparing with
/// a client-supplied root.
struct Computed {
    signing_root: super::Root,
    slashing: Option<SlashingSubject>,
    duty: Option<DutyTime>,
}

impl Computed {
    /// The same result, for a duty at `slot`.
    fn at_slot(self, slot: Quantity) -> Computed {
        Computed {
            duty: Some(DutyTime::Slot(slot.0)),
            ..self
        }
    }

    /// The same result, for a duty in `epoch`.
    fn in_epoch(self, epoch: u64) -> Computed {
        Computed {
            duty: Some(DutyTime::Epoch(epoch)),
            ..self
        }
    }
}

/// Parses `body` with the limits of preset `P` and recomputes its signing root.
pub(crate) fn prepare_with<P: PresetSpec>(
    body: &[u8],
    network: &Network,
) -> Result<PreparedRequest, RequestError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let parsed: Body<P> = serde_path_to_error::deserialize(&mut de).map_err(malformed)?;
    de.end()
        .map_err(|e| RequestError::Malformed(e.to_string()))?;

    let type_name = parsed
        .request_type
        .as_deref()
        .ok_or(RequestError::MissingType)?;
    let request_type = RequestType::from_wire(type_name)
        .ok_or_else(|| RequestError::UnknownType(type_name.to_string()))?;
    check_payload_keys(&parsed, request_type)?;
    let fork_info = match (&parsed.fork_info, request_type.needs_fork_info()) {
        (Some(info), true) => Some(info),
        (None, true) => return Err(RequestError::MissingForkInfo(request_type)),
        (_, false) => None,
    };
    let computed = compute(&parsed, request_type, fork_info, network)?;
    if let Some(supplied) = parsed.signing_root {
        if supplied.0 != computed.signing_root {
            return Err(RequestError::SigningRootMismatch {
                supplied: hex::encode(supplied.0),
                computed: hex::encode(computed.signing_root),
            });
        }
    }
    Ok(PreparedRequest {
        request_type,
        signing_root: computed.signing_root,
        slashing: computed.slashing,
        genesis_validators_root: fork_info.map(|f| f.genesis_validators_root.0),
        duty: computed.duty,
    })
}

fn malformed(e: serde_path_to_error::Error<serde_json::Error>) -> RequestError {
    let path = e.path().to_string();
    let inner = e.into_inner();
    if inner.is_syntax() || inner.is_eof() || path == "." {
        RequestError::Malformed(inner.to_string())
    } else {
        RequestError::Malformed(format!("{path}: {inner}"))
    }
}

/// Exactly the type's payload key must be present.
fn check_payload_keys<P: PresetSpec>(
    body: &Body<P>,
    request_type: RequestType,
) -> Result<(), RequestError> {
    let expected = request_type.payload_key();
    let present = body.present_payload_keys();
    let others: Vec<&str> = present.iter().copied().filter(|k| *k != expected).collect();
    match (present.contains(&expected), others.is_empty()) {
        (true, true) => Ok(()),
        (true, false) => Err(RequestError::ExtraPayload {
            request_type,
            extra: others.join(", "),
        }),
        (false, true) => Err(RequestError::MissingPayload {
            request_type,
            key: expected,
        }),
        (false, false) => Err(RequestError::WrongPayload {
            request_type,
            expected,
            found: others.join(", "),
        }),
    }
}

/// Dispatches on the type. Payload presence was checked by [`check_payload_keys`]; the
/// `missing` fallbacks only keep this free of panics.
fn compute<P: PresetSpec>(
    body: &Body<P>,
    request_type: RequestType,
    fork_info: Option<&ForkInfo>,
    network: &Network,
) -> Result<Computed, RequestError> {
    let missing = || RequestError::MissingPayload {
        request_type,
        key: request_type.payload_key(),
    };
    let info = || fork_info.ok_or(RequestError::MissingForkInfo(request_type));
    let epoch_of = |slot: Quantity| network.epoch_of_slot(slot.0);
    match request_type {
        RequestType::Block => {
            let block = body.block.as_ref().ok_or_else(missing)?;
            let root = block
                .root(Fork::Phase0)
                .map_err(|e| body_shape_error("block", Fork::Phase0, e))?;
            let signing_root =
                signing_root(root, info()?, DOMAIN_BEACON_PROPOSER, epoch_of(block.slot));
            Ok(block_result(signing_root, block.slot))
        }
        RequestType::BlockV2 => {
            let payload = body.beacon_block.as_ref().ok_or_else(missing)?;
            let (root, slot) = block_v2_root(payload)?;
            let signing_root = signing_root(root, info()?, DOMAIN_BEACON_PROPOSER, epoch_of(slot));
            Ok(block_result(signing_root, slot))
        }
        RequestType::Attestation => {
            let data = body.attestation.as_ref().ok_or_else(missing)?;
            let signing_root = signing_root(
                data.tree_hash_root(),
                info()?,
                DOMAIN_BEACON_ATTESTER,
                data.target.epoch.0,
            );
            Ok(Computed {
                signing_root,
                slashing: Some(SlashingSubject::Attestation {
                    source_epoch: data.source.epoch.0,
                    target_epoch: data.target.epoch.0,
                }),
                duty: None,
            }
            .in_epoch(data.target.epoch.0))
        }
        RequestType::RandaoReveal => {
            let epoch = body.randao_reveal.as_ref().ok_or_else(missing)?.epoch;
            let root = signing_root(epoch.tree_hash_root(), info()?, DOMAIN_RANDAO, epoch.0);
            Ok(plain(root).in_epoch(epoch.0))
        }
        RequestType::Deposit => {
            let deposit = body.deposit.as_ref().ok_or_else(missing)?;
            let domain =
                compute_domain(DOMAIN_DEPOSIT, deposit.genesis_fork_version, Bytes32::ZERO);
            Ok(plain(compute_signing_root(
                deposit.message().tree_hash_root(),
                domain,
            )))
        }
        RequestType::VoluntaryExit => {
            let exit = body.voluntary_exit.as_ref().ok_or_else(missing)?;
            Ok(plain(voluntary_exit_root(exit, info()?, network)))
        }
        RequestType::AggregationSlot => {
            let slot = body.aggregation_slot.as_ref().ok_or_else(missing)?.slot;
            let root = signing_root(
                slot.tree_hash_root(),
                info()?,
                DOMAIN_SELECTION_PROOF,
                epoch_of(slot),
            );
            Ok(plain(root).at_slot(slot))
        }
        RequestType::AggregateAndProof | RequestType::AggregateAndProofV2 => {
            let payload = body.aggregate_and_proof.as_ref().ok_or_else(missing)?;
            let (root, slot) = aggregate_root::<P>(payload, request_type, network)?;
            let root = signing_root(root, info()?, DOMAIN_AGGREGATE_AND_PROOF, epoch_of(slot));
            Ok(plain(root).at_slot(slot))
        }
        RequestType::SyncCommitteeMessage => {
            let msg = body.sync_committee_message.as_ref().ok_or_else(missing)?;
            let root = signing_root(
                msg.beacon_block_root.tree_hash_root(),
                info()?,
                DOMAIN_SYNC_COMMITTEE,
                epoch_of(msg.slot),
            );
            Ok(plain(root).at_slot(msg.slot))
        }
        RequestType::SyncCommitteeSelectionProof => {
            let data = body
                .sync_aggregator_selection_data
                .as_ref()
                .ok_or_else(missing)?;
            let root = signing_root(
                data.tree_hash_root(),
                info()?,
                DOMAIN_SYNC_COMMITTEE_SELECTION_PROOF,
                epoch_of(data.slot),
            );
            Ok(plain(root).at_slot(data.slot))
        }
        RequestType::SyncCommitteeContributionAndProof => {
            let cap = body.contribution_and_proof.as_ref().ok_or_else(missing)?;
            let root = signing_root(
                cap.tree_hash_root(),
                info()?,
                DOMAIN_CONTRIBUTION_AND_PROOF,
                epoch_of(cap.contribution.slot),
            );
            Ok(plain(root).at_slot(cap.contribution.slot))
        }
        RequestType::ValidatorRegistration => {
            let reg = body.validator_registration.as_ref().ok_or_else(missing)?;
            let domain = compute_domain(
                DOMAIN_APPLICATION_BUILDER,
                Bytes(network.genesis_fork_version()),
                Bytes32::ZERO,
            );
            Ok(plain(compute_signing_root(reg.tree_hash_root(), domain)))
        }
        RequestType::ExecutionPayloadBid
        | RequestType::ExecutionPayloadEnvelope
        | RequestType::PayloadAttestationMessage
        | RequestType::PayloadAttestation
        | RequestType::ProposerPreferences
        | RequestType::BuilderRequestAuth => compute_gloas(body, request_type, fork_info, network),
    }
}

/// The Gloas request types (none slashable). Domains and epochs follow the spec's signing
/// functions: `get_execution_payload_bid_signature` (epoch of `bid.slot`),
/// `get_execution_payload_envelope_signature` (epoch of the envelope's slot,
/// `payload.slot_number`), `get_payload_attestation_message_signature` (epoch of
/// `data.slot`), `get_signed_proposer_preferences` (epoch of `proposal_slot`) and
/// builder-specs `verify_request_auth_signature` (genesis version, zero root).
fn compute_gloas<P: PresetSpec>(
    body: &Body<P>,
    request_type: RequestType,
    fork_info: Option<&ForkInfo>,
    network: &Network,
) -> Result<Computed, RequestError> {
    let missing = || RequestError::MissingPayload {
        request_type,
        key: request_type.payload_key(),
    };
    let info = || fork_info.ok_or(RequestError::MissingForkInfo(request_type));
    let epoch_of = |slot: Quantity| network.epoch_of_slot(slot.0);
    let computed = match request_type {
        RequestType::ExecutionPayloadBid => {
            let bid = gloas_data(body.execution_payload_bid.as_ref(), request_type)?;
            plain(signing_root(
                bid.root(),
                info()?,
                DOMAIN_BEACON_BUILDER,
                epoch_of(bid.slot),
            ))
            .at_slot(bid.slot)
        }
        RequestType::ExecutionPayloadEnvelope => {
            let envelope = gloas_data(body.execution_payload_envelope.as_ref(), request_type)?;
            let object_root = envelope.root().map_err(|reason| RequestError::Invalid {
                field: "execution_payload_envelope.data",
                reason,
            })?;
            let epoch = epoch_of(envelope.slot());
            plain(signing_root(
                object_root,
                info()?,
                DOMAIN_BEACON_BUILDER,
                epoch,
            ))
            .at_slot(envelope.slot())
        }
        RequestType::PayloadAttestationMessage | RequestType::PayloadAttestation => {
            let data = match request_type {
                RequestType::PayloadAttestation => {
                    body.payload_attestation_data.as_ref().ok_or_else(missing)?
                }
                _ => gloas_data(body.payload_attestation_message.as_ref(), request_type)?,
            };
            let epoch = epoch_of(data.slot);
            plain(signing_root(
                data.tree_hash_root(),
                info()?,
                DOMAIN_PTC_ATTESTER,
                epoch,
            ))
            .at_slot(data.slot)
        }
        RequestType::ProposerPreferences => {
            let prefs = gloas_data(body.proposer_preferences.as_ref(), request_type)?;
            let epoch = epoch_of(prefs.proposal_slot);
            plain(signing_root(
                prefs.tree_hash_root(),
                info()?,
                DOMAIN_PROPOSER_PREFERENCES,
                epoch,
            ))
            .at_slot(prefs.proposal_slot)
        }
        RequestType::BuilderRequestAuth => {
            let auth = gloas_data(body.builder_request_auth.as_ref(), request_type)?;
            let object_root = auth.root().map_err(|reason| RequestError::Invalid {
                field: "builder_request_auth.data",
                reason,
            })?;
            let domain = compute_domain(
                DOMAIN_BUILDER_REQUEST_AUTH,
                Bytes(network.genesis_fork_version()),
                Bytes32::ZERO,
            );
            plain(compute_signing_root(object_root, domain))
        }
        _ => return Err(missing()),
    };
    Ok(computed)
}

/// `<key>.version` and `<key>.data` of a Gloas type, for error messages.
fn versioned_fields(request_type: RequestType) -> (&'static str, &'static str) {
    match request_type {
        RequestType::ExecutionPayloadBid => (
            "execution_payload_bid.version",
            "execution_payload_bid.data",
        ),
        RequestType::ExecutionPayloadEnvelope => (
            "execution_payload_envelope.version",
            "execution_payload_envelope.data",
        ),
        RequestType::PayloadAttestationMessage => (
            "payload_attestation_message.version",
            "payload_attestation_message.data",
        ),
        RequestType::ProposerPreferences => {
            ("proposer_preferences.version", "proposer_preferences.data")
        }
        RequestType::BuilderRequestAuth => {
            ("builder_request_auth.version", "builder_request_auth.data")
        }
        _ => ("version", "data"),
    }
}

/// The `data` of a `{version, data}` payload whose version names GLOAS or a later fork.
fn gloas_data<T>(
    payload: Option<&Versioned<T>>,
    request_type: RequestType,
) -> Result<&T, RequestError> {
    let payload = payload.ok_or(RequestError::MissingPayload {
        request_type,
        key: request_type.payload_key(),
    })?;
    let (version_field, data_field) = versioned_fields(request_type);
    let version = payload
        .version
        .as_deref()
        .ok_or_else(|| RequestError::Invalid {
            field: version_field,
            reason: format!("missing; {request_type} needs {{version: \"GLOAS\", data}}"),
        })?;
    let fork = Fork::from_version_name(version).ok_or_else(|| RequestError::UnknownVersion {
        field: version_field,
        value: version.to_string(),
    })?;
    if fork < Fork::Gloas {
        return Err(RequestError::Invalid {
            field: version_field,
            reason: format!(
                "{request_type} exists from GLOAS on; {} has no such object",
                fork.name()
            ),
        });
    }
    payload.data.as_ref().ok_or_else(|| RequestError::Invalid {
        field: data_field,
        reason: format!("missing; {request_type} needs {{version, data}}"),
    })
}

fn signing_root(
    object_root: Hash256,
    info: &ForkInfo,
    domain_type: DomainType,
    epoch: u64,
) -> super::Root {
    compute_signing_root(object_root, info.domain(domain_type, epoch))
}

fn plain(signing_root: super::Root) -> Computed {
    Computed {
        signing_root,
        slashing: None,
        duty: None,
    }
}

fn block_result(signing_root: super::Root, slot: Quantity) -> Computed {
    Computed {
        signing_root,
        slashing: Some(SlashingSubject::Block { slot: slot.0 }),
        duty: Some(DutyTime::Slot(slot.0)),
    }
}

/// EIP-7044: from the network's Deneb epoch on, exits are signed with the Capella fork
/// version whatever `fork_info` says (Lighthouse sends a synthetic Capella fork, Teku the
/// real one); before that, the usual rule.
fn voluntary_exit_root(exit: &VoluntaryExit, info: &ForkInfo, network: &Network) -> super::Root {
    let domain = if exit.epoch.0 >= network.fork_epoch(Fork::Deneb) {
        compute_domain(
            DOMAIN_VOLUNTARY_EXIT,
            Bytes(network.fork_version(Fork::Capella)),
            info.genesis_validators_root,
        )
    } else {
        info.domain(DOMAIN_VOLUNTARY_EXIT, exit.epoch.0)
    };
    compute_signing_root(exit.tree_hash_root(), domain)
}

/// The object root and slot of a `BLOCK_V2` payload.
fn block_v2_root<P: PresetSpec>(
    payload: &BlockV2Payload<P>,
) -> Result<(Hash256, Quantity), RequestError> {
    let fork =
        Fork::from_version_name(&payload.version).ok_or_else(|| RequestError::UnknownVersion {
            field: "beacon_block.version",
            value: payload.version.clone(),
        })?;
    match (&payload.block, &payload.block_header) {
        (Some(_), Some(_)) => Err(RequestError::Invalid {
            field: "beacon_block",
            reason: "has both block and block_header; send exactly one".to_string(),
        }),
        (None, Some(header)) => Ok((header.tree_hash_root(), header.slot)),
        (Some(block), None) => {
            let root = block
                .root(fork)
                .map_err(|e| body_shape_error("beacon_block.block", fork, e))?;
            Ok((root, block.slot))
        }
        (None, None) => Err(RequestError::Invalid {
            field: "beacon_block",
            reason: "needs block (PHASE0, ALTAIR) or block_header (any fork)".to_string(),
        }),
    }
}

fn body_shape_error(field: &'static str, fork: Fork, e: BodyShapeError) -> RequestError {
    let reason = match e {
        BodyShapeError::UnsupportedFork(f) => format!(
            "full {} blocks are not accepted; send block_header (full blocks: PHASE0 and ALTAIR only)",
            f.name()
        ),
        BodyShapeError::MissingSyncAggregate => {
            format!("body.sync_aggregate is required in a {} block", fork.name())
        }
        BodyShapeError::UnexpectedSyncAggregate => {
            format!("body.sync_aggregate is not part of a {} block", fork.name())
        }
    };
    RequestError::Invalid { field, reason }
}

/// The object root and slot of an aggregate, with the attestation container of its fork:
/// `{version, data}` names the fork; a bare aggregate takes it from the network's schedule.
fn aggregate_root<P: PresetSpec>(
    payload: &AggregateAndProofPayload,
    request_type: RequestType,
    network: &Network,
) -> Result<(Hash256, Quantity), RequestError> {
    let invalid = |field: &'static str, reason: &str| RequestError::Invalid {
        field,
        reason: reason.to_string(),
    };
    let bare_fields = payload.aggregator_index.is_some()
        || payload.aggregate.is_some()
        || payload.selection_proof.is_some();
    match (&payload.version, &payload.data) {
        (Some(version), Some(data)) if !bare_fields => {
            let fork =
                Fork::from_version_name(version).ok_or_else(|| RequestError::UnknownVersion {
                    field: "aggregate_and_proof.version",
                    value: version.clone(),
                })?;
            let root = data.root::<P>(fork).map_err(|e| {
                attestation_shape_error("aggregate_and_proof.data.aggregate", e, fork.name())
            })?;
            Ok((root, data.aggregate.data.slot))
        }
        (None, None) if request_type == RequestType::AggregateAndProofV2 => Err(invalid(
            "aggregate_and_proof",
            "AGGREGATE_AND_PROOF_V2 needs {version, data}",
        )),
        (None, None) => {
            let (Some(index), Some(aggregate), Some(proof)) = (
                &payload.aggregator_index,
                &payload.aggregate,
                &payload.selection_proof,
            ) else {
                return Err(invalid(
                    "aggregate_and_proof",
                    "needs aggregator_index, aggregate and selection_proof",
                ));
            };
            let slot = aggregate.data.slot;
            let fork = network.fork_at_epoch(network.epoch_of_slot(slot.0));
            let context = format!(
                "{} at slot {} on network {}",
                fork.name(),
                slot.0,
                network.name()
            );
            let aggregate_root = aggregate.root::<P>(fork).map_err(|e| {
                attestation_shape_error("aggregate_and_proof.aggregate", e, &context)
            })?;
            let root = super::wire::container_root(&[
                index.tree_hash_root(),
                aggregate_root,
                proof.tree_hash_root(),
            ]);
            Ok((root, slot))
        }
        _ => Err(invalid(
            "aggregate_and_proof",
            "is either a bare AggregateAndProof or {version, data}, not a mix",
        )),
    }
}

fn attestation_shape_error(
    field: &'static str,
    e: AttestationShapeError,
    fork: &str,
) -> RequestError {
    let (field, reason) = match e {
        AttestationShapeError::AggregationBits(r) => {
            (field, format!("aggregation_bits: {r} ({fork})"))
        }
        AttestationShapeError::CommitteeBits(r) => (field, format!("committee_bits: {r} ({fork})")),
        AttestationShapeError::MissingCommitteeBits => (
            field,
            format!("committee_bits is required from ELECTRA on ({fork})"),
        ),
        AttestationShapeError::UnexpectedCommitteeBits => (
            field,
            format!("committee_bits must be absent before ELECTRA ({fork})"),
        ),
    };
    RequestError::Invalid { field, reason }
}
