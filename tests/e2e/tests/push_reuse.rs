//! Pushes through berthd that reuse what was pulled, via the docker CLI: an image pulled from
//! one repository and pushed to another of the same registry mounts its layers (`Mounted
//! from …`, no layer bytes sent), also after a berthd restart between pull and push (the
//! distribution metadata is persisted); a large layer goes up in `PATCH` chunks and comes back
//! intact. Against berth's registry server (whose debug log records every request) and
//! Debian's `docker-registry`.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use test_support::daemon::{TestDaemon, ok};
use test_support::registry::{Registry, pushed_digest};
use test_support::require_root;

/// One daemon pushes busybox to `<addr>/src/bb`; a second (fresh) one pulls it, restarts,
/// and pushes it as `<addr>/dst/bb`: every layer is mounted and the manifest is the same.
fn pull_restart_push_elsewhere(reg: &Registry) {
    let addr = reg.addr();
    let (src, dst) = (format!("{addr}/src/bb"), format!("{addr}/dst/bb"));
    let first = TestDaemon::start();
    first.load_busybox();
    ok(&first.docker(&["tag", "busybox", &src]));
    let out = ok(&first.docker(&["push", &src]));
    assert!(out.contains(": Pushed"), "{out}");
    let digest = pushed_digest(&out, "latest");
    drop(first);

    let mut d = TestDaemon::start();
    ok(&d.docker(&["pull", &src]));
    // The metadata survives a restart of berthd.
    d.restart();
    assert!(
        d.dir()
            .join("root/distribution/v2metadata-by-diffid/sha256")
            .is_dir()
    );
    ok(&d.docker(&["tag", &src, &dst]));
    let before = reg.requests().map_or(0, |r| r.len());
    let out = ok(&d.docker(&["push", &dst]));
    eprintln!("push to dst:\n{out}");
    assert!(
        out.contains(&format!("The push refers to repository [{dst}]")),
        "{out}"
    );
    assert!(out.contains(": Mounted from src/bb"), "{out}");
    assert!(!out.contains(": Pushed"), "{out}");
    assert_eq!(pushed_digest(&out, "latest"), digest, "{out}");
    if let Some(reqs) = reg.requests() {
        let reqs = &reqs[before..];
        assert!(
            reqs.iter()
                .any(|r| r == "POST /v2/dst/bb/blobs/uploads/ 201"),
            "a mount: {reqs:?}"
        );
        assert!(!reqs.iter().any(|r| r.starts_with("PATCH ")), "{reqs:?}");
        let puts = reqs
            .iter()
            .filter(|r| r.starts_with("PUT /v2/dst/bb/blobs/uploads/"))
            .count();
        assert_eq!(puts, 1, "only the config is uploaded: {reqs:?}");
    }

    // Pushed again: it is all there.
    let out = ok(&d.docker(&["push", &dst]));
    assert!(out.contains(": Layer already exists"), "{out}");

    // Pulled back from dst into an empty store and run.
    ok(&d.docker(&["rmi", &src, &dst]));
    let out = ok(&d.docker(&["pull", &dst]));
    assert!(out.contains(&format!("Digest: {digest}")), "{out}");
    let hi = ok(&d.docker(&["run", "--rm", &dst, "echo", "hi"]));
    assert_eq!(hi, "hi\n");
    d.rm_all();
}

#[test]
fn pulled_image_pushed_to_another_repository_is_mounted() {
    require_root!();
    let reg = Registry::berth_with().log_requests().start();
    pull_restart_push_elsewhere(&reg);
}

#[test]
fn pulled_image_pushed_to_another_repository_is_mounted_debian_registry() {
    require_root!();
    let Some(reg) = Registry::debian() else {
        return;
    };
    pull_restart_push_elsewhere(&reg);
}

/// An image with a 20 MB random file: pushed in chunks, pulled back, intact.
fn large_layer_round_trip(reg: &Registry) {
    let d = TestDaemon::start();
    d.load_busybox();
    let name = format!("{}/big/img", reg.addr());
    ok(&d.docker(&[
        "run",
        "--name",
        "big",
        "busybox",
        "sh",
        "-c",
        "head -c 20000000 /dev/urandom > /big && md5sum /big > /big.md5",
    ]));
    ok(&d.docker(&["commit", "big", &name]));
    ok(&d.docker(&["rm", "big"]));
    let before = reg.requests().map_or(0, |r| r.len());
    let out = ok(&d.docker(&["push", &name]));
    assert!(out.contains(": Pushed"), "{out}");
    let digest = pushed_digest(&out, "latest");
    if let Some(reqs) = reg.requests() {
        let reqs = &reqs[before..];
        let patches = reqs
            .iter()
            .filter(|r| r.starts_with("PATCH /v2/big/img/blobs/uploads/") && r.ends_with(" 202"))
            .count();
        assert!(patches >= 3, "20 MB in 8 MiB chunks: {reqs:?}");
    }
    ok(&d.docker(&["rmi", &name]));
    let out = ok(&d.docker(&["pull", &name]));
    assert!(out.contains(&format!("Digest: {digest}")), "{out}");
    let check = ok(&d.docker(&["run", "--rm", &name, "md5sum", "-c", "/big.md5"]));
    assert_eq!(check, "/big: OK\n");
    d.rm_all();
}

#[test]
fn large_layer_is_pushed_in_chunks() {
    require_root!();
    let reg = Registry::berth_with().log_requests().start();
    large_layer_round_trip(&reg);
}

#[test]
fn large_layer_is_pushed_in_chunks_debian_registry() {
    require_root!();
    let Some(reg) = Registry::debian() else {
        return;
    };
    large_layer_round_trip(&reg);
}
