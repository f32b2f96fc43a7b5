//! The persistent container record (`<data-root>/containers/<id>/config.v2.json`) and the
//! human texts derived from it.

use std::fs;
use std::path::{Path, PathBuf};

use api_types::models::{ContainerConfig, HostConfig};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{EngineError, Result, io_err};

/// File name of the record inside the container's directory.
pub(crate) const RECORD_FILE: &str = "config.v2.json";

/// The run state of a container, as `State` in inspect.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct State {
    /// `created|running|paused|restarting|removing|exited|dead`.
    pub status: String,
    pub running: bool,
    pub paused: bool,
    pub restarting: bool,
    pub oom_killed: bool,
    pub dead: bool,
    pub pid: i64,
    pub exit_code: i64,
    pub error: String,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// `State.Health` (see `super::health`): None without a healthcheck.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<super::health::Health>,
}

/// Everything berth keeps about one container.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Record {
    pub id: String,
    /// With the leading `/`.
    pub name: String,
    pub created: DateTime<Utc>,
    /// `sha256:<hex>`.
    pub image_id: String,
    /// Chain IDs (hex) of the image's layers, bottom first.
    pub layers: Vec<String>,
    /// argv[0] and the rest, resolved from entrypoint + cmd.
    pub path: String,
    pub args: Vec<String>,
    /// The effective config (image defaults merged with the request).
    pub config: ContainerConfig,
    /// The host config as requested, with defaults filled in.
    pub host_config: HostConfig,
    pub state: State,
    pub restart_count: i64,
    pub log_path: PathBuf,
    /// Set by stop/kill, cleared by start: restart policies do not apply.
    #[serde(default)]
    pub manually_stopped: bool,
    /// Binds, volumes and tmpfs mounts, resolved at create (see `super::mounts`).
    #[serde(default)]
    pub mount_points: Vec<super::mounts::MountPoint>,
    /// The networks it is attached to, by network name (see `super::net`).
    #[serde(default)]
    pub endpoints: std::collections::BTreeMap<String, super::net::Endpoint>,
    /// Its network namespace file while it runs on bridge networks (Docker's SandboxKey).
    #[serde(default)]
    pub sandbox_key: String,
    /// Ports published while it runs.
    #[serde(default)]
    pub ports: Vec<super::net::PublishedPort>,
}

impl Record {
    /// Writes the record atomically (temp file, fsync, rename; mode 0600). Records of `--rm`
    /// containers skip the fsyncs: they are thrown away when the container exits, so a host
    /// crash can lose nothing a user keeps, and a short container's run saves three syncs.
    pub(crate) fn save(&self, dir: &Path) -> Result<()> {
        let json = serde_json::to_vec(self).map_err(|e| EngineError::Io {
            op: "encode",
            path: dir.join(RECORD_FILE),
            source: std::io::Error::other(e),
        })?;
        let durable = !self.host_config.auto_remove.unwrap_or(false);
        write_atomic(&dir.join(RECORD_FILE), &json, durable)
    }

    /// Reads a record.
    pub(crate) fn load(dir: &Path) -> Result<Self> {
        let path = dir.join(RECORD_FILE);
        let data = fs::read(&path).map_err(|e| io_err("read", &path, e))?;
        serde_json::from_slice(&data).map_err(|e| EngineError::Io {
            op: "decode",
            path,
            source: std::io::Error::other(e),
        })
    }

    /// The short ID.
    pub(crate) fn short_id(&self) -> &str {
        &self.id[..12.min(self.id.len())]
    }

    /// `docker ps`'s Status column.
    pub(crate) fn status_text(&self, now: DateTime<Utc>) -> String {
        let s = &self.state;
        let ago = |t: Option<DateTime<Utc>>| human_duration(now - t.unwrap_or(now));
        match s.status.as_str() {
            "running" if s.paused => format!("Up {} (Paused)", ago(s.started_at)),
            "running" => match &s.health {
                Some(h) => format!("Up {} ({})", ago(s.started_at), h.ps_text()),
                None => format!("Up {}", ago(s.started_at)),
            },
            "paused" => format!("Up {} (Paused)", ago(s.started_at)),
            "restarting" => format!("Restarting ({}) {} ago", s.exit_code, ago(s.finished_at)),
            "removing" => "Removal In Progress".to_string(),
            "dead" => "Dead".to_string(),
            "exited" => match s.finished_at {
                Some(t) => format!("Exited ({}) {} ago", s.exit_code, ago(Some(t))),
                None => format!("Exited ({})", s.exit_code),
            },
            _ => "Created".to_string(),
        }
    }

    /// The command as `docker ps` shows it: moby single-quotes arguments holding a space.
    pub(crate) fn command(&self) -> String {
        let mut parts = vec![self.path.clone()];
        parts.extend(self.args.iter().map(|a| {
            if a.contains(' ') {
                format!("'{a}'")
            } else {
                a.clone()
            }
        }));
        parts.join(" ")
    }
}

/// Writes `data` to `path` atomically with mode 0600; `durable` adds the fsyncs.
pub(crate) fn write_atomic(path: &Path, data: &[u8], durable: bool) -> Result<()> {
    Ok(linux::fs::write_atomic(path, data, 0o600, durable)?)
}

/// Go's `units.HumanDuration`.
pub(crate) fn human_duration(d: chrono::Duration) -> String {
    let secs = d.num_seconds();
    if secs < 1 {
        return "Less than a second".into();
    }
    if secs == 1 {
        return "1 second".into();
    }
    if secs < 60 {
        return format!("{secs} seconds");
    }
    let minutes = secs / 60;
    if minutes == 1 {
        return "About a minute".into();
    }
    if minutes < 60 {
        return format!("{minutes} minutes");
    }
    // Go rounds to the nearest hour here.
    let hours = (secs + 1800) / 3600;
    if hours == 1 {
        return "About an hour".into();
    }
    if hours < 48 {
        return format!("{hours} hours");
    }
    if hours < 24 * 7 * 2 {
        return format!("{} days", hours / 24);
    }
    if hours < 24 * 30 * 2 {
        return format!("{} weeks", hours / 24 / 7);
    }
    if hours < 24 * 365 * 2 {
        return format!("{} months", hours / 24 / 30);
    }
    format!("{} years", secs / 3600 / 24 / 365)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn sample() -> Record {
        Record {
            id: "ab".repeat(32),
            name: "/web".into(),
            created: Utc::now(),
            image_id: format!("sha256:{}", "c".repeat(64)),
            layers: vec!["d".repeat(64)],
            path: "sleep".into(),
            args: vec!["100".into()],
            config: ContainerConfig {
                image: Some("busybox".into()),
                cmd: Some(vec!["sleep".into(), "100".into()]),
                exposed_ports: Some(vec!["80/tcp".into()]),
                ..Default::default()
            },
            host_config: HostConfig {
                network_mode: Some("default".into()),
                ..Default::default()
            },
            state: State {
                status: "created".into(),
                ..Default::default()
            },
            restart_count: 0,
            log_path: "/x/y-json.log".into(),
            manually_stopped: false,
            mount_points: Vec::new(),
            endpoints: Default::default(),
            sandbox_key: String::new(),
            ports: Vec::new(),
        }
    }

    #[test]
    fn round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let r = sample();
        r.save(dir.path()).unwrap();
        let mode = fs::metadata(dir.path().join(RECORD_FILE)).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(mode.permissions().mode() & 0o777, 0o600);
        let back = Record::load(dir.path()).unwrap();
        assert_eq!(back.id, r.id);
        assert_eq!(back.name, "/web");
        assert_eq!(back.config.cmd, r.config.cmd);
        assert_eq!(back.config.exposed_ports, r.config.exposed_ports);
        assert_eq!(back.state, r.state);
        assert_eq!(back.host_config.network_mode.as_deref(), Some("default"));
    }

    #[test]
    fn durations_like_go() {
        let h = |s| human_duration(Duration::seconds(s));
        assert_eq!(
            human_duration(Duration::milliseconds(300)),
            "Less than a second"
        );
        assert_eq!(h(1), "1 second");
        assert_eq!(h(2), "2 seconds");
        assert_eq!(h(59), "59 seconds");
        assert_eq!(h(60), "About a minute");
        assert_eq!(h(150), "2 minutes");
        assert_eq!(h(3599), "59 minutes");
        assert_eq!(h(3600), "About an hour");
        assert_eq!(h(3 * 3600), "3 hours");
        assert_eq!(h(3 * 86400), "3 days");
        assert_eq!(h(20 * 86400), "2 weeks");
        assert_eq!(h(90 * 86400), "3 months");
        assert_eq!(h(800 * 86400), "2 years");
    }

    #[test]
    fn status_texts() {
        let now = Utc::now();
        let mut r = sample();
        assert_eq!(r.status_text(now), "Created");
        r.state.status = "running".into();
        r.state.running = true;
        r.state.started_at = Some(now - Duration::seconds(2));
        assert_eq!(r.status_text(now), "Up 2 seconds");
        r.state.status = "exited".into();
        r.state.running = false;
        r.state.exit_code = 3;
        r.state.finished_at = Some(now - Duration::minutes(3));
        assert_eq!(r.status_text(now), "Exited (3) 3 minutes ago");
        assert_eq!(r.command(), "sleep 100");
        r.path = "nginx".into();
        r.args = vec!["-g".into(), "daemon off;".into()];
        assert_eq!(r.command(), "nginx -g 'daemon off;'");
    }
}
