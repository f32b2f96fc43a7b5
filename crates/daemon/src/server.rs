//! Listeners, the pid file, and a clean shutdown.
//!
//! Unix sockets are created by hand (socket → bind → chmod/chown → listen) so that there is no
//! moment at which the socket accepts connections with the wrong permissions.

use std::io::Write;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use axum::Router;
use socket2::{Domain, SockAddr, Socket, Type};
use tokio::net::UnixListener;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, Host};
use crate::error::{DaemonError, Result};

/// How long in-flight requests may take to finish after a shutdown signal.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

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
    socket.listen(1024).map_err(listen_err("listen", path))?;
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

/// Binds every configured host.
pub fn bind_all(config: &Config) -> Result<Vec<BoundSocket>> {
    config
        .hosts
        .iter()
        .map(|h| match h {
            Host::Unix(p) => bind_unix(p),
        })
        .collect()
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

/// Serves `app` on every socket until `shutdown` resolves, then lets in-flight requests finish
/// for up to [`SHUTDOWN_GRACE`] and removes the socket files.
pub async fn serve(
    sockets: Vec<BoundSocket>,
    app: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) {
    let token = CancellationToken::new();
    let mut tasks = tokio::task::JoinSet::new();
    let mut paths = Vec::new();
    for s in sockets {
        tracing::info!(socket = %s.path.display(), "API listening");
        paths.push(s.path);
        let app = app.clone();
        let token = token.clone();
        tasks.spawn(async move {
            let served = axum::serve(s.listener, app)
                .with_graceful_shutdown(async move { token.cancelled().await })
                .await;
            if let Err(e) = served {
                tracing::error!(error = %e, "server stopped");
            }
        });
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
