//! `docker build` on the engine side (the legacy builder's `POST /build`): receives the
//! context, reads the Dockerfile and `.dockerignore`, plans the build (`builder::plan`) and
//! runs it (`builder::execute`) over [`backend::EngineBackend`], streaming the builder's
//! messages as [`ProgressEvent`]s. The context and every intermediate container are gone when
//! the stream ends, on failure too.
//!
//! `SOURCE_DATE_EPOCH` (a build arg, as BuildKit takes it) makes builds reproducible: every
//! `created` is that time and newer mtimes in new layers are clamped to it.
//!
//! Owns `<data-root>/builder/` (contexts being built, `cache/`). Knows nothing of HTTP.

mod backend;
mod cache;
mod context;
mod sources;

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::io::AsyncRead;
use tokio::sync::mpsc;
use tokio_util::io::SyncIoBridge;

use crate::{Engine, EngineError, ProgressEvent, ProgressStream, RegistryCredentials, Result};

/// The parameters of `POST /build`.
#[derive(Debug, Clone, Default)]
pub struct BuildRequest {
    /// `dockerfile`: a path inside the context (default `Dockerfile`).
    pub dockerfile: String,
    /// `t`, repeated.
    pub tags: Vec<String>,
    /// `buildargs` (a value of `None`: the arg is named without a value).
    pub build_args: BTreeMap<String, Option<String>>,
    /// `labels`.
    pub labels: BTreeMap<String, String>,
    /// `cachefrom` (accepted; berth's cache only holds its own steps).
    pub cache_from: Vec<String>,
    pub no_cache: bool,
    pub pull: bool,
    /// `rm` (default true).
    pub remove: bool,
    /// `forcerm`.
    pub force_remove: bool,
    /// `q`: only the image ID is printed.
    pub quiet: bool,
    pub target: String,
    /// `networkmode` for RUN.
    pub network_mode: String,
    pub extra_hosts: Vec<String>,
    pub shm_size: i64,
    pub platform: String,
    /// `remote` (a git or tarball URL): not supported.
    pub remote: String,
    /// `X-Registry-Config`: credentials per registry for FROM pulls.
    pub auth: BTreeMap<String, RegistryCredentials>,
}

fn build_err(e: builder::BuildError) -> EngineError {
    EngineError::Build(e)
}

/// `SOURCE_DATE_EPOCH` from the build args.
fn reproducible(args: &BTreeMap<String, Option<String>>) -> Result<backend::Reproducible> {
    let Some(Some(v)) = args.get("SOURCE_DATE_EPOCH") else {
        return Ok(backend::Reproducible::default());
    };
    let secs: i64 = v.trim().parse().map_err(|_| {
        EngineError::InvalidRequest(format!("invalid SOURCE_DATE_EPOCH {v:?}: not a number"))
    })?;
    let t = chrono::DateTime::from_timestamp(secs, 0)
        .ok_or_else(|| EngineError::InvalidRequest(format!("invalid SOURCE_DATE_EPOCH {v:?}")))?;
    Ok(backend::Reproducible {
        created: Some(t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        clamp_mtime: u64::try_from(secs).ok(),
    })
}

/// Removes what builds cut short by a crash left in `<data-root>/builder/` (contexts,
/// downloads, COPY staging); called once at start.
pub(crate) fn remove_stale_temporaries(data_root: &std::path::Path) {
    context::remove_stale(&data_root.join("builder"));
}

impl Engine {
    fn build_dir(&self) -> std::path::PathBuf {
        self.config.data_root.join("builder")
    }

    /// `POST /build`: the build's message stream. Errors in the request (a bad parameter, a
    /// Dockerfile that does not parse) come first, so the daemon answers them with a status.
    pub fn build<R>(self: &Arc<Self>, req: BuildRequest, body: R) -> Result<ProgressStream>
    where
        R: AsyncRead + Send + Unpin + 'static,
    {
        if !req.remote.is_empty() {
            return Err(EngineError::NotSupported {
                what: "building from a remote context (remote=)",
            });
        }
        let repro = reproducible(&req.build_args)?;
        // Tags are checked before anything runs, and shown as moby shows them (`app:latest`).
        let mut req = req;
        req.tags = req
            .tags
            .iter()
            .map(|t| {
                let r = images::Reference::parse_normalized(t)?;
                if r.digest().is_some() {
                    return Err(EngineError::InvalidRequest(format!(
                        "invalid reference format: {t} is a digest reference"
                    )));
                }
                Ok(r.with_default_tag().familiar_string())
            })
            .collect::<Result<_>>()?;
        let (tx, rx) = mpsc::channel(256);
        let engine = Arc::clone(self);
        let handle = tokio::runtime::Handle::current();
        let reader = SyncIoBridge::new(body);
        tokio::task::spawn_blocking(move || {
            let fail_tx = tx.clone();
            if let Err(e) = run_build(&engine, handle, req, reader, repro, &tx) {
                let _ = fail_tx.blocking_send(Err(e));
            }
        });
        Ok(rx)
    }

    /// `POST /build/prune`: forgets every build cache entry; the keys removed.
    pub async fn build_prune(&self) -> Result<Vec<String>> {
        let cache = cache::BuildCache::new(self.build_dir().join("cache"));
        tokio::task::spawn_blocking(move || cache.prune())
            .await
            .map_err(|_| EngineError::TaskFailed {
                what: "build cache prune",
            })?
    }
}

/// The blocking half of a build.
fn run_build(
    engine: &Arc<Engine>,
    handle: tokio::runtime::Handle,
    req: BuildRequest,
    body: impl std::io::Read + Send,
    repro: backend::Reproducible,
    tx: &mpsc::Sender<Result<ProgressEvent>>,
) -> Result<()> {
    let send = |ev: ProgressEvent| {
        let _ = tx.blocking_send(Ok(ev));
    };
    let dir = engine.build_dir();
    let ctx = context::Context::receive(&dir, body)?;
    let name = if req.dockerfile.is_empty() {
        "Dockerfile".to_string()
    } else {
        req.dockerfile.clone()
    };
    let text = ctx.read(&name)?.ok_or_else(|| {
        EngineError::InvalidRequest(format!("Cannot locate specified Dockerfile: {name}"))
    })?;
    // `.dockerignore`: what the docker CLI left out already; other clients may send more.
    if let Some(ignore) = ctx.read(".dockerignore")? {
        let text = String::from_utf8_lossy(&ignore);
        for path in builder::ignore::files_to_remove(&text, &name).map_err(build_err)? {
            let _ = ctx.remove(std::path::Path::new(&path));
        }
    }
    let text = String::from_utf8_lossy(&text).into_owned();
    let df = builder::parse(&name, &text).map_err(build_err)?;
    let opts = builder::BuildOptions {
        target: (!req.target.is_empty()).then(|| req.target.clone()),
        build_args: req.build_args.clone(),
    };
    let plan = builder::plan(&df, &opts).map_err(build_err)?;
    let quiet = req.quiet;
    let mut be = backend::EngineBackend {
        engine: Arc::clone(engine),
        handle,
        ctx: &ctx,
        cache: cache::BuildCache::new(engine.build_dir().join("cache")),
        auth: req.auth.clone(),
        platform: (!req.platform.is_empty()).then(|| req.platform.clone()),
        extra_hosts: req.extra_hosts.clone(),
        shm_size: req.shm_size,
        reproducible: repro,
        say: Box::new(move |s| {
            if !quiet {
                send(ProgressEvent::Stream(s));
            }
        }),
        containers: Vec::new(),
        fetched: BTreeMap::new(),
        downloads: None,
    };
    let exec = builder::ExecOptions {
        no_cache: req.no_cache,
        pull: req.pull,
        remove: req.remove,
        force_remove: req.force_remove,
        tags: req.tags.clone(),
        labels: req.labels.clone(),
        network: (!req.network_mode.is_empty()).then(|| req.network_mode.clone()),
    };
    let mut emit = |ev: builder::Event| match ev {
        builder::Event::Stream(s) => {
            if !quiet {
                send(ProgressEvent::Stream(s));
            }
        }
        builder::Event::Aux(id) => send(ProgressEvent::Aux(serde_json::json!({ "ID": id }))),
    };
    let result = builder::execute(&mut be, &plan, &exec, &mut emit);
    be.cleanup();
    let id = result.map_err(build_err)?;
    if quiet {
        send(ProgressEvent::Stream(format!("{id}\n")));
    }
    Ok(())
}
