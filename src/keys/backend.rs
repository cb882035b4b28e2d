//! Where a loaded key's signatures are made: on this machine from a local scalar, or
//! somewhere else (another signer, a device that keeps the scalar) behind [`RemoteSigner`].
//!
//! The signing pipeline (`signer/`) never asks where a key lives beyond this enum: a local
//! key goes to the BLS pool, a remote one is awaited on the runtime and its signature is
//! verified against the key's public key before it is released.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::bls::{PubkeyBytes, SecretKey, SignatureBytes};

/// How a key signs.
pub enum KeyBackend {
    /// A scalar in this process, signed with on the BLS pool (shared-root and fixed-base
    /// paths included). Shared so that the pool can hold the scalar while a job runs.
    Local(Arc<SecretKey>),
    /// Signatures made elsewhere; never exportable.
    Remote(Arc<dyn RemoteSigner>),
}

impl KeyBackend {
    /// The backend's name, for listings and logs (`local`, or the remote kind).
    pub fn kind(&self) -> &'static str {
        match self {
            KeyBackend::Local(_) => "local",
            KeyBackend::Remote(remote) => remote.kind(),
        }
    }
}

/// What a remote signer is asked to sign. Everything in it is public.
#[derive(Debug, Clone, Copy)]
pub struct RemoteSignRequest<'a> {
    /// The key that must sign.
    pub pubkey: &'a PubkeyBytes,
    /// The signing root recomputed here from the request; the signature must verify
    /// against it.
    pub signing_root: &'a [u8; 32],
    /// The original request body (a Web3Signer sign request), for signers that recompute
    /// the root themselves and would not sign a bare root.
    pub body: &'a [u8],
}

/// The future a [`RemoteSigner`] returns.
pub type RemoteSignFuture<'a> =
    Pin<Box<dyn Future<Output = Result<SignatureBytes, BackendError>> + Send + 'a>>;

/// A signer that makes signatures somewhere else. Implementations need not verify what
/// they return: the signing pipeline verifies every remote signature against the key's
/// public key and the locally recomputed signing root before releasing it.
pub trait RemoteSigner: Send + Sync {
    /// A short name for this kind of backend (e.g. `web3signer`), for listings and logs.
    fn kind(&self) -> &'static str;

    /// Asks for the signature of `request`; awaited on the async runtime, never on the BLS
    /// pool (whose time estimate paces the slashing database's commits).
    fn sign<'a>(&'a self, request: RemoteSignRequest<'a>) -> RemoteSignFuture<'a>;
}

/// Why a backend did not produce a signature. Messages carry no secrets.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The backend could not be reached, or broke off.
    #[error("remote signer unreachable: {0}")]
    Unreachable(String),
    /// No answer within the configured time.
    #[error("remote signer did not answer within {0} ms")]
    Timeout(u64),
    /// The backend answered with an error status.
    #[error("remote signer answered {status}: {message}")]
    Status {
        /// The HTTP status.
        status: u16,
        /// Its message, shortened.
        message: String,
    },
    /// The answer is not a signature.
    #[error("remote signer answered something that is not a signature: {0}")]
    Malformed(String),
    /// The answer is a signature, but not this key's signature of this root: never
    /// released.
    #[error("remote signer returned a signature that does not verify; nothing released")]
    WrongSignature,
}
