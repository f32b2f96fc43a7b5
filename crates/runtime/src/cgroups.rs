//! A container's cgroup: the figures `docker stats` shows and the live limits `docker update`
//! changes, on cgroup v1 (one hierarchy per controller, `/sys/fs/cgroup/<controller>/…`) and v2
//! (the unified hierarchy, detected by `/sys/fs/cgroup/cgroup.controllers`).
//!
//! A cgroup is named by the spec's `cgroupsPath` (`/berth/<id>`). Beside it: host-wide figures
//! the stats need (`/proc/stat` CPU time and online CPUs, `/proc/meminfo` total memory) and a
//! process's network counters (`/proc/<pid>/net/dev`). This module reads and writes kernel
//! interface files only; it knows nothing of container records or of the API's JSON shapes (the
//! engine maps [`Stats`] to Docker's stats object).

use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::path::{Component, Path, PathBuf};

use crate::{Result, RuntimeError};

/// Where the cgroup hierarchies are mounted.
pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// `USER_HZ`: the unit of `/proc/stat` and v1 `cpuacct.stat` (100 on every Linux ABI berth
/// runs on).
const CLOCK_TICKS: u64 = 100;
const NANOS_PER_SEC: u64 = 1_000_000_000;

/// The keys moby reports from a v1 `memory.stat` (missing ones read as 0).
const V1_MEMORY_KEYS: &[&str] = &[
    "cache",
    "rss",
    "rss_huge",
    "mapped_file",
    "dirty",
    "writeback",
    "pgpgin",
    "pgpgout",
    "pgfault",
    "pgmajfault",
    "inactive_anon",
    "active_anon",
    "inactive_file",
    "active_file",
    "unevictable",
    "hierarchical_memory_limit",
    "hierarchical_memsw_limit",
    "total_cache",
    "total_rss",
    "total_rss_huge",
    "total_mapped_file",
    "total_dirty",
    "total_writeback",
    "total_pgpgin",
    "total_pgpgout",
    "total_pgfault",
    "total_pgmajfault",
    "total_inactive_anon",
    "total_active_anon",
    "total_inactive_file",
    "total_active_file",
    "total_unevictable",
];

/// The keys moby reports from a v2 `memory.stat` (missing ones read as 0).
const V2_MEMORY_KEYS: &[&str] = &[
    "anon",
    "file",
    "kernel_stack",
    "slab",
    "sock",
    "shmem",
    "file_mapped",
    "file_dirty",
    "file_writeback",
    "anon_thp",
    "inactive_anon",
    "active_anon",
    "inactive_file",
    "active_file",
    "unevictable",
    "slab_reclaimable",
    "slab_unreclaimable",
    "pgfault",
    "pgmajfault",
    "workingset_refault",
    "workingset_activate",
    "workingset_nodereclaim",
    "pgrefill",
    "pgscan",
    "pgsteal",
    "pgactivate",
    "pgdeactivate",
    "pglazyfree",
    "pglazyfreed",
    "thp_fault_alloc",
    "thp_collapse_alloc",
];

/// CPU throttling counters (`cpu.stat`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Throttling {
    pub periods: u64,
    pub throttled_periods: u64,
    /// Nanoseconds.
    pub throttled_time: u64,
}

/// CPU time of the cgroup, in nanoseconds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CpuStats {
    pub total_usage: u64,
    /// Per CPU (v1 `cpuacct.usage_percpu`); empty on v2.
    pub percpu_usage: Vec<u64>,
    pub usage_in_kernelmode: u64,
    pub usage_in_usermode: u64,
    pub throttling: Throttling,
}

/// Memory figures, in bytes (`stats` holds moby's selection of `memory.stat`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemoryStats {
    pub usage: u64,
    /// v1 only (`memory.max_usage_in_bytes`); 0 on v2.
    pub max_usage: u64,
    /// v1 `memory.failcnt`; v2 the `oom` count of `memory.events`.
    pub failcnt: u64,
    /// The limit, or the machine's memory when unlimited.
    pub limit: u64,
    pub stats: BTreeMap<String, u64>,
}

/// Number of tasks and the limit (0 = unlimited).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PidsStats {
    pub current: u64,
    pub limit: u64,
}

/// One line of a blkio/io statistics file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlkioEntry {
    pub major: u64,
    pub minor: u64,
    /// `Read`, `Write`, `Sync`, `Async`, `Discard`, `Total` on v1; `read`/`write` on v2.
    pub op: String,
    pub value: u64,
}

/// Block I/O counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlkioStats {
    /// Bytes per device and operation.
    pub io_service_bytes_recursive: Vec<BlkioEntry>,
    /// Operations per device and kind (v1 only).
    pub io_serviced_recursive: Vec<BlkioEntry>,
}

/// One sample of a cgroup.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    pub cpu: CpuStats,
    pub memory: MemoryStats,
    pub pids: PidsStats,
    pub blkio: BlkioStats,
    /// Whether the figures are v1's (percpu, max_usage, the v1 blkio files) or v2's.
    pub v2: bool,
}

/// Host CPU time (`/proc/stat`, idle included) and the number of online CPUs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SystemCpu {
    /// Nanoseconds.
    pub usage: u64,
    pub online_cpus: u32,
}

/// Counters of one network interface (`/proc/<pid>/net/dev`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetStats {
    pub rx_bytes: u64,
    pub rx_packets: u64,
    pub rx_errors: u64,
    pub rx_dropped: u64,
    pub tx_bytes: u64,
    pub tx_packets: u64,
    pub tx_errors: u64,
    pub tx_dropped: u64,
}

/// Limits to write into a live container's cgroup; `None` leaves a setting as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResourceUpdate {
    /// Bytes; -1 = unlimited.
    pub memory: Option<i64>,
    /// Memory + swap in bytes; -1 = unlimited swap.
    pub memory_swap: Option<i64>,
    /// Soft limit in bytes.
    pub memory_reservation: Option<i64>,
    pub cpu_shares: Option<u64>,
    /// Microseconds.
    pub cpu_period: Option<u64>,
    /// Microseconds per period; -1 = unlimited.
    pub cpu_quota: Option<i64>,
    pub cpuset_cpus: Option<String>,
    pub cpuset_mems: Option<String>,
    /// ≤ 0 = unlimited.
    pub pids_limit: Option<i64>,
    /// 10–1000.
    pub blkio_weight: Option<u16>,
}

impl ResourceUpdate {
    /// Whether nothing would be written.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// One container's cgroup.
#[derive(Debug, Clone)]
pub struct Cgroup {
    root: PathBuf,
    rel: PathBuf,
    v2: bool,
}

impl Cgroup {
    /// The cgroup of `cgroups_path` (`/berth/<id>`) under [`CGROUP_ROOT`].
    pub fn new(cgroups_path: &str) -> Self {
        Self::with_root(Path::new(CGROUP_ROOT), cgroups_path)
    }

    /// The cgroup of `cgroups_path` under another mount point (tests use fixture trees).
    /// Components other than plain names are dropped, so the path stays below `root`.
    pub fn with_root(root: &Path, cgroups_path: &str) -> Self {
        let rel: PathBuf = Path::new(cgroups_path)
            .components()
            .filter_map(|c| match c {
                Component::Normal(n) => Some(n),
                _ => None,
            })
            .collect();
        Self {
            root: root.to_path_buf(),
            rel,
            v2: root.join("cgroup.controllers").exists(),
        }
    }

    /// Whether this is the unified (v2) hierarchy.
    pub fn is_v2(&self) -> bool {
        self.v2
    }

    /// The cgroup's directory for a v1 controller (the controller is ignored on v2).
    pub fn dir(&self, controller: &str) -> PathBuf {
        if self.v2 {
            self.root.join(&self.rel)
        } else {
            self.root.join(controller).join(&self.rel)
        }
    }

    /// Whether the cgroup exists (its memory hierarchy on v1).
    pub fn exists(&self) -> bool {
        !self.rel.as_os_str().is_empty() && self.dir("memory").is_dir()
    }

    fn read(&self, controller: &str, file: &str) -> Option<String> {
        std::fs::read_to_string(self.dir(controller).join(file)).ok()
    }

    fn read_u64(&self, controller: &str, file: &str) -> Option<u64> {
        self.read(controller, file).and_then(|s| parse_u64(&s))
    }

    /// One sample. Fails when the cgroup does not exist (the container is not running);
    /// a missing controller file reads as zeros.
    pub fn stats(&self) -> Result<Stats> {
        self.stats_with(machine_memory().unwrap_or(0))
    }

    fn stats_with(&self, machine_memory: u64) -> Result<Stats> {
        if !self.exists() {
            return Err(RuntimeError::Io {
                op: "read",
                path: self.dir("memory"),
                source: std::io::Error::from(ErrorKind::NotFound),
            });
        }
        let mut s = if self.v2 {
            self.stats_v2()
        } else {
            self.stats_v1()
        };
        if machine_memory > 0 && s.memory.limit > machine_memory {
            s.memory.limit = machine_memory;
        }
        Ok(s)
    }

    fn stats_v1(&self) -> Stats {
        let mut s = Stats::default();
        // cpu: cpuacct for usage, cpu for throttling.
        s.cpu.total_usage = self.read_u64("cpuacct", "cpuacct.usage").unwrap_or(0);
        s.cpu.percpu_usage = self
            .read("cpuacct", "cpuacct.usage_percpu")
            .map(|t| t.split_whitespace().filter_map(parse_u64).collect())
            .unwrap_or_default();
        if let Some(t) = self.read("cpuacct", "cpuacct.stat") {
            let kv = key_values(&t);
            let ns = |k: &str| {
                kv.get(k)
                    .copied()
                    .unwrap_or(0)
                    .saturating_mul(NANOS_PER_SEC)
                    / CLOCK_TICKS
            };
            s.cpu.usage_in_usermode = ns("user");
            s.cpu.usage_in_kernelmode = ns("system");
        }
        if let Some(t) = self.read("cpu", "cpu.stat") {
            let kv = key_values(&t);
            s.cpu.throttling = Throttling {
                periods: kv.get("nr_periods").copied().unwrap_or(0),
                throttled_periods: kv.get("nr_throttled").copied().unwrap_or(0),
                throttled_time: kv.get("throttled_time").copied().unwrap_or(0),
            };
        }
        // memory
        let stat = self
            .read("memory", "memory.stat")
            .map(|t| key_values(&t))
            .unwrap_or_default();
        s.memory = MemoryStats {
            usage: self
                .read_u64("memory", "memory.usage_in_bytes")
                .unwrap_or(0),
            max_usage: self
                .read_u64("memory", "memory.max_usage_in_bytes")
                .unwrap_or(0),
            failcnt: self.read_u64("memory", "memory.failcnt").unwrap_or(0),
            limit: self
                .read_u64("memory", "memory.limit_in_bytes")
                .unwrap_or(u64::MAX),
            stats: pick(&stat, V1_MEMORY_KEYS),
        };
        s.pids = self.pids();
        s.blkio = BlkioStats {
            io_service_bytes_recursive: self
                .read("blkio", "blkio.throttle.io_service_bytes_recursive")
                .map(|t| parse_blkio_v1(&t))
                .unwrap_or_default(),
            io_serviced_recursive: self
                .read("blkio", "blkio.throttle.io_serviced_recursive")
                .map(|t| parse_blkio_v1(&t))
                .unwrap_or_default(),
        };
        s
    }

    fn stats_v2(&self) -> Stats {
        let mut s = Stats {
            v2: true,
            ..Default::default()
        };
        if let Some(t) = self.read("", "cpu.stat") {
            let kv = key_values(&t);
            let us = |k: &str| kv.get(k).copied().unwrap_or(0).saturating_mul(1000);
            s.cpu = CpuStats {
                total_usage: us("usage_usec"),
                percpu_usage: Vec::new(),
                usage_in_kernelmode: us("system_usec"),
                usage_in_usermode: us("user_usec"),
                throttling: Throttling {
                    periods: kv.get("nr_periods").copied().unwrap_or(0),
                    throttled_periods: kv.get("nr_throttled").copied().unwrap_or(0),
                    throttled_time: us("throttled_usec"),
                },
            };
        }
        let stat = self
            .read("", "memory.stat")
            .map(|t| key_values(&t))
            .unwrap_or_default();
        let events = self
            .read("", "memory.events")
            .map(|t| key_values(&t))
            .unwrap_or_default();
        s.memory = MemoryStats {
            usage: self.read_u64("", "memory.current").unwrap_or(0),
            max_usage: 0,
            failcnt: events.get("oom").copied().unwrap_or(0),
            limit: self.read_u64("", "memory.max").unwrap_or(u64::MAX),
            stats: pick(&stat, V2_MEMORY_KEYS),
        };
        s.pids = self.pids();
        s.blkio.io_service_bytes_recursive = self
            .read("", "io.stat")
            .map(|t| parse_io_stat_v2(&t))
            .unwrap_or_default();
        s
    }

    fn pids(&self) -> PidsStats {
        PidsStats {
            current: self.read_u64("pids", "pids.current").unwrap_or(0),
            limit: self
                .read_u64("pids", "pids.max")
                .filter(|l| *l != u64::MAX)
                .unwrap_or(0),
        }
    }

    /// Whether the kernel's OOM killer killed a task of this cgroup (v1 `oom_kill` of
    /// `memory.oom_control`, kernels ≥ 4.13; v2 `oom_kill` of `memory.events`). On v1 kernels
    /// without the counter, an OOM is assumed when the memory limit was hit (`memory.failcnt`)
    /// and usage reached the limit. Must be called before the cgroup is deleted.
    pub fn oom_killed(&self) -> bool {
        self.exists() && ::shim::container::oom_killed(&self.dir("memory"), self.v2)
    }

    /// The cgroup's directories that exist: one per v1 hierarchy it was created in, or the
    /// one v2 directory.
    pub fn existing_dirs(&self) -> Vec<PathBuf> {
        if self.rel.as_os_str().is_empty() {
            return Vec::new();
        }
        if self.v2 {
            let d = self.root.join(&self.rel);
            return if d.is_dir() { vec![d] } else { Vec::new() };
        }
        let mut dirs: Vec<PathBuf> = std::fs::read_dir(&self.root)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path().join(&self.rel))
            .filter(|d| d.is_dir())
            .collect();
        dirs.sort();
        dirs
    }

    /// Writes `u` into the cgroup; returns warnings for settings the kernel cannot take
    /// (Docker's texts).
    pub fn update(&self, u: &ResourceUpdate) -> Result<Vec<String>> {
        if !self.exists() {
            return Err(RuntimeError::Io {
                op: "open",
                path: self.dir("memory"),
                source: std::io::Error::from(ErrorKind::NotFound),
            });
        }
        if self.v2 {
            self.update_v2(u)
        } else {
            self.update_v1(u)
        }
    }

    fn write(&self, controller: &str, file: &str, value: &str) -> Result<()> {
        let path = self.dir(controller).join(file);
        std::fs::write(&path, value).map_err(|source| RuntimeError::Io {
            op: "write",
            path,
            source,
        })
    }

    fn has(&self, controller: &str, file: &str) -> bool {
        self.dir(controller).join(file).exists()
    }

    fn update_v1(&self, u: &ResourceUpdate) -> Result<Vec<String>> {
        let mut warnings = Vec::new();
        let mut swap = u.memory_swap;
        if swap.is_some() && !self.has("memory", "memory.memsw.limit_in_bytes") {
            warnings.push(
                "Your kernel does not support swap limit capabilities or the cgroup is not mounted. Memory limited without swap."
                    .to_string(),
            );
            swap = None;
        }
        let mem = u.memory.map(v1_limit);
        let swap = swap.map(v1_limit);
        match (mem, swap) {
            (Some(m), Some(s)) => {
                // The kernel keeps memory ≤ memory+swap at every step: raise the swap limit
                // first when it grows past the current memory limit, else lower memory first.
                let cur = self
                    .read_u64("memory", "memory.limit_in_bytes")
                    .unwrap_or(u64::MAX);
                let s_val = u64::try_from(s).unwrap_or(u64::MAX);
                if s == -1 || cur < s_val {
                    self.write("memory", "memory.memsw.limit_in_bytes", &s.to_string())?;
                    self.write("memory", "memory.limit_in_bytes", &m.to_string())?;
                } else {
                    self.write("memory", "memory.limit_in_bytes", &m.to_string())?;
                    self.write("memory", "memory.memsw.limit_in_bytes", &s.to_string())?;
                }
            }
            (Some(m), None) => self.write("memory", "memory.limit_in_bytes", &m.to_string())?,
            (None, Some(s)) => {
                self.write("memory", "memory.memsw.limit_in_bytes", &s.to_string())?;
            }
            (None, None) => {}
        }
        if let Some(r) = u.memory_reservation {
            self.write(
                "memory",
                "memory.soft_limit_in_bytes",
                &v1_limit(r).to_string(),
            )?;
        }
        if let Some(s) = u.cpu_shares {
            self.write("cpu", "cpu.shares", &s.to_string())?;
        }
        // A smaller period can be refused while the old quota is in force: retry it after
        // the quota (runc does the same).
        let mut period_failed = None;
        if let Some(p) = u.cpu_period
            && let Err(e) = self.write("cpu", "cpu.cfs_period_us", &p.to_string())
        {
            if u.cpu_quota.is_none() {
                return Err(e);
            }
            period_failed = Some(p);
        }
        if let Some(q) = u.cpu_quota {
            let q = if q <= 0 { -1 } else { q };
            self.write("cpu", "cpu.cfs_quota_us", &q.to_string())?;
        }
        if let Some(p) = period_failed {
            self.write("cpu", "cpu.cfs_period_us", &p.to_string())?;
        }
        if let Some(c) = &u.cpuset_cpus {
            self.write("cpuset", "cpuset.cpus", c)?;
        }
        if let Some(m) = &u.cpuset_mems {
            self.write("cpuset", "cpuset.mems", m)?;
        }
        if let Some(p) = u.pids_limit {
            self.write("pids", "pids.max", &pids_value(p))?;
        }
        if let Some(w) = u.blkio_weight {
            if self.has("blkio", "blkio.weight") {
                self.write("blkio", "blkio.weight", &w.to_string())?;
            } else if self.has("blkio", "blkio.bfq.weight") {
                self.write("blkio", "blkio.bfq.weight", &w.to_string())?;
            } else {
                warnings.push(BLKIO_WEIGHT_WARNING.to_string());
            }
        }
        Ok(warnings)
    }

    fn update_v2(&self, u: &ResourceUpdate) -> Result<Vec<String>> {
        let mut warnings = Vec::new();
        if let Some(m) = u.memory {
            self.write("", "memory.max", &v2_max(m))?;
        }
        if let Some(s) = u.memory_swap {
            if self.has("", "memory.swap.max") {
                let mem = match u.memory {
                    Some(m) => m,
                    None => self
                        .read_u64("", "memory.max")
                        .and_then(|m| i64::try_from(m).ok())
                        .unwrap_or(-1),
                };
                self.write("", "memory.swap.max", &v2_swap(s, mem)?)?;
            } else {
                warnings.push(
                    "Your kernel does not support swap limit capabilities or the cgroup is not mounted. Memory limited without swap."
                        .to_string(),
                );
            }
        }
        if let Some(r) = u.memory_reservation {
            self.write("", "memory.low", &v2_max(r))?;
        }
        if let Some(s) = u.cpu_shares {
            self.write("", "cpu.weight", &shares_to_weight(s).to_string())?;
        }
        if u.cpu_quota.is_some() || u.cpu_period.is_some() {
            let cur = self.read("", "cpu.max").unwrap_or_default();
            let mut parts = cur.split_whitespace();
            let cur_quota = parts.next().unwrap_or("max").to_string();
            let cur_period = parts.next().unwrap_or("100000").to_string();
            let quota = match u.cpu_quota {
                Some(q) if q > 0 => q.to_string(),
                Some(_) => "max".to_string(),
                None => cur_quota,
            };
            let period = u.cpu_period.map_or(cur_period, |p| p.to_string());
            self.write("", "cpu.max", &format!("{quota} {period}"))?;
        }
        if let Some(c) = &u.cpuset_cpus {
            self.write("", "cpuset.cpus", c)?;
        }
        if let Some(m) = &u.cpuset_mems {
            self.write("", "cpuset.mems", m)?;
        }
        if let Some(p) = u.pids_limit {
            self.write("", "pids.max", &pids_value(p))?;
        }
        if let Some(w) = u.blkio_weight {
            if self.has("", "io.bfq.weight") {
                self.write("", "io.bfq.weight", &w.to_string())?;
            } else if self.has("", "io.weight") {
                self.write("", "io.weight", &blkio_to_io_weight(w).to_string())?;
            } else {
                warnings.push(BLKIO_WEIGHT_WARNING.to_string());
            }
        }
        Ok(warnings)
    }
}

const BLKIO_WEIGHT_WARNING: &str =
    "Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded.";

/// A v1 limit value: anything ≤ 0 is unlimited (-1).
fn v1_limit(v: i64) -> i64 {
    if v <= 0 { -1 } else { v }
}

/// A v2 `*.max`/`*.low` value: ≤ 0 is "max" (for `memory.low`, 0 would be the default; Docker
/// never sends ≤ 0 there).
fn v2_max(v: i64) -> String {
    if v <= 0 {
        "max".to_string()
    } else {
        v.to_string()
    }
}

/// v2 `memory.swap.max` holds swap alone; Docker's value is memory + swap.
fn v2_swap(memory_swap: i64, memory: i64) -> Result<String> {
    if memory_swap == -1 {
        return Ok("max".to_string());
    }
    if memory <= 0 {
        return Err(RuntimeError::InvalidSpec(
            "unable to set swap limit without memory limit".to_string(),
        ));
    }
    if memory_swap < memory {
        return Err(RuntimeError::InvalidSpec(format!(
            "memory+swap limit ({memory_swap}) cannot be lower than memory limit ({memory})"
        )));
    }
    Ok((memory_swap - memory).to_string())
}

fn pids_value(limit: i64) -> String {
    if limit <= 0 {
        "max".to_string()
    } else {
        limit.to_string()
    }
}

/// cgroup v1 `cpu.shares` (2–262144) → v2 `cpu.weight` (1–10000), as runc converts.
pub fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    let s = shares.clamp(2, 262_144);
    1 + ((s - 2) * 9999) / 262_142
}

/// `--blkio-weight` (10–1000) → v2 `io.weight` (1–10000), as runc converts.
pub fn blkio_to_io_weight(weight: u16) -> u64 {
    let w = u64::from(weight.clamp(10, 1000));
    1 + (w - 10) * 9999 / 990
}

/// A number, or `max` (u64::MAX). Cgroup files end in a newline.
fn parse_u64(s: &str) -> Option<u64> {
    let t = s.trim();
    if t == "max" {
        return Some(u64::MAX);
    }
    t.parse().ok().or_else(|| {
        // v1 limits can read back as large signed values; negatives mean unlimited.
        t.parse::<i64>()
            .ok()
            .map(|v| if v < 0 { u64::MAX } else { 0 })
    })
}

/// `key value` lines (`memory.stat`, `cpu.stat`, `memory.events`, `cpuacct.stat`).
fn key_values(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let k = it.next()?;
            let v = parse_u64(it.next()?)?;
            Some((k.to_string(), v))
        })
        .collect()
}

fn pick(stat: &BTreeMap<String, u64>, keys: &[&str]) -> BTreeMap<String, u64> {
    keys.iter()
        .map(|k| ((*k).to_string(), stat.get(*k).copied().unwrap_or(0)))
        .collect()
}

/// v1 `blkio.throttle.*_recursive`: `MAJ:MIN Op value` lines and a final `Total value`.
pub fn parse_blkio_v1(text: &str) -> Vec<BlkioEntry> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let [dev, op, value] = f.as_slice() else {
                return None;
            };
            let (major, minor) = dev.split_once(':')?;
            Some(BlkioEntry {
                major: major.parse().ok()?,
                minor: minor.parse().ok()?,
                op: (*op).to_string(),
                value: value.parse().ok()?,
            })
        })
        .collect()
}

/// v2 `io.stat`: `MAJ:MIN rbytes=… wbytes=… rios=… …` → read/write byte entries, as moby.
pub fn parse_io_stat_v2(text: &str) -> Vec<BlkioEntry> {
    let mut out = Vec::new();
    for l in text.lines() {
        let mut it = l.split_whitespace();
        let Some((major, minor)) = it.next().and_then(|d| d.split_once(':')) else {
            continue;
        };
        let (Ok(major), Ok(minor)) = (major.parse::<u64>(), minor.parse::<u64>()) else {
            continue;
        };
        let kv: BTreeMap<&str, u64> = it
            .filter_map(|p| {
                let (k, v) = p.split_once('=')?;
                Some((k, v.parse().ok()?))
            })
            .collect();
        for (op, key) in [("read", "rbytes"), ("write", "wbytes")] {
            out.push(BlkioEntry {
                major,
                minor,
                op: op.to_string(),
                value: kv.get(key).copied().unwrap_or(0),
            });
        }
    }
    out
}

/// `/proc/stat`: the `cpu` line's first seven fields (user … softirq, idle included) in
/// nanoseconds, and the number of `cpuN` lines.
pub fn parse_proc_stat(text: &str) -> Option<SystemCpu> {
    let mut usage = None;
    let mut online = 0u32;
    for l in text.lines() {
        let mut it = l.split_whitespace();
        let Some(name) = it.next() else { continue };
        if name == "cpu" {
            let ticks: u64 = it.take(7).filter_map(|v| v.parse::<u64>().ok()).sum();
            usage = Some(ticks.saturating_mul(NANOS_PER_SEC / CLOCK_TICKS));
        } else if name.len() > 3
            && name.starts_with("cpu")
            && name[3..].bytes().all(|b| b.is_ascii_digit())
        {
            online += 1;
        }
    }
    usage.map(|usage| SystemCpu {
        usage,
        online_cpus: online,
    })
}

/// The host's CPU time and online CPUs.
pub fn system_cpu() -> Result<SystemCpu> {
    let path = Path::new("/proc/stat");
    let text = std::fs::read_to_string(path).map_err(|source| RuntimeError::Io {
        op: "read",
        path: path.to_path_buf(),
        source,
    })?;
    parse_proc_stat(&text).ok_or_else(|| RuntimeError::Io {
        op: "parse",
        path: path.to_path_buf(),
        source: std::io::Error::from(ErrorKind::InvalidData),
    })
}

/// `MemTotal` of `/proc/meminfo` in bytes.
pub fn parse_meminfo(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb.saturating_mul(1024))
}

/// The machine's memory in bytes.
pub fn machine_memory() -> Option<u64> {
    parse_meminfo(&std::fs::read_to_string("/proc/meminfo").ok()?)
}

/// `/proc/<pid>/net/dev`: counters per interface, loopback left out.
pub fn parse_net_dev(text: &str) -> BTreeMap<String, NetStats> {
    let mut out = BTreeMap::new();
    for l in text.lines().skip(2) {
        let Some((name, rest)) = l.split_once(':') else {
            continue;
        };
        let name = name.trim();
        if name.is_empty() || name == "lo" {
            continue;
        }
        let f: Vec<u64> = rest
            .split_whitespace()
            .filter_map(|v| v.parse().ok())
            .collect();
        if f.len() < 12 {
            continue;
        }
        out.insert(
            name.to_string(),
            NetStats {
                rx_bytes: f[0],
                rx_packets: f[1],
                rx_errors: f[2],
                rx_dropped: f[3],
                tx_bytes: f[8],
                tx_packets: f[9],
                tx_errors: f[10],
                tx_dropped: f[11],
            },
        );
    }
    out
}

/// The network counters seen by process `pid` (its network namespace).
pub fn net_dev(pid: i64) -> Result<BTreeMap<String, NetStats>> {
    let path = PathBuf::from(format!("/proc/{pid}/net/dev"));
    let text = std::fs::read_to_string(&path).map_err(|source| RuntimeError::Io {
        op: "read",
        path,
        source,
    })?;
    Ok(parse_net_dev(&text))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, file: &str, text: &str) {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join(file), text).unwrap();
    }

    fn read(dir: &Path, file: &str) -> String {
        std::fs::read_to_string(dir.join(file)).unwrap()
    }

    #[test]
    fn v1_figures() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        let cg = Cgroup::with_root(root, "/berth/c1");
        assert!(!cg.is_v2());
        assert!(cg.stats().is_err());
        let d = |c: &str| root.join(c).join("berth/c1");
        write(&d("cpuacct"), "cpuacct.usage", "30456168\n");
        write(&d("cpuacct"), "cpuacct.usage_percpu", "9505874 20950294 \n");
        write(&d("cpuacct"), "cpuacct.stat", "user 2\nsystem 1\n");
        write(
            &d("cpu"),
            "cpu.stat",
            "nr_periods 5\nnr_throttled 2\nthrottled_time 777\n",
        );
        write(&d("memory"), "memory.usage_in_bytes", "327680\n");
        write(&d("memory"), "memory.max_usage_in_bytes", "3817472\n");
        write(&d("memory"), "memory.failcnt", "0\n");
        write(&d("memory"), "memory.limit_in_bytes", "67108864\n");
        write(
            &d("memory"),
            "memory.stat",
            "cache 4096\nrss 49152\ntotal_inactive_file 8192\nswap 0\n",
        );
        write(&d("pids"), "pids.current", "3\n");
        write(&d("pids"), "pids.max", "max\n");
        write(
            &d("blkio"),
            "blkio.throttle.io_service_bytes_recursive",
            "8:0 Read 4096\n8:0 Write 8192\n8:0 Sync 0\n8:0 Async 12288\n8:0 Discard 0\n8:0 Total 12288\nTotal 12288\n",
        );
        let s = cg.stats_with(1 << 40).unwrap();
        assert!(!s.v2);
        assert_eq!(s.cpu.total_usage, 30_456_168);
        assert_eq!(s.cpu.percpu_usage, vec![9_505_874, 20_950_294]);
        assert_eq!(s.cpu.usage_in_usermode, 20_000_000);
        assert_eq!(s.cpu.usage_in_kernelmode, 10_000_000);
        assert_eq!(s.cpu.throttling.throttled_periods, 2);
        assert_eq!(s.cpu.throttling.throttled_time, 777);
        assert_eq!(s.memory.usage, 327_680);
        assert_eq!(s.memory.max_usage, 3_817_472);
        assert_eq!(s.memory.limit, 64 << 20);
        assert_eq!(s.memory.stats.len(), V1_MEMORY_KEYS.len());
        assert_eq!(s.memory.stats["total_inactive_file"], 8192);
        assert_eq!(s.memory.stats["rss"], 49152);
        assert!(!s.memory.stats.contains_key("swap"));
        assert_eq!(
            s.pids,
            PidsStats {
                current: 3,
                limit: 0
            }
        );
        let b = &s.blkio.io_service_bytes_recursive;
        assert_eq!(b.len(), 6);
        assert_eq!((b[0].major, b[0].minor, b[0].op.as_str()), (8, 0, "Read"));
        assert_eq!(b[1].value, 8192);
        // Unlimited memory reads as the machine's memory.
        write(
            &d("memory"),
            "memory.limit_in_bytes",
            "9223372036854771712\n",
        );
        assert_eq!(cg.stats_with(1 << 30).unwrap().memory.limit, 1 << 30);
    }

    #[test]
    fn v2_figures() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        write(root, "cgroup.controllers", "cpu io memory pids\n");
        let cg = Cgroup::with_root(root, "/berth/c2");
        assert!(cg.is_v2());
        let d = root.join("berth/c2");
        write(
            &d,
            "cpu.stat",
            "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 4\nnr_throttled 1\nthrottled_usec 30\n",
        );
        write(&d, "memory.current", "1048576\n");
        write(&d, "memory.max", "max\n");
        write(
            &d,
            "memory.stat",
            "anon 4096\nfile 8192\ninactive_file 4096\nworkingset_refault_anon 0\n",
        );
        write(
            &d,
            "memory.events",
            "low 0\nhigh 0\nmax 3\noom 2\noom_kill 1\n",
        );
        write(&d, "pids.current", "2\n");
        write(&d, "pids.max", "10\n");
        write(
            &d,
            "io.stat",
            "8:0 rbytes=4096 wbytes=1024 rios=1 wios=1 dbytes=0 dios=0\n253:1 rbytes=10 wbytes=20\n",
        );
        let s = cg.stats_with(1 << 30).unwrap();
        assert!(s.v2);
        assert_eq!(s.cpu.total_usage, 1_500_000);
        assert!(s.cpu.percpu_usage.is_empty());
        assert_eq!(s.cpu.usage_in_usermode, 1_000_000);
        assert_eq!(s.cpu.usage_in_kernelmode, 500_000);
        assert_eq!(s.cpu.throttling.throttled_time, 30_000);
        assert_eq!(s.memory.usage, 1 << 20);
        assert_eq!(s.memory.limit, 1 << 30);
        assert_eq!(s.memory.failcnt, 2);
        assert_eq!(s.memory.stats["inactive_file"], 4096);
        assert_eq!(s.memory.stats.len(), V2_MEMORY_KEYS.len());
        assert_eq!(
            s.pids,
            PidsStats {
                current: 2,
                limit: 10
            }
        );
        let b = &s.blkio.io_service_bytes_recursive;
        assert_eq!(b.len(), 4);
        assert_eq!((b[0].op.as_str(), b[0].value), ("read", 4096));
        assert_eq!((b[1].op.as_str(), b[1].value), ("write", 1024));
        assert_eq!((b[2].major, b[2].minor, b[3].value), (253, 1, 20));
        assert!(s.blkio.io_serviced_recursive.is_empty());
        assert!(cg.oom_killed());
    }

    #[test]
    fn v1_update_writes_in_kernel_order() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        let cg = Cgroup::with_root(root, "berth/c3");
        let mem = root.join("memory/berth/c3");
        write(&mem, "memory.limit_in_bytes", "67108864\n");
        write(&mem, "memory.memsw.limit_in_bytes", "134217728\n");
        write(&mem, "memory.soft_limit_in_bytes", "0\n");
        for c in ["cpu", "cpuset", "pids"] {
            std::fs::create_dir_all(root.join(c).join("berth/c3")).unwrap();
        }
        let w = cg
            .update(&ResourceUpdate {
                memory: Some(128 << 20),
                memory_swap: Some(256 << 20),
                memory_reservation: Some(32 << 20),
                cpu_shares: Some(512),
                cpu_period: Some(100_000),
                cpu_quota: Some(50_000),
                cpuset_cpus: Some("0".into()),
                cpuset_mems: None,
                pids_limit: Some(-1),
                blkio_weight: Some(300),
            })
            .unwrap();
        assert_eq!(read(&mem, "memory.limit_in_bytes"), "134217728");
        assert_eq!(read(&mem, "memory.memsw.limit_in_bytes"), "268435456");
        assert_eq!(read(&mem, "memory.soft_limit_in_bytes"), "33554432");
        let cpu = root.join("cpu/berth/c3");
        assert_eq!(read(&cpu, "cpu.shares"), "512");
        assert_eq!(read(&cpu, "cpu.cfs_quota_us"), "50000");
        assert_eq!(read(&cpu, "cpu.cfs_period_us"), "100000");
        assert_eq!(read(&root.join("cpuset/berth/c3"), "cpuset.cpus"), "0");
        assert_eq!(read(&root.join("pids/berth/c3"), "pids.max"), "max");
        // No blkio weight file: Docker's warning, nothing written.
        assert_eq!(w, vec![BLKIO_WEIGHT_WARNING.to_string()]);
        // The swap file missing: a warning, memory still set.
        std::fs::remove_file(mem.join("memory.memsw.limit_in_bytes")).unwrap();
        let w = cg
            .update(&ResourceUpdate {
                memory: Some(-1),
                memory_swap: Some(-1),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(read(&mem, "memory.limit_in_bytes"), "-1");
        assert_eq!(w.len(), 1);
        assert!(w[0].contains("swap limit"), "{w:?}");
        assert!(
            Cgroup::with_root(root, "berth/none")
                .update(&ResourceUpdate::default())
                .is_err()
        );
    }

    #[test]
    fn v2_update_converts_values() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        write(root, "cgroup.controllers", "cpu io memory pids\n");
        let d = root.join("berth/c4");
        write(&d, "memory.max", "max\n");
        write(&d, "memory.swap.max", "max\n");
        write(&d, "cpu.max", "max 100000\n");
        write(&d, "io.weight", "default 100\n");
        let cg = Cgroup::with_root(root, "berth/c4");
        let w = cg
            .update(&ResourceUpdate {
                memory: Some(64 << 20),
                memory_swap: Some(96 << 20),
                memory_reservation: Some(16 << 20),
                cpu_shares: Some(1024),
                cpu_quota: Some(50_000),
                pids_limit: Some(10),
                blkio_weight: Some(300),
                cpuset_cpus: Some("0-1".into()),
                cpuset_mems: Some("0".into()),
                ..Default::default()
            })
            .unwrap();
        assert!(w.is_empty());
        assert_eq!(read(&d, "memory.max"), "67108864");
        assert_eq!(read(&d, "memory.swap.max"), "33554432");
        assert_eq!(read(&d, "memory.low"), "16777216");
        assert_eq!(read(&d, "cpu.weight"), "39");
        assert_eq!(read(&d, "cpu.max"), "50000 100000");
        assert_eq!(read(&d, "pids.max"), "10");
        assert_eq!(read(&d, "io.weight"), "2930");
        assert_eq!(read(&d, "cpuset.cpus"), "0-1");
        assert_eq!(read(&d, "cpuset.mems"), "0");
        // Period alone keeps the quota.
        cg.update(&ResourceUpdate {
            cpu_period: Some(200_000),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(read(&d, "cpu.max"), "50000 200000");
        // Swap below memory is refused.
        assert!(
            cg.update(&ResourceUpdate {
                memory: Some(64 << 20),
                memory_swap: Some(32 << 20),
                ..Default::default()
            })
            .is_err()
        );
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert_eq!(blkio_to_io_weight(10), 1);
        assert_eq!(blkio_to_io_weight(1000), 10_000);
    }

    #[test]
    fn v1_oom_without_counter() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        let mem = root.join("memory/berth/c5");
        write(
            &mem,
            "memory.oom_control",
            "oom_kill_disable 0\nunder_oom 0\n",
        );
        write(&mem, "memory.failcnt", "12\n");
        write(&mem, "memory.max_usage_in_bytes", "16777216\n");
        write(&mem, "memory.limit_in_bytes", "16777216\n");
        let cg = Cgroup::with_root(root, "/berth/c5");
        assert!(cg.oom_killed());
        write(&mem, "memory.failcnt", "0\n");
        assert!(!cg.oom_killed());
        write(
            &mem,
            "memory.oom_control",
            "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n",
        );
        assert!(cg.oom_killed());
        // `..` cannot climb out of the root.
        let escaped = Cgroup::with_root(root, "/../../etc");
        assert_eq!(escaped.dir("memory"), root.join("memory/etc"));
    }

    #[test]
    fn host_files() {
        let stat = "cpu  862453 65977 164734 1040750 9065 0 1058 1311 0 0\n\
                    cpu0 423646 33402 74689 536665 3049 0 89 667 0 0\n\
                    cpu1 438806 32575 90044 504085 6015 0 968 643 0 0\n\
                    intr 1 2 3\nctxt 5\n";
        let s = parse_proc_stat(stat).unwrap();
        assert_eq!(s.online_cpus, 2);
        assert_eq!(
            s.usage,
            (862_453 + 65_977 + 164_734 + 1_040_750 + 9065 + 1058) * 10_000_000
        );
        assert!(parse_proc_stat("intr 1\n").is_none());
        assert_eq!(
            parse_meminfo("MemTotal:       24681844 kB\nMemFree: 1 kB\n"),
            Some(24_681_844 * 1024)
        );
        let net = "Inter-|   Receive                                                |  Transmit\n \
                   face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    \
                   lo:    6386      58    0    0    0     0          0         0     6386      58    0    0    0     0       0          0\n  \
                   eth0: 262223054   10850    1    2    0     0          0         0   677146    6796    3    4    0     0       0          0\n";
        let n = parse_net_dev(net);
        assert_eq!(n.len(), 1);
        let e = &n["eth0"];
        assert_eq!(
            (e.rx_bytes, e.rx_packets, e.rx_errors, e.rx_dropped),
            (262_223_054, 10_850, 1, 2)
        );
        assert_eq!(
            (e.tx_bytes, e.tx_packets, e.tx_errors, e.tx_dropped),
            (677_146, 6796, 3, 4)
        );
        assert!(net_dev(i64::from(std::process::id())).is_ok());
        assert!(system_cpu().unwrap().online_cpus >= 1);
    }
}
