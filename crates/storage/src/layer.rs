//! Layer tar streams: compression detection and safe application into a directory.
//!
//! [`apply`] writes every entry of an (uncompressed) layer tar inside `dest` through file
//! descriptors (`linux::fs::Root`, openat2 with `RESOLVE_IN_ROOT`), never by joining strings:
//! `../`, absolute paths, writes through symlinks, hardlinks that escape and invalid whiteout
//! names are refused with [`crate::StorageError::InvalidLayerEntry`]. Whiteouts become overlayfs
//! whiteouts (a 0:0 character device) and `.wh..wh..opq` sets `trusted.overlay.opaque=y` on
//! its directory. Modes, ownership, mtimes, xattrs, device nodes, symlinks and hardlinks are kept.

use std::collections::{HashMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::io::{Cursor, Read};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use linux::Errno;
use linux::fs::{DeviceKind, FileKind, Root};

use crate::{Result, StorageError};

/// How a layer blob is compressed, detected from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// A plain tar.
    None,
    /// gzip (1f 8b).
    Gzip,
    /// zstd (28 b5 2f fd).
    Zstd,
}

/// Peeks at the stream's first bytes and returns a reader that yields the decompressed bytes.
pub fn decompress<'a>(r: impl Read + Send + 'a) -> Result<(Compression, Box<dyn Read + Send + 'a>)> {
    let mut r = r;
    let mut head = [0u8; 4];
    let mut n = 0;
    while n < head.len() {
        match r.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(StorageError::InvalidArchive(format!("reading layer: {e}"))),
        }
    }
    let head = &head[..n];
    let stream = Cursor::new(head.to_vec()).chain(r);
    if head.starts_with(&[0x1f, 0x8b]) {
        Ok((Compression::Gzip, Box::new(flate2::read::MultiGzDecoder::new(stream))))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        let dec = zstd::stream::read::Decoder::new(stream)
            .map_err(|e| StorageError::InvalidArchive(format!("zstd: {e}")))?;
        Ok((Compression::Zstd, Box::new(dec)))
    } else {
        Ok((Compression::None, Box::new(stream)))
    }
}

/// What [`apply`] did.
#[derive(Debug, Clone, Default)]
pub struct ApplyStats {
    /// Bytes of regular file content written (hardlinked files counted once): the layer's size.
    pub size: u64,
    /// Tar entries applied.
    pub entries: u64,
}

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE_MARKER: &str = ".wh..wh..opq";

fn invalid(path: &[u8], reason: impl Into<String>) -> StorageError {
    StorageError::InvalidLayerEntry {
        path: String::from_utf8_lossy(path).into_owned(),
        reason: reason.into(),
    }
}

/// Normalises a tar entry name or hardlink target to a relative path: strips `./` and
/// trailing `/`; refuses absolute paths, `..`, NUL and empty names. `Ok(None)` for the layer root
/// itself (`./`).
fn normalise(raw: &[u8]) -> Result<Option<PathBuf>> {
    if raw.is_empty() {
        return Err(invalid(raw, "empty name"));
    }
    if raw.contains(&0) {
        return Err(invalid(raw, "NUL in name"));
    }
    if raw.starts_with(b"/") {
        return Err(invalid(raw, "absolute path"));
    }
    let mut out = PathBuf::new();
    for comp in raw.split(|b| *b == b'/') {
        match comp {
            b"" | b"." => {}
            b".." => return Err(invalid(raw, "`..` component")),
            c => out.push(OsStr::from_bytes(c)),
        }
    }
    Ok(if out.as_os_str().is_empty() { None } else { Some(out) })
}

/// Metadata applied to directories once every entry is in (so adding entries does not disturb
/// their mtimes, and read-only modes do not get in the way).
struct DirMeta {
    uid: u32,
    gid: u32,
    mode: u32,
    mtime: SystemTime,
}

struct Applier {
    root: Root,
    chown: bool,
    dirs: HashMap<PathBuf, DirMeta>,
    /// Non-directories written by this layer: the only valid hardlink targets.
    written: HashSet<PathBuf>,
    stats: ApplyStats,
}

fn mtime_of(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

/// Applies an uncompressed layer tar into the (existing, empty) directory `dest`.
pub fn apply(dest: &Path, tar: impl Read) -> Result<ApplyStats> {
    let mut a = Applier {
        root: Root::open(dest)?,
        chown: linux::is_root(),
        dirs: HashMap::new(),
        written: HashSet::new(),
        stats: ApplyStats::default(),
    };
    let mut archive = tar::Archive::new(tar);
    let entries = archive
        .entries()
        .map_err(|e| StorageError::InvalidArchive(e.to_string()))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| StorageError::InvalidArchive(e.to_string()))?;
        a.entry(&mut entry)?;
    }
    a.finish_dirs()?;
    Ok(a.stats)
}

impl Applier {
    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<()> {
        let raw = entry.path_bytes().into_owned();
        let kind = entry.header().entry_type();
        use tar::EntryType as T;
        if matches!(kind, T::XGlobalHeader | T::XHeader | T::GNULongName | T::GNULongLink) {
            return Ok(());
        }
        let Some(rel) = normalise(&raw)? else {
            if kind.is_dir() {
                // `./`: the layer root itself. Its metadata belongs to the snapshot, not the layer.
                self.stats.entries += 1;
                return Ok(());
            }
            return Err(invalid(&raw, "empty name"));
        };
        let name = rel.file_name().map(OsStr::as_bytes).unwrap_or_default();
        let parent = rel.parent().unwrap_or(Path::new("")).to_path_buf();
        for comp in parent.components() {
            if comp.as_os_str().as_bytes().starts_with(WHITEOUT_PREFIX.as_bytes()) {
                return Err(invalid(&raw, "whiteout prefix in a directory name"));
            }
        }
        if name.starts_with(WHITEOUT_PREFIX.as_bytes()) {
            self.whiteout(&raw, &parent, name)?;
            self.stats.entries += 1;
            return Ok(());
        }

        let header = entry.header().clone();
        let hdr_err = |e: std::io::Error| invalid(&raw, format!("bad header: {e}"));
        let mode = header.mode().map_err(hdr_err)? & 0o7777;
        let uid = u32::try_from(header.uid().map_err(hdr_err)?)
            .map_err(|_| invalid(&raw, "uid out of range"))?;
        let gid = u32::try_from(header.gid().map_err(hdr_err)?)
            .map_err(|_| invalid(&raw, "gid out of range"))?;
        let mtime = mtime_of(header.mtime().map_err(hdr_err)?);
        let xattrs = pax_xattrs(entry, &raw)?;

        if !parent.as_os_str().is_empty() {
            self.root.create_dir_all(&parent, 0o755)?;
        }
        let existing = self.root.try_lstat(&rel)?;
        let existing_dir = existing.as_ref().is_some_and(|s| s.kind == FileKind::Dir);
        if existing_dir && !kind.is_dir() {
            self.root.remove_all(&rel)?;
            self.dirs.retain(|p, _| !p.starts_with(&rel));
        }

        match kind {
            T::Directory => {
                if !existing_dir {
                    if existing.is_some() {
                        self.root.remove(&rel)?;
                    }
                    self.root.create_dir(&rel, 0o755)?;
                }
                self.written.remove(&rel);
                self.set_xattrs(&rel, &xattrs)?;
                self.dirs.insert(rel, DirMeta { uid, gid, mode, mtime });
                self.stats.entries += 1;
                return Ok(());
            }
            T::Regular | T::Continuous | T::GNUSparse => {
                let mut file = self.root.create_file(&rel, 0o600)?;
                let n = std::io::copy(entry, &mut file).map_err(|e| StorageError::Io {
                    op: "write layer file",
                    path: rel.clone(),
                    source: e,
                })?;
                self.stats.size += n;
            }
            T::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| invalid(&raw, "symlink without a target"))?;
                if target.is_empty() || target.contains(&0) {
                    return Err(invalid(&raw, "invalid symlink target"));
                }
                self.root.symlink(Path::new(OsStr::from_bytes(&target)), &rel)?;
            }
            T::Link => {
                let target_raw = entry
                    .link_name_bytes()
                    .ok_or_else(|| invalid(&raw, "hardlink without a target"))?
                    .into_owned();
                let target = normalise(&target_raw)
                    .map_err(|e| match e {
                        StorageError::InvalidLayerEntry { reason, .. } => {
                            invalid(&raw, format!("hardlink target: {reason}"))
                        }
                        e => e,
                    })?
                    .ok_or_else(|| invalid(&raw, "hardlink to the layer root"))?;
                if !self.written.contains(&target) {
                    return Err(invalid(&raw, "hardlink target is not a file of this layer"));
                }
                self.root.hardlink(&target, &rel)?;
                // A hardlink shares its target's inode and metadata: nothing more to set.
                self.written.insert(rel);
                self.stats.entries += 1;
                return Ok(());
            }
            T::Char | T::Block | T::Fifo => {
                let dev_err = |e: std::io::Error| invalid(&raw, format!("bad device number: {e}"));
                let major = header.device_major().map_err(dev_err)?.unwrap_or(0);
                let minor = header.device_minor().map_err(dev_err)?.unwrap_or(0);
                let dk = match kind {
                    T::Char => DeviceKind::Char,
                    T::Block => DeviceKind::Block,
                    _ => DeviceKind::Fifo,
                };
                self.root.mknod(&rel, dk, 0o600, major.into(), minor.into())?;
            }
            other => {
                return Err(invalid(&raw, format!("unsupported entry type {other:?}")));
            }
        }
        // Ownership first (chown clears setuid/setgid and file capabilities), then xattrs, then
        // the mode, then times last.
        if self.chown {
            self.root.lchown(&rel, uid, gid)?;
        }
        self.set_xattrs(&rel, &xattrs)?;
        if kind != T::Symlink {
            self.root.chmod(&rel, mode)?;
        }
        self.root.set_times(&rel, mtime, mtime)?;
        self.written.insert(rel);
        self.stats.entries += 1;
        Ok(())
    }

    fn whiteout(&mut self, raw: &[u8], parent: &Path, name: &[u8]) -> Result<()> {
        if name == OPAQUE_MARKER.as_bytes() {
            if !parent.as_os_str().is_empty() {
                self.root.create_dir_all(parent, 0o755)?;
            }
            self.root.set_xattr(parent, OsStr::new("trusted.overlay.opaque"), b"y")?;
            return Ok(());
        }
        let hidden = &name[WHITEOUT_PREFIX.len()..];
        if hidden.is_empty() || hidden == b"." || hidden == b".." {
            return Err(invalid(raw, "invalid whiteout name"));
        }
        if hidden.starts_with(WHITEOUT_PREFIX.as_bytes()) {
            return Err(invalid(raw, "invalid whiteout name (`.wh..wh.` other than the opaque marker)"));
        }
        if !parent.as_os_str().is_empty() {
            self.root.create_dir_all(parent, 0o755)?;
        }
        let target = parent.join(OsStr::from_bytes(hidden));
        self.root.remove_all(&target)?;
        self.dirs.retain(|p, _| !p.starts_with(&target));
        self.written.remove(&target);
        self.root.mknod(&target, DeviceKind::Char, 0, 0, 0)?;
        Ok(())
    }

    fn set_xattrs(&self, rel: &Path, xattrs: &[(OsString, Vec<u8>)]) -> Result<()> {
        for (name, value) in xattrs {
            match self.root.set_xattr(rel, name, value) {
                Ok(()) => {}
                Err(e) if matches!(e.errno(), Some(Errno::ENOTSUP)) => {
                    tracing::warn!("skipping xattr {name:?} on {}: {e}", rel.display());
                }
                Err(e) if !self.chown && matches!(e.errno(), Some(Errno::EPERM)) => {
                    tracing::warn!("skipping xattr {name:?} on {} (not root): {e}", rel.display());
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    fn finish_dirs(&mut self) -> Result<()> {
        // Deepest first, though setting a child's metadata does not touch its parent's mtime.
        let mut dirs: Vec<_> = self.dirs.drain().collect();
        dirs.sort_by(|a, b| b.0.components().count().cmp(&a.0.components().count()));
        for (rel, m) in dirs {
            match self.root.try_lstat(&rel)? {
                Some(st) if st.kind == FileKind::Dir => {}
                _ => continue,
            }
            if self.chown {
                self.root.lchown(&rel, m.uid, m.gid)?;
            }
            self.root.chmod(&rel, m.mode)?;
            self.root.set_times(&rel, m.mtime, m.mtime)?;
        }
        Ok(())
    }
}

/// `SCHILY.xattr.*` PAX records of an entry. `trusted.overlay.*` is refused: overlayfs would
/// act on it (redirects, metacopy), and whiteouts have their own syntax.
fn pax_xattrs<R: Read>(entry: &mut tar::Entry<'_, R>, raw: &[u8]) -> Result<Vec<(OsString, Vec<u8>)>> {
    let mut out = Vec::new();
    let Some(exts) = entry
        .pax_extensions()
        .map_err(|e| invalid(raw, format!("bad PAX header: {e}")))?
    else {
        return Ok(out);
    };
    for ext in exts {
        let ext = ext.map_err(|e| invalid(raw, format!("bad PAX record: {e}")))?;
        let Some(name) = ext.key_bytes().strip_prefix(b"SCHILY.xattr.") else {
            continue;
        };
        if name.is_empty() || name.contains(&0) {
            return Err(invalid(raw, "invalid xattr name"));
        }
        if name.starts_with(b"trusted.overlay.") {
            tracing::warn!(
                "ignoring xattr {} on layer entry {}",
                String::from_utf8_lossy(name),
                String::from_utf8_lossy(raw)
            );
            continue;
        }
        out.push((OsStr::from_bytes(name).to_os_string(), ext.value_bytes().to_vec()));
    }
    Ok(out)
}
