//! The few kernel settings networking needs, written through `/proc/sys` of the calling
//! thread's network namespace: `net.ipv4.ip_forward`, a bridge's `route_localnet`, and
//! `br_netfilter` for `icc=false`.
//!
//! A value already in place is not written again. This module knows nothing of bridges or
//! rules beyond the setting names.

use std::path::{Path, PathBuf};

use crate::{NetworkError, Result};

/// Sets `/proc/sys/<key>` (key in path form, `net/ipv4/ip_forward`) to `value` unless it
/// already holds it.
pub(crate) fn set(key: &str, value: &str) -> Result<()> {
    let path = Path::new("/proc/sys").join(key);
    let io = |op: &'static str, path: &PathBuf| {
        let path = path.clone();
        move |source| NetworkError::Io { op, path, source }
    };
    let current = std::fs::read_to_string(&path).map_err(io("read sysctl", &path))?;
    if current.trim() == value {
        return Ok(());
    }
    std::fs::write(&path, value).map_err(io("write sysctl", &path))
}

/// `net.ipv4.ip_forward = 1` (Docker sets it too): containers' traffic is routed by the host.
pub(crate) fn enable_ip_forward() -> Result<()> {
    set("net/ipv4/ip_forward", "1")
}

/// `net.ipv4.conf.<ifname>.route_localnet = 1`: connections to a port published on 127.0.0.1
/// are DNAT'd to a container and leave through `ifname` with a 127.0.0.1 source until the
/// masquerade rule rewrites it; without this the kernel drops them as martians.
pub(crate) fn enable_route_localnet(ifname: &str) -> Result<()> {
    set(&format!("net/ipv4/conf/{ifname}/route_localnet"), "1")
}

/// Bridged traffic through the netfilter hooks (`br_netfilter`, `bridge-nf-call-iptables=1`),
/// which `icc=false` needs to see container-to-container frames; Docker does the same. The
/// module is loaded with the host's `modprobe` when its settings are missing.
pub(crate) fn enable_bridge_netfilter() -> Result<()> {
    let key = "net/bridge/bridge-nf-call-iptables";
    if !Path::new("/proc/sys").join(key).exists() {
        let status = std::process::Command::new("modprobe")
            .arg("br_netfilter")
            .status();
        if !matches!(status, Ok(s) if s.success()) {
            return Err(NetworkError::Firewall(
                "icc=false needs the br_netfilter kernel module, which could not be loaded"
                    .to_string(),
            ));
        }
    }
    set(key, "1")
}
