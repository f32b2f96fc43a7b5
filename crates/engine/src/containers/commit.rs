//! `docker diff` (the changes of a container's writable layer) and `docker commit` (an image
//! from it).
//!
//! The writable layer is the overlay upper directory `containers/<id>/diff`; its lowers are the
//! init layer and the image's snapshots, as at start. Both operations read it while the
//! container may be running; `commit` freezes the container meanwhile unless told not to, as
//! moby does, and holds the container's operation lock so it cannot be removed or restarted
//! half-way. The file system work is `storage`'s (walks confined with `linux::fs::Root`); the
//! image config and tagging are `images`'.

use std::path::PathBuf;
use std::sync::Arc;

use api_types::models::ContainerConfig;
use images::{CommitOptions, ImagesError, Reference};
use storage::changes::Change;

use super::{Containers, Ctr};
use crate::{EngineError, Result};

/// `POST /commit` as the engine takes it.
#[derive(Debug, Clone, Default)]
pub struct CommitRequest {
    /// Name or ID of the container.
    pub container: String,
    /// Repository, possibly fully qualified (`docker.io/library/bb`); empty: untagged.
    pub repo: String,
    /// Tag (`latest` when empty and `repo` is set).
    pub tag: String,
    pub comment: String,
    pub author: String,
    /// Dockerfile instructions to apply to the config.
    pub changes: Vec<String>,
    /// Freeze a running container while its layer is read.
    pub pause: bool,
    /// A config replacing the container's as the base of the image's.
    pub config: Option<ContainerConfig>,
}

/// What a commit made.
#[derive(Debug, Clone)]
pub struct CommitResult {
    /// `sha256:<hex>`.
    pub id: String,
    /// The tag set, in familiar form (`myimg:v1`), if any.
    pub reference: Option<String>,
}

/// moby's `RepoTagReference`: no repository, no reference; a digest is refused; the tag
/// defaults to `latest`.
fn commit_reference(repo: &str, tag: &str) -> Result<Option<Reference>> {
    if repo.is_empty() {
        return Ok(None);
    }
    let r = Reference::parse_normalized(repo)?;
    if r.digest().is_some() {
        return Err(EngineError::InvalidRequest(
            "cannot commit to digest reference".into(),
        ));
    }
    Ok(Some(if tag.is_empty() {
        r.with_default_tag()
    } else {
        r.with_tag(tag)?
    }))
}

/// The API config as the image store keeps it (same JSON names; unknown fields carried).
fn image_config(c: &ContainerConfig) -> Result<images::ContainerConfig> {
    serde_json::to_value(c)
        .and_then(serde_json::from_value)
        .map_err(|e| EngineError::InvalidRequest(format!("invalid config: {e}")))
}

impl Containers {
    /// The overlay upper directory of `ctr` and its lowers (topmost first).
    fn layer_dirs(&self, ctr: &Ctr) -> (PathBuf, Vec<PathBuf>) {
        let dirs = self.dirs(&ctr.id);
        let snapshots = self.data_root.join("snapshots");
        let mut lowers = vec![dirs.init()];
        lowers.extend(
            ctr.rec()
                .layers
                .iter()
                .rev()
                .map(|h| snapshots.join(h).join("fs")),
        );
        (dirs.upper(), lowers)
    }

    /// `GET /containers/{id}/changes`.
    pub(crate) async fn changes(&self, reference: &str) -> Result<Vec<Change>> {
        let ctr = self.get(reference)?;
        let (upper, lowers) = self.layer_dirs(&ctr);
        tokio::task::spawn_blocking(move || {
            storage::changes::changes(&upper, &lowers)
                .map_err(|e| EngineError::Images(ImagesError::Storage(e)))
        })
        .await
        .map_err(|_| EngineError::TaskFailed {
            what: "container changes",
        })?
    }

    /// `POST /commit`. `tagged` is told the reference set (to emit the image's `tag` event)
    /// before the container's `commit` event, while the container is still paused, as in moby.
    pub(crate) async fn commit(
        self: &Arc<Self>,
        req: CommitRequest,
        tagged: &(dyn Fn(&str) + Send + Sync),
    ) -> Result<CommitResult> {
        let ctr = self.get(&req.container)?;
        let reference = commit_reference(&req.repo, &req.tag)?;
        let base = req.config.as_ref().map(image_config).transpose()?;
        let _op = ctr.op.lock().await;
        let rec = ctr.snapshot();
        if rec.state.dead || rec.state.status == "dead" {
            return Err(EngineError::Conflict(format!(
                "You cannot commit container {} which is Dead",
                rec.id
            )));
        }
        if rec.state.status == "removing" {
            return Err(EngineError::Conflict(format!(
                "You cannot commit container {} which is being removed",
                rec.id
            )));
        }
        let parent = images::Digest::parse(&rec.image_id).map_err(|e| {
            EngineError::Images(ImagesError::InvalidConfig {
                id: rec.id.clone(),
                reason: format!("image ID: {e}"),
            })
        })?;
        let opts = CommitOptions {
            parent,
            upper: self.dirs(&rec.id).upper(),
            container_id: rec.id.clone(),
            container_config: image_config(&rec.config)?,
            config: base,
            changes: req.changes.clone(),
            comment: req.comment.clone(),
            author: req.author.clone(),
            reference: reference.clone(),
        };
        let freeze = req.pause && rec.state.running && !rec.state.paused;
        if freeze {
            self.freeze(&ctr).await?;
        }
        let images = Arc::clone(&self.images);
        let result = tokio::task::spawn_blocking(move || images.commit(&opts))
            .await
            .map_err(|_| EngineError::TaskFailed {
                what: "container commit",
            })
            .and_then(|r| r.map_err(EngineError::from));
        // moby's order: pause, tag, commit, then the deferred unpause.
        let done = result.map(|id| {
            let id = id.to_string();
            let familiar = reference.map(|r| r.familiar_string());
            if let Some(f) = &familiar {
                tagged(f);
            }
            self.event(
                &ctr,
                "commit",
                &[
                    ("comment", req.comment.as_str()),
                    ("imageID", id.as_str()),
                    ("imageRef", familiar.as_deref().unwrap_or_default()),
                ],
            );
            CommitResult {
                id,
                reference: familiar,
            }
        });
        if freeze {
            match self.thaw(&ctr).await {
                Ok(()) => self.event(&ctr, "unpause", &[]),
                Err(e) => tracing::warn!(id = %ctr.id, error = %e, "cannot unpause after commit"),
            }
        }
        done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_as_moby_builds_them() {
        assert!(commit_reference("", "v1").unwrap().is_none());
        let r = commit_reference("docker.io/library/bb", "")
            .unwrap()
            .unwrap();
        assert_eq!(r.familiar_string(), "bb:latest");
        let r = commit_reference("docker.io/library/bb", "v1")
            .unwrap()
            .unwrap();
        assert_eq!(r.familiar_string(), "bb:v1");
        let r = commit_reference("localhost:5000/x/y", "t")
            .unwrap()
            .unwrap();
        assert_eq!(r.familiar_string(), "localhost:5000/x/y:t");
        let digest = format!("bb@sha256:{}", "a".repeat(64));
        assert_eq!(
            commit_reference(&digest, "").unwrap_err().to_string(),
            "cannot commit to digest reference"
        );
        assert!(commit_reference("UPPER", "").is_err());
        assert!(commit_reference("bb", "bad tag").is_err());
    }

    #[test]
    fn api_config_converts() {
        let c = ContainerConfig {
            hostname: Some("abc".into()),
            cmd: Some(vec!["sh".into()]),
            env: Some(vec!["A=1".into()]),
            image: Some("busybox".into()),
            ..Default::default()
        };
        let i = image_config(&c).unwrap();
        assert_eq!(i.cmd, Some(vec!["sh".to_string()]));
        assert_eq!(i.env, Some(vec!["A=1".to_string()]));
        assert_eq!(i.extra["Hostname"], "abc");
        assert_eq!(i.extra["Image"], "busybox");
    }
}
