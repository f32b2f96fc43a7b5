//! Mounts: overlay root filesystems for containers, and unmounting them.

use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags};

use crate::{LinuxError, Result};

/// Mounts an overlay at `target`: `lowers` top first, `upper` and `work` on the same filesystem.
pub fn mount_overlay(lowers: &[PathBuf], upper: &Path, work: &Path, target: &Path) -> Result<()> {
    mount_overlay_with(lowers, upper, work, target, false)
}

/// [`mount_overlay`], optionally `volatile`: the overlay skips every sync of the upper
/// filesystem (fsync, syncfs and the sync at unmount, which costs milliseconds to a tenth of a
/// second on a busy disk). For throw-away containers only: after a host crash the upper
/// directory may be incomplete, and the kernel refuses to mount it again until
/// `work/work/incompat/volatile` is removed.
pub fn mount_overlay_with(
    lowers: &[PathBuf],
    upper: &Path,
    work: &Path,
    target: &Path,
    volatile: bool,
) -> Result<()> {
    let mut lower = String::new();
    for (i, l) in lowers.iter().enumerate() {
        let s = l.to_str().ok_or_else(|| LinuxError::BadPath {
            path: l.clone(),
            reason: "not valid UTF-8",
        })?;
        if s.contains([',', ':']) {
            return Err(LinuxError::BadPath {
                path: l.clone(),
                reason: "contains ',' or ':'",
            });
        }
        if i > 0 {
            lower.push(':');
        }
        lower.push_str(s);
    }
    let mut data = format!(
        "lowerdir={lower},upperdir={},workdir={}",
        upper.display(),
        work.display()
    );
    if volatile {
        data.push_str(",volatile");
    }
    nix::mount::mount(
        Some("overlay"),
        target,
        Some("overlay"),
        MsFlags::empty(),
        Some(data.as_str()),
    )
    .map_err(|errno| LinuxError::Sys {
        op: "mount overlay on",
        path: target.to_path_buf(),
        errno,
    })
}

/// Unmounts `target` (lazily, so a busy mount never blocks cleanup). Not mounted is not an error.
pub fn unmount(target: &Path) -> Result<()> {
    match nix::mount::umount2(target, MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => Ok(()),
        Err(errno) => Err(LinuxError::Sys {
            op: "unmount",
            path: target.to_path_buf(),
            errno,
        }),
    }
}

/// Whether `path` is a mount point (it appears in /proc/self/mountinfo).
pub fn is_mountpoint(path: &Path) -> bool {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let want = path.to_string_lossy();
    info.lines().any(|l| l.split(' ').nth(4) == Some(&want))
}
