//! Blob upload sessions (POST starts one, PATCH appends in order, PUT commits, DELETE
//! cancels). Each session owns a `storage::IngestWriter` (a file under `<root>/ingest/`,
//! hashed as it is written); a request takes the writer out of the table while it writes, so
//! two requests on one session never interleave. Sessions live in memory: a restart cancels
//! them (their ingest files are removed when the store is reopened). Idle sessions expire.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use storage::IngestWriter;

use super::errors::{ApiError, ApiResult};
use super::names::Name;

/// Sessions in flight at most (each holds an open file; a client that abandons uploads cannot
/// exhaust descriptors or fill the disk forever).
const MAX_SESSIONS: usize = 256;
/// A session untouched this long is dropped (with its partial data).
const IDLE: Duration = Duration::from_secs(3600);

struct Session {
    repo: String,
    /// `None` while a request is writing through it.
    writer: Option<IngestWriter>,
    offset: u64,
    touched: Instant,
}

/// The table of upload sessions, by UUID.
#[derive(Default)]
pub(crate) struct Uploads {
    sessions: Mutex<HashMap<String, Session>>,
}

impl std::fmt::Debug for Uploads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Uploads").finish_non_exhaustive()
    }
}

/// The `Range` header value for an upload holding `offset` bytes (docker's `0-<last>` form).
pub(crate) fn range(offset: u64) -> String {
    format!("0-{}", offset.saturating_sub(1))
}

fn uuid() -> String {
    let b: [u8; 16] = rand::random();
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-4{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[13..16],
        &h[16..20],
        &h[20..32]
    )
}

impl Uploads {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Registers a new session for `repo` and returns its UUID.
    pub(crate) fn start(&self, repo: &Name, writer: IngestWriter) -> ApiResult<String> {
        let mut map = self.lock();
        let now = Instant::now();
        map.retain(|_, s| s.writer.is_none() || now.duration_since(s.touched) < IDLE);
        if map.len() >= MAX_SESSIONS {
            return Err(ApiError::too_many_uploads());
        }
        let id = uuid();
        map.insert(
            id.clone(),
            Session {
                repo: repo.as_str().to_string(),
                writer: Some(writer),
                offset: 0,
                touched: now,
            },
        );
        Ok(id)
    }

    /// Takes the session's writer for one request; `put_back` or `remove` must follow.
    pub(crate) fn take(&self, repo: &Name, id: &str) -> ApiResult<IngestWriter> {
        let mut map = self.lock();
        let s = map
            .get_mut(id)
            .filter(|s| s.repo == repo.as_str())
            .ok_or_else(|| ApiError::upload_unknown(id))?;
        s.touched = Instant::now();
        s.writer
            .take()
            .ok_or_else(|| ApiError::upload_invalid("another request is writing to this upload"))
    }

    /// Returns a writer after a request appended to it.
    pub(crate) fn put_back(&self, id: &str, writer: IngestWriter) {
        if let Some(s) = self.lock().get_mut(id) {
            s.offset = writer.written();
            s.touched = Instant::now();
            s.writer = Some(writer);
        }
    }

    /// Ends a session (its writer, if still in the table, is dropped: the partial file goes).
    pub(crate) fn remove(&self, id: &str) {
        self.lock().remove(id);
    }

    /// The bytes received so far.
    pub(crate) fn offset(&self, repo: &Name, id: &str) -> ApiResult<u64> {
        self.lock()
            .get(id)
            .filter(|s| s.repo == repo.as_str())
            .map(|s| s.offset)
            .ok_or_else(|| ApiError::upload_unknown(id))
    }

    /// Whether the session exists for this repository.
    pub(crate) fn exists(&self, repo: &Name, id: &str) -> bool {
        self.offset(repo, id).is_ok()
    }
}
