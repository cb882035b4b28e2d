//! A helper process (HAProxy, Prometheus) whose output goes to a log file the tests can
//! read, killed and reaped on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};

use anyhow::Context;

/// A running child process with its log.
pub struct LoggedChild {
    child: Child,
    log_path: PathBuf,
}

impl LoggedChild {
    /// Spawns `command` with no stdin and its stdout and stderr in a new file `log_path`.
    pub fn spawn(command: &mut Command, log_path: &Path) -> anyhow::Result<Self> {
        let log = std::fs::File::create(log_path)
            .with_context(|| format!("create {}", log_path.display()))?;
        let child = command
            .stdout(log.try_clone().context("clone log handle")?)
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .with_context(|| format!("start {:?}", command.get_program()))?;
        Ok(Self {
            child,
            log_path: log_path.to_path_buf(),
        })
    }

    /// Everything it logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Its exit status if it has exited.
    pub fn try_wait(&mut self) -> std::io::Result<Option<ExitStatus>> {
        self.child.try_wait()
    }
}

impl Drop for LoggedChild {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
