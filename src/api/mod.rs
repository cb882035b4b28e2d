//! The HTTP API: Web3Signer-compatible signing routes, health and key listing.
//!
//! Routes are served at the root path and, when configured, also under
//! `server.http_path_prefix`. Every error is a status code with a JSON `{"message"}` body.

pub mod access_layer;
mod error;
mod health;
mod keymanager;
mod metrics;
mod sign;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;

pub use error::ApiError;

use crate::consensus::Network;
use crate::keys::{KeyTable, LoadProgress};
use crate::signer::queue::{QueueLimits, SigningQueue};
use crate::signer::Signer;

/// Everything a request handler needs; shared by all requests.
pub struct AppState {
    /// The network whose fork schedule and preset decide signing roots.
    pub network: Network,
    /// Loaded keys.
    pub keys: Arc<KeyTable>,
    /// Key-loading progress, for `/healthcheck`.
    pub key_progress: Arc<LoadProgress>,
    /// The slashing database; `None` refuses blocks and attestations.
    pub slashing: Option<slashing_db::SlashingDb>,
    /// The signing pipeline. It holds its own handles to the same network, key table,
    /// database, access policy, audit log and metrics as the fields here, which the other
    /// routes (health, key listing, keymanager, metrics) read.
    pub signer: Signer,
    /// The body limit, for error messages.
    pub max_body_bytes: usize,
    /// Prometheus metrics, recorded on every request.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Liveness of the HSM sealed keys were loaded through, probed in the background and
    /// read by `/healthcheck`.
    pub hsm: Option<Arc<crate::hsm::liveness::HsmLiveness>>,
    /// Host allow-list, client identities and key scopes.
    pub access: Arc<crate::access::AccessPolicy>,
    /// The audit log (a no-op when disabled).
    pub audit: Arc<crate::audit::AuditLog>,
    /// The keymanager API, when enabled.
    pub keymanager: Option<Arc<crate::keymanager::Keymanager>>,
    /// Admission in front of the signing pipeline: bounded, prioritised, fair.
    pub signing_queue: Arc<SigningQueue>,
}

impl AppState {
    /// The state of a server whose signing pipeline is `signer`; the other routes share
    /// its network, key table, database, access policy, audit log and metrics.
    pub fn new(
        signer: Signer,
        max_body_bytes: usize,
        hsm: Option<Arc<crate::hsm::liveness::HsmLiveness>>,
        keymanager: Option<Arc<crate::keymanager::Keymanager>>,
    ) -> Self {
        Self {
            network: signer.network.clone(),
            keys: Arc::clone(&signer.keys),
            key_progress: Arc::clone(&signer.key_progress),
            slashing: signer.slashing.clone(),
            max_body_bytes,
            metrics: Arc::clone(&signer.metrics),
            hsm,
            access: Arc::clone(&signer.access),
            audit: Arc::clone(&signer.audit),
            keymanager,
            signer,
            signing_queue: SigningQueue::new(QueueLimits::default(), None),
        }
    }

    /// This state with `queue` in front of the signing pipeline (instead of an unmetered
    /// queue with the default limits).
    pub fn with_signing_queue(mut self, queue: Arc<SigningQueue>) -> Self {
        self.signing_queue = queue;
        self
    }
}

/// The signing API router, with routes at `/` and, if given, under `prefix`.
pub fn router(state: Arc<AppState>, prefix: Option<&str>) -> Router {
    let limit = state.max_body_bytes;
    let mut routes = Router::new()
        .route("/upcheck", get(health::upcheck))
        .route("/healthcheck", get(health::healthcheck))
        .route("/api/v1/eth2/publicKeys", get(health::public_keys))
        .route("/api/v1/eth2/sign/{pubkey}", post(sign::sign))
        .layer(DefaultBodyLimit::max(limit));
    // Keymanager routes exist only when enabled (else 404), with their own body limit.
    if let Some(km) = &state.keymanager {
        routes = routes.merge(keymanager::routes(&state, km));
    }
    let routes = routes
        .with_state(Arc::clone(&state))
        .method_not_allowed_fallback(method_not_allowed);
    let app = match prefix.map(|p| p.trim_end_matches('/')) {
        Some(p) if !p.is_empty() => Router::new().nest(p, routes.clone()).merge(routes),
        _ => routes,
    };
    access_layer::apply(
        app.fallback(not_found),
        Arc::clone(&state.access),
        Arc::clone(&state.audit),
        Arc::clone(&state.signing_queue),
        prefix,
    )
}

/// The metrics listener's router: `GET /metrics` only.
pub fn metrics_router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/metrics", get(metrics::metrics))
        .with_state(state)
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(not_found)
}

async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::NotFound(format!("no route for {}", uri.path()))
}

/// A known route asked with another method: 405 with a JSON body like every other
/// refusal (axum adds the `Allow` header).
async fn method_not_allowed(
    method: axum::http::Method,
    uri: axum::extract::OriginalUri,
) -> ApiError {
    ApiError::MethodNotAllowed(format!("method {method} is not allowed on {}", uri.path()))
}

#[cfg(test)]
mod audit_tests;
#[cfg(test)]
mod tests;
