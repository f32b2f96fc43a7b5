//! Integration tests on a temporary data root with the real fixture images.
#![allow(clippy::unwrap_used)] // test helpers, outside #[test] fns

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use images::{
    DeleteItem, ImageService, ImagesError, ImportOptions, ListFilter, LoadEvent, PruneFilter,
    Reference,
};

const BUSYBOX_ID: &str = "705e4e94ccc8";

fn is_root() -> bool {
    let ok = std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false);
    if !ok {
        eprintln!("skipped: needs root");
    }
    ok
}

fn fixture(name: &str) -> Option<PathBuf> {
    let p = test_support::fixtures::shared_image(name);
    if p.is_none() {
        eprintln!("skipped: fixture {name} missing");
    }
    p
}

fn load_file(svc: &ImageService, path: &Path) -> Result<Vec<LoadEvent>, ImagesError> {
    let mut events = Vec::new();
    svc.load(File::open(path).unwrap(), &mut |e| events.push(e))?;
    Ok(events)
}

fn never(_: &images::Digest) -> Option<(String, bool)> {
    None
}

fn tags(svc: &ImageService, name: &str) -> Vec<String> {
    let mut t: Vec<String> = svc
        .get(name)
        .unwrap()
        .repo_tags
        .iter()
        .map(|r| r.familiar_string())
        .collect();
    t.sort();
    t
}

fn ingest_empty(root: &Path) -> bool {
    std::fs::read_dir(root.join("content/ingest"))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .all(|e| e.path().extension().is_some_and(|x| x == "lock"))
        })
        .unwrap_or(true)
}

#[test]
fn load_busybox_and_resolve() {
    let Some(bb) = fixture("busybox.tar") else {
        return;
    };
    if !is_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let svc = ImageService::open(dir.path()).unwrap();
    let events = load_file(&svc, &bb).unwrap();
    assert!(
        events
            .iter()
            .any(|e| matches!(e, LoadEvent::LoadedTag(t) if t == "busybox:latest"))
    );
    assert!(
        events
            .iter()
            .any(|e| matches!(e, LoadEvent::Progress { .. }))
    );
    let rec = svc.get("busybox").unwrap();
    assert!(rec.id.hex().starts_with(BUSYBOX_ID), "{}", rec.id);
    assert_eq!(rec.repo_tags.len(), 1);
    assert_eq!(rec.chain_ids.len(), 1);
    assert!(rec.size > 1_000_000, "{}", rec.size);
    assert_eq!(
        rec.config.config.as_ref().unwrap().cmd,
        Some(vec!["sh".to_string()])
    );
    let snaps = storage::Snapshotter::open(&dir.path().join("snapshots")).unwrap();
    assert!(
        snaps
            .fs_path(&rec.chain_ids[0])
            .join("bin/busybox")
            .is_file()
    );
    // by ID, sha256: ID, short ID, docker.io name
    for n in [
        rec.id.to_string(),
        rec.id.hex().to_string(),
        BUSYBOX_ID.to_string(),
        "docker.io/library/busybox:latest".to_string(),
    ] {
        assert_eq!(svc.get(&n).unwrap().id, rec.id, "{n}");
    }
    let e = svc.get("nope").unwrap_err();
    assert_eq!(e.to_string(), "No such image: nope:latest");
    assert!(matches!(
        svc.get("busybox:1").unwrap_err(),
        ImagesError::NotFound(_)
    ));
    assert_eq!(
        svc.get("abcdef0123").unwrap_err().to_string(),
        "No such image: abcdef0123:latest"
    );
    assert_eq!(svc.count(), 1);
    assert_eq!(svc.layers_size(), rec.size);
    // history
    let h = svc.history("busybox").unwrap();
    assert_eq!(h[0].id.as_ref(), Some(&rec.id));
    assert_eq!(h[0].tags, vec!["busybox:latest".to_string()]);
    assert_eq!(h.iter().map(|r| r.size).sum::<u64>(), rec.size);
    // loading again is fine and changes nothing
    load_file(&svc, &bb).unwrap();
    assert_eq!(svc.count(), 1);
    // reopen: state persisted
    drop(svc);
    let svc = ImageService::open(dir.path()).unwrap();
    let again = svc.get("busybox:latest").unwrap();
    assert_eq!(again.id, rec.id);
    assert_eq!(again.size, rec.size);
    assert!(again.last_tag_time.is_some());
    assert!(ingest_empty(dir.path()));
}

#[test]
fn load_nginx_and_debian_share_base() {
    let (Some(nginx), Some(debian)) = (
        fixture("nginx.tar.gz"),
        fixture("debian-bookworm-slim.tar.gz"),
    ) else {
        return;
    };
    if !is_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let svc = ImageService::open(dir.path()).unwrap();
    let t = std::time::Instant::now();
    load_file(&svc, &nginx).unwrap();
    eprintln!("load nginx.tar.gz: {:?}", t.elapsed());
    load_file(&svc, &debian).unwrap();
    let n = svc.get("nginx").unwrap();
    let d = svc.get("debian:bookworm-slim").unwrap();
    assert!(n.id.hex().starts_with("f735b639871e"));
    assert!(d.id.hex().starts_with("1b598892247c"));
    assert_eq!(n.chain_ids.len(), 2);
    assert_eq!(n.chain_ids[0], d.chain_ids[0]);
    let shared = svc.shared_sizes();
    assert_eq!(shared[&n.id], d.size);
    assert_eq!(shared[&d.id], d.size);
    assert_eq!(svc.layers_size(), n.size);
    // list: newest first
    let all = svc.list(&ListFilter::default()).unwrap();
    assert_eq!(all.len(), 2);
    assert!(all[0].created >= all[1].created);
    // rmi nginx keeps the shared base
    let items = svc.delete("nginx", false, false, &never).unwrap();
    assert_eq!(
        items,
        vec![
            DeleteItem::Untagged("nginx:latest".into()),
            DeleteItem::Deleted(n.id.clone()),
            DeleteItem::Deleted(n.chain_ids[1].clone()),
        ]
    );
    let snaps = storage::Snapshotter::open(&dir.path().join("snapshots")).unwrap();
    assert!(snaps.get(&d.chain_ids[0]).is_some());
    assert!(snaps.get(&n.chain_ids[1]).is_none());
    let content = storage::ContentStore::open(&dir.path().join("content")).unwrap();
    assert!(!content.exists(&n.id));
    assert!(!content.exists(&n.config.rootfs.diff_ids[1]));
    assert!(content.exists(&d.config.rootfs.diff_ids[0]));
}

fn skopeo() -> bool {
    std::process::Command::new("skopeo")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn save_and_load_round_trip() {
    let (Some(nginx), Some(bb)) = (fixture("nginx.tar.gz"), fixture("busybox.tar")) else {
        return;
    };
    if !is_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let svc = ImageService::open(dir.path().join("a").as_path()).unwrap();
    load_file(&svc, &nginx).unwrap();
    load_file(&svc, &bb).unwrap();
    let bb_id = svc.get("busybox").unwrap().id;
    svc.tag(
        "busybox",
        &Reference::parse_normalized("myrepo/bb:v1").unwrap(),
    )
    .unwrap();
    assert!(svc.save_plan(&["nope".into()]).is_err());
    let plan = svc
        .save_plan(&[
            "nginx".into(),
            "myrepo/bb:v1".into(),
            bb_id.short().to_string(),
        ])
        .unwrap();
    assert_eq!(plan.images.len(), 2);
    let out = dir.path().join("out.tar");
    let t = std::time::Instant::now();
    svc.save(&plan, File::create(&out).unwrap()).unwrap();
    eprintln!("save nginx+busybox: {:?}", t.elapsed());
    // the archive lists what docker 25+ writes
    let mut names = Vec::new();
    let mut manifest = Vec::new();
    let mut ar = tar::Archive::new(File::open(&out).unwrap());
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let p = e.path().unwrap().to_string_lossy().into_owned();
        if p == "manifest.json" {
            e.read_to_end(&mut manifest).unwrap();
        }
        names.push(p);
    }
    for n in ["index.json", "oci-layout", "repositories", "manifest.json"] {
        assert!(names.contains(&n.to_string()), "{n} in {names:?}");
    }
    let m: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
    assert_eq!(m[0]["RepoTags"], serde_json::json!(["nginx:latest"]));
    assert_eq!(m[1]["RepoTags"], serde_json::json!(["myrepo/bb:v1"]));
    assert_eq!(m[0]["Layers"].as_array().unwrap().len(), 2);

    let svc2 = ImageService::open(dir.path().join("b").as_path()).unwrap();
    let t = std::time::Instant::now();
    load_file(&svc2, &out).unwrap();
    eprintln!("load saved archive: {:?}", t.elapsed());
    assert_eq!(svc2.get("nginx").unwrap().id, svc.get("nginx").unwrap().id);
    assert_eq!(svc2.get("myrepo/bb:v1").unwrap().id, bb_id);
    assert!(svc2.get("busybox").is_err());

    if skopeo() {
        let o = std::process::Command::new("skopeo")
            .arg("inspect")
            .arg(format!("docker-archive:{}:nginx:latest", out.display()))
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v["Layers"].as_array().unwrap().len(), 2);
        // and the OCI layout side
        let oci = dir.path().join("oci");
        std::fs::create_dir(&oci).unwrap();
        let st = std::process::Command::new("tar")
            .arg("xf")
            .arg(&out)
            .arg("-C")
            .arg(&oci)
            .status()
            .unwrap();
        assert!(st.success());
        let o = std::process::Command::new("skopeo")
            .arg("inspect")
            .arg(format!("oci:{}:latest", oci.display()))
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    } else {
        eprintln!("skopeo not on PATH: skipping skopeo inspect");
    }
}

type Edit<'a> = &'a dyn Fn(&str, Vec<u8>) -> Option<Vec<u8>>;

/// Re-packs a docker-archive, letting `edit` change each file's bytes (None drops it).
fn repack(src: &Path, dst: &Path, edit: Edit<'_>) {
    let mut ar = tar::Archive::new(File::open(src).unwrap());
    let mut b = tar::Builder::new(File::create(dst).unwrap());
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let p = e.path().unwrap().to_string_lossy().into_owned();
        let mut h = e.header().clone();
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        if h.entry_type().is_dir() {
            b.append_data(&mut h, &p, &data[..]).unwrap();
            continue;
        }
        if let Some(data) = edit(&p, data) {
            h.set_size(data.len() as u64);
            b.append_data(&mut h, &p, &data[..]).unwrap();
        }
    }
    b.finish().unwrap();
}

fn raw_append(b: &mut tar::Builder<File>, path: &str, data: &[u8]) {
    // Write the name straight into the header so `..` is not refused by the builder.
    let mut h = tar::Header::new_old();
    h.as_old_mut().name[..path.len()].copy_from_slice(path.as_bytes());
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    b.append(&h, data).unwrap();
}

fn raw_append_vec(b: &mut tar::Builder<Vec<u8>>, path: &str, data: &[u8]) {
    let mut h = tar::Header::new_old();
    h.as_old_mut().name[..path.len()].copy_from_slice(path.as_bytes());
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    b.append(&h, data).unwrap();
}

#[test]
fn hostile_archives_are_refused_cleanly() {
    let Some(bb) = fixture("busybox.tar") else {
        return;
    };
    if !is_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let svc = ImageService::open(&root).unwrap();
    // Something tagged first, so repositories.json exists.
    svc.import(
        File::open(fixture("busybox-rootfs.tar").unwrap()).unwrap(),
        &ImportOptions {
            reference: Some(Reference::parse_normalized("keep:me").unwrap()),
            ..Default::default()
        },
    )
    .unwrap();
    let repos = std::fs::read(root.join("images/repositories.json")).unwrap();

    // 1. manifest pointing outside the archive
    let a = dir.path().join("escape.tar");
    repack(&bb, &a, &|p, d| {
        if p == "manifest.json" {
            Some(br#"[{"Config":"../x.json","RepoTags":["evil:1"],"Layers":[]}]"#.to_vec())
        } else {
            Some(d)
        }
    });
    let e = load_file(&svc, &a).unwrap_err();
    assert!(matches!(e, ImagesError::InvalidArchive(_)), "{e}");

    // 2. an entry with `..` in its path
    let a = dir.path().join("dotdot.tar");
    {
        let mut b = tar::Builder::new(File::create(&a).unwrap());
        raw_append(&mut b, "../evil.json", b"{}");
        b.finish().unwrap();
    }
    let e = load_file(&svc, &a).unwrap_err();
    assert!(matches!(e, ImagesError::InvalidArchive(_)), "{e}");

    // 3. a config whose diff_id does not match the layer
    let a = dir.path().join("mismatch.tar");
    repack(&bb, &a, &|p, d| {
        if p.ends_with(".json") && p != "manifest.json" {
            let mut v: serde_json::Value = serde_json::from_slice(&d).unwrap();
            v["rootfs"]["diff_ids"][0] = format!("sha256:{}", "1".repeat(64)).into();
            v["architecture"] = "amd64".into();
            Some(serde_json::to_vec(&v).unwrap())
        } else {
            Some(d)
        }
    });
    let e = load_file(&svc, &a).unwrap_err();
    assert!(
        matches!(&e, ImagesError::InvalidConfig { reason, .. } if reason.contains("111111")),
        "{e}"
    );

    // 4. a truncated gzip
    let a = dir.path().join("trunc.tar.gz");
    {
        let mut data = Vec::new();
        let mut enc = flate2::write::GzEncoder::new(&mut data, flate2::Compression::fast());
        enc.write_all(&std::fs::read(&bb).unwrap()).unwrap();
        enc.finish().unwrap();
        data.truncate(data.len() / 2);
        std::fs::write(&a, data).unwrap();
    }
    let e = load_file(&svc, &a).unwrap_err();
    assert!(matches!(e, ImagesError::InvalidArchive(_)), "{e}");

    // 5. not an archive at all / missing manifest
    let e = svc
        .load(&b"hello world, not a tar"[..], &mut |_| {})
        .unwrap_err();
    assert!(
        matches!(e, ImagesError::InvalidArchive(_) | ImagesError::Storage(_)),
        "{e}"
    );
    let a = dir.path().join("nomanifest.tar");
    repack(&bb, &a, &|p, d| (p != "manifest.json").then_some(d));
    let e = load_file(&svc, &a).unwrap_err();
    assert!(matches!(e, ImagesError::InvalidArchive(_)), "{e}");

    // 6. a verified layer whose content escapes: refused by the layer applier
    let a = dir.path().join("evil-layer.tar");
    {
        let mut layer = tar::Builder::new(Vec::new());
        raw_append_vec(&mut layer, "../../evil", b"x");
        let layer = layer.into_inner().unwrap();
        let diff = images::Digest::of(&layer);
        let config = serde_json::to_vec(&serde_json::json!({
            "architecture": "amd64", "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [diff.to_string()]},
        }))
        .unwrap();
        let manifest = serde_json::to_vec(&serde_json::json!([
            {"Config": "c.json", "RepoTags": ["evil:layer"], "Layers": ["l/layer.tar"]}
        ]))
        .unwrap();
        let mut b = tar::Builder::new(File::create(&a).unwrap());
        for (p, d) in [
            ("c.json", config),
            ("l/layer.tar", layer),
            ("manifest.json", manifest),
        ] {
            let mut h = tar::Header::new_gnu();
            h.set_size(d.len() as u64);
            h.set_mode(0o644);
            b.append_data(&mut h, p, &d[..]).unwrap();
        }
        b.finish().unwrap();
    }
    let e = load_file(&svc, &a).unwrap_err();
    assert!(matches!(e, ImagesError::Storage(_)), "{e}");
    assert!(svc.get("evil:layer").is_err());

    assert_eq!(
        std::fs::read(root.join("images/repositories.json")).unwrap(),
        repos
    );
    assert!(ingest_empty(&root));
    assert_eq!(svc.count(), 1);
    assert!(svc.get("busybox").is_err());
    assert!(svc.get("evil:1").is_err());
}

#[test]
fn import_with_changes() {
    let Some(rootfs) = fixture("busybox-rootfs.tar") else {
        return;
    };
    if !is_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let svc = ImageService::open(dir.path()).unwrap();
    let opts = ImportOptions {
        changes: vec![
            r#"CMD ["sh"]"#.into(),
            "ENV A=1".into(),
            "EXPOSE 80".into(),
            "LABEL a=b".into(),
        ],
        message: Some("hello".into()),
        reference: Some(Reference::parse_normalized("imported").unwrap()),
        platform: None,
    };
    // gzip-compressed input works too
    let mut gz = Vec::new();
    let mut enc = flate2::write::GzEncoder::new(&mut gz, flate2::Compression::fast());
    enc.write_all(&std::fs::read(&rootfs).unwrap()).unwrap();
    enc.finish().unwrap();
    let id = svc.import(&gz[..], &opts).unwrap();
    let rec = svc.get("imported:latest").unwrap();
    assert_eq!(rec.id, id);
    let c = rec.config.config.as_ref().unwrap();
    assert_eq!(c.cmd, Some(vec!["sh".to_string()]));
    assert_eq!(c.env, Some(vec!["A=1".to_string()]));
    assert!(c.exposed_ports.as_ref().unwrap().contains_key("80/tcp"));
    assert_eq!(rec.config.os, "linux");
    assert_eq!(rec.config.architecture, "amd64");
    assert_eq!(rec.config.comment.as_deref(), Some("hello"));
    assert_eq!(rec.config.history[0].comment.as_deref(), Some("hello"));
    assert!(rec.created.is_some());
    let by_label = |l: &str| ListFilter {
        labels: vec![l.to_string()],
        ..Default::default()
    };
    assert_eq!(svc.list(&by_label("a")).unwrap().len(), 1);
    assert_eq!(svc.list(&by_label("a=b")).unwrap().len(), 1);
    assert_eq!(svc.list(&by_label("a=c")).unwrap().len(), 0);
    // the diff ID is the digest of the uncompressed tar
    let raw = std::fs::read(&rootfs).unwrap();
    assert_eq!(rec.config.rootfs.diff_ids[0], images::Digest::of(&raw));
    let snaps = storage::Snapshotter::open(&dir.path().join("snapshots")).unwrap();
    assert!(
        snaps
            .fs_path(&rec.chain_ids[0])
            .join("bin/busybox")
            .is_file()
    );
    // bad change: nothing written
    let bad = ImportOptions {
        changes: vec!["FOO bar".into()],
        ..Default::default()
    };
    let e = svc.import(&raw[..], &bad).unwrap_err();
    assert_eq!(e.to_string(), "FOO is not a valid change command");
    // untagged import
    let id2 = svc.import(&raw[..], &ImportOptions::default()).unwrap();
    assert_ne!(id2, id);
    assert!(svc.get(id2.short()).unwrap().repo_tags.is_empty());
    assert_eq!(svc.count(), 2);
    assert_eq!(
        svc.history(id2.short()).unwrap()[0].comment,
        "Imported from -"
    );
}

#[test]
fn tag_delete_and_prune() {
    let Some(bb) = fixture("busybox.tar") else {
        return;
    };
    if !is_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let svc = ImageService::open(dir.path()).unwrap();
    load_file(&svc, &bb).unwrap();
    let id = svc.get("busybox").unwrap().id;
    let r = |s: &str| Reference::parse_normalized(s).unwrap();
    svc.tag("busybox", &r("myrepo/bb")).unwrap();
    svc.tag(id.short(), &r("localhost:5000/bb:v1")).unwrap();
    assert!(svc.tag("nope", &r("x")).is_err());
    assert!(svc.tag("busybox", &r(&format!("x@{id}"))).is_err());
    assert_eq!(
        tags(&svc, "busybox"),
        vec!["busybox:latest", "localhost:5000/bb:v1", "myrepo/bb:latest"]
    );

    // by ID with several references: must force
    let e = svc.delete(id.short(), false, false, &never).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "conflict: unable to delete {} (must be forced) - image is referenced in multiple repositories",
            id.short()
        )
    );
    // by reference with others left: untag only
    let items = svc.delete("myrepo/bb", false, false, &never).unwrap();
    assert_eq!(items, vec![DeleteItem::Untagged("myrepo/bb:latest".into())]);
    let items = svc
        .delete("localhost:5000/bb:v1", false, false, &never)
        .unwrap();
    assert_eq!(
        items,
        vec![DeleteItem::Untagged("localhost:5000/bb:v1".into())]
    );

    // last reference, in use
    let stopped = |_: &images::Digest| Some(("0123456789abcdef".to_string(), false));
    let running = |_: &images::Digest| Some(("0123456789abcdef".to_string(), true));
    let e = svc.delete("busybox", false, false, &stopped).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "conflict: unable to remove repository reference \"busybox:latest\" (must force) - container 0123456789ab is using its referenced image {}",
            id.short()
        )
    );
    let e = svc.delete(id.short(), true, false, &running).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "conflict: unable to delete {} (cannot be forced) - image is being used by running container 0123456789ab",
            id.short()
        )
    );
    let e = svc.delete(id.short(), false, false, &stopped).unwrap_err();
    assert!(
        e.to_string()
            .contains("(must be forced) - image is being used by stopped container 0123456789ab"),
        "{e}"
    );
    assert_eq!(tags(&svc, "busybox"), vec!["busybox:latest"]);

    // filters
    let f = |refs: &[&str]| ListFilter {
        references: refs.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    };
    assert_eq!(svc.list(&f(&["busy*"])).unwrap().len(), 1);
    assert_eq!(svc.list(&f(&["busybox:latest"])).unwrap().len(), 1);
    assert_eq!(svc.list(&f(&["nginx"])).unwrap().len(), 0);
    let dangling = ListFilter {
        dangling: Some(true),
        ..Default::default()
    };
    assert_eq!(svc.list(&dangling).unwrap().len(), 0);
    let until = ListFilter {
        until: Some("1h".into()),
        ..Default::default()
    };
    assert_eq!(svc.list(&until).unwrap().len(), 1); // created long ago
    let since = ListFilter {
        since: Some("busybox".into()),
        ..Default::default()
    };
    assert_eq!(svc.list(&since).unwrap().len(), 0);
    let missing = ListFilter {
        before: Some("nope".into()),
        ..Default::default()
    };
    assert!(matches!(
        svc.list(&missing).unwrap_err(),
        ImagesError::NotFound(_)
    ));
    let label = ListFilter {
        labels: vec!["x".into()],
        ..Default::default()
    };
    assert_eq!(svc.list(&label).unwrap().len(), 0);

    // an untagged import, then prune removes only it
    let rootfs = fixture("busybox-rootfs.tar").unwrap();
    let lone = svc
        .import(File::open(&rootfs).unwrap(), &ImportOptions::default())
        .unwrap();
    assert_eq!(svc.list(&dangling).unwrap().len(), 1);
    let rep = svc.prune(&PruneFilter::default(), &never).unwrap();
    assert!(
        rep.deleted.contains(&DeleteItem::Deleted(lone.clone())),
        "{:?}",
        rep.deleted
    );
    assert!(rep.space_reclaimed > 0);
    assert_eq!(svc.count(), 1);
    // prune -a spares images in use
    let rep = svc
        .prune(
            &PruneFilter {
                all: true,
                ..Default::default()
            },
            &stopped,
        )
        .unwrap();
    assert!(rep.deleted.is_empty());
    assert_eq!(svc.count(), 1);

    // force-delete by tag while a stopped container uses it
    let items = svc.delete("busybox:latest", true, false, &stopped).unwrap();
    assert_eq!(items[0], DeleteItem::Untagged("busybox:latest".into()));
    assert_eq!(items[1], DeleteItem::Deleted(id.clone()));
    assert_eq!(svc.count(), 0);
    assert_eq!(svc.layers_size(), 0);
    let content = storage::ContentStore::open(&dir.path().join("content")).unwrap();
    let left: HashMap<_, _> = content
        .list()
        .unwrap()
        .into_iter()
        .map(|d| (d, ()))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn load_oci_layouts() {
    let Some(bb) = fixture("busybox.tar") else {
        return;
    };
    if !is_root() {
        return;
    }
    if !skopeo() {
        eprintln!("skipped: skopeo not on PATH");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let gz = dir.path().join("gz.tar");
    let zst = dir.path().join("zst.tar");
    for (dest, extra) in [
        (
            format!("oci-archive:{}:docker.io/library/busybox:oci", gz.display()),
            None,
        ),
        (
            format!("oci-archive:{}:bbz", zst.display()),
            Some("--dest-compress-format=zstd"),
        ),
    ] {
        let mut c = std::process::Command::new("skopeo");
        c.args(["copy", "-q"]);
        if let Some(x) = extra {
            c.arg(x);
        }
        let st = c
            .arg(format!("docker-archive:{}", bb.display()))
            .arg(dest)
            .status()
            .unwrap();
        assert!(st.success());
    }
    let svc = ImageService::open(&dir.path().join("root")).unwrap();
    let ev = load_file(&svc, &gz).unwrap();
    assert!(
        ev.iter()
            .any(|e| matches!(e, LoadEvent::LoadedTag(t) if t == "busybox:oci")),
        "{ev:?}"
    );
    let rec = svc.get("busybox:oci").unwrap();
    // skopeo rewrites the config as an OCI config, but the layer is the same
    load_file(&svc, &bb).unwrap();
    let orig = svc.get("busybox:latest").unwrap();
    assert_eq!(rec.config.rootfs.diff_ids, orig.config.rootfs.diff_ids);
    let ev = load_file(&svc, &zst).unwrap();
    assert!(
        ev.iter()
            .any(|e| matches!(e, LoadEvent::LoadedId(id) if *id == rec.id)),
        "{ev:?}"
    );
    assert_eq!(svc.count(), 2);

    // a nested index with platforms, named by io.containerd.image.name
    let nested = dir.path().join("nested.tar");
    {
        let mut files: Vec<(String, Vec<u8>)> = Vec::new();
        let mut ar = tar::Archive::new(File::open(&gz).unwrap());
        for e in ar.entries().unwrap() {
            let mut e = e.unwrap();
            if !e.header().entry_type().is_file() {
                continue;
            }
            let p = e.path().unwrap().to_string_lossy().into_owned();
            let mut d = Vec::new();
            e.read_to_end(&mut d).unwrap();
            files.push((p, d));
        }
        let idx: serde_json::Value =
            serde_json::from_slice(&files.iter().find(|(p, _)| p == "index.json").unwrap().1)
                .unwrap();
        let m = idx["manifests"][0].clone();
        let mut arm = m.clone();
        arm["digest"] = format!("sha256:{}", "2".repeat(64)).into();
        arm["platform"] = serde_json::json!({"os": "linux", "architecture": "s390x"});
        let mut amd = m.clone();
        amd.as_object_mut().unwrap().remove("annotations");
        amd["platform"] = serde_json::json!({"os": "linux", "architecture": "amd64"});
        let inner = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [arm, amd],
        }))
        .unwrap();
        let inner_d = images::Digest::of(&inner);
        let outer = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "manifests": [{
                "mediaType": "application/vnd.oci.image.index.v1+json",
                "digest": inner_d.to_string(),
                "size": inner.len(),
                "annotations": {"io.containerd.image.name": "localhost:5000/nested:v2",
                                "org.opencontainers.image.ref.name": "v2"},
            }],
        }))
        .unwrap();
        files.retain(|(p, _)| p != "index.json");
        files.push((format!("blobs/sha256/{}", inner_d.hex()), inner));
        files.push(("index.json".into(), outer));
        let mut b = tar::Builder::new(File::create(&nested).unwrap());
        for (p, d) in files {
            let mut h = tar::Header::new_gnu();
            h.set_size(d.len() as u64);
            h.set_mode(0o644);
            b.append_data(&mut h, p, &d[..]).unwrap();
        }
        b.finish().unwrap();
    }
    if images_host_is_amd64() {
        load_file(&svc, &nested).unwrap();
        assert_eq!(svc.get("localhost:5000/nested:v2").unwrap().id, rec.id);
    }
}

fn images_host_is_amd64() -> bool {
    std::env::consts::ARCH == "x86_64"
}
