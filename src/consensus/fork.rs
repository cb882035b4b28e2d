//! Forks: names as sent in `version` fields, their order, and the spec's fork-version rule.

use super::wire::Bytes4;

/// A consensus fork, in activation order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Fork {
    /// Genesis.
    Phase0,
    /// Altair: sync committees.
    Altair,
    /// Bellatrix: the merge.
    Bellatrix,
    /// Capella: withdrawals.
    Capella,
    /// Deneb: blobs; EIP-7044 pins exit domains to Capella.
    Deneb,
    /// Electra: attestations carry `committee_bits`.
    Electra,
    /// Fulu: PeerDAS.
    Fulu,
    /// Gloas (EIP-7732 ePBS, EIP-7688 progressive containers): builder bids, payload
    /// envelopes, PTC attestations, proposer preferences; attestations become progressive
    /// containers. Blocks are still signed by their (unchanged) header.
    ///
    /// The next fork, `HEZE` in consensus-specs, is added here (and to [`Fork::ALL`],
    /// [`Fork::name`] and the built-in schedules in `network.rs`) once its signing
    /// containers are final.
    Gloas,
}

impl Fork {
    /// Every fork, in order.
    pub const ALL: [Fork; 8] = [
        Fork::Phase0,
        Fork::Altair,
        Fork::Bellatrix,
        Fork::Capella,
        Fork::Deneb,
        Fork::Electra,
        Fork::Fulu,
        Fork::Gloas,
    ];

    /// The upper-case name used in `version` fields and config keys.
    pub fn name(&self) -> &'static str {
        match self {
            Fork::Phase0 => "PHASE0",
            Fork::Altair => "ALTAIR",
            Fork::Bellatrix => "BELLATRIX",
            Fork::Capella => "CAPELLA",
            Fork::Deneb => "DENEB",
            Fork::Electra => "ELECTRA",
            Fork::Fulu => "FULU",
            Fork::Gloas => "GLOAS",
        }
    }

    /// Parses a `version` field, case-insensitively. Web3Signer's docs also spell
    /// phase0 `PHASE 0`; Lodestar 1.5.1 called Deneb `EIP4844`.
    pub fn from_version_name(s: &str) -> Option<Fork> {
        let upper: String = s
            .chars()
            .filter(|c| !matches!(c, ' ' | '_'))
            .map(|c| c.to_ascii_uppercase())
            .collect();
        if upper == "EIP4844" {
            return Some(Fork::Deneb);
        }
        Fork::ALL.into_iter().find(|f| f.name() == upper)
    }
}

/// The spec's `fork.previous_version if epoch < fork.epoch else fork.current_version`.
pub fn select_fork_version(
    previous_version: Bytes4,
    current_version: Bytes4,
    fork_epoch: u64,
    epoch: u64,
) -> Bytes4 {
    if epoch < fork_epoch {
        previous_version
    } else {
        current_version
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_at_fork_boundary() {
        let (prev, cur) = (
            Bytes4::from_hex("0x01000000").unwrap(),
            Bytes4::from_hex("0x02000000").unwrap(),
        );
        assert_eq!(select_fork_version(prev, cur, 10, 9), prev);
        assert_eq!(select_fork_version(prev, cur, 10, 10), cur);
        assert_eq!(select_fork_version(prev, cur, 10, 11), cur);
        assert_eq!(select_fork_version(prev, cur, 0, 0), cur);
        assert_eq!(select_fork_version(prev, cur, u64::MAX, u64::MAX - 1), prev);
    }

    #[test]
    fn version_names() {
        assert_eq!(Fork::from_version_name("phase0"), Some(Fork::Phase0));
        assert_eq!(Fork::from_version_name("PHASE 0"), Some(Fork::Phase0));
        assert_eq!(Fork::from_version_name("Electra"), Some(Fork::Electra));
        assert_eq!(Fork::from_version_name("EIP4844"), Some(Fork::Deneb));
        assert_eq!(Fork::from_version_name("GLOAS"), Some(Fork::Gloas));
        assert_eq!(Fork::from_version_name("MERGE"), None);
        assert!(Fork::Electra > Fork::Deneb);
    }
}
