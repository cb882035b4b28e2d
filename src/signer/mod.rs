//! The signing pipeline: one sign request from the pubkey and body to a signature or a
//! typed refusal. No HTTP here; `api/` only turns [`SignError`] into a status and message.
//!
//! Read top to bottom, one file per stage, in an order never changed for speed:
//!
//! 0. [`queue`] (called by `api/sign.rs` before the pipeline): wait a turn, or be shed
//!    with nothing checked or recorded.
//! 1. [`lookup`]: parse the pubkey, check the client's scope, find the key.
//! 2. prepare (here, through `consensus::prepare`): recompute the signing root from the
//!    payload; the client's root is never trusted. Then the chain checks: the
//!    [`future_guard`] refuses duties beyond the clock plus a tolerance, and the
//!    [`genesis_pin`] refuses a `fork_info` of another chain (binding the root on a
//!    custom network's first request).
//! 3. audit (here): hold a place in the audit log, so that with `on_failure = "refuse"`
//!    nothing is recorded or signed while the log is broken.
//! 4. [`protect`]: blocks and attestations are checked and recorded durably in the
//!    slashing database.
//! 5. [`sign`]: the key's backend signs ([`pool`] for local keys; a remote backend is
//!    awaited and its answer verified).
//!
//! Whatever the outcome, the request is counted in the metrics and recorded in the audit
//! log with what became known about it.

pub mod clock;
mod error;
pub mod future_guard;
pub mod genesis_pin;
mod lookup;
pub mod pool;
mod protect;
pub mod queue;
mod root_cache;
mod sign;

use std::sync::Arc;
use std::time::Instant;

pub use error::{BodyError, SignError};
pub use future_guard::FutureGuard;
pub use genesis_pin::{GenesisPin, PinError};
pub use pool::{PoolClosed, SigningPool, Turn};
use queue::{ClientKey, Priority};

use crate::access::{AccessPolicy, ClientIdentity};
use crate::audit::{AuditLog, AuditReservation, SigningDecision};
use crate::consensus::{self, Network, RequestType, SlashingSubject};
use crate::keys::{KeyTable, LoadProgress, SignatureBytes};
use crate::metrics::Metrics;
use crate::outcome::{Outcome, UNKNOWN_REQUEST_TYPE};

/// Everything the pipeline reads; shared by all requests.
pub struct Signer {
    /// The network whose fork schedule and preset decide signing roots.
    pub network: Network,
    /// Loaded keys.
    pub keys: Arc<KeyTable>,
    /// Key-loading progress: a missing key is "still loading" until loading finished.
    pub key_progress: Arc<LoadProgress>,
    /// The slashing database; `None` refuses blocks and attestations.
    pub slashing: Option<slashing_db::SlashingDb>,
    /// The genesis validators root every `fork_info` must carry.
    pub genesis: GenesisPin,
    /// Refuses duties too far ahead of the clock.
    pub future_guard: FutureGuard,
    /// Where local keys' BLS signatures are computed.
    pub pool: SigningPool,
    /// Key scopes of clients.
    pub access: Arc<AccessPolicy>,
    /// The audit log (a no-op when disabled).
    pub audit: Arc<AuditLog>,
    /// Request counts and latencies.
    pub metrics: Arc<Metrics>,
}

/// A signature that may be released.
#[derive(Debug, Clone, Copy)]
pub struct Signed {
    /// The compressed BLS signature.
    pub signature: SignatureBytes,
    /// What was signed.
    pub request_type: RequestType,
}

/// What became known about a request on its way through the pipeline; the audit log
/// records it whatever the outcome.
#[derive(Default)]
struct Trace {
    request_type: Option<RequestType>,
    subject: Option<SlashingSubject>,
    signing_root: Option<[u8; 32]>,
    /// The decision's place in the audit queue, held from before slashing protection
    /// records anything until the outcome is known.
    audit: Option<AuditReservation>,
}

impl Signer {
    /// Signs one request for `client` with the key `pubkey` (as sent: hex, with or without
    /// `0x`), or says why not. Counts it in the metrics and records it in the audit log.
    /// The signature takes its turn in the pool as `client`'s (see [`Signer::sign_as`]).
    pub async fn sign(
        &self,
        client: &ClientIdentity,
        pubkey: &str,
        body: Result<&[u8], BodyError>,
    ) -> Result<Signed, SignError> {
        self.sign_as(client, ClientKey::of(client, None), pubkey, body)
            .await
    }

    /// [`Signer::sign`], with the signature's turn in the pool taken as `turn_of`'s: the
    /// key the signing queue admitted the request under (an anonymous client is its
    /// address), so the pool serves clients in the same turns.
    pub async fn sign_as(
        &self,
        client: &ClientIdentity,
        turn_of: ClientKey,
        pubkey: &str,
        body: Result<&[u8], BodyError>,
    ) -> Result<Signed, SignError> {
        let started = Instant::now();
        let mut trace = Trace::default();
        let result = self.run(client, turn_of, pubkey, body, &mut trace).await;
        let type_label = trace
            .request_type
            .map_or(UNKNOWN_REQUEST_TYPE, |t| t.as_str());
        let outcome = match &result {
            Ok(_) => Outcome::Signed,
            Err(err) => err.outcome(),
        };
        self.metrics
            .observe_request(type_label, outcome, started.elapsed());
        let decision = SigningDecision {
            client,
            pubkey,
            request_type: trace.request_type,
            subject: trace.subject,
            signing_root: trace.signing_root,
            outcome,
            reason: result.as_ref().err().and_then(SignError::audit_reason),
        };
        self.audit.record_signing(&decision, trace.audit.take());
        if let Err(err) = &result {
            log_refusal(pubkey, err);
        }
        result
    }

    /// The stages, in order.
    async fn run(
        &self,
        client: &ClientIdentity,
        turn_of: ClientKey,
        pubkey: &str,
        body: Result<&[u8], BodyError>,
        trace: &mut Trace,
    ) -> Result<Signed, SignError> {
        // Read without the payload: refusals before it is parsed are labelled with it.
        let named_type = body.as_ref().ok().and_then(|b| lookup::request_type_of(b));
        let key = self.find_key(client, pubkey, named_type).inspect_err(|_| {
            trace.request_type = named_type;
        })?;
        let body = body?;
        let prepared = consensus::prepare(body, &self.network)
            .map_err(|e| SignError::BadRequest(e.to_string()))?;
        trace.request_type = Some(prepared.request_type);
        // The parsed type decides (the quick read above may not have found one).
        self.check_type(client, prepared.request_type)?;
        trace.subject = prepared.slashing;
        trace.signing_root = Some(prepared.signing_root);
        self.future_guard.check(prepared.duty)?;
        self.genesis.check(prepared.genesis_validators_root).await?;
        trace.audit = Some(self.audit.ready().map_err(|e| {
            tracing::error!(reason = %e.0, "refused: the audit log cannot be written");
            SignError::Audit(e)
        })?);
        if let Some(subject) = prepared.slashing {
            self.protect(key.pubkey(), &prepared, subject).await?;
        }
        let turn = Turn {
            client: turn_of,
            priority: Priority::of(Some(prepared.request_type)),
        };
        let signature = self
            .sign_with(
                &key,
                prepared.request_type,
                prepared.signing_root,
                body,
                turn,
            )
            .await?;
        Ok(Signed {
            signature,
            request_type: prepared.request_type,
        })
    }
}

/// One log line per refused request: slashing refusals at WARN (an operator must see
/// them; logged where decided, with the slot or epochs), client errors at INFO, errors on
/// this side at ERROR.
fn log_refusal(pubkey: &str, err: &SignError) {
    // The pubkey is the client's percent-decoded path segment, and messages may quote the
    // body: escape and truncate both, so a client cannot forge or flood log lines.
    let pubkey = crate::log_safe::path_segment(pubkey);
    match err {
        SignError::Refused { .. } => {}
        err if err.is_internal() => tracing::error!(%pubkey, message = %err, "not signed"),
        other => {
            let message = crate::log_safe::text(&other.to_string());
            tracing::info!(%pubkey, %message, outcome = other.outcome().as_str(), "bad request")
        }
    }
}

#[cfg(test)]
mod tests;
