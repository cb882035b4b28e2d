//! Blocks and attestations as the slashing tests send them, with everything the tests
//! check about a returned signature computed here, independently of keyguard: the
//! signing root (SSZ `hash_tree_root` written out by hand from the consensus spec), the
//! BLS verification (blst directly) and the EIP-3076 / spec slashing conditions between
//! two signed messages. Nothing here calls the code under test.
//!
//! Request bodies come from [`crate::requests`]: an attestation at `target * 8` with
//! committee index 0 and every root of its data `[root; 32]`, a `BLOCK_V2` header with
//! proposer index 3 and every root `[root; 32]`, both with the fork info of
//! [`crate::requests`] (genesis fork version at epoch 0, [`crate::requests::TEST_GVR`]).

use std::collections::{HashMap, HashSet};

use sha2::{Digest, Sha256};

use crate::requests;

/// The proof-of-possession ciphersuite Ethereum signs with.
pub const BLS_DST: &[u8] = b"BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_";
const DOMAIN_BEACON_PROPOSER: [u8; 4] = [0, 0, 0, 0];
const DOMAIN_BEACON_ATTESTER: [u8; 4] = [1, 0, 0, 0];

/// One slashable message a test asks to sign; `root` fills every root field of it, so two
/// duties are the same message exactly when they are equal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Duty {
    /// An attestation with these source and target epochs.
    Attestation {
        /// Source checkpoint epoch.
        source: u64,
        /// Target checkpoint epoch.
        target: u64,
        /// Byte filling the block, source and target roots.
        root: u8,
    },
    /// A block proposal (header) at this slot.
    Block {
        /// The block's slot.
        slot: u64,
        /// Byte filling the parent, state and body roots.
        root: u8,
    },
}

impl Duty {
    /// The sign-request body (JSON).
    pub fn body(&self) -> String {
        match *self {
            Duty::Attestation {
                source,
                target,
                root,
            } => requests::attestation(source, target, root),
            Duty::Block { slot, root } => requests::block_header(slot, root),
        }
    }

    /// The signing root the consensus spec gives this message, computed here.
    pub fn signing_root(&self) -> [u8; 32] {
        match *self {
            Duty::Attestation {
                source,
                target,
                root,
            } => {
                let r = [root; 32];
                let checkpoint = |epoch: u64| hash_pair(&uint64(epoch), &r);
                let data = merkleize(&[
                    uint64(target * requests::SLOTS_PER_EPOCH),
                    uint64(0),
                    r,
                    checkpoint(source),
                    checkpoint(target),
                ]);
                signing_root(data, DOMAIN_BEACON_ATTESTER)
            }
            Duty::Block { slot, root } => {
                let r = [root; 32];
                let header = merkleize(&[uint64(slot), uint64(3), r, r, r]);
                signing_root(header, DOMAIN_BEACON_PROPOSER)
            }
        }
    }

    /// True if signing both `self` and `other` with one key is slashable: two different
    /// blocks at one slot, two different attestations with one target (double vote), or
    /// one attestation surrounding the other (the spec's `is_slashable_attestation_data`).
    pub fn slashable_with(&self, other: &Duty) -> bool {
        if self == other {
            return false;
        }
        match (*self, *other) {
            (Duty::Block { slot: a, .. }, Duty::Block { slot: b, .. }) => a == b,
            (
                Duty::Attestation {
                    source: s1,
                    target: t1,
                    ..
                },
                Duty::Attestation {
                    source: s2,
                    target: t2,
                    ..
                },
            ) => t1 == t2 || (s1 < s2 && t2 < t1) || (s2 < s1 && t1 < t2),
            _ => false,
        }
    }

    /// How this message appears in an EIP-3076 interchange record.
    pub fn record(&self) -> Record {
        let root = format!("0x{}", hex::encode(self.signing_root()));
        match *self {
            Duty::Attestation { source, target, .. } => Record::Attestation {
                source,
                target,
                root,
            },
            Duty::Block { slot, .. } => Record::Block { slot, root },
        }
    }
}

/// A tiny xorshift generator: the crash tests need variety and a seed to replay, not
/// crypto-quality randomness.
pub struct Rng(pub u64);

impl Rng {
    /// The next value (the seed must not be 0).
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A value in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

impl Duty {
    /// A random block (one in three) or attestation in a narrow window above `base`
    /// (slots `8 * base ..+16`, targets `base ..+6`, three roots), so that conflicts with
    /// other such duties are frequent.
    pub fn random_near(base: u64, rng: &mut Rng) -> Duty {
        if rng.below(3) == 0 {
            Duty::Block {
                slot: base * 8 + rng.below(16),
                root: rng.below(3) as u8,
            }
        } else {
            let target = base + rng.below(6);
            Duty::Attestation {
                source: target.saturating_sub(1 + rng.below(3)),
                target,
                root: rng.below(3) as u8,
            }
        }
    }
}

/// One signed block or attestation as an interchange file lists it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Record {
    /// `signed_attestations` entry.
    Attestation {
        /// `source_epoch`.
        source: u64,
        /// `target_epoch`.
        target: u64,
        /// `signing_root` (`0x` hex, empty when absent).
        root: String,
    },
    /// `signed_blocks` entry.
    Block {
        /// `slot`.
        slot: u64,
        /// `signing_root` (`0x` hex, empty when absent).
        root: String,
    },
}

/// Every record of the slashing database at `location` (a path or a PostgreSQL URL), by
/// pubkey (`0x` hex), from its complete export.
pub fn database_records(location: &str) -> HashMap<String, HashSet<Record>> {
    let location = slashing_db::DatabaseLocation::parse(location).expect("database location");
    let db = slashing_db::SlashingDb::open_location(&location, slashing_db::OpenOptions::default())
        .expect("open the database");
    let export = db
        .export_interchange(None, slashing_db::ExportFormat::Complete)
        .expect("complete export");
    interchange_records(&export)
}

/// Every record of an EIP-3076 interchange document, by pubkey (`0x` hex).
pub fn interchange_records(json: &[u8]) -> HashMap<String, HashSet<Record>> {
    let doc: serde_json::Value = serde_json::from_slice(json).expect("interchange JSON");
    let num = |v: &serde_json::Value| -> u64 {
        v.as_str()
            .and_then(|s| s.parse().ok())
            .expect("decimal string")
    };
    let root = |v: &serde_json::Value| v.as_str().unwrap_or("").to_owned();
    let mut out: HashMap<String, HashSet<Record>> = HashMap::new();
    for entry in doc["data"].as_array().expect("data") {
        let records = out
            .entry(entry["pubkey"].as_str().expect("pubkey").to_owned())
            .or_default();
        for b in entry["signed_blocks"].as_array().expect("signed_blocks") {
            records.insert(Record::Block {
                slot: num(&b["slot"]),
                root: root(&b["signing_root"]),
            });
        }
        for a in entry["signed_attestations"]
            .as_array()
            .expect("signed_attestations")
        {
            records.insert(Record::Attestation {
                source: num(&a["source_epoch"]),
                target: num(&a["target_epoch"]),
                root: root(&a["signing_root"]),
            });
        }
    }
    out
}

/// True if `signature` (`0x` hex) is `pubkey`'s (`0x` hex) valid signature of `root`.
pub fn verify(pubkey: &str, root: &[u8; 32], signature: &str) -> bool {
    let decode = |s: &str| hex::decode(s.trim_start_matches("0x")).ok();
    let (Some(pk), Some(sig)) = (decode(pubkey), decode(signature)) else {
        return false;
    };
    let (Ok(pk), Ok(sig)) = (
        blst::min_pk::PublicKey::from_bytes(&pk),
        blst::min_pk::Signature::from_bytes(&sig),
    ) else {
        return false;
    };
    sig.verify(true, root, BLS_DST, &[], &pk, true) == blst::BLST_ERROR::BLST_SUCCESS
}

/// Every pair of `signed` (per pubkey) that is slashable; empty when all is well.
pub fn slashable_pairs(signed: &[(String, Duty)]) -> Vec<(String, Duty, Duty)> {
    let mut per_key: HashMap<&str, HashSet<Duty>> = HashMap::new();
    for (pk, duty) in signed {
        per_key.entry(pk.as_str()).or_default().insert(*duty);
    }
    let mut bad = Vec::new();
    for (pk, duties) in per_key {
        let duties: Vec<Duty> = duties.into_iter().collect();
        for (i, a) in duties.iter().enumerate() {
            for b in &duties[i + 1..] {
                if a.slashable_with(b) {
                    bad.push((pk.to_owned(), *a, *b));
                }
            }
        }
    }
    bad
}

fn uint64(v: u64) -> [u8; 32] {
    let mut leaf = [0u8; 32];
    leaf[..8].copy_from_slice(&v.to_le_bytes());
    leaf
}

fn hash_pair(a: &[u8; 32], b: &[u8; 32]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(a);
    h.update(b);
    h.finalize().into()
}

/// SSZ merkleization of a container's field roots (zero leaves up to a power of two).
fn merkleize(fields: &[[u8; 32]]) -> [u8; 32] {
    let mut layer = fields.to_vec();
    layer.resize(fields.len().next_power_of_two(), [0u8; 32]);
    while layer.len() > 1 {
        layer = layer
            .chunks(2)
            .map(|pair| hash_pair(&pair[0], &pair[1]))
            .collect();
    }
    layer[0]
}

/// `compute_signing_root(object, compute_domain(domain_type, genesis fork, TEST_GVR))`.
fn signing_root(object_root: [u8; 32], domain_type: [u8; 4]) -> [u8; 32] {
    let parse = |s: &str| hex::decode(s.trim_start_matches("0x")).expect("hex constant");
    let mut version = [0u8; 32];
    version[..4].copy_from_slice(&parse(requests::DEVNET_GENESIS_FORK_VERSION));
    let gvr: [u8; 32] = parse(requests::TEST_GVR).try_into().expect("32 bytes");
    let fork_data_root = hash_pair(&version, &gvr);
    let mut domain = [0u8; 32];
    domain[..4].copy_from_slice(&domain_type);
    domain[4..].copy_from_slice(&fork_data_root[..28]);
    hash_pair(&object_root, &domain)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slashing_conditions() {
        let att = |source, target, root| Duty::Attestation {
            source,
            target,
            root,
        };
        let block = |slot, root| Duty::Block { slot, root };
        assert!(att(1, 2, 1).slashable_with(&att(1, 2, 2)), "double vote");
        assert!(
            att(0, 2, 1).slashable_with(&att(1, 2, 1)),
            "double vote, source"
        );
        assert!(att(1, 4, 1).slashable_with(&att(2, 3, 1)), "surrounds");
        assert!(att(2, 3, 1).slashable_with(&att(1, 4, 1)), "surrounded");
        assert!(!att(1, 2, 1).slashable_with(&att(1, 2, 1)), "same message");
        assert!(!att(1, 2, 1).slashable_with(&att(2, 3, 1)), "chained");
        assert!(!att(1, 4, 1).slashable_with(&att(1, 3, 1)), "same source");
        assert!(block(5, 1).slashable_with(&block(5, 2)));
        assert!(!block(5, 1).slashable_with(&block(6, 2)));
        assert!(!block(5, 1).slashable_with(&att(5, 5, 2)));
    }
}
