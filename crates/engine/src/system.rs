//! `docker info` and `docker version`: real figures read from the host.

use std::collections::HashMap;
use std::path::Path;

use api_types::models::{
    Commit, LocalNodeState, PluginsInfo, Runtime, SwarmInfo, SystemInfo,
    SystemInfoCgroupDriverEnum, SystemInfoCgroupVersionEnum, SystemVersion,
    SystemVersionComponents, SystemVersionPlatform,
};

use crate::{Engine, Result, rfc3339_nano};

/// berth's version, reported where Docker reports its own.
pub const ENGINE_VERSION: &str = env!("CARGO_PKG_VERSION");
/// Stand-in for Docker's `GoVersion`.
const RUSTC_VERSION: &str = "rustc 1.95";
const GIT_COMMIT: &str = match option_env!("BERTH_GIT_COMMIT") {
    Some(c) => c,
    None => "unknown",
};
const BUILD_TIME: &str = match option_env!("BERTH_BUILD_TIME") {
    Some(t) => t,
    None => "unknown",
};

impl Engine {
    /// `GET /info`.
    pub async fn info(&self) -> Result<SystemInfo> {
        let images = self.blocking("image count", |svc| Ok(svc.count())).await?;
        let data_root = self.data_root().to_path_buf();
        let debug = self.debug_mode();
        let id = self.id.clone();
        let mut info = tokio::task::spawn_blocking(move || host_info(&data_root, debug))
            .await
            .map_err(|_| crate::EngineError::TaskFailed { what: "info" })?;
        info.id = Some(id);
        info.images = Some(i64::try_from(images).unwrap_or(i64::MAX));
        let recs = self.containers.records();
        let count = |f: &dyn Fn(&str) -> bool| {
            i64::try_from(recs.iter().filter(|r| f(&r.state.status)).count()).unwrap_or(0)
        };
        info.containers = Some(count(&|_| true));
        info.containers_running = Some(count(&|s| s == "running"));
        info.containers_paused = Some(count(&|s| s == "paused"));
        info.containers_stopped = Some(count(&|s| s != "running" && s != "paused"));
        info.n_events_listener = Some(i64::try_from(self.events.listeners()).unwrap_or(0));
        info.registry_config = Some(self.registry_service_config());
        info.labels = Some(self.daemon_labels());
        Ok(info)
    }

    /// `GET /version`, without the API version fields (the daemon adds those).
    pub async fn version(&self) -> Result<SystemVersion> {
        let kernel = read_trimmed("/proc/sys/kernel/osrelease").unwrap_or_default();
        let arch = go_arch().to_string();
        let details: HashMap<String, String> = [
            ("GitCommit", GIT_COMMIT),
            ("GoVersion", RUSTC_VERSION),
            ("Os", "linux"),
            ("Arch", arch.as_str()),
            ("BuildTime", BUILD_TIME),
            ("Experimental", "false"),
            ("KernelVersion", kernel.as_str()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        Ok(SystemVersion {
            platform: Some(SystemVersionPlatform {
                name: "berth".to_string(),
            }),
            components: Some(vec![SystemVersionComponents {
                name: "Engine".to_string(),
                version: ENGINE_VERSION.to_string(),
                details: Some(details),
            }]),
            version: Some(ENGINE_VERSION.to_string()),
            git_commit: Some(GIT_COMMIT.to_string()),
            go_version: Some(RUSTC_VERSION.to_string()),
            os: Some("linux".to_string()),
            arch: Some(arch),
            kernel_version: Some(kernel),
            experimental: Some(false),
            build_time: Some(BUILD_TIME.to_string()),
            ..Default::default()
        })
    }
}

/// Docker's (Go's) name for this architecture.
fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

fn read_trimmed(path: impl AsRef<Path>) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
}

fn host_info(data_root: &Path, debug: bool) -> SystemInfo {
    let cgroup = Cgroups::detect();
    let (os_name, os_version) = os_release();
    SystemInfo {
        containers: Some(0),
        containers_running: Some(0),
        containers_paused: Some(0),
        containers_stopped: Some(0),
        driver: Some("overlay2".to_string()),
        driver_status: Some(
            [
                ("Backing Filesystem", backing_fs(data_root).as_str()),
                ("Supports d_type", "true"),
                ("Using metacopy", "false"),
                ("Native Overlay Diff", "true"),
                ("userxattr", "false"),
            ]
            .iter()
            .map(|(k, v)| vec![(*k).to_string(), (*v).to_string()])
            .collect(),
        ),
        docker_root_dir: Some(data_root.display().to_string()),
        plugins: Some(PluginsInfo {
            volume: Some(vec!["local".to_string()]),
            network: Some(vec!["bridge".into(), "host".into(), "null".into()]),
            authorization: None,
            log: Some(vec!["json-file".to_string()]),
        }),
        memory_limit: Some(cgroup.memory),
        swap_limit: Some(cgroup.swap),
        cpu_cfs_period: Some(cgroup.cpu),
        cpu_cfs_quota: Some(cgroup.cpu),
        cpu_shares: Some(cgroup.cpu),
        cpu_set: Some(cgroup.cpuset),
        pids_limit: Some(cgroup.pids),
        oom_kill_disable: Some(cgroup.oom_kill_disable),
        ipv4_forwarding: Some(
            read_trimmed("/proc/sys/net/ipv4/ip_forward").as_deref() == Some("1"),
        ),
        debug: Some(debug),
        nfd: Some(count_dir("/proc/self/fd")),
        n_goroutines: Some(threads()),
        system_time: Some(rfc3339_nano(&chrono::Utc::now())),
        logging_driver: Some("json-file".to_string()),
        cgroup_driver: Some(SystemInfoCgroupDriverEnum::CGROUPFS),
        cgroup_version: Some(if cgroup.v2 {
            SystemInfoCgroupVersionEnum::_2
        } else {
            SystemInfoCgroupVersionEnum::_1
        }),
        n_events_listener: Some(0),
        kernel_version: read_trimmed("/proc/sys/kernel/osrelease"),
        operating_system: Some(os_name),
        os_version: Some(os_version),
        os_type: Some("linux".to_string()),
        architecture: Some(std::env::consts::ARCH.to_string()),
        ncpu: Some(
            std::thread::available_parallelism().map_or(1, |n| i64::try_from(n.get()).unwrap_or(1)),
        ),
        mem_total: Some(mem_total()),
        index_server_address: Some("https://index.docker.io/v1/".to_string()),
        http_proxy: Some(std::env::var("HTTP_PROXY").unwrap_or_default()),
        https_proxy: Some(std::env::var("HTTPS_PROXY").unwrap_or_default()),
        no_proxy: Some(std::env::var("NO_PROXY").unwrap_or_default()),
        name: read_trimmed("/proc/sys/kernel/hostname"),
        labels: Some(Vec::new()),
        experimental_build: Some(false),
        server_version: Some(ENGINE_VERSION.to_string()),
        runtimes: Some(HashMap::from([(
            "runc".to_string(),
            Runtime {
                path: Some("runc".to_string()),
                ..Default::default()
            },
        )])),
        default_runtime: Some("runc".to_string()),
        swarm: Some(SwarmInfo {
            node_id: Some(String::new()),
            node_addr: Some(String::new()),
            local_node_state: Some(LocalNodeState::INACTIVE),
            control_available: Some(false),
            error: Some(String::new()),
            ..Default::default()
        }),
        live_restore_enabled: Some(false),
        init_binary: Some(String::new()),
        containerd_commit: Some(Commit {
            id: Some(String::new()),
        }),
        runc_commit: Some(Commit {
            id: Some(String::new()),
        }),
        init_commit: Some(Commit {
            id: Some(String::new()),
        }),
        security_options: Some(vec!["name=seccomp,profile=builtin".to_string()]),
        warnings: Some(Vec::new()),
        ..Default::default()
    }
}

/// Which cgroup controllers the host offers.
#[derive(Debug, Default)]
struct Cgroups {
    v2: bool,
    memory: bool,
    swap: bool,
    cpu: bool,
    cpuset: bool,
    pids: bool,
    oom_kill_disable: bool,
}

impl Cgroups {
    fn detect() -> Self {
        let root = Path::new("/sys/fs/cgroup");
        if let Some(controllers) = read_trimmed(root.join("cgroup.controllers")) {
            let has = |c: &str| controllers.split_whitespace().any(|x| x == c);
            Self {
                v2: true,
                memory: has("memory"),
                swap: has("memory"),
                cpu: has("cpu"),
                cpuset: has("cpuset"),
                pids: has("pids"),
                oom_kill_disable: false,
            }
        } else {
            let memory = root.join("memory");
            Self {
                v2: false,
                memory: memory.is_dir(),
                swap: memory.join("memory.memsw.limit_in_bytes").exists(),
                cpu: root.join("cpu").join("cpu.cfs_period_us").exists(),
                cpuset: root.join("cpuset").is_dir(),
                pids: root.join("pids").is_dir(),
                oom_kill_disable: memory.join("memory.oom_control").exists(),
            }
        }
    }
}

/// Docker's name for the file system holding `path` (from the longest matching mount).
fn backing_fs(path: &Path) -> String {
    let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    let mut best: Option<(usize, String)> = None;
    for line in mounts.lines() {
        let mut fields = line.split_whitespace();
        let (Some(_dev), Some(mnt), Some(fstype)) = (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let mnt = mnt.replace("\\040", " ");
        if path.starts_with(&mnt) && best.as_ref().is_none_or(|(len, _)| mnt.len() >= *len) {
            best = Some((mnt.len(), fstype.to_string()));
        }
    }
    let fstype = best
        .map(|(_, t)| t)
        .unwrap_or_else(|| "unknown".to_string());
    match fstype.as_str() {
        "ext2" | "ext3" | "ext4" => "extfs".to_string(),
        "overlay" => "overlayfs".to_string(),
        _ => fstype,
    }
}

fn os_release() -> (String, String) {
    let text = std::fs::read_to_string("/etc/os-release")
        .or_else(|_| std::fs::read_to_string("/usr/lib/os-release"))
        .unwrap_or_default();
    let get = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
            .map(|v| v.trim().trim_matches('"').to_string())
    };
    (
        get("PRETTY_NAME").unwrap_or_else(|| "Linux".to_string()),
        get("VERSION_ID").unwrap_or_default(),
    )
}

fn mem_total() -> i64 {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<i64>().ok())
        .map_or(0, |kb| kb.saturating_mul(1024))
}

fn count_dir(path: &str) -> i64 {
    std::fs::read_dir(path).map_or(0, |d| i64::try_from(d.count()).unwrap_or(0))
}

fn threads() -> i64 {
    let text = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_info_has_real_figures() {
        let dir = tempfile::tempdir().unwrap();
        let info = host_info(dir.path(), false);
        let v = serde_json::to_value(&info).unwrap();
        assert_eq!(v["Driver"], "overlay2");
        assert_eq!(v["OSType"], "linux");
        assert!(v["NCPU"].as_i64().unwrap() >= 1);
        assert!(v["MemTotal"].as_i64().unwrap() > 0);
        assert!(!v["KernelVersion"].as_str().unwrap().is_empty());
        assert_eq!(v["Swarm"]["LocalNodeState"], "inactive");
        assert_eq!(v["DriverStatus"][0][0], "Backing Filesystem");
        assert_ne!(v["DriverStatus"][0][1], "unknown");
        assert!(matches!(v["CgroupVersion"].as_str(), Some("1" | "2")));
        assert_eq!(v["Warnings"], serde_json::json!([]));
    }
}
