//! Container settings → an OCI runtime spec with Docker's default profile
//! (../shared/docs/security-baseline.md §1): the 14 capabilities in bounding/permitted/effective
//! (inheritable and ambient empty), namespaces pid/mount/network/uts/ipc, the default mounts and
//! their flags, masked and read-only paths, the device cgroup rules and /dev nodes, the default
//! seccomp profile (cap-gated rules follow the final capability set), rlimits, cgroup resources.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::Result;
use crate::oci_spec::runtime::Spec;

/// Docker's default capabilities (moby `caps/defaults.go`), with the `CAP_` prefix.
pub const DEFAULT_CAPABILITIES: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// The user a container's process runs as, already resolved to numbers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserSpec {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups (from /etc/group in the image, plus `--group-add`).
    pub additional_gids: Vec<u32>,
}

/// Which network namespace the container gets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum NetworkNamespace {
    /// A new, empty one (loopback only): `--network none`, and bridge networks before setup.
    #[default]
    New,
    /// The host's (`--network host`).
    Host,
    /// Join an existing one (a netns path, e.g. `/proc/<pid>/ns/net` for `container:<x>`).
    Join(PathBuf),
}

/// An extra mount (binds of hosts/hostname/resolv.conf, `--tmpfs`, later volumes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountSpec {
    pub destination: String,
    /// `bind`, `tmpfs`, …
    pub kind: String,
    pub source: String,
    pub options: Vec<String>,
}

/// One `--ulimit`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ulimit {
    /// `nofile`, `nproc`, … (without `RLIMIT_`).
    pub name: String,
    pub soft: u64,
    pub hard: u64,
}

/// cgroup limits; zero / None means unlimited or default, as in Docker's HostConfig.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resources {
    /// `-m`, bytes.
    pub memory: i64,
    /// `--memory-swap`, bytes (memory + swap); -1 unlimited; 0 = default (2 × memory).
    pub memory_swap: i64,
    /// `--cpus` × 1e9.
    pub nano_cpus: i64,
    /// `-c`.
    pub cpu_shares: i64,
    pub cpu_period: i64,
    pub cpu_quota: i64,
    /// `--cpuset-cpus`.
    pub cpuset_cpus: String,
    /// `--pids-limit`; None or ≤ 0 = unlimited.
    pub pids_limit: Option<i64>,
    /// `--blkio-weight` (10–1000; 0 = unset).
    pub blkio_weight: u16,
}

/// Everything the spec is built from. The engine fills it from the container's config.
#[derive(Debug, Clone, Default)]
pub struct ContainerSpec {
    /// The container ID (64 hex).
    pub id: String,
    /// The mounted root filesystem (overlay of the image's layers, init layer and rw layer).
    pub rootfs: PathBuf,
    /// argv of the init process (entrypoint + cmd, already merged).
    pub args: Vec<String>,
    /// `KEY=value` environment, PATH and HOSTNAME included.
    pub env: Vec<String>,
    /// Working directory (absolute; "/" when unset).
    pub cwd: String,
    pub user: UserSpec,
    pub hostname: String,
    pub domainname: String,
    pub tty: bool,
    /// Initial console size (rows, cols) when `tty`.
    pub console_size: Option<(u16, u16)>,
    pub privileged: bool,
    /// `--cap-add`/`--cap-drop` as given (any case, with or without `CAP_`, or `ALL`).
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub readonly_rootfs: bool,
    pub no_new_privileges: bool,
    /// `--security-opt seccomp=unconfined`.
    pub seccomp_unconfined: bool,
    pub network: NetworkNamespace,
    /// Mounts added after the defaults, in order.
    pub mounts: Vec<MountSpec>,
    /// /dev/shm size in bytes (Docker's default is 64 MiB).
    pub shm_size: u64,
    pub resources: Resources,
    pub ulimits: Vec<Ulimit>,
    /// cgroups path, e.g. `/berth/<id>`.
    pub cgroups_path: String,
    pub sysctls: BTreeMap<String, String>,
}

/// Builds the OCI runtime spec for `c`.
pub fn build(c: &ContainerSpec) -> Result<Spec> {
    let _ = c;
    unimplemented!()
}
