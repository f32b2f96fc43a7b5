//! `docker rmi` and `docker image prune`, after moby's daemon/images/image_delete.go.

use chrono::Utc;

use crate::filters::{label_matches, parse_timestamp};
use crate::service::{DeleteItem, ImageService, PruneFilter, PruneReport};
use crate::store::State;
use crate::{Digest, ImagesError, Reference, Result};

type InUse<'a> = &'a dyn Fn(&Digest) -> Option<(String, bool)>;

fn short(s: &str) -> &str {
    &s[..s.len().min(12)]
}

pub(crate) fn delete(
    svc: &ImageService,
    name: &str,
    force: bool,
    noprune: bool,
    in_use: InUse<'_>,
) -> Result<Vec<DeleteItem>> {
    let _gc = svc.gc_exclusive();
    let _ops = svc.lock_ops();
    let mut st = svc.write();
    let id = st.resolve(name)?;
    let refs = st.refs_of(&id);
    let mut items = Vec::new();
    let mut reclaimed = 0;
    if !st.is_id_name(name, &id) {
        // A reference was given: untag it first.
        let r = Reference::parse_normalized(name)?.with_default_tag();
        if refs.len() <= 1
            && let Some((ctr, running)) = in_use(&id)
        {
            if running && force {
                return Err(running_conflict(&id, &ctr));
            }
            if !force {
                return Err(ImagesError::Conflict(format!(
                    "conflict: unable to remove repository reference \"{}\" (must force) - container {} is using its referenced image {}",
                    r.familiar_string(),
                    short(&ctr),
                    id.short()
                )));
            }
        }
        remove_refs(svc, &mut st, std::slice::from_ref(&r))?;
        items.push(DeleteItem::Untagged(r.familiar_string()));
        if !st.refs_of(&id).is_empty() {
            return Ok(items);
        }
        // As moby does, an image that other images were committed or built on is only
        // untagged: it goes with its last child.
        if has_children(&st, &id) {
            return Ok(items);
        }
    } else {
        if has_children(&st, &id) {
            return Err(children_conflict(&id));
        }
        if refs.len() > 1 && !force {
            return Err(ImagesError::Conflict(format!(
                "conflict: unable to delete {} (must be forced) - image is referenced in multiple repositories",
                id.short()
            )));
        }
        check_containers(&id, force, in_use)?;
        remove_refs(svc, &mut st, &refs)?;
        items.extend(
            refs.iter()
                .map(|r| DeleteItem::Untagged(r.familiar_string())),
        );
    }
    check_containers(&id, force, in_use)?;
    let parent = st.images.get(&id).and_then(|i| i.meta.parent.clone());
    items.extend(remove_image(svc, &mut st, &id, &mut reclaimed)?);
    if !noprune {
        prune_parents(svc, &mut st, parent, in_use, &mut items, &mut reclaimed)?;
    }
    Ok(items)
}

/// Whether another image names `id` as its parent.
fn has_children(st: &State, id: &Digest) -> bool {
    st.images
        .values()
        .any(|i| i.meta.parent.as_ref() == Some(id))
}

fn children_conflict(id: &Digest) -> ImagesError {
    ImagesError::Conflict(format!(
        "conflict: unable to delete {} (cannot be forced) - image has dependent child images",
        id.short()
    ))
}

/// After a child is deleted, its parents that are left untagged, childless and unused go too
/// (moby's `prune`, on unless `noprune`); any that is still wanted stops the walk, silently.
fn prune_parents(
    svc: &ImageService,
    st: &mut State,
    mut parent: Option<Digest>,
    in_use: InUse<'_>,
    items: &mut Vec<DeleteItem>,
    reclaimed: &mut u64,
) -> Result<()> {
    while let Some(p) = parent.take() {
        if !st.images.contains_key(&p)
            || !st.refs_of(&p).is_empty()
            || has_children(st, &p)
            || in_use(&p).is_some()
        {
            break;
        }
        parent = st.images.get(&p).and_then(|i| i.meta.parent.clone());
        items.extend(remove_image(svc, st, &p, reclaimed)?);
    }
    Ok(())
}

fn running_conflict(id: &Digest, ctr: &str) -> ImagesError {
    ImagesError::Conflict(format!(
        "conflict: unable to delete {} (cannot be forced) - image is being used by running container {}",
        id.short(),
        short(ctr)
    ))
}

fn check_containers(id: &Digest, force: bool, in_use: InUse<'_>) -> Result<()> {
    match in_use(id) {
        Some((ctr, true)) => Err(running_conflict(id, &ctr)),
        Some((ctr, false)) if !force => Err(ImagesError::Conflict(format!(
            "conflict: unable to delete {} (must be forced) - image is being used by stopped container {}",
            id.short(),
            short(&ctr)
        ))),
        _ => Ok(()),
    }
}

fn remove_refs(svc: &ImageService, st: &mut State, refs: &[Reference]) -> Result<()> {
    if refs.is_empty() {
        return Ok(());
    }
    let mut new = st.refs.clone();
    for r in refs {
        new.remove(&r.to_string());
    }
    svc.disk.write_refs(&new)?;
    st.refs = new;
    Ok(())
}

/// Removes an image (which has no references left) and its unshared layers.
fn remove_image(
    svc: &ImageService,
    st: &mut State,
    id: &Digest,
    reclaimed: &mut u64,
) -> Result<Vec<DeleteItem>> {
    let Some(img) = st.images.get(id).cloned() else {
        return Ok(Vec::new());
    };
    svc.disk.remove_meta(id)?;
    st.images.remove(id);
    let mut items = vec![DeleteItem::Deleted(id.clone())];
    if let Ok(sz) = svc.content.blob_size(id) {
        *reclaimed += sz;
    }
    svc.content.delete(id)?;
    for c in img.chain_ids.iter().rev() {
        if st.chain_users(c, None) == 0 && !items.contains(&DeleteItem::Deleted(c.clone())) {
            svc.snaps.remove(c)?;
            *reclaimed += st.layer_sizes.remove(c).unwrap_or(0);
            items.push(DeleteItem::Deleted(c.clone()));
        }
    }
    for d in &img.config.rootfs.diff_ids {
        if !st.diff_used(d, None) && svc.content.exists(d) {
            if let Ok(sz) = svc.content.blob_size(d) {
                *reclaimed += sz;
            }
            svc.content.delete(d)?;
        }
    }
    Ok(items)
}

pub(crate) fn prune(svc: &ImageService, f: &PruneFilter, in_use: InUse<'_>) -> Result<PruneReport> {
    let until = f
        .until
        .as_deref()
        .map(|u| parse_timestamp(u, Utc::now()))
        .transpose()?;
    let _gc = svc.gc_exclusive();
    let _ops = svc.lock_ops();
    let mut st = svc.write();
    let mut report = PruneReport::default();
    let mut ids: Vec<_> = st
        .images
        .values()
        .map(|i| (i.created, i.id.clone()))
        .collect();
    ids.sort();
    for (_, id) in ids {
        let Some(img) = st.images.get(&id) else {
            continue;
        };
        if let Some(u) = until
            && img.created.is_some_and(|c| c >= u)
        {
            continue;
        }
        if !f.labels.iter().all(|l| label_matches(img, l)) {
            continue;
        }
        if f.labels_not.iter().any(|l| label_matches(img, l)) {
            continue;
        }
        if in_use(&id).is_some() || has_children(&st, &id) {
            continue;
        }
        let refs = st.refs_of(&id);
        let tagged = refs.iter().any(|r| r.tag().is_some());
        if tagged && !f.all {
            continue;
        }
        remove_refs(svc, &mut st, &refs)?;
        report.deleted.extend(
            refs.iter()
                .map(|r| DeleteItem::Untagged(r.familiar_string())),
        );
        let parent = st.images.get(&id).and_then(|i| i.meta.parent.clone());
        let items = remove_image(svc, &mut st, &id, &mut report.space_reclaimed)?;
        report.deleted.extend(items);
        prune_parents(
            svc,
            &mut st,
            parent,
            in_use,
            &mut report.deleted,
            &mut report.space_reclaimed,
        )?;
    }
    Ok(report)
}
