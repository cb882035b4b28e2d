//! Unit tests of the import and delete operations against a real key table, slashing
//! database and key store (the HTTP layer and the binary are covered by
//! `interop-tests/tests/keymanager_http.rs`).

use std::time::Duration;

use super::import::tests::keystore;
use super::*;
use crate::keys::{pubkey_hex, ValidatorKey};
use slashing_db::{Epoch, SigningRoot, Slot, Subject};

const GVR: [u8; 32] = [0x42; 32];

struct Harness {
    km: Arc<Keymanager>,
    ctx: Services,
    dir: tempfile::TempDir,
}

fn harness() -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let (token, _) = ApiToken::load_or_create(&dir.path().join("token")).unwrap();
    let store = KeyStore::open(&dir.path().join("km"), None).unwrap();
    let metrics = KeymanagerMetrics::register(&prometheus::Registry::new()).unwrap();
    let km = Arc::new(Keymanager::new(
        token,
        store,
        metrics,
        DEFAULT_MAX_BODY_BYTES,
    ));
    let db =
        slashing_db::SlashingDb::open(&dir.path().join("db.sqlite"), Default::default()).unwrap();
    let ctx = Services {
        keys: Arc::new(KeyTable::new()),
        slashing: Some(db),
        audit: Arc::new(AuditLog::disabled()),
        genesis_validators_root: None,
        loading_finished: true,
    };
    Harness { km, ctx, dir }
}

fn request(keystores: &[&str], passwords: &[&str], interchange: Option<String>) -> ImportRequest {
    let body = serde_json::json!({
        "keystores": keystores,
        "passwords": passwords,
        "slashing_protection": interchange,
    });
    ImportRequest::parse(body.to_string().as_bytes()).unwrap()
}

fn statuses<S: Copy>(list: &[Status<S>]) -> Vec<S> {
    list.iter().map(|s| s.status).collect()
}

/// An interchange with one block at `slot` and one attestation `source -> target`.
fn interchange(pk: &PubkeyBytes, slot: u64, source: u64, target: u64) -> String {
    serde_json::json!({
        "metadata": {
            "interchange_format_version": "5",
            "genesis_validators_root": format!("0x{}", hex::encode(GVR)),
        },
        "data": [{
            "pubkey": pubkey_hex(pk),
            "signed_blocks": [{ "slot": slot.to_string() }],
            "signed_attestations": [{
                "source_epoch": source.to_string(),
                "target_epoch": target.to_string(),
            }],
        }],
    })
    .to_string()
}

#[tokio::test]
async fn batch_statuses_in_order_and_only_good_keys_change_anything() {
    let h = harness();
    let (good, good_json) = keystore(1, "good-pw");
    let (wrong, wrong_json) = keystore(2, "right-pw");
    let huge = " ".repeat(2 << 20);
    let req = request(
        &[
            "{\"not\": \"a keystore\"}",
            &wrong_json,
            &good_json,
            &good_json,
            &huge,
        ],
        &["x", "not-the-pw-777", "good-pw", "good-pw", "x"],
        None,
    );
    let out = h.km.import(h.ctx.clone(), req).await.unwrap();
    assert_eq!(
        statuses(&out),
        [
            ImportStatus::Error,
            ImportStatus::Error,
            ImportStatus::Imported,
            ImportStatus::Duplicate,
            ImportStatus::Error
        ]
    );
    assert!(out[4].message.as_deref().unwrap().contains("too large"));
    let wrong_msg = out[1].message.as_deref().unwrap();
    assert!(wrong_msg.contains("wrong password") && !wrong_msg.contains("not-the-pw-777"));
    assert!(out[0]
        .message
        .as_deref()
        .unwrap()
        .contains("not an EIP-2335 keystore"));
    assert!(out[2].message.is_none());

    assert!(h.ctx.keys.get(wrong.pubkey()).is_none());
    let loaded = h.ctx.keys.get(good.pubkey()).unwrap();
    assert_eq!(loaded.source(), KeySource::Imported);
    assert!(h.km.store.stored_file(good.pubkey()).is_some());
    assert!(h.km.store.stored_file(wrong.pubkey()).is_none());
    let listed = h.km.list(&h.ctx.keys);
    assert_eq!(
        listed,
        [ListedKey {
            validating_pubkey: pubkey_hex(good.pubkey()),
            derivation_path: Some("m/12381/3600/1/0/0".into()),
            readonly: false,
        }]
    );

    // Importing it again later is a duplicate too, and a configured key is read-only.
    let again =
        h.km.import(h.ctx.clone(), request(&[&good_json], &["good-pw"], None))
            .await
            .unwrap();
    assert_eq!(statuses(&again), [ImportStatus::Duplicate]);
}

#[tokio::test]
async fn slashing_protection_is_imported_first_and_bad_data_imports_nothing() {
    let h = harness();
    let (key, json) = keystore(3, "pw");
    let pk = *key.pubkey();
    let db = h.ctx.slashing.clone().unwrap();

    let mut bad = interchange(&pk, 10, 1, 2);
    bad = bad.replace("\"5\"", "\"4\"");
    let err =
        h.km.import(h.ctx.clone(), request(&[&json], &["pw"], Some(bad)))
            .await
            .unwrap_err();
    assert!(matches!(err, OpError::BadRequest(_)), "{err:?}");
    assert!(h.ctx.keys.get(&pk).is_none());
    assert!(!db.is_registered(pk).unwrap());

    let out =
        h.km.import(
            h.ctx.clone(),
            request(&[&json], &["pw"], Some(interchange(&pk, 10, 1, 2))),
        )
        .await
        .unwrap();
    assert_eq!(statuses(&out), [ImportStatus::Imported]);
    // The imported history refuses what it covers and allows what is beyond it.
    assert!(db
        .check_and_record(
            GVR.into(),
            pk.into(),
            Subject::Block { slot: Slot(10) },
            SigningRoot([1; 32])
        )
        .await
        .is_err());
    assert!(db
        .check_and_record(
            GVR.into(),
            pk.into(),
            Subject::Attestation {
                source: Epoch(1),
                target: Epoch(2)
            },
            SigningRoot([1; 32])
        )
        .await
        .is_err());
    assert!(db
        .check_and_record(
            GVR.into(),
            pk.into(),
            Subject::Block { slot: Slot(11) },
            SigningRoot([1; 32])
        )
        .await
        .is_ok());

    // An interchange for another chain than the network's is refused up front.
    let mut ctx = h.ctx.clone();
    ctx.genesis_validators_root = Some([0x99; 32]);
    let (other, other_json) = keystore(4, "pw");
    let err =
        h.km.import(
            ctx,
            request(
                &[&other_json],
                &["pw"],
                Some(interchange(other.pubkey(), 1, 0, 1)),
            ),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, OpError::BadRequest(ref m) if m.contains("genesis_validators_root")));
    assert!(h.ctx.keys.get(other.pubkey()).is_none());
}

#[tokio::test]
async fn delete_statuses_export_and_files() {
    let h = harness();
    let (key, json) = keystore(5, "pw");
    let pk = *key.pubkey();
    h.km.import(h.ctx.clone(), request(&[&json], &["pw"], None))
        .await
        .unwrap();
    let db = h.ctx.slashing.clone().unwrap();
    db.check_and_record(
        GVR.into(),
        pk.into(),
        Subject::Block { slot: Slot(33) },
        SigningRoot([3; 32]),
    )
    .await
    .unwrap();
    let file = h.km.store.stored_file(&pk).unwrap();
    // A key from a configured source cannot be deleted here.
    let configured = {
        let mut b = [0u8; 32];
        b[31] = 99;
        ValidatorKey::from_secret_bytes(
            &zeroize::Zeroizing::new(b),
            KeySource::Keystore,
            "/etc/ks/a.json",
        )
        .unwrap()
    };
    let configured_pk = *h.ctx.keys.insert(configured).unwrap().pubkey();
    let unknown = [0xabu8; 48];

    let resp =
        h.km.delete(h.ctx.clone(), vec![pk, configured_pk, unknown])
            .await
            .unwrap();
    assert_eq!(
        statuses(&resp.data),
        [
            DeleteStatus::Deleted,
            DeleteStatus::Error,
            DeleteStatus::NotFound
        ]
    );
    let msg = resp.data[1].message.as_deref().unwrap();
    assert!(
        msg.contains("/etc/ks/a.json") && msg.contains("remove it there"),
        "{msg}"
    );
    assert!(h.ctx.keys.get(&pk).is_none());
    assert!(h.ctx.keys.get(&configured_pk).is_some());
    assert!(!file.exists());
    let v: serde_json::Value = serde_json::from_str(&resp.slashing_protection).unwrap();
    assert_eq!(v["data"].as_array().unwrap().len(), 1);
    assert_eq!(v["data"][0]["pubkey"], pubkey_hex(&pk));
    assert_eq!(v["data"][0]["signed_blocks"][0]["slot"], "33");

    // Again: no longer loaded, but the database still knows it.
    let resp = h.km.delete(h.ctx.clone(), vec![pk]).await.unwrap();
    assert_eq!(statuses(&resp.data), [DeleteStatus::NotActive]);
    let v: serde_json::Value = serde_json::from_str(&resp.slashing_protection).unwrap();
    assert_eq!(v["data"][0]["signed_blocks"][0]["slot"], "33");

    // A stored key that did not load (here: only on disk) is removed by a deletion too.
    let (stray, stray_json) = keystore(9, "pw");
    let stray_file = h.km.store.persist(&stray, &stray_json, "pw").unwrap();
    let resp =
        h.km.delete(h.ctx.clone(), vec![*stray.pubkey()])
            .await
            .unwrap();
    assert_eq!(statuses(&resp.data), [DeleteStatus::NotFound]);
    assert!(resp.data[0]
        .message
        .as_deref()
        .unwrap()
        .contains("was removed"));
    assert!(!stray_file.exists());
}

/// The safety property of deletion: a request that holds the key when the deletion starts
/// gets its record into the export, and the deletion does not answer before it is done.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_waits_for_in_flight_requests_and_exports_their_records() {
    let h = harness();
    let (key, json) = keystore(6, "pw");
    let pk = *key.pubkey();
    h.km.import(h.ctx.clone(), request(&[&json], &["pw"], None))
        .await
        .unwrap();
    // An in-flight sign request: it looked the key up and has not recorded yet.
    let in_flight = h.ctx.keys.get(&pk).unwrap();
    let deletion = {
        let (km, ctx) = (Arc::clone(&h.km), h.ctx.clone());
        tokio::spawn(async move { km.delete(ctx, vec![pk]).await })
    };
    while h.ctx.keys.get(&pk).is_some() {
        tokio::task::yield_now().await;
    }
    assert!(
        !deletion.is_finished(),
        "deletion answered while the key was in use"
    );
    let db = h.ctx.slashing.clone().unwrap();
    db.check_and_record(
        GVR.into(),
        pk.into(),
        Subject::Attestation {
            source: Epoch(7),
            target: Epoch(8),
        },
        SigningRoot([8; 32]),
    )
    .await
    .unwrap();
    drop(in_flight);
    let resp = deletion.await.unwrap().unwrap();
    assert_eq!(statuses(&resp.data), [DeleteStatus::Deleted]);
    let v: serde_json::Value = serde_json::from_str(&resp.slashing_protection).unwrap();
    assert_eq!(v["data"][0]["signed_attestations"][0]["target_epoch"], "8");
}

#[tokio::test]
async fn a_key_still_in_use_after_the_wait_is_put_back() {
    let mut h = harness();
    Arc::get_mut(&mut h.km).unwrap().delete_wait = Duration::from_millis(20);
    let (key, json) = keystore(7, "pw");
    let pk = *key.pubkey();
    h.km.import(h.ctx.clone(), request(&[&json], &["pw"], None))
        .await
        .unwrap();
    let stuck = h.ctx.keys.get(&pk).unwrap();
    let resp = h.km.delete(h.ctx.clone(), vec![pk]).await.unwrap();
    assert_eq!(statuses(&resp.data), [DeleteStatus::Error]);
    assert!(h.ctx.keys.get(&pk).is_some(), "the key is active again");
    assert!(h.km.store.stored_file(&pk).is_some(), "its file is kept");
    let v: serde_json::Value = serde_json::from_str(&resp.slashing_protection).unwrap();
    assert_eq!(v["data"].as_array().unwrap().len(), 0);
    drop(stuck);
    let _ = &h.dir;
}

#[tokio::test]
async fn operations_wait_for_start_up_loading() {
    let h = harness();
    let mut ctx = h.ctx.clone();
    ctx.loading_finished = false;
    let (_, json) = keystore(8, "pw");
    let err =
        h.km.import(ctx.clone(), request(&[&json], &["pw"], None))
            .await
            .unwrap_err();
    assert!(matches!(err, OpError::Unavailable(_)));
    assert!(matches!(
        h.km.delete(ctx, vec![[1u8; 48]]).await,
        Err(OpError::Unavailable(_))
    ));
    assert!(h.ctx.keys.is_empty());
}

/// `json` with its scrypt parameter `name` set to `value`.
fn with_scrypt_param(json: &str, name: &str, value: u64) -> String {
    let mut v: serde_json::Value = serde_json::from_str(json).unwrap();
    v["crypto"]["kdf"]["params"][name] = value.into();
    v.to_string()
}

#[tokio::test]
async fn costly_kdf_parameters_are_refused_before_decrypting() {
    let h = harness();
    let (_, json) = keystore(40, "pw");
    // Within the on-disk bounds, beyond the import limits; never decrypted (each would
    // take 512 MiB or p times the work).
    let big_n = with_scrypt_param(&json, "n", 1 << 19);
    let big_p = with_scrypt_param(&json, "p", 2);
    let out =
        h.km.import(
            h.ctx.clone(),
            request(&[&big_n, &big_p], &["pw", "pw"], None),
        )
        .await
        .unwrap();
    assert_eq!(statuses(&out), [ImportStatus::Error, ImportStatus::Error]);
    let message = |i: usize| out[i].message.clone().unwrap_or_default();
    assert!(message(0).contains("import limit"), "{}", message(0));
    assert!(message(1).contains("p = 1"), "{}", message(1));
}

#[test]
fn too_many_keystores_in_one_request_is_a_bad_request() {
    let n = super::import::MAX_KEYSTORES_PER_REQUEST + 1;
    let body = serde_json::json!({
        "keystores": vec!["{}"; n],
        "passwords": vec!["pw"; n],
    });
    match ImportRequest::parse(body.to_string().as_bytes()) {
        Err(OpError::BadRequest(m)) => assert!(m.contains("at most"), "{m}"),
        other => panic!("expected a bad request, got {:?}", other.err()),
    }
}

/// A deleted key without records is listed with empty lists, under the signer's root when
/// the database never bound one (the next signer must learn the key and the chain).
#[tokio::test]
async fn delete_export_lists_a_key_without_records_under_the_pinned_root() {
    let mut h = harness();
    h.ctx.genesis_validators_root = Some(GVR);
    let (key, json) = keystore(6, "pw");
    let pk = *key.pubkey();
    h.km.import(h.ctx.clone(), request(&[&json], &["pw"], None))
        .await
        .unwrap();
    let resp = h.km.delete(h.ctx.clone(), vec![pk]).await.unwrap();
    assert_eq!(statuses(&resp.data), [DeleteStatus::Deleted]);
    let v: serde_json::Value = serde_json::from_str(&resp.slashing_protection).unwrap();
    assert_eq!(
        v["metadata"]["genesis_validators_root"],
        format!("0x{}", hex::encode(GVR))
    );
    assert_eq!(v["metadata"]["interchange_format_version"], "5");
    let entries = v["data"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{v}");
    assert_eq!(entries[0]["pubkey"], pubkey_hex(&pk));
    assert_eq!(entries[0]["signed_blocks"], serde_json::json!([]));
    assert_eq!(entries[0]["signed_attestations"], serde_json::json!([]));

    // With a bound database: the key with records and the one without, both listed.
    let db = h.ctx.slashing.clone().unwrap();
    let (a, a_json) = keystore(7, "pw");
    let (b, b_json) = keystore(8, "pw");
    h.km.import(
        h.ctx.clone(),
        request(&[&a_json, &b_json], &["pw", "pw"], None),
    )
    .await
    .unwrap();
    db.check_and_record(
        GVR.into(),
        (*a.pubkey()).into(),
        Subject::Block { slot: Slot(40) },
        SigningRoot([4; 32]),
    )
    .await
    .unwrap();
    let resp =
        h.km.delete(h.ctx.clone(), vec![*a.pubkey(), *b.pubkey()])
            .await
            .unwrap();
    let v: serde_json::Value = serde_json::from_str(&resp.slashing_protection).unwrap();
    let pubkeys: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["pubkey"].as_str().unwrap())
        .collect();
    assert_eq!(pubkeys, [pubkey_hex(a.pubkey()), pubkey_hex(b.pubkey())]);
    // The export imports into a fresh database.
    let dir = tempfile::tempdir().unwrap();
    let fresh =
        slashing_db::SlashingDb::open(&dir.path().join("f.sqlite"), Default::default()).unwrap();
    let summary = fresh
        .import_interchange(resp.slashing_protection.as_bytes())
        .unwrap();
    assert_eq!(summary.validators, 2);
    assert_eq!(fresh.genesis_validators_root().unwrap(), Some(GVR));
}

/// An audit log in `refuse` mode whose every write fails, once it has noticed.
fn failing_audit() -> Arc<AuditLog> {
    struct Full;
    impl crate::audit::Sink for Full {
        fn append(&mut self, _: &[u8]) -> std::io::Result<()> {
            Err(std::io::Error::other("disk full (test)"))
        }
    }
    let config = crate::audit::AuditConfig {
        enabled: true,
        ..Default::default()
    };
    let log = AuditLog::start(
        Box::new(Full),
        crate::audit::ChainHead::GENESIS,
        &config,
        "mem".into(),
        None,
    );
    log.record_key_event(crate::audit::EventName::KeyLoad, &[1; 48], "x");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while log.health() == crate::audit::AuditHealth::Up {
        assert!(
            std::time::Instant::now() < deadline,
            "the write never failed"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    Arc::new(log)
}

#[tokio::test]
async fn with_refuse_a_failing_audit_log_refuses_imports_and_deletes_before_any_change() {
    let mut h = harness();
    let (key, json) = keystore(1, "pw-1");
    let pk = *key.pubkey();
    let out =
        h.km.import(h.ctx.clone(), request(&[&json], &["pw-1"], None))
            .await
            .unwrap();
    assert_eq!(statuses(&out), [ImportStatus::Imported]);

    h.ctx.audit = failing_audit();
    let (_, other_json) = keystore(2, "pw-2");
    let err =
        h.km.import(h.ctx.clone(), request(&[&other_json], &["pw-2"], None))
            .await
            .unwrap_err();
    assert_eq!(
        err.to_string(),
        "audit log cannot be written; nothing imported"
    );
    assert_eq!(h.ctx.keys.len(), 1, "nothing imported");
    let err = h.km.delete(h.ctx.clone(), vec![pk]).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "audit log cannot be written; nothing deleted"
    );
    assert!(h.ctx.keys.get(&pk).is_some(), "still loaded");
    assert!(h.km.store.stored_file(&pk).is_some(), "still stored");
}
