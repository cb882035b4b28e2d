//! The command line: `keyguard run`, `keyguard slashing ...`.
//!
//! Exit codes: 0 success, 1 runtime failure, 2 bad command line or configuration.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::config::{Config, ConfigArgs, ConfigError, LogFormat};

/// keyguard: a Web3Signer-compatible remote signer for Ethereum validators, with durable
/// slashing protection and HSM-sealed keys.
#[derive(Debug, Parser)]
#[command(name = "keyguard", version, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// keyguard's commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the signing API (Web3Signer-compatible) until SIGINT/SIGTERM.
    Run {
        /// Configuration (file, flags and KEYGUARD_* variables).
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Manage the slashing-protection database (EIP-3076 interchange, watermarks).
    Slashing {
        /// The slashing command.
        #[command(subcommand)]
        command: SlashingCommand,
        /// Configuration (file, flags and KEYGUARD_* variables).
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Set up the HSM: create the key-encryption key, list tokens, destroy a retired KEK.
    Hsm {
        /// The HSM command.
        #[command(subcommand)]
        command: crate::hsm::cli::HsmCommand,
        /// Configuration (file, flags and KEYGUARD_* variables).
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Manage validator keys: list them, seal keystores under the HSM, generate sealed keys,
    /// rotate the KEK, destroy a sealed key.
    Keys {
        /// The keys command.
        #[command(subcommand)]
        command: crate::keys_cli::KeysCommand,
        /// Configuration (file, flags and KEYGUARD_* variables).
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Work with audit log files: `keyguard audit verify FILE` checks the hash chain.
    Audit {
        /// The audit command.
        #[command(subcommand)]
        command: crate::audit::cli::AuditCommand,
    },
}

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
    /// (the records that define its low watermarks are always kept).
    Prune {
        /// Epochs of history to keep per validator.
        #[arg(long, value_name = "EPOCHS", default_value_t = 4096)]
        keep_epochs: u64,
        /// Slots per epoch of the network (32 on mainnet, 8 on minimal devnets).
        #[arg(long, value_name = "N", default_value_t = 32)]
        slots_per_epoch: u64,
    },
}

/// `keyguard slashing high-watermark ...`.
#[derive(Debug, Subcommand)]
pub enum HighWatermarkAction {
    /// Refuse blocks at or past `--slot` and attestations with source or target at or past
    /// `--epoch`.
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

/// Parses the command line and runs the chosen command.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            if let Some(config_err) = err.downcast_ref::<ConfigError>() {
                eprintln!("keyguard: {config_err}");
                return ExitCode::from(2);
            }
            eprintln!("keyguard: error: {err:#}");
            ExitCode::from(1)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Run { config } => {
            let config = config.load()?;
            init_logging(&config);
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .thread_name("keyguard-io")
                .build()
                .context("cannot start the async runtime")?;
            runtime.block_on(crate::server::run(config))
        }
        Command::Slashing { command, config } => {
            let config = config.load()?;
            init_logging(&config);
            crate::slashing_cli::run(command, &config)
        }
        Command::Hsm { command, config } => {
            let config = config.load()?;
            init_logging(&config);
            crate::keys_cli::run_hsm(command, &config)
        }
        Command::Keys { command, config } => {
            let config = config.load()?;
            init_logging(&config);
            crate::keys_cli::run_keys(command, &config)
        }
        Command::Audit { command } => crate::audit::cli::run(command),
    }
}

/// Logs to standard error, as text or JSON lines. Colours only on a terminal: in a file
/// or a journal they are noise.
fn init_logging(config: &Config) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::new(&config.log.level);
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let _ = match config.log.format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn config_flags_may_follow_the_subcommand() {
        let cli = Cli::try_parse_from([
            "keyguard",
            "slashing",
            "export",
            "out.json",
            "--data-dir",
            "x",
            "--minimal",
        ])
        .unwrap();
        let Command::Slashing { config, .. } = cli.command else {
            panic!("parsed as another command");
        };
        assert_eq!(config.data_dir, Some(PathBuf::from("x")));
    }

    #[test]
    fn keys_seal_takes_key_source_flags() {
        Cli::try_parse_from([
            "keyguard",
            "keys",
            "seal",
            "--keystores",
            "ks",
            "--passwords",
            "pw",
            "--out",
            "sealed",
        ])
        .unwrap();
    }
}
