//! Request-level tests of the server through axum's `oneshot` (no network, no root).

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use axum::Router;
use axum::body::Body;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use storage::Digest;
use tower::ServiceExt;

use super::{Options, router};

struct Reg {
    _dir: tempfile::TempDir,
    root: std::path::PathBuf,
    app: Router,
}

struct Resp {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Resp {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap())
            .unwrap_or("")
    }
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
    fn error_code(&self) -> String {
        self.json()["errors"][0]["code"]
            .as_str()
            .unwrap()
            .to_string()
    }
}

fn reg_with(htpasswd: Option<std::path::PathBuf>, dir: tempfile::TempDir) -> Reg {
    let root = dir.path().join("root");
    let app = router(&Options {
        addr: String::new(),
        root: root.clone(),
        htpasswd,
        tls: None,
    })
    .unwrap();
    Reg {
        _dir: dir,
        root,
        app,
    }
}

fn reg() -> Reg {
    reg_with(None, tempfile::tempdir().unwrap())
}

impl Reg {
    async fn req(&self, method: &str, uri: &str, headers: &[(&str, &str)], body: Vec<u8>) -> Resp {
        let mut b = Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let resp = self
            .app
            .clone()
            .oneshot(b.body(Body::from(body)).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec();
        assert_eq!(
            headers["docker-distribution-api-version"], "registry/2.0",
            "{method} {uri}"
        );
        Resp {
            status,
            headers,
            body,
        }
    }

    async fn get(&self, uri: &str) -> Resp {
        self.req("GET", uri, &[], Vec::new()).await
    }

    /// A monolithic blob upload.
    async fn push_blob(&self, repo: &str, data: &[u8]) -> Digest {
        let d = Digest::of(data);
        let r = self
            .req(
                "POST",
                &format!("/v2/{repo}/blobs/uploads/?digest={d}"),
                &[],
                data.to_vec(),
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::CREATED,
            "{}",
            String::from_utf8_lossy(&r.body)
        );
        assert_eq!(r.header("docker-content-digest"), d.to_string());
        d
    }

    async fn put_manifest(&self, repo: &str, reference: &str, mt: &str, body: &[u8]) -> Resp {
        self.req(
            "PUT",
            &format!("/v2/{repo}/manifests/{reference}"),
            &[("content-type", mt)],
            body.to_vec(),
        )
        .await
    }
}

const OCI: &str = "application/vnd.oci.image.manifest.v1+json";
const DOCKER: &str = "application/vnd.docker.distribution.manifest.v2+json";

fn image_manifest(mt: &str, config: &Digest, layers: &[&Digest]) -> Vec<u8> {
    let desc = |d: &Digest| json!({"mediaType": "application/octet-stream", "digest": d.to_string(), "size": 1});
    serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": mt,
        "config": desc(config),
        "layers": layers.iter().map(|d| desc(d)).collect::<Vec<_>>(),
    }))
    .unwrap()
}

#[tokio::test]
async fn base_endpoint() {
    let r = reg();
    let resp = r.get("/v2/").await;
    assert_eq!(resp.status, StatusCode::OK);
    assert_eq!(resp.json(), json!({}));
    assert_eq!(r.get("/v2").await.status, StatusCode::OK);
    let resp = r.get("/nope").await;
    assert_eq!(resp.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn chunked_upload_state_machine() {
    let r = reg();
    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let d = Digest::of(&data);

    let start = r
        .req("POST", "/v2/a/b/blobs/uploads/", &[], Vec::new())
        .await;
    assert_eq!(start.status, StatusCode::ACCEPTED);
    let loc = start.header("location").to_string();
    let uuid = start.header("docker-upload-uuid").to_string();
    assert_eq!(loc, format!("/v2/a/b/blobs/uploads/{uuid}"));
    assert_eq!(start.header("range"), "0-0");

    // First chunk with a correct Content-Range.
    let p1 = r
        .req(
            "PATCH",
            &loc,
            &[("content-range", "0-39999")],
            data[..40_000].to_vec(),
        )
        .await;
    assert_eq!(p1.status, StatusCode::ACCEPTED);
    assert_eq!(p1.header("range"), "0-39999");

    // Out of order: 416 with the current range, nothing appended.
    let bad = r
        .req(
            "PATCH",
            &loc,
            &[("content-range", "50000-59999")],
            vec![0; 10_000],
        )
        .await;
    assert_eq!(bad.status, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(bad.header("range"), "0-39999");
    assert_eq!(bad.error_code(), "RANGE_INVALID");

    // Second chunk without Content-Range (streamed PATCH, as docker does).
    let p2 = r
        .req("PATCH", &loc, &[], data[40_000..90_000].to_vec())
        .await;
    assert_eq!(p2.status, StatusCode::ACCEPTED);
    assert_eq!(p2.header("range"), "0-89999");

    let status = r.get(&loc).await;
    assert_eq!(status.status, StatusCode::NO_CONTENT);
    assert_eq!(status.header("range"), "0-89999");

    // Wrong repository: the session is not found there.
    let other = format!("/v2/other/blobs/uploads/{uuid}");
    assert_eq!(r.get(&other).await.error_code(), "BLOB_UPLOAD_UNKNOWN");

    // Not visible before commit.
    assert_eq!(
        r.req("HEAD", &format!("/v2/a/b/blobs/{d}"), &[], Vec::new())
            .await
            .status,
        StatusCode::NOT_FOUND
    );

    // PUT with the last chunk and the digest.
    let put = r
        .req(
            "PUT",
            &format!("{loc}?digest={d}"),
            &[],
            data[90_000..].to_vec(),
        )
        .await;
    assert_eq!(put.status, StatusCode::CREATED);
    assert_eq!(put.header("location"), format!("/v2/a/b/blobs/{d}"));
    assert_eq!(put.header("docker-content-digest"), d.to_string());
    // The session is gone.
    assert_eq!(r.get(&loc).await.status, StatusCode::NOT_FOUND);

    let head = r
        .req("HEAD", &format!("/v2/a/b/blobs/{d}"), &[], Vec::new())
        .await;
    assert_eq!(head.status, StatusCode::OK);
    assert_eq!(head.header("content-length"), data.len().to_string());
    assert_eq!(head.header("docker-content-digest"), d.to_string());
    assert!(head.body.is_empty());
    let get = r.get(&format!("/v2/a/b/blobs/{d}")).await;
    assert_eq!(get.status, StatusCode::OK);
    assert_eq!(get.body, data);
    // A range request.
    let part = r
        .req(
            "GET",
            &format!("/v2/a/b/blobs/{d}"),
            &[("range", "bytes=10-19")],
            Vec::new(),
        )
        .await;
    assert_eq!(part.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(part.body, data[10..20]);
    assert_eq!(
        part.header("content-range"),
        format!("bytes 10-19/{}", data.len())
    );
    // Stored where the layout says, read-only.
    assert!(r.root.join("blobs/sha256").join(d.hex()).is_file());
    assert!(
        r.root
            .join("repositories/a/b/_layers")
            .join(d.hex())
            .exists()
    );
    assert_eq!(std::fs::read_dir(r.root.join("ingest")).unwrap().count(), 0);
}

#[tokio::test]
async fn cancel_upload_removes_partial_data() {
    let r = reg();
    let start = r.req("POST", "/v2/x/blobs/uploads/", &[], Vec::new()).await;
    let loc = start.header("location").to_string();
    r.req("PATCH", &loc, &[], vec![1; 1000]).await;
    assert_eq!(std::fs::read_dir(r.root.join("ingest")).unwrap().count(), 1);
    let del = r.req("DELETE", &loc, &[], Vec::new()).await;
    assert_eq!(del.status, StatusCode::NO_CONTENT);
    assert_eq!(std::fs::read_dir(r.root.join("ingest")).unwrap().count(), 0);
    let again = r.req("DELETE", &loc, &[], Vec::new()).await;
    assert_eq!(again.error_code(), "BLOB_UPLOAD_UNKNOWN");
    let patch = r.req("PATCH", &loc, &[], vec![1]).await;
    assert_eq!(patch.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn digest_mismatch_is_rejected_and_nothing_stored() {
    let r = reg();
    let wrong = Digest::of(b"something else");
    // Monolithic.
    let resp = r
        .req(
            "POST",
            &format!("/v2/a/blobs/uploads/?digest={wrong}"),
            &[],
            b"data".to_vec(),
        )
        .await;
    assert_eq!(resp.status, StatusCode::BAD_REQUEST);
    assert_eq!(resp.error_code(), "DIGEST_INVALID");
    // Chunked.
    let start = r.req("POST", "/v2/a/blobs/uploads/", &[], Vec::new()).await;
    let loc = start.header("location").to_string();
    let resp = r
        .req(
            "PUT",
            &format!("{loc}?digest={wrong}"),
            &[],
            b"data".to_vec(),
        )
        .await;
    assert_eq!(resp.status, StatusCode::BAD_REQUEST);
    assert_eq!(resp.error_code(), "DIGEST_INVALID");
    // Malformed digest.
    let resp = r
        .req(
            "POST",
            "/v2/a/blobs/uploads/?digest=sha256:xyz",
            &[],
            b"data".to_vec(),
        )
        .await;
    assert_eq!(resp.error_code(), "DIGEST_INVALID");
    assert_eq!(
        std::fs::read_dir(r.root.join("blobs/sha256"))
            .unwrap()
            .count(),
        0
    );
    assert_eq!(std::fs::read_dir(r.root.join("ingest")).unwrap().count(), 0);
    let resp = r.get(&format!("/v2/a/blobs/{wrong}")).await;
    assert_eq!(resp.status, StatusCode::NOT_FOUND);
    assert_eq!(resp.error_code(), "BLOB_UNKNOWN");
}

#[tokio::test]
async fn manifests_by_tag_and_digest() {
    let r = reg();
    let config = r.push_blob("lib/img", b"{\"config\":{}}").await;
    let layer = r.push_blob("lib/img", b"layer bytes").await;
    let body = image_manifest(DOCKER, &config, &[&layer]);
    let md = Digest::of(&body);
    let put = r.put_manifest("lib/img", "v1", DOCKER, &body).await;
    assert_eq!(
        put.status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&put.body)
    );
    assert_eq!(put.header("docker-content-digest"), md.to_string());
    assert_eq!(
        put.header("location"),
        format!("/v2/lib/img/manifests/{md}")
    );

    for reference in ["v1".to_string(), md.to_string()] {
        let get = r.get(&format!("/v2/lib/img/manifests/{reference}")).await;
        assert_eq!(get.status, StatusCode::OK);
        assert_eq!(get.body, body);
        assert_eq!(get.header("content-type"), DOCKER);
        assert_eq!(get.header("docker-content-digest"), md.to_string());
        let head = r
            .req(
                "HEAD",
                &format!("/v2/lib/img/manifests/{reference}"),
                &[],
                Vec::new(),
            )
            .await;
        assert_eq!(head.status, StatusCode::OK);
        assert_eq!(head.header("content-length"), body.len().to_string());
        assert!(head.body.is_empty());
    }
    // The manifest is also a blob of the repository.
    assert_eq!(r.get(&format!("/v2/lib/img/blobs/{md}")).await.body, body);

    // PUT by digest: must match.
    let wrong = r
        .put_manifest("lib/img", &config.to_string(), DOCKER, &body)
        .await;
    assert_eq!(wrong.error_code(), "DIGEST_INVALID");
    let by_digest = r
        .put_manifest("lib/img", &md.to_string(), DOCKER, &body)
        .await;
    assert_eq!(by_digest.status, StatusCode::CREATED);

    // An index pointing to it, and one pointing to a missing child.
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{"mediaType": DOCKER, "digest": md.to_string(), "size": body.len()}],
    }))
    .unwrap();
    let put = r
        .put_manifest(
            "lib/img",
            "multi",
            "application/vnd.oci.image.index.v1+json",
            &index,
        )
        .await;
    assert_eq!(put.status, StatusCode::CREATED);
    let missing = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "manifests": [{"mediaType": DOCKER, "digest": layer.to_string(), "size": 1}],
    }))
    .unwrap();
    let put = r.put_manifest("lib/img", "bad", "", &missing).await;
    assert_eq!(put.error_code(), "MANIFEST_BLOB_UNKNOWN");

    // Unknown tag, unknown repository, invalid tag.
    assert_eq!(
        r.get("/v2/lib/img/manifests/nope").await.error_code(),
        "MANIFEST_UNKNOWN"
    );
    assert_eq!(
        r.get("/v2/lib/none/manifests/v1").await.error_code(),
        "NAME_UNKNOWN"
    );
    let bad_tag = r.put_manifest("lib/img", "-bad", DOCKER, &body).await;
    assert_eq!(bad_tag.error_code(), "TAG_INVALID");

    // Delete the tag, then the manifest by digest (which removes its other tags).
    let tags = r.get("/v2/lib/img/tags/list").await.json();
    assert_eq!(tags, json!({"name": "lib/img", "tags": ["multi", "v1"]}));
    let del = r
        .req("DELETE", "/v2/lib/img/manifests/multi", &[], Vec::new())
        .await;
    assert_eq!(del.status, StatusCode::ACCEPTED);
    r.put_manifest("lib/img", "v2", DOCKER, &body).await;
    let del = r
        .req(
            "DELETE",
            &format!("/v2/lib/img/manifests/{md}"),
            &[],
            Vec::new(),
        )
        .await;
    assert_eq!(del.status, StatusCode::ACCEPTED);
    assert_eq!(
        r.get("/v2/lib/img/manifests/v1").await.status,
        StatusCode::NOT_FOUND
    );
    let tags = r.get("/v2/lib/img/tags/list").await.json();
    assert_eq!(tags["tags"], json!([]));
    let del = r
        .req(
            "DELETE",
            &format!("/v2/lib/img/manifests/{md}"),
            &[],
            Vec::new(),
        )
        .await;
    assert_eq!(del.error_code(), "MANIFEST_UNKNOWN");
}

#[tokio::test]
async fn manifest_with_missing_blob_is_rejected() {
    let r = reg();
    let config = r.push_blob("a", b"cfg").await;
    let absent = Digest::of(b"never pushed");
    let body = image_manifest(OCI, &config, &[&absent]);
    let put = r.put_manifest("a", "latest", OCI, &body).await;
    assert_eq!(put.status, StatusCode::BAD_REQUEST);
    assert_eq!(put.error_code(), "MANIFEST_BLOB_UNKNOWN");
    assert_eq!(
        put.json()["errors"][0]["detail"]["digest"],
        absent.to_string()
    );
    // A blob of another repository does not count (no implicit cross-repo access).
    let layer = r.push_blob("b", b"layer in b").await;
    let body = image_manifest(OCI, &config, &[&layer]);
    let put = r.put_manifest("a", "latest", OCI, &body).await;
    assert_eq!(put.error_code(), "MANIFEST_BLOB_UNKNOWN");
    // Not JSON, wrong schema, unsupported type, too large.
    assert_eq!(
        r.put_manifest("a", "x", OCI, b"not json")
            .await
            .error_code(),
        "MANIFEST_INVALID"
    );
    let v1 = br#"{"schemaVersion":1,"name":"a","tag":"x"}"#;
    assert_eq!(
        r.put_manifest("a", "x", OCI, v1).await.error_code(),
        "MANIFEST_INVALID"
    );
    let odd = br#"{"schemaVersion":2,"mediaType":"text/plain"}"#;
    assert_eq!(
        r.put_manifest("a", "x", "text/plain", odd)
            .await
            .error_code(),
        "MANIFEST_INVALID"
    );
    let big = vec![b' '; (4 << 20) + 1];
    let put = r.put_manifest("a", "x", OCI, &big).await;
    assert_eq!(put.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(r.get("/v2/a/tags/list").await.json()["tags"], json!([]));
}

#[tokio::test]
async fn cross_repository_mount() {
    let r = reg();
    let d = r.push_blob("src/repo", b"shared layer").await;
    // The blob is not served from a repository that lacks it.
    assert_eq!(
        r.get(&format!("/v2/dst/blobs/{d}")).await.status,
        StatusCode::NOT_FOUND
    );
    let m = r
        .req(
            "POST",
            &format!("/v2/dst/blobs/uploads/?mount={d}&from=src/repo"),
            &[],
            Vec::new(),
        )
        .await;
    assert_eq!(m.status, StatusCode::CREATED);
    assert_eq!(m.header("location"), format!("/v2/dst/blobs/{d}"));
    assert_eq!(
        r.get(&format!("/v2/dst/blobs/{d}")).await.body,
        b"shared layer"
    );
    // Not mountable (wrong source): falls back to an upload session.
    let other = Digest::of(b"elsewhere");
    let m = r
        .req(
            "POST",
            &format!("/v2/dst2/blobs/uploads/?mount={other}&from=src/repo"),
            &[],
            Vec::new(),
        )
        .await;
    assert_eq!(m.status, StatusCode::ACCEPTED);
    assert!(!m.header("docker-upload-uuid").is_empty());
    // Blob delete unlinks it from one repository only.
    let del = r
        .req("DELETE", &format!("/v2/dst/blobs/{d}"), &[], Vec::new())
        .await;
    assert_eq!(del.status, StatusCode::ACCEPTED);
    assert_eq!(
        r.get(&format!("/v2/dst/blobs/{d}")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        r.get(&format!("/v2/src/repo/blobs/{d}")).await.status,
        StatusCode::OK
    );
    let del = r
        .req("DELETE", &format!("/v2/dst/blobs/{d}"), &[], Vec::new())
        .await;
    assert_eq!(del.error_code(), "BLOB_UNKNOWN");
}

#[tokio::test]
async fn tags_list_pagination_and_catalog() {
    let r = reg();
    let config = r.push_blob("p/q", b"c").await;
    let body = image_manifest(OCI, &config, &[]);
    for t in ["c", "a", "e", "b", "d"] {
        assert_eq!(
            r.put_manifest("p/q", t, OCI, &body).await.status,
            StatusCode::CREATED
        );
    }
    let all = r.get("/v2/p/q/tags/list").await;
    assert_eq!(all.json()["tags"], json!(["a", "b", "c", "d", "e"]));
    assert_eq!(all.header("link"), "");
    let p1 = r.get("/v2/p/q/tags/list?n=2").await;
    assert_eq!(p1.json()["tags"], json!(["a", "b"]));
    assert_eq!(
        p1.header("link"),
        "</v2/p/q/tags/list?n=2&last=b>; rel=\"next\""
    );
    let p2 = r.get("/v2/p/q/tags/list?n=2&last=b").await;
    assert_eq!(p2.json()["tags"], json!(["c", "d"]));
    let p3 = r.get("/v2/p/q/tags/list?n=2&last=d").await;
    assert_eq!(p3.json()["tags"], json!(["e"]));
    assert_eq!(p3.header("link"), "");
    assert_eq!(
        r.get("/v2/p/q/tags/list?n=x").await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        r.get("/v2/nothere/tags/list").await.error_code(),
        "NAME_UNKNOWN"
    );

    r.push_blob("a", b"1").await;
    r.push_blob("z/y/x", b"1").await;
    let cat = r.get("/v2/_catalog").await.json();
    assert_eq!(cat, json!({"repositories": ["a", "p/q", "z/y/x"]}));
    let page = r.get("/v2/_catalog?n=1&last=a").await;
    assert_eq!(page.json(), json!({"repositories": ["p/q"]}));
    assert_eq!(
        page.header("link"),
        "</v2/_catalog?n=1&last=p/q>; rel=\"next\""
    );
}

#[tokio::test]
async fn bad_names_never_touch_the_filesystem() {
    let r = reg();
    for path in [
        "/v2/../etc/tags/list",
        "/v2/a/../../x/tags/list",
        "/v2/A/tags/list",
        "/v2/a//b/tags/list",
        "/v2/_x/tags/list",
        "/v2/a/_tags/tags/list",
        "/v2/.a/manifests/latest",
    ] {
        let resp = r.get(path).await;
        assert_eq!(resp.status, StatusCode::BAD_REQUEST, "{path}");
        assert_eq!(resp.error_code(), "NAME_INVALID", "{path}");
    }
    let resp = r
        .req(
            "POST",
            "/v2/a/../b/blobs/uploads/?digest=sha256:00",
            &[],
            b"x".to_vec(),
        )
        .await;
    assert_eq!(resp.error_code(), "NAME_INVALID");
    let resp = r.put_manifest("a", "..", OCI, b"{}").await;
    assert_eq!(resp.error_code(), "TAG_INVALID");
    assert_eq!(
        std::fs::read_dir(r.root.join("repositories"))
            .unwrap()
            .count(),
        0
    );
    // Unsupported methods.
    let resp = r.req("DELETE", "/v2/", &[], Vec::new()).await;
    assert_eq!(resp.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(resp.error_code(), "UNSUPPORTED");
}

#[tokio::test]
async fn htpasswd_basic_auth() {
    use base64::Engine as _;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("htpasswd");
    let hash = bcrypt::hash("s3cret", 4).unwrap();
    std::fs::write(&file, format!("# users\nalice:{hash}\n")).unwrap();
    let r = reg_with(Some(file), dir);
    let basic = |c: &str| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(c)
        )
    };

    let anon = r.get("/v2/").await;
    assert_eq!(anon.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        anon.header("www-authenticate"),
        "Basic realm=\"berth-registry\""
    );
    assert_eq!(anon.error_code(), "UNAUTHORIZED");
    for bad in ["alice:wrong", "bob:s3cret", "garbage"] {
        let h = basic(bad);
        let resp = r
            .req("GET", "/v2/", &[("authorization", &h)], Vec::new())
            .await;
        assert_eq!(resp.status, StatusCode::UNAUTHORIZED, "{bad}");
    }
    let good = basic("alice:s3cret");
    for _ in 0..2 {
        let resp = r
            .req("GET", "/v2/", &[("authorization", &good)], Vec::new())
            .await;
        assert_eq!(resp.status, StatusCode::OK);
    }
    let resp = r
        .req(
            "GET",
            "/v2/_catalog",
            &[("authorization", &good)],
            Vec::new(),
        )
        .await;
    assert_eq!(resp.status, StatusCode::OK);

    // Non-bcrypt entries are refused at load time.
    assert!(super::auth::Htpasswd::parse("bob:{SHA}abc").is_err());
    assert!(super::auth::Htpasswd::parse("nocolon").is_err());
}

#[test]
fn serve_arguments() {
    use std::ffi::OsString;
    let args = |s: &[&str]| s.iter().map(OsString::from).collect::<Vec<_>>();
    let o = super::parse_args(&args(&[
        "serve",
        "--addr",
        "0.0.0.0:5001",
        "--root=/r",
        "--htpasswd",
        "/h",
    ]))
    .unwrap()
    .unwrap();
    assert_eq!(o.addr, "0.0.0.0:5001");
    assert_eq!(o.root, std::path::PathBuf::from("/r"));
    assert_eq!(o.htpasswd, Some("/h".into()));
    let o = super::parse_args(&args(&["serve", "--root", "/r"]))
        .unwrap()
        .unwrap();
    assert_eq!(o.addr, "127.0.0.1:5000");
    assert!(super::parse_args(&args(&["serve"])).is_err());
    assert!(super::parse_args(&args(&["serve", "--root"])).is_err());
    assert!(super::parse_args(&args(&["serve", "--root", "/r", "--bogus"])).is_err());
    assert!(super::parse_args(&args(&["other"])).is_err());
    let o = super::parse_args(&args(&[
        "serve",
        "--root",
        "/r",
        "--tls-cert",
        "c",
        "--tls-key=k",
    ]))
    .unwrap()
    .unwrap();
    let files = o.tls.unwrap();
    assert_eq!((files.cert, files.key), ("c".into(), "k".into()));
    assert_eq!(files.client_ca, None);
    let o = super::parse_args(&args(&[
        "serve",
        "--root",
        "/r",
        "--tls-cert",
        "c",
        "--tls-key",
        "k",
        "--tls-client-ca",
        "ca",
    ]))
    .unwrap()
    .unwrap();
    assert_eq!(o.tls.unwrap().client_ca, Some("ca".into()));
    assert!(super::parse_args(&args(&["serve", "--root", "/r", "--tls-client-ca", "ca"])).is_err());
    assert!(super::parse_args(&args(&["serve", "--root", "/r", "--tls-cert", "c"])).is_err());
    assert!(
        super::parse_args(&args(&["serve", "--help"]))
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn one_writer_per_upload_session() {
    let r = reg();
    let start = r.req("POST", "/v2/a/blobs/uploads/", &[], Vec::new()).await;
    let loc = start.header("location").to_string();
    // A PATCH whose body stays open until we say so.
    let (tx, rx) = tokio::sync::mpsc::channel::<Vec<u8>>(1);
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|chunk| (Ok::<_, std::io::Error>(bytes::Bytes::from(chunk)), rx))
    });
    let req = Request::builder()
        .method("PATCH")
        .uri(&loc)
        .body(Body::from_stream(stream))
        .unwrap();
    let slow = tokio::spawn(r.app.clone().oneshot(req));
    // The channel holds one chunk: once the second send returns, the handler has read the
    // first, so it holds the session's writer.
    tx.send(vec![7; 10]).await.unwrap();
    tx.send(vec![8; 5]).await.unwrap();
    let busy = r.req("PATCH", &loc, &[], vec![1]).await;
    assert_eq!(busy.status, StatusCode::BAD_REQUEST);
    assert_eq!(busy.error_code(), "BLOB_UPLOAD_INVALID");
    drop(tx);
    let done = slow.await.unwrap().unwrap();
    assert_eq!(done.status(), StatusCode::ACCEPTED);
    assert_eq!(done.headers()["range"], "0-14");
    let data = [vec![7u8; 10], vec![8u8; 5]].concat();
    let d = Digest::of(&data);
    let put = r
        .req("PUT", &format!("{loc}?digest={d}"), &[], Vec::new())
        .await;
    assert_eq!(put.status, StatusCode::CREATED);
    assert_eq!(r.get(&format!("/v2/a/blobs/{d}")).await.body, data);
}

#[tokio::test]
async fn referrers_api() {
    let r = reg();
    let config = r.push_blob("art", b"cfg").await;
    let image = image_manifest(OCI, &config, &[]);
    let image_digest = Digest::of(&image);
    r.put_manifest("art", "v1", OCI, &image).await;
    let empty = r.push_blob("art", b"{}").await;
    let sig = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI,
        "artifactType": "application/vnd.example.sig",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty.to_string(), "size": 2},
        "layers": [],
        "subject": {"mediaType": OCI, "digest": image_digest.to_string(), "size": image.len()},
        "annotations": {"org.example": "yes"},
    }))
    .unwrap();
    let sig_digest = Digest::of(&sig);
    let put = r
        .put_manifest("art", &sig_digest.to_string(), OCI, &sig)
        .await;
    assert_eq!(put.status, StatusCode::CREATED);
    assert_eq!(put.header("oci-subject"), image_digest.to_string());

    let list = r.get(&format!("/v2/art/referrers/{image_digest}")).await;
    assert_eq!(list.status, StatusCode::OK);
    assert_eq!(
        list.header("content-type"),
        "application/vnd.oci.image.index.v1+json"
    );
    let v = list.json();
    assert_eq!(v["manifests"].as_array().unwrap().len(), 1);
    let desc = &v["manifests"][0];
    assert_eq!(desc["digest"], sig_digest.to_string());
    assert_eq!(desc["artifactType"], "application/vnd.example.sig");
    assert_eq!(desc["size"], sig.len());
    assert_eq!(desc["annotations"]["org.example"], "yes");

    let filtered = r
        .get(&format!(
            "/v2/art/referrers/{image_digest}?artifactType=other/type"
        ))
        .await;
    assert_eq!(filtered.header("oci-filters-applied"), "artifactType");
    assert_eq!(filtered.json()["manifests"], json!([]));
    // Unknown subject or repository: an empty index, never 404; a bad digest: 400.
    let none = r.get(&format!("/v2/nothere/referrers/{config}")).await;
    assert_eq!(none.status, StatusCode::OK);
    assert_eq!(none.json()["manifests"], json!([]));
    assert_eq!(
        r.get("/v2/art/referrers/sha256:zz").await.status,
        StatusCode::BAD_REQUEST
    );
    // Deleting the referrer removes it from the list.
    let del = r
        .req(
            "DELETE",
            &format!("/v2/art/manifests/{sig_digest}"),
            &[],
            Vec::new(),
        )
        .await;
    assert_eq!(del.status, StatusCode::ACCEPTED);
    let list = r.get(&format!("/v2/art/referrers/{image_digest}")).await;
    assert_eq!(list.json()["manifests"], json!([]));
}
