//! The one error type of this crate.

use std::path::PathBuf;

/// Everything that can go wrong building a spec, running a shim or talking to one.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// A container setting that cannot become a valid spec (unknown capability, bad ulimit…).
    #[error("{0}")]
    InvalidSpec(String),
    /// The container's process could not be started. The text keeps the runtime's wording
    /// (`exec: "nope": executable file not found in $PATH`, `permission denied`), since the docker
    /// CLI picks exit codes 127/126 by substring.
    #[error("failed to create task for container: {0}")]
    StartFailed(String),
    /// The container is not running (kill, attach, resize on a stopped container).
    #[error("container {0} is not running")]
    NotRunning(String),
    /// The shim could not be reached or answered nonsense.
    #[error("shim of container {id}: {reason}")]
    Shim { id: String, reason: String },
    /// An I/O error on a path we name.
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// libcontainer failed.
    #[error("runtime: {0}")]
    Libcontainer(String),
    /// A kernel call made through the `linux` crate failed.
    #[error(transparent)]
    Sys(#[from] linux::LinuxError),
}

/// Result with [`RuntimeError`].
pub type Result<T> = std::result::Result<T, RuntimeError>;
