//! Resource hygiene of the processes berthd runs: a container's process and an exec's see only
//! fds 0–2, the open-files limit is pinned (never above the host's hard limit; the daemon's
//! `--default-ulimit`s apply), and json-file logs rotate by default.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use test_support::daemon::{TestDaemon, ok};
use test_support::require_root;

/// The fds of a process as `ls` prints them, one per line, sorted numerically.
fn fds(listing: &str) -> Vec<u32> {
    let mut v: Vec<u32> = listing
        .split_whitespace()
        .filter_map(|s| s.parse().ok())
        .collect();
    v.sort_unstable();
    v
}

#[test]
fn containers_and_execs_get_only_stdio_fds() {
    require_root!();
    let d = TestDaemon::start();
    d.load_busybox();
    for tty in [false, true] {
        let name = if tty { "fds-tty" } else { "fds" };
        let mut args = vec!["run", "-d", "--name", name];
        if tty {
            args.push("-t");
        }
        args.extend(["busybox", "sleep", "1000"]);
        ok(&d.docker(&args));
        // The container's init (pid 1), seen from an exec.
        let init = ok(&d.docker(&["exec", name, "ls", "/proc/1/fd"]));
        assert_eq!(fds(&init), vec![0, 1, 2], "tty={tty}: {init}");
        // An exec's own process: the shell (kept by the `; true`, not replaced by `ls`).
        let mut exec = vec!["exec"];
        if tty {
            exec.push("-t");
        }
        exec.extend([name, "sh", "-c", "ls /proc/$$/fd; true"]);
        let own = ok(&d.docker(&exec));
        assert_eq!(fds(&own), vec![0, 1, 2], "tty={tty}: {own}");
        ok(&d.docker(&["rm", "-f", name]));
    }
    // A `run` attached from the start (the shim's first process) too.
    let out = ok(&d.docker(&["run", "--rm", "busybox", "sh", "-c", "ls /proc/$$/fd; true"]));
    assert_eq!(fds(&out), vec![0, 1, 2], "{out}");
}

#[test]
fn the_open_files_limit_is_pinned_under_the_hosts_hard_limit() {
    use nix::sys::resource::{Resource, getrlimit};
    require_root!();
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    let want = hard.min(1_048_576);
    let d = TestDaemon::start();
    d.load_busybox();
    let out = ok(&d.docker(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "ulimit -Sn; ulimit -Hn",
    ]));
    let got: Vec<u64> = out.lines().map(|l| l.trim().parse().unwrap()).collect();
    assert_eq!(got, vec![want, want], "{out}");
    // A container's own --ulimit wins, still capped at the host's hard limit.
    let out = ok(&d.docker(&[
        "run",
        "--rm",
        "--ulimit",
        "nofile=512:1024",
        "busybox",
        "sh",
        "-c",
        "ulimit -Sn; ulimit -Hn",
    ]));
    let got: Vec<u64> = out.lines().map(|l| l.trim().parse().unwrap()).collect();
    assert_eq!(got, vec![512.min(want), 1024.min(want)], "{out}");
    // `--default-ulimit`: the daemon's defaults, a container's own still wins per name.
    let d2 = TestDaemon::start_with(&[
        "--default-ulimit",
        "nofile=2048:4096",
        "--default-ulimit",
        "nproc=500",
    ]);
    d2.load_busybox();
    let script = "ulimit -Sn; ulimit -Hn; ulimit -u";
    let out = ok(&d2.docker(&["run", "--rm", "busybox", "sh", "-c", script]));
    let got: Vec<u64> = out.lines().map(|l| l.trim().parse().unwrap()).collect();
    assert_eq!(got, vec![2048.min(want), 4096.min(want), 500], "{out}");
    let out = ok(&d2.docker(&[
        "run",
        "--rm",
        "--ulimit",
        "nofile=100:200",
        "busybox",
        "sh",
        "-c",
        script,
    ]));
    let got: Vec<u64> = out.lines().map(|l| l.trim().parse().unwrap()).collect();
    assert_eq!(got, vec![100, 200, 500], "{out}");
    drop(d2);
    // berthd itself runs with its soft limit raised to the hard one.
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", d.pid().unwrap())).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    let nums: Vec<u64> = line
        .split_whitespace()
        .filter_map(|s| s.parse().ok())
        .collect();
    assert_eq!(nums, vec![hard, hard], "{line}");
}

#[test]
fn json_file_logs_rotate_by_default() {
    require_root!();
    let d = TestDaemon::start();
    d.load_busybox();
    // 25 MB of output: more than two 10 MiB files.
    let id = ok(&d.docker(&[
        "run",
        "-d",
        "busybox",
        "sh",
        "-c",
        "yes 0123456789abcdefghijklmnopqrstuvwxyz | head -c 25000000; echo; echo the-end",
    ]))
    .trim()
    .to_string();
    ok(&d.docker(&["wait", &id]));
    let log_config = ok(&d.docker(&["inspect", "-f", "{{json .HostConfig.LogConfig}}", &id]));
    let v: serde_json::Value = serde_json::from_str(log_config.trim()).unwrap();
    assert_eq!(v["Type"], "json-file", "{v}");
    assert_eq!(v["Config"]["max-size"], "10m", "{v}");
    assert_eq!(v["Config"]["max-file"], "3", "{v}");
    let dir = d.data_root.join("containers").join(&id);
    let mut total = 0;
    for name in [
        format!("{id}-json.log"),
        format!("{id}-json.log.1"),
        format!("{id}-json.log.2"),
    ] {
        let len = std::fs::metadata(dir.join(&name))
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .len();
        assert!(len <= 11 << 20, "{name}: {len} bytes");
        total += len;
    }
    assert!(!dir.join(format!("{id}-json.log.3")).exists());
    assert!(total > 20 << 20, "{total}");
    // The newest lines are still there for `docker logs`.
    let out = d.docker(&["logs", "--tail", "1", &id]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "the-end");
    ok(&d.docker(&["rm", &id]));
    // `--log-opt max-size=-1` at the daemon: no rotation, as dockerd's default.
    drop(d);
    let d = TestDaemon::start_with(&["--log-opt", "max-size=-1"]);
    d.load_busybox();
    let id = ok(&d.docker(&[
        "run",
        "-d",
        "busybox",
        "sh",
        "-c",
        "yes 0123456789abcdefghijklmnopqrstuvwxyz | head -c 12000000",
    ]))
    .trim()
    .to_string();
    ok(&d.docker(&["wait", &id]));
    let dir = d.data_root.join("containers").join(&id);
    assert!(!dir.join(format!("{id}-json.log.1")).exists());
    let len = std::fs::metadata(dir.join(format!("{id}-json.log")))
        .unwrap()
        .len();
    assert!(len > 12_000_000, "{len}");
    ok(&d.docker(&["rm", &id]));
}
