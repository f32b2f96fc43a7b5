//! The OCI 1.1 referrers API: `GET /v2/<name>/referrers/<digest>[?artifactType=…]` answers an
//! image index of the manifests pushed with that digest as their `subject` (never 404: an
//! unknown subject has an empty list).

use std::collections::HashMap;

use axum::body::Body;
use http::StatusCode;
use serde_json::{Value, json};

use super::blobs::parse_digest;
use super::errors::ApiResult;
use super::manifests::OCI_INDEX;
use super::names::Name;
use super::{App, blocking, respond};

pub(super) async fn list(
    app: &App,
    name: &Name,
    digest: &str,
    query: &HashMap<String, String>,
) -> ApiResult {
    let subject = parse_digest(digest)?;
    let filter = query.get("artifactType").cloned();
    let (store, n, f) = (app.store.clone(), name.clone(), filter.clone());
    let descriptors = blocking(move || {
        let mut out = Vec::new();
        for d in store.referrers(&n, &subject)? {
            let Some(media_type) = store.manifest_type(&n, &d) else {
                continue;
            };
            let bytes = store.read_manifest(&d)?;
            let Ok(v) = serde_json::from_slice::<Value>(&bytes) else {
                continue;
            };
            // The artifact type: the manifest's own, else its config's media type.
            let artifact_type = v
                .get("artifactType")
                .or_else(|| v.get("config").and_then(|c| c.get("mediaType")))
                .and_then(Value::as_str)
                .map(str::to_string);
            if f.as_ref()
                .is_some_and(|f| artifact_type.as_ref() != Some(f))
            {
                continue;
            }
            let mut desc = json!({
                "mediaType": media_type,
                "digest": d.to_string(),
                "size": bytes.len(),
            });
            if let Some(t) = artifact_type {
                desc["artifactType"] = Value::String(t);
            }
            if let Some(a) = v.get("annotations").filter(|a| a.is_object()) {
                desc["annotations"] = a.clone();
            }
            out.push(desc);
        }
        Ok(out)
    })
    .await?;
    let body = json!({ "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": descriptors });
    let mut hdrs = vec![("Content-Type", OCI_INDEX.to_string())];
    if filter.is_some() {
        hdrs.push(("OCI-Filters-Applied", "artifactType".to_string()));
    }
    Ok(respond(StatusCode::OK, &hdrs, Body::from(body.to_string())))
}
