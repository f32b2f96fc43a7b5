//! COPY/ADD sources: which files a source list names inside a root (the context or an image's
//! filesystem), their content hash for the cache, their tars, and how those land under the
//! destination inside a container's root — moby's copier rules: a directory's contents are
//! copied (not the directory itself), a file lands as `dest` unless `dest` ends in `/`, is an
//! existing directory or there are several sources; ADD unpacks local tar archives (plain,
//! gzip, zstd) into the destination.
//!
//! Every path is resolved inside its root (`linux::fs::Root`): `../` in a source is refused
//! with moby's "Forbidden path outside the build context", and a symlink in the context that
//! points out of it can only lead back into it. Knows nothing of containers or images: it is
//! handed roots.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use builder::{Entry, EntryKind};
use linux::fs::{FileKind, Root};
use storage::tree_tar::{self, ExtractOptions, Top};

use crate::{EngineError, Result};

/// Characters that make a source a pattern (`filepath.Match`).
fn is_pattern(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

fn bad(msg: String) -> EngineError {
    EngineError::InvalidRequest(msg)
}

/// The source cleaned as moby cleans it: relative to the root, `.` components dropped, `..`
/// outside the root refused.
fn clean(src: &str) -> Result<PathBuf> {
    let mut out: Vec<&str> = Vec::new();
    for part in src.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if out.pop().is_none() {
                    return Err(bad(format!(
                        "Forbidden path outside the build context: {src} ()"
                    )));
                }
            }
            p => out.push(p),
        }
    }
    Ok(out.iter().collect())
}

fn not_found(src: &str) -> EngineError {
    bad(format!(
        "file not found in build context or excluded by .dockerignore: stat {src}: file does not exist"
    ))
}

/// The paths a source names: itself, or every match of a pattern (component by component).
fn expand(root: &Root, src: &str) -> Result<Vec<PathBuf>> {
    let cleaned = clean(src)?;
    if !is_pattern(src) {
        return match root.resolve(&cleaned) {
            Ok(_) => Ok(vec![cleaned]),
            Err(e) if e.errno() == Some(linux::Errno::ENOENT) => Err(not_found(src)),
            Err(e) => Err(e.into()),
        };
    }
    let mut found = vec![PathBuf::new()];
    for part in cleaned.iter() {
        let part = part.to_string_lossy();
        let mut next = Vec::new();
        for base in &found {
            if !is_pattern(&part) {
                let p = base.join(&*part);
                if root.try_lstat(&p)?.is_some() {
                    next.push(p);
                }
                continue;
            }
            let Ok(names) = root.read_dir(base) else {
                continue;
            };
            let mut names: Vec<_> = names
                .into_iter()
                .filter(|n| builder::glob_match(&part, &n.to_string_lossy()))
                .collect();
            names.sort();
            next.extend(names.into_iter().map(|n| base.join(n)));
        }
        found = next;
    }
    if found.is_empty() {
        return Err(not_found(src));
    }
    Ok(found)
}

/// Every path the sources name, in order.
pub(crate) fn resolve(root: &Root, srcs: &[String]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for s in srcs {
        out.extend(expand(root, s)?);
    }
    Ok(out)
}

/// What the sources name as moby's history shows it (`file:<hex>` for one file, `dir:<hex>`
/// for one directory, `multi:<hex>` otherwise), the hex over paths, types, modes, owners,
/// sizes, link targets and contents (never mtimes).
pub(crate) fn hash(root: &Root, srcs: &[String]) -> Result<String> {
    let mut entries: Vec<(Entry, Option<File>)> = Vec::new();
    let tops = resolve(root, srcs)?;
    let prefix = match tops.as_slice() {
        [one] => match root.lstat(&root.resolve(one)?)?.kind {
            FileKind::Dir => "dir",
            _ => "file",
        },
        _ => "multi",
    };
    for top in tops {
        // The named path itself is followed (moby copies what a symlink source points to).
        let real = root.resolve(&top)?;
        let mut stack = vec![(real, top.clone())];
        while let Some((path, shown)) = stack.pop() {
            let st = root.lstat(&path)?;
            let kind = match st.kind {
                FileKind::File => EntryKind::File,
                FileKind::Dir => EntryKind::Dir,
                FileKind::Symlink => {
                    EntryKind::Symlink(root.read_link(&path)?.to_string_lossy().into_owned())
                }
                other => EntryKind::Other(format!("{other:?}:{}:{}", st.rdev_major, st.rdev_minor)),
            };
            let content = if kind == EntryKind::File {
                Some(root.open_regular(&path)?)
            } else {
                None
            };
            if kind == EntryKind::Dir {
                for name in root.read_dir(&path)? {
                    stack.push((path.join(&name), shown.join(&name)));
                }
            }
            entries.push((
                Entry {
                    path: shown.to_string_lossy().into_owned(),
                    kind,
                    mode: st.mode & 0o7777,
                    uid: st.uid,
                    gid: st.gid,
                    size: if st.kind == FileKind::File {
                        st.size
                    } else {
                        0
                    },
                },
                content,
            ));
        }
    }
    let h =
        builder::tree_hash(entries).map_err(|e| bad(format!("hashing the copy's sources: {e}")))?;
    Ok(format!("{prefix}:{}", h.trim_start_matches("sha256:")))
}

/// One source, as a tar in a temporary file, and how it lands.
#[derive(Debug)]
pub(crate) struct Staged {
    tar: File,
    /// A directory's contents (extracted into the destination directory), a file (named), or
    /// an archive ADD unpacks (extracted into the destination directory).
    kind: StagedKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum StagedKind {
    Contents,
    File(String),
    Archive,
}

/// Whether a file starts like a tar archive (plain, gzip, zstd), as ADD decides.
fn is_archive(f: &mut File) -> bool {
    let mut head = vec![0u8; 512];
    let n = f.read(&mut head).unwrap_or(0);
    let _ = f.seek(SeekFrom::Start(0));
    let head = &head[..n];
    head.starts_with(&[0x1f, 0x8b])
        || head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd])
        || (n >= 262 && &head[257..262] == b"ustar")
}

/// Writes each source's tar into a temporary file in `tmp`.
pub(crate) fn stage(root: &Root, srcs: &[String], tmp: &Path, add: bool) -> Result<Vec<Staged>> {
    let mut out = Vec::new();
    for top in resolve(root, srcs)? {
        let real = root.resolve(&top)?;
        let st = root.lstat(&real)?;
        let name = top
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if add && st.kind == FileKind::File {
            let mut src = root.open_regular(&real)?;
            if is_archive(&mut src) {
                out.push(Staged {
                    tar: src,
                    kind: StagedKind::Archive,
                });
                continue;
            }
        }
        let (kind, top_kind) = if st.kind == FileKind::Dir {
            (StagedKind::Contents, Top::Contents)
        } else {
            (
                StagedKind::File(name.clone()),
                Top::Named(name.clone().into_bytes()),
            )
        };
        out.push(Staged {
            tar: tar_file(root, &real, &top_kind, tmp)?,
            kind,
        });
    }
    Ok(out)
}

/// The tar of `rel` (named as `top` says) in a rewound temporary file in `tmp`.
fn tar_file(root: &Root, rel: &Path, top: &Top, tmp: &Path) -> Result<File> {
    let io = |op: &'static str| {
        let path = tmp.to_path_buf();
        move |source| EngineError::Io { op, path, source }
    };
    let file = tempfile::tempfile_in(tmp).map_err(io("create temporary file"))?;
    let (mut file, _) = tree_tar::write_tree(root, rel, top, file)
        .map_err(|e| EngineError::Images(images::ImagesError::Storage(e)))?;
    file.flush().map_err(io("write"))?;
    file.seek(SeekFrom::Start(0)).map_err(io("rewind"))?;
    Ok(file)
}

/// One file of `root` staged under another name (an `ADD <url>` download, named after the
/// URL's last segment).
pub(crate) fn stage_renamed(root: &Root, name: &str, shown: &str, tmp: &Path) -> Result<Staged> {
    let top = Top::Named(shown.as_bytes().to_vec());
    Ok(Staged {
        tar: tar_file(root, Path::new(name), &top, tmp)?,
        kind: StagedKind::File(shown.to_string()),
    })
}

/// Extracts the staged sources under `dest` (absolute, inside `root`).
pub(crate) fn place(
    root: &Root,
    staged: Vec<Staged>,
    dest: &str,
    owner: Option<(u32, u32)>,
    mode: Option<u32>,
) -> Result<()> {
    let into_dir = dest.ends_with('/') || staged.len() > 1;
    if staged.len() > 1 && !dest.ends_with('/') {
        return Err(bad(
            "When using COPY with more than one source file, the destination must be a directory and end with a /"
                .into(),
        ));
    }
    let rel = clean(dest)?;
    let existing_dir = root
        .resolve(&rel)
        .ok()
        .and_then(|p| root.lstat(&p).ok())
        .is_some_and(|st| st.kind == FileKind::Dir);
    let opts = ExtractOptions {
        no_overwrite_dir_non_dir: false,
        owner,
        mode,
    };
    let storage = |e| EngineError::Images(images::ImagesError::Storage(e));
    for s in staged {
        let (dir, tar): (PathBuf, Box<dyn Read>) = match &s.kind {
            StagedKind::Contents => (rel.clone(), Box::new(s.tar)),
            StagedKind::Archive => {
                let (_, plain) = storage::layer::decompress(s.tar).map_err(storage)?;
                (rel.clone(), plain)
            }
            StagedKind::File(name) if into_dir || existing_dir || rel.as_os_str().is_empty() => {
                let _ = name;
                (rel.clone(), Box::new(s.tar))
            }
            StagedKind::File(_) => {
                // Renamed: the tar's top entry becomes the destination's last name.
                let parent = rel.parent().map(Path::to_path_buf).unwrap_or_default();
                let last = rel
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                (parent, Box::new(Renamed::new(s.tar, last)))
            }
        };
        root.create_dir_all(&dir, 0o755)?;
        let real = root.resolve(&dir)?;
        tree_tar::extract(root, &real, tar, &opts).map_err(storage)?;
    }
    Ok(())
}

/// A one-file tar whose single entry is renamed (the file's header is rewritten).
struct Renamed {
    inner: File,
    name: String,
    done: bool,
    buf: Vec<u8>,
    pos: usize,
}

impl Renamed {
    fn new(inner: File, name: String) -> Self {
        Self {
            inner,
            name,
            done: false,
            buf: Vec::new(),
            pos: 0,
        }
    }

    fn rewrite(&mut self) -> std::io::Result<()> {
        let mut archive = tar::Archive::new(&mut self.inner);
        let mut out = tar::Builder::new(Vec::new());
        if let Some(e) = archive.entries()?.next() {
            let mut e = e?;
            let mut h = e.header().clone();
            let mut data = Vec::new();
            e.read_to_end(&mut data)?;
            let link = e.link_name()?.map(|l| l.into_owned());
            match link {
                Some(l) if h.entry_type().is_symlink() => {
                    out.append_link(&mut h, &self.name, l)?;
                }
                _ => out.append_data(&mut h, &self.name, data.as_slice())?,
            }
        }
        self.buf = out.into_inner()?;
        Ok(())
    }
}

impl Read for Renamed {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if !self.done {
            self.done = true;
            self.rewrite()?;
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// `--chown=user[:group]` as numbers, names looked up in the destination's `/etc/passwd` and
/// `/etc/group`; without a group the user's number is the group's too (Docker's rule).
pub(crate) fn chown_ids(root: &Root, spec: &str) -> Result<(u32, u32)> {
    let (user, group) = spec.split_once(':').unwrap_or((spec, ""));
    let lookup = |file: &str, name: &str, what: &str| -> Result<u32> {
        if let Ok(n) = name.parse::<u32>() {
            return Ok(n);
        }
        let text = super::backend::read_small(root, file);
        text.lines()
            .filter_map(|l| {
                let mut f = l.split(':');
                Some((f.next()?, f.nth(1)?))
            })
            .find(|(n, _)| *n == name)
            .and_then(|(_, id)| id.parse().ok())
            .ok_or_else(|| {
                bad(format!(
                    "unable to convert uid/gid chown string to host mapping: can't find {what} for {name}: no such {what}: {name}"
                ))
            })
    };
    let uid = lookup("etc/passwd", user, "user")?;
    let gid = if group.is_empty() {
        uid
    } else {
        lookup("etc/group", group, "group")?
    };
    Ok((uid, gid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_are_cleaned_and_kept_inside() {
        assert_eq!(clean("./a/../b/").unwrap(), PathBuf::from("b"));
        assert_eq!(clean("/x/y").unwrap(), PathBuf::from("x/y"));
        assert_eq!(clean(".").unwrap(), PathBuf::new());
        assert_eq!(
            clean("../etc/passwd").unwrap_err().to_string(),
            "Forbidden path outside the build context: ../etc/passwd ()"
        );
        assert!(clean("a/../../b").is_err());
    }
}
