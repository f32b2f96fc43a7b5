//! Logs and attach: json-file records turned into Docker's stream framing, and the attach proxy.
//!
//! Every attach is proxied to the shim's attach socket. One made before the container starts
//! (what `docker run` does) registers with the container; the start connects it to the shim
//! while the container is created but its process not yet running (the shim is gated), so not a
//! byte is lost however fast the process is, and partial lines (a prompt) arrive at once. The
//! client's stdin waits in its socket until then. The detach keys (`detachKeys`, default
//! ctrl-p ctrl-q) typed on stdin end the session and leave the container running.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use runtime::AttachOptions;
use runtime::logs::{LogLine, Stream};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};

use super::{Containers, Notice, detach};
use crate::{ByteStream, Result};

/// `GET /containers/{id}/logs` parameters.
#[derive(Debug, Clone, Default)]
pub struct LogsRequest {
    pub stdout: bool,
    pub stderr: bool,
    pub follow: bool,
    /// None = all.
    pub tail: Option<usize>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub timestamps: bool,
}

/// `POST /containers/{id}/attach` parameters.
#[derive(Debug, Clone, Default)]
pub struct AttachRequest {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub stream: bool,
    pub logs: bool,
    /// `detachKeys` (moby's syntax); None or empty: ctrl-p,ctrl-q.
    pub detach_keys: Option<String>,
}

/// One frame: 8-byte header unless `tty`.
pub(crate) fn frame(tty: bool, stream: Stream, payload: &[u8]) -> Bytes {
    if tty {
        return Bytes::copy_from_slice(payload);
    }
    let mut v = Vec::with_capacity(payload.len() + 8);
    v.push(match stream {
        Stream::Stdout => 1,
        Stream::Stderr => 2,
    });
    v.extend_from_slice(&[0, 0, 0]);
    v.extend_from_slice(
        &u32::try_from(payload.len())
            .unwrap_or(u32::MAX)
            .to_be_bytes(),
    );
    v.extend_from_slice(payload);
    Bytes::from(v)
}

/// A log line as sent: timestamps (9 digits) inside the payload when asked.
fn line_frame(tty: bool, line: &LogLine, timestamps: bool) -> Bytes {
    if timestamps {
        let mut p = line
            .time
            .format("%Y-%m-%dT%H:%M:%S%.9fZ ")
            .to_string()
            .into_bytes();
        p.extend_from_slice(&line.data);
        frame(tty, line.stream, &p)
    } else {
        frame(tty, line.stream, &line.data)
    }
}

#[derive(serde::Deserialize)]
struct RawLine {
    log: String,
    stream: Stream,
    time: DateTime<Utc>,
}

/// Reads the complete records appended to `path` since `*offset`, advancing it. A file that
/// shrank (rotated) is read from its start.
pub(crate) fn read_new(path: &Path, offset: &mut u64) -> Vec<LogLine> {
    let Ok(mut f) = std::fs::File::open(path) else {
        return Vec::new();
    };
    let len = f.metadata().map_or(0, |m| m.len());
    if len < *offset {
        *offset = 0;
    }
    if f.seek(SeekFrom::Start(*offset)).is_err() {
        return Vec::new();
    }
    let mut buf = Vec::new();
    if f.read_to_end(&mut buf).is_err() {
        return Vec::new();
    }
    let (lines, used) = parse_complete(&buf);
    *offset += used;
    lines
}

/// Parses the complete records in `buf` (up to its last newline); returns them and the bytes used.
fn parse_complete(buf: &[u8]) -> (Vec<LogLine>, u64) {
    let Some(end) = buf.iter().rposition(|b| *b == b'\n') else {
        return (Vec::new(), 0);
    };
    let lines = buf[..=end]
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .filter_map(|l| serde_json::from_slice::<RawLine>(l).ok())
        .map(|r| LogLine {
            stream: r.stream,
            time: r.time,
            data: r.log.into_bytes(),
        })
        .collect();
    (lines, u64::try_from(end + 1).unwrap_or(0))
}

impl LogsRequest {
    fn wants(&self, l: &LogLine) -> bool {
        let s = match l.stream {
            Stream::Stdout => self.stdout,
            Stream::Stderr => self.stderr,
        };
        s && self.since.is_none_or(|t| l.time > t) && self.until.is_none_or(|t| l.time <= t)
    }
}

impl Containers {
    /// `GET /containers/{id}/logs`: (tty, frames). Validation errors come before any byte.
    pub(crate) fn logs(
        self: &Arc<Self>,
        reference: &str,
        req: LogsRequest,
    ) -> Result<(bool, ByteStream)> {
        let ctr = self.get(reference)?;
        let (tty, path) = {
            let r = ctr.rec();
            (r.config.tty.unwrap_or(false), r.log_path.clone())
        };
        let (tx, rx) = mpsc::channel(64);
        tokio::spawn(async move {
            let mut offset = 0u64;
            let p = path.clone();
            let initial = if req.follow {
                let mut off = 0;
                let lines = tokio::task::spawn_blocking(move || {
                    let l = read_new(&p, &mut off);
                    (l, off)
                })
                .await
                .unwrap_or_default();
                offset = lines.1;
                lines.0
            } else {
                tokio::task::spawn_blocking(move || runtime::logs::read_all(&p).unwrap_or_default())
                    .await
                    .unwrap_or_default()
            };
            let mut lines: Vec<LogLine> = initial.into_iter().filter(|l| req.wants(l)).collect();
            if let Some(n) = req.tail {
                let skip = lines.len().saturating_sub(n);
                lines.drain(..skip);
            }
            for l in &lines {
                if tx
                    .send(Ok(line_frame(tty, l, req.timestamps)))
                    .await
                    .is_err()
                {
                    return;
                }
            }
            if !req.follow {
                return;
            }
            let mut rx = ctr.notice.subscribe();
            loop {
                let running = rx.borrow_and_update().running;
                let p = path.clone();
                let mut off = offset;
                let (new, off) = tokio::task::spawn_blocking(move || {
                    let l = read_new(&p, &mut off);
                    (l, off)
                })
                .await
                .unwrap_or_default();
                offset = off;
                for l in new.iter().filter(|l| req.wants(l)) {
                    if tx
                        .send(Ok(line_frame(tty, l, req.timestamps)))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
                if !running || req.until.is_some_and(|u| u < Utc::now()) {
                    return;
                }
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_millis(100)) => {}
                    () = tx.closed() => return,
                    _ = rx.changed() => {}
                }
            }
        });
        Ok((tty, rx))
    }

    /// Whether the container has a tty (for the attach content type); validates the reference.
    pub(crate) fn attach_check(&self, reference: &str) -> Result<bool> {
        let ctr = self.get(reference)?;
        Ok(ctr.rec().config.tty.unwrap_or(false))
    }

    /// Runs an attach session on `client` (the hijacked connection) until the output ends.
    pub(crate) async fn attach<S>(
        self: &Arc<Self>,
        reference: &str,
        req: AttachRequest,
        client: S,
    ) -> Result<()>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let ctr = self.get(reference)?;
        let (tty, log_path) = {
            let r = ctr.rec();
            (r.config.tty.unwrap_or(false), r.log_path.clone())
        };
        let (cr, mut cw) = tokio::io::split(client);
        let lreq = LogsRequest {
            stdout: req.stdout,
            stderr: req.stderr,
            ..Default::default()
        };
        if req.logs {
            let p = log_path.clone();
            let lines = tokio::task::spawn_blocking(move || {
                runtime::logs::read_all(&p).unwrap_or_default()
            })
            .await
            .unwrap_or_default();
            for l in lines.iter().filter(|l| lreq.wants(l)) {
                if cw.write_all(&line_frame(tty, l, false)).await.is_err() {
                    return Ok(());
                }
            }
            let _ = cw.flush().await;
        }
        self.event(&ctr, "attach", &[]);
        if !req.stream {
            let _ = cw.shutdown().await;
            return Ok(());
        }
        let keys = match req.detach_keys.as_deref() {
            Some(k) if !k.is_empty() => detach::parse(k)?,
            _ => detach::DEFAULT_KEYS.to_vec(),
        };
        let opts = AttachOptions {
            stdin: req.stdin,
            stdout: req.stdout,
            stderr: req.stderr,
        };
        let shim = self.shim(&ctr.id);
        let (mut rx, now, early) = {
            let _r = ctr.rec();
            let rx = ctr.notice.subscribe();
            let now: Notice = *rx.borrow();
            // Before the start: the start hands us a shim connection made before the process
            // runs (its shim is gated), so not a byte of output is missed.
            let early = (!now.running).then(|| {
                let (tx, rx) = oneshot::channel();
                ctr.early_attach
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(super::EarlyAttach { opts, tx });
                rx
            });
            (rx, now, early)
        };
        let sock = match early {
            None => shim.attach(opts).await?,
            Some(mut handed) => loop {
                tokio::select! {
                    s = &mut handed => match s {
                        Ok(s) => break s,
                        // The start failed or the container went away.
                        Err(_) => {
                            let _ = cw.shutdown().await;
                            return Ok(());
                        }
                    },
                    changed = rx.changed() => {
                        let n = *rx.borrow_and_update();
                        if changed.is_err() || (n.removed && n.starts == now.starts) {
                            let _ = cw.shutdown().await;
                            return Ok(());
                        }
                        if n.starts > now.starts {
                            // Registered after the start took the early attaches: go live.
                            match handed.try_recv() {
                                Ok(s) => break s,
                                Err(_) => match shim.attach(opts).await {
                                    Ok(s) => break s,
                                    Err(_) => {
                                        let _ = cw.shutdown().await;
                                        return Ok(());
                                    }
                                },
                            }
                        }
                    }
                }
            },
        };
        proxy(sock, cr, cw, req.stdin, keys).await;
        Ok(())
    }
}

/// Copies the shim's output to the client and (with `stdin`) the client's input to the shim
/// until the output ends, the client goes, or the client types the detach keys (the session
/// ends; the container runs on).
async fn proxy<R, W>(sock: tokio::net::UnixStream, mut cr: R, mut cw: W, stdin: bool, keys: Vec<u8>)
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (mut sr, mut sw) = sock.into_split();
    let (detached_tx, detached) = oneshot::channel::<()>();
    let input = tokio::spawn(async move {
        let mut buf = vec![0u8; 32 * 1024];
        let mut scanner = detach::Scanner::new(keys);
        loop {
            match cr.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) if !stdin => {}
                Ok(n) => {
                    let (forward, detach) = scanner.feed(&buf[..n]);
                    if !forward.is_empty() && sw.write_all(&forward).await.is_err() {
                        break;
                    }
                    if detach {
                        let _ = detached_tx.send(());
                        return;
                    }
                }
            }
        }
        if stdin {
            let held = scanner.held().to_vec();
            if !held.is_empty() {
                let _ = sw.write_all(&held).await;
            }
            let _ = sw.shutdown().await;
        }
        // Without stdin an EOF from the client is not the end: output goes on.
        std::future::pending::<()>().await;
    });
    tokio::select! {
        _ = tokio::io::copy(&mut sr, &mut cw) => {}
        Ok(()) = detached => {}
    }
    let _ = cw.shutdown().await;
    input.abort();
}

impl Containers {
    /// Waits (boundedly) until an attach made before the start has registered for the
    /// start's output (a build's RUN attaches, then starts, and must miss no byte).
    pub(crate) async fn wait_attach_registered(&self, reference: &str) {
        let Ok(ctr) = self.get(reference) else {
            return;
        };
        for _ in 0..2000 {
            if !ctr
                .early_attach
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .is_empty()
            {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames() {
        let f = frame(false, Stream::Stdout, b"hello\n");
        assert_eq!(&f[..8], &[1, 0, 0, 0, 0, 0, 0, 6]);
        assert_eq!(&f[8..], b"hello\n");
        let f = frame(false, Stream::Stderr, b"x");
        assert_eq!(f[0], 2);
        assert_eq!(&frame(true, Stream::Stderr, b"raw")[..], b"raw");
    }

    #[test]
    fn timestamps_have_nine_digits() {
        let l = LogLine {
            stream: Stream::Stdout,
            time: "2026-11-23T06:00:27.8703Z".parse().unwrap(),
            data: b"hi\n".to_vec(),
        };
        let f = line_frame(true, &l, true);
        assert_eq!(&f[..], b"2026-11-23T06:00:27.870300000Z hi\n");
    }

    #[test]
    fn incremental_reads() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("x-json.log");
        std::fs::write(
            &p,
            "{\"log\":\"a\\n\",\"stream\":\"stdout\",\"time\":\"2026-11-23T06:00:27.870318289Z\"}\n{\"log\":\"b",
        )
        .unwrap();
        let mut off = 0;
        let l = read_new(&p, &mut off);
        assert_eq!(l.len(), 1);
        assert_eq!(l[0].data, b"a\n");
        let mut f = std::fs::OpenOptions::new().append(true).open(&p).unwrap();
        use std::io::Write;
        f.write_all(b"\\n\",\"stream\":\"stderr\",\"time\":\"2026-11-23T06:00:28Z\"}\n")
            .unwrap();
        let l = read_new(&p, &mut off);
        assert_eq!(l.len(), 1);
        assert_eq!(l[0].stream, Stream::Stderr);
        assert!(read_new(&p, &mut off).is_empty());
    }
}
