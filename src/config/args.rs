//! The configuration flags of every command: the config file, the network and data
//! directory, and each section's own flags (defined next to the section's struct).

use std::path::PathBuf;

use super::access::AccessArgs;
use super::audit::AuditArgs;
use super::chain::ChainArgs;
use super::error::ConfigError;
use super::hsm::HsmArgs;
use super::keymanager::KeymanagerArgs;
use super::keys::KeysArgs;
use super::log::LogArgs;
use super::metrics::MetricsArgs;
use super::overrides::set;
use super::queue::QueueArgs;
use super::server::ServerArgs;
use super::slashing::SlashingArgs;
use super::tls::TlsArgs;
use super::Config;

/// Settings given on the command line or in `KEYGUARD_*` variables; each overrides the
/// same setting of the config file.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ConfigArgs {
    /// TOML config file (see config/keyguard.toml for every setting).
    #[arg(
        global = true,
        long,
        short = 'c',
        env = "KEYGUARD_CONFIG",
        value_name = "FILE"
    )]
    pub config: Option<PathBuf>,
    /// Network: mainnet, sepolia, hoodi, holesky, gnosis, or a consensus-specs config.yaml.
    #[arg(
        global = true,
        long,
        env = "KEYGUARD_NETWORK",
        value_name = "NAME|FILE"
    )]
    pub network: Option<String>,
    /// Directory for keyguard's state (slashing database).
    #[arg(global = true, long, env = "KEYGUARD_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// `[server]` flags.
    #[command(flatten)]
    pub server: ServerArgs,
    /// `[queue]` flags.
    #[command(flatten)]
    pub queue: QueueArgs,
    /// `[keys]` flags.
    #[command(flatten)]
    pub keys: KeysArgs,
    /// `[slashing]` flags.
    #[command(flatten)]
    pub slashing: SlashingArgs,
    /// `[metrics]` flags.
    #[command(flatten)]
    pub metrics: MetricsArgs,
    /// `[log]` flags.
    #[command(flatten)]
    pub log: LogArgs,
    /// `[hsm]` flags.
    #[command(flatten)]
    pub hsm: HsmArgs,
    /// `[access]` flags.
    #[command(flatten)]
    pub access: AccessArgs,
    /// `[tls]` flags.
    #[command(flatten)]
    pub tls: TlsArgs,
    /// `[keymanager]` flags.
    #[command(flatten)]
    pub keymanager: KeymanagerArgs,
    /// `[audit]` flags.
    #[command(flatten)]
    pub audit: AuditArgs,
    /// `[chain]` flags.
    #[command(flatten)]
    pub chain: ChainArgs,
}

impl ConfigArgs {
    /// Reads the config file (if any), applies these overrides and validates the result.
    pub fn load(&self) -> Result<Config, ConfigError> {
        let mut config = match &self.config {
            Some(path) => Config::from_file(path)?,
            None => Config::default(),
        };
        self.apply(&mut config)?;
        config.validate()?;
        Ok(config)
    }

    fn apply(&self, c: &mut Config) -> Result<(), ConfigError> {
        set(&mut c.network, &self.network);
        set(&mut c.data_dir, &self.data_dir);
        self.server.apply(&mut c.server)?;
        self.queue.apply(&mut c.queue);
        self.keys.apply(&mut c.keys);
        self.slashing.apply(&mut c.slashing);
        self.metrics.apply(&mut c.metrics)?;
        self.log.apply(&mut c.log);
        self.access.apply(&mut c.access);
        self.tls.apply(&mut c.tls);
        self.keymanager.apply(&mut c.keymanager);
        self.audit.apply(&mut c.audit);
        self.chain.apply(&mut c.chain);
        self.hsm.apply(&mut c.hsm)
    }
}
