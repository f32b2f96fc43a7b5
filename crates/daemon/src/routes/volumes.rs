//! `/volumes…`: create (201), list with filters, inspect, remove (204; `force`), prune. The
//! one API-version quirk lives here: below 1.42 a prune without `all` removes named volumes
//! too (moby adds `all=true` for old clients).

use api_types::ApiVersion;
use api_types::models::VolumeCreateRequest;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};

use super::containers::JsonBody;
use super::{AppState, Params};
use crate::error::Result;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/volumes", get(list))
        .route("/volumes/create", post(create))
        .route("/volumes/prune", post(prune))
        .route("/volumes/{name}", get(inspect).delete(remove))
}

/// The first API version whose volume prune keeps named volumes unless `all` is set.
const PRUNE_ANONYMOUS_ONLY: ApiVersion = ApiVersion {
    major: 1,
    minor: 42,
};

async fn create(
    State(engine): State<AppState>,
    JsonBody(body): JsonBody<VolumeCreateRequest>,
) -> Result<Response> {
    let v = engine.volume_create(body).await?;
    Ok((StatusCode::CREATED, Json(v)).into_response())
}

async fn list(State(engine): State<AppState>, params: Params) -> Result<Response> {
    let filters = params.filters()?;
    Ok(Json(engine.volume_list(&filters).await?).into_response())
}

async fn inspect(State(engine): State<AppState>, Path(name): Path<String>) -> Result<Response> {
    Ok(Json(engine.volume_inspect(&name).await?).into_response())
}

async fn remove(
    State(engine): State<AppState>,
    Path(name): Path<String>,
    params: Params,
) -> Result<Response> {
    engine.volume_remove(&name, params.bool("force")).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn prune(
    State(engine): State<AppState>,
    params: Params,
    version: Option<Extension<ApiVersion>>,
) -> Result<Response> {
    let mut filters = params.filters()?;
    if version.is_some_and(|Extension(v)| v < PRUNE_ANONYMOUS_ONLY) && !filters.contains("all") {
        filters.add("all", "true");
    }
    Ok(Json(engine.volume_prune(&filters).await?).into_response())
}
