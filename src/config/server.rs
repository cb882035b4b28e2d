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
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 9000)),
            http_path_prefix: None,
            // A full phase0 block with every list at its limit is well under 1 MiB of JSON.
            max_body_bytes: 2 * 1024 * 1024,
            signing_threads: 0,
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
        Ok(())
    }
}
