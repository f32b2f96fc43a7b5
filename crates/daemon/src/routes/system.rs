//! `/_ping`, `/version`, `/info`, `/build/prune`.

use api_types::models::{ImageSummary, SystemInfo, SystemVersion};
use api_types::{API_VERSION, MIN_API_VERSION};
use axum::extract::State;
use axum::http::{HeaderName, HeaderValue, header};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};

use super::AppState;
use crate::error::Result;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/_ping", get(ping).head(ping))
        .route("/version", get(version))
        .route("/info", get(info))
        .route("/system/df", get(system_df))
}

/// `HEAD|GET /_ping`: the first call of every CLI command; the headers carry the negotiation.
async fn ping() -> impl IntoResponse {
    let h = |name: &'static str, value: &'static str| {
        (
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        )
    };
    (
        [
            h("api-version", API_VERSION),
            h("ostype", "linux"),
            h("docker-experimental", "false"),
            h("builder-version", "1"),
            h("swarm", "inactive"),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("no-cache, no-store, must-revalidate"),
            ),
            (header::PRAGMA, HeaderValue::from_static("no-cache")),
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            ),
        ],
        "OK",
    )
}

/// `GET /version`: the engine's figures plus the API versions (which only the daemon knows).
async fn version(State(engine): State<AppState>) -> Result<Json<SystemVersion>> {
    let mut v = engine.version().await?;
    v.api_version = Some(API_VERSION.to_string());
    v.min_api_version = Some(MIN_API_VERSION.to_string());
    for c in v.components.iter_mut().flatten() {
        if c.name == "Engine" {
            let details = c.details.get_or_insert_with(Default::default);
            details.insert("ApiVersion".into(), API_VERSION.into());
            details.insert("MinAPIVersion".into(), MIN_API_VERSION.into());
        }
    }
    Ok(Json(v))
}

/// `GET /info`.
async fn info(State(engine): State<AppState>) -> Result<Json<SystemInfo>> {
    Ok(Json(engine.info().await?))
}

/// `GET /system/df` in the 1.47 shape (bollard's model is the newer `*Usage` one). Sections
/// not asked for with `type=` are `null`, as in moby.
#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
struct DiskUsageBody {
    layers_size: i64,
    images: Option<Vec<ImageSummary>>,
    containers: Option<Vec<serde_json::Value>>,
    volumes: Option<Vec<serde_json::Value>>,
    build_cache: Option<Vec<serde_json::Value>>,
}

async fn system_df(
    State(engine): State<AppState>,
    params: super::Params,
) -> Result<Json<DiskUsageBody>> {
    let sections = engine::DfSections::from_types(&params.all("type"))?;
    let df = engine.system_df(sections).await?;
    let (layers_size, images) = df
        .images
        .map_or((0, None), |u| (u.layers_size, Some(u.images)));
    Ok(Json(DiskUsageBody {
        layers_size,
        images,
        containers: df.containers,
        volumes: df.volumes,
        build_cache: sections.build_cache.then(Vec::new),
    }))
}
