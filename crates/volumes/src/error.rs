//! The one error type of this crate. Texts are moby's local driver's, which users see.

use std::path::PathBuf;

/// Everything that can go wrong in the volume store.
#[derive(Debug, thiserror::Error)]
pub enum VolumesError {
    /// No volume by this name.
    #[error("no such volume: {0}")]
    NotFound(String),
    /// A name the local driver refuses (moby's text).
    #[error("{0}")]
    InvalidName(String),
    /// A driver option the local driver refuses (moby's text).
    #[error("{0}")]
    InvalidOption(String),
    /// A driver other than `local`.
    #[error("error looking up volume plugin {0}: plugin \"{0}\" not found")]
    UnknownDriver(String),
    /// The volume is still mounted for a container (the engine should have refused first).
    #[error("volume has active mounts")]
    ActiveMounts,
    /// Mounting the volume's `type`/`device`/`o` failed (moby's wording, Go's errno text).
    #[error("failed to mount local volume: mount {device}:{target}: {reason}")]
    Mount {
        device: String,
        target: PathBuf,
        reason: String,
    },
    /// Unmounting (or another kernel call) failed.
    #[error(transparent)]
    Sys(#[from] linux::LinuxError),
    /// An I/O error on a path the store owns.
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// A `volume.json` that cannot be written (or read back).
    #[error("volume record {path}: {source}")]
    Record {
        path: PathBuf,
        source: serde_json::Error,
    },
}

impl VolumesError {
    /// A failed mount of `device` on `target`, with the errno worded as Go words it
    /// (`no such file or directory`).
    pub(crate) fn mount(device: &str, target: &std::path::Path, e: linux::LinuxError) -> Self {
        let reason = match e.errno() {
            Some(errno) => errno.desc().to_lowercase(),
            None => e.to_string(),
        };
        Self::Mount {
            device: device.to_string(),
            target: target.to_path_buf(),
            reason,
        }
    }
}

/// Result with [`VolumesError`].
pub type Result<T> = std::result::Result<T, VolumesError>;

pub(crate) fn io_err(
    op: &'static str,
    path: &std::path::Path,
) -> impl FnOnce(std::io::Error) -> VolumesError {
    let path = path.to_path_buf();
    move |source| VolumesError::Io { op, path, source }
}
