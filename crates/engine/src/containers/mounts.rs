//! A container's mount points: binds, volumes and tmpfs mounts, as moby's `MountPoint`s.
//!
//! At create, [`Containers::resolve_mounts`] turns `HostConfig.VolumesFrom`, `Binds`, `Mounts`
//! and the effective `Config.Volumes` (image `VOLUME`s and `-v /path`) into the list stored in
//! the record (`Record::mount_points`, so it survives restarts), in moby's order of precedence:
//! volumes-from first, then binds and mounts (a duplicate destination among those, or with
//! `HostConfig.Tmpfs`, is refused), then anonymous volumes for the `Config.Volumes` nothing else
//! covers. Named volumes are created when missing, anonymous ones always; a failed create
//! removes the anonymous volumes it made. `HostConfig.Tmpfs` stays in the host config (moby
//! lists those mounts nowhere else) and is folded in at start.
//!
//! At start, [`Containers::prepare_mounts`] mounts each volume through the volume store
//! (which counts users by container ID), creates a missing `-v` bind source directory (as
//! Docker does; `--mount` does not), fills a new empty volume from the image (copy-up, through
//! file descriptors: see `copyup`) once per mount point, and hands the runtime its
//! `MountSpec`s, parents before children. The runtime (libcontainer) resolves every
//! destination inside the container's root with `openat2(RESOLVE_IN_ROOT)`, so a symlink in
//! the image or in a volume never places a mount outside it. Every exit path releases the
//! volumes ([`Containers::release_mounts`]); at daemon start, running containers register
//! theirs again. A `shared`/`slave` bind needs a shared (or slave) source mount on the host,
//! checked at start with moby's text; the propagation is applied by berth's libcontainer patch.
//!
//! For `docker cp` on a stopped container, [`copy_mounts`] binds its volumes and binds over
//! its root filesystem for the length of the request (`linux::fs::Root::bind_mount`).
//!
//! Whether a volume is in use is decided from the records ([`Containers::volume_users`]), as
//! moby does. This module knows nothing of HTTP; the volume store knows nothing of containers.

mod copyup;
mod parse;

use std::collections::HashMap;
use std::path::Path;

use api_types::models::HostConfig;
use linux::fs::Root;
use runtime::MountSpec;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::record::Record;
use super::setup::Dirs;
use super::{Containers, Ctr};
use crate::events::EventType;
use crate::{EngineError, Result};

/// What a mount point mounts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Kind {
    #[default]
    Bind,
    Volume,
    Tmpfs,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Bind => "bind",
            Kind::Volume => "volume",
            Kind::Tmpfs => "tmpfs",
        }
    }
}

/// One mount point of a container (moby's `volumemounts.MountPoint`), persisted in the record.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct MountPoint {
    pub kind: Kind,
    /// The volume's name (volumes only).
    #[serde(default)]
    pub name: String,
    /// Host path: the bind source, or the volume's data directory.
    #[serde(default)]
    pub source: String,
    /// Absolute, cleaned path inside the container.
    pub destination: String,
    /// The volume driver (volumes only).
    #[serde(default)]
    pub driver: String,
    /// The mode words as the user gave them (`ro,z`…; `z` for local volumes without any).
    #[serde(default)]
    pub mode: String,
    pub rw: bool,
    /// Bind propagation (`rprivate` unless given); empty for volumes and tmpfs.
    #[serde(default)]
    pub propagation: String,
    /// A missing bind source is created at start (`-v`, or `--mount` with CreateMountpoint).
    #[serde(default)]
    pub create_source: bool,
    /// `bind-nonrecursive`.
    #[serde(default)]
    pub non_recursive: bool,
    /// The volume is filled from the image at the next start if it is empty then (cleared
    /// once that start has looked).
    #[serde(default)]
    pub copy_data: bool,
    /// The request named no volume: `rm -v` removes it.
    #[serde(default)]
    pub anonymous: bool,
    /// tmpfs mount data (`size=1m,mode=1770`).
    #[serde(default)]
    pub tmpfs_data: String,
}

impl MountPoint {
    /// moby's `types.MountPoint` (inspect's and `ps`'s `Mounts`).
    pub(crate) fn api(&self) -> Value {
        let mut v = json!({
            "Type": self.kind.as_str(),
            "Source": self.source,
            "Destination": self.destination,
            "Mode": self.mode,
            "RW": self.rw,
            "Propagation": self.propagation,
        });
        if !self.name.is_empty() {
            v["Name"] = json!(self.name);
        }
        if !self.driver.is_empty() {
            v["Driver"] = json!(self.driver);
        }
        v
    }

    /// The runtime's view: binds and volumes are (r)binds, tmpfs mounts get their data (the
    /// runtime adds `noexec,nosuid,nodev` unless the data says otherwise).
    fn spec(&self) -> MountSpec {
        match self.kind {
            Kind::Tmpfs => tmpfs_spec(&self.destination, &self.tmpfs_data),
            Kind::Bind | Kind::Volume => {
                let mut options =
                    vec![if self.non_recursive { "bind" } else { "rbind" }.to_string()];
                if !self.rw {
                    options.push("ro".into());
                }
                if !self.propagation.is_empty() {
                    options.push(self.propagation.clone());
                }
                MountSpec {
                    destination: self.destination.clone(),
                    kind: "bind".into(),
                    source: self.source.clone(),
                    options,
                }
            }
        }
    }
}

fn tmpfs_spec(destination: &str, data: &str) -> MountSpec {
    MountSpec {
        destination: destination.to_string(),
        kind: "tmpfs".into(),
        source: "tmpfs".into(),
        options: data
            .split(',')
            .filter(|o| !o.is_empty())
            .map(ToString::to_string)
            .collect(),
    }
}

/// Number of path components: mounts are made parents first (moby's `sortMounts`).
fn depth(dest: &str) -> usize {
    dest.split('/').filter(|p| !p.is_empty()).count()
}

/// Sorts mounts parents first, keeping the given order among equals.
pub(crate) fn sort_specs(specs: &mut [MountSpec]) {
    specs.sort_by_key(|m| depth(&m.destination));
}

/// The mount holding `path` (canonical) in `mountinfo`: its mount point and optional fields
/// (`shared:N`, `master:N`…).
fn source_mount(mountinfo: &str, path: &Path) -> Option<(String, Vec<String>)> {
    let mut best: Option<(String, Vec<String>)> = None;
    for line in mountinfo.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let Some(mp) = fields.get(4).map(|m| linux::mount::unescape_mountinfo(m)) else {
            continue;
        };
        if !path.starts_with(&mp) {
            continue;
        }
        let optional: Vec<String> = fields
            .iter()
            .skip(6)
            .take_while(|f| **f != "-")
            .map(ToString::to_string)
            .collect();
        // Later lines stack over earlier ones at the same mount point.
        if best.as_ref().is_none_or(|(b, _)| mp.len() >= b.len()) {
            best = Some((mp, optional));
        }
    }
    best
}

/// moby's `ensureShared`/`ensureSharedOrSlave`: a shared (slave) bind needs its source on a
/// shared (shared or slave) mount of the host.
fn check_propagation(mountinfo: &str, source: &str, propagation: &str) -> Result<()> {
    let shared = matches!(propagation, "shared" | "rshared");
    let slave = matches!(propagation, "slave" | "rslave");
    if !shared && !slave {
        return Ok(());
    }
    let path = std::fs::canonicalize(source).unwrap_or_else(|_| source.into());
    let Some((mp, optional)) = source_mount(mountinfo, &path) else {
        return Ok(());
    };
    let is_shared = optional.iter().any(|o| o.starts_with("shared:"));
    let is_slave = optional.iter().any(|o| o.starts_with("master:"));
    if shared && !is_shared {
        return Err(EngineError::StartFailed(format!(
            "path {source} is mounted on {mp} but it is not a shared mount"
        )));
    }
    if slave && !is_shared && !is_slave {
        return Err(EngineError::StartFailed(format!(
            "path {source} is mounted on {mp} but it is not a shared or slave mount"
        )));
    }
    Ok(())
}

fn invalid(e: String) -> EngineError {
    EngineError::InvalidRequest(e)
}

fn duplicate(dest: &str) -> EngineError {
    EngineError::InvalidRequest(format!("Duplicate mount point: {dest}"))
}

/// The `HostConfig.Tmpfs` destinations, cleaned and checked.
fn tmpfs_destinations(host: &HostConfig) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for dest in host.tmpfs.iter().flatten().map(|(d, _)| d) {
        parse::check_tmpfs_destination(dest).map_err(invalid)?;
        out.push(parse::clean(dest));
    }
    Ok(out)
}

/// Inserts `p` or replaces the entry with the same destination.
fn upsert(points: &mut Vec<parse::Parsed>, p: parse::Parsed) {
    match points
        .iter_mut()
        .find(|x| x.mp.destination == p.mp.destination)
    {
        Some(slot) => *slot = p,
        None => points.push(p),
    }
}

impl Containers {
    /// Resolves the mount points of a new container and creates the volumes they need (see
    /// the module docs). `config_volumes` is the effective `Config.Volumes`.
    pub(super) fn resolve_mounts(
        &self,
        host: &HostConfig,
        config_volumes: &[String],
    ) -> Result<Vec<MountPoint>> {
        let tmpfs = tmpfs_destinations(host)?;
        let driver = host.volume_driver.clone().unwrap_or_default();
        let mut points: Vec<parse::Parsed> = Vec::new();
        // 1. Copies of other containers' mount points.
        for spec in host.volumes_from.iter().flatten() {
            let (reference, mode) = parse::parse_volumes_from(spec).map_err(invalid)?;
            let other = self.get(&reference)?.snapshot();
            for m in other.mount_points {
                let mp = MountPoint {
                    rw: m.rw && parse::volumes_from_rw(&mode),
                    mode: String::new(),
                    copy_data: false,
                    ..m
                };
                upsert(
                    &mut points,
                    parse::Parsed {
                        inherited: true,
                        ..parse::Parsed::new(mp)
                    },
                );
            }
        }
        // 2. Binds, then mounts: no destination twice, none over a `--tmpfs`.
        let mut taken: Vec<String> = Vec::new();
        for raw in host.binds.iter().flatten() {
            let p = parse::parse_bind(raw, &driver).map_err(invalid)?;
            if taken.contains(&p.mp.destination) || tmpfs.contains(&p.mp.destination) {
                return Err(duplicate(&p.mp.destination));
            }
            taken.push(p.mp.destination.clone());
            upsert(&mut points, p);
        }
        for m in host.mounts.iter().flatten() {
            let p = parse::parse_mount(m).map_err(invalid)?;
            if taken.contains(&p.mp.destination) || tmpfs.contains(&p.mp.destination) {
                return Err(duplicate(m.target.as_deref().unwrap_or_default()));
            }
            taken.push(p.mp.destination.clone());
            upsert(&mut points, p);
        }
        // 3. Anonymous volumes for what the config declares and nothing covers.
        for v in config_volumes {
            let dest = parse::clean(v);
            if !dest.starts_with('/') {
                return Err(invalid(format!(
                    "invalid mount path: '{v}' mount path must be absolute"
                )));
            }
            if points.iter().any(|p| p.mp.destination == dest) || tmpfs.contains(&dest) {
                continue;
            }
            points.push(parse::Parsed::new(MountPoint {
                kind: Kind::Volume,
                destination: dest,
                driver: driver.clone(),
                rw: true,
                copy_data: true,
                anonymous: true,
                ..MountPoint::default()
            }));
        }
        // 4. The volumes.
        let mut out = Vec::with_capacity(points.len());
        let mut created: Vec<String> = Vec::new();
        for p in points {
            match self.volume_for(p) {
                Ok((mp, new_anonymous)) => {
                    if new_anonymous {
                        created.push(mp.name.clone());
                    }
                    out.push(mp);
                }
                Err(e) => {
                    self.remove_volumes_quietly(&created);
                    return Err(e);
                }
            }
        }
        out.sort_by(|a, b| a.destination.cmp(&b.destination));
        Ok(out)
    }

    /// Fills in a volume mount point: an inherited one must exist; a named one is created when
    /// missing; an anonymous one is created. Also answers whether a new anonymous volume was
    /// made (to be removed again if the create fails).
    fn volume_for(&self, p: parse::Parsed) -> Result<(MountPoint, bool)> {
        let mut mp = p.mp;
        if mp.kind != Kind::Volume {
            return Ok((mp, false));
        }
        if p.inherited {
            let v = self
                .volumes
                .get(&mp.name)
                .map_err(|e| EngineError::volume("get", &mp.name, e))?;
            mp.source = v.mountpoint.display().to_string();
            return Ok((mp, false));
        }
        let name = (!mp.anonymous).then_some(mp.name.as_str());
        let v = self
            .volumes
            .create(
                name,
                &mp.driver,
                p.volume_opts,
                p.volume_labels,
                mp.anonymous,
            )
            .map_err(|e| EngineError::volume("create", name.unwrap_or_default(), e))?;
        mp.name = v.name;
        mp.driver = v.driver;
        mp.source = v.mountpoint.display().to_string();
        let anonymous = mp.anonymous;
        Ok((mp, anonymous))
    }

    /// Removes volumes no record uses (anonymous volumes of a failed create or a removed
    /// container), logging what fails.
    fn remove_volumes_quietly(&self, names: &[String]) {
        for name in names {
            if !self.volume_users(name).is_empty() {
                continue;
            }
            match self.volumes.remove(name) {
                Ok(()) => self.events.emit(
                    EventType::VOLUME,
                    "destroy",
                    name.clone(),
                    HashMap::from([("driver".to_string(), volumes::LOCAL_DRIVER.to_string())]),
                ),
                Err(e) => tracing::warn!(volume = %name, error = %e, "cannot remove volume"),
            }
        }
    }

    /// `rm -v` and `--rm`: removes the container's anonymous volumes that no other container
    /// uses (never named ones). Call after the record left the map.
    pub(super) fn remove_anonymous_volumes(&self, rec: &Record) {
        let names: Vec<String> = rec
            .mount_points
            .iter()
            .filter(|m| m.kind == Kind::Volume && m.anonymous)
            .map(|m| m.name.clone())
            .collect();
        self.remove_volumes_quietly(&names);
    }

    /// The IDs of the containers (any state) whose mount points use volume `name`.
    pub(crate) fn volume_users(&self, name: &str) -> Vec<String> {
        let mut ids: Vec<String> = self
            .records()
            .into_iter()
            .filter(|r| {
                r.mount_points
                    .iter()
                    .any(|m| m.kind == Kind::Volume && m.name == name)
            })
            .map(|r| r.id)
            .collect();
        ids.sort();
        ids
    }

    /// Makes a starting container's mounts ready (the root filesystem is mounted): volumes
    /// mounted through the store and filled from the image when new and empty, missing `-v`
    /// bind sources created. Returns the runtime's mounts (`HostConfig.Tmpfs` included),
    /// parents first. On failure, the volumes mounted so far are released.
    pub(super) fn prepare_mounts(
        &self,
        ctr: &Ctr,
        rec: &Record,
        dirs: &Dirs,
    ) -> Result<Vec<MountSpec>> {
        let mut specs = Vec::new();
        let mut mounted: Vec<&MountPoint> = Vec::new();
        let mut rootfs: Option<Root> = None;
        for mp in &rec.mount_points {
            let r = self.prepare_one(ctr, rec, dirs, mp, &mut rootfs);
            match r {
                Ok(spec) => {
                    if mp.kind == Kind::Volume {
                        mounted.push(mp);
                    }
                    specs.push(spec);
                }
                Err(e) => {
                    self.release_points(&rec.id, mounted.into_iter());
                    return Err(e);
                }
            }
        }
        let mut tmpfs: Vec<(&String, &String)> = rec.host_config.tmpfs.iter().flatten().collect();
        tmpfs.sort();
        for (dest, data) in tmpfs {
            specs.push(tmpfs_spec(&parse::clean(dest), data));
        }
        sort_specs(&mut specs);
        Ok(specs)
    }

    fn prepare_one(
        &self,
        ctr: &Ctr,
        rec: &Record,
        dirs: &Dirs,
        mp: &MountPoint,
        rootfs: &mut Option<Root>,
    ) -> Result<MountSpec> {
        match mp.kind {
            Kind::Tmpfs => Ok(mp.spec()),
            Kind::Bind => {
                let src = Path::new(&mp.source);
                if mp.create_source && std::fs::symlink_metadata(src).is_err() {
                    use std::os::unix::fs::DirBuilderExt;
                    std::fs::DirBuilder::new()
                        .recursive(true)
                        .mode(0o755)
                        .create(src)
                        .map_err(|e| crate::io_err("create", src, e))?;
                }
                if !mp.propagation.is_empty() && mp.propagation != parse::DEFAULT_PROPAGATION {
                    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
                    check_propagation(&info, &mp.source, &mp.propagation)?;
                }
                Ok(mp.spec())
            }
            Kind::Volume => {
                let path = self
                    .volumes
                    .mount(&mp.name, &rec.id)
                    .map_err(|e| EngineError::volume("mount", &mp.name, e))?;
                let spec = MountPoint {
                    source: path.display().to_string(),
                    ..mp.clone()
                }
                .spec();
                if mp.copy_data {
                    let filled = (|| -> Result<()> {
                        let vol = Root::open(&path)?;
                        if copyup::is_empty_dir(&vol)? {
                            if rootfs.is_none() {
                                *rootfs = Some(Root::open(&dirs.rootfs())?);
                            }
                            if let Some(root) = rootfs.as_ref() {
                                copyup::copy_up(root, &mp.destination, &vol)?;
                            }
                        }
                        Ok(())
                    })();
                    if let Err(e) = filled {
                        let _ = self.volumes.unmount(&mp.name, &rec.id);
                        return Err(e);
                    }
                    let mut r = ctr.rec();
                    for m in r.mount_points.iter_mut() {
                        if m.destination == mp.destination {
                            m.copy_data = false;
                        }
                    }
                }
                self.volume_event(rec, mp, "mount");
                Ok(spec)
            }
        }
    }

    fn volume_event(&self, rec: &Record, mp: &MountPoint, action: &str) {
        let mut attrs = HashMap::from([
            ("driver".to_string(), mp.driver.clone()),
            ("container".to_string(), rec.id.clone()),
        ]);
        if action == "mount" {
            attrs.insert("destination".into(), mp.destination.clone());
            attrs.insert("read/write".into(), mp.rw.to_string());
            attrs.insert("propagation".into(), mp.propagation.clone());
        }
        self.events
            .emit(EventType::VOLUME, action, mp.name.clone(), attrs);
    }

    fn release_points<'a>(&self, id: &str, points: impl Iterator<Item = &'a MountPoint>) {
        for mp in points.filter(|m| m.kind == Kind::Volume) {
            if let Err(e) = self.volumes.unmount(&mp.name, id) {
                tracing::warn!(id, volume = %mp.name, error = %e, "cannot unmount volume");
            }
        }
    }

    /// Releases the volumes of a container that stopped (or failed to start). Releasing more
    /// than was mounted is harmless.
    pub(super) fn release_mounts(&self, rec: &Record) {
        if !rec.mount_points.iter().any(|m| m.kind == Kind::Volume) {
            return;
        }
        let held = |name: &str| self.volumes.mounted_by(name).contains(&rec.id);
        for mp in rec.mount_points.iter().filter(|m| m.kind == Kind::Volume) {
            if held(&mp.name) {
                self.release_points(&rec.id, std::iter::once(mp));
                self.volume_event(rec, mp, "unmount");
            }
        }
    }

    /// At daemon start: registers the volumes of a container that is still running with the
    /// store again.
    pub(super) fn reregister_mounts(&self, rec: &Record) {
        for mp in rec.mount_points.iter().filter(|m| m.kind == Kind::Volume) {
            if let Err(e) = self.volumes.mount(&mp.name, &rec.id) {
                tracing::warn!(id = %rec.id, volume = %mp.name, error = %e, "cannot register volume");
            }
        }
    }
}

/// For `docker cp` on a stopped container: bind-mounts its volumes and binds (parents
/// first, read-only ones read-only) over its mounted root filesystem `root`, each destination
/// resolved inside it. A source that does not exist (a `-v` directory made at the first start)
/// is skipped. On failure, what was mounted is unmounted again.
pub(crate) fn copy_mounts(root: &Root, rec: &Record) -> Result<Vec<linux::fs::BindMount>> {
    let mut points: Vec<&MountPoint> = rec
        .mount_points
        .iter()
        .filter(|m| m.kind != Kind::Tmpfs && Path::new(&m.source).exists())
        .collect();
    points.sort_by_key(|m| depth(&m.destination));
    let mut out: Vec<linux::fs::BindMount> = Vec::new();
    for mp in points {
        let rel = Path::new(mp.destination.trim_start_matches('/'));
        match root.bind_mount(Path::new(&mp.source), rel, !mp.rw) {
            Ok(m) => out.push(m),
            Err(e) => {
                for m in out.into_iter().rev() {
                    let _ = m.unmount();
                }
                return Err(e.into());
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_shape_like_moby() {
        let bind = MountPoint {
            kind: Kind::Bind,
            source: "/src".into(),
            destination: "/dst".into(),
            rw: true,
            propagation: "rprivate".into(),
            ..Default::default()
        };
        assert_eq!(
            bind.api(),
            json!({"Type":"bind","Source":"/src","Destination":"/dst","Mode":"","RW":true,"Propagation":"rprivate"})
        );
        let vol = MountPoint {
            kind: Kind::Volume,
            name: "v".into(),
            source: "/r/volumes/v/_data".into(),
            destination: "/v".into(),
            driver: "local".into(),
            mode: "z".into(),
            rw: false,
            ..Default::default()
        };
        assert_eq!(
            vol.api(),
            json!({"Type":"volume","Name":"v","Source":"/r/volumes/v/_data","Destination":"/v","Driver":"local","Mode":"z","RW":false,"Propagation":""})
        );
        let spec = vol.spec();
        assert_eq!(spec.kind, "bind");
        assert_eq!(spec.options, vec!["rbind".to_string(), "ro".to_string()]);
        let spec = bind.spec();
        assert_eq!(
            spec.options,
            vec!["rbind".to_string(), "rprivate".to_string()]
        );
        let t = MountPoint {
            kind: Kind::Tmpfs,
            destination: "/t".into(),
            rw: true,
            tmpfs_data: "mode=1770,size=1m".into(),
            ..Default::default()
        };
        assert_eq!(t.spec().options, vec!["mode=1770", "size=1m"]);
        assert_eq!(t.api()["Source"], "");
    }

    #[test]
    fn propagation_needs_a_shared_source_mount() {
        let info = "27 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n\
                    40 27 0:50 / /srv rw shared:5 - ext4 /dev/vdb rw\n\
                    41 27 0:51 / /sl rw master:5 - ext4 /dev/vdc rw\n\
                    42 27 0:52 / /with\\040space rw - tmpfs tmpfs rw\n";
        assert_eq!(
            source_mount(info, Path::new("/srv/a/b")).unwrap(),
            ("/srv".to_string(), vec!["shared:5".to_string()])
        );
        assert_eq!(
            source_mount(info, Path::new("/with space/x")).unwrap().0,
            "/with space"
        );
        assert_eq!(source_mount(info, Path::new("/other")).unwrap().0, "/");
        let e = check_propagation(info, "/nonexistent-dir-x", "rshared").unwrap_err();
        assert_eq!(
            e.to_string(),
            "path /nonexistent-dir-x is mounted on / but it is not a shared mount"
        );
        let e = check_propagation(info, "/nonexistent-dir-x", "slave").unwrap_err();
        assert_eq!(
            e.to_string(),
            "path /nonexistent-dir-x is mounted on / but it is not a shared or slave mount"
        );
        assert!(check_propagation(info, "/srv/x", "rshared").is_ok());
        assert!(check_propagation(info, "/sl/x", "rslave").is_ok());
        assert!(check_propagation(info, "/sl/x", "shared").is_err());
        assert!(check_propagation(info, "/x", "rprivate").is_ok());
    }

    #[test]
    fn specs_sort_parents_first() {
        let mk = |d: &str| tmpfs_spec(d, "");
        let mut v = vec![mk("/a/b/c"), mk("/x"), mk("/a/b"), mk("/a")];
        sort_specs(&mut v);
        let d: Vec<&str> = v.iter().map(|m| m.destination.as_str()).collect();
        assert_eq!(d, ["/x", "/a", "/a/b", "/a/b/c"]);
    }

    #[test]
    fn record_field_round_trips() {
        let mp = MountPoint {
            kind: Kind::Volume,
            name: "n".into(),
            destination: "/d".into(),
            copy_data: true,
            anonymous: true,
            ..Default::default()
        };
        let s = serde_json::to_string(&mp).unwrap();
        assert!(s.contains("\"kind\":\"volume\""), "{s}");
        let back: MountPoint = serde_json::from_str(&s).unwrap();
        assert_eq!(back, mp);
        // Older records without the optional fields still load.
        let old: MountPoint =
            serde_json::from_str(r#"{"kind":"bind","destination":"/x","rw":true}"#).unwrap();
        assert_eq!(old.destination, "/x");
    }
}
