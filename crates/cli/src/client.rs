//! Daemon connection: host selection, bollard client set-up, and error reporting.

use bollard::{API_DEFAULT_VERSION, Docker};

/// The default daemon address.
pub(crate) const DEFAULT_HOST: &str = "unix:///run/berth/berth.sock";

/// Errors the CLI reports; `main` prints them and turns them into exit codes.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CliError {
    /// The daemon is not reachable.
    #[error("Cannot connect to the berth daemon at {0}. Is the berth daemon running?")]
    Connect(String),
    /// The daemon answered with an error status.
    #[error("Error response from daemon: {0}")]
    Daemon(String),
    /// An error that docker prints as-is (already worded).
    #[error("{0}")]
    Message(String),
    /// A usage error (exit code 125 like docker's flag errors).
    #[error("{0}")]
    Usage(String),
    /// Local I/O failure.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// Template problems.
    #[error("{0}")]
    Template(#[from] crate::format::TemplateError),
    /// JSON encoding problems.
    #[error("{0}")]
    Json(#[from] serde_json::Error),
    /// A message (possibly empty: print nothing) with a specific exit code, like docker's
    /// `StatusError` (container exit codes, 125/126/127 for `run`).
    #[error("{message}")]
    Status {
        /// Exit code.
        code: i32,
        /// What to print on stderr (nothing when empty).
        message: String,
    },
}

impl CliError {
    /// Exit status for this error.
    pub(crate) fn exit_code(&self) -> i32 {
        match self {
            CliError::Usage(_) => 125,
            CliError::Status { code, .. } => *code,
            _ => 1,
        }
    }
}

/// Picks the daemon address: `-H`, then `BERTH_HOST`, then `DOCKER_HOST`, then the default.
pub(crate) fn select_host(
    flag: Option<&str>,
    berth_host: Option<&str>,
    docker_host: Option<&str>,
) -> String {
    [flag, berth_host, docker_host]
        .into_iter()
        .flatten()
        .find(|h| !h.is_empty())
        .unwrap_or(DEFAULT_HOST)
        .to_string()
}

/// Host from the environment and the optional flag.
pub(crate) fn host_from_env(flag: Option<&str>) -> String {
    let berth = std::env::var("BERTH_HOST").ok();
    let docker = std::env::var("DOCKER_HOST").ok();
    select_host(flag, berth.as_deref(), docker.as_deref())
}

/// A connected client plus what is needed to report errors.
pub(crate) struct Client {
    /// The bollard client.
    pub(crate) docker: Docker,
    /// The address, for error messages.
    pub(crate) host: String,
}

impl Client {
    /// Connects (lazily: bollard connects on the first request) and negotiates the API version.
    pub(crate) async fn connect(host: &str) -> Result<Self, CliError> {
        let docker = if let Some(path) = host.strip_prefix("unix://") {
            Docker::connect_with_unix(path, 120, API_DEFAULT_VERSION)
        } else if host.starts_with("tcp://") || host.starts_with("http://") {
            let addr = host.replacen("tcp://", "http://", 1);
            Docker::connect_with_http(&addr, 120, API_DEFAULT_VERSION)
        } else if host.starts_with('/') {
            Docker::connect_with_unix(host, 120, API_DEFAULT_VERSION)
        } else {
            return Err(CliError::Message(format!(
                "unable to parse docker host `{host}`"
            )));
        }
        .map_err(|_| CliError::Connect(host.to_string()))?;
        let client = Self {
            docker,
            host: host.to_string(),
        };
        let docker = client.docker.clone();
        let docker = match std::env::var("DOCKER_API_VERSION") {
            Ok(v) if !v.is_empty() => docker,
            _ => docker
                .negotiate_version()
                .await
                .map_err(|e| client.error(e))?,
        };
        Ok(Self {
            docker,
            host: client.host,
        })
    }

    /// Maps a bollard error to the CLI's wording.
    pub(crate) fn error(&self, e: bollard::errors::Error) -> CliError {
        map_error(&self.host, e)
    }
}

/// Maps a bollard error to the CLI's wording.
pub(crate) fn map_error(host: &str, e: bollard::errors::Error) -> CliError {
    use bollard::errors::Error as E;
    match e {
        E::DockerResponseServerError { message, .. } => CliError::Daemon(message),
        E::DockerStreamError { error } => CliError::Message(error),
        E::SocketNotFoundError(_) | E::HyperLegacyError { .. } => {
            CliError::Connect(host.to_string())
        }
        E::IOError { ref err } if is_connect_error(err) => CliError::Connect(host.to_string()),
        other => {
            let text = other.to_string();
            if text.contains("Connection refused")
                || text.contains("No such file")
                || text.contains("error trying to connect")
            {
                CliError::Connect(host.to_string())
            } else {
                CliError::Message(text)
            }
        }
    }
}

fn is_connect_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind as K;
    matches!(
        e.kind(),
        K::ConnectionRefused | K::NotFound | K::PermissionDenied
    )
}

/// True when a bollard error is a 404 from the daemon.
pub(crate) fn is_not_found(e: &bollard::errors::Error) -> bool {
    matches!(
        e,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_precedence() {
        assert_eq!(select_host(None, None, None), DEFAULT_HOST);
        assert_eq!(
            select_host(None, None, Some("unix:///d.sock")),
            "unix:///d.sock"
        );
        assert_eq!(
            select_host(None, Some("unix:///b.sock"), Some("unix:///d.sock")),
            "unix:///b.sock"
        );
        assert_eq!(
            select_host(
                Some("tcp://1.2.3.4:2375"),
                Some("unix:///b.sock"),
                Some("unix:///d")
            ),
            "tcp://1.2.3.4:2375"
        );
        assert_eq!(select_host(None, Some(""), Some("unix:///d")), "unix:///d");
    }

    #[test]
    fn connect_error_wording() {
        let e = CliError::Connect(DEFAULT_HOST.to_string());
        assert_eq!(
            e.to_string(),
            "Cannot connect to the berth daemon at unix:///run/berth/berth.sock. \
             Is the berth daemon running?"
        );
        assert_eq!(e.exit_code(), 1);
        let e = map_error(
            "x",
            bollard::errors::Error::DockerResponseServerError {
                status_code: 404,
                message: "No such image: nope:latest".into(),
            },
        );
        assert_eq!(
            e.to_string(),
            "Error response from daemon: No such image: nope:latest"
        );
    }

    #[tokio::test]
    async fn missing_socket_is_connect_error() {
        let r = Client::connect("unix:///nonexistent/berth-test.sock").await;
        match r {
            Err(CliError::Connect(h)) => assert_eq!(h, "unix:///nonexistent/berth-test.sock"),
            _ => panic!("expected connect error"),
        }
    }
}
