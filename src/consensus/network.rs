//! Networks: fork schedules, genesis fork versions and presets, built in or from a
//! consensus-specs `config.yaml`.

use std::path::Path;

/// A network's fork schedule and preset. (Stub: filled in by the consensus work.)
#[derive(Debug, Clone)]
pub struct Network {
    name: String,
}

/// Why a network config could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    /// The config file could not be read.
    #[error("cannot read network config {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
}

impl Network {
    /// A built-in network by name: mainnet, sepolia, hoodi, holesky, gnosis.
    pub fn builtin(name: &str) -> Option<Network> {
        Self::builtin_names()
            .contains(&name)
            .then(|| Network { name: name.to_string() })
    }

    /// Names of the built-in networks.
    pub fn builtin_names() -> &'static [&'static str] {
        &["mainnet", "sepolia", "hoodi", "holesky", "gnosis"]
    }

    /// Loads a network from a consensus-specs `config.yaml`.
    pub fn from_config_file(path: &Path) -> Result<Network, NetworkError> {
        std::fs::read_to_string(path).map_err(|source| NetworkError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Ok(Network { name: path.display().to_string() })
    }

    /// The network's name (`CONFIG_NAME`, or the built-in name).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// True for networks where real value is at stake or keys are public-facing: the
    /// built-in networks, and any config that uses one of their genesis fork versions.
    /// Public interop test keys are refused on these.
    pub fn is_public(&self) -> bool {
        Self::builtin_names().contains(&self.name.as_str())
    }
}
