//! `berth registry serve …` runs the built-in registry server by exec'ing `berthd registry
//! serve` (the CLI does not link the server). No root needed: the server listens on
//! 127.0.0.1:0 and prints the bound address; a raw HTTP request checks it answers `/v2/`.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};

use test_support::daemon::bin_path;

/// Kills the server child on drop (also when an assertion fails).
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn http_get(port: u16, path: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn berth_registry_serve_execs_berthd() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("reg");
    let child = Command::new(bin_path("berth"))
        .args(["registry", "serve", "--addr", "127.0.0.1:0", "--root"])
        .arg(&root)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut child = Child(child);
    let mut line = String::new();
    BufReader::new(child.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port: u16 = line
        .trim()
        .strip_prefix("listening on 127.0.0.1:")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"));

    let base = http_get(port, "/v2/");
    assert!(base.starts_with("HTTP/1.1 200"), "{base}");
    assert!(
        base.to_lowercase()
            .contains("docker-distribution-api-version: registry/2.0"),
        "{base}"
    );
    assert!(base.ends_with("{}"), "{base}");
    let catalog = http_get(port, "/v2/_catalog");
    assert!(catalog.ends_with(r#"{"repositories":[]}"#), "{catalog}");
    let unknown = http_get(port, "/v2/nope/tags/list");
    assert!(unknown.starts_with("HTTP/1.1 404"), "{unknown}");
    assert!(unknown.contains("NAME_UNKNOWN"), "{unknown}");
    // The layout was created under --root.
    assert!(root.join("blobs/sha256").is_dir());
    assert!(root.join("repositories").is_dir());
}

#[test]
fn berth_registry_usage_errors() {
    let out = Command::new(bin_path("berth"))
        .args(["registry", "serve"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(125));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--root is required"), "{err}");

    let out = Command::new(bin_path("berth"))
        .args(["registry", "serve", "--root", "/tmp/x", "--tls-cert", "c"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(125));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--tls-cert and --tls-key go together"),
        "{err}"
    );

    let out = Command::new(bin_path("berth"))
        .args(["registry", "--help"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(
        help.contains("registry serve --addr HOST:PORT --root DIR"),
        "{help}"
    );
}
