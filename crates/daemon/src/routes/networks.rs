//! `/networks…`: create (201), list with filters, inspect, remove (204), prune, connect and
//! disconnect (200, empty). Below API 1.44 the CLI also sends `CheckDuplicate`, which berth
//! always does anyway (a duplicate name is a 409).

use api_types::models::{NetworkConnectRequest, NetworkCreateRequest, NetworkDisconnectRequest};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};

use super::containers::JsonBody;
use super::{AppState, Params};
use crate::error::Result;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/networks", get(list))
        .route("/networks/create", post(create))
        .route("/networks/prune", post(prune))
        .route("/networks/{id}", get(inspect).delete(remove))
        .route("/networks/{id}/connect", post(connect))
        .route("/networks/{id}/disconnect", post(disconnect))
}

async fn create(
    State(engine): State<AppState>,
    JsonBody(body): JsonBody<NetworkCreateRequest>,
) -> Result<Response> {
    let v = engine.network_create(body).await?;
    Ok((StatusCode::CREATED, Json(v)).into_response())
}

async fn list(State(engine): State<AppState>, params: Params) -> Result<Response> {
    let filters = params.filters()?;
    Ok(Json(engine.network_list(&filters).await?).into_response())
}

async fn inspect(State(engine): State<AppState>, Path(id): Path<String>) -> Result<Response> {
    Ok(Json(engine.network_inspect(&id).await?).into_response())
}

async fn remove(State(engine): State<AppState>, Path(id): Path<String>) -> Result<Response> {
    engine.network_remove(&id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn prune(State(engine): State<AppState>, params: Params) -> Result<Response> {
    let filters = params.filters()?;
    Ok(Json(engine.network_prune(&filters).await?).into_response())
}

async fn connect(
    State(engine): State<AppState>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<NetworkConnectRequest>,
) -> Result<Response> {
    engine.network_connect(&id, body).await?;
    Ok(StatusCode::OK.into_response())
}

async fn disconnect(
    State(engine): State<AppState>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<NetworkDisconnectRequest>,
) -> Result<Response> {
    engine.network_disconnect(&id, body).await?;
    Ok(StatusCode::OK.into_response())
}
