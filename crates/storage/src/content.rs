//! The content store: sha256 blobs under `<root>/blobs/sha256/<hex>` (verified, read-only, 0444)
//! and partial writes under `<root>/ingest/`.
//!
//! Lifecycle of a blob: [`ContentStore::ingest`] with the digest the caller expects (if known)
//! takes a per-digest lock, so a second writer of the same digest waits and then sees
//! [`Ingest::Exists`]: the work is done once. The writer streams into `ingest/<random>`,
//! hashing as it goes; [`IngestWriter::commit`] fsyncs, checks size and digest, renames into
//! `blobs/`, fsyncs the directory and makes the blob read-only. Dropping a writer without
//! committing removes its ingest file. `blobs/` only ever holds verified content.
//!
//! The per-digest lock is two locks: an in-process one (threads of this process sharing the
//! store) and an `flock` on `ingest/<hex>.lock` (other processes on the same root).

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use linux::lock::LockFile;

use crate::digest::Hasher;
use crate::locks::{KeyGuard, KeyLocks, random_hex};
use crate::{Digest, Result, StorageError};

/// A content-addressed blob store rooted at a directory (normally `<data-root>/content`).
#[derive(Debug, Clone)]
pub struct ContentStore {
    root: PathBuf,
    locks: Arc<KeyLocks>,
}

/// The answer to [`ContentStore::ingest`].
pub enum Ingest {
    /// The blob is already committed: nothing to write.
    Exists,
    /// Write the blob through this, then [`IngestWriter::commit`].
    Writer(IngestWriter),
}

/// A held per-digest lock: the cross-process lock file is deleted (while still held) before
/// both locks are released.
struct DigestLock {
    file: Option<LockFile>,
    _guard: KeyGuard,
}

impl Drop for DigestLock {
    fn drop(&mut self) {
        if let Some(f) = self.file.take()
            && let Err(e) = f.remove()
        {
            tracing::warn!("removing ingest lock: {e}");
        }
    }
}

/// A partial blob being written; hashes as it goes. Holds the per-digest lock, if any.
pub struct IngestWriter {
    file: File,
    /// The ingest file; `None` once committed (nothing to clean up).
    path: Option<PathBuf>,
    hasher: Box<Hasher>,
    blobs: PathBuf,
    expected: Option<Digest>,
    // Dropped last: the ingest file is gone before another writer of the digest gets in.
    _lock: Option<DigestLock>,
}

impl ContentStore {
    /// Opens (creating if needed) a store at `root`, and removes stale ingest files.
    pub fn open(root: &Path) -> Result<Self> {
        let blobs = root.join("blobs").join("sha256");
        let ingest = root.join("ingest");
        for d in [&blobs, &ingest] {
            std::fs::create_dir_all(d).map_err(StorageError::io("create directory", d))?;
        }
        let entries = std::fs::read_dir(&ingest).map_err(StorageError::io("read dir", &ingest))?;
        for entry in entries {
            let entry = entry.map_err(StorageError::io("read dir", &ingest))?;
            let path = entry.path();
            let is_lock = path.extension().is_some_and(|e| e == "lock");
            let res = if is_lock {
                // Only remove lock files nobody holds.
                match LockFile::acquire(&path) {
                    Ok(l) => l.remove().map_err(StorageError::from),
                    Err(linux::LinuxError::Locked { .. }) => Ok(()),
                    Err(e) => Err(e.into()),
                }
            } else if entry.file_type().is_ok_and(|t| t.is_dir()) {
                std::fs::remove_dir_all(&path).map_err(StorageError::io("remove", &path))
            } else {
                std::fs::remove_file(&path).map_err(StorageError::io("remove", &path))
            };
            match res {
                Ok(()) => tracing::debug!(path = %path.display(), "removed stale ingest"),
                Err(e) => tracing::warn!("removing stale ingest: {e}"),
            }
        }
        Ok(Self {
            root: root.to_path_buf(),
            locks: Arc::default(),
        })
    }

    /// The directory this store lives in.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn blobs_dir(&self) -> PathBuf {
        self.root.join("blobs").join("sha256")
    }

    fn ingest_dir(&self) -> PathBuf {
        self.root.join("ingest")
    }

    /// Starts writing a blob. With `expected`, takes that digest's lock (waiting for another
    /// writer of it) and returns [`Ingest::Exists`] if it is already committed.
    pub fn ingest(&self, expected: Option<&Digest>) -> Result<Ingest> {
        let lock = match expected {
            None => None,
            Some(d) => {
                let guard = self.locks.lock(d.hex());
                let lock_path = self.ingest_dir().join(format!("{}.lock", d.hex()));
                let file = LockFile::acquire_wait(&lock_path)?;
                let lock = DigestLock {
                    file: Some(file),
                    _guard: guard,
                };
                if self.exists(d) {
                    return Ok(Ingest::Exists);
                }
                Some(lock)
            }
        };
        let path = self.ingest_dir().join(random_hex());
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(StorageError::io("create ingest file", &path))?;
        Ok(Ingest::Writer(IngestWriter {
            file,
            path: Some(path),
            hasher: Box::default(),
            blobs: self.blobs_dir(),
            expected: expected.cloned(),
            _lock: lock,
        }))
    }

    /// Writes a whole small blob (configs, manifests) and commits it; verifies `expected` if given.
    pub fn write_blob(&self, data: &[u8], expected: Option<&Digest>) -> Result<Digest> {
        match self.ingest(expected)? {
            Ingest::Exists => Ok(expected.cloned().unwrap_or_else(|| Digest::of(data))),
            Ingest::Writer(mut w) => {
                w.write_all(data)
                    .map_err(StorageError::io("write ingest file", self.ingest_dir()))?;
                w.commit(expected, Some(data.len() as u64))
            }
        }
    }

    /// Whether a committed blob exists.
    pub fn exists(&self, digest: &Digest) -> bool {
        std::fs::symlink_metadata(self.blob_path(digest)).is_ok_and(|m| m.is_file())
    }

    /// Path of a committed blob (it may not exist).
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.blobs_dir().join(digest.hex())
    }

    /// Opens a committed blob for reading.
    pub fn open_blob(&self, digest: &Digest) -> Result<File> {
        let path = self.blob_path(digest);
        File::open(&path).map_err(|e| match e.kind() {
            ErrorKind::NotFound => StorageError::BlobNotFound(digest.clone()),
            _ => StorageError::Io {
                op: "open blob",
                path,
                source: e,
            },
        })
    }

    /// Reads a whole committed blob, refusing blobs larger than `max` bytes.
    pub fn read_blob(&self, digest: &Digest, max: u64) -> Result<Vec<u8>> {
        let path = self.blob_path(digest);
        let file = self.open_blob(digest)?;
        let size = file
            .metadata()
            .map_err(StorageError::io("stat blob", &path))?
            .len();
        if size > max {
            return Err(StorageError::TooLarge {
                digest: digest.clone(),
                size,
                max,
            });
        }
        let mut buf = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
        file.take(max.saturating_add(1))
            .read_to_end(&mut buf)
            .map_err(StorageError::io("read blob", &path))?;
        if buf.len() as u64 > max {
            return Err(StorageError::TooLarge {
                digest: digest.clone(),
                size: buf.len() as u64,
                max,
            });
        }
        Ok(buf)
    }

    /// Size in bytes of a committed blob.
    pub fn blob_size(&self, digest: &Digest) -> Result<u64> {
        let path = self.blob_path(digest);
        match std::fs::metadata(&path) {
            Ok(m) => Ok(m.len()),
            Err(e) if e.kind() == ErrorKind::NotFound => {
                Err(StorageError::BlobNotFound(digest.clone()))
            }
            Err(e) => Err(StorageError::Io {
                op: "stat blob",
                path,
                source: e,
            }),
        }
    }

    /// Deletes a committed blob (no error if it is already gone).
    pub fn delete(&self, digest: &Digest) -> Result<()> {
        let path = self.blob_path(digest);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StorageError::Io {
                op: "delete blob",
                path,
                source: e,
            }),
        }
    }

    /// Every committed blob's digest.
    pub fn list(&self) -> Result<Vec<Digest>> {
        let dir = self.blobs_dir();
        let mut out = Vec::new();
        for entry in std::fs::read_dir(&dir).map_err(StorageError::io("read dir", &dir))? {
            let entry = entry.map_err(StorageError::io("read dir", &dir))?;
            if let Some(name) = entry.file_name().to_str()
                && let Ok(d) = Digest::from_hex(name)
            {
                out.push(d);
            }
        }
        out.sort();
        Ok(out)
    }
}

fn fsync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(StorageError::io("fsync directory", dir))
}

impl IngestWriter {
    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.hasher.len()
    }

    /// fsync, verify (`expected` digest and `expected_size` when given, else the lock's digest),
    /// rename into `blobs/`, fsync the directory, chmod 0444. If the blob appeared meanwhile the
    /// ingest is dropped and the digest returned. Returns the digest of what was written.
    pub fn commit(self, expected: Option<&Digest>, expected_size: Option<u64>) -> Result<Digest> {
        self.commit_new(expected, expected_size).map(|(d, _)| d)
    }

    /// [`IngestWriter::commit`], also saying whether this writer made the blob (`false`: it
    /// was there already). A caller that fails later removes only a blob it made.
    pub fn commit_new(
        mut self,
        expected: Option<&Digest>,
        expected_size: Option<u64>,
    ) -> Result<(Digest, bool)> {
        let Some(path) = self.path.clone() else {
            return Err(StorageError::InvalidArchive(
                "ingest already committed".into(),
            ));
        };
        self.file
            .sync_all()
            .map_err(StorageError::io("fsync ingest file", &path))?;
        let size = self.hasher.len();
        let actual = std::mem::take(&mut *self.hasher).finish();
        let expected = expected.or(self.expected.as_ref());
        if let Some(want) = expected_size
            && want != size
        {
            let digest = expected.cloned().unwrap_or_else(|| actual.clone());
            return Err(StorageError::SizeMismatch {
                digest,
                expected: want,
                actual: size,
            });
        }
        if let Some(want) = expected
            && *want != actual
        {
            return Err(StorageError::DigestMismatch {
                expected: want.clone(),
                actual,
            });
        }
        let target = self.blobs.join(actual.hex());
        if std::fs::symlink_metadata(&target).is_ok() {
            // Drop removes the ingest file.
            return Ok((actual, false));
        }
        self.file
            .set_permissions(std::fs::Permissions::from_mode(0o444))
            .map_err(StorageError::io("chmod ingest file", &path))?;
        std::fs::rename(&path, &target).map_err(StorageError::io("commit blob", &target))?;
        self.path = None;
        fsync_dir(&self.blobs)?;
        Ok((actual, true))
    }
}

impl Write for IngestWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

impl Drop for IngestWriter {
    fn drop(&mut self) {
        if let Some(path) = self.path.take()
            && let Err(e) = std::fs::remove_file(&path)
            && e.kind() != ErrorKind::NotFound
        {
            tracing::warn!(path = %path.display(), "removing ingest file: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, ContentStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = ContentStore::open(&dir.path().join("content")).unwrap();
        (dir, store)
    }

    fn count(dir: &Path) -> usize {
        std::fs::read_dir(dir).unwrap().count()
    }

    #[test]
    fn write_commit_read_back() {
        let (_d, s) = store();
        let data = b"hello world".repeat(1000);
        let want = Digest::of(&data);
        let Ingest::Writer(mut w) = s.ingest(Some(&want)).unwrap() else {
            panic!("exists")
        };
        w.write_all(&data[..5000]).unwrap();
        w.write_all(&data[5000..]).unwrap();
        assert_eq!(w.written(), data.len() as u64);
        assert_eq!(w.commit(None, Some(data.len() as u64)).unwrap(), want);
        assert!(s.exists(&want));
        assert_eq!(s.read_blob(&want, 1 << 20).unwrap(), data);
        assert_eq!(s.blob_size(&want).unwrap(), data.len() as u64);
        assert!(matches!(
            s.read_blob(&want, 10),
            Err(StorageError::TooLarge { .. })
        ));
        assert_eq!(s.list().unwrap(), vec![want.clone()]);
        let mode = std::fs::metadata(s.blob_path(&want))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o444);
        assert!(matches!(s.ingest(Some(&want)).unwrap(), Ingest::Exists));
        assert_eq!(count(&s.root().join("ingest")), 0);
        // write_blob on an existing blob, and without an expected digest.
        assert_eq!(s.write_blob(&data, Some(&want)).unwrap(), want);
        assert_eq!(s.write_blob(b"x", None).unwrap(), Digest::of(b"x"));
        s.delete(&want).unwrap();
        s.delete(&want).unwrap();
        assert!(!s.exists(&want));
        assert!(matches!(
            s.open_blob(&want),
            Err(StorageError::BlobNotFound(_))
        ));
    }

    #[test]
    fn wrong_digest_or_size_leaves_nothing() {
        let (_d, s) = store();
        let wrong = Digest::of(b"something else");
        let err = s.write_blob(b"data", Some(&wrong)).unwrap_err();
        assert!(matches!(err, StorageError::DigestMismatch { .. }), "{err}");
        let Ingest::Writer(mut w) = s.ingest(None).unwrap() else {
            panic!("exists")
        };
        w.write_all(b"data").unwrap();
        let err = w.commit(None, Some(3)).unwrap_err();
        assert!(matches!(err, StorageError::SizeMismatch { .. }), "{err}");
        assert_eq!(count(&s.root().join("blobs/sha256")), 0);
        assert_eq!(count(&s.root().join("ingest")), 0);
    }

    #[test]
    fn drop_without_commit_leaves_nothing() {
        let (_d, s) = store();
        let d = Digest::of(b"abc");
        let Ingest::Writer(mut w) = s.ingest(Some(&d)).unwrap() else {
            panic!("exists")
        };
        w.write_all(b"ab").unwrap();
        assert_eq!(count(&s.root().join("ingest")), 2); // the data and the lock file
        drop(w);
        assert_eq!(count(&s.root().join("ingest")), 0);
        assert_eq!(count(&s.root().join("blobs/sha256")), 0);
        // The lock was released: a new writer gets in.
        assert!(matches!(s.ingest(Some(&d)).unwrap(), Ingest::Writer(_)));
    }

    #[test]
    fn open_removes_stale_ingest() {
        let (_d, s) = store();
        std::fs::write(s.root().join("ingest/stale"), b"x").unwrap();
        std::fs::write(s.root().join("ingest/abc.lock"), b"1").unwrap();
        let s = ContentStore::open(s.root()).unwrap();
        assert_eq!(count(&s.root().join("ingest")), 0);
    }

    #[test]
    fn concurrent_ingest_of_one_digest_writes_once() {
        let (_d, s) = store();
        let data = vec![7u8; 100_000];
        let d = Digest::of(&data);
        let barrier = Arc::new(std::sync::Barrier::new(2));
        let writes = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let (s, d, data) = (s.clone(), d.clone(), data.clone());
                let (barrier, writes) = (barrier.clone(), writes.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    match s.ingest(Some(&d)).unwrap() {
                        Ingest::Exists => false,
                        Ingest::Writer(mut w) => {
                            writes.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                            // Give the other thread time to queue up on the lock.
                            std::thread::sleep(std::time::Duration::from_millis(50));
                            w.write_all(&data).unwrap();
                            assert_eq!(w.commit(None, None).unwrap(), d);
                            true
                        }
                    }
                })
            })
            .collect();
        let results: Vec<bool> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        assert_eq!(results.iter().filter(|w| **w).count(), 1);
        assert_eq!(writes.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert_eq!(s.read_blob(&d, 1 << 20).unwrap(), data);
        assert_eq!(count(&s.root().join("ingest")), 0);
    }

    #[test]
    fn store_is_send_sync() {
        fn check<T: Send + Sync>() {}
        check::<ContentStore>();
        check::<IngestWriter>();
    }
}
