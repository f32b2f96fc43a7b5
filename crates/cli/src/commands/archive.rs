//! `load`, `save` and `import`, plus docker's JSON message stream display.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::path::Path;

use bollard::query_parameters::{CreateImageOptions, ImportImageOptions};
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use tokio::io::AsyncWriteExt;

use super::{ImportArgs, LoadArgs, SaveArgs};
use crate::client::{CliError, Client};
use crate::format::units;

/// One message of a JSON message stream (§3.7), the fields the display uses.
#[derive(Debug, Default, Clone)]
pub(crate) struct JsonMessage {
    pub(crate) id: Option<String>,
    pub(crate) status: Option<String>,
    pub(crate) stream: Option<String>,
    pub(crate) current: Option<i64>,
    pub(crate) total: Option<i64>,
    /// True when the message carried a `progressDetail` object.
    pub(crate) has_progress: bool,
}

impl From<api_types::models::BuildInfo> for JsonMessage {
    fn from(m: api_types::models::BuildInfo) -> Self {
        let (current, total) = m
            .progress_detail
            .as_ref()
            .map(|p| (p.current, p.total))
            .unwrap_or((None, None));
        Self {
            id: m.id,
            status: m.status,
            stream: m.stream,
            current,
            total,
            has_progress: m.progress_detail.is_some(),
        }
    }
}

impl From<api_types::models::CreateImageInfo> for JsonMessage {
    fn from(m: api_types::models::CreateImageInfo) -> Self {
        let (current, total) = m
            .progress_detail
            .as_ref()
            .map(|p| (p.current, p.total))
            .unwrap_or((None, None));
        Self {
            id: m.id,
            status: m.status,
            stream: None,
            current,
            total,
            has_progress: m.progress_detail.is_some(),
        }
    }
}

/// The width of the terminal on stdout (0 when it reports no size, as Go's GetWinsize).
fn terminal_width() -> usize {
    terminal_size::terminal_size_of(std::io::stdout())
        .map(|(w, _)| usize::from(w.0))
        .unwrap_or(0)
}

/// jsonmessage `JSONProgress.String()`; the bar is shown only on terminals wider than 110.
pub(crate) fn progress_string(current: i64, total: i64, width: usize) -> String {
    if current <= 0 && total <= 0 {
        return String::new();
    }
    if total <= 0 {
        return format!("{:>8}", units::human_size(current as f64));
    }
    let pct = (((current as f64 / total as f64) * 100.0) as i64 / 2).clamp(0, 50) as usize;
    let bar = if width > 110 {
        format!("[{}>{}] ", "=".repeat(pct), " ".repeat(50 - pct))
    } else {
        String::new()
    };
    let cur = units::human_size(current as f64);
    let numbers = if current > total {
        format!("{cur:>8}")
    } else {
        format!("{cur:>8}/{}", units::human_size(total as f64))
    };
    bar + &numbers
}

/// docker's `DisplayJSONMessagesStream`: one line per id on a terminal (updated in place);
/// progress lines are skipped when not on a terminal.
pub(crate) struct MessageDisplay<W: Write> {
    out: W,
    terminal: bool,
    width: usize,
    ids: HashMap<String, usize>,
}

impl<W: Write> MessageDisplay<W> {
    pub(crate) fn new(out: W, terminal: bool) -> Self {
        let width = if terminal { terminal_width() } else { 200 };
        Self {
            out,
            terminal,
            width,
            ids: HashMap::new(),
        }
    }

    pub(crate) fn show(&mut self, m: &JsonMessage) -> std::io::Result<()> {
        let progress = if m.has_progress {
            progress_string(m.current.unwrap_or(0), m.total.unwrap_or(0), self.width)
        } else {
            String::new()
        };
        let mut diff = 0;
        let id = m.id.clone().unwrap_or_default();
        if !id.is_empty() && m.has_progress {
            let line = match self.ids.get(&id) {
                Some(l) => *l,
                None => {
                    let l = self.ids.len();
                    self.ids.insert(id.clone(), l);
                    if self.terminal {
                        writeln!(self.out)?;
                    }
                    l
                }
            };
            diff = self.ids.len() - line;
            if self.terminal && diff > 0 {
                write!(self.out, "\x1b[{diff}A")?;
            }
        } else {
            self.ids.clear();
        }
        self.display(m, &progress)?;
        if !id.is_empty() && self.terminal && diff > 0 {
            write!(self.out, "\x1b[{diff}B")?;
        }
        self.out.flush()
    }

    fn display(&mut self, m: &JsonMessage, progress: &str) -> std::io::Result<()> {
        let stream = m.stream.clone().unwrap_or_default();
        let mut endl = "";
        if self.terminal && stream.is_empty() && m.has_progress {
            write!(self.out, "\x1b[2K\r")?;
            endl = "\r";
        } else if m.has_progress && !progress.is_empty() {
            return Ok(());
        }
        if let Some(id) = m.id.as_deref().filter(|i| !i.is_empty()) {
            write!(self.out, "{id}: ")?;
        }
        let status = m.status.clone().unwrap_or_default();
        if m.has_progress && self.terminal {
            write!(self.out, "{status} {progress}{endl}")
        } else if !stream.is_empty() {
            write!(self.out, "{stream}{endl}")
        } else {
            writeln!(self.out, "{status}{endl}")
        }
    }
}

fn file_stream(
    file: tokio::fs::File,
) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    tokio_util::io::ReaderStream::with_capacity(file, 256 * 1024)
}

fn stdin_stream() -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    tokio_util::io::ReaderStream::with_capacity(tokio::io::stdin(), 256 * 1024)
}

/// `berth load`.
pub(crate) async fn load(client: &Client, args: &LoadArgs) -> Result<(), CliError> {
    let body = match args.input.as_deref() {
        Some(path) if !path.is_empty() => {
            let f = tokio::fs::File::open(path).await?;
            bollard::body_try_stream(file_stream(f))
        }
        _ => {
            if std::io::stdin().is_terminal() {
                return Err(CliError::Message(
                    "requested load from stdin, but stdin is empty".into(),
                ));
            }
            bollard::body_try_stream(stdin_stream())
        }
    };
    let terminal = std::io::stdout().is_terminal();
    let quiet = args.quiet || !terminal;
    let opts = ImportImageOptions {
        quiet,
        platform: args.platform.clone().map(|p| vec![p]),
    };
    let mut stream = Box::pin(client.docker.import_image(opts, body, None));
    let mut display = MessageDisplay::new(std::io::stdout().lock(), terminal);
    while let Some(item) = stream.next().await {
        let msg = item.map_err(|e| client.error(e))?;
        display.show(&msg.into())?;
    }
    Ok(())
}

/// `berth save`.
pub(crate) async fn save(client: &Client, args: &SaveArgs) -> Result<(), CliError> {
    let output = args.output.as_deref().filter(|o| !o.is_empty());
    if output.is_none() && std::io::stdout().is_terminal() {
        return Err(CliError::Message(
            "cowardly refusing to save to a terminal. Use the -o flag or redirect".into(),
        ));
    }
    if let Some(out) = output {
        let dir = Path::new(out)
            .parent()
            .filter(|d| !d.as_os_str().is_empty());
        if let Some(dir) = dir
            && !dir.is_dir()
        {
            return Err(CliError::Message(format!(
                "failed to save image: invalid output path: directory \"{}\" does not exist",
                dir.display()
            )));
        }
    }
    let names: Vec<&str> = args.images.iter().map(String::as_str).collect();
    let mut stream = Box::pin(client.docker.export_images(&names));
    match output {
        None => {
            let mut out = tokio::io::stdout();
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|e| client.error(e))?;
                out.write_all(&chunk).await?;
            }
            out.flush().await?;
        }
        Some(path) => {
            let path = Path::new(path);
            let dir = path
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            let tmp = dir.join(format!(".berth_temp_{}", std::process::id()));
            let result = async {
                let mut opts = tokio::fs::OpenOptions::new();
                opts.write(true).create_new(true);
                #[cfg(unix)]
                opts.mode(0o600);
                let mut f = opts.open(&tmp).await?;
                while let Some(chunk) = stream.next().await {
                    let chunk = chunk.map_err(|e| client.error(e))?;
                    f.write_all(&chunk).await?;
                }
                f.flush().await?;
                f.sync_all().await?;
                drop(f);
                tokio::fs::rename(&tmp, path).await?;
                Ok::<(), CliError>(())
            }
            .await;
            if result.is_err() {
                let _ = tokio::fs::remove_file(&tmp).await;
            }
            result?;
        }
    }
    Ok(())
}

/// `berth import`.
pub(crate) async fn import(client: &Client, args: &ImportArgs) -> Result<(), CliError> {
    let src = args.source.as_str();
    let is_url = src.starts_with("http://") || src.starts_with("https://");
    let body = if src == "-" {
        Some(bollard::body_try_stream(stdin_stream()))
    } else if is_url {
        None
    } else {
        let f = tokio::fs::File::open(src).await?;
        Some(bollard::body_try_stream(file_stream(f)))
    };
    let opts = CreateImageOptions {
        from_src: Some(if is_url {
            src.to_string()
        } else {
            "-".to_string()
        }),
        repo: args.reference.clone(),
        message: args.message.clone(),
        changes: args.change.clone(),
        platform: args.platform.clone().unwrap_or_default(),
        ..Default::default()
    };
    let terminal = std::io::stdout().is_terminal();
    let mut stream = Box::pin(client.docker.create_image(Some(opts), body, None));
    let mut display = MessageDisplay::new(std::io::stdout().lock(), terminal);
    while let Some(item) = stream.next().await {
        let msg = item.map_err(|e| client.error(e))?;
        display.show(&msg.into())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(id: Option<&str>, status: &str, progress: Option<(i64, i64)>) -> JsonMessage {
        JsonMessage {
            id: id.map(str::to_string),
            status: Some(status.to_string()),
            stream: None,
            current: progress.map(|p| p.0),
            total: progress.map(|p| p.1),
            has_progress: progress.is_some(),
        }
    }

    #[test]
    fn non_terminal_skips_progress() {
        let mut buf = Vec::new();
        let mut d = MessageDisplay::new(&mut buf, false);
        d.show(&msg(
            Some("abc"),
            "Loading layer",
            Some((1_200_000, 2_100_000)),
        ))
        .unwrap();
        d.show(&JsonMessage {
            stream: Some("Loaded image: busybox:latest\n".into()),
            ..Default::default()
        })
        .unwrap();
        d.show(&msg(None, "sha256:abcd", None)).unwrap();
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            "Loaded image: busybox:latest\nsha256:abcd\n"
        );
    }

    #[test]
    fn terminal_progress_line() {
        let mut buf = Vec::new();
        let mut d = MessageDisplay::new(&mut buf, true);
        d.width = 200;
        d.show(&msg(
            Some("abc"),
            "Loading layer",
            Some((1_200_000, 2_100_000)),
        ))
        .unwrap();
        let s = String::from_utf8(buf).unwrap();
        assert!(
            s.starts_with("\n\x1b[1A\x1b[2K\rabc: Loading layer [============================>")
        );
        assert!(s.contains("]    1.2MB/2.1MB\r\x1b[1B"), "{s:?}");
    }

    #[test]
    fn progress_strings() {
        assert_eq!(progress_string(0, 0, 200), "");
        assert_eq!(progress_string(1000, 0, 200), "     1kB");
        assert_eq!(progress_string(512, 2_133_000, 80), "    512B/2.133MB");
        let s = progress_string(2_100_000, 2_100_000, 200);
        assert!(s.starts_with(&format!("[{}>] ", "=".repeat(50))));
        assert!(s.ends_with("  2.1MB/2.1MB"));
    }
}
