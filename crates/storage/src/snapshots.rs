//! The overlay snapshotter: one read-only directory per layer chain ID.
//!
//! Layout under `<root>` (normally `<data-root>/snapshots`):
//! `<chain-hex>/fs/` (the layer's own files, overlayfs whiteouts), `<chain-hex>/meta.json`
//! ([`SnapshotInfo`]), and `tmp-<random>/` while a layer is being unpacked. A layer is unpacked
//! once per chain ID: concurrent callers of the same chain wait for the first, and the result
//! is published by renaming `tmp-*` into place, so a crash never leaves a half-applied snapshot
//! under its final name. Stale `tmp-*` are removed on open.

use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use linux::fs::Root;

use crate::locks::{KeyLocks, random_hex};
use crate::{Digest, Result, StorageError};

/// A committed snapshot.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SnapshotInfo {
    /// chain ID: `diff_id` for the bottom layer, else sha256(parent chain ID + " " + diff_id).
    pub chain_id: Digest,
    /// The parent's chain ID (None for the bottom layer).
    pub parent: Option<Digest>,
    /// Digest of this layer's uncompressed tar.
    pub diff_id: Digest,
    /// Bytes of file content in this layer alone.
    pub size: u64,
}

/// Overlay snapshots under one directory.
#[derive(Debug, Clone)]
pub struct Snapshotter {
    root: PathBuf,
    locks: Arc<KeyLocks>,
}

const META: &str = "meta.json";
const TMP_PREFIX: &str = "tmp-";

fn fsync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(StorageError::io("fsync directory", dir))
}

impl Snapshotter {
    /// Opens (creating if needed) the snapshot directory and removes stale temporaries.
    pub fn open(root: &Path) -> Result<Self> {
        std::fs::create_dir_all(root).map_err(StorageError::io("create directory", root))?;
        let this = Self {
            root: root.to_path_buf(),
            locks: Arc::default(),
        };
        let dir = this.dir_root()?;
        for entry in std::fs::read_dir(root).map_err(StorageError::io("read dir", root))? {
            let entry = entry.map_err(StorageError::io("read dir", root))?;
            let name = entry.file_name();
            if name.to_string_lossy().starts_with(TMP_PREFIX) {
                tracing::debug!(path = %entry.path().display(), "removing stale snapshot temporary");
                dir.remove_all(Path::new(&name))?;
            }
        }
        Ok(this)
    }

    fn dir_root(&self) -> Result<Root> {
        Ok(Root::open(&self.root)?)
    }

    /// The chain ID of `diff_id` on top of `parent`.
    pub fn chain_id(parent: Option<&Digest>, diff_id: &Digest) -> Digest {
        match parent {
            None => diff_id.clone(),
            Some(p) => Digest::of(format!("{p} {diff_id}").as_bytes()),
        }
    }

    /// The committed snapshot for a chain ID, if any.
    pub fn get(&self, chain_id: &Digest) -> Option<SnapshotInfo> {
        let path = self.root.join(chain_id.hex()).join(META);
        let data = std::fs::read(&path).ok()?;
        match serde_json::from_slice::<SnapshotInfo>(&data) {
            Ok(info) if info.chain_id == *chain_id => Some(info),
            Ok(_) => {
                tracing::warn!(path = %path.display(), "snapshot metadata names another chain");
                None
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), "unreadable snapshot metadata: {e}");
                None
            }
        }
    }

    /// Unpacks the uncompressed layer tar `layer` (whose digest the caller has verified to be
    /// `diff_id`) on top of `parent`, unless that chain is already committed. Returns its info.
    pub fn unpack(
        &self,
        parent: Option<&Digest>,
        diff_id: &Digest,
        layer: impl Read,
    ) -> Result<SnapshotInfo> {
        let chain_id = Self::chain_id(parent, diff_id);
        let _guard = self.locks.lock(chain_id.hex());
        if let Some(info) = self.get(&chain_id) {
            return Ok(info);
        }
        self.stage(parent, diff_id, layer)?.publish()
    }

    /// Unpacks `layer` into a temporary directory without publishing it: the caller checks
    /// the layer's digest meanwhile (a registry pull unpacks while it downloads) and then
    /// [`Staged::commit`]s it, or drops it, which removes it.
    pub fn stage(
        &self,
        parent: Option<&Digest>,
        diff_id: &Digest,
        layer: impl Read,
    ) -> Result<Staged> {
        let chain_id = Self::chain_id(parent, diff_id);
        let tmp_name = format!("{TMP_PREFIX}{}", random_hex());
        let mut staged = Staged {
            snaps: self.clone(),
            tmp_name,
            info: None,
        };
        let tmp = self.root.join(&staged.tmp_name);
        staged.info = Some(self.unpack_into(&tmp, &chain_id, parent, diff_id, layer)?);
        Ok(staged)
    }

    fn unpack_into(
        &self,
        tmp: &Path,
        chain_id: &Digest,
        parent: Option<&Digest>,
        diff_id: &Digest,
        layer: impl Read,
    ) -> Result<SnapshotInfo> {
        let fs = tmp.join("fs");
        std::fs::create_dir(tmp).map_err(StorageError::io("create directory", tmp))?;
        std::fs::create_dir(&fs).map_err(StorageError::io("create directory", &fs))?;
        let stats = crate::layer::apply(&fs, layer)?;
        let info = SnapshotInfo {
            chain_id: chain_id.clone(),
            parent: parent.cloned(),
            diff_id: diff_id.clone(),
            size: stats.size,
        };
        let json = serde_json::to_vec_pretty(&info).map_err(|e| {
            StorageError::InvalidArchive(format!("encoding snapshot metadata: {e}"))
        })?;
        let meta_tmp = tmp.join(format!("{META}.tmp"));
        let meta = tmp.join(META);
        let mut f = File::create(&meta_tmp).map_err(StorageError::io("write", &meta_tmp))?;
        f.write_all(&json)
            .and_then(|()| f.sync_all())
            .map_err(StorageError::io("write", &meta_tmp))?;
        drop(f);
        std::fs::rename(&meta_tmp, &meta).map_err(StorageError::io("rename", &meta))?;
        fsync_dir(tmp)?;
        Ok(info)
    }

    /// The directory holding a snapshot's files (its overlay lowerdir).
    pub fn fs_path(&self, chain_id: &Digest) -> PathBuf {
        self.root.join(chain_id.hex()).join("fs")
    }

    /// Removes a snapshot (no error if it is gone).
    pub fn remove(&self, chain_id: &Digest) -> Result<()> {
        let _guard = self.locks.lock(chain_id.hex());
        let path = self.root.join(chain_id.hex());
        // Move it out of the way first, so a crash half-way through never leaves a partial
        // snapshot under its final name (stale temporaries are removed on open).
        let tmp_name = format!("{TMP_PREFIX}{}", random_hex());
        match std::fs::rename(&path, self.root.join(&tmp_name)) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) => {
                return Err(StorageError::Io {
                    op: "remove snapshot",
                    path,
                    source: e,
                });
            }
        }
        self.dir_root()?.remove_all(Path::new(&tmp_name))?;
        Ok(())
    }

    /// Every committed snapshot.
    pub fn list(&self) -> Result<Vec<SnapshotInfo>> {
        let mut out = Vec::new();
        for entry in
            std::fs::read_dir(&self.root).map_err(StorageError::io("read dir", &self.root))?
        {
            let entry = entry.map_err(StorageError::io("read dir", &self.root))?;
            if let Some(name) = entry.file_name().to_str()
                && let Ok(d) = Digest::from_hex(name)
                && let Some(info) = self.get(&d)
            {
                out.push(info);
            }
        }
        out.sort_by(|a, b| a.chain_id.cmp(&b.chain_id));
        Ok(out)
    }
}

/// An unpacked layer not yet published under its chain ID (see [`Snapshotter::stage`]).
/// Dropping it removes its files.
#[derive(Debug)]
pub struct Staged {
    snaps: Snapshotter,
    tmp_name: String,
    /// `None` only once published (or while unpacking failed).
    info: Option<SnapshotInfo>,
}

impl Staged {
    /// The chain ID it will be published under.
    pub fn chain_id(&self) -> Option<&Digest> {
        self.info.as_ref().map(|i| &i.chain_id)
    }

    /// Publishes the snapshot under its chain ID; if that chain was committed meanwhile,
    /// keeps the committed one and removes this copy. Returns the committed info.
    pub fn commit(self) -> Result<SnapshotInfo> {
        let chain = self.chain_id().cloned();
        let Some(chain) = chain else {
            return Err(StorageError::InvalidArchive(
                "snapshot was not unpacked".into(),
            ));
        };
        let _guard = self.snaps.locks.lock(chain.hex());
        if let Some(info) = self.snaps.get(&chain) {
            return Ok(info); // dropping `self` removes the copy
        }
        self.publish()
    }

    /// Renames the temporary into place; the caller holds the chain's lock.
    fn publish(mut self) -> Result<SnapshotInfo> {
        let Some(info) = self.info.take() else {
            return Err(StorageError::InvalidArchive(
                "snapshot was not unpacked".into(),
            ));
        };
        let root = &self.snaps.root;
        let target = root.join(info.chain_id.hex());
        match std::fs::rename(root.join(&self.tmp_name), &target) {
            Ok(()) => {
                self.tmp_name.clear(); // nothing left to remove
                fsync_dir(root)?;
                Ok(info)
            }
            // Another process committed it first: keep theirs.
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::AlreadyExists | ErrorKind::DirectoryNotEmpty
                ) =>
            {
                self.snaps.get(&info.chain_id).ok_or(StorageError::Io {
                    op: "commit snapshot",
                    path: target,
                    source: e,
                })
            }
            Err(e) => Err(StorageError::Io {
                op: "commit snapshot",
                path: target,
                source: e,
            }),
        }
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if self.tmp_name.is_empty() {
            return;
        }
        let path = self.snaps.root.join(&self.tmp_name);
        if !path.exists() {
            return;
        }
        if let Err(e) = self
            .snaps
            .dir_root()
            .and_then(|r| r.remove_all(Path::new(&self.tmp_name)).map_err(Into::into))
        {
            tracing::warn!(path = %path.display(), "removing snapshot temporary: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    fn tar_with(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in files {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_entry_type(tar::EntryType::Regular);
            b.append_data(&mut h, name, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    /// A reader that counts the bytes read through it.
    struct Counting<R> {
        inner: R,
        read: Arc<AtomicU64>,
    }
    impl<R: Read> Read for Counting<R> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.inner.read(buf)?;
            self.read.fetch_add(n as u64, Ordering::SeqCst);
            Ok(n)
        }
    }

    #[test]
    fn chain_id_computation() {
        let a = Digest::of(b"a");
        let b = Digest::of(b"b");
        assert_eq!(Snapshotter::chain_id(None, &a), a);
        let expected = Digest::of(format!("{a} {b}").as_bytes());
        assert_eq!(Snapshotter::chain_id(Some(&a), &b), expected);
        // The known value for "sha256:<a> sha256:<b>" as text.
        let text = format!("sha256:{} sha256:{}", a.hex(), b.hex());
        assert_eq!(expected, Digest::of(text.as_bytes()));
    }

    #[test]
    fn unpack_twice_reuses_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let s = Snapshotter::open(&dir.path().join("snapshots")).unwrap();
        let layer = tar_with(&[("etc/hostname", b"berth\n"), ("a", b"xyz")]);
        let diff = Digest::of(&layer);
        let info = s.unpack(None, &diff, layer.as_slice()).unwrap();
        assert_eq!(info.chain_id, diff);
        assert_eq!(info.size, 9);
        assert_eq!(
            std::fs::read(s.fs_path(&diff).join("etc/hostname")).unwrap(),
            b"berth\n"
        );
        let read = Arc::new(AtomicU64::new(0));
        let again = s
            .unpack(
                None,
                &diff,
                Counting {
                    inner: layer.as_slice(),
                    read: read.clone(),
                },
            )
            .unwrap();
        assert_eq!(again, info);
        assert_eq!(read.load(Ordering::SeqCst), 0);
        assert_eq!(s.get(&diff), Some(info.clone()));

        let top = tar_with(&[("b", b"b")]);
        let top_diff = Digest::of(&top);
        let child = s.unpack(Some(&diff), &top_diff, top.as_slice()).unwrap();
        assert_eq!(child.parent, Some(diff.clone()));
        assert_eq!(
            child.chain_id,
            Snapshotter::chain_id(Some(&diff), &top_diff)
        );
        assert_eq!(s.list().unwrap().len(), 2);

        s.remove(&diff).unwrap();
        s.remove(&diff).unwrap();
        assert_eq!(s.get(&diff), None);
        assert_eq!(s.list().unwrap(), vec![child]);
        // Only the child's directory is left: no temporaries.
        assert_eq!(
            std::fs::read_dir(dir.path().join("snapshots"))
                .unwrap()
                .count(),
            1
        );
    }

    #[test]
    fn failed_unpack_leaves_nothing_and_open_cleans_temporaries() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("snapshots");
        let s = Snapshotter::open(&root).unwrap();
        let mut bad = tar_with(&[("ok", b"1")]);
        // A hostile name written into the raw header (the builder refuses `..`).
        let mut h = tar::Header::new_old();
        h.as_old_mut().name[..9].copy_from_slice(b"../escape");
        h.set_size(0);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_cksum();
        let end = bad.len() - 1024;
        bad.truncate(end);
        bad.extend_from_slice(h.as_bytes());
        bad.extend_from_slice(&[0; 1024]);
        let diff = Digest::of(&bad);
        assert!(s.unpack(None, &diff, bad.as_slice()).is_err());
        assert_eq!(s.get(&diff), None);
        assert_eq!(std::fs::read_dir(&root).unwrap().count(), 0);
        assert!(!dir.path().join("escape").exists());

        std::fs::create_dir_all(root.join("tmp-stale/fs/d")).unwrap();
        let _s = Snapshotter::open(&root).unwrap();
        assert_eq!(std::fs::read_dir(&root).unwrap().count(), 0);
    }

    #[test]
    fn staged_snapshots_are_published_only_on_commit() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("snapshots");
        let s = Snapshotter::open(&root).unwrap();
        let layer = tar_with(&[("a", b"1")]);
        let diff = Digest::of(&layer);

        // Dropped: nothing published, nothing left.
        let staged = s.stage(None, &diff, layer.as_slice()).unwrap();
        assert_eq!(staged.chain_id(), Some(&diff));
        assert_eq!(s.get(&diff), None);
        drop(staged);
        assert_eq!(std::fs::read_dir(&root).unwrap().count(), 0);

        // Committed: published under its chain ID.
        let info = s
            .stage(None, &diff, layer.as_slice())
            .unwrap()
            .commit()
            .unwrap();
        assert_eq!(s.get(&diff), Some(info.clone()));
        assert_eq!(std::fs::read(s.fs_path(&diff).join("a")).unwrap(), b"1");

        // A second copy of a committed chain keeps the first and leaves no temporary.
        let again = s
            .stage(None, &diff, layer.as_slice())
            .unwrap()
            .commit()
            .unwrap();
        assert_eq!(again, info);
        assert_eq!(std::fs::read_dir(&root).unwrap().count(), 1);
    }

    #[test]
    fn concurrent_unpack_of_one_chain() {
        let dir = tempfile::tempdir().unwrap();
        let s = Snapshotter::open(&dir.path().join("snapshots")).unwrap();
        let layer = tar_with(&[("f", &[1u8; 50_000])]);
        let diff = Digest::of(&layer);
        let barrier = Arc::new(std::sync::Barrier::new(2));
        let read = Arc::new(AtomicU64::new(0));
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let (s, layer, diff) = (s.clone(), layer.clone(), diff.clone());
                let (barrier, read) = (barrier.clone(), read.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    s.unpack(
                        None,
                        &diff,
                        Counting {
                            inner: layer.as_slice(),
                            read,
                        },
                    )
                    .unwrap()
                })
            })
            .collect();
        let infos: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        assert_eq!(infos[0], infos[1]);
        // One of them did the work, the other read nothing.
        assert!(read.load(Ordering::SeqCst) <= layer.len() as u64);
        let names: Vec<_> = std::fs::read_dir(dir.path().join("snapshots"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from(diff.hex())]);
    }

    #[test]
    fn busybox_layer_from_docker_save() {
        let fixture = Path::new("/work/shared/images/busybox.tar");
        if !fixture.exists() {
            eprintln!("skipped: no busybox fixture");
            return;
        }
        let mut outer = tar::Archive::new(File::open(fixture).unwrap());
        let mut layer = Vec::new();
        for e in outer.entries().unwrap() {
            let mut e = e.unwrap();
            if e.path_bytes().ends_with(b"layer.tar") {
                e.read_to_end(&mut layer).unwrap();
            }
        }
        assert!(!layer.is_empty());
        let (_, mut r) = crate::layer::decompress(layer.as_slice()).unwrap();
        let mut plain = Vec::new();
        r.read_to_end(&mut plain).unwrap();
        let diff = Digest::of(&plain);
        let dir = tempfile::tempdir().unwrap();
        let s = Snapshotter::open(&dir.path().join("snapshots")).unwrap();
        let info = s.unpack(None, &diff, plain.as_slice()).unwrap();
        assert!(info.size > 100_000);
        assert!(s.fs_path(&diff).join("bin/busybox").is_file());
        s.remove(&diff).unwrap();
        assert!(s.list().unwrap().is_empty());
    }
}
