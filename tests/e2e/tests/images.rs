//! End-to-end: a real berthd on its own socket and data root, driven by the real docker CLI
//! (/usr/local/bin/docker) and by `berth`, with the archives in ../shared/images (or a busybox
//! image made from Debian's busybox-static where ../shared is absent).

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use test_support::daemon::{TestDaemon, fails, ok};
use test_support::fixtures;
use test_support::require_root;

fn busybox(d: &TestDaemon) -> (PathBuf, String) {
    let archive = fixtures::busybox_archive(d.dir());
    let images = fixtures::archive_images(&archive);
    let id = images[0].1.clone();
    (archive, id)
}

fn load(d: &TestDaemon, archive: &Path) -> String {
    ok(&d.docker(&["load", "-i", archive.to_str().unwrap()]))
}

fn ingest_is_empty(d: &TestDaemon) -> bool {
    let dir = d.data_root.join("content/ingest");
    std::fs::read_dir(&dir)
        .map(|r| {
            r.filter_map(Result::ok)
                .all(|e| e.file_name().to_string_lossy().ends_with(".lock"))
        })
        .unwrap_or(true)
}

#[test]
fn version_info_and_ping_through_both_clients() {
    require_root!();
    let d = TestDaemon::start();
    let out = ok(&d.docker(&["version"]));
    assert!(out.contains("Server:"), "{out}");
    assert!(out.contains("1.47"), "server API version shown: {out}");
    let api = ok(&d.docker(&["version", "--format", "{{.Server.APIVersion}}"]));
    assert_eq!(api.trim(), "1.47");

    let info = ok(&d.docker(&["info", "--format", "{{json .}}"]));
    let info: serde_json::Value = serde_json::from_str(&info).unwrap();
    assert_eq!(info["Driver"], "overlay2");
    assert_eq!(info["OSType"], "linux");
    assert_eq!(info["Images"], 0);
    assert_eq!(info["DockerRootDir"], d.data_root.to_str().unwrap());
    assert!(info["NCPU"].as_u64().unwrap() >= 1);
    assert!(info["MemTotal"].as_u64().unwrap() > 1 << 20);
    assert!(!info["KernelVersion"].as_str().unwrap().is_empty());
    assert!(["1", "2"].contains(&info["CgroupVersion"].as_str().unwrap()));

    let out = ok(&d.berth(&["version"]));
    assert!(out.contains("1.47"), "{out}");
    let out = ok(&d.berth(&["info"]));
    assert!(out.contains("overlay2"), "{out}");
}

#[test]
fn load_list_inspect_and_history_busybox() {
    require_root!();
    let d = TestDaemon::start();
    let (archive, id) = busybox(&d);
    let out = load(&d, &archive);
    assert!(out.contains("Loaded image: busybox:latest"), "{out}");

    let out = ok(&d.docker(&["images"]));
    let row = out
        .lines()
        .find(|l| l.starts_with("busybox"))
        .unwrap_or_else(|| panic!("{out}"));
    let cols: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cols[1], "latest");
    assert_eq!(cols[2], &id[7..19]);

    let out = ok(&d.docker(&["images", "-q", "--no-trunc"]));
    assert_eq!(out.trim(), id);
    let out = ok(&d.docker(&[
        "image",
        "inspect",
        "-f",
        "{{.Id}} {{index .RepoTags 0}} {{.Os}}",
        "busybox",
    ]));
    assert_eq!(out.trim(), format!("{id} busybox:latest linux"));
    let out = ok(&d.docker(&["inspect", "--format", "{{json .Config.Cmd}}", &id[7..19]]));
    assert_eq!(out.trim(), r#"["sh"]"#);
    let out = ok(&d.docker(&[
        "inspect",
        "-f",
        "{{.RootFS.Type}} {{len .RootFS.Layers}}",
        "busybox:latest",
    ]));
    assert_eq!(out.trim(), "layers 1");
    let out = ok(&d.docker(&["history", "busybox"]));
    assert!(out.starts_with("IMAGE"), "{out}");
    assert!(out.contains(&id[7..19]), "{out}");

    // berth shows the same image.
    let out = ok(&d.berth(&["images"]));
    assert!(
        out.lines()
            .any(|l| l.starts_with("busybox") && l.contains(&id[7..19])),
        "{out}"
    );
    let out = ok(&d.berth(&["image", "inspect", "-f", "{{.Id}}", "busybox"]));
    assert_eq!(out.trim(), id);
    let out = ok(&d.berth(&["history", "busybox"]));
    assert!(out.contains(&id[7..19]), "{out}");

    let info = ok(&d.docker(&["info", "--format", "{{.Images}}"]));
    assert_eq!(info.trim(), "1");
    // Loading again changes nothing and still answers.
    let out = load(&d, &archive);
    assert!(out.contains("busybox:latest"), "{out}");
    assert_eq!(ok(&d.docker(&["images", "-q"])).lines().count(), 1);
    assert!(ingest_is_empty(&d));
}

#[test]
fn berth_load_from_stdin_and_save_to_stdout() {
    require_root!();
    let d = TestDaemon::start();
    let (archive, id) = busybox(&d);
    let out = d
        .berth_cmd()
        .args(["load"])
        .stdin(std::fs::File::open(&archive).unwrap())
        .output()
        .unwrap();
    assert!(ok(&out).contains("Loaded image: busybox:latest"));

    let saved = d.dir().join("saved-by-berth.tar");
    let out = d
        .berth_cmd()
        .args(["save", "busybox"])
        .stdout(std::fs::File::create(&saved).unwrap())
        .output()
        .unwrap();
    ok(&out);
    let images = fixtures::archive_images(&saved);
    assert_eq!(
        images,
        vec![(vec!["busybox:latest".to_string()], id.clone())]
    );

    let other = TestDaemon::start();
    let out = ok(&other.berth(&["load", "-i", saved.to_str().unwrap()]));
    assert!(out.contains("Loaded image: busybox:latest"), "{out}");
    assert_eq!(ok(&other.berth(&["images", "-q", "--no-trunc"])).trim(), id);
}

#[test]
fn save_round_trips_and_passes_skopeo() {
    require_root!();
    let d = TestDaemon::start();
    let (archive, id) = busybox(&d);
    load(&d, &archive);
    ok(&d.docker(&["tag", "busybox", "example.com/team/bb:v1"]));
    let saved = d.dir().join("bb.tar");
    ok(&d.docker(&[
        "save",
        "-o",
        saved.to_str().unwrap(),
        "busybox",
        "example.com/team/bb:v1",
    ]));

    // One manifest entry per image, carrying every name it was saved under (as docker does).
    let images = fixtures::archive_images(&saved);
    let tags = vec![
        "busybox:latest".to_string(),
        "example.com/team/bb:v1".to_string(),
    ];
    assert_eq!(images, vec![(tags, id.clone())]);

    if which("skopeo") {
        let out = std::process::Command::new("skopeo")
            .args([
                "inspect",
                &format!("docker-archive:{}:busybox:latest", saved.display()),
            ])
            .output()
            .unwrap();
        let text = ok(&out);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["Os"], "linux");
        assert_eq!(v["Layers"].as_array().unwrap().len(), 1);
    } else {
        eprintln!("skopeo not installed: skipped the skopeo check");
    }

    let other = TestDaemon::start();
    let out = ok(&other.docker(&["load", "-i", saved.to_str().unwrap()]));
    assert!(
        out.contains("busybox:latest") && out.contains("example.com/team/bb:v1"),
        "{out}"
    );
    let out = ok(&other.docker(&["inspect", "-f", "{{.Id}}", "example.com/team/bb:v1"]));
    assert_eq!(out.trim(), id);

    // Saving by ID gives an archive with no tags, which loads as an untagged image.
    let by_id = d.dir().join("by-id.tar");
    ok(&d.docker(&["save", "-o", by_id.to_str().unwrap(), &id[7..19]]));
    let third = TestDaemon::start();
    let out = ok(&third.docker(&["load", "-i", by_id.to_str().unwrap()]));
    assert!(out.contains(&format!("Loaded image ID: {id}")), "{out}");
}

#[test]
fn save_loads_into_a_real_dockerd() {
    require_root!();
    if !which("dockerd") {
        eprintln!("dockerd not installed: skipped (CI installs docker.io)");
        return;
    }
    let d = TestDaemon::start();
    let (archive, id) = busybox(&d);
    load(&d, &archive);
    let saved = d.dir().join("for-dockerd.tar");
    ok(&d.docker(&["save", "-o", saved.to_str().unwrap(), "busybox"]));

    let dockerd = RealDockerd::start(d.dir());
    let out = dockerd.docker(&["load", "-i", saved.to_str().unwrap()]);
    let text = ok(&out);
    assert!(text.contains("busybox:latest"), "{text}");
    let out = ok(&dockerd.docker(&["image", "inspect", "-f", "{{.Id}}", "busybox:latest"]));
    assert_eq!(out.trim(), id);
}

#[test]
fn import_with_changes_and_message() {
    require_root!();
    let d = TestDaemon::start();
    let rootfs = fixtures::busybox_rootfs(d.dir());
    let out = ok(&d.docker(&[
        "import",
        "-c",
        r#"CMD ["sh", "-c", "echo hi"]"#,
        "-c",
        "ENV A=1 B=two",
        "-c",
        "EXPOSE 80 53/udp",
        "-c",
        "WORKDIR /tmp",
        "-c",
        "LABEL team=berth",
        "-c",
        "USER nobody",
        "-c",
        "VOLUME /data",
        "-m",
        "made by the e2e test",
        rootfs.to_str().unwrap(),
        "imported:v1",
    ]));
    let id = out.trim().to_string();
    assert!(id.starts_with("sha256:") && id.len() == 71, "{out}");
    let cfg = ok(&d.docker(&["inspect", "-f", "{{json .Config}}", "imported:v1"]));
    let cfg: serde_json::Value = serde_json::from_str(&cfg).unwrap();
    assert_eq!(cfg["Cmd"], serde_json::json!(["sh", "-c", "echo hi"]));
    let env: Vec<&str> = cfg["Env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(env.contains(&"A=1") && env.contains(&"B=two"), "{env:?}");
    assert!(
        cfg["ExposedPorts"].get("80/tcp").is_some() && cfg["ExposedPorts"].get("53/udp").is_some()
    );
    assert_eq!(cfg["WorkingDir"], "/tmp");
    assert_eq!(cfg["User"], "nobody");
    assert_eq!(cfg["Labels"]["team"], "berth");
    assert!(cfg["Volumes"].get("/data").is_some());
    let hist = ok(&d.docker(&["history", "--no-trunc", "imported:v1"]));
    assert!(hist.contains("made by the e2e test"), "{hist}");

    // From stdin, through berth.
    let out = d
        .berth_cmd()
        .args(["import", "-", "fromstdin"])
        .stdin(std::fs::File::open(&rootfs).unwrap())
        .output()
        .unwrap();
    assert!(ok(&out).trim().starts_with("sha256:"));
    let out = ok(&d.berth(&["images", "--format", "{{.Repository}}:{{.Tag}}"]));
    assert!(out.lines().any(|l| l == "fromstdin:latest"), "{out}");

    // A change import does not accept is a clear 400.
    let err = fails(&d.docker(&["import", "-c", "RUN echo no", rootfs.to_str().unwrap()]));
    assert!(err.to_lowercase().contains("run"), "{err}");
}

#[test]
fn tag_rmi_and_prune() {
    require_root!();
    let d = TestDaemon::start();
    let (archive, id) = busybox(&d);
    load(&d, &archive);
    let short = &id[7..19];
    ok(&d.docker(&["tag", "busybox", "b2:v1"]));
    ok(&d.berth(&["tag", "busybox:latest", "localhost:5000/team/b3"]));
    let out = ok(&d.docker(&["images", "--format", "{{.Repository}}:{{.Tag}}"]));
    for want in ["busybox:latest", "b2:v1", "localhost:5000/team/b3:latest"] {
        assert!(out.lines().any(|l| l == want), "{want} missing in {out}");
    }
    let out = ok(&d.docker(&["images", "--filter", "reference=b2", "-q"]));
    assert_eq!(out.trim(), short);

    // Untag only, while other tags remain.
    let out = ok(&d.docker(&["rmi", "b2:v1"]));
    assert_eq!(out.trim(), "Untagged: b2:v1");
    // By ID with several tags: refused without force.
    let err = fails(&d.docker(&["rmi", short]));
    assert!(
        err.contains("must be forced") && err.contains("referenced in multiple repositories"),
        "{err}"
    );
    let out = ok(&d.berth(&["rmi", "localhost:5000/team/b3"]));
    assert!(
        out.contains("Untagged: localhost:5000/team/b3:latest"),
        "{out}"
    );
    // The last tag: untag and delete.
    let out = ok(&d.docker(&["rmi", "busybox"]));
    assert!(out.contains("Untagged: busybox:latest"), "{out}");
    assert!(out.contains(&format!("Deleted: {id}")), "{out}");
    assert_eq!(ok(&d.docker(&["images", "-q"])).trim(), "");
    let snapshots = std::fs::read_dir(d.data_root.join("snapshots"))
        .unwrap()
        .count();
    assert_eq!(snapshots, 0, "layers of a deleted image are removed");

    // Prune: an untagged (dangling) image goes; a tagged one stays.
    load(&d, &archive);
    let rootfs = fixtures::busybox_rootfs(d.dir());
    let dangling = ok(&d.docker(&["import", rootfs.to_str().unwrap()]))
        .trim()
        .to_string();
    let out = ok(&d.docker(&["images", "--filter", "dangling=true", "-q", "--no-trunc"]));
    assert_eq!(out.trim(), dangling);
    let out = ok(&d.docker(&["image", "prune", "-f"]));
    assert!(out.contains(&format!("deleted: {dangling}")), "{out}");
    assert!(out.contains("Total reclaimed space"), "{out}");
    assert_eq!(ok(&d.docker(&["images", "-q"])).trim(), short);
    let out = ok(&d.docker(&["image", "prune", "-a", "-f"]));
    assert!(out.contains(&id), "{out}");
    assert_eq!(ok(&d.docker(&["images", "-q"])).trim(), "");
}

#[test]
fn bad_input_gets_clear_errors_and_the_daemon_keeps_serving() {
    require_root!();
    let d = TestDaemon::start();
    let (archive, _) = busybox(&d);

    // A truncated archive.
    let bytes = std::fs::read(&archive).unwrap();
    let truncated = d.dir().join("truncated.tar");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let err = fails(&d.docker(&["load", "-i", truncated.to_str().unwrap()]));
    assert!(!err.trim().is_empty());

    // Not an archive at all.
    let junk = d.dir().join("junk.tar");
    std::fs::write(&junk, b"this is not a tar archive at all, not even close").unwrap();
    fails(&d.docker(&["load", "-i", junk.to_str().unwrap()]));

    // A hostile entry name.
    let hostile = d.dir().join("hostile.tar");
    write_raw_tar(
        &hostile,
        &[("../../escape", b"x"), ("manifest.json", b"[]")],
    );
    let err = fails(&d.docker(&["load", "-i", hostile.to_str().unwrap()]));
    assert!(err.contains("escape") || err.contains(".."), "{err}");
    assert!(!d.data_root.parent().unwrap().join("escape").exists());

    // Invalid references.
    let err = fails(&d.docker(&["tag", "busybox", "Bad:Tag"]));
    assert!(err.contains("invalid reference format"), "{err}");
    let err = fails(&d.docker(&["image", "inspect", "nosuchimage"]));
    assert!(err.contains("No such image"), "{err}");
    let err = fails(&d.docker(&["inspect", "nosuchthing"]));
    assert!(err.contains("No such object: nosuchthing"), "{err}");
    let err = fails(&d.docker(&["rmi", "nosuchimage:v9"]));
    assert!(err.contains("No such image: nosuchimage:v9"), "{err}");

    // API versions out of range.
    let out = d
        .docker_cmd()
        .env("DOCKER_API_VERSION", "1.48")
        .args(["images"])
        .output()
        .unwrap();
    let err = fails(&out);
    assert!(err.contains("client version 1.48 is too new"), "{err}");
    let out = d
        .docker_cmd()
        .env("DOCKER_API_VERSION", "1.23")
        .args(["images"])
        .output()
        .unwrap();
    let err = fails(&out);
    assert!(err.contains("too old"), "{err}");
    let out = d
        .docker_cmd()
        .env("DOCKER_API_VERSION", "1.24")
        .args(["images"])
        .output()
        .unwrap();
    ok(&out);

    // Nothing half-written stays; the daemon still answers and the store still works.
    assert!(ingest_is_empty(&d));
    assert_eq!(ok(&d.docker(&["images", "-q"])).trim(), "");
    load(&d, &archive);
    assert_eq!(ok(&d.docker(&["images", "-q"])).lines().count(), 1);
}

#[test]
fn a_layer_that_does_not_match_its_diff_id_is_refused() {
    require_root!();
    let d = TestDaemon::start();
    let (archive, _) = busybox(&d);
    // Re-pack the archive with one byte of the layer changed.
    let tampered = d.dir().join("tampered.tar");
    let mut out = tar::Builder::new(std::fs::File::create(&tampered).unwrap());
    let mut ar = tar::Archive::new(std::fs::File::open(&archive).unwrap());
    let mut changed = false;
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut data).unwrap();
        let mut h = e.header().clone();
        if !changed && data.len() > 100_000 {
            let n = data.len() - 1;
            data[n] ^= 0xff;
            changed = true;
        }
        out.append_data(&mut h, e.path().unwrap(), data.as_slice())
            .unwrap();
    }
    out.finish().unwrap();
    assert!(changed);
    let err = fails(&d.docker(&["load", "-i", tampered.to_str().unwrap()]));
    assert!(err.contains("sha256:"), "the error names the digest: {err}");
    assert_eq!(ok(&d.docker(&["images", "-q"])).trim(), "");
    assert!(ingest_is_empty(&d));
}

#[test]
fn nginx_loads_saves_and_shares_its_base_layer() {
    require_root!();
    let (Some(nginx), Some(redis)) = (
        fixtures::shared_image("nginx.tar.gz"),
        fixtures::shared_image("redis.tar.gz"),
    ) else {
        eprintln!("../shared/images absent: skipped");
        return;
    };
    let d = TestDaemon::start();
    load(&d, &nginx);
    load(&d, &redis);
    let out = ok(&d.docker(&["inspect", "-f", "{{len .RootFS.Layers}}", "nginx"]));
    assert_eq!(out.trim(), "2");
    let nginx_id = fixtures::archive_images(&nginx)[0].1.clone();
    assert_eq!(
        ok(&d.docker(&["inspect", "-f", "{{.Id}}", "nginx"])).trim(),
        nginx_id
    );
    // The shared Debian base is unpacked once: 3 snapshots for 2 two-layer images.
    assert_eq!(
        std::fs::read_dir(d.data_root.join("snapshots"))
            .unwrap()
            .count(),
        3
    );
    let page = d.data_root.join("snapshots");
    assert!(page.is_dir());

    let saved = d.dir().join("nginx.tar");
    ok(&d.docker(&["save", "-o", saved.to_str().unwrap(), "nginx"]));
    let other = TestDaemon::start();
    load(&other, &saved);
    assert_eq!(
        ok(&other.docker(&["inspect", "-f", "{{.Id}}", "nginx"])).trim(),
        nginx_id
    );
    // Deleting nginx keeps redis's (shared) base layer.
    ok(&d.docker(&["rmi", "nginx"]));
    assert_eq!(
        std::fs::read_dir(d.data_root.join("snapshots"))
            .unwrap()
            .count(),
        2
    );
    ok(&d.docker(&["image", "inspect", "redis"]));
}

#[test]
fn daemon_socket_lock_and_clean_shutdown() {
    require_root!();
    let mut d = TestDaemon::start();
    let mode = std::fs::metadata(&d.socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o660, "socket mode");
    let root_mode = std::fs::metadata(&d.data_root)
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(root_mode, 0o711, "data root mode");
    let pidfile = d.dir().join("berthd.pid");
    let pid: u32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(Some(pid), d.pid());

    // A second berthd on the same data root refuses to start.
    let other_sock = d.dir().join("other.sock");
    let out = std::process::Command::new(test_support::daemon::bin_path("berthd"))
        .arg("-H")
        .arg(format!("unix://{}", other_sock.display()))
        .arg("--data-root")
        .arg(&d.data_root)
        .arg("--exec-root")
        .arg(d.dir().join("exec2"))
        .arg("--pidfile")
        .arg(d.dir().join("other.pid"))
        .arg("--config-file")
        .arg(d.dir().join("daemon.json"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(d.data_root.to_str().unwrap()),
        "names the data root: {err}"
    );
    assert!(
        test_support::daemon::ping(&d.socket),
        "the first daemon is unaffected"
    );

    let status = d.stop().unwrap();
    assert!(status.success(), "clean exit on SIGTERM: {status}");
    assert!(!d.socket.exists(), "socket removed");
    assert!(!pidfile.exists(), "pid file removed");
}

#[test]
fn images_survive_a_daemon_restart() {
    require_root!();
    let mut d = TestDaemon::start();
    let (archive, id) = busybox(&d);
    load(&d, &archive);
    ok(&d.docker(&["tag", "busybox", "keep:me"]));
    let root = d.data_root.clone();
    d.stop();
    let d2 = TestDaemon::start_on(&root, &[]);
    let out = ok(&d2.docker(&["images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"]));
    assert!(out.contains(&format!("keep:me {}", &id[7..19])), "{out}");
    assert!(
        out.contains(&format!("busybox:latest {}", &id[7..19])),
        "{out}"
    );
}

fn which(bin: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(bin).is_file()))
        .unwrap_or(false)
}

/// Writes a tar whose entry names are put into the header bytes as given (no sanitising).
fn write_raw_tar(path: &Path, entries: &[(&str, &[u8])]) {
    let mut out = Vec::new();
    for (name, data) in entries {
        let mut h = tar::Header::new_old();
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.extend_from_slice(&[0u8; 1024]);
    std::fs::write(path, out).unwrap();
}

/// A real dockerd (Debian's docker.io) with its own everything, for interoperability checks.
struct RealDockerd {
    child: std::process::Child,
    sock: PathBuf,
    _dir: tempfile::TempDir,
}

impl RealDockerd {
    fn start(_near: &Path) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("e2e-dockerd-")
            .tempdir_in("/tmp")
            .unwrap();
        let sock = dir.path().join("docker.sock");
        let child = std::process::Command::new("dockerd")
            .arg("-H")
            .arg(format!("unix://{}", sock.display()))
            .arg("--data-root")
            .arg(dir.path().join("root"))
            .arg("--exec-root")
            .arg(dir.path().join("exec"))
            .arg("--pidfile")
            .arg(dir.path().join("docker.pid"))
            .args(["--bridge=none", "--iptables=false", "--ip6tables=false"])
            .arg("--containerd-namespace=e2e")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("dockerd.log")).unwrap())
            .spawn()
            .unwrap();
        let d = Self {
            child,
            sock,
            _dir: dir,
        };
        for _ in 0..600 {
            if test_support::daemon::ping(&d.sock) {
                return d;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!(
            "dockerd did not start: {}",
            std::fs::read_to_string(d._dir.path().join("dockerd.log")).unwrap_or_default()
        );
    }

    fn docker(&self, args: &[&str]) -> std::process::Output {
        std::process::Command::new(test_support::daemon::docker_cli())
            .env("DOCKER_HOST", format!("unix://{}", self.sock.display()))
            .env("DOCKER_CONFIG", self._dir.path().join("cfg"))
            .args(args)
            .output()
            .unwrap()
    }
}

impl Drop for RealDockerd {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        for _ in 0..200 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
