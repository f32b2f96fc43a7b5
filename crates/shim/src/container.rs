//! The container monitor: what a container's shim becomes once libcontainer has created the
//! container (`berth-shim monitor <handoff>`).
//!
//! It takes over the created container from the shim by [`Handoff`]: the init's pid (still its
//! child: the execve kept the process), the control socket's listener, the stdio descriptors,
//! and what to clean up. Gated shims wait for `{"op":"start"}` with attach connections already
//! served; the start is libcontainer's: a "start container" message on the container's
//! `notify.sock`, and `state.json` marked running. After the exit it deletes what libcontainer
//! created (the cgroup directories, the container's state directory) and answers the waiters.
//!
//! It must not know OCI specs or link libcontainer: it is resident beside every container, and
//! its footprint is the shim's footprint.

use std::io::Write;
use std::os::fd::OwnedFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::unistd::Pid;

use crate::logs::{LogWriter, Stream};
use crate::monitor::Monitor;
use crate::protocol::{ShimConfig, reply, report};

/// What `berth-shim version` prints: the handoff format must match between the shim that execs
/// the monitor and the monitor binary, so berthd checks it before using a binary.
pub const VERSION_LINE: &str = concat!("berth-shim ", env!("CARGO_PKG_VERSION"), " handoff 1");

/// What the shim hands to the monitor it becomes (`argv[2]`, JSON). Descriptors are numbers
/// kept open across the execve; each is owned by the monitor from then on.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Handoff {
    pub config: ShimConfig,
    /// The container's init process (created, not started).
    pub pid: i32,
    /// The bound control socket (`shim.sock`).
    pub listener: i32,
    /// The pty master (`-t`).
    pub tty: Option<i32>,
    /// Output pipes' read ends and their streams (no tty).
    pub outputs: Vec<(i32, Stream)>,
    /// The stdin pipe's write end (`-i` without a tty).
    pub stdin: Option<i32>,
    /// libcontainer's directory for the container (`<runtime-root>/<id>`: `notify.sock`,
    /// `state.json`); removed after the exit.
    pub runtime_dir: PathBuf,
    /// The container's cgroup directories, removed after the exit.
    pub cgroup_dirs: Vec<PathBuf>,
    /// The memory cgroup directory, read for the OOM verdict before the removal.
    pub memory_cgroup: Option<PathBuf>,
    /// Whether the cgroups are v2 (unified).
    pub cgroup_v2: bool,
}

/// Runs the monitor for a created container; returns the process exit code.
pub fn run(h: Handoff) -> i32 {
    let take = |fd: i32| linux::process::take_inherited_fd(fd).map_err(|e| e.to_string());
    let listener = match take(h.listener) {
        Ok(fd) => UnixListener::from(fd),
        Err(e) => {
            abandon(&h, &format!("error monitor: {e}"));
            return 1;
        }
    };
    let tty = h.tty.and_then(|fd| take(fd).ok());
    let outputs: Vec<(Option<OwnedFd>, Stream, Vec<u8>)> = h
        .outputs
        .iter()
        .map(|(fd, s)| (take(*fd).ok(), *s, Vec::new()))
        .collect();
    let stdin = h.stdin.and_then(|fd| take(fd).ok());
    let _ = linux::process::ignore_sigpipe(true);
    let mut mask = SigSet::empty();
    mask.add(Signal::SIGCHLD);
    let _ = mask.thread_block();
    let sigfd = match SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC) {
        Ok(s) => s,
        Err(e) => {
            abandon(&h, &format!("error signalfd: {e}"));
            return 1;
        }
    };
    let cfg = h.config.clone();
    let sock_path = cfg.state_dir.join("shim.sock");
    let pid = Pid::from_raw(h.pid);
    let _ = listener.set_nonblocking(true);
    let mut monitor = Monitor::new(cfg.clone(), pid, None, Vec::new(), None, None);

    // The start: at once, or on the gate's request.
    let starter = if cfg.gated {
        match monitor.await_start(&listener) {
            Some(s) => Some(s),
            None => {
                // Nobody started it: the created container goes away.
                kill_and_reap(pid);
                cleanup(&h);
                let _ = std::fs::remove_file(&sock_path);
                return 0;
            }
        }
    } else {
        None
    };
    if let Err(e) = start(&h.runtime_dir) {
        match starter {
            Some(s) => reply(s, &serde_json::json!({"error": e})),
            None => report(&format!("error {e}")),
        }
        for c in monitor.clients.drain(..) {
            let _ = c.shutdown();
        }
        kill_and_reap(pid);
        cleanup(&h);
        let _ = std::fs::remove_file(&sock_path);
        return 0;
    }
    match starter {
        Some(s) => reply(s, &serde_json::json!({"pid": pid.as_raw()})),
        None => report(&format!("ok {pid}")),
    }

    monitor.set_stdio(tty, outputs, stdin);
    monitor.set_log(LogWriter::open(&cfg.log_path, cfg.log_max_size, cfg.log_max_files).ok());
    let status = monitor.serve(&listener, &sigfd);
    monitor.finish(
        status,
        || {
            h.memory_cgroup
                .as_deref()
                .is_some_and(|d| oom_killed(d, h.cgroup_v2))
        },
        || cleanup(&h),
    );
    let _ = std::fs::remove_file(&sock_path);
    0
}

/// Ends a handoff that could not be taken: the readiness line (for an ungated spawner), the
/// container killed and removed.
fn abandon(h: &Handoff, line: &str) {
    if !h.config.gated {
        report(line);
    }
    kill_and_reap(Pid::from_raw(h.pid));
    cleanup(h);
    let _ = std::fs::remove_file(h.config.state_dir.join("shim.sock"));
}

fn kill_and_reap(pid: Pid) {
    if pid.as_raw() > 0 {
        let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
        let _ = nix::sys::wait::waitpid(pid, None);
    }
}

/// libcontainer's start: tells the waiting init to exec the process, then records the
/// container as running in its `state.json` (which an exec's tenant builder reads).
fn start(runtime_dir: &Path) -> Result<(), String> {
    // Relative to the directory: socket paths are limited to 108 bytes.
    let _ = nix::unistd::chdir(runtime_dir);
    let sent = UnixStream::connect("notify.sock")
        .and_then(|mut s| s.write_all(b"start container"))
        .map_err(|e| format!("notify the container's init: {e}"));
    let _ = nix::unistd::chdir("/");
    sent?;
    let state = runtime_dir.join("state.json");
    let mut v: serde_json::Value = std::fs::read(&state)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| format!("read {}", state.display()))?;
    v["status"] = serde_json::Value::from("running");
    let tmp = runtime_dir.join(".state.json.tmp");
    serde_json::to_vec(&v)
        .map_err(std::io::Error::other)
        .and_then(|b| std::fs::write(&tmp, b))
        .and_then(|()| std::fs::rename(&tmp, &state))
        .map_err(|e| format!("write {}: {e}", state.display()))
}

/// Deletes what libcontainer created for the container: its cgroups (retried while the kernel
/// still counts exiting tasks in them) and its state directory.
fn cleanup(h: &Handoff) {
    for dir in &h.cgroup_dirs {
        for _ in 0..50 {
            match std::fs::remove_dir(dir) {
                Err(e) if e.raw_os_error() == Some(nix::libc::EBUSY) => {
                    std::thread::sleep(Duration::from_millis(5));
                }
                _ => break,
            }
        }
    }
    let _ = std::fs::remove_dir_all(&h.runtime_dir);
}

/// Whether the OOM killer hit the memory cgroup in `dir`: `oom_kill` in `memory.events` (v2) or
/// `memory.oom_control` (v1; kernels without the counter: the fail count with the peak at the
/// limit).
pub fn oom_killed(dir: &Path, v2: bool) -> bool {
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).ok();
    let number = |f: &str| read(f).and_then(|t| t.trim().parse::<u64>().ok());
    let file = if v2 {
        "memory.events"
    } else {
        "memory.oom_control"
    };
    let Some(text) = read(file) else {
        return false;
    };
    let counter = text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == "oom_kill").then(|| v.trim().parse::<u64>().ok())?
    });
    if let Some(n) = counter {
        return n > 0;
    }
    if v2 {
        return false;
    }
    let failcnt = number("memory.failcnt").unwrap_or(0);
    let max = number("memory.max_usage_in_bytes").unwrap_or(0);
    let limit = number("memory.limit_in_bytes").unwrap_or(u64::MAX);
    failcnt > 0 && max >= limit
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oom_verdicts() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        assert!(!oom_killed(p, false));
        std::fs::write(
            p.join("memory.oom_control"),
            "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n",
        )
        .unwrap();
        assert!(oom_killed(p, false));
        std::fs::write(
            p.join("memory.oom_control"),
            "oom_kill_disable 0\nunder_oom 0\n",
        )
        .unwrap();
        std::fs::write(p.join("memory.failcnt"), "3\n").unwrap();
        std::fs::write(p.join("memory.max_usage_in_bytes"), "1048576\n").unwrap();
        std::fs::write(p.join("memory.limit_in_bytes"), "1048576\n").unwrap();
        assert!(oom_killed(p, false));
        std::fs::write(
            p.join("memory.events"),
            "low 0\nhigh 0\nmax 2\noom 1\noom_kill 0\n",
        )
        .unwrap();
        assert!(!oom_killed(p, true));
        std::fs::write(p.join("memory.events"), "low 0\noom 1\noom_kill 1\n").unwrap();
        assert!(oom_killed(p, true));
    }

    #[test]
    fn handoff_round_trips() {
        let h = Handoff {
            config: ShimConfig {
                id: "abc".into(),
                gated: true,
                ..Default::default()
            },
            pid: 42,
            listener: 5,
            tty: None,
            outputs: vec![(6, Stream::Stdout), (7, Stream::Stderr)],
            stdin: Some(8),
            runtime_dir: "/run/berth/runtime/abc".into(),
            cgroup_dirs: vec!["/sys/fs/cgroup/memory/berth/abc".into()],
            memory_cgroup: Some("/sys/fs/cgroup/memory/berth/abc".into()),
            cgroup_v2: false,
        };
        let back: Handoff = serde_json::from_slice(&serde_json::to_vec(&h).unwrap()).unwrap();
        assert_eq!(back.outputs, h.outputs);
        assert_eq!(back.stdin, Some(8));
        assert!(back.config.gated);
    }
}
