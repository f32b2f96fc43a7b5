//! Serving HTTP/1.1 connections from one listener: the accept loop, a task per connection,
//! upgrades (hijacked attach and exec), the request-head timeout, and graceful shutdown.
//!
//! The Docker API is HTTP/1.1 only. A connection must send each request's head (line and
//! headers) within [`HEADER_READ_TIMEOUT`] of starting it, or it is closed: 2000 clients that
//! open a connection and trickle bytes hold nothing but a socket each for that long, and every
//! other client is served meanwhile. The timeout covers request heads only, so what comes
//! after a head — a body streamed for minutes (load, build), a response streamed for hours
//! (`logs -f`, `events`, `stats`), a hijacked attach — is never cut. Accept errors (EMFILE when
//! the fd limit is reached) are logged and retried after a short pause instead of stopping
//! the listener.
//!
//! Knows nothing of routes; the router is a tower service handed in.

use std::pin::pin;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The longest a client may take to send a request's head.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Where connections come from: a unix or TCP socket, or a TLS listener.
pub trait Accept: Send + 'static {
    /// The connection's stream.
    type Io: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    /// The next connection.
    fn accept(&mut self) -> impl Future<Output = std::io::Result<Self::Io>> + Send;
}

impl Accept for tokio::net::UnixListener {
    type Io = tokio::net::UnixStream;
    async fn accept(&mut self) -> std::io::Result<Self::Io> {
        tokio::net::UnixListener::accept(self).await.map(|(s, _)| s)
    }
}

impl Accept for tokio::net::TcpListener {
    type Io = tokio::net::TcpStream;
    async fn accept(&mut self) -> std::io::Result<Self::Io> {
        let (s, _) = tokio::net::TcpListener::accept(self).await?;
        let _ = s.set_nodelay(true);
        Ok(s)
    }
}

impl Accept for registry::server::tls::TlsListener {
    type Io = <Self as axum::serve::Listener>::Io;
    async fn accept(&mut self) -> std::io::Result<Self::Io> {
        Ok(axum::serve::Listener::accept(self).await.0)
    }
}

/// Serves `app` on every connection `listener` accepts until `stop` is cancelled; then
/// stops accepting, lets each connection finish the request it is serving (idle ones close
/// at once) and returns when all have ended. The caller bounds that wait.
pub async fn serve<L: Accept>(mut listener: L, app: Router, stop: CancellationToken) {
    let conns = TaskTracker::new();
    loop {
        let io = tokio::select! {
            res = listener.accept() => match res {
                Ok(io) => io,
                Err(e) => {
                    tracing::warn!("accept: {e}");
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_millis(50)) => continue,
                        () = stop.cancelled() => break,
                    }
                }
            },
            () = stop.cancelled() => break,
        };
        let service = TowerToHyperService::new(app.clone());
        let stop = stop.clone();
        conns.spawn(async move {
            let mut conn = pin!(
                http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(HEADER_READ_TIMEOUT)
                    .serve_connection(TokioIo::new(io), service)
                    .with_upgrades()
            );
            let served = tokio::select! {
                res = conn.as_mut() => res,
                () = stop.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = served {
                tracing::debug!("connection: {e}");
            }
        });
    }
    drop(listener);
    conns.close();
    conns.wait().await;
}
