//! berthd under abusive clients: malformed JSON, a 1 GB body, 2000 slow connections. Each is
//! answered with a 4xx or closed, `/_ping` keeps answering in under a second throughout, and
//! what legitimately lasts long — a hijacked attach, an event stream — is never cut by the
//! request-head timeout.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use test_support::daemon::{TestDaemon, ok};
use test_support::require_root;

/// berthd's request-head timeout (`daemon::connections::HEADER_READ_TIMEOUT`).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Sends `raw` on a new connection and reads the answer to its end (the request asks for
/// `Connection: close`).
fn exchange(socket: &Path, raw: &[u8]) -> String {
    let mut s = UnixStream::connect(socket).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(raw).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

fn post_json(socket: &Path, path: &str, body: &str) -> String {
    let raw = format!(
        "POST {path} HTTP/1.1\r\nHost: berth\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    exchange(socket, raw.as_bytes())
}

/// How long one `GET /_ping` takes on a new connection; panics when it fails.
fn ping_time(socket: &Path) -> Duration {
    let t = Instant::now();
    let answer = exchange(
        socket,
        b"GET /_ping HTTP/1.1\r\nHost: berth\r\nConnection: close\r\n\r\n",
    );
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    t.elapsed()
}

/// Raises this process's soft fd limit to its hard limit (2000 connections need 2000 fds).
fn raise_nofile() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    setrlimit(Resource::RLIMIT_NOFILE, hard, hard).unwrap();
}

/// Resident memory of a process, KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap()
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

#[test]
fn malformed_json_is_a_400_naming_the_problem() {
    require_root!();
    let d = TestDaemon::start();
    for (path, body) in [
        ("/v1.47/containers/create", "{\"Image\": \"busybox\""),
        ("/v1.47/containers/create", "[1, 2, 3]"),
        ("/v1.47/containers/create", "{\"Image\": 12}"),
        ("/v1.47/networks/create", "{\"Name\": "),
        ("/v1.47/volumes/create", "not json at all"),
        ("/v1.47/containers/create", "\u{0}\u{1}\u{2}"),
    ] {
        let answer = post_json(&d.socket, path, body);
        assert!(
            answer.starts_with("HTTP/1.1 400"),
            "{path} {body:?}: {answer}"
        );
        let json = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
        let v: serde_json::Value = serde_json::from_str(json.trim())
            .unwrap_or_else(|e| panic!("{path} {body:?}: not a JSON error body ({e}): {answer}"));
        assert!(
            v["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{answer}"
        );
    }
    // Nothing was made, and the daemon still serves.
    assert!(ok(&d.docker(&["ps", "-aq"])).trim().is_empty());
    assert!(ping_time(&d.socket) < Duration::from_secs(1));
}

/// A 1 GB body. Sent to a JSON endpoint it is refused after the limit (413) or cut off, never
/// read whole. Sent to `load` (a streaming endpoint: an upload may be that big) it is read as a
/// stream, never buffered, and the failure is answered once the client is done writing, so the
/// client sees the cause. `/_ping` answers throughout.
#[test]
fn a_1gb_body_is_refused_or_streamed_while_ping_answers() {
    require_root!();
    let d = TestDaemon::start();
    let before = open_fds(d.pid().unwrap());
    const GB: u64 = 1 << 30;
    for path in ["/v1.47/containers/create", "/v1.47/images/load"] {
        let mut s = UnixStream::connect(&d.socket).unwrap();
        s.set_write_timeout(Some(Duration::from_secs(20))).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let ctype = if path.ends_with("load") {
            "application/x-tar"
        } else {
            "application/json"
        };
        write!(
            s,
            "POST {path} HTTP/1.1\r\nHost: berth\r\nContent-Type: {ctype}\r\n\
             Content-Length: {GB}\r\n\r\n"
        )
        .unwrap();
        // `{"Image":"` then 1 GB of `a`s (a JSON string that never ends) or of garbage.
        let chunk = vec![b'a'; 1 << 20];
        if ctype == "application/json" {
            s.write_all(b"{\"Image\":\"").unwrap();
        }
        let t = Instant::now();
        let mut sent = 0u64;
        let mut pings = Vec::new();
        while sent < GB {
            match s.write(&chunk) {
                Ok(n) => sent += n as u64,
                Err(_) => break,
            }
            if pings.len() < 5 && sent.is_multiple_of(16 << 20) {
                pings.push(ping_time(&d.socket));
            }
        }
        let mut answer = Vec::new();
        let _ = s.read_to_end(&mut answer);
        let answer = String::from_utf8_lossy(&answer);
        if ctype == "application/json" {
            assert!(
                sent < 256 << 20,
                "{path}: berthd read {sent} bytes of a 1 GB body"
            );
            // Either an answer with a 4xx, or the connection closed under the writer.
            if !answer.is_empty() {
                assert!(answer.starts_with("HTTP/1.1 4"), "{path}: {answer}");
            }
        } else {
            // The whole upload was taken, the error answered after it.
            assert_eq!(sent, GB, "{path}");
            assert!(
                answer.starts_with("HTTP/1.1 4") || answer.contains("errorDetail"),
                "{path}: {answer}"
            );
            let rss = rss_kib(d.pid().unwrap());
            assert!(rss < 200 << 10, "{path}: berthd holds {rss} KiB");
        }
        assert!(t.elapsed() < Duration::from_secs(30), "{path}");
        for p in pings {
            assert!(p < Duration::from_secs(1), "{path}: /_ping took {p:?}");
        }
        assert!(ping_time(&d.socket) < Duration::from_secs(1));
    }
    // No image came of it, and no connection is left open in berthd.
    let images = ok(&d.docker(&["images", "-q"]));
    assert!(images.trim().is_empty(), "{images}");
    std::thread::sleep(Duration::from_millis(500));
    let after = open_fds(d.pid().unwrap());
    assert!(
        after <= before + 5,
        "berthd fds: {before} before, {after} after"
    );
}

/// 2000 connections that send a request head a byte at a time: `/_ping` answers within a
/// second all along, and berthd closes each slow one once the head timeout passes. A hijacked
/// attach and an event stream quiet for longer than that timeout keep going.
#[test]
fn slow_connections_are_closed_and_long_streams_are_not() {
    require_root!();
    raise_nofile();
    let d = TestDaemon::start();
    d.load_busybox();
    let pid = d.pid().unwrap();
    let before = open_fds(pid);
    // Streams that stay quiet longer than the head timeout: an attached run printing late, an
    // event stream that sees it.
    let mut events = d
        .docker_cmd()
        .args([
            "events",
            "--format",
            "{{.Action}} {{.Actor.Attributes.name}}",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let late = {
        let mut c = d.docker_cmd();
        c.args([
            "run",
            "--name",
            "late",
            "busybox",
            "sh",
            "-c",
            "sleep 13; echo late-output",
        ]);
        c.stdout(std::process::Stdio::piped());
        c.spawn().unwrap()
    };
    let mut slow = Vec::new();
    for i in 0..2000 {
        let mut s =
            UnixStream::connect(&d.socket).unwrap_or_else(|e| panic!("connection {i}: {e}"));
        s.write_all(b"GET /_ping HTTP/1.1\r\nHo").unwrap();
        slow.push(s);
    }
    let t = Instant::now();
    let mut worst = Duration::ZERO;
    let mut pings = 0;
    // Trickle a byte on each every second, pinging in between, past the timeout.
    while t.elapsed() < HEADER_READ_TIMEOUT + Duration::from_secs(4) {
        for s in &mut slow {
            let _ = s.write_all(b"s");
        }
        for _ in 0..4 {
            worst = worst.max(ping_time(&d.socket));
            pings += 1;
            std::thread::sleep(Duration::from_millis(250));
        }
    }
    assert!(
        worst < Duration::from_secs(1),
        "/_ping took {worst:?} (of {pings})"
    );
    // Every slow connection was closed by berthd: a read sees the end (or the 408 hyper may
    // send first), never a hang.
    let mut closed = 0;
    for s in &mut slow {
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = Vec::new();
        match s.read_to_end(&mut buf) {
            Ok(_) => closed += 1,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => closed += 1,
            Err(e) => panic!("a slow connection is still open: {e}"),
        }
        if !buf.is_empty() {
            let text = String::from_utf8_lossy(&buf);
            assert!(text.starts_with("HTTP/1.1 4"), "{text}");
        }
    }
    assert_eq!(closed, slow.len());
    drop(slow);
    // The attached run got its late output and its exit; the event stream saw it die.
    let out = late.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "late-output");
    ok(&d.docker(&["rm", "late"]));
    let mut seen = String::new();
    let mut stdout = events.stdout.take().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut buf = [0u8; 4096];
    // The events stream is still open and delivers the container's events.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    while !seen.contains("destroy late") && Instant::now() < deadline {
        if let Ok(b) = rx.recv_timeout(Duration::from_millis(200)) {
            seen.push_str(&String::from_utf8_lossy(&b));
        }
    }
    let _ = events.kill();
    let _ = events.wait();
    assert!(seen.contains("die late"), "{seen}");
    assert!(seen.contains("destroy late"), "{seen}");
    // berthd let go of the connections.
    std::thread::sleep(Duration::from_millis(500));
    let after = open_fds(pid);
    assert!(
        after <= before + 10,
        "berthd fds: {before} before, {after} after"
    );
}
