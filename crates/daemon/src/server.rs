//! Listeners, the pid file, and a clean shutdown.
//!
//! Unix sockets are created by hand (socket → bind → chmod/chown → listen) so that there is no
//! moment at which the socket accepts connections with the wrong permissions. TCP listeners are
//! checked against the TLS rules (`tls.rs`) before anything is bound, and serve the same router
//! (hijacked attach/exec included) in plain HTTP or TLS.

use std::io::Write;
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use socket2::{Domain, SockAddr, Socket, Type};
use tokio::net::{TcpListener, UnixListener};
use tokio_rustls::rustls::ServerConfig;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, Host};
use crate::connections;
use crate::error::{DaemonError, Result};
use crate::tls::{self, TlsListener};

/// How long in-flight requests may take to finish after a shutdown signal.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// The listen backlog asked for; the kernel caps it at `net.core.somaxconn` (4096 by default),
/// as Go's listeners ask for that value. A flood of connections then fills berthd's accept
/// loop, not the backlog: a full unix socket backlog fails a client's non-blocking connect at
/// once with EAGAIN.
const BACKLOG: i32 = 4096;

/// A bound, listening unix socket and the path to remove on shutdown.
#[derive(Debug)]
pub struct BoundSocket {
    pub path: PathBuf,
    pub listener: UnixListener,
}

fn listen_err(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> DaemonError {
    let path = path.to_path_buf();
    move |source| DaemonError::Listen { op, path, source }
}

/// The gid of group `docker`, if the group exists.
fn docker_gid() -> Option<u32> {
    let groups = std::fs::read_to_string("/etc/group").ok()?;
    groups.lines().find_map(|l| {
        let mut f = l.split(':');
        (f.next()? == "docker").then_some(())?;
        f.nth(1)?.parse().ok()
    })
}

/// Creates a unix socket at `path`: stale socket removed, parent created, mode 0660 and group
/// `docker` (when it exists) set before `listen`.
pub fn bind_unix(path: &Path) -> Result<BoundSocket> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => {
            std::fs::remove_file(path).map_err(listen_err("remove stale socket", path))?;
        }
        Ok(_) => {
            return Err(DaemonError::Listen {
                op: "refuse to replace non-socket",
                path: path.to_path_buf(),
                source: std::io::Error::from(std::io::ErrorKind::AlreadyExists),
            });
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(listen_err("stat", path)(e)),
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(listen_err("create directory for", path))?;
    }
    let socket =
        Socket::new(Domain::UNIX, Type::STREAM, None).map_err(listen_err("socket", path))?;
    let addr = SockAddr::unix(path).map_err(listen_err("address", path))?;
    socket.bind(&addr).map_err(listen_err("bind", path))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
        .map_err(listen_err("chmod", path))?;
    if let Some(gid) = docker_gid() {
        std::os::unix::fs::chown(path, None, Some(gid)).map_err(listen_err("chown", path))?;
    }
    socket.listen(BACKLOG).map_err(listen_err("listen", path))?;
    socket
        .set_nonblocking(true)
        .map_err(listen_err("set non-blocking", path))?;
    let std_listener: std::os::unix::net::UnixListener = socket.into();
    let listener = UnixListener::from_std(std_listener).map_err(listen_err("register", path))?;
    Ok(BoundSocket {
        path: path.to_path_buf(),
        listener,
    })
}

/// A bound, listening TCP socket and the TLS it serves with (`None`: plain HTTP).
#[derive(Debug)]
pub struct BoundTcp {
    /// As configured (`tcp://host:port`), for logs.
    pub host: String,
    pub listener: TcpListener,
    pub tls: Option<Arc<ServerConfig>>,
    /// Whether that TLS requires client certificates.
    pub verify: bool,
}

/// One API listener.
#[derive(Debug)]
pub enum Listening {
    Unix(BoundSocket),
    Tcp(BoundTcp),
}

/// The address `tcp://host:port` binds: the first IPv4 address the name resolves to, else the
/// first address (as Go's net.Listen does).
fn resolve_tcp(shown: &str, host: &str, port: u16) -> Result<SocketAddr> {
    let err = listen_err("resolve", Path::new(shown));
    let addrs: Vec<SocketAddr> = (host, port).to_socket_addrs().map_err(err)?.collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or(addrs.first())
        .copied()
        .ok_or_else(|| DaemonError::Listen {
            op: "resolve",
            path: PathBuf::from(shown),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        })
}

/// Binds a TCP listener (SO_REUSEADDR, as Go's net.Listen).
pub fn bind_tcp(shown: &str, addr: SocketAddr) -> Result<TcpListener> {
    let err = |op| listen_err(op, Path::new(shown));
    let socket =
        Socket::new(Domain::for_address(addr), Type::STREAM, None).map_err(err("socket"))?;
    socket
        .set_reuse_address(true)
        .map_err(err("set SO_REUSEADDR on"))?;
    socket.bind(&addr.into()).map_err(err("bind"))?;
    socket.listen(BACKLOG).map_err(err("listen"))?;
    socket
        .set_nonblocking(true)
        .map_err(err("set non-blocking"))?;
    let std_listener: std::net::TcpListener = socket.into();
    TcpListener::from_std(std_listener).map_err(err("register"))
}

/// The TCP hosts, resolved and checked against the TLS rules, and the TLS server
/// configuration when there are any.
type TcpPlan = (Vec<(String, SocketAddr)>, Option<Arc<ServerConfig>>);

fn plan_tcp(config: &Config) -> Result<TcpPlan> {
    let mut tcp = Vec::new();
    for h in &config.hosts {
        if let Host::Tcp { host, port } = h {
            let shown = h.to_string();
            let addr = resolve_tcp(&shown, host, *port)?;
            if let Some(refused) = tls::refusal(&shown, addr, &config.tls) {
                return Err(refused);
            }
            tcp.push((shown, addr));
        }
    }
    let server_tls = if tcp.is_empty() {
        None
    } else {
        config.tls.server_config()?
    };
    Ok((tcp, server_tls))
}

/// Checks the listeners before the engine opens: TCP hosts resolve, none is refused, the TLS
/// files load. [`bind_all`] checks again.
pub fn preflight(config: &Config) -> Result<()> {
    plan_tcp(config).map(|_| ())
}

/// Binds every configured host. TCP hosts are resolved and checked first (a refused one stops
/// the start before anything is bound), and the TLS files are loaded once.
pub fn bind_all(config: &Config) -> Result<Vec<Listening>> {
    let (tcp, server_tls) = plan_tcp(config)?;
    let mut tcp = tcp.into_iter();
    let mut out = Vec::new();
    for h in &config.hosts {
        match h {
            Host::Unix(p) => out.push(Listening::Unix(bind_unix(p)?)),
            Host::Tcp { .. } => {
                let Some((shown, addr)) = tcp.next() else {
                    continue;
                };
                tls::warn_unauthenticated(&shown, addr, &config.tls);
                let listener = bind_tcp(&shown, addr)?;
                out.push(Listening::Tcp(BoundTcp {
                    host: shown,
                    listener,
                    tls: server_tls.clone(),
                    verify: config.tls.verifies_clients(),
                }));
            }
        }
    }
    Ok(out)
}

/// Writes the pid file atomically, refusing when a live process already owns it.
pub fn write_pidfile(path: &Path) -> Result<()> {
    let err = |op| {
        let path = path.to_path_buf();
        move |source| DaemonError::PidFile { op, path, source }
    };
    if let Ok(text) = std::fs::read_to_string(path)
        && let Ok(pid) = text.trim().parse::<i32>()
        && pid != i32::try_from(std::process::id()).unwrap_or(0)
        && Path::new(&format!("/proc/{pid}")).exists()
    {
        return Err(DaemonError::PidFileInUse {
            path: path.to_path_buf(),
            pid,
        });
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(err("create directory for"))?;
    }
    let tmp = path.with_extension("pid.tmp");
    let mut f = std::fs::File::create(&tmp).map_err(err("create"))?;
    writeln!(f, "{}", std::process::id()).map_err(err("write"))?;
    f.sync_all().map_err(err("sync"))?;
    std::fs::rename(&tmp, path).map_err(err("rename"))?;
    Ok(())
}

/// Resolves on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers; stop berthd with SIGKILL");
        std::future::pending::<()>().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("received SIGTERM, shutting down"),
        _ = int.recv() => tracing::info!("received SIGINT, shutting down"),
    }
}

/// Serves `app` on every listener until `shutdown` resolves, then lets in-flight requests
/// finish for up to [`SHUTDOWN_GRACE`] and removes the socket files.
pub async fn serve(
    listeners: Vec<Listening>,
    app: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) {
    let token = CancellationToken::new();
    let mut tasks = tokio::task::JoinSet::new();
    let mut paths = Vec::new();
    for l in listeners {
        let app = app.clone();
        let stop = token.clone();
        match l {
            Listening::Unix(s) => {
                tracing::info!(socket = %s.path.display(), "API listening");
                paths.push(s.path);
                tasks.spawn(connections::serve(s.listener, app, stop));
            }
            Listening::Tcp(t) => match t.tls {
                None => {
                    tracing::info!(host = %t.host, "API listening (plain HTTP)");
                    tasks.spawn(connections::serve(t.listener, app, stop));
                }
                Some(cfg) => {
                    let verify = if t.verify {
                        "TLS, client certificates required"
                    } else {
                        "TLS"
                    };
                    tracing::info!(host = %t.host, "API listening ({verify})");
                    match TlsListener::new(t.listener, cfg) {
                        Ok(l) => {
                            tasks.spawn(connections::serve(l, app, stop));
                        }
                        Err(e) => tracing::error!(host = %t.host, error = %e, "cannot serve"),
                    }
                }
            },
        }
    }
    tokio::select! {
        () = shutdown => {}
        _ = wait_any(&mut tasks) => tracing::error!("a listener stopped unexpectedly"),
    }
    token.cancel();
    let drain = async { while tasks.join_next().await.is_some() {} };
    if tokio::time::timeout(SHUTDOWN_GRACE, drain).await.is_err() {
        tracing::warn!("requests still running after {SHUTDOWN_GRACE:?}; closing them");
        tasks.abort_all();
    }
    for p in paths {
        if let Err(e) = std::fs::remove_file(&p) {
            tracing::warn!(socket = %p.display(), error = %e, "cannot remove socket");
        }
    }
}

async fn wait_any(tasks: &mut tokio::task::JoinSet<()>) {
    if tasks.join_next().await.is_none() {
        std::future::pending::<()>().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn socket_is_0660_and_stale_socket_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/berth.sock");
        let first = bind_unix(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o660);
        drop(first);
        // The file stays behind, as after a crash; binding again replaces it.
        let _second = bind_unix(&path).unwrap();
    }

    #[tokio::test]
    async fn regular_file_is_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("not-a-socket");
        std::fs::write(&path, "x").unwrap();
        assert!(bind_unix(&path).is_err());
    }

    fn config(args: &[&str]) -> (tempfile::TempDir, Config) {
        use clap::Parser;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("daemon.json");
        std::fs::write(&file, "{}").unwrap();
        let mut v = vec!["berthd", "--config-file", file.to_str().unwrap()];
        v.extend_from_slice(args);
        let c = Config::resolve(crate::config::Cli::try_parse_from(v).unwrap()).unwrap();
        (dir, c)
    }

    #[tokio::test]
    async fn plain_tcp_on_loopback_serves_the_router() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let (_d, c) = config(&["-H", &format!("tcp://127.0.0.1:{port}")]);
        preflight(&c).unwrap();
        let listeners = bind_all(&c).unwrap();
        assert!(matches!(&listeners[..], [Listening::Tcp(t)] if t.tls.is_none()));
        let app = Router::new().route("/_ping", axum::routing::get(|| async { "OK" }));
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(listeners, app, async move {
            let _ = stop_rx.await;
        }));
        let mut conn = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        conn.write_all(b"GET /_ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut answer = String::new();
        conn.read_to_string(&mut answer).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
        assert!(answer.ends_with("OK"), "{answer}");
        stop_tx.send(()).unwrap();
        server.await.unwrap();
    }

    #[tokio::test]
    async fn unauthenticated_wildcard_tcp_is_refused_before_binding() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("s.sock");
        let (_d, c) = config(&[
            "-H",
            &format!("unix://{}", sock.display()),
            "-H",
            "tcp://0.0.0.0:2375",
        ]);
        assert!(matches!(
            preflight(&c),
            Err(DaemonError::InsecureTcp { .. })
        ));
        assert!(matches!(bind_all(&c), Err(DaemonError::InsecureTcp { .. })));
        assert!(!sock.exists(), "nothing bound");
        // The explicit opt-in passes the check (nothing is bound here).
        let (_d, c) = config(&["-H", "tcp://0.0.0.0:2375", "--tls=false"]);
        preflight(&c).unwrap();
        // TLS asked for, with files that are not there: named at preflight.
        let (_d, c) = config(&[
            "-H",
            "tcp://127.0.0.1:2376",
            "--tls",
            "--tlscert",
            "/nonexistent/c.pem",
            "--tlskey",
            "/nonexistent/k.pem",
        ]);
        let e = preflight(&c).unwrap_err().to_string();
        assert!(
            e.contains("could not read certificate /nonexistent/c.pem"),
            "{e}"
        );
    }

    #[test]
    fn pidfile_written_and_live_owner_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run/berthd.pid");
        write_pidfile(&path).unwrap();
        let pid: u32 = std::fs::read_to_string(&path)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert_eq!(pid, std::process::id());
        // pid 1 is alive: a pid file naming it belongs to someone else.
        std::fs::write(&path, "1\n").unwrap();
        assert!(matches!(
            write_pidfile(&path),
            Err(DaemonError::PidFileInUse { .. })
        ));
    }
}
