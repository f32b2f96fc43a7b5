//! The shim process: `berthd shim <state-dir>/shim.json`.
//!
//! Single-threaded (no async runtime), small. It detaches from its parent (double fork +
//! setsid, so it is not berthd's child), creates and starts the container with libcontainer
//! (stdio: pipes, or a pty whose master arrives over libcontainer's console socket), reports
//! "started <pid>" or the start error to the process that spawned it, then loops with poll(2):
//! copies output to the json-file log and to attached clients, stdin from clients to the
//! container, serves the control socket (attach, wait, kill, resize), reaps the init process,
//! writes `exit.json` atomically, answers every waiter, and exits.
//!
//! # Protocol
//!
//! * **Readiness** (shim → spawner, on the shim's stdout pipe): one line, `ok <pid>\n` once the
//!   container's process runs, or `error <message>\n` (the message keeps the runtime's wording).
//! * **Control** (`<state-dir>/shim.sock`, mode 0600): each connection sends one JSON line:
//!   - `{"op":"wait"}` → when the process has exited, one line: the [`ExitStatus`] JSON.
//!   - `{"op":"kill","signal":N}` → `{"ok":true}` or `{"error":"…"}`.
//!   - `{"op":"resize","rows":R,"cols":C}` → `{"ok":true}` or `{"error":"…"}`.
//!   - `{"op":"attach","stdin":b,"stdout":b,"stderr":b}` → no reply line: from then on the
//!     connection carries the output (8-byte frames `[stream,0,0,0,len BE u32]` + payload,
//!     stdout = 1, stderr = 2; raw bytes with a tty) and its incoming bytes are the container's
//!     stdin. Read EOF on it = stdin EOF (closes the container's stdin when `stdin_once`).
//! * When the process exits, the shim writes `exit.json`, flushes and closes attach streams,
//!   deletes the libcontainer container (and its cgroups), answers waiters, removes
//!   `shim.sock` and exits. A client that finds no socket (or an EOF instead of a reply) reads
//!   `exit.json` instead.
//! * **Exec shims** (`shim.json` with an `exec` section, see [`crate::exec`]) report `ready`
//!   instead of `ok <pid>`, take attach requests until `{"op":"start"}` (answered
//!   `{"pid":N}` or `{"error":"…"}`), and then serve as above without a log and without
//!   deleting the container (`shim/exec.rs`).

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use libcontainer::container::Container;
use libcontainer::container::builder::ContainerBuilder;
use libcontainer::syscall::syscall::SyscallType;
use libcontainer::workload::default::DefaultExecutor;
use nix::fcntl::OFlag;
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::client::{ExitStatus, ShimConfig};
use crate::exec::ShimFile;
use crate::logs::{LogWriter, Stream};
use crate::oci_spec::runtime::Spec;

mod exec;

/// Largest output backlog kept for one attach client before it is dropped.
const CLIENT_BUFFER_MAX: usize = 1 << 20;
/// Largest partial line kept before it is logged as is.
const LINE_MAX: usize = 16 * 1024;
/// Largest request line.
const REQUEST_MAX: usize = 4096;

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

/// Writes the readiness line on stdout, then points stdout at /dev/null.
fn report(line: &str) {
    let mut out = std::io::stdout();
    let _ = out.write_all(format!("{line}\n").as_bytes());
    let _ = out.flush();
    if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
        let _ = nix::unistd::dup2(null.as_raw_fd(), 1);
    }
}

fn set_nonblocking(fd: BorrowedFd<'_>) {
    let _ = nix::fcntl::fcntl(fd.as_raw_fd(), nix::fcntl::F_SETFL(OFlag::O_NONBLOCK));
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
    check_command(rootfs, arg0, &env, process.cwd())
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

struct Client {
    sock: UnixStream,
    stdout: bool,
    stderr: bool,
    reading: bool,
    out: VecDeque<u8>,
}

struct Pending {
    sock: UnixStream,
    buf: Vec<u8>,
}

#[derive(serde::Deserialize)]
struct Request {
    op: String,
    #[serde(default)]
    stdin: bool,
    #[serde(default)]
    stdout: bool,
    #[serde(default)]
    stderr: bool,
    #[serde(default)]
    signal: i32,
    #[serde(default)]
    rows: u16,
    #[serde(default)]
    cols: u16,
}

struct Shim {
    cfg: ShimConfig,
    pid: Pid,
    tty: Option<OwnedFd>,
    /// (fd, stream, line buffer); None once closed.
    outputs: Vec<(Option<OwnedFd>, Stream, Vec<u8>)>,
    stdin: Option<OwnedFd>,
    stdin_buf: Vec<u8>,
    close_stdin: bool,
    log: Option<LogWriter>,
    clients: Vec<Client>,
    pending: Vec<Pending>,
    waiters: Vec<UnixStream>,
}

impl Shim {
    fn new(
        cfg: ShimConfig,
        pid: Pid,
        tty: Option<OwnedFd>,
        outputs: Vec<(Option<OwnedFd>, Stream, Vec<u8>)>,
        stdin: Option<OwnedFd>,
        log: Option<LogWriter>,
    ) -> Self {
        Self {
            cfg,
            pid,
            tty,
            outputs,
            stdin,
            stdin_buf: Vec::new(),
            close_stdin: false,
            log,
            clients: Vec::new(),
            pending: Vec::new(),
            waiters: Vec::new(),
        }
    }
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
    let log = LogWriter::open(&cfg.log_path, cfg.log_max_size, cfg.log_max_files)
        .map_err(|e| e.to_string())?;

    let sock_path = cfg.state_dir.join("shim.sock");
    let _ = std::fs::remove_file(&sock_path);
    let listener = UnixListener::bind(&sock_path).map_err(|e| format!("bind shim.sock: {e}"))?;
    let _ = std::fs::set_permissions(&sock_path, std::fs::Permissions::from_mode(0o600));
    std::fs::write(
        cfg.state_dir.join("shim.pid"),
        std::process::id().to_string(),
    )
    .map_err(|e| format!("write shim.pid: {e}"))?;

    let builder = ContainerBuilder::new(cfg.id.clone(), SyscallType::default())
        .with_executor(DefaultExecutor {})
        .with_root_path(&cfg.runtime_root)
        .map_err(|e| e.to_string())?;
    let Stdio {
        builder,
        mut outputs,
        mut stdin,
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
    let fail = |msg: String, container: Option<&mut Container>| {
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
        Some(p) => Pid::from_raw(p.as_raw()),
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
    // Block SIGCHLD before start so the exit cannot slip by; the init was cloned already.
    let mut mask = SigSet::empty();
    mask.add(Signal::SIGCHLD);
    let _ = mask.thread_block();
    let sigfd = SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
        .map_err(|e| fail(format!("signalfd: {e}"), Some(&mut container)))?;
    // Gated: report the created container and let attach connections in before the start.
    let mut gate = None;
    if cfg.gated {
        report(&format!("created {pid}"));
        let _ = listener.set_nonblocking(true);
        let mut waiting = Shim::new(cfg.clone(), pid, None, Vec::new(), None, None);
        match waiting.await_start(&listener) {
            Some(starter) => gate = Some((waiting, starter)),
            None => {
                let _ = container.delete(true);
                let _ = std::fs::remove_file(&sock_path);
                return Ok(());
            }
        }
    }
    if let Err(e) = container.start() {
        let msg = e.to_string();
        if let Some((waiting, starter)) = gate {
            reply(starter, &serde_json::json!({"error": msg}));
            for c in waiting.clients {
                let _ = c.sock.shutdown(std::net::Shutdown::Both);
            }
            let _ = fail(msg, Some(&mut container));
            return Ok(());
        }
        return Err(fail(msg, Some(&mut container)));
    }
    let early = match gate {
        Some((waiting, starter)) => {
            reply(starter, &serde_json::json!({"pid": pid.as_raw()}));
            Some(waiting)
        }
        None => {
            report(&format!("ok {pid}"));
            None
        }
    };

    if let Some(fd) = &tty {
        match fd.try_clone() {
            Ok(w) => stdin = Some(w),
            Err(_) => stdin = None,
        }
        outputs.push((fd.try_clone().ok(), Stream::Stdout, Vec::new()));
    }
    for (fd, _, _) in &outputs {
        if let Some(fd) = fd {
            set_nonblocking(fd.as_fd());
        }
    }
    if let Some(fd) = &stdin {
        set_nonblocking(fd.as_fd());
    }
    let _ = listener.set_nonblocking(true);
    let mut shim = Shim::new(cfg.clone(), pid, tty, outputs, stdin, Some(log));
    if let Some(waiting) = early {
        // Clients and waiters that came before the start; stdin typed early goes in first.
        shim.clients = waiting.clients;
        shim.waiters = waiting.waiters;
        shim.pending = waiting.pending;
        shim.stdin_buf = waiting.stdin_buf;
        if shim.stdin.is_none() {
            for c in &mut shim.clients {
                c.reading = false;
            }
            shim.stdin_buf.clear();
        }
    }
    let status = shim.serve(&listener, &sigfd);
    let cgroups_path = spec
        .linux()
        .as_ref()
        .and_then(|l| l.cgroups_path().clone())
        .unwrap_or_default();
    shim.finish(
        status,
        Some(&mut container),
        &cgroups_path.to_string_lossy(),
    );
    let _ = std::fs::remove_file(&sock_path);
    Ok(())
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

#[derive(Clone, Copy)]
enum Slot {
    Listener,
    Signal,
    Output(usize),
    Stdin,
    Pending(usize),
    Client(usize),
}

impl Shim {
    /// Serves until the init exits; returns its wait status.
    fn serve(&mut self, listener: &UnixListener, sigfd: &SignalFd) -> WaitStatus {
        loop {
            if let Some(st) = self.try_reap() {
                return st;
            }
            let mut slots = Vec::new();
            let mut fds = Vec::new();
            fds.push(PollFd::new(listener.as_fd(), PollFlags::POLLIN));
            slots.push(Slot::Listener);
            fds.push(PollFd::new(sigfd.as_fd(), PollFlags::POLLIN));
            slots.push(Slot::Signal);
            for (i, (fd, _, _)) in self.outputs.iter().enumerate() {
                if let Some(fd) = fd {
                    fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLIN));
                    slots.push(Slot::Output(i));
                }
            }
            if let (Some(fd), false) = (&self.stdin, self.stdin_buf.is_empty()) {
                fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLOUT));
                slots.push(Slot::Stdin);
            }
            for (i, p) in self.pending.iter().enumerate() {
                fds.push(PollFd::new(p.sock.as_fd(), PollFlags::POLLIN));
                slots.push(Slot::Pending(i));
            }
            for (i, c) in self.clients.iter().enumerate() {
                let mut ev = PollFlags::empty();
                if c.reading && self.stdin_buf.is_empty() {
                    ev |= PollFlags::POLLIN;
                }
                if !c.out.is_empty() {
                    ev |= PollFlags::POLLOUT;
                }
                fds.push(PollFd::new(c.sock.as_fd(), ev));
                slots.push(Slot::Client(i));
            }
            if nix::poll::poll(&mut fds, PollTimeout::from(1000u16)).is_err() {
                continue;
            }
            let ready: Vec<(Slot, PollFlags)> = fds
                .iter()
                .zip(slots)
                .filter_map(|(f, s)| f.revents().filter(|r| !r.is_empty()).map(|r| (s, r)))
                .collect();
            drop(fds);
            let mut drop_pending = Vec::new();
            let mut drop_clients = Vec::new();
            for (slot, rev) in ready {
                match slot {
                    Slot::Listener => self.accept(listener),
                    Slot::Signal => while let Ok(Some(_)) = sigfd.read_signal() {},
                    Slot::Output(i) => self.read_output(i),
                    Slot::Stdin => self.flush_stdin(),
                    Slot::Pending(i) => {
                        if self.read_request(i) {
                            drop_pending.push(i);
                        }
                    }
                    Slot::Client(i) => {
                        if !self.service_client(i, rev) {
                            drop_clients.push(i);
                        }
                    }
                }
            }
            for i in drop_pending.into_iter().rev() {
                let p = self.pending.remove(i);
                self.handle_request(p);
            }
            drop_clients.sort_unstable();
            drop_clients.dedup();
            for i in drop_clients.into_iter().rev() {
                self.clients.remove(i);
            }
            if self.close_stdin && self.stdin_buf.is_empty() && !self.cfg.tty {
                self.stdin = None;
            }
        }
    }

    fn try_reap(&self) -> Option<WaitStatus> {
        match nix::sys::wait::waitpid(self.pid, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => None,
            Ok(st @ (WaitStatus::Exited(..) | WaitStatus::Signaled(..))) => Some(st),
            Ok(_) => None,
            // ECHILD: someone else reaped it; report it as gone.
            Err(_) => Some(WaitStatus::Exited(self.pid, 255)),
        }
    }

    fn accept(&mut self, listener: &UnixListener) {
        while let Ok((sock, _)) = listener.accept() {
            let _ = sock.set_nonblocking(true);
            self.pending.push(Pending {
                sock,
                buf: Vec::new(),
            });
        }
    }

    /// Reads a request; true when the line is complete (or the connection is done).
    fn read_request(&mut self, i: usize) -> bool {
        let p = &mut self.pending[i];
        let mut buf = [0u8; 1024];
        match p.sock.read(&mut buf) {
            Ok(0) => true,
            Ok(n) => {
                p.buf.extend_from_slice(&buf[..n]);
                p.buf.contains(&b'\n') || p.buf.len() > REQUEST_MAX
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => false,
            Err(_) => true,
        }
    }

    fn handle_request(&mut self, p: Pending) {
        let Some(nl) = p.buf.iter().position(|b| *b == b'\n') else {
            return;
        };
        let Ok(req) = serde_json::from_slice::<Request>(&p.buf[..nl]) else {
            reply(p.sock, &serde_json::json!({"error": "bad request"}));
            return;
        };
        let rest = &p.buf[nl + 1..];
        match req.op.as_str() {
            "wait" => self.waiters.push(p.sock),
            "kill" => {
                let r = Signal::try_from(req.signal)
                    .map_err(|e| e.to_string())
                    .and_then(|s| nix::sys::signal::kill(self.pid, s).map_err(|e| e.to_string()));
                reply(p.sock, &ok_or_error(r));
            }
            "resize" => {
                let r = match &self.tty {
                    Some(fd) => linux::process::set_winsize(fd.as_fd(), req.rows, req.cols)
                        .map_err(|e| e.to_string()),
                    None => Err("the container has no tty".to_string()),
                };
                reply(p.sock, &ok_or_error(r));
            }
            "attach" => {
                let reading = req.stdin && self.stdin.is_some();
                if reading && !rest.is_empty() {
                    self.stdin_buf.extend_from_slice(rest);
                }
                self.clients.push(Client {
                    sock: p.sock,
                    stdout: req.stdout,
                    stderr: req.stderr,
                    reading,
                    out: VecDeque::new(),
                });
            }
            _ => reply(p.sock, &serde_json::json!({"error": "unknown op"})),
        }
    }

    /// Reads available output from source `i`; logs it and fans it out.
    fn read_output(&mut self, i: usize) {
        let mut buf = [0u8; 32 * 1024];
        loop {
            let Some(fd) = &self.outputs[i].0 else { return };
            match nix::unistd::read(fd.as_raw_fd(), &mut buf) {
                Ok(0) | Err(nix::errno::Errno::EIO) => {
                    self.outputs[i].0 = None;
                    return;
                }
                Ok(n) => {
                    let stream = self.outputs[i].1;
                    self.emit(i, stream, &buf[..n]);
                }
                Err(nix::errno::Errno::EAGAIN) => return,
                Err(nix::errno::Errno::EINTR) => {}
                Err(_) => {
                    self.outputs[i].0 = None;
                    return;
                }
            }
        }
    }

    fn emit(&mut self, i: usize, stream: Stream, data: &[u8]) {
        // Log, split at newlines.
        let line = &mut self.outputs[i].2;
        line.extend_from_slice(data);
        while let Some(pos) = line.iter().position(|b| *b == b'\n') {
            let rest = line.split_off(pos + 1);
            if let Some(log) = &mut self.log {
                let _ = log.write(stream, line);
            }
            *line = rest;
        }
        if line.len() >= LINE_MAX {
            if let Some(log) = &mut self.log {
                let _ = log.write(stream, line);
            }
            line.clear();
        }
        // Fan out.
        let tty = self.cfg.tty;
        let mut overflow = Vec::new();
        for (ci, c) in self.clients.iter_mut().enumerate() {
            let wanted = match stream {
                Stream::Stdout => c.stdout,
                Stream::Stderr => c.stderr,
            };
            if !wanted {
                continue;
            }
            if !tty {
                let kind = if stream == Stream::Stdout { 1u8 } else { 2u8 };
                c.out.extend([kind, 0, 0, 0]);
                c.out.extend((data.len() as u32).to_be_bytes());
            }
            c.out.extend(data);
            if c.out.len() > CLIENT_BUFFER_MAX {
                overflow.push(ci);
            }
        }
        for ci in overflow.into_iter().rev() {
            self.clients.remove(ci);
        }
    }

    fn flush_stdin(&mut self) {
        let Some(fd) = &self.stdin else {
            self.stdin_buf.clear();
            return;
        };
        match nix::unistd::write(fd, &self.stdin_buf) {
            Ok(n) => {
                self.stdin_buf.drain(..n);
            }
            Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EINTR) => {}
            Err(_) => {
                // The process closed its stdin.
                self.stdin_buf.clear();
                self.stdin = None;
            }
        }
    }

    /// Handles a client's readiness; false to drop it.
    fn service_client(&mut self, i: usize, rev: PollFlags) -> bool {
        if rev.contains(PollFlags::POLLOUT) && !self.write_client(i) {
            return false;
        }
        let c = &mut self.clients[i];
        if c.reading && rev.intersects(PollFlags::POLLIN | PollFlags::POLLHUP) {
            let mut buf = [0u8; 32 * 1024];
            match c.sock.read(&mut buf) {
                Ok(0) => {
                    c.reading = false;
                    if self.cfg.stdin_once {
                        self.close_stdin = true;
                    }
                }
                Ok(n) => self.stdin_buf.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(_) => return false,
            }
            if !self.stdin_buf.is_empty() {
                self.flush_stdin();
            }
            return true;
        }
        if rev.contains(PollFlags::POLLERR) {
            return false;
        }
        !rev.contains(PollFlags::POLLHUP) || c.reading
    }

    /// Writes as much of a client's backlog as it takes; false on error.
    fn write_client(&mut self, i: usize) -> bool {
        let c = &mut self.clients[i];
        while !c.out.is_empty() {
            let (a, _) = c.out.as_slices();
            match c.sock.write(a) {
                Ok(0) => return false,
                Ok(n) => {
                    c.out.drain(..n);
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
        true
    }

    /// After the exit: drain output, record the status, flush clients, delete the container,
    /// answer waiters.
    fn finish(&mut self, st: WaitStatus, container: Option<&mut Container>, cgroups_path: &str) {
        for i in 0..self.outputs.len() {
            self.read_output(i);
        }
        for i in 0..self.outputs.len() {
            let (_, stream, line) = &mut self.outputs[i];
            if !line.is_empty() {
                if let Some(log) = &mut self.log {
                    let _ = log.write(*stream, line);
                }
                line.clear();
            }
        }
        let exit_code = match st {
            WaitStatus::Exited(_, code) => code,
            WaitStatus::Signaled(_, sig, _) => 128 + sig as i32,
            _ => 255,
        };
        let status = ExitStatus {
            exit_code,
            oom_killed: oom_killed(cgroups_path),
            finished_at: crate::logs::format_time(&chrono::Utc::now()),
        };
        let _ = write_exit(&self.cfg.state_dir, &status);
        for c in &mut self.clients {
            let _ = c.sock.set_nonblocking(false);
            let _ = c.sock.set_write_timeout(Some(Duration::from_secs(1)));
            let (a, b) = c.out.as_slices();
            let _ = c.sock.write_all(a).and_then(|()| c.sock.write_all(b));
            let _ = c.sock.shutdown(std::net::Shutdown::Both);
        }
        self.clients.clear();
        self.stdin = None;
        self.tty = None;
        self.outputs.clear();
        if let Some(container) = container {
            let _ = container.delete(true);
        }
        for w in self.waiters.drain(..) {
            reply(w, &status);
        }
        // Requests that were still arriving: answer waits too, drop the rest.
        for p in std::mem::take(&mut self.pending) {
            if let Some(nl) = p.buf.iter().position(|b| *b == b'\n')
                && let Ok(req) = serde_json::from_slice::<Request>(&p.buf[..nl])
                && req.op == "wait"
            {
                reply(p.sock, &status);
            }
        }
    }
}

fn ok_or_error(r: Result<(), String>) -> serde_json::Value {
    match r {
        Ok(()) => serde_json::json!({"ok": true}),
        Err(e) => serde_json::json!({"error": e}),
    }
}

fn reply<T: serde::Serialize>(mut sock: UnixStream, v: &T) {
    let _ = sock.set_nonblocking(false);
    let _ = sock.set_write_timeout(Some(Duration::from_secs(1)));
    if let Ok(mut line) = serde_json::to_vec(v) {
        line.push(b'\n');
        let _ = sock.write_all(&line);
    }
}

/// Whether the OOM killer hit the container's memory cgroup (see
/// [`crate::cgroups::Cgroup::oom_killed`]; read before the cgroup is deleted).
fn oom_killed(cgroups_path: &str) -> bool {
    let rel = cgroups_path.trim_start_matches('/');
    !rel.is_empty() && crate::cgroups::Cgroup::new(cgroups_path).oom_killed()
}

/// Writes `exit.json` atomically (temp + fsync + rename).
fn write_exit(state_dir: &Path, status: &ExitStatus) -> std::io::Result<()> {
    let tmp = state_dir.join(".exit.json.tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(&serde_json::to_vec(status).map_err(std::io::Error::other)?)?;
    f.sync_all()?;
    std::fs::rename(&tmp, state_dir.join("exit.json"))?;
    if let Ok(dir) = std::fs::File::open(state_dir) {
        let _ = dir.sync_all();
    }
    Ok(())
}
