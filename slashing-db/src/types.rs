//! Typed values at the edge of the database: what is signed ([`Subject`]), for whom
//! ([`ValidatorPubkey`]), on which chain ([`GenesisValidatorsRoot`]) and with which root
//! ([`SigningRoot`]). Slots and epochs are distinct types, and an attestation names its
//! source and target, so neither can be passed where the other is meant.

use std::fmt;

/// A beacon-chain slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Slot(pub u64);

/// A beacon-chain epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Epoch(pub u64);

impl fmt::Display for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Display for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// What a slashable signing request signs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    /// A block proposal at `slot`.
    Block {
        /// Slot of the proposed block.
        slot: Slot,
    },
    /// An attestation voting from `source` to `target`.
    Attestation {
        /// Source checkpoint epoch.
        source: Epoch,
        /// Target checkpoint epoch.
        target: Epoch,
    },
}

/// The 48-byte compressed BLS public key of a validator.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ValidatorPubkey(pub [u8; 48]);

impl fmt::Debug for ValidatorPubkey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{}", hex::encode(self.0))
    }
}

impl From<[u8; 48]> for ValidatorPubkey {
    fn from(bytes: [u8; 48]) -> Self {
        ValidatorPubkey(bytes)
    }
}

/// The genesis validators root: which chain a request is for.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct GenesisValidatorsRoot(pub [u8; 32]);

impl fmt::Debug for GenesisValidatorsRoot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{}", hex::encode(self.0))
    }
}

impl From<[u8; 32]> for GenesisValidatorsRoot {
    fn from(bytes: [u8; 32]) -> Self {
        GenesisValidatorsRoot(bytes)
    }
}

/// The signing root of a message. All zeroes means "unknown" (null), as in EIP-3076
/// interchange files and Lighthouse: a null root is stored as NULL and never counts as an
/// exact repeat of a record.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SigningRoot(pub [u8; 32]);

impl SigningRoot {
    /// The null (unknown) root.
    pub const NULL: SigningRoot = SigningRoot([0; 32]);

    /// True for the all-zero (unknown) root.
    pub fn is_null(&self) -> bool {
        self.0.iter().all(|b| *b == 0)
    }

    /// The root's bytes, or `None` if it is null.
    pub fn known(&self) -> Option<&[u8; 32]> {
        if self.is_null() {
            None
        } else {
            Some(&self.0)
        }
    }
}

impl fmt::Debug for SigningRoot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_null() {
            f.write_str("null")
        } else {
            write!(f, "0x{}", hex::encode(self.0))
        }
    }
}

impl From<[u8; 32]> for SigningRoot {
    fn from(bytes: [u8; 32]) -> Self {
        SigningRoot(bytes)
    }
}

/// Why a request was allowed (it may be signed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Approval {
    /// A new record was durably written.
    Recorded,
    /// Exact repeat of a recorded message (same non-null signing root): nothing written.
    Repeat,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_root_is_null_and_others_are_known() {
        assert!(SigningRoot::NULL.is_null());
        assert_eq!(SigningRoot::NULL.known(), None);
        let mut bytes = [0u8; 32];
        bytes[31] = 1;
        let root = SigningRoot(bytes);
        assert!(!root.is_null());
        assert_eq!(root.known(), Some(&bytes));
    }
}
