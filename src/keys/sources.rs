//! Key sources configuration → [`LoadJob`]s.
//!
//! [`load_jobs`] does the cheap work up front (listing directories, parsing keystore JSON
//! and YAML, finding password files) and leaves the expensive and secret-handling work
//! (reading passwords, running the KDF, decrypting) to the job closures, which
//! [`run_jobs`](super::loader::run_jobs) runs in parallel.
//!
//! Two kinds of problems are distinguished:
//! * configuration problems (a configured directory does not exist, keystores without
//!   passwords) are a [`SourceError`]: the server refuses to start, because a typo in a
//!   path would otherwise silently start a signer with no keys;
//! * problems with one key (unparseable keystore, missing password file, wrong password,
//!   pubkey mismatch, bad YAML document) become a job that fails with a message naming the
//!   file, so it is counted and reported by the health check while the other keys load.
//!
//! # Keystore directory layouts
//!
//! The `keystores` directory may use either layout, or both:
//! * **flat** (Web3Signer, Teku): `keystores/<name>.json`;
//! * **one subdirectory per key** (Lighthouse, Lodestar):
//!   `keystores/<subdir>/<name>.json`, typically `0x<pubkey>/voting-keystore.json`.
//!
//! Deeper levels are not searched. Hidden entries (names starting with `.`) and
//! `deposit_data*.json` files are skipped, as is any other `*.json` file whose top level
//! is not an object with a `crypto` field (with a warning): those are not keystores. A file
//! that is not valid JSON at all, or has `crypto` but is not a valid EIP-2335 keystore, is
//! a failed key.
//!
//! # Password lookup
//!
//! If `passwords` is a file, it holds the password of every keystore. If it is a
//! directory, the password of keystore file `K` with pubkey `P` (lowercase hex, no `0x`)
//! is the first of these files that exists in it:
//! `<stem>.txt`, `<stem>`, `0x<P>.txt`, `0x<P>`, `<P>.txt`, `<P>`,
//! where `<stem>` is `K`'s file name without `.json` in the flat layout, and the
//! subdirectory's name in the one-subdirectory-per-key layout (so Lighthouse's
//! `secrets/0x<pubkey>` files are found). Password files lose trailing `\r`/`\n` only.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::interop::interop_secret;
use super::keystore::{Keystore, MAX_KEYSTORE_FILE};
use super::password::read_password_file;
use super::web3signer::{
    definition_files, read_definition_file, DefinitionDocument, KeyDefinition,
};
use super::{KeySource, LoadJob, PubkeyBytes, ValidatorKey};
use crate::config::keys::KeysConfig;

/// The most interop keys [`load_jobs`] will create; a larger number is surely a typo.
pub const MAX_INTEROP_KEYS: u64 = 100_000;

/// A configuration problem that stops the server from starting.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// A configured path does not exist.
    #[error("{what} {} does not exist", path.display())]
    NotFound {
        /// Which setting (`keystores`, `passwords`, `key_definitions`).
        what: &'static str,
        /// The configured path.
        path: PathBuf,
    },
    /// A configured directory is not a directory.
    #[error("{what} {} is not a directory", path.display())]
    NotADirectory {
        /// Which setting.
        what: &'static str,
        /// The configured path.
        path: PathBuf,
    },
    /// `keystores` is set but `passwords` is not.
    #[error("keystores directory {} is configured but no passwords (a directory or file)", .0.display())]
    KeystoresWithoutPasswords(PathBuf),
    /// A configured directory could not be listed.
    #[error("cannot read {what} {}: {source}", path.display())]
    Io {
        /// Which setting.
        what: &'static str,
        /// The directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// `interop_keys` is implausibly large.
    #[error("interop_keys = {0} is more than the {MAX_INTEROP_KEYS} allowed")]
    TooManyInteropKeys(u64),
}

/// Turns the key sources configuration into load jobs: keystores first, then Web3Signer
/// key definitions, then interop keys, each in file-name order. Sealed keys (`sealed`)
/// need the HSM session: their jobs come from `crate::hsm::sealed_load_jobs`.
pub fn load_jobs(config: &KeysConfig) -> Result<Vec<LoadJob>, SourceError> {
    let mut jobs = Vec::new();

    if let Some(dir) = &config.keystores {
        let passwords = config
            .passwords
            .as_deref()
            .ok_or_else(|| SourceError::KeystoresWithoutPasswords(dir.clone()))?;
        require_dir("keystores", dir)?;
        let passwords = Passwords::new(passwords)?;
        for candidate in find_keystores(dir)? {
            if let Some(job) = keystore_job(candidate, &passwords) {
                jobs.push(job);
            }
        }
    }

    if let Some(dir) = &config.key_definitions {
        require_dir("key_definitions", dir)?;
        let files = definition_files(dir).map_err(|source| SourceError::Io {
            what: "key_definitions",
            path: dir.clone(),
            source,
        })?;
        for file in files {
            match read_definition_file(&file) {
                Ok(docs) => jobs.extend(docs.into_iter().map(definition_job)),
                Err(e) => jobs.push(failed(file.display().to_string(), e.to_string())),
            }
        }
    }

    if let Some(n) = config.interop_keys {
        if n > MAX_INTEROP_KEYS {
            return Err(SourceError::TooManyInteropKeys(n));
        }
        if n > 0 {
            tracing::warn!(
                count = n,
                "loading interop test keys: their secrets are public, use on devnets only"
            );
        }
        jobs.extend((0..n).map(interop_job));
    }

    Ok(jobs)
}

fn require_dir(what: &'static str, path: &Path) -> Result<(), SourceError> {
    if !path.exists() {
        return Err(SourceError::NotFound {
            what,
            path: path.to_path_buf(),
        });
    }
    if !path.is_dir() {
        return Err(SourceError::NotADirectory {
            what,
            path: path.to_path_buf(),
        });
    }
    Ok(())
}

/// A job that fails with a fixed message.
fn failed(origin: String, error: String) -> LoadJob {
    LoadJob::new(origin, move || Err(error))
}

/// Where keystore passwords come from.
enum Passwords {
    /// One password file for every keystore.
    File(PathBuf),
    /// A directory searched per keystore.
    Dir(PathBuf),
}

impl Passwords {
    fn new(path: &Path) -> Result<Self, SourceError> {
        if !path.exists() {
            return Err(SourceError::NotFound {
                what: "passwords",
                path: path.to_path_buf(),
            });
        }
        Ok(if path.is_dir() {
            Passwords::Dir(path.to_path_buf())
        } else {
            Passwords::File(path.to_path_buf())
        })
    }

    /// The password file for a keystore, in the documented lookup order.
    fn lookup(&self, stem: &str, pubkey: Option<&PubkeyBytes>) -> Option<PathBuf> {
        match self {
            Passwords::File(f) => Some(f.clone()),
            Passwords::Dir(dir) => password_candidates(stem, pubkey)
                .into_iter()
                .map(|name| dir.join(name))
                .find(|p| p.is_file()),
        }
    }
}

/// Password file names to try for a keystore, first match wins.
fn password_candidates(stem: &str, pubkey: Option<&PubkeyBytes>) -> Vec<String> {
    let mut names = vec![format!("{stem}.txt"), stem.to_string()];
    if let Some(pk) = pubkey {
        let p = hex::encode(pk);
        names.extend([
            format!("0x{p}.txt"),
            format!("0x{p}"),
            format!("{p}.txt"),
            p,
        ]);
    }
    names
}

/// A `*.json` file in the keystores directory, and the stem its password is named after.
#[derive(Debug, PartialEq, Eq)]
struct Candidate {
    file: PathBuf,
    stem: String,
}

/// Lists the `*.json` files of the two supported layouts, sorted by path.
fn find_keystores(dir: &Path) -> Result<Vec<Candidate>, SourceError> {
    let mut out = Vec::new();
    for entry in sorted_entries(dir)? {
        if entry.is_dir() {
            let Some(sub) = visible_name(&entry) else {
                continue;
            };
            for file in sorted_entries(&entry)? {
                if is_json_file(&file) {
                    out.push(Candidate {
                        file,
                        stem: sub.clone(),
                    });
                }
            }
        } else if is_json_file(&entry) {
            let stem = entry
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            out.push(Candidate { file: entry, stem });
        }
    }
    Ok(out)
}

fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>, SourceError> {
    let io = |source| SourceError::Io {
        what: "keystores",
        path: dir.to_path_buf(),
        source,
    };
    let mut entries = std::fs::read_dir(dir)
        .map_err(io)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(io)?;
    entries.sort();
    Ok(entries)
}

/// The file name, unless the entry is hidden (or not Unicode).
fn visible_name(path: &Path) -> Option<String> {
    let name = path.file_name()?.to_str()?;
    (!name.starts_with('.')).then(|| name.to_string())
}

fn is_json_file(path: &Path) -> bool {
    visible_name(path).is_some()
        && path.extension().and_then(|e| e.to_str()) == Some("json")
        && path.is_file()
}

/// The job for one candidate file, or `None` when the file is not a keystore.
fn keystore_job(candidate: Candidate, passwords: &Passwords) -> Option<LoadJob> {
    let Candidate { file, stem } = candidate;
    let origin = file.display().to_string();
    let name = visible_name(&file).unwrap_or_default();
    if name.starts_with("deposit_data") {
        tracing::debug!(file = %origin, "skipping deposit data file");
        return None;
    }
    let fail = |msg: String| {
        Some(
            failed(origin.clone(), format!("keystore {origin}: {msg}"))
                .with_source(KeySource::Keystore),
        )
    };

    let size = match std::fs::metadata(&file) {
        Ok(m) => m.len(),
        Err(e) => return fail(format!("cannot read: {e}")),
    };
    if size > MAX_KEYSTORE_FILE {
        return fail(format!("file is too large ({size} bytes)"));
    }
    let text = match std::fs::read_to_string(&file) {
        Ok(t) => t,
        Err(e) => return fail(format!("cannot read: {e}")),
    };
    // Decide "is this a keystore at all" on the JSON shape, so other JSON files that
    // tools leave next to keystores are skipped instead of reported as broken keys.
    match serde_json::from_str::<Value>(&text) {
        Err(e) => return fail(format!("not valid JSON: {e}")),
        Ok(v) if v.get("crypto").is_none() => {
            tracing::warn!(file = %origin, "skipping JSON file that is not a keystore (no `crypto`)");
            return None;
        }
        Ok(_) => {}
    }
    let keystore = match Keystore::from_json(&text) {
        Ok(k) => k,
        Err(e) => return fail(e.to_string()),
    };
    let pubkey = keystore.pubkey();
    let Some(password_file) = passwords.lookup(&stem, pubkey.as_ref()) else {
        let dir = match passwords {
            Passwords::Dir(d) | Passwords::File(d) => d.display().to_string(),
        };
        let tried = if pubkey.is_some() {
            format!("{stem}.txt, {stem}, 0x<pubkey>.txt, 0x<pubkey>, <pubkey>.txt, <pubkey>")
        } else {
            format!("{stem}.txt, {stem}")
        };
        return fail(format!("no password file in {dir} (tried {tried})"));
    };

    let job_origin = origin.clone();
    Some(
        LoadJob::new(origin, move || {
            let err = |msg: String| format!("keystore {job_origin}: {msg}");
            let password = read_password_file(&password_file).map_err(|e| err(e.to_string()))?;
            let secret = keystore
                .decrypt(&password)
                .map_err(|e| err(format!("{e} (password from {})", password_file.display())))?;
            drop(password);
            let key = match pubkey {
                Some(pk) => ValidatorKey::from_secret_bytes_checked(
                    &secret,
                    &pk,
                    KeySource::Keystore,
                    job_origin.clone(),
                ),
                None => ValidatorKey::from_secret_bytes(
                    &secret,
                    KeySource::Keystore,
                    job_origin.clone(),
                ),
            };
            key.map_err(|e| err(e.to_string()))
        })
        .with_source(KeySource::Keystore),
    )
}

/// The job for one Web3Signer definition document.
fn definition_job(doc: DefinitionDocument) -> LoadJob {
    let origin = doc.origin();
    match doc.definition {
        Err(e) => failed(origin, e.to_string()),
        Ok(KeyDefinition::FileRaw { private_key }) => LoadJob::new(origin.clone(), move || {
            ValidatorKey::from_secret_bytes(&private_key, KeySource::Web3SignerRaw, origin.clone())
                .map_err(|e| format!("{origin}: {e}"))
        })
        .with_source(KeySource::Web3SignerRaw),
        Ok(KeyDefinition::FileKeystore {
            keystore_file,
            password_file,
        }) => LoadJob::new(origin.clone(), move || {
            let err = |msg: String| format!("{origin}: {msg}");
            let keystore = Keystore::from_file(&keystore_file).map_err(|e| {
                err(match e {
                    // The I/O error already names the file.
                    super::KeystoreError::Io { .. } => e.to_string(),
                    _ => format!("keystore {}: {e}", keystore_file.display()),
                })
            })?;
            let password = read_password_file(&password_file).map_err(|e| err(e.to_string()))?;
            let secret = keystore.decrypt(&password).map_err(|e| {
                err(format!(
                    "keystore {}: {e} (password from {})",
                    keystore_file.display(),
                    password_file.display()
                ))
            })?;
            drop(password);
            let key = match keystore.pubkey() {
                Some(pk) => ValidatorKey::from_secret_bytes_checked(
                    &secret,
                    &pk,
                    KeySource::Web3SignerKeystore,
                    origin.clone(),
                ),
                None => ValidatorKey::from_secret_bytes(
                    &secret,
                    KeySource::Web3SignerKeystore,
                    origin.clone(),
                ),
            };
            key.map_err(|e| err(e.to_string()))
        })
        .with_source(KeySource::Web3SignerKeystore),
    }
}

/// The job for interop key `index`.
fn interop_job(index: u64) -> LoadJob {
    let origin = format!("interop key {index}");
    LoadJob::new(origin.clone(), move || {
        ValidatorKey::from_secret_bytes(&interop_secret(index), KeySource::Interop, origin.clone())
            .map_err(|e| format!("{origin}: {e}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::loader::run_jobs;
    use crate::keys::{KeyTable, LoadProgress};
    use zeroize::Zeroizing;

    fn secret(n: u8) -> Zeroizing<[u8; 32]> {
        let mut b = [0u8; 32];
        b[0] = 0x11;
        b[31] = n;
        Zeroizing::new(b)
    }

    fn pubkey(n: u8) -> PubkeyBytes {
        *ValidatorKey::from_secret_bytes(&secret(n), KeySource::Keystore, "t")
            .unwrap()
            .pubkey()
    }

    /// Writes a cheap-to-decrypt keystore for secret `n`; returns its pubkey.
    fn write_keystore(path: &Path, n: u8, password: &str) -> PubkeyBytes {
        let pk = pubkey(n);
        let ks = Keystore::encrypt_for_tests(&secret(n), &pk, password).unwrap();
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(path, ks.to_json()).unwrap();
        pk
    }

    fn run(config: &KeysConfig) -> (KeyTable, crate::keys::loader::ProgressSnapshot) {
        let jobs = load_jobs(config).unwrap();
        let table = KeyTable::new();
        let progress = LoadProgress::new();
        progress.add_total(jobs.len());
        run_jobs(jobs, &table, &progress);
        progress.finish();
        (table, progress.snapshot())
    }

    #[test]
    fn good_wrong_and_missing_password_keystores() {
        let root = tempfile::tempdir().unwrap();
        let ks = root.path().join("keystores");
        let pw = root.path().join("passwords");
        std::fs::create_dir_all(&pw).unwrap();
        let good = write_keystore(&ks.join("good.json"), 1, "right-password");
        write_keystore(&ks.join("wrong.json"), 2, "right-password");
        write_keystore(&ks.join("missing.json"), 3, "right-password");
        std::fs::write(pw.join("good.txt"), "right-password\n").unwrap();
        std::fs::write(pw.join("wrong.txt"), "not-the-password\n").unwrap();
        // Not keystores: skipped, not counted.
        std::fs::write(
            ks.join("deposit_data-1700000000.json"),
            "[{\"pubkey\":\"aa\"}]",
        )
        .unwrap();
        std::fs::write(ks.join("notes.json"), "{\"hello\": 1}").unwrap();

        let config = KeysConfig {
            keystores: Some(ks.clone()),
            passwords: Some(pw),
            ..Default::default()
        };
        let (table, s) = run(&config);
        assert_eq!((s.total, s.loaded, s.failed), (3, 1, 2));
        let key = table.get(&good).unwrap();
        assert_eq!(key.source(), KeySource::Keystore);
        assert_eq!(key.origin(), ks.join("good.json").display().to_string());

        let wrong = s
            .failures
            .iter()
            .find(|f| f.origin.ends_with("wrong.json"))
            .unwrap();
        assert!(
            wrong.error.contains("wrong.json") && wrong.error.contains("wrong password"),
            "{}",
            wrong.error
        );
        assert!(wrong.error.contains("wrong.txt"), "{}", wrong.error);
        let missing = s
            .failures
            .iter()
            .find(|f| f.origin.ends_with("missing.json"))
            .unwrap();
        assert!(
            missing.error.contains("missing.json") && missing.error.contains("no password file"),
            "{}",
            missing.error
        );

        // No failure message leaks a password or a secret.
        for f in &s.failures {
            let shown = format!("{f:?} {}", f.error);
            for n in 1..=3 {
                assert!(!shown.contains(&hex::encode(*secret(n))), "{shown}");
            }
            assert!(
                !shown.contains("right-password") && !shown.contains("not-the-password"),
                "{shown}"
            );
        }
    }

    #[test]
    fn password_lookup_order() {
        let dir = tempfile::tempdir().unwrap();
        let pk = pubkey(5);
        let p = hex::encode(pk);
        let names = [
            "k.txt".to_string(),
            "k".to_string(),
            format!("0x{p}.txt"),
            format!("0x{p}"),
            format!("{p}.txt"),
            p.clone(),
        ];
        for n in &names {
            std::fs::write(dir.path().join(n), n).unwrap();
        }
        let passwords = Passwords::Dir(dir.path().to_path_buf());
        for n in &names {
            assert_eq!(
                passwords.lookup("k", Some(&pk)),
                Some(dir.path().join(n)),
                "expected {n} to win"
            );
            std::fs::remove_file(dir.path().join(n)).unwrap();
        }
        assert_eq!(passwords.lookup("k", Some(&pk)), None);
        // Without a pubkey only the stem names are tried.
        std::fs::write(dir.path().join(format!("{p}.txt")), "x").unwrap();
        assert_eq!(passwords.lookup("k", None), None);
        // A directory with the candidate's name is not a password file.
        std::fs::create_dir(dir.path().join("k.txt")).unwrap();
        assert_eq!(
            passwords.lookup("k", Some(&pk)),
            Some(dir.path().join(format!("{p}.txt")))
        );
    }

    #[test]
    fn layouts_flat_and_one_subdirectory_per_key() {
        let root = tempfile::tempdir().unwrap();
        let ks = root.path().join("validators");
        let pw = root.path().join("secrets");
        std::fs::create_dir_all(&pw).unwrap();
        // Flat (Teku/Web3Signer) with <stem>.txt.
        let a = write_keystore(&ks.join("keystore-m_12381_3600_0_0_0.json"), 10, "pa");
        std::fs::write(pw.join("keystore-m_12381_3600_0_0_0.txt"), "pa").unwrap();
        // Lighthouse: 0x<pubkey>/voting-keystore.json with secrets/0x<pubkey>.
        let b_pk = pubkey(11);
        let b_dir = format!("0x{}", hex::encode(b_pk));
        write_keystore(&ks.join(&b_dir).join("voting-keystore.json"), 11, "pb");
        std::fs::write(pw.join(&b_dir), "pb\r\n").unwrap();
        // Subdirectory not named after the pubkey: its name is the stem.
        let c = write_keystore(
            &ks.join("validator-7").join("voting-keystore.json"),
            12,
            "pc",
        );
        std::fs::write(pw.join("validator-7.txt"), "pc").unwrap();
        // Ignored: hidden files and dirs, deeper levels, other files in subdirectories.
        write_keystore(&ks.join(".hidden.json"), 13, "x");
        write_keystore(&ks.join(".trash").join("k.json"), 14, "x");
        write_keystore(&ks.join("deep").join("deeper").join("k.json"), 15, "x");
        std::fs::write(ks.join(&b_dir).join("deposit_data-1.json"), "[]").unwrap();
        std::fs::write(ks.join("validator_definitions.yml"), "---").unwrap();

        let found: Vec<(String, String)> = find_keystores(&ks)
            .unwrap()
            .into_iter()
            .map(|c| {
                let rel = c
                    .file
                    .strip_prefix(&ks)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                (rel, c.stem)
            })
            .collect();
        let expected = [
            (format!("{b_dir}/deposit_data-1.json"), b_dir.clone()),
            (format!("{b_dir}/voting-keystore.json"), b_dir.clone()),
            (
                "keystore-m_12381_3600_0_0_0.json".into(),
                "keystore-m_12381_3600_0_0_0".into(),
            ),
            (
                "validator-7/voting-keystore.json".into(),
                "validator-7".into(),
            ),
        ];
        assert_eq!(found, expected);

        let (table, s) = run(&KeysConfig {
            keystores: Some(ks),
            passwords: Some(pw),
            ..Default::default()
        });
        assert_eq!((s.total, s.loaded, s.failed), (3, 3, 0), "{:?}", s.failures);
        for pk in [a, b_pk, c] {
            assert!(table.get(&pk).is_some());
        }
    }

    #[test]
    fn one_password_file_for_all_and_pubkey_mismatch() {
        let root = tempfile::tempdir().unwrap();
        let ks = root.path().join("ks");
        let pw = root.path().join("password.txt");
        std::fs::write(&pw, "shared\n").unwrap();
        write_keystore(&ks.join("a.json"), 20, "shared");
        write_keystore(&ks.join("b.json"), 21, "shared");
        // A keystore whose recorded pubkey belongs to another secret.
        let json = Keystore::encrypt_for_tests(&secret(22), &pubkey(22), "shared")
            .unwrap()
            .to_json();
        let json = json.replace(&hex::encode(pubkey(22)), &hex::encode(pubkey(23)));
        std::fs::write(ks.join("liar.json"), json).unwrap();
        // Broken keystores are failures, not skipped.
        std::fs::write(ks.join("broken.json"), "{\"crypto\": 1, \"version\": 4}").unwrap();
        std::fs::write(ks.join("garbage.json"), "not json").unwrap();

        let (_, s) = run(&KeysConfig {
            keystores: Some(ks),
            passwords: Some(pw),
            ..Default::default()
        });
        assert_eq!((s.total, s.loaded, s.failed), (5, 2, 3), "{:?}", s.failures);
        let msg = |name: &str| {
            s.failures
                .iter()
                .find(|f| f.origin.ends_with(name))
                .map(|f| f.error.clone())
                .unwrap()
        };
        assert!(
            msg("liar.json").contains("liar.json")
                && msg("liar.json").contains(&hex::encode(pubkey(23)))
        );
        assert!(
            msg("broken.json").contains("not an EIP-2335 keystore"),
            "{}",
            msg("broken.json")
        );
        assert!(
            msg("garbage.json").contains("not valid JSON"),
            "{}",
            msg("garbage.json")
        );
    }

    #[test]
    fn web3signer_definitions_end_to_end() {
        let root = tempfile::tempdir().unwrap();
        let defs = root.path().join("defs");
        write_keystore(&defs.join("keys").join("ks.json"), 30, "w3s");
        std::fs::write(defs.join("keys").join("ks.pw"), "w3s\n").unwrap();
        std::fs::write(
            defs.join("validators.yaml"),
            format!(
                "type: file-raw\nprivateKey: \"0x{}\"\n---\n\
                 type: file-keystore\nkeystoreFile: keys/ks.json\nkeystorePasswordFile: keys/ks.pw\n---\n\
                 type: hashicorp\nkeyPath: /v1/secret\n",
                hex::encode(*secret(31))
            ),
        )
        .unwrap();
        std::fs::write(
            defs.join("more.yml"),
            "type: file-keystore\nkeystoreFile: keys/ks.json\nkeystorePasswordFile: keys/nope.pw\n",
        )
        .unwrap();

        let (table, s) = run(&KeysConfig {
            key_definitions: Some(defs),
            ..Default::default()
        });
        assert_eq!((s.total, s.loaded, s.failed), (4, 2, 2), "{:?}", s.failures);
        assert_eq!(
            table.get(&pubkey(31)).unwrap().source(),
            KeySource::Web3SignerRaw
        );
        assert_eq!(
            table.get(&pubkey(30)).unwrap().source(),
            KeySource::Web3SignerKeystore
        );
        let errors: Vec<&str> = s.failures.iter().map(|f| f.error.as_str()).collect();
        assert!(
            errors.iter().any(
                |e| e.contains("validators.yaml, document 3: unsupported key type `hashicorp`")
            ),
            "{errors:?}"
        );
        assert!(
            errors
                .iter()
                .any(|e| e.contains("more.yml (document 1)") && e.contains("nope.pw")),
            "{errors:?}"
        );
        for e in errors {
            assert!(!e.contains(&hex::encode(*secret(31))) && !e.contains("w3s\n"));
        }
    }

    #[test]
    fn interop_keys_load() {
        let (table, s) = run(&KeysConfig {
            interop_keys: Some(3),
            ..Default::default()
        });
        assert_eq!((s.total, s.loaded, s.failed), (3, 3, 0));
        let all: Vec<_> = (0..3)
            .map(|i| {
                ValidatorKey::from_secret_bytes(&interop_secret(i), KeySource::Interop, "x")
                    .unwrap()
            })
            .collect();
        for k in all {
            let loaded = table.get(k.pubkey()).unwrap();
            assert_eq!(loaded.source(), KeySource::Interop);
            assert!(loaded.origin().starts_with("interop key "));
        }
        assert!(matches!(
            load_jobs(&KeysConfig {
                interop_keys: Some(MAX_INTEROP_KEYS + 1),
                ..Default::default()
            }),
            Err(SourceError::TooManyInteropKeys(_))
        ));
    }

    #[test]
    fn configuration_errors_refuse_to_start() {
        let root = tempfile::tempdir().unwrap();
        let missing = root.path().join("missing");
        let file = root.path().join("file");
        std::fs::write(&file, "x").unwrap();
        let err = |c: KeysConfig| {
            load_jobs(&c)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        };

        let e = err(KeysConfig {
            keystores: Some(missing.clone()),
            passwords: Some(file.clone()),
            ..Default::default()
        });
        assert!(
            e.contains("keystores") && e.contains("does not exist"),
            "{e}"
        );
        let e = err(KeysConfig {
            keystores: Some(root.path().into()),
            ..Default::default()
        });
        assert!(e.contains("no passwords"), "{e}");
        let e = err(KeysConfig {
            keystores: Some(root.path().into()),
            passwords: Some(missing.clone()),
            ..Default::default()
        });
        assert!(
            e.contains("passwords") && e.contains("does not exist"),
            "{e}"
        );
        let e = err(KeysConfig {
            key_definitions: Some(file.clone()),
            ..Default::default()
        });
        assert!(e.contains("not a directory"), "{e}");
        let e = err(KeysConfig {
            key_definitions: Some(missing),
            ..Default::default()
        });
        assert!(e.contains("key_definitions"), "{e}");
        // Nothing configured: no jobs, no error.
        assert!(load_jobs(&KeysConfig::default()).unwrap().is_empty());
    }

    #[test]
    fn config_deserialises_and_rejects_unknown_fields() {
        let c: KeysConfig = toml::from_str(
            "keystores = \"/k\"\npasswords = \"/p\"\nkey_definitions = \"/d\"\ninterop_keys = 4\n",
        )
        .unwrap();
        assert_eq!(c.keystores.as_deref(), Some(Path::new("/k")));
        assert_eq!(c.interop_keys, Some(4));
        assert!(toml::from_str::<KeysConfig>("keystore = \"/k\"").is_err());
    }
}
