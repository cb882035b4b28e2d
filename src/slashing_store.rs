//! Opening the slashing database the configuration names: a SQLite file (its directory is
//! created) or a PostgreSQL URL (`postgres://` / `postgresql://`), whose password comes
//! from `slashing.database_password_file` or `KEYGUARD_SLASHING_DATABASE_PASSWORD` and is
//! never shown (errors and logs use the URL with its password replaced by `***`).

use std::path::Path;

use anyhow::Context;
use slashing_db::{DatabaseLocation, OpenOptions, SlashingDb};
use zeroize::Zeroizing;

use crate::config::Config;

/// Environment variable holding the PostgreSQL password.
pub const PASSWORD_ENV: &str = "KEYGUARD_SLASHING_DATABASE_PASSWORD";

/// Where the configured slashing database is.
pub fn location(config: &Config) -> anyhow::Result<DatabaseLocation> {
    let configured = config.slashing_database_path();
    let Some(text) = configured.to_str() else {
        return Ok(DatabaseLocation::Sqlite(configured));
    };
    Ok(DatabaseLocation::parse(text)?)
}

/// The PostgreSQL password: the file's first line, else the environment variable.
fn password(config: &Config) -> anyhow::Result<Option<Zeroizing<String>>> {
    read_password(
        config.slashing.database_password_file.as_deref(),
        "slashing.database_password_file",
        PASSWORD_ENV,
    )
}

/// A PostgreSQL password: the first line of `file` (named `what` in errors), else the
/// environment variable `env`, else none.
pub fn read_password(
    file: Option<&Path>,
    what: &str,
    env: &str,
) -> anyhow::Result<Option<Zeroizing<String>>> {
    if let Some(file) = file {
        let text = Zeroizing::new(
            std::fs::read_to_string(file)
                .with_context(|| format!("cannot read {what} {}", file.display()))?,
        );
        let first = text.lines().next().unwrap_or("");
        return Ok(Some(Zeroizing::new(first.to_owned())));
    }
    Ok(std::env::var(env).ok().map(Zeroizing::new))
}

/// Opens the configured database with `options` (their password and async-commit
/// acceptance are taken from the configuration).
pub fn open(config: &Config, mut options: OpenOptions) -> anyhow::Result<SlashingDb> {
    let location = location(config)?;
    if let DatabaseLocation::Postgres(_) = &location {
        options.password = password(config)?;
        options.allow_async_commit = config.slashing.allow_async_commit;
    }
    open_location(&location, options)
}

/// Opens the database at `location` with `options` (a SQLite file's directory is
/// created).
pub fn open_location(
    location: &DatabaseLocation,
    options: OpenOptions,
) -> anyhow::Result<SlashingDb> {
    if let DatabaseLocation::Sqlite(path) = location {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create data directory {}", dir.display()))?;
        }
    }
    SlashingDb::open_location(location, options)
        .with_context(|| format!("cannot open slashing database {location}"))
}

/// True if the configured database exists (a PostgreSQL database is assumed to).
pub fn exists(config: &Config) -> anyhow::Result<bool> {
    Ok(match location(config)? {
        DatabaseLocation::Sqlite(path) => path.exists(),
        DatabaseLocation::Postgres(_) => true,
    })
}
