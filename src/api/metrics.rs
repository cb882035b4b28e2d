//! `GET /metrics` on its own listener: Prometheus text format. Gauges of state are refreshed
//! at scrape time, so they are never stale: the key gauges from the key table and loading
//! progress, `keyguard_slashing_db_up` from the database's health, and `keyguard_hsm_up` by
//! probing the HSM.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::AppState;
use crate::keys::KeySource;
use crate::metrics::KeyState;

/// How long a scrape waits for the HSM probe before it counts the HSM as down (a hung
/// module must not make the whole scrape time out, which would read as keyguard down).
const HSM_PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// The handler.
pub async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    refresh_key_gauges(&state);
    if let Some(db) = &state.slashing {
        let up = matches!(db.health(), slashing_db::Health::Up);
        state.metrics.set_slashing_db_up(up);
    }
    if let Some(hsm) = &state.hsm {
        probe_hsm(Arc::clone(hsm)).await;
    }
    match state.metrics.try_encode() {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(e) => super::ApiError::Internal(format!("cannot encode metrics: {e}")).into_response(),
    }
}

fn refresh_key_gauges(state: &AppState) {
    let mut loaded: HashMap<KeySource, u64> = HashMap::new();
    for key in state.keys.keys() {
        *loaded.entry(key.source()).or_default() += 1;
    }
    let progress = state.key_progress.snapshot();
    let mut failed: HashMap<KeySource, u64> = HashMap::new();
    for f in &progress.failures {
        if let Some(source) = f.source {
            *failed.entry(source).or_default() += 1;
        }
    }
    let m = &state.metrics;
    for source in KeySource::ALL {
        m.set_keys(
            source,
            KeyState::Loaded,
            loaded.get(&source).copied().unwrap_or(0),
        );
        m.set_keys(
            source,
            KeyState::Failed,
            failed.get(&source).copied().unwrap_or(0),
        );
    }
    m.set_key_loading_progress(progress.loaded + progress.failed, progress.total);
    m.set_key_loading_duration(state.key_progress.elapsed());
}

/// Probes the HSM off the async threads; the session records the result in its metrics
/// (`keyguard_hsm_up`, `health_check` operations and errors).
async fn probe_hsm(hsm: Arc<crate::hsm::HsmSession>) {
    let probe = tokio::task::spawn_blocking({
        let hsm = Arc::clone(&hsm);
        move || hsm.check_alive()
    });
    match tokio::time::timeout(HSM_PROBE_TIMEOUT, probe).await {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(e))) => tracing::warn!(error = %e, "HSM probe failed"),
        Ok(Err(e)) => tracing::warn!(error = %e, "HSM probe task failed"),
        Err(_) => {
            tracing::warn!(timeout = ?HSM_PROBE_TIMEOUT, "HSM probe did not answer");
            hsm.observe(crate::hsm::HsmOperation::HealthCheck, false);
        }
    }
}
