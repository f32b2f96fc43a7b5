//! The push client against berth's own registry server, in process on 127.0.0.1: an image
//! made in memory is pushed, pulled back into another store with the pull client and
//! compared; pushing again (same client, or a new one that must recompress) uploads nothing.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::sync::{Arc, Mutex};

use registry::client::{Client, ClientOptions, PullRequest, PushEvent, PushRequest};
use storage::{ContentStore, Digest};

/// Serves the registry on a free port; returns the address and the request log
/// (`METHOD path status`).
async fn serve(root: &std::path::Path) -> (String, Arc<Mutex<Vec<String>>>) {
    let router = registry::server::router(&registry::server::Options {
        addr: String::new(),
        root: root.to_path_buf(),
        htpasswd: None,
        tls: None,
    })
    .unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let l = Arc::clone(&log);
    let router = router.layer(axum::middleware::from_fn(
        move |req: axum::extract::Request, next: axum::middleware::Next| {
            let l = Arc::clone(&l);
            async move {
                let line = format!("{} {}", req.method(), req.uri().path());
                let resp = next.run(req).await;
                l.lock()
                    .unwrap()
                    .push(format!("{line} {}", resp.status().as_u16()));
                resp
            }
        },
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    (addr, log)
}

/// Two layers and a config naming them, in `store`.
fn image(store: &ContentStore) -> (Vec<u8>, Vec<Digest>) {
    let mut diffs = Vec::new();
    for (name, body) in [("a", &b"first layer\n"[..]), ("b", &[9u8; 300_000][..])] {
        let mut tar = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(body.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        tar.append_data(&mut h, name, body).unwrap();
        let plain = tar.into_inner().unwrap();
        diffs.push(store.write_blob(&plain, None).unwrap());
    }
    let config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": diffs.iter().map(ToString::to_string).collect::<Vec<_>>()},
    });
    (serde_json::to_vec(&config).unwrap(), diffs)
}

async fn push(
    client: &Client,
    store: &ContentStore,
    req: &PushRequest,
) -> (registry::client::Pushed, Vec<PushEvent>) {
    let events = Mutex::new(Vec::new());
    let r = client
        .push(store, req, &|e| events.lock().unwrap().push(e))
        .await
        .unwrap();
    (r, events.into_inner().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_then_pull_back() {
    let dir = tempfile::tempdir().unwrap();
    let (addr, log) = serve(&dir.path().join("reg")).await;
    let store = ContentStore::open(&dir.path().join("src")).unwrap();
    let (config, diff_ids) = image(&store);
    let req = PushRequest {
        domain: addr.clone(),
        repository: "t/img".into(),
        tag: "v1".into(),
        credentials: None,
        config: config.clone(),
        diff_ids: diff_ids.clone(),
    };
    let client = Client::new(ClientOptions::default()).unwrap();
    let (first, events) = push(&client, &store, &req).await;
    for d in &diff_ids {
        let id = d.short().to_string();
        assert!(events.contains(&PushEvent::Preparing { id: id.clone() }));
        assert!(events.contains(&PushEvent::Pushed { id }), "{events:?}");
    }
    assert!(first.size > 0);

    // Pulled back into an empty store: the same config and layers.
    let other = ContentStore::open(&dir.path().join("dst")).unwrap();
    let pulled = client
        .pull(
            &other,
            &PullRequest {
                domain: addr.clone(),
                repository: "t/img".into(),
                reference: "v1".into(),
                display: format!("{addr}/t/img:v1"),
                platform: None,
                credentials: None,
                unpack_into: None,
            },
            &|_| {},
        )
        .await
        .unwrap();
    assert_eq!(pulled.manifest_digest, first.manifest_digest);
    assert_eq!(pulled.config, config);
    assert_eq!(pulled.diff_ids, diff_ids);
    for d in &diff_ids {
        assert_eq!(
            other.read_blob(d, 1 << 20).unwrap(),
            store.read_blob(d, 1 << 20).unwrap()
        );
    }

    // Again, with this client and with a new one (recompressing): nothing uploaded.
    for client in [client, Client::new(ClientOptions::default()).unwrap()] {
        log.lock().unwrap().clear();
        let (again, events) = push(&client, &store, &req).await;
        assert_eq!(again.manifest_digest, first.manifest_digest);
        assert!(
            !events
                .iter()
                .any(|e| matches!(e, PushEvent::Pushed { .. } | PushEvent::Pushing { .. })),
            "{events:?}"
        );
        let exists = events
            .iter()
            .filter(|e| matches!(e, PushEvent::Exists { .. }))
            .count();
        assert_eq!(exists, 2);
        let uploads = log
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains("/blobs/uploads/"))
            .count();
        assert_eq!(uploads, 0, "{:?}", log.lock().unwrap());
    }
}
