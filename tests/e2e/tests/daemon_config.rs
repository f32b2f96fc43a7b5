//! End-to-end tests of berthd's configuration: `--validate`, SIGHUP reloading daemon.json
//! (labels, debug, registry mirrors, insecure registries, the `daemon reload` event; a broken
//! file changes nothing) and the default json-file log options new containers get.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use test_support::daemon::{TestDaemon, bin_path, ok, ping};
use test_support::require_root;

fn validate(args: &[&str]) -> Output {
    Command::new(bin_path("berthd"))
        .arg("--validate")
        .args(args)
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn validate_good_and_bad() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("daemon.json");
    let sock = dir.path().join("never.sock");
    let root = dir.path().join("never-root");
    let host = format!("unix://{}", sock.display());
    let conf = file.to_str().unwrap();
    std::fs::write(
        &file,
        format!(
            r#"{{"data-root":"{}","labels":["a=b"],"debug":true,"log-opts":{{"max-size":"10m","max-file":"3"}},
               "registry-mirrors":["https://mirror.example.com"],"insecure-registries":["reg.example.com:5000"],
               "max-concurrent-downloads":4,"max-concurrent-uploads":2,"bridge":"none"}}"#,
            root.display()
        ),
    )
    .unwrap();
    let out = validate(&["--config-file", conf, "-H", &host]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stderr(&out), "configuration OK\n");
    // Nothing was bound or created.
    assert!(!sock.exists());
    assert!(!root.exists());

    // An unknown key.
    std::fs::write(&file, r#"{"labels":[],"storage-driver":"vfs"}"#).unwrap();
    let out = validate(&["--config-file", conf]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(
            "the following directives don't match any configuration option: storage-driver"
        ),
        "{}",
        stderr(&out)
    );
    // A directive both as a flag and in the file.
    std::fs::write(&file, r#"{"labels":["a=b"]}"#).unwrap();
    let out = validate(&["--config-file", conf, "--label", "c=d"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(
            "the following directives are specified both as a flag and in the configuration file: labels: (from flag: [c=d], from file: [a=b])"
        ),
        "{}",
        stderr(&out)
    );
    // A bad value and broken JSON.
    std::fs::write(&file, r#"{"log-opts":{"compress":"true"}}"#).unwrap();
    let out = validate(&["--config-file", conf]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("unknown log opt 'compress'"),
        "{}",
        stderr(&out)
    );
    std::fs::write(&file, "{\"debug\": tru").unwrap();
    let out = validate(&["--config-file", conf]);
    assert_eq!(out.status.code(), Some(1));
    assert!(!stderr(&out).contains("configuration OK"));
}

fn info(d: &TestDaemon, format: &str) -> String {
    ok(&d.docker(&["info", "--format", format]))
        .trim()
        .to_string()
}

fn sighup(d: &TestDaemon) {
    let pid = d.pid().unwrap().to_string();
    let st = Command::new("kill").args(["-HUP", &pid]).status().unwrap();
    assert!(st.success());
}

/// Waits until `docker info --format` shows `want`.
fn wait_info(d: &TestDaemon, format: &str, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got = info(d, format);
        if got == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{format}: {got} (wanted {want})\n{}",
            d.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn sighup_reloads_daemon_json() {
    require_root!();
    let d = TestDaemon::start_with(&["--label", "from=flag"]);
    let file = d.dir().join("daemon.json");
    assert_eq!(info(&d, "{{json .Labels}}"), r#"["from=flag"]"#);
    assert_eq!(info(&d, "{{.Debug}}"), "false");
    let since = now().to_string();

    std::fs::write(
        &file,
        r#"{"debug":true,"registry-mirrors":["https://mirror.example.com"],
            "insecure-registries":["reg.example.com:5000"],"max-concurrent-downloads":5}"#,
    )
    .unwrap();
    sighup(&d);
    wait_info(&d, "{{.Debug}}", "true");
    assert_eq!(
        info(&d, "{{json .RegistryConfig.Mirrors}}"),
        r#"["https://mirror.example.com/"]"#
    );
    assert!(
        info(&d, "{{json .RegistryConfig.IndexConfigs}}").contains(r#""reg.example.com:5000""#)
    );
    // Labels were the flag's; the file named none, so they stay.
    assert_eq!(info(&d, "{{json .Labels}}"), r#"["from=flag"]"#);
    // `docker info` prints the mirrors and insecure registries as Docker does.
    let text = ok(&d.docker(&["info"]));
    assert!(text.contains("Debug Mode: true"), "{text}");
    assert!(text.contains("https://mirror.example.com/"), "{text}");
    assert!(text.contains("reg.example.com:5000"), "{text}");

    // The reload event, with moby's attributes.
    let until = (now() + 1).to_string();
    let events = ok(&d.docker(&[
        "events",
        "--since",
        &since,
        "--until",
        &until,
        "--filter",
        "type=daemon",
        "--format",
        "{{.Type}} {{.Action}} {{.Actor.ID}} {{json .Actor.Attributes}}",
    ]));
    let id = info(&d, "{{.ID}}");
    let line = events
        .lines()
        .find(|l| l.starts_with("daemon reload "))
        .unwrap_or_else(|| panic!("no reload event: {events}"));
    assert!(line.starts_with(&format!("daemon reload {id} ")), "{line}");
    let attrs: serde_json::Value =
        serde_json::from_str(line.splitn(4, ' ').nth(3).unwrap()).unwrap();
    assert_eq!(attrs["debug"], "true");
    assert_eq!(attrs["max-concurrent-downloads"], "5");
    assert_eq!(
        attrs["registry-mirrors"],
        r#"["https://mirror.example.com/"]"#
    );
    assert!(attrs["name"].as_str().is_some_and(|n| !n.is_empty()));
    // `docker events` prints it the way it prints dockerd's.
    let plain = ok(&d.docker(&[
        "events",
        "--since",
        &since,
        "--until",
        &until,
        "--filter",
        "type=daemon",
    ]));
    assert!(plain.contains(&format!("daemon reload {id} (")), "{plain}");
}

#[test]
fn sighup_reloads_labels_and_survives_a_broken_file() {
    require_root!();
    let d = TestDaemon::start();
    let file = d.dir().join("daemon.json");
    assert_eq!(info(&d, "{{json .Labels}}"), "[]");
    std::fs::write(&file, r#"{"labels":["env=prod","team=core"]}"#).unwrap();
    sighup(&d);
    wait_info(&d, "{{json .Labels}}", r#"["env=prod","team=core"]"#);

    // A broken file: logged, nothing changes, the daemon keeps serving.
    std::fs::write(&file, r#"{"labels":["env=dev"],"debug":"#).unwrap();
    sighup(&d);
    wait_for_log(&d, "configuration reload failed");
    assert!(ping(&d.socket));
    assert_eq!(info(&d, "{{json .Labels}}"), r#"["env=prod","team=core"]"#);
    // An invalid (but well-formed) file: the same.
    std::fs::write(&file, r#"{"labels":["env=dev"],"live-restore":true}"#).unwrap();
    sighup(&d);
    wait_for_log_count(&d, "configuration reload failed", 2);
    assert_eq!(info(&d, "{{json .Labels}}"), r#"["env=prod","team=core"]"#);
    // A key that needs a restart is logged as such; the rest applies.
    std::fs::write(
        &file,
        r#"{"labels":["env=dev"],"data-root":"/tmp/berth-never-used"}"#,
    )
    .unwrap();
    // data-root is also a flag of the test daemon: that is a conflict, refused as a whole.
    sighup(&d);
    wait_for_log_count(&d, "configuration reload failed", 3);
    assert_eq!(info(&d, "{{json .Labels}}"), r#"["env=prod","team=core"]"#);
    std::fs::write(&file, r#"{"labels":["env=dev"],"mtu":1400}"#).unwrap();
    sighup(&d);
    wait_info(&d, "{{json .Labels}}", r#"["env=dev"]"#);
    wait_for_log(&d, "takes effect only after a restart");
    assert!(ping(&d.socket));
}

fn wait_for_log(d: &TestDaemon, text: &str) {
    wait_for_log_count(d, text, 1);
}

fn wait_for_log_count(d: &TestDaemon, text: &str, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while d.log().matches(text).count() < n {
        assert!(
            Instant::now() < deadline,
            "no {text:?} x{n} in:\n{}",
            d.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn log_config(d: &TestDaemon, name: &str) -> serde_json::Value {
    let s = ok(&d.docker(&["inspect", "-f", "{{json .HostConfig.LogConfig}}", name]));
    serde_json::from_str(s.trim()).unwrap()
}

#[test]
fn default_log_opts_apply_to_new_containers() {
    require_root!();
    let d = TestDaemon::start_with(&["--log-opt", "max-size=1k", "--log-opt", "max-file=2"]);
    d.load_busybox();
    ok(&d.docker(&["create", "--name", "plain", "busybox", "true"]));
    let c = log_config(&d, "plain");
    assert_eq!(c["Type"], "json-file");
    assert_eq!(c["Config"]["max-size"], "1k");
    assert_eq!(c["Config"]["max-file"], "2");
    ok(&d.docker(&[
        "create",
        "--name",
        "own",
        "--log-opt",
        "max-size=5k",
        "busybox",
        "true",
    ]));
    let c = log_config(&d, "own");
    assert_eq!(c["Config"]["max-size"], "5k");
    assert_eq!(c["Config"]["max-file"], "2");
    // The options apply: a chatty container's log is rotated at 1k.
    ok(&d.docker(&[
        "run",
        "--name",
        "chatty",
        "busybox",
        "sh",
        "-c",
        "i=0; while [ $i -lt 200 ]; do echo line-$i-xxxxxxxxxxxxxxxxxxxxxxxx; i=$((i+1)); done",
    ]));
    let path = ok(&d.docker(&["inspect", "-f", "{{.LogPath}}", "chatty"]));
    let path = Path::new(path.trim());
    let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    assert!(size <= 2048, "log is {size} bytes");
    d.rm_all();
}
