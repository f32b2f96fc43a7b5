//! A docker layer tar from an overlay upper directory (`docker commit`).
//!
//! [`write_layer`] walks the upper directory (written by a container: hostile) through
//! `linux::fs::Root`, never following a symlink, depth-first with names in byte order, and writes
//! what moby's overlay2 driver writes: whiteouts (0:0 character devices) become empty regular
//! files `.wh.<name>`, an opaque directory is followed by an empty `.wh..wh..opq` inside it, and
//! modes, owners, mtimes (whole seconds), symlinks, hardlinks, device nodes and extended
//! attributes (as `SCHILY.xattr.*` PAX records, never `trusted.overlay.*`) are kept. Sockets are
//! skipped, as moby does, and so are files the container named `.wh.*` (they would read as
//! whiteouts) and files that vanish or change type while a live container is committed. [`commit_upper`] streams that tar into the content store by its diff
//! ID and unpacks it as a snapshot on top of the parent chain (re-applying the tar through
//! [`crate::layer::apply`], so the snapshot is exactly what loading that layer would make).
//!
//! It knows nothing of containers or images: it is handed directories and digests.

use std::collections::HashMap;
use std::ffi::OsString;
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use linux::fs::{FileKind, Root, Stat};

use crate::changes::{is_opaque, is_whiteout};
use crate::{ContentStore, Digest, Ingest, Result, SnapshotInfo, Snapshotter, StorageError};

/// The diff ID of a layer with no entries (a tar of 1024 zero bytes): moby's `layer.IsEmpty`.
pub const EMPTY_LAYER_DIFF_ID: &str =
    "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef";

/// What [`write_layer`] wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LayerStats {
    /// Tar entries written (whiteout and opaque markers included).
    pub entries: u64,
    /// Bytes of regular file content.
    pub size: u64,
}

fn tar_err(rel: &Path) -> impl FnOnce(std::io::Error) -> StorageError {
    let path = rel.to_path_buf();
    move |source| StorageError::Io {
        op: "write layer tar",
        path,
        source,
    }
}

fn header(st: &Stat, kind: tar::EntryType) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(st.mode);
    h.set_uid(u64::from(st.uid));
    h.set_gid(u64::from(st.gid));
    h.set_mtime(u64::try_from(st.mtime).unwrap_or(0));
    h.set_size(0);
    h
}

struct Writer<W: Write> {
    root: Root,
    tar: tar::Builder<W>,
    /// (dev, inode) of files with several links → the name first written.
    links: HashMap<(u64, u64), PathBuf>,
    stats: LayerStats,
    /// Later mtimes are written as this (seconds since the epoch): reproducible builds.
    clamp_mtime: Option<u64>,
}

impl<W: Write> Writer<W> {
    fn header(&self, st: &Stat, kind: tar::EntryType) -> tar::Header {
        let mut h = header(st, kind);
        if let Some(max) = self.clamp_mtime
            && h.mtime().is_ok_and(|m| m > max)
        {
            h.set_mtime(max);
        }
        h
    }

    fn xattrs(&mut self, rel: &Path) -> Result<()> {
        let mut records: Vec<(String, Vec<u8>)> = Vec::new();
        for name in self.root.list_xattrs(rel)? {
            let bytes = name.as_bytes();
            if bytes.starts_with(b"trusted.overlay.") {
                continue;
            }
            let Ok(key) = std::str::from_utf8(bytes) else {
                tracing::warn!(path = %rel.display(), "skipping an xattr whose name is not UTF-8");
                continue;
            };
            if let Some(value) = self.root.get_xattr(rel, &name)? {
                records.push((format!("SCHILY.xattr.{key}"), value));
            }
        }
        if !records.is_empty() {
            self.tar
                .append_pax_extensions(records.iter().map(|(k, v)| (k.as_str(), v.as_slice())))
                .map_err(tar_err(rel))?;
        }
        Ok(())
    }

    fn empty_entry(&mut self, mut h: tar::Header, name: &Path) -> Result<()> {
        self.tar
            .append_data(&mut h, name, std::io::empty())
            .map_err(tar_err(name))?;
        self.stats.entries += 1;
        Ok(())
    }

    fn entry(&mut self, rel: &Path, st: &Stat) -> Result<()> {
        if rel
            .file_name()
            .is_some_and(|n| n.as_bytes().starts_with(b".wh."))
        {
            // A name in whiteout syntax would delete something when the layer is applied.
            tracing::warn!(path = %rel.display(), "skipping a file named like a whiteout");
            return Ok(());
        }
        if is_whiteout(st) {
            let name = rel.file_name().unwrap_or_default();
            let mut wh = OsString::from(".wh.");
            wh.push(name);
            let path = rel.with_file_name(wh);
            let mut h = self.header(st, tar::EntryType::Regular);
            h.set_mode(0o600);
            return self.empty_entry(h, &path);
        }
        match st.kind {
            FileKind::Dir => {
                self.xattrs(rel)?;
                self.empty_entry(self.header(st, tar::EntryType::Directory), rel)?;
                if is_opaque(&self.root, rel)? {
                    let mut h = self.header(st, tar::EntryType::Regular);
                    h.set_mode(st.mode & 0o777);
                    self.empty_entry(h, &rel.join(".wh..wh..opq"))?;
                }
            }
            FileKind::File => {
                if st.nlink > 1 {
                    if let Some(first) = self.links.get(&(st.dev, st.ino)) {
                        let first = first.clone();
                        let mut h = self.header(st, tar::EntryType::Link);
                        self.tar
                            .append_link(&mut h, rel, &first)
                            .map_err(tar_err(rel))?;
                        self.stats.entries += 1;
                        return Ok(());
                    }
                    self.links.insert((st.dev, st.ino), rel.to_path_buf());
                }
                let file = match self.root.open_regular(rel) {
                    Ok(f) => f,
                    // Gone or swapped for something else since the walk saw it (a running
                    // container committed without pausing): skipped, as moby does.
                    Err(e)
                        if matches!(
                            e.errno(),
                            Some(linux::Errno::ENOENT | linux::Errno::EINVAL | linux::Errno::ELOOP)
                        ) =>
                    {
                        tracing::warn!(path = %rel.display(), error = %e, "skipping a file that changed during commit");
                        return Ok(());
                    }
                    Err(e) => return Err(e.into()),
                };
                // The size stated in the header is what goes in: a file that shrank meanwhile
                // (a running container) is padded with zeros, one that grew is cut.
                let size = st.size;
                let data = file.take(size).chain(std::io::repeat(0)).take(size);
                self.xattrs(rel)?;
                let mut h = self.header(st, tar::EntryType::Regular);
                h.set_size(size);
                self.tar
                    .append_data(&mut h, rel, data)
                    .map_err(tar_err(rel))?;
                self.stats.entries += 1;
                self.stats.size += size;
            }
            FileKind::Symlink => {
                let target = self.root.read_link(rel)?;
                self.xattrs(rel)?;
                let mut h = self.header(st, tar::EntryType::Symlink);
                self.tar
                    .append_link(&mut h, rel, &target)
                    .map_err(tar_err(rel))?;
                self.stats.entries += 1;
            }
            FileKind::CharDevice | FileKind::BlockDevice | FileKind::Fifo => {
                let kind = match st.kind {
                    FileKind::CharDevice => tar::EntryType::Char,
                    FileKind::BlockDevice => tar::EntryType::Block,
                    _ => tar::EntryType::Fifo,
                };
                let mut h = self.header(st, kind);
                if kind != tar::EntryType::Fifo {
                    let major = u32::try_from(st.rdev_major).unwrap_or(u32::MAX);
                    let minor = u32::try_from(st.rdev_minor).unwrap_or(u32::MAX);
                    h.set_device_major(major).map_err(tar_err(rel))?;
                    h.set_device_minor(minor).map_err(tar_err(rel))?;
                }
                self.xattrs(rel)?;
                self.empty_entry(h, rel)?;
            }
            FileKind::Socket => {
                tracing::debug!(path = %rel.display(), "skipping a socket in a layer");
            }
        }
        Ok(())
    }
}

/// Writes the docker layer tar of the overlay upper directory `upper` to `out` and hands `out`
/// back. A missing `upper` (a container never started) gives an empty layer.
pub fn write_layer<W: Write>(upper: &Path, out: W) -> Result<(W, LayerStats)> {
    write_layer_clamped(upper, out, None)
}

/// [`write_layer`], with every mtime later than `clamp_mtime` (seconds since the epoch)
/// written as it: with `SOURCE_DATE_EPOCH`, two builds give the same layer.
pub fn write_layer_clamped<W: Write>(
    upper: &Path,
    out: W,
    clamp_mtime: Option<u64>,
) -> Result<(W, LayerStats)> {
    let mut tar = tar::Builder::new(out);
    let stats = if std::fs::symlink_metadata(upper).is_err() {
        LayerStats::default()
    } else {
        let mut w = Writer {
            root: Root::open(upper)?,
            tar,
            links: HashMap::new(),
            stats: LayerStats::default(),
            clamp_mtime,
        };
        // Depth-first, pre-order, names in byte order; an explicit stack, as the tree is the
        // container's and may be arbitrarily deep.
        let mut stack: Vec<PathBuf> = w
            .root
            .read_dir(Path::new(""))?
            .into_iter()
            .rev()
            .map(PathBuf::from)
            .collect();
        while let Some(rel) = stack.pop() {
            let Some(st) = w.root.try_lstat(&rel)? else {
                continue;
            };
            w.entry(&rel, &st)?;
            if st.kind == FileKind::Dir {
                match w.root.read_dir(&rel) {
                    Ok(names) => stack.extend(names.into_iter().rev().map(|n| rel.join(n))),
                    Err(e)
                        if matches!(
                            e.errno(),
                            Some(linux::Errno::ENOENT | linux::Errno::ENOTDIR)
                        ) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        tar = w.tar;
        w.stats
    };
    let out = tar.into_inner().map_err(tar_err(upper))?;
    Ok((out, stats))
}

/// The layer tar of `upper` written to the content store (by its diff ID) and unpacked as a
/// snapshot on top of the chain `parent`. An empty layer (nothing changed) is stored but not
/// unpacked: the answer's snapshot is then `None`, and the caller leaves it out of the rootfs,
/// as moby does. `made` is set to the diff ID when this call stored the blob (it was not there
/// before), also when the unpack then fails: the caller, which knows whether an image uses
/// it, removes it then, so a commit that ran out of space gives the space back.
pub fn commit_upper(
    content: &ContentStore,
    snaps: &Snapshotter,
    upper: &Path,
    parent: Option<&Digest>,
    made: &mut Option<Digest>,
) -> Result<(Digest, Option<SnapshotInfo>)> {
    commit_upper_clamped(content, snaps, upper, parent, None, made)
}

/// [`commit_upper`] with mtimes clamped as [`write_layer_clamped`] does.
pub fn commit_upper_clamped(
    content: &ContentStore,
    snaps: &Snapshotter,
    upper: &Path,
    parent: Option<&Digest>,
    clamp_mtime: Option<u64>,
    made: &mut Option<Digest>,
) -> Result<(Digest, Option<SnapshotInfo>)> {
    let Ingest::Writer(w) = content.ingest(None)? else {
        return Err(StorageError::InvalidArchive(
            "unexpected existing ingest".into(),
        ));
    };
    let (w, _stats) = write_layer_clamped(upper, w, clamp_mtime)?;
    let (diff_id, new) = w.commit_new(None, None)?;
    if new {
        *made = Some(diff_id.clone());
    }
    if diff_id.to_string() == EMPTY_LAYER_DIFF_ID {
        return Ok((diff_id, None));
    }
    let blob = content.open_blob(&diff_id)?;
    let info = snaps.unpack(
        parent,
        &diff_id,
        std::io::BufReader::with_capacity(1 << 20, blob),
    )?;
    Ok((diff_id, Some(info)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::changes::OPAQUE_XATTR;
    use std::ffi::OsStr;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    /// (name, type, mode, link target, data, PAX xattrs) of each entry.
    type Row = (String, tar::EntryType, u32, String, Vec<u8>, Vec<String>);

    fn entries(tar: &[u8]) -> Vec<Row> {
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
            let mut xattrs = Vec::new();
            if let Some(exts) = e.pax_extensions().unwrap() {
                for x in exts {
                    let x = x.unwrap();
                    xattrs.push(format!(
                        "{}={}",
                        x.key().unwrap(),
                        String::from_utf8_lossy(x.value_bytes())
                    ));
                }
            }
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            out.push((name, h.entry_type(), h.mode().unwrap(), link, data, xattrs));
        }
        out
    }

    fn by_name(rows: &[Row], n: &str) -> Row {
        rows.iter().find(|r| r.0 == n).unwrap().clone()
    }

    fn upper() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let up = dir.path().join("upper");
        std::fs::create_dir_all(up.join("new/sub")).unwrap();
        std::fs::write(up.join("new/sub/f"), "x\n").unwrap();
        std::fs::set_permissions(up.join("new/sub/f"), PermissionsExt::from_mode(0o4755)).unwrap();
        std::fs::hard_link(up.join("new/sub/f"), up.join("new/hl")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", up.join("new/sl")).unwrap();
        std::fs::create_dir_all(up.join("etc")).unwrap();
        std::fs::write(up.join("etc/group"), "root\n").unwrap();
        // A symlink to a host directory: written as a symlink, never walked.
        std::fs::create_dir(dir.path().join("host")).unwrap();
        std::fs::write(dir.path().join("host/secret"), "s").unwrap();
        std::os::unix::fs::symlink(dir.path().join("host"), up.join("hostlink")).unwrap();
        // A fifo is written as one, never opened (that would block); a file named like a
        // whiteout is left out.
        Root::open(&up)
            .unwrap()
            .mknod(
                Path::new("new/fifo"),
                linux::fs::DeviceKind::Fifo,
                0o644,
                0,
                0,
            )
            .unwrap();
        std::fs::write(up.join(".wh.etc"), "").unwrap();
        (dir, up)
    }

    #[test]
    fn layer_tar_keeps_metadata_and_links() {
        let (_dir, up) = upper();
        let (tar, stats) = write_layer(&up, Vec::new()).unwrap();
        let rows = entries(&tar);
        let names: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
        assert_eq!(
            names,
            vec![
                "etc",
                "etc/group",
                "hostlink",
                "new",
                "new/fifo",
                "new/hl",
                "new/sl",
                "new/sub",
                "new/sub/f"
            ]
        );
        assert_eq!(stats.entries, 9);
        assert_eq!(by_name(&rows, "new/fifo").1, tar::EntryType::Fifo);
        let by = |n: &str| rows.iter().find(|r| r.0 == n).unwrap().clone();
        assert_eq!(by("etc").1, tar::EntryType::Directory);
        assert_eq!(by("etc/group").4, b"root\n");
        // The first of two links carries the data; the second is a hardlink to it.
        let hl = by("new/hl");
        assert_eq!(
            (hl.1, hl.2 & 0o7777, hl.4.as_slice()),
            (tar::EntryType::Regular, 0o4755, &b"x\n"[..])
        );
        let f = by("new/sub/f");
        assert_eq!((f.1, f.3.as_str()), (tar::EntryType::Link, "new/hl"));
        let sl = by("new/sl");
        assert_eq!(
            (sl.1, sl.3.as_str()),
            (tar::EntryType::Symlink, "/etc/passwd")
        );
        assert_eq!(by("hostlink").1, tar::EntryType::Symlink);
        assert!(!names.iter().any(|n| n.contains("secret")));
    }

    #[test]
    fn clamped_mtimes_make_the_layer_reproducible() {
        let dir = tempfile::tempdir().unwrap();
        let up = dir.path().join("up");
        std::fs::create_dir_all(up.join("d")).unwrap();
        std::fs::write(up.join("d/f"), b"x").unwrap();
        let (a, _) = write_layer_clamped(&up, Vec::new(), Some(1000)).unwrap();
        // Touch everything: a later mtime is still written as the clamp.
        std::thread::sleep(std::time::Duration::from_millis(1100));
        std::fs::write(up.join("d/f"), b"x").unwrap();
        let (b, _) = write_layer_clamped(&up, Vec::new(), Some(1000)).unwrap();
        assert_eq!(a, b);
        let mut archive = tar::Archive::new(a.as_slice());
        for e in archive.entries().unwrap() {
            assert_eq!(e.unwrap().header().mtime().unwrap(), 1000);
        }
        let (c, _) = write_layer(&up, Vec::new()).unwrap();
        assert_ne!(a, c, "unclamped keeps the real mtimes");
    }

    #[test]
    fn missing_upper_is_the_empty_layer() {
        let dir = tempfile::tempdir().unwrap();
        let (tar, stats) = write_layer(&dir.path().join("nope"), Vec::new()).unwrap();
        assert_eq!(stats, LayerStats::default());
        assert_eq!(Digest::of(&tar).to_string(), EMPTY_LAYER_DIFF_ID);
        std::fs::create_dir(dir.path().join("empty")).unwrap();
        let (tar, _) = write_layer(&dir.path().join("empty"), Vec::new()).unwrap();
        assert_eq!(Digest::of(&tar).to_string(), EMPTY_LAYER_DIFF_ID);
    }

    #[test]
    fn commit_upper_stores_and_unpacks() {
        let (dir, up) = upper();
        let content = ContentStore::open(&dir.path().join("content")).unwrap();
        let snaps = Snapshotter::open(&dir.path().join("snapshots")).unwrap();
        let base = {
            let mut b = tar::Builder::new(Vec::new());
            let mut h = tar::Header::new_gnu();
            h.set_size(1);
            h.set_mode(0o644);
            b.append_data(&mut h, "base", &b"b"[..]).unwrap();
            b.into_inner().unwrap()
        };
        let base_diff = content.write_blob(&base, None).unwrap();
        snaps.unpack(None, &base_diff, base.as_slice()).unwrap();
        let mut made = None;
        let (diff, info) =
            commit_upper(&content, &snaps, &up, Some(&base_diff), &mut made).unwrap();
        assert_eq!(made.as_ref(), Some(&diff));
        let info = info.unwrap();
        assert!(content.exists(&diff));
        assert_eq!(info.parent.as_ref(), Some(&base_diff));
        assert_eq!(
            info.chain_id,
            Snapshotter::chain_id(Some(&base_diff), &diff)
        );
        let fs = snaps.fs_path(&info.chain_id);
        assert_eq!(std::fs::read(fs.join("new/sub/f")).unwrap(), b"x\n");
        let f = std::fs::symlink_metadata(fs.join("new/sub/f")).unwrap();
        assert_eq!(
            f.ino(),
            std::fs::symlink_metadata(fs.join("new/hl")).unwrap().ino()
        );
        assert_eq!(
            std::fs::read_link(fs.join("new/sl")).unwrap(),
            Path::new("/etc/passwd")
        );
        // The blob re-hashes to its diff ID.
        assert_eq!(
            Digest::of(&std::fs::read(content.blob_path(&diff)).unwrap()),
            diff
        );
        // Nothing changed: the empty layer, stored but not unpacked.
        std::fs::create_dir(dir.path().join("empty")).unwrap();
        let (d, info) = commit_upper(
            &content,
            &snaps,
            &dir.path().join("empty"),
            Some(&base_diff),
            &mut made,
        )
        .unwrap();
        assert_eq!(d.to_string(), EMPTY_LAYER_DIFF_ID);
        assert!(info.is_none());
        // The same layer again: stored already, so not made by this call.
        let mut again = None;
        commit_upper(&content, &snaps, &up, Some(&base_diff), &mut again).unwrap();
        assert_eq!(again, None);
    }

    #[test]
    fn whiteouts_opaque_dirs_and_xattrs_as_root() {
        if !linux::is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let (dir, up) = upper();
        let root = Root::open(&up).unwrap();
        root.mknod(
            Path::new("etc/passwd"),
            linux::fs::DeviceKind::Char,
            0,
            0,
            0,
        )
        .unwrap();
        root.create_dir(Path::new("var"), 0o750).unwrap();
        root.set_xattr(Path::new("var"), OsStr::new(OPAQUE_XATTR), b"y")
            .unwrap();
        root.set_xattr(Path::new("etc/group"), OsStr::new("trusted.berth"), b"v")
            .unwrap();
        root.set_xattr(
            Path::new("etc/group"),
            OsStr::new("trusted.overlay.origin"),
            b"x",
        )
        .unwrap();
        root.lchown(Path::new("etc/group"), 1234, 5678).unwrap();
        root.mknod(
            Path::new("etc/null"),
            linux::fs::DeviceKind::Char,
            0o666,
            1,
            3,
        )
        .unwrap();
        let (tar, _) = write_layer(&up, Vec::new()).unwrap();
        let rows = entries(&tar);
        let by = |n: &str| {
            rows.iter()
                .find(|r| r.0 == n)
                .unwrap_or_else(|| panic!("{n} missing: {rows:?}"))
                .clone()
        };
        let wh = by("etc/.wh.passwd");
        assert_eq!((wh.1, wh.4.len()), (tar::EntryType::Regular, 0));
        assert!(!rows.iter().any(|r| r.0 == "etc/passwd"));
        let opq = by("var/.wh..wh..opq");
        assert_eq!(opq.1, tar::EntryType::Regular);
        let var_pos = rows.iter().position(|r| r.0 == "var").unwrap();
        assert_eq!(rows[var_pos + 1].0, "var/.wh..wh..opq");
        assert!(by("var").5.is_empty(), "the opaque xattr is not carried");
        assert_eq!(
            by("etc/group").5,
            vec!["SCHILY.xattr.trusted.berth=v".to_string()]
        );
        assert_eq!(by("etc/null").1, tar::EntryType::Char);

        // Applied again, it gives back overlay whiteouts, the opaque mark and the owner.
        let out = dir.path().join("applied");
        std::fs::create_dir(&out).unwrap();
        crate::layer::apply(&out, tar.as_slice()).unwrap();
        let w = std::fs::symlink_metadata(out.join("etc/passwd")).unwrap();
        assert!(std::os::unix::fs::FileTypeExt::is_char_device(
            &w.file_type()
        ));
        assert_eq!(w.rdev(), 0);
        assert_eq!(
            xattr::get(out.join("var"), OPAQUE_XATTR).unwrap(),
            Some(b"y".to_vec())
        );
        let g = std::fs::symlink_metadata(out.join("etc/group")).unwrap();
        assert_eq!((g.uid(), g.gid()), (1234, 5678));
        assert_eq!(
            xattr::get(out.join("etc/group"), "trusted.berth").unwrap(),
            Some(b"v".to_vec())
        );
        let null = std::fs::symlink_metadata(out.join("etc/null")).unwrap();
        assert_eq!(null.rdev(), nix_makedev(1, 3));
    }

    fn nix_makedev(major: u64, minor: u64) -> u64 {
        ((major & 0xffff_f000) << 32)
            | ((major & 0xfff) << 8)
            | ((minor & 0xffff_ff00) << 12)
            | (minor & 0xff)
    }
}
