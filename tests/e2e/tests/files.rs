//! End-to-end tests of `docker cp` (both ways) and `docker export`, through the real docker
//! CLI and through `berth`: content and modes, `-` tar streams, stopped and running
//! containers, missing destinations, hostile symlinks in the container, a hostile tar sent with
//! curl, and `export | import`. Every test removes its containers before its daemon stops and
//! checks that no mount is left under the data root.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};

use test_support::daemon::{TestDaemon, fails, no_mounts_under, ok};
use test_support::require_root;

/// (name, content) of every regular file in a tar, and the names of all entries.
fn tar_entries(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut a = tar::Archive::new(bytes);
    let mut out = Vec::new();
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        let name = String::from_utf8_lossy(&e.path_bytes()).into_owned();
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        out.push((name, data));
    }
    out
}

/// Runs `sh -c script` with the daemon's DOCKER_HOST (for pipelines).
fn shell(d: &TestDaemon, script: &str) -> std::process::Output {
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .env("DOCKER_HOST", d.host())
        .env("BERTH_HOST", d.host())
        .env("DOCKER_CONFIG", d.dir().join("docker-config"))
        .env(
            "PATH",
            format!("{}:/usr/local/bin:/usr/bin:/bin", bin_dir()),
        )
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn bin_dir() -> String {
    test_support::daemon::bin_path("berth")
        .parent()
        .unwrap()
        .display()
        .to_string()
}

#[test]
fn cp_files_and_dirs_both_ways() {
    require_root!();
    let d = TestDaemon::start();
    d.load_busybox();
    let host = d.dir().join("host");
    std::fs::create_dir_all(host.join("dir/sub")).unwrap();
    std::fs::write(host.join("file"), "hello from the host\n").unwrap();
    std::fs::set_permissions(host.join("file"), PermissionsExt::from_mode(0o640)).unwrap();
    std::fs::write(host.join("dir/sub/y"), "deep\n").unwrap();
    let h = |p: &str| host.join(p).display().to_string();

    ok(&d.docker(&[
        "create",
        "--name",
        "cpc",
        "busybox",
        "sh",
        "-c",
        "cat /tmp/file /tmp/newdir/sub/y /tmp/bfile; stat -c %a /tmp/file",
    ]));
    // In: a file into an existing directory, a directory to a new name, and with berth.
    ok(&d.docker(&["cp", &h("file"), "cpc:/tmp/"]));
    ok(&d.docker(&["cp", &h("dir"), "cpc:/tmp/newdir"]));
    ok(&d.berth(&["cp", &h("file"), "cpc:/tmp/bfile"]));
    // The container sees them (it was never started: the copies went through a temporary mount).
    assert!(no_mounts_under(&d.data_root));
    let out = ok(&d.docker(&["start", "-a", "cpc"]));
    assert_eq!(
        out, "hello from the host\ndeep\nhello from the host\n640\n",
        "{out}"
    );

    // Out: a file to a new name, a directory into an existing one, `dir/.` as contents.
    let out = d.dir().join("out");
    std::fs::create_dir(&out).unwrap();
    let o = |p: &str| out.join(p).display().to_string();
    ok(&d.docker(&["cp", "cpc:/tmp/file", &o("f2")]));
    assert_eq!(
        std::fs::read_to_string(out.join("f2")).unwrap(),
        "hello from the host\n"
    );
    let mode = std::fs::metadata(out.join("f2"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o640);
    ok(&d.docker(&["cp", "cpc:/tmp/newdir", &o("")]));
    assert_eq!(
        std::fs::read_to_string(out.join("newdir/sub/y")).unwrap(),
        "deep\n"
    );
    ok(&d.docker(&["cp", "cpc:/etc/.", &o("etccopy")]));
    assert!(out.join("etccopy/passwd").is_file());
    ok(&d.berth(&["cp", "cpc:/etc", &o("berth-etc")]));
    assert!(out.join("berth-etc/group").is_file());
    ok(&d.berth(&["container", "cp", "cpc:/tmp/newdir/.", &o("bdot")]));
    assert!(out.join("bdot/sub/y").is_file());
    // `-L` follows the symlink and keeps the link's name.
    ok(&d.docker(&["cp", "-L", "cpc:/bin/sh", &o("")]));
    assert!(std::fs::symlink_metadata(out.join("sh")).unwrap().is_file());
    ok(&d.berth(&["cp", "-L", "cpc:/bin/sh", &o("bsh")]));
    assert!(
        std::fs::symlink_metadata(out.join("bsh"))
            .unwrap()
            .is_file()
    );
    ok(&d.berth(&["cp", "cpc:/bin/sh", &o("link")]));
    assert_eq!(
        std::fs::read_link(out.join("link")).unwrap(),
        Path::new("busybox")
    );

    // Missing destinations and sources, as docker words them.
    let e = fails(&d.docker(&["cp", "cpc:/etc/passwd", &o("nodir/")]));
    assert!(e.contains("no such directory"), "{e}");
    let e = fails(&d.berth(&["cp", "cpc:/etc/passwd", &o("nodir/")]));
    assert!(e.contains("no such directory"), "{e}");
    let e = fails(&d.docker(&["cp", "cpc:/nope", &o("")]));
    assert!(
        e.contains("Error response from daemon: Could not find the file /nope in container cpc"),
        "{e}"
    );
    let e = fails(&d.berth(&["cp", "cpc:/nope", &o("")]));
    assert!(
        e.contains("Could not find the file /nope in container cpc"),
        "{e}"
    );
    let e = fails(&d.docker(&["cp", &h("file"), "cpc:/nonexist/x"]));
    assert!(e.contains("Could not find the file /nonexist"), "{e}");
    let e = fails(&d.docker(&["cp", &h("dir"), "cpc:/etc/passwd"]));
    assert!(e.contains("cannot copy directory"), "{e}");
    let e = fails(&d.docker(&["cp", "cpc:/etc", &o("f2")]));
    assert!(e.contains("cannot copy directory"), "{e}");
    let e = fails(&d.docker(&["cp", "nosuch:/etc", &o("")]));
    assert!(e.contains("No such container: nosuch"), "{e}");

    // `-` both ways: a tar on stdout, a tar from stdin.
    let tar_out = d.docker(&["cp", "cpc:/etc/passwd", "-"]);
    assert!(tar_out.status.success());
    let entries = tar_entries(&tar_out.stdout);
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].0, "passwd");
    assert!(String::from_utf8_lossy(&entries[0].1).starts_with("root:x:0:0:"));
    let r = shell(
        &d,
        &format!(
            "tar -C {} -cf - file | docker cp - cpc:/tmp/newdir && berth cp cpc:/tmp/newdir/file -",
            host.display()
        ),
    );
    let e = fails(&d.docker(&["cp", "-", "cpc:/etc/passwd"]));
    assert!(e.contains("must be a directory"), "{e}");
    let entries = tar_entries(&ok(&r).into_bytes());
    assert_eq!(entries[0].1, b"hello from the host\n");

    // Quiet unless on a terminal; on one, docker 28's summary line.
    let r = shell(
        &d,
        &format!(
            "script -qec 'berth cp cpc:/etc/passwd {} && berth cp {} cpc:/tmp/' /dev/null",
            o("pw-tty"),
            h("file")
        ),
    );
    let text = ok(&r);
    assert!(
        text.contains(&format!("Successfully copied 2.05kB to {}", o("pw-tty"))),
        "{text}"
    );
    assert!(
        text.contains("Successfully copied 2.05kB to cpc:/tmp/"),
        "{text}"
    );

    assert!(no_mounts_under(&d.data_root));
    d.rm_all();
    assert!(no_mounts_under(&d.data_root));
}

#[test]
fn cp_with_a_running_container() {
    require_root!();
    let d = TestDaemon::start();
    d.load_busybox();
    ok(&d.docker(&["run", "-d", "--name", "cpr", "busybox", "sleep", "300"]));
    let host = d.dir().join("in.txt");
    std::fs::write(&host, "live\n").unwrap();
    ok(&d.docker(&["cp", host.to_str().unwrap(), "cpr:/tmp/in.txt"]));
    let out = d.docker(&["cp", "cpr:/tmp/in.txt", "-"]);
    assert_eq!(tar_entries(&out.stdout)[0].1, b"live\n");
    // The running container's mount stays; stopping it unmounts.
    ok(&d.docker(&["stop", "-t", "1", "cpr"]));
    let out = d.docker(&["cp", "cpr:/tmp/in.txt", "-"]);
    assert_eq!(tar_entries(&out.stdout)[0].1, b"live\n");
    assert!(no_mounts_under(&d.data_root));
    d.rm_all();
}

/// A tar with one regular file whose name is written straight into the header.
fn raw_tar(name: &[u8], data: &[u8]) -> Vec<u8> {
    let mut h = tar::Header::new_gnu();
    h.as_old_mut().name[..name.len()].copy_from_slice(name);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    let mut out = h.as_bytes().to_vec();
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512 + 1024, 0);
    out
}

#[test]
fn hostile_symlinks_and_tars_stay_inside_the_container() {
    require_root!();
    let d = TestDaemon::start();
    d.load_busybox();
    ok(&d.docker(&[
        "run",
        "--name",
        "cph",
        "busybox",
        "sh",
        "-c",
        "ln -s / /escape; ln -s ../../../../ /up; echo in-the-container > /etc/marker",
    ]));
    let unique = format!("berth-cp-escape-{}", std::process::id());
    let hostfile = d.dir().join("hostfile");
    std::fs::write(&hostfile, "from the host\n").unwrap();
    let host_passwd = std::fs::read("/etc/passwd").unwrap();

    // Writes through `/escape` (-> /) and `/up` (-> ../../../..) land in the container.
    ok(&d.docker(&[
        "cp",
        hostfile.to_str().unwrap(),
        &format!("cph:/escape/tmp/{unique}"),
    ]));
    ok(&d.berth(&[
        "cp",
        hostfile.to_str().unwrap(),
        &format!("cph:/up/tmp/{unique}-b"),
    ]));
    assert!(!Path::new("/tmp").join(&unique).exists());
    assert!(!Path::new("/tmp").join(format!("{unique}-b")).exists());
    for name in [unique.clone(), format!("{unique}-b")] {
        let out = d.docker(&["cp", &format!("cph:/tmp/{name}"), "-"]);
        assert_eq!(tar_entries(&out.stdout)[0].1, b"from the host\n");
    }
    // Reads through them come from the container too.
    let out = d.docker(&["cp", "cph:/up/etc/passwd", "-"]);
    let entries = tar_entries(&out.stdout);
    assert_eq!(entries[0].0, "passwd");
    assert_ne!(entries[0].1, host_passwd);
    let out = d.berth(&["cp", "cph:/escape/etc/marker", "-"]);
    assert_eq!(tar_entries(&out.stdout)[0].1, b"in-the-container\n");
    // The symlinks themselves are copied as symlinks, never followed.
    let out = d.docker(&["cp", "cph:/escape", "-"]);
    let mut a = tar::Archive::new(out.stdout.as_slice());
    let e = a.entries().unwrap().next().unwrap().unwrap();
    assert_eq!(e.header().entry_type(), tar::EntryType::Symlink);
    assert_eq!(std::fs::read(&hostfile).unwrap(), b"from the host\n");

    // A tar with `../` entries sent straight to the API is refused.
    let evil = d.dir().join("evil.tar");
    std::fs::write(&evil, raw_tar(b"../../../evil", b"x")).unwrap();
    let socket = d.host().trim_start_matches("unix://").to_string();
    let r = Command::new("curl")
        .args([
            "-s",
            "-w",
            "\n%{http_code}",
            "--unix-socket",
            &socket,
            "-X",
            "PUT",
            "-T",
        ])
        .arg(&evil)
        .arg("http://localhost/v1.47/containers/cph/archive?path=/tmp")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&r.stdout).into_owned();
    assert!(text.ends_with("\n400"), "{text}");
    assert!(
        text.contains(r#"\"../../../evil\" is outside of \"/tmp\""#),
        "{text}"
    );
    // A directory replaced by a file is refused with noOverwriteDirNonDir (as the CLI sends).
    let clash = d.dir().join("clash.tar");
    std::fs::write(&clash, raw_tar(b"tmp", b"x")).unwrap();
    let r = Command::new("curl")
        .args([
            "-s",
            "-w",
            "\n%{http_code}",
            "--unix-socket",
            &socket,
            "-X",
            "PUT",
            "-T",
        ])
        .arg(&clash)
        .arg("http://localhost/containers/cph/archive?path=/&noOverwriteDirNonDir=true")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&r.stdout).into_owned();
    assert!(text.ends_with("\n400"), "{text}");
    assert!(text.contains("cannot overwrite directory"), "{text}");
    // HEAD carries the stat header, with Go's mode bits.
    let r = Command::new("curl")
        .args(["-sI", "--unix-socket", &socket])
        .arg("http://localhost/containers/cph/archive?path=/escape")
        .output()
        .unwrap();
    let head = String::from_utf8_lossy(&r.stdout).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(head.contains("x-docker-container-path-stat: "), "{head}");

    assert!(no_mounts_under(&d.data_root));
    d.rm_all();
    assert!(no_mounts_under(&d.data_root));
}

#[test]
fn export_then_import_gives_an_image_that_runs() {
    require_root!();
    let d = TestDaemon::start();
    d.load_busybox();
    ok(&d.docker(&[
        "run",
        "--name",
        "cpe",
        "busybox",
        "sh",
        "-c",
        "echo exported > /marker",
    ]));
    let r = shell(&d, "docker export cpe | docker import - exported:v1");
    assert!(ok(&r).starts_with("sha256:"));
    let out = ok(&d.docker(&["run", "--rm", "exported:v1", "cat", "/marker"]));
    assert_eq!(out, "exported\n");
    // berth export -o writes the same tree: the contents, no top entry.
    let file = d.dir().join("e.tar");
    ok(&d.berth(&["export", "-o", file.to_str().unwrap(), "cpe"]));
    let bytes = std::fs::read(&file).unwrap();
    let entries = tar_entries(&bytes);
    assert!(
        entries
            .iter()
            .any(|(n, c)| n == "marker" && c == b"exported\n")
    );
    assert!(entries.iter().any(|(n, _)| n == "bin/busybox"));
    assert!(
        entries
            .iter()
            .all(|(n, _)| !n.starts_with('/') && !n.starts_with("./"))
    );
    let e = fails(&d.docker(&["export", "nosuch"]));
    assert!(e.contains("No such container: nosuch"), "{e}");
    let mut child = d
        .berth_cmd()
        .args(["container", "export", "cpe"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut streamed = Vec::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_end(&mut streamed)
        .unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(tar_entries(&streamed).len(), entries.len());
    std::io::stdout().flush().unwrap();
    assert!(no_mounts_under(&d.data_root));
    d.rm_all();
    ok(&d.docker(&["rmi", "exported:v1"]));
    assert!(no_mounts_under(&d.data_root));
}
