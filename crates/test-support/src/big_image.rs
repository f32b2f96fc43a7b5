//! A docker-archive with one big incompressible layer, for tests that need an image operation
//! (load, pull, push) slow enough to be interrupted half-way. Made here from `/dev/urandom`, so
//! such tests never depend on `../shared/images`.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

/// Writes `<dir>/<file_name>`: a docker-save archive of `tag` whose only layer holds
/// `big/data.bin` of `size` random bytes. Returns its path.
pub fn big_image_archive(
    dir: &Path,
    file_name: &str,
    tag: &str,
    size: u64,
) -> std::io::Result<PathBuf> {
    let layer_path = dir.join(format!("{file_name}.layer.tar"));
    {
        let mut b = tar::Builder::new(BufWriter::with_capacity(
            1 << 20,
            File::create(&layer_path)?,
        ));
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_size(0);
        h.set_mtime(0);
        b.append_data(&mut h, "big", std::io::empty())?;
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_size(size);
        h.set_mtime(0);
        let random = File::open("/dev/urandom")?.take(size);
        b.append_data(&mut h, "big/data.bin", random)?;
        b.into_inner()?.flush()?;
    }
    let diff = sha256_file(&layer_path)?;
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "created": "2026-01-01T00:00:00Z",
        "config": {"Cmd": ["sh"], "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]},
        "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{diff}")]},
        "history": [{"created": "2026-01-01T00:00:00Z", "created_by": format!("berth test-support {size} random bytes")}]
    })
    .to_string();
    let config_hex = {
        use sha2::Digest as _;
        hex::encode(sha2::Sha256::digest(config.as_bytes()))
    };
    let manifest = serde_json::json!([{
        "Config": format!("blobs/sha256/{config_hex}"),
        "RepoTags": [tag],
        "Layers": [format!("blobs/sha256/{diff}")],
    }])
    .to_string();
    let out = dir.join(file_name);
    let mut b = tar::Builder::new(BufWriter::with_capacity(1 << 20, File::create(&out)?));
    let mut add = |name: &str, len: u64, data: &mut dyn Read| -> std::io::Result<()> {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_size(len);
        h.set_mtime(0);
        b.append_data(&mut h, name, data)
    };
    add(
        &format!("blobs/sha256/{config_hex}"),
        config.len() as u64,
        &mut config.as_bytes(),
    )?;
    let layer_len = std::fs::metadata(&layer_path)?.len();
    add(
        &format!("blobs/sha256/{diff}"),
        layer_len,
        &mut File::open(&layer_path)?,
    )?;
    add(
        "manifest.json",
        manifest.len() as u64,
        &mut manifest.as_bytes(),
    )?;
    b.into_inner()?.flush()?;
    std::fs::remove_file(&layer_path)?;
    Ok(out)
}

/// The sha256 (hex) of a file's content.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    use sha2::Digest as _;
    let mut f = File::open(path)?;
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_declares_its_image() {
        let dir = tempfile::tempdir().unwrap();
        let out = big_image_archive(dir.path(), "big.tar", "big:latest", 4096).unwrap();
        let images = crate::fixtures::archive_images(&out);
        assert_eq!(images.len(), 1);
        assert_eq!(images[0].0, vec!["big:latest".to_string()]);
        let mut names = Vec::new();
        let mut ar = tar::Archive::new(File::open(&out).unwrap());
        for e in ar.entries().unwrap() {
            let mut e = e.unwrap();
            let name = e.path().unwrap().display().to_string();
            if let Some(hex) = name.strip_prefix("blobs/sha256/") {
                let mut data = Vec::new();
                e.read_to_end(&mut data).unwrap();
                use sha2::Digest as _;
                assert_eq!(hex::encode(sha2::Sha256::digest(&data)), hex);
            }
            names.push(name);
        }
        assert_eq!(names.len(), 3, "{names:?}");
        assert!(!dir.path().join("big.tar.layer.tar").exists());
    }
}
