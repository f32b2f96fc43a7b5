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

/// An unpacked context; its directory is removed on drop.
#[derive(Debug)]
pub(crate) struct Context {
    dir: PathBuf,
}

fn io(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> EngineError {
    let path = path.to_path_buf();
    move |source| EngineError::Io { op, path, source }
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
    pub(crate) fn receive(parent: &Path, body: impl Read + Send) -> Result<Self> {
        std::fs::create_dir_all(parent).map_err(io("create directory", parent))?;
        let dir = parent.join(format!("ctx-{}", random_hex()));
        std::fs::create_dir(&dir).map_err(io("create directory", &dir))?;
        let ctx = Self { dir };
        let root = Root::open(&ctx.dir)?;
        let (_, plain) = storage::layer::decompress(body)
            .map_err(|e| EngineError::InvalidRequest(format!("reading the build context: {e}")))?;
        storage::tree_tar::extract(
            &root,
            Path::new(""),
            plain,
            &storage::tree_tar::ExtractOptions::default(),
        )
        .map_err(|e| EngineError::InvalidRequest(format!("reading the build context: {e}")))?;
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
