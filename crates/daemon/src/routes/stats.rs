//! `GET /containers/{id}/stats` (`docker stats`) and `POST /containers/{id}/update`
//! (`docker update`).
//!
//! Stats are a chunked body of JSON objects, one per line, each its own chunk so it is flushed
//! at once; the engine's sampler stops when the client goes away (the body, and with it the
//! channel, is dropped).

use api_types::ApiVersion;
use api_types::models::ContainerUpdateBody;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::StreamExt;
use serde_json::json;
use tokio_stream::wrappers::ReceiverStream;

use super::containers::JsonBody;
use super::{AppState, Params, bool_value};
use crate::error::{DaemonError, Result};

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/containers/{id}/stats", get(stats))
        .route("/containers/{id}/update", post(update))
}

/// moby's `BoolValueOrDefault`: the default when the parameter is absent.
fn bool_or(params: &Params, name: &str, default: bool) -> bool {
    params.get(name).map_or(default, bool_value)
}

/// `?stream=` (default true) and, from API 1.41, `?one-shot=`.
async fn stats(
    State(engine): State<AppState>,
    Path(id): Path<String>,
    params: Params,
    version: Option<axum::Extension<ApiVersion>>,
) -> Result<Response> {
    let stream = bool_or(&params, "stream", true);
    let one_shot_known = version.is_none_or(|v| {
        v.0 >= ApiVersion {
            major: 1,
            minor: 41,
        }
    });
    let one_shot = one_shot_known && bool_or(&params, "one-shot", false);
    if stream && one_shot {
        return Err(DaemonError::Engine(engine::EngineError::InvalidRequest(
            "cannot have stream=true and one-shot=true".into(),
        )));
    }
    let rx = engine.container_stats(&id, stream, one_shot)?;
    let body = ReceiverStream::new(rx).map(|s| {
        let mut line = serde_json::to_vec(&s).unwrap_or_else(|_| b"{}".to_vec());
        line.push(b'\n');
        Ok::<_, std::io::Error>(Bytes::from(line))
    });
    Ok((
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        Body::from_stream(body),
    )
        .into_response())
}

/// `{"Warnings":null}` (moby's answer when nothing needs saying).
async fn update(
    State(engine): State<AppState>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<ContainerUpdateBody>,
) -> Result<Response> {
    let warnings = engine.container_update(&id, body).await?;
    Ok(Json(json!({ "Warnings": warnings })).into_response())
}
