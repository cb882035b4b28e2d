//! Configuration: one TOML file, every setting also a CLI flag and a `KEYGUARD_*`
//! environment variable.
//!
//! Precedence, highest first: command-line flag, environment variable, config file,
//! built-in default. Relative paths are relative to the working directory.
//! `config/keyguard.toml` documents every setting.
//!
//! * [`Config`] (here): the schema, whole-file parsing and the checks across sections;
//! * one module per section (`server`, `queue`, `keys`, `slashing`, `metrics`, `log`, `hsm`, `tls`,
//!   `access`, `keymanager`, `audit`): its `[section]` struct and the flags that override
//!   it (`…Args`, flattened into the command line);
//! * [`args`]: [`ConfigArgs`], the flags of every command that reads the configuration;
//! * [`error`]: [`ConfigError`], a leaf every subsystem may return.
//!
//! The subsystems import their section from here; this module imports no subsystem except
//! for the checks `validate` delegates to `tls` and `access`.

pub mod access;
pub mod args;
pub mod audit;
pub mod chain;
pub mod error;
pub mod hsm;
pub mod keymanager;
pub mod keys;
pub mod log;
pub mod metrics;
mod overrides;
pub mod queue;
pub mod server;
pub mod slashing;
pub mod tls;

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::consensus::Network;

pub use access::AccessConfig;
pub use args::ConfigArgs;
pub use audit::AuditConfig;
pub use chain::ChainConfig;
pub use error::ConfigError;
pub use hsm::HsmConfig;
pub use keymanager::KeymanagerConfig;
pub use keys::KeysConfig;
pub use log::{LogConfig, LogFormat};
pub use metrics::MetricsConfig;
pub use queue::QueueConfig;
pub use server::ServerConfig;
pub use slashing::SlashingConfig;
pub use tls::TlsConfig;

/// The whole configuration, as read from the TOML file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// A built-in network name (mainnet, sepolia, hoodi, holesky, gnosis) or the path of a
    /// consensus-specs `config.yaml`.
    pub network: String,
    /// Where keyguard keeps its state (the slashing database by default).
    pub data_dir: PathBuf,
    /// The signing API listener.
    pub server: ServerConfig,
    /// The signing queue: bounded, prioritised, fair between clients.
    pub queue: QueueConfig,
    /// Where validator keys come from.
    pub keys: KeysConfig,
    /// Slashing protection.
    pub slashing: SlashingConfig,
    /// The Prometheus metrics listener.
    pub metrics: MetricsConfig,
    /// Logging.
    pub log: LogConfig,
    /// The PKCS#11 token holding the key-encryption key of sealed keys.
    pub hsm: Option<HsmConfig>,
    /// TLS on the signing API.
    pub tls: TlsConfig,
    /// Host allow-list, known clients and their key scopes.
    pub access: AccessConfig,
    /// The keymanager API.
    pub keymanager: KeymanagerConfig,
    /// The audit log.
    pub audit: AuditConfig,
    /// The chain's genesis (for custom networks) and the future guard.
    pub chain: ChainConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            network: "mainnet".into(),
            data_dir: PathBuf::from("data"),
            server: ServerConfig::default(),
            queue: QueueConfig::default(),
            keys: KeysConfig::default(),
            slashing: SlashingConfig::default(),
            metrics: MetricsConfig::default(),
            log: LogConfig::default(),
            hsm: None,
            tls: Default::default(),
            access: Default::default(),
            keymanager: Default::default(),
            audit: Default::default(),
            chain: Default::default(),
        }
    }
}

impl Config {
    /// Parses a TOML config file. Unknown settings are errors, so typos do not pass
    /// silently.
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::new(&file, format!("cannot read: {e}")))?;
        toml::from_str(&text).map_err(|e| toml_error(&file, &text, e))
    }

    /// The network this configuration names, with `[chain]`'s genesis applied.
    pub fn network(&self) -> Result<Network, ConfigError> {
        self.chain.apply_to(resolve_network(&self.network)?)
    }

    /// Where the slashing database lives.
    pub fn slashing_database_path(&self) -> PathBuf {
        self.slashing
            .database
            .clone()
            .unwrap_or_else(|| self.data_dir.join("slashing-protection.sqlite"))
    }

    /// The `[hsm]` section, or a config error naming it.
    pub fn require_hsm(&self) -> Result<&HsmConfig, ConfigError> {
        self.hsm.as_ref().ok_or_else(|| {
            ConfigError::new(
                "hsm",
                "this needs an HSM: set [hsm] in the config or --hsm-module and --hsm-token-label",
            )
        })
    }

    /// Checks cross-setting rules that parsing alone cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.chain.validate()?;
        let network = self.network()?;
        if self.keys.interop_keys.is_some() && network.is_public() {
            return Err(ConfigError::new(
                "keys.interop_keys",
                format!(
                    "interop test keys are public and may only be used on a devnet, not on {}",
                    network.name()
                ),
            ));
        }
        if self.keys.keystores.is_some() && self.keys.passwords.is_none() {
            return Err(ConfigError::new(
                "keys.passwords",
                "keys.keystores is set, so a password directory or file is required",
            ));
        }
        if let Some(prefix) = &self.server.http_path_prefix {
            if !prefix.is_empty() && !prefix.starts_with('/') {
                return Err(ConfigError::new(
                    "server.http_path_prefix",
                    format!("`{prefix}` must start with `/`"),
                ));
            }
        }
        if self.keys.sealed.is_some() && self.hsm.is_none() {
            return Err(ConfigError::new(
                "keys.sealed",
                "sealed keys need an [hsm] section (module, token_label, pin_file or pin_env)",
            ));
        }
        if let Some(hsm) = &self.hsm {
            hsm.validate()
                .map_err(|e| ConfigError::new("hsm", e.to_string()))?;
        }
        if self.server.max_body_bytes < 1024 {
            return Err(ConfigError::new(
                "server.max_body_bytes",
                "must be at least 1024 bytes",
            ));
        }
        self.server.validate_connection_limits()?;
        self.queue.validate()?;
        if self.slashing.max_batch == 0 {
            return Err(ConfigError::new("slashing.max_batch", "must be at least 1"));
        }
        if self.slashing.max_commit_delay_ms > 1000 {
            return Err(ConfigError::new(
                "slashing.max_commit_delay_ms",
                "must be at most 1000 (a longer wait would hold answers past a slot's duties)",
            ));
        }
        self.slashing.validate_pruning()?;
        self.audit.validate(&self.data_dir)?;
        crate::tls::validate(&self.tls, &self.access)?;
        crate::access::validate(&self.access, self.tls.known_clients.is_some())?;
        if self
            .log
            .level
            .parse::<tracing_subscriber::EnvFilter>()
            .is_err()
        {
            return Err(ConfigError::new(
                "log.level",
                format!("`{}` is not a valid log filter", self.log.level),
            ));
        }
        Ok(())
    }
}

/// A built-in network name, or a path to a consensus-specs config.
pub fn resolve_network(value: &str) -> Result<Network, ConfigError> {
    if let Some(network) = Network::builtin(value) {
        return Ok(network);
    }
    let path = Path::new(value);
    if !path.exists() {
        return Err(ConfigError::new(
            "network",
            format!(
                "`{value}` is neither a built-in network ({}) nor an existing config file",
                Network::builtin_names().join(", ")
            ),
        ));
    }
    Network::from_config_file(path).map_err(|e| ConfigError::new("network", e.to_string()))
}

/// Turns a TOML error into one line: the setting's dotted path when serde knows it.
fn toml_error(file: &str, text: &str, err: toml::de::Error) -> ConfigError {
    let message = err.message().replace('\n', " ");
    let line = err
        .span()
        .map(|span| text[..span.start.min(text.len())].matches('\n').count() + 1);
    let place = match line {
        Some(line) => format!("{file} line {line}"),
        None => file.to_string(),
    };
    ConfigError::new(place, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &tempfile::TempDir, text: &str) -> PathBuf {
        let path = dir.path().join("k.toml");
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn defaults_are_safe() {
        let c = Config::default();
        assert!(c.slashing.enabled);
        assert!(!c.metrics.enabled);
        assert_eq!(c.server.listen.ip().to_string(), "127.0.0.1");
        assert_eq!(
            c.slashing_database_path(),
            PathBuf::from("data/slashing-protection.sqlite")
        );
    }

    #[test]
    fn unknown_setting_names_line_and_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(&dir, "[server]\nlisten = \"127.0.0.1:1\"\nlisen = 3\n");
        let err = Config::from_file(&path).unwrap_err().to_string();
        assert!(err.contains("line 3"), "{err}");
        assert!(err.contains("lisen"), "{err}");
    }

    #[test]
    fn wrong_type_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(&dir, "[server]\nlisten = 9000\n");
        assert!(Config::from_file(&path).is_err());
    }

    #[test]
    fn flags_override_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(&dir, "[server]\nlisten = \"127.0.0.1:1\"\n");
        let args = ConfigArgs {
            config: Some(path),
            server: server::ServerArgs {
                listen: Some("127.0.0.1:2".into()),
                ..Default::default()
            },
            metrics: metrics::MetricsArgs {
                metrics_listen: Some("127.0.0.1:3".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        let c = args.load().unwrap();
        assert_eq!(c.server.listen.port(), 2);
        assert!(c.metrics.enabled);
        assert_eq!(c.metrics.listen.port(), 3);
    }

    #[test]
    fn commit_delay_from_file_and_flag_and_bounded() {
        assert_eq!(Config::default().slashing.max_commit_delay_ms, 5);
        let dir = tempfile::tempdir().unwrap();
        let path = write(&dir, "[slashing]\nmax_commit_delay_ms = 2\n");
        let from_file = ConfigArgs {
            config: Some(path.clone()),
            ..Default::default()
        };
        assert_eq!(from_file.load().unwrap().slashing.max_commit_delay_ms, 2);
        let flag = ConfigArgs {
            config: Some(path),
            slashing: slashing::SlashingArgs {
                slashing_max_commit_delay_ms: Some(0),
                ..Default::default()
            },
            ..Default::default()
        };
        assert_eq!(flag.load().unwrap().slashing.max_commit_delay_ms, 0);
        let too_long = ConfigArgs {
            slashing: slashing::SlashingArgs {
                slashing_max_commit_delay_ms: Some(5000),
                ..Default::default()
            },
            ..Default::default()
        };
        assert_eq!(
            too_long.load().unwrap_err().setting,
            "slashing.max_commit_delay_ms"
        );
    }

    #[test]
    fn keymanager_body_limit_flag_overrides_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(&dir, "[keymanager]\nmax_body_bytes = 4096\n");
        let file_only = ConfigArgs {
            config: Some(path.clone()),
            ..Default::default()
        };
        assert_eq!(file_only.load().unwrap().keymanager.max_body_bytes, 4096);
        let flag = ConfigArgs {
            config: Some(path),
            keymanager: keymanager::KeymanagerArgs {
                keymanager_max_body_bytes: Some(8192),
                ..Default::default()
            },
            ..Default::default()
        };
        assert_eq!(flag.load().unwrap().keymanager.max_body_bytes, 8192);
    }

    #[test]
    fn bad_listen_flag_names_setting() {
        let args = ConfigArgs {
            server: server::ServerArgs {
                listen: Some("nonsense".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        let err = args.load().unwrap_err();
        assert_eq!(err.setting, "server.listen");
    }

    #[test]
    fn interop_keys_refused_on_mainnet() {
        let args = ConfigArgs {
            keys: keys::KeysArgs {
                interop_keys: Some(4),
                ..Default::default()
            },
            ..Default::default()
        };
        let err = args.load().unwrap_err();
        assert_eq!(err.setting, "keys.interop_keys");
    }

    #[test]
    fn keystores_need_passwords() {
        let args = ConfigArgs {
            keys: keys::KeysArgs {
                keystores: Some("ks".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        assert_eq!(args.load().unwrap_err().setting, "keys.passwords");
    }

    #[test]
    fn unknown_network_is_named() {
        let args = ConfigArgs {
            network: Some("no-such-net".into()),
            ..Default::default()
        };
        let err = args.load().unwrap_err();
        assert_eq!(err.setting, "network");
        assert!(err.message.contains("mainnet"));
    }

    #[test]
    fn example_configs_parse() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        for name in ["config/keyguard.toml", "config/dev.toml"] {
            Config::from_file(&root.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }
}
