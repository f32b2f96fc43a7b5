//! `POST /build` (the legacy builder `docker build` falls back to without buildx) and
//! `POST /build/prune`: query parameters parsed as moby's `newImageBuildOptions` parses them
//! (leniently: empty JSON values and unknown keys are accepted, podman#13889), the tar context
//! streamed to the engine, and its messages streamed back as Docker's JSON stream.

use std::collections::BTreeMap;

use api_types::models::BuildPruneResponse;
use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine as _;
use engine::BuildRequest;
use engine::RegistryCredentials as Credentials;
use futures_util::TryStreamExt;
use tokio_util::io::StreamReader;

use super::{AppState, Params};
use crate::error::{DaemonError, Result};
use crate::stream::progress_response;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/build", post(build))
        .route("/build/prune", post(prune))
}

/// A JSON query value (`buildargs`, `labels`, `cachefrom`); empty means none.
fn json_param<T: serde::de::DeserializeOwned + Default>(
    params: &Params,
    name: &'static str,
) -> Result<T> {
    match params.get(name) {
        None => Ok(T::default()),
        Some(v) if v.trim().is_empty() || v.trim() == "null" => Ok(T::default()),
        Some(v) => serde_json::from_str(v).map_err(|e| DaemonError::BadParameter {
            name,
            reason: e.to_string(),
        }),
    }
}

/// `X-Registry-Config`: base64url JSON of registry → auth config, for `FROM` pulls.
fn registry_config(headers: &HeaderMap) -> BTreeMap<String, Credentials> {
    #[derive(serde::Deserialize)]
    struct Auth {
        #[serde(default)]
        username: String,
        #[serde(default)]
        password: String,
    }
    let Some(raw) = headers
        .get("x-registry-config")
        .and_then(|v| v.to_str().ok())
    else {
        return BTreeMap::new();
    };
    let trimmed = raw.trim().trim_end_matches('=');
    let Ok(bytes) = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(trimmed)
        .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(trimmed))
    else {
        return BTreeMap::new();
    };
    let map: BTreeMap<String, Auth> = serde_json::from_slice(&bytes).unwrap_or_default();
    map.into_iter()
        .filter(|(_, a)| !a.username.is_empty())
        .map(|(k, a)| {
            (
                k,
                Credentials {
                    username: a.username,
                    password: a.password,
                },
            )
        })
        .collect()
}

/// The request as moby reads it.
fn request(params: &Params, headers: &HeaderMap) -> Result<BuildRequest> {
    let int = |name: &'static str| -> Result<i64> {
        match params.get(name) {
            None | Some("") => Ok(0),
            Some(v) => v.parse().map_err(|_| DaemonError::BadParameter {
                name,
                reason: format!("invalid value {v:?}"),
            }),
        }
    };
    // `rm` defaults to true; `forcerm` implies it.
    let rm = params.get("rm").is_none_or(super::bool_value);
    Ok(BuildRequest {
        dockerfile: params.str("dockerfile"),
        tags: params
            .all("t")
            .into_iter()
            .filter(|t| !t.is_empty())
            .collect(),
        build_args: json_param(params, "buildargs")?,
        labels: json_param(params, "labels")?,
        cache_from: json_param(params, "cachefrom")?,
        no_cache: params.bool("nocache"),
        pull: params.bool("pull"),
        remove: rm || params.bool("forcerm"),
        force_remove: params.bool("forcerm"),
        quiet: params.bool("q"),
        target: params.str("target"),
        network_mode: params.str("networkmode"),
        // One `extrahosts=` per `--add-host` (older clients join them with commas).
        extra_hosts: params
            .all("extrahosts")
            .iter()
            .flat_map(|v| v.split(','))
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
        shm_size: int("shmsize")?,
        platform: params.str("platform"),
        remote: params.str("remote"),
        auth: registry_config(headers),
    })
}

async fn build(
    State(engine): State<AppState>,
    params: Params,
    headers: HeaderMap,
    body: Body,
) -> Result<Response> {
    let req = request(&params, &headers)?;
    let body = StreamReader::new(body.into_data_stream().map_err(std::io::Error::other));
    let rx = engine.build(req, body)?;
    Ok(progress_response(rx).await)
}

async fn prune(State(engine): State<AppState>, params: Params) -> Result<Response> {
    let _filters = params.filters()?;
    let deleted = engine.build_prune().await?;
    // Cache entries point at images; removing them frees nothing by itself.
    Ok(Json(BuildPruneResponse {
        caches_deleted: Some(deleted),
        space_reclaimed: Some(0),
    })
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_as_moby() {
        let p = Params::parse(
            "dockerfile=sub%2FDockerfile&t=a%3A1&t=b&version=1&buildargs=%7B%22X%22%3A%221%22%2C%22Y%22%3Anull%7D&labels=&cachefrom=%5B%5D&rm=0&forcerm=1&q=1&shmsize=67108864&extrahosts=h%3A1.2.3.4&extrahosts=h2%3A5.6.7.8",
        )
        .unwrap();
        let r = request(&p, &HeaderMap::new()).unwrap();
        assert_eq!(r.dockerfile, "sub/Dockerfile");
        assert_eq!(r.tags, vec!["a:1", "b"]);
        assert_eq!(r.build_args.get("X"), Some(&Some("1".to_string())));
        assert_eq!(r.build_args.get("Y"), Some(&None));
        assert!(r.labels.is_empty() && r.cache_from.is_empty());
        assert!(r.remove && r.force_remove && r.quiet);
        assert_eq!(r.shm_size, 67108864);
        assert_eq!(r.extra_hosts, vec!["h:1.2.3.4", "h2:5.6.7.8"]);
        let r = request(&Params::parse("").unwrap(), &HeaderMap::new()).unwrap();
        assert!(r.remove, "rm defaults to true");
        assert!(request(&Params::parse("buildargs=nope").unwrap(), &HeaderMap::new()).is_err());
    }

    #[test]
    fn registry_config_header() {
        let mut h = HeaderMap::new();
        let v = base64::engine::general_purpose::URL_SAFE
            .encode(r#"{"localhost:5000":{"username":"u","password":"p"},"x":{}}"#);
        h.insert("x-registry-config", v.parse().unwrap());
        let m = registry_config(&h);
        assert_eq!(m.len(), 1);
        assert_eq!(m["localhost:5000"].username, "u");
        h.insert("x-registry-config", "e30=".parse().unwrap());
        assert!(registry_config(&h).is_empty());
    }
}
