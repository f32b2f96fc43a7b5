//! `docker pull --all-tags` (`POST /images/create?fromImage=<name>` with no tag): moby's
//! `pullRepository`. The repository's tags are listed (`/v2/<name>/tags/list`, paginated),
//! then each is pulled in turn through [`Engine::images_pull`], its lines passed on
//! (`<tag>: Pulling from …`, the layers, `Digest: …`) but its `Status:` line held back; one
//! `Status: Downloaded newer image for <name>` (or `Image is up to date for <name>`) ends the
//! stream, as moby writes it once for the repository.
//!
//! Owns the all-tags loop only; the single pull is `pull.rs`. Knows nothing of HTTP.

use std::sync::Arc;

use images::Reference;
use tokio::sync::mpsc;

use crate::{Engine, ProgressEvent, ProgressStream, PullRequest, Result};

/// Whether a pull request asks for every tag: no `tag` and a name without tag or digest.
fn wants_all_tags(req: &PullRequest) -> Result<Option<Reference>> {
    if !req.tag.is_empty() {
        return Ok(None);
    }
    let r = Reference::parse_normalized(&req.from_image)?;
    Ok((r.tag().is_none() && r.digest().is_none()).then_some(r))
}

/// What one tag's stream item becomes: passed on, or (its final `Status:` line) whether the
/// tag brought something new.
enum Item {
    Forward(Result<ProgressEvent>),
    Status { newer: bool },
}

fn classify(item: Result<ProgressEvent>) -> Item {
    match item {
        Ok(ProgressEvent::Status { id: None, status }) if status.starts_with("Status: ") => {
            Item::Status {
                newer: status.starts_with("Status: Downloaded newer image"),
            }
        }
        other => Item::Forward(other),
    }
}

impl Engine {
    /// `POST /images/create?fromImage=…`: [`Engine::images_pull`], or every tag of the
    /// repository when the request names none (`docker pull -a`). As with a single pull, an
    /// error before anything was pulled (the tag list refused) is the stream's first item.
    pub fn images_pull_all(self: &Arc<Self>, req: PullRequest) -> Result<ProgressStream> {
        let Some(reference) = wants_all_tags(&req)? else {
            return self.images_pull(req);
        };
        let client = self.registries.client()?;
        let (tx, rx) = mpsc::channel(64);
        let engine = Arc::clone(self);
        tokio::spawn(async move {
            let tags = match client
                .tags(
                    reference.domain(),
                    reference.path(),
                    req.credentials.clone(),
                )
                .await
            {
                Ok(t) => t,
                Err(e) => {
                    let _ = tx.send(Err(e.into())).await;
                    return;
                }
            };
            let mut newer = false;
            for tag in tags {
                let one = PullRequest { tag, ..req.clone() };
                let mut inner = match engine.images_pull(one) {
                    Ok(rx) => rx,
                    Err(e) => {
                        let _ = tx.send(Err(e)).await;
                        return;
                    }
                };
                while let Some(item) = inner.recv().await {
                    match classify(item) {
                        Item::Status { newer: n } => newer |= n,
                        Item::Forward(Err(e)) => {
                            let _ = tx.send(Err(e)).await;
                            return;
                        }
                        Item::Forward(ok) => {
                            // The client went away: stop after this tag's pull is dropped.
                            if tx.send(ok).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            }
            let name = reference.familiar_string();
            let status = if newer {
                format!("Status: Downloaded newer image for {name}")
            } else {
                format!("Status: Image is up to date for {name}")
            };
            let _ = tx
                .send(Ok(ProgressEvent::Status { id: None, status }))
                .await;
        });
        Ok(rx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(from: &str, tag: &str) -> PullRequest {
        PullRequest {
            from_image: from.into(),
            tag: tag.into(),
            ..Default::default()
        }
    }

    #[test]
    fn all_tags_only_for_bare_names() {
        let r = wants_all_tags(&req("busybox", "")).unwrap().unwrap();
        assert_eq!(r.familiar_string(), "busybox");
        let r = wants_all_tags(&req("127.0.0.1:5000/t/bb", ""))
            .unwrap()
            .unwrap();
        assert_eq!(r.familiar_string(), "127.0.0.1:5000/t/bb");
        assert!(wants_all_tags(&req("busybox", "1")).unwrap().is_none());
        assert!(wants_all_tags(&req("busybox:1", "")).unwrap().is_none());
        assert!(wants_all_tags(&req("UPPER", "")).is_err());
    }

    #[test]
    fn status_lines_are_held_back() {
        let st = |s: &str| {
            Ok(ProgressEvent::Status {
                id: None,
                status: s.into(),
            })
        };
        assert!(matches!(
            classify(st("Status: Downloaded newer image for bb:1")),
            Item::Status { newer: true }
        ));
        assert!(matches!(
            classify(st("Status: Image is up to date for bb:1")),
            Item::Status { newer: false }
        ));
        assert!(matches!(classify(st("Digest: sha256:1")), Item::Forward(_)));
        let layer = Ok(ProgressEvent::Status {
            id: Some("abc".into()),
            status: "Status: odd".into(),
        });
        assert!(matches!(classify(layer), Item::Forward(_)));
    }
}
