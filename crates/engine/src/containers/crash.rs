//! What a berthd killed mid-operation leaves behind, cleaned at the next start (before running
//! containers are restored).
//!
//! A record is saved as running only after the container started, and a removal deletes the
//! record before the rest of the directory; so after a crash a record that is not running may
//! still have a created (gated) or just-started container with its shim, rootfs mount, cgroups
//! and network namespace (the start was cut short), and a directory without a record is a
//! create or a removal cut short. This module ends and removes those; it must not end a
//! container recorded as running (`restore` settles those from their shims; only their freezer
//! state is brought in line with the record) nor touch a directory whose record exists but
//! cannot be read (that is kept for a human to look at).

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

use runtime::Shim;

use super::record::RECORD_FILE;
use super::{Containers, Ctr};

impl Containers {
    /// Cleans what crashed operations left (see the module doc); returns the IDs of containers
    /// that are not running and were made with `--rm`, which the caller removes (moby's
    /// restore removes them too).
    pub(super) fn clean_after_crash(&self, all: &[Arc<Ctr>]) -> Vec<String> {
        let mut auto_remove = Vec::new();
        let mut running = HashSet::new();
        for ctr in all {
            let rec = ctr.snapshot();
            if rec.state.running {
                running.insert(self.networks.sandbox_path(&rec.id));
                // A crash between freezing (commit, pause) or thawing and saving the record
                // leaves the cgroup out of step with it: the record wins.
                if self.shim(&rec.id).alive()
                    && let Err(e) =
                        super::pause::set_frozen(&self.cgroup_root, &rec.id, rec.state.paused)
                {
                    tracing::debug!(id = %rec.id, error = %e, "freezer state at restore");
                }
                continue;
            }
            let shim = self.shim(&rec.id);
            if shim.state_dir().exists() {
                if shim.alive() {
                    tracing::warn!(id = %rec.id, "ending a container whose start was cut short");
                }
                if let Err(e) = shim.abandon() {
                    tracing::warn!(id = %rec.id, error = %e, "cannot end the container");
                }
            }
            if let Err(e) = linux::mount::unmount(&self.dirs(&rec.id).rootfs()) {
                tracing::warn!(id = %rec.id, error = %e, "cannot unmount the root filesystem");
            }
            if rec.state.status == "removing" {
                // A removal cut short (should its state have reached the disk): moby's answer,
                // dead, so that `docker rm` can finish it.
                let mut r = ctr.rec();
                r.state.status = "dead".into();
                r.state.dead = true;
                if let Err(e) = r.save(&self.dirs(&r.id).dir) {
                    tracing::warn!(id = %r.id, error = %e, "cannot save container state");
                }
            }
            if rec.host_config.auto_remove.unwrap_or(false) {
                auto_remove.push(rec.id.clone());
            }
        }
        self.remove_orphan_dirs(all);
        self.remove_stale_sandboxes(&running);
        auto_remove
    }

    /// Container directories without a record: a create or a removal cut short.
    fn remove_orphan_dirs(&self, all: &[Arc<Ctr>]) {
        let known: HashSet<&str> = all.iter().map(|c| c.id.as_str()).collect();
        let root = self.data_root.join("containers");
        let Ok(entries) = std::fs::read_dir(&root) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let dir = entry.path();
            if known.contains(name.as_str())
                || !entry.file_type().is_ok_and(|t| t.is_dir())
                || std::fs::symlink_metadata(dir.join(RECORD_FILE))
                    .map_or_else(|e| e.kind() != std::io::ErrorKind::NotFound, |_| true)
            {
                continue;
            }
            let dirs = self.dirs(&name);
            let shim = Shim::open(&dirs.state_dir);
            if shim.state_dir().exists() {
                let _ = shim.abandon();
            }
            let rootfs = dirs.rootfs();
            let _ = linux::mount::unmount(&rootfs);
            if linux::mount::is_mountpoint(&rootfs) {
                tracing::warn!(dir = %dir.display(), "leaving a container directory still mounted");
                continue;
            }
            match std::fs::remove_dir_all(&dir) {
                Ok(()) => {
                    tracing::info!(dir = %dir.display(), "removed a container directory without a record")
                }
                Err(e) => {
                    tracing::warn!(dir = %dir.display(), error = %e, "cannot remove a container directory without a record")
                }
            }
        }
    }

    /// Network namespace files of containers that do not run (a start or an exit cut short);
    /// the veths inside go with them.
    fn remove_stale_sandboxes(&self, keep: &HashSet<std::path::PathBuf>) {
        let Some(dir) = self
            .networks
            .sandbox_path("x")
            .parent()
            .map(Path::to_path_buf)
        else {
            return;
        };
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if keep.contains(&path) {
                continue;
            }
            match network::netns::remove(&path) {
                Ok(()) => {
                    tracing::info!(path = %path.display(), "removed a stale network namespace")
                }
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "cannot remove a stale network namespace")
                }
            }
        }
    }
}
