//! TLS for the signing API (rustls): the server identity and client-certificate checks.
//!
//! SCAFFOLD: the config is final; the behaviour is filled in by the TLS work (#6).

use std::path::PathBuf;

use serde::Deserialize;

/// `[tls]`: TLS is on when a server identity (`cert` + `key`, or `pkcs12`) is given.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// PEM certificate chain of the server.
    pub cert: Option<PathBuf>,
    /// PEM private key of the server.
    pub key: Option<PathBuf>,
    /// PKCS#12 server identity (instead of `cert` + `key`).
    pub pkcs12: Option<PathBuf>,
    /// File holding the PKCS#12 password.
    pub pkcs12_password_file: Option<PathBuf>,
    /// PEM bundle of CAs that client certificates must chain to.
    pub client_ca: Option<PathBuf>,
    /// Web3Signer known-clients file: one `<name> <sha256 fingerprint>` per line.
    pub known_clients: Option<PathBuf>,
    /// SHA-256 fingerprints of allowed client certificates (hex, `:` separators allowed).
    pub allowed_fingerprints: Vec<String>,
}

impl TlsConfig {
    /// True when a server identity is configured.
    pub fn enabled(&self) -> bool {
        self.cert.is_some() || self.key.is_some() || self.pkcs12.is_some()
    }
}
