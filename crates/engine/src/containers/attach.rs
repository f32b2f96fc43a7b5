//! Logs and attach: json-file records turned into Docker's stream framing, and the attach proxy.
//!
//! An attach made before the container starts (what `docker run` does) reads the container's
//! output from its json-file log from the offset the start began at, so not a byte is lost
//! however fast the process is; its stdin is connected to the shim once the container runs
//! (the client's stdin waits in the socket until then). An attach to a running container is
//! proxied to the shim's attach socket.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use runtime::AttachOptions;
use runtime::logs::{LogLine, Stream};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use super::{Containers, Notice};
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
#[derive(Debug, Clone, Copy, Default)]
pub struct AttachRequest {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub stream: bool,
    pub logs: bool,
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

/// Follows a log through an open handle, so the records stay readable after `--rm` deleted
/// the file, and moves on to the new file when the log was rotated.
#[derive(Debug)]
pub(crate) struct LogTail {
    path: std::path::PathBuf,
    file: Option<Arc<std::fs::File>>,
    offset: u64,
}

impl LogTail {
    pub(crate) fn new(path: &Path, file: Option<Arc<std::fs::File>>, offset: u64) -> Self {
        Self {
            path: path.to_path_buf(),
            file,
            offset,
        }
    }

    /// The complete records appended since the last call.
    pub(crate) fn read(&mut self) -> Vec<LogLine> {
        use std::os::unix::fs::{FileExt, MetadataExt};
        let mut out = Vec::new();
        for _ in 0..4 {
            if self.file.is_none() {
                self.file = std::fs::File::open(&self.path).ok().map(Arc::new);
                self.offset = 0;
            }
            let Some(f) = self.file.clone() else {
                return out;
            };
            let mut buf = Vec::new();
            let mut chunk = vec![0u8; 64 * 1024];
            let mut pos = self.offset;
            while let Ok(n) = f.read_at(&mut chunk, pos) {
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
                pos += u64::try_from(n).unwrap_or(0);
            }
            let (lines, used) = parse_complete(&buf);
            self.offset += used;
            out.extend(lines);
            match (std::fs::metadata(&self.path), f.metadata()) {
                (Ok(p), Ok(h)) if p.ino() != h.ino() => self.file = None,
                _ => return out,
            }
        }
        out
    }
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
        let (mut cr, mut cw) = tokio::io::split(client);
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
        if !req.stream {
            let _ = cw.shutdown().await;
            return Ok(());
        }
        let mut rx = {
            let _r = ctr.rec();
            ctr.notice.subscribe()
        };
        let now: Notice = *rx.borrow_and_update();
        let shim = self.shim(&ctr.id);
        if now.running {
            // Live: proxy to the shim.
            let sock = shim
                .attach(AttachOptions {
                    stdin: req.stdin,
                    stdout: req.stdout,
                    stderr: req.stderr,
                })
                .await?;
            let (mut sr, mut sw) = sock.into_split();
            let stdin = req.stdin;
            let input = tokio::spawn(async move {
                if stdin {
                    let _ = tokio::io::copy(&mut cr, &mut sw).await;
                    let _ = sw.shutdown().await;
                } else {
                    // Without stdin, an EOF from the client is ignored; keep the half open.
                    let mut sink = [0u8; 1024];
                    while let Ok(n) = cr.read(&mut sink).await {
                        if n == 0 {
                            break;
                        }
                    }
                    std::future::pending::<()>().await;
                }
            });
            let _ = tokio::io::copy(&mut sr, &mut cw).await;
            let _ = cw.shutdown().await;
            input.abort();
            return Ok(());
        }
        // Before start: wait for the start (or the removal).
        let started = rx
            .wait_for(|n| n.starts > now.starts || n.removed)
            .await
            .map(|n| *n);
        let Ok(started) = started else {
            let _ = cw.shutdown().await;
            return Ok(());
        };
        if started.removed && started.starts == now.starts {
            let _ = cw.shutdown().await;
            return Ok(());
        }
        let input = if req.stdin {
            match shim
                .attach(AttachOptions {
                    stdin: true,
                    stdout: false,
                    stderr: false,
                })
                .await
            {
                Ok(sock) => {
                    let (_sr, mut sw) = sock.into_split();
                    Some(tokio::spawn(async move {
                        let _keep = _sr;
                        let _ = tokio::io::copy(&mut cr, &mut sw).await;
                        let _ = sw.shutdown().await;
                        std::future::pending::<()>().await;
                    }))
                }
                Err(e) => {
                    tracing::debug!(error = %e, "stdin attach");
                    None
                }
            }
        } else {
            None
        };
        let handle = ctr
            .log_file
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let mut tail = Some(LogTail::new(&log_path, handle, started.log_offset));
        let exits = started.exits;
        loop {
            let exited = {
                let n = rx.borrow_and_update();
                n.exits > exits || n.removed
            };
            let Some(mut t) = tail.take() else { break };
            let Ok((new, t)) = tokio::task::spawn_blocking(move || (t.read(), t)).await else {
                break;
            };
            tail = Some(t);
            let mut failed = false;
            for l in new.iter().filter(|l| lreq.wants(l)) {
                if cw.write_all(&line_frame(tty, l, false)).await.is_err() {
                    failed = true;
                    break;
                }
            }
            if failed || cw.flush().await.is_err() || exited {
                break;
            }
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(50)) => {}
                _ = rx.changed() => {}
            }
        }
        let _ = cw.shutdown().await;
        if let Some(i) = input {
            i.abort();
        }
        Ok(())
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
