//! Remote keys: keys whose signatures another Web3Signer-compatible signer makes (another
//! keyguard, or Web3Signer itself), configured as
//!
//! ```toml
//! [[keys.remote]]
//! url = "http://10.0.0.2:9000"        # the remote signer's API (plain HTTP)
//! pubkeys = ["0x8b…", "0xa3…"]        # the keys it signs for
//! timeout_ms = 5000                   # per request (default 5000)
//! token_file = "/etc/keyguard/remote-token"  # optional: sent as `Authorization: Bearer`
//! ```
//!
//! Design. The Web3Signer API signs *requests*, never bare signing roots (a signer that
//! signed any root would be a slashing oracle), so this backend forwards the original
//! request body unchanged to `POST {url}/api/v1/eth2/sign/{pubkey}`. Everything that makes
//! the signature safe happens here first, as for a local key: the signing root is
//! recomputed from the body, the client's scope is checked, and a block or attestation is
//! recorded durably in this signer's slashing database. The answer is then verified
//! against the configured pubkey and the locally recomputed root before it is released
//! (see `signer::sign`), so a remote that signs something else, or is not who it claims,
//! can cause a refusal (5xx) but never a wrong signature. The remote applies its own
//! slashing protection as well; a refusal there is a 5xx here, with its message.
//!
//! Plain HTTP only for now: the request bodies are public data and every answer is
//! verified, but a network attacker could still deny service; run it on a trusted link.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper::header::{HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde::Deserialize;

use super::backend::{BackendError, RemoteSignFuture, RemoteSignRequest, RemoteSigner};
use super::{KeySource, LoadJob, PubkeyBytes, SignatureBytes, ValidatorKey};

/// The default per-request time limit.
pub const DEFAULT_TIMEOUT_MS: u64 = 5000;

/// The largest answer read from a remote signer (a signature is under 300 bytes).
const MAX_ANSWER_BYTES: usize = 16 * 1024;

/// Longest error message kept from a remote's answer.
const MAX_MESSAGE_CHARS: usize = 300;

/// One `[[keys.remote]]` entry: a remote signer and the keys it signs for.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RemoteKeysConfig {
    /// Base URL of the remote signer's Web3Signer API (`http://host:port[/prefix]`).
    pub url: String,
    /// The keys it signs for (hex, with or without `0x`).
    pub pubkeys: Vec<String>,
    /// Time limit for one sign request, in milliseconds.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// A file holding a bearer token for the remote signer, when it requires one.
    #[serde(default)]
    pub token_file: Option<PathBuf>,
}

fn default_timeout_ms() -> u64 {
    DEFAULT_TIMEOUT_MS
}

/// A `[[keys.remote]]` entry that cannot be used; the server does not start.
#[derive(Debug, thiserror::Error)]
pub enum RemoteConfigError {
    /// The URL is not an `http://` URL.
    #[error("keys.remote url `{url}`: {reason}")]
    BadUrl {
        /// The configured URL.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A pubkey is not a valid BLS public key.
    #[error("keys.remote ({url}): `{pubkey}` is not a valid BLS public key")]
    BadPubkey {
        /// The remote's URL.
        url: String,
        /// The configured value.
        pubkey: String,
    },
    /// An entry without keys.
    #[error("keys.remote ({0}): pubkeys is empty")]
    NoPubkeys(String),
    /// A zero time limit.
    #[error("keys.remote ({0}): timeout_ms must be above 0")]
    ZeroTimeout(String),
    /// The token file cannot be read, or is not a valid header value.
    #[error("keys.remote token_file {}: {reason}", path.display())]
    Token {
        /// The configured path.
        path: PathBuf,
        /// Why it cannot be used (never the token).
        reason: String,
    },
}

/// One load job per configured remote key. Each entry's signer (and its connection pool)
/// is built here, so a configuration mistake stops the start rather than failing later.
pub fn load_jobs(configs: &[RemoteKeysConfig]) -> Result<Vec<LoadJob>, RemoteConfigError> {
    let mut jobs = Vec::new();
    for config in configs {
        let signer: Arc<dyn RemoteSigner> = Arc::new(Web3SignerRemote::new(config)?);
        let pubkeys = parse_pubkeys(config)?;
        let origin = signer_origin(&config.url);
        for pubkey in pubkeys {
            let signer = Arc::clone(&signer);
            let origin = origin.clone();
            let job = LoadJob::new(origin.clone(), move || {
                Ok(ValidatorKey::remote(pubkey, signer, origin))
            });
            jobs.push(job.with_source(KeySource::Remote));
        }
    }
    Ok(jobs)
}

/// A remote key's origin, as `keys list` and `/healthcheck` show it.
fn signer_origin(url: &str) -> String {
    format!("remote {}", url.trim_end_matches('/'))
}

fn parse_pubkeys(config: &RemoteKeysConfig) -> Result<Vec<PubkeyBytes>, RemoteConfigError> {
    if config.pubkeys.is_empty() {
        return Err(RemoteConfigError::NoPubkeys(config.url.clone()));
    }
    config
        .pubkeys
        .iter()
        .map(|text| {
            super::parse_pubkey(text)
                .filter(crate::bls::is_valid_pubkey)
                .ok_or_else(|| RemoteConfigError::BadPubkey {
                    url: config.url.clone(),
                    pubkey: text.clone(),
                })
        })
        .collect()
}

/// A remote signer reached over the Web3Signer HTTP API.
pub struct Web3SignerRemote {
    /// `http://host:port[/prefix]`, without a trailing slash.
    base: String,
    client: Client<HttpConnector, Full<Bytes>>,
    timeout: Duration,
    authorization: Option<HeaderValue>,
}

impl Web3SignerRemote {
    /// A client for one `[[keys.remote]]` entry (no connection is made yet).
    pub fn new(config: &RemoteKeysConfig) -> Result<Self, RemoteConfigError> {
        let base = config.url.trim_end_matches('/').to_string();
        check_url(&base).map_err(|reason| RemoteConfigError::BadUrl {
            url: config.url.clone(),
            reason,
        })?;
        if config.timeout_ms == 0 {
            return Err(RemoteConfigError::ZeroTimeout(config.url.clone()));
        }
        let authorization = config
            .token_file
            .as_deref()
            .map(bearer_header)
            .transpose()?;
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .build_http();
        Ok(Self {
            base,
            client,
            timeout: Duration::from_millis(config.timeout_ms),
            authorization,
        })
    }

    /// One request and its answer: (status, body).
    async fn exchange(&self, request: RemoteSignRequest<'_>) -> Result<(u16, Bytes), BackendError> {
        let uri = format!(
            "{}/api/v1/eth2/sign/{}",
            self.base,
            super::pubkey_hex(request.pubkey)
        );
        let mut builder = hyper::Request::post(uri)
            .header(CONTENT_TYPE, "application/json")
            .header(ACCEPT, "application/json");
        if let Some(value) = &self.authorization {
            builder = builder.header(AUTHORIZATION, value.clone());
        }
        let http_request = builder
            .body(Full::new(Bytes::copy_from_slice(request.body)))
            .map_err(|e| BackendError::Unreachable(format!("cannot build the request: {e}")))?;
        let response = self
            .client
            .request(http_request)
            .await
            .map_err(|e| BackendError::Unreachable(error_chain(&e)))?;
        let status = response.status().as_u16();
        let body = Limited::new(response.into_body(), MAX_ANSWER_BYTES)
            .collect()
            .await
            .map_err(|e| BackendError::Unreachable(format!("reading the answer: {e}")))?
            .to_bytes();
        Ok((status, body))
    }
}

impl RemoteSigner for Web3SignerRemote {
    fn kind(&self) -> &'static str {
        "web3signer"
    }

    fn sign<'a>(&'a self, request: RemoteSignRequest<'a>) -> RemoteSignFuture<'a> {
        Box::pin(async move {
            let (status, body) = tokio::time::timeout(self.timeout, self.exchange(request))
                .await
                .map_err(|_| BackendError::Timeout(self.timeout.as_millis() as u64))??;
            if status != 200 {
                return Err(BackendError::Status {
                    status,
                    message: answer_message(&body),
                });
            }
            parse_signature(&body)
        })
    }
}

/// Only `http://host[:port][/prefix]` is accepted.
fn check_url(base: &str) -> Result<(), String> {
    let uri: hyper::Uri = base.parse().map_err(|e| format!("not a URL: {e}"))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some("https") => {
            return Err("https is not supported yet; use http on a trusted link".into())
        }
        _ => return Err("must start with http://".into()),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err("has no host".into());
    }
    if uri.query().is_some() {
        return Err("must not have a query".into());
    }
    Ok(())
}

/// `Bearer <token>` from the first line of `path`, marked sensitive (never logged).
fn bearer_header(path: &Path) -> Result<HeaderValue, RemoteConfigError> {
    let failed = |reason: String| RemoteConfigError::Token {
        path: path.to_path_buf(),
        reason,
    };
    let text =
        zeroize::Zeroizing::new(std::fs::read_to_string(path).map_err(|e| failed(e.to_string()))?);
    let token = text.lines().next().unwrap_or("").trim();
    if token.is_empty() {
        return Err(failed("the file is empty".into()));
    }
    let mut value = HeaderValue::from_str(&format!("Bearer {token}"))
        .map_err(|_| failed("the token has characters a header cannot carry".into()))?;
    value.set_sensitive(true);
    Ok(value)
}

/// The signature of a 200 answer: `{"signature": "0x…"}` or the bare hex string.
fn parse_signature(body: &[u8]) -> Result<SignatureBytes, BackendError> {
    let text = std::str::from_utf8(body)
        .map_err(|_| BackendError::Malformed("the answer is not UTF-8".into()))?
        .trim();
    let hex_text = if text.starts_with('{') {
        #[derive(Deserialize)]
        struct Answer {
            signature: String,
        }
        serde_json::from_str::<Answer>(text)
            .map_err(|e| BackendError::Malformed(e.to_string()))?
            .signature
    } else {
        text.to_string()
    };
    let digits = hex_text.strip_prefix("0x").unwrap_or(&hex_text);
    let mut signature = [0u8; 96];
    hex::decode_to_slice(digits, &mut signature)
        .map_err(|_| BackendError::Malformed("not 96 bytes of hex".into()))?;
    Ok(signature)
}

/// A short, printable message from an error answer (its JSON `message` when there is one).
fn answer_message(body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct ErrorAnswer {
        message: String,
    }
    let text = match serde_json::from_slice::<ErrorAnswer>(body) {
        Ok(answer) => answer.message,
        Err(_) => String::from_utf8_lossy(body).trim().to_string(),
    };
    text.chars()
        .filter(|c| !c.is_control())
        .take(MAX_MESSAGE_CHARS)
        .collect()
}

/// An error and its causes, joined (hyper's top-level message alone says little).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(url: &str, pubkeys: &[&str]) -> RemoteKeysConfig {
        RemoteKeysConfig {
            url: url.into(),
            pubkeys: pubkeys.iter().map(|s| s.to_string()).collect(),
            timeout_ms: 1000,
            token_file: None,
        }
    }

    fn interop_pubkey(i: u64) -> String {
        let key = ValidatorKey::from_secret_bytes(
            &super::super::interop_secret(i),
            KeySource::Interop,
            "t",
        )
        .unwrap();
        super::super::pubkey_hex(key.pubkey())
    }

    #[test]
    fn urls_must_be_plain_http_with_a_host() {
        assert!(check_url("http://127.0.0.1:9000").is_ok());
        assert!(check_url("http://signer.internal/prefix").is_ok());
        assert!(check_url("https://x:1").unwrap_err().contains("https"));
        assert!(check_url("ftp://x").is_err());
        assert!(check_url("127.0.0.1:9000").is_err());
        assert!(check_url("http://x/?a=b").is_err());
    }

    #[test]
    fn config_mistakes_stop_the_start() {
        let pk = interop_pubkey(0);
        assert!(matches!(
            load_jobs(&[config("http://x:1", &[])]),
            Err(RemoteConfigError::NoPubkeys(_))
        ));
        assert!(matches!(
            load_jobs(&[config("http://x:1", &["0x1234"])]),
            Err(RemoteConfigError::BadPubkey { .. })
        ));
        let zero = format!("0x{}", "00".repeat(48));
        assert!(matches!(
            load_jobs(&[config("http://x:1", &[&zero])]),
            Err(RemoteConfigError::BadPubkey { .. })
        ));
        assert!(matches!(
            load_jobs(&[config("https://x:1", &[&pk])]),
            Err(RemoteConfigError::BadUrl { .. })
        ));
        let mut no_time = config("http://x:1", &[&pk]);
        no_time.timeout_ms = 0;
        assert!(matches!(
            load_jobs(&[no_time]),
            Err(RemoteConfigError::ZeroTimeout(_))
        ));
    }

    #[tokio::test]
    async fn each_pubkey_becomes_a_remote_key() {
        let (a, b) = (interop_pubkey(0), interop_pubkey(1));
        let jobs = load_jobs(&[config("http://127.0.0.1:9/", &[&a, &b])]).unwrap();
        assert_eq!(jobs.len(), 2);
        for (job, expected) in jobs.into_iter().zip([a, b]) {
            assert_eq!(job.source, Some(KeySource::Remote));
            let key = (job.run)().unwrap();
            assert_eq!(super::super::pubkey_hex(key.pubkey()), expected);
            assert_eq!(key.origin(), "remote http://127.0.0.1:9");
            assert_eq!(key.backend().kind(), "web3signer");
            assert!(key.secret_bytes().is_err());
        }
    }

    #[test]
    fn token_file_becomes_a_sensitive_bearer_header() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "s3cret\n").unwrap();
        let value = bearer_header(&path).unwrap();
        assert!(value.is_sensitive());
        assert_eq!(value.to_str().unwrap(), "Bearer s3cret");
        std::fs::write(&path, "\n").unwrap();
        let err = bearer_header(&path).unwrap_err();
        assert!(!err.to_string().contains("s3cret"));
    }

    #[test]
    fn signatures_parse_from_json_or_text() {
        let hex_sig = format!("0x{}", "ab".repeat(96));
        let json = format!("{{\"signature\":\"{hex_sig}\"}}");
        assert_eq!(parse_signature(json.as_bytes()).unwrap(), [0xab; 96]);
        assert_eq!(parse_signature(hex_sig.as_bytes()).unwrap(), [0xab; 96]);
        assert!(matches!(
            parse_signature(b"{\"signature\":\"0x12\"}"),
            Err(BackendError::Malformed(_))
        ));
        assert!(matches!(
            parse_signature(b"<html>"),
            Err(BackendError::Malformed(_))
        ));
    }

    #[test]
    fn error_answers_keep_a_short_message() {
        assert_eq!(
            answer_message(b"{\"message\":\"double vote\"}"),
            "double vote"
        );
        assert_eq!(answer_message(b"  oops\n"), "oops");
        assert_eq!(answer_message(&[b'x'; 1000]).len(), MAX_MESSAGE_CHARS);
    }
}
