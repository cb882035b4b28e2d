//! `[tls]` validation and the rustls server configuration built from it.

use std::path::PathBuf;

use rcgen::{CertificateParams, KeyPair};

use super::*;
use crate::access::ClientConfig;

struct Files {
    dir: tempfile::TempDir,
}

impl Files {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn write(&self, name: &str, content: &[u8]) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, content).unwrap();
        path
    }

    /// A self-signed server certificate and its key, as PEM files.
    fn server_pem(&self, prefix: &str) -> (PathBuf, PathBuf) {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec!["localhost".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        (
            self.write(&format!("{prefix}.crt"), cert.pem().as_bytes()),
            self.write(&format!("{prefix}.key"), key.serialize_pem().as_bytes()),
        )
    }
}

fn pem_config(cert: PathBuf, key: PathBuf) -> TlsConfig {
    TlsConfig {
        cert: Some(cert),
        key: Some(key),
        ..Default::default()
    }
}

#[test]
fn pem_identity_builds_a_server_config() {
    let f = Files::new();
    let (cert, key) = f.server_pem("server");
    let config = server_config(&pem_config(cert, key), &AccessConfig::default(), &[]).unwrap();
    assert_eq!(config.alpn_protocols, vec![b"http/1.1".to_vec()]);
}

#[test]
fn key_of_another_certificate_is_refused_naming_tls_key() {
    let f = Files::new();
    let (cert, _) = f.server_pem("a");
    let (_, other_key) = f.server_pem("b");
    let err =
        server_config(&pem_config(cert, other_key), &AccessConfig::default(), &[]).unwrap_err();
    assert_eq!(err.setting, "tls.key");
    assert!(err.message.contains("does not belong"), "{err}");
}

#[test]
fn unusable_client_ca_is_named() {
    let f = Files::new();
    let (cert, key) = f.server_pem("server");
    let mut config = pem_config(cert, key);
    config.client_ca = Some(f.write("ca.pem", b"not a certificate"));
    let err = server_config(&config, &AccessConfig::default(), &[]).unwrap_err();
    assert_eq!(err.setting, "tls.client_ca");
}

#[test]
fn settings_that_belong_together() {
    let f = Files::new();
    let (cert, key) = f.server_pem("server");
    let access = AccessConfig::default();
    let only_cert = TlsConfig {
        cert: Some(cert.clone()),
        ..Default::default()
    };
    assert_eq!(
        validate(&only_cert, &access).unwrap_err().setting,
        "tls.key"
    );
    let only_key = TlsConfig {
        key: Some(key.clone()),
        ..Default::default()
    };
    assert_eq!(
        validate(&only_key, &access).unwrap_err().setting,
        "tls.cert"
    );
    let both = TlsConfig {
        pkcs12: Some(cert.clone()),
        ..pem_config(cert.clone(), key.clone())
    };
    assert_eq!(validate(&both, &access).unwrap_err().setting, "tls.pkcs12");
    let p12_without_password = TlsConfig {
        pkcs12: Some(cert.clone()),
        ..Default::default()
    };
    assert_eq!(
        validate(&p12_without_password, &access)
            .unwrap_err()
            .setting,
        "tls.pkcs12_password_file"
    );
    assert!(validate(&pem_config(cert, key), &access).is_ok());
}

#[test]
fn missing_files_are_named() {
    let f = Files::new();
    let (cert, key) = f.server_pem("server");
    let access = AccessConfig::default();
    let absent = f.dir.path().join("absent");
    let err = validate(&pem_config(absent.clone(), key.clone()), &access).unwrap_err();
    assert_eq!(err.setting, "tls.cert");
    let mut config = pem_config(cert, key);
    config.known_clients = Some(absent);
    assert_eq!(
        validate(&config, &access).unwrap_err().setting,
        "tls.known_clients"
    );
}

#[test]
fn client_authentication_without_a_server_identity_is_an_error() {
    let access = AccessConfig::default();
    let with_ca = TlsConfig {
        client_ca: Some("ca.pem".into()),
        ..Default::default()
    };
    assert_eq!(
        validate(&with_ca, &access).unwrap_err().setting,
        "tls.client_ca"
    );
    let with_fp = TlsConfig {
        allowed_fingerprints: vec!["00".repeat(32)],
        ..Default::default()
    };
    assert_eq!(
        validate(&with_fp, &access).unwrap_err().setting,
        "tls.allowed_fingerprints"
    );
    let clients = AccessConfig {
        clients: vec![ClientConfig {
            name: "a".into(),
            fingerprints: vec!["00".repeat(32)],
            ..Default::default()
        }],
        ..Default::default()
    };
    assert_eq!(
        validate(&TlsConfig::default(), &clients)
            .unwrap_err()
            .setting,
        "access.clients[0].fingerprints"
    );
    assert!(validate(&TlsConfig::default(), &access).is_ok());
}

#[test]
fn bad_allowed_fingerprint_is_named() {
    let f = Files::new();
    let (cert, key) = f.server_pem("server");
    let mut config = pem_config(cert, key);
    config.allowed_fingerprints = vec!["abc".into()];
    assert_eq!(
        validate(&config, &AccessConfig::default())
            .unwrap_err()
            .setting,
        "tls.allowed_fingerprints"
    );
}

#[test]
fn allow_list_unites_every_source() {
    let config = TlsConfig {
        allowed_fingerprints: vec!["01".repeat(32)],
        ..Default::default()
    };
    let access = AccessConfig {
        clients: vec![ClientConfig {
            name: "c".into(),
            fingerprints: vec!["02".repeat(32)],
            ..Default::default()
        }],
        ..Default::default()
    };
    let known = [KnownClient {
        name: "k".into(),
        fingerprint: [3; 32],
    }];
    let allowed = allowed_fingerprints(&config, &access, &known).unwrap();
    let expected: HashSet<Fingerprint> = [[1; 32], [2; 32], [3; 32]].into_iter().collect();
    assert_eq!(allowed, expected);
}

#[test]
fn with_a_ca_client_fingerprints_name_clients_without_pinning() {
    let access = AccessConfig {
        clients: vec![ClientConfig {
            name: "c".into(),
            fingerprints: vec!["02".repeat(32)],
            ..Default::default()
        }],
        ..Default::default()
    };
    let ca_only = TlsConfig {
        client_ca: Some("ca.pem".into()),
        ..Default::default()
    };
    assert!(!ca_only.fingerprint_list_configured(&access));
    assert!(ca_only.client_auth_configured(&access));
    let ca_and_list = TlsConfig {
        client_ca: Some("ca.pem".into()),
        allowed_fingerprints: vec!["01".repeat(32)],
        ..Default::default()
    };
    let allowed = allowed_fingerprints(&ca_and_list, &access, &[]).unwrap();
    assert_eq!(allowed, [[1u8; 32]].into_iter().collect::<HashSet<_>>());
    let no_ca = TlsConfig::default();
    assert!(no_ca.fingerprint_list_configured(&access));
}
