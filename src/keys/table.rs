//! The in-memory key table: pubkey -> loaded key. Read on every request, written while
//! keys load and by the keymanager API.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::RwLock;

use super::{PubkeyBytes, ValidatorKey};

/// A pubkey that is already in the table (from the same or another source).
#[derive(Debug, thiserror::Error)]
#[error("pubkey {pubkey} is loaded twice: from {first} and from {second}")]
pub struct DuplicateKey {
    /// The duplicated pubkey (hex).
    pub pubkey: String,
    /// Origin of the key already loaded.
    pub first: String,
    /// Origin of the key that was refused.
    pub second: String,
}

/// Thread-safe map of loaded keys. Cloning the `Arc` of a key is all a signer holds.
#[derive(Default)]
pub struct KeyTable {
    keys: RwLock<HashMap<PubkeyBytes, Arc<ValidatorKey>>>,
}

impl KeyTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a key; a pubkey already present is an error and the table is unchanged.
    pub fn insert(&self, key: ValidatorKey) -> Result<Arc<ValidatorKey>, DuplicateKey> {
        let key = Arc::new(key);
        self.insert_shared(Arc::clone(&key))?;
        Ok(key)
    }

    /// Adds a key that is already shared (e.g. one put back after an aborted removal);
    /// a pubkey already present is an error and the table is unchanged.
    pub fn insert_shared(&self, key: Arc<ValidatorKey>) -> Result<(), DuplicateKey> {
        let mut keys = self.keys.write();
        if let Some(existing) = keys.get(key.pubkey()) {
            return Err(DuplicateKey {
                pubkey: super::pubkey_hex(key.pubkey()),
                first: existing.origin().to_string(),
                second: key.origin().to_string(),
            });
        }
        keys.insert(*key.pubkey(), key);
        Ok(())
    }

    /// The key for a pubkey, if loaded.
    pub fn get(&self, pubkey: &PubkeyBytes) -> Option<Arc<ValidatorKey>> {
        self.keys.read().get(pubkey).cloned()
    }

    /// Removes and returns a key.
    pub fn remove(&self, pubkey: &PubkeyBytes) -> Option<Arc<ValidatorKey>> {
        self.keys.write().remove(pubkey)
    }

    /// All loaded pubkeys, sorted so listings are stable.
    pub fn pubkeys(&self) -> Vec<PubkeyBytes> {
        let mut out: Vec<_> = self.keys.read().keys().copied().collect();
        out.sort_unstable();
        out
    }

    /// All loaded keys, sorted by pubkey.
    pub fn keys(&self) -> Vec<Arc<ValidatorKey>> {
        let mut out: Vec<_> = self.keys.read().values().cloned().collect();
        out.sort_unstable_by(|a, b| a.pubkey().cmp(b.pubkey()));
        out
    }

    /// How many keys are loaded.
    pub fn len(&self) -> usize {
        self.keys.read().len()
    }

    /// True when no key is loaded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::KeySource;
    use zeroize::Zeroizing;

    fn key(n: u8, origin: &str) -> ValidatorKey {
        let mut b = [0u8; 32];
        b[31] = n;
        ValidatorKey::from_secret_bytes(&Zeroizing::new(b), KeySource::Keystore, origin).unwrap()
    }

    #[test]
    fn duplicate_pubkey_is_refused_and_names_both_origins() {
        let table = KeyTable::new();
        table.insert(key(1, "a.json")).unwrap();
        let err = table.insert(key(1, "b.json")).unwrap_err();
        assert_eq!(
            (err.first.as_str(), err.second.as_str()),
            ("a.json", "b.json")
        );
        assert_eq!(table.len(), 1);
    }

    #[test]
    fn get_and_remove() {
        let table = KeyTable::new();
        let pk = *table.insert(key(2, "a")).unwrap().pubkey();
        assert!(table.get(&pk).is_some());
        assert!(table.remove(&pk).is_some());
        assert!(table.get(&pk).is_none());
    }
}
