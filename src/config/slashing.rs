//! `[slashing]`: the slashing-protection database, and its flags.

use std::path::PathBuf;

use serde::Deserialize;

use super::overrides::{set, set_opt};

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
        }
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
    }
}
