//! Command-line subcommands of the HSM backend, mounted by the main CLI as
//! `keyguard hsm …` ([`HsmCommand`]) and `keyguard keys …` ([`SealedKeysCommand`]).
//!
//! The HSM connection (module, token label, PIN source, KEK label) comes from the
//! caller's [`HsmConfig`]; none of these commands takes a PIN on the command line.

use std::path::PathBuf;

use anyhow::Context;

use super::generate_exports::{GenerateExports, KeystoreBackup};
use crate::audit::{AuditLog, EventName};
use crate::consensus::Network;
use crate::hsm::{
    create_kek, destroy_kek, destroy_sealed, generate_keys_with, init_kek, list_tokens, reseal_all,
    seal_key, sealed_file_name, HsmConfig, HsmError, HsmSession,
};
use crate::keys::deposit_data::{DepositParams, WithdrawalCredentials, DEFAULT_DEPOSIT_GWEI};
use crate::keys::{parse_pubkey, pubkey_hex, Kdf, ValidatorKey};

/// `keyguard hsm …`: set up and inspect the PKCS#11 token.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum HsmCommand {
    /// Create the key-encryption key (AES-256, sensitive, non-extractable) in the token.
    ///
    /// Uses the `kek_label` of the HSM configuration unless --label is given. Refuses if
    /// an object with that label exists: a KEK is never overwritten.
    InitKek {
        /// Label of the KEK to create (default: `kek_label` from the configuration). Give a
        /// new label here to prepare a KEK rotation (`keyguard keys reseal`).
        #[arg(long, value_name = "LABEL")]
        label: Option<String>,
    },
    /// List the tokens the PKCS#11 module offers (label, serial, state). Needs no PIN.
    ListTokens,
    /// Destroy a key-encryption key that no sealed key file uses any more.
    ///
    /// The last step of a KEK rotation. Refuses while any file in --dir names the KEK.
    DestroyKek {
        /// Label of the KEK to destroy.
        #[arg(long, value_name = "LABEL")]
        label: String,
        /// Directory of sealed key files that must no longer use the KEK.
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
    },
}

/// `keyguard keys …`: create, rotate and remove sealed key files.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum SealedKeysCommand {
    /// Seal existing keys (e.g. EIP-2335 keystores) under the HSM's KEK.
    ///
    /// Writes one `0x<pubkey>.sealed.json` per key into --out, mode 0600; keys that are
    /// already sealed there are skipped. The source keystores are left untouched: keep
    /// them offline as backups.
    Seal {
        /// Directory to write sealed key files into (created if missing).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// Generate new validator keys whose secret never touches disk unsealed.
    ///
    /// Draws 32 bytes of key material from the HSM's random number generator, derives the
    /// EIP-2334 signing keys m/12381/3600/i/0/0 (EIP-2333) and seals each one. The seed is
    /// not kept: without --keystore-backup (or another backup) a lost KEK means lost keys.
    Generate {
        /// How many keys to generate.
        #[arg(long, value_name = "N")]
        count: u32,
        /// The first EIP-2334 index i.
        #[arg(long, value_name = "I", default_value_t = 0)]
        start_index: u32,
        /// Directory to write sealed key files into (created if missing).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Optional EIP-2335 keystore backup of each new key.
        #[command(flatten)]
        backup: KeystoreBackupArgs,
        /// Optional deposit data for the staking launchpad.
        #[command(flatten)]
        deposit: DepositDataArgs,
    },
    /// Rotate the KEK: reseal every file in --dir under a new KEK.
    ///
    /// Create the new KEK first (`keyguard hsm init-kek --label NEW`). Each file is
    /// replaced atomically; an interrupted rotation leaves every key loadable and is
    /// finished by running the command again. Afterwards set `kek_label` to the new label
    /// and destroy the old KEK with `keyguard hsm destroy-kek`.
    Reseal {
        /// Label of the new KEK (must already exist in the token).
        #[arg(long, value_name = "LABEL")]
        new_kek: String,
        /// Directory of sealed key files.
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
    },
    /// Delete a key's sealed file for good.
    ///
    /// Export the key's slashing-protection history first; unless a keystore backup
    /// exists, the key cannot be recovered.
    Destroy {
        /// The validator pubkey (0x + 96 hex digits).
        #[arg(long, value_name = "PUBKEY")]
        pubkey: String,
        /// Directory of sealed key files.
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
    },
}

/// `keys generate --keystore-backup DIR --backup-password-file FILE [--backup-kdf KDF]`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct KeystoreBackupArgs {
    /// Also write each new key as an EIP-2335 keystore into DIR (created if missing), named
    /// `keystore-m_12381_3600_<i>_0_0-<unix time>.json` like staking-deposit-cli, mode 0600.
    /// Each is read back and decrypted before its key is sealed. Keep them offline: with a
    /// lost KEK they are the only way back to the keys.
    #[arg(long, value_name = "DIR", requires = "backup_password_file")]
    pub keystore_backup: Option<PathBuf>,
    /// File holding the keystore backup password (a trailing newline is stripped; an
    /// empty password is refused).
    #[arg(long, value_name = "FILE", requires = "keystore_backup")]
    pub backup_password_file: Option<PathBuf>,
    /// Key derivation function of the keystore backups [default: scrypt].
    #[arg(long, value_name = "KDF", value_enum, requires = "keystore_backup")]
    pub backup_kdf: Option<BackupKdf>,
}

/// The `--backup-kdf` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BackupKdf {
    /// scrypt (n = 2^18, r = 8, p = 1), as staking-deposit-cli writes.
    Scrypt,
    /// PBKDF2-HMAC-SHA256 (c = 2^18): faster to load, weaker against guessing.
    Pbkdf2,
}

impl From<BackupKdf> for Kdf {
    fn from(k: BackupKdf) -> Kdf {
        match k {
            BackupKdf::Scrypt => Kdf::Scrypt,
            BackupKdf::Pbkdf2 => Kdf::Pbkdf2,
        }
    }
}

/// `keys generate --deposit-data DIR --withdrawal-credentials 0x… [--amount-gwei N]`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct DepositDataArgs {
    /// Also write `deposit_data-<unix time>.json` into DIR (created if missing): the file the
    /// staking launchpad takes, one signed deposit per key that was sealed, for the
    /// configured --network (its GENESIS_FORK_VERSION and name).
    #[arg(long, value_name = "DIR", requires = "withdrawal_credentials")]
    pub deposit_data: Option<PathBuf>,
    /// Withdrawal credentials of the deposits: 0x + 32 bytes, prefix 0x00 (BLS withdrawal
    /// key), 0x01 or 0x02 (0x0N, 11 zero bytes, the 20-byte execution address).
    #[arg(long, value_name = "0x…", requires = "deposit_data")]
    pub withdrawal_credentials: Option<WithdrawalCredentials>,
    /// Amount of each deposit in Gwei: at least 1 ETH, at most 32 ETH (2048 ETH for 0x02
    /// credentials) [default: 32000000000].
    #[arg(long, value_name = "GWEI", requires = "deposit_data")]
    pub amount_gwei: Option<u64>,
}

/// Runs a `keyguard hsm …` command.
pub fn run_hsm_command(cmd: HsmCommand, cfg: &HsmConfig) -> anyhow::Result<()> {
    match cmd {
        HsmCommand::InitKek { label: None } => {
            init_kek(cfg)?;
            println!(
                "created key-encryption key \"{}\" in token \"{}\"",
                cfg.kek_label, cfg.token_label
            );
        }
        HsmCommand::InitKek { label: Some(label) } => {
            let hsm = HsmSession::open(cfg)?;
            create_kek(&hsm, &label)?;
            println!(
                "created key-encryption key \"{label}\" in token \"{}\"",
                cfg.token_label
            );
        }
        HsmCommand::ListTokens => {
            let tokens = list_tokens(&cfg.module)?;
            if tokens.is_empty() {
                println!("no tokens in {}", cfg.module.display());
            }
            for t in tokens {
                if t.initialized {
                    println!(
                        "slot {:>10}  label \"{}\"  serial {}  {} {}{}",
                        t.slot_id,
                        t.label,
                        t.serial,
                        t.manufacturer,
                        t.model,
                        if t.user_pin_initialized {
                            ""
                        } else {
                            "  (user PIN not set)"
                        }
                    );
                } else {
                    println!("slot {:>10}  (uninitialised token)", t.slot_id);
                }
            }
        }
        HsmCommand::DestroyKek { label, dir } => {
            let hsm = HsmSession::open(cfg)?;
            destroy_kek(&hsm, &label, &dir)?;
            println!(
                "destroyed key-encryption key \"{label}\" in token \"{}\"",
                cfg.token_label
            );
        }
    }
    Ok(())
}

/// Runs a `keyguard keys …` command. `keys_to_seal` is called only for `Seal` and
/// supplies the keys to seal (the caller decrypts its keystores). `network` decides the
/// deposit domain and metadata of `Generate --deposit-data`.
pub fn run_sealed_keys_command(
    cmd: SealedKeysCommand,
    cfg: &HsmConfig,
    network: &Network,
    keys_to_seal: impl FnOnce() -> anyhow::Result<Vec<ValidatorKey>>,
) -> anyhow::Result<()> {
    run_audited_sealed_keys_command(cmd, cfg, network, &AuditLog::disabled(), keys_to_seal)
}

/// [`run_sealed_keys_command`], recording every sealed, generated, resealed or destroyed
/// key file as an event in `audit`.
pub fn run_audited_sealed_keys_command(
    cmd: SealedKeysCommand,
    cfg: &HsmConfig,
    network: &Network,
    audit: &AuditLog,
    keys_to_seal: impl FnOnce() -> anyhow::Result<Vec<ValidatorKey>>,
) -> anyhow::Result<()> {
    match cmd {
        SealedKeysCommand::Seal { out } => {
            // Keystores first: a wrong keystore password should not need the HSM.
            let keys = keys_to_seal().context("loading the keys to seal")?;
            let hsm = open_with_kek(cfg)?;
            create_dir(&out)?;
            let (mut sealed, mut skipped) = (0usize, 0usize);
            for key in &keys {
                match seal_key(&hsm, key, &out) {
                    Ok(path) => {
                        sealed += 1;
                        audit.record_key_event_waiting(
                            EventName::KeySeal,
                            key.pubkey(),
                            &path.display().to_string(),
                        );
                        println!("sealed {} -> {}", pubkey_hex(key.pubkey()), path.display());
                    }
                    Err(HsmError::AlreadySealed { path }) => {
                        skipped += 1;
                        println!(
                            "skipped {} (already sealed: {})",
                            pubkey_hex(key.pubkey()),
                            path.display()
                        );
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            println!("{sealed} key(s) sealed, {skipped} already sealed");
        }
        SealedKeysCommand::Generate {
            count,
            start_index,
            out,
            backup,
            deposit,
        } => {
            // Options first: a bad password file or credentials should not need the HSM.
            let mut exports = generate_exports(backup, deposit, network)?;
            let hsm = open_with_kek(cfg)?;
            create_dir(&out)?;
            let mut seen = Vec::new();
            let result = generate_keys_with(&hsm, count, start_index, &out, |i, key| {
                seen.push(*key.pubkey());
                exports.on_key(i, key)
            });
            // Also after a failure: every key whose sealed file exists was generated.
            for pk in &seen {
                let path = out.join(sealed_file_name(pk));
                if path.exists() {
                    audit.record_key_event_waiting(
                        EventName::KeyGenerate,
                        pk,
                        &path.display().to_string(),
                    );
                }
            }
            // Deposit data for exactly the keys that were sealed, also after a failure.
            let written = exports.write_deposit_data(|pk| out.join(sealed_file_name(pk)).exists());
            if let Ok(pubkeys) = &result {
                for pk in pubkeys {
                    println!("{}", pubkey_hex(pk));
                }
                println!(
                    "{} key(s) generated and sealed in {}",
                    pubkeys.len(),
                    out.display()
                );
            }
            if let Some(dir) = exports.backup_dir() {
                println!(
                    "{} keystore backup(s) written to {}; keep them offline",
                    exports.backups().len(),
                    dir.display()
                );
            }
            match written {
                Ok(Some((path, n))) => println!(
                    "deposit data of {n} sealed key(s) for {} (fork version 0x{}) written to {}",
                    network.name(),
                    hex::encode(network.genesis_fork_version()),
                    path.display()
                ),
                Ok(None) => {}
                // The generation error below is the one to report; this one is extra.
                Err(e) if result.is_err() => eprintln!("{e:#}"),
                Err(e) => {
                    return Err(e.context(
                        "the keys were generated and sealed, but their deposit data could \
                         not be written",
                    ))
                }
            }
            result?;
        }
        SealedKeysCommand::Reseal { new_kek, dir } => {
            let hsm = HsmSession::open(cfg)?;
            let summary = reseal_all(&hsm, &dir, &new_kek)?;
            for path in &summary.rotated {
                if let Some(pk) = pubkey_of_sealed_file(path) {
                    let detail = format!("{} under KEK \"{new_kek}\"", path.display());
                    audit.record_key_event_waiting(EventName::KeyReseal, &pk, &detail);
                }
            }
            println!(
                "{} file(s) resealed under \"{new_kek}\", {} already under it; now set \
                 kek_label = \"{new_kek}\" and destroy the old KEK",
                summary.rotated.len(),
                summary.already_current
            );
        }
        SealedKeysCommand::Destroy { pubkey, dir } => {
            let pk = parse_pubkey(&pubkey)
                .with_context(|| format!("\"{pubkey}\" is not a pubkey (0x + 96 hex digits)"))?;
            destroy_sealed(&dir, &pk)?;
            let path = dir.join(sealed_file_name(&pk));
            audit.record_key_event_waiting(EventName::KeyDestroy, &pk, &path.display().to_string());
            println!("destroyed the sealed key of {}", pubkey_hex(&pk));
        }
    }
    Ok(())
}

/// Validates the backup and deposit options (reads the password, checks credentials and
/// amount) and creates their directories.
fn generate_exports(
    backup: KeystoreBackupArgs,
    deposit: DepositDataArgs,
    network: &Network,
) -> anyhow::Result<GenerateExports> {
    let backup = match (backup.keystore_backup, backup.backup_password_file) {
        (Some(dir), Some(password_file)) => Some(KeystoreBackup::new(
            dir,
            &password_file,
            backup.backup_kdf.unwrap_or(BackupKdf::Scrypt).into(),
        )?),
        // clap enforces both or neither.
        _ => None,
    };
    let deposit = match (deposit.deposit_data, deposit.withdrawal_credentials) {
        (Some(dir), Some(wc)) => {
            let amount = deposit.amount_gwei.unwrap_or(DEFAULT_DEPOSIT_GWEI);
            Some((DepositParams::new(wc, amount, network)?, dir))
        }
        _ => None,
    };
    GenerateExports::new(backup, deposit)
}

/// The pubkey in a sealed file's name (`0x<pubkey>.sealed.json`).
fn pubkey_of_sealed_file(path: &std::path::Path) -> Option<crate::keys::PubkeyBytes> {
    let name = path.file_name()?.to_str()?;
    parse_pubkey(name.strip_suffix(crate::hsm::SEALED_SUFFIX)?)
}

fn open_with_kek(cfg: &HsmConfig) -> Result<HsmSession, HsmError> {
    let hsm = HsmSession::open(cfg)?;
    hsm.require_kek()?;
    Ok(hsm)
}

fn create_dir(dir: &std::path::Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(subcommand)]
        keys: SealedKeysCommand,
    }

    #[test]
    fn commands_parse_and_have_help() {
        Cli::command().debug_assert();
        let cli = Cli::try_parse_from(["x", "generate", "--count", "3", "--out", "/d"]).unwrap();
        assert!(matches!(
            cli.keys,
            SealedKeysCommand::Generate {
                count: 3,
                start_index: 0,
                ..
            }
        ));
    }

    #[test]
    fn generate_export_flags_come_in_pairs() {
        let base = ["x", "generate", "--count", "1", "--out", "/d"];
        let parse = |extra: &[&str]| {
            let args: Vec<&str> = base.iter().chain(extra).copied().collect();
            Cli::try_parse_from(args).map_err(|e| e.to_string())
        };
        let wc = format!("0x01{}{}", "00".repeat(11), "ab".repeat(20));
        let cli = parse(&[
            "--keystore-backup",
            "/kb",
            "--backup-password-file",
            "/pf",
            "--backup-kdf",
            "pbkdf2",
            "--deposit-data",
            "/dd",
            "--withdrawal-credentials",
            &wc,
            "--amount-gwei",
            "1000000000",
        ])
        .unwrap();
        let SealedKeysCommand::Generate {
            backup, deposit, ..
        } = cli.keys
        else {
            panic!("not generate");
        };
        assert_eq!(backup.backup_kdf, Some(BackupKdf::Pbkdf2));
        assert_eq!(deposit.amount_gwei, Some(1_000_000_000));
        assert_eq!(deposit.withdrawal_credentials.unwrap().bytes()[0], 0x01);

        for (extra, missing) in [
            (vec!["--keystore-backup", "/kb"], "--backup-password-file"),
            (vec!["--backup-password-file", "/pf"], "--keystore-backup"),
            (vec!["--backup-kdf", "scrypt"], "--keystore-backup"),
            (vec!["--deposit-data", "/dd"], "--withdrawal-credentials"),
            (
                vec!["--withdrawal-credentials", wc.as_str()],
                "--deposit-data",
            ),
            (vec!["--amount-gwei", "1"], "--deposit-data"),
        ] {
            let err = parse(&extra).unwrap_err();
            assert!(err.contains(missing), "{extra:?}: {err}");
        }
        let bad = format!("0x03{}", "00".repeat(31));
        let err = parse(&["--deposit-data", "/dd", "--withdrawal-credentials", &bad]).unwrap_err();
        assert!(err.contains("prefix 0x03"), "{err}");
    }
}
