//! Who may use the signing API, for which keys and which request types: the Host-header
//! allow-list, client identities (TLS certificate fingerprint or bearer token), and
//! per-client key scopes and request types.
//!
//! Decisions, in request order (the access layer in `api::access_layer` applies 1-3, the
//! signing pipeline 4-5):
//! 1. Host header against `access.allowed_hosts` (every route of the signing listener);
//! 2. identity (signing routes `/api/v1/eth2/*`): a client certificate named by
//!    `[[access.clients]]` or `tls.known_clients`; else an `Authorization: Bearer` token
//!    of a known client (also under an unnamed certificate); else the unnamed certificate,
//!    or anonymous. A named certificate with a token of another client is refused;
//! 3. `access.require_known_client`: anonymous and unnamed certificates are refused;
//! 4. key scope ([`AccessPolicy::check_key`]) on the parsed pubkey, before the key table
//!    is consulted. Fail closed: once any client has `pubkeys`, identities without them
//!    get no key;
//! 5. request type ([`AccessPolicy::check_type`]): a client's `types`, or every type but
//!    `DEPOSIT`.

pub mod hosts;

use std::collections::HashMap;

pub use crate::config::access::{AccessConfig, ClientConfig};
pub use crate::identity::ClientIdentity;

use crate::config::error::ConfigError;
use crate::consensus::RequestType;
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

/// A request type a client may not sign.
#[derive(Debug, thiserror::Error)]
#[error("client {client} may not sign {request_type} requests{hint}")]
pub struct TypeNotAllowed {
    /// The client, as displayed in logs.
    pub client: String,
    /// The refused type.
    pub request_type: &'static str,
    /// How to allow it, for `DEPOSIT`.
    hint: &'static str,
}

/// Why the access layer refused a request: the `reason` of its `access_refused` audit
/// line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DenyReason {
    /// The Host header is missing or not in `access.allowed_hosts`.
    HostNotAllowed,
    /// The `Authorization` header is not `Bearer <token>`.
    MalformedAuthorization,
    /// The bearer token matches no client.
    UnknownToken,
    /// A named client certificate came with the token of another client.
    CredentialsDisagree,
    /// `access.require_known_client` and the caller is anonymous or an unnamed certificate.
    UnknownClient,
}

impl DenyReason {
    /// Every reason, for documentation tests.
    pub const ALL: [DenyReason; 5] = [
        DenyReason::HostNotAllowed,
        DenyReason::MalformedAuthorization,
        DenyReason::UnknownToken,
        DenyReason::CredentialsDisagree,
        DenyReason::UnknownClient,
    ];

    /// The stable snake_case name written to the audit log.
    pub fn as_str(&self) -> &'static str {
        match self {
            DenyReason::HostNotAllowed => "host_not_allowed",
            DenyReason::MalformedAuthorization => "malformed_authorization",
            DenyReason::UnknownToken => "unknown_token",
            DenyReason::CredentialsDisagree => "credentials_disagree",
            DenyReason::UnknownClient => "unknown_client",
        }
    }
}

/// A request refused before it reaches a handler.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    /// Malformed credentials (401).
    #[error("{1}")]
    Unauthorized(DenyReason, String),
    /// Credentials or a Host that are not accepted (403).
    #[error("{1}")]
    Forbidden(DenyReason, String),
}

impl Denied {
    /// Why, for the audit log.
    pub fn reason(&self) -> DenyReason {
        match self {
            Denied::Unauthorized(reason, _) | Denied::Forbidden(reason, _) => *reason,
        }
    }
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
    /// Some client has `pubkeys`: identities without them get no key (fail closed).
    scoped: bool,
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
            scoped: false,
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
        let scoped = clients.iter().any(|c| c.scope.is_some());
        Ok(Self {
            hosts,
            require_known_client: config.require_known_client,
            clients,
            cert_names,
            by_name,
            scoped,
        })
    }

    /// Ok if the Host header (`None`: absent) is in `access.allowed_hosts`.
    pub fn check_host(&self, host: Option<&str>) -> Result<(), Denied> {
        if self.hosts.allows(host) {
            return Ok(());
        }
        Err(Denied::Forbidden(
            DenyReason::HostNotAllowed,
            match host {
                None => "the request has no Host header; HTTP/1.1 requires one".to_string(),
                Some(h) => format!(
                    "Host header `{}` is not allowed; add it to access.allowed_hosts",
                    h.chars().take(256).collect::<String>()
                ),
            },
        ))
    }

    /// Who is calling: a named client certificate; else `authorization` (the
    /// `Authorization` header, if any), which must be `Bearer <token of a known client>`;
    /// else the unnamed certificate, or anonymous. A token that does not match, or that
    /// names another client than a named certificate, is refused rather than ignored.
    /// With `access.require_known_client`, only named clients pass.
    pub fn identify(
        &self,
        certificate: Option<&Fingerprint>,
        authorization: Option<&str>,
    ) -> Result<ClientIdentity, Denied> {
        let certificate = certificate.map(|fp| self.certificate_identity(fp));
        let identity = match (certificate, authorization) {
            (Some(cert), None) => cert,
            (None, None) => ClientIdentity::Anonymous,
            (None, Some(header)) => self.identify_token(header)?,
            (Some(cert), Some(header)) => match (client_name(&cert), self.identify_token(header)?) {
                (None, token) => token,
                (Some(cert_name), token) if client_name(&token) == Some(cert_name) => cert,
                (Some(_), token) => {
                    return Err(Denied::Forbidden(
                        DenyReason::CredentialsDisagree,
                        format!("the client certificate ({cert}) and the bearer token ({token}) name different clients"),
                    ))
                }
            },
        };
        if self.require_known_client && !is_named(&identity) {
            return Err(Denied::Forbidden(
                DenyReason::UnknownClient,
                format!("client {identity} is not a known client (access.require_known_client)"),
            ));
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
            Denied::Unauthorized(
                DenyReason::MalformedAuthorization,
                "the Authorization header must be `Bearer <token>`".into(),
            )
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
                Denied::Forbidden(
                    DenyReason::UnknownToken,
                    "the bearer token matches no access.clients entry".into(),
                )
            })
    }

    /// The `[[access.clients]]` entry of `client`, if it has one.
    fn entry(&self, client: &ClientIdentity) -> Option<&Client> {
        client_name(client)
            .and_then(|name| self.by_name.get(name))
            .map(|&i| &self.clients[i])
    }

    /// True if `client` may use `pubkey`: the client's `pubkeys` decide; an identity
    /// without them (no entry, or an entry without `pubkeys`) may use every key only
    /// while no client at all has `pubkeys`, and none once one has (fail closed).
    pub fn may_use(&self, client: &ClientIdentity, pubkey: &PubkeyBytes) -> bool {
        match self.entry(client).and_then(|c| c.scope.as_ref()) {
            Some(scope) => scope.contains(pubkey),
            None => !self.scoped,
        }
    }

    /// Ok if `client` may sign requests of `request_type`: the client's `types`, or,
    /// without them, every type but `DEPOSIT` (validator clients never send deposits in
    /// normal work, and a deposit signed with another withdrawal credential front-runs a
    /// new key).
    pub fn check_type(
        &self,
        client: &ClientIdentity,
        request_type: RequestType,
    ) -> Result<(), TypeNotAllowed> {
        let allowed = match self.entry(client).and_then(|c| c.types.as_ref()) {
            Some(types) => types.contains(&request_type),
            None => request_type != RequestType::Deposit,
        };
        if allowed {
            return Ok(());
        }
        let hint = if request_type == RequestType::Deposit {
            " (DEPOSIT needs a client whose types list it)"
        } else {
            ""
        };
        Err(TypeNotAllowed {
            client: client.to_string(),
            request_type: request_type.as_str(),
            hint,
        })
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
    // Names, fingerprints, pubkeys, types and token files: the same checks as at start-up.
    clients::compile(&config.clients).map(drop)
}

#[cfg(test)]
mod tests;
