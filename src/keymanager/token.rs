//! The keymanager API's bearer token: read from its file, or generated into it on first
//! start, and compared in constant time.
//!
//! The token grants full control over the keys (import and delete), so its file must be
//! private: a file that the group or others may read or write is refused at start-up
//! rather than warned about, like SSH refuses a private key with loose permissions.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::durable::{self, DurableWriteError, Existing};

/// Random bytes in a generated token (hex-encoded in the file, 64 characters).
const TOKEN_BYTES: usize = 32;
/// A token file larger than this is surely not a token.
const MAX_TOKEN_FILE: u64 = 4096;

/// Why the token could not be read or created. Never contains the token.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The file could not be read, created or written.
    #[error("keymanager token file {}: {op}: {source}", path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// The token file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The file is empty (or only whitespace).
    #[error("keymanager token file {} is empty; delete it to have a token generated, or write one into it", .0.display())]
    Empty(PathBuf),
    /// The file holds something that cannot be sent in an HTTP header.
    #[error("keymanager token file {} must hold one line of printable ASCII without spaces", .0.display())]
    Malformed(PathBuf),
    /// The group or others may access the file.
    #[error("keymanager token file {} has mode {mode:o}: others may read it; run `chmod 600` on it", path.display())]
    Permissions {
        /// The token file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The operating system's random number generator failed.
    #[error("cannot generate a keymanager token: {0}")]
    Random(String),
}

/// The bearer token. `Debug` never shows it; it is zeroized on drop.
pub struct ApiToken {
    token: Zeroizing<String>,
}

impl std::fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiToken(<redacted>)")
    }
}

/// Whether [`ApiToken::load_or_create`] found the file or wrote a new one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenOrigin {
    /// The file existed.
    Read,
    /// The file was missing; a new token was generated and written.
    Generated,
}

impl ApiToken {
    /// Reads the token from `path`; if the file does not exist, generates a random token
    /// and writes it there (mode 0600, never overwriting a file created meanwhile).
    pub fn load_or_create(path: &Path) -> Result<(ApiToken, TokenOrigin), TokenError> {
        match std::fs::symlink_metadata(path) {
            Ok(_) => Ok((Self::read(path)?, TokenOrigin::Read)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Ok((Self::generate(path)?, TokenOrigin::Generated))
            }
            Err(source) => Err(io("cannot inspect", path, source)),
        }
    }

    /// Reads and checks an existing token file.
    fn read(path: &Path) -> Result<ApiToken, TokenError> {
        // Follows a symlink on purpose: the permissions that matter are the target's.
        let meta = std::fs::metadata(path).map_err(|e| io("cannot inspect", path, e))?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(TokenError::Permissions {
                path: path.to_path_buf(),
                mode,
            });
        }
        if meta.len() > MAX_TOKEN_FILE {
            return Err(TokenError::Malformed(path.to_path_buf()));
        }
        let text = Zeroizing::new(std::fs::read(path).map_err(|e| io("cannot read", path, e))?);
        Self::parse(&text).map_err(|e| match e {
            ParseError::Empty => TokenError::Empty(path.to_path_buf()),
            ParseError::Malformed => TokenError::Malformed(path.to_path_buf()),
        })
    }

    /// The token in a file's bytes: surrounding whitespace (a trailing newline) is ignored.
    fn parse(bytes: &[u8]) -> Result<ApiToken, ParseError> {
        let text = std::str::from_utf8(bytes).map_err(|_| ParseError::Malformed)?;
        let token = text.trim();
        if token.is_empty() {
            return Err(ParseError::Empty);
        }
        if !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ParseError::Malformed);
        }
        Ok(ApiToken {
            token: Zeroizing::new(token.to_string()),
        })
    }

    /// Generates a token and writes it into a new file (parent directories created).
    fn generate(path: &Path) -> Result<ApiToken, TokenError> {
        let mut raw = Zeroizing::new([0u8; TOKEN_BYTES]);
        getrandom::fill(raw.as_mut()).map_err(|e| TokenError::Random(e.to_string()))?;
        let token = Zeroizing::new(hex::encode(raw.as_ref()));
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| io("cannot create directory", dir, e))?;
        }
        let line = Zeroizing::new(format!("{}\n", token.as_str()));
        // Durable (the name too), mode 0600, and never over an existing token file.
        durable::write_file(path, line.as_bytes(), durable::PRIVATE_MODE, Existing::Keep).map_err(
            |e| match e {
                DurableWriteError::AlreadyExists(path) => io(
                    "cannot create",
                    &path,
                    std::io::ErrorKind::AlreadyExists.into(),
                ),
                DurableWriteError::Io { op, path, source } => TokenError::Io { op, path, source },
            },
        )?;
        Ok(ApiToken { token })
    }

    /// True if `presented` is the token. Constant time in the token's content, so a
    /// client cannot learn it byte by byte from response times.
    pub fn matches(&self, presented: &str) -> bool {
        self.token.as_bytes().ct_eq(presented.as_bytes()).into()
    }
}

enum ParseError {
    Empty,
    Malformed,
}

fn io(op: &'static str, path: &Path, source: std::io::Error) -> TokenError {
    TokenError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_with_mode(path: &Path, text: &str, mode: u32) {
        std::fs::write(path, text).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn generated_token_is_private_hex_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("token");
        let (token, origin) = ApiToken::load_or_create(&path).unwrap();
        assert_eq!(origin, TokenOrigin::Generated);
        let text = std::fs::read_to_string(&path).unwrap();
        let written = text.trim_end();
        assert_eq!(written.len(), 2 * TOKEN_BYTES);
        assert!(written.bytes().all(|b| b.is_ascii_hexdigit()));
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(token.matches(written));

        let (again, origin) = ApiToken::load_or_create(&path).unwrap();
        assert_eq!(origin, TokenOrigin::Read);
        assert!(again.matches(written));
        // Two generated tokens differ.
        let (other, _) = ApiToken::load_or_create(&dir.path().join("other")).unwrap();
        assert!(!other.matches(written));
    }

    #[test]
    fn compare_is_exact() {
        let Ok(token) = ApiToken::parse(b"s3cret-token\n") else {
            panic!("token parses");
        };
        assert!(token.matches("s3cret-token"));
        for wrong in [
            "",
            "s3cret-toke",
            "s3cret-token ",
            "S3cret-token",
            "s3cret-token2",
        ] {
            assert!(!token.matches(wrong), "{wrong:?} must not match");
        }
    }

    #[test]
    fn bad_files_are_refused_without_showing_the_token() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        write_with_mode(&path, "  \n", 0o600);
        assert!(matches!(
            ApiToken::load_or_create(&path),
            Err(TokenError::Empty(_))
        ));
        write_with_mode(&path, "two words\n", 0o600);
        assert!(matches!(
            ApiToken::load_or_create(&path),
            Err(TokenError::Malformed(_))
        ));
        write_with_mode(&path, "readable-by-others\n", 0o644);
        let err = ApiToken::load_or_create(&path).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, TokenError::Permissions { mode: 0o644, .. }));
        assert!(
            msg.contains("chmod 600") && !msg.contains("readable-by-others"),
            "{msg}"
        );
        let token = ApiToken::parse(b"abc").unwrap_or_else(|_| panic!("parses"));
        assert_eq!(format!("{token:?}"), "ApiToken(<redacted>)");
    }
}
