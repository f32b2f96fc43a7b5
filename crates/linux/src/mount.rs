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
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .any(|m| unescape_mountinfo(m) == want)
}

/// Unescapes mountinfo's octal escapes (`\040` for a space).
pub fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Mounts `device` on `target` as `mount(8)` would with `-t fstype -o options`: the flag words
/// of `options` (`ro`, `nosuid`, `bind`, `rbind`, `noexec`, propagation words…) become mount
/// flags, the rest (`size=64m`, `uid=1000`…) is passed to the filesystem as data. A read-only
/// bind is remounted read-only after the bind, and propagation is set last, as moby's
/// `mount.Mount` does. Used by the local volume driver (`type=tmpfs`, `o=bind`, `type=nfs`…).
pub fn mount_with_options(device: &str, target: &Path, fstype: &str, options: &str) -> Result<()> {
    let parsed = parse_mount_options(options);
    let sys = |op, errno| LinuxError::Sys {
        op,
        path: target.to_path_buf(),
        errno,
    };
    let fstype = (!fstype.is_empty()).then_some(fstype);
    let data = (!parsed.data.is_empty()).then_some(parsed.data.as_str());
    if parsed.flags.contains(MsFlags::MS_BIND) {
        nix::mount::mount(Some(device), target, fstype, parsed.flags, data)
            .map_err(|e| sys("bind mount on", e))?;
        let extra = parsed.flags & !(MsFlags::MS_BIND | MsFlags::MS_REC);
        if !extra.is_empty() {
            let remount = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | extra;
            if let Err(e) =
                nix::mount::mount(None::<&str>, target, None::<&str>, remount, None::<&str>)
            {
                let _ = unmount(target);
                return Err(sys("remount", e));
            }
        }
    } else {
        nix::mount::mount(Some(device), target, fstype, parsed.flags, data)
            .map_err(|e| sys("mount on", e))?;
    }
    if !parsed.propagation.is_empty()
        && let Err(e) = nix::mount::mount(
            None::<&str>,
            target,
            None::<&str>,
            parsed.propagation,
            None::<&str>,
        )
    {
        let _ = unmount(target);
        return Err(sys("set propagation of", e));
    }
    Ok(())
}

/// A `mount(8)` option string split into flags, propagation flags and filesystem data.
#[derive(Debug, PartialEq, Eq)]
struct MountOptions {
    flags: MsFlags,
    propagation: MsFlags,
    data: String,
}

/// Splits `ro,nosuid,size=64m` into flags and data (`size=64m`); unknown words are data.
fn parse_mount_options(options: &str) -> MountOptions {
    let mut flags = MsFlags::empty();
    let mut propagation = MsFlags::empty();
    let mut data: Vec<&str> = Vec::new();
    for word in options.split(',').filter(|w| !w.is_empty()) {
        let (set, clear, prop) = match word {
            "defaults" => (MsFlags::empty(), MsFlags::empty(), MsFlags::empty()),
            "ro" => (MsFlags::MS_RDONLY, MsFlags::empty(), MsFlags::empty()),
            "rw" => (MsFlags::empty(), MsFlags::MS_RDONLY, MsFlags::empty()),
            "suid" => (MsFlags::empty(), MsFlags::MS_NOSUID, MsFlags::empty()),
            "nosuid" => (MsFlags::MS_NOSUID, MsFlags::empty(), MsFlags::empty()),
            "dev" => (MsFlags::empty(), MsFlags::MS_NODEV, MsFlags::empty()),
            "nodev" => (MsFlags::MS_NODEV, MsFlags::empty(), MsFlags::empty()),
            "exec" => (MsFlags::empty(), MsFlags::MS_NOEXEC, MsFlags::empty()),
            "noexec" => (MsFlags::MS_NOEXEC, MsFlags::empty(), MsFlags::empty()),
            "sync" => (MsFlags::MS_SYNCHRONOUS, MsFlags::empty(), MsFlags::empty()),
            "async" => (MsFlags::empty(), MsFlags::MS_SYNCHRONOUS, MsFlags::empty()),
            "dirsync" => (MsFlags::MS_DIRSYNC, MsFlags::empty(), MsFlags::empty()),
            "remount" => (MsFlags::MS_REMOUNT, MsFlags::empty(), MsFlags::empty()),
            "mand" => (MsFlags::MS_MANDLOCK, MsFlags::empty(), MsFlags::empty()),
            "nomand" => (MsFlags::empty(), MsFlags::MS_MANDLOCK, MsFlags::empty()),
            "atime" => (MsFlags::empty(), MsFlags::MS_NOATIME, MsFlags::empty()),
            "noatime" => (MsFlags::MS_NOATIME, MsFlags::empty(), MsFlags::empty()),
            "diratime" => (MsFlags::empty(), MsFlags::MS_NODIRATIME, MsFlags::empty()),
            "nodiratime" => (MsFlags::MS_NODIRATIME, MsFlags::empty(), MsFlags::empty()),
            "relatime" => (MsFlags::MS_RELATIME, MsFlags::empty(), MsFlags::empty()),
            "norelatime" => (MsFlags::empty(), MsFlags::MS_RELATIME, MsFlags::empty()),
            "strictatime" => (MsFlags::MS_STRICTATIME, MsFlags::empty(), MsFlags::empty()),
            "nostrictatime" => (MsFlags::empty(), MsFlags::MS_STRICTATIME, MsFlags::empty()),
            "bind" => (MsFlags::MS_BIND, MsFlags::empty(), MsFlags::empty()),
            "rbind" => (
                MsFlags::MS_BIND | MsFlags::MS_REC,
                MsFlags::empty(),
                MsFlags::empty(),
            ),
            "private" => (MsFlags::empty(), MsFlags::empty(), MsFlags::MS_PRIVATE),
            "rprivate" => (
                MsFlags::empty(),
                MsFlags::empty(),
                MsFlags::MS_PRIVATE | MsFlags::MS_REC,
            ),
            "shared" => (MsFlags::empty(), MsFlags::empty(), MsFlags::MS_SHARED),
            "rshared" => (
                MsFlags::empty(),
                MsFlags::empty(),
                MsFlags::MS_SHARED | MsFlags::MS_REC,
            ),
            "slave" => (MsFlags::empty(), MsFlags::empty(), MsFlags::MS_SLAVE),
            "rslave" => (
                MsFlags::empty(),
                MsFlags::empty(),
                MsFlags::MS_SLAVE | MsFlags::MS_REC,
            ),
            "unbindable" => (MsFlags::empty(), MsFlags::empty(), MsFlags::MS_UNBINDABLE),
            "runbindable" => (
                MsFlags::empty(),
                MsFlags::empty(),
                MsFlags::MS_UNBINDABLE | MsFlags::MS_REC,
            ),
            other => {
                data.push(other);
                continue;
            }
        };
        flags = (flags | set) & !clear;
        propagation |= prop;
    }
    MountOptions {
        flags,
        propagation,
        data: data.join(","),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_escapes_decode() {
        assert_eq!(unescape_mountinfo(r"/a\040b/c\011d"), "/a b/c\td");
        assert_eq!(unescape_mountinfo(r"/plain"), "/plain");
        assert_eq!(unescape_mountinfo(r"/odd\04"), r"/odd\04");
    }

    #[test]
    fn mount_options_split_flags_from_data() {
        let o = parse_mount_options("size=64m,ro,uid=1000,nosuid");
        assert_eq!(o.flags, MsFlags::MS_RDONLY | MsFlags::MS_NOSUID);
        assert_eq!(o.propagation, MsFlags::empty());
        assert_eq!(o.data, "size=64m,uid=1000");

        let o = parse_mount_options("rbind,rprivate");
        assert_eq!(o.flags, MsFlags::MS_BIND | MsFlags::MS_REC);
        assert_eq!(o.propagation, MsFlags::MS_PRIVATE | MsFlags::MS_REC);
        assert_eq!(o.data, "");

        let o = parse_mount_options("ro,rw,,bind");
        assert_eq!(o.flags, MsFlags::MS_BIND);
        assert_eq!(parse_mount_options("").data, "");
    }
}
