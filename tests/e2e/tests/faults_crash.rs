//! Crash faults: berthd killed with SIGKILL in the middle of load, commit, build, pull and a
//! loop of run/rm, then started again. After each restart the data root must be consistent
//! (`test_support::invariants`: no image pointing at a missing blob or snapshot, no unverified
//! blob, no half-done ingest or staged snapshot, no container in an impossible state, no leaked
//! mounts, cgroups, veths, DNAT rules or addresses), the operation must work when repeated, and
//! a container running since before the crashes (`keeper`, on the default bridge with a
//! published port) must still run and answer.
//!
//! Kills are placed on real progress signals where there are some (a file appearing under the
//! data root: an ingest, a staged snapshot, a build context, a container record), else after a
//! delay. Root only (`BERTH_TEST_ROOT=1`).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use test_support::big_image::big_image_archive;
use test_support::daemon::{TestDaemon, ok};
use test_support::invariants::assert_consistent;
use test_support::registry::Registry;

/// Size of the random layer: big enough that load, commit and pull take a while.
const BIG: u64 = 128 << 20;

/// What a busy operation can be waiting on before the kill.
#[derive(Debug, Clone, Copy)]
enum Point {
    /// A file appears in `content/ingest/` (a blob being written).
    Ingest,
    /// An ingest file has grown past this many bytes.
    IngestBytes(u64),
    /// A staged snapshot (`snapshots/tmp-*`) appears: a layer being unpacked.
    Staging,
    /// A build context (`builder/ctx-*`) appears.
    Context,
    /// More container records than there were at the start of the round.
    NewContainer,
    /// Just a delay from the start of the operation.
    After(Duration),
}

fn list(dir: &Path) -> Vec<(String, u64)> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| {
                    (
                        e.file_name().to_string_lossy().into_owned(),
                        e.metadata().map(|m| m.len()).unwrap_or(0),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Waits (up to `limit`) until `point` is reached while `op` runs; true if it was (false: the
/// operation ended first or the signal never came; the kill then happens anyway).
fn wait_for(d: &TestDaemon, point: Point, op: &mut Child, containers_before: usize) -> bool {
    let start = Instant::now();
    let limit = Duration::from_secs(60);
    let root = &d.data_root;
    loop {
        let reached = match point {
            Point::Ingest => list(&root.join("content/ingest"))
                .iter()
                .any(|(n, _)| !n.ends_with(".lock")),
            Point::IngestBytes(n) => list(&root.join("content/ingest"))
                .iter()
                .any(|(name, len)| !name.ends_with(".lock") && *len >= n),
            Point::Staging => list(&root.join("snapshots"))
                .iter()
                .any(|(n, _)| n.starts_with("tmp-")),
            Point::Context => list(&root.join("builder"))
                .iter()
                .any(|(n, _)| n.starts_with("ctx-")),
            Point::NewContainer => list(&root.join("containers")).len() > containers_before,
            Point::After(t) => start.elapsed() >= t,
        };
        if reached {
            return true;
        }
        if let Ok(Some(_)) = op.try_wait() {
            eprintln!("operation ended before {point:?}");
            return false;
        }
        if start.elapsed() > limit {
            eprintln!("{point:?} not reached in {limit:?}");
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The long-running container every test keeps across the crashes: busybox's httpd on the
/// default bridge, published on a loopback port.
struct Keeper {
    id: String,
    port: u16,
}

fn start_keeper(d: &TestDaemon) -> Keeper {
    let id = ok(&d.docker(&[
        "run",
        "-d",
        "--name",
        "keeper",
        "-p",
        "127.0.0.1::80",
        "busybox",
        "sh",
        "-c",
        "mkdir -p /www && echo keeper-alive > /www/index.html && exec httpd -f -p 80 -h /www",
    ]))
    .trim()
    .to_string();
    let port = ok(&d.docker(&["port", "keeper", "80/tcp"]));
    let port = port
        .lines()
        .next()
        .and_then(|l| l.rsplit_once(':'))
        .and_then(|(_, p)| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("no published port in {port:?}"));
    let k = Keeper { id, port };
    k.assert_alive(d);
    k
}

impl Keeper {
    /// Still running (inspect and its pid), and its published port answers.
    fn assert_alive(&self, d: &TestDaemon) {
        let state = ok(&d.docker(&[
            "inspect",
            "-f",
            "{{.State.Running}} {{.State.Pid}}",
            &self.id,
        ]));
        let (running, pid) = state.trim().split_once(' ').expect("running pid");
        assert_eq!(running, "true", "keeper not running: {state}");
        assert!(
            Path::new(&format!("/proc/{pid}")).exists(),
            "keeper's pid {pid} is gone"
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match http_get(self.port) {
                Ok(body) if body.contains("keeper-alive") => return,
                other if Instant::now() > deadline => {
                    panic!(
                        "keeper does not answer on 127.0.0.1:{}: {other:?}",
                        self.port
                    )
                }
                _ => std::thread::sleep(Duration::from_millis(200)),
            }
        }
    }
}

fn http_get(port: u16) -> std::io::Result<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(3)))?;
    s.write_all(b"GET /index.html HTTP/1.0\r\nHost: x\r\n\r\n")?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

/// A background `docker` command pointed at `d`.
fn spawn_docker(d: &TestDaemon, args: &[&str], env: &[(&str, &str)]) -> Child {
    d.docker_cmd()
        .args(args)
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn docker")
}

/// One crash round: start `args` in the background, wait for `point`, kill berthd, reap the
/// client, restart, check the invariants and the keeper.
fn crash_round(
    d: &mut TestDaemon,
    keeper: &Keeper,
    args: &[&str],
    env: &[(&str, &str)],
    point: Point,
    gone: &[String],
) {
    let before = list(&d.data_root.join("containers")).len();
    let t = Instant::now();
    let mut op = spawn_docker(d, args, env);
    let reached = wait_for(d, point, &mut op, before);
    d.kill9();
    eprintln!(
        "killed berthd at {point:?} (reached: {reached}) {:?} into `docker {}`",
        t.elapsed(),
        args.join(" ")
    );
    let _ = op.kill();
    let _ = op.wait();
    d.restart();
    assert_consistent(d, gone);
    keeper.assert_alive(d);
}

/// A daemon with busybox and the keeper.
fn setup() -> (TestDaemon, Keeper) {
    let d = TestDaemon::start();
    d.load_busybox();
    let k = start_keeper(&d);
    (d, k)
}

#[test]
fn kill_during_load() {
    test_support::require_root!();
    let (mut d, keeper) = setup();
    let archive = big_image_archive(d.dir(), "big.tar", "big:latest", BIG).expect("archive");
    let archive = archive.to_string_lossy().into_owned();
    for point in [
        Point::Ingest,
        Point::IngestBytes(BIG / 2),
        Point::Staging,
        Point::After(Duration::from_millis(50)),
    ] {
        crash_round(&mut d, &keeper, &["load", "-i", &archive], &[], point, &[]);
    }
    let out = ok(&d.docker(&["load", "-i", &archive]));
    assert!(out.contains("Loaded image: big:latest"), "{out}");
    let size = ok(&d.docker(&["image", "inspect", "-f", "{{.Size}}", "big:latest"]));
    assert!(size.trim().parse::<u64>().unwrap_or(0) >= BIG, "{size}");
    assert_consistent(&d, &[]);
    keeper.assert_alive(&d);
}

#[test]
fn kill_during_commit() {
    test_support::require_root!();
    let (mut d, keeper) = setup();
    let src = ok(&d.docker(&[
        "run",
        "-d",
        "--name",
        "fat",
        "busybox",
        "sh",
        "-c",
        "dd if=/dev/urandom of=/fat.bin bs=1M count=128 2>/dev/null && touch /ready && exec sleep 1000",
    ]))
    .trim()
    .to_string();
    let upper = d.data_root.join("containers").join(&src).join("diff");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !upper.join("ready").exists() {
        assert!(Instant::now() < deadline, "the 128 MB file was not written");
        std::thread::sleep(Duration::from_millis(50));
    }
    for point in [
        Point::Ingest,
        Point::IngestBytes(BIG / 2),
        Point::Staging,
        Point::After(Duration::from_millis(200)),
    ] {
        crash_round(
            &mut d,
            &keeper,
            &["commit", "fat", "fat:snap"],
            &[],
            point,
            &[],
        );
        // A crash during a commit's freeze may leave the source paused (recorded so, as after
        // `docker pause`); it must still run.
        let state = ok(&d.docker(&["inspect", "-f", "{{.State.Running}}", "fat"]));
        assert_eq!(state.trim(), "true");
    }
    // A source left paused by a crash unpauses.
    if ok(&d.docker(&["inspect", "-f", "{{.State.Paused}}", "fat"])).trim() == "true" {
        ok(&d.docker(&["unpause", "fat"]));
    }
    let id = ok(&d.docker(&["commit", "fat", "fat:snap"]));
    assert!(id.trim().starts_with("sha256:"), "{id}");
    let out = ok(&d.docker(&["run", "--rm", "fat:snap", "sh", "-c", "wc -c < /fat.bin"]));
    assert_eq!(out.trim(), (128u64 << 20).to_string());
    assert_consistent(&d, &[]);
    keeper.assert_alive(&d);
}

#[test]
fn kill_during_build() {
    test_support::require_root!();
    let (mut d, keeper) = setup();
    let ctx = d.dir().join("ctx");
    std::fs::create_dir_all(&ctx).expect("mkdir ctx");
    {
        let mut f = std::fs::File::create(ctx.join("big.bin")).expect("create big.bin");
        let mut r = std::fs::File::open("/dev/urandom")
            .expect("urandom")
            .take(BIG / 2);
        std::io::copy(&mut r, &mut f).expect("write big.bin");
    }
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox\nRUN sleep 2 && echo ran > /ran\nCOPY big.bin /big.bin\nRUN wc -c /big.bin > /size\n",
    )
    .expect("write Dockerfile");
    let ctx_s = ctx.to_string_lossy().into_owned();
    let args = ["build", "-t", "built:latest", &ctx_s];
    let env = [("DOCKER_BUILDKIT", "0")];
    for point in [
        Point::Context,
        Point::NewContainer,
        Point::Ingest,
        Point::After(Duration::from_millis(600)),
    ] {
        crash_round(&mut d, &keeper, &args, &env, point, &[]);
    }
    let out = d
        .docker_cmd()
        .args(args)
        .env("DOCKER_BUILDKIT", "0")
        .output()
        .expect("docker build");
    ok(&out);
    let size = ok(&d.docker(&["run", "--rm", "built:latest", "cat", "/size"]));
    assert!(size.starts_with(&(BIG / 2).to_string()), "{size}");
    // Intermediate containers of the builds cut short are stopped, not stuck: prune takes them.
    ok(&d.docker(&["container", "prune", "-f"]));
    assert_eq!(
        ok(&d.docker(&["ps", "-aq", "--no-trunc"])).trim(),
        keeper.id,
        "only the keeper is left"
    );
    assert_consistent(&d, &[]);
    keeper.assert_alive(&d);
}

#[test]
fn kill_during_pull() {
    test_support::require_root!();
    let (mut d, keeper) = setup();
    let reg = Registry::berth();
    let archive = big_image_archive(d.dir(), "big.tar", "big:latest", BIG).expect("archive");
    ok(&d.docker(&["load", "-i", &archive.to_string_lossy()]));
    let remote = format!("{}/crash/big:latest", reg.addr());
    ok(&d.docker(&["tag", "big:latest", &remote]));
    ok(&d.docker(&["push", &remote]));
    ok(&d.docker(&["rmi", "big:latest", &remote]));
    for point in [
        Point::Ingest,
        Point::IngestBytes(BIG / 2),
        Point::Staging,
        Point::After(Duration::from_millis(300)),
    ] {
        crash_round(&mut d, &keeper, &["pull", &remote], &[], point, &[]);
    }
    let out = ok(&d.docker(&["pull", &remote]));
    assert!(
        out.contains("Downloaded newer image") || out.contains("Image is up to date"),
        "{out}"
    );
    let size = ok(&d.docker(&["image", "inspect", "-f", "{{.Size}}", &remote]));
    assert!(size.trim().parse::<u64>().unwrap_or(0) >= BIG, "{size}");
    assert_consistent(&d, &[]);
    keeper.assert_alive(&d);
}

/// Runs `docker run --rm busybox true` and `docker run -d` + `docker rm -f` in a loop until
/// `stop`; the IDs it saw go to `seen` (from `--cidfile` and `run -d`'s output).
fn run_rm_loop(d: &TestDaemon, stop: &AtomicBool, dir: &Path) -> Vec<String> {
    let mut seen = Vec::new();
    let mut n = 0u32;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let cid: PathBuf = dir.join(format!("cid-{n}"));
        let _ = d
            .docker_cmd()
            .args(["run", "--rm", "--cidfile"])
            .arg(&cid)
            .args(["busybox", "true"])
            .output();
        if let Ok(id) = std::fs::read_to_string(&cid) {
            seen.push(id.trim().to_string());
        }
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let Ok(out) = d
            .docker_cmd()
            .args([
                "run",
                "-d",
                "-p",
                "127.0.0.1::80",
                "busybox",
                "sleep",
                "100",
            ])
            .output()
        else {
            continue;
        };
        let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if id.len() == 64 {
            seen.push(id.clone());
            let _ = d.docker(&["rm", "-f", &id]);
        }
    }
    seen
}

#[test]
fn kill_during_run_rm_loop() {
    test_support::require_root!();
    let (mut d, keeper) = setup();
    let cids = tempfile::tempdir().expect("tempdir");
    let mut gone: Vec<String> = Vec::new();
    // Kill when a container's network namespace appears (its start is under way), when a
    // shim's state directory appears (the shim is being made), and at two moments of the loop.
    let netns = d.exec_root.join("netns");
    let shims = if d.exec_root.join("c").exists() {
        d.exec_root.join("c")
    } else {
        d.exec_root.join("containers")
    };
    for (dir, delay) in [
        (Some(&netns), 0u64),
        (Some(&shims), 0),
        (None, 300),
        (None, 900),
        (None, 1700),
    ] {
        let stop = AtomicBool::new(false);
        let pid = d.pid().expect("berthd pid");
        let before: Vec<String> = dir
            .map(|d| list(d))
            .unwrap_or_default()
            .into_iter()
            .map(|e| e.0)
            .collect();
        let seen = std::thread::scope(|s| {
            let h = s.spawn(|| run_rm_loop(&d, &stop, cids.path()));
            let t = Instant::now();
            match dir {
                Some(dir) => {
                    while t.elapsed() < Duration::from_secs(20)
                        && list(dir).iter().all(|e| before.contains(&e.0))
                    {
                        std::thread::sleep(Duration::from_millis(2));
                    }
                }
                None => std::thread::sleep(Duration::from_millis(delay)),
            }
            // The crash, by berthd's own pid (kill9 below reaps it).
            let pid = nix::unistd::Pid::from_raw(i32::try_from(pid).expect("pid"));
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            eprintln!(
                "killed berthd {:?} into the run/rm loop (waiting for a new entry in {dir:?})",
                t.elapsed()
            );
            stop.store(true, Ordering::Relaxed);
            h.join().expect("loop thread")
        });
        assert!(
            !seen.is_empty(),
            "the loop ran no container before the kill"
        );
        d.kill9();
        gone.extend(seen);
        d.restart();
        assert_consistent(&d, &gone);
        keeper.assert_alive(&d);
        // Addresses are handed out again without clashing with the keeper's (the checker
        // sees both running).
        let probe = ok(&d.docker(&[
            "run",
            "-d",
            "-p",
            "127.0.0.1::80",
            "busybox",
            "sleep",
            "100",
        ]));
        let probe = probe.trim().to_string();
        assert_consistent(&d, &gone);
        ok(&d.docker(&["rm", "-f", &probe]));
        gone.push(probe);
    }
    // The loop works again, and cleans up after itself.
    let stop = AtomicBool::new(false);
    let seen = std::thread::scope(|s| {
        let h = s.spawn(|| run_rm_loop(&d, &stop, cids.path()));
        std::thread::sleep(Duration::from_millis(1500));
        stop.store(true, Ordering::Relaxed);
        h.join().expect("loop thread")
    });
    assert!(!seen.is_empty());
    gone.extend(seen);
    // Whatever the crashes left as stopped containers goes; only the keeper stays.
    let ids = ok(&d.docker(&["ps", "-aq", "--no-trunc"]));
    for id in ids.split_whitespace().filter(|i| *i != keeper.id) {
        ok(&d.docker(&["rm", "-f", id]));
    }
    assert_eq!(
        ok(&d.docker(&["ps", "-aq", "--no-trunc"])).trim(),
        keeper.id,
        "only the keeper is left"
    );
    assert_consistent(&d, &gone);
    keeper.assert_alive(&d);
}
