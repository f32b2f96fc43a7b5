//! The one error type of this crate.

use std::path::PathBuf;

/// A failed file operation of the log or the monitor, naming the operation and the path.
#[derive(Debug, thiserror::Error)]
pub enum ShimError {
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Result with [`ShimError`].
pub type Result<T> = std::result::Result<T, ShimError>;
