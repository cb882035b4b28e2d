//! Stage 5: the signature, from the key's backend.
//!
//! A local key is signed on the BLS pool (shared-root and fixed-base paths, and the time
//! estimate that paces the slashing database's commits). A remote key is awaited here on
//! the runtime, outside the pool, and its answer is verified against the key's pubkey and
//! the signing root recomputed here before it is released: a remote that signs anything
//! else causes a refusal, never a wrong signature.

use std::sync::Arc;

use super::pool::{SignerId, Turn};
use super::{SignError, Signer};
use crate::bls;
use crate::consensus::RequestType;
use crate::keys::{
    BackendError, KeyBackend, RemoteSignRequest, RemoteSigner, SignatureBytes, ValidatorKey,
};

impl Signer {
    /// Signs `signing_root` (of a `request_type` request) with `key`; `body` is the
    /// original request, for backends that sign requests rather than roots. A local key's
    /// signature waits for its `turn` in the pool.
    pub(super) async fn sign_with(
        &self,
        key: &ValidatorKey,
        request_type: RequestType,
        signing_root: [u8; 32],
        body: &[u8],
        turn: Turn,
    ) -> Result<SignatureBytes, SignError> {
        match key.backend() {
            KeyBackend::Local(secret) => {
                let table_signer = shares_roots(request_type).then(|| SignerId::of(key.pubkey()));
                self.pool
                    .sign(Arc::clone(secret), signing_root, table_signer, turn)
                    .await
                    .map_err(|_| SignError::PoolClosed)
            }
            KeyBackend::Remote(remote) => {
                let request = RemoteSignRequest {
                    pubkey: key.pubkey(),
                    signing_root: &signing_root,
                    body,
                };
                sign_remote(remote.as_ref(), request).await
            }
        }
    }
}

/// True for the types whose signing root many keys share (the same attestation data,
/// slot or subcommittee for everyone): only their roots may earn a fixed-base table. The
/// others (blocks, aggregates, exits, registrations, ...) carry the key's own index or
/// data, or are rare (RANDAO reveals), so a table would only ever serve one key, and a
/// client sending them could otherwise push a slot's real tables out.
fn shares_roots(request_type: RequestType) -> bool {
    matches!(
        request_type,
        RequestType::Attestation
            | RequestType::AggregationSlot
            | RequestType::SyncCommitteeMessage
            | RequestType::SyncCommitteeSelectionProof
            | RequestType::PayloadAttestationMessage
            | RequestType::PayloadAttestation
    )
}

/// The remote's signature, once it verifies.
async fn sign_remote(
    remote: &dyn RemoteSigner,
    request: RemoteSignRequest<'_>,
) -> Result<SignatureBytes, SignError> {
    let signature = remote.sign(request).await.map_err(SignError::Backend)?;
    let (pubkey, root) = (*request.pubkey, *request.signing_root);
    // Two pairings (about a millisecond): off the runtime's threads, and off the BLS pool
    // so that its per-signature estimate counts only local signing.
    let verified = tokio::task::spawn_blocking(move || bls::verify(&pubkey, &root, &signature))
        .await
        .unwrap_or(false);
    if !verified {
        tracing::error!(
            pubkey = %crate::keys::pubkey_hex(&pubkey),
            backend = remote.kind(),
            "the remote signer returned a signature that does not verify; not released"
        );
        return Err(SignError::Backend(BackendError::WrongSignature));
    }
    Ok(signature)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::backend::RemoteSignFuture;
    use zeroize::Zeroizing;

    /// Answers with a fixed signature, or fails.
    struct Canned(Result<SignatureBytes, ()>);

    impl RemoteSigner for Canned {
        fn kind(&self) -> &'static str {
            "canned"
        }
        fn sign<'a>(&'a self, _: RemoteSignRequest<'a>) -> RemoteSignFuture<'a> {
            let answer = self
                .0
                .map_err(|()| BackendError::Unreachable("down".into()));
            Box::pin(async move { answer })
        }
    }

    fn secret(n: u8) -> bls::SecretKey {
        let mut b = [0u8; 32];
        b[31] = n;
        bls::SecretKey::from_bytes(&Zeroizing::new(b)).unwrap()
    }

    #[tokio::test]
    async fn a_remote_signature_is_released_only_when_it_verifies() {
        let key = secret(5);
        let pubkey = key.public_key();
        let root = [3u8; 32];
        let request = RemoteSignRequest {
            pubkey: &pubkey,
            signing_root: &root,
            body: b"{}",
        };
        let good = Canned(Ok(key.sign(&root)));
        assert_eq!(sign_remote(&good, request).await.unwrap(), key.sign(&root));
        for wrong in [
            key.sign(&[4u8; 32]),  // the key's signature of another root
            secret(6).sign(&root), // another key's signature of this root
            [0u8; 96],             // not a point
        ] {
            let err = sign_remote(&Canned(Ok(wrong)), request).await.unwrap_err();
            assert!(
                matches!(err, SignError::Backend(BackendError::WrongSignature)),
                "{err}"
            );
        }
        let err = sign_remote(&Canned(Err(())), request).await.unwrap_err();
        assert!(matches!(
            err,
            SignError::Backend(BackendError::Unreachable(_))
        ));
    }
}
