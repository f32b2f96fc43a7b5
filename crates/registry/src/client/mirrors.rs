//! Registry mirrors (`registry-mirrors`): pulls of Docker Hub (`docker.io`) images try each
//! configured mirror in order, then Docker Hub itself, as moby's `LookupPullEndpoints` and
//! `distribution/pull.go` do. Mirrors serve pulls only and only for `docker.io`; a mirror that
//! is down, lacks the image or fails mid-pull hands over to the next endpoint, and a pull's
//! manifest, config and blobs all come from the one endpoint that answered. Credentials given
//! for Docker Hub are never sent to a mirror.
//!
//! Owns mirror URL validation (moby's `ValidateMirror` and its messages), the endpoint order
//! and which failures fall back. Knows nothing of the daemon's configuration or the Engine API.

use storage::ContentStore;

use super::session::Session;
use super::{Client, PullEvent, PullRequest, Pulled};
use crate::{RegistryError, Result};

/// Whether `domain` is Docker Hub, the only registry mirrors stand in for.
pub(crate) fn is_docker_hub(domain: &str) -> bool {
    domain == "docker.io" || domain == "index.docker.io"
}

/// Validates and normalises a mirror URL as moby's `ValidateMirror`: `http` or `https`, no
/// path other than `/`, no query, fragment or credentials; returned with one trailing `/`.
pub fn validate_mirror(val: &str) -> Result<String> {
    let invalid = |m: String| RegistryError::InvalidArgument(format!("invalid mirror: {m}"));
    let uri = match reqwest::Url::parse(val) {
        Ok(u) => u,
        // Go reads a bare host name without error, as a URL with no scheme.
        Err(_) if !val.contains(':') => {
            return Err(invalid(format!("unsupported scheme \"\" in {val:?}")));
        }
        Err(_) => return Err(invalid(format!("{val:?} is not a valid URI"))),
    };
    if uri.scheme() != "http" && uri.scheme() != "https" {
        return Err(invalid(format!(
            "unsupported scheme {:?} in {val:?}",
            uri.scheme()
        )));
    }
    if (uri.path() != "" && uri.path() != "/") || uri.query().is_some() || uri.fragment().is_some()
    {
        return Err(invalid(format!(
            "path, query, or fragment at end of the URI {val:?}"
        )));
    }
    if !uri.username().is_empty() || uri.password().is_some() {
        let mut shown = uri.clone();
        let _ = shown.set_password(Some("xxxxx"));
        return Err(invalid(format!(
            "username/password not allowed in URI {:?}",
            shown.as_str()
        )));
    }
    Ok(format!("{}/", val.strip_suffix('/').unwrap_or(val)))
}

/// `host[:port]` of a parsed mirror URL (the certs.d and insecure-registries key).
fn host_port(uri: &reqwest::Url) -> String {
    let host = uri.host_str().unwrap_or_default();
    match uri.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    }
}

/// Whether a failure at a mirror hands the pull over to the next endpoint: anything but a
/// caller's bad argument or a local store failure (moby falls back on nearly everything a
/// mirror answers).
fn falls_back(e: &RegistryError) -> bool {
    !matches!(
        e,
        RegistryError::InvalidArgument(_) | RegistryError::Storage(_)
    )
}

impl Client {
    /// Pulls `req` into `content` (see the module docs of `client`), through the mirrors first
    /// for Docker Hub images; `events` hears about progress.
    pub async fn pull(
        &self,
        content: &ContentStore,
        req: &PullRequest,
        events: &(dyn Fn(PullEvent) + Sync),
    ) -> Result<Pulled> {
        let mirrors: &[String] = if is_docker_hub(&req.domain) {
            &self.opts.mirrors
        } else {
            &[]
        };
        let mut refused: Option<(String, RegistryError)> = None;
        for mirror in mirrors {
            match self.pull_at(Some(mirror), content, req, events).await {
                Ok(p) => return Ok(p),
                Err(e) if falls_back(&e) => {
                    tracing::info!(%mirror, error = %e, "pull from mirror failed, trying the next endpoint");
                    // The most telling failure: a mirror that answered beats one that is down.
                    if refused
                        .as_ref()
                        .is_none_or(|(_, r)| matches!(r, RegistryError::Transport(_)))
                    {
                        refused = Some((mirror.clone(), e));
                    }
                }
                Err(e) => return Err(e),
            }
        }
        match self.pull_at(None, content, req, events).await {
            Ok(p) => Ok(p),
            Err(origin) => Err(final_error(origin, refused)),
        }
    }

    /// The session a pull talks to: `mirror` (a validated mirror URL) or the reference's
    /// registry.
    pub(crate) async fn pull_session(
        &self,
        mirror: Option<&str>,
        req: &PullRequest,
    ) -> Result<Session> {
        let Some(mirror) = mirror else {
            return Session::open(self, &req.domain, &req.repository, req.credentials.clone())
                .await;
        };
        let uri = reqwest::Url::parse(mirror)
            .map_err(|e| RegistryError::InvalidArgument(format!("invalid mirror {mirror}: {e}")))?;
        let host = host_port(&uri);
        let http = if uri.scheme() == "http" {
            self.transport(&host, true)?
        } else {
            self.transport(&host, self.is_insecure(&host))?
        };
        let base = format!("{}://{host}", uri.scheme());
        // Docker Hub's credentials stay with Docker Hub: moby hands them to mirrors too (its
        // open issue 42022, "Docker Hub Credentials Leaking to Registry Mirrors"); berth
        // does what the fix proposed there does. A private image falls back to Docker Hub,
        // authenticated. As moby, a mirror is asked once, with no plain-HTTP fallback for an
        // https:// one.
        Session::open_at(
            vec![(base, http)],
            &host,
            &req.repository,
            None,
            ("pull", Vec::new()),
            false,
        )
        .await
    }
}

/// The error of a pull no endpoint could serve: Docker Hub's, unless Docker Hub could not be
/// reached and a mirror answered (that it lacks the image, or denied it): then the mirror's,
/// which names the image, with Docker Hub's failure added.
fn final_error(origin: RegistryError, refused: Option<(String, RegistryError)>) -> RegistryError {
    let RegistryError::Transport(unreachable) = &origin else {
        return origin;
    };
    let note = |detail: &str, mirror: &str| {
        format!("{detail} (mirror {mirror}; Docker Hub: {unreachable})")
    };
    match refused {
        Some((mirror, RegistryError::ManifestUnknown { reference, detail })) => {
            RegistryError::ManifestUnknown {
                reference,
                detail: note(&detail, &mirror),
            }
        }
        Some((mirror, RegistryError::Denied { repository, detail })) => RegistryError::Denied {
            repository,
            detail: note(&detail, &mirror),
        },
        _ => origin,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirrors_validate_as_moby() {
        assert_eq!(
            validate_mirror("https://mirror.example.com").unwrap(),
            "https://mirror.example.com/"
        );
        assert_eq!(
            validate_mirror("http://127.0.0.1:5000/").unwrap(),
            "http://127.0.0.1:5000/"
        );
        let err = |v: &str| validate_mirror(v).unwrap_err().to_string();
        assert_eq!(
            err("ftp://m.example.com"),
            r#"invalid mirror: unsupported scheme "ftp" in "ftp://m.example.com""#
        );
        assert_eq!(
            err("mirror.example.com"),
            r#"invalid mirror: unsupported scheme "" in "mirror.example.com""#
        );
        assert_eq!(
            err("https://m.example.com/v2/"),
            r#"invalid mirror: path, query, or fragment at end of the URI "https://m.example.com/v2/""#
        );
        assert_eq!(
            err("https://m.example.com/?a=b"),
            r#"invalid mirror: path, query, or fragment at end of the URI "https://m.example.com/?a=b""#
        );
        assert_eq!(
            err("https://u:secret@m.example.com/"),
            r#"invalid mirror: username/password not allowed in URI "https://u:xxxxx@m.example.com/""#
        );
    }

    #[test]
    fn mirror_host_keys() {
        let u = reqwest::Url::parse("https://127.0.0.1:5001/").unwrap();
        assert_eq!(host_port(&u), "127.0.0.1:5001");
        let u = reqwest::Url::parse("https://mirror.example.com/").unwrap();
        assert_eq!(host_port(&u), "mirror.example.com");
        assert!(is_docker_hub("docker.io"));
        assert!(!is_docker_hub("127.0.0.1:5000"));
    }

    #[test]
    fn the_final_error_names_the_image_when_docker_hub_is_unreachable() {
        let origin =
            RegistryError::Transport("Get \"https://registry-1.docker.io/v2/\": dns error".into());
        let missing = RegistryError::ManifestUnknown {
            reference: "docker.io/library/nginx:latest".into(),
            detail: "manifest unknown: manifest unknown".into(),
        };
        let e = final_error(origin, Some(("http://127.0.0.1:5001/".into(), missing)));
        assert!(matches!(e, RegistryError::ManifestUnknown { .. }));
        let msg = e.to_string();
        assert!(
            msg.starts_with("manifest for docker.io/library/nginx:latest not found"),
            "{msg}"
        );
        assert!(
            msg.contains("http://127.0.0.1:5001/") && msg.contains("dns error"),
            "{msg}"
        );
        // Docker Hub's own answer wins when it gave one.
        let origin = RegistryError::Denied {
            repository: "library/nginx".into(),
            detail: "x".into(),
        };
        let e = final_error(
            origin,
            Some(("m".into(), RegistryError::Transport("t".into()))),
        );
        assert!(matches!(e, RegistryError::Denied { .. }));
        assert!(!falls_back(&RegistryError::InvalidArgument("x".into())));
        assert!(falls_back(&RegistryError::Transport("x".into())));
    }
}
