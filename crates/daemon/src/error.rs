//! The one error type of the daemon, and the one place an error kind becomes an HTTP status.

use std::path::PathBuf;

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use engine::{EngineError, ErrorKind};

/// Everything that can go wrong in berthd: at startup (configuration, sockets, pid file) and
/// while serving a request.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The engine refused or failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// A `/vX.Y/` prefix above the supported maximum.
    #[error("client version {requested} is too new. Maximum supported API version is {max}")]
    VersionTooNew {
        requested: String,
        max: &'static str,
    },
    /// A `/vX.Y/` prefix below the supported minimum.
    #[error(
        "client version {requested} is too old. Minimum supported API version is {min}, please upgrade your client to a newer version"
    )]
    VersionTooOld {
        requested: String,
        min: &'static str,
    },
    /// No route for this path.
    #[error("page not found")]
    PageNotFound,
    /// The path exists but not for this method.
    #[error("method {method} not allowed for {path}")]
    MethodNotAllowed { method: String, path: String },
    /// A query parameter that cannot be used.
    #[error("invalid value for parameter '{name}': {reason}")]
    BadParameter { name: &'static str, reason: String },
    /// A query parameter that must be given.
    #[error("missing required parameter '{name}'")]
    MissingParameter { name: &'static str },
    /// A JSON body that cannot be read.
    #[error("invalid JSON body: {reason}")]
    BadBody { reason: String },
    /// A body above the size limit.
    #[error("request body is too large (limit {limit} bytes)")]
    BodyTooLarge { limit: usize },
    /// An endpoint that berth knows but has not built yet.
    #[error("{what} is not implemented yet")]
    NotImplemented { what: String },
    /// `GET /plugins/{name}/json`: berth has no plugins.
    #[error("plugin \"{0}\" not found")]
    NoSuchPlugin(String),
    /// A request handler panicked (a bug); the daemon keeps serving.
    #[error("internal error while handling the request")]
    HandlerPanicked,

    /// The configuration file could not be read.
    #[error("unable to read configuration file {path}: {source}")]
    ConfigRead {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The configuration file is not valid JSON of the right shape.
    #[error("unable to parse configuration file {path}: {reason}")]
    ConfigParse { path: PathBuf, reason: String },
    /// Keys in the configuration file that berthd does not know.
    #[error("the following directives don't match any configuration option: {0}")]
    UnknownDirectives(String),
    /// Keys set both in the file and on the command line.
    #[error(
        "the following directives are specified both as a flag and in the configuration file: {0}"
    )]
    ConflictingDirectives(String),
    /// A configuration value that fails validation (moby's wording: an invalid mirror).
    #[error("merged configuration validation from file and command line flags failed: {0}")]
    InvalidConfig(String),
    /// A `-H` value berthd cannot listen on.
    #[error("invalid host {host}: {reason}")]
    InvalidHost { host: String, reason: &'static str },
    /// The API's TLS certificate, key or CA cannot be used.
    #[error("invalid TLS configuration: {0}")]
    Tls(String),
    /// A non-loopback TCP listener without client verification, not explicitly asked for.
    #[error(
        "refusing to listen on {host}: Binding to IP address without --tlsverify is insecure and gives root access on this machine to everyone who has access to your network. Use --tlsverify with --tlscacert, --tlscert and --tlskey, listen on a loopback address, or override this by explicitly specifying '--tls=false' or '--tlsverify=false'"
    )]
    InsecureTcp { host: String },
    /// Creating, binding or listening on a socket failed.
    #[error("{op} {path}: {source}")]
    Listen {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// Reading, writing or removing the pid file failed.
    #[error("{op} pid file {path}: {source}")]
    PidFile {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// A live process already owns the pid file.
    #[error("pid file found, ensure berthd is not running or delete {path} (pid {pid})")]
    PidFileInUse { path: PathBuf, pid: i32 },
}

impl DaemonError {
    /// The kind of this error, as the engine classifies its own.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Engine(e) => e.kind(),
            Self::VersionTooNew { .. }
            | Self::VersionTooOld { .. }
            | Self::BadParameter { .. }
            | Self::MissingParameter { .. }
            | Self::BadBody { .. }
            | Self::BodyTooLarge { .. } => ErrorKind::InvalidArgument,
            Self::PageNotFound | Self::NoSuchPlugin(_) => ErrorKind::NotFound,
            Self::MethodNotAllowed { .. } | Self::NotImplemented { .. } => {
                ErrorKind::NotImplemented
            }
            Self::HandlerPanicked
            | Self::ConfigRead { .. }
            | Self::ConfigParse { .. }
            | Self::UnknownDirectives(_)
            | Self::ConflictingDirectives(_)
            | Self::InvalidConfig(_)
            | Self::InvalidHost { .. }
            | Self::Tls(_)
            | Self::InsecureTcp { .. }
            | Self::Listen { .. }
            | Self::PidFile { .. }
            | Self::PidFileInUse { .. } => ErrorKind::Internal,
        }
    }

    /// The HTTP status for this error.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            _ => status_of(self.kind()),
        }
    }
}

/// The one mapping from error kind to HTTP status.
pub fn status_of(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::InvalidArgument => StatusCode::BAD_REQUEST,
        ErrorKind::Unauthorized => StatusCode::UNAUTHORIZED,
        ErrorKind::Forbidden => StatusCode::FORBIDDEN,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::NotImplemented => StatusCode::NOT_IMPLEMENTED,
        ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// Docker's error body.
#[derive(Debug, serde::Serialize)]
struct ErrorBody {
    message: String,
}

impl IntoResponse for DaemonError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() && status != StatusCode::NOT_IMPLEMENTED {
            tracing::error!(error = %self, "request failed");
        } else {
            tracing::debug!(error = %self, status = status.as_u16(), "request refused");
        }
        // `Json` sets `Content-Type: application/json` exactly, as the docker CLI requires.
        (
            status,
            Json(ErrorBody {
                message: go_errno_text(&self.to_string()),
            }),
        )
            .into_response()
    }
}

/// An error text as dockerd words it: Rust's OS error texts (`No space left on device (os
/// error 28)`) and nix's (`ENOSPC: No space left on device`) become Go's (`no space left on
/// device`), which users and scripts match on.
pub(crate) fn go_errno_text(text: &str) -> String {
    strip_errno_names(&strip_os_error_codes(text))
}

/// nix's `ENAME: Text` becomes `text`.
fn strip_errno_names(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while !rest.is_empty() {
        let at_word = out.is_empty() || out.ends_with([' ', '(']);
        let name = rest.len()
            - rest
                .trim_start_matches(|c: char| c.is_ascii_uppercase() || c.is_ascii_digit())
                .len();
        if at_word
            && name >= 3
            && rest.starts_with('E')
            && rest[name..].starts_with(": ")
            && is_strerror(&rest[name + 2..])
        {
            let msg = &rest[name + 2..];
            let mut chars = msg.chars();
            if let Some(first) = chars.next() {
                out.extend(first.to_lowercase());
            }
            rest = chars.as_str();
            continue;
        }
        let mut chars = rest.chars();
        if let Some(c) = chars.next() {
            out.push(c);
        }
        rest = chars.as_str();
    }
    out
}

/// Whether `msg` starts with the C library's text for some errno.
fn is_strerror(msg: &str) -> bool {
    (1..=133).any(|n| {
        let text = std::io::Error::from_raw_os_error(n).to_string();
        let text = text.split(" (os error").next().unwrap_or_default();
        !text.is_empty() && !text.starts_with("Unknown error") && msg.starts_with(text)
    })
}

/// Rust's `Text (os error N)` becomes `text`.
fn strip_os_error_codes(text: &str) -> String {
    const MARK: &str = " (os error ";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(MARK) {
        let after = &rest[at + MARK.len()..];
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 || !after[digits..].starts_with(')') {
            out.push_str(&rest[..at + MARK.len()]);
            rest = after;
            continue;
        }
        // The strerror text starts after the last ": " (or at the start).
        let head = &rest[..at];
        let start = head.rfind(": ").map_or(0, |i| i + 2);
        out.push_str(&head[..start]);
        let mut chars = head[start..].chars();
        if let Some(first) = chars.next() {
            out.extend(first.to_lowercase());
            out.push_str(chars.as_str());
        }
        rest = &after[digits + 1..];
    }
    out.push_str(rest);
    out
}

/// Result with [`DaemonError`].
pub type Result<T> = std::result::Result<T, DaemonError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_error_texts_read_as_go_prints_them() {
        assert_eq!(
            go_errno_text("write layer tar big: No space left on device (os error 28)"),
            "write layer tar big: no space left on device"
        );
        assert_eq!(
            go_errno_text("No space left on device (os error 28)"),
            "no space left on device"
        );
        assert_eq!(
            go_errno_text(
                "a: Permission denied (os error 13); b: Read-only file system (os error 30)"
            ),
            "a: permission denied; b: read-only file system"
        );
        assert_eq!(go_errno_text("odd (os error x)"), "odd (os error x)");
        assert_eq!(
            go_errno_text("mkdir sys: ENOSPC: No space left on device"),
            "mkdir sys: no space left on device"
        );
        assert_eq!(
            go_errno_text("EACCES: Permission denied"),
            "permission denied"
        );
        assert_eq!(
            go_errno_text("bad ENV: Not an errno"),
            "bad ENV: Not an errno"
        );
        assert_eq!(go_errno_text("set FOO: BAR"), "set FOO: BAR");
        assert_eq!(
            go_errno_text("No such container: x"),
            "No such container: x"
        );
    }

    #[test]
    fn every_kind_has_its_status() {
        let cases = [
            (ErrorKind::NotFound, 404),
            (ErrorKind::Conflict, 409),
            (ErrorKind::InvalidArgument, 400),
            (ErrorKind::Unauthorized, 401),
            (ErrorKind::Forbidden, 403),
            (ErrorKind::Unavailable, 503),
            (ErrorKind::NotImplemented, 501),
            (ErrorKind::Internal, 500),
        ];
        for (kind, code) in cases {
            assert_eq!(status_of(kind).as_u16(), code, "{kind:?}");
        }
    }

    #[test]
    fn version_messages_match_moby() {
        let e = DaemonError::VersionTooNew {
            requested: "1.48".into(),
            max: "1.47",
        };
        assert_eq!(
            e.to_string(),
            "client version 1.48 is too new. Maximum supported API version is 1.47"
        );
        assert_eq!(e.status(), StatusCode::BAD_REQUEST);
        let e = DaemonError::VersionTooOld {
            requested: "1.23".into(),
            min: "1.24",
        };
        assert_eq!(
            e.to_string(),
            "client version 1.23 is too old. Minimum supported API version is 1.24, please upgrade your client to a newer version"
        );
    }
}
