//! The names the embedded DNS server knows: per network, per endpoint (a container id), the
//! names (container name, aliases, short id) and the IPv4 address. Shared by every container's
//! server and updated by the engine; lookups follow moby's `Sandbox.ResolveName` order.
//!
//! This module knows nothing of sockets or the DNS wire format.

use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// One endpoint's records on one network.
#[derive(Debug, Clone)]
struct Entry {
    /// Normalised names (lowercase, no trailing dot); the first is the primary name (PTR).
    names: Vec<String>,
    ip: Ipv4Addr,
}

type Networks = HashMap<String, BTreeMap<String, Entry>>;

/// Names known per network: shared by every container's server, updated by the engine.
///
/// `network` is the network's *name* (what `name.network` queries use); `key` is the
/// endpoint's container id. The first of an endpoint's names is its primary name, the one PTR
/// answers give (as `primary.network`), as moby answers with the container name.
#[derive(Clone, Default)]
pub struct Table {
    inner: Arc<RwLock<Networks>>,
}

impl std::fmt::Debug for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Table").finish_non_exhaustive()
    }
}

/// DNS names compare case-insensitively, with or without the trailing dot.
pub(crate) fn normalise(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

impl Table {
    fn read(&self) -> RwLockReadGuard<'_, Networks> {
        // A writer cannot leave the map half-updated (each update is one insert or remove), so
        // a poisoned lock still holds consistent data.
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Networks> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Records `names` (container name, aliases, short id; matched case-insensitively, with or
    /// without a trailing dot) → `ip` on `network` for endpoint `key` (a container id).
    /// Adding the same `key` again replaces its names and address.
    pub fn add(&self, network: &str, key: &str, names: Vec<String>, ip: Ipv4Addr) {
        let mut seen = Vec::with_capacity(names.len());
        for n in names {
            let n = normalise(&n);
            if !n.is_empty() && !seen.contains(&n) {
                seen.push(n);
            }
        }
        self.write()
            .entry(network.to_string())
            .or_default()
            .insert(key.to_string(), Entry { names: seen, ip });
    }

    /// Forgets endpoint `key` on `network`.
    pub fn remove(&self, network: &str, key: &str) {
        let mut nets = self.write();
        if let Some(eps) = nets.get_mut(network) {
            eps.remove(key);
            if eps.is_empty() {
                nets.remove(network);
            }
        }
    }

    /// Forgets every endpoint on `network`.
    pub fn remove_network(&self, network: &str) {
        self.write().remove(network);
    }

    /// A lookups in the given networks, as moby's `Sandbox.ResolveName`: the name as asked in
    /// each network in order, then for `a.b.c` the name `a.b` in network `c` and `a` in network
    /// `b.c` (if the container is on that network). The answer is every address the name has
    /// on the first network that knows it (several containers may share an alias), ordered by
    /// endpoint key; empty when no network knows it.
    pub fn lookup(&self, networks: &[String], name: &str) -> Vec<Ipv4Addr> {
        let name = normalise(name);
        if name.is_empty() {
            return Vec::new();
        }
        let nets = self.read();
        for (req, only) in candidates(&name) {
            for net in networks {
                if only.is_some_and(|o| !o.eq_ignore_ascii_case(net)) {
                    continue;
                }
                let Some(eps) = nets.get(net) else { continue };
                let mut ips: Vec<Ipv4Addr> = Vec::new();
                for e in eps.values() {
                    if e.names.iter().any(|n| n == req) && !ips.contains(&e.ip) {
                        ips.push(e.ip);
                    }
                }
                if !ips.is_empty() {
                    return ips;
                }
            }
        }
        Vec::new()
    }

    /// The PTR name for `ip` in the given networks (first network that has it): the endpoint's
    /// primary name and the network, `web.mynet`, as moby's `ResolveIP`.
    pub fn lookup_ptr(&self, networks: &[String], ip: Ipv4Addr) -> Option<String> {
        let nets = self.read();
        networks.iter().find_map(|net| {
            let eps = nets.get(net)?;
            eps.values()
                .find(|e| e.ip == ip)
                .and_then(|e| e.names.first())
                .map(|primary| format!("{primary}.{net}"))
        })
    }
}

/// `(name, network restriction)` pairs to try, in moby's order: `a.b.c` in any network, then
/// `a.b` in `c`, then `a` in `b.c`.
fn candidates(name: &str) -> Vec<(&str, Option<&str>)> {
    let mut out = vec![(name, None)];
    let mut rest = name;
    while let Some(i) = rest.rfind('.') {
        out.push((&name[..i], Some(&name[i + 1..])));
        rest = &rest[..i];
    }
    out.retain(|(n, net)| !n.is_empty() && net.is_none_or(|s| !s.is_empty()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(n: &[&str]) -> Vec<String> {
        n.iter().map(|s| s.to_string()).collect()
    }

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[test]
    fn add_lookup_case_and_trailing_dot() {
        let t = Table::default();
        t.add(
            "mynet",
            "c1",
            vec!["Web".into(), "alias1".into(), "0123456789ab".into()],
            ip("172.20.0.2"),
        );
        let scope = nets(&["mynet"]);
        assert_eq!(t.lookup(&scope, "web"), vec![ip("172.20.0.2")]);
        assert_eq!(t.lookup(&scope, "WEB."), vec![ip("172.20.0.2")]);
        assert_eq!(t.lookup(&scope, "alias1"), vec![ip("172.20.0.2")]);
        assert_eq!(t.lookup(&scope, "0123456789AB"), vec![ip("172.20.0.2")]);
        assert!(t.lookup(&scope, "other").is_empty());
        assert!(t.lookup(&scope, "").is_empty());
        assert!(t.lookup(&scope, ".").is_empty());
        // Not on the asking container's networks: unknown.
        assert!(t.lookup(&nets(&["othernet"]), "web").is_empty());
        assert!(t.lookup(&[], "web").is_empty());
    }

    #[test]
    fn name_dot_network() {
        let t = Table::default();
        t.add("mynet", "c1", vec!["web".into()], ip("172.20.0.2"));
        t.add("my.net", "c2", vec!["db.x".into()], ip("172.21.0.3"));
        let scope = nets(&["mynet", "my.net"]);
        assert_eq!(t.lookup(&scope, "web.mynet"), vec![ip("172.20.0.2")]);
        assert_eq!(t.lookup(&scope, "web.MyNet."), vec![ip("172.20.0.2")]);
        assert!(t.lookup(&scope, "web.my.net").is_empty());
        assert_eq!(t.lookup(&scope, "db.x.my.net"), vec![ip("172.21.0.3")]);
        assert_eq!(t.lookup(&scope, "db.x"), vec![ip("172.21.0.3")]);
        // The network must be one the container is on.
        assert!(t.lookup(&nets(&["my.net"]), "web.mynet").is_empty());
    }

    #[test]
    fn first_network_with_the_name_wins_and_shared_aliases_give_all() {
        let t = Table::default();
        t.add("a", "c1", vec!["svc".into()], ip("10.0.0.2"));
        t.add("a", "c2", vec!["svc".into()], ip("10.0.0.3"));
        t.add("b", "c3", vec!["svc".into()], ip("10.1.0.2"));
        assert_eq!(
            t.lookup(&nets(&["a", "b"]), "svc"),
            vec![ip("10.0.0.2"), ip("10.0.0.3")]
        );
        assert_eq!(t.lookup(&nets(&["b", "a"]), "svc"), vec![ip("10.1.0.2")]);
        t.remove("a", "c1");
        assert_eq!(t.lookup(&nets(&["a", "b"]), "svc"), vec![ip("10.0.0.3")]);
        t.remove("a", "c2");
        assert_eq!(t.lookup(&nets(&["a", "b"]), "svc"), vec![ip("10.1.0.2")]);
        t.remove_network("b");
        assert!(t.lookup(&nets(&["a", "b"]), "svc").is_empty());
        // Removing what is not there is fine.
        t.remove("zz", "c9");
        t.remove_network("zz");
    }

    #[test]
    fn re_add_replaces() {
        let t = Table::default();
        t.add("n", "c1", vec!["old".into()], ip("10.0.0.2"));
        t.add("n", "c1", vec!["new".into()], ip("10.0.0.9"));
        let scope = nets(&["n"]);
        assert!(t.lookup(&scope, "old").is_empty());
        assert_eq!(t.lookup(&scope, "new"), vec![ip("10.0.0.9")]);
    }

    #[test]
    fn ptr_gives_primary_name_and_network() {
        let t = Table::default();
        t.add(
            "mynet",
            "c1",
            vec!["web".into(), "alias".into()],
            ip("172.20.0.2"),
        );
        assert_eq!(
            t.lookup_ptr(&nets(&["mynet"]), ip("172.20.0.2")).as_deref(),
            Some("web.mynet")
        );
        assert_eq!(t.lookup_ptr(&nets(&["mynet"]), ip("172.20.0.3")), None);
        assert_eq!(t.lookup_ptr(&nets(&["other"]), ip("172.20.0.2")), None);
    }

    #[test]
    fn candidate_order() {
        assert_eq!(
            candidates("a.b.c"),
            vec![("a.b.c", None), ("a.b", Some("c")), ("a", Some("b.c"))]
        );
        assert_eq!(candidates("a"), vec![("a", None)]);
    }
}
