//! `GET /containers/json` and `GET /containers/{id}/json`.

use std::collections::HashMap;
use std::path::Path;

use chrono::Utc;
use serde_json::{Value, json};

use super::Containers;
use super::record::Record;
use crate::{EngineError, Filters, GO_ZERO_TIME, Result, rfc3339_nano};

const LIST_FILTERS: &[&str] = &[
    "id",
    "name",
    "label",
    "label!",
    "status",
    "exited",
    "ancestor",
    "before",
    "since",
    "volume",
    "network",
    "publish",
    "expose",
    "health",
    "isolation",
    "is-task",
];

const STATUSES: &[&str] = &[
    "created",
    "restarting",
    "running",
    "removing",
    "paused",
    "exited",
    "dead",
];

fn time_or_zero(t: Option<chrono::DateTime<Utc>>) -> String {
    t.map_or_else(|| GO_ZERO_TIME.to_string(), |t| rfc3339_nano(&t))
}

/// Bytes used under `dir` (not following symlinks; hard links counted once per inode).
pub(crate) fn dir_size(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut seen = std::collections::HashSet::new();
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(m) = e.metadata() else { continue };
            if m.is_dir() {
                stack.push(e.path());
            } else if seen.insert((m.dev(), m.ino())) {
                total += m.len();
            }
        }
    }
    total
}

pub(super) fn label_match(labels: &HashMap<String, String>, f: &str) -> bool {
    match f.split_once('=') {
        Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
        None => labels.contains_key(f),
    }
}

/// Go-regexp-ish name matching: `^`/`$` anchors, else substring.
fn name_match(name: &str, pattern: &str) -> bool {
    let bare = name.trim_start_matches('/');
    let (start, p) = match pattern.strip_prefix('^') {
        Some(p) => (true, p),
        None => (false, pattern),
    };
    let (end, p) = match p.strip_suffix('$') {
        Some(p) => (true, p),
        None => (false, p),
    };
    let p = p.trim_start_matches('/');
    match (start, end) {
        (true, true) => bare == p,
        (true, false) => bare.starts_with(p),
        (false, true) => bare.ends_with(p),
        (false, false) => bare.contains(p) || name.contains(pattern),
    }
}

/// moby's `volume` filter: a mount point whose volume name, source or destination is `v`.
fn volume_match(r: &Record, v: &str) -> bool {
    r.mount_points
        .iter()
        .any(|m| m.name == v || m.source == v || m.destination == v)
}

/// The `health` filter's value of a container: its status, or `none`.
fn health_of(r: &Record) -> String {
    r.state
        .health
        .as_ref()
        .map_or_else(|| super::health::NONE.to_string(), |h| h.status.clone())
}

impl Containers {
    fn image_matches(&self, r: &Record, ancestor: &str) -> bool {
        if r.config.image.as_deref() == Some(ancestor) {
            return true;
        }
        let hex = r.image_id.trim_start_matches("sha256:");
        let a = ancestor.trim_start_matches("sha256:");
        if a.len() >= 4 && hex.starts_with(a) {
            return true;
        }
        self.images
            .get(ancestor)
            .is_ok_and(|img| img.id.to_string() == r.image_id)
    }

    fn created_of(&self, reference: &str) -> Result<chrono::DateTime<Utc>> {
        Ok(self.get(reference)?.rec().created)
    }

    /// `GET /containers/json`.
    pub(crate) fn list(
        &self,
        all: bool,
        limit: Option<i64>,
        size: bool,
        filters: &Filters,
    ) -> Result<Vec<Value>> {
        filters.validate(LIST_FILTERS)?;
        for s in filters.get("status") {
            if !STATUSES.contains(&s.as_str()) {
                return Err(EngineError::InvalidFilterValue {
                    key: "status".into(),
                    value: s,
                });
            }
        }
        for h in filters.get("health") {
            if ![
                super::health::STARTING,
                super::health::HEALTHY,
                super::health::UNHEALTHY,
                super::health::NONE,
            ]
            .contains(&h.as_str())
            {
                return Err(EngineError::InvalidRequest(format!(
                    "Unrecognised filter value for health: {h}"
                )));
            }
        }
        let mut exited = Vec::new();
        for e in filters.get("exited") {
            exited.push(
                e.parse::<i64>()
                    .map_err(|_| EngineError::InvalidFilterValue {
                        key: "exited".into(),
                        value: e.clone(),
                    })?,
            );
        }
        let before = filters
            .get("before")
            .first()
            .map(|b| self.created_of(b))
            .transpose()?;
        let since = filters
            .get("since")
            .first()
            .map(|b| self.created_of(b))
            .transpose()?;
        let limit = limit.filter(|l| *l > 0);
        let all =
            all || limit.is_some() || filters.contains("status") || filters.contains("exited");
        let mut recs = self.records();
        recs.sort_by_key(|r| std::cmp::Reverse(r.created));
        let now = Utc::now();
        let mut out = Vec::new();
        for r in &recs {
            if !all && !r.state.running {
                continue;
            }
            let labels: HashMap<String, String> = r.config.labels.clone().unwrap_or_default();
            let ok = (!filters.contains("id")
                || filters
                    .get("id")
                    .iter()
                    .any(|i| r.id.starts_with(i.as_str())))
                && (!filters.contains("name")
                    || filters.get("name").iter().any(|n| name_match(&r.name, n)))
                && filters.get("label").iter().all(|l| label_match(&labels, l))
                && filters
                    .get("label!")
                    .iter()
                    .all(|l| !label_match(&labels, l))
                && (!filters.contains("status") || filters.get("status").contains(&r.state.status))
                && (exited.is_empty()
                    || (r.state.status == "exited" && exited.contains(&r.state.exit_code)))
                && (!filters.contains("ancestor")
                    || filters
                        .get("ancestor")
                        .iter()
                        .any(|a| self.image_matches(r, a)))
                && filters.get("volume").iter().all(|v| volume_match(r, v))
                && (!filters.contains("health") || filters.get("health").contains(&health_of(r)))
                && before.is_none_or(|b| r.created < b)
                && since.is_none_or(|s| r.created > s);
            if !ok {
                continue;
            }
            out.push(self.summary(r, size, now));
            if limit.is_some_and(|l| i64::try_from(out.len()).unwrap_or(i64::MAX) >= l) {
                break;
            }
        }
        Ok(out)
    }

    fn summary(&self, r: &Record, size: bool, now: chrono::DateTime<Utc>) -> Value {
        let (ports, networks) = self.ps_network(r);
        let mut v = json!({
            "Id": r.id,
            "Names": [r.name],
            "Image": r.config.image.clone().unwrap_or_default(),
            "ImageID": r.image_id,
            "Command": r.command(),
            "Created": r.created.timestamp(),
            "Ports": ports,
            "Labels": r.config.labels.clone().unwrap_or_default(),
            "State": r.state.status,
            "Status": r.status_text(now),
            "HostConfig": {"NetworkMode": r.host_config.network_mode.clone().unwrap_or_else(|| "default".into())},
            "NetworkSettings": networks,
            "Mounts": r.mount_points.iter().map(|m| m.api()).collect::<Vec<_>>(),
        });
        if size {
            let (rw, rootfs) = self.sizes(r);
            v["SizeRw"] = json!(rw);
            v["SizeRootFs"] = json!(rootfs);
        }
        v
    }

    fn sizes(&self, r: &Record) -> (i64, i64) {
        let rw = dir_size(&self.dirs(&r.id).upper());
        let image = self.images.get(&r.image_id).map_or(0, |i| i.size);
        let to = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        (to(rw), to(rw + image))
    }

    /// `GET /containers/{id}/json`.
    pub(crate) fn inspect(&self, reference: &str, size: bool) -> Result<Value> {
        let r = self.get(reference)?.snapshot();
        let dirs = self.dirs(&r.id);
        let snapshots = self.data_root.join("snapshots");
        let lower: Vec<String> = std::iter::once(dirs.init().display().to_string())
            .chain(
                r.layers
                    .iter()
                    .rev()
                    .map(|h| snapshots.join(h).join("fs").display().to_string()),
            )
            .collect();
        let s = &r.state;
        let mut config = serde_json::to_value(&r.config).unwrap_or_else(|_| json!({}));
        for (k, default) in [
            ("Hostname", json!("")),
            ("Domainname", json!("")),
            ("User", json!("")),
            ("AttachStdin", json!(false)),
            ("AttachStdout", json!(false)),
            ("AttachStderr", json!(false)),
            ("Tty", json!(false)),
            ("OpenStdin", json!(false)),
            ("StdinOnce", json!(false)),
            ("Env", json!([])),
            ("Cmd", Value::Null),
            ("Image", json!("")),
            ("Volumes", Value::Null),
            ("WorkingDir", json!("")),
            ("Entrypoint", Value::Null),
            ("OnBuild", Value::Null),
            ("Labels", json!({})),
        ] {
            if config.get(k).is_none() {
                config[k] = default;
            }
        }
        let host_config = serde_json::to_value(&r.host_config).unwrap_or_else(|_| json!({}));
        let started = s.started_at.is_some();
        let mut v = json!({
            "Id": r.id,
            "Created": rfc3339_nano(&r.created),
            "Path": r.path,
            "Args": r.args,
            "State": {
                "Status": s.status,
                "Running": s.running,
                "Paused": s.paused,
                "Restarting": s.restarting,
                "OOMKilled": s.oom_killed,
                "Dead": s.dead,
                "Pid": s.pid,
                "ExitCode": s.exit_code,
                "Error": s.error,
                "StartedAt": time_or_zero(s.started_at),
                "FinishedAt": time_or_zero(s.finished_at),
            },
            "Image": r.image_id,
            "ResolvConfPath": if started { dirs.resolv().display().to_string() } else { String::new() },
            "HostnamePath": if started { dirs.hostname().display().to_string() } else { String::new() },
            "HostsPath": if started { dirs.hosts().display().to_string() } else { String::new() },
            "LogPath": r.log_path.display().to_string(),
            "Name": r.name,
            "RestartCount": r.restart_count,
            "Driver": "overlay2",
            "Platform": "linux",
            "MountLabel": "",
            "ProcessLabel": "",
            "AppArmorProfile": "",
            "ExecIDs": self.exec_ids(&r.id),
            "HostConfig": host_config,
            "GraphDriver": {
                "Name": "overlay2",
                "Data": {
                    "LowerDir": lower.join(":"),
                    "UpperDir": dirs.upper().display().to_string(),
                    "WorkDir": dirs.work().display().to_string(),
                    "MergedDir": dirs.rootfs().display().to_string(),
                },
            },
            "Mounts": r.mount_points.iter().map(|m| m.api()).collect::<Vec<_>>(),
            "Config": config,
            "NetworkSettings": self.network_settings(&r),
        });
        if let Some(h) = &s.health {
            v["State"]["Health"] = h.api();
        }
        if size {
            let (rw, rootfs) = self.sizes(&r);
            v["SizeRw"] = json!(rw);
            v["SizeRootFs"] = json!(rootfs);
        }
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(name_match("/web", "web"));
        assert!(name_match("/web", "/web"));
        assert!(name_match("/myweb1", "web"));
        assert!(name_match("/web", "^web$"));
        assert!(!name_match("/web1", "^web$"));
        assert!(name_match("/web1", "^/web"));
        assert!(!name_match("/db", "web"));
    }

    #[test]
    fn labels() {
        let l: HashMap<String, String> = [("a".to_string(), "b".to_string())].into();
        assert!(label_match(&l, "a"));
        assert!(label_match(&l, "a=b"));
        assert!(!label_match(&l, "a=c"));
        assert!(!label_match(&l, "c"));
    }
}
