//! Exec processes in real containers through real shims (root only:
//! `BERTH_TEST_ROOT=1 cargo test -p runtime --test exec`).

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::path::{Path, PathBuf};
use std::time::Duration;

use runtime::logs::Stream;
use runtime::{AttachOptions, ContainerSpec, ExecSpec, RuntimeError, Shim, ShimConfig};
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

struct Env {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    id: String,
    shim: Shim,
}

const PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A running `sleep 100` container.
fn env() -> Env {
    let tmp = tempfile::tempdir().unwrap();
    let rootfs = tmp.path().join("rootfs");
    std::fs::create_dir(&rootfs).unwrap();
    let tar = test_support::fixtures::busybox_rootfs(tmp.path());
    tar::Archive::new(std::fs::File::open(tar).unwrap())
        .unpack(&rootfs)
        .unwrap();
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let id = format!(
        "x{:016x}",
        (t.as_nanos() as u64) ^ (u64::from(std::process::id()) << 32)
    );
    let dir = tmp.path().to_path_buf();
    let c = ContainerSpec {
        id: id.clone(),
        rootfs,
        args: vec!["sleep".into(), "100".into()],
        env: vec![PATH.into()],
        cwd: "/".into(),
        hostname: "test".into(),
        cgroups_path: format!("/berth-test/{id}"),
        ..Default::default()
    };
    let cfg = ShimConfig {
        id: id.clone(),
        state_dir: dir.join("state").join(&id),
        runtime_root: dir.join("runtime"),
        log_path: dir.join("log.json"),
        log_max_size: None,
        log_max_files: 1,
        ..Default::default()
    };
    let spec = runtime::spec::build(&c).unwrap();
    let (shim, _) = Shim::start(&shim_binary(), &cfg, &spec).unwrap();
    Env {
        _tmp: tmp,
        dir,
        id,
        shim,
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn exec(args: &[&str]) -> ExecSpec {
    ExecSpec {
        args: args.iter().map(ToString::to_string).collect(),
        env: vec![PATH.into()],
        ..Default::default()
    }
}

impl Env {
    fn spawn(&self, name: &str, spec: &ExecSpec) -> runtime::Result<Shim> {
        self.shim
            .spawn_exec(&shim_binary(), &self.dir.join("exec").join(name), spec)
    }

    /// Kills the container and checks that nothing is left.
    fn finish(self, rt: &tokio::runtime::Runtime) {
        rt.block_on(self.shim.kill(9)).unwrap();
        let st = rt.block_on(self.shim.wait()).unwrap();
        assert_eq!(st.exit_code, 137);
        self.shim.cleanup().unwrap();
        assert!(!self.dir.join("runtime").join(&self.id).exists());
        if let Ok(dirs) = std::fs::read_dir("/sys/fs/cgroup") {
            for d in dirs.flatten() {
                let _ = std::fs::remove_dir(d.path().join("berth-test"));
            }
        }
    }
}

async fn read_all(s: &mut tokio::net::UnixStream) -> Vec<u8> {
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out))
        .await
        .unwrap()
        .unwrap();
    out
}

fn frame(stream: u8, payload: &[u8]) -> Vec<u8> {
    let mut v = vec![stream, 0, 0, 0];
    v.extend((payload.len() as u32).to_be_bytes());
    v.extend_from_slice(payload);
    v
}

/// The stdout payloads of a multiplexed stream.
fn stdout_of(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while b.len() >= 8 {
        let n = u32::from_be_bytes([b[4], b[5], b[6], b[7]]) as usize;
        if b[0] == 1 {
            out.extend_from_slice(&b[8..8 + n]);
        }
        b = &b[8 + n..];
    }
    out
}

#[test]
fn output_exit_code_and_no_log() {
    require_root!();
    let e = env();
    let rt = rt();
    let x = e
        .spawn(
            "a",
            &exec(&["sh", "-c", "echo out; sleep 0.2; echo err >&2; exit 7"]),
        )
        .unwrap();
    let out = rt.block_on(async {
        let mut s = x
            .attach(AttachOptions {
                stdin: false,
                stdout: true,
                stderr: true,
            })
            .await
            .unwrap();
        let pid = x.start_process().await.unwrap();
        assert!(pid > 0);
        read_all(&mut s).await
    });
    assert_eq!(out, [frame(1, b"out\n"), frame(2, b"err\n")].concat());
    let st = rt.block_on(x.wait()).unwrap();
    assert_eq!(st.exit_code, 7);
    // The container keeps running, and its log has none of the exec's output.
    assert!(e.shim.alive());
    let log = runtime::logs::read_all(&e.dir.join("log.json")).unwrap_or_default();
    assert!(
        log.iter()
            .all(|l| l.stream != Stream::Stdout || l.data != b"out\n")
    );
    x.cleanup().unwrap();
    assert!(!x.state_dir().exists());
    e.finish(&rt);
}

#[test]
fn missing_binary_reports_docker_wording_and_leaves_no_shim() {
    require_root!();
    let e = env();
    let rt = rt();
    let x = e.spawn("b", &exec(&["nosuch"])).unwrap();
    let err = rt.block_on(x.start_process()).unwrap_err();
    match &err {
        RuntimeError::StartFailed(m) => assert_eq!(
            m,
            "OCI runtime exec failed: exec failed: unable to start container process: exec: \"nosuch\": executable file not found in $PATH: unknown"
        ),
        other => panic!("{other}"),
    }
    std::thread::sleep(Duration::from_millis(200));
    assert!(!x.alive());
    x.cleanup().unwrap();
    e.finish(&rt);
}

#[test]
fn stdin_user_cwd_env_and_tty() {
    require_root!();
    let e = env();
    let rt = rt();
    // stdin, half-closed.
    let mut spec = exec(&["cat"]);
    spec.open_stdin = true;
    let x = e.spawn("c", &spec).unwrap();
    let out = rt.block_on(async {
        let mut s = x
            .attach(AttachOptions {
                stdin: true,
                stdout: true,
                stderr: true,
            })
            .await
            .unwrap();
        s.write_all(b"data\n").await.unwrap();
        x.start_process().await.unwrap();
        s.shutdown().await.unwrap();
        read_all(&mut s).await
    });
    assert_eq!(out, frame(1, b"data\n"));
    assert_eq!(rt.block_on(x.wait()).unwrap().exit_code, 0);
    x.cleanup().unwrap();

    // user, working directory, environment.
    let mut spec = exec(&["sh", "-c", "id -u; id -g; pwd; echo $A"]);
    spec.uid = 65534;
    spec.gid = 65534;
    spec.additional_gids = vec![65534];
    spec.cwd = "/tmp".into();
    spec.env.push("A=hello".into());
    let x = e.spawn("d", &spec).unwrap();
    let out = rt.block_on(async {
        let mut s = x
            .attach(AttachOptions {
                stdin: false,
                stdout: true,
                stderr: true,
            })
            .await
            .unwrap();
        x.start_process().await.unwrap();
        read_all(&mut s).await
    });
    assert_eq!(stdout_of(&out), b"65534\n65534\n/tmp\nhello\n");
    x.cleanup().unwrap();

    // A pty, sized at creation.
    let mut spec = exec(&["sh", "-c", "tty; stty size"]);
    spec.tty = true;
    spec.console_size = Some((33, 99));
    let x = e.spawn("e", &spec).unwrap();
    let out = rt.block_on(async {
        let mut s = x
            .attach(AttachOptions {
                stdin: false,
                stdout: true,
                stderr: true,
            })
            .await
            .unwrap();
        x.start_process().await.unwrap();
        read_all(&mut s).await
    });
    let text = String::from_utf8_lossy(&out);
    assert!(text.contains("/dev/pts/"), "{text:?}");
    assert!(text.contains("33 99"), "{text:?}");
    x.cleanup().unwrap();
    e.finish(&rt);
}

#[test]
fn container_exit_kills_running_exec() {
    require_root!();
    let e = env();
    let rt = rt();
    let x = e.spawn("f", &exec(&["sleep", "100"])).unwrap();
    rt.block_on(x.start_process()).unwrap();
    assert!(x.alive());
    rt.block_on(e.shim.kill(9)).unwrap();
    let st = rt.block_on(x.wait()).unwrap();
    assert_eq!(st.exit_code, 137);
    x.cleanup().unwrap();
    assert!(!Path::new(x.state_dir()).exists());
    e.finish_after_exit(&rt);
}

impl Env {
    fn finish_after_exit(self, rt: &tokio::runtime::Runtime) {
        let st = rt.block_on(self.shim.wait()).unwrap();
        assert_eq!(st.exit_code, 137);
        self.shim.cleanup().unwrap();
        if let Ok(dirs) = std::fs::read_dir("/sys/fs/cgroup") {
            for d in dirs.flatten() {
                let _ = std::fs::remove_dir(d.path().join("berth-test"));
            }
        }
    }
}

#[test]
fn new_network_namespace_has_loopback_up() {
    require_root!();
    let e = env();
    let rt = rt();
    let x = e
        .spawn("g", &exec(&["cat", "/sys/class/net/lo/flags"]))
        .unwrap();
    let out = rt.block_on(async {
        let mut s = x
            .attach(AttachOptions {
                stdin: false,
                stdout: true,
                stderr: true,
            })
            .await
            .unwrap();
        x.start_process().await.unwrap();
        read_all(&mut s).await
    });
    // IFF_UP | IFF_LOOPBACK (| IFF_RUNNING on some kernels).
    let flags = String::from_utf8_lossy(&stdout_of(&out)).trim().to_string();
    let n = u32::from_str_radix(flags.trim_start_matches("0x"), 16).unwrap();
    assert_eq!(n & 0x9, 0x9, "{flags}");
    x.cleanup().unwrap();
    e.finish(&rt);
}
