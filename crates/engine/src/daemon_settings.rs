//! Daemon-wide settings berthd may change while it runs (a configuration reload): debug mode
//! and labels as `docker info` shows them, and the json-file log options and ulimits new
//! containers get unless they set their own. Also the `daemon reload` event.
//!
//! Owns the values and where they apply; knows nothing of daemon.json, flags or signals.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use api_types::models::{
    ContainerCreateBody, EventMessageTypeEnum, HostConfigLogConfig, ResourcesUlimits,
};

use crate::Engine;

/// The reloadable settings (the registry ones are in [`crate::RegistrySettings`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LiveSettings {
    /// Debug mode (`docker info` Debug Mode (server)).
    pub debug: bool,
    /// Daemon labels (`key=value`), shown by `docker info` under Labels.
    pub labels: Vec<String>,
    /// Default json-file log options (`max-size`, `max-file`).
    pub log_opts: BTreeMap<String, String>,
    /// Default ulimits of new containers (a container's own wins per name).
    pub default_ulimits: Vec<ResourcesUlimits>,
}

/// Holder of the live settings inside the engine.
#[derive(Debug, Default)]
pub(crate) struct Live(Mutex<Option<LiveSettings>>);

impl Live {
    fn get(&self) -> Option<LiveSettings> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// moby's mergeAndVerifyLogConfig: a container without a driver gets the daemon's; one with the
/// daemon's driver (json-file) gets each default option it does not set itself.
fn apply_log_defaults(body: &mut ContainerCreateBody, defaults: &BTreeMap<String, String>) {
    let host = body.host_config.get_or_insert_with(Default::default);
    let log = host
        .log_config
        .get_or_insert_with(HostConfigLogConfig::default);
    if log.typ.as_deref().is_none_or(str::is_empty) {
        log.typ = Some("json-file".into());
    }
    if log.typ.as_deref() != Some("json-file") {
        return;
    }
    let opts = log.config.get_or_insert_with(HashMap::new);
    for (k, v) in defaults {
        opts.entry(k.clone()).or_insert_with(|| v.clone());
    }
}

/// moby's mergeUlimits: each daemon default whose name the container does not set itself.
fn apply_ulimit_defaults(body: &mut ContainerCreateBody, defaults: &[ResourcesUlimits]) {
    let host = body.host_config.get_or_insert_with(Default::default);
    let own = host.ulimits.get_or_insert_with(Vec::new);
    for d in defaults {
        if !own.iter().any(|u| u.name == d.name) {
            own.push(d.clone());
        }
    }
}

impl Engine {
    /// Sets debug mode, labels and default log options (at start and on reload).
    pub fn set_live_settings(&self, settings: LiveSettings) {
        *self.live.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(settings);
    }

    /// Debug mode now: the live setting, or the one the engine was opened with.
    pub(crate) fn debug_mode(&self) -> bool {
        self.live.get().map_or(self.config.debug, |s| s.debug)
    }

    /// The daemon labels now.
    pub(crate) fn daemon_labels(&self) -> Vec<String> {
        self.live.get().map(|s| s.labels).unwrap_or_default()
    }

    /// Fills a create request's log configuration and ulimits from the daemon defaults.
    pub(crate) fn with_daemon_defaults(
        &self,
        mut body: ContainerCreateBody,
    ) -> ContainerCreateBody {
        if let Some(s) = self.live.get() {
            if !s.log_opts.is_empty() {
                apply_log_defaults(&mut body, &s.log_opts);
            }
            if !s.default_ulimits.is_empty() {
                apply_ulimit_defaults(&mut body, &s.default_ulimits);
            }
        }
        body
    }

    /// Emits moby's `daemon reload` event (actor: the daemon ID; `name` is the host name).
    pub fn emit_daemon_reload(&self, mut attributes: HashMap<String, String>) {
        if let Ok(name) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
            attributes.insert("name".into(), name.trim().to_string());
        }
        self.events.emit(
            EventMessageTypeEnum::DAEMON,
            "reload",
            self.id.clone(),
            attributes,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use api_types::models::HostConfig;

    fn defaults() -> BTreeMap<String, String> {
        BTreeMap::from([
            ("max-size".to_string(), "10m".to_string()),
            ("max-file".to_string(), "3".to_string()),
        ])
    }

    #[test]
    fn ulimit_defaults_fill_only_names_the_container_leaves_out() {
        let ul = |n: &str, v: i64| ResourcesUlimits {
            name: Some(n.into()),
            soft: Some(v),
            hard: Some(v),
        };
        let mut body = ContainerCreateBody {
            host_config: Some(HostConfig {
                ulimits: Some(vec![ul("nofile", 10)]),
                ..Default::default()
            }),
            ..Default::default()
        };
        apply_ulimit_defaults(&mut body, &[ul("nofile", 99), ul("nproc", 50)]);
        let got = body.host_config.unwrap().ulimits.unwrap();
        assert_eq!(got, vec![ul("nofile", 10), ul("nproc", 50)]);
    }

    #[test]
    fn containers_without_options_get_the_defaults() {
        let mut body = ContainerCreateBody::default();
        apply_log_defaults(&mut body, &defaults());
        let log = body.host_config.unwrap().log_config.unwrap();
        assert_eq!(log.typ.as_deref(), Some("json-file"));
        let c = log.config.unwrap();
        assert_eq!(c["max-size"], "10m");
        assert_eq!(c["max-file"], "3");
    }

    #[test]
    fn own_options_win_per_key() {
        let mut body = ContainerCreateBody {
            host_config: Some(HostConfig {
                log_config: Some(HostConfigLogConfig {
                    typ: Some("json-file".into()),
                    config: Some(HashMap::from([("max-size".into(), "1k".into())])),
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        apply_log_defaults(&mut body, &defaults());
        let c = body
            .host_config
            .unwrap()
            .log_config
            .unwrap()
            .config
            .unwrap();
        assert_eq!(c["max-size"], "1k");
        assert_eq!(c["max-file"], "3");
    }

    #[test]
    fn other_drivers_are_left_alone() {
        let mut body = ContainerCreateBody {
            host_config: Some(HostConfig {
                log_config: Some(HostConfigLogConfig {
                    typ: Some("none".into()),
                    config: None,
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        apply_log_defaults(&mut body, &defaults());
        let log = body.host_config.unwrap().log_config.unwrap();
        assert!(log.config.is_none());
    }
}
