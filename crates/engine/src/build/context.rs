//! A build's context: the tar the client streams (plain, gzip or zstd) unpacked into a private
//! directory under `<data-root>/builder/`, removed when the build ends whatever happened. The
//! extraction resolves every name inside that directory (`storage::tree_tar::extract`): a
//! context's `../` names or symlinks pointing out can never write or read outside it. Files the
//! context's `.dockerignore` excludes are removed after extraction (the docker CLI leaves them
//! out already; other clients may not). The Dockerfile is read through the same root, so a
//! Dockerfile that is a symlink out of the context reads the context's own file or fails.
//!
//! Knows nothing of Dockerfile syntax or of how steps run.

use std::io::Read;
use std::path::{Path, PathBuf};

use linux::fs::Root;

use crate::{EngineError, Result};

/// The largest Dockerfile read.
const MAX_DOCKERFILE: u64 = 10 << 20;

/// Prefixes of the temporary directories builds make under `<data-root>/builder/`: contexts,
/// `ADD` downloads and `COPY` staging.
const TEMPORARY_PREFIXES: [&str; 3] = ["ctx-", "dl-", "copy-"];

/// Removes the temporary directories of builds a crashed berthd left under `builder` (no build
/// runs yet when this is called at start); the build cache stays.
pub(crate) fn remove_stale(builder: &Path) {
    let Ok(entries) = std::fs::read_dir(builder) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if !TEMPORARY_PREFIXES.iter().any(|p| name.starts_with(p))
            || !entry.file_type().is_ok_and(|t| t.is_dir())
        {
            continue;
        }
        let path = entry.path();
        match std::fs::remove_dir_all(&path) {
            Ok(()) => tracing::info!(path = %path.display(), "removed a stale build directory"),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot remove a stale build directory")
            }
        }
    }
}

/// An unpacked context; its directory is removed on drop.
#[derive(Debug)]
pub(crate) struct Context {
    dir: PathBuf,
}

fn io(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> EngineError {
    let path = path.to_path_buf();
    move |source| EngineError::Io { op, path, source }
}

/// Ends a stream on a tar block boundary followed by the two zero blocks of an end-of-archive:
/// the docker CLI's context tar for a Dockerfile outside the context stops right after the
/// last entry's data, which Go's reader accepts and the tar crate would not. A well-formed
/// archive only gains zeros after its end, which readers ignore.
struct ZeroPadded<R> {
    inner: R,
    count: u64,
    padding: Option<u64>,
}

impl<R: Read> ZeroPadded<R> {
    fn new(inner: R) -> Self {
        Self {
            inner,
            count: 0,
            padding: None,
        }
    }
}

impl<R: Read> Read for ZeroPadded<R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.padding.is_none() {
            let n = self.inner.read(out)?;
            if n > 0 || out.is_empty() {
                self.count += n as u64;
                return Ok(n);
            }
            // Only a stream that had something gets padded: an empty body stays empty.
            self.padding = Some(if self.count == 0 {
                0
            } else {
                (512 - self.count % 512) % 512 + 1024
            });
        }
        let left = self.padding.unwrap_or(0);
        let n = out.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        out[..n].fill(0);
        self.padding = Some(left - n as u64);
        Ok(n)
    }
}

/// 32 random hex characters.
pub(crate) fn random_hex() -> String {
    use rand::RngCore;
    let mut b = [0u8; 16];
    rand::rng().fill_bytes(&mut b);
    hex::encode(b)
}

impl Context {
    /// Unpacks `body` into a new directory under `parent`.
    ///
    /// The body is always read to its end, whatever happened: a client still sending when the
    /// build's answer comes (the docker CLI writes its tar's end blocks after the last entry
    /// the extraction needs) would otherwise see its connection reset instead of the answer.
    pub(crate) fn receive(parent: &Path, mut body: impl Read + Send) -> Result<Self> {
        let received = Self::unpack(parent, &mut body);
        // Whatever is left (end blocks, a gzip trailer, the rest of a refused archive).
        crate::images_ops::drain_upload(&mut body);
        received
    }

    fn unpack(parent: &Path, body: impl Read + Send) -> Result<Self> {
        std::fs::create_dir_all(parent).map_err(io("create directory", parent))?;
        let dir = parent.join(format!("ctx-{}", random_hex()));
        std::fs::create_dir(&dir).map_err(io("create directory", &dir))?;
        let ctx = Self { dir };
        let root = Root::open(&ctx.dir)?;
        let (_, plain) = storage::layer::decompress(body)
            .map_err(|e| EngineError::InvalidRequest(format!("reading the build context: {e}")))?;
        let mut plain = ZeroPadded::new(plain);
        storage::tree_tar::extract(
            &root,
            Path::new(""),
            &mut plain,
            &storage::tree_tar::ExtractOptions::default(),
        )
        .map_err(|e| EngineError::InvalidRequest(format!("reading the build context: {e}")))?;
        // The decompressed rest, so a compressed body's own end is read too.
        crate::images_ops::drain_upload(&mut plain);
        Ok(ctx)
    }

    /// The directory holding the context.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// The context directory as a root for resolving paths inside it.
    pub(crate) fn root(&self) -> Result<Root> {
        Ok(Root::open(&self.dir)?)
    }

    /// Reads a file of the context (the Dockerfile, `.dockerignore`); `None` when missing.
    pub(crate) fn read(&self, name: &str) -> Result<Option<Vec<u8>>> {
        let rel = Path::new(name.trim_start_matches('/'));
        let root = self.root()?;
        let mut f = match root.open_file(rel) {
            Ok(f) => f,
            Err(e) if e.errno() == Some(linux::Errno::ENOENT) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let mut out = Vec::new();
        (&mut f)
            .take(MAX_DOCKERFILE + 1)
            .read_to_end(&mut out)
            .map_err(io("read", &self.dir.join(rel)))?;
        if out.len() as u64 > MAX_DOCKERFILE {
            return Err(EngineError::InvalidRequest(format!(
                "{name} is larger than {MAX_DOCKERFILE} bytes"
            )));
        }
        Ok(Some(out))
    }

    /// Removes a path of the context (an ignored file), never following symlinks out.
    pub(crate) fn remove(&self, rel: &Path) -> Result<()> {
        Ok(self.root()?.remove_all(rel)?)
    }
}

impl Drop for Context {
    fn drop(&mut self) {
        let parent = self.dir.parent().map(Path::to_path_buf);
        let name = self.dir.file_name().map(std::ffi::OsStr::to_os_string);
        if let (Some(parent), Some(name)) = (parent, name)
            && let Err(e) = Root::open(&parent).and_then(|r| r.remove_all(Path::new(&name)))
        {
            tracing::warn!(dir = %self.dir.display(), "removing build context: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_build_directories_go_and_the_cache_stays() {
        let dir = tempfile::tempdir().unwrap();
        let builder = dir.path().join("builder");
        for d in ["ctx-0a1b", "dl-x", "copy-y", "cache", "ctx-1/inner"] {
            std::fs::create_dir_all(builder.join(d)).unwrap();
        }
        std::fs::write(builder.join("ctx-file"), b"not a directory").unwrap();
        remove_stale(&builder);
        let mut left: Vec<String> = std::fs::read_dir(&builder)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["cache", "ctx-file"]);
        remove_stale(&dir.path().join("missing"));
    }

    #[test]
    fn padding_ends_a_truncated_tar() {
        let mut t = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(34);
        h.set_mode(0o644);
        h.set_cksum();
        t.append_data(&mut h, ".dockerfile.abc", &[b'x'; 34][..])
            .unwrap();
        let mut full = t.into_inner().unwrap();
        // As the docker CLI sends it: no padding after the data, no end blocks.
        full.truncate(512 + 34);
        let mut out = Vec::new();
        ZeroPadded::new(full.as_slice())
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out.len(), 1024 + 1024);
        let mut a = tar::Archive::new(out.as_slice());
        let names: Vec<_> = a
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().to_string_lossy().to_string())
            .collect();
        assert_eq!(names, vec![".dockerfile.abc"]);
        let mut empty = Vec::new();
        ZeroPadded::new(&[][..]).read_to_end(&mut empty).unwrap();
        assert!(empty.is_empty());
    }
}
