//! Client-supplied text made safe to log: truncated, with control and non-ASCII
//! characters escaped, so a request cannot forge log lines, colour a terminal, or flood the
//! log with one huge path.

use std::fmt::Write;

/// Longest path segment logged, in characters; the rest is summarised by its length.
pub const MAX_SEGMENT_CHARS: usize = 120;
/// Longest message text logged, in characters.
pub const MAX_TEXT_CHARS: usize = 400;

/// A path segment (or a whole path) from a request, fit for a log line.
pub fn path_segment(raw: &str) -> String {
    escaped(raw, MAX_SEGMENT_CHARS)
}

/// A message that may quote request input, fit for a log line.
pub fn text(raw: &str) -> String {
    escaped(raw, MAX_TEXT_CHARS)
}

fn escaped(raw: &str, max_chars: usize) -> String {
    let mut out = String::with_capacity(raw.len().min(max_chars * 4));
    for (n, c) in raw.chars().enumerate() {
        if n == max_chars {
            let _ = write!(out, "…({} bytes)", raw.len());
            break;
        }
        if c == ' ' || c.is_ascii_graphic() {
            out.push(c);
        } else {
            out.extend(c.escape_default());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        let logged = path_segment("0xab\u{1b}[31mred\nfake line\u{7f}é");
        assert!(!logged.chars().any(|c| c.is_control()), "{logged}");
        assert_eq!(logged, "0xab\\u{1b}[31mred\\nfake line\\u{7f}\\u{e9}");
    }

    #[test]
    fn long_segments_are_truncated_with_their_length() {
        let logged = path_segment(&"a".repeat(10_000));
        assert!(logged.starts_with(&"a".repeat(MAX_SEGMENT_CHARS)));
        assert!(logged.ends_with("…(10000 bytes)"), "{logged}");
        assert!(logged.len() < MAX_SEGMENT_CHARS + 20);
    }

    #[test]
    fn ordinary_pubkeys_are_unchanged() {
        let pubkey = format!("0x{}", "ab".repeat(48));
        assert_eq!(path_segment(&pubkey), pubkey);
    }
}
