//! The content store: sha256 blobs under `<root>/blobs/sha256/<hex>` (verified, read-only, 0444)
//! and partial writes under `<root>/ingest/`.
//!
//! Lifecycle of a blob: [`ContentStore::ingest`] with the digest the caller expects (if known)
//! takes a per-digest lock, so a second writer of the same digest waits and then sees
//! [`Ingest::Exists`]: the work is done once. The writer streams into `ingest/<random>`,
//! hashing as it goes; [`IngestWriter::commit`] fsyncs, checks size and digest, renames into
//! `blobs/`, fsyncs the directory and makes the blob read-only. Dropping a writer without
//! committing removes its ingest file. `blobs/` only ever holds verified content.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::{Digest, Result};

/// A content-addressed blob store rooted at a directory (normally `<data-root>/content`).
#[derive(Debug, Clone)]
pub struct ContentStore {
    root: PathBuf,
}

/// The answer to [`ContentStore::ingest`].
pub enum Ingest {
    /// The blob is already committed: nothing to write.
    Exists,
    /// Write the blob through this, then [`IngestWriter::commit`].
    Writer(IngestWriter),
}

/// A partial blob being written; hashes as it goes. Holds the per-digest lock, if any.
pub struct IngestWriter {
    _private: (),
}

impl ContentStore {
    /// Opens (creating if needed) a store at `root`, and removes stale ingest files.
    pub fn open(root: &Path) -> Result<Self> {
        let _ = root;
        unimplemented!()
    }

    /// The directory this store lives in.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Starts writing a blob. With `expected`, takes that digest's lock (waiting for another
    /// writer of it) and returns [`Ingest::Exists`] if it is already committed.
    pub fn ingest(&self, expected: Option<&Digest>) -> Result<Ingest> {
        let _ = expected;
        unimplemented!()
    }

    /// Writes a whole small blob (configs, manifests) and commits it; verifies `expected` if given.
    pub fn write_blob(&self, data: &[u8], expected: Option<&Digest>) -> Result<Digest> {
        let _ = (data, expected);
        unimplemented!()
    }

    /// Whether a committed blob exists.
    pub fn exists(&self, digest: &Digest) -> bool {
        let _ = digest;
        unimplemented!()
    }

    /// Path of a committed blob (it may not exist).
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        let _ = digest;
        unimplemented!()
    }

    /// Opens a committed blob for reading.
    pub fn open_blob(&self, digest: &Digest) -> Result<File> {
        let _ = digest;
        unimplemented!()
    }

    /// Reads a whole committed blob, refusing blobs larger than `max` bytes.
    pub fn read_blob(&self, digest: &Digest, max: u64) -> Result<Vec<u8>> {
        let _ = (digest, max);
        unimplemented!()
    }

    /// Size in bytes of a committed blob.
    pub fn blob_size(&self, digest: &Digest) -> Result<u64> {
        let _ = digest;
        unimplemented!()
    }

    /// Deletes a committed blob (no error if it is already gone).
    pub fn delete(&self, digest: &Digest) -> Result<()> {
        let _ = digest;
        unimplemented!()
    }

    /// Every committed blob's digest.
    pub fn list(&self) -> Result<Vec<Digest>> {
        unimplemented!()
    }
}

impl IngestWriter {
    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        unimplemented!()
    }

    /// fsync, verify (`expected` digest and `expected_size` when given, else the lock's digest),
    /// rename into `blobs/`, fsync the directory, chmod 0444. If the blob appeared meanwhile the
    /// ingest is dropped and the digest returned. Returns the digest of what was written.
    pub fn commit(self, expected: Option<&Digest>, expected_size: Option<u64>) -> Result<Digest> {
        let _ = (expected, expected_size);
        unimplemented!()
    }
}

impl Write for IngestWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let _ = buf;
        unimplemented!()
    }
    fn flush(&mut self) -> std::io::Result<()> {
        unimplemented!()
    }
}
