//! `POST /images/create?fromImage=…` (pull) and `POST /images/{name}/push`: the query and the `X-Registry-Auth` header
//! (base64url JSON `{"username","password",…}`) become an [`engine::PullRequest`]; the answer
//! is Docker's JSON progress stream.

use axum::http::HeaderMap;
use axum::response::Response;
use base64::Engine as _;
use engine::{PullRequest, PushRequest, RegistryCredentials};

use super::{AppState, Params};
use crate::error::Result;
use crate::stream::progress_response;

/// `X-Registry-Auth` as the docker CLI sends it.
#[derive(Debug, serde::Deserialize)]
struct AuthConfig {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
}

/// Decodes `X-Registry-Auth`; anything unusable (the CLI sends `e30=` for "none") is no
/// credentials, as moby treats it.
pub(super) fn credentials(headers: &HeaderMap) -> Option<RegistryCredentials> {
    let raw = headers.get("x-registry-auth")?.to_str().ok()?.trim();
    let trimmed = raw.trim_end_matches('=');
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(trimmed)
        .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(trimmed))
        .ok()?;
    let a: AuthConfig = serde_json::from_slice(&bytes).ok()?;
    (!a.username.is_empty()).then_some(RegistryCredentials {
        username: a.username,
        password: a.password,
    })
}

pub(super) async fn pull(
    engine: &AppState,
    params: &Params,
    headers: &HeaderMap,
) -> Result<Response> {
    let req = PullRequest {
        from_image: params.str("fromImage"),
        tag: params.str("tag"),
        platform: params.str("platform"),
        credentials: credentials(headers),
    };
    // `docker pull -a` sends no tag: every tag then.
    let rx = engine.images_pull_all(req)?;
    Ok(progress_response(rx).await)
}

/// `POST /images/{name}/push?tag=` (the same `X-Registry-Auth`).
pub(super) async fn push(
    engine: &AppState,
    name: &str,
    params: &Params,
    headers: &HeaderMap,
) -> Result<Response> {
    let req = PushRequest {
        name: name.to_string(),
        tag: params.str("tag"),
        credentials: credentials(headers),
    };
    let rx = engine.images_push(req)?;
    Ok(progress_response(rx).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("X-Registry-Auth", v.parse().unwrap());
        h
    }

    #[test]
    fn registry_auth_header() {
        assert!(credentials(&HeaderMap::new()).is_none());
        assert!(
            credentials(&with("e30=")).is_none(),
            "{{}} is no credentials"
        );
        assert!(credentials(&with("!!!")).is_none());
        let enc = base64::engine::general_purpose::URL_SAFE
            .encode(r#"{"username":"u","password":"p?>","serveraddress":"x"}"#);
        let c = credentials(&with(&enc)).unwrap();
        assert_eq!((c.username.as_str(), c.password.as_str()), ("u", "p?>"));
    }
}
