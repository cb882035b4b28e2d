//! A real HAProxy (the Debian package `haproxy`) in front of keyguard instances, running
//! the configurations shipped in `config/` with only their addresses and file paths
//! replaced, so the tests check the files operators copy.
//!
//! Without `haproxy` on the PATH the tests print a loud skip, except under `CI=true`,
//! where a missing binary fails the test: CI must never pass by skipping.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use anyhow::{bail, Context};

use crate::keyguard_process::workspace_root;
use crate::logged_child::LoggedChild;
use crate::prometheus::find_on_path;

/// `haproxy` from the PATH (or `/usr/sbin`), or `None` after a loud skip message. Under
/// `CI=true` a missing binary panics instead.
pub fn require_haproxy(test: &str) -> Option<PathBuf> {
    let found = find_on_path("haproxy").or_else(|| {
        let sbin = PathBuf::from("/usr/sbin/haproxy");
        sbin.is_file().then_some(sbin)
    });
    if found.is_some() {
        return found;
    }
    let msg = format!("{test}: haproxy is not installed (apt-get install haproxy)");
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("CI=true but {msg}");
    }
    let banner =
        format!("\n!!!!!!!!!! SKIPPED !!!!!!!!!!\n{msg}\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n");
    let _ = std::io::Write::write_all(&mut std::io::stderr(), banner.as_bytes());
    None
}

/// The shipped `config/<name>` with each `(from, to)` replaced. Every `from` must occur
/// exactly once, so a change to the shipped file that the test no longer matches fails
/// the test instead of testing something else.
pub fn shipped_config(name: &str, replacements: &[(&str, String)]) -> anyhow::Result<String> {
    let path = workspace_root().join("config").join(name);
    let mut text = std::fs::read_to_string(&path).with_context(|| format!("read {name}"))?;
    for (from, to) in replacements {
        let found = text.matches(from).count();
        if found != 1 {
            bail!("config/{name}: `{from}` occurs {found} times, expected once");
        }
        text = text.replace(from, to);
    }
    Ok(text)
}

/// `haproxy -c -f config`: the configuration check.
pub fn check(binary: &Path, config: &Path) -> anyhow::Result<Output> {
    Command::new(binary)
        .args(["-c", "-f"])
        .arg(config)
        .output()
        .context("run haproxy -c")
}

/// A running HAProxy, killed on drop.
pub struct HaproxyProcess(LoggedChild);

impl HaproxyProcess {
    /// Starts `binary -db -f config` (foreground, its log in `log_path`).
    pub fn start(binary: &Path, config: &Path, log_path: &Path) -> anyhow::Result<Self> {
        let mut command = Command::new(binary);
        command.args(["-db", "-f"]).arg(config);
        Ok(Self(LoggedChild::spawn(&mut command, log_path)?))
    }

    /// Everything it logged so far (health-check transitions, request log lines).
    pub fn log(&self) -> String {
        self.0.log()
    }
}
