//! `create`/`run` flags and their mapping onto the create request body, as docker's
//! `cli/command/container/opts.go` builds it.

use std::collections::HashMap;

use api_types::models::{
    ContainerCreateBody, EndpointIpamConfig, EndpointSettings, HostConfig, HostConfigLogConfig,
    Mount, MountBindOptions, MountBindOptionsPropagationEnum, MountTmpfsOptions, MountType,
    MountVolumeOptions, MountVolumeOptionsDriverConfig, NetworkingConfig, PortBinding, PortMap,
    ResourcesUlimits, RestartPolicy, RestartPolicyNameEnum,
};
use clap::{ArgAction, Args};

use crate::client::CliError;

/// The flags `create` and `run` share.
#[derive(Debug, Args, Default, Clone)]
pub(crate) struct ContainerOpts {
    /// Attach to STDIN, STDOUT or STDERR
    #[arg(short = 'a', long = "attach", value_name = "list")]
    pub(crate) attach: Vec<String>,
    /// Block IO (relative weight), between 10 and 1000, or 0 to disable (default 0)
    #[arg(long = "blkio-weight", value_name = "uint16")]
    pub(crate) blkio_weight: Option<u16>,
    /// Add Linux capabilities
    #[arg(long = "cap-add", value_name = "list")]
    pub(crate) cap_add: Vec<String>,
    /// Drop Linux capabilities
    #[arg(long = "cap-drop", value_name = "list")]
    pub(crate) cap_drop: Vec<String>,
    /// CPU shares (relative weight)
    #[arg(short = 'c', long = "cpu-shares", value_name = "int")]
    pub(crate) cpu_shares: Option<i64>,
    /// Number of CPUs
    #[arg(long = "cpus", value_name = "decimal")]
    pub(crate) cpus: Option<String>,
    /// CPUs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-cpus", value_name = "string")]
    pub(crate) cpuset_cpus: Option<String>,
    /// Overwrite the default ENTRYPOINT of the image
    #[arg(long, value_name = "string")]
    pub(crate) entrypoint: Option<String>,
    /// Set environment variables
    #[arg(short = 'e', long = "env", value_name = "list")]
    pub(crate) env: Vec<String>,
    /// Read in a file of environment variables
    #[arg(long = "env-file", value_name = "list")]
    pub(crate) env_file: Vec<String>,
    /// Expose a port or a range of ports
    #[arg(long, value_name = "list")]
    pub(crate) expose: Vec<String>,
    /// Add additional groups to join
    #[arg(long = "group-add", value_name = "list")]
    pub(crate) group_add: Vec<String>,
    /// Container host name
    #[arg(short = 'h', long, value_name = "string")]
    pub(crate) hostname: Option<String>,
    /// Run an init inside the container that forwards signals and reaps processes
    #[arg(long)]
    pub(crate) init: bool,
    /// Keep STDIN open even if not attached
    #[arg(short = 'i', long)]
    pub(crate) interactive: bool,
    /// Set meta data on a container
    #[arg(short = 'l', long = "label", value_name = "list")]
    pub(crate) label: Vec<String>,
    /// Read in a line delimited file of labels
    #[arg(long = "label-file", value_name = "list")]
    pub(crate) label_file: Vec<String>,
    /// Logging driver for the container
    #[arg(long = "log-driver", value_name = "string")]
    pub(crate) log_driver: Option<String>,
    /// Log driver options
    #[arg(long = "log-opt", value_name = "list")]
    pub(crate) log_opt: Vec<String>,
    /// Memory limit
    #[arg(short = 'm', long, value_name = "bytes")]
    pub(crate) memory: Option<String>,
    /// Swap limit equal to memory plus swap: '-1' to enable unlimited swap
    #[arg(long = "memory-swap", value_name = "bytes", allow_hyphen_values = true)]
    pub(crate) memory_swap: Option<String>,
    /// Attach a filesystem mount to the container
    #[arg(long, value_name = "mount")]
    pub(crate) mount: Vec<String>,
    /// Assign a name to the container
    #[arg(long, value_name = "string")]
    pub(crate) name: Option<String>,
    /// Connect a container to a network
    #[arg(long, alias = "net", value_name = "network")]
    pub(crate) network: Option<String>,
    /// Add network-scoped alias for the container
    #[arg(long = "network-alias", alias = "net-alias", value_name = "list")]
    pub(crate) network_alias: Vec<String>,
    /// IPv4 address (e.g., 172.30.100.104)
    #[arg(long = "ip", value_name = "string")]
    pub(crate) ip: Option<String>,
    /// Container MAC address (e.g., 92:d0:c6:0a:29:33)
    #[arg(long = "mac-address", value_name = "string")]
    pub(crate) mac_address: Option<String>,
    /// Add link to another container
    #[arg(long = "link", value_name = "list")]
    pub(crate) link: Vec<String>,
    /// Set custom DNS servers
    #[arg(long = "dns", value_name = "list")]
    pub(crate) dns: Vec<String>,
    /// Set custom DNS search domains
    #[arg(long = "dns-search", value_name = "list")]
    pub(crate) dns_search: Vec<String>,
    /// Set DNS options
    #[arg(long = "dns-option", alias = "dns-opt", value_name = "list")]
    pub(crate) dns_option: Vec<String>,
    /// Add a custom host-to-IP mapping (host:ip)
    #[arg(long = "add-host", value_name = "list")]
    pub(crate) add_host: Vec<String>,
    /// Container NIS domain name
    #[arg(long, value_name = "string")]
    pub(crate) domainname: Option<String>,
    /// Tune container pids limit (set -1 for unlimited)
    #[arg(long = "pids-limit", value_name = "int", allow_hyphen_values = true)]
    pub(crate) pids_limit: Option<i64>,
    /// Set platform if server is multi-platform capable
    #[arg(long, value_name = "string")]
    pub(crate) platform: Option<String>,
    /// Give extended privileges to this container
    #[arg(long)]
    pub(crate) privileged: bool,
    /// Publish a container's port(s) to the host
    #[arg(short = 'p', long = "publish", value_name = "list")]
    pub(crate) publish: Vec<String>,
    /// Publish all exposed ports to random ports
    #[arg(short = 'P', long = "publish-all")]
    pub(crate) publish_all: bool,
    /// Mount the container's root filesystem as read only
    #[arg(long = "read-only")]
    pub(crate) read_only: bool,
    /// Restart policy to apply when a container exits (default "no")
    #[arg(long, value_name = "string")]
    pub(crate) restart: Option<String>,
    /// Automatically remove the container and its associated anonymous volumes when it exits
    #[arg(long)]
    pub(crate) rm: bool,
    /// Security Options
    #[arg(long = "security-opt", value_name = "list")]
    pub(crate) security_opt: Vec<String>,
    /// Size of /dev/shm
    #[arg(long = "shm-size", value_name = "bytes")]
    pub(crate) shm_size: Option<String>,
    /// Signal to stop the container
    #[arg(long = "stop-signal", value_name = "string")]
    pub(crate) stop_signal: Option<String>,
    /// Timeout (in seconds) to stop a container
    #[arg(long = "stop-timeout", value_name = "int", allow_hyphen_values = true)]
    pub(crate) stop_timeout: Option<i64>,
    /// Mount a tmpfs directory
    #[arg(long, value_name = "list")]
    pub(crate) tmpfs: Vec<String>,
    /// Allocate a pseudo-TTY
    #[arg(short = 't', long)]
    pub(crate) tty: bool,
    /// Ulimit options
    #[arg(long, value_name = "ulimit")]
    pub(crate) ulimit: Vec<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>])
    #[arg(short = 'u', long, value_name = "string")]
    pub(crate) user: Option<String>,
    /// Bind mount a volume
    #[arg(short = 'v', long = "volume", value_name = "list")]
    pub(crate) volume: Vec<String>,
    /// Mount volumes from the specified container(s)
    #[arg(long = "volumes-from", value_name = "list")]
    pub(crate) volumes_from: Vec<String>,
    /// Working directory inside the container
    #[arg(short = 'w', long, value_name = "string")]
    pub(crate) workdir: Option<String>,
    #[command(flatten)]
    pub(crate) health: super::health_flags::HealthOpts,
    /// Print usage
    #[arg(long, action = ArgAction::Help)]
    pub(crate) help: Option<bool>,
    // IMAGE [COMMAND] [ARG...]: one positional list so that everything after the image
    // belongs to the command, as with cobra's non-interspersed flags.
    #[arg(
        value_name = "IMAGE",
        required = true,
        num_args = 1..,
        allow_hyphen_values = true,
        trailing_var_arg = true
    )]
    pub(crate) args: Vec<String>,
}

impl ContainerOpts {
    /// The image argument.
    pub(crate) fn image(&self) -> &str {
        self.args.first().map(String::as_str).unwrap_or_default()
    }

    /// The command and its arguments (after the image).
    pub(crate) fn command(&self) -> &[String] {
        self.args.get(1..).unwrap_or_default()
    }
}

/// Everything `create`/`run` send: the query parameters and the body.
#[derive(Debug, Clone)]
pub(crate) struct CreateRequest {
    pub(crate) name: Option<String>,
    pub(crate) platform: Option<String>,
    pub(crate) body: ContainerCreateBody,
}

fn flag_err(value: &str, flag: &str, msg: impl std::fmt::Display) -> CliError {
    CliError::Usage(format!(
        "invalid argument \"{value}\" for \"{flag}\" flag: {msg}"
    ))
}

/// go-units `RAMInBytes`: `128m`, `1.5g`, `512k`, `100` (bytes), 1024-based, case-insensitive,
/// with an optional `b`/`ib` suffix.
pub(crate) fn ram_in_bytes(s: &str) -> Result<i64, String> {
    let bad = || format!("invalid size: '{s}'");
    let t = s.trim();
    let num_end = t
        .char_indices()
        .find(|(_, c)| !(c.is_ascii_digit() || *c == '.'))
        .map(|(i, _)| i)
        .unwrap_or(t.len());
    let (num, suffix) = t.split_at(num_end);
    if num.is_empty() || num.starts_with('.') || num.ends_with('.') {
        return Err(bad());
    }
    let value: f64 = num.parse().map_err(|_| bad())?;
    let suffix = suffix.trim_start_matches(' ').to_ascii_lowercase();
    let mut chars = suffix.chars();
    let mult: f64 = match chars.next() {
        None => 1.0,
        Some('b') if suffix.len() == 1 => 1.0,
        Some(c) => {
            let m = match c {
                'k' => 1024f64,
                'm' => 1024f64.powi(2),
                'g' => 1024f64.powi(3),
                't' => 1024f64.powi(4),
                'p' => 1024f64.powi(5),
                _ => return Err(bad()),
            };
            let rest: String = chars.collect();
            if !matches!(rest.as_str(), "" | "b" | "i" | "ib") {
                return Err(bad());
            }
            m
        }
    };
    Ok((value * mult) as i64)
}

/// `--cpus 1.5` → NanoCpus.
pub(crate) fn parse_cpus(s: &str) -> Result<i64, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("failed to parse {s} as a rational number"))?;
    let nano = v * 1e9;
    if nano.fract().abs() > 1e-6 {
        return Err("value is too precise".to_string());
    }
    Ok(nano.round() as i64)
}

/// docker's `ParseRestartPolicy` plus the daemon's validation, done early.
pub(crate) fn parse_restart_policy(policy: &str) -> Result<RestartPolicy, String> {
    if policy.is_empty() {
        return Ok(RestartPolicy::default());
    }
    let (name, count) = match policy.split_once(':') {
        Some(("", _)) => {
            return Err("invalid restart policy format: no policy provided before colon".into());
        }
        Some((n, c)) => (n, Some(c)),
        None => (policy, None),
    };
    let count = match count {
        Some(c) if !c.is_empty() => Some(c.parse::<i64>().map_err(|_| {
            "invalid restart policy format: maximum retry count must be an integer".to_string()
        })?),
        _ => None,
    };
    let mode = match name {
        "no" => RestartPolicyNameEnum::NO,
        "always" => RestartPolicyNameEnum::ALWAYS,
        "unless-stopped" => RestartPolicyNameEnum::UNLESS_STOPPED,
        "on-failure" => RestartPolicyNameEnum::ON_FAILURE,
        other => {
            return Err(format!(
                "invalid restart policy: unknown policy '{other}'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'"
            ));
        }
    };
    if let Some(c) = count {
        if mode != RestartPolicyNameEnum::ON_FAILURE && c != 0 {
            return Err(
                "invalid restart policy: maximum retry count can only be used with 'on-failure'"
                    .into(),
            );
        }
        if c < 0 {
            return Err("invalid restart policy: maximum retry count cannot be negative".into());
        }
    }
    Ok(RestartPolicy {
        name: Some(mode),
        maximum_retry_count: Some(count.unwrap_or(0)),
    })
}

const ULIMIT_NAMES: &[&str] = &[
    "core",
    "cpu",
    "data",
    "fsize",
    "locks",
    "memlock",
    "msgqueue",
    "nice",
    "nofile",
    "nproc",
    "rss",
    "rtprio",
    "rttime",
    "sigpending",
    "stack",
];

/// go-units `ParseUlimit`: `name=soft[:hard]`.
pub(crate) fn parse_ulimit(s: &str) -> Result<ResourcesUlimits, String> {
    let Some((name, limits)) = s.split_once('=') else {
        return Err(format!("invalid ulimit argument: {s}"));
    };
    if !ULIMIT_NAMES.contains(&name) {
        return Err(format!("invalid ulimit type: {name}"));
    }
    let parse = |v: &str| -> Result<i64, String> {
        v.parse::<i64>()
            .map_err(|_| format!("strconv.ParseInt: parsing \"{v}\": invalid syntax"))
    };
    let (soft, hard) = match limits.split_once(':') {
        Some((a, b)) => (parse(a)?, parse(b)?),
        None => {
            let v = parse(limits)?;
            (v, v)
        }
    };
    if soft > hard {
        return Err(format!(
            "ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}"
        ));
    }
    Ok(ResourcesUlimits {
        name: Some(name.to_string()),
        soft: Some(soft),
        hard: Some(hard),
    })
}

/// docker's capability normalisation: upper case, `CAP_` prefix, `ALL` trumps, de-duplicated
/// and sorted; caps both added and dropped are not dropped.
pub(crate) fn effective_caps(add: &[String], drop: &[String]) -> (Vec<String>, Vec<String>) {
    fn normalize(caps: &[String]) -> Vec<String> {
        let mut out: Vec<String> = caps
            .iter()
            .map(|c| c.trim().to_uppercase())
            .filter(|c| !c.is_empty())
            .map(|c| {
                if c == "ALL" || c.starts_with("CAP_") {
                    c
                } else {
                    format!("CAP_{c}")
                }
            })
            .collect();
        out.sort();
        out.dedup();
        if out.iter().any(|c| c == "ALL") {
            out = vec!["ALL".to_string()];
        }
        out
    }
    let add = normalize(add);
    let mut drop = normalize(drop);
    drop.retain(|c| !add.contains(c));
    (add, drop)
}

/// `-e KEY` takes the value from the environment (and stays `KEY` when unset).
pub(crate) fn expand_env(
    entry: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, String> {
    if entry.starts_with('=') {
        return Err(format!("invalid environment variable: {entry}"));
    }
    if entry.contains('=') {
        return Ok(entry.to_string());
    }
    Ok(match lookup(entry) {
        Some(v) => format!("{entry}={v}"),
        None => entry.to_string(),
    })
}

/// Looks a variable up in the local environment.
pub(crate) type EnvLookup<'a> = dyn Fn(&str) -> Option<String> + 'a;

/// Reads an env or label file: blank lines and `#` comments are skipped.
fn read_kv_file(path: &str, lookup: Option<&EnvLookup>) -> Result<Vec<String>, CliError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError::Usage(format!("open {path}: {}", io_reason(&e))))?;
    let mut out = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, _) = line.split_once('=').unwrap_or((line, ""));
        if key.contains(char::is_whitespace) {
            return Err(CliError::Usage(format!(
                "variable '{}' contains whitespaces (line {})",
                key.trim(),
                n + 1
            )));
        }
        match (line.contains('='), lookup) {
            (false, Some(look)) => {
                let k = line.trim_end();
                if let Some(v) = look(k) {
                    out.push(format!("{k}={v}"));
                }
            }
            _ => out.push(line.to_string()),
        }
    }
    Ok(out)
}

fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string(),
    }
}

const VALID_PROTOS: &[&str] = &["tcp", "udp", "sctp"];

fn parse_port_range(s: &str) -> Option<(u16, u16)> {
    match s.split_once('-') {
        Some((a, b)) => {
            let (a, b) = (a.parse().ok()?, b.parse().ok()?);
            (a <= b).then_some((a, b))
        }
        None => {
            let p = s.parse().ok()?;
            Some((p, p))
        }
    }
}

/// One parsed `-p` spec: (container `port/proto`, binding).
pub(crate) fn parse_port_spec(spec: &str) -> Result<Vec<(String, PortBinding)>, String> {
    let (rest, proto) = match spec.rsplit_once('/') {
        Some((r, p)) => (r, p.to_lowercase()),
        None => (spec, "tcp".to_string()),
    };
    if !VALID_PROTOS.contains(&proto.as_str()) {
        return Err(format!("invalid proto: {proto}"));
    }
    let parts: Vec<&str> = rest.split(':').collect();
    let n = parts.len();
    let container = parts[n - 1];
    let (ip, host) = match n {
        1 => (String::new(), ""),
        2 => (String::new(), parts[0]),
        3 => (parts[0].to_string(), parts[1]),
        _ => (parts[..n - 2].join(":"), parts[n - 2]),
    };
    let ip = ip
        .strip_prefix('[')
        .and_then(|i| i.strip_suffix(']'))
        .map(str::to_string)
        .unwrap_or(ip);
    if !ip.is_empty() && ip.parse::<std::net::IpAddr>().is_err() {
        return Err(format!("invalid IP address: {ip}"));
    }
    if container.is_empty() {
        return Err(format!("no port specified: {spec}<empty>"));
    }
    let (start, end) =
        parse_port_range(container).ok_or_else(|| format!("invalid containerPort: {container}"))?;
    let (hstart, hend) = if host.is_empty() {
        (0, 0)
    } else {
        parse_port_range(host).ok_or_else(|| format!("invalid hostPort: {host}"))?
    };
    let same_len = !host.is_empty() && (end - start) == (hend - hstart);
    if !host.is_empty() && !same_len && end != start {
        return Err(format!(
            "invalid ranges specified for container and host Ports: {container} and {host}"
        ));
    }
    let mut out = Vec::new();
    for i in 0..=(end - start) {
        let port = start + i;
        let host_port = if host.is_empty() {
            String::new()
        } else if same_len {
            (hstart + i).to_string()
        } else {
            host.to_string()
        };
        out.push((
            format!("{port}/{proto}"),
            PortBinding {
                host_ip: Some(ip.clone()),
                host_port: Some(host_port),
            },
        ));
    }
    Ok(out)
}

/// `--expose 7000[-7002][/proto]`.
fn parse_expose(spec: &str) -> Result<Vec<String>, String> {
    if spec.contains(':') {
        return Err(format!("invalid port format for --expose: {spec}"));
    }
    let (port, proto) = match spec.split_once('/') {
        Some((p, pr)) => (p, pr.to_lowercase()),
        None => (spec, "tcp".to_string()),
    };
    if !VALID_PROTOS.contains(&proto.as_str()) {
        return Err(format!("invalid proto: {proto}"));
    }
    let (a, b) = parse_port_range(port)
        .ok_or_else(|| format!("invalid range format for --expose: {spec}, error: invalid port"))?;
    Ok((a..=b).map(|p| format!("{p}/{proto}")).collect())
}

fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// A `-v` bind whose host part is relative and starts with `.` is made absolute against `cwd`,
/// as the docker CLI does (`./src:/x` → `/home/me/src:/x`); anything else is kept as given.
pub(crate) fn absolute_bind(spec: &str, cwd: &std::path::Path) -> String {
    match spec.split_once(':') {
        Some((host, rest)) if host.starts_with('.') => {
            let mut abs = cwd.to_path_buf();
            for c in std::path::Path::new(host).components() {
                match c {
                    std::path::Component::ParentDir => {
                        abs.pop();
                    }
                    std::path::Component::Normal(n) => abs.push(n),
                    _ => {}
                }
            }
            format!("{}:{rest}", abs.display())
        }
        _ => spec.to_string(),
    }
}

/// `--mount type=…,source=…,target=…[,readonly][,…]`.
pub(crate) fn parse_mount(spec: &str) -> Result<Mount, String> {
    let mut m = Mount::default();
    let mut typ = MountType::VOLUME;
    let mut volume = MountVolumeOptions::default();
    let mut bind = MountBindOptions::default();
    let mut tmpfs = MountTmpfsOptions::default();
    let (mut has_volume, mut has_bind, mut has_tmpfs) = (false, false, false);
    for field in spec.split(',') {
        let (key, value) = match field.split_once('=') {
            Some((k, v)) => (k.trim().to_lowercase(), Some(v.trim())),
            None => (field.trim().to_lowercase(), None),
        };
        let need =
            || value.ok_or_else(|| format!("invalid field '{field}' must be a key=value pair"));
        match key.as_str() {
            "readonly" | "ro" => {
                m.read_only = Some(match value {
                    None => true,
                    Some(v) => {
                        parse_bool(v).ok_or_else(|| format!("invalid value for {key}: {v}"))?
                    }
                });
            }
            "type" => {
                typ = match need()? {
                    "bind" => MountType::BIND,
                    "volume" => MountType::VOLUME,
                    "tmpfs" => MountType::TMPFS,
                    "image" => MountType::IMAGE,
                    "npipe" => MountType::NPIPE,
                    "cluster" => MountType::CLUSTER,
                    other => return Err(format!("invalid mount type: {other}")),
                }
            }
            "source" | "src" => m.source = Some(need()?.to_string()),
            "target" | "dst" | "destination" => m.target = Some(need()?.to_string()),
            "consistency" => m.consistency = Some(need()?.to_string()),
            "bind-propagation" => {
                has_bind = true;
                let v = need()?;
                bind.propagation = Some(
                    v.parse::<MountBindOptionsPropagationEnum>()
                        .map_err(|_| format!("invalid propagation mode: {v}"))?,
                );
            }
            "bind-nonrecursive" | "bind-recursive" => {
                has_bind = true;
                if key == "bind-nonrecursive" {
                    bind.non_recursive = Some(value.and_then(parse_bool).unwrap_or(true));
                }
            }
            "volume-nocopy" => {
                has_volume = true;
                volume.no_copy = Some(value.and_then(parse_bool).unwrap_or(true));
            }
            "volume-label" => {
                has_volume = true;
                let (k, v) = need()?.split_once('=').unwrap_or((need()?, ""));
                volume
                    .labels
                    .get_or_insert_with(HashMap::new)
                    .insert(k.to_string(), v.to_string());
            }
            "volume-driver" => {
                has_volume = true;
                volume
                    .driver_config
                    .get_or_insert_with(MountVolumeOptionsDriverConfig::default)
                    .name = Some(need()?.to_string());
            }
            "volume-opt" => {
                has_volume = true;
                let (k, v) = need()?.split_once('=').unwrap_or((need()?, ""));
                volume
                    .driver_config
                    .get_or_insert_with(MountVolumeOptionsDriverConfig::default)
                    .options
                    .get_or_insert_with(HashMap::new)
                    .insert(k.to_string(), v.to_string());
            }
            "tmpfs-size" => {
                has_tmpfs = true;
                let v = need()?;
                tmpfs.size_bytes =
                    Some(ram_in_bytes(v).map_err(|_| format!("invalid value for {key}: {v}"))?);
            }
            "tmpfs-mode" => {
                has_tmpfs = true;
                let v = need()?;
                tmpfs.mode = Some(
                    i64::from_str_radix(v, 8)
                        .map_err(|_| format!("invalid value for {key}: {v}"))?,
                );
            }
            _ => {
                return Err(format!("unexpected key '{key}' in '{field}'"));
            }
        }
    }
    if m.target.is_none() {
        return Err("target is required".into());
    }
    if has_volume && typ != MountType::VOLUME {
        return Err(format!(
            "cannot mix 'volume-*' options with mount type '{typ}'"
        ));
    }
    if has_bind && typ != MountType::BIND {
        return Err(format!(
            "cannot mix 'bind-*' options with mount type '{typ}'"
        ));
    }
    if has_tmpfs && typ != MountType::TMPFS {
        return Err(format!(
            "cannot mix 'tmpfs-*' options with mount type '{typ}'"
        ));
    }
    m.typ = Some(typ);
    if has_volume {
        m.volume_options = Some(volume);
    }
    if has_bind {
        m.bind_options = Some(bind);
    }
    if has_tmpfs {
        m.tmpfs_options = Some(tmpfs);
    }
    Ok(m)
}

/// What the caller knows about the local terminal and mode.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct CreateContext {
    /// `run -d`.
    pub(crate) detach: bool,
    /// The local terminal size `[rows, cols]` (for `-t`).
    pub(crate) console_size: Option<[usize; 2]>,
}

/// Builds the create request from the flags, like docker's `parse()`.
pub(crate) fn build_create(
    o: &ContainerOpts,
    ctx: CreateContext,
    lookup_env: &dyn Fn(&str) -> Option<String>,
) -> Result<CreateRequest, CliError> {
    if let Some(flag) = o.image().strip_prefix('-') {
        return Err(CliError::Usage(if flag.starts_with('-') {
            format!("unknown flag: {}", o.image())
        } else {
            format!(
                "unknown shorthand flag: '{}' in {}",
                flag.chars().next().unwrap_or('-'),
                o.image()
            )
        }));
    }
    // -a
    let mut attach = (false, false, false);
    for a in &o.attach {
        match a.to_lowercase().as_str() {
            "stdin" => attach.0 = true,
            "stdout" => attach.1 = true,
            "stderr" => attach.2 = true,
            _ => {
                return Err(flag_err(
                    a,
                    "-a, --attach",
                    "valid streams are STDIN, STDOUT and STDERR",
                ));
            }
        }
    }
    if ctx.detach && !o.attach.is_empty() {
        return Err(CliError::Usage("Conflicting options: -a and -d".into()));
    }
    if o.interactive {
        attach.0 = true;
    }
    if o.attach.is_empty() {
        attach.1 = true;
        attach.2 = true;
    }
    if ctx.detach {
        attach = (false, false, false);
    }

    // Environment: files first, then -e.
    let mut env = Vec::new();
    for f in &o.env_file {
        env.extend(read_kv_file(f, Some(lookup_env))?);
    }
    for e in &o.env {
        env.push(expand_env(e, lookup_env).map_err(|m| flag_err(e, "-e, --env", m))?);
    }

    // Labels: files first, then -l.
    let mut label_list = Vec::new();
    for f in &o.label_file {
        label_list.extend(read_kv_file(f, None)?);
    }
    label_list.extend(o.label.iter().cloned());
    let labels: HashMap<String, String> = label_list
        .iter()
        .map(|l| match l.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (l.to_string(), String::new()),
        })
        .collect();

    // Ports.
    let mut exposed: Vec<String> = Vec::new();
    let mut bindings: PortMap = HashMap::new();
    for p in &o.publish {
        for (port, b) in parse_port_spec(p).map_err(|m| flag_err(p, "-p, --publish", m))? {
            if !exposed.contains(&port) {
                exposed.push(port.clone());
            }
            bindings
                .entry(port)
                .or_insert_with(|| Some(Vec::new()))
                .get_or_insert_with(Vec::new)
                .push(b);
        }
    }
    for e in &o.expose {
        for port in parse_expose(e).map_err(CliError::Usage)? {
            if !exposed.contains(&port) {
                exposed.push(port);
            }
        }
    }
    exposed.sort();

    // Volumes and binds.
    let mut binds = Vec::new();
    let mut volumes = Vec::new();
    for v in &o.volume {
        if v.is_empty() {
            return Err(flag_err(v, "-v, --volume", "invalid empty volume spec"));
        }
        if v.contains(':') {
            let bind = absolute_bind(v, &std::env::current_dir().unwrap_or_default());
            if !binds.contains(&bind) {
                binds.push(bind);
            }
        } else if !volumes.contains(v) {
            volumes.push(v.clone());
        }
    }
    let mut mounts = Vec::new();
    for m in &o.mount {
        mounts.push(parse_mount(m).map_err(|e| flag_err(m, "--mount", e))?);
    }
    let mut tmpfs = HashMap::new();
    for t in &o.tmpfs {
        let (path, opts) = t.split_once(':').unwrap_or((t.as_str(), ""));
        if !path.starts_with('/') {
            return Err(flag_err(
                t,
                "--tmpfs",
                format!("invalid mount path: '{path}' mount path must be absolute"),
            ));
        }
        tmpfs.insert(path.to_string(), opts.to_string());
    }

    // Resources.
    let memory = o
        .memory
        .as_deref()
        .map(|m| ram_in_bytes(m).map_err(|e| flag_err(m, "-m, --memory", e)))
        .transpose()?;
    let memory_swap = match o.memory_swap.as_deref() {
        None => None,
        Some("-1") => Some(-1),
        Some(m) => Some(ram_in_bytes(m).map_err(|e| flag_err(m, "--memory-swap", e))?),
    };
    let shm_size = o
        .shm_size
        .as_deref()
        .map(|m| ram_in_bytes(m).map_err(|e| flag_err(m, "--shm-size", e)))
        .transpose()?;
    let nano_cpus = o
        .cpus
        .as_deref()
        .map(|c| parse_cpus(c).map_err(|e| flag_err(c, "--cpus", e)))
        .transpose()?;
    let mut ulimits = Vec::new();
    for u in &o.ulimit {
        ulimits.push(parse_ulimit(u).map_err(|e| flag_err(u, "--ulimit", e))?);
    }

    let restart =
        parse_restart_policy(o.restart.as_deref().unwrap_or("")).map_err(CliError::Usage)?;
    let restart_set = matches!(
        restart.name,
        Some(n) if n != RestartPolicyNameEnum::NO && n != RestartPolicyNameEnum::EMPTY
    );
    if o.rm && restart_set {
        return Err(CliError::Usage(
            "conflicting options: cannot specify both --restart and --rm".into(),
        ));
    }

    let (cap_add, cap_drop) = effective_caps(&o.cap_add, &o.cap_drop);

    let mut log_opts = HashMap::new();
    for l in &o.log_opt {
        let Some((k, v)) = l.split_once('=') else {
            return Err(flag_err(l, "--log-opt", "invalid key value pair format"));
        };
        log_opts.insert(k.to_string(), v.to_string());
    }

    let entrypoint = o.entrypoint.as_ref().map(|e| vec![e.clone()]);

    let network = o.network.clone().unwrap_or_else(|| "default".to_string());
    let mut endpoints = HashMap::new();
    if !network.starts_with("container:") {
        // Keyed by the network mode as given (`default` too), as the docker CLI does.
        let ipam = o.ip.as_ref().map(|ip| EndpointIpamConfig {
            ipv4_address: Some(ip.clone()),
            ..Default::default()
        });
        endpoints.insert(
            network.clone(),
            EndpointSettings {
                aliases: (!o.network_alias.is_empty()).then(|| o.network_alias.clone()),
                ipam_config: ipam,
                mac_address: o.mac_address.clone(),
                ..Default::default()
            },
        );
    }
    // `--add-host name:ip` travels as `name:ip` (docker CLI's form).
    let extra_hosts: Vec<String> = o
        .add_host
        .iter()
        .map(|h| match h.split_once('=') {
            Some((n, ip)) => format!("{n}:{ip}"),
            None => h.clone(),
        })
        .collect();
    for h in &extra_hosts {
        if !h.contains(':') {
            return Err(flag_err(
                h,
                "--add-host",
                "bad format for add-host: ".to_string() + h,
            ));
        }
    }

    let console_size = match (o.tty, ctx.console_size) {
        (true, Some(s)) => vec![s[0], s[1]],
        _ => vec![0, 0],
    };

    let host_config = HostConfig {
        binds: Some(binds),
        container_id_file: Some(String::new()),
        log_config: Some(HostConfigLogConfig {
            typ: Some(o.log_driver.clone().unwrap_or_default()),
            config: Some(log_opts),
        }),
        network_mode: Some(network),
        port_bindings: Some(bindings),
        restart_policy: Some(restart),
        auto_remove: Some(o.rm),
        cap_add: (!cap_add.is_empty()).then_some(cap_add),
        cap_drop: (!cap_drop.is_empty()).then_some(cap_drop),
        group_add: (!o.group_add.is_empty()).then(|| o.group_add.clone()),
        privileged: Some(o.privileged),
        publish_all_ports: Some(o.publish_all),
        readonly_rootfs: Some(o.read_only),
        security_opt: (!o.security_opt.is_empty()).then(|| o.security_opt.clone()),
        tmpfs: (!tmpfs.is_empty()).then_some(tmpfs),
        shm_size,
        console_size: Some(console_size),
        init: o.init.then_some(true),
        memory: Some(memory.unwrap_or(0)),
        memory_swap: Some(memory_swap.unwrap_or(0)),
        memory_swappiness: Some(-1),
        nano_cpus: Some(nano_cpus.unwrap_or(0)),
        cpu_shares: Some(o.cpu_shares.unwrap_or(0)),
        cpuset_cpus: Some(o.cpuset_cpus.clone().unwrap_or_default()),
        pids_limit: o.pids_limit,
        blkio_weight: Some(o.blkio_weight.unwrap_or(0)),
        ulimits: (!ulimits.is_empty()).then_some(ulimits),
        mounts: (!mounts.is_empty()).then_some(mounts),
        volumes_from: (!o.volumes_from.is_empty()).then(|| o.volumes_from.clone()),
        links: (!o.link.is_empty()).then(|| o.link.clone()),
        dns: Some(o.dns.clone()),
        dns_search: Some(o.dns_search.clone()),
        dns_options: Some(o.dns_option.clone()),
        extra_hosts: (!extra_hosts.is_empty()).then_some(extra_hosts),
        ..Default::default()
    };

    let interactive = o.interactive;
    let body = ContainerCreateBody {
        hostname: Some(o.hostname.clone().unwrap_or_default()),
        domainname: Some(o.domainname.clone().unwrap_or_default()),
        user: Some(o.user.clone().unwrap_or_default()),
        attach_stdin: Some(attach.0),
        attach_stdout: Some(attach.1),
        attach_stderr: Some(attach.2),
        exposed_ports: (!exposed.is_empty()).then_some(exposed),
        tty: Some(o.tty),
        open_stdin: Some(interactive),
        stdin_once: Some(interactive && attach.0),
        env: Some(env),
        cmd: (!o.command().is_empty()).then(|| o.command().to_vec()),
        image: Some(o.image().to_string()),
        volumes: (!volumes.is_empty()).then_some(volumes),
        working_dir: Some(o.workdir.clone().unwrap_or_default()),
        entrypoint,
        labels: Some(labels),
        stop_signal: o.stop_signal.clone(),
        stop_timeout: o.stop_timeout,
        healthcheck: o.health.config()?,
        host_config: Some(host_config),
        networking_config: Some(NetworkingConfig {
            endpoints_config: Some(endpoints),
        }),
        ..Default::default()
    };
    Ok(CreateRequest {
        name: o.name.clone(),
        platform: o.platform.clone(),
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    #[command(disable_help_flag = true)]
    struct T {
        #[command(flatten)]
        o: ContainerOpts,
    }

    fn opts(args: &[&str]) -> ContainerOpts {
        let mut v = vec!["t"];
        v.extend_from_slice(args);
        T::try_parse_from(v).unwrap().o
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn body(args: &[&str]) -> ContainerCreateBody {
        build_create(&opts(args), CreateContext::default(), &no_env)
            .unwrap()
            .body
    }

    #[test]
    fn command_after_image_belongs_to_the_command() {
        let o = opts(&["-e", "A=1", "busybox", "ls", "-la", "--rm", "-e", "x"]);
        assert_eq!(o.image(), "busybox");
        assert_eq!(o.command(), ["ls", "-la", "--rm", "-e", "x"]);
        assert!(!o.rm);
        let o = opts(&["--rm", "busybox", "-la"]);
        assert!(o.rm);
        assert_eq!(o.command(), ["-la"]);
        // clap takes an unknown flag before the image as the image; reported as docker does.
        let o = opts(&["--bogus", "busybox"]);
        let e = build_create(&o, CreateContext::default(), &no_env).unwrap_err();
        assert_eq!(e.to_string(), "unknown flag: --bogus");
    }

    #[test]
    fn ports_and_expose() {
        let b = body(&[
            "-p",
            "8080:80",
            "-p",
            "127.0.0.1:9090:90/udp",
            "-p",
            "9091",
            "--expose",
            "7000-7001",
            "busybox",
        ]);
        let j = serde_json::to_value(&b).unwrap();
        assert_eq!(
            j["ExposedPorts"],
            serde_json::json!({"80/tcp":{}, "90/udp":{}, "9091/tcp":{}, "7000/tcp":{}, "7001/tcp":{}})
        );
        let pb = &j["HostConfig"]["PortBindings"];
        assert_eq!(
            pb["80/tcp"],
            serde_json::json!([{"HostIp":"","HostPort":"8080"}])
        );
        assert_eq!(
            pb["90/udp"],
            serde_json::json!([{"HostIp":"127.0.0.1","HostPort":"9090"}])
        );
        assert_eq!(
            pb["9091/tcp"],
            serde_json::json!([{"HostIp":"","HostPort":""}])
        );
        let r = parse_port_spec("8000-8001:80-81").unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(r[1].0, "81/tcp");
        assert_eq!(r[1].1.host_port.as_deref(), Some("8001"));
        let r = parse_port_spec("[::1]:80:80").unwrap();
        assert_eq!(r[0].1.host_ip.as_deref(), Some("::1"));
        assert!(parse_port_spec("80/foo").is_err());
        assert!(parse_port_spec("x:80").is_err());
        assert!(parse_port_spec("8000-8002:80-81").is_err());
    }

    #[test]
    fn env_labels_and_attach() {
        let look = |k: &str| (k == "HOME_X").then(|| "/root".to_string());
        let o = opts(&[
            "-e", "A=1", "-e", "HOME_X", "-e", "UNSET_Y", "-l", "a=b", "-l", "c", "bb",
        ]);
        let b = build_create(&o, CreateContext::default(), &look)
            .unwrap()
            .body;
        assert_eq!(
            b.env.unwrap(),
            vec!["A=1".to_string(), "HOME_X=/root".into(), "UNSET_Y".into()]
        );
        let labels = b.labels.unwrap();
        assert_eq!(labels["a"], "b");
        assert_eq!(labels["c"], "");
        assert_eq!(b.attach_stdout, Some(true));
        assert_eq!(b.attach_stdin, Some(false));
        assert_eq!(b.open_stdin, Some(false));
        let b = body(&["-i", "bb"]);
        assert_eq!(
            (b.attach_stdin, b.open_stdin, b.stdin_once),
            (Some(true), Some(true), Some(true))
        );
        let b = build_create(
            &opts(&["-i", "-t", "bb"]),
            CreateContext {
                detach: true,
                console_size: Some([24, 80]),
            },
            &no_env,
        )
        .unwrap()
        .body;
        assert_eq!(b.attach_stdin, Some(false));
        assert_eq!(b.attach_stdout, Some(false));
        assert_eq!(b.stdin_once, Some(false));
        assert_eq!(b.tty, Some(true));
        assert_eq!(b.host_config.unwrap().console_size, Some(vec![24, 80]));
        let b = body(&["-a", "STDERR", "bb"]);
        assert_eq!(
            (b.attach_stdout, b.attach_stderr),
            (Some(false), Some(true))
        );
        assert!(
            build_create(&opts(&["-a", "x", "bb"]), CreateContext::default(), &no_env).is_err()
        );
    }

    #[test]
    fn caps_are_normalised() {
        let (a, d) = effective_caps(
            &[
                "net_admin".into(),
                "CAP_SYS_TIME".into(),
                "Net_Admin".into(),
            ],
            &["chown".into(), "sys_time".into()],
        );
        assert_eq!(a, vec!["CAP_NET_ADMIN", "CAP_SYS_TIME"]);
        assert_eq!(d, vec!["CAP_CHOWN"]);
        let (a, _) = effective_caps(&["all".into(), "chown".into()], &[]);
        assert_eq!(a, vec!["ALL"]);
        let hc = body(&["--cap-add", "sys_admin", "--cap-drop", "ALL", "bb"])
            .host_config
            .unwrap();
        assert_eq!(hc.cap_add, Some(vec!["CAP_SYS_ADMIN".to_string()]));
        assert_eq!(hc.cap_drop, Some(vec!["ALL".to_string()]));
    }

    #[test]
    fn restart_policies() {
        let p = parse_restart_policy("on-failure:3").unwrap();
        assert_eq!(p.name, Some(RestartPolicyNameEnum::ON_FAILURE));
        assert_eq!(p.maximum_retry_count, Some(3));
        assert_eq!(
            parse_restart_policy("always").unwrap().name,
            Some(RestartPolicyNameEnum::ALWAYS)
        );
        assert_eq!(
            parse_restart_policy("unless-stopped").unwrap().name,
            Some(RestartPolicyNameEnum::UNLESS_STOPPED)
        );
        assert_eq!(parse_restart_policy("").unwrap(), RestartPolicy::default());
        assert!(parse_restart_policy(":3").is_err());
        assert!(parse_restart_policy("on-failure:x").is_err());
        assert!(parse_restart_policy("sometimes").is_err());
        assert!(parse_restart_policy("always:3").is_err());
        assert!(
            build_create(
                &opts(&["--rm", "--restart", "always", "bb"]),
                CreateContext::default(),
                &no_env
            )
            .is_err()
        );
    }

    #[test]
    fn ulimits_and_units() {
        let u = parse_ulimit("nofile=1024:2048").unwrap();
        assert_eq!((u.soft, u.hard), (Some(1024), Some(2048)));
        let u = parse_ulimit("nproc=10").unwrap();
        assert_eq!((u.soft, u.hard), (Some(10), Some(10)));
        assert!(parse_ulimit("bogus=1").is_err());
        assert!(parse_ulimit("nofile=10:5").is_err());
        assert_eq!(ram_in_bytes("128m").unwrap(), 134_217_728);
        assert_eq!(ram_in_bytes("1g").unwrap(), 1_073_741_824);
        assert_eq!(ram_in_bytes("1.5k").unwrap(), 1536);
        assert_eq!(ram_in_bytes("64MB").unwrap(), 67_108_864);
        assert_eq!(ram_in_bytes("100").unwrap(), 100);
        assert_eq!(ram_in_bytes("100b").unwrap(), 100);
        assert!(ram_in_bytes("abc").is_err());
        assert!(ram_in_bytes("12x").is_err());
        assert_eq!(parse_cpus("1.5").unwrap(), 1_500_000_000);
        let hc = body(&[
            "-m",
            "128m",
            "--memory-swap",
            "-1",
            "--shm-size",
            "64m",
            "--cpus",
            "0.5",
            "--ulimit",
            "nofile=1024:2048",
            "--pids-limit",
            "100",
            "bb",
        ])
        .host_config
        .unwrap();
        assert_eq!(hc.memory, Some(134_217_728));
        assert_eq!(hc.memory_swap, Some(-1));
        assert_eq!(hc.shm_size, Some(67_108_864));
        assert_eq!(hc.nano_cpus, Some(500_000_000));
        assert_eq!(hc.pids_limit, Some(100));
        assert_eq!(hc.ulimits.unwrap()[0].name.as_deref(), Some("nofile"));
    }

    #[test]
    fn mounts_tmpfs_entrypoint_network() {
        let b = body(&[
            "-v",
            "/h:/c:ro",
            "-v",
            "/anon",
            "--mount",
            "type=bind,src=/x,dst=/y,readonly",
            "--mount",
            "type=tmpfs,dst=/t,tmpfs-size=1m",
            "--tmpfs",
            "/run:size=1m",
            "--entrypoint",
            "",
            "--net",
            "n2",
            "bb",
        ]);
        assert_eq!(b.entrypoint, Some(vec![String::new()]));
        assert_eq!(b.volumes, Some(vec!["/anon".to_string()]));
        let j = serde_json::to_value(&b).unwrap();
        assert_eq!(j["Volumes"], serde_json::json!({"/anon":{}}));
        assert_eq!(
            j["NetworkingConfig"]["EndpointsConfig"],
            serde_json::json!({"n2":{}})
        );
        let hc = b.host_config.unwrap();
        assert_eq!(hc.binds, Some(vec!["/h:/c:ro".to_string()]));
        assert_eq!(hc.network_mode.as_deref(), Some("n2"));
        assert_eq!(hc.tmpfs.unwrap()["/run"], "size=1m");
        let m = hc.mounts.unwrap();
        assert_eq!(m[0].typ, Some(MountType::BIND));
        assert_eq!(m[0].read_only, Some(true));
        assert_eq!(
            m[1].tmpfs_options.as_ref().unwrap().size_bytes,
            Some(1_048_576)
        );
        assert!(parse_mount("type=bind,src=/x").is_err());
        assert!(parse_mount("type=bind,dst=/x,volume-nocopy").is_err());
        let b = body(&["bb"]);
        assert_eq!(
            b.host_config.unwrap().network_mode.as_deref(),
            Some("default")
        );
        assert_eq!(b.cmd, None);
    }

    #[test]
    fn volumes_from_and_relative_binds() {
        let b = body(&[
            "--volumes-from",
            "c1:ro",
            "--volumes-from",
            "c2",
            "-v",
            "/h:/c",
            "-v",
            "/h:/c",
            "-v",
            "named:/n:ro,nocopy",
            "bb",
        ]);
        let hc = b.host_config.unwrap();
        assert_eq!(
            hc.volumes_from,
            Some(vec!["c1:ro".to_string(), "c2".to_string()])
        );
        assert_eq!(
            hc.binds,
            Some(vec!["/h:/c".to_string(), "named:/n:ro,nocopy".to_string()])
        );
        let cwd = std::path::Path::new("/home/me/p");
        assert_eq!(absolute_bind("./src:/x", cwd), "/home/me/p/src:/x");
        assert_eq!(absolute_bind("../a/b:/x:ro", cwd), "/home/me/a/b:/x:ro");
        assert_eq!(absolute_bind(".:/x", cwd), "/home/me/p:/x");
        assert_eq!(absolute_bind("name:/x", cwd), "name:/x");
        assert_eq!(absolute_bind("/abs:/x", cwd), "/abs:/x");
    }
}
