//! The one error type of this crate.

use std::path::PathBuf;

/// Everything that can go wrong with images. The engine maps each variant to an error kind:
/// `InvalidReference`, `InvalidArchive`, `InvalidConfig`, `InvalidChange`, `InvalidFilter` →
/// invalid argument (400); `NotFound` → not found (404); `Conflict` → conflict (409);
/// `Storage` → by its own variant (digest mismatch and bad layer entries are 400); `Io` → internal.
#[derive(Debug, thiserror::Error)]
pub enum ImagesError {
    /// A reference Docker would refuse. Display text must stay "invalid reference format" first.
    #[error("invalid reference format: {0}")]
    InvalidReference(String),
    /// No image by this name, tag, digest or ID. Display: `No such image: <what the user gave, tag added>`.
    #[error("No such image: {0}")]
    NotFound(String),
    /// The operation conflicts with the image's state (tags, containers). The text is Docker's.
    #[error("{0}")]
    Conflict(String),
    /// An archive (docker save, OCI layout, import tar) that is corrupt, truncated or hostile.
    #[error("invalid archive: {0}")]
    InvalidArchive(String),
    /// An image config that is malformed or does not match its layers.
    #[error("invalid image config {id}: {reason}")]
    InvalidConfig { id: String, reason: String },
    /// A `--change` instruction that import does not accept.
    #[error("{0}")]
    InvalidChange(String),
    /// A filter Docker would refuse (unknown key, bad value).
    #[error("{0}")]
    InvalidFilter(String),
    /// Blob store or snapshotter failure.
    #[error(transparent)]
    Storage(#[from] storage::StorageError),
    /// An I/O error on a path we name.
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// Writing an output stream failed (client went away during save).
    #[error("write failed: {0}")]
    Write(std::io::Error),
}

/// Result with [`ImagesError`].
pub type Result<T> = std::result::Result<T, ImagesError>;
