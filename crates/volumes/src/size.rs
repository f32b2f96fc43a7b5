//! Disk usage of a volume's data (`system df`): file sizes, each inode counted once, symlinks
//! never followed.

use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// The bytes of the regular files (and symlinks) under `dir`, hard links counted once, as
/// moby's `directory.Size`. Unreadable entries are skipped.
pub(crate) fn dir_size(dir: &Path) -> u64 {
    let mut seen = HashSet::new();
    let mut total = 0u64;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(meta) = entry.metadata() else {
                continue;
            };
            if meta.is_dir() {
                stack.push(entry.path());
                continue;
            }
            if meta.nlink() > 1 && !seen.insert((meta.dev(), meta.ino())) {
                continue;
            }
            total = total.saturating_add(meta.len());
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_files_once_and_skips_symlink_targets() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("a"), vec![0u8; 100]).unwrap();
        std::fs::create_dir(d.join("sub")).unwrap();
        std::fs::write(d.join("sub/b"), vec![0u8; 50]).unwrap();
        std::fs::hard_link(d.join("a"), d.join("sub/a-link")).unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("big"), vec![0u8; 10_000]).unwrap();
        std::os::unix::fs::symlink(outside.path(), d.join("out")).unwrap();
        let link_len = std::fs::symlink_metadata(d.join("out")).unwrap().len();
        assert_eq!(dir_size(d), 150 + link_len);
    }
}
