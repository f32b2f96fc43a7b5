//! Root tests of the data plane with real traffic: network namespaces, bridges and veths, the
//! nftables table (masquerade, published ports from the host, 127.0.0.1 and hairpin, internal
//! networks, isolation) and the coexistence with a dockerd-style `FORWARD` drop policy.
//!
//! Each test has its own bridge names (`bt<pid>…`), its own 10.199.x.0/24 subnets, its own nft
//! table and netns files in a tempdir, and a [`Cleanup`] guard that removes all of them even
//! when an assertion fails. Servers are threads whose listening socket was opened inside a
//! namespace (`linux::netns::run_in`); they are stopped by the guard.
//!
//! `BERTH_TEST_ROOT=1 cargo test -p network --test dataplane -- --nocapture` also prints the
//! measured cost of each operation.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use network::NetworkError;
use network::firewall::{Firewall, NetRules, PortForward, Proto, Ruleset};
use network::link::{self, Attachment, Bridge};
use network::{netns, ports};

const TIMEOUT: Duration = Duration::from_millis(1500);

fn name(tag: &str) -> String {
    let n = format!("bt{}{tag}", std::process::id());
    assert!(n.len() <= 15, "{n} too long");
    n
}

fn table(tag: &str) -> String {
    format!("bt{}{tag}", std::process::id())
}

/// Everything a test made, removed on drop (also after a failed assertion).
#[derive(Default)]
struct Cleanup {
    servers: Vec<Server>,
    links: Vec<String>,
    tables: Vec<Firewall>,
    netns: Vec<PathBuf>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for s in self.servers.drain(..) {
            s.stop();
        }
        for t in &self.tables {
            let _ = t.remove();
        }
        for l in &self.links {
            let _ = Command::new("ip")
                .args(["link", "del", l])
                .stderr(std::process::Stdio::null())
                .status();
        }
        for ns in &self.netns {
            let _ = netns::remove(ns);
        }
    }
}

/// A TCP server inside a namespace answering "<tag> <peer-ip>\n" to each connection.
struct Server {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl Server {
    fn start(ns: &Path, port: u16, tag: &str) -> Server {
        let listener = linux::netns::run_in(ns, move || TcpListener::bind(("0.0.0.0", port)))
            .expect("enter netns")
            .expect("bind in netns");
        listener.set_nonblocking(true).expect("nonblocking");
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let tag = tag.to_string();
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut conn, peer)) => {
                        let _ = conn.write_all(format!("{tag} {}\n", peer.ip()).as_bytes());
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(3)),
                }
            }
        });
        Server { stop, thread }
    }

    fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
    }
}

/// Connects to `addr` (from the namespace `ns`, or from the caller's) and returns the answer.
fn fetch(ns: Option<&Path>, addr: SocketAddrV4) -> std::io::Result<String> {
    fetch_within(ns, addr, TIMEOUT)
}

/// Whether `addr` cannot be reached from `ns` (dropped or refused) within a short wait.
fn unreachable(ns: Option<&Path>, addr: SocketAddrV4) -> bool {
    fetch_within(ns, addr, Duration::from_millis(400)).is_err()
}

fn fetch_within(ns: Option<&Path>, addr: SocketAddrV4, wait: Duration) -> std::io::Result<String> {
    let get = move || -> std::io::Result<String> {
        let mut conn = TcpStream::connect_timeout(&addr.into(), wait)?;
        conn.set_read_timeout(Some(wait))?;
        let mut out = String::new();
        conn.read_to_string(&mut out)?;
        Ok(out.trim().to_string())
    };
    match ns {
        Some(ns) => linux::netns::run_in(ns, get).map_err(std::io::Error::other)?,
        None => get(),
    }
}

fn sock(ip: Ipv4Addr, port: u16) -> SocketAddrV4 {
    SocketAddrV4::new(ip, port)
}

/// The host's address on its default route (a non-loopback address of this host).
fn host_address() -> Ipv4Addr {
    let probe = std::net::UdpSocket::bind("0.0.0.0:0").expect("udp");
    probe.connect("192.0.2.1:9").expect("a default route");
    match probe.local_addr().expect("local addr").ip() {
        std::net::IpAddr::V4(ip) => ip,
        other => panic!("unexpected {other}"),
    }
}

fn sysctl(key: &str) -> String {
    std::fs::read_to_string(Path::new("/proc/sys").join(key))
        .expect("sysctl")
        .trim()
        .to_string()
}

fn link_exists(name: &str) -> bool {
    Command::new("ip")
        .args(["link", "show", name])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn nft_table_exists(table: &str) -> bool {
    Command::new("nft")
        .args(["list", "table", "ip", table])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn net24(third: u8, host: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 199, third, host)
}

fn bridge(name: &str, third: u8) -> Bridge {
    Bridge {
        name: name.to_string(),
        gateway: net24(third, 1),
        prefix: 24,
        mtu: None,
    }
}

fn rules(bridge: &str, third: u8) -> NetRules {
    NetRules {
        bridge: bridge.to_string(),
        subnet: net24(third, 0),
        prefix: 24,
        masquerade: true,
        internal: false,
        icc: true,
    }
}

fn attachment(bridge: &str, host_ifname: &str, third: u8, host: u8) -> Attachment {
    Attachment {
        bridge: bridge.to_string(),
        host_ifname: host_ifname.to_string(),
        container_ifname: "eth0".into(),
        address: net24(third, host),
        prefix: 24,
        gateway: Some(net24(third, 1)),
        mtu: None,
        mac: None,
    }
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

#[test]
fn netns_create_has_lo_up_and_remove_unmounts() {
    test_support::require_root!();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("ns1");
    let mut guard = Cleanup::default();
    guard.netns.push(path.clone());

    let t = Instant::now();
    netns::create(&path).expect("create");
    eprintln!("netns::create: {:.2} ms", ms(t));
    assert!(linux::mount::is_mountpoint(&path));
    // Creating over a live namespace is refused.
    assert!(netns::create(&path).is_err());

    // lo is up: a listener on 127.0.0.1 inside is reachable from inside.
    let server = Server::start(&path, 7, "inside");
    assert_eq!(
        fetch(Some(&path), sock(Ipv4Addr::LOCALHOST, 7)).expect("lo"),
        "inside 127.0.0.1"
    );
    // ... and it is a different namespace from ours: nothing listens on our port 7.
    assert!(unreachable(None, sock(Ipv4Addr::LOCALHOST, 7)));
    server.stop();

    let t = Instant::now();
    netns::remove(&path).expect("remove");
    eprintln!("netns::remove: {:.2} ms", ms(t));
    assert!(!linux::mount::is_mountpoint(&path));
    assert!(!path.exists());
    netns::remove(&path).expect("removing again is fine");
}

#[test]
fn bridge_is_created_adopted_and_deleted() {
    test_support::require_root!();
    let br = name("b");
    let mut guard = Cleanup::default();
    guard.links.push(br.clone());
    let rt = rt();
    let mut b = bridge(&br, 10);
    b.mtu = Some(1400);

    let t = Instant::now();
    rt.block_on(link::ensure_bridge(&b)).expect("create");
    eprintln!("ensure_bridge (create): {:.2} ms", ms(t));
    let t = Instant::now();
    rt.block_on(link::ensure_bridge(&b)).expect("adopt");
    eprintln!("ensure_bridge (existing): {:.2} ms", ms(t));

    let show = Command::new("ip")
        .args(["-d", "-4", "addr", "show", "dev", &br])
        .output()
        .expect("ip");
    let show = String::from_utf8_lossy(&show.stdout);
    assert!(show.contains("inet 10.199.10.1/24"), "{show}");
    assert!(show.contains("mtu 1400"), "{show}");
    assert!(show.contains("bridge"), "{show}");
    assert!(show.contains("link/ether 02:42:0a:c7:0a:01"), "{show}");
    assert!(show.contains(",UP"), "{show}");
    assert_eq!(
        show.matches("inet ").count(),
        1,
        "the address is added once: {show}"
    );
    assert_eq!(sysctl("net/ipv4/ip_forward"), "1");
    assert_eq!(sysctl(&format!("net/ipv4/conf/{br}/route_localnet")), "1");

    // A bridge taken down by someone else is brought up again.
    assert!(
        Command::new("ip")
            .args(["link", "set", &br, "down"])
            .status()
            .expect("ip")
            .success()
    );
    rt.block_on(link::ensure_bridge(&b))
        .expect("adopt a down bridge");
    let show = Command::new("ip")
        .args(["link", "show", &br])
        .output()
        .expect("ip");
    assert!(String::from_utf8_lossy(&show.stdout).contains(",UP"));

    // A name taken by something that is not a bridge is refused.
    let dummy = name("d");
    guard.links.push(dummy.clone());
    assert!(
        Command::new("ip")
            .args([
                "link",
                "add",
                &dummy,
                "type",
                "veth",
                "peer",
                "name",
                &format!("{dummy}p")
            ])
            .status()
            .expect("ip")
            .success()
    );
    let err = rt
        .block_on(link::ensure_bridge(&bridge(&dummy, 9)))
        .expect_err("not a bridge");
    assert!(err.to_string().contains("not a bridge"), "{err}");

    let t = Instant::now();
    rt.block_on(link::delete_bridge(&br)).expect("delete");
    eprintln!("delete_bridge: {:.2} ms", ms(t));
    assert!(!link_exists(&br));
    rt.block_on(link::delete_bridge(&br))
        .expect("deleting a missing bridge is fine");
}

#[test]
fn published_ports_hairpin_and_container_traffic() {
    test_support::require_root!();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut guard = Cleanup::default();
    let rt = rt();
    let br = name("p");
    guard.links.push(br.clone());
    let fw = Firewall::new(&table("p"));
    guard.tables.push(fw.clone());
    let (c1, c2) = (dir.path().join("c1"), dir.path().join("c2"));
    let (v1, v2) = (name("p1"), name("p2"));
    guard.links.extend([v1.clone(), v2.clone()]);
    guard.netns.extend([c1.clone(), c2.clone()]);
    let third = 11;
    let (ip1, ip2, gw) = (net24(third, 2), net24(third, 3), net24(third, 1));
    let host = host_address();

    rt.block_on(link::ensure_bridge(&bridge(&br, third)))
        .expect("bridge");
    netns::create(&c1).expect("netns c1");
    netns::create(&c2).expect("netns c2");
    let mut a1 = attachment(&br, &v1, third, 2);
    a1.mac = Some([0x02, 0x42, 0x0a, 0xc7, third, 2]);
    a1.mtu = Some(1450);
    let t = Instant::now();
    rt.block_on(link::attach(&c1, &a1)).expect("attach c1");
    eprintln!("attach: {:.2} ms", ms(t));
    let t = Instant::now();
    rt.block_on(link::attach(&c2, &attachment(&br, &v2, third, 3)))
        .expect("attach c2");
    eprintln!("attach (2nd): {:.2} ms", ms(t));
    // The same host name twice fails and leaves the first pair alone.
    assert!(
        rt.block_on(link::attach(&c2, &attachment(&br, &v1, third, 4)))
            .is_err()
    );
    assert!(link_exists(&v1));

    // The container end: name, MAC, MTU, address, default route.
    let inside = Command::new("nsenter")
        .arg(format!("--net={}", c1.display()))
        .args([
            "sh",
            "-c",
            "ip -4 addr show dev eth0; ip route show default",
        ])
        .output()
        .expect("nsenter");
    let inside = String::from_utf8_lossy(&inside.stdout);
    assert!(inside.contains("inet 10.199.11.2/24"), "{inside}");
    assert!(inside.contains("mtu 1450"), "{inside}");
    assert!(
        inside.contains("default via 10.199.11.1 dev eth0"),
        "{inside}"
    );
    let mac_text = String::from_utf8_lossy(
        &Command::new("nsenter")
            .arg(format!("--net={}", c1.display()))
            .args(["ip", "link", "show", "eth0"])
            .output()
            .expect("nsenter")
            .stdout,
    )
    .to_string();
    assert!(mac_text.contains("02:42:0a:c7:0b:02"), "{mac_text}");

    guard.servers.push(Server::start(&c1, 80, "c1"));
    guard.servers.push(Server::start(&c2, 80, "c2"));

    // Host to container, and container to container on the bridge (no NAT).
    assert_eq!(
        fetch(None, sock(ip1, 80)).expect("host -> c1"),
        format!("c1 {gw}")
    );
    assert_eq!(
        fetch(Some(&c2), sock(ip1, 80)).expect("c2 -> c1"),
        format!("c1 {ip2}")
    );

    // Published ports: one on every host address (kernel-chosen port), one on 127.0.0.1 only.
    let all = ports::reserve(Proto::Tcp, None, 0).expect("reserve");
    let lo = ports::reserve(Proto::Tcp, Some(Ipv4Addr::LOCALHOST), 0).expect("reserve lo");
    assert!(all.port() >= 1024 && lo.port() >= 1024, "ephemeral range");
    assert!(matches!(
        ports::reserve(Proto::Tcp, None, all.port()),
        Err(NetworkError::PortAllocated { addr }) if addr == format!("0.0.0.0:{}", all.port())
    ));
    assert!(matches!(
        ports::reserve(Proto::Tcp, Some(host), all.port()),
        Err(NetworkError::PortAllocated { .. })
    ));
    let ruleset = Ruleset {
        networks: vec![rules(&br, third)],
        ports: vec![
            PortForward {
                proto: Proto::Tcp,
                host_ip: None,
                host_port: all.port(),
                container_ip: ip1,
                container_port: 80,
                bridge: br.clone(),
            },
            PortForward {
                proto: Proto::Tcp,
                host_ip: Some(Ipv4Addr::LOCALHOST),
                host_port: lo.port(),
                container_ip: ip2,
                container_port: 80,
                bridge: br.clone(),
            },
        ],
    };
    let t = Instant::now();
    fw.apply(&ruleset).expect("apply");
    eprintln!("firewall apply: {:.2} ms", ms(t));
    let t = Instant::now();
    fw.apply(&ruleset).expect("apply again");
    eprintln!("firewall apply (replace): {:.2} ms", ms(t));

    let p = all.port();
    // From the host: 127.0.0.1 (output DNAT + route_localnet + masquerade) and its own address.
    assert_eq!(
        fetch(None, sock(Ipv4Addr::LOCALHOST, p)).expect("127.0.0.1"),
        format!("c1 {gw}")
    );
    // (No NAT needed for the source here: it is the host's address, reachable from c1.)
    assert_eq!(
        fetch(None, sock(host, p)).expect("host address"),
        format!("c1 {host}")
    );
    assert_eq!(
        fetch(None, sock(gw, p)).expect("gateway address"),
        format!("c1 {gw}")
    );
    // Hairpin: another container and the container itself through a host address.
    assert_eq!(
        fetch(Some(&c2), sock(host, p)).expect("hairpin c2"),
        format!("c1 {gw}")
    );
    assert_eq!(
        fetch(Some(&c1), sock(host, p)).expect("hairpin self"),
        format!("c1 {gw}")
    );
    assert_eq!(
        fetch(Some(&c2), sock(gw, p)).expect("via gateway"),
        format!("c1 {gw}")
    );
    // The 127.0.0.1-only port: reachable on 127.0.0.1, not on the host's other addresses.
    assert_eq!(
        fetch(None, sock(Ipv4Addr::LOCALHOST, lo.port())).expect("lo port"),
        format!("c2 {gw}")
    );
    assert!(unreachable(None, sock(host, lo.port())));

    // The ruleset as nft shows it.
    let listing = Command::new("nft")
        .args(["list", "table", "ip", fw.table()])
        .output()
        .expect("nft");
    let listing = String::from_utf8_lossy(&listing.stdout);
    assert!(
        listing.contains(&format!(
            "ip saddr 10.199.11.0/24 oifname != \"{br}\" masquerade"
        )),
        "{listing}"
    );
    assert!(
        listing.contains(&format!("tcp dport {p} dnat to 10.199.11.2:80")),
        "{listing}"
    );

    // detach removes both ends; a second detach is fine.
    let t = Instant::now();
    rt.block_on(link::detach(&v2)).expect("detach");
    eprintln!("detach: {:.2} ms", ms(t));
    assert!(!link_exists(&v2));
    rt.block_on(link::detach(&v2)).expect("detach again");
    assert!(
        unreachable(Some(&c2), sock(ip1, 80)),
        "c2 is off the bridge"
    );

    // detach_in removes the container end from inside (network disconnect).
    let t = Instant::now();
    rt.block_on(link::detach_in(&c1, "eth0"))
        .expect("detach_in");
    eprintln!("detach_in: {:.2} ms", ms(t));
    assert!(!link_exists(&v1));
    rt.block_on(link::detach_in(&c1, "eth0"))
        .expect("detach_in again");
    rt.block_on(link::detach_in(&dir.path().join("gone"), "eth0"))
        .expect("missing netns");

    let t = Instant::now();
    fw.remove().expect("remove");
    eprintln!("firewall remove: {:.2} ms", ms(t));
    assert!(!nft_table_exists(fw.table()));
    fw.remove().expect("removing a missing table is fine");
    drop((all, lo));
}

/// A namespace `o` outside every bridge, reached from the host through a plain veth pair with
/// `10.199.<third>.1/30` on the host and `.2/30` inside: what "outside the host" looks like
/// without sending anything off this machine. Returns o's address.
fn make_outside(
    guard: &mut Cleanup,
    dir: &Path,
    tag: &str,
    third: u8,
    in_ns: Option<&Path>,
) -> (PathBuf, Ipv4Addr) {
    let o = dir.join(format!("outside-{tag}"));
    netns::create(&o).expect("netns outside");
    guard.netns.push(o.clone());
    let veth = name(tag);
    guard.links.push(veth.clone());
    let run = |args: &[&str], ns: Option<&Path>| {
        let mut cmd = Command::new("nsenter");
        match ns {
            Some(ns) => cmd.arg(format!("--net={}", ns.display())),
            None => cmd.arg("--net=/proc/self/ns/net"),
        };
        let st = cmd.args(args).status().expect("nsenter ip");
        assert!(st.success(), "{args:?}");
    };
    let host_side = format!("10.199.{third}.1/30");
    let o_side = format!("10.199.{third}.2/30");
    let netns_arg = o.display().to_string();
    run(
        &[
            "ip", "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &netns_arg,
        ],
        in_ns,
    );
    run(&["ip", "addr", "add", &host_side, "dev", &veth], in_ns);
    run(&["ip", "link", "set", &veth, "up"], in_ns);
    run(&["ip", "addr", "add", &o_side, "dev", "eth0"], Some(&o));
    run(&["ip", "link", "set", "eth0", "up"], Some(&o));
    (o, Ipv4Addr::new(10, 199, third, 2))
}

#[test]
fn masquerade_internal_networks_and_isolation() {
    test_support::require_root!();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut guard = Cleanup::default();
    let rt = rt();
    let fw = Firewall::new(&table("m"));
    guard.tables.push(fw.clone());
    let (o, o_ip) = make_outside(&mut guard, dir.path(), "mo", 252, None);
    guard.servers.push(Server::start(&o, 80, "outside"));

    // m: a normal network; i: --internal; n: a second normal network.
    let (bm, bi, bn) = (name("mm"), name("mi"), name("mn"));
    guard.links.extend([bm.clone(), bi.clone(), bn.clone()]);
    let (tm, ti, tn) = (12u8, 13u8, 14u8);
    let (cm, ci, cn) = (
        dir.path().join("cm"),
        dir.path().join("ci"),
        dir.path().join("cn"),
    );
    guard.netns.extend([cm.clone(), ci.clone(), cn.clone()]);
    let (vm, vi, vn) = (name("vm"), name("vi"), name("vn"));
    guard.links.extend([vm.clone(), vi.clone(), vn.clone()]);
    for (b, t, ns, v) in [
        (&bm, tm, &cm, &vm),
        (&bi, ti, &ci, &vi),
        (&bn, tn, &cn, &vn),
    ] {
        rt.block_on(link::ensure_bridge(&bridge(b, t)))
            .expect("bridge");
        netns::create(ns).expect("netns");
        // The internal container gets a default route too, so its packets do reach the host's
        // forward path (the engine gives it none) and the drop rules are what stops them.
        rt.block_on(link::attach(ns, &attachment(b, v, t, 2)))
            .expect("attach");
    }
    guard.servers.push(Server::start(&ci, 80, "ci"));
    guard.servers.push(Server::start(&cn, 80, "cn"));
    let mut internal = rules(&bi, ti);
    internal.internal = true;
    internal.masquerade = false;
    let published = ports::reserve(Proto::Tcp, None, 0).expect("reserve");
    fw.apply(&Ruleset {
        networks: vec![rules(&bm, tm), internal, rules(&bn, tn)],
        ports: vec![PortForward {
            proto: Proto::Tcp,
            host_ip: None,
            host_port: published.port(),
            container_ip: net24(tn, 2),
            container_port: 80,
            bridge: bn.clone(),
        }],
    })
    .expect("apply");

    // Masquerade: o sees the host's address on its link, not 10.199.12.2 (to which it has no
    // route, so without masquerade there would be no answer at all).
    assert_eq!(
        fetch(Some(&cm), sock(o_ip, 80)).expect("cm -> outside"),
        "outside 10.199.252.1"
    );
    // An internal network reaches nothing outside its bridge, and nothing reaches into it.
    assert!(
        unreachable(Some(&ci), sock(o_ip, 80)),
        "internal -> outside must fail"
    );
    assert!(
        unreachable(Some(&cm), sock(net24(ti, 2), 80)),
        "other network -> internal must fail"
    );
    // The host itself still reaches the internal container (no forwarding involved).
    assert_eq!(
        fetch(None, sock(net24(ti, 2), 80)).expect("host -> internal"),
        format!("ci {}", net24(ti, 1))
    );
    // Networks are isolated from each other: m cannot reach n's container directly...
    assert!(
        unreachable(Some(&cm), sock(net24(tn, 2), 80)),
        "m -> n directly must fail"
    );
    // ... but it can through n's published port on a host address.
    let host = host_address();
    assert!(
        fetch(Some(&cm), sock(host, published.port()))
            .expect("m -> n published")
            .starts_with("cn ")
    );

    // Without the table, m's traffic to the outside is no longer masqueraded (no answer).
    fw.remove().expect("remove");
    assert!(unreachable(Some(&cm), sock(o_ip, 80)));
}

/// dockerd sets iptables' `filter FORWARD` policy to drop. This runs in a namespace of its own
/// (the "host" `h`), so the policy is changed there and never on the real host.
#[test]
fn a_docker_style_forward_drop_policy_is_opened_for_our_bridges() {
    test_support::require_root!();
    if Command::new("iptables").arg("--version").output().is_err() {
        eprintln!("skipped: no iptables");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let mut guard = Cleanup::default();
    let h = dir.path().join("fakehost");
    netns::create(&h).expect("netns h");
    guard.netns.push(h.clone());
    let (o, o_ip) = make_outside(&mut guard, dir.path(), "do", 253, Some(&h));
    guard.servers.push(Server::start(&o, 80, "outside"));
    let c = dir.path().join("c");
    netns::create(&c).expect("netns c");
    guard.netns.push(c.clone());
    guard.servers.push(Server::start(&c, 80, "c"));
    let third = 15u8;

    // Everything below runs with h as "the host": netlink sockets, /proc/sys, nft and iptables
    // processes all belong to the thread's namespace.
    let (c_thread, o_thread) = (c.clone(), o.clone());
    let checks = linux::netns::run_in(&h, move || -> Result<(), String> {
        let ipt = |args: &[&str]| -> String {
            let out = Command::new("iptables")
                .args(args)
                .output()
                .expect("iptables");
            assert!(
                out.status.success(),
                "iptables {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        ipt(&["-w", "-P", "FORWARD", "DROP"]);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("rt");
        let br = "bt-dock".to_string();
        rt.block_on(link::ensure_bridge(&bridge(&br, third)))
            .map_err(|e| e.to_string())?;
        rt.block_on(link::attach(
            &c_thread,
            &attachment(&br, "veth-c", third, 2),
        ))
        .map_err(|e| e.to_string())?;
        let fw = Firewall::new("bdock");
        let ruleset = Ruleset {
            networks: vec![rules(&br, third)],
            ports: vec![PortForward {
                proto: Proto::Tcp,
                host_ip: None,
                host_port: 8080,
                container_ip: net24(third, 2),
                container_port: 80,
                bridge: br.clone(),
            }],
        };
        fw.apply(&ruleset).map_err(|e| e.to_string())?;
        let listing = ipt(&["-w", "-S"]);
        assert!(listing.contains("-P FORWARD DROP"), "{listing}");
        assert!(listing.contains("-A FORWARD -j BDOCK-FORWARD"), "{listing}");
        assert!(
            listing.contains("-A BDOCK-FORWARD -i bt-dock -j ACCEPT"),
            "{listing}"
        );
        // A second apply refills the chain without a second jump.
        fw.apply(&ruleset).map_err(|e| e.to_string())?;
        assert_eq!(
            ipt(&["-w", "-S", "FORWARD"])
                .matches("BDOCK-FORWARD")
                .count(),
            1
        );

        // Out of the bridge to "outside" (masqueraded to h's address there), and from outside
        // to the published port through h's address.
        assert_eq!(
            fetch(Some(&c_thread), sock(o_ip, 80)).map_err(|e| format!("c -> o: {e}"))?,
            "outside 10.199.253.1"
        );
        let h_addr = Ipv4Addr::new(10, 199, 253, 1);
        assert_eq!(
            fetch(Some(&o_thread), sock(h_addr, 8080))
                .map_err(|e| format!("o -> published: {e}"))?,
            "c 10.199.253.2"
        );

        // remove() takes our chain out again and leaves dockerd's policy alone.
        fw.remove().map_err(|e| e.to_string())?;
        let listing = ipt(&["-w", "-S"]);
        assert!(listing.contains("-P FORWARD DROP"), "{listing}");
        assert!(!listing.contains("BDOCK-FORWARD"), "{listing}");
        // With the drop policy and no accepts of ours, forwarding stops, as it would for us
        // without this handling.
        assert!(unreachable(Some(&c_thread), sock(o_ip, 80)));
        rt.block_on(link::detach("veth-c"))
            .map_err(|e| e.to_string())?;
        rt.block_on(link::delete_bridge(&br))
            .map_err(|e| e.to_string())?;
        Ok(())
    })
    .expect("enter h");
    checks.expect("checks in the fake host");
}
