//! Container networking: network namespaces, bridges and veth pairs (rtnetlink), address
//! management, NAT and published ports (nftables, in berth's own table), host-port reservations
//! and the embedded DNS server for user networks.
//!
//! This crate works on netns paths, interface names and addresses. It knows nothing of
//! containers' lifecycle, images, HTTP or the CLI: the engine decides what to set up and when.

pub mod dns;
mod error;
pub mod firewall;
mod foreign_forward;
pub mod ipam;
pub mod link;
pub mod netns;
pub mod ports;
mod sysctl;

pub use error::{NetworkError, Result};
