//! The `keyguard` command-line entry point.

fn main() -> std::process::ExitCode {
    keyguard::cli::main()
}
