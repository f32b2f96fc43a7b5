//! Network namespaces kept alive by a bind mount on a file (what `ip netns add` and Docker's
//! `SandboxKey` do), and running code inside one on a short-lived thread.
//!
//! Only the calling thread of `setns`/`unshare` changes namespace, so every function here does
//! that on a fresh thread that ends afterwards: the caller's own namespace never changes. A
//! socket (netlink, or one a child process inherits) opened by that thread stays bound to the
//! namespace it was opened in. This module knows nothing of interfaces, addresses or containers.

use std::fs::File;
use std::path::Path;

use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags};
use nix::sched::CloneFlags;

use crate::{LinuxError, Result};

fn sys(op: &'static str, path: &Path) -> impl FnOnce(Errno) -> LinuxError + use<> {
    let path = path.to_path_buf();
    move |errno| LinuxError::Sys { op, path, errno }
}

/// Creates a new network namespace and bind-mounts it on `path` (a file is created there; its
/// parent directory must exist), then brings its `lo` up. Fails with `EEXIST` if `path` is
/// already a mount point.
pub fn create(path: &Path) -> Result<()> {
    if crate::mount::is_mountpoint(path) {
        return Err(sys("create netns", path)(Errno::EEXIST));
    }
    File::options()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|source| LinuxError::Io {
            op: "create netns file",
            path: path.to_path_buf(),
            source,
        })?;
    let made = std::thread::scope(|s| {
        s.spawn(|| -> Result<()> {
            nix::sched::unshare(CloneFlags::CLONE_NEWNET).map_err(sys("unshare netns", path))?;
            nix::mount::mount(
                Some("/proc/thread-self/ns/net"),
                path,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
            .map_err(sys("bind-mount netns on", path))
        })
        .join()
        .unwrap_or_else(|_| Err(sys("netns thread", path)(Errno::EIO)))
    })
    .and_then(|()| crate::net::loopback_up(path));
    if let Err(e) = made {
        let _ = remove(path);
        return Err(e);
    }
    Ok(())
}

/// Unmounts (lazily) and unlinks a namespace file made by [`create`]. Already gone is not an
/// error; a file mounted more than once is unmounted until it no longer is.
pub fn remove(path: &Path) -> Result<()> {
    for _ in 0..8 {
        match nix::mount::umount2(path, MntFlags::MNT_DETACH) {
            Ok(()) => continue,
            Err(Errno::EINVAL) | Err(Errno::ENOENT) => break,
            Err(errno) => return Err(sys("unmount netns", path)(errno)),
        }
    }
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(LinuxError::Io {
            op: "remove netns file",
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Runs `f` on a new thread that has joined the network namespace at `netns` (a file made by
/// [`create`], or `/proc/<pid>/ns/net`) and returns its result. Sockets `f` opens belong to that
/// namespace even after the thread ends. A panic in `f` becomes an `EIO` error.
pub fn run_in<R, F>(netns: &Path, f: F) -> Result<R>
where
    R: Send,
    F: FnOnce() -> R + Send,
{
    let ns = File::open(netns).map_err(|source| LinuxError::Io {
        op: "open netns",
        path: netns.to_path_buf(),
        source,
    })?;
    std::thread::scope(|s| {
        s.spawn(move || -> Result<R> {
            nix::sched::setns(&ns, CloneFlags::CLONE_NEWNET).map_err(sys("setns", netns))?;
            drop(ns);
            Ok(f())
        })
        .join()
        .unwrap_or_else(|_| Err(sys("netns thread", netns)(Errno::EIO)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_in_reports_a_missing_namespace() {
        let err = run_in(Path::new("/nonexistent/netns"), || 1).err();
        assert!(matches!(err, Some(LinuxError::Io { .. })));
    }

    #[test]
    fn remove_of_a_missing_file_is_ok() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(remove(&dir.path().join("gone")).is_ok());
    }
}
