//! `/images/…`. Image names contain `/` and `:` (`/images/localhost:5000/bb:v1/json`), so one
//! catch-all route per method takes the rest of the path and the known suffixes are peeled off
//! from the right.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use engine::ImportRequest;
use futures_util::TryStreamExt;
use tokio_util::io::StreamReader;

use super::{AppState, Params};
use crate::error::{DaemonError, Result};
use crate::stream::{bytes_response, progress_response};

pub(super) fn routes() -> Router<AppState> {
    Router::new().route(
        "/images/{*rest}",
        get(get_images).post(post_images).delete(delete_image),
    )
}

/// What a GET under `/images/` asks for.
#[derive(Debug, PartialEq, Eq)]
enum GetOp<'a> {
    List,
    SaveMany,
    Search,
    Inspect(&'a str),
    History(&'a str),
    SaveOne(&'a str),
    Unknown,
}

/// What a POST under `/images/` asks for.
#[derive(Debug, PartialEq, Eq)]
enum PostOp<'a> {
    Load,
    Create,
    Prune,
    Tag(&'a str),
    Push(&'a str),
    Unknown,
}

fn get_op(rest: &str) -> GetOp<'_> {
    match rest {
        "json" => GetOp::List,
        "get" => GetOp::SaveMany,
        "search" => GetOp::Search,
        _ => {
            if let Some(name) = rest.strip_suffix("/json") {
                GetOp::Inspect(name)
            } else if let Some(name) = rest.strip_suffix("/history") {
                GetOp::History(name)
            } else if let Some(name) = rest.strip_suffix("/get") {
                GetOp::SaveOne(name)
            } else {
                GetOp::Unknown
            }
        }
    }
}

fn post_op(rest: &str) -> PostOp<'_> {
    match rest {
        "load" => PostOp::Load,
        "create" => PostOp::Create,
        "prune" => PostOp::Prune,
        _ => {
            if let Some(name) = rest.strip_suffix("/tag") {
                PostOp::Tag(name)
            } else if let Some(name) = rest.strip_suffix("/push") {
                PostOp::Push(name)
            } else {
                PostOp::Unknown
            }
        }
    }
}

async fn get_images(
    State(engine): State<AppState>,
    Path(rest): Path<String>,
    params: Params,
    headers: HeaderMap,
) -> Result<Response> {
    match get_op(&rest) {
        GetOp::List => {
            let filters = params.filters()?;
            let list = engine
                .images_list(
                    params.bool("all"),
                    &filters,
                    params.bool("shared-size"),
                    params.bool("digests"),
                )
                .await?;
            Ok(Json(list).into_response())
        }
        GetOp::Inspect(name) => Ok(Json(engine.image_inspect(name).await?).into_response()),
        GetOp::History(name) => Ok(Json(engine.image_history(name).await?).into_response()),
        GetOp::SaveMany => {
            let names = params.all("names");
            if names.is_empty() {
                return Err(DaemonError::MissingParameter { name: "names" });
            }
            save(&engine, names).await
        }
        GetOp::SaveOne(name) => save(&engine, vec![name.to_string()]).await,
        GetOp::Search => super::search::search(&engine, &params, &headers).await,
        GetOp::Unknown => Err(DaemonError::PageNotFound),
    }
}

async fn save(engine: &AppState, names: Vec<String>) -> Result<Response> {
    let rx = engine.images_save(names).await?;
    Ok(bytes_response(rx, "application/x-tar"))
}

async fn post_images(
    State(engine): State<AppState>,
    Path(rest): Path<String>,
    params: Params,
    headers: HeaderMap,
    body: Body,
) -> Result<Response> {
    match post_op(&rest) {
        PostOp::Load => {
            let rx = engine.images_load(reader(body), params.bool("quiet"));
            Ok(progress_response(rx).await)
        }
        PostOp::Create => create(&engine, &params, &headers, body).await,
        PostOp::Prune => {
            let filters = params.filters()?;
            Ok(Json(engine.images_prune(&filters).await?).into_response())
        }
        PostOp::Tag(name) => {
            engine
                .image_tag(name, &params.str("repo"), &params.str("tag"))
                .await?;
            Ok(StatusCode::CREATED.into_response())
        }
        PostOp::Push(name) => super::pull::push(&engine, name, &params, &headers).await,
        PostOp::Unknown => Err(DaemonError::PageNotFound),
    }
}

/// `POST /images/create`: pull (`fromImage=`) or import from the request body (`fromSrc=-`).
async fn create(
    engine: &AppState,
    params: &Params,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response> {
    if params.get("fromImage").is_some_and(|v| !v.is_empty()) {
        return super::pull::pull(engine, params, headers).await;
    }
    match params.get("fromSrc") {
        Some("-") => {
            let req = ImportRequest {
                repo: params.str("repo"),
                tag: params.str("tag"),
                changes: params.all("changes"),
                message: params.str("message"),
                platform: params.str("platform"),
            };
            let rx = engine.images_import(reader(body), req)?;
            Ok(progress_response(rx).await)
        }
        Some(src) if !src.is_empty() => Err(DaemonError::NotImplemented {
            what: "importing from a URL (fromSrc=<url>)".into(),
        }),
        _ => Err(DaemonError::MissingParameter {
            name: "fromImage or fromSrc",
        }),
    }
}

async fn delete_image(
    State(engine): State<AppState>,
    Path(name): Path<String>,
    params: Params,
) -> Result<Response> {
    let items = engine
        .image_delete(&name, params.bool("force"), params.bool("noprune"))
        .await?;
    Ok(Json(items).into_response())
}

/// The request body as an `AsyncRead`, streamed (never buffered whole).
fn reader(body: Body) -> impl tokio::io::AsyncRead + Send + Unpin + 'static {
    StreamReader::new(body.into_data_stream().map_err(std::io::Error::other))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peel_get_suffixes() {
        assert_eq!(get_op("json"), GetOp::List);
        assert_eq!(get_op("get"), GetOp::SaveMany);
        assert_eq!(
            get_op("localhost:5000/bb:v1/json"),
            GetOp::Inspect("localhost:5000/bb:v1")
        );
        assert_eq!(get_op("json/json"), GetOp::Inspect("json"));
        assert_eq!(get_op("a/b/history"), GetOp::History("a/b"));
        assert_eq!(get_op("busybox/get"), GetOp::SaveOne("busybox"));
        assert_eq!(get_op("busybox"), GetOp::Unknown);
    }

    #[test]
    fn peel_post_suffixes() {
        assert_eq!(post_op("load"), PostOp::Load);
        assert_eq!(post_op("create"), PostOp::Create);
        assert_eq!(post_op("prune"), PostOp::Prune);
        assert_eq!(post_op("myrepo/bb:v1/tag"), PostOp::Tag("myrepo/bb:v1"));
        assert_eq!(
            post_op("localhost:5999/bb/push"),
            PostOp::Push("localhost:5999/bb")
        );
        assert_eq!(post_op("x"), PostOp::Unknown);
    }
}
