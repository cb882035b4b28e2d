//! The pipeline without HTTP: stage order, scope before lookup, labels of refused
//! requests, and remote backends behind local slashing protection.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use zeroize::Zeroizing;

use super::*;
use crate::access::{AccessConfig, ClientConfig};
use crate::bls;
use crate::keys::backend::{RemoteSignFuture, RemoteSignRequest};
use crate::keys::{pubkey_hex, BackendError, KeySource, RemoteSigner, ValidatorKey};

fn secret(n: u8) -> Zeroizing<[u8; 32]> {
    let mut b = [0u8; 32];
    b[31] = n;
    Zeroizing::new(b)
}

fn local_key(n: u8) -> ValidatorKey {
    ValidatorKey::from_secret_bytes(&secret(n), KeySource::Interop, "test").unwrap()
}

/// Signs with a local scalar after the request reaches it, or answers a wrong
/// signature; counts the requests it saw.
struct CountingRemote {
    secret: bls::SecretKey,
    lies: bool,
    calls: AtomicUsize,
}

impl RemoteSigner for CountingRemote {
    fn kind(&self) -> &'static str {
        "counting"
    }
    fn sign<'a>(&'a self, request: RemoteSignRequest<'a>) -> RemoteSignFuture<'a> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let root = if self.lies {
            [0x66; 32]
        } else {
            *request.signing_root
        };
        let signature = self.secret.sign(&root);
        Box::pin(async move { Ok::<_, BackendError>(signature) })
    }
}

struct Setup {
    signer: Signer,
    _dir: tempfile::TempDir,
}

/// A signer with a slashing database, keys as given, and `access` (permissive if None).
fn setup(keys: Vec<ValidatorKey>, access: Option<AccessPolicy>) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let table = Arc::new(KeyTable::new());
    for key in keys {
        table.insert(key).unwrap();
    }
    let progress = Arc::new(LoadProgress::new());
    progress.finish();
    let db =
        slashing_db::SlashingDb::open(&dir.path().join("db.sqlite"), Default::default()).unwrap();
    let network = Network::builtin("mainnet").unwrap();
    // "Now" is 1000 epochs after mainnet's genesis: the tests' small slots are past.
    let clock = Arc::new(clock::FixedClock::default());
    clock.0.store(NOW_MS, Ordering::Relaxed);
    let signer = Signer {
        future_guard: FutureGuard::new(&network, 64, clock),
        genesis: GenesisPin::bound(network.genesis_validators_root().unwrap()),
        network,
        keys: table,
        key_progress: progress,
        slashing: Some(db),
        pool: SigningPool::new(1).unwrap(),
        access: Arc::new(access.unwrap_or_else(AccessPolicy::permissive)),
        audit: Arc::new(AuditLog::disabled()),
        metrics: Arc::new(Metrics::new(false).unwrap()),
    };
    Setup { signer, _dir: dir }
}

const GVR: &str = "0x4b363db94e286120d76eb905340fdd4e54bfe9f06bf33ff6cf5ad27f511bfe95";

/// Mainnet's genesis plus 1000 epochs: current slot 32000, epoch 1000.
const NOW_MS: u64 = (1_606_824_023 + 1000 * 32 * 12) * 1000;

fn fork_info() -> String {
    format!(
        r#"{{"fork":{{"previous_version":"0x00000000","current_version":"0x00000000","epoch":"0"}},"genesis_validators_root":"{GVR}"}}"#
    )
}

fn randao(epoch: u64) -> String {
    format!(
        r#"{{"type":"RANDAO_REVEAL","fork_info":{},"randao_reveal":{{"epoch":"{epoch}"}}}}"#,
        fork_info()
    )
}

fn attestation(source: u64, target: u64, root_byte: u8) -> String {
    let r = format!("0x{}", hex::encode([root_byte; 32]));
    format!(
        r#"{{"type":"ATTESTATION","fork_info":{fi},"attestation":{{"slot":"{slot}","index":"0","beacon_block_root":"{r}","source":{{"epoch":"{source}","root":"{r}"}},"target":{{"epoch":"{target}","root":"{r}"}}}}}}"#,
        fi = fork_info(),
        slot = target * 32
    )
}

/// The value of `keyguard_sign_requests_total` with `outcome` and `type`.
fn requests(signer: &Signer, outcome: &str, request_type: &str) -> u64 {
    let text = signer.metrics.encode();
    let line = text
        .lines()
        .find(|l| {
            l.starts_with("keyguard_sign_requests_total{")
                && l.contains(&format!("outcome=\"{outcome}\""))
                && l.contains(&format!("type=\"{request_type}\""))
        })
        .unwrap_or("x 0");
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

#[tokio::test]
async fn an_unknown_key_is_counted_under_its_request_type() {
    let s = setup(vec![local_key(1)], None);
    let other = pubkey_hex(local_key(2).pubkey());
    let body = randao(1);
    let err = s
        .signer
        .sign(&ClientIdentity::Anonymous, &other, Ok(body.as_bytes()))
        .await
        .unwrap_err();
    assert!(matches!(err, SignError::UnknownKey(_)), "{err}");
    assert_eq!(requests(&s.signer, "unknown_key", "RANDAO_REVEAL"), 1);
    assert_eq!(requests(&s.signer, "unknown_key", UNKNOWN_REQUEST_TYPE), 0);
    // A body without a readable type stays UNKNOWN.
    let _ = s
        .signer
        .sign(&ClientIdentity::Anonymous, &other, Ok(b"{".as_slice()))
        .await;
    assert_eq!(requests(&s.signer, "unknown_key", UNKNOWN_REQUEST_TYPE), 1);
}

#[tokio::test]
async fn a_scoped_client_cannot_tell_loaded_keys_from_unloaded_ones() {
    let (a, b, c) = (local_key(1), local_key(2), local_key(3));
    let (pk_a, pk_b, pk_c) = (
        pubkey_hex(a.pubkey()),
        pubkey_hex(b.pubkey()),
        pubkey_hex(c.pubkey()),
    );
    let config = AccessConfig {
        clients: vec![ClientConfig {
            name: "scoped".into(),
            fingerprints: vec![hex::encode([1u8; 32])],
            pubkeys: Some(vec![pk_a.clone(), pk_c.clone()]),
            ..Default::default()
        }],
        ..Default::default()
    };
    let policy = AccessPolicy::from_config(&config, &[]).unwrap();
    // a and b are loaded; c (in scope) is not.
    let s = setup(vec![a, b], Some(policy));
    let scoped = ClientIdentity::Token {
        name: "scoped".into(),
    };
    let body = randao(1);
    let sign = |pk: String| {
        let signer = &s.signer;
        let scoped = scoped.clone();
        let body = body.clone();
        async move { signer.sign(&scoped, &pk, Ok(body.as_bytes())).await }
    };
    assert!(sign(pk_a).await.is_ok());
    let loaded_outside = sign(pk_b).await.unwrap_err();
    let unloaded_outside = sign(pubkey_hex(local_key(4).pubkey())).await.unwrap_err();
    assert!(matches!(loaded_outside, SignError::OutOfScope(_)));
    assert!(matches!(unloaded_outside, SignError::OutOfScope(_)));
    assert_eq!(loaded_outside.to_string(), unloaded_outside.to_string());
    assert!(matches!(
        sign(pk_c).await.unwrap_err(),
        SignError::UnknownKey(_)
    ));
}

#[tokio::test]
async fn a_remote_key_is_protected_here_first_and_its_answer_verified() {
    let remote = Arc::new(CountingRemote {
        secret: bls::SecretKey::from_bytes(&secret(7)).unwrap(),
        lies: false,
        calls: AtomicUsize::new(0),
    });
    let pubkey = remote.secret.public_key();
    let key = ValidatorKey::remote(pubkey, Arc::clone(&remote) as Arc<dyn RemoteSigner>, "r");
    let s = setup(vec![key], None);
    let pk = pubkey_hex(&pubkey);
    let anon = ClientIdentity::Anonymous;

    let vote = attestation(1, 2, 0xaa);
    let signed = s
        .signer
        .sign(&anon, &pk, Ok(vote.as_bytes()))
        .await
        .unwrap();
    let root = consensus::prepare(vote.as_bytes(), &s.signer.network)
        .unwrap()
        .signing_root;
    assert!(bls::verify(&pubkey, &root, &signed.signature));
    assert_eq!(remote.calls.load(Ordering::SeqCst), 1);

    // A double vote is refused by this signer's database; the remote never sees it.
    let double = attestation(1, 2, 0xbb);
    let err = s
        .signer
        .sign(&anon, &pk, Ok(double.as_bytes()))
        .await
        .unwrap_err();
    assert!(matches!(err, SignError::Refused { .. }), "{err}");
    assert_eq!(remote.calls.load(Ordering::SeqCst), 1);
    assert_eq!(requests(&s.signer, "signed", "ATTESTATION"), 1);
}

#[tokio::test]
async fn a_lying_remote_is_refused_after_the_record_is_made() {
    let remote = Arc::new(CountingRemote {
        secret: bls::SecretKey::from_bytes(&secret(8)).unwrap(),
        lies: true,
        calls: AtomicUsize::new(0),
    });
    let pubkey = remote.secret.public_key();
    let key = ValidatorKey::remote(pubkey, Arc::clone(&remote) as Arc<dyn RemoteSigner>, "r");
    let s = setup(vec![key], None);
    let pk = pubkey_hex(&pubkey);
    let vote = attestation(3, 4, 0xaa);
    let err = s
        .signer
        .sign(&ClientIdentity::Anonymous, &pk, Ok(vote.as_bytes()))
        .await
        .unwrap_err();
    assert!(
        matches!(err, SignError::Backend(BackendError::WrongSignature)),
        "{err}"
    );
    assert_eq!(requests(&s.signer, "error", "ATTESTATION"), 1);
    // The vote was recorded before the remote was asked: a conflicting one is refused.
    let err = s
        .signer
        .sign(
            &ClientIdentity::Anonymous,
            &pk,
            Ok(attestation(3, 4, 0xbb).as_bytes()),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, SignError::Refused { .. }), "{err}");
}

#[tokio::test]
async fn a_local_key_signs_on_the_pool() {
    let key = local_key(5);
    let secret_key = bls::SecretKey::from_bytes(&secret(5)).unwrap();
    let pk = pubkey_hex(key.pubkey());
    let s = setup(vec![key], None);
    let body = randao(9);
    let signed = s
        .signer
        .sign(&ClientIdentity::Anonymous, &pk, Ok(body.as_bytes()))
        .await
        .unwrap();
    let root = consensus::prepare(body.as_bytes(), &s.signer.network)
        .unwrap()
        .signing_root;
    assert_eq!(signed.signature, secret_key.sign(&root));
    assert_eq!(signed.request_type, RequestType::RandaoReveal);
    // A body error is reported after the key is found.
    let err = s
        .signer
        .sign(
            &ClientIdentity::Anonymous,
            &pk,
            Err(BodyError::TooLarge(10)),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, SignError::Body(BodyError::TooLarge(10))));
}

#[tokio::test]
async fn another_chains_root_is_refused_for_every_type_and_records_nothing() {
    let key = local_key(7);
    let pubkey = pubkey_hex(key.pubkey());
    let setup = setup(vec![key], None);
    let signer = &setup.signer;
    let client = ClientIdentity::Anonymous;
    let other = "0x99".to_string() + &"99".repeat(31);
    for body in [attestation(2, 3, 1), randao(5)] {
        let wrong = body.replace(GVR, &other);
        let err = signer
            .sign(&client, &pubkey, Ok(wrong.as_bytes()))
            .await
            .unwrap_err();
        assert!(matches!(err, SignError::WrongGenesis(_)), "{err}");
    }
    let db = signer.slashing.as_ref().unwrap();
    assert!(!db.is_registered(setup_pubkey(signer)).unwrap());
    assert_eq!(requests(signer, "bad_request", "ATTESTATION"), 1);
    assert_eq!(requests(signer, "bad_request", "RANDAO_REVEAL"), 1);
    // The right root still signs.
    for body in [attestation(2, 3, 1), randao(5)] {
        signer
            .sign(&client, &pubkey, Ok(body.as_bytes()))
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn a_far_future_attestation_is_refused_and_not_recorded() {
    let key = local_key(8);
    let pubkey = pubkey_hex(key.pubkey());
    let setup = setup(vec![key], None);
    let signer = &setup.signer;
    let client = ClientIdentity::Anonymous;
    // Epoch 1002 is beyond slot 32000 + 64 (epoch 1002 starts at slot 32064: allowed);
    // epoch 1003 is not.
    let far = attestation(999, 1003, 1);
    let err = signer
        .sign(&client, &pubkey, Ok(far.as_bytes()))
        .await
        .unwrap_err();
    assert!(
        matches!(err, SignError::FutureDuty(ref m) if m.contains("epoch 1003")),
        "{err}"
    );
    let db = signer.slashing.as_ref().unwrap();
    assert!(!db.is_registered(setup_pubkey(signer)).unwrap());
    let far_randao = randao(1_000_000);
    let err = signer
        .sign(&client, &pubkey, Ok(far_randao.as_bytes()))
        .await
        .unwrap_err();
    assert!(matches!(err, SignError::FutureDuty(_)), "{err}");
    // Within the tolerance: signs, and a normal vote after it too.
    signer
        .sign(&client, &pubkey, Ok(attestation(999, 1002, 1).as_bytes()))
        .await
        .unwrap();
    assert!(db.is_registered(setup_pubkey(signer)).unwrap());
}

/// The pubkey of the only key loaded in `signer`.
fn setup_pubkey(signer: &Signer) -> [u8; 48] {
    signer.keys.pubkeys()[0]
}
