//! Docker Hub mirrors in the pull client, against tiny fake registries (plain HTTP on
//! 127.0.0.1): endpoint order and fallback, manifest and blobs from the one mirror that
//! answered, no Docker Hub credentials for a mirror, mirrors unused for other registries. No
//! root; Docker Hub itself is never reached (these machines have no internet: its lookup fails
//! at once, which the fallback-to-origin paths rely on to stay quick).

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use registry::RegistryError;
use registry::client::{Client, ClientOptions, Credentials, Platform, PullRequest};
use storage::{ContentStore, Digest};

/// Requests a fake saw: (path, `Authorization`).
type Seen = Arc<Mutex<Vec<(String, Option<String>)>>>;
/// A reply: status, extra headers, body.
type Reply = (u16, Vec<(&'static str, String)>, Vec<u8>);

/// Serves `handler` on a loopback port until the process ends (one thread per connection).
fn serve(handler: impl Fn(&str) -> Reply + Send + Sync + 'static) -> (String, Seen) {
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

fn handle(mut conn: TcpStream, handler: &dyn Fn(&str) -> Reply, seen: &Seen) {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        match conn.read(&mut byte) {
            Ok(1) => buf.push(byte[0]),
            _ => return,
        }
        if buf == [0x16] {
            return; // a TLS ClientHello (HTTPS is tried first on loopback): not spoken here
        }
    }
    let text = String::from_utf8_lossy(&buf).to_string();
    let mut lines = text.split("\r\n");
    let path = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .unwrap_or("")
        .to_string();
    let auth = lines
        .filter_map(|l| l.split_once(": "))
        .find(|(k, _)| k.eq_ignore_ascii_case("authorization"))
        .map(|(_, v)| v.to_string());
    seen.lock().unwrap().push((path.clone(), auth));
    let (code, extra, body) = handler(&path);
    let mut head = format!(
        "HTTP/1.1 {code} X\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in extra {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let _ = conn.write_all(head.as_bytes());
    let _ = conn.write_all(&body);
}

/// A registry holding `library/img:latest` (one layer).
fn hub_image() -> impl Fn(&str) -> Reply {
    let mut tar = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(6);
    h.set_mode(0o644);
    h.set_cksum();
    tar.append_data(&mut h, "hello", &b"hello\n"[..]).unwrap();
    let plain = tar.into_inner().unwrap();
    let diff = Digest::of(&plain);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&plain).unwrap();
    let layer = gz.finish().unwrap();
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","config":{{}},"rootfs":{{"type":"layers","diff_ids":["{diff}"]}}}}"#
    )
    .into_bytes();
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{{"mediaType":"application/vnd.docker.container.image.v1+json","size":{},"digest":"{}"}},"layers":[{{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":{},"digest":"{}"}}]}}"#,
        config.len(),
        Digest::of(&config),
        layer.len(),
        Digest::of(&layer)
    )
    .into_bytes();
    let (cfg_path, layer_path) = (
        format!("/v2/library/img/blobs/{}", Digest::of(&config)),
        format!("/v2/library/img/blobs/{}", Digest::of(&layer)),
    );
    move |path| match path {
        "/v2/" => (200, vec![], b"{}".to_vec()),
        "/v2/library/img/manifests/latest" => (
            200,
            vec![(
                "Content-Type",
                "application/vnd.docker.distribution.manifest.v2+json".into(),
            )],
            manifest.clone(),
        ),
        p if p == cfg_path => (200, vec![], config.clone()),
        p if p == layer_path => (200, vec![], layer.clone()),
        _ => (
            404,
            vec![],
            br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#.to_vec(),
        ),
    }
}

fn hub_request(credentials: Option<Credentials>) -> PullRequest {
    PullRequest {
        domain: "docker.io".into(),
        repository: "library/img".into(),
        reference: "latest".into(),
        display: "docker.io/library/img:latest".into(),
        platform: Some(Platform::parse("linux/amd64").unwrap()),
        credentials,
        unpack_into: None,
    }
}

fn creds() -> Option<Credentials> {
    Some(Credentials {
        username: "hubuser".into(),
        password: "hub-secret".into(),
    })
}

fn client(mirrors: &[String]) -> Client {
    Client::new(ClientOptions {
        mirrors: mirrors
            .iter()
            .map(|m| registry::client::validate_mirror(m).unwrap())
            .collect(),
        ..ClientOptions::default()
    })
    .unwrap()
}

fn paths(seen: &Seen) -> Vec<String> {
    seen.lock()
        .unwrap()
        .iter()
        .map(|(p, _)| p.clone())
        .collect()
}

#[tokio::test]
async fn mirrors_in_order_everything_from_the_one_that_answered() {
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    // The second mirror lacks the image, the third has it, the fourth is never asked.
    let (empty, empty_seen) = serve(|p| {
        match p {
        "/v2/" => (200, vec![], b"{}".to_vec()),
        _ => (
            404,
            vec![],
            br#"{"errors":[{"code":"NAME_UNKNOWN","message":"repository name not known to registry"}]}"#
                .to_vec(),
        ),
    }
    });
    let (full, full_seen) = serve(hub_image());
    let (spare, spare_seen) = serve(hub_image());
    let c = client(&[
        format!("http://{closed}"),
        format!("http://{empty}/"),
        format!("http://{full}"),
        format!("http://{spare}"),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let store = ContentStore::open(dir.path()).unwrap();
    let pulled = c
        .pull(&store, &hub_request(creds()), &|_| {})
        .await
        .unwrap();
    assert!(store.exists(&pulled.diff_ids[0]));
    assert_eq!(
        paths(&empty_seen),
        ["/v2/", "/v2/library/img/manifests/latest"]
    );
    let got = paths(&full_seen);
    assert_eq!(got[..2], ["/v2/", "/v2/library/img/manifests/latest"]);
    assert_eq!(got.iter().filter(|p| p.contains("/blobs/")).count(), 2);
    assert!(spare_seen.lock().unwrap().is_empty());
    // No mirror was sent the Docker Hub credentials.
    for seen in [&empty_seen, &full_seen] {
        assert!(seen.lock().unwrap().iter().all(|(_, a)| a.is_none()));
    }
}

#[tokio::test]
async fn a_mirror_asking_for_credentials_gets_none_of_docker_hubs() {
    let (mirror, seen) = serve(|_| {
        (
            401,
            vec![("WWW-Authenticate", r#"Basic realm="mirror""#.into())],
            br#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#.to_vec(),
        )
    });
    let c = client(&[format!("http://{mirror}")]);
    let dir = tempfile::tempdir().unwrap();
    let store = ContentStore::open(dir.path()).unwrap();
    let t = std::time::Instant::now();
    let err = c
        .pull(&store, &hub_request(creds()), &|_| {})
        .await
        .unwrap_err();
    // The mirror's refusal names the repository (Docker Hub was out of reach).
    assert!(
        matches!(&err, RegistryError::Denied { repository, .. } if repository == "library/img"),
        "{err}"
    );
    assert!(err.to_string().contains(&mirror), "{err}");
    assert!(!seen.lock().unwrap().is_empty());
    assert!(seen.lock().unwrap().iter().all(|(_, a)| a.is_none()));
    assert!(t.elapsed() < std::time::Duration::from_secs(30));
}

#[tokio::test]
async fn mirrors_serve_docker_hub_only() {
    let (mirror, mirror_seen) = serve(hub_image());
    let (origin, origin_seen) = serve(hub_image());
    let c = client(&[format!("http://{mirror}")]);
    let dir = tempfile::tempdir().unwrap();
    let store = ContentStore::open(dir.path()).unwrap();
    let mut req = hub_request(None);
    req.domain = origin.clone();
    req.display = format!("{origin}/library/img:latest");
    c.pull(&store, &req, &|_| {}).await.unwrap();
    assert!(mirror_seen.lock().unwrap().is_empty());
    assert!(paths(&origin_seen).contains(&"/v2/library/img/manifests/latest".to_string()));
}
