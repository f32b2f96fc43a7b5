//! berthd as a systemd service: the readiness protocol (`Type=notify`) against a real berthd,
//! and `contrib/berthd.service` checked for the settings containers depend on (and by
//! `systemd-analyze verify` where it is installed).

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use test_support::daemon::{TestDaemon, bin_path, ok, ping};
use test_support::require_root;

fn unit_file() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../contrib/berthd.service")
}

#[test]
fn ready_once_listening_and_stopping_on_sigterm() {
    require_root!();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notify.sock");
    let notify = UnixDatagram::bind(&path).unwrap();
    notify
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut d = TestDaemon::start_with_env(&[], &[("NOTIFY_SOCKET", path.to_str().unwrap())]);
    let mut buf = [0u8; 128];
    let n = notify.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"READY=1");
    // Ready means the API answers.
    assert!(ping(&PathBuf::from(d.host().trim_start_matches("unix://"))));
    ok(&d.docker(&["version"]));
    let status = d.stop().unwrap();
    assert!(status.success(), "{status}");
    let n = notify.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"STOPPING=1");
}

#[test]
fn unit_file_has_the_service_settings_and_verifies() {
    let text = std::fs::read_to_string(unit_file()).unwrap();
    let settings: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#') && l.contains('='))
        .collect();
    for needed in [
        "Type=notify",
        "KillMode=process",
        "Delegate=yes",
        "ExecReload=/bin/kill -s HUP $MAINPID",
        "Restart=always",
        "TasksMax=infinity",
        "ExecStart=/usr/local/bin/berthd",
        "WantedBy=multi-user.target",
    ] {
        assert!(settings.contains(&needed), "{needed} missing:\n{text}");
    }
    // Flags belong in daemon.json: ExecStart passes none (a flag and a key would conflict).
    let exec = settings
        .iter()
        .find(|l| l.starts_with("ExecStart="))
        .unwrap();
    assert_eq!(*exec, "ExecStart=/usr/local/bin/berthd");

    let Ok(out) = Command::new("systemd-analyze").arg("--version").output() else {
        eprintln!("systemd-analyze not installed: syntax not verified");
        return;
    };
    assert!(out.status.success());
    // Verify a copy that starts the berthd just built (verify checks the binary exists).
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("berthd.service");
    let berthd = bin_path("berthd");
    std::fs::write(
        &copy,
        text.replace("/usr/local/bin/berthd", berthd.to_str().unwrap()),
    )
    .unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&copy)
        .output()
        .unwrap();
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
