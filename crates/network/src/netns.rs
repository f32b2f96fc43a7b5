//! Network namespaces for containers, kept alive by a bind mount on a file: the equivalent of
//! Docker's `SandboxKey` (`/var/run/docker/netns/<id>`). The syscalls live in
//! `linux::netns`; this module only maps errors. It knows nothing of interfaces or containers.

use std::path::Path;

use crate::Result;

/// A new network namespace kept alive by a bind mount at `path` (a file is created; the parent
/// directory must exist), with `lo` up.
pub fn create(path: &Path) -> Result<()> {
    linux::netns::create(path)?;
    Ok(())
}

/// Unmounts (`MNT_DETACH`) and unlinks the namespace file at `path`; Ok if already gone.
pub fn remove(path: &Path) -> Result<()> {
    linux::netns::remove(path)?;
    Ok(())
}
