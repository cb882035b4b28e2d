//! The one way keyguard writes a file that must survive a crash: a temporary file in the
//! same directory (created with the final mode, 0600 unless asked otherwise), fsync, hard
//! link or rename onto the final name, then fsync of the directory so the name is durable
//! too. A reader never sees a truncated file under the final name; after a crash the
//! file is either absent or complete.
//!
//! A leaf: imports nothing of the crate.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Owner read and write only: the mode of every secret or history file keyguard writes.
pub const PRIVATE_MODE: u32 = 0o600;

/// What a durable write does when the final name already exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Existing {
    /// Refuse with [`DurableWriteError::AlreadyExists`]: the old file stays untouched
    /// (hard link, which fails on an existing name, even under a race).
    Keep,
    /// Replace it atomically (rename): readers see the old or the new content, never a mix.
    Replace,
}

/// Why a durable write failed. The final name holds either nothing new or the complete
/// new content; the temporary file is removed.
#[derive(Debug, thiserror::Error)]
pub enum DurableWriteError {
    /// The final name exists and [`Existing::Keep`] was asked for.
    #[error("{} already exists; not overwriting it", .0.display())]
    AlreadyExists(PathBuf),
    /// A file-system operation failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// Distinguishes concurrent temporary files of this process.
static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Writes `bytes` to `path` durably with `mode` (see the module documentation). The
/// parent directory must exist.
pub fn write_file(
    path: &Path,
    bytes: &[u8],
    mode: u32,
    existing: Existing,
) -> Result<(), DurableWriteError> {
    let dir = parent_dir(path);
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = dir.join(format!(
        ".{name}.tmp-{}-{}",
        std::process::id(),
        TMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = write_temporary(&tmp, bytes, mode).and_then(|()| match existing {
        Existing::Replace => std::fs::rename(&tmp, path).map_err(io("cannot rename onto", path)),
        Existing::Keep => match std::fs::hard_link(&tmp, path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Err(DurableWriteError::AlreadyExists(path.to_path_buf()))
            }
            Err(e) => Err(io("cannot create", path)(e)),
        },
    });
    // The temporary name goes in every case (after a rename it is already gone); the data
    // lives on under `path` when linked. A leftover is harmless: loaders skip dot files.
    let _ = std::fs::remove_file(&tmp);
    result?;
    fsync_dir(dir)
}

/// Fsyncs a directory, so that names created or removed in it are durable.
pub fn fsync_dir(dir: &Path) -> Result<(), DurableWriteError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io("cannot fsync directory", dir))
}

/// The directory holding `path` (`.` for a bare file name).
pub fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

/// Creates `tmp` (which must not exist) with `mode`, writes `bytes` and fsyncs it.
fn write_temporary(tmp: &Path, bytes: &[u8], mode: u32) -> Result<(), DurableWriteError> {
    // Writable by the owner while it is filled in, whatever the final mode.
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode | 0o200)
        .open(tmp)
        .map_err(io("cannot create", tmp))?;
    file.write_all(bytes).map_err(io("cannot write", tmp))?;
    file.sync_all().map_err(io("cannot fsync", tmp))?;
    drop(file);
    if mode & 0o200 == 0 {
        std::fs::set_permissions(tmp, std::fs::Permissions::from_mode(mode))
            .map_err(io("cannot set the mode of", tmp))?;
    }
    Ok(())
}

fn io(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> DurableWriteError {
    let path = path.to_path_buf();
    move |source| DurableWriteError::Io { op, path, source }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode_of(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    fn leftovers(dir: &Path) -> Vec<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(".tmp-"))
            .collect()
    }

    #[test]
    fn keep_refuses_an_existing_file_and_leaves_it_intact() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        write_file(&p, b"one", PRIVATE_MODE, Existing::Keep).unwrap();
        let err = write_file(&p, b"two", PRIVATE_MODE, Existing::Keep).unwrap_err();
        assert!(matches!(err, DurableWriteError::AlreadyExists(_)), "{err}");
        assert_eq!(std::fs::read(&p).unwrap(), b"one");
        assert!(leftovers(dir.path()).is_empty());
    }

    #[test]
    fn replace_overwrites_with_the_requested_mode() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"old").unwrap();
        write_file(&p, b"new", PRIVATE_MODE, Existing::Replace).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"new");
        assert_eq!(mode_of(&p), 0o600);
        assert!(leftovers(dir.path()).is_empty());
    }

    #[test]
    fn read_only_mode_is_applied() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        write_file(&p, b"x", 0o400, Existing::Keep).unwrap();
        assert_eq!(mode_of(&p), 0o400);
    }

    #[test]
    fn missing_directory_is_an_io_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("missing").join("f");
        let err = write_file(&p, b"x", PRIVATE_MODE, Existing::Keep).unwrap_err();
        assert!(err.to_string().contains("missing"), "{err}");
    }
}
