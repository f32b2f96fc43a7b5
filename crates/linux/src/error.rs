//! The one error type of this crate.

use std::path::PathBuf;

/// A failed kernel call, naming the operation and the path (relative to its root, if any).
#[derive(Debug, thiserror::Error)]
pub enum LinuxError {
    /// A syscall failed.
    #[error("{op} {path}: {errno}")]
    Sys {
        op: &'static str,
        path: PathBuf,
        errno: nix::errno::Errno,
    },
    /// A std I/O call failed.
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// The path would leave its root, or is otherwise not acceptable.
    #[error("path {path} escapes its root or is invalid: {reason}")]
    BadPath { path: PathBuf, reason: &'static str },
    /// The lock is held by another process.
    #[error("{path} is locked by another process")]
    Locked { path: PathBuf },
}

/// Result with [`LinuxError`].
pub type Result<T> = std::result::Result<T, LinuxError>;

impl LinuxError {
    /// The errno behind this error, if it came from a syscall (or an I/O error carrying one).
    pub fn errno(&self) -> Option<nix::errno::Errno> {
        match self {
            LinuxError::Sys { errno, .. } => Some(*errno),
            LinuxError::Io { source, .. } => source.raw_os_error().map(nix::errno::Errno::from_raw),
            _ => None,
        }
    }
}
