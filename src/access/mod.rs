//! Who may use the signing API, and for which keys: the Host-header allow-list, client
//! identities (TLS certificate fingerprint or bearer token) and per-client key scopes.
//!
//! Decisions, in request order (the access layer in `api::access_layer` applies them):
//! 1. Host header against `access.allowed_hosts` (every route of the signing listener);
//! 2. identity (signing routes `/api/v1/eth2/*`): the TLS client certificate if there is
//!    one, else an `Authorization: Bearer` token of a known client, else anonymous;
//! 3. `access.require_known_client`: anonymous and unnamed certificates are refused;
//! 4. key scope ([`AccessPolicy::check_key`]) in the signing handler.

pub mod hosts;

use std::collections::HashMap;

pub use crate::config::access::{AccessConfig, ClientConfig};
pub use crate::identity::ClientIdentity;

use crate::config::error::ConfigError;
use crate::identity::clients::{self, Client, TokenDigest};
use crate::identity::fingerprint::Fingerprint;
use crate::identity::known_clients::KnownClient;
use crate::keys::PubkeyBytes;
use hosts::HostAllowList;

/// A key a client may not use.
#[derive(Debug, thiserror::Error)]
#[error("client {client} may not sign with this key")]
pub struct OutOfScope {
    /// The client, as displayed in logs.
    pub client: String,
}

/// A request refused before it reaches a handler.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    /// Malformed credentials (401).
    #[error("{0}")]
    Unauthorized(String),
    /// Credentials or a Host that are not accepted (403).
    #[error("{0}")]
    Forbidden(String),
}

/// The compiled access rules.
#[derive(Debug)]
pub struct AccessPolicy {
    hosts: HostAllowList,
    require_known_client: bool,
    clients: Vec<Client>,
    /// Client names by certificate: `[[access.clients]]` first, then `tls.known_clients`.
    cert_names: HashMap<Fingerprint, String>,
    /// Index into `clients` by name, for key scopes.
    by_name: HashMap<String, usize>,
}

impl Default for AccessPolicy {
    fn default() -> Self {
        Self::permissive()
    }
}

impl AccessPolicy {
    /// A policy that allows everything (tests, and no `[access]` rules).
    pub fn permissive() -> Self {
        Self {
            hosts: HostAllowList::Any,
            require_known_client: false,
            clients: Vec::new(),
            cert_names: HashMap::new(),
            by_name: HashMap::new(),
        }
    }

    /// Compiles `[access]`, reading token files; `known` is the parsed
    /// `tls.known_clients` file (names for certificates not in `[[access.clients]]`).
    pub fn from_config(config: &AccessConfig, known: &[KnownClient]) -> Result<Self, ConfigError> {
        let hosts = HostAllowList::new(&config.allowed_hosts)
            .map_err(|e| ConfigError::new("access.allowed_hosts", e.to_string()))?;
        let clients = clients::compile(&config.clients)?;
        let mut cert_names = HashMap::new();
        for k in known {
            cert_names.insert(k.fingerprint, k.name.clone());
        }
        for c in &clients {
            for fp in &c.fingerprints {
                cert_names.insert(*fp, c.name.clone());
            }
        }
        let by_name = clients
            .iter()
            .enumerate()
            .map(|(i, c)| (c.name.clone(), i))
            .collect();
        Ok(Self {
            hosts,
            require_known_client: config.require_known_client,
            clients,
            cert_names,
            by_name,
        })
    }

    /// Ok if the Host header (`None`: absent) is in `access.allowed_hosts`.
    pub fn check_host(&self, host: Option<&str>) -> Result<(), Denied> {
        if self.hosts.allows(host) {
            return Ok(());
        }
        Err(Denied::Forbidden(match host {
            None => "the request has no Host header; HTTP/1.1 requires one".to_string(),
            Some(h) => format!(
                "Host header `{}` is not allowed; add it to access.allowed_hosts",
                h.chars().take(256).collect::<String>()
            ),
        }))
    }

    /// Who is calling: the TLS client certificate wins; else `authorization` (the
    /// `Authorization` header, if any) must be `Bearer <token of a known client>`; else
    /// anonymous. With `access.require_known_client`, only named clients pass.
    pub fn identify(
        &self,
        certificate: Option<&Fingerprint>,
        authorization: Option<&str>,
    ) -> Result<ClientIdentity, Denied> {
        let identity = match (certificate, authorization) {
            (Some(fp), _) => self.certificate_identity(fp),
            (None, Some(header)) => self.identify_token(header)?,
            (None, None) => ClientIdentity::Anonymous,
        };
        if self.require_known_client && !is_named(&identity) {
            return Err(Denied::Forbidden(format!(
                "client {identity} is not a known client (access.require_known_client)"
            )));
        }
        Ok(identity)
    }

    /// The identity of a verified client certificate, named if it is a known client.
    pub fn certificate_identity(&self, fingerprint: &Fingerprint) -> ClientIdentity {
        ClientIdentity::Certificate {
            fingerprint: *fingerprint,
            name: self.cert_names.get(fingerprint).cloned(),
        }
    }

    fn identify_token(&self, header: &str) -> Result<ClientIdentity, Denied> {
        let token = bearer_token(header).ok_or_else(|| {
            Denied::Unauthorized("the Authorization header must be `Bearer <token>`".into())
        })?;
        let digest = TokenDigest::of(token.as_bytes());
        // Every token is compared, so the time taken does not tell which one matched.
        let mut found = None;
        for client in &self.clients {
            if client.token.as_ref().is_some_and(|t| t.matches(&digest)) {
                found = Some(client.name.clone());
            }
        }
        found
            .map(|name| ClientIdentity::Token { name })
            .ok_or_else(|| {
                Denied::Forbidden("the bearer token matches no access.clients entry".into())
            })
    }

    /// True if `client` may use `pubkey`: clients without a scope may use every key.
    pub fn may_use(&self, client: &ClientIdentity, pubkey: &PubkeyBytes) -> bool {
        let scope = client_name(client)
            .and_then(|name| self.by_name.get(name))
            .and_then(|&i| self.clients[i].scope.as_ref());
        scope.is_none_or(|keys| keys.contains(pubkey))
    }

    /// Ok if `client` may sign with `pubkey`.
    pub fn check_key(
        &self,
        client: &ClientIdentity,
        pubkey: &PubkeyBytes,
    ) -> Result<(), OutOfScope> {
        if self.may_use(client, pubkey) {
            return Ok(());
        }
        Err(OutOfScope {
            client: client.to_string(),
        })
    }
}

/// The `[[access.clients]]` or known-clients name of an identity.
fn client_name(identity: &ClientIdentity) -> Option<&str> {
    match identity {
        ClientIdentity::Certificate { name, .. } => name.as_deref(),
        ClientIdentity::Token { name } => Some(name),
        ClientIdentity::Anonymous => None,
    }
}

fn is_named(identity: &ClientIdentity) -> bool {
    client_name(identity).is_some()
}

/// The token of `Bearer <token>` (scheme case-insensitive, RFC 6750).
fn bearer_token(header: &str) -> Option<&str> {
    let (scheme, token) = header.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Checks `[access]` as far as it can be without the known-clients file (see
/// `Config::validate`); `known_clients_file` tells whether `tls.known_clients` is set.
pub fn validate(config: &AccessConfig, known_clients_file: bool) -> Result<(), ConfigError> {
    if config.allowed_hosts.is_empty() {
        return Err(ConfigError::new(
            "access.allowed_hosts",
            "an empty list refuses every request; use [\"*\"] to accept any Host",
        ));
    }
    HostAllowList::new(&config.allowed_hosts)
        .map_err(|e| ConfigError::new("access.allowed_hosts", e.to_string()))?;
    if config.require_known_client && config.clients.is_empty() && !known_clients_file {
        return Err(ConfigError::new(
            "access.require_known_client",
            "no client is known ([[access.clients]] and tls.known_clients are empty), so every \
             signing request would be refused",
        ));
    }
    // Names, fingerprints, pubkeys and token files: the same checks as at start-up.
    clients::compile(&config.clients).map(drop)
}

#[cfg(test)]
mod tests;
