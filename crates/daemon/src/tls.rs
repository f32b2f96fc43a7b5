//! The API's TCP listeners and their TLS: what `--tls`/`--tlsverify` (and daemon.json `tls`,
//! `tlsverify`) mean together, where the CA, certificate and key come from, the rustls server
//! configuration (ring, as the registry server), the rule that refuses an unauthenticated
//! non-loopback listener, and a listener that completes each handshake in its own task.
//!
//! It knows nothing of routes or of the engine: `server.rs` hands it a bound TCP socket and
//! serves the router on what it returns.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio_rustls::rustls::ServerConfig;

use crate::error::{DaemonError, Result};

/// The CA, certificate and key file names in the default certificate directory (Docker's).
pub const DEFAULT_CA_FILE: &str = "ca.pem";
pub const DEFAULT_CERT_FILE: &str = "cert.pem";
pub const DEFAULT_KEY_FILE: &str = "key.pem";
/// Docker's default ports for `tcp://host` without one.
pub const DEFAULT_HTTP_PORT: u16 = 2375;
pub const DEFAULT_TLS_PORT: u16 = 2376;

/// What the TCP listeners do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsMode {
    /// Plain HTTP.
    Off,
    /// Server TLS only: any client that completes a handshake is served.
    Tls { cert: PathBuf, key: PathBuf },
    /// Mutual TLS: clients must present a certificate `ca` signed (checked in the handshake).
    Verify {
        ca: PathBuf,
        cert: PathBuf,
        key: PathBuf,
    },
}

/// The effective TLS settings of the TCP listeners.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    pub mode: TlsMode,
    /// Whether the operator chose explicitly (`tls` or `tlsverify` given, with any value):
    /// moby's opt-in for a non-loopback listener without client verification.
    pub explicit: bool,
}

impl Default for TlsSettings {
    fn default() -> Self {
        Self {
            mode: TlsMode::Off,
            explicit: false,
        }
    }
}

/// The `tls*` directives from flags and file, merged but not yet interpreted.
#[derive(Debug, Clone, Default)]
pub struct TlsDirectives {
    pub tls: Option<bool>,
    pub tlsverify: Option<bool>,
    pub tlscacert: Option<PathBuf>,
    pub tlscert: Option<PathBuf>,
    pub tlskey: Option<PathBuf>,
}

/// Docker's default certificate directory: `$DOCKER_CERT_PATH`, else `$DOCKER_CONFIG`, else
/// `~/.docker` of the user berthd runs as (`/root/.docker` for root).
pub fn default_cert_dir(env: impl Fn(&str) -> Option<String>) -> PathBuf {
    let set = |k: &str| env(k).filter(|v| !v.is_empty());
    if let Some(p) = set("DOCKER_CERT_PATH") {
        return PathBuf::from(p);
    }
    if let Some(p) = set("DOCKER_CONFIG") {
        return PathBuf::from(p);
    }
    let home = set("HOME").unwrap_or_else(|| "/root".to_string());
    Path::new(&home).join(".docker")
}

impl TlsSettings {
    /// Interprets the directives as dockerd does: `tlsverify` given at all turns TLS on
    /// (`tlsverify=false`: TLS without client verification), `tlsverify=true` requires client
    /// certificates; `tls=false` together with `tlsverify=false` means plain HTTP (moby would
    /// still turn TLS on there, see moby#27105). Paths not given default to `cert_dir`'s
    /// `ca.pem`, `cert.pem` and `key.pem`.
    pub fn resolve(d: TlsDirectives, cert_dir: &Path) -> Self {
        let explicit = d.tls.is_some() || d.tlsverify.is_some();
        let verify = d.tlsverify == Some(true);
        let on = verify || d.tls == Some(true) || (d.tlsverify.is_some() && d.tls != Some(false));
        let cert = d
            .tlscert
            .unwrap_or_else(|| cert_dir.join(DEFAULT_CERT_FILE));
        let key = d.tlskey.unwrap_or_else(|| cert_dir.join(DEFAULT_KEY_FILE));
        let mode = if verify {
            TlsMode::Verify {
                ca: d
                    .tlscacert
                    .unwrap_or_else(|| cert_dir.join(DEFAULT_CA_FILE)),
                cert,
                key,
            }
        } else if on {
            TlsMode::Tls { cert, key }
        } else {
            TlsMode::Off
        };
        Self { mode, explicit }
    }

    /// Whether TLS is on (the default TCP port is 2376 then).
    pub fn enabled(&self) -> bool {
        !matches!(self.mode, TlsMode::Off)
    }

    /// Whether clients must present a verified certificate.
    pub fn verifies_clients(&self) -> bool {
        matches!(self.mode, TlsMode::Verify { .. })
    }

    /// The rustls server configuration, or `None` for plain HTTP.
    pub fn server_config(&self) -> Result<Option<Arc<ServerConfig>>> {
        match &self.mode {
            TlsMode::Off => Ok(None),
            TlsMode::Tls { cert, key } => server_config(cert, key, None).map(Some),
            TlsMode::Verify { ca, cert, key } => server_config(cert, key, Some(ca)).map(Some),
        }
    }
}

/// The rustls config (the registry server's loader: berthd and `berthd registry serve` share
/// one TLS stack).
fn server_config(cert: &Path, key: &Path, client_ca: Option<&Path>) -> Result<Arc<ServerConfig>> {
    registry::server::tls::server_config(cert, key, client_ca)
        .map_err(|e| DaemonError::Tls(e.to_string()))
}

/// Why a TCP listener on `addr` is refused, if it is: without client verification only
/// loopback addresses are served, unless the operator chose explicitly (moby ≥ 27's rule).
pub fn refusal(host: &str, addr: SocketAddr, tls: &TlsSettings) -> Option<DaemonError> {
    if tls.verifies_clients() || tls.explicit || addr.ip().is_loopback() {
        return None;
    }
    Some(DaemonError::InsecureTcp {
        host: host.to_string(),
    })
}

/// Logs Docker's warnings for a TCP listener without client verification.
pub fn warn_unauthenticated(host: &str, addr: SocketAddr, tls: &TlsSettings) {
    if tls.verifies_clients() {
        return;
    }
    tracing::warn!(
        host,
        "Binding to IP address without --tlsverify is insecure and gives root access on this machine to everyone who has access to your network."
    );
    tracing::warn!(
        host,
        "Binding to an IP address, even on localhost, can also give access to scripts run in a browser. Be safe out there!"
    );
    if addr.ip().is_loopback() {
        tracing::info!(
            host,
            "loopback listener without client verification allowed"
        );
    } else {
        tracing::warn!(
            host,
            "listening on a non-loopback address without client verification, as explicitly asked (--tls/--tlsverify given)"
        );
    }
}

/// The TLS listener of the registry server, serving berthd's `tcp://` hosts too.
pub use registry::server::tls::TlsListener;

#[cfg(test)]
mod tests {
    use super::*;

    fn d(tls: Option<bool>, tlsverify: Option<bool>) -> TlsDirectives {
        TlsDirectives {
            tls,
            tlsverify,
            ..TlsDirectives::default()
        }
    }

    #[test]
    fn modes_follow_dockerd() {
        let dir = Path::new("/c");
        let off = TlsSettings::resolve(d(None, None), dir);
        assert_eq!(off.mode, TlsMode::Off);
        assert!(!off.explicit);
        let tls = TlsSettings::resolve(d(Some(true), None), dir);
        assert_eq!(
            tls.mode,
            TlsMode::Tls {
                cert: "/c/cert.pem".into(),
                key: "/c/key.pem".into()
            }
        );
        assert!(tls.explicit && tls.enabled() && !tls.verifies_clients());
        let v = TlsSettings::resolve(d(None, Some(true)), dir);
        assert_eq!(
            v.mode,
            TlsMode::Verify {
                ca: "/c/ca.pem".into(),
                cert: "/c/cert.pem".into(),
                key: "/c/key.pem".into()
            }
        );
        // --tls=false does not switch verification off (moby: tlsverify implies tls).
        let v = TlsSettings::resolve(d(Some(false), Some(true)), dir);
        assert!(v.verifies_clients());
        // --tlsverify=false alone: TLS without client verification (moby).
        let t = TlsSettings::resolve(d(None, Some(false)), dir);
        assert!(t.enabled() && !t.verifies_clients() && t.explicit);
        // Both false: plain HTTP, explicitly.
        let p = TlsSettings::resolve(d(Some(false), Some(false)), dir);
        assert_eq!(p.mode, TlsMode::Off);
        assert!(p.explicit);
        let p = TlsSettings::resolve(d(Some(false), None), dir);
        assert_eq!(p.mode, TlsMode::Off);
        assert!(p.explicit);
    }

    #[test]
    fn explicit_paths_win() {
        let s = TlsSettings::resolve(
            TlsDirectives {
                tlsverify: Some(true),
                tlscacert: Some("/x/ca".into()),
                tlscert: Some("/x/c".into()),
                tlskey: Some("/x/k".into()),
                ..TlsDirectives::default()
            },
            Path::new("/c"),
        );
        assert_eq!(
            s.mode,
            TlsMode::Verify {
                ca: "/x/ca".into(),
                cert: "/x/c".into(),
                key: "/x/k".into()
            }
        );
    }

    #[test]
    fn default_cert_dir_order() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert_eq!(
            default_cert_dir(env(&[("DOCKER_CERT_PATH", "/p"), ("HOME", "/h")])),
            PathBuf::from("/p")
        );
        assert_eq!(
            default_cert_dir(env(&[("DOCKER_CONFIG", "/cfg"), ("HOME", "/h")])),
            PathBuf::from("/cfg")
        );
        assert_eq!(
            default_cert_dir(env(&[("DOCKER_CERT_PATH", ""), ("HOME", "/h")])),
            PathBuf::from("/h/.docker")
        );
        assert_eq!(default_cert_dir(env(&[])), PathBuf::from("/root/.docker"));
    }

    #[test]
    fn refusal_rule() {
        let lo: SocketAddr = "127.0.0.1:2375".parse().unwrap();
        let lo6: SocketAddr = "[::1]:2375".parse().unwrap();
        let any: SocketAddr = "0.0.0.0:2375".parse().unwrap();
        let off = TlsSettings::default();
        assert!(refusal("tcp://127.0.0.1:2375", lo, &off).is_none());
        assert!(refusal("tcp://[::1]:2375", lo6, &off).is_none());
        let e = refusal("tcp://0.0.0.0:2375", any, &off)
            .unwrap()
            .to_string();
        assert!(e.contains("tcp://0.0.0.0:2375"), "{e}");
        assert!(e.contains("--tlsverify"), "{e}");
        assert!(e.contains("--tls=false"), "{e}");
        let opted = TlsSettings::resolve(d(Some(false), None), Path::new("/c"));
        assert!(refusal("tcp://0.0.0.0:2375", any, &opted).is_none());
        let verify = TlsSettings::resolve(d(None, Some(true)), Path::new("/c"));
        assert!(refusal("tcp://0.0.0.0:2376", any, &verify).is_none());
    }

    #[test]
    fn missing_files_are_named() {
        let s = TlsSettings::resolve(d(Some(true), None), Path::new("/nonexistent/berth"));
        let e = s.server_config().unwrap_err().to_string();
        assert!(
            e.contains("could not read certificate /nonexistent/berth/cert.pem"),
            "{e}"
        );
    }
}
