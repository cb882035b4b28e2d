//! A throw-away PostgreSQL cluster for the slashing-database tests.
//!
//! [`TestPostgres::start`] runs `initdb` in a temporary directory and starts the server
//! with `pg_ctl` on a free TCP port (127.0.0.1) and a unix socket in that directory,
//! `fsync=on`, trust authentication. PostgreSQL refuses to run as root, so when the tests
//! run as root the cluster runs as the `postgres` user (created by the Debian package)
//! and the directory is handed to it. The server is stopped (`-m immediate`) and the
//! directory removed on drop. No service is assumed to be running.
//!
//! Without PostgreSQL installed the tests print a loud skip, except under `CI=true` where
//! a missing PostgreSQL is a failure: CI must never pass by skipping these tests.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::{bail, Context};

/// Where Debian installs the PostgreSQL 15 server binaries.
pub const BIN_DIR: &str = "/usr/lib/postgresql/15/bin";

/// The unprivileged user the cluster runs as when the tests run as root.
const SERVICE_USER: &str = "postgres";

fn bin(name: &str) -> PathBuf {
    Path::new(BIN_DIR).join(name)
}

/// True if the PostgreSQL server binaries are installed.
pub fn installed() -> bool {
    bin("initdb").is_file() && bin("pg_ctl").is_file()
}

/// A running cluster (see the module docs).
pub struct TestPostgres {
    dir: tempfile::TempDir,
    port: u16,
    run_as: Option<String>,
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

fn check(output: Output, what: &str) -> anyhow::Result<Output> {
    if !output.status.success() {
        bail!(
            "{what} failed ({}):\n{}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(output)
}

impl TestPostgres {
    /// Creates and starts a new cluster.
    pub fn start() -> anyhow::Result<TestPostgres> {
        if !installed() {
            bail!(
                "PostgreSQL server binaries not found in {BIN_DIR} (Debian package `postgresql`)"
            );
        }
        let dir = tempfile::Builder::new()
            .prefix("keyguard-pg-")
            .tempdir()
            .context("temporary directory")?;
        let run_as = is_root().then(|| SERVICE_USER.to_owned());
        if let Some(user) = &run_as {
            check(
                Command::new("chown")
                    .args(["-R", &format!("{user}:"), &dir.path().display().to_string()])
                    .output()
                    .context("chown")?,
                "chown of the cluster directory",
            )?;
        }
        let pg = TestPostgres {
            dir,
            port: crate::keyguard_process::free_port(),
            run_as,
        };
        check(
            pg.as_service_user(&bin("initdb"))
                .args(["-D", &pg.data_dir().display().to_string()])
                .args(["-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"])
                .output()
                .context("initdb")?,
            "initdb",
        )?;
        pg.start_server()?;
        Ok(pg)
    }

    fn as_service_user(&self, program: &Path) -> Command {
        match &self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(program);
                c
            }
            None => Command::new(program),
        }
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The directory holding the server's unix socket.
    pub fn socket_dir(&self) -> &Path {
        self.dir.path()
    }

    /// The TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Starts the server (again, after [`stop`](Self::stop)).
    pub fn start_server(&self) -> anyhow::Result<()> {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=on -c max_connections=200",
            self.port,
            self.socket_dir().display()
        );
        check(
            self.as_service_user(&bin("pg_ctl"))
                .args(["-D", &self.data_dir().display().to_string()])
                .args([
                    "-l",
                    &self.dir.path().join("server.log").display().to_string(),
                ])
                .args(["-o", &options, "-w", "-t", "60", "start"])
                .output()
                .context("pg_ctl start")?,
            "pg_ctl start",
        )?;
        Ok(())
    }

    /// Stops the server: `immediate` simulates a crash, otherwise a clean (`fast`) stop.
    pub fn stop(&self, immediate: bool) -> anyhow::Result<()> {
        let mode = if immediate { "immediate" } else { "fast" };
        check(
            self.as_service_user(&bin("pg_ctl"))
                .args(["-D", &self.data_dir().display().to_string()])
                .args(["-m", mode, "-w", "stop"])
                .output()
                .context("pg_ctl stop")?,
            "pg_ctl stop",
        )?;
        Ok(())
    }

    /// Runs SQL as the superuser in database `db`; returns psql's unaligned output.
    pub fn psql(&self, db: &str, sql: &str) -> anyhow::Result<String> {
        let output = check(
            Command::new(bin("psql"))
                .args([
                    "-h",
                    "127.0.0.1",
                    "-p",
                    &self.port.to_string(),
                    "-U",
                    "postgres",
                ])
                .args(["-d", db, "-v", "ON_ERROR_STOP=1", "-At", "-c", sql])
                .output()
                .context("psql")?,
            "psql",
        )?;
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
    }

    /// Creates a new, empty database and returns its TCP URL (no password: trust auth).
    pub fn create_database(&self) -> anyhow::Result<String> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "kg{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        self.psql("postgres", &format!("CREATE DATABASE {name}"))?;
        Ok(self.url(&name))
    }

    /// The TCP URL of database `db`.
    pub fn url(&self, db: &str) -> String {
        format!("postgresql://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// The unix-socket URL of database `db`.
    pub fn socket_url(&self, db: &str) -> String {
        format!(
            "postgresql:///{db}?host={}&port={}&user=postgres",
            self.socket_dir().display(),
            self.port
        )
    }

    /// The server log (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }
}

impl Drop for TestPostgres {
    fn drop(&mut self) {
        let _ = self.stop(true);
    }
}

/// A started cluster, or `None` after a loud skip message when PostgreSQL is not
/// installed. Under `CI=true` a missing PostgreSQL fails the calling test instead.
pub fn require_postgres(test: &str) -> Option<TestPostgres> {
    if !installed() {
        let msg = format!(
            "{test}: PostgreSQL is not installed ({BIN_DIR}/initdb; Debian package `postgresql`)"
        );
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{msg}");
        }
        eprintln!("\n!!!!!!!!!! SKIPPED !!!!!!!!!!\n{msg}\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n");
        return None;
    }
    match TestPostgres::start() {
        Ok(pg) => Some(pg),
        Err(e) => panic!("{test}: cannot start a throw-away PostgreSQL: {e:#}"),
    }
}
