//! The network crate's one error type.

use std::path::PathBuf;

/// Everything that can go wrong while setting up or tearing down networking.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    /// A syscall-level failure from the `linux` crate (netns creation, mounts).
    #[error(transparent)]
    Linux(#[from] linux::LinuxError),
    /// A netlink request failed.
    #[error("{op}: {message}")]
    Netlink { op: String, message: String },
    /// Applying or reading the nftables ruleset failed.
    #[error("nftables: {0}")]
    Firewall(String),
    /// A host port is taken (moby: `Bind for 0.0.0.0:8080 failed: port is already allocated`).
    #[error("Bind for {addr} failed: port is already allocated")]
    PortAllocated { addr: String },
    /// Invalid input (a subnet, an address, a range) named in the message.
    #[error("{0}")]
    Invalid(String),
    /// No free address or subnet is left.
    #[error("{0}")]
    Exhausted(String),
    /// File I/O outside the linux crate (sysctls, resolv.conf).
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// A socket operation of the embedded DNS server failed.
    #[error("dns {op}: {source}")]
    Dns {
        op: &'static str,
        source: std::io::Error,
    },
}

/// The crate's result type.
pub type Result<T, E = NetworkError> = std::result::Result<T, E>;
