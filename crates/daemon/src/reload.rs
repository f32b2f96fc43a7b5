//! SIGHUP: re-reads daemon.json (with the flags berthd started with) and applies what dockerd
//! reloads: `debug` and `log-level` (the log filter), `labels`, `registry-mirrors`,
//! `insecure-registries`, `max-concurrent-downloads` and `-uploads`, and `log-opts` for new
//! containers. Changed keys that need a restart are logged as such. A file that does not
//! validate is logged and changes nothing. A successful reload emits `daemon reload`.
//!
//! Owns the comparison and the order of application; parsing is config.rs's, the settings
//! themselves are the engine's.

use std::collections::HashMap;
use std::sync::Mutex;

use engine::{Engine, LiveSettings, RegistrySettings};

use crate::config::{Cli, Config};

/// Sets the log filter (`debug`, `info`, …); an error text when it cannot.
pub type FilterSetter = Box<dyn Fn(&str) -> std::result::Result<(), String> + Send + Sync>;

/// What a reload needs: the command line berthd started with and the configuration in force.
pub struct Reloader {
    cli: Cli,
    current: Mutex<Config>,
    set_filter: FilterSetter,
}

impl std::fmt::Debug for Reloader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reloader").finish_non_exhaustive()
    }
}

/// The live settings a configuration gives the engine.
pub fn live_settings(c: &Config) -> LiveSettings {
    LiveSettings {
        debug: c.debug,
        labels: c.labels.clone(),
        log_opts: c.log_opts.clone(),
        default_ulimits: c
            .default_ulimits
            .iter()
            .map(|u| api_types::models::ResourcesUlimits {
                name: Some(u.name.clone()),
                soft: Some(u.soft),
                hard: Some(u.hard),
            })
            .collect(),
    }
}

/// The registry settings a configuration gives the engine.
pub fn registry_settings(c: &Config) -> RegistrySettings {
    RegistrySettings {
        mirrors: c.registry_mirrors.clone(),
        certs_dir: Some(c.certs_dir.clone()),
        max_concurrent_downloads: c.max_concurrent_downloads.unwrap_or(0),
        max_concurrent_uploads: c.max_concurrent_uploads.unwrap_or(0),
    }
}

/// Applies the reloadable settings of `c` to the engine (also at start).
pub fn apply(engine: &Engine, c: &Config) {
    engine.set_insecure_registries(c.insecure_registries.clone());
    engine.set_registry_settings(registry_settings(c));
    engine.set_live_settings(live_settings(c));
}

/// Keys whose change only takes effect after a restart.
pub fn needs_restart(old: &Config, new: &Config) -> Vec<&'static str> {
    let mut keys = Vec::new();
    let mut cmp = |key, changed: bool| {
        if changed {
            keys.push(key);
        }
    };
    cmp("hosts", old.hosts != new.hosts);
    cmp("data-root", old.data_root != new.data_root);
    cmp("exec-root", old.exec_root != new.exec_root);
    cmp("pidfile", old.pidfile != new.pidfile);
    cmp("tls", old.tls != new.tls);
    cmp("certs-dir", old.certs_dir != new.certs_dir);
    cmp("metrics-addr", old.metrics_addr != new.metrics_addr);
    cmp("network", old.network != new.network);
    keys
}

/// moby's `daemon reload` attributes for a configuration.
pub fn event_attributes(c: &Config) -> HashMap<String, String> {
    let json = |v: &[String]| serde_json::to_string(v).unwrap_or_default();
    let count = |n: Option<usize>| n.unwrap_or(3).to_string();
    HashMap::from([
        ("debug".to_string(), c.debug.to_string()),
        ("labels".to_string(), json(&c.labels)),
        ("registry-mirrors".to_string(), json(&c.registry_mirrors)),
        (
            "insecure-registries".to_string(),
            json(&c.insecure_registries),
        ),
        (
            "max-concurrent-downloads".to_string(),
            count(c.max_concurrent_downloads),
        ),
        (
            "max-concurrent-uploads".to_string(),
            count(c.max_concurrent_uploads),
        ),
    ])
}

impl Reloader {
    /// A reloader for a daemon started with `cli` and running with `current`.
    pub fn new(cli: Cli, current: Config, set_filter: FilterSetter) -> Self {
        Self {
            cli,
            current: Mutex::new(current),
            set_filter,
        }
    }

    /// Re-reads the configuration and applies it; on error nothing changes. Returns whether
    /// the new configuration was applied.
    pub fn reload(&self, engine: &Engine) -> bool {
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        let Some(new) = self.prepare() else {
            return false;
        };
        apply(engine, &new);
        let restart = needs_restart(&current, &new);
        if !restart.is_empty() {
            tracing::warn!(
                keys = %restart.join(", "),
                "changed configuration takes effect only after a restart"
            );
        }
        engine.emit_daemon_reload(event_attributes(&new));
        tracing::info!(
            debug = new.debug,
            labels = ?new.labels,
            registry_mirrors = ?new.registry_mirrors,
            insecure_registries = ?new.insecure_registries,
            "configuration reloaded"
        );
        // What needs a restart stays as it runs now.
        let mut kept = new;
        kept.hosts = current.hosts.clone();
        kept.data_root = current.data_root.clone();
        kept.exec_root = current.exec_root.clone();
        kept.pidfile = current.pidfile.clone();
        kept.tls = current.tls.clone();
        kept.certs_dir = current.certs_dir.clone();
        kept.metrics_addr = current.metrics_addr.clone();
        kept.network = current.network.clone();
        *current = kept;
        true
    }
}

impl Reloader {
    /// The new configuration, with the log filter already set to it; None (logged, nothing
    /// changed) when the file or the merge with the flags does not validate.
    fn prepare(&self) -> Option<Config> {
        let failed = |e: &dyn std::fmt::Display| {
            tracing::error!(error = %e, "configuration reload failed; nothing changed");
        };
        let new = Config::resolve(self.cli.clone())
            .inspect_err(|e| failed(e))
            .ok()?;
        (self.set_filter)(new.log_level.as_filter())
            .inspect_err(|e| failed(e))
            .ok()?;
        Some(new)
    }
}

/// Reloads on every SIGHUP until the process ends (a task on the current runtime).
pub fn on_sighup(
    reloader: std::sync::Arc<Reloader>,
    engine: std::sync::Arc<Engine>,
) -> std::io::Result<()> {
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            tracing::info!("got SIGHUP: reloading the configuration");
            let (r, e) = (
                std::sync::Arc::clone(&reloader),
                std::sync::Arc::clone(&engine),
            );
            // Reading the file is blocking work.
            let _ = tokio::task::spawn_blocking(move || r.reload(&e)).await;
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn config(args: &[&str]) -> Config {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("daemon.json");
        std::fs::write(&path, "{}").unwrap();
        let mut v = vec!["berthd", "--config-file", path.to_str().unwrap()];
        v.extend_from_slice(args);
        Config::resolve(Cli::try_parse_from(v).unwrap()).unwrap()
    }

    #[test]
    fn restart_keys_are_named() {
        let old = config(&[]);
        let new = config(&["--data-root", "/elsewhere", "--mtu", "1400", "-D"]);
        assert_eq!(needs_restart(&old, &new), vec!["data-root", "network"]);
        let new = config(&[
            "--label",
            "a=b",
            "--registry-mirror",
            "https://m.example.com",
        ]);
        assert!(needs_restart(&old, &new).is_empty());
    }

    #[test]
    fn event_attributes_as_moby() {
        let c = config(&[
            "-D",
            "--label",
            "a=b",
            "--insecure-registry",
            "r:5000",
            "--max-concurrent-uploads",
            "7",
        ]);
        let a = event_attributes(&c);
        assert_eq!(a["debug"], "true");
        assert_eq!(a["labels"], r#"["a=b"]"#);
        assert_eq!(a["insecure-registries"], r#"["r:5000"]"#);
        assert_eq!(a["registry-mirrors"], "[]");
        assert_eq!(a["max-concurrent-downloads"], "3");
        assert_eq!(a["max-concurrent-uploads"], "7");
        let live = live_settings(&c);
        assert!(live.debug);
        assert_eq!(registry_settings(&c).max_concurrent_uploads, 7);
    }

    #[test]
    fn a_failed_reload_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("daemon.json");
        std::fs::write(&path, r#"{"labels":["a=b"]}"#).unwrap();
        let cli = Cli::try_parse_from(["berthd", "--config-file", path.to_str().unwrap()]).unwrap();
        let start = Config::resolve(cli.clone()).unwrap();
        let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let seen = std::sync::Arc::clone(&calls);
        let r = Reloader::new(
            cli,
            start.clone(),
            Box::new(move |_| {
                seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                Ok(())
            }),
        );
        std::fs::write(&path, "{broken").unwrap();
        assert!(r.prepare().is_none());
        std::fs::write(&path, r#"{"labels":["a=b"],"storage-driver":"vfs"}"#).unwrap();
        assert!(r.prepare().is_none());
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 0);
        assert_eq!(*r.current.lock().unwrap(), start);
        std::fs::write(&path, r#"{"labels":["c=d"],"debug":true}"#).unwrap();
        let new = r.prepare().unwrap();
        assert_eq!(new.labels, vec!["c=d"]);
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);
    }
}
