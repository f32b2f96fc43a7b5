//! `berth build` against a real berthd, side by side with `docker build` (legacy builder): the
//! two clients send the same context (same "Sending build context" size) and share the build
//! cache; `-f` outside the context and from stdin, a context from stdin, `--build-arg` taken
//! from the environment, `--iidfile`, `-q`, several `-t`, a failing RUN's exit code, and a
//! `.dockerignore` applied client-side (a huge ignored file is never read or sent).

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::io::Write;
use std::path::Path;
use std::process::{Output, Stdio};

use test_support::daemon::{TestDaemon, fails, no_mounts_under, ok};
use test_support::require_root;

fn docker_build(d: &TestDaemon, args: &[&str]) -> Output {
    let mut c = d.docker_cmd();
    c.env("DOCKER_BUILDKIT", "0").arg("build").args(args);
    c.output().unwrap()
}

fn berth_build(d: &TestDaemon, args: &[&str]) -> Output {
    let mut c = d.berth_cmd();
    c.arg("build").args(args);
    c.output().unwrap()
}

/// `berth build ARGS` with `stdin` fed to it.
fn berth_build_stdin(d: &TestDaemon, args: &[&str], stdin: &[u8]) -> Output {
    let mut c = d.berth_cmd();
    c.arg("build").args(args).stdin(Stdio::piped());
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

fn write(dir: &Path, name: &str, text: &str) {
    let p = dir.join(name);
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(p, text).unwrap();
}

fn image_id(out: &str) -> String {
    out.lines()
        .rev()
        .find_map(|l| l.strip_prefix("Successfully built "))
        .unwrap_or_else(|| panic!("no image ID in:\n{out}"))
        .trim()
        .to_string()
}

/// The "Sending build context to Docker daemon  X" line's size.
fn context_size(out: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix("Sending build context to Docker daemon"))
        .unwrap_or_else(|| panic!("no upload line in:\n{out}"))
        .trim()
        .to_string()
}

/// No container or mount left by the builds.
fn nothing_left(d: &TestDaemon) {
    let ps = ok(&d.docker(&["ps", "-aq"]));
    assert!(ps.trim().is_empty(), "containers left: {ps}");
    assert!(no_mounts_under(&d.data_root));
}

#[test]
fn berth_and_docker_send_the_same_context_and_share_the_cache() {
    require_root!();
    let d = TestDaemon::start();
    d.load_busybox();
    let ctx = tempfile::tempdir().unwrap();
    write(
        ctx.path(),
        "Dockerfile",
        "FROM busybox\nENV A=1\nWORKDIR /app\nCOPY . /app/\nRUN cat /app/src/main.txt > /copied\n\
         LABEL stage=test\nCMD [\"cat\", \"/copied\"]\n",
    );
    write(ctx.path(), "src/main.txt", "main\n");
    write(ctx.path(), "src/deep/x.txt", "x\n");
    std::fs::set_permissions(
        ctx.path().join("src/main.txt"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let dir = ctx.path().to_str().unwrap();

    let first = ok(&docker_build(&d, &["-t", "shared:docker", dir]));
    let id = image_id(&first);
    let out = berth_build(&d, &["-t", "shared:b1", "--tag", "shared:b2", dir]);
    let text = ok(&out);
    // docker's exact upload line ("\r\r\n" as its progress output ends it off a terminal).
    assert!(
        text.starts_with(&format!(
            "Sending build context to Docker daemon {:>8}\r\r\nStep 1/7 : FROM busybox\n",
            context_size(&first)
        )),
        "{text:?}"
    );
    assert_eq!(text.matches(" ---> Using cache").count(), 6, "{text}");
    assert!(!text.contains("Running in"), "{text}");
    assert_eq!(image_id(&text), id);
    assert!(text.contains("Successfully tagged shared:b1\n"), "{text}");
    assert!(text.contains("Successfully tagged shared:b2\n"), "{text}");
    for tag in ["shared:docker", "shared:b1", "shared:b2"] {
        let got = ok(&d.docker(&["inspect", "-f", "{{.Id}}", tag]));
        assert!(
            got.trim().starts_with(&format!("sha256:{id}")),
            "{tag}: {got}"
        );
    }
    assert_eq!(ok(&d.docker(&["run", "--rm", "shared:b1"])), "main\n");

    // And the other way round after a change: berth builds, docker hits berth's cache.
    write(ctx.path(), "src/main.txt", "changed\n");
    let b = ok(&berth_build(&d, &["-t", "shared:b3", dir]));
    assert_eq!(b.matches(" ---> Using cache").count(), 2, "{b}");
    let again = ok(&docker_build(&d, &["-t", "shared:docker2", dir]));
    assert_eq!(again.matches(" ---> Using cache").count(), 6, "{again}");
    assert_eq!(image_id(&again), image_id(&b));

    // -q: the ID only, as docker prints it.
    let q = ok(&berth_build(&d, &["-q", dir]));
    let dq = ok(&docker_build(&d, &["-q", dir]));
    assert_eq!(q, dq);
    assert!(
        q.starts_with("sha256:") && q.ends_with('\n') && q.lines().count() == 1,
        "{q}"
    );
    nothing_left(&d);
}

#[test]
fn dockerfile_outside_the_context_from_stdin_and_stdin_contexts() {
    require_root!();
    let d = TestDaemon::start();
    d.load_busybox();
    let top = tempfile::tempdir().unwrap();
    write(top.path(), "ctx/data.txt", "data\n");
    write(top.path(), "ctx/.dockerignore", "*.tmp\n");
    write(top.path(), "ctx/skip.tmp", "skip\n");
    write(
        top.path(),
        "dockerfiles/Outside",
        "FROM busybox\nCOPY . /ctx/\nRUN ls -A /ctx | tr '\\n' ' '\n",
    );
    // -f is relative to the current directory, not the context.
    let mut c = d.berth_cmd();
    c.current_dir(top.path())
        .args(["build", "-t", "outside", "-f", "dockerfiles/Outside", "ctx"]);
    let text = ok(&c.output().unwrap());
    // The Dockerfile travelled as `.dockerfile.<random>`, listed in the sent .dockerignore, so
    // the daemon kept it out of the context (the .dockerignore stays: it doesn't exclude
    // itself).
    assert!(text.contains("\n.dockerignore data.txt Removing"), "{text}");
    assert!(
        text.contains("Successfully tagged outside:latest"),
        "{text}"
    );

    // A relative -f that does not exist: docker's message, nothing sent.
    let mut c = d.berth_cmd();
    c.current_dir(top.path())
        .args(["build", "-f", "nope/Dockerfile", "ctx"]);
    let err = fails(&c.output().unwrap());
    assert_eq!(
        err.trim(),
        format!(
            "unable to prepare context: unable to evaluate symlinks in Dockerfile path: lstat {}/nope/Dockerfile: no such file or directory",
            std::fs::canonicalize(top.path()).unwrap().display()
        )
    );
    let err = fails(&berth_build(&d, &["/nonexistent/ctx"]));
    assert_eq!(
        err.trim(),
        "unable to prepare context: path \"/nonexistent/ctx\" not found"
    );

    // -f - : the Dockerfile from stdin, the context from the directory.
    let ctx = top.path().join("ctx");
    let out = berth_build_stdin(
        &d,
        &["-f", "-", ctx.to_str().unwrap()],
        b"FROM busybox\nCOPY data.txt /\nRUN cat /data.txt\n",
    );
    let text = ok(&out);
    assert!(text.contains("\ndata\n"), "{text}");
    // `-`: a Dockerfile alone on stdin.
    let out = berth_build_stdin(
        &d,
        &["-t", "stdin:df", "-"],
        b"FROM busybox\nRUN echo from-stdin\n",
    );
    let text = ok(&out);
    assert!(
        text.contains("Sending build context to Docker daemon  2.048kB"),
        "{text}"
    );
    assert!(text.contains("\nfrom-stdin\n"), "{text}");
    // `-`: a tar context on stdin, with -f naming the Dockerfile inside it.
    let mut tar = tar::Builder::new(Vec::new());
    for (name, data) in [
        (
            "sub/Df",
            &b"FROM busybox\nCOPY f /f\nCMD [\"cat\", \"/f\"]\n"[..],
        ),
        ("f", &b"from the tar\n"[..]),
    ] {
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        tar.append_data(&mut h, name, data).unwrap();
    }
    let tar = tar.into_inner().unwrap();
    ok(&berth_build_stdin(
        &d,
        &["-t", "stdin:tar", "-f", "sub/Df", "-"],
        &tar,
    ));
    assert_eq!(
        ok(&d.docker(&["run", "--rm", "stdin:tar"])),
        "from the tar\n"
    );
    nothing_left(&d);
}

#[test]
fn build_args_from_the_environment_iidfile_labels_and_target() {
    require_root!();
    let d = TestDaemon::start();
    d.load_busybox();
    let ctx = tempfile::tempdir().unwrap();
    write(
        ctx.path(),
        "Dockerfile",
        "FROM busybox AS first\nARG FROM_ENV\nARG UNSET_ONE=dflt\nARG GIVEN\n\
         RUN echo \"$FROM_ENV/$UNSET_ONE/$GIVEN\" > /args\nCMD [\"cat\", \"/args\"]\n\
         FROM first AS second\nRUN echo second > /second\n",
    );
    let dir = ctx.path().to_str().unwrap();
    let iid = ctx.path().join("iid");
    std::fs::write(&iid, "stale").unwrap();
    let mut c = d.berth_cmd();
    c.env("FROM_ENV", "env-value")
        .env_remove("UNSET_ONE")
        .args([
            "build",
            "--build-arg",
            "FROM_ENV",
            "--build-arg",
            "UNSET_ONE",
            "--build-arg",
            "GIVEN=given",
            "--label",
            "com.example.x=y",
            "--target",
            "first",
            "--iidfile",
            iid.to_str().unwrap(),
            "-t",
            "args:1",
            dir,
        ]);
    let text = ok(&c.output().unwrap());
    assert!(
        !text.contains("second"),
        "--target stops at the first stage: {text}"
    );
    assert_eq!(
        ok(&d.docker(&["run", "--rm", "args:1"])),
        "env-value/dflt/given\n"
    );
    let id = ok(&d.docker(&["inspect", "-f", "{{.Id}}", "args:1"]));
    // docker writes the aux ID, without a newline.
    assert_eq!(std::fs::read_to_string(&iid).unwrap(), id.trim());
    let label = ok(&d.docker(&[
        "inspect",
        "-f",
        "{{index .Config.Labels \"com.example.x\"}}",
        "args:1",
    ]));
    assert_eq!(label, "y\n");
    nothing_left(&d);
}

#[test]
fn a_failing_run_exits_with_its_code() {
    require_root!();
    let d = TestDaemon::start();
    d.load_busybox();
    let ctx = tempfile::tempdir().unwrap();
    write(
        ctx.path(),
        "Dockerfile",
        "FROM busybox\nRUN echo before-failing; exit 7\n",
    );
    let dir = ctx.path().to_str().unwrap();
    let iid = ctx.path().join("iid");
    std::fs::write(&iid, "stale").unwrap();
    let out = berth_build(&d, &["--iidfile", iid.to_str().unwrap(), dir]);
    assert_eq!(out.status.code(), Some(7), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("\nbefore-failing\n"), "{stdout}");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "The command '/bin/sh -c echo before-failing; exit 7' returned a non-zero code: 7\n"
    );
    assert!(!iid.exists(), "a failed build leaves no ID file");
    // docker agrees.
    let docker = docker_build(&d, &[dir]);
    assert_eq!(docker.status.code(), Some(7));
    // -q: nothing on stdout, the held-back output on stderr with the error.
    let out = berth_build(&d, &["-q", dir]);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty(), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Sending build context to Docker daemon"),
        "{err}"
    );
    assert!(err.contains("returned a non-zero code: 7"), "{err}");
    // A Dockerfile error names its line.
    write(ctx.path(), "Dockerfile", "FROM busybox\nNOPE x\n");
    let err = fails(&berth_build(&d, &[dir]));
    assert!(
        err.contains("dockerfile parse error on line 2: unknown instruction: NOPE"),
        "{err}"
    );
    nothing_left(&d);
}

#[test]
fn dockerignore_is_applied_before_sending() {
    require_root!();
    let d = TestDaemon::start();
    d.load_busybox();
    let ctx = tempfile::tempdir().unwrap();
    write(
        ctx.path(),
        "Dockerfile",
        "FROM busybox\nCOPY . /ctx/\nRUN find /ctx | sort | tr '\\n' ' '\n",
    );
    write(
        ctx.path(),
        ".dockerignore",
        "# build output\nhuge.bin\nlogs\n!logs/keep.log\n*.md\n",
    );
    write(ctx.path(), "logs/a.log", "a\n");
    write(ctx.path(), "logs/keep.log", "keep\n");
    write(ctx.path(), "README.md", "readme\n");
    write(ctx.path(), "app.txt", "app\n");
    // 4 GiB, sparse: reading it at all would take far longer than the whole test.
    let huge = std::fs::File::create(ctx.path().join("huge.bin")).unwrap();
    huge.set_len(4 << 30).unwrap();
    drop(huge);
    let dir = ctx.path().to_str().unwrap();
    let started = std::time::Instant::now();
    let text = ok(&berth_build(&d, &[dir]));
    assert!(started.elapsed() < std::time::Duration::from_secs(60));
    let size = context_size(&text);
    assert!(
        size.ends_with("kB") && !size.starts_with("0"),
        "sent {size}"
    );
    assert!(
        text.contains(
            "\n/ctx /ctx/.dockerignore /ctx/Dockerfile /ctx/app.txt /ctx/logs /ctx/logs/keep.log Removing"
        ),
        "{text}"
    );
    // The docker CLI sends the same bytes.
    let docker = ok(&docker_build(&d, &[dir]));
    assert_eq!(context_size(&docker), size);
    assert_eq!(image_id(&docker), image_id(&text));
    nothing_left(&d);
}
