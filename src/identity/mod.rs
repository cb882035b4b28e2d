//! Who is calling: TLS client-certificate fingerprints, the Web3Signer known-clients file,
//! and the `[[access.clients]]` entries (names, fingerprints, bearer tokens, key scopes)
//! compiled for lookup. Both `tls` (which certificates to accept) and `access` (who a
//! request comes from, which keys it may use) build on this module; it knows neither.

pub mod clients;
pub mod fingerprint;
pub mod known_clients;

use std::fmt;

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
