//! The image records and the tag index: `<data-root>/images/repositories.json` and
//! `<data-root>/images/meta/<hex>.json`, mirrored in memory.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use storage::{ContentStore, Snapshotter};

use crate::service::ImageRecord;
use crate::{Digest, ImageConfig, ImagesError, Reference, Result};

/// Largest config blob we read.
pub(crate) const MAX_CONFIG: u64 = 8 << 20;

/// What `meta/<hex>.json` holds.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Meta {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) last_tag_time: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) parent: Option<Digest>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) repo_digests: Vec<String>,
}

/// One image in memory.
#[derive(Debug, Clone)]
pub(crate) struct Image {
    pub(crate) id: Digest,
    pub(crate) config: ImageConfig,
    pub(crate) meta: Meta,
    pub(crate) chain_ids: Vec<Digest>,
    pub(crate) created: Option<DateTime<Utc>>,
}

/// The in-memory index.
#[derive(Debug, Default)]
pub(crate) struct State {
    pub(crate) images: HashMap<Digest, Image>,
    /// Full reference string → image ID.
    pub(crate) refs: BTreeMap<String, Digest>,
    /// Chain ID → snapshot size (cached).
    pub(crate) layer_sizes: HashMap<Digest, u64>,
}

pub(crate) fn io_err(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> ImagesError {
    let path = path.to_path_buf();
    move |source| ImagesError::Io { op, path, source }
}

pub(crate) fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Chain IDs of a list of diff IDs, bottom first.
pub(crate) fn chain_ids(diff_ids: &[Digest]) -> Vec<Digest> {
    let mut out: Vec<Digest> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let c = Snapshotter::chain_id(out.last(), d);
        out.push(c);
    }
    out
}

impl Image {
    pub(crate) fn new(id: Digest, config: ImageConfig, meta: Meta) -> Self {
        let chain_ids = chain_ids(&config.rootfs.diff_ids);
        let created = config.created.as_deref().and_then(parse_time);
        Self {
            id,
            config,
            meta,
            chain_ids,
            created,
        }
    }
}

/// Writes `data` to `path` atomically: tmp file, fsync, rename, fsync the directory.
pub(crate) fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.tmp-{:016x}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("f"),
        rand::random::<u64>()
    ));
    let res = (|| {
        let mut f = std::fs::File::create(&tmp).map_err(io_err("create", &tmp))?;
        f.write_all(data).map_err(io_err("write", &tmp))?;
        f.sync_all().map_err(io_err("fsync", &tmp))?;
        std::fs::rename(&tmp, path).map_err(io_err("rename", path))?;
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res
}

/// Removes the temporary files of [`write_atomic`] a crash left in `dir` (`.<name>.tmp-<hex>`:
/// never read, the rename is the commit).
fn remove_stale_temporaries(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') && name.contains(".tmp-") {
            let path = entry.path();
            if let Err(e) = std::fs::remove_file(&path) {
                tracing::warn!(path = %path.display(), error = %e, "cannot remove a stale temporary file");
            }
        }
    }
}

/// The on-disk side of the index.
#[derive(Debug)]
pub(crate) struct Disk {
    pub(crate) dir: PathBuf,
}

impl Disk {
    pub(crate) fn open(dir: PathBuf) -> Result<Self> {
        let meta = dir.join("meta");
        std::fs::create_dir_all(&meta).map_err(io_err("mkdir", &meta))?;
        remove_stale_temporaries(&dir);
        remove_stale_temporaries(&meta);
        Ok(Self { dir })
    }

    fn repositories_path(&self) -> PathBuf {
        self.dir.join("repositories.json")
    }

    fn meta_path(&self, id: &Digest) -> PathBuf {
        self.dir.join("meta").join(format!("{}.json", id.hex()))
    }

    /// Loads every record; corrupt ones are logged and skipped.
    pub(crate) fn load(&self, content: &ContentStore, snaps: &Snapshotter) -> Result<State> {
        let mut state = State::default();
        let meta_dir = self.dir.join("meta");
        let rd = std::fs::read_dir(&meta_dir).map_err(io_err("read dir", &meta_dir))?;
        for ent in rd {
            let ent = ent.map_err(io_err("read dir", &meta_dir))?;
            let name = ent.file_name();
            let Some(hex) = name.to_str().and_then(|n| n.strip_suffix(".json")) else {
                continue;
            };
            let Ok(id) = Digest::from_hex(hex) else {
                tracing::warn!(file = ?ent.path(), "skipping image record with a bad name");
                continue;
            };
            match self.load_one(&id, content) {
                Ok(img) => {
                    for c in &img.chain_ids {
                        if !state.layer_sizes.contains_key(c) {
                            let size = snaps.get(c).map(|i| i.size).unwrap_or_else(|| {
                                tracing::warn!(image = %id, chain = %c, "snapshot missing");
                                0
                            });
                            state.layer_sizes.insert(c.clone(), size);
                        }
                    }
                    state.images.insert(id, img);
                }
                Err(e) => tracing::warn!(image = %id, error = %e, "skipping corrupt image record"),
            }
        }
        let rp = self.repositories_path();
        match std::fs::read(&rp) {
            Ok(data) => match serde_json::from_slice::<BTreeMap<String, Digest>>(&data) {
                Ok(map) => {
                    for (r, id) in map {
                        if Reference::parse_normalized(&r).is_err() {
                            tracing::warn!(reference = %r, "skipping bad reference");
                        } else if !state.images.contains_key(&id) {
                            tracing::warn!(reference = %r, image = %id, "skipping dangling tag");
                        } else {
                            state.refs.insert(r, id);
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "ignoring corrupt repositories.json"),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err("read", &rp)(e)),
        }
        Ok(state)
    }

    fn load_one(&self, id: &Digest, content: &ContentStore) -> Result<Image> {
        let p = self.meta_path(id);
        let data = std::fs::read(&p).map_err(io_err("read", &p))?;
        let meta: Meta = serde_json::from_slice(&data).map_err(|e| ImagesError::InvalidConfig {
            id: id.to_string(),
            reason: format!("record: {e}"),
        })?;
        let cfg = content.read_blob(id, MAX_CONFIG)?;
        let config: ImageConfig =
            serde_json::from_slice(&cfg).map_err(|e| ImagesError::InvalidConfig {
                id: id.to_string(),
                reason: e.to_string(),
            })?;
        Ok(Image::new(id.clone(), config, meta))
    }

    pub(crate) fn write_meta(&self, id: &Digest, meta: &Meta) -> Result<()> {
        let data = serde_json::to_vec(meta).map_err(|e| ImagesError::InvalidConfig {
            id: id.to_string(),
            reason: e.to_string(),
        })?;
        write_atomic(&self.meta_path(id), &data)
    }

    pub(crate) fn remove_meta(&self, id: &Digest) -> Result<()> {
        let p = self.meta_path(id);
        match std::fs::remove_file(&p) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err("remove", &p)(e)),
        }
    }

    pub(crate) fn write_refs(&self, refs: &BTreeMap<String, Digest>) -> Result<()> {
        let data = serde_json::to_vec_pretty(refs).map_err(|e| ImagesError::InvalidConfig {
            id: "repositories".into(),
            reason: e.to_string(),
        })?;
        write_atomic(&self.repositories_path(), &data)
    }
}

impl State {
    /// References (parsed) pointing at `id`.
    pub(crate) fn refs_of(&self, id: &Digest) -> Vec<Reference> {
        self.refs
            .iter()
            .filter(|(_, v)| *v == id)
            .filter_map(|(k, _)| Reference::parse_normalized(k).ok())
            .collect()
    }

    pub(crate) fn record(&self, img: &Image) -> ImageRecord {
        let refs = self.refs_of(&img.id);
        let mut repo_tags = Vec::new();
        let mut repo_digests = Vec::new();
        for r in refs {
            if r.digest().is_some() {
                repo_digests.push(r);
            } else {
                repo_tags.push(r);
            }
        }
        for d in &img.meta.repo_digests {
            if let Ok(r) = Reference::parse_normalized(d)
                && !repo_digests.contains(&r)
            {
                repo_digests.push(r);
            }
        }
        ImageRecord {
            id: img.id.clone(),
            config: img.config.clone(),
            repo_tags,
            repo_digests,
            parent: img.meta.parent.clone(),
            size: self.image_size(img),
            created: img.created,
            last_tag_time: img.meta.last_tag_time,
            chain_ids: img.chain_ids.clone(),
        }
    }

    pub(crate) fn image_size(&self, img: &Image) -> u64 {
        img.chain_ids
            .iter()
            .map(|c| self.layer_sizes.get(c).copied().unwrap_or(0))
            .sum()
    }

    /// Number of images (other than `except`) whose chains include `chain`.
    pub(crate) fn chain_users(&self, chain: &Digest, except: Option<&Digest>) -> usize {
        self.images
            .values()
            .filter(|i| Some(&i.id) != except && i.chain_ids.contains(chain))
            .count()
    }

    /// Whether a layer blob (by diff ID) is used by an image other than `except`.
    pub(crate) fn diff_used(&self, diff: &Digest, except: Option<&Digest>) -> bool {
        self.images
            .values()
            .any(|i| Some(&i.id) != except && i.config.rootfs.diff_ids.contains(diff))
    }

    /// Resolves a name to an image ID (see [`crate::ImageService::get`]).
    pub(crate) fn resolve(&self, name: &str) -> Result<Digest> {
        let not_found = || ImagesError::NotFound(name.to_string());
        // A reference first (but a bare 64-hex string is an ID).
        if let Ok(r) = Reference::parse_normalized(name) {
            let r = r.with_default_tag();
            if let Some(id) = self.refs.get(&r.to_string()) {
                return Ok(id.clone());
            }
            if let Some(d) = r.digest() {
                // name@digest recorded only in a record's repo digests
                let s = r.to_string();
                let tagless = format!("{}@{d}", r.name());
                for img in self.images.values() {
                    if img
                        .meta
                        .repo_digests
                        .iter()
                        .any(|x| *x == s || *x == tagless)
                    {
                        return Ok(img.id.clone());
                    }
                }
            }
        }
        // A full ID.
        let hex = name.strip_prefix("sha256:").unwrap_or(name);
        if let Ok(d) = Digest::from_hex(hex) {
            return if self.images.contains_key(&d) {
                Ok(d)
            } else {
                Err(not_found())
            };
        }
        // A unique prefix.
        if !hex.is_empty()
            && hex.len() < 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            let mut found = self.images.keys().filter(|k| k.hex().starts_with(hex));
            if let (Some(one), None) = (found.next(), found.next()) {
                return Ok(one.clone());
            }
        }
        match Reference::parse_normalized(name) {
            Ok(r) => Err(ImagesError::NotFound(
                r.with_default_tag().familiar_string(),
            )),
            Err(_) => Err(not_found()),
        }
    }

    /// Whether `name` as given names the image by (a prefix of) its ID rather than a reference.
    pub(crate) fn is_id_name(&self, name: &str, id: &Digest) -> bool {
        let hex = name.strip_prefix("sha256:").unwrap_or(name);
        if !id.hex().starts_with(hex) || hex.is_empty() {
            return false;
        }
        // A short hex string that is also a tag name resolves as a reference first.
        match Reference::parse_normalized(name) {
            Ok(r) => !self.refs.contains_key(&r.with_default_tag().to_string()),
            Err(_) => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_removes_temporaries_of_atomic_writes() {
        let dir = tempfile::tempdir().unwrap();
        let images = dir.path().join("images");
        std::fs::create_dir_all(images.join("meta")).unwrap();
        let keep = images.join("meta").join(format!("{}.json", "a".repeat(64)));
        std::fs::write(&keep, b"{}").unwrap();
        std::fs::write(images.join(".repositories.json.tmp-00ff"), b"{").unwrap();
        std::fs::write(images.join("meta").join(".x.json.tmp-01"), b"{").unwrap();
        let disk = Disk::open(images.clone()).unwrap();
        write_atomic(&disk.repositories_path(), b"{}").unwrap();
        let mut left: Vec<String> = std::fs::read_dir(&images)
            .unwrap()
            .chain(std::fs::read_dir(images.join("meta")).unwrap())
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                format!("{}.json", "a".repeat(64)),
                "meta".into(),
                "repositories.json".into()
            ]
        );
    }

    fn img(hex_char: &str, prefix: &str) -> Image {
        let hex = format!("{prefix}{}", hex_char.repeat(64 - prefix.len()));
        let id = Digest::from_hex(&hex).unwrap();
        Image::new(id, ImageConfig::default(), Meta::default())
    }

    fn state() -> (State, Digest, Digest, Digest) {
        let mut st = State::default();
        let a = img("a", "abc1");
        let b = img("b", "abc2");
        let c = img("c", "");
        let (ida, idb, idc) = (a.id.clone(), b.id.clone(), c.id.clone());
        for i in [a, b, c] {
            st.images.insert(i.id.clone(), i);
        }
        st.refs
            .insert("docker.io/library/busybox:latest".into(), ida.clone());
        st.refs.insert("docker.io/myrepo/bb:v1".into(), ida.clone());
        st.refs.insert("localhost:5000/x:1".into(), idb.clone());
        // a tag that looks like an ID prefix
        st.refs
            .insert("docker.io/library/cccc:latest".into(), idb.clone());
        (st, ida, idb, idc)
    }

    #[test]
    fn resolves_names_ids_and_prefixes() {
        let (st, a, b, c) = state();
        assert_eq!(st.resolve("busybox").unwrap(), a);
        assert_eq!(st.resolve("busybox:latest").unwrap(), a);
        assert_eq!(st.resolve("docker.io/library/busybox").unwrap(), a);
        assert_eq!(st.resolve("myrepo/bb:v1").unwrap(), a);
        assert_eq!(st.resolve("localhost:5000/x:1").unwrap(), b);
        assert_eq!(st.resolve(&a.to_string()).unwrap(), a);
        assert_eq!(st.resolve(a.hex()).unwrap(), a);
        assert_eq!(st.resolve("abc1").unwrap(), a);
        assert_eq!(st.resolve(&c.hex()[..12]).unwrap(), c);
        // a tag wins over an ID prefix
        assert_eq!(st.resolve("cccc").unwrap(), b);
        assert!(!st.is_id_name("cccc", &c));
        assert!(st.is_id_name("ccccc", &c));
        assert!(st.is_id_name(&a.to_string(), &a));
        assert!(!st.is_id_name("busybox", &a));
        // ambiguous prefix and unknown names
        assert_eq!(
            st.resolve("abc").unwrap_err().to_string(),
            "No such image: abc:latest"
        );
        assert_eq!(
            st.resolve("nope").unwrap_err().to_string(),
            "No such image: nope:latest"
        );
        assert_eq!(
            st.resolve("myrepo/bb").unwrap_err().to_string(),
            "No such image: myrepo/bb:latest"
        );
        assert_eq!(
            st.resolve("UPPER").unwrap_err().to_string(),
            "No such image: UPPER"
        );
        let missing = format!("sha256:{}", "d".repeat(64));
        assert_eq!(
            st.resolve(&missing).unwrap_err().to_string(),
            format!("No such image: {missing}")
        );
    }

    #[test]
    fn records_and_sharing() {
        let (mut st, a, _, _) = state();
        let rec = st.record(&st.images[&a]);
        let mut tags: Vec<_> = rec.repo_tags.iter().map(|r| r.familiar_string()).collect();
        tags.sort();
        assert_eq!(tags, vec!["busybox:latest", "myrepo/bb:v1"]);
        assert!(rec.repo_digests.is_empty());
        let d = Digest::of(b"layer");
        st.images.get_mut(&a).unwrap().chain_ids = vec![d.clone()];
        st.layer_sizes.insert(d.clone(), 42);
        assert_eq!(st.image_size(&st.images[&a]), 42);
        assert_eq!(st.chain_users(&d, None), 1);
        assert_eq!(st.chain_users(&d, Some(&a)), 0);
        assert_eq!(chain_ids(std::slice::from_ref(&d)), vec![d]);
    }

    #[test]
    fn atomic_write_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.json");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
