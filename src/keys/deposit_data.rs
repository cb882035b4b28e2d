//! Deposit data for new validators: the `deposit_data-<time>.json` file that the staking
//! launchpad (and the deposit contract's `deposit` function) takes, in the format that
//! staking-deposit-cli writes.
//!
//! Each entry is a `DepositMessage` signed in the deposit domain (`DOMAIN_DEPOSIT`, the
//! network's `GENESIS_FORK_VERSION` and a zero genesis validators root, so a deposit is
//! valid before genesis and on every fork), its `DepositData` root, and metadata. Byte
//! strings are hex without `0x`; `amount` is a JSON number of Gwei.

use tree_hash::TreeHash;

use crate::consensus::containers::misc::{DepositData, DepositMessage};
use crate::consensus::domain::{compute_domain, compute_signing_root, DOMAIN_DEPOSIT};
use crate::consensus::wire::{Bytes, Bytes32, Quantity};
use crate::consensus::{Network, Root};

use super::{NotExportable, PubkeyBytes, SignatureBytes, ValidatorKey};

/// The `deposit_cli_version` written: the staking-deposit-cli release whose file format
/// this follows. The launchpad refuses files from versions before 1.0.0.
pub const DEPOSIT_CLI_VERSION: &str = "2.7.0";
/// Gwei per ether.
pub const GWEI_PER_ETH: u64 = 1_000_000_000;
/// The smallest deposit the deposit contract accepts (1 ETH), in Gwei.
pub const MIN_DEPOSIT_GWEI: u64 = GWEI_PER_ETH;
/// The default deposit: 32 ETH, in Gwei.
pub const DEFAULT_DEPOSIT_GWEI: u64 = 32 * GWEI_PER_ETH;
/// The largest deposit for 0x00 and 0x01 credentials (`MAX_EFFECTIVE_BALANCE`, 32 ETH).
pub const MAX_DEPOSIT_GWEI: u64 = 32 * GWEI_PER_ETH;
/// The largest deposit for 0x02 (compounding) credentials
/// (`MAX_EFFECTIVE_BALANCE_ELECTRA`, 2048 ETH).
pub const MAX_COMPOUNDING_DEPOSIT_GWEI: u64 = 2048 * GWEI_PER_ETH;

/// Why deposit parameters were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DepositDataError {
    /// The withdrawal credentials are malformed or of an unknown type.
    #[error("invalid withdrawal credentials: {0}")]
    WithdrawalCredentials(String),
    /// The amount is outside what a deposit with these credentials may carry.
    #[error("invalid deposit amount: {0}")]
    Amount(String),
}

/// 32 bytes of withdrawal credentials of a known type: `0x00` (BLS withdrawal key), `0x01`
/// (execution address) or `0x02` (execution address, compounding). For 0x01 and 0x02,
/// bytes 1..12 must be zero and the last 20 bytes are the execution address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WithdrawalCredentials([u8; 32]);

impl WithdrawalCredentials {
    /// Parses `0x` + 64 hex digits and checks the prefix (and, for 0x01/0x02, the
    /// zero padding).
    pub fn parse(s: &str) -> Result<Self, DepositDataError> {
        let err = DepositDataError::WithdrawalCredentials;
        let bytes = Bytes32::from_hex(s)
            .map_err(|e| err(format!("`{s}`: {e}")))?
            .0;
        match bytes[0] {
            0x00 => {}
            0x01 | 0x02 => {
                if bytes[1..12].iter().any(|b| *b != 0) {
                    return Err(err(format!(
                        "0x{:02x} credentials are 0x{:02x}, 11 zero bytes, then the 20-byte \
                         execution address; `{s}` has non-zero padding",
                        bytes[0], bytes[0]
                    )));
                }
            }
            other => {
                return Err(err(format!(
                    "prefix 0x{other:02x} is not 0x00 (BLS withdrawal key), 0x01 (execution \
                     address) or 0x02 (compounding execution address)"
                )))
            }
        }
        Ok(Self(bytes))
    }

    /// The 32 bytes.
    pub fn bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The largest deposit these credentials may receive, in Gwei.
    pub fn max_deposit_gwei(&self) -> u64 {
        if self.0[0] == 0x02 {
            MAX_COMPOUNDING_DEPOSIT_GWEI
        } else {
            MAX_DEPOSIT_GWEI
        }
    }
}

impl std::str::FromStr for WithdrawalCredentials {
    type Err = DepositDataError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// What every deposit of one run shares: withdrawal credentials and amount (checked
/// against each other), and the network that decides the domain.
#[derive(Debug, Clone)]
pub struct DepositParams {
    withdrawal_credentials: WithdrawalCredentials,
    amount_gwei: u64,
    fork_version: [u8; 4],
    network_name: String,
}

impl DepositParams {
    /// Checks that `amount_gwei` is at least 1 ETH and at most what the credentials allow
    /// (32 ETH, or 2048 ETH for 0x02).
    pub fn new(
        withdrawal_credentials: WithdrawalCredentials,
        amount_gwei: u64,
        network: &Network,
    ) -> Result<Self, DepositDataError> {
        let max = withdrawal_credentials.max_deposit_gwei();
        if !(MIN_DEPOSIT_GWEI..=max).contains(&amount_gwei) {
            return Err(DepositDataError::Amount(format!(
                "{amount_gwei} Gwei is not between {MIN_DEPOSIT_GWEI} (1 ETH) and {max} ({} ETH, \
                 the most 0x{:02x} credentials can hold)",
                max / GWEI_PER_ETH,
                withdrawal_credentials.0[0]
            )));
        }
        Ok(Self {
            withdrawal_credentials,
            amount_gwei,
            fork_version: network.genesis_fork_version(),
            network_name: network.name().to_string(),
        })
    }

    /// The `DepositMessage` of `pubkey`.
    pub fn message(&self, pubkey: &PubkeyBytes) -> DepositMessage {
        DepositMessage {
            pubkey: Bytes(*pubkey),
            withdrawal_credentials: Bytes(self.withdrawal_credentials.0),
            amount: Quantity(self.amount_gwei),
        }
    }

    /// The root a deposit of `pubkey` signs:
    /// `compute_signing_root(message, compute_domain(DOMAIN_DEPOSIT, GENESIS_FORK_VERSION))`.
    pub fn signing_root(&self, pubkey: &PubkeyBytes) -> Root {
        let domain = compute_domain(DOMAIN_DEPOSIT, Bytes(self.fork_version), Bytes32::ZERO);
        compute_signing_root(self.message(pubkey).tree_hash_root(), domain)
    }

    /// Signs the deposit of `key` and returns its deposit-data entry; an error for a key
    /// whose secret is not in this process.
    pub fn sign(&self, key: &ValidatorKey) -> Result<DepositDatum, NotExportable> {
        let secret = key.local_secret().ok_or_else(|| NotExportable {
            pubkey: super::pubkey_hex(key.pubkey()),
            kind: key.backend().kind(),
        })?;
        let signature = secret.sign(&self.signing_root(key.pubkey()));
        Ok(self.datum(key.pubkey(), &signature))
    }

    /// The deposit-data entry of `pubkey` with an existing `signature`.
    pub fn datum(&self, pubkey: &PubkeyBytes, signature: &SignatureBytes) -> DepositDatum {
        let message = self.message(pubkey);
        let data = DepositData {
            pubkey: message.pubkey,
            withdrawal_credentials: message.withdrawal_credentials,
            amount: message.amount,
            signature: Bytes(*signature),
        };
        DepositDatum {
            pubkey: hex::encode(pubkey),
            withdrawal_credentials: hex::encode(self.withdrawal_credentials.0),
            amount: self.amount_gwei,
            signature: hex::encode(signature),
            deposit_message_root: hex::encode(message.tree_hash_root().0),
            deposit_data_root: hex::encode(data.tree_hash_root().0),
            fork_version: hex::encode(self.fork_version),
            network_name: self.network_name.clone(),
            deposit_cli_version: DEPOSIT_CLI_VERSION.to_string(),
        }
    }
}

/// One entry of a deposit-data file, field for field (and in the order) staking-deposit-cli
/// writes them. Everything in it is public.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DepositDatum {
    /// The validator pubkey (hex, no `0x`).
    pub pubkey: String,
    /// The withdrawal credentials (hex, no `0x`).
    pub withdrawal_credentials: String,
    /// The amount in Gwei.
    pub amount: u64,
    /// The BLS signature over the deposit signing root (hex, no `0x`).
    pub signature: String,
    /// `hash_tree_root(DepositMessage)` (hex, no `0x`).
    pub deposit_message_root: String,
    /// `hash_tree_root(DepositData)` (hex, no `0x`): the contract's `deposit_data_root`.
    pub deposit_data_root: String,
    /// The network's `GENESIS_FORK_VERSION` (hex, no `0x`).
    pub fork_version: String,
    /// The network's name.
    pub network_name: String,
    /// See [`DEPOSIT_CLI_VERSION`].
    pub deposit_cli_version: String,
}

/// The file name staking-deposit-cli uses: `deposit_data-<unix time>.json`.
pub fn deposit_data_file_name(unix_time: u64) -> String {
    format!("deposit_data-{unix_time}.json")
}

/// The text of a deposit-data file: a JSON array of the entries.
pub fn deposit_data_json(entries: &[DepositDatum]) -> String {
    // Serialising plain strings and integers cannot fail.
    let mut text = serde_json::to_string_pretty(entries).unwrap_or_default();
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{interop_secret, KeySource, BLS_DST};

    fn interop_key(index: u64) -> ValidatorKey {
        ValidatorKey::from_secret_bytes(&interop_secret(index), KeySource::Interop, "interop")
            .unwrap()
    }

    /// 0x01 credentials of the execution address 0xd8da6bf26964af9d7eed9e03e53415d37aa96045.
    const WC: &str = "0x010000000000000000000000d8da6bf26964af9d7eed9e03e53415d37aa96045";

    fn params(fork_version: &str, amount: u64) -> DepositParams {
        let cfg = format!("CONFIG_NAME: 'kat'\nGENESIS_FORK_VERSION: {fork_version}\n");
        let network = Network::from_config_str(&cfg, "test").unwrap();
        DepositParams::new(WithdrawalCredentials::parse(WC).unwrap(), amount, &network).unwrap()
    }

    fn verify(pubkey: &PubkeyBytes, root: &Root, signature_hex: &str) -> bool {
        let sig =
            blst::min_pk::Signature::from_bytes(&hex::decode(signature_hex).unwrap()).unwrap();
        let pk = blst::min_pk::PublicKey::from_bytes(pubkey).unwrap();
        sig.verify(true, root, BLS_DST, &[], &pk, true) == blst::BLST_ERROR::BLST_SUCCESS
    }

    /// Known answers from the executable consensus spec and py_ecc, not from this code:
    /// `interop-tests/scripts/deposit_kat.py` run with eth-consensus-specs 1.7.0b4 and
    /// py-ecc 8.0.0 (`pip install eth-consensus-specs py_ecc ckzg`). It builds the spec's
    /// `DepositMessage` / `DepositData` for interop key 0 with the credentials [`WC`],
    /// signs `compute_signing_root(message, compute_domain(DOMAIN_DEPOSIT, version))`
    /// with `py_ecc.bls.G2ProofOfPossession.Sign` (BLS signatures are deterministic, so
    /// ours must be byte-identical), and prints the roots.
    #[test]
    fn deposit_data_matches_the_consensus_spec_and_py_ecc() {
        struct Kat {
            fork_version: &'static str,
            amount: u64,
            signing_root: &'static str,
            deposit_message_root: &'static str,
            signature: &'static str,
            deposit_data_root: &'static str,
        }
        let kats = [
            Kat {
                fork_version: "0x00000000",
                amount: 32_000_000_000,
                signing_root: "0ec42eb1f254136341b4fce28e026d43e82a9e1a51e896077c12f84936ae25c6",
                deposit_message_root:
                    "9080fb71ccd1be3638325a4c928a8819b670f0186a22bbcc626b68ca95e98893",
                signature: "b2975109cfc4549fc4079d4a6ed4e030dd46f801d31a23cd569ae9560f2132e2\
                            b2f2f9c381c8d3066acb98fbaa580f65142239e7ca61ca43a321df1a3bec0c62\
                            d406ede0e13b7e70c1aa5684e4c25fa70b24bf18c4ece316a2fc6bb8ace43323",
                deposit_data_root:
                    "37a5516c7c5d1eaf81bb2245745da42989c24bf0dc7b978abc6e7d0d28d89887",
            },
            Kat {
                fork_version: "0x00000001",
                amount: 32_000_000_000,
                signing_root: "a33317a01bd6a8ae27b358c95d2e01052ccf6ddf4fd4008fa2b7fb60caa95054",
                deposit_message_root:
                    "9080fb71ccd1be3638325a4c928a8819b670f0186a22bbcc626b68ca95e98893",
                signature: "a353299c267338006a20cb0fec42b6a7faa4987e29f3b24e2b023df6a77e943f\
                            471c176b36bd1b4c00f7d94ddcfc09ea168d3e3ead5d6c799b2a269fd00216fc\
                            87a5683da2bcae2df30a34aa63003ff671c5a3860dfd8540b51bb94c3904c032",
                deposit_data_root:
                    "096d0b44edba3ca27665a9fef4f6698b67e7073d4eba0d743ffb4dcaf86f1a42",
            },
            Kat {
                fork_version: "0x00000001",
                amount: 1_000_000_000,
                signing_root: "ed30e106626dbb50a2da2051c340e4d91d49205bc2036093b55beff090b54394",
                deposit_message_root:
                    "6f6835b695e775f3b633c2efff7d8ca291251b1cad6ff3b24bcacc1a4b923217",
                signature: "8956133f163b0531f189a8c17366e31d554784ca1053c8e243887cc42bfa7b67\
                            c830c055f66d3a0c6033dd9d2ec9453110943465deaa16d414f86da406b8227e\
                            5f5dc71bee20c144246bd30a7df667b5fe1bbe904c24a78a4e5749f6b9e99b7f",
                deposit_data_root:
                    "8fbc67d48fca67736b103f5aecb619b7e39df5e327c65d8ab3af57a592648f6b",
            },
        ];
        let key = interop_key(0);
        assert_eq!(
            hex::encode(key.pubkey()),
            "a99a76ed7796f7be22d5b7e85deeb7c5677e88e511e0b337618f8c4eb61349b4\
             bf2d153f649f7b53359fe8b94a38e44c"
        );
        for kat in kats {
            let p = params(kat.fork_version, kat.amount);
            assert_eq!(hex::encode(p.signing_root(key.pubkey())), kat.signing_root);
            let d = p.sign(&key).unwrap();
            assert_eq!(d.deposit_message_root, kat.deposit_message_root);
            assert_eq!(d.signature, kat.signature, "byte-identical to py_ecc");
            assert_eq!(d.deposit_data_root, kat.deposit_data_root);
            assert_eq!(d.fork_version, &kat.fork_version[2..]);
            assert_eq!(d.amount, kat.amount);
        }
    }

    #[test]
    fn signature_verifies_against_the_pubkey_and_the_deposit_signing_root() {
        let p = params("0x00000001", DEFAULT_DEPOSIT_GWEI);
        for i in 0..3 {
            let key = interop_key(i);
            let d = p.sign(&key).unwrap();
            let root = p.signing_root(key.pubkey());
            assert!(verify(key.pubkey(), &root, &d.signature));
            // Bound to the fork version: not valid in mainnet's deposit domain.
            let other = params("0x00000000", DEFAULT_DEPOSIT_GWEI);
            assert!(!verify(
                key.pubkey(),
                &other.signing_root(key.pubkey()),
                &d.signature
            ));
        }
    }

    #[test]
    fn json_has_the_launchpad_fields_in_order_without_0x() {
        let p = params("0x00000001", DEFAULT_DEPOSIT_GWEI);
        let entries = vec![
            p.sign(&interop_key(0)).unwrap(),
            p.sign(&interop_key(1)).unwrap(),
        ];
        let text = deposit_data_json(&entries);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let arr = v.as_array().unwrap();
        assert_eq!(arr.len(), 2);
        let obj = arr[0].as_object().unwrap();
        // serde_json's map sorts keys, so check the order in the text itself.
        let first = &text[..text.find('}').unwrap()];
        let positions: Vec<usize> = [
            "pubkey",
            "withdrawal_credentials",
            "amount",
            "signature",
            "deposit_message_root",
            "deposit_data_root",
            "fork_version",
            "network_name",
            "deposit_cli_version",
        ]
        .iter()
        .map(|k| {
            first
                .find(&format!("\"{k}\":"))
                .unwrap_or_else(|| panic!("{k}"))
        })
        .collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "{first}");
        assert_eq!(obj.len(), positions.len());
        assert_eq!(obj["amount"], serde_json::json!(32_000_000_000u64));
        assert_eq!(obj["fork_version"], "00000001");
        assert_eq!(obj["network_name"], "kat");
        assert_eq!(obj["withdrawal_credentials"], &WC[2..]);
        for (_, value) in obj {
            if let Some(s) = value.as_str() {
                assert!(!s.starts_with("0x"), "{s}");
            }
        }
        assert_eq!(
            deposit_data_file_name(1700000000),
            "deposit_data-1700000000.json"
        );
    }

    #[test]
    fn withdrawal_credentials_and_amounts_are_checked() {
        let ok = |s: &str| WithdrawalCredentials::parse(s).is_ok();
        assert!(ok(&format!("0x00{}", "ab".repeat(31))));
        assert!(ok(WC));
        assert!(ok(&WC.replacen("0x01", "0x02", 1)));
        for (bad, why) in [
            (format!("0x03{}", "00".repeat(31)), "prefix 0x03"),
            (format!("0xff{}", "00".repeat(31)), "prefix 0xff"),
            (WC.replacen("0x0100", "0x0101", 1), "non-zero padding"),
            (WC[..WC.len() - 2].to_string(), "expected 0x + 64"),
            (WC[2..].to_string(), "expected 0x + 64"),
        ] {
            let err = WithdrawalCredentials::parse(&bad).unwrap_err().to_string();
            assert!(err.contains(why), "{bad}: {err}");
        }

        let network = Network::devnet();
        let wc1 = WithdrawalCredentials::parse(WC).unwrap();
        let wc2 = WithdrawalCredentials::parse(&WC.replacen("0x01", "0x02", 1)).unwrap();
        assert!(DepositParams::new(wc1, MIN_DEPOSIT_GWEI - 1, &network).is_err());
        assert!(DepositParams::new(wc1, MAX_DEPOSIT_GWEI, &network).is_ok());
        let err = DepositParams::new(wc1, MAX_DEPOSIT_GWEI + 1, &network).unwrap_err();
        assert!(err.to_string().contains("32 ETH"), "{err}");
        assert!(DepositParams::new(wc2, MAX_COMPOUNDING_DEPOSIT_GWEI, &network).is_ok());
        assert!(DepositParams::new(wc2, MAX_COMPOUNDING_DEPOSIT_GWEI + 1, &network).is_err());
    }
}
