//! TLS test material and a keyguard process served over TLS: a throw-away PKI made with
//! `rcgen` (CAs, server and client certificates, expired ones), PKCS#12 files, and HTTPS
//! clients that trust only the test CA.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::bail;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

use crate::keyguard_process::KeyguardProcess;

/// A certificate and its private key.
pub struct CertKey {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// The private key, PKCS#8 PEM.
    pub key_pem: String,
    /// The certificate, DER.
    pub cert_der: Vec<u8>,
    /// The private key, PKCS#8 DER.
    pub key_der: Vec<u8>,
}

impl CertKey {
    fn new(cert: &rcgen::Certificate, key: &KeyPair) -> Self {
        Self {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            cert_der: cert.der().to_vec(),
            key_der: key.serialize_der(),
        }
    }

    /// The certificate's SHA-256 fingerprint, as colon-separated upper-case hex (the form
    /// Web3Signer's known-clients file uses), computed independently of keyguard.
    pub fn fingerprint(&self) -> String {
        use sha2::Digest;
        sha2::Sha256::digest(&self.cert_der)
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect::<Vec<_>>()
            .join(":")
    }

    /// A reqwest client identity (certificate followed by key).
    pub fn identity(&self) -> reqwest::Identity {
        let pem = format!("{}{}", self.cert_pem, self.key_pem);
        reqwest::Identity::from_pem(pem.as_bytes()).expect("test identity")
    }
}

/// A certificate authority of the test PKI.
pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// Validity of a certificate, relative to now.
#[derive(Clone, Copy)]
pub enum Validity {
    /// From a day ago to a year ahead.
    Current,
    /// Expired yesterday.
    Expired,
}

impl TestCa {
    /// A new self-signed CA named `name`.
    pub fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().expect("ca key");
        Self {
            issuer: CertifiedIssuer::self_signed(params, key).expect("ca cert"),
        }
    }

    /// The CA certificate, PEM.
    pub fn cert_pem(&self) -> String {
        self.issuer.pem()
    }

    /// A server certificate for `localhost` and `127.0.0.1`.
    pub fn server(&self) -> CertKey {
        self.server_for(&["localhost", "127.0.0.1"])
    }

    /// A server certificate for these DNS names or IP addresses (the first is its CN).
    pub fn server_for(&self, names: &[&str]) -> CertKey {
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .expect("server params");
        params.distinguished_name.push(
            DnType::CommonName,
            names.first().copied().unwrap_or("localhost"),
        );
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        set_validity(&mut params, Validity::Current);
        self.sign(&params)
    }

    /// A client certificate with common name `name`.
    pub fn client(&self, name: &str, validity: Validity) -> CertKey {
        let mut params = client_params(name);
        set_validity(&mut params, validity);
        self.sign(&params)
    }

    fn sign(&self, params: &CertificateParams) -> CertKey {
        let key = KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, &self.issuer).expect("sign");
        CertKey::new(&cert, &key)
    }
}

/// A self-signed client certificate (the usual known-clients case).
pub fn self_signed_client(name: &str) -> CertKey {
    let mut params = client_params(name);
    set_validity(&mut params, Validity::Current);
    let key = KeyPair::generate().expect("key");
    let cert = params.self_signed(&key).expect("self-sign");
    CertKey::new(&cert, &key)
}

fn client_params(name: &str) -> CertificateParams {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("client params");
    params.distinguished_name.push(DnType::CommonName, name);
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params
}

fn set_validity(params: &mut CertificateParams, validity: Validity) {
    let now = rcgen::date_time_ymd(1970, 1, 1)
        + std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock after 1970");
    let day = Duration::from_secs(86_400);
    let (from, to) = match validity {
        Validity::Current => (now - day, now + 365 * day),
        Validity::Expired => (now - 30 * day, now - day),
    };
    params.not_before = from;
    params.not_after = to;
}

/// A PKCS#12 file holding `identity` (key and certificate), encrypted with `password`.
pub fn pkcs12(identity: &CertKey, password: &str) -> Vec<u8> {
    let key = p12_keystore::PrivateKey::from_der(&identity.key_der).expect("pkcs8 key");
    let cert = p12_keystore::Certificate::from_der(&identity.cert_der).expect("cert");
    let chain = p12_keystore::PrivateKeyChain::new(b"server".as_slice(), key, [cert]);
    let mut store = p12_keystore::KeyStore::new();
    store.add_entry(
        "server",
        p12_keystore::KeyStoreEntry::PrivateKeyChain(chain),
    );
    store.writer(password).write().expect("write pkcs12")
}

/// An HTTPS client that trusts only `ca_pem`, presenting `identity` if given.
pub fn https_client(ca_pem: &str, identity: Option<&CertKey>) -> reqwest::blocking::Client {
    crate::install_crypto_provider();
    let ca = reqwest::Certificate::from_pem(ca_pem.as_bytes()).expect("ca pem");
    let mut builder = reqwest::blocking::Client::builder()
        .tls_certs_only([ca])
        .timeout(Duration::from_secs(10));
    if let Some(id) = identity {
        builder = builder.identity(id.identity());
    }
    builder.build().expect("https client")
}

/// A `keyguard run` process serving the signing API over TLS. It dereferences to the
/// [`KeyguardProcess`]: `url` is `https://127.0.0.1:PORT`, `metrics_url` plain HTTP.
pub struct TlsKeyguard {
    process: KeyguardProcess,
}

impl std::ops::Deref for TlsKeyguard {
    type Target = KeyguardProcess;

    fn deref(&self) -> &KeyguardProcess {
        &self.process
    }
}

impl TlsKeyguard {
    /// Starts `keyguard run ARGS` on free ports and waits until `/healthcheck` answers 200
    /// to `probe` (a client the server accepts).
    pub fn start(
        args: &[&str],
        log_dir: &Path,
        probe: &reqwest::blocking::Client,
    ) -> anyhow::Result<Self> {
        Self::start_at(args, log_dir, probe, crate::keyguard_process::free_port())
    }

    /// Like [`TlsKeyguard::start`], listening on `port`.
    pub fn start_at(
        args: &[&str],
        log_dir: &Path,
        probe: &reqwest::blocking::Client,
        port: u16,
    ) -> anyhow::Result<Self> {
        let mut kg = Self {
            process: KeyguardProcess::spawn_at(args, log_dir, "https", port)?,
        };
        kg.wait_healthy(probe, Duration::from_secs(30))?;
        Ok(kg)
    }

    fn wait_healthy(
        &mut self,
        probe: &reqwest::blocking::Client,
        timeout: Duration,
    ) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        let url = format!("{}/healthcheck", self.process.url);
        loop {
            self.process.check_running()?;
            if probe.get(&url).send().is_ok_and(|r| r.status() == 200) {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("keyguard did not become healthy; log:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
