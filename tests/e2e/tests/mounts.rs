//! End-to-end container mounts through the real docker CLI and `berth`: `-v` binds and named
//! volumes (the seed scenario), a missing `-v` host directory created, `--mount` binds, volumes
//! and tmpfs (sizes, read-only), `--tmpfs`, `--volumes-from` (and `:ro`), anonymous volumes
//! from an image `VOLUME` filled by copy-up and removed by `rm -v`/`--rm` (named ones never),
//! inspect's `Mounts`, moby's texts for bad specs, nothing left behind by failed creates and
//! starts, and symlinks planted in an image or a shared volume that must not place a mount
//! outside the container's root. Every test removes its containers before its daemon stops and
//! checks that no mount is left under the data root.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use test_support::daemon::{TestDaemon, fails, no_mounts_under, ok};
use test_support::{fixtures, require_root};

fn mounts_of(d: &TestDaemon, name: &str) -> Vec<serde_json::Value> {
    let out = ok(&d.docker(&["inspect", "-f", "{{json .Mounts}}", name]));
    serde_json::from_str::<Vec<serde_json::Value>>(out.trim()).unwrap()
}

fn mount_at<'a>(mounts: &'a [serde_json::Value], dest: &str) -> &'a serde_json::Value {
    mounts
        .iter()
        .find(|m| m["Destination"] == dest)
        .unwrap_or_else(|| panic!("no mount at {dest}: {mounts:?}"))
}

/// The volume directories (`<data-root>/volumes/<name>`) that exist.
fn volume_dirs(d: &TestDaemon) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(d.data_root.join("volumes"))
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.path().is_dir())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn is_anonymous_name(n: &str) -> bool {
    n.len() == 64 && n.chars().all(|c| c.is_ascii_hexdigit())
}

/// A unique host path under /tmp that must never appear (a mount that escaped the root).
fn escape_probe(tag: &str) -> PathBuf {
    PathBuf::from(format!(
        "/tmp/berth-escape-{tag}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ))
}

fn host_has_mount_at(path: &Path) -> bool {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let p = path.to_string_lossy();
    info.lines().any(|l| l.split(' ').nth(4) == Some(&*p))
}

/// A raw `POST` with a JSON body on the daemon's socket: (status line, body).
fn raw_post(d: &TestDaemon, path: &str, body: &str) -> (String, String) {
    use std::io::{Read, Write};
    let mut s = std::os::unix::net::UnixStream::connect(&d.socket).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.0\r\nHost: berth\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap();
    (head.lines().next().unwrap().to_string(), body.to_string())
}

#[test]
fn seed_binds_and_named_volumes() {
    require_root!();
    let d = TestDaemon::start();
    d.load_busybox();
    let src = d.dir().join("data/src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("hello"), "from host\n").unwrap();
    let bind = format!("{}:/test/src", src.display());

    // The container sees and writes the host directory (docker CLI, then berth).
    let out = ok(&d.docker(&[
        "run",
        "--rm",
        "-v",
        &bind,
        "busybox",
        "sh",
        "-c",
        "cat /test/src/hello; echo from-docker > /test/src/d",
    ]));
    assert_eq!(out, "from host\n");
    assert_eq!(
        std::fs::read_to_string(src.join("d")).unwrap(),
        "from-docker\n"
    );
    let out = ok(&d.berth(&[
        "run",
        "--rm",
        "-v",
        &bind,
        "busybox",
        "sh",
        "-c",
        "cat /test/src/d; echo from-berth > /test/src/b",
    ]));
    assert_eq!(out, "from-docker\n");
    assert_eq!(
        std::fs::read_to_string(src.join("b")).unwrap(),
        "from-berth\n"
    );

    // The seed scenario with nginx, interactively with a tty, when the image is available.
    if let Some(nginx) = fixtures::shared_image("nginx.tar.gz") {
        ok(&d.docker(&["load", "-q", "-i", nginx.to_str().unwrap()]));
        let cmd = format!(
            "{} run -it --rm -v {bind} nginx sh -c 'cat /test/src/hello; echo from-nginx > /test/src/n'",
            test_support::daemon::docker_cli().display()
        );
        let out = std::process::Command::new("script")
            .args(["-qec", &cmd, "/dev/null"])
            .envs(d.client_env())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{text}");
        assert!(text.contains("from host"), "{text}");
        assert_eq!(
            std::fs::read_to_string(src.join("n")).unwrap(),
            "from-nginx\n"
        );
    } else {
        eprintln!("no shared nginx image: the nginx part is skipped");
    }

    // A file written to a named volume outlives its container and is seen by a new one.
    ok(&d.docker(&[
        "run",
        "--name",
        "w1",
        "-v",
        "keep:/data",
        "busybox",
        "sh",
        "-c",
        "echo kept > /data/f",
    ]));
    let m = mounts_of(&d, "w1");
    let v = mount_at(&m, "/data");
    assert_eq!(v["Type"], "volume");
    assert_eq!(v["Name"], "keep");
    assert_eq!(v["Driver"], "local");
    assert_eq!(v["Mode"], "z");
    assert_eq!(v["RW"], true);
    assert_eq!(v["Propagation"], "");
    let source = d.data_root.join("volumes/keep/_data");
    assert_eq!(v["Source"], source.display().to_string());
    ok(&d.docker(&["rm", "-v", "w1"]));
    assert_eq!(std::fs::read_to_string(source.join("f")).unwrap(), "kept\n");
    // The volume's mount and unmount were events.
    let until = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 1)
    .to_string();
    let ev = ok(&d.docker(&[
        "events",
        "--since",
        "1",
        "--until",
        &until,
        "--filter",
        "type=volume",
        "--format",
        "{{.Action}} {{.Actor.ID}} {{index .Actor.Attributes \"destination\"}}",
    ]));
    assert!(ev.contains("mount keep /data\n"), "{ev}");
    assert!(ev.contains("unmount keep"), "{ev}");
    let out = ok(&d.berth(&[
        "run",
        "--rm",
        "-v",
        "keep:/again",
        "busybox",
        "cat",
        "/again/f",
    ]));
    assert_eq!(out, "kept\n");
    assert!(volume_dirs(&d).contains(&"keep".to_string()));

    d.rm_all();
    assert!(no_mounts_under(&d.data_root));
}

#[test]
fn binds_modes_tmpfs_and_inspect() {
    require_root!();
    let d = TestDaemon::start();
    d.load_busybox();
    let base = d.dir().join("h");
    std::fs::create_dir_all(&base).unwrap();

    // A missing -v host directory is created (0755), as Docker does.
    let missing = base.join("new/deep");
    ok(&d.docker(&[
        "run",
        "--rm",
        "-v",
        &format!("{}:/m", missing.display()),
        "busybox",
        "touch",
        "/m/made",
    ]));
    assert!(missing.join("made").is_file());
    let meta = std::fs::metadata(&missing).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o755);

    // --mount type=bind with a missing source: 400 with moby's text; nothing is created.
    let nope = base.join("nope");
    let target = format!("type=bind,src={},dst=/x", nope.display());
    let err = fails(&d.docker(&["run", "--rm", "--mount", &target, "busybox", "true"]));
    let want = format!(
        "invalid mount config for type \"bind\": bind source path does not exist: {}",
        nope.display()
    );
    assert!(err.contains(&want), "{err}");
    let err = fails(&d.berth(&["create", "--mount", &target, "busybox"]));
    assert!(err.contains(&want), "{err}");
    assert!(!nope.exists());

    // :ro and --mount readonly: writes fail; rw binds write.
    let ro = format!("{}:/ro:ro", base.display());
    let out = d.docker(&["run", "--rm", "-v", &ro, "busybox", "touch", "/ro/x"]);
    let err = fails(&out);
    assert!(err.contains("Read-only file system"), "{err}");
    assert!(!base.join("x").exists());
    let out = d.docker(&[
        "run",
        "--rm",
        "--mount",
        &format!("type=bind,src={},dst=/ro2,readonly", base.display()),
        "busybox",
        "touch",
        "/ro2/x",
    ]);
    assert!(fails(&out).contains("Read-only file system"));

    // A shared bind needs a shared source mount on the host (moby's check at start).
    let root_shared = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .any(|l| l.split(' ').nth(4) == Some("/") && l.contains(" shared:"));
    let shared = format!("{}:/sh:rshared", base.display());
    let out = d.docker(&["run", "--rm", "-v", &shared, "busybox", "true"]);
    if !root_shared && !host_has_mount_at(Path::new("/tmp")) {
        let err = fails(&out);
        assert!(
            err.contains(&format!(
                "path {} is mounted on / but it is not a shared mount",
                base.display()
            )),
            "{err}"
        );
        assert!(no_mounts_under(&d.data_root));
    }

    // tmpfs: --mount with size and mode, --tmpfs with size; noexec,nosuid,nodev by default.
    let out = ok(&d.docker(&[
        "run",
        "--rm",
        "--mount",
        "type=tmpfs,dst=/t1,tmpfs-size=1m,tmpfs-mode=1770",
        "--tmpfs",
        "/t2:size=2m",
        "busybox",
        "sh",
        "-c",
        "grep -E ' /t[12] ' /proc/mounts; stat -c %a /t1",
    ]));
    let t1 = out.lines().find(|l| l.contains(" /t1 ")).unwrap();
    let t2 = out.lines().find(|l| l.contains(" /t2 ")).unwrap();
    assert!(t1.contains("size=1024k"), "{t1}");
    assert!(t2.contains("size=2048k"), "{t2}");
    for opt in ["nosuid", "nodev", "noexec"] {
        assert!(t1.contains(opt) && t2.contains(opt), "{out}");
    }
    assert_eq!(out.lines().last().unwrap(), "1770");
    // berth sends the same.
    let out = ok(&d.berth(&[
        "run",
        "--rm",
        "--mount",
        "type=tmpfs,destination=/t3,tmpfs-size=3m",
        "busybox",
        "grep",
        " /t3 ",
        "/proc/mounts",
    ]));
    assert!(out.contains("size=3072k"), "{out}");

    // inspect: Mounts as moby shows them; HostConfig echoes Binds and Mounts.
    let src = base.join("src");
    std::fs::create_dir_all(&src).unwrap();
    ok(&d.docker(&[
        "create",
        "--name",
        "ins",
        "-v",
        &format!("{}:/src:ro,rslave", src.display()),
        "-v",
        "named1:/n:ro,nocopy",
        "-v",
        "/anon",
        "--mount",
        "type=volume,src=mv,dst=/mv",
        "--mount",
        "type=tmpfs,dst=/t",
        "--mount",
        &format!(
            "type=bind,src={},dst=/b,bind-propagation=rshared",
            src.display()
        ),
        "--tmpfs",
        "/tt:size=2m",
        "busybox",
    ]));
    let m = mounts_of(&d, "ins");
    assert_eq!(m.len(), 6, "{m:?}");
    let b = mount_at(&m, "/src");
    assert_eq!(
        *b,
        serde_json::json!({"Type":"bind","Source":src.display().to_string(),"Destination":"/src","Mode":"ro,rslave","RW":false,"Propagation":"rslave"})
    );
    assert_eq!(mount_at(&m, "/b")["Propagation"], "rshared");
    assert_eq!(mount_at(&m, "/b")["Mode"], "");
    let n = mount_at(&m, "/n");
    assert_eq!(
        (&n["Name"], &n["Mode"], &n["RW"]),
        (
            &serde_json::json!("named1"),
            &serde_json::json!("ro,nocopy"),
            &serde_json::json!(false)
        )
    );
    assert_eq!(mount_at(&m, "/mv")["Mode"], "z");
    let a = mount_at(&m, "/anon");
    assert!(is_anonymous_name(a["Name"].as_str().unwrap()), "{a}");
    assert_eq!(
        (&a["Mode"], &a["Driver"]),
        (&serde_json::json!(""), &serde_json::json!("local"))
    );
    let t = mount_at(&m, "/t");
    assert_eq!(
        *t,
        serde_json::json!({"Type":"tmpfs","Source":"","Destination":"/t","Mode":"","RW":true,"Propagation":""})
    );
    // (The docker CLI sends -v binds in Go map order: compare them as a set.)
    let hc = ok(&d.docker(&[
        "inspect",
        "-f",
        "{{json .HostConfig.Binds}}\n{{json .HostConfig.Tmpfs}} {{len .HostConfig.Mounts}} {{json .Config.Volumes}}",
        "ins",
    ]));
    let (binds, rest) = hc.trim().split_once('\n').unwrap();
    let mut binds: Vec<String> = serde_json::from_str(binds).unwrap();
    binds.sort();
    assert_eq!(
        binds,
        [
            format!("{}:/src:ro,rslave", src.display()),
            "named1:/n:ro,nocopy".to_string()
        ]
    );
    assert_eq!(rest, "{\"/tt\":\"size=2m\"} 3 {\"/anon\":{}}");
    // ps shows the mounts too, and filters by volume.
    let ps = ok(&d.docker(&[
        "ps",
        "-a",
        "--filter",
        "volume=named1",
        "--format",
        "{{.Names}}",
    ]));
    assert_eq!(ps, "ins\n");

    d.rm_all();
    assert!(no_mounts_under(&d.data_root));
}

#[test]
fn bad_specs_are_refused_with_mobys_texts_and_leak_nothing() {
    require_root!();
    let d = TestDaemon::start();
    d.load_busybox();
    let cases: &[(&[&str], &str)] = &[
        (
            &["-v", "/a:rel"],
            "invalid volume specification: '/a:rel': invalid mount config for type \"bind\": invalid mount path: 'rel' mount path must be absolute",
        ),
        (
            &["-v", "/a:/"],
            "invalid volume specification: '/a:/': invalid mount config for type \"bind\": invalid specification: destination can't be '/'",
        ),
        (&["-v", "/a:/b:bad"], "invalid mode: bad"),
        (
            &["-v", "rel/dir:/x"],
            "create rel/dir: \"rel/dir\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path",
        ),
        (
            &["-v", "/tmp:/x", "--tmpfs", "/x"],
            "Duplicate mount point: /x",
        ),
        (
            &["-v", "/tmp:/x", "--mount", "type=bind,src=/tmp,dst=/x"],
            "Duplicate mount point: /x",
        ),
        (
            &["--mount", "type=volume,dst=/x,readonly"],
            "invalid mount config for type \"volume\": must not set ReadOnly mode when using anonymous volumes",
        ),
    ];
    for (args, want) in cases {
        let mut a = vec!["create"];
        a.extend_from_slice(args);
        a.push("busybox");
        let err = fails(&d.docker(&a));
        assert!(err.contains(want), "{args:?}: {err}");
    }
    // An unknown --volumes-from container is a 404 (the docker CLI then tries a pull, as
    // with dockerd), so ask the API directly.
    let (status, body) = raw_post(
        &d,
        "/containers/create",
        r#"{"Image":"busybox","HostConfig":{"VolumesFrom":["nosuch"]}}"#,
    );
    assert!(status.contains("404"), "{status}");
    assert!(body.contains("No such container: nosuch"), "{body}");
    let (status, body) = raw_post(
        &d,
        "/containers/create",
        r#"{"Image":"busybox","HostConfig":{"VolumesFrom":[""]}}"#,
    );
    assert!(status.contains("400"), "{status}");
    assert!(
        body.contains("volumes-from specification cannot be an empty string"),
        "{body}"
    );

    // A create failing after it made an anonymous volume removes it again.
    // (An unknown driver is a 404 too: asked through the API.)
    let (status, body) = raw_post(
        &d,
        "/containers/create",
        r#"{"Image":"busybox","HostConfig":{"Mounts":[{"Type":"volume","Target":"/anon"},{"Type":"volume","Source":"x1","Target":"/y","VolumeOptions":{"DriverConfig":{"Name":"nosuchdriver"}}}]}}"#,
    );
    assert!(status.contains("404"), "{status}");
    assert!(body.contains("nosuchdriver"), "{body}");
    assert!(
        volume_dirs(&d).iter().all(|n| !is_anonymous_name(n)),
        "{:?}",
        volume_dirs(&d)
    );
    assert_eq!(ok(&d.docker(&["ps", "-aq"])), "");

    // A failed start leaves no volume mounted (a tmpfs volume is a real mount).
    ok(&d.docker(&[
        "volume",
        "create",
        "--opt",
        "type=tmpfs",
        "--opt",
        "device=tmpfs",
        "--opt",
        "o=size=1m",
        "tv",
    ]));
    let out = d.docker(&[
        "run",
        "--name",
        "bad",
        "-v",
        "tv:/t",
        "busybox",
        "/nonexistent",
    ]);
    assert!(!out.status.success());
    assert!(no_mounts_under(&d.data_root.join("volumes")));
    // …and one that ran leaves none either once it exited.
    ok(&d.docker(&[
        "run",
        "--name",
        "good",
        "-v",
        "tv:/t",
        "busybox",
        "sh",
        "-c",
        "echo x > /t/f",
    ]));
    assert!(no_mounts_under(&d.data_root.join("volumes")));

    d.rm_all();
    assert!(no_mounts_under(&d.data_root));
}

#[test]
fn volumes_from_copy_up_and_rm_v() {
    require_root!();
    let d = TestDaemon::start();
    d.load_busybox();

    // An image with content at /data and VOLUME /data.
    ok(&d.docker(&[
        "run",
        "--name",
        "mk",
        "busybox",
        "sh",
        "-c",
        "mkdir -p /data/sub && echo image > /data/f && chown 5:6 /data/f && chmod 0751 /data && ln -s f /data/l && echo deep > /data/sub/g",
    ]));
    ok(&d.docker(&["commit", "-c", "VOLUME /data", "mk", "volimg"]));
    ok(&d.docker(&["rm", "mk"]));

    // Copy-up: a new anonymous volume is filled from the image (owners, modes, links kept).
    ok(&d.docker(&[
        "create", "--name", "a1", "-v", "named:/keep", "volimg", "sh", "-c",
        "ls -ln /data; cat /data/l /data/sub/g; stat -c %a /data; echo a1 > /data/mine; echo n > /keep/n",
    ]));
    let out = ok(&d.docker(&["start", "-a", "a1"]));
    assert!(out.contains("image\ndeep\n751\n"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.contains(" 5 ") && l.contains(" 6 ") && l.ends_with(" f")),
        "{out}"
    );
    let m = mounts_of(&d, "a1");
    let anon = mount_at(&m, "/data")["Name"].as_str().unwrap().to_string();
    assert!(is_anonymous_name(&anon), "{anon}");
    let data = d.data_root.join("volumes").join(&anon).join("_data");
    assert_eq!(std::fs::read_to_string(data.join("f")).unwrap(), "image\n");
    assert_eq!(std::fs::metadata(data.join("f")).unwrap().uid(), 5);
    // A second start does not copy again over what the container changed.
    ok(&d.docker(&[
        "run",
        "--rm",
        "--volumes-from",
        "a1",
        "busybox",
        "rm",
        "/data/f",
    ]));
    ok(&d.docker(&["start", "-a", "a1"]));
    assert!(!data.join("f").exists());

    // --volumes-from: the same volumes (named, anonymous, binds); :ro makes them read-only.
    let out = ok(&d.docker(&[
        "run",
        "--rm",
        "--volumes-from",
        "a1",
        "busybox",
        "cat",
        "/data/mine",
        "/keep/n",
    ]));
    assert_eq!(out, "a1\nn\n");
    let out = d.berth(&[
        "run",
        "--rm",
        "--volumes-from",
        "a1:ro",
        "busybox",
        "touch",
        "/keep/x",
    ]);
    assert!(fails(&out).contains("Read-only file system"));
    ok(&d.docker(&[
        "create",
        "--name",
        "vf",
        "--volumes-from",
        "a1:ro",
        "busybox",
    ]));
    let m = mounts_of(&d, "vf");
    assert_eq!(m.len(), 2, "{m:?}");
    assert!(
        m.iter().all(|x| x["RW"] == false && x["Mode"] == ""),
        "{m:?}"
    );
    assert_eq!(mount_at(&m, "/data")["Name"], anon);
    ok(&d.docker(&["rm", "vf"]));
    // A bind or volume of the new container wins over an inherited one at the same path.
    ok(&d.docker(&[
        "create",
        "--name",
        "ov",
        "--volumes-from",
        "a1",
        "-v",
        "fresh:/data",
        "busybox",
    ]));
    let m = mounts_of(&d, "ov");
    assert_eq!(mount_at(&m, "/data")["Name"], "fresh");
    assert_eq!(mount_at(&m, "/keep")["Name"], "named");
    ok(&d.docker(&["rm", "ov"]));

    // nocopy: an empty volume stays empty.
    let out = ok(&d.docker(&[
        "run",
        "--rm",
        "--mount",
        "type=volume,src=nc,dst=/data,volume-nocopy",
        "volimg",
        "ls",
        "/data",
    ]));
    assert_eq!(out, "");

    // rm -v removes the anonymous volume, never the named one.
    ok(&d.docker(&["rm", "-v", "a1"]));
    let vols = volume_dirs(&d);
    assert!(!vols.contains(&anon), "{vols:?}");
    assert!(vols.contains(&"named".to_string()), "{vols:?}");
    // rm without -v keeps it.
    ok(&d.docker(&["create", "--name", "a2", "volimg"]));
    let anon2 = mount_at(&mounts_of(&d, "a2"), "/data")["Name"]
        .as_str()
        .unwrap()
        .to_string();
    ok(&d.docker(&["rm", "a2"]));
    assert!(volume_dirs(&d).contains(&anon2));
    // --rm removes the anonymous volumes of the container it removes.
    let before: Vec<String> = volume_dirs(&d);
    ok(&d.docker(&["run", "--rm", "-v", "/scratch", "volimg", "ls", "/data/f"]));
    ok(&d.berth(&["run", "--rm", "volimg", "true"]));
    assert_eq!(volume_dirs(&d), before);

    d.rm_all();
    assert!(no_mounts_under(&d.data_root));
}

#[test]
fn symlinks_never_move_a_mount_outside_the_root() {
    require_root!();
    let d = TestDaemon::start();
    d.load_busybox();
    let src = d.dir().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("marker"), "m\n").unwrap();

    // An image whose /evil points at / and /up at ../../.. (a committed container).
    ok(&d.docker(&[
        "run",
        "--name",
        "mk",
        "busybox",
        "sh",
        "-c",
        "ln -s / /evil && ln -s ../../.. /up",
    ]));
    ok(&d.docker(&["commit", "mk", "evilimg"]));
    ok(&d.docker(&["rm", "mk"]));
    let p1 = escape_probe("img-abs");
    let p2 = escape_probe("img-rel");
    let p3 = escape_probe("img-tmpfs");
    let rel = |p: &Path| p.strip_prefix("/").unwrap().display().to_string();
    let out = ok(&d.docker(&[
        "run",
        "--rm",
        "-v",
        &format!("{}:/evil/{}", src.display(), rel(&p1)),
        "-v",
        &format!("{}:/up/{}", src.display(), rel(&p2)),
        "--tmpfs",
        &format!("/evil/{}", rel(&p3)),
        "evilimg",
        "sh",
        "-c",
        &format!(
            "cat {}/marker {}/marker; grep -c ' {} ' /proc/mounts",
            p1.display(),
            p2.display(),
            p3.display()
        ),
    ]));
    // Inside the container, the mounts are where the symlinks lead within its root…
    assert_eq!(out, "m\nm\n1\n");
    // …and the host is untouched.
    for p in [&p1, &p2, &p3] {
        assert!(!p.exists(), "{} appeared on the host", p.display());
        assert!(!host_has_mount_at(p));
    }

    // A symlink planted in a shared volume by one container…
    ok(&d.docker(&[
        "run",
        "--rm",
        "-v",
        "shared:/data",
        "busybox",
        "sh",
        "-c",
        "ln -s / /data/evil && ln -s ../../../../../.. /data/up",
    ]));
    // …resolves inside the next container's root when it mounts through it.
    let p4 = escape_probe("vol-abs");
    let p5 = escape_probe("vol-rel");
    let out = ok(&d.docker(&[
        "run",
        "--rm",
        "-v",
        "shared:/data",
        "-v",
        &format!("{}:/data/evil/{}", src.display(), rel(&p4)),
        "--mount",
        &format!("type=tmpfs,dst=/data/up/{}", rel(&p5)),
        "busybox",
        "sh",
        "-c",
        &format!(
            "cat {}/marker; grep -c ' {} ' /proc/mounts",
            p4.display(),
            p5.display()
        ),
    ]));
    assert_eq!(out, "m\n1\n");
    for p in [&p4, &p5] {
        assert!(!p.exists(), "{} appeared on the host", p.display());
        assert!(!host_has_mount_at(p));
    }
    // The volume's own directory holds only the two links.
    let data = d.data_root.join("volumes/shared/_data");
    let mut names: Vec<String> = std::fs::read_dir(&data)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["evil", "up"]);

    d.rm_all();
    assert!(no_mounts_under(&d.data_root));
}

#[test]
fn cp_into_and_out_of_a_stopped_containers_volumes() {
    require_root!();
    let d = TestDaemon::start();
    d.load_busybox();
    let src = d.dir().join("bsrc");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("from-bind"), "b\n").unwrap();
    let file = d.dir().join("up.txt");
    std::fs::write(&file, "uploaded\n").unwrap();
    ok(&d.docker(&[
        "run",
        "--name",
        "cpv",
        "-v",
        "cpvol:/data",
        "-v",
        &format!("{}:/b", src.display()),
        "busybox",
        "sh",
        "-c",
        "echo in-volume > /data/f",
    ]));
    // Into the volume and the bind of the stopped container (docker CLI and berth)…
    ok(&d.docker(&["cp", file.to_str().unwrap(), "cpv:/data/up.txt"]));
    ok(&d.berth(&["cp", file.to_str().unwrap(), "cpv:/b/up.txt"]));
    let vol = d.data_root.join("volumes/cpvol/_data");
    assert_eq!(
        std::fs::read_to_string(vol.join("up.txt")).unwrap(),
        "uploaded\n"
    );
    assert_eq!(
        std::fs::read_to_string(src.join("up.txt")).unwrap(),
        "uploaded\n"
    );
    // …and out of them.
    let out_dir = d.dir().join("out");
    std::fs::create_dir_all(&out_dir).unwrap();
    ok(&d.docker(&["cp", "cpv:/data/f", out_dir.to_str().unwrap()]));
    assert_eq!(
        std::fs::read_to_string(out_dir.join("f")).unwrap(),
        "in-volume\n"
    );
    ok(&d.docker(&["cp", "cpv:/b/from-bind", out_dir.to_str().unwrap()]));
    assert_eq!(
        std::fs::read_to_string(out_dir.join("from-bind")).unwrap(),
        "b\n"
    );
    // Nothing stays mounted, and the container sees the files at its next start.
    assert!(no_mounts_under(&d.data_root));
    let out = ok(&d.docker(&["start", "-a", "cpv"]));
    assert_eq!(out, "");
    let out = ok(&d.docker(&[
        "run",
        "--rm",
        "--volumes-from",
        "cpv",
        "busybox",
        "cat",
        "/data/up.txt",
        "/b/up.txt",
    ]));
    assert_eq!(out, "uploaded\nuploaded\n");

    d.rm_all();
    assert!(no_mounts_under(&d.data_root));
}

/// A second berthd on a stopped [`TestDaemon`]'s data and exec roots (so its containers'
/// shims are found again), on a socket of its own; stopped by pid when dropped.
struct Again {
    child: std::process::Child,
    host: String,
}

impl Again {
    fn start(d: &TestDaemon) -> Self {
        let socket = d.dir().join("again.sock");
        let child = std::process::Command::new(test_support::daemon::bin_path("berthd"))
            .arg("-H")
            .arg(format!("unix://{}", socket.display()))
            .arg("--data-root")
            .arg(&d.data_root)
            .arg("--exec-root")
            .arg(&d.exec_root)
            .arg("--pidfile")
            .arg(d.dir().join("again.pid"))
            .arg("--config-file")
            .arg(d.dir().join("daemon.json"))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(d.dir().join("again.log")).unwrap())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while !test_support::daemon::ping(&socket) {
            assert!(
                std::time::Instant::now() < deadline,
                "berthd did not come up"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        Self {
            child,
            host: format!("unix://{}", socket.display()),
        }
    }

    fn docker(&self, args: &[&str]) -> std::process::Output {
        std::process::Command::new(test_support::daemon::docker_cli())
            .env("DOCKER_HOST", &self.host)
            .env_remove("DOCKER_CONTEXT")
            .env_remove("DOCKER_API_VERSION")
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    }

    fn mounts_of(&self, name: &str) -> Vec<serde_json::Value> {
        let out = ok(&self.docker(&["inspect", "-f", "{{json .Mounts}}", name]));
        serde_json::from_str(out.trim()).unwrap()
    }
}

impl Drop for Again {
    fn drop(&mut self) {
        let ids = String::from_utf8_lossy(&self.docker(&["ps", "-aq"]).stdout).to_string();
        let ids: Vec<&str> = ids.split_whitespace().collect();
        if !ids.is_empty() {
            let mut a = vec!["rm", "-f"];
            a.extend(ids);
            let _ = self.docker(&a);
        }
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.child.id()).unwrap());
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let _ = self.child.wait();
    }
}

#[test]
fn mounts_survive_a_daemon_restart() {
    require_root!();
    let mut d = TestDaemon::start();
    d.load_busybox();
    ok(&d.docker(&[
        "run",
        "-d",
        "--name",
        "r1",
        "-v",
        "rv:/data",
        "-v",
        "/anon",
        "busybox",
        "sh",
        "-c",
        "echo before > /data/f; sleep 300",
    ]));
    let m1 = mounts_of(&d, "r1");
    d.stop();
    let d2 = Again::start(&d);
    assert_eq!(d2.mounts_of("r1"), m1);
    let st = ok(&d2.docker(&["inspect", "-f", "{{.State.Status}}", "r1"]));
    assert_eq!(st.trim(), "running");
    let out = ok(&d2.docker(&["exec", "r1", "cat", "/data/f"]));
    assert_eq!(out, "before\n");
    // The volume is in use by the (running) container.
    let err = fails(&d2.docker(&["volume", "rm", "rv"]));
    assert!(err.contains("volume is in use"), "{err}");
    ok(&d2.docker(&["rm", "-f", "-v", "r1"]));
    let vols = volume_dirs(&d);
    assert_eq!(vols, ["rv"], "{vols:?}");
    assert!(no_mounts_under(&d.data_root));
}

/// Makes `dir` a mount point of its own with `propagation` (`shared`, `private`), undone on drop.
struct HostMount(PathBuf);

impl HostMount {
    fn new(dir: &Path, propagation: &str) -> HostMount {
        let run = |args: &[&str]| {
            let st = std::process::Command::new("mount")
                .args(args)
                .status()
                .unwrap();
            assert!(st.success(), "mount {args:?}");
        };
        let p = dir.to_str().unwrap();
        run(&["--bind", p, p]);
        run(&[&format!("--make-{propagation}"), p]);
        HostMount(dir.to_path_buf())
    }
}

impl Drop for HostMount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .args(["-R", "-l"])
            .arg(&self.0)
            .status();
    }
}

#[test]
fn bind_propagation_shared_slave_and_private() {
    require_root!();
    let d = TestDaemon::start();
    d.load_busybox();
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir(&src).unwrap();
    let host = HostMount::new(&src, "shared");
    let s = src.display();

    // rshared: a mount made inside the container shows up on the host.
    ok(&d.docker(&[
        "run",
        "-d",
        "--name",
        "psh",
        "--privileged",
        "-v",
        &format!("{s}:/x:rshared"),
        "busybox",
        "sh",
        "-c",
        "mkdir -p /x/in && mount -t tmpfs t /x/in && echo from-ctr > /x/in/f && sleep 300",
    ]));
    let mut seen = false;
    for _ in 0..100 {
        if host_has_mount_at(&src.join("in")) {
            seen = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(seen, "the container's mount did not reach the host");
    assert_eq!(
        std::fs::read_to_string(src.join("in/f")).unwrap(),
        "from-ctr\n"
    );
    let m = mounts_of(&d, "psh");
    assert_eq!(mount_at(&m, "/x")["Propagation"], "rshared");

    // rslave and rshared see a mount the host makes after they started; rprivate does not.
    for (name, opt) in [("psl", "rslave"), ("ppr", "rprivate")] {
        ok(&d.docker(&[
            "run",
            "-d",
            "--name",
            name,
            "-v",
            &format!("{s}:/x:{opt}"),
            "busybox",
            "sleep",
            "300",
        ]));
    }
    std::fs::create_dir(src.join("late")).unwrap();
    let late = src.join("late");
    let st = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "late"])
        .arg(&late)
        .status()
        .unwrap();
    assert!(st.success());
    std::fs::write(late.join("g"), "from-host\n").unwrap();
    for name in ["psh", "psl"] {
        let out = ok(&d.docker(&["exec", name, "cat", "/x/late/g"]));
        assert_eq!(out, "from-host\n", "{name}");
    }
    let out = d.docker(&["exec", "ppr", "cat", "/x/late/g"]);
    assert!(!out.status.success(), "rprivate saw a later host mount");

    // Removing the containers leaves the host's own mounts alone.
    ok(&d.docker(&["rm", "-f", "psh", "psl", "ppr"]));
    assert!(host_has_mount_at(&late));
    drop(host);
    assert!(!host_has_mount_at(&src));
    assert!(no_mounts_under(&d.data_root));
}

#[test]
fn a_bound_in_binary_can_be_the_command() {
    require_root!();
    let host_busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .find(|p| Path::new(p).is_file());
    let Some(bb) = host_busybox else {
        eprintln!("no host busybox: skipped");
        return;
    };
    let d = TestDaemon::start();
    d.load_busybox();
    let tmp = tempfile::tempdir().unwrap();
    let tool = tmp.path().join("mytool");
    std::fs::write(&tool, "#!/bin/sh\necho via-path\n").unwrap();
    std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = ok(&d.docker(&[
        "run",
        "--rm",
        "-v",
        &format!("{bb}:/opt/busybox:ro"),
        "busybox",
        "/opt/busybox",
        "echo",
        "direct",
    ]));
    assert_eq!(out, "direct\n");
    let out = ok(&d.docker(&[
        "run",
        "--rm",
        "-v",
        &format!("{}:/usr/local/bin:ro", tmp.path().display()),
        "busybox",
        "mytool",
    ]));
    assert_eq!(out, "via-path\n");
    // A command missing everywhere still gets Docker's 127 and text.
    let out = d.docker(&["run", "--rm", "busybox", "/nope"]);
    assert_eq!(out.status.code(), Some(127));
    assert!(assert_no_such(&out), "{out:?}");
}

fn assert_no_such(out: &std::process::Output) -> bool {
    String::from_utf8_lossy(&out.stderr).contains("no such file or directory")
}
