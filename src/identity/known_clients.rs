//! Web3Signer's known-clients file: one `<name> <SHA-256 fingerprint>` per line, e.g.
//! `lighthouse DF:65:B8:...:5B:50`. Blank lines and `#` comments are ignored; the
//! fingerprint may be written in either case, with or without `:` separators.
//!
//! Unlike Web3Signer, the name is not compared with the certificate's common name: the
//! fingerprint already pins one exact certificate, and the name is the client's name in
//! logs, the audit log and key scopes.

use std::path::Path;

use super::fingerprint::{self, Fingerprint};

/// One line of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownClient {
    /// The client's name (first column).
    pub name: String,
    /// The certificate's SHA-256 fingerprint (second column).
    pub fingerprint: Fingerprint,
}

/// A line that is not `<name> <fingerprint>`, or a file that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum KnownClientsError {
    /// The file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// A malformed line (1-based).
    #[error("line {line}: {message}")]
    Line {
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        message: String,
    },
}

/// Reads and parses a known-clients file.
pub fn load(path: &Path) -> Result<Vec<KnownClient>, KnownClientsError> {
    let text = std::fs::read_to_string(path).map_err(|source| KnownClientsError::Read {
        path: path.display().to_string(),
        source,
    })?;
    parse(&text)
}

/// Parses the text of a known-clients file.
pub fn parse(text: &str) -> Result<Vec<KnownClient>, KnownClientsError> {
    let mut clients = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let content = raw.split('#').next().unwrap_or("").trim();
        if content.is_empty() {
            continue;
        }
        let line_error = |message: String| KnownClientsError::Line {
            line: index + 1,
            message,
        };
        let fields: Vec<&str> = content.split_whitespace().collect();
        let [name, fp] = fields[..] else {
            return Err(line_error(format!(
                "expected `<name> <sha256 fingerprint>`, found {} field(s)",
                fields.len()
            )));
        };
        let fingerprint = fingerprint::parse(fp).map_err(|e| line_error(e.to_string()))?;
        clients.push(KnownClient {
            name: name.to_string(),
            fingerprint,
        });
    }
    Ok(clients)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FP_A: &str =
        "DF:65:B8:02:08:5E:91:82:0F:91:F5:1C:96:56:92:C4:1A:F6:C6:27:FD:6C:FC:31:F2:BB:90:17:22:59:5B:50";
    const FP_B: &str = "8ee0859ffc2e2f2131460b824ca688ab30349ac6ea4f0431ed0f69a7b5c22fa7";

    #[test]
    fn parses_web3signer_format_with_comments_and_blank_lines() {
        let text = format!(
            "# validators of rack 1\n\nlighthouse {FP_A}\n   \nteku\t{FP_B}   # added later\n"
        );
        let clients = parse(&text).unwrap();
        assert_eq!(clients.len(), 2);
        assert_eq!(clients[0].name, "lighthouse");
        assert_eq!(
            hex::encode(clients[0].fingerprint),
            "df65b802085e91820f91f51c965692c41af6c627fd6cfc31f2bb901722595b50"
        );
        assert_eq!(clients[1].name, "teku");
        assert_eq!(hex::encode(clients[1].fingerprint), FP_B);
    }

    #[test]
    fn lower_case_colon_fingerprints_are_accepted() {
        let clients = parse(&format!("curl {}", FP_A.to_lowercase())).unwrap();
        assert_eq!(clients[0].fingerprint[0], 0xdf);
    }

    #[test]
    fn empty_file_lists_nobody() {
        assert!(parse("").unwrap().is_empty());
        assert!(parse("# nothing yet\n\n").unwrap().is_empty());
    }

    #[test]
    fn malformed_lines_are_named_by_number() {
        let err = parse(&format!("ok {FP_A}\nmissing-fingerprint\n")).unwrap_err();
        assert!(
            matches!(err, KnownClientsError::Line { line: 2, .. }),
            "{err}"
        );
        let err = parse(&format!("a b {FP_A}\n")).unwrap_err();
        assert!(
            matches!(err, KnownClientsError::Line { line: 1, .. }),
            "{err}"
        );
        let err = parse("\n\nshort AB:CD\n").unwrap_err();
        assert!(
            matches!(err, KnownClientsError::Line { line: 3, .. }),
            "{err}"
        );
    }
}
