//! The exec shim: one further process in a running container, under the container shim's poll
//! loop.
//!
//! Differences from a container shim: it binds `shim.sock` and reports `ready` *before* the
//! process exists, collects attach connections until `{"op":"start"}` arrives (so a client that
//! attached first sees every byte), then joins the container with libcontainer's tenant
//! builder and answers the start with `{"pid":N}` or `{"error":"…"}` (Docker's wording; the
//! shim then exits). It writes no json-file log, never deletes the container (the container's
//! own shim does that), reaps only its own process and records it in its own `exit.json`.
//! Without a start within a minute it gives up and exits.

use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use libcontainer::container::Container;
use libcontainer::container::builder::ContainerBuilder;
use libcontainer::syscall::syscall::SyscallType;
use libcontainer::workload::default::DefaultExecutor;
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::unistd::Pid;

use ::shim::logs::Stream;
use ::shim::monitor::Monitor;
use ::shim::protocol::{reply, report};

use super::{Stdio, bind_control, check_command, receive_pty};
use crate::client::ShimConfig;
use crate::exec::ExecSpec;

/// Docker's wording around a runtime's exec failure.
fn exec_failed(msg: &str) -> String {
    format!(
        "OCI runtime exec failed: exec failed: unable to start container process: {msg}: unknown"
    )
}

/// Runs an exec shim (after the detach); errors before `ready` go to the spawner.
pub(super) fn run(cfg: &ShimConfig, exec: &ExecSpec) -> Result<(), String> {
    let sock_path = cfg.state_dir.join("shim.sock");
    let listener = bind_control(&cfg.state_dir)?;
    let _ = listener.set_nonblocking(true);
    // Block SIGCHLD before the process exists so its exit cannot slip by.
    let mut mask = SigSet::empty();
    mask.add(Signal::SIGCHLD);
    let _ = mask.thread_block();
    let sigfd = SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
        .map_err(|e| format!("signalfd: {e}"))?;
    report("ready");

    let mut shim = Monitor::new(cfg.clone(), Pid::from_raw(0), None, Vec::new(), None, None);
    let Some(starter) = shim.await_start(&listener) else {
        let _ = std::fs::remove_file(&sock_path);
        return Ok(());
    };
    match start(cfg, exec) {
        Ok(started) => {
            reply(starter, &serde_json::json!({"pid": started.pid.as_raw()}));
            shim.pid = started.pid;
            shim.set_stdio(started.tty, started.outputs, started.stdin);
        }
        Err(e) => {
            reply(starter, &serde_json::json!({"error": e}));
            for c in shim.clients.drain(..) {
                let _ = c.shutdown();
            }
            let _ = std::fs::remove_file(&sock_path);
            return Ok(());
        }
    }
    let status = shim.serve(&listener, &sigfd);
    shim.finish(status, || false, || {});
    let _ = std::fs::remove_file(&sock_path);
    Ok(())
}

struct Started {
    pid: Pid,
    tty: Option<OwnedFd>,
    outputs: Vec<(Option<OwnedFd>, Stream, Vec<u8>)>,
    stdin: Option<OwnedFd>,
}

/// Joins the container and starts the process.
fn start(cfg: &ShimConfig, exec: &ExecSpec) -> Result<Started, String> {
    let container = Container::load(cfg.runtime_root.join(&cfg.id))
        .map_err(|_| format!("container {} is not running", cfg.id))?;
    let init = container
        .pid()
        .ok_or_else(|| format!("container {} is not running", cfg.id))?;
    let arg0 = exec.args.first().ok_or("No exec command specified")?;
    let cwd = if exec.cwd.is_empty() { "/" } else { &exec.cwd };
    // Resolve the command in the container's own mount namespace (volumes included).
    let root = format!("/proc/{}/root", init.as_raw());
    check_command(Path::new(&root), arg0, &exec.env, Path::new(cwd))
        .map_err(|e| exec_failed(&e))?;

    let builder = ContainerBuilder::new(cfg.id.clone(), SyscallType::default())
        .with_executor(DefaultExecutor {})
        .with_root_path(&cfg.runtime_root)
        .map_err(|e| exec_failed(&e.to_string()))?;
    let Stdio {
        builder,
        outputs,
        stdin,
        mut console,
        console_path,
    } = Stdio::set_up(builder, &cfg.state_dir, exec.tty, exec.open_stdin)?;
    let process = cfg.state_dir.join("process.json");
    let _ = linux::process::ignore_sigpipe(false);
    let built = builder
        .as_tenant()
        .with_process(Some(&process))
        .with_detach(true)
        .build();
    let _ = linux::process::ignore_sigpipe(true);
    let pid = match built {
        Ok(p) => p,
        Err(e) => {
            let _ = std::fs::remove_file(&console_path);
            return Err(exec_failed(&e.to_string()));
        }
    };
    let mut tty = None;
    if let Some(console) = console.take() {
        let got = receive_pty(&console);
        let _ = std::fs::remove_file(&console_path);
        match got {
            Ok(fd) => tty = Some(fd),
            Err(e) => {
                let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
                let _ = nix::sys::wait::waitpid(pid, None);
                return Err(e);
            }
        }
        if let (Some(fd), Some((rows, cols))) = (&tty, exec.console_size) {
            let _ = linux::process::set_winsize(fd.as_fd(), rows, cols);
        }
    }
    Ok(Started {
        pid,
        tty,
        outputs,
        stdin,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_wording() {
        assert_eq!(
            exec_failed("exec: \"nosuch\": executable file not found in $PATH"),
            "OCI runtime exec failed: exec failed: unable to start container process: exec: \"nosuch\": executable file not found in $PATH: unknown"
        );
    }
}
