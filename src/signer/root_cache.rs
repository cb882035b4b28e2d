//! The pool's root cache: signing root -> hash-to-G2 point and, for roots that many keys
//! sign, a fixed-base table. Bounded; the oldest entries go first.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::bls::{FixedBaseTable, HashedRoot};

/// How many distinct signing roots keep their hash-to-G2 point. A slot has at most a few
/// dozen distinct shared roots (committees, subnets), so this covers several slots.
pub const ROOT_CACHE_CAPACITY: usize = 1024;

/// A root gets a fixed-base table once this many signatures have used it. Building one
/// costs about as much as 20 signatures save, so only roots that many keys sign (a slot's
/// attestation data, selection proofs, sync-committee roots of large operators) get one.
pub const TABLE_MIN_USES: u32 = 24;

/// How many roots keep a table at once (about 156 KiB each: 64 tables are 10 MiB). A slot
/// has a handful of widely shared roots, so this covers several slots.
pub const TABLE_CAPACITY: usize = 64;

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

/// Bounded map signing root -> hash-to-G2 point (and, for roots signed often, a
/// fixed-base table), evicting the oldest entry when full.
pub(super) struct RootCache {
    capacity: usize,
    table_capacity: usize,
    inner: Mutex<RootCacheInner>,
}

/// A cached root.
struct CachedRoot {
    hashed: Arc<HashedRoot>,
    uses: u32,
    table: Option<Arc<FixedBaseTable>>,
}

#[derive(Default)]
struct RootCacheInner {
    points: HashMap<[u8; 32], CachedRoot>,
    order: VecDeque<[u8; 32]>,
    /// Roots that were given a table, oldest first.
    tables: VecDeque<[u8; 32]>,
}

impl RootCache {
    pub(super) fn new(capacity: usize, table_capacity: usize) -> Self {
        Self {
            capacity,
            table_capacity,
            inner: Mutex::default(),
        }
    }

    /// What is cached for `root`, counting this use. A new root is hashed outside the
    /// lock (two threads may both hash it once, which is cheaper than making one wait).
    pub(super) fn prepare(&self, root: &[u8; 32]) -> Prepared {
        if let Some(hit) = self.inner.lock().points.get_mut(root) {
            if let Some(table) = &hit.table {
                return Prepared::Table(Arc::clone(table));
            }
            hit.uses = hit.uses.saturating_add(1);
            let hashed = Arc::clone(&hit.hashed);
            return if hit.uses == TABLE_MIN_USES {
                Prepared::BuildTable(hashed)
            } else {
                Prepared::Hashed(hashed)
            };
        }
        let hashed = Arc::new(HashedRoot::new(root));
        let mut inner = self.inner.lock();
        let cached = CachedRoot {
            hashed: Arc::clone(&hashed),
            uses: 1,
            table: None,
        };
        if inner.points.insert(*root, cached).is_none() {
            inner.order.push_back(*root);
            while inner.order.len() > self.capacity {
                if let Some(old) = inner.order.pop_front() {
                    inner.points.remove(&old);
                }
            }
        }
        Prepared::NewRoot(hashed)
    }

    /// Keeps `table` for `root` (if the root is still cached), dropping the oldest table
    /// beyond the table capacity.
    pub(super) fn install_table(&self, root: &[u8; 32], table: Arc<FixedBaseTable>) {
        let mut inner = self.inner.lock();
        let Some(cached) = inner.points.get_mut(root) else {
            return;
        };
        cached.table = Some(table);
        inner.tables.push_back(*root);
        while inner.tables.len() > self.table_capacity {
            if let Some(old) = inner.tables.pop_front() {
                if let Some(cached) = inner.points.get_mut(&old) {
                    cached.table = None;
                }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_is_bounded_and_evicts_oldest() {
        let cache = RootCache::new(3, 2);
        for i in 0..5u8 {
            cache.prepare(&[i; 32]);
        }
        assert_eq!(cache.len(), 3);
        let inner = cache.inner.lock();
        assert!(!inner.points.contains_key(&[0u8; 32]));
        assert!(inner.points.contains_key(&[4u8; 32]));
    }

    #[test]
    fn a_root_gets_one_table_after_min_uses_and_tables_are_bounded() {
        let cache = RootCache::new(10, 2);
        for n in 0..3u8 {
            let root = [n; 32];
            assert!(matches!(cache.prepare(&root), Prepared::NewRoot(_)));
            for _ in 2..TABLE_MIN_USES {
                assert!(matches!(cache.prepare(&root), Prepared::Hashed(_)));
            }
            let Prepared::BuildTable(hashed) = cache.prepare(&root) else {
                panic!("use {TABLE_MIN_USES} builds the table");
            };
            // Others keep signing with the point while the table is built.
            assert!(matches!(cache.prepare(&root), Prepared::Hashed(_)));
            cache.install_table(&root, Arc::new(FixedBaseTable::new(hashed.point())));
            assert!(matches!(cache.prepare(&root), Prepared::Table(_)));
        }
        assert_eq!(cache.tables(), 2, "table capacity");
        assert!(
            matches!(cache.prepare(&[0u8; 32]), Prepared::Hashed(_)),
            "the oldest root lost its table"
        );
        assert!(matches!(cache.prepare(&[2u8; 32]), Prepared::Table(_)));
    }
}
