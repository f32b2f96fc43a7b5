//! End-to-end container tests: a real berthd (as root) driven by the real docker CLI. Every
//! test removes its containers (`docker rm -f`) before its daemon stops, so no container
//! process or mount outlives it.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use test_support::daemon::{TestDaemon, bin_path, docker_cli, fails, no_mounts_under, ok, ping};
use test_support::fixtures;
use test_support::require_root;

#[test]
fn run_rm_echo_and_exit_codes() {
    require_root!();
    let d = TestDaemon::start();
    d.load_busybox();
    let out = ok(&d.docker(&["run", "--rm", "busybox", "echo", "hello"]));
    assert_eq!(out, "hello\n");
    let out = d.docker(&["run", "busybox", "sh", "-c", "echo err >&2; exit 3"]);
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(String::from_utf8_lossy(&out.stderr), "err\n");
    let out = d.docker(&["run", "--name", "nocmd", "busybox", "nosuchcmd"]);
    assert_eq!(out.status.code(), Some(127));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("executable file not found"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let code = ok(&d.docker(&["inspect", "-f", "{{.State.ExitCode}}", "nocmd"]));
    assert_eq!(code.trim(), "127");
    // --rm removed its container; the others remain.
    let names = ok(&d.docker(&["ps", "-a", "--format", "{{.Names}}"]));
    assert_eq!(names.lines().count(), 2, "{names}");
    d.rm_all();
    assert!(no_mounts_under(&d.data_root));
}

#[test]
fn detached_logs_stop_rm() {
    require_root!();
    let d = TestDaemon::start();
    d.load_busybox();
    let id = ok(&d.docker(&[
        "run",
        "-d",
        "--name",
        "s1",
        "busybox",
        "sh",
        "-c",
        "echo started; exec sleep 100",
    ]));
    assert_eq!(id.trim().len(), 64);
    let ps = ok(&d.docker(&["ps", "--format", "{{.Names}} {{.Status}} {{.Command}}"]));
    assert!(ps.starts_with("s1 Up "), "{ps}");
    // The log has the line once the shell ran.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let logs = ok(&d.docker(&["logs", "s1"]));
        if logs == "started\n" {
            break;
        }
        assert!(Instant::now() < deadline, "logs: {logs:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let ts = ok(&d.docker(&["logs", "-t", "s1"]));
    let (stamp, rest) = ts.split_once(' ').unwrap();
    assert_eq!(rest, "started\n");
    assert_eq!(
        stamp.len(),
        "2026-11-23T06:00:27.870318289Z".len(),
        "{stamp}"
    );

    let pid = ok(&d.docker(&["inspect", "-f", "{{.State.Pid}}", "s1"]));
    let pid: i32 = pid.trim().parse().unwrap();
    assert!(Path::new(&format!("/proc/{pid}")).exists());
    let out = fails(&d.docker(&["rm", "s1"]));
    assert!(out.contains("container is running"), "{out}");
    assert_eq!(ok(&d.docker(&["stop", "-t", "1", "s1"])).trim(), "s1");
    let st = ok(&d.docker(&["ps", "-a", "--format", "{{.Names}} {{.Status}}"]));
    assert!(st.starts_with("s1 Exited ("), "{st}");
    let out = fails(&d.docker(&["kill", "s1"]));
    assert!(out.contains("is not running"), "{out}");
    ok(&d.docker(&["rm", "s1"]));
    let out = fails(&d.docker(&["inspect", "s1"]));
    assert!(out.contains("No such object"), "{out}");
    assert!(!d.data_root.join("containers").join(id.trim()).exists());
    d.rm_all();
    assert!(no_mounts_under(&d.data_root));
}

#[test]
fn stdin_with_dash_i() {
    require_root!();
    let d = TestDaemon::start();
    d.load_busybox();
    let mut child = d
        .docker_cmd()
        .args(["run", "--rm", "-i", "busybox", "sh", "-c", "cat; exit 4"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"hi there\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hi there\n");
    assert_eq!(out.status.code(), Some(4));
    d.rm_all();
}

#[test]
fn ps_inspect_wait_kill_restart_rename_and_conflicts() {
    require_root!();
    let d = TestDaemon::start();
    d.load_busybox();
    ok(&d.docker(&[
        "run", "-d", "--name", "web", "-l", "a=b", "busybox", "sleep", "100",
    ]));
    let err = fails(&d.docker(&["run", "-d", "--name", "web", "busybox", "true"]));
    assert!(
        err.contains("Conflict. The container name \"/web\" is already in use"),
        "{err}"
    );
    let v: serde_json::Value = serde_json::from_str(&ok(&d.docker(&["inspect", "web"]))).unwrap();
    let c = &v[0];
    assert_eq!(c["Name"], "/web");
    assert!(c["Image"].as_str().unwrap().starts_with("sha256:"));
    assert_eq!(c["State"]["Status"], "running");
    assert_eq!(c["State"]["Running"], true);
    assert_eq!(c["Config"]["Labels"]["a"], "b");
    assert_eq!(c["Config"]["Cmd"], serde_json::json!(["sleep", "100"]));
    assert_eq!(c["HostConfig"]["LogConfig"]["Type"], "json-file");
    assert_eq!(c["GraphDriver"]["Name"], "overlay2");
    assert!(c["Mounts"].is_array());
    assert!(c["NetworkSettings"].is_object());
    let id = c["Id"].as_str().unwrap().to_string();
    assert_eq!(c["Config"]["Hostname"], &id[..12]);

    let f = ok(&d.docker(&["ps", "-q", "--filter", "label=a=b"]));
    assert_eq!(f.trim(), &id[..12]);
    let f = ok(&d.docker(&["ps", "-q", "--filter", "name=nomatch"]));
    assert!(f.trim().is_empty());

    // wait answers once killed.
    let waiter = d
        .docker_cmd()
        .args(["wait", "web"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    ok(&d.docker(&["kill", "web"]));
    let out = waiter.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "137");

    ok(&d.docker(&["restart", "web"]));
    let st = ok(&d.docker(&["inspect", "-f", "{{.State.Status}}", "web"]));
    assert_eq!(st.trim(), "running");
    ok(&d.docker(&["rename", "web", "web2"]));
    let names = ok(&d.docker(&["ps", "--format", "{{.Names}}"]));
    assert_eq!(names.trim(), "web2");

    // rmi refused while a container uses the image.
    let err = fails(&d.docker(&["rmi", "busybox"]));
    assert!(
        err.contains("container") && err.contains(&id[..12]),
        "{err}"
    );
    d.rm_all();
    ok(&d.docker(&["rmi", "busybox"]));
    assert!(no_mounts_under(&d.data_root));
}

/// A berthd of our own with a fixed exec root, so a second one finds the first one's shims.
struct Berthd {
    child: Option<Child>,
    socket: PathBuf,
}

impl Berthd {
    fn start(dir: &Path) -> Self {
        let socket = dir.join("berth.sock");
        std::fs::write(dir.join("daemon.json"), "{}\n").unwrap();
        let child = Command::new(bin_path("berthd"))
            .arg("-H")
            .arg(format!("unix://{}", socket.display()))
            .arg("--data-root")
            .arg(dir.join("root"))
            .arg("--exec-root")
            .arg(dir.join("exec"))
            .arg("--pidfile")
            .arg(dir.join("berthd.pid"))
            .arg("--config-file")
            .arg(dir.join("daemon.json"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while !ping(&socket) {
            assert!(Instant::now() < deadline, "berthd did not come up");
            std::thread::sleep(Duration::from_millis(20));
        }
        Self {
            child: Some(child),
            socket,
        }
    }

    fn docker(&self, args: &[&str]) -> Output {
        Command::new(docker_cli())
            .env("DOCKER_HOST", format!("unix://{}", self.socket.display()))
            .env_remove("DOCKER_CONTEXT")
            .env_remove("DOCKER_API_VERSION")
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let pid = nix::unistd::Pid::from_raw(i32::try_from(c.id()).unwrap());
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(20);
            while c.try_wait().ok().flatten().is_none() {
                if Instant::now() > deadline {
                    let _ = c.kill();
                    let _ = c.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

impl Drop for Berthd {
    fn drop(&mut self) {
        self.stop();
    }
}

#[test]
fn containers_survive_a_daemon_restart() {
    require_root!();
    let dir = tempfile::Builder::new()
        .prefix("berth-e2e-")
        .tempdir_in("/tmp")
        .unwrap();
    let archive = fixtures::busybox_archive(dir.path());
    let mut d = Berthd::start(dir.path());
    ok(&d.docker(&["load", "-i", archive.to_str().unwrap()]));
    ok(&d.docker(&["run", "-d", "--name", "live", "busybox", "sleep", "300"]));
    ok(&d.docker(&[
        "run",
        "-d",
        "--name",
        "dies",
        "busybox",
        "sh",
        "-c",
        "sleep 1; exit 7",
    ]));
    let pid = ok(&d.docker(&["inspect", "-f", "{{.State.Pid}}", "live"]));
    d.stop();
    // The containers keep running without the daemon.
    assert!(Path::new(&format!("/proc/{}", pid.trim())).exists());
    std::thread::sleep(Duration::from_secs(2));
    let d = Berthd::start(dir.path());
    let st = ok(&d.docker(&["inspect", "-f", "{{.State.Status}} {{.State.Pid}}", "live"]));
    assert_eq!(st.trim(), format!("running {}", pid.trim()));
    let st = ok(&d.docker(&[
        "inspect",
        "-f",
        "{{.State.Status}} {{.State.ExitCode}}",
        "dies",
    ]));
    assert_eq!(st.trim(), "exited 7");
    // The re-attached watcher still sees the exit.
    ok(&d.docker(&["stop", "-t", "1", "live"]));
    let st = ok(&d.docker(&["inspect", "-f", "{{.State.Status}}", "live"]));
    assert_eq!(st.trim(), "exited");
    ok(&d.docker(&["rm", "-f", "live", "dies"]));
    assert!(no_mounts_under(&dir.path().join("root")));
}

/// Lines in a container's log.
fn log_lines(d: &TestDaemon, name: &str) -> usize {
    ok(&d.docker(&["logs", name])).lines().count()
}

#[test]
fn pause_unpause_and_stop_while_paused() {
    require_root!();
    let d = TestDaemon::start();
    d.load_busybox();
    let id = ok(&d.docker(&[
        "run",
        "-d",
        "--name",
        "ticker",
        "busybox",
        "sh",
        "-c",
        "while true; do echo tick; sleep 0.1; done",
    ]));
    let id = id.trim().to_string();
    let err = fails(&d.docker(&["unpause", "ticker"]));
    assert!(
        err.contains(&format!("Container {id} is not paused")),
        "{err}"
    );
    assert_eq!(ok(&d.docker(&["pause", "ticker"])).trim(), "ticker");
    let freezer = format!("/sys/fs/cgroup/freezer/berth/{id}/freezer.state");
    if Path::new(&freezer).exists() {
        assert_eq!(std::fs::read_to_string(&freezer).unwrap().trim(), "FROZEN");
    }
    let ps = ok(&d.docker(&["ps", "--format", "{{.Names}} {{.Status}}"]));
    assert!(
        ps.starts_with("ticker Up ") && ps.trim_end().ends_with("(Paused)"),
        "{ps}"
    );
    let st = ok(&d.docker(&[
        "inspect",
        "-f",
        "{{.State.Status}} {{.State.Paused}} {{.State.Running}}",
        "ticker",
    ]));
    assert_eq!(st.trim(), "paused true true");
    let f = ok(&d.docker(&["ps", "-q", "--filter", "status=paused"]));
    assert_eq!(f.trim(), &id[..12]);
    // Frozen: no new output.
    let n = log_lines(&d, "ticker");
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(log_lines(&d, "ticker"), n);
    let err = fails(&d.docker(&["pause", "ticker"]));
    assert!(err.contains("already paused"), "{err}");

    assert_eq!(ok(&d.docker(&["unpause", "ticker"])).trim(), "ticker");
    let st = ok(&d.docker(&[
        "inspect",
        "-f",
        "{{.State.Status}} {{.State.Paused}}",
        "ticker",
    ]));
    assert_eq!(st.trim(), "running false");
    let deadline = Instant::now() + Duration::from_secs(10);
    while log_lines(&d, "ticker") <= n {
        assert!(Instant::now() < deadline, "no output after unpause");
        std::thread::sleep(Duration::from_millis(100));
    }
    let ps = ok(&d.docker(&["ps", "--format", "{{.Status}}"]));
    assert!(!ps.contains("Paused"), "{ps}");

    // A paused container still stops (thawed so the signal lands).
    ok(&d.docker(&["pause", "ticker"]));
    assert_eq!(
        ok(&d.docker(&["stop", "-t", "1", "ticker"])).trim(),
        "ticker"
    );
    let st = ok(&d.docker(&[
        "inspect",
        "-f",
        "{{.State.Status}} {{.State.Paused}}",
        "ticker",
    ]));
    assert_eq!(st.trim(), "exited false");
    let err = fails(&d.docker(&["pause", "ticker"]));
    assert!(
        err.contains(&format!("Container {id} is not running")),
        "{err}"
    );

    // kill and rm -f of a paused container work too.
    ok(&d.docker(&["start", "ticker"]));
    ok(&d.docker(&["pause", "ticker"]));
    ok(&d.docker(&["kill", "ticker"]));
    let st = ok(&d.docker(&["wait", "ticker"]));
    assert_eq!(st.trim(), "137");
    ok(&d.docker(&["run", "-d", "--name", "p2", "busybox", "sleep", "100"]));
    ok(&d.docker(&["pause", "p2"]));
    ok(&d.docker(&["rm", "-f", "p2"]));
    d.rm_all();
    assert!(no_mounts_under(&d.data_root));
}

#[test]
fn top_shows_the_container_processes() {
    require_root!();
    let d = TestDaemon::start();
    d.load_busybox();
    ok(&d.docker(&["run", "-d", "--name", "sleeper", "busybox", "sleep", "123"]));
    let pid = ok(&d.docker(&["inspect", "-f", "{{.State.Pid}}", "sleeper"]));
    let top = ok(&d.docker(&["top", "sleeper"]));
    let mut lines = top.lines();
    let header = lines.next().unwrap();
    assert!(header.contains("PID") && header.contains("CMD"), "{top}");
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 1, "{top}");
    assert!(rows[0].contains("sleep 123"), "{top}");
    assert!(rows[0].split_whitespace().any(|f| f == pid.trim()), "{top}");
    let top = ok(&d.docker(&["top", "sleeper", "-o", "pid,comm"]));
    assert_eq!(
        top.lines()
            .next()
            .unwrap()
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["PID", "COMMAND"]
    );
    assert!(
        top.lines().nth(1).unwrap().trim_end().ends_with("sleep"),
        "{top}"
    );
    ok(&d.docker(&["stop", "-t", "1", "sleeper"]));
    let err = fails(&d.docker(&["top", "sleeper"]));
    assert!(err.contains("is not running"), "{err}");
    d.rm_all();
    assert!(no_mounts_under(&d.data_root));
}

#[test]
fn container_prune_removes_stopped_containers() {
    require_root!();
    let d = TestDaemon::start();
    d.load_busybox();
    let created = ok(&d.docker(&["create", "--name", "c1", "busybox", "true"]));
    ok(&d.docker(&["run", "--name", "e1", "busybox", "true"]));
    let e1 = ok(&d.docker(&["inspect", "-f", "{{.Id}}", "e1"]));
    ok(&d.docker(&["run", "--name", "k1", "-l", "keep=1", "busybox", "true"]));
    ok(&d.docker(&["run", "-d", "--name", "r1", "busybox", "sleep", "100"]));
    let out = ok(&d.docker(&["container", "prune", "-f", "--filter", "label!=keep"]));
    assert!(out.contains("Deleted Containers:"), "{out}");
    assert!(out.contains(created.trim()), "{out}");
    assert!(out.contains(e1.trim()), "{out}");
    assert!(out.contains("Total reclaimed space:"), "{out}");
    let names = ok(&d.docker(&["ps", "-a", "--format", "{{.Names}}"]));
    let mut names: Vec<&str> = names.lines().collect();
    names.sort_unstable();
    assert_eq!(names, ["k1", "r1"]);
    ok(&d.docker(&["container", "prune", "-f"]));
    let names = ok(&d.docker(&["ps", "-a", "--format", "{{.Names}}"]));
    assert_eq!(names.trim(), "r1");
    d.rm_all();
    assert!(no_mounts_under(&d.data_root));
}
