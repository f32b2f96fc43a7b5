//! Manifests as registries serve them: Docker schema2 and OCI image manifests, Docker manifest
//! lists and OCI indexes, and picking one entry of a list for a platform.
//!
//! Pure parsing: no I/O, no digests checked here (the session verifies bytes before parsing).

use serde::Deserialize;
use storage::Digest;

use crate::{RegistryError, Result};

#[cfg(test)]
pub(crate) const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub(crate) const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
#[cfg(test)]
pub(crate) const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub(crate) const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";
const DOCKER_SCHEMA1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";

/// The `Accept` header of a manifest request: every kind this client can use.
pub(crate) const ACCEPT: &str = "application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json";

/// A platform: `os/arch[/variant]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Platform {
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub variant: Option<String>,
}

impl Platform {
    /// The host's platform as Docker names it (`linux/amd64`, `linux/arm64/v8`…).
    pub fn host() -> Self {
        let (architecture, variant) = match std::env::consts::ARCH {
            "x86_64" => ("amd64", None),
            "aarch64" => ("arm64", Some("v8")),
            "x86" => ("386", None),
            "arm" => ("arm", Some("v7")),
            "powerpc64" => ("ppc64le", None),
            "s390x" => ("s390x", None),
            "riscv64" => ("riscv64", None),
            other => (other, None),
        };
        Self {
            os: "linux".into(),
            architecture: architecture.into(),
            variant: variant.map(String::from),
        }
    }

    /// Parses `os[/arch[/variant]]` (Docker's `--platform`), normalising arch aliases.
    pub fn parse(s: &str) -> Result<Self> {
        let bad = || {
            RegistryError::InvalidArgument(format!(
                "\"{s}\": unknown operating system or architecture: invalid argument"
            ))
        };
        let parts: Vec<String> = s.split('/').map(str::to_ascii_lowercase).collect();
        if parts.iter().any(String::is_empty) || parts.len() > 3 {
            return Err(bad());
        }
        let os = parts[0].clone();
        let host = Self::host();
        let (architecture, mut variant) = match parts.get(1) {
            None => (host.architecture, host.variant),
            Some(a) => {
                let a = match a.as_str() {
                    "x86_64" | "x86-64" => "amd64",
                    "aarch64" => "arm64",
                    "i386" => "386",
                    "armhf" => "arm",
                    other => other,
                };
                (a.to_string(), parts.get(2).cloned())
            }
        };
        if architecture == "arm64" && variant.is_none() {
            variant = Some("v8".into());
        }
        Ok(Self {
            os,
            architecture,
            variant,
        })
    }

    /// Whether a list entry's platform is this one. A missing variant in the entry matches
    /// the default variant (arm64 → v8).
    fn matches(&self, other: &Platform) -> bool {
        if self.os != other.os || self.architecture != other.architecture {
            return false;
        }
        let theirs = other
            .variant
            .clone()
            .or_else(|| (other.architecture == "arm64").then(|| "v8".to_string()));
        match (&self.variant, theirs) {
            (Some(a), Some(b)) => *a == b,
            (Some(_), None) => false,
            (None, _) => true,
        }
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant
            && !(self.architecture == "arm64" && v == "v8")
        {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// A content descriptor.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Descriptor {
    #[serde(rename = "mediaType", default)]
    pub(crate) media_type: String,
    pub(crate) digest: Digest,
    pub(crate) size: u64,
    #[serde(default)]
    pub(crate) platform: Option<Platform>,
    #[serde(default)]
    pub(crate) annotations: std::collections::BTreeMap<String, String>,
}

/// What a manifest request answered.
#[derive(Debug, Clone)]
pub(crate) enum Manifest {
    /// One image: its config and layers, bottom first.
    Image {
        config: Descriptor,
        layers: Vec<Descriptor>,
    },
    /// A manifest list / OCI index.
    Index { manifests: Vec<Descriptor> },
}

#[derive(Deserialize)]
struct Raw {
    #[serde(rename = "schemaVersion", default)]
    schema_version: u32,
    #[serde(rename = "mediaType", default)]
    media_type: Option<String>,
    #[serde(default)]
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Option<Vec<Descriptor>>,
    #[serde(default)]
    manifests: Option<Vec<Descriptor>>,
}

/// Parses a manifest; `content_type` is the response's `Content-Type` (may be empty).
pub(crate) fn parse(bytes: &[u8], content_type: &str) -> Result<Manifest> {
    let ct = content_type.split(';').next().unwrap_or("").trim();
    if ct == DOCKER_SCHEMA1 || ct == DOCKER_SCHEMA1_SIGNED {
        return Err(schema1());
    }
    let raw: Raw = serde_json::from_slice(bytes)
        .map_err(|e| RegistryError::Protocol(format!("invalid manifest: {e}")))?;
    if raw.schema_version == 1 {
        return Err(schema1());
    }
    let media = raw.media_type.as_deref().unwrap_or(ct);
    let is_index = matches!(media, DOCKER_LIST | OCI_INDEX)
        || (raw.manifests.is_some() && raw.config.is_none());
    if is_index {
        return Ok(Manifest::Index {
            manifests: raw.manifests.unwrap_or_default(),
        });
    }
    let config = raw
        .config
        .ok_or_else(|| RegistryError::Protocol("invalid manifest: no config".into()))?;
    Ok(Manifest::Image {
        config,
        layers: raw.layers.unwrap_or_default(),
    })
}

fn schema1() -> RegistryError {
    RegistryError::Protocol("support for Docker Image Format v1 and Docker Image manifest version 2, schema 1 has been removed. Suggest the author of the image to upgrade the image to the OCI Format, or Docker Image manifest v2, schema 2.".into())
}

/// Picks the entry of an index for `want`; attestation manifests never match.
pub(crate) fn select<'a>(manifests: &'a [Descriptor], want: &Platform) -> Result<&'a Descriptor> {
    let usable = manifests.iter().filter(|d| {
        d.annotations
            .get("vnd.docker.reference.type")
            .map(String::as_str)
            != Some("attestation-manifest")
    });
    let mut best: Option<&Descriptor> = None;
    for d in usable {
        let Some(p) = &d.platform else { continue };
        if want.matches(p) {
            // Prefer an exact variant match over a variant-less entry.
            if want.variant.is_none() || p.variant == want.variant {
                return Ok(d);
            }
            best = best.or(Some(d));
        }
    }
    best.ok_or_else(|| RegistryError::NoMatchingPlatform {
        platform: want.to_string(),
    })
}

/// The only part of the image config the client reads: the layers' uncompressed digests.
#[derive(Debug, Deserialize)]
pub(crate) struct ConfigRootFs {
    pub(crate) rootfs: RootFs,
}

#[derive(Debug, Deserialize)]
pub(crate) struct RootFs {
    #[serde(default)]
    pub(crate) diff_ids: Vec<Digest>,
}

/// Whether a layer media type is one this client can unpack.
pub(crate) fn is_layer(media_type: &str) -> bool {
    media_type.is_empty()
        || media_type.starts_with("application/vnd.docker.image.rootfs.")
        || media_type.starts_with("application/vnd.oci.image.layer.")
}

#[cfg(test)]
mod tests {
    use super::*;

    const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const D2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";
    const D3: &str = "sha256:3333333333333333333333333333333333333333333333333333333333333333";

    #[test]
    fn docker_schema2() {
        let m = format!(
            r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST}",
            "config":{{"mediaType":"application/vnd.docker.container.image.v1+json","size":1469,"digest":"{D1}"}},
            "layers":[{{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":2152262,"digest":"{D2}"}}]}}"#
        );
        let Manifest::Image { config, layers } = parse(m.as_bytes(), "").unwrap() else {
            panic!("not an image manifest")
        };
        assert_eq!(config.digest.to_string(), D1);
        assert_eq!(config.size, 1469);
        assert_eq!(layers.len(), 1);
        assert!(is_layer(&layers[0].media_type));
        assert_eq!(layers[0].size, 2_152_262);
    }

    #[test]
    fn oci_manifest_without_media_type_field() {
        let m = format!(
            r#"{{"schemaVersion":2,"config":{{"mediaType":"application/vnd.oci.image.config.v1+json","size":2,"digest":"{D1}"}},"layers":[]}}"#
        );
        assert!(matches!(
            parse(m.as_bytes(), OCI_MANIFEST).unwrap(),
            Manifest::Image { .. }
        ));
    }

    #[test]
    fn index_and_platform_selection() {
        let m = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[
              {{"mediaType":"{OCI_MANIFEST}","digest":"{D1}","size":10,"platform":{{"architecture":"arm64","os":"linux","variant":"v8"}}}},
              {{"mediaType":"{OCI_MANIFEST}","digest":"{D2}","size":10,"platform":{{"architecture":"amd64","os":"linux"}}}},
              {{"mediaType":"{OCI_MANIFEST}","digest":"{D3}","size":10,"platform":{{"architecture":"unknown","os":"unknown"}},
                "annotations":{{"vnd.docker.reference.type":"attestation-manifest"}}}}]}}"#
        );
        let Manifest::Index { manifests } = parse(m.as_bytes(), "").unwrap() else {
            panic!("not an index")
        };
        let amd = Platform::parse("linux/amd64").unwrap();
        assert_eq!(select(&manifests, &amd).unwrap().digest.to_string(), D2);
        let arm = Platform::parse("linux/arm64").unwrap();
        assert_eq!(select(&manifests, &arm).unwrap().digest.to_string(), D1);
        let arm8 = Platform::parse("linux/aarch64/v8").unwrap();
        assert_eq!(select(&manifests, &arm8).unwrap().digest.to_string(), D1);
        let s390 = Platform::parse("linux/s390x").unwrap();
        assert_eq!(
            select(&manifests, &s390).unwrap_err().to_string(),
            "no matching manifest for linux/s390x in the manifest list entries"
        );
        let unknown = Platform::parse("unknown/unknown").unwrap();
        assert!(
            select(&manifests, &unknown).is_err(),
            "attestations never match"
        );
    }

    #[test]
    fn docker_list_by_content_type_and_schema1() {
        let m = r#"{"schemaVersion":2,"manifests":[]}"#.to_string();
        assert!(matches!(
            parse(m.as_bytes(), DOCKER_LIST).unwrap(),
            Manifest::Index { .. }
        ));
        let err = parse(b"{}", DOCKER_SCHEMA1_SIGNED).unwrap_err();
        assert!(err.to_string().contains("schema 1 has been removed"));
        assert!(parse(br#"{"schemaVersion":1}"#, "").is_err());
        assert!(parse(b"not json", "").is_err());
    }

    #[test]
    fn platform_strings() {
        assert_eq!(
            Platform::parse("linux/amd64").unwrap().to_string(),
            "linux/amd64"
        );
        assert_eq!(
            Platform::parse("linux/arm/v7").unwrap().to_string(),
            "linux/arm/v7"
        );
        assert_eq!(
            Platform::parse("Linux/x86_64").unwrap().to_string(),
            "linux/amd64"
        );
        assert!(Platform::parse("linux//x").is_err());
        assert!(Platform::parse("a/b/c/d").is_err());
        assert_eq!(Platform::host().os, "linux");
    }

    #[test]
    fn config_diff_ids() {
        let c: ConfigRootFs = serde_json::from_str(&format!(
            r#"{{"architecture":"amd64","rootfs":{{"type":"layers","diff_ids":["{D1}","{D2}"]}}}}"#
        ))
        .unwrap();
        assert_eq!(c.rootfs.diff_ids.len(), 2);
    }
}
