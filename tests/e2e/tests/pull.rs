//! `docker pull` / `berth pull` through berthd from a real registry: Debian's
//! `docker-registry` on a loopback port, filled with busybox by skopeo. The registry is killed
//! by its pid when the test ends.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::process::Command;

use test_support::daemon::{TestDaemon, fails, ok};
use test_support::fixtures;
use test_support::registry::Registry;
use test_support::require_root;

/// The `Digest: sha256:…` line of a pull's output.
fn digest_line(out: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix("Digest: "))
        .unwrap_or_else(|| panic!("no Digest line in {out}"))
        .trim()
        .to_string()
}

#[test]
fn pull_from_a_local_registry() {
    require_root!();
    let Some(reg) = Registry::debian() else {
        return;
    };
    let d = TestDaemon::start();
    let archive = fixtures::busybox_archive(d.dir());
    reg.push_archive(&archive, "test/busybox:latest");
    let name = format!("{}/test/busybox", reg.addr());

    // First pull: every layer is fetched.
    let out = ok(&d.docker(&["pull", &name]));
    eprintln!("first pull:\n{out}");
    assert!(out.contains("latest: Pulling from test/busybox"), "{out}");
    assert!(out.contains("Pull complete"), "{out}");
    assert!(
        out.contains(&format!("Status: Downloaded newer image for {name}:latest")),
        "{out}"
    );
    let digest = digest_line(&out);
    assert!(digest.starts_with("sha256:"), "{out}");
    let id = ok(&d.docker(&["image", "inspect", "-f", "{{.Id}}", &name]));
    let repo_digests = ok(&d.docker(&["image", "inspect", "-f", "{{.RepoDigests}}", &name]));
    assert!(
        repo_digests.contains(&format!("{name}@{digest}")),
        "{repo_digests}"
    );

    // It runs.
    let hi = ok(&d.docker(&["run", "--rm", &name, "echo", "hi"]));
    assert_eq!(hi, "hi\n");

    // Again: nothing new.
    let out = ok(&d.docker(&["pull", &name]));
    eprintln!("second pull:\n{out}");
    assert!(
        out.contains(&format!("Status: Image is up to date for {name}:latest")),
        "{out}"
    );

    // By digest, after removing the image: the same image comes back.
    ok(&d.docker(&["rmi", &format!("{name}:latest")]));
    let by_digest = format!("{name}@{digest}");
    let out = ok(&d.docker(&["pull", &by_digest]));
    assert!(
        out.contains(&format!("{digest}: Pulling from test/busybox")),
        "{out}"
    );
    let id2 = ok(&d.docker(&["image", "inspect", "-f", "{{.Id}}", &by_digest]));
    assert_eq!(id, id2);
    let hi = ok(&d.docker(&["run", "--rm", &by_digest, "echo", "hi"]));
    assert_eq!(hi, "hi\n");

    // A missing tag: Docker's words, nothing stored.
    let err = fails(&d.docker(&["pull", &format!("{name}:nope")]));
    assert!(
        err.contains(&format!(
            "manifest for {name}:nope not found: manifest unknown: manifest unknown"
        )),
        "{err}"
    );

    // berth pull: same stream, docker's lines.
    ok(&d.docker(&["rmi", &by_digest]));
    let out = ok(&d.berth(&["pull", &name]));
    assert!(out.contains("Using default tag: latest"), "{out}");
    assert!(out.contains("latest: Pulling from test/busybox"), "{out}");
    assert!(
        out.contains(&format!("Status: Downloaded newer image for {name}:latest")),
        "{out}"
    );
    assert_eq!(
        out.lines().last(),
        Some(format!("{name}:latest").as_str()),
        "{out}"
    );
    let out = ok(&d.berth(&["image", "pull", "-q", &name]));
    assert_eq!(out, format!("{name}:latest\n"));
    let err = fails(&d.berth(&["pull", &format!("{name}:nope")]));
    assert!(err.contains("manifest unknown"), "{err}");
    let hi = ok(&d.berth(&["run", "--rm", &name, "echo", "hi"]));
    assert_eq!(hi, "hi\n");

    d.rm_all();
}

#[test]
fn run_pulls_a_missing_image() {
    require_root!();
    let Some(reg) = Registry::debian() else {
        return;
    };
    let d = TestDaemon::start();
    let archive = fixtures::busybox_archive(d.dir());
    reg.push_archive(&archive, "test/bb:v1");
    let name = format!("{}/test/bb:v1", reg.addr());
    let out = d.docker(&["run", "--rm", &name, "echo", "pulled"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "pulled\n", "{stderr}");
    assert!(
        stderr.contains(&format!("Unable to find image '{name}' locally")),
        "{stderr}"
    );
    assert!(stderr.contains("Pull complete"), "{stderr}");
    d.rm_all();
}

/// `curl ARGS`, returning stdout (headers included with `-D -`).
fn curl(args: &[&str]) -> String {
    let out = Command::new("curl").arg("-sS").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "curl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn header<'a>(resp: &'a str, name: &str) -> &'a str {
    resp.lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then_some(v.trim())
        })
        .unwrap_or_else(|| panic!("no {name} in {resp}"))
}

#[test]
fn pull_picks_from_a_manifest_list() {
    require_root!();
    let Some(reg) = Registry::debian() else {
        return;
    };
    let d = TestDaemon::start();
    let archive = fixtures::busybox_archive(d.dir());
    reg.push_archive(&archive, "test/multi:single");
    let base = format!("http://{}/v2/test/multi/manifests", reg.addr());
    // The single-platform manifest skopeo wrote, then a list naming it for two platforms.
    let head = curl(&[
        "-I",
        "-H",
        "Accept: application/vnd.docker.distribution.manifest.v2+json",
        &format!("{base}/single"),
    ]);
    let (digest, size) = (
        header(&head, "Docker-Content-Digest").to_string(),
        header(&head, "Content-Length").to_string(),
    );
    let entry = |arch: &str| {
        format!(
            r#"{{"mediaType":"application/vnd.docker.distribution.manifest.v2+json","digest":"{digest}","size":{size},"platform":{{"architecture":"{arch}","os":"linux"}}}}"#
        )
    };
    let list = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json","manifests":[{},{}]}}"#,
        entry("ppc64le"),
        entry("amd64")
    );
    let put = curl(&[
        "-D",
        "-",
        "-o",
        "/dev/null",
        "-X",
        "PUT",
        "-H",
        "Content-Type: application/vnd.docker.distribution.manifest.list.v2+json",
        "--data-binary",
        &list,
        &format!("{base}/multi"),
    ]);
    let list_digest = header(&put, "Docker-Content-Digest").to_string();

    let name = format!("{}/test/multi:multi", reg.addr());
    let out = ok(&d.docker(&["pull", &name]));
    // The digest shown (and recorded) is the list's, as Docker does.
    assert_eq!(digest_line(&out), list_digest, "{out}");
    assert!(out.contains("Pull complete"), "{out}");
    let hi = ok(&d.docker(&["run", "--rm", &name, "echo", "hi"]));
    assert_eq!(hi, "hi\n");
    let err = fails(&d.docker(&["pull", "--platform", "linux/s390x", &name]));
    assert!(
        err.contains("no matching manifest for linux/s390x in the manifest list entries"),
        "{err}"
    );
    d.rm_all();
}
