//! Crash-consistency invariants of a berthd data root, checked from outside after a restart
//! (the fault tests kill berthd with SIGKILL mid-operation, start it again, then call
//! [`assert_consistent`]).
//!
//! It reads the data root and the exec root directly, in the layout `crates/engine/src/lib.rs`
//! draws (content store, snapshots, image records and tags, container records), and the host's
//! view (`/proc/self/mountinfo`, the cgroup trees, the daemon's bridge, its nftables table), and
//! compares both with what the daemon answers. It knows the on-disk formats only as JSON
//! values: no engine types, so a change of format shows up here as a failed check, not as a
//! build error in a dev-only crate.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::big_image::sha256_file;
use crate::daemon::TestDaemon;

/// How long [`assert_consistent`] lets asynchronous cleanup (veths deleted in the background,
/// a dead container settled by a restored daemon) catch up before it reports.
const SETTLE: Duration = Duration::from_secs(15);

/// Checks every invariant, retrying until they hold or [`SETTLE`] has passed; panics with the
/// list of violations (and berthd's log) if they do not. `gone` are IDs of containers the test
/// saw that may no longer exist (removed, or never recorded): none of them may have anything
/// left (cgroups, netns, mounts, a record that is not theirs).
pub fn assert_consistent(d: &TestDaemon, gone: &[String]) {
    let deadline = Instant::now() + SETTLE;
    loop {
        let problems = check(d, gone);
        if problems.is_empty() {
            return;
        }
        if Instant::now() > deadline {
            let log = d.log();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            panic!(
                "crash invariants violated:\n  - {}\nberthd log (tail):\n{}",
                problems.join("\n  - "),
                tail.join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// After a failed operation that must give its space back (a full disk): every blob and every
/// snapshot belongs to some image. Not part of [`check`]: a load or pull cut short by a crash
/// legitimately leaves verified blobs and snapshots for the next one to reuse.
pub fn assert_no_garbage(d: &TestDaemon) {
    let mut p = Vec::new();
    let blobs = check_content(&d.data_root, &mut p);
    let snaps = check_snapshots(&d.data_root, &mut p);
    let images = check_images(&d.data_root, &blobs, &snaps, &mut p);
    let used: BTreeSet<&String> = images.values().flat_map(|i| &i.blobs).collect();
    let chains: BTreeSet<&String> = images.values().flat_map(|i| &i.chains).collect();
    let unused: Vec<&String> = blobs.iter().filter(|b| !used.contains(b)).collect();
    if !unused.is_empty() {
        p.push(format!("content: blobs no image uses: {unused:?}"));
    }
    let unused: Vec<&String> = snaps.iter().filter(|s| !chains.contains(s)).collect();
    if !unused.is_empty() {
        p.push(format!("snapshots: no image uses {unused:?}"));
    }
    assert!(p.is_empty(), "garbage left:\n  - {}", p.join("\n  - "));
}

/// Every violation found now (empty when the data root is consistent).
pub fn check(d: &TestDaemon, gone: &[String]) -> Vec<String> {
    let mut p = Vec::new();
    let blobs = check_content(&d.data_root, &mut p);
    let snaps = check_snapshots(&d.data_root, &mut p);
    let images = check_images(&d.data_root, &blobs, &snaps, &mut p);
    let ctrs = load_containers(&d.data_root, &mut p);
    check_containers(d, &ctrs, gone, &mut p);
    check_mounts(d, &ctrs, &mut p);
    check_network(d, &ctrs, &mut p);
    check_api(d, &ctrs, &images, &mut p);
    p
}

fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(data))
}

fn names(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn is_hex64(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Content store: every blob hashes to its name; nothing left in `ingest/`. Returns the
/// verified blob names.
fn check_content(root: &Path, p: &mut Vec<String>) -> BTreeSet<String> {
    let dir = root.join("content/blobs/sha256");
    let mut ok = BTreeSet::new();
    for name in names(&dir) {
        if !is_hex64(&name) {
            p.push(format!("content: unexpected file blobs/sha256/{name}"));
            continue;
        }
        match sha256_file(&dir.join(&name)) {
            Ok(h) if h == name => {
                ok.insert(name);
            }
            Ok(h) => p.push(format!("content: blob {name} hashes to {h}")),
            Err(e) => p.push(format!("content: blob {name}: {e}")),
        }
    }
    let left = names(&root.join("content/ingest"));
    if !left.is_empty() {
        p.push(format!("content: ingest/ not cleaned at start: {left:?}"));
    }
    ok
}

/// Snapshots: no `tmp-*` after a start, each published one has `fs/` and a `meta.json` naming
/// its own chain ID. Returns the published chain IDs (hex).
fn check_snapshots(root: &Path, p: &mut Vec<String>) -> BTreeSet<String> {
    let dir = root.join("snapshots");
    let mut ok = BTreeSet::new();
    for name in names(&dir) {
        if !is_hex64(&name) {
            p.push(format!("snapshots: leftover {name}"));
            continue;
        }
        let meta = std::fs::read(dir.join(&name).join("meta.json"))
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok());
        let named = meta
            .as_ref()
            .and_then(|m| m["chain_id"].as_str())
            .map(|c| c.trim_start_matches("sha256:").to_string());
        if named.as_deref() != Some(name.as_str()) {
            p.push(format!(
                "snapshots: {name} has no valid meta.json ({meta:?})"
            ));
        } else if !dir.join(&name).join("fs").is_dir() {
            p.push(format!("snapshots: {name} has no fs/"));
        } else {
            ok.insert(name);
        }
    }
    ok
}

/// One image as the data root has it.
struct DiskImage {
    id: String,
    /// Its config blob and layer blobs (hex).
    blobs: Vec<String>,
    /// Its layers' chain IDs (hex).
    chains: Vec<String>,
}

/// Images: every record's config blob exists and parses, every layer's blob (by diff ID) and
/// snapshot (by chain ID) exist; every tag points at a recorded image; no temporary files.
fn check_images(
    root: &Path,
    blobs: &BTreeSet<String>,
    snaps: &BTreeSet<String>,
    p: &mut Vec<String>,
) -> BTreeMap<String, DiskImage> {
    let mut images = BTreeMap::new();
    let meta_dir = root.join("images/meta");
    for name in names(&meta_dir) {
        let Some(id) = name.strip_suffix(".json").filter(|h| is_hex64(h)) else {
            p.push(format!("images: unexpected file meta/{name}"));
            continue;
        };
        if std::fs::read(meta_dir.join(&name))
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .is_none()
        {
            p.push(format!("images: meta/{name} is not JSON"));
        }
        if !blobs.contains(id) {
            p.push(format!("images: image {id} has no (valid) config blob"));
            continue;
        }
        let config = std::fs::read(root.join("content/blobs/sha256").join(id))
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok());
        let Some(config) = config else {
            p.push(format!("images: config of {id} is not JSON"));
            continue;
        };
        let diff_ids: Vec<String> = config["rootfs"]["diff_ids"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|d| d.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let mut chain: Option<String> = None;
        let mut image = DiskImage {
            id: id.to_string(),
            blobs: vec![id.to_string()],
            chains: Vec::new(),
        };
        for diff in &diff_ids {
            let hex = diff.trim_start_matches("sha256:");
            image.blobs.push(hex.to_string());
            if !blobs.contains(hex) {
                p.push(format!("images: image {id} layer {diff} has no blob"));
            }
            let c = match &chain {
                None => diff.clone(),
                Some(parent) => format!(
                    "sha256:{}",
                    sha256_hex(format!("{parent} {diff}").as_bytes())
                ),
            };
            let c_hex = c.trim_start_matches("sha256:").to_string();
            if !snaps.contains(&c_hex) {
                p.push(format!("images: image {id} chain {c_hex} has no snapshot"));
            }
            image.chains.push(c_hex);
            chain = Some(c);
        }
        images.insert(id.to_string(), image);
    }
    for name in names(&root.join("builder")) {
        if name.starts_with("ctx-") {
            p.push(format!(
                "builder: build context builder/{name} left after a start"
            ));
        }
    }
    for name in names(&root.join("images")) {
        if name != "meta" && name != "repositories.json" {
            p.push(format!("images: leftover images/{name}"));
        }
    }
    match std::fs::read(root.join("images/repositories.json")) {
        Ok(b) => match serde_json::from_slice::<BTreeMap<String, String>>(&b) {
            Ok(refs) => {
                for (r, id) in refs {
                    let hex = id.trim_start_matches("sha256:");
                    if !images.contains_key(hex) {
                        p.push(format!("images: tag {r} points at missing image {id}"));
                    }
                }
            }
            Err(e) => p.push(format!("images: repositories.json: {e}")),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => p.push(format!("images: repositories.json: {e}")),
    }
    images
}

/// One container record, as JSON.
struct DiskCtr {
    id: String,
    rec: Value,
}

impl DiskCtr {
    fn running(&self) -> bool {
        self.rec["state"]["running"].as_bool().unwrap_or(false)
    }
    fn pid(&self) -> i64 {
        self.rec["state"]["pid"].as_i64().unwrap_or(0)
    }
    /// Endpoints' (ip, host_ifname) pairs that are set.
    fn endpoints(&self) -> Vec<(String, String)> {
        self.rec["endpoints"]
            .as_object()
            .map(|m| {
                m.values()
                    .map(|e| {
                        (
                            e["ip"].as_str().unwrap_or_default().to_string(),
                            e["host_ifname"].as_str().unwrap_or_default().to_string(),
                        )
                    })
                    .filter(|(ip, ifname)| !ip.is_empty() || !ifname.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    }
    fn has_ports(&self) -> bool {
        self.rec["ports"].as_array().is_some_and(|a| !a.is_empty())
    }
}

fn load_containers(root: &Path, p: &mut Vec<String>) -> Vec<DiskCtr> {
    let dir = root.join("containers");
    let mut out = Vec::new();
    for name in names(&dir) {
        let rec = std::fs::read(dir.join(&name).join("config.v2.json"))
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok());
        match rec {
            Some(rec) if rec["id"].as_str() == Some(name.as_str()) => {
                out.push(DiskCtr { id: name, rec });
            }
            Some(_) => p.push(format!("containers: {name}: record names another ID")),
            None => p.push(format!(
                "containers: {name}: directory without a valid record"
            )),
        }
    }
    out
}

fn pid_alive(pid: i64) -> bool {
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    pid > 0
        && std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
            s.rsplit_once(") ")
                .is_some_and(|(_, r)| !r.starts_with('Z'))
        })
}

/// The state directory of a container's shim, as the engine picks it.
fn state_dir(exec_root: &Path, id: &str) -> PathBuf {
    let fits = exec_root.as_os_str().len() + "/containers/".len() + 64 + "/notify.sock".len() < 107;
    if fits {
        exec_root.join("containers").join(id)
    } else {
        exec_root.join("c").join(&id[..12.min(id.len())])
    }
}

/// Cgroup directories named after `id` (`<controller>/berth/<id>`, or `berth/<id>` on v2).
fn cgroup_dirs(id: &str) -> Vec<PathBuf> {
    let root = Path::new("/sys/fs/cgroup");
    let mut dirs = vec![root.join("berth").join(id)];
    for c in names(root) {
        dirs.push(root.join(c).join("berth").join(id));
    }
    dirs.into_iter().filter(|d| d.is_dir()).collect()
}

fn netns_file(exec_root: &Path, id: &str) -> PathBuf {
    exec_root.join("netns").join(&id[..12.min(id.len())])
}

fn is_frozen(id: &str) -> Option<bool> {
    let v1 = Path::new("/sys/fs/cgroup/freezer/berth")
        .join(id)
        .join("freezer.state");
    if let Ok(s) = std::fs::read_to_string(v1) {
        return Some(s.trim() != "THAWED");
    }
    let v2 = Path::new("/sys/fs/cgroup/berth")
        .join(id)
        .join("cgroup.freeze");
    std::fs::read_to_string(v2).ok().map(|s| s.trim() == "1")
}

/// Containers: running ⇔ init pid and monitor alive; running and paused ⇔ frozen; not running
/// ⇒ no rootfs mount, cgroups, netns file or live shim; IDs in `gone` leave nothing either.
fn check_containers(d: &TestDaemon, ctrs: &[DiskCtr], gone: &[String], p: &mut Vec<String>) {
    let mounts = mount_points();
    for c in ctrs {
        let id = &c.id;
        let shim_pid: i64 = std::fs::read_to_string(state_dir(&d.exec_root, id).join("shim.pid"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0);
        let rootfs = d.data_root.join("containers").join(id).join("rootfs");
        let mounted = mounts.contains(&rootfs);
        let status = c.rec["state"]["status"].as_str().unwrap_or_default();
        if c.running() {
            if !pid_alive(c.pid()) {
                p.push(format!(
                    "container {id}: running but pid {} is dead",
                    c.pid()
                ));
            }
            if !pid_alive(shim_pid) {
                p.push(format!("container {id}: running but its monitor is gone"));
            }
            if !mounted {
                p.push(format!("container {id}: running without its rootfs mount"));
            }
            let paused = c.rec["state"]["paused"].as_bool().unwrap_or(false);
            if let Some(frozen) = is_frozen(id)
                && frozen != paused
            {
                p.push(format!(
                    "container {id}: paused={paused} in its record but frozen={frozen}"
                ));
            }
            if !matches!(status, "running" | "paused") {
                p.push(format!("container {id}: running with status {status:?}"));
            }
        } else {
            if matches!(status, "running" | "paused" | "removing") {
                p.push(format!(
                    "container {id}: not running with status {status:?}"
                ));
            }
            if c.pid() != 0 {
                p.push(format!("container {id}: not running with pid {}", c.pid()));
            }
            leftovers(d, &format!("{id} ({status})"), id, &mounts, p);
            if pid_alive(shim_pid) {
                p.push(format!(
                    "container {id}: not running but shim {shim_pid} lives"
                ));
            }
            if !c.endpoints().is_empty() {
                p.push(format!(
                    "container {id}: not running but holds endpoints {:?}",
                    c.endpoints()
                ));
            }
            if c.has_ports() || c.rec["sandbox_key"].as_str().is_some_and(|s| !s.is_empty()) {
                p.push(format!(
                    "container {id}: not running but has ports or a sandbox"
                ));
            }
        }
    }
    for id in gone {
        if !ctrs.iter().any(|c| c.id == *id) {
            leftovers(d, &format!("{id} (no record)"), id, &mounts, p);
            if state_dir(&d.exec_root, id).exists() {
                p.push(format!(
                    "container {id}: removed but its shim state is left"
                ));
            }
        }
    }
}

/// What a container that does not run may not have left.
fn leftovers(d: &TestDaemon, what: &str, id: &str, mounts: &[PathBuf], p: &mut Vec<String>) {
    let rootfs = d.data_root.join("containers").join(id).join("rootfs");
    if mounts.contains(&rootfs) {
        p.push(format!(
            "container {what}: not running but its rootfs is mounted"
        ));
    }
    let cg = cgroup_dirs(id);
    if !cg.is_empty() {
        p.push(format!(
            "container {what}: not running but cgroups are left: {cg:?}"
        ));
    }
    if netns_file(&d.exec_root, id).exists() {
        p.push(format!(
            "container {what}: not running but its netns file is left"
        ));
    }
}

/// Mount points of this mount namespace (octal escapes of mountinfo decoded).
fn mount_points() -> Vec<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|m| PathBuf::from(unescape(m)))
        .collect()
}

fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// No mount under the data root or exec root but running containers' rootfs and netns
/// files, and volumes' `_data`.
fn check_mounts(d: &TestDaemon, ctrs: &[DiskCtr], p: &mut Vec<String>) {
    let mut allowed: BTreeSet<PathBuf> = BTreeSet::new();
    for c in ctrs.iter().filter(|c| c.running()) {
        allowed.insert(d.data_root.join("containers").join(&c.id).join("rootfs"));
        allowed.insert(netns_file(&d.exec_root, &c.id));
    }
    for m in mount_points() {
        let ours = m.starts_with(&d.data_root) || m.starts_with(&d.exec_root);
        let volume = m.starts_with(d.data_root.join("volumes")) && m.ends_with("_data");
        if ours && !allowed.contains(&m) && !volume {
            p.push(format!("mounts: {} is left mounted", m.display()));
        }
    }
}

/// Every `"dnat": {"addr": …}` address in berth's nftables table (empty when it has none).
fn dnat_addrs(table: &str) -> Option<BTreeSet<String>> {
    let out = Command::new("nft")
        .args(["-j", "list", "table", "ip", table])
        .output()
        .ok()?;
    if !out.status.success() {
        // No table: nothing forwarded.
        return Some(BTreeSet::new());
    }
    let v: Value = serde_json::from_slice(&out.stdout).ok()?;
    let mut addrs = BTreeSet::new();
    fn walk(v: &Value, out: &mut BTreeSet<String>) {
        match v {
            Value::Object(m) => {
                if let Some(dnat) = m.get("dnat")
                    && let Some(a) = dnat.get("addr")
                {
                    out.insert(a.as_str().map_or_else(|| a.to_string(), str::to_string));
                }
                for x in m.values() {
                    walk(x, out);
                }
            }
            Value::Array(a) => {
                for x in a {
                    walk(x, out);
                }
            }
            _ => {}
        }
    }
    walk(&v, &mut addrs);
    Some(addrs)
}

/// The bridge's ports are exactly the running containers' veths; DNAT only to running
/// containers with published ports (and to each of them); addresses unique.
fn check_network(d: &TestDaemon, ctrs: &[DiskCtr], p: &mut Vec<String>) {
    let mut want_veths = BTreeSet::new();
    let mut ips: BTreeMap<String, String> = BTreeMap::new();
    let mut want_dnat = BTreeSet::new();
    let mut ok_dnat = BTreeSet::new();
    for c in ctrs.iter().filter(|c| c.running()) {
        for (ip, ifname) in c.endpoints() {
            if !ifname.is_empty() {
                want_veths.insert(ifname);
            }
            if ip.is_empty() {
                continue;
            }
            if let Some(other) = ips.insert(ip.clone(), c.id.clone()) {
                p.push(format!("network: {ip} held by {other} and {}", c.id));
            }
            ok_dnat.insert(ip.clone());
            if c.has_ports() {
                want_dnat.insert(ip);
            }
        }
    }
    // Only the default bridge is the daemon's own; veths on user networks' bridges are
    // counted through the records above.
    let on_bridge: BTreeSet<String> = crate::daemon::bridge_ports(&d.bridge).into_iter().collect();
    for v in &on_bridge {
        if !want_veths.contains(v) {
            p.push(format!(
                "network: {v} on {} belongs to no running container",
                d.bridge
            ));
        }
    }
    for c in ctrs.iter().filter(|c| c.running()) {
        for (_, ifname) in c.endpoints() {
            if !ifname.is_empty() && !Path::new("/sys/class/net").join(&ifname).exists() {
                p.push(format!("network: running {} lost its veth {ifname}", c.id));
            }
        }
    }
    match dnat_addrs(&format!("berth-{}", d.bridge)) {
        None => p.push("network: cannot read berth's nftables table".to_string()),
        Some(addrs) => {
            for a in &addrs {
                if !ok_dnat.contains(a) {
                    p.push(format!(
                        "network: DNAT to {a}, which no running container has"
                    ));
                }
            }
            for a in &want_dnat {
                if !addrs.contains(a) {
                    p.push(format!(
                        "network: no DNAT for running {a}'s published ports"
                    ));
                }
            }
        }
    }
}

/// The daemon answers, and `docker ps -a` / `docker images` agree with the records on disk.
fn check_api(
    d: &TestDaemon,
    ctrs: &[DiskCtr],
    images: &BTreeMap<String, DiskImage>,
    p: &mut Vec<String>,
) {
    let out = d.docker(&["ps", "-a", "--no-trunc", "--format", "{{.ID}} {{.State}}"]);
    if !out.status.success() {
        p.push(format!(
            "api: docker ps -a failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
        return;
    }
    let listed: BTreeMap<String, String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    let on_disk: BTreeSet<&String> = ctrs.iter().map(|c| &c.id).collect();
    let in_api: BTreeSet<&String> = listed.keys().collect();
    if on_disk != in_api {
        p.push(format!(
            "api: docker ps -a lists {in_api:?}, the data root holds {on_disk:?}"
        ));
    }
    for c in ctrs {
        if let Some(state) = listed.get(&c.id) {
            let api_running = matches!(state.as_str(), "running" | "paused");
            if api_running != c.running() {
                p.push(format!(
                    "api: {} is {state} in docker ps, running={} on disk",
                    c.id,
                    c.running()
                ));
            }
        }
    }
    let out = d.docker(&["images", "-a", "-q", "--no-trunc"]);
    if !out.status.success() {
        p.push(format!(
            "api: docker images failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
        return;
    }
    let listed: BTreeSet<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim().trim_start_matches("sha256:").to_string())
        .filter(|l| !l.is_empty())
        .collect();
    let on_disk: BTreeSet<String> = images.values().map(|i| i.id.clone()).collect();
    if listed != on_disk {
        p.push(format!(
            "api: docker images lists {listed:?}, the data root holds {on_disk:?}"
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_escapes_decode() {
        assert_eq!(unescape(r"/a\040b/c"), "/a b/c");
        assert_eq!(unescape(r"/plain"), "/plain");
        assert_eq!(unescape(r"/end\"), "/end\\");
    }

    #[test]
    fn content_check_flags_bad_blobs_and_ingests() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = dir.path().join("content/blobs/sha256");
        std::fs::create_dir_all(&blobs).unwrap();
        std::fs::create_dir_all(dir.path().join("content/ingest")).unwrap();
        let good = sha256_hex(b"good");
        std::fs::write(blobs.join(&good), b"good").unwrap();
        std::fs::write(blobs.join("a".repeat(64)), b"bad").unwrap();
        std::fs::write(dir.path().join("content/ingest/x"), b"partial").unwrap();
        let mut p = Vec::new();
        let ok = check_content(dir.path(), &mut p);
        assert_eq!(ok.into_iter().collect::<Vec<_>>(), vec![good]);
        assert_eq!(p.len(), 2, "{p:?}");
    }
}
