//! systemd's readiness protocol (`sd_notify`), for `Type=notify` units: once every listener
//! is bound berthd sends `READY=1` to `$NOTIFY_SOCKET`, and `STOPPING=1` when it begins to shut
//! down. Without `$NOTIFY_SOCKET` (not started by systemd) nothing happens.
//!
//! Owns only the datagram; knows nothing of what berthd does between the two messages.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};

/// The environment variable systemd sets for `Type=notify` services.
pub const NOTIFY_SOCKET: &str = "NOTIFY_SOCKET";

/// Sends `state` (e.g. `READY=1`) to the socket named by `socket`: a path, or an abstract name
/// written `@name`. `Ok(false)` when there is no socket to tell.
pub fn notify_to(socket: Option<&OsStr>, state: &str) -> std::io::Result<bool> {
    let Some(socket) = socket.filter(|s| !s.is_empty()) else {
        return Ok(false);
    };
    let sock = UnixDatagram::unbound()?;
    let bytes = socket.as_bytes();
    let addr = match bytes.strip_prefix(b"@") {
        Some(name) => {
            use std::os::linux::net::SocketAddrExt;
            SocketAddr::from_abstract_name(name)?
        }
        None => SocketAddr::from_pathname(socket)?,
    };
    sock.send_to_addr(state.as_bytes(), &addr)?;
    Ok(true)
}

/// Tells systemd `state` when berthd runs under a `Type=notify` unit; failures are logged.
pub fn notify(state: &str) {
    let socket = std::env::var_os(NOTIFY_SOCKET);
    match notify_to(socket.as_deref(), state) {
        Ok(true) => tracing::debug!(state, "notified systemd"),
        Ok(false) => {}
        Err(e) => tracing::warn!(state, error = %e, "cannot notify systemd"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sends_to_a_path_or_an_abstract_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let listener = UnixDatagram::bind(&path).unwrap();
        assert!(notify_to(Some(path.as_os_str()), "READY=1").unwrap());
        let mut buf = [0u8; 64];
        let n = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");

        use std::os::linux::net::SocketAddrExt;
        let name = format!("berth-test-notify-{}", std::process::id());
        let abs = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let listener = UnixDatagram::bind_addr(&abs).unwrap();
        let shown = format!("@{name}");
        assert!(notify_to(Some(OsStr::new(&shown)), "STOPPING=1").unwrap());
        let n = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"STOPPING=1");
    }

    #[test]
    fn nothing_to_tell_without_a_socket() {
        assert!(!notify_to(None, "READY=1").unwrap());
        assert!(!notify_to(Some(OsStr::new("")), "READY=1").unwrap());
        assert!(notify_to(Some(OsStr::new("/nonexistent/notify.sock")), "READY=1").is_err());
    }
}
