//! `DELETE /eth/v1/keystores`: removing imported keys and exporting their slashing data.
//!
//! # Why the export is complete
//!
//! After the response, this keyguard must never sign with a deleted key, and the exported
//! interchange must hold every block and attestation it ever recorded for it, including
//! requests that were in flight at the moment of deletion. Every sign request holds the
//! key's `Arc` from its table lookup until after its slashing record is committed and its
//! signature computed (see `api::sign`). So deletion:
//! 1. removes the key from the table: from then on, lookups answer 404;
//! 2. waits until it holds the ONLY reference to the key (`Arc::try_unwrap`): every request
//!    that found the key has finished, and its check-and-record was submitted to the
//!    slashing database's writer before that (a request abandoned by its client after
//!    submitting is still committed: the writer answers its queue in order);
//! 3. exports through the same writer thread, so the export runs after every record
//!    submitted before it.
//!
//! If step 2 does not finish within [`DELETE_WAIT`], or the export fails, the keys are put
//! back and nothing is deleted. Only after a successful export are the stored files
//! removed; the secrets are zeroized when the last reference is dropped.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Keymanager, OpError, Services, Status};
use crate::keys::{self, KeySource, PubkeyBytes, ValidatorKey};

/// The longest a deletion waits for in-flight requests that use the key.
pub const DELETE_WAIT: Duration = Duration::from_secs(30);

/// The per-pubkey result of a deletion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeleteStatus {
    /// The key was active and is now removed; its slashing data is exported.
    Deleted,
    /// Not loaded, but the slashing database knows it; its data is exported.
    NotActive,
    /// Neither loaded nor known to the slashing database.
    NotFound,
    /// Not deleted (read-only source, still in use), or only partly (see the message).
    Error,
}

impl DeleteStatus {
    /// The status as the API and metrics spell it.
    pub fn as_str(&self) -> &'static str {
        match self {
            DeleteStatus::Deleted => "deleted",
            DeleteStatus::NotActive => "not_active",
            DeleteStatus::NotFound => "not_found",
            DeleteStatus::Error => "error",
        }
    }
}

/// The answer to a deletion: statuses in request order and the interchange.
#[derive(Debug, serde::Serialize)]
pub struct DeleteResponse {
    /// One status per requested pubkey.
    pub data: Vec<Status<DeleteStatus>>,
    /// EIP-3076 interchange (complete, v5) of every deleted and not-active pubkey.
    pub slashing_protection: String,
}

/// What step 1-2 decided for one pubkey.
enum Step {
    Settled(Status<DeleteStatus>),
    /// Removed from the table and no longer used by any request.
    Removed(ValidatorKey),
    /// Not loaded: not_active or not_found, decided by the database.
    Absent,
}

/// Runs a deletion; the caller holds the keymanager's operations lock.
pub(super) async fn run(
    km: &Arc<Keymanager>,
    ctx: &Services,
    pubkeys: Vec<PubkeyBytes>,
) -> Result<DeleteResponse, OpError> {
    let mut steps = Vec::with_capacity(pubkeys.len());
    for pk in &pubkeys {
        steps.push(deactivate(ctx, pk, km.delete_wait).await);
    }
    let export = match settle_and_export(ctx, &pubkeys, &steps).await {
        Ok(e) => e,
        Err(e) => {
            restore(ctx, steps);
            return Err(e);
        }
    };
    let (statuses, interchange) = export;
    let mut data = Vec::with_capacity(steps.len());
    for ((pk, step), status) in pubkeys.iter().zip(steps).zip(statuses) {
        let status = match step {
            Step::Removed(key) => remove_stored(km, ctx, pk, key).await,
            Step::Absent => remove_unloaded(km, ctx, pk, status).await,
            Step::Settled(_) => status,
        };
        km.metrics.delete(status.status);
        data.push(status);
    }
    Ok(DeleteResponse {
        data,
        slashing_protection: interchange,
    })
}

/// Steps 1 and 2 for one pubkey.
async fn deactivate(ctx: &Services, pk: &PubkeyBytes, wait: Duration) -> Step {
    let Some(key) = ctx.keys.get(pk) else {
        return Step::Absent;
    };
    if key.source() != KeySource::Imported {
        return Step::Settled(Status::error(format!(
            "key comes from {}, a configured source ({}); remove it there",
            key.origin(),
            key.source().as_str()
        )));
    }
    drop(key);
    let Some(key) = ctx.keys.remove(pk) else {
        return Step::Absent;
    };
    match wait_until_unused(key, wait).await {
        Ok(key) => Step::Removed(key),
        Err(key) => {
            // Put it back: deleting now could miss a record still on its way.
            let _ = ctx.keys.insert_shared(key);
            Step::Settled(Status::error(format!(
                "requests still using the key did not finish within {} s; not deleted",
                wait.as_secs()
            )))
        }
    }
}

/// Waits until `key` is the only reference left and returns the key itself, or gives the
/// `Arc` back after `timeout`.
pub(super) async fn wait_until_unused(
    mut key: Arc<ValidatorKey>,
    timeout: Duration,
) -> Result<ValidatorKey, Arc<ValidatorKey>> {
    let deadline = Instant::now() + timeout;
    loop {
        // `try_unwrap` synchronises with the other holders' drops, so everything they
        // did before dropping (submitting their slashing record) happened before this.
        match Arc::try_unwrap(key) {
            Ok(k) => return Ok(k),
            Err(k) if Instant::now() >= deadline => return Err(k),
            Err(k) => {
                key = k;
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
    }
}

/// Decides not_active / not_found for absent keys and exports the interchange of every
/// deleted and not-active key, all on the database's writer thread.
async fn settle_and_export(
    ctx: &Services,
    pubkeys: &[PubkeyBytes],
    steps: &[Step],
) -> Result<(Vec<Status<DeleteStatus>>, String), OpError> {
    let absent: Vec<bool> = steps.iter().map(|s| matches!(s, Step::Absent)).collect();
    let removed: Vec<bool> = steps
        .iter()
        .map(|s| matches!(s, Step::Removed(_)))
        .collect();
    let settled: Vec<Option<Status<DeleteStatus>>> = steps
        .iter()
        .map(|s| match s {
            Step::Settled(status) => Some(status.clone()),
            _ => None,
        })
        .collect();
    let db = ctx.slashing.clone();
    let gvr = ctx.genesis_validators_root;
    let pubkeys = pubkeys.to_vec();
    tokio::task::spawn_blocking(move || -> Result<_, slashing_db::DbError> {
        let mut statuses = Vec::with_capacity(pubkeys.len());
        let mut exported = Vec::new();
        for (i, pk) in pubkeys.iter().enumerate() {
            let status = if let Some(s) = settled[i].clone() {
                s
            } else if removed[i] {
                exported.push(*pk);
                Status::ok(DeleteStatus::Deleted)
            } else if absent[i] && is_registered(db.as_ref(), pk)? {
                exported.push(*pk);
                Status::ok(DeleteStatus::NotActive)
            } else {
                Status::ok(DeleteStatus::NotFound)
            };
            statuses.push(status);
        }
        let interchange = export(db.as_ref(), &exported, gvr)?;
        Ok((statuses, interchange))
    })
    .await
    .map_err(|e| OpError::Internal(format!("deletion failed: {e}; nothing deleted")))?
    .map_err(|e| {
        OpError::Internal(format!(
            "cannot export slashing protection, nothing deleted: {e}"
        ))
    })
}

fn is_registered(
    db: Option<&slashing_db::SlashingDb>,
    pk: &PubkeyBytes,
) -> Result<bool, slashing_db::DbError> {
    db.map_or(Ok(false), |db| db.is_registered(*pk))
}

/// The complete interchange of `pubkeys`: every one of them is listed, a key without
/// records with empty lists (so the next signer learns it exists), under the database's
/// bound root. A database that never bound a root has no record at all; the file then
/// carries the signer's pinned root (zeroes only when nothing ever named one).
fn export(
    db: Option<&slashing_db::SlashingDb>,
    pubkeys: &[PubkeyBytes],
    pinned_gvr: Option<[u8; 32]>,
) -> Result<String, slashing_db::DbError> {
    let exported = match db {
        Some(db) => match db.export_interchange(Some(pubkeys), slashing_db::ExportFormat::Complete)
        {
            Ok(bytes) => Some(bytes),
            Err(slashing_db::DbError::NoGenesisValidatorsRoot) => None,
            Err(e) => return Err(e),
        },
        None => None,
    };
    let mut doc: serde_json::Value = match exported {
        Some(bytes) => serde_json::from_slice(&bytes)
            .map_err(|e| slashing_db::DbError::Serialize(e.to_string()))?,
        None => serde_json::json!({
            "metadata": {
                "interchange_format_version": slashing_db::INTERCHANGE_FORMAT_VERSION,
                "genesis_validators_root": format!("0x{}", hex::encode(pinned_gvr.unwrap_or([0u8; 32]))),
            },
            "data": [],
        }),
    };
    add_keys_without_records(&mut doc, pubkeys);
    Ok(doc.to_string())
}

/// Appends an entry with empty lists for every pubkey the export does not list.
fn add_keys_without_records(doc: &mut serde_json::Value, pubkeys: &[PubkeyBytes]) {
    let Some(data) = doc.get_mut("data").and_then(|d| d.as_array_mut()) else {
        return;
    };
    let listed: std::collections::HashSet<String> = data
        .iter()
        .filter_map(|e| e.get("pubkey").and_then(|p| p.as_str()))
        .map(str::to_ascii_lowercase)
        .collect();
    let mut added = std::collections::HashSet::new();
    for pk in pubkeys {
        let hex = format!("0x{}", hex::encode(pk));
        if !listed.contains(&hex) && added.insert(hex.clone()) {
            data.push(serde_json::json!({
                "pubkey": hex,
                "signed_blocks": [],
                "signed_attestations": [],
            }));
        }
    }
}

/// Puts removed keys back after a failed export: nothing was deleted.
fn restore(ctx: &Services, steps: Vec<Step>) {
    for step in steps {
        if let Step::Removed(key) = step {
            let _ = ctx.keys.insert(key);
        }
    }
}

/// Step 3: the key is inactive and exported; remove its stored files.
async fn remove_stored(
    km: &Arc<Keymanager>,
    ctx: &Services,
    pk: &PubkeyBytes,
    key: ValidatorKey,
) -> Status<DeleteStatus> {
    let origin = key.origin().to_string();
    // Zeroize the secret now: nothing may sign with it any more.
    drop(key);
    let (km2, pk2) = (Arc::clone(km), *pk);
    let removed = tokio::task::spawn_blocking(move || km2.store.remove(&pk2)).await;
    let hex = keys::pubkey_hex(pk);
    match removed {
        Ok(Ok(_)) => {
            ctx.audit.record_key_event(
                crate::audit::EventName::KeyDelete,
                pk,
                &format!("removed {origin}"),
            );
            tracing::info!(pubkey = %hex, file = %origin, "key deleted through the keymanager API");
            Status::ok(DeleteStatus::Deleted)
        }
        Ok(Err(e)) => partial_delete(ctx, pk, &e.to_string()),
        Err(e) => partial_delete(ctx, pk, &e.to_string()),
    }
}

/// A stored key that is not loaded (it failed to load at start-up) is removed too, so
/// the pubkey can be imported again; the status stays not_active / not_found.
async fn remove_unloaded(
    km: &Arc<Keymanager>,
    ctx: &Services,
    pk: &PubkeyBytes,
    status: Status<DeleteStatus>,
) -> Status<DeleteStatus> {
    let Some(file) = km.store.stored_file(pk) else {
        return status;
    };
    let (km2, pk2) = (Arc::clone(km), *pk);
    match tokio::task::spawn_blocking(move || km2.store.remove(&pk2)).await {
        Ok(Ok(_)) => {
            let message = format!(
                "its stored file {}, which was not loaded, was removed",
                file.display()
            );
            ctx.audit
                .record_key_event(crate::audit::EventName::KeyDelete, pk, &message);
            Status::with(status.status, message)
        }
        Ok(Err(e)) => Status::error(format!("cannot remove its stored file: {e}")),
        Err(e) => Status::error(format!("cannot remove its stored file: {e}")),
    }
}

fn partial_delete(ctx: &Services, pk: &PubkeyBytes, error: &str) -> Status<DeleteStatus> {
    let message = format!(
        "the key no longer signs here and its slashing data is exported, but its stored \
         file could not be removed ({error}); it will be loaded again at restart unless \
         removed by hand"
    );
    ctx.audit
        .record_key_event(crate::audit::EventName::KeyDelete, pk, &message);
    tracing::error!(pubkey = %keys::pubkey_hex(pk), %message, "keymanager delete incomplete");
    Status::error(message)
}
