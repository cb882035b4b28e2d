//! EIP-2335 (version 4) BLS keystores: scrypt or PBKDF2-HMAC-SHA256 key derivation, a
//! SHA-256 checksum that detects a wrong password, and AES-128-CTR encryption of the 32
//! secret bytes.
//!
//! There is no maintained Rust keystore crate, so this is built directly on the RustCrypto
//! primitives. The derived key, decrypted bytes and normalised password live only in
//! [`Zeroizing`] buffers, and no [`KeystoreError`] ever carries password or secret bytes.
//!
//! KDF parameters come from the (untrusted) file, so they are bounded when the keystore is
//! parsed: a keystore asking for scrypt with `n = 2^30` would otherwise make the signer
//! allocate 128 GiB, and one with `c = 2^32` PBKDF2 rounds would stall a core for hours.

use std::path::{Path, PathBuf};

use aes::Aes128;
use ctr::cipher::{KeyIvInit, StreamCipher};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::password::normalize_password;
use super::{parse_pubkey, PubkeyBytes};

/// AES-128 in counter mode with a 128-bit big-endian counter, as EIP-2335 specifies.
type Aes128Ctr = ctr::Ctr128BE<Aes128>;

/// The only keystore version this module reads and writes (EIP-2335).
pub const KEYSTORE_VERSION: u64 = 4;
/// Largest scrypt `n` accepted (2^20). Real keystores use 2^18.
pub const MAX_SCRYPT_N: u64 = 1 << 20;
/// Largest scrypt working memory accepted (`128 * n * r` bytes, 1 GiB).
pub const MAX_SCRYPT_MEMORY: u64 = 1 << 30;
/// Largest scrypt parallelism `p` accepted. Real keystores use 1; `p` multiplies the work.
pub const MAX_SCRYPT_P: u64 = 16;
/// Largest PBKDF2 round count accepted (2^22). Real keystores use 2^18.
pub const MAX_PBKDF2_C: u64 = 1 << 22;
/// Keystore files larger than this are refused without being read (they are ~1 KiB).
pub const MAX_KEYSTORE_FILE: u64 = 1 << 20;
/// Salts longer than this are refused; real ones are 32 bytes.
const MAX_SALT_LEN: usize = 1024;
/// Length of the derived key: 16 bytes of AES key, 16 bytes of checksum key.
const DKLEN: u64 = 32;
/// Parameters written by [`Keystore::encrypt`], those of the EIP and of the deposit CLI.
const SCRYPT_N: u64 = 1 << 18;
const SCRYPT_R: u64 = 8;
const SCRYPT_P: u64 = 1;
const PBKDF2_C: u64 = 1 << 18;

/// Why a keystore could not be read, decrypted or written. Never contains the password,
/// the derived key or the secret.
#[derive(Debug, thiserror::Error)]
pub enum KeystoreError {
    /// The keystore file could not be read.
    #[error("cannot read keystore {}: {source}", path.display())]
    Io {
        /// The keystore file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The keystore file is far larger than any keystore.
    #[error("keystore {} is too large ({size} bytes)", path.display())]
    TooLarge {
        /// The keystore file.
        path: PathBuf,
        /// Its size in bytes.
        size: u64,
    },
    /// The text is not JSON of the EIP-2335 shape. (A keystore holds only ciphertext,
    /// so the parser's message is safe to show.)
    #[error("not an EIP-2335 keystore: {0}")]
    Json(String),
    /// The `version` field is not 4.
    #[error("unsupported keystore version {0} (only version 4, EIP-2335, is supported)")]
    UnsupportedVersion(u64),
    /// A kdf, checksum or cipher function this implementation does not know.
    #[error("unsupported {module} function `{function}`")]
    UnsupportedFunction {
        /// `kdf`, `checksum` or `cipher`.
        module: &'static str,
        /// The function named in the file (truncated).
        function: String,
    },
    /// KDF parameters outside the accepted bounds (see the module documentation).
    #[error("refusing kdf parameters: {0}")]
    InvalidKdfParams(String),
    /// A field that must be hex is not.
    #[error("keystore field `{0}` is not valid hex")]
    InvalidHex(&'static str),
    /// A hex field has the wrong length.
    #[error("keystore field `{field}` is {actual} bytes long, expected {expected}")]
    InvalidLength {
        /// The field.
        field: &'static str,
        /// Its length in bytes.
        actual: usize,
        /// The required length in bytes.
        expected: usize,
    },
    /// The `pubkey` field is neither empty nor 48 bytes of hex.
    #[error("keystore field `pubkey` is not a 48-byte hex public key")]
    InvalidPubkey,
    /// The checksum does not match: the password is wrong (or the file was altered).
    #[error("wrong password (keystore checksum does not match)")]
    WrongPassword,
    /// [`Keystore::encrypt`] was given a secret that does not belong to the pubkey.
    #[error("secret does not match the given pubkey")]
    PubkeyMismatch,
    /// [`Keystore::encrypt`] was given bytes that are not a BLS12-381 secret key.
    #[error("secret key is not a valid BLS12-381 scalar")]
    InvalidSecret,
    /// The operating system's random number generator failed.
    #[error("random number generator failed: {0}")]
    Random(String),
}

/// The key derivation function for [`Keystore::encrypt`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kdf {
    /// scrypt with `n = 2^18, r = 8, p = 1`: memory-hard, ~256 MiB and ~1 s per
    /// decryption. The default of the deposit CLI.
    Scrypt,
    /// PBKDF2-HMAC-SHA256 with `c = 2^18` rounds: much faster to load, weaker against
    /// GPU guessing.
    Pbkdf2,
}

/// What one decryption of a keystore costs, from its KDF parameters (for callers with
/// stricter limits than [`Keystore::from_json`]'s, such as keymanager API imports).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KdfCost {
    /// scrypt with these parameters.
    Scrypt {
        /// CPU/memory cost.
        n: u64,
        /// Block size.
        r: u64,
        /// Parallelism.
        p: u64,
    },
    /// PBKDF2-HMAC-SHA256 with `c` rounds.
    Pbkdf2 {
        /// Rounds.
        c: u64,
    },
}

impl KdfCost {
    /// Working memory of one decryption in bytes (scrypt: `128 * n * r`; PBKDF2: none
    /// worth counting).
    pub fn memory_bytes(&self) -> u64 {
        match *self {
            KdfCost::Scrypt { n, r, .. } => n.saturating_mul(r).saturating_mul(128),
            KdfCost::Pbkdf2 { .. } => 0,
        }
    }
}

/// Validated KDF parameters (see the bounds at the top of this module).
#[derive(Debug, Clone, PartialEq, Eq)]
enum KdfParams {
    Scrypt {
        n: u64,
        r: u64,
        p: u64,
        salt: Vec<u8>,
    },
    Pbkdf2 {
        c: u64,
        salt: Vec<u8>,
    },
}

/// A parsed and validated EIP-2335 keystore.
///
/// Parsing checks everything that can be checked without the password (module functions,
/// KDF parameter bounds, field lengths), so a keystore that parses can only fail to
/// decrypt because of the password. `Debug` shows only public and encrypted data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keystore {
    kdf: KdfParams,
    checksum: [u8; 32],
    iv: [u8; 16],
    ciphertext: [u8; 32],
    description: Option<String>,
    pubkey: Option<PubkeyBytes>,
    path: String,
    uuid: String,
}

/// The JSON shape, before validation.
#[derive(Deserialize)]
struct RawKeystore {
    crypto: RawCrypto,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    pubkey: Option<String>,
    // `path` and `uuid` are required by the EIP, but some tools omit them and nothing
    // here depends on them, so they default to empty rather than refuse the key.
    #[serde(default)]
    path: String,
    #[serde(default)]
    uuid: String,
    version: u64,
}

#[derive(Deserialize)]
struct RawCrypto {
    kdf: RawModule,
    checksum: RawModule,
    cipher: RawModule,
}

#[derive(Deserialize)]
struct RawModule {
    function: String,
    params: Map<String, Value>,
    message: String,
}

#[derive(Deserialize)]
struct RawScrypt {
    dklen: u64,
    n: u64,
    r: u64,
    p: u64,
    salt: String,
}

#[derive(Deserialize)]
struct RawPbkdf2 {
    dklen: u64,
    c: u64,
    prf: String,
    salt: String,
}

#[derive(Deserialize)]
struct RawCipherParams {
    iv: String,
}

impl Keystore {
    /// Reads and parses a keystore file (at most [`MAX_KEYSTORE_FILE`] bytes).
    pub fn from_file(path: &Path) -> Result<Keystore, KeystoreError> {
        let io = |source| KeystoreError::Io {
            path: path.to_path_buf(),
            source,
        };
        let size = std::fs::metadata(path).map_err(io)?.len();
        if size > MAX_KEYSTORE_FILE {
            return Err(KeystoreError::TooLarge {
                path: path.to_path_buf(),
                size,
            });
        }
        let text = std::fs::read_to_string(path).map_err(io)?;
        Self::from_json(&text)
    }

    /// Parses and validates keystore JSON.
    pub fn from_json(json: &str) -> Result<Keystore, KeystoreError> {
        let raw: RawKeystore =
            serde_json::from_str(json).map_err(|e| KeystoreError::Json(e.to_string()))?;
        if raw.version != KEYSTORE_VERSION {
            return Err(KeystoreError::UnsupportedVersion(raw.version));
        }
        let crypto = raw.crypto;
        let kdf = parse_kdf(&crypto.kdf)?;

        if crypto.checksum.function != "sha256" {
            return Err(unsupported("checksum", &crypto.checksum.function));
        }
        let checksum = hex_array::<32>("crypto.checksum.message", &crypto.checksum.message)?;

        if crypto.cipher.function != "aes-128-ctr" {
            return Err(unsupported("cipher", &crypto.cipher.function));
        }
        let cipher_params: RawCipherParams =
            serde_json::from_value(Value::Object(crypto.cipher.params))
                .map_err(|e| KeystoreError::Json(format!("crypto.cipher.params: {e}")))?;
        let iv = hex_array::<16>("crypto.cipher.params.iv", &cipher_params.iv)?;
        // EIP-2335 can hold secrets of any length, but a BLS secret key is 32 bytes.
        let ciphertext = hex_array::<32>("crypto.cipher.message", &crypto.cipher.message)?;

        let pubkey = match raw.pubkey.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(s) => Some(parse_pubkey(s).ok_or(KeystoreError::InvalidPubkey)?),
        };
        Ok(Keystore {
            kdf,
            checksum,
            iv,
            ciphertext,
            description: raw.description,
            pubkey,
            path: raw.path,
            uuid: raw.uuid,
        })
    }

    /// What decrypting this keystore costs.
    pub fn kdf_cost(&self) -> KdfCost {
        match self.kdf {
            KdfParams::Scrypt { n, r, p, .. } => KdfCost::Scrypt { n, r, p },
            KdfParams::Pbkdf2 { c, .. } => KdfCost::Pbkdf2 { c },
        }
    }

    /// The public key recorded in the keystore, if any.
    pub fn pubkey(&self) -> Option<PubkeyBytes> {
        self.pubkey
    }

    /// The EIP-2334 derivation path recorded in the keystore (may be empty).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The keystore's UUID.
    pub fn uuid(&self) -> &str {
        &self.uuid
    }

    /// The optional free-text description.
    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }

    /// Decrypts the secret key. The password is normalised as EIP-2335 requires; a
    /// checksum mismatch is [`KeystoreError::WrongPassword`].
    ///
    /// This runs the KDF (about a second and 256 MiB for a standard scrypt keystore), so
    /// call it from a blocking or rayon thread, not from an async task.
    pub fn decrypt(&self, password: &str) -> Result<Zeroizing<[u8; 32]>, KeystoreError> {
        let password = normalize_password(password);
        let dk = derive_key(&self.kdf, password.as_bytes())?;
        let expected = checksum(&dk, &self.ciphertext);
        // Constant time out of habit; the checksum itself is public.
        let diff = expected
            .iter()
            .zip(self.checksum.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        if diff != 0 {
            return Err(KeystoreError::WrongPassword);
        }
        let mut secret = Zeroizing::new(self.ciphertext);
        apply_aes_ctr(&dk, &self.iv, secret.as_mut())?;
        Ok(secret)
    }

    /// Encrypts a secret key into a new keystore with standard parameters (see [`Kdf`]),
    /// a random 32-byte salt, a random IV and a random (version 4) UUID. The secret must
    /// belong to `pubkey`.
    pub fn encrypt(
        secret: &Zeroizing<[u8; 32]>,
        pubkey: &PubkeyBytes,
        password: &str,
        kdf: Kdf,
        path: &str,
    ) -> Result<Keystore, KeystoreError> {
        let salt = random_bytes::<32>()?.to_vec();
        let params = match kdf {
            Kdf::Scrypt => KdfParams::Scrypt {
                n: SCRYPT_N,
                r: SCRYPT_R,
                p: SCRYPT_P,
                salt,
            },
            Kdf::Pbkdf2 => KdfParams::Pbkdf2 { c: PBKDF2_C, salt },
        };
        Self::encrypt_with_params(secret, pubkey, password, params, path)
    }

    /// [`Keystore::encrypt`] with explicit KDF parameters.
    fn encrypt_with_params(
        secret: &Zeroizing<[u8; 32]>,
        pubkey: &PubkeyBytes,
        password: &str,
        kdf: KdfParams,
        path: &str,
    ) -> Result<Keystore, KeystoreError> {
        // Refuse to write a keystore whose pubkey field would lie about its secret.
        let sk = blst::min_pk::SecretKey::from_bytes(secret.as_ref())
            .map_err(|_| KeystoreError::InvalidSecret)?;
        if &sk.sk_to_pk().compress() != pubkey {
            return Err(KeystoreError::PubkeyMismatch);
        }
        drop(sk);

        let iv = random_bytes::<16>()?;
        let uuid = random_uuid_v4()?;
        let password = normalize_password(password);
        let dk = derive_key(&kdf, password.as_bytes())?;
        // Encrypt in a zeroizing buffer: it holds the plaintext until the keystream is
        // applied.
        let mut buf = Zeroizing::new(**secret);
        apply_aes_ctr(&dk, &iv, buf.as_mut())?;
        let ciphertext = *buf;
        let checksum = checksum(&dk, &ciphertext);
        Ok(Keystore {
            kdf,
            checksum,
            iv,
            ciphertext,
            description: Some(String::new()),
            pubkey: Some(*pubkey),
            path: path.to_string(),
            uuid,
        })
    }

    /// Test-only: encrypts with cheap scrypt parameters (`n = 2^4`) so tests that need
    /// many keystores stay fast.
    #[cfg(test)]
    pub(crate) fn encrypt_for_tests(
        secret: &Zeroizing<[u8; 32]>,
        pubkey: &PubkeyBytes,
        password: &str,
    ) -> Result<Keystore, KeystoreError> {
        let params = KdfParams::Scrypt {
            n: 16,
            r: 8,
            p: 1,
            salt: random_bytes::<32>()?.to_vec(),
        };
        Self::encrypt_with_params(secret, pubkey, password, params, "")
    }

    /// Serialises the keystore as EIP-2335 JSON (pretty-printed, hex without `0x`).
    pub fn to_json(&self) -> String {
        let kdf = match &self.kdf {
            KdfParams::Scrypt { n, r, p, salt } => json!({
                "function": "scrypt",
                "params": { "dklen": DKLEN, "n": n, "r": r, "p": p, "salt": hex::encode(salt) },
                "message": "",
            }),
            KdfParams::Pbkdf2 { c, salt } => json!({
                "function": "pbkdf2",
                "params": { "dklen": DKLEN, "c": c, "prf": "hmac-sha256", "salt": hex::encode(salt) },
                "message": "",
            }),
        };
        let mut doc = json!({
            "crypto": {
                "kdf": kdf,
                "checksum": { "function": "sha256", "params": {}, "message": hex::encode(self.checksum) },
                "cipher": {
                    "function": "aes-128-ctr",
                    "params": { "iv": hex::encode(self.iv) },
                    "message": hex::encode(self.ciphertext),
                },
            },
            "path": self.path,
            "uuid": self.uuid,
            "version": KEYSTORE_VERSION,
        });
        if let Value::Object(map) = &mut doc {
            if let Some(d) = &self.description {
                map.insert("description".into(), Value::String(d.clone()));
            }
            if let Some(pk) = &self.pubkey {
                map.insert("pubkey".into(), Value::String(hex::encode(pk)));
            }
        }
        // Serialising a `Value` cannot fail (all keys are strings).
        serde_json::to_string_pretty(&doc).unwrap_or_default()
    }
}

/// Parses and bounds-checks the `kdf` module.
fn parse_kdf(module: &RawModule) -> Result<KdfParams, KeystoreError> {
    let params = Value::Object(module.params.clone());
    let bad = |msg: String| KeystoreError::InvalidKdfParams(msg);
    match module.function.as_str() {
        "scrypt" => {
            let p: RawScrypt = serde_json::from_value(params)
                .map_err(|e| KeystoreError::Json(format!("crypto.kdf.params: {e}")))?;
            check_dklen(p.dklen)?;
            if p.n < 2 || !p.n.is_power_of_two() {
                return Err(bad(format!("scrypt n = {} is not a power of two", p.n)));
            }
            if p.n > MAX_SCRYPT_N {
                return Err(bad(format!(
                    "scrypt n = {} is above the limit {MAX_SCRYPT_N}",
                    p.n
                )));
            }
            if p.r == 0 || p.p == 0 || p.p > MAX_SCRYPT_P {
                return Err(bad(format!(
                    "scrypt r = {}, p = {} (need r >= 1 and 1 <= p <= {MAX_SCRYPT_P})",
                    p.r, p.p
                )));
            }
            let memory = p.n.checked_mul(p.r).and_then(|x| x.checked_mul(128));
            if memory.is_none_or(|m| m > MAX_SCRYPT_MEMORY) {
                return Err(bad(format!(
                    "scrypt n = {}, r = {} needs more than {MAX_SCRYPT_MEMORY} bytes",
                    p.n, p.r
                )));
            }
            let salt = parse_salt(&p.salt)?;
            Ok(KdfParams::Scrypt {
                n: p.n,
                r: p.r,
                p: p.p,
                salt,
            })
        }
        "pbkdf2" => {
            let p: RawPbkdf2 = serde_json::from_value(params)
                .map_err(|e| KeystoreError::Json(format!("crypto.kdf.params: {e}")))?;
            check_dklen(p.dklen)?;
            if p.prf != "hmac-sha256" {
                return Err(unsupported("pbkdf2 prf", &p.prf));
            }
            if p.c == 0 || p.c > MAX_PBKDF2_C {
                return Err(bad(format!(
                    "pbkdf2 c = {} is outside 1..={MAX_PBKDF2_C}",
                    p.c
                )));
            }
            let salt = parse_salt(&p.salt)?;
            Ok(KdfParams::Pbkdf2 { c: p.c, salt })
        }
        other => Err(unsupported("kdf", other)),
    }
}

fn check_dklen(dklen: u64) -> Result<(), KeystoreError> {
    if dklen != DKLEN {
        return Err(KeystoreError::InvalidKdfParams(format!(
            "dklen = {dklen}, expected {DKLEN}"
        )));
    }
    Ok(())
}

fn parse_salt(s: &str) -> Result<Vec<u8>, KeystoreError> {
    let salt = hex::decode(strip_0x(s)).map_err(|_| KeystoreError::InvalidHex("salt"))?;
    if salt.len() > MAX_SALT_LEN {
        return Err(KeystoreError::InvalidKdfParams(format!(
            "salt of {} bytes is longer than {MAX_SALT_LEN}",
            salt.len()
        )));
    }
    Ok(salt)
}

fn strip_0x(s: &str) -> &str {
    s.strip_prefix("0x").unwrap_or(s)
}

/// Decodes a hex field of exactly `N` bytes.
fn hex_array<const N: usize>(field: &'static str, s: &str) -> Result<[u8; N], KeystoreError> {
    let digits = strip_0x(s);
    if digits.len() != 2 * N {
        return Err(KeystoreError::InvalidLength {
            field,
            actual: digits.len() / 2,
            expected: N,
        });
    }
    let mut out = [0u8; N];
    hex::decode_to_slice(digits, &mut out).map_err(|_| KeystoreError::InvalidHex(field))?;
    Ok(out)
}

fn unsupported(module: &'static str, function: &str) -> KeystoreError {
    // The name comes from the file; keep error messages and logs bounded.
    KeystoreError::UnsupportedFunction {
        module,
        function: function.chars().take(64).collect(),
    }
}

/// Runs the KDF into a zeroizing 32-byte buffer. Parameters were bounded at parse time.
fn derive_key(kdf: &KdfParams, password: &[u8]) -> Result<Zeroizing<[u8; 32]>, KeystoreError> {
    let mut dk = Zeroizing::new([0u8; 32]);
    match kdf {
        KdfParams::Scrypt { n, r, p, salt } => {
            let invalid =
                || KeystoreError::InvalidKdfParams("scrypt rejected the parameters".into());
            let log_n = u8::try_from(n.trailing_zeros()).map_err(|_| invalid())?;
            let r = u32::try_from(*r).map_err(|_| invalid())?;
            let p = u32::try_from(*p).map_err(|_| invalid())?;
            let params = scrypt::Params::new(log_n, r, p).map_err(|_| invalid())?;
            scrypt::scrypt(password, salt, &params, dk.as_mut()).map_err(|_| invalid())?;
        }
        KdfParams::Pbkdf2 { c, salt } => {
            let c = u32::try_from(*c).map_err(|_| {
                KeystoreError::InvalidKdfParams("pbkdf2 round count too large".into())
            })?;
            pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, c, dk.as_mut());
        }
    }
    Ok(dk)
}

/// EIP-2335 checksum: `sha256(dk[16..32] ‖ ciphertext)`.
fn checksum(dk: &[u8; 32], ciphertext: &[u8]) -> [u8; 32] {
    Sha256::new()
        .chain_update(&dk[16..32])
        .chain_update(ciphertext)
        .finalize()
        .into()
}

/// AES-128-CTR with `dk[0..16]` as key, in place.
fn apply_aes_ctr(dk: &[u8; 32], iv: &[u8; 16], buf: &mut [u8]) -> Result<(), KeystoreError> {
    let mut cipher = Aes128Ctr::new_from_slices(&dk[..16], iv)
        .map_err(|_| KeystoreError::InvalidKdfParams("bad AES key or IV length".into()))?;
    cipher.apply_keystream(buf);
    Ok(())
}

fn random_bytes<const N: usize>() -> Result<[u8; N], KeystoreError> {
    let mut out = [0u8; N];
    getrandom::fill(&mut out).map_err(|e| KeystoreError::Random(e.to_string()))?;
    Ok(out)
}

/// A random RFC 4122 version 4 UUID in its hyphenated text form.
fn random_uuid_v4() -> Result<String, KeystoreError> {
    Ok(uuid_v4_string(random_bytes::<16>()?))
}

/// The RFC 4122 version 4 UUID (hyphenated text) made from 16 random bytes, as EIP-2335
/// keystores carry in `uuid`.
pub fn uuid_v4_string(random: [u8; 16]) -> String {
    let mut b = random;
    b[6] = (b[6] & 0x0f) | 0x40; // version 4
    b[8] = (b[8] & 0x3f) | 0x80; // RFC 4122 variant
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_sets_version_and_variant_bits() {
        assert_eq!(
            uuid_v4_string([0xff; 16]),
            "ffffffff-ffff-4fff-bfff-ffffffffffff"
        );
        assert_eq!(
            uuid_v4_string([0; 16]),
            "00000000-0000-4000-8000-000000000000"
        );
    }

    /// EIP-2335 test vectors (facts from the EIP's "Test Cases" section).
    const PASSWORD: &str = "𝔱𝔢𝔰𝔱𝔭𝔞𝔰𝔰𝔴𝔬𝔯𝔡🔑";
    const SECRET: &str = "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f";
    const PUBKEY: &str = "9612d7a727c9d0a22e185a1c768478dfe919cada9266988cb32359c11f2b7b27f4ae4040902382ae2910c15e2b420d07";
    const SALT: &str = "d4e56740f876aef8c010b86a40d5f56745a118d0906a34e69aec8c0db1cb8fa3";
    const IV: &str = "264daa3f303d7259501c93d997d84fe6";

    fn vector(kdf: &str, checksum: &str, message: &str) -> String {
        let kdf = if kdf == "scrypt" {
            json!({ "function": "scrypt", "params": { "dklen": 32, "n": 262144, "p": 1, "r": 8, "salt": SALT }, "message": "" })
        } else {
            json!({ "function": "pbkdf2", "params": { "dklen": 32, "c": 262144, "prf": "hmac-sha256", "salt": SALT }, "message": "" })
        };
        json!({
            "crypto": {
                "kdf": kdf,
                "checksum": { "function": "sha256", "params": {}, "message": checksum },
                "cipher": { "function": "aes-128-ctr", "params": { "iv": IV }, "message": message },
            },
            "description": "test vector",
            "pubkey": PUBKEY,
            "path": "m/12381/60/0/0",
            "uuid": "64625def-3331-4eea-ab6f-782f3ed16a83",
            "version": 4,
        })
        .to_string()
    }

    fn scrypt_vector() -> String {
        vector(
            "scrypt",
            "d2217fe5f3e9a1e34581ef8a78f7c9928e436d36dacc5e846690a5581e8ea484",
            "06ae90d55fe0a6e9c5c3bc5b170827b2e5cce3929ed3f116c2811e6366dfe20f",
        )
    }

    fn pbkdf2_vector() -> String {
        vector(
            "pbkdf2",
            "8a9f5d9912ed7e75ea794bc5a89bca5f193721d30868ade6f73043c6ea6febf1",
            "cee03fde2af33149775b7223e7845e4fb2c8ae1792e5f99fe9ecf474cc8c16ad",
        )
    }

    fn secret_of(n: u8) -> (Zeroizing<[u8; 32]>, PubkeyBytes) {
        let mut b = [0u8; 32];
        b[31] = n;
        let pk = blst::min_pk::SecretKey::from_bytes(&b)
            .unwrap()
            .sk_to_pk()
            .compress();
        (Zeroizing::new(b), pk)
    }

    fn with_params(json: &str, f: impl FnOnce(&mut Map<String, Value>)) -> String {
        let mut v: Value = serde_json::from_str(json).unwrap();
        f(v["crypto"]["kdf"]["params"].as_object_mut().unwrap());
        v.to_string()
    }

    #[test]
    fn eip2335_scrypt_vector_decrypts() {
        let ks = Keystore::from_json(&scrypt_vector()).unwrap();
        assert_eq!(ks.pubkey().map(hex::encode).as_deref(), Some(PUBKEY));
        assert_eq!(hex::encode(*ks.decrypt(PASSWORD).unwrap()), SECRET);
    }

    #[test]
    fn eip2335_pbkdf2_vector_decrypts_and_rejects_wrong_password() {
        let ks = Keystore::from_json(&pbkdf2_vector()).unwrap();
        assert_eq!(hex::encode(*ks.decrypt(PASSWORD).unwrap()), SECRET);
        // The un-normalised ASCII equivalent works too: NFKD maps the Fraktur letters.
        assert_eq!(hex::encode(*ks.decrypt("testpassword🔑").unwrap()), SECRET);
        // ... and control characters are ignored.
        assert_eq!(
            hex::encode(*ks.decrypt("test\u{7f}password\u{1}🔑").unwrap()),
            SECRET
        );
        assert!(matches!(
            ks.decrypt("testpassword"),
            Err(KeystoreError::WrongPassword)
        ));
    }

    #[test]
    fn roundtrip_with_cheap_params() {
        let (secret, pk) = secret_of(42);
        let ks = Keystore::encrypt_for_tests(&secret, &pk, "hunter2").unwrap();
        let parsed = Keystore::from_json(&ks.to_json()).unwrap();
        assert_eq!(parsed, ks);
        assert_eq!(*parsed.decrypt("hunter2").unwrap(), *secret);
        assert!(matches!(
            parsed.decrypt("hunter3"),
            Err(KeystoreError::WrongPassword)
        ));
        // Two encryptions use fresh salt, IV and UUID.
        let again = Keystore::encrypt_for_tests(&secret, &pk, "hunter2").unwrap();
        assert_ne!(again.iv, ks.iv);
        assert_ne!(again.uuid, ks.uuid);
        assert_ne!(again.ciphertext, ks.ciphertext);
    }

    #[test]
    fn encrypt_uses_standard_params_and_roundtrips() {
        let (secret, pk) = secret_of(7);
        let ks = Keystore::encrypt(&secret, &pk, "pw", Kdf::Pbkdf2, "m/12381/3600/0/0/0").unwrap();
        let v: Value = serde_json::from_str(&ks.to_json()).unwrap();
        assert_eq!(v["crypto"]["kdf"]["params"]["c"], 262144);
        assert_eq!(v["version"], 4);
        assert_eq!(v["path"], "m/12381/3600/0/0/0");
        assert_eq!(v["pubkey"], hex::encode(pk));
        let uuid = v["uuid"].as_str().unwrap();
        assert_eq!(uuid.len(), 36);
        assert_eq!(&uuid[14..15], "4");
        let parsed = Keystore::from_json(&ks.to_json()).unwrap();
        assert_eq!(*parsed.decrypt("pw").unwrap(), *secret);

        let ks = Keystore::encrypt(&secret, &pk, "pw", Kdf::Scrypt, "").unwrap();
        let v: Value = serde_json::from_str(&ks.to_json()).unwrap();
        let p = &v["crypto"]["kdf"]["params"];
        assert_eq!(
            (p["n"].as_u64(), p["r"].as_u64(), p["p"].as_u64()),
            (Some(262144), Some(8), Some(1))
        );
        assert_eq!(p["salt"].as_str().unwrap().len(), 64);
        assert_eq!(
            *Keystore::from_json(&ks.to_json())
                .unwrap()
                .decrypt("pw")
                .unwrap(),
            *secret
        );
    }

    #[test]
    fn encrypt_refuses_mismatched_pubkey_or_invalid_secret() {
        let (secret, _) = secret_of(1);
        let (_, other) = secret_of(2);
        assert!(matches!(
            Keystore::encrypt_for_tests(&secret, &other, "pw"),
            Err(KeystoreError::PubkeyMismatch)
        ));
        assert!(matches!(
            Keystore::encrypt_for_tests(&Zeroizing::new([0u8; 32]), &other, "pw"),
            Err(KeystoreError::InvalidSecret)
        ));
    }

    #[test]
    fn tampering_is_detected() {
        let (secret, pk) = secret_of(9);
        let json = Keystore::encrypt_for_tests(&secret, &pk, "pw")
            .unwrap()
            .to_json();
        let mut v: Value = serde_json::from_str(&json).unwrap();
        // Flip one bit of the ciphertext.
        let mut ct = hex::decode(v["crypto"]["cipher"]["message"].as_str().unwrap()).unwrap();
        ct[0] ^= 1;
        v["crypto"]["cipher"]["message"] = Value::String(hex::encode(&ct));
        let ks = Keystore::from_json(&v.to_string()).unwrap();
        assert!(matches!(
            ks.decrypt("pw"),
            Err(KeystoreError::WrongPassword)
        ));
        // Flip one bit of the checksum instead.
        let mut v: Value = serde_json::from_str(&json).unwrap();
        let mut cs = hex::decode(v["crypto"]["checksum"]["message"].as_str().unwrap()).unwrap();
        cs[31] ^= 0x80;
        v["crypto"]["checksum"]["message"] = Value::String(hex::encode(&cs));
        let ks = Keystore::from_json(&v.to_string()).unwrap();
        assert!(matches!(
            ks.decrypt("pw"),
            Err(KeystoreError::WrongPassword)
        ));
    }

    #[test]
    fn absurd_kdf_params_are_refused_before_any_work() {
        let sv = scrypt_vector();
        let refused = |json: String| {
            let err = Keystore::from_json(&json).unwrap_err();
            assert!(matches!(err, KeystoreError::InvalidKdfParams(_)), "{err}");
        };
        refused(with_params(&sv, |p| {
            p.insert("n".into(), json!(1u64 << 30));
        }));
        refused(with_params(&sv, |p| {
            p.insert("n".into(), json!(262143));
        }));
        refused(with_params(&sv, |p| {
            p.insert("n".into(), json!(0));
        }));
        refused(with_params(&sv, |p| {
            p.insert("r".into(), json!(1u64 << 20));
        }));
        refused(with_params(&sv, |p| {
            p.insert("r".into(), json!(0));
        }));
        refused(with_params(&sv, |p| {
            p.insert("p".into(), json!(1000));
        }));
        refused(with_params(&sv, |p| {
            p.insert("dklen".into(), json!(64));
        }));
        let pv = pbkdf2_vector();
        refused(with_params(&pv, |p| {
            p.insert("c".into(), json!(u64::from(u32::MAX) + 1));
        }));
        refused(with_params(&pv, |p| {
            p.insert("c".into(), json!(0));
        }));
        refused(with_params(&pv, |p| {
            p.insert("dklen".into(), json!(16));
        }));
        let err = Keystore::from_json(&with_params(&pv, |p| {
            p.insert("prf".into(), json!("hmac-sha512"));
        }))
        .unwrap_err();
        assert!(matches!(err, KeystoreError::UnsupportedFunction { .. }));
    }

    #[test]
    fn malformed_keystores_are_refused() {
        let sv: Value = serde_json::from_str(&scrypt_vector()).unwrap();
        let edit = |f: &dyn Fn(&mut Value)| {
            let mut v = sv.clone();
            f(&mut v);
            Keystore::from_json(&v.to_string()).unwrap_err()
        };
        assert!(matches!(
            edit(&|v| v["version"] = json!(3)),
            KeystoreError::UnsupportedVersion(3)
        ));
        assert!(matches!(
            edit(&|v| v["crypto"]["cipher"]["function"] = json!("aes-128-gcm")),
            KeystoreError::UnsupportedFunction {
                module: "cipher",
                ..
            }
        ));
        assert!(matches!(
            edit(&|v| v["crypto"]["kdf"]["function"] = json!("argon2")),
            KeystoreError::UnsupportedFunction { module: "kdf", .. }
        ));
        assert!(matches!(
            edit(&|v| v["crypto"]["cipher"]["params"]["iv"] = json!("00")),
            KeystoreError::InvalidLength { .. }
        ));
        assert!(matches!(
            edit(&|v| v["crypto"]["checksum"]["message"] = json!("zz".repeat(32))),
            KeystoreError::InvalidHex(_)
        ));
        assert!(matches!(
            edit(&|v| v["pubkey"] = json!("abcd")),
            KeystoreError::InvalidPubkey
        ));
        assert!(matches!(
            Keystore::from_json("[1,2]").unwrap_err(),
            KeystoreError::Json(_)
        ));
        // An empty pubkey is allowed: it just is not checked.
        let mut v = sv.clone();
        v["pubkey"] = json!("");
        assert_eq!(Keystore::from_json(&v.to_string()).unwrap().pubkey(), None);
    }

    #[test]
    fn errors_never_show_password_or_secret() {
        let (secret, pk) = secret_of(200);
        let password = "correct horse battery staple";
        let ks = Keystore::encrypt_for_tests(&secret, &pk, password).unwrap();
        let secret_hex = hex::encode(*secret);
        let mut shown = Vec::new();
        let wrong = ks.decrypt("correct horse battery stapl").unwrap_err();
        shown.push(format!("{wrong} {wrong:?}"));
        let mismatch = Keystore::encrypt_for_tests(&secret, &secret_of(3).1, password).unwrap_err();
        shown.push(format!("{mismatch} {mismatch:?}"));
        shown.push(format!("{ks:?}"));
        for s in shown {
            assert!(!s.contains(password), "{s}");
            assert!(!s.contains("correct horse"), "{s}");
            assert!(!s.contains(&secret_hex), "{s}");
        }
    }
}
