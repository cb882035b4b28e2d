//! `[chain]`: what keyguard knows about the chain it signs for beyond the network's fork
//! schedule (its genesis validators root and genesis time), the future guard, and their
//! flags.

use serde::Deserialize;

use super::error::ConfigError;
use super::overrides::{set, set_opt};
use crate::consensus::{Network, Root};

/// `[chain]`: the genesis a custom network's config does not carry, and the future guard.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChainConfig {
    /// The network's genesis validators root (`0x` + 64 hex digits). Built-in networks
    /// know theirs (a different value is an error); on a custom network it pins the
    /// slashing database at start-up instead of the first request.
    pub genesis_validators_root: Option<String>,
    /// Unix seconds of slot 0. Built-in networks know theirs (a different value is an
    /// error); on a custom network it turns the future guard on (also read from a
    /// `GENESIS_TIME` line in the network's config file).
    pub genesis_time: Option<u64>,
    /// Refuse duties whose slot or epoch lies beyond now plus
    /// `future_tolerance_slots`, where the genesis time is known.
    pub future_guard: bool,
    /// How many slots ahead of the clock a duty may lie (at least 1).
    pub future_tolerance_slots: u64,
}

/// Two mainnet epochs: covers a proposer's lookahead (the current and the next epoch)
/// and any sane clock skew.
pub const DEFAULT_FUTURE_TOLERANCE_SLOTS: u64 = 64;

impl Default for ChainConfig {
    fn default() -> Self {
        Self {
            genesis_validators_root: None,
            genesis_time: None,
            future_guard: true,
            future_tolerance_slots: DEFAULT_FUTURE_TOLERANCE_SLOTS,
        }
    }
}

impl ChainConfig {
    /// `network` with this section's genesis applied; a value that contradicts what the
    /// network already knows (a built-in network's constants, a config's `GENESIS_TIME`)
    /// is an error.
    pub fn apply_to(&self, network: Network) -> Result<Network, ConfigError> {
        let network = match self.root()? {
            None => network,
            Some(root) => match network.genesis_validators_root() {
                Some(known) if known != root => {
                    return Err(ConfigError::new(
                        "chain.genesis_validators_root",
                        format!(
                            "0x{} is not {}'s genesis validators root (0x{})",
                            hex::encode(root),
                            network.name(),
                            hex::encode(known)
                        ),
                    ))
                }
                _ => network.with_genesis_validators_root(Some(root)),
            },
        };
        match (self.genesis_time, network.genesis_time()) {
            (None, _) => Ok(network),
            (Some(given), Some(known)) if given != known => Err(ConfigError::new(
                "chain.genesis_time",
                format!("{given} is not {}'s genesis time ({known})", network.name()),
            )),
            (Some(given), _) => Ok(network.with_genesis_time(Some(given))),
        }
    }

    /// The parsed `genesis_validators_root`.
    fn root(&self) -> Result<Option<Root>, ConfigError> {
        let Some(text) = &self.genesis_validators_root else {
            return Ok(None);
        };
        let digits = text.strip_prefix("0x").unwrap_or(text);
        let mut root = [0u8; 32];
        hex::decode_to_slice(digits, &mut root).map_err(|_| {
            ConfigError::new(
                "chain.genesis_validators_root",
                format!("`{text}` is not 0x followed by 64 hex digits"),
            )
        })?;
        Ok(Some(root))
    }

    /// Checks the settings that parsing alone cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.root()?;
        if self.future_tolerance_slots == 0 {
            return Err(ConfigError::new(
                "chain.future_tolerance_slots",
                "must be at least 1 (a clock a moment late would refuse the current slot); \
                 set chain.future_guard = false to turn the guard off",
            ));
        }
        Ok(())
    }
}

/// Flags of `[chain]`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ChainArgs {
    /// The network's genesis validators root, 0x + 64 hex digits
    /// [chain.genesis_validators_root].
    #[arg(
        global = true,
        long,
        env = "KEYGUARD_GENESIS_VALIDATORS_ROOT",
        value_name = "ROOT"
    )]
    pub genesis_validators_root: Option<String>,
    /// The network's genesis time, Unix seconds [chain.genesis_time].
    #[arg(
        global = true,
        long,
        env = "KEYGUARD_GENESIS_TIME",
        value_name = "SECONDS"
    )]
    pub genesis_time: Option<u64>,
    /// Refuse duties beyond now plus the tolerance [chain.future_guard].
    #[arg(
        global = true,
        long,
        env = "KEYGUARD_FUTURE_GUARD",
        value_name = "BOOL"
    )]
    pub future_guard: Option<bool>,
    /// Slots ahead of the clock a duty may lie [chain.future_tolerance_slots].
    #[arg(
        global = true,
        long,
        env = "KEYGUARD_FUTURE_TOLERANCE_SLOTS",
        value_name = "SLOTS"
    )]
    pub future_tolerance_slots: Option<u64>,
}

impl ChainArgs {
    /// Applies the flags that were given to `c`.
    pub fn apply(&self, c: &mut ChainConfig) {
        set_opt(
            &mut c.genesis_validators_root,
            &self.genesis_validators_root,
        );
        set_opt(&mut c.genesis_time, &self.genesis_time);
        set(&mut c.future_guard, &self.future_guard);
        set(&mut c.future_tolerance_slots, &self.future_tolerance_slots);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOT: &str = "0x270d43e74ce340de4bca2b1936beca0f4f5408d9e78aec4850920baf659d5b69";

    #[test]
    fn custom_network_takes_the_configured_genesis() {
        let chain = ChainConfig {
            genesis_validators_root: Some(ROOT.into()),
            genesis_time: Some(1_700_000_000),
            ..Default::default()
        };
        let network = chain.apply_to(Network::devnet()).unwrap();
        assert_eq!(
            hex::encode(network.genesis_validators_root().unwrap()),
            &ROOT[2..]
        );
        assert_eq!(network.genesis_time(), Some(1_700_000_000));
        // Unset, a custom network knows neither.
        let plain = ChainConfig::default().apply_to(Network::devnet()).unwrap();
        assert_eq!(plain.genesis_validators_root(), None);
        assert_eq!(plain.genesis_time(), None);
    }

    #[test]
    fn builtin_network_refuses_another_genesis() {
        let mainnet = || Network::builtin("mainnet").unwrap();
        let other_root = ChainConfig {
            genesis_validators_root: Some(ROOT.into()),
            ..Default::default()
        };
        let err = other_root.apply_to(mainnet()).unwrap_err();
        assert_eq!(err.setting, "chain.genesis_validators_root");
        let same_root = ChainConfig {
            genesis_validators_root: Some(
                "4b363db94e286120d76eb905340fdd4e54bfe9f06bf33ff6cf5ad27f511bfe95".into(),
            ),
            genesis_time: Some(1606824023),
            ..Default::default()
        };
        assert!(same_root.apply_to(mainnet()).is_ok());
        let other_time = ChainConfig {
            genesis_time: Some(1),
            ..Default::default()
        };
        assert_eq!(
            other_time.apply_to(mainnet()).unwrap_err().setting,
            "chain.genesis_time"
        );
    }

    #[test]
    fn bad_values_are_named() {
        let bad_root = ChainConfig {
            genesis_validators_root: Some("0x1234".into()),
            ..Default::default()
        };
        assert_eq!(
            bad_root.validate().unwrap_err().setting,
            "chain.genesis_validators_root"
        );
        let zero = ChainConfig {
            future_tolerance_slots: 0,
            ..Default::default()
        };
        assert_eq!(
            zero.validate().unwrap_err().setting,
            "chain.future_tolerance_slots"
        );
        assert!(ChainConfig::default().validate().is_ok());
    }

    #[test]
    fn flags_override_the_section_and_reach_the_network() {
        let args = crate::config::ConfigArgs {
            network: Some("mainnet".into()),
            chain: ChainArgs {
                future_guard: Some(false),
                future_tolerance_slots: Some(8),
                genesis_time: Some(1606824023),
                ..Default::default()
            },
            ..Default::default()
        };
        let config = args.load().unwrap();
        assert!(!config.chain.future_guard);
        assert_eq!(config.chain.future_tolerance_slots, 8);
        let wrong = crate::config::ConfigArgs {
            chain: ChainArgs {
                genesis_validators_root: Some(ROOT.into()),
                ..Default::default()
            },
            ..Default::default()
        };
        // The default network is mainnet: another root is a config error naming the setting.
        assert_eq!(
            wrong.load().unwrap_err().setting,
            "chain.genesis_validators_root"
        );
    }
}
