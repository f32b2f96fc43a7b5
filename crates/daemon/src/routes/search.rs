//! `GET /images/search?term=&limit=&filters=`: the query and `X-Registry-Auth` become an
//! [`engine::SearchRequest`]; the answer is the JSON array of results. As in moby, unusable
//! credentials are no credentials (search needs none).

use axum::Json;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use engine::{EngineError, SearchRequest};

use super::{AppState, Params};
use crate::error::Result;

/// `limit` as moby reads it: absent or empty is 0 (the default), else an integer (the engine
/// checks the range, so `-1` gets its "outside the range" answer).
fn limit(params: &Params) -> Result<i64> {
    let raw = params.str("limit");
    if raw.is_empty() {
        return Ok(0);
    }
    match raw.parse::<i64>() {
        Ok(n) => Ok(n),
        Err(_) => Err(EngineError::InvalidRequest(format!(
            "invalid limit specified: strconv.Atoi: parsing \"{raw}\": invalid syntax"
        ))
        .into()),
    }
}

pub(super) async fn search(
    engine: &AppState,
    params: &Params,
    headers: &HeaderMap,
) -> Result<Response> {
    let req = SearchRequest {
        term: params.str("term"),
        limit: limit(params)?,
        filters: params.filters()?,
        credentials: super::pull::credentials(headers),
    };
    Ok(Json(engine.images_search(req).await?).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_as_moby() {
        let p = |q: &str| Params::parse(q).unwrap();
        assert_eq!(limit(&p("term=x")).unwrap(), 0);
        assert_eq!(limit(&p("limit=")).unwrap(), 0);
        assert_eq!(limit(&p("limit=7")).unwrap(), 7);
        assert_eq!(
            limit(&p("limit=x")).unwrap_err().to_string(),
            "invalid limit specified: strconv.Atoi: parsing \"x\": invalid syntax"
        );
        assert_eq!(limit(&p("limit=-1")).unwrap(), -1);
    }
}
