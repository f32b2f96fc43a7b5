//! The one error type of this crate, and the classification every caller relies on.
//!
//! Subsystem errors are classified here, once, into an [`ErrorKind`]; the daemon maps a kind to an
//! HTTP status in one place and shows the error's `Display` text to the user.

use std::path::PathBuf;

use images::ImagesError;
use storage::StorageError;

/// What kind of failure an error is, independent of any transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The named object does not exist.
    NotFound,
    /// The request conflicts with the object's current state.
    Conflict,
    /// The request itself is malformed or not acceptable.
    InvalidArgument,
    /// Credentials are missing or wrong.
    Unauthorized,
    /// The caller may not do this.
    Forbidden,
    /// The engine cannot serve the request right now.
    Unavailable,
    /// The operation exists in the API but not (yet) in berth.
    NotImplemented,
    /// Anything else: a bug or an environment failure.
    Internal,
}

/// Everything that can go wrong in the engine.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// An image operation failed.
    #[error(transparent)]
    Images(#[from] ImagesError),
    /// A build failed (the Dockerfile, a step, or the engine under a step).
    #[error(transparent)]
    Build(#[from] builder::BuildError),
    /// A registry operation (pull) failed.
    #[error(transparent)]
    Registry(#[from] registry::RegistryError),
    /// Another process holds the data root lock.
    #[error("data root {path} is in use by another berthd")]
    DataRootInUse { path: PathBuf },
    /// Taking the data root lock failed for another reason than contention.
    #[error("lock data root: {0}")]
    Lock(linux::LinuxError),
    /// An I/O error on a path the engine owns.
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// The filters parameter is not valid JSON of the expected shape.
    #[error("invalid filters: {reason}")]
    MalformedFilters { reason: String },
    /// A filter key the endpoint does not support.
    #[error("invalid filter '{key}'")]
    UnknownFilter { key: String },
    /// A filter value the endpoint does not accept.
    #[error("invalid filter '{key}={value}'")]
    InvalidFilterValue { key: String, value: String },
    /// A reference given as a separate parameter (tag target, import repo) is unusable.
    #[error("invalid reference format: {reason}")]
    InvalidReference { reason: String },
    /// No container by this name or ID.
    #[error("No such container: {0}")]
    NoSuchContainer(String),
    /// No exec instance by this ID.
    #[error("No such exec instance: {0}")]
    NoSuchExec(String),
    /// `docker cp`: nothing at this path inside the container (moby's words).
    #[error("Could not find the file {path} in container {container}")]
    PathNotFound { path: String, container: String },
    /// `push` of a name that has no local image (moby's words; the familiar name).
    #[error("An image does not exist locally with the tag: {0}")]
    NoSuchImageTag(String),
    /// No network by this name or ID.
    #[error("network {0} not found")]
    NoSuchNetwork(String),
    /// No volume by this name.
    #[error("get {0}: no such volume")]
    NoSuchVolume(String),
    /// An operation berth does not provide yet.
    #[error("{what} is not supported yet")]
    NotSupported { what: &'static str },
    /// A blocking task died (panicked or was cancelled).
    #[error("{what} failed unexpectedly")]
    TaskFailed { what: &'static str },
    /// A container name is taken.
    #[error(
        "Conflict. The container name \"{name}\" is already in use by container \"{id}\". You have to remove (or rename) that container to be able to reuse that name."
    )]
    NameInUse { name: String, id: String },
    /// A container name with characters Docker refuses.
    #[error("Invalid container name ({0}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")]
    InvalidName(String),
    /// A request that cannot be served as given (no command, bad signal, bad option…).
    #[error("{0}")]
    InvalidRequest(String),
    /// The request conflicts with the container's state (running, not running, in removal…).
    #[error("{0}")]
    Conflict(String),
    /// `unpause` of a container that is not paused (moby answers 500).
    #[error("Container {0} is not paused")]
    NotPaused(String),
    /// `top`: the host's `ps` failed.
    #[error("{0}")]
    TopFailed(String),
    /// `update`: the kernel refused a new limit (`Cannot update container <id>: …`).
    #[error("{0}")]
    UpdateFailed(String),
    /// The container's process could not be started (keeps the runtime's wording).
    #[error("{0}")]
    StartFailed(String),
    /// The runtime (shim, spec builder) failed.
    #[error(transparent)]
    Runtime(#[from] runtime::RuntimeError),
    /// A kernel call (mount, openat2) failed.
    #[error(transparent)]
    Sys(#[from] linux::LinuxError),
    /// A volume operation failed (moby's `<op> <name>: <error>`; a missing volume converts to
    /// [`EngineError::NoSuchVolume`] instead).
    #[error("{op} {name}: {source}")]
    Volume {
        op: &'static str,
        name: String,
        source: volumes::VolumesError,
    },
    /// A volume store error without an operation to name (from `?`).
    #[error(transparent)]
    VolumeStore(volumes::VolumesError),
    /// `volume rm` of a volume some container uses (moby's text, 409).
    #[error("remove {name}: volume is in use - [{}]", ids.join(", "))]
    VolumeInUse { name: String, ids: Vec<String> },
    /// A networking failure (netlink, nftables, a host port taken, an address pool).
    #[error(transparent)]
    Network(#[from] network::NetworkError),
    /// An unknown network or IPAM driver (moby: `plugin "x" not found`, 404).
    #[error("{0}")]
    NoSuchPlugin(String),
    /// The request is refused (moby's 403s: pre-defined networks, active endpoints, an
    /// endpoint that exists already, an overlapping pool).
    #[error("{0}")]
    Forbidden(String),
}

impl EngineError {
    /// Wraps a volume store error for operation `op` on volume `name`, as moby words it.
    pub(crate) fn volume(op: &'static str, name: &str, source: volumes::VolumesError) -> Self {
        match source {
            volumes::VolumesError::NotFound(n) => Self::NoSuchVolume(n),
            source => Self::Volume {
                op,
                name: name.to_string(),
                source,
            },
        }
    }
}

impl From<volumes::VolumesError> for EngineError {
    fn from(e: volumes::VolumesError) -> Self {
        match e {
            volumes::VolumesError::NotFound(n) => Self::NoSuchVolume(n),
            other => Self::VolumeStore(other),
        }
    }
}

impl EngineError {
    /// The kind of this error, which decides the HTTP status at the edge.
    /// The exit code a failed build step gave (the stream's `errorDetail.code`).
    pub fn exit_code(&self) -> Option<i64> {
        match self {
            Self::Build(builder::BuildError::RunFailed { code, .. }) => Some(*code),
            _ => None,
        }
    }

    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Images(e) => images_kind(e),
            Self::Registry(e) => registry_kind(e),
            Self::Build(e) if e.is_client_error() => ErrorKind::InvalidArgument,
            Self::Build(_) => ErrorKind::Internal,
            Self::DataRootInUse { .. } => ErrorKind::Unavailable,
            Self::Io { .. }
            | Self::Lock(_)
            | Self::TaskFailed { .. }
            | Self::NotPaused(_)
            | Self::TopFailed(_)
            | Self::UpdateFailed(_) => ErrorKind::Internal,
            Self::MalformedFilters { .. }
            | Self::UnknownFilter { .. }
            | Self::InvalidFilterValue { .. }
            | Self::InvalidReference { .. } => ErrorKind::InvalidArgument,
            Self::NoSuchContainer(_)
            | Self::NoSuchExec(_)
            | Self::PathNotFound { .. }
            | Self::NoSuchNetwork(_)
            | Self::NoSuchImageTag(_)
            | Self::NoSuchPlugin(_)
            | Self::NoSuchVolume(_) => ErrorKind::NotFound,
            Self::NotSupported { .. } => ErrorKind::NotImplemented,
            Self::NameInUse { .. } | Self::Conflict(_) => ErrorKind::Conflict,
            Self::InvalidName(_) | Self::InvalidRequest(_) | Self::StartFailed(_) => {
                ErrorKind::InvalidArgument
            }
            Self::Runtime(e) => match e {
                runtime::RuntimeError::InvalidSpec(_) | runtime::RuntimeError::StartFailed(_) => {
                    ErrorKind::InvalidArgument
                }
                runtime::RuntimeError::NotRunning(_) => ErrorKind::Conflict,
                _ => ErrorKind::Internal,
            },
            Self::Sys(_) => ErrorKind::Internal,
            Self::Volume { source, .. } | Self::VolumeStore(source) => volumes_kind(source),
            Self::VolumeInUse { .. } => ErrorKind::Conflict,
            Self::Forbidden(_) => ErrorKind::Forbidden,
            Self::Network(e) => match e {
                network::NetworkError::Invalid(_) => ErrorKind::InvalidArgument,
                network::NetworkError::Exhausted(_) => ErrorKind::Forbidden,
                _ => ErrorKind::Internal,
            },
        }
    }
}

fn images_kind(e: &ImagesError) -> ErrorKind {
    match e {
        ImagesError::InvalidReference(_)
        | ImagesError::InvalidArchive(_)
        | ImagesError::InvalidConfig { .. }
        | ImagesError::InvalidChange(_)
        | ImagesError::InvalidFilter(_) => ErrorKind::InvalidArgument,
        ImagesError::NotFound(_) => ErrorKind::NotFound,
        ImagesError::Conflict(_) => ErrorKind::Conflict,
        ImagesError::Storage(s) => storage_kind(s),
        ImagesError::Io { .. } | ImagesError::Write(_) => ErrorKind::Internal,
    }
}

fn registry_kind(e: &registry::RegistryError) -> ErrorKind {
    use registry::RegistryError as R;
    match e {
        R::ManifestUnknown { .. } | R::NoMatchingPlatform { .. } => ErrorKind::NotFound,
        R::Denied { .. } => ErrorKind::Forbidden,
        R::PushDenied(_) | R::LoginFailed(_) => ErrorKind::Unauthorized,
        R::InvalidArgument(_) => ErrorKind::InvalidArgument,
        R::Storage(s) => storage_kind(s),
        _ => ErrorKind::Internal,
    }
}

fn volumes_kind(e: &volumes::VolumesError) -> ErrorKind {
    use volumes::VolumesError as V;
    match e {
        V::NotFound(_) | V::UnknownDriver(_) => ErrorKind::NotFound,
        V::InvalidName(_) | V::InvalidOption(_) => ErrorKind::InvalidArgument,
        V::ActiveMounts => ErrorKind::Conflict,
        V::Mount { .. } | V::Sys(_) | V::Io { .. } | V::Record { .. } => ErrorKind::Internal,
    }
}

fn storage_kind(e: &StorageError) -> ErrorKind {
    match e {
        StorageError::DigestMismatch { .. }
        | StorageError::SizeMismatch { .. }
        | StorageError::InvalidLayerEntry { .. }
        | StorageError::ArchiveEntry(_)
        | StorageError::InvalidArchive(_)
        | StorageError::InvalidDigest(_) => ErrorKind::InvalidArgument,
        _ => ErrorKind::Internal,
    }
}

/// Result with [`EngineError`].
pub type Result<T> = std::result::Result<T, EngineError>;

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(c: char) -> storage::Digest {
        storage::Digest::from_hex(&c.to_string().repeat(64)).unwrap()
    }

    #[test]
    fn images_errors_are_classified() {
        let cases: Vec<(ImagesError, ErrorKind)> = vec![
            (
                ImagesError::InvalidReference("Bad".into()),
                ErrorKind::InvalidArgument,
            ),
            (
                ImagesError::InvalidArchive("truncated".into()),
                ErrorKind::InvalidArgument,
            ),
            (
                ImagesError::InvalidConfig {
                    id: "x".into(),
                    reason: "y".into(),
                },
                ErrorKind::InvalidArgument,
            ),
            (
                ImagesError::InvalidChange("RUN x".into()),
                ErrorKind::InvalidArgument,
            ),
            (
                ImagesError::InvalidFilter("invalid filter 'x'".into()),
                ErrorKind::InvalidArgument,
            ),
            (
                ImagesError::NotFound("busybox:latest".into()),
                ErrorKind::NotFound,
            ),
            (ImagesError::Conflict("in use".into()), ErrorKind::Conflict),
            (
                ImagesError::Storage(StorageError::DigestMismatch {
                    expected: digest('a'),
                    actual: digest('b'),
                }),
                ErrorKind::InvalidArgument,
            ),
            (
                ImagesError::Storage(StorageError::SizeMismatch {
                    digest: digest('a'),
                    expected: 1,
                    actual: 2,
                }),
                ErrorKind::InvalidArgument,
            ),
            (
                ImagesError::Storage(StorageError::InvalidLayerEntry {
                    path: "../x".into(),
                    reason: "escapes".into(),
                }),
                ErrorKind::InvalidArgument,
            ),
            (
                ImagesError::Storage(StorageError::InvalidArchive("bad".into())),
                ErrorKind::InvalidArgument,
            ),
            (
                ImagesError::Storage(StorageError::InvalidDigest("md5:x".into())),
                ErrorKind::InvalidArgument,
            ),
            (
                ImagesError::Storage(StorageError::BlobNotFound(digest('c'))),
                ErrorKind::Internal,
            ),
            (
                ImagesError::Storage(StorageError::Io {
                    op: "open",
                    path: "/x".into(),
                    source: std::io::Error::other("boom"),
                }),
                ErrorKind::Internal,
            ),
            (
                ImagesError::Io {
                    op: "read",
                    path: "/x".into(),
                    source: std::io::Error::other("boom"),
                },
                ErrorKind::Internal,
            ),
            (
                ImagesError::Write(std::io::Error::other("pipe")),
                ErrorKind::Internal,
            ),
        ];
        for (err, kind) in cases {
            let text = err.to_string();
            assert_eq!(EngineError::from(err).kind(), kind, "{text}");
        }
    }

    #[test]
    fn display_keeps_docker_wording() {
        let e = EngineError::from(ImagesError::NotFound("busybox:latest".into()));
        assert_eq!(e.to_string(), "No such image: busybox:latest");
        let e = EngineError::from(ImagesError::InvalidReference("Bad".into()));
        assert!(e.to_string().starts_with("invalid reference format"));
        assert_eq!(
            EngineError::NoSuchContainer("x".into()).to_string(),
            "No such container: x"
        );
        assert_eq!(
            EngineError::NoSuchContainer("x".into()).kind(),
            ErrorKind::NotFound
        );
        let e = EngineError::DataRootInUse {
            path: "/var/lib/berth".into(),
        };
        assert_eq!(
            e.to_string(),
            "data root /var/lib/berth is in use by another berthd"
        );
        let e = EngineError::UnknownFilter { key: "foo".into() };
        assert_eq!(e.to_string(), "invalid filter 'foo'");
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
        assert_eq!(
            EngineError::NotSupported { what: "pull" }.kind(),
            ErrorKind::NotImplemented
        );
    }
}
