//! Blob reads, deletes and uploads (monolithic, chunked, cross-repository mount).
//! Bytes are streamed into the content store's ingest files and verified against the client's
//! digest before they become visible; a repository only serves blobs linked to it.

use std::collections::HashMap;
use std::io::{SeekFrom, Write};

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use futures_util::StreamExt;
use http::{HeaderMap, StatusCode, header};
use storage::{Digest, Ingest, IngestWriter, StorageError};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::errors::{ApiError, ApiResult};
use super::names::Name;
use super::uploads::range;
use super::{App, blocking, respond};

/// Bytes gathered before one blocking write into the ingest file.
const WRITE_BATCH: usize = 1 << 20;

pub(super) fn parse_digest(s: &str) -> ApiResult<Digest> {
    Digest::parse(s).map_err(|_| ApiError::digest_invalid(format!("invalid digest {s:?}")))
}

/// A single `bytes=a-b` / `bytes=a-` range within `size`, as (start, length).
fn byte_range(headers: &HeaderMap, size: u64) -> Option<Option<(u64, u64)>> {
    let Some(v) = headers.get(header::RANGE) else {
        return Some(None);
    };
    let spec = v.to_str().ok()?.strip_prefix("bytes=")?;
    let (a, b) = spec.split_once('-')?;
    let start: u64 = a.trim().parse().ok()?;
    let end: u64 = if b.trim().is_empty() {
        size.checked_sub(1)?
    } else {
        b.trim().parse::<u64>().ok()?.min(size.checked_sub(1)?)
    };
    (start <= end).then_some(Some((start, end - start + 1)))
}

pub(super) async fn get(
    app: &App,
    name: &Name,
    digest: &str,
    head: bool,
    headers: &HeaderMap,
) -> ApiResult {
    let d = parse_digest(digest)?;
    if !app.store.has_blob(name, &d) {
        return Err(ApiError::blob_unknown(digest));
    }
    let size = app
        .store
        .content()
        .blob_size(&d)
        .map_err(|_| ApiError::blob_unknown(digest))?;
    let Some(range) = byte_range(headers, size) else {
        return Ok(respond(
            StatusCode::RANGE_NOT_SATISFIABLE,
            &[("Content-Range", format!("bytes */{size}"))],
            Body::empty(),
        ));
    };
    let (status, start, len) = match range {
        Some((start, len)) => (StatusCode::PARTIAL_CONTENT, start, len),
        None => (StatusCode::OK, 0, size),
    };
    let mut hdrs = vec![
        ("Content-Length", len.to_string()),
        ("Content-Type", "application/octet-stream".to_string()),
        ("Docker-Content-Digest", d.to_string()),
        ("ETag", format!("\"{d}\"")),
        ("Accept-Ranges", "bytes".to_string()),
    ];
    if status == StatusCode::PARTIAL_CONTENT {
        let last = start + len - 1;
        hdrs.push(("Content-Range", format!("bytes {start}-{last}/{size}")));
    }
    if head {
        return Ok(respond(status, &hdrs, Body::empty()));
    }
    let path = app.store.content().blob_path(&d);
    let mut file = tokio::fs::File::open(&path)
        .await
        .map_err(|_| ApiError::blob_unknown(digest))?;
    if start > 0 {
        file.seek(SeekFrom::Start(start))
            .await
            .map_err(ApiError::internal)?;
    }
    let stream = tokio_util::io::ReaderStream::with_capacity(file.take(len), 256 << 10);
    Ok(respond(status, &hdrs, Body::from_stream(stream)))
}

pub(super) async fn delete(app: &App, name: &Name, digest: &str) -> ApiResult {
    let d = parse_digest(digest)?;
    let (store, n) = (app.store.clone(), name.clone());
    if blocking(move || store.unlink_blob(&n, &d)).await? {
        Ok(respond(
            StatusCode::ACCEPTED,
            &[("Content-Length", "0".into())],
            Body::empty(),
        ))
    } else {
        Err(ApiError::blob_unknown(digest))
    }
}

async fn write_batch(w: IngestWriter, batch: Vec<Bytes>) -> ApiResult<IngestWriter> {
    blocking(move || {
        let mut w = w;
        for b in &batch {
            w.write_all(b)
                .map_err(|e| crate::RegistryError::Other(format!("writing upload: {e}")))?;
        }
        Ok(w)
    })
    .await
}

/// Appends a request body to an upload. On a client-side failure (body cut short) the writer
/// comes back with what was written; on a local write failure it is gone.
async fn append(
    mut w: IngestWriter,
    body: Body,
) -> Result<IngestWriter, (Option<IngestWriter>, ApiError)> {
    let mut stream = body.into_data_stream();
    let mut batch = Vec::new();
    let mut batched = 0;
    loop {
        let (failure, done) = match stream.next().await {
            Some(Ok(chunk)) => {
                batched += chunk.len();
                batch.push(chunk);
                (None, false)
            }
            Some(Err(e)) => (Some(e), true),
            None => (None, true),
        };
        if (done || batched >= WRITE_BATCH) && !batch.is_empty() {
            w = write_batch(w, std::mem::take(&mut batch))
                .await
                .map_err(|e| (None, e))?;
            batched = 0;
        }
        if let Some(e) = failure {
            let err = ApiError::upload_invalid(format!("reading request body: {e}"));
            return Err((Some(w), err));
        }
        if done {
            return Ok(w);
        }
    }
}

/// Verifies and commits a finished upload, then links it into the repository.
async fn commit(app: &App, name: &Name, w: IngestWriter, d: &Digest) -> ApiResult {
    let (store, n, want) = (app.store.clone(), name.clone(), d.clone());
    let res = tokio::task::spawn_blocking(move || {
        w.commit(Some(&want), None)?;
        store.link_blob(&n, &want)
    })
    .await
    .map_err(ApiError::internal)?;
    match res {
        Ok(()) => Ok(created(name, d)),
        Err(crate::RegistryError::Storage(StorageError::DigestMismatch { expected, actual })) => {
            Err(ApiError::digest_invalid(format!(
                "expected {expected}, got {actual}"
            )))
        }
        Err(e) => Err(ApiError::internal(e)),
    }
}

fn created(name: &Name, d: &Digest) -> Response {
    respond(
        StatusCode::CREATED,
        &[
            ("Location", format!("/v2/{}/blobs/{d}", name.as_str())),
            ("Docker-Content-Digest", d.to_string()),
            ("Content-Length", "0".into()),
        ],
        Body::empty(),
    )
}

fn upload_headers(name: &Name, id: &str, offset: u64) -> Vec<(&'static str, String)> {
    vec![
        (
            "Location",
            format!("/v2/{}/blobs/uploads/{id}", name.as_str()),
        ),
        ("Range", range(offset)),
        ("Docker-Upload-UUID", id.to_string()),
        ("Content-Length", "0".into()),
    ]
}

/// `POST /v2/<name>/blobs/uploads/`: mount, monolithic upload, or a new session.
pub(super) async fn start(
    app: &App,
    name: &Name,
    query: &HashMap<String, String>,
    body: Body,
) -> ApiResult {
    if let Some(mount) = query.get("mount") {
        let d = parse_digest(mount)?;
        let from = query.get("from").and_then(|f| Name::parse(f));
        if let Some(from) = from
            && app.store.has_blob(&from, &d)
        {
            let (store, n, dd) = (app.store.clone(), name.clone(), d.clone());
            blocking(move || store.link_blob(&n, &dd)).await?;
            return Ok(created(name, &d));
        }
        // Not mountable: fall through to a new upload session, as the spec says.
    } else if let Some(digest) = query.get("digest") {
        let d = parse_digest(digest)?;
        let content = app.store.content().clone();
        let dd = d.clone();
        let ingest = blocking(move || Ok(content.ingest(Some(&dd))?)).await?;
        match ingest {
            Ingest::Exists => {
                let (store, n, dd) = (app.store.clone(), name.clone(), d.clone());
                blocking(move || store.link_blob(&n, &dd)).await?;
                return Ok(created(name, &d));
            }
            Ingest::Writer(w) => {
                let w = append(w, body).await.map_err(|(_, e)| e)?;
                return commit(app, name, w, &d).await;
            }
        }
    }
    let content = app.store.content().clone();
    let w = match blocking(move || Ok(content.ingest(None)?)).await? {
        Ingest::Writer(w) => w,
        Ingest::Exists => return Err(ApiError::internal("ingest without a digest exists")),
    };
    let id = app.uploads.start(name, w)?;
    Ok(respond(
        StatusCode::ACCEPTED,
        &upload_headers(name, &id, 0),
        Body::empty(),
    ))
}

/// Parses `Content-Range: <start>-<end>` (also `bytes <start>-<end>/<total>`).
fn content_range_start(headers: &HeaderMap) -> Option<Option<u64>> {
    let Some(v) = headers.get(header::CONTENT_RANGE) else {
        return Some(None);
    };
    let s = v.to_str().ok()?.trim();
    let s = s.strip_prefix("bytes ").unwrap_or(s);
    let s = s.split('/').next()?;
    let (a, b) = s.split_once('-')?;
    let start: u64 = a.trim().parse().ok()?;
    let end: u64 = b.trim().parse().ok()?;
    (end >= start).then_some(Some(start))
}

/// `PATCH`: append a chunk (in order).
pub(super) async fn patch(
    app: &App,
    name: &Name,
    id: &str,
    headers: &HeaderMap,
    body: Body,
) -> ApiResult {
    let w = app.uploads.take(name, id)?;
    let offset = w.written();
    let start = match content_range_start(headers) {
        Some(s) => s,
        None => {
            app.uploads.put_back(id, w);
            return Err(ApiError::range_invalid(range(offset)));
        }
    };
    if start.is_some_and(|s| s != offset) {
        app.uploads.put_back(id, w);
        return Err(ApiError::range_invalid(range(offset)));
    }
    match append(w, body).await {
        Ok(w) => {
            let offset = w.written();
            app.uploads.put_back(id, w);
            Ok(respond(
                StatusCode::ACCEPTED,
                &upload_headers(name, id, offset),
                Body::empty(),
            ))
        }
        Err((Some(w), e)) => {
            app.uploads.put_back(id, w);
            Err(e)
        }
        Err((None, e)) => {
            app.uploads.remove(id);
            Err(e)
        }
    }
}

/// `PUT ?digest=`: the last chunk (maybe empty), then verify and commit.
pub(super) async fn put(
    app: &App,
    name: &Name,
    id: &str,
    query: &HashMap<String, String>,
    body: Body,
) -> ApiResult {
    let d = match query.get("digest").map(|d| parse_digest(d)) {
        Some(Ok(d)) => d,
        Some(Err(e)) => return Err(e),
        None => return Err(ApiError::digest_invalid("digest parameter missing")),
    };
    let w = app.uploads.take(name, id)?;
    let res = append(w, body).await;
    // The session ends here whatever happens: a failed commit leaves nothing behind.
    app.uploads.remove(id);
    let w = res.map_err(|(_, e)| e)?;
    commit(app, name, w, &d).await
}

/// `GET`: the upload's progress.
pub(super) fn status(app: &App, name: &Name, id: &str) -> ApiResult {
    let offset = app.uploads.offset(name, id)?;
    Ok(respond(
        StatusCode::NO_CONTENT,
        &upload_headers(name, id, offset),
        Body::empty(),
    ))
}

/// `DELETE`: cancel the upload.
pub(super) fn cancel(app: &App, name: &Name, id: &str) -> ApiResult {
    if !app.uploads.exists(name, id) {
        return Err(ApiError::upload_unknown(id));
    }
    app.uploads.remove(id);
    Ok(respond(
        StatusCode::NO_CONTENT,
        &[("Content-Length", "0".into())],
        Body::empty(),
    ))
}
