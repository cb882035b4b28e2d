//! The Ethereum keymanager API (`/eth/v1/keystores`): importing and deleting keys at
//! runtime, with their slashing-protection data, behind a bearer token.
//!
//! * [`token`]: the bearer token file (generated on first start, compared in constant time);
//! * [`store`]: durable storage of imported keys (EIP-2335 keystores, or sealed by the HSM);
//! * [`import`] and [`delete`]: the two operations, each documented with its safety order;
//! * [`start`]: the API over the store that the `startup` module opened.
//!
//! Imports and deletions are serialised by one lock and run to completion in a task of
//! their own, so a client that disconnects mid-request never leaves half an operation.
//! The HTTP layer is `api::keymanager`.

pub mod delete;
pub mod import;
mod metrics;
pub mod store;
pub mod token;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

pub use crate::config::keymanager::{KeymanagerConfig, DEFAULT_MAX_BODY_BYTES};
pub use delete::{DeleteResponse, DeleteStatus};
pub use import::{ImportRequest, ImportStatus};
pub use metrics::KeymanagerMetrics;
pub use store::{KeyStore, StoreError};
pub use token::{ApiToken, TokenError, TokenOrigin};

use crate::audit::AuditLog;
use crate::keys::{KeySource, KeyTable, PubkeyBytes};

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
    /// The genesis validators root the signer is bound to (the network's, the
    /// configured one, or the one the database or a first request bound), once known.
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
            // A place for each key's `key_import` event before anything changes.
            let _audit = ctx
                .audit
                .reserve_lifecycle(request.len())
                .map_err(|e| audit_refusal(&e, "nothing imported"))?;
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
            // A place for each key's `key_delete` event before anything changes.
            let _audit = ctx
                .audit
                .reserve_lifecycle(pubkeys.len())
                .map_err(|e| audit_refusal(&e, "nothing deleted"))?;
            delete::run(&km, &ctx, pubkeys).await
        });
        task.await
            .map_err(|e| OpError::Internal(format!("deletion failed: {e}")))?
    }
}

/// With `audit.on_failure = "refuse"`, a key change whose audit event could be lost is
/// refused (500); the reason goes to the log only.
fn audit_refusal(error: &crate::audit::AuditUnavailable, what: &str) -> OpError {
    tracing::error!(reason = %error.0, "keymanager request refused: the audit log cannot be written");
    OpError::Internal(format!("{error}; {what}"))
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

/// Starts the keymanager API over `store` (opened by the `startup` module, which also loads
/// the `stored_keys` it holds): reads or generates the token and registers the metrics.
/// Logs the token's path, never the token.
pub fn start(
    config: &KeymanagerConfig,
    data_dir: &Path,
    store: KeyStore,
    stored_keys: usize,
    metrics: &crate::metrics::Metrics,
) -> anyhow::Result<Keymanager> {
    let token_path = config.token_path(data_dir);
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
        stored_keys,
        "keymanager API enabled at /eth/v1/keystores"
    );
    Ok(Keymanager::new(
        token,
        store,
        metrics,
        config.max_body_bytes,
    ))
}

#[cfg(test)]
mod tests;
