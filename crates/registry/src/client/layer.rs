//! One layer blob from the registry into the content store: the compressed bytes are hashed
//! and counted as they arrive and decompressed into an ingest; the ingest is committed (under
//! the layer's diff ID, which the content store checks) only after the compressed digest and
//! size matched the manifest's descriptor. A failed or lying download leaves nothing behind.
//!
//! The network side is async; hashing, decompressing and writing run on a blocking thread fed
//! through a bounded channel.

use std::io::Read;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;
use storage::digest::Hasher;
use storage::{ContentStore, Digest, Ingest, StorageError};
use tokio::sync::mpsc;

use super::PullEvent;
use super::manifest::Descriptor;
use super::session::{ATTEMPTS, Session, backoff};
use crate::{RegistryError, Result};

/// Progress is reported at most this often per layer.
const PROGRESS_EVERY: Duration = Duration::from_millis(100);

/// Downloads one layer with bounded retries (transport failures only; a verification failure
/// is final).
pub(crate) async fn fetch(
    session: &Session,
    content: &ContentStore,
    desc: &Descriptor,
    diff_id: &Digest,
    events: &(dyn Fn(PullEvent) + Sync),
) -> Result<()> {
    let id = desc.digest.short().to_string();
    let mut attempt = 0;
    loop {
        attempt += 1;
        match fetch_once(session, content, desc, diff_id, &id, events).await {
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
    id: &str,
    events: &(dyn Fn(PullEvent) + Sync),
) -> Result<()> {
    let (tx, rx) = mpsc::channel::<std::io::Result<Bytes>>(16);
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel::<bool>();
    let store = content.clone();
    let (digest, size, diff) = (desc.digest.clone(), desc.size, diff_id.clone());
    let writer =
        tokio::task::spawn_blocking(move || ingest(&store, rx, ready_tx, &digest, size, &diff));
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
    let resp = session.blob(&desc.digest, 1).await?;
    if let Some(len) = resp.content_length()
        && len != desc.size
    {
        return Err(RegistryError::Protocol(format!(
            "blob {}: the registry announced {len} bytes, the manifest says {}",
            desc.digest, desc.size
        )));
    }
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
            too_slow(started, got, &desc.digest)?;
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

/// After a grace period, a download slower than this (bytes per second) is abandoned (and
/// retried): a drip-feeding registry cannot hold a pull forever.
const MIN_RATE: u64 = 1024;
const GRACE: Duration = Duration::from_secs(30);

fn too_slow(started: Instant, got: u64, digest: &Digest) -> Result<()> {
    let secs = started.elapsed().as_secs();
    if started.elapsed() > GRACE && got < secs.saturating_mul(MIN_RATE) {
        return Err(RegistryError::Transport(format!(
            "blob {digest}: {got} bytes in {secs}s, slower than {MIN_RATE} bytes/s"
        )));
    }
    Ok(())
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

/// The blocking half: decompress into an ingest, verify the compressed bytes, commit.
fn ingest(
    store: &ContentStore,
    rx: mpsc::Receiver<std::io::Result<Bytes>>,
    ready: tokio::sync::oneshot::Sender<bool>,
    digest: &Digest,
    size: u64,
    diff_id: &Digest,
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
    {
        let (_, mut plain) = storage::layer::decompress(&mut src)?;
        std::io::copy(&mut plain, &mut w).map_err(layer_err)?;
    }
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
    Ok(())
}
