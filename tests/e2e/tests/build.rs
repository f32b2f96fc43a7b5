//! `docker build` (the legacy builder, `DOCKER_BUILDKIT=0`, as the CLI falls back to without
//! buildx) against a real berthd: the seeds' Dockerfiles, the build cache, multi-stage builds,
//! `.dockerignore`, reproducible builds, and bad input. Every test checks that no container,
//! mount or context directory is left behind.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::path::Path;
use std::process::Output;

use test_support::daemon::{TestDaemon, fails, no_mounts_under, ok};
use test_support::fixtures;
use test_support::require_root;

/// `docker build` with the legacy builder.
fn build(d: &TestDaemon, args: &[&str]) -> Output {
    let mut c = d.docker_cmd();
    c.env("DOCKER_BUILDKIT", "0").arg("build").args(args);
    c.output().unwrap()
}

fn write(dir: &Path, name: &str, text: &str) {
    let p = dir.join(name);
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(p, text).unwrap();
}

/// Nothing of the builds is left: no container, no mount under the data root, no context.
fn nothing_left(d: &TestDaemon) {
    let ps = ok(&d.docker(&["ps", "-aq"]));
    assert!(ps.trim().is_empty(), "containers left: {ps}");
    assert!(no_mounts_under(&d.data_root));
    let builder = d.data_root.join("builder");
    if let Ok(entries) = std::fs::read_dir(&builder) {
        let left: Vec<_> = entries
            .flatten()
            .map(|e| e.file_name().to_string_lossy().to_string())
            .filter(|n| n != "cache")
            .collect();
        assert!(left.is_empty(), "left under builder/: {left:?}");
    }
}

/// A daemon with busybox loaded and a context directory holding `dockerfile`.
fn setup(dockerfile: &str) -> (TestDaemon, tempfile::TempDir) {
    let d = TestDaemon::start();
    d.load_busybox();
    let ctx = tempfile::tempdir().unwrap();
    write(ctx.path(), "Dockerfile", dockerfile);
    (d, ctx)
}

fn image_id(out: &str) -> String {
    out.lines()
        .rev()
        .find_map(|l| l.strip_prefix("Successfully built "))
        .unwrap_or_else(|| panic!("no image ID in:\n{out}"))
        .trim()
        .to_string()
}

#[test]
fn seed_dockerfile_builds_runs_and_rebuilds_from_cache() {
    require_root!();
    let (d, ctx) = setup(
        r#"# the seed's Dockerfile
FROM busybox
ARG GREETING=hello
ENV APP_HOME=/app \
    MODE=prod
LABEL org.example.name="seed app" version=1
RUN mkdir -p $APP_HOME && echo "$GREETING from RUN" > $APP_HOME/greeting && echo built-step-output
COPY hello.txt $APP_HOME/
WORKDIR $APP_HOME
EXPOSE 8080 9000/udp
VOLUME /data
ENTRYPOINT ["sh", "-c"]
CMD ["cat greeting hello.txt; echo mode=$MODE; pwd"]
"#,
    );
    write(ctx.path(), "hello.txt", "hello from COPY\n");
    let dir = ctx.path().to_str().unwrap();

    let out = build(&d, &["-t", "seed:1", "--build-arg", "GREETING=hi", dir]);
    let text = ok(&out);
    assert!(text.contains("Step 1/11 : FROM busybox"), "{text}");
    assert!(
        text.contains("Step 5/11 : RUN mkdir -p $APP_HOME"),
        "{text}"
    );
    assert!(text.contains(" ---> Running in "), "{text}");
    assert!(
        text.contains("built-step-output"),
        "RUN output shown: {text}"
    );
    assert!(text.contains("Removing intermediate container "), "{text}");
    assert!(text.contains("Successfully tagged seed:1"), "{text}");
    let id = image_id(&text);

    let run = ok(&d.docker(&["run", "--rm", "seed:1"]));
    assert_eq!(run, "hi from RUN\nhello from COPY\nmode=prod\n/app\n");
    let cfg = ok(&d.docker(&["inspect", "-f", "{{json .Config}}", "seed:1"]));
    let cfg: serde_json::Value = serde_json::from_str(&cfg).unwrap();
    assert_eq!(cfg["Entrypoint"], serde_json::json!(["sh", "-c"]));
    assert_eq!(
        cfg["Cmd"],
        serde_json::json!(["cat greeting hello.txt; echo mode=$MODE; pwd"])
    );
    assert_eq!(cfg["WorkingDir"], "/app");
    assert!(cfg["ExposedPorts"]["8080/tcp"].is_object(), "{cfg}");
    assert!(cfg["ExposedPorts"]["9000/udp"].is_object(), "{cfg}");
    assert!(cfg["Volumes"]["/data"].is_object(), "{cfg}");
    assert_eq!(cfg["Labels"]["org.example.name"], "seed app");
    assert_eq!(cfg["Labels"]["version"], "1");
    let env: Vec<String> = serde_json::from_value(cfg["Env"].clone()).unwrap();
    assert!(env.contains(&"APP_HOME=/app".to_string()), "{env:?}");
    assert!(env.contains(&"MODE=prod".to_string()), "{env:?}");
    assert!(
        !env.iter().any(|e| e.starts_with("GREETING")),
        "ARG is not ENV"
    );
    // History: one entry per instruction on top of busybox's.
    let history = ok(&d.docker(&["history", "-q", "--no-trunc", "seed:1"]));
    assert!(history.lines().count() >= 11, "{history}");

    // Again: every step from the cache, the same image.
    let again = ok(&build(
        &d,
        &["-t", "seed:1", "--build-arg", "GREETING=hi", dir],
    ));
    assert_eq!(again.matches(" ---> Using cache").count(), 10, "{again}");
    assert!(!again.contains("Running in"), "{again}");
    assert_eq!(image_id(&again), id);
    // A changed file misses from its COPY on; a changed build arg from the first step using it.
    write(ctx.path(), "hello.txt", "changed\n");
    let changed = ok(&build(
        &d,
        &["-t", "seed:2", "--build-arg", "GREETING=hi", dir],
    ));
    assert_eq!(changed.matches(" ---> Using cache").count(), 4, "{changed}");
    let changed_id = image_id(&changed);
    assert_ne!(changed_id, id);
    let run = ok(&d.docker(&["run", "--rm", "seed:2"]));
    assert!(run.contains("changed\n"), "{run}");
    // Plain `docker build` (no DOCKER_BUILDKIT): without a buildx plugin the CLI falls back
    // to the legacy builder by itself.
    let mut plain = d.docker_cmd();
    plain.env_remove("DOCKER_BUILDKIT").args([
        "build",
        "-t",
        "seed:plain",
        "--build-arg",
        "GREETING=hi",
        dir,
    ]);
    let plain = plain.output().unwrap();
    let plain_err = String::from_utf8_lossy(&plain.stderr).to_string();
    if plain_err.contains("buildx") && !plain.status.success() {
        eprintln!("skipping plain docker build: a buildx plugin is installed");
    } else {
        let text = ok(&plain);
        assert_eq!(image_id(&text), changed_id, "{text}");
    }
    // -q prints the ID only; --no-cache runs everything.
    let q = ok(&build(
        &d,
        &["-q", "--no-cache", "--build-arg", "GREETING=hi", dir],
    ));
    assert!(q.trim().starts_with("sha256:"), "{q}");
    assert_eq!(q.trim().lines().count(), 1, "{q}");
    nothing_left(&d);
}

#[test]
fn debian_seed_with_shell_and_exec_forms() {
    require_root!();
    let Some(debian) = fixtures::shared_image("debian-bookworm-slim.tar.gz") else {
        eprintln!("skipping: no debian image in ../shared/images");
        return;
    };
    let d = TestDaemon::start();
    ok(&d.docker(&["load", "-q", "-i", debian.to_str().unwrap()]));
    let base = ok(&d.docker(&["images", "--format", "{{.Repository}}:{{.Tag}}"]));
    let base = base.lines().next().unwrap().to_string();
    let ctx = tempfile::tempdir().unwrap();
    write(
        ctx.path(),
        "Dockerfile",
        &format!(
            "FROM {base}\nRUN echo one > /one\nRUN echo two >> /one && cat /etc/debian_version > /version\nCMD cat /one /version\n"
        ),
    );
    let dir = ctx.path().to_str().unwrap();
    let text = ok(&build(&d, &["-t", "deb:seed", dir]));
    assert!(text.contains("Successfully tagged deb:seed"), "{text}");
    let run = ok(&d.docker(&["run", "--rm", "deb:seed"]));
    assert!(run.starts_with("one\ntwo\n12"), "{run}");
    let cmd = ok(&d.docker(&["inspect", "-f", "{{json .Config.Cmd}}", "deb:seed"]));
    assert_eq!(cmd.trim(), r#"["/bin/sh","-c","cat /one /version"]"#);
    let again = ok(&build(&d, &["-t", "deb:seed", dir]));
    assert_eq!(again.matches("Using cache").count(), 3, "{again}");
    nothing_left(&d);
}

#[test]
fn multi_stage_keeps_only_the_artefact() {
    require_root!();
    let (d, ctx) = setup(
        "FROM busybox AS build\nRUN mkdir /out && echo artefact-content > /out/artefact && echo junk > /junk\n\nFROM scratch\nCOPY --from=build /out/artefact /artefact\nCMD [\"/artefact\"]\n",
    );
    let dir = ctx.path().to_str().unwrap();
    let text = ok(&build(&d, &["-t", "art:1", dir]));
    assert!(text.contains("Step 3/5 : FROM scratch"), "{text}");
    // The final image: one layer holding the artefact alone.
    let layers = ok(&d.docker(&["inspect", "-f", "{{len .RootFS.Layers}}", "art:1"]));
    assert_eq!(layers.trim(), "1");
    let c = ok(&d.docker(&["create", "art:1"]));
    let export = d.docker(&["export", c.trim()]);
    assert!(export.status.success());
    let mut names = Vec::new();
    let mut a = tar::Archive::new(export.stdout.as_slice());
    for e in a.entries().unwrap() {
        let e = e.unwrap();
        names.push(e.path().unwrap().to_string_lossy().to_string());
    }
    assert!(
        names.iter().any(|n| n.trim_end_matches('/') == "artefact"),
        "{names:?}"
    );
    assert!(
        !names
            .iter()
            .any(|n| n.contains("junk") || n.contains("bin/")),
        "{names:?}"
    );
    ok(&d.docker(&["rm", c.trim()]));
    // --target stops at the named stage.
    let t = ok(&build(&d, &["--target", "build", "-t", "art:build", dir]));
    assert!(!t.contains("FROM scratch"), "{t}");
    let junk = ok(&d.docker(&["run", "--rm", "art:build", "cat", "/junk"]));
    assert_eq!(junk, "junk\n");
    let bad = build(&d, &["--target", "nope", dir]);
    assert!(fails(&bad).contains("failed to reach build target nope in Dockerfile"));
    nothing_left(&d);
}

#[test]
fn dockerignore_and_reproducible_builds() {
    require_root!();
    let (d, ctx) =
        setup("FROM busybox\nCOPY . /ctx/\nRUN find /ctx | sort > /listing && date > /when\n");
    write(
        ctx.path(),
        ".dockerignore",
        "secret*\n**/*.log\n!keep.log\n",
    );
    write(ctx.path(), "app.txt", "app\n");
    write(ctx.path(), "secret.key", "no\n");
    write(ctx.path(), "sub/debug.log", "no\n");
    write(ctx.path(), "keep.log", "yes\n");
    let dir = ctx.path().to_str().unwrap();
    ok(&build(&d, &["-t", "ign:1", dir]));
    let listing = ok(&d.docker(&["run", "--rm", "ign:1", "cat", "/listing"]));
    assert!(listing.contains("/ctx/app.txt"), "{listing}");
    assert!(listing.contains("/ctx/keep.log"), "{listing}");
    assert!(!listing.contains("secret"), "{listing}");
    assert!(!listing.contains("debug.log"), "{listing}");

    // SOURCE_DATE_EPOCH: two builds without the cache give one image ID.
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM busybox\nCOPY app.txt /app.txt\nRUN echo fixed > /fixed && touch /fixed\nCMD [\"cat\", \"/fixed\"]\n",
    )
    .unwrap();
    let args = [
        "--no-cache",
        "--build-arg",
        "SOURCE_DATE_EPOCH=1700000000",
        dir,
    ];
    let a = image_id(&ok(&build(&d, &args)));
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let b = image_id(&ok(&build(&d, &args)));
    assert_eq!(a, b, "reproducible");
    let created = ok(&d.docker(&["inspect", "-f", "{{.Created}}", &a]));
    assert!(created.starts_with("2023-11-14T22:13:20"), "{created}");
    // Without it, the same build differs (times).
    let c = image_id(&ok(&build(&d, &["--no-cache", dir])));
    assert_ne!(a, c);
    // `docker builder prune` forgets the cache.
    ok(&d.docker(&["builder", "prune", "-f"]));
    let after = ok(&build(&d, &["-t", "ign:1", dir]));
    assert!(!after.contains("Using cache"), "{after}");
    nothing_left(&d);
}

#[test]
fn bad_input_is_reported_and_nothing_leaks() {
    require_root!();
    let d = TestDaemon::start();
    d.load_busybox();
    let ctx = tempfile::tempdir().unwrap();
    let dir = ctx.path().to_str().unwrap().to_string();
    let with = |text: &str| {
        std::fs::write(ctx.path().join("Dockerfile"), text).unwrap();
        build(&d, &[&dir])
    };
    // Syntax: the line is named.
    let e = fails(&with("FROM busybox\nFOO bar\n"));
    assert!(
        e.contains("line 2") && e.to_lowercase().contains("unknown instruction: foo"),
        "{e}"
    );
    let e = fails(&with("FROM busybox\nEXPOSE\n"));
    assert!(e.contains("line 2"), "{e}");
    let e = fails(&with(""));
    assert!(e.contains("cannot be empty"), "{e}");
    // COPY of something missing, reaching out, or through a symlink out of the context.
    let e = fails(&with("FROM busybox\nCOPY nothere /x\n"));
    assert!(e.contains("nothere"), "{e}");
    let e = fails(&with("FROM busybox\nCOPY ../../etc/passwd /x\n"));
    assert!(
        e.to_lowercase()
            .contains("forbidden path outside the build context"),
        "{e}"
    );
    std::os::unix::fs::symlink("/etc/shadow", ctx.path().join("out")).unwrap();
    let e = fails(&with("FROM busybox\nCOPY out /x\n"));
    assert!(e.contains("out"), "{e}");
    std::fs::remove_file(ctx.path().join("out")).unwrap();
    // A failing RUN: its output, its exit code, moby's message.
    let out = with("FROM busybox\nRUN echo about-to-fail && exit 7\n");
    assert_eq!(out.status.code(), Some(7));
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(all.contains("about-to-fail"), "{all}");
    assert!(
        all.contains(
            "The command '/bin/sh -c echo about-to-fail && exit 7' returned a non-zero code: 7"
        ),
        "{all}"
    );
    // A large context (64 MiB of incompressible data) is received and cleaned up.
    let big = ctx.path().join("big.bin");
    let mut f = std::fs::File::create(&big).unwrap();
    let mut state = 0x1234_5678_u64;
    let mut buf = vec![0u8; 1 << 20];
    for _ in 0..64 {
        for b in buf.iter_mut() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            *b = state as u8;
        }
        std::io::Write::write_all(&mut f, &buf).unwrap();
    }
    drop(f);
    let out = with("FROM busybox\nCOPY big.bin /big.bin\nRUN wc -c /big.bin\n");
    let text = ok(&out);
    assert!(text.contains("67108864 /big.bin"), "{text}");
    // Nothing leaked; the daemon still serves.
    nothing_left(&d);
    ok(&d.docker(&["version"]));
}

/// Serves `body` for any GET on a loopback port until the process ends; the URL.
fn serve_file(body: &'static [u8]) -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut buf = [0u8; 4096];
            let _ = conn.read(&mut buf);
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nLast-Modified: Tue, 14 Nov 2023 22:13:20 GMT\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = conn.write_all(head.as_bytes());
            let _ = conn.write_all(body);
        }
    });
    format!("http://{addr}/files/remote.txt")
}

#[test]
fn add_urls_and_archives_copy_chown_chmod() {
    require_root!();
    let d = TestDaemon::start();
    d.load_busybox();
    let ctx = tempfile::tempdir().unwrap();
    let url = serve_file(b"from the web\n");
    // A local tar.gz that ADD unpacks (and COPY does not).
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    {
        let mut t = tar::Builder::new(&mut gz);
        let mut h = tar::Header::new_gnu();
        h.set_size(7);
        h.set_mode(0o644);
        h.set_cksum();
        t.append_data(&mut h, "inside/packed.txt", &b"packed\n"[..])
            .unwrap();
        t.finish().unwrap();
    }
    std::fs::write(ctx.path().join("bundle.tar.gz"), gz.finish().unwrap()).unwrap();
    write(ctx.path(), "conf/app.conf", "key=value\n");
    write(
        ctx.path(),
        "Dockerfile",
        &format!(
            "FROM busybox\n\
             ADD {url} /web/\n\
             ADD bundle.tar.gz /unpacked/\n\
             COPY bundle.tar.gz /copied/\n\
             COPY --chown=1234:5678 --chmod=640 conf/ /etc/app/\n\
             COPY --chown=nobody conf/app.conf /owned.conf\n\
             CMD [\"sh\", \"-c\", \"cat /web/remote.txt /unpacked/inside/packed.txt; ls /copied; stat -c '%u:%g %a' /etc/app/app.conf /owned.conf /web/remote.txt\"]\n"
        ),
    );
    let dir = ctx.path().to_str().unwrap();
    let text = ok(&build(&d, &["-t", "adds:1", dir]));
    assert!(text.contains("Successfully tagged adds:1"), "{text}");
    let out = ok(&d.docker(&["run", "--rm", "adds:1"]));
    assert_eq!(
        out, "from the web\npacked\nbundle.tar.gz\n1234:5678 640\n65534:65534 644\n0:0 600\n",
        "{out}"
    );
    // Rebuilt from the cache: the URL is fetched again but its content is unchanged.
    let again = ok(&build(&d, &["-t", "adds:1", dir]));
    assert_eq!(again.matches("Using cache").count(), 6, "{again}");
    nothing_left(&d);
}

#[test]
fn from_pulls_a_missing_base_and_pull_refreshes_it() {
    require_root!();
    let reg = test_support::registry::Registry::berth();
    let d = TestDaemon::start();
    d.load_busybox();
    let base = format!("{}/base/bb:1", reg.addr());
    ok(&d.docker(&["tag", "busybox", &base]));
    ok(&d.docker(&["push", &base]));
    ok(&d.docker(&["rmi", &base]));
    let ctx = tempfile::tempdir().unwrap();
    write(
        ctx.path(),
        "Dockerfile",
        &format!("FROM {base}\nRUN echo pulled-base > /p\n"),
    );
    let dir = ctx.path().to_str().unwrap();
    // Not here: FROM pulls it, and the pull's lines are in the build's output.
    let text = ok(&build(&d, &["-t", "frompull:1", dir]));
    assert!(
        text.contains("Status: Downloaded newer image for"),
        "{text}"
    );
    assert_eq!(
        ok(&d.docker(&["run", "--rm", "frompull:1", "cat", "/p"])),
        "pulled-base\n"
    );
    // --pull asks the registry again (up to date), and the steps still come from the cache.
    let again = ok(&build(&d, &["--pull", "-t", "frompull:1", dir]));
    assert!(again.contains("Image is up to date"), "{again}");
    assert!(again.contains("Using cache"), "{again}");
    // With the registry gone, --pull fails the build as Docker's does.
    let addr = reg.addr();
    drop(reg);
    let e = fails(&build(&d, &["--pull", dir]));
    assert!(e.contains(&addr), "{e}");
    nothing_left(&d);
}

#[test]
fn dockerfile_outside_the_context_and_several_add_hosts() {
    require_root!();
    let d = TestDaemon::start();
    d.load_busybox();
    let ctx = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    write(ctx.path(), "data.txt", "in context\n");
    // The docker CLI sends such a Dockerfile as `.dockerfile.<random>`, ending its tar right
    // after the file's data.
    let df = elsewhere.path().join("Dockerfile");
    std::fs::write(
        &df,
        "FROM busybox\nCOPY data.txt /data.txt\nRUN grep -c h1 /etc/hosts > /h1 && grep -c h2 /etc/hosts > /h2\n",
    )
    .unwrap();
    let text = ok(&build(
        &d,
        &[
            "-f",
            df.to_str().unwrap(),
            "--add-host",
            "h1:10.1.1.1",
            "--add-host",
            "h2:10.2.2.2",
            "-t",
            "outside:1",
            ctx.path().to_str().unwrap(),
        ],
    ));
    assert!(text.contains("Successfully tagged outside:1"), "{text}");
    let out = ok(&d.docker(&["run", "--rm", "outside:1", "cat", "/data.txt", "/h1", "/h2"]));
    assert_eq!(out, "in context\n1\n1\n");
    nothing_left(&d);
}

/// A refused build still reads the client's whole body before it answers: a client that is
/// still sending when the answer comes (here the archive's end blocks and 1 MiB more, sent
/// after a pause) must not find the connection closed under it. The docker CLI, whose context
/// tar ends after the last entry the daemon needs, then lost the error to "use of closed
/// network connection".
#[test]
fn a_refused_build_reads_the_whole_body_before_answering() {
    use std::io::{Read, Write};
    require_root!();
    let d = TestDaemon::start();
    d.load_busybox();
    let mut t = tar::Builder::new(Vec::new());
    let text = b"FROM busybox\nCOPY ../../etc/passwd /x\n";
    let mut h = tar::Header::new_gnu();
    h.set_size(text.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    t.append_data(&mut h, "Dockerfile", &text[..]).unwrap();
    let mut rest = t.into_inner().unwrap();
    // The entry (header and padded data) goes first; its end blocks and more come later.
    let first: Vec<u8> = rest.drain(..1024).collect();
    rest.resize(rest.len() + (1 << 20), 0);
    let mut s = std::os::unix::net::UnixStream::connect(&d.socket).unwrap();
    write!(
        s,
        "POST /v1.47/build HTTP/1.1\r\nHost: berth\r\nContent-Type: application/x-tar\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        first.len() + rest.len()
    )
    .unwrap();
    s.write_all(&first).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    s.write_all(&rest)
        .expect("the daemon closed the connection before reading the body");
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        answer.contains("Forbidden path outside the build context"),
        "{answer}"
    );
    nothing_left(&d);
}
