//! The volume store against a temporary root: records, names, options, mount counts, and (as
//! root) tmpfs and bind volumes mounted on first use and unmounted on last.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::collections::BTreeMap;
use std::path::Path;

use volumes::{ANONYMOUS_LABEL, VolumeStore, VolumesError};

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn store(dir: &Path) -> VolumeStore {
    VolumeStore::open(&dir.join("volumes")).unwrap()
}

#[test]
fn create_get_list_remove() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    let v = s
        .create(Some("v1"), "local", map(&[]), map(&[("a", "b")]), false)
        .unwrap();
    assert_eq!(v.name, "v1");
    assert_eq!(v.driver, "local");
    assert_eq!(v.mountpoint, dir.path().join("volumes/v1/_data"));
    assert!(v.mountpoint.is_dir());
    assert_eq!(v.labels, map(&[("a", "b")]));
    assert!(!v.anonymous);
    assert_eq!(v.created_at.timestamp_subsec_nanos(), 0);

    // Creating it again returns the existing volume unchanged.
    let again = s
        .create(Some("v1"), "", map(&[]), map(&[("c", "d")]), false)
        .unwrap();
    assert_eq!(again, v);

    let generated = s.create(None, "local", map(&[]), map(&[]), true).unwrap();
    assert_eq!(generated.name.len(), 64);
    assert!(generated.anonymous);
    assert_eq!(generated.labels, map(&[(ANONYMOUS_LABEL, "")]));
    let empty = s
        .create(Some(""), "local", map(&[]), map(&[]), false)
        .unwrap();
    assert_eq!(empty.name.len(), 64);

    let names: Vec<String> = s.list().into_iter().map(|v| v.name).collect();
    let mut sorted = vec![empty.name.clone(), generated.name.clone(), "v1".to_string()];
    sorted.sort();
    assert_eq!(names, sorted);

    assert_eq!(s.get("v1").unwrap(), v);
    std::fs::write(v.mountpoint.join("f"), b"hello").unwrap();
    assert_eq!(s.size("v1"), Some(5));
    assert_eq!(s.size("nope"), None);

    s.remove("v1").unwrap();
    assert!(!dir.path().join("volumes/v1").exists());
    assert!(matches!(s.get("v1"), Err(VolumesError::NotFound(n)) if n == "v1"));
    assert!(matches!(s.remove("v1"), Err(VolumesError::NotFound(_))));
}

#[test]
fn bad_requests_are_refused_with_mobys_texts() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    let e = s
        .create(Some("v"), "local", map(&[]), map(&[]), false)
        .unwrap_err();
    assert!(matches!(e, VolumesError::InvalidName(_)), "{e}");
    let e = s
        .create(Some("../x"), "local", map(&[]), map(&[]), false)
        .unwrap_err();
    assert!(e.to_string().contains("includes invalid characters"), "{e}");
    let e = s
        .create(Some("v2"), "nfs-plugin", map(&[]), map(&[]), false)
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "error looking up volume plugin nfs-plugin: plugin \"nfs-plugin\" not found"
    );
    let e = s
        .create(Some("v2"), "local", map(&[("bogus", "1")]), map(&[]), false)
        .unwrap_err();
    assert_eq!(e.to_string(), "invalid option: \"bogus\"");
    // Nothing was left behind by the refusals.
    assert!(s.list().is_empty());
    assert_eq!(
        std::fs::read_dir(dir.path().join("volumes"))
            .unwrap()
            .count(),
        0
    );
}

#[test]
fn volumes_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = {
        let s = store(dir.path());
        let a = s
            .create(Some("keep"), "local", map(&[]), map(&[("x", "y")]), false)
            .unwrap();
        let b = s
            .create(
                Some("tmp"),
                "local",
                map(&[("type", "tmpfs"), ("device", "tmpfs"), ("o", "size=1m")]),
                map(&[]),
                true,
            )
            .unwrap();
        std::fs::write(a.mountpoint.join("data"), b"x").unwrap();
        (a, b)
    };
    // A directory with data but no record (made by hand) is a plain volume; junk is ignored.
    std::fs::create_dir_all(dir.path().join("volumes/legacy/_data")).unwrap();
    std::fs::create_dir_all(dir.path().join("volumes/empty-dir")).unwrap();
    std::fs::write(dir.path().join("volumes/stray-file"), b"").unwrap();
    std::fs::create_dir_all(dir.path().join("volumes/.removing-old/_data")).unwrap();

    let s = store(dir.path());
    assert_eq!(s.get("keep").unwrap(), a);
    assert_eq!(s.get("tmp").unwrap(), b);
    assert!(s.get("tmp").unwrap().needs_mount());
    assert!(s.get("legacy").unwrap().labels.is_empty());
    assert!(s.get("empty-dir").is_err());
    assert_eq!(s.list().len(), 3);
    assert!(!dir.path().join("volumes/.removing-old").exists());
    assert_eq!(std::fs::read(a.mountpoint.join("data")).unwrap(), b"x");
}

#[test]
fn plain_volumes_count_mounts_by_container() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    let v = s
        .create(Some("shared"), "local", map(&[]), map(&[]), false)
        .unwrap();
    assert_eq!(s.mount("shared", "c1").unwrap(), v.mountpoint);
    assert_eq!(s.mount("shared", "c1").unwrap(), v.mountpoint);
    s.mount("shared", "c2").unwrap();
    assert_eq!(s.mounted_by("shared"), vec!["c1", "c2"]);
    assert!(matches!(
        s.remove("shared"),
        Err(VolumesError::ActiveMounts)
    ));
    s.unmount("shared", "c1").unwrap();
    assert_eq!(s.mounted_by("shared"), vec!["c1", "c2"]);
    s.unmount("shared", "c1").unwrap();
    s.unmount("shared", "c2").unwrap();
    // Releasing more than was taken is harmless.
    s.unmount("shared", "c2").unwrap();
    assert!(s.mounted_by("shared").is_empty());
    assert!(matches!(
        s.mount("nope", "c1"),
        Err(VolumesError::NotFound(_))
    ));
    s.remove("shared").unwrap();
}

#[test]
fn tmpfs_volume_is_mounted_on_first_use_and_unmounted_on_last() {
    test_support::require_root!();
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    let v = s
        .create(
            Some("tv"),
            "local",
            map(&[
                ("type", "tmpfs"),
                ("device", "tmpfs"),
                ("o", "size=2m,mode=0750"),
            ]),
            map(&[]),
            false,
        )
        .unwrap();
    assert!(!linux::mount::is_mountpoint(&v.mountpoint));
    let p = s.mount("tv", "c1").unwrap();
    assert!(linux::mount::is_mountpoint(&p));
    let st = nix::sys::statfs::statfs(&p).unwrap();
    assert_eq!(st.filesystem_type(), nix::sys::statfs::TMPFS_MAGIC);
    std::fs::write(p.join("f"), b"in tmpfs").unwrap();
    s.mount("tv", "c2").unwrap();
    s.unmount("tv", "c1").unwrap();
    assert!(linux::mount::is_mountpoint(&p), "still used by c2");

    // A restarted store recognises the live mount and does not mount it again.
    drop(s);
    let s = store(dir.path());
    s.mount("tv", "c2").unwrap();
    assert_eq!(std::fs::read(p.join("f")).unwrap(), b"in tmpfs");
    s.unmount("tv", "c2").unwrap();
    assert!(!linux::mount::is_mountpoint(&p));
    assert!(
        !p.join("f").exists(),
        "tmpfs content is gone with the mount"
    );

    // A mounted volume with no users left (after a restart) is unmounted on removal.
    s.mount("tv", "c3").unwrap();
    drop(s);
    let s = store(dir.path());
    s.remove("tv").unwrap();
    assert!(!linux::mount::is_mountpoint(&p));
    assert!(!dir.path().join("volumes/tv").exists());
}

#[test]
fn bind_volume_removal_keeps_the_host_directory() {
    test_support::require_root!();
    let dir = tempfile::tempdir().unwrap();
    let host = dir.path().join("host");
    std::fs::create_dir(&host).unwrap();
    std::fs::write(host.join("precious"), b"keep me").unwrap();
    let s = store(dir.path());
    s.create(
        Some("bv"),
        "local",
        map(&[
            ("type", "none"),
            ("o", "bind"),
            ("device", host.to_str().unwrap()),
        ]),
        map(&[]),
        false,
    )
    .unwrap();
    let p = s.mount("bv", "c1").unwrap();
    assert_eq!(std::fs::read(p.join("precious")).unwrap(), b"keep me");
    std::fs::write(p.join("new"), b"via volume").unwrap();
    s.unmount("bv", "c1").unwrap();
    assert!(!linux::mount::is_mountpoint(&p));
    // Mounted again, then removed while mounted by nobody but left mounted on disk.
    s.mount("bv", "c2").unwrap();
    drop(s);
    let s = store(dir.path());
    s.remove("bv").unwrap();
    assert_eq!(std::fs::read(host.join("precious")).unwrap(), b"keep me");
    assert_eq!(std::fs::read(host.join("new")).unwrap(), b"via volume");

    // A read-only bind.
    s.create(
        Some("ro"),
        "local",
        map(&[
            ("type", "none"),
            ("o", "bind,ro"),
            ("device", host.to_str().unwrap()),
        ]),
        map(&[]),
        false,
    )
    .unwrap();
    let p = s.mount("ro", "c1").unwrap();
    let e = std::fs::write(p.join("nope"), b"x").unwrap_err();
    assert_eq!(e.raw_os_error(), Some(nix::libc::EROFS));
    s.unmount("ro", "c1").unwrap();
    s.remove("ro").unwrap();
    assert!(host.join("precious").exists());

    // A missing device fails the mount with moby's prefix, and nothing stays mounted.
    s.create(
        Some("gone"),
        "local",
        map(&[("type", "none"), ("o", "bind"), ("device", "/no/such/dir")]),
        map(&[]),
        false,
    )
    .unwrap();
    let e = s.mount("gone", "c1").unwrap_err();
    let want = format!(
        "failed to mount local volume: mount /no/such/dir:{}: no such file or directory",
        dir.path().join("volumes/gone/_data").display()
    );
    assert_eq!(e.to_string(), want);
    assert!(s.mounted_by("gone").is_empty());
    s.remove("gone").unwrap();
}
