//! `[metrics]`: the Prometheus listener, and its flags.

use std::net::SocketAddr;

use serde::Deserialize;

use super::error::ConfigError;
use super::overrides::{parse_addr, set};

/// `[metrics]`: Prometheus metrics on their own listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Serve `/metrics`.
    pub enabled: bool,
    /// Address and port of the metrics listener.
    pub listen: SocketAddr,
    /// Also export Web3Signer's metric names, so existing alerts keep working.
    pub web3signer_compat: bool,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            listen: SocketAddr::from(([127, 0, 0, 1], 9001)),
            web3signer_compat: false,
        }
    }
}

/// Flags of `[metrics]`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct MetricsArgs {
    /// Serve Prometheus metrics [metrics.enabled].
    #[arg(global = true, long, env = "KEYGUARD_METRICS", value_name = "BOOL")]
    pub metrics: Option<bool>,
    /// Metrics listen address; implies --metrics true [metrics.listen].
    #[arg(
        global = true,
        long,
        env = "KEYGUARD_METRICS_LISTEN",
        value_name = "ADDR:PORT"
    )]
    pub metrics_listen: Option<String>,
    /// Also export Web3Signer's metric names [metrics.web3signer_compat].
    #[arg(
        global = true,
        long,
        env = "KEYGUARD_METRICS_WEB3SIGNER_COMPAT",
        value_name = "BOOL"
    )]
    pub metrics_web3signer_compat: Option<bool>,
}

impl MetricsArgs {
    /// Applies the flags that were given to `c`; a listen address turns metrics on.
    pub fn apply(&self, c: &mut MetricsConfig) -> Result<(), ConfigError> {
        set(&mut c.enabled, &self.metrics);
        if let Some(listen) = &self.metrics_listen {
            c.listen = parse_addr("metrics.listen", listen)?;
            c.enabled = true;
        }
        set(&mut c.web3signer_compat, &self.metrics_web3signer_compat);
        Ok(())
    }
}
