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
pub fn decompress<'a>(
    r: impl Read + Send + 'a,
) -> Result<(Compression, Box<dyn Read + Send + 'a>)> {
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
        Ok((
            Compression::Gzip,
            Box::new(flate2::read::MultiGzDecoder::new(stream)),
        ))
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
    /// Bytes of regular file content written (hardlinked files counted once) plus symlink
    /// target lengths: the layer's size, as Docker computes it.
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
pub(crate) fn normalise(raw: &[u8]) -> Result<Option<PathBuf>> {
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
    Ok(if out.as_os_str().is_empty() {
        None
    } else {
        Some(out)
    })
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
        if matches!(
            kind,
            T::XGlobalHeader | T::XHeader | T::GNULongName | T::GNULongLink
        ) {
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
            if comp
                .as_os_str()
                .as_bytes()
                .starts_with(WHITEOUT_PREFIX.as_bytes())
            {
                return Err(invalid(&raw, "whiteout prefix in a directory name"));
            }
        }
        if name.starts_with(WHITEOUT_PREFIX.as_bytes()) {
            self.whiteout(&raw, &parent, name)?;
            self.stats.entries += 1;
            return Ok(());
        }

        let header = entry.header().clone();
        // Like Go's archive/tar, a blank numeric field reads as 0.
        let num = |v: std::io::Result<u64>, field: &[u8]| match v {
            Ok(v) => Ok(v),
            Err(_) if field.iter().all(|b| *b == 0 || *b == b' ') => Ok(0),
            Err(e) => Err(invalid(&raw, format!("bad header: {e}"))),
        };
        let old = header.as_old();
        let mode = num(header.mode().map(u64::from), &old.mode)? as u32 & 0o7777;
        let uid = u32::try_from(num(header.uid(), &old.uid)?)
            .map_err(|_| invalid(&raw, "uid out of range"))?;
        let gid = u32::try_from(num(header.gid(), &old.gid)?)
            .map_err(|_| invalid(&raw, "gid out of range"))?;
        let mtime = mtime_of(num(header.mtime(), &old.mtime)?);
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
                self.dirs.insert(
                    rel,
                    DirMeta {
                        uid,
                        gid,
                        mode,
                        mtime,
                    },
                );
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
                self.root
                    .symlink(Path::new(OsStr::from_bytes(&target)), &rel)?;
                // Docker counts a symlink's size (its target's length) in a layer's size.
                self.stats.size += target.len() as u64;
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
                // devmajor and devminor live at 329..337 and 337..345 (ustar and GNU alike).
                let bytes = header.as_bytes();
                let major = num(
                    header.device_major().map(|d| d.unwrap_or(0).into()),
                    &bytes[329..337],
                )?;
                let minor = num(
                    header.device_minor().map(|d| d.unwrap_or(0).into()),
                    &bytes[337..345],
                )?;
                let dk = match kind {
                    T::Char => DeviceKind::Char,
                    T::Block => DeviceKind::Block,
                    _ => DeviceKind::Fifo,
                };
                self.root.mknod(&rel, dk, 0o600, major, minor)?;
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
            self.root
                .set_xattr(parent, OsStr::new("trusted.overlay.opaque"), b"y")?;
            return Ok(());
        }
        let hidden = &name[WHITEOUT_PREFIX.len()..];
        if hidden.is_empty() || hidden == b"." || hidden == b".." {
            return Err(invalid(raw, "invalid whiteout name"));
        }
        if hidden.starts_with(WHITEOUT_PREFIX.as_bytes()) {
            return Err(invalid(
                raw,
                "invalid whiteout name (`.wh..wh.` other than the opaque marker)",
            ));
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

    fn finish_dirs(&mut self) -> Result<()> {
        // Deepest first, though setting a child's metadata does not touch its parent's mtime.
        let mut dirs: Vec<_> = self.dirs.drain().collect();
        dirs.sort_by_key(|d| std::cmp::Reverse(d.0.components().count()));
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
pub(crate) fn pax_xattrs<R: Read>(
    entry: &mut tar::Entry<'_, R>,
    raw: &[u8],
) -> Result<Vec<(OsString, Vec<u8>)>> {
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
        out.push((
            OsStr::from_bytes(name).to_os_string(),
            ext.value_bytes().to_vec(),
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    /// One raw tar entry (header + padded data), with names written straight into the header so
    /// hostile names the builder refuses can be made.
    fn raw_entry(
        name: &[u8],
        kind: tar::EntryType,
        link: &[u8],
        data: &[u8],
        mode: u32,
    ) -> Vec<u8> {
        raw_entry_with(name, kind, link, data, mode, |_| {})
    }

    fn raw_entry_with(
        name: &[u8],
        kind: tar::EntryType,
        link: &[u8],
        data: &[u8],
        mode: u32,
        tweak: impl FnOnce(&mut tar::Header),
    ) -> Vec<u8> {
        let mut h = tar::Header::new_gnu();
        h.as_old_mut().name[..name.len()].copy_from_slice(name);
        h.as_old_mut().linkname[..link.len()].copy_from_slice(link);
        h.set_entry_type(kind);
        h.set_size(data.len() as u64);
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_600_000_000);
        tweak(&mut h);
        h.set_cksum();
        let mut out = h.as_bytes().to_vec();
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
        out
    }

    fn archive(entries: &[Vec<u8>]) -> Vec<u8> {
        let mut out: Vec<u8> = entries.concat();
        out.extend_from_slice(&[0; 1024]);
        out
    }

    fn file(name: &str, data: &[u8]) -> Vec<u8> {
        raw_entry(name.as_bytes(), tar::EntryType::Regular, b"", data, 0o644)
    }

    fn dest() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("a/b/dest");
        std::fs::create_dir_all(&dest).unwrap();
        (dir, dest)
    }

    fn assert_invalid(r: Result<ApplyStats>) {
        match r {
            Err(StorageError::InvalidLayerEntry { .. }) => {}
            other => panic!("expected InvalidLayerEntry, got {other:?}"),
        }
    }

    #[test]
    fn decompress_detects_formats() {
        let plain = archive(&[file("x", b"hello")]);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&plain).unwrap();
        let gz = gz.finish().unwrap();
        let zst = zstd::encode_all(plain.as_slice(), 3).unwrap();
        for (bytes, want) in [
            (&plain, Compression::None),
            (&gz, Compression::Gzip),
            (&zst, Compression::Zstd),
        ] {
            let (c, mut r) = decompress(bytes.as_slice()).unwrap();
            assert_eq!(c, want);
            let mut out = Vec::new();
            r.read_to_end(&mut out).unwrap();
            assert_eq!(out, plain);
        }
        // Short and empty streams are plain.
        let (c, mut r) = decompress(&b"ab"[..]).unwrap();
        assert_eq!(c, Compression::None);
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        assert_eq!(out, b"ab");
        assert_eq!(decompress(&b""[..]).unwrap().0, Compression::None);
    }

    #[test]
    fn hostile_names_are_refused() {
        let (dir, dest) = dest();
        assert_invalid(apply(&dest, archive(&[file("../evil", b"x")]).as_slice()));
        assert_invalid(apply(
            &dest,
            archive(&[file("a/../../evil", b"x")]).as_slice(),
        ));
        assert_invalid(apply(&dest, archive(&[file("/abs", b"x")]).as_slice()));
        assert!(!dir.path().join("a/b/evil").exists());
        assert!(!dir.path().join("a/evil").exists());
        for name in [
            ".wh.",
            "d/.wh.",
            ".wh..wh.foo",
            "d/.wh..",
            "d/.wh...",
            ".wh.d/x",
        ] {
            let r = apply(&dest, archive(&[file(name, b"")]).as_slice());
            assert!(
                matches!(r, Err(StorageError::InvalidLayerEntry { .. })),
                "{name}: {r:?}"
            );
        }
        // A hardlink escaping, or to something not in this layer.
        std::fs::write(dir.path().join("a/secret"), b"s").unwrap();
        let hl = |target: &[u8]| raw_entry(b"pw", tar::EntryType::Link, target, b"", 0o644);
        assert_invalid(apply(&dest, archive(&[hl(b"../../etc/passwd")]).as_slice()));
        assert_invalid(apply(&dest, archive(&[hl(b"/etc/passwd")]).as_slice()));
        assert_invalid(apply(&dest, archive(&[hl(b"../secret")]).as_slice()));
        assert_invalid(apply(&dest, archive(&[hl(b"nothere")]).as_slice()));
        // A hardlink through a symlink that points outside.
        let sl = raw_entry(b"up", tar::EntryType::Symlink, b"../..", b"", 0o777);
        let hl_up = raw_entry(b"pw", tar::EntryType::Link, b"up/secret", b"", 0o644);
        assert_invalid(apply(&dest, archive(&[sl, hl_up]).as_slice()));
        assert!(!dest.join("pw").exists());
    }

    #[test]
    fn writes_through_symlinks_stay_inside() {
        let (dir, dest) = dest();
        let name = format!("berth-layer-escape-{}", std::process::id());
        let entries = [
            raw_entry(b"link", tar::EntryType::Symlink, b"/", b"", 0o777),
            file(&format!("link/tmp/{name}"), b"x"),
            raw_entry(b"up", tar::EntryType::Symlink, b"../../..", b"", 0o777),
            file("up/escaped", b"x"),
        ];
        // Either refused or confined; never outside.
        let _ = apply(&dest, archive(&entries).as_slice());
        assert!(!Path::new("/tmp").join(&name).exists());
        assert!(!dir.path().join("escaped").exists());
        assert!(!dir.path().join("a/escaped").exists());
        assert_eq!(
            std::fs::read_link(dest.join("link")).unwrap(),
            Path::new("/")
        );
        assert!(dest.join("tmp").join(&name).exists());
        assert!(dest.join("escaped").exists());
    }

    #[test]
    fn metadata_is_kept() {
        let (_dir, dest) = dest();
        let dir_entry = raw_entry_with(b"d/", tar::EntryType::Directory, b"", b"", 0o1777, |h| {
            h.set_mtime(1000)
        });
        let entries = [
            dir_entry,
            raw_entry(
                b"./d/suid",
                tar::EntryType::Regular,
                b"",
                b"#!/bin/sh\n",
                0o4755,
            ),
            raw_entry(b"d/ro", tar::EntryType::Regular, b"", b"ro", 0o444),
            raw_entry(b"d/hl", tar::EntryType::Link, b"d/suid", b"", 0o644),
            raw_entry(b"d/sl", tar::EntryType::Symlink, b"../nowhere", b"", 0o777),
            raw_entry(b"d/fifo", tar::EntryType::Fifo, b"", b"", 0o640),
            // Replaces the earlier file.
            raw_entry(b"d/ro", tar::EntryType::Regular, b"", b"ro2", 0o400),
        ];
        let stats = apply(&dest, archive(&entries).as_slice()).unwrap();
        assert_eq!(stats.entries, 7);
        assert_eq!(stats.size, 10 + 2 + 3 + "../nowhere".len() as u64);
        let d = std::fs::symlink_metadata(dest.join("d")).unwrap();
        assert!(d.is_dir());
        assert_eq!(d.permissions().mode() & 0o7777, 0o1777);
        assert_eq!(d.mtime(), 1000);
        let suid = std::fs::symlink_metadata(dest.join("d/suid")).unwrap();
        assert_eq!(suid.permissions().mode() & 0o7777, 0o4755);
        assert_eq!(suid.mtime(), 1_600_000_000);
        assert_eq!(suid.nlink(), 2);
        assert_eq!(
            std::fs::symlink_metadata(dest.join("d/hl")).unwrap().ino(),
            suid.ino()
        );
        assert_eq!(
            std::fs::read_link(dest.join("d/sl")).unwrap(),
            Path::new("../nowhere")
        );
        assert_eq!(
            std::fs::symlink_metadata(dest.join("d/sl"))
                .unwrap()
                .mtime(),
            1_600_000_000
        );
        let ro = std::fs::symlink_metadata(dest.join("d/ro")).unwrap();
        assert_eq!((ro.len(), ro.permissions().mode() & 0o7777), (3, 0o400));
        let fifo = std::fs::symlink_metadata(dest.join("d/fifo")).unwrap();
        assert!(std::os::unix::fs::FileTypeExt::is_fifo(&fifo.file_type()));
        assert_eq!(fifo.permissions().mode() & 0o7777, 0o640);
    }

    #[test]
    fn whiteouts_and_opaque_dirs_as_root() {
        if !linux::is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let (_dir, dest) = dest();
        let owned = raw_entry_with(
            b"etc/owned",
            tar::EntryType::Regular,
            b"",
            b"o",
            0o2750,
            |h| {
                h.set_uid(1234);
                h.set_gid(5678);
            },
        );
        let entries = [
            raw_entry(b"etc/", tar::EntryType::Directory, b"", b"", 0o755),
            file("etc/gone", b"x"),
            file("etc/.wh.gone", b""),
            file("etc/.wh.other", b""),
            file("opq/.wh..wh..opq", b""),
            file(".wh..wh..opq", b""),
            owned,
            raw_entry(b"dev/null", tar::EntryType::Char, b"", b"", 0o666),
        ];
        let stats = apply(&dest, archive(&entries).as_slice()).unwrap();
        assert_eq!(stats.entries, 8);
        for wh in ["etc/gone", "etc/other"] {
            let m = std::fs::symlink_metadata(dest.join(wh)).unwrap();
            assert!(
                std::os::unix::fs::FileTypeExt::is_char_device(&m.file_type()),
                "{wh}"
            );
            assert_eq!(m.rdev(), 0);
            assert_eq!(m.permissions().mode() & 0o7777, 0);
        }
        assert_eq!(
            xattr::get(dest.join("opq"), "trusted.overlay.opaque").unwrap(),
            Some(b"y".to_vec())
        );
        assert_eq!(
            xattr::get(&dest, "trusted.overlay.opaque").unwrap(),
            Some(b"y".to_vec())
        );
        let owned = std::fs::symlink_metadata(dest.join("etc/owned")).unwrap();
        assert_eq!((owned.uid(), owned.gid()), (1234, 5678));
        assert_eq!(owned.permissions().mode() & 0o7777, 0o2750);
        let null = std::fs::symlink_metadata(dest.join("dev/null")).unwrap();
        assert!(std::os::unix::fs::FileTypeExt::is_char_device(
            &null.file_type()
        ));
        assert_eq!(null.rdev(), 0);
    }

    #[test]
    fn pax_xattrs_are_applied_as_root() {
        if !linux::is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let (_dir, dest) = dest();
        let mut b = tar::Builder::new(Vec::new());
        b.append_pax_extensions([
            ("SCHILY.xattr.trusted.berth", &b"v"[..]),
            ("SCHILY.xattr.trusted.overlay.redirect", &b"/etc"[..]),
        ])
        .unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_size(1);
        h.set_mode(0o644);
        b.append_data(&mut h, "f", &b"x"[..]).unwrap();
        let tar = b.into_inner().unwrap();
        apply(&dest, tar.as_slice()).unwrap();
        assert_eq!(
            xattr::get(dest.join("f"), "trusted.berth").unwrap(),
            Some(b"v".to_vec())
        );
        assert_eq!(
            xattr::get(dest.join("f"), "trusted.overlay.redirect").unwrap(),
            None
        );
    }

    #[test]
    fn busybox_rootfs() {
        let fixture = Path::new("/work/shared/images/busybox-rootfs.tar");
        if !fixture.exists() {
            eprintln!("skipped: no busybox fixture");
            return;
        }
        let (_dir, dest) = dest();
        let f = std::fs::File::open(fixture).unwrap();
        let (c, r) = decompress(f).unwrap();
        assert_eq!(c, Compression::None);
        let stats = apply(&dest, r).unwrap();
        let bb = std::fs::symlink_metadata(dest.join("bin/busybox")).unwrap();
        assert!(bb.is_file());
        assert!(bb.permissions().mode() & 0o111 != 0);
        assert!(bb.len() > 100_000, "busybox is {} bytes", bb.len());
        assert!(
            stats.size >= bb.len() && stats.size < 100 << 20,
            "size {}",
            stats.size
        );
        assert!(stats.entries > 100, "entries {}", stats.entries);
        assert_eq!(
            std::fs::read_link(dest.join("bin/sh")).unwrap(),
            Path::new("busybox")
        );
    }
}
