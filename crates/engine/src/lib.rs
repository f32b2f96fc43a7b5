//! The berth engine: the service layer between the HTTP edge (`daemon`) and the subsystems
//! (`images`, `storage`, `linux`, and later runtime, network and builder).
//!
//! It owns the data root and the exec root, classifies every subsystem error once into an
//! [`ErrorKind`], and answers in the Docker Engine API's models (`api_types::models`). It knows
//! nothing of HTTP, API versions or command lines: those belong to the daemon.
//!
//! # On-disk layout
//!
//! ```text
//! <data-root>/                      default /var/lib/berth, mode 0711
//!   berthd.lock                     flock held by the one berthd using this root
//!   engine-id                       stable daemon ID shown by `docker info`
//!   content/
//!     blobs/sha256/<hex>            verified, read-only blobs (configs, layers, manifests)
//!     ingest/                       partial writes, renamed into blobs/ once verified
//!   snapshots/<chain-hex>/
//!     fs/                           one unpacked layer (overlayfs form)
//!     meta.json                     its size and parent
//!   images/
//!     repositories.json             reference -> image ID, written atomically
//!     meta/<id-hex>.json            per-image record (last tag time, repo digests, parent)
//!   containers/<id>/
//!     config.v2.json                the container record (config, host config, state), 0600
//!     init/ diff/ work/ rootfs/     init layer, overlay upper/work dirs and mount point
//!     hostname hosts resolv.conf    bind-mounted into the container
//!     <id>-json.log                 the json-file log (rotated to .1, .2, …)
//!   volumes/<name>/                 one volume (crate `volumes`): volume.json, _data/
//!   networks/                       network records          (later issues)
//!   builder/                        build cache              (later issues)
//!
//! <exec-root>/                      default /run/berth: runtime state, gone on reboot
//!   berth.sock                      the API socket (by default)
//!   berthd.pid                      the daemon's pid file (by default)
//!   containers/<id>/                a shim's state (bundle, shim.sock, exit.json)
//!   runtime/                        libcontainer's state root
//!   (c/<short-id>/ and rt/ instead when the exec root is too deep for socket paths)
//! ```

mod build;
mod containers;
mod containers_ops;
mod daemon_settings;
mod disk_usage;
mod error;
pub mod events;
mod exec_ops;
mod filters;
mod images_ops;
mod login;
mod networks;
mod networks_ops;
mod progress;
mod pull;
mod pull_all;
mod push;
mod registry_config;
mod search;
mod system;
mod volumes_ops;

use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use images::ImageService;
use linux::LinuxError;
use linux::lock::LockFile;

pub use build::BuildRequest;
pub use containers::{
    AttachRequest, CommitRequest, CommitResult, ContainerPruneResponse, ExecStartRequest,
    LogsRequest, TopResponse, WaitCondition, WaitFuture, WaitResult,
};
pub use containers::{ContainerStats, StatsStream};
pub use containers::{ExtractRequest, PathStat};
pub use daemon_settings::LiveSettings;
pub use disk_usage::{DfSections, SystemDf};
pub use error::{EngineError, ErrorKind, Result};
pub use filters::Filters;
pub use images_ops::{DiskUsage, ImageInspectDetails, ImportRequest};
pub use networks::NetConfig;
pub use progress::{ByteStream, ProgressEvent, ProgressStream};
pub use pull::PullRequest;
pub use push::PushRequest;
pub use registry::client::Credentials as RegistryCredentials;
pub use registry_config::RegistrySettings;
pub use search::SearchRequest;
pub use system::ENGINE_VERSION;

/// How to open an [`Engine`].
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Persistent state (`/var/lib/berth`).
    pub data_root: PathBuf,
    /// Runtime state (`/run/berth`).
    pub exec_root: PathBuf,
    /// Debug mode, as shown by `docker info`.
    pub debug: bool,
    /// Networking options (default bridge, nftables, address pools).
    pub network: NetConfig,
}

/// The engine on one data root. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct Engine {
    config: EngineConfig,
    id: String,
    images: Arc<ImageService>,
    containers: Arc<containers::Containers>,
    events: Arc<events::Events>,
    /// The registry client pulls use (built on first use).
    registries: pull::Registries,
    /// Settings a daemon reload changes (debug, labels, default log options).
    live: daemon_settings::Live,
    /// Held for the engine's lifetime; dropping it releases the data root.
    _lock: LockFile,
}

impl Engine {
    /// Creates the data and exec roots, locks the data root against a second berthd and opens
    /// the image store.
    pub fn open(config: EngineConfig) -> Result<Self> {
        let data_root = &config.data_root;
        fs::create_dir_all(data_root).map_err(|e| io_err("create", data_root, e))?;
        fs::set_permissions(data_root, fs::Permissions::from_mode(0o711))
            .map_err(|e| io_err("chmod", data_root, e))?;
        fs::create_dir_all(&config.exec_root)
            .map_err(|e| io_err("create", &config.exec_root, e))?;

        let lock = lock_data_root(data_root)?;
        let id = engine_id(data_root)?;
        build::remove_stale_temporaries(data_root);
        let images = Arc::new(ImageService::open(data_root)?);
        let volumes = Arc::new(volumes::VolumeStore::open(&data_root.join("volumes"))?);
        let networks = Arc::new(networks::Networks::open(
            data_root,
            &config.exec_root,
            config.network.clone(),
        )?);
        let containers = containers::Containers::open(
            data_root,
            &config.exec_root,
            Arc::clone(&images),
            volumes,
            networks,
        )?;
        let events = Arc::clone(&containers.events);
        let registries = pull::Registries::with_metadata_dir(data_root.join("distribution"));
        Ok(Self {
            config,
            id,
            images,
            containers,
            events,
            registries,
            live: daemon_settings::Live::default(),
            _lock: lock,
        })
    }

    /// The data root this engine uses.
    pub fn data_root(&self) -> &Path {
        &self.config.data_root
    }

    /// The exec root this engine uses.
    pub fn exec_root(&self) -> &Path {
        &self.config.exec_root
    }

    /// Runs blocking image work on the blocking pool.
    async fn blocking<T, F>(&self, what: &'static str, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&ImageService) -> Result<T> + Send + 'static,
    {
        let images = Arc::clone(&self.images);
        tokio::task::spawn_blocking(move || f(&images))
            .await
            .map_err(|_| EngineError::TaskFailed { what })?
    }
}

fn io_err(op: &'static str, path: &Path, source: std::io::Error) -> EngineError {
    EngineError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// Takes the exclusive lock on `<data-root>/berthd.lock`.
fn lock_data_root(data_root: &Path) -> Result<LockFile> {
    LockFile::acquire(&data_root.join("berthd.lock")).map_err(|e| match e {
        LinuxError::Locked { .. } => EngineError::DataRootInUse {
            path: data_root.to_path_buf(),
        },
        other => EngineError::Lock(other),
    })
}

/// Reads `<data-root>/engine-id`, creating it (atomically) on first use.
fn engine_id(data_root: &Path) -> Result<String> {
    let path = data_root.join("engine-id");
    match fs::read_to_string(&path) {
        Ok(s) if !s.trim().is_empty() => return Ok(s.trim().to_string()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err("read", &path, e)),
    }
    let uuid_path = Path::new("/proc/sys/kernel/random/uuid");
    let id = fs::read_to_string(uuid_path).map_err(|e| io_err("read", uuid_path, e))?;
    let id = id.trim().to_string();
    let tmp = data_root.join("engine-id.tmp");
    let mut f = File::create(&tmp).map_err(|e| io_err("create", &tmp, e))?;
    f.write_all(format!("{id}\n").as_bytes())
        .map_err(|e| io_err("write", &tmp, e))?;
    f.sync_all().map_err(|e| io_err("sync", &tmp, e))?;
    fs::rename(&tmp, &path).map_err(|e| io_err("rename", &path, e))?;
    Ok(id)
}

/// Runs the container shim (`berthd shim <config>`); returns the process exit code.
pub fn run_shim(config_path: &Path) -> i32 {
    runtime::shim::main(config_path)
}

/// The names a ulimit may have (`nofile`, `nproc`, …).
pub const ULIMIT_NAMES: [&str; 16] = runtime::spec::RLIMITS;

/// Raises the process's soft open-files limit to its hard limit (berthd does at start; the
/// containers get their own pinned limit); the new soft limit.
pub fn raise_fd_limit() -> Result<u64> {
    Ok(linux::process::raise_nofile_soft_limit()?)
}

/// Formats a time as Go's RFC3339Nano (trailing zeros of the fraction dropped).
pub(crate) fn rfc3339_nano(t: &chrono::DateTime<chrono::Utc>) -> String {
    runtime::logs::format_time(t)
}

/// Go's zero time, which Docker prints for "never".
pub(crate) const GO_ZERO_TIME: &str = "0001-01-01T00:00:00Z";

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn rfc3339_nano_trims_like_go() {
        let t = chrono::Utc.with_ymd_and_hms(2024, 1, 2, 3, 4, 5).unwrap();
        assert_eq!(rfc3339_nano(&t), "2024-01-02T03:04:05Z");
        let t = t + chrono::Duration::nanoseconds(120_000_000);
        assert_eq!(rfc3339_nano(&t), "2024-01-02T03:04:05.12Z");
    }

    #[test]
    fn engine_id_is_stable() {
        let dir = tempfile::tempdir().unwrap();
        let a = engine_id(dir.path()).unwrap();
        let b = engine_id(dir.path()).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.len(), 36);
    }

    #[test]
    fn second_lock_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let first = lock_data_root(dir.path()).unwrap();
        let err = lock_data_root(dir.path()).unwrap_err();
        assert!(matches!(err, EngineError::DataRootInUse { .. }), "{err}");
        drop(first);
        assert!(lock_data_root(dir.path()).is_ok());
    }
}
