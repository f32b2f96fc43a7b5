//! The embedded DNS server for user-defined networks (Docker's `127.0.0.11`): one server per
//! container, on a UDP socket and a TCP listener the engine opened inside the container's
//! network namespace ([`bind_in_netns`]), answering from a [`Table`] shared by all servers
//! and scoped to the networks in the container's [`Scope`]; everything else is forwarded to
//! the host's nameservers from the daemon's own namespace (so loopback upstreams such as
//! systemd-resolved's 127.0.0.53 work).
//!
//! It knows nothing of containers' lifecycle, IPAM or HTTP: the engine fills the table, keeps
//! scopes current on connect/disconnect and drops a container's [`Server`] when it stops.

mod answer;
mod server;
mod table;

use std::net::{IpAddr, SocketAddr, TcpListener, UdpSocket};
use std::path::Path;
use std::sync::{Arc, RwLock};

pub use server::{FORWARD_TIMEOUT, MAX_UPSTREAMS, Server, serve};
pub use table::Table;

use crate::{NetworkError, Result};

/// The address Docker's embedded DNS server listens on inside a container.
pub const NAMESERVER: std::net::Ipv4Addr = std::net::Ipv4Addr::new(127, 0, 0, 11);

/// The asking container's view: the networks it is on (changed by connect/disconnect), in the
/// order names are looked up.
#[derive(Clone, Debug, Default)]
pub struct Scope {
    networks: Arc<RwLock<Vec<String>>>,
}

impl Scope {
    /// A scope over these networks.
    pub fn new(networks: Vec<String>) -> Self {
        Self {
            networks: Arc::new(RwLock::new(networks)),
        }
    }

    /// Replaces the networks (every server holding a clone sees the change).
    pub fn set(&self, networks: Vec<String>) {
        *self.networks.write().unwrap_or_else(|e| e.into_inner()) = networks;
    }

    /// The current networks.
    pub fn get(&self) -> Vec<String> {
        self.networks
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// A UDP socket and a TCP listener bound to `addr` (normally `127.0.0.11:53`, see
/// [`NAMESERVER`]) inside the network namespace at `netns`, for [`serve`]. The namespace's `lo`
/// must be up. The sockets keep that namespace; the caller's threads never enter it.
pub fn bind_in_netns(netns: &Path, addr: SocketAddr) -> Result<(UdpSocket, TcpListener)> {
    let bound = linux::netns::run_in(netns, move || -> std::io::Result<_> {
        Ok((UdpSocket::bind(addr)?, TcpListener::bind(addr)?))
    })?;
    bound.map_err(|source| NetworkError::Dns {
        op: "bind in netns",
        source,
    })
}

/// Nameservers from a resolv.conf text (port 53), for upstreams, in file order. Addresses
/// with an IPv6 zone (`fe80::1%eth0`) and unparsable lines are skipped.
pub fn upstreams_from_resolv_conf(text: &str) -> Vec<SocketAddr> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        if words.next() != Some("nameserver") {
            continue;
        }
        let Some(addr) = words.next() else { continue };
        if let Ok(ip) = addr.parse::<IpAddr>() {
            let sa = SocketAddr::new(ip, 53);
            if !out.contains(&sa) {
                out.push(sa);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf_nameservers() {
        let text = "# generated\nnameserver 127.0.0.53\nsearch example.com\n\
                    nameserver  8.8.8.8 # trailing\n;nameserver 1.1.1.1\n#nameserver 9.9.9.9\n\
                    nameserver 2001:4860:4860::8888\nnameserver fe80::1%eth0\nnameserver\n\
                    nameserver bogus\nnameserver 8.8.8.8\noptions ndots:0\n";
        assert_eq!(
            upstreams_from_resolv_conf(text),
            vec![
                "127.0.0.53:53".parse::<SocketAddr>().unwrap(),
                "8.8.8.8:53".parse().unwrap(),
                "[2001:4860:4860::8888]:53".parse().unwrap(),
            ]
        );
        assert!(upstreams_from_resolv_conf("").is_empty());
    }

    #[test]
    fn scope_is_shared() {
        let s = Scope::new(vec!["a".into()]);
        let c = s.clone();
        c.set(vec!["b".into(), "c".into()]);
        assert_eq!(s.get(), vec!["b".to_string(), "c".to_string()]);
    }
}
