//! The volume store: the records on disk, the in-memory index, and mount reference counts.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use chrono::{DateTime, Utc};

use crate::error::io_err;
use crate::{ANONYMOUS_LABEL, LOCAL_DRIVER, Result, Volume, VolumesError, names, options, size};

/// The record's file name inside `<root>/<name>/`.
const RECORD: &str = "volume.json";
/// The data directory's name inside `<root>/<name>/` (Docker's).
const DATA: &str = "_data";
/// Prefix of a volume directory being removed (never a valid volume name).
const TRASH: &str = ".removing-";

/// All volumes under one root (`<data-root>/volumes`). Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct VolumeStore {
    root: PathBuf,
    state: Mutex<BTreeMap<String, Entry>>,
}

/// One volume and its live mount state.
#[derive(Debug)]
struct Entry {
    volume: Volume,
    /// Container ID → how many of its mount points hold the volume mounted.
    users: BTreeMap<String, usize>,
    /// Whether `_data` is mounted (only for volumes with `type`/`device`).
    mounted: bool,
}

impl VolumeStore {
    /// Opens (creating) the store at `root` and loads every volume. A volume whose `_data` is
    /// still mounted (berthd restarted while containers ran) is recognised as mounted.
    pub fn open(root: &Path) -> Result<Self> {
        fs::create_dir_all(root).map_err(io_err("create", root))?;
        fs::set_permissions(root, fs::Permissions::from_mode(0o701))
            .map_err(io_err("chmod", root))?;
        let mut map = BTreeMap::new();
        for entry in fs::read_dir(root).map_err(io_err("read", root))?.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(TRASH) && !linux::mount::is_mountpoint(&entry.path().join(DATA)) {
                // A removal cut short by a crash: finish it.
                let _ = fs::remove_dir_all(entry.path());
                continue;
            }
            if names::validate(&name).is_err() || !entry.path().is_dir() {
                continue;
            }
            match load(root, &name) {
                Ok(Some(volume)) => {
                    let mounted =
                        volume.needs_mount() && linux::mount::is_mountpoint(&volume.mountpoint);
                    map.insert(
                        name,
                        Entry {
                            volume,
                            users: BTreeMap::new(),
                            mounted,
                        },
                    );
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(volume = %name, error = %e, "Failed to load volume"),
            }
        }
        Ok(Self {
            root: root.to_path_buf(),
            state: Mutex::new(map),
        })
    }

    /// The store's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Creates a volume. An existing name gives the existing volume (as Docker: no error, the
    /// new labels and options are ignored). `None` (or an empty name) → a generated 64-hex name.
    /// `anonymous` adds moby's `com.docker.volume.anonymous` label.
    pub fn create(
        &self,
        name: Option<&str>,
        driver: &str,
        opts: BTreeMap<String, String>,
        mut labels: BTreeMap<String, String>,
        anonymous: bool,
    ) -> Result<Volume> {
        let driver = if driver.is_empty() {
            LOCAL_DRIVER
        } else {
            driver
        };
        if driver != LOCAL_DRIVER {
            return Err(VolumesError::UnknownDriver(driver.to_string()));
        }
        let name = match name.filter(|n| !n.is_empty()) {
            Some(n) => {
                names::validate(n)?;
                n.to_string()
            }
            None => names::generate(),
        };
        let mut state = self.lock();
        if let Some(existing) = state.get(&name) {
            return Ok(existing.volume.clone());
        }
        options::validate(&opts)?;
        if anonymous {
            labels.entry(ANONYMOUS_LABEL.to_string()).or_default();
        }
        let dir = self.root.join(&name);
        let volume = Volume {
            name: name.clone(),
            driver: LOCAL_DRIVER.to_string(),
            mountpoint: dir.join(DATA),
            created_at: now_seconds(),
            labels,
            options: opts,
            anonymous,
        };
        if let Err(e) = write_new(&dir, &volume) {
            let _ = fs::remove_dir_all(&dir);
            return Err(e);
        }
        state.insert(
            name,
            Entry {
                volume: volume.clone(),
                users: BTreeMap::new(),
                mounted: false,
            },
        );
        Ok(volume)
    }

    /// The volume called `name`.
    pub fn get(&self, name: &str) -> Result<Volume> {
        self.lock()
            .get(name)
            .map(|e| e.volume.clone())
            .ok_or_else(|| VolumesError::NotFound(name.to_string()))
    }

    /// Every volume, by name.
    pub fn list(&self) -> Vec<Volume> {
        self.lock().values().map(|e| e.volume.clone()).collect()
    }

    /// Removes the volume and its data. The caller checks "in use" (container records) first;
    /// a volume still mounted for a container is refused here too. A mounted `_data` is
    /// unmounted first and never deleted through (a bind volume's host directory survives).
    pub fn remove(&self, name: &str) -> Result<()> {
        let mut state = self.lock();
        let entry = state
            .get_mut(name)
            .ok_or_else(|| VolumesError::NotFound(name.to_string()))?;
        if !entry.users.is_empty() {
            return Err(VolumesError::ActiveMounts);
        }
        let data = entry.volume.mountpoint.clone();
        if entry.mounted || linux::mount::is_mountpoint(&data) {
            linux::mount::unmount(&data)?;
            entry.mounted = false;
        }
        if linux::mount::is_mountpoint(&data) {
            return Err(VolumesError::ActiveMounts);
        }
        let dir = self.root.join(name);
        // Rename first, so a half-deleted volume never shows up again as a volume.
        let trash = self.root.join(format!("{TRASH}{name}"));
        if trash.exists() {
            fs::remove_dir_all(&trash).map_err(io_err("remove", &trash))?;
        }
        fs::rename(&dir, &trash).map_err(io_err("rename", &dir))?;
        state.remove(name);
        drop(state);
        fs::remove_dir_all(&trash).map_err(io_err("remove", &trash))?;
        Ok(())
    }

    /// Makes the volume's data available to `container_id` and returns the host path to bind:
    /// `_data`, mounted first (`type`/`device`/`o`) when this is its first user.
    pub fn mount(&self, name: &str, container_id: &str) -> Result<PathBuf> {
        let mut state = self.lock();
        let entry = state
            .get_mut(name)
            .ok_or_else(|| VolumesError::NotFound(name.to_string()))?;
        if entry.volume.needs_mount() && !entry.mounted {
            let o = &entry.volume.options;
            let get = |k: &str| o.get(k).map(String::as_str).unwrap_or("");
            linux::mount::mount_with_options(
                get("device"),
                &entry.volume.mountpoint,
                get("type"),
                get("o"),
            )
            .map_err(|e| VolumesError::mount(get("device"), &entry.volume.mountpoint, e))?;
            entry.mounted = true;
        }
        *entry.users.entry(container_id.to_string()).or_default() += 1;
        Ok(entry.volume.mountpoint.clone())
    }

    /// Releases one mount of the volume by `container_id`; when no mount is left, a
    /// `type`/`device` volume is unmounted. Releasing more than was mounted is harmless.
    pub fn unmount(&self, name: &str, container_id: &str) -> Result<()> {
        let mut state = self.lock();
        let entry = state
            .get_mut(name)
            .ok_or_else(|| VolumesError::NotFound(name.to_string()))?;
        if let Some(n) = entry.users.get_mut(container_id) {
            *n -= 1;
            if *n == 0 {
                entry.users.remove(container_id);
            }
        }
        if entry.users.is_empty() && entry.mounted {
            // Forget the mount even if unmounting fails, as moby does: it would otherwise
            // never be removable until a restart.
            entry.mounted = false;
            linux::mount::unmount(&entry.volume.mountpoint)?;
        }
        Ok(())
    }

    /// The containers holding the volume mounted right now (not the engine's "in use",
    /// which counts every container whose record names the volume).
    pub fn mounted_by(&self, name: &str) -> Vec<String> {
        self.lock()
            .get(name)
            .map(|e| e.users.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// The bytes under the volume's `_data` (for `system df`); `None` for an unknown volume.
    pub fn size(&self, name: &str) -> Option<u64> {
        let path = self.lock().get(name)?.volume.mountpoint.clone();
        Some(size::dir_size(&path))
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Entry>> {
        // A panic while holding the lock leaves the map consistent (every update is one insert
        // or remove), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Reads `<root>/<name>/volume.json`. A directory with `_data` but no record (made by hand, or
/// by an older berth) is a plain volume created at the directory's change time; one without
/// either is a leftover and ignored.
fn load(root: &Path, name: &str) -> Result<Option<Volume>> {
    let dir = root.join(name);
    let record = dir.join(RECORD);
    match fs::read(&record) {
        Ok(bytes) => {
            let mut v: Volume =
                serde_json::from_slice(&bytes).map_err(|source| VolumesError::Record {
                    path: record.clone(),
                    source,
                })?;
            // The directory decides the name and the path, whatever the record says.
            v.name = name.to_string();
            v.mountpoint = dir.join(DATA);
            Ok(Some(v))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let data = dir.join(DATA);
            let Ok(meta) = fs::symlink_metadata(&data) else {
                return Ok(None);
            };
            if !meta.is_dir() {
                return Ok(None);
            }
            let created_at =
                DateTime::<Utc>::from_timestamp(meta.ctime(), 0).unwrap_or_else(now_seconds);
            Ok(Some(Volume {
                name: name.to_string(),
                driver: LOCAL_DRIVER.to_string(),
                mountpoint: data,
                created_at,
                labels: BTreeMap::new(),
                options: BTreeMap::new(),
                anonymous: false,
            }))
        }
        Err(e) => Err(io_err("read", &record)(e)),
    }
}

/// Creates `<dir>` (0701), `<dir>/_data` (0755) and the record, written atomically.
fn write_new(dir: &Path, volume: &Volume) -> Result<()> {
    fs::DirBuilder::new()
        .mode(0o701)
        .create(dir)
        .map_err(io_err("create", dir))?;
    let data = dir.join(DATA);
    fs::DirBuilder::new()
        .mode(0o755)
        .create(&data)
        .map_err(io_err("create", &data))?;
    // The umask may have narrowed the modes.
    fs::set_permissions(&data, fs::Permissions::from_mode(0o755))
        .map_err(io_err("chmod", &data))?;
    let bytes = serde_json::to_vec_pretty(volume).map_err(|source| VolumesError::Record {
        path: dir.join(RECORD),
        source,
    })?;
    Ok(linux::fs::write_atomic(
        &dir.join(RECORD),
        &bytes,
        0o600,
        true,
    )?)
}

/// Now, to the second (Docker shows volume times as RFC3339 without fractions).
fn now_seconds() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::<Utc>::from_timestamp(now.timestamp(), 0).unwrap_or(now)
}
