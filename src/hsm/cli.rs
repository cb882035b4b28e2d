//! Command-line subcommands of the HSM backend, mounted by the main CLI as
//! `keyguard hsm …` ([`HsmCommand`]) and `keyguard keys …` ([`SealedKeysCommand`]).
//!
//! The HSM connection (module, token label, PIN source, KEK label) comes from the
//! caller's [`HsmConfig`]; none of these commands takes a PIN on the command line.

use std::path::PathBuf;

use anyhow::Context;

use super::{
    create_kek, destroy_kek, destroy_sealed, generate_keys, init_kek, list_tokens, reseal_all,
    seal_key, HsmConfig, HsmError, HsmSession,
};
use crate::keys::{parse_pubkey, pubkey_hex, ValidatorKey};

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
    /// not kept: without a separate backup a lost KEK means lost keys.
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
/// supplies the keys to seal (the caller decrypts its keystores).
pub fn run_sealed_keys_command(
    cmd: SealedKeysCommand,
    cfg: &HsmConfig,
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
        } => {
            let hsm = open_with_kek(cfg)?;
            create_dir(&out)?;
            let pubkeys = generate_keys(&hsm, count, start_index, &out)?;
            for pk in &pubkeys {
                println!("{}", pubkey_hex(pk));
            }
            println!(
                "{} key(s) generated and sealed in {}",
                pubkeys.len(),
                out.display()
            );
        }
        SealedKeysCommand::Reseal { new_kek, dir } => {
            let hsm = HsmSession::open(cfg)?;
            let summary = reseal_all(&hsm, &dir, &new_kek)?;
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
            println!("destroyed the sealed key of {}", pubkey_hex(&pk));
        }
    }
    Ok(())
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

    #[derive(Parser)]
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
}
