//! Container events: moby's `LogContainerEventWithAttributes` on the engine's bus.
//!
//! The attributes of a container event are the caller's extras, then the container's labels
//! (which win over extras, as in moby), then `image` (the image as the user named it) and
//! `name` (without the leading `/`).

use std::collections::HashMap;

use super::record::Record;
use super::{Containers, Ctr};
use crate::events::EventType;

/// The attributes moby puts on a container event.
pub(crate) fn attributes(rec: &Record, extra: &[(&str, &str)]) -> HashMap<String, String> {
    let mut a: HashMap<String, String> = extra
        .iter()
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect();
    if let Some(labels) = &rec.config.labels {
        a.extend(labels.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    if let Some(image) = rec.config.image.as_deref().filter(|i| !i.is_empty()) {
        a.insert("image".to_string(), image.to_string());
    }
    a.insert(
        "name".to_string(),
        rec.name.trim_start_matches('/').to_string(),
    );
    a
}

impl Containers {
    /// Emits a container event about `ctr` (locks its record: not for callers holding it).
    pub(crate) fn event(&self, ctr: &Ctr, action: &str, extra: &[(&str, &str)]) {
        let a = attributes(&ctr.rec(), extra);
        self.events
            .emit(EventType::CONTAINER, action, ctr.id.clone(), a);
    }

    /// Emits a container event from a record (for callers already holding the record lock).
    pub(crate) fn event_rec(&self, rec: &Record, action: &str, extra: &[(&str, &str)]) {
        self.events.emit(
            EventType::CONTAINER,
            action,
            rec.id.clone(),
            attributes(rec, extra),
        );
    }

    /// Emits a container event about the container `reference` names, if it exists.
    pub(crate) fn event_ref(&self, reference: &str, action: &str, extra: &[(&str, &str)]) {
        if let Ok(ctr) = self.get(reference) {
            self.event(&ctr, action, extra);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_win_over_extras_and_name_loses_its_slash() {
        let rec = Record {
            id: "c".repeat(64),
            name: "/web".into(),
            created: chrono::Utc::now(),
            image_id: "sha256:1".into(),
            layers: vec![],
            path: "sh".into(),
            args: vec![],
            config: api_types::models::ContainerConfig {
                image: Some("busybox".into()),
                labels: Some(
                    [("exitCode", "label"), ("tier", "front")]
                        .into_iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ),
                ..Default::default()
            },
            host_config: Default::default(),
            state: Default::default(),
            restart_count: 0,
            log_path: "/x".into(),
            manually_stopped: false,
            mount_points: Vec::new(),
            endpoints: Default::default(),
            sandbox_key: String::new(),
            ports: Vec::new(),
        };
        let a = attributes(&rec, &[("exitCode", "0"), ("signal", "15")]);
        assert_eq!(a["name"], "web");
        assert_eq!(a["image"], "busybox");
        assert_eq!(a["tier"], "front");
        assert_eq!(a["exitCode"], "label");
        assert_eq!(a["signal"], "15");
    }
}
