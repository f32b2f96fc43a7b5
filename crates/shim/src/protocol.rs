//! What berthd and a shim say to each other: the shim's configuration (`shim.json`), the exit
//! record (`exit.json`), and the request lines of the control socket (`shim.sock`).
//!
//! The control protocol: each connection sends one JSON line:
//! - `{"op":"wait"}` → when the process has exited, one line: the [`ExitStatus`] JSON.
//! - `{"op":"kill","signal":N}` → `{"ok":true}` or `{"error":"…"}`.
//! - `{"op":"resize","rows":R,"cols":C}` → `{"ok":true}` or `{"error":"…"}`.
//! - `{"op":"attach","stdin":b,"stdout":b,"stderr":b}` → no reply line: from then on the
//!   connection carries the output (8-byte frames `[stream,0,0,0,len BE u32]` + payload,
//!   stdout = 1, stderr = 2; raw bytes with a tty) and its incoming bytes are the process's
//!   stdin. Read EOF on it = stdin EOF (closes the process's stdin when `stdin_once`).
//! - `{"op":"start"}` (gated shims only, before the start) → `{"pid":N}` or `{"error":"…"}`.

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What the shim needs to run one container. Written to `<state_dir>/shim.json`.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct ShimConfig {
    /// The container ID.
    pub id: String,
    /// `<exec-root>/containers/<id>`: bundle, socket, pid and exit files.
    pub state_dir: PathBuf,
    /// libcontainer's state root (`<exec-root>/runtime`).
    pub runtime_root: PathBuf,
    /// The json-file log to append to.
    pub log_path: PathBuf,
    /// json-file `max-size` in bytes (None: no rotation) and `max-file`.
    pub log_max_size: Option<u64>,
    pub log_max_files: u32,
    /// A pty for the process (`-t`).
    pub tty: bool,
    /// Keep a stdin pipe (or the pty input) open for attach (`-i`).
    pub open_stdin: bool,
    /// Close the container's stdin when the first attached client's stdin ends.
    pub stdin_once: bool,
    /// Initial console size (rows, cols).
    pub console_size: Option<(u16, u16)>,
    /// Create the container, report `created <pid>`, and start its process only on
    /// `{"op":"start"}`, so attach connections made in between see every byte, as if they had
    /// been there from the first.
    #[serde(default)]
    pub gated: bool,
    /// The small monitor binary (`berth-shim`) the shim becomes once the container is created;
    /// None, or a failed exec, keeps monitoring in the shim process itself.
    #[serde(default)]
    pub monitor: Option<PathBuf>,
}

/// How a container's init process ended. Written once to `exit.json`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ExitStatus {
    /// The exit code, or 128 + signal number when killed by a signal.
    pub exit_code: i32,
    /// Killed by the kernel's OOM killer (cgroup memory events).
    pub oom_killed: bool,
    /// RFC 3339 with nanoseconds.
    pub finished_at: String,
}

/// One request line on the control socket.
#[derive(Debug, Default, serde::Deserialize)]
pub struct Request {
    pub op: String,
    #[serde(default)]
    pub stdin: bool,
    #[serde(default)]
    pub stdout: bool,
    #[serde(default)]
    pub stderr: bool,
    #[serde(default)]
    pub signal: i32,
    #[serde(default)]
    pub rows: u16,
    #[serde(default)]
    pub cols: u16,
}

/// `{"ok":true}` or `{"error":"…"}`.
pub fn ok_or_error(r: Result<(), String>) -> serde_json::Value {
    match r {
        Ok(()) => serde_json::json!({"ok": true}),
        Err(e) => serde_json::json!({"error": e}),
    }
}

/// Writes one JSON reply line (blocking, 1 s at most) and closes the connection.
pub fn reply<T: serde::Serialize>(mut sock: UnixStream, v: &T) {
    let _ = sock.set_nonblocking(false);
    let _ = sock.set_write_timeout(Some(Duration::from_secs(1)));
    if let Ok(mut line) = serde_json::to_vec(v) {
        line.push(b'\n');
        let _ = sock.write_all(&line);
    }
}

/// Writes `exit.json` atomically (temp + rename; fsynced unless the state directory is on
/// tmpfs, as the exec root normally is, where there is no disk to reach).
pub fn write_exit(state_dir: &Path, status: &ExitStatus) -> std::io::Result<()> {
    let tmp = state_dir.join(".exit.json.tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(&serde_json::to_vec(status).map_err(std::io::Error::other)?)?;
    let durable = !nix::sys::statfs::fstatfs(&f)
        .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::TMPFS_MAGIC);
    if durable {
        f.sync_all()?;
    }
    std::fs::rename(&tmp, state_dir.join("exit.json"))?;
    if durable && let Ok(dir) = std::fs::File::open(state_dir) {
        let _ = dir.sync_all();
    }
    Ok(())
}

/// Writes the readiness line on stdout (to the process that spawned the shim), then points
/// stdout at /dev/null.
pub fn report(line: &str) {
    use std::os::fd::AsRawFd;
    let mut out = std::io::stdout();
    let _ = out.write_all(format!("{line}\n").as_bytes());
    let _ = out.flush();
    if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
        let _ = nix::unistd::dup2(null.as_raw_fd(), 1);
    }
}
