//! Domains and signing roots (`compute_domain`, `compute_signing_root`).

use tree_hash::{Hash256, TreeHash};

use super::wire::{container_root, Bytes32, Bytes4};
use super::Root;

/// A 4-byte domain type.
pub type DomainType = [u8; 4];

/// `DOMAIN_BEACON_PROPOSER`.
pub const DOMAIN_BEACON_PROPOSER: DomainType = [0, 0, 0, 0];
/// `DOMAIN_BEACON_ATTESTER`.
pub const DOMAIN_BEACON_ATTESTER: DomainType = [1, 0, 0, 0];
/// `DOMAIN_RANDAO`.
pub const DOMAIN_RANDAO: DomainType = [2, 0, 0, 0];
/// `DOMAIN_DEPOSIT`.
pub const DOMAIN_DEPOSIT: DomainType = [3, 0, 0, 0];
/// `DOMAIN_VOLUNTARY_EXIT`.
pub const DOMAIN_VOLUNTARY_EXIT: DomainType = [4, 0, 0, 0];
/// `DOMAIN_SELECTION_PROOF`.
pub const DOMAIN_SELECTION_PROOF: DomainType = [5, 0, 0, 0];
/// `DOMAIN_AGGREGATE_AND_PROOF`.
pub const DOMAIN_AGGREGATE_AND_PROOF: DomainType = [6, 0, 0, 0];
/// `DOMAIN_SYNC_COMMITTEE`.
pub const DOMAIN_SYNC_COMMITTEE: DomainType = [7, 0, 0, 0];
/// `DOMAIN_SYNC_COMMITTEE_SELECTION_PROOF`.
pub const DOMAIN_SYNC_COMMITTEE_SELECTION_PROOF: DomainType = [8, 0, 0, 0];
/// `DOMAIN_CONTRIBUTION_AND_PROOF`.
pub const DOMAIN_CONTRIBUTION_AND_PROOF: DomainType = [9, 0, 0, 0];
/// `DOMAIN_APPLICATION_BUILDER` (builder-specs).
pub const DOMAIN_APPLICATION_BUILDER: DomainType = [0, 0, 0, 1];
/// `DOMAIN_BEACON_BUILDER` (Gloas, consensus-specs `specs/gloas/beacon-chain.md`): bids
/// and payload envelopes.
pub const DOMAIN_BEACON_BUILDER: DomainType = [0x0B, 0, 0, 0];
/// `DOMAIN_PTC_ATTESTER` (Gloas): payload-timeliness-committee attestations.
pub const DOMAIN_PTC_ATTESTER: DomainType = [0x0C, 0, 0, 0];
/// `DOMAIN_PROPOSER_PREFERENCES` (Gloas).
pub const DOMAIN_PROPOSER_PREFERENCES: DomainType = [0x0D, 0, 0, 0];
/// `DOMAIN_REQUEST_AUTH` (builder-specs `specs/gloas/builder.md`; remote-signing-api
/// v1.4.0 calls it `DOMAIN_BUILDER_REQUEST_AUTH`): `compute_domain` with the genesis fork
/// version and a zero root, like `DOMAIN_APPLICATION_BUILDER`.
pub const DOMAIN_BUILDER_REQUEST_AUTH: DomainType = [0x0B, 0, 0, 1];

/// `hash_tree_root(ForkData{current_version, genesis_validators_root})`.
fn fork_data_root(version: Bytes4, genesis_validators_root: Bytes32) -> Hash256 {
    container_root(&[
        version.tree_hash_root(),
        genesis_validators_root.tree_hash_root(),
    ])
}

/// `compute_domain(domain_type, fork_version, genesis_validators_root)`.
pub fn compute_domain(
    domain_type: DomainType,
    fork_version: Bytes4,
    genesis_validators_root: Bytes32,
) -> Root {
    let fork_data = fork_data_root(fork_version, genesis_validators_root);
    let mut domain = [0u8; 32];
    domain[..4].copy_from_slice(&domain_type);
    domain[4..].copy_from_slice(&fork_data.0[..28]);
    domain
}

/// `hash_tree_root(SigningData{object_root, domain})`.
pub fn compute_signing_root(object_root: Hash256, domain: Root) -> Root {
    container_root(&[object_root, Hash256::from(domain)]).0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b32(s: &str) -> Bytes32 {
        Bytes32::from_hex(s).unwrap()
    }

    #[test]
    fn mainnet_bellatrix_proposer_domain() {
        // Known value for mainnet's genesis validators root and the Bellatrix version.
        let domain = compute_domain(
            DOMAIN_BEACON_PROPOSER,
            Bytes4::from_hex("0x02000000").unwrap(),
            b32("0x4b363db94e286120d76eb905340fdd4e54bfe9f06bf33ff6cf5ad27f511bfe95"),
        );
        assert_eq!(
            hex::encode(domain),
            "000000004a26c58b08add8089b75caa540848881a8d4f0af0be83417a85c0f45"
        );
    }

    #[test]
    fn mainnet_deposit_domain() {
        // The well-known mainnet deposit domain (genesis version, zero root).
        let domain = compute_domain(DOMAIN_DEPOSIT, Bytes4::ZERO, Bytes32::ZERO);
        assert_eq!(
            hex::encode(domain),
            "03000000f5a5fd42d16a20302798ef6ed309979b43003d2320d9f0e8ea9831a9"
        );
    }
}
