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

fn deposit() -> String {
    format!(
        r#"{{"type":"DEPOSIT","deposit":{{"pubkey":"0x{}","withdrawal_credentials":"0x{}","amount":"32000000000","genesis_fork_version":"0x00000000"}}}}"#,
        "bb".repeat(48),
        "cc".repeat(32)
    )
}

/// `attester` may sign only attestations; `depositor` only deposits; `plain` has no
/// `types`. None is scoped.
fn typed_policy() -> AccessPolicy {
    let client = |name: &str, n: u8, types: Option<&[&str]>| ClientConfig {
        name: name.into(),
        fingerprints: vec![hex::encode([n; 32])],
        types: types.map(|t| t.iter().map(|s| s.to_string()).collect()),
        ..Default::default()
    };
    let config = AccessConfig {
        clients: vec![
            client("attester", 1, Some(&["ATTESTATION"])),
            client("depositor", 2, Some(&["DEPOSIT"])),
            client("plain", 3, None),
        ],
        ..Default::default()
    };
    AccessPolicy::from_config(&config, &[]).unwrap()
}

fn token(name: &str) -> ClientIdentity {
    ClientIdentity::Token { name: name.into() }
}

#[tokio::test]
async fn a_type_outside_the_clients_types_is_refused_before_anything_is_recorded() {
    let key = local_key(1);
    let pk = pubkey_hex(key.pubkey());
    let s = setup(vec![key], Some(typed_policy()));
    let vote = attestation(1, 2, 0xaa);
    // `depositor` may not attest: refused, and nothing is recorded for the vote...
    let err = s
        .signer
        .sign(&token("depositor"), &pk, Ok(vote.as_bytes()))
        .await
        .unwrap_err();
    assert!(matches!(err, SignError::TypeNotAllowed(_)), "{err}");
    assert_eq!(err.audit_reason(), Some("type_not_allowed"));
    assert_eq!(requests(&s.signer, "forbidden", "ATTESTATION"), 1);
    // ...so another vote for the same target is not a double vote.
    let other = attestation(1, 2, 0xbb);
    assert!(s
        .signer
        .sign(&token("attester"), &pk, Ok(other.as_bytes()))
        .await
        .is_ok());
    // `attester` may not sign a RANDAO reveal; `plain` may.
    let body = randao(1);
    let err = s
        .signer
        .sign(&token("attester"), &pk, Ok(body.as_bytes()))
        .await
        .unwrap_err();
    assert!(matches!(err, SignError::TypeNotAllowed(_)), "{err}");
    assert!(s
        .signer
        .sign(&token("plain"), &pk, Ok(body.as_bytes()))
        .await
        .is_ok());
}

#[tokio::test]
async fn deposit_is_signed_only_for_a_client_whose_types_list_it() {
    let key = local_key(1);
    let pk = pubkey_hex(key.pubkey());
    let s = setup(vec![key], Some(typed_policy()));
    let body = deposit();
    for client in [token("plain"), token("attester"), ClientIdentity::Anonymous] {
        let err = s
            .signer
            .sign(&client, &pk, Ok(body.as_bytes()))
            .await
            .unwrap_err();
        assert!(
            matches!(err, SignError::TypeNotAllowed(_)),
            "{client}: {err}"
        );
    }
    assert!(s
        .signer
        .sign(&token("depositor"), &pk, Ok(body.as_bytes()))
        .await
        .is_ok());
    // No [access] rules at all: deposits are refused too.
    let s = setup(vec![local_key(2)], None);
    let pk2 = pubkey_hex(local_key(2).pubkey());
    let err = s
        .signer
        .sign(&ClientIdentity::Anonymous, &pk2, Ok(body.as_bytes()))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("DEPOSIT needs a client"), "{err}");
}

#[tokio::test]
async fn a_refused_type_gets_the_same_answer_for_loaded_and_unloaded_keys() {
    let key = local_key(1);
    let loaded = pubkey_hex(key.pubkey());
    let unloaded = pubkey_hex(local_key(2).pubkey());
    let s = setup(vec![key], Some(typed_policy()));
    let body = deposit();
    let a = s
        .signer
        .sign(&token("plain"), &loaded, Ok(body.as_bytes()))
        .await
        .unwrap_err();
    let b = s
        .signer
        .sign(&token("plain"), &unloaded, Ok(body.as_bytes()))
        .await
        .unwrap_err();
    assert!(matches!(a, SignError::TypeNotAllowed(_)));
    assert_eq!(a.to_string(), b.to_string());
}

#[tokio::test]
async fn once_a_client_is_scoped_an_unscoped_identity_gets_no_key() {
    let a = local_key(1);
    let pk_a = pubkey_hex(a.pubkey());
    let config = AccessConfig {
        clients: vec![
            ClientConfig {
                name: "scoped".into(),
                fingerprints: vec![hex::encode([1u8; 32])],
                pubkeys: Some(vec![pk_a.clone()]),
                ..Default::default()
            },
            ClientConfig {
                name: "unscoped".into(),
                fingerprints: vec![hex::encode([2u8; 32])],
                ..Default::default()
            },
        ],
        ..Default::default()
    };
    let s = setup(
        vec![a],
        Some(AccessPolicy::from_config(&config, &[]).unwrap()),
    );
    let body = randao(1);
    for client in [token("unscoped"), ClientIdentity::Anonymous] {
        let err = s
            .signer
            .sign(&client, &pk_a, Ok(body.as_bytes()))
            .await
            .unwrap_err();
        assert!(matches!(err, SignError::OutOfScope(_)), "{client}: {err}");
    }
    assert!(s
        .signer
        .sign(&token("scoped"), &pk_a, Ok(body.as_bytes()))
        .await
        .is_ok());
}
