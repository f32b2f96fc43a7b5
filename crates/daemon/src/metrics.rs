//! The metrics listener (`--metrics-addr`, dockerd's flag): Prometheus text format on
//! `GET /metrics`, plain HTTP, on its own TCP socket.
//!
//! It owns the API request counters (a middleware around the whole router: requests by method
//! and status, a histogram of the time to the response head, and the pull/push/build requests
//! started) and renders them with figures the engine already answers for `docker info` (version,
//! containers by state, images, event subscribers). The text format is written by hand: it is a
//! few lines per family, and a metrics crate would bring a registry and global state for what
//! fits in one struct. It must not know how containers or images are kept: it only reads
//! `Engine::info`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use api_types::models::SystemInfo;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use engine::Engine;
use tokio::net::TcpListener;

use crate::error::{DaemonError, Result};

/// Upper bounds (seconds) of the request-duration histogram buckets; `+Inf` is implied.
pub const BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Image actions counted when their request arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Pull,
    Push,
    Build,
}

impl Action {
    const ALL: [Self; 3] = [Self::Pull, Self::Push, Self::Build];

    fn name(self) -> &'static str {
        match self {
            Self::Pull => "pull",
            Self::Push => "push",
            Self::Build => "build",
        }
    }

    /// The action a request starts: `POST /images/create?fromImage=…` (not an import),
    /// `POST /images/{name}/push`, `POST /build`, with or without a `/vX.Y` prefix.
    pub fn of(method: &Method, uri: &Uri) -> Option<Self> {
        if method != Method::POST {
            return None;
        }
        let path = strip_version(uri.path());
        let query = uri.query().unwrap_or_default();
        if path == "/images/create" {
            let key = |k: &str| query.split('&').any(|p| p.split('=').next() == Some(k));
            return (key("fromImage") && !key("fromSrc")).then_some(Self::Pull);
        }
        if path == "/build" {
            return Some(Self::Build);
        }
        (path.starts_with("/images/") && path.ends_with("/push")).then_some(Self::Push)
    }
}

/// `/v1.47/x` → `/x`; other paths unchanged.
fn strip_version(path: &str) -> &str {
    let Some(rest) = path.strip_prefix("/v") else {
        return path;
    };
    let end = rest.find('/').unwrap_or(rest.len());
    let version = &rest[..end];
    let is_version = !version.is_empty()
        && version.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && version.contains('.');
    if is_version { &rest[end..] } else { path }
}

/// A request method as a label: the standard ones, else `other` (bounded cardinality).
fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        _ => "other",
    }
}

/// berthd's own counters, shared by the API middleware and the metrics listener.
#[derive(Debug)]
pub struct Metrics {
    started: SystemTime,
    /// (method, status) → requests answered.
    requests: Mutex<BTreeMap<(&'static str, u16), u64>>,
    /// Per-bucket (not cumulative) counts; the last is `+Inf`.
    buckets: [AtomicU64; BUCKETS.len() + 1],
    sum_micros: AtomicU64,
    actions: [AtomicU64; Action::ALL.len()],
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            started: SystemTime::now(),
            requests: Mutex::default(),
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            sum_micros: AtomicU64::new(0),
            actions: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

impl Metrics {
    /// Records one answered request.
    pub fn observe(&self, method: &Method, status: u16, took: Duration) {
        *self
            .requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry((method_label(method), status))
            .or_default() += 1;
        let secs = took.as_secs_f64();
        let i = BUCKETS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(BUCKETS.len());
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    /// Counts one started image action.
    pub fn action(&self, a: Action) {
        self.actions[a as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// The exposition text: berthd's counters, and the engine's figures when `info` is given.
    pub fn render(&self, info: Option<&SystemInfo>) -> String {
        let mut out = String::new();
        if let Some(info) = info {
            render_info(&mut out, info);
        }
        family(
            &mut out,
            "berth_http_requests_total",
            "counter",
            "Engine API requests answered, by method and status code.",
        );
        let requests = self
            .requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        for ((method, code), n) in &requests {
            let _ = writeln!(
                out,
                "berth_http_requests_total{{method=\"{method}\",code=\"{code}\"}} {n}"
            );
        }
        family(
            &mut out,
            "berth_http_request_duration_seconds",
            "histogram",
            "Time from an Engine API request to its response head (streams continue after).",
        );
        let mut cumulative = 0u64;
        for (i, b) in self.buckets.iter().enumerate() {
            cumulative += b.load(Ordering::Relaxed);
            let le = BUCKETS
                .get(i)
                .map_or_else(|| "+Inf".to_string(), |v| v.to_string());
            let _ = writeln!(
                out,
                "berth_http_request_duration_seconds_bucket{{le=\"{le}\"}} {cumulative}"
            );
        }
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "berth_http_request_duration_seconds_sum {sum}");
        let _ = writeln!(
            out,
            "berth_http_request_duration_seconds_count {cumulative}"
        );
        family(
            &mut out,
            "berth_image_actions_total",
            "counter",
            "Image pulls, pushes and builds requested.",
        );
        for a in Action::ALL {
            let n = self.actions[a as usize].load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "berth_image_actions_total{{action=\"{}\"}} {n}",
                a.name()
            );
        }
        family(
            &mut out,
            "process_start_time_seconds",
            "gauge",
            "Start time of berthd since the Unix epoch, in seconds.",
        );
        let start = self
            .started
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        let _ = writeln!(out, "process_start_time_seconds {start}");
        out
    }
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// A label value, escaped as the text format wants (`\`, `"`, newline).
fn label(v: Option<&str>) -> String {
    let mut s = String::new();
    for c in v.unwrap_or_default().chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

/// The engine's figures, with dockerd's metric names where they mean the same thing.
fn render_info(out: &mut String, info: &SystemInfo) {
    family(
        out,
        "engine_daemon_engine_info",
        "gauge",
        "The information related to the engine and the OS it is running on",
    );
    let _ = writeln!(
        out,
        "engine_daemon_engine_info{{architecture=\"{}\",daemon_id=\"{}\",graphdriver=\"{}\",kernel=\"{}\",os=\"{}\",os_type=\"{}\",version=\"{}\"}} 1",
        label(info.architecture.as_deref()),
        label(info.id.as_deref()),
        label(info.driver.as_deref()),
        label(info.kernel_version.as_deref()),
        label(info.operating_system.as_deref()),
        label(info.os_type.as_deref()),
        label(info.server_version.as_deref()),
    );
    family(
        out,
        "engine_daemon_container_states_containers",
        "gauge",
        "The count of containers in various states",
    );
    for (state, n) in [
        ("running", info.containers_running),
        ("paused", info.containers_paused),
        ("stopped", info.containers_stopped),
    ] {
        let _ = writeln!(
            out,
            "engine_daemon_container_states_containers{{state=\"{state}\"}} {}",
            n.unwrap_or(0)
        );
    }
    family(out, "berth_images", "gauge", "Images in the image store.");
    let _ = writeln!(out, "berth_images {}", info.images.unwrap_or(0));
    family(
        out,
        "engine_daemon_events_subscribers_total",
        "gauge",
        "The number of current subscribers to events",
    );
    let _ = writeln!(
        out,
        "engine_daemon_events_subscribers_total {}",
        info.n_events_listener.unwrap_or(0)
    );
}

/// The API middleware: counts every request and its answer.
async fn track(State(m): State<Arc<Metrics>>, req: Request, next: Next) -> Response {
    let method = req.method().clone();
    if let Some(a) = Action::of(&method, req.uri()) {
        m.action(a);
    }
    let start = Instant::now();
    let response = next.run(req).await;
    m.observe(&method, response.status().as_u16(), start.elapsed());
    response
}

/// Wraps the API router with the counting middleware (outermost, so it sees every request
/// as sent, version prefix included, and every status, errors included).
pub fn instrument(app: Router, metrics: Arc<Metrics>) -> Router {
    app.layer(middleware::from_fn_with_state(metrics, track))
}

fn bind_err(addr: &str, op: &'static str) -> impl FnOnce(std::io::Error) -> DaemonError {
    let path = PathBuf::from(format!("metrics address {addr}"));
    move |source| DaemonError::Listen { op, path, source }
}

/// Resolves `HOST:PORT` (the first IPv4 address, else the first one).
pub fn resolve(addr: &str) -> Result<SocketAddr> {
    let addrs: Vec<SocketAddr> = addr
        .to_socket_addrs()
        .map_err(bind_err(addr, "resolve"))?
        .collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or(addrs.first())
        .copied()
        .ok_or_else(|| {
            bind_err(addr, "resolve")(std::io::Error::from(std::io::ErrorKind::NotFound))
        })
}

/// Checks the metrics address before the engine opens (a bad one stops the start).
pub fn preflight(addr: Option<&str>) -> Result<()> {
    addr.map_or(Ok(()), |a| resolve(a).map(|_| ()))
}

/// Binds the metrics listener. A non-loopback address is allowed (as dockerd) with a warning:
/// the page is plain HTTP without authentication.
pub fn bind(addr: &str) -> Result<TcpListener> {
    let resolved = resolve(addr)?;
    if !resolved.ip().is_loopback() {
        tracing::warn!(
            addr = %resolved,
            "the metrics listener is not on a loopback address: anyone who can reach it reads \
             berthd's metrics over plain HTTP without authentication"
        );
    }
    crate::server::bind_tcp(&format!("metrics address {addr}"), resolved)
}

type Shared = (Arc<Metrics>, Arc<Engine>);

async fn metrics_page(State((metrics, engine)): State<Shared>) -> Response {
    let info = match engine.info().await {
        Ok(i) => Some(i),
        Err(e) => {
            tracing::warn!(error = %e, "metrics: cannot read the engine's figures");
            None
        }
    };
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        metrics.render(info.as_ref()),
    )
        .into_response()
}

/// The metrics router: `GET /metrics`, 404 elsewhere.
pub fn router(metrics: Arc<Metrics>, engine: Arc<Engine>) -> Router {
    Router::new()
        .route("/metrics", axum::routing::get(metrics_page))
        .fallback(|| async { (StatusCode::NOT_FOUND, "404 page not found\n") })
        .with_state((metrics, engine))
}

/// Serves the metrics listener until the task is aborted.
pub async fn serve(listener: TcpListener, metrics: Arc<Metrics>, engine: Arc<Engine>) {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "metrics listening on http://{addr}/metrics");
    }
    if let Err(e) = axum::serve(listener, router(metrics, engine)).await {
        tracing::error!(error = %e, "metrics listener stopped");
    }
}

/// Starts the metrics listener when `addr` is given: binds it, instruments `app`, spawns the
/// server. Returns the router to serve the API with and the listener's task (abort it at
/// shutdown).
pub fn start(
    addr: Option<&str>,
    app: Router,
    engine: Arc<Engine>,
) -> Result<(Router, Option<tokio::task::JoinHandle<()>>)> {
    let Some(addr) = addr else {
        return Ok((app, None));
    };
    let listener = bind(addr)?;
    let metrics = Arc::new(Metrics::default());
    let app = instrument(app, Arc::clone(&metrics));
    let task = tokio::spawn(serve(listener, metrics, engine));
    Ok((app, Some(task)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<&str> {
        text.lines().filter(|l| !l.starts_with('#')).collect()
    }

    #[test]
    fn counters_and_histogram_render_in_the_text_format() {
        let m = Metrics::default();
        m.observe(&Method::GET, 200, Duration::from_millis(3));
        m.observe(&Method::GET, 200, Duration::from_millis(40));
        m.observe(&Method::POST, 404, Duration::from_secs(60));
        m.observe(&Method::from_bytes(b"BREW").unwrap(), 405, Duration::ZERO);
        m.action(Action::Pull);
        let text = m.render(None);
        let l = lines(&text);
        assert!(l.contains(&r#"berth_http_requests_total{method="GET",code="200"} 2"#));
        assert!(l.contains(&r#"berth_http_requests_total{method="POST",code="404"} 1"#));
        assert!(l.contains(&r#"berth_http_requests_total{method="other",code="405"} 1"#));
        assert!(l.contains(&r#"berth_http_request_duration_seconds_bucket{le="0.005"} 2"#));
        assert!(l.contains(&r#"berth_http_request_duration_seconds_bucket{le="0.05"} 3"#));
        assert!(l.contains(&r#"berth_http_request_duration_seconds_bucket{le="30"} 3"#));
        assert!(l.contains(&r#"berth_http_request_duration_seconds_bucket{le="+Inf"} 4"#));
        assert!(l.contains(&"berth_http_request_duration_seconds_count 4"));
        assert!(l.contains(&"berth_http_request_duration_seconds_sum 60.043"));
        assert!(l.contains(&r#"berth_image_actions_total{action="pull"} 1"#));
        assert!(l.contains(&r#"berth_image_actions_total{action="build"} 0"#));
        // Every sample belongs to a family declared just before with HELP and TYPE.
        let mut declared = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap();
                assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
                declared.push(name.to_string());
            } else if !line.starts_with('#') {
                let name = line.split(['{', ' ']).next().unwrap();
                assert!(
                    declared.iter().any(|d| name == d
                        || name
                            .strip_prefix(d.as_str())
                            .is_some_and(|s| ["_bucket", "_sum", "_count"].contains(&s))),
                    "{line}"
                );
                let value = line.rsplit(' ').next().unwrap();
                assert!(value.parse::<f64>().is_ok(), "{line}");
            }
        }
        assert!(text.ends_with('\n'));
    }

    #[test]
    fn engine_figures_use_dockerd_names_and_escape_labels() {
        let info = SystemInfo {
            server_version: Some("0.1.0".into()),
            operating_system: Some("Debian \"trixie\"\\x".into()),
            containers_running: Some(2),
            containers_paused: Some(1),
            containers_stopped: Some(3),
            images: Some(5),
            n_events_listener: Some(1),
            ..SystemInfo::default()
        };
        let text = Metrics::default().render(Some(&info));
        let l = lines(&text);
        let engine = l
            .iter()
            .find(|l| l.starts_with("engine_daemon_engine_info{"))
            .unwrap();
        assert!(engine.contains(r#"version="0.1.0""#), "{engine}");
        assert!(engine.contains(r#"os="Debian \"trixie\"\\x""#), "{engine}");
        assert!(engine.ends_with("} 1"), "{engine}");
        assert!(l.contains(&r#"engine_daemon_container_states_containers{state="running"} 2"#));
        assert!(l.contains(&r#"engine_daemon_container_states_containers{state="paused"} 1"#));
        assert!(l.contains(&r#"engine_daemon_container_states_containers{state="stopped"} 3"#));
        assert!(l.contains(&"berth_images 5"));
        assert!(l.contains(&"engine_daemon_events_subscribers_total 1"));
    }

    #[test]
    fn actions_are_classified_from_the_request() {
        let of = |m: Method, u: &str| Action::of(&m, &u.parse::<Uri>().unwrap());
        assert_eq!(
            of(
                Method::POST,
                "/v1.47/images/create?fromImage=busybox&tag=latest"
            ),
            Some(Action::Pull)
        );
        assert_eq!(
            of(Method::POST, "/images/create?fromImage=x"),
            Some(Action::Pull)
        );
        assert_eq!(
            of(Method::POST, "/v1.47/images/create?fromSrc=-&repo=x"),
            None
        );
        assert_eq!(
            of(Method::POST, "/v1.47/images/localhost:5000/a/push?tag=1"),
            Some(Action::Push)
        );
        assert_eq!(of(Method::POST, "/v1.47/build?t=x"), Some(Action::Build));
        assert_eq!(of(Method::GET, "/v1.47/build"), None);
        assert_eq!(of(Method::POST, "/v1.47/containers/create"), None);
        assert_eq!(strip_version("/v1.47/info"), "/info");
        assert_eq!(strip_version("/version"), "/version");
        assert_eq!(strip_version("/volumes"), "/volumes");
    }

    #[test]
    fn metrics_addr_from_the_flag_or_daemon_json() {
        use clap::Parser;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("daemon.json");
        std::fs::write(&file, r#"{"metrics-addr":"127.0.0.1:9323"}"#).unwrap();
        let cli = |extra: &[&str]| {
            let mut v = vec!["berthd", "--config-file", file.to_str().unwrap()];
            v.extend_from_slice(extra);
            crate::config::Cli::try_parse_from(v).unwrap()
        };
        let c = crate::config::Config::resolve(cli(&[])).unwrap();
        assert_eq!(c.metrics_addr.as_deref(), Some("127.0.0.1:9323"));
        let e = crate::config::Config::resolve(cli(&["--metrics-addr", "127.0.0.1:1"]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("metrics-addr: (from flag: 127.0.0.1:1, from file: 127.0.0.1:9323)"),
            "{e}"
        );
        std::fs::write(&file, "{}").unwrap();
        let c = crate::config::Config::resolve(cli(&["--metrics-addr", "[::1]:9323"])).unwrap();
        assert_eq!(c.metrics_addr.as_deref(), Some("[::1]:9323"));
        assert!(preflight(c.metrics_addr.as_deref()).is_ok());
        assert!(preflight(None).is_ok());
        let e = preflight(Some("localhost")).unwrap_err().to_string();
        assert!(e.starts_with("resolve metrics address localhost: "), "{e}");
    }

    #[tokio::test]
    async fn bind_refuses_bad_addresses_and_accepts_loopback() {
        assert!(bind("no-port-here").is_err());
        let l = bind("127.0.0.1:0").unwrap();
        assert!(l.local_addr().unwrap().ip().is_loopback());
    }
}
