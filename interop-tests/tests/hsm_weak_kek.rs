//! A KEK whose value could leave the token (created by another tool with weak attributes)
//! is refused at start-up: `keyguard run` with sealed keys exits naming what is wrong.

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, KeyType, ObjectClass};
use cryptoki::session::UserType;
use cryptoki::types::AuthPin;
use interop_tests::keyguard_process::keyguard_command;
use interop_tests::softhsm::{self, TestToken};

/// Creates an AES key labelled `keyguard-kek` with the given attributes, through the
/// PKCS#11 module directly.
fn create_key(token: &TestToken, sensitive: bool, extractable: bool, len: u64) {
    let ctx = Pkcs11::new(&token.module).unwrap();
    ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .unwrap();
    let slot = ctx
        .get_slots_with_token()
        .unwrap()
        .into_iter()
        .find(|s| ctx.get_token_info(*s).unwrap().label().trim_end() == token.label)
        .expect("the test token");
    let session = ctx.open_rw_session(slot).unwrap();
    session
        .login(UserType::User, Some(&AuthPin::from(token.pin.as_str())))
        .unwrap();
    let template = [
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::AES),
        Attribute::ValueLen(len.into()),
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(sensitive),
        Attribute::Extractable(extractable),
        Attribute::Encrypt(true),
        Attribute::Decrypt(true),
        Attribute::Label(b"keyguard-kek".to_vec()),
    ];
    session
        .generate_key(&Mechanism::AesKeyGen, &template)
        .unwrap();
    drop(session);
    ctx.finalize().unwrap();
}

fn run_with_sealed_keys(token: &TestToken) -> (Option<i32>, String) {
    let tmp = tempfile::tempdir().unwrap();
    let sealed = tmp.path().join("sealed");
    std::fs::create_dir_all(&sealed).unwrap();
    let mut args: Vec<String> = [
        "run",
        "--network",
        "config/networks/devnet-minimal.yaml",
        "--data-dir",
        tmp.path().join("data").to_str().unwrap(),
        "--sealed-keys",
        sealed.to_str().unwrap(),
    ]
    .map(String::from)
    .to_vec();
    args.extend(token.cli_flags());
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = keyguard_command(&refs);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[test]
fn an_extractable_or_short_kek_is_refused_at_start_up() {
    let Some(sh) = softhsm::softhsm() else {
        return;
    };
    let extractable = sh.token();
    create_key(&extractable, false, true, 32);
    let (code, stderr) = run_with_sealed_keys(&extractable);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("not safe to use"), "{stderr}");
    assert!(stderr.contains("CKA_EXTRACTABLE is true"), "{stderr}");
    assert!(stderr.contains("CKA_SENSITIVE is false"), "{stderr}");

    let short = sh.token();
    create_key(&short, true, false, 16);
    let (code, stderr) = run_with_sealed_keys(&short);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("CKA_VALUE_LEN is 16"), "{stderr}");
}
