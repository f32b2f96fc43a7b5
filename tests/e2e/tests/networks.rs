//! End-to-end networking through the real docker CLI and `berth`: the default bridge (an
//! address in its subnet, curl from the host), published ports (`-p host:ctr`, `-p ip:host:ctr`,
//! `-P`, a taken port refused with nothing left behind, hairpin), user networks (subnets,
//! gateways, `--ip`, embedded DNS for names and aliases, isolation between networks, connect and
//! disconnect, `--internal`, rm with active endpoints, prune), links (hosts entries and the
//! legacy variables), `container:`, `host` and `none` modes, and networking rebuilt after a
//! berthd restart. Each daemon has its own bridge, subnet and nftables table (TestDaemon), and
//! every test checks that no veth, netns file or table is left.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::net::TcpListener;
use std::process::Command;

use test_support::daemon::{TestDaemon, bridge_ports, fails, ok};
use test_support::{fixtures, require_root};

/// A host port nobody uses right now.
fn free_port() -> u16 {
    TcpListener::bind("0.0.0.0:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The host's first non-loopback IPv4 address.
fn host_addr() -> String {
    let out = Command::new("ip")
        .args(["-4", "-o", "addr", "show", "scope", "global"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.lines()
        .filter(|l| !l.contains(" bt") && !l.contains(" br-") && !l.contains("docker"))
        .find_map(|l| {
            l.split_whitespace()
                .skip_while(|w| *w != "inet")
                .nth(1)
                .map(|a| a.split('/').next().unwrap().to_string())
        })
        .expect("a global IPv4 address")
}

/// `curl -s` with a short timeout: the body, or None when it failed.
fn curl(url: &str) -> Option<String> {
    let out = Command::new("curl")
        .args(["-s", "--max-time", "5", url])
        .output()
        .unwrap();
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

fn link_exists(name: &str) -> bool {
    Command::new("ip")
        .args(["link", "show", name])
        .stderr(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap()
        .success()
}

fn netns_files(d: &TestDaemon) -> Vec<String> {
    std::fs::read_dir(d.exec_root.join("netns"))
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn table_exists(d: &TestDaemon) -> bool {
    Command::new("nft")
        .args(["list", "table", "ip", &format!("berth-{}", d.bridge)])
        .stderr(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap()
        .success()
}

fn inspect(d: &TestDaemon, name: &str, format: &str) -> String {
    ok(&d.docker(&["inspect", "-f", format, name]))
        .trim()
        .to_string()
}

/// A shell pipeline that prints the body of `http://<host>:<port>/` (busybox's nc: the image's
/// static wget crashes resolving names with glibc's resolver, so names go through nc).
fn get(host: &str, port: u16) -> String {
    format!("printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 5 {host} {port} | tail -n 1")
}

/// A busybox httpd serving `text` at `/`, with its access log on stderr.
fn httpd(text: &str) -> String {
    format!("mkdir -p /www && echo {text} > /www/index.html && exec httpd -f -vv -p 80 -h /www")
}

#[test]
fn default_bridge_and_published_ports() {
    require_root!();
    let d = TestDaemon::start();
    d.load_busybox();
    let (p1, p2) = (free_port(), free_port());
    ok(&d.docker(&[
        "run",
        "-d",
        "--name",
        "web1",
        "-p",
        &format!("{p1}:80"),
        "-p",
        &format!("127.0.0.1:{p2}:80/tcp"),
        "busybox",
        "sh",
        "-c",
        &httpd("hello-berth"),
    ]));
    let ip = inspect(&d, "web1", "{{.NetworkSettings.IPAddress}}");
    assert!(
        ip.starts_with(&format!("{}.0.", d.net_prefix)),
        "{ip} not in the default bridge's subnet"
    );
    assert_eq!(
        inspect(&d, "web1", "{{.NetworkSettings.Networks.bridge.Gateway}}"),
        format!("{}.0.1", d.net_prefix)
    );
    assert_eq!(bridge_ports(&d.bridge).len(), 1);

    // From the host: the container's address, and the published ports.
    let mut body = None;
    for _ in 0..50 {
        body = curl(&format!("http://{ip}/"));
        if body.is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(body.as_deref(), Some("hello-berth\n"));
    let host = host_addr();
    assert_eq!(
        curl(&format!("http://127.0.0.1:{p1}/")).as_deref(),
        Some("hello-berth\n")
    );
    assert_eq!(
        curl(&format!("http://{host}:{p1}/")).as_deref(),
        Some("hello-berth\n")
    );
    assert_eq!(
        curl(&format!("http://127.0.0.1:{p2}/")).as_deref(),
        Some("hello-berth\n")
    );
    assert_eq!(
        curl(&format!("http://{host}:{p2}/")),
        None,
        "127.0.0.1 only"
    );
    // The requests show in the container's log.
    let logs = ok(&d.docker(&["logs", "web1"]))
        + &String::from_utf8_lossy(&d.docker(&["logs", "web1"]).stderr);
    assert!(logs.contains("url:/"), "{logs}");

    // docker port, ps and inspect.
    let port = ok(&d.docker(&["port", "web1"]));
    assert!(port.contains(&format!("80/tcp -> 0.0.0.0:{p1}")), "{port}");
    assert!(
        port.contains(&format!("80/tcp -> 127.0.0.1:{p2}")),
        "{port}"
    );
    let ps = ok(&d.docker(&["ps", "--format", "{{.Ports}}"]));
    assert!(ps.contains(&format!("0.0.0.0:{p1}->80/tcp")), "{ps}");
    assert!(ps.contains(&format!("127.0.0.1:{p2}->80/tcp")), "{ps}");

    // Other containers reach it by address and through the published port (hairpin).
    let out = ok(&d.docker(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        &format!(
            "{} && {}",
            get(&ip, 80),
            get(&format!("{}.0.1", d.net_prefix), p1)
        ),
    ]));
    assert_eq!(out, "hello-berth\nhello-berth\n");

    // -P: every exposed port to a free port from the kernel's ephemeral range.
    ok(&d.docker(&[
        "run",
        "-d",
        "--name",
        "web2",
        "--expose",
        "80",
        "-P",
        "busybox",
        "sh",
        "-c",
        &httpd("two"),
    ]));
    let hp: u16 = ok(&d.docker(&["port", "web2", "80"]))
        .trim()
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap();
    let r: Vec<u16> = range
        .split_whitespace()
        .map(|x| x.parse().unwrap())
        .collect();
    assert!((r[0]..=r[1]).contains(&hp), "{hp} outside {range}");
    let mut two = None;
    for _ in 0..50 {
        two = curl(&format!("http://127.0.0.1:{hp}/"));
        if two.is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(two.as_deref(), Some("two\n"));

    // A host port in use: a clear error, and nothing half-configured left.
    let veths = bridge_ports(&d.bridge);
    let err = fails(&d.docker(&[
        "run",
        "-d",
        "--name",
        "web3",
        "-p",
        &format!("{p1}:80"),
        "busybox",
        "sleep",
        "30",
    ]));
    assert!(
        err.contains(&format!(
            "Bind for 0.0.0.0:{p1} failed: port is already allocated"
        )),
        "{err}"
    );
    assert_eq!(bridge_ports(&d.bridge), veths);
    assert_eq!(netns_files(&d).len(), 2);

    // Through berth too.
    let p3 = free_port();
    ok(&d.berth(&[
        "run",
        "-d",
        "--name",
        "web4",
        "-p",
        &format!("{p3}:80"),
        "busybox",
        "sh",
        "-c",
        &httpd("four"),
    ]));
    let port = ok(&d.berth(&["port", "web4"]));
    assert_eq!(port, format!("80/tcp -> 0.0.0.0:{p3}\n"));
    let mut four = None;
    for _ in 0..50 {
        four = curl(&format!("http://127.0.0.1:{p3}/"));
        if four.is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(four.as_deref(), Some("four\n"));

    // Stop frees the port and the address; rm leaves nothing.
    ok(&d.docker(&["stop", "-t", "1", "web1"]));
    assert_eq!(inspect(&d, "web1", "{{.NetworkSettings.IPAddress}}"), "");
    assert_eq!(inspect(&d, "web1", "{{json .NetworkSettings.Ports}}"), "{}");
    assert_eq!(curl(&format!("http://127.0.0.1:{p1}/")), None);
    ok(&d.docker(&["rm", "-f", "web1", "web2", "web3", "web4"]));
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert!(
        bridge_ports(&d.bridge).is_empty(),
        "{:?}",
        bridge_ports(&d.bridge)
    );
    assert!(netns_files(&d).is_empty(), "{:?}", netns_files(&d));
}

#[test]
fn nginx_seed_scenario() {
    require_root!();
    let Some(nginx) = fixtures::shared_image("nginx.tar.gz") else {
        eprintln!("no shared nginx image: skipped");
        return;
    };
    let d = TestDaemon::start();
    d.load_busybox();
    ok(&d.docker(&["load", "-i", nginx.to_str().unwrap()]));
    ok(&d.docker(&["run", "--name", "web1", "-d", "nginx"]));
    let ip = inspect(&d, "web1", "{{.NetworkSettings.IPAddress}}");
    assert!(ip.starts_with(&format!("{}.0.", d.net_prefix)), "{ip}");
    let mut page = None;
    for _ in 0..100 {
        page = curl(&format!("http://{ip}/"));
        if page.is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(page.unwrap().contains("Welcome to nginx"));
    let logs = ok(&d.docker(&["logs", "web1"]));
    assert!(logs.contains("\"GET / HTTP/1.1\" 200"), "{logs}");
    // `--net container:web1` shares its network stack.
    let out = ok(&d.docker(&[
        "run",
        "--rm",
        "--net",
        "container:web1",
        "busybox",
        "sh",
        "-c",
        "cat /etc/hostname; printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 5 127.0.0.1 80 | head -n 1",
    ]));
    let web1_hostname = inspect(&d, "web1", "{{.Config.Hostname}}");
    assert_eq!(out, format!("{web1_hostname}\nHTTP/1.1 200 OK\r\n"));
    ok(&d.docker(&["rm", "-f", "web1"]));
}

#[test]
fn user_networks_dns_and_isolation() {
    require_root!();
    let d = TestDaemon::start();
    d.load_busybox();
    let pre = &d.net_prefix;
    let id1 = ok(&d.docker(&[
        "network",
        "create",
        "--subnet",
        &format!("{pre}.200.0/24"),
        "--gateway",
        &format!("{pre}.200.254"),
        "--label",
        "team=a",
        "net1",
    ]));
    assert_eq!(id1.trim().len(), 64);
    ok(&d.berth(&["network", "create", "net2"]));
    let sub2 = inspect(&d, "net2", "{{(index .IPAM.Config 0).Subnet}}");
    assert!(sub2.starts_with(&format!("{pre}.")), "{sub2} from the pool");
    let err = fails(&d.docker(&[
        "network",
        "create",
        "--subnet",
        &format!("{pre}.200.128/25"),
        "net3",
    ]));
    assert!(err.contains("Pool overlaps with other one"), "{err}");
    let err = fails(&d.docker(&["network", "create", "net1"]));
    assert!(
        err.contains("network with name net1 already exists"),
        "{err}"
    );
    let ls = ok(&d.docker(&["network", "ls", "--format", "{{.Name}} {{.Driver}}"]));
    for want in [
        "bridge bridge",
        "host host",
        "none null",
        "net1 bridge",
        "net2 bridge",
    ] {
        assert!(ls.lines().any(|l| l == want), "{want} missing in {ls}");
    }
    let ls = ok(&d.docker(&["network", "ls", "-q", "--filter", "label=team=a"]));
    assert_eq!(ls.trim(), &id1.trim()[..12]);

    // Names and aliases resolve on the network; --ip is honoured.
    ok(&d.docker(&[
        "run",
        "-d",
        "--name",
        "db",
        "--network",
        "net1",
        "--network-alias",
        "database",
        "--ip",
        &format!("{pre}.200.50"),
        "busybox",
        "sh",
        "-c",
        &httpd("from-db"),
    ]));
    assert_eq!(
        inspect(&d, "db", "{{.NetworkSettings.Networks.net1.IPAddress}}"),
        format!("{pre}.200.50")
    );
    let out = ok(&d.docker(&[
        "run",
        "--rm",
        "--network",
        "net1",
        "busybox",
        "sh",
        "-c",
        &format!(
            "cat /etc/resolv.conf; nslookup db; nslookup database; {}",
            get("database", 80)
        ),
    ]));
    assert!(out.starts_with("nameserver 127.0.0.11\n"), "{out}");
    assert_eq!(
        out.matches(&format!("Address: {pre}.200.50")).count(),
        2,
        "{out}"
    );
    assert!(out.ends_with("from-db\n"), "{out}");

    // Another network neither resolves nor reaches it.
    let out = ok(&d.docker(&[
        "run",
        "--rm",
        "--network",
        "net2",
        "busybox",
        "sh",
        "-c",
        &format!(
            "nslookup db >/dev/null 2>&1 && echo resolved; {}; true",
            get(&format!("{pre}.200.50"), 80)
        ),
    ]));
    assert!(
        !out.contains("resolved") && !out.contains("from-db"),
        "{out}"
    );

    // connect / disconnect.
    ok(&d.docker(&["network", "connect", "--alias", "dbalias", "net2", "db"]));
    let err = fails(&d.docker(&["network", "connect", "net2", "db"]));
    assert!(err.contains("already exists in network net2"), "{err}");
    let out = ok(&d.docker(&[
        "run",
        "--rm",
        "--network",
        "net2",
        "busybox",
        "sh",
        "-c",
        &get("dbalias", 80),
    ]));
    assert_eq!(out, "from-db\n");
    let out = ok(&d.docker(&["exec", "db", "ip", "-o", "-4", "addr"]));
    assert!(out.contains("eth1"), "{out}");
    let members = inspect(&d, "net2", "{{range .Containers}}{{.Name}} {{end}}");
    assert_eq!(members, "db");
    ok(&d.docker(&["network", "disconnect", "net2", "db"]));
    let out = ok(&d.docker(&["exec", "db", "ip", "-o", "-4", "addr"]));
    assert!(!out.contains("eth1"), "{out}");

    // Bad addresses.
    let err = fails(&d.docker(&[
        "run",
        "--rm",
        "--network",
        "net1",
        "--ip",
        "10.1.2.3",
        "busybox",
        "true",
    ]));
    assert!(
        err.contains("does not belong to any of this network's subnets"),
        "{err}"
    );
    let err = fails(&d.docker(&["run", "--rm", "--ip", "10.1.2.3", "busybox", "true"]));
    assert!(
        err.contains("user specified IP address is supported on user defined networks only"),
        "{err}"
    );
    let err = fails(&d.docker(&["run", "--rm", "--network", "nope", "busybox", "true"]));
    assert!(err.contains("network nope not found"), "{err}");

    // An internal network has no way out.
    ok(&d.docker(&["network", "create", "--internal", "inner"]));
    let out = ok(&d.docker(&[
        "run",
        "--rm",
        "--network",
        "inner",
        "busybox",
        "ip",
        "route",
    ]));
    assert!(!out.contains("default"), "{out}");

    // rm with a running container is refused; prune removes unused networks.
    let err = fails(&d.docker(&["network", "rm", "net1"]));
    assert!(err.contains("has active endpoints"), "{err}");
    let err = fails(&d.docker(&["network", "rm", "bridge"]));
    assert!(
        err.contains("pre-defined network and cannot be removed"),
        "{err}"
    );
    let bridge2 = format!("br-{}", &inspect(&d, "net2", "{{.Id}}")[..12]);
    assert!(link_exists(&bridge2));
    let out = ok(&d.docker(&["network", "prune", "-f"]));
    assert!(out.contains("net2") && out.contains("inner"), "{out}");
    assert!(!out.contains("net1"), "{out}");
    assert!(!link_exists(&bridge2));
    ok(&d.docker(&["rm", "-f", "db"]));
    ok(&d.docker(&["network", "rm", "net1"]));
    let ls = ok(&d.docker(&["network", "ls", "--format", "{{.Name}}"]));
    assert_eq!(ls, "bridge\nhost\nnone\n");
    assert!(netns_files(&d).is_empty());
}

#[test]
fn links_container_host_and_none_modes() {
    require_root!();
    let d = TestDaemon::start();
    d.load_busybox();
    ok(&d.docker(&[
        "run",
        "-d",
        "--name",
        "database",
        "--expose",
        "80",
        "-e",
        "SECRET=s1",
        "busybox",
        "sh",
        "-c",
        &httpd("linked"),
    ]));
    let ip = inspect(&d, "database", "{{.NetworkSettings.IPAddress}}");
    let out = ok(&d.docker(&[
        "run",
        "--rm",
        "--name",
        "client",
        "--link",
        "database:db",
        "busybox",
        "sh",
        "-c",
        &format!(
            "env | sort | grep ^DB_; grep db /etc/hosts; {}",
            get("db", 80)
        ),
    ]));
    for want in [
        "DB_ENV_SECRET=s1".to_string(),
        "DB_NAME=/client/db".to_string(),
        format!("DB_PORT=tcp://{ip}:80"),
        format!("DB_PORT_80_TCP_ADDR={ip}"),
        "DB_PORT_80_TCP_PORT=80".to_string(),
    ] {
        assert!(out.lines().any(|l| l == want), "{want} missing in {out}");
    }
    assert!(out.contains(&format!("{ip}\tdb ")), "{out}");
    assert!(out.ends_with("linked\n"), "{out}");
    // The seed's redis: `run -d --name database redis` then a linked client reaches it as db.
    if let Some(redis) = fixtures::shared_image("redis.tar.gz") {
        ok(&d.docker(&["load", "-i", redis.to_str().unwrap()]));
        ok(&d.docker(&["run", "-d", "--name", "kv", "redis"]));
        let mut pong = String::new();
        for _ in 0..50 {
            let out = d.docker(&[
                "run",
                "--rm",
                "--link",
                "kv:db",
                "busybox",
                "sh",
                "-c",
                "printf 'PING\\r\\n' | nc -w 2 db 6379",
            ]);
            pong = String::from_utf8_lossy(&out.stdout).into_owned();
            if pong.contains("+PONG") {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        assert!(pong.contains("+PONG"), "{pong}");
    }

    // container:<name> shares the network stack.
    let out = ok(&d.docker(&[
        "run",
        "--rm",
        "--network",
        "container:database",
        "busybox",
        "sh",
        "-c",
        &format!("ip -o -4 addr show eth0; {}", get("127.0.0.1", 80)),
    ]));
    assert!(out.contains(&format!("inet {ip}/24")), "{out}");
    assert!(out.ends_with("linked\n"), "{out}");

    // host sees the host's interfaces (our bridge among them); none only lo.
    let out = ok(&d.docker(&[
        "run",
        "--rm",
        "--network",
        "host",
        "busybox",
        "ip",
        "-o",
        "link",
    ]));
    assert!(out.contains(&d.bridge), "{out}");
    let out = ok(&d.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "busybox",
        "ip",
        "-o",
        "link",
    ]));
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(out.contains("lo:"), "{out}");
    ok(&d.docker(&[
        "create",
        "--name",
        "hostc",
        "--network",
        "host",
        "busybox",
        "true",
    ]));
    assert_eq!(
        inspect(
            &d,
            "hostc",
            "{{range $k, $v := .NetworkSettings.Networks}}{{$k}}{{end}}"
        ),
        "host"
    );
    ok(&d.docker(&["rm", "-f", "database", "hostc"]));
    let _ = d.docker(&["rm", "-f", "kv"]);
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert!(bridge_ports(&d.bridge).is_empty());
}

#[test]
fn networking_survives_a_daemon_restart_and_is_removed_after() {
    require_root!();
    let mut d = TestDaemon::start();
    d.load_busybox();
    let p = free_port();
    ok(&d.docker(&["network", "create", "app"]));
    ok(&d.docker(&[
        "run",
        "-d",
        "--name",
        "web",
        "--network",
        "app",
        "-p",
        &format!("{p}:80"),
        "busybox",
        "sh",
        "-c",
        &httpd("kept"),
    ]));
    ok(&d.docker(&[
        "run",
        "-d",
        "--name",
        "client",
        "--network",
        "app",
        "busybox",
        "sleep",
        "300",
    ]));
    let mut body = None;
    for _ in 0..50 {
        body = curl(&format!("http://127.0.0.1:{p}/"));
        if body.is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(body.as_deref(), Some("kept\n"));
    let ip = inspect(&d, "web", "{{.NetworkSettings.Networks.app.IPAddress}}");

    d.restart();
    assert_eq!(
        curl(&format!("http://127.0.0.1:{p}/")).as_deref(),
        Some("kept\n")
    );
    let out = ok(&d.docker(&["exec", "client", "nslookup", "web"]));
    assert!(out.contains(&format!("Address: {ip}")), "{out}");
    // The port is still held: a new container cannot take it.
    let err = fails(&d.docker(&["run", "--rm", "-p", &format!("{p}:80"), "busybox", "true"]));
    assert!(err.contains("port is already allocated"), "{err}");
    // A new container does not get an address already in use.
    ok(&d.docker(&[
        "run",
        "-d",
        "--name",
        "third",
        "--network",
        "app",
        "busybox",
        "sleep",
        "300",
    ]));
    let ips: Vec<String> = ["web", "client", "third"]
        .iter()
        .map(|n| inspect(&d, n, "{{.NetworkSettings.Networks.app.IPAddress}}"))
        .collect();
    let mut uniq = ips.clone();
    uniq.sort();
    uniq.dedup();
    assert_eq!(uniq.len(), 3, "{ips:?}");

    ok(&d.docker(&["rm", "-f", "web", "client", "third"]));
    ok(&d.docker(&["network", "rm", "app"]));
    assert!(table_exists(&d));
    d.stop();
    assert!(!table_exists(&d), "the nftables table outlived berthd");
    assert!(netns_files(&d).is_empty());
}

#[test]
fn dns_options_extra_hosts_and_daemon_flags() {
    require_root!();
    let d = TestDaemon::start_with(&["--mtu", "1400", "--ip", "127.0.0.1"]);
    d.load_busybox();
    let script = "cat /etc/resolv.conf /etc/hosts; ip -o link show eth0";
    for cli in ["docker", "berth"] {
        let args = [
            "run",
            "--rm",
            "--dns",
            "10.9.9.9",
            "--dns-search",
            "example.com",
            "--dns-option",
            "timeout:2",
            "--add-host",
            "gw.test:10.1.1.1",
            "-h",
            "myhost",
            "--domainname",
            "example.org",
            "busybox",
            "sh",
            "-c",
            script,
        ];
        let out = if cli == "docker" {
            ok(&d.docker(&args))
        } else {
            ok(&d.berth(&args))
        };
        assert!(
            out.starts_with("nameserver 10.9.9.9\nsearch example.com\noptions timeout:2\n"),
            "{cli}: {out}"
        );
        assert!(out.contains("10.1.1.1\tgw.test\n"), "{cli}: {out}");
        assert!(
            out.contains(&format!("{}.0.", d.net_prefix))
                && out.contains("\tmyhost.example.org myhost\n"),
            "{cli}: {out}"
        );
        assert!(out.contains("mtu 1400"), "{cli}: {out}");
    }
    // --ip: ports are published on 127.0.0.1 unless the request names an address.
    let p = free_port();
    ok(&d.docker(&[
        "run",
        "-d",
        "--name",
        "web",
        "-p",
        &format!("{p}:80"),
        "busybox",
        "sh",
        "-c",
        &httpd("local"),
    ]));
    assert_eq!(
        ok(&d.docker(&["port", "web", "80"])).trim(),
        format!("127.0.0.1:{p}")
    );
    let mut body = None;
    for _ in 0..50 {
        body = curl(&format!("http://127.0.0.1:{p}/"));
        if body.is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(body.as_deref(), Some("local\n"));
    assert_eq!(curl(&format!("http://{}:{p}/", host_addr())), None);
    ok(&d.docker(&["rm", "-f", "web"]));

    // --iptables=false: no table at all, containers still get their addresses.
    let d2 = TestDaemon::start_with(&["--iptables=false"]);
    d2.load_busybox();
    let out = ok(&d2.docker(&[
        "run", "--rm", "busybox", "ip", "-o", "-4", "addr", "show", "eth0",
    ]));
    assert!(out.contains(&format!("{}.0.", d2.net_prefix)), "{out}");
    assert!(!table_exists(&d2));
}

#[test]
fn icc_false_isolates_containers_but_keeps_published_ports() {
    require_root!();
    let d = TestDaemon::start_with(&["--icc=false"]);
    d.load_busybox();
    let p = free_port();
    ok(&d.docker(&[
        "run",
        "-d",
        "--name",
        "srv",
        "-p",
        &format!("{p}:80"),
        "busybox",
        "sh",
        "-c",
        &httpd("icc"),
    ]));
    let ip = inspect(&d, "srv", "{{.NetworkSettings.IPAddress}}");
    let mut body = None;
    for _ in 0..50 {
        body = curl(&format!("http://127.0.0.1:{p}/"));
        if body.is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(body.as_deref(), Some("icc\n"));
    let out = ok(&d.docker(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        &format!("{}; true", get(&ip, 80)),
    ]));
    assert!(
        !out.contains("icc"),
        "icc=false let a container reach another: {out}"
    );
    ok(&d.docker(&["rm", "-f", "srv"]));
}
