//! The Ethereum keymanager API (`/eth/v1/keystores`): importing and deleting keys at
//! runtime, with their slashing-protection data, behind a bearer token.
//!
//! * [`token`]: the bearer token file (generated on first start, compared in constant time);
//! * [`store`]: durable storage of imported keys (EIP-2335 keystores, or sealed by the HSM);
//! * [`import`] and [`delete`]: the two operations, each documented with its safety order;
//! * [`startup`]: what `keyguard run` builds from `[keymanager]`.
//!
//! Imports and deletions are serialised by one lock and run to completion in a task of
//! their own, so a client that disconnects mid-request never leaves half an operation.
//! The HTTP layer is `api::keymanager`.

pub mod delete;
pub mod import;
mod metrics;
pub mod store;
pub mod token;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use serde::Deserialize;

pub use delete::{DeleteResponse, DeleteStatus};
pub use import::{ImportRequest, ImportStatus};
pub use metrics::KeymanagerMetrics;
pub use store::{KeyStore, StoreError};
pub use token::{ApiToken, TokenError, TokenOrigin};

use crate::audit::AuditLog;
use crate::hsm::HsmSession;
use crate::keys::{KeySource, KeyTable, LoadJob, PubkeyBytes};

/// Default body limit of the keymanager routes: a batch of keystores is ~1 KiB each, but
/// a slashing-protection interchange of many validators can be tens of MiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

/// `[keymanager]`: off unless enabled.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeymanagerConfig {
    /// Serve `/eth/v1/keystores` on the signing API listener.
    pub enabled: bool,
    /// The bearer token file; generated (mode 0600) on first start if missing. Default
    /// `<data_dir>/keymanager-token`.
    pub token_file: Option<PathBuf>,
    /// Where imported keys are stored: sealed through the HSM when `[hsm]` is configured,
    /// otherwise as EIP-2335 keystores. Default `<data_dir>/keymanager`.
    pub dir: Option<PathBuf>,
    /// Largest request body of the keymanager routes, in bytes.
    pub max_body_bytes: usize,
}

impl Default for KeymanagerConfig {
    fn default() -> Self {
        KeymanagerConfig {
            enabled: false,
            token_file: None,
            dir: None,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        }
    }
}

impl KeymanagerConfig {
    /// The token file, defaulted under `data_dir`.
    pub fn token_path(&self, data_dir: &Path) -> PathBuf {
        self.token_file
            .clone()
            .unwrap_or_else(|| data_dir.join("keymanager-token"))
    }

    /// The storage directory, defaulted under `data_dir`.
    pub fn dir_path(&self, data_dir: &Path) -> PathBuf {
        self.dir
            .clone()
            .unwrap_or_else(|| data_dir.join("keymanager"))
    }
}

/// A per-key result: `{"status": ..., "message": ...}` as the spec shapes it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Status<S> {
    /// The result.
    pub status: S,
    /// Why, when there is something to say.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl<S> Status<S> {
    /// A status without a message.
    pub fn ok(status: S) -> Self {
        Status {
            status,
            message: None,
        }
    }

    /// A status with a message.
    pub fn with(status: S, message: String) -> Self {
        Status {
            status,
            message: Some(message),
        }
    }
}

impl<S: StatusKind> Status<S> {
    /// The kind's `error` status with a message.
    pub fn error(message: String) -> Self {
        Status::with(S::ERROR, message)
    }
}

/// A per-key status type that has an `error` value.
pub trait StatusKind {
    /// The `error` status.
    const ERROR: Self;
}

impl StatusKind for ImportStatus {
    const ERROR: Self = ImportStatus::Error;
}

impl StatusKind for DeleteStatus {
    const ERROR: Self = DeleteStatus::Error;
}

/// Why a whole keymanager request failed (per-key problems are [`Status`]es instead).
#[derive(Debug, thiserror::Error)]
pub enum OpError {
    /// Malformed request or slashing-protection data: nothing changed (400).
    #[error("{0}")]
    BadRequest(String),
    /// Keys are still loading at start-up; try again shortly (503).
    #[error("{0}")]
    Unavailable(String),
    /// Database or task failure: nothing changed (500).
    #[error("{0}")]
    Internal(String),
}

/// What an operation needs from the rest of the signer (cheap clones of shared handles).
#[derive(Clone)]
pub struct Services {
    /// The loaded keys.
    pub keys: Arc<KeyTable>,
    /// The slashing database, if enabled.
    pub slashing: Option<slashing_db::SlashingDb>,
    /// The audit log.
    pub audit: Arc<AuditLog>,
    /// The configured network's genesis validators root, when it names one.
    pub genesis_validators_root: Option<[u8; 32]>,
    /// False while start-up key loading is still running.
    pub loading_finished: bool,
}

/// One entry of `GET /eth/v1/keystores`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ListedKey {
    /// `0x`-prefixed pubkey.
    pub validating_pubkey: String,
    /// The EIP-2334 path, when the key's keystore recorded one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub derivation_path: Option<String>,
    /// True for keys from configured sources (they cannot be deleted through the API).
    pub readonly: bool,
}

/// The keymanager: the API token, the store of imported keys, and the operations lock.
#[derive(Debug)]
pub struct Keymanager {
    token: ApiToken,
    store: KeyStore,
    metrics: KeymanagerMetrics,
    ops: tokio::sync::Mutex<()>,
    decrypt_slots: Arc<tokio::sync::Semaphore>,
    /// MiB of KDF working memory free for decryptions (see `import::DECRYPT_MEMORY_BUDGET_MIB`).
    decrypt_memory: Arc<tokio::sync::Semaphore>,
    max_body_bytes: usize,
    delete_wait: Duration,
}

impl Keymanager {
    /// A keymanager over `store`, accepting `token`.
    pub fn new(
        token: ApiToken,
        store: KeyStore,
        metrics: KeymanagerMetrics,
        max_body_bytes: usize,
    ) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Keymanager {
            token,
            store,
            metrics,
            ops: tokio::sync::Mutex::new(()),
            decrypt_slots: Arc::new(tokio::sync::Semaphore::new(cores)),
            decrypt_memory: Arc::new(tokio::sync::Semaphore::new(
                import::DECRYPT_MEMORY_BUDGET_MIB as usize,
            )),
            max_body_bytes,
            delete_wait: delete::DELETE_WAIT,
        }
    }

    /// Body limit of the keymanager routes.
    pub fn max_body_bytes(&self) -> usize {
        self.max_body_bytes
    }

    /// The bearer token.
    pub fn token(&self) -> &ApiToken {
        &self.token
    }

    /// The keymanager's counters.
    pub fn metrics(&self) -> &KeymanagerMetrics {
        &self.metrics
    }

    /// Every loaded key, sorted by pubkey.
    pub fn list(&self, keys: &KeyTable) -> Vec<ListedKey> {
        keys.keys()
            .iter()
            .map(|k| ListedKey {
                validating_pubkey: crate::keys::pubkey_hex(k.pubkey()),
                derivation_path: k.derivation_path().map(str::to_string),
                readonly: k.source() != KeySource::Imported,
            })
            .collect()
    }

    /// Imports keystores (see [`import`]). Runs to completion even if the caller goes away.
    pub async fn import(
        self: &Arc<Self>,
        ctx: Services,
        request: ImportRequest,
    ) -> Result<Vec<Status<ImportStatus>>, OpError> {
        require_loaded(&ctx)?;
        let km = Arc::clone(self);
        let task = tokio::spawn(async move {
            let _ops = km.ops.lock().await;
            import::run(&km, &ctx, request).await
        });
        task.await
            .map_err(|e| OpError::Internal(format!("import failed: {e}")))?
    }

    /// Deletes keys (see [`delete`]). Runs to completion even if the caller goes away.
    pub async fn delete(
        self: &Arc<Self>,
        ctx: Services,
        pubkeys: Vec<PubkeyBytes>,
    ) -> Result<DeleteResponse, OpError> {
        require_loaded(&ctx)?;
        let km = Arc::clone(self);
        let task = tokio::spawn(async move {
            let _ops = km.ops.lock().await;
            delete::run(&km, &ctx, pubkeys).await
        });
        task.await
            .map_err(|e| OpError::Internal(format!("deletion failed: {e}")))?
    }
}

/// Imports and deletions wait for start-up loading: a key still loading from a configured
/// source would otherwise look absent (imported twice, or "not_found").
fn require_loaded(ctx: &Services) -> Result<(), OpError> {
    if ctx.loading_finished {
        Ok(())
    } else {
        Err(OpError::Unavailable(
            "keys are still loading; try again when /healthcheck reports them loaded".into(),
        ))
    }
}

/// Parses a JSON body with field paths in errors. A problem inside `passwords` is reported
/// without serde's detail, which could quote the password.
pub(crate) fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, OpError> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.inner();
        let message = if path.starts_with("passwords") {
            format!("invalid request body at `{path}`: passwords must be an array of strings")
        } else if inner.is_syntax() || inner.is_eof() {
            format!("request body is not valid JSON: {inner}")
        } else {
            format!("invalid request body at `{path}`: {inner}")
        };
        OpError::BadRequest(message)
    })
}

/// What `keyguard run` gets from the `[keymanager]` section.
pub struct Startup {
    /// The keymanager, when the API is enabled.
    pub keymanager: Option<Arc<Keymanager>>,
    /// Load jobs of previously imported keys (loaded whether or not the API is enabled).
    pub jobs: Vec<LoadJob>,
    /// The HSM session, possibly opened here for sealing or unsealing imported keys.
    pub hsm: Option<Arc<HsmSession>>,
}

/// The keys imported earlier through the keymanager API (their load jobs), and the HSM
/// session, opened here when sealed imports need it. `keyguard run` loads them whether or
/// not the API is on; `keyguard keys list` lists them. No token is read or generated.
pub fn stored_key_jobs(
    config: &crate::config::Config,
    hsm: Option<Arc<HsmSession>>,
) -> anyhow::Result<(Vec<LoadJob>, Option<Arc<HsmSession>>)> {
    let opened = open_store(config, hsm, false)?;
    Ok((opened.jobs, opened.hsm))
}

/// What [`open_store`] found.
struct OpenedStore {
    /// The store; `None` when its directory does not exist and the API is off.
    store: Option<KeyStore>,
    /// Load jobs of the stored keys.
    jobs: Vec<LoadJob>,
    /// The HSM session, if one is open.
    hsm: Option<Arc<HsmSession>>,
}

/// Opens the keymanager's store (none when its directory does not exist and the API is
/// off) and lists its keys. The HSM is opened when the API is on (it seals new imports)
/// or when sealed imports are stored.
fn open_store(
    config: &crate::config::Config,
    hsm: Option<Arc<HsmSession>>,
    api_enabled: bool,
) -> anyhow::Result<OpenedStore> {
    let dir = config.keymanager.dir_path(&config.data_dir);
    if !api_enabled && !dir.exists() {
        return Ok(OpenedStore {
            store: None,
            jobs: Vec::new(),
            hsm,
        });
    }
    let has_sealed = KeyStore::has_sealed_keys(&dir)
        .with_context(|| format!("cannot read imported keys in {}", dir.display()))?;
    let hsm = match (&config.hsm, hsm) {
        (Some(hsm_config), None) if api_enabled || has_sealed => {
            Some(open_hsm(hsm_config).context("the keymanager seals imported keys with the HSM")?)
        }
        (_, hsm) => hsm,
    };
    let store_hsm = config.hsm.as_ref().and(hsm.clone());
    let store = KeyStore::open(&dir, store_hsm)
        .with_context(|| format!("cannot open the keymanager directory {}", dir.display()))?;
    let jobs = store
        .load_jobs()
        .with_context(|| format!("cannot read imported keys in {}", dir.display()))?;
    Ok(OpenedStore {
        store: Some(store),
        jobs,
        hsm,
    })
}

/// Builds the keymanager from the configuration: opens the store (and the HSM when it
/// seals or unseals imported keys), lists the stored keys, and reads or generates the
/// token. Logs the token's path, never the token.
pub fn startup(
    config: &crate::config::Config,
    hsm: Option<Arc<HsmSession>>,
    metrics: &crate::metrics::Metrics,
) -> anyhow::Result<Startup> {
    let km = &config.keymanager;
    if km.enabled && km.max_body_bytes < 1024 {
        anyhow::bail!("keymanager.max_body_bytes must be at least 1024 bytes");
    }
    let OpenedStore { store, jobs, hsm } = open_store(config, hsm, km.enabled)?;
    let Some(store) = store.filter(|_| km.enabled) else {
        return Ok(Startup {
            keymanager: None,
            jobs,
            hsm,
        });
    };
    let token_path = km.token_path(&config.data_dir);
    let (token, origin) = ApiToken::load_or_create(&token_path)?;
    match origin {
        TokenOrigin::Generated => {
            // WARN so the path shows even with `--log-level warn`: the operator needs it.
            tracing::warn!(
                token_file = %token_path.display(),
                "generated a new keymanager API token (mode 0600); clients send it as \
                 `Authorization: Bearer <file content>`"
            )
        }
        TokenOrigin::Read => {
            tracing::info!(token_file = %token_path.display(), "keymanager API token read")
        }
    }
    let metrics = KeymanagerMetrics::register(metrics.registry())
        .context("cannot register keymanager metrics")?;
    tracing::info!(
        dir = %store.dir().display(),
        storage = store.mode(),
        stored_keys = jobs.len(),
        "keymanager API enabled at /eth/v1/keystores"
    );
    let keymanager = Keymanager::new(token, store, metrics, km.max_body_bytes);
    Ok(Startup {
        keymanager: Some(Arc::new(keymanager)),
        jobs,
        hsm,
    })
}

fn open_hsm(config: &crate::hsm::HsmConfig) -> anyhow::Result<Arc<HsmSession>> {
    let hsm = Arc::new(HsmSession::open(config).context("cannot open the HSM")?);
    hsm.require_kek()
        .context("the HSM has no key-encryption key")?;
    Ok(hsm)
}

#[cfg(test)]
mod tests;
