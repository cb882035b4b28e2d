//! Shared helpers for keyguard's end-to-end tests: locating the shared test material,
//! starting a keyguard process, and building request bodies.

pub mod duties;
pub mod haproxy;
pub mod instances;
pub mod keyguard_process;
pub mod lodestar;
pub mod logged_child;
pub mod postgres;
pub mod prometheus;
pub mod requests;
pub mod softhsm;
pub mod tls;

use std::path::PathBuf;

/// Installs rustls's `ring` provider as the process default, once. The HTTP clients of
/// the tests (reqwest with `rustls-no-provider`) need it: keyguard links ring already, so
/// the tests compile no second crypto library (reqwest's default, aws-lc-rs, needs cmake
/// and builds a large C library). Every helper that builds a client calls this first.
pub fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // Err only when a provider is already installed, which is what is wanted.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// The shared directory of reference material (vectors, Lodestar samples): env
/// `KEYGUARD_SHARED_DIR`, else `<workspace root>/../shared`. `None` if it does not exist.
pub fn shared_dir() -> Option<PathBuf> {
    let dir = match std::env::var_os("KEYGUARD_SHARED_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared"),
    };
    dir.is_dir().then_some(dir)
}

/// The shared directory, or `None` after a loud skip message. Under `CI=true` a missing
/// directory fails the calling test instead: CI must never pass by skipping.
pub fn require_shared_dir(test: &str) -> Option<PathBuf> {
    if let Some(dir) = shared_dir() {
        return Some(dir);
    }
    let msg = format!(
        "{test}: shared test material not found (set KEYGUARD_SHARED_DIR or place it at \
         <workspace>/../shared)"
    );
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{msg}");
    }
    eprintln!("\n!!!!!!!!!! SKIPPED !!!!!!!!!!\n{msg}\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n");
    None
}
