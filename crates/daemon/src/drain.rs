//! Request bodies that are read to their end after a handler is done with them, up to a bound.
//!
//! A handler often needs less than the whole body: a tar reader stops at the first of the two
//! zero blocks that end an archive, a refused request reads nothing. hyper then closes the
//! connection after the answer, and a client still writing (the docker CLI streams `docker cp`
//! and build contexts through a pipe, and writes the end blocks last) gets `EPIPE`, tears the
//! connection down and loses the answer it had not read yet ("use of closed network
//! connection"). So the rest of a dropped body is read and thrown away in the background — at
//! most [`DRAIN_LIMIT`] bytes for at most [`DRAIN_TIME`]; beyond that (a 1 GB body sent to a
//! JSON endpoint) the connection is closed as before.
//!
//! Knows nothing of routes or of what a body holds.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body as HttpBody, Frame, SizeHint};

/// The most a dropped body is read on for.
pub(crate) const DRAIN_LIMIT: u64 = 1 << 20;
/// The longest a dropped body is read on for.
pub(crate) const DRAIN_TIME: Duration = Duration::from_secs(10);

/// Middleware: every request body becomes a [`Draining`] one.
pub(crate) async fn middleware(req: Request, next: Next) -> Response {
    next.run(req.map(|b| Body::new(Draining { inner: Some(b) })))
        .await
}

/// A body that, dropped before its end, reads the rest in a background task.
struct Draining {
    inner: Option<Body>,
}

impl HttpBody for Draining {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        match self.inner.as_mut() {
            Some(b) => Pin::new(b).poll_frame(cx),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(HttpBody::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), HttpBody::size_hint)
    }
}

impl Drop for Draining {
    fn drop(&mut self) {
        let Some(body) = self.inner.take() else {
            return;
        };
        if body.is_end_stream() {
            return;
        }
        // Dropped outside the runtime (never, in berthd): the connection is just closed.
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        rt.spawn(async move {
            let _ = tokio::time::timeout(DRAIN_TIME, drain(body, DRAIN_LIMIT)).await;
        });
    }
}

/// Reads `body` to its end or until more than `limit` bytes came; how many did.
async fn drain(mut body: Body, limit: u64) -> u64 {
    let mut n = 0u64;
    while let Some(Ok(frame)) = body.frame().await {
        if let Some(data) = frame.data_ref() {
            n += data.len() as u64;
        }
        if n > limit {
            break;
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(n: usize, size: usize) -> Body {
        let parts: Vec<Result<Bytes, std::io::Error>> =
            (0..n).map(|_| Ok(Bytes::from(vec![0u8; size]))).collect();
        Body::from_stream(futures_util::stream::iter(parts))
    }

    #[tokio::test]
    async fn drain_reads_to_the_end_within_the_limit() {
        assert_eq!(drain(chunks(4, 1000), 1 << 20).await, 4000);
    }

    #[tokio::test]
    async fn drain_stops_past_the_limit() {
        assert_eq!(
            drain(chunks(100, 1 << 16), 1 << 20).await,
            (1 << 20) + (1 << 16)
        );
    }

    #[tokio::test]
    async fn a_draining_body_passes_its_frames_through() {
        let mut b = Draining {
            inner: Some(Body::from("hello")),
        };
        let frame = b.frame().await.unwrap().unwrap();
        assert_eq!(frame.into_data().unwrap(), Bytes::from("hello"));
        assert!(b.is_end_stream());
    }
}
