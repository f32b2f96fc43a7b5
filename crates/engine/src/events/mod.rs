//! The engine's event bus: what `GET /events` (`docker events`, `docker stats`, compose) reads.
//!
//! Every state change worth telling a client about is published here as an API
//! [`EventMessage`] (`Type`, `Action`, `Actor{ID, Attributes}`, `scope: "local"`, `time`,
//! `timeNano`). The bus keeps the last [`HISTORY`] events in memory so that `since` can replay
//! them, and broadcasts new ones to every subscriber. It knows nothing of HTTP or API versions:
//! the legacy top-level `status`/`id`/`from` fields are the daemon's business.
//!
//! # Emitting
//!
//! - From `impl Containers` code: `self.event(&ctr, "exec_create: sh -c date", &[("execID",
//!   id)])` (or `self.event_rec(&rec, …)` when the record guard is already held). It adds moby's
//!   container attributes: the container's labels, `image` (as the user named it) and `name`
//!   (without `/`). The actions moby uses: `create`, `start`, `die` (`exitCode`,
//!   `execDuration`), `kill` (`signal`), `stop`, `destroy`, `rename` (`oldName`), `pause`,
//!   `unpause`, `restart`, `attach`, `resize` (`height`, `width`), `top`, `oom`,
//!   `exec_create: <cmd>`/`exec_start: <cmd>` (`execID`), `exec_die` (`execID`, `exitCode`),
//!   `commit` (`comment`, the image name in `imageID`/`imageRef`), `update` (the changed
//!   resources), `export`, `copy`/`archive-path`/`extract-to-dir` (`path`).
//! - Anything else (images, prune, daemon): [`Events::emit`] with the type, action, actor ID
//!   and attributes.
//!
//! `Containers::events` is the `Arc<Events>` to use; the [`crate::Engine`] shares it
//! ([`Engine::event_bus`](crate::Engine::event_bus)).
//!
//! # Reading
//!
//! [`Engine::events`](crate::Engine::events) (or [`Events::subscribe`]) answers a
//! [`EventStream`]: first the buffered events between `since` and `until`, then live ones until
//! `until` passes (a past `until` ends after the replay) or the reader drops it.

mod filter;
mod images;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

pub use api_types::models::{
    EventActor, EventMessage, EventMessageScopeEnum, EventMessageTypeEnum as EventType,
};
use chrono::{DateTime, Utc};
pub use filter::EventFilter;
pub(crate) use images::{
    LoadEvents, delete_events, emit_prune, import_events, prune_events, save_events,
};
use tokio::sync::broadcast;

use crate::{Engine, EngineError, Filters, Result};

/// How many past events the bus keeps for `since`.
pub const HISTORY: usize = 1024;
/// How far a slow subscriber may fall behind before it misses events.
const CHANNEL: usize = 1024;

/// The event bus: bounded history plus a broadcast of new events.
#[derive(Debug)]
pub struct Events {
    history: Mutex<VecDeque<Arc<EventMessage>>>,
    tx: broadcast::Sender<Arc<EventMessage>>,
}

impl Default for Events {
    fn default() -> Self {
        Self::new()
    }
}

impl Events {
    /// An empty bus.
    pub fn new() -> Self {
        Self {
            history: Mutex::new(VecDeque::with_capacity(HISTORY)),
            tx: broadcast::Sender::new(CHANNEL),
        }
    }

    fn lock(&self) -> MutexGuard<'_, VecDeque<Arc<EventMessage>>> {
        self.history.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Publishes one event of `typ` with `action` about the object `id`, stamped now.
    pub fn emit(
        &self,
        typ: EventType,
        action: impl Into<String>,
        id: impl Into<String>,
        attributes: HashMap<String, String>,
    ) {
        self.publish_at(Utc::now(), typ, action.into(), id.into(), attributes);
    }

    fn publish_at(
        &self,
        now: DateTime<Utc>,
        typ: EventType,
        action: String,
        id: String,
        attributes: HashMap<String, String>,
    ) {
        let msg = Arc::new(EventMessage {
            typ: Some(typ),
            action: Some(action),
            actor: Some(EventActor {
                id: Some(id),
                attributes: Some(attributes),
            }),
            scope: Some(EventMessageScopeEnum::LOCAL),
            time: Some(now.timestamp()),
            time_nano: Some(now.timestamp_nanos_opt().unwrap_or(i64::MAX)),
        });
        tracing::debug!(
            typ = %typ,
            action = msg.action.as_deref().unwrap_or_default(),
            "event"
        );
        // History and broadcast change under one lock, so a subscriber (which snapshots the
        // history and subscribes under the same lock) neither misses nor repeats an event.
        let mut h = self.lock();
        if h.len() == HISTORY {
            h.pop_front();
        }
        h.push_back(Arc::clone(&msg));
        // No receivers is not an error: nobody is listening.
        let _ = self.tx.send(msg);
    }

    /// Subscribes: the buffered events between `since` and `until` that pass `filter`, then
    /// (unless `until` is already past) the live ones until `until`.
    pub fn subscribe(
        &self,
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
        filter: EventFilter,
    ) -> Result<EventStream> {
        if let (Some(s), Some(u)) = (since, until)
            && u < s
        {
            return Err(EngineError::InvalidRequest(format!(
                "`since` time ({}) cannot be after `until` time ({})",
                unix_text(&s),
                unix_text(&u)
            )));
        }
        let now = Utc::now();
        let only_past = until.is_some_and(|u| u < now);
        let h = self.lock();
        let backlog = replay(&h, since, until, &filter);
        let rx = (!only_past).then(|| self.tx.subscribe());
        drop(h);
        let deadline = until.map(|u| {
            let left = (u - now).to_std().unwrap_or_default();
            tokio::time::Instant::now() + left
        });
        Ok(EventStream {
            backlog: backlog.into(),
            rx,
            filter,
            until,
            deadline,
        })
    }

    /// How many subscribers are listening now (`NEventsListener` in `docker info`).
    pub fn listeners(&self) -> usize {
        self.tx.receiver_count()
    }
}

/// The buffered events moby's `loadBufferedEvents` answers: none without `since` and `until`;
/// else those from `since` on, not after `until`, that pass the filter, oldest first.
fn replay(
    history: &VecDeque<Arc<EventMessage>>,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
    filter: &EventFilter,
) -> Vec<Arc<EventMessage>> {
    if since.is_none() && until.is_none() {
        return Vec::new();
    }
    let nanos = |t: &DateTime<Utc>| t.timestamp_nanos_opt().unwrap_or(i64::MAX);
    let since = since.as_ref().map_or(i64::MIN, nanos);
    let until = until.as_ref().map_or(i64::MAX, nanos);
    history
        .iter()
        .filter(|e| {
            let t = e.time_nano.unwrap_or_default();
            t >= since && t <= until && filter.matches(e)
        })
        .cloned()
        .collect()
}

fn unix_text(t: &DateTime<Utc>) -> String {
    format!("{}.{:09}", t.timestamp(), t.timestamp_subsec_nanos())
}

/// One subscriber's view of the bus.
#[derive(Debug)]
pub struct EventStream {
    backlog: VecDeque<Arc<EventMessage>>,
    rx: Option<broadcast::Receiver<Arc<EventMessage>>>,
    filter: EventFilter,
    until: Option<DateTime<Utc>>,
    deadline: Option<tokio::time::Instant>,
}

impl EventStream {
    /// The next event; `None` once `until` has passed (never without `until`).
    pub async fn next(&mut self) -> Option<Arc<EventMessage>> {
        if let Some(e) = self.backlog.pop_front() {
            return Some(e);
        }
        let deadline = self.deadline;
        let filter = &self.filter;
        let rx = self.rx.as_mut()?;
        let until_nanos = self
            .until
            .and_then(|u| u.timestamp_nanos_opt())
            .unwrap_or(i64::MAX);
        let recv = async {
            loop {
                match rx.recv().await {
                    Ok(e) => {
                        if e.time_nano.unwrap_or_default() <= until_nanos && filter.matches(&e) {
                            return Some(e);
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!(missed = n, "events subscriber fell behind");
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        };
        let got = match deadline {
            Some(d) => tokio::time::timeout_at(d, recv).await.ok().flatten(),
            None => recv.await,
        };
        if got.is_none() {
            self.rx = None;
        }
        got
    }
}

/// Parses a `since`/`until` value as moby's `timetypes.ParseTimestamps` does
/// (`<seconds>[.<fraction>]`, as the CLI sends them), also accepting what the CLI would have
/// converted (RFC 3339 times, `10m`-style durations before now). Empty means unset.
pub fn parse_time(value: &str, now: DateTime<Utc>) -> Result<Option<DateTime<Utc>>> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    let bad = || EngineError::InvalidRequest(format!("invalid timestamp: {value:?}"));
    let (secs, frac) = value.split_once('.').unwrap_or((value, ""));
    if let Ok(s) = secs.parse::<i64>()
        && frac.bytes().all(|b| b.is_ascii_digit())
    {
        let mut n: i64 = 0;
        for (i, b) in frac.bytes().enumerate() {
            if i < 9 {
                n = n * 10 + i64::from(b - b'0');
            }
        }
        for _ in frac.len()..9 {
            n *= 10;
        }
        if s == -1 && n == 0 {
            return Ok(None);
        }
        return DateTime::from_timestamp(s, u32::try_from(n).map_err(|_| bad())?)
            .map(Some)
            .ok_or_else(bad);
    }
    ::images::parse_timestamp(value, now)
        .map(Some)
        .map_err(|_| bad())
}

impl Engine {
    /// `GET /events`: the stream of events between `since` and `until` that pass `filters`.
    pub fn events(
        &self,
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
        filters: &Filters,
    ) -> Result<EventStream> {
        let filter = EventFilter::new(filters)?;
        self.events.subscribe(since, until, filter)
    }

    /// The bus, for code outside `Containers` that emits events.
    pub fn event_bus(&self) -> &Arc<Events> {
        &self.events
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn attrs(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect()
    }

    fn at(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(secs, 0).single().unwrap()
    }

    fn bus_with_three() -> Events {
        let bus = Events::new();
        for (t, action) in [(100, "create"), (200, "start"), (300, "die")] {
            bus.publish_at(
                at(t),
                EventType::CONTAINER,
                action.into(),
                "abc".into(),
                attrs(&[("image", "busybox"), ("name", "x")]),
            );
        }
        bus
    }

    async fn drain(mut s: EventStream) -> Vec<String> {
        let mut out = Vec::new();
        while let Some(e) = s.next().await {
            out.push(e.action.clone().unwrap_or_default());
        }
        out
    }

    #[tokio::test]
    async fn since_and_until_replay_history() {
        let bus = bus_with_three();
        let all = EventFilter::default();
        let s = bus
            .subscribe(Some(at(0)), Some(at(1000)), all.clone())
            .unwrap();
        assert_eq!(drain(s).await, ["create", "start", "die"]);
        let s = bus
            .subscribe(Some(at(150)), Some(at(300)), all.clone())
            .unwrap();
        assert_eq!(drain(s).await, ["start", "die"]);
        let s = bus.subscribe(None, Some(at(200)), all.clone()).unwrap();
        assert_eq!(drain(s).await, ["create", "start"]);
        // until before since is refused.
        assert!(bus.subscribe(Some(at(300)), Some(at(100)), all).is_err());
    }

    #[tokio::test]
    async fn live_events_follow_the_backlog_and_until_ends_them() {
        let bus = Arc::new(bus_with_three());
        let mut f = Filters::default();
        f.add("event", "start");
        let filter = EventFilter::new(&f).unwrap();
        let until = Utc::now() + chrono::Duration::milliseconds(300);
        let mut s = bus.subscribe(Some(at(0)), Some(until), filter).unwrap();
        assert_eq!(
            s.next().await.unwrap().action.as_deref(),
            Some("start"),
            "replayed"
        );
        bus.emit(EventType::CONTAINER, "stop", "abc", HashMap::new());
        bus.emit(EventType::CONTAINER, "start", "def", HashMap::new());
        let e = s.next().await.unwrap();
        assert_eq!(e.actor.as_ref().unwrap().id.as_deref(), Some("def"));
        assert_eq!(e.scope, Some(EventMessageScopeEnum::LOCAL));
        // Nothing more: the deadline ends the stream.
        assert!(s.next().await.is_none());
        assert!(s.next().await.is_none());
    }

    #[tokio::test]
    async fn no_since_means_live_only() {
        let bus = bus_with_three();
        let mut s = bus.subscribe(None, None, EventFilter::default()).unwrap();
        assert_eq!(bus.listeners(), 1);
        bus.emit(EventType::IMAGE, "tag", "sha256:1", HashMap::new());
        assert_eq!(s.next().await.unwrap().action.as_deref(), Some("tag"));
        drop(s);
        assert_eq!(bus.listeners(), 0);
    }

    #[test]
    fn history_is_bounded() {
        let bus = Events::new();
        for i in 0..(HISTORY + 10) {
            bus.emit(EventType::CONTAINER, format!("a{i}"), "x", HashMap::new());
        }
        let h = bus.lock();
        assert_eq!(h.len(), HISTORY);
        assert_eq!(h.front().unwrap().action.as_deref(), Some("a10"));
    }

    #[test]
    fn timestamps_like_moby() {
        let now = at(1_000_000);
        assert_eq!(parse_time("", now).unwrap(), None);
        assert_eq!(parse_time("-1", now).unwrap(), None);
        assert_eq!(
            parse_time("1700000000", now).unwrap(),
            Some(at(1_700_000_000))
        );
        let t = parse_time("1700000000.5", now).unwrap().unwrap();
        assert_eq!(t.timestamp_subsec_nanos(), 500_000_000);
        let t = parse_time("1700000000.000000001", now).unwrap().unwrap();
        assert_eq!(t.timestamp_subsec_nanos(), 1);
        assert_eq!(parse_time("10m", now).unwrap(), Some(at(1_000_000 - 600)));
        assert_eq!(
            parse_time("2024-01-02T03:04:05Z", now).unwrap(),
            Some(Utc.with_ymd_and_hms(2024, 1, 2, 3, 4, 5).unwrap())
        );
        assert!(parse_time("yesterday", now).is_err());
    }
}
