//! Fixture images: the real archives in `../shared/images` when present, and a busybox image
//! made here from Debian's busybox-static when they are not.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

/// `../shared/images` beside the project, if it exists.
pub fn shared_images_dir() -> Option<PathBuf> {
    let dir = crate::workspace_root()
        .parent()?
        .join("shared")
        .join("images");
    dir.is_dir().then_some(dir)
}

/// A file from `../shared/images`, if present.
pub fn shared_image(name: &str) -> Option<PathBuf> {
    let path = shared_images_dir()?.join(name);
    path.is_file().then_some(path)
}

/// A docker-save archive holding `busybox:latest`: the shared one, or one built into `dir`
/// from `/bin/busybox` (Debian's busybox-static) so tests run where `../shared` is absent.
pub fn busybox_archive(dir: &Path) -> PathBuf {
    if let Some(p) = shared_image("busybox.tar") {
        return p;
    }
    build_busybox_archive(dir, Path::new("/bin/busybox"), "busybox:latest")
        .expect("build a busybox image from /bin/busybox (install busybox-static)")
}

/// A plain root filesystem tar of busybox (for `import`): the shared one, or one built into `dir`.
pub fn busybox_rootfs(dir: &Path) -> PathBuf {
    if let Some(p) = shared_image("busybox-rootfs.tar") {
        return p;
    }
    let out = dir.join("busybox-rootfs.tar");
    let layer = busybox_layer(Path::new("/bin/busybox")).expect("build busybox rootfs");
    std::fs::write(&out, layer).expect("write busybox rootfs");
    out
}

fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(data))
}

/// The applets linked in `/bin` of the made image: every one the binary lists
/// (`busybox --list`, as the real image has them), or this small set if it can't say.
fn applets(busybox: &Path) -> Vec<String> {
    std::process::Command::new(busybox)
        .arg("--list")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && *l != "busybox" && !l.contains('/'))
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .filter(|l| !l.is_empty())
        .unwrap_or_else(|| APPLETS.iter().map(|a| (*a).to_string()).collect())
}

/// The fallback applet set of the made image.
const APPLETS: &[&str] = &[
    "sh", "ls", "cat", "echo", "true", "false", "sleep", "id", "env", "mkdir", "rm", "touch", "ps",
    "top", "hostname", "wc", "head", "tail", "grep", "sed", "find", "stat", "uname",
];

fn busybox_layer(busybox: &Path) -> std::io::Result<Vec<u8>> {
    let mut b = tar::Builder::new(Vec::new());
    let dir = |b: &mut tar::Builder<Vec<u8>>, name: &str, mode: u32| -> std::io::Result<()> {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(mode);
        h.set_size(0);
        h.set_mtime(0);
        b.append_data(&mut h, name, std::io::empty())
    };
    for (d, mode) in [
        ("bin", 0o755),
        ("etc", 0o755),
        ("tmp", 0o1777),
        ("root", 0o700),
    ] {
        dir(&mut b, d, mode)?;
    }
    let data = std::fs::read(busybox)?;
    let mut h = tar::Header::new_gnu();
    h.set_mode(0o755);
    h.set_size(data.len() as u64);
    h.set_mtime(0);
    b.append_data(&mut h, "bin/busybox", data.as_slice())?;
    for applet in applets(busybox) {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_mode(0o777);
        h.set_size(0);
        h.set_mtime(0);
        b.append_link(&mut h, format!("bin/{applet}"), "busybox")?;
    }
    for (name, text) in [
        (
            "etc/passwd",
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n",
        ),
        ("etc/group", "root:x:0:\nnogroup:x:65534:\n"),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_size(text.len() as u64);
        h.set_mtime(0);
        b.append_data(&mut h, name, text.as_bytes())?;
    }
    b.into_inner()
}

/// Builds a docker-save archive (docker 25+ layout) of a one-layer busybox image.
pub fn build_busybox_archive(dir: &Path, busybox: &Path, tag: &str) -> std::io::Result<PathBuf> {
    let layer = busybox_layer(busybox)?;
    let diff = sha256_hex(&layer);
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "created": "2026-01-01T00:00:00Z",
        "config": {"Cmd": ["sh"], "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]},
        "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{diff}")]},
        "history": [{"created": "2026-01-01T00:00:00Z", "created_by": "berth test-support busybox"}]
    })
    .to_string();
    let config_hex = sha256_hex(config.as_bytes());
    let manifest = serde_json::json!([{
        "Config": format!("blobs/sha256/{config_hex}"),
        "RepoTags": [tag],
        "Layers": [format!("blobs/sha256/{diff}")],
    }])
    .to_string();
    let out = dir.join("busybox-made.tar");
    let mut b = tar::Builder::new(File::create(&out)?);
    let mut add = |name: &str, data: &[u8]| -> std::io::Result<()> {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        h.set_mtime(0);
        b.append_data(&mut h, name, data)
    };
    add(&format!("blobs/sha256/{config_hex}"), config.as_bytes())?;
    add(&format!("blobs/sha256/{diff}"), &layer)?;
    add("manifest.json", manifest.as_bytes())?;
    b.into_inner()?.flush()?;
    Ok(out)
}

/// The images a docker-save archive (plain or gzip) declares: `(RepoTags, image ID)` per entry
/// of its manifest.json, the ID being `sha256:` + the config blob's name.
pub fn archive_images(path: &Path) -> Vec<(Vec<String>, String)> {
    let file = File::open(path).expect("open archive");
    let mut head = [0u8; 2];
    let gz = {
        use std::io::Read;
        File::open(path)
            .and_then(|mut f| f.read_exact(&mut head))
            .is_ok()
            && head == [0x1f, 0x8b]
    };
    let reader: Box<dyn std::io::Read> = if gz {
        Box::new(flate2::read::GzDecoder::new(file))
    } else {
        Box::new(file)
    };
    let mut ar = tar::Archive::new(reader);
    for entry in ar.entries().expect("entries") {
        let entry = entry.expect("entry");
        if entry.path().expect("path").to_str() == Some("manifest.json") {
            let manifest: serde_json::Value = serde_json::from_reader(entry).expect("manifest");
            return manifest
                .as_array()
                .expect("manifest array")
                .iter()
                .map(|m| {
                    let tags = m["RepoTags"]
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .filter_map(|t| t.as_str().map(String::from))
                                .collect()
                        })
                        .unwrap_or_default();
                    let config = m["Config"].as_str().expect("Config");
                    let hex = config
                        .trim_start_matches("blobs/sha256/")
                        .trim_end_matches(".json");
                    (tags, format!("sha256:{hex}"))
                })
                .collect();
        }
    }
    panic!("{} has no manifest.json", path.display());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_busybox_archive_is_a_docker_save_tar() {
        let dir = tempfile::tempdir().unwrap();
        // Any executable stands in for busybox here; only the archive's shape is checked.
        let fake = dir.path().join("busybox");
        std::fs::write(&fake, b"#!/bin/true\n").unwrap();
        let out = build_busybox_archive(dir.path(), &fake, "busybox:latest").unwrap();
        let mut names = Vec::new();
        let mut ar = tar::Archive::new(File::open(out).unwrap());
        for e in ar.entries().unwrap() {
            names.push(e.unwrap().path().unwrap().display().to_string());
        }
        assert!(names.contains(&"manifest.json".to_string()));
        assert_eq!(
            names
                .iter()
                .filter(|n| n.starts_with("blobs/sha256/"))
                .count(),
            2
        );
    }
}
