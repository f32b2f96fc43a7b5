//! `GET /system/df`: images with their container counts, containers with their sizes.
//!
//! A container's `SizeRw` is the bytes in its overlay upper directory
//! (`<data-root>/containers/<id>/diff`, walked without following symlinks, hard links once);
//! `SizeRootFs` adds its image's size. Volumes come from `volumes_ops` (local volumes without
//! driver options, with `UsageData`); the build cache does not exist yet.

use std::collections::HashMap;

use serde_json::Value;

use crate::{DiskUsage, Engine, Filters, Result};

/// Which sections `system df` asked for (`type=` at API ≥ 1.42; all when none is given).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DfSections {
    pub images: bool,
    pub containers: bool,
    pub volumes: bool,
    pub build_cache: bool,
}

impl Default for DfSections {
    fn default() -> Self {
        Self {
            images: true,
            containers: true,
            volumes: true,
            build_cache: true,
        }
    }
}

impl DfSections {
    /// From the `type` query values (`container`, `image`, `volume`, `build-cache`); unknown
    /// values are refused as moby does.
    pub fn from_types(types: &[String]) -> Result<Self> {
        if types.is_empty() {
            return Ok(Self::default());
        }
        let mut s = Self {
            images: false,
            containers: false,
            volumes: false,
            build_cache: false,
        };
        for t in types {
            match t.as_str() {
                "container" => s.containers = true,
                "image" => s.images = true,
                "volume" => s.volumes = true,
                "build-cache" => s.build_cache = true,
                other => {
                    return Err(crate::EngineError::InvalidRequest(format!(
                        "unknown object type: {other}"
                    )));
                }
            }
        }
        Ok(s)
    }
}

/// What `system df` shows: image usage plus the containers with their sizes.
#[derive(Debug, Clone)]
pub struct SystemDf {
    /// Images (with `Containers` counted) and the unique layers' size; `None` if not asked.
    pub images: Option<DiskUsage>,
    /// Every container, as `GET /containers/json?all=1&size=1` lists it; `None` if not asked.
    pub containers: Option<Vec<Value>>,
    /// Local volumes with `UsageData{Size,RefCount}`; `None` if not asked.
    pub volumes: Option<Vec<Value>>,
}

impl Engine {
    /// `GET /system/df`.
    pub async fn system_df(&self, sections: DfSections) -> Result<SystemDf> {
        let images = if sections.images {
            let mut usage = self.disk_usage().await?;
            let mut users: HashMap<String, i64> = HashMap::new();
            for r in self.containers.records() {
                *users.entry(r.image_id.clone()).or_default() += 1;
            }
            for i in &mut usage.images {
                i.containers = users.get(&i.id).copied().unwrap_or(0);
            }
            Some(usage)
        } else {
            None
        };
        let containers = if sections.containers {
            Some(
                self.containers_list(true, None, true, &Filters::default())
                    .await?,
            )
        } else {
            None
        };
        let volumes = if sections.volumes {
            Some(self.volumes_df().await?)
        } else {
            None
        };
        Ok(SystemDf {
            images,
            containers,
            volumes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_from_types() {
        assert_eq!(DfSections::from_types(&[]).unwrap(), DfSections::default());
        let s = DfSections::from_types(&["container".into()]).unwrap();
        assert!(s.containers && !s.images && !s.volumes && !s.build_cache);
        assert!(DfSections::from_types(&["bogus".into()]).is_err());
    }
}
