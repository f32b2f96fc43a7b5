//! The search client against berth's own registry server (its `/v1/search` extension), in
//! process on 127.0.0.1, and against a server without a search API (404, as Debian's
//! docker-registry answers).

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use common::{berth_router, config_for, serve_router, store_layer};
use registry::client::{Client, ClientOptions, PushRequest, SearchRequest};
use storage::ContentStore;

/// A one-layer image in `store`: (config, diff IDs).
fn image(store: &ContentStore) -> (Vec<u8>, Vec<storage::Digest>) {
    let diffs = vec![store_layer(store, "f", b"hi\n")];
    (config_for(&diffs), diffs)
}

fn search(index: &str, term: &str, limit: u32) -> SearchRequest {
    SearchRequest {
        index: index.into(),
        term: term.into(),
        limit,
        credentials: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_berths_registry() {
    let dir = tempfile::tempdir().unwrap();
    let addr = serve_router(berth_router(&dir.path().join("reg"), None)).await;
    let store = ContentStore::open(&dir.path().join("src")).unwrap();
    let (config, diff_ids) = image(&store);
    let client = Client::new(ClientOptions::default()).unwrap();
    for repo in ["test/busybox", "test/redis", "other/busybox-extras"] {
        let req = PushRequest {
            domain: addr.clone(),
            repository: repo.into(),
            tag: "v1".into(),
            credentials: None,
            config: config.clone(),
            diff_ids: diff_ids.clone(),
        };
        client.push(&store, &req, &|_| {}).await.unwrap();
    }

    let found = client.search(&search(&addr, "busybox", 25)).await.unwrap();
    let names: Vec<_> = found.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["other/busybox-extras", "test/busybox"]);
    assert!(
        found
            .iter()
            .all(|r| r.star_count == 0 && !r.is_official && r.description.is_empty())
    );

    let found = client.search(&search(&addr, "REDIS", 25)).await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].name, "test/redis");

    let found = client.search(&search(&addr, "", 2)).await.unwrap();
    assert_eq!(found.len(), 2, "n limits the answer");
    assert!(
        client
            .search(&search(&addr, "nginx", 25))
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_without_search_api() {
    // Every path 404s, as Debian's docker-registry answers /v1/search.
    let addr = serve_router(axum::Router::new()).await;
    let client = Client::new(ClientOptions::default()).unwrap();
    let err = client
        .search(&search(&addr, "busybox", 25))
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "Unexpected status code 404");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_registry_names_both_attempts() {
    // A port nothing listens on (bound, then released).
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let client = Client::new(ClientOptions::default()).unwrap();
    let err = client
        .search(&search(&addr, "busybox", 25))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with(&format!("invalid registry endpoint \"http://{addr}/v1/\"")),
        "{err}"
    );
    assert!(err.contains("HTTPS attempt: Get \""), "{err}");
    assert!(
        err.contains(&format!("HTTP attempt: Get \"http://{addr}/v1/_ping\"")),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_sends_basic_auth() {
    let dir = tempfile::tempdir().unwrap();
    let htpasswd = dir.path().join("htpasswd");
    let hash = bcrypt::hash("s3cret", 4).unwrap();
    std::fs::write(&htpasswd, format!("alice:{hash}\n")).unwrap();
    let addr = serve_router(berth_router(&dir.path().join("reg"), Some(htpasswd))).await;
    let client = Client::new(ClientOptions::default()).unwrap();
    let err = client.search(&search(&addr, "x", 25)).await.unwrap_err();
    assert_eq!(err.to_string(), "Unexpected status code 401");
    let mut req = search(&addr, "x", 25);
    req.credentials = Some(registry::client::Credentials {
        username: "alice".into(),
        password: "s3cret".into(),
    });
    assert!(client.search(&req).await.unwrap().is_empty());
}
