//! `docker load`: docker-archive (old and docker 25+ layouts) and OCI image layouts.
//!
//! The outer tar is streamed once. Small JSON files are kept in memory; every other blob or
//! layer is decompressed (if needed) into the content store while being hashed, so the store
//! holds layer tars by diff ID. Then the manifests are checked against what was written, the
//! layers unpacked (in parallel), and only then are records and tags written.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufReader, Read};

use serde::Deserialize;
use storage::digest::Hasher;
use storage::{Digest, Ingest};

use crate::import::{BUF, copy_large, host_arch};
use crate::made::Made;
use crate::service::{ImageService, LoadEvent};
use crate::{ImageConfig, ImagesError, Reference, Result};

/// JSON files up to this size are kept in memory.
const MAX_SMALL: u64 = 8 << 20;
/// Progress is reported every this many bytes.
const PROGRESS_STEP: u64 = 512 << 10;

fn bad(msg: impl Into<String>) -> ImagesError {
    ImagesError::InvalidArchive(msg.into())
}

/// What was seen for one file of the archive.
#[derive(Debug, Clone)]
struct FileInfo {
    /// Digest of the bytes as they were in the archive.
    raw: Digest,
    /// Digest of the (decompressed) blob written to the content store, if it was written.
    stored: Option<Digest>,
}

/// Normalises an archive path: drops `.` and empty components; refuses `..` and absolute paths.
fn clean_path(p: &str) -> Result<String> {
    if p.starts_with('/') {
        return Err(bad(format!("absolute path {p:?} in archive")));
    }
    let mut parts = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => return Err(bad(format!("path {p:?} escapes the archive"))),
            c => parts.push(c),
        }
    }
    if parts.is_empty() {
        return Err(bad(format!("empty path {p:?} in archive")));
    }
    Ok(parts.join("/"))
}

/// Resolves a symlink target relative to the link's directory, staying inside the archive.
fn resolve_link(link: &str, target: &str, hard: bool) -> Result<String> {
    if target.starts_with('/') {
        return Err(bad(format!("link {link:?} points outside the archive")));
    }
    let mut parts: Vec<&str> = if hard {
        Vec::new()
    } else {
        let mut v: Vec<&str> = link.split('/').collect();
        v.pop();
        v
    };
    for c in target.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err(bad(format!("link {link:?} points outside the archive")));
                }
            }
            c => parts.push(c),
        }
    }
    Ok(parts.join("/"))
}

/// Reads `r` in 1 MiB chunks into the channel, reusing the buffers sent back.
fn produce(
    mut r: impl Read,
    tx: &std::sync::mpsc::SyncSender<std::io::Result<Vec<u8>>>,
    back: &std::sync::mpsc::Receiver<Vec<u8>>,
) {
    loop {
        let mut buf = back.try_recv().unwrap_or_default();
        buf.resize(BUF, 0);
        let mut n = 0;
        while n < buf.len() {
            match r.read(&mut buf[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            }
        }
        if n == 0 {
            return;
        }
        buf.truncate(n);
        if tx.send(Ok(buf)).is_err() {
            return;
        }
    }
}

/// The consuming end of [`produce`].
struct ChanReader {
    rx: std::sync::mpsc::Receiver<std::io::Result<Vec<u8>>>,
    back: std::sync::mpsc::Sender<Vec<u8>>,
    buf: Vec<u8>,
    pos: usize,
}

impl Read for ChanReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.pos == self.buf.len() {
            match self.rx.recv() {
                Ok(Ok(next)) => {
                    let old = std::mem::replace(&mut self.buf, next);
                    self.pos = 0;
                    if old.capacity() > 0 {
                        let _ = self.back.send(old);
                    }
                }
                Ok(Err(e)) => return Err(e),
                Err(_) => return Ok(0),
            }
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// A reader that hashes and counts what passes, and reports progress.
struct Tracked<'a, R> {
    inner: R,
    hasher: Option<Hasher>,
    count: u64,
    next_report: u64,
    total: u64,
    id: String,
    events: &'a mut dyn FnMut(LoadEvent),
}

impl<R: Read> Read for Tracked<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(h) = &mut self.hasher {
            h.update(&buf[..n]);
        }
        self.count += n as u64;
        if self.count >= self.next_report || (n == 0 && self.count > 0) {
            self.next_report = self.count + PROGRESS_STEP;
            (self.events)(LoadEvent::Progress {
                id: self.id.clone(),
                status: "Loading layer".into(),
                current: self.count,
                total: self.total,
            });
        }
        Ok(n)
    }
}

enum Kind {
    Plain,
    Gzip,
    Zstd,
}

fn sniff(head: &[u8]) -> Kind {
    if head.starts_with(&[0x1f, 0x8b]) {
        Kind::Gzip
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Kind::Zstd
    } else {
        Kind::Plain
    }
}

fn looks_like_json(path: &str, head: &[u8]) -> bool {
    if matches!(
        path,
        "manifest.json" | "index.json" | "repositories" | "oci-layout"
    ) {
        return true;
    }
    if head.len() >= 262 && &head[257..262] == b"ustar" {
        return false;
    }
    matches!(
        head.iter().find(|b| !b.is_ascii_whitespace()),
        Some(b'{' | b'[')
    )
}

fn short_id(path: &str) -> String {
    let name = if path.ends_with("/layer.tar") {
        path.split('/').rev().nth(1).unwrap_or(path)
    } else {
        path.rsplit('/').next().unwrap_or(path)
    };
    name.chars().take(12).collect()
}

/// Streams the outer archive; returns the files seen and the small JSON ones in memory.
struct Scan {
    files: HashMap<String, FileInfo>,
    small: HashMap<String, Vec<u8>>,
    links: HashMap<String, String>,
}

/// Reads the archive, writing every blob into the content store; the digests of the blobs it
/// made (not there before) go to `made`, even when it fails.
fn scan(
    svc: &ImageService,
    r: impl Read,
    events: &mut dyn FnMut(LoadEvent),
    made: &mut Vec<Digest>,
) -> Result<Scan> {
    let mut ar = tar::Archive::new(r);
    let mut out = Scan {
        files: HashMap::new(),
        small: HashMap::new(),
        links: HashMap::new(),
    };
    let arch = |e: std::io::Error| bad(e.to_string());
    for entry in ar.entries().map_err(arch)? {
        let mut e = entry.map_err(arch)?;
        let raw_path = String::from_utf8_lossy(&e.path_bytes()).into_owned();
        let kind = e.header().entry_type();
        if kind.is_dir() && (raw_path.starts_with('/') || raw_path.split('/').any(|c| c == "..")) {
            return Err(bad(format!("path {raw_path:?} escapes the archive")));
        }
        if kind.is_dir() || kind.is_pax_global_extensions() || kind.is_pax_local_extensions() {
            continue;
        }
        let path = clean_path(&raw_path)?;
        if kind.is_symlink() || kind.is_hard_link() {
            let target = e
                .link_name_bytes()
                .map(|t| String::from_utf8_lossy(&t).into_owned())
                .ok_or_else(|| bad(format!("link {path:?} without target")))?;
            let t = resolve_link(&path, &target, kind.is_hard_link())?;
            out.links.insert(path, t);
            continue;
        }
        if !kind.is_file() {
            continue;
        }
        let interesting = path.starts_with("blobs/")
            || path.ends_with(".tar")
            || path.ends_with(".json")
            || path == "repositories"
            || path == "oci-layout";
        if !interesting {
            continue;
        }
        let size = e.size();
        let mut head = vec![0u8; size.min(512) as usize];
        e.read_exact(&mut head).map_err(arch)?;
        if size <= MAX_SMALL && looks_like_json(&path, &head) {
            let mut data = head;
            data.reserve((size as usize).saturating_sub(data.len()));
            e.read_to_end(&mut data).map_err(arch)?;
            if data.len() as u64 != size {
                return Err(bad(format!("truncated entry {path:?}")));
            }
            let raw = Digest::of(&data);
            out.files
                .insert(path.clone(), FileInfo { raw, stored: None });
            out.small.insert(path, data);
            continue;
        }
        // A layer or other blob: decompress into the content store.
        let kind = sniff(&head);
        let plain = matches!(kind, Kind::Plain);
        let mut tracked = Tracked {
            inner: std::io::Cursor::new(head).chain(&mut e),
            hasher: if plain { None } else { Some(Hasher::default()) },
            count: 0,
            next_report: 0,
            total: size,
            id: short_id(&path),
            events: &mut *events,
        };
        let Ingest::Writer(mut w) = svc.content.ingest(None)? else {
            return Err(bad("unexpected existing ingest"));
        };
        match kind {
            Kind::Plain => copy_large(&mut tracked, &mut w)?,
            Kind::Gzip => {
                let mut d =
                    flate2::read::MultiGzDecoder::new(BufReader::with_capacity(BUF, &mut tracked));
                copy_large(&mut d, &mut w)?
            }
            Kind::Zstd => {
                let mut d = zstd::stream::read::Decoder::new(&mut tracked)
                    .map_err(|e| bad(format!("{path}: {e}")))?;
                copy_large(&mut d, &mut w)?
            }
        };
        // Whatever the decompressor left unread still counts for the raw digest.
        copy_large(&mut tracked, &mut std::io::sink())?;
        if tracked.count != size {
            return Err(bad(format!("truncated entry {path:?}")));
        }
        let hasher = tracked.hasher.take();
        let (stored, new) = w.commit_new(None, None)?;
        if new {
            made.push(stored.clone());
        }
        let raw = match hasher {
            Some(h) => h.finish(),
            None => stored.clone(),
        };
        out.files.insert(
            path,
            FileInfo {
                raw,
                stored: Some(stored),
            },
        );
    }
    Ok(out)
}

impl Scan {
    fn resolve<'a>(&'a self, path: &'a str) -> &'a str {
        let mut p = path;
        for _ in 0..16 {
            match self.links.get(p) {
                Some(t) => p = t,
                None => break,
            }
        }
        p
    }

    fn small(&self, path: &str) -> Result<&[u8]> {
        let p = clean_path(path)?;
        let p = self.resolve(&p);
        self.small
            .get(p)
            .map(Vec::as_slice)
            .ok_or_else(|| bad(format!("{path} not found in archive")))
    }

    fn file(&self, path: &str) -> Result<&FileInfo> {
        let p = clean_path(path)?;
        let p = self.resolve(&p);
        self.files
            .get(p)
            .ok_or_else(|| bad(format!("{path} not found in archive")))
    }
}

/// One image found in the archive, verified.
struct Found {
    id: Digest,
    config_bytes: Vec<u8>,
    config: ImageConfig,
    tags: Vec<Reference>,
}

fn parse_config(bytes: &[u8]) -> Result<(Digest, ImageConfig)> {
    let id = Digest::of(bytes);
    let config: ImageConfig =
        serde_json::from_slice(bytes).map_err(|e| ImagesError::InvalidConfig {
            id: id.to_string(),
            reason: e.to_string(),
        })?;
    Ok((id, config))
}

/// Checks that the layers (as stored) are the config's diff IDs.
fn check_layers(
    id: &Digest,
    config: &ImageConfig,
    stored: &[(String, Option<Digest>)],
) -> Result<()> {
    let diff_ids = &config.rootfs.diff_ids;
    if stored.len() != diff_ids.len() {
        return Err(ImagesError::InvalidConfig {
            id: id.to_string(),
            reason: format!("{} layers but {} diff_ids", stored.len(), diff_ids.len()),
        });
    }
    for ((path, s), want) in stored.iter().zip(diff_ids) {
        match s {
            Some(s) if s == want => {}
            Some(s) => {
                return Err(ImagesError::InvalidConfig {
                    id: id.to_string(),
                    reason: format!("layer {path} has diff ID {s}, expected {want}"),
                });
            }
            None => return Err(bad(format!("layer {path} is not a layer tar"))),
        }
    }
    Ok(())
}

#[derive(Deserialize)]
struct ArchiveEntry {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers", default)]
    layers: Vec<String>,
}

fn docker_archive(scan: &Scan, manifest: &[u8]) -> Result<Vec<Found>> {
    let entries: Vec<ArchiveEntry> =
        serde_json::from_slice(manifest).map_err(|e| bad(format!("manifest.json: {e}")))?;
    let mut found = Vec::new();
    for ent in entries {
        let (id, config) = parse_config(scan.small(&ent.config)?)?;
        let mut stored = Vec::new();
        for l in &ent.layers {
            stored.push((l.clone(), scan.file(l)?.stored.clone()));
        }
        check_layers(&id, &config, &stored)?;
        let mut tags = Vec::new();
        for t in ent.repo_tags.unwrap_or_default() {
            tags.push(Reference::parse_normalized(&t)?.with_default_tag());
        }
        found.push(Found {
            id,
            config_bytes: scan.small(&ent.config)?.to_vec(),
            config,
            tags,
        });
    }
    Ok(found)
}

#[derive(Deserialize, Clone)]
struct Platform {
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    os: String,
}

#[derive(Deserialize, Clone)]
struct Descriptor {
    #[serde(rename = "mediaType", default)]
    media_type: String,
    digest: Digest,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    #[serde(default)]
    platform: Option<Platform>,
}

#[derive(Deserialize)]
struct IndexOrManifest {
    #[serde(default)]
    manifests: Option<Vec<Descriptor>>,
    #[serde(default)]
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Vec<Descriptor>,
}

fn blob_of(d: &Digest) -> String {
    format!("blobs/sha256/{}", d.hex())
}

fn verified_small<'a>(scan: &'a Scan, d: &Digest) -> Result<&'a [u8]> {
    let data = scan.small(&blob_of(d))?;
    if Digest::of(data) != *d {
        return Err(bad(format!("blob {d} does not match its digest")));
    }
    Ok(data)
}

fn tag_from_annotations(ann: &BTreeMap<String, String>) -> Option<Reference> {
    if let Some(n) = ann.get("io.containerd.image.name") {
        return Reference::parse_normalized(n)
            .ok()
            .map(|r| r.with_default_tag());
    }
    let n = ann.get("org.opencontainers.image.ref.name")?;
    if n.contains(':') || n.contains('/') {
        return Reference::parse_normalized(n)
            .ok()
            .map(|r| r.with_default_tag());
    }
    None
}

/// Follows a descriptor down to one image manifest for our platform.
fn oci_image(
    scan: &Scan,
    desc: &Descriptor,
    depth: u32,
) -> Result<Option<(Digest, ImageConfig, Vec<u8>)>> {
    if depth > 4 {
        return Err(bad("index nesting too deep"));
    }
    let data = verified_small(scan, &desc.digest)?;
    let m: IndexOrManifest =
        serde_json::from_slice(data).map_err(|e| bad(format!("manifest {}: {e}", desc.digest)))?;
    if let Some(children) = m.manifests {
        let usable: Vec<&Descriptor> = children
            .iter()
            .filter(|c| {
                c.annotations
                    .get("vnd.docker.reference.type")
                    .map(String::as_str)
                    != Some("attestation-manifest")
            })
            .collect();
        let pick = usable
            .iter()
            .find(|c| {
                c.platform
                    .as_ref()
                    .is_some_and(|p| p.os == "linux" && p.architecture == host_arch())
            })
            .or_else(|| usable.iter().find(|c| c.platform.is_none()))
            .or_else(|| {
                if usable.len() == 1 {
                    usable.first()
                } else {
                    None
                }
            });
        return match pick {
            Some(c) => oci_image(scan, c, depth + 1),
            None => Ok(None),
        };
    }
    let cfg_desc = m
        .config
        .ok_or_else(|| bad(format!("manifest {} has no config", desc.digest)))?;
    let cfg_bytes = verified_small(scan, &cfg_desc.digest)?;
    let (id, config) = parse_config(cfg_bytes)?;
    let mut stored = Vec::new();
    for l in &m.layers {
        let path = blob_of(&l.digest);
        let f = scan.file(&path)?;
        if f.raw != l.digest {
            return Err(bad(format!("layer {} does not match its digest", l.digest)));
        }
        let _ = &l.media_type;
        stored.push((path, f.stored.clone()));
    }
    check_layers(&id, &config, &stored)?;
    Ok(Some((id, config, cfg_bytes.to_vec())))
}

fn oci_layout(scan: &Scan, index: &[u8]) -> Result<Vec<Found>> {
    let idx: IndexOrManifest =
        serde_json::from_slice(index).map_err(|e| bad(format!("index.json: {e}")))?;
    let mut found: Vec<Found> = Vec::new();
    for d in idx.manifests.unwrap_or_default() {
        let Some((id, config, config_bytes)) = oci_image(scan, &d, 0)? else {
            continue;
        };
        let tag = tag_from_annotations(&d.annotations);
        match found.iter_mut().find(|f| f.id == id) {
            Some(f) => f.tags.extend(tag.filter(|t| !f.tags.contains(t))),
            None => found.push(Found {
                id,
                config_bytes,
                config,
                tags: tag.into_iter().collect(),
            }),
        }
    }
    if found.is_empty() {
        return Err(bad("no image for this platform in index.json"));
    }
    Ok(found)
}

pub(crate) fn load(
    svc: &ImageService,
    archive: impl Read + Send,
    events: &mut dyn FnMut(LoadEvent),
) -> Result<()> {
    let mut made = Made::default();
    let result = load_blobs(svc, archive, events, &mut made);
    if result.is_err() {
        crate::made::forget_unused(svc, &made);
    }
    result
}

fn load_blobs(
    svc: &ImageService,
    archive: impl Read + Send,
    events: &mut dyn FnMut(LoadEvent),
    made: &mut Made,
) -> Result<()> {
    let (_, r) = storage::layer::decompress(BufReader::with_capacity(BUF, archive))?;
    // Decompress on another thread while this one hashes and writes.
    let scan = std::thread::scope(|s| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<std::io::Result<Vec<u8>>>(4);
        let (back_tx, back_rx) = std::sync::mpsc::channel::<Vec<u8>>();
        s.spawn(move || produce(r, &tx, &back_rx));
        let reader = ChanReader {
            rx,
            back: back_tx,
            buf: Vec::new(),
            pos: 0,
        };
        scan(svc, reader, events, &mut made.blobs)
    })?;
    let found = if let Some(m) = scan.small.get("manifest.json") {
        docker_archive(&scan, m)?
    } else if let Some(i) = scan.small.get("index.json") {
        oci_layout(&scan, i)?
    } else {
        return Err(bad("neither manifest.json nor index.json found"));
    };
    let _gc = svc.gc_shared();
    // A concurrent rmi may have removed a layer blob we wrote before we held the gc lock.
    for f in &found {
        for d in &f.config.rootfs.diff_ids {
            if !svc.content.exists(d) {
                return Err(bad(format!(
                    "layer {d} was removed while loading; try again"
                )));
            }
        }
    }
    for f in &found {
        for c in crate::store::chain_ids(&f.config.rootfs.diff_ids) {
            if svc.snaps.get(&c).is_none() && !made.chains.contains(&c) {
                made.chains.push(c);
            }
        }
    }
    let mut sizes = HashMap::new();
    for f in &found {
        sizes.extend(svc.unpack_layers(&f.config.rootfs.diff_ids)?);
        if !svc.content.exists(&f.id) {
            made.blobs.push(f.id.clone());
        }
        svc.content.write_blob(&f.config_bytes, Some(&f.id))?;
    }
    let mut out = Vec::new();
    {
        let _ops = svc.lock_ops();
        let mut st = svc.write();
        for f in &found {
            svc.register(&mut st, &f.id, &f.config, &sizes)?;
        }
        for f in &found {
            for (r, old) in svc.set_tags(&mut st, &f.id, &f.tags)? {
                tracing::info!(
                    "The image {} already exists, renaming the old one with ID {old} to empty string",
                    r.familiar_string()
                );
            }
            if f.tags.is_empty() {
                out.push(LoadEvent::LoadedId(f.id.clone()));
            }
            out.extend(
                f.tags
                    .iter()
                    .map(|t| LoadEvent::LoadedTag(t.familiar_string())),
            );
        }
    }
    for e in out {
        events(e);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_confined() {
        assert_eq!(clean_path("./manifest.json").unwrap(), "manifest.json");
        assert_eq!(clean_path("blobs//sha256/./ab").unwrap(), "blobs/sha256/ab");
        assert!(clean_path("../x").is_err());
        assert!(clean_path("a/../../x").is_err());
        assert!(clean_path("/etc/passwd").is_err());
        assert!(clean_path("./").is_err());
        assert_eq!(
            resolve_link("a/layer.tar", "../b/layer.tar", false).unwrap(),
            "b/layer.tar"
        );
        assert_eq!(
            resolve_link("a/layer.tar", "b/layer.tar", true).unwrap(),
            "b/layer.tar"
        );
        assert!(resolve_link("a/layer.tar", "../../x", false).is_err());
        assert!(resolve_link("a", "/etc/passwd", false).is_err());
    }

    #[test]
    fn sniffing() {
        assert!(looks_like_json("blobs/sha256/x", b"  {\"a\":1}"));
        assert!(looks_like_json("manifest.json", b"garbage"));
        assert!(!looks_like_json("blobs/sha256/x", &[0x1f, 0x8b, 8]));
        let mut tar_head = vec![b'{'; 512];
        tar_head[257..262].copy_from_slice(b"ustar");
        assert!(!looks_like_json("x.tar", &tar_head));
        assert!(matches!(sniff(&[0x1f, 0x8b]), Kind::Gzip));
        assert!(matches!(sniff(&[0x28, 0xb5, 0x2f, 0xfd]), Kind::Zstd));
        assert!(matches!(sniff(b"abc"), Kind::Plain));
        assert_eq!(short_id("0123456789abcdef/layer.tar"), "0123456789ab");
        assert_eq!(short_id("blobs/sha256/fedcba9876543210"), "fedcba987654");
    }

    #[test]
    fn channel_reader_passes_everything_through() {
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        let got = std::thread::scope(|s| {
            let (tx, rx) = std::sync::mpsc::sync_channel(2);
            let (back_tx, back_rx) = std::sync::mpsc::channel();
            let src = &data[..];
            s.spawn(move || produce(src, &tx, &back_rx));
            let mut r = ChanReader {
                rx,
                back: back_tx,
                buf: Vec::new(),
                pos: 0,
            };
            let mut out = Vec::new();
            r.read_to_end(&mut out).unwrap();
            out
        });
        assert_eq!(got, data);
    }
}
