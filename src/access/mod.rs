//! Who may use the signing API, and for which keys: the Host-header allow-list, client
//! identities (TLS certificate fingerprint or bearer token) and per-client key scopes.
//!
//! SCAFFOLD: the types are final; the behaviour is filled in by the TLS/access work (#6).

use std::fmt;
use std::path::PathBuf;

use serde::Deserialize;

use crate::keys::PubkeyBytes;

/// `[access]`: the Host allow-list and the known clients with their key scopes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccessConfig {
    /// Host header values accepted by the signing API (name, optionally with `:port`);
    /// `*` accepts any. Default: localhost names only, a guard against DNS rebinding.
    pub allowed_hosts: Vec<String>,
    /// Refuse (403) requests whose identity matches no `[[access.clients]]` entry.
    pub require_known_client: bool,
    /// Known clients, each identified by certificate fingerprints and/or a token.
    pub clients: Vec<ClientConfig>,
}

/// One `[[access.clients]]` entry.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClientConfig {
    /// Name used in logs and the audit log.
    pub name: String,
    /// SHA-256 fingerprints of the client's TLS certificates (hex, `:` separators allowed).
    pub fingerprints: Vec<String>,
    /// File holding a bearer token that identifies this client on the signing API.
    pub token_file: Option<PathBuf>,
    /// If set, the only pubkeys this client may sign with (others: 403).
    pub pubkeys: Option<Vec<String>>,
}

impl Default for AccessConfig {
    fn default() -> Self {
        Self {
            allowed_hosts: vec!["localhost".into(), "127.0.0.1".into(), "[::1]".into()],
            require_known_client: false,
            clients: Vec::new(),
        }
    }
}

/// Who sent a request, as resolved from the TLS session and headers. Inserted into every
/// request's extensions by the access layer; handlers read it for scopes and the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientIdentity {
    /// No client certificate and no client token.
    Anonymous,
    /// A TLS client certificate, by SHA-256 fingerprint; `name` if it is a known client.
    Certificate {
        /// SHA-256 of the DER certificate.
        fingerprint: [u8; 32],
        /// The `[[access.clients]]` name, if listed.
        name: Option<String>,
    },
    /// A bearer token of a known client.
    Token {
        /// The `[[access.clients]]` name.
        name: String,
    },
}

impl fmt::Display for ClientIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientIdentity::Anonymous => f.write_str("anonymous"),
            ClientIdentity::Certificate {
                fingerprint,
                name: Some(name),
            } => write!(f, "cert:{name}:{}", hex::encode(fingerprint)),
            ClientIdentity::Certificate {
                fingerprint,
                name: None,
            } => write!(f, "cert:{}", hex::encode(fingerprint)),
            ClientIdentity::Token { name } => write!(f, "token:{name}"),
        }
    }
}

/// A key a client may not use.
#[derive(Debug, thiserror::Error)]
#[error("client {client} may not sign with this key")]
pub struct OutOfScope {
    /// The client, as displayed in logs.
    pub client: String,
}

/// The compiled access rules.
#[derive(Debug, Default)]
pub struct AccessPolicy {}

impl AccessPolicy {
    /// A policy that allows everything (tests, and no `[access]` rules).
    pub fn permissive() -> Self {
        Self::default()
    }

    /// Ok if `client` may sign with `pubkey`.
    pub fn check_key(
        &self,
        _client: &ClientIdentity,
        _pubkey: &PubkeyBytes,
    ) -> Result<(), OutOfScope> {
        Ok(())
    }
}
