//! A real Prometheus server (the Debian package `prometheus`) for the end-to-end metrics
//! tests: started on a free loopback port with a configuration of the test's own, queried
//! over its HTTP API, killed on drop.
//!
//! Without `prometheus` and `promtool` on the PATH the tests print a loud skip, except under
//! `CI=true`, where a missing binary fails the test: CI must never pass by skipping.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::Value;

use crate::keyguard_process::free_port;
use crate::logged_child::LoggedChild;

/// `prometheus` and `promtool` from the PATH, or `None` after a loud skip message. Under
/// `CI=true` a missing binary panics instead.
pub fn require_prometheus(test: &str) -> Option<(PathBuf, PathBuf)> {
    let prometheus = find_on_path("prometheus");
    let promtool = find_on_path("promtool");
    if let (Some(p), Some(t)) = (prometheus, promtool) {
        return Some((p, t));
    }
    let msg =
        format!("{test}: prometheus and promtool are not installed (apt-get install prometheus)");
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("CI=true but {msg}");
    }
    // Straight to the stderr handle: libtest captures `eprintln!` of passing tests.
    let banner =
        format!("\n!!!!!!!!!! SKIPPED !!!!!!!!!!\n{msg}\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n");
    let _ = std::io::Write::write_all(&mut std::io::stderr(), banner.as_bytes());
    None
}

/// `name` in a directory of the PATH, if it is there.
pub(crate) fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// A running Prometheus server.
pub struct PrometheusProcess {
    child: LoggedChild,
    /// Base URL of its HTTP API, e.g. `http://127.0.0.1:41234`.
    pub url: String,
}

impl PrometheusProcess {
    /// Writes `config` (YAML) to `dir/prometheus.yml` and starts `binary` on a free
    /// loopback port with its storage in `dir`; waits until it is ready (at most 30 s).
    pub fn start(binary: &Path, config: &str, dir: &Path) -> anyhow::Result<Self> {
        let config_path = dir.join("prometheus.yml");
        std::fs::write(&config_path, config).context("write prometheus.yml")?;
        let port = free_port();
        let log_path = dir.join("prometheus.log");
        let mut command = Command::new(binary);
        command
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"));
        let mut process = Self {
            child: LoggedChild::spawn(&mut command, &log_path)?,
            url: format!("http://127.0.0.1:{port}"),
        };
        process.wait_ready(Duration::from_secs(30))?;
        Ok(process)
    }

    fn wait_ready(&mut self, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        let url = format!("{}/-/ready", self.url);
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("prometheus exited with {status}; log:\n{}", self.log());
            }
            if reqwest::blocking::get(&url).is_ok_and(|r| r.status().is_success()) {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("prometheus not ready in time; log:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `GET /api/v1/<path>` with query parameters; the `data` of a `success` answer, or
    /// the error Prometheus gave.
    pub fn api(&self, path: &str, params: &[(&str, &str)]) -> anyhow::Result<Value> {
        let url = reqwest::Url::parse_with_params(&format!("{}/api/v1/{path}", self.url), params)
            .context("query URL")?;
        let body: Value = reqwest::blocking::Client::new()
            .get(url)
            .send()
            .with_context(|| format!("GET /api/v1/{path}"))?
            .json()
            .context("Prometheus answered something other than JSON")?;
        if body["status"] != "success" {
            bail!("/api/v1/{path} {params:?}: {body}");
        }
        Ok(body["data"].clone())
    }

    /// Evaluates `expr` now (an instant query): the result samples. A PromQL error is an
    /// error.
    pub fn query(&self, expr: &str) -> anyhow::Result<Vec<Value>> {
        let data = self.api("query", &[("query", expr)])?;
        Ok(match &data["result"] {
            Value::Array(samples) => samples.clone(),
            // A scalar or string result is one value.
            Value::Null => Vec::new(),
            other => vec![other.clone()],
        })
    }

    /// Polls `expr` until it returns at least one sample (at most `timeout`).
    pub fn wait_for(&self, expr: &str, timeout: Duration) -> anyhow::Result<Vec<Value>> {
        let deadline = Instant::now() + timeout;
        loop {
            let samples = self.query(expr)?;
            if !samples.is_empty() {
                return Ok(samples);
            }
            if Instant::now() > deadline {
                bail!(
                    "`{expr}` returned nothing in {timeout:?}; log:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// The alerting rules as Prometheus evaluates them: every rule of every group, with its
    /// `name`, `query`, `health` (`ok` or `err`), `lastError` and `state`.
    pub fn alerting_rules(&self) -> anyhow::Result<Vec<Value>> {
        let data = self.api("rules", &[("type", "alert")])?;
        let mut rules = Vec::new();
        for group in data["groups"].as_array().into_iter().flatten() {
            rules.extend(group["rules"].as_array().into_iter().flatten().cloned());
        }
        Ok(rules)
    }

    /// Everything Prometheus logged so far.
    pub fn log(&self) -> String {
        self.child.log()
    }
}
