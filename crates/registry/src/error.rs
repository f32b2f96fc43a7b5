//! The registry crate's one error type.

/// Everything that can go wrong talking to or serving a registry.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// A content store failure (digest mismatch, I/O).
    #[error(transparent)]
    Storage(#[from] storage::StorageError),
    /// Anything else, named in the message.
    #[error("{0}")]
    Other(String),
    /// Pull: the registry has no manifest for this reference (Docker's wording; `detail` is
    /// the registry's `code: message`, e.g. `manifest unknown: manifest unknown`).
    #[error("manifest for {reference} not found: {detail}")]
    ManifestUnknown { reference: String, detail: String },
    /// Pull: the registry refused access (after authenticating once).
    #[error(
        "pull access denied for {repository}, repository does not exist or may require 'docker login': {detail}"
    )]
    Denied { repository: String, detail: String },
    /// Push: the registry refused the credentials (or none were given): its own words, as
    /// Docker prints them (`no basic auth credentials`, `unauthorized: authentication required`).
    #[error("{0}")]
    PushDenied(String),
    /// Login: the registry refused the credentials (moby's words).
    #[error("{0}")]
    LoginFailed(String),
    /// Pull: no entry of a manifest list / OCI index matches the wanted platform.
    #[error("no matching manifest for {platform} in the manifest list entries")]
    NoMatchingPlatform { platform: String },
    /// Pull: a caller's argument is unusable (a malformed platform).
    #[error("{0}")]
    InvalidArgument(String),
    /// Pull: the registry's answer cannot be used (bad JSON, wrong digest or size, too large,
    /// an unexpected status). Never retried.
    #[error("{0}")]
    Protocol(String),
    /// Pull: the connection failed or timed out, or the registry answered 5xx/429 (retried a
    /// bounded number of times before this is returned).
    #[error("{0}")]
    Transport(String),
}

/// The crate's result type.
pub type Result<T, E = RegistryError> = std::result::Result<T, E>;
