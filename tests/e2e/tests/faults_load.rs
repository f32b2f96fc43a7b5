//! Load: 100 concurrent `docker run --rm` × 10 rounds against one berthd, on the default
//! bridge (some ping its gateway, every tenth publishes a port) and on a user network (every
//! tenth pings its own name through the embedded DNS). Every run must exit 0, and afterwards
//! nothing of them may be left: no container, no mount under the data or exec root, no cgroup,
//! no veth on the bridges, no per-container nftables rule, no file under `containers/`, and
//! berthd's open descriptors and threads back near where they started. Beside it: detached
//! `--rm` runs stopped while they exit (teardown overlapping new starts), and concurrent
//! creates and removes of one name.
//!
//! Rounds and concurrency can be changed for a quick look with `BERTH_LOAD_ROUNDS` and
//! `BERTH_LOAD_CONCURRENCY`; the defaults are what CI runs. Each round's time is printed
//! (`--nocapture`).

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use test_support::daemon::{TestDaemon, bridge_ports, no_mounts_under, ok, ping};
use test_support::require_root;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn count_dir(path: &Path) -> usize {
    std::fs::read_dir(path).map_or(0, Iterator::count)
}

/// berthd's open descriptors and threads.
fn fds_and_threads(pid: u32) -> (usize, usize) {
    (
        count_dir(Path::new(&format!("/proc/{pid}/fd"))),
        count_dir(Path::new(&format!("/proc/{pid}/task"))),
    )
}

/// The cgroup directories of container `id` that still exist (v1 controllers and v2).
fn cgroups_of(id: &str) -> Vec<String> {
    let mut left = Vec::new();
    let root = Path::new("/sys/fs/cgroup");
    let mut dirs = vec![root.join("berth").join(id)];
    if let Ok(rd) = std::fs::read_dir(root) {
        for e in rd.flatten() {
            dirs.push(e.path().join("berth").join(id));
        }
    }
    for d in dirs {
        if d.is_dir() {
            left.push(d.display().to_string());
        }
    }
    left
}

/// berth's nftables table for this daemon, as text.
fn ruleset(bridge: &str) -> String {
    let out = Command::new("nft")
        .args(["list", "table", "ip", &format!("berth-{bridge}")])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The rules of the `ports` chain (published ports' DNATs): one per published container port.
fn port_rules(ruleset: &str) -> Vec<String> {
    let Some(start) = ruleset.find("chain ports {") else {
        return Vec::new();
    };
    ruleset[start..]
        .lines()
        .skip(1)
        .map(str::trim)
        .take_while(|l| *l != "}")
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect()
}

/// Waits up to `secs` for `check` to give `None` (done); returns its last complaint.
fn settle(secs: u64, mut check: impl FnMut() -> Option<String>) -> Option<String> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let left = check();
        if left.is_none() || Instant::now() > deadline {
            return left;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn describe(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn concurrent_run_rm_rounds_leave_nothing_behind() {
    require_root!();
    let rounds = env_or("BERTH_LOAD_ROUNDS", 10);
    let concurrency = env_or("BERTH_LOAD_CONCURRENCY", 100);
    let d = TestDaemon::start();
    d.load_busybox();
    // A first run, so what is made once (the bridge, the nftables table, the seccomp cache)
    // is there before the descriptors and threads are counted.
    ok(&d.docker(&["run", "--rm", "-p", "127.0.0.1::80", "busybox", "true"]));
    let net_id = ok(&d.docker(&["network", "create", "loadnet"]));
    let net_id = net_id.trim();
    ok(&d.docker(&["run", "--rm", "--network", "loadnet", "busybox", "true"]));
    let gateway = format!("{}.0.1", d.net_prefix);
    let gw = gateway.as_str();
    let (fds0, threads0) = fds_and_threads(d.pid().unwrap());
    let cids = tempfile::tempdir_in("/tmp").unwrap();
    let mut ids = Vec::new();
    let started = Instant::now();
    for round in 0..rounds {
        let t = Instant::now();
        let outs: Vec<(usize, Output)> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..concurrency)
                .map(|i| {
                    let cid = cids.path().join(format!("{round}-{i}"));
                    let d = &d;
                    s.spawn(move || {
                        let mut c = d.docker_cmd();
                        c.args(["run", "--rm", "--cidfile"]).arg(&cid);
                        match i % 10 {
                            // A published port: a DNAT rule and a host port while it runs.
                            0 => c.args(["-p", "127.0.0.1::80", "busybox", "true"]),
                            // A user network: its own name through the embedded DNS.
                            5 => {
                                let name = format!("r{round}-{i}");
                                c.args(["--network", "loadnet", "--name", &name])
                                    .args(["busybox", "ping", "-c", "1", "-W", "5", &name])
                            }
                            // The default bridge's gateway through the veth.
                            1 | 3 | 7 => c.args(["busybox", "ping", "-c", "1", "-W", "5", gw]),
                            _ => c.args(["busybox", "true"]),
                        };
                        (i, c.output().unwrap())
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let failed: Vec<String> = outs
            .iter()
            .filter(|(_, o)| !o.status.success())
            .map(|(i, o)| format!("run {round}-{i}: {}", describe(o)))
            .collect();
        assert!(
            failed.is_empty(),
            "{} of {concurrency} runs failed in round {round}:\n{}\nberthd log tail:\n{}",
            failed.len(),
            failed.join("\n"),
            d.log()
                .lines()
                .rev()
                .take(40)
                .collect::<Vec<_>>()
                .join("\n")
        );
        for i in 0..concurrency {
            let cid = std::fs::read_to_string(cids.path().join(format!("{round}-{i}")))
                .unwrap_or_default();
            assert_eq!(cid.trim().len(), 64, "run {round}-{i}: no container ID");
            ids.push(cid.trim().to_string());
        }
        assert!(ping(&d.socket), "berthd stopped answering");
        eprintln!(
            "round {round}: {concurrency} concurrent runs in {:.1} s",
            t.elapsed().as_secs_f64()
        );
    }
    eprintln!(
        "{rounds} rounds of {concurrency}: {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let user_bridge = format!("br-{}", &net_id[..12]);
    assert_nothing_left(&d, &ids, &[&d.bridge, &user_bridge], (fds0, threads0));
    ok(&d.docker(&["network", "rm", "loadnet"]));
}

/// Nothing of the containers `ids` is left (see the module doc); berthd's descriptors and
/// threads are back within a few of `baseline`; its log has no panic, warning or error.
fn assert_nothing_left(d: &TestDaemon, ids: &[String], bridges: &[&str], baseline: (usize, usize)) {
    let ps = ok(&d.docker(&["ps", "-aq"]));
    assert!(ps.trim().is_empty(), "containers left: {ps}");
    let left = settle(20, || {
        let mut left = Vec::new();
        if !no_mounts_under(&d.data_root) {
            left.push("mounts under the data root".to_string());
        }
        if !no_mounts_under(&d.exec_root) {
            left.push("mounts under the exec root".to_string());
        }
        let ctrs = count_dir(&d.data_root.join("containers"));
        if ctrs != 0 {
            left.push(format!("{ctrs} entries under containers/"));
        }
        for sub in ["containers", "c", "exec", "e", "netns"] {
            let n = count_dir(&d.exec_root.join(sub));
            if n != 0 {
                left.push(format!("{n} entries under exec root {sub}/"));
            }
        }
        let cgroups: Vec<String> = ids.iter().flat_map(|id| cgroups_of(id)).collect();
        if !cgroups.is_empty() {
            left.push(format!(
                "{} cgroups, e.g. {:?}",
                cgroups.len(),
                &cgroups[..cgroups.len().min(3)]
            ));
        }
        for bridge in bridges {
            let veths = bridge_ports(bridge);
            if !veths.is_empty() {
                left.push(format!("{} veths on {bridge}: {veths:?}", veths.len()));
            }
        }
        let rules = ruleset(&d.bridge);
        let ports = port_rules(&rules);
        if !ports.is_empty() {
            left.push(format!("per-container rules left: {ports:?}"));
        }
        (!left.is_empty()).then(|| left.join("\n"))
    });
    assert!(left.is_none(), "left behind:\n{}", left.unwrap_or_default());

    // Descriptors and threads back near where they were (tokio's blocking pool lets idle
    // threads go after 10 s).
    let (fds0, threads0) = baseline;
    let pid = d.pid().unwrap();
    let grown = settle(30, || {
        let (fds, threads) = fds_and_threads(pid);
        (fds > fds0 + 8 || threads > threads0 + 8).then(|| {
            format!("berthd has {fds} fds (was {fds0}) and {threads} threads (was {threads0})")
        })
    });
    assert!(grown.is_none(), "{}", grown.unwrap_or_default());
    let log = d.log();
    assert!(!log.contains("panicked"), "berthd panicked:\n{log}");
    let complaints: Vec<&str> = log
        .lines()
        .filter(|l| (l.contains(" WARN ") || l.contains(" ERROR ")) && !l.contains("seccomp"))
        .collect();
    assert!(
        complaints.is_empty(),
        "berthd complained {} times, e.g.:\n{}",
        complaints.len(),
        complaints[..complaints.len().min(20)].join("\n")
    );
}

/// Detached `--rm` runs: the daemon removes each container on its own while the next round
/// starts, and half of them are stopped (`docker stop -t 1`) as they exit by themselves, so
/// teardown (veths deleted in the background, addresses back to the pool, rules reapplied)
/// overlaps with new starts.
#[test]
fn detached_run_rm_rounds_overlapping_teardown_leave_nothing_behind() {
    require_root!();
    let rounds = env_or("BERTH_LOAD_ROUNDS", 10).div_ceil(2);
    let concurrency = env_or("BERTH_LOAD_CONCURRENCY", 100) / 2;
    let d = TestDaemon::start();
    d.load_busybox();
    ok(&d.docker(&["run", "--rm", "-p", "127.0.0.1::80", "busybox", "true"]));
    let baseline = fds_and_threads(d.pid().unwrap());
    let mut ids = Vec::new();
    let started = Instant::now();
    for round in 0..rounds {
        let t = Instant::now();
        let outs: Vec<(usize, Output, Option<Output>)> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..concurrency)
                .map(|i| {
                    let d = &d;
                    s.spawn(move || {
                        let mut c = d.docker_cmd();
                        c.args(["run", "-d", "--rm"]);
                        if i % 5 == 0 {
                            c.args(["-p", "127.0.0.1::80"]);
                        }
                        let sleep = format!("0.{}", i % 4);
                        c.args(["busybox", "sleep", &sleep]);
                        let out = c.output().unwrap();
                        let stop = (i % 2 == 0 && out.status.success()).then(|| {
                            let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
                            d.docker(&["stop", "-t", "1", &id])
                        });
                        (i, out, stop)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for (i, out, stop) in &outs {
            assert!(out.status.success(), "run {round}-{i}: {}", describe(out));
            let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
            assert_eq!(id.len(), 64, "run {round}-{i}: {}", describe(out));
            // A stop that comes after the container removed itself finds nothing, as Docker.
            if let Some(stop) = stop
                && !stop.status.success()
            {
                let err = String::from_utf8_lossy(&stop.stderr);
                assert!(
                    err.contains("No such container") || err.contains("is not running"),
                    "stop {round}-{i}: {}",
                    describe(stop)
                );
            }
            ids.push(id);
        }
        eprintln!(
            "detached round {round}: {concurrency} concurrent runs in {:.1} s",
            t.elapsed().as_secs_f64()
        );
    }
    let gone = settle(60, || {
        let ps = ok(&d.docker(&["ps", "-aq"]));
        (!ps.trim().is_empty()).then_some(ps)
    });
    assert!(gone.is_none(), "not removed: {gone:?}");
    eprintln!(
        "{rounds} detached rounds of {concurrency}, all removed: {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert_nothing_left(&d, &ids, &[&d.bridge], baseline);
}

/// Names under concurrency: of 50 concurrent creates of one name exactly one wins and the
/// others get Docker's conflict; of 50 concurrent `rm -f` of it exactly one removes it and the
/// others find nothing (or the removal under way), as Docker answers.
#[test]
fn concurrent_creates_and_removes_of_one_name() {
    require_root!();
    let d = TestDaemon::start();
    d.load_busybox();
    for round in 0..3 {
        let outs: Vec<Output> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..50)
                .map(|_| {
                    let d = &d;
                    s.spawn(move || d.docker(&["create", "--name", "same", "busybox", "true"]))
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let won = outs.iter().filter(|o| o.status.success()).count();
        assert_eq!(won, 1, "round {round}: {won} creates of one name succeeded");
        for o in outs.iter().filter(|o| !o.status.success()) {
            let err = String::from_utf8_lossy(&o.stderr);
            assert!(
                err.contains("The container name \"/same\" is already in use"),
                "round {round}: {}",
                describe(o)
            );
        }
        let outs: Vec<Output> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..50)
                .map(|_| {
                    let d = &d;
                    s.spawn(move || d.docker(&["rm", "-f", "same"]))
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for o in outs.iter().filter(|o| !o.status.success()) {
            let err = String::from_utf8_lossy(&o.stderr);
            assert!(
                err.contains("No such container") || err.contains("already in progress"),
                "round {round}: {}",
                describe(o)
            );
        }
        let ps = ok(&d.docker(&["ps", "-aq"]));
        assert!(ps.trim().is_empty(), "round {round}: left {ps}");
        assert_eq!(count_dir(&d.data_root.join("containers")), 0);
    }
}
