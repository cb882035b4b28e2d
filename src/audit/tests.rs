//! Chaining, verification of tampered logs, restarts, torn lines and the failure policy.

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc as std_mpsc, Arc};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::verify::{verify, Broken, VerifyError};
use super::*;

fn config(path: &Path, on_failure: OnFailure, capacity: usize) -> AuditConfig {
    AuditConfig {
        enabled: true,
        path: Some(path.to_path_buf()),
        on_failure,
        queue_capacity: capacity,
    }
}

fn key_event(n: u8) -> Event {
    Event {
        time: "2024-01-01T00:00:00.000Z".into(),
        name: EventName::KeyLoad,
        fields: Fields::Key(KeyFields {
            pubkey: format!("0x{}", hex::encode([n; 48])),
            detail: format!("keystore /keys/{n}.json"),
        }),
    }
}

/// A chained log of `n` lines, as the writer would produce it, split into lines.
fn good_lines(n: u8) -> Vec<Vec<u8>> {
    let events: Vec<Event> = (0..n).map(key_event).collect();
    let (bytes, _) = writer::chain_batch(&events, ChainHead::GENESIS);
    split(&bytes)
}

fn split(bytes: &[u8]) -> Vec<Vec<u8>> {
    bytes
        .split_inclusive(|&b| b == b'\n')
        .map(<[u8]>::to_vec)
        .collect()
}

fn check(lines: &[Vec<u8>]) -> Result<verify::Verified, Broken> {
    match verify(lines.concat().as_slice()) {
        Ok(v) => Ok(v),
        Err(VerifyError::Broken(b)) => Err(b),
        Err(e) => panic!("unexpected: {e}"),
    }
}

fn broken_line(lines: &[Vec<u8>]) -> u64 {
    check(lines).expect_err("tampering went unnoticed").line
}

fn lines_of(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn wait_until(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn good_log_verifies() {
    let lines = good_lines(5);
    let v = check(&lines).unwrap();
    assert_eq!(v.lines, 5);
    assert_eq!(v.last_seq, Some(4));
    let last = &lines[4][..lines[4].len() - 1];
    assert_eq!(v.last_hash, Some(record::line_hash(last)));
    assert!(v.notes.is_empty());
    // The first line chains to 64 zeros, each next one to the SHA-256 of the previous.
    let first: serde_json::Value = serde_json::from_slice(&lines[0]).unwrap();
    assert_eq!(first["prev"], "0".repeat(64));
    let second: serde_json::Value = serde_json::from_slice(&lines[1]).unwrap();
    assert_eq!(
        second["prev"],
        hex::encode(record::line_hash(&lines[0][..lines[0].len() - 1]))
    );
    assert_eq!(check(&[]).unwrap().lines, 0);
}

#[test]
fn changed_byte_in_a_field_is_found_at_that_line() {
    let mut lines = good_lines(6);
    // Line 3 (seq 2): change one digit of the pubkey; the JSON stays valid.
    let text = String::from_utf8(lines[2].clone()).unwrap();
    lines[2] = text.replacen("0x020202", "0x020203", 1).into_bytes();
    assert_ne!(lines[2], good_lines(6)[2]);
    let b = check(&lines).unwrap_err();
    assert_eq!((b.line, b.at.as_str()), (3, "seq 2"), "{b}");
    assert!(b.what.contains("changed"), "{b}");
}

#[test]
fn changed_byte_that_breaks_json_is_found_at_that_line() {
    let mut lines = good_lines(6);
    lines[3][0] = b'[';
    assert_eq!(broken_line(&lines), 4);
}

#[test]
fn changed_second_to_last_line_is_found() {
    let mut lines = good_lines(4);
    let text = String::from_utf8(lines[2].clone()).unwrap();
    lines[2] = text.replacen("keystore", "keystorE", 1).into_bytes();
    assert_eq!(broken_line(&lines), 3);
}

#[test]
fn deleted_line_is_found_where_it_was() {
    let mut lines = good_lines(6);
    lines.remove(2);
    let b = check(&lines).unwrap_err();
    assert_eq!((b.line, b.at.as_str()), (3, "seq 3"), "{b}");
    assert!(b.what.contains("deleted"), "{b}");
    let mut lines = good_lines(6);
    lines.remove(0);
    assert_eq!(broken_line(&lines), 1);
}

#[test]
fn swapped_lines_are_found_at_the_first() {
    let mut lines = good_lines(6);
    lines.swap(2, 3);
    let b = check(&lines).unwrap_err();
    assert_eq!(b.line, 3, "{b}");
    assert!(b.what.contains("out of order"), "{b}");
}

#[test]
fn inserted_line_is_found() {
    // A copy of an earlier line.
    let mut lines = good_lines(6);
    let copy = lines[1].clone();
    lines.insert(3, copy);
    let b = check(&lines).unwrap_err();
    assert_eq!(b.line, 4, "{b}");
    assert!(b.what.contains("inserted"), "{b}");

    // A forged line with the right seq and prev: it chains, its successor does not.
    let mut lines = good_lines(6);
    let prev = record::line_hash(&lines[2][..lines[2].len() - 1]);
    let forged = record::encode(&key_event(9), 3, &prev).unwrap();
    lines.insert(3, [forged, b"\n".to_vec()].concat());
    let b = check(&lines).unwrap_err();
    assert_eq!(b.line, 4, "{b}");
    assert!(b.what.contains("inserted"), "{b}");

    // Garbage.
    let mut lines = good_lines(6);
    lines.insert(2, b"hello\n".to_vec());
    assert_eq!(broken_line(&lines), 3);
}

#[test]
fn torn_last_line_is_reported() {
    let mut lines = good_lines(4);
    let cut = lines[3].len() / 2;
    lines[3].truncate(cut);
    let b = check(&lines).unwrap_err();
    assert_eq!((b.line, b.at.as_str()), (4, "after seq 2"), "{b}");
    assert!(b.what.contains("incomplete"), "{b}");
}

#[test]
fn writer_chains_and_restart_continues_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("logs/audit.jsonl");
    let cfg = config(&path, OnFailure::Refuse, 16);
    for round in 0..2u8 {
        let log = AuditLog::open(&cfg, dir.path(), "test", None).unwrap();
        log.record_key_event(EventName::KeyLoad, &[round; 48], "first");
        log.record_key_event(EventName::KeyImport, &[round; 48], "second");
        log.close().unwrap();
    }
    let lines = lines_of(&path);
    let events: Vec<&str> = lines.iter().map(|l| l["event"].as_str().unwrap()).collect();
    assert_eq!(
        events,
        [
            "log_open",
            "key_load",
            "key_import",
            "log_close",
            "log_open",
            "key_load",
            "key_import",
            "log_close"
        ]
    );
    let seqs: Vec<u64> = lines.iter().map(|l| l["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, [0, 1, 2, 3, 4, 5, 6, 7]);
    let file = std::fs::File::open(&path).unwrap();
    let v = verify(io::BufReader::new(file)).unwrap();
    assert_eq!((v.lines, v.last_seq), (8, Some(7)));
}

#[test]
fn start_up_key_events_wait_for_room_instead_of_being_lost() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    // A queue of 2 and 200 keys loaded faster than they are written: none may be lost.
    let log = AuditLog::open(
        &config(&path, OnFailure::Refuse, 2),
        dir.path(),
        "test",
        None,
    )
    .unwrap();
    for n in 0..200u8 {
        log.record_key_event_waiting(EventName::KeyLoad, &[n; 48], "interop");
    }
    log.close().unwrap();
    let lines = lines_of(&path);
    let loads: Vec<String> = lines
        .iter()
        .filter(|l| l["event"] == "key_load")
        .map(|l| l["pubkey"].as_str().unwrap().to_string())
        .collect();
    let expected: Vec<String> = (0..200u8)
        .map(|n| format!("0x{}", hex::encode([n; 48])))
        .collect();
    assert_eq!(loads, expected);
}

#[test]
fn torn_line_is_closed_and_recorded_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let cfg = config(&path, OnFailure::Refuse, 16);
    let log = AuditLog::open(&cfg, dir.path(), "test", None).unwrap();
    log.record_key_event(EventName::KeyLoad, &[1; 48], "x");
    log.close().unwrap();
    drop(log);
    let len = std::fs::metadata(&path).unwrap().len();
    // A crash in the middle of a write.
    std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap()
        .write_all(br#"{"seq":3,"time":"2024-"#)
        .unwrap();

    let log = AuditLog::open(&cfg, dir.path(), "test", None).unwrap();
    log.record_key_event(EventName::KeyLoad, &[1; 48], "y");
    log.close().unwrap();

    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    // log_open, key_load, log_close, then the torn line.
    assert_eq!(lines[3], r#"{"seq":3,"time":"2024-"#);
    let recovered: serde_json::Value = serde_json::from_str(lines[4]).unwrap();
    assert_eq!(recovered["event"], "log_recovered");
    assert_eq!(recovered["seq"], 3);
    assert_eq!(recovered["torn_offset"], len);
    assert_eq!(
        recovered["prev"],
        hex::encode(record::line_hash(lines[2].as_bytes()))
    );
    let v = verify(text.as_bytes()).unwrap();
    assert_eq!((v.lines, v.last_seq), (8, Some(6)));
    assert_eq!(v.notes.len(), 1);
    assert!(v.notes[0].starts_with("line 4 "), "{:?}", v.notes);

    // Changing the torn bytes afterwards is detected.
    let tampered = text.replacen(r#""time":"2024-"#, r#""time":"2025-"#, 1);
    let Err(VerifyError::Broken(b)) = verify(tampered.as_bytes()) else {
        panic!("tampered torn line verified");
    };
    assert_eq!(b.line, 4, "{b}");
}

#[test]
fn unparsable_last_line_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    std::fs::write(&path, "not json\n").unwrap();
    let cfg = config(&path, OnFailure::Refuse, 16);
    let err = AuditLog::open(&cfg, dir.path(), "test", None).unwrap_err();
    assert!(err.to_string().contains("not an audit record"), "{err}");
}

#[test]
fn sign_events_record_what_is_known() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let cfg = config(&path, OnFailure::Refuse, 16);
    let log = AuditLog::open(&cfg, dir.path(), "test", None).unwrap();
    let client = ClientIdentity::Token { name: "vc1".into() };
    let reservation = log.ready().unwrap();
    log.record_signing(
        &SigningDecision {
            client: &client,
            pubkey: "0xab",
            request_type: Some(RequestType::Attestation),
            subject: Some(SlashingSubject::Attestation {
                source_epoch: 4,
                target_epoch: 5,
            }),
            signing_root: Some([0x11; 32]),
            outcome: Outcome::SlashingRefused("surround_vote"),
            reason: None,
        },
        Some(reservation),
    );
    log.record_signing(
        &SigningDecision {
            client: &ClientIdentity::Anonymous,
            pubkey: &"x".repeat(5000),
            request_type: None,
            subject: None,
            signing_root: None,
            outcome: Outcome::UnknownKey,
            reason: None,
        },
        None,
    );
    log.close().unwrap();
    let lines = lines_of(&path);
    let refused = &lines[1];
    assert_eq!(refused["event"], "sign");
    assert_eq!(refused["client"], "token:vc1");
    assert_eq!(refused["type"], "ATTESTATION");
    assert_eq!(refused["source_epoch"], 4);
    assert_eq!(refused["target_epoch"], 5);
    assert_eq!(refused["signing_root"], format!("0x{}", "11".repeat(32)));
    assert_eq!(refused["outcome"], "slashing_refused");
    assert_eq!(refused["reason"], "surround_vote");
    let unknown = &lines[2];
    assert_eq!(unknown["outcome"], "unknown_key");
    assert_eq!(unknown["pubkey"].as_str().unwrap().len(), MAX_PUBKEY_CHARS);
    assert!(unknown.get("type").is_none() && unknown.get("reason").is_none());
}

/// A sink in memory that can be made to fail, and that reports each attempt.
struct TestSink {
    written: Arc<Mutex<Vec<u8>>>,
    fail: Arc<AtomicBool>,
    attempts: std_mpsc::Sender<()>,
    /// When set, each append waits for a message first.
    gate: Option<std_mpsc::Receiver<()>>,
}

impl Sink for TestSink {
    fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        let _ = self.attempts.send(());
        if let Some(gate) = &self.gate {
            let _ = gate.recv();
        }
        if self.fail.load(Ordering::SeqCst) {
            return Err(io::Error::other("disk full (test)"));
        }
        self.written.lock().extend_from_slice(bytes);
        Ok(())
    }
}

struct Harness {
    log: AuditLog,
    written: Arc<Mutex<Vec<u8>>>,
    fail: Arc<AtomicBool>,
    attempts: std_mpsc::Receiver<()>,
    gate: Option<std_mpsc::Sender<()>>,
    metrics: AuditMetrics,
}

fn harness(on_failure: OnFailure, capacity: usize, fail: bool, gated: bool) -> Harness {
    let written = Arc::new(Mutex::new(Vec::new()));
    let fail = Arc::new(AtomicBool::new(fail));
    let (attempts_tx, attempts) = std_mpsc::channel();
    let (gate, gate_rx) = if gated {
        let (tx, rx) = std_mpsc::channel();
        (Some(tx), Some(rx))
    } else {
        (None, None)
    };
    let sink = TestSink {
        written: Arc::clone(&written),
        fail: Arc::clone(&fail),
        attempts: attempts_tx,
        gate: gate_rx,
    };
    let registry = prometheus::Registry::new();
    let metrics = AuditMetrics::register(&registry).unwrap();
    let cfg = config(Path::new("mem"), on_failure, capacity);
    let log = AuditLog::start_with_retry(
        Box::new(sink),
        ChainHead::GENESIS,
        &cfg,
        PathBuf::from("mem"),
        Some(metrics.clone()),
        Duration::from_millis(10),
    );
    Harness {
        log,
        written,
        fail,
        attempts,
        gate,
        metrics,
    }
}

#[test]
fn refuse_mode_refuses_while_writes_fail_and_recovers() {
    let h = harness(OnFailure::Refuse, 16, true, false);
    assert!(h.log.ready().is_ok());
    h.log.record_key_event(EventName::KeyLoad, &[1; 48], "x");
    wait_until("the write to fail", || h.log.health() != AuditHealth::Up);
    let err = h.log.ready().unwrap_err();
    assert_eq!(err.to_string(), "audit log cannot be written");
    assert!(err.0.contains("disk full"), "{}", err.0);
    assert!(matches!(
        h.log.health(),
        AuditHealth::Failing {
            on_failure: OnFailure::Refuse,
            ..
        }
    ));
    assert_eq!(h.metrics.writable.get(), 0);

    // The disk works again: the held event is written, signing resumes.
    h.fail.store(false, Ordering::SeqCst);
    wait_until("recovery", || h.log.health() == AuditHealth::Up);
    assert!(h.log.ready().is_ok());
    h.log.close().unwrap();
    let written = h.written.lock().clone();
    let v = verify(written.as_slice()).unwrap();
    assert_eq!(v.lines, 1);
    assert_eq!(h.metrics.written.get(), 1);
    assert_eq!(h.metrics.failures.get(), 0);
}

#[test]
fn refuse_mode_refuses_when_the_queue_is_full() {
    let mut h = harness(OnFailure::Refuse, 1, false, true);
    h.log
        .record_key_event(EventName::KeyLoad, &[1; 48], "held by the writer");
    h.attempts.recv().unwrap(); // The writer has the first event and waits at the gate.
    let reservation = h.log.ready().unwrap(); // The one place in the queue.
    let err = h.log.ready().unwrap_err();
    assert!(err.0.contains("full"), "{}", err.0);
    drop(reservation); // Unused reservations give their place back.
    let _again = h.log.ready().unwrap();
    drop(_again);
    let gate = h.gate.take().unwrap();
    for _ in 0..4 {
        let _ = gate.send(());
    }
    drop(gate);
    h.log.close().unwrap();
}

#[test]
fn continue_mode_counts_lost_events_and_keeps_signing() {
    let mut h = harness(OnFailure::Continue, 1, false, true);
    h.log
        .record_key_event(EventName::KeyLoad, &[1; 48], "held by the writer");
    h.attempts.recv().unwrap();
    h.log
        .record_key_event(EventName::KeyLoad, &[2; 48], "queued");
    for n in 3..6 {
        h.log.record_key_event(EventName::KeyLoad, &[n; 48], "lost");
    }
    assert_eq!(h.metrics.failures.get(), 3);
    // A full queue does not stop signing in continue mode.
    let reservation = h.log.ready().unwrap();
    assert!(reservation.0.is_none());
    let client = ClientIdentity::Anonymous;
    h.log.record_signing(
        &SigningDecision {
            client: &client,
            pubkey: "0x",
            request_type: None,
            subject: None,
            signing_root: None,
            outcome: Outcome::Signed,
            reason: None,
        },
        Some(reservation),
    );
    assert_eq!(h.metrics.failures.get(), 4);

    let gate = h.gate.take().unwrap();
    for _ in 0..4 {
        let _ = gate.send(());
    }
    drop(gate);
    h.log.close().unwrap();
    assert_eq!(h.metrics.written.get(), 2);
    let v = verify(h.written.lock().as_slice()).unwrap();
    assert_eq!(v.lines, 2);
}

#[test]
fn continue_mode_stays_up_while_writes_fail() {
    let h = harness(OnFailure::Continue, 16, true, false);
    h.log.record_key_event(EventName::KeyLoad, &[1; 48], "x");
    wait_until("the write to fail", || h.log.health() != AuditHealth::Up);
    assert!(h.log.ready().is_ok());
    // Shutdown while the disk still fails: the held event is given up and counted.
    h.log.close().unwrap();
    assert_eq!(h.metrics.failures.get(), 1);
    assert!(h.written.lock().is_empty());
}

#[test]
fn disabled_log_accepts_everything_and_writes_nothing() {
    let log = AuditLog::disabled();
    assert!(log.ready().is_ok());
    assert_eq!(log.health(), AuditHealth::Disabled);
    log.record_key_event(EventName::KeyLoad, &[1; 48], "x");
    log.close().unwrap();
}

#[test]
fn config_validation() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(
        &dir.path().join("new/sub/audit.jsonl"),
        OnFailure::Refuse,
        1,
    );
    cfg.validate(dir.path()).unwrap();
    cfg.queue_capacity = 0;
    assert_eq!(
        cfg.validate(dir.path()).unwrap_err().setting,
        "audit.queue_capacity"
    );
    cfg.queue_capacity = 1;
    cfg.path = Some(dir.path().to_path_buf());
    assert_eq!(cfg.validate(dir.path()).unwrap_err().setting, "audit.path");
    let file = dir.path().join("plain-file");
    std::fs::write(&file, "x").unwrap();
    cfg.path = Some(file.join("audit.jsonl"));
    let err = cfg.validate(dir.path()).unwrap_err();
    assert!(err.message.contains("not a directory"), "{err}");
    // Off: nothing is checked.
    cfg.enabled = false;
    cfg.validate(dir.path()).unwrap();
}

#[test]
fn refuse_mode_with_a_full_disk() {
    // /dev/full fails every write with ENOSPC, like a full disk.
    let path = Path::new("/dev/full");
    if !path.exists() {
        eprintln!("SKIPPED: no /dev/full on this system");
        return;
    }
    let cfg = config(path, OnFailure::Refuse, 16);
    let log = AuditLog::open(&cfg, Path::new("."), "test", None).unwrap();
    wait_until("the write to fail", || log.health() != AuditHealth::Up);
    let err = log.ready().unwrap_err();
    assert!(err.0.contains("No space left"), "{}", err.0);
    // log_open and log_close could not be written: closing says so.
    assert!(log.close().is_err());
}

#[test]
fn every_event_name_and_refusal_reason_is_documented() {
    let readme = include_str!("../../README.md");
    let start = readme
        .find("## Audit log")
        .expect("README has an audit section");
    let section = &readme[start..];
    let section = &section[..section[3..].find("\n## ").map_or(section.len(), |i| i + 3)];
    let mut names: Vec<&str> = EventName::ALL.iter().map(EventName::as_str).collect();
    names.extend(crate::access::DenyReason::ALL.iter().map(|r| r.as_str()));
    names.extend(["out_of_scope", "type_not_allowed", "forbidden"]);
    for name in names {
        assert!(
            section.contains(&format!("`{name}`")),
            "`{name}` is written to the audit log but not documented in README's Audit log"
        );
    }
}

#[test]
fn lifecycle_events_hold_their_place_before_the_operation() {
    let mut h = harness(OnFailure::Refuse, 3, false, true);
    h.log
        .record_key_event(EventName::KeyLoad, &[1; 48], "held by the writer");
    h.attempts.recv().unwrap(); // The writer has it and waits at the gate: 3 places left.
                                // An operation that needs more places than there are is refused before it starts.
    let err = h.log.reserve_lifecycle(4).map(drop).unwrap_err();
    assert!(err.0.contains("full"), "{}", err.0);
    {
        let _held = h.log.reserve_lifecycle(2).unwrap();
        // Signing decisions take the one place left; the operation's events still fit.
        let _signing = h.log.ready().unwrap();
        assert!(h.log.ready().is_err());
        h.log.record_key_event(EventName::KeyImport, &[2; 48], "a");
        h.log.record_key_event(EventName::KeyDelete, &[3; 48], "b");
    }
    assert_eq!(h.metrics.failures.get(), 0);
    let gate = h.gate.take().unwrap();
    for _ in 0..8 {
        let _ = gate.send(());
    }
    drop(gate);
    h.log.close().unwrap();
    let written = String::from_utf8(h.written.lock().clone()).unwrap();
    let events: Vec<serde_json::Value> = written
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let names: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["key_load", "key_import", "key_delete"]);
}

#[test]
fn unused_lifecycle_places_are_given_back() {
    let h = harness(OnFailure::Refuse, 2, false, false);
    drop(h.log.reserve_lifecycle(2).unwrap());
    let _again = h.log.reserve_lifecycle(2).unwrap();
}

#[test]
fn a_lost_lifecycle_event_fails_the_close_in_refuse_mode_only() {
    for (on_failure, fails) in [(OnFailure::Refuse, true), (OnFailure::Continue, false)] {
        let h = harness(on_failure, 16, true, false);
        h.log.record_key_event(EventName::KeyDelete, &[1; 48], "x");
        wait_until("the write to fail", || h.log.health() != AuditHealth::Up);
        let closed = h.log.close();
        assert_eq!(closed.is_err(), fails, "{on_failure:?}");
        if let Err(lost) = closed {
            assert_eq!(lost.0, 1);
        }
    }
}

#[test]
fn refuse_mode_refuses_a_lifecycle_operation_while_writes_fail() {
    let h = harness(OnFailure::Refuse, 16, true, false);
    h.log.record_key_event(EventName::KeyLoad, &[1; 48], "x");
    wait_until("the write to fail", || h.log.health() != AuditHealth::Up);
    assert!(h.log.reserve_lifecycle(1).is_err());
    assert!(h.log.wait_written(Duration::from_millis(50)).is_err());
    h.fail.store(false, Ordering::SeqCst);
    h.log.wait_written(Duration::from_secs(10)).unwrap();
    assert!(h.log.reserve_lifecycle(1).is_ok());
    h.log.close().unwrap();
}

#[test]
fn access_refusals_never_take_more_than_half_the_queue() {
    let mut h = harness(OnFailure::Refuse, 4, false, true);
    h.log
        .record_key_event(EventName::KeyLoad, &[1; 48], "held by the writer");
    h.attempts.recv().unwrap();
    let refusal = || RefusedFields {
        client: "anonymous".into(),
        peer: None,
        path: "/upcheck".into(),
        reason: "host_not_allowed",
        status: 403,
    };
    for _ in 0..10 {
        h.log.record_access_refused(refusal());
    }
    // Two were queued (up to half of 4); the rest were counted, and signing still fits.
    assert_eq!(h.metrics.failures.get(), 8);
    let _a = h.log.ready().unwrap();
    let _b = h.log.ready().unwrap();
    drop((_a, _b));
    let gate = h.gate.take().unwrap();
    for _ in 0..8 {
        let _ = gate.send(());
    }
    drop(gate);
    h.log.close().unwrap();
}
