//! Containers: records on disk, the lifecycle (create, start, stop, kill, remove, wait,
//! restart policies) on top of `runtime`'s shims, and the answers of list/inspect/logs/attach.
//!
//! Layout: `<data-root>/containers/<id>/` holds `config.v2.json` (the [`record::Record`]), the
//! init layer `init/`, the overlay's `diff/`, `work/` and mount point `rootfs/`, the
//! `hostname`/`hosts`/`resolv.conf` files bind-mounted into the container and the json-file log
//! `<id>-json.log`. `<exec-root>/containers/<id>/` is the shim's state directory.
//!
//! Locking: the map lock is never taken while a record lock is held. Every change of run state
//! happens under the record lock and is published on the container's `watch` channel in the same
//! critical section, so a waiter that subscribes under the record lock never misses an exit.

mod archive;
mod attach;
mod commit;
mod crash;
mod detach;
mod events;
mod exec;
mod health;
mod merge;
mod mounts;
mod names;
mod net;
mod pause;
mod record;
mod setup;
mod stats;
mod update;
mod views;

use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;

use api_types::models::{ContainerCreateBody, RestartPolicyNameEnum};
use chrono::Utc;
use images::ImageService;
use runtime::{Shim, ShimConfig};
use tokio::sync::watch;

pub use archive::{ExtractRequest, PathStat};
pub use attach::{AttachRequest, LogsRequest};
pub use commit::{CommitRequest, CommitResult};
pub use exec::ExecStartRequest;
pub use pause::{ContainerPruneResponse, TopResponse};
use record::{Record, State};
use setup::Dirs;
pub use stats::{ContainerStats, StatsStream};

use crate::{EngineError, Result, io_err};

/// What waiters watch: changes of run state, published under the record lock.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Notice {
    pub running: bool,
    pub starts: u64,
    pub exits: u64,
    pub exit_code: i64,
    pub removed: bool,
}

/// One container in memory.
#[derive(Debug)]
pub(crate) struct Ctr {
    pub id: String,
    rec: Mutex<Record>,
    notice: watch::Sender<Notice>,
    /// Serialises start/stop/remove.
    op: tokio::sync::Mutex<()>,
    /// Restart back-off.
    backoff: Mutex<Duration>,
    /// Attach sessions waiting for the next start (taken by it before the process runs).
    pub(crate) early_attach: Mutex<Vec<EarlyAttach>>,
}

/// An attach made before the start: the start connects it to the shim and hands it over.
#[derive(Debug)]
pub(crate) struct EarlyAttach {
    pub opts: runtime::AttachOptions,
    pub tx: tokio::sync::oneshot::Sender<tokio::net::UnixStream>,
}

impl Ctr {
    fn new(rec: Record) -> Arc<Self> {
        let n = Notice {
            running: rec.state.running,
            exit_code: rec.state.exit_code,
            ..Default::default()
        };
        Arc::new(Self {
            id: rec.id.clone(),
            rec: Mutex::new(rec),
            notice: watch::Sender::new(n),
            op: tokio::sync::Mutex::new(()),
            backoff: Mutex::new(Duration::from_millis(100)),
            early_attach: Mutex::new(Vec::new()),
        })
    }

    pub(crate) fn rec(&self) -> MutexGuard<'_, Record> {
        self.rec.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn snapshot(&self) -> Record {
        self.rec().clone()
    }

    fn publish(&self, f: impl FnOnce(&mut Notice)) {
        self.notice.send_modify(f);
    }
}

/// Which state change a wait is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitCondition {
    NotRunning,
    NextExit,
    Removed,
}

impl WaitCondition {
    /// Parses the `condition` parameter ("" = not-running).
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "" | "not-running" => Ok(Self::NotRunning),
            "next-exit" => Ok(Self::NextExit),
            "removed" => Ok(Self::Removed),
            other => Err(EngineError::InvalidRequest(format!(
                "invalid condition: \"{other}\""
            ))),
        }
    }
}

/// The answer of a wait.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitResult {
    pub status_code: i64,
    pub error: Option<String>,
}

/// A pending wait.
pub type WaitFuture = Pin<Box<dyn Future<Output = WaitResult> + Send>>;

/// The container half of the engine.
#[derive(Debug)]
pub(crate) struct Containers {
    data_root: PathBuf,
    exec_root: PathBuf,
    pub(crate) images: Arc<ImageService>,
    map: RwLock<HashMap<String, Arc<Ctr>>>,
    /// Where the cgroup hierarchies are mounted (`/sys/fs/cgroup`).
    cgroup_root: PathBuf,
    /// Exec instances (in memory only, as in Docker).
    execs: exec::ExecStore,
    /// The event bus (see `crate::events`; emit with `self.event(&ctr, action, attrs)`).
    pub(crate) events: Arc<crate::events::Events>,
    /// Named and anonymous volumes (`<data-root>/volumes`).
    pub(crate) volumes: Arc<volumes::VolumeStore>,
    /// Networks, addresses, published ports and DNS (`crate::networks`).
    pub(crate) networks: Arc<crate::networks::Networks>,
}

/// Signal names → numbers (Linux x86/arm).
pub(crate) fn parse_signal(s: &str) -> Result<i32> {
    let t = s.trim();
    if let Ok(n) = t.parse::<i32>() {
        if (1..=64).contains(&n) {
            return Ok(n);
        }
        return Err(EngineError::InvalidRequest(format!("Invalid signal: {s}")));
    }
    let up = t.to_ascii_uppercase();
    let name = up.strip_prefix("SIG").unwrap_or(&up);
    let n = match name {
        "HUP" => 1,
        "INT" => 2,
        "QUIT" => 3,
        "ILL" => 4,
        "TRAP" => 5,
        "ABRT" | "IOT" => 6,
        "BUS" => 7,
        "FPE" => 8,
        "KILL" => 9,
        "USR1" => 10,
        "SEGV" => 11,
        "USR2" => 12,
        "PIPE" => 13,
        "ALRM" => 14,
        "TERM" => 15,
        "STKFLT" => 16,
        "CHLD" => 17,
        "CONT" => 18,
        "STOP" => 19,
        "TSTP" => 20,
        "TTIN" => 21,
        "TTOU" => 22,
        "URG" => 23,
        "XCPU" => 24,
        "XFSZ" => 25,
        "VTALRM" => 26,
        "PROF" => 27,
        "WINCH" => 28,
        "IO" | "POLL" => 29,
        "PWR" => 30,
        "SYS" => 31,
        _ => {
            if let Some(rest) = name.strip_prefix("RTMIN+")
                && let Ok(k) = rest.parse::<i32>()
                && (0..=30).contains(&k)
            {
                34 + k
            } else {
                return Err(EngineError::InvalidRequest(format!("Invalid signal: {s}")));
            }
        }
    };
    Ok(n)
}

/// Hands the attach sessions made before this start their shim connections, then starts the
/// created (gated) container's process.
async fn open_gate(ctr: &Ctr, shim: &Shim) -> Result<()> {
    let early = std::mem::take(&mut *ctr.early_attach.lock().unwrap_or_else(|e| e.into_inner()));
    for a in early {
        if a.tx.is_closed() {
            continue;
        }
        match shim.attach(a.opts).await {
            Ok(sock) => {
                let _ = a.tx.send(sock);
            }
            Err(e) => tracing::debug!(id = %ctr.id, error = %e, "early attach"),
        }
    }
    shim.start_process().await?;
    Ok(())
}

/// Exit code recorded for a start failure (the CLI picks 126/127 from the text).
/// The shim's small monitor binary, `berth-shim`, installed beside berthd (None when missing or
/// of another version: the shim then monitors in place). Looked up and checked once.
fn monitor_binary() -> Option<PathBuf> {
    static BIN: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();
    BIN.get_or_init(|| {
        let exe = std::env::current_exe().ok()?;
        let bin = exe.parent()?.join("berth-shim");
        if !bin.is_file() {
            return None;
        }
        if !runtime::client::monitor_binary_ok(&bin) {
            tracing::warn!(path = %bin.display(), "berth-shim does not answer with this berthd's version; shims will monitor in place");
            return None;
        }
        Some(bin)
    })
    .clone()
}

fn start_failure_code(msg: &str) -> i64 {
    if msg.contains("not found") || msg.contains("no such file") {
        127
    } else if msg.contains("permission denied") {
        126
    } else {
        128
    }
}

impl Containers {
    /// Loads every record (corrupt ones are logged and skipped) and settles those that were
    /// running: live shims are watched again, dead ones are marked exited. Restart policies are
    /// applied in the background when a tokio runtime is available.
    pub(crate) fn open(
        data_root: &Path,
        exec_root: &Path,
        images: Arc<ImageService>,
        volumes: Arc<volumes::VolumeStore>,
        networks: Arc<crate::networks::Networks>,
    ) -> Result<Arc<Self>> {
        let root = data_root.join("containers");
        std::fs::create_dir_all(&root).map_err(|e| io_err("create", &root, e))?;
        std::fs::create_dir_all(exec_root.join("containers"))
            .map_err(|e| io_err("create", &exec_root.join("containers"), e))?;
        let mut map = HashMap::new();
        let entries = std::fs::read_dir(&root).map_err(|e| io_err("read", &root, e))?;
        for entry in entries.flatten() {
            let dir = entry.path();
            match Record::load(&dir) {
                Ok(rec) if rec.id == entry.file_name().to_string_lossy() => {
                    map.insert(rec.id.clone(), Ctr::new(rec));
                }
                Ok(_) => {
                    tracing::warn!(dir = %dir.display(), "Failed to load container: ID mismatch")
                }
                Err(e) => {
                    tracing::warn!(dir = %dir.display(), error = %e, "Failed to load container")
                }
            }
        }
        let this = Arc::new(Self {
            data_root: data_root.to_path_buf(),
            exec_root: exec_root.to_path_buf(),
            images,
            map: RwLock::new(map),
            cgroup_root: PathBuf::from(pause::CGROUP_ROOT),
            execs: exec::ExecStore::default(),
            events: Arc::new(crate::events::Events::new()),
            volumes,
            networks,
        });
        this.restore();
        Ok(this)
    }

    fn restore(self: &Arc<Self>) {
        let handle = tokio::runtime::Handle::try_current().ok();
        let all: Vec<Arc<Ctr>> = self.all();
        // What a crashed berthd left half-done (starts, creates, removals) goes first.
        let stopped_auto_remove = self.clean_after_crash(&all);
        // Volumes of live containers first, so that settling a dead one cannot unmount a
        // volume a live one still uses.
        self.networks.adopt_existing_bridges();
        for ctr in &all {
            let rec = ctr.snapshot();
            if rec.state.running && self.shim(&rec.id).alive() {
                self.reregister_mounts(&rec);
                let _enter = handle.as_ref().map(|h| h.enter());
                self.net_restore(&rec);
            }
        }
        if let Some(h) = &handle {
            let networks = Arc::clone(&self.networks);
            h.spawn(async move { networks.apply_firewall().await });
        }
        let mut to_start = Vec::new();
        for ctr in all {
            let rec = ctr.snapshot();
            let policy = policy_name(&rec);
            if rec.state.running {
                let shim = self.shim(&rec.id);
                if shim.alive() {
                    if let Some(h) = &handle {
                        let _enter = h.enter();
                        {
                            // moby's restore: the health state starts over, probing resumes.
                            let mut r = ctr.rec();
                            r.state.health = health::on_start(r.state.health.take(), &r.config);
                        }
                        self.spawn_health(&ctr);
                        Arc::clone(self).spawn_watch(Arc::clone(&ctr), shim);
                    }
                    continue;
                }
                // The shim is gone: its exit.json has the real code; without one the container
                // died with its shim (killed, host trouble) and is recorded as 255.
                let status = shim.exit_status();
                let (code, oom, finished) = status.map_or((255, false, None), |s| {
                    (
                        i64::from(s.exit_code),
                        s.oom_killed,
                        chrono::DateTime::parse_from_rfc3339(&s.finished_at)
                            .ok()
                            .map(|t| t.with_timezone(&Utc)),
                    )
                });
                {
                    let mut r = ctr.rec();
                    self.forget_sandbox(&mut r);
                }
                self.settle_exit(&ctr, code, oom, finished, false);
                let rec = ctr.snapshot();
                if rec.host_config.auto_remove.unwrap_or(false) {
                    if let Some(h) = &handle {
                        let this = Arc::clone(self);
                        let id = rec.id.clone();
                        h.spawn(async move {
                            if let Err(e) = this.remove_with(&id, true, true).await {
                                tracing::warn!(id, error = %e, "auto-remove failed");
                            }
                        });
                    }
                    continue;
                }
            }
            let rec = ctr.snapshot();
            let was_started = rec.state.started_at.is_some();
            let restart = match policy {
                RestartPolicyNameEnum::ALWAYS => was_started,
                RestartPolicyNameEnum::UNLESS_STOPPED => was_started && !rec.manually_stopped,
                _ => false,
            };
            if restart && !rec.state.running {
                to_start.push(rec.id.clone());
            }
        }
        if let Some(h) = &handle {
            for id in stopped_auto_remove {
                let this = Arc::clone(self);
                h.spawn(async move {
                    if let Err(e) = this.remove_with(&id, true, true).await {
                        tracing::warn!(id, error = %e, "auto-remove failed");
                    }
                });
            }
        }
        if let Some(h) = handle
            && !to_start.is_empty()
        {
            let this = Arc::clone(self);
            h.spawn(async move {
                for id in to_start {
                    if let Err(e) = this.start(&id).await {
                        tracing::warn!(id, error = %e, "restart at daemon start failed");
                    }
                }
            });
        }
    }

    /// Whether any container runs.
    pub(crate) fn any_running(&self) -> bool {
        self.all().iter().any(|c| c.rec().state.running)
    }

    fn all(&self) -> Vec<Arc<Ctr>> {
        self.map
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }

    pub(crate) fn dirs(&self, id: &str) -> Dirs {
        Dirs {
            dir: self.data_root.join("containers").join(id),
            state_dir: self.state_dir(id),
            runtime_root: self.runtime_root(),
        }
    }

    fn shim(&self, id: &str) -> Shim {
        Shim::open(&self.state_dir(id))
    }

    /// Whether the exec root is short enough for `<exec-root>/runtime/<id>/notify.sock` and
    /// `<exec-root>/containers/<id>/shim.sock` (unix socket paths are limited to 107 bytes).
    /// When it is not (deep temporary directories), state dirs are `<exec-root>/c/<short-id>`
    /// and libcontainer's root is `<exec-root>/rt`.
    fn long_paths_fit(&self) -> bool {
        self.exec_root.as_os_str().len() + "/containers/".len() + 64 + "/notify.sock".len() < 107
    }

    fn state_dir(&self, id: &str) -> PathBuf {
        if self.long_paths_fit() {
            self.exec_root.join("containers").join(id)
        } else {
            self.exec_root.join("c").join(&id[..12.min(id.len())])
        }
    }

    fn runtime_root(&self) -> PathBuf {
        if self.long_paths_fit() {
            self.exec_root.join("runtime")
        } else {
            self.exec_root.join("rt")
        }
    }

    /// Finds a container by full ID, name (with or without `/`) or unique ID prefix.
    pub(crate) fn get(&self, reference: &str) -> Result<Arc<Ctr>> {
        let map = self.map.read().unwrap_or_else(|e| e.into_inner());
        if reference.is_empty() {
            return Err(EngineError::NoSuchContainer(reference.to_string()));
        }
        if let Some(c) = map.get(reference) {
            return Ok(Arc::clone(c));
        }
        let want = if reference.starts_with('/') {
            reference.to_string()
        } else {
            format!("/{reference}")
        };
        for c in map.values() {
            if c.rec().name == want {
                return Ok(Arc::clone(c));
            }
        }
        let mut found: Option<&Arc<Ctr>> = None;
        for (id, c) in map.iter() {
            if id.starts_with(reference) {
                if found.is_some() {
                    return Err(EngineError::InvalidRequest(format!(
                        "multiple IDs found with provided prefix: {reference}"
                    )));
                }
                found = Some(c);
            }
        }
        found
            .cloned()
            .ok_or_else(|| EngineError::NoSuchContainer(reference.to_string()))
    }

    /// The container using `name` (with `/`), if any.
    fn name_owner(map: &HashMap<String, Arc<Ctr>>, name: &str, except: &str) -> Option<String> {
        map.values()
            .filter(|c| c.id != except)
            .find(|c| c.rec().name == name)
            .map(|c| c.id.clone())
    }

    /// `POST /containers/create`.
    pub(crate) async fn create(
        self: &Arc<Self>,
        name: Option<&str>,
        body: ContainerCreateBody,
    ) -> Result<String> {
        let wanted = name
            .filter(|n| !n.is_empty())
            .map(names::validate)
            .transpose()?;
        let image = body.image.clone().unwrap_or_default();
        if image.is_empty() {
            return Err(EngineError::InvalidRequest(
                "Config cannot be empty in order to create a container".into(),
            ));
        }
        let images = Arc::clone(&self.images);
        let img = tokio::task::spawn_blocking(move || images.get(&image))
            .await
            .map_err(|_| EngineError::TaskFailed {
                what: "container create",
            })??;
        let user = merge::config_of(&body);
        health::validate(user.healthcheck.as_ref())?;
        let mut merged = merge::merge(&user, img.config.config.as_ref())?;
        merged.config.healthcheck = health::merge_config(
            user.healthcheck.clone(),
            img.config
                .config
                .as_ref()
                .and_then(|c| c.healthcheck.as_ref()),
        );
        let mut host = body.host_config.clone().unwrap_or_default();
        merge::host_defaults(&mut host);
        update::validate_host(&host)?;
        let policy = host
            .restart_policy
            .as_ref()
            .and_then(|p| p.name)
            .unwrap_or(RestartPolicyNameEnum::NO);
        if host.auto_remove.unwrap_or(false)
            && !matches!(
                policy,
                RestartPolicyNameEnum::NO | RestartPolicyNameEnum::EMPTY
            )
        {
            return Err(EngineError::InvalidRequest(
                "conflicting options: cannot specify both --restart and --rm".into(),
            ));
        }
        if let Some(lc) = &host.log_config
            && lc.typ.as_deref() != Some("json-file")
        {
            return Err(EngineError::InvalidRequest(format!(
                "logging driver {} is not supported",
                lc.typ.clone().unwrap_or_default()
            )));
        }
        let endpoints = self.plan_endpoints(&host, body.networking_config.as_ref())?;
        let id = names::new_id();
        let mut config = merged.config;
        if config.hostname.as_deref().is_none_or(str::is_empty) {
            config.hostname = Some(id[..12].to_string());
        }
        let dirs = self.dirs(&id);
        let rec = Record {
            id: id.clone(),
            name: String::new(),
            created: Utc::now(),
            image_id: img.id.to_string(),
            layers: img.chain_ids.iter().map(|c| c.hex().to_string()).collect(),
            path: merged.path,
            args: merged.args,
            config,
            host_config: host,
            state: State {
                status: "created".into(),
                ..Default::default()
            },
            restart_count: 0,
            log_path: dirs.dir.join(format!("{id}-json.log")),
            manually_stopped: false,
            mount_points: Vec::new(),
            endpoints,
            sandbox_key: String::new(),
            ports: Vec::new(),
        };
        // Reserve the name and insert under the map lock; write the files after.
        {
            let mut map = self.map.write().unwrap_or_else(|e| e.into_inner());
            let name = match wanted {
                Some(n) => {
                    if let Some(owner) = Self::name_owner(&map, &n, "") {
                        return Err(EngineError::NameInUse { name: n, id: owner });
                    }
                    n
                }
                None => loop {
                    let n = format!("/{}", names::generate());
                    if Self::name_owner(&map, &n, "").is_none() {
                        break n;
                    }
                },
            };
            let mut rec = rec;
            rec.name = name;
            map.insert(id.clone(), Ctr::new(rec));
        }
        let ctr = self.get(&id)?;
        let rec = ctr.snapshot();
        let this = Arc::clone(self);
        let c2 = Arc::clone(&ctr);
        let result = tokio::task::spawn_blocking(move || -> Result<()> {
            let mut rec = rec;
            let volumes = rec.config.volumes.clone().unwrap_or_default();
            rec.mount_points = this.resolve_mounts(&rec.host_config, &volumes)?;
            c2.rec().mount_points = rec.mount_points.clone();
            std::fs::create_dir_all(&dirs.dir).map_err(|e| io_err("create", &dirs.dir, e))?;
            setup::make_init_layer(&dirs.init())?;
            rec.save(&dirs.dir)
        })
        .await
        .map_err(|_| EngineError::TaskFailed {
            what: "container create",
        })
        .and_then(|r| r);
        if let Err(e) = result {
            self.map
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&id);
            let _ = std::fs::remove_dir_all(self.dirs(&id).dir);
            self.remove_anonymous_volumes(&ctr.snapshot());
            return Err(e);
        }
        self.event(&ctr, "create", &[]);
        Ok(id)
    }

    /// `POST /containers/{id}/start`: false when it was already running.
    pub(crate) async fn start(self: &Arc<Self>, reference: &str) -> Result<bool> {
        let ctr = self.get(reference)?;
        let _op = ctr.op.lock().await;
        let rec = {
            let r = ctr.rec();
            if r.state.running {
                return Ok(false);
            }
            if r.state.status == "removing" {
                return Err(EngineError::Conflict(
                    "container is marked for removal and cannot be started".to_string(),
                ));
            }
            r.clone()
        };
        let dirs = self.dirs(&rec.id);
        let snapshots = self.data_root.join("snapshots");
        // `/proc/self/exe` rather than `current_exe()`: it still runs this very binary after
        // the file on disk was replaced or deleted (an upgrade, a rebuild).
        let shim_binary = PathBuf::from("/proc/self/exe");
        // The log exists from the start on (the shim appends to it).
        {
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .mode(0o640)
                .open(&rec.log_path)
                .map_err(|e| io_err("open", &rec.log_path, e))?;
        }
        let mut rec = rec;
        let started = match self.net_up(&rec).await {
            Err(e) => Err(e),
            Ok(up) => {
                rec.endpoints = up.endpoints.clone();
                rec.sandbox_key = up.sandbox_key.clone();
                rec.ports = up.ports.clone();
                let r2 = rec.clone();
                let d2 = dirs.clone();
                let this = Arc::clone(self);
                let c2 = Arc::clone(&ctr);
                let (etc, ns, link_env) = (up.etc.clone(), up.ns.clone(), up.link_env.clone());
                tokio::task::spawn_blocking(move || -> Result<(Shim, i32)> {
                    let rec = r2;
                    let dirs = d2;
                    let volatile = rec.host_config.auto_remove.unwrap_or(false);
                    setup::mount_rootfs(&dirs, &snapshots, &rec.layers, volatile)?;
                    let run = || -> Result<(Shim, i32)> {
                        setup::write_etc_files(&dirs, &rec, &etc)?;
                        let mounts = this.prepare_mounts(&c2, &rec, &dirs)?;
                        let cspec = setup::container_spec(&rec, &dirs, mounts, ns, link_env)?;
                        let spec = runtime::spec::build(&cspec)?;
                        let log = rec.host_config.log_config.clone().unwrap_or_default();
                        let opts = log.config.unwrap_or_default();
                        let max_size = opts.get("max-size").and_then(|s| setup::parse_size(s));
                        let max_files = opts
                            .get("max-file")
                            .and_then(|s| s.parse::<u32>().ok())
                            .unwrap_or(1)
                            .max(1);
                        let cfg = ShimConfig {
                            id: rec.id.clone(),
                            state_dir: dirs.state_dir.clone(),
                            runtime_root: dirs.runtime_root.clone(),
                            log_path: rec.log_path.clone(),
                            log_max_size: max_size,
                            log_max_files: max_files,
                            tty: rec.config.tty.unwrap_or(false),
                            open_stdin: rec.config.open_stdin.unwrap_or(false),
                            stdin_once: rec.config.stdin_once.unwrap_or(false),
                            console_size: cspec.console_size,
                            gated: true,
                            monitor: monitor_binary(),
                        };
                        let (shim, started) = Shim::start(&shim_binary, &cfg, &spec)?;
                        Ok((shim, started.pid))
                    };
                    match run() {
                        Ok(x) => Ok(x),
                        Err(e) => {
                            let _ = linux::mount::unmount(&dirs.rootfs());
                            Err(e)
                        }
                    }
                })
                .await
                .map_err(|_| EngineError::TaskFailed {
                    what: "container start",
                })
                .and_then(|r| r)
            }
        };
        let started = match started {
            Ok((shim, pid)) => match open_gate(&ctr, &shim).await {
                Ok(()) => Ok((shim, pid)),
                Err(e) => {
                    let _ = linux::mount::unmount(&dirs.rootfs());
                    let _ = std::fs::remove_dir_all(&dirs.state_dir);
                    Err(e)
                }
            },
            Err(e) => Err(e),
        };

        match started {
            Ok((shim, pid)) => {
                {
                    let mut r = ctr.rec();
                    r.endpoints = rec.endpoints.clone();
                    r.sandbox_key = rec.sandbox_key.clone();
                    r.ports = rec.ports.clone();
                    let health = health::on_start(r.state.health.take(), &r.config);
                    r.state = State {
                        health,
                        status: "running".into(),
                        running: true,
                        pid: i64::from(pid),
                        started_at: Some(Utc::now()),
                        finished_at: r.state.finished_at,
                        ..Default::default()
                    };
                    r.manually_stopped = false;
                    if let Err(e) = r.save(&dirs.dir) {
                        tracing::warn!(id = %r.id, error = %e, "cannot save container state");
                    }
                    ctr.publish(|n| {
                        n.running = true;
                        n.starts += 1;
                    });
                }
                self.event(&ctr, "start", &[]);
                self.spawn_health(&ctr);
                Arc::clone(self).spawn_watch(Arc::clone(&ctr), shim);
                Ok(true)
            }
            Err(e) => {
                for net in self.net_down(&mut rec).await {
                    self.network_event(&net, "disconnect", &rec.id);
                }
                self.release_mounts(&ctr.snapshot());
                // Early attaches end: there is nothing to see.
                ctr.early_attach
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .clear();
                let msg = e.to_string();
                let not_found = matches!(e, EngineError::NoSuchNetwork(_));
                let auto_remove = {
                    let mut r = ctr.rec();
                    r.state.error = msg.clone();
                    r.state.exit_code = start_failure_code(&msg);
                    r.state.running = false;
                    r.state.pid = 0;
                    if r.state.status != "created" {
                        r.state.status = "exited".into();
                        r.state.finished_at = Some(Utc::now());
                    }
                    let _ = r.save(&dirs.dir);
                    let code = r.state.exit_code;
                    ctr.publish(|n| n.exit_code = code);
                    r.host_config.auto_remove.unwrap_or(false)
                };
                drop(_op);
                if auto_remove {
                    let _ = self.remove_with(&ctr.id, true, true).await;
                }
                if not_found {
                    return Err(e);
                }
                Err(EngineError::StartFailed(msg))
            }
        }
    }

    /// Spawns [`Self::watch_exit`] (type-erased: start → watch → restart → start is a cycle).
    fn spawn_watch(self: Arc<Self>, ctr: Arc<Ctr>, shim: Shim) {
        let fut: Pin<Box<dyn Future<Output = ()> + Send>> = Box::pin(self.watch_exit(ctr, shim));
        tokio::spawn(fut);
    }

    /// Waits for the shim to report the exit, then records it and applies --rm and restart
    /// policies.
    async fn watch_exit(self: Arc<Self>, ctr: Arc<Ctr>, shim: Shim) {
        let status = shim.wait().await;
        let (code, oom, finished) = match status {
            Ok(s) => (
                i64::from(s.exit_code),
                s.oom_killed,
                chrono::DateTime::parse_from_rfc3339(&s.finished_at)
                    .ok()
                    .map(|t| t.with_timezone(&Utc)),
            ),
            Err(e) => {
                tracing::warn!(id = %ctr.id, error = %e, "lost the container's shim");
                shim.exit_status().map_or((255, false, None), |s| {
                    (i64::from(s.exit_code), s.oom_killed, None)
                })
            }
        };
        let mut rec = ctr.snapshot();
        let left = self.net_down(&mut rec).await;
        {
            let mut r = ctr.rec();
            r.endpoints = rec.endpoints;
            r.sandbox_key.clear();
            r.ports.clear();
        }
        let this = Arc::clone(&self);
        let c = Arc::clone(&ctr);
        let restart =
            tokio::task::spawn_blocking(move || this.settle_exit(&c, code, oom, finished, true))
                .await
                .unwrap_or(false);
        for net in left {
            self.network_event(&net, "disconnect", &ctr.id);
        }
        let (auto_remove, id) = {
            let r = ctr.rec();
            (r.host_config.auto_remove.unwrap_or(false), r.id.clone())
        };
        if auto_remove {
            if let Err(e) = self.remove_with(&id, true, true).await {
                tracing::warn!(id, error = %e, "auto-remove failed");
            }
            return;
        }
        if restart {
            self.restart_later(ctr).await;
        }
    }

    /// Records an exit (unmount, shim cleanup, state); returns whether the restart policy
    /// asks for a restart.
    fn settle_exit(
        &self,
        ctr: &Ctr,
        code: i64,
        oom: bool,
        finished: Option<chrono::DateTime<Utc>>,
        policies: bool,
    ) -> bool {
        let dirs = self.dirs(&ctr.id);
        if let Err(e) = linux::mount::unmount(&dirs.rootfs()) {
            tracing::warn!(id = %ctr.id, error = %e, "cannot unmount the root filesystem");
        }
        if let Err(e) = self.shim(&ctr.id).cleanup() {
            tracing::debug!(id = %ctr.id, error = %e, "shim cleanup");
        }
        self.release_mounts(&ctr.snapshot());
        let mut r = ctr.rec();
        let ran = r.state.started_at.map_or(Duration::ZERO, |s| {
            (Utc::now() - s).to_std().unwrap_or_default()
        });
        let max = r
            .host_config
            .restart_policy
            .as_ref()
            .and_then(|p| p.maximum_retry_count)
            .unwrap_or(0);
        let restart = policies
            && !r.manually_stopped
            && !r.host_config.auto_remove.unwrap_or(false)
            && match policy_name(&r) {
                RestartPolicyNameEnum::ALWAYS | RestartPolicyNameEnum::UNLESS_STOPPED => true,
                RestartPolicyNameEnum::ON_FAILURE => {
                    code != 0 && (max <= 0 || r.restart_count < max)
                }
                _ => false,
            };
        if ran >= Duration::from_secs(10) {
            *ctr.backoff.lock().unwrap_or_else(|e| e.into_inner()) = Duration::from_millis(100);
        }
        r.state.running = false;
        r.state.paused = false;
        r.state.pid = 0;
        r.state.exit_code = code;
        r.state.oom_killed = oom;
        r.state.finished_at = Some(finished.unwrap_or_else(Utc::now));
        r.state.restarting = restart;
        r.state.status = if restart { "restarting" } else { "exited" }.into();
        health::on_exit(&mut r.state);
        if let Err(e) = r.save(&dirs.dir) {
            tracing::warn!(id = %r.id, error = %e, "cannot save container state");
        }
        let (code_s, ran_s) = (code.to_string(), ran.as_secs().to_string());
        self.event_rec(
            &r,
            "die",
            &[("exitCode", &code_s), ("execDuration", &ran_s)],
        );
        ctr.publish(|n| {
            n.running = false;
            n.exits += 1;
            n.exit_code = code;
        });
        restart
    }

    async fn restart_later(self: Arc<Self>, ctr: Arc<Ctr>) {
        let delay = {
            let mut b = ctr.backoff.lock().unwrap_or_else(|e| e.into_inner());
            let d = *b;
            *b = (d * 2).min(Duration::from_secs(60));
            d
        };
        tokio::time::sleep(delay).await;
        {
            let mut r = ctr.rec();
            if !r.state.restarting || r.manually_stopped {
                return;
            }
            r.restart_count += 1;
        }
        if let Err(e) = self.start(&ctr.id).await {
            tracing::warn!(id = %ctr.id, error = %e, "restart failed");
            let mut r = ctr.rec();
            r.state.restarting = false;
            r.state.status = "exited".into();
            let _ = r.save(&self.dirs(&ctr.id).dir);
        }
    }

    /// `POST /containers/{id}/stop`: false when it was not running.
    pub(crate) async fn stop(
        &self,
        reference: &str,
        timeout: Option<i64>,
        signal: Option<&str>,
    ) -> Result<bool> {
        let ctr = self.get(reference)?;
        let sig = {
            let r = ctr.rec();
            r.config.stop_signal.clone()
        };
        let sig = parse_signal(
            signal
                .filter(|s| !s.is_empty())
                .or(sig.as_deref())
                .unwrap_or("SIGTERM"),
        )?;
        let (rx, exits, t) = {
            let mut r = ctr.rec();
            if !r.state.running {
                if r.state.restarting {
                    r.manually_stopped = true;
                    r.state.restarting = false;
                    r.state.status = "exited".into();
                    let _ = r.save(&self.dirs(&ctr.id).dir);
                    return Ok(true);
                }
                return Ok(false);
            }
            r.manually_stopped = true;
            let _ = r.save(&self.dirs(&ctr.id).dir);
            let rx = ctr.notice.subscribe();
            let exits = rx.borrow().exits;
            (rx, exits, timeout.or(r.config.stop_timeout).unwrap_or(10))
        };
        let shim = self.shim(&ctr.id);
        match shim.kill(sig).await {
            Ok(()) => self.event(&ctr, "kill", &[("signal", &sig.to_string())]),
            Err(e) => tracing::debug!(id = %ctr.id, error = %e, "stop signal"),
        }
        // A frozen process only sees the signal once thawed (moby resumes it the same way).
        if let Err(e) = self.thaw(&ctr).await {
            tracing::warn!(id = %ctr.id, error = %e, "cannot thaw the container to stop it");
        }
        let mut rx = rx;
        let exited = if t < 0 {
            rx.wait_for(|n| n.exits > exits).await.is_ok()
        } else {
            tokio::time::timeout(
                Duration::from_secs(u64::try_from(t).unwrap_or(0)),
                rx.wait_for(|n| n.exits > exits),
            )
            .await
            .is_ok()
        };
        if !exited {
            match shim.kill(9).await {
                Ok(()) => self.event(&ctr, "kill", &[("signal", "9")]),
                Err(e) => {
                    tracing::debug!(id = %ctr.id, error = %e, "SIGKILL after the stop timeout")
                }
            }
            let _ = rx.wait_for(|n| n.exits > exits).await;
        }
        self.event(&ctr, "stop", &[]);
        Ok(true)
    }

    /// `POST /containers/{id}/kill`.
    pub(crate) async fn kill(&self, reference: &str, signal: Option<&str>) -> Result<()> {
        let ctr = self.get(reference)?;
        let sig = parse_signal(signal.filter(|s| !s.is_empty()).unwrap_or("KILL"))?;
        {
            let mut r = ctr.rec();
            if !r.state.running {
                return Err(EngineError::Conflict(format!(
                    "Cannot kill container: {reference}: Container {} is not running",
                    r.id
                )));
            }
            if matches!(sig, 9 | 15 | 2) {
                r.manually_stopped = true;
                let _ = r.save(&self.dirs(&ctr.id).dir);
            }
        }
        let killed = self.shim(&ctr.id).kill(sig).await;
        if killed.is_ok() {
            self.event(&ctr, "kill", &[("signal", &sig.to_string())]);
        }
        if killed.is_ok()
            && matches!(sig, 9 | 15 | 2)
            && let Err(e) = self.thaw(&ctr).await
        {
            tracing::warn!(id = %ctr.id, error = %e, "cannot thaw the container after a kill");
        }
        match killed {
            Ok(()) => Ok(()),
            Err(runtime::RuntimeError::NotRunning(_)) => Err(EngineError::Conflict(format!(
                "Cannot kill container: {reference}: Container {} is not running",
                ctr.id
            ))),
            Err(e) => Err(e.into()),
        }
    }

    /// `DELETE /containers/{id}`.
    pub(crate) async fn remove(&self, reference: &str, force: bool) -> Result<()> {
        self.remove_with(reference, force, false).await
    }

    /// `DELETE /containers/{id}?v=`: `volumes` also removes the container's anonymous volumes
    /// (as `--rm` does).
    pub(crate) async fn remove_with(
        &self,
        reference: &str,
        force: bool,
        volumes: bool,
    ) -> Result<()> {
        let ctr = self.get(reference)?;
        let running = {
            let mut r = ctr.rec();
            if r.state.status == "removing" {
                return Err(EngineError::Conflict(format!(
                    "removal of container {reference} is already in progress"
                )));
            }
            if r.state.running && !force {
                return Err(EngineError::Conflict(format!(
                    "cannot remove container \"{reference}\": container is running: stop the container before removing or force remove"
                )));
            }
            r.manually_stopped = true;
            r.state.restarting = false;
            let running = r.state.running;
            if !running {
                r.state.status = "removing".into();
            }
            running
        };
        if running {
            let mut rx = {
                let _r = ctr.rec();
                ctr.notice.subscribe()
            };
            let exits = rx.borrow().exits;
            let still = rx.borrow().running;
            if still {
                if self.shim(&ctr.id).kill(9).await.is_ok() {
                    self.event(&ctr, "kill", &[("signal", "9")]);
                }
                let _ = self.thaw(&ctr).await;
                let _ = tokio::time::timeout(
                    Duration::from_secs(30),
                    rx.wait_for(|n| n.exits > exits || !n.running),
                )
                .await;
            }
            let mut r = ctr.rec();
            if r.state.status == "removing" {
                return Ok(());
            }
            r.state.status = "removing".into();
        }
        let dirs = self.dirs(&ctr.id);
        let shim = self.shim(&ctr.id);
        let _ = tokio::task::spawn_blocking(move || {
            let _ = linux::mount::unmount(&dirs.rootfs());
            let _ = shim.cleanup();
            // The record first: a directory without one is removed at the next start, should
            // berthd die half-way through this.
            let _ = std::fs::remove_file(dirs.dir.join(record::RECORD_FILE));
            if let Err(e) = std::fs::remove_dir_all(&dirs.dir) {
                tracing::warn!(dir = %dirs.dir.display(), error = %e, "cannot remove container directory");
            }
            let _ = std::fs::remove_dir_all(&dirs.state_dir);
        })
        .await;
        self.event(&ctr, "destroy", &[]);
        self.map
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&ctr.id);
        self.forget_execs(&ctr.id);
        if volumes {
            self.remove_anonymous_volumes(&ctr.snapshot());
        }
        ctr.publish(|n| n.removed = true);
        Ok(())
    }

    /// `POST /containers/{id}/wait`: validates now, answers later.
    pub(crate) fn wait(&self, reference: &str, cond: WaitCondition) -> Result<WaitFuture> {
        let ctr = self.get(reference)?;
        let (mut rx, now) = {
            let _r = ctr.rec();
            let rx = ctr.notice.subscribe();
            let now = *rx.borrow();
            (rx, now)
        };
        Ok(Box::pin(async move {
            let _keep = ctr;
            let done = |n: &Notice| {
                n.removed
                    || match cond {
                        WaitCondition::NotRunning => !n.running,
                        WaitCondition::NextExit => n.exits > now.exits,
                        WaitCondition::Removed => false,
                    }
            };
            let waited = rx.wait_for(done).await.map(|n| n.exit_code);
            let code = match waited {
                Ok(c) => c,
                Err(_) => rx.borrow().exit_code,
            };
            WaitResult {
                status_code: code,
                error: None,
            }
        }))
    }

    /// `POST /containers/{id}/rename`.
    pub(crate) fn rename(&self, reference: &str, new: &str) -> Result<()> {
        let new = names::validate(new)?;
        let ctr = self.get(reference)?;
        let map = self.map.write().unwrap_or_else(|e| e.into_inner());
        if let Some(owner) = Self::name_owner(&map, &new, &ctr.id) {
            return Err(EngineError::NameInUse {
                name: new,
                id: owner,
            });
        }
        let mut r = ctr.rec();
        if r.name == new {
            return Err(EngineError::Conflict(
                "Renaming a container with the same name as its current name".to_string(),
            ));
        }
        let old = std::mem::replace(&mut r.name, new);
        r.save(&self.dirs(&ctr.id).dir)?;
        self.event_rec(&r, "rename", &[("oldName", &old)]);
        Ok(())
    }

    /// `POST /containers/{id}/resize`.
    pub(crate) async fn resize(&self, reference: &str, rows: u16, cols: u16) -> Result<()> {
        let ctr = self.get(reference)?;
        if !ctr.rec().state.running {
            return Err(EngineError::Conflict(format!(
                "Container {} is not running",
                ctr.id
            )));
        }
        self.shim(&ctr.id).resize(rows, cols).await?;
        let (h, w) = (rows.to_string(), cols.to_string());
        self.event(&ctr, "resize", &[("height", &h), ("width", &w)]);
        Ok(())
    }

    /// Every record (for list, in-use checks, info).
    pub(crate) fn records(&self) -> Vec<Record> {
        self.all().iter().map(|c| c.snapshot()).collect()
    }

    /// The short ID and running flag of a container using image `id`, for `rmi`.
    pub(crate) fn image_user(&self, image_id: &str) -> Option<(String, bool)> {
        let recs = self.records();
        let user = recs
            .iter()
            .find(|r| r.image_id == image_id && r.state.running)
            .or_else(|| recs.iter().find(|r| r.image_id == image_id))?;
        Some((user.short_id().to_string(), user.state.running))
    }
}

fn policy_name(r: &Record) -> RestartPolicyNameEnum {
    r.host_config
        .restart_policy
        .as_ref()
        .and_then(|p| p.name)
        .unwrap_or(RestartPolicyNameEnum::NO)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals() {
        assert_eq!(parse_signal("KILL").unwrap(), 9);
        assert_eq!(parse_signal("SIGTERM").unwrap(), 15);
        assert_eq!(parse_signal("sigusr1").unwrap(), 10);
        assert_eq!(parse_signal("9").unwrap(), 9);
        assert_eq!(parse_signal("RTMIN+2").unwrap(), 36);
        assert!(parse_signal("NOPE").is_err());
        assert!(parse_signal("0").is_err());
    }

    #[test]
    fn wait_conditions() {
        assert_eq!(WaitCondition::parse("").unwrap(), WaitCondition::NotRunning);
        assert_eq!(
            WaitCondition::parse("not-running").unwrap(),
            WaitCondition::NotRunning
        );
        assert_eq!(
            WaitCondition::parse("next-exit").unwrap(),
            WaitCondition::NextExit
        );
        assert_eq!(
            WaitCondition::parse("removed").unwrap(),
            WaitCondition::Removed
        );
        assert!(WaitCondition::parse("bogus").is_err());
    }

    fn test_volumes(root: &Path) -> Arc<volumes::VolumeStore> {
        Arc::new(volumes::VolumeStore::open(&root.join("volumes")).unwrap())
    }

    fn test_networks(root: &Path, exec: &Path) -> Arc<crate::networks::Networks> {
        let cfg = crate::NetConfig {
            iptables: false,
            ..Default::default()
        };
        Arc::new(crate::networks::Networks::open(root, exec, cfg).unwrap())
    }

    fn rec(id: &str, name: &str) -> Record {
        Record {
            id: id.to_string(),
            name: name.to_string(),
            created: Utc::now(),
            image_id: format!("sha256:{}", "c".repeat(64)),
            layers: vec![],
            path: "true".into(),
            args: vec![],
            config: Default::default(),
            host_config: Default::default(),
            state: State {
                status: "created".into(),
                ..Default::default()
            },
            restart_count: 0,
            log_path: PathBuf::from("/nonexistent"),
            manually_stopped: false,
            mount_points: Vec::new(),
            endpoints: Default::default(),
            sandbox_key: String::new(),
            ports: Vec::new(),
        }
    }

    #[test]
    fn open_skips_corrupt_records_and_lookups_work() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        let a = format!("abc{}", "1".repeat(61));
        let b = format!("abd{}", "2".repeat(61));
        for (id, name) in [(&a, "/web"), (&b, "/db")] {
            let d = root.join("containers").join(id);
            std::fs::create_dir_all(&d).unwrap();
            rec(id, name).save(&d).unwrap();
        }
        let bad = root.join("containers").join("f".repeat(64));
        std::fs::create_dir_all(&bad).unwrap();
        std::fs::write(bad.join(record::RECORD_FILE), "{broken").unwrap();
        let images = Arc::new(ImageService::open(&root).unwrap());
        let c = Containers::open(
            &root,
            &dir.path().join("exec"),
            images,
            test_volumes(&root),
            test_networks(&root, &dir.path().join("exec")),
        )
        .unwrap();
        assert_eq!(c.records().len(), 2);
        assert_eq!(c.get(&a).unwrap().id, a);
        assert_eq!(c.get("web").unwrap().id, a);
        assert_eq!(c.get("/db").unwrap().id, b);
        assert_eq!(c.get("abd").unwrap().id, b);
        assert!(matches!(c.get("ab"), Err(EngineError::InvalidRequest(_))));
        let e = c.get("zzz").unwrap_err();
        assert_eq!(e.to_string(), "No such container: zzz");
        // Renames keep names unique.
        let e = c.rename("web", "db").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("Conflict. The container name \"/db\""),
            "{e}"
        );
        c.rename("web", "web2").unwrap();
        assert_eq!(c.get("web2").unwrap().id, a);
        assert_eq!(Record::load(&c.dirs(&a).dir).unwrap().name, "/web2");
    }

    #[tokio::test]
    async fn wait_not_running_on_created_is_immediate() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        let id = "e".repeat(64);
        let d = root.join("containers").join(&id);
        std::fs::create_dir_all(&d).unwrap();
        rec(&id, "/w").save(&d).unwrap();
        let images = Arc::new(ImageService::open(&root).unwrap());
        let c = Containers::open(
            &root,
            &dir.path().join("exec"),
            images,
            test_volumes(&root),
            test_networks(&root, &dir.path().join("exec")),
        )
        .unwrap();
        let r = c.wait("w", WaitCondition::NotRunning).unwrap().await;
        assert_eq!(r.status_code, 0);
        // next-exit and removed wait; a removal answers them.
        let next = c.wait("w", WaitCondition::NextExit).unwrap();
        let removed = c.wait("w", WaitCondition::Removed).unwrap();
        c.remove("w", false).await.unwrap();
        assert_eq!(next.await.status_code, 0);
        assert_eq!(removed.await.status_code, 0);
        assert!(!d.exists());
    }

    #[tokio::test]
    async fn pause_unpause_top_prune_by_state() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        let created = "a".repeat(64);
        let running = "b".repeat(64);
        let labelled = "c".repeat(64);
        for (id, name) in [(&created, "/c1"), (&running, "/r1"), (&labelled, "/l1")] {
            let d = root.join("containers").join(id);
            std::fs::create_dir_all(&d).unwrap();
            let mut r = rec(id, name);
            if id == &labelled {
                r.config.labels = Some([("keep".to_string(), "1".to_string())].into());
            }
            r.save(&d).unwrap();
        }
        let images = Arc::new(ImageService::open(&root).unwrap());
        let mut c = Containers::open(
            &root,
            &dir.path().join("exec"),
            images,
            test_volumes(&root),
            test_networks(&root, &dir.path().join("exec")),
        )
        .unwrap();
        // A fake cgroup tree: v1 freezer and pids hierarchies.
        let cg = dir.path().join("cgroup");
        let fz = cg.join("freezer/berth").join(&running);
        std::fs::create_dir_all(&fz).unwrap();
        std::fs::write(fz.join("freezer.state"), "THAWED").unwrap();
        Arc::get_mut(&mut c).unwrap().cgroup_root = cg.clone();
        {
            // Running without a shim (restore would have settled a saved one as exited).
            let ctr = c.get("r1").unwrap();
            let mut r = ctr.rec();
            r.state.status = "running".into();
            r.state.running = true;
            r.state.pid = 1;
            r.state.started_at = Some(Utc::now());
        }

        // Not running: 409 for pause and top, moby's 500 for unpause.
        let e = c.pause("c1").await.unwrap_err();
        assert_eq!(e.to_string(), format!("Container {created} is not running"));
        assert_eq!(e.kind(), crate::ErrorKind::Conflict);
        let e = c.top("c1", "").await.unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::Conflict);
        let e = c.unpause("c1").await.unwrap_err();
        assert_eq!(e.to_string(), format!("Container {created} is not paused"));
        assert_eq!(e.kind(), crate::ErrorKind::Internal);
        let e = c.unpause("r1").await.unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::Internal);

        // Pause records the state; ps shows "(Paused)"; unpause undoes it.
        c.pause("r1").await.unwrap();
        assert_eq!(
            std::fs::read_to_string(fz.join("freezer.state")).unwrap(),
            "FROZEN"
        );
        let r = c.get("r1").unwrap().snapshot();
        assert!(r.state.paused && r.state.running);
        assert_eq!(r.state.status, "paused");
        assert!(r.status_text(Utc::now()).ends_with("(Paused)"));
        assert!(Record::load(&c.dirs(&running).dir).unwrap().state.paused);
        assert_eq!(
            c.pause("r1").await.unwrap_err().kind(),
            crate::ErrorKind::Conflict
        );
        c.unpause("r1").await.unwrap();
        assert_eq!(
            std::fs::read_to_string(fz.join("freezer.state")).unwrap(),
            "THAWED"
        );
        let r = c.get("r1").unwrap().snapshot();
        assert!(!r.state.paused);
        assert_eq!(r.state.status, "running");

        // top: the pids of the cgroup select the host ps rows.
        let pids = cg.join("pids/berth").join(&running);
        std::fs::create_dir_all(&pids).unwrap();
        std::fs::write(
            pids.join("cgroup.procs"),
            format!("{}\n", std::process::id()),
        )
        .unwrap();
        let top = c.top("r1", "-ef").await.unwrap();
        assert!(top.titles.iter().any(|t| t == "PID"));
        assert_eq!(top.processes.len(), 1, "{top:?}");

        // prune: filters, then everything not running.
        let mut f = crate::Filters::default();
        f.add("label!", "keep");
        let p = c.prune(&f).await.unwrap();
        assert_eq!(p.containers_deleted, Some(vec![created.clone()]));
        let mut f = crate::Filters::default();
        f.add("until", "2000-01-01");
        assert_eq!(c.prune(&f).await.unwrap().containers_deleted, None);
        let p = c.prune(&crate::Filters::default()).await.unwrap();
        assert_eq!(p.containers_deleted, Some(vec![labelled.clone()]));
        assert_eq!(c.records().len(), 1);
        let mut f = crate::Filters::default();
        f.add("dangling", "true");
        assert!(c.prune(&f).await.is_err());
    }

    #[test]
    fn failure_codes() {
        assert_eq!(
            start_failure_code("exec: \"nosuch\": executable file not found in $PATH"),
            127
        );
        assert_eq!(
            start_failure_code("open /x: no such file or directory"),
            127
        );
        assert_eq!(start_failure_code("exec /etc: permission denied"), 126);
        assert_eq!(start_failure_code("boom"), 128);
    }
}
