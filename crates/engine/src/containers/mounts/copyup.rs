//! Docker's copy-up: a new, empty volume first gets what the image has at the volume's
//! destination. The source is read from the container's mounted root filesystem and the
//! destination written into the volume's directory, both through file descriptors
//! (`linux::fs::Root`, `openat2(RESOLVE_IN_ROOT)`): `storage::tree_tar` writes a tar of the
//! tree (never following a symlink; modes, owners, times, hard links, device nodes and xattrs
//! kept) into a pipe and extracts it into the volume, every path resolved inside the volume.
//! The volume's directory itself takes the owner and mode of the image's directory (moby's
//! `copyOwnership`).

use std::path::Path;

use linux::fs::{FileKind, Root};
use storage::StorageError;
use storage::tree_tar::{self, ExtractOptions, Top};

use crate::{EngineError, Result};

fn storage_err(e: StorageError) -> EngineError {
    match e {
        StorageError::Sys(e) => EngineError::Sys(e),
        e => EngineError::Images(images::ImagesError::Storage(e)),
    }
}

/// Whether the directory `dir` has no entries.
pub(crate) fn is_empty_dir(dir: &Root) -> Result<bool> {
    Ok(dir.read_dir(Path::new(""))?.is_empty())
}

/// Copies what `rootfs` has at `dest` (an absolute container path; symlinks on the way are
/// resolved inside `rootfs`) into `volume`, when it is a directory. Returns whether anything
/// was copied (nothing at `dest`, or not a directory: nothing to do).
pub(crate) fn copy_up(rootfs: &Root, dest: &str, volume: &Root) -> Result<bool> {
    let rel = Path::new(dest.trim_start_matches('/'));
    let resolved = match rootfs.resolve(rel) {
        Ok(r) => r,
        Err(e)
            if matches!(
                e.errno(),
                Some(linux::Errno::ENOENT | linux::Errno::ENOTDIR)
            ) =>
        {
            return Ok(false);
        }
        Err(e) => return Err(e.into()),
    };
    let st = rootfs.lstat(&resolved)?;
    if st.kind != FileKind::Dir {
        return Ok(false);
    }
    let src = rootfs.open_dir(&resolved)?;
    let (reader, writer) = std::io::pipe().map_err(|e| EngineError::Io {
        op: "pipe",
        path: dest.into(),
        source: e,
    })?;
    let copied = std::thread::scope(|s| -> Result<bool> {
        let producer = s.spawn(move || {
            // The writer is dropped when this returns: the reader then sees the end.
            tree_tar::write_tree(&src, Path::new(""), &Top::Contents, writer).map(|_| ())
        });
        let extracted =
            tree_tar::extract(volume, Path::new(""), reader, &ExtractOptions::default());
        let produced = producer
            .join()
            .map_err(|_| EngineError::TaskFailed { what: "copy-up" })?;
        produced.map_err(storage_err)?;
        extracted.map_err(storage_err)?;
        Ok(true)
    })?;
    // The volume's top directory takes the image directory's owner and mode.
    if linux::is_root() {
        volume.lchown(Path::new(""), st.uid, st.gid)?;
    }
    volume.chmod(Path::new(""), st.mode)?;
    Ok(copied)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn copies_a_tree_and_stays_inside() {
        let d = tempfile::tempdir().unwrap();
        let rootfs = d.path().join("rootfs");
        let vol = d.path().join("vol");
        std::fs::create_dir_all(rootfs.join("data/sub")).unwrap();
        std::fs::create_dir_all(&vol).unwrap();
        std::fs::write(rootfs.join("data/f"), "hello").unwrap();
        std::fs::write(rootfs.join("data/sub/g"), "deep").unwrap();
        std::fs::set_permissions(rootfs.join("data"), std::fs::Permissions::from_mode(0o750))
            .unwrap();
        std::os::unix::fs::symlink("/etc/passwd", rootfs.join("data/abs")).unwrap();
        std::os::unix::fs::symlink("../../..", rootfs.join("data/up")).unwrap();
        // A link in the image pointing at the host's root resolves inside the rootfs.
        std::os::unix::fs::symlink("/data", rootfs.join("link")).unwrap();

        let r = Root::open(&rootfs).unwrap();
        let v = Root::open(&vol).unwrap();
        assert!(is_empty_dir(&v).unwrap());
        assert!(copy_up(&r, "/link", &v).unwrap());
        assert_eq!(std::fs::read_to_string(vol.join("f")).unwrap(), "hello");
        assert_eq!(std::fs::read_to_string(vol.join("sub/g")).unwrap(), "deep");
        assert_eq!(
            std::fs::read_link(vol.join("abs")).unwrap(),
            Path::new("/etc/passwd")
        );
        assert_eq!(
            std::fs::read_link(vol.join("up")).unwrap(),
            Path::new("../../..")
        );
        let mode = std::fs::metadata(&vol).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o750);
        assert!(!is_empty_dir(&v).unwrap());

        // Nothing there, or a file: nothing copied.
        let v2 = d.path().join("vol2");
        std::fs::create_dir_all(&v2).unwrap();
        let v2r = Root::open(&v2).unwrap();
        assert!(!copy_up(&r, "/nope/x", &v2r).unwrap());
        assert!(!copy_up(&r, "/data/f", &v2r).unwrap());
        assert!(is_empty_dir(&v2r).unwrap());
        // A symlink chain that leaves the root lands back inside it (and is empty here).
        assert!(!copy_up(&r, "/data/up/nope", &v2r).unwrap());
    }
}
