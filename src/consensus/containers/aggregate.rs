//! Aggregates: one JSON shape for every fork, whose SSZ container is chosen once the fork
//! is known: phase0..deneb without `committee_bits`, Electra and Fulu with them, and from
//! Gloas on a `ProgressiveContainer` (EIP-7495) whose `aggregation_bits` is a
//! `ProgressiveBitList` (EIP-7916) (consensus-specs `specs/gloas/beacon-chain.md`,
//! "Modified `Attestation`", EIP-7688): the same JSON hashes differently.

use serde::Deserialize;
use ssz_types::{BitList, BitVector};
use tree_hash::{Hash256, TreeHash};

use super::common::AttestationData;
use crate::consensus::fork::Fork;
use crate::consensus::preset::PresetSpec;
use crate::consensus::progressive::{progressive_bitlist_root, progressive_container_root};
use crate::consensus::wire::{container_root, HexBytes, Quantity, SignatureHex};

/// An `Attestation` of any fork; bitfields stay raw until the fork decides their limits.
#[derive(Debug, Clone, Deserialize)]
pub struct AnyAttestation {
    /// `aggregation_bits` (SSZ bitlist bytes).
    #[serde(alias = "aggregationBits")]
    pub aggregation_bits: HexBytes,
    /// `data`.
    pub data: AttestationData,
    /// `signature`.
    pub signature: SignatureHex,
    /// `committee_bits` (Electra and later).
    #[serde(alias = "committeeBits")]
    pub committee_bits: Option<HexBytes>,
}

/// An `AggregateAndProof` of any fork.
#[derive(Debug, Clone, Deserialize)]
pub struct AnyAggregateAndProof {
    /// `aggregator_index`.
    #[serde(alias = "aggregatorIndex")]
    pub aggregator_index: Quantity,
    /// `aggregate`.
    pub aggregate: AnyAttestation,
    /// `selection_proof`.
    #[serde(alias = "selectionProof")]
    pub selection_proof: SignatureHex,
}

/// The `aggregate_and_proof` key: bare (`AGGREGATE_AND_PROOF`) or `{version, data}`
/// (`AGGREGATE_AND_PROOF_V2`). Every field is optional so one pass reads either shape.
#[derive(Debug, Clone, Deserialize)]
pub struct AggregateAndProofPayload {
    /// Bare form: `aggregator_index`.
    #[serde(alias = "aggregatorIndex")]
    pub aggregator_index: Option<Quantity>,
    /// Bare form: `aggregate`.
    pub aggregate: Option<AnyAttestation>,
    /// Bare form: `selection_proof`.
    #[serde(alias = "selectionProof")]
    pub selection_proof: Option<SignatureHex>,
    /// V2 form: the fork name.
    pub version: Option<String>,
    /// V2 form: the `AggregateAndProof`.
    pub data: Option<AnyAggregateAndProof>,
}

/// Why an attestation's bitfields do not fit the container of its fork.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttestationShapeError {
    /// `aggregation_bits` is not a valid bitlist of the fork's limit.
    AggregationBits(String),
    /// `committee_bits` is not a valid bitvector of `MAX_COMMITTEES_PER_SLOT`.
    CommitteeBits(String),
    /// Electra or later without `committee_bits`.
    MissingCommitteeBits,
    /// Before Electra with `committee_bits`.
    UnexpectedCommitteeBits,
}

/// The three `Attestation` containers a signer meets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttestationLayout {
    /// Phase0 to Deneb: `Container(aggregation_bits, data, signature)`.
    Phase0,
    /// Electra and Fulu: `committee_bits` added (EIP-7549).
    Electra,
    /// Gloas on: `ProgressiveContainer`, progressive `aggregation_bits` (EIP-7688).
    Gloas,
}

impl AttestationLayout {
    /// The layout of `fork`.
    pub fn of(fork: Fork) -> AttestationLayout {
        if fork >= Fork::Gloas {
            AttestationLayout::Gloas
        } else if fork >= Fork::Electra {
            AttestationLayout::Electra
        } else {
            AttestationLayout::Phase0
        }
    }
}

impl AnyAttestation {
    /// The attestation's root as the container of its fork.
    pub fn root<P: PresetSpec>(&self, fork: Fork) -> Result<Hash256, AttestationShapeError> {
        let data = self.data.tree_hash_root();
        let signature = self.signature.tree_hash_root();
        let layout = AttestationLayout::of(fork);
        if let (AttestationLayout::Gloas, Some(committee_bits)) = (layout, &self.committee_bits) {
            let bits = progressive_bitlist_root(&self.aggregation_bits.0).map_err(|e| {
                AttestationShapeError::AggregationBits(format!(
                    "not an SSZ progressive bitlist ({e})"
                ))
            })?;
            let committees =
                BitVector::<P::MaxCommitteesPerSlot>::from_ssz_bytes_checked(&committee_bits.0)?;
            return Ok(progressive_container_root(&[
                bits, data, signature, committees,
            ]));
        }
        let electra = layout != AttestationLayout::Phase0;
        match (electra, &self.committee_bits) {
            (false, None) => {
                let bits = bitlist::<P::MaxValidatorsPerCommittee>(&self.aggregation_bits)?;
                Ok(container_root(&[bits, data, signature]))
            }
            (true, Some(committee_bits)) => {
                let bits = bitlist::<P::MaxValidatorsPerSlot>(&self.aggregation_bits)?;
                let committees = BitVector::<P::MaxCommitteesPerSlot>::from_ssz_bytes_checked(
                    &committee_bits.0,
                )?;
                Ok(container_root(&[bits, data, signature, committees]))
            }
            (true, None) => Err(AttestationShapeError::MissingCommitteeBits),
            (false, Some(_)) => Err(AttestationShapeError::UnexpectedCommitteeBits),
        }
    }
}

impl AnyAggregateAndProof {
    /// The `AggregateAndProof` root with the attestation container of its fork.
    pub fn root<P: PresetSpec>(&self, fork: Fork) -> Result<Hash256, AttestationShapeError> {
        Ok(container_root(&[
            self.aggregator_index.tree_hash_root(),
            self.aggregate.root::<P>(fork)?,
            self.selection_proof.tree_hash_root(),
        ]))
    }
}

fn bitlist<N: crate::consensus::preset::Limit>(
    bytes: &HexBytes,
) -> Result<Hash256, AttestationShapeError> {
    use ssz::Decode;
    BitList::<N>::from_ssz_bytes(&bytes.0)
        .map(|bits| bits.tree_hash_root())
        .map_err(|e| {
            AttestationShapeError::AggregationBits(format!(
                "not an SSZ bitlist of at most {} bits ({e:?})",
                N::to_usize()
            ))
        })
}

/// Decoding a committee bitvector into its root.
trait CommitteeBits {
    fn from_ssz_bytes_checked(bytes: &[u8]) -> Result<Hash256, AttestationShapeError>;
}

impl<N: crate::consensus::preset::Limit> CommitteeBits for BitVector<N> {
    fn from_ssz_bytes_checked(bytes: &[u8]) -> Result<Hash256, AttestationShapeError> {
        use ssz::Decode;
        BitVector::<N>::from_ssz_bytes(bytes)
            .map(|bits| bits.tree_hash_root())
            .map_err(|e| {
                AttestationShapeError::CommitteeBits(format!(
                    "not an SSZ bitvector of {} bits ({e:?})",
                    N::to_usize()
                ))
            })
    }
}
