//! Healthchecks, as moby's `daemon/health.go`: the effective `Healthcheck` (the image's
//! `HEALTHCHECK` under the create request's), the health state kept in the container record
//! (`State.Health`: status, failing streak, the last 5 probe results), and the monitor task
//! that runs the probe as an exec inside the running container every interval.
//!
//! Probes are ordinary execs (`super::exec`): they emit `exec_create`/`exec_start`/`exec_die`,
//! show in `ExecIDs` while they run and are forgotten as soon as they ended. A status change
//! emits `health_status: <status>` and is saved with the record. The monitor of a start stops
//! when that run ends (the exit marks the status `unhealthy`, moby's compatibility rule); a new
//! start, a restart by policy or a berthd restart finding the container alive resets the status
//! to `starting` (keeping the log). Health never restarts a container: only exits do.
//!
//! This module knows nothing of HTTP; it does not touch shims or the runtime directly.

use std::sync::Arc;
use std::time::Duration;

use api_types::models::{ContainerConfig, ExecConfig, HealthConfig};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::io::AsyncReadExt;

use super::exec::ExecStartRequest;
use super::record::State;
use super::{Containers, Ctr};
use crate::{EngineError, Result, rfc3339_nano};

/// Results kept in `State.Health.Log`.
pub(crate) const MAX_LOG: usize = 5;
/// Bytes of probe output kept per result (then `...`).
pub(crate) const MAX_OUTPUT: usize = 4096;
const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_START_INTERVAL: Duration = Duration::from_secs(5);
const DEFAULT_RETRIES: i64 = 3;
/// How long a probe may take to start before it counts as failed (moby: 30 s).
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// moby's `MinimumDuration` (1 ms), in nanoseconds.
const MIN_DURATION_NS: i64 = 1_000_000;

pub(crate) const STARTING: &str = "starting";
pub(crate) const HEALTHY: &str = "healthy";
pub(crate) const UNHEALTHY: &str = "unhealthy";
/// The `health` filter's value for containers without a healthcheck.
pub(crate) const NONE: &str = "none";

/// One probe run, as `State.Health.Log[]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ProbeResult {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub exit_code: i64,
    pub output: String,
}

/// The health state of a container (`State.Health`), kept in its record.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Health {
    pub status: String,
    pub failing_streak: i64,
    pub log: Vec<ProbeResult>,
}

impl Health {
    /// `docker ps`'s suffix: `health: starting`, `healthy`, `unhealthy`.
    pub(crate) fn ps_text(&self) -> String {
        if self.status == STARTING {
            "health: starting".to_string()
        } else {
            self.status.clone()
        }
    }

    /// `State.Health` in inspect.
    pub(crate) fn api(&self) -> Value {
        let log: Vec<Value> = self
            .log
            .iter()
            .map(|r| {
                json!({
                    "Start": rfc3339_nano(&r.start),
                    "End": rfc3339_nano(&r.end),
                    "ExitCode": r.exit_code,
                    "Output": r.output,
                })
            })
            .collect();
        json!({
            "Status": self.status,
            "FailingStreak": self.failing_streak,
            // `[]` before the first result, as dockerd answers.
            "Log": log,
        })
    }

    /// moby's `handleProbeResult`: appends the result and moves the status; returns whether
    /// the status changed.
    pub(crate) fn record(
        &mut self,
        result: ProbeResult,
        probe: &Probe,
        started_at: DateTime<Utc>,
    ) -> bool {
        let old = self.status.clone();
        let in_start_period = match (result.start - started_at).to_std() {
            Ok(d) => d < probe.start_period,
            Err(_) => !probe.start_period.is_zero(),
        };
        let ok = result.exit_code == 0;
        self.log.push(result);
        if self.log.len() > MAX_LOG {
            let extra = self.log.len() - MAX_LOG;
            self.log.drain(..extra);
        }
        if ok {
            self.failing_streak = 0;
            self.status = HEALTHY.to_string();
        } else if !(self.status == STARTING && in_start_period) {
            // Failures while starting within the start period do not count.
            self.failing_streak += 1;
            if self.failing_streak >= probe.retries {
                self.status = UNHEALTHY.to_string();
            }
        }
        old != self.status
    }
}

/// What a container's healthcheck runs, with moby's defaults applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Probe {
    /// The exec's argv (`CMD-SHELL` wrapped in the container's shell).
    pub argv: Vec<String>,
    pub interval: Duration,
    pub timeout: Duration,
    pub start_period: Duration,
    pub start_interval: Duration,
    pub retries: i64,
}

fn dur(ns: Option<i64>, default: Duration) -> Duration {
    match ns {
        Some(n) if n > 0 => Duration::from_nanos(u64::try_from(n).unwrap_or(0)),
        _ => default,
    }
}

impl Probe {
    /// moby's `getInterval`: the plain interval, except during the start period, where the
    /// start interval applies while `starting` and the end of the period is never overslept.
    pub(crate) fn next_delay(&self, since_start: Duration, status: &str) -> Duration {
        if since_start >= self.start_period {
            return self.interval;
        }
        let remaining = self.start_period - since_start;
        if remaining < self.interval {
            return remaining;
        }
        if status == STARTING {
            self.start_interval
        } else {
            self.interval
        }
    }
}

/// The probe of a container's config: None without a healthcheck, with `NONE`, or with an
/// unknown test type (moby's `getProbe`).
pub(crate) fn probe_of(cfg: &ContainerConfig) -> Option<Probe> {
    let hc = cfg.healthcheck.as_ref()?;
    let test = hc.test.as_ref()?;
    let argv: Vec<String> = match test.first()?.as_str() {
        "CMD" => test[1..].to_vec(),
        "CMD-SHELL" => {
            let mut argv = cfg
                .shell
                .clone()
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()]);
            argv.extend(test[1..].iter().cloned());
            argv
        }
        _ => return None,
    };
    if argv.is_empty() {
        return None;
    }
    Some(Probe {
        argv,
        interval: dur(hc.interval, DEFAULT_INTERVAL),
        timeout: dur(hc.timeout, DEFAULT_TIMEOUT),
        start_period: dur(hc.start_period, Duration::ZERO),
        start_interval: dur(hc.start_interval, DEFAULT_START_INTERVAL),
        retries: hc.retries.filter(|r| *r > 0).unwrap_or(DEFAULT_RETRIES),
    })
}

/// moby's merge of the request's `Healthcheck` with the image's: no request config takes the
/// image's; zero fields of the request's take the image's values.
pub(crate) fn merge_config(
    user: Option<HealthConfig>,
    image: Option<&Value>,
) -> Option<HealthConfig> {
    let image: Option<HealthConfig> = image.and_then(|v| serde_json::from_value(v.clone()).ok());
    let Some(mut u) = user else { return image };
    let Some(img) = image else { return Some(u) };
    if u.test.as_ref().is_none_or(Vec::is_empty) {
        u.test = img.test;
    }
    let zero = |v: Option<i64>| v.is_none_or(|n| n == 0);
    if zero(u.interval) {
        u.interval = img.interval;
    }
    if zero(u.timeout) {
        u.timeout = img.timeout;
    }
    if zero(u.start_period) {
        u.start_period = img.start_period;
    }
    if zero(u.start_interval) {
        u.start_interval = img.start_interval;
    }
    if zero(u.retries) {
        u.retries = img.retries;
    }
    Some(u)
}

/// moby's `validateHealthCheck` of a create request.
pub(crate) fn validate(hc: Option<&HealthConfig>) -> Result<()> {
    let Some(hc) = hc else { return Ok(()) };
    for (name, v) in [
        ("Interval", hc.interval),
        ("Timeout", hc.timeout),
        ("StartPeriod", hc.start_period),
        ("StartInterval", hc.start_interval),
    ] {
        if let Some(n) = v
            && n != 0
            && n < MIN_DURATION_NS
        {
            return Err(EngineError::InvalidRequest(format!(
                "{name} in Healthcheck cannot be less than 1ms"
            )));
        }
    }
    if hc.retries.is_some_and(|r| r < 0) {
        return Err(EngineError::InvalidRequest(
            "Retries in Healthcheck cannot be negative".into(),
        ));
    }
    Ok(())
}

/// The health state for a (re)started container: `starting` with a zero streak, keeping the
/// log (moby's `initHealthMonitor`); None when it has no probe.
pub(crate) fn on_start(prev: Option<Health>, cfg: &ContainerConfig) -> Option<Health> {
    probe_of(cfg)?;
    let mut h = prev.unwrap_or_default();
    h.status = STARTING.to_string();
    h.failing_streak = 0;
    Some(h)
}

/// The exit of a run: the monitor stopped, so the status is `unhealthy` (moby's
/// `CloseMonitorChannel`, "for compatibility reasons").
pub(crate) fn on_exit(state: &mut State) {
    if let Some(h) = state.health.as_mut() {
        h.status = UNHEALTHY.to_string();
    }
}

/// Go's `time.Duration.String()` (for "Health check exceeded timeout (300ms)").
pub(crate) fn go_duration(d: Duration) -> String {
    fn frac(v: u128, unit: u128, digits: usize) -> String {
        let (i, f) = (v / unit, v % unit);
        if f == 0 {
            i.to_string()
        } else {
            let f = format!("{f:0digits$}");
            format!("{i}.{}", f.trim_end_matches('0'))
        }
    }
    let ns = d.as_nanos();
    if ns == 0 {
        return "0s".into();
    }
    if ns < 1_000 {
        return format!("{ns}ns");
    }
    if ns < 1_000_000 {
        return format!("{}µs", frac(ns, 1_000, 3));
    }
    if ns < 1_000_000_000 {
        return format!("{}ms", frac(ns, 1_000_000, 6));
    }
    let secs = ns / 1_000_000_000;
    let (h, m) = (secs / 3600, (secs % 3600) / 60);
    let s = frac(ns % 60_000_000_000, 1_000_000_000, 9);
    if h > 0 {
        format!("{h}h{m}m{s}s")
    } else if m > 0 {
        format!("{m}m{s}s")
    } else {
        format!("{s}s")
    }
}

/// Probe output: stdout and stderr demultiplexed from the exec's framed stream, in arrival
/// order, the first 4 KiB kept (moby's `limitedBuffer`).
#[derive(Debug, Default)]
struct Output {
    pending: Vec<u8>,
    kept: Vec<u8>,
    truncated: bool,
}

impl Output {
    fn feed(&mut self, data: &[u8]) {
        self.pending.extend_from_slice(data);
        loop {
            if self.pending.len() < 8 {
                return;
            }
            let len = u32::from_be_bytes([
                self.pending[4],
                self.pending[5],
                self.pending[6],
                self.pending[7],
            ]) as usize;
            if self.pending.len() < 8 + len {
                return;
            }
            let payload: Vec<u8> = self.pending.drain(..8 + len).skip(8).collect();
            let room = MAX_OUTPUT.saturating_sub(self.kept.len());
            if payload.len() > room {
                self.truncated = true;
            }
            self.kept
                .extend_from_slice(&payload[..room.min(payload.len())]);
        }
    }

    fn text(&self) -> String {
        let mut s = String::from_utf8_lossy(&self.kept).into_owned();
        if self.truncated {
            s.push_str("...");
        }
        s
    }
}

/// Drops a probe's exec record when the probe ends or is abandoned.
struct ForgetExec {
    containers: Arc<Containers>,
    id: String,
}

impl Drop for ForgetExec {
    fn drop(&mut self) {
        self.containers.forget_exec(&self.id);
    }
}

fn failed(start: DateTime<Utc>, output: String) -> ProbeResult {
    ProbeResult {
        start,
        end: Utc::now(),
        exit_code: -1,
        output,
    }
}

impl Containers {
    /// Starts the health monitor of the container's current run, if it has a probe. Call
    /// after the start was recorded (or, at daemon start, for a live container).
    pub(super) fn spawn_health(self: &Arc<Self>, ctr: &Arc<Ctr>) {
        let (probe, started) = {
            let r = ctr.rec();
            match (probe_of(&r.config), r.state.started_at) {
                (Some(p), Some(s)) if r.state.running && r.state.health.is_some() => (p, s),
                _ => return,
            }
        };
        let run = ctr.notice.borrow().starts;
        let this = Arc::clone(self);
        let ctr = Arc::clone(ctr);
        tokio::spawn(async move { this.health_monitor(ctr, probe, started, run).await });
    }

    /// One run's monitor: sleeps, probes, records, until the run ends.
    async fn health_monitor(
        self: Arc<Self>,
        ctr: Arc<Ctr>,
        probe: Probe,
        started: DateTime<Utc>,
        run: u64,
    ) {
        let mut rx = ctr.notice.subscribe();
        let ended = move |n: &super::Notice| !n.running || n.removed || n.starts != run;
        loop {
            let delay = {
                let r = ctr.rec();
                if !r.state.running || r.state.started_at != Some(started) {
                    return;
                }
                let status = r.state.health.as_ref().map_or("", |h| h.status.as_str());
                let since = (Utc::now() - started).to_std().unwrap_or_default();
                probe.next_delay(since, status)
            };
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                _ = rx.wait_for(ended) => return,
            }
            {
                let mut r = ctr.rec();
                if r.state.paused {
                    // moby stops the monitor of a paused container, which marks it unhealthy.
                    if let Some(h) = r.state.health.as_mut() {
                        h.status = UNHEALTHY.to_string();
                    }
                    continue;
                }
            }
            let result = tokio::select! {
                r = self.run_probe(&ctr, &probe) => r,
                _ = rx.wait_for(ended) => return,
            };
            let changed = {
                let mut r = ctr.rec();
                if !r.state.running || r.state.started_at != Some(started) {
                    return;
                }
                let Some(h) = r.state.health.as_mut() else {
                    return;
                };
                if h.record(result, &probe, started) {
                    let status = h.status.clone();
                    if let Err(e) = r.save(&self.dirs(&ctr.id).dir) {
                        tracing::warn!(id = %ctr.id, error = %e, "cannot save the health state");
                    }
                    Some(status)
                } else {
                    None
                }
            };
            if let Some(status) = changed {
                self.event(&ctr, &format!("health_status: {status}"), &[]);
            }
        }
    }

    /// Runs the probe once as an exec (moby's `cmdProbe.run`); failures to run it are results
    /// with exit code -1.
    async fn run_probe(self: &Arc<Self>, ctr: &Ctr, probe: &Probe) -> ProbeResult {
        let start = Utc::now();
        let (user, workdir) = {
            let r = ctr.rec();
            (r.config.user.clone(), r.config.working_dir.clone())
        };
        let cfg = ExecConfig {
            cmd: Some(probe.argv.clone()),
            user,
            working_dir: workdir,
            attach_stdin: Some(false),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            tty: Some(false),
            privileged: Some(false),
            ..Default::default()
        };
        let id = match self.exec_create(&ctr.id, cfg) {
            Ok(id) => id,
            Err(e) => return failed(start, e.to_string()),
        };
        // Forgotten however the probe ends (also when the monitor drops it at an exit).
        let _forget = ForgetExec {
            containers: Arc::clone(self),
            id: id.clone(),
        };
        self.probe_exec(&id, probe, start).await
    }

    async fn probe_exec(
        self: &Arc<Self>,
        id: &str,
        probe: &Probe,
        start: DateTime<Utc>,
    ) -> ProbeResult {
        let (mut mine, theirs) = tokio::io::duplex(64 * 1024);
        let this = Arc::clone(self);
        let exec_id = id.to_string();
        let mut session = tokio::spawn(async move {
            this.exec_start_attached(&exec_id, ExecStartRequest::default(), theirs)
                .await
        });
        let reader = tokio::spawn(async move {
            let mut out = Output::default();
            let mut buf = vec![0u8; 16 * 1024];
            while let Ok(n) = mine.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                out.feed(&buf[..n]);
            }
            out
        });
        // The timeout counts from the probe's start, not from the request (moby).
        let started = tokio::time::timeout(START_TIMEOUT, self.exec_wait_started(id)).await;
        if started.is_err() {
            let _ = self.exec_kill(id, 9).await;
            session.abort();
            reader.abort();
            return failed(
                start,
                format!("timed out starting health check for container {}", id),
            );
        }
        let finished = tokio::time::timeout(probe.timeout, &mut session).await;
        let session_result = match finished {
            Ok(joined) => joined.unwrap_or(Err(EngineError::TaskFailed {
                what: "health check",
            })),
            Err(_) => {
                if let Err(e) = self.exec_kill(id, 9).await {
                    tracing::debug!(exec = %id, error = %e, "killing a health check past its timeout");
                }
                let _ = tokio::time::timeout(Duration::from_secs(10), &mut session).await;
                session.abort();
                let out = tokio::time::timeout(Duration::from_secs(1), reader)
                    .await
                    .ok()
                    .and_then(|r| r.ok())
                    .map(|o| o.text())
                    .unwrap_or_default();
                let t = go_duration(probe.timeout);
                let output = if out.is_empty() {
                    format!("Health check exceeded timeout ({t})")
                } else {
                    format!("Health check exceeded timeout ({t}): {out}")
                };
                return failed(start, output);
            }
        };
        let out = tokio::time::timeout(Duration::from_secs(1), reader)
            .await
            .ok()
            .and_then(|r| r.ok())
            .map(|o| o.text())
            .unwrap_or_default();
        if let Err(e) = session_result {
            return failed(start, e.to_string());
        }
        let code = self
            .exec_inspect(id)
            .ok()
            .and_then(|v| v["ExitCode"].as_i64());
        match code {
            Some(code) => ProbeResult {
                start,
                end: Utc::now(),
                exit_code: code,
                output: out,
            },
            None => failed(start, "healthcheck for container has no exit code".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(retries: i64, start_period: Duration) -> Probe {
        Probe {
            argv: vec!["true".into()],
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            start_period,
            start_interval: Duration::from_millis(100),
            retries,
        }
    }

    fn result(at: DateTime<Utc>, code: i64) -> ProbeResult {
        ProbeResult {
            start: at,
            end: at,
            exit_code: code,
            output: String::new(),
        }
    }

    #[test]
    fn transitions_like_moby() {
        let t0 = Utc::now();
        let p = probe(2, Duration::ZERO);
        let mut h = on_start(None, &cfg(&["CMD", "true"])).unwrap();
        assert_eq!(h.status, STARTING);
        assert_eq!(h.ps_text(), "health: starting");
        // One failure: still starting, streak 1.
        assert!(!h.record(result(t0, 1), &p, t0));
        assert_eq!((h.status.as_str(), h.failing_streak), (STARTING, 1));
        // Second: unhealthy.
        assert!(h.record(result(t0, 1), &p, t0));
        assert_eq!(h.status, UNHEALTHY);
        // A success resets.
        assert!(h.record(result(t0, 0), &p, t0));
        assert_eq!((h.status.as_str(), h.failing_streak), (HEALTHY, 0));
        // Healthy stays healthy until `retries` failures.
        assert!(!h.record(result(t0, 2), &p, t0));
        assert_eq!(h.status, HEALTHY);
        assert!(h.record(result(t0, -1), &p, t0));
        assert_eq!(h.status, UNHEALTHY);
        // Only the last 5 results are kept, oldest first.
        for code in 10..20 {
            h.record(result(t0, code), &p, t0);
        }
        let codes: Vec<i64> = h.log.iter().map(|r| r.exit_code).collect();
        assert_eq!(codes, vec![15, 16, 17, 18, 19]);
        // A restart: starting again, streak reset, log kept.
        let h2 = on_start(Some(h.clone()), &cfg(&["CMD", "true"])).unwrap();
        assert_eq!((h2.status.as_str(), h2.failing_streak), (STARTING, 0));
        assert_eq!(h2.log.len(), 5);
        let mut st = State {
            health: Some(h2),
            ..Default::default()
        };
        on_exit(&mut st);
        assert_eq!(st.health.unwrap().status, UNHEALTHY);
    }

    #[test]
    fn start_period_failures_do_not_count_while_starting() {
        let t0 = Utc::now();
        let p = probe(1, Duration::from_secs(10));
        let mut h = on_start(None, &cfg(&["CMD", "x"])).unwrap();
        let early = t0 + chrono::Duration::seconds(1);
        assert!(!h.record(result(early, 1), &p, t0));
        assert_eq!((h.status.as_str(), h.failing_streak), (STARTING, 0));
        // Healthy within the period: failures count again.
        assert!(h.record(result(early, 0), &p, t0));
        assert!(h.record(result(early, 1), &p, t0));
        assert_eq!(h.status, UNHEALTHY);
        // After the period a failure counts while starting.
        let mut h = on_start(None, &cfg(&["CMD", "x"])).unwrap();
        assert!(h.record(result(t0 + chrono::Duration::seconds(11), 1), &p, t0));
        assert_eq!(h.status, UNHEALTHY);
    }

    #[test]
    fn intervals() {
        let p = probe(3, Duration::from_secs(10));
        // Starting within the start period: the start interval.
        assert_eq!(
            p.next_delay(Duration::from_secs(1), STARTING),
            Duration::from_millis(100)
        );
        assert_eq!(
            p.next_delay(Duration::from_secs(1), HEALTHY),
            Duration::from_secs(1)
        );
        // Near the end of the period: what is left of it.
        assert_eq!(
            p.next_delay(Duration::from_millis(9500), STARTING),
            Duration::from_millis(500)
        );
        assert_eq!(
            p.next_delay(Duration::from_secs(20), STARTING),
            Duration::from_secs(1)
        );
    }

    fn cfg(test: &[&str]) -> ContainerConfig {
        ContainerConfig {
            healthcheck: Some(HealthConfig {
                test: Some(test.iter().map(ToString::to_string).collect()),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn probes_and_defaults() {
        let p = probe_of(&cfg(&["CMD-SHELL", "exit 1"])).unwrap();
        assert_eq!(p.argv, vec!["/bin/sh", "-c", "exit 1"]);
        assert_eq!(p.interval, DEFAULT_INTERVAL);
        assert_eq!(p.timeout, DEFAULT_TIMEOUT);
        assert_eq!(p.start_period, Duration::ZERO);
        assert_eq!(p.start_interval, DEFAULT_START_INTERVAL);
        assert_eq!(p.retries, 3);
        let mut c = cfg(&["CMD-SHELL", "x"]);
        c.shell = Some(vec!["/bin/ash".into(), "-ec".into()]);
        assert_eq!(probe_of(&c).unwrap().argv, vec!["/bin/ash", "-ec", "x"]);
        assert_eq!(
            probe_of(&cfg(&["CMD", "a", "b"])).unwrap().argv,
            vec!["a", "b"]
        );
        assert!(probe_of(&cfg(&["NONE"])).is_none());
        assert!(probe_of(&cfg(&["BOGUS", "x"])).is_none());
        assert!(probe_of(&cfg(&[])).is_none());
        assert!(probe_of(&ContainerConfig::default()).is_none());
        assert!(on_start(None, &cfg(&["NONE"])).is_none());
    }

    #[test]
    fn merge_and_validate() {
        let img = json!({"Test": ["CMD-SHELL", "img"], "Interval": 5_000_000_000i64, "Retries": 7});
        let m = merge_config(None, Some(&img)).unwrap();
        assert_eq!(m.test.unwrap(), vec!["CMD-SHELL", "img"]);
        let user = HealthConfig {
            interval: Some(1_000_000),
            ..Default::default()
        };
        let m = merge_config(Some(user), Some(&img)).unwrap();
        assert_eq!(m.test.unwrap(), vec!["CMD-SHELL", "img"]);
        assert_eq!((m.interval, m.retries), (Some(1_000_000), Some(7)));
        let none = HealthConfig {
            test: Some(vec!["NONE".into()]),
            ..Default::default()
        };
        let m = merge_config(Some(none), Some(&img)).unwrap();
        assert_eq!(m.test.unwrap(), vec!["NONE"]);
        assert!(merge_config(None, None).is_none());

        assert!(validate(None).is_ok());
        let bad = HealthConfig {
            interval: Some(999),
            ..Default::default()
        };
        assert_eq!(
            validate(Some(&bad)).unwrap_err().to_string(),
            "Interval in Healthcheck cannot be less than 1ms"
        );
        let bad = HealthConfig {
            retries: Some(-1),
            ..Default::default()
        };
        assert_eq!(
            validate(Some(&bad)).unwrap_err().to_string(),
            "Retries in Healthcheck cannot be negative"
        );
    }

    #[test]
    fn durations_like_go() {
        assert_eq!(go_duration(Duration::from_millis(300)), "300ms");
        assert_eq!(go_duration(Duration::from_secs(1)), "1s");
        assert_eq!(go_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(go_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(go_duration(Duration::from_secs(3600)), "1h0m0s");
        assert_eq!(go_duration(Duration::from_micros(1500)), "1.5ms");
        assert_eq!(go_duration(Duration::from_nanos(1500)), "1.5µs");
        assert_eq!(go_duration(Duration::from_secs(30)), "30s");
    }

    #[test]
    fn output_is_demultiplexed_and_limited() {
        let mut o = Output::default();
        let frame = |stream: u8, data: &[u8]| {
            let mut f = vec![stream, 0, 0, 0];
            f.extend_from_slice(&u32::try_from(data.len()).unwrap().to_be_bytes());
            f.extend_from_slice(data);
            f
        };
        let mut all = frame(1, b"out ");
        all.extend(frame(2, b"err"));
        // Split mid-header and mid-payload.
        o.feed(&all[..3]);
        o.feed(&all[3..10]);
        o.feed(&all[10..]);
        assert_eq!(o.text(), "out err");
        o.feed(&frame(1, &vec![b'x'; 5000]));
        let t = o.text();
        assert_eq!(t.len(), MAX_OUTPUT + 3);
        assert!(t.ends_with("x..."));
    }

    #[test]
    fn api_shape() {
        let mut h = Health {
            status: STARTING.into(),
            ..Default::default()
        };
        assert_eq!(h.api()["Log"], json!([]));
        let t = Utc::now();
        h.record(result(t, 0), &probe(3, Duration::ZERO), t);
        let v = h.api();
        assert_eq!(v["Status"], "healthy");
        assert_eq!(v["FailingStreak"], 0);
        assert_eq!(v["Log"][0]["ExitCode"], 0);
        assert!(v["Log"][0]["Start"].is_string());
        assert_eq!(h.ps_text(), "healthy");
    }
}
