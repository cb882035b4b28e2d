//! Runs a real Lodestar 1.5.1 (npm) single-node devnet whose validator client signs every
//! duty through keyguard: installs Lodestar into a cache directory outside the repository,
//! dumps the devnet's config and keystores, and starts the beacon node, the validator
//! client and keyguard as process groups that die with their handles (also on panic).
//!
//! Everything listens on 127.0.0.1 only; the only network access is `npm ci` against the
//! npm registry, once per cache directory.

use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::keyguard_process::{free_port, keyguard_binary, workspace_root};

/// The Lodestar release the package files pin.
pub const LODESTAR_VERSION: &str = "1.5.1";

/// Written into the cache directory after a successful install; holds the lockfile it was
/// installed from, so that a changed lockfile triggers a reinstall.
const INSTALLED_MARKER: &str = ".keyguard-installed-lock.json";

/// True when running under CI (`CI=true`): then nothing may skip.
pub fn is_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// The committed package files (`package.json`, `package-lock.json`, `.npmrc`).
pub fn package_dir() -> PathBuf {
    workspace_root().join("interop-tests/lodestar")
}

/// Where Lodestar is installed: env `KEYGUARD_LODESTAR_DIR`, else
/// `<workspace>/target/lodestar-1.5.1` (inside the ignored target directory).
pub fn cache_dir() -> PathBuf {
    match std::env::var_os("KEYGUARD_LODESTAR_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => workspace_root().join(format!("target/lodestar-{LODESTAR_VERSION}")),
    }
}

fn tool_present(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Lodestar installed and ready to run, or `None` after a loud skip message when node or
/// npm is missing outside CI. Under `CI=true` a missing tool or a failed install panics,
/// and outside CI a failed install panics too (it is a real failure, not a missing tool).
pub fn require_lodestar(test: &str) -> Option<Lodestar> {
    let missing: Vec<&str> = ["node", "npm"]
        .into_iter()
        .filter(|tool| !tool_present(tool))
        .collect();
    if !missing.is_empty() {
        let msg = format!(
            "{test}: {} not found on PATH; the Lodestar devnet test needs Node.js and npm",
            missing.join(" and ")
        );
        if is_ci() {
            panic!("{msg}");
        }
        eprintln!("\n!!!!!!!!!! SKIPPED !!!!!!!!!!\n{msg}\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n");
        return None;
    }
    match Lodestar::install(&cache_dir()) {
        Ok(lodestar) => Some(lodestar),
        Err(e) => panic!("{test}: installing Lodestar {LODESTAR_VERSION} failed: {e:#}"),
    }
}

/// An exclusive `flock` on a file, released on drop: serializes installs between test
/// processes sharing a cache directory.
struct FileLock(File);

impl FileLock {
    fn acquire(path: &Path) -> anyhow::Result<Self> {
        use std::os::fd::AsRawFd;
        let file = File::create(path).with_context(|| format!("create {}", path.display()))?;
        // SAFETY: flock(2) on a file descriptor we own for the lifetime of `file`.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
        if rc != 0 {
            bail!(
                "flock {}: {}",
                path.display(),
                std::io::Error::last_os_error()
            );
        }
        Ok(Self(file))
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        use std::os::fd::AsRawFd;
        // SAFETY: as in `acquire`; the descriptor is still open.
        unsafe { libc::flock(self.0.as_raw_fd(), libc::LOCK_UN) };
    }
}

/// An installed Lodestar.
#[derive(Clone, Debug)]
pub struct Lodestar {
    dir: PathBuf,
}

impl Lodestar {
    /// Installs Lodestar into `dir` with `npm ci` unless the marker says the same lockfile
    /// is already installed, then checks `lodestar --version`.
    pub fn install(dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
        let _lock = FileLock::acquire(&dir.join(".install.lock"))?;
        let src = package_dir();
        let lockfile = std::fs::read(src.join("package-lock.json"))
            .with_context(|| format!("read {}/package-lock.json", src.display()))?;
        let marker = dir.join(INSTALLED_MARKER);
        let lodestar = Self {
            dir: dir.to_path_buf(),
        };
        if std::fs::read(&marker).is_ok_and(|m| m == lockfile) && lodestar.bin().is_file() {
            lodestar.check_version()?;
            return Ok(lodestar);
        }
        let _ = std::fs::remove_file(&marker);
        for name in ["package.json", "package-lock.json", ".npmrc"] {
            let to = dir.join(name);
            // The source files may be read-only; a stale read-only copy would block `copy`.
            let _ = std::fs::remove_file(&to);
            std::fs::copy(src.join(name), &to)
                .with_context(|| format!("copy {name} to {}", dir.display()))?;
        }
        let started = Instant::now();
        eprintln!(
            "installing Lodestar {LODESTAR_VERSION} into {} (npm ci, about a minute)",
            dir.display()
        );
        let out = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            // node-gyp builds the native add-ons against the system Node headers instead of
            // downloading them.
            .env("npm_config_nodedir", "/usr")
            .current_dir(dir)
            .output()
            .context("cannot run npm")?;
        if !out.status.success() {
            bail!(
                "npm ci failed ({}):\n{}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        lodestar.check_version()?;
        std::fs::write(&marker, &lockfile).context("write install marker")?;
        eprintln!("Lodestar installed in {:.0?}", started.elapsed());
        Ok(lodestar)
    }

    fn bin(&self) -> PathBuf {
        self.dir.join("node_modules/.bin/lodestar")
    }

    fn check_version(&self) -> anyhow::Result<()> {
        let out = self
            .command()
            .arg("--version")
            .output()
            .context("cannot run lodestar --version")?;
        let text = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() || !text.contains(LODESTAR_VERSION) {
            bail!(
                "lodestar --version: want {LODESTAR_VERSION}, got {} {text} {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    }

    /// `node <lodestar> ` with the minimal preset.
    fn command(&self) -> Command {
        let mut cmd = Command::new("node");
        cmd.arg(self.bin()).env("LODESTAR_PRESET", "minimal");
        cmd
    }

    /// Writes the devnet's `config.yaml`, `genesis.ssz`, `keystores/` and `secrets/` into
    /// `dir` (`lodestar dev --dumpTestnetFiles`).
    pub fn dump_testnet_files(&self, params: &DevnetParams, dir: &Path) -> anyhow::Result<()> {
        let log_path = dir.with_extension("dump.log");
        let mut cmd = self.command();
        cmd.arg("dev")
            .args(params.genesis_args())
            .args(params.param_args())
            .arg("--dumpTestnetFiles")
            .arg(dir);
        let mut child = ProcessGroup::spawn(cmd, &log_path, "lodestar dev --dumpTestnetFiles")?;
        let status = child.wait_exit(Duration::from_secs(60))?;
        if !status.success() || !dir.join("config.yaml").is_file() {
            bail!(
                "dumping testnet files failed ({status}); log:\n{}",
                child.log()
            );
        }
        Ok(())
    }

    /// Starts the devnet's only beacon node (no validators) in `dir`, REST and p2p on free
    /// loopback ports.
    pub fn start_beacon_node(
        &self,
        params: &DevnetParams,
        dir: &Path,
    ) -> anyhow::Result<BeaconNode> {
        std::fs::create_dir_all(dir)?;
        let rest_port = free_port();
        let p2p_port = free_port();
        let rest_url = format!("http://127.0.0.1:{rest_port}");
        let mut cmd = self.command();
        cmd.arg("dev")
            .args(params.genesis_args())
            .args(params.param_args())
            .args(["--reset", "--dataDir"])
            .arg(dir.join("data"))
            .args(["--rest.address", "127.0.0.1", "--rest.port"])
            .arg(rest_port.to_string())
            .args(["--rest.namespace", "*", "--server", &rest_url])
            .args(["--port", &p2p_port.to_string()])
            .args(["--listenAddress", "127.0.0.1", "--discv5", "false"])
            // It writes ./genesis.ssz: run it in its own empty directory.
            .current_dir(dir);
        let process = ProcessGroup::spawn(cmd, &dir.join("beacon.log"), "lodestar beacon node")?;
        let mut node = BeaconNode { process, rest_url };
        node.wait_rest(Duration::from_secs(60))?;
        Ok(node)
    }

    /// Starts the validator client as its own process, signing every duty through the
    /// external signer at `signer_url` (keys fetched from it once at start).
    pub fn start_validator_client(
        &self,
        params: &DevnetParams,
        beacon_url: &str,
        signer_url: &str,
        dir: &Path,
        builder: bool,
    ) -> anyhow::Result<ProcessGroup> {
        std::fs::create_dir_all(dir)?;
        let mut cmd = self.command();
        cmd.args(["validator", "--network", "dev", "--dataDir"])
            .arg(dir.join("data"))
            .args(["--server", beacon_url])
            .args(params.param_args())
            .args(["--externalSigner.url", signer_url, "--externalSigner.fetch"])
            // No metrics/keymanager servers: nothing but loopback clients.
            .current_dir(dir);
        if builder {
            cmd.arg("--builder");
        }
        ProcessGroup::spawn(cmd, &dir.join("validator.log"), "lodestar validator")
    }
}

/// The devnet's parameters; the beacon node and the validator client get the same ones.
#[derive(Clone, Debug)]
pub struct DevnetParams {
    /// Genesis validators (interop keys 0..n).
    pub validators: u64,
    /// `SECONDS_PER_SLOT`.
    pub seconds_per_slot: u64,
    /// `ALTAIR_FORK_EPOCH`.
    pub altair_epoch: u64,
    /// `BELLATRIX_FORK_EPOCH`.
    pub bellatrix_epoch: u64,
    /// `CAPELLA_FORK_EPOCH`.
    pub capella_epoch: u64,
}

impl DevnetParams {
    fn genesis_args(&self) -> Vec<String> {
        vec!["--genesisValidators".into(), self.validators.to_string()]
    }

    fn param_args(&self) -> Vec<String> {
        [
            ("SECONDS_PER_SLOT", self.seconds_per_slot),
            ("ALTAIR_FORK_EPOCH", self.altair_epoch),
            ("BELLATRIX_FORK_EPOCH", self.bellatrix_epoch),
            ("CAPELLA_FORK_EPOCH", self.capella_epoch),
        ]
        .into_iter()
        .flat_map(|(name, value)| [format!("--params.{name}"), value.to_string()])
        .collect()
    }
}

/// A child process in its own process group, with stdout and stderr in a log file. Drop
/// kills the whole group with SIGKILL, so nothing lingers after a failed test.
pub struct ProcessGroup {
    child: Child,
    name: String,
    log_path: PathBuf,
    exited: bool,
}

impl ProcessGroup {
    /// Spawns `cmd` as the leader of a new process group, logging to `log_path`.
    pub fn spawn(mut cmd: Command, log_path: &Path, name: &str) -> anyhow::Result<Self> {
        let log = File::create(log_path)
            .with_context(|| format!("create log file {}", log_path.display()))?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log.try_clone().context("clone log file")?)
            .stderr(log)
            .process_group(0)
            .spawn()
            .with_context(|| format!("cannot start {name}"))?;
        Ok(Self {
            child,
            name: name.to_string(),
            log_path: log_path.to_path_buf(),
            exited: false,
        })
    }

    /// Fails if the process has exited (it should be running), quoting its log tail.
    pub fn check_running(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            self.exited = true;
            bail!(
                "{} exited with {status}; log tail:\n{}",
                self.name,
                self.log_tail(60)
            );
        }
        Ok(())
    }

    /// Waits up to `timeout` for the process to exit; kills it after that.
    pub fn wait_exit(&mut self, timeout: Duration) -> anyhow::Result<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                self.exited = true;
                return Ok(status);
            }
            if Instant::now() > deadline {
                self.kill_group(libc::SIGKILL);
                bail!(
                    "{} did not exit in {timeout:?}; log:\n{}",
                    self.name,
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sends `signal` to the whole group.
    pub fn kill_group(&mut self, signal: libc::c_int) {
        if self.exited {
            return;
        }
        // SAFETY: kill(2) on the process group our child leads (pgid = its pid).
        unsafe { libc::kill(-(self.child.id() as libc::pid_t), signal) };
        if signal == libc::SIGKILL {
            let _ = self.child.wait();
            self.exited = true;
        }
    }

    /// The whole log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// The last `lines` lines of the log.
    pub fn log_tail(&self, lines: usize) -> String {
        let log = self.log();
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        self.kill_group(libc::SIGKILL);
    }
}

/// The devnet's beacon node.
pub struct BeaconNode {
    /// Its process.
    pub process: ProcessGroup,
    /// Base URL of its REST API.
    pub rest_url: String,
}

impl BeaconNode {
    fn wait_rest(&mut self, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        let client = http_client()?;
        let url = format!("{}/eth/v1/node/version", self.rest_url);
        loop {
            self.process.check_running()?;
            if client
                .get(&url)
                .send()
                .is_ok_and(|r| r.status().is_success())
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "beacon node REST did not answer in {timeout:?}; log tail:\n{}",
                    self.process.log_tail(60)
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The finalized epoch of the head state.
    pub fn finalized_epoch(&self) -> anyhow::Result<u64> {
        let url = format!(
            "{}/eth/v1/beacon/states/head/finality_checkpoints",
            self.rest_url
        );
        let body: serde_json::Value = http_client()?
            .get(&url)
            .send()
            .and_then(|r| r.error_for_status())
            .with_context(|| format!("GET {url}"))?
            .json()
            .context("finality_checkpoints is not JSON")?;
        body["data"]["finalized"]["epoch"]
            .as_str()
            .and_then(|e| e.parse().ok())
            .with_context(|| format!("no data.finalized.epoch in {body}"))
    }

    /// Waits until the finalized epoch reaches `epoch`, failing early if any of `alive`
    /// (or the node itself) exits; prints progress as finality advances.
    pub fn wait_finalized(
        &mut self,
        epoch: u64,
        timeout: Duration,
        alive: &mut [&mut ProcessGroup],
    ) -> anyhow::Result<u64> {
        let started = Instant::now();
        let mut last = None;
        loop {
            self.process.check_running()?;
            for p in alive.iter_mut() {
                p.check_running()?;
            }
            if let Ok(finalized) = self.finalized_epoch() {
                if last != Some(finalized) {
                    eprintln!(
                        "[{:>5.1}s] finalized epoch {finalized} (waiting for {epoch})",
                        started.elapsed().as_secs_f64()
                    );
                    last = Some(finalized);
                }
                if finalized >= epoch {
                    return Ok(finalized);
                }
            }
            if started.elapsed() > timeout {
                bail!(
                    "finalized epoch {last:?} did not reach {epoch} in {timeout:?}; beacon log \
                     tail:\n{}",
                    self.process.log_tail(40)
                );
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

fn http_client() -> anyhow::Result<reqwest::blocking::Client> {
    crate::install_crypto_provider();
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .context("build HTTP client")
}

/// A `keyguard run` process on fixed loopback ports, so that it can be restarted where the
/// validator client (whose signer URL is fixed) expects it.
pub struct Signer {
    process: Option<ProcessGroup>,
    args: Vec<String>,
    port: u16,
    metrics_port: u16,
    log_dir: PathBuf,
    starts: u32,
}

impl Signer {
    /// Starts `keyguard run ARGS` on free ports and waits until it is healthy (keys loaded).
    pub fn start(args: &[&str], log_dir: &Path) -> anyhow::Result<Self> {
        let mut signer = Self {
            process: None,
            args: args.iter().map(|a| a.to_string()).collect(),
            port: free_port(),
            metrics_port: free_port(),
            log_dir: log_dir.to_path_buf(),
            starts: 0,
        };
        signer.restart()?;
        Ok(signer)
    }

    /// Base URL of the signing API.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Base URL of the metrics listener.
    pub fn metrics_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.metrics_port)
    }

    /// Starts keyguard again (after [`Signer::kill`] or [`Signer::terminate`]) with the same
    /// arguments and ports, and waits until it is healthy.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        if self.process.is_some() {
            bail!("keyguard is still running");
        }
        self.starts += 1;
        let log_path = self.log_dir.join(format!("keyguard-{}.log", self.starts));
        let mut cmd = Command::new(keyguard_binary());
        cmd.arg("run")
            .args(&self.args)
            .args(["--listen", &format!("127.0.0.1:{}", self.port)])
            .args([
                "--metrics-listen",
                &format!("127.0.0.1:{}", self.metrics_port),
            ])
            .env_remove("KEYGUARD_CONFIG")
            .current_dir(workspace_root());
        let process = ProcessGroup::spawn(cmd, &log_path, "keyguard")?;
        self.process = Some(process);
        // The port was just released by the previous process; the new one may need a
        // moment to bind it, and keys take a moment to decrypt.
        let deadline = Instant::now() + Duration::from_secs(60);
        let client = http_client()?;
        let url = format!("{}/healthcheck", self.url());
        loop {
            self.process_mut()?.check_running()?;
            if client.get(&url).send().is_ok_and(|r| r.status() == 200) {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("keyguard not healthy in 60 s; log:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn process_mut(&mut self) -> anyhow::Result<&mut ProcessGroup> {
        self.process.as_mut().context("keyguard is not running")
    }

    /// Fails if keyguard has exited.
    pub fn check_running(&mut self) -> anyhow::Result<()> {
        self.process_mut()?.check_running()
    }

    /// SIGKILL: no chance to flush anything that is not already durable.
    pub fn kill(&mut self) {
        // Dropping the group kills it with SIGKILL and reaps it.
        self.process = None;
    }

    /// SIGTERM, then waits up to `timeout` for the exit.
    pub fn terminate(&mut self, timeout: Duration) -> anyhow::Result<std::process::ExitStatus> {
        let process = self.process_mut()?;
        process.kill_group(libc::SIGTERM);
        let status = process.wait_exit(timeout);
        self.process = None;
        status
    }

    /// The current process's log (empty when not running).
    pub fn log(&self) -> String {
        self.process
            .as_ref()
            .map(ProcessGroup::log)
            .unwrap_or_default()
    }

    /// `keyguard_sign_requests_total` as `(type, outcome, reason) -> count`.
    pub fn sign_request_counts(&self) -> anyhow::Result<BTreeMap<(String, String, String), u64>> {
        let url = format!("{}/metrics", self.metrics_url());
        let text = http_client()?
            .get(&url)
            .send()
            .and_then(|r| r.error_for_status())
            .with_context(|| format!("GET {url}"))?
            .text()?;
        parse_sign_request_counts(&text)
    }
}

/// Parses `keyguard_sign_requests_total{outcome="..",reason="..",type=".."} N` lines of a
/// Prometheus text exposition (label order does not matter).
pub fn parse_sign_request_counts(
    text: &str,
) -> anyhow::Result<BTreeMap<(String, String, String), u64>> {
    let mut counts = BTreeMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("keyguard_sign_requests_total{") else {
            continue;
        };
        let (labels, value) = rest
            .rsplit_once("} ")
            .with_context(|| format!("malformed metric line {line:?}"))?;
        let mut map = BTreeMap::new();
        for pair in labels.split(',').filter(|p| !p.is_empty()) {
            let (k, v) = pair
                .split_once('=')
                .with_context(|| format!("malformed label in {line:?}"))?;
            map.insert(k, v.trim_matches('"'));
        }
        let get = |k: &str| map.get(k).map(|v| v.to_string()).unwrap_or_default();
        let value: f64 = value
            .trim()
            .parse()
            .with_context(|| format!("malformed value in {line:?}"))?;
        counts.insert((get("type"), get("outcome"), get("reason")), value as u64);
    }
    Ok(counts)
}
