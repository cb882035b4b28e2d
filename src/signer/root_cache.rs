//! The pool's root cache: signing root -> hash-to-G2 point and, for roots that many
//! distinct keys sign, a fixed-base table. Bounded.
//!
//! No client can evict the tables of a slot's widely shared roots:
//! - a root earns a table only from [`TABLE_MIN_SIGNERS`] distinct keys, each signing it
//!   as an attestation-like request (the caller says which; see `signer::sign`): one key
//!   signing a root many times, or types whose roots are per key, never build one;
//! - a flood of new roots evicts only roots without a table (the point cache is FIFO over
//!   them); tables leave only when a newer root earns one, and then the one used least
//!   recently goes, never one in use by the current slot's signers.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::bls::{FixedBaseTable, HashedRoot};

/// How many distinct signing roots keep their hash-to-G2 point. A slot has at most a few
/// dozen distinct shared roots (committees, subnets), so this covers several slots.
pub const ROOT_CACHE_CAPACITY: usize = 1024;

/// A root gets a fixed-base table once this many distinct keys have signed it. Building
/// one costs about as much as 20 signatures save, so only roots that many keys sign (a
/// slot's attestation data, selection proofs, sync-committee roots of large operators) get
/// one.
pub const TABLE_MIN_SIGNERS: usize = 24;

/// How many roots keep a table at once (about 156 KiB each: 64 tables are 10 MiB). A slot
/// has a handful of widely shared roots, so this covers several slots.
pub const TABLE_CAPACITY: usize = 64;

/// A key, as the root cache tells signers apart: 64 bits of its public key (loaded keys
/// are the operator's, so a collision only delays a table by one signer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignerId(u64);

impl SignerId {
    /// The id of the key with compressed public key `pubkey`.
    pub fn of(pubkey: &[u8; 48]) -> Self {
        // Byte 0 holds the compression flags; the next eight are x-coordinate bits.
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(&pubkey[1..9]);
        Self(u64::from_le_bytes(bytes))
    }
}

/// What the root cache has for a root.
pub(super) enum Prepared {
    /// A fixed-base table of the root's point.
    Table(Arc<FixedBaseTable>),
    /// The root's hash-to-G2 point, from the cache.
    Hashed(Arc<HashedRoot>),
    /// The root's hash-to-G2 point, just computed (the root was not cached).
    NewRoot(Arc<HashedRoot>),
    /// The point, and this caller should build the root's table (exactly one caller is
    /// told so per root).
    BuildTable(Arc<HashedRoot>),
}

/// Bounded map signing root -> hash-to-G2 point (and, for roots that many keys sign, a
/// fixed-base table).
pub(super) struct RootCache {
    capacity: usize,
    table_capacity: usize,
    inner: Mutex<RootCacheInner>,
}

/// A cached root.
struct CachedRoot {
    hashed: Arc<HashedRoot>,
    /// Distinct keys that signed it as an attestation-like request, until it earns a table.
    signers: Vec<SignerId>,
    /// Set once a table was handed out to build (so exactly one caller builds it).
    table_requested: bool,
    table: Option<Arc<FixedBaseTable>>,
    /// When its table was last used, on the cache's own clock.
    last_used: u64,
}

#[derive(Default)]
struct RootCacheInner {
    points: HashMap<[u8; 32], CachedRoot>,
    /// Roots in insertion order (roots with a table are skipped when evicting).
    order: VecDeque<[u8; 32]>,
    /// Roots that have a table.
    tables: Vec<[u8; 32]>,
    /// Counts lookups: a clock for "least recently used".
    clock: u64,
}

impl RootCache {
    pub(super) fn new(capacity: usize, table_capacity: usize) -> Self {
        Self {
            // Room for every table and at least one root without one.
            capacity: capacity.max(table_capacity + 1),
            table_capacity,
            inner: Mutex::default(),
        }
    }

    /// What is cached for `root`, counting this use. `signer` is the signing key when the
    /// request is attestation-like (its root may deserve a table), `None` otherwise. A new
    /// root is hashed outside the lock (two threads may both hash it once, which is
    /// cheaper than making one wait).
    pub(super) fn prepare(&self, root: &[u8; 32], signer: Option<SignerId>) -> Prepared {
        {
            let mut guard = self.inner.lock();
            let inner = &mut *guard;
            inner.clock += 1;
            if let Some(hit) = inner.points.get_mut(root) {
                return hit.use_once(signer, inner.clock);
            }
        }
        let hashed = Arc::new(HashedRoot::new(root));
        let mut inner = self.inner.lock();
        let cached = CachedRoot {
            hashed: Arc::clone(&hashed),
            signers: signer.into_iter().collect(),
            table_requested: false,
            table: None,
            last_used: 0,
        };
        if inner.points.insert(*root, cached).is_none() {
            inner.order.push_back(*root);
            self.evict_points(&mut inner);
        }
        Prepared::NewRoot(hashed)
    }

    /// Drops the oldest roots without a table beyond the capacity.
    fn evict_points(&self, inner: &mut RootCacheInner) {
        let mut skipped = 0;
        while inner.points.len() > self.capacity && skipped <= inner.order.len() {
            let Some(old) = inner.order.pop_front() else {
                return;
            };
            if inner.points.get(&old).is_some_and(|c| c.table.is_some()) {
                // Tables leave only through `install_table`.
                inner.order.push_back(old);
                skipped += 1;
                continue;
            }
            inner.points.remove(&old);
        }
    }

    /// Keeps `table` for `root` (if the root is still cached); beyond the table capacity,
    /// the table used least recently loses it.
    pub(super) fn install_table(&self, root: &[u8; 32], table: Arc<FixedBaseTable>) {
        let mut guard = self.inner.lock();
        let inner = &mut *guard;
        let now = inner.clock;
        let Some(cached) = inner.points.get_mut(root) else {
            return;
        };
        cached.table = Some(table);
        cached.last_used = now;
        inner.tables.push(*root);
        while inner.tables.len() > self.table_capacity {
            let points = &inner.points;
            let last_used = |r: &[u8; 32]| points.get(r).map_or(0, |c| c.last_used);
            let Some(oldest) = (0..inner.tables.len()).min_by_key(|&i| last_used(&inner.tables[i]))
            else {
                return;
            };
            let evicted = inner.tables.swap_remove(oldest);
            if let Some(cached) = inner.points.get_mut(&evicted) {
                cached.table = None;
            }
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.inner.lock().points.len()
    }

    #[cfg(test)]
    fn tables(&self) -> usize {
        let inner = self.inner.lock();
        inner.points.values().filter(|c| c.table.is_some()).count()
    }
}

impl CachedRoot {
    /// One more use of a cached root, at `now`.
    fn use_once(&mut self, signer: Option<SignerId>, now: u64) -> Prepared {
        if let Some(table) = &self.table {
            self.last_used = now;
            return Prepared::Table(Arc::clone(table));
        }
        let hashed = Arc::clone(&self.hashed);
        let Some(signer) = signer.filter(|_| !self.table_requested) else {
            return Prepared::Hashed(hashed);
        };
        if !self.signers.contains(&signer) {
            self.signers.push(signer);
        }
        if self.signers.len() < TABLE_MIN_SIGNERS {
            return Prepared::Hashed(hashed);
        }
        self.table_requested = true;
        self.signers = Vec::new();
        Prepared::BuildTable(hashed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer(n: u16) -> Option<SignerId> {
        let mut pk = [0u8; 48];
        pk[1..3].copy_from_slice(&n.to_le_bytes());
        Some(SignerId::of(&pk))
    }

    /// Signs `root` with `TABLE_MIN_SIGNERS` distinct keys and installs the table the last
    /// one is told to build.
    fn earn_table(cache: &RootCache, root: &[u8; 32]) {
        for n in 0..TABLE_MIN_SIGNERS as u16 - 1 {
            assert!(!matches!(
                cache.prepare(root, signer(n)),
                Prepared::BuildTable(_) | Prepared::Table(_)
            ));
        }
        let Prepared::BuildTable(hashed) = cache.prepare(root, signer(999)) else {
            panic!("the last distinct signer builds the table");
        };
        cache.install_table(root, Arc::new(FixedBaseTable::new(hashed.point())));
        assert!(matches!(cache.prepare(root, None), Prepared::Table(_)));
    }

    #[test]
    fn cache_is_bounded_and_evicts_oldest() {
        let cache = RootCache::new(3, 2);
        for i in 0..5u8 {
            cache.prepare(&[i; 32], None);
        }
        assert_eq!(cache.len(), 3);
        let inner = cache.inner.lock();
        assert!(!inner.points.contains_key(&[0u8; 32]));
        assert!(inner.points.contains_key(&[4u8; 32]));
    }

    #[test]
    fn a_root_gets_one_table_after_enough_distinct_signers() {
        let cache = RootCache::new(10, 2);
        let root = [1u8; 32];
        assert!(matches!(
            cache.prepare(&root, signer(0)),
            Prepared::NewRoot(_)
        ));
        for n in 1..TABLE_MIN_SIGNERS as u16 - 1 {
            assert!(matches!(
                cache.prepare(&root, signer(n)),
                Prepared::Hashed(_)
            ));
        }
        let Prepared::BuildTable(hashed) = cache.prepare(&root, signer(500)) else {
            panic!("signer {TABLE_MIN_SIGNERS} builds the table");
        };
        // Others keep signing with the point while the table is built; nobody else builds.
        for n in 600..700 {
            assert!(matches!(
                cache.prepare(&root, signer(n)),
                Prepared::Hashed(_)
            ));
        }
        cache.install_table(&root, Arc::new(FixedBaseTable::new(hashed.point())));
        assert!(matches!(
            cache.prepare(&root, signer(1)),
            Prepared::Table(_)
        ));
        // Any type may use an existing table: same point, same signature.
        assert!(matches!(cache.prepare(&root, None), Prepared::Table(_)));
    }

    #[test]
    fn one_key_signing_a_root_many_times_builds_no_table() {
        let cache = RootCache::new(10, 2);
        for _ in 0..10 * TABLE_MIN_SIGNERS {
            let prepared = cache.prepare(&[1u8; 32], signer(7));
            assert!(!matches!(prepared, Prepared::BuildTable(_)));
        }
        assert_eq!(cache.tables(), 0);
    }

    #[test]
    fn other_request_types_build_no_table_however_many_keys_sign() {
        let cache = RootCache::new(10, 2);
        for _ in 0..10 * TABLE_MIN_SIGNERS {
            let prepared = cache.prepare(&[1u8; 32], None);
            assert!(!matches!(prepared, Prepared::BuildTable(_)));
        }
        assert_eq!(cache.tables(), 0);
    }

    #[test]
    fn a_flood_of_new_roots_does_not_evict_tables() {
        let cache = RootCache::new(16, 2);
        earn_table(&cache, &[1u8; 32]);
        // Thousands of distinct roots, signed once each (attestation-like or not).
        for i in 0..5000u32 {
            let mut root = [0xee; 32];
            root[..4].copy_from_slice(&i.to_le_bytes());
            cache.prepare(&root, if i % 2 == 0 { signer(1) } else { None });
        }
        assert!(cache.len() <= 16);
        assert!(matches!(
            cache.prepare(&[1u8; 32], None),
            Prepared::Table(_)
        ));
    }

    #[test]
    fn a_new_table_replaces_the_least_recently_used_one() {
        let cache = RootCache::new(10, 2);
        earn_table(&cache, &[1u8; 32]);
        earn_table(&cache, &[2u8; 32]);
        // Root 1 is in use (the current slot); root 2 is not.
        assert!(matches!(
            cache.prepare(&[1u8; 32], signer(3)),
            Prepared::Table(_)
        ));
        earn_table(&cache, &[3u8; 32]);
        assert_eq!(cache.tables(), 2, "table capacity");
        assert!(matches!(
            cache.prepare(&[1u8; 32], None),
            Prepared::Table(_)
        ));
        assert!(matches!(
            cache.prepare(&[3u8; 32], None),
            Prepared::Table(_)
        ));
        assert!(
            matches!(cache.prepare(&[2u8; 32], signer(1)), Prepared::Hashed(_)),
            "the least recently used table went, and that root does not build another"
        );
    }
}
