//! The connection hijack of attach and exec start (engine-api.md §3.3).
//!
//! With `Upgrade: tcp` the answer is `101 UPGRADED` and the session runs on the upgraded
//! connection (both directions). Without an `Upgrade` header (old clients) moby answers
//! `200 OK` with the stream as the body: the session then gets a connection whose input is
//! already at EOF and whose output becomes the response body. Validation that can fail must
//! happen before calling [`hijack`]: after it, errors can only go into the stream.

use std::future::Future;

use api_types::ApiVersion;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::response::Response;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio_util::io::ReaderStream;

/// What a session gets: the client's connection.
pub(crate) trait Conn: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Conn for T {}

/// The content type of a hijacked stream: multiplexed (≥1.42, no tty) or raw.
pub(crate) fn content_type(tty: bool, version: Option<ApiVersion>) -> &'static str {
    let mux = !tty
        && version.is_none_or(|v| {
            v >= ApiVersion {
                major: 1,
                minor: 42,
            }
        });
    if mux {
        "application/vnd.docker.multiplexed-stream"
    } else {
        "application/vnd.docker.raw-stream"
    }
}

/// Whether the request asks for an upgrade (moby only checks that the header is there).
fn wants_upgrade(req: &Request) -> bool {
    req.headers().contains_key(header::UPGRADE)
}

/// Answers `req` with a hijacked stream and runs `session` on it in the background.
pub(crate) fn hijack<F, Fut>(mut req: Request, content_type: &'static str, session: F) -> Response
where
    F: FnOnce(Box<dyn Conn>) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    if !wants_upgrade(&req) {
        let (ours, theirs) = tokio::io::duplex(64 * 1024);
        let (read, mut write) = tokio::io::split(ours);
        tokio::spawn(async move {
            // The client sends nothing more: the session's input is at EOF from the start.
            let _ = write.shutdown().await;
            session(Box::new(theirs)).await;
        });
        return Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, content_type)
            .body(Body::from_stream(ReaderStream::new(read)))
            .unwrap_or_default();
    }
    let upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        match upgrade.await {
            Ok(up) => session(Box::new(TokioIo::new(up))).await,
            Err(e) => tracing::debug!(error = %e, "upgrade failed"),
        }
    });
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONTENT_TYPE, content_type)
        .header(header::CONNECTION, "Upgrade")
        .header(header::UPGRADE, "tcp")
        .body(Body::empty())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types() {
        let v = |minor| Some(ApiVersion { major: 1, minor });
        assert_eq!(
            content_type(false, v(47)),
            "application/vnd.docker.multiplexed-stream"
        );
        assert_eq!(
            content_type(false, None),
            "application/vnd.docker.multiplexed-stream"
        );
        assert_eq!(
            content_type(true, v(47)),
            "application/vnd.docker.raw-stream"
        );
        assert_eq!(
            content_type(false, v(41)),
            "application/vnd.docker.raw-stream"
        );
    }
}
