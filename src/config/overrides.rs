//! How a flag overrides a setting of the config file: only when it was given.

use std::net::SocketAddr;

use super::error::ConfigError;

/// Replaces `target` when the flag was given.
pub(crate) fn set<T: Clone>(target: &mut T, value: &Option<T>) {
    if let Some(v) = value {
        *target = v.clone();
    }
}

/// Replaces an optional setting when the flag was given.
pub(crate) fn set_opt<T: Clone>(target: &mut Option<T>, value: &Option<T>) {
    if value.is_some() {
        *target = value.clone();
    }
}

/// Parses an `ADDRESS:PORT` flag; the error names `setting`.
pub(crate) fn parse_addr(setting: &str, value: &str) -> Result<SocketAddr, ConfigError> {
    value
        .parse()
        .map_err(|_| ConfigError::new(setting, format!("`{value}` is not an ADDRESS:PORT")))
}
