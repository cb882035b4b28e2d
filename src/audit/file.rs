//! The log file itself: opened for appending (mode 0600), locked against a second writer,
//! and read back at its tail to continue the chain.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

use super::record::{line_hash, ParsedLine, GENESIS_PREV};

/// Why the audit log could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// Another process (a running `keyguard run`, or a `keyguard keys` command) holds the
    /// log's lock.
    #[error(
        "audit log {0} is in use by a running keyguard (or another keyguard command): stop it \
         first; nothing was changed"
    )]
    InUse(PathBuf),
    /// The file or its directory could not be created, read, locked or written.
    #[error("audit log {path}: cannot {action}: {source}")]
    Io {
        /// The log file.
        path: PathBuf,
        /// What was being done.
        action: &'static str,
        /// The OS error.
        source: io::Error,
    },
    /// The last complete line is not an audit record, so the chain cannot be continued.
    #[error(
        "audit log {path}: the last complete line (byte offset {offset}) is not an audit \
         record ({message}); check the file with `keyguard audit verify` and move it aside \
         to start a new log"
    )]
    Corrupt {
        /// The log file.
        path: PathBuf,
        /// Where the line starts.
        offset: u64,
        /// What is wrong with it.
        message: String,
    },
    /// The torn last line left by a crash could not be closed.
    #[error("cannot close the torn last line of {path}: {source}")]
    Recover {
        /// The log file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The audit metrics could not be registered.
    #[error("cannot register the audit metrics: {0}")]
    Metrics(#[from] prometheus::Error),
}

/// Where the chain continues: the next `seq` and the hash of the last complete line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainHead {
    /// `seq` of the next line.
    pub next_seq: u64,
    /// `prev` of the next line.
    pub prev: [u8; 32],
}

impl ChainHead {
    /// The head of an empty log.
    pub const GENESIS: ChainHead = ChainHead {
        next_seq: 0,
        prev: GENESIS_PREV,
    };
}

/// An unterminated last line (a write cut short by a crash or power loss).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornLine {
    /// Byte offset where it starts.
    pub offset: u64,
    /// Its length in bytes.
    pub len: u64,
    /// SHA-256 of its bytes.
    pub sha256: [u8; 32],
}

/// Where batches of lines go. The file in production; a failing stand-in in tests.
pub trait Sink: Send {
    /// Appends `bytes` (whole lines) durably, or appends nothing and returns the error.
    fn append(&mut self, bytes: &[u8]) -> io::Result<()>;
}

/// The open, locked log file. The lock is released when the file is closed.
#[derive(Debug)]
pub struct LogFile {
    file: File,
    path: PathBuf,
    /// Length of the file after the last complete write: a failed write is cut back to it.
    len: u64,
    /// A failed write could not be cut back yet; the next append retries that first.
    needs_truncate: bool,
}

impl LogFile {
    /// Opens (creating it and its directory if needed) and locks the log.
    pub fn open(path: &Path) -> Result<LogFile, AuditError> {
        let io_err = |action| {
            let path = path.to_path_buf();
            move |source| AuditError::Io {
                path,
                action,
                source,
            }
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io_err("create its directory"))?;
        }
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .mode(0o600)
            .open(path)
            .map_err(io_err("open"))?;
        lock_exclusive(&file).map_err(|e| match e.kind() {
            io::ErrorKind::WouldBlock => AuditError::InUse(path.to_path_buf()),
            _ => io_err("lock")(e),
        })?;
        let len = file.metadata().map_err(io_err("read"))?.len();
        Ok(LogFile {
            file,
            path: path.to_path_buf(),
            len,
            needs_truncate: false,
        })
    }

    /// The chain head after the last complete line, and the torn last line if any.
    /// Reads only the end of the file: a long log is not re-verified at every start.
    pub fn read_head(&self) -> Result<(ChainHead, Option<TornLine>), AuditError> {
        let tail = read_tail(&self.file, self.len).map_err(|source| AuditError::Io {
            path: self.path.clone(),
            action: "read",
            source,
        })?;
        let torn = tail.torn.map(|(offset, bytes)| TornLine {
            offset,
            len: bytes.len() as u64,
            sha256: line_hash(&bytes),
        });
        let Some((offset, line)) = tail.last_complete else {
            return Ok((ChainHead::GENESIS, torn));
        };
        let parsed = ParsedLine::parse(&line).map_err(|message| AuditError::Corrupt {
            path: self.path.clone(),
            offset,
            message,
        })?;
        let head = ChainHead {
            next_seq: parsed.seq.saturating_add(1),
            prev: line_hash(&line),
        };
        Ok((head, torn))
    }
}

impl Sink for LogFile {
    fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        if self.needs_truncate {
            self.file.set_len(self.len)?;
            self.needs_truncate = false;
        }
        let result = self
            .file
            .write_all(bytes)
            .and_then(|()| self.file.sync_data());
        match result {
            Ok(()) => {
                self.len += bytes.len() as u64;
                Ok(())
            }
            Err(e) => {
                // Cut a partial write back, so that a retry does not leave a broken line
                // in the middle of the file.
                self.needs_truncate = self.file.set_len(self.len).is_err();
                Err(e)
            }
        }
    }
}

/// `flock(LOCK_EX | LOCK_NB)`: whole-file, released when the file is closed (also when
/// the process dies), so a crash never leaves a stale lock.
fn lock_exclusive(file: &File) -> io::Result<()> {
    // SAFETY: flock on a file descriptor we own and keep open.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The end of a file: its last complete line and an unterminated remainder.
#[derive(Debug, Default)]
struct Tail {
    /// Offset and bytes (without newline) of the last `\n`-terminated line.
    last_complete: Option<(u64, Vec<u8>)>,
    /// Offset and bytes of what follows the last newline, if anything.
    torn: Option<(u64, Vec<u8>)>,
}

/// Reads backwards in growing chunks until the last complete line is bounded.
fn read_tail(file: &File, len: u64) -> io::Result<Tail> {
    let mut chunk: u64 = 64 * 1024;
    loop {
        let start = len.saturating_sub(chunk);
        let mut buf = vec![0u8; (len - start) as usize];
        file.read_exact_at(&mut buf, start)?;
        if let Some(tail) = split_tail(&buf, start) {
            return Ok(tail);
        }
        chunk = chunk.saturating_mul(4);
    }
}

/// Splits `buf` (the file from offset `start` to its end); `None` if `buf` does not reach
/// back far enough to bound the last complete line.
fn split_tail(buf: &[u8], start: u64) -> Option<Tail> {
    let at_file_start = start == 0;
    let (body, torn) = match buf.iter().rposition(|&b| b == b'\n') {
        Some(nl) if nl + 1 == buf.len() => (&buf[..nl], None),
        Some(nl) => (
            &buf[..nl],
            Some((start + nl as u64 + 1, buf[nl + 1..].to_vec())),
        ),
        None if at_file_start => {
            let torn = (!buf.is_empty()).then(|| (0, buf.to_vec()));
            return Some(Tail {
                last_complete: None,
                torn,
            });
        }
        None => return None,
    };
    let line_start = match body.iter().rposition(|&b| b == b'\n') {
        Some(nl) => nl + 1,
        None if at_file_start => 0,
        None => return None,
    };
    Some(Tail {
        last_complete: Some((start + line_start as u64, body[line_start..].to_vec())),
        torn,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_of_terminated_file() {
        let t = split_tail(b"a\nbb\n", 0).unwrap();
        assert_eq!(t.last_complete, Some((2, b"bb".to_vec())));
        assert_eq!(t.torn, None);
    }

    #[test]
    fn tail_with_torn_line() {
        let t = split_tail(b"a\nbb\ncc", 0).unwrap();
        assert_eq!(t.last_complete, Some((2, b"bb".to_vec())));
        assert_eq!(t.torn, Some((5, b"cc".to_vec())));
        let t = split_tail(b"cc", 0).unwrap();
        assert_eq!(t.last_complete, None);
        assert_eq!(t.torn, Some((0, b"cc".to_vec())));
    }

    #[test]
    fn tail_needs_more_when_line_is_not_bounded() {
        assert!(split_tail(b"bb\n", 10).is_none());
        let t = split_tail(b"x\nbb\n", 10).unwrap();
        assert_eq!(t.last_complete, Some((12, b"bb".to_vec())));
    }

    #[test]
    fn second_open_is_refused_while_locked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/audit.jsonl");
        let first = LogFile::open(&path).unwrap();
        let err = LogFile::open(&path).unwrap_err();
        assert!(matches!(err, AuditError::InUse(_)), "{err}");
        assert!(err.to_string().contains("in use by a running keyguard"));
        drop(first);
        LogFile::open(&path).unwrap();
    }

    #[test]
    fn file_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let _log = LogFile::open(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
