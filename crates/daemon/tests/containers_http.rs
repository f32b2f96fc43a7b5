//! Container endpoints over HTTP without root: validation, errors and list shapes (nothing is
//! started here; the root end-to-end tests in tests/e2e run containers).

#![allow(clippy::unwrap_used)] // test helpers

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use engine::{Engine, EngineConfig};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

fn app(dir: &tempfile::TempDir) -> Router {
    let engine = Engine::open(EngineConfig {
        data_root: dir.path().join("root"),
        exec_root: dir.path().join("exec"),
        debug: false,
        network: engine::NetConfig {
            iptables: false,
            ..Default::default()
        },
    })
    .unwrap();
    daemon::app(Arc::new(engine))
}

async fn call(app: &Router, method: Method, uri: &str, body: &str) -> (StatusCode, Value) {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let ct = res
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string());
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    if bytes.is_empty() {
        return (status, Value::Null);
    }
    if !status.is_success() {
        assert_eq!(ct.as_deref(), Some("application/json"));
    }
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn create_validates_before_anything() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(&dir);
    let (s, v) = call(&app, Method::POST, "/v1.47/containers/create", "{not json").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .starts_with("invalid JSON body"),
        "{v}"
    );
    let (s, v) = call(
        &app,
        Method::POST,
        "/v1.47/containers/create?name=a%20b",
        r#"{"Image":"busybox"}"#,
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(
        v["message"],
        "Invalid container name (a b), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
    );
    let (s, v) = call(
        &app,
        Method::POST,
        "/v1.47/containers/create?name=web",
        r#"{"Image":"busybox","Cmd":["true"]}"#,
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .starts_with("No such image: busybox"),
        "{v}"
    );
}

#[tokio::test]
async fn unknown_containers_are_404() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(&dir);
    for (m, uri) in [
        (Method::POST, "/v1.47/containers/nope/start"),
        (Method::POST, "/v1.47/containers/nope/stop"),
        (Method::POST, "/v1.47/containers/nope/kill"),
        (Method::POST, "/v1.47/containers/nope/wait"),
        (Method::POST, "/v1.47/containers/nope/attach?stream=1"),
        (Method::POST, "/v1.47/containers/nope/rename?name=x2"),
        (Method::GET, "/v1.47/containers/nope/logs?stdout=1"),
        (Method::GET, "/v1.47/containers/nope/json"),
        (Method::DELETE, "/v1.47/containers/nope"),
    ] {
        let (s, v) = call(&app, m.clone(), uri, "").await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{m} {uri}");
        assert_eq!(v["message"], "No such container: nope", "{uri}");
    }
}

#[tokio::test]
async fn list_filters_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(&dir);
    let (s, v) = call(&app, Method::GET, "/v1.47/containers/json?all=1", "").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v, serde_json::json!([]));
    for f in [
        r#"{"status":{"running":true}}"#,
        r#"{"label":["a=b"]}"#,
        r#"{"name":{"web":true},"exited":{"0":true}}"#,
    ] {
        let uri = format!(
            "/v1.47/containers/json?filters={}",
            f.replace('{', "%7B")
                .replace('}', "%7D")
                .replace('"', "%22")
        );
        let (s, _) = call(&app, Method::GET, &uri, "").await;
        assert_eq!(s, StatusCode::OK, "{f}");
    }
    let (s, v) = call(
        &app,
        Method::GET,
        "/v1.47/containers/json?filters=%7B%22bogus%22%3A%7B%22x%22%3Atrue%7D%7D",
        "",
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(v["message"], "invalid filter 'bogus'");
    let (s, _) = call(
        &app,
        Method::GET,
        "/v1.47/containers/json?filters=%7B%22status%22%3A%5B%22nap%22%5D%7D",
        "",
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
}
