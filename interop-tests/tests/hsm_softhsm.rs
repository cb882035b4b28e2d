//! The `pkcs11-sealed` HSM backend against a real SoftHSM2 token.
//!
//! Every test takes tokens of its own from the pool in `interop_tests::softhsm` and selects
//! them by label. Without SoftHSM2 the tests print a loud skip; under `CI=true` they fail.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use interop_tests::softhsm::{self, TestToken};
use keyguard::hsm::{self, HsmConfig, HsmError, HsmSession};
use keyguard::keys::loader::{run_jobs, ProgressSnapshot};
use keyguard::keys::{KeyTable, LoadProgress, PubkeyBytes, ValidatorKey, BLS_DST};

/// The SoftHSM installation, or return from the test (loud skip outside CI).
macro_rules! softhsm_or_skip {
    () => {
        match softhsm::softhsm() {
            Some(s) => s,
            None => return,
        }
    };
}

fn open(cfg: &HsmConfig) -> Arc<HsmSession> {
    Arc::new(HsmSession::open(cfg).expect("open HSM session"))
}

/// A token with its KEK created and a session on it.
fn token_with_kek() -> (TestToken, Arc<HsmSession>) {
    let token = softhsm_or_panic().token();
    hsm::init_kek(&token.config()).expect("init KEK");
    let session = open(&token.config());
    (token, session)
}

fn softhsm_or_panic() -> &'static softhsm::SoftHsm {
    softhsm::softhsm().expect("callers checked softhsm() first")
}

/// Loads every sealed file in `dir` into a fresh key table.
fn load(session: &Arc<HsmSession>, dir: &Path) -> (KeyTable, ProgressSnapshot) {
    let table = KeyTable::new();
    let progress = LoadProgress::new();
    let jobs = hsm::sealed_load_jobs(Arc::clone(session), dir).expect("list sealed files");
    progress.add_total(jobs.len());
    run_jobs(jobs, &table, &progress);
    progress.finish();
    (table, progress.snapshot())
}

/// Generates `n` keys under the session's KEK into `dir`, returning pubkeys and the hex
/// of each secret (for the leak checks).
fn generate(session: &HsmSession, n: u32, dir: &Path) -> (Vec<PubkeyBytes>, Vec<String>) {
    let mut secrets = Vec::new();
    let pubkeys = hsm::generate_keys_with(session, n, 0, dir, |_, key| {
        secrets.push(hex::encode(*key.secret_bytes().expect("local key")));
        Ok(())
    })
    .expect("generate keys");
    (pubkeys, secrets)
}

fn assert_signs(key: &ValidatorKey) {
    let root = [0x5au8; 32];
    let secret = key.local_secret().expect("a local key");
    let sig = blst::min_pk::Signature::from_bytes(&secret.sign(&root)).expect("signature decodes");
    let pk = blst::min_pk::PublicKey::from_bytes(key.pubkey()).expect("pubkey decodes");
    assert_eq!(
        sig.verify(true, &root, BLS_DST, &[], &pk, true),
        blst::BLST_ERROR::BLST_SUCCESS
    );
}

fn edit_json(path: &Path, f: impl FnOnce(&mut serde_json::Value)) {
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    f(&mut v);
    std::fs::write(path, serde_json::to_string_pretty(&v).unwrap()).unwrap();
}

fn sealed_path(dir: &Path, pk: &PubkeyBytes) -> PathBuf {
    dir.join(hsm::sealed_file_name(pk))
}

#[test]
fn missing_module_is_named() {
    let mut cfg = HsmConfig::new("/nonexistent/lib/libvendor-pkcs11.so", "any");
    cfg.pin_env = Some("PATH".into()); // any set variable: the PIN is read first
    let err = HsmSession::open(&cfg).unwrap_err();
    assert!(matches!(err, HsmError::ModuleNotFound { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("/nonexistent/lib/libvendor-pkcs11.so"),
        "{err}"
    );

    // A file that exists but is no PKCS#11 module.
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("fake.so");
    std::fs::write(&fake, b"not a library").unwrap();
    cfg.module = fake.clone();
    let err = HsmSession::open(&cfg).unwrap_err();
    assert!(matches!(err, HsmError::ModuleLoad { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&fake.display().to_string()),
        "{err}"
    );
}

#[test]
fn unknown_token_label_lists_existing_labels() {
    let sh = softhsm_or_skip!();
    let mut cfg = sh.token().config();
    cfg.token_label = "no-such-token".into();
    let err = HsmSession::open(&cfg).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, HsmError::TokenNotFound { .. }), "{err:?}");
    assert!(msg.contains("\"no-such-token\""), "{msg}");
    for label in sh.labels() {
        assert!(msg.contains(&format!("\"{label}\"")), "{msg} lacks {label}");
    }
}

#[test]
fn wrong_pin_and_bad_pin_sources_are_reported() {
    let sh = softhsm_or_skip!();
    let token = sh.token();
    let dir = tempfile::tempdir().unwrap();
    let pin_file = dir.path().join("wrong.pin");
    std::fs::write(&pin_file, "not-the-pin-4711\n").unwrap();
    let mut cfg = token.config();
    cfg.pin_file = Some(pin_file);
    let err = HsmSession::open(&cfg).unwrap_err();
    assert!(matches!(err, HsmError::WrongPin { .. }), "{err:?}");
    let msg = format!("{err} {err:?}");
    assert!(msg.contains(&token.label), "{msg}");
    assert!(!msg.contains("not-the-pin-4711"), "PIN leaked: {msg}");

    cfg.pin_file = Some(dir.path().join("missing.pin"));
    let err = HsmSession::open(&cfg).unwrap_err();
    assert!(matches!(err, HsmError::PinFileUnreadable { .. }), "{err:?}");
    assert!(err.to_string().contains("missing.pin"), "{err}");

    cfg.pin_file = None;
    cfg.pin_env = Some("KEYGUARD_TEST_PIN_THAT_IS_NOT_SET".into());
    let err = HsmSession::open(&cfg).unwrap_err();
    assert!(
        err.to_string()
            .contains("KEYGUARD_TEST_PIN_THAT_IS_NOT_SET"),
        "{err}"
    );

    // The right PIN still works (the failures did not lock the token).
    let session = open(&token.config());
    session.check_alive().expect("alive");
}

#[test]
fn kek_is_created_once_and_cannot_be_read() {
    let sh = softhsm_or_skip!();
    let token = sh.token();
    let cfg = token.config();
    hsm::init_kek(&cfg).expect("first init");
    let err = hsm::init_kek(&cfg).unwrap_err();
    assert!(matches!(err, HsmError::KekExists { .. }), "{err:?}");
    assert!(err.to_string().contains("keyguard-kek"), "{err}");

    let session = open(&cfg);
    session.require_kek().expect("KEK present");
    let p = session.kek_protection("keyguard-kek").expect("attributes");
    assert!(p.sensitive, "{p:?}");
    assert!(!p.extractable, "{p:?}");
    assert!(p.token_object && p.private, "{p:?}");
    assert!(!p.value_readable, "KEK value readable: {p:?}");

    // A new session sees the KEK persisted in the token.
    drop(session);
    open(&cfg).require_kek().expect("KEK persisted");
}

#[test]
fn missing_kek_is_reported_with_label_and_token() {
    let sh = softhsm_or_skip!();
    let token = sh.token();
    let session = open(&token.config());
    let err = session.require_kek().unwrap_err();
    assert!(matches!(err, HsmError::KekMissing { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("keyguard-kek") && msg.contains(&token.label),
        "{msg}"
    );
    let dir = tempfile::tempdir().unwrap();
    let err = hsm::generate_keys(&session, 1, 0, dir.path()).unwrap_err();
    assert!(matches!(err, HsmError::KekMissing { .. }), "{err:?}");
    assert!(hsm::sealed_files(dir.path()).unwrap().is_empty());
}

#[test]
fn seal_load_sign_verify() {
    let _ = softhsm_or_skip!();
    // Source of a key to seal: generated in one token, unsealed, sealed into another.
    let (_a, hsm_a) = token_with_kek();
    let dir_a = tempfile::tempdir().unwrap();
    let (pks, _) = generate(&hsm_a, 1, dir_a.path());
    let key = hsm::unseal_file(&hsm_a, &sealed_path(dir_a.path(), &pks[0])).unwrap();

    let (_b, hsm_b) = token_with_kek();
    let dir_b = tempfile::tempdir().unwrap();
    let path = hsm::seal_key(&hsm_b, &key, dir_b.path()).expect("seal");
    assert_eq!(path, sealed_path(dir_b.path(), key.pubkey()));
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    // File format.
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(v["version"], 1);
    assert_eq!(v["format"], "keyguard-sealed-bls12381-v1");
    assert_eq!(v["pubkey"], format!("0x{}", hex::encode(key.pubkey())));
    assert_eq!(v["kek_label"], "keyguard-kek");
    assert_eq!(v["iv"].as_str().unwrap().len(), 2 + 24);
    assert_eq!(v["ciphertext"].as_str().unwrap().len(), 2 + 96);

    // Sealing the same key again never overwrites.
    let err = hsm::seal_key(&hsm_b, &key, dir_b.path()).unwrap_err();
    assert!(matches!(err, HsmError::AlreadySealed { .. }), "{err:?}");

    let (table, progress) = load(&hsm_b, dir_b.path());
    assert_eq!((progress.loaded, progress.failed), (1, 0), "{progress:?}");
    let loaded = table.get(key.pubkey()).expect("loaded");
    assert_eq!(loaded.source(), keyguard::keys::KeySource::Sealed);
    assert_signs(&loaded);
    assert_eq!(
        *loaded.secret_bytes().expect("local key"),
        *key.secret_bytes().expect("local key")
    );
}

#[test]
fn generated_keys_load_with_matching_pubkeys() {
    let _ = softhsm_or_skip!();
    let (_t, session) = token_with_kek();
    let dir = tempfile::tempdir().unwrap();
    let mut indices = Vec::new();
    let pubkeys = hsm::generate_keys_with(&session, 6, 10, dir.path(), |i, key| {
        indices.push((i, *key.pubkey()));
        Ok(())
    })
    .unwrap();
    assert_eq!(pubkeys.len(), 6);
    assert_eq!(
        indices.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
        (10..16).collect::<Vec<_>>()
    );
    assert!(indices.iter().zip(&pubkeys).all(|((_, a), b)| a == b));
    let unique: std::collections::HashSet<_> = pubkeys.iter().collect();
    assert_eq!(unique.len(), 6);
    // Nothing but sealed files in the directory (no temporary or plain files).
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 6);

    for parallel in [true, false] {
        session.set_parallel_unseal(parallel);
        let (table, progress) = load(&session, dir.path());
        assert_eq!((progress.loaded, progress.failed), (6, 0), "{progress:?}");
        let mut expected = pubkeys.clone();
        expected.sort_unstable();
        assert_eq!(table.pubkeys(), expected);
        for key in table.keys() {
            assert_signs(&key);
        }
    }

    // A callback error stops generation and is reported with the index.
    let err = hsm::generate_keys_with(&session, 3, 100, dir.path(), |i, _| {
        if i == 101 {
            Err("backup disk full".into())
        } else {
            Ok(())
        }
    })
    .unwrap_err();
    assert!(err.to_string().contains("101") && err.to_string().contains("backup disk full"));
}

#[test]
fn tampered_files_are_reported_and_skipped() {
    let _ = softhsm_or_skip!();
    let (_t, session) = token_with_kek();
    let dir = tempfile::tempdir().unwrap();
    let (pks, _) = generate(&session, 5, dir.path());

    // 1. One ciphertext bit flipped.
    let flipped = sealed_path(dir.path(), &pks[0]);
    edit_json(&flipped, |v| {
        let ct = v["ciphertext"].as_str().unwrap().to_string();
        let mut bytes = hex::decode(&ct[2..]).unwrap();
        bytes[5] ^= 0x01;
        v["ciphertext"] = format!("0x{}", hex::encode(bytes)).into();
    });
    // 2. The pubkey replaced by another key's, file renamed to match: only the AAD catches it.
    let swapped_src = sealed_path(dir.path(), &pks[1]);
    let swapped = dir
        .path()
        .join("0x".to_string() + &"ab".repeat(48) + ".sealed.json");
    edit_json(&swapped_src, |v| {
        v["pubkey"] = format!("0x{}", "ab".repeat(48)).into()
    });
    std::fs::rename(&swapped_src, &swapped).unwrap();
    // 3. The pubkey edited in place: the name no longer matches.
    let edited = sealed_path(dir.path(), &pks[2]);
    edit_json(&edited, |v| {
        v["pubkey"] = format!("0x{}", "cd".repeat(48)).into()
    });
    // 4. Not JSON at all.
    let garbage = dir.path().join("0xgarbage.sealed.json");
    std::fs::write(&garbage, "{ not json").unwrap();

    let (table, progress) = load(&session, dir.path());
    assert_eq!((progress.loaded, progress.failed), (2, 4), "{progress:?}");
    assert!(table.get(&pks[3]).is_some() && table.get(&pks[4]).is_some());
    let failure = |p: &Path| {
        progress
            .failures
            .iter()
            .find(|f| f.origin == p.display().to_string())
            .unwrap_or_else(|| panic!("no failure for {}: {progress:?}", p.display()))
            .error
            .clone()
    };
    for p in [&flipped, &swapped] {
        let e = failure(p);
        assert!(
            e.contains("authentication failed") && e.contains(&p.display().to_string()),
            "{e}"
        );
    }
    let e = failure(&edited);
    assert!(e.contains("file name does not match"), "{e}");
    let e = failure(&garbage);
    assert!(e.contains("not a sealed key file"), "{e}");
}

#[test]
fn file_sealed_under_another_kek_is_rejected() {
    let _ = softhsm_or_skip!();
    // Two tokens, each with its own KEK of the same default label.
    let (_a, hsm_a) = token_with_kek();
    let (_b, hsm_b) = token_with_kek();
    let dir = tempfile::tempdir().unwrap();
    let (pks, _) = generate(&hsm_a, 2, dir.path());
    let (_, progress) = load(&hsm_b, dir.path());
    assert_eq!((progress.loaded, progress.failed), (0, 2), "{progress:?}");
    assert!(progress
        .failures
        .iter()
        .all(|f| f.error.contains("different key-encryption key")));

    // A file naming a KEK the token does not have.
    let other = sealed_path(dir.path(), &pks[0]);
    edit_json(&other, |v| v["kek_label"] = "kek-from-elsewhere".into());
    let (_, progress) = load(&hsm_a, dir.path());
    assert_eq!((progress.loaded, progress.failed), (1, 1), "{progress:?}");
    let e = &progress.failures[0].error;
    assert!(
        e.contains("kek-from-elsewhere")
            && e.contains(&other.display().to_string())
            && e.contains("not found"),
        "{e}"
    );
}

#[test]
fn reseal_to_new_kek_then_load_with_new_kek_only() {
    let _ = softhsm_or_skip!();
    let (token, session) = token_with_kek();
    let dir = tempfile::tempdir().unwrap();
    let (mut pks, _) = generate(&session, 4, dir.path());
    pks.sort_unstable();

    // The new KEK must exist first.
    let err = hsm::reseal_all(&session, dir.path(), "kek-2027").unwrap_err();
    assert!(matches!(err, HsmError::KekMissing { .. }), "{err:?}");
    hsm::create_kek(&session, "kek-2027").unwrap();
    // The old KEK cannot be destroyed while files use it.
    let err = hsm::destroy_kek(&session, "keyguard-kek", dir.path()).unwrap_err();
    assert!(
        matches!(err, HsmError::KekInUse { count: 4, .. }),
        "{err:?}"
    );

    let before: Vec<String> = hsm::sealed_files(dir.path())
        .unwrap()
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    let summary = hsm::reseal_all(&session, dir.path(), "kek-2027").unwrap();
    assert_eq!((summary.rotated.len(), summary.already_current), (4, 0));
    for (p, old) in hsm::sealed_files(dir.path()).unwrap().iter().zip(&before) {
        let new = std::fs::read_to_string(p).unwrap();
        assert_ne!(&new, old);
        assert!(new.contains("\"kek-2027\""));
        assert_eq!(
            std::fs::metadata(p).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        4,
        "no leftovers"
    );
    // Idempotent: a second run has nothing to do.
    let again = hsm::reseal_all(&session, dir.path(), "kek-2027").unwrap();
    assert_eq!((again.rotated.len(), again.already_current), (0, 4));

    hsm::destroy_kek(&session, "keyguard-kek", dir.path()).expect("old KEK unused now");
    drop(session);
    let mut cfg = token.config();
    cfg.kek_label = "kek-2027".into();
    let session = open(&cfg);
    let err = session.kek_protection("keyguard-kek").unwrap_err();
    assert!(
        matches!(err, HsmError::KekMissing { .. }),
        "old KEK gone: {err:?}"
    );
    let (table, progress) = load(&session, dir.path());
    assert_eq!((progress.loaded, progress.failed), (4, 0), "{progress:?}");
    assert_eq!(table.pubkeys(), pks);
}

#[test]
fn interrupted_reseal_leaves_every_good_key_loadable() {
    let _ = softhsm_or_skip!();
    let (_t, session) = token_with_kek();
    let dir = tempfile::tempdir().unwrap();
    let (_, _) = generate(&session, 5, dir.path());
    hsm::create_kek(&session, "kek-new").unwrap();
    // Corrupt the third file (in sorted order) so rotation stops there.
    let files = hsm::sealed_files(dir.path()).unwrap();
    edit_json(&files[2], |v| {
        let ct = v["ciphertext"].as_str().unwrap();
        let ct = format!("0x{}", ct[2..].replace('0', "1").replace('a', "b"));
        v["ciphertext"] = ct.into();
    });
    let err = hsm::reseal_all(&session, dir.path(), "kek-new").unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(
            err,
            HsmError::ResealIncomplete {
                rotated: 2,
                remaining: 3,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        msg.contains(&files[2].display().to_string()) && msg.contains("remain valid"),
        "{msg}"
    );
    let labels: Vec<String> = files
        .iter()
        .map(|p| hsm::read_sealed_file(p).unwrap().kek_label)
        .collect();
    assert_eq!(
        labels,
        [
            "kek-new",
            "kek-new",
            "keyguard-kek",
            "keyguard-kek",
            "keyguard-kek"
        ]
    );
    // Both KEKs present: everything but the corrupted file loads.
    let (_, progress) = load(&session, dir.path());
    assert_eq!((progress.loaded, progress.failed), (4, 1), "{progress:?}");
}

#[test]
fn destroy_removes_the_key() {
    let _ = softhsm_or_skip!();
    let (_t, session) = token_with_kek();
    let dir = tempfile::tempdir().unwrap();
    let (pks, _) = generate(&session, 3, dir.path());
    hsm::destroy_sealed(dir.path(), &pks[1]).unwrap();
    assert!(!sealed_path(dir.path(), &pks[1]).exists());
    let err = hsm::destroy_sealed(dir.path(), &pks[1]).unwrap_err();
    assert!(matches!(err, HsmError::SealedNotFound { .. }), "{err:?}");
    let (table, progress) = load(&session, dir.path());
    assert_eq!((progress.loaded, progress.failed), (2, 0));
    assert!(table.get(&pks[1]).is_none());
}

#[test]
fn health_check_passes_on_a_live_token() {
    let _ = softhsm_or_skip!();
    let (_t, session) = token_with_kek();
    session.check_alive().expect("alive");
    let mut a = [0u8; 32];
    let mut b = [0u8; 32];
    session.random(&mut a).unwrap();
    session.random(&mut b).unwrap();
    assert_ne!(a, b);
}

#[test]
fn cli_commands_drive_the_whole_lifecycle() {
    use keyguard::cli::hsm::{
        run_hsm_command, run_sealed_keys_command, HsmCommand, SealedKeysCommand,
    };
    let _ = softhsm_or_skip!();
    let token = softhsm_or_panic().token();
    let cfg = token.config();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sealed");
    let no_keys = || -> anyhow::Result<Vec<ValidatorKey>> { unreachable!("not a seal command") };
    let network = keyguard::consensus::Network::devnet();

    run_hsm_command(HsmCommand::ListTokens, &cfg).unwrap();
    run_hsm_command(HsmCommand::InitKek { label: None }, &cfg).unwrap();
    assert!(run_hsm_command(HsmCommand::InitKek { label: None }, &cfg).is_err());
    run_sealed_keys_command(
        SealedKeysCommand::Generate {
            count: 2,
            start_index: 0,
            out: out.clone(),
            backup: Default::default(),
            deposit: Default::default(),
        },
        &cfg,
        &network,
        no_keys,
    )
    .unwrap();
    // Seal: keys supplied by the caller's closure (here: unsealed from the generated files).
    let session = open(&cfg);
    let keys: Vec<ValidatorKey> = hsm::sealed_files(&out)
        .unwrap()
        .iter()
        .map(|p| hsm::unseal_file(&session, p).unwrap())
        .collect();
    let pk0 = *keys[0].pubkey();
    let out2 = dir.path().join("sealed2");
    run_sealed_keys_command(
        SealedKeysCommand::Seal { out: out2.clone() },
        &cfg,
        &network,
        move || Ok(keys),
    )
    .unwrap();
    assert_eq!(hsm::sealed_files(&out2).unwrap().len(), 2);

    run_hsm_command(
        HsmCommand::InitKek {
            label: Some("rotated".into()),
        },
        &cfg,
    )
    .unwrap();
    let reseal = |d: &Path| SealedKeysCommand::Reseal {
        new_kek: "rotated".into(),
        dir: d.to_path_buf(),
    };
    run_sealed_keys_command(reseal(&out), &cfg, &network, no_keys).unwrap();
    let destroy_old = |d: &Path| HsmCommand::DestroyKek {
        label: "keyguard-kek".into(),
        dir: d.to_path_buf(),
    };
    // out2 still uses the old KEK.
    let err = run_hsm_command(destroy_old(&out2), &cfg).unwrap_err();
    assert!(err.to_string().contains("reseal them first"), "{err}");
    run_sealed_keys_command(reseal(&out2), &cfg, &network, no_keys).unwrap();
    run_hsm_command(destroy_old(&out2), &cfg).unwrap();

    run_sealed_keys_command(
        SealedKeysCommand::Destroy {
            pubkey: hex::encode(pk0),
            dir: out.clone(),
        },
        &cfg,
        &network,
        no_keys,
    )
    .unwrap();
    let mut cfg2 = cfg.clone();
    cfg2.kek_label = "rotated".into();
    let session = open(&cfg2);
    let (table, progress) = load(&session, &out);
    assert_eq!((progress.loaded, progress.failed), (1, 0), "{progress:?}");
    assert!(table.get(&pk0).is_none());
    let (_, progress) = load(&session, &out2);
    assert_eq!((progress.loaded, progress.failed), (2, 0), "{progress:?}");
}

#[test]
fn no_secret_appears_in_errors_or_debug_output() {
    let _ = softhsm_or_skip!();
    let (token, session) = token_with_kek();
    let dir = tempfile::tempdir().unwrap();
    let (pks, secrets) = generate(&session, 4, dir.path());
    let mut shown: Vec<String> = Vec::new();

    // Tamper with two files, load, and collect every failure and Debug dump.
    let files = hsm::sealed_files(dir.path()).unwrap();
    edit_json(&files[0], |v| {
        let ct = v["ciphertext"].as_str().unwrap();
        let ct = format!("0x{}", ct[2..].replace('0', "1").replace('a', "b"));
        v["ciphertext"] = ct.into();
    });
    edit_json(&files[1], |v| v["kek_label"] = "absent".into());
    let (table, progress) = load(&session, dir.path());
    shown.push(format!("{progress:?}"));
    for f in &progress.failures {
        shown.push(f.error.clone());
    }
    for key in table.keys() {
        shown.push(format!("{key:?}"));
        let e = hsm::seal_key(&session, &key, dir.path()).unwrap_err();
        shown.push(format!("{e} {e:?}"));
    }
    for p in &files {
        shown.push(format!("{:?}", hsm::read_sealed_file(p).unwrap()));
        match hsm::unseal_file(&session, p) {
            Ok(k) => shown.push(format!("{k:?}")),
            Err(e) => shown.push(format!("{e} {e:?}")),
        }
    }
    shown.push(format!("{session:?}"));
    hsm::create_kek(&session, "next").unwrap();
    let e = hsm::reseal_all(&session, dir.path(), "next").unwrap_err();
    shown.push(format!("{e} {e:?}"));
    let e = hsm::destroy_kek(&session, "keyguard-kek", dir.path()).unwrap_err();
    shown.push(format!("{e} {e:?}"));
    // Wrong PIN, on a token this process is not logged into (a second session on a
    // logged-in token shares the login, see HsmSession::open).
    let mut cfg = softhsm_or_panic().token().config();
    cfg.pin_file = Some(softhsm_or_panic().root().join("nope.pin"));
    std::fs::write(cfg.pin_file.as_ref().unwrap(), "wrong-pin").unwrap();
    let e = HsmSession::open(&cfg).unwrap_err();
    shown.push(format!("{e} {e:?}"));

    assert_eq!(pks.len(), 4);
    assert!(shown.len() > 10);
    for text in &shown {
        for secret in &secrets {
            assert!(
                !text.to_lowercase().contains(secret),
                "secret key leaked into: {text}"
            );
            // Also the first 8 bytes alone, in case of partial dumps.
            assert!(
                !text.to_lowercase().contains(&secret[..16]),
                "secret prefix leaked into: {text}"
            );
        }
        assert!(!text.contains(&token.pin), "PIN leaked into: {text}");
        assert!(!text.contains("wrong-pin"), "PIN leaked into: {text}");
    }
}

/// Deleting a token's files upsets the whole SoftHSM instance, so this runs in a child
/// process of its own (this test binary, running only the ignored test below).
#[test]
fn health_check_fails_when_the_token_disappears() {
    let _ = softhsm_or_skip!();
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "token_removal_child", "--ignored", "--nocapture"])
        .env("KEYGUARD_HSM_REMOVAL_CHILD", "1")
        .env("KEYGUARD_SOFTHSM_POOL", "1")
        .env_remove("SOFTHSM2_CONF")
        .output()
        .unwrap();
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "child failed:\n{log}");
    assert!(log.contains("1 passed"), "child ran no test:\n{log}");
}

#[test]
#[ignore = "run by health_check_fails_when_the_token_disappears in a child process"]
fn token_removal_child() {
    if std::env::var_os("KEYGUARD_HSM_REMOVAL_CHILD").is_none() {
        return;
    }
    let sh = softhsm_or_skip!();
    let (token, session) = token_with_kek();
    session.check_alive().expect("alive");
    // SoftHSM's closest thing to pulling the HSM: delete the token's directory.
    let mut removed = 0;
    for entry in std::fs::read_dir(sh.root().join("tokens")).unwrap() {
        let dir = entry.unwrap().path();
        let object = std::fs::read(dir.join("token.object")).unwrap_or_default();
        if object
            .windows(token.label.len())
            .any(|w| w == token.label.as_bytes())
        {
            std::fs::remove_dir_all(&dir).unwrap();
            removed += 1;
        }
    }
    assert_eq!(removed, 1, "token directory not found");
    let err = session.check_alive().unwrap_err();
    assert!(matches!(err, HsmError::Unavailable { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains(&token.label) && msg.contains("libsofthsm2.so"),
        "{msg}"
    );
}
