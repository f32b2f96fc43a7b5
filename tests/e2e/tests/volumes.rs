//! End-to-end volumes through the real docker CLI and `berth`: create (named, generated,
//! labels, `-o type=tmpfs`), ls with each filter and format, inspect, rm (404, 409 while a
//! container uses the volume, `-f`), prune (anonymous only by default, `-a`, label filters, the
//! pre-1.42 `all` behaviour), `system df` and `system prune --volumes`, the `volume` events,
//! the status codes, and volumes (a tmpfs one still mounted included) across a berthd restart.
//! Every test removes its containers before its daemon stops and checks that no mount is left
//! under the data root.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;

use test_support::daemon::{TestDaemon, fails, no_mounts_under, ok};
use test_support::require_root;

/// One raw HTTP request on the daemon's socket: (status, body).
fn http(d: &TestDaemon, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
    let mut s = UnixStream::connect(&d.socket).unwrap();
    let body = body.unwrap_or("");
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text[9..12].parse().unwrap();
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

fn inspect_json(d: &TestDaemon, name: &str) -> serde_json::Value {
    let out = ok(&d.docker(&["volume", "inspect", name]));
    let arr: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    assert_eq!(arr.len(), 1, "{out}");
    arr.into_iter().next().unwrap()
}

fn ls(d: &TestDaemon, args: &[&str]) -> Vec<String> {
    let mut a = vec!["volume", "ls", "-q"];
    a.extend_from_slice(args);
    ok(&d.docker(&a)).lines().map(String::from).collect()
}

fn is_generated(n: &str) -> bool {
    n.len() == 64 && n.chars().all(|c| c.is_ascii_hexdigit())
}

fn is_mounted(p: &Path) -> bool {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let p = p.to_string_lossy();
    info.lines().any(|l| l.split(' ').nth(4) == Some(&*p))
}

#[test]
fn create_inspect_ls_and_rm_through_docker() {
    require_root!();
    let d = TestDaemon::start();
    assert_eq!(
        ok(&d.docker(&["volume", "create", "--label", "a=b", "v1"])),
        "v1\n"
    );
    // A second create of the same name answers the existing volume, unchanged.
    assert_eq!(
        ok(&d.docker(&["volume", "create", "--label", "c=d", "v1"])),
        "v1\n"
    );
    let anon = ok(&d.docker(&["volume", "create"])).trim().to_string();
    assert!(is_generated(&anon), "{anon}");
    ok(&d.docker(&[
        "volume",
        "create",
        "-o",
        "type=tmpfs",
        "-o",
        "device=tmpfs",
        "-o",
        "o=size=1m",
        "tv",
    ]));

    let v = inspect_json(&d, "v1");
    let mountpoint = d.data_root.join("volumes/v1/_data");
    assert_eq!(v["Name"], "v1");
    assert_eq!(v["Driver"], "local");
    assert_eq!(v["Scope"], "local");
    assert_eq!(v["Mountpoint"], mountpoint.to_str().unwrap());
    assert_eq!(v["Labels"], serde_json::json!({"a": "b"}));
    assert!(v["Options"].is_null(), "{v}");
    assert!(v.get("UsageData").is_none(), "{v}");
    let created = v["CreatedAt"].as_str().unwrap();
    assert!(
        chrono_like_rfc3339(created),
        "CreatedAt {created:?} is not RFC3339 in seconds"
    );
    assert!(mountpoint.is_dir());
    let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "CreatedAt",
            "Driver",
            "Labels",
            "Mountpoint",
            "Name",
            "Options",
            "Scope"
        ]
    );
    let a = inspect_json(&d, &anon);
    assert_eq!(
        a["Labels"],
        serde_json::json!({"com.docker.volume.anonymous": ""})
    );
    let t = inspect_json(&d, "tv");
    assert_eq!(
        t["Options"],
        serde_json::json!({"device": "tmpfs", "o": "size=1m", "type": "tmpfs"})
    );
    assert!(t["Labels"].is_null());
    // Not mounted until a container uses it.
    assert!(!is_mounted(&d.data_root.join("volumes/tv/_data")));

    let out = ok(&d.docker(&[
        "volume",
        "inspect",
        "-f",
        "{{.Name}} {{.Driver}} {{.Labels}}",
        "v1",
    ]));
    assert_eq!(out, "v1 local map[a:b]\n");
    // `docker inspect` falls through to volumes.
    let out = ok(&d.docker(&["inspect", "-f", "{{.Mountpoint}}", "v1"]));
    assert_eq!(out.trim(), mountpoint.to_str().unwrap());

    let table = ok(&d.docker(&["volume", "ls"]));
    assert_eq!(
        table,
        format!("DRIVER    VOLUME NAME\nlocal     {anon}\nlocal     tv\nlocal     v1\n")
    );
    let out = ok(&d.docker(&[
        "volume",
        "ls",
        "--format",
        "{{.Name}}|{{.Labels}}|{{.Scope}}|{{.Links}}",
    ]));
    assert!(out.contains("v1|a=b|local|N/A\n"), "{out}");
    let out = ok(&d.docker(&["volume", "ls", "--format", "json", "-f", "name=^v1$"]));
    let row: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(row["Name"], "v1");
    assert_eq!(row["Driver"], "local");

    // Filters: name (moby matches it as a regular expression), label, driver, dangling.
    assert_eq!(ls(&d, &["-f", "name=v"]), ["tv", "v1"]);
    assert_eq!(ls(&d, &["-f", "name=^v"]), ["v1"]);
    assert_eq!(ls(&d, &["-f", "label=a=b"]), ["v1"]);
    assert_eq!(ls(&d, &["-f", "label=a"]), ["v1"]);
    assert!(ls(&d, &["-f", "label=a=x"]).is_empty());
    assert_eq!(
        ls(&d, &["-f", "label=com.docker.volume.anonymous"]),
        [anon.as_str()]
    );
    assert_eq!(ls(&d, &["-f", "driver=local"]).len(), 3);
    assert!(ls(&d, &["-f", "driver=nfs"]).is_empty());
    assert_eq!(ls(&d, &["-f", "dangling=true"]).len(), 3);
    assert!(ls(&d, &["-f", "dangling=false"]).is_empty());
    let err = fails(&d.docker(&["volume", "ls", "-f", "colour=red"]));
    assert!(err.contains("invalid filter 'colour'"), "{err}");
    let err = fails(&d.docker(&["volume", "ls", "-f", "dangling=maybe"]));
    assert!(err.contains("invalid filter 'dangling=maybe'"), "{err}");

    // Bad requests, in moby's words.
    let err = fails(&d.docker(&["volume", "inspect", "nonexist"]));
    assert_eq!(
        err,
        "Error response from daemon: get nonexist: no such volume\n"
    );
    let err = fails(&d.docker(&["volume", "create", "a"]));
    assert_eq!(
        err,
        "Error response from daemon: create a: volume name is too short, names should be at least two alphanumeric characters\n"
    );
    let err = fails(&d.docker(&["volume", "create", "-o", "bogus=1", "v3"]));
    assert_eq!(
        err,
        "Error response from daemon: create v3: invalid option: \"bogus\"\n"
    );
    let err = fails(&d.docker(&["volume", "create", "-o", "type=tmpfs", "v4"]));
    assert_eq!(
        err,
        "Error response from daemon: create v4: missing required option: \"device\"\n"
    );
    let err = fails(&d.docker(&["volume", "create", "-d", "foo", "v5"]));
    assert_eq!(
        err,
        "Error response from daemon: create v5: error looking up volume plugin foo: plugin \"foo\" not found\n"
    );
    let err = fails(&d.docker(&["volume", "create", "../x"]));
    assert!(
        err.contains("includes invalid characters for a local volume name"),
        "{err}"
    );
    assert!(!d.data_root.join("x").exists());

    // rm prints the names it removed; missing ones fail unless -f.
    assert_eq!(
        ok(&d.docker(&["volume", "rm", "v1", anon.as_str()])),
        format!("v1\n{anon}\n")
    );
    assert!(!d.data_root.join("volumes/v1").exists());
    let out = d.docker(&["volume", "rm", "v1", "tv"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "tv\n");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "Error response from daemon: get v1: no such volume\n"
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        ok(&d.docker(&["volume", "rm", "-f", "nonexist"])),
        "nonexist\n"
    );
    assert!(ls(&d, &[]).is_empty());
    assert!(no_mounts_under(&d.data_root));
}

/// `2026-11-23T06:12:41Z` (RFC3339, whole seconds, UTC).
fn chrono_like_rfc3339(s: &str) -> bool {
    let b = s.as_bytes();
    s.len() == 20
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && b[19] == b'Z'
        && s.chars()
            .enumerate()
            .all(|(i, c)| [4, 7, 10, 13, 16, 19].contains(&i) || c.is_ascii_digit())
}

#[test]
fn status_codes_and_bodies_over_the_api() {
    require_root!();
    let d = TestDaemon::start();
    let (st, body) = http(
        &d,
        "POST",
        "/v1.47/volumes/create",
        Some(r#"{"Name":"api1","Labels":{"k":"v"},"DriverOpts":{}}"#),
    );
    assert_eq!(st, 201, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["Name"], "api1");
    assert_eq!(v["Labels"]["k"], "v");
    // An empty body creates an anonymous volume with a generated name.
    let (st, body) = http(&d, "POST", "/volumes/create", Some("{}"));
    assert_eq!(st, 201, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(is_generated(v["Name"].as_str().unwrap()), "{body}");

    let (st, body) = http(&d, "GET", "/v1.47/volumes/api1", None);
    assert_eq!(st, 200, "{body}");
    let (st, body) = http(&d, "GET", "/v1.47/volumes/nonexist", None);
    assert_eq!(
        (st, body.as_str()),
        (404, r#"{"message":"get nonexist: no such volume"}"#)
    );
    let (st, body) = http(&d, "GET", "/v1.47/volumes", None);
    assert_eq!(st, 200);
    let list: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(list["Volumes"].as_array().unwrap().len(), 2);
    assert!(list["Warnings"].is_null());
    let (st, _) = http(
        &d,
        "POST",
        "/v1.47/volumes/create",
        Some(r#"{"Name":"x","Driver":"nope"}"#),
    );
    assert_eq!(st, 404);
    let (st, _) = http(
        &d,
        "POST",
        "/v1.47/volumes/create",
        Some(r#"{"Name":"bad/name"}"#),
    );
    assert_eq!(st, 400);
    let (st, _) = http(
        &d,
        "POST",
        "/v1.47/volumes/create",
        Some(r#"{"Name":"x2","DriverOpts":{"size":"1g"}}"#),
    );
    assert_eq!(st, 400);
    let (st, body) = http(
        &d,
        "POST",
        "/v1.47/volumes/prune?filters=%7B%22all%22%3A%5B%22maybe%22%5D%7D",
        None,
    );
    assert_eq!(st, 400, "{body}");
    let (st, body) = http(&d, "DELETE", "/v1.47/volumes/api1", None);
    assert_eq!((st, body.as_str()), (204, ""));
    let (st, _) = http(&d, "DELETE", "/v1.47/volumes/api1", None);
    assert_eq!(st, 404);
    let (st, _) = http(&d, "DELETE", "/v1.47/volumes/api1?force=1", None);
    assert_eq!(st, 204);
}

#[test]
fn a_volume_in_use_is_refused_even_with_force() {
    require_root!();
    let d = TestDaemon::start();
    d.load_busybox();
    ok(&d.docker(&["volume", "create", "usedvol"]));
    let id = ok(&d.docker(&[
        "create",
        "--name",
        "c1",
        "-v",
        "usedvol:/data",
        "busybox",
        "true",
    ]));
    let id = id.trim();
    let want = format!("Error response from daemon: remove usedvol: volume is in use - [{id}]\n");
    assert_eq!(fails(&d.docker(&["volume", "rm", "usedvol"])), want);
    assert_eq!(fails(&d.docker(&["volume", "rm", "-f", "usedvol"])), want);
    let (st, body) = http(&d, "DELETE", "/v1.47/volumes/usedvol?force=1", None);
    assert_eq!(st, 409, "{body}");
    assert_eq!(fails(&d.berth(&["volume", "rm", "usedvol"])), want);
    // Used, so not dangling and never pruned, even with --all.
    assert_eq!(ls(&d, &["-f", "dangling=false"]), ["usedvol"]);
    assert!(ls(&d, &["-f", "dangling=true"]).is_empty());
    assert_eq!(
        ok(&d.docker(&["volume", "prune", "-a", "-f"])),
        "Total reclaimed space: 0B\n"
    );
    // A second user is listed too (sorted IDs).
    let id2 = ok(&d.docker(&["create", "-v", "usedvol:/x", "busybox", "true"]));
    let err = fails(&d.docker(&["volume", "rm", "usedvol"]));
    assert!(err.contains(id) && err.contains(id2.trim()), "{err}");
    ok(&d.docker(&["rm", id, id2.trim()]));
    assert_eq!(ok(&d.docker(&["volume", "rm", "usedvol"])), "usedvol\n");
    assert!(no_mounts_under(&d.data_root));
}

#[test]
fn prune_takes_anonymous_volumes_unless_all() {
    require_root!();
    let d = TestDaemon::start();
    ok(&d.docker(&["volume", "create", "named"]));
    ok(&d.docker(&["volume", "create", "--label", "keep=1", "labelled"]));
    ok(&d.docker(&[
        "volume",
        "create",
        "-o",
        "type=tmpfs",
        "-o",
        "device=tmpfs",
        "tmpvol",
    ]));
    let anon = ok(&d.docker(&["volume", "create"])).trim().to_string();
    std::fs::write(
        d.data_root.join("volumes").join(&anon).join("_data/f"),
        b"12345",
    )
    .unwrap();
    let out = ok(&d.docker(&["volume", "prune", "-f"]));
    assert_eq!(
        out,
        format!("Deleted Volumes:\n{anon}\n\nTotal reclaimed space: 5B\n")
    );
    assert_eq!(ls(&d, &[]), ["labelled", "named", "tmpvol"]);
    // Label filters narrow an --all prune.
    let out = ok(&d.docker(&["volume", "prune", "-a", "-f", "--filter", "label!=keep"]));
    assert_eq!(
        out,
        "Deleted Volumes:\nnamed\n\nTotal reclaimed space: 0B\n"
    );
    let err = fails(&d.docker(&["volume", "prune", "-a", "-f", "--filter", "all=1"]));
    assert!(
        err.contains("conflicting options: cannot specify both --all and --filter all=1"),
        "{err}"
    );
    // Below API 1.42 a prune removes named volumes too (moby adds all=true for old clients).
    let out = d
        .docker_cmd()
        .env("DOCKER_API_VERSION", "1.41")
        .args(["volume", "prune", "-f"])
        .output()
        .unwrap();
    assert_eq!(
        ok(&out),
        "Deleted Volumes:\nlabelled\n\nTotal reclaimed space: 0B\n"
    );
    // Volumes with driver options hold no local data: never pruned, as in moby.
    assert_eq!(ls(&d, &[]), ["tmpvol"]);
    ok(&d.docker(&["volume", "rm", "tmpvol"]));

    // system prune --volumes: anonymous ones only.
    ok(&d.docker(&["volume", "create", "named2"]));
    let anon2 = ok(&d.docker(&["volume", "create"])).trim().to_string();
    let out = ok(&d.docker(&["system", "prune", "--volumes", "-f"]));
    assert!(
        out.contains(&format!("Deleted Volumes:\n{anon2}\n")),
        "{out}"
    );
    assert_eq!(ls(&d, &[]), ["named2"]);
}

#[test]
fn berth_volume_commands_match_docker() {
    require_root!();
    let d = TestDaemon::start();
    assert_eq!(
        ok(&d.berth(&[
            "volume",
            "create",
            "--label",
            "a=b",
            "-o",
            "type=tmpfs",
            "-o",
            "device=tmpfs",
            "bv1"
        ])),
        "bv1\n"
    );
    ok(&d.berth(&["volume", "create", "bv2"]));
    ok(&d.berth(&["volume", "create", "bv10"]));
    let anon = ok(&d.berth(&["volume", "create"])).trim().to_string();
    assert!(is_generated(&anon));
    for args in [
        &["volume", "ls"][..],
        &["volume", "ls", "-q"],
        &[
            "volume",
            "list",
            "--format",
            "{{.Name}}\t{{.Labels}}\t{{.Mountpoint}}",
        ],
        &[
            "volume",
            "ls",
            "--format",
            "table {{.Name}}\t{{.Driver}}\t{{.Scope}}",
        ],
        &["volume", "ls", "--format", "json"],
        &["volume", "ls", "-f", "label=a=b"],
        &["volume", "ls", "-f", "name=bv1", "-q"],
        &["volume", "inspect", "bv1", "bv2"],
        &["volume", "inspect", "-f", "{{.Name}} {{.Options}}", "bv1"],
        &["volume", "inspect", "-f", "{{json .Labels}}", "bv1"],
    ] {
        let want = ok(&d.docker(args));
        let got = ok(&d.berth(args));
        assert_eq!(got, want, "berth {args:?}");
    }
    // Natural order: bv2 before bv10 (the generated name sorts wherever its hex puts it).
    let table = ok(&d.berth(&["volume", "ls"]));
    let mut lines = table.lines();
    assert_eq!(lines.next(), Some("DRIVER    VOLUME NAME"));
    let named: Vec<&str> = lines.filter(|l| !l.contains(&anon)).collect();
    assert_eq!(named, ["local     bv1", "local     bv2", "local     bv10"]);
    assert!(table.contains(&format!("\nlocal     {anon}\n")), "{table}");
    let err = fails(&d.berth(&["volume", "inspect", "nope"]));
    assert_eq!(
        err,
        "Error response from daemon: get nope: no such volume\n"
    );
    let out = d.berth(&["volume", "rm", "bv2", "nope"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "bv2\n");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "Error response from daemon: get nope: no such volume\n"
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(ok(&d.berth(&["volume", "rm", "-f", "nope"])), "nope\n");
    assert_eq!(
        ok(&d.berth(&["volume", "prune", "-f"])),
        format!("Deleted Volumes:\n{anon}\n\nTotal reclaimed space: 0B\n")
    );
    assert_eq!(
        ok(&d.berth(&["volume", "prune", "--all", "--force"])),
        "Deleted Volumes:\nbv10\n\nTotal reclaimed space: 0B\n"
    );
    // "no" at the prompt cancels quietly.
    let out = d
        .berth_cmd()
        .args(["volume", "prune", "-a"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin.take().unwrap().write_all(b"n\n")?;
            c.wait_with_output()
        })
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "WARNING! This will remove all local volumes not used by at least one container.\nAre you sure you want to continue? [y/N] "
    );
    assert_eq!(ok(&d.berth(&["volume", "rm", "bv1"])), "bv1\n");
    assert!(ls(&d, &[]).is_empty());
}

#[test]
fn system_df_counts_volume_sizes_and_users() {
    require_root!();
    let d = TestDaemon::start();
    d.load_busybox();
    ok(&d.docker(&["volume", "create", "dfv"]));
    ok(&d.docker(&[
        "volume",
        "create",
        "-o",
        "type=tmpfs",
        "-o",
        "device=tmpfs",
        "dftmp",
    ]));
    std::fs::write(d.data_root.join("volumes/dfv/_data/f"), vec![7u8; 3000]).unwrap();
    ok(&d.docker(&["create", "-v", "dfv:/d", "busybox", "true"]));
    let (st, body) = http(&d, "GET", "/v1.47/system/df", None);
    assert_eq!(st, 200);
    let df: serde_json::Value = serde_json::from_str(&body).unwrap();
    let vols = df["Volumes"].as_array().unwrap();
    // Volumes with driver options are left out, as in moby.
    assert_eq!(vols.len(), 1, "{vols:?}");
    assert_eq!(vols[0]["Name"], "dfv");
    assert_eq!(
        vols[0]["UsageData"],
        serde_json::json!({"Size": 3000, "RefCount": 1})
    );
    let out = ok(&d.docker(&["system", "df"]));
    let line = out
        .lines()
        .find(|l| l.starts_with("Local Volumes"))
        .unwrap();
    let cols: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(
        cols,
        ["Local", "Volumes", "1", "1", "3kB", "0B", "(0%)"],
        "{out}"
    );
    let out = ok(&d.docker(&["system", "df", "-v"]));
    assert!(
        out.contains("Local Volumes space usage:\n\nVOLUME NAME   LINKS     SIZE\ndfv           1         3kB\n"),
        "{out}"
    );
    assert_eq!(ok(&d.berth(&["system", "df", "-v"])), out);
    d.rm_all();
    let (_, body) = http(&d, "GET", "/v1.47/system/df?type=volume", None);
    let df: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(df["Volumes"][0]["UsageData"]["RefCount"], 0);
    assert!(df["Images"].is_null());
}

#[test]
fn volume_events_are_sent() {
    require_root!();
    let d = TestDaemon::start();
    let since = ok(&d.docker(&["version", "-f", "{{.Server.Version}}"]));
    assert!(!since.is_empty());
    let start = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - 1;
    ok(&d.docker(&["volume", "create", "ev1"]));
    ok(&d.docker(&["volume", "rm", "ev1"]));
    ok(&d.docker(&["volume", "prune", "-f"]));
    // `--until 0s` is "now" to the second: let the events fall behind it.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let out = ok(&d.docker(&[
        "events",
        "--since",
        &start.to_string(),
        "--until",
        "0s",
        "--filter",
        "type=volume",
        "--format",
        "{{.Action}} {{.Actor.ID}} {{.Actor.Attributes.driver}}",
    ]));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[..2],
        ["create ev1 local", "destroy ev1 local"],
        "{out}"
    );
    assert!(lines[2].starts_with("prune  "), "{out}");
    let out = ok(&d.docker(&[
        "events",
        "--since",
        &start.to_string(),
        "--until",
        "0s",
        "--filter",
        "volume=ev1",
        "--format",
        "{{.Type}} {{.Action}}",
    ]));
    assert_eq!(out, "volume create\nvolume destroy\n");
}

#[test]
fn volumes_survive_a_daemon_restart() {
    require_root!();
    let mut d = TestDaemon::start();
    d.load_busybox();
    ok(&d.docker(&["volume", "create", "--label", "x=y", "keep"]));
    ok(&d.docker(&[
        "volume",
        "create",
        "-o",
        "type=tmpfs",
        "-o",
        "device=tmpfs",
        "-o",
        "o=size=2m",
        "tv",
    ]));
    let anon = ok(&d.docker(&["volume", "create"])).trim().to_string();
    ok(&d.docker(&[
        "run",
        "--rm",
        "-v",
        "keep:/k",
        "busybox",
        "sh",
        "-c",
        "echo kept > /k/f",
    ]));
    // A running container holds the tmpfs volume mounted across the restart.
    ok(&d.docker(&[
        "run",
        "-d",
        "--name",
        "holder",
        "-v",
        "tv:/t",
        "busybox",
        "sh",
        "-c",
        "echo in-tmpfs > /t/f; sleep 300",
    ]));
    let tv_data = d.data_root.join("volumes/tv/_data");
    let before = inspect_json(&d, "keep");
    let wait_file = || {
        for _ in 0..100 {
            if tv_data.join("f").exists() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    };
    wait_file();
    assert!(is_mounted(&tv_data));
    let data_root = d.data_root.clone();
    d.stop();
    assert!(
        is_mounted(&tv_data),
        "the tmpfs volume stays mounted without berthd"
    );

    // Same socket, data root and exec root: the running container is found again.
    d.restart();
    let d2 = &d;
    assert_eq!(inspect_json(d2, "keep"), before);
    assert_eq!(ls(d2, &[]), [anon.as_str(), "keep", "tv"]);
    assert_eq!(
        ok(&d2.docker(&["run", "--rm", "-v", "keep:/k", "busybox", "cat", "/k/f"])),
        "kept\n"
    );
    assert_eq!(
        ok(&d2.docker(&["exec", "holder", "cat", "/t/f"])),
        "in-tmpfs\n"
    );
    // Still in use after the restart; released (and unmounted) once the container goes.
    let err = fails(&d2.docker(&["volume", "rm", "tv"]));
    assert!(err.contains("remove tv: volume is in use"), "{err}");
    ok(&d2.docker(&["rm", "-f", "holder"]));
    assert!(!is_mounted(&tv_data));
    // The anonymous one is still anonymous.
    assert_eq!(
        ok(&d2.docker(&["volume", "prune", "-f"])),
        format!("Deleted Volumes:\n{anon}\n\nTotal reclaimed space: 0B\n")
    );
    assert_eq!(
        ok(&d2.docker(&["volume", "rm", "keep", "tv"])),
        "keep\ntv\n"
    );
    assert!(no_mounts_under(&data_root));
}
