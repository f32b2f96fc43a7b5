//! End-to-end `diff` and `commit`: a real berthd (as root) driven by the real docker CLI and
//! by `berth`. Every test removes its containers before its daemon stops.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use test_support::daemon::{TestDaemon, fails, ok};
use test_support::require_root;

/// A raw `GET` on the daemon's socket: (status line, body).
fn raw_get(d: &TestDaemon, path: &str) -> (String, String) {
    let mut s = UnixStream::connect(&d.socket).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: berth\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap();
    (head.lines().next().unwrap().to_string(), body.to_string())
}

fn image_id(d: &TestDaemon, name: &str) -> String {
    ok(&d.docker(&["image", "inspect", "-f", "{{.Id}}", name]))
        .trim()
        .to_string()
}

#[test]
fn diff_commit_history_and_rmi_with_docker_cli() {
    require_root!();
    let d = TestDaemon::start();
    d.load_busybox();
    ok(&d.docker(&[
        "run",
        "--name",
        "c1",
        "busybox",
        "sh",
        "-c",
        "mkdir /new; echo x > /new/f; rm /etc/passwd; echo y >> /etc/group",
    ]));
    let diff = ok(&d.docker(&["diff", "c1"]));
    assert_eq!(
        diff, "C /etc\nC /etc/group\nD /etc/passwd\nA /new\nA /new/f\n",
        "{diff}"
    );
    assert_eq!(ok(&d.berth(&["container", "diff", "c1"])), diff);
    let (status, body) = raw_get(&d, "/containers/c1/changes");
    assert!(status.contains("200"), "{status}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v[0], serde_json::json!({"Path": "/etc", "Kind": 0}));
    assert_eq!(v[2], serde_json::json!({"Path": "/etc/passwd", "Kind": 2}));
    assert_eq!(v[3], serde_json::json!({"Path": "/new", "Kind": 1}));

    let id = ok(&d.docker(&[
        "commit",
        "-m",
        "msg",
        "-a",
        "me",
        "-c",
        "ENV X=1",
        "-c",
        r#"CMD ["cat","/new/f"]"#,
        "c1",
        "myimg:v1",
    ]));
    let id = id.trim();
    assert!(id.starts_with("sha256:") && id.len() == 71, "{id}");
    assert_eq!(image_id(&d, "myimg:v1"), id);
    assert_eq!(ok(&d.docker(&["run", "--rm", "myimg:v1"])), "x\n");
    let out = d.docker(&[
        "run",
        "--rm",
        "myimg:v1",
        "sh",
        "-c",
        "echo $X; cat /etc/group; ls /etc/passwd",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.starts_with("1\n"), "{stdout}");
    assert!(stdout.ends_with("y\n"), "{stdout}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("No such file"),
        "{out:?}"
    );
    assert_ne!(out.status.code(), Some(0));

    let history = ok(&d.docker(&["history", "--no-trunc", "myimg:v1"]));
    let top = history.lines().nth(1).unwrap();
    assert!(top.starts_with(id), "{history}");
    assert!(
        top.contains("sh -c mkdir /new; echo x > /new/f"),
        "{history}"
    );
    assert!(top.trim_end().ends_with("msg"), "{history}");
    assert_eq!(
        ok(&d.docker(&["inspect", "-f", "{{.Author}} {{.Comment}}", "myimg:v1"])),
        "me msg\n"
    );
    let parent = image_id(&d, "busybox");
    assert_eq!(
        ok(&d.docker(&["image", "inspect", "-f", "{{.Parent}}", "myimg:v1"])).trim(),
        parent
    );
    let cfg = ok(&d.docker(&[
        "image",
        "inspect",
        "-f",
        "{{json .Config.Cmd}} {{json .Config.Env}}",
        "myimg:v1",
    ]));
    assert!(cfg.starts_with(r#"["cat","/new/f"] ["#), "{cfg}");
    assert!(cfg.contains(r#""X=1"]"#), "{cfg}");

    // The parent cannot go while the child exists: by ID it is refused, by name only untagged.
    d.rm_all();
    let err = fails(&d.docker(&["rmi", &parent]));
    assert!(
        err.contains(&format!(
            "conflict: unable to delete {} (cannot be forced) - image has dependent child images",
            &parent[7..19]
        )),
        "{err}"
    );
    let err = fails(&d.docker(&["rmi", "-f", &parent]));
    assert!(err.contains("image has dependent child images"), "{err}");
    assert_eq!(
        ok(&d.docker(&["rmi", "busybox"])),
        "Untagged: busybox:latest\n"
    );
    assert_eq!(image_id(&d, &parent), parent);
    // Deleting the child takes the untagged parent with it.
    let out = ok(&d.docker(&["rmi", "myimg:v1"]));
    assert!(out.contains(&format!("Deleted: {id}")), "{out}");
    assert!(out.contains(&format!("Deleted: {parent}")), "{out}");
    assert_eq!(ok(&d.docker(&["images", "-aq"])), "");
}

#[test]
fn commit_of_a_running_container_with_berth() {
    require_root!();
    let d = TestDaemon::start();
    d.load_busybox();
    ok(&d.berth(&[
        "run",
        "-d",
        "--name",
        "r1",
        "busybox",
        "sh",
        "-c",
        "echo a > /a; exec sleep 1000",
    ]));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let diff = ok(&d.berth(&["diff", "r1"]));
        if diff.contains("A /a\n") {
            break;
        }
        assert!(Instant::now() < deadline, "no /a: {diff}");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Paused meanwhile (the default), running again afterwards.
    let id = ok(&d.berth(&["commit", "-m", "live", "r1", "snap"]));
    assert!(id.trim().starts_with("sha256:"), "{id}");
    assert_eq!(
        ok(&d.berth(&["inspect", "-f", "{{.State.Status}} {{.State.Paused}}", "r1"])),
        "running false\n"
    );
    assert_eq!(ok(&d.berth(&["run", "--rm", "snap", "cat", "/a"])), "a\n");
    // moby's events, in moby's order: pause, the tag, commit, then the deferred unpause.
    let until = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 1)
    .to_string();
    let events = ok(&d.docker(&[
        "events",
        "--since",
        "0",
        "--until",
        &until,
        "--format",
        "{{.Type}} {{.Action}} {{.Actor.Attributes.imageRef}}",
    ]));
    let tail: Vec<&str> = events
        .lines()
        .skip_while(|l| !l.starts_with("container pause"))
        .take(4)
        .map(|l| l.trim_end_matches("<no value>").trim_end())
        .collect();
    assert_eq!(
        tail,
        vec![
            "container pause",
            "image tag",
            "container commit snap:latest",
            "container unpause"
        ],
        "{events}"
    );
    assert_eq!(
        ok(&d.docker(&["image", "inspect", "-f", "{{.Comment}}", "snap:latest"])),
        "live\n"
    );
    // Without pausing, through docker and berth alike.
    ok(&d.docker(&["commit", "--pause=false", "r1", "snap:nopause"]));
    let out = ok(&d.berth(&["container", "commit", "--pause=false", "r1"]));
    let untagged = out.trim();
    assert!(untagged.starts_with("sha256:"), "{out}");
    assert_eq!(
        ok(&d.docker(&["image", "inspect", "-f", "{{len .RepoTags}}", untagged])),
        "0\n"
    );
    assert_eq!(
        ok(&d.docker(&["inspect", "-f", "{{.State.Running}}", "r1"])),
        "true\n"
    );
    // A container never started has no changes: `null`, as moby answers.
    ok(&d.docker(&["create", "--name", "fresh", "busybox"]));
    let (status, body) = raw_get(&d, "/containers/fresh/changes");
    assert!(status.contains("200"), "{status}");
    assert_eq!(body.trim(), "null");
    assert_eq!(ok(&d.docker(&["diff", "fresh"])), "");
    // Committing it gives an image with the parent's layers and an empty-layer history entry.
    ok(&d.docker(&["commit", "fresh", "same"]));
    assert_eq!(
        ok(&d.docker(&["image", "inspect", "-f", "{{json .RootFS.Layers}}", "same"])),
        ok(&d.docker(&[
            "image",
            "inspect",
            "-f",
            "{{json .RootFS.Layers}}",
            "busybox"
        ]))
    );
    d.rm_all();
}

#[test]
fn commit_keeps_opaque_directories_and_whiteouts() {
    require_root!();
    let d = TestDaemon::start();
    d.load_busybox();
    ok(&d.docker(&[
        "run",
        "--name",
        "base",
        "busybox",
        "sh",
        "-c",
        "mkdir -p /d/sub; echo 1 > /d/one; echo 2 > /d/sub/two",
    ]));
    ok(&d.docker(&["commit", "base", "img1"]));
    ok(&d.docker(&[
        "run",
        "--name",
        "o1",
        "img1",
        "sh",
        "-c",
        "rm -rf /d; mkdir /d; echo n > /d/n",
    ]));
    // The directory was made again: its old entries are gone, the new one added.
    assert_eq!(
        ok(&d.docker(&["diff", "o1"])),
        "C /d\nA /d/n\nD /d/one\nD /d/sub\n"
    );
    assert_eq!(
        ok(&d.berth(&["diff", "o1"])),
        "C /d\nA /d/n\nD /d/one\nD /d/sub\n"
    );
    ok(&d.berth(&["commit", "o1", "img2"]));
    assert_eq!(
        ok(&d.docker(&["run", "--rm", "img2", "find", "/d"])),
        "/d\n/d/n\n"
    );
    // The older image still has its files.
    assert_eq!(
        ok(&d.docker(&["run", "--rm", "img1", "cat", "/d/one", "/d/sub/two"])),
        "1\n2\n"
    );
    // A third layer on top: whiteouts of the middle layer still hide the bottom's files.
    ok(&d.docker(&[
        "run",
        "--name",
        "t1",
        "img2",
        "sh",
        "-c",
        "echo 3 > /d/three",
    ]));
    assert_eq!(ok(&d.docker(&["diff", "t1"])), "C /d\nA /d/three\n");
    ok(&d.docker(&["commit", "t1", "img3"]));
    assert_eq!(
        ok(&d.docker(&["run", "--rm", "img3", "ls", "/d"])),
        "n\nthree\n"
    );
    assert_eq!(
        ok(&d.docker(&["history", "-q", "img3"])).lines().count(),
        ok(&d.docker(&["history", "-q", "busybox"])).lines().count() + 3
    );
    d.rm_all();
}

#[test]
fn diff_and_commit_errors() {
    require_root!();
    let d = TestDaemon::start();
    d.load_busybox();
    let err = fails(&d.docker(&["diff", "nope"]));
    assert!(
        err.contains("Error response from daemon: No such container: nope"),
        "{err}"
    );
    let err = fails(&d.docker(&["commit", "nope", "x"]));
    assert!(
        err.contains("Error response from daemon: No such container: nope"),
        "{err}"
    );
    ok(&d.docker(&["create", "--name", "c1", "busybox"]));
    let err = fails(&d.docker(&["commit", "-c", "RUN echo hi", "c1", "x"]));
    assert!(
        err.contains("Error response from daemon: RUN is not a valid change command"),
        "{err}"
    );
    let err = fails(&d.berth(&["commit", "-c", "EXPOSE nope", "c1"]));
    assert!(err.contains("invalid containerPort: nope"), "{err}");
    // Nothing was made by the failures.
    assert_eq!(ok(&d.docker(&["images", "-q"])).lines().count(), 1);
    d.rm_all();
}
