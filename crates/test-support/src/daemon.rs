//! A real `berthd` on a temporary socket, data root and exec root, driven through the real
//! docker CLI and through `berth`. Each [`TestDaemon`] owns its directory and its process and
//! ends only that process (by pid) when dropped.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// Path of a binary built by this workspace (`target/<profile>/<name>`).
pub fn bin_path(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    // target/<profile>/deps/<test> → target/<profile>/<name>
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "{} is missing: run `cargo build --workspace --bins` first",
        path.display()
    );
    path
}

/// The real docker CLI used by end-to-end tests.
pub fn docker_cli() -> PathBuf {
    let p = PathBuf::from("/usr/local/bin/docker");
    if p.is_file() {
        p
    } else {
        PathBuf::from("docker")
    }
}

/// A running berthd of our own.
pub struct TestDaemon {
    dir: tempfile::TempDir,
    child: Option<Child>,
    /// The unix socket it listens on.
    pub socket: PathBuf,
    /// Its data root.
    pub data_root: PathBuf,
    /// Its exec root.
    pub exec_root: PathBuf,
    /// Its own default bridge interface (`-b`), never shared with another daemon.
    pub bridge: String,
    /// Its default bridge's subnet prefix: `10.<n>` (`--bip 10.<n>.0.1/24`; user networks
    /// from `10.<n>.128.0/17` in /24s).
    pub net_prefix: String,
    /// Flags given at start, given again by [`TestDaemon::restart`].
    flags: Vec<String>,
}

/// Networking flags of their own for each test daemon: a bridge name, a default bridge subnet
/// and an address pool that no other daemon of this process (or, most likely, of another
/// test process) uses.
fn network_flags() -> (String, String, Vec<String>) {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let pid = std::process::id();
    let bridge = format!("bt{}x{n}", pid % 1_000_000);
    let octet = 100 + (pid.wrapping_add(n.wrapping_mul(7))) % 150;
    let prefix = format!("10.{octet}");
    let flags = vec![
        "-b".to_string(),
        bridge.clone(),
        "--bip".to_string(),
        format!("{prefix}.0.1/24"),
        "--default-address-pool".to_string(),
        format!("base={prefix}.128.0/17,size=24"),
    ];
    (bridge, prefix, flags)
}

impl TestDaemon {
    /// Starts berthd with a fresh data root; waits until it answers `/_ping`.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Starts berthd with extra flags.
    pub fn start_with(extra: &[&str]) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("berth-e2e-")
            .tempdir_in("/tmp")
            .expect("tempdir");
        let data_root = dir.path().join("root");
        Self::start_in(dir, data_root, extra, &[])
    }

    /// Starts berthd with extra flags and environment variables (e.g. `HTTPS_PROXY` pointing
    /// at a closed port, so anything beyond loopback fails at once, whatever the network).
    pub fn start_with_env(extra: &[&str], env: &[(&str, &str)]) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("berth-e2e-")
            .tempdir_in("/tmp")
            .expect("tempdir");
        let data_root = dir.path().join("root");
        Self::start_in(dir, data_root, extra, env)
    }

    /// Starts berthd on an existing data root (e.g. to test restarts), in a new temp dir.
    pub fn start_on(data_root: &Path, extra: &[&str]) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("berth-e2e-")
            .tempdir_in("/tmp")
            .expect("tempdir");
        Self::start_in(dir, data_root.to_path_buf(), extra, &[])
    }

    fn start_in(
        dir: tempfile::TempDir,
        data_root: PathBuf,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Self {
        let socket = dir.path().join("berth.sock");
        let exec_root = dir.path().join("exec");
        // An empty daemon.json of its own, so the host's /etc/berth/daemon.json never applies.
        let config = dir.path().join("daemon.json");
        std::fs::write(&config, "{}\n").expect("write daemon.json");
        let (bridge, net_prefix, mut flags) = network_flags();
        flags.extend(extra.iter().map(|s| s.to_string()));
        let child = Command::new(bin_path("berthd"))
            .arg("-H")
            .arg(format!("unix://{}", socket.display()))
            .arg("--data-root")
            .arg(&data_root)
            .arg("--exec-root")
            .arg(&exec_root)
            .arg("--pidfile")
            .arg(dir.path().join("berthd.pid"))
            .arg("--config-file")
            .arg(&config)
            .args(&flags)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("berthd.log")).expect("log file"))
            .spawn()
            .expect("spawn berthd");
        let mut d = Self {
            dir,
            child: Some(child),
            socket,
            data_root,
            exec_root,
            bridge,
            net_prefix,
            flags,
        };
        d.wait_ready();
        d
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!("berthd exited early with {status}:\n{}", self.log());
            }
            if ping(&self.socket) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("berthd did not answer within 20 s:\n{}", self.log());
    }

    /// The temp directory this daemon lives in.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `unix://<socket>`.
    pub fn host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    /// berthd's pid.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// What berthd logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("berthd.log")).unwrap_or_default()
    }

    fn client(&self, bin: PathBuf) -> Command {
        let mut c = Command::new(bin);
        c.env("DOCKER_HOST", self.host())
            .env("BERTH_HOST", self.host())
            .env("DOCKER_CONFIG", self.dir.path().join("docker-config"))
            .env_remove("DOCKER_API_VERSION")
            .env_remove("DOCKER_CONTEXT")
            .stdin(Stdio::null());
        c
    }

    /// A `docker` command pointed at this daemon.
    pub fn docker_cmd(&self) -> Command {
        self.client(docker_cli())
    }

    /// A `berth` command pointed at this daemon.
    pub fn berth_cmd(&self) -> Command {
        self.client(bin_path("berth"))
    }

    /// Runs `docker ARGS` and returns its output.
    pub fn docker(&self, args: &[&str]) -> Output {
        self.docker_cmd().args(args).output().expect("run docker")
    }

    /// Runs `berth ARGS` and returns its output.
    pub fn berth(&self, args: &[&str]) -> Output {
        self.berth_cmd().args(args).output().expect("run berth")
    }

    /// Loads busybox:latest (the shared archive, or one made from busybox-static).
    pub fn load_busybox(&self) {
        let archive = crate::fixtures::busybox_archive(self.dir());
        ok(&self.docker(&["load", "-i", &archive.to_string_lossy()]));
    }

    /// Removes every container of this daemon (`docker rm -f`), so no container process or
    /// mount outlives it.
    pub fn rm_all(&self) {
        let ids = ok(&self.docker(&["ps", "-aq"]));
        let ids: Vec<&str> = ids.split_whitespace().collect();
        if !ids.is_empty() {
            let mut args = vec!["rm", "-f"];
            args.extend(ids);
            ok(&self.docker(&args));
        }
    }

    /// The environment a client run by hand (under a pty, from a shell) needs to reach this
    /// daemon as `docker` and `berth`.
    pub fn client_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("DOCKER_HOST", self.host()),
            ("BERTH_HOST", self.host()),
            (
                "DOCKER_CONFIG",
                self.dir
                    .path()
                    .join("docker-config")
                    .to_string_lossy()
                    .into_owned(),
            ),
            ("TERM", "xterm".to_string()),
        ]
    }

    /// Stops berthd and starts it again on the same socket, data root, exec root and flags,
    /// as a real daemon restart: running containers keep running in between.
    pub fn restart(&mut self) {
        self.stop();
        let dir = self.dir.path();
        let child = Command::new(bin_path("berthd"))
            .arg("-H")
            .arg(format!("unix://{}", self.socket.display()))
            .arg("--data-root")
            .arg(&self.data_root)
            .arg("--exec-root")
            .arg(&self.exec_root)
            .arg("--pidfile")
            .arg(dir.join("berthd.pid"))
            .arg("--config-file")
            .arg(dir.join("daemon.json"))
            .args(&self.flags)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(
                std::fs::OpenOptions::new()
                    .append(true)
                    .open(dir.join("berthd.log"))
                    .expect("log file"),
            )
            .spawn()
            .expect("spawn berthd");
        self.child = Some(child);
        self.wait_ready();
    }

    /// Kills berthd with SIGKILL (a crash: nothing of its shutdown runs) and reaps it. The
    /// containers' monitors live on; [`TestDaemon::restart`] starts berthd again.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends SIGTERM and waits (up to 20 s) for berthd to exit.
    pub fn stop(&mut self) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        let pid = Pid::from_raw(i32::try_from(child.id()).ok()?);
        let _ = kill(pid, Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                return child.wait().ok();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for TestDaemon {
    /// Removes the daemon's containers first (best effort, also when a test failed half-way:
    /// containers outlive berthd by design, so they would stay running with their mounts and
    /// cgroups), then stops it.
    fn drop(&mut self) {
        if self.child.is_some()
            && let Ok(out) = self.docker_cmd().args(["ps", "-aq"]).output()
        {
            let ids = String::from_utf8_lossy(&out.stdout).into_owned();
            let ids: Vec<&str> = ids.split_whitespace().collect();
            if !ids.is_empty() {
                let _ = self.docker_cmd().args(["rm", "-f"]).args(&ids).output();
            }
        }
        self.stop();
        self.remove_bridges();
    }
}

impl TestDaemon {
    /// Deletes the bridges this daemon made (its default bridge and its user networks'), as
    /// berthd keeps them across restarts like dockerd keeps docker0, and its nftables table.
    fn remove_bridges(&self) {
        let mut bridges = vec![self.bridge.clone()];
        if let Ok(rd) = std::fs::read_dir(self.data_root.join("networks")) {
            for e in rd.flatten() {
                let Ok(text) = std::fs::read_to_string(e.path()) else {
                    continue;
                };
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(&text)
                    && let Some(b) = v["bridge"].as_str()
                    && !b.is_empty()
                    && !bridges.iter().any(|x| x == b)
                {
                    bridges.push(b.to_string());
                }
            }
        }
        for b in bridges {
            let _ = Command::new("ip")
                .args(["link", "del", &b])
                .stderr(Stdio::null())
                .status();
        }
        // Its nftables table too: berthd keeps it when it stops with containers running (a
        // test that hands its containers to a second daemon on the same data root).
        let _ = Command::new("nft")
            .args(["delete", "table", "ip", &format!("berth-{}", self.bridge)])
            .stderr(Stdio::null())
            .status();
    }
}

/// Runs berthd with `args` on its own roots, expecting it to exit with an error; returns its
/// stderr.
pub fn start_fails(args: &[&str]) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = |n: &str| dir.path().join(n);
    std::fs::write(p("daemon.json"), "{}").expect("write daemon.json");
    let mut child = Command::new(bin_path("berthd"))
        .args(args)
        .arg("-H")
        .arg(format!("unix://{}", p("s.sock").display()))
        .arg("--data-root")
        .arg(p("root"))
        .arg("--exec-root")
        .arg(p("exec"))
        .arg("--pidfile")
        .arg(p("pid"))
        .arg("--config-file")
        .arg(p("daemon.json"))
        .args(["-b", "none", "--iptables=false"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn berthd");
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().expect("wait for berthd").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("berthd {args:?} kept running");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().expect("wait for berthd");
    assert!(!out.status.success(), "berthd {args:?} exited 0");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The interfaces enslaved to `bridge` (the host ends of its veths), sorted; empty when the
/// bridge does not exist.
pub fn bridge_ports(bridge: &str) -> Vec<String> {
    let mut v: Vec<String> =
        std::fs::read_dir(Path::new("/sys/class/net").join(bridge).join("brif"))
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
    v.sort();
    v
}

/// Whether something answers `GET /_ping` with 200 on this socket.
pub fn ping(socket: &Path) -> bool {
    let Ok(mut s) = UnixStream::connect(socket) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET /_ping HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    buf.starts_with(b"HTTP/1.1 200")
}

/// Asserts a command succeeded and returns its stdout as text.
pub fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "command failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Asserts a command failed and returns its stderr as text.
pub fn fails(out: &Output) -> String {
    assert!(
        !out.status.success(),
        "command unexpectedly succeeded:\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Whether nothing is mounted at or below `root` (in this mount namespace).
pub fn no_mounts_under(root: &Path) -> bool {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let root = root.to_string_lossy();
    !info
        .lines()
        .any(|l| l.split(' ').nth(4).is_some_and(|m| m.starts_with(&*root)))
}
