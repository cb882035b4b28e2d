//! `keyguard audit verify`: streams a log and checks that every line parses, `seq` counts
//! up by one and `prev` is the SHA-256 of the previous line. The first inconsistency is
//! reported with the line that most likely caused it, judged from its neighbours.
//!
//! What the file alone cannot show: lines cut off its end (truncation) or a changed last
//! line. Record the last line's hash elsewhere to detect those.

use std::fmt;
use std::io::{self, BufRead, Read};

use super::record::{line_hash, ParsedLine, GENESIS_PREV};

/// Longest accepted line; real lines are a few hundred bytes.
const MAX_LINE: usize = 1024 * 1024;

/// A log that verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// Lines in the file (including torn lines that a later line recovered).
    pub lines: u64,
    /// `seq` of the last line, if any.
    pub last_seq: Option<u64>,
    /// SHA-256 of the last line, if any.
    pub last_hash: Option<[u8; 32]>,
    /// Things an operator should know that do not break the chain (recovered torn lines).
    pub notes: Vec<String>,
}

/// The first broken line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line} ({at}): {what}")]
pub struct Broken {
    /// 1-based line number of the line at fault.
    pub line: u64,
    /// `seq S` of that line, or `after seq S` when it has none.
    pub at: String,
    /// What is wrong.
    pub what: String,
}

/// Verification could not finish, or found a broken line.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The file could not be read.
    #[error("cannot read the audit log: {0}")]
    Io(#[from] io::Error),
    /// The chain is broken.
    #[error(transparent)]
    Broken(#[from] Broken),
}

/// One line as read, with what is needed to judge it.
struct RawLine {
    no: u64,
    offset: u64,
    terminated: bool,
    hash: [u8; 32],
    parsed: Result<ParsedLine, String>,
}

impl RawLine {
    fn record(&self) -> Option<&ParsedLine> {
        self.parsed.as_ref().ok()
    }
}

/// Reads lines with their numbers and offsets.
struct Lines<R> {
    reader: R,
    no: u64,
    offset: u64,
}

impl<R: BufRead> Lines<R> {
    fn next_line(&mut self) -> Result<Option<RawLine>, VerifyError> {
        let mut buf = Vec::new();
        let limit = MAX_LINE as u64 + 1;
        let n = (&mut self.reader).take(limit).read_until(b'\n', &mut buf)?;
        if n == 0 {
            return Ok(None);
        }
        self.no += 1;
        let offset = self.offset;
        self.offset += n as u64;
        let terminated = buf.last() == Some(&b'\n');
        if terminated {
            buf.pop();
        } else if buf.len() > MAX_LINE {
            return Err(Broken {
                line: self.no,
                at: "at byte offset ".to_string() + &offset.to_string(),
                what: format!("longer than {MAX_LINE} bytes: not an audit log"),
            }
            .into());
        }
        Ok(Some(RawLine {
            no: self.no,
            offset,
            terminated,
            hash: line_hash(&buf),
            parsed: ParsedLine::parse(&buf),
        }))
    }
}

/// The last line accepted into the chain.
#[derive(Clone, Copy)]
struct Accepted {
    no: u64,
    seq: u64,
    hash: [u8; 32],
}

/// The chain so far.
struct Chain {
    last: Option<Accepted>,
    /// The line accepted before `last`: an inserted line is recognised by a successor that
    /// chains to it.
    before_last: Option<Accepted>,
    notes: Vec<String>,
}

impl Chain {
    fn expected_seq(&self) -> u64 {
        self.last.map_or(0, |a| a.seq + 1)
    }

    fn prev_hash(&self) -> [u8; 32] {
        self.last.map_or(GENESIS_PREV, |a| a.hash)
    }

    fn at_label(&self) -> String {
        match self.last {
            Some(a) => format!("after seq {}", a.seq),
            None => "before any seq".into(),
        }
    }

    fn accept(&mut self, line: &RawLine, seq: u64) {
        self.before_last = self.last;
        self.last = Some(Accepted {
            no: line.no,
            seq,
            hash: line.hash,
        });
    }

    /// True if `next` continues the chain as if `line` were not there.
    fn skips(&self, next: Option<&RawLine>) -> bool {
        next.and_then(RawLine::record)
            .is_some_and(|n| n.seq == self.expected_seq() && n.prev_bytes() == self.prev_hash())
    }
}

/// Verifies a whole log read from `reader`.
pub fn verify(reader: impl BufRead) -> Result<Verified, VerifyError> {
    let mut lines = Lines {
        reader,
        no: 0,
        offset: 0,
    };
    let mut chain = Chain {
        last: None,
        before_last: None,
        notes: Vec::new(),
    };
    let mut count = 0;
    let mut last_line: Option<([u8; 32], Option<u64>)> = None;
    let mut current = lines.next_line()?;
    while let Some(line) = current {
        let next = lines.next_line()?;
        check(&mut chain, &line, next.as_ref())?;
        count += 1;
        last_line = Some((line.hash, line.record().map(|r| r.seq)));
        current = next;
    }
    Ok(Verified {
        lines: count,
        last_seq: last_line.and_then(|(_, seq)| seq),
        last_hash: last_line.map(|(hash, _)| hash),
        notes: chain.notes,
    })
}

/// Checks one line against the chain (and, to say what went wrong, its successor).
fn check(chain: &mut Chain, line: &RawLine, next: Option<&RawLine>) -> Result<(), Broken> {
    if let Some(recovery) = next.and_then(RawLine::record) {
        if recovery.event == "log_recovered" && recovery.torn_offset == Some(line.offset) {
            return check_torn(chain, line, recovery);
        }
    }
    let broken = |at: String, what: String| Broken {
        line: line.no,
        at,
        what,
    };
    if !line.terminated {
        return Err(broken(
            chain.at_label(),
            "the last line is incomplete (no newline): a write was cut short by a crash \
             (keyguard closes it with a log_recovered line when it next starts), or the log \
             is being written right now"
                .into(),
        ));
    }
    let rec = match &line.parsed {
        Ok(rec) => rec,
        Err(e) if chain.skips(next) => {
            return Err(broken(chain.at_label(), inserted(line.no, e)));
        }
        Err(e) => {
            return Err(broken(
                chain.at_label(),
                format!("not an audit record ({e}): the line was changed or inserted"),
            ))
        }
    };
    let (expected, ok_seq) = (chain.expected_seq(), rec.seq == chain.expected_seq());
    let ok_prev = rec.prev_bytes() == chain.prev_hash();
    if ok_seq && ok_prev {
        chain.accept(line, rec.seq);
        return Ok(());
    }
    Err(diagnose(chain, line, rec, next, expected, ok_seq, ok_prev))
}

fn inserted(no: u64, why: &str) -> String {
    format!(
        "line {no} was inserted ({why}): line {} continues the chain from the line before it",
        no + 1
    )
}

/// A torn line followed by the `log_recovered` line that names it: fine if the recorded
/// hash matches the torn bytes (they were not changed since).
fn check_torn(chain: &mut Chain, line: &RawLine, recovery: &ParsedLine) -> Result<(), Broken> {
    if recovery.torn_sha256.as_deref() != Some(hex::encode(line.hash).as_str()) {
        return Err(Broken {
            line: line.no,
            at: chain.at_label(),
            what: format!(
                "this line was torn by a crash, but its bytes no longer match the SHA-256 \
                 recorded by line {}: it was changed afterwards",
                line.no + 1
            ),
        });
    }
    chain.notes.push(format!(
        "line {} (byte offset {}) is a partial line left by a crash; line {} records its \
         recovery and the chain continues from line {}",
        line.no,
        line.offset,
        line.no + 1,
        chain.last.map_or(0, |a| a.no)
    ));
    Ok(())
}

/// Names the most likely fault when `line` does not continue the chain.
fn diagnose(
    chain: &Chain,
    line: &RawLine,
    rec: &ParsedLine,
    next: Option<&RawLine>,
    expected: u64,
    ok_seq: bool,
    ok_prev: bool,
) -> Broken {
    let here = |what: String| Broken {
        line: line.no,
        at: format!("seq {}", rec.seq),
        what,
    };
    let next_rec = next.and_then(RawLine::record);
    let swapped = next_rec.is_some_and(|n| {
        rec.seq == expected + 1
            && n.seq == expected
            && n.prev_bytes() == chain.prev_hash()
            && next.is_some_and(|nl| rec.prev_bytes() == nl.hash)
    });
    if swapped {
        return here(format!(
            "lines {} and {} are out of order (seq {} before seq {expected}): lines were \
             reordered",
            line.no,
            line.no + 1,
            rec.seq
        ));
    }
    if chain.skips(next) {
        return here(inserted(line.no, "it does not continue the chain"));
    }
    if !ok_seq && ok_prev {
        return here(format!(
            "seq should be {expected}: the line was changed (its prev is right)"
        ));
    }
    let Some(last) = chain.last else {
        return here(if ok_seq {
            "the first line's prev is not 64 zeros: the line was changed, or lines before it \
             were deleted"
                .into()
        } else {
            format!(
                "the log starts at seq {}, not 0: its beginning was deleted",
                rec.seq
            )
        });
    };
    if ok_seq {
        return changed_line(last, line, rec, next_rec);
    }
    if rec.seq > expected {
        let missing = rec.seq - expected;
        return here(format!(
            "seq jumps from {} to {}: {missing} line(s) (seq {expected}..={}) were deleted \
             before this line",
            last.seq,
            rec.seq,
            rec.seq - 1
        ));
    }
    if let Some(before) = chain.before_last {
        if rec.seq == last.seq && rec.prev_bytes() == before.hash {
            return Broken {
                line: last.no,
                at: format!("seq {}", last.seq),
                what: inserted(last.no, "the next line chains to the line before it"),
            };
        }
    }
    here(format!(
        "seq goes back from {} to {}: lines were reordered or copied",
        last.seq, rec.seq
    ))
}

/// `line` has the right seq but its prev is not the hash of the previous line: either the
/// previous line was changed (and `line` still agrees with its successor), or `line` was.
fn changed_line(
    last: Accepted,
    line: &RawLine,
    rec: &ParsedLine,
    next_rec: Option<&ParsedLine>,
) -> Broken {
    let follows = |n: &ParsedLine| n.seq == rec.seq + 1 && n.prev_bytes() == line.hash;
    match next_rec {
        Some(n) if !follows(n) => Broken {
            line: line.no,
            at: format!("seq {}", rec.seq),
            what: format!(
                "the line was changed: its prev does not match line {}, and line {}'s prev \
                 does not match it",
                last.no,
                line.no + 1
            ),
        },
        _ => Broken {
            line: last.no,
            at: format!("seq {}", last.seq),
            what: format!(
                "the line was changed after it was written: its SHA-256 no longer matches the \
                 prev recorded in line {}{}",
                line.no,
                if next_rec.is_none() {
                    " (or that last line's prev was changed)"
                } else {
                    ""
                }
            ),
        },
    }
}

impl fmt::Display for Verified {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for note in &self.notes {
            writeln!(f, "note: {note}")?;
        }
        match (self.last_seq, self.last_hash) {
            (Some(seq), Some(hash)) => write!(
                f,
                "OK: {} lines, last seq {seq}, last line SHA-256 {}\n(lines cut off the end \
                 cannot be seen in the file alone: compare this hash with one kept elsewhere)",
                self.lines,
                hex::encode(hash)
            ),
            _ => write!(f, "OK: {} lines (empty log)", self.lines),
        }
    }
}
