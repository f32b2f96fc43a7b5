//! The overlay snapshotter: one read-only directory per layer chain ID.
//!
//! Layout under `<root>` (normally `<data-root>/snapshots`):
//! `<chain-hex>/fs/` (the layer's own files, overlayfs whiteouts), `<chain-hex>/meta.json`
//! ([`SnapshotInfo`]), and `tmp-<random>/` while a layer is being unpacked. A layer is unpacked
//! once per chain ID: concurrent callers of the same chain wait for the first, and the result
//! is published by renaming `tmp-*` into place, so a crash never leaves a half-applied snapshot
//! under its final name. Stale `tmp-*` are removed on open.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::{Digest, Result};

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
}

impl Snapshotter {
    /// Opens (creating if needed) the snapshot directory and removes stale temporaries.
    pub fn open(root: &Path) -> Result<Self> {
        let _ = root;
        unimplemented!()
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
        let _ = chain_id;
        unimplemented!()
    }

    /// Unpacks the uncompressed layer tar `layer` (whose digest the caller has verified to be
    /// `diff_id`) on top of `parent`, unless that chain is already committed. Returns its info.
    pub fn unpack(&self, parent: Option<&Digest>, diff_id: &Digest, layer: impl Read) -> Result<SnapshotInfo> {
        let _ = (parent, diff_id, layer);
        unimplemented!()
    }

    /// The directory holding a snapshot's files (its overlay lowerdir).
    pub fn fs_path(&self, chain_id: &Digest) -> PathBuf {
        let _ = chain_id;
        unimplemented!()
    }

    /// Removes a snapshot (no error if it is gone).
    pub fn remove(&self, chain_id: &Digest) -> Result<()> {
        let _ = chain_id;
        unimplemented!()
    }

    /// Every committed snapshot.
    pub fn list(&self) -> Result<Vec<SnapshotInfo>> {
        unimplemented!()
    }
}
