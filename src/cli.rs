//! The command line: `keyguard run`, `keyguard slashing ...`, `keyguard keys ...`.

use std::process::ExitCode;

/// Parses the command line and runs the chosen command.
pub fn main() -> ExitCode {
    ExitCode::SUCCESS
}
