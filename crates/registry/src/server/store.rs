//! The registry's filesystem layout under its root directory:
//!
//! ```text
//! blobs/sha256/<hex>                      every blob and manifest (storage::ContentStore:
//! ingest/<random>                         verified before it is renamed in; uploads in flight)
//! repositories/<name>/_layers/<hex>       empty file: the repository has this blob
//! repositories/<name>/_manifests/<hex>    the manifest's media type: it is in the repository
//! repositories/<name>/_tags/<tag>         the tag's manifest digest (written atomically)
//! repositories/<name>/_referrers/<subject-hex>/<hex>   empty file: manifest <hex> names
//!                                         <subject> as its `subject` (OCI 1.1 referrers)
//! ```
//!
//! Names and tags reach this module only as validated [`Name`]s and tags (the grammar allows
//! no `.`/`..` component and no component starting with `_`, so repository directories can
//! never meet the `_layers`/`_manifests`/`_tags` directories or leave `repositories/`).
//! All functions are blocking: callers run them off the async workers when they write.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use storage::{ContentStore, Digest};

use super::names::Name;
use crate::{RegistryError, Result};

/// The largest manifest accepted or served.
pub(crate) const MAX_MANIFEST: u64 = 4 << 20;

/// Repository metadata plus the content store holding the bytes.
#[derive(Debug, Clone)]
pub(crate) struct Store {
    repos: PathBuf,
    content: ContentStore,
}

fn io(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> RegistryError {
    let path = path.display().to_string();
    move |e| RegistryError::Other(format!("{op} {path}: {e}"))
}

fn exists(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok()
}

/// Writes `data` to `path` through a temporary file in the same directory and a rename.
fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| RegistryError::Other(format!("no parent: {}", path.display())))?;
    std::fs::create_dir_all(dir).map_err(io("create directory", dir))?;
    // Leading '.': never a valid tag or hex digest, so never mistaken for an entry.
    let tmp = dir.join(format!(".tmp-{:016x}", rand::random::<u64>()));
    let res = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        File::open(dir)?.sync_all()
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res.map_err(io("write", path))
}

fn remove(path: &Path) -> Result<bool> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
        Err(e) => Err(io("remove", path)(e)),
    }
}

/// Sorted entry names of a directory (empty if it does not exist), skipping dotfiles.
fn entries(dir: &Path) -> Result<Vec<String>> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io("read dir", dir)(e)),
    };
    let mut out = Vec::new();
    for entry in rd {
        let entry = entry.map_err(io("read dir", dir))?;
        if let Some(name) = entry.file_name().to_str()
            && !name.starts_with('.')
        {
            out.push(name.to_string());
        }
    }
    out.sort();
    Ok(out)
}

impl Store {
    /// Opens (creating) the layout under `root`.
    pub(crate) fn open(root: &Path) -> Result<Self> {
        let content = ContentStore::open(root)?;
        let repos = root.join("repositories");
        std::fs::create_dir_all(&repos).map_err(io("create directory", &repos))?;
        Ok(Self { repos, content })
    }

    pub(crate) fn content(&self) -> &ContentStore {
        &self.content
    }

    fn repo(&self, name: &Name) -> PathBuf {
        self.repos.join(name.as_str())
    }

    fn layer_link(&self, name: &Name, d: &Digest) -> PathBuf {
        self.repo(name).join("_layers").join(d.hex())
    }

    fn manifest_link(&self, name: &Name, d: &Digest) -> PathBuf {
        self.repo(name).join("_manifests").join(d.hex())
    }

    fn tag_path(&self, name: &Name, tag: &str) -> PathBuf {
        self.repo(name).join("_tags").join(tag)
    }

    /// Whether the repository exists (has ever had a blob or manifest pushed to it).
    pub(crate) fn repo_exists(&self, name: &Name) -> bool {
        let repo = self.repo(name);
        exists(&repo.join("_layers")) || exists(&repo.join("_manifests"))
    }

    /// Records that the repository has this (committed) blob.
    pub(crate) fn link_blob(&self, name: &Name, d: &Digest) -> Result<()> {
        let link = self.layer_link(name, d);
        if exists(&link) {
            return Ok(());
        }
        write_atomic(&link, b"")
    }

    /// Whether the blob may be served from this repository: linked here and present.
    pub(crate) fn has_blob(&self, name: &Name, d: &Digest) -> bool {
        (exists(&self.layer_link(name, d)) || exists(&self.manifest_link(name, d)))
            && self.content.exists(d)
    }

    /// Removes the blob from the repository (the bytes stay for other repositories).
    pub(crate) fn unlink_blob(&self, name: &Name, d: &Digest) -> Result<bool> {
        remove(&self.layer_link(name, d))
    }

    /// The media type of a manifest in this repository, if it is there.
    pub(crate) fn manifest_type(&self, name: &Name, d: &Digest) -> Option<String> {
        if !self.content.exists(d) {
            return None;
        }
        std::fs::read_to_string(self.manifest_link(name, d)).ok()
    }

    /// Stores a manifest (verifying `digest`), links it into the repository, records it as a
    /// referrer of its `subject`, tags it.
    pub(crate) fn put_manifest(
        &self,
        name: &Name,
        digest: &Digest,
        media_type: &str,
        body: &[u8],
        tag: Option<&str>,
        subject: Option<&Digest>,
    ) -> Result<()> {
        self.content.write_blob(body, Some(digest))?;
        write_atomic(&self.manifest_link(name, digest), media_type.as_bytes())?;
        if let Some(subject) = subject {
            let link = self.referrers_dir(name, subject).join(digest.hex());
            if !exists(&link) {
                write_atomic(&link, b"")?;
            }
        }
        if let Some(tag) = tag {
            write_atomic(&self.tag_path(name, tag), digest.to_string().as_bytes())?;
        }
        Ok(())
    }

    /// The manifest a tag points to.
    pub(crate) fn resolve_tag(&self, name: &Name, tag: &str) -> Option<Digest> {
        let text = std::fs::read_to_string(self.tag_path(name, tag)).ok()?;
        Digest::parse(text.trim()).ok()
    }

    /// Reads a manifest's bytes.
    pub(crate) fn read_manifest(&self, d: &Digest) -> Result<Vec<u8>> {
        Ok(self.content.read_blob(d, MAX_MANIFEST)?)
    }

    /// Removes a manifest from the repository, and every tag pointing at it.
    pub(crate) fn delete_manifest(&self, name: &Name, d: &Digest) -> Result<bool> {
        if !remove(&self.manifest_link(name, d))? {
            return Ok(false);
        }
        for tag in self.tags(name)? {
            if self.resolve_tag(name, &tag).as_ref() == Some(d) {
                remove(&self.tag_path(name, &tag))?;
            }
        }
        Ok(true)
    }

    /// Removes a tag (the manifest stays, reachable by digest).
    pub(crate) fn delete_tag(&self, name: &Name, tag: &str) -> Result<bool> {
        remove(&self.tag_path(name, tag))
    }

    fn referrers_dir(&self, name: &Name, subject: &Digest) -> PathBuf {
        self.repo(name).join("_referrers").join(subject.hex())
    }

    /// Manifests of this repository whose `subject` is `subject`, sorted by digest (links to
    /// manifests deleted since are skipped).
    pub(crate) fn referrers(&self, name: &Name, subject: &Digest) -> Result<Vec<Digest>> {
        Ok(entries(&self.referrers_dir(name, subject))?
            .iter()
            .filter_map(|hex| Digest::from_hex(hex).ok())
            .filter(|d| exists(&self.manifest_link(name, d)))
            .collect())
    }

    /// The repository's tags, sorted.
    pub(crate) fn tags(&self, name: &Name) -> Result<Vec<String>> {
        entries(&self.repo(name).join("_tags"))
    }

    /// Every repository name, sorted.
    pub(crate) fn catalog(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        let mut stack = vec![String::new()];
        while let Some(prefix) = stack.pop() {
            let dir = self.repos.join(&prefix);
            let rd = match std::fs::read_dir(&dir) {
                Ok(rd) => rd,
                Err(e) if e.kind() == ErrorKind::NotFound => continue,
                Err(e) => return Err(io("read dir", &dir)(e)),
            };
            let mut is_repo = false;
            for entry in rd {
                let entry = entry.map_err(io("read dir", &dir))?;
                let Some(child) = entry.file_name().to_str().map(str::to_string) else {
                    continue;
                };
                // Never follow symlinks: only real directories are walked.
                if !entry.file_type().is_ok_and(|t| t.is_dir()) {
                    continue;
                }
                if child == "_layers" || child == "_manifests" {
                    is_repo = true;
                } else if !child.starts_with(['_', '.']) {
                    stack.push(if prefix.is_empty() {
                        child
                    } else {
                        format!("{prefix}/{child}")
                    });
                }
            }
            if is_repo && Name::parse(&prefix).is_some() {
                out.push(prefix);
            }
        }
        out.sort();
        Ok(out)
    }
}
