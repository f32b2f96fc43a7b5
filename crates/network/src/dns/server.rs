//! The serving side of the embedded DNS server: a UDP loop and a TCP accept loop (tokio tasks on
//! the caller's runtime) that answer from the table through [`super::answer`] and forward the
//! rest to the upstream nameservers as moby's resolver does: the query as it came, over the
//! transport it came on, to at most three upstreams in order, four seconds each, moving on
//! after a timeout, an error, SERVFAIL or REFUSED; no answer at all gives SERVFAIL.
//!
//! Upstream sockets are made by the runtime's threads, so they live in the daemon's network
//! namespace whatever namespace the serving sockets were made in.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use hickory_proto::op::{Header, MessageType, ResponseCode};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::task::{AbortHandle, JoinSet};

use super::answer::{self, Action, Transport};
use super::{Scope, Table};
use crate::{NetworkError, Result};

/// How long one upstream gets to answer (moby's `extIOTimeout`).
pub const FORWARD_TIMEOUT: Duration = Duration::from_secs(4);
/// How many upstreams are tried (moby's `maxExtDNS`).
pub const MAX_UPSTREAMS: usize = 3;
/// Forwarded queries in flight per server; more are dropped (the client retries).
const MAX_IN_FLIGHT: usize = 256;
/// Open TCP connections per server; more are closed at once.
const MAX_TCP_CONNECTIONS: usize = 64;
/// A TCP client idle this long is disconnected.
const TCP_IDLE: Duration = Duration::from_secs(10);

/// What every task of one server shares.
struct Ctx {
    table: Table,
    scope: Scope,
    upstreams: Vec<SocketAddr>,
    rotate: AtomicUsize,
}

impl Ctx {
    fn handle(&self, packet: &[u8], transport: Transport) -> Action {
        let networks = self.scope.get();
        let rotate = self.rotate.fetch_add(1, Ordering::Relaxed);
        answer::handle(packet, &self.table, &networks, transport, rotate)
    }
}

/// A running server: its tasks stop when it is dropped or [`stop`](Server::stop)ped, which
/// closes its sockets.
#[derive(Debug)]
pub struct Server {
    tasks: Vec<AbortHandle>,
    udp_addr: SocketAddr,
    tcp_addr: Option<SocketAddr>,
}

impl Server {
    /// Stops serving (same as dropping it).
    pub fn stop(self) {}

    /// The UDP socket's local address.
    pub fn udp_addr(&self) -> SocketAddr {
        self.udp_addr
    }

    /// The TCP listener's local address, if one was given.
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        self.tcp_addr
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

fn sock_err(op: &'static str) -> impl FnOnce(std::io::Error) -> NetworkError {
    move |source| NetworkError::Dns { op, source }
}

/// Serves DNS on the given sockets until the returned handle is dropped or stopped: A (from the
/// table, TTL 600 as Docker), AAAA and MX for known names → NOERROR with no answers, PTR for
/// known IPs (in-addr.arpa), everything else forwarded to `upstreams` (the first
/// [`MAX_UPSTREAMS`]; UDP queries over UDP, TCP over TCP, [`FORWARD_TIMEOUT`] each); no
/// upstreams → SERVFAIL. Malformed packets get FORMERR or are dropped.
///
/// Spawns tokio tasks on the current runtime; fails outside one or if the sockets can't be
/// registered with it.
pub fn serve(
    udp: std::net::UdpSocket,
    tcp: Option<std::net::TcpListener>,
    scope: Scope,
    table: Table,
    upstreams: Vec<SocketAddr>,
) -> Result<Server> {
    let rt = tokio::runtime::Handle::try_current().map_err(|_| NetworkError::Dns {
        op: "serve (no tokio runtime)",
        source: std::io::Error::other("must be called from a tokio runtime"),
    })?;
    let _guard = rt.enter();
    udp.set_nonblocking(true)
        .map_err(sock_err("udp nonblocking"))?;
    let udp_addr = udp.local_addr().map_err(sock_err("udp local address"))?;
    let udp = UdpSocket::from_std(udp).map_err(sock_err("udp register"))?;
    let tcp = match tcp {
        Some(l) => {
            l.set_nonblocking(true)
                .map_err(sock_err("tcp nonblocking"))?;
            let addr = l.local_addr().map_err(sock_err("tcp local address"))?;
            Some((
                TcpListener::from_std(l).map_err(sock_err("tcp register"))?,
                addr,
            ))
        }
        None => None,
    };
    let ctx = Arc::new(Ctx {
        table,
        scope,
        upstreams: upstreams.into_iter().take(MAX_UPSTREAMS).collect(),
        rotate: AtomicUsize::new(0),
    });
    let mut tasks = vec![
        rt.spawn(udp_loop(Arc::new(udp), ctx.clone()))
            .abort_handle(),
    ];
    let tcp_addr = tcp.map(|(listener, addr)| {
        tasks.push(rt.spawn(tcp_loop(listener, ctx)).abort_handle());
        addr
    });
    Ok(Server {
        tasks,
        udp_addr,
        tcp_addr,
    })
}

async fn udp_loop(sock: Arc<UdpSocket>, ctx: Arc<Ctx>) {
    // Forwarding tasks live in this set: aborting the loop drops it, which aborts them.
    let mut forwards = JoinSet::new();
    let mut buf = vec![0u8; 65535];
    loop {
        while forwards.try_join_next().is_some() {}
        let (n, peer) = match sock.recv_from(&mut buf).await {
            Ok(v) => v,
            Err(e) => {
                tracing::debug!("dns: udp receive: {e}");
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        let packet = &buf[..n];
        match ctx.handle(packet, Transport::Udp) {
            Action::Reply(reply) => {
                let _ = sock.send_to(&reply, peer).await;
            }
            Action::Drop => {}
            Action::Forward { fallback } => {
                if ctx.upstreams.is_empty() {
                    let _ = sock.send_to(&fallback, peer).await;
                    continue;
                }
                if forwards.len() >= MAX_IN_FLIGHT {
                    tracing::debug!(
                        "dns: more than {MAX_IN_FLIGHT} queries in flight, dropping one"
                    );
                    continue;
                }
                let query = packet.to_vec();
                let (sock, ctx) = (sock.clone(), ctx.clone());
                forwards.spawn(async move {
                    let reply = forward(&ctx, &query, Transport::Udp)
                        .await
                        .unwrap_or(fallback);
                    let _ = sock.send_to(&reply, peer).await;
                });
            }
        }
    }
}

async fn tcp_loop(listener: TcpListener, ctx: Arc<Ctx>) {
    let mut conns = JoinSet::new();
    loop {
        while conns.try_join_next().is_some() {}
        let stream = match listener.accept().await {
            Ok((s, _)) => s,
            Err(e) => {
                tracing::debug!("dns: tcp accept: {e}");
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        if conns.len() >= MAX_TCP_CONNECTIONS {
            continue;
        }
        conns.spawn(tcp_conn(stream, ctx.clone()));
    }
}

/// One TCP client: length-prefixed queries answered in turn until it closes or idles.
async fn tcp_conn(mut stream: TcpStream, ctx: Arc<Ctx>) {
    loop {
        let query = match tokio::time::timeout(TCP_IDLE, read_frame(&mut stream)).await {
            Ok(Ok(q)) => q,
            _ => return,
        };
        let reply = match ctx.handle(&query, Transport::Tcp) {
            Action::Reply(r) => r,
            Action::Drop => return,
            Action::Forward { fallback } => forward(&ctx, &query, Transport::Tcp)
                .await
                .unwrap_or(fallback),
        };
        if write_frame(&mut stream, &reply).await.is_err() {
            return;
        }
    }
}

/// Reads one RFC 1035 §4.2.2 frame (two-byte length, then the message).
async fn read_frame(s: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let len = usize::from(s.read_u16().await?);
    let mut msg = vec![0u8; len];
    s.read_exact(&mut msg).await?;
    Ok(msg)
}

async fn write_frame(s: &mut TcpStream, msg: &[u8]) -> std::io::Result<()> {
    let len = u16::try_from(msg.len()).map_err(|_| std::io::Error::other("message too long"))?;
    let mut out = Vec::with_capacity(msg.len() + 2);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(msg);
    s.write_all(&out).await?;
    s.flush().await
}

/// What an upstream's answer is worth.
enum Verdict {
    /// Pass it on.
    Good,
    /// SERVFAIL/REFUSED: try the next upstream, keep this if none does better.
    Next,
    /// Not an answer to our query: ignore it.
    Invalid,
}

fn judge(query_id: u16, resp: &[u8]) -> Verdict {
    let Ok(h) = Header::read(&mut BinDecoder::new(resp)) else {
        return Verdict::Invalid;
    };
    if h.id() != query_id || h.message_type() != MessageType::Response {
        return Verdict::Invalid;
    }
    match h.response_code() {
        ResponseCode::ServFail | ResponseCode::Refused => Verdict::Next,
        _ => Verdict::Good,
    }
}

/// Forwards `query` to the upstreams in turn; the first good answer, else the last
/// SERVFAIL/REFUSED one, else `None`.
async fn forward(ctx: &Ctx, query: &[u8], transport: Transport) -> Option<Vec<u8>> {
    let id = Header::read(&mut BinDecoder::new(query)).ok()?.id();
    let mut kept = None;
    for up in &ctx.upstreams {
        let exchange = async {
            match transport {
                Transport::Udp => exchange_udp(*up, id, query).await,
                Transport::Tcp => exchange_tcp(*up, query).await,
            }
        };
        let resp = match tokio::time::timeout(FORWARD_TIMEOUT, exchange).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                tracing::debug!("dns: forwarding to {up}: {e}");
                continue;
            }
            Err(_) => {
                tracing::debug!("dns: forwarding to {up}: timed out");
                continue;
            }
        };
        match judge(id, &resp) {
            Verdict::Good => return Some(resp),
            Verdict::Next => kept = Some(resp),
            Verdict::Invalid => {}
        }
    }
    kept
}

async fn exchange_udp(up: SocketAddr, id: u16, query: &[u8]) -> std::io::Result<Vec<u8>> {
    let any: IpAddr = match up {
        SocketAddr::V4(_) => Ipv4Addr::UNSPECIFIED.into(),
        SocketAddr::V6(_) => Ipv6Addr::UNSPECIFIED.into(),
    };
    let sock = UdpSocket::bind(SocketAddr::new(any, 0)).await?;
    sock.connect(up).await?;
    sock.send(query).await?;
    let mut buf = vec![0u8; 65535];
    loop {
        let n = sock.recv(&mut buf).await?;
        // Skip stray datagrams that don't carry our id (the caller's timeout bounds this).
        if let Ok(h) = Header::read(&mut BinDecoder::new(&buf[..n]))
            && h.id() == id
        {
            buf.truncate(n);
            return Ok(buf);
        }
    }
}

async fn exchange_tcp(up: SocketAddr, query: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut s = TcpStream::connect(up).await?;
    write_frame(&mut s, query).await?;
    read_frame(&mut s).await
}
