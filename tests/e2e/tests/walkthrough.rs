//! The issue's seed walk-throughs with the real images in ../shared/images (skipped when that
//! folder is absent, as on a bare CI machine): `run -it debian bash` at a terminal, and
//! `run --name web1 -d nginx` then `logs web1`, `top` and `stop`, through the docker CLI and through `berth`.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::time::{Duration, Instant};

use test_support::daemon::{TestDaemon, bin_path, docker_cli, ok};
use test_support::fixtures;
use test_support::pty::PtySession;
use test_support::require_root;

const T: Duration = Duration::from_secs(20);

#[test]
fn debian_bash_interactive() {
    require_root!();
    let Some(archive) = fixtures::shared_image("debian-bookworm-slim.tar.gz") else {
        eprintln!("skipped: no debian image in ../shared/images");
        return;
    };
    let d = TestDaemon::start();
    ok(&d.docker(&["load", "-q", "-i", archive.to_str().unwrap()]));
    let image = ok(&d.docker(&["images", "--format", "{{.Repository}}:{{.Tag}}"]));
    let image = image
        .lines()
        .find(|l| l.contains("debian"))
        .unwrap()
        .to_string();
    for (client, name) in [
        (docker_cli().display().to_string(), "deb-docker"),
        (bin_path("berth").display().to_string(), "deb-berth"),
    ] {
        let mut s = PtySession::spawn(
            &format!("{client} run -it --rm --name {name} --network none {image} bash"),
            &d.client_env(),
        );
        assert!(s.expect("# ", T), "no bash prompt:\n{}", s.output());
        s.send(b"cat /etc/os-release | grep ^ID=; echo \"cols=$(tput cols 2>/dev/null)\"\r");
        assert!(s.expect("ID=debian", T), "{}", s.output());
        s.send(b"exit 5\r");
        assert_eq!(s.wait(T), Some(5), "{}", s.output());
    }
}

#[test]
fn nginx_detached_then_logs() {
    require_root!();
    let Some(archive) = fixtures::shared_image("nginx.tar.gz") else {
        eprintln!("skipped: no nginx image in ../shared/images");
        return;
    };
    let d = TestDaemon::start();
    ok(&d.docker(&["load", "-q", "-i", archive.to_str().unwrap()]));
    let id = ok(&d.docker(&["run", "--name", "web1", "-d", "--network", "none", "nginx"]));
    assert_eq!(id.trim().len(), 64);
    // nginx's master and worker processes run in the container.
    let deadline = Instant::now() + T;
    let mut top = String::new();
    while Instant::now() < deadline && !top.contains("nginx: worker process") {
        top = ok(&d.docker(&["top", "web1"]));
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(top.contains("nginx: master process"), "{top}");
    assert!(top.contains("nginx: worker process"), "{top}");
    // This image's nginx logs nothing at start (as under Docker); `logs` answers, empty.
    let out = d.docker(&["logs", "web1"]);
    assert!(out.status.success());
    let ps = ok(&d.docker(&["ps", "--format", "{{.Names}} {{.Status}} {{.Command}}"]));
    assert!(ps.contains("web1 Up"), "{ps}");
    assert!(ps.contains("\"nginx -g 'daemon of…\""), "{ps}");
    ok(&d.docker(&["stop", "web1"]));
    let st = ok(&d.docker(&[
        "inspect",
        "-f",
        "{{.State.Status}} {{.State.ExitCode}}",
        "web1",
    ]));
    assert_eq!(st.trim(), "exited 0");

    // With notices on (error.log is /dev/stderr in the image), logs carry nginx's lines, on
    // stderr only, through both CLIs.
    ok(&d.docker(&[
        "run",
        "--name",
        "web2",
        "-d",
        "--network",
        "none",
        "nginx",
        "nginx",
        "-g",
        "daemon off; error_log stderr notice;",
    ]));
    let deadline = Instant::now() + T;
    let mut logs = d.docker(&["logs", "web2"]);
    while Instant::now() < deadline
        && !String::from_utf8_lossy(&logs.stderr).contains("start worker processes")
    {
        std::thread::sleep(Duration::from_millis(100));
        logs = d.docker(&["logs", "web2"]);
    }
    assert!(
        String::from_utf8_lossy(&logs.stderr).contains("start worker processes"),
        "{logs:?}"
    );
    assert!(logs.stdout.is_empty(), "{logs:?}");
    let berth_logs = d.berth(&["logs", "web2"]);
    assert!(String::from_utf8_lossy(&berth_logs.stderr).contains("[notice]"));
    assert!(berth_logs.stdout.is_empty());
    ok(&d.docker(&["rm", "-f", "web2"]));
    ok(&d.docker(&["rm", "web1"]));
}

/// `--privileged` gets every capability berthd holds and no seccomp profile; a plain container
/// gets Docker's 14 capabilities and the default profile (SEC baseline).
#[test]
fn privileged_and_default_profiles() {
    require_root!();
    let d = TestDaemon::start();
    d.load_busybox();
    let status = |extra: &[&str]| {
        let mut args = vec!["run", "--rm", "--network", "none"];
        args.extend_from_slice(extra);
        args.extend([
            "busybox",
            "grep",
            "-E",
            "^(Seccomp|CapEff):",
            "/proc/self/status",
        ]);
        ok(&d.docker(&args))
    };
    let plain = status(&[]);
    assert!(plain.contains("CapEff:\t00000000a80425fb"), "{plain}");
    assert!(plain.contains("Seccomp:\t2"), "{plain}");
    let held = std::fs::read_to_string("/proc/self/status").unwrap();
    let bnd = held
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .unwrap()
        .trim()
        .to_string();
    // The profile filters for real (it is loaded precompiled): `unshare` is refused under it,
    // where the host allows it unconfined.
    let unshare = |extra: &[&str]| {
        let mut args = vec!["run", "--rm", "--network", "none"];
        args.extend_from_slice(extra);
        args.extend(["busybox", "unshare", "-U", "true"]);
        d.docker(&args)
    };
    if unshare(&["--security-opt", "seccomp=unconfined"])
        .status
        .success()
    {
        let out = unshare(&[]);
        assert!(!out.status.success());
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("Operation not permitted"),
            "{out:?}"
        );
    }
    let privileged = status(&["--privileged"]);
    assert!(
        privileged.contains(&format!("CapEff:\t{bnd}")),
        "{privileged}"
    );
    assert!(privileged.contains("Seccomp:\t0"), "{privileged}");
}
