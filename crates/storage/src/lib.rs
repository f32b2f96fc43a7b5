//! Content-addressed blobs and overlay snapshots: the storage half of an image.
//!
//! This crate owns `<data-root>/content` (verified blobs and the ingest area) and
//! `<data-root>/snapshots` (one unpacked directory per layer chain ID, in overlayfs form).
//! It knows nothing of images, references, containers, HTTP or the CLI: callers hand it
//! digests and readers, and it hands back paths, sizes and verified digests.
//!
//! (`content` and `snapshots` from docs/architecture.md are merged here, as that page allows
//! on day one; split them when a second consumer appears.)

pub mod changes;
pub mod content;
pub mod digest;
mod error;
pub mod layer;
mod locks;
pub mod snapshots;
pub mod tree_tar;
pub mod upper_tar;

pub use content::{ContentStore, Ingest, IngestWriter};
pub use digest::Digest;
pub use error::{Result, StorageError};
pub use snapshots::{SnapshotInfo, Snapshotter, Staged};
