//! Optional TLS for the registry server (`--tls-cert`/`--tls-key`, PEM files, and with
//! `--tls-client-ca` mutual TLS: clients must present a certificate that CA signed): a listener
//! that accepts TCP connections and completes each TLS handshake in its own task (bounded in
//! time), so a slow or silent client never holds up the others.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::{self, ServerConfig};
use tokio_rustls::server::TlsStream;

use crate::{RegistryError, Result};

/// How long a client may take to finish its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshaken connections waiting for the server to pick them up.
const BACKLOG: usize = 64;

/// Loads a certificate chain and private key (PEM), and the client CA if any, into a server
/// configuration.
pub(crate) fn config(files: &super::TlsFiles) -> Result<Arc<ServerConfig>> {
    server_config(&files.cert, &files.key, files.client_ca.as_deref())
}

/// A rustls server config (ring) from a PEM certificate chain and key; with `client_ca`,
/// client certificates that CA signed are mandatory (a client without one fails the handshake
/// and never reaches HTTP). Offers http/1.1 only. berthd's `tcp://` listeners use it too.
pub fn server_config(
    cert: &Path,
    key: &Path,
    client_ca: Option<&Path>,
) -> Result<Arc<ServerConfig>> {
    let bad = |what: &str, p: &Path, e: &dyn std::fmt::Display| {
        RegistryError::Other(format!("{what} {}: {e}", p.display()))
    };
    let certs = CertificateDer::pem_file_iter(cert)
        .map_err(|e| bad("could not read certificate", cert, &e))?
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| bad("could not read certificate", cert, &e))?;
    if certs.is_empty() {
        return Err(bad(
            "could not read certificate",
            cert,
            &"no certificate found",
        ));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| bad("could not read key", key, &e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| RegistryError::Other(format!("TLS setup: {e}")))?;
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in CertificateDer::pem_file_iter(ca)
                .map_err(|e| bad("could not read CA certificate", ca, &e))?
            {
                let c = c.map_err(|e| bad("could not read CA certificate", ca, &e))?;
                roots
                    .add(c)
                    .map_err(|e| bad("invalid CA certificate", ca, &e))?;
            }
            if roots.is_empty() {
                return Err(bad(
                    "could not read CA certificate",
                    ca,
                    &"no certificate found",
                ));
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .map_err(|e| bad("invalid CA certificate", ca, &e))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|e| RegistryError::Other(format!("TLS certificate and key: {e}")))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// An axum listener that hands over only connections whose TLS handshake succeeded; each
/// handshake runs in its own task (bounded by a timeout), so a slow client holds up no other.
pub struct TlsListener {
    rx: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl TlsListener {
    /// Starts accepting on `tcp` (the accept task ends when the listener is dropped).
    pub fn new(tcp: TcpListener, config: Arc<ServerConfig>) -> std::io::Result<Self> {
        let local = tcp.local_addr()?;
        let (tx, rx) = mpsc::channel(BACKLOG);
        let acceptor = TlsAcceptor::from(config);
        tokio::spawn(async move {
            loop {
                let (stream, peer) = tokio::select! {
                    res = tcp.accept() => match res {
                        Ok(c) => c,
                        Err(e) => {
                            tracing::warn!(%local, "accept: {e}");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    },
                    () = tx.closed() => return,
                };
                let _ = stream.set_nodelay(true);
                let (acceptor, tx) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            let _ = tx.send((tls, peer)).await;
                        }
                        Ok(Err(e)) => tracing::info!(%peer, "TLS handshake refused: {e}"),
                        Err(_) => tracing::info!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(Self { rx, local })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(conn) => conn,
            // The accept task is gone: nothing more will come.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}
