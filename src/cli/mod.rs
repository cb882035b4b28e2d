//! The command line: every `keyguard` command, one module each. The library modules
//! below (`hsm`, `audit`, `keys`, …) carry no clap and no anyhow; their typed errors get
//! their context here.
//!
//! Exit codes: 0 success, 1 runtime failure, 2 bad command line or configuration.

pub mod audit;
mod generate_exports;
pub mod hsm;
pub mod keys;
pub mod slashing;
mod slashing_migrate;

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
        command: slashing::SlashingCommand,
        /// Configuration (file, flags and KEYGUARD_* variables).
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Set up the HSM: create the key-encryption key, list tokens, destroy a retired KEK.
    Hsm {
        /// The HSM command.
        #[command(subcommand)]
        command: hsm::HsmCommand,
        /// Configuration (file, flags and KEYGUARD_* variables).
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Manage validator keys: list them, seal keystores under the HSM, generate sealed keys,
    /// rotate the KEK, destroy a sealed key.
    Keys {
        /// The keys command.
        #[command(subcommand)]
        command: keys::KeysCommand,
        /// Configuration (file, flags and KEYGUARD_* variables).
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Work with audit log files: `keyguard audit verify FILE` checks the hash chain.
    Audit {
        /// The audit command.
        #[command(subcommand)]
        command: audit::AuditCommand,
    },
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
    // Before any command reads a PIN, a password or a key: every command, since `keys`,
    // `hsm` and `slashing` handle secrets too, and hardening costs nothing.
    let refused = crate::process::harden();
    if !refused.is_empty() {
        eprintln!(
            "keyguard: warning: the kernel refused {}; key material may end up in core dumps",
            refused.join(", ")
        );
    }
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
            slashing::run(command, &config)
        }
        Command::Hsm { command, config } => {
            let config = config.load()?;
            init_logging(&config);
            keys::run_hsm(command, &config)
        }
        Command::Keys { command, config } => {
            let config = config.load()?;
            init_logging(&config);
            keys::run_keys(command, &config)
        }
        Command::Audit { command } => audit::run(command),
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
    use std::path::PathBuf;

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
