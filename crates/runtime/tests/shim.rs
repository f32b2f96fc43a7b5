//! Real containers through a real shim (root only: `BERTH_TEST_ROOT=1 cargo test -p runtime`).

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::path::{Path, PathBuf};
use std::time::Duration;

use runtime::logs::Stream;
use runtime::{AttachOptions, ContainerSpec, Resources, RuntimeError, Shim, ShimConfig};
use test_support::require_root;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn shim_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples/shim")
}

/// `berth-shim` beside the test binaries when it was built (`cargo build --bins`): the shim then
/// becomes it; without it the shim monitors in place.
fn monitor_binary() -> Option<PathBuf> {
    let exe = std::env::current_exe().unwrap();
    let bin = exe.parent()?.parent()?.join("berth-shim");
    bin.is_file().then_some(bin)
}

struct Env {
    _tmp: tempfile::TempDir,
    rootfs: PathBuf,
    dir: PathBuf,
    id: String,
}

fn env() -> Env {
    let tmp = tempfile::tempdir().unwrap();
    let rootfs = tmp.path().join("rootfs");
    std::fs::create_dir(&rootfs).unwrap();
    let tar = test_support::fixtures::busybox_rootfs(tmp.path());
    tar::Archive::new(std::fs::File::open(tar).unwrap())
        .unpack(&rootfs)
        .unwrap();
    let id = format!("t{:016x}", rand_u64());
    let dir = tmp.path().to_path_buf();
    Env {
        _tmp: tmp,
        rootfs,
        dir,
        id,
    }
}

fn rand_u64() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    (t.as_nanos() as u64) ^ (u64::from(std::process::id()) << 32)
}

impl Env {
    fn spec(&self, args: &[&str]) -> ContainerSpec {
        ContainerSpec {
            id: self.id.clone(),
            rootfs: self.rootfs.clone(),
            args: args.iter().map(|s| s.to_string()).collect(),
            env: vec!["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into()],
            cwd: "/".into(),
            hostname: "test".into(),
            cgroups_path: format!("/berth-test/{}", self.id),
            ..Default::default()
        }
    }

    fn config(&self, tty: bool, open_stdin: bool) -> ShimConfig {
        ShimConfig {
            id: self.id.clone(),
            state_dir: self.dir.join("state").join(&self.id),
            runtime_root: self.dir.join("runtime"),
            log_path: self.dir.join("log.json"),
            log_max_size: None,
            log_max_files: 1,
            tty,
            open_stdin,
            stdin_once: open_stdin,
            console_size: Some((24, 80)),
            gated: false,
            monitor: monitor_binary(),
        }
    }

    fn start(&self, c: &ContainerSpec, cfg: &ShimConfig) -> runtime::Result<Shim> {
        let spec = runtime::spec::build(c)?;
        Shim::start(&shim_binary(), cfg, &spec).map(|(s, started)| {
            assert!(started.pid > 0);
            s
        })
    }

    fn log(&self, stream: Stream) -> String {
        let lines = runtime::logs::read_all(&self.dir.join("log.json")).unwrap();
        let data: Vec<u8> = lines
            .into_iter()
            .filter(|l| l.stream == stream)
            .flat_map(|l| l.data)
            .collect();
        String::from_utf8_lossy(&data).into_owned()
    }

    fn assert_clean(&self, shim: &Shim) {
        shim.cleanup().unwrap();
        assert!(!shim.state_dir().exists());
        assert!(
            !self.dir.join("runtime").join(&self.id).exists(),
            "libcontainer state left"
        );
        for ctl in ["memory", "pids", "cpu"] {
            let p = Path::new("/sys/fs/cgroup")
                .join(ctl)
                .join("berth-test")
                .join(&self.id);
            assert!(!p.exists(), "cgroup left: {}", p.display());
        }
        // The shared parent goes too once no other test uses it (rmdir fails while busy).
        if let Ok(dirs) = std::fs::read_dir("/sys/fs/cgroup") {
            for d in dirs.flatten() {
                let _ = std::fs::remove_dir(d.path().join("berth-test"));
            }
        }
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn echo_hello_exits_zero_and_logs() {
    require_root!();
    let e = env();
    let shim = e
        .start(&e.spec(&["echo", "hello"]), &e.config(false, false))
        .unwrap();
    let st = rt().block_on(shim.wait()).unwrap();
    assert_eq!(st.exit_code, 0);
    assert!(!st.oom_killed);
    assert_eq!(e.log(Stream::Stdout), "hello\n");
    assert_eq!(shim.exit_status().unwrap(), st);
    e.assert_clean(&shim);
}

#[test]
fn stderr_and_exit_code() {
    require_root!();
    let e = env();
    let shim = e
        .start(
            &e.spec(&["sh", "-c", "echo err >&2; exit 3"]),
            &e.config(false, false),
        )
        .unwrap();
    let st = rt().block_on(shim.wait()).unwrap();
    assert_eq!(st.exit_code, 3);
    assert_eq!(e.log(Stream::Stderr), "err\n");
    e.assert_clean(&shim);
}

#[test]
fn missing_binary_fails_to_start_and_leaves_nothing() {
    require_root!();
    let e = env();
    let cfg = e.config(false, false);
    let err = e.start(&e.spec(&["nope"]), &cfg).unwrap_err();
    match &err {
        RuntimeError::StartFailed(m) => assert!(m.contains("executable file not found"), "{m}"),
        other => panic!("{other}"),
    }
    assert!(!cfg.state_dir.exists());
    let err = e.start(&e.spec(&["/nope"]), &cfg).unwrap_err();
    assert!(
        err.to_string().contains("no such file or directory"),
        "{err}"
    );
    std::fs::write(e.rootfs.join("noexec"), "x").unwrap();
    let err = e.start(&e.spec(&["/noexec"]), &cfg).unwrap_err();
    assert!(err.to_string().contains("permission denied"), "{err}");
    assert!(!cfg.state_dir.exists());
}

#[test]
fn sleep_killed_with_sigkill_is_137() {
    // PID 1 of a pid namespace ignores SIGTERM without a handler (as under Docker), so SIGKILL.
    require_root!();
    let e = env();
    let shim = e
        .start(&e.spec(&["sleep", "100"]), &e.config(false, false))
        .unwrap();
    assert!(shim.alive());
    let rt = rt();
    std::thread::sleep(Duration::from_millis(100));
    rt.block_on(shim.kill(9)).unwrap();
    let st = rt.block_on(shim.wait()).unwrap();
    assert_eq!(st.exit_code, 137);
    // (`alive()` may still see the exited shim as a zombie until its new parent reaps it.)
    assert!(matches!(
        rt.block_on(shim.kill(9)),
        Err(RuntimeError::NotRunning(_))
    ));
    e.assert_clean(&shim);
}

#[test]
fn attach_cat_echoes_frames_and_stdin_eof_ends_it() {
    require_root!();
    let e = env();
    let shim = e.start(&e.spec(&["cat"]), &e.config(false, true)).unwrap();
    let rt = rt();
    let out = rt.block_on(async {
        let opts = AttachOptions {
            stdin: true,
            stdout: true,
            stderr: true,
        };
        let mut s = shim.attach(opts).await.unwrap();
        s.write_all(b"ping\n").await.unwrap();
        s.shutdown().await.unwrap();
        let mut out = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out))
            .await
            .unwrap()
            .unwrap();
        out
    });
    assert_eq!(out, [&[1u8, 0, 0, 0, 0, 0, 0, 5][..], b"ping\n"].concat());
    let st = rt.block_on(shim.wait()).unwrap();
    assert_eq!(st.exit_code, 0);
    assert_eq!(e.log(Stream::Stdout), "ping\n");
    e.assert_clean(&shim);
}

#[test]
fn tty_gets_a_pty() {
    require_root!();
    let e = env();
    let mut c = e.spec(&["sh", "-c", "tty; stty size"]);
    c.tty = true;
    c.console_size = Some((24, 80));
    let shim = e.start(&c, &e.config(true, false)).unwrap();
    let st = rt().block_on(shim.wait()).unwrap();
    assert_eq!(st.exit_code, 0);
    let log = e.log(Stream::Stdout);
    assert!(log.contains("/dev/pts/0"), "{log:?}");
    assert!(log.contains("24 80"), "{log:?}");
    e.assert_clean(&shim);
}

#[test]
fn default_capabilities_and_memory_limit() {
    require_root!();
    let e = env();
    let mut c = e.spec(&[
        "sh",
        "-c",
        "grep CapEff /proc/self/status; cat /sys/fs/cgroup/memory/memory.limit_in_bytes",
    ]);
    c.resources = Resources {
        memory: 64 << 20,
        ..Default::default()
    };
    let shim = e.start(&c, &e.config(false, false)).unwrap();
    let limit_path = Path::new("/sys/fs/cgroup/memory/berth-test")
        .join(&e.id)
        .join("memory.limit_in_bytes");
    let seen = std::fs::read_to_string(&limit_path).ok();
    let st = rt().block_on(shim.wait()).unwrap();
    assert_eq!(st.exit_code, 0, "{}", e.log(Stream::Stderr));
    let log = e.log(Stream::Stdout);
    assert!(log.contains("CapEff:\t00000000a80425fb"), "{log:?}");
    assert!(log.contains("67108864"), "{log:?} (host saw {seen:?})");
    e.assert_clean(&shim);
}
