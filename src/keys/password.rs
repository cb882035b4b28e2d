//! Keystore passwords: EIP-2335 normalisation and password files.
//!
//! Passwords only ever live in [`Zeroizing`] buffers, and no error here carries password
//! bytes (not even the invalid UTF-8 sequence of a broken password file).

use std::path::{Path, PathBuf};

use unicode_normalization::UnicodeNormalization;
use zeroize::Zeroizing;

/// Password files larger than this are refused: a password is a line of text, and reading
/// an arbitrary large file (a keystore passed by mistake, `/dev/zero`) into memory is not
/// what anyone meant.
const MAX_PASSWORD_FILE: u64 = 64 * 1024;

/// Why a password file could not be used. Never contains password material.
#[derive(Debug, thiserror::Error)]
pub enum PasswordFileError {
    /// The file could not be opened or read.
    #[error("cannot read password file {}: {source}", path.display())]
    Io {
        /// The password file.
        path: PathBuf,
        /// The underlying error (carries no file contents).
        #[source]
        source: std::io::Error,
    },
    /// The file is larger than any sensible password.
    #[error("password file {} is too large ({size} bytes)", path.display())]
    TooLarge {
        /// The password file.
        path: PathBuf,
        /// Its size in bytes.
        size: u64,
    },
    /// The file is not UTF-8 text.
    #[error("password file {} is not valid UTF-8", path.display())]
    NotUtf8 {
        /// The password file.
        path: PathBuf,
    },
}

/// Normalises a password as EIP-2335 requires before it is fed to the KDF: Unicode NFKD,
/// then removal of the C0 (U+0000–U+001F) and C1 (U+0080–U+009F) control codes and DEL
/// (U+007F).
///
/// The result is allocated once at its final size, so no partially built copy of the
/// password is left behind in freed memory by a reallocation.
pub fn normalize_password(password: &str) -> Zeroizing<String> {
    let len: usize = password
        .nfkd()
        .filter(|c| !is_control(*c))
        .map(char::len_utf8)
        .sum();
    let mut out = Zeroizing::new(String::with_capacity(len));
    for c in password.nfkd().filter(|c| !is_control(*c)) {
        out.push(c);
    }
    out
}

/// The control codes EIP-2335 strips from passwords.
fn is_control(c: char) -> bool {
    matches!(c as u32, 0x00..=0x1F | 0x7F..=0x9F)
}

/// Reads a password file: the whole file, minus trailing `\r` and `\n` characters only
/// (leading and inner whitespace, and trailing spaces, are part of the password — tools
/// that write password files add a newline, never other padding).
pub fn read_password_file(path: &Path) -> Result<Zeroizing<String>, PasswordFileError> {
    let io = |source| PasswordFileError::Io {
        path: path.to_path_buf(),
        source,
    };
    let size = std::fs::metadata(path).map_err(io)?.len();
    if size > MAX_PASSWORD_FILE {
        return Err(PasswordFileError::TooLarge {
            path: path.to_path_buf(),
            size,
        });
    }
    // `fs::read` sizes its buffer from the metadata, so the bytes are not copied around
    // by reallocation before they reach the zeroizing wrapper.
    crate::secret_file::warn_if_exposed(path, "keystore password");
    let mut bytes = Zeroizing::new(std::fs::read(path).map_err(io)?);
    // Validate first and convert after: `String::from_utf8`'s error would own (and
    // drop without zeroizing) the password bytes.
    if std::str::from_utf8(&bytes).is_err() {
        return Err(PasswordFileError::NotUtf8 {
            path: path.to_path_buf(),
        });
    }
    while matches!(bytes.last(), Some(b'\n' | b'\r')) {
        bytes.pop();
    }
    let vec = std::mem::take(&mut *bytes);
    // Checked above, and removing trailing ASCII bytes keeps the text valid UTF-8; the
    // fallible conversion is kept only to avoid `unsafe`.
    match String::from_utf8(vec) {
        Ok(s) => Ok(Zeroizing::new(s)),
        Err(e) => {
            drop(Zeroizing::new(e.into_bytes()));
            Err(PasswordFileError::NotUtf8 {
                path: path.to_path_buf(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nfkd_maps_fraktur_to_ascii() {
        // The EIP-2335 test-vector password and its documented encoding.
        let p = normalize_password("𝔱𝔢𝔰𝔱𝔭𝔞𝔰𝔰𝔴𝔬𝔯𝔡🔑");
        assert_eq!(
            hex::encode(p.as_bytes()),
            "7465737470617373776f7264f09f9491"
        );
    }

    #[test]
    fn nfkd_decomposes_accents_and_ligatures() {
        // U+00E9 -> e + U+0301; U+FB01 (fi ligature) -> "fi".
        assert_eq!(normalize_password("\u{e9}").as_str(), "e\u{301}");
        assert_eq!(normalize_password("\u{fb01}").as_str(), "fi");
    }

    #[test]
    fn control_codes_are_stripped() {
        let p = normalize_password("a\u{0}b\u{1f}c\u{7f}d\u{80}e\u{9f}f\u{a0}g\tz\n");
        // U+00A0 (no-break space) is not a control code; NFKD maps it to a space.
        assert_eq!(p.as_str(), "abcdef gz");
    }

    #[test]
    fn password_file_strips_only_trailing_newlines() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("p.txt");
        std::fs::write(&f, " pass word \r\n\n").unwrap();
        assert_eq!(read_password_file(&f).unwrap().as_str(), " pass word ");
        std::fs::write(&f, "").unwrap();
        assert_eq!(read_password_file(&f).unwrap().as_str(), "");
    }

    #[test]
    fn bad_password_files_are_reported_without_contents() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("p.txt");
        std::fs::write(&f, b"secret\xff\xfe").unwrap();
        let err = read_password_file(&f).unwrap_err();
        assert!(matches!(err, PasswordFileError::NotUtf8 { .. }));
        let shown = format!("{err} {err:?}");
        assert!(!shown.contains("secret"));
        let missing = read_password_file(&dir.path().join("nope")).unwrap_err();
        assert!(missing.to_string().contains("nope"));
    }
}
