//! `docker push` / `berth push` through berthd to real registries: berth's own
//! (`berthd registry serve`, with and without `--htpasswd`), Debian's `docker-registry`, and
//! (when the shared archive is there) `registry:2` running as a container in berthd, the
//! issue's seed scenario. Each pushed image is removed, pulled back and run.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use test_support::daemon::{TestDaemon, fails, ok};
use test_support::registry::{Registry, free_port, pushed_digest, wait_port};
use test_support::require_root;

/// The seed scenario against a registry at `addr`: tag, push, push again, rmi, pull, run.
fn push_pull_run(d: &TestDaemon, addr: &str) {
    let name = format!("{addr}/test");
    ok(&d.docker(&["tag", "busybox", &name]));
    let out = ok(&d.docker(&["push", &name]));
    eprintln!("first push:\n{out}");
    assert!(
        out.contains(&format!("The push refers to repository [{name}]")),
        "{out}"
    );
    assert!(out.contains(": Pushed"), "{out}");
    let digest = pushed_digest(&out, "latest");
    // As moby, the pushed image carries the repository digest.
    let repo_digests = ok(&d.docker(&["image", "inspect", "-f", "{{.RepoDigests}}", &name]));
    assert!(
        repo_digests.contains(&format!("{name}@{digest}")),
        "{repo_digests}"
    );

    // Again: every layer is there, same manifest.
    let out = ok(&d.docker(&["push", &name]));
    eprintln!("second push:\n{out}");
    assert!(out.contains(": Layer already exists"), "{out}");
    assert!(!out.contains(": Pushed"), "{out}");
    assert_eq!(pushed_digest(&out, "latest"), digest);

    // Removed, pulled back by tag, run.
    ok(&d.docker(&["rmi", &name]));
    let out = ok(&d.docker(&["pull", &name]));
    assert!(out.contains(&format!("Digest: {digest}")), "{out}");
    let hi = ok(&d.docker(&["run", "--rm", &name, "echo", "hi"]));
    assert_eq!(hi, "hi\n");

    // berth push: another tag of the same image, docker's lines.
    let other = format!("{name}:b");
    ok(&d.berth(&["tag", "busybox", &other]));
    let out = ok(&d.berth(&["push", &other]));
    assert!(
        out.contains(&format!("The push refers to repository [{name}]")),
        "{out}"
    );
    assert!(out.contains(": Layer already exists"), "{out}");
    assert_eq!(pushed_digest(&out, "b"), digest);
    let out = ok(&d.berth(&["image", "push", "-q", &other]));
    assert_eq!(out, format!("{other}\n"));
    ok(&d.berth(&["rmi", &other]));
    let out = ok(&d.berth(&["pull", &other]));
    assert!(out.contains(&format!("Digest: {digest}")), "{out}");
    let hi = ok(&d.berth(&["run", "--rm", &other, "echo", "hi"]));
    assert_eq!(hi, "hi\n");
}

#[test]
fn push_to_berths_registry() {
    require_root!();
    let reg = Registry::berth();
    let d = TestDaemon::start();
    d.load_busybox();
    push_pull_run(&d, &reg.addr());

    // An image that is not here: Docker's 404 text, before anything is sent.
    let missing = format!("{}/nope", reg.addr());
    let err = fails(&d.docker(&["push", &missing]));
    assert!(
        err.contains(&format!(
            "An image does not exist locally with the tag: {missing}"
        )),
        "{err}"
    );
    let err = fails(&d.berth(&["push", &missing]));
    assert!(
        err.contains("An image does not exist locally with the tag"),
        "{err}"
    );
    d.rm_all();
}

#[test]
fn push_to_debian_registry() {
    require_root!();
    let Some(reg) = Registry::debian() else {
        return;
    };
    let d = TestDaemon::start();
    d.load_busybox();
    push_pull_run(&d, &reg.addr());
    d.rm_all();
}

#[test]
fn push_with_htpasswd_needs_credentials() {
    require_root!();
    // bcrypt of "pw" (cost 4).
    let hash = "$2b$04$2smNtRMIIg/z1bNXjOmoB.GBRDGOmxBGFDyQIulSwkDgVvRFxHdCi";
    let reg = Registry::berth_with()
        .htpasswd(&format!("tester:{hash}\n"))
        .start();
    let d = TestDaemon::start();
    d.load_busybox();
    let name = format!("{}/auth/bb", reg.addr());
    ok(&d.docker(&["tag", "busybox", &name]));
    let err = fails(&d.docker(&["push", &name]));
    assert!(err.contains("no basic auth credentials"), "{err}");
    let err = fails(&d.berth(&["push", &name]));
    assert!(err.contains("no basic auth credentials"), "{err}");

    // The docker CLI sends the credentials of its config.json as X-Registry-Auth.
    let config_dir = d.dir().join("docker-config");
    std::fs::create_dir_all(&config_dir).unwrap();
    let write_auth = |b64: &str| {
        std::fs::write(
            config_dir.join("config.json"),
            format!(r#"{{"auths":{{"{}":{{"auth":"{b64}"}}}}}}"#, reg.addr()),
        )
        .unwrap();
    };
    write_auth("dGVzdGVyOm5vcGU="); // tester:nope
    let err = fails(&d.docker(&["push", &name]));
    assert!(err.contains("unauthorized"), "{err}");
    write_auth("dGVzdGVyOnB3"); // tester:pw
    let out = ok(&d.docker(&["push", &name]));
    assert!(out.contains(": Pushed"), "{out}");
    pushed_digest(&out, "latest");
    ok(&d.docker(&["rmi", &name]));
    ok(&d.docker(&["pull", &name]));
    let hi = ok(&d.docker(&["run", "--rm", &name, "echo", "hi"]));
    assert_eq!(hi, "hi\n");
    d.rm_all();
}

/// The issue's literal seed: `registry:2` as a container in berthd, published on a port.
#[test]
fn push_to_registry_2_container() {
    require_root!();
    let Some(archive) = test_support::fixtures::shared_image("registry-2.tar.gz") else {
        eprintln!("skipping: registry-2 archive not present");
        return;
    };
    let d = TestDaemon::start();
    d.load_busybox();
    ok(&d.docker(&["load", "-i", &archive.to_string_lossy()]));
    let port = free_port();
    ok(&d.docker(&[
        "run",
        "-d",
        "--name",
        "reg",
        "-p",
        &format!("{port}:5000"),
        "registry:2",
    ]));
    wait_port(port);
    // The port answers as soon as the proxy is up; wait for the registry itself.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = Command::new("curl")
            .args(["-sf", &format!("http://127.0.0.1:{port}/v2/")])
            .output()
            .unwrap();
        if out.status.success() {
            break;
        }
        assert!(Instant::now() < deadline, "registry:2 did not answer");
        std::thread::sleep(Duration::from_millis(100));
    }
    push_pull_run(&d, &format!("localhost:{port}"));
    d.rm_all();
}

/// Runs `cmd` with `input` on its stdin.
fn with_stdin(mut cmd: Command, input: &str) -> std::process::Output {
    use std::io::Write;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn login_then_push_and_pull() {
    require_root!();
    let hash = "$2b$04$2smNtRMIIg/z1bNXjOmoB.GBRDGOmxBGFDyQIulSwkDgVvRFxHdCi"; // "pw"
    let reg = Registry::berth_with()
        .htpasswd(&format!("tester:{hash}\n"))
        .start();
    let d = TestDaemon::start();
    d.load_busybox();
    let addr = reg.addr();
    let config = d.dir().join("docker-config").join("config.json");

    // docker login: wrong password → moby's 401 text; right one → stored by the CLI.
    let mut cmd = d.docker_cmd();
    cmd.args(["login", "-u", "tester", "--password-stdin", &addr]);
    let err = fails(&with_stdin(cmd, "nope\n"));
    assert!(
        err.contains(&format!(
            "login attempt to http://{addr}/v2/ failed with status: 401 Unauthorized"
        )),
        "{err}"
    );
    let mut cmd = d.docker_cmd();
    cmd.args(["login", "-u", "tester", "--password-stdin", &addr]);
    let out = ok(&with_stdin(cmd, "pw\n"));
    assert!(out.contains("Login Succeeded"), "{out}");
    let name = format!("{addr}/auth/bb");
    ok(&d.docker(&["tag", "busybox", &name]));
    let out = ok(&d.docker(&["push", &name]));
    assert!(out.contains(": Pushed"), "{out}");
    ok(&d.docker(&["logout", &addr]));
    let err = fails(&d.docker(&["push", &name]));
    assert!(err.contains("no basic auth credentials"), "{err}");

    // berth login writes the same config.json; berth push and pull send it.
    let mut cmd = d.berth_cmd();
    cmd.args(["login", "-u", "tester", "--password-stdin", &addr]);
    let err = fails(&with_stdin(cmd, "nope\n"));
    assert!(err.contains("401 Unauthorized"), "{err}");
    let mut cmd = d.berth_cmd();
    cmd.args(["login", "-u", "tester", "--password-stdin", &addr]);
    let out = ok(&with_stdin(cmd, "pw\n"));
    assert_eq!(out, "Login Succeeded\n");
    let cfg: serde_json::Value = serde_json::from_slice(&std::fs::read(&config).unwrap()).unwrap();
    assert_eq!(cfg["auths"][&addr]["auth"], "dGVzdGVyOnB3", "{cfg}");
    let out = ok(&d.berth(&["push", &name]));
    assert!(out.contains(": Layer already exists"), "{out}");
    ok(&d.berth(&["rmi", &name]));
    // (The pull needs the credentials too: the registry answers nothing without them.)
    let out = ok(&d.berth(&["pull", &name]));
    assert!(out.contains("Status: Downloaded newer image for"), "{out}");
    // The docker CLI reads what berth stored.
    ok(&d.docker(&["rmi", &name]));
    ok(&d.docker(&["pull", &name]));
    let hi = ok(&d.berth(&["run", "--rm", &name, "echo", "hi"]));
    assert_eq!(hi, "hi\n");
    let out = ok(&d.berth(&["logout", &addr]));
    assert_eq!(out, format!("Removing login credentials for {addr}\n"));
    let err = fails(&d.berth(&["push", &name]));
    assert!(err.contains("no basic auth credentials"), "{err}");
    let out = ok(&d.berth(&["logout", &addr]));
    assert_eq!(out, format!("Not logged in to {addr}\n"));
    d.rm_all();
}
