//! The one error type of this crate.

use std::path::PathBuf;

use crate::Digest;

/// Everything that can go wrong in the content store, the layer applier and the snapshotter.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// A digest string that is not `sha256:<64 lowercase hex>`.
    #[error("invalid digest {0:?}")]
    InvalidDigest(String),
    /// The bytes written did not hash to the digest the caller expected.
    #[error("unexpected commit digest {actual}, expected {expected}")]
    DigestMismatch { expected: Digest, actual: Digest },
    /// The bytes written were not as long as the caller expected.
    #[error("unexpected commit size {actual} for {digest}, expected {expected}")]
    SizeMismatch {
        digest: Digest,
        expected: u64,
        actual: u64,
    },
    /// No blob with this digest.
    #[error("blob {0} not found")]
    BlobNotFound(Digest),
    /// No snapshot with this chain ID.
    #[error("snapshot {0} not found")]
    SnapshotNotFound(Digest),
    /// A layer tar entry that would escape the layer or is otherwise hostile or malformed.
    #[error("invalid layer entry {path:?}: {reason}")]
    InvalidLayerEntry { path: String, reason: String },
    /// A tar entry `docker cp` refuses to extract (it would leave its destination, or replace a
    /// directory with a non-directory or the reverse); the text is moby's.
    #[error("{0}")]
    ArchiveEntry(String),
    /// The layer stream is not a valid (possibly compressed) tar archive.
    #[error("invalid layer archive: {0}")]
    InvalidArchive(String),
    /// A blob larger than the caller accepts.
    #[error("blob {digest} is {size} bytes, more than the {max} allowed")]
    TooLarge { digest: Digest, size: u64, max: u64 },
    /// An I/O error on a path we name.
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// A kernel call made through the `linux` crate failed.
    #[error(transparent)]
    Sys(#[from] linux::LinuxError),
}

/// Result with [`StorageError`].
pub type Result<T> = std::result::Result<T, StorageError>;

impl StorageError {
    pub(crate) fn io(
        op: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| StorageError::Io { op, path, source }
    }
}
