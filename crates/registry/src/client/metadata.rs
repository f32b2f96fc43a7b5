//! Distribution metadata (moby's v2metadata service): for each layer diff ID, the compressed
//! blobs it is known under and where (registry + repository). Recorded when a layer is pulled
//! or pushed; a push asks it which digests to check and which repositories to mount from.
//!
//! With a directory, each diff ID is one JSON file
//! (`<dir>/v2metadata-by-diffid/sha256/<hex>`, an array oldest first, as moby's), replaced
//! atomically (temporary file, fsync, rename); without one, entries live in memory only. At
//! most [`MAX_ENTRIES`] entries are kept per diff ID, the oldest dropped first.
//!
//! Knows nothing of where the directory lives (the caller hands it over) nor of HTTP.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use storage::Digest;

/// Entries kept per diff ID (moby's `maxMetadata`).
pub(crate) const MAX_ENTRIES: usize = 50;
/// A metadata file larger than this is ignored (50 entries are a few KiB).
const MAX_FILE: u64 = 1 << 20;

/// One place a layer is known to live, compressed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Entry {
    /// The compressed blob's digest.
    #[serde(rename = "Digest")]
    pub(crate) digest: Digest,
    /// `<domain>/<repository path>` (`127.0.0.1:5000/test/busybox`, `docker.io/library/busybox`).
    #[serde(rename = "SourceRepository")]
    pub(crate) source: String,
    /// The compressed blob's size in bytes (0 when unknown; moby keeps none).
    #[serde(rename = "Size", default)]
    pub(crate) size: u64,
}

impl Entry {
    pub(crate) fn new(digest: Digest, size: u64, domain: &str, repository: &str) -> Self {
        Self {
            digest,
            source: format!("{domain}/{repository}"),
            size,
        }
    }

    /// The registry part of [`Entry::source`].
    pub(crate) fn domain(&self) -> &str {
        self.source.split_once('/').map_or("", |(d, _)| d)
    }

    /// The repository path part of [`Entry::source`].
    pub(crate) fn repository(&self) -> &str {
        self.source.split_once('/').map_or("", |(_, r)| r)
    }

    fn same_place(&self, other: &Self) -> bool {
        self.digest == other.digest && self.source == other.source
    }
}

/// The metadata store (see the module docs).
#[derive(Debug, Default)]
pub(crate) struct MetadataStore {
    dir: Option<PathBuf>,
    /// Entries read or written so far, by diff ID; the lock also serialises file updates.
    cache: Mutex<HashMap<Digest, Vec<Entry>>>,
}

impl MetadataStore {
    /// A store persisted under `dir` (created on first write), or in memory with `None`.
    pub(crate) fn new(dir: Option<PathBuf>) -> Self {
        Self {
            dir,
            cache: Mutex::new(HashMap::new()),
        }
    }

    fn file(dir: &Path, diff_id: &Digest) -> PathBuf {
        dir.join("v2metadata-by-diffid")
            .join("sha256")
            .join(diff_id.hex())
    }

    /// The entries for `diff_id`, oldest first.
    pub(crate) fn get(&self, diff_id: &Digest) -> Vec<Entry> {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        self.load(&mut cache, diff_id).clone()
    }

    fn load<'a>(
        &self,
        cache: &'a mut HashMap<Digest, Vec<Entry>>,
        diff_id: &Digest,
    ) -> &'a mut Vec<Entry> {
        cache.entry(diff_id.clone()).or_insert_with(|| {
            self.dir
                .as_deref()
                .and_then(|dir| read(&Self::file(dir, diff_id)))
                .unwrap_or_default()
        })
    }

    /// Records `entry` for `diff_id` as the newest (an equal older one moves up), keeping at
    /// most [`MAX_ENTRIES`]. Nothing is written when it already was the newest.
    pub(crate) fn add(&self, diff_id: &Digest, entry: Entry) -> std::io::Result<()> {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        let list = self.load(&mut cache, diff_id);
        if list
            .last()
            .is_some_and(|l| l.same_place(&entry) && l.size == entry.size)
        {
            return Ok(());
        }
        list.retain(|l| !l.same_place(&entry));
        list.push(entry);
        if list.len() > MAX_ENTRIES {
            let extra = list.len() - MAX_ENTRIES;
            list.drain(..extra);
        }
        match &self.dir {
            Some(dir) => write_atomic(&Self::file(dir, diff_id), list),
            None => Ok(()),
        }
    }
}

/// A metadata file's entries; `None` when absent or unreadable (it is only a cache).
fn read(path: &Path) -> Option<Vec<Entry>> {
    let meta = std::fs::symlink_metadata(path).ok()?;
    if !meta.is_file() || meta.len() > MAX_FILE {
        return None;
    }
    let bytes = std::fs::read(path).ok()?;
    match serde_json::from_slice::<Vec<Entry>>(&bytes) {
        Ok(mut v) => {
            if v.len() > MAX_ENTRIES {
                v.drain(..v.len() - MAX_ENTRIES);
            }
            Some(v)
        }
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "ignoring unreadable distribution metadata");
            None
        }
    }
}

/// Writes `entries` to `path` through a temporary file in the same directory, fsynced, then
/// renamed over it.
fn write_atomic(path: &Path, entries: &[Entry]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path
        .parent()
        .ok_or_else(|| std::io::Error::other("metadata path without a parent"))?;
    std::fs::create_dir_all(dir)?;
    let bytes = serde_json::to_vec(entries).map_err(std::io::Error::other)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{:016x}.tmp", rand::random::<u64>()));
    let res = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res
}

impl super::Client {
    /// Records that each `(diff ID, compressed digest, size)` of `layers` lives in
    /// `domain`/`repository` (a pull verified it there, or a push put it there). Best effort:
    /// a failure to persist is logged, never returned.
    pub async fn remember(
        &self,
        domain: &str,
        repository: &str,
        layers: Vec<(Digest, Digest, u64)>,
    ) {
        let store = std::sync::Arc::clone(&self.metadata);
        let (domain, repository) = (domain.to_string(), repository.to_string());
        let done = tokio::task::spawn_blocking(move || {
            for (diff_id, digest, size) in layers {
                if let Err(e) = store.add(&diff_id, Entry::new(digest, size, &domain, &repository))
                {
                    tracing::warn!(%diff_id, error = %e, "cannot record distribution metadata");
                }
            }
        })
        .await;
        if done.is_err() {
            tracing::warn!("recording distribution metadata failed");
        }
    }

    /// Where `diff_id` is known to live compressed, oldest first.
    pub(crate) async fn known_blobs(&self, diff_id: &Digest) -> Vec<Entry> {
        let store = std::sync::Arc::clone(&self.metadata);
        let diff_id = diff_id.clone();
        tokio::task::spawn_blocking(move || store.get(&diff_id))
            .await
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(n: u32) -> Digest {
        Digest::of(&n.to_le_bytes())
    }

    #[test]
    fn entries_split_source() {
        let e = Entry::new(d(1), 5, "127.0.0.1:5000", "a/b");
        assert_eq!(e.source, "127.0.0.1:5000/a/b");
        assert_eq!(e.domain(), "127.0.0.1:5000");
        assert_eq!(e.repository(), "a/b");
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(json["SourceRepository"], "127.0.0.1:5000/a/b");
        assert_eq!(json["Digest"], d(1).to_string());
    }

    #[test]
    fn add_moves_equal_entries_up_and_is_bounded() {
        let store = MetadataStore::new(None);
        let diff = d(0);
        store.add(&diff, Entry::new(d(1), 1, "r", "a")).unwrap();
        store.add(&diff, Entry::new(d(2), 1, "r", "b")).unwrap();
        store.add(&diff, Entry::new(d(1), 1, "r", "a")).unwrap();
        let got = store.get(&diff);
        assert_eq!(got.len(), 2);
        assert_eq!(got[1].source, "r/a", "re-added entry is the newest");
        for i in 0..(MAX_ENTRIES as u32 + 10) {
            store
                .add(&diff, Entry::new(d(100 + i), 1, "r", "x"))
                .unwrap();
        }
        let got = store.get(&diff);
        assert_eq!(got.len(), MAX_ENTRIES);
        assert_eq!(got[0].digest, d(110), "oldest dropped first");
        assert_eq!(got[MAX_ENTRIES - 1].digest, d(100 + MAX_ENTRIES as u32 + 9));
        assert!(store.get(&d(9)).is_empty());
    }

    #[test]
    fn persisted_atomically_and_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("distribution");
        let diff = d(0);
        {
            let store = MetadataStore::new(Some(root.clone()));
            store
                .add(&diff, Entry::new(d(1), 10, "r:5000", "a"))
                .unwrap();
            store
                .add(&diff, Entry::new(d(2), 20, "r:5000", "b"))
                .unwrap();
        }
        let file = MetadataStore::file(&root, &diff);
        assert!(file.is_file(), "{}", file.display());
        let names: Vec<_> = std::fs::read_dir(file.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "no temporary files left: {names:?}");

        let store = MetadataStore::new(Some(root.clone()));
        let got = store.get(&diff);
        assert_eq!(
            got,
            vec![
                Entry::new(d(1), 10, "r:5000", "a"),
                Entry::new(d(2), 20, "r:5000", "b")
            ]
        );

        // A damaged file is ignored (it is only a cache) and replaced on the next add.
        std::fs::write(&file, b"{not json").unwrap();
        let store = MetadataStore::new(Some(root));
        assert!(store.get(&diff).is_empty());
        store
            .add(&diff, Entry::new(d(3), 1, "r:5000", "c"))
            .unwrap();
        let back: Vec<Entry> = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        assert_eq!(back, vec![Entry::new(d(3), 1, "r:5000", "c")]);
    }
}
