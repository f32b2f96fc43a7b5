//! The push client against berth's own registry server, in process on 127.0.0.1: an image
//! made in memory is pushed, pulled back into another store with the pull client and
//! compared; pushing again (same client, or a new one that must recompress) uploads nothing.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use common::{config_for, push, serve_berth, store_layer};
use registry::client::{Client, ClientOptions, PullRequest, PushEvent, PushRequest};
use storage::{ContentStore, Digest};

/// Two layers and a config naming them, in `store`.
fn image(store: &ContentStore) -> (Vec<u8>, Vec<Digest>) {
    let diffs = vec![
        store_layer(store, "a", b"first layer\n"),
        store_layer(store, "b", &[9u8; 300_000]),
    ];
    (config_for(&diffs), diffs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_then_pull_back() {
    let dir = tempfile::tempdir().unwrap();
    let (addr, log) = serve_berth(&dir.path().join("reg"), None).await;
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
