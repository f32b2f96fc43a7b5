//! `docker commit`: a new image from a parent image plus an overlay upper directory.
//!
//! The config follows moby's `CreateImageFromContainer` + `NewChildImage`: the committed
//! `config` is the request's config (the container's when none is given) with the `--change`
//! instructions applied (an `ENTRYPOINT` without an earlier `CMD` clears `Cmd`, as in a
//! Dockerfile), then completed from the container's config where unset; `container` and
//! `container_config` record the container; architecture, variant and OS version come from the
//! parent; `rootfs.diff_ids` and `history` are the parent's plus the new layer (left out of
//! `diff_ids`, and marked `empty_layer`, when nothing changed). The image's parent is recorded,
//! so `rmi` of the parent is refused while the child exists.
//!
//! It knows nothing of containers beyond what the caller hands in: a directory in overlay form
//! and two configs.

use std::collections::HashMap;
use std::path::PathBuf;

use chrono::{SecondsFormat, Utc};
use serde_json::{Map, Value};

use crate::service::ImageService;
use crate::{ContainerConfig, Digest, HistoryEntry, ImageConfig, ImagesError, Reference, Result};

/// What [`ImageService::commit`] needs.
#[derive(Debug, Clone)]
pub struct CommitOptions {
    /// The image the container was created from.
    pub parent: Digest,
    /// The container's writable layer (overlay upper directory).
    pub upper: PathBuf,
    /// The container's ID (the config's `container`).
    pub container_id: String,
    /// The container's effective config: `container_config`, and the defaults of the
    /// committed config.
    pub container_config: ContainerConfig,
    /// The config sent with the request, replacing the container's as the base.
    pub config: Option<ContainerConfig>,
    /// Dockerfile instructions (`CMD`, `ENTRYPOINT`, `ENV`, `EXPOSE`, `LABEL`, `USER`,
    /// `VOLUME`, `WORKDIR`, `ONBUILD`, `STOPSIGNAL`, `HEALTHCHECK`), one or more per entry.
    pub changes: Vec<String>,
    /// The commit message (the history entry's comment).
    pub comment: String,
    pub author: String,
    /// Tag the image with this (a tag is added when it has none).
    pub reference: Option<Reference>,
}

/// Applies the `--change` lines to `cfg` as moby's `BuildFromConfig` does.
pub(crate) fn apply_changes(cfg: &mut ContainerConfig, changes: &[String]) -> Result<()> {
    let mut cmd_set = false;
    for line in changes.iter().flat_map(|c| c.lines()) {
        let instr = line
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_uppercase();
        if instr == "SHELL" {
            return Err(ImagesError::InvalidChange(format!(
                "{instr} is not a valid change command"
            )));
        }
        crate::changes::apply_change(cfg, line)?;
        match instr.as_str() {
            "CMD" => cmd_set = true,
            "ENTRYPOINT" if !cmd_set => cfg.cmd = None,
            _ => {}
        }
    }
    Ok(())
}

fn empty(v: &Option<String>) -> bool {
    v.as_deref().is_none_or(str::is_empty)
}

fn env_key(e: &str) -> &str {
    e.split_once('=').map_or(e, |(k, _)| k)
}

/// moby's `merge(userConf, imageConf)` in `daemon/commit.go`: fills what `user` leaves unset
/// from `base` (the container's config).
pub(crate) fn merge(user: &mut ContainerConfig, base: &ContainerConfig) {
    if empty(&user.user) {
        user.user = base.user.clone();
    }
    match (&mut user.exposed_ports, &base.exposed_ports) {
        (Some(u), Some(b)) if !u.is_empty() => {
            for (k, v) in b {
                u.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
        (u, b) => {
            if u.as_ref().is_none_or(Map::is_empty) {
                *u = b.clone();
            }
        }
    }
    if user.env.as_ref().is_none_or(Vec::is_empty) {
        user.env = base.env.clone();
    } else if let Some(env) = &mut user.env {
        for e in base.env.iter().flatten() {
            if !env.iter().any(|u| env_key(u) == env_key(e)) {
                env.push(e.clone());
            }
        }
    }
    let labels = user.labels.get_or_insert_with(Default::default);
    for (k, v) in base.labels.iter().flatten() {
        labels.entry(k.clone()).or_insert_with(|| v.clone());
    }
    if user.entrypoint.as_ref().is_none_or(Vec::is_empty) {
        if user.cmd.as_ref().is_none_or(Vec::is_empty) {
            user.cmd = base.cmd.clone();
        }
        if user.entrypoint.is_none() {
            user.entrypoint = base.entrypoint.clone();
        }
    }
    if user.healthcheck.is_none() {
        user.healthcheck = base.healthcheck.clone();
    } else if let (Some(Value::Object(u)), Some(Value::Object(b))) =
        (&mut user.healthcheck, &base.healthcheck)
    {
        for (k, v) in b {
            let unset = match u.get(k) {
                None | Some(Value::Null) => true,
                Some(Value::Array(a)) => a.is_empty(),
                Some(Value::Number(n)) => n.as_i64() == Some(0),
                _ => false,
            };
            if unset {
                u.insert(k.clone(), v.clone());
            }
        }
    }
    if empty(&user.working_dir) {
        user.working_dir = base.working_dir.clone();
    }
    match (&mut user.volumes, &base.volumes) {
        (Some(u), Some(b)) if !u.is_empty() => {
            for (k, v) in b {
                u.insert(k.clone(), v.clone());
            }
        }
        (u, b) => {
            if u.as_ref().is_none_or(Map::is_empty) {
                *u = b.clone();
            }
        }
    }
    if empty(&user.stop_signal) {
        user.stop_signal = base.stop_signal.clone();
    }
}

/// The image config of the commit (everything but the new layer's diff ID is known up front).
pub(crate) fn child_config(
    parent: &ImageConfig,
    opts: &CommitOptions,
    config: ContainerConfig,
    diff_id: Option<&Digest>,
    created: &str,
) -> Result<ImageConfig> {
    let mut rootfs = parent.rootfs.clone();
    if let Some(d) = diff_id {
        rootfs.diff_ids.push(d.clone());
    }
    let non_empty = |s: &str| (!s.is_empty()).then(|| s.to_string());
    let created_by = opts
        .container_config
        .cmd
        .as_deref()
        .unwrap_or_default()
        .join(" ");
    let mut history = parent.history.clone();
    history.push(HistoryEntry {
        created: Some(created.to_string()),
        created_by: non_empty(&created_by),
        author: non_empty(&opts.author),
        comment: non_empty(&opts.comment),
        empty_layer: diff_id.is_none(),
    });
    let mut extra = Map::new();
    if let Some(f) = parent.extra.get("os.features") {
        extra.insert("os.features".into(), f.clone());
    }
    extra.insert("container".into(), Value::from(opts.container_id.clone()));
    let cc =
        serde_json::to_value(&opts.container_config).map_err(|e| ImagesError::InvalidConfig {
            id: "commit".into(),
            reason: e.to_string(),
        })?;
    extra.insert("container_config".into(), cc);
    Ok(ImageConfig {
        architecture: if parent.architecture.is_empty() {
            crate::import::host_arch().to_string()
        } else {
            parent.architecture.clone()
        },
        os: if parent.os.is_empty() {
            "linux".into()
        } else {
            parent.os.clone()
        },
        variant: parent.variant.clone(),
        os_version: parent.os_version.clone(),
        created: Some(created.to_string()),
        author: non_empty(&opts.author),
        comment: None,
        docker_version: None,
        config: Some(config),
        rootfs,
        history,
        extra,
    })
}

pub(crate) fn commit(svc: &ImageService, opts: &CommitOptions) -> Result<Digest> {
    // Everything cheap first: the changes, the parent.
    let mut config = opts
        .config
        .clone()
        .unwrap_or_else(|| opts.container_config.clone());
    apply_changes(&mut config, &opts.changes)?;
    merge(&mut config, &opts.container_config);
    let reference = opts.reference.clone().map(Reference::with_default_tag);

    let _gc = svc.gc_shared();
    let parent = {
        let st = svc.read();
        let img = st
            .images
            .get(&opts.parent)
            .ok_or_else(|| ImagesError::NotFound(opts.parent.to_string()))?;
        (img.config.clone(), img.chain_ids.last().cloned())
    };
    let (parent_config, parent_chain) = parent;
    let mut made = None;
    let (diff_id, snapshot) = match storage::upper_tar::commit_upper(
        &svc.content,
        &svc.snaps,
        &opts.upper,
        parent_chain.as_ref(),
        &mut made,
    ) {
        Ok(committed) => committed,
        Err(e) => {
            drop(_gc);
            crate::made::forget_unused(svc, &crate::made::Made::blob(made));
            return Err(e.into());
        }
    };
    let mut sizes = HashMap::new();
    if let Some(info) = &snapshot {
        sizes.insert(info.chain_id.clone(), info.size);
    }
    let created = Utc::now().to_rfc3339_opts(SecondsFormat::Nanos, true);
    let image = child_config(
        &parent_config,
        opts,
        config,
        snapshot.as_ref().map(|_| &diff_id),
        &created,
    )?;
    let bytes = serde_json::to_vec(&image).map_err(|e| ImagesError::InvalidConfig {
        id: "commit".into(),
        reason: e.to_string(),
    })?;
    let id = svc.content.write_blob(&bytes, None)?;
    let _ops = svc.lock_ops();
    let mut st = svc.write();
    if snapshot.is_none() && !st.diff_used(&diff_id, None) {
        // The empty layer's tar is not part of the image: do not keep it around.
        svc.content.delete(&diff_id)?;
    }
    svc.register(&mut st, &id, &image, &sizes)?;
    if let Some(img) = st.images.get_mut(&id)
        && img.meta.parent.as_ref() != Some(&opts.parent)
    {
        let mut meta = img.meta.clone();
        meta.parent = Some(opts.parent.clone());
        svc.disk.write_meta(&id, &meta)?;
        img.meta = meta;
    }
    if let Some(r) = reference {
        svc.set_tags(&mut st, &id, &[r])?;
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(v: Value) -> ContainerConfig {
        serde_json::from_value(v).unwrap()
    }

    fn strs(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_string()).collect()
    }

    #[test]
    fn changes_follow_dockerfile_rules() {
        let mut c = cfg(serde_json::json!({"Cmd": ["sh"], "Env": ["PATH=/bin"]}));
        apply_changes(
            &mut c,
            &strs(&[
                "ENV X=1",
                r#"CMD ["cat","/new/f"]"#,
                "LABEL a=b\nUSER nobody",
            ]),
        )
        .unwrap();
        assert_eq!(c.cmd, Some(strs(&["cat", "/new/f"])));
        assert_eq!(c.env, Some(strs(&["PATH=/bin", "X=1"])));
        assert_eq!(c.user.as_deref(), Some("nobody"));
        // ENTRYPOINT without an earlier CMD clears Cmd; after one it keeps it.
        let mut c = cfg(serde_json::json!({"Cmd": ["sh"]}));
        apply_changes(&mut c, &strs(&[r#"ENTRYPOINT ["top"]"#])).unwrap();
        assert_eq!(
            (c.entrypoint.clone(), c.cmd.clone()),
            (Some(strs(&["top"])), None)
        );
        let mut c = cfg(serde_json::json!({"Cmd": ["sh"]}));
        apply_changes(&mut c, &strs(&["CMD -b", r#"ENTRYPOINT ["top"]"#])).unwrap();
        assert_eq!(c.cmd, Some(strs(&["/bin/sh", "-c", "-b"])));
        for bad in ["RUN echo", "SHELL [\"sh\"]", "FROM x", "EXPOSE nope"] {
            assert!(
                apply_changes(&mut c, &strs(&[bad])).is_err(),
                "{bad} accepted"
            );
        }
        assert_eq!(
            apply_changes(&mut c, &strs(&["FOO x"]))
                .unwrap_err()
                .to_string(),
            "FOO is not a valid change command"
        );
    }

    #[test]
    fn merge_fills_what_is_unset() {
        let base = cfg(serde_json::json!({
            "User": "daemon",
            "Env": ["PATH=/bin", "A=1"],
            "Cmd": ["sh"],
            "Entrypoint": null,
            "ExposedPorts": {"80/tcp": {}},
            "Volumes": {"/data": {}},
            "WorkingDir": "/srv",
            "Labels": {"l": "base", "k": "base"},
            "StopSignal": "SIGQUIT",
            "Hostname": "abc",
        }));
        let mut user = cfg(serde_json::json!({
            "Env": ["A=2"],
            "ExposedPorts": {"90/udp": {}},
            "Labels": {"k": "user"},
        }));
        merge(&mut user, &base);
        assert_eq!(user.user.as_deref(), Some("daemon"));
        assert_eq!(user.env, Some(strs(&["A=2", "PATH=/bin"])));
        assert_eq!(user.cmd, Some(strs(&["sh"])));
        let ports: Vec<_> = user.exposed_ports.unwrap().keys().cloned().collect();
        assert_eq!(ports, strs(&["80/tcp", "90/udp"]));
        assert_eq!(user.working_dir.as_deref(), Some("/srv"));
        let labels = user.labels.unwrap();
        assert_eq!(
            (labels["l"].as_str(), labels["k"].as_str()),
            ("base", "user")
        );
        assert_eq!(user.stop_signal.as_deref(), Some("SIGQUIT"));
        assert!(user.volumes.unwrap().contains_key("/data"));
        // An entrypoint in the user's config keeps the base's cmd out.
        let mut user = cfg(serde_json::json!({"Entrypoint": ["top"]}));
        merge(&mut user, &base);
        assert_eq!(user.cmd, None);
    }

    #[test]
    fn child_config_appends_layer_and_history() {
        let parent: ImageConfig = serde_json::from_value(serde_json::json!({
            "architecture": "arm64",
            "variant": "v8",
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [Digest::of(b"a").to_string()]},
            "history": [{"created": "2024-01-01T00:00:00Z", "created_by": "ADD rootfs"}],
            "config": {"Cmd": ["sh"]},
        }))
        .unwrap();
        let opts = CommitOptions {
            container_id: "c1".into(),
            container_config: cfg(serde_json::json!({"Cmd": ["sh", "-c", "echo x"]})),
            comment: "msg".into(),
            author: "me".into(),
            parent: Digest::of(b"p"),
            upper: PathBuf::new(),
            config: None,
            changes: Vec::new(),
            reference: None,
        };
        let d = Digest::of(b"b");
        let c = child_config(
            &parent,
            &opts,
            cfg(serde_json::json!({"Cmd": ["cat"]})),
            Some(&d),
            "2025-01-01T00:00:00Z",
        )
        .unwrap();
        assert_eq!(
            (c.architecture.as_str(), c.variant.as_deref()),
            ("arm64", Some("v8"))
        );
        assert_eq!(c.rootfs.diff_ids, vec![Digest::of(b"a"), d]);
        assert_eq!(c.history.len(), 2);
        let h = &c.history[1];
        assert_eq!(h.created_by.as_deref(), Some("sh -c echo x"));
        assert_eq!(
            (h.comment.as_deref(), h.author.as_deref()),
            (Some("msg"), Some("me"))
        );
        assert!(!h.empty_layer);
        assert_eq!(c.author.as_deref(), Some("me"));
        assert_eq!(c.comment, None);
        assert_eq!(c.extra["container"], "c1");
        assert_eq!(c.extra["container_config"]["Cmd"][2], "echo x");
        // Nothing changed: no new diff ID, an empty-layer history entry.
        let c = child_config(
            &parent,
            &opts,
            ContainerConfig::default(),
            None,
            "2025-01-01T00:00:00Z",
        )
        .unwrap();
        assert_eq!(c.rootfs.diff_ids.len(), 1);
        assert!(c.history[1].empty_layer);
    }
}
