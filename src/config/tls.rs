//! `[tls]`: TLS on the signing API, and its flags. The identity, verifier and listener
//! built from it are in the `tls` module.

use std::path::PathBuf;

use serde::Deserialize;

use super::access::AccessConfig;
use super::overrides::{set, set_opt};

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

    /// True when any client-certificate setting is given (without a CA, the
    /// `[[access.clients]]` fingerprints count too: see `allowed_fingerprints`).
    pub fn client_auth_configured(&self, access: &AccessConfig) -> bool {
        self.client_ca.is_some() || self.fingerprint_list_configured(access)
    }

    /// True when a fingerprint allow-list is in force (even an empty known-clients file
    /// turns it on, refusing everyone: fail closed). With a CA, `[[access.clients]]`
    /// fingerprints only name and scope clients: listing one CA-issued certificate there
    /// must not lock out every other certificate of that CA.
    pub fn fingerprint_list_configured(&self, access: &AccessConfig) -> bool {
        self.known_clients.is_some()
            || !self.allowed_fingerprints.is_empty()
            || (self.client_ca.is_none()
                && access.clients.iter().any(|c| !c.fingerprints.is_empty()))
    }
}

/// Flags of `[tls]`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct TlsArgs {
    /// PEM certificate chain of the server; enables TLS [tls.cert].
    #[arg(global = true, long, env = "KEYGUARD_TLS_CERT", value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of the server [tls.key].
    #[arg(global = true, long, env = "KEYGUARD_TLS_KEY", value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
    /// PKCS#12 server identity; enables TLS [tls.pkcs12].
    #[arg(global = true, long, env = "KEYGUARD_TLS_PKCS12", value_name = "FILE")]
    pub tls_pkcs12: Option<PathBuf>,
    /// File holding the PKCS#12 password [tls.pkcs12_password_file].
    #[arg(
        global = true,
        long,
        env = "KEYGUARD_TLS_PKCS12_PASSWORD_FILE",
        value_name = "FILE"
    )]
    pub tls_pkcs12_password_file: Option<PathBuf>,
    /// PEM CA bundle that client certificates must chain to [tls.client_ca].
    #[arg(
        global = true,
        long,
        env = "KEYGUARD_TLS_CLIENT_CA",
        value_name = "FILE"
    )]
    pub tls_client_ca: Option<PathBuf>,
    /// Web3Signer known-clients file of allowed certificate fingerprints [tls.known_clients].
    #[arg(
        global = true,
        long,
        env = "KEYGUARD_TLS_KNOWN_CLIENTS",
        value_name = "FILE"
    )]
    pub tls_known_clients: Option<PathBuf>,
    /// Allowed client certificate SHA-256 fingerprints, comma-separated
    /// [tls.allowed_fingerprints].
    #[arg(
        global = true,
        long,
        env = "KEYGUARD_TLS_ALLOWED_FINGERPRINTS",
        value_name = "SHA256,...",
        value_delimiter = ','
    )]
    pub tls_allowed_fingerprints: Option<Vec<String>>,
}

impl TlsArgs {
    /// Applies the flags that were given to `c`.
    pub fn apply(&self, c: &mut TlsConfig) {
        set_opt(&mut c.cert, &self.tls_cert);
        set_opt(&mut c.key, &self.tls_key);
        set_opt(&mut c.pkcs12, &self.tls_pkcs12);
        set_opt(&mut c.pkcs12_password_file, &self.tls_pkcs12_password_file);
        set_opt(&mut c.client_ca, &self.tls_client_ca);
        set_opt(&mut c.known_clients, &self.tls_known_clients);
        set(&mut c.allowed_fingerprints, &self.tls_allowed_fingerprints);
    }
}
