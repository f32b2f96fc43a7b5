//! Containers as processes: container config → OCI runtime spec → a per-container shim that
//! runs youki's `libcontainer`.
//!
//! berthd is never the parent of a container. For each start it spawns a small single-threaded
//! shim (`berthd shim <state-dir>/shim.json`, a re-exec of the daemon binary) that detaches
//! from berthd, creates and starts the container with libcontainer, owns its stdio (pipes, or
//! the pty master with `-t`), writes the json-file log, serves attach/wait/kill/resize on
//! `<state-dir>/shim.sock`, reaps the init process and records its exit status atomically in
//! `<state-dir>/exit.json`. So berthd can stop, crash or upgrade while containers keep running.
//!
//! This crate receives the rootfs as an already-mounted path and namespaces/mounts as data: it
//! knows no images, no networks, no HTTP. [`spec`] builds the spec (Docker's default profile),
//! [`shim`] is the shim process, [`client`] is berthd's side of the shim protocol, [`logs`] the
//! json-file log format, [`exec`] runs further processes in a running container under their own
//! shim.

pub mod cgroups;
pub mod client;
mod error;
pub mod exec;
pub mod seccomp;
pub mod seccomp_cache;
pub mod shim;
pub mod spec;

pub use ::shim::logs;
pub use client::{AttachOptions, ExitStatus, Shim, ShimConfig, Started};
pub use error::{Result, RuntimeError};
pub use exec::ExecSpec;
pub use libcontainer::oci_spec;
pub use spec::{ContainerSpec, MountSpec, NetworkNamespace, Resources, Ulimit, UserSpec};
