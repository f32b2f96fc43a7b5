//! Image routes end to end through `daemon::app` (no sockets, no root): load, list, inspect,
//! history, tag, save, delete, import, prune.

#![allow(clippy::unwrap_used)] // test helpers, outside #[test] fns

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use engine::{Engine, EngineConfig};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

fn app(dir: &std::path::Path) -> Router {
    let engine = Engine::open(EngineConfig {
        data_root: dir.join("root"),
        exec_root: dir.join("exec"),
        debug: false,
        network: engine::NetConfig {
            iptables: false,
            ..Default::default()
        },
    })
    .unwrap();
    daemon::app(Arc::new(engine))
}

async fn call(
    app: &Router,
    method: Method,
    uri: &str,
    body: Vec<u8>,
) -> (StatusCode, String, Vec<u8>) {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .body(Body::from(body))
        .unwrap();
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let ctype = res
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let body = res.into_body().collect().await.unwrap().to_bytes().to_vec();
    (status, ctype, body)
}

fn json_lines(body: &[u8]) -> Vec<Value> {
    body.split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect()
}

#[tokio::test]
async fn load_list_inspect_tag_save_delete() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path());
    let archive = std::fs::read(test_support::fixtures::busybox_archive(dir.path())).unwrap();

    // Non-quiet load: progress messages, then the Loaded line.
    let (status, ctype, body) =
        call(&app, Method::POST, "/v1.47/images/load", archive.clone()).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    assert_eq!(ctype, "application/json");
    let lines = json_lines(&body);
    assert!(
        lines
            .iter()
            .any(|l| l["status"] == "Loading layer" && l["progressDetail"]["total"].is_u64())
    );
    assert_eq!(
        lines.last().unwrap()["stream"],
        "Loaded image: busybox:latest\n"
    );

    // Quiet load: only the stream lines.
    let (status, _, body) = call(&app, Method::POST, "/images/load?quiet=1", archive).await;
    assert_eq!(status, StatusCode::OK);
    let lines = json_lines(&body);
    assert!(lines.iter().all(|l| l.get("stream").is_some()), "{lines:?}");

    let (status, _, body) = call(&app, Method::GET, "/images/json", vec![]).await;
    assert_eq!(status, StatusCode::OK);
    let list: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
    let img = &list[0];
    assert_eq!(img["RepoTags"], serde_json::json!(["busybox:latest"]));
    assert_eq!(img["Containers"], -1);
    assert_eq!(img["SharedSize"], -1);
    assert!(img["Labels"].is_object());
    let id = img["Id"].as_str().unwrap().to_string();
    assert!(id.starts_with("sha256:"));

    let (status, _, body) = call(&app, Method::GET, "/images/busybox/json", vec![]).await;
    assert_eq!(status, StatusCode::OK);
    let inspect: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(inspect["Id"], id);
    assert_eq!(inspect["RootFS"]["Type"], "layers");
    assert_eq!(inspect["GraphDriver"]["Name"], "overlay2");
    assert!(
        inspect["GraphDriver"]["Data"]["LowerDir"]
            .as_str()
            .unwrap()
            .contains("/snapshots/")
    );

    let (status, _, body) = call(&app, Method::GET, "/images/busybox:latest/history", vec![]).await;
    assert_eq!(status, StatusCode::OK);
    let history: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(history[0]["Id"], id);

    let (status, _, _) = call(
        &app,
        Method::POST,
        "/images/busybox/tag?repo=localhost:5000/bb&tag=v1",
        vec![],
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _, body) = call(
        &app,
        Method::GET,
        "/images/localhost:5000/bb:v1/json",
        vec![],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));

    let (status, ctype, body) = call(
        &app,
        Method::GET,
        "/images/get?names=busybox&names=localhost:5000/bb:v1",
        vec![],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ctype, "application/x-tar");
    let mut tar = tar::Archive::new(&body[..]);
    let names: Vec<String> = tar
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect();
    assert!(names.iter().any(|n| n == "manifest.json"), "{names:?}");

    let (status, _, body) =
        call(&app, Method::DELETE, "/images/localhost:5000/bb:v1", vec![]).await;
    assert_eq!(status, StatusCode::OK);
    let items: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        items,
        serde_json::json!([{"Untagged": "localhost:5000/bb:v1"}])
    );
}

#[tokio::test]
async fn import_streams_the_id() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path());
    let rootfs = std::fs::read(test_support::fixtures::busybox_rootfs(dir.path())).unwrap();
    let (status, ctype, body) = call(
        &app,
        Method::POST,
        "/v1.47/images/create?fromSrc=-&repo=bb%3Aimported&message=hi&changes=CMD%20%5B%22sh%22%5D",
        rootfs,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    assert_eq!(ctype, "application/json");
    let lines = json_lines(&body);
    let last = lines.last().unwrap()["status"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(last.starts_with("sha256:"), "{last}");
    let (status, _, body) = call(&app, Method::GET, "/images/bb:imported/json", vec![]).await;
    assert_eq!(status, StatusCode::OK);
    let inspect: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(inspect["Id"], last);
    assert_eq!(inspect["Config"]["Cmd"], serde_json::json!(["sh"]));

    let (status, _, body) = call(&app, Method::POST, "/images/prune", vec![]).await;
    assert_eq!(status, StatusCode::OK);
    let prune: Value = serde_json::from_slice(&body).unwrap();
    assert!(prune["ImagesDeleted"].is_array());
    assert!(prune["SpaceReclaimed"].is_u64());
}

#[tokio::test]
async fn broken_archive_is_400_before_streaming() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path());
    let (status, ctype, body) = call(&app, Method::POST, "/images/load", b"garbage".to_vec()).await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "{}",
        String::from_utf8_lossy(&body)
    );
    assert_eq!(ctype, "application/json");
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .starts_with("invalid archive")
    );
}
