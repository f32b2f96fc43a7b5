//! The pull client against a tiny fake registry (plain HTTP on 127.0.0.1, one thread):
//! platform selection in an index, a wrong layer digest, an oversized manifest, endless 401s,
//! a cross-host redirect, truncated and drip-fed blobs, a lying `Content-Length`, a resumed
//! pull and unpacking while downloading. No root, no network beyond loopback.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::sync::{Arc, Mutex};

use common::{Reply, Seen, gzip, image, layer_tar, registry_for, serve_fake};
use registry::RegistryError;
use registry::client::{Client, ClientOptions, Credentials, Platform, PullEvent, PullRequest};
use storage::{ContentStore, Digest};

fn request(addr: &str, reference: &str) -> PullRequest {
    PullRequest {
        domain: addr.to_string(),
        repository: "test/img".into(),
        reference: reference.into(),
        display: format!("{addr}/test/img:{reference}"),
        platform: Some(Platform::parse("linux/amd64").unwrap()),
        credentials: None,
        unpack_into: None,
    }
}

async fn pull(
    store: &ContentStore,
    req: &PullRequest,
) -> (
    Result<registry::client::Pulled, RegistryError>,
    Vec<PullEvent>,
) {
    let client = Client::new(ClientOptions::default()).unwrap();
    let events = Mutex::new(Vec::new());
    let r = client
        .pull(store, req, &|e| events.lock().unwrap().push(e))
        .await;
    (r, events.into_inner().unwrap())
}

#[tokio::test]
async fn index_to_amd64_and_layers_once() {
    let img = image(None);
    let (diff, config) = (img.diff.clone(), img.config.clone());
    let (addr, seen) = serve_fake(registry_for(img));
    let dir = tempfile::tempdir().unwrap();
    let store = ContentStore::open(dir.path()).unwrap();
    let (r, events) = pull(&store, &request(&addr, "latest")).await;
    let p = r.unwrap();
    assert_eq!(p.config, config);
    assert_eq!(p.diff_ids, vec![diff.clone()]);
    assert_eq!(p.fetched.len(), 1);
    assert!(store.exists(&diff), "layer stored by diff ID");
    assert_eq!(events.first(), Some(&PullEvent::Resolved));
    assert!(
        events
            .iter()
            .any(|e| matches!(e, PullEvent::Verified { .. }))
    );
    // The arm64 entry was never asked for.
    assert!(!seen.lock().unwrap().iter().any(|(p, _)| p.contains("9999")));
    // Again: the layer is not fetched a second time.
    let blobs_before = seen
        .lock()
        .unwrap()
        .iter()
        .filter(|(p, _)| p.contains("/blobs/"))
        .count();
    let (r, events) = pull(&store, &request(&addr, "latest")).await;
    assert!(r.unwrap().fetched.is_empty());
    assert!(
        events
            .iter()
            .any(|e| matches!(e, PullEvent::LayerExists { .. }))
    );
    let blobs_after = seen
        .lock()
        .unwrap()
        .iter()
        .filter(|(p, _)| p.contains("/blobs/"))
        .count();
    assert_eq!(blobs_after, blobs_before + 1, "only the config again");
    // A platform the index lacks.
    let mut req = request(&addr, "latest");
    req.platform = Some(Platform::parse("linux/s390x").unwrap());
    let (r, _) = pull(&store, &req).await;
    assert_eq!(
        r.unwrap_err().to_string(),
        "no matching manifest for linux/s390x in the manifest list entries"
    );
    // A missing tag: Docker's words.
    let (r, _) = pull(&store, &request(&addr, "nope")).await;
    let err = r.unwrap_err();
    assert!(matches!(err, RegistryError::ManifestUnknown { .. }));
    assert_eq!(
        err.to_string(),
        format!("manifest for {addr}/test/img:nope not found: manifest unknown: manifest unknown")
    );
}

#[tokio::test]
async fn wrong_layer_digest_stores_nothing() {
    let liar = Digest::of(b"not the layer");
    let img = image(Some(&liar));
    let (addr, _) = serve_fake(registry_for(img));
    let dir = tempfile::tempdir().unwrap();
    let store = ContentStore::open(dir.path()).unwrap();
    let (r, _) = pull(&store, &request(&addr, "latest")).await;
    let err = r.unwrap_err().to_string();
    assert!(
        err.contains(&liar.to_string()) && err.contains("verification failed"),
        "{err}"
    );
    assert!(
        store.list().unwrap().is_empty(),
        "nothing unverified is stored"
    );
    no_ingest(dir.path());
}

#[tokio::test]
async fn oversized_manifest_is_refused() {
    let (addr, _) = serve_fake(|path, _| match path {
        "/v2/" => (200, vec![], vec![]),
        _ => (200, vec![], vec![b' '; 5 << 20]),
    });
    let dir = tempfile::tempdir().unwrap();
    let store = ContentStore::open(dir.path()).unwrap();
    let (r, _) = pull(&store, &request(&addr, "latest")).await;
    let err = r.unwrap_err().to_string();
    assert!(
        err.contains("manifest is larger than 4194304 bytes"),
        "{err}"
    );
}

#[tokio::test]
async fn endless_401_is_a_bounded_denial() {
    // The token realm is this same server; its tokens are never accepted.
    let me: Arc<std::sync::OnceLock<String>> = Arc::default();
    let me2 = Arc::clone(&me);
    let (addr, seen) = serve_fake(move |path, _| {
        if path.starts_with("/token") {
            return (200, vec![], br#"{"token":"t"}"#.to_vec());
        }
        let realm = format!("http://{}/token", me2.get().cloned().unwrap_or_default());
        (
            401,
            vec![(
                "WWW-Authenticate".into(),
                format!("Bearer realm=\"{realm}\",service=\"fake\""),
            )],
            br#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#.to_vec(),
        )
    });
    me.set(addr.clone()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = ContentStore::open(dir.path()).unwrap();
    let (r, _) = pull(&store, &request(&addr, "latest")).await;
    let err = r.unwrap_err();
    assert!(matches!(err, RegistryError::Denied { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        "pull access denied for test/img, repository does not exist or may require 'docker login': unauthorized: authentication required"
    );
    let seen = seen.lock().unwrap();
    assert!(
        seen.iter().any(|(p, _)| p.starts_with("/token")),
        "{seen:?}"
    );
    assert!(
        seen.iter().any(|(_, a)| a.as_deref() == Some("Bearer t")),
        "{seen:?}"
    );
    assert!(seen.len() < 10, "bounded: {seen:?}");
}

#[tokio::test]
async fn redirect_to_another_host_drops_credentials() {
    let img = image(None);
    let layer = img.layer.clone();
    let layer_digest = Digest::of(&layer).to_string();
    // Host B: where blobs are redirected; records what it was sent.
    let (cdn, cdn_seen) = serve_fake(move |_, _| (200, vec![], layer.clone()));
    let inner = registry_for(img);
    let (addr, seen) = serve_fake(move |path, headers| {
        if headers.get("authorization").is_none() {
            return (
                401,
                vec![("WWW-Authenticate".into(), "Basic realm=\"fake\"".into())],
                vec![],
            );
        }
        if path == format!("/v2/test/img/blobs/{layer_digest}") {
            // localhost vs 127.0.0.1: another host as far as credentials go.
            let port = cdn.rsplit(':').next().unwrap_or("");
            return (
                307,
                vec![("Location".into(), format!("http://localhost:{port}/blob"))],
                vec![],
            );
        }
        inner(path, headers)
    });
    let dir = tempfile::tempdir().unwrap();
    let store = ContentStore::open(dir.path()).unwrap();
    let mut req = request(&addr, "latest");
    req.credentials = Some(Credentials {
        username: "u".into(),
        password: "secret".into(),
    });
    let (r, _) = pull(&store, &req).await;
    r.unwrap();
    assert!(
        seen.lock().unwrap().iter().any(|(_, a)| a.is_some()),
        "the registry got the credentials"
    );
    let cdn_seen = cdn_seen.lock().unwrap();
    assert!(!cdn_seen.is_empty(), "the blob came from the other host");
    assert!(
        cdn_seen.iter().all(|(_, a)| a.is_none()),
        "credentials went to another host: {cdn_seen:?}"
    );
}

#[tokio::test]
async fn concurrent_pulls_fetch_a_layer_once() {
    let img = image(None);
    let layer_path = format!("/v2/test/img/blobs/{}", Digest::of(&img.layer));
    let (addr, seen) = serve_fake(registry_for(img));
    let dir = tempfile::tempdir().unwrap();
    let store = ContentStore::open(dir.path()).unwrap();
    let req = request(&addr, "latest");
    let (a, b) = tokio::join!(pull(&store, &req), pull(&store, &req));
    a.0.unwrap();
    b.0.unwrap();
    let fetched = asked(&seen, &layer_path);
    assert_eq!(fetched, 1, "the layer was downloaded once");
}

#[tokio::test]
async fn bearer_token_from_the_challenge() {
    let me: Arc<std::sync::OnceLock<String>> = Arc::default();
    let me2 = Arc::clone(&me);
    let inner = registry_for(image(None));
    let (addr, seen) = serve_fake(move |path, headers| {
        if let Some(q) = path.strip_prefix("/token?") {
            // The scope asked for is this repository's pull scope.
            let ok =
                q.contains("service=fake") && q.contains("scope=repository%3Atest%2Fimg%3Apull");
            return if ok {
                (200, vec![], br#"{"access_token":"good"}"#.to_vec())
            } else {
                (400, vec![], vec![])
            };
        }
        if headers.get("authorization").map(String::as_str) != Some("Bearer good") {
            let realm = format!("http://{}/token", me2.get().cloned().unwrap_or_default());
            return (
                401,
                vec![(
                    "WWW-Authenticate".into(),
                    format!(
                        "Bearer realm=\"{realm}\",service=\"fake\",scope=\"repository:test/img:pull\""
                    ),
                )],
                vec![],
            );
        }
        inner(path, headers)
    });
    me.set(addr.clone()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = ContentStore::open(dir.path()).unwrap();
    let (r, _) = pull(&store, &request(&addr, "latest")).await;
    r.unwrap();
    let seen = seen.lock().unwrap();
    let tokens = seen.iter().filter(|(p, _)| p.starts_with("/token")).count();
    assert_eq!(tokens, 1, "one token for the whole pull: {seen:?}");
}

#[tokio::test]
async fn transient_failures_are_retried_then_given_up() {
    let img = image(None);
    let layer_path = format!("/v2/test/img/blobs/{}", Digest::of(&img.layer));
    let diff = img.diff.clone();
    let failures = Arc::new(std::sync::atomic::AtomicUsize::new(2));
    let f2 = Arc::clone(&failures);
    let inner = registry_for(img);
    let lp = layer_path.clone();
    let (addr, seen) = serve_fake(move |path, headers| {
        if path == lp
            && f2
                .fetch_update(
                    std::sync::atomic::Ordering::SeqCst,
                    std::sync::atomic::Ordering::SeqCst,
                    |n| n.checked_sub(1),
                )
                .is_ok()
        {
            return (503, vec![], b"busy".to_vec());
        }
        inner(path, headers)
    });
    let dir = tempfile::tempdir().unwrap();
    let store = ContentStore::open(dir.path()).unwrap();
    let (r, _) = pull(&store, &request(&addr, "latest")).await;
    r.unwrap();
    assert!(store.exists(&diff));
    let tries = asked(&seen, &layer_path);
    assert_eq!(tries, 3, "two 503s, then the layer");

    // Always failing: a bounded number of attempts, then a clear error naming the status.
    let dir = tempfile::tempdir().unwrap();
    let store = ContentStore::open(dir.path()).unwrap();
    failures.store(usize::MAX, std::sync::atomic::Ordering::SeqCst);
    let before = asked(&seen, &layer_path);
    let (r, _) = pull(&store, &request(&addr, "latest")).await;
    let err = r.unwrap_err().to_string();
    assert!(err.contains("503"), "{err}");
    let after = asked(&seen, &layer_path);
    assert_eq!(after - before, 4, "bounded retries");
    assert!(store.list().unwrap().is_empty());
}

/// How often `path` was asked for.
fn asked(seen: &Seen, path: &str) -> usize {
    seen.lock()
        .unwrap()
        .iter()
        .filter(|(p, _)| p == path)
        .count()
}

/// Nothing but committed blobs: no ingest left behind.
fn no_ingest(dir: &std::path::Path) {
    let ingest: Vec<_> = std::fs::read_dir(dir.join("ingest")).unwrap().collect();
    assert!(ingest.is_empty(), "no partial ingest left: {ingest:?}");
}

/// The fake registry for `image(None)`, its layer's replies passed through `tamper` first.
/// Gives (address, what it saw, the layer's digest, its path, its size).
fn serve_tampered(
    tamper: impl Fn(&mut Reply) + Send + Sync + 'static,
) -> (String, Seen, Digest, String, usize) {
    let img = image(None);
    let digest = Digest::of(&img.layer);
    let layer_path = format!("/v2/test/img/blobs/{digest}");
    let size = img.layer.len();
    let inner = registry_for(img);
    let lp = layer_path.clone();
    let (addr, seen) = serve_fake(move |path, headers| {
        let mut reply = inner(path, headers);
        if path == lp {
            tamper(&mut reply);
        }
        reply
    });
    (addr, seen, digest, layer_path, size)
}

#[tokio::test]
async fn truncated_blob_is_retried_then_refused() {
    // The whole length is announced, half the bytes are sent, then the connection closes.
    let (addr, seen, digest, layer_path, _) = serve_tampered(|(_, extra, body)| {
        extra.push(("X-Fake-Length".into(), body.len().to_string()));
        body.truncate(body.len() / 2);
    });
    let dir = tempfile::tempdir().unwrap();
    let store = ContentStore::open(dir.path()).unwrap();
    let started = std::time::Instant::now();
    let (r, events) = pull(&store, &request(&addr, "latest")).await;
    let err = r.unwrap_err().to_string();
    assert!(
        err.contains(&digest.to_string()) || err.contains("blobs"),
        "{err}"
    );
    assert_eq!(asked(&seen, &layer_path), 4, "bounded retries");
    assert!(
        events
            .iter()
            .any(|e| matches!(e, PullEvent::Retrying { .. })),
        "{events:?}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(60));
    assert!(
        store.list().unwrap().is_empty(),
        "nothing unverified stored"
    );
    no_ingest(dir.path());
}

#[tokio::test]
async fn lying_content_length_is_refused() {
    // More bytes announced (and sent) than the manifest's descriptor says.
    let (addr, seen, digest, layer_path, size) =
        serve_tampered(|(_, _, body)| body.extend_from_slice(&[0u8; 100]));
    let dir = tempfile::tempdir().unwrap();
    let store = ContentStore::open(dir.path()).unwrap();
    let (r, _) = pull(&store, &request(&addr, "latest")).await;
    let err = r.unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "blob {digest}: the registry announced {} bytes, the manifest says {size}",
            size + 100
        )
    );
    assert_eq!(asked(&seen, &layer_path), 1, "a lie is not retried");
    assert!(store.list().unwrap().is_empty());
    no_ingest(dir.path());
}

#[tokio::test]
async fn drip_fed_blob_is_abandoned_in_bounded_time() {
    // One byte every 100 ms (10 bytes/s) against a floor of 1000 bytes/s after 1 s.
    let (addr, seen, digest, layer_path, _) =
        serve_tampered(|(_, extra, _)| extra.push(("X-Fake-Drip".into(), "100".into())));
    let dir = tempfile::tempdir().unwrap();
    let store = ContentStore::open(dir.path()).unwrap();
    let client = Client::new(ClientOptions::default())
        .unwrap()
        .with_transfer_floor(1000, std::time::Duration::from_secs(1));
    let started = std::time::Instant::now();
    let r = client
        .pull(&store, &request(&addr, "latest"), &|_| {})
        .await;
    let err = r.unwrap_err().to_string();
    assert!(
        err.contains(&digest.to_string()) && err.contains("slower than 1000 bytes/s"),
        "{err}"
    );
    assert_eq!(asked(&seen, &layer_path), 4, "bounded retries");
    // Four attempts of ~1 s each plus the back-off between them.
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    assert!(store.list().unwrap().is_empty());
    no_ingest(dir.path());
}

/// Each layer's gzip bytes and diff ID, the config and the manifest.
type TwoLayers = (Vec<(Vec<u8>, Digest)>, Vec<u8>, Vec<u8>);

/// A two-layer image whose second layer the registry can be made to refuse.
fn two_layers() -> TwoLayers {
    let layers: Vec<_> = [("a", &b"first\n"[..]), ("b", &b"second\n"[..])]
        .iter()
        .map(|(name, data)| {
            let plain = layer_tar(name, data);
            (gzip(&plain), Digest::of(&plain))
        })
        .collect();
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","config":{{}},"rootfs":{{"type":"layers","diff_ids":["{}","{}"]}}}}"#,
        layers[0].1, layers[1].1
    )
    .into_bytes();
    let descs: Vec<String> = layers
        .iter()
        .map(|(gz, _)| {
            format!(
                r#"{{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":{},"digest":"{}"}}"#,
                gz.len(),
                Digest::of(gz)
            )
        })
        .collect();
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{{"mediaType":"application/vnd.docker.container.image.v1+json","size":{},"digest":"{}"}},"layers":[{}]}}"#,
        config.len(),
        Digest::of(&config),
        descs.join(",")
    )
    .into_bytes();
    (layers, config, manifest)
}

/// A content store and a snapshotter in a new directory, and a request unpacking into it.
fn unpacking(
    addr: &str,
) -> (
    tempfile::TempDir,
    ContentStore,
    storage::Snapshotter,
    PullRequest,
) {
    let dir = tempfile::tempdir().unwrap();
    let store = ContentStore::open(&dir.path().join("content")).unwrap();
    let snaps = storage::Snapshotter::open(&dir.path().join("snapshots")).unwrap();
    let mut req = request(addr, "latest");
    req.unpack_into = Some(snaps.clone());
    (dir, store, snaps, req)
}

#[tokio::test]
async fn interrupted_pull_resumes_without_refetching_and_unpacks_on_the_way() {
    let (layers, config, manifest) = two_layers();
    let paths: Vec<String> = layers
        .iter()
        .map(|(gz, _)| format!("/v2/test/img/blobs/{}", Digest::of(gz)))
        .collect();
    let broken = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let b2 = Arc::clone(&broken);
    let (p2, l2, c2) = (paths.clone(), layers.clone(), config.clone());
    let cfg_path = format!("/v2/test/img/blobs/{}", Digest::of(&config));
    let (addr, seen) = serve_fake(move |path, _| {
        let ct = "application/vnd.docker.distribution.manifest.v2+json";
        match path {
            "/v2/" => (200, vec![], vec![]),
            "/v2/test/img/manifests/latest" => (
                200,
                vec![("Content-Type".into(), ct.into())],
                manifest.clone(),
            ),
            p if p == cfg_path => (200, vec![], c2.clone()),
            p if p == p2[0] => (200, vec![], l2[0].0.clone()),
            p if p == p2[1] && !b2.load(std::sync::atomic::Ordering::SeqCst) => {
                (200, vec![], l2[1].0.clone())
            }
            // Refused for good (not retried): the pull stops here.
            _ => (
                404,
                vec![],
                br#"{"errors":[{"code":"BLOB_UNKNOWN"}]}"#.to_vec(),
            ),
        }
    });
    let (dir, store, snaps, req) = unpacking(&addr);
    let (r, _) = pull(&store, &req).await;
    r.unwrap_err();
    // The verified first layer stays, in the store and unpacked; nothing of the second.
    let (d0, d1) = (&layers[0].1, &layers[1].1);
    assert!(store.exists(d0));
    assert!(!store.exists(d1));
    assert_eq!(
        std::fs::read(snaps.fs_path(d0).join("a")).unwrap(),
        b"first\n"
    );
    let chain1 = storage::Snapshotter::chain_id(Some(d0), d1);
    assert!(snaps.get(&chain1).is_none());

    // The registry is fixed: the second pull fetches only the missing layer.
    broken.store(false, std::sync::atomic::Ordering::SeqCst);
    let first_asks = asked(&seen, &paths[0]);
    let (r, _) = pull(&store, &req).await;
    let p = r.unwrap();
    assert_eq!(p.fetched.len(), 1);
    assert_eq!(asked(&seen, &paths[0]), first_asks, "not refetched");
    assert!(store.exists(d1));
    // Unpacked on the way, under its chain ID, with nothing temporary left.
    assert_eq!(
        std::fs::read(snaps.fs_path(&chain1).join("b")).unwrap(),
        b"second\n"
    );
    let names: Vec<_> = std::fs::read_dir(dir.path().join("snapshots"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    no_ingest(&dir.path().join("content"));
}

#[tokio::test]
async fn wrong_layer_digest_unpacks_nothing() {
    let liar = Digest::of(b"not the layer");
    let img = image(Some(&liar));
    let diff = img.diff.clone();
    let (addr, _) = serve_fake(registry_for(img));
    let (dir, store, snaps, req) = unpacking(&addr);
    let (r, _) = pull(&store, &req).await;
    r.unwrap_err();
    assert!(snaps.get(&diff).is_none());
    let left: Vec<_> = std::fs::read_dir(dir.path().join("snapshots"))
        .unwrap()
        .collect();
    assert!(left.is_empty(), "no staged snapshot left: {left:?}");
}
