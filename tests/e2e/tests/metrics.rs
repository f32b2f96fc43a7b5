//! End-to-end tests of berthd's metrics listener (`--metrics-addr`): a real berthd (as root)
//! driven by the docker CLI, its `/metrics` page read over plain HTTP before and after.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

use test_support::daemon::{TestDaemon, bin_path, fails, ok};
use test_support::require_root;

/// A port nobody listens on now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port()
}

/// `GET path` on 127.0.0.1:port: (status line, headers, body).
fn get(port: u16, path: &str) -> (String, String, String) {
    let mut conn = TcpStream::connect(("127.0.0.1", port)).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        conn,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    conn.read_to_string(&mut answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    let (status, headers) = head.split_once("\r\n").unwrap_or((head, ""));
    (
        status.to_string(),
        headers.to_ascii_lowercase(),
        body.to_string(),
    )
}

/// The samples of a scrape: `name{labels}` → value.
fn scrape(port: u16) -> HashMap<String, f64> {
    let (status, headers, body) = get(port, "/metrics");
    assert!(status.contains(" 200 "), "{status}");
    assert!(
        headers.contains("content-type: text/plain; version=0.0.4"),
        "{headers}"
    );
    body.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (k, v) = l.rsplit_once(' ').unwrap();
            (k.to_string(), v.parse::<f64>().unwrap())
        })
        .collect()
}

fn value(m: &HashMap<String, f64>, key: &str) -> f64 {
    *m.get(key)
        .unwrap_or_else(|| panic!("no sample {key} in {m:#?}"))
}

fn state(m: &HashMap<String, f64>, s: &str) -> f64 {
    value(
        m,
        &format!("engine_daemon_container_states_containers{{state=\"{s}\"}}"),
    )
}

#[test]
fn metrics_follow_containers_and_requests() {
    require_root!();
    let port = free_port();
    let d = TestDaemon::start_with(&["--metrics-addr", &format!("127.0.0.1:{port}")]);
    let before = scrape(port);
    assert_eq!(state(&before, "running"), 0.0);
    let version = ok(&d.docker(&["version", "-f", "{{.Server.Version}}"]));
    let info = before
        .keys()
        .find(|k| k.starts_with("engine_daemon_engine_info{"))
        .unwrap();
    assert!(
        info.contains(&format!("version=\"{}\"", version.trim())),
        "{info}"
    );
    assert_eq!(value(&before, info), 1.0);
    assert_eq!(
        value(&before, "berth_image_actions_total{action=\"pull\"}"),
        0.0
    );

    d.load_busybox();
    ok(&d.docker(&["run", "-d", "--name", "m1", "busybox", "sleep", "300"]));
    ok(&d.docker(&["create", "--name", "m2", "busybox", "true"]));
    fails(&d.docker(&["inspect", "nosuch-container"]));
    // A pull from a registry nobody serves: requested (counted), then failed.
    fails(&d.docker(&["pull", "127.0.0.1:1/nothing:latest"]));
    let during = scrape(port);
    assert_eq!(state(&during, "running"), 1.0);
    assert_eq!(state(&during, "stopped"), 1.0);
    assert_eq!(state(&during, "paused"), 0.0);
    assert!(value(&during, "berth_images") >= 1.0);
    assert_eq!(
        value(&during, "berth_image_actions_total{action=\"pull\"}"),
        1.0
    );
    assert_eq!(
        value(
            &during,
            "berth_http_requests_total{method=\"POST\",code=\"201\"}"
        ),
        2.0,
        "two creates"
    );
    assert!(
        value(
            &during,
            "berth_http_requests_total{method=\"GET\",code=\"404\"}"
        ) >= 1.0
    );
    let gets = "berth_http_requests_total{method=\"GET\",code=\"200\"}";
    assert!(value(&during, gets) > before.get(gets).copied().unwrap_or(0.0));
    let count = "berth_http_request_duration_seconds_count";
    assert!(value(&during, count) > value(&before, count));
    assert_eq!(
        value(&during, count),
        value(
            &during,
            "berth_http_request_duration_seconds_bucket{le=\"+Inf\"}"
        )
    );

    ok(&d.docker(&["pause", "m1"]));
    assert_eq!(state(&scrape(port), "paused"), 1.0);
    ok(&d.docker(&["unpause", "m1"]));
    d.rm_all();
    let after = scrape(port);
    assert_eq!(state(&after, "running"), 0.0);
    assert_eq!(state(&after, "stopped"), 0.0);

    // Only /metrics is served there.
    let (status, _, _) = get(port, "/v1.47/info");
    assert!(status.contains(" 404 "), "{status}");
}

#[test]
fn non_loopback_is_served_with_a_warning_and_bad_addresses_stop_the_start() {
    require_root!();
    let port = free_port();
    let d = TestDaemon::start_with(&["--metrics-addr", &format!("0.0.0.0:{port}")]);
    assert!(scrape(port).contains_key("process_start_time_seconds"));
    let log = d.log();
    assert!(log.contains("not on a loopback address"), "{log}");
    drop(d);

    // A bad address stops berthd before its engine opens: no data root is made.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("daemon.json");
    std::fs::write(&config, "{}").unwrap();
    let out = Command::new(bin_path("berthd"))
        .arg("-H")
        .arg(format!("unix://{}", dir.path().join("s.sock").display()))
        .arg("--data-root")
        .arg(dir.path().join("root"))
        .arg("--exec-root")
        .arg(dir.path().join("exec"))
        .arg("--config-file")
        .arg(&config)
        .args(["--metrics-addr", "no-port-here"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("resolve metrics address no-port-here"),
        "{err}"
    );
    assert!(!dir.path().join("root").exists());
}
