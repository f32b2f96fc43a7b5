//! The distribution client: pulls one image (Distribution v2 / OCI) from a registry into the
//! content store, verifying everything before it is committed.
//!
//! Pushing is `push.rs`. Flow of [`Client::pull`]: open a [`session::Session`] (scheme, auth), fetch the manifest
//! by tag or digest (≤ 4 MiB, digest checked), descend a manifest list / OCI index to the
//! wanted platform, fetch and verify the config, then the layers not already in the store
//! (by diff ID), three at a time. Layers land in the store uncompressed under their diff IDs,
//! as `docker load` leaves them; turning config + layers into an image is the caller's job.
//!
//! This module knows nothing of image records, tags, the Engine API or the CLI.

mod auth;
mod layer;
mod login;
pub mod manifest;
mod push;
mod session;

use std::time::Duration;

use storage::{ContentStore, Digest};

use manifest::Manifest;
pub use manifest::Platform;
pub use push::{PushEvent, PushRequest, Pushed};
use session::Session;

use crate::{RegistryError, Result};

/// Largest manifest (or index) accepted.
pub const MAX_MANIFEST: u64 = 4 << 20;
/// Largest image config accepted.
pub const MAX_CONFIG: u64 = 8 << 20;
/// Layers downloaded at the same time.
const PARALLEL_LAYERS: usize = 3;

/// Credentials for a registry (from `X-Registry-Auth`).
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// Client settings.
#[derive(Debug, Clone, Default)]
pub struct ClientOptions {
    /// Registries (`host[:port]`) spoken to over plain HTTP (after HTTPS without certificate
    /// checks failed). Loopback registries are always insecure.
    pub insecure_registries: Vec<String>,
}

/// What to pull: a repository on a registry, by tag or digest. The caller normalises names
/// (`busybox` → domain `docker.io`, repository `library/busybox`).
#[derive(Debug, Clone)]
pub struct PullRequest {
    /// The registry as named in the reference (`docker.io`, `127.0.0.1:5000`).
    pub domain: String,
    /// The repository path (`library/busybox`).
    pub repository: String,
    /// A tag (`latest`) or a digest (`sha256:…`).
    pub reference: String,
    /// How the reference reads in messages (`127.0.0.1:5000/test/busybox:nope`).
    pub display: String,
    /// The platform wanted from a manifest list; the host's when `None`.
    pub platform: Option<Platform>,
    pub credentials: Option<Credentials>,
}

/// What a pull reports as it goes. `id` is a layer's short (12 hex) compressed digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PullEvent {
    /// The manifest was found (Docker's `Pulling from …` follows this).
    Resolved,
    /// The layer is already in the store.
    LayerExists { id: String },
    /// The layer will be downloaded.
    LayerWaiting { id: String },
    /// Bytes of a layer received.
    Downloading {
        id: String,
        current: u64,
        total: u64,
    },
    /// A layer was verified and committed.
    Verified { id: String },
    /// A layer download failed transiently and is retried after `seconds`.
    Retrying { id: String, seconds: u64 },
}

/// A pulled image: everything in the content store except the config, handed back here.
#[derive(Debug, Clone)]
pub struct Pulled {
    /// Digest of the manifest the reference named (an index's, for multi-arch images).
    pub manifest_digest: Digest,
    /// The verified config bytes (its digest is the image ID).
    pub config: Vec<u8>,
    pub config_digest: Digest,
    /// The layers' uncompressed digests (all present in the content store), bottom first.
    pub diff_ids: Vec<Digest>,
    /// The layers that were downloaded, bottom first: (short ID, compressed size), for
    /// progress lines.
    pub fetched: Vec<(String, u64)>,
    /// The config was in the store already (the image is known): no per-layer lines were
    /// reported for layers already present.
    pub config_known: bool,
}

/// A registry client (connection pools for verified TLS and for insecure registries).
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    insecure_http: reqwest::Client,
    opts: ClientOptions,
    /// Layers gzipped for pushes: diff ID → (compressed digest, size).
    compressed: push::CompressedCache,
}

fn builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .user_agent(concat!("berth/", env!("CARGO_PKG_VERSION")))
        .redirect(reqwest::redirect::Policy::limited(5))
        .connect_timeout(Duration::from_secs(30))
        .read_timeout(Duration::from_secs(60))
}

impl Client {
    pub fn new(opts: ClientOptions) -> Result<Self> {
        let err = |e: reqwest::Error| RegistryError::Other(format!("registry client: {e}"));
        Ok(Self {
            http: builder().build().map_err(err)?,
            insecure_http: builder()
                .danger_accept_invalid_certs(true)
                .build()
                .map_err(err)?,
            opts,
            compressed: push::CompressedCache::default(),
        })
    }

    fn is_insecure(&self, domain: &str) -> bool {
        session::is_loopback(domain) || self.opts.insecure_registries.iter().any(|r| r == domain)
    }

    /// Pulls `req` into `content` (see the module docs); `events` hears about progress.
    pub async fn pull(
        &self,
        content: &ContentStore,
        req: &PullRequest,
        events: &(dyn Fn(PullEvent) + Sync),
    ) -> Result<Pulled> {
        let session =
            Session::open(self, &req.domain, &req.repository, req.credentials.clone()).await?;
        let (bytes, ct) = session
            .manifest(&req.reference, &req.display, MAX_MANIFEST)
            .await?;
        let manifest_digest = Digest::of(&bytes);
        if let Ok(want) = Digest::parse(&req.reference)
            && want != manifest_digest
        {
            return Err(RegistryError::Protocol(format!(
                "manifest verification failed for digest {want}: got {manifest_digest}"
            )));
        }
        let (config_desc, layers) = match manifest::parse(&bytes, &ct)? {
            Manifest::Image { config, layers } => (config, layers),
            Manifest::Index { manifests } => {
                let want = req.platform.clone().unwrap_or_else(Platform::host);
                let entry = manifest::select(&manifests, &want)?;
                let (bytes, ct) = session
                    .manifest(&entry.digest.to_string(), &req.display, MAX_MANIFEST)
                    .await?;
                let got = Digest::of(&bytes);
                if got != entry.digest || bytes.len() as u64 != entry.size {
                    return Err(RegistryError::Protocol(format!(
                        "manifest verification failed for digest {}: got {got}",
                        entry.digest
                    )));
                }
                match manifest::parse(&bytes, &ct)? {
                    Manifest::Image { config, layers } => (config, layers),
                    Manifest::Index { .. } => {
                        return Err(RegistryError::Protocol(
                            "a manifest list entry is itself a list".into(),
                        ));
                    }
                }
            }
        };
        events(PullEvent::Resolved);

        // The config: small, verified, kept in memory.
        if config_desc.size > MAX_CONFIG {
            return Err(RegistryError::Protocol(format!(
                "image config {} is larger than {MAX_CONFIG} bytes",
                config_desc.digest
            )));
        }
        let resp = session.blob(&config_desc.digest, session::ATTEMPTS).await?;
        let config = session::read_limited(resp, MAX_CONFIG, "image config").await?;
        let config_digest = Digest::of(&config);
        if config_digest != config_desc.digest {
            return Err(RegistryError::Protocol(format!(
                "image config verification failed for digest {}: got {config_digest}",
                config_desc.digest
            )));
        }
        let rootfs: manifest::ConfigRootFs = serde_json::from_slice(&config)
            .map_err(|e| RegistryError::Protocol(format!("invalid image config: {e}")))?;
        let layers: Vec<_> = layers
            .into_iter()
            .filter(|l| manifest::is_layer(&l.media_type))
            .collect();
        let diff_ids = rootfs.rootfs.diff_ids;
        if diff_ids.len() != layers.len() {
            return Err(RegistryError::Protocol(format!(
                "image config {config_digest} lists {} layers, the manifest {}",
                diff_ids.len(),
                layers.len()
            )));
        }

        // Layers: skip what the store has; download the rest, each once.
        // Like Docker, a known image reports nothing for the layers it has.
        let config_known = content.exists(&config_digest);
        let mut todo = Vec::new();
        for (l, d) in layers.iter().zip(&diff_ids) {
            let id = l.digest.short().to_string();
            if content.exists(d) {
                if !config_known {
                    events(PullEvent::LayerExists { id });
                }
            } else if !todo.iter().any(|(_, t): &(_, &Digest)| *t == d) {
                events(PullEvent::LayerWaiting { id });
                todo.push((l, d));
            }
        }
        let fetched = todo
            .iter()
            .map(|(l, _)| (l.digest.short().to_string(), l.size))
            .collect();
        // Bounded parallelism; the first failure drops (cancels) the other downloads.
        let slots = tokio::sync::Semaphore::new(PARALLEL_LAYERS);
        let mut downloads = Vec::new();
        for (l, d) in todo {
            let (slots, session) = (&slots, &session);
            downloads.push(async move {
                let _slot = slots
                    .acquire()
                    .await
                    .map_err(|_| RegistryError::Other("download slots closed".into()))?;
                layer::fetch(session, content, l, d, events).await
            });
        }
        futures_util::future::try_join_all(downloads).await?;
        Ok(Pulled {
            manifest_digest,
            config,
            config_digest,
            diff_ids,
            fetched,
            config_known,
        })
    }
}
