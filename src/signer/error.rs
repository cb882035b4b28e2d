//! Why a sign request was not signed. The HTTP layer maps each variant to a status and a
//! JSON message; the metrics and the audit log to an [`Outcome`]. Messages never contain
//! secrets.

use crate::audit::AuditUnavailable;
use crate::keys::BackendError;
use crate::outcome::Outcome;

/// Why the request body could not be read (decided by the HTTP layer, reported in order
/// by the pipeline: a missing key is named before a bad body).
#[derive(Debug, Clone, thiserror::Error)]
pub enum BodyError {
    /// Larger than the configured limit (the limit, in bytes).
    #[error("request body is larger than the limit of {0} bytes")]
    TooLarge(usize),
    /// Unreadable for another reason (a broken connection, a bad encoding).
    #[error("cannot read request body: {0}")]
    Unreadable(String),
}

/// A request that was not signed, and why.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    /// The body could not be read.
    #[error(transparent)]
    Body(#[from] BodyError),
    /// Malformed body, unknown type, missing payload or field, root mismatch.
    #[error("{0}")]
    BadRequest(String),
    /// `fork_info.genesis_validators_root` is not the root this signer is bound to.
    #[error("{0}")]
    WrongGenesis(String),
    /// The duty's slot or epoch lies beyond the clock plus the future guard's tolerance.
    #[error("{0}")]
    FutureDuty(String),
    /// No key with this public key is loaded (the pubkey as sent).
    #[error("no key for public key {0} is loaded")]
    UnknownKey(String),
    /// Keys are still loading and this one is not loaded yet: ask again shortly.
    #[error(
        "keys are still loading ({done} of {total} done); public key {pubkey} is not loaded yet"
    )]
    StillLoading {
        /// The pubkey as sent.
        pubkey: String,
        /// Keys loaded or failed so far.
        done: usize,
        /// Keys to load.
        total: usize,
    },
    /// The client may not use this key (checked before the key table is consulted, so the
    /// answer says nothing about which keys are loaded).
    #[error("{0}")]
    OutOfScope(String),
    /// The client may not sign this request type (checked before anything is recorded).
    #[error("{0}")]
    TypeNotAllowed(String),
    /// Refused by slashing protection, or because it is not configured.
    #[error("{message}")]
    Refused {
        /// Stable snake_case reason, for metrics labels.
        reason: &'static str,
        /// What the operator and the client read.
        message: String,
    },
    /// The slashing database could not decide or record durably: nothing signed.
    #[error("slashing database error, nothing signed: {0}")]
    Database(slashing_db::DbError),
    /// The slashing database's queue is full (the writer cannot keep up): nothing signed.
    #[error("slashing database error, nothing signed: {0}")]
    Overloaded(slashing_db::DbError),
    /// `audit.on_failure = "refuse"` and the audit log cannot take the decision.
    #[error("{0}; nothing signed")]
    Audit(AuditUnavailable),
    /// The BLS signing pool is gone (shutting down).
    #[error("signing pool is shut down; nothing signed")]
    PoolClosed,
    /// A key's remote backend failed, or returned a signature that does not verify.
    #[error("{0}")]
    Backend(BackendError),
}

impl SignError {
    /// The metrics and audit outcome of a request that ended with this error.
    pub fn outcome(&self) -> Outcome {
        match self {
            SignError::Body(_)
            | SignError::BadRequest(_)
            | SignError::WrongGenesis(_)
            | SignError::FutureDuty(_) => Outcome::BadRequest,
            SignError::UnknownKey(_) | SignError::StillLoading { .. } => Outcome::UnknownKey,
            SignError::OutOfScope(_) | SignError::TypeNotAllowed(_) => Outcome::Forbidden,
            SignError::Refused { reason, .. } => Outcome::SlashingRefused(reason),
            SignError::Database(_)
            | SignError::Overloaded(_)
            | SignError::Audit(_)
            | SignError::PoolClosed
            | SignError::Backend(_) => Outcome::Error,
        }
    }

    /// The audit log's `reason` for this refusal: the slashing reason, or which access
    /// rule refused (`out_of_scope`, `type_not_allowed`); `None` for other errors.
    pub fn audit_reason(&self) -> Option<&'static str> {
        match self {
            SignError::Refused { reason, .. } => Some(reason),
            SignError::OutOfScope(_) => Some("out_of_scope"),
            SignError::TypeNotAllowed(_) => Some("type_not_allowed"),
            _ => None,
        }
    }

    /// True for errors on this side (database, audit, pool, backend): logged at ERROR.
    pub fn is_internal(&self) -> bool {
        self.outcome() == Outcome::Error
    }
}

impl From<slashing_db::DbError> for SignError {
    fn from(error: slashing_db::DbError) -> Self {
        match error {
            slashing_db::DbError::QueueFull { .. } => SignError::Overloaded(error),
            other => SignError::Database(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes() {
        assert_eq!(
            SignError::Body(BodyError::TooLarge(10)).outcome(),
            Outcome::BadRequest
        );
        assert_eq!(
            SignError::UnknownKey("0x".into()).outcome(),
            Outcome::UnknownKey
        );
        assert_eq!(
            SignError::OutOfScope("no".into()).outcome(),
            Outcome::Forbidden
        );
        let refused = SignError::Refused {
            reason: "double_vote",
            message: String::new(),
        };
        assert_eq!(refused.outcome(), Outcome::SlashingRefused("double_vote"));
        assert!(SignError::Backend(BackendError::WrongSignature).is_internal());
        assert!(matches!(
            SignError::from(slashing_db::DbError::QueueFull { capacity: 1 }),
            SignError::Overloaded(_)
        ));
        assert!(matches!(
            SignError::from(slashing_db::DbError::WriterStopped),
            SignError::Database(_)
        ));
    }
}
