//! `keyguard keys ...` and `keyguard hsm ...`: key listing and the sealed-key lifecycle.

use anyhow::Context;
use rayon::prelude::*;

use super::hsm::{run_audited_sealed_keys_command, run_hsm_command, HsmCommand, SealedKeysCommand};
use crate::audit::{AuditLog, OnFailure};
use crate::config::{Config, ConfigError, KeysConfig};
use crate::durable::{self, Existing};
use crate::keys::{self, KeyTable, LoadProgress, ValidatorKey};

/// `keyguard keys ...`.
#[derive(Debug, clap::Subcommand)]
pub enum KeysCommand {
    /// Load every configured key source as `keyguard run` would, and list each key with its
    /// source and state (loaded, or the reason it failed). Needs the HSM for sealed keys.
    List,
    /// Sealed-key lifecycle (needs the HSM).
    #[command(flatten)]
    Sealed(SealedKeysCommand),
}

/// Runs `keyguard hsm ...`.
pub fn run_hsm(command: HsmCommand, config: &Config) -> anyhow::Result<()> {
    run_hsm_command(command, config.require_hsm()?)
}

/// Runs `keyguard keys ...`.
pub fn run_keys(command: KeysCommand, config: &Config) -> anyhow::Result<()> {
    let KeysCommand::Sealed(cmd) = command else {
        return list(config);
    };
    // First, before anything changes: fails if a running keyguard holds the audit log.
    let audit = AuditLog::open(
        &config.audit,
        &config.data_dir,
        &format!("keyguard keys {}", sealed_command_name(&cmd)),
        None,
    )?;
    if config.audit.on_failure == OnFailure::Refuse {
        // Nothing changes unless the log is being written (its `log_open` line is synced).
        audit
            .wait_written(AUDIT_WRITE_WAIT)
            .map_err(|e| anyhow::anyhow!("{e}: {}; nothing changed", e.0))?;
    }
    let result = run_sealed(cmd, config, &audit);
    // With `refuse`, a lifecycle event that could not be written fails the command.
    let closed = audit.close();
    result?;
    closed.context("the keys were changed, but the audit log does not record it")
}

/// How long a key command waits for the audit log to take its first line.
const AUDIT_WRITE_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

fn run_sealed(cmd: SealedKeysCommand, config: &Config, audit: &AuditLog) -> anyhow::Result<()> {
    let network = config.network()?;
    match cmd {
        SealedKeysCommand::Destroy { pubkey, dir } => {
            export_history_before_destroy(config, &pubkey)?;
            let cmd = SealedKeysCommand::Destroy { pubkey, dir };
            run_audited_sealed_keys_command(cmd, config.require_hsm()?, &network, audit, || {
                Ok(Vec::new())
            })
        }
        cmd => run_audited_sealed_keys_command(cmd, config.require_hsm()?, &network, audit, || {
            keys_to_seal(config)
        }),
    }
}

/// The subcommand's name, for the audit log's `log_open` event.
fn sealed_command_name(cmd: &SealedKeysCommand) -> &'static str {
    match cmd {
        SealedKeysCommand::Seal { .. } => "seal",
        SealedKeysCommand::Generate { .. } => "generate",
        SealedKeysCommand::Reseal { .. } => "reseal",
        SealedKeysCommand::Destroy { .. } => "destroy",
    }
}

/// Every key `keyguard run` would load with this configuration: the configured sources and
/// the keys imported through the keymanager API (loaded whether or not the API is on).
fn list(config: &Config) -> anyhow::Result<()> {
    let jobs = crate::startup::key_inventory(config, false)?.jobs;
    let table = KeyTable::new();
    let progress = LoadProgress::new();
    progress.add_total(jobs.len());
    keys::loader::run_jobs(jobs, &table, &progress);
    for key in table.keys() {
        println!(
            "{}  {:<20} loaded  {}",
            keys::pubkey_hex(key.pubkey()),
            key.source().as_str(),
            key.origin()
        );
    }
    let snapshot = progress.snapshot();
    for f in &snapshot.failures {
        let source = f.source.map_or("-", |s| s.as_str());
        println!(
            "{:<98}  {source:<20} FAILED  {}: {}",
            "-", f.origin, f.error
        );
    }
    println!("{} loaded, {} failed", snapshot.loaded, snapshot.failed);
    if snapshot.failed > 0 {
        anyhow::bail!("{} key(s) failed to load", snapshot.failed);
    }
    Ok(())
}

/// The keys of the configured keystores and Web3Signer key files, decrypted in parallel.
/// Any failure refuses the whole seal, so a half-sealed set is never mistaken for all.
fn keys_to_seal(config: &Config) -> anyhow::Result<Vec<ValidatorKey>> {
    // Sealing takes the keys a keystore or key-definition file holds: never the public
    // interop keys, and the sealed ones already are.
    let sources = KeysConfig {
        interop_keys: None,
        sealed: None,
        ..config.keys.clone()
    };
    let jobs = keys::load_jobs(&sources).context("cannot read the key sources to seal")?;
    if jobs.is_empty() {
        anyhow::bail!("no keys to seal: give --keystores and --passwords, or --key-definitions");
    }
    let results: Vec<(String, Result<ValidatorKey, String>)> = jobs
        .into_par_iter()
        .map(|job| (job.origin, (job.run)()))
        .collect();
    let mut keys = Vec::with_capacity(results.len());
    let mut failures = Vec::new();
    for (origin, result) in results {
        match result {
            Ok(key) => keys.push(key),
            Err(e) => failures.push(format!("{origin}: {e}")),
        }
    }
    if !failures.is_empty() {
        anyhow::bail!(
            "nothing sealed; these keys failed to load:\n  {}",
            failures.join("\n  ")
        );
    }
    Ok(keys)
}

/// Writes the key's slashing-protection history (EIP-3076, complete) next to the database
/// before its sealed file is destroyed, so it can be imported wherever the key goes next.
fn export_history_before_destroy(config: &Config, pubkey: &str) -> anyhow::Result<()> {
    let pk = keys::parse_pubkey(pubkey).ok_or_else(|| {
        ConfigError::new(
            "--pubkey",
            format!("`{pubkey}` is not a 48-byte hex pubkey"),
        )
    })?;
    if !crate::slashing_store::exists(config)? {
        eprintln!(
            "no slashing database at {}: no history to export",
            config.slashing_database_path().display()
        );
        return Ok(());
    }
    let db =
        crate::slashing_store::open(config, Default::default()).context("is keyguard running?")?;
    if db.genesis_validators_root()?.is_none() {
        eprintln!("the slashing database is empty: no history to export");
        return Ok(());
    }
    let json = db.export_interchange(Some(&[pk]), slashing_db::ExportFormat::Complete)?;
    let dir = config.data_dir.join("destroyed-keys");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let out = dir.join(format!(
        "{}-slashing-protection.json",
        keys::pubkey_hex(&pk)
    ));
    // The full durable-write guarantee: the sealed file goes next, so this copy may be
    // the only record of what the key signed.
    durable::write_file(&out, &json, durable::PRIVATE_MODE, Existing::Replace)
        .with_context(|| format!("cannot write {}", out.display()))?;
    println!(
        "exported the slashing-protection history of {pubkey} to {}",
        out.display()
    );
    Ok(())
}
