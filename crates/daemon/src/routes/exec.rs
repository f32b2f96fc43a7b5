//! `docker exec`: `POST /containers/{id}/exec`, `POST /exec/{id}/start` (detached, or a hijacked
//! stream), `GET /exec/{id}/json`, `POST /exec/{id}/resize`.

use api_types::ApiVersion;
use api_types::models::{ExecConfig, ExecStartConfig};
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use engine::ExecStartRequest;
use serde_json::json;

use super::containers::JsonBody;
use super::hijack::{content_type, hijack};
use super::{AppState, JSON_BODY_LIMIT, Params};
use crate::error::{DaemonError, Result};

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/containers/{id}/exec", post(create))
        .route("/exec/{id}/start", post(start))
        .route("/exec/{id}/json", get(inspect))
        .route("/exec/{id}/resize", post(resize))
}

async fn create(
    State(engine): State<AppState>,
    Path(id): Path<String>,
    version: Option<axum::Extension<ApiVersion>>,
    JsonBody(mut body): JsonBody<ExecConfig>,
) -> Result<Response> {
    if version.is_some_and(|v| {
        v.0 < ApiVersion {
            major: 1,
            minor: 42,
        }
    }) {
        body.console_size = None;
    }
    let id = engine.exec_create(&id, body)?;
    Ok((StatusCode::CREATED, Json(json!({"Id": id}))).into_response())
}

/// The console size of a start body (`[rows, cols]`, ignored below 1.42 like moby).
fn console_size(body: &ExecStartConfig, version: Option<ApiVersion>) -> Result<Option<(u16, u16)>> {
    let Some(v) = body.console_size.as_ref() else {
        return Ok(None);
    };
    if version.is_some_and(|v| {
        v < ApiVersion {
            major: 1,
            minor: 42,
        }
    }) {
        return Ok(None);
    }
    if v.len() != 2 {
        return Err(DaemonError::BadParameter {
            name: "ConsoleSize",
            reason: "must have two elements".into(),
        });
    }
    if v[0] == 0 || v[1] == 0 {
        return Ok(None);
    }
    Ok(Some((
        u16::try_from(v[0]).unwrap_or(u16::MAX),
        u16::try_from(v[1]).unwrap_or(u16::MAX),
    )))
}

async fn start(
    State(engine): State<AppState>,
    Path(id): Path<String>,
    version: Option<axum::Extension<ApiVersion>>,
    req: Request,
) -> Result<Response> {
    let version = version.map(|v| v.0);
    // The body first (the request is kept for the upgrade).
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, JSON_BODY_LIMIT)
        .await
        .map_err(|_| DaemonError::BodyTooLarge {
            limit: JSON_BODY_LIMIT,
        })?;
    let cfg: ExecStartConfig = if bytes.iter().all(u8::is_ascii_whitespace) {
        ExecStartConfig::default()
    } else {
        serde_json::from_slice(&bytes).map_err(|e| DaemonError::BadBody {
            reason: e.to_string(),
        })?
    };
    let sreq = ExecStartRequest {
        detach: cfg.detach.unwrap_or(false),
        console_size: console_size(&cfg, version)?,
    };
    let tty = engine.exec_check(&id)?;
    if sreq.detach {
        engine.exec_start_detached(&id, sreq).await?;
        return Ok(StatusCode::OK.into_response());
    }
    let req = Request::from_parts(parts, axum::body::Body::empty());
    Ok(hijack(
        req,
        content_type(tty, version),
        move |conn| async move {
            if let Err(e) = engine.exec_start_attached(&id, sreq, conn).await {
                tracing::debug!(exec = %id, error = %e, "exec start failed");
            }
        },
    ))
}

async fn inspect(State(engine): State<AppState>, Path(id): Path<String>) -> Result<Response> {
    Ok(Json(engine.exec_inspect(&id)?).into_response())
}

async fn resize(
    State(engine): State<AppState>,
    Path(id): Path<String>,
    params: Params,
) -> Result<Response> {
    let size = |name: &'static str| -> Result<u16> {
        let v = params.str(name);
        v.parse::<u16>().map_err(|_| DaemonError::BadParameter {
            name,
            reason: format!("{v:?} is not a valid size"),
        })
    };
    let (h, w) = (size("h")?, size("w")?);
    engine.exec_resize(&id, h, w).await?;
    Ok(StatusCode::OK.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn console_sizes() {
        let v47 = Some(ApiVersion {
            major: 1,
            minor: 47,
        });
        let body = |v: Option<Vec<usize>>| ExecStartConfig {
            console_size: v,
            ..Default::default()
        };
        assert_eq!(console_size(&body(None), v47).unwrap(), None);
        assert_eq!(
            console_size(&body(Some(vec![24, 80])), v47).unwrap(),
            Some((24, 80))
        );
        assert_eq!(console_size(&body(Some(vec![0, 0])), v47).unwrap(), None);
        assert!(console_size(&body(Some(vec![1])), v47).is_err());
        let v41 = Some(ApiVersion {
            major: 1,
            minor: 41,
        });
        assert_eq!(console_size(&body(Some(vec![24, 80])), v41).unwrap(), None);
    }
}
