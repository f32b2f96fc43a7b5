//! Hijacked-stream plumbing shared by `run`, `start -a`, `attach` and `exec`: copying
//! stdin/stdout/stderr, raw terminal mode, detach keys, resizes and signal forwarding.

use std::io::{IsTerminal, Write};
use std::pin::Pin;

use bollard::Docker;
use bollard::container::LogOutput;
use bollard::errors::Error as BollardError;
use futures_util::{Stream, StreamExt};
use tokio::io::{AsyncWrite, AsyncWriteExt};

use crate::client::CliError;

/// docker's default detach sequence: ctrl-p ctrl-q.
pub(crate) const DEFAULT_DETACH_KEYS: &[u8] = &[0x10, 0x11];

/// docker's `term.ToBytes`: `ctrl-p,ctrl-q`, `a,ctrl-@`, …
pub(crate) fn parse_detach_keys(keys: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    for key in keys.split(',') {
        let k = key.trim();
        if k.chars().count() > 1 {
            let lower = k.to_lowercase();
            let Some(c) = lower.strip_prefix("ctrl-") else {
                return Err(format!("Unknown character: '{k}'"));
            };
            let mut chars = c.chars();
            let (Some(ch), None) = (chars.next(), chars.next()) else {
                return Err(format!("Unknown character: '{k}'"));
            };
            let b = match ch {
                'a'..='z' => ch as u8 - b'a' + 1,
                '@' => 0,
                '[' => 27,
                '\\' => 28,
                ']' => 29,
                '^' => 30,
                '_' => 31,
                _ => return Err(format!("Unknown character: '{k}'")),
            };
            out.push(b);
        } else if let Some(c) = k.chars().next() {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        }
    }
    Ok(out)
}

/// Detects the detach sequence in the input, like docker's `EscapeProxy`: bytes that could
/// start the sequence are held back until they match (detach) or not (sent on).
#[derive(Debug, Default)]
pub(crate) struct EscapeScanner {
    keys: Vec<u8>,
    matched: usize,
}

impl EscapeScanner {
    pub(crate) fn new(keys: Vec<u8>) -> Self {
        Self { keys, matched: 0 }
    }

    /// Returns the bytes to forward, and whether the full sequence was typed.
    pub(crate) fn feed(&mut self, input: &[u8]) -> (Vec<u8>, bool) {
        let mut out = Vec::with_capacity(input.len());
        if self.keys.is_empty() {
            out.extend_from_slice(input);
            return (out, false);
        }
        for &b in input {
            if b == self.keys[self.matched] {
                self.matched += 1;
                if self.matched == self.keys.len() {
                    self.matched = 0;
                    return (out, true);
                }
            } else {
                out.extend_from_slice(&self.keys[..self.matched]);
                self.matched = 0;
                if b == self.keys[0] {
                    self.matched = 1;
                    if self.keys.len() == 1 {
                        self.matched = 0;
                        return (out, true);
                    }
                } else {
                    out.push(b);
                }
            }
        }
        (out, false)
    }
}

/// The local terminal's size as `[rows, cols]`, when stdout is a terminal.
pub(crate) fn terminal_size() -> Option<[usize; 2]> {
    if !std::io::stdout().is_terminal() {
        return None;
    }
    terminal_size::terminal_size().map(|(w, h)| [h.0 as usize, w.0 as usize])
}

/// Puts the terminal on stdin into raw mode; restores it when dropped.
pub(crate) struct RawTerminal {
    #[cfg(unix)]
    saved: Option<nix::sys::termios::Termios>,
}

impl RawTerminal {
    /// Raw mode when stdin is a terminal; a no-op guard otherwise.
    pub(crate) fn enable() -> Self {
        #[cfg(unix)]
        {
            use nix::sys::termios::{SetArg, cfmakeraw, tcgetattr, tcsetattr};
            let stdin = std::io::stdin();
            if !stdin.is_terminal() {
                return Self { saved: None };
            }
            let Ok(saved) = tcgetattr(&stdin) else {
                return Self { saved: None };
            };
            let mut raw = saved.clone();
            cfmakeraw(&mut raw);
            // Keep output post-processing so that our own messages still start at column 0.
            raw.output_flags |= nix::sys::termios::OutputFlags::OPOST;
            if tcsetattr(&stdin, SetArg::TCSANOW, &raw).is_err() {
                return Self { saved: None };
            }
            Self { saved: Some(saved) }
        }
        #[cfg(not(unix))]
        {
            Self {}
        }
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        #[cfg(unix)]
        if let Some(saved) = self.saved.take() {
            let _ = nix::sys::termios::tcsetattr(
                std::io::stdin(),
                nix::sys::termios::SetArg::TCSANOW,
                &saved,
            );
        }
    }
}

/// What is resized on terminal size changes.
#[derive(Debug, Clone)]
pub(crate) enum ResizeTarget {
    Container(String),
    Exec(String),
}

async fn resize_once(docker: &Docker, target: &ResizeTarget, size: [usize; 2]) -> bool {
    let [h, w] = size;
    if h == 0 && w == 0 {
        return true;
    }
    match target {
        ResizeTarget::Container(id) => docker
            .resize_container_tty(
                id,
                bollard::query_parameters::ResizeContainerTTYOptions {
                    h: h as i32,
                    w: w as i32,
                },
            )
            .await
            .is_ok(),
        ResizeTarget::Exec(id) => docker
            .resize_exec(
                id,
                bollard::query_parameters::ResizeExecOptions {
                    h: h as i32,
                    w: w as i32,
                },
            )
            .await
            .is_ok(),
    }
}

/// Sends the initial size (retrying like docker, up to 10 times) and follows SIGWINCH.
/// The returned task must be aborted when the session ends.
pub(crate) fn monitor_tty_size(
    docker: Docker,
    target: ResizeTarget,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        if let Some(size) = terminal_size() {
            for retry in 0..10u64 {
                if resize_once(&docker, &target, size).await {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis((retry + 1) * 10)).await;
            }
        }
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let Ok(mut winch) = signal(SignalKind::window_change()) else {
                return;
            };
            while winch.recv().await.is_some() {
                if let Some(size) = terminal_size() {
                    resize_once(&docker, &target, size).await;
                }
            }
        }
    })
}

/// Forwards SIGINT/SIGTERM (and a few more) to the container as `kill?signal=`.
/// The returned task must be aborted when the session ends.
pub(crate) fn proxy_signals(docker: Docker, id: String) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let kinds = [
                (SignalKind::interrupt(), "INT"),
                (SignalKind::terminate(), "TERM"),
                (SignalKind::hangup(), "HUP"),
                (SignalKind::quit(), "QUIT"),
                (SignalKind::user_defined1(), "USR1"),
                (SignalKind::user_defined2(), "USR2"),
            ];
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<&'static str>();
            for (kind, name) in kinds {
                let Ok(mut s) = signal(kind) else { continue };
                let tx = tx.clone();
                tokio::spawn(async move {
                    while s.recv().await.is_some() {
                        if tx.send(name).is_err() {
                            break;
                        }
                    }
                });
            }
            drop(tx);
            while let Some(name) = rx.recv().await {
                let opts = bollard::query_parameters::KillContainerOptions {
                    signal: name.to_string(),
                };
                let _ = docker.kill_container(&id, Some(opts)).await;
            }
        }
        #[cfg(not(unix))]
        {
            while tokio::signal::ctrl_c().await.is_ok() {
                let opts = bollard::query_parameters::KillContainerOptions {
                    signal: "INT".to_string(),
                };
                let _ = docker.kill_container(&id, Some(opts)).await;
            }
        }
    })
}

/// Reads stdin on a plain thread (so a blocked read never holds up exit) into a channel.
fn stdin_channel() -> tokio::sync::mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = tokio::sync::mpsc::channel::<Vec<u8>>(16);
    std::thread::spawn(move || {
        use std::io::Read;
        let mut stdin = std::io::stdin();
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match stdin.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx.blocking_send(buf[..n].to_vec()).is_err() {
                        break;
                    }
                }
            }
        }
    });
    rx
}

/// How a hijacked session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StreamEnd {
    /// The daemon closed the output (the process exited).
    Closed,
    /// The user typed the detach sequence.
    Detached,
}

/// Options for [`pump`].
#[derive(Debug, Clone)]
pub(crate) struct PumpOptions {
    /// Copy local stdin into the connection.
    pub(crate) stdin: bool,
    /// TTY mode: raw terminal and client-side detach keys.
    pub(crate) tty: bool,
    /// The detach sequence (TTY mode only).
    pub(crate) detach_keys: Vec<u8>,
}

type Output = Pin<Box<dyn Stream<Item = Result<LogOutput, BollardError>> + Send>>;
type Input = Pin<Box<dyn AsyncWrite + Send>>;

fn write_out(item: LogOutput) -> std::io::Result<()> {
    match item {
        LogOutput::StdErr { message } => {
            let mut e = std::io::stderr().lock();
            e.write_all(&message)?;
            e.flush()
        }
        LogOutput::StdOut { message } | LogOutput::Console { message } => {
            let mut o = std::io::stdout().lock();
            o.write_all(&message)?;
            o.flush()
        }
        LogOutput::StdIn { .. } => Ok(()),
    }
}

/// Copies the streams until the output ends (or the user detaches). Half-closes the
/// connection after stdin EOF, or at once when stdin is not attached.
pub(crate) async fn pump(
    mut output: Output,
    mut input: Input,
    opts: PumpOptions,
) -> Result<StreamEnd, CliError> {
    let _raw = (opts.tty && opts.stdin).then(RawTerminal::enable);
    let out = async {
        while let Some(item) = output.next().await {
            match item {
                Ok(item) => write_out(item)?,
                Err(e) => return Err(CliError::Message(e.to_string())),
            }
        }
        Ok::<_, CliError>(())
    };
    let inp = async {
        if !opts.stdin {
            let _ = input.shutdown().await;
            return StreamEnd::Closed;
        }
        let mut rx = stdin_channel();
        let mut scanner = EscapeScanner::new(if opts.tty {
            opts.detach_keys.clone()
        } else {
            Vec::new()
        });
        while let Some(chunk) = rx.recv().await {
            let (data, detached) = scanner.feed(&chunk);
            if !data.is_empty() && input.write_all(&data).await.is_err() {
                break;
            }
            let _ = input.flush().await;
            if detached {
                return StreamEnd::Detached;
            }
        }
        let _ = input.shutdown().await;
        StreamEnd::Closed
    };
    tokio::pin!(out);
    tokio::pin!(inp);
    let mut input_done = false;
    loop {
        tokio::select! {
            r = &mut out => {
                r?;
                return Ok(StreamEnd::Closed);
            }
            end = &mut inp, if !input_done => {
                if end == StreamEnd::Detached {
                    return Ok(StreamEnd::Detached);
                }
                input_done = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detach_keys_parse() {
        assert_eq!(
            parse_detach_keys("ctrl-p,ctrl-q").unwrap(),
            DEFAULT_DETACH_KEYS
        );
        assert_eq!(
            parse_detach_keys("ctrl-@,a,ctrl-[").unwrap(),
            vec![0, b'a', 27]
        );
        assert!(parse_detach_keys("ctrl-p,foo").is_err());
    }

    #[test]
    fn escape_scanner() {
        let mut s = EscapeScanner::new(DEFAULT_DETACH_KEYS.to_vec());
        assert_eq!(s.feed(b"ab"), (b"ab".to_vec(), false));
        // A partial match is held back, then released on mismatch.
        assert_eq!(s.feed(&[0x10]), (vec![], false));
        assert_eq!(s.feed(b"x"), (vec![0x10, b'x'], false));
        assert_eq!(s.feed(&[b'y', 0x10, 0x11, b'z']), (vec![b'y'], true));
        let mut s = EscapeScanner::new(DEFAULT_DETACH_KEYS.to_vec());
        assert_eq!(s.feed(&[0x10, 0x10, 0x11]), (vec![0x10], true));
        let mut s = EscapeScanner::new(Vec::new());
        assert_eq!(s.feed(&[0x10, 0x11]), (vec![0x10, 0x11], false));
    }
}
