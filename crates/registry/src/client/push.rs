//! Pushing one image (config + layers from the content store) to a repository as a Docker
//! schema2 manifest.
//!
//! Layers are stored uncompressed by diff ID. For each, as moby: the compressed digests the
//! distribution metadata knows for it are looked for in the target repository
//! (`HEAD /v2/<repo>/blobs/<digest>`, `Layer already exists`), then mounted from other
//! repositories of the same registry it was pulled from or pushed to (`POST
//! …/blobs/uploads/?mount=&from=`, `Mounted from <repo>`); only then is it gzipped into a
//! temporary file in the store's ingest directory (hashing as it writes) and uploaded: one
//! monolithic `PUT ?digest=`, or above [`CHUNKED_ABOVE`] `PATCH` chunks with `Content-Range`
//! (a 416 resumes where the registry says it is) and a closing `PUT`. Every layer's place is
//! recorded in the metadata. The config follows, then the manifest, by tag.
//!
//! Knows nothing of image records or tags: the caller hands over the config bytes and the
//! diff IDs (bottom first).

use std::io::{BufReader, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use reqwest::header::{CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, LOCATION, RANGE};
use reqwest::{Method, StatusCode};
use storage::digest::Hasher;
use storage::{ContentStore, Digest};

use super::metadata::Entry;
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
/// Known digests looked for in the target repository before anything else.
const MAX_EXISTENCE_CHECKS: usize = 3;
/// Repositories a layer is tried to be mounted from (moby's `maxMountAttempts`).
const MAX_MOUNT_ATTEMPTS: usize = 3;
/// Compressed layers larger than this go up in `PATCH` chunks.
pub(crate) const CHUNKED_ABOVE: u64 = 10 << 20;
/// The size of one `PATCH` chunk.
const CHUNK: u64 = 8 << 20;
const CHUNK_USIZE: usize = 8 << 20;
/// A chunk's body goes out (and is counted for progress) in pieces of this size.
const PIECE: usize = 256 << 10;
/// Times a chunked upload resumes after a 416 before giving up.
const MAX_RESUMES: u32 = 5;

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
    /// The layer was mounted from another repository (`from`, its path) of the registry.
    Mounted { id: String, from: String },
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
        // Each distinct layer once, bottom first, with where it is known to live.
        let mut layers: Vec<(&Digest, Vec<Entry>)> = Vec::new();
        for d in &req.diff_ids {
            if !layers.iter().any(|(l, _)| *l == d) {
                layers.push((d, self.known_blobs(d).await));
            }
        }
        for (d, _) in &layers {
            events(PushEvent::Preparing {
                id: d.short().to_string(),
            });
        }
        // A token must also allow pulling from the repositories blobs may be mounted from.
        let mut sources: Vec<String> = Vec::new();
        for (_, known) in &layers {
            for e in mount_candidates(known, &req.domain, &req.repository) {
                if !sources.iter().any(|s| s == e.repository()) {
                    sources.push(e.repository().to_string());
                }
            }
        }
        let session = Session::open_scoped(
            self,
            &req.domain,
            &req.repository,
            req.credentials.clone(),
            "pull,push",
            sources,
        )
        .await?;
        let target = Target {
            domain: &req.domain,
            repository: &req.repository,
        };
        let slots = tokio::sync::Semaphore::new(match self.opts.max_concurrent_uploads {
            0 => PARALLEL_UPLOADS,
            n => n,
        });
        let mut uploads = Vec::new();
        for (d, known) in &layers {
            let (slots, session, target) = (&slots, &session, &target);
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
                let c = self
                    .push_layer(session, content, target, d, known, events)
                    .await?;
                self.remember(
                    target.domain,
                    target.repository,
                    vec![((*d).clone(), c.digest.clone(), c.size)],
                )
                .await;
                Ok::<_, RegistryError>(c)
            });
        }
        let done = futures_util::future::try_join_all(uploads).await?;
        let by_diff: std::collections::HashMap<&Digest, Compressed> =
            layers.iter().map(|(d, _)| *d).zip(done).collect();

        // The config.
        let config_digest = Digest::of(&req.config);
        if blob_size(&session, &config_digest).await?.is_none() {
            let body = bytes::Bytes::from(req.config.clone());
            let location = start_upload(&session, &config_digest).await?;
            put_blob(
                &session,
                &location,
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

    /// One layer: already in the target repository (under a known digest), mounted from
    /// another repository of the same registry, or compressed and uploaded.
    async fn push_layer(
        &self,
        session: &Session,
        content: &ContentStore,
        target: &Target<'_>,
        diff_id: &Digest,
        known: &[Entry],
        events: &(dyn Fn(PushEvent) + Sync),
    ) -> Result<Compressed> {
        let id = diff_id.short().to_string();

        // 1. A known digest the target repository has.
        let mut checked: Vec<&Digest> = Vec::new();
        for e in existence_candidates(known, target) {
            if checked.len() >= MAX_EXISTENCE_CHECKS {
                break;
            }
            checked.push(&e.digest);
            // The registry's size, else the recorded one; neither → not usable in a manifest.
            let size = blob_size(session, &e.digest).await?.map(|n| match n {
                0 => e.size,
                n => n,
            });
            if let Some(size) = size.filter(|n| *n > 0) {
                events(PushEvent::Exists { id });
                return Ok(Compressed {
                    digest: e.digest.clone(),
                    size,
                });
            }
        }

        // 2. A cross-repository mount. A registry that cannot mount starts an upload instead:
        // the last one is kept for the upload below, earlier ones are cancelled.
        let mut pending: Option<String> = None;
        let candidates = mount_candidates(known, target.domain, target.repository);
        for e in candidates.into_iter().take(MAX_MOUNT_ATTEMPTS) {
            match mount(session, &e.digest, e.repository()).await? {
                Mount::Mounted => {
                    if let Some(old) = pending.take() {
                        cancel(session, &old).await;
                    }
                    let size = match e.size {
                        0 => blob_size(session, &e.digest).await?.unwrap_or(0),
                        n => n,
                    };
                    events(PushEvent::Mounted {
                        id,
                        from: e.repository().to_string(),
                    });
                    return Ok(Compressed {
                        digest: e.digest.clone(),
                        size,
                    });
                }
                Mount::Started(location) => {
                    if let Some(old) = pending.replace(location) {
                        cancel(session, &old).await;
                    }
                }
                Mount::Refused => {}
            }
        }

        // 3. Compress; the registry may know the result.
        let (store, diff, dir) = (
            content.clone(),
            diff_id.clone(),
            content.root().join("ingest"),
        );
        let (tmp, c) = tokio::task::spawn_blocking(move || compress(&store, &diff, &dir))
            .await
            .map_err(|_| RegistryError::Other(format!("compressing layer {diff_id} failed")))??;
        if !checked.contains(&&c.digest) && blob_size(session, &c.digest).await?.is_some() {
            if let Some(old) = pending.take() {
                cancel(session, &old).await;
            }
            events(PushEvent::Exists { id });
            return Ok(c);
        }

        // 4. Upload: one PUT, or PATCH chunks for a large layer.
        let location = match pending {
            Some(l) => l,
            None => start_upload(session, &c.digest).await?,
        };
        let sent = Arc::new(AtomicU64::new(0));
        {
            let up = async {
                if c.size > CHUNKED_ABOVE {
                    upload_chunked(session, location, &tmp.path, &c, &sent).await
                } else {
                    let file = tokio::fs::File::open(&tmp.path).await.map_err(|e| {
                        RegistryError::Other(format!("reading compressed layer: {e}"))
                    })?;
                    let counter = Arc::clone(&sent);
                    let stream = tokio_util::io::ReaderStream::with_capacity(file, 256 << 10).map(
                        move |r| {
                            if let Ok(b) = &r {
                                counter.fetch_add(b.len() as u64, Ordering::Relaxed);
                            }
                            r
                        },
                    );
                    let mut body = Some(reqwest::Body::wrap_stream(stream));
                    let mut make_body = || body.take().unwrap_or_default();
                    put_blob(session, &location, &c.digest, c.size, &mut make_body, false).await
                }
            };
            tokio::pin!(up);
            let mut tick = tokio::time::interval(PROGRESS_EVERY);
            loop {
                tokio::select! {
                    r = &mut up => { r?; break; }
                    _ = tick.tick() => {
                        let current = sent.load(Ordering::Relaxed).min(c.size);
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

/// The repository pushed to.
struct Target<'a> {
    domain: &'a str,
    repository: &'a str,
}

/// Known digests to look for in the target repository, best first: those recorded for the
/// target repository, then for its registry, then elsewhere; newest first within each.
fn existence_candidates<'a>(known: &'a [Entry], target: &Target<'_>) -> Vec<&'a Entry> {
    let rank = |e: &Entry| {
        if e.domain() == target.domain && e.repository() == target.repository {
            0
        } else if e.domain() == target.domain {
            1
        } else {
            2
        }
    };
    let mut out: Vec<&Entry> = Vec::new();
    for r in 0..3 {
        for e in known.iter().rev().filter(|e| rank(e) == r) {
            if !out.iter().any(|o| o.digest == e.digest) {
                out.push(e);
            }
        }
    }
    out
}

/// Repositories of the target's registry (other than the target) a layer may be mounted from,
/// newest first, one entry per repository.
fn mount_candidates<'a>(known: &'a [Entry], domain: &str, repository: &str) -> Vec<&'a Entry> {
    let mut out: Vec<&Entry> = Vec::new();
    for e in known.iter().rev() {
        if e.domain() == domain
            && e.repository() != repository
            && !e.repository().is_empty()
            && !out.iter().any(|o| o.repository() == e.repository())
        {
            out.push(e);
        }
    }
    out
}

/// `HEAD /v2/<repo>/blobs/<digest>`: the blob's size if the repository has it, `None` on 404.
async fn blob_size(session: &Session, digest: &Digest) -> Result<Option<u64>> {
    let url = session.repo_url(&format!("blobs/{digest}"));
    let resp = session.send(Method::HEAD, &url, &mut |r| r, true).await?;
    match resp.status() {
        s if s.is_success() => Ok(Some(
            resp.headers()
                .get(CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
        )),
        StatusCode::NOT_FOUND => Ok(None),
        s => Err(RegistryError::Protocol(format!(
            "checking blob {digest}: the registry answered {s}"
        ))),
    }
}

/// What a mount request came to.
enum Mount {
    /// 201: the target repository has the blob now.
    Mounted,
    /// 202: the registry started an upload instead (its `Location`).
    Started(String),
    /// Anything else (an unknown source, no access): an ordinary upload follows.
    Refused,
}

/// `POST /v2/<target>/blobs/uploads/?mount=<digest>&from=<repository>`.
async fn mount(session: &Session, digest: &Digest, from: &str) -> Result<Mount> {
    let mut url = session.resolve(&session.repo_url("blobs/uploads/"))?;
    url.query_pairs_mut()
        .append_pair("mount", &digest.to_string())
        .append_pair("from", from);
    let resp = match session
        .send(
            Method::POST,
            url.as_str(),
            &mut |r| r.header(CONTENT_LENGTH, 0),
            true,
        )
        .await
    {
        Ok(r) => r,
        // No access to the source (or the target): the upload that follows says so if
        // it matters.
        Err(RegistryError::PushDenied(detail)) => {
            tracing::debug!(%digest, from, detail, "blob mount refused");
            return Ok(Mount::Refused);
        }
        Err(e) => return Err(e),
    };
    match resp.status() {
        StatusCode::CREATED => Ok(Mount::Mounted),
        StatusCode::ACCEPTED => Ok(location_header(&resp).map_or(Mount::Refused, Mount::Started)),
        s => {
            tracing::debug!(%digest, from, status = %s, "blob mount refused");
            Ok(Mount::Refused)
        }
    }
}

/// A response's `Location`.
fn location_header(resp: &reqwest::Response) -> Option<String> {
    resp.headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// `DELETE` an upload no longer wanted; best effort.
async fn cancel(session: &Session, location: &str) {
    let Ok(url) = session.resolve(location) else {
        return;
    };
    if let Err(e) = session
        .send(Method::DELETE, url.as_str(), &mut |r| r, false)
        .await
    {
        tracing::debug!(error = %e, "cancelling an upload failed");
    }
}

/// `POST /v2/<repo>/blobs/uploads/`: a new upload's `Location`.
async fn start_upload(session: &Session, digest: &Digest) -> Result<String> {
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
    location_header(&resp)
        .ok_or_else(|| RegistryError::Protocol("upload started without a Location".into()))
}

/// Finishes the upload at `location` with one `PUT ?digest=` carrying `body()` (`size`
/// bytes; empty after chunks).
async fn put_blob(
    session: &Session,
    location: &str,
    digest: &Digest,
    size: u64,
    body: &mut (dyn FnMut() -> reqwest::Body + Send),
    replay: bool,
) -> Result<()> {
    let mut put = session.resolve(location)?;
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

/// The offset a registry's `Range: 0-<last>` reports (`0-0` is read as nothing received).
fn range_offset(resp: &reqwest::Response) -> Option<u64> {
    let v = resp.headers().get(RANGE)?.to_str().ok()?.trim();
    let v = v.strip_prefix("bytes=").unwrap_or(v);
    let (a, b) = v.split_once('-')?;
    let (a, b): (u64, u64) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
    if a != 0 {
        return None;
    }
    Some(if b == 0 { 0 } else { b + 1 })
}

/// A chunk's body, counted into `sent` (from `base`) as it goes out.
fn chunk_body(chunk: &bytes::Bytes, base: u64, sent: &Arc<AtomicU64>) -> reqwest::Body {
    sent.store(base, Ordering::Relaxed);
    let pieces: Vec<bytes::Bytes> = (0..chunk.len())
        .step_by(PIECE)
        .map(|i| chunk.slice(i..(i + PIECE).min(chunk.len())))
        .collect();
    let counter = Arc::clone(sent);
    reqwest::Body::wrap_stream(futures_util::stream::iter(pieces).map(move |p| {
        counter.fetch_add(p.len() as u64, Ordering::Relaxed);
        Ok::<_, std::io::Error>(p)
    }))
}

/// Sends the file at `path` (`c`) to the upload at `location` as `PATCH` chunks with
/// `Content-Range`, following each answer's `Location`, then `PUT ?digest=`. A chunk that
/// fails (416, 5xx, a broken connection) resumes at the offset the registry reports (its
/// `Range`, or the upload's status), at most [`MAX_RESUMES`] times.
async fn upload_chunked(
    session: &Session,
    mut location: String,
    path: &std::path::Path,
    c: &Compressed,
    sent: &Arc<AtomicU64>,
) -> Result<()> {
    use tokio::io::{AsyncReadExt, AsyncSeekExt};
    let io = |e: std::io::Error| RegistryError::Other(format!("reading compressed layer: {e}"));
    let mut file = tokio::fs::File::open(path).await.map_err(io)?;
    let mut offset = 0u64;
    let mut resumes = 0;
    while offset < c.size {
        let len = CHUNK.min(c.size - offset);
        file.seek(std::io::SeekFrom::Start(offset))
            .await
            .map_err(io)?;
        let mut buf = vec![0u8; usize::try_from(len).unwrap_or(CHUNK_USIZE)];
        file.read_exact(&mut buf).await.map_err(io)?;
        let chunk = bytes::Bytes::from(buf);
        let url = session.resolve(&location)?;
        let range = format!("{offset}-{}", offset + len - 1);
        // Sent once: a failure or refusal asks the registry where the upload stands.
        let answer = session
            .send(
                Method::PATCH,
                url.as_str(),
                &mut |r| {
                    r.header(CONTENT_TYPE, "application/octet-stream")
                        .header(CONTENT_RANGE, range.as_str())
                        .header(CONTENT_LENGTH, len)
                        .body(chunk_body(&chunk, offset, sent))
                },
                false,
            )
            .await;
        let (resp, cause) = match answer {
            Ok(r) if r.status() == StatusCode::ACCEPTED || r.status() == StatusCode::NO_CONTENT => {
                let next = range_offset(&r).filter(|n| *n > offset && *n <= c.size);
                if let Some(l) = location_header(&r) {
                    location = l;
                }
                offset = next.unwrap_or(offset + len);
                sent.store(offset, Ordering::Relaxed);
                continue;
            }
            Ok(r)
                if r.status() == StatusCode::RANGE_NOT_SATISFIABLE
                    || r.status().is_server_error()
                    || r.status() == StatusCode::TOO_MANY_REQUESTS =>
            {
                let cause = format!("the registry answered {}", r.status());
                (Some(r), cause)
            }
            Ok(r) => {
                expect(
                    r,
                    StatusCode::ACCEPTED,
                    &format!("uploading blob {}", c.digest),
                )
                .await?;
                continue;
            }
            Err(RegistryError::Transport(msg)) => (None, msg),
            Err(e) => return Err(e),
        };
        resumes += 1;
        if resumes > MAX_RESUMES {
            return Err(RegistryError::Transport(format!(
                "uploading blob {}: a chunk failed {MAX_RESUMES} times: {cause}",
                c.digest
            )));
        }
        let reported = match resp.as_ref().and_then(range_offset) {
            Some(o) => Some(o),
            None => {
                tokio::time::sleep(super::session::backoff(resumes)).await;
                upload_offset(session, &location).await?
            }
        };
        offset = reported.filter(|o| *o <= c.size).ok_or_else(|| {
            RegistryError::Protocol(format!(
                "uploading blob {}: a chunk failed ({cause}) and the registry reports no offset",
                c.digest
            ))
        })?;
        tracing::debug!(digest = %c.digest, offset, %cause, "resuming a chunked upload");
        sent.store(offset, Ordering::Relaxed);
    }
    put_blob(
        session,
        &location,
        &c.digest,
        0,
        &mut reqwest::Body::default,
        true,
    )
    .await
}

/// `GET` an upload's status: how many bytes the registry holds.
async fn upload_offset(session: &Session, location: &str) -> Result<Option<u64>> {
    let url = session.resolve(location)?;
    let resp = session
        .send(Method::GET, url.as_str(), &mut |r| r, true)
        .await?;
    if !resp.status().is_success() {
        return Ok(None);
    }
    Ok(range_offset(&resp))
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
    fn candidates_are_ordered_as_moby() {
        let d = |n: u8| Digest::of(&[n]);
        let known = vec![
            Entry::new(d(1), 1, "reg:5000", "a"),
            Entry::new(d(2), 1, "docker.io", "library/bb"),
            Entry::new(d(3), 1, "reg:5000", "dst"),
            Entry::new(d(4), 1, "reg:5000", "b"),
            Entry::new(d(1), 1, "reg:5000", "c"),
        ];
        let target = Target {
            domain: "reg:5000",
            repository: "dst",
        };
        let order: Vec<_> = existence_candidates(&known, &target)
            .iter()
            .map(|e| e.digest.clone())
            .collect();
        assert_eq!(order, vec![d(3), d(1), d(4), d(2)]);
        let mounts: Vec<_> = mount_candidates(&known, "reg:5000", "dst")
            .iter()
            .map(|e| e.repository().to_string())
            .collect();
        assert_eq!(mounts, vec!["c", "b", "a"], "same registry, newest first");
    }

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
