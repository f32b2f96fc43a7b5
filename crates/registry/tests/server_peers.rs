//! The registry server against a real peer: Debian's `skopeo` pushes images into it (the
//! POST/PATCH/PUT upload flow), copies them back out, inspects them and lists tags; a copy
//! between repositories uses a cross-repository mount. The server runs in-process on
//! 127.0.0.1:0, except in the `berthd_registry_serve_*` tests, which start the real
//! `berthd registry serve` (`test_support::registry`). No root needed; tests skip with a
//! message when skopeo (or the berthd binary) is missing. `docker_cli_login_push_pull_run`
//! (root) drives a private Debian dockerd with the real docker CLI against the server.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
mod common;

use common::{Log, berth_router, logged};
use serde_json::Value;
use test_support::registry::{Registry, berthd_built, skopeo_available};

fn skopeo(args: &[&str]) -> Output {
    Command::new("skopeo").args(args).output().unwrap()
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "skopeo failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn json(out: &Output) -> Value {
    serde_json::from_str(&ok(out)).unwrap()
}

/// An in-process registry on 127.0.0.1:<random>, recording `METHOD path?query status` of
/// every request.
struct Server {
    port: u16,
    root: PathBuf,
    requests: Log,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    fn start(root: &Path) -> Self {
        Self::start_with(root, None)
    }

    fn start_with(root: &Path, htpasswd: Option<PathBuf>) -> Self {
        let (router, requests) = logged(berth_router(root, htpasswd), None);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            rt.block_on(registry::server::serve(listener, router, async {
                let _ = rx.await;
            }))
            .unwrap();
        });
        Self {
            port,
            root: root.to_path_buf(),
            requests,
            stop: Some(tx),
            thread: Some(thread),
        }
    }

    fn image(&self, repo_tag: &str) -> String {
        format!("docker://127.0.0.1:{}/{repo_tag}", self.port)
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// `skopeo inspect` of a docker-archive: its (uncompressed) layer digests.
fn archive_layers(archive: &Path) -> Value {
    let src = format!("docker-archive:{}", archive.display());
    json(&skopeo(&["inspect", &src]))["Layers"].clone()
}

fn has_request(reqs: &[String], prefix: &str, status: &str) -> bool {
    reqs.iter()
        .any(|r| r.starts_with(prefix) && r.ends_with(status))
}

#[test]
fn skopeo_push_inspect_list_and_pull_back() {
    if !skopeo_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let archive = test_support::fixtures::busybox_archive(dir.path());
    let src = format!("docker-archive:{}", archive.display());
    let server = Server::start(&dir.path().join("reg"));
    let dest = server.image("test/busybox:latest");

    ok(&skopeo(&["copy", "--dest-tls-verify=false", &src, &dest]));
    // skopeo uploads through a session: POST, PATCH, PUT, then the manifest.
    let reqs = server.requests();
    let uploads = "/v2/test/busybox/blobs/uploads/";
    assert!(
        has_request(&reqs, &format!("POST {uploads}"), "202"),
        "{reqs:?}"
    );
    assert!(
        has_request(&reqs, &format!("PATCH {uploads}"), "202"),
        "{reqs:?}"
    );
    assert!(
        has_request(&reqs, &format!("PUT {uploads}"), "201"),
        "{reqs:?}"
    );
    assert!(
        has_request(&reqs, "PUT /v2/test/busybox/manifests/latest", "201"),
        "{reqs:?}"
    );

    // inspect: the same image (same layers' diff IDs) as the archive.
    let remote = json(&skopeo(&["inspect", "--tls-verify=false", &dest]));
    assert_eq!(remote["RepoTags"], serde_json::json!(["latest"]));
    let local_config = json(&skopeo(&["inspect", "--config", &src]));
    let remote_config = json(&skopeo(&[
        "inspect",
        "--config",
        "--tls-verify=false",
        &dest,
    ]));
    assert_eq!(local_config["rootfs"], remote_config["rootfs"]);
    // The manifest and every layer are in the blob store.
    let raw: Value = serde_json::from_str(&ok(&skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &dest,
    ])))
    .unwrap();
    let blobs = server.root.join("blobs/sha256");
    let digest = remote["Digest"].as_str().unwrap();
    assert!(blobs.join(digest.trim_start_matches("sha256:")).is_file());
    for layer in raw["layers"].as_array().unwrap() {
        let hex = layer["digest"].as_str().unwrap();
        assert!(blobs.join(hex.trim_start_matches("sha256:")).is_file());
    }

    // list-tags, after a second tag.
    ok(&skopeo(&[
        "copy",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        &dest,
        &server.image("test/busybox:v2"),
    ]));
    let tags = json(&skopeo(&[
        "list-tags",
        "--tls-verify=false",
        &server.image("test/busybox"),
    ]));
    assert_eq!(tags["Tags"], serde_json::json!(["latest", "v2"]));

    // Pull back out: to an OCI layout and to a docker-archive with the source's layers.
    let oci = dir.path().join("oci");
    ok(&skopeo(&[
        "copy",
        "--src-tls-verify=false",
        &dest,
        &format!("oci:{}:x", oci.display()),
    ]));
    let index: Value =
        serde_json::from_str(&std::fs::read_to_string(oci.join("index.json")).unwrap()).unwrap();
    assert_eq!(index["manifests"].as_array().unwrap().len(), 1);
    let back = dir.path().join("back.tar");
    ok(&skopeo(&[
        "copy",
        "--src-tls-verify=false",
        &dest,
        &format!("docker-archive:{}:test/busybox:latest", back.display()),
    ]));
    assert_eq!(archive_layers(&back), archive_layers(&archive));
}

#[test]
fn skopeo_copy_between_repositories_mounts_blobs() {
    if !skopeo_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // The biggest image at hand: nginx from ../shared (several layers), else busybox.
    let archive = match test_support::fixtures::shared_image("nginx.tar.gz") {
        Some(gz) => {
            let tar = dir.path().join("nginx.tar");
            let status = Command::new("sh")
                .arg("-c")
                .arg(format!("gzip -dc '{}' > '{}'", gz.display(), tar.display()))
                .status()
                .unwrap();
            assert!(status.success());
            tar
        }
        None => {
            eprintln!("nginx.tar.gz absent: using busybox");
            test_support::fixtures::busybox_archive(dir.path())
        }
    };
    let server = Server::start(&dir.path().join("reg"));
    let src = server.image("library/nginx:latest");
    let from = format!("docker-archive:{}", archive.display());
    ok(&skopeo(&["copy", "--dest-tls-verify=false", &from, &src]));
    let before = server.requests().len();
    let mirror = server.image("mirror/nginx:1");
    ok(&skopeo(&[
        "copy",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        &src,
        &mirror,
    ]));
    let reqs = server.requests()[before..].to_vec();
    // Every layer was mounted from library/nginx, not uploaded again (skopeo re-uploads the
    // small config blob: it does not try to mount configs).
    let raw: Value = serde_json::from_str(&ok(&skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &src,
    ])))
    .unwrap();
    let layers = raw["layers"].as_array().unwrap().len();
    let mounts = reqs
        .iter()
        .filter(|r| r.starts_with("POST /v2/mirror/nginx/blobs/uploads/") && r.ends_with("201"))
        .count();
    assert_eq!(mounts, layers, "{reqs:?}");
    let patches = reqs.iter().filter(|r| r.starts_with("PATCH")).count();
    assert!(patches <= 1, "{reqs:?}");
    let a = json(&skopeo(&["inspect", "--tls-verify=false", &src]));
    let b = json(&skopeo(&["inspect", "--tls-verify=false", &mirror]));
    assert_eq!(a["Digest"], b["Digest"]);
    assert_eq!(a["Layers"], b["Layers"]);
    // Pull the copy out and compare with the source archive.
    let back = dir.path().join("back.tar");
    ok(&skopeo(&[
        "copy",
        "--src-tls-verify=false",
        &mirror,
        &format!("docker-archive:{}:nginx:latest", back.display()),
    ]));
    assert_eq!(archive_layers(&back), archive_layers(&archive));
}

#[test]
fn berthd_registry_serve_with_htpasswd() {
    if !skopeo_available() {
        return;
    }
    if !berthd_built() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let hash = bcrypt::hash("pw", 4).unwrap();
    let server = Registry::berth_with()
        .htpasswd(&format!("tester:{hash}\n"))
        .start();
    let archive = test_support::fixtures::busybox_archive(dir.path());
    let src = format!("docker-archive:{}", archive.display());
    let dest = format!("docker://{}/auth/busybox:latest", server.addr());
    let insecure = "--dest-tls-verify=false";
    // Without credentials, or with wrong ones: refused.
    let out = skopeo(&["copy", insecure, &src, &dest]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr).to_lowercase();
    assert!(
        err.contains("unauthorized") || err.contains("authentication"),
        "{err}"
    );
    let out = skopeo(&["copy", insecure, "--dest-creds", "tester:nope", &src, &dest]);
    assert!(!out.status.success());
    // With the right ones: accepted.
    ok(&skopeo(&[
        "copy",
        insecure,
        "--dest-creds",
        "tester:pw",
        &src,
        &dest,
    ]));
    let tags = json(&skopeo(&[
        "list-tags",
        "--tls-verify=false",
        "--creds",
        "tester:pw",
        &format!("docker://{}/auth/busybox", server.addr()),
    ]));
    assert_eq!(tags["Tags"], serde_json::json!(["latest"]));
}

#[test]
fn berthd_registry_serve_over_tls() {
    if !skopeo_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    std::fs::create_dir(&certs).unwrap();
    let (cert, key) = (certs.join("ca.crt"), dir.path().join("key.pem"));
    // A self-signed certificate for 127.0.0.1, trusted by skopeo through --cert-dir.
    let made = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args(["-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"])
        .args(["-addext", "subjectAltName=IP:127.0.0.1"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output();
    if !made.as_ref().is_ok_and(|o| o.status.success()) {
        eprintln!("skipping: openssl cannot make a test certificate: {made:?}");
        return;
    }
    if !berthd_built() {
        return;
    }
    let server = Registry::berth_with().tls(&cert, &key).start();
    let archive = test_support::fixtures::busybox_archive(dir.path());
    let src = format!("docker-archive:{}", archive.display());
    let dest = format!("docker://{}/tls/busybox:latest", server.addr());
    let cert_dir = certs.to_str().unwrap();
    // Verified TLS: the push and an inspect succeed with the certificate trusted...
    ok(&skopeo(&["copy", "--dest-cert-dir", cert_dir, &src, &dest]));
    let remote = json(&skopeo(&["inspect", "--cert-dir", cert_dir, &dest]));
    assert_eq!(remote["RepoTags"], serde_json::json!(["latest"]));
    // ...and fail verification without it.
    let out = skopeo(&["inspect", &dest]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("certificate"), "{err}");
}

/// A private dockerd (Debian's docker.io) on its own socket, data and exec roots; stopped
/// with SIGTERM (so it unmounts what it mounted) on drop.
struct Dockerd {
    child: std::process::Child,
    dir: PathBuf,
}

impl Dockerd {
    fn start(dir: &Path) -> Option<Self> {
        std::fs::create_dir_all(dir).unwrap();
        let Ok(child) = Command::new("dockerd")
            .arg("--data-root")
            .arg(dir.join("data"))
            .arg("--exec-root")
            .arg(dir.join("exec"))
            .arg("--pidfile")
            .arg(dir.join("dockerd.pid"))
            .arg("-H")
            .arg(format!("unix://{}", dir.join("docker.sock").display()))
            .args(["--bridge", "none", "--iptables=false", "--ip6tables=false"])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("dockerd.log")).unwrap())
            .spawn()
        else {
            eprintln!("skipping: dockerd is not installed");
            return None;
        };
        let d = Self {
            child,
            dir: dir.to_path_buf(),
        };
        for _ in 0..100 {
            if d.docker(&["version"]).status.success() {
                return Some(d);
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        let log = std::fs::read_to_string(dir.join("dockerd.log")).unwrap_or_default();
        panic!("dockerd did not come up: {log}");
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new(test_support::daemon::docker_cli());
        c.env("DOCKER_CONFIG", self.dir.join("cli")).env(
            "DOCKER_HOST",
            format!("unix://{}", self.dir.join("docker.sock").display()),
        );
        c
    }

    fn docker(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().unwrap()
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

#[test]
fn docker_cli_login_push_pull_run() {
    test_support::require_root!();
    let dir = tempfile::tempdir().unwrap();
    let htpasswd = dir.path().join("htpasswd");
    let hash = bcrypt::hash("pw", 4).unwrap();
    std::fs::write(&htpasswd, format!("pusher:{hash}\n")).unwrap();
    let server = Server::start_with(&dir.path().join("reg"), Some(htpasswd));
    let Some(d) = Dockerd::start(&dir.path().join("docker")) else {
        return;
    };
    let archive = test_support::fixtures::busybox_archive(dir.path());
    ok(&d.docker(&["load", "-i", archive.to_str().unwrap()]));
    let id = ok(&d.docker(&["image", "inspect", "-f", "{{.Id}}", "busybox:latest"]));
    let host = format!("127.0.0.1:{}", server.port);
    let image = format!("{host}/team/busybox:1");
    ok(&d.docker(&["tag", "busybox:latest", &image]));

    // Without logging in: refused.
    let out = d.docker(&["push", &image]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(err.contains("no basic auth credentials"), "{err}");
    // Wrong password, then the right one.
    let login = |pw: &str| {
        let mut c = d.cmd();
        c.args(["login", "-u", "pusher", "--password-stdin", &host])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().unwrap();
        use std::io::Write as _;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(pw.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    assert!(!login("wrong").status.success());
    assert!(ok(&login("pw")).contains("Login Succeeded"));

    let pushed = ok(&d.docker(&["push", &image]));
    assert!(pushed.contains("1: digest: sha256:"), "{pushed}");
    let tag = server.root.join("repositories/team/busybox/_tags/1");
    let digest = std::fs::read_to_string(tag).unwrap();
    assert!(pushed.contains(digest.trim()), "{pushed} vs {digest}");

    // Remove, pull back: the same image, and it runs.
    ok(&d.docker(&["rmi", &image]));
    ok(&d.docker(&["rmi", "busybox:latest"]));
    let pulled = ok(&d.docker(&["pull", &image]));
    assert!(pulled.contains(digest.trim()), "{pulled}");
    let id2 = ok(&d.docker(&["image", "inspect", "-f", "{{.Id}}", &image]));
    assert_eq!(id, id2);
    let out = ok(&d.docker(&["run", "--rm", "--network", "none", &image, "echo", "hi"]));
    assert_eq!(out.trim(), "hi");
    ok(&d.docker(&["rmi", &image]));
}
