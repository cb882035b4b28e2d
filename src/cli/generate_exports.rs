//! What `keyguard keys generate` can write besides the sealed files: an EIP-2335 keystore
//! backup of each new key, and the deposit data of the new validators.
//!
//! Both are produced from the per-key callback of `hsm::generate_keys_with`, which runs
//! before the key is sealed: a key is never active (sealed) without its backup. The
//! deposit-data file is written once at the end and lists exactly the keys that were
//! sealed, also when generation stops part-way.

use std::path::{Path, PathBuf};

use anyhow::Context;
use zeroize::Zeroizing;

use crate::durable::{self, Existing};
use crate::hsm::KeyCallbackError;
use crate::keys::deposit_data::{
    deposit_data_file_name, deposit_data_json, DepositDatum, DepositParams,
};
use crate::keys::password::{normalize_password, read_password_file};
use crate::keys::{Kdf, Keystore, PubkeyBytes, ValidatorKey};

/// Mode of keystore backups: they hold an encrypted secret.
const KEYSTORE_MODE: u32 = 0o600;
/// Mode of deposit-data files (public data), read-only for owner and group like
/// staking-deposit-cli's.
const DEPOSIT_DATA_MODE: u32 = 0o440;

/// Where and how to write keystore backups.
pub(crate) struct KeystoreBackup {
    dir: PathBuf,
    password: Zeroizing<String>,
    kdf: Kdf,
}

impl KeystoreBackup {
    /// Reads the password file (a trailing newline is stripped) and refuses an empty
    /// password, or one that is empty after EIP-2335 normalisation (control characters
    /// only).
    pub(crate) fn new(dir: PathBuf, password_file: &Path, kdf: Kdf) -> anyhow::Result<Self> {
        let password = read_password_file(password_file)?;
        if normalize_password(&password).is_empty() {
            anyhow::bail!(
                "the backup password in {} is empty; refusing to write unprotected keystores",
                password_file.display()
            );
        }
        Ok(Self { dir, password, kdf })
    }
}

/// The keystore backup file name staking-deposit-cli uses for index `i`:
/// `keystore-m_12381_3600_<i>_0_0-<unix time>.json`.
pub(crate) fn keystore_file_name(index: u32, unix_time: u64) -> String {
    format!(
        "keystore-{}-{unix_time}.json",
        eip2334_path(index).replace('/', "_")
    )
}

/// The EIP-2334 signing key path of validator `index`.
pub(crate) fn eip2334_path(index: u32) -> String {
    format!("m/12381/3600/{index}/0/0")
}

/// The exports of one `keys generate` run.
pub(crate) struct GenerateExports {
    backup: Option<KeystoreBackup>,
    deposit: Option<(DepositParams, PathBuf)>,
    unix_time: u64,
    deposits: Vec<DepositDatum>,
    backups: Vec<PathBuf>,
}

impl GenerateExports {
    /// Creates the output directories; nothing else touches the disk until the first key.
    pub(crate) fn new(
        backup: Option<KeystoreBackup>,
        deposit: Option<(DepositParams, PathBuf)>,
    ) -> anyhow::Result<Self> {
        let dirs = backup
            .as_ref()
            .map(|b| &b.dir)
            .into_iter()
            .chain(deposit.as_ref().map(|d| &d.1));
        for dir in dirs {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let unix_time = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        Ok(Self {
            backup,
            deposit,
            unix_time,
            deposits: Vec::new(),
            backups: Vec::new(),
        })
    }

    /// The per-key callback: writes the keystore backup (and checks that it decrypts to
    /// the key) and signs the deposit.
    pub(crate) fn on_key(
        &mut self,
        index: u32,
        key: &ValidatorKey,
    ) -> Result<(), KeyCallbackError> {
        self.export(index, key)
            .map_err(|e| KeyCallbackError::from(format!("{e:#}")))
    }

    fn export(&mut self, index: u32, key: &ValidatorKey) -> anyhow::Result<()> {
        if let Some(b) = &self.backup {
            let path = b.dir.join(keystore_file_name(index, self.unix_time));
            let secret = key.secret_bytes()?;
            let store = Keystore::encrypt(
                &secret,
                key.pubkey(),
                &b.password,
                b.kdf,
                &eip2334_path(index),
            )
            .context("cannot encrypt the keystore backup")?;
            write_new_file(&path, store.to_json().as_bytes(), KEYSTORE_MODE)?;
            // Read back what is on disk: a backup that cannot be restored is no backup.
            let back = Keystore::from_file(&path)
                .and_then(|k| k.decrypt(&b.password))
                .with_context(|| {
                    format!("keystore backup {} does not read back", path.display())
                })?;
            if *back != *secret {
                anyhow::bail!(
                    "keystore backup {} does not decrypt to the generated key",
                    path.display()
                );
            }
            self.backups.push(path);
        }
        if let Some((params, _)) = &self.deposit {
            self.deposits.push(params.sign(key)?);
        }
        Ok(())
    }

    /// The keystore backup directory, if backups were asked for.
    pub(crate) fn backup_dir(&self) -> Option<&Path> {
        self.backup.as_ref().map(|b| b.dir.as_path())
    }

    /// The keystore backups written so far.
    pub(crate) fn backups(&self) -> &[PathBuf] {
        &self.backups
    }

    /// Writes the deposit-data file with the entries of the keys for which `sealed` is
    /// true (all of them after a complete run). Returns the file and its entry count, or
    /// `None` when no deposit data was asked for or no key qualifies.
    pub(crate) fn write_deposit_data(
        &self,
        sealed: impl Fn(&PubkeyBytes) -> bool,
    ) -> anyhow::Result<Option<(PathBuf, usize)>> {
        let Some((_, dir)) = &self.deposit else {
            return Ok(None);
        };
        let entries: Vec<DepositDatum> = self
            .deposits
            .iter()
            .filter(|d| {
                let mut pk = [0u8; 48];
                hex::decode_to_slice(&d.pubkey, &mut pk).is_ok() && sealed(&pk)
            })
            .cloned()
            .collect();
        if entries.is_empty() {
            return Ok(None);
        }
        let path = dir.join(deposit_data_file_name(self.unix_time));
        write_new_file(
            &path,
            deposit_data_json(&entries).as_bytes(),
            DEPOSIT_DATA_MODE,
        )?;
        Ok(Some((path, entries.len())))
    }
}

/// Writes a new file durably ([`crate::durable::write_file`]); an existing file is never
/// overwritten.
fn write_new_file(path: &Path, bytes: &[u8], mode: u32) -> anyhow::Result<()> {
    Ok(durable::write_file(path, bytes, mode, Existing::Keep)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consensus::Network;
    use crate::keys::deposit_data::{WithdrawalCredentials, DEFAULT_DEPOSIT_GWEI};
    use crate::keys::{interop_secret, KeySource};
    use std::os::unix::fs::PermissionsExt;

    fn key(i: u64) -> ValidatorKey {
        ValidatorKey::from_secret_bytes(&interop_secret(i), KeySource::Sealed, "t").unwrap()
    }

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn names_follow_staking_deposit_cli() {
        assert_eq!(
            keystore_file_name(7, 1700000000),
            "keystore-m_12381_3600_7_0_0-1700000000.json"
        );
        assert_eq!(eip2334_path(7), "m/12381/3600/7/0/0");
    }

    #[test]
    fn empty_passwords_are_refused_and_newlines_stripped() {
        let dir = tempfile::tempdir().unwrap();
        let pf = dir.path().join("pw");
        for empty in ["", "\n", "\r\n", "\u{7f}\n"] {
            std::fs::write(&pf, empty).unwrap();
            let err = KeystoreBackup::new(dir.path().into(), &pf, Kdf::Pbkdf2)
                .err()
                .unwrap();
            assert!(err.to_string().contains("is empty"), "{err}");
        }
        std::fs::write(&pf, "secret\n").unwrap();
        let b = KeystoreBackup::new(dir.path().into(), &pf, Kdf::Pbkdf2).unwrap();
        assert_eq!(b.password.as_str(), "secret");
    }

    #[test]
    fn writes_backups_and_deposit_data_of_sealed_keys_only() {
        let dir = tempfile::tempdir().unwrap();
        let pf = dir.path().join("pw");
        std::fs::write(&pf, "correct horse\n").unwrap();
        let backup = KeystoreBackup::new(dir.path().join("kb"), &pf, Kdf::Pbkdf2).unwrap();
        let wc = WithdrawalCredentials::parse(&format!("0x00{}", "11".repeat(31))).unwrap();
        let params = DepositParams::new(wc, DEFAULT_DEPOSIT_GWEI, &Network::devnet()).unwrap();
        let mut ex =
            GenerateExports::new(Some(backup), Some((params, dir.path().join("dd")))).unwrap();
        let (k3, k4) = (key(3), key(4));
        ex.on_key(3, &k3).unwrap();
        ex.on_key(4, &k4).unwrap();
        // The same index again would overwrite a backup: refused.
        let err = ex.on_key(3, &k3).unwrap_err().to_string();
        assert!(err.contains("already exists"), "{err}");

        assert_eq!(ex.backups().len(), 2);
        for (p, k, i) in [(&ex.backups()[0], &k3, 3), (&ex.backups()[1], &k4, 4)] {
            assert_eq!(mode(p), 0o600);
            let store = Keystore::from_file(p).unwrap();
            assert_eq!(store.path(), format!("m/12381/3600/{i}/0/0"));
            assert_eq!(store.pubkey(), Some(*k.pubkey()));
            assert_eq!(
                *store.decrypt("correct horse").unwrap(),
                *k.secret_bytes().unwrap()
            );
        }

        // Only k4 "sealed": the file lists it alone.
        let (path, n) = ex
            .write_deposit_data(|pk| pk == k4.pubkey())
            .unwrap()
            .unwrap();
        assert_eq!(n, 1);
        assert_eq!(mode(&path), 0o440);
        let v: Vec<DepositDatum> =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].pubkey, hex::encode(k4.pubkey()));
        assert_eq!(v[0].fork_version, "00000001");
        // No temporary files left behind.
        let names: Vec<String> = std::fs::read_dir(dir.path().join("dd"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
        assert!(ex.write_deposit_data(|_| false).unwrap().is_none());
    }
}
