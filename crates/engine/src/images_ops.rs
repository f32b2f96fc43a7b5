//! Image operations: the image service's answers turned into API models, off the async threads.

use std::collections::HashMap;

use api_types::models::{
    DriverData, ImageConfig as ApiImageConfig, ImageDeleteResponseItem, ImageHistoryResponseItem,
    ImageInspect, ImageInspectMetadata, ImageInspectRootFs, ImagePruneResponse, ImageSummary,
};
use images::{
    ContainerConfig, DeleteItem, ImageRecord, ImportOptions, ListFilter, LoadEvent, PruneFilter,
    Reference,
};
use serde::Serialize;
use tokio::io::AsyncRead;
use tokio::sync::mpsc;
use tokio_util::io::SyncIoBridge;

use crate::progress::ChannelWriter;
use crate::{
    ByteStream, Engine, EngineError, Filters, GO_ZERO_TIME, ProgressEvent, ProgressStream, Result,
    rfc3339_nano,
};

/// Filter keys `GET /images/json` accepts.
const LIST_FILTERS: &[&str] = &["dangling", "label", "before", "since", "reference", "until"];
/// Filter keys `POST /images/prune` accepts.
const PRUNE_FILTERS: &[&str] = &["dangling", "until", "label", "label!"];

/// Image inspect as Docker 1.47 sends it: the model plus the fields bollard's newer model lacks.
#[derive(Debug, Clone, Serialize)]
pub struct ImageInspectDetails {
    #[serde(flatten)]
    pub inspect: ImageInspect,
    #[serde(rename = "Parent")]
    pub parent: String,
    #[serde(rename = "DockerVersion")]
    pub docker_version: String,
}

/// What `docker system df` shows about images.
#[derive(Debug, Clone)]
pub struct DiskUsage {
    /// Bytes of all unpacked layers, each counted once.
    pub layers_size: i64,
    /// Every image, with `SharedSize` computed and `Containers` counted.
    pub images: Vec<ImageSummary>,
}

/// The parameters of `POST /images/create?fromSrc=-` (import).
#[derive(Debug, Clone, Default)]
pub struct ImportRequest {
    /// `repo`, which may carry the tag (`bb:latest`).
    pub repo: String,
    /// `tag`.
    pub tag: String,
    /// `changes` (Dockerfile-like instructions).
    pub changes: Vec<String>,
    /// `message` (history comment).
    pub message: String,
    /// `platform` (`os/arch[/variant]`).
    pub platform: String,
}

impl Engine {
    /// `GET /images/json`.
    pub async fn images_list(
        &self,
        all: bool,
        filters: &Filters,
        shared_size: bool,
        _digests: bool,
    ) -> Result<Vec<ImageSummary>> {
        filters.validate(LIST_FILTERS)?;
        let filter = ListFilter {
            all,
            dangling: filters.bool_value("dangling")?,
            labels: filters.get("label"),
            references: filters.get("reference"),
            before: filters.single("before")?,
            since: filters.single("since")?,
            until: filters.single("until")?,
        };
        self.blocking("image list", move |svc| {
            let records = svc.list(&filter)?;
            let shared = if shared_size {
                Some(svc.shared_sizes())
            } else {
                None
            };
            Ok(records
                .iter()
                .map(|r| {
                    let shared = shared
                        .as_ref()
                        .map_or(-1, |m| m.get(&r.id).copied().map_or(0, to_i64));
                    summary(r, shared)
                })
                .collect())
        })
        .await
    }

    /// `GET /system/df` (the image half; no containers, volumes or build cache exist yet).
    pub async fn disk_usage(&self) -> Result<DiskUsage> {
        self.blocking("disk usage", |svc| {
            let records = svc.list(&ListFilter {
                all: true,
                ..Default::default()
            })?;
            let shared = svc.shared_sizes();
            let images = records
                .iter()
                .map(|r| {
                    let mut s = summary(r, shared.get(&r.id).copied().map_or(0, to_i64));
                    s.containers = 0;
                    s
                })
                .collect();
            Ok(DiskUsage {
                layers_size: to_i64(svc.layers_size()),
                images,
            })
        })
        .await
    }

    /// `GET /images/{name}/json`.
    pub async fn image_inspect(&self, name: &str) -> Result<ImageInspectDetails> {
        validate_name(name)?;
        let name = name.to_string();
        let snapshots = self.data_root().join("snapshots");
        self.blocking("image inspect", move |svc| {
            let r = svc.get(&name)?;
            Ok(inspect(&r, &snapshots))
        })
        .await
    }

    /// `GET /images/{name}/history`.
    pub async fn image_history(&self, name: &str) -> Result<Vec<ImageHistoryResponseItem>> {
        validate_name(name)?;
        let name = name.to_string();
        self.blocking("image history", move |svc| {
            Ok(svc
                .history(&name)?
                .into_iter()
                .map(|h| ImageHistoryResponseItem {
                    id: h
                        .id
                        .map_or_else(|| "<missing>".to_string(), |d| d.to_string()),
                    created: h.created,
                    created_by: h.created_by,
                    tags: h.tags,
                    size: to_i64(h.size),
                    comment: h.comment,
                })
                .collect())
        })
        .await
    }

    /// `POST /images/{name}/tag?repo=&tag=`.
    pub async fn image_tag(&self, name: &str, repo: &str, tag: &str) -> Result<()> {
        if repo.is_empty() {
            return Err(EngineError::InvalidReference {
                reason: "repository name is empty".into(),
            });
        }
        validate_name(name)?;
        let target = target_reference(repo, tag)?;
        let name = name.to_string();
        let familiar = target.familiar_string();
        self.blocking("image tag", move |svc| Ok(svc.tag(&name, &target)?))
            .await?;
        self.image_event(&familiar, "tag", Some(&familiar));
        Ok(())
    }

    /// `DELETE /images/{name}?force=&noprune=`.
    pub async fn image_delete(
        &self,
        name: &str,
        force: bool,
        noprune: bool,
    ) -> Result<Vec<ImageDeleteResponseItem>> {
        validate_name(name)?;
        let name = name.to_string();
        let ctrs = std::sync::Arc::clone(&self.containers);
        let ev = std::sync::Arc::clone(&self.events);
        self.blocking("image delete", move |svc| {
            let named = svc.get(&name).ok();
            let items = svc.delete(&name, force, noprune, &|d| ctrs.image_user(&d.to_string()))?;
            crate::events::delete_events(&ev, named.as_ref(), &items);
            Ok(items.into_iter().map(delete_item).collect())
        })
        .await
    }

    /// `POST /images/prune?filters=`.
    pub async fn images_prune(&self, filters: &Filters) -> Result<ImagePruneResponse> {
        filters.validate(PRUNE_FILTERS)?;
        let filter = PruneFilter {
            all: filters.bool_value("dangling")? == Some(false),
            until: filters.single("until")?,
            labels: filters.get("label"),
            labels_not: filters.get("label!"),
        };
        let ctrs = std::sync::Arc::clone(&self.containers);
        let ev = std::sync::Arc::clone(&self.events);
        self.blocking("image prune", move |svc| {
            let report = svc.prune(&filter, &|d| ctrs.image_user(&d.to_string()))?;
            crate::events::prune_events(&ev, &report);
            Ok(ImagePruneResponse {
                images_deleted: Some(report.deleted.into_iter().map(delete_item).collect()),
                space_reclaimed: Some(to_i64(report.space_reclaimed)),
            })
        })
        .await
    }

    /// `POST /images/load`: reads the archive from `body` and reports progress (only the
    /// `Loaded image…` lines when `quiet`).
    pub fn images_load<R>(&self, body: R, quiet: bool) -> ProgressStream
    where
        R: AsyncRead + Send + Unpin + 'static,
    {
        let (tx, rx) = mpsc::channel(64);
        let mut reader = SyncIoBridge::new(body);
        let images = std::sync::Arc::clone(&self.images);
        let task_tx = tx.clone();
        let bus = std::sync::Arc::clone(&self.events);
        let task = tokio::task::spawn_blocking(move || {
            let mut loaded = crate::events::LoadEvents::default();
            let mut events = |ev: LoadEvent| {
                loaded.on_load_event(&bus, &images, &ev);
                let msg = match ev {
                    LoadEvent::Progress {
                        id,
                        status,
                        current,
                        total,
                    } => {
                        if quiet {
                            return;
                        }
                        ProgressEvent::Progress {
                            id,
                            status,
                            current,
                            total,
                        }
                    }
                    LoadEvent::LoadedTag(tag) => {
                        ProgressEvent::Stream(format!("Loaded image: {tag}\n"))
                    }
                    LoadEvent::LoadedId(id) => {
                        ProgressEvent::Stream(format!("Loaded image ID: {id}\n"))
                    }
                };
                // A closed receiver means the client left; the load still completes.
                let _ = task_tx.blocking_send(Ok(msg));
            };
            if let Err(e) = images.load(&mut reader, &mut events) {
                drain_upload(&mut reader);
                let _ = task_tx.blocking_send(Err(e.into()));
            }
        });
        watch_task(task, tx, "image load");
        rx
    }

    /// `POST /images/create?fromSrc=-`: imports a root filesystem tar from `body`. The stream
    /// ends with `Status { status: "sha256:…" }`. Reference errors are returned before reading.
    pub fn images_import<R>(&self, body: R, req: ImportRequest) -> Result<ProgressStream>
    where
        R: AsyncRead + Send + Unpin + 'static,
    {
        let reference = if req.repo.is_empty() {
            None
        } else {
            Some(target_reference(&req.repo, &req.tag)?)
        };
        let opts = ImportOptions {
            changes: req.changes,
            message: (!req.message.is_empty()).then_some(req.message),
            reference,
            platform: (!req.platform.is_empty()).then_some(req.platform),
        };
        let (tx, rx) = mpsc::channel(8);
        let mut reader = SyncIoBridge::new(body);
        let images = std::sync::Arc::clone(&self.images);
        let task_tx = tx.clone();
        let bus = std::sync::Arc::clone(&self.events);
        let task = tokio::task::spawn_blocking(move || {
            let msg = images
                .import(&mut reader, &opts)
                .inspect(|id| crate::events::import_events(&bus, &images, id, &opts))
                .map(|id| ProgressEvent::Status {
                    id: None,
                    status: id.to_string(),
                })
                .map_err(EngineError::from);
            if msg.is_err() {
                drain_upload(&mut reader);
            }
            let _ = task_tx.blocking_send(msg);
        });
        watch_task(task, tx, "image import");
        Ok(rx)
    }

    /// `GET /images/get?names=…`: resolves every name first (unknown names fail here, before
    /// any byte is sent), then writes the archive in the background.
    pub async fn images_save(&self, names: Vec<String>) -> Result<ByteStream> {
        let plan = self
            .blocking("image save", move |svc| Ok(svc.save_plan(&names)?))
            .await?;
        let (tx, rx) = mpsc::channel(4);
        let images = std::sync::Arc::clone(&self.images);
        let task_tx = tx.clone();
        let bus = std::sync::Arc::clone(&self.events);
        let task = tokio::task::spawn_blocking(move || {
            let mut out = ChannelWriter::new(task_tx);
            let result = images.save(&plan, &mut out);
            match result {
                Ok(()) => {
                    drop(out);
                    crate::events::save_events(&bus, &plan);
                }
                Err(e) => {
                    tracing::debug!(error = %e, "image save stopped");
                    out.fail(e.into());
                }
            }
        });
        watch_task(task, tx, "image save");
        Ok(rx)
    }
}

/// Reads the rest of an upload (a failed load or import, a build context) and throws it away,
/// so the answer goes to a client that has finished writing: one still writing when the
/// connection closes gets `EPIPE` ("broken pipe") and never shows the cause, e.g. a full disk.
/// The client sends no more than a successful upload would have taken; a read error (the
/// client left) ends it. (The daemon's `drain.rs` does the same, bounded, for every other
/// body.)
pub(crate) fn drain_upload(reader: &mut impl std::io::Read) {
    let _ = std::io::copy(reader, &mut std::io::sink());
}

/// Reports a panicked blocking task as the stream's failure instead of a silent end.
fn watch_task<T: Send + 'static>(
    task: tokio::task::JoinHandle<()>,
    tx: mpsc::Sender<Result<T>>,
    what: &'static str,
) {
    tokio::spawn(async move {
        if task.await.is_err() {
            tracing::error!("{what} task panicked");
            let _ = tx.send(Err(EngineError::TaskFailed { what })).await;
        }
    });
}

/// Refuses names Docker would refuse (`UPPER`) with "invalid reference format" before looking
/// anything up, as moby's `GetImage` does; IDs (`sha256:…`, 64 hex) are left to the lookup.
fn validate_name(name: &str) -> Result<()> {
    let is_full_id = name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit());
    if name.starts_with("sha256:") || is_full_id {
        return Ok(());
    }
    Reference::parse_normalized(name)?;
    Ok(())
}

/// `repo` (possibly with a tag) plus `tag`, as moby's tag and import handlers combine them.
fn target_reference(repo: &str, tag: &str) -> Result<Reference> {
    let r = Reference::parse_normalized(repo)?;
    if tag.is_empty() {
        Ok(r.with_default_tag())
    } else {
        Ok(r.with_tag(tag)?)
    }
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn delete_item(item: DeleteItem) -> ImageDeleteResponseItem {
    match item {
        DeleteItem::Untagged(r) => ImageDeleteResponseItem {
            untagged: Some(r),
            deleted: None,
        },
        DeleteItem::Deleted(d) => ImageDeleteResponseItem {
            untagged: None,
            deleted: Some(d.to_string()),
        },
    }
}

fn labels(r: &ImageRecord) -> HashMap<String, String> {
    r.config
        .config
        .as_ref()
        .and_then(|c| c.labels.as_ref())
        .map(|l| l.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default()
}

fn summary(r: &ImageRecord, shared_size: i64) -> ImageSummary {
    ImageSummary {
        id: r.id.to_string(),
        parent_id: r
            .parent
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
        repo_tags: r.repo_tags.iter().map(Reference::familiar_string).collect(),
        repo_digests: r
            .repo_digests
            .iter()
            .map(Reference::familiar_string)
            .collect(),
        created: r.created.map_or(0, |t| t.timestamp()),
        size: to_i64(r.size),
        shared_size,
        labels: labels(r),
        containers: -1,
        ..Default::default()
    }
}

fn api_config(c: &ContainerConfig) -> ApiImageConfig {
    let keys = |m: &Option<serde_json::Map<String, serde_json::Value>>| {
        m.as_ref().map(|m| m.keys().cloned().collect::<Vec<_>>())
    };
    ApiImageConfig {
        user: c.user.clone(),
        exposed_ports: keys(&c.exposed_ports),
        env: c.env.clone(),
        cmd: c.cmd.clone(),
        healthcheck: c
            .healthcheck
            .clone()
            .and_then(|h| serde_json::from_value(h).ok()),
        args_escaped: c.args_escaped,
        volumes: keys(&c.volumes),
        working_dir: c.working_dir.clone(),
        entrypoint: c.entrypoint.clone(),
        on_build: c.on_build.clone(),
        labels: c
            .labels
            .as_ref()
            .map(|l| l.iter().map(|(k, v)| (k.clone(), v.clone())).collect()),
        stop_signal: c.stop_signal.clone(),
        shell: c.shell.clone(),
    }
}

fn inspect(r: &ImageRecord, snapshots: &std::path::Path) -> ImageInspectDetails {
    let cfg = &r.config;
    let lower: Vec<String> = r
        .chain_ids
        .iter()
        .rev()
        .map(|c| snapshots.join(c.hex()).join("fs").display().to_string())
        .collect();
    let mut data = HashMap::new();
    if !lower.is_empty() {
        data.insert("LowerDir".to_string(), lower.join(":"));
    }
    let inspect = ImageInspect {
        id: Some(r.id.to_string()),
        repo_tags: Some(r.repo_tags.iter().map(Reference::familiar_string).collect()),
        repo_digests: Some(
            r.repo_digests
                .iter()
                .map(Reference::familiar_string)
                .collect(),
        ),
        // moby: the config's comment, else the last history entry's (a commit message).
        comment: Some(
            cfg.comment
                .clone()
                .filter(|c| !c.is_empty())
                .or_else(|| cfg.history.last().and_then(|h| h.comment.clone()))
                .unwrap_or_default(),
        ),
        created: Some(
            r.created
                .map_or_else(|| GO_ZERO_TIME.to_string(), |t| rfc3339_nano(&t)),
        ),
        author: Some(cfg.author.clone().unwrap_or_default()),
        config: Some(cfg.config.as_ref().map(api_config).unwrap_or_default()),
        architecture: Some(cfg.architecture.clone()),
        variant: cfg.variant.clone(),
        os: Some(cfg.os.clone()),
        os_version: cfg.os_version.clone(),
        size: Some(to_i64(r.size)),
        graph_driver: Some(DriverData {
            name: "overlay2".to_string(),
            data,
        }),
        root_fs: Some(ImageInspectRootFs {
            typ: cfg.rootfs.kind.clone(),
            layers: Some(
                cfg.rootfs
                    .diff_ids
                    .iter()
                    .map(ToString::to_string)
                    .collect(),
            ),
        }),
        metadata: Some(ImageInspectMetadata {
            last_tag_time: Some(
                r.last_tag_time
                    .map_or_else(|| GO_ZERO_TIME.to_string(), |t| rfc3339_nano(&t)),
            ),
        }),
        ..Default::default()
    };
    ImageInspectDetails {
        inspect,
        parent: r
            .parent
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
        docker_version: cfg.docker_version.clone().unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> ImageRecord {
        let config: images::ImageConfig = serde_json::from_value(serde_json::json!({
            "architecture": "amd64",
            "os": "linux",
            "created": "2024-01-02T03:04:05.5Z",
            "config": {"Cmd": ["sh"], "Labels": {"a": "b"}, "ExposedPorts": {"80/tcp": {}}},
            "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{}", "1".repeat(64))]}
        }))
        .unwrap();
        ImageRecord {
            id: storage::Digest::from_hex(&"a".repeat(64)).unwrap(),
            config,
            repo_tags: vec![],
            repo_digests: vec![],
            parent: None,
            size: 42,
            created: Some("2024-01-02T03:04:05.5Z".parse().unwrap()),
            last_tag_time: None,
            chain_ids: vec![
                storage::Digest::from_hex(&"1".repeat(64)).unwrap(),
                storage::Digest::from_hex(&"2".repeat(64)).unwrap(),
            ],
        }
    }

    #[test]
    fn summary_has_every_field_docker_reads() {
        let v = serde_json::to_value(summary(&record(), -1)).unwrap();
        assert_eq!(v["Id"], format!("sha256:{}", "a".repeat(64)));
        assert_eq!(v["ParentId"], "");
        assert_eq!(v["RepoTags"], serde_json::json!([]));
        assert_eq!(v["RepoDigests"], serde_json::json!([]));
        assert_eq!(v["Created"], 1_704_164_645);
        assert_eq!(v["Size"], 42);
        assert_eq!(v["SharedSize"], -1);
        assert_eq!(v["Containers"], -1);
        assert_eq!(v["Labels"], serde_json::json!({"a": "b"}));
    }

    #[test]
    fn inspect_shape() {
        let d = inspect(&record(), std::path::Path::new("/r/snapshots"));
        let v = serde_json::to_value(&d).unwrap();
        assert_eq!(v["Parent"], "");
        assert_eq!(v["DockerVersion"], "");
        assert_eq!(v["Created"], "2024-01-02T03:04:05.5Z");
        assert_eq!(v["Metadata"]["LastTagTime"], GO_ZERO_TIME);
        assert_eq!(v["RootFS"]["Type"], "layers");
        assert_eq!(v["Config"]["Cmd"], serde_json::json!(["sh"]));
        assert_eq!(
            v["Config"]["ExposedPorts"],
            serde_json::json!({"80/tcp": {}})
        );
        assert_eq!(v["GraphDriver"]["Name"], "overlay2");
        let lower = v["GraphDriver"]["Data"]["LowerDir"].as_str().unwrap();
        assert_eq!(
            lower,
            format!(
                "/r/snapshots/{}/fs:/r/snapshots/{}/fs",
                "2".repeat(64),
                "1".repeat(64)
            )
        );
        assert!(v["GraphDriver"]["Data"].get("UpperDir").is_none());
        assert!(v.get("Variant").is_none());
    }
}
