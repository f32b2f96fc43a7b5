//! `docker cp` and `docker export`: `HEAD`/`GET`/`PUT /containers/{id}/archive` and
//! `GET /containers/{id}/export`.
//!
//! HEAD and GET carry the path's stat as base64 JSON in `X-Docker-Container-Path-Stat` (the
//! docker CLI refuses a GET answer without it). Tars are streamed both ways: the GET and export
//! bodies are chunked and fed from the engine's byte stream, an error in the middle aborting
//! the transfer; the PUT body (chunked, any content type) is read as it arrives, never buffered
//! whole.

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use engine::{ExtractRequest, PathStat};
use futures_util::TryStreamExt;
use tokio_util::io::StreamReader;

use super::{AppState, Params};
use crate::error::{DaemonError, Result};
use crate::stream::bytes_response;

/// The stat header's name.
const PATH_STAT_HEADER: &str = "X-Docker-Container-Path-Stat";

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/containers/{id}/archive",
            get(get_archive).head(head_archive).put(put_archive),
        )
        .route("/containers/{id}/export", get(export))
}

/// Standard base64 (with padding), as Go's `base64.StdEncoding`.
fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn stat_header(stat: &PathStat) -> Result<HeaderValue> {
    let json = serde_json::to_vec(stat).map_err(|e| DaemonError::BadBody {
        reason: e.to_string(),
    })?;
    // Base64 is ASCII, always a valid header value.
    HeaderValue::from_str(&base64(&json)).map_err(|e| DaemonError::BadBody {
        reason: e.to_string(),
    })
}

/// The `path` parameter, which moby requires.
fn path_param(params: &Params) -> Result<String> {
    match params.get("path") {
        Some(p) if !p.is_empty() => Ok(p.to_string()),
        _ => Err(DaemonError::MissingParameter { name: "path" }),
    }
}

async fn head_archive(
    State(engine): State<AppState>,
    Path(id): Path<String>,
    params: Params,
) -> Result<Response> {
    let path = path_param(&params)?;
    let stat = engine.container_stat_path(&id, &path).await?;
    let mut resp = StatusCode::OK.into_response();
    resp.headers_mut()
        .insert(PATH_STAT_HEADER, stat_header(&stat)?);
    Ok(resp)
}

async fn get_archive(
    State(engine): State<AppState>,
    Path(id): Path<String>,
    params: Params,
) -> Result<Response> {
    let path = path_param(&params)?;
    let (stat, rx) = engine.container_archive(&id, &path).await?;
    let header = stat_header(&stat)?;
    let mut resp = bytes_response(rx, "application/x-tar");
    resp.headers_mut().insert(PATH_STAT_HEADER, header);
    Ok(resp)
}

async fn put_archive(
    State(engine): State<AppState>,
    Path(id): Path<String>,
    params: Params,
    body: Body,
) -> Result<Response> {
    let req = ExtractRequest {
        path: path_param(&params)?,
        no_overwrite_dir_non_dir: params.bool("noOverwriteDirNonDir"),
        copy_uid_gid: params.bool("copyUIDGID"),
    };
    let reader = StreamReader::new(body.into_data_stream().map_err(std::io::Error::other));
    engine.container_extract(&id, req, reader).await?;
    Ok(StatusCode::OK.into_response())
}

async fn export(State(engine): State<AppState>, Path(id): Path<String>) -> Result<Response> {
    let rx = engine.container_export(&id).await?;
    Ok(bytes_response(rx, "application/octet-stream"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_like_go() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foob"), "Zm9vYg==");
        assert_eq!(base64(&[0xfb, 0xff, 0xbf]), "+/+/");
    }

    #[test]
    fn stat_header_is_moby_json() {
        let s = PathStat {
            name: "passwd".into(),
            size: 30,
            mode: 420,
            mtime: "2026-11-23T05:59:47Z".into(),
            link_target: String::new(),
        };
        let h = stat_header(&s).unwrap();
        assert_eq!(
            h.to_str().unwrap(),
            base64(
                br#"{"name":"passwd","size":30,"mode":420,"mtime":"2026-11-23T05:59:47Z","linkTarget":""}"#
            )
        );
    }
}
