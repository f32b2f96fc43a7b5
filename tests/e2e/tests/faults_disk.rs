//! A full disk: berthd on a data root that is a small loop-mounted ext4 filesystem, filled the
//! ways a user fills one (a container writing until full, `commit`, `load`, `import`, `cp`,
//! `create`/`run`/`start`, `volume create`, `build` RUN/COPY/context, a logging container, a
//! daemon restart, runs with a few blocks left). Each failure must say "no space left on
//! device", as Docker's do, leave nothing half-made (no partial or unused blob, no image
//! without its blobs and snapshots, no unused snapshot, no container record without its
//! files, no mount), keep the daemon answering without a panic, and the same operation must
//! succeed once the space is freed.
//!
//! Every test makes its own filesystem and daemon; [`LoopFs`] unmounts it and detaches the loop
//! device when the test ends, failed or not (the daemon, declared after it, is dropped first).

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use test_support::daemon::{TestDaemon, fails, no_mounts_under, ok, ping};
use test_support::invariants;
use test_support::require_root;

const MIB: u64 = 1 << 20;
/// Docker's (Go's) text for ENOSPC.
const ENOSPC: &str = "no space left on device";

/// A small ext4 filesystem on a loop device, mounted on a temp dir; `filler` is where the
/// tests put the file that takes the space (outside the data root).
struct LoopFs {
    dir: tempfile::TempDir,
    mnt: PathBuf,
}

fn run(cmd: &str, args: &[&str]) -> Output {
    Command::new(cmd)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{cmd}: {e}"))
}

impl LoopFs {
    fn new(size_mb: u64) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("berth-disk-")
            .tempdir_in("/tmp")
            .unwrap();
        let img = dir.path().join("fs.img");
        let mnt = dir.path().join("mnt");
        std::fs::create_dir(&mnt).unwrap();
        File::create(&img).unwrap().set_len(size_mb * MIB).unwrap();
        // No blocks reserved for root: berthd is root, and the test wants one notion of "free".
        ok(&run(
            "mkfs.ext4",
            &["-q", "-F", "-m", "0", &img.to_string_lossy()],
        ));
        let fs = Self { dir, mnt };
        ok(&run(
            "mount",
            &[
                "-o",
                "loop",
                &img.to_string_lossy(),
                &fs.mnt.to_string_lossy(),
            ],
        ));
        fs
    }

    fn data_root(&self) -> PathBuf {
        self.mnt.join("root")
    }

    fn filler(&self) -> PathBuf {
        self.mnt.join("filler")
    }

    /// Bytes an unprivileged write could still take (root's equal: nothing is reserved).
    fn avail(&self) -> u64 {
        let s = nix::sys::statvfs::statvfs(&self.mnt).unwrap();
        s.blocks_available() * s.fragment_size()
    }

    /// Grows the filler until about `keep` bytes are left (0: until writes fail).
    fn fill_leaving(&self, keep: u64) {
        let avail = self.avail();
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.filler())
            .unwrap();
        if avail > keep + MIB {
            let grow = avail - keep;
            let len = f.metadata().unwrap().len();
            // fallocate: real blocks, no time spent writing them.
            let out = run(
                "fallocate",
                &[
                    "-o",
                    &len.to_string(),
                    "-l",
                    &grow.to_string(),
                    &self.filler().to_string_lossy(),
                ],
            );
            assert!(out.status.success() || keep == 0, "fallocate: {out:?}");
        }
        if keep == 0 {
            // The last blocks: small writes until the kernel refuses.
            let block = [0u8; 4096];
            loop {
                match f.write_all(&block).and_then(|()| f.sync_all()) {
                    Ok(()) => {}
                    Err(e) if e.raw_os_error() == Some(nix::libc::ENOSPC) => break,
                    Err(e) => panic!("fill: {e}"),
                }
            }
        }
        let left = self.avail();
        assert!(
            left <= keep + 2 * MIB,
            "filled, yet {left} bytes left (wanted {keep})"
        );
    }

    /// Removes the filler: the space is back.
    fn free(&self) {
        std::fs::remove_file(self.filler()).unwrap();
    }
}

impl Drop for LoopFs {
    /// Unmounts (which detaches the loop device: `mount -o loop` sets autoclear) and, should
    /// the device still be attached, detaches it.
    fn drop(&mut self) {
        let mnt = self.mnt.to_string_lossy().into_owned();
        let mut unmounted = false;
        for _ in 0..50 {
            if run("umount", &[&mnt]).status.success() {
                unmounted = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        if !unmounted {
            eprintln!("{mnt} busy: lazy unmount");
            let _ = run("umount", &["-l", &mnt]);
        }
        let img = self.dir.path().join("fs.img");
        let out = run("losetup", &["-j", &img.to_string_lossy()]);
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            if let Some((dev, _)) = line.split_once(':') {
                let _ = run("losetup", &["-d", dev]);
            }
        }
    }
}

/// The text of a failed command (stdout and stderr: `docker build` puts errors in both).
fn failure(out: &Output) -> String {
    let err = fails(out);
    format!("{}{err}", String::from_utf8_lossy(&out.stdout))
}

fn assert_enospc(what: &str, text: &str) {
    assert!(
        text.contains(ENOSPC),
        "{what}: the error does not say \"{ENOSPC}\":\n{text}"
    );
}

fn sha256_file(path: &Path) -> String {
    test_support::big_image::sha256_file(path).unwrap()
}

/// Nothing half-made: the daemon answers and has not panicked; the data root is consistent
/// (`test_support::invariants`: blobs whole, nothing in ingest, every image's config, layers
/// and snapshots there, records and directories agree with the daemon, no stray mounts, no
/// builder context), and a failed operation gave its space back (no blob or snapshot that no
/// image uses).
fn consistent(d: &TestDaemon) {
    assert!(ping(&d.socket), "berthd stopped answering /_ping");
    assert!(
        !d.log().contains("panicked"),
        "berthd panicked:\n{}",
        d.log()
    );
    invariants::assert_consistent(d, &[]);
    invariants::assert_no_garbage(d);
}

/// A daemon on a fresh `size_mb` filesystem with busybox loaded.
fn setup(size_mb: u64) -> (LoopFs, TestDaemon) {
    let fs = LoopFs::new(size_mb);
    let d = TestDaemon::start_on(&fs.data_root(), &[]);
    d.load_busybox();
    (fs, d)
}

#[test]
fn a_container_writing_until_full_and_a_commit_that_does_not_fit() {
    require_root!();
    let (fs, d) = setup(128);

    // dd's own ENOSPC inside the container: it exits 1, its output says why, the log has it
    // (the shim keeps writing the log into the full disk's last blocks or drops it, never dies).
    let out = d.docker(&[
        "run",
        "--name",
        "filler",
        "busybox",
        "dd",
        "if=/dev/zero",
        "of=/big",
        "bs=1M",
    ]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("No space left on device"),
        "{out:?}"
    );
    assert!(fs.avail() < 2 * MIB, "the disk is not full: {}", fs.avail());
    consistent(&d);
    // Its diff can't be stored: the commit fails with the cause, and leaves no image.
    let images_before = ok(&d.docker(&["images", "-aq"]));
    let err = failure(&d.docker(&["commit", "filler", "full:1"]));
    assert_enospc("commit of a full disk's container", &err);
    assert_eq!(ok(&d.docker(&["images", "-aq"])), images_before);
    consistent(&d);
    // Removing the container gives its space back.
    ok(&d.docker(&["rm", "filler"]));
    assert!(
        fs.avail() > 100 * MIB,
        "space not given back: {}",
        fs.avail()
    );
    consistent(&d);

    // A commit whose 20 MiB diff (blob + snapshot: 40 MiB) does not fit in 25 MiB, then does.
    ok(&d.docker(&[
        "run",
        "--name",
        "c20",
        "busybox",
        "dd",
        "if=/dev/urandom",
        "of=/d",
        "bs=1M",
        "count=20",
    ]));
    fs.fill_leaving(25 * MIB);
    let err = failure(&d.docker(&["commit", "c20", "c20:1"]));
    assert_enospc("commit", &err);
    assert!(fails(&d.docker(&["image", "inspect", "c20:1"])).contains("No such image"));
    consistent(&d);
    fs.free();
    ok(&d.docker(&["commit", "c20", "c20:1"]));
    let out = ok(&d.docker(&["run", "--rm", "c20:1", "wc", "-c", "/d"]));
    assert_eq!(out.split_whitespace().next(), Some("20971520"), "{out}");
    ok(&d.docker(&["rm", "c20"]));
    consistent(&d);
    drop(d);
    assert!(no_mounts_under(&fs.data_root()));
}

/// A docker-archive of one image `tag` with one layer per entry of `sizes`, each a file of
/// that many random bytes, made in `dir` (outside the filesystem under test).
fn big_image_archive(dir: &Path, tag: &str, sizes: &[u64]) -> PathBuf {
    let mut layers = Vec::new();
    for (i, size) in sizes.iter().enumerate() {
        let path = dir.join(format!("layer{i}.tar"));
        let mut b = tar::Builder::new(File::create(&path).unwrap());
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_size(*size);
        h.set_mtime(0);
        let random = File::open("/dev/urandom").unwrap().take(*size);
        b.append_data(&mut h, format!("big{i}"), random).unwrap();
        b.into_inner().unwrap().flush().unwrap();
        let diff = sha256_file(&path);
        layers.push((path, diff));
    }
    let diff_ids: Vec<String> = layers.iter().map(|(_, d)| format!("sha256:{d}")).collect();
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "created": "2026-01-01T00:00:00Z",
        "config": {"Cmd": ["/big0"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": sizes.iter().map(|_| serde_json::json!(
            {"created": "2026-01-01T00:00:00Z", "created_by": "faults_disk"})).collect::<Vec<_>>()
    })
    .to_string();
    let config_path = dir.join("config.json");
    std::fs::write(&config_path, &config).unwrap();
    let config_hex = sha256_file(&config_path);
    let manifest = serde_json::json!([{
        "Config": format!("blobs/sha256/{config_hex}"),
        "RepoTags": [tag],
        "Layers": layers.iter().map(|(_, d)| format!("blobs/sha256/{d}")).collect::<Vec<_>>(),
    }])
    .to_string();
    let out = dir.join("big.tar");
    let mut b = tar::Builder::new(File::create(&out).unwrap());
    b.append_path_with_name(&config_path, format!("blobs/sha256/{config_hex}"))
        .unwrap();
    for (path, diff) in &layers {
        b.append_path_with_name(path, format!("blobs/sha256/{diff}"))
            .unwrap();
    }
    let mut h = tar::Header::new_gnu();
    h.set_mode(0o644);
    h.set_size(manifest.len() as u64);
    h.set_mtime(0);
    b.append_data(&mut h, "manifest.json", manifest.as_bytes())
        .unwrap();
    b.into_inner().unwrap().flush().unwrap();
    for (path, _) in layers {
        std::fs::remove_file(path).unwrap();
    }
    out
}

#[test]
fn a_load_too_big_for_the_space_left() {
    require_root!();
    let (fs, d) = setup(128);
    let work = tempfile::tempdir_in("/tmp").unwrap();
    let archive = big_image_archive(work.path(), "big:1", &[24 * MIB]);
    let archive = archive.to_string_lossy();
    let images_before = ok(&d.docker(&["images", "-aq"]));

    // 24 MiB of layer is 48 MiB stored (blob + snapshot): 30 MiB is not enough.
    fs.fill_leaving(30 * MIB);
    let err = failure(&d.docker(&["load", "-i", &archive]));
    assert_enospc("load", &err);
    assert!(fails(&d.docker(&["image", "inspect", "big:1"])).contains("No such image"));
    assert_eq!(ok(&d.docker(&["images", "-aq"])), images_before);
    consistent(&d);
    // Nothing at all: a full disk is not where a failed load's layer should stay.
    fs.free();
    fs.fill_leaving(0);
    let err = failure(&d.docker(&["load", "-i", &archive]));
    assert_enospc("load on a full disk", &err);
    consistent(&d);

    // Layers of 30 and 10 MiB: both blobs (40) fit in 75 MiB, and the small snapshot (10,
    // unpacked beside the big one), but not the big one; the small one must go with the failed
    // load.
    fs.free();
    let two = tempfile::tempdir_in("/tmp").unwrap();
    let two = big_image_archive(two.path(), "two:1", &[30 * MIB, 10 * MIB]);
    let two = two.to_string_lossy();
    fs.fill_leaving(75 * MIB);
    let err = failure(&d.docker(&["load", "-i", &two]));
    assert_enospc("load of two layers", &err);
    consistent(&d);
    fs.free();
    let out = ok(&d.docker(&["load", "-i", &two]));
    assert!(out.contains("Loaded image: two:1"), "{out}");
    ok(&d.docker(&["rmi", "two:1"]));
    consistent(&d);

    let out = ok(&d.docker(&["load", "-i", &archive]));
    assert!(out.contains("Loaded image: big:1"), "{out}");
    let size = ok(&d.docker(&["image", "inspect", "-f", "{{.Size}}", "big:1"]));
    assert!(size.trim().parse::<u64>().unwrap() >= 24 * MIB, "{size}");
    consistent(&d);
    ok(&d.docker(&["rmi", "big:1"]));
    consistent(&d);
}

#[test]
fn create_and_run_on_a_full_data_root() {
    require_root!();
    let (fs, d) = setup(96);
    ok(&d.docker(&["create", "--name", "before", "busybox", "true"]));
    fs.fill_leaving(0);

    let err = fails(&d.docker(&["create", "--name", "c1", "busybox", "true"]));
    assert_enospc("create", &err);
    consistent(&d);
    let err = fails(&d.docker(&["run", "--name", "c2", "busybox", "true"]));
    assert_enospc("run", &err);
    consistent(&d);
    let err = fails(&d.docker(&["run", "--rm", "busybox", "true"]));
    assert_enospc("run --rm", &err);
    consistent(&d);
    // The existing container can't start either (its rootfs, hosts files, log): its record
    // stays as it was.
    let err = fails(&d.docker(&["start", "-a", "before"]));
    assert_enospc("start", &err);
    consistent(&d);
    let names = ok(&d.docker(&["ps", "-a", "--format", "{{.Names}}"]));
    assert_eq!(names.trim(), "before");
    // A copy into the stopped container and an import: the cause, not a broken pipe.
    let work = tempfile::tempdir_in("/tmp").unwrap();
    let big = work.path().join("big");
    File::create(&big).unwrap().set_len(8 * MIB).unwrap();
    let err = fails(&d.docker(&["cp", &big.to_string_lossy(), "before:/big"]));
    assert_enospc("cp", &err);
    consistent(&d);
    let rootfs = test_support::fixtures::busybox_rootfs(work.path());
    let err = fails(&d.docker(&["import", &rootfs.to_string_lossy(), "imported:1"]));
    assert_enospc("import", &err);
    consistent(&d);

    fs.free();
    ok(&d.docker(&["cp", &big.to_string_lossy(), "before:/big"]));
    ok(&d.docker(&["import", &rootfs.to_string_lossy(), "imported:1"]));
    ok(&d.docker(&["rmi", "imported:1"]));
    ok(&d.docker(&["create", "--name", "c1", "busybox", "true"]));
    let out = ok(&d.docker(&["run", "--name", "c2", "busybox", "echo", "hi"]));
    assert_eq!(out, "hi\n");
    assert_eq!(ok(&d.docker(&["logs", "c2"])), "hi\n");
    ok(&d.docker(&["run", "--rm", "busybox", "true"]));
    ok(&d.docker(&["start", "-a", "before"]));
    consistent(&d);
    ok(&d.docker(&["rm", "before", "c1", "c2"]));
    consistent(&d);
}

fn build(d: &TestDaemon, args: &[&str]) -> Output {
    let mut c = d.docker_cmd();
    c.env("DOCKER_BUILDKIT", "0").arg("build").args(args);
    c.output().unwrap()
}

#[test]
fn builds_whose_run_or_copy_does_not_fit() {
    require_root!();
    let (fs, d) = setup(128);
    let ctx = tempfile::tempdir_in("/tmp").unwrap();
    let dockerfile = ctx.path().join("Dockerfile");
    let ctx_path = ctx.path().to_string_lossy().into_owned();

    // A RUN step writing more than there is.
    std::fs::write(
        &dockerfile,
        "FROM busybox\nRUN dd if=/dev/zero of=/big bs=1M count=30\n",
    )
    .unwrap();
    fs.fill_leaving(20 * MIB);
    let err = failure(&build(&d, &["-t", "run:1", &ctx_path]));
    assert!(err.contains("No space left on device"), "{err}");
    assert!(err.contains("returned a non-zero code: 1"), "{err}");
    consistent(&d);
    fs.free();
    let out = ok(&build(&d, &["-t", "run:1", &ctx_path]));
    assert!(out.contains("Successfully tagged run:1"), "{out}");
    ok(&d.docker(&["rmi", "run:1"]));
    ok(&d.docker(&["builder", "prune", "-f"]));
    consistent(&d);

    // A COPY of 8 MiB: context, container layer, layer blob and snapshot don't fit in 20.
    let mut data = vec![0u8; 8 * MIB as usize];
    File::open("/dev/urandom")
        .unwrap()
        .read_exact(&mut data)
        .unwrap();
    std::fs::write(ctx.path().join("data"), data).unwrap();
    std::fs::write(&dockerfile, "FROM busybox\nCOPY data /data\n").unwrap();
    fs.fill_leaving(20 * MIB);
    let err = failure(&build(&d, &["-t", "copy:1", &ctx_path]));
    assert_enospc("build COPY", &err);
    assert!(fails(&d.docker(&["image", "inspect", "copy:1"])).contains("No such image"));
    consistent(&d);
    // The context alone does not fit either.
    fs.free();
    fs.fill_leaving(4 * MIB);
    let err = failure(&build(&d, &["-t", "copy:1", &ctx_path]));
    assert_enospc("build context", &err);
    consistent(&d);
    fs.free();
    let out = ok(&build(&d, &["-t", "copy:1", &ctx_path]));
    assert!(out.contains("Successfully tagged copy:1"), "{out}");
    let out = ok(&d.docker(&["run", "--rm", "copy:1", "wc", "-c", "/data"]));
    assert_eq!(out.split_whitespace().next(), Some("8388608"), "{out}");
    consistent(&d);
}

/// Lines `tick N` of a container's log, as numbers.
fn ticks(d: &TestDaemon, name: &str) -> Vec<u64> {
    let out = d.docker(&["logs", name]);
    assert!(out.status.success(), "docker logs {name}: {out:?}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("tick ")?.trim().parse().ok())
        .collect()
}

#[test]
fn a_logging_container_volumes_and_a_restart_on_a_full_disk() {
    require_root!();
    let (fs, mut d) = setup(96);
    ok(&d.docker(&[
        "run",
        "-d",
        "--name",
        "ticker",
        "busybox",
        "sh",
        "-c",
        "i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.05; done",
    ]));
    std::thread::sleep(Duration::from_millis(500));
    fs.fill_leaving(0);
    std::thread::sleep(Duration::from_secs(1));

    // Volumes: the record can't be written; nothing is left of it.
    let err = fails(&d.docker(&["volume", "create", "v1"]));
    assert_enospc("volume create", &err);
    let err = fails(&d.docker(&["run", "--rm", "-v", "v2:/d", "busybox", "true"]));
    assert_enospc("run with a new volume", &err);
    assert_eq!(ok(&d.docker(&["volume", "ls", "-q"])), "");
    let volumes = std::fs::read_dir(d.data_root.join("volumes")).map_or(0, |r| r.count());
    assert_eq!(volumes, 0, "volumes left");

    // berthd starts again on the full data root, and still knows and stops the container.
    d.restart();
    consistent(&d);
    let running = ok(&d.docker(&["ps", "--format", "{{.Names}}"]));
    assert_eq!(running.trim(), "ticker");

    // Space back: the log goes on (lines written while the disk was full are lost, as with
    // Docker's json-file driver, but no line is half-written).
    fs.free();
    let before = ticks(&d, "ticker").last().copied().unwrap_or(0);
    std::thread::sleep(Duration::from_secs(1));
    let after = ticks(&d, "ticker");
    assert!(
        after.last().copied().unwrap_or(0) > before,
        "the log stopped at {before}"
    );
    assert!(
        after.windows(2).all(|w| w[0] < w[1]),
        "log lines out of order"
    );
    ok(&d.docker(&["volume", "create", "v1"]));
    ok(&d.docker(&["run", "--rm", "-v", "v2:/d", "busybox", "touch", "/d/f"]));
    ok(&d.docker(&["rm", "-f", "ticker"]));
    ok(&d.docker(&["volume", "rm", "v1", "v2"]));
    consistent(&d);
}

/// Almost full: with only a few blocks left, a run either works or fails with the cause, and
/// whatever it made (a `--rm` container, a started rootfs) is gone or stays whole.
#[test]
fn runs_with_a_few_blocks_left() {
    require_root!();
    let (fs, d) = setup(96);
    for keep in [8 << 10, 32 << 10, 128 << 10, 512 << 10, 2 * MIB] {
        fs.fill_leaving(keep);
        let out = d.docker(&["run", "--rm", "busybox", "echo", "hi"]);
        if !out.status.success() {
            assert_enospc(&format!("run --rm with {keep} bytes left"), &failure(&out));
        }
        consistent(&d);
        let out = d.docker(&["run", "--name", "n1", "busybox", "echo", "hi"]);
        if !out.status.success() {
            assert_enospc(&format!("run with {keep} bytes left"), &failure(&out));
        }
        consistent(&d);
        let _ = d.docker(&["rm", "-f", "n1"]);
        consistent(&d);
        fs.free();
    }
    let out = ok(&d.docker(&["run", "--rm", "busybox", "echo", "hi"]));
    assert_eq!(out, "hi\n");
}
