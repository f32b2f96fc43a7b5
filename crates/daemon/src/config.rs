//! berthd's command line and `daemon.json`, with dockerd's flag names and rules: unknown keys in
//! the file are an error, and so is a directive given both as a flag and in the file.

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
}

/// Validates one `--registry-mirror` (moby's rules and messages).
fn parse_mirror(s: &str) -> std::result::Result<String, String> {
    registry::client::validate_mirror(s).map_err(|e| e.to_string())
}

/// Networking flags, as `engine::NetConfig` wants them.
pub fn network_config(cli: &Cli) -> engine::NetConfig {
    let mut n = engine::NetConfig::default();
    match cli.bridge.as_deref() {
        Some("none") => n.no_bridge = true,
        Some(b) if !b.is_empty() => {
            n.bridge = b.to_string();
            n.nft_table = format!("berth-{b}");
        }
        _ => {}
    }
    n.bip = cli.bip.clone();
    n.fixed_cidr = cli.fixed_cidr.clone();
    n.mtu = cli.mtu;
    n.icc = cli.icc.unwrap_or(true);
    n.iptables = cli.iptables.unwrap_or(true);
    n.ip = cli.ip;
    n.address_pools = cli.default_address_pools.clone();
    n
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
    if !conflicts.is_empty() {
        return Err(DaemonError::ConflictingDirectives(conflicts.join(", ")));
    }

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
    Ok(Config {
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
            .unwrap_or_else(|| PathBuf::from(DEFAULT_CERTS_DIR)),
        tls,
    })
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
            r#"{"debug":true,"storage-driver":"vfs","iptables":false}"#,
        );
        let msg = r.unwrap_err().to_string();
        assert_eq!(
            msg,
            "the following directives don't match any configuration option: iptables, storage-driver"
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
