//! `pause`/`unpause` (the cgroup freezer), `top` (host `ps` filtered by the container's cgroup)
//! and `prune`.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;

use super::{Containers, Ctr};
use crate::{EngineError, Filters, Result, io_err};

pub(super) const CGROUP_ROOT: &str = "/sys/fs/cgroup";
const PRUNE_FILTERS: &[&str] = &["until", "label", "label!"];

/// The answer of `GET /containers/{id}/top`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TopResponse {
    #[serde(rename = "Titles")]
    pub titles: Vec<String>,
    #[serde(rename = "Processes")]
    pub processes: Vec<Vec<String>>,
}

/// The answer of `POST /containers/prune`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ContainerPruneResponse {
    #[serde(rename = "ContainersDeleted")]
    pub containers_deleted: Option<Vec<String>>,
    #[serde(rename = "SpaceReclaimed")]
    pub space_reclaimed: u64,
}

fn cgroup_v2(root: &Path) -> bool {
    root.join("cgroup.controllers").exists()
}

/// The container's cgroup directory for a v1 controller (`None`: unified v2 hierarchy).
fn cgroup_dir(root: &Path, controller: Option<&str>, id: &str) -> PathBuf {
    let mut p = root.to_path_buf();
    if let Some(c) = controller {
        p.push(c);
    }
    p.join("berth").join(id)
}

/// Freezes or thaws the cgroup of `id` and waits until the kernel reports the new state.
pub(crate) fn set_frozen(root: &Path, id: &str, frozen: bool) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    if cgroup_v2(root) {
        let dir = cgroup_dir(root, None, id);
        let file = dir.join("cgroup.freeze");
        std::fs::write(&file, if frozen { "1" } else { "0" })
            .map_err(|e| io_err("write", &file, e))?;
        let events = dir.join("cgroup.events");
        let want = if frozen { "frozen 1" } else { "frozen 0" };
        loop {
            let s = std::fs::read_to_string(&events).map_err(|e| io_err("read", &events, e))?;
            if s.lines().any(|l| l.trim() == want) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(timeout_err(&events));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    let file = cgroup_dir(root, Some("freezer"), id).join("freezer.state");
    let want = if frozen { "FROZEN" } else { "THAWED" };
    loop {
        // Writing again is how a FREEZING cgroup is nudged along (runc does the same).
        std::fs::write(&file, want).map_err(|e| io_err("write", &file, e))?;
        let s = std::fs::read_to_string(&file).map_err(|e| io_err("read", &file, e))?;
        if s.trim() == want {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(timeout_err(&file));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn timeout_err(path: &Path) -> EngineError {
    io_err(
        "wait for",
        path,
        std::io::Error::new(std::io::ErrorKind::TimedOut, "cgroup freezer timed out"),
    )
}

/// Every pid in the container's cgroup (and its sub-cgroups).
pub(crate) fn cgroup_pids(root: &Path, id: &str) -> Result<HashSet<i64>> {
    let dirs: Vec<PathBuf> = if cgroup_v2(root) {
        vec![cgroup_dir(root, None, id)]
    } else {
        ["pids", "memory", "freezer", "cpu"]
            .iter()
            .map(|c| cgroup_dir(root, Some(c), id))
            .collect()
    };
    let Some(dir) = dirs.iter().find(|d| d.join("cgroup.procs").exists()) else {
        let d = &dirs[0];
        return Err(io_err(
            "read",
            &d.join("cgroup.procs"),
            std::io::Error::from(std::io::ErrorKind::NotFound),
        ));
    };
    let mut pids = HashSet::new();
    let mut stack = vec![dir.clone()];
    while let Some(d) = stack.pop() {
        let procs = d.join("cgroup.procs");
        let s = std::fs::read_to_string(&procs).map_err(|e| io_err("read", &procs, e))?;
        pids.extend(s.lines().filter_map(|l| l.trim().parse::<i64>().ok()));
        if let Ok(rd) = std::fs::read_dir(&d) {
            stack.extend(
                rd.flatten()
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                    .map(|e| e.path()),
            );
        }
    }
    Ok(pids)
}

/// moby's `parsePSOutput`: the header's `PID` column selects the rows of `pids`; extra fields
/// of a row (a command with spaces) are joined into the last column.
pub(crate) fn parse_ps_output(output: &str, pids: &HashSet<i64>) -> Result<TopResponse> {
    let mut lines = output.lines();
    let titles: Vec<String> = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_string)
        .collect();
    let pid_index = titles.iter().position(|t| t == "PID").ok_or_else(|| {
        EngineError::InvalidRequest("Couldn't find PID field in ps output".into())
    })?;
    let mut processes = Vec::new();
    for line in lines {
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        let Some(pid) = fields.get(pid_index) else {
            continue;
        };
        let pid: i64 = pid.parse().map_err(|_| {
            EngineError::InvalidRequest(format!("Unexpected pid '{pid}': invalid digit"))
        })?;
        if !pids.contains(&pid) {
            continue;
        }
        let n = titles.len();
        let row = if fields.len() > n {
            let mut row: Vec<String> = fields[..n - 1].iter().map(|s| s.to_string()).collect();
            row.push(fields[n - 1..].join(" "));
            row
        } else {
            fields.iter().map(|s| s.to_string()).collect()
        };
        processes.push(row);
    }
    Ok(TopResponse { titles, processes })
}

impl Containers {
    fn running_ctr(&self, reference: &str) -> Result<Arc<Ctr>> {
        let ctr = self.get(reference)?;
        if !ctr.rec().state.running {
            return Err(EngineError::Conflict(format!(
                "Container {} is not running",
                ctr.id
            )));
        }
        Ok(ctr)
    }

    /// `POST /containers/{id}/pause`.
    pub(crate) async fn pause(&self, reference: &str) -> Result<()> {
        let ctr = self.running_ctr(reference)?;
        let _op = ctr.op.lock().await;
        {
            let r = ctr.rec();
            if !r.state.running {
                return Err(EngineError::Conflict(format!(
                    "Container {} is not running",
                    ctr.id
                )));
            }
            if r.state.paused {
                return Err(EngineError::Conflict(format!(
                    "Container {} is already paused",
                    ctr.id
                )));
            }
        }
        self.freeze(&ctr).await
    }

    /// Freezes a running container and records it as paused, with its `pause` event (`pause`,
    /// and `commit --pause`; the caller holds the operation lock and has checked the state).
    pub(super) async fn freeze(&self, ctr: &Ctr) -> Result<()> {
        let id = ctr.id.clone();
        let root = self.cgroup_root.clone();
        blocking(move || set_frozen(&root, &id, true)).await?;
        let mut r = ctr.rec();
        r.state.paused = true;
        r.state.status = "paused".into();
        if let Err(e) = r.save(&self.dirs(&ctr.id).dir) {
            tracing::warn!(id = %r.id, error = %e, "cannot save container state");
        }
        self.event_rec(&r, "pause", &[]);
        Ok(())
    }

    /// `POST /containers/{id}/unpause`.
    pub(crate) async fn unpause(&self, reference: &str) -> Result<()> {
        let ctr = self.get(reference)?;
        let _op = ctr.op.lock().await;
        if !ctr.rec().state.paused {
            return Err(EngineError::NotPaused(ctr.id.clone()));
        }
        self.thaw(&ctr).await?;
        self.event(&ctr, "unpause", &[]);
        Ok(())
    }

    /// Thaws a paused container and records it as running again (no-op when not paused).
    pub(crate) async fn thaw(&self, ctr: &Ctr) -> Result<()> {
        if !ctr.rec().state.paused {
            return Ok(());
        }
        let id = ctr.id.clone();
        let root = self.cgroup_root.clone();
        blocking(move || set_frozen(&root, &id, false)).await?;
        let mut r = ctr.rec();
        r.state.paused = false;
        if r.state.running {
            r.state.status = "running".into();
        }
        if let Err(e) = r.save(&self.dirs(&ctr.id).dir) {
            tracing::warn!(id = %r.id, error = %e, "cannot save container state");
        }
        Ok(())
    }

    /// `GET /containers/{id}/top`.
    pub(crate) async fn top(&self, reference: &str, ps_args: &str) -> Result<TopResponse> {
        let ctr = self.running_ctr(reference)?;
        let args: Vec<String> = if ps_args.trim().is_empty() {
            vec!["-ef".to_string()]
        } else {
            ps_args.split_whitespace().map(str::to_string).collect()
        };
        let id = ctr.id.clone();
        let root = self.cgroup_root.clone();
        blocking(move || {
            let pids = cgroup_pids(&root, &id)?;
            let out = std::process::Command::new("/bin/ps")
                .args(&args)
                .stdin(std::process::Stdio::null())
                .output()
                .map_err(|e| io_err("run", Path::new("/bin/ps"), e))?;
            if !out.status.success() {
                return Err(EngineError::TopFailed(format!(
                    "Error running ps: {}: {}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr).trim()
                )));
            }
            parse_ps_output(&String::from_utf8_lossy(&out.stdout), &pids)
        })
        .await
        .inspect(|_| self.event(&ctr, "top", &[]))
    }

    /// `POST /containers/prune`: removes every container that is not running (created,
    /// exited, dead) and matches the filters.
    pub(crate) async fn prune(&self, filters: &Filters) -> Result<ContainerPruneResponse> {
        filters.validate(PRUNE_FILTERS)?;
        let until = match filters.single("until")? {
            Some(u) => Some(images::parse_timestamp(&u, Utc::now())?),
            None => None,
        };
        let labels = filters.get("label");
        let labels_not = filters.get("label!");
        let mut deleted = Vec::new();
        let mut space = 0u64;
        for r in self.records() {
            if r.state.running
                || r.state.paused
                || r.state.restarting
                || r.state.status == "removing"
            {
                continue;
            }
            if until.is_some_and(|u| r.created >= u) {
                continue;
            }
            let l = r.config.labels.clone().unwrap_or_default();
            if !labels.iter().all(|f| super::views::label_match(&l, f))
                || labels_not.iter().any(|f| super::views::label_match(&l, f))
            {
                continue;
            }
            let upper = self.dirs(&r.id).upper();
            let size = blocking(move || Ok(super::views::dir_size(&upper))).await?;
            match self.remove(&r.id, false).await {
                Ok(()) => {
                    space += size;
                    deleted.push(r.id.clone());
                }
                Err(e) => tracing::warn!(id = %r.id, error = %e, "prune: cannot remove"),
            }
        }
        crate::events::emit_prune(&self.events, crate::events::EventType::CONTAINER, space);
        Ok(ContainerPruneResponse {
            containers_deleted: (!deleted.is_empty()).then_some(deleted),
            space_reclaimed: space,
        })
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| EngineError::TaskFailed {
            what: "container operation",
        })?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ps_output_is_filtered_by_pid() {
        let out = "UID        PID  PPID  C STIME TTY          TIME CMD\n\
                   root         1     0  0 10:00 ?        00:00:01 /sbin/init splash\n\
                   root      4242     1  0 10:01 ?        00:00:00 sleep 100\n\
                   \n";
        let pids: HashSet<i64> = [4242].into_iter().collect();
        let t = parse_ps_output(out, &pids).unwrap();
        assert_eq!(t.titles.len(), 8);
        assert_eq!(t.titles[1], "PID");
        assert_eq!(t.processes.len(), 1);
        assert_eq!(t.processes[0][1], "4242");
        assert_eq!(t.processes[0][7], "sleep 100");
        assert!(parse_ps_output("USER COMMAND\nroot x\n", &pids).is_err());
    }

    #[test]
    fn freezer_v1_and_v2_files() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        // v1: the state file reads back what was written.
        let f = root.join("freezer/berth/c1");
        std::fs::create_dir_all(&f).unwrap();
        std::fs::write(f.join("freezer.state"), "THAWED\n").unwrap();
        set_frozen(root, "c1", true).unwrap();
        assert_eq!(
            std::fs::read_to_string(f.join("freezer.state")).unwrap(),
            "FROZEN"
        );
        set_frozen(root, "c1", false).unwrap();
        // pids from the pids hierarchy, sub-cgroups included.
        let p = root.join("pids/berth/c1");
        std::fs::create_dir_all(p.join("sub")).unwrap();
        std::fs::write(p.join("cgroup.procs"), "10\n11\n").unwrap();
        std::fs::write(p.join("sub/cgroup.procs"), "12\n").unwrap();
        let pids = cgroup_pids(root, "c1").unwrap();
        assert_eq!(pids, [10, 11, 12].into_iter().collect());

        // v2: cgroup.freeze, confirmed by cgroup.events.
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(root.join("cgroup.controllers"), "pids\n").unwrap();
        let c = root.join("berth/c2");
        std::fs::create_dir_all(&c).unwrap();
        std::fs::write(c.join("cgroup.events"), "populated 1\nfrozen 1\n").unwrap();
        set_frozen(root, "c2", true).unwrap();
        assert_eq!(
            std::fs::read_to_string(c.join("cgroup.freeze")).unwrap(),
            "1"
        );
        std::fs::write(c.join("cgroup.procs"), "7\n").unwrap();
        assert_eq!(cgroup_pids(root, "c2").unwrap(), [7].into_iter().collect());
        assert!(cgroup_pids(root, "nope").is_err());
    }
}
