//! The error every configuration check returns: one line naming the setting. A leaf, so
//! every section and subsystem can return it without importing the whole configuration.

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
