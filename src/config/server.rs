//! `[server]`: the signing API listener, and its flags.

use std::net::SocketAddr;

use serde::Deserialize;

use super::error::ConfigError;
use super::overrides::{parse_addr, set, set_opt};

/// `[server]`: the signing API.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address and port of the signing API.
    pub listen: SocketAddr,
    /// Also serve every route under this prefix (e.g. `/signer`); the root path always works.
    pub http_path_prefix: Option<String>,
    /// Largest accepted request body in bytes; larger bodies get 413.
    pub max_body_bytes: usize,
    /// BLS signing threads; 0 means one per core.
    pub signing_threads: usize,
    /// Serve a non-loopback `listen` address even though clients need not authenticate
    /// (no TLS client certificates, no required client tokens); warned at every start.
    pub allow_insecure_listen: bool,
    /// A request head must arrive within this many milliseconds of its first byte (or of
    /// the connection opening).
    pub header_read_timeout_ms: u64,
    /// A request body must arrive within this many milliseconds of its head.
    pub body_read_timeout_ms: u64,
    /// A keep-alive connection idle this many milliseconds is closed.
    pub idle_timeout_ms: u64,
    /// Most connections open at once (lowered to fit the open-file limit).
    pub max_connections: usize,
    /// Most connections open at once from one peer address.
    pub max_connections_per_peer: usize,
    /// A TLS handshake must finish within this many milliseconds.
    pub tls_handshake_timeout_ms: u64,
    /// Most TLS handshakes in progress; a connection arriving when all are taken is closed.
    pub max_pending_tls_handshakes: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 9000)),
            http_path_prefix: None,
            // A full phase0 block with every list at its limit is well under 1 MiB of JSON,
            // but a Gloas self-built EXECUTION_PAYLOAD_ENVELOPE carries the whole execution
            // payload, transactions in hex: a 60M-gas block of calldata is ~7.5 MB of JSON.
            // A proposer whose envelope is refused loses its block, so the default leaves room.
            max_body_bytes: 16 * 1024 * 1024,
            signing_threads: 0,
            allow_insecure_listen: false,
            header_read_timeout_ms: 5_000,
            body_read_timeout_ms: 15_000,
            // Longer than validator clients' pool idle time (90 s in reqwest), so the
            // client, not the server, usually closes an idle connection: no request races
            // a server-side close.
            idle_timeout_ms: 120_000,
            // A validator client opens one connection per request in flight: 20,000
            // validators behind one client are 20,000 connections within a second, from one
            // address. The per-peer cap leaves a fifth of the total to everyone else.
            max_connections: 50_000,
            max_connections_per_peer: 40_000,
            tls_handshake_timeout_ms: 5_000,
            max_pending_tls_handshakes: 4_096,
        }
    }
}

/// Flags of `[server]`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ServerArgs {
    /// Signing API listen address [server.listen].
    #[arg(global = true, long, env = "KEYGUARD_LISTEN", value_name = "ADDR:PORT")]
    pub listen: Option<String>,
    /// Also serve the API under this path prefix [server.http_path_prefix].
    #[arg(
        global = true,
        long,
        env = "KEYGUARD_HTTP_PATH_PREFIX",
        value_name = "PATH"
    )]
    pub http_path_prefix: Option<String>,
    /// Largest request body in bytes [server.max_body_bytes].
    #[arg(
        global = true,
        long,
        env = "KEYGUARD_MAX_BODY_BYTES",
        value_name = "BYTES"
    )]
    pub max_body_bytes: Option<usize>,
    /// BLS signing threads, 0 = one per core [server.signing_threads].
    #[arg(
        global = true,
        long,
        env = "KEYGUARD_SIGNING_THREADS",
        value_name = "N"
    )]
    pub signing_threads: Option<usize>,
    /// Serve a non-loopback listen address without client authentication; warned at
    /// every start [server.allow_insecure_listen].
    #[arg(
        global = true,
        long,
        env = "KEYGUARD_ALLOW_INSECURE_LISTEN",
        value_name = "BOOL",
        num_args = 0..=1,
        default_missing_value = "true"
    )]
    pub allow_insecure_listen: Option<bool>,
    /// Milliseconds for a request head to arrive [server.header_read_timeout_ms].
    #[arg(
        global = true,
        long,
        env = "KEYGUARD_HEADER_READ_TIMEOUT_MS",
        value_name = "MS"
    )]
    pub header_read_timeout_ms: Option<u64>,
    /// Milliseconds for a request body to arrive [server.body_read_timeout_ms].
    #[arg(
        global = true,
        long,
        env = "KEYGUARD_BODY_READ_TIMEOUT_MS",
        value_name = "MS"
    )]
    pub body_read_timeout_ms: Option<u64>,
    /// Milliseconds before an idle keep-alive connection is closed [server.idle_timeout_ms].
    #[arg(
        global = true,
        long,
        env = "KEYGUARD_IDLE_TIMEOUT_MS",
        value_name = "MS"
    )]
    pub idle_timeout_ms: Option<u64>,
    /// Most connections open at once [server.max_connections].
    #[arg(
        global = true,
        long,
        env = "KEYGUARD_MAX_CONNECTIONS",
        value_name = "N"
    )]
    pub max_connections: Option<usize>,
    /// Most connections open at once from one address [server.max_connections_per_peer].
    #[arg(
        global = true,
        long,
        env = "KEYGUARD_MAX_CONNECTIONS_PER_PEER",
        value_name = "N"
    )]
    pub max_connections_per_peer: Option<usize>,
    /// Milliseconds for a TLS handshake [server.tls_handshake_timeout_ms].
    #[arg(
        global = true,
        long,
        env = "KEYGUARD_TLS_HANDSHAKE_TIMEOUT_MS",
        value_name = "MS"
    )]
    pub tls_handshake_timeout_ms: Option<u64>,
    /// Most TLS handshakes in progress [server.max_pending_tls_handshakes].
    #[arg(
        global = true,
        long,
        env = "KEYGUARD_MAX_PENDING_TLS_HANDSHAKES",
        value_name = "N"
    )]
    pub max_pending_tls_handshakes: Option<usize>,
}

impl ServerArgs {
    /// Applies the flags that were given to `c`.
    pub fn apply(&self, c: &mut ServerConfig) -> Result<(), ConfigError> {
        if let Some(listen) = &self.listen {
            c.listen = parse_addr("server.listen", listen)?;
        }
        set_opt(&mut c.http_path_prefix, &self.http_path_prefix);
        set(&mut c.max_body_bytes, &self.max_body_bytes);
        set(&mut c.signing_threads, &self.signing_threads);
        self.apply_connections(c);
        Ok(())
    }

    /// Exposure and connection-limit flags.
    fn apply_connections(&self, c: &mut ServerConfig) {
        set(&mut c.allow_insecure_listen, &self.allow_insecure_listen);
        set(&mut c.header_read_timeout_ms, &self.header_read_timeout_ms);
        set(&mut c.body_read_timeout_ms, &self.body_read_timeout_ms);
        set(&mut c.idle_timeout_ms, &self.idle_timeout_ms);
        set(&mut c.max_connections, &self.max_connections);
        set(
            &mut c.max_connections_per_peer,
            &self.max_connections_per_peer,
        );
        set(
            &mut c.tls_handshake_timeout_ms,
            &self.tls_handshake_timeout_ms,
        );
        set(
            &mut c.max_pending_tls_handshakes,
            &self.max_pending_tls_handshakes,
        );
    }
}

impl ServerConfig {
    /// Connection limits and timeouts must let something through.
    pub fn validate_connection_limits(&self) -> Result<(), ConfigError> {
        let positive = [
            ("server.header_read_timeout_ms", self.header_read_timeout_ms),
            ("server.body_read_timeout_ms", self.body_read_timeout_ms),
            ("server.idle_timeout_ms", self.idle_timeout_ms),
            (
                "server.tls_handshake_timeout_ms",
                self.tls_handshake_timeout_ms,
            ),
            ("server.max_connections", self.max_connections as u64),
            (
                "server.max_connections_per_peer",
                self.max_connections_per_peer as u64,
            ),
            (
                "server.max_pending_tls_handshakes",
                self.max_pending_tls_handshakes as u64,
            ),
        ];
        match positive.iter().find(|(_, value)| *value == 0) {
            Some((setting, _)) => Err(ConfigError::new(*setting, "must be at least 1")),
            None => Ok(()),
        }
    }
}
