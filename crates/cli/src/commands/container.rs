//! Container commands: flags (as docker 28 spells them) and the simple request/response ones.

use std::io::Write;

use bollard::container::LogOutput;
use bollard::query_parameters::{
    KillContainerOptions, LogsOptions, RemoveContainerOptions, RenameContainerOptions,
    RestartContainerOptions, StopContainerOptions, TopOptions, WaitContainerOptions,
};
use clap::{ArgAction, Args, Subcommand};
use futures_util::StreamExt;

use super::create::{ContainerOpts, parse_cpus, parse_restart_policy, ram_in_bytes};
use super::run::{RunArgs, wait_result};
use crate::client::{CliError, Client, is_not_found};

/// `berth container …`.
#[derive(Debug, Subcommand)]
pub(crate) enum ContainerCommand {
    /// Attach local standard input, output, and error streams to a running container
    Attach(AttachArgs),
    /// Create a new image from a container's changes
    Commit(super::commit::CommitArgs),
    /// Copy files/folders between a container and the local filesystem
    Cp(super::cp::CpArgs),
    /// Create a new container
    Create(CreateArgs),
    /// Inspect changes to files or directories on a container's filesystem
    Diff(super::commit::DiffArgs),
    /// Export a container's filesystem as a tar archive
    Export(super::cp::ExportArgs),
    /// Execute a command in a running container
    Exec(ExecArgs),
    /// Display detailed information on one or more containers
    Inspect(ContainerInspectArgs),
    /// Kill one or more running containers
    Kill(KillArgs),
    /// Fetch the logs of a container
    Logs(LogsArgs),
    /// List containers
    #[command(aliases = ["ps", "list"])]
    Ls(PsArgs),
    /// Pause all processes within one or more containers
    Pause(ContainersArgs),
    /// List port mappings or a specific mapping for the container
    Port(PortArgs),
    /// Rename a container
    Rename(RenameArgs),
    /// Restart one or more containers
    Restart(StopArgs),
    /// Remove one or more containers
    #[command(alias = "remove")]
    Rm(RmArgs),
    /// Create and run a new container from an image
    Run(RunArgs),
    /// Start one or more stopped containers
    Start(StartArgs),
    /// Display a live stream of container(s) resource usage statistics
    Stats(super::stats::StatsArgs),
    /// Stop one or more running containers
    Stop(StopArgs),
    /// Display the running processes of a container
    Top(TopArgs),
    /// Unpause all processes within one or more containers
    Unpause(ContainersArgs),
    /// Update configuration of one or more containers
    Update(UpdateArgs),
    /// Block until one or more containers stop, then print their exit codes
    Wait(ContainersArgs),
    /// Remove all stopped containers
    Prune(super::prune::ContainerPruneArgs),
}

#[derive(Debug, Args)]
#[command(
    disable_help_flag = true,
    override_usage = "berth create [OPTIONS] IMAGE [COMMAND] [ARG...]"
)]
pub(crate) struct CreateArgs {
    #[command(flatten)]
    pub(crate) opts: ContainerOpts,
}

#[derive(Debug, Args)]
pub(crate) struct StartArgs {
    /// Attach STDOUT/STDERR and forward signals
    #[arg(short = 'a', long)]
    pub(crate) attach: bool,
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys", value_name = "string")]
    pub(crate) detach_keys: Option<String>,
    /// Attach container's STDIN
    #[arg(short = 'i', long)]
    pub(crate) interactive: bool,
    #[arg(value_name = "CONTAINER", required = true)]
    pub(crate) containers: Vec<String>,
}

#[derive(Debug, Args)]
pub(crate) struct StopArgs {
    /// Signal to send to the container
    #[arg(short = 's', long, value_name = "string")]
    pub(crate) signal: Option<String>,
    /// Seconds to wait before killing the container
    #[arg(
        short = 't',
        long = "timeout",
        visible_alias = "time",
        value_name = "int",
        allow_hyphen_values = true
    )]
    pub(crate) timeout: Option<i32>,
    #[arg(value_name = "CONTAINER", required = true)]
    pub(crate) containers: Vec<String>,
}

#[derive(Debug, Args)]
pub(crate) struct KillArgs {
    /// Signal to send to the container
    #[arg(short = 's', long, value_name = "string")]
    pub(crate) signal: Option<String>,
    #[arg(value_name = "CONTAINER", required = true)]
    pub(crate) containers: Vec<String>,
}

#[derive(Debug, Args)]
pub(crate) struct RmArgs {
    /// Force the removal of a running container (uses SIGKILL)
    #[arg(short = 'f', long)]
    pub(crate) force: bool,
    /// Remove the specified link
    #[arg(short = 'l', long)]
    pub(crate) link: bool,
    /// Remove anonymous volumes associated with the container
    #[arg(short = 'v', long)]
    pub(crate) volumes: bool,
    #[arg(value_name = "CONTAINER", required = true)]
    pub(crate) containers: Vec<String>,
}

#[derive(Debug, Args)]
pub(crate) struct ContainersArgs {
    #[arg(value_name = "CONTAINER", required = true)]
    pub(crate) containers: Vec<String>,
}

#[derive(Debug, Args)]
pub(crate) struct RenameArgs {
    #[arg(value_name = "CONTAINER")]
    pub(crate) old: String,
    #[arg(value_name = "NEW_NAME")]
    pub(crate) new: String,
}

#[derive(Debug, Args)]
pub(crate) struct AttachArgs {
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys", value_name = "string")]
    pub(crate) detach_keys: Option<String>,
    /// Do not attach STDIN
    #[arg(long = "no-stdin")]
    pub(crate) no_stdin: bool,
    /// Proxy all received signals to the process
    #[arg(
        long = "sig-proxy",
        default_value_t = true,
        action = ArgAction::Set,
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true"
    )]
    pub(crate) sig_proxy: bool,
    #[arg(value_name = "CONTAINER")]
    pub(crate) container: String,
}

#[derive(Debug, Args)]
pub(crate) struct LogsArgs {
    /// Show extra details provided to logs
    #[arg(long)]
    pub(crate) details: bool,
    /// Follow log output
    #[arg(short = 'f', long)]
    pub(crate) follow: bool,
    /// Show logs since timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)
    #[arg(long, value_name = "string")]
    pub(crate) since: Option<String>,
    /// Number of lines to show from the end of the logs
    #[arg(short = 'n', long, value_name = "string", default_value = "all")]
    pub(crate) tail: String,
    /// Show timestamps
    #[arg(short = 't', long)]
    pub(crate) timestamps: bool,
    /// Show logs before a timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)
    #[arg(long, value_name = "string")]
    pub(crate) until: Option<String>,
    #[arg(value_name = "CONTAINER")]
    pub(crate) container: String,
}

#[derive(Debug, Args)]
pub(crate) struct PsArgs {
    /// Show all containers (default shows just running)
    #[arg(short = 'a', long)]
    pub(crate) all: bool,
    /// Filter output based on conditions provided
    #[arg(short = 'f', long = "filter", value_name = "filter")]
    pub(crate) filter: Vec<String>,
    #[arg(long, value_name = "string", help = super::FORMAT_HELP)]
    pub(crate) format: Option<String>,
    /// Show n last created containers (includes all states)
    #[arg(short = 'n', long = "last", value_name = "int", default_value_t = -1, allow_hyphen_values = true)]
    pub(crate) last: i64,
    /// Show the latest created container (includes all states)
    #[arg(short = 'l', long)]
    pub(crate) latest: bool,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    pub(crate) no_trunc: bool,
    /// Only display container IDs
    #[arg(short = 'q', long)]
    pub(crate) quiet: bool,
    /// Display total file sizes
    #[arg(short = 's', long)]
    pub(crate) size: bool,
}

#[derive(Debug, Args)]
pub(crate) struct ContainerInspectArgs {
    /// Format output using a custom template
    #[arg(short = 'f', long, value_name = "string")]
    pub(crate) format: Option<String>,
    /// Display total file sizes
    #[arg(short = 's', long)]
    pub(crate) size: bool,
    #[arg(value_name = "CONTAINER", required = true)]
    pub(crate) names: Vec<String>,
}

#[derive(Debug, Args)]
pub(crate) struct TopArgs {
    #[arg(value_name = "CONTAINER")]
    pub(crate) container: String,
    #[arg(
        value_name = "ps OPTIONS",
        allow_hyphen_values = true,
        trailing_var_arg = true
    )]
    pub(crate) ps_args: Vec<String>,
}

#[derive(Debug, Args)]
pub(crate) struct PortArgs {
    #[arg(value_name = "CONTAINER")]
    pub(crate) container: String,
    #[arg(value_name = "PRIVATE_PORT[/PROTO]")]
    pub(crate) port: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct UpdateArgs {
    /// Block IO (relative weight), between 10 and 1000, or 0 to disable (default 0)
    #[arg(long = "blkio-weight", value_name = "uint16")]
    pub(crate) blkio_weight: Option<u16>,
    /// Limit CPU CFS (Completely Fair Scheduler) period
    #[arg(long = "cpu-period", value_name = "int")]
    pub(crate) cpu_period: Option<i64>,
    /// Limit CPU CFS (Completely Fair Scheduler) quota
    #[arg(long = "cpu-quota", value_name = "int", allow_hyphen_values = true)]
    pub(crate) cpu_quota: Option<i64>,
    /// CPU shares (relative weight)
    #[arg(short = 'c', long = "cpu-shares", value_name = "int")]
    pub(crate) cpu_shares: Option<i64>,
    /// Number of CPUs
    #[arg(long, value_name = "decimal")]
    pub(crate) cpus: Option<String>,
    /// CPUs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-cpus", value_name = "string")]
    pub(crate) cpuset_cpus: Option<String>,
    /// MEMs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-mems", value_name = "string")]
    pub(crate) cpuset_mems: Option<String>,
    /// Memory limit
    #[arg(short = 'm', long, value_name = "bytes")]
    pub(crate) memory: Option<String>,
    /// Memory soft limit
    #[arg(long = "memory-reservation", value_name = "bytes")]
    pub(crate) memory_reservation: Option<String>,
    /// Swap limit equal to memory plus swap: -1 to enable unlimited swap
    #[arg(long = "memory-swap", value_name = "bytes", allow_hyphen_values = true)]
    pub(crate) memory_swap: Option<String>,
    /// Tune container pids limit (set -1 for unlimited)
    #[arg(long = "pids-limit", value_name = "int", allow_hyphen_values = true)]
    pub(crate) pids_limit: Option<i64>,
    /// Restart policy to apply when a container exits
    #[arg(long, value_name = "string")]
    pub(crate) restart: Option<String>,
    #[arg(value_name = "CONTAINER", required = true)]
    pub(crate) containers: Vec<String>,
}

#[derive(Debug, Args)]
pub(crate) struct ExecArgs {
    /// Detached mode: run command in the background
    #[arg(short = 'd', long)]
    pub(crate) detach: bool,
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys", value_name = "string")]
    pub(crate) detach_keys: Option<String>,
    /// Set environment variables
    #[arg(short = 'e', long = "env", value_name = "list")]
    pub(crate) env: Vec<String>,
    /// Read in a file of environment variables
    #[arg(long = "env-file", value_name = "list")]
    pub(crate) env_file: Vec<String>,
    /// Keep STDIN open even if not attached
    #[arg(short = 'i', long)]
    pub(crate) interactive: bool,
    /// Give extended privileges to the command
    #[arg(long)]
    pub(crate) privileged: bool,
    /// Allocate a pseudo-TTY
    #[arg(short = 't', long)]
    pub(crate) tty: bool,
    /// Username or UID (format: "<name|uid>[:<group|gid>]")
    #[arg(short = 'u', long, value_name = "string")]
    pub(crate) user: Option<String>,
    /// Working directory inside the container
    #[arg(short = 'w', long, value_name = "string")]
    pub(crate) workdir: Option<String>,
    #[arg(value_name = "CONTAINER")]
    pub(crate) container: String,
    #[arg(
        value_name = "COMMAND",
        required = true,
        allow_hyphen_values = true,
        trailing_var_arg = true
    )]
    pub(crate) command: Vec<String>,
}

/// Runs `f` for every container, printing the name on success and the errors (each on its
/// own line) at the end, as docker's stop/kill/rm/pause do.
async fn for_each<F, Fut>(containers: &[String], client: &Client, f: F) -> Result<(), CliError>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Result<(), bollard::errors::Error>>,
{
    let mut errs = Vec::new();
    for c in containers {
        match f(c.clone()).await {
            Ok(()) => {
                let mut out = std::io::stdout().lock();
                writeln!(out, "{c}")?;
                out.flush()?;
            }
            Err(e) => errs.push(client.error(e).to_string()),
        }
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(CliError::Message(errs.join("\n")))
    }
}

/// docker accepts signals with or without `SIG`, by name or number; the daemon parses them.
fn signal_arg(s: &str) -> String {
    s.to_string()
}

/// `berth stop`.
pub(crate) async fn stop(client: &Client, args: &StopArgs) -> Result<(), CliError> {
    let opts = StopContainerOptions {
        signal: args.signal.as_deref().map(signal_arg),
        t: args.timeout,
    };
    for_each(&args.containers, client, |c| {
        let opts = opts.clone();
        async move { client.docker.stop_container(&c, Some(opts)).await }
    })
    .await
}

/// `berth restart`.
pub(crate) async fn restart(client: &Client, args: &StopArgs) -> Result<(), CliError> {
    let opts = RestartContainerOptions {
        signal: args.signal.as_deref().map(signal_arg),
        t: args.timeout,
    };
    for_each(&args.containers, client, |c| {
        let opts = opts.clone();
        async move { client.docker.restart_container(&c, Some(opts)).await }
    })
    .await
}

/// `berth kill`.
pub(crate) async fn kill(client: &Client, args: &KillArgs) -> Result<(), CliError> {
    let opts = KillContainerOptions {
        signal: args
            .signal
            .as_deref()
            .map(signal_arg)
            .unwrap_or_else(|| "KILL".into()),
    };
    for_each(&args.containers, client, |c| {
        let opts = opts.clone();
        async move { client.docker.kill_container(&c, Some(opts)).await }
    })
    .await
}

/// `berth pause`.
pub(crate) async fn pause(client: &Client, args: &ContainersArgs) -> Result<(), CliError> {
    for_each(&args.containers, client, |c| async move {
        client.docker.pause_container(&c).await
    })
    .await
}

/// `berth unpause`.
pub(crate) async fn unpause(client: &Client, args: &ContainersArgs) -> Result<(), CliError> {
    for_each(&args.containers, client, |c| async move {
        client.docker.unpause_container(&c).await
    })
    .await
}

/// `berth rm`.
pub(crate) async fn rm(client: &Client, args: &RmArgs) -> Result<(), CliError> {
    let opts = RemoveContainerOptions {
        v: args.volumes,
        force: args.force,
        link: args.link,
    };
    let mut errs = Vec::new();
    for name in &args.containers {
        let trimmed = name.trim_matches('/');
        if trimmed.is_empty() {
            errs.push("Container name cannot be empty".to_string());
            continue;
        }
        match client
            .docker
            .remove_container(trimmed, Some(opts.clone()))
            .await
        {
            Ok(()) => {
                let mut out = std::io::stdout().lock();
                writeln!(out, "{name}")?;
                out.flush()?;
            }
            Err(e) if args.force && is_not_found(&e) => {
                eprintln!("{}", client.error(e));
            }
            Err(e) => errs.push(client.error(e).to_string()),
        }
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(CliError::Message(errs.join("\n")))
    }
}

/// `berth wait`: prints each exit code.
pub(crate) async fn wait(client: &Client, args: &ContainersArgs) -> Result<(), CliError> {
    let mut errs = Vec::new();
    for c in &args.containers {
        let mut s = client.docker.wait_container(
            c,
            Some(WaitContainerOptions {
                condition: "not-running".into(),
            }),
        );
        match wait_result(s.next().await) {
            Ok(code) => {
                let mut out = std::io::stdout().lock();
                writeln!(out, "{code}")?;
                out.flush()?;
            }
            Err(e) => errs.push(client.error(e).to_string()),
        }
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(CliError::Message(errs.join("\n")))
    }
}

/// `berth rename`.
pub(crate) async fn rename(client: &Client, args: &RenameArgs) -> Result<(), CliError> {
    let old = args.old.trim();
    let new = args.new.trim();
    if old.is_empty() || new.is_empty() {
        return Err(CliError::Message(
            "Error: Neither old nor new names may be empty".into(),
        ));
    }
    let opts = RenameContainerOptions {
        name: new.to_string(),
    };
    match client.docker.rename_container(old, opts).await {
        Ok(()) => Ok(()),
        Err(e) => {
            eprintln!("{}", client.error(e));
            Err(CliError::Message(format!(
                "Error: failed to rename container named {old}"
            )))
        }
    }
}

/// Parses Go durations such as `42m`, `1h30m`, `10s`, `1.5h`, `500ms`.
pub(crate) fn parse_go_duration(s: &str) -> Option<f64> {
    let mut total = 0.0;
    let mut rest = s;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if n == 0 {
            return None;
        }
        let v: f64 = rest[..n].parse().ok()?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let mult = match &rest[..u] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += v * mult;
        rest = &rest[u..];
    }
    Some(total)
}

/// docker's `GetTimestamp`: RFC 3339 (with or without zone/seconds), a unix time, or a
/// duration relative to now. Returns unix seconds.
pub(crate) fn parse_log_time(value: &str, now: i64) -> Result<i64, String> {
    if let Some(d) = parse_go_duration(value) {
        return Ok(now - d as i64);
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(value) {
        return Ok(t.timestamp());
    }
    for f in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(value, f) {
            return Ok(t.and_utc().timestamp());
        }
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(value, "%Y-%m-%d")
        && let Some(t) = d.and_hms_opt(0, 0, 0)
    {
        return Ok(t.and_utc().timestamp());
    }
    let secs = value.split('.').next().unwrap_or(value);
    if let Ok(v) = secs.parse::<i64>() {
        return Ok(v);
    }
    Err(format!(
        "failed to parse value as time or duration: \"{value}\""
    ))
}

/// `berth logs`.
pub(crate) async fn logs(client: &Client, args: &LogsArgs) -> Result<(), CliError> {
    let c = client
        .docker
        .inspect_container(&args.container, None)
        .await
        .map_err(|e| client.error(e))?;
    let id = c.id.unwrap_or_else(|| args.container.clone());
    let now = chrono::Utc::now().timestamp();
    let time = |v: &Option<String>, name: &str| -> Result<i32, CliError> {
        match v {
            None => Ok(0),
            Some(v) => parse_log_time(v, now)
                .map(|t| t as i32)
                .map_err(|e| CliError::Message(format!("invalid value for \"{name}\": {e}"))),
        }
    };
    let opts = LogsOptions {
        follow: args.follow,
        stdout: true,
        stderr: true,
        since: time(&args.since, "since")?,
        until: time(&args.until, "until")?,
        timestamps: args.timestamps,
        tail: args.tail.clone(),
    };
    let mut s = client.docker.logs(&id, Some(opts));
    while let Some(item) = s.next().await {
        match item.map_err(|e| client.error(e))? {
            LogOutput::StdErr { message } => {
                let mut e = std::io::stderr().lock();
                e.write_all(&message)?;
                e.flush()?;
            }
            LogOutput::StdOut { message } | LogOutput::Console { message } => {
                let mut o = std::io::stdout().lock();
                o.write_all(&message)?;
                o.flush()?;
            }
            LogOutput::StdIn { .. } => {}
        }
    }
    Ok(())
}

/// `berth top`.
pub(crate) async fn top(client: &Client, args: &TopArgs) -> Result<(), CliError> {
    let opts = (!args.ps_args.is_empty()).then(|| TopOptions {
        ps_args: args.ps_args.join(" "),
    });
    let r = client
        .docker
        .top_processes(&args.container, opts)
        .await
        .map_err(|e| client.error(e))?;
    let mut text = r.titles.unwrap_or_default().join("\t");
    text.push('\n');
    for p in r.processes.unwrap_or_default() {
        text.push_str(&p.join("\t"));
        text.push('\n');
    }
    print!("{}", crate::format::tabwrite_with(&text, 20, 3));
    Ok(())
}

/// Go's `sortorder.NaturalLess`: digit runs compare numerically.
fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    loop {
        match (a.first(), b.first()) {
            (None, None) => return std::cmp::Ordering::Equal,
            (None, _) => return std::cmp::Ordering::Less,
            (_, None) => return std::cmp::Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let na = a.iter().take_while(|c| c.is_ascii_digit()).count();
                let nb = b.iter().take_while(|c| c.is_ascii_digit()).count();
                let va: u128 = std::str::from_utf8(&a[..na])
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0);
                let vb: u128 = std::str::from_utf8(&b[..nb])
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0);
                if va != vb {
                    return va.cmp(&vb);
                }
                a = &a[na..];
                b = &b[nb..];
            }
            (Some(x), Some(y)) => {
                if x != y {
                    return x.cmp(y);
                }
                a = &a[1..];
                b = &b[1..];
            }
        }
    }
}

fn join_host_port(ip: &str, port: &str) -> String {
    if ip.contains(':') {
        format!("[{ip}]:{port}")
    } else {
        format!("{ip}:{port}")
    }
}

/// The lines `docker port` prints for a container's `NetworkSettings.Ports`.
pub(crate) fn port_lines(
    ports: &api_types::models::PortMap,
    container: &str,
    filter: Option<&str>,
) -> Result<Vec<String>, CliError> {
    let mut out = Vec::new();
    if let Some(f) = filter {
        let (port, proto) = f.split_once('/').unwrap_or((f, "tcp"));
        let digits = !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit());
        if !digits || port.parse::<u16>().is_err() {
            let why = if digits {
                "value out of range"
            } else {
                "invalid syntax"
            };
            return Err(CliError::Message(format!(
                "Error: invalid port ({port}): strconv.ParseUint: parsing \"{port}\": {why}"
            )));
        }
        let key = format!("{port}/{proto}");
        let Some(Some(frontends)) = ports.get(&key) else {
            return Err(CliError::Message(format!(
                "Error: No public port '{f}' published for {container}"
            )));
        };
        for b in frontends {
            out.push(join_host_port(
                b.host_ip.as_deref().unwrap_or(""),
                b.host_port.as_deref().unwrap_or(""),
            ));
        }
    } else {
        for (from, frontends) in ports {
            for b in frontends.iter().flatten() {
                out.push(format!(
                    "{from} -> {}",
                    join_host_port(
                        b.host_ip.as_deref().unwrap_or(""),
                        b.host_port.as_deref().unwrap_or("")
                    )
                ));
            }
        }
    }
    out.sort_by(|a, b| natural_cmp(a, b));
    Ok(out)
}

/// `berth port`.
pub(crate) async fn port(client: &Client, args: &PortArgs) -> Result<(), CliError> {
    let c = client
        .docker
        .inspect_container(&args.container, None)
        .await
        .map_err(|e| client.error(e))?;
    let ports = c.network_settings.and_then(|n| n.ports).unwrap_or_default();
    let lines = port_lines(&ports, &args.container, args.port.as_deref())?;
    if !lines.is_empty() {
        println!("{}", lines.join("\n"));
    }
    Ok(())
}

/// `berth update`.
pub(crate) async fn update(client: &Client, args: &UpdateArgs) -> Result<(), CliError> {
    use api_types::models::ContainerUpdateBody;
    let flag = |v: &str, f: &str, e: String| {
        CliError::Usage(format!("invalid argument \"{v}\" for \"{f}\" flag: {e}"))
    };
    let memory = match &args.memory {
        Some(m) => Some(ram_in_bytes(m).map_err(|e| flag(m, "-m, --memory", e))?),
        None => None,
    };
    let memory_swap = match args.memory_swap.as_deref() {
        None => None,
        Some("-1") => Some(-1),
        Some(m) => Some(ram_in_bytes(m).map_err(|e| flag(m, "--memory-swap", e))?),
    };
    let memory_reservation = match &args.memory_reservation {
        Some(m) => Some(ram_in_bytes(m).map_err(|e| flag(m, "--memory-reservation", e))?),
        None => None,
    };
    let nano_cpus = match &args.cpus {
        Some(c) => Some(parse_cpus(c).map_err(|e| flag(c, "--cpus", e))?),
        None => None,
    };
    let restart = match &args.restart {
        Some(r) => Some(parse_restart_policy(r).map_err(CliError::Message)?),
        None => None,
    };
    let any = args.blkio_weight.is_some()
        || args.cpu_period.is_some()
        || args.cpu_quota.is_some()
        || args.cpuset_mems.is_some()
        || memory_reservation.is_some()
        || args.cpu_shares.is_some()
        || nano_cpus.is_some()
        || args.cpuset_cpus.is_some()
        || memory.is_some()
        || memory_swap.is_some()
        || args.pids_limit.is_some()
        || restart.is_some();
    if !any {
        return Err(CliError::Message(
            "you must provide one or more flags when using this command".into(),
        ));
    }
    let body = ContainerUpdateBody {
        blkio_weight: args.blkio_weight,
        cpu_shares: args.cpu_shares,
        nano_cpus,
        cpuset_cpus: args.cpuset_cpus.clone(),
        cpuset_mems: args.cpuset_mems.clone(),
        cpu_period: args.cpu_period,
        cpu_quota: args.cpu_quota,
        memory_reservation,
        memory,
        memory_swap,
        pids_limit: args.pids_limit,
        restart_policy: restart,
        ..Default::default()
    };
    let mut errs = Vec::new();
    for c in &args.containers {
        match client.docker.update_container(c, body.clone()).await {
            Ok(()) => println!("{c}"),
            Err(e) => errs.push(client.error(e).to_string()),
        }
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(CliError::Message(errs.join("\n")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use api_types::models::PortBinding;
    use std::collections::HashMap;

    #[test]
    fn durations_and_times() {
        assert_eq!(parse_go_duration("42m"), Some(2520.0));
        assert_eq!(parse_go_duration("1h30m"), Some(5400.0));
        assert_eq!(parse_go_duration("1.5s"), Some(1.5));
        assert_eq!(parse_go_duration("x"), None);
        assert_eq!(parse_log_time("10m", 1000), Ok(400));
        assert_eq!(parse_log_time("2013-01-02T13:23:37Z", 0), Ok(1_357_133_017));
        assert_eq!(parse_log_time("1357133017", 0), Ok(1_357_133_017));
        assert_eq!(parse_log_time("2013-01-02", 0), Ok(1_357_084_800));
        assert!(parse_log_time("yesterday", 0).is_err());
    }

    #[test]
    fn port_output() {
        let b = |ip: &str, p: &str| PortBinding {
            host_ip: Some(ip.into()),
            host_port: Some(p.into()),
        };
        let ports: api_types::models::PortMap = HashMap::from([
            (
                "80/tcp".to_string(),
                Some(vec![b("0.0.0.0", "8080"), b("::", "8080")]),
            ),
            ("9/udp".to_string(), Some(vec![b("127.0.0.1", "9000")])),
            ("7000/tcp".to_string(), None),
        ]);
        assert_eq!(
            port_lines(&ports, "c", None).unwrap(),
            vec![
                "9/udp -> 127.0.0.1:9000",
                "80/tcp -> 0.0.0.0:8080",
                "80/tcp -> [::]:8080"
            ]
        );
        assert_eq!(
            port_lines(&ports, "c", Some("80")).unwrap(),
            vec!["0.0.0.0:8080", "[::]:8080"]
        );
        let e = port_lines(&ports, "c", Some("70000")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "Error: invalid port (70000): strconv.ParseUint: parsing \"70000\": value out of range"
        );
        let e = port_lines(&ports, "c", Some("+80")).unwrap_err();
        assert!(e.to_string().ends_with("invalid syntax"));
        let e = port_lines(&ports, "c", Some("7000")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "Error: No public port '7000' published for c"
        );
    }
}
