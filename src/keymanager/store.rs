//! Durable storage of keys imported through the keymanager API, so they survive restarts.
//!
//! Layout under `keymanager.dir` (directories mode 0700, files mode 0600):
//! * without an HSM: `keystores/0x<pubkey>.json` (the keystore JSON exactly as it was
//!   imported) and `passwords/0x<pubkey>.txt` (its password);
//! * with `[hsm]` configured: `sealed/0x<pubkey>.sealed.json`, sealed under the HSM's
//!   key-encryption key, so no password is stored at all.
//!
//! Files are written atomically (temporary file, fsync, link into place, fsync of the
//! directory): a crash leaves either no file or a complete one. The keystore file is
//! written after its password and removed before it, so a keystore on disk always has its
//! password. At start-up both layouts are loaded, whatever the current mode, so switching
//! HSM on later does not lose keys imported before.

use std::fs::DirBuilder;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::durable::{self, DurableWriteError, Existing};
use crate::hsm::{self, HsmSession};
use crate::keys::password::read_password_file;
use crate::keys::{KeySource, Keystore, LoadJob, PubkeyBytes, ValidatorKey};

const KEYSTORES: &str = "keystores";
const PASSWORDS: &str = "passwords";
const SEALED: &str = "sealed";

/// Why a stored key could not be written, removed or listed. Never carries secrets.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A file operation failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A key with this pubkey is already stored.
    #[error("a key with this public key is already stored in {}", .0.display())]
    AlreadyStored(PathBuf),
    /// Sealed keys are stored but no HSM is configured to unseal them.
    #[error("{} holds keys sealed by an HSM, but no [hsm] is configured to unseal them", .0.display())]
    NeedsHsm(PathBuf),
    /// The HSM failed to seal the key.
    #[error("cannot seal the key: {0}")]
    Seal(#[from] hsm::HsmError),
}

impl From<DurableWriteError> for StoreError {
    fn from(e: DurableWriteError) -> Self {
        match e {
            DurableWriteError::AlreadyExists(path) => StoreError::AlreadyStored(path),
            DurableWriteError::Io { op, path, source } => StoreError::Io { op, path, source },
        }
    }
}

/// Where and how imported keys are kept.
#[derive(Debug)]
pub struct KeyStore {
    dir: PathBuf,
    hsm: Option<Arc<HsmSession>>,
}

impl KeyStore {
    /// The store in `dir`; new keys are sealed through `hsm` when given. Creates the
    /// directories it writes to (mode 0700).
    pub fn open(dir: &Path, hsm: Option<Arc<HsmSession>>) -> Result<KeyStore, StoreError> {
        let store = KeyStore {
            dir: dir.to_path_buf(),
            hsm,
        };
        private_dir(&store.dir)?;
        let subdirs: &[&str] = if store.hsm.is_some() {
            &[SEALED]
        } else {
            &[KEYSTORES, PASSWORDS]
        };
        for sub in subdirs {
            private_dir(&store.dir.join(sub))?;
        }
        Ok(store)
    }

    /// True if sealed keys are stored in `dir` (so the HSM must be opened to load them).
    pub fn has_sealed_keys(dir: &Path) -> Result<bool, StoreError> {
        let sealed = dir.join(SEALED);
        if !sealed.is_dir() {
            return Ok(false);
        }
        let files = hsm::sealed_files(&sealed).map_err(StoreError::Seal)?;
        Ok(!files.is_empty())
    }

    /// `"sealed"` or `"keystore"`: how new keys are stored.
    pub fn mode(&self) -> &'static str {
        if self.hsm.is_some() {
            "sealed"
        } else {
            "keystore"
        }
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Stores an imported key; returns the file that now holds it. Blocking (fsync, HSM).
    pub fn persist(
        &self,
        key: &ValidatorKey,
        keystore_json: &str,
        password: &str,
    ) -> Result<PathBuf, StoreError> {
        let pubkey = key.pubkey();
        if let Some(existing) = self.stored_file(pubkey) {
            return Err(StoreError::AlreadyStored(existing));
        }
        match &self.hsm {
            Some(session) => Ok(hsm::seal_key(session, key, &self.dir.join(SEALED))?),
            None => self.persist_keystore(pubkey, keystore_json, password),
        }
    }

    fn persist_keystore(
        &self,
        pubkey: &PubkeyBytes,
        keystore_json: &str,
        password: &str,
    ) -> Result<PathBuf, StoreError> {
        let (keystore, password_file) = self.keystore_paths(pubkey);
        write_new_file(&password_file, password.as_bytes())?;
        if let Err(e) = write_new_file(&keystore, keystore_json.as_bytes()) {
            // Best effort: a password without its keystore is never loaded anyway.
            let _ = remove_file(&password_file);
            return Err(e);
        }
        Ok(keystore)
    }

    /// Removes whatever is stored for `pubkey`; returns whether anything was. Blocking.
    pub fn remove(&self, pubkey: &PubkeyBytes) -> Result<bool, StoreError> {
        let (keystore, password) = self.keystore_paths(pubkey);
        // Keystore before password: a keystore on disk must always have its password.
        let mut removed = remove_file(&keystore)?;
        removed |= remove_file(&password)?;
        removed |= remove_file(&self.sealed_path(pubkey))?;
        Ok(removed)
    }

    /// The file holding `pubkey`, if one is stored.
    pub fn stored_file(&self, pubkey: &PubkeyBytes) -> Option<PathBuf> {
        let (keystore, _) = self.keystore_paths(pubkey);
        [keystore, self.sealed_path(pubkey)]
            .into_iter()
            .find(|p| p.exists())
    }

    fn keystore_paths(&self, pubkey: &PubkeyBytes) -> (PathBuf, PathBuf) {
        let name = crate::keys::pubkey_hex(pubkey);
        (
            self.dir.join(KEYSTORES).join(format!("{name}.json")),
            self.dir.join(PASSWORDS).join(format!("{name}.txt")),
        )
    }

    fn sealed_path(&self, pubkey: &PubkeyBytes) -> PathBuf {
        self.dir.join(SEALED).join(hsm::sealed_file_name(pubkey))
    }

    /// One load job per stored key (both layouts), each producing a key of source
    /// [`KeySource::Imported`]. Sealed files without an HSM are a start-up error.
    pub fn load_jobs(&self) -> Result<Vec<LoadJob>, StoreError> {
        let mut jobs: Vec<LoadJob> = self
            .stored_keystores()?
            .into_iter()
            .map(|file| {
                let password = self.dir.join(PASSWORDS).join(password_name(&file));
                keystore_job(file, password)
            })
            .collect();
        let sealed = self.dir.join(SEALED);
        if sealed.is_dir() {
            let files = hsm::sealed_files(&sealed)?;
            match (&self.hsm, files.is_empty()) {
                (_, true) => {}
                (None, false) => return Err(StoreError::NeedsHsm(sealed)),
                (Some(session), false) => jobs.extend(
                    files
                        .into_iter()
                        .map(|f| sealed_job(Arc::clone(session), f)),
                ),
            }
        }
        Ok(jobs)
    }

    /// The visible `*.json` files of `keystores/`, sorted.
    fn stored_keystores(&self) -> Result<Vec<PathBuf>, StoreError> {
        let dir = self.dir.join(KEYSTORES);
        if !dir.is_dir() {
            return Ok(Vec::new());
        }
        let io = |source| StoreError::Io {
            op: "cannot list",
            path: dir.clone(),
            source,
        };
        let mut files = Vec::new();
        for entry in std::fs::read_dir(&dir).map_err(io)? {
            let path = entry.map_err(io)?.path();
            let visible = path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| !n.starts_with('.') && n.ends_with(".json"));
            if visible && path.is_file() {
                files.push(path);
            }
        }
        files.sort();
        Ok(files)
    }
}

/// `0x<pubkey>.json` -> `0x<pubkey>.txt`.
fn password_name(keystore: &Path) -> String {
    let stem = keystore
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!("{stem}.txt")
}

/// Decrypts a stored keystore with its stored password.
fn keystore_job(file: PathBuf, password_file: PathBuf) -> LoadJob {
    let origin = file.display().to_string();
    LoadJob::new(origin.clone(), move || {
        let err = |msg: String| format!("imported keystore {origin}: {msg}");
        let keystore = Keystore::from_file(&file).map_err(|e| err(e.to_string()))?;
        let password = read_password_file(&password_file).map_err(|e| err(e.to_string()))?;
        let key = super::import::decrypt_key(&keystore, &password, origin.clone())?;
        Ok(key)
    })
    .with_source(KeySource::Imported)
}

/// Unseals a stored sealed key through the HSM.
fn sealed_job(session: Arc<HsmSession>, file: PathBuf) -> LoadJob {
    let origin = file.display().to_string();
    LoadJob::new(origin.clone(), move || {
        hsm::unseal_file(&session, &file)
            .map(|key| key.relabel(KeySource::Imported, origin.clone()))
            .map_err(|e| format!("imported sealed key {origin}: {e}"))
    })
    .with_source(KeySource::Imported)
}

/// Creates `dir` (and parents) if missing and makes it mode 0700.
fn private_dir(dir: &Path) -> Result<(), StoreError> {
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|source| StoreError::Io {
            op: "cannot create directory",
            path: dir.to_path_buf(),
            source,
        })?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(|source| {
        StoreError::Io {
            op: "cannot set permissions of",
            path: dir.to_path_buf(),
            source,
        }
    })
}

/// Writes a new mode-0600 file durably ([`crate::durable::write_file`]); fails instead of
/// replacing an existing file.
fn write_new_file(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    durable::write_file(path, bytes, durable::PRIVATE_MODE, Existing::Keep)
        .map_err(StoreError::from)
}

/// Removes a file if it exists (and fsyncs its directory); returns whether it existed.
fn remove_file(path: &Path) -> Result<bool, StoreError> {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(source) => {
            return Err(StoreError::Io {
                op: "cannot remove",
                path: path.to_path_buf(),
                source,
            })
        }
    }
    fsync_dir(path.parent().unwrap_or(Path::new(".")))?;
    Ok(true)
}

fn fsync_dir(dir: &Path) -> Result<(), StoreError> {
    durable::fsync_dir(dir).map_err(StoreError::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::loader::run_jobs;
    use crate::keys::{KeyTable, LoadProgress};

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn persisted_keystore_is_private_and_loads_as_imported() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("km");
        let store = KeyStore::open(&dir, None).unwrap();
        let (key, json) = super::super::import::tests::keystore(7, "pw-7");
        let file = store.persist(&key, &json, "pw-7").unwrap();
        assert_eq!(
            file,
            dir.join("keystores")
                .join(format!("{}.json", crate::keys::pubkey_hex(key.pubkey())))
        );
        assert_eq!(std::fs::read_to_string(&file).unwrap(), json);
        for p in [&dir, &dir.join("keystores"), &dir.join("passwords")] {
            assert_eq!(mode(p), 0o700, "{}", p.display());
        }
        let password = dir.join("passwords").join(password_name(&file));
        assert_eq!(mode(&file), 0o600);
        assert_eq!(mode(&password), 0o600);
        assert_eq!(std::fs::read_to_string(&password).unwrap(), "pw-7");
        // No temporary files are left behind.
        assert_eq!(std::fs::read_dir(dir.join("keystores")).unwrap().count(), 1);

        assert!(matches!(
            store.persist(&key, &json, "pw-7"),
            Err(StoreError::AlreadyStored(_))
        ));

        let table = KeyTable::new();
        let progress = LoadProgress::new();
        run_jobs(store.load_jobs().unwrap(), &table, &progress);
        let loaded = table.get(key.pubkey()).unwrap();
        assert_eq!(loaded.source(), KeySource::Imported);
        assert_eq!(loaded.origin(), file.display().to_string());
        assert_eq!(loaded.derivation_path(), Some("m/12381/3600/7/0/0"));

        assert!(store.remove(key.pubkey()).unwrap());
        assert!(!file.exists() && !password.exists());
        assert!(!store.remove(key.pubkey()).unwrap());
        assert!(store.load_jobs().unwrap().is_empty());
    }

    #[test]
    fn sealed_files_without_hsm_refuse_to_load() {
        let root = tempfile::tempdir().unwrap();
        let sealed = root.path().join(SEALED);
        std::fs::create_dir_all(&sealed).unwrap();
        assert!(!KeyStore::has_sealed_keys(root.path()).unwrap());
        std::fs::write(
            sealed.join(format!("0x{}.sealed.json", "ab".repeat(48))),
            "{}",
        )
        .unwrap();
        assert!(KeyStore::has_sealed_keys(root.path()).unwrap());
        let store = KeyStore::open(root.path(), None).unwrap();
        assert!(matches!(store.load_jobs(), Err(StoreError::NeedsHsm(_))));
    }
}
