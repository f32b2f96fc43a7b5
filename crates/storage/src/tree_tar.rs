//! Tar streams of a tree inside a [`Root`], and their extraction into one: the file half of
//! `docker cp` (both ways) and `docker export`.
//!
//! [`write_tree`] archives a file, directory, symlink or device found at a path inside a root,
//! never following a symlink below (or at) that path: modes (setuid, setgid and sticky
//! included), owners, mtimes (whole seconds, as moby writes them), symlinks, hardlinks between
//! files of the tree, device nodes and extended attributes (`SCHILY.xattr.*` PAX records:
//! `user.*`, `trusted.*` but never `trusted.overlay.*`, and `security.capability`) are kept;
//! sockets are skipped, as moby does. The top entry takes the name the caller gives ([`Top`]):
//! Docker names it after the base name of the requested path (`passwd`, `etc/`, `./` for
//! `/etc/.`, `/` for the root), and `export` writes the contents alone. Names are written raw
//! (a PAX `path`/`linkpath` record when they do not fit the header), so `./` and `/` survive.
//!
//! [`extract`] unpacks a tar into a directory inside a root, every path resolved inside the
//! root (`openat2(RESOLVE_IN_ROOT)`): a symlink in the tree or in the archive, pointing to `/`
//! or `../../..`, can only ever lead back into the root. Names with `..` are refused with
//! moby's `"<name>" is outside of "<dest>"`; leading `/` anchors at the destination, as moby
//! does. With [`ExtractOptions::no_overwrite_dir_non_dir`] a directory is never replaced by a
//! non-directory nor the reverse. Whiteouts mean nothing here (they belong to layers:
//! [`crate::layer::apply`]); a `.wh.` name is an ordinary file.
//!
//! It knows nothing of containers: callers hand it a root and paths relative to it.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use linux::Errno;
use linux::fs::{DeviceKind, FileKind, Root, Stat};

use crate::layer::{normalise, pax_xattrs};
use crate::{Result, StorageError};

/// How the top entry of [`write_tree`] is named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Top {
    /// The top entry is written under this name, and everything below it under `name/…`
    /// (`/` and names ending in `/` are not doubled: `/` gives `/`, `/etc/`, …).
    Named(Vec<u8>),
    /// No top entry: the contents of the directory, named relative to it (`bin/`, `bin/sh`).
    Contents,
}

/// What [`write_tree`] or [`extract`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TarStats {
    /// Tar entries (PAX headers not counted).
    pub entries: u64,
    /// Bytes of regular file content.
    pub content: u64,
}

const BLOCK: usize = 512;

fn io_err(op: &'static str, rel: &Path) -> impl FnOnce(io::Error) -> StorageError {
    StorageError::io(op, rel)
}

/// A writer of raw tar entries: ustar headers, PAX records for what does not fit.
struct TarOut<W: Write> {
    out: W,
}

/// One PAX record: `"<len> <key>=<value>\n"`, where `len` counts the whole record.
fn pax_record(key: &[u8], value: &[u8]) -> Vec<u8> {
    let base = key.len() + value.len() + 3;
    let mut len = base + base.to_string().len();
    if len.to_string().len() > base.to_string().len() {
        len += 1;
    }
    let mut r = format!("{len} ").into_bytes();
    r.extend_from_slice(key);
    r.push(b'=');
    r.extend_from_slice(value);
    r.push(b'\n');
    r
}

impl<W: Write> TarOut<W> {
    fn pad(&mut self, len: u64) -> io::Result<()> {
        let rem = (len % BLOCK as u64) as usize;
        if rem != 0 {
            self.out.write_all(&[0; BLOCK][..BLOCK - rem])?;
        }
        Ok(())
    }

    /// Writes one entry: `header` has everything but the names and checksum set; `data` is
    /// copied for exactly the header's size (cut if longer, zero-padded if shorter: a file of
    /// a running container may change while it is read).
    fn entry(
        &mut self,
        mut header: tar::Header,
        name: &[u8],
        link: Option<&[u8]>,
        xattrs: &[(OsString, Vec<u8>)],
        data: Option<&mut dyn Read>,
    ) -> io::Result<()> {
        let mut pax: Vec<u8> = Vec::new();
        let name_field = &mut header.as_old_mut().name;
        if name.len() <= name_field.len() {
            name_field[..name.len()].copy_from_slice(name);
        } else {
            let n = name_field.len();
            name_field.copy_from_slice(&name[..n]);
            pax.extend(pax_record(b"path", name));
        }
        if let Some(link) = link {
            let field = &mut header.as_old_mut().linkname;
            if link.len() <= field.len() {
                field[..link.len()].copy_from_slice(link);
            } else {
                let n = field.len();
                field.copy_from_slice(&link[..n]);
                pax.extend(pax_record(b"linkpath", link));
            }
        }
        for (k, v) in xattrs {
            let mut key = b"SCHILY.xattr.".to_vec();
            key.extend_from_slice(k.as_bytes());
            pax.extend(pax_record(&key, v));
        }
        if !pax.is_empty() {
            let mut h = tar::Header::new_ustar();
            h.as_old_mut().name[..9].copy_from_slice(b"PaxHeader");
            h.set_entry_type(tar::EntryType::XHeader);
            h.set_mode(0o644);
            h.set_size(pax.len() as u64);
            h.set_mtime(header.mtime().unwrap_or(0));
            h.set_cksum();
            self.out.write_all(h.as_bytes())?;
            self.out.write_all(&pax)?;
            self.pad(pax.len() as u64)?;
        }
        header.set_cksum();
        self.out.write_all(header.as_bytes())?;
        let size = header.size()?;
        if let Some(data) = data {
            let copied = io::copy(&mut data.take(size), &mut self.out)?;
            if copied < size {
                tracing::debug!(
                    name = %String::from_utf8_lossy(name),
                    "file shrank while archived; padding with zeros"
                );
                io::copy(&mut io::repeat(0).take(size - copied), &mut self.out)?;
            }
            self.pad(size)?;
        }
        Ok(())
    }

    fn finish(mut self) -> io::Result<W> {
        self.out.write_all(&[0; 2 * BLOCK])?;
        self.out.flush()?;
        Ok(self.out)
    }
}

fn header(st: &Stat, kind: tar::EntryType) -> tar::Header {
    // The file type bits in the mode field too, as Go's archive/tar (and so moby) writes them.
    let type_bits = match st.kind {
        FileKind::File => 0o100_000,
        FileKind::Dir => 0o040_000,
        FileKind::Symlink => 0o120_000,
        FileKind::CharDevice => 0o020_000,
        FileKind::BlockDevice => 0o060_000,
        FileKind::Fifo => 0o010_000,
        FileKind::Socket => 0o140_000,
    };
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(kind);
    h.set_mode((st.mode & 0o7777) | type_bits);
    h.set_uid(u64::from(st.uid));
    h.set_gid(u64::from(st.gid));
    h.set_mtime(u64::try_from(st.mtime).unwrap_or(0));
    h.set_size(0);
    h
}

/// The extended attributes a tree tar carries.
fn archived_xattr(name: &[u8]) -> bool {
    (name.starts_with(b"user.") || name.starts_with(b"trusted.") || name == b"security.capability")
        && !name.starts_with(b"trusted.overlay.")
}

struct TreeWriter<'a, W: Write> {
    root: &'a Root,
    tar: TarOut<W>,
    /// (dev, inode) of files with several links → the tar name first written.
    links: HashMap<(u64, u64), Vec<u8>>,
    stats: TarStats,
}

impl<W: Write> TreeWriter<'_, W> {
    fn xattrs(&self, rel: &Path) -> Result<Vec<(OsString, Vec<u8>)>> {
        let mut out = Vec::new();
        for name in self.root.list_xattrs(rel)? {
            if !archived_xattr(name.as_bytes()) {
                continue;
            }
            if let Some(v) = self.root.get_xattr(rel, &name)? {
                out.push((name, v));
            }
        }
        Ok(out)
    }

    /// Writes the entry for `rel` (already lstat'ed as `st`) under `name`.
    fn entry(&mut self, rel: &Path, st: &Stat, name: &[u8]) -> Result<()> {
        use tar::EntryType as T;
        let err = io_err("write tar", rel);
        match st.kind {
            FileKind::Dir => {
                let x = self.xattrs(rel)?;
                self.tar
                    .entry(header(st, T::Directory), name, None, &x, None)
                    .map_err(err)?;
            }
            FileKind::File => {
                if st.nlink > 1 {
                    if let Some(first) = self.links.get(&(st.dev, st.ino)) {
                        let first = first.clone();
                        self.tar
                            .entry(header(st, T::Link), name, Some(&first), &[], None)
                            .map_err(err)?;
                        self.stats.entries += 1;
                        return Ok(());
                    }
                    self.links.insert((st.dev, st.ino), name.to_vec());
                }
                let mut file = self.root.open_regular(rel)?;
                let x = self.xattrs(rel)?;
                let mut h = header(st, T::Regular);
                h.set_size(st.size);
                self.tar
                    .entry(h, name, None, &x, Some(&mut file))
                    .map_err(err)?;
                self.stats.content += st.size;
            }
            FileKind::Symlink => {
                let target = self.root.read_link(rel)?;
                let x = self.xattrs(rel)?;
                self.tar
                    .entry(
                        header(st, T::Symlink),
                        name,
                        Some(target.as_os_str().as_bytes()),
                        &x,
                        None,
                    )
                    .map_err(err)?;
            }
            FileKind::CharDevice | FileKind::BlockDevice | FileKind::Fifo => {
                let kind = match st.kind {
                    FileKind::CharDevice => T::Char,
                    FileKind::BlockDevice => T::Block,
                    _ => T::Fifo,
                };
                let mut h = header(st, kind);
                let major = u32::try_from(st.rdev_major).unwrap_or(u32::MAX);
                let minor = u32::try_from(st.rdev_minor).unwrap_or(u32::MAX);
                h.set_device_major(major)
                    .map_err(io_err("write tar", rel))?;
                h.set_device_minor(minor)
                    .map_err(io_err("write tar", rel))?;
                let x = self.xattrs(rel)?;
                self.tar.entry(h, name, None, &x, None).map_err(err)?;
            }
            FileKind::Socket => {
                tracing::debug!(path = %rel.display(), "skipping a socket");
                return Ok(());
            }
        }
        self.stats.entries += 1;
        Ok(())
    }
}

/// `top` + `sub` (the path below the top, empty for the top itself), with a trailing `/` for
/// directories. `None` for the top of [`Top::Contents`].
fn tar_name(top: &Top, sub: &[u8], dir: bool) -> Option<Vec<u8>> {
    let mut n = match top {
        Top::Contents if sub.is_empty() => return None,
        Top::Contents => sub.to_vec(),
        Top::Named(t) => {
            let mut n = t.clone();
            if !sub.is_empty() {
                if !n.ends_with(b"/") {
                    n.push(b'/');
                }
                n.extend_from_slice(sub);
            }
            n
        }
    };
    if dir && !n.ends_with(b"/") {
        n.push(b'/');
    }
    Some(n)
}

/// Writes a tar of what `rel` names inside `root` (not following it if it is a symlink: the
/// caller resolves what must be followed) to `out`, ending with the two zero blocks, and hands
/// `out` back. Below the top, entries that vanish while the tree is walked (a running
/// container) are skipped; any other failure is an error, and the stream must then be taken
/// as broken (the trailer is not written).
pub fn write_tree<W: Write>(root: &Root, rel: &Path, top: &Top, out: W) -> Result<(W, TarStats)> {
    let st = root.lstat(rel)?;
    if top == &Top::Contents && st.kind != FileKind::Dir {
        return Err(StorageError::InvalidArchive(format!(
            "{} is not a directory",
            rel.display()
        )));
    }
    let mut w = TreeWriter {
        root,
        tar: TarOut { out },
        links: HashMap::new(),
        stats: TarStats::default(),
    };
    if let Some(name) = tar_name(top, b"", st.kind == FileKind::Dir) {
        w.entry(rel, &st, &name)?;
    }
    if st.kind == FileKind::Dir {
        // Depth-first, pre-order, names in byte order; an explicit stack, as the tree may be
        // a container's and arbitrarily deep. Paths are relative to the top.
        let mut stack: Vec<PathBuf> = root
            .read_dir(rel)?
            .into_iter()
            .rev()
            .map(PathBuf::from)
            .collect();
        while let Some(sub) = stack.pop() {
            let path = rel.join(&sub);
            let Some(st) = root.try_lstat(&path)? else {
                continue;
            };
            let Some(name) = tar_name(top, sub.as_os_str().as_bytes(), st.kind == FileKind::Dir)
            else {
                continue;
            };
            match w.entry(&path, &st, &name) {
                Ok(()) => {}
                Err(StorageError::Sys(e)) if vanished(&e) => continue,
                Err(e) => return Err(e),
            }
            if st.kind == FileKind::Dir {
                match root.read_dir(&path) {
                    Ok(names) => stack.extend(names.into_iter().rev().map(|n| sub.join(n))),
                    Err(e) if vanished(&e) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
    }
    let stats = w.stats;
    let out = w.tar.finish().map_err(io_err("write tar", rel))?;
    Ok((out, stats))
}

fn vanished(e: &linux::LinuxError) -> bool {
    matches!(e.errno(), Some(Errno::ENOENT | Errno::ENOTDIR))
}

/// How [`extract`] treats what is already there and who owns what it creates.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExtractOptions {
    /// Refuse to replace a directory with a non-directory, or a non-directory with a
    /// directory (moby's `noOverwriteDirNonDir`).
    pub no_overwrite_dir_non_dir: bool,
    /// Owner and group for every entry, instead of the ones in the headers.
    pub owner: Option<(u32, u32)>,
    /// Permission bits for every entry but symlinks, instead of the headers' (`COPY --chmod`).
    pub mode: Option<u32>,
}

struct DirMeta {
    uid: u32,
    gid: u32,
    mode: u32,
    mtime: SystemTime,
}

fn refused(msg: String) -> StorageError {
    StorageError::ArchiveEntry(msg)
}

/// `/`-rooted display of a path relative to the root (for moby's messages).
fn shown(rel: &Path) -> String {
    format!("/{}", rel.display())
}

/// A name of the archive, relative to the destination: leading `/` dropped (moby joins
/// absolute names under the destination), `..` refused. `None` for the destination itself.
fn entry_rel(raw: &[u8], dest: &Path) -> Result<Option<PathBuf>> {
    let trimmed = {
        let mut t = raw;
        while let [b'/', rest @ ..] = t {
            t = rest;
        }
        t
    };
    if trimmed.is_empty() {
        return Ok(None);
    }
    normalise(trimmed).map_err(|e| match e {
        StorageError::InvalidLayerEntry { reason, .. } if reason.contains("..") => {
            refused(format!(
                "{:?} is outside of {:?}",
                String::from_utf8_lossy(raw),
                shown(dest)
            ))
        }
        StorageError::InvalidLayerEntry { path, reason } => {
            refused(format!("invalid tar entry {path:?}: {reason}"))
        }
        e => e,
    })
}

/// Extracts the tar `tar` into the existing directory `dest` (relative to `root`, already
/// resolved by the caller). Every path, parents included, is resolved inside `root`.
/// Ownership comes from the headers (or [`ExtractOptions::owner`]) and is applied only when
/// running as root; device nodes likewise need root.
pub fn extract(
    root: &Root,
    dest: &Path,
    tar: impl Read,
    opts: &ExtractOptions,
) -> Result<TarStats> {
    let chown = linux::is_root();
    let mut stats = TarStats::default();
    let mut dirs: Vec<(PathBuf, DirMeta)> = Vec::new();
    let mut archive = tar::Archive::new(tar);
    let entries = archive
        .entries()
        .map_err(|e| StorageError::InvalidArchive(e.to_string()))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| StorageError::InvalidArchive(e.to_string()))?;
        use tar::EntryType as T;
        let kind = entry.header().entry_type();
        if matches!(
            kind,
            T::XGlobalHeader | T::XHeader | T::GNULongName | T::GNULongLink
        ) {
            continue;
        }
        let raw = entry.path_bytes().into_owned();
        let Some(sub) = entry_rel(&raw, dest)? else {
            // The destination itself: it exists and stays as it is.
            continue;
        };
        let rel = dest.join(&sub);
        let header = entry.header().clone();
        let old = header.as_old();
        // Like Go's archive/tar, a blank numeric field reads as 0.
        let num = |v: io::Result<u64>, field: &[u8]| match v {
            Ok(v) => Ok(v),
            Err(_) if field.iter().all(|b| *b == 0 || *b == b' ') => Ok(0),
            Err(e) => Err(refused(format!("invalid tar header for {raw:?}: {e}"))),
        };
        let mode = match opts.mode {
            Some(m) if kind != T::Symlink => m & 0o7777,
            _ => num(header.mode().map(u64::from), &old.mode)? as u32 & 0o7777,
        };
        let (uid, gid) = match opts.owner {
            Some(o) => o,
            None => (
                u32::try_from(num(header.uid(), &old.uid)?).unwrap_or(0),
                u32::try_from(num(header.gid(), &old.gid)?).unwrap_or(0),
            ),
        };
        let mtime = UNIX_EPOCH + Duration::from_secs(num(header.mtime(), &old.mtime)?);
        let xattrs = pax_xattrs(&mut entry, &raw)?;

        if let Some(parent) = rel.parent().filter(|p| !p.as_os_str().is_empty()) {
            root.create_dir_all(parent, 0o755)?;
        }
        let existing = root.try_lstat(&rel)?;
        let existing_dir = existing.as_ref().is_some_and(|s| s.kind == FileKind::Dir);
        if opts.no_overwrite_dir_non_dir && existing.is_some() {
            if existing_dir && !kind.is_dir() {
                return Err(refused(format!(
                    "cannot overwrite directory {:?} with non-directory {:?}",
                    shown(&rel),
                    shown(dest)
                )));
            }
            if !existing_dir && kind.is_dir() {
                return Err(refused(format!(
                    "cannot overwrite non-directory {:?} with directory {:?}",
                    shown(&rel),
                    shown(dest)
                )));
            }
        }
        if existing.is_some() && !(existing_dir && kind.is_dir()) {
            root.remove_all(&rel)?;
        }
        match kind {
            T::Directory => {
                if !existing_dir {
                    root.create_dir(&rel, 0o700)?;
                }
                set_xattrs(root, &rel, &xattrs, chown)?;
                dirs.push((
                    rel,
                    DirMeta {
                        uid,
                        gid,
                        mode,
                        mtime,
                    },
                ));
                stats.entries += 1;
                continue;
            }
            T::Regular | T::Continuous | T::GNUSparse => {
                let mut file = root.create_file(&rel, 0o600)?;
                let n = io::copy(&mut entry, &mut file).map_err(io_err("write file", &rel))?;
                stats.content += n;
            }
            T::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .filter(|t| !t.is_empty() && !t.contains(&0))
                    .ok_or_else(|| refused(format!("invalid symlink target for {raw:?}")))?;
                // Stored as it is: every later use resolves it inside the root.
                root.symlink(Path::new(OsStr::from_bytes(&target)), &rel)?;
            }
            T::Link => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| refused(format!("hardlink without a target: {raw:?}")))?
                    .into_owned();
                let target = entry_rel(&target, dest)?.ok_or_else(|| {
                    refused(format!(
                        "invalid hardlink target for {:?}",
                        String::from_utf8_lossy(&raw)
                    ))
                })?;
                // Both ends are resolved inside the root: the link cannot reach a host file.
                root.hardlink(&dest.join(target), &rel)?;
                stats.entries += 1;
                continue;
            }
            T::Char | T::Block | T::Fifo => {
                let major = header.device_major().ok().flatten().unwrap_or(0);
                let minor = header.device_minor().ok().flatten().unwrap_or(0);
                let dk = match kind {
                    T::Char => DeviceKind::Char,
                    T::Block => DeviceKind::Block,
                    _ => DeviceKind::Fifo,
                };
                if dk != DeviceKind::Fifo && !chown {
                    tracing::warn!(path = %rel.display(), "skipping a device node (not root)");
                    continue;
                }
                root.mknod(&rel, dk, 0o600, major.into(), minor.into())?;
            }
            other => {
                return Err(refused(format!(
                    "unsupported tar entry type {other:?} for {:?}",
                    String::from_utf8_lossy(&raw)
                )));
            }
        }
        // Owner first (chown clears setuid/setgid), then xattrs, the mode, and times last.
        if chown {
            root.lchown(&rel, uid, gid)?;
        }
        set_xattrs(root, &rel, &xattrs, chown)?;
        if kind != T::Symlink {
            root.chmod(&rel, mode)?;
        }
        root.set_times(&rel, mtime, mtime)?;
        stats.entries += 1;
    }
    // Directories last, deepest first, so that adding their entries did not move their mtimes
    // and read-only modes did not get in the way.
    dirs.sort_by_key(|d| std::cmp::Reverse(d.0.components().count()));
    for (rel, m) in dirs {
        match root.try_lstat(&rel)? {
            Some(st) if st.kind == FileKind::Dir => {}
            _ => continue,
        }
        if chown {
            root.lchown(&rel, m.uid, m.gid)?;
        }
        root.chmod(&rel, m.mode)?;
        root.set_times(&rel, m.mtime, m.mtime)?;
    }
    Ok(stats)
}

fn set_xattrs(
    root: &Root,
    rel: &Path,
    xattrs: &[(OsString, Vec<u8>)],
    privileged: bool,
) -> Result<()> {
    for (name, value) in xattrs {
        match root.set_xattr(rel, name, value) {
            Ok(()) => {}
            Err(e) if matches!(e.errno(), Some(Errno::ENOTSUP)) => {
                tracing::warn!("skipping xattr {name:?} on {}: {e}", rel.display());
            }
            Err(e) if !privileged && matches!(e.errno(), Some(Errno::EPERM)) => {
                tracing::warn!(
                    "skipping xattr {name:?} on {} (not root): {e}",
                    rel.display()
                );
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    /// (name, type, mode, link target, data) of each entry.
    type Row = (String, tar::EntryType, u32, String, Vec<u8>);

    fn rows(tar: &[u8]) -> Vec<Row> {
        let mut a = tar::Archive::new(tar);
        let mut out = Vec::new();
        for e in a.entries().unwrap() {
            let mut e = e.unwrap();
            let name = String::from_utf8_lossy(&e.path_bytes()).into_owned();
            let h = e.header().clone();
            let link = e
                .link_name_bytes()
                .map(|l| String::from_utf8_lossy(&l).into_owned())
                .unwrap_or_default();
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            out.push((name, h.entry_type(), h.mode().unwrap(), link, data));
        }
        out
    }

    fn names(tar: &[u8]) -> Vec<String> {
        rows(tar).into_iter().map(|r| r.0).collect()
    }

    /// A root `r` inside a temporary directory that also holds a host file `secret`.
    fn tree() -> (tempfile::TempDir, Root) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("secret"), "host").unwrap();
        let r = dir.path().join("r");
        std::fs::create_dir_all(r.join("etc/sub")).unwrap();
        std::fs::write(r.join("etc/passwd"), "root:x:0:0\n").unwrap();
        std::fs::set_permissions(r.join("etc/passwd"), PermissionsExt::from_mode(0o4751)).unwrap();
        std::fs::hard_link(r.join("etc/passwd"), r.join("etc/sub/pw")).unwrap();
        std::os::unix::fs::symlink("/", r.join("etc/escape")).unwrap();
        std::os::unix::fs::symlink("../../../..", r.join("up")).unwrap();
        let root = Root::open(&r).unwrap();
        root.mknod(Path::new("etc/fifo"), DeviceKind::Fifo, 0o640, 0, 0)
            .unwrap();
        let t = UNIX_EPOCH + Duration::from_secs(1_000_000);
        root.set_times(Path::new("etc/passwd"), t, t).unwrap();
        (dir, root)
    }

    fn tar_of(root: &Root, rel: &str, top: Top) -> Vec<u8> {
        write_tree(root, Path::new(rel), &top, Vec::new())
            .unwrap()
            .0
    }

    #[test]
    fn top_names_follow_docker() {
        let (_dir, root) = tree();
        let t = tar_of(&root, "etc", Top::Named(b"etc".to_vec()));
        assert_eq!(
            names(&t),
            vec![
                "etc/",
                "etc/escape",
                "etc/fifo",
                "etc/passwd",
                "etc/sub/",
                "etc/sub/pw"
            ]
        );
        let t = tar_of(&root, "etc", Top::Named(b".".to_vec()));
        assert_eq!(names(&t)[..2], ["./", "./escape"]);
        let t = tar_of(&root, "", Top::Named(b"/".to_vec()));
        assert_eq!(names(&t)[..3], ["/", "/etc/", "/etc/escape"]);
        let t = tar_of(&root, "", Top::Contents);
        assert_eq!(names(&t)[..2], ["etc/", "etc/escape"]);
        assert!(names(&t).contains(&"up".to_string()));
        let t = tar_of(&root, "etc/passwd", Top::Named(b"renamed".to_vec()));
        assert_eq!(names(&t), vec!["renamed"]);
        assert!(write_tree(&root, Path::new("etc/passwd"), &Top::Contents, Vec::new()).is_err());
        // The archive ends with two zero blocks and is a multiple of the block size.
        assert_eq!(t.len() % BLOCK, 0);
        assert!(t.ends_with(&[0; 1024]));
    }

    #[test]
    fn metadata_links_and_symlinks_are_kept_never_followed() {
        let (_dir, root) = tree();
        let t = tar_of(&root, "", Top::Contents);
        let all = rows(&t);
        let by = |n: &str| all.iter().find(|r| r.0 == n).unwrap().clone();
        let pw = by("etc/passwd");
        assert_eq!(
            (pw.1, pw.2, pw.4.as_slice()),
            (tar::EntryType::Regular, 0o104_751, &b"root:x:0:0\n"[..])
        );
        let hl = by("etc/sub/pw");
        assert_eq!((hl.1, hl.3.as_str()), (tar::EntryType::Link, "etc/passwd"));
        let esc = by("etc/escape");
        assert_eq!((esc.1, esc.3.as_str()), (tar::EntryType::Symlink, "/"));
        assert_eq!(by("up").3, "../../../..");
        assert_eq!(by("etc/fifo").1, tar::EntryType::Fifo);
        // Nothing of the host came in through the symlinks.
        assert!(
            all.iter()
                .all(|r| !r.0.contains("secret") && r.4 != b"host")
        );
        let mut a = tar::Archive::new(t.as_slice());
        let e = a
            .entries()
            .unwrap()
            .map(|e| e.unwrap())
            .find(|e| e.path_bytes().as_ref() == b"etc/passwd")
            .unwrap();
        assert_eq!(e.header().mtime().unwrap(), 1_000_000);
    }

    #[test]
    fn round_trip_keeps_content_modes_links_and_long_names() {
        let (dir, root) = tree();
        let long = "l".repeat(150);
        root.create_dir(Path::new(&long), 0o755).unwrap();
        std::fs::write(root.path().join(&long).join(&long), "deep").unwrap();
        std::os::unix::fs::symlink(format!("/{long}/{long}"), root.path().join("longlink"))
            .unwrap();
        let t = tar_of(&root, "", Top::Named(b"copy".to_vec()));
        std::fs::create_dir(dir.path().join("dest")).unwrap();
        let dest = Root::open(&dir.path().join("dest")).unwrap();
        let stats = extract(
            &dest,
            Path::new(""),
            t.as_slice(),
            &ExtractOptions::default(),
        )
        .unwrap();
        assert!(stats.entries >= 8, "{stats:?}");
        let d = dir.path().join("dest/copy");
        assert_eq!(
            std::fs::read(d.join("etc/passwd")).unwrap(),
            b"root:x:0:0\n"
        );
        let m = std::fs::symlink_metadata(d.join("etc/passwd")).unwrap();
        assert_eq!(m.permissions().mode() & 0o7777, 0o4751);
        assert_eq!(m.mtime(), 1_000_000);
        assert_eq!(m.nlink(), 2);
        assert_eq!(
            std::fs::symlink_metadata(d.join("etc/sub/pw"))
                .unwrap()
                .ino(),
            m.ino()
        );
        assert_eq!(
            std::fs::read_link(d.join("etc/escape")).unwrap(),
            Path::new("/")
        );
        assert_eq!(std::fs::read(d.join(&long).join(&long)).unwrap(), b"deep");
        assert_eq!(
            std::fs::read_link(d.join("longlink")).unwrap(),
            PathBuf::from(format!("/{long}/{long}"))
        );
    }

    /// One raw tar entry with the name written straight into the header (hostile names the
    /// tar builder refuses).
    fn raw(name: &[u8], kind: tar::EntryType, link: &[u8], data: &[u8]) -> Vec<u8> {
        let mut h = tar::Header::new_gnu();
        h.as_old_mut().name[..name.len()].copy_from_slice(name);
        h.as_old_mut().linkname[..link.len()].copy_from_slice(link);
        h.set_entry_type(kind);
        h.set_size(data.len() as u64);
        h.set_mode(if kind == tar::EntryType::Directory {
            0o755
        } else {
            0o644
        });
        h.set_mtime(1_600_000_000);
        h.set_cksum();
        let mut out = h.as_bytes().to_vec();
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
        out
    }

    fn archive(entries: &[Vec<u8>]) -> Vec<u8> {
        let mut out = entries.concat();
        out.extend_from_slice(&[0; 1024]);
        out
    }

    fn container() -> (tempfile::TempDir, Root) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("secret"), "host").unwrap();
        std::fs::create_dir_all(dir.path().join("r/tmp")).unwrap();
        let root = Root::open(&dir.path().join("r")).unwrap();
        (dir, root)
    }

    fn refusal(r: Result<TarStats>) -> String {
        match r {
            Err(StorageError::ArchiveEntry(m)) => m,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn hostile_names_are_refused() {
        let (dir, root) = container();
        let opts = ExtractOptions::default();
        let t = archive(&[raw(b"../../evil", tar::EntryType::Regular, b"", b"x")]);
        assert_eq!(
            refusal(extract(&root, Path::new("tmp"), t.as_slice(), &opts)),
            r#""../../evil" is outside of "/tmp""#
        );
        let t = archive(&[raw(b"a/../../evil", tar::EntryType::Regular, b"", b"x")]);
        refusal(extract(&root, Path::new("tmp"), t.as_slice(), &opts));
        let t = archive(&[raw(b"pw", tar::EntryType::Link, b"../../secret", b"")]);
        refusal(extract(&root, Path::new("tmp"), t.as_slice(), &opts));
        assert!(!dir.path().join("evil").exists());
        assert!(!dir.path().join("r/evil").exists());
        // Absolute names are anchored at the destination, as moby does.
        let t = archive(&[raw(b"/abs", tar::EntryType::Regular, b"", b"x")]);
        extract(&root, Path::new("tmp"), t.as_slice(), &opts).unwrap();
        assert!(dir.path().join("r/tmp/abs").exists());
    }

    #[test]
    fn writes_through_symlinks_stay_inside_the_root() {
        let (dir, root) = container();
        let name = format!("berth-cp-escape-{}", std::process::id());
        let t = archive(&[
            raw(b"escape", tar::EntryType::Symlink, b"/", b""),
            raw(
                format!("escape/tmp/{name}").as_bytes(),
                tar::EntryType::Regular,
                b"",
                b"x",
            ),
            raw(b"up", tar::EntryType::Symlink, b"../../../..", b""),
            raw(b"up/secret", tar::EntryType::Regular, b"", b"mine"),
            // A hardlink through a symlink to the host: resolved inside the root, so it
            // names the root's own `secret` (just written), never the host's.
            raw(b"hl", tar::EntryType::Link, b"up/secret", b""),
        ]);
        extract(
            &root,
            Path::new("tmp"),
            t.as_slice(),
            &ExtractOptions::default(),
        )
        .unwrap();
        assert!(!Path::new("/tmp").join(&name).exists());
        assert!(dir.path().join("r/tmp").join(&name).exists());
        assert_eq!(std::fs::read(dir.path().join("secret")).unwrap(), b"host");
        assert_eq!(std::fs::read(dir.path().join("r/secret")).unwrap(), b"mine");
        assert_eq!(std::fs::read(dir.path().join("r/tmp/hl")).unwrap(), b"mine");
        // A destination reached through a symlink to `/` resolves inside the root too.
        root.symlink(Path::new("/"), Path::new("tmp/root")).unwrap();
        let t = archive(&[raw(b"x", tar::EntryType::Regular, b"", b"y")]);
        extract(
            &root,
            Path::new("tmp/root/tmp"),
            t.as_slice(),
            &ExtractOptions::default(),
        )
        .unwrap();
        assert!(dir.path().join("r/tmp/x").exists());
    }

    #[test]
    fn no_overwrite_dir_non_dir() {
        let (dir, root) = container();
        root.create_dir(Path::new("tmp/d"), 0o755).unwrap();
        std::fs::write(dir.path().join("r/tmp/f"), "f").unwrap();
        let opts = ExtractOptions {
            no_overwrite_dir_non_dir: true,
            owner: None,
            mode: None,
        };
        let t = archive(&[raw(b"d", tar::EntryType::Regular, b"", b"x")]);
        assert_eq!(
            refusal(extract(&root, Path::new("tmp"), t.as_slice(), &opts)),
            r#"cannot overwrite directory "/tmp/d" with non-directory "/tmp""#
        );
        let t = archive(&[raw(b"f/", tar::EntryType::Directory, b"", b"")]);
        assert_eq!(
            refusal(extract(&root, Path::new("tmp"), t.as_slice(), &opts)),
            r#"cannot overwrite non-directory "/tmp/f" with directory "/tmp""#
        );
        // A directory over a directory merges; a file over a file replaces.
        let t = archive(&[
            raw(b"d/", tar::EntryType::Directory, b"", b""),
            raw(b"d/in", tar::EntryType::Regular, b"", b"1"),
            raw(b"f", tar::EntryType::Regular, b"", b"new"),
        ]);
        extract(&root, Path::new("tmp"), t.as_slice(), &opts).unwrap();
        assert_eq!(std::fs::read(dir.path().join("r/tmp/f")).unwrap(), b"new");
        assert!(dir.path().join("r/tmp/d/in").exists());
        // Without the option, the directory is replaced.
        let t = archive(&[raw(b"d", tar::EntryType::Regular, b"", b"x")]);
        extract(
            &root,
            Path::new("tmp"),
            t.as_slice(),
            &ExtractOptions::default(),
        )
        .unwrap();
        assert!(dir.path().join("r/tmp/d").is_file());
    }
}
