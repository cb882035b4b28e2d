//! `[log]`: logging, and its flags.

use serde::Deserialize;

use super::overrides::set;

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

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            level: "info".into(),
        }
    }
}

/// Flags of `[log]`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct LogArgs {
    /// Log format [log.format].
    #[arg(global = true, long, env = "KEYGUARD_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    /// Log filter, e.g. info or keyguard=debug [log.level].
    #[arg(global = true, long, env = "KEYGUARD_LOG_LEVEL", value_name = "FILTER")]
    pub log_level: Option<String>,
}

impl LogArgs {
    /// Applies the flags that were given to `c`.
    pub fn apply(&self, c: &mut LogConfig) {
        set(&mut c.format, &self.log_format);
        set(&mut c.level, &self.log_level);
    }
}
