//! Parsing and validation of a create request's mount specifications, by moby's rules and with
//! its texts: `HostConfig.Binds` (`src:dst[:mode]`), `HostConfig.Mounts`, `HostConfig.Tmpfs`
//! destinations and `HostConfig.VolumesFrom` (`ctr[:mode]`).
//!
//! Pure functions: no volume is created and no file is looked at, except the existence of a
//! `--mount type=bind` source (moby refuses a missing one at create). What a parse produces is a
//! [`Parsed`]: the mount point as far as the request decides it, and for volumes what their
//! creation needs.

use std::collections::BTreeMap;
use std::path::Path;

use api_types::models::{Mount, MountTmpfsOptions, MountType};

use super::{Kind, MountPoint};

/// The propagation Docker gives a bind mount that names none.
pub(crate) const DEFAULT_PROPAGATION: &str = "rprivate";

const PROPAGATIONS: &[&str] = &[
    "private", "rprivate", "slave", "rslave", "shared", "rshared",
];

/// A mount point from the request, before its volume (if any) exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Parsed {
    pub mp: MountPoint,
    /// For volumes: the driver options and labels a new volume is created with.
    pub volume_opts: BTreeMap<String, String>,
    pub volume_labels: BTreeMap<String, String>,
    /// Copied from another container (`--volumes-from`): its volume must exist already.
    pub inherited: bool,
}

impl Parsed {
    pub(crate) fn new(mp: MountPoint) -> Self {
        Self {
            mp,
            volume_opts: BTreeMap::new(),
            volume_labels: BTreeMap::new(),
            inherited: false,
        }
    }
}

/// Go's `path.Clean` (lexical: `//`, `.` and `..` folded; `..` at the root dropped).
pub(crate) fn clean(p: &str) -> String {
    if p.is_empty() {
        return ".".into();
    }
    let rooted = p.starts_with('/');
    let mut out: Vec<&str> = Vec::new();
    for part in p.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if out.last().is_some_and(|l| *l != "..") {
                    out.pop();
                } else if !rooted {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    let joined = out.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

fn is_propagation(o: &str) -> bool {
    PROPAGATIONS.contains(&o)
}

/// moby's `ValidMountMode`: a comma list with at most one word of each kind (rw/ro, z/Z,
/// propagation, nocopy, consistency).
pub(crate) fn valid_mode(mode: &str) -> bool {
    if mode.is_empty() {
        return true;
    }
    let mut counts = [0u8; 5];
    for o in mode.split(',') {
        let kind = match o {
            "rw" | "ro" => 0,
            "z" | "Z" => 1,
            _ if is_propagation(o) => 2,
            "nocopy" => 3,
            "consistent" | "cached" | "delegated" => 4,
            _ => return false,
        };
        counts[kind] += 1;
    }
    counts.iter().all(|c| *c <= 1)
}

fn mode_read_write(mode: &str) -> bool {
    !mode.split(',').any(|o| o == "ro")
}

fn mode_propagation(mode: &str) -> Option<&str> {
    mode.split(',').find(|o| is_propagation(o))
}

fn invalid_spec(raw: &str) -> String {
    format!("invalid volume specification: '{raw}'")
}

/// The checks every mount type shares: a target, absolute, not `/`.
fn validate_target(target: &str) -> Result<(), String> {
    if target.is_empty() {
        return Err("field Target must not be empty".into());
    }
    if clean(target) == "/" {
        return Err("invalid specification: destination can't be '/'".into());
    }
    if !target.starts_with('/') {
        return Err(format!(
            "invalid mount path: '{target}' mount path must be absolute"
        ));
    }
    Ok(())
}

fn config_err(typ: &str, e: &str) -> String {
    format!("invalid mount config for type \"{typ}\": {e}")
}

/// One `HostConfig.Binds` entry (moby's `ParseMountRaw`): `/host:/ctr[:mode]` is a bind,
/// `name:/ctr[:mode]` a named volume, `/ctr` alone an anonymous volume. `volume_driver` is
/// `HostConfig.VolumeDriver`. Errors are moby's texts (400).
pub(crate) fn parse_bind(raw: &str, volume_driver: &str) -> Result<Parsed, String> {
    let arr: Vec<&str> = raw.splitn(4, ':').collect();
    if arr[0].is_empty() {
        return Err(invalid_spec(raw));
    }
    let (source, target, mode) = match arr.as_slice() {
        [t] => ("", *t, ""),
        [_, m] if valid_mode(m) => return Err(invalid_spec(raw)),
        [s, t] => (*s, *t, ""),
        [s, t, m] => (*s, *t, *m),
        _ => return Err(invalid_spec(raw)),
    };
    if !valid_mode(mode) {
        return Err(format!("invalid mode: {mode}"));
    }
    let bind = source.starts_with('/');
    let typ = if bind { "bind" } else { "volume" };
    let wrap = |e: String| format!("{}: {}", invalid_spec(raw), config_err(typ, &e));
    validate_target(target).map_err(wrap)?;
    let nocopy = mode.split(',').any(|o| o == "nocopy");
    let propagation = mode_propagation(mode);
    let rw = mode_read_write(mode);
    let destination = clean(target);
    if bind {
        if nocopy {
            return Err(wrap("field VolumeOptions must not be specified".into()));
        }
        return Ok(Parsed::new(MountPoint {
            kind: Kind::Bind,
            source: clean(source),
            destination,
            mode: mode.to_string(),
            rw,
            propagation: propagation.unwrap_or(DEFAULT_PROPAGATION).to_string(),
            create_source: true,
            ..MountPoint::default()
        }));
    }
    if propagation.is_some() {
        return Err(wrap("field BindOptions must not be specified".into()));
    }
    if !rw && source.is_empty() {
        return Err(wrap(
            "must not set ReadOnly mode when using anonymous volumes".into(),
        ));
    }
    Ok(Parsed::new(MountPoint {
        kind: Kind::Volume,
        name: source.to_string(),
        destination,
        driver: volume_driver.to_string(),
        // moby's setBindModeIfNull for local volumes.
        mode: if mode.is_empty() { "z" } else { mode }.to_string(),
        rw,
        copy_data: !nocopy,
        anonymous: source.is_empty(),
        ..MountPoint::default()
    }))
}

/// The tmpfs mount data of `--mount type=tmpfs` (moby's `ConvertTmpfsOptions`): `ro`,
/// `mode=<octal>`, `size=<n>[kmg]` and the raw `Options`.
pub(crate) fn tmpfs_data(opts: Option<&MountTmpfsOptions>, read_only: bool) -> String {
    let mut raw: Vec<String> = Vec::new();
    if read_only {
        raw.push("ro".into());
    }
    if let Some(o) = opts {
        if let Some(mode) = o.mode.filter(|m| *m != 0) {
            raw.push(format!("mode={mode:o}"));
        }
        if let Some(size) = o.size_bytes.filter(|s| *s != 0) {
            let mut text = size.to_string();
            for (suffix, div) in [("g", 1i64 << 30), ("m", 1 << 20), ("k", 1 << 10)] {
                if size % div == 0 {
                    text = format!("{}{suffix}", size / div);
                    break;
                }
            }
            raw.push(format!("size={text}"));
        }
        for o in o.options.iter().flatten() {
            match o.as_slice() {
                [flag] => raw.push(flag.clone()),
                [k, v] => raw.push(format!("{k}={v}")),
                _ => {}
            }
        }
    }
    raw.join(",")
}

/// One `HostConfig.Mounts` entry (moby's `ParseMountSpec` with the bind source checked).
pub(crate) fn parse_mount(m: &Mount) -> Result<Parsed, String> {
    let typ = m.typ.map(|t| t.to_string()).unwrap_or_default();
    let err = |e: &str| config_err(&typ, e);
    let target = m.target.as_deref().unwrap_or_default();
    validate_target(target).map_err(|e| err(&e))?;
    let source = m.source.as_deref().unwrap_or_default();
    let read_only = m.read_only.unwrap_or(false);
    let destination = clean(target);
    match m.typ {
        Some(MountType::BIND) => {
            if source.is_empty() {
                return Err(err("field Source must not be empty"));
            }
            if m.volume_options.is_some() {
                return Err(err("field VolumeOptions must not be specified"));
            }
            if !source.starts_with('/') {
                return Err(err(&format!(
                    "invalid mount path: '{source}' mount path must be absolute"
                )));
            }
            let b = m.bind_options.clone().unwrap_or_default();
            let create = b.create_mountpoint.unwrap_or(false);
            if !create && !Path::new(source).exists() {
                return Err(err(&format!("bind source path does not exist: {source}")));
            }
            let propagation = b
                .propagation
                .map(|p| p.to_string())
                .filter(|p| !p.is_empty())
                .unwrap_or_else(|| DEFAULT_PROPAGATION.to_string());
            Ok(Parsed::new(MountPoint {
                kind: Kind::Bind,
                source: clean(source),
                destination,
                rw: !read_only,
                propagation,
                create_source: create,
                non_recursive: b.non_recursive.unwrap_or(false),
                ..MountPoint::default()
            }))
        }
        Some(MountType::VOLUME) => {
            if m.bind_options.is_some() {
                return Err(err("field BindOptions must not be specified"));
            }
            if read_only && source.is_empty() {
                return Err(err(
                    "must not set ReadOnly mode when using anonymous volumes",
                ));
            }
            let v = m.volume_options.clone().unwrap_or_default();
            if v.subpath.as_deref().is_some_and(|s| !s.is_empty()) {
                return Err(err("volume subpaths are not supported"));
            }
            let driver = v.driver_config.clone().unwrap_or_default();
            Ok(Parsed {
                mp: MountPoint {
                    kind: Kind::Volume,
                    name: source.to_string(),
                    destination,
                    driver: driver.name.unwrap_or_default(),
                    mode: "z".into(),
                    rw: !read_only,
                    copy_data: !v.no_copy.unwrap_or(false),
                    anonymous: source.is_empty(),
                    ..MountPoint::default()
                },
                volume_opts: driver.options.unwrap_or_default().into_iter().collect(),
                volume_labels: v.labels.unwrap_or_default().into_iter().collect(),
                inherited: false,
            })
        }
        Some(MountType::TMPFS) => {
            if m.bind_options.is_some() {
                return Err(err("field BindOptions must not be specified"));
            }
            if !source.is_empty() {
                return Err(err("field Source must not be specified"));
            }
            Ok(Parsed::new(MountPoint {
                kind: Kind::Tmpfs,
                destination,
                rw: !read_only,
                tmpfs_data: tmpfs_data(m.tmpfs_options.as_ref(), read_only),
                ..MountPoint::default()
            }))
        }
        _ => Err(err("mount type unknown")),
    }
}

/// A `HostConfig.Tmpfs` destination: absolute and not `/`.
pub(crate) fn check_tmpfs_destination(dest: &str) -> Result<(), String> {
    validate_target(dest).map_err(|e| config_err("tmpfs", &e))
}

/// `HostConfig.VolumesFrom` entry → (container, mode). Propagation modes are refused.
pub(crate) fn parse_volumes_from(spec: &str) -> Result<(String, String), String> {
    if spec.is_empty() {
        return Err("volumes-from specification cannot be an empty string".into());
    }
    let (id, mode) = spec.split_once(':').unwrap_or((spec, ""));
    if mode.is_empty() {
        return Ok((id.to_string(), "rw".into()));
    }
    if !valid_mode(mode) || mode_propagation(mode).is_some() {
        return Err(format!("invalid mode: {mode}"));
    }
    Ok((id.to_string(), mode.to_string()))
}

/// Whether a volumes-from mode keeps the mounts writable.
pub(crate) fn volumes_from_rw(mode: &str) -> bool {
    mode_read_write(mode)
}

#[cfg(test)]
mod tests {
    use super::*;
    use api_types::models::{
        MountBindOptions, MountBindOptionsPropagationEnum, MountVolumeOptions,
    };

    #[test]
    fn clean_like_go() {
        for (i, o) in [
            ("", "."),
            ("/", "/"),
            ("/a/b/", "/a/b"),
            ("//a//b", "/a/b"),
            ("/a/./b/../c", "/a/c"),
            ("/../..", "/"),
            ("a/../..", ".."),
            ("./x", "x"),
        ] {
            assert_eq!(clean(i), o, "{i}");
        }
    }

    #[test]
    fn modes() {
        for ok in [
            "",
            "ro",
            "rw",
            "z",
            "Z",
            "ro,z",
            "rw,rshared,nocopy",
            "cached",
            "ro,Z,slave",
        ] {
            assert!(valid_mode(ok), "{ok}");
        }
        for bad in [
            "bad",
            "ro,rw",
            "z,Z",
            "shared,slave",
            "nocopy,nocopy",
            "ro,",
        ] {
            assert!(!valid_mode(bad), "{bad}");
        }
    }

    #[test]
    fn binds_parse() {
        let p = parse_bind("/tmp/src/:/test/src", "").unwrap().mp;
        assert_eq!(p.kind, Kind::Bind);
        assert_eq!(
            (p.source.as_str(), p.destination.as_str()),
            ("/tmp/src", "/test/src")
        );
        assert_eq!(
            (p.mode.as_str(), p.rw, p.propagation.as_str()),
            ("", true, "rprivate")
        );
        assert!(p.create_source);
        let p = parse_bind("/a:/b:ro,rshared", "").unwrap().mp;
        assert_eq!(
            (p.mode.as_str(), p.rw, p.propagation.as_str()),
            ("ro,rshared", false, "rshared")
        );
        let p = parse_bind("data:/d", "").unwrap().mp;
        assert_eq!(p.kind, Kind::Volume);
        assert_eq!(
            (p.name.as_str(), p.mode.as_str(), p.rw),
            ("data", "z", true)
        );
        assert!(p.copy_data && !p.anonymous);
        let p = parse_bind("data:/d:ro,nocopy", "").unwrap().mp;
        assert_eq!(
            (p.mode.as_str(), p.rw, p.copy_data),
            ("ro,nocopy", false, false)
        );
        let p = parse_bind("/anon", "").unwrap().mp;
        assert!(p.anonymous && p.name.is_empty());
        assert_eq!(p.destination, "/anon");
    }

    #[test]
    fn binds_refused_with_mobys_texts() {
        let e = |raw: &str| parse_bind(raw, "").unwrap_err();
        assert_eq!(
            e("/a:rel"),
            "invalid volume specification: '/a:rel': invalid mount config for type \"bind\": invalid mount path: 'rel' mount path must be absolute"
        );
        assert_eq!(
            e("/a:/"),
            "invalid volume specification: '/a:/': invalid mount config for type \"bind\": invalid specification: destination can't be '/'"
        );
        assert_eq!(e("/a:/b:bad"), "invalid mode: bad");
        assert_eq!(e("/a:/b:ro,rw"), "invalid mode: ro,rw");
        assert_eq!(
            e("/a:/b:nocopy"),
            "invalid volume specification: '/a:/b:nocopy': invalid mount config for type \"bind\": field VolumeOptions must not be specified"
        );
        assert_eq!(
            e("v1:/b:shared"),
            "invalid volume specification: 'v1:/b:shared': invalid mount config for type \"volume\": field BindOptions must not be specified"
        );
        assert_eq!(e("a:/b:c:d"), "invalid volume specification: 'a:/b:c:d'");
        assert_eq!(e(":/b"), "invalid volume specification: ':/b'");
        assert_eq!(e("/b:ro"), "invalid volume specification: '/b:ro'");
    }

    fn mount(typ: MountType, src: Option<&str>, dst: &str) -> Mount {
        Mount {
            typ: Some(typ),
            source: src.map(str::to_string),
            target: Some(dst.to_string()),
            ..Default::default()
        }
    }

    #[test]
    fn mounts_parse_and_refuse() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().to_str().unwrap().to_string();
        let mut m = mount(MountType::BIND, Some(&src), "/b/");
        m.read_only = Some(true);
        m.bind_options = Some(MountBindOptions {
            propagation: Some(MountBindOptionsPropagationEnum::RSLAVE),
            ..Default::default()
        });
        let p = parse_mount(&m).unwrap().mp;
        assert_eq!(
            (p.kind, p.destination.as_str(), p.rw),
            (Kind::Bind, "/b", false)
        );
        assert_eq!((p.mode.as_str(), p.propagation.as_str()), ("", "rslave"));
        assert!(!p.create_source);

        let e = parse_mount(&mount(MountType::BIND, Some("/nonexistent/x"), "/x")).unwrap_err();
        assert_eq!(
            e,
            "invalid mount config for type \"bind\": bind source path does not exist: /nonexistent/x"
        );
        let e = parse_mount(&mount(MountType::BIND, Some("rel"), "/x")).unwrap_err();
        assert_eq!(
            e,
            "invalid mount config for type \"bind\": invalid mount path: 'rel' mount path must be absolute"
        );
        let e = parse_mount(&mount(MountType::BIND, None, "/x")).unwrap_err();
        assert_eq!(
            e,
            "invalid mount config for type \"bind\": field Source must not be empty"
        );
        let e = parse_mount(&mount(MountType::VOLUME, None, "")).unwrap_err();
        assert_eq!(
            e,
            "invalid mount config for type \"volume\": field Target must not be empty"
        );
        let mut m = mount(MountType::VOLUME, None, "/x");
        m.read_only = Some(true);
        assert_eq!(
            parse_mount(&m).unwrap_err(),
            "invalid mount config for type \"volume\": must not set ReadOnly mode when using anonymous volumes"
        );
        let e = parse_mount(&mount(MountType::TMPFS, Some("a"), "/x")).unwrap_err();
        assert_eq!(
            e,
            "invalid mount config for type \"tmpfs\": field Source must not be specified"
        );
        let e = parse_mount(&mount(MountType::NPIPE, Some("a"), "/x")).unwrap_err();
        assert_eq!(
            e,
            "invalid mount config for type \"npipe\": mount type unknown"
        );

        let mut m = mount(MountType::VOLUME, Some("mv"), "/mv");
        m.volume_options = Some(MountVolumeOptions {
            no_copy: Some(true),
            labels: Some([("a".to_string(), "b".to_string())].into()),
            ..Default::default()
        });
        let p = parse_mount(&m).unwrap();
        assert_eq!((p.mp.name.as_str(), p.mp.mode.as_str()), ("mv", "z"));
        assert!(!p.mp.copy_data && !p.mp.anonymous);
        assert_eq!(p.volume_labels.get("a").map(String::as_str), Some("b"));
    }

    #[test]
    fn tmpfs_options() {
        let o = MountTmpfsOptions {
            size_bytes: Some(1 << 20),
            mode: Some(0o1770),
            options: None,
        };
        assert_eq!(tmpfs_data(Some(&o), false), "mode=1770,size=1m");
        let o = MountTmpfsOptions {
            size_bytes: Some(1000),
            mode: None,
            options: Some(vec![vec!["exec".into()], vec!["uid".into(), "5".into()]]),
        };
        assert_eq!(tmpfs_data(Some(&o), true), "ro,size=1000,exec,uid=5");
        assert_eq!(tmpfs_data(None, false), "");
        let p = parse_mount(&Mount {
            typ: Some(MountType::TMPFS),
            target: Some("/t".into()),
            tmpfs_options: Some(MountTmpfsOptions {
                size_bytes: Some(3 << 30),
                ..Default::default()
            }),
            ..Default::default()
        })
        .unwrap()
        .mp;
        assert_eq!((p.kind, p.tmpfs_data.as_str()), (Kind::Tmpfs, "size=3g"));
        assert!(check_tmpfs_destination("/run").is_ok());
        assert!(check_tmpfs_destination("run").is_err());
    }

    #[test]
    fn volumes_from() {
        assert_eq!(
            parse_volumes_from("c1").unwrap(),
            ("c1".to_string(), "rw".to_string())
        );
        assert_eq!(
            parse_volumes_from("c1:ro").unwrap(),
            ("c1".to_string(), "ro".to_string())
        );
        assert!(!volumes_from_rw("ro"));
        assert!(volumes_from_rw("z"));
        assert_eq!(
            parse_volumes_from("c1:rshared").unwrap_err(),
            "invalid mode: rshared"
        );
        assert_eq!(
            parse_volumes_from("c1:bad").unwrap_err(),
            "invalid mode: bad"
        );
        assert_eq!(
            parse_volumes_from("").unwrap_err(),
            "volumes-from specification cannot be an empty string"
        );
    }
}
