//! Command-line definitions (docker's flags and aliases) and dispatch.

mod archive;
mod build;
mod build_context;
mod commit;
mod container;
mod cp;
mod create;
mod df;
mod events;
mod health_flags;
mod images;
mod layer_bars;
mod login;
mod network;
mod prune;
mod ps;
mod pull;
mod push;
mod run;
mod search;
mod stats;
mod stream;
mod system;
mod volume;

use clap::{ArgAction, Args, Parser, Subcommand};

use crate::client::{CliError, Client, host_from_env};
use crate::format::{self, Value};
use container::{
    AttachArgs, ContainerCommand, ContainersArgs, CreateArgs, ExecArgs, KillArgs, LogsArgs,
    PortArgs, PsArgs, RenameArgs, RmArgs, StartArgs, StopArgs, TopArgs, UpdateArgs,
};
use run::RunArgs;

/// A self-sufficient runtime for containers
#[derive(Debug, Parser)]
#[command(
    name = "berth",
    bin_name = "berth",
    disable_version_flag = true,
    disable_help_subcommand = true,
    override_usage = "berth [OPTIONS] COMMAND [ARG...]"
)]
pub(crate) struct Cli {
    /// Daemon socket to connect to
    #[arg(short = 'H', long = "host", value_name = "list")]
    pub(crate) host: Option<String>,
    /// Enable debug mode
    #[arg(short = 'D', long)]
    pub(crate) debug: bool,
    /// Set the logging level ("debug", "info", "warn", "error", "fatal")
    #[arg(
        short = 'l',
        long = "log-level",
        value_name = "string",
        default_value = "info"
    )]
    pub(crate) log_level: String,
    /// Location of client config files
    #[arg(long, value_name = "string")]
    pub(crate) config: Option<String>,
    /// Print version information and quit
    #[arg(short = 'v', long = "version")]
    pub(crate) version: bool,
    #[command(subcommand)]
    pub(crate) command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Show the Docker version information
    Version(FormatArgs),
    /// Display system-wide information
    Info(FormatArgs),
    /// Manage Docker
    #[command(subcommand)]
    System(SystemCommand),
    /// List images
    Images(ImagesArgs),
    /// Manage images
    #[command(subcommand)]
    Image(ImageCommand),
    /// Load an image from a tar archive or STDIN
    Load(LoadArgs),
    /// Download an image from a registry
    Pull(pull::PullArgs),
    /// Upload an image to a registry
    Push(push::PushArgs),
    /// Build an image from a Dockerfile
    Build(build::BuildArgs),
    /// Authenticate to a registry
    Login(login::LoginArgs),
    /// Log out from a registry
    Logout(login::LogoutArgs),
    /// Search Docker Hub for images
    Search(search::SearchArgs),
    /// Save one or more images to a tar archive (streamed to STDOUT by default)
    Save(SaveArgs),
    /// Import the contents from a tarball to create a filesystem image
    Import(ImportArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag(TagArgs),
    /// Remove one or more images
    Rmi(RmiArgs),
    /// Show the history of an image
    History(HistoryArgs),
    /// Return low-level information on Docker objects
    Inspect(InspectArgs),
    /// Manage containers
    #[command(subcommand)]
    Container(ContainerCommand),
    /// Attach local standard input, output, and error streams to a running container
    Attach(AttachArgs),
    /// Create a new image from a container's changes
    Commit(commit::CommitArgs),
    /// Copy files/folders between a container and the local filesystem
    Cp(cp::CpArgs),
    /// Create a new container
    Create(CreateArgs),
    /// Inspect changes to files or directories on a container's filesystem
    Diff(commit::DiffArgs),
    /// Export a container's filesystem as a tar archive
    Export(cp::ExportArgs),
    /// Execute a command in a running container
    Exec(ExecArgs),
    /// Kill one or more running containers
    Kill(KillArgs),
    /// Fetch the logs of a container
    Logs(LogsArgs),
    /// Pause all processes within one or more containers
    Pause(ContainersArgs),
    /// List port mappings or a specific mapping for the container
    Port(PortArgs),
    /// List containers
    Ps(PsArgs),
    /// Rename a container
    Rename(RenameArgs),
    /// Restart one or more containers
    Restart(StopArgs),
    /// Remove one or more containers
    Rm(RmArgs),
    /// Create and run a new container from an image
    Run(RunArgs),
    /// Start one or more stopped containers
    Start(StartArgs),
    /// Display a live stream of container(s) resource usage statistics
    Stats(stats::StatsArgs),
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
    /// Get real time events from the server
    Events(events::EventsArgs),
    /// Manage volumes
    #[command(subcommand)]
    Volume(volume::VolumeCommand),
    /// Manage networks
    #[command(subcommand)]
    Network(network::NetworkCommand),
}

#[derive(Debug, Subcommand)]
pub(crate) enum SystemCommand {
    /// Display system-wide information
    Info(FormatArgs),
    /// Get real time events from the server
    Events(events::EventsArgs),
    /// Show docker disk usage
    Df(df::DfArgs),
    /// Remove unused data
    Prune(prune::SystemPruneArgs),
}

#[derive(Debug, Subcommand)]
pub(crate) enum ImageCommand {
    /// Build an image from a Dockerfile
    Build(build::BuildArgs),
    /// List images
    #[command(alias = "list")]
    Ls(ImagesArgs),
    /// Load an image from a tar archive or STDIN
    Load(LoadArgs),
    /// Download an image from a registry
    Pull(pull::PullArgs),
    /// Upload an image to a registry
    Push(push::PushArgs),
    /// Save one or more images to a tar archive (streamed to STDOUT by default)
    Save(SaveArgs),
    /// Import the contents from a tarball to create a filesystem image
    Import(ImportArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag(TagArgs),
    /// Remove one or more images
    #[command(alias = "remove")]
    Rm(RmiArgs),
    /// Show the history of an image
    History(HistoryArgs),
    /// Display detailed information on one or more images
    Inspect(ImageInspectArgs),
    /// Remove unused images
    Prune(PruneArgs),
}

pub(crate) const FORMAT_HELP: &str = "Format output using a custom template:\n'table':            Print output in table format with column headers (default)\n'table TEMPLATE':   Print output in table format using the given Go template\n'json':             Print in JSON format\n'TEMPLATE':         Print output using the given Go template.\nRefer to https://docs.docker.com/go/formatting/ for more information about formatting output with templates";

#[derive(Debug, Args)]
pub(crate) struct FormatArgs {
    /// Format output using a custom template
    #[arg(short = 'f', long, value_name = "string")]
    pub(crate) format: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct ImagesArgs {
    /// Show all images (default hides intermediate images)
    #[arg(short = 'a', long)]
    pub(crate) all: bool,
    /// Show digests
    #[arg(long)]
    pub(crate) digests: bool,
    /// Filter output based on conditions provided
    #[arg(short = 'f', long = "filter", value_name = "filter")]
    pub(crate) filter: Vec<String>,
    #[arg(long, value_name = "string", help = FORMAT_HELP)]
    pub(crate) format: Option<String>,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    pub(crate) no_trunc: bool,
    /// Only show image IDs
    #[arg(short = 'q', long)]
    pub(crate) quiet: bool,
    /// Filter by REPOSITORY[:TAG]
    #[arg(value_name = "REPOSITORY[:TAG]")]
    pub(crate) reference: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct LoadArgs {
    /// Read from tar archive file, instead of STDIN
    #[arg(short = 'i', long = "input", value_name = "string")]
    pub(crate) input: Option<String>,
    /// Load only the given platform variant
    #[arg(long, value_name = "string")]
    pub(crate) platform: Option<String>,
    /// Suppress the load output
    #[arg(short = 'q', long)]
    pub(crate) quiet: bool,
}

#[derive(Debug, Args)]
pub(crate) struct SaveArgs {
    /// Write to a file, instead of STDOUT
    #[arg(short = 'o', long = "output", value_name = "string")]
    pub(crate) output: Option<String>,
    /// Save only the given platform variant
    #[arg(long, value_name = "string")]
    pub(crate) platform: Option<String>,
    #[arg(value_name = "IMAGE", required = true)]
    pub(crate) images: Vec<String>,
}

#[derive(Debug, Args)]
pub(crate) struct ImportArgs {
    /// Apply Dockerfile instruction to the created image
    #[arg(short = 'c', long = "change", value_name = "list")]
    pub(crate) change: Vec<String>,
    /// Set commit message for imported image
    #[arg(short = 'm', long, value_name = "string")]
    pub(crate) message: Option<String>,
    /// Set platform if server is multi-platform capable
    #[arg(long, value_name = "string")]
    pub(crate) platform: Option<String>,
    #[arg(value_name = "file|URL|-")]
    pub(crate) source: String,
    #[arg(value_name = "REPOSITORY[:TAG]")]
    pub(crate) reference: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct TagArgs {
    #[arg(value_name = "SOURCE_IMAGE[:TAG]")]
    pub(crate) source: String,
    #[arg(value_name = "TARGET_IMAGE[:TAG]")]
    pub(crate) target: String,
}

#[derive(Debug, Args)]
pub(crate) struct RmiArgs {
    /// Force removal of the image
    #[arg(short = 'f', long)]
    pub(crate) force: bool,
    /// Do not delete untagged parents
    #[arg(long = "no-prune")]
    pub(crate) no_prune: bool,
    #[arg(value_name = "IMAGE", required = true)]
    pub(crate) images: Vec<String>,
}

#[derive(Debug, Args)]
pub(crate) struct HistoryArgs {
    #[arg(long, value_name = "string", help = FORMAT_HELP)]
    pub(crate) format: Option<String>,
    /// Print sizes and dates in human readable format
    #[arg(
        short = 'H',
        long,
        default_value_t = true,
        action = ArgAction::Set,
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true"
    )]
    pub(crate) human: bool,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    pub(crate) no_trunc: bool,
    /// Show history for the given platform
    #[arg(long, value_name = "string")]
    pub(crate) platform: Option<String>,
    /// Only show image IDs
    #[arg(short = 'q', long)]
    pub(crate) quiet: bool,
    #[arg(value_name = "IMAGE")]
    pub(crate) image: String,
}

#[derive(Debug, Args)]
pub(crate) struct InspectArgs {
    /// Format output using a custom template
    #[arg(short = 'f', long, value_name = "string")]
    pub(crate) format: Option<String>,
    /// Display total file sizes if the type is container
    #[arg(short = 's', long)]
    pub(crate) size: bool,
    /// Only inspect objects of the given type
    #[arg(long = "type", value_name = "string")]
    pub(crate) kind: Option<String>,
    #[arg(value_name = "NAME|ID", required = true)]
    pub(crate) names: Vec<String>,
}

#[derive(Debug, Args)]
pub(crate) struct ImageInspectArgs {
    /// Format output using a custom template
    #[arg(short = 'f', long, value_name = "string")]
    pub(crate) format: Option<String>,
    #[arg(value_name = "IMAGE", required = true)]
    pub(crate) names: Vec<String>,
}

#[derive(Debug, Args)]
pub(crate) struct PruneArgs {
    /// Remove all unused images, not just dangling ones
    #[arg(short = 'a', long)]
    pub(crate) all: bool,
    /// Provide filter values (e.g. "until=<timestamp>")
    #[arg(long = "filter", value_name = "filter")]
    pub(crate) filter: Vec<String>,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    pub(crate) force: bool,
}

/// Runs the parsed command.
pub(crate) async fn run(cli: Cli) -> Result<(), CliError> {
    let Some(command) = cli.command else {
        use clap::CommandFactory;
        let mut cmd = Cli::command();
        print!("{}", cmd.render_help());
        return Ok(());
    };
    let host = host_from_env(cli.host.as_deref());
    // `version` prints the client section even without a daemon.
    if let Command::Version(args) = &command {
        return system::version(&host, args).await;
    }
    // `image prune` asks before talking to the daemon; "no" cancels quietly.
    if let Command::Image(ImageCommand::Prune(a)) = &command
        && !images::prune_confirmed(a)?
    {
        return Ok(());
    }
    let confirmed = match &command {
        Command::System(SystemCommand::Prune(a)) => prune::system_prune_confirmed(a)?,
        Command::Container(ContainerCommand::Prune(a)) => prune::container_prune_confirmed(a)?,
        Command::Volume(volume::VolumeCommand::Prune(a)) => volume::prune_confirmed(a)?,
        Command::Network(network::NetworkCommand::Prune(a)) => network::prune_confirmed(a)?,
        _ => true,
    };
    if !confirmed {
        return Ok(());
    }
    let client = Client::connect(&host).await?;
    match command {
        Command::Version(_) => Ok(()),
        Command::Info(a) | Command::System(SystemCommand::Info(a)) => {
            system::info(&client, &a, cli.debug).await
        }
        Command::Images(a) | Command::Image(ImageCommand::Ls(a)) => images::list(&client, &a).await,
        Command::Load(a) | Command::Image(ImageCommand::Load(a)) => {
            archive::load(&client, &a).await
        }
        Command::Pull(a) | Command::Image(ImageCommand::Pull(a)) => pull::pull(&client, &a).await,
        Command::Push(a) | Command::Image(ImageCommand::Push(a)) => push::push(&client, &a).await,
        Command::Build(a) | Command::Image(ImageCommand::Build(a)) => {
            build::build(&client, &a).await
        }
        Command::Login(a) => login::login(&client, &a).await,
        Command::Logout(a) => login::logout(&a),
        Command::Search(a) => search::search(&client, &a).await,
        Command::Save(a) | Command::Image(ImageCommand::Save(a)) => {
            archive::save(&client, &a).await
        }
        Command::Import(a) | Command::Image(ImageCommand::Import(a)) => {
            archive::import(&client, &a).await
        }
        Command::Tag(a) | Command::Image(ImageCommand::Tag(a)) => images::tag(&client, &a).await,
        Command::Rmi(a) | Command::Image(ImageCommand::Rm(a)) => images::rmi(&client, &a).await,
        Command::History(a) | Command::Image(ImageCommand::History(a)) => {
            images::history(&client, &a).await
        }
        Command::Inspect(a) => images::inspect(&client, &a).await,
        Command::Image(ImageCommand::Inspect(a)) => {
            let a = InspectArgs {
                format: a.format,
                size: false,
                kind: Some("image".to_string()),
                names: a.names,
            };
            images::inspect(&client, &a).await
        }
        Command::Image(ImageCommand::Prune(a)) => images::prune(&client, &a).await,
        Command::Container(ContainerCommand::Inspect(a)) => {
            let a = InspectArgs {
                format: a.format,
                size: a.size,
                kind: Some("container".to_string()),
                names: a.names,
            };
            images::inspect(&client, &a).await
        }
        Command::Cp(a) | Command::Container(ContainerCommand::Cp(a)) => cp::cp(&client, &a).await,
        Command::Export(a) | Command::Container(ContainerCommand::Export(a)) => {
            cp::export(&client, &a).await
        }
        Command::Diff(a) | Command::Container(ContainerCommand::Diff(a)) => {
            commit::diff(&client, &a).await
        }
        Command::Commit(a) | Command::Container(ContainerCommand::Commit(a)) => {
            commit::commit(&client, &a).await
        }
        Command::Create(a) | Command::Container(ContainerCommand::Create(a)) => {
            run::create(&client, &a).await
        }
        Command::Run(a) | Command::Container(ContainerCommand::Run(a)) => {
            run::run(&client, &a).await
        }
        Command::Start(a) | Command::Container(ContainerCommand::Start(a)) => {
            run::start(&client, &a).await
        }
        Command::Attach(a) | Command::Container(ContainerCommand::Attach(a)) => {
            run::attach(&client, &a).await
        }
        Command::Exec(a) | Command::Container(ContainerCommand::Exec(a)) => {
            run::exec(&client, &a).await
        }
        Command::Stop(a) | Command::Container(ContainerCommand::Stop(a)) => {
            container::stop(&client, &a).await
        }
        Command::Restart(a) | Command::Container(ContainerCommand::Restart(a)) => {
            container::restart(&client, &a).await
        }
        Command::Kill(a) | Command::Container(ContainerCommand::Kill(a)) => {
            container::kill(&client, &a).await
        }
        Command::Rm(a) | Command::Container(ContainerCommand::Rm(a)) => {
            container::rm(&client, &a).await
        }
        Command::Wait(a) | Command::Container(ContainerCommand::Wait(a)) => {
            container::wait(&client, &a).await
        }
        Command::Rename(a) | Command::Container(ContainerCommand::Rename(a)) => {
            container::rename(&client, &a).await
        }
        Command::Logs(a) | Command::Container(ContainerCommand::Logs(a)) => {
            container::logs(&client, &a).await
        }
        Command::Ps(a) | Command::Container(ContainerCommand::Ls(a)) => ps::ps(&client, &a).await,
        Command::Top(a) | Command::Container(ContainerCommand::Top(a)) => {
            container::top(&client, &a).await
        }
        Command::Port(a) | Command::Container(ContainerCommand::Port(a)) => {
            container::port(&client, &a).await
        }
        Command::Stats(a) | Command::Container(ContainerCommand::Stats(a)) => {
            stats::stats(&client, &a).await
        }
        Command::Update(a) | Command::Container(ContainerCommand::Update(a)) => {
            container::update(&client, &a).await
        }
        Command::Events(a) | Command::System(SystemCommand::Events(a)) => {
            events::events(&client, &a).await
        }
        Command::System(SystemCommand::Df(a)) => df::df(&client, &a).await,
        Command::System(SystemCommand::Prune(a)) => prune::system_prune(&client, &a).await,
        Command::Container(ContainerCommand::Prune(a)) => prune::container_prune(&client, &a).await,
        Command::Volume(v) => volume::run(&client, v).await,
        Command::Network(n) => network::run(&client, n).await,
        Command::Pause(a) | Command::Container(ContainerCommand::Pause(a)) => {
            container::pause(&client, &a).await
        }
        Command::Unpause(a) | Command::Container(ContainerCommand::Unpause(a)) => {
            container::unpause(&client, &a).await
        }
    }
}

/// Parses `k=v` filter flags into the API's filter map.
pub(crate) fn parse_filters(
    flags: &[String],
) -> Result<std::collections::HashMap<String, Vec<String>>, CliError> {
    let mut map: std::collections::HashMap<String, Vec<String>> = Default::default();
    for f in flags {
        let Some((k, v)) = f.split_once('=') else {
            return Err(CliError::Usage(format!(
                "invalid argument \"{f}\" for \"-f, --filter\" flag: bad format of filter (expected name=value)"
            )));
        };
        map.entry(k.trim().to_lowercase())
            .or_default()
            .push(v.to_string());
    }
    Ok(map)
}

/// `GET`s each path's JSON (failures kept, in order) and prints them as docker's inspector
/// does (`volume inspect`, `network inspect`).
pub(crate) async fn inspect_paths(
    client: &Client,
    paths: Vec<String>,
    format: Option<&str>,
) -> Result<(), CliError> {
    let mut found = Vec::new();
    let mut errs = Vec::new();
    for path in paths {
        match crate::raw::get_json::<Value>(client, &path).await {
            Ok(v) => found.push(v),
            Err(e) => errs.push(e.to_string()),
        }
    }
    print_inspected(format, &found, errs)
}

/// Prints inspect results the way docker's inspector does.
pub(crate) fn print_inspected(
    format: Option<&str>,
    found: &[Value],
    errs: Vec<String>,
) -> Result<(), CliError> {
    match format {
        Some(f) if !f.is_empty() && f != "json" => {
            let mut out = String::new();
            let t = format::Template::parse(f)
                .map_err(|e| CliError::Message(format!("template parsing error: {e}")))?;
            for v in found {
                out.push_str(&t.render(v)?);
                out.push('\n');
            }
            // docker's TemplateInspector prints an empty line when nothing was found.
            if out.is_empty() {
                out.push('\n');
            }
            print!("{out}");
        }
        // `-f json`: the array on one line, as Go's json.Marshal writes it.
        Some("json") => println!("{}", Value::Arr(found.to_vec()).to_go_json()),
        _ => {
            let arr = Value::Arr(found.to_vec());
            println!("{}", format::indent_json(&arr)?);
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

    #[test]
    fn cli_parses_docker_forms() {
        let c = Cli::try_parse_from(["berth", "-H", "unix:///x.sock", "images", "-aq"]).unwrap();
        assert_eq!(c.host.as_deref(), Some("unix:///x.sock"));
        assert!(matches!(
            c.command,
            Some(Command::Images(ImagesArgs {
                all: true,
                quiet: true,
                ..
            }))
        ));
        let c = Cli::try_parse_from(["berth", "image", "list", "--digests", "busybox"]).unwrap();
        assert!(matches!(
            c.command,
            Some(Command::Image(ImageCommand::Ls(_)))
        ));
        let c = Cli::try_parse_from(["berth", "history", "--human=false", "bb"]).unwrap();
        match c.command {
            Some(Command::History(h)) => assert!(!h.human),
            _ => panic!(),
        }
        let c = Cli::try_parse_from(["berth", "history", "-H", "bb"]).unwrap();
        match c.command {
            Some(Command::History(h)) => {
                assert!(h.human);
                assert_eq!(h.image, "bb");
            }
            _ => panic!(),
        }
        assert!(Cli::try_parse_from(["berth", "image", "remove", "x"]).is_ok());
        assert!(Cli::try_parse_from(["berth", "-v"]).unwrap().version);
        assert!(Cli::try_parse_from(["berth", "images", "--bogus"]).is_err());
    }

    #[test]
    fn filters() {
        let m = parse_filters(&["dangling=true".into(), "label=a=b".into()]).unwrap();
        assert_eq!(m["dangling"], vec!["true"]);
        assert_eq!(m["label"], vec!["a=b"]);
        assert!(parse_filters(&["bad".into()]).is_err());
    }
}
