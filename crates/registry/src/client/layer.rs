//! One layer blob from the registry into the content store: the compressed bytes are hashed
//! and counted as they arrive and decompressed into an ingest; the ingest is committed (under
//! the layer's diff ID, which the content store checks) only after the compressed digest and
//! size matched the manifest's descriptor. A failed or lying download leaves nothing behind.
//!
//! The network side is async; hashing, decompressing and writing run on a blocking thread fed
//! through a bounded channel. When the caller hands in a snapshotter, the decompressed bytes
//! are also unpacked into a staged snapshot on a second thread while the download runs; the
//! snapshot is published only after the layer verified, and dropped (removed) otherwise.

use std::io::Read;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;
use storage::digest::Hasher;
use storage::{ContentStore, Digest, Ingest, Snapshotter, Staged, StorageError};
use tokio::sync::mpsc;

use super::PullEvent;
use super::manifest::Descriptor;
use super::session::{ATTEMPTS, Session, backoff};
use crate::{RegistryError, Result};

/// Where a downloaded layer is also unpacked: the snapshotter and the parent's chain ID.
#[derive(Debug, Clone)]
pub(crate) struct UnpackTo {
    pub(crate) snaps: Snapshotter,
    pub(crate) parent: Option<Digest>,
}

/// Progress is reported at most this often per layer.
const PROGRESS_EVERY: Duration = Duration::from_millis(100);

/// Downloads one layer with bounded retries (transport failures only; a verification failure
/// is final).
pub(crate) async fn fetch(
    session: &Session,
    content: &ContentStore,
    desc: &Descriptor,
    diff_id: &Digest,
    unpack: Option<&UnpackTo>,
    floor: TransferFloor,
    events: &(dyn Fn(PullEvent) + Sync),
) -> Result<()> {
    let id = desc.digest.short().to_string();
    let mut attempt = 0;
    loop {
        attempt += 1;
        match fetch_once(session, content, desc, diff_id, unpack, floor, events).await {
            Err(RegistryError::Transport(msg)) if attempt < ATTEMPTS => {
                let wait = backoff(attempt);
                tracing::debug!(layer = %desc.digest, error = %msg, attempt, "retrying layer");
                events(PullEvent::Retrying {
                    id: id.clone(),
                    seconds: wait.as_secs().max(1),
                });
                tokio::time::sleep(wait).await;
            }
            other => return other,
        }
    }
}

async fn fetch_once(
    session: &Session,
    content: &ContentStore,
    desc: &Descriptor,
    diff_id: &Digest,
    unpack: Option<&UnpackTo>,
    floor: TransferFloor,
    events: &(dyn Fn(PullEvent) + Sync),
) -> Result<()> {
    let id = &*desc.digest.short().to_string();
    let (tx, rx) = mpsc::channel::<std::io::Result<Bytes>>(16);
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel::<bool>();
    let store = content.clone();
    let (digest, size, diff) = (desc.digest.clone(), desc.size, diff_id.clone());
    let unpack = unpack.cloned();
    let writer = tokio::task::spawn_blocking(move || {
        ingest(&store, rx, ready_tx, &digest, size, &diff, unpack)
    });
    let joined = |r: std::result::Result<Result<()>, tokio::task::JoinError>| {
        r.map_err(|_| RegistryError::Other(format!("writing layer {} failed", desc.digest)))?
    };
    // Download only while holding the layer's ingest lock: a concurrent pull of the same
    // layer waits here and then finds it committed.
    match ready_rx.await {
        Ok(true) => {}
        Ok(false) => {
            joined(writer.await)?;
            events(PullEvent::Verified { id: id.to_string() });
            return Ok(());
        }
        Err(_) => return joined(writer.await),
    }
    let opened = session
        .blob(&desc.digest, 1)
        .await
        .and_then(|resp| match resp.content_length() {
            Some(len) if len != desc.size => Err(RegistryError::Protocol(format!(
                "blob {}: the registry announced {len} bytes, the manifest says {}",
                desc.digest, desc.size
            ))),
            _ => Ok(resp),
        });
    let resp = match opened {
        Ok(resp) => resp,
        Err(e) => {
            // The writer holds an ingest: let it see the end and clean up before answering.
            drop(tx);
            let _ = joined(writer.await);
            return Err(e);
        }
    };
    let url = resp.url().to_string();

    let started = Instant::now();
    let mut stream = resp.bytes_stream();
    let mut got = 0u64;
    let mut stopped = false;
    let mut last = Instant::now() - PROGRESS_EVERY;
    let feed: Result<()> = async {
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| {
                RegistryError::Transport(format!("Get \"{url}\": reading blob: {e}"))
            })?;
            got += chunk.len() as u64;
            floor.check(started, got, &desc.digest)?;
            if got > size {
                return Err(RegistryError::Protocol(format!(
                    "blob {}: more than the {size} bytes the manifest says",
                    desc.digest
                )));
            }
            if last.elapsed() >= PROGRESS_EVERY || got == size {
                last = Instant::now();
                events(PullEvent::Downloading {
                    id: id.to_string(),
                    current: got,
                    total: size,
                });
            }
            if tx.send(Ok(chunk)).await.is_err() {
                stopped = true; // the writer stopped; its error is the one to report
                break;
            }
        }
        Ok(())
    }
    .await;
    if let Err(e) = &feed {
        let _ = tx.send(Err(std::io::Error::other(e.to_string()))).await;
    }
    drop(tx);
    let written = joined(writer.await);
    feed?;
    if got < size && !stopped {
        // A short body without a transport error: the connection closed early.
        return Err(RegistryError::Transport(format!(
            "blob {}: the registry sent {got} of {size} bytes",
            desc.digest
        )));
    }
    written?;
    events(PullEvent::Verified { id: id.to_string() });
    Ok(())
}

/// After a grace period, a download slower than `bytes_per_sec` is abandoned (and retried): a
/// drip-feeding registry cannot hold a pull forever.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TransferFloor {
    pub(crate) bytes_per_sec: u64,
    pub(crate) grace: Duration,
}

impl Default for TransferFloor {
    fn default() -> Self {
        Self {
            bytes_per_sec: 1024,
            grace: Duration::from_secs(30),
        }
    }
}

impl TransferFloor {
    fn check(&self, started: Instant, got: u64, digest: &Digest) -> Result<()> {
        let elapsed = started.elapsed();
        let floor = (elapsed.as_secs_f64() * self.bytes_per_sec as f64) as u64;
        if elapsed > self.grace && got < floor {
            return Err(RegistryError::Transport(format!(
                "blob {digest}: {got} bytes in {}s, slower than {} bytes/s",
                elapsed.as_secs(),
                self.bytes_per_sec
            )));
        }
        Ok(())
    }
}

/// Reads the chunks the network side sends, hashing and counting them.
struct ChanReader {
    rx: mpsc::Receiver<std::io::Result<Bytes>>,
    cur: Bytes,
    hasher: Hasher,
    count: u64,
}

impl Read for ChanReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(b)) => self.cur = b,
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
        let n = out.len().min(self.cur.len());
        let part = self.cur.split_to(n);
        out[..n].copy_from_slice(&part);
        self.hasher.update(&part);
        self.count += n as u64;
        Ok(n)
    }
}

/// Bytes handed from the decompressing thread to the unpacking one.
const PIPE_CHUNK: usize = 256 << 10;

/// Reads what the decompressing thread sends (the unpacking thread's side of the tee).
struct PipeReader {
    rx: std::sync::mpsc::Receiver<Vec<u8>>,
    cur: Vec<u8>,
    pos: usize,
}

impl Read for PipeReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.pos == self.cur.len() {
            match self.rx.recv() {
                Ok(b) => (self.cur, self.pos) = (b, 0),
                Err(_) => return Ok(0), // the sender is done (or gave up)
            }
        }
        let n = out.len().min(self.cur.len() - self.pos);
        out[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Copies the decompressed layer into the ingest and, while the unpacker keeps reading, into
/// its pipe. An unpacker that stopped (it failed, or read to the end of the archive and left
/// the padding) no longer gets bytes; the ingest always gets all of them.
fn tee(
    plain: &mut dyn Read,
    w: &mut impl std::io::Write,
    mut pipe: Option<std::sync::mpsc::SyncSender<Vec<u8>>>,
) -> std::io::Result<()> {
    let mut buf = vec![0u8; PIPE_CHUNK];
    loop {
        let n = match plain.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        w.write_all(&buf[..n])?;
        if let Some(tx) = &pipe
            && tx.send(buf[..n].to_vec()).is_err()
        {
            pipe = None;
        }
    }
}

/// The blocking half: decompress into an ingest (and a staged snapshot when asked), verify
/// the compressed bytes, commit.
fn ingest(
    store: &ContentStore,
    rx: mpsc::Receiver<std::io::Result<Bytes>>,
    ready: tokio::sync::oneshot::Sender<bool>,
    digest: &Digest,
    size: u64,
    diff_id: &Digest,
    unpack: Option<UnpackTo>,
) -> Result<()> {
    let mut w = match store.ingest(Some(diff_id))? {
        Ingest::Writer(w) => {
            let _ = ready.send(true);
            w
        }
        Ingest::Exists => {
            let _ = ready.send(false); // another pull wrote it meanwhile
            return Ok(());
        }
    };
    let mut src = ChanReader {
        rx,
        cur: Bytes::new(),
        hasher: Hasher::default(),
        count: 0,
    };
    let layer_err = |e: std::io::Error| RegistryError::Protocol(format!("layer {digest}: {e}"));
    // A chain already unpacked needs no second copy.
    let unpack = unpack.filter(|u| {
        u.snaps
            .get(&Snapshotter::chain_id(u.parent.as_ref(), diff_id))
            .is_none()
    });
    let staged: Option<storage::Result<Staged>> = std::thread::scope(|s| {
        let (pipe, unpacker) = match &unpack {
            Some(u) => {
                let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(8);
                let reader = PipeReader {
                    rx,
                    cur: Vec::new(),
                    pos: 0,
                };
                let h = s.spawn(move || u.snaps.stage(u.parent.as_ref(), diff_id, reader));
                (Some(tx), Some(h))
            }
            None => (None, None),
        };
        let copied = storage::layer::decompress(&mut src)
            .map_err(RegistryError::from)
            .and_then(|(_, mut plain)| tee(&mut plain, &mut w, pipe).map_err(layer_err));
        // `tee` dropped the pipe: the unpacker sees the end and finishes.
        let staged = unpacker.map(|h| {
            h.join().unwrap_or_else(|_| {
                Err(StorageError::InvalidArchive(
                    "unpacking thread panicked".into(),
                ))
            })
        });
        copied.map(|()| staged)
    })?;
    // Whatever the decompressor left unread (padding) still counts for the digest.
    std::io::copy(&mut src, &mut std::io::sink()).map_err(layer_err)?;
    let actual = std::mem::take(&mut src.hasher).finish();
    if src.count != size {
        return Err(StorageError::SizeMismatch {
            digest: digest.clone(),
            expected: size,
            actual: src.count,
        }
        .into());
    }
    if actual != *digest {
        return Err(RegistryError::Protocol(format!(
            "filesystem layer verification failed for digest {digest}: got {actual}"
        )));
    }
    w.commit(Some(diff_id), None).map_err(|e| match e {
        StorageError::DigestMismatch { expected, actual } => RegistryError::Protocol(format!(
            "layer {digest}: its content has diff ID {actual}, the image config says {expected}"
        )),
        other => other.into(),
    })?;
    // Verified: publish the snapshot unpacked on the way. One that failed is left to the
    // image service, which unpacks from the content store and reports the error itself.
    match staged {
        Some(Ok(st)) => {
            if let Err(e) = st.commit() {
                tracing::warn!(layer = %digest, "publishing the unpacked layer: {e}");
            }
        }
        Some(Err(e)) => tracing::debug!(layer = %digest, "unpacking while downloading: {e}"),
        None => {}
    }
    Ok(())
}
