//! Start-up: the one place that opens the HSM and assembles the key inventory, shared by
//! `keyguard run`, `keyguard keys list` and the keymanager API.
//!
//! The inventory is every key-loading job of every source, in this order: the configured
//! sources (`[keys]` keystores, Web3Signer key definitions, interop keys), the sealed keys
//! of `keys.sealed`, and the keys imported earlier through the keymanager API (loaded
//! whether or not the API is on). The HSM session is opened at most once, when sealed
//! keys or the keymanager's store need it, and kept for the life of the process.

use std::sync::Arc;

use anyhow::Context;

use crate::config::Config;
use crate::hsm::{HsmConfig, HsmSession};
use crate::keymanager::KeyStore;
use crate::keys::{self, LoadJob};

/// Every key to load, and what was opened to find them.
pub struct KeyInventory {
    /// Load jobs of every key of every source (see the module documentation).
    pub jobs: Vec<LoadJob>,
    /// The HSM session, when sealed keys or the keymanager need one.
    pub hsm: Option<Arc<HsmSession>>,
    /// The keymanager's store; `None` when its directory does not exist and the API is
    /// off.
    pub store: Option<KeyStore>,
    /// How many of `jobs` are keys imported through the keymanager API.
    pub stored_keys: usize,
}

/// Assembles the key inventory. `keymanager_api` tells whether the keymanager API will be
/// served (it then needs its store, and the HSM to seal new imports when `[hsm]` is set).
/// A source that cannot be read at all, or an HSM that cannot be opened, is an error; a
/// key that fails to load is not (its job reports it when run).
pub fn key_inventory(config: &Config, keymanager_api: bool) -> anyhow::Result<KeyInventory> {
    let mut jobs =
        keys::load_jobs(&config.keys).context("cannot read the configured key sources")?;
    jobs.extend(keys::remote::load_jobs(&config.keys.remote)?);
    let mut hsm = None;
    if let Some(sealed_dir) = &config.keys.sealed {
        let session = open_hsm(config.require_hsm()?)?;
        jobs.extend(
            crate::hsm::sealed_load_jobs(Arc::clone(&session), sealed_dir)
                .with_context(|| format!("cannot read sealed keys in {}", sealed_dir.display()))?,
        );
        hsm = Some(session);
    }
    let (store, stored) = open_store(config, &mut hsm, keymanager_api)?;
    let stored_keys = stored.len();
    jobs.extend(stored);
    Ok(KeyInventory {
        jobs,
        hsm,
        store,
        stored_keys,
    })
}

/// Opens the keymanager's store (none when its directory does not exist and the API is
/// off) and lists its keys. The HSM is opened here when it is not open yet and the API is
/// on (it seals new imports) or sealed imports are stored.
fn open_store(
    config: &Config,
    hsm: &mut Option<Arc<HsmSession>>,
    api_enabled: bool,
) -> anyhow::Result<(Option<KeyStore>, Vec<LoadJob>)> {
    let dir = config.keymanager.dir_path(&config.data_dir);
    if !api_enabled && !dir.exists() {
        return Ok((None, Vec::new()));
    }
    let has_sealed = KeyStore::has_sealed_keys(&dir)
        .with_context(|| format!("cannot read imported keys in {}", dir.display()))?;
    if let (Some(hsm_config), None) = (&config.hsm, &hsm) {
        if api_enabled || has_sealed {
            let session =
                open_hsm(hsm_config).context("the keymanager seals imported keys with the HSM")?;
            *hsm = Some(session);
        }
    }
    let store_hsm = config.hsm.as_ref().and(hsm.clone());
    let store = KeyStore::open(&dir, store_hsm)
        .with_context(|| format!("cannot open the keymanager directory {}", dir.display()))?;
    let jobs = store
        .load_jobs()
        .with_context(|| format!("cannot read imported keys in {}", dir.display()))?;
    Ok((Some(store), jobs))
}

/// Opens the HSM session and checks that its key-encryption key exists: the only place
/// a long-lived session is opened.
fn open_hsm(config: &HsmConfig) -> anyhow::Result<Arc<HsmSession>> {
    let hsm = Arc::new(HsmSession::open(config).context("cannot open the HSM")?);
    hsm.require_kek()
        .context("the HSM has no key-encryption key")?;
    Ok(hsm)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interop_keys_and_no_store_need_no_hsm() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config {
            data_dir: dir.path().into(),
            ..Config::default()
        };
        config.keys.interop_keys = Some(3);
        let inventory = key_inventory(&config, false).unwrap();
        assert_eq!(inventory.jobs.len(), 3);
        assert!(inventory.hsm.is_none());
        assert!(inventory.store.is_none());
        assert_eq!(inventory.stored_keys, 0);
    }

    #[test]
    fn keymanager_api_opens_its_store_and_counts_its_keys() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config {
            data_dir: dir.path().into(),
            ..Config::default()
        };
        config.keys.interop_keys = Some(2);
        let inventory = key_inventory(&config, true).unwrap();
        assert!(inventory.store.is_some());
        assert!(dir.path().join("keymanager").is_dir());
        assert_eq!((inventory.jobs.len(), inventory.stored_keys), (2, 0));
        // Off again: the existing store is still opened, so imported keys keep loading.
        let again = key_inventory(&config, false).unwrap();
        assert!(again.store.is_some());
    }
}
