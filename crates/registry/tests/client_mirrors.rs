//! Docker Hub mirrors in the pull client, against tiny fake registries (plain HTTP on
//! 127.0.0.1): endpoint order and fallback, manifest and blobs from the one mirror that
//! answered, no Docker Hub credentials for a mirror, mirrors unused for other registries. No
//! root; Docker Hub itself is never reached (these machines have no internet: its lookup fails
//! at once, which the fallback-to-origin paths rely on to stay quick).

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::collections::HashMap;
use std::net::TcpListener;

use common::{Latest, Reply, Seen, image, registry_at, serve_fake};
use registry::RegistryError;
use registry::client::{Client, ClientOptions, Credentials, Platform, PullRequest};
use storage::ContentStore;

/// A fake registry holding `library/img:latest` (one layer, `latest` a plain manifest).
fn hub_image() -> impl Fn(&str, &HashMap<String, String>) -> Reply + Send + Sync {
    registry_at("library/img", image(None), Latest::Manifest)
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
    let (empty, empty_seen) = serve_fake(|p, _| {
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
    let (full, full_seen) = serve_fake(hub_image());
    let (spare, spare_seen) = serve_fake(hub_image());
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
    let (mirror, seen) = serve_fake(|_, _| {
        (
            401,
            vec![("WWW-Authenticate".into(), r#"Basic realm="mirror""#.into())],
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
    let (mirror, mirror_seen) = serve_fake(hub_image());
    let (origin, origin_seen) = serve_fake(hub_image());
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
