//! Build-cache keys. A step's key is a SHA-256 over the parent image ID, the step's normalised
//! text (after substitution), the build args that reach it (the `|N k=v` list moby records for
//! RUN) and, for COPY/ADD, a content hash of the files copied. The file-tree hash takes entries
//! from the caller (the engine walks the context or a stage's rootfs): path, type, mode,
//! uid/gid, size, link target and content; never mtimes, so a fresh checkout hits the cache.
//! Every field is length-prefixed so no two different inputs share an encoding; the entries
//! are sorted by path, so the walk order does not matter.
//!
//! Owns: the key format (versioned). Must not know: where keys are stored (the backend's
//! `cache_lookup`/`cache_record`) or how files are read.

use std::io::{self, Read};

use sha2::{Digest, Sha256};

/// Bumped whenever the encoding changes, so old entries simply miss.
const VERSION: &[u8] = b"berth-build-cache/v1";

/// A step's cache key, `sha256:<hex>`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CacheKey(pub String);

impl std::fmt::Display for CacheKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn field(h: &mut Sha256, bytes: &[u8]) {
    h.update((bytes.len() as u64).to_be_bytes());
    h.update(bytes);
}

/// The key of a step on top of `parent` (an image ID; empty for `scratch`).
pub fn step_key(
    parent: &str,
    instruction: &str,
    build_args: &[String],
    content: Option<&str>,
) -> CacheKey {
    let mut h = Sha256::new();
    field(&mut h, VERSION);
    field(&mut h, parent.as_bytes());
    field(&mut h, instruction.as_bytes());
    h.update((build_args.len() as u64).to_be_bytes());
    for a in build_args {
        field(&mut h, a.as_bytes());
    }
    match content {
        Some(c) => {
            h.update([1]);
            field(&mut h, c.as_bytes());
        }
        None => h.update([0]),
    }
    CacheKey(format!("sha256:{}", hex::encode(h.finalize())))
}

/// What a tree entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular file (its content is read).
    File,
    /// A directory.
    Dir,
    /// A symbolic link and its target.
    Symlink(String),
    /// Anything else (devices, fifos), by type name and device number.
    Other(String),
}

/// One file's metadata as the hash sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Path relative to the copy's root, `/`-separated.
    pub path: String,
    /// The type.
    pub kind: EntryKind,
    /// Permission bits (and setuid/setgid/sticky).
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Size in bytes (files).
    pub size: u64,
}

/// Hashes a tree given as (entry, content) pairs, in any order; `content` is read for files
/// only. Returns `sha256:<hex>`.
pub fn tree_hash<R: Read>(
    entries: impl IntoIterator<Item = (Entry, Option<R>)>,
) -> io::Result<String> {
    let mut digests: Vec<(String, [u8; 32])> = Vec::new();
    for (entry, content) in entries {
        let mut h = Sha256::new();
        field(&mut h, entry.path.as_bytes());
        match &entry.kind {
            EntryKind::File => field(&mut h, b"f"),
            EntryKind::Dir => field(&mut h, b"d"),
            EntryKind::Symlink(t) => {
                field(&mut h, b"l");
                field(&mut h, t.as_bytes());
            }
            EntryKind::Other(t) => {
                field(&mut h, b"o");
                field(&mut h, t.as_bytes());
            }
        }
        h.update(entry.mode.to_be_bytes());
        h.update(entry.uid.to_be_bytes());
        h.update(entry.gid.to_be_bytes());
        h.update(entry.size.to_be_bytes());
        if entry.kind == EntryKind::File {
            let mut content_hash = Sha256::new();
            let mut n = 0u64;
            if let Some(mut r) = content {
                let mut buf = [0u8; 64 * 1024];
                loop {
                    let k = r.read(&mut buf)?;
                    if k == 0 {
                        break;
                    }
                    n += k as u64;
                    content_hash.update(&buf[..k]);
                }
            }
            h.update(n.to_be_bytes());
            h.update(content_hash.finalize());
        }
        digests.push((entry.path, h.finalize().into()));
    }
    digests.sort();
    let mut h = Sha256::new();
    field(&mut h, VERSION);
    for (path, d) in &digests {
        field(&mut h, path.as_bytes());
        h.update(d);
    }
    Ok(format!("sha256:{}", hex::encode(h.finalize())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, mode: u32, data: &'static [u8]) -> (Entry, Option<&'static [u8]>) {
        (
            Entry {
                path: path.into(),
                kind: EntryKind::File,
                mode,
                uid: 0,
                gid: 0,
                size: data.len() as u64,
            },
            Some(data),
        )
    }

    fn dir(path: &str) -> (Entry, Option<&'static [u8]>) {
        (
            Entry {
                path: path.into(),
                kind: EntryKind::Dir,
                mode: 0o755,
                uid: 0,
                gid: 0,
                size: 0,
            },
            None,
        )
    }

    #[test]
    fn step_keys_are_stable_and_sensitive() {
        let a = step_key("sha256:p", "RUN [\"/bin/sh\",\"-c\",\"make\"]", &[], None);
        assert_eq!(
            a,
            step_key("sha256:p", "RUN [\"/bin/sh\",\"-c\",\"make\"]", &[], None)
        );
        // A pinned value (computed independently): the encoding must not drift silently,
        // or every user's cache would miss after an upgrade.
        assert_eq!(
            step_key("sha256:p", "RUN x", &["A=1".into()], Some("sha256:c")).0,
            "sha256:32a5f9c6a340cd282c09ba0407f2d1eec8b5f046afa08c7e05fa5aa4bab0c54a"
        );
        assert!(a.0.starts_with("sha256:") && a.0.len() == 71);
        let others = [
            step_key("sha256:q", "RUN [\"/bin/sh\",\"-c\",\"make\"]", &[], None),
            step_key(
                "sha256:p",
                "RUN [\"/bin/sh\",\"-c\",\"make all\"]",
                &[],
                None,
            ),
            step_key(
                "sha256:p",
                "RUN [\"/bin/sh\",\"-c\",\"make\"]",
                &["|1".into(), "V=1".into()],
                None,
            ),
            step_key(
                "sha256:p",
                "RUN [\"/bin/sh\",\"-c\",\"make\"]",
                &[],
                Some(""),
            ),
        ];
        for o in &others {
            assert_ne!(&a, o);
        }
        // Field boundaries matter: ("ab","c") and ("a","bc") differ.
        assert_ne!(
            step_key("ab", "c", &[], None),
            step_key("a", "bc", &[], None)
        );
        assert_ne!(
            step_key("p", "x", &["a=1".into(), "b=2".into()], None),
            step_key("p", "x", &["a=1 b=2".into()], None)
        );
    }

    #[test]
    fn tree_hash_ignores_order_and_sees_every_field() {
        let base = vec![
            dir("d"),
            file("d/a", 0o644, b"hello"),
            file("b", 0o600, b"x"),
        ];
        let h = tree_hash(base.clone()).unwrap();
        let mut rev = base.clone();
        rev.reverse();
        assert_eq!(h, tree_hash(rev).unwrap());

        let mut changed = vec![
            vec![
                dir("d"),
                file("d/a", 0o644, b"hellO"),
                file("b", 0o600, b"x"),
            ],
            vec![
                dir("d"),
                file("d/a", 0o755, b"hello"),
                file("b", 0o600, b"x"),
            ],
            vec![
                dir("d"),
                file("d/c", 0o644, b"hello"),
                file("b", 0o600, b"x"),
            ],
            vec![dir("d"), file("d/a", 0o644, b"hello")],
        ];
        let mut owned = base.clone();
        owned[1].0.uid = 1000;
        changed.push(owned);
        let mut linked = base.clone();
        linked.push((
            Entry {
                path: "l".into(),
                kind: EntryKind::Symlink("d/a".into()),
                mode: 0o777,
                uid: 0,
                gid: 0,
                size: 0,
            },
            None,
        ));
        changed.push(linked.clone());
        let mut relinked = linked;
        relinked[3].0.kind = EntryKind::Symlink("b".into());
        let h_linked = tree_hash(changed[changed.len() - 1].clone()).unwrap();
        assert_ne!(h_linked, tree_hash(relinked).unwrap());
        for c in changed {
            assert_ne!(h, tree_hash(c).unwrap());
        }
    }
}
