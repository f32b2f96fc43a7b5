//! File operations confined to a root directory, through file descriptors.
//!
//! A [`Root`] is a directory opened as an `O_PATH` file descriptor. Every operation takes a path
//! *relative to it*; parent directories are resolved with `openat2(RESOLVE_IN_ROOT |
//! RESOLVE_NO_MAGICLINKS)`, so `..` and symlinks (absolute or relative) are resolved as if the
//! root were `/`: nothing can reach outside it. The final component is then operated on with
//! an `*at` call relative to the parent's fd and is never followed when it is a symlink.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use nix::dir::Dir;
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{FchmodatFlags, FileStat, Mode, SFlag, UtimensatFlags};
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid, UnlinkatFlags};

use crate::{LinuxError, Result};

/// Takes ownership of a file descriptor just returned by a successful `open*` call.
fn own(fd: RawFd) -> OwnedFd {
    // JUSTIFICATION: nix 0.29's `openat`/`openat2` return a bare `RawFd`; wrapping it in an
    // `OwnedFd` is the only way to get it closed on drop, and there is no safe constructor.
    // SAFETY: `fd` was just returned by a successful open call in this crate, is a valid open
    // descriptor, and nothing else owns or closes it.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

fn sys(op: &'static str, rel: &Path) -> impl FnOnce(Errno) -> LinuxError {
    let path = rel.to_path_buf();
    move |errno| LinuxError::Sys { op, path, errno }
}

fn bad(rel: &Path, reason: &'static str) -> LinuxError {
    LinuxError::BadPath {
        path: rel.to_path_buf(),
        reason,
    }
}

/// `/proc/self/fd/<fd>`: a path naming exactly the object behind `fd`.
fn proc_fd_path(fd: &OwnedFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// The kind of a file system object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link.
    Symlink,
    /// A character device.
    CharDevice,
    /// A block device.
    BlockDevice,
    /// A named pipe.
    Fifo,
    /// A unix socket.
    Socket,
}

/// What [`Root::mknod`] creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceKind {
    /// A character device.
    Char,
    /// A block device.
    Block,
    /// A named pipe (major and minor are ignored).
    Fifo,
}

/// The metadata of an object, as `lstat` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stat {
    /// What it is.
    pub kind: FileKind,
    /// Permission bits, including setuid, setgid and sticky (`0o7777`).
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Size in bytes.
    pub size: u64,
    /// Number of hard links.
    pub nlink: u64,
    /// Inode number.
    pub ino: u64,
    /// Device the object lives on.
    pub dev: u64,
    /// Major number, for device nodes.
    pub rdev_major: u64,
    /// Minor number, for device nodes.
    pub rdev_minor: u64,
    /// Modification time: seconds since the epoch.
    pub mtime: i64,
    /// Modification time: nanoseconds.
    pub mtime_nsec: i64,
}

impl From<FileStat> for Stat {
    fn from(st: FileStat) -> Self {
        let fmt = st.st_mode & SFlag::S_IFMT.bits();
        let kind = match SFlag::from_bits_truncate(fmt) {
            SFlag::S_IFDIR => FileKind::Dir,
            SFlag::S_IFLNK => FileKind::Symlink,
            SFlag::S_IFCHR => FileKind::CharDevice,
            SFlag::S_IFBLK => FileKind::BlockDevice,
            SFlag::S_IFIFO => FileKind::Fifo,
            SFlag::S_IFSOCK => FileKind::Socket,
            _ => FileKind::File,
        };
        Stat {
            kind,
            mode: st.st_mode & 0o7777,
            uid: st.st_uid,
            gid: st.st_gid,
            size: u64::try_from(st.st_size).unwrap_or(0),
            nlink: st.st_nlink,
            ino: st.st_ino,
            dev: st.st_dev,
            rdev_major: nix::sys::stat::major(st.st_rdev),
            rdev_minor: nix::sys::stat::minor(st.st_rdev),
            mtime: st.st_mtime,
            mtime_nsec: st.st_mtime_nsec,
        }
    }
}

/// A directory that relative paths are confined to.
#[derive(Debug)]
pub struct Root {
    fd: OwnedFd,
    path: PathBuf,
}

fn is_empty_rel(rel: &Path) -> bool {
    rel.components()
        .all(|c| matches!(c, Component::CurDir | Component::RootDir))
}

fn to_timespec(t: SystemTime) -> TimeSpec {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => TimeSpec::new(d.as_secs() as i64, i64::from(d.subsec_nanos())),
        Err(e) => {
            let d = e.duration();
            let (mut secs, mut nanos) = (-(d.as_secs() as i64), -i64::from(d.subsec_nanos()));
            if nanos < 0 {
                secs -= 1;
                nanos += 1_000_000_000;
            }
            TimeSpec::new(secs, nanos)
        }
    }
}

impl Root {
    /// Opens the directory `path` (following symlinks: the caller trusts this path).
    pub fn open(path: &Path) -> Result<Root> {
        let fd = nix::fcntl::open(
            path,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(sys("open root", path))?;
        Ok(Root {
            fd: own(fd),
            path: path.to_path_buf(),
        })
    }

    /// The path this root was opened at (for messages only: operations go through the fd).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// openat2 of `rel` inside the root. Symlinks in `rel` resolve inside the root; pass
    /// `O_NOFOLLOW` to not follow the final component.
    fn open_in(&self, rel: &Path, flags: OFlag, mode: Mode) -> nix::Result<OwnedFd> {
        let path: &Path = if rel.as_os_str().is_empty() {
            Path::new(".")
        } else {
            rel
        };
        let how = OpenHow::new()
            .flags(flags | OFlag::O_CLOEXEC)
            .mode(mode)
            .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
        let mut tries = 0;
        loop {
            match nix::fcntl::openat2(self.fd.as_raw_fd(), path, how) {
                Ok(fd) => return Ok(own(fd)),
                // RESOLVE_IN_ROOT returns EAGAIN when a concurrent rename might have let `..`
                // escape; retrying is the documented answer.
                Err(Errno::EAGAIN | Errno::EINTR) if tries < 64 => tries += 1,
                Err(e) => return Err(e),
            }
        }
    }

    /// The parent directory of `rel` (resolved inside the root) and its final component, which
    /// must be a plain name (not `.`, `..` or empty).
    fn parent<'a>(&self, rel: &'a Path, op: &'static str) -> Result<(OwnedFd, &'a OsStr)> {
        let name = match rel.components().next_back() {
            Some(Component::Normal(n)) => n,
            _ => return Err(bad(rel, "the final component must be a plain name")),
        };
        let parent = rel.parent().unwrap_or(Path::new(""));
        let fd = self
            .open_in(parent, OFlag::O_PATH | OFlag::O_DIRECTORY, Mode::empty())
            .map_err(sys(op, rel))?;
        Ok((fd, name))
    }

    /// Like [`Root::parent`], but an empty `rel` (or `.`) names the root itself.
    fn target<'a>(&self, rel: &'a Path, op: &'static str) -> Result<(OwnedFd, &'a OsStr)> {
        if is_empty_rel(rel) {
            let fd = self
                .open_in(
                    Path::new(""),
                    OFlag::O_PATH | OFlag::O_DIRECTORY,
                    Mode::empty(),
                )
                .map_err(sys(op, rel))?;
            return Ok((fd, OsStr::new(".")));
        }
        self.parent(rel, op)
    }

    /// Removes a non-directory at `name` in `parent` so something else can be created there.
    /// An existing directory is left alone (the create then fails with EEXIST).
    fn clear_nondir(parent: &OwnedFd, name: &OsStr, op: &'static str, rel: &Path) -> Result<()> {
        match nix::sys::stat::fstatat(Some(parent.as_raw_fd()), name, AtFlags::AT_SYMLINK_NOFOLLOW)
        {
            Ok(st) if Stat::from(st).kind == FileKind::Dir => Ok(()),
            Ok(_) => {
                nix::unistd::unlinkat(Some(parent.as_raw_fd()), name, UnlinkatFlags::NoRemoveDir)
                    .or_else(|e| if e == Errno::ENOENT { Ok(()) } else { Err(e) })
                    .map_err(sys(op, rel))
            }
            Err(Errno::ENOENT) => Ok(()),
            Err(e) => Err(sys(op, rel)(e)),
        }
    }

    /// Opens the directory `rel` (its final component must not be a symlink) as a new root.
    pub fn open_dir(&self, rel: &Path) -> Result<Root> {
        let fd = self
            .open_in(
                rel,
                OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW,
                Mode::empty(),
            )
            .map_err(sys("open dir", rel))?;
        Ok(Root {
            fd,
            path: self.path.join(rel),
        })
    }

    /// Opens the regular file `rel` for reading (the final component is not followed).
    pub fn open_file(&self, rel: &Path) -> Result<File> {
        let fd = self
            .open_in(rel, OFlag::O_RDONLY | OFlag::O_NOFOLLOW, Mode::empty())
            .map_err(sys("open file", rel))?;
        Ok(File::from(fd))
    }

    /// Creates the directory `rel` (mode is subject to the umask).
    pub fn create_dir(&self, rel: &Path, mode: u32) -> Result<()> {
        let (parent, name) = self.parent(rel, "mkdir")?;
        nix::sys::stat::mkdirat(
            Some(parent.as_raw_fd()),
            name,
            Mode::from_bits_truncate(mode),
        )
        .map_err(sys("mkdir", rel))
    }

    /// Creates `rel` and its missing parents; existing directories (or symlinks to directories
    /// inside the root) are fine. `..` components are refused.
    pub fn create_dir_all(&self, rel: &Path, mode: u32) -> Result<()> {
        let mut prefix = PathBuf::new();
        for c in rel.components() {
            match c {
                Component::CurDir | Component::RootDir => continue,
                Component::ParentDir | Component::Prefix(_) => {
                    return Err(bad(rel, "`..` is not allowed here"));
                }
                Component::Normal(n) => prefix.push(n),
            }
            match self.create_dir(&prefix, mode) {
                Ok(()) => {}
                Err(LinuxError::Sys {
                    errno: Errno::EEXIST,
                    ..
                }) => {}
                Err(e) => return Err(e),
            }
        }
        self.open_in(rel, OFlag::O_PATH | OFlag::O_DIRECTORY, Mode::empty())
            .map(drop)
            .map_err(sys("mkdir -p", rel))
    }

    /// Creates the regular file `rel` for writing (`O_CREAT|O_EXCL|O_NOFOLLOW`), first removing
    /// an existing non-directory there. Mode is subject to the umask.
    pub fn create_file(&self, rel: &Path, mode: u32) -> Result<File> {
        let (parent, name) = self.parent(rel, "create file")?;
        Self::clear_nondir(&parent, name, "create file", rel)?;
        let fd = nix::fcntl::openat(
            Some(parent.as_raw_fd()),
            name,
            OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_WRONLY | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(mode),
        )
        .map_err(sys("create file", rel))?;
        Ok(File::from(own(fd)))
    }

    /// Creates a symlink at `rel` pointing to `target` (stored as is, never resolved), replacing
    /// an existing non-directory.
    pub fn symlink(&self, target: &Path, rel: &Path) -> Result<()> {
        let (parent, name) = self.parent(rel, "symlink")?;
        Self::clear_nondir(&parent, name, "symlink", rel)?;
        nix::unistd::symlinkat(target, Some(parent.as_raw_fd()), name).map_err(sys("symlink", rel))
    }

    /// Creates `new_rel` as a hard link to `existing_rel` (itself, not what it points to if it
    /// is a symlink), replacing an existing non-directory at `new_rel`. Both are resolved inside
    /// the root, so the link can never reach a file outside it.
    pub fn hardlink(&self, existing_rel: &Path, new_rel: &Path) -> Result<()> {
        let (old_parent, old_name) = self.parent(existing_rel, "hardlink source")?;
        let (new_parent, new_name) = self.parent(new_rel, "hardlink")?;
        let old = nix::sys::stat::fstatat(
            Some(old_parent.as_raw_fd()),
            old_name,
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(sys("hardlink source", existing_rel))?;
        if let Ok(new) = nix::sys::stat::fstatat(
            Some(new_parent.as_raw_fd()),
            new_name,
            AtFlags::AT_SYMLINK_NOFOLLOW,
        ) && new.st_ino == old.st_ino
            && new.st_dev == old.st_dev
        {
            return Ok(());
        }
        Self::clear_nondir(&new_parent, new_name, "hardlink", new_rel)?;
        nix::unistd::linkat(
            Some(old_parent.as_raw_fd()),
            old_name,
            Some(new_parent.as_raw_fd()),
            new_name,
            AtFlags::empty(),
        )
        .map_err(sys("hardlink", new_rel))
    }

    /// Creates a device node or fifo at `rel`, replacing an existing non-directory.
    pub fn mknod(
        &self,
        rel: &Path,
        kind: DeviceKind,
        mode: u32,
        major: u64,
        minor: u64,
    ) -> Result<()> {
        let (parent, name) = self.parent(rel, "mknod")?;
        Self::clear_nondir(&parent, name, "mknod", rel)?;
        let (sflag, dev) = match kind {
            DeviceKind::Char => (SFlag::S_IFCHR, nix::sys::stat::makedev(major, minor)),
            DeviceKind::Block => (SFlag::S_IFBLK, nix::sys::stat::makedev(major, minor)),
            DeviceKind::Fifo => (SFlag::S_IFIFO, 0),
        };
        nix::sys::stat::mknodat(
            Some(parent.as_raw_fd()),
            name,
            sflag,
            Mode::from_bits_truncate(mode),
            dev,
        )
        .map_err(sys("mknod", rel))
    }

    /// Removes the file, symlink, device or empty directory at `rel` (not following it).
    pub fn remove(&self, rel: &Path) -> Result<()> {
        let (parent, name) = self.parent(rel, "remove")?;
        let st =
            nix::sys::stat::fstatat(Some(parent.as_raw_fd()), name, AtFlags::AT_SYMLINK_NOFOLLOW)
                .map_err(sys("remove", rel))?;
        let flag = if Stat::from(st).kind == FileKind::Dir {
            UnlinkatFlags::RemoveDir
        } else {
            UnlinkatFlags::NoRemoveDir
        };
        nix::unistd::unlinkat(Some(parent.as_raw_fd()), name, flag).map_err(sys("remove", rel))
    }

    /// Removes `rel` and everything under it (never following symlinks). Read-only
    /// directories are made writable first. Nothing there is not an error.
    pub fn remove_all(&self, rel: &Path) -> Result<()> {
        let (parent, name) = match self.parent(rel, "remove all") {
            Ok(p) => p,
            Err(LinuxError::Sys {
                errno: Errno::ENOENT | Errno::ENOTDIR,
                ..
            }) => return Ok(()),
            Err(e) => return Err(e),
        };
        remove_all_at(&parent, name, rel)
    }

    /// Changes owner and group of `rel` itself (not following a symlink).
    pub fn lchown(&self, rel: &Path, uid: u32, gid: u32) -> Result<()> {
        let (parent, name) = self.target(rel, "lchown")?;
        nix::unistd::fchownat(
            Some(parent.as_raw_fd()),
            name,
            Some(Uid::from_raw(uid)),
            Some(Gid::from_raw(gid)),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(sys("lchown", rel))
    }

    /// Sets the permission bits (`0o7777`) of `rel`. A symlink is left alone (Linux ignores
    /// symlink modes): it is never followed.
    pub fn chmod(&self, rel: &Path, mode: u32) -> Result<()> {
        let (parent, name) = self.target(rel, "chmod")?;
        let fd = nix::fcntl::openat(
            Some(parent.as_raw_fd()),
            name,
            OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map(own)
        .map_err(sys("chmod", rel))?;
        chmod_fd(&fd, mode).map_err(sys("chmod", rel))
    }

    /// Sets access and modification times of `rel` itself (`AT_SYMLINK_NOFOLLOW`).
    pub fn set_times(&self, rel: &Path, atime: SystemTime, mtime: SystemTime) -> Result<()> {
        let (parent, name) = self.target(rel, "set times")?;
        nix::sys::stat::utimensat(
            Some(parent.as_raw_fd()),
            name,
            &to_timespec(atime),
            &to_timespec(mtime),
            UtimensatFlags::NoFollowSymlink,
        )
        .map_err(sys("set times", rel))
    }

    /// Sets an extended attribute on `rel` itself (a symlink is not followed). Goes through
    /// `lsetxattr("/proc/self/fd/<parent fd>/<name>")`, which names exactly the entry in the
    /// parent directory we resolved inside the root, whatever its type (regular files,
    /// directories, symlinks, device nodes, fifos).
    pub fn set_xattr(&self, rel: &Path, name: &OsStr, value: &[u8]) -> Result<()> {
        let (parent, fname) = self.target(rel, "set xattr")?;
        let path = proc_fd_path(&parent).join(fname);
        xattr::set(&path, name, value).map_err(|e| match e.raw_os_error() {
            Some(code) => sys("set xattr", rel)(Errno::from_raw(code)),
            None => LinuxError::Io {
                op: "set xattr",
                path: rel.to_path_buf(),
                source: e,
            },
        })
    }

    /// Reads an extended attribute of `rel` itself (`None` if it is not set).
    pub fn get_xattr(&self, rel: &Path, name: &OsStr) -> Result<Option<Vec<u8>>> {
        let (parent, fname) = self.target(rel, "get xattr")?;
        let path = proc_fd_path(&parent).join(fname);
        xattr::get(&path, name).map_err(|e| match e.raw_os_error() {
            Some(code) => sys("get xattr", rel)(Errno::from_raw(code)),
            None => LinuxError::Io {
                op: "get xattr",
                path: rel.to_path_buf(),
                source: e,
            },
        })
    }

    /// The metadata of `rel` itself (a symlink is not followed).
    pub fn lstat(&self, rel: &Path) -> Result<Stat> {
        let (parent, name) = self.target(rel, "lstat")?;
        nix::sys::stat::fstatat(Some(parent.as_raw_fd()), name, AtFlags::AT_SYMLINK_NOFOLLOW)
            .map(Stat::from)
            .map_err(sys("lstat", rel))
    }

    /// The metadata of what `rel` names, following symlinks (all of them resolved inside the
    /// root), e.g. to check a container's executable before starting it.
    pub fn stat(&self, rel: &Path) -> Result<Stat> {
        let fd = self
            .open_in(rel, OFlag::O_PATH, Mode::empty())
            .map_err(sys("stat", rel))?;
        nix::sys::stat::fstat(fd.as_raw_fd())
            .map(Stat::from)
            .map_err(sys("stat", rel))
    }

    /// Like [`Root::lstat`], but `None` when nothing is there (or a parent is missing).
    pub fn try_lstat(&self, rel: &Path) -> Result<Option<Stat>> {
        match self.lstat(rel) {
            Ok(st) => Ok(Some(st)),
            Err(LinuxError::Sys {
                errno: Errno::ENOENT | Errno::ENOTDIR,
                ..
            }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The target of the symlink `rel`.
    pub fn read_link(&self, rel: &Path) -> Result<PathBuf> {
        let (parent, name) = self.parent(rel, "readlink")?;
        nix::fcntl::readlinkat(Some(parent.as_raw_fd()), name)
            .map(PathBuf::from)
            .map_err(sys("readlink", rel))
    }

    /// The names in the directory `rel` (empty: the root itself), without `.` and `..`, sorted
    /// bytewise. The final component must be a directory, not a symlink to one.
    pub fn read_dir(&self, rel: &Path) -> Result<Vec<OsString>> {
        let fd = self
            .open_in(
                rel,
                OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW,
                Mode::empty(),
            )
            .map_err(sys("read dir", rel))?;
        let mut listing = Dir::openat(
            Some(fd.as_raw_fd()),
            ".",
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(sys("read dir", rel))?;
        let mut names = Vec::new();
        for entry in listing.iter() {
            let entry = entry.map_err(sys("read dir", rel))?;
            let n = entry.file_name().to_bytes();
            if n != b"." && n != b".." {
                names.push(OsStr::from_bytes(n).to_os_string());
            }
        }
        names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        Ok(names)
    }

    /// The names of the extended attributes of `rel` itself (a symlink is not followed).
    pub fn list_xattrs(&self, rel: &Path) -> Result<Vec<OsString>> {
        let (parent, fname) = self.target(rel, "list xattrs")?;
        let path = proc_fd_path(&parent).join(fname);
        match xattr::list(&path) {
            Ok(names) => Ok(names.collect()),
            Err(e) => match e.raw_os_error() {
                // A file system without xattrs has none to list.
                Some(code) if Errno::from_raw(code) == Errno::ENOTSUP => Ok(Vec::new()),
                Some(code) => Err(sys("list xattrs", rel)(Errno::from_raw(code))),
                None => Err(LinuxError::Io {
                    op: "list xattrs",
                    path: rel.to_path_buf(),
                    source: e,
                }),
            },
        }
    }
}

/// Reading and resolving for archive copies (`docker cp`): what a copy out of a container
/// needs beyond the operations above.
impl Root {
    /// Opens the regular file `rel` for reading, never following the final component and
    /// never blocking on a fifo or device someone swapped in meanwhile: anything but a regular
    /// file is refused with `EINVAL`.
    pub fn open_regular(&self, rel: &Path) -> Result<File> {
        let fd = self
            .open_in(
                rel,
                OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_NOCTTY,
                Mode::empty(),
            )
            .map_err(sys("open file", rel))?;
        let st = nix::sys::stat::fstat(fd.as_raw_fd()).map_err(sys("open file", rel))?;
        if Stat::from(st).kind != FileKind::File {
            return Err(sys("open file", rel)(Errno::EINVAL));
        }
        // Reads of a regular file never block; clear O_NONBLOCK all the same.
        nix::fcntl::fcntl(
            fd.as_raw_fd(),
            nix::fcntl::FcntlArg::F_SETFL(OFlag::O_RDONLY),
        )
        .map_err(sys("open file", rel))?;
        Ok(File::from(fd))
    }

    /// Opens the directory `rel` as a new root, following every symlink on the way, the final
    /// component included (all of them resolved inside this root).
    pub fn open_dir_resolved(&self, rel: &Path) -> Result<Root> {
        let fd = self
            .open_in(rel, OFlag::O_PATH | OFlag::O_DIRECTORY, Mode::empty())
            .map_err(sys("open dir", rel))?;
        Ok(Root {
            fd,
            path: self.path.join(rel),
        })
    }

    /// What `rel` names once every symlink in it (the final component included) is resolved
    /// inside the root: a path relative to the root without symlinks, `..` or `.` (empty for
    /// the root itself). Fails with `ENOENT` when something on the way is missing (a dangling
    /// symlink included).
    pub fn resolve(&self, rel: &Path) -> Result<PathBuf> {
        let fd = self
            .open_in(rel, OFlag::O_PATH, Mode::empty())
            .map_err(sys("resolve", rel))?;
        let base = nix::fcntl::readlink(&proc_fd_path(&self.fd)).map_err(sys("resolve", rel))?;
        let full = nix::fcntl::readlink(&proc_fd_path(&fd)).map_err(sys("resolve", rel))?;
        let base = Path::new(&base);
        let full = Path::new(&full);
        // The kernel names both objects from the same mount namespace, so the target's path
        // starts with the root's (openat2 guarantees the target is inside it).
        full.strip_prefix(base)
            .map(Path::to_path_buf)
            .map_err(|_| bad(rel, "resolved outside the root's path"))
    }
}

/// chmod of exactly the object behind an `O_PATH` fd (a symlink is left alone).
fn chmod_fd(fd: &OwnedFd, mode: u32) -> nix::Result<()> {
    let st = nix::sys::stat::fstat(fd.as_raw_fd())?;
    if Stat::from(st).kind == FileKind::Symlink {
        return Ok(());
    }
    // Following the /proc magic link reaches the inode itself, never a path re-resolved.
    nix::sys::stat::fchmodat(
        None,
        &proc_fd_path(fd),
        Mode::from_bits_truncate(mode & 0o7777),
        FchmodatFlags::FollowSymlink,
    )
}

fn remove_all_at(parent: &OwnedFd, name: &OsStr, rel: &Path) -> Result<()> {
    let pfd = Some(parent.as_raw_fd());
    let st = match nix::sys::stat::fstatat(pfd, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) => Stat::from(st),
        Err(Errno::ENOENT) => return Ok(()),
        Err(e) => return Err(sys("remove all", rel)(e)),
    };
    let ignore_gone = |e: Errno| if e == Errno::ENOENT { Ok(()) } else { Err(e) };
    if st.kind != FileKind::Dir {
        return nix::unistd::unlinkat(pfd, name, UnlinkatFlags::NoRemoveDir)
            .or_else(ignore_gone)
            .map_err(sys("remove all", rel));
    }
    let dir = nix::fcntl::openat(
        pfd,
        name,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map(own)
    .map_err(sys("remove all", rel))?;
    if st.mode & 0o700 != 0o700 {
        chmod_fd(&dir, st.mode | 0o700).map_err(sys("remove all: chmod", rel))?;
    }
    let mut listing = Dir::openat(
        Some(dir.as_raw_fd()),
        ".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(sys("remove all: list", rel))?;
    let mut names: Vec<OsString> = Vec::new();
    for entry in listing.iter() {
        let entry = entry.map_err(sys("remove all: list", rel))?;
        let n = entry.file_name().to_bytes();
        if n != b"." && n != b".." {
            names.push(OsStr::from_bytes(n).to_os_string());
        }
    }
    drop(listing);
    for n in names {
        remove_all_at(&dir, &n, &rel.join(&n))?;
    }
    nix::unistd::unlinkat(pfd, name, UnlinkatFlags::RemoveDir)
        .or_else(ignore_gone)
        .map_err(sys("remove all", rel))
}

/// A bind mount made by [`Root::bind_mount`]. It is unmounted through the descriptor of the
/// mount itself, never through a path that a container changing its files could redirect.
#[derive(Debug)]
pub struct BindMount {
    fd: OwnedFd,
}

impl BindMount {
    /// Detaches the mount (lazily: a busy mount never blocks the cleanup).
    pub fn unmount(self) -> Result<()> {
        let path = proc_fd_path(&self.fd);
        match nix::mount::umount2(&path, nix::mount::MntFlags::MNT_DETACH) {
            Ok(()) | Err(Errno::EINVAL) | Err(Errno::ENOENT) => Ok(()),
            Err(errno) => Err(LinuxError::Sys {
                op: "unmount",
                path,
                errno,
            }),
        }
    }
}

/// Bind mounts inside a root (volumes over a stopped container's files for `docker cp`).
impl Root {
    /// Bind-mounts the host path `source` (recursively; read-only when `readonly`) on `rel`,
    /// which is resolved inside the root with every symlink followed there (a link to `/` or
    /// `../..` leads back into the root). A missing `rel` is created: a directory for a
    /// directory source, an empty file otherwise. The new mount is checked to be the
    /// source's before it is handed back.
    pub fn bind_mount(&self, source: &Path, rel: &Path, readonly: bool) -> Result<BindMount> {
        let src = nix::sys::stat::stat(source).map_err(sys("bind mount source", source))?;
        let src_dir = Stat::from(src).kind == FileKind::Dir;
        match self.open_in(rel, OFlag::O_PATH, Mode::empty()) {
            Ok(_) => {}
            Err(Errno::ENOENT) if src_dir => self.create_dir_all(rel, 0o755)?,
            Err(Errno::ENOENT) => {
                if let Some(parent) = rel.parent() {
                    self.create_dir_all(parent, 0o755)?;
                }
                drop(self.create_file(rel, 0o644)?);
            }
            Err(e) => return Err(sys("bind mount target", rel)(e)),
        }
        let target = self
            .open_in(rel, OFlag::O_PATH, Mode::empty())
            .map_err(sys("bind mount target", rel))?;
        nix::mount::mount(
            Some(source),
            &proc_fd_path(&target),
            None::<&str>,
            nix::mount::MsFlags::MS_BIND | nix::mount::MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(sys("bind mount", rel))?;
        // What `rel` names now is the new mount's root (a lookup crosses onto mounts).
        let mounted = self
            .open_in(rel, OFlag::O_PATH, Mode::empty())
            .map_err(sys("bind mount", rel))?;
        let here = nix::sys::stat::fstat(mounted.as_raw_fd()).map_err(sys("bind mount", rel))?;
        let mount = BindMount { fd: mounted };
        if (here.st_dev, here.st_ino) != (src.st_dev, src.st_ino) {
            // The target was moved meanwhile (only a running container can do that). The
            // mount stays where `target` went, inside the root, and goes with the root's
            // (recursive, lazy) unmount.
            return Err(bad(rel, "the mount target changed while it was mounted"));
        }
        if readonly {
            let flags = nix::mount::MsFlags::MS_BIND
                | nix::mount::MsFlags::MS_REMOUNT
                | nix::mount::MsFlags::MS_RDONLY;
            if let Err(e) = nix::mount::mount(
                None::<&str>,
                &proc_fd_path(&mount.fd),
                None::<&str>,
                flags,
                None::<&str>,
            ) {
                let _ = mount.unmount();
                return Err(sys("remount read-only", rel)(e));
            }
        }
        Ok(mount)
    }
}

/// Writes `data` to `path` atomically: a temporary file beside it (created with `mode`), then a
/// rename over `path`. `durable` adds the fsyncs of the file and of its directory. A failed
/// write leaves `path` as it was and no temporary file behind.
pub fn write_atomic(path: &Path, data: &[u8], mode: u32, durable: bool) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let io = |op: &'static str, p: &Path| {
        let path = p.to_path_buf();
        move |source| LinuxError::Io { op, path, source }
    };
    let mut name = OsString::from(".");
    name.push(path.file_name().unwrap_or(OsStr::new("file")));
    name.push(".tmp");
    let tmp = path.with_file_name(name);
    let res = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)
            .map_err(io("create", &tmp))?;
        f.write_all(data).map_err(io("write", &tmp))?;
        if durable {
            f.sync_all().map_err(io("fsync", &tmp))?;
        }
        drop(f);
        std::fs::rename(&tmp, path).map_err(io("rename", path))
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
        return res;
    }
    if durable
        && let Some(dir) = path.parent()
        && let Ok(d) = File::open(dir)
    {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;

    fn root() -> (tempfile::TempDir, Root) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("r")).unwrap();
        let root = Root::open(&dir.path().join("r")).unwrap();
        (dir, root)
    }

    fn unique(tag: &str) -> String {
        format!(
            "berth-escape-{tag}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        )
        .replace(['(', ')'], "")
    }

    #[test]
    fn symlink_to_slash_does_not_escape() {
        let (dir, root) = root();
        root.symlink(Path::new("/"), Path::new("link")).unwrap();
        let name = unique("abs");
        let mut f = root
            .create_file(&Path::new("link").join(&name), 0o644)
            .unwrap();
        f.write_all(b"hi").unwrap();
        assert!(!Path::new("/").join(&name).exists());
        assert!(dir.path().join("r").join(&name).exists());
        // The symlink itself is untouched.
        assert_eq!(root.read_link(Path::new("link")).unwrap(), Path::new("/"));
    }

    #[test]
    fn relative_symlink_and_dotdot_do_not_escape() {
        let (dir, root) = root();
        root.create_dir(Path::new("a"), 0o755).unwrap();
        root.symlink(Path::new("../.."), Path::new("a/up")).unwrap();
        root.create_file(Path::new("a/up/x"), 0o644).unwrap();
        assert!(dir.path().join("r/x").exists());
        assert!(!dir.path().join("x").exists());
        root.create_file(Path::new("../../y"), 0o644).unwrap();
        assert!(dir.path().join("r/y").exists());
        assert!(!dir.path().join("y").exists());
        assert!(matches!(
            root.create_dir_all(Path::new("a/../../b"), 0o755),
            Err(LinuxError::BadPath { .. })
        ));
        assert!(matches!(
            root.create_file(Path::new("a/.."), 0o644),
            Err(LinuxError::BadPath { .. })
        ));
        // A directory symlink escaping the root is followed inside it.
        root.symlink(Path::new("/"), Path::new("s")).unwrap();
        root.create_dir_all(Path::new("s/made/here"), 0o755)
            .unwrap();
        assert!(dir.path().join("r/made/here").is_dir());
    }

    #[test]
    fn hardlink_cannot_reach_outside() {
        let (dir, root) = root();
        std::fs::write(dir.path().join("secret"), b"s").unwrap();
        root.symlink(Path::new("/etc"), Path::new("etc")).unwrap();
        root.symlink(Path::new(".."), Path::new("up")).unwrap();
        assert!(
            root.hardlink(Path::new("etc/passwd"), Path::new("pw"))
                .is_err()
        );
        assert!(
            root.hardlink(Path::new("up/secret"), Path::new("s"))
                .is_err()
        );
        assert!(
            root.hardlink(Path::new("../secret"), Path::new("s"))
                .is_err()
        );
        assert!(root.try_lstat(Path::new("pw")).unwrap().is_none());
        // Inside the root it works.
        root.create_file(Path::new("f"), 0o644).unwrap();
        root.hardlink(Path::new("f"), Path::new("g")).unwrap();
        let (f, g) = (
            root.lstat(Path::new("f")).unwrap(),
            root.lstat(Path::new("g")).unwrap(),
        );
        assert_eq!(f.ino, g.ino);
        assert_eq!(g.nlink, 2);
    }

    #[test]
    fn metadata_ops_do_not_follow_symlinks() {
        let (dir, root) = root();
        std::fs::write(dir.path().join("outside"), b"o").unwrap();
        std::fs::set_permissions(dir.path().join("outside"), PermissionsExt::from_mode(0o600))
            .unwrap();
        let before = std::fs::metadata(dir.path().join("outside")).unwrap();
        root.symlink(&dir.path().join("outside"), Path::new("l"))
            .unwrap();
        root.chmod(Path::new("l"), 0o777).unwrap();
        let t = UNIX_EPOCH + std::time::Duration::from_secs(1000);
        root.set_times(Path::new("l"), t, t).unwrap();
        let after = std::fs::metadata(dir.path().join("outside")).unwrap();
        assert_eq!(after.permissions().mode() & 0o777, 0o600);
        assert_eq!(before.modified().unwrap(), after.modified().unwrap());
        assert_eq!(root.lstat(Path::new("l")).unwrap().mtime, 1000);
        assert_eq!(root.lstat(Path::new("l")).unwrap().kind, FileKind::Symlink);

        root.create_file(Path::new("f"), 0o600).unwrap();
        root.chmod(Path::new("f"), 0o4755).unwrap();
        assert_eq!(root.lstat(Path::new("f")).unwrap().mode, 0o4755);
        root.set_times(Path::new(""), t, t).unwrap();
        assert_eq!(root.lstat(Path::new("")).unwrap().mtime, 1000);
    }

    #[test]
    fn remove_all_handles_read_only_dirs_and_symlinks() {
        let (dir, root) = root();
        std::fs::write(dir.path().join("keep"), b"k").unwrap();
        root.create_dir_all(Path::new("a/b/c"), 0o755).unwrap();
        root.create_file(Path::new("a/b/c/f"), 0o644).unwrap();
        root.symlink(&dir.path().join("keep"), Path::new("a/b/l"))
            .unwrap();
        root.symlink(dir.path(), Path::new("a/d")).unwrap();
        root.chmod(Path::new("a/b"), 0o555).unwrap();
        root.chmod(Path::new("a/b/c"), 0o000).unwrap();
        root.remove_all(Path::new("a")).unwrap();
        assert!(root.try_lstat(Path::new("a")).unwrap().is_none());
        assert!(dir.path().join("keep").exists());
        root.remove_all(Path::new("a")).unwrap();
        root.remove_all(Path::new("missing/parent")).unwrap();

        root.create_file(Path::new("x"), 0o644).unwrap();
        root.remove(Path::new("x")).unwrap();
        assert!(root.remove(Path::new("x")).is_err());
    }

    #[test]
    fn read_dir_lists_sorted_and_does_not_follow() {
        let (dir, root) = root();
        std::fs::create_dir(dir.path().join("outside")).unwrap();
        std::fs::write(dir.path().join("outside/secret"), b"s").unwrap();
        root.create_dir(Path::new("d"), 0o755).unwrap();
        for n in ["b", "a", "a-c", "B"] {
            root.create_file(&Path::new("d").join(n), 0o644).unwrap();
        }
        root.symlink(&dir.path().join("outside"), Path::new("l"))
            .unwrap();
        let names = root.read_dir(Path::new("d")).unwrap();
        assert_eq!(names, vec!["B", "a", "a-c", "b"]);
        assert_eq!(root.read_dir(Path::new("")).unwrap(), vec!["d", "l"]);
        // The final symlink is refused, not followed.
        assert!(root.read_dir(Path::new("l")).is_err());
        assert!(root.read_dir(Path::new("d/a")).is_err());
        // Extended attributes of an ordinary file: none that we set (the list may be empty).
        let xs = root.list_xattrs(Path::new("d/a")).unwrap();
        assert!(xs.iter().all(|x| !x.as_bytes().starts_with(b"user.")));
    }

    #[test]
    fn create_file_replaces_non_dirs_only() {
        let (_dir, root) = root();
        root.symlink(Path::new("/etc/passwd"), Path::new("f"))
            .unwrap();
        let mut f = root.create_file(Path::new("f"), 0o644).unwrap();
        f.write_all(b"new").unwrap();
        assert_eq!(root.lstat(Path::new("f")).unwrap().kind, FileKind::File);
        root.create_dir(Path::new("d"), 0o755).unwrap();
        assert!(root.create_file(Path::new("d"), 0o644).is_err());
        root.mknod(Path::new("p"), DeviceKind::Fifo, 0o644, 0, 0)
            .unwrap();
        assert_eq!(root.lstat(Path::new("p")).unwrap().kind, FileKind::Fifo);
    }

    #[test]
    fn devices_and_trusted_xattrs_as_root() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let (_dir, root) = root();
        root.mknod(Path::new("wh"), DeviceKind::Char, 0, 0, 0)
            .unwrap();
        let st = root.lstat(Path::new("wh")).unwrap();
        assert_eq!(
            (st.kind, st.rdev_major, st.rdev_minor),
            (FileKind::CharDevice, 0, 0)
        );
        root.create_dir(Path::new("d"), 0o755).unwrap();
        root.set_xattr(Path::new("d"), OsStr::new("trusted.overlay.opaque"), b"y")
            .unwrap();
        assert_eq!(
            root.get_xattr(Path::new("d"), OsStr::new("trusted.overlay.opaque"))
                .unwrap(),
            Some(b"y".to_vec())
        );
        root.symlink(Path::new("d"), Path::new("l")).unwrap();
        root.set_xattr(Path::new("l"), OsStr::new("trusted.x"), b"1")
            .unwrap();
        assert_eq!(
            root.get_xattr(Path::new("l"), OsStr::new("trusted.x"))
                .unwrap(),
            Some(b"1".to_vec())
        );
        assert_eq!(
            root.get_xattr(Path::new("d"), OsStr::new("trusted.x"))
                .unwrap(),
            None
        );
        root.lchown(Path::new("l"), 1000, 1000).unwrap();
        assert_eq!(root.lstat(Path::new("l")).unwrap().uid, 1000);
        assert_eq!(root.lstat(Path::new("d")).unwrap().uid, 0);
    }
}

#[cfg(test)]
mod archive_tests {
    use super::*;
    use std::io::Read;

    fn root() -> (tempfile::TempDir, Root) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("r")).unwrap();
        let root = Root::open(&dir.path().join("r")).unwrap();
        (dir, root)
    }

    #[test]
    fn open_regular_refuses_fifos_and_symlinks() {
        let (_dir, root) = root();
        std::fs::write(root.path().join("f"), b"data").unwrap();
        let mut s = String::new();
        root.open_regular(Path::new("f"))
            .unwrap()
            .read_to_string(&mut s)
            .unwrap();
        assert_eq!(s, "data");
        // A fifo would block an ordinary open for reading; this one fails at once.
        root.mknod(Path::new("p"), DeviceKind::Fifo, 0o644, 0, 0)
            .unwrap();
        let e = root.open_regular(Path::new("p")).unwrap_err();
        assert_eq!(e.errno(), Some(Errno::EINVAL));
        root.symlink(Path::new("f"), Path::new("l")).unwrap();
        assert_eq!(
            root.open_regular(Path::new("l")).unwrap_err().errno(),
            Some(Errno::ELOOP)
        );
    }

    #[test]
    fn resolve_stays_inside_the_root() {
        let (dir, root) = root();
        std::fs::write(dir.path().join("outside"), b"o").unwrap();
        root.create_dir_all(Path::new("etc/sub"), 0o755).unwrap();
        root.symlink(Path::new("/"), Path::new("escape")).unwrap();
        root.symlink(Path::new("../../../.."), Path::new("etc/up"))
            .unwrap();
        root.symlink(Path::new("sub"), Path::new("etc/rel"))
            .unwrap();
        root.symlink(Path::new("/nowhere"), Path::new("dangling"))
            .unwrap();
        assert_eq!(root.resolve(Path::new("escape")).unwrap(), Path::new(""));
        assert_eq!(
            root.resolve(Path::new("escape/etc/up/etc/rel")).unwrap(),
            Path::new("etc/sub")
        );
        assert_eq!(root.resolve(Path::new("")).unwrap(), Path::new(""));
        assert!(root.resolve(Path::new("etc/up/outside")).is_err());
        assert_eq!(
            root.resolve(Path::new("dangling")).unwrap_err().errno(),
            Some(Errno::ENOENT)
        );
        let sub = root.open_dir_resolved(Path::new("escape/etc/rel")).unwrap();
        drop(sub.create_file(Path::new("x"), 0o644).unwrap());
        assert!(dir.path().join("r/etc/sub/x").exists());
        assert!(root.open_dir(Path::new("etc/rel")).is_err());
    }
}

#[cfg(test)]
mod bind_mount_tests {
    use super::*;

    fn enabled() -> bool {
        std::env::var("BERTH_TEST_ROOT").is_ok_and(|v| v == "1") && nix::unistd::geteuid().is_root()
    }

    #[test]
    fn binds_land_inside_the_root_and_unmount_by_descriptor() {
        if !enabled() {
            eprintln!("skipped: set BERTH_TEST_ROOT=1 and run as root");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let rootfs = dir.path().join("rootfs");
        let src = dir.path().join("src");
        std::fs::create_dir_all(&rootfs).unwrap();
        std::fs::create_dir_all(&src).unwrap();
        std::fs::write(src.join("marker"), "m").unwrap();
        // A link to the host's root inside the container's root.
        std::os::unix::fs::symlink("/", rootfs.join("evil")).unwrap();
        let probe = format!("tmp/berth-bind-probe-{}", std::process::id());
        let root = Root::open(&rootfs).unwrap();
        let rel = Path::new("evil").join(&probe);
        let m = root.bind_mount(&src, &rel, true).unwrap();
        // Mounted inside the root, never at the host's /tmp.
        assert!(!Path::new("/").join(&probe).exists());
        let inside = rootfs.join(&probe);
        assert_eq!(std::fs::read_to_string(inside.join("marker")).unwrap(), "m");
        assert!(std::fs::write(inside.join("x"), "x").is_err(), "read-only");
        m.unmount().unwrap();
        assert!(!inside.join("marker").exists());
        // A file source onto a missing file.
        let m = root
            .bind_mount(&src.join("marker"), Path::new("etc/f"), false)
            .unwrap();
        assert_eq!(std::fs::read_to_string(rootfs.join("etc/f")).unwrap(), "m");
        m.unmount().unwrap();
        assert_eq!(std::fs::read_to_string(rootfs.join("etc/f")).unwrap(), "");
    }
}
