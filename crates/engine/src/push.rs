//! `docker push` (`POST /images/{name}/push?tag=`): finds the local image(s), hands config and
//! diff IDs to the registry client, and words the progress as Docker does (`The push refers
//! to repository [...]`, `Preparing`, `Waiting`, `Pushing`, `Pushed`, `Layer already exists`,
//! `Mounted from …`, `<tag>: digest: … size: …` and the `aux` result).
//!
//! Knows nothing of HTTP (the daemon decodes `X-Registry-Auth`).

use std::sync::Arc;

use images::{ListFilter, Reference};
use registry::client::{Client, Credentials, PushEvent};
use tokio::sync::mpsc;

use crate::{Engine, EngineError, ProgressEvent, ProgressStream, Result};

/// Largest image config read for a push (as the image store's own bound).
const MAX_CONFIG: u64 = 8 << 20;

/// The parameters of `POST /images/{name}/push`.
#[derive(Debug, Clone, Default)]
pub struct PushRequest {
    /// The repository (`localhost:5000/test`), possibly with a tag.
    pub name: String,
    /// `tag`; empty pushes every local tag of the repository (`docker push -a`).
    pub tag: String,
    /// Decoded `X-Registry-Auth`.
    pub credentials: Option<Credentials>,
}

/// The Docker progress line for one push event.
fn progress(ev: PushEvent) -> ProgressEvent {
    let status = |id: String, s: &str| ProgressEvent::Status {
        id: Some(id),
        status: s.to_string(),
    };
    match ev {
        PushEvent::Preparing { id } => status(id, "Preparing"),
        PushEvent::Waiting { id } => status(id, "Waiting"),
        PushEvent::Pushing { id, current, total } => ProgressEvent::Progress {
            id,
            status: "Pushing".into(),
            current,
            total,
        },
        PushEvent::Pushed { id } => status(id, "Pushed"),
        PushEvent::Exists { id } => status(id, "Layer already exists"),
        PushEvent::Mounted { id, from } => status(id, &format!("Mounted from {from}")),
    }
}

/// The tags to push: `name:tag`, or with no tag every local tag of the repository.
fn push_targets(images: &images::ImageService, name: &str, tag: &str) -> Result<Vec<Reference>> {
    let r = Reference::parse_normalized(name)?;
    let missing = || EngineError::NoSuchImageTag(r.familiar_name());
    if !tag.is_empty() {
        let t = r.clone().with_tag(tag)?;
        images.get(&t.to_string()).map_err(|_| missing())?;
        return Ok(vec![t]);
    }
    if r.tag().is_some() {
        images.get(&r.to_string()).map_err(|_| missing())?;
        return Ok(vec![r]);
    }
    let mut tags: Vec<Reference> = images
        .list(&ListFilter::default())?
        .into_iter()
        .flat_map(|rec| rec.repo_tags)
        .filter(|t| t.name() == r.name())
        .collect();
    tags.sort_by_key(ToString::to_string);
    if tags.is_empty() {
        return Err(missing());
    }
    Ok(tags)
}

impl Engine {
    /// `POST /images/{name}/push`. Only a malformed name fails before the stream; as moby
    /// does, a name with no local image and registry failures arrive in-band, after the
    /// `The push refers to repository` line.
    pub fn images_push(&self, req: PushRequest) -> Result<ProgressStream> {
        let repo = Reference::parse_normalized(&req.name)?;
        let client = self.registries.client()?;
        let (tx, rx) = mpsc::channel(64);
        let images = Arc::clone(&self.images);
        let bus = Arc::clone(&self.events);
        tokio::spawn(async move {
            let _ = tx
                .send(Ok(ProgressEvent::Status {
                    id: None,
                    status: format!("The push refers to repository [{}]", repo.name()),
                }))
                .await;
            let targets = match push_targets(&images, &req.name, &req.tag) {
                Ok(t) => t,
                Err(e) => {
                    let _ = tx.send(Err(e)).await;
                    return;
                }
            };
            for target in &targets {
                let send = |ev: PushEvent| {
                    // A full channel or a gone client must not stall or fail the push.
                    let _ = tx.try_send(Ok(progress(ev)));
                };
                match push_one(&client, &images, target, req.credentials.clone(), &send).await {
                    Ok(lines) => {
                        for l in lines {
                            let _ = tx.send(Ok(l)).await;
                        }
                        let mut attrs = std::collections::HashMap::new();
                        attrs.insert("name".into(), target.familiar_name());
                        bus.emit(
                            crate::events::EventType::IMAGE,
                            "push",
                            target.familiar_string(),
                            attrs,
                        );
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e)).await;
                        return;
                    }
                }
            }
        });
        Ok(rx)
    }
}

/// Pushes one tag; returns the closing lines (digest line and aux result).
async fn push_one(
    client: &Client,
    images: &Arc<images::ImageService>,
    target: &Reference,
    credentials: Option<Credentials>,
    send: &(dyn Fn(PushEvent) + Sync),
) -> Result<Vec<ProgressEvent>> {
    let rec = images.get(&target.to_string())?;
    let config = images
        .content()
        .read_blob(&rec.id, MAX_CONFIG)
        .map_err(registry::RegistryError::from)?;
    let tag = target.tag().unwrap_or("latest").to_string();
    let req = registry::client::PushRequest {
        domain: target.domain().to_string(),
        repository: target.path().to_string(),
        tag: tag.clone(),
        credentials,
        config,
        diff_ids: rec.config.rootfs.diff_ids.clone(),
    };
    let config = req.config.clone();
    let pushed = client.push(images.content(), &req, send).await?;
    // As moby: the image now has a repository digest (`name@sha256:…`).
    if let Ok(repo_digest) =
        Reference::parse_normalized(&format!("{}@{}", target.name(), pushed.manifest_digest))
    {
        let svc = Arc::clone(images);
        let recorded = tokio::task::spawn_blocking(move || {
            svc.create_from_content(&config, None, Some(&repo_digest))
        })
        .await;
        if !matches!(recorded, Ok(Ok(_))) {
            tracing::warn!(image = %target, "could not record the pushed repository digest");
        }
    }
    Ok(vec![
        ProgressEvent::Status {
            id: None,
            status: format!(
                "{tag}: digest: {} size: {}",
                pushed.manifest_digest, pushed.size
            ),
        },
        ProgressEvent::Aux(serde_json::json!({
            "Tag": tag,
            "Digest": pushed.manifest_digest.to_string(),
            "Size": pushed.size,
        })),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_lines_are_dockers() {
        assert_eq!(
            progress(PushEvent::Exists { id: "abc".into() }),
            ProgressEvent::Status {
                id: Some("abc".into()),
                status: "Layer already exists".into()
            }
        );
        assert_eq!(
            progress(PushEvent::Mounted {
                id: "abc".into(),
                from: "library/busybox".into()
            }),
            ProgressEvent::Status {
                id: Some("abc".into()),
                status: "Mounted from library/busybox".into()
            }
        );
        assert!(matches!(
            progress(PushEvent::Pushing { id: "a".into(), current: 1, total: 2 }),
            ProgressEvent::Progress { status, .. } if status == "Pushing"
        ));
        assert_eq!(
            EngineError::NoSuchImageTag("localhost:5000/test".into()).to_string(),
            "An image does not exist locally with the tag: localhost:5000/test"
        );
    }
}
