//! The router and what every handler shares: query parameters parsed as moby parses them.

mod archive;
mod auth;
mod build;
mod commit;
mod containers;
mod events;
mod exec;
mod hijack;
mod images;
mod networks;
mod pull;
mod search;
mod stats;
mod stubs;
mod system;
mod volumes;

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::middleware;
use axum::response::IntoResponse;
use engine::{Engine, Filters};

use crate::error::{DaemonError, Result};

/// Limit for buffered request bodies (JSON). Streaming bodies (load, import) are not buffered.
pub(crate) const JSON_BODY_LIMIT: usize = 1024 * 1024;

/// Shared state of every handler.
pub(crate) type AppState = Arc<Engine>;

/// The whole HTTP application: version middleware around the routes.
pub fn app(engine: Arc<Engine>) -> Router {
    let routes = Router::new()
        .merge(system::routes())
        .merge(archive::routes())
        .merge(auth::routes())
        .merge(build::routes())
        .merge(commit::routes())
        .merge(containers::routes())
        .merge(events::routes())
        .merge(exec::routes())
        .merge(images::routes())
        .merge(stats::routes())
        .merge(stubs::routes())
        .merge(networks::routes())
        .merge(volumes::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(JSON_BODY_LIMIT))
        .with_state(engine);
    // The version middleware must run before routing (it rewrites the path), so it wraps the
    // routes as a whole rather than each route.
    Router::new()
        .fallback_service(routes)
        .layer(middleware::from_fn(crate::version::middleware))
        .layer(middleware::from_fn(crate::drain::middleware))
}

async fn not_found() -> impl IntoResponse {
    DaemonError::PageNotFound
}

async fn method_not_allowed(req: Request) -> impl IntoResponse {
    DaemonError::MethodNotAllowed {
        method: req.method().to_string(),
        path: req.uri().path().to_string(),
    }
}

/// Query parameters in order, repeated keys kept (`names=a&names=b`, `changes=…`).
#[derive(Debug, Clone, Default)]
pub(crate) struct Params(Vec<(String, String)>);

impl Params {
    /// Parses a raw query string.
    pub(crate) fn parse(query: &str) -> Result<Self> {
        let mut out = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let key = decode(k).ok_or_else(|| DaemonError::BadParameter {
                name: "query",
                reason: format!("invalid percent-encoding in {k:?}"),
            })?;
            let value = decode(v).ok_or_else(|| DaemonError::BadParameter {
                name: "query",
                reason: format!("invalid percent-encoding in {v:?}"),
            })?;
            out.push((key, value));
        }
        Ok(Self(out))
    }

    /// The last value of `name`.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The value of `name`, or "".
    pub(crate) fn str(&self, name: &str) -> String {
        self.get(name).unwrap_or_default().to_string()
    }

    /// Every value of `name`, in order.
    pub(crate) fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// A boolean as moby reads it: absent, "", "0", "no", "false" and "none" are false.
    pub(crate) fn bool(&self, name: &str) -> bool {
        self.get(name).is_some_and(bool_value)
    }

    /// The `filters` parameter.
    pub(crate) fn filters(&self) -> Result<Filters> {
        Ok(Filters::parse(self.get("filters").unwrap_or_default())?)
    }
}

/// moby's `httputils.BoolValue`.
pub(crate) fn bool_value(v: &str) -> bool {
    !matches!(
        v.trim().to_ascii_lowercase().as_str(),
        "" | "0" | "no" | "false" | "none"
    )
}

/// Percent-decoding for query strings (`+` is a space). None on malformed escapes or bad UTF-8.
fn decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = DaemonError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self> {
        Self::parse(parts.uri.query().unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bools_like_moby() {
        for f in [
            "", "0", "no", "false", "none", "False", "NO", "None", " false ",
        ] {
            assert!(!bool_value(f), "{f:?}");
        }
        for t in ["1", "true", "True", "yes", "anything"] {
            assert!(bool_value(t), "{t:?}");
        }
        let p = Params::parse("a=True&b=False&c=&d").unwrap();
        assert!(p.bool("a"));
        assert!(!p.bool("b"));
        assert!(!p.bool("c"));
        assert!(!p.bool("d"));
        assert!(!p.bool("missing"));
    }

    #[test]
    fn repeated_and_encoded() {
        let p = Params::parse("names=bb%3Alatest&names=alpine&repo=a+b&x=%7B%22k%22%7D").unwrap();
        assert_eq!(p.all("names"), vec!["bb:latest", "alpine"]);
        assert_eq!(p.str("repo"), "a b");
        assert_eq!(p.str("x"), "{\"k\"}");
        assert_eq!(p.get("names"), Some("alpine"));
        assert!(Params::parse("a=%zz").is_err());
        assert!(Params::parse("a=%4").is_err());
    }
}
