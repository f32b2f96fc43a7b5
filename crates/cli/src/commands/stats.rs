//! `berth stats` / `berth container stats`: docker's live table of CPU, memory, network, block
//! I/O and pids per container, with docker's arithmetic (CPU % from the `precpu_stats` delta,
//! memory without the inactive file cache) and docker's number formatting.
//!
//! `--no-stream` asks each container once (`stream=0`: the daemon samples twice) and prints one
//! table. Streaming keeps one `stream=1` request per container and redraws every 500 ms the way
//! docker 28 does (cursor home, each line followed by an erase-to-end-of-line, erase below).
//! Without container arguments the running containers (all with `-a`) are shown, and the list
//! is refreshed while streaming.

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use api_types::models::{ContainerBlkioStats, ContainerMemoryStats, ContainerStatsResponse};
use bollard::query_parameters::{ListContainersOptions, StatsOptions};
use clap::Args;
use futures_util::StreamExt;

use super::FORMAT_HELP;
use crate::client::{CliError, Client};
use crate::format::{Format, Value, units};

const DEFAULT_STATS_TABLE: &str = "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}";

/// How long a streamed entry may go without an update before it shows `--` (docker's 2 s).
const STALE_AFTER: Duration = Duration::from_secs(2);

#[derive(Debug, Args)]
pub(crate) struct StatsArgs {
    /// Show all containers (default shows just running)
    #[arg(short = 'a', long)]
    pub(crate) all: bool,
    #[arg(long, value_name = "string", help = FORMAT_HELP)]
    pub(crate) format: Option<String>,
    /// Disable streaming stats and only pull the first result
    #[arg(long = "no-stream")]
    pub(crate) no_stream: bool,
    /// Do not truncate output
    #[arg(long = "no-trunc")]
    pub(crate) no_trunc: bool,
    #[arg(value_name = "CONTAINER")]
    pub(crate) containers: Vec<String>,
}

/// One container's row (docker's `StatsEntry`).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Entry {
    /// The container as the user named it (or the short ID when listing all).
    pub(crate) container: String,
    /// With the leading `/`.
    pub(crate) name: String,
    pub(crate) id: String,
    pub(crate) cpu_percentage: f64,
    pub(crate) memory: f64,
    pub(crate) memory_limit: f64,
    pub(crate) memory_percentage: f64,
    pub(crate) network_rx: f64,
    pub(crate) network_tx: f64,
    pub(crate) block_read: f64,
    pub(crate) block_write: f64,
    pub(crate) pids_current: u64,
    /// No valid figures (not received yet, timed out, failed): shown as `--`.
    pub(crate) invalid: bool,
}

/// docker's `calculateCPUPercentUnix`.
fn cpu_percent(v: &ContainerStatsResponse) -> f64 {
    let cpu = v.cpu_stats.clone().unwrap_or_default();
    let pre = v.precpu_stats.clone().unwrap_or_default();
    let total = |c: &api_types::models::ContainerCpuStats| {
        c.cpu_usage
            .as_ref()
            .and_then(|u| u.total_usage)
            .unwrap_or(0) as f64
    };
    let cpu_delta = total(&cpu) - total(&pre);
    let system_delta =
        cpu.system_cpu_usage.unwrap_or(0) as f64 - pre.system_cpu_usage.unwrap_or(0) as f64;
    let mut online = f64::from(cpu.online_cpus.unwrap_or(0));
    if online == 0.0 {
        online = cpu
            .cpu_usage
            .as_ref()
            .and_then(|u| u.percpu_usage.as_ref())
            .map_or(0, Vec::len) as f64;
    }
    if system_delta > 0.0 && cpu_delta > 0.0 {
        cpu_delta / system_delta * online * 100.0
    } else {
        0.0
    }
}

/// docker's `calculateMemUsageUnixNoCache`: usage minus the inactive file cache.
fn memory_no_cache(m: &ContainerMemoryStats) -> f64 {
    let usage = m.usage.unwrap_or(0);
    let stats = m.stats.clone().unwrap_or_default();
    if let Some(v) = stats.get("total_inactive_file")
        && *v < usage
    {
        return (usage - v) as f64;
    }
    let v = stats.get("inactive_file").copied().unwrap_or(0);
    if v < usage {
        (usage - v) as f64
    } else {
        usage as f64
    }
}

/// docker's `calculateBlockIO`: bytes by the first letter of the operation.
fn block_io(b: &ContainerBlkioStats) -> (u64, u64) {
    let (mut read, mut write) = (0u64, 0u64);
    for e in b.io_service_bytes_recursive.iter().flatten() {
        match e.op.as_deref().and_then(|o| o.chars().next()) {
            Some('r' | 'R') => read = read.saturating_add(e.value.unwrap_or(0)),
            Some('w' | 'W') => write = write.saturating_add(e.value.unwrap_or(0)),
            _ => {}
        }
    }
    (read, write)
}

/// The row for one stats object.
pub(crate) fn entry_from(container: &str, v: &ContainerStatsResponse) -> Entry {
    let mem = v.memory_stats.clone().unwrap_or_default();
    let used = memory_no_cache(&mem);
    let limit = mem.limit.unwrap_or(0) as f64;
    let (block_read, block_write) = block_io(&v.blkio_stats.clone().unwrap_or_default());
    let (mut rx, mut tx) = (0.0, 0.0);
    for n in v.networks.iter().flat_map(|m| m.values()) {
        rx += n.rx_bytes.unwrap_or(0) as f64;
        tx += n.tx_bytes.unwrap_or(0) as f64;
    }
    Entry {
        container: container.to_string(),
        name: v.name.clone().unwrap_or_default(),
        id: v.id.clone().unwrap_or_default(),
        cpu_percentage: cpu_percent(v),
        memory: used,
        memory_limit: limit,
        memory_percentage: if limit != 0.0 {
            used / limit * 100.0
        } else {
            0.0
        },
        network_rx: rx,
        network_tx: tx,
        block_read: block_read as f64,
        block_write: block_write as f64,
        pids_current: v.pids_stats.as_ref().and_then(|p| p.current).unwrap_or(0),
        invalid: false,
    }
}

fn stats_header() -> Value {
    Value::str_obj([
        ("BlockIO", "BLOCK I/O".into()),
        ("CPUPerc", "CPU %".into()),
        ("Container", "CONTAINER".into()),
        ("ID", "CONTAINER ID".into()),
        ("MemPerc", "MEM %".into()),
        ("MemUsage", "MEM USAGE / LIMIT".into()),
        ("Name", "NAME".into()),
        ("NetIO", "NET I/O".into()),
        ("PIDs", "PIDS".into()),
    ])
}

/// docker's stats formatter context for one entry.
pub(crate) fn stats_row(e: &Entry, trunc: bool) -> Value {
    let pct = |v: f64| format!("{v:.2}%");
    let inv = e.invalid;
    let id = if trunc {
        crate::format::truncate_id(&e.id)
    } else {
        e.id.clone()
    };
    let name = if e.name.len() > 1 {
        e.name[1..].to_string()
    } else {
        "--".to_string()
    };
    let or_dashes = |s: String| if inv { "--".to_string() } else { s };
    Value::str_obj([
        (
            "BlockIO",
            or_dashes(format!(
                "{} / {}",
                units::human_size_with_precision(e.block_read, 3),
                units::human_size_with_precision(e.block_write, 3)
            )),
        ),
        ("CPUPerc", or_dashes(pct(e.cpu_percentage))),
        ("Container", e.container.clone()),
        ("ID", id),
        ("MemPerc", or_dashes(pct(e.memory_percentage))),
        (
            "MemUsage",
            if inv {
                "-- / --".to_string()
            } else {
                format!(
                    "{} / {}",
                    units::bytes_size(e.memory),
                    units::bytes_size(e.memory_limit)
                )
            },
        ),
        ("Name", name),
        (
            "NetIO",
            or_dashes(format!(
                "{} / {}",
                units::human_size_with_precision(e.network_rx, 3),
                units::human_size_with_precision(e.network_tx, 3)
            )),
        ),
        ("PIDs", or_dashes(e.pids_current.to_string())),
    ])
}

fn stats_format(source: &str) -> String {
    match source {
        "" | "table" => DEFAULT_STATS_TABLE.to_string(),
        "json" => "{{json .}}".to_string(),
        f => f.to_string(),
    }
}

/// Renders the rows as docker prints them (no daemon needed; used by tests).
pub(crate) fn render_stats(
    entries: &[Entry],
    format: &str,
    trunc: bool,
) -> Result<String, CliError> {
    let fmt = Format::new(&stats_format(format), DEFAULT_STATS_TABLE)?;
    let rows: Vec<Value> = entries.iter().map(|e| stats_row(e, trunc)).collect();
    Ok(fmt.render_rows(&stats_header(), &rows)?)
}

/// docker 28's redraw: cursor home, the table, then the same lines again each followed by
/// " \x1b[K" (erase the rest of a longer previous line), then erase below.
pub(crate) fn redraw(table: &str) -> String {
    let mut buf = format!("\x1b[H{table}");
    let lines: Vec<String> = buf.split('\n').map(str::to_string).collect();
    for l in lines {
        buf.push_str(&l);
        buf.push_str(" \x1b[K\n");
    }
    buf.push_str("\x1b[J");
    buf
}

/// Targets when no container is named: (what the `Container` column shows, the reference).
async fn list_targets(client: &Client, all: bool) -> Result<Vec<(String, String)>, CliError> {
    let list = client
        .docker
        .list_containers(Some(ListContainersOptions {
            all,
            ..Default::default()
        }))
        .await
        .map_err(|e| client.error(e))?;
    Ok(list
        .into_iter()
        .filter_map(|c| c.id)
        .map(|id| {
            let short: String = id.chars().take(12).collect();
            (short, id)
        })
        .collect())
}

/// `berth stats`.
pub(crate) async fn stats(client: &Client, args: &StatsArgs) -> Result<(), CliError> {
    let show_all = args.containers.is_empty();
    let targets = if show_all {
        list_targets(client, args.all).await?
    } else {
        args.containers
            .iter()
            .map(|c| (c.clone(), c.clone()))
            .collect()
    };
    let format = args.format.clone().unwrap_or_default();
    let trunc = !args.no_trunc;
    if args.no_stream {
        return once(client, &targets, show_all, &format, trunc).await;
    }
    stream(client, targets, show_all, args.all, &format, trunc).await
}

/// `--no-stream`: one `stream=0` request per container, in parallel, then one table.
async fn once(
    client: &Client,
    targets: &[(String, String)],
    show_all: bool,
    format: &str,
    trunc: bool,
) -> Result<(), CliError> {
    let futs = targets.iter().map(|(shown, reference)| async move {
        let opts = StatsOptions {
            stream: false,
            one_shot: false,
        };
        let mut s = client.docker.stats(reference, Some(opts));
        match s.next().await {
            Some(Ok(v)) => Ok(entry_from(shown, &v)),
            Some(Err(e)) => Err(client.error(e)),
            None => Ok(Entry {
                container: shown.clone(),
                invalid: true,
                ..Default::default()
            }),
        }
    });
    let results = futures_util::future::join_all(futs).await;
    let mut entries = Vec::new();
    let mut errs = Vec::new();
    for (r, (shown, _)) in results.into_iter().zip(targets) {
        match r {
            Ok(e) => entries.push(e),
            // A container listed a moment ago may be gone: docker shows it as invalid.
            Err(_) if show_all => entries.push(Entry {
                container: shown.clone(),
                invalid: true,
                ..Default::default()
            }),
            Err(e) => errs.push(e.to_string()),
        }
    }
    if !errs.is_empty() {
        return Err(CliError::Message(errs.join("\n")));
    }
    print!("{}", render_stats(&entries, format, trunc)?);
    Ok(())
}

/// One streamed container: its latest row and when it arrived.
#[derive(Debug, Default)]
struct Slot {
    entry: Entry,
    updated: Option<Instant>,
    error: Option<String>,
    done: bool,
}

type Slots = Arc<Mutex<Vec<(String, Slot)>>>;

fn spawn_collector(client: &Client, slots: &Slots, shown: String, reference: String) {
    {
        let mut s = slots.lock().unwrap_or_else(|e| e.into_inner());
        s.push((
            reference.clone(),
            Slot {
                entry: Entry {
                    container: shown.clone(),
                    invalid: true,
                    ..Default::default()
                },
                ..Default::default()
            },
        ));
    }
    let docker = client.docker.clone();
    let host = client.host.clone();
    let slots = Arc::clone(slots);
    tokio::spawn(async move {
        let opts = StatsOptions {
            stream: true,
            one_shot: false,
        };
        let mut s = docker.stats(&reference, Some(opts));
        while let Some(item) = s.next().await {
            let mut all = slots.lock().unwrap_or_else(|e| e.into_inner());
            let Some((_, slot)) = all.iter_mut().find(|(r, _)| *r == reference) else {
                return;
            };
            match item {
                Ok(v) => {
                    slot.entry = entry_from(&shown, &v);
                    slot.updated = Some(Instant::now());
                    slot.error = None;
                }
                Err(e) => {
                    slot.error = Some(crate::client::map_error(&host, e).to_string());
                    slot.entry.invalid = true;
                }
            }
        }
        let mut all = slots.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, slot)) = all.iter_mut().find(|(r, _)| *r == reference) {
            slot.done = true;
        }
    });
}

/// Streaming mode: redraw every 500 ms until interrupted (or, for named containers, until
/// every one of them failed before its first figures).
async fn stream(
    client: &Client,
    targets: Vec<(String, String)>,
    show_all: bool,
    all: bool,
    format: &str,
    trunc: bool,
) -> Result<(), CliError> {
    let slots: Slots = Arc::new(Mutex::new(Vec::new()));
    for (shown, reference) in targets {
        spawn_collector(client, &slots, shown, reference);
    }
    // As docker: draw once every container has its first figures (or STALE_AFTER passed).
    let start = Instant::now();
    while start.elapsed() < STALE_AFTER {
        let pending = slots
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .any(|(_, s)| s.updated.is_none() && !s.done);
        if !pending {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    let mut last_list = Instant::now();
    loop {
        tick.tick().await;
        if show_all && last_list.elapsed() >= Duration::from_secs(1) {
            last_list = Instant::now();
            if let Ok(now) = list_targets(client, all).await {
                let ids: HashMap<String, String> =
                    now.iter().map(|(s, r)| (r.clone(), s.clone())).collect();
                let known: Vec<String> = {
                    let mut s = slots.lock().unwrap_or_else(|e| e.into_inner());
                    s.retain(|(r, _)| ids.contains_key(r));
                    s.iter().map(|(r, _)| r.clone()).collect()
                };
                for (shown, reference) in now {
                    if !known.contains(&reference) {
                        spawn_collector(client, &slots, shown, reference);
                    }
                }
            }
        }
        let (entries, failed) = {
            let mut s = slots.lock().unwrap_or_else(|e| e.into_inner());
            for (_, slot) in s.iter_mut() {
                if slot.updated.is_some_and(|t| t.elapsed() > STALE_AFTER) {
                    slot.entry.invalid = true;
                }
            }
            let failed: Vec<String> = s
                .iter()
                .filter(|(_, slot)| slot.done && slot.updated.is_none())
                .filter_map(|(_, slot)| slot.error.clone())
                .collect();
            let entries: Vec<Entry> = s.iter().map(|(_, slot)| slot.entry.clone()).collect();
            (entries, failed)
        };
        if !show_all && !failed.is_empty() && failed.len() == entries.len() {
            return Err(CliError::Message(failed.join("\n")));
        }
        let table = render_stats(&entries, format, trunc)?;
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(redraw(&table).as_bytes());
        let _ = out.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(v: serde_json::Value) -> ContainerStatsResponse {
        serde_json::from_value(v).unwrap()
    }

    fn sample() -> ContainerStatsResponse {
        response(serde_json::json!({
            "read": "2026-11-23T21:25:26.653689996Z",
            "preread": "2026-11-23T21:25:25.648510441Z",
            "pids_stats": {"current": 1},
            "blkio_stats": {"io_service_bytes_recursive": [
                {"major": 8, "minor": 0, "op": "Read", "value": 1_200_000},
                {"major": 8, "minor": 0, "op": "Write", "value": 4096},
                {"major": 8, "minor": 0, "op": "Total", "value": 1_204_096}
            ]},
            "cpu_stats": {"cpu_usage": {"total_usage": 60_000_000, "percpu_usage": [1, 2]},
                "system_cpu_usage": 2_000_000_000, "online_cpus": 2},
            "precpu_stats": {"cpu_usage": {"total_usage": 40_000_000},
                "system_cpu_usage": 1_000_000_000, "online_cpus": 2},
            "memory_stats": {"usage": 372_736, "limit": 134_217_728,
                "stats": {"total_inactive_file": 45_056}},
            "name": "/s1",
            "id": "726708d3a6a5db60850733795788ecb71af109b99cc1be61248d088196c420ea",
            "networks": {"eth0": {"rx_bytes": 1020, "tx_bytes": 0},
                "eth1": {"rx_bytes": 5, "tx_bytes": 0}}
        }))
    }

    #[test]
    fn docker_arithmetic() {
        let e = entry_from("s1", &sample());
        assert!(
            (e.cpu_percentage - 4.0).abs() < 1e-9,
            "{}",
            e.cpu_percentage
        );
        assert_eq!(e.memory, 327_680.0);
        assert_eq!(e.block_read, 1_200_000.0);
        assert_eq!(e.block_write, 4096.0);
        assert_eq!(e.network_rx, 1025.0);
        // v2 figures: inactive_file.
        let v2 = response(serde_json::json!({
            "memory_stats": {"usage": 10_000, "limit": 0, "stats": {"inactive_file": 4000}},
            "cpu_stats": {"cpu_usage": {"total_usage": 0}}, "name": "/x", "id": "y"
        }));
        let e = entry_from("x", &v2);
        assert_eq!(e.memory, 6000.0);
        assert_eq!(e.memory_percentage, 0.0);
        assert_eq!(e.cpu_percentage, 0.0);
    }

    #[test]
    fn table_like_docker() {
        let e = entry_from("s1", &sample());
        let out = render_stats(std::slice::from_ref(&e), "", true).unwrap();
        assert_eq!(
            out,
            "CONTAINER ID   NAME      CPU %     MEM USAGE / LIMIT   MEM %     NET I/O       BLOCK I/O       PIDS\n\
             726708d3a6a5   s1        4.00%     320KiB / 128MiB     0.24%     1.02kB / 0B   1.2MB / 4.1kB   1\n"
        );
        // A stopped container: zeroed figures.
        let stopped = response(serde_json::json!({
            "read": "0001-01-01T00:00:00Z", "pids_stats": {}, "memory_stats": {},
            "cpu_stats": {"cpu_usage": {"total_usage": 0}}, "name": "/s5", "id": "cfc5a718702a9d85"
        }));
        let out = render_stats(&[entry_from("s5", &stopped)], "", true).unwrap();
        assert!(
            out.ends_with("cfc5a718702a   s5        0.00%     0B / 0B             0.00%     0B / 0B   0B / 0B     0\n"),
            "{out}"
        );
        let json = render_stats(std::slice::from_ref(&e), "json", true).unwrap();
        assert_eq!(
            json,
            "{\"BlockIO\":\"1.2MB / 4.1kB\",\"CPUPerc\":\"4.00%\",\"Container\":\"s1\",\"ID\":\"726708d3a6a5\",\"MemPerc\":\"0.24%\",\"MemUsage\":\"320KiB / 128MiB\",\"Name\":\"s1\",\"NetIO\":\"1.02kB / 0B\",\"PIDs\":\"1\"}\n"
        );
        let custom = render_stats(
            std::slice::from_ref(&e),
            "table {{.Container}}\\t{{.MemUsage}}",
            false,
        )
        .unwrap();
        assert_eq!(
            custom,
            "CONTAINER   MEM USAGE / LIMIT\ns1          320KiB / 128MiB\n"
        );
        let invalid = Entry {
            container: "x".into(),
            invalid: true,
            ..Default::default()
        };
        let out = render_stats(
            &[invalid],
            "{{.Name}} {{.CPUPerc}} {{.MemUsage}} {{.PIDs}}",
            true,
        )
        .unwrap();
        assert_eq!(out, "-- -- -- / -- --\n");
    }

    #[test]
    fn redraw_like_docker_28() {
        let out = redraw("A   B\n1   2\n");
        assert_eq!(
            out,
            "\x1b[HA   B\n1   2\n\x1b[HA   B \x1b[K\n1   2 \x1b[K\n \x1b[K\n\x1b[J"
        );
    }

    #[test]
    fn flags() {
        use clap::Parser;
        let c = super::super::Cli::try_parse_from([
            "berth",
            "stats",
            "--no-stream",
            "-a",
            "--no-trunc",
            "--format",
            "json",
            "a",
            "b",
        ])
        .unwrap();
        match c.command {
            Some(super::super::Command::Stats(s)) => {
                assert!(s.no_stream && s.all && s.no_trunc);
                assert_eq!(s.containers, vec!["a", "b"]);
                assert_eq!(s.format.as_deref(), Some("json"));
            }
            _ => panic!("not stats"),
        }
    }
}
