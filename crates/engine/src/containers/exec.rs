//! `docker exec`: exec records and sessions.
//!
//! Records live in memory only, as Docker keeps them: they are lost with berthd, listed in the
//! container's `ExecIDs` while created or running, inspectable until a few minutes after they
//! ended, and dropped with their container. A start resolves user, environment and working
//! directory against the container (Docker's defaults), spawns the exec's own shim
//! (`runtime::exec`) in `<exec-root>/exec/<exec-id>/` (`e/<short-id>` when the exec root is too
//! deep for socket paths), attaches the caller's stream to it *before* telling it to start (so
//! no output is lost), and watches the exit: the exit code is recorded before the attached
//! stream is closed, because the CLI inspects the exec right after. A start failure is written
//! into the stream with Docker's wording and recorded as 126/127.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use api_types::models::ExecConfig;
use runtime::logs::Stream;
use runtime::{AttachOptions, ExecSpec, Shim};
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;

use super::attach::frame;
use super::{Containers, Ctr, setup};
use crate::{EngineError, Result};

/// How long an ended exec stays inspectable (moby's exec GC runs every 5 minutes).
const KEEP_ENDED: Duration = Duration::from_secs(5 * 60);
/// How long a resize waits for the exec to start (moby: 10 s).
const RESIZE_WAIT: Duration = Duration::from_secs(10);

/// `POST /exec/{id}/start` options.
#[derive(Debug, Clone, Default)]
pub struct ExecStartRequest {
    pub detach: bool,
    /// (rows, cols), overriding the size given at create.
    pub console_size: Option<(u16, u16)>,
}

#[derive(Debug, Default)]
struct ExecState {
    /// A start was requested (a second one is refused).
    started: bool,
    running: bool,
    exit_code: Option<i64>,
    pid: i64,
    ended_at: Option<Instant>,
}

/// Start and exit, for sessions and resizes.
#[derive(Debug, Clone, Copy, Default)]
struct ExecNotice {
    running: bool,
    exited: bool,
}

/// One exec instance.
#[derive(Debug)]
pub(crate) struct Exec {
    id: String,
    container_id: String,
    config: ExecConfig,
    state: Mutex<ExecState>,
    notice: watch::Sender<ExecNotice>,
    state_dir: PathBuf,
}

impl Exec {
    fn state(&self) -> MutexGuard<'_, ExecState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn tty(&self) -> bool {
        self.config.tty.unwrap_or(false)
    }

    fn cmd(&self) -> Vec<String> {
        self.config.cmd.clone().unwrap_or_default()
    }

    fn shim(&self) -> Shim {
        Shim::open(&self.state_dir)
    }
}

/// All exec instances, by ID.
#[derive(Debug, Default)]
pub(crate) struct ExecStore {
    map: Mutex<HashMap<String, Arc<Exec>>>,
    swept: AtomicBool,
}

impl ExecStore {
    fn map(&self) -> MutexGuard<'_, HashMap<String, Arc<Exec>>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn get(&self, id: &str) -> Result<Arc<Exec>> {
        self.map()
            .get(id)
            .cloned()
            .ok_or_else(|| EngineError::NoSuchExec(id.to_string()))
    }
}

/// moby's `ReplaceOrAppendEnvValues`: `K=V` in `over` replaces `K` in `base` or is appended;
/// a bare `K` removes it.
pub(crate) fn replace_or_append(base: Vec<String>, over: &[String]) -> Vec<String> {
    let key = |e: &str| e.split('=').next().unwrap_or_default().to_string();
    let mut out = base;
    for o in over {
        let k = key(o);
        let pos = out.iter().position(|e| key(e) == k);
        match (o.contains('='), pos) {
            (true, Some(i)) => out[i] = o.clone(),
            (true, None) => out.push(o.clone()),
            (false, Some(i)) => {
                out.remove(i);
            }
            (false, None) => {}
        }
    }
    out
}

/// The exec's environment as moby builds it: PATH, HOSTNAME, TERM (with a tty), then the
/// container's `Env`, then the exec's `Env`. HOME is left to the runtime (the exec user's).
pub(crate) fn exec_env(
    hostname: &str,
    tty: bool,
    container_env: &[String],
    exec_env: &[String],
) -> Vec<String> {
    let mut base = vec![
        setup::DEFAULT_PATH.to_string(),
        format!("HOSTNAME={hostname}"),
    ];
    if tty {
        base.push("TERM=xterm".into());
    }
    let base = replace_or_append(base, container_env);
    replace_or_append(base, exec_env)
}

/// The exit code Docker records when an exec cannot start.
fn start_failure_code(msg: &str) -> i64 {
    if msg.contains("executable file not found") || msg.contains("no such file or directory") {
        127
    } else {
        126
    }
}

fn size_of(v: Option<&Vec<usize>>) -> Option<(u16, u16)> {
    v.filter(|v| v.len() == 2 && v[0] > 0 && v[1] > 0).map(|v| {
        (
            u16::try_from(v[0]).unwrap_or(u16::MAX),
            u16::try_from(v[1]).unwrap_or(u16::MAX),
        )
    })
}

fn read_in(root: &linux::fs::Root, rel: &str) -> String {
    let mut s = String::new();
    if let Ok(mut f) = root.open_file(Path::new(rel)) {
        let _ = f.read_to_string(&mut s);
    }
    s
}

impl Containers {
    fn exec_state_dir(&self, id: &str) -> PathBuf {
        if self.long_paths_fit() {
            self.exec_root.join("exec").join(id)
        } else {
            self.exec_root.join("e").join(&id[..12.min(id.len())])
        }
    }

    /// The container, if it is running and not paused or restarting (moby's texts).
    fn active(&self, reference: &str) -> Result<Arc<Ctr>> {
        let ctr = self.get(reference)?;
        let r = ctr.rec();
        if !r.state.running {
            return Err(EngineError::Conflict(format!(
                "container {} is not running",
                r.id
            )));
        }
        if r.state.paused {
            return Err(EngineError::Conflict(format!(
                "Container {reference} is paused, unpause the container before exec"
            )));
        }
        if r.state.restarting {
            return Err(EngineError::Conflict(format!(
                "Container {} is restarting, wait until the container is running",
                r.id
            )));
        }
        drop(r);
        Ok(ctr)
    }

    /// Removes exec shim directories left by an earlier berthd whose shims are gone.
    fn sweep_exec_dirs(&self) {
        if self.execs.swept.swap(true, Ordering::SeqCst) {
            return;
        }
        for sub in ["exec", "e"] {
            let Ok(entries) = std::fs::read_dir(self.exec_root.join(sub)) else {
                continue;
            };
            for e in entries.flatten() {
                let shim = Shim::open(&e.path());
                if !shim.alive() {
                    let _ = shim.cleanup();
                }
            }
        }
    }

    /// `POST /containers/{id}/exec`: the new exec's ID.
    pub(crate) fn exec_create(&self, reference: &str, config: ExecConfig) -> Result<String> {
        let ctr = self.active(reference)?;
        if config.cmd.as_ref().is_none_or(Vec::is_empty) {
            return Err(EngineError::InvalidRequest(
                "No exec command specified".into(),
            ));
        }
        self.sweep_exec_dirs();
        let id = super::names::new_id();
        let exec = Arc::new(Exec {
            id: id.clone(),
            container_id: ctr.id.clone(),
            config,
            state: Mutex::new(ExecState::default()),
            notice: watch::Sender::new(ExecNotice::default()),
            state_dir: self.exec_state_dir(&id),
        });
        {
            let mut map = self.execs.map();
            map.retain(|_, e| e.state().ended_at.is_none_or(|t| t.elapsed() < KEEP_ENDED));
            map.insert(id.clone(), Arc::clone(&exec));
        }
        let action = format!("exec_create: {}", exec.cmd().join(" "));
        self.event(&ctr, &action, &[("execID", &id)]);
        Ok(id)
    }

    /// `GET /exec/{id}/json`.
    pub(crate) fn exec_inspect(&self, id: &str) -> Result<Value> {
        let e = self.execs.get(id)?;
        let s = e.state();
        let cmd = e.cmd();
        let mut process = json!({
            "tty": e.tty(),
            "entrypoint": cmd.first().cloned().unwrap_or_default(),
            "arguments": cmd.iter().skip(1).collect::<Vec<_>>(),
            "privileged": e.config.privileged.unwrap_or(false),
        });
        if let Some(u) = e.config.user.as_deref().filter(|u| !u.is_empty()) {
            process["user"] = json!(u);
        }
        Ok(json!({
            "ID": e.id,
            "Running": s.running,
            "ExitCode": s.exit_code,
            "ProcessConfig": process,
            "OpenStdin": e.config.attach_stdin.unwrap_or(false),
            "OpenStderr": e.config.attach_stderr.unwrap_or(false),
            "OpenStdout": e.config.attach_stdout.unwrap_or(false),
            "CanRemove": false,
            "ContainerID": e.container_id,
            "DetachKeys": e.config.detach_keys.clone().unwrap_or_default(),
            "Pid": s.pid,
        }))
    }

    /// The container's `ExecIDs`: its execs that are created or running (null when none).
    pub(crate) fn exec_ids(&self, container_id: &str) -> Value {
        let ids: Vec<String> = self
            .execs
            .map()
            .values()
            .filter(|e| e.container_id == container_id && e.state().exit_code.is_none())
            .map(|e| e.id.clone())
            .collect();
        if ids.is_empty() {
            Value::Null
        } else {
            json!(ids)
        }
    }

    /// Forgets the execs of a removed container.
    pub(crate) fn forget_execs(&self, container_id: &str) {
        self.execs
            .map()
            .retain(|_, e| e.container_id != container_id);
    }

    /// Validates an exec before a hijack; returns whether it has a tty.
    pub(crate) fn exec_check(&self, id: &str) -> Result<bool> {
        Ok(self.execs.get(id)?.tty())
    }

    /// `POST /exec/{id}/resize`.
    pub(crate) async fn exec_resize(&self, id: &str, rows: u16, cols: u16) -> Result<()> {
        let e = self.execs.get(id)?;
        let mut rx = e.notice.subscribe();
        let now = tokio::time::timeout(RESIZE_WAIT, rx.wait_for(|n| n.running || n.exited))
            .await
            .map_err(|_| {
                EngineError::Conflict(format!("timeout waiting for exec session {id} ready"))
            })?
            .map(|n| *n)
            .unwrap_or_default();
        if !now.running {
            return Err(EngineError::Conflict(format!("exec {id} is not running")));
        }
        Ok(e.shim().resize(rows, cols).await?)
    }

    /// Claims the start of an exec (409 when started before).
    fn claim(&self, id: &str) -> Result<Arc<Exec>> {
        let e = self.execs.get(id)?;
        let mut s = e.state();
        if s.exit_code.is_some() {
            return Err(EngineError::Conflict(format!(
                "Error: Exec command {} has already run",
                e.id
            )));
        }
        if s.started {
            return Err(EngineError::Conflict(format!(
                "Error: Exec command {} is already running",
                e.id
            )));
        }
        s.started = true;
        drop(s);
        Ok(e)
    }

    /// Records the end of an exec and wakes its session.
    fn record_exit(&self, e: &Exec, code: i64) {
        {
            let mut s = e.state();
            s.running = false;
            s.exit_code = Some(code);
            s.ended_at = Some(Instant::now());
        }
        e.notice.send_modify(|n| {
            n.running = false;
            n.exited = true;
        });
    }

    /// Resolves the exec against the container and spawns its shim (not started yet).
    async fn prepare(&self, e: &Exec, req: &ExecStartRequest) -> Result<(Arc<Ctr>, Shim)> {
        let ctr = self.active(&e.container_id)?;
        let rec = ctr.snapshot();
        let dirs = self.dirs(&ctr.id);
        let cfg = e.config.clone();
        let tty = e.tty();
        let console_size = req
            .console_size
            .or_else(|| size_of(cfg.console_size.as_ref()));
        let container_shim = self.shim(&ctr.id);
        let state_dir = e.state_dir.clone();
        let shim = tokio::task::spawn_blocking(move || -> Result<Shim> {
            let root = linux::fs::Root::open(&dirs.rootfs())?;
            let user = cfg
                .user
                .clone()
                .filter(|u| !u.is_empty())
                .or_else(|| rec.config.user.clone())
                .unwrap_or_default();
            let (user, _home) = setup::resolve_user(
                &user,
                &read_in(&root, "etc/passwd"),
                &read_in(&root, "etc/group"),
                rec.host_config.group_add.as_deref().unwrap_or_default(),
            )?;
            let env = exec_env(
                rec.config.hostname.as_deref().unwrap_or_default(),
                tty,
                rec.config.env.as_deref().unwrap_or_default(),
                cfg.env.as_deref().unwrap_or_default(),
            );
            let cwd = cfg
                .working_dir
                .clone()
                .filter(|w| !w.is_empty())
                .or_else(|| rec.config.working_dir.clone().filter(|w| !w.is_empty()))
                .unwrap_or_else(|| "/".into());
            let spec = ExecSpec {
                args: cfg.cmd.clone().unwrap_or_default(),
                env,
                cwd,
                uid: user.uid,
                gid: user.gid,
                additional_gids: user.additional_gids,
                privileged: cfg.privileged.unwrap_or(false),
                tty,
                open_stdin: cfg.attach_stdin.unwrap_or(false),
                console_size: if tty { console_size } else { None },
            };
            Ok(container_shim.spawn_exec(Path::new("/proc/self/exe"), &state_dir, &spec)?)
        })
        .await
        .map_err(|_| EngineError::TaskFailed { what: "exec start" })??;
        Ok((ctr, shim))
    }

    /// Starts the prepared shim's process and the exit watcher.
    async fn launch(self: &Arc<Self>, e: &Arc<Exec>, ctr: &Ctr, shim: Shim) -> Result<()> {
        match shim.start_process().await {
            Ok(pid) => {
                {
                    let mut s = e.state();
                    s.running = true;
                    s.pid = i64::from(pid);
                }
                e.notice.send_modify(|n| n.running = true);
                let action = format!("exec_start: {}", e.cmd().join(" "));
                self.event(ctr, &action, &[("execID", &e.id)]);
                let this = Arc::clone(self);
                let e = Arc::clone(e);
                tokio::spawn(async move { this.watch_exec(e, shim).await });
                Ok(())
            }
            Err(err) => {
                let msg = match err {
                    runtime::RuntimeError::StartFailed(m) => m,
                    other => other.to_string(),
                };
                let _ = tokio::task::spawn_blocking(move || shim.cleanup()).await;
                self.record_exit(e, start_failure_code(&msg));
                Err(EngineError::StartFailed(msg))
            }
        }
    }

    /// Waits for the exec's exit, records it, removes its shim directory.
    async fn watch_exec(self: Arc<Self>, e: Arc<Exec>, shim: Shim) {
        let code = match shim.wait().await {
            Ok(st) => i64::from(st.exit_code),
            Err(err) => {
                tracing::warn!(exec = %e.id, error = %err, "lost the exec's shim");
                137
            }
        };
        self.record_exit(&e, code);
        if let Ok(ctr) = self.get(&e.container_id) {
            self.event(
                &ctr,
                "exec_die",
                &[("execID", &e.id), ("exitCode", &code.to_string())],
            );
        }
        let _ = tokio::task::spawn_blocking(move || shim.cleanup()).await;
    }

    /// Waits until the exec's process runs or ended (for the healthcheck's timeout, which
    /// starts only once the probe runs, as moby's).
    pub(super) async fn exec_wait_started(&self, id: &str) {
        let Ok(e) = self.execs.get(id) else { return };
        let mut rx = e.notice.subscribe();
        let _ = rx.wait_for(|n| n.running || n.exited).await;
    }

    /// Sends `signal` to a running exec's process (a healthcheck past its timeout).
    pub(super) async fn exec_kill(&self, id: &str, signal: i32) -> Result<()> {
        let e = self.execs.get(id)?;
        Ok(e.shim().kill(signal).await?)
    }

    /// Drops an exec record at once (healthcheck probes are not kept for inspection).
    pub(super) fn forget_exec(&self, id: &str) {
        self.execs.map().remove(id);
    }

    /// Records a failure before the shim ran (container gone, bad user…).
    fn fail_early(&self, e: &Exec, err: &EngineError) {
        self.record_exit(e, start_failure_code(&err.to_string()));
    }

    /// `POST /exec/{id}/start` with `Detach`: starts and returns.
    pub(crate) async fn exec_start_detached(
        self: &Arc<Self>,
        id: &str,
        req: ExecStartRequest,
    ) -> Result<()> {
        let e = self.claim(id)?;
        let (ctr, shim) = match self.prepare(&e, &req).await {
            Ok(x) => x,
            Err(err) => {
                self.fail_early(&e, &err);
                return Err(err);
            }
        };
        self.launch(&e, &ctr, shim).await
    }

    /// `POST /exec/{id}/start` attached: runs the session on `client` (the hijacked
    /// connection) until the process ends. Errors after the hijack go into the stream.
    pub(crate) async fn exec_start_attached<S>(
        self: &Arc<Self>,
        id: &str,
        req: ExecStartRequest,
        client: S,
    ) -> Result<()>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (mut cr, mut cw) = tokio::io::split(client);
        let tty = self.execs.get(id).is_ok_and(|e| e.tty());
        // moby writes errors after the hijack on stdout, followed by CRLF.
        let say = |msg: String| frame(tty, Stream::Stdout, format!("{msg}\r\n").as_bytes());
        let e = match self.claim(id) {
            Ok(e) => e,
            Err(err) => {
                let _ = cw.write_all(&say(err.to_string())).await;
                let _ = cw.shutdown().await;
                return Err(err);
            }
        };
        let prepared = self.prepare(&e, &req).await;
        let (ctr, shim) = match prepared {
            Ok(x) => x,
            Err(err) => {
                self.fail_early(&e, &err);
                let _ = cw.write_all(&say(err.to_string())).await;
                let _ = cw.shutdown().await;
                return Err(err);
            }
        };
        let stdin = e.config.attach_stdin.unwrap_or(false);
        let attached = shim
            .attach(AttachOptions {
                stdin,
                stdout: e.config.attach_stdout.unwrap_or(false),
                stderr: e.config.attach_stderr.unwrap_or(false),
            })
            .await;
        let mut rx = e.notice.subscribe();
        if let Err(err) = self.launch(&e, &ctr, shim).await {
            let _ = cw.write_all(&say(err.to_string())).await;
            let _ = cw.shutdown().await;
            return Err(err);
        }
        let sock = match attached {
            Ok(s) => s,
            Err(err) => {
                tracing::debug!(exec = %e.id, error = %err, "exec attach");
                let _ = rx.wait_for(|n| n.exited).await;
                let _ = cw.shutdown().await;
                return Ok(());
            }
        };
        let (mut sr, mut sw) = sock.into_split();
        let input = tokio::spawn(async move {
            if stdin {
                let _ = tokio::io::copy(&mut cr, &mut sw).await;
                let _ = sw.shutdown().await;
            } else {
                // Without stdin, the client's half-close is ignored.
                let mut sink = [0u8; 1024];
                while let Ok(n) = cr.read(&mut sink).await {
                    if n == 0 {
                        break;
                    }
                }
            }
            std::future::pending::<()>().await;
        });
        let _ = tokio::io::copy(&mut sr, &mut cw).await;
        // The exit code must be recorded before the client sees the end of the stream.
        let _ = rx.wait_for(|n| n.exited).await;
        let _ = cw.flush().await;
        let _ = cw.shutdown().await;
        input.abort();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn env_like_moby() {
        let env = exec_env("abc", false, &v(&["A=1", "PATH=/x"]), &v(&["A=2", "B=3"]));
        assert_eq!(env, v(&["PATH=/x", "HOSTNAME=abc", "A=2", "B=3"]));
        let env = exec_env("h", true, &[], &v(&["TERM=dumb"]));
        assert_eq!(
            env,
            v(&[
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "HOSTNAME=h",
                "TERM=dumb"
            ])
        );
        // A bare name removes the variable.
        assert_eq!(
            replace_or_append(v(&["A=1", "B=2"]), &v(&["A", "C"])),
            v(&["B=2"])
        );
    }

    #[test]
    fn failure_codes_and_sizes() {
        assert_eq!(
            start_failure_code("exec: \"x\": executable file not found in $PATH"),
            127
        );
        assert_eq!(
            start_failure_code("exec: \"/x\": stat /x: no such file or directory"),
            127
        );
        assert_eq!(start_failure_code("exec: \"/etc\": permission denied"), 126);
        assert_eq!(start_failure_code("container x is not running"), 126);
        assert_eq!(size_of(Some(&vec![24, 80])), Some((24, 80)));
        assert_eq!(size_of(Some(&vec![0, 0])), None);
        assert_eq!(size_of(None), None);
    }
}
