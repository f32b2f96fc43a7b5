//! A container's networking: which networks it is attached to (decided at create from
//! `HostConfig.NetworkMode` and `NetworkingConfig`, kept in the record as [`Endpoint`]s), what
//! a start sets up (its own network namespace at its SandboxKey, one veth per network with an
//! address from the network's pool, published ports, the embedded DNS server on user networks,
//! links) and what its exit tears down, `network connect`/`disconnect`, and the
//! `NetworkSettings` views of inspect and ps.
//!
//! The data plane (netns, links, rules, ports, DNS) is the `network` crate's; the networks
//! themselves are `crate::networks`'. This module decides, per container, what to ask them.

use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use api_types::models::{ContainerConfig, EndpointSettings, HostConfig, NetworkingConfig};
use network::firewall::{PortForward, Proto};
use runtime::NetworkNamespace;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::Containers;
use super::record::Record;
use crate::networks::{BRIDGE, NetworkRecord};
use crate::{EngineError, Result};

/// One network a container is attached to. The configuration is kept from create (or
/// connect); the rest is filled while the container runs and cleared when it stops.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Endpoint {
    pub network_id: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(default)]
    pub links: Vec<String>,
    /// `--ip` (`IPAMConfig.IPv4Address`).
    #[serde(default)]
    pub want_ip: String,
    /// `--mac-address`.
    #[serde(default)]
    pub want_mac: String,
    #[serde(default)]
    pub driver_opts: BTreeMap<String, String>,
    #[serde(default)]
    pub gw_priority: i64,
    // While running:
    #[serde(default)]
    pub endpoint_id: String,
    #[serde(default)]
    pub ip: String,
    #[serde(default)]
    pub prefix: u8,
    #[serde(default)]
    pub gateway: String,
    #[serde(default)]
    pub mac: String,
    #[serde(default)]
    pub host_ifname: String,
    #[serde(default)]
    pub ifname: String,
}

impl Endpoint {
    fn from_settings(network_id: &str, s: Option<&EndpointSettings>) -> Endpoint {
        let s = s.cloned().unwrap_or_default();
        Endpoint {
            network_id: network_id.to_string(),
            aliases: s.aliases.unwrap_or_default(),
            links: s.links.unwrap_or_default(),
            want_ip: s
                .ipam_config
                .and_then(|c| c.ipv4_address)
                .unwrap_or_default(),
            want_mac: s.mac_address.unwrap_or_default(),
            driver_opts: s.driver_opts.unwrap_or_default().into_iter().collect(),
            gw_priority: s.gw_priority.unwrap_or(0),
            ..Default::default()
        }
    }

    /// Clears what only a running container has.
    fn clear_live(&mut self) {
        self.endpoint_id.clear();
        self.ip.clear();
        self.prefix = 0;
        self.gateway.clear();
        self.mac.clear();
        self.host_ifname.clear();
        self.ifname.clear();
    }

    fn ip(&self) -> Option<Ipv4Addr> {
        self.ip.parse().ok()
    }
}

/// A port published while the container runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PublishedPort {
    /// `tcp` or `udp`.
    pub proto: String,
    pub container_port: u16,
    pub host_ip: String,
    pub host_port: u16,
}

/// How the container's network is given to it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Mode {
    /// Bridge networks (the default one or user networks).
    Bridge,
    Host,
    None,
    /// `container:<name|id>`.
    Container(String),
}

fn mode_of(h: &HostConfig) -> Mode {
    match h.network_mode.as_deref().unwrap_or_default() {
        "host" => Mode::Host,
        "none" => Mode::None,
        m => match m.strip_prefix("container:") {
            Some(x) => Mode::Container(x.to_string()),
            None => Mode::Bridge,
        },
    }
}

/// The network NetworkMode names (`default` is the default bridge).
fn primary_network(h: &HostConfig) -> String {
    match h.network_mode.as_deref().unwrap_or_default() {
        "" | "default" => "bridge".to_string(),
        m => m.to_string(),
    }
}

/// What the per-container `/etc` files get from networking.
#[derive(Debug, Clone, Default)]
pub(crate) enum EtcNet {
    /// Its own files: its addresses, link entries, and whether the embedded DNS answers.
    Own {
        ips: Vec<Ipv4Addr>,
        links: Vec<(Ipv4Addr, Vec<String>)>,
        internal_dns: bool,
    },
    /// `--network host`: the host's hosts and resolv.conf.
    Host,
    /// `--network container:<x>`: a copy of that container's files (in its directory).
    Shared(PathBuf),
    /// Nothing networked (`none`).
    #[default]
    Loopback,
}

/// What a start set up: the namespace for the spec and what the record keeps.
#[derive(Debug, Default)]
pub(crate) struct NetUp {
    pub ns: NetworkNamespace,
    pub endpoints: BTreeMap<String, Endpoint>,
    pub sandbox_key: String,
    pub ports: Vec<PublishedPort>,
    pub etc: EtcNet,
    pub link_env: Vec<String>,
}

fn veth_name() -> String {
    use rand::RngCore;
    let mut b = [0u8; 4];
    rand::rng().fill_bytes(&mut b);
    format!("veth{}", &hex::encode(b)[..7])
}

/// Docker's classic MAC for an address: `02:42` and the four address bytes.
fn mac_for(ip: Ipv4Addr) -> [u8; 6] {
    let o = ip.octets();
    [0x02, 0x42, o[0], o[1], o[2], o[3]]
}

fn mac_string(m: [u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn parse_mac(s: &str) -> Result<[u8; 6]> {
    let parts: Vec<&str> = s.split(':').collect();
    let bad = || EngineError::InvalidRequest(format!("invalid MAC address: {s}"));
    if parts.len() != 6 {
        return Err(bad());
    }
    let mut m = [0u8; 6];
    for (i, p) in parts.iter().enumerate() {
        m[i] = u8::from_str_radix(p, 16).map_err(|_| bad())?;
    }
    Ok(m)
}

/// `80/tcp` → (80, tcp).
fn parse_port_key(k: &str) -> Result<(u16, Proto)> {
    let (port, proto) = k.split_once('/').unwrap_or((k, "tcp"));
    let proto = match proto {
        "tcp" | "" => Proto::Tcp,
        "udp" => Proto::Udp,
        other => {
            return Err(EngineError::InvalidRequest(format!(
                "invalid proto '{other}' in port {k}: berth publishes tcp and udp"
            )));
        }
    };
    let port: u16 = port.parse().ok().filter(|p| *p > 0).ok_or_else(|| {
        EngineError::InvalidRequest(format!("invalid port specification: \"{k}\""))
    })?;
    Ok((port, proto))
}

fn proto_name(p: Proto) -> &'static str {
    match p {
        Proto::Tcp => "tcp",
        Proto::Udp => "udp",
    }
}

/// A host port spec: `""` (any), `8080`, `8000-8010`.
fn host_ports(spec: &str) -> Result<Vec<u16>> {
    let s = spec.trim();
    if s.is_empty() {
        return Ok(vec![0]);
    }
    let bad = || EngineError::InvalidRequest(format!("invalid hostPort: {spec}"));
    match s.split_once('-') {
        Some((a, b)) => {
            let a: u16 = a.parse().map_err(|_| bad())?;
            let b: u16 = b.parse().map_err(|_| bad())?;
            if a > b {
                return Err(bad());
            }
            Ok((a..=b).collect())
        }
        None => Ok(vec![s.parse().map_err(|_| bad())?]),
    }
}

/// The ports a container publishes: (container port, proto, host ip, host port spec).
fn wanted_ports(c: &ContainerConfig, h: &HostConfig) -> Result<Vec<(u16, Proto, String, String)>> {
    let mut out = Vec::new();
    let bindings = h.port_bindings.clone().unwrap_or_default();
    let mut keys: Vec<String> = bindings.keys().cloned().collect();
    if h.publish_all_ports.unwrap_or(false) {
        keys.extend(c.exposed_ports.clone().unwrap_or_default());
    }
    keys.sort();
    keys.dedup();
    for k in keys {
        let (port, proto) = parse_port_key(&k)?;
        let list = bindings.get(&k).cloned().flatten().unwrap_or_default();
        if list.is_empty() {
            out.push((port, proto, String::new(), String::new()));
        }
        for b in list {
            out.push((
                port,
                proto,
                b.host_ip.unwrap_or_default(),
                b.host_port.unwrap_or_default(),
            ));
        }
    }
    Ok(out)
}

/// moby's legacy link variables for `alias` pointing at `target` (reached at `ip`).
fn link_env(alias: &str, own_name: &str, target: &Record, ip: Ipv4Addr) -> Vec<String> {
    let prefix = alias.to_ascii_uppercase().replace('-', "_");
    let mut env = vec![format!(
        "{prefix}_NAME={}/{}",
        own_name,
        alias.trim_start_matches('/')
    )];
    let mut ports: Vec<(u16, String)> = target
        .config
        .exposed_ports
        .clone()
        .unwrap_or_default()
        .into_iter()
        .filter_map(|k| {
            let (p, proto) = k.split_once('/').unwrap_or((&k, "tcp"));
            p.parse().ok().map(|p| (p, proto.to_string()))
        })
        .collect();
    ports.sort();
    if let Some((p, proto)) = ports.first() {
        env.push(format!("{prefix}_PORT={proto}://{ip}:{p}"));
    }
    for (p, proto) in &ports {
        let up = proto.to_ascii_uppercase();
        env.push(format!("{prefix}_PORT_{p}_{up}={proto}://{ip}:{p}"));
        env.push(format!("{prefix}_PORT_{p}_{up}_ADDR={ip}"));
        env.push(format!("{prefix}_PORT_{p}_{up}_PORT={p}"));
        env.push(format!("{prefix}_PORT_{p}_{up}_PROTO={proto}"));
    }
    for e in target.config.env.iter().flatten() {
        if let Some((k, v)) = e.split_once('=')
            && k != "HOME"
            && k != "PATH"
        {
            env.push(format!("{prefix}_ENV_{k}={v}"));
        }
    }
    env
}

impl Containers {
    /// The endpoints a new container gets (validated: the networks exist, `--ip` and aliases
    /// only where moby allows them, `container:<x>` names a container).
    pub(super) fn plan_endpoints(
        &self,
        h: &HostConfig,
        nc: Option<&NetworkingConfig>,
    ) -> Result<BTreeMap<String, Endpoint>> {
        let mut out = BTreeMap::new();
        let configs: HashMap<String, EndpointSettings> = nc
            .and_then(|n| n.endpoints_config.clone())
            .unwrap_or_default();
        match mode_of(h) {
            Mode::Host | Mode::None => {
                let name = if mode_of(h) == Mode::Host {
                    "host"
                } else {
                    "none"
                };
                let net = self.networks.get(name)?;
                out.insert(
                    net.name.clone(),
                    Endpoint::from_settings(&net.id, configs.get(name)),
                );
                return Ok(out);
            }
            Mode::Container(x) => {
                self.get(&x)?;
                if h.port_bindings.as_ref().is_some_and(|p| !p.is_empty())
                    || h.publish_all_ports.unwrap_or(false)
                {
                    return Err(EngineError::InvalidRequest(
                        "conflicting options: port publishing and the container type network mode"
                            .into(),
                    ));
                }
                return Ok(out);
            }
            Mode::Bridge => {}
        }
        // The CLI keys the NetworkMode network's settings by NetworkMode as given
        // (`default` too).
        let mode = h.network_mode.clone().unwrap_or_default();
        // moby tolerates a network that does not exist (yet) at create; the start fails.
        let primary = match self.networks.get(&primary_network(h)) {
            Ok(n) => n,
            Err(EngineError::NoSuchNetwork(_)) => {
                let name = primary_network(h);
                out.insert(
                    name.clone(),
                    Endpoint::from_settings("", configs.get(&mode)),
                );
                return Ok(out);
            }
            Err(e) => return Err(e),
        };
        let mut wanted: Vec<(NetworkRecord, Option<EndpointSettings>)> = vec![(
            primary.clone(),
            configs
                .get(&mode)
                .or_else(|| configs.get(&primary.name))
                .cloned(),
        )];
        for (k, v) in &configs {
            if k == &mode || k == "default" {
                continue;
            }
            let net = self.networks.get(k)?;
            if net.id != primary.id {
                wanted.push((net, Some(v.clone())));
            }
        }
        for (net, settings) in wanted {
            let ep = Endpoint::from_settings(&net.id, settings.as_ref());
            check_endpoint(&net, &ep)?;
            out.insert(net.name.clone(), ep);
        }
        for l in h.links.iter().flatten() {
            let (name, _) = split_link(l);
            self.get(name)?;
        }
        Ok(out)
    }

    /// Sets up a starting container's networking (see the module docs); on failure nothing is
    /// left behind.
    pub(super) async fn net_up(self: &Arc<Self>, rec: &Record) -> Result<NetUp> {
        match mode_of(&rec.host_config) {
            Mode::Host => Ok(NetUp {
                ns: NetworkNamespace::Host,
                endpoints: rec.endpoints.clone(),
                etc: EtcNet::Host,
                ..Default::default()
            }),
            Mode::None => Ok(NetUp {
                ns: NetworkNamespace::New,
                endpoints: rec.endpoints.clone(),
                etc: EtcNet::Loopback,
                ..Default::default()
            }),
            Mode::Container(x) => {
                let other = self.get(&x)?.snapshot();
                if !other.state.running || other.state.pid <= 0 {
                    return Err(EngineError::Conflict(format!(
                        "cannot join network namespace of a non running container: {}",
                        other.id
                    )));
                }
                let path = if other.sandbox_key.is_empty() {
                    PathBuf::from(format!("/proc/{}/ns/net", other.state.pid))
                } else {
                    PathBuf::from(&other.sandbox_key)
                };
                Ok(NetUp {
                    ns: NetworkNamespace::Join(path),
                    etc: EtcNet::Shared(self.dirs(&other.id).dir),
                    ..Default::default()
                })
            }
            Mode::Bridge => {
                let mut up = NetUp {
                    endpoints: rec.endpoints.clone(),
                    ..Default::default()
                };
                match self.bridge_up(rec, &mut up).await {
                    Ok(()) => Ok(up),
                    Err(e) => {
                        let mut r = rec.clone();
                        r.endpoints = up.endpoints;
                        r.sandbox_key = up.sandbox_key;
                        for net in self.net_down(&mut r).await {
                            self.network_event(&net, "disconnect", &rec.id);
                        }
                        Err(e)
                    }
                }
            }
        }
    }

    async fn bridge_up(self: &Arc<Self>, rec: &Record, up: &mut NetUp) -> Result<()> {
        let path = self.networks.sandbox_path(&rec.id);
        let p2 = path.clone();
        tokio::task::spawn_blocking(move || network::netns::create(&p2))
            .await
            .map_err(|_| EngineError::TaskFailed {
                what: "network namespace",
            })??;
        up.sandbox_key = path.display().to_string();
        up.ns = NetworkNamespace::Prepared(path.clone());

        // The NetworkMode network first (eth0, the default route), then the others by name.
        let primary = primary_network(&rec.host_config);
        let primary = self.networks.get(&primary).map_or(primary, |n| n.name);
        let mut order: Vec<String> = up.endpoints.keys().cloned().collect();
        order.sort_by_key(|n| (n != &primary, n.clone()));
        let mut ips = Vec::new();
        let mut user_nets = Vec::new();
        let mut first: Option<(NetworkRecord, Ipv4Addr)> = None;
        for (i, name) in order.iter().enumerate() {
            let Some(ep) = up.endpoints.get_mut(name) else {
                continue;
            };
            let net = if ep.network_id.is_empty() {
                self.networks.get(name)?
            } else {
                self.networks.get(&ep.network_id)?
            };
            ep.network_id = net.id.clone();
            check_endpoint(&net, ep)?;
            let ip = self
                .attach_endpoint(&path, &net, ep, i, first.is_none())
                .await?;
            ips.push(ip);
            if !net.predefined {
                user_nets.push(net.name.clone());
                self.networks
                    .dns
                    .add(&net.name, &rec.id, dns_names(rec, ep), ip);
            }
            if first.is_none() {
                first = Some((net, ip));
            }
        }

        // Published ports go to the first network's address.
        if let Some((net, ip)) = &first {
            self.publish(rec, up, net, *ip).await?;
        }
        if !user_nets.is_empty() {
            self.dns_up(rec, &path, user_nets.clone()).await?;
        }

        // Links: /etc/hosts entries and the legacy variables.
        let mut links = Vec::new();
        for l in rec.host_config.links.iter().flatten() {
            let (name, alias) = split_link(l);
            let target = self.get(name)?.snapshot();
            let target_ip = target
                .endpoints
                .values()
                .find(|e| up.endpoints.values().any(|o| o.network_id == e.network_id))
                .and_then(Endpoint::ip);
            let (true, Some(tip)) = (target.state.running, target_ip) else {
                return Err(EngineError::Conflict(format!(
                    "Cannot link to a non running container: {} AS {}/{}",
                    target.name,
                    rec.name,
                    alias.trim_start_matches('/')
                )));
            };
            let child = target.name.trim_start_matches('/').to_string();
            let mut names = vec![alias.to_string()];
            let hn = target.config.hostname.clone().unwrap_or_default();
            if !hn.is_empty() && hn != alias {
                names.push(hn);
            }
            if child != alias {
                names.push(child);
            }
            links.push((tip, names));
            up.link_env.extend(link_env(alias, &rec.name, &target, tip));
        }
        up.etc = EtcNet::Own {
            ips,
            links,
            internal_dns: !user_nets.is_empty(),
        };
        // moby's `network connect` events for the container's networks.
        for ep in up.endpoints.values().filter(|e| !e.ip.is_empty()) {
            if let Ok(net) = self.networks.get(&ep.network_id) {
                self.network_event(&net, "connect", &rec.id);
            }
        }
        Ok(())
    }

    /// Starts the container's embedded DNS server in its namespace at `netns` (the sockets are
    /// opened on a blocking thread that joins the namespace, inside this runtime).
    async fn dns_up(&self, rec: &Record, netns: &Path, scope: Vec<String>) -> Result<()> {
        let networks = Arc::clone(&self.networks);
        let (id, netns) = (rec.id.clone(), netns.to_path_buf());
        let dns = rec.host_config.dns.clone().unwrap_or_default();
        let handle = tokio::runtime::Handle::current();
        tokio::task::spawn_blocking(move || {
            let _g = handle.enter();
            networks.start_dns(&id, &netns, scope, &dns)
        })
        .await
        .map_err(|_| EngineError::TaskFailed {
            what: "embedded DNS",
        })?
    }

    /// One veth into network `net` as interface `eth<index>`.
    async fn attach_endpoint(
        &self,
        netns: &Path,
        net: &NetworkRecord,
        ep: &mut Endpoint,
        index: usize,
        default_route: bool,
    ) -> Result<Ipv4Addr> {
        self.networks.ensure_ready(&net.id).await?;
        let want = if ep.want_ip.is_empty() {
            None
        } else {
            Some(ep.want_ip.parse::<Ipv4Addr>().map_err(|_| {
                EngineError::InvalidRequest(format!("invalid IPv4 address: {}", ep.want_ip))
            })?)
        };
        let ip = self.networks.allocate(&net.id, want)?;
        let subnet = net.subnet().ok_or_else(|| {
            EngineError::InvalidRequest(format!("network {} has no subnet", net.name))
        })?;
        let gateway = net.gateway();
        let mac = if ep.want_mac.is_empty() {
            mac_for(ip)
        } else {
            match parse_mac(&ep.want_mac) {
                Ok(m) => m,
                Err(e) => {
                    self.networks.release(&net.id, ip);
                    return Err(e);
                }
            }
        };
        ep.ip = ip.to_string();
        ep.prefix = subnet.prefix;
        ep.gateway = gateway.map(|g| g.to_string()).unwrap_or_default();
        ep.mac = mac_string(mac);
        ep.endpoint_id = crate::networks::record::new_id();
        ep.ifname = format!("eth{index}");
        let attachment = network::link::Attachment {
            bridge: net.bridge.clone(),
            host_ifname: veth_name(),
            container_ifname: ep.ifname.clone(),
            address: ip,
            prefix: subnet.prefix,
            gateway: if default_route && !net.internal {
                gateway
            } else {
                None
            },
            mtu: self.networks.mtu_of(net),
            mac: Some(mac),
        };
        ep.host_ifname = attachment.host_ifname.clone();
        network::link::attach(netns, &attachment).await?;
        Ok(ip)
    }

    /// Reserves the host ports and installs the forwards to `ip` on `net`.
    async fn publish(
        &self,
        rec: &Record,
        up: &mut NetUp,
        net: &NetworkRecord,
        ip: Ipv4Addr,
    ) -> Result<()> {
        let wanted = wanted_ports(&rec.config, &rec.host_config)?;
        if wanted.is_empty() {
            return Ok(());
        }
        let default_ip = self.networks.host_binding(net);
        let mut held = Vec::new();
        let mut forwards = Vec::new();
        for (cport, proto, host_ip, spec) in wanted {
            let hip: Option<Ipv4Addr> = if host_ip.is_empty() {
                default_ip
            } else if host_ip.contains(':') {
                // IPv6 host addresses: berth publishes IPv4 only.
                continue;
            } else {
                Some(host_ip.parse().map_err(|_| {
                    EngineError::InvalidRequest(format!("invalid host IP address: {host_ip}"))
                })?)
            }
            .filter(|a| !a.is_unspecified());
            let candidates = host_ports(&spec)?;
            let mut last_err = None;
            let mut got = None;
            for p in &candidates {
                match network::ports::reserve(proto, hip, *p) {
                    Ok(r) => {
                        got = Some(r);
                        break;
                    }
                    Err(e) => last_err = Some(e),
                }
            }
            let r = match (got, last_err) {
                (Some(r), _) => r,
                (None, Some(e)) => return Err(e.into()),
                (None, None) => {
                    return Err(EngineError::InvalidRequest(format!(
                        "invalid hostPort: {spec}"
                    )));
                }
            };
            up.ports.push(PublishedPort {
                proto: proto_name(proto).into(),
                container_port: cport,
                host_ip: hip.unwrap_or(Ipv4Addr::UNSPECIFIED).to_string(),
                host_port: r.port(),
            });
            forwards.push(PortForward {
                proto,
                host_ip: hip,
                host_port: r.port(),
                container_ip: ip,
                container_port: cport,
                bridge: net.bridge.clone(),
            });
            held.push(r);
        }
        self.networks.publish(&rec.id, forwards, held).await
    }

    /// Tears down what [`Self::net_up`] made for this record (best effort, logged) and clears
    /// the live fields of its endpoints. The veths go in the background (the kernel takes
    /// 15-20 ms per interface, which `run --rm` would otherwise wait for); their addresses
    /// return to the pools only after, so an address is never on the bridge twice.
    /// Returns the networks it left, for the caller's `disconnect` events (moby emits them
    /// after `die`).
    pub(super) async fn net_down(&self, rec: &mut Record) -> Vec<NetworkRecord> {
        self.networks.stop_dns(&rec.id);
        self.networks.unpublish(&rec.id).await;
        let mut gone = Vec::new();
        let mut left = Vec::new();
        for (name, ep) in rec.endpoints.iter_mut() {
            self.networks.dns.remove(name, &rec.id);
            if !ep.ip.is_empty()
                && let Ok(net) = self.networks.get(&ep.network_id)
            {
                left.push(net);
            }
            gone.push((ep.host_ifname.clone(), ep.network_id.clone(), ep.ip()));
            ep.clear_live();
        }
        self.forget_sandbox(rec);
        if gone.is_empty() {
            return left;
        }
        let networks = Arc::clone(&self.networks);
        let id = rec.id.clone();
        tokio::spawn(async move {
            for (ifname, network, ip) in gone {
                if !ifname.is_empty()
                    && let Err(e) = network::link::detach(&ifname).await
                {
                    tracing::debug!(id, error = %e, "veth removal");
                }
                if let Some(ip) = ip {
                    networks.release(&network, ip);
                }
            }
        });
        left
    }

    /// Removes the container's netns file, if berth made one, and clears the live fields.
    pub(super) fn forget_sandbox(&self, rec: &mut Record) {
        if !rec.sandbox_key.is_empty() {
            let p = PathBuf::from(&rec.sandbox_key);
            if p == self.networks.sandbox_path(&rec.id)
                && let Err(e) = network::netns::remove(&p)
            {
                tracing::warn!(id = %rec.id, error = %e, "cannot remove the network namespace");
            }
        }
        rec.sandbox_key.clear();
        rec.ports.clear();
        for ep in rec.endpoints.values_mut() {
            ep.clear_live();
        }
    }

    /// After a berthd restart: takes a running container's addresses, host ports and DNS
    /// server back. Call inside the runtime; the caller applies the firewall once after all.
    pub(super) fn net_restore(&self, rec: &Record) {
        let mut user_nets = Vec::new();
        for ep in rec.endpoints.values() {
            let Some(ip) = ep.ip() else { continue };
            self.networks.reserve(&ep.network_id, ip);
            if let Ok(net) = self.networks.get(&ep.network_id)
                && !net.predefined
            {
                user_nets.push(net.name.clone());
                self.networks
                    .dns
                    .add(&net.name, &rec.id, dns_names(rec, ep), ip);
            }
        }
        if !rec.ports.is_empty() {
            let first = rec
                .endpoints
                .values()
                .find(|e| e.ifname == "eth0")
                .and_then(|e| Some((e.ip()?, self.networks.get(&e.network_id).ok()?)));
            let mut held = Vec::new();
            let mut forwards = Vec::new();
            for p in &rec.ports {
                let proto = if p.proto == "udp" {
                    Proto::Udp
                } else {
                    Proto::Tcp
                };
                let hip: Option<Ipv4Addr> = p
                    .host_ip
                    .parse()
                    .ok()
                    .filter(|a: &Ipv4Addr| !a.is_unspecified());
                match network::ports::reserve(proto, hip, p.host_port) {
                    Ok(r) => held.push(r),
                    Err(e) => {
                        tracing::warn!(id = %rec.id, error = %e, "cannot hold a published port again")
                    }
                }
                if let Some((ip, net)) = &first {
                    forwards.push(PortForward {
                        proto,
                        host_ip: hip,
                        host_port: p.host_port,
                        container_ip: *ip,
                        container_port: p.container_port,
                        bridge: net.bridge.clone(),
                    });
                }
            }
            self.networks.restore_ports(&rec.id, forwards, held);
        }
        if !user_nets.is_empty()
            && !rec.sandbox_key.is_empty()
            && let Err(e) = self.networks.start_dns(
                &rec.id,
                Path::new(&rec.sandbox_key),
                user_nets,
                rec.host_config.dns.as_deref().unwrap_or_default(),
            )
        {
            tracing::warn!(id = %rec.id, error = %e, "cannot restart the embedded DNS server");
        }
    }

    /// `NetworkSettings` of container inspect.
    pub(super) fn network_settings(&self, r: &Record) -> Value {
        let mut networks = serde_json::Map::new();
        for (name, ep) in &r.endpoints {
            networks.insert(name.clone(), endpoint_json(r, ep));
        }
        let bridge = r.endpoints.get("bridge").filter(|_| r.state.running);
        let legacy = |f: &dyn Fn(&Endpoint) -> Value, zero: Value| bridge.map_or(zero, f);
        json!({
            "Bridge": "",
            "SandboxID": if r.sandbox_key.is_empty() { String::new() } else { r.id.clone() },
            "SandboxKey": r.sandbox_key,
            "HairpinMode": false,
            "LinkLocalIPv6Address": "",
            "LinkLocalIPv6PrefixLen": 0,
            "Ports": ports_json(r),
            "SecondaryIPAddresses": Value::Null,
            "SecondaryIPv6Addresses": Value::Null,
            "EndpointID": legacy(&|e| json!(e.endpoint_id), json!("")),
            "Gateway": legacy(&|e| json!(e.gateway), json!("")),
            "GlobalIPv6Address": "",
            "GlobalIPv6PrefixLen": 0,
            "IPAddress": legacy(&|e| json!(e.ip), json!("")),
            "IPPrefixLen": legacy(&|e| json!(e.prefix), json!(0)),
            "IPv6Gateway": "",
            "MacAddress": legacy(&|e| json!(e.mac), json!("")),
            "Networks": networks,
        })
    }

    /// `Ports` and `NetworkSettings` of a `GET /containers/json` item.
    pub(super) fn ps_network(&self, r: &Record) -> (Value, Value) {
        let mut ports = Vec::new();
        if r.state.running {
            let mut published: Vec<&PublishedPort> = r.ports.iter().collect();
            published.sort_by_key(|p| (p.container_port, p.proto.clone()));
            for p in published {
                ports.push(json!({
                    "IP": p.host_ip, "PrivatePort": p.container_port,
                    "PublicPort": p.host_port, "Type": p.proto,
                }));
            }
            for k in r
                .config
                .exposed_ports
                .clone()
                .unwrap_or_default()
                .into_iter()
            {
                let Ok((port, proto)) = parse_port_key(&k) else {
                    continue;
                };
                let name = proto_name(proto);
                if !r
                    .ports
                    .iter()
                    .any(|p| p.container_port == port && p.proto == name)
                {
                    ports.push(json!({"PrivatePort": port, "Type": name}));
                }
            }
        }
        let mut networks = serde_json::Map::new();
        for (name, ep) in &r.endpoints {
            networks.insert(name.clone(), endpoint_json(r, ep));
        }
        (json!(ports), json!({"Networks": networks}))
    }

    /// The containers on network `id` as `network inspect` lists them (running ones).
    pub(crate) fn network_members(&self, id: &str) -> Value {
        let mut out = serde_json::Map::new();
        for c in self.all() {
            let r = c.snapshot();
            if !r.state.running {
                continue;
            }
            for ep in r.endpoints.values().filter(|e| e.network_id == id) {
                if ep.ip.is_empty() {
                    continue;
                }
                out.insert(
                    r.id.clone(),
                    json!({
                        "Name": r.name.trim_start_matches('/'),
                        "EndpointID": ep.endpoint_id,
                        "MacAddress": ep.mac,
                        "IPv4Address": format!("{}/{}", ep.ip, ep.prefix),
                        "IPv6Address": "",
                    }),
                );
            }
        }
        Value::Object(out)
    }

    /// IDs of the running containers attached to network `id`.
    pub(crate) fn network_users(&self, id: &str) -> Vec<String> {
        self.all()
            .into_iter()
            .filter(|c| {
                let r = c.rec();
                r.state.running && r.endpoints.values().any(|e| e.network_id == id)
            })
            .map(|c| c.id.clone())
            .collect()
    }

    /// `POST /networks/{id}/connect`.
    pub(crate) async fn network_connect(
        self: &Arc<Self>,
        network: &str,
        container: &str,
        settings: Option<EndpointSettings>,
    ) -> Result<()> {
        let net = self.networks.get(network)?;
        let ctr = self.get(container)?;
        let _op = ctr.op.lock().await;
        let rec = ctr.snapshot();
        if mode_of(&rec.host_config) != Mode::Bridge || net.driver != BRIDGE {
            return Err(EngineError::Forbidden(
                "container sharing network namespace with another container or host cannot be connected to any other network"
                    .into(),
            ));
        }
        if rec.endpoints.values().any(|e| e.network_id == net.id) {
            return Err(EngineError::Forbidden(format!(
                "endpoint with name {} already exists in network {}",
                rec.name.trim_start_matches('/'),
                net.name
            )));
        }
        let mut ep = Endpoint::from_settings(&net.id, settings.as_ref());
        check_endpoint(&net, &ep)?;
        if rec.state.running && !rec.sandbox_key.is_empty() {
            let index = rec.endpoints.len();
            let ip = self
                .attach_endpoint(Path::new(&rec.sandbox_key), &net, &mut ep, index, false)
                .await;
            let ip = match ip {
                Ok(ip) => ip,
                Err(e) => {
                    if let Some(ip) = ep.ip() {
                        self.networks.release(&net.id, ip);
                    }
                    return Err(e);
                }
            };
            if !net.predefined {
                self.networks
                    .dns
                    .add(&net.name, &rec.id, dns_names(&rec, &ep), ip);
                let scope: Vec<String> = rec
                    .endpoints
                    .keys()
                    .cloned()
                    .chain(std::iter::once(net.name.clone()))
                    .filter(|n| self.networks.get(n).is_ok_and(|n| !n.predefined))
                    .collect();
                if !self.networks.set_dns_scope(&rec.id, scope.clone()) {
                    let started = self.dns_up(&rec, Path::new(&rec.sandbox_key), scope).await;
                    if started.is_err() {
                        tracing::warn!(id = %rec.id, "cannot start the embedded DNS server");
                    }
                }
            }
        }
        {
            let mut r = ctr.rec();
            r.endpoints.insert(net.name.clone(), ep);
            r.save(&self.dirs(&r.id).dir)?;
        }
        self.network_event(&net, "connect", &rec.id);
        Ok(())
    }

    /// `POST /networks/{id}/disconnect`.
    pub(crate) async fn network_disconnect(
        &self,
        network: &str,
        container: &str,
        force: bool,
    ) -> Result<()> {
        let net = match self.networks.get(network) {
            Ok(n) => n,
            Err(e) if !force => return Err(e),
            Err(_) => return Ok(()),
        };
        let ctr = self.get(container)?;
        let _op = ctr.op.lock().await;
        let rec = ctr.snapshot();
        let Some((name, ep)) = rec
            .endpoints
            .iter()
            .find(|(_, e)| e.network_id == net.id)
            .map(|(n, e)| (n.clone(), e.clone()))
        else {
            return Err(EngineError::Forbidden(format!(
                "container {} is not connected to network {}",
                rec.id, net.name
            )));
        };
        if mode_of(&rec.host_config) != Mode::Bridge {
            return Err(EngineError::Forbidden(
                "container cannot be disconnected from host network or connected to host network"
                    .into(),
            ));
        }
        if rec.state.running {
            self.networks.dns.remove(&net.name, &rec.id);
            if !ep.host_ifname.is_empty()
                && let Err(e) = network::link::detach(&ep.host_ifname).await
            {
                tracing::warn!(id = %rec.id, error = %e, "veth removal");
            }
            if let Some(ip) = ep.ip() {
                self.networks.release(&net.id, ip);
            }
            if ep.ifname == "eth0" {
                self.networks.unpublish(&rec.id).await;
            }
            let scope: Vec<String> = rec
                .endpoints
                .keys()
                .filter(|n| *n != &net.name)
                .filter(|n| self.networks.get(n).is_ok_and(|n| !n.predefined))
                .cloned()
                .collect();
            if scope.is_empty() {
                self.networks.stop_dns(&rec.id);
            } else {
                self.networks.set_dns_scope(&rec.id, scope);
            }
        }
        {
            let mut r = ctr.rec();
            r.endpoints.remove(&name);
            if ep.ifname == "eth0" {
                r.ports.clear();
            }
            r.save(&self.dirs(&r.id).dir)?;
        }
        self.network_event(&net, "disconnect", &rec.id);
        Ok(())
    }

    /// A `network` event (`connect`, `disconnect`, `create`, `destroy`).
    pub(crate) fn network_event(&self, net: &NetworkRecord, action: &str, container: &str) {
        let mut a = HashMap::from([
            ("name".to_string(), net.name.clone()),
            ("type".to_string(), net.driver.clone()),
        ]);
        if !container.is_empty() {
            a.insert("container".to_string(), container.to_string());
        }
        self.events
            .emit(crate::events::EventType::NETWORK, action, net.id.clone(), a);
    }
}

/// moby's rules for an endpoint's configuration on `net`.
fn check_endpoint(net: &NetworkRecord, ep: &Endpoint) -> Result<()> {
    if net.driver != BRIDGE {
        return Ok(());
    }
    if !ep.want_ip.is_empty() {
        if net.predefined {
            return Err(EngineError::InvalidRequest(
                "user specified IP address is supported on user defined networks only".into(),
            ));
        }
        if !net.has_user_subnet() {
            return Err(EngineError::InvalidRequest(
                "user specified IP address is supported only when connecting to networks with user configured subnets"
                    .into(),
            ));
        }
        let ip: Ipv4Addr = ep.want_ip.parse().map_err(|_| {
            EngineError::InvalidRequest(format!("invalid IPv4 address: {}", ep.want_ip))
        })?;
        if net.subnet().is_some_and(|s| !s.contains(ip)) {
            return Err(EngineError::InvalidRequest(format!(
                "Invalid address {ip}: It does not belong to any of this network's subnets"
            )));
        }
    }
    if net.predefined && !ep.aliases.is_empty() {
        return Err(EngineError::InvalidRequest(
            "network-scoped alias is supported only for containers in user defined networks".into(),
        ));
    }
    if !ep.want_mac.is_empty() {
        parse_mac(&ep.want_mac)?;
    }
    Ok(())
}

/// `name:alias` (the CLI's form; moby also accepts `/name:/own/alias`).
fn split_link(l: &str) -> (&str, &str) {
    let (name, alias) = l.split_once(':').unwrap_or((l, l));
    let name = name.trim_start_matches('/');
    let alias = alias.rsplit('/').next().unwrap_or(alias);
    (name, alias)
}

/// The names the embedded DNS answers for a container on one network: its name, its short
/// ID, its aliases (moby's `DNSNames`).
fn dns_names(r: &Record, ep: &Endpoint) -> Vec<String> {
    let mut v = vec![
        r.name.trim_start_matches('/').to_string(),
        r.short_id().to_string(),
    ];
    for a in &ep.aliases {
        if !v.contains(a) {
            v.push(a.clone());
        }
    }
    v
}

fn endpoint_json(r: &Record, ep: &Endpoint) -> Value {
    let running = r.state.running && !ep.ip.is_empty();
    let net_is_user = !ep.aliases.is_empty()
        || r.endpoints
            .iter()
            .any(|(n, e)| e == ep && !matches!(n.as_str(), "bridge" | "host" | "none"));
    json!({
        "IPAMConfig": if ep.want_ip.is_empty() { Value::Null } else { json!({"IPv4Address": ep.want_ip}) },
        "Links": if ep.links.is_empty() { Value::Null } else { json!(ep.links) },
        "Aliases": if ep.aliases.is_empty() { Value::Null } else { json!(ep.aliases) },
        "MacAddress": ep.mac,
        "DriverOpts": if ep.driver_opts.is_empty() { Value::Null } else { json!(ep.driver_opts) },
        "GwPriority": ep.gw_priority,
        "NetworkID": ep.network_id,
        "EndpointID": ep.endpoint_id,
        "Gateway": ep.gateway,
        "IPAddress": ep.ip,
        "IPPrefixLen": ep.prefix,
        "IPv6Gateway": "",
        "GlobalIPv6Address": "",
        "GlobalIPv6PrefixLen": 0,
        "DNSNames": if running && net_is_user { json!(dns_names(r, ep)) } else { Value::Null },
    })
}

/// `NetworkSettings.Ports`: exposed ports (null when not published) and published ones.
fn ports_json(r: &Record) -> Value {
    let mut out = serde_json::Map::new();
    if !r.state.running || r.sandbox_key.is_empty() {
        return Value::Object(out);
    }
    for k in r
        .config
        .exposed_ports
        .clone()
        .unwrap_or_default()
        .into_iter()
    {
        if let Ok((port, proto)) = parse_port_key(&k) {
            out.insert(format!("{port}/{}", proto_name(proto)), Value::Null);
        }
    }
    for p in &r.ports {
        let key = format!("{}/{}", p.container_port, p.proto);
        let entry = json!({"HostIp": p.host_ip, "HostPort": p.host_port.to_string()});
        match out.get_mut(&key) {
            Some(Value::Array(a)) => a.push(entry),
            _ => {
                out.insert(key, json!([entry]));
            }
        }
    }
    Value::Object(out)
}

/// `/etc/hosts` for a container with its own files.
pub(crate) fn hosts_file(
    hostname: &str,
    domainname: &str,
    extra_hosts: &[String],
    ips: &[Ipv4Addr],
    links: &[(Ipv4Addr, Vec<String>)],
) -> String {
    let mut hosts = String::from(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n\
         fe00::\tip6-localnet\nff00::\tip6-mcastprefix\nff02::1\tip6-allnodes\n\
         ff02::2\tip6-allrouters\n",
    );
    for extra in extra_hosts {
        // `name:ip` (the CLI's `--add-host name:ip` and `name=ip`).
        let (name, ip) = extra
            .split_once('=')
            .or_else(|| extra.split_once(':'))
            .unwrap_or((extra.as_str(), ""));
        if !ip.is_empty() {
            hosts.push_str(&format!("{ip}\t{name}\n"));
        }
    }
    for (ip, names) in links {
        hosts.push_str(&format!("{ip}\t{}\n", names.join(" ")));
    }
    let names = if domainname.is_empty() {
        hostname.to_string()
    } else {
        format!("{hostname}.{domainname} {hostname}")
    };
    if ips.is_empty() {
        hosts.push_str(&format!("127.0.1.1\t{names}\n"));
    }
    for ip in ips {
        hosts.push_str(&format!("{ip}\t{names}\n"));
    }
    hosts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_parse_as_docker_sends_them() {
        assert_eq!(parse_port_key("80/tcp").unwrap(), (80, Proto::Tcp));
        assert_eq!(parse_port_key("53/udp").unwrap(), (53, Proto::Udp));
        assert_eq!(parse_port_key("8080").unwrap(), (8080, Proto::Tcp));
        assert!(parse_port_key("0/tcp").is_err());
        assert!(parse_port_key("80/sctp").is_err());
        assert_eq!(host_ports("").unwrap(), [0]);
        assert_eq!(host_ports("8080").unwrap(), [8080]);
        assert_eq!(host_ports("8000-8002").unwrap(), [8000, 8001, 8002]);
        assert!(host_ports("9-8").is_err());
        assert!(host_ports("x").is_err());
    }

    #[test]
    fn macs_and_links() {
        let ip: Ipv4Addr = "172.17.0.2".parse().unwrap();
        assert_eq!(mac_string(mac_for(ip)), "02:42:ac:11:00:02");
        assert_eq!(parse_mac("02:42:ac:11:00:02").unwrap(), mac_for(ip));
        assert!(parse_mac("02:42").is_err());
        assert_eq!(split_link("database:db"), ("database", "db"));
        assert_eq!(split_link("/database:/web/db"), ("database", "db"));
        assert_eq!(split_link("redis"), ("redis", "redis"));
    }

    #[test]
    fn link_variables_are_mobys() {
        let rec: Record = serde_json::from_value(json!({
            "id": "a".repeat(64), "name": "/database", "created": "2026-01-01T00:00:00Z",
            "image_id": "sha256:x", "layers": [], "path": "redis-server", "args": [],
            "config": {"ExposedPorts": {"6379/tcp": {}}, "Env": ["PATH=/bin", "REDIS_VERSION=7"]},
            "host_config": {}, "state": {"status": "running", "running": true, "paused": false,
              "restarting": false, "oom_killed": false, "dead": false, "pid": 1, "exit_code": 0,
              "error": "", "started_at": null, "finished_at": null},
            "restart_count": 0, "log_path": "/x"
        }))
        .unwrap();
        let env = link_env("db", "/web", &rec, "172.17.0.3".parse().unwrap());
        assert_eq!(
            env,
            [
                "DB_NAME=/web/db",
                "DB_PORT=tcp://172.17.0.3:6379",
                "DB_PORT_6379_TCP=tcp://172.17.0.3:6379",
                "DB_PORT_6379_TCP_ADDR=172.17.0.3",
                "DB_PORT_6379_TCP_PORT=6379",
                "DB_PORT_6379_TCP_PROTO=tcp",
                "DB_ENV_REDIS_VERSION=7",
            ]
        );
    }

    #[test]
    fn hosts_file_lists_addresses_links_and_extra_hosts() {
        let h = hosts_file(
            "abc",
            "",
            &["gw:10.0.0.1".to_string()],
            &["172.17.0.2".parse().unwrap()],
            &[(
                "172.17.0.3".parse().unwrap(),
                vec!["db".into(), "database".into()],
            )],
        );
        assert!(h.contains("10.0.0.1\tgw\n"), "{h}");
        assert!(h.contains("172.17.0.3\tdb database\n"), "{h}");
        assert!(h.ends_with("172.17.0.2\tabc\n"), "{h}");
        let h = hosts_file("abc", "example.com", &[], &[], &[]);
        assert!(h.ends_with("127.0.1.1\tabc.example.com abc\n"), "{h}");
    }
}
