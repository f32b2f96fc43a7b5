//! `GET /containers/{id}/changes` (`docker diff`) and `POST /commit` (`docker commit`).

use api_types::ApiVersion;
use api_types::models::ContainerConfig;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use engine::CommitRequest;
use serde_json::json;

use super::{AppState, JSON_BODY_LIMIT, Params};
use crate::error::{DaemonError, Result};

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/containers/{id}/changes", get(changes))
        .route("/commit", post(commit))
}

/// `[{"Path":"/x","Kind":1},…]`, or `null` when nothing changed (as moby answers).
async fn changes(State(engine): State<AppState>, Path(id): Path<String>) -> Result<Response> {
    Ok(Json(engine.container_changes(&id).await?).into_response())
}

/// The optional config body of a commit: empty (what the docker CLI sends), `null` or `{}`
/// means none, so the container's config is the base. (moby takes `{}`, which docker-py and
/// bollard send, as an empty config to fill from the container's; berth keeps the container's
/// `Hostname`, `Image`, `Tty`… in that case too.) moby decodes it as a create body, so
/// `HostConfig` and the rest are accepted and ignored.
async fn config_body(body: Body) -> Result<Option<ContainerConfig>> {
    let bytes = axum::body::to_bytes(body, JSON_BODY_LIMIT)
        .await
        .map_err(|_| DaemonError::BodyTooLarge {
            limit: JSON_BODY_LIMIT,
        })?;
    let text = bytes.trim_ascii();
    if text.is_empty() || text == b"null" {
        return Ok(None);
    }
    let value: serde_json::Value =
        serde_json::from_slice(text).map_err(|e| DaemonError::BadBody {
            reason: e.to_string(),
        })?;
    if value.as_object().is_some_and(serde_json::Map::is_empty) {
        return Ok(None);
    }
    serde_json::from_value(value)
        .map(Some)
        .map_err(|e| DaemonError::BadBody {
            reason: e.to_string(),
        })
}

/// Whether to pause: the `pause` parameter; absent means yes since API 1.13 (moby).
fn pause(params: &Params, version: Option<ApiVersion>) -> bool {
    match params.get("pause") {
        None | Some("") => version.is_none_or(|v| {
            v >= ApiVersion {
                major: 1,
                minor: 13,
            }
        }),
        Some(_) => params.bool("pause"),
    }
}

async fn commit(
    State(engine): State<AppState>,
    params: Params,
    version: Option<axum::Extension<ApiVersion>>,
    body: Body,
) -> Result<Response> {
    let config = config_body(body).await?;
    let req = CommitRequest {
        container: params.str("container"),
        repo: params.str("repo"),
        tag: params.str("tag"),
        comment: params.str("comment"),
        author: params.str("author"),
        changes: params.all("changes"),
        pause: pause(&params, version.map(|v| v.0)),
        config,
    };
    let id = engine.commit(req).await?;
    Ok((StatusCode::CREATED, Json(json!({"Id": id}))).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pause_defaults_like_moby() {
        let v = |minor| Some(ApiVersion { major: 1, minor });
        assert!(pause(&Params::parse("").unwrap(), v(47)));
        assert!(pause(&Params::parse("pause=").unwrap(), None));
        assert!(!pause(&Params::parse("").unwrap(), v(12)));
        assert!(!pause(&Params::parse("pause=0").unwrap(), v(47)));
        assert!(!pause(&Params::parse("pause=false").unwrap(), v(47)));
        assert!(pause(&Params::parse("pause=1").unwrap(), v(12)));
    }

    #[tokio::test]
    async fn config_bodies() {
        assert!(config_body(Body::empty()).await.unwrap().is_none());
        assert!(config_body(Body::from(" null\n")).await.unwrap().is_none());
        assert!(config_body(Body::from("{}")).await.unwrap().is_none());
        let c = config_body(Body::from(r#"{"Cmd":["sh"],"HostConfig":{}}"#))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(c.cmd, Some(vec!["sh".to_string()]));
        assert!(matches!(
            config_body(Body::from("{")).await,
            Err(DaemonError::BadBody { .. })
        ));
    }
}
