//! Runs the real `keyguard` binary for end-to-end tests: builds it once (same profile and
//! target directory as the tests), starts it on free loopback ports, waits until it
//! answers, and kills it (SIGKILL on request, and always on drop).

use std::collections::HashSet;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// The workspace root (the directory holding `Cargo.toml` of the workspace).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("interop-tests lives inside the workspace")
        .to_path_buf()
}

/// Path of the `keyguard` binary, built on first use with the cargo that runs the tests.
/// `KEYGUARD_BIN` overrides it (e.g. to test a release build).
pub fn keyguard_binary() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Ok(bin) = std::env::var("KEYGUARD_BIN") {
            return PathBuf::from(bin);
        }
        // `--workspace` resolves dependency features as `.ci/run`'s up-front build does,
        // so this is a no-op there instead of a rebuild with another feature set.
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "--quiet", "--workspace", "--bins"])
            .current_dir(workspace_root())
            .status()
            .expect("cannot run cargo to build keyguard");
        assert!(status.success(), "building the keyguard binary failed");
        // Test executables live in <target>/debug/deps; the binary in <target>/debug.
        let exe = std::env::current_exe().expect("current_exe");
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("test binary is in <target>/<profile>/deps");
        profile_dir.join("keyguard")
    })
    .clone()
}

/// A free TCP port on 127.0.0.1, bound and released, and never handed out before
/// in this test process.
///
/// Two races are avoided. The kernel may give a just-released port to the next
/// `bind(0)`, so two calls (one instance's listen and metrics ports, or two tests
/// running in parallel) could get the same port: the set of ports handed out
/// prevents that. And a client's outgoing connection may take any port of the
/// kernel's ephemeral range as its source port before the instance listens: ports
/// are drawn below that range where the kernel allows it.
pub fn free_port() -> u16 {
    static HANDED_OUT: OnceLock<Mutex<HashSet<u16>>> = OnceLock::new();
    let mut handed_out = HANDED_OUT
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let below_ephemeral = ports_below_ephemeral_range();
    let mut rng = crate::duties::Rng(port_seed());
    for attempt in 0u32.. {
        let candidate = match &below_ephemeral {
            Some(range) if attempt < 10_000 => {
                range.start + rng.below(u64::from(range.end - range.start)) as u16
            }
            _ => 0,
        };
        let Ok(port) = TcpListener::bind(("127.0.0.1", candidate))
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
        else {
            continue;
        };
        if handed_out.insert(port) {
            return port;
        }
    }
    unreachable!("the loop returns a port")
}

/// `10000..low`, where `low` is the start of the kernel's ephemeral port range,
/// when that leaves at least 4,096 ports; `None` elsewhere.
fn ports_below_ephemeral_range() -> Option<std::ops::Range<u16>> {
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
    let low: u16 = range.split_whitespace().next()?.parse().ok()?;
    (low >= 10_000 + 4_096).then_some(10_000..low)
}

/// A seed that differs between test processes and calls (never 0).
fn port_seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    (nanos ^ (u64::from(std::process::id()) << 32)) | 1
}

/// The values of the samples of `name` in `scrape` whose labels include all of `labels`:
/// a counter's, gauge's or untyped sample's value, a histogram's count.
pub fn sample_values(
    scrape: &prometheus_parse::Scrape,
    name: &str,
    labels: &[(&str, &str)],
) -> Vec<f64> {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name)
        .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match &s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => *v,
            prometheus_parse::Value::Histogram(buckets) => buckets.last().map_or(0.0, |b| b.count),
            other => panic!("{name}: unexpected {other:?}"),
        })
        .collect()
}

/// Runs `keyguard ARGS` to completion (for CLI commands other than `run`).
pub fn keyguard_command(args: &[&str]) -> Output {
    Command::new(keyguard_binary())
        .args(args)
        .env_remove("KEYGUARD_CONFIG")
        .current_dir(workspace_root())
        .output()
        .expect("cannot run keyguard")
}

/// Every record of the SQLite database in `data_dir` (on `network`), as
/// `keyguard slashing export` prints it; panics with its stderr if the command fails.
pub fn slashing_export(network: &str, data_dir: &Path) -> serde_json::Value {
    let data = data_dir.to_str().expect("UTF-8 path");
    let out = keyguard_command(&[
        "slashing",
        "export",
        "--network",
        network,
        "--data-dir",
        data,
        "-",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("export is JSON")
}

/// A running `keyguard run` process.
pub struct KeyguardProcess {
    child: Child,
    /// Base URL of the signing API, e.g. `http://127.0.0.1:41234`.
    pub url: String,
    /// The port of the signing API.
    pub port: u16,
    /// Base URL of the metrics listener.
    pub metrics_url: String,
    log_path: PathBuf,
}

impl KeyguardProcess {
    /// Starts `keyguard run ARGS --listen <free port> --metrics-listen <free port>`, with
    /// its log in `log_dir`, and waits until `/upcheck` answers.
    pub fn start(args: &[&str], log_dir: &Path) -> anyhow::Result<Self> {
        let mut process = Self::spawn(args, log_dir, "http")?;
        process.wait_for("/upcheck", |s| s == 200, Duration::from_secs(30))?;
        Ok(process)
    }

    /// Like [`KeyguardProcess::start`], then waits until `/healthcheck` reports every key
    /// loaded (at most 30 s).
    pub fn start_healthy(args: &[&str], log_dir: &Path) -> anyhow::Result<Self> {
        let mut process = Self::start(args, log_dir)?;
        process.wait_healthy(Duration::from_secs(30))?;
        Ok(process)
    }

    /// Starts `keyguard run ARGS --listen <free port> --metrics-listen <free port>` without
    /// waiting for it; `scheme` (`http` or `https`) makes [`KeyguardProcess::url`].
    pub fn spawn(args: &[&str], log_dir: &Path, scheme: &str) -> anyhow::Result<Self> {
        Self::spawn_at(args, log_dir, scheme, free_port())
    }

    /// Like [`KeyguardProcess::spawn`], listening on `port` (to restart an instance where a
    /// load balancer expects it).
    pub fn spawn_at(
        args: &[&str],
        log_dir: &Path,
        scheme: &str,
        port: u16,
    ) -> anyhow::Result<Self> {
        // Tests talk to the process with reqwest clients: they need the crypto provider.
        crate::install_crypto_provider();
        let metrics_port = free_port();
        let log_path = log_dir.join(format!("keyguard-{port}-{metrics_port}.log"));
        let log = std::fs::File::create(&log_path).context("create log file")?;
        let listen = format!("127.0.0.1:{port}");
        let metrics_listen = format!("127.0.0.1:{metrics_port}");
        let child = Command::new(keyguard_binary())
            .arg("run")
            .args(args)
            .args(["--listen", &listen, "--metrics-listen", &metrics_listen])
            .env_remove("KEYGUARD_CONFIG")
            .current_dir(workspace_root())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("cannot start keyguard")?;
        Ok(Self {
            child,
            url: format!("{scheme}://{listen}"),
            port,
            metrics_url: format!("http://{metrics_listen}"),
            log_path,
        })
    }

    /// POSTs a sign request for `pubkey` (asking for JSON) and returns the HTTP status.
    pub fn sign_status(&self, pubkey: &str, body: String) -> anyhow::Result<u16> {
        let status = reqwest::blocking::Client::new()
            .post(format!("{}/api/v1/eth2/sign/{pubkey}", self.url))
            .header("Accept", "application/json")
            .body(body)
            .send()
            .context("sign request")?
            .status();
        Ok(status.as_u16())
    }

    /// POSTs a sign request for `pubkey` (asking for JSON); returns the HTTP status and the
    /// JSON body (a signature or an error message). Panics if the body is not JSON.
    pub fn sign_json(&self, pubkey: &str, body: &str) -> (u16, serde_json::Value) {
        let resp = reqwest::blocking::Client::new()
            .post(format!("{}/api/v1/eth2/sign/{pubkey}", self.url))
            .header("Accept", "application/json")
            .body(body.to_string())
            .send()
            .expect("sign request");
        let status = resp.status().as_u16();
        let text = resp.text().expect("answer body");
        let json = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("status {status}: not JSON ({e}): {text}"));
        (status, json)
    }

    /// An error holding the log if the process has exited.
    pub fn check_running(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!("keyguard exited with {status}; log:\n{}", self.log());
        }
        Ok(())
    }

    /// Waits until `/healthcheck` answers 200 (all keys loaded, database up).
    pub fn wait_healthy(&mut self, timeout: Duration) -> anyhow::Result<()> {
        self.wait_for("/healthcheck", |s| s == 200, timeout)
    }

    fn wait_for(
        &mut self,
        path: &str,
        ok: impl Fn(u16) -> bool,
        timeout: Duration,
    ) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        let url = format!("{}{path}", self.url);
        let client = reqwest::blocking::Client::new();
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("keyguard exited with {status}; log:\n{}", self.log());
            }
            if let Ok(resp) = client.get(&url).send() {
                if ok(resp.status().as_u16()) {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                bail!(
                    "keyguard did not answer {path} in time; log:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `GET /api/v1/eth2/publicKeys`: the pubkeys the signer serves.
    pub fn public_keys(&self) -> anyhow::Result<Vec<String>> {
        Ok(reqwest::blocking::get(format!("{}/api/v1/eth2/publicKeys", self.url))?.json()?)
    }

    /// The text of `/metrics` (Prometheus exposition format).
    pub fn metrics(&self) -> anyhow::Result<String> {
        Ok(reqwest::blocking::get(format!("{}/metrics", self.metrics_url))?.text()?)
    }

    /// The sum of the samples of `name` whose labels include all of `labels` (0 when
    /// there are none): one counter or gauge series, or a labelled family summed.
    pub fn metric(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let text = self.metrics().expect("metrics");
        let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string())))
            .expect("metrics text");
        sample_values(&scrape, name, labels).iter().sum()
    }

    /// Kills the process with SIGKILL (no chance to clean up) and waits for it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM and waits up to `timeout` for a clean exit; returns the exit status.
    pub fn terminate(&mut self, timeout: Duration) -> anyhow::Result<std::process::ExitStatus> {
        // SAFETY: kill(2) with the pid of our own child and a valid signal number.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() > deadline {
                self.kill();
                bail!("keyguard did not stop on SIGTERM; log:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Everything the process logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }
}

impl Drop for KeyguardProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
