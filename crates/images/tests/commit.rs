//! `ImageService::commit` and what parents mean for `rmi`/`prune`, on a temporary data root.
#![allow(clippy::unwrap_used)] // test helpers, outside #[test] fns

use std::fs::File;
use std::path::Path;

use images::{
    CommitOptions, ContainerConfig, DeleteItem, ImageService, ImagesError, PruneFilter, Reference,
};

fn never(_: &images::Digest) -> Option<(String, bool)> {
    None
}

fn service(dir: &Path) -> (ImageService, images::Digest) {
    let svc = ImageService::open(&dir.join("root")).unwrap();
    let archive = test_support::fixtures::busybox_archive(dir);
    svc.load(File::open(archive).unwrap(), &mut |_| {}).unwrap();
    let id = svc.get("busybox").unwrap().id;
    (svc, id)
}

fn options(parent: &images::Digest, upper: &Path) -> CommitOptions {
    let container_config: ContainerConfig = serde_json::from_value(serde_json::json!({
        "Hostname": "0123456789ab",
        "Cmd": ["sh", "-c", "echo x > /new/f"],
        "Env": ["PATH=/usr/bin:/bin"],
        "Image": "busybox",
    }))
    .unwrap();
    CommitOptions {
        parent: parent.clone(),
        upper: upper.to_path_buf(),
        container_id: "0123456789ab".repeat(5) + "0123",
        container_config,
        config: None,
        changes: vec!["ENV X=1".into(), r#"CMD ["cat","/new/f"]"#.into()],
        comment: "msg".into(),
        author: "me".into(),
        reference: Some(Reference::parse_normalized("docker.io/library/myimg").unwrap()),
    }
}

#[test]
fn commit_makes_a_child_image() {
    let dir = tempfile::tempdir().unwrap();
    let (svc, parent) = service(dir.path());
    let upper = dir.path().join("upper");
    std::fs::create_dir_all(upper.join("new")).unwrap();
    std::fs::write(upper.join("new/f"), "x\n").unwrap();

    let id = svc.commit(&options(&parent, &upper)).unwrap();
    let img = svc.get("myimg:latest").unwrap();
    assert_eq!(img.id, id);
    assert_eq!(img.parent.as_ref(), Some(&parent));
    let base = svc.get("busybox").unwrap();
    assert_eq!(img.chain_ids.len(), base.chain_ids.len() + 1);
    assert_eq!(img.chain_ids[..base.chain_ids.len()], base.chain_ids[..]);
    let cfg = &img.config;
    assert_eq!(cfg.author.as_deref(), Some("me"));
    let c = cfg.config.as_ref().unwrap();
    assert_eq!(c.cmd, Some(vec!["cat".to_string(), "/new/f".to_string()]));
    assert_eq!(
        c.env,
        Some(vec!["PATH=/usr/bin:/bin".to_string(), "X=1".to_string()])
    );
    assert_eq!(c.extra["Hostname"], "0123456789ab");
    assert_eq!(cfg.extra["container_config"]["Cmd"][2], "echo x > /new/f");
    let last = cfg.history.last().unwrap();
    assert_eq!(last.comment.as_deref(), Some("msg"));
    assert_eq!(last.created_by.as_deref(), Some("sh -c echo x > /new/f"));
    // The new layer is unpacked on top of the parent's chain.
    let snapshot = dir
        .path()
        .join("root/snapshots")
        .join(img.chain_ids.last().unwrap().hex())
        .join("fs/new/f");
    assert_eq!(std::fs::read(snapshot).unwrap(), b"x\n");
    let history = svc.history("myimg").unwrap();
    assert_eq!(history[0].comment, "msg");
    assert_eq!(history[0].size, 2);

    // Nothing changed: the empty layer is not added, and its blob is not kept.
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let mut opts = options(&parent, &empty);
    opts.reference = None;
    opts.changes.clear();
    let id2 = svc.commit(&opts).unwrap();
    let img2 = svc.get(&id2.to_string()).unwrap();
    assert_eq!(img2.chain_ids, base.chain_ids);
    assert!(img2.config.history.last().unwrap().empty_layer);
    assert!(img2.repo_tags.is_empty());
    let empty_blob = dir.path().join("root/content/blobs/sha256").join(
        storage::upper_tar::EMPTY_LAYER_DIFF_ID
            .strip_prefix("sha256:")
            .unwrap(),
    );
    assert!(!empty_blob.exists());

    // Bad changes and unknown parents fail before anything is written.
    let mut bad = options(&parent, &upper);
    bad.changes = vec!["RUN rm -rf /".into()];
    assert!(matches!(
        svc.commit(&bad),
        Err(ImagesError::InvalidChange(_))
    ));
    let mut bad = options(&images::Digest::of(b"nope"), &upper);
    bad.reference = None;
    assert!(matches!(svc.commit(&bad), Err(ImagesError::NotFound(_))));
}

#[test]
fn parents_with_children_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let (svc, parent) = service(dir.path());
    let upper = dir.path().join("upper");
    std::fs::create_dir_all(&upper).unwrap();
    std::fs::write(upper.join("f"), "x").unwrap();
    let child = svc.commit(&options(&parent, &upper)).unwrap();

    // By ID: refused, whatever the force.
    for force in [false, true] {
        let err = svc
            .delete(&parent.to_string(), force, false, &never)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "conflict: unable to delete {} (cannot be forced) - image has dependent child images",
                &parent.hex()[..12]
            )
        );
    }
    assert_eq!(svc.get("busybox").unwrap().id, parent);
    // Prune leaves it (it is a parent), even with -a... and the tagged child too.
    let report = svc
        .prune(
            &PruneFilter {
                all: false,
                ..Default::default()
            },
            &never,
        )
        .unwrap();
    assert!(report.deleted.is_empty(), "{:?}", report.deleted);
    // By name: only untagged, the image stays for its child.
    let items = svc.delete("busybox", false, false, &never).unwrap();
    assert_eq!(items, vec![DeleteItem::Untagged("busybox:latest".into())]);
    assert!(svc.get(&parent.to_string()).is_ok());
    // Deleting the child takes the untagged parent with it.
    let items = svc.delete("myimg", false, false, &never).unwrap();
    assert!(items.contains(&DeleteItem::Deleted(child.clone())));
    assert!(items.contains(&DeleteItem::Deleted(parent.clone())));
    assert_eq!(svc.count(), 0);
}
