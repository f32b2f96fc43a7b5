//! Network namespace helpers: bringing up the loopback interface of a container's new network
//! namespace (what Docker's `--network none` gives: `lo` up, nothing else).

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::sched::CloneFlags;
use nix::sys::socket::{AddressFamily, SockFlag, SockType};

use crate::{LinuxError, Result};

nix::ioctl_readwrite_bad!(siocgifflags, nix::libc::SIOCGIFFLAGS, nix::libc::ifreq);
nix::ioctl_write_ptr_bad!(siocsifflags, nix::libc::SIOCSIFFLAGS, nix::libc::ifreq);

fn sys(op: &'static str, path: &Path) -> impl FnOnce(Errno) -> LinuxError {
    let path = path.to_path_buf();
    move |errno| LinuxError::Sys { op, path, errno }
}

/// Sets `IFF_UP` on `lo` inside the network namespace at `netns` (e.g. `/proc/<pid>/ns/net`).
/// Runs on a short-lived thread, so the caller's own namespace never changes.
pub fn loopback_up(netns: &Path) -> Result<()> {
    let ns = std::fs::File::open(netns).map_err(|source| LinuxError::Io {
        op: "open netns",
        path: netns.to_path_buf(),
        source,
    })?;
    let path: PathBuf = netns.to_path_buf();
    std::thread::spawn(move || -> Result<()> {
        nix::sched::setns(&ns, CloneFlags::CLONE_NEWNET).map_err(sys("setns", &path))?;
        let sock = nix::sys::socket::socket(
            AddressFamily::Inet,
            SockType::Datagram,
            SockFlag::SOCK_CLOEXEC,
            None,
        )
        .map_err(sys("socket", &path))?;
        // SAFETY: ifreq is plain old data (a name array and a union of integers/structs):
        // all-zero bytes are a valid value.
        // JUSTIFICATION: libc offers no constructor for ifreq.
        let mut req: nix::libc::ifreq = unsafe { std::mem::zeroed() };
        for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
            *dst = *src as nix::libc::c_char;
        }
        // SAFETY: `sock` is an open socket for the call's duration and `req` is an initialised
        // ifreq naming "lo"; SIOCGIFFLAGS writes only its flags field.
        // JUSTIFICATION: reading interface flags has no safe wrapper in nix or std.
        unsafe { siocgifflags(sock.as_raw_fd(), &mut req) }.map_err(sys("SIOCGIFFLAGS", &path))?;
        // SAFETY: SIOCGIFFLAGS just filled the flags member of the union, so reading it is
        // reading initialised memory of the right type.
        // JUSTIFICATION: the flags live in a C union.
        let flags = unsafe { req.ifr_ifru.ifru_flags };
        req.ifr_ifru.ifru_flags = flags | nix::libc::IFF_UP as nix::libc::c_short;
        // SAFETY: as above; SIOCSIFFLAGS only reads `req`.
        // JUSTIFICATION: setting interface flags has no safe wrapper in nix or std.
        unsafe { siocsifflags(sock.as_raw_fd(), &req) }.map_err(sys("SIOCSIFFLAGS", &path))?;
        Ok(())
    })
    .join()
    .map_err(|_| LinuxError::Sys {
        op: "loopback thread",
        path: netns.to_path_buf(),
        errno: Errno::EIO,
    })?
}
