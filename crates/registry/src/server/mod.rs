//! The built-in OCI distribution server (`berthd registry serve`): the distribution spec v1.1
//! over HTTP or HTTPS with filesystem storage (see [`store`] for the layout), optional htpasswd
//! basic auth. It owns the `/v2/` protocol and nothing else: it knows nothing of containers, images
//! as berth runs them, or the Engine API.
//!
//! Repository names contain slashes, so requests are routed by hand ([`names::Route`]) from
//! one fallback handler; every untrusted name, tag and digest is validated before use.

mod auth;
mod blobs;
mod errors;
mod listing;
mod manifests;
mod names;
mod referrers;
mod search;
mod store;
pub mod tls;
mod uploads;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Query, Request, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderName, HeaderValue, Method, StatusCode};

use crate::{RegistryError, Result};
use errors::{ApiError, ApiResult};
use names::{Name, Route};

/// What `berthd registry serve` was asked to do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    /// Address to listen on (`HOST:PORT`).
    pub addr: String,
    /// Storage directory.
    pub root: PathBuf,
    /// An htpasswd file (bcrypt entries): when set, every request needs basic auth.
    pub htpasswd: Option<PathBuf>,
    /// PEM certificate chain and private key (and a client CA): when set, serve HTTPS.
    pub tls: Option<TlsFiles>,
}

/// The files of `--tls-cert`, `--tls-key` and `--tls-client-ca`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM certificate chain.
    pub cert: PathBuf,
    /// PEM private key of `cert`.
    pub key: PathBuf,
    /// PEM CA certificates: when set, clients must present a certificate signed by one.
    pub client_ca: Option<PathBuf>,
}

/// Shared state of the request handlers.
#[derive(Debug)]
struct App {
    store: store::Store,
    uploads: uploads::Uploads,
    auth: Option<auth::Htpasswd>,
}

/// Runs a blocking storage call off the async workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> ApiResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)
}

/// A response with the given status, headers and body.
fn respond(status: StatusCode, headers: &[(&str, String)], body: Body) -> Response {
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    for (k, v) in headers {
        if let (Ok(k), Ok(v)) = (
            HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_str(v),
        ) {
            resp.headers_mut().insert(k, v);
        }
    }
    resp
}

/// The axum router serving the registry stored under `opts.root`.
pub fn router(opts: &Options) -> Result<Router> {
    let auth = match &opts.htpasswd {
        Some(p) => Some(auth::Htpasswd::load(p)?),
        None => None,
    };
    let app = Arc::new(App {
        store: store::Store::open(&opts.root)?,
        uploads: uploads::Uploads::default(),
        auth,
    });
    Ok(Router::new().fallback(dispatch).with_state(app))
}

async fn dispatch(State(app): State<Arc<App>>, req: Request) -> Response {
    let (method, path) = (req.method().clone(), req.uri().path().to_string());
    let mut resp = match handle(app, req).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    };
    resp.headers_mut().insert(
        HeaderName::from_static("docker-distribution-api-version"),
        HeaderValue::from_static("registry/2.0"),
    );
    tracing::debug!(%method, path, status = resp.status().as_u16(), "registry request");
    resp
}

fn valid_name(name: &str) -> ApiResult<Name> {
    Name::parse(name).ok_or_else(|| ApiError::name_invalid(name))
}

async fn handle(app: Arc<App>, req: Request) -> ApiResult {
    let (parts, body) = req.into_parts();
    if app.auth.is_some() {
        let (a, headers) = (Arc::clone(&app), parts.headers.clone());
        let ok = tokio::task::spawn_blocking(move || {
            a.auth.as_ref().is_some_and(|auth| auth.check(&headers))
        })
        .await
        .map_err(ApiError::internal)?;
        if !ok {
            return Err(ApiError::unauthorized());
        }
    }
    let query: HashMap<String, String> = Query::try_from_uri(&parts.uri)
        .map(|Query(q)| q)
        .unwrap_or_default();
    // berth's extension: Docker's v1 search, so `docker search` works against this server.
    if parts.method == Method::GET || parts.method == Method::HEAD {
        match parts.uri.path() {
            "/v1/_ping" => return search::ping(),
            "/v1/search" => return search::search(&app, &query).await,
            _ => {}
        }
    }
    let route = Route::parse(parts.uri.path()).ok_or_else(ApiError::not_found)?;
    let m = &parts.method;
    let head = m == Method::HEAD;
    let (get, put, post, patch, delete) = (
        m == Method::GET || head,
        m == Method::PUT,
        m == Method::POST,
        m == Method::PATCH,
        m == Method::DELETE,
    );
    match route {
        Route::Base if get => Ok(respond(
            StatusCode::OK,
            &[("Content-Type", "application/json".into())],
            Body::from("{}"),
        )),
        Route::Catalog if get => listing::catalog(&app, &query).await,
        Route::Tags(n) if get => listing::tags(&app, &valid_name(n)?, &query).await,
        Route::Manifest(n, r) if get => manifests::get(&app, &valid_name(n)?, r, head).await,
        Route::Manifest(n, r) if put => {
            manifests::put(&app, &valid_name(n)?, r, &parts.headers, body).await
        }
        Route::Manifest(n, r) if delete => manifests::delete(&app, &valid_name(n)?, r).await,
        Route::Blob(n, d) if get => {
            blobs::get(&app, &valid_name(n)?, d, head, &parts.headers).await
        }
        Route::Blob(n, d) if delete => blobs::delete(&app, &valid_name(n)?, d).await,
        Route::UploadStart(n) if post => blobs::start(&app, &valid_name(n)?, &query, body).await,
        Route::Upload(n, id) if patch => {
            blobs::patch(&app, &valid_name(n)?, id, &parts.headers, body).await
        }
        Route::Upload(n, id) if put => blobs::put(&app, &valid_name(n)?, id, &query, body).await,
        Route::Upload(n, id) if get => blobs::status(&app, &valid_name(n)?, id),
        Route::Upload(n, id) if delete => blobs::cancel(&app, &valid_name(n)?, id),
        Route::Referrers(n, d) if get => referrers::list(&app, &valid_name(n)?, d, &query).await,
        _ => Err(ApiError::unsupported()),
    }
}

/// Serves the registry on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|e| RegistryError::Other(format!("serving: {e}")))
}

const USAGE: &str = "Usage:  registry serve --addr HOST:PORT --root DIR [--htpasswd FILE]
                       [--tls-cert FILE --tls-key FILE [--tls-client-ca FILE]]

Serve an OCI distribution (Docker registry v2) API with filesystem storage

Options:
      --addr string       Address to listen on (default \"127.0.0.1:5000\")
      --root string       Storage directory (required)
      --htpasswd string   htpasswd file with bcrypt entries: require basic auth
      --tls-cert string   PEM certificate chain: serve HTTPS (with --tls-key)
      --tls-key string    PEM private key of --tls-cert
      --tls-client-ca string
                          PEM CA certificates: require a client certificate signed by one
";

/// Parses the arguments after `registry` (`serve --addr … --root …`). `Ok(None)`: help asked.
pub fn parse_args(args: &[OsString]) -> Result<Option<Options>> {
    let bad = |m: String| RegistryError::Other(format!("{m}\n\n{USAGE}"));
    let mut it = args.iter().map(|a| a.to_string_lossy().into_owned());
    match it.next().as_deref() {
        Some("serve") => {}
        Some("-h" | "--help") | None => return Ok(None),
        Some(other) => return Err(bad(format!("unknown command {other:?}"))),
    }
    let mut opts = Options {
        addr: "127.0.0.1:5000".into(),
        ..Options::default()
    };
    let (mut root, mut cert, mut key, mut client_ca) = (None, None, None, None);
    while let Some(arg) = it.next() {
        if arg == "-h" || arg == "--help" {
            return Ok(None);
        }
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| it.next())
                .ok_or_else(|| bad(format!("flag needs an argument: {flag}")))
        };
        match flag.as_str() {
            "--addr" => opts.addr = value()?,
            "--root" => root = Some(PathBuf::from(value()?)),
            "--htpasswd" => opts.htpasswd = Some(PathBuf::from(value()?)),
            "--tls-cert" => cert = Some(PathBuf::from(value()?)),
            "--tls-key" => key = Some(PathBuf::from(value()?)),
            "--tls-client-ca" => client_ca = Some(PathBuf::from(value()?)),
            _ => return Err(bad(format!("unknown flag: {arg}"))),
        }
    }
    opts.root = root.ok_or_else(|| bad("--root is required".into()))?;
    opts.tls = match (cert, key) {
        (Some(cert), Some(key)) => Some(TlsFiles {
            cert,
            key,
            client_ca,
        }),
        (None, None) if client_ca.is_none() => None,
        (None, None) => return Err(bad("--tls-client-ca needs --tls-cert and --tls-key".into())),
        _ => return Err(bad("--tls-cert and --tls-key go together".into())),
    };
    Ok(Some(opts))
}

/// The `registry` subcommand's entry point (arguments after `registry`); returns the exit
/// code. Blocks until SIGINT/SIGTERM.
pub fn main(args: &[OsString]) -> u8 {
    let opts = match parse_args(args) {
        Ok(Some(o)) => o,
        Ok(None) => {
            print!("\n{USAGE}");
            return 0;
        }
        Err(e) => {
            eprintln!("registry: {e}");
            return 125;
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("registry: cannot start the async runtime: {e}");
            return 1;
        }
    };
    match rt.block_on(run(opts)) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("registry: {e}");
            1
        }
    }
}

async fn run(opts: Options) -> Result<()> {
    let router = router(&opts)?;
    let tls = match &opts.tls {
        Some(files) => Some(tls::config(files)?),
        None => None,
    };
    let addr: SocketAddr = tokio::net::lookup_host(&opts.addr)
        .await
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| RegistryError::Other(format!("invalid address {:?}", opts.addr)))?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| RegistryError::Other(format!("listen on {addr}: {e}")))?;
    let local = listener
        .local_addr()
        .map_err(|e| RegistryError::Other(format!("listen on {addr}: {e}")))?;
    tracing::info!(addr = %local, root = %opts.root.display(), tls = tls.is_some(), "registry listening");
    // The bound address on stdout, for scripts and tests that asked for port 0.
    println!("listening on {local}");
    match tls {
        None => serve(listener, router, shutdown_signal()).await,
        Some(config) => {
            let listener = tls::TlsListener::new(listener, config)
                .map_err(|e| RegistryError::Other(format!("listen on {local}: {e}")))?;
            axum::serve(listener, router)
                .with_graceful_shutdown(shutdown_signal())
                .await
                .map_err(|e| RegistryError::Other(format!("serving: {e}")))
        }
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
