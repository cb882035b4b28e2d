//! Networks: fork schedules, genesis fork versions and presets, built in or from a
//! consensus-specs `config.yaml`.

use std::path::Path;

use super::fork::Fork;
use super::preset::Preset;
use super::wire::{parse_decimal_u64, Bytes, Bytes4};
use super::Root;

/// The epoch of a fork that is not scheduled.
pub const FAR_FUTURE_EPOCH: u64 = u64::MAX;

/// Every fork after genesis, in the order of [`Fork::ALL`] minus phase0.
const SCHEDULED_FORKS: usize = Fork::ALL.len() - 1;

/// A network's fork schedule and preset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Network {
    name: String,
    preset: Preset,
    genesis_fork_version: Bytes4,
    /// `(version, epoch)` of Altair, Bellatrix, ... in [`Fork::ALL`] order.
    forks: [(Bytes4, u64); SCHEDULED_FORKS],
    genesis_validators_root: Option<Root>,
    /// Unix seconds of slot 0, when known (built-in networks, `GENESIS_TIME` in a config).
    genesis_time: Option<u64>,
    /// Length of a slot in milliseconds.
    slot_duration_ms: u64,
    public: bool,
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
    /// A required key is absent.
    #[error("network config {path}: missing key {key}")]
    Missing {
        /// The file.
        path: String,
        /// The key.
        key: String,
    },
    /// A key's value is malformed.
    #[error("network config {path}: {key}: {reason}")]
    Invalid {
        /// The file.
        path: String,
        /// The key.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// A compact description of one built-in network.
struct Builtin {
    name: &'static str,
    preset: Preset,
    genesis_fork_version: [u8; 4],
    /// Altair..Gloas versions and epochs.
    forks: [([u8; 4], u64); SCHEDULED_FORKS],
    genesis_validators_root: &'static str,
    /// Unix seconds of slot 0 (the beacon API's `genesis_time`).
    genesis_time: u64,
    /// `SECONDS_PER_SLOT`.
    seconds_per_slot: u64,
}

const FAR: u64 = FAR_FUTURE_EPOCH;

// Values from the networks' published consensus configs (eth-clients / client repos).
// Genesis validators roots and genesis times, checked against: mainnet, gnosis and sepolia
// in Lodestar's `networks` genesis data (mainnet 1606824023, gnosis 1638993340); sepolia in
// eth-clients/sepolia metadata/README.md (genesis_time 1655733600); holesky in
// eth-clients/holesky README.md (1695902400); hoodi in Nimbus' and ChainSafe's genesis
// tables (1742213400 = MIN_GENESIS_TIME 1742212800 + GENESIS_DELAY 600 of
// eth-clients/hoodi metadata/config.yaml).
// DENEB's epoch (EIP-7044 exits) and ELECTRA's and GLOAS's (bare aggregates) change
// signing roots; the rest are kept for completeness and for `fork_at_epoch`. Mainnet,
// Holesky and Gnosis have no published Gloas epoch yet (FAR). A fork after Gloas (`HEZE`
// in consensus-specs) adds one column here once it is added to `Fork`.
const BUILTINS: [Builtin; 5] = [
    Builtin {
        name: "mainnet",
        preset: Preset::Mainnet,
        genesis_fork_version: [0x00, 0, 0, 0],
        forks: [
            ([0x01, 0, 0, 0], 74240),
            ([0x02, 0, 0, 0], 144896),
            ([0x03, 0, 0, 0], 194048),
            ([0x04, 0, 0, 0], 269568),
            ([0x05, 0, 0, 0], 364032),
            ([0x06, 0, 0, 0], 411392),
            ([0x07, 0, 0, 0], FAR),
        ],
        genesis_validators_root: "4b363db94e286120d76eb905340fdd4e54bfe9f06bf33ff6cf5ad27f511bfe95",
        genesis_time: 1606824023,
        seconds_per_slot: 12,
    },
    Builtin {
        name: "sepolia",
        preset: Preset::Mainnet,
        genesis_fork_version: [0x90, 0, 0, 0x69],
        forks: [
            ([0x90, 0, 0, 0x70], 50),
            ([0x90, 0, 0, 0x71], 100),
            ([0x90, 0, 0, 0x72], 56832),
            ([0x90, 0, 0, 0x73], 132608),
            ([0x90, 0, 0, 0x74], 222464),
            ([0x90, 0, 0, 0x75], 272640),
            // Gloas: eth-clients/sepolia metadata/config.yaml (live 2026-10-06).
            ([0x90, 0, 0, 0x76], 353024),
        ],
        genesis_validators_root: "d8ea171f3c94aea21ebc42a1ed61052acf3f9209c00e4efbaaddac09ed9b8078",
        genesis_time: 1655733600,
        seconds_per_slot: 12,
    },
    Builtin {
        name: "hoodi",
        preset: Preset::Mainnet,
        genesis_fork_version: [0x10, 0, 0x09, 0x10],
        forks: [
            ([0x20, 0, 0x09, 0x10], 0),
            ([0x30, 0, 0x09, 0x10], 0),
            ([0x40, 0, 0x09, 0x10], 0),
            ([0x50, 0, 0x09, 0x10], 0),
            ([0x60, 0, 0x09, 0x10], 2048),
            ([0x70, 0, 0x09, 0x10], 50688),
            // Gloas: scheduled for 2026-12-15 (epoch 143616 = genesis 1742213400 +
            // 143616 * 384 s); the version follows Hoodi's 0xN0000910 series.
            ([0x80, 0, 0x09, 0x10], 143616),
        ],
        genesis_validators_root: "212f13fc4df078b6cb7db228f1c8307566dcecf900867401a92023d7ba99cb5f",
        genesis_time: 1742213400,
        seconds_per_slot: 12,
    },
    Builtin {
        name: "holesky",
        preset: Preset::Mainnet,
        genesis_fork_version: [0x01, 0x01, 0x70, 0x00],
        forks: [
            ([0x02, 0x01, 0x70, 0x00], 0),
            ([0x03, 0x01, 0x70, 0x00], 0),
            ([0x04, 0x01, 0x70, 0x00], 256),
            ([0x05, 0x01, 0x70, 0x00], 29696),
            ([0x06, 0x01, 0x70, 0x00], 115968),
            ([0x07, 0x01, 0x70, 0x00], 165120),
            ([0x08, 0x01, 0x70, 0x00], FAR),
        ],
        genesis_validators_root: "9143aa7c615a7f7115e2b6aac319c03529df8242ae705fba9df39b79c59fa8b1",
        genesis_time: 1695902400,
        seconds_per_slot: 12,
    },
    Builtin {
        name: "gnosis",
        preset: Preset::Gnosis,
        genesis_fork_version: [0x00, 0, 0, 0x64],
        forks: [
            ([0x01, 0, 0, 0x64], 512),
            ([0x02, 0, 0, 0x64], 385536),
            ([0x03, 0, 0, 0x64], 648704),
            ([0x04, 0, 0, 0x64], 889856),
            ([0x05, 0, 0, 0x64], 1337856),
            ([0x06, 0, 0, 0x64], 1714688),
            ([0x07, 0, 0, 0x64], FAR),
        ],
        genesis_validators_root: "f5dcb5564e829aab27264b9becd5dfaa017085611224cb3036f573368dbb9d47",
        genesis_time: 1638993340,
        seconds_per_slot: 5,
    },
];

/// keyguard's zero-setup dev network (Lodestar's minimal-preset devnet defaults).
const DEVNET_CONFIG: &str = include_str!("../../config/networks/devnet-minimal.yaml");

impl Builtin {
    fn network(&self) -> Network {
        let mut gvr = [0u8; 32];
        // The constants above are 64 valid hex digits; a typo would fail the unit tests.
        let gvr_ok = hex::decode_to_slice(self.genesis_validators_root, &mut gvr).is_ok();
        Network {
            name: self.name.to_string(),
            preset: self.preset,
            genesis_fork_version: Bytes(self.genesis_fork_version),
            forks: self.forks.map(|(v, e)| (Bytes(v), e)),
            genesis_validators_root: gvr_ok.then_some(gvr),
            genesis_time: Some(self.genesis_time),
            slot_duration_ms: self.seconds_per_slot.saturating_mul(1000),
            public: true,
        }
    }
}

impl Network {
    /// A built-in network by name: mainnet, sepolia, hoodi, holesky, gnosis.
    pub fn builtin(name: &str) -> Option<Network> {
        BUILTINS
            .iter()
            .find(|b| b.name.eq_ignore_ascii_case(name))
            .map(Builtin::network)
    }

    /// Names of the built-in networks.
    pub fn builtin_names() -> &'static [&'static str] {
        &["mainnet", "sepolia", "hoodi", "holesky", "gnosis"]
    }

    /// The dev-mode network: `config/networks/devnet-minimal.yaml`, compiled in (minimal
    /// preset, Lodestar's dev fork versions, ALTAIR@1 BELLATRIX@2 CAPELLA@3).
    pub fn devnet() -> Network {
        match Self::from_config_str(DEVNET_CONFIG, "devnet-minimal.yaml") {
            Ok(network) => network,
            // The embedded file is covered by a unit test; this arm only keeps the
            // constructor infallible.
            Err(_) => Network {
                name: "devnet".to_string(),
                preset: Preset::Minimal,
                genesis_fork_version: Bytes([0, 0, 0, 1]),
                forks: [(Bytes4::ZERO, FAR_FUTURE_EPOCH); SCHEDULED_FORKS],
                genesis_validators_root: None,
                genesis_time: None,
                slot_duration_ms: 1000,
                public: false,
            },
        }
    }

    /// Loads a network from a consensus-specs `config.yaml`.
    pub fn from_config_file(path: &Path) -> Result<Network, NetworkError> {
        let text = std::fs::read_to_string(path).map_err(|source| NetworkError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_config_str(&text, &path.display().to_string())
    }

    /// Parses the text of a consensus-specs `config.yaml`; `origin` names it in errors.
    ///
    /// Only flat `KEY: value` lines are read (nested structures such as `BLOB_SCHEDULE`
    /// are skipped): a YAML library would read `0x00000001` as the integer 1.
    pub fn from_config_str(text: &str, origin: &str) -> Result<Network, NetworkError> {
        let cfg = ConfigLines::parse(text);
        let invalid = |key: &str, reason: String| NetworkError::Invalid {
            path: origin.to_string(),
            key: key.to_string(),
            reason,
        };
        let preset = match cfg.get("PRESET_BASE") {
            None => Preset::Mainnet,
            Some(v) => Preset::from_name(v).ok_or_else(|| {
                invalid(
                    "PRESET_BASE",
                    format!("unknown preset {v:?} (mainnet, minimal, gnosis)"),
                )
            })?,
        };
        let version = |key: &str| -> Result<Option<Bytes4>, NetworkError> {
            cfg.get(key)
                .map(|v| Bytes4::from_hex(v).map_err(|r| invalid(key, r)))
                .transpose()
        };
        let epoch = |key: &str| -> Result<Option<u64>, NetworkError> {
            cfg.get(key)
                .map(|v| parse_decimal_u64(v).map_err(|r| invalid(key, r)))
                .transpose()
        };
        let genesis_fork_version =
            version("GENESIS_FORK_VERSION")?.ok_or_else(|| NetworkError::Missing {
                path: origin.to_string(),
                key: "GENESIS_FORK_VERSION".to_string(),
            })?;
        let mut forks = [(Bytes4::ZERO, FAR_FUTURE_EPOCH); SCHEDULED_FORKS];
        for (slot, fork) in forks.iter_mut().zip(&Fork::ALL[1..]) {
            *slot = read_fork(*fork, &version, &epoch, origin)?;
        }
        let name = cfg
            .get("CONFIG_NAME")
            .map(str::to_string)
            .unwrap_or_else(|| origin.to_string());
        let public = BUILTINS
            .iter()
            .any(|b| b.genesis_fork_version == genesis_fork_version.0);
        let slot_duration_ms = match (epoch("SLOT_DURATION_MS")?, epoch("SECONDS_PER_SLOT")?) {
            (Some(ms), _) => ms,
            (None, Some(seconds)) => seconds.saturating_mul(1000),
            (None, None) => preset.default_slot_duration_ms(),
        };
        if slot_duration_ms == 0 {
            return Err(invalid("SECONDS_PER_SLOT", "a slot cannot last 0 s".into()));
        }
        Ok(Network {
            name,
            preset,
            genesis_fork_version,
            forks,
            genesis_validators_root: None,
            // Only an explicit GENESIS_TIME (not a consensus-specs key, but the place a
            // config may give it): MIN_GENESIS_TIME + GENESIS_DELAY is not the genesis
            // time (mainnet's is a week after its real genesis, which would make the
            // future guard refuse every current duty).
            genesis_time: epoch("GENESIS_TIME")?,
            slot_duration_ms,
            public,
        })
    }

    /// The network's name (`CONFIG_NAME`, or the built-in name).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// True for networks where real value is at stake or keys are public-facing: the
    /// built-in networks, and any config that uses one of their genesis fork versions.
    /// Public interop test keys are refused on these.
    pub fn is_public(&self) -> bool {
        self.public
    }

    /// The preset that decides SSZ limits.
    pub fn preset(&self) -> Preset {
        self.preset
    }

    /// `SLOTS_PER_EPOCH` of the preset.
    pub fn slots_per_epoch(&self) -> u64 {
        self.preset.slots_per_epoch()
    }

    /// `GENESIS_FORK_VERSION`.
    pub fn genesis_fork_version(&self) -> [u8; 4] {
        self.genesis_fork_version.0
    }

    /// The known genesis validators root (built-in networks, or a custom network whose
    /// configuration gives it).
    pub fn genesis_validators_root(&self) -> Option<Root> {
        self.genesis_validators_root
    }

    /// Unix seconds of slot 0, when known.
    pub fn genesis_time(&self) -> Option<u64> {
        self.genesis_time
    }

    /// The length of a slot in milliseconds (`SLOT_DURATION_MS`, `SECONDS_PER_SLOT`, or
    /// the preset's usual value).
    pub fn slot_duration_ms(&self) -> u64 {
        self.slot_duration_ms
    }

    /// A fork's version (phase0: the genesis version).
    pub fn fork_version(&self, fork: Fork) -> [u8; 4] {
        self.fork_entry(fork).0 .0
    }

    /// A fork's activation epoch (phase0: 0; unscheduled: [`FAR_FUTURE_EPOCH`]).
    pub fn fork_epoch(&self, fork: Fork) -> u64 {
        self.fork_entry(fork).1
    }

    /// The fork active at `epoch`.
    pub fn fork_at_epoch(&self, epoch: u64) -> Fork {
        Fork::ALL
            .into_iter()
            .rev()
            .find(|f| self.fork_epoch(*f) <= epoch)
            .unwrap_or(Fork::Phase0)
    }

    /// Every scheduled fork as `NAME@epoch (0xversion)`, in order, then the forks this
    /// network has no epoch for (for the start-up log).
    pub fn schedule_summary(&self) -> String {
        let (scheduled, unscheduled): (Vec<Fork>, Vec<Fork>) = Fork::ALL
            .into_iter()
            .partition(|f| self.fork_epoch(*f) != FAR_FUTURE_EPOCH);
        let mut parts: Vec<String> = scheduled
            .iter()
            .map(|f| {
                format!(
                    "{}@{} (0x{})",
                    f.name(),
                    self.fork_epoch(*f),
                    hex::encode(self.fork_version(*f))
                )
            })
            .collect();
        if !unscheduled.is_empty() {
            let names: Vec<&str> = unscheduled.iter().map(|f| f.name()).collect();
            parts.push(format!("not scheduled: {}", names.join(", ")));
        }
        parts.join(", ")
    }

    /// The fork version active at `epoch`.
    pub fn fork_version_at_epoch(&self, epoch: u64) -> [u8; 4] {
        self.fork_version(self.fork_at_epoch(epoch))
    }

    /// The epoch that `slot` falls in.
    pub fn epoch_of_slot(&self, slot: u64) -> u64 {
        slot / self.slots_per_epoch()
    }

    fn fork_entry(&self, fork: Fork) -> (Bytes4, u64) {
        let index = Fork::ALL.iter().position(|f| *f == fork).unwrap_or(0);
        match index.checked_sub(1).and_then(|i| self.forks.get(i)) {
            Some(entry) => *entry,
            None => (self.genesis_fork_version, 0),
        }
    }

    /// Replaces the genesis validators root (for configs whose genesis is known).
    pub fn with_genesis_validators_root(mut self, root: Option<Root>) -> Network {
        self.genesis_validators_root = root;
        self
    }

    /// Replaces the genesis time (Unix seconds).
    pub fn with_genesis_time(mut self, genesis_time: Option<u64>) -> Network {
        self.genesis_time = genesis_time;
        self
    }
}

/// Reads `<FORK>_FORK_VERSION` / `<FORK>_FORK_EPOCH`; Deneb also under its old `EIP4844`
/// name (Lodestar 1.5.1 writes that).
fn read_fork(
    fork: Fork,
    version: &dyn Fn(&str) -> Result<Option<Bytes4>, NetworkError>,
    epoch: &dyn Fn(&str) -> Result<Option<u64>, NetworkError>,
    origin: &str,
) -> Result<(Bytes4, u64), NetworkError> {
    let mut names = vec![fork.name()];
    if fork == Fork::Deneb {
        names.push("EIP4844");
    }
    for name in names {
        let (vkey, ekey) = (format!("{name}_FORK_VERSION"), format!("{name}_FORK_EPOCH"));
        let (v, e) = (version(&vkey)?, epoch(&ekey)?);
        match (v, e) {
            (None, None) => continue,
            (Some(v), e) => return Ok((v, e.unwrap_or(FAR_FUTURE_EPOCH))),
            (None, Some(FAR_FUTURE_EPOCH)) => return Ok((Bytes4::ZERO, FAR_FUTURE_EPOCH)),
            (None, Some(_)) => {
                return Err(NetworkError::Missing {
                    path: origin.to_string(),
                    key: vkey,
                })
            }
        }
    }
    Ok((Bytes4::ZERO, FAR_FUTURE_EPOCH))
}

/// The flat `KEY: value` lines of a config file.
struct ConfigLines<'a> {
    entries: Vec<(&'a str, &'a str)>,
}

impl<'a> ConfigLines<'a> {
    fn parse(text: &'a str) -> Self {
        let entries = text
            .lines()
            .filter(|line| !line.starts_with([' ', '\t', '-', '#']))
            .filter_map(|line| {
                let line = line.split('#').next().unwrap_or("");
                let (key, value) = line.split_once(':')?;
                let value = value.trim().trim_matches(|c| c == '\'' || c == '"');
                Some((key.trim(), value))
            })
            .filter(|(key, value)| !key.is_empty() && !value.is_empty())
            .collect();
        ConfigLines { entries }
    }

    /// The last value of `key` (YAML would keep the last duplicate too).
    fn get(&self, key: &str) -> Option<&'a str> {
        self.entries
            .iter()
            .rev()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| *v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_are_complete() {
        for name in Network::builtin_names() {
            let n = Network::builtin(name).unwrap();
            assert_eq!(n.name(), *name);
            assert!(n.is_public());
            assert!(n.genesis_validators_root().is_some(), "{name}");
            let epochs: Vec<u64> = Fork::ALL.iter().map(|f| n.fork_epoch(*f)).collect();
            assert!(
                epochs.windows(2).all(|w| w[0] <= w[1]),
                "{name}: {epochs:?}"
            );
        }
        assert!(Network::builtin("goerli").is_none());
        let mainnet = Network::builtin("MAINNET").unwrap();
        assert_eq!(mainnet.fork_at_epoch(269567), Fork::Capella);
        assert_eq!(mainnet.fork_at_epoch(269568), Fork::Deneb);
        assert_eq!(mainnet.fork_version_at_epoch(0), [0, 0, 0, 0]);
        assert_eq!(mainnet.fork_version(Fork::Capella), [3, 0, 0, 0]);
        assert_eq!(mainnet.slots_per_epoch(), 32);
        assert_eq!(Network::builtin("gnosis").unwrap().slots_per_epoch(), 16);
    }

    #[test]
    fn builtin_genesis_times_and_slot_lengths() {
        let expect = [
            ("mainnet", 1606824023, 12_000),
            ("sepolia", 1655733600, 12_000),
            ("hoodi", 1742213400, 12_000),
            ("holesky", 1695902400, 12_000),
            ("gnosis", 1638993340, 5_000),
        ];
        for (name, genesis, slot_ms) in expect {
            let n = Network::builtin(name).unwrap();
            assert_eq!(n.genesis_time(), Some(genesis), "{name}");
            assert_eq!(n.slot_duration_ms(), slot_ms, "{name}");
        }
        let hoodi = Network::builtin("hoodi").unwrap();
        assert_eq!(
            hex::encode(hoodi.genesis_validators_root().unwrap()),
            "212f13fc4df078b6cb7db228f1c8307566dcecf900867401a92023d7ba99cb5f"
        );
    }

    #[test]
    fn config_slot_length_and_genesis_time() {
        let base = "GENESIS_FORK_VERSION: 0x00000001\n";
        let n = Network::from_config_str(base, "c.yaml").unwrap();
        assert_eq!((n.slot_duration_ms(), n.genesis_time()), (12_000, None));
        let minimal = format!("{base}PRESET_BASE: minimal\n");
        let n = Network::from_config_str(&minimal, "c.yaml").unwrap();
        assert_eq!(n.slot_duration_ms(), 6_000);
        let seconds = format!("{base}SECONDS_PER_SLOT: 2\nGENESIS_TIME: 1700000000\n");
        let n = Network::from_config_str(&seconds, "c.yaml").unwrap();
        assert_eq!(
            (n.slot_duration_ms(), n.genesis_time()),
            (2_000, Some(1700000000))
        );
        let ms = format!("{base}SECONDS_PER_SLOT: 12\nSLOT_DURATION_MS: 6000\n");
        assert_eq!(
            Network::from_config_str(&ms, "c.yaml")
                .unwrap()
                .slot_duration_ms(),
            6_000
        );
        // MIN_GENESIS_TIME + GENESIS_DELAY is no genesis time.
        let min = format!("{base}MIN_GENESIS_TIME: 1606824000\nGENESIS_DELAY: 604800\n");
        assert_eq!(
            Network::from_config_str(&min, "c.yaml")
                .unwrap()
                .genesis_time(),
            None
        );
        let zero = format!("{base}SECONDS_PER_SLOT: 0\n");
        let err = Network::from_config_str(&zero, "c.yaml").unwrap_err();
        assert!(err.to_string().contains("SECONDS_PER_SLOT"), "{err}");
        assert_eq!(Network::devnet().slot_duration_ms(), 1_000);
    }

    #[test]
    fn schedule_summary_lists_epochs_and_versions_then_unscheduled_forks() {
        let config = "PRESET_BASE: minimal\nGENESIS_FORK_VERSION: 0x00000001\n\
                      ALTAIR_FORK_VERSION: 0x01000001\nALTAIR_FORK_EPOCH: 0\n\
                      BELLATRIX_FORK_VERSION: 0x02000001\nBELLATRIX_FORK_EPOCH: 4\n";
        let net = Network::from_config_str(config, "c.yaml").unwrap();
        assert_eq!(
            net.schedule_summary(),
            "PHASE0@0 (0x00000001), ALTAIR@0 (0x01000001), BELLATRIX@4 (0x02000001), \
             not scheduled: CAPELLA, DENEB, ELECTRA, FULU, GLOAS"
        );
        let hoodi = Network::builtin("hoodi").unwrap().schedule_summary();
        assert!(hoodi.contains("GLOAS@143616 (0x80000910)"), "{hoodi}");
        assert!(!hoodi.contains("not scheduled"), "{hoodi}");
    }

    #[test]
    fn gloas_schedules() {
        let sepolia = Network::builtin("sepolia").unwrap();
        assert_eq!(sepolia.fork_epoch(Fork::Gloas), 353024);
        assert_eq!(sepolia.fork_version(Fork::Gloas), [0x90, 0, 0, 0x76]);
        assert_eq!(sepolia.fork_at_epoch(353023), Fork::Fulu);
        assert_eq!(sepolia.fork_at_epoch(353024), Fork::Gloas);
        let hoodi = Network::builtin("hoodi").unwrap();
        assert_eq!(hoodi.fork_epoch(Fork::Gloas), 143616);
        assert_eq!(hoodi.fork_version(Fork::Gloas), [0x80, 0, 0x09, 0x10]);
        for unscheduled in ["mainnet", "gnosis", "holesky"] {
            let n = Network::builtin(unscheduled).unwrap();
            assert_eq!(n.fork_epoch(Fork::Gloas), FAR_FUTURE_EPOCH, "{unscheduled}");
        }
        let config = "GENESIS_FORK_VERSION: 0x00000001\nFULU_FORK_VERSION: 0x06000001\n\
                      FULU_FORK_EPOCH: 3\nGLOAS_FORK_VERSION: 0x07000001\nGLOAS_FORK_EPOCH: 5\n";
        let n = Network::from_config_str(config, "g.yaml").unwrap();
        assert_eq!(n.fork_epoch(Fork::Gloas), 5);
        assert_eq!(n.fork_version(Fork::Gloas), [7, 0, 0, 1]);
        assert_eq!(n.fork_at_epoch(4), Fork::Fulu);
        assert_eq!(n.fork_at_epoch(5), Fork::Gloas);
        let missing = "GENESIS_FORK_VERSION: 0x00000001\nGLOAS_FORK_EPOCH: 5\n";
        let err = Network::from_config_str(missing, "g.yaml").unwrap_err();
        assert!(err.to_string().contains("GLOAS_FORK_VERSION"), "{err}");
    }

    #[test]
    fn devnet_config() {
        let n = Network::devnet();
        assert_eq!(n.name(), "devnet");
        assert!(!n.is_public());
        assert_eq!(n.preset(), Preset::Minimal);
        assert_eq!(n.slots_per_epoch(), 8);
        assert_eq!(n.genesis_fork_version(), [0, 0, 0, 1]);
        assert_eq!(n.fork_at_epoch(0), Fork::Phase0);
        assert_eq!(n.fork_at_epoch(1), Fork::Altair);
        assert_eq!(n.fork_at_epoch(2), Fork::Bellatrix);
        assert_eq!(n.fork_at_epoch(3), Fork::Capella);
        assert_eq!(n.fork_at_epoch(u64::MAX - 1), Fork::Capella);
        assert_eq!(n.fork_version(Fork::Capella), [3, 0, 0, 1]);
        // The compiled-in text parses on its own.
        Network::from_config_str(DEVNET_CONFIG, "devnet").unwrap();
    }

    const LODESTAR_151: &str = "\
# Extends the minimal preset
PRESET_BASE: 'minimal'
CONFIG_NAME: 'dev'
GENESIS_FORK_VERSION: 0x00000001
ALTAIR_FORK_VERSION: 0x01000001
ALTAIR_FORK_EPOCH: 1   # comment
BELLATRIX_FORK_VERSION: 0x02000001
BELLATRIX_FORK_EPOCH: 2
CAPELLA_FORK_VERSION: 0x03000001
CAPELLA_FORK_EPOCH: 3
EIP4844_FORK_VERSION: 0x04000001
EIP4844_FORK_EPOCH: 7
SOME_UNKNOWN_KEY: whatever
BLOB_SCHEDULE:
  - EPOCH: 5
    MAX_BLOBS_PER_BLOCK: 6
";

    #[test]
    fn config_minimal_with_eip4844_alias() {
        let n = Network::from_config_str(LODESTAR_151, "lodestar.yaml").unwrap();
        assert_eq!(n.name(), "dev");
        assert_eq!(n.preset(), Preset::Minimal);
        assert_eq!(n.fork_epoch(Fork::Altair), 1);
        assert_eq!(n.fork_epoch(Fork::Deneb), 7);
        assert_eq!(n.fork_version(Fork::Deneb), [4, 0, 0, 1]);
        assert_eq!(n.fork_epoch(Fork::Electra), FAR_FUTURE_EPOCH);
        assert_eq!(n.fork_epoch(Fork::Fulu), FAR_FUTURE_EPOCH);
        assert!(!n.is_public());
        assert_eq!(n.genesis_validators_root(), None);
    }

    #[test]
    fn config_public_by_genesis_version() {
        let text = "CONFIG_NAME: mymainnet\nGENESIS_FORK_VERSION: 0x00000000\n";
        let n = Network::from_config_str(text, "x.yaml").unwrap();
        assert!(n.is_public());
        assert_eq!(n.preset(), Preset::Mainnet);
    }

    #[test]
    fn config_errors_name_file_and_key() {
        let cases = [
            ("CONFIG_NAME: x\n", "GENESIS_FORK_VERSION"),
            ("GENESIS_FORK_VERSION: 0x0001\n", "GENESIS_FORK_VERSION"),
            (
                "GENESIS_FORK_VERSION: 0x00000001\nALTAIR_FORK_EPOCH: -1\n",
                "ALTAIR_FORK_EPOCH",
            ),
            (
                "GENESIS_FORK_VERSION: 0x00000001\nALTAIR_FORK_EPOCH: 1\n",
                "ALTAIR_FORK_VERSION",
            ),
            (
                "GENESIS_FORK_VERSION: 0x00000001\nPRESET_BASE: huge\n",
                "PRESET_BASE",
            ),
        ];
        for (text, key) in cases {
            let err = Network::from_config_str(text, "cfg.yaml")
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("cfg.yaml") && err.contains(key),
                "{text}: {err}"
            );
        }
        let err = Network::from_config_file(Path::new("/nonexistent/c.yaml")).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/c.yaml"));
    }

    #[test]
    fn config_file_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.yaml");
        std::fs::write(&path, LODESTAR_151).unwrap();
        let n = Network::from_config_file(&path).unwrap();
        assert_eq!(n.fork_version(Fork::Bellatrix), [2, 0, 0, 1]);
    }
}
