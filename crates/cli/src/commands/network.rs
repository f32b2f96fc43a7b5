//! `berth network create|ls|inspect|rm|connect|disconnect|prune`, with docker's flags, request
//! bodies, tables and words.
//!
//! `create` checks `--subnet`/`--ip-range`/`--gateway`/`--aux-address` as docker's
//! `createIPAMConfig` does before sending anything; `ls` sorts names naturally and renders the
//! network formatter's fields (`ID`, `Name`, `Driver`, `Scope`, `IPv4`, `IPv6`, `Internal`,
//! `Labels`, `CreatedAt`, `Label`); `inspect` prints the daemon's JSON as it came, indented;
//! `rm` prints each removed name and each error as it happens, then `exit status 1`;
//! `prune` asks docker's question unless `-f`.

use std::collections::HashMap;
use std::net::IpAddr;

use api_types::models::{
    EndpointIpamConfig, EndpointSettings, Ipam, IpamConfig, Network, NetworkConnectRequest,
    NetworkCreateRequest, NetworkDisconnectRequest,
};
use bollard::query_parameters::{ListNetworksOptions, PruneNetworksOptions};
use clap::{ArgAction, Args, Subcommand};

use super::images::confirm;
use super::volume::{natural_cmp, path_escape};
use super::{FORMAT_HELP, parse_filters};
use crate::client::{CliError, Client, is_not_found};
use crate::format::{self, Format, Value};

const DEFAULT_NETWORK_TABLE: &str = "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}";
const QUIET_FORMAT: &str = "{{.ID}}";
const JSON_FORMAT: &str = "{{json .}}";
const PRUNE_WARNING: &str = "WARNING! This will remove all custom networks not used by at least one container.\nAre you sure you want to continue?";

#[derive(Debug, Subcommand)]
pub(crate) enum NetworkCommand {
    /// Connect a container to a network
    Connect(ConnectArgs),
    /// Create a network
    Create(CreateArgs),
    /// Disconnect a container from a network
    Disconnect(DisconnectArgs),
    /// Display detailed information on one or more networks
    Inspect(InspectArgs),
    /// List networks
    #[command(alias = "list")]
    Ls(LsArgs),
    /// Remove all unused networks
    Prune(PruneArgs),
    /// Remove one or more networks
    #[command(alias = "remove")]
    Rm(RmArgs),
}

#[derive(Debug, Args)]
pub(crate) struct CreateArgs {
    /// Enable manual container attachment
    #[arg(long)]
    pub(crate) attachable: bool,
    /// Auxiliary IPv4 or IPv6 addresses used by Network driver
    #[arg(long = "aux-address", value_name = "map")]
    pub(crate) aux_address: Vec<String>,
    /// The network from which to copy the configuration
    #[arg(long = "config-from", value_name = "string")]
    pub(crate) config_from: Option<String>,
    /// Create a configuration only network
    #[arg(long = "config-only")]
    pub(crate) config_only: bool,
    /// Driver to manage the Network
    #[arg(short = 'd', long, value_name = "string", default_value = "bridge")]
    pub(crate) driver: String,
    /// IPv4 or IPv6 Gateway for the master subnet
    #[arg(long, value_name = "strings", value_delimiter = ',')]
    pub(crate) gateway: Vec<String>,
    /// Create swarm routing-mesh network
    #[arg(long)]
    pub(crate) ingress: bool,
    /// Restrict external access to the network
    #[arg(long)]
    pub(crate) internal: bool,
    /// Allocate container ip from a sub-range
    #[arg(long = "ip-range", value_name = "strings", value_delimiter = ',')]
    pub(crate) ip_range: Vec<String>,
    /// IP Address Management Driver
    #[arg(long = "ipam-driver", value_name = "string", default_value = "default")]
    pub(crate) ipam_driver: String,
    /// Set IPAM driver specific options
    #[arg(long = "ipam-opt", value_name = "map")]
    pub(crate) ipam_opt: Vec<String>,
    /// Enable or disable IPv4 address assignment (default true)
    #[arg(
        long,
        action = ArgAction::Set,
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_name = "bool"
    )]
    pub(crate) ipv4: Option<bool>,
    /// Enable or disable IPv6 address assignment
    #[arg(
        long,
        action = ArgAction::Set,
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_name = "bool"
    )]
    pub(crate) ipv6: Option<bool>,
    /// Set metadata on a network
    #[arg(long, value_name = "list")]
    pub(crate) label: Vec<String>,
    /// Set driver specific options
    #[arg(short = 'o', long = "opt", value_name = "map")]
    pub(crate) opt: Vec<String>,
    /// Control the network's scope
    #[arg(long, value_name = "string")]
    pub(crate) scope: Option<String>,
    /// Subnet in CIDR format that represents a network segment
    #[arg(long, value_name = "strings", value_delimiter = ',')]
    pub(crate) subnet: Vec<String>,
    #[arg(value_name = "NETWORK")]
    pub(crate) name: String,
}

#[derive(Debug, Args)]
pub(crate) struct LsArgs {
    /// Provide filter values (e.g. "driver=bridge")
    #[arg(short = 'f', long = "filter", value_name = "filter")]
    pub(crate) filter: Vec<String>,
    #[arg(long, value_name = "string", help = FORMAT_HELP)]
    pub(crate) format: Option<String>,
    /// Do not truncate the output
    #[arg(long = "no-trunc")]
    pub(crate) no_trunc: bool,
    /// Only display network IDs
    #[arg(short = 'q', long)]
    pub(crate) quiet: bool,
}

#[derive(Debug, Args)]
pub(crate) struct InspectArgs {
    /// Format output using a custom template
    #[arg(short = 'f', long, value_name = "string")]
    pub(crate) format: Option<String>,
    /// Verbose output for diagnostics
    #[arg(short = 'v', long)]
    pub(crate) verbose: bool,
    #[arg(value_name = "NETWORK", required = true)]
    pub(crate) names: Vec<String>,
}

#[derive(Debug, Args)]
pub(crate) struct RmArgs {
    /// Do not error if the network does not exist
    #[arg(short = 'f', long)]
    pub(crate) force: bool,
    #[arg(value_name = "NETWORK", required = true)]
    pub(crate) names: Vec<String>,
}

#[derive(Debug, Args)]
pub(crate) struct ConnectArgs {
    /// Add network-scoped alias for the container
    #[arg(long, value_name = "strings", value_delimiter = ',')]
    pub(crate) alias: Vec<String>,
    /// driver options for the network
    #[arg(long = "driver-opt", value_name = "strings", value_delimiter = ',')]
    pub(crate) driver_opt: Vec<String>,
    /// Highest gw-priority provides the default gateway. Accepts positive and negative values.
    #[arg(
        long = "gw-priority",
        value_name = "int",
        allow_negative_numbers = true
    )]
    pub(crate) gw_priority: Option<i64>,
    /// IPv4 address (e.g., "172.30.100.104")
    #[arg(long, value_name = "string")]
    pub(crate) ip: Option<String>,
    /// IPv6 address (e.g., "2001:db8::33")
    #[arg(long, value_name = "string")]
    pub(crate) ip6: Option<String>,
    /// Add link to another container
    #[arg(long, value_name = "list")]
    pub(crate) link: Vec<String>,
    /// Add a link-local address for the container
    #[arg(long = "link-local-ip", value_name = "strings", value_delimiter = ',')]
    pub(crate) link_local_ip: Vec<String>,
    #[arg(value_name = "NETWORK")]
    pub(crate) network: String,
    #[arg(value_name = "CONTAINER")]
    pub(crate) container: String,
}

#[derive(Debug, Args)]
pub(crate) struct DisconnectArgs {
    /// Force the container to disconnect from a network
    #[arg(short = 'f', long)]
    pub(crate) force: bool,
    #[arg(value_name = "NETWORK")]
    pub(crate) network: String,
    #[arg(value_name = "CONTAINER")]
    pub(crate) container: String,
}

#[derive(Debug, Args)]
pub(crate) struct PruneArgs {
    /// Provide filter values (e.g. "until=<timestamp>")
    #[arg(long = "filter", value_name = "filter")]
    pub(crate) filter: Vec<String>,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    pub(crate) force: bool,
}

/// `network prune`'s checks and question, before connecting (as docker does). False: cancelled.
pub(crate) fn prune_confirmed(args: &PruneArgs) -> Result<bool, CliError> {
    parse_filters(&args.filter)?;
    if args.force {
        return Ok(true);
    }
    confirm(PRUNE_WARNING)
}

/// Runs one `network` subcommand.
pub(crate) async fn run(client: &Client, cmd: NetworkCommand) -> Result<(), CliError> {
    match cmd {
        NetworkCommand::Connect(a) => connect(client, a).await,
        NetworkCommand::Create(a) => create(client, a).await,
        NetworkCommand::Disconnect(a) => disconnect(client, a).await,
        NetworkCommand::Inspect(a) => inspect(client, &a).await,
        NetworkCommand::Ls(a) => list(client, &a).await,
        NetworkCommand::Prune(a) => prune(client, &a).await,
        NetworkCommand::Rm(a) => remove(client, &a).await,
    }
}

/// `k=v` flag values as a map (docker's `MapOpts`/`ListOpts` without a validator: `k` alone is
/// `k=""`).
fn key_values(values: &[String]) -> HashMap<String, String> {
    values
        .iter()
        .map(|o| {
            let (k, v) = o.split_once('=').unwrap_or((o.as_str(), ""));
            (k.to_string(), v.to_string())
        })
        .collect()
}

/// `--label` values (docker's `ValidateLabel`: the key may not be empty).
fn labels(values: &[String]) -> Result<HashMap<String, String>, CliError> {
    for l in values {
        let k = l.split_once('=').map_or(l.as_str(), |(k, _)| k);
        if k.trim().is_empty() {
            return Err(CliError::Usage(format!(
                "invalid argument \"{l}\" for \"--label\" flag: invalid label '{l}': empty name"
            )));
        }
    }
    Ok(key_values(values))
}

/// The create request from the flags (docker's `runCreate`).
fn create_request(args: CreateArgs) -> Result<NetworkCreateRequest, CliError> {
    let labels = labels(&args.label)?;
    let aux = args
        .aux_address
        .iter()
        .map(|a| {
            let (k, v) = a.split_once('=').unwrap_or((a.as_str(), ""));
            (k.to_string(), v.to_string())
        })
        .collect::<Vec<_>>();
    let config = ipam_config(&args.subnet, &args.ip_range, &args.gateway, &aux)?;
    Ok(NetworkCreateRequest {
        name: args.name,
        driver: Some(args.driver),
        scope: Some(args.scope.unwrap_or_default()),
        internal: Some(args.internal),
        attachable: Some(args.attachable),
        ingress: Some(args.ingress),
        config_only: Some(args.config_only),
        config_from: args.config_from.filter(|n| !n.is_empty()).map(|network| {
            api_types::models::ConfigReference {
                network: Some(network),
            }
        }),
        ipam: Some(Ipam {
            driver: Some(args.ipam_driver),
            config: Some(config),
            options: Some(key_values(&args.ipam_opt)),
        }),
        enable_ipv4: args.ipv4,
        enable_ipv6: args.ipv6,
        options: Some(key_values(&args.opt)),
        labels: Some(labels),
    })
}

/// A parsed CIDR: the address as written and the prefix length.
fn parse_cidr(s: &str) -> Result<(IpAddr, u8), String> {
    let bad = || format!("invalid CIDR address: {s}");
    let (ip, len) = s.split_once('/').ok_or_else(bad)?;
    let ip: IpAddr = ip.parse().map_err(|_| bad())?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    if len.is_empty() || len.len() > 3 || !len.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let len: u8 = len.parse().map_err(|_| bad())?;
    if len > max {
        return Err(bad());
    }
    Ok((ip, len))
}

/// Whether `ip` lies in `net/len` (same family only, as Go's `IPNet.Contains` for these).
fn contains(net: IpAddr, len: u8, ip: IpAddr) -> bool {
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(i)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
            u32::from(n) & mask == u32::from(i) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(i)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
            u128::from(n) & mask == u128::from(i) & mask
        }
        _ => false,
    }
}

/// docker's `subnetMatches`: whether `data` (an address or a CIDR) lies in `subnet`.
fn subnet_matches(subnet: &str, data: &str) -> Result<bool, CliError> {
    let (net, len) =
        parse_cidr(subnet).map_err(|e| CliError::Message(format!("invalid subnet: {e}")))?;
    let ip = if data.contains('/') {
        parse_cidr(data).map_err(CliError::Message)?.0
    } else {
        match data.parse::<IpAddr>() {
            Ok(ip) => ip,
            Err(_) => return Ok(false),
        }
    };
    Ok(contains(net, len, ip))
}

/// docker's `createIPAMConfig`: one entry per subnet (in flag order), each range, gateway and
/// auxiliary address placed in the subnet that holds it.
fn ipam_config(
    subnets: &[String],
    ranges: &[String],
    gateways: &[String],
    aux: &[(String, String)],
) -> Result<Vec<IpamConfig>, CliError> {
    if subnets.len() < ranges.len() || subnets.len() < gateways.len() {
        return Err(CliError::Message(
            "every ip-range or gateway must have a corresponding subnet".into(),
        ));
    }
    let mut configs: Vec<IpamConfig> = Vec::new();
    for s in subnets {
        for c in &configs {
            let k = c.subnet.as_deref().unwrap_or_default();
            if subnet_matches(s, k)? || subnet_matches(k, s)? {
                return Err(CliError::Message(
                    "multiple overlapping subnet configuration is not supported".into(),
                ));
            }
        }
        configs.push(IpamConfig {
            subnet: Some(s.clone()),
            ..Default::default()
        });
    }
    for r in ranges {
        let mut matched = false;
        for c in configs.iter_mut() {
            let s = c.subnet.clone().unwrap_or_default();
            if !subnet_matches(&s, r)? {
                continue;
            }
            if let Some(old) = c.ip_range.as_deref().filter(|o| !o.is_empty()) {
                return Err(CliError::Message(format!(
                    "cannot configure multiple ranges ({r}, {old}) on the same subnet ({s})"
                )));
            }
            c.ip_range = Some(r.clone());
            matched = true;
        }
        if !matched {
            return Err(CliError::Message(format!(
                "no matching subnet for range {r}"
            )));
        }
    }
    for g in gateways {
        let mut matched = false;
        for c in configs.iter_mut() {
            let s = c.subnet.clone().unwrap_or_default();
            if !subnet_matches(&s, g)? {
                continue;
            }
            if let Some(old) = c.gateway.as_deref().filter(|o| !o.is_empty()) {
                return Err(CliError::Message(format!(
                    "cannot configure multiple gateways ({g}, {old}) for the same subnet ({s})"
                )));
            }
            c.gateway = Some(g.clone());
            matched = true;
        }
        if !matched {
            return Err(CliError::Message(format!(
                "no matching subnet for gateway {g}"
            )));
        }
    }
    for (key, addr) in aux {
        let mut matched = false;
        for c in configs.iter_mut() {
            let s = c.subnet.clone().unwrap_or_default();
            if !subnet_matches(&s, addr)? {
                continue;
            }
            c.auxiliary_addresses
                .get_or_insert_with(HashMap::new)
                .insert(key.clone(), addr.clone());
            matched = true;
        }
        if !matched {
            return Err(CliError::Message(format!(
                "no matching subnet for aux-address {addr}"
            )));
        }
    }
    Ok(configs)
}

async fn create(client: &Client, args: CreateArgs) -> Result<(), CliError> {
    let req = create_request(args)?;
    let r = client
        .docker
        .create_network(req)
        .await
        .map_err(|e| client.error(e))?;
    println!("{}", r.id);
    Ok(())
}

async fn inspect(client: &Client, args: &InspectArgs) -> Result<(), CliError> {
    let query = if args.verbose { "?verbose=1" } else { "" };
    let paths = args
        .names
        .iter()
        .map(|n| format!("/networks/{}{query}", path_escape(n)))
        .collect();
    super::inspect_paths(client, paths, args.format.as_deref()).await
}

async fn list(client: &Client, args: &LsArgs) -> Result<(), CliError> {
    let filters = parse_filters(&args.filter)?;
    let opts = ListNetworksOptions {
        filters: (!filters.is_empty()).then_some(filters),
    };
    let nets = client
        .docker
        .list_networks(Some(opts))
        .await
        .map_err(|e| client.error(e))?;
    print!("{}", render_networks(nets, args)?);
    Ok(())
}

/// The `network ls` output for these networks (no daemon needed; used by tests).
pub(crate) fn render_networks(mut nets: Vec<Network>, args: &LsArgs) -> Result<String, CliError> {
    nets.sort_by(|a, b| {
        natural_cmp(
            a.name.as_deref().unwrap_or_default(),
            b.name.as_deref().unwrap_or_default(),
        )
    });
    let source = args.format.as_deref().unwrap_or("");
    let fmt = match source {
        "" | "table" if args.quiet => QUIET_FORMAT,
        "" | "table" => DEFAULT_NETWORK_TABLE,
        "json" => JSON_FORMAT,
        f => f,
    };
    let fmt = Format::new(fmt, DEFAULT_NETWORK_TABLE)?;
    let rows: Vec<Value> = nets
        .iter()
        .map(|n| network_row(n, args.no_trunc))
        .collect::<Result<_, _>>()?;
    Ok(fmt.render_rows(&network_header(), &rows)?)
}

fn network_header() -> Value {
    Value::str_obj([
        ("CreatedAt", "CREATED AT".into()),
        ("Driver", "DRIVER".into()),
        ("ID", "NETWORK ID".into()),
        ("IPv4", "IPV4".into()),
        ("IPv6", "IPV6".into()),
        ("Internal", "INTERNAL".into()),
        ("Labels", "LABELS".into()),
        ("Name", "NAME".into()),
        ("Scope", "SCOPE".into()),
    ])
}

/// One network as docker's network formatter shows it (fields in `--format json` order).
fn network_row(n: &Network, no_trunc: bool) -> Result<Value, CliError> {
    let id = n.id.clone().unwrap_or_default();
    let id = if no_trunc {
        id
    } else {
        format::truncate_id(&id)
    };
    let mut labels: Vec<(String, String)> =
        n.labels.clone().unwrap_or_default().into_iter().collect();
    labels.sort();
    let labels_text = labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    // `Created` is an RFC 3339 string on the wire whatever type bollard gives it.
    let created = match Value::from_serialize(&n.created)? {
        Value::Str(s) => s,
        _ => String::new(),
    };
    let mut row = match Value::str_obj([
        ("CreatedAt", go_time_string_rfc3339(&created)),
        ("Driver", n.driver.clone().unwrap_or_default()),
        ("ID", id),
        ("IPv4", n.enable_ipv4.unwrap_or(false).to_string()),
        ("IPv6", n.enable_ipv6.unwrap_or(false).to_string()),
        ("Internal", n.internal.unwrap_or(false).to_string()),
        ("Labels", labels_text),
        ("Name", n.name.clone().unwrap_or_default()),
        ("Scope", n.scope.clone().unwrap_or_default()),
    ]) {
        Value::Obj(pairs) => pairs,
        _ => Vec::new(),
    };
    row.push((
        "Label()".to_string(),
        Value::Obj(
            labels
                .into_iter()
                .map(|(k, v)| (k, Value::Str(v)))
                .collect(),
        ),
    ));
    Ok(Value::Obj(row))
}

/// Go's `time.Time.String()` (local zone, nanoseconds without trailing zeros) for an RFC 3339
/// timestamp; Go's zero time when it can't be read.
fn go_time_string_rfc3339(s: &str) -> String {
    let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) else {
        return "0001-01-01 00:00:00 +0000 UTC".to_string();
    };
    let t = t.with_timezone(&chrono::Local);
    let nanos = t.timestamp_subsec_nanos();
    let frac = if nanos == 0 {
        String::new()
    } else {
        format!(".{nanos:09}").trim_end_matches('0').to_string()
    };
    let offset = t.format("%z").to_string();
    let zone = if offset == "+0000" {
        "UTC".to_string()
    } else {
        offset.clone()
    };
    format!("{}{frac} {offset} {zone}", t.format("%Y-%m-%d %H:%M:%S"))
}

/// `network rm`: each name removed is printed; each failure is printed on stderr as it
/// happens (a missing network is no failure with `-f`), then docker's `exit status 1`.
async fn remove(client: &Client, args: &RmArgs) -> Result<(), CliError> {
    let mut failed = false;
    for name in &args.names {
        match client.docker.remove_network(name).await {
            Ok(()) => println!("{name}"),
            Err(e) if args.force && is_not_found(&e) => {}
            Err(e) => {
                eprintln!("{}", client.error(e));
                failed = true;
            }
        }
    }
    if failed {
        Err(CliError::Status {
            code: 1,
            message: "exit status 1".into(),
        })
    } else {
        Ok(())
    }
}

/// docker's `ParseLink` check for `--link`.
fn check_link(link: &str) -> Result<(), CliError> {
    let bad = |why: String| {
        CliError::Usage(format!(
            "invalid argument \"{link}\" for \"--link\" flag: {why}"
        ))
    };
    if link.is_empty() {
        return Err(bad("empty string specified for links".into()));
    }
    if link.splitn(3, ':').count() > 2 {
        return Err(bad(format!("bad format for links: {link}")));
    }
    Ok(())
}

/// The connect request from the flags (docker's `runConnect`).
fn connect_request(args: ConnectArgs) -> Result<NetworkConnectRequest, CliError> {
    for l in &args.link {
        check_link(l)?;
    }
    let mut driver_opts = HashMap::new();
    for o in &args.driver_opt {
        let Some((k, v)) = o.split_once('=') else {
            return Err(CliError::Message(
                "invalid key/value pair format in driver options".into(),
            ));
        };
        driver_opts.insert(k.trim().to_string(), v.trim().to_string());
    }
    let nonempty = |s: Option<String>| s.filter(|v| !v.is_empty());
    Ok(NetworkConnectRequest {
        container: args.container,
        endpoint_config: Some(EndpointSettings {
            ipam_config: Some(EndpointIpamConfig {
                ipv4_address: nonempty(args.ip),
                ipv6_address: nonempty(args.ip6),
                link_local_ips: (!args.link_local_ip.is_empty()).then_some(args.link_local_ip),
            }),
            links: (!args.link.is_empty()).then_some(args.link),
            aliases: Some(args.alias),
            driver_opts: Some(driver_opts),
            gw_priority: Some(args.gw_priority.unwrap_or(0)),
            ..Default::default()
        }),
    })
}

async fn connect(client: &Client, args: ConnectArgs) -> Result<(), CliError> {
    let network = args.network.clone();
    let req = connect_request(args)?;
    client
        .docker
        .connect_network(&network, req)
        .await
        .map_err(|e| client.error(e))
}

async fn disconnect(client: &Client, args: DisconnectArgs) -> Result<(), CliError> {
    let req = NetworkDisconnectRequest {
        container: args.container,
        force: Some(args.force),
    };
    client
        .docker
        .disconnect_network(&args.network, req)
        .await
        .map_err(|e| client.error(e))
}

/// What `network prune` prints for the deleted names (nothing when none).
fn prune_output(deleted: &[String]) -> String {
    if deleted.is_empty() {
        return String::new();
    }
    let mut out = String::from("Deleted Networks:\n");
    for d in deleted {
        out.push_str(d);
        out.push('\n');
    }
    // docker prints the block with Println: one more newline.
    out.push('\n');
    out
}

async fn prune(client: &Client, args: &PruneArgs) -> Result<(), CliError> {
    let filters = parse_filters(&args.filter)?;
    let r = client
        .docker
        .prune_networks(Some(PruneNetworksOptions {
            filters: (!filters.is_empty()).then_some(filters),
        }))
        .await
        .map_err(|e| client.error(e))?;
    print!("{}", prune_output(&r.networks_deleted.unwrap_or_default()));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn net(name: &str, id: &str, driver: &str, labels: &[(&str, &str)]) -> Network {
        Network {
            name: Some(name.into()),
            id: Some(id.into()),
            driver: Some(driver.into()),
            scope: Some("local".into()),
            enable_ipv6: Some(false),
            internal: Some(driver == "bridge" && name.ends_with("int")),
            labels: Some(
                labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            ..Default::default()
        }
    }

    fn ls(format: Option<&str>, quiet: bool, no_trunc: bool) -> LsArgs {
        LsArgs {
            filter: Vec::new(),
            format: format.map(String::from),
            no_trunc,
            quiet,
        }
    }

    fn sample() -> Vec<Network> {
        vec![
            net("none", &"4dd8430684ee".repeat(5), "null", &[]),
            net("net10", &"a66b6847818d".repeat(5), "bridge", &[]),
            net(
                "net2",
                &"30c8fd1921f5".repeat(5),
                "bridge",
                &[("c", ""), ("a", "b")],
            ),
            net("host", &"1dda94e70aca".repeat(5), "host", &[]),
        ]
    }

    #[test]
    fn default_table_like_docker() {
        let out = render_networks(sample(), &ls(None, false, false)).unwrap();
        assert_eq!(
            out,
            "NETWORK ID     NAME      DRIVER    SCOPE\n\
             1dda94e70aca   host      host      local\n\
             30c8fd1921f5   net2      bridge    local\n\
             a66b6847818d   net10     bridge    local\n\
             4dd8430684ee   none      null      local\n"
        );
        let out = render_networks(sample(), &ls(None, true, false)).unwrap();
        assert_eq!(
            out,
            "1dda94e70aca\n30c8fd1921f5\na66b6847818d\n4dd8430684ee\n"
        );
        let out = render_networks(sample(), &ls(None, true, true)).unwrap();
        assert!(out.starts_with(&format!("{}\n", "1dda94e70aca".repeat(5))));
    }

    #[test]
    fn formats_like_docker() {
        let mut nets = sample();
        nets[2].created = serde_json::from_str("\"2026-11-24T01:37:02.581377201Z\"").unwrap();
        let out = render_networks(
            vec![nets[2].clone()],
            &ls(
                Some("{{.Name}}|{{.Labels}}|{{.Label \"a\"}}|{{.IPv6}}|{{.Internal}}|{{.IPv4}}"),
                false,
                false,
            ),
        )
        .unwrap();
        assert_eq!(out, "net2|a=b,c=|b|false|false|false\n");
        let out = render_networks(vec![nets[2].clone()], &ls(Some("json"), false, false)).unwrap();
        assert!(
            out.starts_with("{\"CreatedAt\":\"")
                && out.ends_with(
                    "\"Driver\":\"bridge\",\"ID\":\"30c8fd1921f5\",\"IPv4\":\"false\",\"IPv6\":\"false\",\"Internal\":\"false\",\"Labels\":\"a=b,c=\",\"Name\":\"net2\",\"Scope\":\"local\"}\n"
                ),
            "{out}"
        );
        let out = render_networks(
            vec![nets[0].clone()],
            &ls(Some("table {{.Name}}\t{{.Label \"a\"}}"), false, false),
        )
        .unwrap();
        assert_eq!(out, "NAME      a\nnone      \n");
    }

    #[test]
    fn go_time_strings() {
        // The tests run with whatever TZ the machine has; compare in UTC when it is UTC.
        let s = go_time_string_rfc3339("2026-11-24T01:37:02.581377201Z");
        if chrono::Local::now().offset().local_minus_utc() == 0 {
            assert_eq!(s, "2026-11-24 01:37:02.581377201 +0000 UTC");
            assert_eq!(
                go_time_string_rfc3339("2026-11-24T01:37:02.5Z"),
                "2026-11-24 01:37:02.5 +0000 UTC"
            );
            assert_eq!(
                go_time_string_rfc3339("2026-11-24T01:37:02Z"),
                "2026-11-24 01:37:02 +0000 UTC"
            );
        }
        assert_eq!(go_time_string_rfc3339(""), "0001-01-01 00:00:00 +0000 UTC");
    }

    fn create_args(extra: &[&str]) -> CreateArgs {
        #[derive(Parser)]
        struct P {
            #[command(flatten)]
            a: CreateArgs,
        }
        let mut argv = vec!["create"];
        argv.extend_from_slice(extra);
        P::try_parse_from(argv).unwrap().a
    }

    #[test]
    fn create_request_like_docker() {
        let req = create_request(create_args(&["mynet"])).unwrap();
        let body = serde_json::to_value(&req).unwrap();
        assert_eq!(body["Name"], "mynet");
        assert_eq!(body["Driver"], "bridge");
        assert_eq!(body["Scope"], "");
        assert_eq!(body["IPAM"]["Driver"], "default");
        assert_eq!(body["IPAM"]["Config"], serde_json::json!([]));
        assert_eq!(body["Internal"], false);
        assert_eq!(body["Attachable"], false);
        assert_eq!(body["Options"], serde_json::json!({}));
        assert_eq!(body["Labels"], serde_json::json!({}));
        assert!(body.get("EnableIPv6").is_none());

        let req = create_request(create_args(&[
            "-d",
            "bridge",
            "--subnet",
            "10.251.1.0/24",
            "--gateway",
            "10.251.1.1",
            "--ip-range",
            "10.251.1.128/25",
            "--internal",
            "--attachable",
            "--label",
            "a=b",
            "--label",
            "c",
            "-o",
            "com.docker.network.bridge.name=br-x",
            "--ipv6",
            "n1",
        ]))
        .unwrap();
        assert_eq!(req.enable_ipv6, Some(true));
        assert_eq!(req.internal, Some(true));
        assert_eq!(req.attachable, Some(true));
        let labels = req.labels.unwrap();
        assert_eq!(labels["a"], "b");
        assert_eq!(labels["c"], "");
        assert_eq!(
            req.options.unwrap()["com.docker.network.bridge.name"],
            "br-x"
        );
        let cfg = req.ipam.unwrap().config.unwrap();
        assert_eq!(cfg.len(), 1);
        assert_eq!(cfg[0].subnet.as_deref(), Some("10.251.1.0/24"));
        assert_eq!(cfg[0].gateway.as_deref(), Some("10.251.1.1"));
        assert_eq!(cfg[0].ip_range.as_deref(), Some("10.251.1.128/25"));
        assert!(cfg[0].auxiliary_addresses.is_none());

        let req = create_request(create_args(&["--ipv6=false", "n"])).unwrap();
        assert_eq!(req.enable_ipv6, Some(false));
    }

    #[test]
    fn ipam_checks_like_docker() {
        let err = |a: &[&str]| create_request(create_args(a)).unwrap_err().to_string();
        assert_eq!(
            err(&["--subnet", "10.0.0.0/8", "--subnet", "10.1.0.0/16", "x"]),
            "multiple overlapping subnet configuration is not supported"
        );
        assert_eq!(
            err(&["--gateway", "10.1.1.1", "x"]),
            "every ip-range or gateway must have a corresponding subnet"
        );
        assert_eq!(
            err(&["--subnet", "10.9.0.0/16", "--gateway", "10.1.1.1", "x"]),
            "no matching subnet for gateway 10.1.1.1"
        );
        assert_eq!(
            err(&["--subnet", "10.9.0.0/16", "--ip-range", "10.8.0.0/24", "x"]),
            "no matching subnet for range 10.8.0.0/24"
        );
        assert_eq!(
            err(&["--subnet", "bogus", "--gateway", "10.1.1.1", "x"]),
            "invalid subnet: invalid CIDR address: bogus"
        );
        assert_eq!(
            err(&[
                "--subnet",
                "10.9.0.0/16",
                "--aux-address",
                "h=10.1.0.5",
                "x"
            ]),
            "no matching subnet for aux-address 10.1.0.5"
        );
        assert_eq!(
            err(&["--label", "=x", "x"]),
            "invalid argument \"=x\" for \"--label\" flag: invalid label '=x': empty name"
        );
        // A lone bogus subnet is the daemon's to refuse.
        assert!(create_request(create_args(&["--subnet", "bogus", "x"])).is_ok());
        // Two subnets (comma list), a gateway in the second, an aux address; IPv6 too.
        let req = create_request(create_args(&[
            "--subnet",
            "10.1.0.0/16,fd00:1::/64",
            "--gateway",
            "fd00:1::1",
            "--aux-address",
            "host=10.1.0.5",
            "x",
        ]))
        .unwrap();
        let cfg = req.ipam.unwrap().config.unwrap();
        assert_eq!(cfg[0].subnet.as_deref(), Some("10.1.0.0/16"));
        assert_eq!(cfg[0].gateway, None);
        assert_eq!(
            cfg[0].auxiliary_addresses.as_ref().unwrap()["host"],
            "10.1.0.5"
        );
        assert_eq!(cfg[1].gateway.as_deref(), Some("fd00:1::1"));
    }

    #[test]
    fn cidr_math() {
        let (n, l) = parse_cidr("172.18.0.0/16").unwrap();
        assert!(contains(n, l, "172.18.255.1".parse().unwrap()));
        assert!(!contains(n, l, "172.19.0.1".parse().unwrap()));
        let (n, l) = parse_cidr("0.0.0.0/0").unwrap();
        assert!(contains(n, l, "8.8.8.8".parse().unwrap()));
        assert!(!contains(n, l, "::1".parse().unwrap()));
        assert!(parse_cidr("10.0.0.0/33").is_err());
        assert!(parse_cidr("10.0.0.0").is_err());
        assert!(parse_cidr("10.0.0.0/+8").is_err());
    }

    fn connect_args(extra: &[&str]) -> ConnectArgs {
        #[derive(Parser)]
        struct P {
            #[command(flatten)]
            a: ConnectArgs,
        }
        let mut argv = vec!["connect"];
        argv.extend_from_slice(extra);
        P::try_parse_from(argv).unwrap().a
    }

    #[test]
    fn connect_request_like_docker() {
        let req = connect_request(connect_args(&["mynet", "web"])).unwrap();
        let body = serde_json::to_value(&req).unwrap();
        assert_eq!(body["Container"], "web");
        assert_eq!(body["EndpointConfig"]["IPAMConfig"], serde_json::json!({}));
        assert_eq!(body["EndpointConfig"]["Aliases"], serde_json::json!([]));
        assert_eq!(body["EndpointConfig"]["DriverOpts"], serde_json::json!({}));
        assert_eq!(body["EndpointConfig"]["GwPriority"], 0);
        assert!(body["EndpointConfig"].get("Links").is_none());

        let req = connect_request(connect_args(&[
            "--alias",
            "a1",
            "--alias",
            "a2,a3",
            "--ip",
            "172.30.0.9",
            "--link",
            "db:database",
            "--driver-opt",
            "k=v",
            "--gw-priority",
            "-5",
            "mynet",
            "web",
        ]))
        .unwrap();
        let ep = req.endpoint_config.unwrap();
        assert_eq!(ep.aliases.unwrap(), vec!["a1", "a2", "a3"]);
        assert_eq!(
            ep.ipam_config.unwrap().ipv4_address.as_deref(),
            Some("172.30.0.9")
        );
        assert_eq!(ep.links.unwrap(), vec!["db:database"]);
        assert_eq!(ep.driver_opts.unwrap()["k"], "v");
        assert_eq!(ep.gw_priority, Some(-5));

        let e = connect_request(connect_args(&["--link", "a:b:c", "n", "c"])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid argument \"a:b:c\" for \"--link\" flag: bad format for links: a:b:c"
        );
        assert_eq!(e.exit_code(), 125);
        let e = connect_request(connect_args(&["--driver-opt", "novalue", "n", "c"])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid key/value pair format in driver options"
        );
    }

    #[test]
    fn prune_output_like_docker() {
        assert_eq!(prune_output(&[]), "");
        assert_eq!(
            prune_output(&["n1".into(), "n2".into()]),
            "Deleted Networks:\nn1\nn2\n\n"
        );
    }
}
