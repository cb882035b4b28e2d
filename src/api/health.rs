//! `/upcheck`, `/healthcheck` and `/api/v1/eth2/publicKeys`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use serde::Serialize;

use super::AppState;
use crate::access::ClientIdentity;

/// `GET /upcheck`: the process is up (answers even while keys load).
pub async fn upcheck() -> Response {
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], "OK").into_response()
}

/// One component's health, in Web3Signer's healthcheck shape.
#[derive(Debug, Serialize)]
pub struct Check {
    /// Component name.
    pub id: &'static str,
    /// `UP`, `LOADING` or `DOWN`.
    pub status: &'static str,
    /// Details (progress, reason).
    #[serde(skip_serializing_if = "serde_json::Value::is_null")]
    pub data: serde_json::Value,
}

impl Check {
    fn is_up(&self) -> bool {
        self.status == "UP"
    }
}

/// `GET /healthcheck`: 200 when every check is UP; 503 while keys load or when any check is
/// DOWN (a key failed to load, the database is unusable, the HSM is unreachable).
///
/// Anyone who can reach the port may ask, so the answer holds statuses and counts only:
/// no file paths, no error text (those are in the log and the metrics). It never waits
/// for the HSM: its liveness is probed in the background.
pub async fn healthcheck(State(state): State<Arc<AppState>>) -> Response {
    let mut checks = vec![keys_check(&state), slashing_check(&state)];
    if let Some(hsm) = &state.hsm {
        checks.push(hsm_check(hsm));
    }
    if let Some(audit) = audit_check(&state.audit) {
        checks.push(audit);
    }
    let up = checks.iter().all(Check::is_up);
    let status = if up { "UP" } else { "DOWN" };
    let code = if up {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = serde_json::json!({ "status": status, "outcome": status, "checks": checks });
    (code, axum::Json(body)).into_response()
}

fn keys_check(state: &AppState) -> Check {
    let progress = state.key_progress.snapshot();
    let status = if progress.failed > 0 {
        "DOWN"
    } else if !progress.finished {
        "LOADING"
    } else {
        "UP"
    };
    Check {
        id: "keys-check",
        status,
        // Counts only: failures name key files and carry error text (logged at load time).
        data: serde_json::json!({
            "total": progress.total,
            "loaded": progress.loaded,
            "failed": progress.failed,
            "finished": progress.finished,
        }),
    }
}

fn slashing_check(state: &AppState) -> Check {
    let Some(db) = &state.slashing else {
        return Check {
            id: "slashing-protection-db-health-check",
            status: "UP",
            data: serde_json::json!({ "enabled": false }),
        };
    };
    match db.health() {
        slashing_db::Health::Up => Check {
            id: "slashing-protection-db-health-check",
            status: "UP",
            data: serde_json::json!({ "enabled": true }),
        },
        // The reason (which names the database file) is logged by the database itself.
        slashing_db::Health::Down { .. } => Check {
            id: "slashing-protection-db-health-check",
            status: "DOWN",
            data: serde_json::json!({ "enabled": true }),
        },
    }
}

/// Sealed keys are already in memory, so a lost HSM does not stop signing; it is reported
/// DOWN because keys can no longer be loaded or rotated until it is back. Reads the last
/// background probe's result: never touches the token.
fn hsm_check(hsm: &crate::hsm::liveness::HsmLiveness) -> Check {
    Check {
        id: "hsm-check",
        status: if hsm.is_up() { "UP" } else { "DOWN" },
        data: serde_json::Value::Null,
    }
}

/// DOWN while the audit log cannot be written and `on_failure = "refuse"` (nothing is
/// signed then). With `continue` signing goes on, so the check stays UP and says the log is
/// failing in its data. Absent when audit is off.
fn audit_check(audit: &crate::audit::AuditLog) -> Option<Check> {
    use crate::audit::{AuditHealth, OnFailure};
    let (status, data) = match audit.health() {
        AuditHealth::Disabled => return None,
        AuditHealth::Up => ("UP", serde_json::json!({ "writable": true })),
        // The reason (which names the log file) is logged when writing fails.
        AuditHealth::Failing { on_failure, .. } => (
            if on_failure == OnFailure::Refuse {
                "DOWN"
            } else {
                "UP"
            },
            serde_json::json!({ "writable": false }),
        ),
    };
    Some(Check {
        id: "audit-log-check",
        status,
        data,
    })
}

/// `GET /api/v1/eth2/publicKeys`: every loaded pubkey, `0x` + lowercase hex. A client
/// with a key scope (`[[access.clients]].pubkeys`) sees only the keys it may use.
pub async fn public_keys(
    State(state): State<Arc<AppState>>,
    client: Option<Extension<ClientIdentity>>,
) -> Response {
    let client = client.map_or(ClientIdentity::Anonymous, |Extension(c)| c);
    let keys: Vec<String> = state
        .keys
        .pubkeys()
        .iter()
        .filter(|pk| state.access.may_use(&client, pk))
        .map(crate::keys::pubkey_hex)
        .collect();
    axum::Json(keys).into_response()
}
