//! Pushes that reuse what was pulled, against berth's registry server in process: the
//! distribution metadata recorded by a pull (and persisted in its directory) makes a push to
//! another repository of the same registry mount every layer instead of uploading it; a large
//! layer goes up in `PATCH` chunks and resumes after a 416.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::sync::{Arc, Mutex};

use common::{Log, berth_router, bind, config_for, push, serve_berth, spawn_router, store_layer};
use registry::client::{Client, ClientOptions, PullRequest, PushEvent, PushRequest};
use storage::{ContentStore, Digest};

fn client(metadata_dir: Option<std::path::PathBuf>) -> Client {
    Client::new(ClientOptions {
        metadata_dir,
        ..ClientOptions::default()
    })
    .unwrap()
}

fn push_req(addr: &str, repo: &str, config: &[u8], diffs: &[Digest]) -> PushRequest {
    PushRequest {
        domain: addr.to_string(),
        repository: repo.into(),
        tag: "latest".into(),
        credentials: None,
        config: config.to_vec(),
        diff_ids: diffs.to_vec(),
    }
}

fn pull_req(addr: &str, repo: &str) -> PullRequest {
    PullRequest {
        domain: addr.to_string(),
        repository: repo.into(),
        reference: "latest".into(),
        display: format!("{addr}/{repo}:latest"),
        platform: None,
        credentials: None,
        unpack_into: None,
    }
}

fn count(log: &Log, f: impl Fn(&str) -> bool) -> usize {
    log.lock().unwrap().iter().filter(|l| f(l)).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pulled_layers_are_mounted_into_another_repository() {
    let dir = tempfile::tempdir().unwrap();
    let (addr, log) = serve_berth(&dir.path().join("reg"), None).await;

    // Someone pushes an image to src/img.
    let origin = ContentStore::open(&dir.path().join("origin")).unwrap();
    let diffs = vec![
        store_layer(&origin, "a", b"first layer\n"),
        store_layer(&origin, "b", &[9u8; 300_000]),
    ];
    let config = config_for(&diffs);
    let (first, _) = push(
        &client(None),
        &origin,
        &push_req(&addr, "src/img", &config, &diffs),
    )
    .await;

    // We pull it (the metadata is persisted under meta/), then "restart" (a new client on
    // the same directory) and push it as dst/img.
    let meta = dir.path().join("meta");
    let store = ContentStore::open(&dir.path().join("store")).unwrap();
    let pulled = client(Some(meta.clone()))
        .pull(&store, &pull_req(&addr, "src/img"), &|_| {})
        .await
        .unwrap();
    assert_eq!(pulled.diff_ids, diffs);
    assert!(
        meta.join("v2metadata-by-diffid/sha256")
            .join(diffs[0].hex())
            .is_file()
    );

    log.lock().unwrap().clear();
    let restarted = client(Some(meta.clone()));
    let req = push_req(&addr, "dst/img", &config, &diffs);
    let (pushed, events) = push(&restarted, &store, &req).await;
    for d in &diffs {
        assert!(
            events.contains(&PushEvent::Mounted {
                id: d.short().to_string(),
                from: "src/img".into()
            }),
            "{events:?}"
        );
    }
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, PushEvent::Pushed { .. } | PushEvent::Pushing { .. })),
        "{events:?}"
    );
    // The pulled digests are kept: the manifest is the one pulled.
    assert_eq!(pushed.manifest_digest, first.manifest_digest);
    let mounts = count(&log, |l| {
        l.starts_with("POST /v2/dst/img/blobs/uploads/?mount=sha256%3A")
            && l.contains("&from=src%2Fimg")
            && l.ends_with(" 201")
    });
    assert_eq!(mounts, 2, "{:?}", log.lock().unwrap());
    assert_eq!(count(&log, |l| l.starts_with("PATCH ")), 0);
    // One PUT to an upload: the config (as moby, configs are not mounted).
    assert_eq!(
        count(&log, |l| l.starts_with("PUT /v2/dst/img/blobs/uploads/")),
        1,
        "{:?}",
        log.lock().unwrap()
    );

    // The push was recorded too: a third push to dst/img only asks.
    log.lock().unwrap().clear();
    let (again, events) = push(&client(Some(meta)), &store, &req).await;
    assert_eq!(again.manifest_digest, first.manifest_digest);
    let exists = events
        .iter()
        .filter(|e| matches!(e, PushEvent::Exists { .. }))
        .count();
    assert_eq!(exists, 2, "{events:?}");
    assert_eq!(count(&log, |l| l.contains("/blobs/uploads/")), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_layer_goes_in_chunks_and_resumes_after_a_lost_chunk() {
    let dir = tempfile::tempdir().unwrap();
    // The second of three chunks is lost on the way: the third meets a 416 and the upload
    // resumes where the registry says it is.
    let (addr, log) = serve_berth(&dir.path().join("reg"), Some(2)).await;
    let store = ContentStore::open(&dir.path().join("store")).unwrap();
    let mut big = vec![0u8; 20 << 20];
    for b in big.chunks_mut(8) {
        b.copy_from_slice(&rand::random::<u64>().to_le_bytes()[..b.len()]);
    }
    let diffs = vec![store_layer(&store, "big", &big)];
    let config = config_for(&diffs);
    let c = client(None);
    let (pushed, events) = push(&c, &store, &push_req(&addr, "big/img", &config, &diffs)).await;
    let id = diffs[0].short().to_string();
    assert!(events.contains(&PushEvent::Pushed { id: id.clone() }));
    let progress: Vec<u64> = events
        .iter()
        .filter_map(|e| match e {
            PushEvent::Pushing { current, .. } => Some(*current),
            _ => None,
        })
        .collect();
    assert!(!progress.is_empty(), "{events:?}");

    let patches = count(&log, |l| {
        l.starts_with("PATCH /v2/big/img/blobs/uploads/") && l.ends_with(" 202")
    });
    assert!(patches >= 3, "{:?}", log.lock().unwrap());
    assert_eq!(
        count(&log, |l| l.starts_with("PATCH ") && l.ends_with(" 416")),
        1,
        "{:?}",
        log.lock().unwrap()
    );
    assert_eq!(
        count(&log, |l| l.starts_with("PUT /v2/big/img/blobs/uploads/")
            && l.contains("digest=sha256")
            && l.ends_with(" 201")),
        2,
        "layer and config: {:?}",
        log.lock().unwrap()
    );

    // Pulled back into an empty store: the same bytes.
    let other = ContentStore::open(&dir.path().join("other")).unwrap();
    let pulled = c
        .pull(&other, &pull_req(&addr, "big/img"), &|_| {})
        .await
        .unwrap();
    assert_eq!(pulled.manifest_digest, pushed.manifest_digest);
    assert_eq!(
        other.read_blob(&diffs[0], 64 << 20).unwrap(),
        store.read_blob(&diffs[0], 64 << 20).unwrap()
    );
}

/// Serves the registry behind bearer-token auth: `/v2/…` without `Authorization: Bearer ok`
/// answers 401 with a challenge naming `/token`, which records the scopes asked for.
async fn serve_token_auth(root: &std::path::Path) -> (String, Log) {
    let (listener, addr) = bind().await;
    let scopes: Log = Arc::new(Mutex::new(Vec::new()));
    let (s, realm) = (Arc::clone(&scopes), format!("http://{addr}/token"));
    let router = berth_router(root, None).layer(axum::middleware::from_fn(
        move |req: axum::extract::Request, next: axum::middleware::Next| {
            let (s, realm) = (Arc::clone(&s), realm.clone());
            async move {
                if req.uri().path() == "/token" {
                    let query = req.uri().query().unwrap_or("").to_string();
                    let asked: Vec<String> = query
                        .split('&')
                        .filter_map(|kv| kv.strip_prefix("scope="))
                        .map(|v| {
                            v.replace("%3A", ":")
                                .replace("%2F", "/")
                                .replace("%2C", ",")
                        })
                        .collect();
                    s.lock().unwrap().push(asked.join(" "));
                    return axum::response::Response::builder()
                        .header("content-type", "application/json")
                        .body(axum::body::Body::from(r#"{"token":"ok"}"#))
                        .unwrap();
                }
                let authorized = req
                    .headers()
                    .get("authorization")
                    .is_some_and(|v| v == "Bearer ok");
                if !authorized {
                    return axum::response::Response::builder()
                        .status(401)
                        .header(
                            "www-authenticate",
                            format!(r#"Bearer realm="{realm}",service="test""#),
                        )
                        .body(axum::body::Body::empty())
                        .unwrap();
                }
                next.run(req).await
            }
        },
    ));
    spawn_router(listener, router);
    (addr, scopes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mount_asks_a_token_for_the_source_repository_too() {
    let dir = tempfile::tempdir().unwrap();
    let (addr, scopes) = serve_token_auth(&dir.path().join("reg")).await;
    let store = ContentStore::open(&dir.path().join("store")).unwrap();
    let diffs = vec![store_layer(&store, "a", b"token layer\n")];
    let config = config_for(&diffs);
    let c = client(Some(dir.path().join("meta")));
    push(&c, &store, &push_req(&addr, "src/img", &config, &diffs)).await;
    assert!(
        scopes
            .lock()
            .unwrap()
            .contains(&"repository:src/img:pull,push".to_string()),
        "{:?}",
        scopes.lock().unwrap()
    );
    let (_, events) = push(&c, &store, &push_req(&addr, "dst/img", &config, &diffs)).await;
    assert!(
        events.contains(&PushEvent::Mounted {
            id: diffs[0].short().to_string(),
            from: "src/img".into()
        }),
        "{events:?}"
    );
    assert!(
        scopes
            .lock()
            .unwrap()
            .contains(&"repository:dst/img:pull,push repository:src/img:pull".to_string()),
        "{:?}",
        scopes.lock().unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_mount_becomes_the_upload() {
    let dir = tempfile::tempdir().unwrap();
    let (addr, log) = serve_berth(&dir.path().join("reg"), None).await;
    let store = ContentStore::open(&dir.path().join("store")).unwrap();
    let diffs = vec![store_layer(&store, "a", b"never pushed before\n")];
    let config = config_for(&diffs);
    let c = client(None);
    // The metadata names a repository that does not have the blob.
    let ghost = Digest::of(b"not a real blob");
    c.remember(
        &addr,
        "ghost/img",
        vec![(diffs[0].clone(), ghost.clone(), 42)],
    )
    .await;
    let (_, events) = push(&c, &store, &push_req(&addr, "t/img", &config, &diffs)).await;
    assert!(
        events.contains(&PushEvent::Pushed {
            id: diffs[0].short().to_string()
        }),
        "{events:?}"
    );
    let reqs = log.lock().unwrap().clone();
    assert!(
        reqs.iter().any(|r| r.starts_with(&format!(
            "POST /v2/t/img/blobs/uploads/?mount=sha256%3A{}&from=ghost%2Fimg",
            ghost.hex()
        )) && r.ends_with(" 202")),
        "{reqs:?}"
    );
    // The upload the registry started instead carried the layer: the only other upload
    // started is the config's.
    let plain_posts = reqs
        .iter()
        .filter(|r| r.starts_with("POST /v2/t/img/blobs/uploads/ "))
        .count();
    assert_eq!(plain_posts, 1, "{reqs:?}");
    let puts = reqs
        .iter()
        .filter(|r| r.starts_with("PUT /v2/t/img/blobs/uploads/") && r.ends_with(" 201"))
        .count();
    assert_eq!(puts, 2, "{reqs:?}");
}
