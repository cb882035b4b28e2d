//! Sealed-key files: a BLS secret key encrypted by the token's KEK (AES-256-GCM inside the
//! HSM), stored as a small versioned JSON file per key.
//!
//! ```json
//! {"version":1,"format":"keyguard-sealed-bls12381-v1","pubkey":"0x…(48 bytes)",
//!  "kek_label":"keyguard-kek","iv":"0x…(12 bytes)","ciphertext":"0x…(32 + 16 bytes)"}
//! ```
//!
//! The file is named `0x<pubkey>.sealed.json`. The IV comes from the token's RNG, the tag
//! is 128 bits, and the AAD is the format tag followed by the 48-byte pubkey, so a
//! ciphertext moved to another file, or a file whose pubkey was edited, fails to decrypt.
//! Files are written atomically (temporary file, fsync, rename, fsync of the directory)
//! with mode 0600.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use cryptoki::error::{Error as P11Error, RvError};
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::ObjectHandle;
use cryptoki::session::Session;
use zeroize::{Zeroize, Zeroizing};

use super::metrics::HsmOperation;
use super::{HsmError, HsmSession};
use crate::durable::{self, Existing};
use crate::keys::{KeySource, LoadJob, PubkeyBytes, ValidatorKey};

/// The `format` tag of version 1; also the first part of the AES-GCM AAD.
pub const SEALED_FORMAT: &str = "keyguard-sealed-bls12381-v1";
/// The `version` field of the current format.
pub const SEALED_VERSION: u32 = 1;
/// File name suffix of sealed-key files.
pub const SEALED_SUFFIX: &str = ".sealed.json";

const IV_LEN: usize = 12;
const TAG_BITS: u64 = 128;
const CIPHERTEXT_LEN: usize = 32 + 16;
/// Sealed files are a few hundred bytes; anything bigger is not one.
const MAX_FILE_LEN: u64 = 64 * 1024;

/// The JSON form, exactly as on disk.
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SealedJson {
    version: u32,
    format: String,
    pubkey: String,
    kek_label: String,
    iv: String,
    ciphertext: String,
}

/// A parsed sealed-key file. Nothing in it is secret without the KEK.
#[derive(Debug, Clone)]
pub struct SealedFile {
    /// Where it was read from.
    pub path: PathBuf,
    /// The validator's pubkey (also authenticated by the AAD).
    pub pubkey: PubkeyBytes,
    /// Label of the KEK it is sealed under.
    pub kek_label: String,
    iv: [u8; IV_LEN],
    ciphertext: [u8; CIPHERTEXT_LEN],
}

/// Counts of a completed KEK rotation.
#[derive(Debug, Clone, Default)]
pub struct ResealSummary {
    /// Files resealed under the new KEK in this run.
    pub rotated: Vec<PathBuf>,
    /// Files that were already under the new KEK (e.g. from an interrupted earlier run).
    pub already_current: usize,
}

/// The file name of a pubkey's sealed key: `0x<96 hex digits>.sealed.json`.
pub fn sealed_file_name(pubkey: &PubkeyBytes) -> String {
    format!("0x{}{SEALED_SUFFIX}", hex::encode(pubkey))
}

/// The sealed-key files in `dir` (not recursive), sorted. Temporary files are skipped.
pub fn sealed_files(dir: &Path) -> Result<Vec<PathBuf>, HsmError> {
    let io = |source| HsmError::Io {
        op: "cannot read sealed key directory",
        path: dir.to_path_buf(),
        source,
    };
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        // Temporary files of an interrupted write start with a dot.
        if name.starts_with('.') || !name.ends_with(SEALED_SUFFIX) {
            continue;
        }
        if entry.file_type().map_err(io)?.is_file() {
            out.push(entry.path());
        }
    }
    out.sort();
    Ok(out)
}

/// Reads and parses every sealed file in `dir`; the first malformed file is an error.
pub fn list_sealed(dir: &Path) -> Result<Vec<SealedFile>, HsmError> {
    sealed_files(dir)?
        .iter()
        .map(|p| read_sealed_file(p))
        .collect()
}

/// Reads and parses one sealed-key file, checking version, format, lengths and that the
/// file name matches the pubkey inside.
pub fn read_sealed_file(path: &Path) -> Result<SealedFile, HsmError> {
    let bad = |reason: String| HsmError::BadSealedFile {
        path: path.to_path_buf(),
        reason,
    };
    let io = |source| HsmError::Io {
        op: "cannot read sealed key file",
        path: path.to_path_buf(),
        source,
    };
    let mut text = String::new();
    File::open(path)
        .map_err(io)?
        .take(MAX_FILE_LEN)
        .read_to_string(&mut text)
        .map_err(io)?;
    let json: SealedJson =
        serde_json::from_str(&text).map_err(|e| bad(format!("not a sealed key file: {e}")))?;
    if json.version != SEALED_VERSION {
        return Err(bad(format!(
            "version {} is not supported (this keyguard reads version {SEALED_VERSION})",
            json.version
        )));
    }
    if json.format != SEALED_FORMAT {
        return Err(bad(format!(
            "format \"{}\" is not \"{SEALED_FORMAT}\"",
            json.format
        )));
    }
    let pubkey: PubkeyBytes = decode_hex(&json.pubkey).map_err(|e| bad(format!("pubkey: {e}")))?;
    let iv = decode_hex(&json.iv).map_err(|e| bad(format!("iv: {e}")))?;
    let ciphertext = decode_hex(&json.ciphertext).map_err(|e| bad(format!("ciphertext: {e}")))?;
    if json.kek_label.is_empty() {
        return Err(bad("kek_label is empty".into()));
    }
    let expected_name = sealed_file_name(&pubkey);
    if path.file_name().and_then(|n| n.to_str()) != Some(expected_name.as_str()) {
        return Err(bad(format!(
            "file name does not match the pubkey inside (expected {expected_name})"
        )));
    }
    Ok(SealedFile {
        path: path.to_path_buf(),
        pubkey,
        kek_label: json.kek_label,
        iv,
        ciphertext,
    })
}

fn decode_hex<const N: usize>(s: &str) -> Result<[u8; N], String> {
    let digits = s
        .strip_prefix("0x")
        .ok_or_else(|| "missing 0x prefix".to_string())?;
    let mut out = [0u8; N];
    if digits.len() != 2 * N {
        return Err(format!(
            "expected {N} bytes, found {} hex digits",
            digits.len()
        ));
    }
    hex::decode_to_slice(digits, &mut out).map_err(|e| e.to_string())?;
    Ok(out)
}

/// AES-GCM additional data: the format tag then the pubkey, binding the ciphertext to
/// both.
fn aad(pubkey: &PubkeyBytes) -> Vec<u8> {
    let mut aad = Vec::with_capacity(SEALED_FORMAT.len() + pubkey.len());
    aad.extend_from_slice(SEALED_FORMAT.as_bytes());
    aad.extend_from_slice(pubkey);
    aad
}

/// An IV and the ciphertext ‖ tag it produced.
type SealedBlob = ([u8; IV_LEN], [u8; CIPHERTEXT_LEN]);
/// A failed PKCS#11 call: the function, and the binding's error.
type P11Failure = (&'static str, P11Error);

/// Encrypts a secret under `kek` inside the HSM. Returns (IV, ciphertext ‖ tag).
fn encrypt(
    session: &Session,
    kek: ObjectHandle,
    pubkey: &PubkeyBytes,
    secret: &Zeroizing<[u8; 32]>,
) -> Result<SealedBlob, P11Failure> {
    let mut iv = [0u8; IV_LEN];
    session
        .generate_random_slice(&mut iv)
        .map_err(|e| ("C_GenerateRandom", e))?;
    let aad = aad(pubkey);
    // The binding takes the IV mutably (PKCS#11 may write generated IVs); work on a copy.
    let mut iv_param = iv;
    let params =
        GcmParams::new(&mut iv_param, &aad, TAG_BITS.into()).map_err(|e| ("C_EncryptInit", e))?;
    let out = session
        .encrypt(&Mechanism::AesGcm(params), kek, secret.as_ref())
        .map_err(|e| ("C_Encrypt", e))?;
    let ciphertext: [u8; CIPHERTEXT_LEN] = out
        .as_slice()
        .try_into()
        .map_err(|_| ("C_Encrypt", P11Error::InvalidValue))?;
    Ok((iv, ciphertext))
}

/// Why a decryption failed: the HSM said the data is not authentic, or something else.
enum DecryptError {
    NotAuthentic,
    Other(&'static str, P11Error),
}

/// Decrypts inside the HSM. The plaintext the binding returns is a plain `Vec`: it is
/// copied into zeroizing memory and wiped at once (all of its capacity).
fn decrypt(
    session: &Session,
    kek: ObjectHandle,
    file: &SealedFile,
) -> Result<Zeroizing<[u8; 32]>, DecryptError> {
    let aad = aad(&file.pubkey);
    let mut iv = file.iv;
    let params = GcmParams::new(&mut iv, &aad, TAG_BITS.into())
        .map_err(|e| DecryptError::Other("C_DecryptInit", e))?;
    let mut plain = match session.decrypt(&Mechanism::AesGcm(params), kek, &file.ciphertext) {
        Ok(p) => p,
        // The specific codes for "this ciphertext is not what was sealed".
        Err(P11Error::Pkcs11(
            RvError::EncryptedDataInvalid | RvError::EncryptedDataLenRange,
            _,
        )) => return Err(DecryptError::NotAuthentic),
        // SoftHSM2 reports a GCM tag mismatch as CKR_GENERAL_ERROR, other modules as
        // CKR_FUNCTION_FAILED; both could also be a failing device. Tell them apart by
        // whether the token still works.
        Err(P11Error::Pkcs11(code @ (RvError::GeneralError | RvError::FunctionFailed), f)) => {
            return Err(if session.generate_random_slice(&mut [0u8; 1]).is_ok() {
                DecryptError::NotAuthentic
            } else {
                DecryptError::Other("C_Decrypt", P11Error::Pkcs11(code, f))
            });
        }
        Err(e) => return Err(DecryptError::Other("C_Decrypt", e)),
    };
    let mut secret = Zeroizing::new([0u8; 32]);
    let ok = plain.len() == 32;
    if ok {
        secret.copy_from_slice(&plain);
    }
    plain.zeroize();
    if ok {
        Ok(secret)
    } else {
        Err(DecryptError::NotAuthentic)
    }
}

/// Unseals a parsed file under the KEK it names, on `session`, and checks the pubkey.
fn unseal_on(
    hsm: &HsmSession,
    session: &Session,
    kek: ObjectHandle,
    file: &SealedFile,
) -> Result<ValidatorKey, HsmError> {
    let secret = decrypt(session, kek, file).map_err(|e| match e {
        DecryptError::NotAuthentic => HsmError::UnsealFailed {
            path: file.path.clone(),
            kek_label: file.kek_label.clone(),
            token: hsm.token_label().to_string(),
        },
        DecryptError::Other(op, source) => hsm.p11(op, source),
    })?;
    ValidatorKey::from_secret_bytes_checked(
        &secret,
        &file.pubkey,
        KeySource::Sealed,
        file.path.display().to_string(),
    )
    .map_err(|source| HsmError::Key {
        path: file.path.clone(),
        source,
    })
}

/// Unseals one sealed-key file: decrypts it in the HSM under the KEK the file names and
/// checks that the secret derives the file's pubkey.
pub fn unseal_file(hsm: &HsmSession, path: &Path) -> Result<ValidatorKey, HsmError> {
    let file = read_sealed_file(path)?;
    // Counted from here on: a file that is not a sealed key never reached the HSM.
    let unsealed = hsm
        .find_kek(&file.kek_label)
        .and_then(|kek| hsm.with_worker(|session| unseal_on(hsm, session, kek, &file))?);
    hsm.observe(HsmOperation::Unseal, unsealed.is_ok());
    unsealed
}

/// One [`LoadJob`] per sealed-key file in `dir`. A bad file (modified, sealed under a KEK
/// the token lacks or under a different key of the same label) fails only its own job,
/// with a message naming the file. Jobs unseal on sessions of their own, in parallel.
pub fn sealed_load_jobs(hsm: Arc<HsmSession>, dir: &Path) -> Result<Vec<LoadJob>, HsmError> {
    Ok(sealed_files(dir)?
        .into_iter()
        .map(|path| {
            let hsm = Arc::clone(&hsm);
            LoadJob::new(path.display().to_string(), move || {
                unseal_file(&hsm, &path).map_err(|e| job_message(&path, &e))
            })
            .with_source(KeySource::Sealed)
        })
        .collect())
}

/// Makes sure a job's error names its file (some errors are about the token, not the file).
fn job_message(path: &Path, e: &HsmError) -> String {
    match e {
        HsmError::KekMissing { .. } | HsmError::KekAmbiguous { .. } | HsmError::Pkcs11 { .. } => {
            format!("sealed key file {}: {e}", path.display())
        }
        _ => e.to_string(),
    }
}

/// Seals `key` under the session's configured KEK and writes `0x<pubkey>.sealed.json`
/// into `out_dir`. Never overwrites an existing file ([`HsmError::AlreadySealed`]).
pub fn seal_key(hsm: &HsmSession, key: &ValidatorKey, out_dir: &Path) -> Result<PathBuf, HsmError> {
    let path = out_dir.join(sealed_file_name(key.pubkey()));
    if path.exists() {
        return Err(HsmError::AlreadySealed { path });
    }
    let secret = key
        .secret_bytes()
        .map_err(|e| HsmError::NotExportable(e.to_string()))?;
    let json = seal_to_json(hsm, hsm.kek_label(), key.pubkey(), &secret, &path);
    hsm.observe(HsmOperation::Seal, json.is_ok());
    let json = json?;
    write_atomic(&path, json.as_bytes(), false)?;
    Ok(path)
}

/// Encrypts a secret under the KEK `kek_label`, checks that the result decrypts back to
/// the same secret (so no file is ever written that cannot be loaded), and returns the
/// file's JSON.
fn seal_to_json(
    hsm: &HsmSession,
    kek_label: &str,
    pubkey: &PubkeyBytes,
    secret: &Zeroizing<[u8; 32]>,
    path: &Path,
) -> Result<String, HsmError> {
    let kek = hsm.find_kek(kek_label)?;
    let (iv, ciphertext) = hsm
        .with_main(|s| encrypt(s, kek, pubkey, secret))
        .map_err(|(op, source)| hsm.p11(op, source))?;
    let file = SealedFile {
        path: path.to_path_buf(),
        pubkey: *pubkey,
        kek_label: kek_label.to_string(),
        iv,
        ciphertext,
    };
    let back = hsm.with_main(|s| unseal_on(hsm, s, kek, &file))?;
    if back.pubkey() != pubkey {
        // Unreachable with a conforming module: unseal_on checks the pubkey already.
        return Err(HsmError::BadSealedFile {
            path: path.to_path_buf(),
            reason: "sealed blob did not decrypt to the same key".into(),
        });
    }
    let json = SealedJson {
        version: SEALED_VERSION,
        format: SEALED_FORMAT.to_string(),
        pubkey: format!("0x{}", hex::encode(pubkey)),
        kek_label: kek_label.to_string(),
        iv: format!("0x{}", hex::encode(iv)),
        ciphertext: format!("0x{}", hex::encode(ciphertext)),
    };
    let mut text = serde_json::to_string_pretty(&json).map_err(|e| HsmError::BadSealedFile {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    text.push('\n');
    Ok(text)
}

/// Writes `bytes` to `path` with [`crate::durable::write_file`] (mode 0600): rename over
/// `path` (`overwrite`) or hard-link to it (which fails if `path` exists).
fn write_atomic(path: &Path, bytes: &[u8], overwrite: bool) -> Result<(), HsmError> {
    let existing = if overwrite {
        Existing::Replace
    } else {
        Existing::Keep
    };
    durable::write_file(path, bytes, durable::PRIVATE_MODE, existing).map_err(HsmError::from)
}

fn fsync_dir(dir: &Path) -> Result<(), HsmError> {
    durable::fsync_dir(dir).map_err(HsmError::from)
}

/// EIP-2334 purpose and coin type of validator keys: m/12381/3600/i/0/0.
const EIP2334_PURPOSE: u32 = 12381;
const EIP2334_COIN_TYPE: u32 = 3600;

/// Generates `count` new keys inside keyguard without the secret ever touching disk
/// unsealed, seals each, and writes its file into `out_dir`. See [`generate_keys_with`].
pub fn generate_keys(
    hsm: &HsmSession,
    count: u32,
    start_index: u32,
    out_dir: &Path,
) -> Result<Vec<PubkeyBytes>, HsmError> {
    generate_keys_with(hsm, count, start_index, out_dir, |_, _| Ok(()))
}

/// The per-key callback of [`generate_keys_with`]: receives the EIP-2334 index and the
/// key (e.g. to export an EIP-2335 keystore backup or deposit data).
pub type KeyCallbackError = Box<dyn std::error::Error + Send + Sync>;

/// Generates keys: 32 bytes of IKM from the token's RNG (`C_GenerateRandom`), the
/// EIP-2333 master key, and the EIP-2334 signing keys m/12381/3600/i/0/0 for
/// `i` in `start_index..start_index + count`.
///
/// `on_key(i, &key)` runs for each key before it is sealed, so a caller that exports a
/// backup never ends up with an active key that has none; its error stops generation.
/// The IKM is wiped after derivation: the returned pubkeys and the sealed files (plus
/// whatever `on_key` exported) are all that remains.
pub fn generate_keys_with(
    hsm: &HsmSession,
    count: u32,
    start_index: u32,
    out_dir: &Path,
    mut on_key: impl FnMut(u32, &ValidatorKey) -> Result<(), KeyCallbackError>,
) -> Result<Vec<PubkeyBytes>, HsmError> {
    let end = start_index.checked_add(count).ok_or_else(|| {
        HsmError::Config(format!(
            "start index {start_index} + count {count} exceeds the largest EIP-2334 index"
        ))
    })?;
    hsm.find_kek(hsm.kek_label())?;
    let mut ikm = Zeroizing::new([0u8; 32]);
    hsm.random(&mut ikm[..])?;
    // blst's SecretKey zeroizes itself on drop, so the intermediate keys do not linger.
    let master = blst::min_pk::SecretKey::derive_master_eip2333(&ikm[..])
        .map_err(|e| HsmError::Derivation(format!("{e:?}")))?;
    drop(ikm);
    let account_root = master
        .derive_child_eip2333(EIP2334_PURPOSE)
        .derive_child_eip2333(EIP2334_COIN_TYPE);
    drop(master);
    let mut out = Vec::with_capacity(count as usize);
    for index in start_index..end {
        let sk = account_root
            .derive_child_eip2333(index)
            .derive_child_eip2333(0)
            .derive_child_eip2333(0);
        let secret = Zeroizing::new(sk.to_bytes());
        drop(sk);
        let key = ValidatorKey::from_secret_bytes(&secret, KeySource::Sealed, "generated")
            .map_err(|e| HsmError::Derivation(e.to_string()))?;
        drop(secret);
        on_key(index, &key).map_err(|source| HsmError::Callback { index, source })?;
        seal_key(hsm, &key, out_dir)?;
        out.push(*key.pubkey());
    }
    Ok(out)
}

/// KEK rotation: reseals every file in `dir` under `new_kek_label`.
///
/// Each file is unsealed under the KEK it names, sealed under the new KEK, checked to
/// decrypt, written to a temporary file next to it, fsynced, and renamed over the old
/// one; so at every moment each key is loadable from exactly one valid file. Files already
/// under the new KEK are skipped, so an interrupted rotation is finished by running it
/// again. On failure, [`HsmError::ResealIncomplete`] says how many files were rotated.
pub fn reseal_all(
    hsm: &HsmSession,
    dir: &Path,
    new_kek_label: &str,
) -> Result<ResealSummary, HsmError> {
    // Fail before touching anything if the new KEK is not there.
    hsm.find_kek(new_kek_label)?;
    let paths = sealed_files(dir)?;
    let mut summary = ResealSummary::default();
    let total = paths.len();
    for (done, path) in paths.iter().enumerate() {
        let step = || -> Result<bool, HsmError> {
            let file = read_sealed_file(path)?;
            if file.kek_label == new_kek_label {
                return Ok(false);
            }
            let old_kek = hsm.find_kek(&file.kek_label)?;
            let key = hsm.with_main(|s| unseal_on(hsm, s, old_kek, &file))?;
            let secret = key
                .secret_bytes()
                .map_err(|e| HsmError::NotExportable(e.to_string()))?;
            let json = seal_to_json(hsm, new_kek_label, &file.pubkey, &secret, path)?;
            write_atomic(path, json.as_bytes(), true)?;
            Ok(true)
        };
        match step() {
            Ok(true) => summary.rotated.push(path.clone()),
            Ok(false) => summary.already_current += 1,
            Err(e) => {
                return Err(HsmError::ResealIncomplete {
                    new_kek: new_kek_label.to_string(),
                    failed: path.clone(),
                    reason: e.to_string(),
                    rotated: summary.rotated.len(),
                    remaining: total - done,
                })
            }
        }
    }
    Ok(summary)
}

/// Deletes the sealed file of `pubkey` from `dir` and fsyncs the directory. The key is
/// gone for good unless a backup exists: export its slashing-protection history first.
pub fn destroy_sealed(dir: &Path, pubkey: &PubkeyBytes) -> Result<(), HsmError> {
    let path = dir.join(sealed_file_name(pubkey));
    match std::fs::remove_file(&path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(HsmError::SealedNotFound { path })
        }
        Err(source) => {
            return Err(HsmError::Io {
                op: "cannot remove",
                path,
                source,
            })
        }
    }
    fsync_dir(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(pubkey: &PubkeyBytes) -> SealedJson {
        SealedJson {
            version: SEALED_VERSION,
            format: SEALED_FORMAT.into(),
            pubkey: format!("0x{}", hex::encode(pubkey)),
            kek_label: "k".into(),
            iv: format!("0x{}", "11".repeat(IV_LEN)),
            ciphertext: format!("0x{}", "22".repeat(CIPHERTEXT_LEN)),
        }
    }

    fn write(dir: &Path, name: &str, json: &SealedJson) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, serde_json::to_string(json).unwrap()).unwrap();
        p
    }

    #[test]
    fn parses_a_well_formed_file_and_checks_every_field() {
        let dir = tempfile::tempdir().unwrap();
        let pk = [7u8; 48];
        let name = sealed_file_name(&pk);
        let f = read_sealed_file(&write(dir.path(), &name, &sample(&pk))).unwrap();
        assert_eq!((f.pubkey, f.kek_label.as_str()), (pk, "k"));

        type Edit = fn(&mut SealedJson);
        let cases: Vec<(Edit, &str)> = vec![
            (|j| j.version = 2, "version 2 is not supported"),
            (|j| j.format = "other".into(), "format"),
            (|j| j.iv = "0x00".into(), "iv: expected 12 bytes"),
            (
                |j| j.ciphertext = j.ciphertext[2..].to_string(),
                "missing 0x",
            ),
            (|j| j.kek_label = String::new(), "kek_label is empty"),
            (
                |j| j.pubkey = format!("0x{}", "08".repeat(48)),
                "file name does not match",
            ),
        ];
        for (edit, expected) in cases {
            let mut json = sample(&pk);
            edit(&mut json);
            let err = read_sealed_file(&write(dir.path(), &name, &json)).unwrap_err();
            assert!(err.to_string().contains(expected), "{err} lacks {expected}");
        }
        std::fs::write(dir.path().join(&name), "{\"version\":1,\"extra\":true}").unwrap();
        let err = read_sealed_file(&dir.path().join(&name)).unwrap_err();
        assert!(err.to_string().contains("not a sealed key file"), "{err}");
    }

    #[test]
    fn atomic_write_is_private_and_never_overwrites_unless_asked() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.sealed.json");
        write_atomic(&p, b"one", false).unwrap();
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(matches!(
            write_atomic(&p, b"two", false),
            Err(HsmError::AlreadySealed { .. })
        ));
        assert_eq!(std::fs::read(&p).unwrap(), b"one");
        write_atomic(&p, b"three", true).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"three");
        // No temporary file left behind, and listing ignores dot files.
        std::fs::write(dir.path().join(".y.sealed.json.tmp-1-1"), b"").unwrap();
        assert_eq!(sealed_files(dir.path()).unwrap(), vec![p]);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
    }

    #[test]
    fn destroying_a_missing_key_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            destroy_sealed(dir.path(), &[1u8; 48]),
            Err(HsmError::SealedNotFound { .. })
        ));
    }
}
