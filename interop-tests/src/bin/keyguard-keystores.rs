//! `keyguard-keystores`: writes N EIP-2335 keystores of the interop keys, for start-up
//! benchmarks (`BENCHMARKS.md`).
//!
//! Every keystore uses the standard KDF cost (scrypt n=2^18, or pbkdf2 c=2^18) so that
//! keyguard pays the full decryption cost per key at start-up. To make *writing* 10,000 of
//! them take seconds rather than an hour, they share one salt and password, so the KDF runs
//! once here; each keystore still has its own random IV and UUID. keyguard cannot tell and
//! does not cache KDF results, so loading them costs exactly as much as distinct salts.
//! Never use this for real keys: shared salts weaken keystores.

use std::path::PathBuf;

use aes::cipher::{KeyIvInit, StreamCipher};
use anyhow::Context;
use clap::{Parser, ValueEnum};
use serde_json::json;
use sha2::{Digest, Sha256};

type Aes128Ctr = ctr::Ctr128BE<aes::Aes128>;

#[derive(Clone, Copy, ValueEnum)]
enum Kdf {
    Scrypt,
    Pbkdf2,
}

#[derive(Parser)]
#[command(
    name = "keyguard-keystores",
    about = "Writes benchmark keystores of the interop keys (shared salt: NOT for real keys)"
)]
struct Args {
    /// How many keystores (interop keys 0..N).
    #[arg(long)]
    count: u64,
    /// Key derivation function, at its standard cost.
    #[arg(long, value_enum)]
    kdf: Kdf,
    /// Output directory for the keystores; the password goes to `<out>.password`.
    #[arg(long)]
    out: PathBuf,
}

const PASSWORD: &str = "keyguard-benchmark";
const LOG_N: u8 = 18;
const PBKDF2_C: u32 = 1 << 18;

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let salt: [u8; 32] = random()?;
    let (dk, kdf_json) = derive(args.kdf, &salt)?;
    for index in 0..args.count {
        let secret = keyguard::keys::interop::interop_secret(index);
        let pubkey = blst::min_pk::SecretKey::from_bytes(secret.as_ref())
            .map_err(|e| anyhow::anyhow!("interop key {index}: {e:?}"))?
            .sk_to_pk()
            .compress();
        let iv: [u8; 16] = random()?;
        let mut ciphertext = *secret;
        Aes128Ctr::new_from_slices(&dk[..16], &iv)
            .map_err(|_| anyhow::anyhow!("bad AES key or IV length"))?
            .apply_keystream(&mut ciphertext);
        let checksum: [u8; 32] = Sha256::new()
            .chain_update(&dk[16..])
            .chain_update(ciphertext)
            .finalize()
            .into();
        let uuid: [u8; 16] = random()?;
        let keystore = json!({
            "crypto": {
                "kdf": kdf_json,
                "checksum": {"function": "sha256", "params": {}, "message": hex::encode(checksum)},
                "cipher": {"function": "aes-128-ctr", "params": {"iv": hex::encode(iv)},
                           "message": hex::encode(ciphertext)},
            },
            "description": "keyguard benchmark keystore",
            "pubkey": hex::encode(pubkey),
            "path": format!("m/12381/3600/{index}/0/0"),
            "uuid": keyguard::keys::keystore::uuid_v4_string(uuid),
            "version": 4,
        });
        let file = args.out.join(format!("keystore-{index:06}.json"));
        std::fs::write(&file, serde_json::to_vec_pretty(&keystore)?)
            .with_context(|| format!("cannot write {}", file.display()))?;
    }
    let mut password_file = args.out.clone().into_os_string();
    password_file.push(".password");
    std::fs::write(&password_file, PASSWORD)?;
    println!(
        "wrote {} keystores to {}; password file {}",
        args.count,
        args.out.display(),
        PathBuf::from(password_file).display()
    );
    Ok(())
}

/// Runs the KDF once; returns the derived key and the keystore's `kdf` section.
fn derive(kdf: Kdf, salt: &[u8; 32]) -> anyhow::Result<([u8; 32], serde_json::Value)> {
    let mut dk = [0u8; 32];
    let section = match kdf {
        Kdf::Scrypt => {
            let params = scrypt::Params::new(LOG_N, 8, 1)
                .map_err(|e| anyhow::anyhow!("scrypt params: {e}"))?;
            scrypt::scrypt(PASSWORD.as_bytes(), salt, &params, &mut dk)
                .map_err(|e| anyhow::anyhow!("scrypt: {e}"))?;
            json!({"function": "scrypt", "message": "", "params":
                   {"dklen": 32, "n": 1u64 << LOG_N, "r": 8, "p": 1, "salt": hex::encode(salt)}})
        }
        Kdf::Pbkdf2 => {
            pbkdf2::pbkdf2_hmac::<Sha256>(PASSWORD.as_bytes(), salt, PBKDF2_C, &mut dk);
            json!({"function": "pbkdf2", "message": "", "params":
                   {"dklen": 32, "c": PBKDF2_C, "prf": "hmac-sha256", "salt": hex::encode(salt)}})
        }
    };
    Ok((dk, section))
}

fn random<const N: usize>() -> anyhow::Result<[u8; N]> {
    let mut out = [0u8; N];
    getrandom::fill(&mut out).map_err(|e| anyhow::anyhow!("getrandom: {e}"))?;
    Ok(out)
}
