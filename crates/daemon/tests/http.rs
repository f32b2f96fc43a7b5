//! HTTP behaviour of `daemon::app` against a real engine on a temporary data root (no root, no
//! sockets).

#![allow(clippy::unwrap_used)] // test helpers, outside #[test] fns

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use engine::{Engine, EngineConfig};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

struct TestApp {
    _dir: tempfile::TempDir,
    app: Router,
}

fn test_app() -> TestApp {
    let dir = tempfile::tempdir().unwrap();
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
    TestApp {
        app: daemon::app(Arc::new(engine)),
        _dir: dir,
    }
}

struct Reply {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: Vec<u8>,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }

    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap())
            .unwrap_or("")
    }

    fn message(&self) -> String {
        assert_eq!(self.header("content-type"), "application/json");
        self.json()["message"].as_str().unwrap().to_string()
    }
}

async fn call(t: &TestApp, method: Method, uri: &str) -> Reply {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .body(Body::empty())
        .unwrap();
    let res = t.app.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let body = res.into_body().collect().await.unwrap().to_bytes().to_vec();
    Reply {
        status,
        headers,
        body,
    }
}

fn assert_common_headers(r: &Reply) {
    assert_eq!(r.header("api-version"), "1.47");
    assert_eq!(r.header("ostype"), "linux");
    assert!(
        r.header("server").starts_with("Docker/"),
        "{}",
        r.header("server")
    );
    assert!(r.header("server").ends_with(" (linux)"));
}

#[tokio::test]
async fn ping_get_and_head() {
    let t = test_app();
    for method in [Method::GET, Method::HEAD] {
        let r = call(&t, method.clone(), "/_ping").await;
        assert_eq!(r.status, StatusCode::OK);
        assert_common_headers(&r);
        assert_eq!(r.header("docker-experimental"), "false");
        assert_eq!(r.header("builder-version"), "1");
        assert_eq!(r.header("swarm"), "inactive");
        assert_eq!(
            r.header("cache-control"),
            "no-cache, no-store, must-revalidate"
        );
        assert_eq!(r.header("pragma"), "no-cache");
        if method == Method::GET {
            assert_eq!(r.body, b"OK");
        } else {
            assert!(r.body.is_empty());
        }
    }
}

#[tokio::test]
async fn version_shape() {
    let t = test_app();
    let r = call(&t, Method::GET, "/version").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("content-type"), "application/json");
    let v = r.json();
    assert_eq!(v["ApiVersion"], "1.47");
    assert_eq!(v["MinAPIVersion"], "1.24");
    assert_eq!(v["Os"], "linux");
    assert_eq!(v["Platform"]["Name"], "berth");
    for key in [
        "Version",
        "GitCommit",
        "GoVersion",
        "Arch",
        "KernelVersion",
        "BuildTime",
    ] {
        assert!(v[key].is_string(), "{key}");
    }
    let engine = &v["Components"][0];
    assert_eq!(engine["Name"], "Engine");
    assert_eq!(engine["Details"]["ApiVersion"], "1.47");
    assert_eq!(engine["Details"]["MinAPIVersion"], "1.24");
    assert_eq!(engine["Details"]["Os"], "linux");
}

#[tokio::test]
async fn versioned_paths() {
    let t = test_app();
    for prefix in ["/v1.24", "/v1.41", "/v1.47"] {
        let r = call(&t, Method::GET, &format!("{prefix}/version")).await;
        assert_eq!(r.status, StatusCode::OK, "{prefix}");
        assert_common_headers(&r);
        let r = call(&t, Method::HEAD, &format!("{prefix}/_ping")).await;
        assert_eq!(r.status, StatusCode::OK, "{prefix}");
    }
    let r = call(&t, Method::GET, "/v1.48/version").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_common_headers(&r);
    assert_eq!(
        r.message(),
        "client version 1.48 is too new. Maximum supported API version is 1.47"
    );
    let r = call(&t, Method::GET, "/v1.23/version").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        r.message(),
        "client version 1.23 is too old. Minimum supported API version is 1.24, please upgrade your client to a newer version"
    );
}

#[tokio::test]
async fn unknown_route_is_json_404() {
    let t = test_app();
    for uri in ["/nope", "/v1.47/nope", "/images/busybox"] {
        let r = call(&t, Method::GET, uri).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{uri}");
        assert_eq!(r.message(), "page not found");
        assert_common_headers(&r);
    }
}

#[tokio::test]
async fn info_shape() {
    let t = test_app();
    let r = call(&t, Method::GET, "/v1.47/info").await;
    assert_eq!(r.status, StatusCode::OK);
    let v = r.json();
    assert_eq!(v["Images"], 0);
    assert_eq!(v["Containers"], 0);
    assert_eq!(v["Driver"], "overlay2");
    assert_eq!(v["OSType"], "linux");
    assert_eq!(v["Swarm"]["LocalNodeState"], "inactive");
    assert!(v["ID"].as_str().unwrap().len() >= 32);
    assert!(v["DockerRootDir"].as_str().unwrap().ends_with("/root"));
}

#[tokio::test]
async fn empty_image_list() {
    let t = test_app();
    let r = call(&t, Method::GET, "/v1.47/images/json").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("content-type"), "application/json");
    assert_eq!(r.json(), serde_json::json!([]));
    let r = call(
        &t,
        Method::GET,
        "/images/json?all=1&filters=%7B%22dangling%22%3A%5B%22true%22%5D%7D",
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json(), serde_json::json!([]));
}

#[tokio::test]
async fn bad_filters_are_400() {
    let t = test_app();
    let r = call(
        &t,
        Method::GET,
        "/images/json?filters=%7B%22colour%22%3A%7B%22red%22%3Atrue%7D%7D",
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.message(), "invalid filter 'colour'");
    let r = call(&t, Method::GET, "/images/json?filters=%7Bnot-json").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.message().starts_with("invalid filters"));
    let r = call(&t, Method::GET, "/images/json?filters=%zz").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.message().contains("'query'"), "{}", r.message());
}

#[tokio::test]
async fn unknown_image_is_404_json() {
    let t = test_app();
    for uri in [
        "/v1.47/images/nosuchimage:latest/json",
        "/images/localhost:5000/bb:v1/json",
        "/images/nosuch/history",
    ] {
        let r = call(&t, Method::GET, uri).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{uri}");
        assert!(
            r.message().starts_with("No such image: "),
            "{}",
            r.message()
        );
        assert_common_headers(&r);
    }
    let r = call(&t, Method::GET, "/images/get?names=nosuch").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.message().starts_with("No such image: "));
    let r = call(&t, Method::DELETE, "/images/myrepo/nosuch:v1").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn invalid_reference_is_400() {
    let t = test_app();
    let r = call(&t, Method::GET, "/images/UPPER/json").await;
    assert_eq!(
        r.status,
        StatusCode::BAD_REQUEST,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    assert!(
        r.message().starts_with("invalid reference format"),
        "{}",
        r.message()
    );
    let r = call(&t, Method::POST, "/images/busybox/tag?repo=Bad&tag=x").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.message().starts_with("invalid reference format"),
        "{}",
        r.message()
    );
}

#[tokio::test]
async fn inspect_fallthrough_objects_are_404() {
    let t = test_app();
    let r = call(&t, Method::GET, "/v1.47/containers/x/json").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.message(), "No such container: x");
    for uri in [
        "/v1.47/networks/x",
        "/v1.47/volumes/x",
        "/v1.47/plugins/x/json",
    ] {
        let r = call(&t, Method::GET, uri).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{uri}");
        assert!(!r.message().is_empty());
    }
    let r = call(&t, Method::GET, "/v1.47/containers/json?all=1").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json(), serde_json::json!([]));
}

#[tokio::test]
async fn unbuilt_endpoints_are_501() {
    let t = test_app();
    let r = call(&t, Method::GET, "/v1.47/plugins").await;
    assert_eq!(r.status, StatusCode::NOT_IMPLEMENTED);
    assert_eq!(r.message(), "GET /plugins is not implemented yet");
    // A build without a Dockerfile in its context is refused before anything runs.
    let r = call(&t, Method::POST, "/v1.47/build").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        r.message(),
        "Cannot locate specified Dockerfile: Dockerfile"
    );
    // Pull exists now: a bad name is refused before any registry is asked.
    let r = call(&t, Method::POST, "/images/create?fromImage=UPPER&tag=3").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.message().starts_with("invalid reference format"),
        "{}",
        r.message()
    );
}

#[tokio::test]
async fn system_prune_endpoints() {
    let t = test_app();
    for (uri, body) in [
        (
            "/v1.47/containers/prune",
            json!({"ContainersDeleted": null, "SpaceReclaimed": 0}),
        ),
        ("/v1.47/networks/prune", json!({"NetworksDeleted": null})),
        (
            "/v1.47/volumes/prune",
            json!({"VolumesDeleted": [], "SpaceReclaimed": 0}),
        ),
        (
            "/v1.47/images/prune",
            json!({"ImagesDeleted": [], "SpaceReclaimed": 0}),
        ),
    ] {
        let r = call(&t, Method::POST, uri).await;
        assert_eq!(r.status, StatusCode::OK, "{uri}");
        assert_eq!(r.json(), body, "{uri}");
    }
    let r = call(&t, Method::POST, "/v1.47/build/prune?filters=").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.json(),
        serde_json::json!({"CachesDeleted": [], "SpaceReclaimed": 0})
    );
}

#[tokio::test]
async fn system_df_shape() {
    let t = test_app();
    let r = call(&t, Method::GET, "/v1.47/system/df").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.json(),
        serde_json::json!({"LayersSize": 0, "Images": [], "Containers": [], "Volumes": [], "BuildCache": []})
    );
}

#[tokio::test]
async fn wrong_method_is_json() {
    let t = test_app();
    let r = call(&t, Method::DELETE, "/version").await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.header(header::CONTENT_TYPE.as_str()), "application/json");
}

#[tokio::test]
async fn second_engine_on_same_root_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = EngineConfig {
        data_root: dir.path().join("root"),
        exec_root: dir.path().join("exec"),
        debug: false,
        network: engine::NetConfig {
            iptables: false,
            ..Default::default()
        },
    };
    let _first = Engine::open(cfg.clone()).unwrap();
    let err = Engine::open(cfg).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "data root {} is in use by another berthd",
            dir.path().join("root").display()
        )
    );
}

#[tokio::test]
async fn pause_unpause_top_of_unknown_container_are_404() {
    let t = test_app();
    for (method, uri) in [
        (Method::POST, "/v1.47/containers/nosuch/pause"),
        (Method::POST, "/v1.47/containers/nosuch/unpause"),
        (Method::GET, "/v1.47/containers/nosuch/top?ps_args=aux"),
    ] {
        let r = call(&t, method, uri).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{uri}");
        assert_eq!(r.message(), "No such container: nosuch", "{uri}");
    }
}

#[tokio::test]
async fn container_prune_filters() {
    let t = test_app();
    let r = call(
        &t,
        Method::POST,
        "/v1.47/containers/prune?filters=%7B%22until%22%3A%5B%2210m%22%5D%2C%22label%22%3A%5B%22a%3Db%22%5D%7D",
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.json(),
        json!({"ContainersDeleted": null, "SpaceReclaimed": 0})
    );
    let r = call(
        &t,
        Method::POST,
        "/v1.47/containers/prune?filters=%7B%22dangling%22%3A%5B%22true%22%5D%7D",
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = call(
        &t,
        Method::POST,
        "/v1.47/containers/prune?filters=%7B%22until%22%3A%5B%22notatime%22%5D%7D",
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}
