//! Pushes through berthd that reuse what was pulled, via the docker CLI: an image pulled from
//! one repository and pushed to another of the same registry mounts its layers (`Mounted
//! from …`, no layer bytes sent), also after a berthd restart between pull and push (the
//! distribution metadata is persisted); a large layer goes up in `PATCH` chunks and comes back
//! intact. Against berth's registry server (whose debug log records every request) and
//! Debian's `docker-registry`.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use test_support::daemon::{TestDaemon, bin_path, ok};
use test_support::require_root;

/// A registry process on 127.0.0.1; killed on drop.
struct Registry {
    child: Child,
    port: u16,
    /// berth's registry: its stderr, with one `registry request` line per request.
    log: Option<PathBuf>,
    _dir: tempfile::TempDir,
}

impl Registry {
    /// `berthd registry serve` on a free port, logging requests.
    fn berth() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("registry.log");
        let mut child = Command::new(bin_path("berthd"))
            .args(["registry", "serve", "--addr", "127.0.0.1:0", "--root"])
            .arg(dir.path().join("reg"))
            .env("RUST_LOG", "registry=debug")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .strip_prefix("listening on 127.0.0.1:")
            .and_then(|p| p.parse().ok());
        let Some(port) = port else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("unexpected first line {line:?}");
        };
        Self {
            child,
            port,
            log: Some(log),
            _dir: dir,
        }
    }

    /// Debian's `docker-registry`, or `None` when it is not installed.
    fn debian() -> Option<Self> {
        let bin = Path::new("/usr/bin/docker-registry");
        if !bin.exists() {
            eprintln!("skipping: {} not installed", bin.display());
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
                dir.path().join("data").display()
            ),
        )
        .unwrap();
        let child = Command::new(bin)
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let reg = Self {
            child,
            port,
            log: None,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "nothing listens on {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(reg)
    }

    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The requests logged so far, as `METHOD path status`.
    fn requests(&self) -> Vec<String> {
        let Some(log) = &self.log else {
            return Vec::new();
        };
        let text = std::fs::read_to_string(log).unwrap();
        let field = |line: &str, name: &str| {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(&format!("{name}=")))
                .map(|v| v.trim_matches('"').to_string())
                .unwrap_or_default()
        };
        text.lines()
            .filter(|l| l.contains("registry request"))
            .map(|l| {
                format!(
                    "{} {} {}",
                    field(l, "method"),
                    field(l, "path"),
                    field(l, "status")
                )
            })
            .collect()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `<tag>: digest: sha256:… size: N` line's digest.
fn pushed_digest(out: &str, tag: &str) -> String {
    let line = out
        .lines()
        .find(|l| l.starts_with(&format!("{tag}: digest: sha256:")))
        .unwrap_or_else(|| panic!("no digest line for {tag} in {out}"));
    line.split_whitespace().nth(2).unwrap().to_string()
}

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
    let before = reg.requests().len();
    let out = ok(&d.docker(&["push", &dst]));
    eprintln!("push to dst:\n{out}");
    assert!(
        out.contains(&format!("The push refers to repository [{dst}]")),
        "{out}"
    );
    assert!(out.contains(": Mounted from src/bb"), "{out}");
    assert!(!out.contains(": Pushed"), "{out}");
    assert_eq!(pushed_digest(&out, "latest"), digest, "{out}");
    if reg.log.is_some() {
        let reqs = reg.requests()[before..].to_vec();
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
    let reg = Registry::berth();
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
    let before = reg.requests().len();
    let out = ok(&d.docker(&["push", &name]));
    assert!(out.contains(": Pushed"), "{out}");
    let digest = pushed_digest(&out, "latest");
    if reg.log.is_some() {
        let reqs = reg.requests()[before..].to_vec();
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
    let reg = Registry::berth();
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
