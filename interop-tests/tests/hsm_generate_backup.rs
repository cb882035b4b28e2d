//! `keyguard keys generate` with a keystore backup and deposit data, against a real
//! SoftHSM2 token: the backups decrypt to the sealed keys, and the deposit data verifies
//! for the configured network.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use interop_tests::keyguard_process::keyguard_command;
use interop_tests::softhsm;
use keyguard::consensus::containers::misc::{DepositData, DepositMessage};
use keyguard::consensus::domain::{compute_domain, compute_signing_root, DOMAIN_DEPOSIT};
use keyguard::consensus::wire::{Bytes, Bytes32, Quantity};
use keyguard::hsm::{list_sealed, unseal_file, HsmSession};
use keyguard::keys::{KeySource, Keystore, ValidatorKey, BLS_DST};
use tree_hash::TreeHash;

const PASSWORD: &str = "backup password 🔑";
/// 0x01 credentials of the execution address 0xd8da6bf26964af9d7eed9e03e53415d37aa96045.
const WC: &str = "0x010000000000000000000000d8da6bf26964af9d7eed9e03e53415d37aa96045";

fn keyguard(args: &[String]) -> (bool, String) {
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = keyguard_command(&refs);
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

fn b<const N: usize>(hex_str: &str) -> [u8; N] {
    hex::decode(hex_str).unwrap().try_into().unwrap()
}

#[test]
fn generate_writes_keystore_backups_and_deposit_data() {
    let Some(hsm) = softhsm::softhsm() else {
        return;
    };
    let token = hsm.token();
    let tmp = tempfile::tempdir().unwrap();
    let p = |name: &str| tmp.path().join(name);
    let (sealed, kb, dd, pf) = (p("sealed"), p("kb"), p("dd"), p("pf"));
    let flags = token.cli_flags();
    let args = |extra: &[&str]| -> Vec<String> {
        extra
            .iter()
            .map(|s| s.to_string())
            .chain(flags.iter().cloned())
            .collect()
    };

    let (ok, out) = keyguard(&args(&["hsm", "init-kek"]));
    assert!(ok, "{out}");

    let generate = |pf: &Path, wc: &str| -> Vec<String> {
        args(&[
            "keys",
            "generate",
            "--count",
            "2",
            "--out",
            sealed.to_str().unwrap(),
            "--keystore-backup",
            kb.to_str().unwrap(),
            "--backup-password-file",
            pf.to_str().unwrap(),
            "--deposit-data",
            dd.to_str().unwrap(),
            "--withdrawal-credentials",
            wc,
            "--network",
            "config/networks/devnet-minimal.yaml",
        ])
    };

    // Refusals come before anything is generated.
    std::fs::write(&pf, "\n").unwrap();
    let (ok, out) = keyguard(&generate(&pf, WC));
    assert!(!ok && out.contains("is empty"), "{out}");
    std::fs::write(&pf, format!("{PASSWORD}\n")).unwrap();
    let bad_wc = WC.replacen("0x01", "0x05", 1);
    let (ok, out) = keyguard(&generate(&pf, &bad_wc));
    assert!(!ok && out.contains("prefix 0x05"), "{out}");
    let mut half = generate(&pf, WC);
    let at = half.iter().position(|a| a == "--deposit-data").unwrap();
    half.drain(at..at + 2);
    let (ok, out) = keyguard(&half);
    assert!(!ok && out.contains("--deposit-data"), "{out}");
    assert!(files(&sealed).is_empty() && files(&kb).is_empty() && files(&dd).is_empty());

    let (ok, out) = keyguard(&generate(&pf, WC));
    assert!(ok, "{out}");

    // The sealed keys, unsealed by the HSM.
    let session = HsmSession::open(&token.config()).unwrap();
    let sealed_keys: Vec<ValidatorKey> = list_sealed(&sealed)
        .unwrap()
        .iter()
        .map(|f| unseal_file(&session, &f.path).unwrap())
        .collect();
    assert_eq!(sealed_keys.len(), 2);

    // Two keystores, named and pathed like staking-deposit-cli's, private, decrypting to
    // exactly the sealed keys.
    let backups = files(&kb);
    assert_eq!(backups.len(), 2, "{backups:?}");
    let mut backup_pubkeys = Vec::new();
    for (i, path) in backups.iter().enumerate() {
        let name = path.file_name().unwrap().to_str().unwrap();
        let prefix = format!("keystore-m_12381_3600_{i}_0_0-");
        assert!(
            name.starts_with(&prefix) && name.ends_with(".json"),
            "{name}"
        );
        let time = &name[prefix.len()..name.len() - ".json".len()];
        assert!(time.parse::<u64>().unwrap() > 1_600_000_000, "{name}");
        let mode = std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{name}");
        let store = Keystore::from_file(path).unwrap();
        assert_eq!(store.path(), format!("m/12381/3600/{i}/0/0"));
        let secret = store.decrypt(PASSWORD).unwrap();
        let key = ValidatorKey::from_secret_bytes(&secret, KeySource::Keystore, "backup").unwrap();
        assert_eq!(store.pubkey(), Some(*key.pubkey()));
        let twin = sealed_keys
            .iter()
            .find(|s| s.pubkey() == key.pubkey())
            .unwrap_or_else(|| panic!("backup {name} is not a sealed key"));
        assert_eq!(*twin.secret_bytes().expect("local key"), *secret);
        backup_pubkeys.push(*key.pubkey());
    }
    backup_pubkeys.sort();
    backup_pubkeys.dedup();
    assert_eq!(backup_pubkeys.len(), 2);

    // One deposit-data file, one verified entry per key, for the devnet.
    let dd_files = files(&dd);
    assert_eq!(dd_files.len(), 1, "{dd_files:?}");
    let name = dd_files[0].file_name().unwrap().to_str().unwrap();
    assert!(
        name.starts_with("deposit_data-") && name.ends_with(".json"),
        "{name}"
    );
    let entries: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&dd_files[0]).unwrap()).unwrap();
    let entries = entries.as_array().unwrap();
    assert_eq!(entries.len(), 2);
    let domain = compute_domain(DOMAIN_DEPOSIT, Bytes(b("00000001")), Bytes32::ZERO);
    let mut deposit_pubkeys = Vec::new();
    for e in entries {
        let s = |k: &str| e[k].as_str().unwrap_or_else(|| panic!("{k} in {e}"));
        let pubkey: [u8; 48] = b(s("pubkey"));
        deposit_pubkeys.push(pubkey);
        let pubkey = &pubkey;
        assert_eq!(s("withdrawal_credentials"), &WC[2..]);
        assert_eq!(e["amount"].as_u64(), Some(32_000_000_000));
        assert_eq!(s("fork_version"), "00000001");
        assert_eq!(s("network_name"), "devnet");
        assert!(!s("deposit_cli_version").is_empty());

        let message = DepositMessage {
            pubkey: Bytes(b(s("pubkey"))),
            withdrawal_credentials: Bytes(b(s("withdrawal_credentials"))),
            amount: Quantity(e["amount"].as_u64().unwrap()),
        };
        let message_root = message.tree_hash_root();
        assert_eq!(s("deposit_message_root"), hex::encode(message_root.0));
        let signature: [u8; 96] = b(s("signature"));
        let data = DepositData {
            pubkey: message.pubkey,
            withdrawal_credentials: message.withdrawal_credentials,
            amount: message.amount,
            signature: Bytes(signature),
        };
        assert_eq!(s("deposit_data_root"), hex::encode(data.tree_hash_root().0));

        let root = compute_signing_root(message_root, domain);
        let sig = blst::min_pk::Signature::from_bytes(&signature).unwrap();
        let pk = blst::min_pk::PublicKey::from_bytes(pubkey).unwrap();
        assert_eq!(
            sig.verify(true, &root, BLS_DST, &[], &pk, true),
            blst::BLST_ERROR::BLST_SUCCESS,
            "deposit signature of {} verifies",
            s("pubkey")
        );
    }
    deposit_pubkeys.sort();
    assert_eq!(
        deposit_pubkeys, backup_pubkeys,
        "one deposit per generated key"
    );
}
