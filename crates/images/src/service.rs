//! [`ImageService`]: the image half of the engine, on one data root.
//!
//! On-disk layout it owns: `<data-root>/images/repositories.json` (reference → image ID, written
//! atomically) and `<data-root>/images/meta/<id-hex>.json` (per-image record: last tag time,
//! repo digests, parent). Image configs, layer tars (uncompressed, by diff ID) and manifests
//! live in the content store at `<data-root>/content`; unpacked layers in `<data-root>/snapshots`.

use std::io::{Read, Write};
use std::path::Path;

use chrono::{DateTime, Utc};

use crate::{Digest, ImageConfig, Reference, Result};

/// One image as the engine sees it.
#[derive(Debug, Clone)]
pub struct ImageRecord {
    /// The image ID: digest of the config blob.
    pub id: Digest,
    /// The parsed config.
    pub config: ImageConfig,
    /// Tags pointing at it (normalised references with a tag).
    pub repo_tags: Vec<Reference>,
    /// Digest references pointing at it (`name@sha256:…`).
    pub repo_digests: Vec<Reference>,
    /// Parent image (built images only).
    pub parent: Option<Digest>,
    /// Sum of its layers' sizes.
    pub size: u64,
    /// Creation time from the config (None if absent or unparsable).
    pub created: Option<DateTime<Utc>>,
    /// When a tag was last set on it here.
    pub last_tag_time: Option<DateTime<Utc>>,
    /// Chain IDs of its layers, bottom first.
    pub chain_ids: Vec<Digest>,
}

/// Filters for [`ImageService::list`] (Docker's `images` filters).
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    /// Include intermediate images (`-a`). Without it, untagged images that are a parent of
    /// another image are hidden.
    pub all: bool,
    /// `dangling=true|false`.
    pub dangling: Option<bool>,
    /// `label=key` or `label=key=value`, all must match.
    pub labels: Vec<String>,
    /// `reference=pattern` (Go `path.Match` against familiar names, with or without tag); any may match.
    pub references: Vec<String>,
    /// `before=image`: created before that image.
    pub before: Option<String>,
    /// `since=image`: created after that image.
    pub since: Option<String>,
    /// `until=timestamp` (RFC 3339, unix seconds, or a Go duration relative to now).
    pub until: Option<String>,
}

/// Filters for [`ImageService::prune`].
#[derive(Debug, Clone, Default)]
pub struct PruneFilter {
    /// `dangling=false` (`-a`): prune every unused image, not only dangling ones.
    pub all: bool,
    /// `until=…`.
    pub until: Option<String>,
    /// `label=…` / `label!=…`.
    pub labels: Vec<String>,
    pub labels_not: Vec<String>,
}

/// One line of a delete or prune answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeleteItem {
    /// A reference removed, in familiar form (`busybox:latest`, `busybox@sha256:…`).
    Untagged(String),
    /// An image (or layer) removed.
    Deleted(Digest),
}

/// The answer of [`ImageService::prune`].
#[derive(Debug, Clone, Default)]
pub struct PruneReport {
    pub deleted: Vec<DeleteItem>,
    pub space_reclaimed: u64,
}

/// One row of `docker history`, newest first.
#[derive(Debug, Clone)]
pub struct HistoryItem {
    /// The image ID for the top row and for rows that are themselves local images; else None (`<missing>`).
    pub id: Option<Digest>,
    /// Unix seconds.
    pub created: i64,
    pub created_by: String,
    /// Familiar tags of `id`.
    pub tags: Vec<String>,
    /// Size of the layer this entry made (0 for empty layers).
    pub size: u64,
    pub comment: String,
}

/// What `load` reports as it goes (the daemon turns these into the JSON message stream).
#[derive(Debug, Clone)]
pub enum LoadEvent {
    /// A layer is being read: `id` is the short diff ID, `current`/`total` bytes.
    Progress { id: String, status: String, current: u64, total: u64 },
    /// An image was loaded under a tag (familiar form, e.g. `busybox:latest`).
    LoadedTag(String),
    /// An image without a tag was loaded.
    LoadedId(Digest),
}

/// Options for `import` (`POST /images/create?fromSrc=`).
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// Dockerfile-like changes: CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, USER, WORKDIR, VOLUME, STOPSIGNAL, ONBUILD.
    pub changes: Vec<String>,
    /// The commit message (history comment).
    pub message: Option<String>,
    /// Tag the result with this.
    pub reference: Option<Reference>,
    /// `os/arch[/variant]`; default the host's.
    pub platform: Option<String>,
}

/// The images to write in `save`, resolved up front so unknown names fail before streaming.
#[derive(Debug, Clone)]
pub struct SavePlan {
    /// (image, the references the user named for it; empty when named by ID).
    pub images: Vec<(ImageRecord, Vec<Reference>)>,
}

/// The image service on one data root.
#[derive(Debug)]
pub struct ImageService {
    _private: (),
}

impl ImageService {
    /// Opens the image store under `data_root` (creating directories as needed). Records that
    /// fail to load are logged and skipped.
    pub fn open(data_root: &Path) -> Result<Self> {
        let _ = data_root;
        unimplemented!()
    }

    /// Resolves a name (`busybox`, `busybox:1`, `x@sha256:…`), a full or `sha256:`-prefixed ID,
    /// or a unique ID prefix.
    pub fn get(&self, name: &str) -> Result<ImageRecord> {
        let _ = name;
        unimplemented!()
    }

    /// Images matching `filter`, newest first.
    pub fn list(&self, filter: &ListFilter) -> Result<Vec<ImageRecord>> {
        let _ = filter;
        unimplemented!()
    }

    /// Number of images.
    pub fn count(&self) -> usize {
        unimplemented!()
    }

    /// Bytes of all unpacked layers, each counted once (`system df` LayersSize).
    pub fn layers_size(&self) -> u64 {
        unimplemented!()
    }

    /// For each image ID, the bytes it shares with other images (for `shared-size=1`).
    pub fn shared_sizes(&self) -> std::collections::HashMap<Digest, u64> {
        unimplemented!()
    }

    /// Tags the image `source` as `target` (a tag is added to `target` if it has none).
    pub fn tag(&self, source: &str, target: &Reference) -> Result<()> {
        let _ = (source, target);
        unimplemented!()
    }

    /// `docker rmi`. `in_use(id)` returns `Some((container short id, running))` when a container
    /// uses the image; the engine passes `|_| None` until containers exist.
    pub fn delete(
        &self,
        name: &str,
        force: bool,
        noprune: bool,
        in_use: &dyn Fn(&Digest) -> Option<(String, bool)>,
    ) -> Result<Vec<DeleteItem>> {
        let _ = (name, force, noprune, in_use);
        unimplemented!()
    }

    /// `docker image prune`: dangling images (or every unused one with `filter.all`).
    pub fn prune(
        &self,
        filter: &PruneFilter,
        in_use: &dyn Fn(&Digest) -> Option<(String, bool)>,
    ) -> Result<PruneReport> {
        let _ = (filter, in_use);
        unimplemented!()
    }

    /// `docker history`.
    pub fn history(&self, name: &str) -> Result<Vec<HistoryItem>> {
        let _ = name;
        unimplemented!()
    }

    /// `docker load`: a docker-archive or an OCI image layout, as a plain, gzip or zstd tar.
    /// Nothing is tagged unless every blob verified; half-written blobs never stay.
    pub fn load(&self, archive: impl Read + Send, events: &mut dyn FnMut(LoadEvent)) -> Result<()> {
        let _ = (archive, events);
        unimplemented!()
    }

    /// Resolves the names for `docker save` (404 for unknown ones).
    pub fn save_plan(&self, names: &[String]) -> Result<SavePlan> {
        let _ = names;
        unimplemented!()
    }

    /// Writes a docker-archive (manifest.json, repositories, `blobs/sha256/…`, plus index.json and
    /// oci-layout, as docker 25+ does) for the plan.
    pub fn save(&self, plan: &SavePlan, out: impl Write) -> Result<()> {
        let _ = (plan, out);
        unimplemented!()
    }

    /// `docker import`: one layer from a (possibly compressed) root filesystem tar.
    pub fn import(&self, tar: impl Read + Send, opts: &ImportOptions) -> Result<Digest> {
        let _ = (tar, opts);
        unimplemented!()
    }
}
