//! The tag-list client (`docker pull -a`) against a small fake registry on 127.0.0.1: `Link`
//! pagination followed, a next page on another host refused, a missing repository in moby's
//! words; and against berth's own registry server.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use axum::extract::{Query, Request};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use common::serve_router;
use http::StatusCode;
use registry::client::{Client, ClientOptions};
use std::collections::HashMap;

/// Pages of two tags: a, b → c, d → e; `t/evil` links its next page to another host.
async fn tags(Query(q): Query<HashMap<String, String>>, req: Request) -> Response {
    let path = req.uri().path().to_string();
    if path.starts_with("/v2/t/evil/") {
        return (
            [(
                "Link",
                r#"<http://192.0.2.1/v2/t/evil/tags/list?last=x>; rel="next""#,
            )],
            r#"{"name":"t/evil","tags":["x"]}"#,
        )
            .into_response();
    }
    if !path.starts_with("/v2/t/bb/") {
        return (
            StatusCode::NOT_FOUND,
            r#"{"errors":[{"code":"NAME_UNKNOWN","message":"repository name not known to registry"}]}"#,
        )
            .into_response();
    }
    let all = ["a", "b", "c", "d", "e"];
    let start = match q.get("last") {
        Some(l) => all.iter().position(|t| t == l).unwrap() + 1,
        None => 0,
    };
    let page: Vec<&str> = all.iter().skip(start).take(2).copied().collect();
    let body = serde_json::json!({"name": "t/bb", "tags": page}).to_string();
    if start + 2 < all.len() {
        let link = format!(r#"</v2/t/bb/tags/list?n=2&last={}>; rel="next""#, page[1]);
        return ([("Link", link)], body).into_response();
    }
    body.into_response()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_are_followed_on_the_same_host_only() {
    let router = axum::Router::new()
        .route("/v2/", get(|| async { "{}" }))
        .route("/v2/{*rest}", get(tags));
    let addr = serve_router(router).await;
    let client = Client::new(ClientOptions::default()).unwrap();
    let all = client.tags(&addr, "t/bb", None).await.unwrap();
    assert_eq!(all, ["a", "b", "c", "d", "e"]);

    let err = client.tags(&addr, "t/evil", None).await.unwrap_err();
    assert!(err.to_string().contains("another host"), "{err}");

    let err = client.tags(&addr, "t/none", None).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "pull access denied for {addr}/t/none, repository does not exist or may require \
             'docker login': name unknown: repository name not known to registry"
        )
    );
}
