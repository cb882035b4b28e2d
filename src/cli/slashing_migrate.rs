//! `keyguard slashing migrate` (copy the whole database to another one, SQLite or
//! PostgreSQL) and `keyguard slashing import-web3signer` (import a Web3Signer
//! slashing-protection database). Passwords come from a file or the environment, never
//! from logs: every location printed is redacted.

use std::path::Path;

use anyhow::Context;
use slashing_db::{DatabaseLocation, HighWatermark, OpenOptions, SlashingDb};

use crate::config::{Config, ConfigError};
use crate::slashing_store;

/// Environment variable holding the password of `migrate --to`'s PostgreSQL database.
pub const TO_PASSWORD_ENV: &str = "KEYGUARD_MIGRATE_TO_PASSWORD";

/// Environment variable holding the password of the Web3Signer database.
pub const WEB3SIGNER_PASSWORD_ENV: &str = "KEYGUARD_WEB3SIGNER_DATABASE_PASSWORD";

/// Copies `source` (the configured database) into the empty database `to` and verifies
/// the copy by comparing complete exports.
pub fn migrate(
    source: &SlashingDb,
    config: &Config,
    to: &str,
    password_file: Option<&Path>,
) -> anyhow::Result<()> {
    let target_location = DatabaseLocation::parse(to)?;
    if let (DatabaseLocation::Sqlite(from), DatabaseLocation::Sqlite(into)) =
        (slashing_store::location(config)?, &target_location)
    {
        if same_file(&from, into) {
            return Err(ConfigError::new("--to", "is the source database itself").into());
        }
    }
    let mut options = OpenOptions::default();
    if let DatabaseLocation::Postgres(_) = &target_location {
        options.password =
            slashing_store::read_password(password_file, "--to-password-file", TO_PASSWORD_ENV)?;
        options.allow_async_commit = config.slashing.allow_async_commit;
    }
    let target = slashing_store::open_location(&target_location, options)?;
    let summary = source.migrate_into(&target).with_context(|| {
        format!(
            "migration from {} to {target_location} failed",
            source.location()
        )
    })?;
    println!(
        "migrated {} to {target_location}: {} validators, {} blocks, {} attestations, \
         genesis_validators_root {}, high watermark {}; verified: complete exports are \
         identical ({} bytes)",
        source.location(),
        summary.validators,
        summary.blocks,
        summary.attestations,
        summary.genesis_validators_root.map_or_else(
            || "(unbound)".to_owned(),
            |r| format!("0x{}", hex::encode(r))
        ),
        describe_hw(summary.high_watermark),
        summary.export_bytes
    );
    Ok(())
}

/// True if `a` and `b` name one file (compared after resolving, when both exist).
fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// Imports the Web3Signer slashing-protection database at `url` into `db`.
pub fn import_web3signer(
    db: &SlashingDb,
    url: &str,
    password_file: Option<&Path>,
) -> anyhow::Result<()> {
    let DatabaseLocation::Postgres(source) = DatabaseLocation::parse(url)? else {
        return Err(ConfigError::new(
            "import-web3signer",
            "the source must be a postgres:// or postgresql:// URL",
        )
        .into());
    };
    let password = slashing_store::read_password(
        password_file,
        "--source-password-file",
        WEB3SIGNER_PASSWORD_ENV,
    )?;
    let result = db
        .import_web3signer(&source, password)
        .with_context(|| format!("import from Web3Signer database {source} failed"))?;
    let s = &result.summary;
    println!(
        "imported Web3Signer database {source} (schema version {}): {} validators ({} new, \
         {} disabled in Web3Signer), {} blocks, {} attestations and {} low watermarks read",
        result.schema_version,
        s.validators,
        s.new_validators,
        result.disabled_validators,
        s.blocks_in_file,
        s.attestations_in_file,
        result.low_watermarks
    );
    if let Some(hw) = result.source_high_watermark {
        println!(
            "Web3Signer's high watermark ({}) was imported; keyguard's is now {}. If it was \
             set only to stop Web3Signer before the move, clear it with `keyguard slashing \
             high-watermark clear`.",
            describe_hw(Some(hw)),
            describe_hw(result.high_watermark)
        );
    }
    Ok(())
}

fn describe_hw(hw: Option<HighWatermark>) -> String {
    let field = |v: Option<u64>| v.map_or_else(|| "unset".to_owned(), |v| v.to_string());
    match hw {
        None => "none".to_owned(),
        Some(hw) => format!("slot {}, epoch {}", field(hw.slot), field(hw.epoch)),
    }
}
