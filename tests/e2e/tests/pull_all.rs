//! `docker pull -a` / `berth pull -a` through berthd: two tags (different images) pushed to
//! berth's own registry server, removed, pulled back with every tag, both run; moby's lines
//! (each tag's `Pulling from` and `Digest:`, one final `Status:` for the repository).

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use test_support::daemon::{TestDaemon, fails, ok};
use test_support::registry::Registry;
use test_support::require_root;

/// The lines of a pull -a's output starting with `prefix`.
fn lines_with<'a>(out: &'a str, prefix: &str) -> Vec<&'a str> {
    out.lines().filter(|l| l.starts_with(prefix)).collect()
}

fn check_all_tags_output(out: &str, name: &str, status: &str) {
    assert!(out.contains("v1: Pulling from t/bb"), "{out}");
    assert!(out.contains("v2: Pulling from t/bb"), "{out}");
    assert_eq!(lines_with(out, "Digest: sha256:").len(), 2, "{out}");
    assert_eq!(
        lines_with(out, "Status: "),
        [format!("Status: {status} for {name}").as_str()],
        "one Status line for the repository: {out}"
    );
    assert_eq!(out.lines().last(), Some(name), "{out}");
}

#[test]
fn pull_all_tags() {
    require_root!();
    let reg = Registry::berth();
    let d = TestDaemon::start();
    d.load_busybox();
    let name = format!("{}/t/bb", reg.addr());
    let (v1, v2) = (format!("{name}:v1"), format!("{name}:v2"));
    ok(&d.docker(&["tag", "busybox:latest", &v1]));
    ok(&d.docker(&["run", "--name", "mk", "busybox", "touch", "/marker"]));
    ok(&d.docker(&["commit", "mk", &v2]));
    ok(&d.docker(&["rm", "mk"]));
    ok(&d.docker(&["push", &v1]));
    ok(&d.docker(&["push", &v2]));
    ok(&d.docker(&["rmi", &v1, &v2]));

    let out = ok(&d.docker(&["pull", "-a", &name]));
    eprintln!("docker pull -a:\n{out}");
    check_all_tags_output(&out, &name, "Downloaded newer image");
    assert!(out.contains("Pull complete"), "v2's own layer: {out}");
    assert!(!out.contains("Using default tag"), "{out}");
    let tags = ok(&d.docker(&["image", "ls", "--format", "{{.Tag}}", &name]));
    let mut tags: Vec<&str> = tags.lines().collect();
    tags.sort_unstable();
    assert_eq!(tags, ["v1", "v2"]);
    assert_eq!(ok(&d.docker(&["run", "--rm", &v1, "echo", "hi"])), "hi\n");
    ok(&d.docker(&["run", "--rm", &v2, "ls", "/marker"]));

    // Again: nothing new.
    let out = ok(&d.docker(&["pull", "--all-tags", &name]));
    check_all_tags_output(&out, &name, "Image is up to date");

    // berth pull -a, after removing both.
    ok(&d.docker(&["rmi", &v1, &v2]));
    let out = ok(&d.berth(&["pull", "-a", &name]));
    eprintln!("berth pull -a:\n{out}");
    check_all_tags_output(&out, &name, "Downloaded newer image");
    assert_eq!(
        ok(&d.berth(&["run", "--rm", &v2, "ls", "/marker"])),
        "/marker\n"
    );
    let err = fails(&d.berth(&["pull", "-a", &v1]));
    assert!(
        err.contains("tag can't be used with --all-tags/-a"),
        "{err}"
    );

    // A repository the registry does not know.
    let err = fails(&d.docker(&["pull", "-a", &format!("{}/t/none", reg.addr())]));
    assert!(
        err.contains("repository does not exist or may require 'docker login'"),
        "{err}"
    );
    d.rm_all();
}
