//! A build step's image (`docker build`, legacy builder): a parent image (or `scratch`) plus,
//! optionally, an overlay upper directory as a new layer, with a config and a history line the
//! builder chose.
//!
//! Unlike `docker commit` ([`crate::commit`]) nothing is merged: the builder hands the whole
//! `config`. No `container`/`container_config` is recorded (moby dropped them from the API in
//! v1.45), so the config depends only on the build's inputs; with a fixed `created` time and
//! clamped mtimes (`SOURCE_DATE_EPOCH`) two builds of one context give one image ID. The image
//! records its parent, so intermediate images form the chain `docker images -a` shows.
//!
//! It knows nothing of containers or Dockerfiles: it is handed a directory and a config.

use std::collections::HashMap;
use std::path::PathBuf;

use chrono::{SecondsFormat, Utc};
use serde_json::Map;

use crate::service::ImageService;
use crate::{ContainerConfig, Digest, HistoryEntry, ImageConfig, ImagesError, Result, RootFs};

/// What [`ImageService::build_commit`] needs.
#[derive(Debug, Clone, Default)]
pub struct BuildCommit {
    /// The parent image (`None`: `scratch`).
    pub parent: Option<Digest>,
    /// The layer's overlay upper directory; `None` for a config-only step (an `empty_layer`
    /// history entry). An upper directory in which nothing changed is an empty layer too.
    pub upper: Option<PathBuf>,
    /// The image's whole `config`.
    pub config: ContainerConfig,
    /// The history line (`/bin/sh -c #(nop)  CMD ["sh"]`).
    pub created_by: String,
    pub author: Option<String>,
    /// RFC 3339 creation time (`SOURCE_DATE_EPOCH`); now when `None`.
    pub created: Option<String>,
    /// Mtimes later than this (seconds since the epoch) are written as it in the layer tar.
    pub clamp_mtime: Option<u64>,
}

pub(crate) fn build_commit(svc: &ImageService, req: &BuildCommit) -> Result<Digest> {
    let _gc = svc.gc_shared();
    let parent = match &req.parent {
        None => None,
        Some(p) => {
            let st = svc.read();
            let img = st
                .images
                .get(p)
                .ok_or_else(|| ImagesError::NotFound(p.to_string()))?;
            Some((img.config.clone(), img.chain_ids.last().cloned()))
        }
    };
    let (parent_config, parent_chain) = match parent {
        Some((c, chain)) => (Some(c), chain),
        None => (None, None),
    };
    let mut sizes = HashMap::new();
    let mut layer = None;
    if let Some(upper) = &req.upper {
        let mut made = None;
        let committed = storage::upper_tar::commit_upper_clamped(
            &svc.content,
            &svc.snaps,
            upper,
            parent_chain.as_ref(),
            req.clamp_mtime,
            &mut made,
        );
        let (diff_id, snapshot) = match committed {
            Ok(committed) => committed,
            Err(e) => {
                drop(_gc);
                crate::made::forget_unused(svc, &crate::made::Made::blob(made));
                return Err(e.into());
            }
        };
        match snapshot {
            Some(info) => {
                sizes.insert(info.chain_id.clone(), info.size);
                layer = Some(diff_id);
            }
            None => {
                let st = svc.read();
                if !st.diff_used(&diff_id, None) {
                    svc.content.delete(&diff_id)?;
                }
            }
        }
    }
    let created = req
        .created
        .clone()
        .unwrap_or_else(|| Utc::now().to_rfc3339_opts(SecondsFormat::Nanos, true));
    let image = child(parent_config.as_ref(), req, layer.as_ref(), &created);
    let bytes = serde_json::to_vec(&image).map_err(|e| ImagesError::InvalidConfig {
        id: "build".into(),
        reason: e.to_string(),
    })?;
    let id = svc.content.write_blob(&bytes, None)?;
    let _ops = svc.lock_ops();
    let mut st = svc.write();
    svc.register(&mut st, &id, &image, &sizes)?;
    if let Some(img) = st.images.get_mut(&id)
        && img.meta.parent != req.parent
        && req.parent.is_some()
    {
        let mut meta = img.meta.clone();
        meta.parent = req.parent.clone();
        svc.disk.write_meta(&id, &meta)?;
        img.meta = meta;
    }
    Ok(id)
}

/// The new image's config: the parent's platform, rootfs and history, plus this step.
fn child(
    parent: Option<&ImageConfig>,
    req: &BuildCommit,
    layer: Option<&Digest>,
    created: &str,
) -> ImageConfig {
    let mut rootfs = parent.map(|p| p.rootfs.clone()).unwrap_or_else(|| RootFs {
        kind: "layers".into(),
        diff_ids: Vec::new(),
    });
    if let Some(d) = layer {
        rootfs.diff_ids.push(d.clone());
    }
    let mut history = parent.map(|p| p.history.clone()).unwrap_or_default();
    history.push(HistoryEntry {
        created: Some(created.to_string()),
        created_by: Some(req.created_by.clone()),
        author: req.author.clone().filter(|a| !a.is_empty()),
        comment: None,
        empty_layer: layer.is_none(),
    });
    let mut extra = Map::new();
    if let Some(f) = parent.and_then(|p| p.extra.get("os.features")) {
        extra.insert("os.features".into(), f.clone());
    }
    let pick = |f: fn(&ImageConfig) -> &String, default: &str| {
        parent
            .map(f)
            .filter(|s| !s.is_empty())
            .cloned()
            .unwrap_or_else(|| default.to_string())
    };
    ImageConfig {
        architecture: pick(|p| &p.architecture, crate::import::host_arch()),
        os: pick(|p| &p.os, "linux"),
        variant: parent.and_then(|p| p.variant.clone()),
        os_version: parent.and_then(|p| p.os_version.clone()),
        created: Some(created.to_string()),
        author: req.author.clone().filter(|a| !a.is_empty()),
        comment: None,
        docker_version: None,
        config: Some(req.config.clone()),
        rootfs,
        history,
        extra,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scratch_child_and_history() {
        let req = BuildCommit {
            created_by: "/bin/sh -c #(nop)  CMD [\"sh\"]".into(),
            author: Some("me".into()),
            ..Default::default()
        };
        let c = child(None, &req, None, "2020-01-01T00:00:00Z");
        assert_eq!(c.os, "linux");
        assert!(c.rootfs.diff_ids.is_empty());
        assert_eq!(c.history.len(), 1);
        assert!(c.history[0].empty_layer);
        assert_eq!(c.author.as_deref(), Some("me"));
        let d = Digest::of(b"layer");
        let c2 = child(Some(&c), &req, Some(&d), "2020-01-01T00:00:01Z");
        assert_eq!(c2.rootfs.diff_ids, vec![d]);
        assert_eq!(c2.history.len(), 2);
        assert!(!c2.history[1].empty_layer);
        // Deterministic: the same inputs give the same bytes.
        let again = child(
            Some(&c),
            &req,
            Some(&Digest::of(b"layer")),
            "2020-01-01T00:00:01Z",
        );
        assert_eq!(
            serde_json::to_vec(&c2).unwrap(),
            serde_json::to_vec(&again).unwrap()
        );
    }
}
