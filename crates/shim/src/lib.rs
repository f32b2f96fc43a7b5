//! The per-container monitor and the shim protocol.
//!
//! berthd is never the parent of a container: for each start it spawns a shim (`berthd shim`,
//! in the runtime crate) that creates the container with libcontainer and then *becomes* this
//! crate's small monitor binary, `berth-shim` (an execve: same pid, the container's init stays
//! its child, the descriptors are handed over by number). What stays resident beside every
//! running container is therefore this crate alone: no async runtime, no libcontainer, no OCI
//! types; see [`container`] for what it does around the start and after the exit.
//!
//! [`protocol`] is what berthd and a shim say to each other, [`logs`] the json-file log format,
//! [`monitor`] the poll loop shared with the exec shims.

pub mod container;
mod error;
pub mod logs;
pub mod monitor;
pub mod protocol;

pub use error::{Result, ShimError};
