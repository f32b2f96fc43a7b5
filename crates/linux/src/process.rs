//! Process helpers for the container shim: detaching (fork + setsid), closing inherited file
//! descriptors, SIGPIPE disposition, and the pty window size.

use std::os::fd::{AsRawFd, BorrowedFd};
use std::path::PathBuf;

use nix::errno::Errno;
use nix::sys::signal::{SigHandler, Signal};
use nix::unistd::ForkResult;

use crate::{LinuxError, Result};

fn sys(op: &'static str) -> impl FnOnce(Errno) -> LinuxError {
    move |errno| LinuxError::Sys {
        op,
        path: PathBuf::new(),
        errno,
    }
}

/// Which side of [`detach`] we are on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detached {
    /// The original process: it should return (exit) at once, so the child is reparented.
    Parent,
    /// The detached child: a new session leader, no longer a child of the original parent
    /// once that exits.
    Child,
}

/// Forks; the child becomes a session leader (`setsid`). Call only while single-threaded.
pub fn detach() -> Result<Detached> {
    // SAFETY: the shim calls this right after exec, before it starts any thread, so the child
    // is a faithful copy of a single-threaded process and may run arbitrary code.
    // JUSTIFICATION: detaching from berthd (so the shim is not its child and survives it) needs a
    // fork; std offers no fork that continues running Rust code in the child.
    let forked = unsafe { nix::unistd::fork() }.map_err(sys("fork"))?;
    match forked {
        ForkResult::Parent { .. } => Ok(Detached::Parent),
        ForkResult::Child => {
            nix::unistd::setsid().map_err(sys("setsid"))?;
            Ok(Detached::Child)
        }
    }
}

/// Closes every file descriptor from `first` upwards except those in `keep`.
pub fn close_fds_from(first: i32, keep: &[i32]) -> Result<()> {
    let mut keep: Vec<i32> = keep.iter().copied().filter(|fd| *fd >= first).collect();
    keep.sort_unstable();
    let mut lo = first;
    for k in keep.into_iter().chain(std::iter::once(i32::MAX)) {
        if k > lo {
            let hi = if k == i32::MAX {
                u32::MAX
            } else {
                (k - 1) as u32
            };
            close_range(lo as u32, hi)?;
        }
        lo = k.saturating_add(1);
    }
    Ok(())
}

fn close_range(first: u32, last: u32) -> Result<()> {
    // SAFETY: close_range(2) only closes descriptors in the range; callers exclude every fd they
    // still own (a Rust object owning a closed fd would later close a reused number), which the
    // shim guarantees by calling this at start-up before opening anything.
    // JUSTIFICATION: nix 0.29 has no close_range wrapper; looping over close() up to the fd
    // limit (1M here) would be slow.
    let r = unsafe {
        nix::libc::syscall(
            nix::libc::SYS_close_range,
            first as nix::libc::c_uint,
            last as nix::libc::c_uint,
            0 as nix::libc::c_uint,
        )
    };
    Errno::result(r).map(drop).map_err(sys("close_range"))
}

/// Ignores SIGPIPE (`true`) or restores its default action (`false`).
///
/// The shim ignores it so a vanished client gives EPIPE instead of killing it, but restores the
/// default while the container's init is cloned, since ignored signals survive execve.
pub fn ignore_sigpipe(ignore: bool) -> Result<()> {
    let handler = if ignore {
        SigHandler::SigIgn
    } else {
        SigHandler::SigDfl
    };
    // SAFETY: SIG_IGN and SIG_DFL are not functions, so no handler code can run in signal context.
    // JUSTIFICATION: nix exposes signal() only as unsafe; std has no API to change a disposition.
    unsafe { nix::sys::signal::signal(Signal::SIGPIPE, handler) }
        .map(drop)
        .map_err(sys("signal SIGPIPE"))
}

nix::ioctl_write_ptr_bad!(tiocswinsz, nix::libc::TIOCSWINSZ, nix::libc::winsize);

/// Sets the window size of the terminal `fd` (a pty master).
pub fn set_winsize(fd: BorrowedFd<'_>, rows: u16, cols: u16) -> Result<()> {
    let ws = nix::libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: `fd` is a valid open descriptor for the borrow's lifetime, and `ws` is a properly
    // initialised winsize that outlives the call; TIOCSWINSZ only reads it.
    // JUSTIFICATION: resizing a pty has no safe wrapper in nix or std.
    unsafe { tiocswinsz(fd.as_raw_fd(), &ws) }
        .map(drop)
        .map_err(sys("ioctl TIOCSWINSZ"))
}

/// Receives one file descriptor (SCM_RIGHTS) from the connected unix socket `sock`, as the
/// runtime sends a pty master over its console socket.
pub fn recv_fd(sock: BorrowedFd<'_>) -> Result<std::os::fd::OwnedFd> {
    use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};
    let mut buf = [0u8; 256];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let msg = recvmsg::<()>(
        sock.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(sys("recvmsg"))?;
    for cmsg in msg.cmsgs().map_err(sys("recvmsg"))? {
        if let ControlMessageOwned::ScmRights(fds) = cmsg
            && let Some(fd) = fds.first()
        {
            // SAFETY: the kernel just installed this descriptor in our table for this message
            // (SCM_RIGHTS); nothing else owns it, so taking ownership is sound.
            // JUSTIFICATION: nix returns received descriptors as raw numbers; wrapping them is
            // the only way to have them closed on drop.
            return Ok(unsafe {
                <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(*fd)
            });
        }
    }
    Err(LinuxError::Sys {
        op: "recvmsg (no file descriptor)",
        path: PathBuf::new(),
        errno: Errno::EBADMSG,
    })
}

/// The highest capability number the running kernel knows (`/proc/sys/kernel/cap_last_cap`).
pub fn cap_last_cap() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40)
}

/// This process's capability bounding set (`CapBnd` in `/proc/self/status`) as a bit mask; all
/// bits set when it can't be read. A root that lacks some capabilities (a restricted VM or an
/// outer container) can't hand them to a container.
pub fn capability_bounding_set() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapBnd:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .unwrap_or(u64::MAX)
}

/// The hard limit of RLIMIT_NOFILE of this process.
pub fn nofile_hard_limit() -> u64 {
    nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map(|(_, hard)| hard)
        .unwrap_or(1_048_576)
}

/// Raises this process's soft RLIMIT_NOFILE to its hard limit (as Go programs such as dockerd
/// do at start); the new soft limit. Never asks for more than the hard limit.
pub fn raise_nofile_soft_limit() -> Result<u64> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).map_err(sys("getrlimit"))?;
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard).map_err(sys("setrlimit"))?;
    }
    Ok(hard)
}

/// Keeps `fd` open across the next execve (clears `FD_CLOEXEC`): how the shim hands its
/// descriptors to the monitor binary it becomes.
pub fn keep_across_exec(fd: BorrowedFd<'_>) -> Result<()> {
    use nix::fcntl::{F_GETFD, F_SETFD, FdFlag, fcntl};
    let flags = fcntl(fd.as_raw_fd(), F_GETFD).map_err(sys("fcntl F_GETFD"))?;
    let mut flags = FdFlag::from_bits_truncate(flags);
    flags.remove(FdFlag::FD_CLOEXEC);
    fcntl(fd.as_raw_fd(), F_SETFD(flags)).map_err(sys("fcntl F_SETFD"))?;
    Ok(())
}

/// Takes ownership of a descriptor this process inherited across execve, by number (as
/// [`keep_across_exec`] left it), and marks it close-on-exec again.
///
/// Fails if `fd` is not open, or is one of stdin/stdout/stderr. Each number must be taken once
/// only: the caller names descriptors its parent handed over for it alone.
pub fn take_inherited_fd(fd: i32) -> Result<std::os::fd::OwnedFd> {
    use nix::fcntl::{F_GETFD, F_SETFD, FdFlag, fcntl};
    use std::os::fd::FromRawFd;
    if fd < 3 {
        return Err(LinuxError::Sys {
            op: "inherit fd",
            path: PathBuf::from(fd.to_string()),
            errno: Errno::EBADF,
        });
    }
    fcntl(fd, F_GETFD).map_err(sys("fcntl F_GETFD"))?;
    // SAFETY: the descriptor is open (F_GETFD succeeded) and was handed to this process for it to
    // own: nothing else in this freshly exec'd process refers to it by number.
    // JUSTIFICATION: descriptors inherited across execve arrive as bare numbers; std offers no
    // safe way to own one.
    let owned = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
    fcntl(fd, F_SETFD(FdFlag::FD_CLOEXEC)).map_err(sys("fcntl F_SETFD"))?;
    Ok(owned)
}

/// Replaces this process's program with `program` (argv = `args`, the environment kept). Returns
/// only on failure. The process keeps its pid, children, signal mask and every descriptor not
/// marked close-on-exec.
pub fn exec_program(program: &std::path::Path, args: &[String]) -> LinuxError {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let bad = |_| LinuxError::BadPath {
        path: program.to_path_buf(),
        reason: "contains a NUL byte",
    };
    let path = match CString::new(program.as_os_str().as_bytes()).map_err(bad) {
        Ok(p) => p,
        Err(e) => return e,
    };
    let mut argv = vec![path.clone()];
    for a in args {
        match CString::new(a.as_bytes()).map_err(bad) {
            Ok(c) => argv.push(c),
            Err(e) => return e,
        }
    }
    let env: Vec<CString> = std::env::vars_os()
        .filter_map(|(k, v)| {
            let mut kv = k.as_bytes().to_vec();
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            CString::new(kv).ok()
        })
        .collect();
    match nix::unistd::execve(&path, &argv, &env) {
        Ok(never) => match never {},
        Err(errno) => LinuxError::Sys {
            op: "execve",
            path: program.to_path_buf(),
            errno,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cap_last_cap_is_sane() {
        assert!(cap_last_cap() >= 36);
    }

    #[test]
    fn bounding_set_has_chown() {
        assert_eq!(capability_bounding_set() & 1, 1);
    }

    #[test]
    fn nofile_hard_is_positive() {
        assert!(nofile_hard_limit() > 0);
    }
}
