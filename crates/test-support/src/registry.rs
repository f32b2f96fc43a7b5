//! Registries for tests, on 127.0.0.1: berth's own (`berthd registry serve`, with the options
//! the tests need: an htpasswd file, TLS with an optional client CA, a request log) and
//! Debian's `docker-registry` (skipped when not installed), plus what the tests use around
//! them: `skopeo copy` of a docker-archive into a registry, loopback port helpers, and the
//! digest of a `docker push` output.
//!
//! Each registry is a child process killed (and reaped) by its pid when dropped; its storage,
//! configuration and log live in a tempdir removed after it. This module knows nothing of the
//! daemon under test: tests point berthd (or skopeo) at [`Registry::addr`].

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::daemon::bin_path;

/// How long a registry may take to listen.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A registry process on 127.0.0.1; killed on drop.
pub struct Registry {
    child: Child,
    port: u16,
    /// berth's registry with [`BerthRegistry::log_requests`]: its stderr.
    log: Option<PathBuf>,
    _dir: tempfile::TempDir,
}

/// Options for `berthd registry serve`; [`BerthRegistry::start`] runs it on a free port.
#[derive(Debug, Default)]
#[must_use]
pub struct BerthRegistry {
    htpasswd: Option<String>,
    tls: Option<(PathBuf, PathBuf)>,
    client_ca: Option<PathBuf>,
    log_requests: bool,
}

impl BerthRegistry {
    /// Requires basic auth: `contents` (`user:bcrypt-hash` lines) becomes its `--htpasswd` file.
    pub fn htpasswd(mut self, contents: &str) -> Self {
        self.htpasswd = Some(contents.to_string());
        self
    }

    /// Speaks only TLS, with this certificate and key (`--tls-cert`, `--tls-key`).
    pub fn tls(mut self, cert: &Path, key: &Path) -> Self {
        self.tls = Some((cert.to_path_buf(), key.to_path_buf()));
        self
    }

    /// Requires a client certificate signed by `ca` (`--tls-client-ca`; goes with [`Self::tls`]).
    pub fn tls_client_ca(mut self, ca: &Path) -> Self {
        self.client_ca = Some(ca.to_path_buf());
        self
    }

    /// Logs every request (`RUST_LOG=registry=debug` on stderr, kept in a file) for
    /// [`Registry::requests`].
    pub fn log_requests(mut self) -> Self {
        self.log_requests = true;
        self
    }

    /// Starts it on a port the kernel picks, read from its first stdout line.
    pub fn start(self) -> Registry {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cmd = Command::new(bin_path("berthd"));
        cmd.args(["registry", "serve", "--addr", "127.0.0.1:0", "--root"])
            .arg(dir.path().join("reg"));
        if let Some(contents) = &self.htpasswd {
            let file = dir.path().join("htpasswd");
            std::fs::write(&file, contents).expect("write htpasswd");
            cmd.arg("--htpasswd").arg(file);
        }
        if let Some((cert, key)) = &self.tls {
            cmd.arg("--tls-cert").arg(cert).arg("--tls-key").arg(key);
        }
        if let Some(ca) = &self.client_ca {
            cmd.arg("--tls-client-ca").arg(ca);
        }
        let log = self.log_requests.then(|| dir.path().join("registry.log"));
        match &log {
            Some(path) => {
                let file = std::fs::File::create(path).expect("create registry log");
                cmd.env("RUST_LOG", "registry=debug").stderr(file);
            }
            None => {
                cmd.stderr(Stdio::null());
            }
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn berthd registry serve");
        let mut line = String::new();
        if let Some(out) = child.stdout.take() {
            let _ = BufReader::new(out).read_line(&mut line);
        }
        let port = line
            .trim()
            .strip_prefix("listening on 127.0.0.1:")
            .and_then(|p| p.parse().ok());
        let Some(port) = port else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("berthd registry serve: unexpected first line {line:?}");
        };
        Registry {
            child,
            port,
            log,
            _dir: dir,
        }
    }
}

impl Registry {
    /// `berthd registry serve` on a free port, plain HTTP, no auth.
    pub fn berth() -> Self {
        Self::berth_with().start()
    }

    /// `berthd registry serve` with options; call [`BerthRegistry::start`].
    pub fn berth_with() -> BerthRegistry {
        BerthRegistry::default()
    }

    /// Debian's `docker-registry` (plain HTTP, deletes enabled), or `None` when it is not
    /// installed.
    pub fn debian() -> Option<Self> {
        let bin = Path::new("/usr/bin/docker-registry");
        if !bin.exists() {
            eprintln!("skipping: {} not installed", bin.display());
            return None;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
                dir.path().join("data").display()
            ),
        )
        .expect("write registry config");
        let child = Command::new(bin)
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn docker-registry");
        let reg = Self {
            child,
            port,
            log: None,
            _dir: dir,
        };
        wait_port(port);
        Some(reg)
    }

    /// `127.0.0.1:<port>`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The requests served so far, as `METHOD path status`, when it logs them
    /// ([`BerthRegistry::log_requests`]); `None` for a registry that does not.
    pub fn requests(&self) -> Option<Vec<String>> {
        let log = self.log.as_ref()?;
        let text = std::fs::read_to_string(log).expect("read registry log");
        Some(parse_request_log(&text))
    }

    /// Copies a docker-archive into `<addr>/<repo_tag>` over plain HTTP with skopeo.
    pub fn push_archive(&self, archive: &Path, repo_tag: &str) {
        skopeo_copy(
            archive,
            &format!("{}/{repo_tag}", self.addr()),
            &["--dest-tls-verify=false"],
        );
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `METHOD path status` of each `registry request` line of berth's registry debug log.
fn parse_request_log(text: &str) -> Vec<String> {
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

/// Whether `target/<profile>/berthd` is built; says why the test skips when it is not (for
/// tests outside the e2e crate, which may run before `cargo build --bins`).
pub fn berthd_built() -> bool {
    let exe = std::env::current_exe().expect("current_exe");
    // target/<profile>/deps/<test> → target/<profile>/berthd
    let Some(bin) = exe
        .parent()
        .and_then(Path::parent)
        .map(|d| d.join("berthd"))
    else {
        return false;
    };
    let built = bin.is_file();
    if !built {
        eprintln!("skipping: {} not built (cargo build --bins)", bin.display());
    }
    built
}

/// Whether `name` can be run (`name --version` starts); says that the test skips when not.
pub fn tool_available(name: &str) -> bool {
    let found = Command::new(name)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !found {
        eprintln!("skipping: {name} not installed");
    }
    found
}

/// Whether skopeo is installed (see [`tool_available`]).
pub fn skopeo_available() -> bool {
    tool_available("skopeo")
}

/// Copies a docker-archive to `docker://<dest>` with skopeo; `flags` are copy's own (TLS,
/// certificates, credentials). Panics with skopeo's stderr when the copy fails.
pub fn skopeo_copy(archive: &Path, dest: &str, flags: &[&str]) {
    let out = Command::new("skopeo")
        .args(["--insecure-policy", "copy", "-q"])
        .args(flags)
        .arg(format!("docker-archive:{}", archive.display()))
        .arg(format!("docker://{dest}"))
        .output()
        .expect("run skopeo");
    assert!(
        out.status.success(),
        "skopeo copy: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A loopback port nothing listens on (bound, then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Waits (up to 30 s) until something accepts connections on 127.0.0.1:`port`.
pub fn wait_port(port: u16) {
    let deadline = Instant::now() + START_TIMEOUT;
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The digest of a push output's `<tag>: digest: sha256:… size: N` line.
pub fn pushed_digest(out: &str, tag: &str) -> String {
    let prefix = format!("{tag}: digest: sha256:");
    let line = out
        .lines()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no digest line for {tag} in {out}"));
    assert!(line.contains(" size: "), "{line}");
    line.split_whitespace()
        .nth(2)
        .unwrap_or_else(|| panic!("no digest in {line}"))
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pushed_digest_reads_the_tags_line() {
        let out = "The push refers to repository [h/r]\nabc: Pushed\nv1: digest: sha256:aa size: 527\nlatest: digest: sha256:bb size: 528\n";
        assert_eq!(pushed_digest(out, "latest"), "sha256:bb");
        assert_eq!(pushed_digest(out, "v1"), "sha256:aa");
    }

    #[test]
    #[should_panic(expected = "no digest line for v2")]
    fn pushed_digest_wants_the_line() {
        pushed_digest("v1: digest: sha256:aa size: 1\n", "v2");
    }

    #[test]
    fn request_log_lines_become_method_path_status() {
        let log = concat!(
            "2026-01-01T00:00:00Z  INFO registry::server: registry listening addr=127.0.0.1:5000\n",
            "2026-01-01T00:00:01Z DEBUG registry::server: registry request method=GET path=\"/v2/\" status=200\n",
            "2026-01-01T00:00:02Z DEBUG registry::server: registry request method=PATCH path=\"/v2/a/blobs/uploads/x\" status=202\n",
        );
        assert_eq!(
            parse_request_log(log),
            ["GET /v2/ 200", "PATCH /v2/a/blobs/uploads/x 202"]
        );
    }
}
