//! Where the database is: a SQLite file path, or a `postgres://` / `postgresql://` URL.
//!
//! A URL's password is never shown: [`DatabaseLocation`]'s `Display` and every error built
//! here use the URL with its password replaced by `***`. The password should rather come
//! from a file or the environment (see [`crate::OpenOptions::password`]).
//!
//! TLS (PostgreSQL over TCP) is chosen with libpq's query parameters: `sslmode=verify-full`
//! with `sslrootcert=<CA file>` (the server's certificate must chain to that CA and name
//! the host), or `sslmode=disable` (the default when `sslmode` is absent). Other modes
//! (`prefer`, `require`, `verify-ca`) do not authenticate the server by name and are
//! refused. A unix socket (`host=/run/postgresql` or a percent-encoded path as host) is
//! local and never uses TLS.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use crate::error::DbError;

/// Where the slashing database is.
#[derive(Clone)]
pub enum DatabaseLocation {
    /// A SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL database.
    Postgres(Box<PostgresLocation>),
}

/// How the connection to PostgreSQL is protected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PostgresTls {
    /// Plain TCP (or a unix socket).
    Disable,
    /// TLS, the server verified against this CA file and by host name (`verify-full`).
    VerifyFull {
        /// PEM file of the CA certificate(s) the server's certificate must chain to.
        ca_file: PathBuf,
    },
}

/// A parsed PostgreSQL URL.
#[derive(Clone)]
pub struct PostgresLocation {
    pub(crate) config: postgres::Config,
    pub(crate) tls: PostgresTls,
    redacted: String,
}

impl PostgresLocation {
    /// How the connection is protected.
    pub fn tls(&self) -> &PostgresTls {
        &self.tls
    }

    /// True if the URL itself carries a password.
    pub fn has_password(&self) -> bool {
        self.config.get_password().is_some()
    }
}

impl fmt::Display for PostgresLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted)
    }
}

impl fmt::Debug for PostgresLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresLocation")
            .field("url", &self.redacted)
            .field("tls", &self.tls)
            .finish()
    }
}

impl fmt::Display for DatabaseLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DatabaseLocation::Sqlite(path) => write!(f, "{}", path.display()),
            DatabaseLocation::Postgres(pg) => pg.fmt(f),
        }
    }
}

impl fmt::Debug for DatabaseLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DatabaseLocation::Sqlite(path) => f.debug_tuple("Sqlite").field(path).finish(),
            DatabaseLocation::Postgres(pg) => f.debug_tuple("Postgres").field(pg).finish(),
        }
    }
}

/// True if `s` names a PostgreSQL database (a `postgres://` or `postgresql://` URL).
pub fn is_postgres_url(s: &str) -> bool {
    let lower = s.get(..13).unwrap_or(s).to_ascii_lowercase();
    lower.starts_with("postgres://") || lower.starts_with("postgresql://")
}

impl DatabaseLocation {
    /// Parses `s`: a `postgres://` or `postgresql://` URL is PostgreSQL, anything else a
    /// SQLite file path. Errors never contain the URL's password.
    pub fn parse(s: &str) -> Result<DatabaseLocation, DbError> {
        if !is_postgres_url(s) {
            return Ok(DatabaseLocation::Sqlite(PathBuf::from(s)));
        }
        let redacted = redact_url(s);
        let invalid = |message: String| DbError::InvalidLocation {
            location: redacted.clone(),
            message,
        };
        let (base, query) = match s.split_once('?') {
            Some((b, q)) => (b, Some(q)),
            None => (s, None),
        };
        let mut sslmode = None;
        let mut sslrootcert = None;
        let mut kept = Vec::new();
        for pair in query
            .into_iter()
            .flat_map(|q| q.split('&'))
            .filter(|p| !p.is_empty())
        {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            match key {
                "sslmode" => sslmode = Some(value.to_owned()),
                "sslrootcert" => sslrootcert = Some(percent_decode(value)),
                _ => kept.push(pair),
            }
        }
        let tls = match (sslmode.as_deref(), sslrootcert) {
            (None | Some("disable"), None) => PostgresTls::Disable,
            (Some("verify-full"), Some(ca)) => PostgresTls::VerifyFull {
                ca_file: PathBuf::from(ca),
            },
            (Some("verify-full"), None) => {
                return Err(invalid(
                    "sslmode=verify-full needs sslrootcert=<CA file>".into(),
                ))
            }
            (None | Some("disable"), Some(_)) => {
                return Err(invalid(
                    "sslrootcert is given but sslmode is not verify-full".into(),
                ))
            }
            (Some(other), _) => {
                return Err(invalid(format!(
                    "sslmode={other} is not supported: use sslmode=verify-full with \
                     sslrootcert=<CA file>, or sslmode=disable"
                )))
            }
        };
        let rebuilt = if kept.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        // The driver's own messages may quote parts of the URL: keep only their gist.
        let config =
            postgres::Config::from_str(&rebuilt).map_err(|e| invalid(scrub(&e.to_string(), s)))?;
        if config.get_hosts().is_empty() {
            return Err(invalid(
                "no host (give host:port, or host=/socket/dir for a unix socket)".into(),
            ));
        }
        Ok(DatabaseLocation::Postgres(Box::new(PostgresLocation {
            config,
            tls,
            redacted,
        })))
    }
}

/// The URL with the password of its user-info replaced by `***`.
pub(crate) fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_owned();
    };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let mut out = url[..scheme_end + 3].to_owned();
    match authority.rfind('@') {
        Some(at) => {
            let userinfo = &authority[..at];
            match userinfo.split_once(':') {
                Some((user, _password)) => {
                    out.push_str(user);
                    out.push_str(":***");
                }
                None => out.push_str(userinfo),
            }
            out.push_str(&authority[at..]);
        }
        None => out.push_str(authority),
    }
    let tail = &rest[authority_end..];
    // A password may also be given as a query parameter.
    match tail.split_once('?') {
        Some((path, query)) => {
            out.push_str(path);
            out.push('?');
            let pairs: Vec<String> = query
                .split('&')
                .map(|p| match p.split_once('=') {
                    Some(("password", _)) => "password=***".to_owned(),
                    _ => p.to_owned(),
                })
                .collect();
            out.push_str(&pairs.join("&"));
        }
        None => out.push_str(tail),
    }
    out
}

/// Removes the URL's password from a message, should it quote it.
fn scrub(message: &str, url: &str) -> String {
    let mut out = message.to_owned();
    if let Some(scheme_end) = url.find("://") {
        let rest = &url[scheme_end + 3..];
        let authority = &rest[..rest.find(['/', '?']).unwrap_or(rest.len())];
        if let Some((_, password)) = authority
            .rfind('@')
            .and_then(|at| authority[..at].split_once(':'))
        {
            if !password.is_empty() {
                out = out.replace(password, "***");
            }
        }
    }
    out
}

/// Decodes `%XX` escapes (for file paths given in a URL).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = |c: u8| (c as char).to_digit(16);
            if let (Some(hi), Some(lo)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((hi * 16 + lo) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_path_is_sqlite() {
        for s in [
            "slashing.sqlite",
            "/var/lib/keyguard/db.sqlite",
            "postgres.db",
        ] {
            assert!(matches!(
                DatabaseLocation::parse(s).expect("parse"),
                DatabaseLocation::Sqlite(p) if p.as_path() == std::path::Path::new(s)
            ));
        }
    }

    #[test]
    fn urls_are_postgres_and_never_show_the_password() {
        let loc = DatabaseLocation::parse("postgresql://kg:s3cret@db.example:5433/slashing")
            .expect("parse");
        let DatabaseLocation::Postgres(pg) = &loc else {
            panic!("not postgres")
        };
        assert_eq!(
            loc.to_string(),
            "postgresql://kg:***@db.example:5433/slashing"
        );
        assert!(!format!("{loc:?}").contains("s3cret"));
        assert!(pg.has_password());
        assert_eq!(pg.tls(), &PostgresTls::Disable);
        assert_eq!(pg.config.get_ports(), &[5433]);
        assert_eq!(pg.config.get_dbname(), Some("slashing"));
    }

    #[test]
    fn verify_full_needs_a_ca_and_weaker_modes_are_refused() {
        let loc = DatabaseLocation::parse(
            "postgres://kg@db.example/slashing?sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem",
        )
        .expect("parse");
        let DatabaseLocation::Postgres(pg) = loc else {
            panic!("not postgres")
        };
        assert_eq!(
            pg.tls(),
            &PostgresTls::VerifyFull {
                ca_file: PathBuf::from("/etc/ca.pem")
            }
        );
        for bad in [
            "postgres://kg:pw@h/db?sslmode=verify-full",
            "postgres://kg:pw@h/db?sslmode=require",
            "postgres://kg:pw@h/db?sslmode=prefer",
            "postgres://kg:pw@h/db?sslrootcert=/ca.pem",
            "postgres://kg:pw@h:notaport/db",
        ] {
            let err = DatabaseLocation::parse(bad).expect_err(bad).to_string();
            assert!(!err.contains(":pw@"), "{err}");
            assert!(err.contains("kg:***@h"), "{err}");
        }
    }

    #[test]
    fn unix_sockets_are_accepted() {
        let loc =
            DatabaseLocation::parse("postgresql://kg@%2Frun%2Fpostgresql/slashing").expect("parse");
        let DatabaseLocation::Postgres(pg) = loc else {
            panic!("not postgres")
        };
        assert!(matches!(
            pg.config.get_hosts(),
            [postgres::config::Host::Unix(p)] if p == &PathBuf::from("/run/postgresql")
        ));
        let loc =
            DatabaseLocation::parse("postgresql:///slashing?host=/tmp/pg&user=kg").expect("parse");
        assert!(matches!(loc, DatabaseLocation::Postgres(_)));
    }

    #[test]
    fn password_query_parameter_is_redacted() {
        assert_eq!(
            redact_url("postgres://h/db?user=kg&password=hunter2"),
            "postgres://h/db?user=kg&password=***"
        );
    }
}
