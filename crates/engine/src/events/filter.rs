//! Event filters as moby's `daemon/events.Filter` applies them.
//!
//! Each key present must match; within a key any value may match. `event` (alias `action`)
//! and `type` and `scope` match exactly (`exec_create`, `exec_start` and `health_status`
//! without a `:` match as prefixes); `container` (and `plugin`, `node`, `service`, `secret`,
//! `config`) matches the actor's ID or `name` attribute by prefix; `image` matches the image
//! ID or name, with or without its tag; `volume` and `network` match exactly; `label` needs
//! every `key` / `key=value` in the actor's attributes; `daemon` only passes daemon events.

use api_types::models::{EventMessage, EventMessageScopeEnum};

use crate::{Filters, Result};

/// Parsed `filters` of `GET /events`.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    f: Filters,
}

impl EventFilter {
    /// Keeps the filters. Like moby, unknown keys and values are not refused: they simply
    /// match nothing (an unknown `type`) or are ignored (an unknown key).
    pub fn new(filters: &Filters) -> Result<Self> {
        Ok(Self { f: filters.clone() })
    }

    /// True when no key is set.
    pub fn is_empty(&self) -> bool {
        self.f.is_empty()
    }

    /// Whether `ev` passes every filter.
    pub fn matches(&self, ev: &EventMessage) -> bool {
        if self.f.is_empty() {
            return true;
        }
        let typ = ev.typ.map(|t| t.to_string()).unwrap_or_default();
        let action = ev.action.as_deref().unwrap_or_default();
        let id = ev
            .actor
            .as_ref()
            .and_then(|a| a.id.as_deref())
            .unwrap_or_default();
        let empty = std::collections::HashMap::new();
        let attrs = ev
            .actor
            .as_ref()
            .and_then(|a| a.attributes.as_ref())
            .unwrap_or(&empty);
        let attr = |k: &str| attrs.get(k).map(String::as_str).unwrap_or_default();
        let scope = match ev.scope {
            Some(EventMessageScopeEnum::SWARM) => "swarm",
            Some(EventMessageScopeEnum::LOCAL) => "local",
            _ => "",
        };

        self.match_action("event", action)
            && self.match_action("action", action)
            && self.exact("type", &typ)
            && self.exact("scope", scope)
            && self.match_daemon(&typ, id, attr("name"))
            && ["container", "plugin", "node", "service", "secret", "config"]
                .iter()
                .all(|k| self.fuzzy_name(k, &typ, id, attr("name")))
            && self.match_volume(&typ, id)
            && self.match_network(&typ, id, attr("name"))
            && self.match_image(&typ, id, attrs)
            && self.match_labels(attrs)
    }

    fn has(&self, key: &str) -> bool {
        self.f.contains(key)
    }

    /// moby's `ExactMatch`: absent key passes; else one value equals `source`.
    fn exact(&self, key: &str, source: &str) -> bool {
        !self.has(key) || self.f.get(key).iter().any(|v| v == source)
    }

    /// moby's `FuzzyMatch`: absent key passes; else `source` starts with one value.
    fn fuzzy(&self, key: &str, source: &str) -> bool {
        !self.has(key)
            || self
                .f
                .get(key)
                .iter()
                .any(|v| source.starts_with(v.as_str()))
    }

    fn match_action(&self, key: &str, action: &str) -> bool {
        let prefixed = self
            .f
            .get(key)
            .iter()
            .any(|v| matches!(v.as_str(), "health_status" | "exec_create" | "exec_start"));
        if prefixed {
            self.fuzzy(key, action)
        } else {
            self.exact(key, action)
        }
    }

    fn match_daemon(&self, typ: &str, id: &str, name: &str) -> bool {
        if !self.has("daemon") {
            return true;
        }
        typ == "daemon" && self.f.get("daemon").iter().any(|v| v == id || v == name)
    }

    /// `container=x` (and the other name-like keys): the actor's ID or name by prefix, and
    /// only for events of that type.
    fn fuzzy_name(&self, key: &str, typ: &str, id: &str, name: &str) -> bool {
        if !self.has(key) {
            return true;
        }
        typ == key && (self.fuzzy(key, id) || (!name.is_empty() && self.fuzzy(key, name)))
    }

    fn match_volume(&self, typ: &str, id: &str) -> bool {
        !self.has("volume") || (typ == "volume" && self.exact("volume", id))
    }

    fn match_network(&self, typ: &str, id: &str, name: &str) -> bool {
        !self.has("network")
            || (typ == "network" && (self.exact("network", id) || self.exact("network", name)))
    }

    fn match_image(
        &self,
        typ: &str,
        id: &str,
        attrs: &std::collections::HashMap<String, String>,
    ) -> bool {
        if !self.has("image") {
            return true;
        }
        let name_attr = if typ == "image" { "name" } else { "image" };
        let name = attrs.get(name_attr).map(String::as_str).unwrap_or_default();
        let ok = |s: &str| !s.is_empty() && self.exact("image", s);
        ok(id) || ok(name) || ok(strip_tag(id)) || ok(strip_tag(name))
    }

    fn match_labels(&self, attrs: &std::collections::HashMap<String, String>) -> bool {
        self.f.get("label").iter().all(|l| match l.split_once('=') {
            Some((k, v)) => attrs.get(k).is_some_and(|x| x == v),
            None => attrs.contains_key(l.as_str()),
        })
    }
}

/// `name:tag` → `name` (a registry port's `:` is not a tag; digests are kept).
fn strip_tag(image: &str) -> &str {
    if image.contains('@') {
        return image;
    }
    match image.rfind(':') {
        Some(i) if !image[i + 1..].contains('/') => &image[..i],
        _ => image,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use api_types::models::{EventActor, EventMessageTypeEnum};

    use super::*;

    fn ev(
        typ: EventMessageTypeEnum,
        action: &str,
        id: &str,
        attrs: &[(&str, &str)],
    ) -> EventMessage {
        EventMessage {
            typ: Some(typ),
            action: Some(action.to_string()),
            actor: Some(EventActor {
                id: Some(id.to_string()),
                attributes: Some(
                    attrs
                        .iter()
                        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
                        .collect::<HashMap<_, _>>(),
                ),
            }),
            scope: Some(EventMessageScopeEnum::LOCAL),
            time: Some(1),
            time_nano: Some(1),
        }
    }

    fn filter(pairs: &[(&str, &str)]) -> EventFilter {
        let mut f = Filters::default();
        for (k, v) in pairs {
            f.add(k, v);
        }
        EventFilter::new(&f).unwrap()
    }

    fn start() -> EventMessage {
        ev(
            EventMessageTypeEnum::CONTAINER,
            "start",
            "abcdef0123",
            &[
                ("image", "busybox:latest"),
                ("name", "web"),
                ("tier", "front"),
            ],
        )
    }

    #[test]
    fn empty_matches_everything() {
        assert!(filter(&[]).matches(&start()));
        assert!(filter(&[]).is_empty());
    }

    #[test]
    fn event_type_scope() {
        assert!(filter(&[("event", "start")]).matches(&start()));
        assert!(filter(&[("event", "stop"), ("event", "start")]).matches(&start()));
        assert!(!filter(&[("event", "stop")]).matches(&start()));
        assert!(filter(&[("action", "start")]).matches(&start()));
        assert!(filter(&[("type", "container")]).matches(&start()));
        assert!(!filter(&[("type", "image")]).matches(&start()));
        assert!(filter(&[("scope", "local")]).matches(&start()));
        assert!(!filter(&[("scope", "swarm")]).matches(&start()));
        // exec_create without a colon matches the long action by prefix.
        let exec = ev(
            EventMessageTypeEnum::CONTAINER,
            "exec_create: sh -c date",
            "abc",
            &[],
        );
        assert!(filter(&[("event", "exec_create")]).matches(&exec));
        assert!(!filter(&[("event", "exec_start")]).matches(&exec));
        assert!(!filter(&[("event", "start")]).matches(&exec));
    }

    #[test]
    fn container_by_id_prefix_or_name() {
        assert!(filter(&[("container", "abcdef")]).matches(&start()));
        assert!(filter(&[("container", "web")]).matches(&start()));
        assert!(filter(&[("container", "we")]).matches(&start()));
        assert!(!filter(&[("container", "db")]).matches(&start()));
        // Image events never match a container filter.
        let tag = ev(
            EventMessageTypeEnum::IMAGE,
            "tag",
            "sha256:abc",
            &[("name", "web")],
        );
        assert!(!filter(&[("container", "web")]).matches(&tag));
    }

    #[test]
    fn image_by_name_tag_or_id() {
        assert!(filter(&[("image", "busybox")]).matches(&start()));
        assert!(filter(&[("image", "busybox:latest")]).matches(&start()));
        assert!(!filter(&[("image", "alpine")]).matches(&start()));
        let tag = ev(
            EventMessageTypeEnum::IMAGE,
            "tag",
            "sha256:abc",
            &[("name", "localhost:5000/bb:v1")],
        );
        assert!(filter(&[("image", "sha256:abc")]).matches(&tag));
        assert!(filter(&[("image", "localhost:5000/bb")]).matches(&tag));
        assert!(filter(&[("image", "localhost:5000/bb:v1")]).matches(&tag));
        assert!(!filter(&[("image", "localhost")]).matches(&tag));
        assert_eq!(strip_tag("localhost:5000/bb"), "localhost:5000/bb");
        assert_eq!(strip_tag("bb@sha256:12"), "bb@sha256:12");
    }

    #[test]
    fn labels_all_must_match() {
        assert!(filter(&[("label", "tier")]).matches(&start()));
        assert!(filter(&[("label", "tier=front")]).matches(&start()));
        assert!(!filter(&[("label", "tier=back")]).matches(&start()));
        assert!(!filter(&[("label", "tier"), ("label", "other")]).matches(&start()));
    }

    #[test]
    fn daemon_volume_network() {
        assert!(!filter(&[("daemon", "x")]).matches(&start()));
        let d = ev(
            EventMessageTypeEnum::DAEMON,
            "reload",
            "ID1",
            &[("name", "host")],
        );
        assert!(filter(&[("daemon", "host")]).matches(&d));
        assert!(filter(&[("daemon", "ID1")]).matches(&d));
        assert!(!filter(&[("volume", "v")]).matches(&start()));
        let v = ev(EventMessageTypeEnum::VOLUME, "create", "v1", &[]);
        assert!(filter(&[("volume", "v1")]).matches(&v));
        assert!(!filter(&[("volume", "v")]).matches(&v));
        let n = ev(
            EventMessageTypeEnum::NETWORK,
            "create",
            "n1id",
            &[("name", "net")],
        );
        assert!(filter(&[("network", "net")]).matches(&n));
        assert!(!filter(&[("network", "n1")]).matches(&n));
    }

    #[test]
    fn unknown_keys_are_ignored_and_unknown_types_match_nothing() {
        assert!(filter(&[("bogus", "1")]).matches(&start()));
        assert!(!filter(&[("type", "nope")]).matches(&start()));
    }
}
