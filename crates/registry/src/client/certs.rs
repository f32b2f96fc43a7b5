//! Per-registry TLS material from a certs.d directory, laid out as Docker's
//! `/etc/docker/certs.d`: `<dir>/<host[:port]>/*.crt` are CA roots added to the built-in ones,
//! `*.cert` + `*.key` (same stem) a client certificate pair.
//!
//! Owns reading those files and building one HTTP client per registry host that has such a
//! directory, cached until the directory's listing changes (a CA dropped in takes effect on the
//! next pull, as with Docker). Knows nothing of sessions, authentication or pulls.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use super::Client;
use crate::{RegistryError, Result};

/// What a host's directory held when its clients were built: (name, size, mtime) per file.
type Stamp = Vec<(String, u64, Option<SystemTime>)>;

/// A host's verified and unverified clients, with the stamp they were built from.
#[derive(Debug)]
struct Built {
    stamp: Stamp,
    verified: reqwest::Client,
    unverified: reqwest::Client,
}

/// The certs.d directory and the clients built from it.
#[derive(Debug, Default)]
pub(crate) struct HostCerts {
    dir: Option<PathBuf>,
    cache: Mutex<HashMap<String, Built>>,
}

/// A host's TLS material, read from its directory.
#[derive(Default)]
struct Material {
    roots: Vec<reqwest::Certificate>,
    identity: Option<reqwest::Identity>,
}

/// Whether `host` can name a directory under the certs dir (no separators, no `.`/`..`).
fn usable_host(host: &str) -> bool {
    !host.is_empty() && host != "." && host != ".." && !host.contains(['/', '\\', '\0'])
}

impl HostCerts {
    pub(crate) fn new(dir: Option<PathBuf>) -> Self {
        Self {
            dir,
            cache: Mutex::default(),
        }
    }

    /// The directory for `host` when it exists.
    pub(crate) fn host_dir(&self, host: &str) -> Option<PathBuf> {
        let dir = self.dir.as_ref()?.join(host);
        (usable_host(host) && dir.is_dir()).then_some(dir)
    }

    /// The client for `host` built from its directory (`None`: it has none, use the shared
    /// clients). `insecure`: the server's certificate is not verified (client certificates are
    /// still presented).
    fn client(&self, host: &str, insecure: bool) -> Result<Option<reqwest::Client>> {
        let Some(dir) = self.host_dir(host) else {
            return Ok(None);
        };
        let stamp = stamp(&dir)?;
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(b) = cache.get(host)
            && b.stamp == stamp
        {
            return Ok(Some(pick(b, insecure)));
        }
        let m = read_dir(&dir)?;
        let build = |unverified: bool| {
            let mut b = super::builder();
            for r in &m.roots {
                b = b.add_root_certificate(r.clone());
            }
            if let Some(id) = &m.identity {
                b = b.identity(id.clone());
            }
            b.danger_accept_invalid_certs(unverified)
                .build()
                .map_err(|e| RegistryError::Other(format!("registry client for {host}: {e}")))
        };
        let built = Built {
            stamp,
            verified: build(false)?,
            unverified: build(true)?,
        };
        let client = pick(&built, insecure);
        cache.insert(host.to_string(), built);
        Ok(Some(client))
    }
}

fn pick(b: &Built, insecure: bool) -> reqwest::Client {
    if insecure {
        b.unverified.clone()
    } else {
        b.verified.clone()
    }
}

fn io_err(path: &Path, e: &std::io::Error) -> RegistryError {
    RegistryError::Other(format!("{}: {e}", path.display()))
}

/// The names, sizes and times of the files in `dir`, sorted.
fn stamp(dir: &Path) -> Result<Stamp> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| io_err(dir, &e))? {
        let entry = entry.map_err(|e| io_err(dir, &e))?;
        let meta = entry.metadata().ok();
        out.push((
            entry.file_name().to_string_lossy().into_owned(),
            meta.as_ref().map_or(0, std::fs::Metadata::len),
            meta.and_then(|m| m.modified().ok()),
        ));
    }
    out.sort();
    Ok(out)
}

/// Reads a host directory as moby's `ReadCertsDirectory` does: every `.crt` adds roots, every
/// `.cert` needs its `.key` and every `.key` its `.cert` (Docker's messages when one is missing).
fn read_dir(dir: &Path) -> Result<Material> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| io_err(dir, &e))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let has = |n: &str| names.iter().any(|x| x == n);
    let read = |name: &str| {
        let p = dir.join(name);
        std::fs::read(&p).map_err(|e| io_err(&p, &e))
    };
    let bad = |name: &str, e: &dyn std::fmt::Display| {
        RegistryError::Other(format!("{}: {e}", dir.join(name).display()))
    };
    let mut m = Material::default();
    for name in &names {
        if name.ends_with(".crt") {
            let pem = read(name)?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| bad(name, &e))?;
            if certs.is_empty() {
                return Err(bad(name, &"no certificate found"));
            }
            m.roots.extend(certs);
        } else if let Some(stem) = name.strip_suffix(".cert") {
            let key = format!("{stem}.key");
            if !has(&key) {
                return Err(RegistryError::InvalidArgument(format!(
                    "missing key {key} for client certificate {name}. CA certificates must use the extension .crt"
                )));
            }
            if m.identity.is_some() {
                tracing::warn!(dir = %dir.display(), cert = %name, "only the first client certificate is used");
                continue;
            }
            let mut pem = read(name)?;
            pem.push(b'\n');
            pem.extend(read(&key)?);
            m.identity = Some(reqwest::Identity::from_pem(&pem).map_err(|e| bad(name, &e))?);
        } else if let Some(stem) = name.strip_suffix(".key") {
            let cert = format!("{stem}.cert");
            if !has(&cert) {
                return Err(RegistryError::InvalidArgument(format!(
                    "missing client certificate {cert} for key {name}"
                )));
            }
        }
    }
    Ok(m)
}

impl Client {
    /// Whether `host` has a certs.d directory (berth then treats a loopback registry as
    /// secure: the operator gave it a CA or a client certificate to use).
    pub(crate) fn has_certs(&self, host: &str) -> bool {
        self.certs.host_dir(host).is_some()
    }

    /// The HTTP client for `host`: one built from its certs.d directory, or the shared
    /// verified / unverified one.
    pub(crate) fn transport(&self, host: &str, insecure: bool) -> Result<reqwest::Client> {
        if let Some(c) = self.certs.client(host, insecure)? {
            return Ok(c);
        }
        Ok(if insecure {
            self.insecure_http.clone()
        } else {
            self.http.clone()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_stay_inside_the_dir() {
        assert!(usable_host("127.0.0.1:5000"));
        assert!(usable_host("registry.example.com"));
        assert!(!usable_host(".."));
        assert!(!usable_host("a/b"));
        assert!(!usable_host(""));
    }

    #[test]
    fn a_cert_needs_its_key_and_a_key_its_cert() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("client.cert"), "x").unwrap();
        let e = read_dir(dir.path()).err().unwrap().to_string();
        assert_eq!(
            e,
            "missing key client.key for client certificate client.cert. CA certificates must use the extension .crt"
        );
        std::fs::remove_file(dir.path().join("client.cert")).unwrap();
        std::fs::write(dir.path().join("other.key"), "x").unwrap();
        let e = read_dir(dir.path()).err().unwrap().to_string();
        assert_eq!(e, "missing client certificate other.cert for key other.key");
    }

    #[test]
    fn a_bad_ca_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("ca.crt"),
            "-----BEGIN CERTIFICATE-----\nnope\n",
        )
        .unwrap();
        let e = read_dir(dir.path()).err().unwrap().to_string();
        assert!(e.contains("ca.crt"), "{e}");
    }

    #[test]
    fn no_dir_means_the_shared_clients() {
        let dir = tempfile::tempdir().unwrap();
        let c = HostCerts::new(Some(dir.path().to_path_buf()));
        assert!(c.client("127.0.0.1:5000", false).unwrap().is_none());
        std::fs::create_dir(dir.path().join("127.0.0.1:5000")).unwrap();
        assert!(c.client("127.0.0.1:5000", false).unwrap().is_some());
        assert!(HostCerts::new(None).host_dir("x").is_none());
    }
}
