//! API version middleware: the only place API versions are looked at.
//!
//! Every route answers both `/vX.Y/path` and `/path`. A version prefix outside
//! [`MIN_API_VERSION`, `API_VERSION`] is refused with moby's wording; an accepted one is stripped
//! and put into the request's extensions as an [`ApiVersion`] (the advertised version when the
//! path has none). Every response gets `Api-Version`, `Server` and `Ostype` headers, and a
//! handler that panics becomes a 500 instead of a dropped connection.

use std::panic::AssertUnwindSafe;

use api_types::{API_VERSION, ApiVersion, MIN_API_VERSION};
use axum::extract::Request;
use axum::http::header::{HeaderValue, SERVER};
use axum::http::{HeaderName, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures_util::FutureExt;

use crate::error::DaemonError;

/// `Server: Docker/<berth version> (linux)`.
fn server_header() -> HeaderValue {
    HeaderValue::from_str(&format!("Docker/{} (linux)", engine::ENGINE_VERSION))
        .unwrap_or_else(|_| HeaderValue::from_static("Docker (linux)"))
}

/// Splits `/v1.47/rest` into (`"1.47"`, `/rest`); None when the path has no version prefix.
fn split_version(path: &str) -> Option<(&str, &str)> {
    let after = path.strip_prefix("/v")?;
    let end = after.find('/').unwrap_or(after.len());
    let version = &after[..end];
    if version.is_empty() || !version.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return None;
    }
    let rest = &after[end..];
    Some((version, if rest.is_empty() { "/" } else { rest }))
}

/// Checks a version prefix against the supported range.
fn check_version(text: &str) -> Result<ApiVersion, DaemonError> {
    let too_old = || DaemonError::VersionTooOld {
        requested: text.to_string(),
        min: MIN_API_VERSION,
    };
    // A malformed version such as `1` or `1.2.3` sorts as moby's comparison would: by its
    // numeric parts.
    let parts: Vec<u32> = text.split('.').map(|p| p.parse().unwrap_or(0)).collect();
    let major = parts.first().copied().unwrap_or(0);
    let minor = parts.get(1).copied().unwrap_or(0);
    let rest_nonzero = parts.iter().skip(2).any(|&p| p > 0);
    let v = ApiVersion { major, minor };
    if v > ApiVersion::current() || (v == ApiVersion::current() && rest_nonzero) {
        return Err(DaemonError::VersionTooNew {
            requested: text.to_string(),
            max: API_VERSION,
        });
    }
    if v < ApiVersion::minimum() {
        return Err(too_old());
    }
    Ok(v)
}

/// The middleware: strip and check the version prefix, stamp headers, catch panics.
pub(crate) async fn middleware(mut req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    let mut response = match split_version(&path) {
        Some((text, rest)) => match check_version(text) {
            Ok(v) => match rewrite(req.uri(), rest) {
                Some(uri) => {
                    *req.uri_mut() = uri;
                    req.extensions_mut().insert(v);
                    run(req, next).await
                }
                None => DaemonError::PageNotFound.into_response(),
            },
            Err(e) => e.into_response(),
        },
        None => {
            req.extensions_mut().insert(ApiVersion::current());
            run(req, next).await
        }
    };
    let headers = response.headers_mut();
    headers.insert(
        HeaderName::from_static("api-version"),
        HeaderValue::from_static(API_VERSION),
    );
    headers.insert(
        HeaderName::from_static("ostype"),
        HeaderValue::from_static("linux"),
    );
    headers.insert(SERVER, server_header());
    tracing::debug!(%method, %path, status = response.status().as_u16(), "request");
    response
}

async fn run(req: Request, next: Next) -> Response {
    match AssertUnwindSafe(next.run(req)).catch_unwind().await {
        Ok(r) => r,
        Err(_) => {
            tracing::error!("request handler panicked");
            DaemonError::HandlerPanicked.into_response()
        }
    }
}

fn rewrite(uri: &Uri, path: &str) -> Option<Uri> {
    let pq = match uri.query() {
        Some(q) => format!("{path}?{q}"),
        None => path.to_string(),
    };
    let mut parts = uri.clone().into_parts();
    parts.path_and_query = Some(pq.parse().ok()?);
    Uri::from_parts(parts).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split() {
        assert_eq!(split_version("/v1.47/info"), Some(("1.47", "/info")));
        assert_eq!(
            split_version("/v1.24/images/a/b:c/json"),
            Some(("1.24", "/images/a/b:c/json"))
        );
        assert_eq!(split_version("/v1.47"), Some(("1.47", "/")));
        assert_eq!(split_version("/version"), None);
        assert_eq!(split_version("/volumes/v1"), None);
        assert_eq!(split_version("/_ping"), None);
    }

    #[test]
    fn range() {
        assert_eq!(check_version("1.47").unwrap(), ApiVersion::current());
        assert_eq!(check_version("1.24").unwrap(), ApiVersion::minimum());
        assert_eq!(
            check_version("1.41").unwrap(),
            ApiVersion {
                major: 1,
                minor: 41
            }
        );
        assert!(matches!(
            check_version("1.48"),
            Err(DaemonError::VersionTooNew { .. })
        ));
        assert!(matches!(
            check_version("2.0"),
            Err(DaemonError::VersionTooNew { .. })
        ));
        assert!(matches!(
            check_version("1.23"),
            Err(DaemonError::VersionTooOld { .. })
        ));
        assert!(matches!(
            check_version("1.9"),
            Err(DaemonError::VersionTooOld { .. })
        ));
        assert!(matches!(
            check_version("1"),
            Err(DaemonError::VersionTooOld { .. })
        ));
    }
}
