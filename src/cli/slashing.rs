//! `keyguard slashing ...`: interchange import/export, high watermark and pruning.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;
use slashing_db::{ExportFormat, SlashingDb};

use crate::config::{Config, ConfigError};
use crate::consensus::Network;
use crate::durable::{self, Existing};

/// `keyguard slashing ...`. Run these while `keyguard run` is stopped: the database is
/// locked by the running signer.
#[derive(Debug, Subcommand)]
pub enum SlashingCommand {
    /// Import an EIP-3076 interchange file (version 5) in one atomic transaction; a bad file
    /// changes nothing and every problem is reported with its location.
    Import {
        /// The interchange JSON file.
        file: PathBuf,
    },
    /// Export slashing-protection history as an EIP-3076 interchange file (version 5).
    Export {
        /// Where to write the JSON (`-` for standard output).
        file: PathBuf,
        /// Export only these validators (repeatable; default: all).
        #[arg(long = "pubkey", value_name = "0xPUBKEY")]
        pubkeys: Vec<String>,
        /// Minimal format: only the latest block and attestation per validator.
        #[arg(long)]
        minimal: bool,
    },
    /// The high-watermark kill switch: refuse everything at or past a slot/epoch, e.g.
    /// before moving keys to another signer.
    HighWatermark {
        /// set, clear or show.
        #[command(subcommand)]
        action: HighWatermarkAction,
    },
    /// Delete records older than the newest `--keep-epochs` epochs of each validator
    /// (the records that define its low watermarks are always kept). An epoch has the
    /// slots of the configured network's preset (`--network`).
    Prune {
        /// Epochs of history to keep per validator.
        #[arg(long, value_name = "EPOCHS", default_value_t = 4096)]
        keep_epochs: u64,
    },
    /// Copy the whole slashing database (the configured one) into another, empty one:
    /// SQLite to PostgreSQL or back. Every validator, every record with its signing root,
    /// the genesis validators root and the high watermark are copied row by row in one
    /// transaction per side, then verified by comparing complete exports. Stop every
    /// signer using the source first.
    Migrate {
        /// The target: a SQLite file path or a postgres:// URL (its password from
        /// `--to-password-file` or KEYGUARD_MIGRATE_TO_PASSWORD, not the URL).
        #[arg(long, value_name = "FILE|URL")]
        to: String,
        /// File whose first line is the target PostgreSQL password.
        #[arg(long, value_name = "FILE")]
        to_password_file: Option<PathBuf>,
    },
    /// Import a Web3Signer slashing-protection database (PostgreSQL, schema version 12),
    /// read only, with the interchange import's semantics: never less protective.
    #[command(name = "import-web3signer")]
    ImportWeb3signer {
        /// The Web3Signer database: a postgres:// URL (its password from
        /// `--source-password-file` or KEYGUARD_WEB3SIGNER_DATABASE_PASSWORD, not the URL).
        url: String,
        /// File whose first line is the Web3Signer database password.
        #[arg(long, value_name = "FILE")]
        source_password_file: Option<PathBuf>,
    },
}

/// `keyguard slashing high-watermark ...`.
#[derive(Debug, Subcommand)]
pub enum HighWatermarkAction {
    /// Refuse blocks at or past `--slot` and attestations with source or target at or past
    /// `--epoch`; a limit not given keeps its current value.
    Set {
        /// First slot that is refused for blocks.
        #[arg(long)]
        slot: Option<u64>,
        /// First epoch that is refused for attestations.
        #[arg(long)]
        epoch: Option<u64>,
    },
    /// Remove the high watermark.
    Clear,
    /// Print the current high watermark.
    Show,
}

/// Runs one slashing-database command against the configured database.
pub fn run(command: SlashingCommand, config: &Config) -> anyhow::Result<()> {
    let db = open(config)?;
    match command {
        SlashingCommand::Import { file } => {
            let json = std::fs::read(&file)
                .with_context(|| format!("cannot read interchange file {}", file.display()))?;
            let summary = db.import_interchange(&json).with_context(|| {
                format!("import of {} failed; nothing was changed", file.display())
            })?;
            println!(
                "imported {}: {} validators ({} new), {} blocks and {} attestations in the file",
                file.display(),
                summary.validators,
                summary.new_validators,
                summary.blocks_in_file,
                summary.attestations_in_file
            );
        }
        SlashingCommand::Export {
            file,
            pubkeys,
            minimal,
        } => {
            let pubkeys = parse_pubkeys(&pubkeys)?;
            let format = if minimal {
                ExportFormat::Minimal
            } else {
                ExportFormat::Complete
            };
            let json = db.export_interchange(pubkeys.as_deref(), format)?;
            write_output(&file, &json)?;
        }
        SlashingCommand::HighWatermark { action } => match action {
            HighWatermarkAction::Set { slot, epoch } => {
                if slot.is_none() && epoch.is_none() {
                    return Err(ConfigError::new(
                        "high-watermark set",
                        "give --slot and/or --epoch",
                    )
                    .into());
                }
                db.set_high_watermark(slot, epoch)?;
                println!("high watermark set: slot {slot:?}, epoch {epoch:?}");
            }
            HighWatermarkAction::Clear => {
                db.clear_high_watermark()?;
                println!("high watermark cleared");
            }
            HighWatermarkAction::Show => match db.high_watermark()? {
                None => println!("no high watermark"),
                Some(hw) => println!(
                    "high watermark: blocks refused from slot {}, attestations from epoch {}",
                    opt(hw.slot),
                    opt(hw.epoch)
                ),
            },
        },
        SlashingCommand::Prune { keep_epochs } => {
            let network = config.network()?;
            let summary = prune(&db, keep_epochs, &network)?;
            println!(
                "pruned {} block and {} attestation records (kept {keep_epochs} epochs of {} \
                 slots, the {} preset)",
                summary.blocks_deleted,
                summary.attestations_deleted,
                network.slots_per_epoch(),
                network.name()
            );
        }
        SlashingCommand::Migrate {
            to,
            to_password_file,
        } => super::slashing_migrate::migrate(&db, config, &to, to_password_file.as_deref())?,
        SlashingCommand::ImportWeb3signer {
            url,
            source_password_file,
        } => {
            super::slashing_migrate::import_web3signer(&db, &url, source_password_file.as_deref())?
        }
    }
    Ok(())
}

/// Prunes with the epoch length of `network`'s preset: block records are kept by slot,
/// so a wrong epoch length would keep too little or too much history.
fn prune(
    db: &SlashingDb,
    keep_epochs: u64,
    network: &Network,
) -> anyhow::Result<slashing_db::PruneSummary> {
    Ok(db.prune(keep_epochs, network.slots_per_epoch())?)
}

fn opt(v: Option<u64>) -> String {
    v.map_or_else(|| "(unset)".to_string(), |v| v.to_string())
}

fn open(config: &Config) -> anyhow::Result<SlashingDb> {
    crate::slashing_store::open(config, Default::default())
}

fn parse_pubkeys(values: &[String]) -> anyhow::Result<Option<Vec<[u8; 48]>>> {
    if values.is_empty() {
        return Ok(None);
    }
    values
        .iter()
        .map(|v| {
            crate::keys::parse_pubkey(v).ok_or_else(|| {
                ConfigError::new("--pubkey", format!("`{v}` is not a 48-byte hex pubkey")).into()
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()
        .map(Some)
}

fn write_output(file: &std::path::Path, json: &[u8]) -> anyhow::Result<()> {
    if file.as_os_str() == "-" {
        std::io::stdout().write_all(json)?;
        return Ok(());
    }
    // Durable and atomic: an interrupted export never leaves a truncated file that
    // looks valid.
    durable::write_file(file, json, durable::PRIVATE_MODE, Existing::Replace)
        .with_context(|| format!("cannot write {}", file.display()))?;
    eprintln!("exported to {}", file.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One validator with blocks at slots 0, 50 and 100 (and no attestations).
    fn db_with_blocks(dir: &std::path::Path) -> SlashingDb {
        let db = SlashingDb::open(&dir.join("db.sqlite"), Default::default()).unwrap();
        for slot in [0, 50, 100] {
            let root = [slot as u8 + 1; 32];
            let block = slashing_db::Subject::Block {
                slot: slashing_db::Slot(slot),
            };
            db.check_and_record_blocking([0x11; 32].into(), [0xa9; 48].into(), block, root.into())
                .unwrap();
        }
        db
    }

    #[test]
    fn prune_counts_epochs_in_the_networks_slots() {
        let dir = tempfile::tempdir().unwrap();
        // Gnosis: 16 slots per epoch, so 3 epochs keep slots 52..=100 and drop 0 and 50.
        let gnosis = Network::builtin("gnosis").unwrap();
        assert_eq!(gnosis.slots_per_epoch(), 16);
        let summary = prune(&db_with_blocks(dir.path()), 3, &gnosis).unwrap();
        assert_eq!(summary.blocks_deleted, 2);

        // Mainnet: 32 slots per epoch, so 3 epochs keep slots 4..=100 and drop only 0.
        let dir = tempfile::tempdir().unwrap();
        let mainnet = Network::builtin("mainnet").unwrap();
        let summary = prune(&db_with_blocks(dir.path()), 3, &mainnet).unwrap();
        assert_eq!(summary.blocks_deleted, 1);
    }
}
