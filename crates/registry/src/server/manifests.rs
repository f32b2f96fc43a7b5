//! Manifests by tag or digest: put (validated, every referenced blob or child manifest must
//! already be in the repository), get/head with the media type they were pushed with, delete.

use axum::body::Body;
use http::{HeaderMap, StatusCode, header};
use http_body_util::{BodyExt, Limited};
use serde_json::Value;
use storage::Digest;

use super::errors::{ApiError, ApiResult};
use super::names::{Name, Reference};
use super::store::MAX_MANIFEST;
use super::{App, blocking, respond};

const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub(super) const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

fn is_image(mt: &str) -> bool {
    mt == DOCKER_MANIFEST || mt == OCI_MANIFEST
}

fn is_index(mt: &str) -> bool {
    mt == DOCKER_LIST || mt == OCI_INDEX
}

/// The digest a reference names in this repository.
fn resolve(app: &App, name: &Name, reference: &str) -> ApiResult<Digest> {
    match Reference::parse(reference) {
        Some(Reference::Digest(d)) => Ok(d),
        Some(Reference::Tag(t)) => app
            .store
            .resolve_tag(name, &t)
            .ok_or_else(|| ApiError::manifest_unknown(reference)),
        None if reference.contains(':') => Err(ApiError::digest_invalid(format!(
            "invalid digest {reference:?}"
        ))),
        None => Err(ApiError::manifest_unknown(reference)),
    }
}

pub(super) async fn get(app: &App, name: &Name, reference: &str, head: bool) -> ApiResult {
    if !app.store.repo_exists(name) {
        return Err(ApiError::name_unknown(name.as_str()));
    }
    let d = resolve(app, name, reference)?;
    let media_type = app
        .store
        .manifest_type(name, &d)
        .ok_or_else(|| ApiError::manifest_unknown(reference))?;
    let (store, dd) = (app.store.clone(), d.clone());
    let bytes = blocking(move || store.read_manifest(&dd)).await?;
    let hdrs = [
        ("Content-Type", media_type),
        ("Content-Length", bytes.len().to_string()),
        ("Docker-Content-Digest", d.to_string()),
        ("ETag", format!("\"{d}\"")),
    ];
    let body = if head {
        Body::empty()
    } else {
        Body::from(bytes)
    };
    Ok(respond(StatusCode::OK, &hdrs, body))
}

/// The descriptors' digests in `v[key]` (an array of descriptors), skipping foreign layers.
fn descriptors(v: &Value, key: &str) -> ApiResult<Vec<Digest>> {
    let Some(list) = v.get(key) else {
        return Ok(Vec::new());
    };
    let list = list
        .as_array()
        .ok_or_else(|| ApiError::manifest_invalid(format!("{key} is not an array")))?;
    let mut out = Vec::new();
    for desc in list {
        let foreign = desc
            .get("urls")
            .and_then(Value::as_array)
            .is_some_and(|u| !u.is_empty());
        if !foreign {
            out.push(descriptor_digest(desc)?);
        }
    }
    Ok(out)
}

fn descriptor_digest(desc: &Value) -> ApiResult<Digest> {
    let s = desc
        .get("digest")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::manifest_invalid("descriptor without a digest"))?;
    Digest::parse(s)
        .map_err(|_| ApiError::manifest_invalid(format!("unsupported descriptor digest {s:?}")))
}

/// The media type to record: the request's Content-Type if it is a manifest type, else the
/// body's `mediaType`, else guessed from the shape (OCI allows omitting it).
fn media_type(headers: &HeaderMap, v: &Value) -> ApiResult<String> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|c| c.to_str().ok())
        .map(|c| c.split(';').next().unwrap_or("").trim().to_string())
        .unwrap_or_default();
    let body_mt = v.get("mediaType").and_then(Value::as_str).unwrap_or("");
    for mt in [ct.as_str(), body_mt] {
        if is_image(mt) || is_index(mt) {
            return Ok(mt.to_string());
        }
    }
    if !body_mt.is_empty() {
        return Err(ApiError::manifest_invalid(format!(
            "unsupported manifest media type {body_mt:?}"
        )));
    }
    if v.get("manifests").is_some() {
        Ok(OCI_INDEX.into())
    } else if v.get("config").is_some() {
        Ok(OCI_MANIFEST.into())
    } else {
        Err(ApiError::manifest_invalid(format!(
            "unsupported manifest media type {ct:?}"
        )))
    }
}

pub(super) async fn put(
    app: &App,
    name: &Name,
    reference: &str,
    headers: &HeaderMap,
    body: Body,
) -> ApiResult {
    let tag = match Reference::parse(reference) {
        Some(Reference::Tag(t)) => Some(t),
        Some(Reference::Digest(_)) => None,
        None if reference.contains(':') => {
            return Err(ApiError::digest_invalid(format!(
                "invalid digest {reference:?}"
            )));
        }
        None => return Err(ApiError::tag_invalid(reference)),
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_MANIFEST) {
        return Err(ApiError::manifest_too_large(MAX_MANIFEST));
    }
    let limit = usize::try_from(MAX_MANIFEST).unwrap_or(usize::MAX);
    let bytes = match Limited::new(body, limit).collect().await {
        Ok(c) => c.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            return Err(ApiError::manifest_too_large(MAX_MANIFEST));
        }
        Err(e) => {
            return Err(ApiError::manifest_invalid(format!(
                "reading request body: {e}"
            )));
        }
    };
    let digest = Digest::of(&bytes);
    if let Some(Reference::Digest(want)) = Reference::parse(reference)
        && want != digest
    {
        return Err(ApiError::digest_invalid(format!(
            "manifest digest is {digest}, not {want}"
        )));
    }
    let v: Value = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::manifest_invalid(format!("invalid JSON: {e}")))?;
    if v.get("schemaVersion").and_then(Value::as_u64) != Some(2) {
        return Err(ApiError::manifest_invalid("schemaVersion must be 2"));
    }
    let mt = media_type(headers, &v)?;
    if is_image(&mt) {
        let config = v
            .get("config")
            .ok_or_else(|| ApiError::manifest_invalid("no config descriptor"))?;
        let mut blobs = vec![descriptor_digest(config)?];
        blobs.extend(descriptors(&v, "layers")?);
        for b in blobs {
            if !app.store.has_blob(name, &b) {
                return Err(ApiError::manifest_blob_unknown(&b.to_string()));
            }
        }
    } else {
        for m in descriptors(&v, "manifests")? {
            if app.store.manifest_type(name, &m).is_none() {
                return Err(ApiError::manifest_blob_unknown(&m.to_string()));
            }
        }
    }
    let subject = match v.get("subject") {
        Some(desc) => Some(descriptor_digest(desc)?),
        None => None,
    };
    let (store, n, d, sub) = (
        app.store.clone(),
        name.clone(),
        digest.clone(),
        subject.clone(),
    );
    blocking(move || store.put_manifest(&n, &d, &mt, &bytes, tag.as_deref(), sub.as_ref())).await?;
    let mut hdrs = vec![
        (
            "Location",
            format!("/v2/{}/manifests/{digest}", name.as_str()),
        ),
        ("Docker-Content-Digest", digest.to_string()),
        ("Content-Length", "0".to_string()),
    ];
    if let Some(s) = subject {
        hdrs.push(("OCI-Subject", s.to_string()));
    }
    Ok(respond(StatusCode::CREATED, &hdrs, Body::empty()))
}

pub(super) async fn delete(app: &App, name: &Name, reference: &str) -> ApiResult {
    if !app.store.repo_exists(name) {
        return Err(ApiError::name_unknown(name.as_str()));
    }
    let (store, n) = (app.store.clone(), name.clone());
    let removed = match Reference::parse(reference) {
        Some(Reference::Digest(d)) => blocking(move || store.delete_manifest(&n, &d)).await?,
        Some(Reference::Tag(t)) => blocking(move || store.delete_tag(&n, &t)).await?,
        None => false,
    };
    if removed {
        Ok(respond(
            StatusCode::ACCEPTED,
            &[("Content-Length", "0".into())],
            Body::empty(),
        ))
    } else {
        Err(ApiError::manifest_unknown(reference))
    }
}
