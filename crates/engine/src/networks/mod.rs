//! The networks berth knows: the three every daemon has (`bridge`, `host`, `none`) and user
//! networks (bridge driver), their records in `<data-root>/networks/<id>.json`, their address
//! pools (in memory, rebuilt at start from running containers), their bridges (made on first
//! use), berth's nftables table (one ruleset: every network's NAT and filter rules plus every
//! running container's published ports, replaced as a whole on each change), the held host
//! ports, and the embedded DNS servers of containers on user networks.
//!
//! What a container is attached to lives in the container record (`containers::net`); this
//! module is asked for addresses, ports and servers by container ID and never reads container
//! records itself. It knows nothing of HTTP.

pub(crate) mod record;

use std::collections::{BTreeMap, HashMap};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use network::dns;
use network::firewall::{Firewall, NetRules, PortForward, Ruleset};
use network::ipam::{AddressPool, Pool, Subnet};
use network::ports::Reservation;

pub(crate) use record::{BRIDGE, HOST, IpamEntry, NULL, NetworkRecord};
use record::{
    OPT_BRIDGE_NAME, OPT_DEFAULT_BRIDGE, OPT_HOST_BINDING, OPT_ICC, OPT_MASQUERADE, OPT_MTU,
};

use crate::{EngineError, Result, io_err};

/// The daemon's networking options (`dockerd`'s flags of the same names).
#[derive(Debug, Clone)]
pub struct NetConfig {
    /// The default bridge's interface (`berth0`); `-b none` sets [`NetConfig::no_bridge`].
    pub bridge: String,
    /// `-b none`: no default bridge network at all.
    pub no_bridge: bool,
    /// `--bip`: the default bridge's address and prefix (`172.17.0.1/16`).
    pub bip: Option<String>,
    /// `--fixed-cidr`: the part of the default bridge's subnet containers get addresses from.
    pub fixed_cidr: Option<String>,
    /// `--mtu` of the default bridge.
    pub mtu: Option<u32>,
    /// `--icc`: traffic between containers on the default bridge.
    pub icc: bool,
    /// `--iptables`: berth manages its nftables table (NAT, published ports, filters).
    pub iptables: bool,
    /// `--ip`: the default host address of published ports.
    pub ip: Option<Ipv4Addr>,
    /// `--default-address-pool`s, in order (Docker's defaults when empty).
    pub address_pools: Vec<String>,
    /// berth's nftables table (`berth`, another per test daemon).
    pub nft_table: String,
}

impl Default for NetConfig {
    fn default() -> Self {
        NetConfig {
            bridge: "berth0".into(),
            no_bridge: false,
            bip: None,
            fixed_cidr: None,
            mtu: None,
            icc: true,
            iptables: true,
            ip: None,
            address_pools: Vec::new(),
            nft_table: "berth".into(),
        }
    }
}

/// One network in memory: its record and, for bridge networks, its address pool.
#[derive(Debug)]
struct Net {
    rec: NetworkRecord,
    pool: Option<Pool>,
    /// Its bridge exists and is configured.
    ready: bool,
}

/// A running container's embedded DNS server and the networks it answers for.
struct DnsServer {
    _server: dns::Server,
    scope: dns::Scope,
}

impl std::fmt::Debug for DnsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DnsServer").finish_non_exhaustive()
    }
}

#[derive(Debug, Default)]
struct Inner {
    /// By network ID.
    nets: BTreeMap<String, Net>,
    /// Published ports of running containers, by container ID.
    forwards: BTreeMap<String, Vec<PortForward>>,
    /// The host ports those hold, by container ID.
    held: HashMap<String, Vec<Reservation>>,
    /// Embedded DNS servers, by container ID.
    servers: HashMap<String, DnsServer>,
}

/// The network service (see the module docs).
#[derive(Debug)]
pub(crate) struct Networks {
    dir: PathBuf,
    netns_dir: PathBuf,
    pub(crate) cfg: NetConfig,
    pools: Vec<AddressPool>,
    inner: Mutex<Inner>,
    firewall: Option<Firewall>,
    /// Serialises ruleset applications, so the last state always wins.
    fw_lock: tokio::sync::Mutex<()>,
    /// Names of containers on user networks, shared by every DNS server.
    pub(crate) dns: dns::Table,
    upstreams: Vec<SocketAddr>,
}

fn invalid(msg: impl Into<String>) -> EngineError {
    EngineError::InvalidRequest(msg.into())
}

impl Networks {
    /// Loads the network records, creating the predefined networks on first use and applying
    /// `--bip`/`--fixed-cidr`/`--mtu` to the default bridge.
    pub(crate) fn open(data_root: &Path, exec_root: &Path, cfg: NetConfig) -> Result<Self> {
        let dir = data_root.join("networks");
        std::fs::create_dir_all(&dir).map_err(|e| io_err("create", &dir, e))?;
        let netns_dir = exec_root.join("netns");
        std::fs::create_dir_all(&netns_dir).map_err(|e| io_err("create", &netns_dir, e))?;
        let pools = if cfg.address_pools.is_empty() {
            AddressPool::defaults()
        } else {
            cfg.address_pools
                .iter()
                .map(|p| AddressPool::parse(p))
                .collect::<std::result::Result<Vec<_>, _>>()?
        };
        let mut nets = BTreeMap::new();
        for entry in std::fs::read_dir(&dir)
            .map_err(|e| io_err("read", &dir, e))?
            .flatten()
        {
            let path = entry.path();
            if path.extension().is_none_or(|e| e != "json") {
                continue;
            }
            match NetworkRecord::load(&path) {
                Ok(rec) => {
                    nets.insert(
                        rec.id.clone(),
                        Net {
                            rec,
                            pool: None,
                            ready: false,
                        },
                    );
                }
                Err(e) => tracing::warn!(path = %path.display(), error = %e, "cannot load network"),
            }
        }
        let resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        let firewall = cfg.iptables.then(|| Firewall::new(&cfg.nft_table));
        let this = Networks {
            dir,
            netns_dir,
            pools,
            inner: Mutex::new(Inner::default()),
            firewall,
            fw_lock: tokio::sync::Mutex::new(()),
            dns: dns::Table::default(),
            upstreams: dns::upstreams_from_resolv_conf(&resolv),
            cfg,
        };
        this.ensure_predefined(&mut nets)?;
        for net in nets.values_mut() {
            net.pool = pool_of(&net.rec)?;
        }
        this.lock().nets = nets;
        Ok(this)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The netns file of a container (Docker's SandboxKey).
    pub(crate) fn sandbox_path(&self, container_id: &str) -> PathBuf {
        self.netns_dir
            .join(&container_id[..12.min(container_id.len())])
    }

    fn ensure_predefined(&self, nets: &mut BTreeMap<String, Net>) -> Result<()> {
        let find = |nets: &BTreeMap<String, Net>, name: &str| {
            nets.values()
                .find(|n| n.rec.predefined && n.rec.name == name)
                .map(|n| n.rec.id.clone())
        };
        for (name, driver) in [("host", HOST), ("none", NULL)] {
            if find(nets, name).is_none() {
                let rec = NetworkRecord::new(name, driver, true);
                rec.save(&self.dir)?;
                nets.insert(
                    rec.id.clone(),
                    Net {
                        rec,
                        pool: None,
                        ready: true,
                    },
                );
            }
        }
        let existing = find(nets, "bridge");
        if self.cfg.no_bridge {
            if let Some(id) = existing {
                nets.remove(&id);
                let _ = std::fs::remove_file(self.dir.join(format!("{id}.json")));
            }
            return Ok(());
        }
        let mut rec = match existing.and_then(|id| nets.remove(&id)) {
            Some(n) => n.rec,
            None => NetworkRecord::new("bridge", BRIDGE, true),
        };
        // The default bridge follows the daemon's flags every start.
        let (subnet, gateway) = match &self.cfg.bip {
            Some(bip) => {
                let s: Subnet = bip
                    .parse()
                    .map_err(|_| invalid(format!("invalid --bip: {bip}")))?;
                if s.is_network() && s.prefix < 31 {
                    (s.network(), s.first_host())
                } else {
                    (s.network(), s.addr)
                }
            }
            None => match (rec.subnet(), rec.gateway()) {
                (Some(s), Some(g)) if rec.bridge == self.cfg.bridge => (s, g),
                _ => {
                    let taken = self.host_routes_except(&[self.cfg.bridge.as_str()]);
                    let taken: Vec<Subnet> = taken
                        .into_iter()
                        .chain(nets.values().filter_map(|n| n.rec.subnet()))
                        .collect();
                    let s = network::ipam::next_subnet(&self.pools, &taken)?;
                    (s, s.first_host())
                }
            },
        };
        rec.subnet = Some(subnet.to_string());
        rec.gateway = Some(gateway.to_string());
        rec.ip_range = match &self.cfg.fixed_cidr {
            Some(c) => {
                let r: Subnet = c
                    .parse()
                    .map_err(|_| invalid(format!("invalid --fixed-cidr: {c}")))?;
                Some(r.network().to_string())
            }
            None => None,
        };
        rec.bridge = self.cfg.bridge.clone();
        let mut options = BTreeMap::new();
        options.insert(OPT_DEFAULT_BRIDGE.to_string(), "true".to_string());
        options.insert(OPT_ICC.to_string(), self.cfg.icc.to_string());
        options.insert(OPT_MASQUERADE.to_string(), "true".to_string());
        options.insert(
            OPT_HOST_BINDING.to_string(),
            self.cfg.ip.unwrap_or(Ipv4Addr::UNSPECIFIED).to_string(),
        );
        options.insert(OPT_BRIDGE_NAME.to_string(), self.cfg.bridge.clone());
        options.insert(
            OPT_MTU.to_string(),
            self.cfg.mtu.unwrap_or(1500).to_string(),
        );
        rec.options = options;
        rec.save(&self.dir)?;
        nets.insert(
            rec.id.clone(),
            Net {
                rec,
                pool: None,
                ready: false,
            },
        );
        Ok(())
    }

    /// The host's routes, leaving out those of the given interfaces (our own bridges).
    fn host_routes_except(&self, ifaces: &[&str]) -> Vec<Subnet> {
        let text = std::fs::read_to_string("/proc/net/route").unwrap_or_default();
        let mut out = Vec::new();
        for line in text.lines().skip(1) {
            let iface = line.split_whitespace().next().unwrap_or_default();
            if ifaces.contains(&iface) {
                continue;
            }
            out.extend(network::ipam::parse_route_line(line));
        }
        out
    }

    /// Finds a network by full ID, exact name, or unique ID prefix (moby's order).
    pub(crate) fn get(&self, reference: &str) -> Result<NetworkRecord> {
        let inner = self.lock();
        find(&inner.nets, reference).map(|n| n.rec.clone())
    }

    /// Every network, by name.
    pub(crate) fn list(&self) -> Vec<NetworkRecord> {
        let mut v: Vec<NetworkRecord> = self.lock().nets.values().map(|n| n.rec.clone()).collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// `POST /networks/create`: a user network (bridge driver).
    pub(crate) fn create(
        &self,
        req: &api_types::models::NetworkCreateRequest,
    ) -> Result<NetworkRecord> {
        let name = req.name.trim();
        if name.is_empty() {
            return Err(invalid("network name must not be empty"));
        }
        let driver = req
            .driver
            .as_deref()
            .filter(|d| !d.is_empty())
            .unwrap_or(BRIDGE);
        match driver {
            BRIDGE => {}
            HOST | NULL => {
                return Err(EngineError::Forbidden(format!(
                    "only one instance of \"{driver}\" network is allowed"
                )));
            }
            other => {
                return Err(EngineError::NoSuchPlugin(format!(
                    "plugin \"{other}\" not found"
                )));
            }
        }
        let ipam = req.ipam.clone().unwrap_or_default();
        if let Some(d) = ipam
            .driver
            .as_deref()
            .filter(|d| !d.is_empty() && *d != "default")
        {
            return Err(EngineError::NoSuchPlugin(format!(
                "plugin \"{d}\" not found"
            )));
        }
        let requested: Vec<IpamEntry> = ipam
            .config
            .unwrap_or_default()
            .into_iter()
            .map(|c| IpamEntry {
                subnet: c.subnet.unwrap_or_default(),
                gateway: c.gateway.unwrap_or_default(),
                ip_range: c.ip_range.unwrap_or_default(),
                aux: c
                    .auxiliary_addresses
                    .unwrap_or_default()
                    .into_iter()
                    .collect(),
            })
            .collect();
        // IPv4 entries only: berth has no IPv6 networking.
        let v4: Vec<&IpamEntry> = requested
            .iter()
            .filter(|c| !c.subnet.contains(':'))
            .collect();
        if v4.len() > 1 {
            return Err(invalid(
                "berth supports one IPv4 subnet per network".to_string(),
            ));
        }
        let options: BTreeMap<String, String> = req
            .options
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect();
        if let Some(m) = options.get(OPT_MTU)
            && m.parse::<u32>().is_err()
        {
            return Err(invalid(format!("invalid mtu: {m}")));
        }
        let mut inner = self.lock();
        if inner.nets.values().any(|n| n.rec.name == name) {
            return Err(EngineError::Conflict(format!(
                "network with name {name} already exists"
            )));
        }
        let taken: Vec<Subnet> = inner.nets.values().filter_map(|n| n.rec.subnet()).collect();
        let (subnet, gateway, range) = match v4.first() {
            Some(c) if !c.subnet.is_empty() => {
                let s: Subnet = c
                    .subnet
                    .parse()
                    .map_err(|_| invalid(format!("invalid subnet {}", c.subnet)))?;
                if !s.is_network() {
                    return Err(invalid(format!(
                        "invalid subnet {s}: it should be {}",
                        s.network()
                    )));
                }
                if taken.iter().any(|t| t.overlaps(&s)) {
                    return Err(EngineError::Forbidden(
                        "invalid pool request: Pool overlaps with other one on this address space"
                            .into(),
                    ));
                }
                let gw = if c.gateway.is_empty() {
                    s.first_host()
                } else {
                    c.gateway
                        .parse::<Ipv4Addr>()
                        .map_err(|_| invalid(format!("invalid gateway address {}", c.gateway)))?
                };
                if !s.contains(gw) {
                    return Err(invalid(format!(
                        "Invalid gateway {gw}: it must be inside subnet {s}"
                    )));
                }
                let range = if c.ip_range.is_empty() {
                    None
                } else {
                    let r: Subnet = c
                        .ip_range
                        .parse()
                        .map_err(|_| invalid(format!("invalid ip-range {}", c.ip_range)))?;
                    Some(r)
                };
                (s, gw, range)
            }
            Some(c) if !c.gateway.is_empty() || !c.ip_range.is_empty() => {
                return Err(invalid(
                    "no matching subnet for gateway or ip-range".to_string(),
                ));
            }
            _ => {
                let bridges: Vec<&str> =
                    inner.nets.values().map(|n| n.rec.bridge.as_str()).collect();
                let all: Vec<Subnet> = taken
                    .iter()
                    .copied()
                    .chain(self.host_routes_except(&bridges))
                    .collect();
                let s = network::ipam::next_subnet(&self.pools, &all)?;
                (s, s.first_host(), None)
            }
        };
        let id = record::new_id();
        let bridge = match options.get(OPT_BRIDGE_NAME).filter(|b| !b.is_empty()) {
            Some(b) => {
                network::link::check_ifname(b)?;
                if inner.nets.values().any(|n| &n.rec.bridge == b) {
                    return Err(EngineError::Forbidden(format!(
                        "bridge name {b} is already used by another network"
                    )));
                }
                b.clone()
            }
            None => format!("br-{}", &id[..12]),
        };
        let rec = NetworkRecord {
            id: id.clone(),
            name: name.to_string(),
            driver: BRIDGE.into(),
            created: chrono::Utc::now(),
            internal: req.internal.unwrap_or(false),
            attachable: req.attachable.unwrap_or(false),
            enable_ipv6: req.enable_ipv6.unwrap_or(false),
            ipam_options: ipam.options.unwrap_or_default().into_iter().collect(),
            ipam_requested: requested,
            subnet: Some(subnet.to_string()),
            gateway: Some(gateway.to_string()),
            ip_range: range.map(|r| r.network().to_string()),
            options,
            labels: req.labels.clone().unwrap_or_default().into_iter().collect(),
            bridge,
            predefined: false,
        };
        let pool = pool_of(&rec)?;
        rec.save(&self.dir)?;
        inner.nets.insert(
            id,
            Net {
                rec: rec.clone(),
                pool,
                ready: false,
            },
        );
        Ok(rec)
    }

    /// Removes a user network's record and bridge (the caller checked it has no endpoints).
    pub(crate) async fn remove(&self, id: &str) -> Result<()> {
        let rec = {
            let mut inner = self.lock();
            let net = inner
                .nets
                .get(id)
                .ok_or_else(|| EngineError::NoSuchNetwork(id.to_string()))?;
            if net.rec.predefined {
                return Err(EngineError::Forbidden(format!(
                    "{} is a pre-defined network and cannot be removed",
                    net.rec.name
                )));
            }
            inner
                .nets
                .remove(id)
                .map(|n| n.rec)
                .ok_or_else(|| EngineError::NoSuchNetwork(id.to_string()))?
        };
        let path = self.dir.join(format!("{id}.json"));
        if let Err(e) = std::fs::remove_file(&path)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            return Err(io_err("remove", &path, e));
        }
        self.dns.remove_network(&rec.name);
        if !rec.bridge.is_empty()
            && let Err(e) = network::link::delete_bridge(&rec.bridge).await
        {
            tracing::warn!(bridge = rec.bridge, error = %e, "cannot delete bridge");
        }
        self.apply_firewall().await;
        Ok(())
    }

    /// Makes sure the network's bridge exists and is configured (and the firewall knows it).
    pub(crate) async fn ensure_ready(&self, id: &str) -> Result<()> {
        let bridge = {
            let inner = self.lock();
            let net = inner
                .nets
                .get(id)
                .ok_or_else(|| EngineError::NoSuchNetwork(id.to_string()))?;
            if net.ready || net.rec.driver != BRIDGE {
                return Ok(());
            }
            let (Some(s), Some(g)) = (net.rec.subnet(), net.rec.gateway()) else {
                return Ok(());
            };
            network::link::Bridge {
                name: net.rec.bridge.clone(),
                gateway: g,
                prefix: s.prefix,
                mtu: self.mtu_of(&net.rec),
            }
        };
        network::link::ensure_bridge(&bridge).await?;
        if let Some(n) = self.lock().nets.get_mut(id) {
            n.ready = true;
        }
        self.apply_firewall().await;
        Ok(())
    }

    /// The MTU for a network's interfaces, if set.
    pub(crate) fn mtu_of(&self, rec: &NetworkRecord) -> Option<u32> {
        if rec.predefined && rec.driver == BRIDGE {
            return self.cfg.mtu;
        }
        rec.options
            .get(OPT_MTU)
            .and_then(|m| m.parse().ok())
            .filter(|m| *m > 0)
    }

    /// The host address ports on this network are published on by default.
    pub(crate) fn host_binding(&self, rec: &NetworkRecord) -> Option<Ipv4Addr> {
        rec.options
            .get(OPT_HOST_BINDING)
            .and_then(|v| v.parse::<Ipv4Addr>().ok())
            .filter(|ip| !ip.is_unspecified())
            .or(self.cfg.ip)
    }

    /// An address on network `id` (`want` for `--ip`).
    pub(crate) fn allocate(&self, id: &str, want: Option<Ipv4Addr>) -> Result<Ipv4Addr> {
        let mut inner = self.lock();
        let net = inner
            .nets
            .get_mut(id)
            .ok_or_else(|| EngineError::NoSuchNetwork(id.to_string()))?;
        let pool = net
            .pool
            .as_mut()
            .ok_or_else(|| invalid(format!("network {} has no address pool", net.rec.name)))?;
        Ok(pool.allocate(want)?)
    }

    /// Marks an address taken again (berthd restarted while its container ran).
    pub(crate) fn reserve(&self, id: &str, ip: Ipv4Addr) {
        if let Some(pool) = self.lock().nets.get_mut(id).and_then(|n| n.pool.as_mut()) {
            pool.reserve(ip);
        }
    }

    /// Gives an address back.
    pub(crate) fn release(&self, id: &str, ip: Ipv4Addr) {
        if let Some(pool) = self.lock().nets.get_mut(id).and_then(|n| n.pool.as_mut()) {
            pool.release(ip);
        }
    }

    /// Records a container's published ports and the host ports they hold, then applies the
    /// ruleset.
    pub(crate) async fn publish(
        &self,
        container_id: &str,
        forwards: Vec<PortForward>,
        held: Vec<Reservation>,
    ) -> Result<()> {
        {
            let mut inner = self.lock();
            inner.forwards.insert(container_id.to_string(), forwards);
            inner.held.insert(container_id.to_string(), held);
        }
        self.apply_firewall_checked().await
    }

    /// Takes back a running container's published ports after a berthd restart (no ruleset
    /// application: the caller applies once for all containers).
    pub(crate) fn restore_ports(
        &self,
        container_id: &str,
        forwards: Vec<PortForward>,
        held: Vec<Reservation>,
    ) {
        let mut inner = self.lock();
        inner.forwards.insert(container_id.to_string(), forwards);
        inner.held.insert(container_id.to_string(), held);
    }

    /// Marks every bridge whose interface exists as ready (after a berthd restart).
    pub(crate) fn adopt_existing_bridges(&self) {
        let mut inner = self.lock();
        for n in inner.nets.values_mut() {
            if !n.rec.bridge.is_empty() && Path::new("/sys/class/net").join(&n.rec.bridge).exists()
            {
                n.ready = true;
            }
        }
    }

    /// Forgets a container's published ports (freeing its host ports) and applies the ruleset
    /// when it had any.
    pub(crate) async fn unpublish(&self, container_id: &str) {
        let had = {
            let mut inner = self.lock();
            inner.held.remove(container_id);
            inner
                .forwards
                .remove(container_id)
                .is_some_and(|f| !f.is_empty())
        };
        if had {
            self.apply_firewall().await;
        }
    }

    /// The ruleset for the current networks and ports.
    fn ruleset(&self) -> Ruleset {
        let inner = self.lock();
        let mut rules = Ruleset::default();
        for net in inner.nets.values() {
            let r = &net.rec;
            if r.driver != BRIDGE || !net.ready {
                continue;
            }
            let Some(s) = r.subnet() else { continue };
            let icc = if r.predefined {
                self.cfg.icc
            } else {
                r.bool_option(OPT_ICC, true)
            };
            rules.networks.push(NetRules {
                bridge: r.bridge.clone(),
                subnet: s.addr,
                prefix: s.prefix,
                masquerade: !r.internal && r.bool_option(OPT_MASQUERADE, true),
                internal: r.internal,
                icc,
            });
        }
        for f in inner.forwards.values() {
            rules.ports.extend(f.iter().cloned());
        }
        rules
    }

    /// Applies the ruleset; failures are logged (used on teardown paths).
    pub(crate) async fn apply_firewall(&self) {
        if let Err(e) = self.apply_firewall_checked().await {
            tracing::warn!(error = %e, "cannot apply the nftables ruleset");
        }
    }

    async fn apply_firewall_checked(&self) -> Result<()> {
        let Some(fw) = self.firewall.clone() else {
            return Ok(());
        };
        let _g = self.fw_lock.lock().await;
        let rules = self.ruleset();
        tokio::task::spawn_blocking(move || fw.apply(&rules))
            .await
            .map_err(|_| EngineError::TaskFailed {
                what: "firewall update",
            })??;
        Ok(())
    }

    /// Removes berth's nftables table when nothing needs it any more (daemon shutdown with no
    /// running container).
    pub(crate) fn shutdown(&self, containers_running: bool) {
        if containers_running {
            return;
        }
        if let Some(fw) = &self.firewall
            && let Err(e) = fw.remove()
        {
            tracing::warn!(error = %e, "cannot remove the nftables table");
        }
    }

    /// Starts the embedded DNS server of a container whose network namespace is at `netns`,
    /// answering for `networks` (names, in lookup order) and forwarding the rest to `dns`
    /// (the container's `--dns`) or, when empty, to the host's nameservers.
    pub(crate) fn start_dns(
        &self,
        container_id: &str,
        netns: &Path,
        networks: Vec<String>,
        dns: &[String],
    ) -> Result<()> {
        let upstreams: Vec<SocketAddr> = dns
            .iter()
            .filter_map(|s| s.parse::<std::net::IpAddr>().ok())
            .map(|ip| SocketAddr::new(ip, 53))
            .collect();
        let upstreams = if upstreams.is_empty() {
            self.upstreams.clone()
        } else {
            upstreams
        };
        let addr = SocketAddr::from((dns::NAMESERVER, 53));
        let (udp, tcp) = dns::bind_in_netns(netns, addr)?;
        let scope = dns::Scope::new(networks);
        let server = dns::serve(udp, Some(tcp), scope.clone(), self.dns.clone(), upstreams)?;
        self.lock().servers.insert(
            container_id.to_string(),
            DnsServer {
                _server: server,
                scope,
            },
        );
        Ok(())
    }

    /// Changes the networks a container's DNS server answers for (connect, disconnect).
    pub(crate) fn set_dns_scope(&self, container_id: &str, networks: Vec<String>) -> bool {
        match self.lock().servers.get(container_id) {
            Some(s) => {
                s.scope.set(networks);
                true
            }
            None => false,
        }
    }

    /// Stops a container's DNS server.
    pub(crate) fn stop_dns(&self, container_id: &str) {
        self.lock().servers.remove(container_id);
    }
}

/// moby's lookup order: full ID, exact name, unique ID prefix.
fn find<'a>(nets: &'a BTreeMap<String, Net>, reference: &str) -> Result<&'a Net> {
    if reference.is_empty() {
        return Err(EngineError::NoSuchNetwork(reference.to_string()));
    }
    if let Some(n) = nets.get(reference) {
        return Ok(n);
    }
    if let Some(n) = nets.values().find(|n| n.rec.name == reference) {
        return Ok(n);
    }
    let mut found = nets.values().filter(|n| n.rec.id.starts_with(reference));
    match (found.next(), found.next()) {
        (Some(n), None) => Ok(n),
        (Some(_), Some(_)) => Err(invalid(format!(
            "network {reference} is ambiguous (more than one network matches)"
        ))),
        _ => Err(EngineError::NoSuchNetwork(reference.to_string())),
    }
}

/// The address pool of a bridge network.
fn pool_of(rec: &NetworkRecord) -> Result<Option<Pool>> {
    if rec.driver != BRIDGE {
        return Ok(None);
    }
    let Some(subnet) = rec.subnet() else {
        return Ok(None);
    };
    let mut pool = Pool::new(subnet, rec.ip_range(), rec.gateway())?;
    for a in rec.ipam_requested.iter().flat_map(|c| c.aux.values()) {
        if let Ok(ip) = a.parse::<Ipv4Addr>() {
            pool.reserve(ip);
        }
    }
    Ok(Some(pool))
}
