//! Container settings → an OCI runtime spec with Docker's default profile
//! (../shared/docs/security-baseline.md §1): the 14 capabilities in bounding/permitted/effective
//! (inheritable and ambient empty), namespaces pid/mount/network/uts/ipc, the default mounts and
//! their flags, masked and read-only paths, the device cgroup rules and /dev nodes, the default
//! seccomp profile (cap-gated rules follow the final capability set), rlimits, cgroup resources.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::oci_spec::runtime::Spec;
use crate::{Result, RuntimeError};

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
    /// Join the container's own namespace, prepared by the engine (bridge networks): joined
    /// like [`Self::Join`], and given the private-namespace sysctls like [`Self::New`].
    Prepared(PathBuf),
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

/// Every capability Linux defines, by number (`CAP_CHOWN` = 0 … `CAP_CHECKPOINT_RESTORE` = 40).
pub const ALL_CAPABILITIES: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// Docker's masked paths (§1.4); thermal_throttle entries are added per CPU at build time.
pub const MASKED_PATHS: [&str; 12] = [
    "/proc/acpi",
    "/proc/asound",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/sys/devices/virtual/powercap",
    "/sys/firmware",
];

/// Docker's read-only paths (§1.4).
pub const READONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// The names a ulimit may have (`nofile`, …; `RLIMIT_` and upper case dropped), as docker's
/// go-units accepts them.
pub const RLIMITS: [&str; 16] = [
    "as",
    "core",
    "cpu",
    "data",
    "fsize",
    "locks",
    "memlock",
    "msgqueue",
    "nice",
    "nofile",
    "nproc",
    "rss",
    "rtprio",
    "rttime",
    "sigpending",
    "stack",
];

/// The default RLIMIT_NOFILE (soft and hard), before capping at the host's hard limit.
pub const DEFAULT_NOFILE: u64 = 1_048_576;

/// The capabilities `--privileged` gets: those the running kernel knows (up to
/// `/proc/sys/kernel/cap_last_cap`) that berthd itself holds in its bounding set (a root without
/// some of them can't pass them on; asking would fail the container's start).
pub(crate) fn kernel_capabilities() -> Vec<String> {
    let last = linux::process::cap_last_cap() as usize;
    let held = linux::process::capability_bounding_set();
    ALL_CAPABILITIES
        .iter()
        .enumerate()
        .take(last + 1)
        .filter(|(bit, _)| *bit >= 64 || held & (1u64 << bit) != 0)
        .map(|(_, s)| (*s).to_string())
        .collect()
}

/// `chown`, `CAP_CHOWN`, `Cap_Chown` → `CAP_CHOWN`; `all` → `ALL`; unknown → error.
fn normalize_cap(name: &str) -> Result<String> {
    let upper = name.trim().to_ascii_uppercase();
    if upper == "ALL" {
        return Ok(upper);
    }
    let full = if upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    };
    if ALL_CAPABILITIES.contains(&full.as_str()) {
        Ok(full)
    } else {
        Err(RuntimeError::InvalidSpec(format!(
            "unknown capability: {full:?}"
        )))
    }
}

/// The final capability set: Docker's defaults with `--cap-add`/`--cap-drop` applied (or every
/// capability the kernel knows when privileged).
pub fn capabilities(c: &ContainerSpec) -> Result<Vec<String>> {
    let adds = c
        .cap_add
        .iter()
        .map(|n| normalize_cap(n))
        .collect::<Result<Vec<_>>>()?;
    let drops = c
        .cap_drop
        .iter()
        .map(|n| normalize_cap(n))
        .collect::<Result<Vec<_>>>()?;
    if c.privileged {
        return Ok(kernel_capabilities());
    }
    let mut caps: Vec<String> = if adds.iter().any(|a| a == "ALL") {
        kernel_capabilities()
    } else if drops.iter().any(|d| d == "ALL") {
        Vec::new()
    } else {
        DEFAULT_CAPABILITIES
            .iter()
            .map(|s| (*s).to_string())
            .collect()
    };
    let drop_all = drops.iter().any(|d| d == "ALL");
    if !adds.iter().any(|a| a == "ALL") {
        for a in &adds {
            if !caps.contains(a) {
                caps.push(a.clone());
            }
        }
    }
    if !drop_all {
        caps.retain(|cap| !drops.contains(cap));
    } else if adds.iter().any(|a| a == "ALL") {
        // `--cap-add ALL --cap-drop ALL`: drops win, as in Docker.
        caps.clear();
    }
    Ok(caps)
}

fn rlimits(c: &ContainerSpec) -> Result<Vec<Value>> {
    let host_hard = linux::process::nofile_hard_limit();
    let mut out: Vec<(String, u64, u64)> = Vec::new();
    for u in &c.ulimits {
        let name = u.name.trim().to_ascii_lowercase();
        if !RLIMITS.contains(&name.as_str()) {
            return Err(RuntimeError::InvalidSpec(format!(
                "invalid ulimit type: {}",
                u.name
            )));
        }
        if u.soft > u.hard {
            return Err(RuntimeError::InvalidSpec(format!(
                "ulimit soft limit must be less than or equal to hard limit: {} > {}",
                u.soft, u.hard
            )));
        }
        let typ = format!("RLIMIT_{}", name.to_ascii_uppercase());
        out.retain(|(t, _, _)| *t != typ);
        out.push((typ, u.soft, u.hard));
    }
    if !out.iter().any(|(t, _, _)| t == "RLIMIT_NOFILE") {
        out.push(("RLIMIT_NOFILE".into(), DEFAULT_NOFILE, DEFAULT_NOFILE));
    }
    Ok(out
        .into_iter()
        .map(|(typ, soft, hard)| {
            let (soft, hard) = if typ == "RLIMIT_NOFILE" {
                (soft.min(host_hard), hard.min(host_hard))
            } else {
                (soft, hard)
            };
            json!({"type": typ, "soft": soft, "hard": hard})
        })
        .collect())
}

fn mount(dest: &str, typ: &str, source: &str, options: &[&str]) -> Value {
    json!({"destination": dest, "type": typ, "source": source, "options": options})
}

fn mounts(c: &ContainerSpec) -> Vec<Value> {
    let shm = if c.shm_size == 0 {
        64 * 1024 * 1024
    } else {
        c.shm_size
    };
    let shm_size = format!("size={shm}");
    let sys_opts: &[&str] = if c.privileged {
        &["nosuid", "noexec", "nodev"]
    } else {
        &["nosuid", "noexec", "nodev", "ro"]
    };
    let cgroup_opts: &[&str] = if c.privileged {
        &["nosuid", "noexec", "nodev"]
    } else {
        &["ro", "nosuid", "noexec", "nodev"]
    };
    let defaults = vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"]),
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        ),
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        ),
        mount("/sys", "sysfs", "sysfs", sys_opts),
        mount("/sys/fs/cgroup", "cgroup", "cgroup", cgroup_opts),
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        ),
        mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", &shm_size],
        ),
    ];
    let user_dev = c
        .mounts
        .iter()
        .any(|m| m.destination.trim_end_matches('/') == "/dev");
    let mut out = Vec::new();
    for mut m in defaults {
        let dest = m["destination"].as_str().unwrap_or_default().to_string();
        if user_dev && dest.starts_with("/dev") {
            continue;
        }
        if c.mounts
            .iter()
            .any(|u| u.destination.trim_end_matches('/') == dest)
        {
            continue;
        }
        let exempt = ["/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue"];
        if c.readonly_rootfs
            && !exempt.contains(&dest.as_str())
            && let Some(opts) = m["options"].as_array_mut()
            && !opts.iter().any(|o| o == "ro")
        {
            opts.push(json!("ro"));
        }
        out.push(m);
    }
    for u in &c.mounts {
        let mut options = u.options.clone();
        if u.kind == "tmpfs" {
            for (flag, opposite) in [("noexec", "exec"), ("nosuid", "suid"), ("nodev", "dev")] {
                if !options.iter().any(|o| o == flag || o == opposite) {
                    options.push(flag.to_string());
                }
            }
        }
        out.push(json!({
            "destination": u.destination,
            "type": u.kind,
            "source": u.source,
            "options": options,
        }));
    }
    out
}

fn masked_paths() -> Vec<String> {
    let mut out: Vec<String> = MASKED_PATHS.iter().map(|s| (*s).to_string()).collect();
    if let Ok(entries) = std::fs::read_dir("/sys/devices/system/cpu") {
        let mut cpus: Vec<String> = entries
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| {
                n.strip_prefix("cpu")
                    .is_some_and(|d| d.bytes().all(|b| b.is_ascii_digit()) && !d.is_empty())
            })
            .filter(|n| {
                Path::new("/sys/devices/system/cpu")
                    .join(n)
                    .join("thermal_throttle")
                    .exists()
            })
            .map(|n| format!("/sys/devices/system/cpu/{n}/thermal_throttle"))
            .collect();
        cpus.sort();
        out.extend(cpus);
    }
    out
}

fn dev_rule(allow: bool, typ: &str, major: Option<i64>, minor: Option<i64>) -> Value {
    let mut v = json!({"allow": allow, "access": "rwm"});
    if typ != "a" {
        v["type"] = json!(typ);
    }
    if let Some(m) = major {
        v["major"] = json!(m);
    }
    if let Some(m) = minor {
        v["minor"] = json!(m);
    }
    v
}

fn device_rules(privileged: bool) -> Vec<Value> {
    if privileged {
        return vec![dev_rule(true, "a", None, None)];
    }
    let mut rules = vec![
        dev_rule(false, "a", None, None),
        dev_rule(true, "c", Some(1), Some(5)),
        dev_rule(true, "c", Some(1), Some(3)),
        dev_rule(true, "c", Some(1), Some(9)),
        dev_rule(true, "c", Some(1), Some(8)),
        dev_rule(true, "c", Some(5), Some(0)),
        dev_rule(true, "c", Some(5), Some(1)),
        dev_rule(false, "c", Some(10), Some(229)),
        // runc's always-allowed devices.
        dev_rule(true, "c", Some(1), Some(7)),
        dev_rule(true, "c", Some(136), None),
        dev_rule(true, "c", Some(5), Some(2)),
        dev_rule(true, "c", Some(10), Some(200)),
    ];
    for typ in ["c", "b"] {
        let mut v = dev_rule(true, typ, None, None);
        v["access"] = json!("m");
        rules.push(v);
    }
    rules
}

fn devices() -> Vec<Value> {
    [
        ("null", 1, 3),
        ("zero", 1, 5),
        ("full", 1, 7),
        ("random", 1, 8),
        ("urandom", 1, 9),
        ("tty", 5, 0),
    ]
    .iter()
    .map(|(name, major, minor)| {
        json!({
            "type": "c", "path": format!("/dev/{name}"), "major": major, "minor": minor,
            "fileMode": 0o666, "uid": 0, "gid": 0,
        })
    })
    .collect()
}

/// The cgroup resources of `r` (swap defaults to twice the memory when only memory is set).
pub fn resources_json(r: &Resources, privileged: bool) -> Value {
    let mut res = json!({"devices": device_rules(privileged)});
    if r.memory > 0 {
        let swap = match r.memory_swap {
            0 => r.memory.saturating_mul(2),
            s => s,
        };
        res["memory"] = json!({"limit": r.memory, "swap": swap});
    } else if r.memory_swap != 0 {
        res["memory"] = json!({"swap": r.memory_swap});
    }
    let mut cpu = serde_json::Map::new();
    if r.cpu_shares > 0 {
        cpu.insert("shares".into(), json!(r.cpu_shares));
    }
    if r.nano_cpus > 0 {
        let period: i64 = 100_000;
        cpu.insert("period".into(), json!(period));
        cpu.insert(
            "quota".into(),
            json!(r.nano_cpus.saturating_mul(period) / 1_000_000_000),
        );
    } else {
        if r.cpu_period > 0 {
            cpu.insert("period".into(), json!(r.cpu_period));
        }
        if r.cpu_quota != 0 {
            cpu.insert("quota".into(), json!(r.cpu_quota));
        }
    }
    if !r.cpuset_cpus.is_empty() {
        cpu.insert("cpus".into(), json!(r.cpuset_cpus));
    }
    if !cpu.is_empty() {
        res["cpu"] = Value::Object(cpu);
    }
    if let Some(p) = r.pids_limit.filter(|p| *p > 0) {
        res["pids"] = json!({"limit": p});
    }
    if r.blkio_weight > 0 {
        res["blockIO"] = json!({"weight": r.blkio_weight});
    }
    res
}

fn cgroup_v2() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

/// moby's rule: a shared bind makes the container's root rshared (so mounts made under it reach
/// the host), a slave one rslave; otherwise libcontainer's default (rslave) stands. libcontainer
/// takes the OCI names (`shared`, `slave`) and always applies them recursively.
fn rootfs_propagation(mounts: &[MountSpec]) -> Option<&'static str> {
    let has = |names: &[&str]| {
        mounts
            .iter()
            .any(|m| m.options.iter().any(|o| names.contains(&o.as_str())))
    };
    if has(&["shared", "rshared"]) {
        Some("shared")
    } else if has(&["slave", "rslave"]) {
        Some("slave")
    } else {
        None
    }
}

/// Builds the OCI runtime spec for `c`.
pub fn build(c: &ContainerSpec) -> Result<Spec> {
    if c.args.is_empty() {
        return Err(RuntimeError::InvalidSpec("no command specified".into()));
    }
    let caps = capabilities(c)?;
    let mut process = json!({
        "terminal": c.tty,
        "user": {
            "uid": c.user.uid,
            "gid": c.user.gid,
            "additionalGids": c.user.additional_gids,
        },
        "args": c.args,
        "env": c.env,
        "cwd": if c.cwd.is_empty() { "/" } else { c.cwd.as_str() },
        "capabilities": {
            "bounding": caps,
            "effective": caps,
            "permitted": caps,
            "inheritable": [],
            "ambient": [],
        },
        "rlimits": rlimits(c)?,
        "oomScoreAdj": 0,
    });
    // Only set when on: libcontainer 0.7 loads seccomp *after* dropping capabilities whenever
    // the field is present (even `false`), which then fails without CAP_SYS_ADMIN.
    if c.no_new_privileges {
        process["noNewPrivileges"] = json!(true);
    }
    if c.tty
        && let Some((rows, cols)) = c.console_size
    {
        process["consoleSize"] = json!({"height": rows, "width": cols});
    }
    let mut namespaces = vec![
        json!({"type": "pid"}),
        json!({"type": "ipc"}),
        json!({"type": "uts"}),
        json!({"type": "mount"}),
    ];
    match &c.network {
        NetworkNamespace::New => namespaces.push(json!({"type": "network"})),
        NetworkNamespace::Host => {}
        NetworkNamespace::Join(p) | NetworkNamespace::Prepared(p) => {
            namespaces.push(json!({"type": "network", "path": p}));
        }
    }
    if cgroup_v2() {
        namespaces.push(json!({"type": "cgroup"}));
    }
    let mut sysctl: BTreeMap<String, String> = BTreeMap::new();
    if matches!(
        c.network,
        NetworkNamespace::New | NetworkNamespace::Prepared(_)
    ) {
        sysctl.insert("net.ipv4.ip_unprivileged_port_start".into(), "0".into());
        sysctl.insert("net.ipv4.ping_group_range".into(), "0 2147483647".into());
    }
    sysctl.extend(c.sysctls.iter().map(|(k, v)| (k.clone(), v.clone())));
    let mut linux = json!({
        "namespaces": namespaces,
        "devices": devices(),
        "resources": resources_json(&c.resources, c.privileged),
        "sysctl": sysctl,
    });
    if !c.cgroups_path.is_empty() {
        linux["cgroupsPath"] = json!(c.cgroups_path);
    }
    if let Some(p) = rootfs_propagation(&c.mounts) {
        linux["rootfsPropagation"] = json!(p);
    }
    if !c.privileged {
        linux["maskedPaths"] = json!(masked_paths());
        linux["readonlyPaths"] = json!(READONLY_PATHS);
    }
    if !c.privileged && !c.seccomp_unconfined {
        let profile = crate::seccomp::default_profile(&caps)?;
        linux["seccomp"] = serde_json::to_value(profile)
            .map_err(|e| RuntimeError::InvalidSpec(format!("seccomp profile: {e}")))?;
    }
    let mut spec = json!({
        "ociVersion": "1.0.2",
        "process": process,
        "root": {"path": c.rootfs, "readonly": c.readonly_rootfs},
        "hostname": c.hostname,
        "mounts": mounts(c),
        "linux": linux,
    });
    if !c.domainname.is_empty() {
        spec["domainname"] = json!(c.domainname);
    }
    serde_json::from_value(spec)
        .map_err(|e| RuntimeError::InvalidSpec(format!("runtime spec: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> ContainerSpec {
        ContainerSpec {
            id: "abc".into(),
            rootfs: PathBuf::from("/tmp/rootfs"),
            args: vec!["sh".into()],
            env: vec!["PATH=/bin".into()],
            cwd: "/".into(),
            hostname: "abc".into(),
            cgroups_path: "/berth/abc".into(),
            ..Default::default()
        }
    }

    fn caps_of(spec: &Spec) -> Vec<String> {
        let v = serde_json::to_value(spec).unwrap();
        let mut caps: Vec<String> = v["process"]["capabilities"]["bounding"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap().to_string())
            .collect();
        caps.sort();
        for set in ["effective", "permitted"] {
            let mut other: Vec<String> = v["process"]["capabilities"][set]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c.as_str().unwrap().to_string())
                .collect();
            other.sort();
            assert_eq!(caps, other, "{set}");
        }
        for set in ["inheritable", "ambient"] {
            let empty = v["process"]["capabilities"][set]
                .as_array()
                .is_none_or(|a| a.is_empty());
            assert!(empty, "{set} must be empty");
        }
        caps
    }

    #[test]
    fn default_caps_are_the_fourteen() {
        let spec = build(&base()).unwrap();
        let mut want: Vec<String> = DEFAULT_CAPABILITIES.iter().map(|s| s.to_string()).collect();
        want.sort();
        assert_eq!(caps_of(&spec), want);
    }

    #[test]
    fn cap_add_drop_any_case() {
        let mut c = base();
        c.cap_add = vec!["net_admin".into(), "Cap_Sys_Ptrace".into()];
        c.cap_drop = vec!["CHOWN".into(), "cap_kill".into()];
        let caps = caps_of(&build(&c).unwrap());
        assert!(caps.contains(&"CAP_NET_ADMIN".to_string()));
        assert!(caps.contains(&"CAP_SYS_PTRACE".to_string()));
        assert!(!caps.contains(&"CAP_CHOWN".to_string()));
        assert!(!caps.contains(&"CAP_KILL".to_string()));
        assert_eq!(caps.len(), 14);
    }

    #[test]
    fn cap_all() {
        let mut c = base();
        c.cap_drop = vec!["all".into()];
        c.cap_add = vec!["chown".into()];
        assert_eq!(caps_of(&build(&c).unwrap()), vec!["CAP_CHOWN".to_string()]);
        let mut c = base();
        c.cap_add = vec!["ALL".into()];
        c.cap_drop = vec!["sys_admin".into()];
        let caps = caps_of(&build(&c).unwrap());
        assert!(caps.len() > 30);
        assert!(!caps.contains(&"CAP_SYS_ADMIN".to_string()));
    }

    #[test]
    fn unknown_cap_is_an_error() {
        let mut c = base();
        c.cap_add = vec!["foo".into()];
        let err = build(&c).unwrap_err();
        assert_eq!(err.to_string(), "unknown capability: \"CAP_FOO\"");
    }

    #[test]
    fn privileged_gets_everything_and_no_masks() {
        let mut c = base();
        c.privileged = true;
        let spec = build(&c).unwrap();
        let caps = caps_of(&spec);
        let held = linux::process::capability_bounding_set();
        let want = (0..=linux::process::cap_last_cap())
            .filter(|b| held & (1u64 << b) != 0)
            .count();
        assert_eq!(caps.len(), want);
        let v = serde_json::to_value(&spec).unwrap();
        assert!(
            v["linux"]["maskedPaths"]
                .as_array()
                .is_none_or(|a| a.is_empty())
        );
        assert!(
            v["linux"]["readonlyPaths"]
                .as_array()
                .is_none_or(|a| a.is_empty())
        );
        assert!(v["linux"]["seccomp"].is_null());
        let sys = v["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["destination"] == "/sys");
        assert!(
            !sys.unwrap()["options"]
                .as_array()
                .unwrap()
                .iter()
                .any(|o| o == "ro")
        );
    }

    #[test]
    fn masked_and_readonly_paths() {
        let v = serde_json::to_value(build(&base()).unwrap()).unwrap();
        let masked: Vec<&str> = v["linux"]["maskedPaths"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_str().unwrap())
            .collect();
        for p in MASKED_PATHS {
            assert!(masked.contains(&p), "{p}");
        }
        let ro: Vec<&str> = v["linux"]["readonlyPaths"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_str().unwrap())
            .collect();
        assert_eq!(ro, READONLY_PATHS);
        assert_eq!(v["linux"]["seccomp"]["defaultAction"], "SCMP_ACT_ERRNO");
    }

    #[test]
    fn mounts_table_and_user_dev() {
        let mut c = base();
        c.shm_size = 0;
        c.mounts.push(MountSpec {
            destination: "/etc/hosts".into(),
            kind: "bind".into(),
            source: "/tmp/hosts".into(),
            options: vec!["rbind".into()],
        });
        let v = serde_json::to_value(build(&c).unwrap()).unwrap();
        let dests: Vec<&str> = v["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["destination"].as_str().unwrap())
            .collect();
        assert_eq!(
            dests,
            [
                "/proc",
                "/dev",
                "/dev/pts",
                "/sys",
                "/sys/fs/cgroup",
                "/dev/mqueue",
                "/dev/shm",
                "/etc/hosts"
            ]
        );
        let shm = &v["mounts"][6]["options"];
        assert!(shm.as_array().unwrap().iter().any(|o| o == "size=67108864"));
        let mut c = base();
        c.mounts.push(MountSpec {
            destination: "/dev".into(),
            kind: "bind".into(),
            source: "/dev".into(),
            options: vec![],
        });
        let v = serde_json::to_value(build(&c).unwrap()).unwrap();
        let dests: Vec<&str> = v["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["destination"].as_str().unwrap())
            .collect();
        assert_eq!(dests, ["/proc", "/sys", "/sys/fs/cgroup", "/dev"]);
    }

    #[test]
    fn resources_math() {
        let r = Resources {
            memory: 64 << 20,
            nano_cpus: 1_500_000_000,
            pids_limit: Some(10),
            ..Default::default()
        };
        let v = resources_json(&r, false);
        assert_eq!(v["memory"]["limit"], 64 << 20);
        assert_eq!(v["memory"]["swap"], 128 << 20);
        assert_eq!(v["cpu"]["period"], 100_000);
        assert_eq!(v["cpu"]["quota"], 150_000);
        assert_eq!(v["pids"]["limit"], 10);
        let r = Resources {
            memory: 64 << 20,
            memory_swap: -1,
            pids_limit: Some(0),
            ..Default::default()
        };
        let v = resources_json(&r, false);
        assert_eq!(v["memory"]["swap"], -1);
        assert!(v["pids"].is_null());
    }

    #[test]
    fn nofile_capped_and_sysctls() {
        let v = serde_json::to_value(build(&base()).unwrap()).unwrap();
        let hard = linux::process::nofile_hard_limit().min(DEFAULT_NOFILE);
        let nofile = v["process"]["rlimits"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["type"] == "RLIMIT_NOFILE")
            .unwrap();
        assert_eq!(nofile["hard"], hard);
        assert_eq!(nofile["soft"], hard);
        assert_eq!(
            v["linux"]["sysctl"]["net.ipv4.ip_unprivileged_port_start"],
            "0"
        );
        let mut c = base();
        c.network = NetworkNamespace::Host;
        let v = serde_json::to_value(build(&c).unwrap()).unwrap();
        assert!(
            v["linux"]["sysctl"]
                .get("net.ipv4.ping_group_range")
                .is_none()
        );
        assert!(
            !v["linux"]["namespaces"]
                .as_array()
                .unwrap()
                .iter()
                .any(|n| n["type"] == "network")
        );
    }

    #[test]
    fn shared_or_slave_binds_set_the_root_propagation() {
        let bind = |o: &str| MountSpec {
            destination: "/x".into(),
            kind: "bind".into(),
            source: "/src".into(),
            options: vec!["rbind".into(), o.into()],
        };
        assert_eq!(rootfs_propagation(&[bind("rprivate")]), None);
        assert_eq!(rootfs_propagation(&[bind("rslave")]), Some("slave"));
        assert_eq!(
            rootfs_propagation(&[bind("slave"), bind("rshared")]),
            Some("shared")
        );
    }
}
