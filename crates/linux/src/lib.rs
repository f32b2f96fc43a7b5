//! The kernel edge: the only crate allowed `unsafe` and raw syscalls.
//!
//! It owns fd-based file operations inside a root directory (`fs`), lock files (`lock`) and,
//! later, mounts, namespaces and process helpers. It knows nothing of images, containers,
//! HTTP or the CLI. Every `unsafe` block carries `// SAFETY:` and `// JUSTIFICATION:` comments.

mod error;
pub mod fs;
pub mod lock;
pub mod mount;
pub mod net;
pub mod netns;
pub mod process;

pub use error::{LinuxError, Result};
pub use nix::errno::Errno;

/// Whether we run with effective uid 0 (and so may chown, mknod devices, set trusted.* xattrs).
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}
