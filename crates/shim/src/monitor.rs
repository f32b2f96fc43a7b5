//! The monitor loop shared by every shim: it owns a process's stdio (pipes, or the pty master),
//! writes the json-file log, fans output out to attached clients and their input in to the
//! process, serves the control socket (see [`crate::protocol`]), reaps the process, records
//! its exit atomically in `exit.json`, and answers every waiter.
//!
//! Single-threaded, one `poll(2)` loop. It knows nothing of OCI specs or libcontainer: what
//! must happen around the start and after the exit (joining, deleting a container) is the
//! caller's ([`crate::container`] for a container, the runtime's exec shim for an exec).

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::time::{Duration, Instant};

use nix::fcntl::OFlag;
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::signal::Signal;
use nix::sys::signalfd::SignalFd;
use nix::sys::wait::{WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::logs::{LogWriter, Stream};
use crate::protocol::{ExitStatus, Request, ShimConfig, ok_or_error, reply, write_exit};

/// Largest output backlog kept for one attach client before it is dropped.
const CLIENT_BUFFER_MAX: usize = 1 << 20;
/// Largest partial line kept before it is logged as is.
const LINE_MAX: usize = 16 * 1024;
/// Largest request line.
const REQUEST_MAX: usize = 4096;
/// How long a gated shim waits for its start request.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Makes a descriptor non-blocking.
pub fn set_nonblocking(fd: BorrowedFd<'_>) {
    let _ = nix::fcntl::fcntl(fd.as_raw_fd(), nix::fcntl::F_SETFL(OFlag::O_NONBLOCK));
}

/// One output source: (read end, stream, partial line); the fd is None once closed.
pub type Output = (Option<OwnedFd>, Stream, Vec<u8>);

/// An attached client.
pub struct Client {
    sock: UnixStream,
    stdout: bool,
    stderr: bool,
    /// Whether its incoming bytes are still read as the process's stdin.
    pub reading: bool,
    out: VecDeque<u8>,
}

impl Client {
    /// Closes the connection both ways.
    pub fn shutdown(&self) -> std::io::Result<()> {
        let _ = self.sock.set_nonblocking(false);
        self.sock.shutdown(std::net::Shutdown::Both)
    }
}

/// A connection whose request line is not complete yet.
struct Pending {
    sock: UnixStream,
    buf: Vec<u8>,
}

/// The monitor's state for one process.
pub struct Monitor {
    pub cfg: ShimConfig,
    pub pid: Pid,
    pub tty: Option<OwnedFd>,
    /// (fd, stream, line buffer); None once closed.
    pub outputs: Vec<Output>,
    pub stdin: Option<OwnedFd>,
    pub stdin_buf: Vec<u8>,
    close_stdin: bool,
    log: Option<LogWriter>,
    pub clients: Vec<Client>,
    pending: Vec<Pending>,
    pub waiters: Vec<UnixStream>,
}

impl Monitor {
    /// Sets the json-file log output is written to (none: output only goes to clients).
    pub fn set_log(&mut self, log: Option<LogWriter>) {
        self.log = log;
    }

    /// Gives the monitor the started process's stdio: with a pty, its master is both stdin and
    /// stdout. Every descriptor is made non-blocking; without a stdin, clients' input is
    /// dropped from then on.
    pub fn set_stdio(
        &mut self,
        tty: Option<OwnedFd>,
        mut outputs: Vec<Output>,
        mut stdin: Option<OwnedFd>,
    ) {
        if let Some(fd) = &tty {
            stdin = fd.try_clone().ok();
            outputs.push((fd.try_clone().ok(), Stream::Stdout, Vec::new()));
        }
        for fd in outputs.iter().filter_map(|(fd, _, _)| fd.as_ref()) {
            set_nonblocking(fd.as_fd());
        }
        if let Some(fd) = &stdin {
            set_nonblocking(fd.as_fd());
        }
        self.tty = tty;
        self.outputs = outputs;
        self.stdin = stdin;
        if self.stdin.is_none() {
            for c in &mut self.clients {
                c.reading = false;
            }
            self.stdin_buf.clear();
        }
    }

    /// A monitor for `pid` (0 until the process exists).
    pub fn new(
        cfg: ShimConfig,
        pid: Pid,
        tty: Option<OwnedFd>,
        outputs: Vec<Output>,
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

#[derive(Clone, Copy)]
enum Slot {
    Listener,
    Signal,
    Output(usize),
    Stdin,
    Pending(usize),
    Client(usize),
}

impl Monitor {
    /// Serves until the init exits; returns its wait status.
    pub fn serve(&mut self, listener: &UnixListener, sigfd: &SignalFd) -> WaitStatus {
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

    /// After the exit: drains output, records the status (`oom_killed` is asked before
    /// `cleanup` runs), flushes and closes clients, runs `cleanup` (deleting the container),
    /// answers waiters. Returns the status.
    pub fn finish(
        &mut self,
        st: WaitStatus,
        oom_killed: impl FnOnce() -> bool,
        cleanup: impl FnOnce(),
    ) -> ExitStatus {
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
            oom_killed: oom_killed(),
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
        cleanup();
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
        status
    }
}

impl Monitor {
    /// Before the start (of an exec, or of a gated container): takes attach connections and
    /// waits; returns the start requester (None on timeout).
    pub fn await_start(&mut self, listener: &UnixListener) -> Option<UnixStream> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            let mut fds = vec![PollFd::new(listener.as_fd(), PollFlags::POLLIN)];
            for p in &self.pending {
                fds.push(PollFd::new(p.sock.as_fd(), PollFlags::POLLIN));
            }
            let left = (deadline - now).as_millis().min(1000);
            let timeout = PollTimeout::from(u16::try_from(left).unwrap_or(1000));
            if nix::poll::poll(&mut fds, timeout).is_err() {
                continue;
            }
            let ready: Vec<bool> = fds
                .iter()
                .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
                .collect();
            drop(fds);
            if ready[0] {
                self.accept(listener);
            }
            let mut done = Vec::new();
            for (i, r) in ready.iter().skip(1).enumerate() {
                if *r && i < self.pending.len() && self.read_request(i) {
                    done.push(i);
                }
            }
            let mut starter = None;
            for i in done.into_iter().rev() {
                let p = self.pending.remove(i);
                let Some(nl) = p.buf.iter().position(|b| *b == b'\n') else {
                    continue;
                };
                let Ok(req) = serde_json::from_slice::<Request>(&p.buf[..nl]) else {
                    reply(p.sock, &serde_json::json!({"error": "bad request"}));
                    continue;
                };
                match req.op.as_str() {
                    "start" if starter.is_none() => starter = Some(p.sock),
                    "wait" => self.waiters.push(p.sock),
                    "attach" => {
                        let reading = req.stdin && self.cfg.open_stdin;
                        if reading {
                            self.stdin_buf.extend_from_slice(&p.buf[nl + 1..]);
                        }
                        self.clients.push(Client {
                            sock: p.sock,
                            stdout: req.stdout,
                            stderr: req.stderr,
                            reading,
                            out: Default::default(),
                        });
                    }
                    _ => reply(
                        p.sock,
                        &serde_json::json!({"error": "the process has not started"}),
                    ),
                }
            }
            if starter.is_some() {
                return starter;
            }
        }
    }
}
