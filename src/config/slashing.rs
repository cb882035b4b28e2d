//! `[slashing]`: the slashing-protection database, and its flags.

use std::path::PathBuf;

use serde::Deserialize;

use super::overrides::{set, set_opt};
use super::ConfigError;

/// `[slashing]`: the slashing-protection database.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SlashingConfig {
    /// When false, blocks and attestations are refused (412): they are never signed
    /// unprotected.
    pub enabled: bool,
    /// SQLite database path, or a `postgres://` / `postgresql://` URL; default
    /// `<data_dir>/slashing-protection.sqlite`.
    pub database: Option<PathBuf>,
    /// PostgreSQL: file whose first line is the password (else
    /// `KEYGUARD_SLASHING_DATABASE_PASSWORD`; never put it in the URL).
    pub database_password_file: Option<PathBuf>,
    /// PostgreSQL: start even if the server's `synchronous_commit` is `off` (a server
    /// crash can then lose records of signatures already returned).
    pub allow_async_commit: bool,
    /// Most check-and-record operations committed in one transaction.
    pub max_batch: usize,
    /// Longest time (milliseconds) a commit may wait for more records while signatures
    /// are queued anyway; 0 commits as soon as the queue is empty. The wait is at most
    /// half the signing queue's estimated drain time, so it does not delay answers.
    pub max_commit_delay_ms: u64,
    /// Prune old records in the background while the signer runs (never lowering
    /// protection: the low watermarks rise to the oldest record kept).
    pub prune: bool,
    /// Epochs of history kept below each validator's highest record (blocks: this many
    /// epochs of slots).
    pub prune_keep_epochs: u64,
    /// Seconds between pruning rounds (the first runs a minute after start, or after one
    /// interval if that is shorter).
    pub prune_interval_secs: u64,
    /// Most records deleted by one pruning transaction (sign requests wait for at most one).
    pub prune_batch_size: usize,
}

impl Default for SlashingConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            database: None,
            database_password_file: None,
            allow_async_commit: false,
            max_batch: 1024,
            max_commit_delay_ms: 5,
            prune: true,
            prune_keep_epochs: 4096,
            prune_interval_secs: 4 * 3600,
            prune_batch_size: 500,
        }
    }
}

impl SlashingConfig {
    /// Checks the pruning settings (a zero interval or batch would spin or stall).
    pub fn validate_pruning(&self) -> Result<(), ConfigError> {
        if self.prune_interval_secs == 0 {
            return Err(ConfigError::new(
                "slashing.prune_interval_secs",
                "must be at least 1 (use slashing.prune = false to turn pruning off)",
            ));
        }
        if self.prune_batch_size == 0 {
            return Err(ConfigError::new(
                "slashing.prune_batch_size",
                "must be at least 1",
            ));
        }
        Ok(())
    }
}

/// Flags of `[slashing]`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct SlashingArgs {
    /// Enable or disable slashing protection [slashing.enabled].
    #[arg(
        global = true,
        long,
        env = "KEYGUARD_SLASHING_PROTECTION",
        value_name = "BOOL"
    )]
    pub slashing_protection: Option<bool>,
    /// Slashing database: SQLite file path or postgres:// URL [slashing.database].
    #[arg(
        global = true,
        long,
        env = "KEYGUARD_SLASHING_DATABASE",
        value_name = "FILE|URL"
    )]
    pub slashing_database: Option<PathBuf>,
    /// File holding the PostgreSQL password [slashing.database_password_file].
    #[arg(
        global = true,
        long,
        env = "KEYGUARD_SLASHING_DATABASE_PASSWORD_FILE",
        value_name = "FILE"
    )]
    pub slashing_database_password_file: Option<PathBuf>,
    /// Accept a PostgreSQL server with synchronous_commit off [slashing.allow_async_commit].
    #[arg(
        global = true,
        long,
        env = "KEYGUARD_SLASHING_ALLOW_ASYNC_COMMIT",
        value_name = "BOOL"
    )]
    pub slashing_allow_async_commit: Option<bool>,
    /// Most operations per slashing-database transaction [slashing.max_batch].
    #[arg(
        global = true,
        long,
        env = "KEYGUARD_SLASHING_MAX_BATCH",
        value_name = "N"
    )]
    pub slashing_max_batch: Option<usize>,
    /// Longest wait of a commit for more records while signatures are queued, in
    /// milliseconds; 0 = off [slashing.max_commit_delay_ms].
    #[arg(
        global = true,
        long,
        env = "KEYGUARD_SLASHING_MAX_COMMIT_DELAY_MS",
        value_name = "MS"
    )]
    pub slashing_max_commit_delay_ms: Option<u64>,
    /// Prune old records in the background [slashing.prune].
    #[arg(
        global = true,
        long,
        env = "KEYGUARD_SLASHING_PRUNE",
        value_name = "BOOL"
    )]
    pub slashing_prune: Option<bool>,
    /// Epochs of history kept per validator when pruning [slashing.prune_keep_epochs].
    #[arg(
        global = true,
        long,
        env = "KEYGUARD_SLASHING_PRUNE_KEEP_EPOCHS",
        value_name = "EPOCHS"
    )]
    pub slashing_prune_keep_epochs: Option<u64>,
    /// Seconds between background pruning rounds [slashing.prune_interval_secs].
    #[arg(
        global = true,
        long,
        env = "KEYGUARD_SLASHING_PRUNE_INTERVAL_SECS",
        value_name = "SECS"
    )]
    pub slashing_prune_interval_secs: Option<u64>,
    /// Most records deleted per pruning transaction [slashing.prune_batch_size].
    #[arg(
        global = true,
        long,
        env = "KEYGUARD_SLASHING_PRUNE_BATCH_SIZE",
        value_name = "N"
    )]
    pub slashing_prune_batch_size: Option<usize>,
}

impl SlashingArgs {
    /// Applies the flags that were given to `c`.
    pub fn apply(&self, c: &mut SlashingConfig) {
        set(&mut c.enabled, &self.slashing_protection);
        set_opt(&mut c.database, &self.slashing_database);
        set_opt(
            &mut c.database_password_file,
            &self.slashing_database_password_file,
        );
        set(&mut c.allow_async_commit, &self.slashing_allow_async_commit);
        set(&mut c.max_batch, &self.slashing_max_batch);
        set(
            &mut c.max_commit_delay_ms,
            &self.slashing_max_commit_delay_ms,
        );
        set(&mut c.prune, &self.slashing_prune);
        set(&mut c.prune_keep_epochs, &self.slashing_prune_keep_epochs);
        set(
            &mut c.prune_interval_secs,
            &self.slashing_prune_interval_secs,
        );
        set(&mut c.prune_batch_size, &self.slashing_prune_batch_size);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pruning_defaults_flags_and_bounds() {
        let mut c = SlashingConfig::default();
        assert!(c.prune);
        assert_eq!(c.prune_keep_epochs, 4096);
        assert_eq!(c.prune_interval_secs, 4 * 3600);
        assert_eq!(c.prune_batch_size, 500);
        assert!(c.validate_pruning().is_ok());
        let from_toml: SlashingConfig = toml::from_str(
            "prune = false\nprune_keep_epochs = 10\nprune_interval_secs = 2\nprune_batch_size = 7\n",
        )
        .expect("toml");
        assert!(!from_toml.prune);
        assert_eq!(
            (
                from_toml.prune_keep_epochs,
                from_toml.prune_interval_secs,
                from_toml.prune_batch_size
            ),
            (10, 2, 7)
        );
        SlashingArgs {
            slashing_prune: Some(false),
            slashing_prune_keep_epochs: Some(64),
            slashing_prune_interval_secs: Some(30),
            slashing_prune_batch_size: Some(100),
            ..Default::default()
        }
        .apply(&mut c);
        assert_eq!(
            (
                c.prune,
                c.prune_keep_epochs,
                c.prune_interval_secs,
                c.prune_batch_size
            ),
            (false, 64, 30, 100)
        );
        c.prune_interval_secs = 0;
        assert_eq!(
            c.validate_pruning().unwrap_err().setting,
            "slashing.prune_interval_secs"
        );
        c.prune_interval_secs = 1;
        c.prune_batch_size = 0;
        assert_eq!(
            c.validate_pruning().unwrap_err().setting,
            "slashing.prune_batch_size"
        );
    }
}
