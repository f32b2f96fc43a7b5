//! `docker search` (`GET /images/search`): moby's search service. The term names its index
//! (`localhost:5000/foo` → `localhost:5000`, else Docker Hub, where a `library/` prefix is
//! dropped); the filters `is-official`, `stars` and the deprecated `is-automated` are checked
//! before the registry is asked and applied to its answer; `limit` is 1–100 (0: 25).
//!
//! Owns the term, limit and filter rules; the registry client does the HTTP. Knows nothing of
//! the Engine API's encoding (the daemon parses the query).

use api_types::models::ImageSearchResponseItem;
use registry::client::{Credentials, SearchRequest as RegistrySearch};

use crate::{Engine, EngineError, Filters, Result};

/// Results when the client gives no limit.
const DEFAULT_LIMIT: i64 = 25;
/// The filters `GET /images/search` accepts.
const ACCEPTED_FILTERS: &[&str] = &["is-automated", "is-official", "stars"];

/// The parameters of `GET /images/search`.
#[derive(Debug, Clone, Default)]
pub struct SearchRequest {
    /// `term` (may start with a registry host).
    pub term: String,
    /// `limit`; 0 means the default (25).
    pub limit: i64,
    pub filters: Filters,
    /// Decoded `X-Registry-Auth`.
    pub credentials: Option<Credentials>,
}

/// The checked filters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct SearchFilters {
    /// `is-automated=true`: nothing can match (the field is deprecated and always false).
    automated_only: bool,
    official: Option<bool>,
    /// The highest `stars=N` given.
    min_stars: Option<i64>,
}

fn parse_filters(f: &Filters) -> Result<SearchFilters> {
    f.validate(ACCEPTED_FILTERS)?;
    let mut min_stars = None;
    for v in f.get("stars") {
        let n: i64 = v.parse().map_err(|_| {
            EngineError::InvalidRequest(format!(
                "invalid filter 'stars={v}': strconv.Atoi: parsing \"{v}\": invalid syntax"
            ))
        })?;
        min_stars = Some(min_stars.map_or(n, |m: i64| m.max(n)));
    }
    Ok(SearchFilters {
        automated_only: f.bool_value("is-automated")? == Some(true),
        official: f.bool_value("is-official")?,
        min_stars,
    })
}

/// The limit moby's search session accepts: 0 → 25, else 1–100.
fn check_limit(limit: i64) -> Result<u32> {
    let limit = if limit == 0 { DEFAULT_LIMIT } else { limit };
    match u32::try_from(limit) {
        Ok(n @ 1..=100) => Ok(n),
        _ => Err(EngineError::InvalidRequest(format!(
            "limit {limit} is outside the range of [1, 100]"
        ))),
    }
}

/// moby's `splitReposSearchTerm`: (index, remote term). The first component is a registry
/// host when it has a `.` or `:` or is `localhost`, and more follows.
fn split_term(term: &str) -> Result<(String, String)> {
    if term.contains("://") {
        return Err(EngineError::InvalidRequest(format!(
            "invalid repository name: repository name ({term}) should not have a scheme"
        )));
    }
    let (index, remote) = match term.split_once('/') {
        Some((host, rest)) if host.contains(['.', ':']) || host == "localhost" => {
            (host.to_string(), rest.to_string())
        }
        _ => ("docker.io".to_string(), term.to_string()),
    };
    let index = match index.as_str() {
        "index.docker.io" | "registry-1.docker.io" => "docker.io".to_string(),
        _ => index,
    };
    if index.starts_with('-') || index.ends_with('-') {
        return Err(EngineError::InvalidRequest(format!(
            "invalid index name ({index}). Cannot begin or end with a hyphen."
        )));
    }
    let remote = if index == "docker.io" {
        remote
            .strip_prefix("library/")
            .map(str::to_string)
            .unwrap_or(remote)
    } else {
        remote
    };
    Ok((index, remote))
}

impl Engine {
    /// `GET /images/search`: the registry's results that pass the filters, `is_automated`
    /// always false (as moby forces it).
    pub async fn images_search(&self, req: SearchRequest) -> Result<Vec<ImageSearchResponseItem>> {
        let filters = parse_filters(&req.filters)?;
        if filters.automated_only {
            return Ok(Vec::new());
        }
        let (index, term) = split_term(&req.term)?;
        let limit = check_limit(req.limit)?;
        let client = self.registries.client()?;
        let found = client
            .search(&RegistrySearch {
                index,
                term,
                limit,
                credentials: req.credentials,
            })
            .await?;
        Ok(found
            .into_iter()
            .filter(|r| filters.official.is_none_or(|o| o == r.is_official))
            .filter(|r| filters.min_stars.is_none_or(|m| r.star_count >= m))
            .map(|r| ImageSearchResponseItem {
                description: Some(r.description),
                is_official: Some(r.is_official),
                is_automated: Some(false),
                name: Some(r.name),
                star_count: Some(r.star_count),
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filters(json: &str) -> Result<SearchFilters> {
        parse_filters(&Filters::parse(json)?)
    }

    #[test]
    fn filter_rules() {
        assert_eq!(filters("").unwrap(), SearchFilters::default());
        let f = filters(r#"{"is-official":{"true":true},"stars":{"3":true,"10":true}}"#).unwrap();
        assert_eq!(f.official, Some(true));
        assert_eq!(f.min_stars, Some(10), "the highest stars filter wins");
        assert!(
            filters(r#"{"is-automated":{"true":true}}"#)
                .unwrap()
                .automated_only
        );
        assert!(
            !filters(r#"{"is-automated":{"false":true}}"#)
                .unwrap()
                .automated_only
        );
        assert_eq!(
            filters(r#"{"colour":{"x":true}}"#).unwrap_err().to_string(),
            "invalid filter 'colour'"
        );
        assert_eq!(
            filters(r#"{"stars":{"many":true}}"#)
                .unwrap_err()
                .to_string(),
            "invalid filter 'stars=many': strconv.Atoi: parsing \"many\": invalid syntax"
        );
        assert_eq!(
            filters(r#"{"is-official":{"maybe":true}}"#)
                .unwrap_err()
                .to_string(),
            "invalid filter 'is-official=maybe'"
        );
    }

    #[test]
    fn limits() {
        assert_eq!(check_limit(0).unwrap(), 25);
        assert_eq!(check_limit(1).unwrap(), 1);
        assert_eq!(check_limit(100).unwrap(), 100);
        assert_eq!(
            check_limit(101).unwrap_err().to_string(),
            "limit 101 is outside the range of [1, 100]"
        );
        assert_eq!(
            check_limit(-1).unwrap_err().to_string(),
            "limit -1 is outside the range of [1, 100]"
        );
    }

    #[test]
    fn terms() {
        let s = |t: &str| split_term(t).unwrap();
        assert_eq!(s("busybox"), ("docker.io".into(), "busybox".into()));
        assert_eq!(s("library/busybox"), ("docker.io".into(), "busybox".into()));
        assert_eq!(
            s("someone/tool"),
            ("docker.io".into(), "someone/tool".into())
        );
        assert_eq!(
            s("localhost:5000/test/bb"),
            ("localhost:5000".into(), "test/bb".into())
        );
        assert_eq!(s("localhost/bb"), ("localhost".into(), "bb".into()));
        assert_eq!(s("ghcr.io/x"), ("ghcr.io".into(), "x".into()));
        assert_eq!(
            s("index.docker.io/library/redis"),
            ("docker.io".into(), "redis".into())
        );
        assert!(split_term("https://ghcr.io/x").is_err());
        assert!(split_term("-bad.io/x").is_err());
    }
}
