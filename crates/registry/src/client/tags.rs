//! A repository's tags (`GET /v2/<name>/tags/list`), following the `Link: <…>; rel="next"`
//! pagination, for `docker pull --all-tags`.
//!
//! Bounded: each page at most 4 MiB, at most [`MAX_PAGES`] pages; a `Link` to another host is
//! refused (credentials never leave the registry). Knows nothing of pulling or images.

use reqwest::header::LINK;
use reqwest::{Method, StatusCode};

use super::session::{Session, error_detail, read_limited};
use super::{Client, Credentials};
use crate::{RegistryError, Result};

/// The most pages followed.
const MAX_PAGES: usize = 1000;
/// The largest page accepted.
const MAX_PAGE: u64 = 4 << 20;

#[derive(Debug, serde::Deserialize)]
struct TagList {
    #[serde(default)]
    tags: Option<Vec<String>>,
}

/// The repository as Docker names it in messages (`busybox`, `127.0.0.1:5000/t/bb`).
fn familiar(domain: &str, repository: &str) -> String {
    if domain == "docker.io" {
        let short = repository.strip_prefix("library/").unwrap_or(repository);
        if !short.contains('/') {
            return short.to_string();
        }
        return repository.to_string();
    }
    format!("{domain}/{repository}")
}

/// The target of a `Link` header's `rel="next"` entry (`<url>; rel="next"`).
fn next_link(header: &str) -> Option<String> {
    header.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        let is_next = params
            .split(';')
            .any(|p| p.replace([' ', '"'], "").eq_ignore_ascii_case("rel=next"));
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        is_next.then(|| target.to_string())
    })
}

impl Client {
    /// Every tag of `repository` on `domain`, in the registry's order.
    pub async fn tags(
        &self,
        domain: &str,
        repository: &str,
        credentials: Option<Credentials>,
    ) -> Result<Vec<String>> {
        let session = Session::open(self, domain, repository, credentials).await?;
        let first = session.repo_url("tags/list");
        let origin = session.resolve(&first)?.origin();
        let mut url = first;
        let mut out = Vec::new();
        for _ in 0..MAX_PAGES {
            let resp = session.send(Method::GET, &url, &mut |r| r, true).await?;
            let status = resp.status();
            let link = resp
                .headers()
                .get(LINK)
                .and_then(|v| v.to_str().ok())
                .and_then(next_link);
            let body = read_limited(resp, MAX_PAGE, "tag list").await?;
            if status == StatusCode::NOT_FOUND {
                // moby's translation of NAME_UNKNOWN for a pull.
                return Err(RegistryError::Denied {
                    repository: familiar(domain, repository),
                    detail: error_detail(&body),
                });
            }
            if !status.is_success() {
                return Err(RegistryError::Protocol(format!(
                    "listing the tags of {repository}: the registry answered {status}: {}",
                    error_detail(&body)
                )));
            }
            let page: TagList = serde_json::from_slice(&body)
                .map_err(|e| RegistryError::Protocol(format!("invalid tag list: {e}")))?;
            out.extend(page.tags.unwrap_or_default());
            let Some(next) = link else {
                return Ok(out);
            };
            let next = session.resolve(&next)?;
            if next.origin() != origin {
                return Err(RegistryError::Protocol(format!(
                    "tag list of {repository}: the next page is on another host ({next})"
                )));
            }
            url = next.to_string();
        }
        Err(RegistryError::Protocol(format!(
            "tag list of {repository}: more than {MAX_PAGES} pages"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn familiar_names() {
        assert_eq!(familiar("docker.io", "library/busybox"), "busybox");
        assert_eq!(familiar("docker.io", "me/tool"), "me/tool");
        assert_eq!(familiar("127.0.0.1:5000", "t/bb"), "127.0.0.1:5000/t/bb");
    }

    #[test]
    fn link_headers() {
        assert_eq!(
            next_link(r#"</v2/a/tags/list?n=2&last=b>; rel="next""#).as_deref(),
            Some("/v2/a/tags/list?n=2&last=b")
        );
        assert_eq!(
            next_link(r#"<https://x/prev>; rel="prev", <https://x/next>; rel=next"#).as_deref(),
            Some("https://x/next"),
            "unquoted, as distribution's client accepts"
        );
        assert_eq!(
            next_link(r#"<https://x/prev>; rel="prev", <https://x/n>;rel="next""#).as_deref(),
            Some("https://x/n")
        );
        assert_eq!(next_link("garbage"), None);
    }
}
