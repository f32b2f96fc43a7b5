//! End-to-end `docker exec` tests: a real berthd (as root) driven by the real docker CLI and by
//! `berth`. Every test removes its containers before its daemon stops, and checks that no exec
//! shim or exec state directory outlives its exec.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use test_support::daemon::{TestDaemon, fails, ok};
use test_support::fixtures;
use test_support::require_root;

/// The exec shim state directories under the daemon's exec root.
fn exec_dirs(d: &TestDaemon) -> Vec<String> {
    let mut out = Vec::new();
    for sub in ["exec", "e"] {
        if let Ok(entries) = std::fs::read_dir(d.exec_root.join(sub)) {
            out.extend(entries.flatten().map(|e| e.path().display().to_string()));
        }
    }
    out
}

/// Shim processes whose config lies under `root`.
fn shims_under(root: &Path) -> Vec<String> {
    let root = root.to_string_lossy().to_string();
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cmd) = std::fs::read(e.path().join("cmdline")) {
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            if cmd.contains(" shim ") && cmd.contains(&root) {
                out.push(cmd);
            }
        }
    }
    out
}

/// Waits until no exec shim or exec state directory remains.
fn assert_execs_gone(d: &TestDaemon) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let dirs = exec_dirs(d);
        let shims: Vec<String> = shims_under(&d.exec_root.join("exec"))
            .into_iter()
            .chain(shims_under(&d.exec_root.join("e")))
            .collect();
        if dirs.is_empty() && shims.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "left behind: {dirs:?} {shims:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn run_sleeper(d: &TestDaemon, name: &str) {
    ok(&d.docker(&[
        "run",
        "-d",
        "--name",
        name,
        "--network",
        "none",
        "busybox",
        "sleep",
        "1000",
    ]));
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs `cmd` with `input` on its stdin.
fn with_stdin(mut cmd: Command, input: &[u8]) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

/// Runs a shell command line under a pty (`script`), with `DOCKER_HOST` pointing at `d`.
fn under_pty(d: &TestDaemon, line: &str) -> Output {
    Command::new("script")
        .args(["-qec", line, "/dev/null"])
        .env("DOCKER_HOST", d.host())
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn exec_output_exit_codes_env_workdir_user() {
    require_root!();
    let d = TestDaemon::start();
    d.load_busybox();
    run_sleeper(&d, "c1");
    for cli in ["docker", "berth"] {
        let run = |args: &[&str]| -> Output {
            let mut full = vec!["exec"];
            full.extend_from_slice(args);
            if cli == "docker" {
                d.docker(&full)
            } else {
                d.berth(&full)
            }
        };
        let o = run(&["c1", "echo", "hi"]);
        assert_eq!(o.status.code(), Some(0), "{cli}: {}", stderr(&o));
        assert_eq!(stdout(&o), "hi\n", "{cli}");
        let o = run(&["c1", "sh", "-c", "echo out; echo err >&2; exit 7"]);
        assert_eq!(o.status.code(), Some(7), "{cli}");
        assert_eq!(stdout(&o), "out\n", "{cli}");
        assert_eq!(stderr(&o), "err\n", "{cli}");
        let o = run(&["-e", "FOO=bar", "c1", "sh", "-c", "echo $FOO $HOSTNAME"]);
        let text = stdout(&o);
        assert!(text.starts_with("bar "), "{cli}: {text}");
        assert!(text.trim().len() > 4, "{cli}: HOSTNAME set: {text}");
        let o = run(&["-w", "/tmp", "c1", "pwd"]);
        assert_eq!(stdout(&o), "/tmp\n", "{cli}");
        let o = run(&["-u", "nobody", "c1", "id", "-u"]);
        assert_eq!(stdout(&o), "65534\n", "{cli}: {}", stderr(&o));
        // The container's seccomp profile and capability set apply to execs (SEC baseline),
        // unlike `--privileged` execs, which get every capability but keep the profile.
        let o = run(&[
            "c1",
            "grep",
            "-E",
            "^(Seccomp|CapEff):",
            "/proc/self/status",
        ]);
        let text = stdout(&o);
        assert!(text.contains("Seccomp:\t2"), "{cli}: {text}");
        assert!(text.contains("CapEff:\t00000000a80425fb"), "{cli}: {text}");
        let o = run(&[
            "--privileged",
            "c1",
            "grep",
            "^CapEff:",
            "/proc/self/status",
        ]);
        assert!(!stdout(&o).contains("a80425fb"), "{cli}: {}", stdout(&o));
        // HOME follows the exec's user, as runc sets it.
        let o = run(&["c1", "sh", "-c", "echo $HOME"]);
        assert_eq!(stdout(&o), "/root\n", "{cli}");
        // stdin piped with -i, half-closed at EOF.
        let mut cmd = if cli == "docker" {
            d.docker_cmd()
        } else {
            d.berth_cmd()
        };
        cmd.args(["exec", "-i", "c1", "cat"]);
        let o = with_stdin(cmd, b"data\nmore\n");
        assert_eq!(o.status.code(), Some(0), "{cli}: {}", stderr(&o));
        assert_eq!(stdout(&o), "data\nmore\n", "{cli}");
    }
    assert_execs_gone(&d);
    d.rm_all();
}

#[test]
fn exec_errors_missing_binary_and_not_running() {
    require_root!();
    let d = TestDaemon::start();
    d.load_busybox();
    run_sleeper(&d, "c1");
    let o = d.docker(&["exec", "c1", "nosuch"]);
    assert_eq!(o.status.code(), Some(127));
    assert_eq!(
        stdout(&o),
        "OCI runtime exec failed: exec failed: unable to start container process: exec: \"nosuch\": executable file not found in $PATH: unknown\r\n"
    );
    let o = d.berth(&["exec", "c1", "nosuch"]);
    assert_eq!(o.status.code(), Some(127), "{}", stderr(&o));
    assert!(stdout(&o).contains("executable file not found"));
    let o = d.docker(&["exec", "c1", "/etc"]);
    assert_eq!(o.status.code(), Some(126), "{}", stdout(&o));
    // Detached: the error is the HTTP answer.
    let o = d.docker(&["exec", "-d", "c1", "nosuch"]);
    assert_ne!(o.status.code(), Some(0));
    assert!(
        stderr(&o).contains("executable file not found"),
        "{}",
        stderr(&o)
    );
    // Not running, and unknown containers.
    ok(&d.docker(&["create", "--name", "stopped", "busybox", "true"]));
    let id = ok(&d.docker(&["inspect", "-f", "{{.Id}}", "stopped"]));
    let e = fails(&d.docker(&["exec", "stopped", "true"]));
    assert!(
        e.contains(&format!("container {} is not running", id.trim())),
        "{e}"
    );
    let o = d.docker(&["exec", "stopped", "true"]);
    assert_eq!(o.status.code(), Some(1));
    let e = fails(&d.berth(&["exec", "stopped", "true"]));
    assert!(e.contains("is not running"), "{e}");
    let e = fails(&d.docker(&["exec", "nope", "true"]));
    assert!(e.contains("No such container: nope"), "{e}");
    // Paused.
    ok(&d.docker(&["pause", "c1"]));
    let e = fails(&d.docker(&["exec", "c1", "true"]));
    assert!(
        e.contains("Container c1 is paused, unpause the container before exec"),
        "{e}"
    );
    ok(&d.docker(&["unpause", "c1"]));
    assert_execs_gone(&d);
    d.rm_all();
}

#[test]
fn exec_detached_inspect_and_exec_ids() {
    require_root!();
    let d = TestDaemon::start();
    d.load_busybox();
    run_sleeper(&d, "c1");
    let ids = ok(&d.docker(&["inspect", "-f", "{{.ExecIDs}}", "c1"]));
    assert_eq!(ids.trim(), "[]");
    ok(&d.docker(&[
        "exec",
        "-d",
        "c1",
        "sh",
        "-c",
        "touch /tmp/made; exec sleep 500",
    ]));
    // The process runs: it shows in top, and its file exists.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let top = ok(&d.docker(&["top", "c1"]));
        if top.contains("sleep 500") {
            break;
        }
        assert!(Instant::now() < deadline, "{top}");
        std::thread::sleep(Duration::from_millis(50));
    }
    ok(&d.docker(&["exec", "c1", "test", "-f", "/tmp/made"]));
    let ids = ok(&d.docker(&["inspect", "-f", "{{.ExecIDs}}", "c1"]));
    let ids = ids.trim().trim_matches(|c| c == '[' || c == ']');
    assert_eq!(ids.split_whitespace().count(), 1, "{ids}");
    assert_eq!(ids.len(), 64, "{ids}");
    // The exec's own inspect, through the API.
    let out = Command::new("curl")
        .args([
            "-s",
            "--unix-socket",
            d.socket.to_str().unwrap(),
            &format!("http://x/v1.47/exec/{ids}/json"),
        ])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["Running"], true, "{v}");
    assert!(v["ExitCode"].is_null(), "{v}");
    assert_eq!(v["ProcessConfig"]["entrypoint"], "sh");
    assert!(v["Pid"].as_i64().unwrap() > 0);
    let cid = ok(&d.docker(&["inspect", "-f", "{{.Id}}", "c1"]));
    assert_eq!(v["ContainerID"], cid.trim());
    // Unknown execs.
    let out = Command::new("curl")
        .args([
            "-s",
            "--unix-socket",
            d.socket.to_str().unwrap(),
            "http://x/v1.47/exec/nosuch/json",
        ])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        r#"{"message":"No such exec instance: nosuch"}"#
    );
    // Stopping the container ends the exec; its record then shows the exit.
    ok(&d.docker(&["stop", "-t", "1", "c1"]));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = Command::new("curl")
            .args([
                "-s",
                "--unix-socket",
                d.socket.to_str().unwrap(),
                &format!("http://x/v1.47/exec/{ids}/json"),
            ])
            .output()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        if v["Running"] == false {
            assert_eq!(v["ExitCode"], 137, "{v}");
            break;
        }
        assert!(Instant::now() < deadline, "{v}");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_execs_gone(&d);
    let ids = ok(&d.docker(&["inspect", "-f", "{{.ExecIDs}}", "c1"]));
    assert_eq!(ids.trim(), "[]");
    d.rm_all();
}

#[test]
fn exec_tty_under_script() {
    require_root!();
    let d = TestDaemon::start();
    d.load_busybox();
    run_sleeper(&d, "c1");
    let docker = test_support::daemon::docker_cli();
    let berth = test_support::daemon::bin_path("berth");
    for cli in [docker.to_str().unwrap(), berth.to_str().unwrap()] {
        let line = format!(
            "{cli} exec -it c1 sh -c 'tty; [ -t 0 ] && echo stdin-is-tty; stty size; exit 3'"
        );
        let o = under_pty(&d, &line);
        let text = stdout(&o);
        assert!(text.contains("/dev/pts/"), "{cli}: {text:?}");
        assert!(text.contains("stdin-is-tty"), "{cli}: {text:?}");
        assert_eq!(o.status.code(), Some(3), "{cli}: {text:?}");
        let o = under_pty(&d, &format!("{cli} exec -t c1 echo ok"));
        assert!(stdout(&o).contains("ok"), "{cli}: {:?}", stdout(&o));
    }
    assert_execs_gone(&d);
    d.rm_all();
}

#[test]
fn redis_cli_ping() {
    require_root!();
    let Some(archive) = fixtures::shared_image("redis.tar.gz") else {
        eprintln!("skipped: no shared redis image");
        return;
    };
    let d = TestDaemon::start();
    ok(&d.docker(&["load", "-i", archive.to_str().unwrap()]));
    ok(&d.docker(&[
        "run",
        "--name",
        "kvstor1",
        "-d",
        "--network",
        "none",
        "redis",
    ]));
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let o = under_pty(&d, "docker exec -it kvstor1 redis-cli ping");
        if stdout(&o).contains("PONG") {
            assert_eq!(o.status.code(), Some(0));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{:?} {:?}",
            stdout(&o),
            stderr(&o)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_execs_gone(&d);
    d.rm_all();
}
