//! Endpoints the docker CLI calls that berth has not built yet: empty lists and 404s where the
//! CLI depends on them (`docker ps`, `docker inspect` fall-through), 501 with a message elsewhere.

use axum::Router;
use axum::extract::{MatchedPath, Path};
use axum::http::Method;
use axum::routing::get;

use super::AppState;
use crate::error::DaemonError;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/plugins/{name}/json", get(plugin_inspect))
        // Everything below answers 501 until it is built.
        .route("/plugins", get(not_implemented))
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
