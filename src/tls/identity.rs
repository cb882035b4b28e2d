//! The server's TLS identity: a certificate chain and its private key, read from PEM files
//! (`tls.cert` + `tls.key`) or from a PKCS#12 file (`tls.pkcs12` + `tls.pkcs12_password_file`).
//! Every error names the setting it comes from and never contains key material.

use std::path::Path;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use zeroize::Zeroizing;

use super::TlsConfig;
use crate::config::error::ConfigError;

/// A certificate chain (leaf first) and the leaf's private key.
pub struct ServerIdentity {
    /// The chain sent to clients, leaf first.
    pub chain: Vec<CertificateDer<'static>>,
    /// The leaf's private key (zeroized on drop by `rustls-pki-types`).
    pub key: PrivateKeyDer<'static>,
    /// The setting the identity came from, for errors found later (key mismatch).
    pub setting: &'static str,
}

/// Reads the identity `config` names. Call only when TLS is enabled.
pub fn load(config: &TlsConfig) -> Result<ServerIdentity, ConfigError> {
    match (&config.cert, &config.key, &config.pkcs12) {
        (Some(cert), Some(key), None) => from_pem(cert, key),
        (None, None, Some(p12)) => {
            let password_file = config.pkcs12_password_file.as_deref().ok_or_else(|| {
                ConfigError::new(
                    "tls.pkcs12_password_file",
                    "tls.pkcs12 needs a password file",
                )
            })?;
            from_pkcs12(p12, password_file)
        }
        _ => Err(ConfigError::new(
            "tls",
            "set either tls.cert and tls.key, or tls.pkcs12 and tls.pkcs12_password_file",
        )),
    }
}

/// PEM certificate chain and PEM private key (PKCS#8, PKCS#1 or SEC1).
fn from_pem(cert: &Path, key: &Path) -> Result<ServerIdentity, ConfigError> {
    let chain = load_pem_certs("tls.cert", cert)?;
    crate::secret_file::warn_if_exposed(key, "TLS private key");
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| {
        ConfigError::new(
            "tls.key",
            format!("cannot read a PEM private key from {}: {e}", key.display()),
        )
    })?;
    Ok(ServerIdentity {
        chain,
        key,
        setting: "tls.key",
    })
}

/// Every certificate of a PEM file; at least one.
pub fn load_pem_certs(
    setting: &str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let read_error = |e: &dyn std::fmt::Display| {
        ConfigError::new(
            setting,
            format!("cannot read PEM certificates from {}: {e}", path.display()),
        )
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| read_error(&e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| read_error(&e))?;
    if certs.is_empty() {
        return Err(read_error(&"no CERTIFICATE block found"));
    }
    Ok(certs)
}

/// The first private key of a PKCS#12 file and its certificate chain.
fn from_pkcs12(path: &Path, password_file: &Path) -> Result<ServerIdentity, ConfigError> {
    let password = read_password(password_file)?;
    crate::secret_file::warn_if_exposed(path, "TLS PKCS#12 identity");
    let data = std::fs::read(path).map_err(|e| {
        ConfigError::new("tls.pkcs12", format!("cannot read {}: {e}", path.display()))
    })?;
    let store = p12_keystore::KeyStore::from_pkcs12(
        &data,
        &password,
        p12_keystore::Pkcs12ImportPolicy::Strict,
    )
    .map_err(|e| {
        ConfigError::new(
            "tls.pkcs12",
            format!(
                "cannot open {} (wrong password in tls.pkcs12_password_file, or not a PKCS#12 \
                 file): {e}",
                path.display()
            ),
        )
    })?;
    let (_, chain) = store.private_key_chain().ok_or_else(|| {
        ConfigError::new(
            "tls.pkcs12",
            format!("{} holds no private key with a certificate", path.display()),
        )
    })?;
    let certs = chain
        .certs()
        .iter()
        .map(|c| CertificateDer::from(c.as_der().to_vec()))
        .collect();
    let key = PrivatePkcs8KeyDer::from(chain.key().as_der().to_vec());
    Ok(ServerIdentity {
        chain: certs,
        key: PrivateKeyDer::Pkcs8(key),
        setting: "tls.pkcs12",
    })
}

/// The password is the file's content without the trailing newline (as `echo pw > file`
/// writes it); other whitespace is part of the password.
fn read_password(path: &Path) -> Result<Zeroizing<String>, ConfigError> {
    crate::secret_file::warn_if_exposed(path, "TLS PKCS#12 password");
    let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
        ConfigError::new(
            "tls.pkcs12_password_file",
            format!("cannot read {}: {e}", path.display()),
        )
    })?);
    let password = text.strip_suffix('\n').unwrap_or(&text);
    let password = password.strip_suffix('\r').unwrap_or(password);
    Ok(Zeroizing::new(password.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_keeps_inner_whitespace_and_drops_the_final_newline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pw");
        std::fs::write(&path, " a b \r\n").unwrap();
        assert_eq!(read_password(&path).unwrap().as_str(), " a b ");
        std::fs::write(&path, "secret").unwrap();
        assert_eq!(read_password(&path).unwrap().as_str(), "secret");
    }

    #[test]
    fn missing_and_garbage_files_name_the_setting() {
        let dir = tempfile::tempdir().unwrap();
        let garbage = dir.path().join("garbage");
        std::fs::write(&garbage, "not pem").unwrap();
        let config = TlsConfig {
            cert: Some(garbage.clone()),
            key: Some(garbage.clone()),
            ..Default::default()
        };
        assert_eq!(
            load(&config).err().map(|e| e.setting).as_deref(),
            Some("tls.cert")
        );

        let config = TlsConfig {
            pkcs12: Some(garbage.clone()),
            pkcs12_password_file: Some(garbage),
            ..Default::default()
        };
        assert_eq!(
            load(&config).err().map(|e| e.setting).as_deref(),
            Some("tls.pkcs12")
        );

        let config = TlsConfig {
            pkcs12: Some(dir.path().join("absent.p12")),
            pkcs12_password_file: Some(dir.path().join("absent.pw")),
            ..Default::default()
        };
        assert_eq!(
            load(&config).err().map(|e| e.setting).as_deref(),
            Some("tls.pkcs12_password_file")
        );
    }
}
