//! End-to-end tests of container resources: `stats` (docker CLI, berth CLI, the raw API),
//! `update` (cgroup files, the record, Docker's errors), run-time limits landing in the cgroup,
//! and the OOM killer (exit 137, `State.OOMKilled`). Each test removes its containers before
//! its daemon stops.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::path::{Path, PathBuf};
use std::process::Command;

use test_support::daemon::{TestDaemon, fails, ok};
use test_support::require_root;

const CGROUP: &str = "/sys/fs/cgroup";

fn v2() -> bool {
    Path::new(CGROUP).join("cgroup.controllers").exists()
}

/// A file of the container's cgroup: `controller` names the v1 hierarchy.
fn cg_file(controller: &str, id: &str, file: &str) -> PathBuf {
    if v2() {
        Path::new(CGROUP).join("berth").join(id).join(file)
    } else {
        Path::new(CGROUP)
            .join(controller)
            .join("berth")
            .join(id)
            .join(file)
    }
}

fn read_cg(controller: &str, id: &str, file: &str) -> String {
    let p = cg_file(controller, id, file);
    std::fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
        .trim()
        .to_string()
}

fn full_id(d: &TestDaemon, name: &str) -> String {
    ok(&d.docker(&["inspect", "-f", "{{.Id}}", name]))
        .trim()
        .to_string()
}

/// `curl --unix-socket` against the daemon: (status, body).
fn curl(d: &TestDaemon, args: &[&str], path: &str) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-s", "-w", "\n%{http_code}", "--unix-socket"])
        .arg(&d.socket)
        .args(args)
        .arg(format!("http://localhost{path}"))
        .output()
        .expect("run curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

#[test]
fn stats_no_stream_through_docker_and_berth() {
    require_root!();
    let d = TestDaemon::start();
    d.load_busybox();
    ok(&d.docker(&[
        "run", "-d", "--name", "st", "-m", "64m", "busybox", "sleep", "300",
    ]));
    ok(&d.docker(&["run", "--name", "done", "busybox", "true"]));
    let id = full_id(&d, "st");

    for cli in ["docker", "berth"] {
        let run = |args: &[&str]| {
            if cli == "docker" {
                d.docker(args)
            } else {
                d.berth(args)
            }
        };
        // No arguments: running containers only.
        let out = ok(&run(&["stats", "--no-stream"]));
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 2, "{cli}: {out}");
        assert!(
            lines[0].starts_with("CONTAINER ID   NAME      CPU %     MEM USAGE / LIMIT   MEM %"),
            "{cli}: {out}"
        );
        assert!(lines[0].ends_with("PIDS"), "{cli}: {out}");
        let cols: Vec<&str> = lines[1].split_whitespace().collect();
        assert_eq!(cols[0], &id[..12], "{cli}: {out}");
        assert_eq!(cols[1], "st");
        assert!(cols[2].ends_with('%'));
        // MEM USAGE / LIMIT: "<usage> / 64MiB".
        assert_eq!(cols[4], "/");
        assert_eq!(cols[5], "64MiB", "{cli}: {out}");
        let pids: u64 = cols.last().unwrap().parse().unwrap();
        assert!(pids >= 1, "{cli}: {out}");

        // -a adds the exited container, with zeroed figures.
        let out = ok(&run(&[
            "stats",
            "--no-stream",
            "-a",
            "--format",
            "{{.Name}} {{.MemUsage}} {{.PIDs}}",
        ]));
        assert!(out.lines().any(|l| l == "done 0B / 0B 0"), "{cli}: {out}");
        assert!(out.lines().any(|l| l.starts_with("st ")), "{cli}: {out}");

        // Named containers, templates, JSON, --no-trunc.
        let out = ok(&run(&[
            "stats",
            "--no-stream",
            "--no-trunc",
            "--format",
            "{{.Container}}|{{.ID}}|{{.Name}}",
            "st",
        ]));
        assert_eq!(out, format!("st|{id}|st\n"), "{cli}");
        let out = ok(&run(&["stats", "--no-stream", "--format", "json", "st"]));
        let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
        assert_eq!(v["Name"], "st");
        assert_eq!(v["ID"], &id[..12]);
        assert!(v["MemUsage"].as_str().unwrap().ends_with(" / 64MiB"), "{v}");
        for k in [
            "BlockIO",
            "CPUPerc",
            "Container",
            "MemPerc",
            "NetIO",
            "PIDs",
        ] {
            assert!(v.get(k).is_some(), "{cli}: {k} missing in {v}");
        }

        let err = fails(&run(&["stats", "--no-stream", "nosuch"]));
        assert!(err.contains("No such container: nosuch"), "{cli}: {err}");
    }

    // The two CLIs agree on everything but the live figures.
    let fmt = "{{.Container}} {{.Name}} {{.ID}} {{.MemPerc}} {{.NetIO}} {{.BlockIO}}";
    let a = ok(&d.docker(&["stats", "--no-stream", "-a", "--format", fmt]));
    let b = ok(&d.berth(&["stats", "--no-stream", "-a", "--format", fmt]));
    let strip = |s: &str| -> Vec<String> {
        s.lines()
            .map(|l| {
                let mut c: Vec<&str> = l.split(' ').collect();
                c.drain(3..7); // MEM % and NET I/O move with the usage and the traffic
                c.join(" ")
            })
            .collect()
    };
    assert_eq!(strip(&a), strip(&b));
    d.rm_all();
}

#[test]
fn stats_api_shape() {
    require_root!();
    let d = TestDaemon::start();
    d.load_busybox();
    ok(&d.docker(&[
        "run",
        "-d",
        "--name",
        "api",
        "-m",
        "64m",
        "--pids-limit",
        "10",
        "busybox",
        "sleep",
        "300",
    ]));
    let id = full_id(&d, "api");

    let (code, body) = curl(&d, &[], "/v1.47/containers/api/stats?stream=0");
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(body.trim()).unwrap();
    assert_eq!(v["name"], "/api");
    assert_eq!(v["id"], id.as_str());
    for k in [
        "read",
        "preread",
        "pids_stats",
        "blkio_stats",
        "num_procs",
        "storage_stats",
        "cpu_stats",
        "precpu_stats",
        "memory_stats",
    ] {
        assert!(v.get(k).is_some(), "{k} missing: {v}");
    }
    assert_ne!(v["preread"], "0001-01-01T00:00:00Z", "two samples: {v}");
    assert!(
        v["cpu_stats"]["system_cpu_usage"].as_u64().unwrap()
            > v["precpu_stats"]["system_cpu_usage"].as_u64().unwrap()
    );
    assert!(v["cpu_stats"]["online_cpus"].as_u64().unwrap() >= 1);
    assert!(
        v["cpu_stats"]["cpu_usage"]["total_usage"]
            .as_u64()
            .is_some()
    );
    assert_eq!(v["memory_stats"]["limit"], 64 << 20);
    assert!(v["memory_stats"]["usage"].as_u64().unwrap() > 0);
    let stats = v["memory_stats"]["stats"].as_object().unwrap();
    assert!(
        stats.contains_key("total_inactive_file") || stats.contains_key("inactive_file"),
        "{v}"
    );
    assert!(v["pids_stats"]["current"].as_u64().unwrap() >= 1);
    assert_eq!(v["pids_stats"]["limit"], 10);
    assert!(v["blkio_stats"]["io_service_bytes_recursive"].is_array() || v2());

    // one-shot: a single sample, no previous one.
    let (code, body) = curl(&d, &[], "/v1.47/containers/api/stats?stream=0&one-shot=1");
    assert_eq!(code, 200);
    let v: serde_json::Value = serde_json::from_str(body.trim()).unwrap();
    assert_eq!(v["preread"], "0001-01-01T00:00:00Z");
    assert_eq!(v["precpu_stats"]["cpu_usage"]["total_usage"], 0);

    // A stream: one object per line, each with the previous sample.
    let (_, body) = curl(&d, &["--max-time", "2.6"], "/v1.47/containers/api/stats");
    let lines: Vec<serde_json::Value> = body
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(lines.len() >= 2, "{body}");
    assert_eq!(lines[1]["preread"], lines[0]["read"]);

    let (code, body) = curl(&d, &[], "/v1.47/containers/api/stats?stream=1&one-shot=1");
    assert_eq!(code, 400, "{body}");
    let (code, _) = curl(&d, &[], "/v1.47/containers/nosuch/stats?stream=0");
    assert_eq!(code, 404);

    // A stopped container: only name and id.
    ok(&d.docker(&["stop", "-t", "0", "api"]));
    let (_, body) = curl(&d, &[], "/v1.47/containers/api/stats?stream=0");
    let v: serde_json::Value = serde_json::from_str(body.trim()).unwrap();
    assert_eq!(v["read"], "0001-01-01T00:00:00Z");
    assert_eq!(v["memory_stats"], serde_json::json!({}));
    assert_eq!(v["name"], "/api");
    d.rm_all();
}

#[test]
fn update_limits_restart_policy_and_errors() {
    require_root!();
    let d = TestDaemon::start();
    d.load_busybox();
    ok(&d.docker(&[
        "run", "-d", "--name", "up", "-m", "64m", "busybox", "sleep", "300",
    ]));
    let id = full_id(&d, "up");
    let (mem_ctl, mem_file) = if v2() {
        ("", "memory.max")
    } else {
        ("memory", "memory.limit_in_bytes")
    };
    assert_eq!(read_cg(mem_ctl, &id, mem_file), "67108864");
    // As Docker: the swap limit defaults to twice the memory and is recorded.
    assert_eq!(
        ok(&d.docker(&["inspect", "-f", "{{.HostConfig.MemorySwap}}", "up"])).trim(),
        "134217728"
    );

    assert_eq!(ok(&d.docker(&["update", "-m", "128m", "up"])), "up\n");
    assert_eq!(read_cg(mem_ctl, &id, mem_file), "134217728");
    assert_eq!(
        ok(&d.docker(&["inspect", "-f", "{{.HostConfig.Memory}}", "up"])).trim(),
        "134217728"
    );

    // Several at once, through berth.
    assert_eq!(
        ok(&d.berth(&[
            "update",
            "-m",
            "256m",
            "--memory-swap",
            "512m",
            "--pids-limit",
            "20",
            "--cpus",
            "0.5",
            "up"
        ])),
        "up\n"
    );
    assert_eq!(read_cg(mem_ctl, &id, mem_file), "268435456");
    assert_eq!(read_cg("pids", &id, "pids.max"), "20");
    if v2() {
        assert_eq!(read_cg("", &id, "cpu.max"), "50000 100000");
    } else {
        assert_eq!(
            read_cg("memory", &id, "memory.memsw.limit_in_bytes"),
            "536870912"
        );
        assert_eq!(read_cg("cpu", &id, "cpu.cfs_quota_us"), "50000");
    }
    let hc = ok(&d.docker(&[
        "inspect",
        "-f",
        "{{.HostConfig.MemorySwap}} {{.HostConfig.PidsLimit}} {{.HostConfig.NanoCpus}}",
        "up",
    ]));
    assert_eq!(hc.trim(), "536870912 20 500000000");

    // Restart policy.
    ok(&d.docker(&["update", "--restart", "always", "up"]));
    assert_eq!(
        ok(&d.docker(&["inspect", "-f", "{{.HostConfig.RestartPolicy.Name}}", "up"])).trim(),
        "always"
    );

    // Docker's errors.
    let err = fails(&d.docker(&["update", "-m", "1m", "up"]));
    assert!(err.contains("Minimum memory limit allowed is 6MB"), "{err}");
    let err = fails(&d.docker(&["update", "-m", "64m", "--memory-swap", "32m", "up"]));
    assert!(
        err.contains("Minimum memoryswap limit should be larger than memory limit, see usage"),
        "{err}"
    );
    let err = fails(&d.docker(&["update", "-m", "1g", "up"]));
    assert!(
        err.contains(&format!("Cannot update container {id}: Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time")),
        "{err}"
    );
    let err = fails(&d.docker(&["update", "--cpu-quota", "50000", "up"]));
    assert!(
        err.contains(
            "Conflicting options: CPU Quota cannot be updated as NanoCPUs has already been set"
        ),
        "{err}"
    );
    let err = fails(&d.berth(&["update", "--blkio-weight", "5", "up"]));
    assert!(
        err.contains("Range of blkio weight is from 10 to 1000"),
        "{err}"
    );
    let err = fails(&d.docker(&["run", "-m", "1m", "busybox", "true"]));
    assert!(err.contains("Minimum memory limit allowed is 6MB"), "{err}");
    let err = fails(&d.docker(&["update", "-m", "128m", "nosuch"]));
    assert!(err.contains("No such container: nosuch"), "{err}");
    // A failed update changes nothing.
    assert_eq!(read_cg(mem_ctl, &id, mem_file), "268435456");

    ok(&d.docker(&[
        "run", "-d", "--rm", "--name", "auto", "busybox", "sleep", "300",
    ]));
    let auto = full_id(&d, "auto");
    let err = fails(&d.docker(&["update", "--restart", "always", "auto"]));
    assert!(
        err.contains(&format!("Cannot update container {auto}: Restart policy cannot be updated because AutoRemove is enabled for the container")),
        "{err}"
    );

    // A stopped container: the record changes, the next start applies it.
    ok(&d.docker(&[
        "create", "--name", "later", "-m", "64m", "busybox", "sleep", "300",
    ]));
    ok(&d.docker(&["update", "-m", "96m", "--memory-swap", "192m", "later"]));
    ok(&d.docker(&["start", "later"]));
    let later = full_id(&d, "later");
    assert_eq!(read_cg(mem_ctl, &later, mem_file), "100663296");

    // The API answer.
    let (code, body) = curl(
        &d,
        &[
            "-X",
            "POST",
            "-H",
            "Content-Type: application/json",
            "-d",
            "{\"CpuShares\":512}",
        ],
        "/v1.47/containers/up/update",
    );
    assert_eq!((code, body.trim()), (200, "{\"Warnings\":null}"));
    d.rm_all();
}

#[test]
fn run_time_limits_land_in_cgroups() {
    require_root!();
    let d = TestDaemon::start();
    d.load_busybox();
    ok(&d.docker(&[
        "run",
        "-d",
        "--name",
        "lim",
        "--cpus",
        "0.5",
        "--cpuset-cpus",
        "0",
        "--pids-limit",
        "10",
        "-m",
        "32m",
        "--memory-swap",
        "64m",
        "busybox",
        "sleep",
        "300",
    ]));
    let id = full_id(&d, "lim");
    if v2() {
        assert_eq!(read_cg("", &id, "cpu.max"), "50000 100000");
        assert_eq!(read_cg("", &id, "memory.max"), "33554432");
        assert_eq!(read_cg("", &id, "memory.swap.max"), "33554432");
    } else {
        assert_eq!(read_cg("cpu", &id, "cpu.cfs_quota_us"), "50000");
        assert_eq!(read_cg("cpu", &id, "cpu.cfs_period_us"), "100000");
        assert_eq!(read_cg("memory", &id, "memory.limit_in_bytes"), "33554432");
        assert_eq!(
            read_cg("memory", &id, "memory.memsw.limit_in_bytes"),
            "67108864"
        );
    }
    assert_eq!(read_cg("cpuset", &id, "cpuset.cpus"), "0");
    assert_eq!(read_cg("pids", &id, "pids.max"), "10");

    ok(&d.docker(&[
        "run",
        "-d",
        "--name",
        "bw",
        "--blkio-weight",
        "300",
        "busybox",
        "sleep",
        "300",
    ]));
    let bw = full_id(&d, "bw");
    let candidates: &[(&str, &str)] = if v2() {
        &[("", "io.bfq.weight")]
    } else {
        &[("blkio", "blkio.weight"), ("blkio", "blkio.bfq.weight")]
    };
    if let Some((c, f)) = candidates.iter().find(|(c, f)| cg_file(c, &bw, f).exists()) {
        let v = read_cg(c, &bw, f);
        // bfq's file reads "default 300" on some kernels.
        assert!(
            v == "300" || v.ends_with(" 300") || v.contains("default 300"),
            "{f}: {v}"
        );
    }
    d.rm_all();
}

#[test]
fn oom_kill_is_137_and_recorded() {
    require_root!();
    let d = TestDaemon::start();
    d.load_busybox();
    for cli in ["docker", "berth"] {
        let name = format!("oom-{cli}");
        let args = [
            "run",
            "--name",
            &name,
            "-m",
            "16m",
            "--memory-swap",
            "16m",
            "busybox",
            "sh",
            "-c",
            "tail /dev/zero",
        ];
        let out = if cli == "docker" {
            d.docker(&args)
        } else {
            d.berth(&args)
        };
        assert_eq!(out.status.code(), Some(137), "{cli}: {out:?}");
        let state = ok(&d.docker(&[
            "inspect",
            "-f",
            "{{.State.OOMKilled}} {{.State.ExitCode}}",
            &name,
        ]));
        assert_eq!(state.trim(), "true 137", "{cli}");
    }
    // A plain kill is not an OOM.
    ok(&d.docker(&[
        "run", "-d", "--name", "killed", "-m", "64m", "busybox", "sleep", "300",
    ]));
    ok(&d.docker(&["kill", "killed"]));
    ok(&d.docker(&["wait", "killed"]));
    let state = ok(&d.docker(&[
        "inspect",
        "-f",
        "{{.State.OOMKilled}} {{.State.ExitCode}}",
        "killed",
    ]));
    assert_eq!(state.trim(), "false 137");
    d.rm_all();
}
