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
mod certs;
mod layer;
mod login;
pub mod manifest;
mod metadata;
mod mirrors;
mod push;
mod search;
mod session;
mod tags;

use std::time::Duration;

use storage::{ContentStore, Digest};

use manifest::Manifest;
pub use manifest::Platform;
pub use mirrors::validate_mirror;
pub use push::{PushEvent, PushRequest, Pushed};
pub use search::{SearchRequest, SearchResult};

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
    /// Where distribution metadata (which compressed blobs a layer is known under, and in
    /// which repositories) persists; in memory only when `None`.
    pub metadata_dir: Option<std::path::PathBuf>,
    /// Docker Hub mirrors (validated by [`validate_mirror`]), tried in order before it.
    pub mirrors: Vec<String>,
    /// The certs.d directory (`<dir>/<host[:port]>/*.crt`, `*.cert` + `*.key`); none when
    /// `None`.
    pub certs_dir: Option<std::path::PathBuf>,
    /// Layers downloaded at the same time by one pull (daemon `max-concurrent-downloads`);
    /// 0 means the default (3, as Docker).
    pub max_concurrent_downloads: usize,
    /// Layers uploaded at the same time by one push (daemon `max-concurrent-uploads`); 0 means
    /// the default.
    pub max_concurrent_uploads: usize,
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
    /// When set, each downloaded layer is also unpacked here while it downloads (published
    /// once verified), so the image service finds the snapshots ready.
    pub unpack_into: Option<storage::Snapshotter>,
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
    /// Where layers are known to live compressed (pulls and pushes record, pushes ask).
    metadata: std::sync::Arc<metadata::MetadataStore>,
    /// Per-registry clients built from the certs.d directory.
    certs: std::sync::Arc<certs::HostCerts>,
    /// The slowest layer download tolerated.
    floor: layer::TransferFloor,
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
            metadata: std::sync::Arc::new(metadata::MetadataStore::new(opts.metadata_dir.clone())),
            certs: std::sync::Arc::new(certs::HostCerts::new(opts.certs_dir.clone())),
            opts,
            floor: layer::TransferFloor::default(),
        })
    }

    /// The same client (connection pools, distribution metadata, certs.d) with other
    /// registry-level options: insecure registries, mirrors and parallelism (a daemon reload).
    /// The metadata directory and certs.d directory stay the client's own.
    pub fn with_options(&self, opts: ClientOptions) -> Self {
        let mut c = self.clone();
        c.opts = ClientOptions {
            metadata_dir: self.opts.metadata_dir.clone(),
            certs_dir: self.opts.certs_dir.clone(),
            ..opts
        };
        c
    }

    /// After `grace`, a layer download slower than `bytes_per_sec` is abandoned (and retried,
    /// boundedly). Defaults: 1024 bytes/s after 30 s.
    pub fn with_transfer_floor(mut self, bytes_per_sec: u64, grace: Duration) -> Self {
        self.floor = layer::TransferFloor {
            bytes_per_sec,
            grace,
        };
        self
    }

    /// Whether `domain` gets unverified TLS and plain HTTP: a listed insecure registry, or a
    /// loopback one without a certs.d directory.
    fn is_insecure(&self, domain: &str) -> bool {
        self.opts.insecure_registries.iter().any(|r| r == domain)
            || (session::is_loopback(domain) && !self.has_certs(domain))
    }

    /// Pulls `req` into `content` from `mirror` (a Docker Hub mirror's URL) or the
    /// reference's registry; [`Client::pull`] picks the endpoints.
    async fn pull_at(
        &self,
        mirror: Option<&str>,
        content: &ContentStore,
        req: &PullRequest,
        events: &(dyn Fn(PullEvent) + Sync),
    ) -> Result<Pulled> {
        let session = self.pull_session(mirror, req).await?;
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
        // Each layer's parent chain, for unpacking while downloading.
        let mut parents = Vec::with_capacity(diff_ids.len());
        let mut chain: Option<Digest> = None;
        for d in &diff_ids {
            parents.push(chain.clone());
            chain = Some(storage::Snapshotter::chain_id(chain.as_ref(), d));
        }
        let unpack_to = |d: &Digest| {
            let snaps = req.unpack_into.clone()?;
            let i = diff_ids.iter().position(|x| x == d)?;
            Some(layer::UnpackTo {
                snaps,
                parent: parents[i].clone(),
            })
        };
        // Bounded parallelism. After a failure no new download starts, but those under way
        // finish: what they verified stays in the store for the next pull to resume from.
        let slots = tokio::sync::Semaphore::new(match self.opts.max_concurrent_downloads {
            0 => PARALLEL_LAYERS,
            n => n,
        });
        let failed = std::sync::atomic::AtomicBool::new(false);
        let mut downloads = Vec::new();
        for (l, d) in todo {
            let (slots, session, failed) = (&slots, &session, &failed);
            let unpack = unpack_to(d);
            downloads.push(async move {
                let _slot = slots
                    .acquire()
                    .await
                    .map_err(|_| RegistryError::Other("download slots closed".into()))?;
                if failed.load(std::sync::atomic::Ordering::SeqCst) {
                    return Ok(());
                }
                let floor = self.floor;
                let r = layer::fetch(session, content, l, d, unpack.as_ref(), floor, events).await;
                if r.is_err() {
                    failed.store(true, std::sync::atomic::Ordering::SeqCst);
                }
                r
            });
        }
        for r in futures_util::future::join_all(downloads).await {
            r?;
        }
        let known = layers.iter().zip(&diff_ids);
        let known = known.map(|(l, d)| (d.clone(), l.digest.clone(), l.size));
        self.remember(&req.domain, &req.repository, known.collect())
            .await;
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

#[cfg(test)]
mod reconfigure_tests {
    use super::*;

    #[test]
    fn with_options_keeps_the_clients_directories() {
        let c = Client::new(ClientOptions {
            metadata_dir: Some("/m".into()),
            certs_dir: Some("/c".into()),
            ..ClientOptions::default()
        })
        .unwrap();
        let r = c.with_options(ClientOptions {
            insecure_registries: vec!["r:5000".into()],
            mirrors: vec!["https://m.example.com/".into()],
            max_concurrent_downloads: 6,
            certs_dir: Some("/other".into()),
            ..ClientOptions::default()
        });
        assert!(r.is_insecure("r:5000"));
        assert!(!c.is_insecure("r:5000"));
        assert_eq!(r.opts.mirrors, vec!["https://m.example.com/"]);
        assert_eq!(r.opts.max_concurrent_downloads, 6);
        assert_eq!(r.opts.metadata_dir, Some("/m".into()));
        assert_eq!(r.opts.certs_dir, Some("/c".into()));
        assert!(std::sync::Arc::ptr_eq(&r.metadata, &c.metadata));
    }
}
