//! Links over rtnetlink: bridges (one per network) and veth pairs that plug a container's
//! network namespace into a bridge, with the container end's address, MAC, MTU and default
//! route.
//!
//! The host end is created with its peer already inside the container's namespace (the veth
//! `IFLA_NET_NS_FD` of the peer), enslaved and up in the same request, so no temporary name
//! ever appears on the host. Work inside a namespace (address, route, removal) runs on a
//! short-lived thread that joined it (`linux::netns::run_in`) with its own current-thread tokio
//! runtime and netlink socket. Each call opens its own netlink connection (cheap: one socket).
//! This module knows nothing of IP address management, rules or containers.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use futures_util::TryStreamExt;
use rtnetlink::packet_route::address::AddressAttribute;
use rtnetlink::packet_route::link::{
    InfoData, InfoKind, InfoPortKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use rtnetlink::{
    Handle, LinkBridge, LinkBridgePort, LinkMessageBuilder, LinkUnspec, LinkVeth,
    RouteMessageBuilder,
};

use crate::{NetworkError, Result, sysctl};

/// A network's bridge: its name, the gateway address (on the bridge) with the subnet's prefix
/// length, and an MTU for a new bridge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bridge {
    pub name: String,
    pub gateway: Ipv4Addr,
    pub prefix: u8,
    pub mtu: Option<u32>,
}

/// One container interface: a veth pair between `bridge` (host end `host_ifname`) and the
/// container's namespace (`container_ifname`, with `address/prefix`, `mac`, `mtu`, and a
/// default route via `gateway` when set).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub bridge: String,
    /// E.g. "veth" + 7 hex characters (at most 15 bytes), chosen by the engine.
    pub host_ifname: String,
    /// "eth0", "eth1", ...
    pub container_ifname: String,
    pub address: Ipv4Addr,
    pub prefix: u8,
    /// Some: a default route via it inside the namespace.
    pub gateway: Option<Ipv4Addr>,
    pub mtu: Option<u32>,
    pub mac: Option<[u8; 6]>,
}

/// Checks an interface name as the kernel would (1 to 15 bytes, no `/`, `:` or whitespace, not
/// `.` or `..`), so it can also be written into firewall rules safely.
pub fn check_ifname(name: &str) -> Result<()> {
    let bad = name.is_empty()
        || name.len() > 15
        || name == "."
        || name == ".."
        || name.bytes().any(|b| {
            b == b'/' || b == b':' || b.is_ascii_whitespace() || b.is_ascii_control() || b == b'"'
        });
    if bad {
        return Err(NetworkError::Invalid(format!(
            "invalid interface name {name:?}"
        )));
    }
    Ok(())
}

/// Creates the bridge if missing (or adopts an existing bridge of that name), ensures the
/// gateway address is on it and that it is up, and sets `net.ipv4.ip_forward=1` and the
/// bridge's `route_localnet=1` (needed for ports published on 127.0.0.1).
pub async fn ensure_bridge(b: &Bridge) -> Result<()> {
    check_ifname(&b.name)?;
    check_prefix(b.prefix)?;
    let h = connect()?;
    let existing = match get_link(&h, &b.name).await? {
        Some(msg) => Some(msg),
        None => {
            // A fixed MAC (as Docker sets): a bridge otherwise takes the lowest MAC of its ports,
            // changing whenever containers come and go and leaving stale ARP entries behind.
            let mut new = LinkBridge::new(&b.name).address(bridge_mac(b.gateway).to_vec());
            if let Some(mtu) = b.mtu {
                new = new.mtu(mtu);
            }
            match h.link().add(new.build()).execute().await {
                Ok(()) => None,
                // Created meanwhile by someone else: adopt it below.
                Err(e) if errno(&e) == Some(EEXIST) => get_link(&h, &b.name).await?,
                Err(e) => return Err(nl(format!("create bridge {}", b.name), e)),
            }
        }
    };
    let index = match &existing {
        Some(msg) => {
            if link_kind(msg) != Some(&InfoKind::Bridge) {
                return Err(NetworkError::Invalid(format!(
                    "interface {} exists and is not a bridge",
                    b.name
                )));
            }
            msg.header.index
        }
        None => get_link(&h, &b.name)
            .await?
            .map(|m| m.header.index)
            .ok_or_else(|| NetworkError::Netlink {
                op: format!("create bridge {}", b.name),
                message: "bridge vanished after creation".into(),
            })?,
    };
    if !has_address(&h, index, b.gateway, b.prefix).await? {
        match h
            .address()
            .add(index, IpAddr::V4(b.gateway), b.prefix)
            .execute()
            .await
        {
            Ok(()) => {}
            Err(e) if errno(&e) == Some(EEXIST) => {}
            Err(e) => {
                return Err(nl(
                    format!("add {}/{} to {}", b.gateway, b.prefix, b.name),
                    e,
                ));
            }
        }
    }
    if let Some(msg) = &existing {
        let up = msg.header.flags.contains(LinkFlags::Up);
        let mtu_ok = b.mtu.is_none_or(|want| link_mtu(msg) == Some(want));
        if !up || !mtu_ok {
            let mut set = LinkUnspec::new_with_index(index).up();
            if let Some(mtu) = b.mtu {
                set = set.mtu(mtu);
            }
            h.link()
                .set(set.build())
                .execute()
                .await
                .map_err(|e| nl(format!("set {} up", b.name), e))?;
        }
    }
    sysctl::enable_ip_forward()?;
    sysctl::enable_route_localnet(&b.name)?;
    Ok(())
}

/// Deletes the bridge `name`; Ok if it does not exist.
pub async fn delete_bridge(name: &str) -> Result<()> {
    check_ifname(name)?;
    let h = connect()?;
    delete_by_name(&h, name).await
}

/// Creates a veth pair: the host end enslaved to the bridge and up, the peer created inside the
/// namespace at `netns`, named, with MAC and MTU set, its address added, up, and a default route
/// when `gateway` is Some. On any failure nothing is left behind (the host end is deleted).
pub async fn attach(netns: &Path, a: &Attachment) -> Result<()> {
    check_ifname(&a.bridge)?;
    check_ifname(&a.host_ifname)?;
    check_ifname(&a.container_ifname)?;
    check_prefix(a.prefix)?;
    let ns = std::fs::File::open(netns).map_err(|source| NetworkError::Io {
        op: "open netns",
        path: netns.to_path_buf(),
        source,
    })?;
    let h = connect()?;
    let bridge = get_link(&h, &a.bridge)
        .await?
        .ok_or_else(|| NetworkError::Netlink {
            op: format!("attach {}", a.host_ifname),
            message: format!("bridge {} not found", a.bridge),
        })?
        .header
        .index;

    // Not `up` here: the kernel refuses (ENOTCONN) to bring up a peer created in another
    // namespace; configure_peer does it from inside.
    let mut peer = LinkUnspec::new_with_name(&a.container_ifname).setns_by_fd(ns.as_raw_fd());
    let mut host = LinkVeth::new(&a.host_ifname, &a.container_ifname)
        .controller(bridge)
        .up();
    if let Some(mtu) = a.mtu {
        peer = peer.mtu(mtu);
        host = host.mtu(mtu);
    }
    if let Some(mac) = a.mac {
        peer = peer.address(mac.to_vec());
    }
    let host = host
        .set_info_data(InfoData::Veth(InfoVeth::Peer(peer.build())))
        .build();
    h.link().add(host).execute().await.map_err(|e| {
        nl(
            format!(
                "create veth {} (peer {} in {})",
                a.host_ifname,
                a.container_ifname,
                netns.display()
            ),
            e,
        )
    })?;
    drop(ns);

    let inside = match set_hairpin(&h, &a.host_ifname).await {
        Ok(()) => {
            let a = a.clone();
            in_netns(netns, move |h| async move { configure_peer(&h, &a).await }).await
        }
        Err(e) => Err(e),
    };
    if let Err(e) = inside {
        if let Err(cleanup) = delete_by_name(&h, &a.host_ifname).await {
            tracing::warn!(error = %cleanup, ifname = a.host_ifname, "removing a half-made veth");
        }
        return Err(e);
    }
    Ok(())
}

/// Deletes the host end of a veth pair (which deletes its peer too); Ok if it does not exist.
pub async fn detach(host_ifname: &str) -> Result<()> {
    check_ifname(host_ifname)?;
    let h = connect()?;
    delete_by_name(&h, host_ifname).await
}

/// Removes the interface `ifname` inside the namespace at `netns` (network disconnect; the
/// host end of its veth goes with it); Ok if the interface or the namespace file is missing.
pub async fn detach_in(netns: &Path, ifname: &str) -> Result<()> {
    check_ifname(ifname)?;
    if !netns.exists() {
        return Ok(());
    }
    let name = ifname.to_string();
    in_netns(
        netns,
        move |h| async move { delete_by_name(&h, &name).await },
    )
    .await
}

/// Hairpin mode on the host end's bridge port. With br_netfilter loaded (dockerd loads it),
/// a container's connection to its own published port is DNAT'd while still being bridged and
/// must leave through the port it came in on, which a bridge does only in hairpin mode (what
/// Docker does without its userland proxy, and kubelet's hairpin-veth).
async fn set_hairpin(h: &Handle, host_ifname: &str) -> Result<()> {
    let msg = LinkMessageBuilder::<LinkBridgePort>::default()
        .name(host_ifname)
        .set_port_kind(InfoPortKind::Bridge)
        .hairpin(true)
        .build();
    h.link()
        .set_port(msg)
        .execute()
        .await
        .map_err(|e| nl(format!("set hairpin mode on {host_ifname}"), e))
}

/// Inside the container's namespace: the address on the peer and the default route.
async fn configure_peer(h: &Handle, a: &Attachment) -> Result<()> {
    let index = get_link(h, &a.container_ifname)
        .await?
        .ok_or_else(|| NetworkError::Netlink {
            op: format!("configure {}", a.container_ifname),
            message: "interface not found in the namespace".into(),
        })?
        .header
        .index;
    h.address()
        .add(index, IpAddr::V4(a.address), a.prefix)
        .execute()
        .await
        .map_err(|e| {
            nl(
                format!("add {}/{} to {}", a.address, a.prefix, a.container_ifname),
                e,
            )
        })?;
    h.link()
        .set(LinkUnspec::new_with_index(index).up().build())
        .execute()
        .await
        .map_err(|e| nl(format!("set {} up", a.container_ifname), e))?;
    if let Some(gw) = a.gateway {
        let route = RouteMessageBuilder::<Ipv4Addr>::new()
            .gateway(gw)
            .output_interface(index)
            .build();
        h.route().add(route).execute().await.map_err(|e| {
            nl(
                format!("add default route via {gw} on {}", a.container_ifname),
                e,
            )
        })?;
    }
    Ok(())
}

/// Runs `work` with a netlink handle bound to the namespace at `netns`, on a thread that joined
/// it (via the blocking pool, so async callers are not stalled).
async fn in_netns<F, Fut>(netns: &Path, work: F) -> Result<()>
where
    F: FnOnce(Handle) -> Fut + Send + 'static,
    Fut: Future<Output = Result<()>>,
{
    let path: PathBuf = netns.to_path_buf();
    let joined = tokio::task::spawn_blocking(move || {
        linux::netns::run_in(&path, move || -> Result<()> {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_io()
                .build()
                .map_err(|source| NetworkError::Io {
                    op: "start runtime in netns",
                    path: PathBuf::new(),
                    source,
                })?;
            rt.block_on(async move {
                let h = connect()?;
                work(h).await
            })
        })
    })
    .await
    .map_err(|e| NetworkError::Netlink {
        op: format!("work in {}", netns.display()),
        message: e.to_string(),
    })?;
    joined?
}

/// A netlink connection in the calling thread's network namespace, driven by a spawned task
/// that ends when the handle (and its clones) are dropped.
fn connect() -> Result<Handle> {
    let (conn, handle, _) = rtnetlink::new_connection().map_err(|e| NetworkError::Netlink {
        op: "open netlink socket".into(),
        message: e.to_string(),
    })?;
    tokio::spawn(conn);
    Ok(handle)
}

async fn get_link(h: &Handle, name: &str) -> Result<Option<LinkMessage>> {
    let mut found = h.link().get().match_name(name.to_string()).execute();
    match found.try_next().await {
        Ok(msg) => Ok(msg),
        Err(e) if errno(&e) == Some(ENODEV) => Ok(None),
        Err(e) => Err(nl(format!("look up {name}"), e)),
    }
}

async fn delete_by_name(h: &Handle, name: &str) -> Result<()> {
    let msg = LinkUnspec::new_with_name(name).build();
    match h.link().del_with_message(msg).execute().await {
        Ok(()) => Ok(()),
        Err(e) if errno(&e) == Some(ENODEV) => Ok(()),
        Err(e) => Err(nl(format!("delete {name}"), e)),
    }
}

async fn has_address(h: &Handle, index: u32, addr: Ipv4Addr, prefix: u8) -> Result<bool> {
    let mut addrs = h.address().get().set_link_index_filter(index).execute();
    while let Some(msg) = addrs
        .try_next()
        .await
        .map_err(|e| nl(format!("list addresses of link {index}"), e))?
    {
        let ours = msg.attributes.iter().any(|a| {
            matches!(a, AddressAttribute::Local(IpAddr::V4(ip)) | AddressAttribute::Address(IpAddr::V4(ip)) if *ip == addr)
        });
        if ours && msg.header.prefix_len == prefix {
            return Ok(true);
        }
    }
    Ok(false)
}

fn link_kind(msg: &LinkMessage) -> Option<&InfoKind> {
    msg.attributes.iter().find_map(|a| match a {
        LinkAttribute::LinkInfo(infos) => infos.iter().find_map(|i| match i {
            LinkInfo::Kind(k) => Some(k),
            _ => None,
        }),
        _ => None,
    })
}

fn link_mtu(msg: &LinkMessage) -> Option<u32> {
    msg.attributes.iter().find_map(|a| match a {
        LinkAttribute::Mtu(m) => Some(*m),
        _ => None,
    })
}

/// A locally administered MAC derived from the gateway address (02:42 + its four bytes, the
/// scheme Docker used for container MACs), stable across restarts.
fn bridge_mac(gateway: Ipv4Addr) -> [u8; 6] {
    let o = gateway.octets();
    [0x02, 0x42, o[0], o[1], o[2], o[3]]
}

fn check_prefix(prefix: u8) -> Result<()> {
    if prefix > 32 {
        return Err(NetworkError::Invalid(format!(
            "invalid prefix length {prefix}"
        )));
    }
    Ok(())
}

const ENODEV: i32 = linux::Errno::ENODEV as i32;
const EEXIST: i32 = linux::Errno::EEXIST as i32;

/// The errno of a netlink error reply, if that is what `e` is.
fn errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(msg) => Some(msg.raw_code().abs()),
        _ => None,
    }
}

fn nl(op: String, e: rtnetlink::Error) -> NetworkError {
    let message = match &e {
        rtnetlink::Error::NetlinkError(msg) => msg.to_io().to_string(),
        other => other.to_string(),
    };
    NetworkError::Netlink { op, message }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_names_are_checked() {
        for good in ["eth0", "veth1234567", "bt-123456-12", "br-0123456789a"] {
            assert!(check_ifname(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            ".",
            "..",
            "a/b",
            "a b",
            "a:b",
            "x\"y",
            "sixteen-bytes-xx",
            "a\nb",
        ] {
            assert!(check_ifname(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn bridge_mac_is_local_and_stable() {
        let mac = bridge_mac(Ipv4Addr::new(172, 17, 0, 1));
        assert_eq!(mac, [0x02, 0x42, 172, 17, 0, 1]);
        assert_eq!(mac[0] & 0x01, 0, "unicast");
        assert_eq!(mac[0] & 0x02, 0x02, "locally administered");
    }
}
