//! berthd's command line and `daemon.json`, with dockerd's flag names and rules: unknown keys in
//! the file are an error, and so is a directive given both as a flag and in the file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::{Parser, ValueEnum};
use serde_json::Value;

use crate::error::{DaemonError, Result};
use crate::tls::{DEFAULT_HTTP_PORT, DEFAULT_TLS_PORT, TlsDirectives, TlsSettings};

/// The default configuration file; its absence is fine.
pub const DEFAULT_CONFIG_FILE: &str = "/etc/berth/daemon.json";
/// The default API socket.
pub const DEFAULT_HOST: &str = "unix:///run/berth/berth.sock";
/// The default data root.
pub const DEFAULT_DATA_ROOT: &str = "/var/lib/berth";
/// The default exec root.
pub const DEFAULT_EXEC_ROOT: &str = "/run/berth";
/// The default per-registry certificates directory (Docker's is /etc/docker/certs.d).
pub const DEFAULT_CERTS_DIR: &str = "/etc/berth/certs.d";

/// Log verbosity, as dockerd spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
    Fatal,
}

impl LogLevel {
    /// The tracing filter directive for this level.
    pub fn as_filter(self) -> &'static str {
        match self {
            Self::Debug => "debug",
            Self::Info => "info",
            Self::Warn => "warn",
            Self::Error | Self::Fatal => "error",
        }
    }
}

/// berthd: the berth container engine daemon, serving the Docker Engine API.
#[derive(Debug, Clone, Default, Parser)]
#[command(name = "berthd", version)]
pub struct Cli {
    /// Daemon socket(s) to listen on (unix:///path, tcp://host:port) [default:
    /// unix:///run/berth/berth.sock]
    #[arg(short = 'H', long = "host", value_name = "HOST")]
    pub hosts: Vec<String>,
    /// Root directory of persistent state [default: /var/lib/berth]
    #[arg(long, value_name = "DIR")]
    pub data_root: Option<PathBuf>,
    /// Root directory for execution state files [default: /run/berth]
    #[arg(long, value_name = "DIR")]
    pub exec_root: Option<PathBuf>,
    /// Path to use for the daemon PID file [default: <exec-root>/berthd.pid]
    #[arg(short = 'p', long, value_name = "FILE")]
    pub pidfile: Option<PathBuf>,
    /// Set the logging level [default: info]
    #[arg(short = 'l', long, value_enum, value_name = "LEVEL")]
    pub log_level: Option<LogLevel>,
    /// Enable debug mode
    #[arg(short = 'D', long)]
    pub debug: bool,
    /// Daemon configuration file [default: /etc/berth/daemon.json]
    #[arg(long, value_name = "FILE")]
    pub config_file: Option<PathBuf>,
    /// The default bridge's interface [default: berth0]; `none` for no default bridge
    /// (made if missing, where dockerd wants an existing one)
    #[arg(short = 'b', long = "bridge", value_name = "NAME")]
    pub bridge: Option<String>,
    /// The default bridge's address and prefix (e.g. 172.17.0.1/16)
    #[arg(long, value_name = "CIDR")]
    pub bip: Option<String>,
    /// The part of the default bridge's subnet containers get addresses from
    #[arg(long, value_name = "CIDR")]
    pub fixed_cidr: Option<String>,
    /// MTU of the default bridge's interfaces
    #[arg(long, value_name = "BYTES")]
    pub mtu: Option<u32>,
    /// Allow traffic between containers on the default bridge
    #[arg(long, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub icc: Option<bool>,
    /// Manage berth's nftables table (NAT, published ports)
    #[arg(long, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub iptables: Option<bool>,
    /// Default host address of published ports [default: 0.0.0.0]
    #[arg(long, value_name = "IP")]
    pub ip: Option<std::net::Ipv4Addr>,
    /// Address pools for new networks (base=10.10.0.0/16,size=24)
    #[arg(long = "default-address-pool", value_name = "POOL")]
    pub default_address_pools: Vec<String>,
    /// Registries (host[:port]) pulled from over plain HTTP (loopback ones always are)
    #[arg(long = "insecure-registry", value_name = "HOST")]
    pub insecure_registries: Vec<String>,
    /// Preferred Docker Hub mirror (http(s) URL; repeatable)
    #[arg(long = "registry-mirror", value_name = "URL", value_parser = parse_mirror)]
    pub registry_mirrors: Vec<String>,
    /// Per-registry CA (*.crt) and client certificates (*.cert + *.key) under
    /// DIR/<host[:port]>/ [default: /etc/berth/certs.d]
    #[arg(long, value_name = "DIR")]
    pub certs_dir: Option<PathBuf>,
    /// Use TLS on tcp:// listeners; implied by --tlsverify
    #[arg(long, action = clap::ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_name = "BOOL")]
    pub tls: Option<bool>,
    /// Use TLS and require client certificates signed by --tlscacert
    #[arg(long, action = clap::ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_name = "BOOL")]
    pub tlsverify: Option<bool>,
    /// Trust client certificates signed only by this CA [default: ~/.docker/ca.pem]
    #[arg(long, value_name = "FILE")]
    pub tlscacert: Option<PathBuf>,
    /// Path to the TLS certificate file [default: ~/.docker/cert.pem]
    #[arg(long, value_name = "FILE")]
    pub tlscert: Option<PathBuf>,
    /// Path to the TLS key file [default: ~/.docker/key.pem]
    #[arg(long, value_name = "FILE")]
    pub tlskey: Option<PathBuf>,
    /// Address and port of the metrics listener (Prometheus text on /metrics, plain HTTP)
    #[arg(long, value_name = "HOST:PORT")]
    pub metrics_addr: Option<String>,
    /// Set key=value labels on the daemon (shown by `docker info`)
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub labels: Vec<String>,
    /// Maximum concurrent layer downloads for each pull [default: 3]
    #[arg(long, value_name = "N")]
    pub max_concurrent_downloads: Option<usize>,
    /// Maximum concurrent layer uploads for each push [default: 3]
    #[arg(long, value_name = "N")]
    pub max_concurrent_uploads: Option<usize>,
    /// Default logging driver for containers (only json-file) [default: json-file]
    #[arg(long, value_name = "DRIVER")]
    pub log_driver: Option<String>,
    /// Default json-file log options for containers [default: max-size=10m, max-file=3; max-size=-1: never rotate]
    #[arg(long = "log-opt", value_name = "KEY=VALUE")]
    pub log_opts: Vec<String>,
    /// Default ulimits for containers (`nofile=1024:2048`; a container's own `--ulimit` wins
    /// per name)
    #[arg(long = "default-ulimit", value_name = "NAME=SOFT[:HARD]")]
    pub default_ulimits: Vec<String>,
    /// Validate the flags and the configuration file, then exit
    #[arg(long)]
    pub validate: bool,
}

/// Validates one `--registry-mirror` (moby's rules and messages).
fn parse_mirror(s: &str) -> std::result::Result<String, String> {
    registry::client::validate_mirror(s).map_err(|e| e.to_string())
}

/// Networking settings (flags or daemon.json), as `engine::NetConfig` wants them.
pub fn network_config(cfg: &Config) -> engine::NetConfig {
    let net = &cfg.network;
    let mut n = engine::NetConfig::default();
    match net.bridge.as_deref() {
        Some("none") => n.no_bridge = true,
        Some(b) if !b.is_empty() => {
            n.bridge = b.to_string();
            n.nft_table = format!("berth-{b}");
        }
        _ => {}
    }
    n.bip = net.bip.clone();
    n.fixed_cidr = net.fixed_cidr.clone();
    n.mtu = net.mtu;
    n.icc = net.icc.unwrap_or(true);
    n.iptables = net.iptables.unwrap_or(true);
    n.ip = net.ip;
    n.address_pools = net.default_address_pools.clone();
    n
}

/// The networking directives, as given (defaults are the engine's).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkDirectives {
    pub bridge: Option<String>,
    pub bip: Option<String>,
    pub fixed_cidr: Option<String>,
    pub mtu: Option<u32>,
    pub icc: Option<bool>,
    pub iptables: Option<bool>,
    pub ip: Option<std::net::Ipv4Addr>,
    /// `base=CIDR,size=N` each.
    pub default_address_pools: Vec<String>,
}

/// One `default-address-pools` entry in daemon.json (`{"base": "10.10.0.0/16", "size": 24}`).
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct AddressPool {
    base: String,
    size: u8,
}

/// What `daemon.json` may contain (Docker's key names).
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    hosts: Option<Vec<String>>,
    #[serde(rename = "data-root")]
    data_root: Option<PathBuf>,
    #[serde(rename = "exec-root")]
    exec_root: Option<PathBuf>,
    pidfile: Option<PathBuf>,
    #[serde(rename = "log-level")]
    log_level: Option<LogLevel>,
    debug: Option<bool>,
    #[serde(rename = "insecure-registries")]
    insecure_registries: Option<Vec<String>>,
    #[serde(rename = "registry-mirrors")]
    registry_mirrors: Option<Vec<String>>,
    tls: Option<bool>,
    tlsverify: Option<bool>,
    tlscacert: Option<PathBuf>,
    tlscert: Option<PathBuf>,
    tlskey: Option<PathBuf>,
    #[serde(rename = "metrics-addr")]
    metrics_addr: Option<String>,
    bridge: Option<String>,
    bip: Option<String>,
    #[serde(rename = "fixed-cidr")]
    fixed_cidr: Option<String>,
    mtu: Option<u32>,
    icc: Option<bool>,
    iptables: Option<bool>,
    ip: Option<std::net::Ipv4Addr>,
    #[serde(rename = "default-address-pools")]
    default_address_pools: Option<Vec<AddressPool>>,
    labels: Option<Vec<String>>,
    #[serde(rename = "max-concurrent-downloads")]
    max_concurrent_downloads: Option<usize>,
    #[serde(rename = "max-concurrent-uploads")]
    max_concurrent_uploads: Option<usize>,
    #[serde(rename = "log-driver")]
    log_driver: Option<String>,
    #[serde(rename = "log-opts")]
    log_opts: Option<BTreeMap<String, String>>,
    /// berth's own key (dockerd's certs.d directory is fixed).
    #[serde(rename = "certs-dir")]
    certs_dir: Option<PathBuf>,
    #[serde(rename = "default-ulimits")]
    default_ulimits: Option<BTreeMap<String, FileUlimit>>,
}

/// One `default-ulimits` entry of daemon.json, as dockerd writes it:
/// `"nofile": {"Name": "nofile", "Hard": 64000, "Soft": 64000}`.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct FileUlimit {
    #[serde(rename = "Name")]
    name: Option<String>,
    #[serde(rename = "Soft")]
    soft: i64,
    #[serde(rename = "Hard")]
    hard: i64,
}

const FILE_KEYS: &[&str] = &[
    "hosts",
    "data-root",
    "exec-root",
    "pidfile",
    "log-level",
    "debug",
    "insecure-registries",
    "registry-mirrors",
    "tls",
    "tlsverify",
    "tlscacert",
    "tlscert",
    "tlskey",
    "metrics-addr",
    "bridge",
    "bip",
    "fixed-cidr",
    "mtu",
    "icc",
    "iptables",
    "ip",
    "default-address-pools",
    "labels",
    "max-concurrent-downloads",
    "max-concurrent-uploads",
    "log-driver",
    "log-opts",
    "certs-dir",
    "default-ulimits",
];

/// Where to listen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    /// A unix socket path.
    Unix(PathBuf),
    /// A TCP address: a host name or IP address (IPv6 without brackets) and a port.
    Tcp { host: String, port: u16 },
}

impl std::fmt::Display for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unix(p) => write!(f, "unix://{}", p.display()),
            Self::Tcp { host, port } if host.contains(':') => write!(f, "tcp://[{host}]:{port}"),
            Self::Tcp { host, port } => write!(f, "tcp://{host}:{port}"),
        }
    }
}

/// The effective configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub hosts: Vec<Host>,
    pub data_root: PathBuf,
    pub exec_root: PathBuf,
    pub pidfile: PathBuf,
    pub log_level: LogLevel,
    pub debug: bool,
    /// `--insecure-registry` flags and daemon.json `insecure-registries`, together.
    pub insecure_registries: Vec<String>,
    /// `--registry-mirror` flags or daemon.json `registry-mirrors`, validated and normalised.
    pub registry_mirrors: Vec<String>,
    /// `--certs-dir` (berth's own flag: Docker's is fixed at /etc/docker/certs.d).
    pub certs_dir: PathBuf,
    /// TLS of the tcp:// listeners (`--tls`, `--tlsverify`, `--tlscacert`, `--tlscert`,
    /// `--tlskey`, or the same daemon.json keys).
    pub tls: TlsSettings,
    /// `--metrics-addr` or daemon.json `metrics-addr`: where `/metrics` is served, if anywhere.
    pub metrics_addr: Option<String>,
    /// The default bridge and networking (`bridge`, `bip`, `fixed-cidr`, `mtu`, `icc`,
    /// `iptables`, `ip`, `default-address-pools`).
    pub network: NetworkDirectives,
    /// Daemon labels (`--label`, `labels`), `key=value` each.
    pub labels: Vec<String>,
    /// `--max-concurrent-downloads` / `max-concurrent-downloads` (None: the default, 3).
    pub max_concurrent_downloads: Option<usize>,
    /// `--max-concurrent-uploads` / `max-concurrent-uploads` (None: the default, 3).
    pub max_concurrent_uploads: Option<usize>,
    /// Default json-file options for containers (`--log-opt`, `log-opts`). The only log
    /// driver is json-file (`--log-driver`/`log-driver` accept that and nothing else).
    pub log_opts: BTreeMap<String, String>,
    /// Default ulimits for containers (`--default-ulimit`, `default-ulimits`), by name.
    pub default_ulimits: Vec<Ulimit>,
}

/// A ulimit: `nofile`, `nproc`, … with its soft and hard values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ulimit {
    pub name: String,
    pub soft: i64,
    pub hard: i64,
}

impl Config {
    /// Merges the command line with the configuration file it names (or the default one).
    pub fn resolve(cli: Cli) -> Result<Self> {
        let (path, explicit) = match &cli.config_file {
            Some(p) => (p.clone(), true),
            None => (PathBuf::from(DEFAULT_CONFIG_FILE), false),
        };
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => Some(t),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => None,
            Err(source) => return Err(DaemonError::ConfigRead { path, source }),
        };
        let file = match text {
            Some(t) => parse_file(&path, &t)?,
            None => FileConfig::default(),
        };
        merge(cli, file)
    }
}

fn parse_file(path: &Path, text: &str) -> Result<FileConfig> {
    let parse_err = |reason: String| DaemonError::ConfigParse {
        path: path.to_path_buf(),
        reason,
    };
    if text.trim().is_empty() {
        return Ok(FileConfig::default());
    }
    let value: Value = serde_json::from_str(text).map_err(|e| parse_err(e.to_string()))?;
    let Value::Object(map) = &value else {
        return Err(parse_err("expected a JSON object".into()));
    };
    let unknown: Vec<&str> = map
        .keys()
        .map(String::as_str)
        .filter(|k| !FILE_KEYS.contains(k))
        .collect();
    if !unknown.is_empty() {
        return Err(DaemonError::UnknownDirectives(unknown.join(", ")));
    }
    serde_json::from_value(value).map_err(|e| parse_err(e.to_string()))
}

fn merge(cli: Cli, file: FileConfig) -> Result<Config> {
    let mut conflicts = Vec::new();
    let mut check = |key: &str, flag: Option<String>, from_file: Option<String>| {
        if let (Some(f), Some(v)) = (flag, from_file) {
            conflicts.push(format!("{key}: (from flag: {f}, from file: {v})"));
        }
    };
    let list = |v: &[String]| format!("[{}]", v.join(" "));
    check(
        "hosts",
        (!cli.hosts.is_empty()).then(|| list(&cli.hosts)),
        file.hosts.as_deref().map(list),
    );
    let show = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string());
    check("data-root", show(&cli.data_root), show(&file.data_root));
    check("exec-root", show(&cli.exec_root), show(&file.exec_root));
    check("pidfile", show(&cli.pidfile), show(&file.pidfile));
    let level = |l: &Option<LogLevel>| l.map(|l| format!("{l:?}").to_lowercase());
    check("log-level", level(&cli.log_level), level(&file.log_level));
    check(
        "debug",
        cli.debug.then(|| "true".to_string()),
        file.debug.map(|d| d.to_string()),
    );
    check(
        "registry-mirrors",
        (!cli.registry_mirrors.is_empty()).then(|| list(&cli.registry_mirrors)),
        file.registry_mirrors.as_deref().map(list),
    );
    let flag = |b: Option<bool>| b.map(|b| b.to_string());
    check("tls", flag(cli.tls), flag(file.tls));
    check("tlsverify", flag(cli.tlsverify), flag(file.tlsverify));
    check("tlscacert", show(&cli.tlscacert), show(&file.tlscacert));
    check("tlscert", show(&cli.tlscert), show(&file.tlscert));
    check("tlskey", show(&cli.tlskey), show(&file.tlskey));
    check(
        "metrics-addr",
        cli.metrics_addr.clone(),
        file.metrics_addr.clone(),
    );
    let text = |v: &Option<String>| v.clone();
    check("bridge", text(&cli.bridge), text(&file.bridge));
    check("bip", text(&cli.bip), text(&file.bip));
    check("fixed-cidr", text(&cli.fixed_cidr), text(&file.fixed_cidr));
    let num = |v: Option<u32>| v.map(|v| v.to_string());
    check("mtu", num(cli.mtu), num(file.mtu));
    check("icc", flag(cli.icc), flag(file.icc));
    check("iptables", flag(cli.iptables), flag(file.iptables));
    let ip = |v: Option<std::net::Ipv4Addr>| v.map(|v| v.to_string());
    check("ip", ip(cli.ip), ip(file.ip));
    let file_pools = file.default_address_pools.as_ref().map(|p| {
        p.iter()
            .map(|p| format!("base={},size={}", p.base, p.size))
            .collect::<Vec<_>>()
    });
    check(
        "default-address-pools",
        (!cli.default_address_pools.is_empty()).then(|| list(&cli.default_address_pools)),
        file_pools.as_deref().map(list),
    );
    check(
        "labels",
        (!cli.labels.is_empty()).then(|| list(&cli.labels)),
        file.labels.as_deref().map(list),
    );
    let count = |v: Option<usize>| v.map(|v| v.to_string());
    check(
        "max-concurrent-downloads",
        count(cli.max_concurrent_downloads),
        count(file.max_concurrent_downloads),
    );
    check(
        "max-concurrent-uploads",
        count(cli.max_concurrent_uploads),
        count(file.max_concurrent_uploads),
    );
    check("log-driver", text(&cli.log_driver), text(&file.log_driver));
    check("certs-dir", show(&cli.certs_dir), show(&file.certs_dir));
    let opts = |m: &BTreeMap<String, String>| {
        let v: Vec<String> = m.iter().map(|(k, v)| format!("{k}:{v}")).collect();
        format!("map[{}]", v.join(" "))
    };
    let cli_opts = parse_log_opts(&cli.log_opts)?;
    check(
        "log-opts",
        (!cli_opts.is_empty()).then(|| opts(&cli_opts)),
        file.log_opts.as_ref().map(opts),
    );
    let cli_ulimits = cli
        .default_ulimits
        .iter()
        .map(|v| parse_ulimit(v))
        .collect::<Result<Vec<_>>>()?;
    let file_ulimits = file
        .default_ulimits
        .as_ref()
        .map(|m| {
            m.iter()
                .map(|(k, u)| file_ulimit(k, u))
                .collect::<Result<Vec<_>>>()
        })
        .transpose()?;
    let shown = |v: &[Ulimit]| {
        let v: Vec<String> = v
            .iter()
            .map(|u| format!("{}={}:{}", u.name, u.soft, u.hard))
            .collect();
        format!("[{}]", v.join(" "))
    };
    check(
        "default-ulimits",
        (!cli_ulimits.is_empty()).then(|| shown(&cli_ulimits)),
        file_ulimits.as_deref().map(shown),
    );
    if !conflicts.is_empty() {
        return Err(DaemonError::ConflictingDirectives(conflicts.join(", ")));
    }
    let default_ulimits = if cli_ulimits.is_empty() {
        file_ulimits.unwrap_or_default()
    } else {
        cli_ulimits
    };

    let hosts = if !cli.hosts.is_empty() {
        cli.hosts
    } else {
        file.hosts.unwrap_or_else(|| vec![DEFAULT_HOST.to_string()])
    };
    let tls = TlsSettings::resolve(
        TlsDirectives {
            tls: cli.tls.or(file.tls),
            tlsverify: cli.tlsverify.or(file.tlsverify),
            tlscacert: cli.tlscacert.or(file.tlscacert),
            tlscert: cli.tlscert.or(file.tlscert),
            tlskey: cli.tlskey.or(file.tlskey),
        },
        &crate::tls::default_cert_dir(|k| std::env::var(k).ok()),
    );
    let hosts = hosts
        .iter()
        .map(|h| parse_host(h, tls.enabled()))
        .collect::<Result<Vec<_>>>()?;
    let exec_root = cli
        .exec_root
        .or(file.exec_root)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_EXEC_ROOT));
    let pidfile = cli
        .pidfile
        .or(file.pidfile)
        .unwrap_or_else(|| exec_root.join("berthd.pid"));
    let debug = cli.debug || file.debug.unwrap_or(false);
    let log_level = cli.log_level.or(file.log_level).unwrap_or(if debug {
        LogLevel::Debug
    } else {
        LogLevel::Info
    });
    let registry_mirrors = if cli.registry_mirrors.is_empty() {
        file.registry_mirrors
            .unwrap_or_default()
            .iter()
            .map(|m| registry::client::validate_mirror(m))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| DaemonError::InvalidConfig(e.to_string()))?
    } else {
        cli.registry_mirrors
    };
    let labels = if cli.labels.is_empty() {
        file.labels.unwrap_or_default()
    } else {
        cli.labels
    };
    validate_labels(&labels)?;
    let log_driver = cli.log_driver.or(file.log_driver);
    if let Some(d) = log_driver.as_deref()
        && d != "json-file"
    {
        return Err(DaemonError::InvalidConfig(format!(
            "logging driver {d} is not supported (berth has json-file only)"
        )));
    }
    let log_opts = if !cli_opts.is_empty() {
        cli_opts
    } else {
        file.log_opts.unwrap_or_else(default_log_opts)
    };
    validate_log_opts(&log_opts)?;
    let network = NetworkDirectives {
        bridge: cli.bridge.or(file.bridge),
        bip: cli.bip.or(file.bip),
        fixed_cidr: cli.fixed_cidr.or(file.fixed_cidr),
        mtu: cli.mtu.or(file.mtu),
        icc: cli.icc.or(file.icc),
        iptables: cli.iptables.or(file.iptables),
        ip: cli.ip.or(file.ip),
        default_address_pools: if cli.default_address_pools.is_empty() {
            file_pools.unwrap_or_default()
        } else {
            cli.default_address_pools
        },
    };
    Ok(Config {
        network,
        labels,
        max_concurrent_downloads: cli
            .max_concurrent_downloads
            .or(file.max_concurrent_downloads),
        max_concurrent_uploads: cli.max_concurrent_uploads.or(file.max_concurrent_uploads),
        log_opts,
        default_ulimits,
        hosts,
        data_root: cli
            .data_root
            .or(file.data_root)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_ROOT)),
        exec_root,
        pidfile,
        log_level,
        debug,
        insecure_registries: {
            let mut v = cli.insecure_registries;
            for r in file.insecure_registries.unwrap_or_default() {
                if !v.contains(&r) {
                    v.push(r);
                }
            }
            v
        },
        registry_mirrors,
        certs_dir: cli
            .certs_dir
            .or(file.certs_dir)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_CERTS_DIR)),
        tls,
        metrics_addr: cli.metrics_addr.or(file.metrics_addr),
    })
}

/// `--log-opt key=value` flags as a map (a flag without `=` is moby's error).
fn parse_log_opts(flags: &[String]) -> Result<BTreeMap<String, String>> {
    flags
        .iter()
        .map(|f| {
            f.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .ok_or_else(|| {
                    DaemonError::InvalidConfig(format!("invalid key value pair format: {f}"))
                })
        })
        .collect()
}

/// Labels are `key=value`, a key at most once with one value (moby's rules).
fn validate_labels(labels: &[String]) -> Result<()> {
    let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
    for l in labels {
        let Some((k, v)) = l.split_once('=').filter(|(k, _)| !k.is_empty()) else {
            return Err(DaemonError::InvalidConfig(format!(
                "bad attribute format: {l}"
            )));
        };
        if seen.insert(k, v).is_some_and(|old| old != v) {
            return Err(DaemonError::InvalidConfig(format!(
                "conflict labels for {k}={v} and {k}={}",
                seen[k]
            )));
        }
    }
    Ok(())
}

fn check_ulimit(u: Ulimit) -> Result<Ulimit> {
    if !engine::ULIMIT_NAMES.contains(&u.name.as_str()) {
        return Err(DaemonError::InvalidConfig(format!(
            "invalid ulimit type: {}",
            u.name
        )));
    }
    if u.soft > u.hard {
        return Err(DaemonError::InvalidConfig(format!(
            "ulimit soft limit must be less than or equal to hard limit: {} > {}",
            u.soft, u.hard
        )));
    }
    Ok(u)
}

/// Parses `--default-ulimit name=soft[:hard]` as docker's go-units does (`-1`: unlimited).
fn parse_ulimit(v: &str) -> Result<Ulimit> {
    let bad = || DaemonError::InvalidConfig(format!("invalid ulimit argument: {v}"));
    let (name, values) = v.split_once('=').ok_or_else(bad)?;
    let (soft, hard) = match values.split_once(':') {
        Some((s, h)) => (s, h),
        None => (values, values),
    };
    let num = |s: &str| {
        s.trim()
            .parse::<i64>()
            .map_err(|_| DaemonError::InvalidConfig(format!("invalid ulimit value: {s}")))
    };
    check_ulimit(Ulimit {
        name: name.trim().to_string(),
        soft: num(soft)?,
        hard: num(hard)?,
    })
}

fn file_ulimit(key: &str, u: &FileUlimit) -> Result<Ulimit> {
    if u.name.as_deref().is_some_and(|n| n != key) {
        return Err(DaemonError::InvalidConfig(format!(
            "default-ulimits: entry {key} has Name {}",
            u.name.as_deref().unwrap_or_default()
        )));
    }
    check_ulimit(Ulimit {
        name: key.to_string(),
        soft: u.soft,
        hard: u.hard,
    })
}

/// The json-file options of containers when the operator gives none (no `--log-opt`, no
/// `log-opts` key): logs rotate at 10 MiB and three files are kept, so no container fills the
/// disk with its output. dockerd's default is to never rotate; `--log-opt max-size=-1` (or
/// `"log-opts": {}` in daemon.json) asks for that.
pub fn default_log_opts() -> BTreeMap<String, String> {
    BTreeMap::from([
        ("max-file".to_string(), "3".to_string()),
        ("max-size".to_string(), "10m".to_string()),
    ])
}

/// A size as moby's json-file reads `max-size` (`100`, `10k`, `10m`, `1g`, `1.5m`).
fn parse_size(s: &str) -> Option<u64> {
    let t = s.trim().to_ascii_lowercase();
    let t = t.strip_suffix('b').unwrap_or(&t);
    let (num, mult) = match t.chars().last()? {
        'k' => (&t[..t.len() - 1], 1u64 << 10),
        'm' => (&t[..t.len() - 1], 1 << 20),
        'g' => (&t[..t.len() - 1], 1 << 30),
        't' => (&t[..t.len() - 1], 1 << 40),
        _ => (t, 1),
    };
    let n: f64 = num.parse().ok()?;
    (n >= 0.0 && n.is_finite()).then_some((n * mult as f64) as u64)
}

/// The json-file options berth implements: `max-size` and `max-file`; anything else is
/// refused with moby's message rather than ignored.
fn validate_log_opts(opts: &BTreeMap<String, String>) -> Result<()> {
    for (k, v) in opts {
        let ok = match k.as_str() {
            // -1: never rotate (moby's way of saying unlimited).
            "max-size" => v.trim() == "-1" || parse_size(v).is_some(),
            "max-file" => v.parse::<u32>().is_ok_and(|n| n >= 1),
            _ => {
                return Err(DaemonError::InvalidConfig(format!(
                    "unknown log opt '{k}' for json-file log driver"
                )));
            }
        };
        if !ok {
            return Err(DaemonError::InvalidConfig(format!(
                "invalid value for log opt {k}: {v}"
            )));
        }
    }
    if opts.contains_key("max-file") && !opts.contains_key("max-size") {
        return Err(DaemonError::InvalidConfig(
            "max-file cannot be set without max-size".into(),
        ));
    }
    Ok(())
}

/// Parses one `-H` value; `tcp://` without a host means localhost, without a port 2375, or
/// 2376 when TLS is on (dockerd's defaults).
pub fn parse_host(host: &str, tls: bool) -> Result<Host> {
    let invalid = |reason| DaemonError::InvalidHost {
        host: host.to_string(),
        reason,
    };
    if let Some(path) = host.strip_prefix("unix://") {
        if path.is_empty() {
            return Ok(Host::Unix(PathBuf::from("/run/berth/berth.sock")));
        }
        if !path.starts_with('/') {
            return Err(invalid("the socket path must be absolute"));
        }
        return Ok(Host::Unix(PathBuf::from(path)));
    }
    if let Some(addr) = host.strip_prefix("tcp://") {
        return parse_tcp(addr, tls).map_err(invalid);
    }
    if host.starts_with("fd://") {
        return Err(invalid("fd:// (socket activation) is not supported"));
    }
    Err(invalid("expected unix:///path or tcp://host:port"))
}

fn parse_tcp(addr: &str, tls: bool) -> std::result::Result<Host, &'static str> {
    let addr = addr.strip_suffix('/').unwrap_or(addr);
    if addr.contains('/') {
        return Err("a tcp address takes no path");
    }
    let (name, port) = if let Some(rest) = addr.strip_prefix('[') {
        let (name, after) = rest
            .split_once(']')
            .ok_or("missing ']' in an IPv6 address")?;
        match after {
            "" => (name, None),
            p => (name, Some(p.strip_prefix(':').ok_or("expected :port")?)),
        }
    } else {
        match addr.split_once(':') {
            Some((_, p)) if p.contains(':') => {
                return Err("an IPv6 address must be in brackets: tcp://[addr]:port");
            }
            Some((n, p)) => (n, Some(p)),
            None => (addr, None),
        }
    };
    let port = match port {
        None | Some("") => {
            if tls {
                DEFAULT_TLS_PORT
            } else {
                DEFAULT_HTTP_PORT
            }
        }
        Some(p) => match p.parse::<u16>() {
            Ok(p) if p > 0 => p,
            _ => return Err("invalid port"),
        },
    };
    let host = if name.is_empty() { "localhost" } else { name };
    Ok(Host::Tcp {
        host: host.to_string(),
        port,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cli(args: &[&str]) -> Cli {
        let mut v = vec!["berthd"];
        v.extend_from_slice(args);
        Cli::try_parse_from(v).unwrap()
    }

    fn with_file(args: &[&str], json: &str) -> (tempfile::TempDir, Result<Config>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("daemon.json");
        std::fs::write(&path, json).unwrap();
        let mut c = cli(args);
        c.config_file = Some(path);
        let r = Config::resolve(c);
        (dir, r)
    }

    #[test]
    fn insecure_registries_from_flags_and_file() {
        let (_d, c) = with_file(
            &["--insecure-registry", "a:5000"],
            r#"{"insecure-registries":["b:5000","a:5000"]}"#,
        );
        assert_eq!(c.unwrap().insecure_registries, vec!["a:5000", "b:5000"]);
    }

    #[test]
    fn registry_mirrors_from_flags_or_file() {
        let c = cli(&["--registry-mirror", "https://m.example.com"]);
        assert_eq!(c.registry_mirrors, vec!["https://m.example.com/"]);
        let mut v = vec!["berthd", "--registry-mirror", "m.example.com"];
        let e = Cli::try_parse_from(v.drain(..)).unwrap_err().to_string();
        assert!(
            e.contains(r#"invalid mirror: unsupported scheme "" in "m.example.com""#),
            "{e}"
        );
        let (_d, c) = with_file(&[], r#"{"registry-mirrors":["http://127.0.0.1:5001"]}"#);
        assert_eq!(c.unwrap().registry_mirrors, vec!["http://127.0.0.1:5001/"]);
        let (_d, r) = with_file(&[], r#"{"registry-mirrors":["https://m.example.com/v2/"]}"#);
        assert_eq!(
            r.unwrap_err().to_string(),
            r#"merged configuration validation from file and command line flags failed: invalid mirror: path, query, or fragment at end of the URI "https://m.example.com/v2/""#
        );
        let (_d, r) = with_file(
            &["--registry-mirror", "https://a.example.com"],
            r#"{"registry-mirrors":["https://b.example.com"]}"#,
        );
        assert!(matches!(r, Err(DaemonError::ConflictingDirectives(_))));
        let c = merge(cli(&[]), FileConfig::default()).unwrap();
        assert_eq!(c.certs_dir, PathBuf::from("/etc/berth/certs.d"));
        let c = merge(cli(&["--certs-dir", "/tmp/c"]), FileConfig::default()).unwrap();
        assert_eq!(c.certs_dir, PathBuf::from("/tmp/c"));
    }

    #[test]
    fn defaults() {
        let c = merge(cli(&[]), FileConfig::default()).unwrap();
        assert_eq!(c.hosts, vec![Host::Unix("/run/berth/berth.sock".into())]);
        assert_eq!(c.data_root, PathBuf::from("/var/lib/berth"));
        assert_eq!(c.exec_root, PathBuf::from("/run/berth"));
        assert_eq!(c.pidfile, PathBuf::from("/run/berth/berthd.pid"));
        assert_eq!(c.log_level, LogLevel::Info);
        assert!(!c.debug);
    }

    #[test]
    fn flags() {
        let c = merge(
            cli(&[
                "-H",
                "unix:///tmp/a.sock",
                "-H",
                "unix:///tmp/b.sock",
                "--data-root",
                "/d",
                "-D",
            ]),
            FileConfig::default(),
        )
        .unwrap();
        assert_eq!(c.hosts.len(), 2);
        assert_eq!(c.data_root, PathBuf::from("/d"));
        assert!(c.debug);
        assert_eq!(c.log_level, LogLevel::Debug);
    }

    #[test]
    fn file_values_apply() {
        let (_d, c) = with_file(
            &[],
            r#"{"hosts":["unix:///tmp/x.sock"],"data-root":"/data","exec-root":"/exec","log-level":"warn"}"#,
        );
        let c = c.unwrap();
        assert_eq!(c.hosts, vec![Host::Unix("/tmp/x.sock".into())]);
        assert_eq!(c.data_root, PathBuf::from("/data"));
        assert_eq!(c.pidfile, PathBuf::from("/exec/berthd.pid"));
        assert_eq!(c.log_level, LogLevel::Warn);
    }

    #[test]
    fn unknown_keys_are_named() {
        let (_d, r) = with_file(
            &[],
            r#"{"debug":true,"storage-driver":"vfs","live-restore":false}"#,
        );
        let msg = r.unwrap_err().to_string();
        assert_eq!(
            msg,
            "the following directives don't match any configuration option: live-restore, storage-driver"
        );
    }

    #[test]
    fn flag_and_file_conflict() {
        let (_d, r) = with_file(
            &["--data-root", "/a", "-D"],
            r#"{"data-root":"/b","debug":false}"#,
        );
        let msg = r.unwrap_err().to_string();
        assert!(
            msg.starts_with(
                "the following directives are specified both as a flag and in the configuration file: "
            ),
            "{msg}"
        );
        assert!(
            msg.contains("data-root: (from flag: /a, from file: /b)"),
            "{msg}"
        );
        assert!(
            msg.contains("debug: (from flag: true, from file: false)"),
            "{msg}"
        );
    }

    #[test]
    fn explicit_missing_file_is_an_error() {
        let mut c = cli(&[]);
        c.config_file = Some("/nonexistent/berth/daemon.json".into());
        assert!(matches!(
            Config::resolve(c),
            Err(DaemonError::ConfigRead { .. })
        ));
    }

    #[test]
    fn bad_json_is_an_error() {
        let (_d, r) = with_file(&[], "{not json");
        assert!(matches!(r, Err(DaemonError::ConfigParse { .. })));
        let (_d, r) = with_file(&[], r#"{"debug":"yes"}"#);
        assert!(matches!(r, Err(DaemonError::ConfigParse { .. })));
    }

    #[test]
    fn hosts() {
        assert_eq!(
            parse_host("unix:///x/y.sock", false).unwrap(),
            Host::Unix("/x/y.sock".into())
        );
        assert!(parse_host("fd://", false).is_err());
        assert!(parse_host("/x.sock", false).is_err());
        assert!(parse_host("unix://rel.sock", false).is_err());
    }

    #[test]
    fn bad_log_level_is_refused_by_clap() {
        assert!(Cli::try_parse_from(["berthd", "--log-level", "loud"]).is_err());
    }
}

#[cfg(test)]
mod tls_tests {
    use super::*;
    use crate::tls::TlsMode;

    fn cli(args: &[&str]) -> Cli {
        let mut v = vec!["berthd"];
        v.extend_from_slice(args);
        Cli::try_parse_from(v).unwrap()
    }

    fn tcp(host: &str, port: u16) -> Host {
        Host::Tcp {
            host: host.into(),
            port,
        }
    }

    #[test]
    fn tcp_hosts() {
        assert_eq!(
            parse_host("tcp://0.0.0.0:2375", false).unwrap(),
            tcp("0.0.0.0", 2375)
        );
        assert_eq!(parse_host("tcp://", false).unwrap(), tcp("localhost", 2375));
        assert_eq!(parse_host("tcp://", true).unwrap(), tcp("localhost", 2376));
        assert_eq!(
            parse_host("tcp://10.0.0.1", true).unwrap(),
            tcp("10.0.0.1", 2376)
        );
        assert_eq!(
            parse_host("tcp://:4000", false).unwrap(),
            tcp("localhost", 4000)
        );
        assert_eq!(
            parse_host("tcp://[::1]:2376", false).unwrap(),
            tcp("::1", 2376)
        );
        assert_eq!(parse_host("tcp://[::1]", true).unwrap(), tcp("::1", 2376));
        assert_eq!(
            parse_host("tcp://[::1]:2376", false).unwrap().to_string(),
            "tcp://[::1]:2376"
        );
        assert_eq!(
            parse_host("tcp://h.example:1/", false).unwrap().to_string(),
            "tcp://h.example:1"
        );
        for bad in [
            "tcp://::1:2375",
            "tcp://h:port",
            "tcp://h:0",
            "tcp://h:70000",
            "tcp://h:1/path",
            "tcp://[::1",
        ] {
            let e = parse_host(bad, false).unwrap_err().to_string();
            assert!(e.starts_with(&format!("invalid host {bad}: ")), "{e}");
        }
    }

    #[test]
    fn tls_flags_parse_like_dockerd() {
        let c = cli(&["--tlsverify", "-H", "tcp://127.0.0.1:1"]);
        assert_eq!(c.tlsverify, Some(true));
        assert_eq!(c.hosts, vec!["tcp://127.0.0.1:1"]);
        let c = cli(&["--tls=false"]);
        assert_eq!(c.tls, Some(false));
        let c = cli(&["--tls", "--tlscert", "/c", "--tlskey", "/k"]);
        assert_eq!(c.tls, Some(true));
        assert!(Cli::try_parse_from(["berthd", "--tls=maybe"]).is_err());
    }

    #[test]
    fn tls_from_flags_and_file() {
        let c = merge(
            cli(&[
                "-H",
                "tcp://0.0.0.0",
                "--tlsverify",
                "--tlscacert",
                "/p/ca",
                "--tlscert",
                "/p/c",
                "--tlskey",
                "/p/k",
            ]),
            FileConfig::default(),
        )
        .unwrap();
        assert_eq!(c.hosts, vec![tcp("0.0.0.0", 2376)]);
        assert_eq!(
            c.tls.mode,
            TlsMode::Verify {
                ca: "/p/ca".into(),
                cert: "/p/c".into(),
                key: "/p/k".into()
            }
        );
        // Keys from the file, with Docker's names.
        let file: FileConfig = serde_json::from_str(
            r#"{"hosts":["tcp://127.0.0.1"],"tls":true,"tlscert":"/f/c","tlskey":"/f/k"}"#,
        )
        .unwrap();
        let c = merge(cli(&[]), file).unwrap();
        assert_eq!(c.hosts, vec![tcp("127.0.0.1", 2376)]);
        assert_eq!(
            c.tls.mode,
            TlsMode::Tls {
                cert: "/f/c".into(),
                key: "/f/k".into()
            }
        );
        // A file value and a flag for the same key conflict, as every directive does.
        let file: FileConfig = serde_json::from_str(r#"{"tlsverify":true}"#).unwrap();
        let e = merge(cli(&["--tlsverify=false"]), file)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("tlsverify: (from flag: false, from file: true)"),
            "{e}"
        );
        let file: FileConfig = serde_json::from_str(r#"{"tlskey":"/a"}"#).unwrap();
        let e = merge(cli(&["--tlskey", "/b"]), file)
            .unwrap_err()
            .to_string();
        assert!(e.contains("tlskey: (from flag: /b, from file: /a)"), "{e}");
        // Without tls or tlsverify: no TLS, not an explicit choice.
        let c = merge(cli(&["-H", "tcp://127.0.0.1:9"]), FileConfig::default()).unwrap();
        assert_eq!(c.tls, TlsSettings::default());
    }

    #[test]
    fn tls_keys_are_known_in_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("daemon.json");
        std::fs::write(
            &path,
            r#"{"tls":false,"tlsverify":false,"tlscacert":"/a","tlscert":"/b","tlskey":"/c"}"#,
        )
        .unwrap();
        let mut c = cli(&[]);
        c.config_file = Some(path);
        let c = Config::resolve(c).unwrap();
        assert_eq!(c.tls.mode, TlsMode::Off);
        assert!(c.tls.explicit);
    }
}

#[cfg(test)]
mod directive_tests {
    use super::*;

    fn cli(args: &[&str]) -> Cli {
        let mut v = vec!["berthd"];
        v.extend_from_slice(args);
        Cli::try_parse_from(v).unwrap()
    }

    fn file(json: &str) -> FileConfig {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("daemon.json");
        parse_file(&path, json).unwrap()
    }

    /// Every directive: the flag alone, the key alone (same effect), and both (a conflict
    /// naming the key).
    #[test]
    fn every_flag_has_its_key() {
        let pairs: &[(&[&str], &str, &str)] = &[
            (
                &["-H", "unix:///tmp/a.sock"],
                r#""hosts":["unix:///tmp/a.sock"]"#,
                "hosts",
            ),
            (&["--data-root", "/d"], r#""data-root":"/d""#, "data-root"),
            (&["--exec-root", "/e"], r#""exec-root":"/e""#, "exec-root"),
            (&["--pidfile", "/p"], r#""pidfile":"/p""#, "pidfile"),
            (
                &["--log-level", "warn"],
                r#""log-level":"warn""#,
                "log-level",
            ),
            (&["-D"], r#""debug":true"#, "debug"),
            (
                &["--registry-mirror", "https://m.example.com"],
                r#""registry-mirrors":["https://m.example.com"]"#,
                "registry-mirrors",
            ),
            (&["--tls"], r#""tls":true"#, "tls"),
            (&["--tlsverify"], r#""tlsverify":true"#, "tlsverify"),
            (
                &["--tlsverify", "--tlscacert", "/c"],
                r#""tlsverify":true,"tlscacert":"/c""#,
                "tlscacert",
            ),
            (
                &["--tls", "--tlscert", "/c"],
                r#""tls":true,"tlscert":"/c""#,
                "tlscert",
            ),
            (
                &["--tls", "--tlskey", "/k"],
                r#""tls":true,"tlskey":"/k""#,
                "tlskey",
            ),
            (
                &["--metrics-addr", "127.0.0.1:9323"],
                r#""metrics-addr":"127.0.0.1:9323""#,
                "metrics-addr",
            ),
            (&["--certs-dir", "/cd"], r#""certs-dir":"/cd""#, "certs-dir"),
            (&["--bridge", "br9"], r#""bridge":"br9""#, "bridge"),
            (&["--bip", "10.9.0.1/24"], r#""bip":"10.9.0.1/24""#, "bip"),
            (
                &["--fixed-cidr", "10.9.0.0/25"],
                r#""fixed-cidr":"10.9.0.0/25""#,
                "fixed-cidr",
            ),
            (&["--mtu", "1400"], r#""mtu":1400"#, "mtu"),
            (&["--icc=false"], r#""icc":false"#, "icc"),
            (&["--iptables=false"], r#""iptables":false"#, "iptables"),
            (&["--ip", "127.0.0.1"], r#""ip":"127.0.0.1""#, "ip"),
            (
                &["--default-address-pool", "base=10.10.0.0/16,size=24"],
                r#""default-address-pools":[{"base":"10.10.0.0/16","size":24}]"#,
                "default-address-pools",
            ),
            (&["--label", "a=b"], r#""labels":["a=b"]"#, "labels"),
            (
                &["--max-concurrent-downloads", "5"],
                r#""max-concurrent-downloads":5"#,
                "max-concurrent-downloads",
            ),
            (
                &["--max-concurrent-uploads", "2"],
                r#""max-concurrent-uploads":2"#,
                "max-concurrent-uploads",
            ),
            (
                &["--log-driver", "json-file"],
                r#""log-driver":"json-file""#,
                "log-driver",
            ),
            (
                &["--log-opt", "max-size=10m"],
                r#""log-opts":{"max-size":"10m"}"#,
                "log-opts",
            ),
        ];
        for (flags, key, name) in pairs {
            let json = format!("{{{key}}}");
            let by_flag = merge(cli(flags), FileConfig::default())
                .unwrap_or_else(|e| panic!("{name} flag: {e}"));
            let by_file =
                merge(cli(&[]), file(&json)).unwrap_or_else(|e| panic!("{name} key: {e}"));
            assert_eq!(by_flag, by_file, "{name}: flag and key differ");
            // json-file is the default (and only) driver: naming it changes nothing.
            if *name != "log-driver" {
                assert_ne!(
                    by_flag,
                    merge(cli(&[]), FileConfig::default()).unwrap(),
                    "{name}: no effect"
                );
            }
            let e = merge(cli(flags), file(&json)).unwrap_err().to_string();
            assert!(
                e.starts_with("the following directives are specified both as a flag and in the configuration file: ")
                    && e.contains(&format!("{name}: (from flag: ")),
                "{name}: {e}"
            );
        }
    }

    #[test]
    fn reloadable_values() {
        let c = merge(
            cli(&[]),
            file(
                r#"{"labels":["env=prod","team=a"],"max-concurrent-downloads":6,
                    "log-opts":{"max-size":"1m","max-file":"2"},"bridge":"none"}"#,
            ),
        )
        .unwrap();
        assert_eq!(c.labels, vec!["env=prod", "team=a"]);
        assert_eq!(c.max_concurrent_downloads, Some(6));
        assert_eq!(c.max_concurrent_uploads, None);
        assert_eq!(c.log_opts["max-file"], "2");
        assert!(network_config(&c).no_bridge);
        let c = merge(
            cli(&["--default-address-pool", "base=10.10.0.0/16,size=24"]),
            FileConfig::default(),
        )
        .unwrap();
        assert_eq!(
            network_config(&c).address_pools,
            vec!["base=10.10.0.0/16,size=24"]
        );
    }

    #[test]
    fn bad_values_are_refused() {
        let bad = |args: &[&str], json: &str| merge(cli(args), file(json)).unwrap_err().to_string();
        assert_eq!(
            bad(&[], r#"{"labels":["novalue"]}"#),
            "merged configuration validation from file and command line flags failed: bad attribute format: novalue"
        );
        assert!(
            bad(&["--label", "a=1", "--label", "a=2"], "{}").contains("conflict labels for a=")
        );
        assert!(
            bad(&[], r#"{"log-driver":"syslog"}"#)
                .contains("logging driver syslog is not supported")
        );
        assert!(
            bad(&[], r#"{"log-opts":{"compress":"true"}}"#)
                .contains("unknown log opt 'compress' for json-file log driver")
        );
        assert!(bad(&[], r#"{"log-opts":{"max-size":"lots"}}"#).contains("max-size"));
        assert!(bad(&[], r#"{"log-opts":{"max-file":"3"}}"#).contains("without max-size"));
        assert!(bad(&["--log-opt", "max-size"], "{}").contains("invalid key value pair format"));
        // Malformed values of known keys are parse errors, not silently dropped.
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("daemon.json");
        for json in [
            r#"{"max-concurrent-downloads":-1}"#,
            r#"{"default-address-pools":[{"base":"10.0.0.0/8"}]}"#,
            r#"{"ip":"not-an-ip"}"#,
        ] {
            assert!(parse_file(&p, json).is_err(), "{json}");
        }
        // Docker keys berth does not implement are refused by name.
        assert!(
            parse_file(&p, r#"{"live-restore":true,"default-runtime":"runc"}"#)
                .unwrap_err()
                .to_string()
                .contains("default-runtime, live-restore")
        );
    }

    #[test]
    fn default_ulimits_from_flags_or_file() {
        let u = parse_ulimit("nofile=1024:2048").unwrap();
        assert_eq!((u.name.as_str(), u.soft, u.hard), ("nofile", 1024, 2048));
        let u = parse_ulimit("nproc=-1").unwrap();
        assert_eq!((u.soft, u.hard), (-1, -1));
        for bad in ["nofile", "nofile=a", "bogus=1", "nofile=10:5"] {
            assert!(parse_ulimit(bad).is_err(), "{bad}");
        }
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("daemon.json");
        let json = r#"{"default-ulimits":{"nofile":{"Name":"nofile","Hard":4096,"Soft":2048}}}"#;
        let file = parse_file(&p, json).unwrap();
        let c = merge(cli(&[]), file).unwrap();
        assert_eq!(
            c.default_ulimits,
            vec![Ulimit {
                name: "nofile".into(),
                soft: 2048,
                hard: 4096
            }]
        );
        let file = parse_file(&p, json).unwrap();
        let e = merge(cli(&["--default-ulimit", "nofile=1:2"]), file).unwrap_err();
        assert!(e.to_string().contains("default-ulimits"), "{e}");
        let bad = r#"{"default-ulimits":{"nofile":{"Name":"nproc","Hard":1,"Soft":1}}}"#;
        let file = parse_file(&p, bad).unwrap();
        assert!(merge(cli(&[]), file).is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("100"), Some(100));
        assert_eq!(parse_size("10k"), Some(10 << 10));
        assert_eq!(parse_size("10m"), Some(10 << 20));
        assert_eq!(parse_size("1G"), Some(1 << 30));
        assert_eq!(parse_size("1mb"), Some(1 << 20));
        assert_eq!(parse_size("x"), None);
        assert_eq!(parse_size("-1m"), None);
    }

    #[test]
    fn validate_flag_parses() {
        assert!(cli(&["--validate"]).validate);
    }
}
