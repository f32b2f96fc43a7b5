//! berthd's side of a shim: start one, and talk to it over `<state-dir>/shim.sock`.
//!
//! Per container, the state directory (`<exec-root>/containers/<id>/`) holds `bundle/config.json`
//! (the OCI spec), `shim.json` ([`ShimConfig`]), `shim.sock`, `shim.pid` and, once the container
//! has exited, `exit.json` ([`ExitStatus`], written atomically by the shim).

use std::path::{Path, PathBuf};

use crate::Result;
use crate::oci_spec::runtime::Spec;

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

/// A started container: its init process's host PID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Started {
    pub pid: i32,
}

/// What an attach connection carries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AttachOptions {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
}

/// A handle on one container's shim (cheap; holds only its state directory).
#[derive(Debug, Clone)]
pub struct Shim {
    state_dir: PathBuf,
}

impl Shim {
    /// Writes the bundle and `shim.json`, starts `<shim_binary> shim <state_dir>/shim.json`
    /// (detached: it is not berthd's child once running), and waits until the container's
    /// process has started, or returns the start failure ([`crate::RuntimeError::StartFailed`],
    /// keeping the runtime's wording). Nothing is left behind on failure.
    pub fn start(shim_binary: &Path, config: &ShimConfig, spec: &Spec) -> Result<(Self, Started)> {
        let _ = (shim_binary, config, spec);
        unimplemented!()
    }

    /// A handle on an existing state directory (after a berthd restart).
    pub fn open(state_dir: &Path) -> Self {
        Self { state_dir: state_dir.to_path_buf() }
    }

    /// The state directory.
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// Whether the shim process is still there.
    pub fn alive(&self) -> bool {
        unimplemented!()
    }

    /// The exit status, if the container has exited (reads `exit.json`).
    pub fn exit_status(&self) -> Option<ExitStatus> {
        unimplemented!()
    }

    /// Waits until the container exits and returns how. Works whether the shim is still
    /// running (it answers when the process ends) or already gone (reads `exit.json`).
    pub async fn wait(&self) -> Result<ExitStatus> {
        unimplemented!()
    }

    /// Sends a signal to the container's init process.
    pub async fn kill(&self, signal: i32) -> Result<()> {
        let _ = signal;
        unimplemented!()
    }

    /// Resizes the container's pty (rows, cols).
    pub async fn resize(&self, rows: u16, cols: u16) -> Result<()> {
        let _ = (rows, cols);
        unimplemented!()
    }

    /// Opens an attach stream: the returned socket carries the container's output as Docker's
    /// attach stream (8-byte multiplexed frames unless the container has a tty, raw bytes if it
    /// does) until the process ends, and whatever is written to it goes to the process's stdin;
    /// shutting down the write side is stdin EOF (closes the container's stdin when
    /// `stdin_once`). Output from before the attach is not replayed (logs are for that).
    pub async fn attach(&self, opts: AttachOptions) -> Result<tokio::net::UnixStream> {
        let _ = opts;
        unimplemented!()
    }

    /// Removes the state directory and libcontainer's state, once the container has exited.
    pub fn cleanup(&self) -> Result<()> {
        unimplemented!()
    }
}
