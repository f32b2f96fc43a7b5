//! Interactive sessions under a real pty: `run -it`, detach with ctrl-p ctrl-q, `attach` back,
//! through the docker CLI and through `berth`, as a user at a terminal would.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::time::Duration;

use test_support::daemon::{TestDaemon, bin_path, docker_cli, ok};
use test_support::fixtures;
use test_support::pty::PtySession;
use test_support::require_root;

const T: Duration = Duration::from_secs(15);

fn state(d: &TestDaemon, name: &str) -> String {
    ok(&d.docker(&[
        "inspect",
        "-f",
        "{{.State.Status}} {{.State.ExitCode}}",
        name,
    ]))
    .trim()
    .to_string()
}

/// `run -it` a shell, use it, detach, attach again, exit: with `client` (a CLI binary path).
fn walk_through(d: &TestDaemon, client: &str, name: &str) {
    let mut s = PtySession::spawn(
        &format!("{client} run -it --name {name} --network none busybox sh"),
        &d.client_env(),
    );
    assert!(s.expect("/ # ", T), "no prompt:\n{}", s.output());
    s.send(b"echo hel''lo-$((6*7))\r");
    assert!(s.expect("hello-42", T), "no output:\n{}", s.output());
    s.send(b"tty\r");
    assert!(s.expect("/dev/pts/", T), "not a tty:\n{}", s.output());
    // ctrl-p ctrl-q: the client detaches and exits 0; the container keeps running.
    s.send(b"\x10\x11");
    assert_eq!(s.wait(T), Some(0), "detach:\n{}", s.output());
    assert_eq!(state(d, name), "running 0");

    let mut a = PtySession::spawn(&format!("{client} attach {name}"), &d.client_env());
    std::thread::sleep(Duration::from_millis(300));
    a.send(b"echo back-$((40+2))\r");
    assert!(a.expect("back-42", T), "attach output:\n{}", a.output());
    a.send(b"exit 3\r");
    assert_eq!(a.wait(T), Some(3), "attach exit:\n{}", a.output());
    assert_eq!(state(d, name), "exited 3");
    ok(&d.docker(&["rm", name]));
}

#[test]
fn run_it_detach_and_attach_docker_cli() {
    require_root!();
    let d = TestDaemon::start();
    d.load_busybox();
    walk_through(&d, docker_cli().to_str().unwrap(), "it-docker");
}

#[test]
fn run_it_detach_and_attach_berth() {
    require_root!();
    let d = TestDaemon::start();
    ok(&d.berth(&[
        "load",
        "-i",
        fixtures::busybox_archive(d.dir()).to_str().unwrap(),
    ]));
    walk_through(&d, bin_path("berth").to_str().unwrap(), "it-berth");
}

/// `run -it` where the process writes before anything is typed, without a newline: the
/// terminal must show it at once (a prompt is the common case).
#[test]
fn run_it_shows_partial_lines() {
    require_root!();
    let d = TestDaemon::start();
    d.load_busybox();
    let mut s = PtySession::spawn(
        &format!(
            "{} run -it --rm --network none busybox sh -c 'printf \"name? \"; read x; echo \"hi $x\"'",
            docker_cli().display()
        ),
        &d.client_env(),
    );
    assert!(s.expect("name? ", T), "no partial line:\n{}", s.output());
    s.send(b"bob\r");
    assert!(s.expect("hi bob", T), "{}", s.output());
    assert_eq!(s.wait(T), Some(0), "{}", s.output());
}
