//! What a start needs on disk: the init layer, the overlay root filesystem, the per-container
//! `/etc` files, the user resolved inside the image, and the runtime spec.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use linux::fs::Root;
use runtime::{ContainerSpec, MountSpec, NetworkNamespace, Resources, Ulimit, UserSpec};

use super::net::EtcNet;
use super::record::Record;
use crate::{EngineError, Result, io_err};

/// Default PATH, as Docker sets it.
pub(crate) const DEFAULT_PATH: &str =
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Creates the init layer's placeholders in `init` (once).
pub(crate) fn make_init_layer(init: &Path) -> Result<()> {
    fs::create_dir_all(init).map_err(|e| io_err("create", init, e))?;
    let root = Root::open(init)?;
    for d in ["etc", "dev", "dev/pts", "dev/shm", "proc", "sys"] {
        root.create_dir_all(Path::new(d), 0o755)?;
    }
    for f in [
        "etc/hostname",
        "etc/hosts",
        "etc/resolv.conf",
        ".dockerenv",
        "dev/console",
    ] {
        if root.try_lstat(Path::new(f))?.is_none() {
            drop(root.create_file(Path::new(f), 0o755)?);
        }
    }
    if root.try_lstat(Path::new("etc/mtab"))?.is_none() {
        root.symlink(Path::new("/proc/mounts"), Path::new("etc/mtab"))?;
    }
    Ok(())
}

/// The directories of one container.
#[derive(Debug, Clone)]
pub(crate) struct Dirs {
    pub dir: PathBuf,
    pub state_dir: PathBuf,
    pub runtime_root: PathBuf,
}

impl Dirs {
    pub(crate) fn rootfs(&self) -> PathBuf {
        self.dir.join("rootfs")
    }
    pub(crate) fn init(&self) -> PathBuf {
        self.dir.join("init")
    }
    pub(crate) fn upper(&self) -> PathBuf {
        self.dir.join("diff")
    }
    pub(crate) fn work(&self) -> PathBuf {
        self.dir.join("work")
    }
    pub(crate) fn hostname(&self) -> PathBuf {
        self.dir.join("hostname")
    }
    pub(crate) fn hosts(&self) -> PathBuf {
        self.dir.join("hosts")
    }
    pub(crate) fn resolv(&self) -> PathBuf {
        self.dir.join("resolv.conf")
    }
}

/// Mounts the overlay root filesystem (unmounting a stale one first). `volatile` (for `--rm`
/// containers, as podman does) skips the overlay's syncs of the upper layer, the costliest step
/// of a short container's stop on a busy disk.
pub(crate) fn mount_rootfs(
    dirs: &Dirs,
    snapshots: &Path,
    layers: &[String],
    volatile: bool,
) -> Result<()> {
    let rootfs = dirs.rootfs();
    for d in [rootfs.clone(), dirs.upper(), dirs.work()] {
        fs::create_dir_all(&d).map_err(|e| io_err("create", &d, e))?;
    }
    if linux::mount::is_mountpoint(&rootfs) {
        linux::mount::unmount(&rootfs)?;
    }
    let mut lowers = vec![dirs.init()];
    lowers.extend(layers.iter().rev().map(|h| snapshots.join(h).join("fs")));
    // A volatile mount leaves `work/incompat/volatile` behind, which blocks the next mount;
    // the work directory is scratch space between mounts, so clear that marker.
    let marker = dirs.work().join("work/incompat");
    if marker.exists() {
        fs::remove_dir_all(&marker).map_err(|e| io_err("remove", &marker, e))?;
    }
    linux::mount::mount_overlay_with(&lowers, &dirs.upper(), &dirs.work(), &rootfs, volatile)?;
    Ok(())
}

/// Writes hostname, hosts and resolv.conf for the container, as its networking says
/// (`super::net::EtcNet`).
pub(crate) fn write_etc_files(dirs: &Dirs, rec: &Record, net: &EtcNet) -> Result<()> {
    let hostname = rec.config.hostname.clone().unwrap_or_default();
    let domainname = rec.config.domainname.clone().unwrap_or_default();
    let write = |p: PathBuf, s: String| fs::write(&p, s).map_err(|e| io_err("write", &p, e));
    let h = &rec.host_config;
    let extra: Vec<String> = h.extra_hosts.clone().unwrap_or_default();
    let host_resolv = fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let opts = ResolvOptions {
        dns: h.dns.clone().unwrap_or_default(),
        search: h.dns_search.clone().unwrap_or_default(),
        options: h.dns_options.clone().unwrap_or_default(),
    };
    let (hosts, resolv) = match net {
        EtcNet::Own {
            ips,
            links,
            internal_dns,
        } => (
            super::net::hosts_file(&hostname, &domainname, &extra, ips, links),
            if *internal_dns {
                internal_resolv_conf(&host_resolv, &opts)
            } else {
                resolv_conf(&host_resolv, &opts)
            },
        ),
        EtcNet::Loopback => (
            super::net::hosts_file(&hostname, &domainname, &extra, &[], &[]),
            resolv_conf(&host_resolv, &opts),
        ),
        EtcNet::Host => {
            let mut hosts = fs::read_to_string("/etc/hosts").unwrap_or_default();
            for e in &extra {
                if let Some((name, ip)) = e.split_once('=').or_else(|| e.split_once(':')) {
                    hosts.push_str(&format!("{ip}\t{name}\n"));
                }
            }
            (hosts, resolv_conf_host(&host_resolv, &opts))
        }
        EtcNet::Shared(other) => {
            let read = |n: &str| fs::read_to_string(other.join(n)).unwrap_or_default();
            let hn = read("hostname");
            write(dirs.hostname(), hn)?;
            (read("hosts"), read("resolv.conf"))
        }
    };
    if !matches!(net, EtcNet::Shared(_)) {
        write(dirs.hostname(), format!("{hostname}\n"))?;
    }
    write(dirs.hosts(), hosts)?;
    write(dirs.resolv(), resolv)?;
    Ok(())
}

/// `--dns`, `--dns-search` and `--dns-option`: each replaces the host's lines of its kind.
#[derive(Debug, Default)]
pub(crate) struct ResolvOptions {
    pub dns: Vec<String>,
    pub search: Vec<String>,
    pub options: Vec<String>,
}

/// The host's search and options lines (unless replaced), then the given ones.
fn resolv_tail(host: &str, o: &ResolvOptions, extra_options: &[&str]) -> String {
    let mut out = String::new();
    if o.search.is_empty() {
        for line in host.lines() {
            let t = line.trim();
            if t.starts_with("search") || t.starts_with("domain") {
                out.push_str(t);
                out.push('\n');
            }
        }
    } else if o.search != ["."] {
        out.push_str(&format!("search {}\n", o.search.join(" ")));
    }
    let mut options: Vec<String> = if o.options.is_empty() {
        host.lines()
            .filter_map(|l| l.trim().strip_prefix("options"))
            .flat_map(|r| r.split_whitespace().map(str::to_string).collect::<Vec<_>>())
            .collect()
    } else {
        o.options.clone()
    };
    for e in extra_options {
        let key = e.split(':').next().unwrap_or(e);
        if !options.iter().any(|x| x.split(':').next() == Some(key)) {
            options.push((*e).to_string());
        }
    }
    if !options.is_empty() {
        out.push_str(&format!("options {}\n", options.join(" ")));
    }
    out
}

/// resolv.conf for a container on a user network: the embedded DNS server (moby's
/// `nameserver 127.0.0.11` and `options ndots:0`), which forwards to the host's nameservers
/// (or `--dns`).
pub(crate) fn internal_resolv_conf(host: &str, o: &ResolvOptions) -> String {
    let mut out = format!("nameserver {}\n", network::dns::NAMESERVER);
    out.push_str(&resolv_tail(host, o, &["ndots:0"]));
    out
}

/// resolv.conf for `--network host`: the host's nameservers (loopback ones work there).
fn resolv_conf_host(host: &str, o: &ResolvOptions) -> String {
    if o.dns.is_empty() && o.search.is_empty() && o.options.is_empty() {
        return host.to_string();
    }
    let mut out = String::new();
    if o.dns.is_empty() {
        for l in host.lines().filter(|l| l.trim().starts_with("nameserver")) {
            out.push_str(l.trim());
            out.push('\n');
        }
    } else {
        for ns in &o.dns {
            out.push_str(&format!("nameserver {ns}\n"));
        }
    }
    out.push_str(&resolv_tail(host, o, &[]));
    out
}

/// The host's nameservers without loopback ones (Google's when none remain; loopback
/// addresses mean nothing in the container's namespace), or `--dns`; then search and options.
pub(crate) fn resolv_conf(host: &str, o: &ResolvOptions) -> String {
    let mut out = String::new();
    if o.dns.is_empty() {
        let servers: Vec<&str> = host
            .lines()
            .filter_map(|l| l.trim().strip_prefix("nameserver"))
            .map(str::trim)
            .filter(|ns| !ns.starts_with("127.") && *ns != "::1")
            .collect();
        if servers.is_empty() {
            out.push_str("nameserver 8.8.8.8\nnameserver 8.8.4.4\n");
        }
        for ns in servers {
            out.push_str(&format!("nameserver {ns}\n"));
        }
    } else {
        for ns in &o.dns {
            out.push_str(&format!("nameserver {ns}\n"));
        }
    }
    out.push_str(&resolv_tail(host, o, &[]));
    out
}

fn read_in_root(root: &Root, rel: &str) -> String {
    let mut s = String::new();
    if let Ok(mut f) = root.open_file(Path::new(rel)) {
        let _ = f.read_to_string(&mut s);
    }
    s
}

/// Resolves `name|uid[:group|gid]` against passwd/group text. Returns the user and its home.
pub(crate) fn resolve_user(
    spec: &str,
    passwd: &str,
    group: &str,
    group_add: &[String],
) -> Result<(UserSpec, String)> {
    let (user, grp) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let user = if user.is_empty() { "0" } else { user };
    let entries: Vec<Vec<&str>> = passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .filter(|f| f.len() >= 4)
        .collect();
    let numeric: Option<u32> = user.parse().ok();
    let found = entries.iter().find(|f| match numeric {
        Some(n) => f[2].parse::<u32>().ok() == Some(n),
        None => f[0] == user,
    });
    let (uid, mut gid, name, home) = match (found, numeric) {
        (Some(f), _) => (
            f[2].parse().unwrap_or(0),
            f[3].parse().unwrap_or(0),
            f[0].to_string(),
            f.get(5).map_or("/", |h| *h).to_string(),
        ),
        (None, Some(n)) => (n, 0, String::new(), "/".to_string()),
        (None, None) => {
            return Err(EngineError::StartFailed(format!(
                "unable to find user {user}: no matching entries in passwd file"
            )));
        }
    };
    let groups: Vec<Vec<&str>> = group
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .filter(|f| f.len() >= 3)
        .collect();
    let find_group = |g: &str| -> Result<u32> {
        if let Ok(n) = g.parse::<u32>() {
            return Ok(n);
        }
        groups
            .iter()
            .find(|f| f[0] == g)
            .and_then(|f| f[2].parse().ok())
            .ok_or_else(|| {
                EngineError::StartFailed(format!(
                    "unable to find group {g}: no matching entries in group file"
                ))
            })
    };
    if let Some(g) = grp.filter(|g| !g.is_empty()) {
        gid = find_group(g)?;
    }
    let mut additional = vec![gid];
    if grp.is_none() && !name.is_empty() {
        for f in &groups {
            let members = f.get(3).copied().unwrap_or_default();
            if members.split(',').any(|m| m == name)
                && let Ok(n) = f[2].parse::<u32>()
                && !additional.contains(&n)
            {
                additional.push(n);
            }
        }
    }
    for g in group_add {
        let n = find_group(g)?;
        if !additional.contains(&n) {
            additional.push(n);
        }
    }
    Ok((
        UserSpec {
            uid,
            gid,
            additional_gids: additional,
        },
        home,
    ))
}

/// Parses a Docker size (`64m`, `10k`, `1g`, plain bytes).
pub(crate) fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim().to_ascii_lowercase();
    let s = s.strip_suffix('b').unwrap_or(&s);
    let (num, mult) = match s.chars().last()? {
        'k' => (&s[..s.len() - 1], 1024u64),
        'm' => (&s[..s.len() - 1], 1024 * 1024),
        'g' => (&s[..s.len() - 1], 1024 * 1024 * 1024),
        't' => (&s[..s.len() - 1], 1024u64.pow(4)),
        _ => (s, 1),
    };
    let n: f64 = num.trim().parse().ok()?;
    if n < 0.0 {
        return None;
    }
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    Some((n * mult as f64) as u64)
}

/// Builds the runtime's view of the container. The rootfs must be mounted. `user_mounts` are
/// the container's binds, volumes and tmpfs mounts (`super::mounts`); the per-container `/etc`
/// files are bind-mounted unless one of them covers the same path, and everything is mounted
/// parents first.
pub(crate) fn container_spec(
    rec: &Record,
    dirs: &Dirs,
    user_mounts: Vec<MountSpec>,
    network: NetworkNamespace,
    link_env: Vec<String>,
) -> Result<ContainerSpec> {
    let c = &rec.config;
    let h = &rec.host_config;
    let root = Root::open(&dirs.rootfs())?;
    let passwd = read_in_root(&root, "etc/passwd");
    let group = read_in_root(&root, "etc/group");
    let (user, home) = resolve_user(
        c.user.as_deref().unwrap_or_default(),
        &passwd,
        &group,
        h.group_add.as_deref().unwrap_or_default(),
    )?;
    let hostname = c.hostname.clone().unwrap_or_default();
    let tty = c.tty.unwrap_or(false);

    let mut env: Vec<String> = Vec::new();
    let user_env = c.env.clone().unwrap_or_default();
    let has = |k: &str| user_env.iter().any(|e| e.split('=').next() == Some(k));
    if !has("PATH") {
        env.push(DEFAULT_PATH.to_string());
    }
    env.push(format!("HOSTNAME={hostname}"));
    if tty && !has("TERM") {
        env.push("TERM=xterm".into());
    }
    env.extend(link_env.into_iter().filter(|e| {
        let k = e.split('=').next().unwrap_or_default();
        !has(k)
    }));
    env.extend(user_env.iter().cloned());
    if !has("HOME") {
        env.push(format!(
            "HOME={}",
            if home.is_empty() { "/" } else { &home }
        ));
    }

    let ro = h.readonly_rootfs.unwrap_or(false);
    let bind_opts = |ro: bool| {
        let mut o = vec!["rbind".to_string(), "rprivate".to_string()];
        if ro {
            o.push("ro".into());
        }
        o
    };
    let mut mounts = vec![
        MountSpec {
            destination: "/etc/resolv.conf".into(),
            kind: "bind".into(),
            source: dirs.resolv().display().to_string(),
            options: bind_opts(ro),
        },
        MountSpec {
            destination: "/etc/hostname".into(),
            kind: "bind".into(),
            source: dirs.hostname().display().to_string(),
            options: bind_opts(ro),
        },
        MountSpec {
            destination: "/etc/hosts".into(),
            kind: "bind".into(),
            source: dirs.hosts().display().to_string(),
            options: bind_opts(ro),
        },
    ];
    mounts.retain(|m| !user_mounts.iter().any(|u| u.destination == m.destination));
    mounts.extend(user_mounts);
    super::mounts::sort_specs(&mut mounts);

    let security: Vec<String> = h.security_opt.clone().unwrap_or_default();
    let no_new_privileges = security.iter().any(|o| {
        o == "no-new-privileges" || o == "no-new-privileges:true" || o == "no-new-privileges=true"
    });
    let seccomp_unconfined = security
        .iter()
        .any(|o| o == "seccomp=unconfined" || o == "seccomp:unconfined");

    let console_size = h
        .console_size
        .as_ref()
        .filter(|v| v.len() == 2 && v[0] > 0 && v[1] > 0)
        .map(|v| {
            (
                u16::try_from(v[0]).unwrap_or(u16::MAX),
                u16::try_from(v[1]).unwrap_or(u16::MAX),
            )
        });
    let resources = Resources {
        memory: h.memory.unwrap_or(0),
        memory_swap: h.memory_swap.unwrap_or(0),
        nano_cpus: h.nano_cpus.unwrap_or(0),
        cpu_shares: h.cpu_shares.unwrap_or(0),
        cpu_period: h.cpu_period.unwrap_or(0),
        cpu_quota: h.cpu_quota.unwrap_or(0),
        cpuset_cpus: h.cpuset_cpus.clone().unwrap_or_default(),
        pids_limit: h.pids_limit,
        blkio_weight: h.blkio_weight.unwrap_or(0),
    };
    let ulimits = h
        .ulimits
        .iter()
        .flatten()
        .map(|u| Ulimit {
            name: u.name.clone().unwrap_or_default(),
            soft: u64::try_from(u.soft.unwrap_or(0)).unwrap_or(u64::MAX),
            hard: u64::try_from(u.hard.unwrap_or(0)).unwrap_or(u64::MAX),
        })
        .collect();
    let cwd = c
        .working_dir
        .clone()
        .filter(|w| !w.is_empty())
        .unwrap_or_else(|| "/".into());
    let mut args = vec![rec.path.clone()];
    args.extend(rec.args.iter().cloned());
    Ok(ContainerSpec {
        id: rec.id.clone(),
        rootfs: dirs.rootfs(),
        args,
        env,
        cwd,
        user,
        hostname,
        domainname: c.domainname.clone().unwrap_or_default(),
        tty,
        console_size,
        privileged: h.privileged.unwrap_or(false),
        cap_add: h.cap_add.clone().unwrap_or_default(),
        cap_drop: h.cap_drop.clone().unwrap_or_default(),
        readonly_rootfs: ro,
        no_new_privileges,
        seccomp_unconfined,
        network,
        mounts,
        shm_size: u64::try_from(h.shm_size.unwrap_or(64 << 20)).unwrap_or(64 << 20),
        resources,
        ulimits,
        cgroups_path: format!("/berth/{}", rec.id),
        sysctls: h
            .sysctls
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect::<BTreeMap<_, _>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1:daemon:/usr/sbin:/bin/false\nnobody:x:65534:65534:nobody:/home:/bin/false\n";
    const GROUP: &str =
        "root:x:0:\nwheel:x:10:root\ndaemon:x:1:\nnogroup:x:65534:\nstaff:x:50:daemon,nobody\n";

    #[test]
    fn users() {
        let (u, home) = resolve_user("", PASSWD, GROUP, &[]).unwrap();
        assert_eq!((u.uid, u.gid), (0, 0));
        assert_eq!(u.additional_gids, vec![0, 10]);
        assert_eq!(home, "/root");
        let (u, _) = resolve_user("nobody", PASSWD, GROUP, &[]).unwrap();
        assert_eq!((u.uid, u.gid), (65534, 65534));
        assert_eq!(u.additional_gids, vec![65534, 50]);
        let (u, _) = resolve_user("1:wheel", PASSWD, GROUP, &[]).unwrap();
        assert_eq!((u.uid, u.gid), (1, 10));
        let (u, home) = resolve_user("1234:5678", PASSWD, GROUP, &[]).unwrap();
        assert_eq!((u.uid, u.gid, home.as_str()), (1234, 5678, "/"));
        let e = resolve_user("x", PASSWD, GROUP, &[]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "unable to find user x: no matching entries in passwd file"
        );
        assert!(resolve_user("root:nope", PASSWD, GROUP, &[]).is_err());
        let (u, _) = resolve_user("daemon", PASSWD, GROUP, &["staff".into(), "99".into()]).unwrap();
        assert_eq!(u.additional_gids, vec![1, 50, 99]);
    }

    #[test]
    fn resolv() {
        let none = ResolvOptions::default();
        let host = "# c\nnameserver 127.0.0.53\nsearch lan\noptions edns0\n";
        let r = resolv_conf(host, &none);
        assert_eq!(
            r,
            "nameserver 8.8.8.8\nnameserver 8.8.4.4\nsearch lan\noptions edns0\n"
        );
        let r = resolv_conf("nameserver 10.0.0.1\n", &none);
        assert_eq!(r, "nameserver 10.0.0.1\n");
        let o = ResolvOptions {
            dns: vec!["1.1.1.1".into()],
            search: vec!["example.com".into()],
            options: vec!["timeout:2".into()],
        };
        let r = resolv_conf(host, &o);
        assert_eq!(
            r,
            "nameserver 1.1.1.1\nsearch example.com\noptions timeout:2\n"
        );
        let r = internal_resolv_conf(host, &none);
        assert_eq!(
            r,
            "nameserver 127.0.0.11\nsearch lan\noptions edns0 ndots:0\n"
        );
        let r = internal_resolv_conf(host, &o);
        assert_eq!(
            r,
            "nameserver 127.0.0.11\nsearch example.com\noptions timeout:2 ndots:0\n"
        );
        assert_eq!(resolv_conf_host(host, &none), host);
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("10m"), Some(10 << 20));
        assert_eq!(parse_size("1k"), Some(1024));
        assert_eq!(parse_size("100"), Some(100));
        assert_eq!(parse_size("2g"), Some(2 << 30));
        assert_eq!(parse_size("x"), None);
    }

    #[test]
    fn init_layer() {
        let d = tempfile::tempdir().unwrap();
        let init = d.path().join("init");
        make_init_layer(&init).unwrap();
        make_init_layer(&init).unwrap();
        assert!(init.join("etc/hostname").is_file());
        assert!(init.join(".dockerenv").is_file());
        assert!(init.join("dev/pts").is_dir());
        assert_eq!(
            fs::read_link(init.join("etc/mtab")).unwrap(),
            PathBuf::from("/proc/mounts")
        );
    }
}
