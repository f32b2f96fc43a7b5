//! `GET /events`: the engine's event stream as newline-delimited JSON.
//!
//! The response is chunked with one event per chunk (so each is flushed at once); it ends when
//! `until` passes (at once, after the replay, when `until` is in the past) and otherwise lasts
//! until the client goes away. Below API 1.52 every container and image event also carries the
//! deprecated top-level `status` (= Action), `id` (= Actor.ID) and, for containers, `from`
//! (= the `image` attribute), which docker-compose 1.29 reads.

use std::convert::Infallible;

use api_types::ApiVersion;
use api_types::models::{EventMessage, EventMessageTypeEnum};
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use bytes::Bytes;
use engine::events::parse_time;
use serde::Serialize;

use super::{AppState, Params};
use crate::error::Result;

/// The first API version without the deprecated fields.
const NO_LEGACY_FIELDS: ApiVersion = ApiVersion {
    major: 1,
    minor: 52,
};

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/events", get(events))
}

/// An event as moby's `events.Message` serialises it.
#[derive(Debug, Serialize)]
struct WireEvent<'a> {
    #[serde(skip_serializing_if = "str::is_empty")]
    status: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    id: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    from: &'a str,
    #[serde(flatten)]
    message: &'a EventMessage,
}

/// One JSON line (with `\n`) for `ev`.
fn event_line(ev: &EventMessage, legacy: bool) -> Bytes {
    let (status, id, from) = match ev.typ {
        Some(t @ (EventMessageTypeEnum::CONTAINER | EventMessageTypeEnum::IMAGE)) if legacy => {
            let actor = ev.actor.as_ref();
            let id = actor.and_then(|a| a.id.as_deref()).unwrap_or_default();
            let from = if t == EventMessageTypeEnum::CONTAINER {
                actor
                    .and_then(|a| a.attributes.as_ref())
                    .and_then(|a| a.get("image"))
                    .map_or("", String::as_str)
            } else {
                ""
            };
            (ev.action.as_deref().unwrap_or_default(), id, from)
        }
        _ => ("", "", ""),
    };
    let wire = WireEvent {
        status,
        id,
        from,
        message: ev,
    };
    // Plain strings and numbers: serialising cannot fail; an empty object if it somehow does.
    let mut v = serde_json::to_vec(&wire).unwrap_or_else(|_| b"{}".to_vec());
    v.push(b'\n');
    Bytes::from(v)
}

async fn events(
    State(engine): State<AppState>,
    version: Option<Extension<ApiVersion>>,
    params: Params,
) -> Result<Response> {
    let now = chrono::Utc::now();
    let since = parse_time(&params.str("since"), now)?;
    let until = parse_time(&params.str("until"), now)?;
    let filters = params.filters()?;
    let stream = engine.events(since, until, &filters)?;
    let legacy = version.is_none_or(|Extension(v)| v < NO_LEGACY_FIELDS);
    // hyper writes the head as soon as the body has nothing yet: the client sees the
    // headers at once, as moby's explicit flush gives them.
    let body = futures_util::stream::unfold(stream, move |mut s| async move {
        let ev = s.next().await?;
        Some((Ok::<_, Infallible>(event_line(&ev, legacy)), s))
    });
    Ok((
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        Body::from_stream(body),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use api_types::models::{EventActor, EventMessageScopeEnum};

    use super::*;

    fn ev(typ: EventMessageTypeEnum) -> EventMessage {
        EventMessage {
            typ: Some(typ),
            action: Some("start".into()),
            actor: Some(EventActor {
                id: Some("abc".into()),
                attributes: Some(HashMap::from([("image".into(), "busybox".into())])),
            }),
            scope: Some(EventMessageScopeEnum::LOCAL),
            time: Some(1),
            time_nano: Some(1_000_000_001),
        }
    }

    #[test]
    fn legacy_fields_for_containers_and_images() {
        let line = event_line(&ev(EventMessageTypeEnum::CONTAINER), true);
        let text = std::str::from_utf8(&line).unwrap();
        assert!(text.ends_with('\n'));
        assert!(
            text.starts_with(r#"{"status":"start","id":"abc","from":"busybox","Type":"container""#),
            "{text}"
        );
        let v: serde_json::Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(v["Actor"]["Attributes"]["image"], "busybox");
        assert_eq!(v["scope"], "local");
        assert_eq!(v["timeNano"], 1_000_000_001_i64);

        let v: serde_json::Value =
            serde_json::from_slice(&event_line(&ev(EventMessageTypeEnum::IMAGE), true)).unwrap();
        assert_eq!(v["status"], "start");
        assert!(v.get("from").is_none());

        let v: serde_json::Value =
            serde_json::from_slice(&event_line(&ev(EventMessageTypeEnum::NETWORK), true)).unwrap();
        assert!(v.get("status").is_none());

        let v: serde_json::Value =
            serde_json::from_slice(&event_line(&ev(EventMessageTypeEnum::CONTAINER), false))
                .unwrap();
        assert!(v.get("status").is_none() && v.get("id").is_none());
    }
}
