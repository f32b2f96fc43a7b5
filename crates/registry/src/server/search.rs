//! `GET /v1/search?q=<term>&n=<limit>`: a berth extension (the distribution spec has no search)
//! answering in the shape of Docker's v1 index search, so `docker search <host>/<term>` works
//! against berth's registry. A repository of the catalog matches when its name contains the
//! term (case-insensitive; an empty term matches all); descriptions are empty, stars 0, nothing
//! is official. `n` defaults to 25 and is capped at 100, as Docker Hub's index does.
//!
//! Only `/v1/search` (and `/v1/_ping`) exist under `/v1/`; everything else stays `/v2/`.

use std::collections::HashMap;

use axum::body::Body;
use http::StatusCode;
use serde_json::json;

use super::errors::ApiResult;
use super::{App, blocking, respond};

/// Results per page when `n` is absent or unusable.
const DEFAULT_RESULTS: usize = 25;
/// The most results one answer holds.
const MAX_RESULTS: usize = 100;

/// The page size asked for: `n` within 1..=100, else the default.
fn page_size(n: Option<&String>) -> usize {
    match n.and_then(|v| v.parse::<usize>().ok()) {
        Some(0) | None => DEFAULT_RESULTS,
        Some(n) => n.min(MAX_RESULTS),
    }
}

/// The catalog's names containing `term` (case-insensitive), in catalog order.
fn matching(catalog: Vec<String>, term: &str) -> Vec<String> {
    let term = term.trim().to_ascii_lowercase();
    catalog
        .into_iter()
        .filter(|name| term.is_empty() || name.contains(&term))
        .collect()
}

/// `GET /v1/_ping`: what Docker's v1 endpoint check expects (any 200 JSON will do).
pub(super) fn ping() -> ApiResult {
    Ok(respond(
        StatusCode::OK,
        &[
            ("Content-Type", "application/json".into()),
            ("X-Docker-Registry-Standalone", "true".into()),
        ],
        Body::from("true"),
    ))
}

/// `GET /v1/search`.
pub(super) async fn search(app: &App, query: &HashMap<String, String>) -> ApiResult {
    let term = query.get("q").cloned().unwrap_or_default();
    let n = page_size(query.get("n"));
    let store = app.store.clone();
    let catalog = blocking(move || store.catalog()).await?;
    let found = matching(catalog, &term);
    let total = found.len();
    let results: Vec<_> = found
        .into_iter()
        .take(n)
        .map(|name| {
            json!({
                "name": name,
                "description": "",
                "star_count": 0,
                "is_official": false,
                "is_automated": false,
            })
        })
        .collect();
    let body = json!({
        "num_results": total,
        "num_pages": total.div_ceil(n),
        "page": 1,
        "page_size": n,
        "query": term,
        "results": results,
    });
    Ok(respond(
        StatusCode::OK,
        &[("Content-Type", "application/json".into())],
        Body::from(body.to_string()),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_sizes() {
        assert_eq!(page_size(None), 25);
        assert_eq!(page_size(Some(&"0".into())), 25);
        assert_eq!(page_size(Some(&"x".into())), 25);
        assert_eq!(page_size(Some(&"7".into())), 7);
        assert_eq!(page_size(Some(&"1000".into())), 100);
    }

    #[test]
    fn matches_substrings() {
        let cat = ["library/busybox", "test/bb", "tools/redis"]
            .map(String::from)
            .to_vec();
        assert_eq!(matching(cat.clone(), "BUSY"), vec!["library/busybox"]);
        assert_eq!(
            matching(cat.clone(), "b"),
            vec!["library/busybox", "test/bb"]
        );
        assert_eq!(matching(cat.clone(), ""), cat);
        assert!(matching(cat, "nginx").is_empty());
    }
}
