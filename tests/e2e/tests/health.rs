//! End-to-end healthcheck tests: a real berthd (as root) driven by the real docker CLI (and
//! `berth` for its flags). Short intervals (300 ms) keep them quick; every test removes its
//! containers before its daemon stops and checks that no probe outlived them.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use test_support::daemon::{TestDaemon, fails, no_mounts_under, ok};
use test_support::require_root;

fn now_secs() -> String {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .to_string()
}

/// `docker inspect -f TEMPLATE NAME`, trimmed.
fn inspect(d: &TestDaemon, name: &str, template: &str) -> String {
    ok(&d.docker(&["inspect", "-f", template, name]))
        .trim()
        .to_string()
}

/// Waits (up to 20 s) until the container's health status is `want`.
fn wait_health(d: &TestDaemon, name: &str, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let got = inspect(d, name, "{{.State.Health.Status}}");
        if got == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{name}: health {got:?}, want {want:?}: {}",
            inspect(d, name, "{{json .State.Health}}")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The `{{.Names}}` of `docker ps --filter health=VALUE`, sorted.
fn ps_health(d: &TestDaemon, value: &str) -> Vec<String> {
    let out = ok(&d.docker(&[
        "ps",
        "--filter",
        &format!("health={value}"),
        "--format",
        "{{.Names}}",
    ]));
    let mut v: Vec<String> = out.lines().map(str::to_string).collect();
    v.sort();
    v
}

/// Whether any process on the host has `marker` in its command line.
fn process_with(marker: &str) -> bool {
    std::fs::read_dir("/proc").unwrap().flatten().any(|e| {
        std::fs::read(e.path().join("cmdline"))
            .is_ok_and(|c| String::from_utf8_lossy(&c).contains(marker))
    })
}

fn exec_dirs_empty(d: &TestDaemon) -> bool {
    ["exec", "e"].iter().all(|sub| {
        std::fs::read_dir(d.exec_root.join(sub)).map_or(true, |mut r| r.next().is_none())
    })
}

#[test]
fn healthy_unhealthy_timeout_in_inspect_ps_and_events() {
    require_root!();
    let d = TestDaemon::start();
    d.load_busybox();
    let t0 = now_secs();
    let run = |args: &[&str]| {
        let mut all = vec!["run", "-d"];
        all.extend_from_slice(args);
        ok(&d.docker(&all));
    };
    run(&[
        "--name",
        "good",
        "--health-cmd",
        "echo fine",
        "--health-interval",
        "300ms",
        "busybox",
        "sleep",
        "100",
    ]);
    run(&[
        "--name",
        "bad",
        "--health-cmd",
        "echo nope; exit 1",
        "--health-interval",
        "300ms",
        "--health-retries",
        "2",
        "busybox",
        "sleep",
        "100",
    ]);
    run(&[
        "--name",
        "slow",
        "--health-cmd",
        "sleep 30; echo healthmarker",
        "--health-interval",
        "300ms",
        "--health-timeout",
        "300ms",
        "--health-retries",
        "1",
        "busybox",
        "sleep",
        "100",
    ]);
    run(&[
        "--name",
        "later",
        "--health-cmd",
        "true",
        "--health-interval",
        "1h",
        "busybox",
        "sleep",
        "100",
    ]);
    run(&["--name", "plain", "busybox", "sleep", "100"]);

    // The config as the CLI sent it.
    assert_eq!(
        inspect(&d, "bad", "{{json .Config.Healthcheck}}"),
        r#"{"Test":["CMD-SHELL","echo nope; exit 1"],"Interval":300000000,"Retries":2}"#
    );

    wait_health(&d, "good", "healthy");
    wait_health(&d, "bad", "unhealthy");
    wait_health(&d, "slow", "unhealthy");
    assert_eq!(
        inspect(&d, "later", "{{json .State.Health}}"),
        r#"{"Status":"starting","FailingStreak":0,"Log":[]}"#
    );
    assert_eq!(inspect(&d, "plain", "{{json .State.Health}}"), "null");

    // The log: exit codes and output of the probes.
    let good = inspect(&d, "good", "{{json .State.Health}}");
    let v: serde_json::Value = serde_json::from_str(&good).unwrap();
    assert_eq!(v["FailingStreak"], 0);
    let log = v["Log"].as_array().unwrap();
    assert!(!log.is_empty() && log.len() <= 5, "{good}");
    assert_eq!(log[0]["ExitCode"], 0);
    assert_eq!(log[0]["Output"], "fine\n");
    assert!(log[0]["Start"].as_str().unwrap() <= log[0]["End"].as_str().unwrap());
    let bad: serde_json::Value =
        serde_json::from_str(&inspect(&d, "bad", "{{json .State.Health}}")).unwrap();
    assert!(bad["FailingStreak"].as_i64().unwrap() >= 2, "{bad}");
    assert_eq!(bad["Log"][0]["ExitCode"], 1);
    assert_eq!(bad["Log"][0]["Output"], "nope\n");
    let slow: serde_json::Value =
        serde_json::from_str(&inspect(&d, "slow", "{{json .State.Health}}")).unwrap();
    assert_eq!(slow["Log"][0]["ExitCode"], -1);
    assert_eq!(
        slow["Log"][0]["Output"],
        "Health check exceeded timeout (300ms)"
    );
    // The log keeps the last 5 results.
    let deadline = Instant::now() + Duration::from_secs(20);
    while inspect(&d, "bad", "{{len .State.Health.Log}}") != "5" {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_millis(700));
    assert_eq!(inspect(&d, "bad", "{{len .State.Health.Log}}"), "5");

    // ps: the status suffix and the health filter.
    let ps = ok(&d.docker(&["ps", "--format", "{{.Names}}|{{.Status}}"]));
    let status = |name: &str| {
        ps.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}|")))
            .unwrap_or_default()
            .to_string()
    };
    assert!(status("good").ends_with(" (healthy)"), "{ps}");
    assert!(status("bad").ends_with(" (unhealthy)"), "{ps}");
    assert!(status("later").ends_with(" (health: starting)"), "{ps}");
    assert!(
        status("plain").starts_with("Up ") && !status("plain").contains('('),
        "{ps}"
    );
    assert_eq!(ps_health(&d, "healthy"), vec!["good"]);
    assert_eq!(ps_health(&d, "unhealthy"), vec!["bad", "slow"]);
    assert_eq!(ps_health(&d, "starting"), vec!["later"]);
    assert_eq!(ps_health(&d, "none"), vec!["plain"]);
    let err = fails(&d.docker(&["ps", "--filter", "health=bogus"]));
    assert!(
        err.contains("Unrecognised filter value for health: bogus"),
        "{err}"
    );
    // berth shows the same statuses.
    let bps = ok(&d.berth(&[
        "ps",
        "--filter",
        "health=unhealthy",
        "--format",
        "{{.Names}}",
    ]));
    assert_eq!(bps.lines().count(), 2, "{bps}");

    // Events: one health_status per change, and the probes' exec events.
    let t1 = now_secs();
    let t1 = (t1.parse::<u64>().unwrap() + 1).to_string();
    let ev = ok(&d.docker(&[
        "events",
        "--since",
        &t0,
        "--until",
        &t1,
        "--filter",
        "event=health_status",
        "--format",
        "{{.Actor.Attributes.name}} {{.Action}}",
    ]));
    let lines: Vec<&str> = ev.lines().collect();
    assert!(lines.contains(&"good health_status: healthy"), "{ev}");
    assert!(lines.contains(&"bad health_status: unhealthy"), "{ev}");
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("good ")).count(),
        1,
        "{ev}"
    );
    let ev = ok(&d.docker(&[
        "events",
        "--since",
        &t0,
        "--until",
        &t1,
        "--filter",
        "container=good",
        "--filter",
        "event=exec_die",
        "--format",
        "{{.Action}} {{.Actor.Attributes.exitCode}}",
    ]));
    assert!(ev.lines().next().is_some_and(|l| l == "exec_die 0"), "{ev}");
    let ev = ok(&d.docker(&[
        "events",
        "--since",
        &t0,
        "--until",
        &t1,
        "--filter",
        "container=good",
        "--filter",
        "event=exec_create",
        "--format",
        "{{.Action}}",
    ]));
    assert!(
        ev.lines()
            .next()
            .is_some_and(|l| l == "exec_create: /bin/sh -c echo fine"),
        "{ev}"
    );

    // Probes that ended are not listed as the container's execs.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let ids = inspect(&d, "later", "{{json .ExecIDs}}");
        if ids == "null" {
            break;
        }
        assert!(Instant::now() < deadline, "{ids}");
        std::thread::sleep(Duration::from_millis(100));
    }

    // A stopped container keeps its log; its status is unhealthy (moby).
    ok(&d.docker(&["stop", "-t", "1", "good"]));
    assert_eq!(inspect(&d, "good", "{{.State.Health.Status}}"), "unhealthy");
    assert_ne!(inspect(&d, "good", "{{len .State.Health.Log}}"), "0");
    // Started again: starting, then healthy.
    ok(&d.docker(&["start", "good"]));
    wait_health(&d, "good", "healthy");
    assert_eq!(inspect(&d, "good", "{{.State.Health.FailingStreak}}"), "0");

    d.rm_all();
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        !process_with("healthmarker"),
        "a probe outlived its container"
    );
    assert!(exec_dirs_empty(&d), "exec shim directories left");
    assert!(no_mounts_under(&d.data_root));
}

#[test]
fn image_healthcheck_override_none_and_no_restart_on_unhealthy() {
    require_root!();
    let d = TestDaemon::start();
    d.load_busybox();
    // An image with a HEALTHCHECK, built by the legacy builder.
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM busybox\nHEALTHCHECK --interval=300ms --retries=1 CMD test -e /tmp/ok\nCMD [\"sleep\", \"100\"]\n",
    )
    .unwrap();
    let mut build = d.docker_cmd();
    build
        .env("DOCKER_BUILDKIT", "0")
        .args(["build", "-q", "-t", "hc:1"])
        .arg(ctx.path());
    ok(&build.output().unwrap());
    assert_eq!(
        ok(&d.docker(&[
            "image",
            "inspect",
            "-f",
            "{{json .Config.Healthcheck}}",
            "hc:1"
        ]))
        .trim(),
        r#"{"Test":["CMD-SHELL","test -e /tmp/ok"],"Interval":300000000,"Retries":1}"#
    );
    // commit --change HEALTHCHECK: a container of the image inherits the test.
    ok(&d.docker(&["create", "--name", "base", "busybox", "true"]));
    ok(&d.docker(&["commit", "--change", "HEALTHCHECK CMD true", "base", "hc:2"]));
    ok(&d.docker(&["create", "--name", "fromcommit", "hc:2", "sleep", "1"]));
    assert_eq!(
        inspect(&d, "fromcommit", "{{json .Config.Healthcheck.Test}}"),
        r#"["CMD-SHELL","true"]"#
    );

    // The image's check applies; unhealthy does not restart the container, even with
    // --restart always (only exits do).
    // The process exits (for the policy) once /tmp/die exists, removing it first.
    ok(&d.docker(&[
        "run",
        "-d",
        "--name",
        "img",
        "--restart",
        "always",
        "hc:1",
        "sh",
        "-c",
        "while [ ! -e /tmp/die ]; do sleep 0.1; done; rm /tmp/die; exit 1",
    ]));
    wait_health(&d, "img", "unhealthy");
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(inspect(&d, "img", "{{.RestartCount}}"), "0");
    assert_eq!(inspect(&d, "img", "{{.State.Status}}"), "running");
    assert_eq!(inspect(&d, "img", "{{.State.Health.Status}}"), "unhealthy");
    // Fixing the condition makes it healthy.
    ok(&d.docker(&["exec", "img", "touch", "/tmp/ok"]));
    wait_health(&d, "img", "healthy");
    // An exit restarts it (policy), and the health starts over and becomes healthy again.
    ok(&d.docker(&["exec", "img", "touch", "/tmp/die"]));
    let deadline = Instant::now() + Duration::from_secs(20);
    while inspect(&d, "img", "{{.RestartCount}}") != "1" {
        assert!(Instant::now() < deadline, "no restart after the exit");
        std::thread::sleep(Duration::from_millis(100));
    }
    wait_health(&d, "img", "healthy");

    // --health-cmd overrides the image's test, keeping its interval.
    ok(&d.docker(&[
        "run",
        "-d",
        "--name",
        "over",
        "--health-cmd",
        "true",
        "hc:1",
    ]));
    assert_eq!(
        inspect(&d, "over", "{{json .Config.Healthcheck}}"),
        r#"{"Test":["CMD-SHELL","true"],"Interval":300000000,"Retries":1}"#
    );
    wait_health(&d, "over", "healthy");

    // --no-healthcheck: NONE, no health state, plain status (docker and berth flags alike).
    ok(&d.docker(&["run", "-d", "--name", "none", "--no-healthcheck", "hc:1"]));
    ok(&d.berth(&["run", "-d", "--name", "bnone", "--no-healthcheck", "hc:1"]));
    for name in ["none", "bnone"] {
        assert_eq!(
            inspect(&d, name, "{{json .Config.Healthcheck.Test}}"),
            r#"["NONE"]"#
        );
        assert_eq!(inspect(&d, name, "{{json .State.Health}}"), "null");
    }
    assert_eq!(ps_health(&d, "none"), vec!["bnone", "none"]);
    // berth's flags.
    ok(&d.berth(&[
        "run",
        "-d",
        "--name",
        "bflags",
        "--health-cmd",
        "exit 3",
        "--health-interval",
        "300ms",
        "--health-retries",
        "1",
        "busybox",
        "sleep",
        "100",
    ]));
    wait_health(&d, "bflags", "unhealthy");
    let err = fails(&d.berth(&["run", "--no-healthcheck", "--health-cmd", "true", "busybox"]));
    assert!(
        err.contains("--no-healthcheck conflicts with --health-* options"),
        "{err}"
    );
    // The daemon's validation (moby's text), through the docker CLI.
    let err = fails(&d.docker(&[
        "create",
        "--health-cmd",
        "true",
        "--health-interval",
        "500us",
        "busybox",
    ]));
    assert!(
        err.contains("Interval in Healthcheck cannot be less than 1ms"),
        "{err}"
    );

    d.rm_all();
    std::thread::sleep(Duration::from_millis(300));
    assert!(exec_dirs_empty(&d), "exec shim directories left");
    assert!(no_mounts_under(&d.data_root));
}

#[test]
fn daemon_restart_resumes_probing() {
    require_root!();
    let mut d = TestDaemon::start();
    d.load_busybox();
    ok(&d.docker(&[
        "run",
        "-d",
        "--name",
        "live",
        "--health-cmd",
        "test -e /tmp/ok",
        "--health-interval",
        "300ms",
        "--health-retries",
        "1",
        "busybox",
        "sh",
        "-c",
        "touch /tmp/ok; exec sleep 100",
    ]));
    wait_health(&d, "live", "healthy");
    d.restart();
    // Probing resumes: the state starts over and becomes healthy, then follows the probe.
    wait_health(&d, "live", "healthy");
    ok(&d.docker(&["exec", "live", "rm", "/tmp/ok"]));
    wait_health(&d, "live", "unhealthy");
    d.rm_all();
    std::thread::sleep(Duration::from_millis(300));
    assert!(exec_dirs_empty(&d), "exec shim directories left");
    assert!(no_mounts_under(&d.data_root));
}
