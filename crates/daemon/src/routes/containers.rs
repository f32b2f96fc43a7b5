//! `/containers/…`: create, lifecycle, wait, list, inspect, logs, attach.

use std::convert::Infallible;

use api_types::ApiVersion;
use api_types::models::ContainerCreateBody;
use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, MatchedPath, Path, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use engine::{AttachRequest, LogsRequest, WaitCondition};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use serde_json::json;
use tokio_stream::wrappers::ReceiverStream;

use super::{AppState, JSON_BODY_LIMIT, Params};
use crate::error::{DaemonError, Result};

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/containers/create", post(create))
        .route("/containers/json", get(list))
        .route("/containers/prune", post(prune))
        .route("/containers/{id}/json", get(inspect))
        .route("/containers/{id}", axum::routing::delete(remove))
        .route(
            "/containers/{id}/{action}",
            post(post_action)
                .get(get_action)
                .put(not_implemented)
                .head(not_implemented),
        )
}

/// A JSON body read with our limit and our error shape (`{"message"}` with serde's text).
pub(crate) struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = DaemonError;

    async fn from_request(req: Request, _: &S) -> Result<Self> {
        let bytes = axum::body::to_bytes(req.into_body(), JSON_BODY_LIMIT)
            .await
            .map_err(|_| DaemonError::BodyTooLarge {
                limit: JSON_BODY_LIMIT,
            })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return serde_json::from_slice(b"{}")
                .map(JsonBody)
                .map_err(|e| DaemonError::BadBody {
                    reason: e.to_string(),
                });
        }
        serde_json::from_slice(&bytes)
            .map(JsonBody)
            .map_err(|e| DaemonError::BadBody {
                reason: e.to_string(),
            })
    }
}

async fn create(
    State(engine): State<AppState>,
    params: Params,
    JsonBody(body): JsonBody<ContainerCreateBody>,
) -> Result<Response> {
    let name = params.get("name").map(ToString::to_string);
    let id = engine.container_create(name.as_deref(), body).await?;
    Ok((StatusCode::CREATED, Json(json!({"Id": id, "Warnings": []}))).into_response())
}

async fn list(State(engine): State<AppState>, params: Params) -> Result<Response> {
    let filters = params.filters()?;
    let limit = match params.get("limit").filter(|l| !l.is_empty()) {
        Some(l) => Some(l.parse::<i64>().map_err(|_| DaemonError::BadParameter {
            name: "limit",
            reason: format!("{l:?} is not a number"),
        })?),
        None => None,
    };
    let list = engine
        .containers_list(params.bool("all"), limit, params.bool("size"), &filters)
        .await?;
    Ok(Json(list).into_response())
}

/// `POST /containers/prune?filters=`.
async fn prune(State(engine): State<AppState>, params: Params) -> Result<Response> {
    let filters = params.filters()?;
    Ok(Json(engine.containers_prune(&filters).await?).into_response())
}

async fn inspect(
    State(engine): State<AppState>,
    Path(id): Path<String>,
    params: Params,
) -> Result<Response> {
    Ok(Json(engine.container_inspect(&id, params.bool("size")).await?).into_response())
}

async fn remove(
    State(engine): State<AppState>,
    Path(id): Path<String>,
    params: Params,
) -> Result<Response> {
    engine
        .container_remove_with_volumes(&id, params.bool("force"), params.bool("v"))
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn opt_i64(params: &Params, name: &'static str) -> Result<Option<i64>> {
    match params.get(name).filter(|v| !v.is_empty()) {
        Some(v) => v
            .parse::<i64>()
            .map(Some)
            .map_err(|_| DaemonError::BadParameter {
                name,
                reason: format!("{v:?} is not a number"),
            }),
        None => Ok(None),
    }
}

fn opt_u16(params: &Params, name: &'static str) -> Result<u16> {
    let v = params.str(name);
    v.parse::<u16>().map_err(|_| DaemonError::BadParameter {
        name,
        reason: format!("{v:?} is not a valid size"),
    })
}

async fn post_action(
    State(engine): State<AppState>,
    Path((id, action)): Path<(String, String)>,
    params: Params,
    version: Option<axum::Extension<ApiVersion>>,
    req: Request,
) -> Result<Response> {
    let signal = params.get("signal").map(ToString::to_string);
    match action.as_str() {
        "start" => {
            if engine.container_start(&id).await? {
                Ok(StatusCode::NO_CONTENT.into_response())
            } else {
                Ok(StatusCode::NOT_MODIFIED.into_response())
            }
        }
        "stop" => {
            let t = opt_i64(&params, "t")?;
            if engine.container_stop(&id, t, signal.as_deref()).await? {
                Ok(StatusCode::NO_CONTENT.into_response())
            } else {
                Ok(StatusCode::NOT_MODIFIED.into_response())
            }
        }
        "restart" => {
            let t = opt_i64(&params, "t")?;
            engine.container_restart(&id, t, signal.as_deref()).await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        "kill" => {
            engine.container_kill(&id, signal.as_deref()).await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        "rename" => {
            let name = params.str("name");
            if name.is_empty() {
                return Err(DaemonError::MissingParameter { name: "name" });
            }
            engine.container_rename(&id, &name)?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        "resize" => {
            let h = opt_u16(&params, "h")?;
            let w = opt_u16(&params, "w")?;
            engine.container_resize(&id, h, w).await?;
            Ok(StatusCode::OK.into_response())
        }
        "wait" => {
            let cond = WaitCondition::parse(params.get("condition").unwrap_or_default())?;
            let fut = engine.container_wait(&id, cond)?;
            let body = futures_util::stream::once(async move {
                let r = fut.await;
                let v = json!({"StatusCode": r.status_code, "Error": r.error.map(|m| json!({"Message": m}))});
                let mut b = serde_json::to_vec(&v).unwrap_or_default();
                b.push(b'\n');
                Ok::<_, Infallible>(Bytes::from(b))
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
        "pause" => {
            engine.container_pause(&id).await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        "unpause" => {
            engine.container_unpause(&id).await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        "attach" => attach(engine, id, params, version.map(|v| v.0), req),
        _ => not_found_action(Method::POST, &action),
    }
}

fn not_found_action(method: Method, action: &str) -> Result<Response> {
    Err(DaemonError::NotImplemented {
        what: format!("{method} /containers/{{id}}/{action}"),
    })
}

fn attach(
    engine: AppState,
    id: String,
    params: Params,
    version: Option<ApiVersion>,
    req: Request,
) -> Result<Response> {
    let tty = engine.container_attach_check(&id)?;
    let areq = AttachRequest {
        stdin: params.bool("stdin"),
        stdout: params.bool("stdout"),
        stderr: params.bool("stderr"),
        stream: params.bool("stream"),
        logs: params.bool("logs"),
        detach_keys: params.get("detachKeys").map(str::to_string),
    };
    let ct = super::hijack::content_type(tty, version);
    Ok(super::hijack::hijack(req, ct, move |conn| async move {
        if let Err(e) = engine.container_attach(&id, areq, conn).await {
            tracing::debug!(error = %e, "attach ended with an error");
        }
    }))
}

/// `since`/`until`: unix seconds with optional fraction (`1700000000.123456789`).
fn parse_time(
    params: &Params,
    name: &'static str,
) -> Result<Option<chrono::DateTime<chrono::Utc>>> {
    let Some(v) = params.get(name).filter(|v| !v.is_empty() && *v != "0") else {
        return Ok(None);
    };
    let bad = || DaemonError::BadParameter {
        name,
        reason: format!("{v:?} is not a timestamp"),
    };
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(v) {
        return Ok(Some(t.with_timezone(&chrono::Utc)));
    }
    let (secs, frac) = v.split_once('.').unwrap_or((v, ""));
    let secs: i64 = secs.parse().map_err(|_| bad())?;
    let nanos: u32 = if frac.is_empty() {
        0
    } else {
        let f: String = frac.chars().chain(std::iter::repeat('0')).take(9).collect();
        f.parse().map_err(|_| bad())?
    };
    Ok(chrono::DateTime::from_timestamp(secs, nanos))
}

async fn get_action(
    State(engine): State<AppState>,
    Path((id, action)): Path<(String, String)>,
    params: Params,
    version: Option<axum::Extension<ApiVersion>>,
) -> Result<Response> {
    if action == "top" {
        let top = engine
            .container_top(&id, params.get("ps_args").unwrap_or_default())
            .await?;
        return Ok(Json(top).into_response());
    }
    if action != "logs" {
        return not_found_action(Method::GET, &action);
    }
    let tail = match params.get("tail").filter(|t| !t.is_empty() && *t != "all") {
        Some(t) => match t.parse::<i64>() {
            Ok(n) if n >= 0 => Some(usize::try_from(n).unwrap_or(usize::MAX)),
            Ok(_) => None,
            Err(_) => {
                return Err(DaemonError::BadParameter {
                    name: "tail",
                    reason: format!("{t:?} is not a number"),
                });
            }
        },
        None => None,
    };
    let req = LogsRequest {
        stdout: params.bool("stdout"),
        stderr: params.bool("stderr"),
        follow: params.bool("follow"),
        tail,
        since: parse_time(&params, "since")?,
        until: parse_time(&params, "until")?,
        timestamps: params.bool("timestamps"),
    };
    if !req.stdout && !req.stderr {
        return Err(DaemonError::BadParameter {
            name: "stdout",
            reason: "you must choose at least one stream".into(),
        });
    }
    let (tty, rx) = engine.container_logs(&id, req)?;
    let new = version.is_none_or(|v| {
        v.0 >= ApiVersion {
            major: 1,
            minor: 42,
        }
    });
    let content_type = match (tty, new) {
        (false, true) => "application/vnd.docker.multiplexed-stream",
        (true, true) => "application/vnd.docker.raw-stream",
        _ => "application/vnd.docker.raw-stream",
    };
    let stream = ReceiverStream::new(rx).map(|r| r.map_err(std::io::Error::other));
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
        Body::from_stream(stream),
    )
        .into_response())
}

async fn not_implemented(method: Method, path: Option<MatchedPath>) -> DaemonError {
    let path = path.map_or_else(|| "this endpoint".to_string(), |p| p.as_str().to_string());
    DaemonError::NotImplemented {
        what: format!("{method} {path}"),
    }
}
