//! The build cache: step cache key → the image the builder made for it, one small file per key
//! under `<data-root>/builder/cache/` (written atomically). Only the builder writes entries, so
//! a hit is always a chain the builder recorded itself: an image that merely looks like a build
//! step (loaded, pulled, committed) is never taken. An entry whose image is gone is a miss and
//! is removed.
//!
//! Knows nothing of how keys are computed (`builder::cache`) or of Dockerfiles.

use std::path::PathBuf;

use images::{Digest, ImageService};

use crate::{EngineError, Result};

/// The cache's directory.
#[derive(Debug, Clone)]
pub(crate) struct BuildCache {
    dir: PathBuf,
}

impl BuildCache {
    pub(crate) fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    fn path(&self, key: &str) -> Option<PathBuf> {
        let hex = key.strip_prefix("sha256:")?;
        (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit())).then(|| self.dir.join(hex))
    }

    /// The image recorded for `key`, if it still exists.
    pub(crate) fn lookup(&self, images: &ImageService, key: &str) -> Option<Digest> {
        let path = self.path(key)?;
        let text = std::fs::read_to_string(&path).ok()?;
        let id = Digest::parse(text.trim()).ok();
        match id {
            Some(id) if images.get(&id.to_string()).is_ok() => Some(id),
            _ => {
                let _ = std::fs::remove_file(&path);
                None
            }
        }
    }

    /// Records `image` for `key`.
    pub(crate) fn record(&self, key: &str, image: &Digest) -> Result<()> {
        let Some(path) = self.path(key) else {
            return Err(EngineError::InvalidRequest(format!(
                "invalid build cache key {key}"
            )));
        };
        std::fs::create_dir_all(&self.dir).map_err(|source| EngineError::Io {
            op: "create directory",
            path: self.dir.clone(),
            source,
        })?;
        linux::fs::write_atomic(&path, image.to_string().as_bytes(), 0o600, false)?;
        Ok(())
    }

    /// Removes every entry (`docker builder prune`); returns the keys removed.
    pub(crate) fn prune(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(source) => {
                return Err(EngineError::Io {
                    op: "read dir",
                    path: self.dir.clone(),
                    source,
                });
            }
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            if std::fs::remove_file(entry.path()).is_ok() {
                out.push(format!("sha256:{name}"));
            }
        }
        Ok(out)
    }
}
