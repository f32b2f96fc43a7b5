//! What long-running image operations report as they go, and the byte stream of `save`.
//!
//! The engine reports typed events; turning them into Docker's JSON message stream (progress
//! bars, `errorDetail`) is the daemon's job.

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::{EngineError, Result};

/// One event of a load or import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProgressEvent {
    /// Byte progress of one item (a layer): `id` is a short ID.
    Progress {
        id: String,
        status: String,
        current: u64,
        total: u64,
    },
    /// A status line, optionally tied to an ID (`{"status":"sha256:…"}` ends an import).
    Status { id: Option<String>, status: String },
    /// Raw text for the user, newline included (`Loaded image: busybox:latest\n`).
    Stream(String),
    /// Machine-readable result for the client (push: `{"Tag","Digest","Size"}`).
    Aux(serde_json::Value),
}

/// Events of a running operation. An `Err` item is the operation's failure and the last item;
/// the stream ending without one means success.
pub type ProgressStream = mpsc::Receiver<Result<ProgressEvent>>;

/// Chunks of an archive being written. An `Err` item means the archive is incomplete.
pub type ByteStream = mpsc::Receiver<Result<Bytes>>;

/// Size of the chunks `save` hands to the stream.
const CHUNK: usize = 64 * 1024;

/// A blocking `Write` that sends its bytes, in chunks, down a [`ByteStream`] channel.
/// Fails with `BrokenPipe` once the receiver is gone (the client went away).
pub(crate) struct ChannelWriter {
    tx: mpsc::Sender<Result<Bytes>>,
    buf: Vec<u8>,
}

impl ChannelWriter {
    pub(crate) fn new(tx: mpsc::Sender<Result<Bytes>>) -> Self {
        Self {
            tx,
            buf: Vec::with_capacity(CHUNK),
        }
    }

    fn send_buf(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "receiver closed"))
    }

    /// Reports a failure to the reader, after what was already written.
    pub(crate) fn fail(mut self, err: EngineError) {
        let _ = self.send_buf();
        let _ = self.tx.blocking_send(Err(err));
    }
}

impl std::io::Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send_buf()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send_buf()
    }
}

impl Drop for ChannelWriter {
    fn drop(&mut self) {
        let _ = self.send_buf();
    }
}
