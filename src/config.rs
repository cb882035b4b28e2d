//! Configuration: one TOML file, every setting also a CLI flag and a `KEYGUARD_*`
//! environment variable.
//!
//! Precedence, highest first: command-line flag, environment variable, config file,
//! built-in default. Relative paths are relative to the working directory.
//! `config/keyguard.toml` documents every setting.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::consensus::Network;

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
    /// Where validator keys come from.
    pub keys: KeysConfig,
    /// Slashing protection.
    pub slashing: SlashingConfig,
    /// The Prometheus metrics listener.
    pub metrics: MetricsConfig,
    /// Logging.
    pub log: LogConfig,
    /// The PKCS#11 token holding the key-encryption key of sealed keys.
    pub hsm: Option<crate::hsm::HsmConfig>,
    /// TLS on the signing API.
    pub tls: crate::tls::TlsConfig,
    /// Host allow-list, known clients and their key scopes.
    pub access: crate::access::AccessConfig,
    /// The keymanager API.
    pub keymanager: crate::keymanager::KeymanagerConfig,
    /// The audit log.
    pub audit: crate::audit::AuditConfig,
}

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

/// `[keys]`: key sources; any combination may be used, a pubkey present twice is an error.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeysConfig {
    /// Directory of EIP-2335 keystores.
    pub keystores: Option<PathBuf>,
    /// Directory of password files, or one file holding the password of every keystore.
    pub passwords: Option<PathBuf>,
    /// Directory of Web3Signer YAML key definition files.
    pub key_definitions: Option<PathBuf>,
    /// Directory of HSM-sealed key files (needs `[hsm]`).
    pub sealed: Option<PathBuf>,
    /// Load the first N well-known interop test keys. They are PUBLIC: devnets only.
    pub interop_keys: Option<u64>,
}

/// `[slashing]`: the slashing-protection database.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SlashingConfig {
    /// When false, blocks and attestations are refused (412): they are never signed
    /// unprotected.
    pub enabled: bool,
    /// SQLite database path, or a `postgres://` / `postgresql://` URL; default
    /// `<data_dir>/slashing-protection.sqlite`.
    pub database: Option<PathBuf>,
    /// PostgreSQL: file whose first line is the password (else
    /// `KEYGUARD_SLASHING_DATABASE_PASSWORD`; never put it in the URL).
    pub database_password_file: Option<PathBuf>,
    /// PostgreSQL: start even if the server's `synchronous_commit` is `off` (a server
    /// crash can then lose records of signatures already returned).
    pub allow_async_commit: bool,
    /// Most check-and-record operations committed in one transaction.
    pub max_batch: usize,
    /// Longest time (milliseconds) a commit may wait for more records while signatures
    /// are queued anyway; 0 commits as soon as the queue is empty. The wait is at most
    /// half the signing queue's estimated drain time, so it does not delay answers.
    pub max_commit_delay_ms: u64,
}

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

/// `[log]`: logging.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `text` (human-readable) or `json` (one object per line).
    pub format: LogFormat,
    /// A `tracing` filter, e.g. `info` or `keyguard=debug,info`.
    pub level: String,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            network: "mainnet".into(),
            data_dir: PathBuf::from("data"),
            server: ServerConfig::default(),
            keys: KeysConfig::default(),
            slashing: SlashingConfig::default(),
            metrics: MetricsConfig::default(),
            log: LogConfig::default(),
            hsm: None,
            tls: Default::default(),
            access: Default::default(),
            keymanager: Default::default(),
            audit: Default::default(),
        }
    }
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

impl Default for SlashingConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            database: None,
            database_password_file: None,
            allow_async_commit: false,
            max_batch: 1024,
            max_commit_delay_ms: 5,
        }
    }
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

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            level: "info".into(),
        }
    }
}

/// A configuration problem: one line that names the setting. The CLI exits with code 2.
#[derive(Debug, thiserror::Error)]
#[error("config error: {setting}: {message}")]
pub struct ConfigError {
    /// The setting, as written in the TOML file (`server.listen`), or the file itself.
    pub setting: String,
    /// What is wrong with it.
    pub message: String,
}

impl ConfigError {
    /// A problem with `setting`.
    pub fn new(setting: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            setting: setting.into(),
            message: message.into(),
        }
    }
}

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
    /// Directory of EIP-2335 keystores [keys.keystores].
    #[arg(global = true, long, env = "KEYGUARD_KEYSTORES", value_name = "DIR")]
    pub keystores: Option<PathBuf>,
    /// Password directory or single password file [keys.passwords].
    #[arg(
        global = true,
        long,
        env = "KEYGUARD_PASSWORDS",
        value_name = "DIR|FILE"
    )]
    pub passwords: Option<PathBuf>,
    /// Directory of Web3Signer YAML key definitions [keys.key_definitions].
    #[arg(
        global = true,
        long,
        env = "KEYGUARD_KEY_DEFINITIONS",
        value_name = "DIR"
    )]
    pub key_definitions: Option<PathBuf>,
    /// Directory of HSM-sealed keys [keys.sealed].
    #[arg(global = true, long, env = "KEYGUARD_SEALED_KEYS", value_name = "DIR")]
    pub sealed_keys: Option<PathBuf>,
    /// Load the first N PUBLIC interop test keys; devnets only [keys.interop_keys].
    #[arg(global = true, long, env = "KEYGUARD_INTEROP_KEYS", value_name = "N")]
    pub interop_keys: Option<u64>,
    /// Enable or disable slashing protection [slashing.enabled].
    #[arg(
        global = true,
        long,
        env = "KEYGUARD_SLASHING_PROTECTION",
        value_name = "BOOL"
    )]
    pub slashing_protection: Option<bool>,
    /// Slashing database: SQLite file path or postgres:// URL [slashing.database].
    #[arg(
        global = true,
        long,
        env = "KEYGUARD_SLASHING_DATABASE",
        value_name = "FILE|URL"
    )]
    pub slashing_database: Option<PathBuf>,
    /// File holding the PostgreSQL password [slashing.database_password_file].
    #[arg(
        global = true,
        long,
        env = "KEYGUARD_SLASHING_DATABASE_PASSWORD_FILE",
        value_name = "FILE"
    )]
    pub slashing_database_password_file: Option<PathBuf>,
    /// Accept a PostgreSQL server with synchronous_commit off [slashing.allow_async_commit].
    #[arg(
        global = true,
        long,
        env = "KEYGUARD_SLASHING_ALLOW_ASYNC_COMMIT",
        value_name = "BOOL"
    )]
    pub slashing_allow_async_commit: Option<bool>,
    /// Most operations per slashing-database transaction [slashing.max_batch].
    #[arg(
        global = true,
        long,
        env = "KEYGUARD_SLASHING_MAX_BATCH",
        value_name = "N"
    )]
    pub slashing_max_batch: Option<usize>,
    /// Longest wait of a commit for more records while signatures are queued, in
    /// milliseconds; 0 = off [slashing.max_commit_delay_ms].
    #[arg(
        global = true,
        long,
        env = "KEYGUARD_SLASHING_MAX_COMMIT_DELAY_MS",
        value_name = "MS"
    )]
    pub slashing_max_commit_delay_ms: Option<u64>,
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
    /// Log format [log.format].
    #[arg(global = true, long, env = "KEYGUARD_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    /// Log filter, e.g. info or keyguard=debug [log.level].
    #[arg(global = true, long, env = "KEYGUARD_LOG_LEVEL", value_name = "FILTER")]
    pub log_level: Option<String>,
    /// PKCS#11 module of the HSM, e.g. /usr/lib/softhsm/libsofthsm2.so [hsm.module].
    #[arg(global = true, long, env = "KEYGUARD_HSM_MODULE", value_name = "FILE")]
    pub hsm_module: Option<PathBuf>,
    /// Label of the HSM token; tokens are selected by label [hsm.token_label].
    #[arg(
        global = true,
        long,
        env = "KEYGUARD_HSM_TOKEN_LABEL",
        value_name = "LABEL"
    )]
    pub hsm_token_label: Option<String>,
    /// File holding the token's user PIN; the PIN itself is never a flag [hsm.pin_file].
    #[arg(
        global = true,
        long,
        env = "KEYGUARD_HSM_PIN_FILE",
        value_name = "FILE"
    )]
    pub hsm_pin_file: Option<PathBuf>,
    /// Name of the environment variable holding the user PIN [hsm.pin_env].
    #[arg(global = true, long, env = "KEYGUARD_HSM_PIN_ENV", value_name = "VAR")]
    pub hsm_pin_env: Option<String>,
    /// Label of the key-encryption key in the token [hsm.kek_label].
    #[arg(
        global = true,
        long,
        env = "KEYGUARD_HSM_KEK_LABEL",
        value_name = "LABEL"
    )]
    pub hsm_kek_label: Option<String>,
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
    /// PEM certificate chain of the server; enables TLS [tls.cert].
    #[arg(global = true, long, env = "KEYGUARD_TLS_CERT", value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of the server [tls.key].
    #[arg(global = true, long, env = "KEYGUARD_TLS_KEY", value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
    /// PKCS#12 server identity; enables TLS [tls.pkcs12].
    #[arg(global = true, long, env = "KEYGUARD_TLS_PKCS12", value_name = "FILE")]
    pub tls_pkcs12: Option<PathBuf>,
    /// File holding the PKCS#12 password [tls.pkcs12_password_file].
    #[arg(
        global = true,
        long,
        env = "KEYGUARD_TLS_PKCS12_PASSWORD_FILE",
        value_name = "FILE"
    )]
    pub tls_pkcs12_password_file: Option<PathBuf>,
    /// PEM CA bundle that client certificates must chain to [tls.client_ca].
    #[arg(
        global = true,
        long,
        env = "KEYGUARD_TLS_CLIENT_CA",
        value_name = "FILE"
    )]
    pub tls_client_ca: Option<PathBuf>,
    /// Web3Signer known-clients file of allowed certificate fingerprints [tls.known_clients].
    #[arg(
        global = true,
        long,
        env = "KEYGUARD_TLS_KNOWN_CLIENTS",
        value_name = "FILE"
    )]
    pub tls_known_clients: Option<PathBuf>,
    /// Allowed client certificate SHA-256 fingerprints, comma-separated
    /// [tls.allowed_fingerprints].
    #[arg(
        global = true,
        long,
        env = "KEYGUARD_TLS_ALLOWED_FINGERPRINTS",
        value_name = "SHA256,...",
        value_delimiter = ','
    )]
    pub tls_allowed_fingerprints: Option<Vec<String>>,
    /// Serve the keymanager API /eth/v1/keystores [keymanager.enabled].
    #[arg(global = true, long, env = "KEYGUARD_KEYMANAGER", value_name = "BOOL")]
    pub keymanager: Option<bool>,
    /// Keymanager bearer token file, generated if missing [keymanager.token_file].
    #[arg(
        global = true,
        long,
        env = "KEYGUARD_KEYMANAGER_TOKEN_FILE",
        value_name = "FILE"
    )]
    pub keymanager_token_file: Option<PathBuf>,
    /// Where keys imported through the keymanager API are stored [keymanager.dir].
    #[arg(
        global = true,
        long,
        env = "KEYGUARD_KEYMANAGER_DIR",
        value_name = "DIR"
    )]
    pub keymanager_dir: Option<PathBuf>,
    /// Largest request body of the keymanager routes, in bytes
    /// [keymanager.max_body_bytes].
    #[arg(
        global = true,
        long,
        env = "KEYGUARD_KEYMANAGER_MAX_BODY_BYTES",
        value_name = "BYTES"
    )]
    pub keymanager_max_body_bytes: Option<usize>,
    /// Write the audit log [audit.enabled].
    #[arg(global = true, long, env = "KEYGUARD_AUDIT", value_name = "BOOL")]
    pub audit: Option<bool>,
    /// Audit log file; implies --audit true [audit.path].
    #[arg(global = true, long, env = "KEYGUARD_AUDIT_LOG", value_name = "FILE")]
    pub audit_log: Option<PathBuf>,
    /// When the audit log cannot be written: refuse or continue [audit.on_failure].
    #[arg(global = true, long, env = "KEYGUARD_AUDIT_ON_FAILURE", value_enum)]
    pub audit_on_failure: Option<crate::audit::OnFailure>,
    /// Most audit events waiting to be written [audit.queue_capacity].
    #[arg(
        global = true,
        long,
        env = "KEYGUARD_AUDIT_QUEUE_CAPACITY",
        value_name = "N"
    )]
    pub audit_queue_capacity: Option<usize>,
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
        if let Some(listen) = &self.listen {
            c.server.listen = parse_addr("server.listen", listen)?;
        }
        set_opt(&mut c.server.http_path_prefix, &self.http_path_prefix);
        set(&mut c.server.max_body_bytes, &self.max_body_bytes);
        set(&mut c.server.signing_threads, &self.signing_threads);
        set_opt(&mut c.keys.keystores, &self.keystores);
        set_opt(&mut c.keys.passwords, &self.passwords);
        set_opt(&mut c.keys.key_definitions, &self.key_definitions);
        set_opt(&mut c.keys.sealed, &self.sealed_keys);
        set_opt(&mut c.keys.interop_keys, &self.interop_keys);
        set(&mut c.slashing.enabled, &self.slashing_protection);
        set_opt(&mut c.slashing.database, &self.slashing_database);
        set_opt(
            &mut c.slashing.database_password_file,
            &self.slashing_database_password_file,
        );
        set(
            &mut c.slashing.allow_async_commit,
            &self.slashing_allow_async_commit,
        );
        set(&mut c.slashing.max_batch, &self.slashing_max_batch);
        set(
            &mut c.slashing.max_commit_delay_ms,
            &self.slashing_max_commit_delay_ms,
        );
        set(&mut c.metrics.enabled, &self.metrics);
        if let Some(listen) = &self.metrics_listen {
            c.metrics.listen = parse_addr("metrics.listen", listen)?;
            c.metrics.enabled = true;
        }
        set(
            &mut c.metrics.web3signer_compat,
            &self.metrics_web3signer_compat,
        );
        set(&mut c.log.format, &self.log_format);
        set(&mut c.log.level, &self.log_level);
        self.apply_access(c);
        self.apply_hsm(c)
    }

    /// TLS, access, keymanager and audit flags.
    fn apply_access(&self, c: &mut Config) {
        set(&mut c.access.allowed_hosts, &self.allowed_hosts);
        set(
            &mut c.access.require_known_client,
            &self.require_known_client,
        );
        set_opt(&mut c.tls.cert, &self.tls_cert);
        set_opt(&mut c.tls.key, &self.tls_key);
        set_opt(&mut c.tls.pkcs12, &self.tls_pkcs12);
        set_opt(
            &mut c.tls.pkcs12_password_file,
            &self.tls_pkcs12_password_file,
        );
        set_opt(&mut c.tls.client_ca, &self.tls_client_ca);
        set_opt(&mut c.tls.known_clients, &self.tls_known_clients);
        set(
            &mut c.tls.allowed_fingerprints,
            &self.tls_allowed_fingerprints,
        );
        set(&mut c.keymanager.enabled, &self.keymanager);
        set_opt(&mut c.keymanager.token_file, &self.keymanager_token_file);
        set_opt(&mut c.keymanager.dir, &self.keymanager_dir);
        set(
            &mut c.keymanager.max_body_bytes,
            &self.keymanager_max_body_bytes,
        );
        set(&mut c.audit.enabled, &self.audit);
        if self.audit_log.is_some() {
            c.audit.path = self.audit_log.clone();
            c.audit.enabled = true;
        }
        set(&mut c.audit.on_failure, &self.audit_on_failure);
        set(&mut c.audit.queue_capacity, &self.audit_queue_capacity);
    }

    /// HSM flags complete or create the `[hsm]` section; a new one needs module and label.
    fn apply_hsm(&self, c: &mut Config) -> Result<(), ConfigError> {
        let any = self.hsm_module.is_some()
            || self.hsm_token_label.is_some()
            || self.hsm_pin_file.is_some()
            || self.hsm_pin_env.is_some()
            || self.hsm_kek_label.is_some();
        if !any {
            return Ok(());
        }
        let mut hsm = match c.hsm.take() {
            Some(hsm) => hsm,
            None => {
                let module = self.hsm_module.clone().ok_or_else(|| {
                    ConfigError::new("hsm.module", "HSM settings were given without the module")
                })?;
                let label = self.hsm_token_label.clone().ok_or_else(|| {
                    ConfigError::new(
                        "hsm.token_label",
                        "HSM settings were given without the token label",
                    )
                })?;
                crate::hsm::HsmConfig::new(module, label)
            }
        };
        set(&mut hsm.module, &self.hsm_module);
        set(&mut hsm.token_label, &self.hsm_token_label);
        if self.hsm_pin_file.is_some() {
            hsm.pin_file = self.hsm_pin_file.clone();
            hsm.pin_env = None;
        }
        if self.hsm_pin_env.is_some() {
            hsm.pin_env = self.hsm_pin_env.clone();
            hsm.pin_file = None;
        }
        set(&mut hsm.kek_label, &self.hsm_kek_label);
        c.hsm = Some(hsm);
        Ok(())
    }
}

fn set<T: Clone>(target: &mut T, value: &Option<T>) {
    if let Some(v) = value {
        *target = v.clone();
    }
}

fn set_opt<T: Clone>(target: &mut Option<T>, value: &Option<T>) {
    if value.is_some() {
        *target = value.clone();
    }
}

fn parse_addr(setting: &str, value: &str) -> Result<SocketAddr, ConfigError> {
    value
        .parse()
        .map_err(|_| ConfigError::new(setting, format!("`{value}` is not an ADDRESS:PORT")))
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

    /// The network this configuration names.
    pub fn network(&self) -> Result<Network, ConfigError> {
        resolve_network(&self.network)
    }

    /// Where the slashing database lives.
    pub fn slashing_database_path(&self) -> PathBuf {
        self.slashing
            .database
            .clone()
            .unwrap_or_else(|| self.data_dir.join("slashing-protection.sqlite"))
    }

    /// The `[hsm]` section, or a config error naming it.
    pub fn require_hsm(&self) -> Result<&crate::hsm::HsmConfig, ConfigError> {
        self.hsm.as_ref().ok_or_else(|| {
            ConfigError::new(
                "hsm",
                "this needs an HSM: set [hsm] in the config or --hsm-module and --hsm-token-label",
            )
        })
    }

    /// Checks cross-setting rules that parsing alone cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
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
        if self.slashing.max_batch == 0 {
            return Err(ConfigError::new("slashing.max_batch", "must be at least 1"));
        }
        if self.slashing.max_commit_delay_ms > 1000 {
            return Err(ConfigError::new(
                "slashing.max_commit_delay_ms",
                "must be at most 1000 (a longer wait would hold answers past a slot's duties)",
            ));
        }
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
            listen: Some("127.0.0.1:2".into()),
            metrics_listen: Some("127.0.0.1:3".into()),
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
            slashing_max_commit_delay_ms: Some(0),
            ..Default::default()
        };
        assert_eq!(flag.load().unwrap().slashing.max_commit_delay_ms, 0);
        let too_long = ConfigArgs {
            slashing_max_commit_delay_ms: Some(5000),
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
            keymanager_max_body_bytes: Some(8192),
            ..Default::default()
        };
        assert_eq!(flag.load().unwrap().keymanager.max_body_bytes, 8192);
    }

    #[test]
    fn bad_listen_flag_names_setting() {
        let args = ConfigArgs {
            listen: Some("nonsense".into()),
            ..Default::default()
        };
        let err = args.load().unwrap_err();
        assert_eq!(err.setting, "server.listen");
    }

    #[test]
    fn interop_keys_refused_on_mainnet() {
        let args = ConfigArgs {
            interop_keys: Some(4),
            ..Default::default()
        };
        let err = args.load().unwrap_err();
        assert_eq!(err.setting, "keys.interop_keys");
    }

    #[test]
    fn keystores_need_passwords() {
        let args = ConfigArgs {
            keystores: Some("ks".into()),
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
