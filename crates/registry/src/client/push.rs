//! Pushing one image (config + layers from the content store) to a repository as a Docker
//! schema2 manifest.
//!
//! Layers are stored uncompressed by diff ID; a push gzips each one into a temporary file in
//! the store's ingest directory (hashing as it writes), remembers diff ID → (compressed digest,
//! size) in the client so a later push of the same layer only asks the registry
//! (`HEAD /v2/<repo>/blobs/<digest>`), and uploads what the registry lacks (`POST` an upload,
//! then one monolithic `PUT ?digest=`). The config follows, then the manifest, by tag.
//!
//! Knows nothing of image records or tags: the caller hands over the config bytes and the
//! diff IDs (bottom first).

use std::io::{BufReader, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE, LOCATION};
use reqwest::{Method, StatusCode};
use storage::digest::Hasher;
use storage::{ContentStore, Digest};

use super::session::{Session, error_detail, read_limited};
use super::{Client, Credentials};
use crate::{RegistryError, Result};

/// Docker's schema2 media types.
const MT_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const MT_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
const MT_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
/// Layers uploaded at the same time (Docker's default `max-concurrent-uploads` is 5).
const PARALLEL_UPLOADS: usize = 3;
/// Progress is reported at most this often per layer.
const PROGRESS_EVERY: Duration = Duration::from_millis(100);
/// Error bodies are read up to this size.
const MAX_SMALL: u64 = 1 << 20;

/// What to push.
#[derive(Debug, Clone)]
pub struct PushRequest {
    /// The registry as named in the reference (`127.0.0.1:5000`).
    pub domain: String,
    /// The repository path (`test/busybox`).
    pub repository: String,
    /// The tag the manifest is put under.
    pub tag: String,
    pub credentials: Option<Credentials>,
    /// The image config (its digest is the image ID).
    pub config: Vec<u8>,
    /// The layers' diff IDs, bottom first; each is an uncompressed blob in the store.
    pub diff_ids: Vec<Digest>,
}

/// What a push reports as it goes. `id` is a layer's short (12 hex) diff ID, as Docker shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushEvent {
    /// The layer is being looked at (Docker's `Preparing`).
    Preparing { id: String },
    /// The layer waits for an upload slot.
    Waiting { id: String },
    /// Bytes of the compressed layer sent.
    Pushing {
        id: String,
        current: u64,
        total: u64,
    },
    /// The layer was uploaded.
    Pushed { id: String },
    /// The registry has the layer already.
    Exists { id: String },
}

/// The result of a push.
#[derive(Debug, Clone)]
pub struct Pushed {
    pub manifest_digest: Digest,
    /// Size of the manifest in bytes.
    pub size: u64,
}

/// One layer as the manifest describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Compressed {
    digest: Digest,
    size: u64,
}

/// The remembered compressions (diff ID → gzip blob), shared by clones of a client.
pub(crate) type CompressedCache =
    Arc<std::sync::Mutex<std::collections::HashMap<Digest, (Digest, u64)>>>;

/// A temporary gzip file, removed when dropped.
struct TempBlob {
    path: std::path::PathBuf,
}

impl Drop for TempBlob {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A writer that hashes and counts what passes through it.
struct HashWriter<W> {
    inner: W,
    hasher: Hasher,
}

impl<W: Write> Write for HashWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Gzips the blob `diff_id` into a new file in `dir`: (file, digest, size). Deterministic
/// (no name, mtime 0), so the same layer always compresses to the same digest.
fn compress(
    content: &ContentStore,
    diff_id: &Digest,
    dir: &std::path::Path,
) -> Result<(TempBlob, Compressed)> {
    use std::os::unix::fs::OpenOptionsExt;
    let io = |what: &'static str| {
        move |e: std::io::Error| RegistryError::Other(format!("{what} for layer {diff_id}: {e}"))
    };
    let src = content.open_blob(diff_id)?;
    let name: u64 = rand::random();
    let path = dir.join(format!("push-{name:016x}.gz"));
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(io("creating a temporary file"))?;
    let tmp = TempBlob { path };
    let out = HashWriter {
        inner: std::io::BufWriter::with_capacity(1 << 20, file),
        hasher: Hasher::default(),
    };
    let mut gz = flate2::GzBuilder::new()
        .mtime(0)
        .write(out, flate2::Compression::fast());
    std::io::copy(&mut BufReader::with_capacity(1 << 20, src), &mut gz)
        .map_err(io("compressing"))?;
    let mut out = gz.finish().map_err(io("compressing"))?;
    out.flush().map_err(io("writing"))?;
    let size = out.hasher.len();
    let digest = out.hasher.finish();
    Ok((tmp, Compressed { digest, size }))
}

impl Client {
    /// Pushes `req` (see the module docs); `events` hears about progress.
    pub async fn push(
        &self,
        content: &ContentStore,
        req: &PushRequest,
        events: &(dyn Fn(PushEvent) + Sync),
    ) -> Result<Pushed> {
        // Each distinct layer once, bottom first.
        let mut layers: Vec<&Digest> = Vec::new();
        for d in &req.diff_ids {
            if !layers.contains(&d) {
                layers.push(d);
            }
        }
        for d in &layers {
            events(PushEvent::Preparing {
                id: d.short().to_string(),
            });
        }
        let session = Session::open_for(
            self,
            &req.domain,
            &req.repository,
            req.credentials.clone(),
            "pull,push",
        )
        .await?;
        let slots = tokio::sync::Semaphore::new(PARALLEL_UPLOADS);
        let mut uploads = Vec::new();
        for d in &layers {
            let (slots, session) = (&slots, &session);
            uploads.push(async move {
                // As Docker: `Waiting` only for a layer that has to wait for a slot.
                let _slot = match slots.try_acquire() {
                    Ok(s) => s,
                    Err(_) => {
                        events(PushEvent::Waiting {
                            id: d.short().to_string(),
                        });
                        slots
                            .acquire()
                            .await
                            .map_err(|_| RegistryError::Other("upload slots closed".into()))?
                    }
                };
                self.push_layer(session, content, d, events).await
            });
        }
        let done = futures_util::future::try_join_all(uploads).await?;
        let by_diff: std::collections::HashMap<&Digest, Compressed> =
            layers.iter().copied().zip(done).collect();

        // The config.
        let config_digest = Digest::of(&req.config);
        if !blob_exists(&session, &config_digest).await? {
            let body = bytes::Bytes::from(req.config.clone());
            upload(
                &session,
                &config_digest,
                body.len() as u64,
                &mut || reqwest::Body::from(body.clone()),
                true,
            )
            .await?;
        }

        // The manifest.
        let layer_descs: Vec<serde_json::Value> = req
            .diff_ids
            .iter()
            .filter_map(|d| by_diff.get(d))
            .map(|c| {
                serde_json::json!({
                    "mediaType": MT_LAYER,
                    "size": c.size,
                    "digest": c.digest.to_string(),
                })
            })
            .collect();
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": MT_MANIFEST,
            "config": {
                "mediaType": MT_CONFIG,
                "size": req.config.len(),
                "digest": config_digest.to_string(),
            },
            "layers": layer_descs,
        });
        let bytes = serde_json::to_vec_pretty(&manifest)
            .map_err(|e| RegistryError::Other(format!("manifest: {e}")))?;
        let manifest_digest = Digest::of(&bytes);
        let url = session.repo_url(&format!("manifests/{}", req.tag));
        let body = bytes::Bytes::from(bytes);
        let resp = session
            .send(
                Method::PUT,
                &url,
                &mut |r| {
                    r.header(CONTENT_TYPE, MT_MANIFEST)
                        .body(reqwest::Body::from(body.clone()))
                },
                true,
            )
            .await?;
        expect(
            resp,
            StatusCode::CREATED,
            &format!("putting manifest {}", req.tag),
        )
        .await?;
        Ok(Pushed {
            manifest_digest,
            size: body.len() as u64,
        })
    }

    /// One layer: known to the registry (by a remembered or fresh compression) or uploaded.
    async fn push_layer(
        &self,
        session: &Session,
        content: &ContentStore,
        diff_id: &Digest,
        events: &(dyn Fn(PushEvent) + Sync),
    ) -> Result<Compressed> {
        let id = diff_id.short().to_string();
        let remembered = self
            .compressed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(diff_id)
            .cloned();
        if let Some((digest, size)) = remembered
            && blob_exists(session, &digest).await?
        {
            events(PushEvent::Exists { id });
            return Ok(Compressed { digest, size });
        }
        let (store, diff, dir) = (
            content.clone(),
            diff_id.clone(),
            content.root().join("ingest"),
        );
        let (tmp, c) = tokio::task::spawn_blocking(move || compress(&store, &diff, &dir))
            .await
            .map_err(|_| RegistryError::Other(format!("compressing layer {diff_id} failed")))??;
        self.compressed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(diff_id.clone(), (c.digest.clone(), c.size));
        if blob_exists(session, &c.digest).await? {
            events(PushEvent::Exists { id });
            return Ok(c);
        }
        let file = tokio::fs::File::open(&tmp.path)
            .await
            .map_err(|e| RegistryError::Other(format!("reading compressed layer: {e}")))?;
        let sent = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&sent);
        let stream = tokio_util::io::ReaderStream::with_capacity(file, 256 << 10).map(move |r| {
            if let Ok(b) = &r {
                counter.fetch_add(b.len() as u64, Ordering::Relaxed);
            }
            r
        });
        let mut body = Some(reqwest::Body::wrap_stream(stream));
        let mut make_body = || body.take().unwrap_or_default();
        {
            let up = upload(session, &c.digest, c.size, &mut make_body, false);
            tokio::pin!(up);
            let mut tick = tokio::time::interval(PROGRESS_EVERY);
            loop {
                tokio::select! {
                    r = &mut up => { r?; break; }
                    _ = tick.tick() => {
                        let current = sent.load(Ordering::Relaxed);
                        if current > 0 {
                            events(PushEvent::Pushing { id: id.clone(), current, total: c.size });
                        }
                    }
                }
            }
        }
        events(PushEvent::Pushing {
            id: id.clone(),
            current: c.size,
            total: c.size,
        });
        events(PushEvent::Pushed { id });
        drop(tmp);
        Ok(c)
    }
}

/// `HEAD /v2/<repo>/blobs/<digest>`: 200 → true, 404 → false.
async fn blob_exists(session: &Session, digest: &Digest) -> Result<bool> {
    let url = session.repo_url(&format!("blobs/{digest}"));
    let resp = session.send(Method::HEAD, &url, &mut |r| r, true).await?;
    match resp.status() {
        s if s.is_success() => Ok(true),
        StatusCode::NOT_FOUND => Ok(false),
        s => Err(RegistryError::Protocol(format!(
            "checking blob {digest}: the registry answered {s}"
        ))),
    }
}

/// Starts an upload and finishes it with one `PUT ?digest=` carrying `body()`.
async fn upload(
    session: &Session,
    digest: &Digest,
    size: u64,
    body: &mut (dyn FnMut() -> reqwest::Body + Send),
    replay: bool,
) -> Result<()> {
    let url = session.repo_url("blobs/uploads/");
    let resp = session
        .send(
            Method::POST,
            &url,
            &mut |r| r.header(CONTENT_LENGTH, 0),
            true,
        )
        .await?;
    let resp = expect(
        resp,
        StatusCode::ACCEPTED,
        &format!("starting upload of {digest}"),
    )
    .await?;
    let location = resp
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| RegistryError::Protocol("upload started without a Location".into()))?
        .to_string();
    let mut put = session.resolve(&location)?;
    put.query_pairs_mut()
        .append_pair("digest", &digest.to_string());
    let resp = session
        .send(
            Method::PUT,
            put.as_str(),
            &mut |r| {
                r.header(CONTENT_TYPE, "application/octet-stream")
                    .header(CONTENT_LENGTH, size)
                    .body(body())
            },
            replay,
        )
        .await?;
    expect(
        resp,
        StatusCode::CREATED,
        &format!("uploading blob {digest}"),
    )
    .await?;
    Ok(())
}

/// The response if its status is `want`; else the registry's error, named after `what`.
async fn expect(
    resp: reqwest::Response,
    want: StatusCode,
    what: &str,
) -> Result<reqwest::Response> {
    let status = resp.status();
    if status == want || (want != StatusCode::ACCEPTED && status.is_success()) {
        return Ok(resp);
    }
    let body = read_limited(resp, MAX_SMALL, "error body")
        .await
        .unwrap_or_default();
    let detail = error_detail(&body);
    if status == StatusCode::FORBIDDEN || status == StatusCode::UNAUTHORIZED {
        return Err(RegistryError::PushDenied(detail));
    }
    Err(RegistryError::Protocol(format!(
        "{what}: the registry answered {status}: {detail}"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compression_is_deterministic_and_verified() {
        let dir = tempfile::tempdir().unwrap();
        let store = ContentStore::open(&dir.path().join("content")).unwrap();
        let data = vec![7u8; 100_000];
        let diff = store.write_blob(&data, None).unwrap();
        let ingest = dir.path().join("content").join("ingest");
        let (a, ca) = compress(&store, &diff, &ingest).unwrap();
        let (b, cb) = compress(&store, &diff, &ingest).unwrap();
        assert_eq!(ca, cb, "same layer, same gzip");
        let gz = std::fs::read(&a.path).unwrap();
        assert_eq!(Digest::of(&gz), ca.digest);
        assert_eq!(gz.len() as u64, ca.size);
        let mut plain = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz[..]), &mut plain).unwrap();
        assert_eq!(plain, data);
        let p = a.path.clone();
        drop((a, b));
        assert!(!p.exists(), "temporary file removed");
    }
}
