//! The shim process: `berthd shim <state-dir>/shim.json`.
//!
//! It detaches from its parent (double fork + setsid, so it is not berthd's child), binds the
//! control socket, and creates the container with libcontainer (stdio: pipes, or a pty whose
//! master arrives over libcontainer's console socket). Then it hands the created container to
//! the monitor ([`shim::container`](::shim::container)): it *becomes* the small `berth-shim` binary by execve
//! (same pid, so the container's init stays its child; the descriptors pass by number in a
//! [`Handoff`]), or, when that binary is missing, runs the same monitor code in place. The
//! monitor starts the process (at once, or on the gate's `{"op":"start"}`), serves the control
//! socket (protocol: [`shim::protocol`](::shim::protocol)), reaps the init, writes `exit.json` and deletes the
//! container.
//!
//! * **Readiness** (shim → spawner, on the shim's stdout pipe): one line: `created <pid>` for a
//!   gated container (then the monitor waits for `{"op":"start"}`), `ok <pid>` once an ungated
//!   container's process runs, or `error <message>` (the message keeps the runtime's wording).
//! * **Exec shims** (`shim.json` with an `exec` section, see [`crate::exec`]) report `ready`
//!   instead, take attach requests until `{"op":"start"}` (answered `{"pid":N}` or
//!   `{"error":"…"}`), join the container with libcontainer's tenant builder and serve under the
//!   same monitor loop, in this process, without a log and without deleting the container
//!   (`shim/exec.rs`).

use std::os::fd::{AsFd, IntoRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ::shim::container::Handoff;
use ::shim::logs::Stream;
use ::shim::protocol::report;
use libcontainer::container::builder::ContainerBuilder;
use libcontainer::syscall::syscall::SyscallType;
use libcontainer::workload::default::DefaultExecutor;
use nix::fcntl::OFlag;

use crate::client::ShimConfig;
use crate::exec::ShimFile;
use crate::oci_spec::runtime::Spec;

mod exec;

/// Runs the shim; returns the process exit code for `main`.
pub fn main(config_path: &Path) -> i32 {
    match linux::process::detach() {
        Ok(linux::process::Detached::Parent) => return 0,
        Ok(linux::process::Detached::Child) => {}
        Err(e) => {
            report(&format!("error shim: {e}"));
            return 1;
        }
    }
    // Keep only stdio: berthd's descriptors are not ours to hold.
    let _ = linux::process::close_fds_from(3, &[]);
    let file: ShimFile = match std::fs::read(config_path)
        .map_err(|e| e.to_string())
        .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
    {
        Ok(c) => c,
        Err(e) => {
            report(&format!("error read {}: {e}", config_path.display()));
            return 1;
        }
    };
    let cfg = file.base;
    let result = match &file.exec {
        Some(e) => exec::run(&cfg, e),
        None => run(&cfg),
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            report(&format!("error {}", e.replace('\n', " ")));
            1
        }
    }
}

/// Resolves `args[0]` as exec would, inside the rootfs; the error wording matches Docker's.
pub(crate) fn check_executable(rootfs: &Path, spec: &Spec) -> Result<(), String> {
    let process = spec.process().as_ref().ok_or("spec has no process")?;
    let arg0 = process
        .args()
        .as_ref()
        .and_then(|a| a.first())
        .ok_or("no command specified")?;
    let env = process.env().clone().unwrap_or_default();
    // Paths under a mount (a bound-in binary, a tmpfs) only exist once the container's mounts
    // are made: those are left to the exec inside, as runc does all its lookups there.
    let mounted: Vec<PathBuf> = spec
        .mounts()
        .iter()
        .flatten()
        .map(|m| m.destination().clone())
        .filter(|d| {
            !matches!(
                d.to_str(),
                Some(
                    "/proc"
                        | "/sys"
                        | "/dev"
                        | "/dev/pts"
                        | "/dev/shm"
                        | "/dev/mqueue"
                        | "/sys/fs/cgroup"
                )
            )
        })
        .collect();
    let covered = |p: &Path| mounted.iter().any(|m| p.starts_with(m));
    match check_command(rootfs, arg0, &env, process.cwd()) {
        Err(_)
            if command_candidates(arg0, &env, process.cwd())
                .iter()
                .any(|c| covered(c)) =>
        {
            Ok(())
        }
        other => other,
    }
}

/// The absolute paths exec would try for `arg0`.
fn command_candidates(arg0: &str, env: &[String], cwd: &Path) -> Vec<PathBuf> {
    if arg0.contains('/') {
        return vec![if arg0.starts_with('/') {
            PathBuf::from(arg0)
        } else {
            cwd.join(arg0)
        }];
    }
    let path = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    path.split(':')
        .filter(|d| !d.is_empty())
        .map(|d| Path::new(d).join(arg0))
        .collect()
}

/// Resolves `arg0` as exec would (`PATH` from `env`, relative names from `cwd`) inside `rootfs`.
pub(crate) fn check_command(
    rootfs: &Path,
    arg0: &str,
    env: &[String],
    cwd: &Path,
) -> Result<(), String> {
    let root = linux::fs::Root::open(rootfs).map_err(|e| e.to_string())?;
    let check = |rel: &Path| -> Result<(), nix::errno::Errno> {
        let st = root
            .stat(rel)
            .map_err(|e| e.errno().unwrap_or(nix::errno::Errno::ENOENT))?;
        if st.kind == linux::fs::FileKind::Dir {
            return Err(nix::errno::Errno::EISDIR);
        }
        if st.kind != linux::fs::FileKind::File || st.mode & 0o111 == 0 {
            return Err(nix::errno::Errno::EACCES);
        }
        Ok(())
    };
    if arg0.contains('/') {
        let cwd = PathBuf::from(cwd);
        let rel = if arg0.starts_with('/') {
            PathBuf::from(arg0)
        } else {
            cwd.join(arg0)
        };
        let rel = rel.strip_prefix("/").unwrap_or(&rel).to_path_buf();
        return match check(&rel) {
            Ok(()) => Ok(()),
            Err(nix::errno::Errno::ENOENT | nix::errno::Errno::ENOTDIR) => Err(format!(
                "exec: \"{arg0}\": stat {arg0}: no such file or directory"
            )),
            Err(nix::errno::Errno::EISDIR) => Err(format!("exec: \"{arg0}\": is a directory")),
            Err(_) => Err(format!("exec: \"{arg0}\": permission denied")),
        };
    }
    let path = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    for dir in path.split(':').filter(|d| !d.is_empty()) {
        let rel = Path::new(dir).join(arg0);
        let rel = rel.strip_prefix("/").unwrap_or(&rel).to_path_buf();
        if check(&rel).is_ok() {
            return Ok(());
        }
    }
    Err(format!(
        "exec: \"{arg0}\": executable file not found in $PATH"
    ))
}

fn run(cfg: &ShimConfig) -> Result<(), String> {
    let bundle = cfg.state_dir.join("bundle");
    let spec: Spec = std::fs::read(bundle.join("config.json"))
        .map_err(|e| format!("read bundle: {e}"))
        .and_then(|b| serde_json::from_slice(&b).map_err(|e| format!("parse spec: {e}")))?;
    let rootfs = spec
        .root()
        .as_ref()
        .map(|r| r.path().clone())
        .unwrap_or_default();
    check_executable(&rootfs, &spec)?;

    let sock_path = cfg.state_dir.join("shim.sock");
    let listener = bind_control(&cfg.state_dir)?;

    let builder = ContainerBuilder::new(cfg.id.clone(), SyscallType::default())
        .with_executor(DefaultExecutor {})
        .with_root_path(&cfg.runtime_root)
        .map_err(|e| e.to_string())?;
    let Stdio {
        builder,
        outputs,
        stdin,
        mut console,
        console_path,
    } = Stdio::set_up(builder, &cfg.state_dir, cfg.tty, cfg.open_stdin)?;

    // Ignored signals survive execve: let the init be cloned with the default SIGPIPE.
    let _ = linux::process::ignore_sigpipe(false);
    let built = builder
        .validate_id()
        .map_err(|e| e.to_string())
        .and_then(|b| {
            b.as_init(&bundle)
                .with_systemd(false)
                .with_detach(true)
                .build()
                .map_err(|e| e.to_string())
        });
    let _ = linux::process::ignore_sigpipe(true);
    let fail = |msg: String, container: Option<&mut libcontainer::container::Container>| {
        if let Some(c) = container {
            let _ = c.delete(true);
        }
        let _ = std::fs::remove_file(&sock_path);
        let _ = std::fs::remove_file(&console_path);
        msg
    };
    let mut container = match built {
        Ok(c) => c,
        Err(e) => return Err(fail(e, None)),
    };
    let pid = match container.pid() {
        Some(p) => p.as_raw(),
        None => return Err(fail("runtime reported no pid".into(), Some(&mut container))),
    };
    let mut tty = None;
    if let Some(console) = console.take() {
        match receive_pty(&console) {
            Ok(fd) => tty = Some(fd),
            Err(e) => return Err(fail(e, Some(&mut container))),
        }
        let _ = std::fs::remove_file(&console_path);
        if let (Some(fd), Some((rows, cols))) = (&tty, cfg.console_size) {
            let _ = linux::process::set_winsize(fd.as_fd(), rows, cols);
        }
    }
    // A new network namespace gets its loopback up, as Docker's `--network none` does.
    if new_netns(&spec)
        && let Err(e) = linux::net::loopback_up(Path::new(&format!("/proc/{pid}/ns/net")))
    {
        return Err(fail(format!("bring up lo: {e}"), Some(&mut container)));
    }
    let cgroups_path = spec
        .linux()
        .as_ref()
        .and_then(|l| l.cgroups_path().clone())
        .unwrap_or_default();
    let cgroup = crate::cgroups::Cgroup::new(&cgroups_path.to_string_lossy());
    if cfg.gated {
        report(&format!("created {pid}"));
    }

    // Hand over: every descriptor by number, kept open across the exec.
    let keep = |fd: OwnedFd| -> i32 {
        let _ = linux::process::keep_across_exec(fd.as_fd());
        fd.into_raw_fd()
    };
    let handoff = Handoff {
        config: cfg.clone(),
        pid,
        listener: keep(OwnedFd::from(listener)),
        tty: tty.map(keep),
        outputs: outputs
            .into_iter()
            .filter_map(|(fd, stream, _)| fd.map(|fd| (keep(fd), stream)))
            .collect(),
        stdin: stdin.map(keep),
        runtime_dir: cfg.runtime_root.join(&cfg.id),
        cgroup_dirs: cgroup.existing_dirs(),
        memory_cgroup: cgroup.exists().then(|| cgroup.dir("memory")),
        cgroup_v2: cgroup.is_v2(),
    };
    if let Some(monitor) = &cfg.monitor
        && let Ok(arg) = serde_json::to_string(&handoff)
    {
        // Returns only if the exec failed: then this process monitors.
        let _ = linux::process::exec_program(monitor, &["monitor".to_string(), arg]);
    }
    ::shim::container::run(handoff);
    Ok(())
}

/// Binds `<state_dir>/shim.sock` (mode 0600) and records this process in `shim.pid`: what makes
/// a shim reachable, container or exec.
pub(super) fn bind_control(state_dir: &Path) -> Result<UnixListener, String> {
    let sock_path = state_dir.join("shim.sock");
    let _ = std::fs::remove_file(&sock_path);
    let listener = UnixListener::bind(&sock_path).map_err(|e| format!("bind shim.sock: {e}"))?;
    let _ = std::fs::set_permissions(&sock_path, std::fs::Permissions::from_mode(0o600));
    std::fs::write(state_dir.join("shim.pid"), std::process::id().to_string())
        .map_err(|e| format!("write shim.pid: {e}"))?;
    Ok(listener)
}

/// A process's stdio before it is created: the console socket that will receive its pty's
/// master (`tty`), or the pipes (stdin only with `open_stdin`; /dev/null otherwise).
pub(super) struct Stdio {
    pub builder: ContainerBuilder,
    /// (read end, stream, line buffer) for each output pipe.
    pub outputs: Vec<(Option<OwnedFd>, Stream, Vec<u8>)>,
    pub stdin: Option<OwnedFd>,
    pub console: Option<UnixListener>,
    pub console_path: PathBuf,
}

impl Stdio {
    pub(super) fn set_up(
        mut builder: ContainerBuilder,
        state_dir: &Path,
        tty: bool,
        open_stdin: bool,
    ) -> Result<Self, String> {
        let mut outputs = Vec::new();
        let mut stdin = None;
        let console_path = state_dir.join("console.sock");
        let mut console = None;
        if tty {
            let _ = std::fs::remove_file(&console_path);
            console = Some(
                UnixListener::bind(&console_path)
                    .map_err(|e| format!("bind console socket: {e}"))?,
            );
            builder = builder.with_console_socket(Some(&console_path));
        } else {
            let pipe = || nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| format!("pipe: {e}"));
            let (out_r, out_w) = pipe()?;
            let (err_r, err_w) = pipe()?;
            builder = builder.with_stdout(out_w).with_stderr(err_w);
            if open_stdin {
                let (in_r, in_w) = pipe()?;
                builder = builder.with_stdin(in_r);
                stdin = Some(in_w);
            } else {
                let null =
                    std::fs::File::open("/dev/null").map_err(|e| format!("/dev/null: {e}"))?;
                builder = builder.with_stdin(OwnedFd::from(null));
            }
            outputs.push((Some(out_r), Stream::Stdout, Vec::new()));
            outputs.push((Some(err_r), Stream::Stderr, Vec::new()));
        }
        Ok(Self {
            builder,
            outputs,
            stdin,
            console,
            console_path,
        })
    }
}

/// Whether the spec asks for a new (not joined) network namespace.
fn new_netns(spec: &Spec) -> bool {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|ns| {
            ns.iter().any(|n| {
                n.typ() == libcontainer::oci_spec::runtime::LinuxNamespaceType::Network
                    && n.path().is_none()
            })
        })
}

fn receive_pty(console: &UnixListener) -> Result<OwnedFd, String> {
    console.set_nonblocking(true).map_err(|e| e.to_string())?;
    for _ in 0..500 {
        match console.accept() {
            Ok((conn, _)) => {
                let _ = conn.set_nonblocking(false);
                return linux::process::recv_fd(conn.as_fd()).map_err(|e| e.to_string());
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => return Err(format!("accept console socket: {e}")),
        }
    }
    Err("timed out waiting for the pty master".into())
}
