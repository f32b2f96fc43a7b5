//! Fixtures shared by the registry crate's test binaries (each includes this with `mod common;`
//! and uses a part of it, hence the `allow(dead_code)` on every item).
//!
//! Two kinds of server, both on 127.0.0.1 and living until the test process ends:
//! - berth's own registry server in process ([`berth_router`], [`serve_berth`], with a request
//!   log), plus the layers, configs and push helper the push/mount/search tests build on it;
//! - a tiny fake registry ([`serve_fake`]): plain HTTP, one thread per connection, a handler
//!   closure deciding every reply (and able to misbehave), with [`image`] and [`registry_at`]
//!   giving a well-behaved one-layer image to wrap.
//!
//! Nothing here knows a test's assertions; it only builds servers and content.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use registry::client::{Client, PushEvent, PushRequest, Pushed};
use storage::{ContentStore, Digest};

// ---- berth's registry server, in process ----

/// Request log of a served router: `METHOD path?query status`, in order.
#[allow(dead_code)]
pub(crate) type Log = Arc<Mutex<Vec<String>>>;

/// Berth's registry server over `root` (no TLS; basic auth when `htpasswd` is set).
#[allow(dead_code)]
pub(crate) fn berth_router(root: &Path, htpasswd: Option<PathBuf>) -> axum::Router {
    registry::server::router(&registry::server::Options {
        addr: String::new(),
        root: root.to_path_buf(),
        htpasswd,
        tls: None,
    })
    .unwrap()
}

/// `router` with every request logged. With `drop_patch = Some(n)`, the n-th `PATCH` (1-based)
/// is answered 202 as if accepted but never reaches the registry: a lost chunk (logged with
/// ` (dropped)` after its status).
#[allow(dead_code)]
pub(crate) fn logged(router: axum::Router, drop_patch: Option<usize>) -> (axum::Router, Log) {
    let log: Log = Arc::default();
    let l = Arc::clone(&log);
    let patches = Arc::new(AtomicUsize::new(0));
    let router = router.layer(axum::middleware::from_fn(
        move |req: axum::extract::Request, next: axum::middleware::Next| {
            let (l, patches) = (Arc::clone(&l), Arc::clone(&patches));
            async move {
                let line = format!("{} {}", req.method(), req.uri());
                if req.method() == axum::http::Method::PATCH {
                    let n = patches.fetch_add(1, Ordering::SeqCst) + 1;
                    if Some(n) == drop_patch {
                        let uri = req.uri().to_string();
                        let end = req
                            .headers()
                            .get("content-range")
                            .and_then(|v| v.to_str().ok())
                            .and_then(|v| v.split('-').nth(1))
                            .unwrap_or("0")
                            .to_string();
                        // The chunk is read and thrown away.
                        let _ = axum::body::to_bytes(req.into_body(), usize::MAX).await;
                        l.lock().unwrap().push(format!("{line} 202 (dropped)"));
                        return axum::response::Response::builder()
                            .status(202)
                            .header("location", uri)
                            .header("range", format!("0-{end}"))
                            .body(axum::body::Body::empty())
                            .unwrap();
                    }
                }
                let resp = next.run(req).await;
                l.lock()
                    .unwrap()
                    .push(format!("{line} {}", resp.status().as_u16()));
                resp
            }
        },
    ));
    (router, log)
}

/// A listener on a free loopback port and its `HOST:PORT`.
#[allow(dead_code)]
pub(crate) async fn bind() -> (tokio::net::TcpListener, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    (listener, addr)
}

/// Serves `router` on `listener` in a background task.
#[allow(dead_code)]
pub(crate) fn spawn_router(listener: tokio::net::TcpListener, router: axum::Router) {
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
}

/// Serves `router` on a free loopback port; returns its address.
#[allow(dead_code)]
pub(crate) async fn serve_router(router: axum::Router) -> String {
    let (listener, addr) = bind().await;
    spawn_router(listener, router);
    addr
}

/// Berth's registry server over `root`, logged (see [`logged`] for `drop_patch`).
#[allow(dead_code)]
pub(crate) async fn serve_berth(root: &Path, drop_patch: Option<usize>) -> (String, Log) {
    let (router, log) = logged(berth_router(root, None), drop_patch);
    (serve_router(router).await, log)
}

/// An uncompressed layer tar holding one file `name` (mode 0644) with `body`.
#[allow(dead_code)]
pub(crate) fn layer_tar(name: &str, body: &[u8]) -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(body.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    tar.append_data(&mut h, name, body).unwrap();
    tar.into_inner().unwrap()
}

/// `plain` gzip-compressed.
#[allow(dead_code)]
pub(crate) fn gzip(plain: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(plain).unwrap();
    gz.finish().unwrap()
}

/// [`layer_tar`] written into `store`; its diff ID.
#[allow(dead_code)]
pub(crate) fn store_layer(store: &ContentStore, name: &str, body: &[u8]) -> Digest {
    store.write_blob(&layer_tar(name, body), None).unwrap()
}

/// An amd64/linux image config naming `diffs`.
#[allow(dead_code)]
pub(crate) fn config_for(diffs: &[Digest]) -> Vec<u8> {
    let config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": diffs.iter().map(ToString::to_string).collect::<Vec<_>>()},
    });
    serde_json::to_vec(&config).unwrap()
}

/// Pushes `req` (which must succeed); the result and the progress events.
#[allow(dead_code)]
pub(crate) async fn push(
    client: &Client,
    store: &ContentStore,
    req: &PushRequest,
) -> (Pushed, Vec<PushEvent>) {
    let events = Mutex::new(Vec::new());
    let r = client
        .push(store, req, &|e| events.lock().unwrap().push(e))
        .await
        .unwrap();
    (r, events.into_inner().unwrap())
}

// ---- the tiny fake registry ----

/// Requests a fake saw: (path with query, `Authorization`).
#[allow(dead_code)]
pub(crate) type Seen = Arc<Mutex<Vec<(String, Option<String>)>>>;
/// A fake's reply: status, extra headers, body.
#[allow(dead_code)]
pub(crate) type Reply = (u16, Vec<(String, String)>, Vec<u8>);

/// Serves `handler` (given the path and the lower-cased request headers) on a loopback port
/// until the process ends, one thread per connection. TLS hellos are dropped (the client tries
/// HTTPS first on loopback).
///
/// Pseudo headers in a reply steer misbehaviour: `X-Fake-Length` is announced instead of the
/// body's length; `X-Fake-Drip: <ms>` sends the body a byte at a time, that far apart.
#[allow(dead_code)]
pub(crate) fn serve_fake(
    handler: impl Fn(&str, &HashMap<String, String>) -> Reply + Send + Sync + 'static,
) -> (String, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let seen: Seen = Arc::default();
    let (seen2, handler) = (Arc::clone(&seen), Arc::new(handler));
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { continue };
            let (handler, seen) = (Arc::clone(&handler), Arc::clone(&seen2));
            std::thread::spawn(move || handle(conn, &*handler, &seen));
        }
    });
    (addr, seen)
}

/// One connection of [`serve_fake`]: one request, one reply, then close.
fn handle(
    mut conn: TcpStream,
    handler: &dyn Fn(&str, &HashMap<String, String>) -> Reply,
    seen: &Seen,
) {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        match conn.read(&mut byte) {
            Ok(1) => buf.push(byte[0]),
            _ => return,
        }
        if buf == [0x16] {
            return; // a TLS ClientHello: not spoken here
        }
    }
    let text = String::from_utf8_lossy(&buf).to_string();
    let mut lines = text.split("\r\n");
    let path = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .unwrap_or("")
        .to_string();
    let headers: HashMap<String, String> = lines
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()))
        .collect();
    seen.lock()
        .unwrap()
        .push((path.clone(), headers.get("authorization").cloned()));
    let (code, extra, body) = handler(&path, &headers);
    let fake = |name: &str| {
        extra
            .iter()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| v.parse::<u64>().ok())
    };
    let length = fake("X-Fake-Length").unwrap_or(body.len() as u64);
    let drip = fake("X-Fake-Drip");
    let mut head =
        format!("HTTP/1.1 {code} X\r\nContent-Length: {length}\r\nConnection: close\r\n");
    for (k, v) in extra.iter().filter(|(k, _)| !k.starts_with("X-Fake-")) {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let _ = conn.write_all(head.as_bytes());
    match drip {
        Some(ms) => {
            for b in &body {
                if conn.write_all(std::slice::from_ref(b)).is_err() {
                    return; // the client gave up
                }
                std::thread::sleep(std::time::Duration::from_millis(ms));
            }
        }
        None => {
            let _ = conn.write_all(&body);
        }
    }
}

/// A one-file layer (`hello`): (gzip bytes, diff ID).
#[allow(dead_code)]
pub(crate) fn layer() -> (Vec<u8>, Digest) {
    let plain = layer_tar("hello", b"hello\n");
    (gzip(&plain), Digest::of(&plain))
}

/// A one-layer amd64 image as a registry holds it.
#[allow(dead_code)]
pub(crate) struct Image {
    /// The layer, gzipped.
    pub(crate) layer: Vec<u8>,
    /// The layer's diff ID.
    pub(crate) diff: Digest,
    pub(crate) config: Vec<u8>,
    /// A Docker v2 manifest.
    pub(crate) manifest: Vec<u8>,
    /// An OCI index: an arm64 entry (whose manifest no registry has) and the amd64 manifest.
    pub(crate) index: Vec<u8>,
}

/// The [`layer`] image, its manifest naming `layer_digest` (the real one unless a test lies).
#[allow(dead_code)]
pub(crate) fn image(layer_digest: Option<&Digest>) -> Image {
    let (layer, diff) = layer();
    let real = Digest::of(&layer);
    let ld = layer_digest.unwrap_or(&real);
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","config":{{}},"rootfs":{{"type":"layers","diff_ids":["{diff}"]}}}}"#
    )
    .into_bytes();
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{{"mediaType":"application/vnd.docker.container.image.v1+json","size":{},"digest":"{}"}},"layers":[{{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":{},"digest":"{ld}"}}]}}"#,
        config.len(),
        Digest::of(&config),
        layer.len()
    )
    .into_bytes();
    let other = "sha256:9999999999999999999999999999999999999999999999999999999999999999";
    let index = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[
          {{"mediaType":"application/vnd.docker.distribution.manifest.v2+json","digest":"{other}","size":10,"platform":{{"architecture":"arm64","os":"linux"}}}},
          {{"mediaType":"application/vnd.docker.distribution.manifest.v2+json","digest":"{}","size":{},"platform":{{"architecture":"amd64","os":"linux"}}}}]}}"#,
        Digest::of(&manifest),
        manifest.len()
    )
    .into_bytes();
    Image {
        layer,
        diff,
        config,
        manifest,
        index,
    }
}

/// What a fake registry answers for the `latest` tag.
#[allow(dead_code)]
pub(crate) enum Latest {
    /// The image's index (the client picks the amd64 manifest by digest).
    Index,
    /// The image's manifest itself.
    Manifest,
}

/// A [`serve_fake`] handler holding `img` as `repo`: `/v2/`, `latest` (see [`Latest`]), the
/// manifest by digest, the config blob, and the layer under any other blob digest; everything
/// else 404 `MANIFEST_UNKNOWN`.
#[allow(dead_code)]
pub(crate) fn registry_at(
    repo: &str,
    img: Image,
    latest: Latest,
) -> impl Fn(&str, &HashMap<String, String>) -> Reply + Send + Sync + use<> {
    let latest_path = format!("/v2/{repo}/manifests/latest");
    let man_path = format!("/v2/{repo}/manifests/{}", Digest::of(&img.manifest));
    let cfg_path = format!("/v2/{repo}/blobs/{}", Digest::of(&img.config));
    let blobs = format!("/v2/{repo}/blobs/");
    let manifest_type = "application/vnd.docker.distribution.manifest.v2+json";
    move |path, _| {
        let ct = |t: &str| vec![("Content-Type".to_string(), t.to_string())];
        match path {
            "/v2/" => (200, vec![], b"{}".to_vec()),
            p if p == latest_path => match latest {
                Latest::Index => (
                    200,
                    ct("application/vnd.oci.image.index.v1+json"),
                    img.index.clone(),
                ),
                Latest::Manifest => (200, ct(manifest_type), img.manifest.clone()),
            },
            p if p == man_path => (200, ct(manifest_type), img.manifest.clone()),
            p if p == cfg_path => (200, vec![], img.config.clone()),
            p if p.starts_with(&blobs) => (200, vec![], img.layer.clone()),
            _ => (
                404,
                vec![],
                br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#
                    .to_vec(),
            ),
        }
    }
}

/// [`registry_at`] `test/img`, `latest` being the index.
#[allow(dead_code)]
pub(crate) fn registry_for(
    img: Image,
) -> impl Fn(&str, &HashMap<String, String>) -> Reply + Send + Sync + use<> {
    registry_at("test/img", img, Latest::Index)
}
