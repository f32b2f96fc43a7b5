//! `berth build`: docker's legacy-builder client. The context (see `build_context`) is tarred
//! on a blocking thread and streamed as a chunked `POST /build` (a raw request: bollard's
//! `build_image` takes one `t` and drops `errorDetail.code`); the answer is shown as the docker
//! CLI shows it: `stream` text raw as it arrives, the "Sending build context to Docker daemon"
//! line once the upload ended, `aux.ID` kept for `--iidfile`, and an `errorDetail` ending the
//! command with its `code` (else 1). `-q` buffers everything and prints only the image ID (or,
//! on failure, the buffered output on stderr).
//!
//! Owns: the flags, the query, the message display. Must not know: how the daemon builds.

use std::io::Write;

use clap::{ArgAction, Args};
use serde_json::Value;
use tokio::sync::mpsc;

use super::build_context;
use crate::client::{CliError, Client};
use crate::raw::query_escape;
use crate::raw_stream;

#[derive(Debug, Args)]
pub(crate) struct BuildArgs {
    /// Add a custom host-to-IP mapping ("host:ip")
    #[arg(long = "add-host", value_name = "list")]
    pub(crate) add_host: Vec<String>,
    /// Set build-time variables
    #[arg(long = "build-arg", value_name = "list")]
    pub(crate) build_arg: Vec<String>,
    /// Images to consider as cache sources
    #[arg(long = "cache-from", value_name = "strings")]
    pub(crate) cache_from: Vec<String>,
    /// Name of the Dockerfile (Default is "PATH/Dockerfile")
    #[arg(short = 'f', long = "file", value_name = "string")]
    pub(crate) file: Option<String>,
    /// Always remove intermediate containers
    #[arg(long = "force-rm")]
    pub(crate) force_rm: bool,
    /// Write the image ID to the file
    #[arg(long, value_name = "string")]
    pub(crate) iidfile: Option<String>,
    /// Set metadata for an image
    #[arg(long = "label", value_name = "list")]
    pub(crate) label: Vec<String>,
    /// Set the networking mode for the RUN instructions during build
    #[arg(long, value_name = "string", default_value = "default")]
    pub(crate) network: String,
    /// Do not use cache when building the image
    #[arg(long = "no-cache")]
    pub(crate) no_cache: bool,
    /// Set platform if server is multi-platform capable
    #[arg(long, value_name = "string", env = "DOCKER_DEFAULT_PLATFORM")]
    pub(crate) platform: Option<String>,
    /// Always attempt to pull a newer version of the image
    #[arg(long)]
    pub(crate) pull: bool,
    /// Suppress the build output and print image ID on success
    #[arg(short = 'q', long)]
    pub(crate) quiet: bool,
    /// Remove intermediate containers after a successful build
    #[arg(
        long,
        action = ArgAction::Set,
        num_args = 0..=1,
        require_equals = true,
        default_value = "true",
        default_missing_value = "true"
    )]
    pub(crate) rm: bool,
    /// Size of "/dev/shm"
    #[arg(long = "shm-size", value_name = "bytes")]
    pub(crate) shm_size: Option<String>,
    /// Name and optionally a tag in the "name:tag" format
    #[arg(short = 't', long = "tag", value_name = "list")]
    pub(crate) tag: Vec<String>,
    /// Set the target build stage to build.
    #[arg(long, value_name = "string")]
    pub(crate) target: Option<String>,
    #[arg(value_name = "PATH | URL | -")]
    pub(crate) context: String,
}

/// docker's `opts.ValidateEnv` for `--build-arg`: `k=v` as is, `k` alone takes `$k` from the
/// environment, and stays without a value (JSON `null`) when it is unset.
fn build_args(
    flags: &[String],
    env: impl Fn(&str) -> Option<String>,
) -> Result<serde_json::Map<String, Value>, CliError> {
    let mut out = serde_json::Map::new();
    for f in flags {
        let (k, v) = match f.split_once('=') {
            Some((k, v)) => (k, Some(v.to_string())),
            None => (f.as_str(), env(f)),
        };
        if k.is_empty() {
            return Err(CliError::Usage(format!(
                "invalid argument \"{f}\" for \"--build-arg\" flag: invalid environment variable: {f}"
            )));
        }
        out.insert(k.to_string(), v.map_or(Value::Null, Value::String));
    }
    Ok(out)
}

/// The query string docker's client sends for these flags.
fn query(args: &BuildArgs, dockerfile: &str) -> Result<String, CliError> {
    let mut q: Vec<(&str, String)> = Vec::new();
    for t in &args.tag {
        q.push(("t", t.clone()));
    }
    for h in &args.add_host {
        let h = match h.split_once('=') {
            Some((n, ip)) => format!("{n}:{ip}"),
            None => h.clone(),
        };
        if !h.contains(':') {
            return Err(CliError::Usage(format!(
                "invalid argument \"{h}\" for \"--add-host\" flag: bad format for add-host: \"{h}\""
            )));
        }
        q.push(("extrahosts", h));
    }
    if args.quiet {
        q.push(("q", "1".into()));
    }
    if args.no_cache {
        q.push(("nocache", "1".into()));
    }
    if !args.rm {
        q.push(("rm", "0".into()));
    }
    if args.force_rm {
        q.push(("forcerm", "1".into()));
    }
    if args.pull {
        q.push(("pull", "1".into()));
    }
    q.push(("networkmode", args.network.clone()));
    let shm = match args.shm_size.as_deref() {
        Some(s) if !s.is_empty() => super::create::ram_in_bytes(s).map_err(|e| {
            CliError::Usage(format!(
                "invalid argument \"{s}\" for \"--shm-size\" flag: {e}"
            ))
        })?,
        _ => 0,
    };
    q.push(("shmsize", shm.to_string()));
    q.push(("dockerfile", dockerfile.to_string()));
    q.push(("target", args.target.clone().unwrap_or_default()));
    let build_args = build_args(&args.build_arg, |k| std::env::var(k).ok())?;
    if !build_args.is_empty() {
        q.push(("buildargs", Value::Object(build_args).to_string()));
    }
    if !args.label.is_empty() {
        let labels: serde_json::Map<String, Value> = args
            .label
            .iter()
            .map(|l| match l.split_once('=') {
                Some((k, v)) => (k.to_string(), Value::String(v.to_string())),
                None => (l.clone(), Value::String(String::new())),
            })
            .collect();
        q.push(("labels", Value::Object(labels).to_string()));
    }
    if !args.cache_from.is_empty() {
        q.push(("cachefrom", serde_json::to_string(&args.cache_from)?));
    }
    q.push((
        "platform",
        args.platform.clone().unwrap_or_default().to_lowercase(),
    ));
    q.push(("version", "1".into()));
    Ok(q.iter()
        .map(|(k, v)| format!("{k}={}", query_escape(v)))
        .collect::<Vec<_>>()
        .join("&"))
}

/// The upload line as the docker CLI's progress output ends it when stdout is not a terminal
/// (only the last update, then its `\r\n`).
fn sending_line(bytes: u64) -> String {
    format!(
        "Sending build context to Docker daemon {:>8}\r\r\n",
        human_size(bytes)
    )
}

/// Go's `units.HumanSize`: 4 significant digits, decimal units.
pub(crate) fn human_size(n: u64) -> String {
    const UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1000.0 && i < UNITS.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    format!("{}{}", format_g4(v), UNITS[i])
}

/// Go's `%.4g` for values below 10000.
fn format_g4(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let sci = format!("{v:.3e}");
    let exp: i32 = sci
        .split_once('e')
        .and_then(|(_, e)| e.parse().ok())
        .unwrap_or(0);
    let decimals = usize::try_from(3 - exp).unwrap_or(0);
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// Where output goes: the terminal, or (with `-q`) a buffer shown only on failure.
struct Output {
    quiet: bool,
    progress: String,
    build: String,
}

impl Output {
    fn progress(&mut self, text: &str) {
        if self.quiet {
            self.progress.push_str(text);
        } else {
            print_now(text);
        }
    }

    fn build(&mut self, text: &str) {
        if self.quiet {
            self.build.push_str(text);
        } else {
            print_now(text);
        }
    }

    /// On failure with `-q`, what was held back goes to stderr (as docker does).
    fn dump_on_error(&self) {
        if self.quiet {
            eprint!("{}{}", self.progress, self.build);
        }
    }
}

fn print_now(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

/// What one stream message means for the command.
#[derive(Debug, PartialEq)]
enum Shown {
    Text(String),
    Aux(String),
    Failed { code: i32, message: String },
    Nothing,
}

/// docker's `jsonmessage.DisplayJSONMessagesStream` for one message, as it shows them off a
/// terminal.
fn show(v: &Value) -> Shown {
    if let Some(detail) = v.get("errorDetail").filter(|d| !d.is_null()) {
        let code = detail
            .get("code")
            .and_then(Value::as_i64)
            .and_then(|c| i32::try_from(c).ok())
            .filter(|c| *c != 0)
            .unwrap_or(1);
        let message = detail
            .get("message")
            .and_then(Value::as_str)
            .or_else(|| v.get("error").and_then(Value::as_str))
            .unwrap_or("")
            .to_string();
        return Shown::Failed { code, message };
    }
    if let Some(e) = v
        .get("error")
        .and_then(Value::as_str)
        .filter(|e| !e.is_empty())
    {
        return Shown::Failed {
            code: 1,
            message: e.to_string(),
        };
    }
    if let Some(aux) = v.get("aux").filter(|a| !a.is_null()) {
        let id = aux.get("ID").and_then(Value::as_str).unwrap_or("");
        return Shown::Aux(id.to_string());
    }
    if let Some(s) = v
        .get("stream")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
    {
        return Shown::Text(s.to_string());
    }
    // Progress bars (a FROM's pull): docker redraws them in place on a terminal and leaves
    // them out elsewhere; berth leaves them out everywhere.
    if v.get("progress")
        .and_then(Value::as_str)
        .is_some_and(|p| !p.is_empty())
    {
        return Shown::Nothing;
    }
    let status = v.get("status").and_then(Value::as_str).unwrap_or("");
    let id = v.get("id").and_then(Value::as_str).unwrap_or("");
    if id.is_empty() {
        Shown::Text(format!("{status}\n"))
    } else {
        Shown::Text(format!("{id}: {status}\n"))
    }
}

/// `berth build`.
pub(crate) async fn build(client: &Client, args: &BuildArgs) -> Result<(), CliError> {
    if let Some(f) = &args.iidfile {
        // No stale ID file if this build fails.
        match std::fs::remove_file(f) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(CliError::Message(format!("Removing image ID file: {e}")));
            }
            _ => {}
        }
    }
    let prepared = build_context::prepare(
        &args.context,
        args.file.as_deref(),
        &mut std::io::stdin().lock(),
    )?;
    let query = query(args, &prepared.dockerfile)?;
    let headers = vec![
        "Content-Type: application/x-tar".to_string(),
        format!(
            "X-Registry-Config: {}",
            super::login::registry_config_header()
        ),
    ];
    let (tx, rx) = mpsc::channel(4);
    let body = prepared.body;
    let producer = tokio::task::spawn_blocking(move || body.write_to(ChannelWriter::new(tx)));
    let (mut upload, mut resp) =
        raw_stream::post_chunked(client, &format!("/build?{query}"), &headers, rx).await?;
    if resp.status >= 400 {
        let body = resp.read_all().await?;
        // With `-q` docker shows the held-back upload line before the daemon's refusal.
        if args.quiet && upload.is_finished() {
            if let Ok(Ok(up)) = upload.await {
                eprint!("{}", sending_line(up.bytes));
            }
        } else {
            upload.abort();
        }
        return Err(CliError::Daemon(error_message(&body)));
    }
    let mut out = Output {
        quiet: args.quiet,
        progress: String::new(),
        build: String::new(),
    };
    let mut image_id = String::new();
    let mut uploading = true;
    // Holds the connection's write half open until the answer ends.
    let mut uploaded = None;
    let mut upload_error: Option<String> = None;
    let mut failure: Option<CliError> = None;
    loop {
        tokio::select! {
            // The upload ends before the daemon can answer about the whole context: when both
            // are ready, its line comes first, as docker's does.
            biased;
            done = &mut upload, if uploading => {
                uploading = false;
                match done {
                    Ok(Ok(up)) => {
                        out.progress(&sending_line(up.bytes));
                        uploaded = Some(up);
                    }
                    Ok(Err(e)) => upload_error = Some(e.to_string()),
                    Err(e) => upload_error = Some(e.to_string()),
                }
            }
            msg = resp.next_message() => {
                let Some(v) = msg? else { break };
                match show(&v) {
                    Shown::Text(t) => out.build(&t),
                    Shown::Aux(id) => image_id = id,
                    Shown::Failed { code, message } => {
                        failure = Some(CliError::Status { code, message });
                        break;
                    }
                    Shown::Nothing => {}
                }
            }
        }
    }
    if uploading {
        upload.abort();
    }
    drop(uploaded);
    // The producer's own error says more than the broken upload it caused.
    if let Ok(Err(e)) = producer.await {
        upload_error = Some(e.to_string());
    }
    if let Some(f) = failure {
        out.dump_on_error();
        return Err(f);
    }
    if let Some(e) = upload_error {
        out.dump_on_error();
        return Err(CliError::Message(format!(
            "error sending the build context: {e}"
        )));
    }
    if args.quiet {
        // docker prints (and writes to --iidfile) the daemon's quiet output as it came.
        image_id = out.build.clone();
        print_now(&image_id);
    }
    if let Some(f) = &args.iidfile {
        if image_id.is_empty() {
            return Err(CliError::Message(format!(
                "Server did not provide an image ID. Cannot write {f}"
            )));
        }
        std::fs::write(f, &image_id)?;
    }
    Ok(())
}

/// The `message` of a JSON error body, or the body as text.
fn error_message(body: &[u8]) -> String {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_else(|| String::from_utf8_lossy(body).trim().to_string())
}

/// A `Write` handing 256 KiB chunks to the upload task.
struct ChannelWriter {
    tx: mpsc::Sender<std::io::Result<Vec<u8>>>,
    buf: Vec<u8>,
}

const CHUNK: usize = 256 * 1024;

impl ChannelWriter {
    fn new(tx: mpsc::Sender<std::io::Result<Vec<u8>>>) -> Self {
        Self {
            tx,
            buf: Vec::with_capacity(CHUNK),
        }
    }

    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::BrokenPipe))
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Wrap {
        #[command(flatten)]
        a: BuildArgs,
    }

    fn parse(args: &[&str]) -> BuildArgs {
        Wrap::try_parse_from(std::iter::once("build").chain(args.iter().copied()))
            .unwrap()
            .a
    }

    #[test]
    fn sizes_as_go_units() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(512), "512B");
        assert_eq!(human_size(2048), "2.048kB");
        assert_eq!(human_size(10_000), "10kB");
        assert_eq!(human_size(1_234_567), "1.235MB");
        assert_eq!(human_size(104_858_112), "104.9MB");
        assert_eq!(format!("{:>8}", human_size(2048)), " 2.048kB");
    }

    #[test]
    fn build_args_from_the_environment() {
        let env = |k: &str| (k == "SET").then(|| "from-env".to_string());
        let m = build_args(&["A=1".into(), "SET".into(), "UNSET".into()], env).unwrap();
        assert_eq!(
            Value::Object(m).to_string(),
            r#"{"A":"1","SET":"from-env","UNSET":null}"#
        );
        assert!(build_args(&["=x".into()], env).is_err());
    }

    #[test]
    fn query_carries_the_flags() {
        let a = parse(&[
            "-t",
            "a:1",
            "--tag",
            "b",
            "--no-cache",
            "--rm=false",
            "--force-rm",
            "--pull",
            "-q",
            "--target",
            "t1",
            "--label",
            "l=v",
            "--network",
            "host",
            "--add-host",
            "h=1.2.3.4",
            "--shm-size",
            "1m",
            "--platform",
            "Linux/AMD64",
            "--cache-from",
            "c1",
            ".",
        ]);
        let q = query(&a, "sub/Dockerfile").unwrap();
        for want in [
            "t=a%3A1",
            "t=b",
            "nocache=1",
            "rm=0",
            "forcerm=1",
            "pull=1",
            "q=1",
            "target=t1",
            "labels=%7B%22l%22%3A%22v%22%7D",
            "networkmode=host",
            "extrahosts=h%3A1.2.3.4",
            "shmsize=1048576",
            "platform=linux%2Famd64",
            "cachefrom=%5B%22c1%22%5D",
            "dockerfile=sub%2FDockerfile",
            "version=1",
        ] {
            assert!(q.split('&').any(|p| p == want), "{want} missing in {q}");
        }
        let a = parse(&["."]);
        let q = query(&a, "Dockerfile").unwrap();
        assert!(!q.contains("rm=0") && !q.contains("nocache") && !q.contains("buildargs"));
        assert!(q.contains("networkmode=default"));
        assert!(parse(&["--rm", "."]).rm);
    }

    #[test]
    fn messages_as_the_docker_cli_shows_them() {
        let j = |s: &str| serde_json::from_str::<Value>(s).unwrap();
        assert_eq!(
            show(&j(r#"{"stream":"Step 1/2 : FROM x"}"#)),
            Shown::Text("Step 1/2 : FROM x".into())
        );
        assert_eq!(
            show(&j(r#"{"aux":{"ID":"sha256:ab"}}"#)),
            Shown::Aux("sha256:ab".into())
        );
        assert_eq!(
            show(&j(
                r#"{"errorDetail":{"code":3,"message":"boom"},"error":"boom"}"#
            )),
            Shown::Failed {
                code: 3,
                message: "boom".into()
            }
        );
        assert_eq!(
            show(&j(r#"{"errorDetail":{"message":"x"},"error":"x"}"#)),
            Shown::Failed {
                code: 1,
                message: "x".into()
            }
        );
        assert_eq!(
            show(&j(
                r#"{"status":"Downloading","id":"ab","progress":"[=>  ]"}"#
            )),
            Shown::Nothing
        );
        assert_eq!(
            show(&j(
                r#"{"status":"Pulling from library/busybox","id":"latest"}"#
            )),
            Shown::Text("latest: Pulling from library/busybox\n".into())
        );
    }
}
