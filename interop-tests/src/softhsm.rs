//! A throw-away SoftHSM2 installation for the HSM tests.
//!
//! SoftHSM reads `SOFTHSM2_CONF` once, when the module is initialised, and does not see
//! tokens that another process (`softhsm2-util`) creates afterwards. The environment is
//! also process-global while cargo runs tests on parallel threads. So the first test to
//! ask creates one temporary token directory with a pool of tokens (unique labels, all
//! created before the module is loaded), sets `SOFTHSM2_CONF` once, and every test then
//! takes tokens of its own from the pool and selects them by label.
//!
//! Without SoftHSM2 installed the tests print a loud skip, except under `CI=true` where a
//! missing SoftHSM2 is a failure: CI must never pass by skipping the HSM tests.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

use keyguard::hsm::HsmConfig;

/// Where Debian and other distributions install the SoftHSM2 module.
pub const MODULE_CANDIDATES: &[&str] = &[
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib64/softhsm/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
];

/// How many tokens the pool holds; raise it when tests need more. A test that runs a
/// child process can lower it there with `KEYGUARD_SOFTHSM_POOL`.
pub const POOL_SIZE: usize = 32;

fn pool_size() -> usize {
    std::env::var("KEYGUARD_SOFTHSM_POOL")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(POOL_SIZE)
}

/// The SoftHSM2 module path, if installed.
pub fn module_path() -> Option<PathBuf> {
    MODULE_CANDIDATES
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

/// One initialised token of the pool.
#[derive(Debug, Clone)]
pub struct TestToken {
    /// The token label (unique in the pool).
    pub label: String,
    /// The user PIN.
    pub pin: String,
    /// A file holding the user PIN.
    pub pin_file: PathBuf,
    /// The module path.
    pub module: PathBuf,
}

impl TestToken {
    /// The `keyguard` command-line flags that select this token (PIN from its file).
    pub fn cli_flags(&self) -> Vec<String> {
        vec![
            "--hsm-module".into(),
            self.module.display().to_string(),
            "--hsm-token-label".into(),
            self.label.clone(),
            "--hsm-pin-file".into(),
            self.pin_file.display().to_string(),
        ]
    }

    /// An HSM config for this token: PIN from the PIN file, default KEK label.
    pub fn config(&self) -> HsmConfig {
        let mut cfg = HsmConfig::new(&self.module, &self.label);
        cfg.pin_file = Some(self.pin_file.clone());
        cfg
    }
}

/// The process-wide SoftHSM2 test installation.
pub struct SoftHsm {
    root: PathBuf,
    module: PathBuf,
    free: Mutex<Vec<TestToken>>,
    labels: Vec<String>,
}

impl SoftHsm {
    /// The module path.
    pub fn module(&self) -> &Path {
        &self.module
    }

    /// The temporary directory holding tokens, the config and PIN files.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Labels of every token of the pool.
    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    /// Takes a token nobody else uses.
    pub fn token(&self) -> TestToken {
        self.free
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop()
            .unwrap_or_else(|| panic!("SoftHSM token pool exhausted: raise POOL_SIZE"))
    }
}

static SOFTHSM: OnceLock<Option<SoftHsm>> = OnceLock::new();

/// The SoftHSM2 installation, or `None` (after a loud message) when SoftHSM2 is missing
/// outside CI. Panics under `CI=true` if SoftHSM2 is missing or setup fails.
pub fn softhsm() -> Option<&'static SoftHsm> {
    SOFTHSM.get_or_init(setup).as_ref()
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

fn setup() -> Option<SoftHsm> {
    let util = Command::new("softhsm2-util").arg("--version").output();
    let (Some(module), Ok(_)) = (module_path(), util) else {
        if in_ci() {
            panic!(
                "CI=true but SoftHSM2 is not installed (no softhsm2-util or module in {MODULE_CANDIDATES:?}); \
                 install the Debian package softhsm2"
            );
        }
        // Written to the stderr handle directly: libtest captures `eprintln!` of passing
        // tests, and this must be seen.
        let banner = "\n\
            ################################################################\n\
            # SKIPPING HSM TESTS: SoftHSM2 is not installed.               #\n\
            # Install it with: apt-get install -y softhsm2                 #\n\
            # (under CI=true these tests fail instead of skipping)         #\n\
            ################################################################\n\n";
        let _ = std::io::Write::write_all(&mut std::io::stderr(), banner.as_bytes());
        return None;
    };
    // Kept (statics are never dropped); the directories of earlier test processes that
    // have exited are removed here instead.
    remove_stale_dirs();
    let root = tempfile::Builder::new()
        .prefix(&format!("keyguard-softhsm-{}-", std::process::id()))
        .tempdir()
        .expect("create temp dir")
        .keep();
    let tokendir = root.join("tokens");
    std::fs::create_dir(&tokendir).expect("create token dir");
    let conf = root.join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n",
            tokendir.display()
        ),
    )
    .expect("write softhsm2.conf");

    let pid = std::process::id();
    let tokens: Vec<TestToken> = (0..pool_size())
        .map(|i| {
            let label = format!("kg-test-{pid}-{i:02}");
            let pin = format!("user-pin-{i:02}");
            let pin_file = root.join(format!("{label}.pin"));
            std::fs::write(&pin_file, format!("{pin}\n")).expect("write PIN file");
            TestToken {
                label,
                pin,
                pin_file,
                module: module.clone(),
            }
        })
        .collect();
    // One at a time: concurrent softhsm2-util runs race for the same free slot.
    for t in &tokens {
        init_token(&conf, &t.label, &t.pin);
    }
    // Only now, before any test loads the module, point SoftHSM at the directory. Every
    // test calls `softhsm()` before touching the module, so nothing reads the variable
    // concurrently.
    std::env::set_var("SOFTHSM2_CONF", &conf);
    let labels = tokens.iter().map(|t| t.label.clone()).collect();
    Some(SoftHsm {
        root,
        module,
        free: Mutex::new(tokens),
        labels,
    })
}

/// Removes `keyguard-softhsm-<pid>-*` directories whose process no longer runs.
fn remove_stale_dirs() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name
            .to_str()
            .and_then(|n| n.strip_prefix("keyguard-softhsm-"))
        else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

fn init_token(conf: &Path, label: &str, pin: &str) {
    // The init-token command takes the PINs on its command line; fine for throw-away
    // test tokens, never for real ones.
    let out = Command::new("softhsm2-util")
        .env("SOFTHSM2_CONF", conf)
        .args(["--init-token", "--free", "--label", label, "--pin", pin])
        .args(["--so-pin", "so-pin-0000"])
        .output()
        .expect("run softhsm2-util");
    assert!(
        out.status.success(),
        "softhsm2-util --init-token {label} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
