//! `[access]`: the Host allow-list and the known clients with their key scopes, and its
//! flags. The policy compiled from it is in the `access` module.

use std::path::PathBuf;

use serde::Deserialize;

use super::overrides::set;

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
    /// If set, the only pubkeys this client may sign with (others: 403); `["*"]`: every
    /// key. Once any client has `pubkeys`, identities without them get no key.
    pub pubkeys: Option<Vec<String>>,
    /// If set, the only request types this client may sign (others: 403); without it,
    /// every type but `DEPOSIT`.
    pub types: Option<Vec<String>>,
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

/// Flags of `[access]`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct AccessArgs {
    /// Accepted Host header values, comma-separated; `*` accepts any [access.allowed_hosts].
    #[arg(
        global = true,
        long,
        env = "KEYGUARD_ALLOWED_HOSTS",
        value_name = "HOST,...",
        value_delimiter = ','
    )]
    pub allowed_hosts: Option<Vec<String>>,
    /// Refuse clients that match no [[access.clients]] entry [access.require_known_client].
    #[arg(
        global = true,
        long,
        env = "KEYGUARD_REQUIRE_KNOWN_CLIENT",
        value_name = "BOOL"
    )]
    pub require_known_client: Option<bool>,
}

impl AccessArgs {
    /// Applies the flags that were given to `c`.
    pub fn apply(&self, c: &mut AccessConfig) {
        set(&mut c.allowed_hosts, &self.allowed_hosts);
        set(&mut c.require_known_client, &self.require_known_client);
    }
}
