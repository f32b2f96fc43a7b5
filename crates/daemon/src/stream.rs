//! Docker's JSON message stream (load, import, later pull/push/build) and raw byte streams.
//!
//! Responses are chunked (`Body::from_stream`, no length) and each message is its own chunk, so
//! hyper flushes it at once. A failure after the first message is sent in-band as
//! `{"errorDetail":{"message":…},"error":…}`: the docker CLI only reads `errorDetail`.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use engine::{ByteStream, EngineError, ProgressEvent, ProgressStream};
use futures_util::StreamExt;
use serde::Serialize;
use tokio_stream::wrappers::ReceiverStream;

use crate::error::DaemonError;

/// One JSON message (`jsonmessage.JSONMessage` in moby).
#[derive(Debug, Default, Serialize)]
struct JsonMessage {
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<String>,
    #[serde(rename = "progressDetail", skip_serializing_if = "Option::is_none")]
    progress_detail: Option<ProgressDetail>,
    #[serde(skip_serializing_if = "Option::is_none")]
    progress: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream: Option<String>,
    #[serde(rename = "errorDetail", skip_serializing_if = "Option::is_none")]
    error_detail: Option<ErrorDetail>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// moby's `JSONProgress`: zero fields are left out, so a status tied to an ID carries `{}`.
#[derive(Debug, Default, Serialize)]
struct ProgressDetail {
    #[serde(skip_serializing_if = "is_zero")]
    current: u64,
    #[serde(skip_serializing_if = "is_zero")]
    total: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[derive(Debug, Serialize)]
struct ErrorDetail {
    /// A failed build step's exit code (the docker CLI exits with it).
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<i64>,
    message: String,
}

/// The JSON line (with `\n`) for one event.
fn event_line(event: ProgressEvent) -> Bytes {
    let msg = match event {
        // `{"progressDetail":{},"aux":{…}}`, as moby's push result.
        ProgressEvent::Aux(aux) => {
            let mut v = serde_json::to_vec(&serde_json::json!({"progressDetail": {}, "aux": aux}))
                .unwrap_or_else(|_| b"{}".to_vec());
            v.push(b'\n');
            return Bytes::from(v);
        }
        ProgressEvent::Progress {
            id,
            status,
            current,
            total,
        } => JsonMessage {
            status: Some(status),
            progress: Some(progress_bar(current, total)),
            progress_detail: Some(ProgressDetail { current, total }),
            id: Some(id),
            ..Default::default()
        },
        // A layer's status carries an empty `progressDetail`, as moby's: the docker CLI then
        // redraws that layer's line in place on a terminal instead of adding one.
        ProgressEvent::Status { id, status } => JsonMessage {
            status: Some(status),
            progress_detail: id.as_ref().map(|_| ProgressDetail::default()),
            id,
            ..Default::default()
        },
        ProgressEvent::Stream(text) => JsonMessage {
            stream: Some(text),
            ..Default::default()
        },
    };
    to_line(&msg)
}

/// The in-band error message.
fn error_line(err: &EngineError) -> Bytes {
    let message = crate::error::go_errno_text(&err.to_string());
    tracing::debug!(error = %message, "stream failed");
    to_line(&JsonMessage {
        error_detail: Some(ErrorDetail {
            code: err.exit_code(),
            message: message.clone(),
        }),
        error: Some(message),
        ..Default::default()
    })
}

fn to_line(msg: &JsonMessage) -> Bytes {
    // Serialising these plain structs cannot fail; fall back to an empty object regardless.
    let mut v = serde_json::to_vec(msg).unwrap_or_else(|_| b"{}".to_vec());
    v.push(b'\n');
    Bytes::from(v)
}

/// Answers with a progress stream. If the very first item is already an error, that error is
/// returned as a normal HTTP error instead (nothing was streamed yet).
pub(crate) async fn progress_response(mut rx: ProgressStream) -> Response {
    let first = match rx.recv().await {
        Some(Err(e)) => return DaemonError::from(e).into_response(),
        Some(Ok(ev)) => Some(event_line(ev)),
        None => None,
    };
    let rest = ReceiverStream::new(rx).map(|item| match item {
        Ok(ev) => event_line(ev),
        Err(e) => error_line(&e),
    });
    let stream = futures_util::stream::iter(first)
        .chain(rest)
        .map(Ok::<_, std::io::Error>);
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        Body::from_stream(stream),
    )
        .into_response()
}

/// Answers with a raw byte stream (`docker save`). An error item aborts the response, so the
/// client sees a broken transfer rather than a truncated archive that looks complete.
pub(crate) fn bytes_response(rx: ByteStream, content_type: &'static str) -> Response {
    let stream = ReceiverStream::new(rx);
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
        Body::from_stream(stream),
    )
        .into_response()
}

/// Docker's human size: three significant digits, decimal units (`1.21MB`).
fn human_size(n: u64) -> String {
    const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    #[allow(clippy::cast_precision_loss)]
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1000.0 && unit < UNITS.len() - 1 {
        v /= 1000.0;
        unit += 1;
    }
    let digits = if v >= 100.0 {
        0
    } else if v >= 10.0 {
        1
    } else {
        2
    };
    let mut s = format!("{v:.digits$}");
    if s.contains('.') {
        s = s.trim_end_matches('0').trim_end_matches('.').to_string();
    }
    format!("{s}{}", UNITS[unit])
}

/// The preformatted bar moby sends in `progress`: `[=====>    ]  1.2MB/3.4MB`.
fn progress_bar(current: u64, total: u64) -> String {
    const WIDTH: u64 = 50;
    if total == 0 {
        return format!("{:>8}", human_size(current));
    }
    let filled = (current.min(total) * WIDTH / total).min(WIDTH);
    let arrow = if filled < WIDTH { ">" } else { "" };
    let spaces = WIDTH.saturating_sub(filled + u64::from(filled < WIDTH));
    format!(
        "[{}{arrow}{}] {:>8}/{}",
        "=".repeat(usize::try_from(filled).unwrap_or(0)),
        " ".repeat(usize::try_from(spaces).unwrap_or(0)),
        human_size(current),
        human_size(total)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(1_210_000), "1.21MB");
        assert_eq!(human_size(3_400_000), "3.4MB");
        assert_eq!(human_size(12_345), "12.3kB");
        assert_eq!(human_size(2_000_000_000), "2GB");
    }

    #[test]
    fn bar() {
        let b = progress_bar(500, 1000);
        assert!(b.starts_with("[=========================>"), "{b}");
        assert_eq!(b.find(']'), Some(51));
        assert!(b.ends_with("500B/1kB"), "{b}");
        let full = progress_bar(1000, 1000);
        assert_eq!(full.find(']'), Some(51));
    }

    #[test]
    fn lines() {
        let l = event_line(ProgressEvent::Progress {
            id: "abc".into(),
            status: "Loading layer".into(),
            current: 1,
            total: 2,
        });
        let v: serde_json::Value = serde_json::from_slice(&l).unwrap();
        assert_eq!(v["status"], "Loading layer");
        assert_eq!(v["progressDetail"]["current"], 1);
        assert_eq!(v["progressDetail"]["total"], 2);
        assert_eq!(v["id"], "abc");
        assert!(l.ends_with(b"\n"));
        let l = event_line(ProgressEvent::Aux(serde_json::json!({"Tag": "latest"})));
        assert_eq!(
            &l[..],
            b"{\"aux\":{\"Tag\":\"latest\"},\"progressDetail\":{}}\n"
        );
        // A layer's status carries `progressDetail: {}`; a status without an ID none.
        let l = event_line(ProgressEvent::Status {
            id: Some("abc".into()),
            status: "Pull complete".into(),
        });
        assert_eq!(
            &l[..],
            b"{\"status\":\"Pull complete\",\"progressDetail\":{},\"id\":\"abc\"}\n"
        );
        let l = event_line(ProgressEvent::Status {
            id: None,
            status: "Digest: sha256:1".into(),
        });
        assert_eq!(&l[..], b"{\"status\":\"Digest: sha256:1\"}\n");
        let l = event_line(ProgressEvent::Stream("Loaded image: bb:latest\n".into()));
        assert_eq!(&l[..], b"{\"stream\":\"Loaded image: bb:latest\\n\"}\n");
        let l = error_line(&EngineError::NoSuchContainer("x".into()));
        let v: serde_json::Value = serde_json::from_slice(&l).unwrap();
        assert_eq!(v["errorDetail"]["message"], "No such container: x");
        assert_eq!(v["error"], "No such container: x");
    }
}
