//! `create`, `run`, `start`, `attach` and `exec`: the request sequences of engine-api.md
//! §2.1/§2.3, with the hijacked streams.

use std::io::IsTerminal;
use std::time::Duration;

use bollard::Docker;
use bollard::errors::Error as BollardError;
use bollard::exec::{CreateExecOptions, StartExecOptions, StartExecResults};
use bollard::models::ContainerWaitResponse;
use bollard::query_parameters::{
    AttachContainerOptions, CreateContainerOptions, CreateImageOptions, WaitContainerOptions,
};
use clap::{ArgAction, Args};
use futures_util::StreamExt;

use super::container::{AttachArgs, CreateArgs, ExecArgs, StartArgs};
use super::create::{ContainerOpts, CreateContext, CreateRequest, build_create, expand_env};
use super::stream::{
    DEFAULT_DETACH_KEYS, PumpOptions, ResizeTarget, StreamEnd, monitor_tty_size, parse_detach_keys,
    proxy_signals, pump, terminal_size,
};
use crate::client::{CliError, Client};

#[derive(Debug, Args)]
#[command(
    disable_help_flag = true,
    override_usage = "berth run [OPTIONS] IMAGE [COMMAND] [ARG...]"
)]
pub(crate) struct RunArgs {
    /// Run container in background and print container ID
    #[arg(short = 'd', long)]
    pub(crate) detach: bool,
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys", value_name = "string")]
    pub(crate) detach_keys: Option<String>,
    /// Proxy received signals to the process
    #[arg(
        long = "sig-proxy",
        default_value_t = true,
        action = ArgAction::Set,
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true"
    )]
    pub(crate) sig_proxy: bool,
    #[command(flatten)]
    pub(crate) opts: ContainerOpts,
}

fn env_lookup(k: &str) -> Option<String> {
    std::env::var(k).ok()
}

/// docker's `withHelp`: `berth: <err>\n\nRun 'berth <cmd> --help' for more information`.
fn with_help(e: &CliError, cmd: &str, code: i32) -> CliError {
    CliError::Status {
        code,
        message: format!("berth: {e}\n\nRun 'berth {cmd} --help' for more information"),
    }
}

/// docker's `toStatusError`: 127 for a missing executable, 126 for permissions, else 125.
fn run_status_error(e: &CliError) -> CliError {
    let text = e.to_string();
    let code = if text.contains("executable file not found")
        || text.contains("no such file or directory")
        || text.contains("system cannot find the file specified")
    {
        127
    } else if text.contains("permission denied") || text.contains("is a directory") {
        126
    } else {
        125
    };
    with_help(e, "run", code)
}

/// The image reference as docker's "Unable to find image" message shows it.
fn tagged_image(image: &str) -> String {
    let (name, tag, digest) = super::images::split_reference(image);
    let name = super::images::familiar_name(&name);
    match (tag, digest) {
        (_, Some(d)) => format!("{name}@{d}"),
        (Some(t), None) => format!("{name}:{t}"),
        (None, None) => format!("{name}:latest"),
    }
}

/// Pulls an image for `create`/`run`, printing progress to stderr.
async fn pull(client: &Client, image: &str, platform: Option<&str>) -> Result<(), CliError> {
    let (name, tag, digest) = super::images::split_reference(image);
    let opts = CreateImageOptions {
        from_image: Some(super::images::normalize_name(&name)),
        tag: Some(digest.or(tag).unwrap_or_else(|| "latest".to_string())),
        platform: platform.unwrap_or_default().to_string(),
        ..Default::default()
    };
    let mut s = client.docker.create_image(Some(opts), None, None);
    while let Some(msg) = s.next().await {
        let msg = msg.map_err(|e| client.error(e))?;
        if let Some(e) = msg.error_detail.and_then(|d| d.message) {
            return Err(CliError::Message(e));
        }
        match (msg.id, msg.status) {
            (Some(id), Some(st)) if !id.is_empty() => eprintln!("{id}: {st}"),
            (_, Some(st)) => eprintln!("{st}"),
            _ => {}
        }
    }
    Ok(())
}

/// `POST /containers/create`, pulling once on "No such image" like docker. Prints warnings.
async fn create_container(client: &Client, req: &CreateRequest) -> Result<String, CliError> {
    let opts = CreateContainerOptions {
        name: req.name.clone(),
        platform: req.platform.clone().unwrap_or_default(),
    };
    let first = client
        .docker
        .create_container(Some(opts.clone()), req.body.clone())
        .await;
    let resp = match first {
        Ok(r) => r,
        Err(BollardError::DockerResponseServerError {
            status_code: 404,
            message,
        }) if message.starts_with("No such image") => {
            let image = req.body.image.clone().unwrap_or_default();
            eprintln!("Unable to find image '{}' locally", tagged_image(&image));
            pull(client, &image, req.platform.as_deref()).await?;
            client
                .docker
                .create_container(Some(opts), req.body.clone())
                .await
                .map_err(|e| client.error(e))?
        }
        Err(e) => return Err(client.error(e)),
    };
    for w in &resp.warnings {
        eprintln!("WARNING: {w}");
    }
    Ok(resp.id)
}

/// Maps the first item of a wait stream to an exit code (bollard reports non-zero codes
/// as errors).
pub(crate) fn wait_result(
    item: Option<Result<ContainerWaitResponse, BollardError>>,
) -> Result<i64, BollardError> {
    match item {
        Some(Ok(r)) => match r.error.and_then(|e| e.message).filter(|m| !m.is_empty()) {
            Some(m) => Err(BollardError::DockerContainerWaitError {
                error: m,
                code: r.status_code,
            }),
            None => Ok(r.status_code),
        },
        Some(Err(BollardError::DockerContainerWaitError { error, code })) if error.is_empty() => {
            Ok(code)
        }
        Some(Err(e)) => Err(e),
        None => Err(BollardError::DockerStreamError {
            error: "wait ended without a status".into(),
        }),
    }
}

type WaitHandle = tokio::task::JoinHandle<Result<i64, BollardError>>;

/// Starts `POST /containers/{id}/wait?condition=…` and returns once the daemon has registered
/// it (its response headers arrived, as the docker CLI waits for them), so a start sent next
/// can't outrun it. Hosts other than unix sockets go through bollard, with a moment's grace.
async fn spawn_wait(client: &Client, id: &str, condition: &str) -> WaitHandle {
    match crate::raw::wait_registered(client, id, condition).await {
        Ok(Ok(body)) => tokio::spawn(async move {
            let parsed = match body.await {
                Ok(Ok(b)) => serde_json::from_slice::<ContainerWaitResponse>(&b).map_err(|e| {
                    BollardError::DockerStreamError {
                        error: format!("bad wait answer: {e}"),
                    }
                }),
                Ok(Err(e)) => Err(BollardError::DockerStreamError {
                    error: e.to_string(),
                }),
                Err(e) => Err(BollardError::DockerStreamError {
                    error: e.to_string(),
                }),
            };
            wait_result(Some(parsed))
        }),
        Ok(Err((status_code, message))) => tokio::spawn(async move {
            Err(BollardError::DockerResponseServerError {
                status_code,
                message,
            })
        }),
        Err(_) => spawn_wait_bollard(&client.docker, id, condition).await,
    }
}

/// [`spawn_wait`] through bollard: no headers to watch, so the request gets a moment to reach
/// the daemon before the caller starts the container.
async fn spawn_wait_bollard(docker: &Docker, id: &str, condition: &str) -> WaitHandle {
    let docker = docker.clone();
    let id = id.to_string();
    let condition = condition.to_string();
    let h = tokio::spawn(async move {
        let mut s = docker.wait_container(&id, Some(WaitContainerOptions { condition }));
        wait_result(s.next().await)
    });
    tokio::task::yield_now().await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    h
}

/// The end of an attached `run`, `start -a` or `attach`: stop the resize and signal helpers,
/// and exit 0 on detach, else with the container's exit code from the wait.
async fn finish_attached(
    client: &Client,
    id: &str,
    end: Result<StreamEnd, CliError>,
    wait: WaitHandle,
    helpers: [Option<tokio::task::JoinHandle<()>>; 2],
) -> Result<(), CliError> {
    for h in helpers.into_iter().flatten() {
        h.abort();
    }
    if end? == StreamEnd::Detached {
        wait.abort();
        return Ok(());
    }
    status(finish_wait(client, id, wait).await)
}

/// The exit status once the streams are done: the wait's code; if the wait does not answer
/// in time, the container's recorded exit code.
async fn finish_wait(client: &Client, id: &str, wait: WaitHandle) -> i32 {
    match tokio::time::timeout(Duration::from_secs(10), wait).await {
        Ok(Ok(Ok(code))) => code as i32,
        Ok(Ok(Err(e))) => {
            eprintln!("error waiting for container: {}", client.error(e));
            125
        }
        Ok(Err(_)) => 125,
        Err(_) => match client.docker.inspect_container(id, None).await {
            Ok(c) => c.state.and_then(|s| s.exit_code).unwrap_or(0) as i32,
            Err(_) => 0,
        },
    }
}

fn detach_keys(keys: Option<&str>) -> Result<Vec<u8>, CliError> {
    match keys {
        None => Ok(DEFAULT_DETACH_KEYS.to_vec()),
        Some(k) => parse_detach_keys(k).map_err(CliError::Message),
    }
}

fn status(code: i32) -> Result<(), CliError> {
    if code == 0 {
        Ok(())
    } else {
        Err(CliError::Status {
            code,
            message: String::new(),
        })
    }
}

/// `berth create`.
pub(crate) async fn create(client: &Client, args: &CreateArgs) -> Result<(), CliError> {
    let ctx = CreateContext {
        detach: false,
        console_size: terminal_size(),
    };
    let req =
        build_create(&args.opts, ctx, &env_lookup).map_err(|e| with_help(&e, "create", 125))?;
    let id = create_container(client, &req).await?;
    println!("{id}");
    Ok(())
}

/// `berth run`.
pub(crate) async fn run(client: &Client, args: &RunArgs) -> Result<(), CliError> {
    let o = &args.opts;
    let keys = detach_keys(args.detach_keys.as_deref()).map_err(|e| with_help(&e, "run", 125))?;
    let ctx = CreateContext {
        detach: args.detach,
        console_size: terminal_size(),
    };
    let req = build_create(o, ctx, &env_lookup).map_err(|e| with_help(&e, "run", 125))?;
    let attach_stdin = req.body.attach_stdin == Some(true);
    let attach_stdout = req.body.attach_stdout == Some(true);
    let attach_stderr = req.body.attach_stderr == Some(true);
    if o.tty && attach_stdin && !std::io::stdin().is_terminal() {
        return Err(CliError::Message("the input device is not a TTY".into()));
    }
    let id = create_container(client, &req)
        .await
        .map_err(|e| run_status_error(&e))?;
    let docker = &client.docker;

    let sig = (!args.detach && args.sig_proxy && !o.tty)
        .then(|| proxy_signals(docker.clone(), id.clone()));
    let attached = if !args.detach && (attach_stdin || attach_stdout || attach_stderr) {
        let opts = AttachContainerOptions {
            detach_keys: args.detach_keys.clone(),
            logs: false,
            stream: true,
            stdin: attach_stdin,
            stdout: attach_stdout,
            stderr: attach_stderr,
        };
        match docker.attach_container(&id, Some(opts)).await {
            Ok(a) => Some(a),
            Err(e) => return Err(run_status_error(&client.error(e))),
        }
    } else {
        None
    };
    // Streams are copied from now on: piped stdin is sent (and half-closed) before the
    // container starts, as docker does.
    let streams = attached.map(|a| {
        tokio::spawn(pump(
            a.output,
            a.input,
            PumpOptions {
                stdin: attach_stdin,
                tty: o.tty,
                detach_keys: keys,
            },
        ))
    });
    let condition = if o.rm { "removed" } else { "next-exit" };
    let wait = spawn_wait(client, &id, condition).await;

    if let Err(e) = docker.start_container(&id, None).await {
        if let Some(t) = &streams {
            t.abort();
        }
        if let Some(s) = sig {
            s.abort();
        }
        if o.rm {
            let _ = tokio::time::timeout(Duration::from_secs(5), wait).await;
        } else {
            wait.abort();
        }
        return Err(run_status_error(&client.error(e)));
    }
    if args.detach {
        println!("{id}");
        wait.abort();
        return Ok(());
    }
    let resize = (o.tty && std::io::stdout().is_terminal())
        .then(|| monitor_tty_size(docker.clone(), ResizeTarget::Container(id.clone())));
    let end = match streams {
        Some(t) => t
            .await
            .unwrap_or_else(|e| Err(CliError::Message(e.to_string()))),
        None => Ok(StreamEnd::Closed),
    };
    finish_attached(client, &id, end, wait, [resize, sig]).await
}

/// `berth start`.
pub(crate) async fn start(client: &Client, args: &StartArgs) -> Result<(), CliError> {
    let docker = &client.docker;
    if !(args.attach || args.interactive) {
        let mut failed = Vec::new();
        for c in &args.containers {
            match docker.start_container(c, None).await {
                Ok(()) => println!("{c}"),
                Err(e) => {
                    eprintln!("{}", client.error(e));
                    failed.push(c.clone());
                }
            }
        }
        if failed.is_empty() {
            return Ok(());
        }
        return Err(CliError::Message(format!(
            "Error: failed to start containers: {}",
            failed.join(", ")
        )));
    }
    if args.containers.len() > 1 {
        return Err(CliError::Message(
            "you cannot start and attach multiple containers at once".into(),
        ));
    }
    let keys = detach_keys(args.detach_keys.as_deref())?;
    let c = docker
        .inspect_container(&args.containers[0], None)
        .await
        .map_err(|e| client.error(e))?;
    let id = c.id.clone().unwrap_or_else(|| args.containers[0].clone());
    let config = c.config.unwrap_or_default();
    let tty = config.tty.unwrap_or(false);
    let stdin = args.interactive && config.open_stdin.unwrap_or(false);
    let auto_remove = c.host_config.and_then(|h| h.auto_remove).unwrap_or(false);
    let sig = (!tty).then(|| proxy_signals(docker.clone(), id.clone()));
    let opts = AttachContainerOptions {
        detach_keys: args.detach_keys.clone(),
        logs: false,
        stream: true,
        stdin,
        stdout: true,
        stderr: true,
    };
    let a = docker
        .attach_container(&id, Some(opts))
        .await
        .map_err(|e| client.error(e))?;
    let streams = tokio::spawn(pump(
        a.output,
        a.input,
        PumpOptions {
            stdin,
            tty,
            detach_keys: keys,
        },
    ));
    let wait = spawn_wait(
        client,
        &id,
        if auto_remove { "removed" } else { "next-exit" },
    )
    .await;
    if let Err(e) = docker.start_container(&id, None).await {
        streams.abort();
        wait.abort();
        if let Some(s) = sig {
            s.abort();
        }
        return Err(client.error(e));
    }
    let resize = (tty && std::io::stdout().is_terminal())
        .then(|| monitor_tty_size(docker.clone(), ResizeTarget::Container(id.clone())));
    let end = streams
        .await
        .unwrap_or_else(|e| Err(CliError::Message(e.to_string())));
    finish_attached(client, &id, end, wait, [resize, sig]).await
}

/// `berth attach`.
pub(crate) async fn attach(client: &Client, args: &AttachArgs) -> Result<(), CliError> {
    let docker = &client.docker;
    let keys = detach_keys(args.detach_keys.as_deref())?;
    let wait = spawn_wait(client, &args.container, "not-running").await;
    let c = match docker.inspect_container(&args.container, None).await {
        Ok(c) => c,
        Err(e) => {
            wait.abort();
            return Err(client.error(e));
        }
    };
    let state = c.state.clone().unwrap_or_default();
    let refuse = if state.paused == Some(true) {
        Some("You cannot attach to a paused container, unpause it first")
    } else if state.restarting == Some(true) {
        Some("You cannot attach to a restarting container, wait until it is running")
    } else if state.running != Some(true) {
        Some("You cannot attach to a stopped container, start it first")
    } else {
        None
    };
    if let Some(m) = refuse {
        wait.abort();
        return Err(CliError::Message(m.into()));
    }
    let id = c.id.clone().unwrap_or_else(|| args.container.clone());
    let config = c.config.unwrap_or_default();
    let tty = config.tty.unwrap_or(false);
    let stdin = !args.no_stdin && config.open_stdin.unwrap_or(false);
    if tty && stdin && !std::io::stdin().is_terminal() {
        wait.abort();
        return Err(CliError::Message("the input device is not a TTY".into()));
    }
    let opts = AttachContainerOptions {
        detach_keys: args.detach_keys.clone(),
        logs: false,
        stream: true,
        stdin,
        stdout: true,
        stderr: true,
    };
    let a = match docker.attach_container(&id, Some(opts)).await {
        Ok(a) => a,
        Err(e) => {
            wait.abort();
            return Err(client.error(e));
        }
    };
    let sig = (args.sig_proxy && !tty).then(|| proxy_signals(docker.clone(), id.clone()));
    let resize = (tty && std::io::stdout().is_terminal())
        .then(|| monitor_tty_size(docker.clone(), ResizeTarget::Container(id.clone())));
    let end = pump(
        a.output,
        a.input,
        PumpOptions {
            stdin,
            tty,
            detach_keys: keys,
        },
    )
    .await;
    finish_attached(client, &id, end, wait, [resize, sig]).await
}

/// `berth exec`.
pub(crate) async fn exec(client: &Client, args: &ExecArgs) -> Result<(), CliError> {
    let docker = &client.docker;
    let keys = detach_keys(args.detach_keys.as_deref())?;
    docker
        .inspect_container(&args.container, None)
        .await
        .map_err(|e| client.error(e))?;
    if args.tty && args.interactive && !args.detach && !std::io::stdin().is_terminal() {
        return Err(CliError::Message("the input device is not a TTY".into()));
    }
    let mut env = Vec::new();
    for f in &args.env_file {
        let text =
            std::fs::read_to_string(f).map_err(|e| CliError::Message(format!("open {f}: {e}")))?;
        for line in text.lines() {
            let l = line.trim_start();
            if l.is_empty() || l.starts_with('#') {
                continue;
            }
            env.push(expand_env(l, &env_lookup).map_err(CliError::Message)?);
        }
    }
    for e in &args.env {
        env.push(expand_env(e, &env_lookup).map_err(CliError::Message)?);
    }
    let attach_out = !args.detach;
    let stdin = args.interactive && !args.detach;
    let cfg = CreateExecOptions::<String> {
        attach_stdin: Some(stdin),
        attach_stdout: Some(attach_out),
        attach_stderr: Some(attach_out),
        tty: Some(args.tty),
        detach_keys: args.detach_keys.clone(),
        env: (!env.is_empty()).then_some(env),
        cmd: Some(args.command.clone()),
        privileged: Some(args.privileged),
        user: args.user.clone(),
        working_dir: args.workdir.clone(),
    };
    let exec = docker
        .create_exec(&args.container, cfg)
        .await
        .map_err(|e| client.error(e))?;
    let start = StartExecOptions {
        detach: args.detach,
        tty: args.tty,
        output_capacity: None,
    };
    let started = docker
        .start_exec(&exec.id, Some(start))
        .await
        .map_err(|e| client.error(e))?;
    let StartExecResults::Attached { output, input } = started else {
        return Ok(());
    };
    let resize = (args.tty && std::io::stdout().is_terminal())
        .then(|| monitor_tty_size(docker.clone(), ResizeTarget::Exec(exec.id.clone())));
    let end = pump(
        output,
        input,
        PumpOptions {
            stdin,
            tty: args.tty,
            detach_keys: keys,
        },
    )
    .await;
    if let Some(r) = resize {
        r.abort();
    }
    if end? == StreamEnd::Detached {
        return Ok(());
    }
    let info = docker
        .inspect_exec(&exec.id)
        .await
        .map_err(|e| client.error(e))?;
    status(info.exit_code.unwrap_or(0) as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_for_start_errors() {
        let e = CliError::Daemon(
            "failed to create task: exec: \"nope\": executable file not found in $PATH".into(),
        );
        let s = run_status_error(&e);
        assert_eq!(s.exit_code(), 127);
        assert!(
            s.to_string()
                .starts_with("berth: Error response from daemon: failed")
        );
        assert!(
            s.to_string()
                .ends_with("\n\nRun 'berth run --help' for more information")
        );
        let e = CliError::Daemon("exec /etc: permission denied".into());
        assert_eq!(run_status_error(&e).exit_code(), 126);
        let e = CliError::Daemon("No such image: x".into());
        assert_eq!(run_status_error(&e).exit_code(), 125);
    }

    #[test]
    fn image_names_in_messages() {
        assert_eq!(tagged_image("busybox"), "busybox:latest");
        assert_eq!(tagged_image("docker.io/library/alpine:3.19"), "alpine:3.19");
        assert_eq!(tagged_image("me/app@sha256:ab"), "me/app@sha256:ab");
    }

    #[test]
    fn wait_codes() {
        let ok = |code| {
            Some(Ok(ContainerWaitResponse {
                status_code: code,
                error: None,
            }))
        };
        assert_eq!(wait_result(ok(0)).unwrap(), 0);
        assert_eq!(
            wait_result(Some(Err(BollardError::DockerContainerWaitError {
                error: String::new(),
                code: 3
            })))
            .unwrap(),
            3
        );
        assert!(wait_result(None).is_err());
    }
}
