//! Endpoints the docker CLI calls that berth has not built yet: empty lists and 404s where the
//! CLI depends on them (`docker ps`, `docker inspect` fall-through), 501 with a message elsewhere.

use axum::extract::{MatchedPath, Path, State};
use axum::http::Method;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

use super::AppState;
use crate::error::{DaemonError, Result};

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/networks/{id}",
            get(network_inspect).delete(not_implemented),
        )
        .route("/plugins/{name}/json", get(plugin_inspect))
        // Everything below answers 501 until it is built.
        .route("/build", post(not_implemented))
        .route("/auth", post(not_implemented))
        .route("/networks", get(not_implemented))
        .route("/networks/create", post(not_implemented))
        .route("/networks/prune", post(networks_prune))
        .route("/networks/{id}/{action}", post(not_implemented))
        .route("/plugins", get(not_implemented))
}

/// `POST /networks/prune`: no user networks exist yet.
async fn networks_prune() -> Json<Value> {
    Json(json!({"NetworksDeleted": null}))
}

async fn network_inspect(
    State(engine): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<()>> {
    engine.network_inspect(&id).await?;
    Ok(Json(()))
}

/// berth has no plugins: always 404, which ends `docker inspect`'s fall-through.
async fn plugin_inspect(Path(name): Path<String>) -> DaemonError {
    DaemonError::NoSuchPlugin(name)
}

async fn not_implemented(method: Method, path: Option<MatchedPath>) -> DaemonError {
    let path = path.map_or_else(|| "this endpoint".to_string(), |p| p.as_str().to_string());
    DaemonError::NotImplemented {
        what: format!("{method} {path}"),
    }
}
