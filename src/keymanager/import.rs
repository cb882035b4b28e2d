//! `POST /eth/v1/keystores`: importing keystores with their slashing-protection data.
//!
//! Order of work, chosen for safety:
//! 1. the request's shape is checked (one password per keystore), else 400;
//! 2. the slashing-protection interchange, if any, is imported FIRST, through the slashing
//!    database's writer thread (so it is ordered with signing); a bad interchange is a 400
//!    and no key is imported, so a key never becomes active without its history;
//! 3. each keystore is parsed, checked for duplicates, decrypted (on a blocking thread, at
//!    most one per core at a time: scrypt takes ~256 MiB and ~0.5 s), stored durably, and
//!    only then inserted into the key table. A failing keystore changes nothing.

use std::collections::HashSet;
use std::sync::Arc;

use serde::Deserialize;
use zeroize::Zeroizing;

use super::{Keymanager, OpError, Services, Status};
use crate::keys::keystore::KdfCost;
use crate::keys::{self, KeySource, Keystore, PubkeyBytes, ValidatorKey};

/// Most keystores in one import request: each costs up to ~1 s of a core, and the request
/// holds the keymanager's operations lock until all are done.
pub const MAX_KEYSTORES_PER_REQUEST: usize = 256;
/// Largest scrypt `n` of an API import (2^18, what every deposit tool writes). Keystores
/// on disk may go up to `keys::keystore::MAX_SCRYPT_N`: the operator put them there.
pub const MAX_IMPORT_SCRYPT_N: u64 = 1 << 18;
/// Largest scrypt working memory of an API import (256 MiB).
pub const MAX_IMPORT_SCRYPT_MEMORY: u64 = 256 << 20;
/// Largest PBKDF2 round count of an API import (4 times the standard 2^18).
pub const MAX_IMPORT_PBKDF2_C: u64 = 1 << 20;
/// Working memory shared by all concurrent keystore decryptions of API imports, in MiB:
/// four standard scrypt keystores at once.
pub const DECRYPT_MEMORY_BUDGET_MIB: u32 = 1024;

/// The per-keystore result of an import.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ImportStatus {
    /// Decrypted, stored and active.
    Imported,
    /// A key with this pubkey is already loaded (or stored); nothing changed.
    Duplicate,
    /// Malformed keystore, wrong password, storage failure; nothing changed.
    Error,
}

impl ImportStatus {
    /// The status as the API and metrics spell it.
    pub fn as_str(&self) -> &'static str {
        match self {
            ImportStatus::Imported => "imported",
            ImportStatus::Duplicate => "duplicate",
            ImportStatus::Error => "error",
        }
    }
}

/// A keystore password from a request: zeroized on drop, never printed.
pub struct Password(Zeroizing<String>);

impl Password {
    fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for Password {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(|s| Password(Zeroizing::new(s)))
    }
}

/// A validated import request.
pub struct ImportRequest {
    keystores: Vec<String>,
    passwords: Vec<Password>,
    slashing_protection: Option<String>,
}

#[derive(Deserialize)]
struct RawImport {
    keystores: Vec<String>,
    passwords: Vec<Password>,
    #[serde(default)]
    slashing_protection: Option<String>,
}

impl ImportRequest {
    /// Parses the JSON body. Errors are 400 messages; one about a password never quotes
    /// the body (it could contain the password).
    pub fn parse(body: &[u8]) -> Result<ImportRequest, OpError> {
        let raw: RawImport = super::parse_body(body)?;
        if raw.keystores.len() > MAX_KEYSTORES_PER_REQUEST {
            return Err(OpError::BadRequest(format!(
                "{} keystores in one request; at most {MAX_KEYSTORES_PER_REQUEST} per request",
                raw.keystores.len()
            )));
        }
        if raw.keystores.len() != raw.passwords.len() {
            return Err(OpError::BadRequest(format!(
                "{} keystores but {} passwords: give one password per keystore, in the same order",
                raw.keystores.len(),
                raw.passwords.len()
            )));
        }
        Ok(ImportRequest {
            keystores: raw.keystores,
            passwords: raw.passwords,
            slashing_protection: raw.slashing_protection,
        })
    }

    /// How many keystores the request holds.
    pub fn len(&self) -> usize {
        self.keystores.len()
    }

    /// True when the request holds no keystore.
    pub fn is_empty(&self) -> bool {
        self.keystores.is_empty()
    }
}

/// One keystore's way through the import.
enum Plan {
    /// Decided without decrypting (malformed, duplicate).
    Decided(Status<ImportStatus>),
    /// To decrypt, store and insert.
    Import {
        json: String,
        keystore: Box<Keystore>,
        password: Password,
    },
}

/// Runs an import; the caller holds the keymanager's operations lock.
pub(super) async fn run(
    km: &Arc<Keymanager>,
    ctx: &Services,
    request: ImportRequest,
) -> Result<Vec<Status<ImportStatus>>, OpError> {
    if let Some(interchange) = request.slashing_protection {
        import_slashing_protection(ctx, interchange).await?;
    }
    let plans = plan(km, ctx, request.keystores, request.passwords);
    let mut tasks = Vec::with_capacity(plans.len());
    for p in plans {
        tasks.push(match p {
            Plan::Decided(status) => Err(status),
            Plan::Import {
                json,
                keystore,
                password,
            } => {
                let (km, ctx) = (Arc::clone(km), ctx.clone());
                let memory_mib = memory_permits(keystore.kdf_cost());
                Ok(tokio::spawn(async move {
                    // Memory first, then a core: a decryption never starts without both.
                    let memory = Arc::clone(&km.decrypt_memory);
                    let _memory = memory.acquire_many_owned(memory_mib).await;
                    let slots = Arc::clone(&km.decrypt_slots);
                    let _permit = slots.acquire_owned().await;
                    tokio::task::spawn_blocking(move || {
                        import_one(&km, &ctx, &json, &keystore, &password)
                    })
                    .await
                }))
            }
        });
    }
    let mut out = Vec::with_capacity(tasks.len());
    for task in tasks {
        let status = match task {
            Err(decided) => decided,
            Ok(handle) => match handle.await {
                Ok(Ok(status)) => status,
                Ok(Err(e)) | Err(e) => Status::error(format!("import task failed: {e}")),
            },
        };
        km.metrics.import(status.status);
        out.push(status);
    }
    Ok(out)
}

/// Parses every keystore and settles the ones that need no decryption.
fn plan(
    km: &Keymanager,
    ctx: &Services,
    keystores: Vec<String>,
    passwords: Vec<Password>,
) -> Vec<Plan> {
    let mut seen: HashSet<PubkeyBytes> = HashSet::new();
    keystores
        .into_iter()
        .zip(passwords)
        .map(|(json, password)| {
            if json.len() as u64 > keys::keystore::MAX_KEYSTORE_FILE {
                let message = format!("keystore is too large ({} bytes)", json.len());
                return Plan::Decided(Status::error(message));
            }
            let keystore = match Keystore::from_json(&json) {
                Ok(k) => k,
                Err(e) => return Plan::Decided(Status::error(e.to_string())),
            };
            if let Err(message) = check_import_kdf(keystore.kdf_cost()) {
                return Plan::Decided(Status::error(message));
            }
            if let Some(pk) = keystore.pubkey() {
                if let Some(reason) = duplicate_reason(km, ctx, &pk, &mut seen) {
                    return Plan::Decided(Status::with(ImportStatus::Duplicate, reason));
                }
            }
            Plan::Import {
                json,
                keystore: Box::new(keystore),
                password,
            }
        })
        .collect()
}

/// The stricter KDF limits of API imports: anyone holding the keymanager token could
/// otherwise make each decryption take gigabytes or minutes.
fn check_import_kdf(cost: KdfCost) -> Result<(), String> {
    match cost {
        KdfCost::Scrypt { n, p, .. } => {
            if n > MAX_IMPORT_SCRYPT_N {
                return Err(format!(
                    "scrypt n = {n} is above the import limit of {MAX_IMPORT_SCRYPT_N}"
                ));
            }
            if p != 1 {
                return Err(format!("scrypt p = {p}; API imports accept p = 1 only"));
            }
            if cost.memory_bytes() > MAX_IMPORT_SCRYPT_MEMORY {
                return Err(format!(
                    "scrypt needs {} MiB; API imports allow at most {} MiB",
                    cost.memory_bytes() >> 20,
                    MAX_IMPORT_SCRYPT_MEMORY >> 20
                ));
            }
            Ok(())
        }
        KdfCost::Pbkdf2 { c } if c > MAX_IMPORT_PBKDF2_C => Err(format!(
            "pbkdf2 c = {c} is above the import limit of {MAX_IMPORT_PBKDF2_C}"
        )),
        KdfCost::Pbkdf2 { .. } => Ok(()),
    }
}

/// The share of [`DECRYPT_MEMORY_BUDGET_MIB`] one decryption takes (at least 1 MiB; never
/// more than the budget, which [`check_import_kdf`] already ensures).
fn memory_permits(cost: KdfCost) -> u32 {
    let mib = cost.memory_bytes().div_ceil(1 << 20).max(1);
    u32::try_from(mib)
        .unwrap_or(u32::MAX)
        .min(DECRYPT_MEMORY_BUDGET_MIB)
}

/// Why `pk` is a duplicate (loaded, stored, or earlier in the same request), if it is.
fn duplicate_reason(
    km: &Keymanager,
    ctx: &Services,
    pk: &PubkeyBytes,
    seen: &mut HashSet<PubkeyBytes>,
) -> Option<String> {
    if let Some(existing) = ctx.keys.get(pk) {
        return Some(format!("already loaded from {}", existing.origin()));
    }
    if let Some(file) = km.store.stored_file(pk) {
        return Some(format!("already stored in {}", file.display()));
    }
    (!seen.insert(*pk)).then(|| "listed more than once in this request".to_string())
}

/// Decrypts, stores and activates one keystore (blocking).
fn import_one(
    km: &Keymanager,
    ctx: &Services,
    json: &str,
    keystore: &Keystore,
    password: &Password,
) -> Status<ImportStatus> {
    let key = match decrypt_key(keystore, password.as_str(), "keymanager import".into()) {
        Ok(k) => k,
        Err(message) => return Status::error(message),
    };
    let pk = *key.pubkey();
    // Keystores without a `pubkey` field are only known now.
    if let Some(existing) = ctx.keys.get(&pk) {
        let reason = format!("already loaded from {}", existing.origin());
        return Status::with(ImportStatus::Duplicate, reason);
    }
    let path = match km.store.persist(&key, json, password.as_str()) {
        Ok(p) => p,
        Err(super::StoreError::AlreadyStored(p)) => {
            let reason = format!("already stored in {}", p.display());
            return Status::with(ImportStatus::Duplicate, reason);
        }
        Err(e) => return Status::error(format!("cannot store the key: {e}")),
    };
    let origin = path.display().to_string();
    if let Err(dup) = ctx
        .keys
        .insert(key.relabel(KeySource::Imported, origin.clone()))
    {
        // Cannot happen while the operations lock is held; undo the file to stay exact.
        let _ = km.store.remove(&pk);
        return Status::with(ImportStatus::Duplicate, dup.to_string());
    }
    ctx.audit.record_key_event(
        crate::audit::EventName::KeyImport,
        &pk,
        &format!("stored in {origin}"),
    );
    tracing::info!(pubkey = %keys::pubkey_hex(&pk), file = %origin, "key imported through the keymanager API");
    Status::ok(ImportStatus::Imported)
}

/// Decrypts a keystore into an imported key (blocking: runs the KDF). The error message
/// never contains the password.
pub(super) fn decrypt_key(
    keystore: &Keystore,
    password: &str,
    origin: String,
) -> Result<ValidatorKey, String> {
    let secret = keystore.decrypt(password).map_err(|e| e.to_string())?;
    let key = match keystore.pubkey() {
        Some(pk) => {
            ValidatorKey::from_secret_bytes_checked(&secret, &pk, KeySource::Imported, origin)
        }
        None => ValidatorKey::from_secret_bytes(&secret, KeySource::Imported, origin),
    };
    key.map(|k| k.with_derivation_path(keystore.path()))
        .map_err(|e| e.to_string())
}

/// Imports the interchange through the database writer; any problem is the whole
/// request's (nothing imported).
async fn import_slashing_protection(ctx: &Services, interchange: String) -> Result<(), OpError> {
    let Some(db) = ctx.slashing.clone() else {
        return Err(OpError::BadRequest(
            "slashing_protection was given but slashing protection is disabled here \
             ([slashing] enabled = false); nothing imported"
                .into(),
        ));
    };
    if let Some(expected) = ctx.genesis_validators_root {
        check_interchange_root(&interchange, &expected)?;
    }
    let summary =
        tokio::task::spawn_blocking(move || db.import_interchange(interchange.as_bytes()))
            .await
            .map_err(|e| OpError::Internal(format!("slashing protection import failed: {e}")))?
            .map_err(|e| match e {
                slashing_db::ImportError::Db(d) => {
                    OpError::Internal(format!("slashing database error, nothing imported: {d}"))
                }
                other => {
                    OpError::BadRequest(format!("slashing_protection: {other}; nothing imported"))
                }
            })?;
    tracing::info!(
        validators = summary.validators,
        "slashing protection imported through the keymanager API"
    );
    Ok(())
}

/// Refuses an interchange for another chain than the configured network's (the database
/// may not be bound yet, so it cannot tell).
fn check_interchange_root(interchange: &str, expected: &[u8; 32]) -> Result<(), OpError> {
    #[derive(Deserialize)]
    struct Head {
        metadata: Metadata,
    }
    #[derive(Deserialize)]
    struct Metadata {
        genesis_validators_root: String,
    }
    // A file without readable metadata is reported by the full import's validation.
    let Ok(head) = serde_json::from_str::<Head>(interchange) else {
        return Ok(());
    };
    let given = head.metadata.genesis_validators_root;
    let digits = given.strip_prefix("0x").unwrap_or(&given);
    let mut root = [0u8; 32];
    if hex::decode_to_slice(digits, &mut root).is_ok() && &root != expected {
        return Err(OpError::BadRequest(format!(
            "slashing_protection is for genesis_validators_root {given}, but this network's is \
             0x{}; nothing imported",
            hex::encode(expected)
        )));
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A cheap keystore for secret `n` with derivation path m/12381/3600/n/0/0.
    pub(crate) fn keystore(n: u8, password: &str) -> (ValidatorKey, String) {
        let mut b = [0u8; 32];
        b[0] = 0x22;
        b[31] = n;
        let secret = Zeroizing::new(b);
        let key = ValidatorKey::from_secret_bytes(&secret, KeySource::Imported, "t").unwrap();
        let ks = Keystore::encrypt_for_tests(&secret, key.pubkey(), password).unwrap();
        let mut v: serde_json::Value = serde_json::from_str(&ks.to_json()).unwrap();
        v["path"] = format!("m/12381/3600/{n}/0/0").into();
        (key, v.to_string())
    }

    #[test]
    fn request_shape_is_checked_and_errors_hide_passwords() {
        let ok = ImportRequest::parse(br#"{"keystores":["a","b"],"passwords":["x","y"]}"#).unwrap();
        assert_eq!(ok.len(), 2);
        assert!(ok.slashing_protection.is_none());
        let with_sp =
            ImportRequest::parse(br#"{"keystores":[],"passwords":[],"slashing_protection":"{}"}"#)
                .unwrap();
        assert_eq!(with_sp.slashing_protection.as_deref(), Some("{}"));

        let err = |body: &[u8]| match ImportRequest::parse(body) {
            Err(OpError::BadRequest(m)) => m,
            Err(other) => panic!("expected 400, got {other:?}"),
            Ok(_) => panic!("expected an error"),
        };
        let m = err(br#"{"keystores":["a"],"passwords":[]}"#);
        assert!(m.contains("1 keystores but 0 passwords"), "{m}");
        let m = err(br#"{"keystores":["a"]}"#);
        assert!(m.contains("passwords"), "{m}");
        // A password given as a bare string must not be echoed back.
        let m = err(br#"{"keystores":["a"],"passwords":"hunter2-secret"}"#);
        assert!(m.contains("passwords") && !m.contains("hunter2"), "{m}");
        let m = err(br#"{"keystores":["a"],"passwords":[{"p":"hunter2-secret"}]}"#);
        assert!(!m.contains("hunter2"), "{m}");
        let m = err(b"not json");
        assert!(
            m.contains("not valid JSON") || m.contains("request body"),
            "{m}"
        );
    }

    #[test]
    fn decrypt_key_reports_wrong_password_without_it() {
        let (key, json) = keystore(3, "right-pw");
        let ks = Keystore::from_json(&json).unwrap();
        let err = decrypt_key(&ks, "wrong-pw-123", "o".into()).unwrap_err();
        assert!(
            err.contains("wrong password") && !err.contains("wrong-pw-123"),
            "{err}"
        );
        let ok = decrypt_key(&ks, "right-pw", "o".into()).unwrap();
        assert_eq!(ok.pubkey(), key.pubkey());
        assert_eq!(ok.source(), KeySource::Imported);
    }

    #[test]
    fn interchange_for_another_chain_is_refused() {
        let file = |root: &str| {
            format!(
                r#"{{"metadata":{{"interchange_format_version":"5","genesis_validators_root":"{root}"}},"data":[]}}"#
            )
        };
        let expected = [0x11u8; 32];
        let same = format!("0x{}", hex::encode(expected));
        assert!(check_interchange_root(&file(&same), &expected).is_ok());
        let other = format!("0x{}", hex::encode([0x22u8; 32]));
        match check_interchange_root(&file(&other), &expected) {
            Err(OpError::BadRequest(m)) => assert!(m.contains(&other), "{m}"),
            r => panic!("expected 400, got {r:?}"),
        }
        // Unreadable metadata is left to the full validation.
        assert!(check_interchange_root("{}", &expected).is_ok());
    }
}
