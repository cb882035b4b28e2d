//! `keyguard audit ...`.

use std::io::BufReader;
use std::path::PathBuf;

use anyhow::Context;

use crate::audit::verify::{verify, VerifyError};

/// `keyguard audit ...`: work with audit log files.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum AuditCommand {
    /// Check a log's hash chain: every line parses, seq counts up by one, and prev is the
    /// SHA-256 of the previous line. Prints the line count, last seq and last line hash
    /// (record that hash elsewhere: cutting lines off the end is only detectable against
    /// it), or names the first broken line and exits 1. Reads the file without locking
    /// it, so it can check the log of a running keyguard.
    Verify {
        /// The audit log file.
        file: PathBuf,
    },
}

/// Runs an audit command; a broken chain is an error (exit code 1).
pub fn run(command: AuditCommand) -> anyhow::Result<()> {
    match command {
        AuditCommand::Verify { file } => {
            let f = std::fs::File::open(&file)
                .with_context(|| format!("cannot open {}", file.display()))?;
            match verify(BufReader::new(f)) {
                Ok(verified) => {
                    println!("{verified}");
                    Ok(())
                }
                Err(VerifyError::Broken(broken)) => {
                    anyhow::bail!("{}: {broken}", file.display())
                }
                Err(e) => Err(e).with_context(|| format!("verifying {}", file.display())),
            }
        }
    }
}
