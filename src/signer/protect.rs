//! Stage 4: slashing protection. A block or attestation is checked and recorded durably
//! before anything signs it; any database problem refuses the request (fail closed).

use super::{SignError, Signer};
use crate::consensus::{PreparedRequest, SlashingSubject};
use crate::keys::{self, PubkeyBytes};

impl Signer {
    /// Checks and durably records a block or attestation. Returns only after the record
    /// has committed.
    pub(super) async fn protect(
        &self,
        pubkey: &PubkeyBytes,
        prepared: &PreparedRequest,
        subject: SlashingSubject,
    ) -> Result<(), SignError> {
        let Some(db) = &self.slashing else {
            tracing::warn!(?subject, "refused: slashing protection is not configured");
            return Err(SignError::Refused {
                reason: "not_configured",
                message: format!(
                    "{} refused: slashing protection is not configured, and blocks and \
                     attestations are never signed unprotected",
                    prepared.request_type.as_str()
                ),
            });
        };
        let gvr = prepared.genesis_validators_root.ok_or_else(|| {
            SignError::BadRequest("fork_info.genesis_validators_root is required".into())
        })?;
        let root = prepared.signing_root;
        let result = db
            .check_and_record(
                gvr.into(),
                (*pubkey).into(),
                db_subject(subject),
                root.into(),
            )
            .await;
        result.map(|_approval| ()).map_err(|e| match e {
            slashing_db::SignCheckError::Refused(refusal) => {
                tracing::warn!(
                    pubkey = %keys::pubkey_hex(pubkey),
                    r#type = prepared.request_type.as_str(),
                    ?subject,
                    reason = refusal.reason(),
                    "refused by slashing protection: {refusal}"
                );
                SignError::Refused {
                    reason: refusal.reason(),
                    message: format!("slashing protection: {refusal}"),
                }
            }
            slashing_db::SignCheckError::Db(db_err) => SignError::from(db_err),
        })
    }
}

/// The database's typed subject for what consensus derived from the payload: named slots
/// and epochs, so a source can never land where a target belongs.
fn db_subject(subject: SlashingSubject) -> slashing_db::Subject {
    match subject {
        SlashingSubject::Block { slot } => slashing_db::Subject::Block {
            slot: slashing_db::Slot(slot),
        },
        SlashingSubject::Attestation {
            source_epoch,
            target_epoch,
        } => slashing_db::Subject::Attestation {
            source: slashing_db::Epoch(source_epoch),
            target: slashing_db::Epoch(target_epoch),
        },
    }
}
