//! The change list of an overlay upper directory against its lower layers (`docker diff`).
//!
//! [`changes`] walks the upper directory (a container's writable layer, written by the
//! container and so hostile) through `linux::fs::Root`, never following a symlink, depth-first
//! with each directory's names in byte order (parents before children; moby's own order is
//! that of Go maps, i.e. none), and reports what Docker reports for the merged view (moby's
//! naive differ, which dockerd uses on kernels with overlay `redirect_dir`): a whiteout (0:0
//! character device) is a deletion; anything else is a modification when the lowers have it and
//! an addition when they do not; a directory equal to the lower one (size, mode, mtime) is not
//! reported unless something inside it changed, and then as modified, before its contents; an
//! opaque directory (removed and made again) over a lower one is modified, and the lower entries
//! it hides are deleted. Whether the lowers "have" a path follows overlay's rules (whiteouts and
//! opaque directories of upper lowers hide lower ones).
//!
//! It knows nothing of containers: the caller hands it the upper directory and the lowers.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use linux::fs::{FileKind, Root, Stat};

use crate::{Result, StorageError};

/// The overlay xattr marking a directory that hides the lowers' contents.
pub(crate) const OPAQUE_XATTR: &str = "trusted.overlay.opaque";

/// What happened to a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// It exists in a lower layer and was changed (Docker's `C`, kind 0).
    Modified,
    /// It is new (`A`, kind 1).
    Added,
    /// It was removed (`D`, kind 2).
    Deleted,
}

impl ChangeKind {
    /// Docker's numeric kind (0 modified, 1 added, 2 deleted).
    pub fn code(self) -> u8 {
        match self {
            ChangeKind::Modified => 0,
            ChangeKind::Added => 1,
            ChangeKind::Deleted => 2,
        }
    }

    /// Docker's letter (`C`, `A`, `D`).
    pub fn letter(self) -> char {
        match self {
            ChangeKind::Modified => 'C',
            ChangeKind::Added => 'A',
            ChangeKind::Deleted => 'D',
        }
    }
}

/// One changed path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Absolute in the container (`/etc/passwd`); non-UTF-8 bytes are replaced.
    pub path: String,
    pub kind: ChangeKind,
}

/// Whether `st` is an overlay whiteout (a 0:0 character device).
pub(crate) fn is_whiteout(st: &Stat) -> bool {
    st.kind == FileKind::CharDevice && st.rdev_major == 0 && st.rdev_minor == 0
}

/// Whether the directory `rel` of `root` is marked opaque.
pub(crate) fn is_opaque(root: &Root, rel: &Path) -> Result<bool> {
    Ok(root
        .get_xattr(rel, OsStr::new(OPAQUE_XATTR))?
        .is_some_and(|v| v == b"y"))
}

/// The lower layers, topmost first, seen as overlay merges them.
struct Lowers {
    layers: Vec<Root>,
}

impl Lowers {
    fn open(lowers: &[PathBuf]) -> Result<Self> {
        let layers = lowers
            .iter()
            .map(|l| Root::open(l).map_err(StorageError::from))
            .collect::<Result<_>>()?;
        Ok(Self { layers })
    }

    /// The lowers' object at `rel` (the topmost one), unless it is absent or hidden.
    fn lookup(&self, rel: &Path) -> Result<Option<Stat>> {
        for layer in &self.layers {
            match layer.try_lstat(rel)? {
                Some(st) if is_whiteout(&st) => return Ok(None),
                Some(st) => return Ok(Some(st)),
                None => {
                    if Self::hides_below(layer, rel)? {
                        return Ok(None);
                    }
                }
            }
        }
        Ok(None)
    }

    /// Whether an ancestor of `rel` in `layer` hides the layers below: a whiteout, a
    /// non-directory, or an opaque directory.
    fn hides_below(layer: &Root, rel: &Path) -> Result<bool> {
        let mut prefix = PathBuf::new();
        let Some(parent) = rel.parent() else {
            return Ok(false);
        };
        for comp in parent.components() {
            prefix.push(comp);
            match layer.try_lstat(&prefix)? {
                None => return Ok(false),
                Some(st) if st.kind != FileKind::Dir => return Ok(true),
                Some(_) => {
                    if is_opaque(layer, &prefix)? {
                        return Ok(true);
                    }
                }
            }
        }
        Ok(false)
    }
}

/// moby's `sameFsTime`: equal, or the same second with one side lacking nanoseconds (times
/// that went through a tar).
fn same_time(a: &Stat, b: &Stat) -> bool {
    a.mtime == b.mtime && (a.mtime_nsec == b.mtime_nsec || a.mtime_nsec == 0 || b.mtime_nsec == 0)
}

fn display(rel: &Path) -> String {
    format!("/{}", String::from_utf8_lossy(rel.as_os_str().as_bytes()))
}

/// One step of the walk: a path of the upper directory, or a lower entry an opaque directory
/// hides (reported deleted).
enum Step {
    Upper(PathBuf),
    Hidden(PathBuf),
}

impl Lowers {
    /// The names the lowers show in the directory `rel` (merged, hidden ones left out).
    fn names(&self, rel: &Path) -> Result<Vec<std::ffi::OsString>> {
        let mut names = std::collections::BTreeSet::new();
        for layer in &self.layers {
            if let Ok(list) = layer.read_dir(rel) {
                names.extend(list);
            }
        }
        let mut out = Vec::new();
        for n in names {
            if self.lookup(&rel.join(&n))?.is_some() {
                out.push(n);
            }
        }
        Ok(out)
    }
}

/// Reports the directories above `rel` that were skipped as unchanged (outermost first), so
/// every change comes after its parents, as in Docker's output.
fn report_parents(rel: &Path, reported: &mut HashSet<PathBuf>, out: &mut Vec<Change>) {
    let mut missing: Vec<&Path> = rel
        .ancestors()
        .skip(1)
        .take_while(|a| !a.as_os_str().is_empty() && !reported.contains(*a))
        .collect();
    missing.reverse();
    for a in missing {
        reported.insert(a.to_path_buf());
        out.push(Change {
            path: display(a),
            kind: ChangeKind::Modified,
        });
    }
}

/// The changes of the overlay upper directory `upper` against `lowers` (topmost first), parents
/// before children and each directory's entries in byte order. A missing `upper` (a container
/// never started) has no changes.
pub fn changes(upper: &Path, lowers: &[PathBuf]) -> Result<Vec<Change>> {
    if std::fs::symlink_metadata(upper).is_err() {
        return Ok(Vec::new());
    }
    let root = Root::open(upper)?;
    let lowers = Lowers::open(lowers)?;
    let mut out = Vec::new();
    let mut reported: HashSet<PathBuf> = HashSet::new();
    // Depth-first, pre-order, names in byte order; an explicit stack, as the tree is the
    // container's and may be arbitrarily deep.
    let mut stack: Vec<Step> = root
        .read_dir(Path::new(""))?
        .into_iter()
        .rev()
        .map(|n| Step::Upper(PathBuf::from(n)))
        .collect();
    while let Some(step) = stack.pop() {
        let rel = match step {
            Step::Hidden(rel) => {
                report_parents(&rel, &mut reported, &mut out);
                out.push(Change {
                    path: display(&rel),
                    kind: ChangeKind::Deleted,
                });
                continue;
            }
            Step::Upper(rel) => rel,
        };
        let st = match root.try_lstat(&rel)? {
            Some(st) => st,
            // Removed while we walk (a running container): nothing to report.
            None => continue,
        };
        let is_dir = st.kind == FileKind::Dir;
        let lower = if is_whiteout(&st) {
            None
        } else {
            lowers.lookup(&rel)?
        };
        if is_dir {
            let mut children: Vec<Step> = match root.read_dir(&rel) {
                Ok(names) => names
                    .into_iter()
                    .map(|n| Step::Upper(rel.join(n)))
                    .collect(),
                Err(e)
                    if matches!(
                        e.errno(),
                        Some(linux::Errno::ENOENT | linux::Errno::ENOTDIR)
                    ) =>
                {
                    Vec::new()
                }
                Err(e) => return Err(e.into()),
            };
            // An opaque directory over a lower one hides the lower's entries: those the
            // upper does not have again were deleted.
            if lower.as_ref().is_some_and(|l| l.kind == FileKind::Dir) && is_opaque(&root, &rel)? {
                let have: HashSet<PathBuf> = children
                    .iter()
                    .filter_map(|c| match c {
                        Step::Upper(p) => Some(p.clone()),
                        Step::Hidden(_) => None,
                    })
                    .collect();
                for n in lowers.names(&rel)? {
                    let p = rel.join(n);
                    if !have.contains(&p) {
                        children.push(Step::Hidden(p));
                    }
                }
            }
            children.sort_by(|a, b| {
                let key = |s: &Step| match s {
                    Step::Upper(p) | Step::Hidden(p) => p.as_os_str().as_bytes().to_vec(),
                };
                key(a).cmp(&key(b))
            });
            stack.extend(children.into_iter().rev());
        }
        let kind = if is_whiteout(&st) {
            ChangeKind::Deleted
        } else {
            match &lower {
                None => ChangeKind::Added,
                Some(lower) => {
                    if is_dir
                        && lower.kind == FileKind::Dir
                        && lower.size == st.size
                        && lower.mode == st.mode
                        && same_time(lower, &st)
                    {
                        // Unchanged itself; reported only if something inside changed.
                        continue;
                    }
                    ChangeKind::Modified
                }
            }
        };
        report_parents(&rel, &mut reported, &mut out);
        reported.insert(rel.clone());
        out.push(Change {
            path: display(&rel),
            kind,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::time::{Duration, UNIX_EPOCH};

    fn set_mtime(p: &Path, secs: u64) {
        let t = UNIX_EPOCH + Duration::from_secs(secs);
        let f = std::fs::File::open(p).unwrap();
        f.set_times(std::fs::FileTimes::new().set_modified(t).set_accessed(t))
            .unwrap();
    }

    fn kinds(list: &[Change]) -> Vec<String> {
        list.iter()
            .map(|c| format!("{} {}", c.kind.letter(), c.path))
            .collect()
    }

    /// A lower with `etc/{passwd,group}`, `usr/lib/x`, `bin/sh`, and an upper with an added
    /// tree, a modified file, and a directory equal to the lower one.
    fn fixture() -> (tempfile::TempDir, PathBuf, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let lower = dir.path().join("lower");
        let upper = dir.path().join("upper");
        for d in ["etc", "usr/lib", "bin", "var"] {
            std::fs::create_dir_all(lower.join(d)).unwrap();
        }
        std::fs::write(lower.join("etc/passwd"), "root\n").unwrap();
        std::fs::write(lower.join("etc/group"), "root\n").unwrap();
        std::fs::write(lower.join("usr/lib/x"), "x").unwrap();
        std::fs::create_dir_all(lower.join("var/spool/mail")).unwrap();
        std::fs::write(lower.join("var/old"), "o").unwrap();
        std::os::unix::fs::symlink("busybox", lower.join("bin/sh")).unwrap();
        std::fs::create_dir_all(upper.join("new/sub")).unwrap();
        std::fs::write(upper.join("new/sub/f"), "x").unwrap();
        std::fs::create_dir_all(upper.join("etc")).unwrap();
        std::fs::write(upper.join("etc/group"), "root\ny\n").unwrap();
        std::fs::write(upper.join("etc/added"), "a").unwrap();
        // usr and usr/lib: copied up with the lower's metadata (as overlay does); usr/lib/y new.
        std::fs::create_dir_all(upper.join("usr/lib")).unwrap();
        std::fs::write(upper.join("usr/lib/y"), "y").unwrap();
        // `a-b` sorts before `a/…` bytewise but comes after `a` in a walk.
        std::fs::create_dir_all(upper.join("a")).unwrap();
        std::fs::write(upper.join("a/z"), "").unwrap();
        std::fs::write(upper.join("a-b"), "").unwrap();
        for d in ["usr", "usr/lib", "etc", "var"] {
            set_mtime(&lower.join(d), 1000);
            if upper.join(d).exists() {
                set_mtime(&upper.join(d), 1000);
            }
        }
        // The upper etc/ changed (a file was added: its mtime moved).
        set_mtime(&upper.join("etc"), 2000);
        (dir, upper, lower)
    }

    #[test]
    fn change_list_follows_mobys_rules() {
        let (_dir, upper, lower) = fixture();
        let list = changes(&upper, &[lower]).unwrap();
        assert_eq!(
            kinds(&list),
            vec![
                "A /a",
                "A /a/z",
                "A /a-b",
                "C /etc",
                "A /etc/added",
                "C /etc/group",
                "A /new",
                "A /new/sub",
                "A /new/sub/f",
                // /usr and /usr/lib equal the lower's: reported as the parents of a change.
                "C /usr",
                "C /usr/lib",
                "A /usr/lib/y",
            ]
        );
        let codes: Vec<u8> = list.iter().map(|c| c.kind.code()).collect();
        assert_eq!(codes[..4], [1, 1, 1, 0]);
    }

    #[test]
    fn a_changed_file_reports_its_unchanged_parents() {
        let dir = tempfile::tempdir().unwrap();
        let (lower, upper) = (dir.path().join("l"), dir.path().join("u"));
        for root in [&lower, &upper] {
            std::fs::create_dir_all(root.join("etc/x")).unwrap();
            std::fs::write(root.join("etc/x/group"), "g").unwrap();
            for d in ["etc", "etc/x"] {
                set_mtime(&root.join(d), 1000);
            }
        }
        std::fs::write(upper.join("etc/x/group"), "g2").unwrap();
        set_mtime(&upper.join("etc/x"), 1000);
        let list = kinds(&changes(&upper, &[lower]).unwrap());
        assert_eq!(list, vec!["C /etc", "C /etc/x", "C /etc/x/group"]);
    }

    #[test]
    fn missing_upper_and_empty_upper() {
        let dir = tempfile::tempdir().unwrap();
        assert!(changes(&dir.path().join("nope"), &[]).unwrap().is_empty());
        std::fs::create_dir(dir.path().join("u")).unwrap();
        assert!(changes(&dir.path().join("u"), &[]).unwrap().is_empty());
    }

    #[test]
    fn symlinks_in_the_upper_are_not_followed() {
        let (dir, upper, lower) = fixture();
        // A symlink to a host directory full of files: reported as one entry, never walked.
        std::fs::create_dir(dir.path().join("host")).unwrap();
        std::fs::write(dir.path().join("host/secret"), "s").unwrap();
        std::os::unix::fs::symlink(dir.path().join("host"), upper.join("link")).unwrap();
        // A file replacing the lower's symlink is a modification.
        std::fs::create_dir(upper.join("bin")).unwrap();
        std::fs::write(upper.join("bin/sh"), "#!").unwrap();
        std::fs::set_permissions(upper.join("bin/sh"), PermissionsExt::from_mode(0o755)).unwrap();
        let list = kinds(&changes(&upper, &[lower]).unwrap());
        assert!(list.contains(&"A /link".to_string()), "{list:?}");
        assert!(list.contains(&"C /bin/sh".to_string()), "{list:?}");
        assert!(!list.iter().any(|l| l.contains("secret")), "{list:?}");
    }

    #[test]
    fn lowers_are_merged_like_overlay() {
        let (dir, upper, lower) = fixture();
        // A middle layer deleting etc/passwd: recreating it in the upper is an addition.
        let mid = dir.path().join("mid");
        std::fs::create_dir_all(mid.join("etc")).unwrap();
        if linux::fs::Root::open(&mid)
            .unwrap()
            .mknod(
                Path::new("etc/passwd"),
                linux::fs::DeviceKind::Char,
                0,
                0,
                0,
            )
            .is_err()
        {
            eprintln!("skipped: cannot make whiteouts here");
            return;
        }
        std::fs::write(upper.join("etc/passwd"), "new\n").unwrap();
        let list = kinds(&changes(&upper, &[mid.clone(), lower.clone()]).unwrap());
        assert!(list.contains(&"A /etc/passwd".to_string()), "{list:?}");
        // Without the middle layer it is a modification.
        let list = kinds(&changes(&upper, &[lower]).unwrap());
        assert!(list.contains(&"C /etc/passwd".to_string()), "{list:?}");
    }

    #[test]
    fn whiteouts_and_opaque_dirs_as_root() {
        if !linux::is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let (_dir, upper, lower) = fixture();
        let up = Root::open(&upper).unwrap();
        up.mknod(
            Path::new("etc/passwd"),
            linux::fs::DeviceKind::Char,
            0,
            0,
            0,
        )
        .unwrap();
        // var/ removed and recreated: opaque, with new contents.
        up.create_dir(Path::new("var"), 0o755).unwrap();
        up.set_xattr(Path::new("var"), OsStr::new(OPAQUE_XATTR), b"y")
            .unwrap();
        std::fs::write(upper.join("var/n"), "n").unwrap();
        // An opaque directory the lowers never had is just new.
        up.set_xattr(Path::new("new"), OsStr::new(OPAQUE_XATTR), b"y")
            .unwrap();
        let list = kinds(&changes(&upper, &[lower]).unwrap());
        for want in ["D /etc/passwd", "A /new"] {
            assert!(list.contains(&want.to_string()), "{want}: {list:?}");
        }
        // The opaque directory is modified; the lower entries it hides are deleted, in order.
        let var: Vec<&str> = list
            .iter()
            .map(String::as_str)
            .filter(|l| l.contains(" /var"))
            .collect();
        assert_eq!(
            var,
            vec!["C /var", "A /var/n", "D /var/old", "D /var/spool"]
        );
        // /etc is reported once, before its entries.
        assert_eq!(list.iter().filter(|l| *l == "C /etc").count(), 1);
    }
}
