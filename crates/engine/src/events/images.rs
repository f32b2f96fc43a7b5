//! Image and prune events, as moby's `LogImageEvent` and prune handlers emit them.
//!
//! An image event's actor is the image ID (`sha256:…`); its attributes are the image's labels
//! (when it still exists) and `name`: the new reference for `tag`, the image ID for `untag`,
//! `delete`, `load`, `save` and `import` (moby's classic image store does the same).

use std::collections::{HashMap, HashSet};

use images::{
    DeleteItem, ImageRecord, ImageService, ImportOptions, LoadEvent, PruneReport, SavePlan,
};

use super::{EventType, Events};
use crate::Engine;

fn labels(r: &ImageRecord) -> HashMap<String, String> {
    r.config
        .config
        .as_ref()
        .and_then(|c| c.labels.as_ref())
        .map(|l| l.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default()
}

/// Emits `action` about `image` (a record), with `name` (the image ID when `None`).
pub(crate) fn image_record_event(
    events: &Events,
    image: &ImageRecord,
    action: &str,
    name: Option<&str>,
) {
    let id = image.id.to_string();
    let mut a = labels(image);
    a.insert("name".to_string(), name.unwrap_or(&id).to_string());
    events.emit(EventType::IMAGE, action, id, a);
}

/// Emits `action` about the image `reference` resolves to (nothing if it does not).
pub(crate) fn image_event(
    events: &Events,
    svc: &ImageService,
    reference: &str,
    action: &str,
    name: Option<&str>,
) {
    if let Ok(img) = svc.get(reference) {
        image_record_event(events, &img, action, name);
    }
}

/// The `untag` and `delete` events of an image removal: each `Untagged` item belongs to the
/// next `Deleted` image (prune), or to `named` (an rmi that only untagged).
pub(crate) fn delete_events(events: &Events, named: Option<&ImageRecord>, items: &[DeleteItem]) {
    let mut pending = 0usize;
    let emit = |id: &str, action: &str, attrs: HashMap<String, String>| {
        let mut a = attrs;
        a.insert("name".to_string(), id.to_string());
        events.emit(EventType::IMAGE, action, id.to_string(), a);
    };
    let named_labels = named.map(labels).unwrap_or_default();
    for item in items {
        match item {
            DeleteItem::Untagged(_) => pending += 1,
            DeleteItem::Deleted(d) => {
                let id = d.to_string();
                let attrs = match named {
                    Some(n) if n.id == *d => named_labels.clone(),
                    _ => HashMap::new(),
                };
                for _ in 0..pending {
                    emit(&id, "untag", attrs.clone());
                }
                pending = 0;
                emit(&id, "delete", HashMap::new());
            }
        }
    }
    if let Some(n) = named {
        for _ in 0..pending {
            emit(&n.id.to_string(), "untag", named_labels.clone());
        }
    }
}

/// The `prune` event moby sends after a prune of `typ`: no actor ID, `reclaimed` bytes.
pub(crate) fn emit_prune(events: &Events, typ: EventType, reclaimed: u64) {
    let a = HashMap::from([("reclaimed".to_string(), reclaimed.to_string())]);
    events.emit(typ, "prune", String::new(), a);
}

/// The events of an image prune: `untag`/`delete` per image, then `prune`.
pub(crate) fn prune_events(events: &Events, report: &PruneReport) {
    delete_events(events, None, &report.deleted);
    emit_prune(events, EventType::IMAGE, report.space_reclaimed);
}

/// The events of an import: `tag` when a reference was given, then `import`.
pub(crate) fn import_events(
    events: &Events,
    svc: &ImageService,
    id: &storage::Digest,
    opts: &ImportOptions,
) {
    let id = id.to_string();
    if let Some(r) = &opts.reference {
        let name = r.familiar_string();
        image_event(events, svc, &id, "tag", Some(&name));
    }
    image_event(events, svc, &id, "import", None);
}

/// Emits one `load` event per image a load reported (by tag or ID), once per image.
#[derive(Debug, Default)]
pub(crate) struct LoadEvents {
    seen: HashSet<String>,
}

impl LoadEvents {
    /// Feeds one progress event of a load; the `Loaded…` ones emit.
    pub(crate) fn on_load_event(&mut self, events: &Events, svc: &ImageService, ev: &LoadEvent) {
        match ev {
            LoadEvent::LoadedTag(tag) => self.loaded(events, svc, tag),
            LoadEvent::LoadedId(id) => self.loaded(events, svc, &id.to_string()),
            LoadEvent::Progress { .. } => {}
        }
    }

    /// Records a loaded image (`busybox:latest` or `sha256:…`) and emits its `load` event.
    pub(crate) fn loaded(&mut self, events: &Events, svc: &ImageService, reference: &str) {
        if let Ok(img) = svc.get(reference)
            && self.seen.insert(img.id.to_string())
        {
            image_record_event(events, &img, "load", None);
        }
    }
}

/// The `save` events of a finished save, one per image.
pub(crate) fn save_events(events: &Events, plan: &SavePlan) {
    for (img, _) in &plan.images {
        image_record_event(events, img, "save", None);
    }
}

impl Engine {
    /// Emits an image event about `reference` (see [`image_event`]).
    pub(crate) fn image_event(&self, reference: &str, action: &str, name: Option<&str>) {
        image_event(&self.events, &self.images, reference, action, name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::EventFilter;

    fn digest(c: char) -> storage::Digest {
        storage::Digest::from_hex(&c.to_string().repeat(64)).unwrap()
    }

    #[tokio::test]
    async fn prune_items_become_untag_then_delete() {
        let bus = Events::new();
        let mut s = bus.subscribe(None, None, EventFilter::default()).unwrap();
        let items = vec![
            DeleteItem::Untagged("a:1".into()),
            DeleteItem::Untagged("a:2".into()),
            DeleteItem::Deleted(digest('a')),
            DeleteItem::Deleted(digest('b')),
        ];
        delete_events(&bus, None, &items);
        emit_prune(&bus, EventType::IMAGE, 42);
        let mut got = Vec::new();
        for _ in 0..5 {
            let e = s.next().await.unwrap();
            let actor = e.actor.clone().unwrap_or_default();
            got.push((
                e.action.clone().unwrap_or_default(),
                actor.id.unwrap_or_default(),
                actor.attributes.unwrap_or_default(),
            ));
        }
        let a = digest('a').to_string();
        let b = digest('b').to_string();
        assert_eq!(got[0].0, "untag");
        assert_eq!(got[0].1, a);
        assert_eq!(got[0].2["name"], a);
        assert_eq!(got[1].0, "untag");
        assert_eq!(
            (got[2].0.as_str(), got[2].1.as_str()),
            ("delete", a.as_str())
        );
        assert_eq!(
            (got[3].0.as_str(), got[3].1.as_str()),
            ("delete", b.as_str())
        );
        assert_eq!(got[4].0, "prune");
        assert_eq!(got[4].1, "");
        assert_eq!(got[4].2["reclaimed"], "42");
    }
}
