//! `GET /metrics` on its own listener: Prometheus text format. Gauges of state are refreshed
//! at scrape time, so they are never stale: the key gauges from the key table and loading
//! progress, and `keyguard_slashing_db_up` from the database's health. `keyguard_hsm_up` is
//! kept by the HSM liveness monitor, which probes on its own thread: a scrape never waits
//! for the token.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::AppState;
use crate::keys::KeySource;
use crate::metrics::KeyState;

/// The handler.
pub async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    refresh_key_gauges(&state);
    if let Some(db) = &state.slashing {
        let up = matches!(db.health(), slashing_db::Health::Up);
        state.metrics.set_slashing_db_up(up);
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
