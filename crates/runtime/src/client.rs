//! berthd's side of a shim: start one, and talk to it over `<state-dir>/shim.sock`.
//!
//! Per container, the state directory (`<exec-root>/containers/<id>/`) holds `bundle/config.json`
//! (the OCI spec), `shim.json` ([`ShimConfig`]), `shim.sock`, `shim.pid` and, once the container
//! has exited, `exit.json` ([`ExitStatus`], written atomically by the shim).

use std::io::{BufRead, BufReader};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

use crate::oci_spec::runtime::Spec;
use crate::{Result, RuntimeError};

pub use ::shim::protocol::{ExitStatus, ShimConfig};

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
        let shim = Self {
            state_dir: config.state_dir.clone(),
        };
        match shim.start_inner(shim_binary, config, spec) {
            Ok(pid) => Ok((shim, Started { pid })),
            Err(e) => {
                shim.remove_runtime_state(&config.runtime_root, &config.id);
                let _ = std::fs::remove_dir_all(&config.state_dir);
                Err(e)
            }
        }
    }

    fn start_inner(&self, shim_binary: &Path, config: &ShimConfig, spec: &Spec) -> Result<i32> {
        let dir = &config.state_dir;
        let io = |op: &'static str, path: &Path| {
            let path = path.to_path_buf();
            move |source| RuntimeError::Io { op, path, source }
        };
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir.join("bundle"))
            .map_err(io("create state dir", dir))?;
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
        let mut spec = spec.clone();
        crate::seccomp_cache::precompile(&mut spec);
        let spec_json = serde_json::to_vec(&spec)
            .map_err(|e| RuntimeError::InvalidSpec(format!("runtime spec: {e}")))?;
        let cfg_path = dir.join("bundle/config.json");
        std::fs::write(&cfg_path, spec_json).map_err(io("write", &cfg_path))?;
        let shim_json = dir.join("shim.json");
        let cfg = serde_json::to_vec(config).map_err(|e| self.err(e.to_string()))?;
        std::fs::write(&shim_json, cfg).map_err(io("write", &shim_json))?;
        let _ = std::fs::remove_file(dir.join("exit.json"));

        let line = spawn_shim(shim_binary, &shim_json)?;
        let line = line.as_str();
        if let Some(pid) = line
            .strip_prefix("ok ")
            .or_else(|| line.strip_prefix("created "))
        {
            return pid
                .trim()
                .parse()
                .map_err(|_| self.err(format!("bad readiness line {line:?}")));
        }
        if let Some(msg) = line.strip_prefix("error ") {
            return Err(RuntimeError::StartFailed(msg.to_string()));
        }
        Err(RuntimeError::StartFailed(format!(
            "shim exited without reporting ({line:?})"
        )))
    }

    fn remove_runtime_state(&self, runtime_root: &Path, id: &str) {
        let dir = runtime_root.join(id);
        if !id.is_empty() && dir.exists() {
            if let Ok(mut c) = libcontainer::container::Container::load(dir.clone()) {
                let _ = c.delete(true);
            }
            let _ = std::fs::remove_dir_all(&dir);
        }
    }

    fn id(&self) -> String {
        self.state_dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    fn err(&self, reason: String) -> RuntimeError {
        RuntimeError::Shim {
            id: self.id(),
            reason,
        }
    }

    /// A handle on an existing state directory (after a berthd restart).
    pub fn open(state_dir: &Path) -> Self {
        Self {
            state_dir: state_dir.to_path_buf(),
        }
    }

    /// The state directory.
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    fn shim_pid(&self) -> Option<i32> {
        std::fs::read_to_string(self.state_dir.join("shim.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// Whether the shim process is still there.
    pub fn alive(&self) -> bool {
        self.shim_pid().is_some_and(|pid| {
            pid > 0
                && nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
                // An exited shim not yet reaped by its new parent is a zombie: not alive.
                && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
                    .is_ok_and(|s| s.rsplit_once(") ").is_some_and(|(_, r)| r.starts_with('Z')))
        })
    }

    /// The exit status, if the container has exited (reads `exit.json`).
    pub fn exit_status(&self) -> Option<ExitStatus> {
        let bytes = std::fs::read(self.state_dir.join("exit.json")).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    async fn connect(&self) -> std::io::Result<tokio::net::UnixStream> {
        tokio::net::UnixStream::connect(self.state_dir.join("shim.sock")).await
    }

    /// Sends one request line and reads one reply line (None: no socket, or no reply).
    pub(crate) async fn request(&self, req: serde_json::Value) -> Option<String> {
        let mut sock = self.connect().await.ok()?;
        let mut line = serde_json::to_vec(&req).ok()?;
        line.push(b'\n');
        sock.write_all(&line).await.ok()?;
        let mut reply = String::new();
        let n = tokio::io::BufReader::new(sock)
            .read_line(&mut reply)
            .await
            .ok()?;
        (n > 0).then_some(reply)
    }

    /// Waits until the container exits and returns how. Works whether the shim is still
    /// running (it answers when the process ends) or already gone (reads `exit.json`).
    ///
    /// If the shim died without writing `exit.json` (killed, crashed), the container is
    /// reported as killed: exit code 137 (128 + SIGKILL), not OOM-killed, finished now.
    pub async fn wait(&self) -> Result<ExitStatus> {
        loop {
            if let Some(reply) = self.request(serde_json::json!({"op": "wait"})).await
                && let Ok(st) = serde_json::from_str::<ExitStatus>(&reply)
            {
                return Ok(st);
            }
            if let Some(st) = self.exit_status() {
                return Ok(st);
            }
            if !self.alive() {
                // One more look: the shim writes exit.json before it goes away.
                if let Some(st) = self.exit_status() {
                    return Ok(st);
                }
                return Ok(ExitStatus {
                    exit_code: 137,
                    oom_killed: false,
                    finished_at: crate::logs::format_time(&chrono::Utc::now()),
                });
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    async fn simple(&self, req: serde_json::Value) -> Result<()> {
        let Some(reply) = self.request(req).await else {
            return Err(RuntimeError::NotRunning(self.id()));
        };
        let v: serde_json::Value =
            serde_json::from_str(&reply).map_err(|e| self.err(format!("bad reply: {e}")))?;
        match v.get("error").and_then(|e| e.as_str()) {
            Some(e) => Err(self.err(e.to_string())),
            None => Ok(()),
        }
    }

    /// Sends a signal to the container's init process.
    pub async fn kill(&self, signal: i32) -> Result<()> {
        self.simple(serde_json::json!({"op": "kill", "signal": signal}))
            .await
    }

    /// Resizes the container's pty (rows, cols).
    pub async fn resize(&self, rows: u16, cols: u16) -> Result<()> {
        self.simple(serde_json::json!({"op": "resize", "rows": rows, "cols": cols}))
            .await
    }

    /// Opens an attach stream: the returned socket carries the container's output as Docker's
    /// attach stream (8-byte multiplexed frames unless the container has a tty, raw bytes if it
    /// does) until the process ends, and whatever is written to it goes to the process's stdin;
    /// shutting down the write side is stdin EOF (closes the container's stdin when
    /// `stdin_once`). Output from before the attach is not replayed (logs are for that).
    pub async fn attach(&self, opts: AttachOptions) -> Result<tokio::net::UnixStream> {
        let mut sock = self
            .connect()
            .await
            .map_err(|_| RuntimeError::NotRunning(self.id()))?;
        let req = serde_json::json!({
            "op": "attach", "stdin": opts.stdin, "stdout": opts.stdout, "stderr": opts.stderr,
        });
        let mut line = serde_json::to_vec(&req).map_err(|e| self.err(e.to_string()))?;
        line.push(b'\n');
        sock.write_all(&line)
            .await
            .map_err(|_| RuntimeError::NotRunning(self.id()))?;
        sock.flush()
            .await
            .map_err(|_| RuntimeError::NotRunning(self.id()))?;
        Ok(sock)
    }

    /// Ends a container whose start was never recorded (berthd died between creating it and
    /// saving it as running): libcontainer kills everything in its cgroup and removes its
    /// cgroups and state, the shim (still waiting for its start, or monitoring) is killed by its
    /// pid if it does not go by itself within a second, and the state directory is removed.
    pub fn abandon(&self) -> Result<()> {
        let cfg: Option<crate::exec::ShimFile> = std::fs::read(self.state_dir.join("shim.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        if let Some(cfg) = cfg.as_ref().filter(|c| c.exec.is_none()) {
            self.remove_runtime_state(&cfg.base.runtime_root, &cfg.base.id);
        }
        if let Some(pid) = self.shim_pid().filter(|p| *p > 0) {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
            while self.alive() && std::time::Instant::now() < deadline {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            // Only a shim: after a reboot the pid may be anything.
            let is_shim = std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
                c.split(|b| *b == 0)
                    .any(|a| a == b"shim" || a == b"monitor")
            });
            if self.alive() && is_shim {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
                while self.alive() && std::time::Instant::now() < deadline {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
            }
        }
        self.remove_cgroups();
        self.cleanup()
    }

    /// Kills what is left in the container's cgroups (the spec's `cgroupsPath`) and removes
    /// them, retrying while the kernel still counts exiting tasks (at most about a second).
    fn remove_cgroups(&self) {
        let spec: Option<Spec> = std::fs::read(self.state_dir.join("bundle/config.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        let Some(path) = spec
            .as_ref()
            .and_then(|s| s.linux().as_ref())
            .and_then(|l| l.cgroups_path().clone())
        else {
            return;
        };
        let cgroup = crate::cgroups::Cgroup::new(&path.to_string_lossy());
        for dir in cgroup.existing_dirs() {
            for _ in 0..100 {
                let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
                for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
                match std::fs::remove_dir(&dir) {
                    Err(e) if e.raw_os_error() == Some(nix::libc::EBUSY) => {
                        std::thread::sleep(std::time::Duration::from_millis(10));
                    }
                    _ => break,
                }
            }
        }
    }

    /// Removes the state directory and libcontainer's state, once the container has exited.
    pub fn cleanup(&self) -> Result<()> {
        let cfg: Option<crate::exec::ShimFile> = std::fs::read(self.state_dir.join("shim.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        // An exec shim's config names the container it joined: its state is not the exec's.
        if let Some(cfg) = cfg.filter(|c| c.exec.is_none()) {
            self.remove_runtime_state(&cfg.base.runtime_root, &cfg.base.id);
        }
        match std::fs::remove_dir_all(&self.state_dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(RuntimeError::Io {
                op: "remove state dir",
                path: self.state_dir.clone(),
                source,
            }),
        }
    }
}

/// Whether `bin` is a `berth-shim` this runtime can hand containers to: it runs, and prints the
/// same version line (so the handoff format matches).
pub fn monitor_binary_ok(bin: &Path) -> bool {
    Command::new(bin)
        .arg("version")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .is_ok_and(|o| {
            o.status.success()
                && String::from_utf8_lossy(&o.stdout).trim() == ::shim::container::VERSION_LINE
        })
}

/// Runs `<shim_binary> shim <shim_json>` (which forks the real shim and exits at once) and
/// returns the shim's readiness line, trimmed.
pub(crate) fn spawn_shim(shim_binary: &Path, shim_json: &Path) -> Result<String> {
    let mut child = Command::new(shim_binary)
        .arg("shim")
        .arg(shim_json)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|source| RuntimeError::Io {
            op: "spawn shim",
            path: shim_binary.to_path_buf(),
            source,
        })?;
    let stdout = child.stdout.take();
    let _ = child.wait();
    let mut line = String::new();
    if let Some(out) = stdout {
        let _ = BufReader::new(out).read_line(&mut line);
    }
    Ok(line.trim_end().to_string())
}
