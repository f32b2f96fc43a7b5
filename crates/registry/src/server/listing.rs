//! `GET /v2/<name>/tags/list` and `GET /v2/_catalog`, with `n`/`last` pagination and a
//! `Link: <...>; rel="next"` header when a page is cut short.

use std::collections::HashMap;

use axum::body::Body;
use http::StatusCode;
use serde_json::json;

use super::errors::{ApiError, ApiResult};
use super::names::Name;
use super::{App, blocking, respond};

/// The catalog's page size when the client gives none.
const DEFAULT_CATALOG_PAGE: usize = 1000;

/// Entries after `last`, at most `n`; and whether more remain.
fn page(all: Vec<String>, n: Option<usize>, last: Option<&str>) -> (Vec<String>, bool) {
    let mut rest: Vec<String> = match last {
        Some(l) => all.into_iter().filter(|e| e.as_str() > l).collect(),
        None => all,
    };
    let more = n.is_some_and(|n| rest.len() > n);
    if let Some(n) = n {
        rest.truncate(n);
    }
    (rest, more)
}

fn pagination(query: &HashMap<String, String>) -> ApiResult<(Option<usize>, Option<&str>)> {
    let n = match query.get("n") {
        None => None,
        Some(v) => Some(
            v.parse::<usize>()
                .map_err(|_| ApiError::size_invalid(format!("invalid pagination number {v:?}")))?,
        ),
    };
    Ok((n, query.get("last").map(String::as_str)))
}

fn next_link(path: &str, n: usize, last: Option<&String>) -> Vec<(&'static str, String)> {
    match last {
        Some(last) => vec![("Link", format!("<{path}?n={n}&last={last}>; rel=\"next\""))],
        None => Vec::new(),
    }
}

pub(super) async fn tags(app: &App, name: &Name, query: &HashMap<String, String>) -> ApiResult {
    if !app.store.repo_exists(name) {
        return Err(ApiError::name_unknown(name.as_str()));
    }
    let (n, last) = pagination(query)?;
    let (store, nm) = (app.store.clone(), name.clone());
    let all = blocking(move || store.tags(&nm)).await?;
    let (tags, more) = page(all, n, last);
    let mut hdrs = vec![("Content-Type", "application/json".to_string())];
    if more && let Some(n) = n {
        let path = format!("/v2/{}/tags/list", name.as_str());
        hdrs.extend(next_link(&path, n, tags.last()));
    }
    let body = json!({ "name": name.as_str(), "tags": tags }).to_string();
    Ok(respond(StatusCode::OK, &hdrs, Body::from(body)))
}

pub(super) async fn catalog(app: &App, query: &HashMap<String, String>) -> ApiResult {
    let (n, last) = pagination(query)?;
    let n = n.unwrap_or(DEFAULT_CATALOG_PAGE);
    let store = app.store.clone();
    let all = blocking(move || store.catalog()).await?;
    let (repos, more) = page(all, Some(n), last);
    let mut hdrs = vec![("Content-Type", "application/json".to_string())];
    if more {
        hdrs.extend(next_link("/v2/_catalog", n, repos.last()));
    }
    let body = json!({ "repositories": repos }).to_string();
    Ok(respond(StatusCode::OK, &hdrs, Body::from(body)))
}

#[cfg(test)]
mod tests {
    use super::page;

    #[test]
    fn pages() {
        let all: Vec<String> = ["a", "b", "c", "d"].map(String::from).to_vec();
        assert_eq!(page(all.clone(), None, None), (all.clone(), false));
        assert_eq!(
            page(all.clone(), Some(2), None),
            (vec!["a".into(), "b".into()], true)
        );
        assert_eq!(
            page(all.clone(), Some(2), Some("b")),
            (vec!["c".into(), "d".into()], false)
        );
        assert_eq!(page(all.clone(), Some(0), None), (vec![], true));
        assert_eq!(page(all, None, Some("d")), (vec![], false));
    }
}
