//! The daemon's registry settings beyond insecure registries: Docker Hub mirrors
//! (`registry-mirrors`) and the certs.d directory, handed to the registry client, and the
//! `RegistryConfig` section of `docker info` (insecure registries, index configs, mirrors) as
//! moby reports it.
//!
//! Owns only what the settings are and how `/info` shows them; the client does the work.

use std::collections::HashMap;
use std::path::PathBuf;

use api_types::models::{IndexInfo, RegistryServiceConfig};
use registry::client::ClientOptions;

use crate::Engine;

/// Registry settings the daemon passes at start.
#[derive(Debug, Clone, Default)]
pub struct RegistrySettings {
    /// Docker Hub mirrors, validated and normalised (`https://mirror.example.com/`).
    pub mirrors: Vec<String>,
    /// The certs.d directory (`--certs-dir`, default `/etc/berth/certs.d`).
    pub certs_dir: Option<PathBuf>,
    /// Layers one pull downloads at a time (`max-concurrent-downloads`; 0: the default).
    pub max_concurrent_downloads: usize,
    /// Layers one push uploads at a time (`max-concurrent-uploads`; 0: the default).
    pub max_concurrent_uploads: usize,
}

impl RegistrySettings {
    /// The client options these settings fill.
    pub(crate) fn options(&self) -> ClientOptions {
        ClientOptions {
            mirrors: self.mirrors.clone(),
            certs_dir: self.certs_dir.clone(),
            max_concurrent_downloads: self.max_concurrent_downloads,
            max_concurrent_uploads: self.max_concurrent_uploads,
            ..ClientOptions::default()
        }
    }
}

/// Whether `s` is an address range (`10.0.0.0/8`, `fd00::/8`), as moby splits
/// `insecure-registries` into CIDRs and registry names.
fn is_cidr(s: &str) -> bool {
    s.split_once('/').is_some_and(|(ip, bits)| {
        ip.parse::<std::net::IpAddr>().is_ok() && bits.parse::<u8>().is_ok()
    })
}

/// moby's `RegistryConfig`: the default insecure ranges (`::1/128`, `127.0.0.0/8`) plus the
/// configured ones, every named insecure registry and `docker.io` (with its mirrors) under
/// `IndexConfigs`.
fn service_config(insecure: &[String], mirrors: &[String]) -> RegistryServiceConfig {
    let mut cidrs = vec!["::1/128".to_string(), "127.0.0.0/8".to_string()];
    let mut index = HashMap::new();
    for r in insecure {
        if is_cidr(r) {
            if !cidrs.contains(r) {
                cidrs.push(r.clone());
            }
        } else {
            index.insert(
                r.clone(),
                IndexInfo {
                    name: Some(r.clone()),
                    mirrors: Some(Vec::new()),
                    secure: Some(false),
                    official: Some(false),
                },
            );
        }
    }
    index.insert(
        "docker.io".to_string(),
        IndexInfo {
            name: Some("docker.io".to_string()),
            mirrors: Some(mirrors.to_vec()),
            secure: Some(true),
            official: Some(true),
        },
    );
    RegistryServiceConfig {
        insecure_registry_cidrs: Some(cidrs),
        index_configs: Some(index),
        mirrors: Some(mirrors.to_vec()),
    }
}

impl Engine {
    /// Docker Hub mirrors, the certs.d directory and transfer parallelism. Takes effect for
    /// the next pull or push (a reload changes them; the certs.d directory stays as the first
    /// client was built with).
    pub fn set_registry_settings(&self, settings: RegistrySettings) {
        *self
            .registries
            .settings
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = settings;
        self.registries.refresh();
    }

    /// The `RegistryConfig` section of `GET /info`.
    pub(crate) fn registry_service_config(&self) -> RegistryServiceConfig {
        let insecure = self
            .registries
            .insecure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let mirrors = self
            .registries
            .settings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .mirrors
            .clone();
        service_config(&insecure, &mirrors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_lists_registries_as_moby() {
        let c = service_config(
            &["10.1.0.0/16".into(), "reg.example.com:5000".into()],
            &["https://mirror.example.com/".into()],
        );
        assert_eq!(
            c.insecure_registry_cidrs.unwrap(),
            vec!["::1/128", "127.0.0.0/8", "10.1.0.0/16"]
        );
        let index = c.index_configs.unwrap();
        assert_eq!(index["reg.example.com:5000"].secure, Some(false));
        let hub = &index["docker.io"];
        assert_eq!(hub.official, Some(true));
        assert_eq!(
            hub.mirrors.as_deref().unwrap(),
            ["https://mirror.example.com/"]
        );
        assert_eq!(c.mirrors.unwrap(), vec!["https://mirror.example.com/"]);
    }
}
