//! `GET /containers/{id}/stats`: samples of a container's cgroup (through
//! `runtime::cgroups`), host CPU time and the network counters of its init process, shaped as
//! moby's stats object (`read`, `preread`, `pids_stats`, `blkio_stats`, `num_procs`,
//! `storage_stats`, `cpu_stats`, `precpu_stats`, `memory_stats`, `name`, `id`, `networks`).
//!
//! As moby: a one-shot sample has an empty `precpu_stats`; a non-streamed answer is the second
//! of two samples one second apart (so CPU % means something); a stream sends one object per
//! second, each carrying the previous sample as `precpu_stats`, until the client goes or the
//! container is removed. A container that is not running gives objects with only `name` and
//! `id` set. This module knows nothing of HTTP: it hands the daemon a channel of objects.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use runtime::cgroups::{BlkioEntry, Cgroup, NetStats, Stats, SystemCpu};
use serde::Serialize;
use tokio::sync::mpsc;

use super::{Containers, Ctr};
use crate::Result;

/// How often a stream samples (moby's collector interval).
const INTERVAL: Duration = Duration::from_secs(1);

/// A stream of stats objects; it ends when the container is removed.
pub type StatsStream = mpsc::Receiver<ContainerStats>;

/// One stats object, serialised in moby's field order with moby's `omitempty` rules.
#[derive(Debug, Clone, Serialize)]
pub struct ContainerStats {
    pub read: String,
    pub preread: String,
    pub pids_stats: PidsJson,
    pub blkio_stats: BlkioJson,
    pub num_procs: u32,
    pub storage_stats: EmptyJson,
    pub cpu_stats: CpuJson,
    pub precpu_stats: CpuJson,
    pub memory_stats: MemoryJson,
    pub name: String,
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub networks: Option<BTreeMap<String, NetJson>>,
}

/// Windows-only figures: always `{}` on Linux.
#[derive(Debug, Clone, Default, Serialize)]
pub struct EmptyJson {}

#[derive(Debug, Clone, Default, Serialize)]
pub struct PidsJson {
    #[serde(skip_serializing_if = "is_zero")]
    pub current: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub limit: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct BlkioEntryJson {
    pub major: u64,
    pub minor: u64,
    pub op: String,
    pub value: u64,
}

/// Go's nil slices are `null`, empty ones `[]`: v1 fills every list, v2 only the first.
#[derive(Debug, Clone, Default, Serialize)]
pub struct BlkioJson {
    pub io_service_bytes_recursive: Option<Vec<BlkioEntryJson>>,
    pub io_serviced_recursive: Option<Vec<BlkioEntryJson>>,
    pub io_queue_recursive: Option<Vec<BlkioEntryJson>>,
    pub io_service_time_recursive: Option<Vec<BlkioEntryJson>>,
    pub io_wait_time_recursive: Option<Vec<BlkioEntryJson>>,
    pub io_merged_recursive: Option<Vec<BlkioEntryJson>>,
    pub io_time_recursive: Option<Vec<BlkioEntryJson>>,
    pub sectors_recursive: Option<Vec<BlkioEntryJson>>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct CpuUsageJson {
    pub total_usage: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu_usage: Vec<u64>,
    pub usage_in_kernelmode: u64,
    pub usage_in_usermode: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ThrottlingJson {
    pub periods: u64,
    pub throttled_periods: u64,
    pub throttled_time: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct CpuJson {
    pub cpu_usage: CpuUsageJson,
    #[serde(skip_serializing_if = "is_zero")]
    pub system_cpu_usage: u64,
    #[serde(skip_serializing_if = "is_zero_u32")]
    pub online_cpus: u32,
    pub throttling_data: ThrottlingJson,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct MemoryJson {
    #[serde(skip_serializing_if = "is_zero")]
    pub usage: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub max_usage: u64,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub stats: BTreeMap<String, u64>,
    #[serde(skip_serializing_if = "is_zero")]
    pub failcnt: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub limit: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct NetJson {
    pub rx_bytes: u64,
    pub rx_packets: u64,
    pub rx_errors: u64,
    pub rx_dropped: u64,
    pub tx_bytes: u64,
    pub tx_packets: u64,
    pub tx_errors: u64,
    pub tx_dropped: u64,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

fn is_zero_u32(v: &u32) -> bool {
    *v == 0
}

/// One reading of a running container.
#[derive(Debug, Clone)]
struct Sample {
    read: DateTime<Utc>,
    cgroup: Stats,
    system: SystemCpu,
    networks: BTreeMap<String, NetStats>,
}

fn cpu_json(s: &Sample) -> CpuJson {
    let c = &s.cgroup.cpu;
    CpuJson {
        cpu_usage: CpuUsageJson {
            total_usage: c.total_usage,
            percpu_usage: c.percpu_usage.clone(),
            usage_in_kernelmode: c.usage_in_kernelmode,
            usage_in_usermode: c.usage_in_usermode,
        },
        system_cpu_usage: s.system.usage,
        online_cpus: s.system.online_cpus,
        throttling_data: ThrottlingJson {
            periods: c.throttling.periods,
            throttled_periods: c.throttling.throttled_periods,
            throttled_time: c.throttling.throttled_time,
        },
    }
}

fn entries(v: &[BlkioEntry]) -> Vec<BlkioEntryJson> {
    v.iter()
        .map(|e| BlkioEntryJson {
            major: e.major,
            minor: e.minor,
            op: e.op.clone(),
            value: e.value,
        })
        .collect()
}

fn blkio_json(s: &Stats) -> BlkioJson {
    let bytes = entries(&s.blkio.io_service_bytes_recursive);
    if s.v2 {
        return BlkioJson {
            io_service_bytes_recursive: (!bytes.is_empty()).then_some(bytes),
            ..Default::default()
        };
    }
    BlkioJson {
        io_service_bytes_recursive: Some(bytes),
        io_serviced_recursive: Some(entries(&s.blkio.io_serviced_recursive)),
        io_queue_recursive: Some(Vec::new()),
        io_service_time_recursive: Some(Vec::new()),
        io_wait_time_recursive: Some(Vec::new()),
        io_merged_recursive: Some(Vec::new()),
        io_time_recursive: Some(Vec::new()),
        sectors_recursive: Some(Vec::new()),
    }
}

/// The object for a container that is not running: only `name` and `id`.
fn empty_stats(name: &str, id: &str) -> ContainerStats {
    ContainerStats {
        read: crate::GO_ZERO_TIME.into(),
        preread: crate::GO_ZERO_TIME.into(),
        pids_stats: PidsJson::default(),
        blkio_stats: BlkioJson::default(),
        num_procs: 0,
        storage_stats: EmptyJson {},
        cpu_stats: CpuJson::default(),
        precpu_stats: CpuJson::default(),
        memory_stats: MemoryJson::default(),
        name: name.to_string(),
        id: id.to_string(),
        networks: None,
    }
}

/// The object for sample `s`, with `pre` as the previous reading (`None`: empty precpu).
fn stats_json(name: &str, id: &str, s: &Sample, pre: Option<&Sample>) -> ContainerStats {
    let m = &s.cgroup.memory;
    ContainerStats {
        read: crate::rfc3339_nano(&s.read),
        preread: pre.map_or_else(
            || crate::GO_ZERO_TIME.to_string(),
            |p| crate::rfc3339_nano(&p.read),
        ),
        pids_stats: PidsJson {
            current: s.cgroup.pids.current,
            limit: s.cgroup.pids.limit,
        },
        blkio_stats: blkio_json(&s.cgroup),
        num_procs: 0,
        storage_stats: EmptyJson {},
        cpu_stats: cpu_json(s),
        precpu_stats: pre.map(cpu_json).unwrap_or_default(),
        memory_stats: MemoryJson {
            usage: m.usage,
            max_usage: m.max_usage,
            stats: m.stats.clone(),
            failcnt: m.failcnt,
            limit: m.limit,
        },
        name: name.to_string(),
        id: id.to_string(),
        networks: (!s.networks.is_empty()).then(|| {
            s.networks
                .iter()
                .map(|(k, n)| {
                    (
                        k.clone(),
                        NetJson {
                            rx_bytes: n.rx_bytes,
                            rx_packets: n.rx_packets,
                            rx_errors: n.rx_errors,
                            rx_dropped: n.rx_dropped,
                            tx_bytes: n.tx_bytes,
                            tx_packets: n.tx_packets,
                            tx_errors: n.tx_errors,
                            tx_dropped: n.tx_dropped,
                        },
                    )
                })
                .collect()
        }),
    }
}

/// The container's cgroup (the spec's `cgroupsPath` is `/berth/<id>`, see `setup.rs`).
pub(crate) fn cgroup_of(root: &std::path::Path, id: &str) -> Cgroup {
    Cgroup::with_root(root, &format!("/berth/{id}"))
}

impl Containers {
    /// `GET /containers/{id}/stats?stream=&one-shot=`: resolves the container now; the
    /// objects arrive on the channel (one for `stream=false`).
    pub(crate) fn stats(
        self: &Arc<Self>,
        reference: &str,
        stream: bool,
        one_shot: bool,
    ) -> Result<StatsStream> {
        let ctr = self.get(reference)?;
        let (tx, rx) = mpsc::channel(1);
        let this = Arc::clone(self);
        tokio::spawn(async move {
            if stream {
                this.stats_stream(ctr, tx).await;
            } else {
                let out = this.stats_once(&ctr, one_shot, &tx).await;
                let _ = tx.send(out).await;
            }
        });
        Ok(rx)
    }

    async fn stats_once(
        &self,
        ctr: &Ctr,
        one_shot: bool,
        tx: &mpsc::Sender<ContainerStats>,
    ) -> ContainerStats {
        let Some(first) = self.sample(ctr).await else {
            return self.empty_of(ctr);
        };
        if one_shot {
            return self.json_of(ctr, &first, None);
        }
        tokio::select! {
            () = tokio::time::sleep(INTERVAL) => {}
            () = tx.closed() => return self.empty_of(ctr),
        }
        match self.sample(ctr).await {
            Some(second) => self.json_of(ctr, &second, Some(&first)),
            None => self.empty_of(ctr),
        }
    }

    async fn stats_stream(&self, ctr: Arc<Ctr>, tx: mpsc::Sender<ContainerStats>) {
        let removed = ctr.notice.subscribe();
        let mut pre: Option<Sample> = None;
        let mut tick = tokio::time::interval(INTERVAL);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = tx.closed() => return,
            }
            if removed.borrow().removed {
                return;
            }
            let cur = self.sample(&ctr).await;
            let out = match &cur {
                Some(s) => self.json_of(&ctr, s, pre.as_ref()),
                None => self.empty_of(&ctr),
            };
            if tx.send(out).await.is_err() {
                return;
            }
            pre = cur;
        }
    }

    fn empty_of(&self, ctr: &Ctr) -> ContainerStats {
        let name = ctr.rec().name.clone();
        empty_stats(&name, &ctr.id)
    }

    fn json_of(&self, ctr: &Ctr, s: &Sample, pre: Option<&Sample>) -> ContainerStats {
        let name = ctr.rec().name.clone();
        stats_json(&name, &ctr.id, s, pre)
    }

    /// Reads the container's figures; `None` when it is not running (or its cgroup is gone).
    async fn sample(&self, ctr: &Ctr) -> Option<Sample> {
        let (pid, host_net) = {
            let r = ctr.rec();
            if !r.state.running || r.state.restarting {
                return None;
            }
            (
                r.state.pid,
                r.host_config.network_mode.as_deref() == Some("host"),
            )
        };
        let cg = cgroup_of(&self.cgroup_root, &ctr.id);
        tokio::task::spawn_blocking(move || {
            let cgroup = cg.stats().ok()?;
            let system = runtime::cgroups::system_cpu().ok()?;
            // The host's interfaces are not the container's: moby reports none then.
            let networks = if host_net || pid <= 0 {
                BTreeMap::new()
            } else {
                runtime::cgroups::net_dev(pid).unwrap_or_default()
            };
            Some(Sample {
                read: Utc::now(),
                cgroup,
                system,
                networks,
            })
        })
        .await
        .ok()
        .flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use runtime::cgroups::{CpuStats, MemoryStats, PidsStats};

    fn sample(total: u64, system: u64, v2: bool) -> Sample {
        let mut cgroup = Stats {
            v2,
            cpu: CpuStats {
                total_usage: total,
                percpu_usage: if v2 {
                    vec![]
                } else {
                    vec![total / 2, total / 2]
                },
                ..Default::default()
            },
            memory: MemoryStats {
                usage: 327_680,
                limit: 64 << 20,
                stats: [("total_inactive_file".to_string(), 4096)].into(),
                ..Default::default()
            },
            pids: PidsStats {
                current: 1,
                limit: 0,
            },
            ..Default::default()
        };
        cgroup.blkio.io_service_bytes_recursive = vec![BlkioEntry {
            major: 8,
            minor: 0,
            op: "Read".into(),
            value: 4096,
        }];
        let mut networks = BTreeMap::new();
        networks.insert(
            "eth0".to_string(),
            NetStats {
                rx_bytes: 806,
                ..Default::default()
            },
        );
        Sample {
            read: DateTime::parse_from_rfc3339("2026-11-23T21:25:26.653689000Z")
                .unwrap()
                .with_timezone(&Utc),
            cgroup,
            system: SystemCpu {
                usage: system,
                online_cpus: 2,
            },
            networks,
        }
    }

    #[test]
    fn time_like_go() {
        let t = DateTime::parse_from_rfc3339("2026-11-23T21:25:26.653689000Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(crate::rfc3339_nano(&t), "2026-11-23T21:25:26.653689Z");
        let t = DateTime::parse_from_rfc3339("2026-11-23T21:25:26Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(crate::rfc3339_nano(&t), "2026-11-23T21:25:26Z");
    }

    #[test]
    fn shapes_like_moby() {
        let v = serde_json::to_value(empty_stats("/s5", "abc")).unwrap();
        let want = serde_json::json!({
            "read": "0001-01-01T00:00:00Z",
            "preread": "0001-01-01T00:00:00Z",
            "pids_stats": {},
            "blkio_stats": {
                "io_service_bytes_recursive": null, "io_serviced_recursive": null,
                "io_queue_recursive": null, "io_service_time_recursive": null,
                "io_wait_time_recursive": null, "io_merged_recursive": null,
                "io_time_recursive": null, "sectors_recursive": null
            },
            "num_procs": 0,
            "storage_stats": {},
            "cpu_stats": {"cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0,
                "usage_in_usermode": 0},
                "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}},
            "precpu_stats": {"cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0,
                "usage_in_usermode": 0},
                "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}},
            "memory_stats": {},
            "name": "/s5",
            "id": "abc"
        });
        assert_eq!(v, want);

        let pre = sample(1000, 10_000, false);
        let cur = sample(3000, 20_000, false);
        let v = serde_json::to_value(stats_json("/s1", "abc", &cur, Some(&pre))).unwrap();
        assert_eq!(v["preread"], "2026-11-23T21:25:26.653689Z");
        assert_eq!(v["cpu_stats"]["cpu_usage"]["total_usage"], 3000);
        assert_eq!(v["cpu_stats"]["cpu_usage"]["percpu_usage"][1], 1500);
        assert_eq!(v["cpu_stats"]["system_cpu_usage"], 20_000);
        assert_eq!(v["cpu_stats"]["online_cpus"], 2);
        assert_eq!(v["precpu_stats"]["cpu_usage"]["total_usage"], 1000);
        assert_eq!(v["memory_stats"]["limit"], 64 << 20);
        assert_eq!(v["memory_stats"]["stats"]["total_inactive_file"], 4096);
        assert!(v["memory_stats"].get("max_usage").is_none());
        assert_eq!(v["pids_stats"], serde_json::json!({"current": 1}));
        assert_eq!(
            v["blkio_stats"]["io_service_bytes_recursive"][0]["op"],
            "Read"
        );
        assert_eq!(v["blkio_stats"]["sectors_recursive"], serde_json::json!([]));
        assert_eq!(v["networks"]["eth0"]["rx_bytes"], 806);
        assert_eq!(v["name"], "/s1");

        // One-shot: no previous sample.
        let v = serde_json::to_value(stats_json("/s1", "abc", &cur, None)).unwrap();
        assert_eq!(v["preread"], crate::GO_ZERO_TIME);
        assert_eq!(v["precpu_stats"]["cpu_usage"]["total_usage"], 0);
        assert!(v["precpu_stats"].get("system_cpu_usage").is_none());

        // v2: no percpu, only the bytes list, others null.
        let mut s = sample(1, 2, true);
        s.networks.clear();
        let v = serde_json::to_value(stats_json("/s2", "abc", &s, None)).unwrap();
        assert!(v["cpu_stats"]["cpu_usage"].get("percpu_usage").is_none());
        assert_eq!(
            v["blkio_stats"]["io_service_bytes_recursive"][0]["value"],
            4096
        );
        assert!(v["blkio_stats"]["io_serviced_recursive"].is_null());
        assert!(v.get("networks").is_none());
    }
}
