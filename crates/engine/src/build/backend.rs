//! The engine's side of a build ([`builder::BuildBackend`]): base images from the store (pulled
//! when missing or asked to), RUN in a container made and started as `docker run` makes one
//! (attached before its start, so no output is lost), COPY/ADD through the container's root
//! filesystem (every path resolved inside it and inside the context), commits through
//! [`images::ImageService::build_commit`], and the build cache.
//!
//! The builder's trait is synchronous: this runs on a blocking thread and waits for the
//! engine's async operations with the runtime handle. Every container it makes is remembered
//! and removed when the build ends, whatever happened, so a failed build leaks nothing.
//!
//! Knows nothing of Dockerfile syntax (the builder crate) or of HTTP (the daemon).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use api_types::models::{ContainerCreateBody, HostConfig};
use builder::{
    BuildBackend, BuildError, CacheKey, CommitRequest, CopyFrom, CopyRequest, ImageConfig,
    ImageState, RunEvent, RunOutcome, RunRequest,
};
use linux::fs::Root;
use tokio::io::AsyncReadExt;
use tokio::runtime::Handle;

use super::cache::BuildCache;
use super::context::Context;
use super::sources;
use crate::{AttachRequest, Engine, EngineError, WaitCondition};

/// What a build step's images get from `SOURCE_DATE_EPOCH`.
#[derive(Debug, Clone, Default)]
pub(crate) struct Reproducible {
    /// RFC 3339 of the epoch: every `created`.
    pub(crate) created: Option<String>,
    /// Later mtimes in new layers are written as the epoch.
    pub(crate) clamp_mtime: Option<u64>,
}

/// A build's backend over the engine.
pub(crate) struct EngineBackend<'a> {
    pub(crate) engine: Arc<Engine>,
    pub(crate) handle: Handle,
    pub(crate) ctx: &'a Context,
    pub(crate) cache: BuildCache,
    pub(crate) auth: BTreeMap<String, crate::RegistryCredentials>,
    pub(crate) platform: Option<String>,
    pub(crate) extra_hosts: Vec<String>,
    pub(crate) shm_size: i64,
    pub(crate) reproducible: Reproducible,
    /// Text for the build's stream (pull progress of base images).
    pub(crate) say: Box<dyn FnMut(String) + Send + 'a>,
    /// Containers made and not yet removed.
    pub(crate) containers: Vec<String>,
    /// `ADD <url>` downloads of this build (URL → file name in `downloads`).
    pub(crate) fetched: BTreeMap<String, String>,
    /// Where they are kept until the build ends.
    pub(crate) downloads: Option<tempfile::TempDir>,
}

/// Whether an ADD source is a URL the daemon fetches.
fn is_url(s: &str) -> bool {
    s.starts_with("http://") || s.starts_with("https://")
}

/// The largest file `ADD <url>` downloads.
const MAX_DOWNLOAD: u64 = 8 << 30;

fn err(e: EngineError) -> BuildError {
    BuildError::Backend(e.to_string())
}

/// The builder's config as the image store keeps it: empty values left out.
pub(crate) fn to_image_config(c: &ImageConfig) -> crate::Result<images::ContainerConfig> {
    let mut v = serde_json::to_value(c)
        .map_err(|e| EngineError::InvalidRequest(format!("build config: {e}")))?;
    if let Some(m) = v.as_object_mut() {
        m.retain(|_, x| match x {
            serde_json::Value::Null => false,
            serde_json::Value::String(s) => !s.is_empty(),
            serde_json::Value::Array(a) => !a.is_empty(),
            serde_json::Value::Object(o) => !o.is_empty(),
            _ => true,
        });
    }
    serde_json::from_value(v).map_err(|e| EngineError::InvalidRequest(format!("build config: {e}")))
}

/// An image's config as the builder edits it.
pub(crate) fn from_image_config(c: Option<&images::ContainerConfig>) -> ImageConfig {
    c.and_then(|c| serde_json::to_value(c).ok())
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_default()
}

impl EngineBackend<'_> {
    fn block<F: std::future::Future>(&self, f: F) -> F::Output {
        self.handle.block_on(f)
    }

    fn state(&self, id: &str) -> crate::Result<ImageState> {
        let rec = self.engine.images.get(id)?;
        Ok(ImageState {
            id: Some(rec.id.to_string()),
            config: from_image_config(rec.config.config.as_ref()),
            author: rec.config.author.clone(),
        })
    }

    /// Creates a container for a step (not started).
    fn create(
        &mut self,
        image: &str,
        config: &ImageConfig,
        cmd: Vec<String>,
        network: Option<&str>,
    ) -> crate::Result<String> {
        let env = (!config.env.is_empty()).then(|| config.env.clone());
        let body = ContainerCreateBody {
            image: Some(image.to_string()),
            cmd: Some(cmd),
            // The step's argv is the whole command: the image's entrypoint is not prepended.
            entrypoint: Some(vec![String::new()]),
            env,
            user: (!config.user.is_empty()).then(|| config.user.clone()),
            working_dir: (!config.working_dir.is_empty()).then(|| config.working_dir.clone()),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            host_config: Some(HostConfig {
                network_mode: network.map(str::to_string),
                extra_hosts: (!self.extra_hosts.is_empty()).then(|| self.extra_hosts.clone()),
                shm_size: (self.shm_size > 0).then_some(self.shm_size),
                ..Default::default()
            }),
            ..Default::default()
        };
        let engine = Arc::clone(&self.engine);
        let id = self.block(async move { engine.container_create(None, body).await })?;
        self.containers.push(id.clone());
        Ok(id)
    }

    fn remove(&mut self, id: &str) -> crate::Result<()> {
        let engine = Arc::clone(&self.engine);
        let owned = id.to_string();
        self.block(async move {
            engine
                .container_remove_with_volumes(&owned, true, true)
                .await
        })?;
        self.containers.retain(|c| c != id);
        Ok(())
    }

    /// Removes every container this build made and has not removed yet.
    pub(crate) fn cleanup(&mut self) {
        for id in std::mem::take(&mut self.containers) {
            let engine = Arc::clone(&self.engine);
            let r = self
                .block(async move { engine.container_remove_with_volumes(&id, true, true).await });
            if let Err(e) = r {
                tracing::warn!("removing a build container: {e}");
            }
        }
    }

    /// Downloads an `ADD` URL once per build: its file (mode 0600, mtime from
    /// `Last-Modified`, as moby) in the build's download directory; returns its name there.
    fn download(&mut self, url: &str) -> crate::Result<String> {
        if let Some(name) = self.fetched.get(url) {
            return Ok(name.clone());
        }
        if self.downloads.is_none() {
            let parent = self.ctx.dir().parent().unwrap_or(Path::new("/tmp"));
            self.downloads = Some(
                tempfile::Builder::new()
                    .prefix("dl-")
                    .tempdir_in(parent)
                    .map_err(|source| EngineError::Io {
                        op: "create directory",
                        path: parent.to_path_buf(),
                        source,
                    })?,
            );
        }
        let dir = self
            .downloads
            .as_ref()
            .map(|d| d.path().to_path_buf())
            .unwrap_or_default();
        // moby: the last path segment names the file; a URL without one is refused.
        let base = url
            .split(['?', '#'])
            .next()
            .unwrap_or(url)
            .rsplit('/')
            .next()
            .unwrap_or("")
            .to_string();
        let name = if base.is_empty() || base.contains(':') {
            return Err(EngineError::InvalidRequest(format!(
                "cannot determine filename from url: {url}"
            )));
        } else {
            format!("{}-{base}", self.fetched.len())
        };
        let path = dir.join(&name);
        let url_owned = url.to_string();
        let path2 = path.clone();
        self.block(async move { fetch(&url_owned, &path2).await })?;
        self.fetched.insert(url.to_string(), name.clone());
        Ok(name)
    }

    /// The downloads' root, for hashing and tarring them as a context's files are.
    fn downloads_root(&self) -> crate::Result<Root> {
        let dir = self
            .downloads
            .as_ref()
            .map(|d| d.path().to_path_buf())
            .unwrap_or_default();
        Ok(Root::open(&dir)?)
    }

    /// Runs `f` with a source root: the context's, or an image's filesystem (a stage's
    /// result, `COPY --from`) through a container made from it and mounted for the call.
    fn with_source<T>(
        &mut self,
        from: &CopyFrom,
        f: impl FnOnce(&Root) -> crate::Result<T> + Send + 'static,
    ) -> crate::Result<T>
    where
        T: Send + 'static,
    {
        match from {
            CopyFrom::Context => f(&self.ctx.root()?),
            CopyFrom::Image(image) => {
                let id = self.create(
                    image,
                    &ImageConfig::default(),
                    vec!["true".into()],
                    Some("none"),
                )?;
                let containers = Arc::clone(&self.engine.containers);
                let owned = id.clone();
                let out = self.block(async move { containers.with_rootfs(&owned, f).await });
                self.remove(&id)?;
                out
            }
        }
    }
}

impl BuildBackend for EngineBackend<'_> {
    fn base_image(
        &mut self,
        reference: &str,
        platform: Option<&str>,
        pull: bool,
    ) -> builder::Result<ImageState> {
        if !pull && let Ok(s) = self.state(reference) {
            return Ok(s);
        }
        let r = images::Reference::parse_normalized(reference).map_err(|e| err(e.into()))?;
        let req = crate::PullRequest {
            from_image: r.to_string(),
            tag: String::new(),
            platform: platform
                .map(str::to_string)
                .or_else(|| self.platform.clone())
                .unwrap_or_default(),
            credentials: self.auth.get(r.domain()).cloned(),
        };
        let engine = Arc::clone(&self.engine);
        let mut lines = Vec::new();
        let pulled = self.block(async move {
            let mut rx = engine.images_pull(req)?;
            let mut lines = Vec::new();
            while let Some(item) = rx.recv().await {
                if let crate::ProgressEvent::Status { id: None, status } = item? {
                    lines.push(status);
                }
            }
            Ok::<_, EngineError>(lines)
        });
        // As moby: with `--pull` a failed pull fails the build, even with a local copy.
        lines.extend(pulled.map_err(err)?);
        for l in lines {
            (self.say)(format!("{l}\n"));
        }
        self.state(&r.to_string()).map_err(err)
    }

    fn source_hash(
        &mut self,
        from: &CopyFrom,
        srcs: &[String],
        add: bool,
    ) -> builder::Result<String> {
        if add && srcs.iter().any(|s| is_url(s)) {
            // Remote files hash by content, as moby's legacy builder downloads them to hash.
            let mut parts = Vec::new();
            for s in srcs {
                if is_url(s) {
                    let name = self.download(s).map_err(err)?;
                    let root = self.downloads_root().map_err(err)?;
                    parts.push(sources::hash(&root, &[name]).map_err(err)?);
                } else {
                    let one = vec![s.clone()];
                    parts.push(
                        self.with_source(from, move |root| sources::hash(root, &one))
                            .map_err(err)?,
                    );
                }
            }
            return Ok(match parts.as_slice() {
                [one] => one.clone(),
                _ => format!(
                    "multi:{}",
                    images::Digest::of(parts.join(",").as_bytes()).hex()
                ),
            });
        }
        let srcs = srcs.to_vec();
        self.with_source(from, move |root| sources::hash(root, &srcs))
            .map_err(err)
    }

    fn run(
        &mut self,
        req: &RunRequest,
        events: &mut dyn FnMut(RunEvent),
    ) -> builder::Result<RunOutcome> {
        let Some(image) = &req.image else {
            return Err(BuildError::Backend(
                "cannot run a command on a scratch image: no shell".into(),
            ));
        };
        let network = req
            .network
            .as_deref()
            .filter(|n| !n.is_empty() && *n != "default");
        let id = self
            .create(image, &req.config, req.cmd.clone(), network)
            .map_err(err)?;
        events(RunEvent::Created(id.clone()));
        let engine = Arc::clone(&self.engine);
        let (ours, theirs) = tokio::io::duplex(64 * 1024);
        let attach_id = id.clone();
        let attach = AttachRequest {
            stdout: true,
            stderr: true,
            stream: true,
            ..Default::default()
        };
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<u8>>(64);
        let run_id = id.clone();
        let outcome = self.handle.spawn(async move {
            let attached = {
                let engine = Arc::clone(&engine);
                tokio::spawn(
                    async move { engine.container_attach(&attach_id, attach, theirs).await },
                )
            };
            engine.containers.wait_attach_registered(&run_id).await;
            let wait = engine.container_wait(&run_id, WaitCondition::NextExit)?;
            engine.container_start(&run_id).await?;
            // Demultiplex the attach stream (8-byte frame headers, no TTY).
            let mut ours = ours;
            let mut head = [0u8; 8];
            loop {
                if ours.read_exact(&mut head).await.is_err() {
                    break;
                }
                let n = u32::from_be_bytes([head[4], head[5], head[6], head[7]]) as usize;
                let mut buf = vec![0u8; n];
                if ours.read_exact(&mut buf).await.is_err() {
                    break;
                }
                if tx.send(buf).await.is_err() {
                    break;
                }
            }
            drop(tx);
            let result = wait.await;
            let _ = attached.await;
            Ok::<_, EngineError>(result.status_code)
        });
        while let Some(chunk) = rx.blocking_recv() {
            events(RunEvent::Output(chunk));
        }
        let code = self
            .block(outcome)
            .map_err(|_| BuildError::Backend("the RUN step's task failed".into()))?
            .map_err(err)?;
        Ok(RunOutcome {
            container: id,
            exit_code: code,
        })
    }

    fn copy(&mut self, req: &CopyRequest) -> builder::Result<String> {
        let chmod = req
            .chmod
            .as_deref()
            .map(|m| u32::from_str_radix(m, 8))
            .transpose()
            .map_err(|_| BuildError::Backend(format!("invalid chmod value {:?}", req.chmod)))?;
        // 1. Each source as a tar in a temporary file, read from the source root.
        let tmp = tempfile::Builder::new()
            .prefix("copy-")
            .tempdir_in(self.ctx.dir().parent().unwrap_or(Path::new("/tmp")))
            .map_err(|e| BuildError::Backend(format!("copy: {e}")))?;
        let (urls, paths): (Vec<String>, Vec<String>) = req
            .sources
            .iter()
            .cloned()
            .partition(|s| req.add && is_url(s));
        let (add, tmp_dir) = (req.add, tmp.path().to_path_buf());
        let mut staged = if paths.is_empty() {
            Vec::new()
        } else {
            self.with_source(&req.from, move |root| {
                sources::stage(root, &paths, &tmp_dir, add)
            })
            .map_err(err)?
        };
        for url in &urls {
            let name = self.download(url).map_err(err)?;
            let root = self.downloads_root().map_err(err)?;
            let base = url.split(['?', '#']).next().unwrap_or(url);
            let base = base.rsplit('/').next().unwrap_or(base);
            staged.push(sources::stage_renamed(&root, &name, base, tmp.path()).map_err(err)?);
        }
        // 2. Extracted under the destination, inside a container of the parent (or a bare
        //    upper directory for scratch).
        let (chown, dest) = (req.chown.clone(), req.dest.clone());
        let write = move |root: &Root| -> crate::Result<()> {
            let owner = match &chown {
                Some(spec) => Some(sources::chown_ids(root, spec)?),
                None => None,
            };
            sources::place(root, staged, &dest, owner, chmod)
        };
        let (container, upper) = match &req.parent {
            Some(parent) => {
                let id = self
                    .create(parent, &req.config, vec!["true".into()], Some("none"))
                    .map_err(err)?;
                let containers = Arc::clone(&self.engine.containers);
                let owned = id.clone();
                self.block(async move { containers.with_rootfs(&owned, write).await })
                    .map_err(err)?;
                let upper = self.engine.containers.upper_dir(&id);
                (Some(id), upper)
            }
            None => {
                let upper = tmp.path().join("scratch");
                std::fs::create_dir(&upper)
                    .map_err(|e| BuildError::Backend(format!("copy: {e}")))?;
                write(&Root::open(&upper).map_err(|e| err(e.into()))?).map_err(err)?;
                (None, upper)
            }
        };
        let id = self.commit_upper(
            req.parent.as_deref(),
            Some(upper),
            &req.config,
            req.author.clone(),
            &req.created_by,
        );
        if let Some(c) = container {
            self.remove(&c).map_err(err)?;
        }
        id
    }

    fn commit(&mut self, req: &CommitRequest) -> builder::Result<String> {
        let mut made = None;
        let upper = match (&req.container, &req.mkdir) {
            (Some(c), _) => Some(self.engine.containers.upper_dir(c)),
            (None, Some(dir)) => match &req.parent {
                Some(parent) => {
                    let id = self
                        .create(parent, &req.config, vec!["true".into()], Some("none"))
                        .map_err(err)?;
                    let containers = Arc::clone(&self.engine.containers);
                    let (owned, dir) = (id.clone(), dir.clone());
                    self.block(async move {
                        containers
                            .with_rootfs(&owned, move |root| {
                                let rel = PathBuf::from(dir.trim_start_matches('/'));
                                Ok(root.create_dir_all(&rel, 0o755)?)
                            })
                            .await
                    })
                    .map_err(err)?;
                    made = Some(id.clone());
                    Some(self.engine.containers.upper_dir(&id))
                }
                None => None,
            },
            (None, None) => None,
        };
        let id = self.commit_upper(
            req.parent.as_deref(),
            upper,
            &req.config,
            req.author.clone(),
            &req.created_by,
        );
        if let Some(c) = made {
            self.remove(&c).map_err(err)?;
        }
        id
    }

    fn remove_container(&mut self, id: &str) -> builder::Result<()> {
        self.remove(id).map_err(err)
    }

    fn cache_lookup(&mut self, key: &CacheKey) -> builder::Result<Option<String>> {
        Ok(self
            .cache
            .lookup(&self.engine.images, &key.0)
            .map(|d| d.to_string()))
    }

    fn cache_record(&mut self, key: &CacheKey, image: &str) -> builder::Result<()> {
        let d = images::Digest::parse(image)
            .map_err(|e| err(EngineError::from(images::ImagesError::from(e))))?;
        self.cache.record(&key.0, &d).map_err(err)
    }

    fn tag(&mut self, image: &str, reference: &str) -> builder::Result<()> {
        let r = images::Reference::parse_normalized(reference).map_err(|e| err(e.into()))?;
        let (repo, tag) = (
            r.name().to_string(),
            r.tag().unwrap_or("latest").to_string(),
        );
        let engine = Arc::clone(&self.engine);
        let image = image.to_string();
        self.block(async move { engine.image_tag(&image, &repo, &tag).await })
            .map_err(err)
    }
}

impl EngineBackend<'_> {
    fn commit_upper(
        &mut self,
        parent: Option<&str>,
        upper: Option<PathBuf>,
        config: &ImageConfig,
        author: Option<String>,
        created_by: &str,
    ) -> builder::Result<String> {
        let parent = parent
            .map(images::Digest::parse)
            .transpose()
            .map_err(|e| err(EngineError::from(images::ImagesError::from(e))))?;
        let req = images::BuildCommit {
            parent,
            upper,
            config: to_image_config(config).map_err(err)?,
            created_by: created_by.to_string(),
            author,
            created: self.reproducible.created.clone(),
            clamp_mtime: self.reproducible.clamp_mtime,
        };
        let images = Arc::clone(&self.engine.images);
        let id = images
            .build_commit(&req)
            .map_err(|e| err(EngineError::from(e)))?;
        Ok(id.to_string())
    }
}

/// Reads a small file inside a root (`/etc/passwd`), empty when missing.
pub(crate) fn read_small(root: &Root, path: &str) -> String {
    let mut s = String::new();
    if let Ok(rel) = root.resolve(Path::new(path))
        && let Ok(f) = root.open_regular(&rel)
    {
        let _ = f.take(4 << 20).read_to_string(&mut s);
    }
    s
}

/// Fetches `url` into `path` (mode 0600, mtime from `Last-Modified`).
async fn fetch(url: &str, path: &Path) -> crate::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let failed = |e: String| EngineError::InvalidRequest(format!("failed to fetch {url}: {e}"));
    let client = reqwest::Client::builder()
        .user_agent(concat!("berth/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(std::time::Duration::from_secs(30))
        .read_timeout(std::time::Duration::from_secs(60))
        .build()
        .map_err(|e| failed(e.to_string()))?;
    let mut resp = client
        .get(url)
        .send()
        .await
        .map_err(|e| failed(e.to_string()))?;
    if !resp.status().is_success() {
        return Err(failed(format!("status {}", resp.status())));
    }
    let modified = resp
        .headers()
        .get(reqwest::header::LAST_MODIFIED)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| chrono::DateTime::parse_from_rfc2822(v).ok());
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| failed(e.to_string()))?;
    let mut got = 0u64;
    while let Some(chunk) = resp.chunk().await.map_err(|e| failed(e.to_string()))? {
        got += chunk.len() as u64;
        if got > MAX_DOWNLOAD {
            return Err(failed(format!("larger than {MAX_DOWNLOAD} bytes")));
        }
        f.write_all(&chunk).map_err(|e| failed(e.to_string()))?;
    }
    if let Some(t) = modified {
        let t = std::time::UNIX_EPOCH
            + std::time::Duration::from_secs(u64::try_from(t.timestamp()).unwrap_or(0));
        let _ = f.set_modified(t);
    }
    Ok(())
}
