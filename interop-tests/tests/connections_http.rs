//! Connection limits of the signing API against the real binary over raw TCP: slowloris
//! clients are cut off at the header deadline while a normal client is answered, a peer
//! over its connection cap is refused, idle keep-alive connections and trickled bodies
//! are closed on their own deadlines, and a non-loopback listen needs authentication or
//! an explicit `--allow-insecure-listen`.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use interop_tests::keyguard_process::{
    free_port, keyguard_binary, keyguard_command, workspace_root, KeyguardProcess,
};

const UPCHECK: &[u8] = b"GET /upcheck HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";

/// `keyguard run` in dev mode (interop keys, devnet) with `extra` flags, once every key is
/// loaded (keys load in the background after `/upcheck` answers).
fn start(tmp: &tempfile::TempDir, extra: &[&str]) -> KeyguardProcess {
    let data = tmp.path().join("data");
    let mut args = vec!["--config", "config/dev.toml", "--data-dir"];
    args.push(data.to_str().unwrap());
    args.extend_from_slice(extra);
    KeyguardProcess::start_healthy(&args, tmp.path()).unwrap()
}

fn connect(kg: &KeyguardProcess) -> TcpStream {
    let stream = TcpStream::connect(("127.0.0.1", kg.port)).unwrap();
    stream.set_nodelay(true).unwrap();
    stream
}

/// True when the server closed `stream` (EOF or reset) within `within`; false when it is
/// still open (the read timed out).
fn closed_by_server(stream: &mut TcpStream, within: Duration) -> bool {
    stream.set_read_timeout(Some(within)).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            // Drain an answer (e.g. a 408 or 400) and keep reading until the close.
            Ok(_) => continue,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return false
            }
            Err(_) => return true,
        }
    }
}

/// Sends one request on `stream` and reads the status line of its answer.
fn request_status(stream: &mut TcpStream, request: &[u8]) -> String {
    stream.write_all(request).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut buf = [0u8; 4096];
    let n = stream.read(&mut buf).unwrap();
    let text = String::from_utf8_lossy(&buf[..n]).to_string();
    text.lines().next().unwrap_or_default().to_string()
}

fn metric_value(kg: &KeyguardProcess, series: &str) -> f64 {
    let text = kg.metrics().unwrap();
    text.lines()
        .find(|l| l.starts_with(series))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no series {series} in:\n{text}"))
}

#[test]
fn slowloris_connections_are_cut_off_while_a_normal_client_is_served() {
    let tmp = tempfile::tempdir().unwrap();
    let kg = start(&tmp, &["--header-read-timeout-ms", "1500"]);

    // 150 connections that send nothing, 150 that send a request head byte by byte.
    let silent: Vec<TcpStream> = (0..150).map(|_| connect(&kg)).collect();
    let mut trickling: Vec<TcpStream> = (0..150).map(|_| connect(&kg)).collect();
    let head = b"POST /api/v1/eth2/sign/0x00 HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    let started = Instant::now();
    let client = reqwest::blocking::Client::new();
    let mut sent = 0;
    // For 3 s (twice the header deadline): a byte per trickling connection every 100 ms,
    // and a normal request in between, each answered promptly.
    while started.elapsed() < Duration::from_secs(3) {
        for stream in &mut trickling {
            // Writes fail once the server has closed the connection: that is the point.
            let _ = stream.write_all(&head[sent % head.len()..sent % head.len() + 1]);
        }
        sent += 1;
        let asked = Instant::now();
        let status = client
            .get(format!("{}/upcheck", kg.url))
            .timeout(Duration::from_secs(2))
            .send()
            .unwrap()
            .status();
        assert_eq!(status, 200);
        assert!(
            asked.elapsed() < Duration::from_millis(500),
            "a normal request took {:?} under a slowloris attack",
            asked.elapsed()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    for (i, mut stream) in silent.into_iter().chain(trickling).enumerate() {
        assert!(
            closed_by_server(&mut stream, Duration::from_secs(2)),
            "slow connection {i} is still open after the header deadline"
        );
    }
    let header_timeouts = metric_value(
        &kg,
        "keyguard_http_connection_timeouts_total{phase=\"header\"}",
    );
    assert!(header_timeouts >= 300.0, "{header_timeouts}");
}

#[test]
fn connections_over_the_per_peer_cap_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let kg = start(&tmp, &["--max-connections-per-peer", "4"]);
    // The readiness probe's connection may linger a moment; wait until it is released.
    std::thread::sleep(Duration::from_millis(300));
    let mut held: Vec<TcpStream> = (0..4).map(|_| connect(&kg)).collect();
    for stream in &mut held {
        assert_eq!(request_status(stream, UPCHECK), "HTTP/1.1 200 OK");
    }
    let mut fifth = connect(&kg);
    let _ = fifth.write_all(UPCHECK);
    assert!(
        closed_by_server(&mut fifth, Duration::from_secs(2)),
        "a fifth connection from the same address was served"
    );
    let refused = metric_value(
        &kg,
        "keyguard_http_connections_refused_total{reason=\"max_connections_per_peer\"}",
    );
    assert!(refused >= 1.0, "{refused}");

    // A closed connection frees its place.
    drop(held.pop());
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let mut again = connect(&kg);
        let _ = again.write_all(UPCHECK);
        again
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        let mut buf = [0u8; 64];
        if matches!(again.read(&mut buf), Ok(n) if n > 0) {
            assert!(buf.starts_with(b"HTTP/1.1 200"));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the freed place was never reused"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn idle_keep_alive_connections_close_on_their_own_deadline() {
    let tmp = tempfile::tempdir().unwrap();
    // Idle deadline longer than the header deadline: waiting between requests is not a
    // slow header.
    let kg = start(
        &tmp,
        &[
            "--header-read-timeout-ms",
            "800",
            "--idle-timeout-ms",
            "2500",
        ],
    );
    let mut stream = connect(&kg);
    assert_eq!(request_status(&mut stream, UPCHECK), "HTTP/1.1 200 OK");
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        request_status(&mut stream, UPCHECK),
        "HTTP/1.1 200 OK",
        "an idle keep-alive connection was closed at the header deadline"
    );
    let answered = Instant::now();
    assert!(
        closed_by_server(&mut stream, Duration::from_secs(5)),
        "an idle keep-alive connection stayed open past the idle deadline"
    );
    let idle_for = answered.elapsed();
    assert!(idle_for >= Duration::from_millis(2000), "{idle_for:?}");
    let idle = metric_value(
        &kg,
        "keyguard_http_connection_timeouts_total{phase=\"idle\"}",
    );
    assert!(idle >= 1.0, "{idle}");
}

#[test]
fn a_trickled_body_is_cut_off_at_the_body_deadline() {
    let tmp = tempfile::tempdir().unwrap();
    let kg = start(&tmp, &["--body-read-timeout-ms", "1000"]);
    let mut stream = connect(&kg);
    let key = kg.public_keys().unwrap().remove(0);
    let head = format!(
        "POST /api/v1/eth2/sign/{key} HTTP/1.1\r\nHost: 127.0.0.1\r\n\
         Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{\"type\":"
    );
    stream.write_all(head.as_bytes()).unwrap();
    let sent = Instant::now();
    assert!(
        closed_by_server(&mut stream, Duration::from_secs(4)),
        "a connection trickling its body stayed open past the body deadline"
    );
    assert!(
        sent.elapsed() >= Duration::from_millis(900),
        "{:?}",
        sent.elapsed()
    );
    let body = metric_value(
        &kg,
        "keyguard_http_connection_timeouts_total{phase=\"body\"}",
    );
    assert!(body >= 1.0, "{body}");
}

#[test]
fn a_non_loopback_listen_needs_authentication_or_an_explicit_flag() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let port = free_port();
    let listen = format!("0.0.0.0:{port}");
    let base = [
        "run",
        "--config",
        "config/dev.toml",
        "--data-dir",
        data.to_str().unwrap(),
        "--listen",
        &listen,
        "--metrics",
        "false",
    ];
    let out = keyguard_command(&base);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("server.listen"), "{stderr}");
    assert!(stderr.contains("--allow-insecure-listen"), "{stderr}");

    let log_path = tmp.path().join("insecure.log");
    let mut child = Command::new(keyguard_binary())
        .args(base)
        .arg("--allow-insecure-listen")
        .env_remove("KEYGUARD_CONFIG")
        .current_dir(workspace_root())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let answered = loop {
        let up = reqwest::blocking::get(format!("http://127.0.0.1:{port}/upcheck"));
        if matches!(&up, Ok(r) if r.status() == 200) {
            break true;
        }
        if Instant::now() > deadline || child.try_wait().unwrap().is_some() {
            break false;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let _ = child.kill();
    let _ = child.wait();
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        answered,
        "keyguard did not serve with --allow-insecure-listen:\n{log}"
    );
    assert!(
        log.contains("allow_insecure_listen"),
        "no warning in:\n{log}"
    );
}
