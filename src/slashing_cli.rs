//! `keyguard slashing ...`: interchange import/export, high watermark and pruning.

use std::io::Write;

use anyhow::Context;
use slashing_db::{ExportFormat, SlashingDb};

use crate::cli::{HighWatermarkAction, SlashingCommand};
use crate::config::{Config, ConfigError};

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
        SlashingCommand::Prune {
            keep_epochs,
            slots_per_epoch,
        } => {
            let summary = db.prune(keep_epochs, slots_per_epoch)?;
            println!(
                "pruned {} block and {} attestation records",
                summary.blocks_deleted, summary.attestations_deleted
            );
        }
    }
    Ok(())
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
    write_atomically(file, json)?;
    eprintln!("exported to {}", file.display());
    Ok(())
}

/// Writes atomically (temp file, fsync, rename) so an interrupted export never leaves a
/// truncated file that looks valid.
pub fn write_atomically(file: &std::path::Path, json: &[u8]) -> anyhow::Result<()> {
    let tmp = file.with_extension("tmp");
    let mut f =
        std::fs::File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
    f.write_all(json)?;
    f.sync_all()?;
    std::fs::rename(&tmp, file).with_context(|| format!("cannot write {}", file.display()))?;
    Ok(())
}
