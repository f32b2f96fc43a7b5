//! Named volumes with Docker's `local` driver: one directory per volume under
//! `<data-root>/volumes/<name>/`, its data in `_data`, its record in `volume.json`.
//!
//! A volume created with driver options (`type`, `device`, `o`: a tmpfs, a bind of a host
//! directory, an NFS export…) is mounted on `_data` when its first user mounts it and unmounted
//! when the last one lets go; a volume still mounted when berthd starts again is recognised as
//! mounted. Mount calls go through `linux::mount`.
//!
//! This crate knows nothing of containers, HTTP or the CLI: whether a volume is "in use" is the
//! engine's decision (from container records); the store only counts mounts by container ID.

mod error;
mod names;
mod options;
mod size;
mod store;

use std::collections::BTreeMap;
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use error::{Result, VolumesError};
pub use store::VolumeStore;

/// The only volume driver berth has.
pub const LOCAL_DRIVER: &str = "local";

/// The label moby puts on anonymous volumes (`volume prune` without `all` removes only these).
pub const ANONYMOUS_LABEL: &str = "com.docker.volume.anonymous";

/// One volume, as persisted in `<root>/<name>/volume.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Volume {
    /// The volume's name (`[a-zA-Z0-9][a-zA-Z0-9_.-]+`, or 64 hex characters when generated).
    pub name: String,
    /// Always [`LOCAL_DRIVER`].
    pub driver: String,
    /// `<root>/<name>/_data`: what a container binds.
    pub mountpoint: PathBuf,
    /// When the volume was created.
    pub created_at: DateTime<Utc>,
    /// User labels (plus [`ANONYMOUS_LABEL`] for anonymous volumes).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Driver options as given (`type`, `device`, `o`, `size`).
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    /// Created for a container without a name (image `VOLUME`, `-v /path`).
    #[serde(default)]
    pub anonymous: bool,
}

impl Volume {
    /// Whether the volume's data is a mount made on first use (`type` or `device` given).
    pub fn needs_mount(&self) -> bool {
        options::needs_mount(&self.options)
    }
}
