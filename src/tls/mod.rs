//! TLS for the signing API (rustls with the `ring` provider): the server identity,
//! client-certificate checks and the listener that hands each connection's certificate
//! fingerprint to the HTTP layer.

mod identity;
pub mod listener;
mod verifier;

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::server::danger::ClientCertVerifier;
use rustls::server::WebPkiClientVerifier;
use rustls::RootCertStore;

pub use crate::config::tls::TlsConfig;

use crate::config::access::AccessConfig;
use crate::config::error::ConfigError;
pub use crate::identity::{fingerprint, known_clients};

use crate::identity::fingerprint::Fingerprint;
use crate::identity::known_clients::KnownClient;

/// The parsed `tls.known_clients` file, or nothing when it is not set.
pub fn load_known_clients(config: &TlsConfig) -> Result<Vec<KnownClient>, ConfigError> {
    match &config.known_clients {
        None => Ok(Vec::new()),
        Some(path) => known_clients::load(path)
            .map_err(|e| ConfigError::new("tls.known_clients", e.to_string())),
    }
}

/// The rustls server configuration: identity, protocol versions, client authentication.
/// Errors name the setting at fault (unreadable file, wrong password, key that does not
/// match the certificate, unusable CA).
pub fn server_config(
    config: &TlsConfig,
    access: &AccessConfig,
    known: &[KnownClient],
) -> Result<Arc<rustls::ServerConfig>, ConfigError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let identity = identity::load(config)?;
    let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| ConfigError::new("tls", e.to_string()))?;
    let builder = match client_verifier(config, access, known, &provider)? {
        Some(verifier) => builder.with_client_cert_verifier(verifier),
        None => builder.with_no_client_auth(),
    };
    let setting = identity.setting;
    let mut server = builder
        .with_single_cert(identity.chain, identity.key)
        .map_err(|e| ConfigError::new(setting, key_error_message(&e)))?;
    // axum serves HTTP/1.1 only.
    server.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(server))
}

fn key_error_message(error: &rustls::Error) -> String {
    match error {
        rustls::Error::InconsistentKeys(_) => {
            "the private key does not belong to the certificate (the first certificate of the \
             chain must be the server's own)"
                .into()
        }
        other => format!("unusable certificate or private key: {other}"),
    }
}

/// The client-certificate verifier, or `None` when client authentication is off.
fn client_verifier(
    config: &TlsConfig,
    access: &AccessConfig,
    known: &[KnownClient],
    provider: &Arc<CryptoProvider>,
) -> Result<Option<Arc<dyn ClientCertVerifier>>, ConfigError> {
    if !config.client_auth_configured(access) {
        return Ok(None);
    }
    let ca = match &config.client_ca {
        Some(path) => Some(ca_verifier(path, provider)?),
        None => None,
    };
    let allowed = if config.fingerprint_list_configured(access) {
        Some(allowed_fingerprints(config, access, known)?)
    } else {
        None
    };
    Ok(Some(Arc::new(verifier::ClientVerifier::new(
        ca,
        allowed,
        provider.signature_verification_algorithms,
    ))))
}

/// webpki verification against the CAs of `tls.client_ca`.
fn ca_verifier(
    path: &Path,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<dyn ClientCertVerifier>, ConfigError> {
    let mut roots = RootCertStore::empty();
    for cert in identity::load_pem_certs("tls.client_ca", path)? {
        roots.add(cert).map_err(|e| {
            ConfigError::new(
                "tls.client_ca",
                format!("{} holds an unusable CA certificate: {e}", path.display()),
            )
        })?;
    }
    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(provider))
        .build()
        .map_err(|e| ConfigError::new("tls.client_ca", e.to_string()))
}

/// The fingerprint allow-list: `tls.allowed_fingerprints`, the `tls.known_clients` file
/// and, when no CA is configured, the fingerprints of `[[access.clients]]`.
fn allowed_fingerprints(
    config: &TlsConfig,
    access: &AccessConfig,
    known: &[KnownClient],
) -> Result<HashSet<Fingerprint>, ConfigError> {
    let mut allowed = HashSet::new();
    for text in &config.allowed_fingerprints {
        let fp = fingerprint::parse(text)
            .map_err(|e| ConfigError::new("tls.allowed_fingerprints", e.to_string()))?;
        allowed.insert(fp);
    }
    allowed.extend(known.iter().map(|k| k.fingerprint));
    if config.client_ca.is_some() {
        return Ok(allowed);
    }
    for (i, client) in access.clients.iter().enumerate() {
        for text in &client.fingerprints {
            let fp = fingerprint::parse(text).map_err(|e| {
                ConfigError::new(format!("access.clients[{i}].fingerprints"), e.to_string())
            })?;
            allowed.insert(fp);
        }
    }
    Ok(allowed)
}

/// Checks `[tls]` as far as it can be without reading key material (see
/// `Config::validate`): which settings go together, and that the files exist.
pub fn validate(config: &TlsConfig, access: &AccessConfig) -> Result<(), ConfigError> {
    check_identity_settings(config)?;
    if !config.enabled() {
        return check_no_client_auth(config, access);
    }
    let files = [
        ("tls.cert", &config.cert),
        ("tls.key", &config.key),
        ("tls.pkcs12", &config.pkcs12),
        ("tls.pkcs12_password_file", &config.pkcs12_password_file),
        ("tls.client_ca", &config.client_ca),
        ("tls.known_clients", &config.known_clients),
    ];
    for (setting, path) in files {
        if let Some(path) = path.as_ref().filter(|p| !p.is_file()) {
            return Err(ConfigError::new(
                setting,
                format!("{} does not exist or is not a file", path.display()),
            ));
        }
    }
    for text in &config.allowed_fingerprints {
        fingerprint::parse(text)
            .map_err(|e| ConfigError::new("tls.allowed_fingerprints", e.to_string()))?;
    }
    Ok(())
}

/// PEM (`cert` + `key`) or PKCS#12 (`pkcs12` + `pkcs12_password_file`), never a mix.
fn check_identity_settings(config: &TlsConfig) -> Result<(), ConfigError> {
    let pem = config.cert.is_some() || config.key.is_some();
    if pem && config.pkcs12.is_some() {
        return Err(ConfigError::new(
            "tls.pkcs12",
            "give either tls.cert and tls.key, or tls.pkcs12, not both",
        ));
    }
    if config.cert.is_some() && config.key.is_none() {
        return Err(ConfigError::new(
            "tls.key",
            "tls.cert is set, so the private key is required",
        ));
    }
    if config.key.is_some() && config.cert.is_none() {
        return Err(ConfigError::new(
            "tls.cert",
            "tls.key is set, so the certificate is required",
        ));
    }
    if config.pkcs12.is_some() && config.pkcs12_password_file.is_none() {
        return Err(ConfigError::new(
            "tls.pkcs12_password_file",
            "tls.pkcs12 is set, so its password file is required (an empty file for no password)",
        ));
    }
    if config.pkcs12_password_file.is_some() && config.pkcs12.is_none() {
        return Err(ConfigError::new(
            "tls.pkcs12_password_file",
            "is set without tls.pkcs12",
        ));
    }
    Ok(())
}

/// Client certificates need TLS: without a server identity they could never be checked.
fn check_no_client_auth(config: &TlsConfig, access: &AccessConfig) -> Result<(), ConfigError> {
    let setting = if config.client_ca.is_some() {
        "tls.client_ca"
    } else if config.known_clients.is_some() {
        "tls.known_clients"
    } else if !config.allowed_fingerprints.is_empty() {
        "tls.allowed_fingerprints"
    } else if let Some(i) = access
        .clients
        .iter()
        .position(|c| !c.fingerprints.is_empty())
    {
        return Err(ConfigError::new(
            format!("access.clients[{i}].fingerprints"),
            "client certificates need TLS: set tls.cert and tls.key, or tls.pkcs12",
        ));
    } else {
        return Ok(());
    };
    Err(ConfigError::new(
        setting,
        "client certificates need TLS: set tls.cert and tls.key, or tls.pkcs12",
    ))
}

#[cfg(test)]
mod tests;
