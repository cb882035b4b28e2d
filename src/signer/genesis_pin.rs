//! Stage 2a: the genesis pin. Every request that carries `fork_info` must name the
//! genesis validators root this signer is bound to; any other root is refused (HTTP 400)
//! before the audit log, the slashing database or a key is touched.
//!
//! Where the root comes from, decided once at start-up ([`GenesisPin::at_startup`]):
//! a built-in network's known root, or the one `[chain] genesis_validators_root` gives a
//! custom network; the slashing database is bound to it then (and keyguard refuses to
//! start if it is bound to another). Otherwise a root the database is already bound to.
//! Otherwise (a custom network, nothing configured, a fresh database) the first request
//! with `fork_info` binds it, durably, with a warning: that is the one case where a bad
//! first request can still choose the root.

use slashing_db::{DbError, SlashingDb};

use super::SignError;
use crate::consensus::{Network, Root};

/// The bound root, or the means to bind it on first use.
pub struct GenesisPin {
    bound: std::sync::OnceLock<Root>,
    /// Where a first request's root is bound (absent: in memory only).
    db: Option<SlashingDb>,
    /// Serialises first-request binding.
    binding: tokio::sync::Mutex<()>,
}

/// Why keyguard cannot start with this network and database.
#[derive(Debug, thiserror::Error)]
pub enum PinError {
    /// The database holds records for another chain.
    #[error(
        "the slashing database is bound to genesis_validators_root 0x{}, but network {network} \
         has 0x{}: it holds records of another chain; use the database of this network",
        hex::encode(bound),
        hex::encode(expected)
    )]
    OtherChain {
        /// The network's name.
        network: String,
        /// The database's root.
        bound: Root,
        /// The network's root.
        expected: Root,
    },
    /// The database could not be read or written.
    #[error("cannot bind the slashing database to the genesis validators root: {0}")]
    Db(DbError),
}

impl GenesisPin {
    /// A pin bound to `root`.
    pub fn bound(root: Root) -> GenesisPin {
        let pin = GenesisPin::unbound(None);
        let _ = pin.bound.set(root);
        pin
    }

    /// A pin that the first request binds (in `db`, when given).
    pub fn unbound(db: Option<SlashingDb>) -> GenesisPin {
        GenesisPin {
            bound: std::sync::OnceLock::new(),
            db,
            binding: tokio::sync::Mutex::new(()),
        }
    }

    /// Decides the root at start-up and binds the database to it (blocking: call it
    /// before serving, or from `spawn_blocking`).
    pub fn at_startup(network: &Network, db: Option<SlashingDb>) -> Result<GenesisPin, PinError> {
        if let Some(expected) = network.genesis_validators_root() {
            if let Some(db) = &db {
                db.bind_genesis_validators_root(expected)
                    .map_err(|e| match e {
                        DbError::GenesisValidatorsRootMismatch { bound, .. } => {
                            PinError::OtherChain {
                                network: network.name().to_string(),
                                bound,
                                expected,
                            }
                        }
                        other => PinError::Db(other),
                    })?;
            }
            return Ok(GenesisPin::bound(expected));
        }
        let stored = match &db {
            Some(db) => db.genesis_validators_root().map_err(PinError::Db)?,
            None => None,
        };
        match stored {
            Some(root) => {
                tracing::info!(
                    root = %format!("0x{}", hex::encode(root)),
                    "genesis validators root pinned from the slashing database"
                );
                Ok(GenesisPin::bound(root))
            }
            None => {
                tracing::warn!(
                    network = network.name(),
                    "GENESIS VALIDATORS ROOT NOT PINNED: the first sign request with fork_info \
                     will bind this signer to its root for good; set \
                     chain.genesis_validators_root (--genesis-validators-root)"
                );
                Ok(GenesisPin::unbound(db))
            }
        }
    }

    /// The root requests must carry, once known.
    pub fn root(&self) -> Option<Root> {
        self.bound.get().copied()
    }

    /// Refuses a request whose `fork_info` names another root; binds an unbound pin.
    /// Types without `fork_info` (`None`) pass.
    pub async fn check(&self, requested: Option<Root>) -> Result<(), SignError> {
        let Some(requested) = requested else {
            return Ok(());
        };
        let bound = match self.root() {
            Some(bound) => bound,
            None => self.bind_first(requested).await?,
        };
        if bound == requested {
            return Ok(());
        }
        Err(SignError::WrongGenesis(format!(
            "fork_info.genesis_validators_root 0x{} is not this signer's 0x{}: the request is \
             for another chain; nothing signed or recorded",
            hex::encode(requested),
            hex::encode(bound)
        )))
    }

    /// Binds the pin (and the database) to the first request's root; returns whatever
    /// root won (another request's, or one the database was bound to meanwhile, e.g. by
    /// a keymanager import).
    async fn bind_first(&self, requested: Root) -> Result<Root, SignError> {
        let _guard = self.binding.lock().await;
        if let Some(bound) = self.root() {
            return Ok(bound);
        }
        let root = match self.db.clone() {
            None => requested,
            Some(db) => {
                let bound =
                    tokio::task::spawn_blocking(move || db.bind_genesis_validators_root(requested))
                        .await
                        .map_err(|_| SignError::Database(DbError::WriterStopped))?;
                match bound {
                    Ok(()) => requested,
                    Err(DbError::GenesisValidatorsRootMismatch { bound, .. }) => bound,
                    Err(other) => return Err(SignError::from(other)),
                }
            }
        };
        if root == requested {
            tracing::warn!(
                root = %format!("0x{}", hex::encode(root)),
                "GENESIS VALIDATORS ROOT BOUND BY THE FIRST REQUEST: every later request must \
                 carry it; if it is wrong, stop keyguard and set chain.genesis_validators_root"
            );
        }
        let _ = self.bound.set(root);
        Ok(root)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RIGHT: Root = [0x27; 32];
    const WRONG: Root = [0x99; 32];

    fn open_db(dir: &tempfile::TempDir) -> SlashingDb {
        SlashingDb::open(&dir.path().join("s.sqlite"), Default::default()).unwrap()
    }

    #[tokio::test]
    async fn bound_pin_refuses_other_roots_and_passes_types_without_fork_info() {
        let pin = GenesisPin::bound(RIGHT);
        assert!(pin.check(Some(RIGHT)).await.is_ok());
        assert!(pin.check(None).await.is_ok());
        let err = pin.check(Some(WRONG)).await.unwrap_err();
        assert!(matches!(err, SignError::WrongGenesis(ref m) if m.contains("another chain")));
    }

    #[tokio::test]
    async fn first_request_binds_the_database() {
        let dir = tempfile::tempdir().unwrap();
        let db = open_db(&dir);
        let pin = GenesisPin::unbound(Some(db.clone()));
        assert_eq!(pin.root(), None);
        assert!(pin.check(Some(RIGHT)).await.is_ok());
        assert_eq!(pin.root(), Some(RIGHT));
        assert_eq!(db.genesis_validators_root().unwrap(), Some(RIGHT));
        assert!(pin.check(Some(WRONG)).await.is_err());
    }

    #[tokio::test]
    async fn unbound_pin_follows_a_database_bound_meanwhile() {
        let dir = tempfile::tempdir().unwrap();
        let db = open_db(&dir);
        let pin = GenesisPin::unbound(Some(db.clone()));
        // E.g. a keymanager import bound the database after start-up.
        db.bind_genesis_validators_root(RIGHT).unwrap();
        assert!(pin.check(Some(WRONG)).await.is_err());
        assert_eq!(pin.root(), Some(RIGHT));
        assert!(pin.check(Some(RIGHT)).await.is_ok());
    }

    #[test]
    fn startup_binds_a_builtin_network_and_refuses_another_chain() {
        let dir = tempfile::tempdir().unwrap();
        let db = open_db(&dir);
        let mainnet = Network::builtin("mainnet").unwrap();
        let known = mainnet.genesis_validators_root().unwrap();
        let pin = GenesisPin::at_startup(&mainnet, Some(db.clone())).unwrap();
        assert_eq!(pin.root(), Some(known));
        assert_eq!(db.genesis_validators_root().unwrap(), Some(known));
        let sepolia = Network::builtin("sepolia").unwrap();
        let err = GenesisPin::at_startup(&sepolia, Some(db)).err().unwrap();
        assert!(matches!(err, PinError::OtherChain { .. }), "{err}");
        assert!(err.to_string().contains("sepolia"), "{err}");
    }

    #[test]
    fn startup_on_a_custom_network_reads_the_database() {
        let dir = tempfile::tempdir().unwrap();
        let db = open_db(&dir);
        let devnet = Network::devnet();
        let pin = GenesisPin::at_startup(&devnet, Some(db.clone())).unwrap();
        assert_eq!(pin.root(), None);
        db.bind_genesis_validators_root(RIGHT).unwrap();
        let pin = GenesisPin::at_startup(&devnet, Some(db.clone())).unwrap();
        assert_eq!(pin.root(), Some(RIGHT));
        // A configured root binds a fresh database at start-up.
        let dir2 = tempfile::tempdir().unwrap();
        let fresh = open_db(&dir2);
        let configured = devnet.with_genesis_validators_root(Some(WRONG));
        let pin = GenesisPin::at_startup(&configured, Some(fresh.clone())).unwrap();
        assert_eq!(pin.root(), Some(WRONG));
        assert_eq!(fresh.genesis_validators_root().unwrap(), Some(WRONG));
    }
}
