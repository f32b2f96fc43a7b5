//! End-to-end tests of `events`, container sizes (`ps -s`, `system df`) and `system prune`: a
//! real berthd (as root) driven by the real docker CLI and by `berth`. Every test removes its
//! containers before its daemon stops; a streaming `events` child is the only process a test
//! starts itself, and it is killed (by its own handle) and reaped.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;
use test_support::daemon::{TestDaemon, ok};
use test_support::fixtures;
use test_support::require_root;

/// Now as `<seconds>.<nanoseconds>`, the form the CLI sends.
fn now_stamp() -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    format!("{}.{:09}", t.as_secs(), t.subsec_nanos())
}

fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn attr<'a>(ev: &'a Value, key: &str) -> &'a str {
    ev["Actor"]["Attributes"][key].as_str().unwrap_or_default()
}

/// Waits until the daemon reports `n` events listeners.
fn wait_listeners(d: &TestDaemon, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = ok(&d.docker(&["info", "--format", "{{.NEventsListener}}"]));
        if out.trim() == n.to_string() {
            return;
        }
        assert!(Instant::now() < deadline, "listeners stuck at {out}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Reads the child's stdout lines on a thread.
fn line_reader(child: &mut Child) -> mpsc::Receiver<String> {
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

#[test]
fn since_until_replays_container_lifecycle() {
    require_root!();
    let d = TestDaemon::start();
    d.load_busybox();
    let t0 = now_stamp();
    let id = ok(&d.docker(&[
        "run",
        "-d",
        "--name",
        "ev1",
        "-l",
        "tier=front",
        "busybox",
        "sh",
        "-c",
        "trap 'exit 3' TERM; sleep 100 & wait",
    ]))
    .trim()
    .to_string();
    ok(&d.docker(&["stop", "-t", "5", "ev1"]));
    ok(&d.docker(&["rm", "ev1"]));
    let t1 = now_stamp();

    // The network events of its start and stop: connect before start, disconnect after die
    // (moby emits it while tearing down after `die`; `stop` may come before or after it).
    let out = ok(&d.docker(&[
        "events",
        "--since",
        &t0,
        "--until",
        &t1,
        "--format",
        "{{json .}}",
    ]));
    let all: Vec<String> = json_lines(&out)
        .iter()
        .map(|e| {
            format!(
                "{} {}",
                e["Type"].as_str().unwrap(),
                e["Action"].as_str().unwrap()
            )
        })
        .collect();
    let pos = |x: &str| {
        all.iter()
            .position(|e| e == x)
            .unwrap_or_else(|| panic!("{x}: {all:?}"))
    };
    assert!(pos("network connect") < pos("container start"), "{all:?}");
    assert!(pos("container die") < pos("network disconnect"), "{all:?}");
    assert!(
        pos("network disconnect") < pos("container destroy"),
        "{all:?}"
    );
    assert_eq!(all.len(), 8, "{all:?}");

    // The real CLI, JSON lines: every field docker and compose read.
    let out = ok(&d.docker(&[
        "events",
        "--since",
        &t0,
        "--until",
        &t1,
        "--filter",
        "type=container",
        "--format",
        "{{json .}}",
    ]));
    let evs = json_lines(&out);
    let actions: Vec<&str> = evs.iter().map(|e| e["Action"].as_str().unwrap()).collect();
    assert_eq!(
        actions,
        ["create", "start", "kill", "die", "stop", "destroy"],
        "{out}"
    );
    for e in &evs {
        assert_eq!(e["Type"], "container");
        assert_eq!(e["Actor"]["ID"], id.as_str());
        assert_eq!(e["scope"], "local");
        assert_eq!(e["status"], e["Action"], "legacy status");
        assert_eq!(e["id"], id.as_str(), "legacy id");
        assert_eq!(e["from"], "busybox", "legacy from");
        assert_eq!(attr(e, "name"), "ev1");
        assert_eq!(attr(e, "image"), "busybox");
        assert_eq!(attr(e, "tier"), "front", "labels are attributes");
        let nanos = e["timeNano"].as_i64().unwrap();
        assert_eq!(nanos / 1_000_000_000, e["time"].as_i64().unwrap());
    }
    assert_eq!(attr(&evs[2], "signal"), "15");
    assert_eq!(attr(&evs[3], "exitCode"), "3");
    assert!(!attr(&evs[3], "execDuration").is_empty());

    // Filters: by event and by container name.
    let out = ok(&d.docker(&[
        "events",
        "--since",
        &t0,
        "--until",
        &t1,
        "--filter",
        "event=die",
        "--filter",
        "container=ev1",
    ]));
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(
        out.contains(&format!("container die {id} (execDuration=",))
            && out
                .trim_end()
                .ends_with("exitCode=3, image=busybox, name=ev1, tier=front)"),
        "{out}"
    );
    let out = ok(&d.docker(&[
        "events",
        "--since",
        &t0,
        "--until",
        &t1,
        "--filter",
        "container=other",
    ]));
    assert_eq!(out, "");

    // berth prints the same lines as docker.
    let want = ok(&d.docker(&["events", "--since", &t0, "--until", &t1]));
    let got = ok(&d.berth(&["events", "--since", &t0, "--until", &t1]));
    assert_eq!(got, want);
    assert_eq!(want.lines().count(), 8, "{want}");
    let got = ok(&d.berth(&[
        "system",
        "events",
        "--since",
        &t0,
        "--until",
        &t1,
        "--filter",
        "type=container",
        "--format",
        "{{json .}}",
    ]));
    assert_eq!(json_lines(&got), evs);
    d.rm_all();
}

#[test]
fn streaming_events_reach_a_waiting_client() {
    require_root!();
    let d = TestDaemon::start();
    d.load_busybox();
    for cli in ["docker", "berth"] {
        let mut cmd = if cli == "docker" {
            d.docker_cmd()
        } else {
            d.berth_cmd()
        };
        let mut child = cmd
            .args([
                "events",
                "--filter",
                "event=start",
                "--format",
                "{{.Action}} {{.Actor.Attributes.name}}",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let lines = line_reader(&mut child);
        wait_listeners(&d, 1);
        let name = format!("st-{cli}");
        ok(&d.docker(&["run", "--rm", "--name", &name, "busybox", "true"]));
        let line = lines.recv_timeout(Duration::from_secs(10));
        // Only the process this test started is ended.
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(line.unwrap(), format!("start {name}"));
        // The daemon notices the client went away.
        wait_listeners(&d, 0);
    }
    d.rm_all();
}

#[test]
fn image_events_on_tag_and_rmi() {
    require_root!();
    let d = TestDaemon::start();
    d.load_busybox();
    let image_id = ok(&d.docker(&["inspect", "-f", "{{.Id}}", "busybox"]))
        .trim()
        .to_string();
    let t0 = now_stamp();
    ok(&d.docker(&["tag", "busybox", "evtest:v1"]));
    ok(&d.docker(&["rmi", "evtest:v1"]));
    let t1 = now_stamp();
    let out = ok(&d.docker(&[
        "events",
        "--since",
        &t0,
        "--until",
        &t1,
        "--filter",
        "type=image",
        "--format",
        "{{json .}}",
    ]));
    let evs = json_lines(&out);
    let actions: Vec<&str> = evs.iter().map(|e| e["Action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["tag", "untag"], "{out}");
    for e in &evs {
        assert_eq!(e["Type"], "image");
        assert_eq!(e["Actor"]["ID"], image_id.as_str());
        assert_eq!(e["id"], image_id.as_str());
        assert!(e.get("from").is_none());
    }
    assert_eq!(attr(&evs[0], "name"), "evtest:v1");
    assert_eq!(attr(&evs[1], "name"), image_id.as_str());
    // `image=` matches the tag's name.
    let out = ok(&d.berth(&[
        "events",
        "--since",
        &t0,
        "--until",
        &t1,
        "--filter",
        "image=evtest",
    ]));
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(
        out.contains(&format!("image tag {image_id} (name=evtest:v1)")),
        "{out}"
    );
}

#[test]
fn sizes_in_ps_inspect_and_system_df() {
    require_root!();
    let d = TestDaemon::start();
    d.load_busybox();
    ok(&d.docker(&[
        "run",
        "--name",
        "big",
        "busybox",
        "dd",
        "if=/dev/zero",
        "of=/big",
        "bs=1048576",
        "count=1",
    ]));
    // SizeRw counts the upper directory; SizeRootFs adds the image.
    let out = ok(&d.docker(&["inspect", "-s", "-f", "{{.SizeRw}} {{.SizeRootFs}}", "big"]));
    let sizes: Vec<i64> = out.split_whitespace().map(|s| s.parse().unwrap()).collect();
    assert!(sizes[0] >= 1_048_576, "{out}");
    let image_size: i64 = ok(&d.docker(&["inspect", "-f", "{{.Size}}", "busybox"]))
        .trim()
        .parse()
        .unwrap();
    assert_eq!(sizes[1], sizes[0] + image_size, "{out}");
    let docker_ps = ok(&d.docker(&["ps", "-a", "-s", "--format", "{{.Names}} {{.Size}}"]));
    assert!(docker_ps.starts_with("big 1.05MB (virtual "), "{docker_ps}");
    let berth_ps = ok(&d.berth(&["ps", "-a", "-s", "--format", "{{.Names}} {{.Size}}"]));
    assert_eq!(berth_ps, docker_ps);
    let table = ok(&d.berth(&["ps", "-as"]));
    assert!(table.lines().next().unwrap().ends_with("SIZE"), "{table}");

    // system df: the stopped container's layer is all reclaimable; the image is in use.
    let docker_df = ok(&d.docker(&["system", "df"]));
    let containers = docker_df
        .lines()
        .find(|l| l.starts_with("Containers"))
        .unwrap();
    let cols: Vec<&str> = containers.split_whitespace().collect();
    assert_eq!(
        &cols[1..],
        ["1", "0", "1.049MB", "1.049MB", "(100%)"],
        "{docker_df}"
    );
    let images = docker_df.lines().find(|l| l.starts_with("Images")).unwrap();
    assert_eq!(images.split_whitespace().nth(2), Some("1"), "{docker_df}");
    assert_eq!(ok(&d.berth(&["system", "df"])), docker_df);
    let verbose = ok(&d.berth(&["system", "df", "-v"]));
    let docker_verbose = ok(&d.docker(&["system", "df", "-v"]));
    for section in [
        "Images space usage:",
        "Containers space usage:",
        "Local Volumes space usage:",
        "Build cache usage: 0B",
    ] {
        assert!(verbose.contains(section), "{verbose}");
        assert!(docker_verbose.contains(section), "{docker_verbose}");
    }
    // The container row shows the layer's size without the virtual size.
    for text in [&verbose, &docker_verbose] {
        let row = text.lines().find(|l| l.ends_with(" big")).unwrap();
        assert!(row.contains("   1.05MB   "), "{text}");
        assert!(!row.contains("virtual"), "{text}");
    }
    let image_row = |text: &str| {
        text.lines()
            .find(|l| l.starts_with("busybox"))
            .map(str::to_string)
    };
    assert_eq!(image_row(&verbose), image_row(&docker_verbose));
    d.rm_all();
}

#[test]
fn system_prune_removes_stopped_containers_and_dangling_images() {
    require_root!();
    let d = TestDaemon::start();
    d.load_busybox();
    let rootfs = fixtures::busybox_rootfs(d.dir());
    for cli in ["docker", "berth"] {
        let stopped = ok(&d.docker(&["create", "busybox", "true"]))
            .trim()
            .to_string();
        let running = ok(&d.docker(&["run", "-d", "busybox", "sleep", "100"]))
            .trim()
            .to_string();
        // An import without a name is a dangling image.
        let dangling = ok(&d.docker(&["import", rootfs.to_str().unwrap()]))
            .trim()
            .to_string();
        let t0 = now_stamp();
        let out = if cli == "docker" {
            ok(&d.docker(&["system", "prune", "-f"]))
        } else {
            ok(&d.berth(&["system", "prune", "-f"]))
        };
        assert!(
            out.starts_with(&format!("Deleted Containers:\n{stopped}\n\n")),
            "{cli}: {out}"
        );
        assert!(
            out.contains(&format!("Deleted Images:\ndeleted: {dangling}\n")),
            "{cli}: {out}"
        );
        assert!(
            out.ends_with("B\n") && out.contains("\nTotal reclaimed space: "),
            "{out}"
        );
        let left = ok(&d.docker(&["ps", "-aq", "--no-trunc"]));
        assert_eq!(left.trim(), running, "{cli}");
        let images = ok(&d.docker(&["images", "-q", "--no-trunc"]));
        assert!(!images.contains(&dangling), "{cli}: {images}");
        assert_eq!(images.lines().count(), 1, "busybox stays: {images}");
        // The prunes were announced.
        let t1 = now_stamp();
        let out = ok(&d.docker(&[
            "events",
            "--since",
            &t0,
            "--until",
            &t1,
            "--filter",
            "event=prune",
        ]));
        assert!(out.contains("container prune  (reclaimed="), "{out}");
        assert!(out.contains("image prune  (reclaimed="), "{out}");
        d.rm_all();
    }
    // container prune: only stopped containers, docker's summary.
    let stopped = ok(&d.docker(&["create", "busybox", "true"]))
        .trim()
        .to_string();
    let out = ok(&d.berth(&["container", "prune", "-f"]));
    assert_eq!(
        out,
        format!("Deleted Containers:\n{stopped}\n\nTotal reclaimed space: 0B\n")
    );
    let out = ok(&d.berth(&["container", "prune", "-f"]));
    assert_eq!(out, "Total reclaimed space: 0B\n");
}
