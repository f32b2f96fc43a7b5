//! `docker pull` (`POST /images/create?fromImage=`): the registry client fetches manifest,
//! config and layers into the content store, the image service makes an image of them, and
//! the progress is reported as Docker words it (`Pulling fs layer`, `Downloading`, …).
//!
//! Owns the translation from references to registry requests and from pull events to
//! [`ProgressEvent`]s; knows nothing of HTTP (the daemon decodes `X-Registry-Auth`).

use std::sync::{Arc, Mutex};

use images::Reference;
use registry::client::{Client, ClientOptions, Credentials, Platform, PullEvent};
use tokio::sync::mpsc;

use crate::{Engine, EngineError, ProgressEvent, ProgressStream, Result};

/// The parameters of `POST /images/create?fromImage=…`.
#[derive(Debug, Clone, Default)]
pub struct PullRequest {
    /// `fromImage` (may carry a tag or digest).
    pub from_image: String,
    /// `tag`: a tag or a digest; empty means `latest` unless `from_image` has one.
    pub tag: String,
    /// `platform` (`os/arch[/variant]`), empty for the host's.
    pub platform: String,
    /// Decoded `X-Registry-Auth`.
    pub credentials: Option<Credentials>,
}

/// The engine's registry client, built on first use.
#[derive(Debug, Default)]
pub(crate) struct Registries {
    pub(crate) insecure: Mutex<Vec<String>>,
    client: Mutex<Option<Client>>,
    /// Where the client keeps distribution metadata (`<data-root>/distribution`).
    metadata_dir: Option<std::path::PathBuf>,
    /// Mirrors and certs.d (see `registry_config.rs`).
    pub(crate) settings: Mutex<crate::registry_config::RegistrySettings>,
}

impl Registries {
    /// Registries whose client persists distribution metadata under `dir`.
    pub(crate) fn with_metadata_dir(dir: std::path::PathBuf) -> Self {
        Self {
            metadata_dir: Some(dir),
            ..Self::default()
        }
    }

    /// The options the settings make now.
    fn options(&self) -> ClientOptions {
        ClientOptions {
            insecure_registries: self
                .insecure
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
            metadata_dir: self.metadata_dir.clone(),
            ..self
                .settings
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .options()
        }
    }

    pub(crate) fn client(&self) -> Result<Client> {
        let mut slot = self.client.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = &*slot {
            return Ok(c.clone());
        }
        let c = Client::new(self.options())?;
        *slot = Some(c.clone());
        Ok(c)
    }

    /// After a settings change: the client built already takes the new options (pulls under
    /// way keep the ones they started with).
    pub(crate) fn refresh(&self) {
        let opts = self.options();
        let mut slot = self.client.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = slot.take() {
            *slot = Some(c.with_options(opts));
        }
    }
}

/// `fromImage` + `tag` as moby combines them: a digest in `tag` makes a digest reference.
fn pull_reference(from_image: &str, tag: &str) -> Result<Reference> {
    let r = Reference::parse_normalized(from_image)?;
    if tag.is_empty() {
        // moby pulls every tag of the repository then (`docker pull -a`).
        return if r.digest().is_some() || r.tag().is_some() {
            Ok(r)
        } else {
            Err(EngineError::NotSupported {
                what: "pulling all tags of a repository (--all-tags)",
            })
        };
    }
    if tag.starts_with("sha256:") {
        return Ok(Reference::parse_normalized(&format!("{}@{tag}", r.name()))?);
    }
    Ok(r.with_tag(tag)?)
}

/// The Docker progress lines for one pull event.
fn progress(ev: PullEvent, repo: &str, tag_or_digest: &str) -> Vec<ProgressEvent> {
    let status = |id: String, s: &str| ProgressEvent::Status {
        id: Some(id),
        status: s.to_string(),
    };
    vec![match ev {
        PullEvent::Resolved => ProgressEvent::Status {
            id: Some(tag_or_digest.to_string()),
            status: format!("Pulling from {repo}"),
        },
        PullEvent::LayerExists { id } => status(id, "Already exists"),
        PullEvent::LayerWaiting { id } => status(id, "Pulling fs layer"),
        PullEvent::Downloading { id, current, total } => ProgressEvent::Progress {
            id,
            status: "Downloading".into(),
            current,
            total,
        },
        PullEvent::Verified { id } => {
            return vec![
                status(id.clone(), "Verifying Checksum"),
                status(id, "Download complete"),
            ];
        }
        PullEvent::Retrying { id, seconds } => {
            status(id, &format!("Retrying in {seconds} seconds"))
        }
    }]
}

impl Engine {
    /// Registries (`host[:port]`) reached over plain HTTP (daemon flag `insecure-registries`).
    /// Takes effect before the first pull.
    pub fn set_insecure_registries(&self, list: Vec<String>) {
        *self
            .registries
            .insecure
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = list;
        self.registries.refresh();
    }

    /// `POST /images/create?fromImage=…`. Errors before the manifest was found (bad name,
    /// unknown tag, denied) are the stream's first item, so the daemon answers them as HTTP
    /// errors as Docker does; later failures arrive in-band.
    pub fn images_pull(&self, req: PullRequest) -> Result<ProgressStream> {
        let reference = pull_reference(&req.from_image, &req.tag)?;
        let platform = if req.platform.is_empty() {
            None
        } else {
            Some(Platform::parse(&req.platform)?)
        };
        let client = self.registries.client()?;
        let (reference_str, tag_or_digest) = match reference.digest() {
            Some(d) => (d.to_string(), d.to_string()),
            None => {
                let t = reference.tag().unwrap_or("latest").to_string();
                (t.clone(), t)
            }
        };
        let rreq = registry::client::PullRequest {
            domain: reference.domain().to_string(),
            repository: reference.path().to_string(),
            reference: reference_str,
            display: reference.familiar_string(),
            platform,
            credentials: req.credentials,
            unpack_into: Some(self.images.snapshots().clone()),
        };
        let (tx, rx) = mpsc::channel(64);
        let images = Arc::clone(&self.images);
        let bus = Arc::clone(&self.events);
        tokio::spawn(async move {
            let repo = reference.path().to_string();
            let send = |ev: PullEvent| {
                for p in progress(ev, &repo, &tag_or_digest) {
                    // A full channel or a gone client must not stall or fail the pull.
                    let _ = tx.try_send(Ok(p));
                }
            };
            let result = pull_task(&client, &images, &reference, &rreq, &send, &tx).await;
            match result {
                Ok(familiar) => {
                    // moby: actor = the familiar reference, `name` = the familiar name, plus
                    // the image's labels.
                    let mut attrs = images
                        .get(&familiar)
                        .ok()
                        .and_then(|r| r.config.config.and_then(|c| c.labels))
                        .map(|l| l.into_iter().collect::<std::collections::HashMap<_, _>>())
                        .unwrap_or_default();
                    attrs.insert("name".into(), reference.familiar_name());
                    bus.emit(crate::events::EventType::IMAGE, "pull", familiar, attrs);
                }
                Err(e) => {
                    let _ = tx.send(Err(e)).await;
                }
            }
        });
        Ok(rx)
    }
}

async fn pull_task(
    client: &Client,
    images: &Arc<images::ImageService>,
    reference: &Reference,
    rreq: &registry::client::PullRequest,
    send: &(dyn Fn(PullEvent) + Sync),
    tx: &mpsc::Sender<Result<ProgressEvent>>,
) -> Result<String> {
    let pulled = client.pull(images.content(), rreq, send).await?;
    let line = |id: &str, s: &str| {
        Ok(ProgressEvent::Status {
            id: Some(id.to_string()),
            status: s.to_string(),
        })
    };
    // Unpacking has no byte count of its own: one full bar per layer, a progress message
    // (hidden off a terminal, as Docker's are).
    for (id, size) in &pulled.fetched {
        let extracting = ProgressEvent::Progress {
            id: id.clone(),
            status: "Extracting".into(),
            current: *size,
            total: *size,
        };
        let _ = tx.send(Ok(extracting)).await;
    }
    let repo_digest =
        Reference::parse_normalized(&format!("{}@{}", reference.name(), pulled.manifest_digest))?;
    let tag = reference.digest().is_none().then(|| reference.clone());
    let svc = Arc::clone(images);
    let config = pulled.config.clone();
    let created = tokio::task::spawn_blocking(move || {
        svc.create_from_content(&config, tag.as_ref(), Some(&repo_digest))
    })
    .await
    .map_err(|_| EngineError::TaskFailed { what: "image pull" })??;
    for (id, _) in &pulled.fetched {
        let _ = tx.send(line(id, "Pull complete")).await;
    }
    let familiar = reference.familiar_string();
    let _ = tx
        .send(Ok(ProgressEvent::Status {
            id: None,
            status: format!("Digest: {}", pulled.manifest_digest),
        }))
        .await;
    let status = if created.up_to_date && pulled.fetched.is_empty() {
        format!("Status: Image is up to date for {familiar}")
    } else {
        format!("Status: Downloaded newer image for {familiar}")
    };
    let _ = tx
        .send(Ok(ProgressEvent::Status { id: None, status }))
        .await;
    Ok(familiar)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_combine_like_moby() {
        assert!(matches!(
            pull_reference("busybox", ""),
            Err(EngineError::NotSupported { .. })
        ));
        assert_eq!(
            pull_reference("busybox:1", "").unwrap().to_string(),
            "docker.io/library/busybox:1"
        );
        assert_eq!(
            pull_reference("busybox", "1.36").unwrap().to_string(),
            "docker.io/library/busybox:1.36"
        );
        let d = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
        let r = pull_reference("127.0.0.1:5000/test/bb", d).unwrap();
        assert_eq!(r.to_string(), format!("127.0.0.1:5000/test/bb@{d}"));
        assert_eq!(r.domain(), "127.0.0.1:5000");
        assert_eq!(r.path(), "test/bb");
        assert!(pull_reference("UPPER", "").is_err());
    }

    #[test]
    fn progress_lines() {
        let p = progress(PullEvent::Resolved, "library/busybox", "latest");
        assert_eq!(
            p[0],
            ProgressEvent::Status {
                id: Some("latest".into()),
                status: "Pulling from library/busybox".into()
            }
        );
        let p = progress(
            PullEvent::Downloading {
                id: "abc".into(),
                current: 1,
                total: 2,
            },
            "r",
            "t",
        );
        assert!(matches!(&p[0], ProgressEvent::Progress { status, .. } if status == "Downloading"));
        let p = progress(PullEvent::Verified { id: "abc".into() }, "r", "t");
        assert_eq!(p.len(), 2);
    }
}
