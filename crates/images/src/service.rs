//! [`ImageService`]: the image half of the engine, on one data root.
//!
//! On-disk layout it owns: `<data-root>/images/repositories.json` (reference → image ID, written
//! atomically) and `<data-root>/images/meta/<id-hex>.json` (per-image record: last tag time,
//! repo digests, parent). Image configs, layer tars (uncompressed, by diff ID) and manifests
//! live in the content store at `<data-root>/content`; unpacked layers in `<data-root>/snapshots`.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::Path;
use std::sync::{Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};

use chrono::{DateTime, Utc};
use storage::{ContentStore, Snapshotter};

use crate::store::{Disk, State};
use crate::{Digest, ImageConfig, ImagesError, Reference, Result};

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
    Progress {
        id: String,
        status: String,
        current: u64,
        total: u64,
    },
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
    pub(crate) content: ContentStore,
    pub(crate) snaps: Snapshotter,
    pub(crate) disk: Disk,
    pub(crate) state: RwLock<State>,
    /// Serialises changes to the index (and garbage collection against loads).
    pub(crate) ops: Mutex<()>,
    /// Held shared while layers are unpacked and registered, exclusively while deleting.
    pub(crate) gc: RwLock<()>,
}

impl ImageService {
    /// Opens the image store under `data_root` (creating directories as needed). Records that
    /// fail to load are logged and skipped.
    pub fn open(data_root: &Path) -> Result<Self> {
        let content = ContentStore::open(&data_root.join("content"))?;
        let snaps = Snapshotter::open(&data_root.join("snapshots"))?;
        let disk = Disk::open(data_root.join("images"))?;
        let state = disk.load(&content, &snaps)?;
        Ok(Self {
            content,
            snaps,
            disk,
            state: RwLock::new(state),
            ops: Mutex::new(()),
            gc: RwLock::new(()),
        })
    }

    pub(crate) fn read(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn lock_ops(&self) -> std::sync::MutexGuard<'_, ()> {
        self.ops.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn gc_shared(&self) -> RwLockReadGuard<'_, ()> {
        self.gc.read().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn gc_exclusive(&self) -> RwLockWriteGuard<'_, ()> {
        self.gc.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Records an image (if new) whose config blob and snapshots exist. `sizes` are the
    /// snapshot sizes by chain ID.
    pub(crate) fn register(
        &self,
        st: &mut State,
        id: &Digest,
        config: &ImageConfig,
        sizes: &HashMap<Digest, u64>,
    ) -> Result<()> {
        for (c, s) in sizes {
            st.layer_sizes.insert(c.clone(), *s);
        }
        if st.images.contains_key(id) {
            return Ok(());
        }
        let meta = crate::store::Meta::default();
        self.disk.write_meta(id, &meta)?;
        let img = crate::store::Image::new(id.clone(), config.clone(), meta);
        for c in &img.chain_ids {
            if !st.layer_sizes.contains_key(c) {
                let s = self.snaps.get(c).map(|i| i.size).unwrap_or(0);
                st.layer_sizes.insert(c.clone(), s);
            }
        }
        st.images.insert(id.clone(), img);
        Ok(())
    }

    /// Unpacks the layers (uncompressed tars in the content store, by diff ID) of an image,
    /// in parallel; returns the snapshot sizes by chain ID.
    pub(crate) fn unpack_layers(&self, diff_ids: &[Digest]) -> Result<HashMap<Digest, u64>> {
        let chains = crate::store::chain_ids(diff_ids);
        let mut jobs: Vec<(Option<Digest>, Digest, Digest)> = Vec::new();
        let mut sizes = HashMap::new();
        for (i, (d, c)) in diff_ids.iter().zip(&chains).enumerate() {
            if let Some(info) = self.snaps.get(c) {
                sizes.insert(c.clone(), info.size);
            } else if !jobs.iter().any(|j| j.2 == *c) {
                let parent = if i == 0 {
                    None
                } else {
                    Some(chains[i - 1].clone())
                };
                jobs.push((parent, d.clone(), c.clone()));
            }
        }
        let unpack_one = |(parent, diff, _chain): &(Option<Digest>, Digest, Digest)| {
            let f = self.content.open_blob(diff)?;
            let r = std::io::BufReader::with_capacity(1 << 20, f);
            self.snaps
                .unpack(parent.as_ref(), diff, r)
                .map_err(ImagesError::from)
        };
        // Biggest first, on as many threads as there are cores.
        jobs.sort_by_key(|j| std::cmp::Reverse(self.content.blob_size(&j.1).unwrap_or(0)));
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(jobs.len());
        let results: Vec<Result<storage::SnapshotInfo>> = if threads <= 1 {
            jobs.iter().map(unpack_one).collect()
        } else {
            let next = std::sync::atomic::AtomicUsize::new(0);
            let out = Mutex::new(Vec::new());
            std::thread::scope(|s| {
                for _ in 0..threads {
                    s.spawn(|| {
                        loop {
                            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            let Some(job) = jobs.get(i) else { break };
                            let r = unpack_one(job);
                            let failed = r.is_err();
                            out.lock().unwrap_or_else(|e| e.into_inner()).push(r);
                            if failed {
                                // stop handing out work
                                next.store(jobs.len(), std::sync::atomic::Ordering::Relaxed);
                            }
                        }
                    });
                }
            });
            out.into_inner().unwrap_or_else(|e| e.into_inner())
        };
        for r in results {
            let info = r?;
            sizes.insert(info.chain_id, info.size);
        }
        Ok(sizes)
    }

    /// Resolves a name (`busybox`, `busybox:1`, `x@sha256:…`), a full or `sha256:`-prefixed ID,
    /// or a unique ID prefix.
    pub fn get(&self, name: &str) -> Result<ImageRecord> {
        let st = self.read();
        let id = st.resolve(name)?;
        let img = st
            .images
            .get(&id)
            .ok_or_else(|| ImagesError::NotFound(name.to_string()))?;
        Ok(st.record(img))
    }

    /// Images matching `filter`, newest first.
    pub fn list(&self, filter: &ListFilter) -> Result<Vec<ImageRecord>> {
        crate::filters::list(self, filter)
    }

    /// Number of images.
    pub fn count(&self) -> usize {
        self.read().images.len()
    }

    /// Bytes of all unpacked layers, each counted once (`system df` LayersSize).
    pub fn layers_size(&self) -> u64 {
        let st = self.read();
        let mut seen = std::collections::HashSet::new();
        let mut total = 0;
        for img in st.images.values() {
            for c in &img.chain_ids {
                if seen.insert(c) {
                    total += st.layer_sizes.get(c).copied().unwrap_or(0);
                }
            }
        }
        total
    }

    /// For each image ID, the bytes it shares with other images (for `shared-size=1`).
    pub fn shared_sizes(&self) -> HashMap<Digest, u64> {
        let st = self.read();
        let mut users: HashMap<&Digest, usize> = HashMap::new();
        for img in st.images.values() {
            let uniq: std::collections::HashSet<&Digest> = img.chain_ids.iter().collect();
            for c in uniq {
                *users.entry(c).or_default() += 1;
            }
        }
        st.images
            .values()
            .map(|img| {
                let uniq: std::collections::HashSet<&Digest> = img.chain_ids.iter().collect();
                let shared = uniq
                    .into_iter()
                    .filter(|c| users.get(c).copied().unwrap_or(0) > 1)
                    .map(|c| st.layer_sizes.get(c).copied().unwrap_or(0))
                    .sum();
                (img.id.clone(), shared)
            })
            .collect()
    }

    /// Tags the image `source` as `target` (a tag is added to `target` if it has none).
    pub fn tag(&self, source: &str, target: &Reference) -> Result<()> {
        if target.digest().is_some() {
            return Err(ImagesError::InvalidReference(format!(
                "refusing to create a tag with a digest reference: {}",
                target.familiar_string()
            )));
        }
        let target = target.clone().with_default_tag();
        let _ops = self.lock_ops();
        let mut st = self.write();
        let id = st.resolve(source)?;
        self.set_tags(&mut st, &id, std::slice::from_ref(&target))?;
        Ok(())
    }

    /// Points each reference at `id` (moving it if needed), sets last_tag_time, persists.
    /// Returns, for each moved reference, the image it used to point at.
    pub(crate) fn set_tags(
        &self,
        st: &mut State,
        id: &Digest,
        refs: &[Reference],
    ) -> Result<Vec<(Reference, Digest)>> {
        let mut moved = Vec::new();
        if refs.is_empty() {
            return Ok(moved);
        }
        let mut new_refs = st.refs.clone();
        for r in refs {
            if let Some(old) = new_refs.insert(r.to_string(), id.clone())
                && old != *id
            {
                moved.push((r.clone(), old));
            }
        }
        let Some(img) = st.images.get(id) else {
            return Err(ImagesError::NotFound(id.to_string()));
        };
        let mut meta = img.meta.clone();
        meta.last_tag_time = Some(Utc::now());
        self.disk.write_meta(id, &meta)?;
        self.disk.write_refs(&new_refs)?;
        st.refs = new_refs;
        if let Some(img) = st.images.get_mut(id) {
            img.meta = meta;
        }
        Ok(moved)
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
        crate::delete::delete(self, name, force, noprune, in_use)
    }

    /// `docker image prune`: dangling images (or every unused one with `filter.all`).
    pub fn prune(
        &self,
        filter: &PruneFilter,
        in_use: &dyn Fn(&Digest) -> Option<(String, bool)>,
    ) -> Result<PruneReport> {
        crate::delete::prune(self, filter, in_use)
    }

    /// `docker history`.
    pub fn history(&self, name: &str) -> Result<Vec<HistoryItem>> {
        let st = self.read();
        let id = st.resolve(name)?;
        let img = st
            .images
            .get(&id)
            .ok_or_else(|| ImagesError::NotFound(name.to_string()))?;
        let unix = |s: &Option<String>| {
            s.as_deref()
                .and_then(crate::store::parse_time)
                .map(|t| t.timestamp())
                .unwrap_or(0)
        };
        let size_of = |i: usize| {
            img.chain_ids
                .get(i)
                .and_then(|c| st.layer_sizes.get(c))
                .copied()
                .unwrap_or(0)
        };
        let mut rows = Vec::new();
        if img.config.history.is_empty() {
            for i in 0..img.chain_ids.len() {
                rows.push(HistoryItem {
                    id: None,
                    created: unix(&img.config.created),
                    created_by: String::new(),
                    tags: Vec::new(),
                    size: size_of(i),
                    comment: String::new(),
                });
            }
        } else {
            let mut layer = 0;
            for h in &img.config.history {
                let size = if h.empty_layer {
                    0
                } else {
                    layer += 1;
                    size_of(layer - 1)
                };
                rows.push(HistoryItem {
                    id: None,
                    created: unix(&h.created),
                    created_by: h.created_by.clone().unwrap_or_default(),
                    tags: Vec::new(),
                    size,
                    comment: h.comment.clone().unwrap_or_default(),
                });
            }
        }
        rows.reverse();
        if let Some(top) = rows.first_mut() {
            top.id = Some(id.clone());
            top.tags = st
                .refs_of(&id)
                .into_iter()
                .filter(|r| r.digest().is_none())
                .map(|r| r.familiar_string())
                .collect();
        }
        Ok(rows)
    }

    /// `docker load`: a docker-archive or an OCI image layout, as a plain, gzip or zstd tar.
    /// Nothing is tagged unless every blob verified; half-written blobs never stay.
    pub fn load(&self, archive: impl Read + Send, events: &mut dyn FnMut(LoadEvent)) -> Result<()> {
        crate::load::load(self, archive, events)
    }

    /// Resolves the names for `docker save` (404 for unknown ones).
    pub fn save_plan(&self, names: &[String]) -> Result<SavePlan> {
        crate::save::save_plan(self, names)
    }

    /// Writes a docker-archive (manifest.json, repositories, `blobs/sha256/…`, plus index.json and
    /// oci-layout, as docker 25+ does) for the plan.
    pub fn save(&self, plan: &SavePlan, out: impl Write) -> Result<()> {
        crate::save::save(self, plan, out)
    }

    /// The content store (`<data-root>/content`) blobs are fetched into before
    /// [`ImageService::create_from_content`] makes an image of them.
    pub fn content(&self) -> &ContentStore {
        &self.content
    }

    /// The snapshotter (`<data-root>/snapshots`): a pull may unpack verified layers into it
    /// ahead of [`ImageService::create_from_content`], which then finds them unpacked.
    pub fn snapshots(&self) -> &Snapshotter {
        &self.snaps
    }

    /// Makes an image of a config whose layer tars (by diff ID) are in the content store:
    /// unpacks, records, tags with `tag` and records `repo_digest` (`name@sha256:…`).
    pub fn create_from_content(
        &self,
        config: &[u8],
        tag: Option<&Reference>,
        repo_digest: Option<&Reference>,
    ) -> Result<crate::Created> {
        crate::from_content::create(self, config, tag, repo_digest)
    }

    /// `docker import`: one layer from a (possibly compressed) root filesystem tar.
    pub fn import(&self, tar: impl Read + Send, opts: &ImportOptions) -> Result<Digest> {
        crate::import::import(self, tar, opts)
    }

    /// `docker commit`: a child of `opts.parent` with the layer of `opts.upper` (an overlay
    /// upper directory) on top; tagged when `opts.reference` is set.
    pub fn commit(&self, opts: &crate::CommitOptions) -> Result<Digest> {
        crate::commit::commit(self, opts)
    }

    /// A build step's image: the parent (or scratch), an optional new layer from an overlay
    /// upper directory, the builder's config and history line (see [`crate::BuildCommit`]).
    pub fn build_commit(&self, req: &crate::BuildCommit) -> Result<Digest> {
        crate::build_commit::build_commit(self, req)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn service_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<super::ImageService>();
    }
}
