//! docker-compose 1.29 (Debian's package: Python, docker-py 5.0.3) against berthd: a
//! three-service stack (nginx, redis with a named volume, and a busybox client that reaches
//! both by service name over the project network's embedded DNS) through `up -d` (twice: the
//! second must find everything up to date), `ps`, `exec -T`, `logs`, `restart` and `down -v`,
//! after which no container, network, volume, bridge, veth or firewall rule of the project is
//! left. Skips (with a note) where docker-compose or the nginx/redis archives are absent.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use test_support::daemon::{TestDaemon, ok};
use test_support::fixtures::shared_image;
use test_support::require_root;

const COMPOSE_YML: &str = r#"version: "3"
services:
  web:
    image: nginx:latest
  redis:
    image: redis:latest
    volumes:
      - data:/data
  client:
    image: busybox:latest
    # PID 1 ignores SIGTERM unless it traps it; exit at once so `down` does not wait 10 s.
    command: ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1; done"]
    depends_on: [web, redis]
volumes:
  data: {}
"#;

/// Whether docker-compose is installed.
fn have_compose() -> bool {
    Command::new("docker-compose")
        .arg("version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs `docker-compose ARGS` in `dir` against the daemon, as project `project`.
fn compose(d: &TestDaemon, dir: &Path, project: &str, args: &[&str]) -> Output {
    let mut c = Command::new("docker-compose");
    c.current_dir(dir)
        .envs(d.client_env())
        .env("COMPOSE_PROJECT_NAME", project)
        .env_remove("COMPOSE_FILE")
        .env_remove("COMPOSE_API_VERSION")
        .env_remove("DOCKER_API_VERSION")
        .env_remove("DOCKER_CONTEXT")
        .args(args)
        .stdin(Stdio::null());
    c.output().expect("run docker-compose")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Runs `f` until it succeeds (for up to 10 s) and returns its stdout; fails with the last try.
fn retry(f: impl Fn() -> Output) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = f();
        if out.status.success() || Instant::now() > deadline {
            return ok(&out);
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// Interface names (without the `@peer` suffix) from `ip -br link [ARGS]`.
fn links(args: &[&str]) -> Vec<String> {
    let out = Command::new("ip")
        .args(["-br", "link", "show"])
        .args(args)
        .output()
        .unwrap();
    text(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(|n| n.split('@').next().unwrap_or(n).to_string())
        .collect()
}

/// The NAME column of a `network ls` table.
fn network_names(table: &str) -> BTreeSet<String> {
    table
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().nth(1))
        .map(String::from)
        .collect()
}

#[test]
fn compose_stack_up_ps_exec_logs_down() {
    require_root!();
    if !have_compose() {
        eprintln!("skipped: docker-compose is not installed (scripts/setup.sh installs it)");
        return;
    }
    let (Some(nginx), Some(redis)) = (shared_image("nginx.tar.gz"), shared_image("redis.tar.gz"))
    else {
        eprintln!("skipped: ../shared/images/nginx.tar.gz or redis.tar.gz is absent");
        return;
    };
    let d = TestDaemon::start();
    d.load_busybox();
    ok(&d.docker(&["load", "-q", "-i", &nginx.to_string_lossy()]));
    ok(&d.docker(&["load", "-q", "-i", &redis.to_string_lossy()]));

    let dir = tempfile::tempdir_in(d.dir()).unwrap();
    std::fs::write(dir.path().join("docker-compose.yml"), COMPOSE_YML).unwrap();
    let p = format!("berthc{}", std::process::id());
    let net = format!("{p}_default");
    let vol = format!("{p}_data");
    let run = |args: &[&str]| compose(&d, dir.path(), &p, args);

    // up -d: network, volume, then the three containers.
    let up = run(&["up", "-d"]);
    let up_err = text(&up.stderr);
    assert!(up.status.success(), "up -d failed:\n{up_err}\n{}", d.log());
    assert!(
        up_err.contains(&format!("Creating network \"{net}\"")),
        "{up_err}"
    );
    assert!(
        up_err.contains(&format!("Creating volume \"{vol}\"")),
        "{up_err}"
    );
    let ids = ok(&run(&["ps", "-q"]));
    let ids: BTreeSet<&str> = ids.split_whitespace().collect();
    assert_eq!(ids.len(), 3, "{ids:?}");

    // A second `up -d` compares labels (config-hash), the network's Driver/Options/IPAM/Internal
    // and the volume's Driver/Options with the file: nothing may be recreated.
    let again = run(&["up", "-d"]);
    let again_err = text(&again.stderr);
    assert!(again.status.success(), "second up -d failed:\n{again_err}");
    for svc in ["web", "redis", "client"] {
        assert!(
            again_err.contains(&format!("{p}_{svc}_1 is up-to-date")),
            "{svc} was not up to date:\n{again_err}"
        );
    }
    assert!(!again_err.contains("Recreating"), "{again_err}");
    let ids_again = ok(&run(&["ps", "-q"]));
    assert_eq!(
        ids,
        ids_again.split_whitespace().collect::<BTreeSet<_>>(),
        "containers were recreated"
    );

    // ps: three services, each Up.
    let services = ok(&run(&["ps", "--services"]));
    let services: BTreeSet<&str> = services.lines().collect();
    assert_eq!(services, BTreeSet::from(["web", "redis", "client"]));
    let ps = ok(&run(&["ps"]));
    for svc in ["web", "redis", "client"] {
        let row = ps
            .lines()
            .find(|l| l.starts_with(&format!("{p}_{svc}_1 ")))
            .unwrap_or_else(|| panic!("no {svc} row in:\n{ps}"));
        assert!(row.contains(" Up "), "{svc} is not Up: {row}");
    }
    assert!(ps.contains("80/tcp") && ps.contains("6379/tcp"), "{ps}");

    // The client reaches nginx and redis by service name (embedded DNS on the project network),
    // once they listen (up -d does not wait for that).
    let page = retry(|| run(&["exec", "-T", "client", "wget", "-qO-", "http://web/"]));
    assert!(page.contains("Welcome to nginx!"), "{page}");
    let pong = retry(|| {
        run(&[
            "exec",
            "-T",
            "client",
            "sh",
            "-c",
            "printf 'PING\\r\\nQUIT\\r\\n' | nc redis 6379 | grep -F +PONG",
        ])
    });
    assert!(pong.contains("+PONG"), "{pong}");

    // exec -T in another service, writing into the named volume; its exit code comes back.
    let saved = ok(&run(&["exec", "-T", "redis", "redis-cli", "set", "k", "v"]));
    assert_eq!(saved.trim(), "OK");
    ok(&run(&["exec", "-T", "redis", "redis-cli", "save"]));
    let mountpoint = ok(&d.docker(&["volume", "inspect", "-f", "{{.Mountpoint}}", &vol]));
    assert!(
        Path::new(mountpoint.trim()).join("dump.rdb").is_file(),
        "redis did not write into volume {vol} at {mountpoint}"
    );
    let failing = run(&["exec", "-T", "client", "sh", "-c", "exit 3"]);
    assert_eq!(failing.status.code(), Some(3), "{}", text(&failing.stderr));

    // logs web shows the client's request, from the client's address on the project network.
    let client_ip = ok(&d.docker(&[
        "inspect",
        "-f",
        &format!("{{{{(index .NetworkSettings.Networks \"{net}\").IPAddress}}}}"),
        &format!("{p}_client_1"),
    ]));
    let client_ip = client_ip.trim();
    assert!(
        client_ip.starts_with(&format!("{}.", d.net_prefix)),
        "client address {client_ip:?} not from the daemon's pool {}",
        d.net_prefix
    );
    let logs = ok(&run(&["logs", "--no-color", "web"]));
    assert!(
        logs.lines()
            .any(|l| l.contains(&format!("{client_ip} - ")) && l.contains("\"GET / HTTP/1.1\" 200")),
        "no request from {client_ip} in:\n{logs}"
    );

    // After a restart of web, the client still reaches it by name.
    ok(&run(&["restart", "web"]));
    let page = retry(|| run(&["exec", "-T", "client", "wget", "-qO-", "http://web/"]));
    assert!(page.contains("Welcome to nginx!"), "after restart: {page}");

    // What the project made on the host, to check it is gone after down -v.
    let net_id = ok(&d.docker(&["network", "inspect", "-f", "{{.Id}}", &net]));
    let bridge = format!("br-{}", &net_id.trim()[..12]);
    let veths = links(&["master", &bridge]);
    assert_eq!(veths.len(), 3, "veths on {bridge}: {veths:?}");
    assert!(
        ok(&d.docker(&["volume", "ls", "-q"]))
            .lines()
            .any(|v| v == vol)
    );

    // down -v removes the containers, the network and the volume.
    let down = run(&["down", "-v"]);
    let down_err = text(&down.stderr);
    assert!(down.status.success(), "down -v failed:\n{down_err}");
    assert!(
        down_err.contains(&format!("Removing network {net}")),
        "{down_err}"
    );
    assert!(
        down_err.contains(&format!("Removing volume {vol}")),
        "{down_err}"
    );
    assert_eq!(ok(&d.docker(&["ps", "-aq"])).trim(), "");
    assert!(
        !ok(&d.docker(&["volume", "ls", "-q"]))
            .lines()
            .any(|v| v == vol),
        "volume {vol} left"
    );
    let expected = BTreeSet::from(["bridge".to_string(), "host".into(), "none".into()]);
    assert_eq!(network_names(&ok(&d.docker(&["network", "ls"]))), expected);
    assert_eq!(network_names(&ok(&d.berth(&["network", "ls"]))), expected);

    // Nothing of the network is left on the host: bridge, veths, firewall rules.
    let left = links(&[]);
    assert!(!left.contains(&bridge), "bridge {bridge} left: {left:?}");
    for v in &veths {
        assert!(!left.contains(v), "veth {v} left: {left:?}");
    }
    let table = Command::new("nft")
        .args(["list", "table", "ip", &format!("berth-{}", d.bridge)])
        .output()
        .unwrap();
    assert!(
        !text(&table.stdout).contains(&bridge),
        "rules for {bridge} left:\n{}",
        text(&table.stdout)
    );
    assert!(test_support::daemon::no_mounts_under(&d.data_root));
}
