//! `docker cp` and `docker export` on the engine side: the stat of a path inside a container
//! (`HEAD /containers/{id}/archive`), a tar of it (`GET`), extracting a tar into it (`PUT`),
//! and a tar of the whole root filesystem (`GET /containers/{id}/export`).
//!
//! Paths are resolved as moby resolves them: the request is made absolute and cleaned (a
//! trailing `/` or `/.` kept), its directory part is resolved with every symlink followed, and
//! the last element is taken as it is (so `/link` is the symlink, `/link/` what it points to).
//! All of it happens inside the container's root filesystem through `linux::fs::Root`
//! (`openat2(RESOLVE_IN_ROOT)`): a symlink to `/` or `../../..` in the container leads back into
//! the container, never to the host. The tars are written and read by `storage::tree_tar`.
//!
//! Mounting: a running container's root filesystem is already mounted; a stopped one is mounted
//! for the length of the request and unmounted after it, on errors too. Every request holds the
//! container's `op` lock until it is done (moby holds the container lock the same way), so a
//! start cannot mount over a copy in progress. An error in the middle of a stream ends it with
//! an error item: the client sees a broken transfer, never a short archive that looks whole.
//!
//! A stopped container's volumes and binds are mounted over its root filesystem for the
//! request ([`copy_mounts`]), as moby does, before any path is resolved.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use images::ImagesError;
use linux::fs::{FileKind, Root, Stat};
use storage::StorageError;
use storage::tree_tar::{self, ExtractOptions, Top};
use tokio::io::AsyncRead;
use tokio::sync::{mpsc, oneshot};
use tokio_util::io::SyncIoBridge;

use super::setup::{self, Dirs};
use super::{Containers, Ctr};
use crate::progress::ChannelWriter;
use crate::{ByteStream, EngineError, Result};

/// The stat of a path in a container (`X-Docker-Container-Path-Stat`, moby's
/// `ContainerPathStat`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PathStat {
    /// Base name of the requested path (`/` for the root, `.` for `dir/.`).
    pub name: String,
    /// Size as `lstat` reports it.
    pub size: i64,
    /// Go's `os.FileMode` bits: permissions plus type flags (directory = 1<<31, …).
    pub mode: u32,
    /// Modification time, RFC 3339 with nanoseconds.
    pub mtime: String,
    /// For a symlink, its target fully resolved inside the container (absolute); else empty.
    #[serde(rename = "linkTarget")]
    pub link_target: String,
}

/// `PUT /containers/{id}/archive`.
#[derive(Debug, Clone, Default)]
pub struct ExtractRequest {
    /// The directory to extract into (symlinks followed, inside the container).
    pub path: String,
    /// Refuse to replace a directory with a non-directory or the reverse.
    pub no_overwrite_dir_non_dir: bool,
    /// Own every entry by the container's user (when it has one) instead of the tar's owners.
    pub copy_uid_gid: bool,
}

/// Go's `os.FileMode` for an lstat result.
pub(crate) fn go_file_mode(st: &Stat) -> u32 {
    let mut m = st.mode & 0o777;
    if st.mode & 0o4000 != 0 {
        m |= 1 << 23;
    }
    if st.mode & 0o2000 != 0 {
        m |= 1 << 22;
    }
    if st.mode & 0o1000 != 0 {
        m |= 1 << 20;
    }
    m | match st.kind {
        FileKind::Dir => 1 << 31,
        FileKind::Symlink => 1 << 27,
        FileKind::Fifo => 1 << 25,
        FileKind::Socket => 1 << 24,
        FileKind::BlockDevice => 1 << 26,
        FileKind::CharDevice => (1 << 26) | (1 << 21),
        FileKind::File => 0,
    }
}

/// Go's `filepath.Clean` of `"/" + path`: absolute, no `.`, `..` resolved lexically (and
/// clamped at the root), no trailing `/`.
fn clean_abs(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    format!("/{}", parts.join("/"))
}

/// Go's `filepath.Base`.
fn go_base(path: &str) -> &str {
    if path.is_empty() {
        return ".";
    }
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        return "/";
    }
    trimmed.rsplit('/').next().unwrap_or(trimmed)
}

/// The request made absolute as moby does (`PreserveTrailingDotOrSeparator(Join("/", p), p)`).
fn abs_request(path: &str) -> String {
    let mut abs = clean_abs(path);
    if go_base(path) == "." && go_base(&abs) != "." {
        if !abs.ends_with('/') {
            abs.push('/');
        }
        abs.push('.');
    }
    if path.ends_with('/') && !abs.ends_with('/') {
        abs.push('/');
    }
    abs
}

/// `abs` split after its last `/` (Go's `filepath.Split`), the directory part relative.
fn split(abs: &str) -> (PathBuf, &str) {
    let i = abs.rfind('/').map_or(0, |i| i + 1);
    let dir = abs[..i].trim_matches('/');
    (PathBuf::from(dir), &abs[i..])
}

fn rel_of(abs: &str) -> PathBuf {
    PathBuf::from(abs.trim_start_matches('/'))
}

/// What a request path names inside the root.
struct Target {
    /// The requested path, absolute (for the stat's name).
    abs: String,
    /// The object, relative to the root (not to be followed: symlinks before it are resolved).
    rel: PathBuf,
    stat: Stat,
}

/// Whether a kernel error means "nothing there".
fn missing(e: &linux::LinuxError) -> bool {
    matches!(
        e.errno(),
        Some(linux::Errno::ENOENT | linux::Errno::ENOTDIR)
    )
}

fn not_found(path: &str, container: &str) -> EngineError {
    EngineError::PathNotFound {
        path: path.to_string(),
        container: container.to_string(),
    }
}

fn storage_err(e: StorageError) -> EngineError {
    match e {
        StorageError::Sys(e) => EngineError::Sys(e),
        e => EngineError::Images(ImagesError::Storage(e)),
    }
}

/// moby's `ResolvePath` + `lstat`: the directory part resolved with every symlink followed,
/// the base name taken as it is.
fn resolve_target(root: &Root, path: &str, container: &str) -> Result<Target> {
    let abs = abs_request(path);
    let (dir, base) = split(&abs);
    let gone = |e: linux::LinuxError| {
        if missing(&e) {
            not_found(path, container)
        } else {
            e.into()
        }
    };
    let dir = root.resolve(&dir).map_err(gone)?;
    let rel = if base.is_empty() || base == "." {
        dir
    } else {
        dir.join(base)
    };
    let stat = root.lstat(&rel).map_err(gone)?;
    Ok(Target { abs, rel, stat })
}

/// The symlink `rel`'s target resolved inside the root, absolute. A dangling link is resolved
/// lexically (moby's `FollowSymlinkInScope` does not need the target to exist).
fn link_target(root: &Root, rel: &Path) -> Result<String> {
    match root.resolve(rel) {
        Ok(p) => Ok(format!("/{}", p.display())),
        Err(e) if missing(&e) || e.errno() == Some(linux::Errno::ELOOP) => {
            let target = root.read_link(rel)?;
            let target = target.to_string_lossy();
            if target.starts_with('/') {
                Ok(clean_abs(&target))
            } else {
                let parent = rel.parent().unwrap_or(Path::new(""));
                Ok(clean_abs(&format!("{}/{target}", parent.display())))
            }
        }
        Err(e) => Err(e.into()),
    }
}

fn path_stat(root: &Root, t: &Target) -> Result<PathStat> {
    let st = &t.stat;
    let link_target = if st.kind == FileKind::Symlink {
        link_target(root, &t.rel)?
    } else {
        String::new()
    };
    let nsec = u32::try_from(st.mtime_nsec).unwrap_or(0);
    let mtime = chrono::DateTime::from_timestamp(st.mtime, nsec).unwrap_or_default();
    Ok(PathStat {
        name: go_base(&t.abs).to_string(),
        size: i64::try_from(st.size).unwrap_or(i64::MAX),
        mode: go_file_mode(st),
        mtime: crate::rfc3339_nano(&mtime),
        link_target,
    })
}

/// Mounts a stopped container's volumes and binds over its root filesystem for a copy (moby's
/// `mountVolumes`; see `super::mounts::copy_mounts`), returning what to unmount after.
fn copy_mounts(root: &Root, rec: &super::record::Record) -> Result<Vec<linux::fs::BindMount>> {
    super::mounts::copy_mounts(root, rec)
}

/// The container's root filesystem for the length of one request: mounted by us (and then
/// unmounted on drop) when the container is not running.
struct RootfsUse {
    root: Option<Root>,
    rootfs: PathBuf,
    ours: bool,
    extra_mounts: Vec<linux::fs::BindMount>,
}

impl RootfsUse {
    /// Call with the container's `op` lock held.
    fn open(ctr: &Ctr, dirs: &Dirs, snapshots: &Path) -> Result<Self> {
        let rec = ctr.snapshot();
        if rec.state.status == "removing" {
            return Err(EngineError::Conflict(format!(
                "container {} is marked for removal",
                rec.id
            )));
        }
        let rootfs = dirs.rootfs();
        let ours = if rec.state.running {
            if !linux::mount::is_mountpoint(&rootfs) {
                return Err(EngineError::Conflict(format!(
                    "the root filesystem of container {} is not mounted",
                    rec.id
                )));
            }
            false
        } else {
            setup::mount_rootfs(dirs, snapshots, &rec.layers, false)?;
            true
        };
        let mut this = Self {
            root: None,
            rootfs,
            ours,
            extra_mounts: Vec::new(),
        };
        this.root = Some(Root::open(&this.rootfs)?);
        // A running container's volumes live in its own mount namespace; a stopped one's
        // are mounted here for the request (nothing else sees this root meanwhile).
        if ours {
            this.extra_mounts = copy_mounts(this.root()?, &rec)?;
        }
        Ok(this)
    }

    fn root(&self) -> Result<&Root> {
        self.root.as_ref().ok_or(EngineError::TaskFailed {
            what: "container root filesystem",
        })
    }
}

impl Drop for RootfsUse {
    fn drop(&mut self) {
        // Close our descriptors first so the unmount leaves nothing behind.
        self.root = None;
        for m in self.extra_mounts.drain(..).rev() {
            if let Err(e) = m.unmount() {
                tracing::warn!(error = %e, "cannot unmount a volume after a copy");
            }
        }
        if self.ours
            && let Err(e) = linux::mount::unmount(&self.rootfs)
        {
            tracing::warn!(path = %self.rootfs.display(), error = %e, "cannot unmount after a copy");
        }
    }
}

/// Runs `f` on a blocking thread with the container's root filesystem, holding its `op` lock,
/// then `after` with `f`'s result once the root filesystem is let go (unmounted if we mounted
/// it): answers and the end of a stream leave only then, so a client that sees the request done
/// sees no mount left behind.
fn spawn_with_rootfs<T, U, F, G>(
    ctr: Arc<Ctr>,
    dirs: Dirs,
    snapshots: PathBuf,
    f: F,
    after: G,
) -> tokio::task::JoinHandle<U>
where
    F: FnOnce(Result<&Root>) -> T + Send + 'static,
    G: FnOnce(T) -> U + Send + 'static,
    U: Send + 'static,
{
    tokio::task::spawn_blocking(move || {
        let _op = ctr.op.blocking_lock();
        let out = match RootfsUse::open(&ctr, &dirs, &snapshots) {
            Ok(use_) => {
                let out = f(use_.root());
                drop(use_);
                out
            }
            Err(e) => f(Err(e)),
        };
        after(out)
    })
}

/// Reports a panicked blocking task as the stream's failure instead of a silent end.
fn watch(task: tokio::task::JoinHandle<()>, tx: mpsc::Sender<Result<Bytes>>, what: &'static str) {
    tokio::spawn(async move {
        if task.await.is_err() {
            tracing::error!("{what} task panicked");
            let _ = tx.send(Err(EngineError::TaskFailed { what })).await;
        }
    });
}

/// The uid and gid `copyUIDGID` gives extracted files: the container's user (looked up in its
/// own `/etc/passwd` and `/etc/group`), or `None` (the tar's owners) when it has none. moby
/// looks the name up on the host instead; the container's files are what the name means.
fn copy_owner(root: &Root, user: &str) -> Result<Option<(u32, u32)>> {
    if user.is_empty() {
        return Ok(None);
    }
    let read = |p: &str| -> String {
        let mut s = String::new();
        if let Ok(rel) = root.resolve(Path::new(p))
            && let Ok(mut f) = root.open_regular(&rel)
        {
            let _ = f.read_to_string(&mut s);
        }
        s
    };
    let (u, _) = setup::resolve_user(user, &read("etc/passwd"), &read("etc/group"), &[])
        .map_err(|e| EngineError::InvalidRequest(e.to_string()))?;
    Ok(Some((u.uid, u.gid)))
}

/// Writes the tar of `rel` to the stream. The writer comes back to be finished (after the
/// unmount) by [`finish_stream`].
fn stream_tree(
    root: &Root,
    rel: &Path,
    top: &Top,
    tx: mpsc::Sender<Result<Bytes>>,
) -> (ChannelWriter, Option<EngineError>) {
    let mut out = ChannelWriter::new(tx);
    let err = tree_tar::write_tree(root, rel, top, &mut out)
        .err()
        .map(storage_err);
    (out, err)
}

/// Ends a stream: the last bytes, or the failure as its last item (the client then sees a
/// broken transfer, never a short archive that looks whole).
fn finish_stream(streamed: Option<(ChannelWriter, Option<EngineError>)>) {
    match streamed {
        Some((out, None)) => drop(out),
        Some((out, Some(e))) => {
            tracing::debug!(error = %e, "container archive stopped");
            out.fail(e);
        }
        None => {}
    }
}

impl Containers {
    fn snapshots_dir(&self) -> PathBuf {
        self.data_root.join("snapshots")
    }

    /// `HEAD /containers/{id}/archive?path=`.
    pub(crate) async fn stat_path(&self, reference: &str, path: &str) -> Result<PathStat> {
        let ctr = self.get(reference)?;
        let dirs = self.dirs(&ctr.id);
        let (path, name) = (path.to_string(), reference.to_string());
        spawn_with_rootfs(
            ctr,
            dirs,
            self.snapshots_dir(),
            move |root| root.and_then(|root| path_stat(root, &resolve_target(root, &path, &name)?)),
            |r| r,
        )
        .await
        .map_err(|_| EngineError::TaskFailed {
            what: "container path stat",
        })?
    }

    /// `GET /containers/{id}/archive?path=`: the stat (failures come here, before any byte)
    /// and the tar, streamed.
    pub(crate) async fn archive(
        &self,
        reference: &str,
        path: &str,
    ) -> Result<(PathStat, ByteStream)> {
        let ctr = self.get(reference)?;
        let dirs = self.dirs(&ctr.id);
        let (first_tx, first_rx) = oneshot::channel();
        let (tx, rx) = mpsc::channel(4);
        let task_tx = tx.clone();
        let (path, name) = (path.to_string(), reference.to_string());
        let task = spawn_with_rootfs(
            Arc::clone(&ctr),
            dirs,
            self.snapshots_dir(),
            move |root| {
                let prepared = root.and_then(|root| {
                    let t = resolve_target(root, &path, &name)?;
                    Ok((path_stat(root, &t)?, t.rel, root))
                });
                match prepared {
                    Err(e) => Outcome::Failed(first_tx, e),
                    Ok((stat, rel, root)) => {
                        let top = Top::Named(stat.name.as_bytes().to_vec());
                        if first_tx.send(Ok(stat)).is_ok() {
                            Outcome::Streamed(stream_tree(root, &rel, &top, task_tx))
                        } else {
                            Outcome::Gone
                        }
                    }
                }
            },
            Outcome::finish,
        );
        watch(task, tx, "container archive");
        let stat = first_rx.await.map_err(|_| EngineError::TaskFailed {
            what: "container archive",
        })??;
        self.event(&ctr, "archive-path", &[]);
        Ok((stat, rx))
    }

    /// `GET /containers/{id}/export`: the whole root filesystem as a tar (no top entry).
    pub(crate) async fn export(&self, reference: &str) -> Result<ByteStream> {
        let ctr = self.get(reference)?;
        let dirs = self.dirs(&ctr.id);
        let (first_tx, first_rx) = oneshot::channel();
        let (tx, rx) = mpsc::channel(4);
        let task_tx = tx.clone();
        let task = spawn_with_rootfs(
            Arc::clone(&ctr),
            dirs,
            self.snapshots_dir(),
            move |root| match root {
                Err(e) => Outcome::Failed(first_tx, e),
                Ok(root) => {
                    if first_tx.send(Ok(())).is_ok() {
                        Outcome::Streamed(stream_tree(root, Path::new(""), &Top::Contents, task_tx))
                    } else {
                        Outcome::Gone
                    }
                }
            },
            Outcome::finish,
        );
        watch(task, tx, "container export");
        first_rx.await.map_err(|_| EngineError::TaskFailed {
            what: "container export",
        })??;
        self.event(&ctr, "export", &[]);
        Ok(rx)
    }

    /// `PUT /containers/{id}/archive?path=`: extracts the tar read from `body` into the
    /// directory `req.path` (resolved inside the container, its last symlink followed too).
    pub(crate) async fn extract<R>(
        &self,
        reference: &str,
        req: ExtractRequest,
        body: R,
    ) -> Result<()>
    where
        R: AsyncRead + Send + Unpin + 'static,
    {
        let ctr = self.get(reference)?;
        let rec = ctr.snapshot();
        if rec.host_config.readonly_rootfs.unwrap_or(false) {
            return Err(EngineError::InvalidRequest(
                "container rootfs is marked read-only".into(),
            ));
        }
        let user = rec.config.user.clone().unwrap_or_default();
        let dirs = self.dirs(&ctr.id);
        let name = reference.to_string();
        let reader = SyncIoBridge::new(body);
        spawn_with_rootfs(
            Arc::clone(&ctr),
            dirs,
            self.snapshots_dir(),
            move |root| {
                let root = root?;
                let abs = abs_request(&req.path);
                let dest = root.resolve(&rel_of(&abs)).map_err(|e| {
                    if missing(&e) {
                        not_found(&req.path, &name)
                    } else {
                        e.into()
                    }
                })?;
                if root.lstat(&dest)?.kind != FileKind::Dir {
                    return Err(EngineError::InvalidRequest(
                        "extraction point is not a directory".into(),
                    ));
                }
                let owner = if req.copy_uid_gid {
                    copy_owner(root, &user)?
                } else {
                    None
                };
                let opts = ExtractOptions {
                    no_overwrite_dir_non_dir: req.no_overwrite_dir_non_dir,
                    owner,
                    mode: None,
                };
                tree_tar::extract(root, &dest, reader, &opts).map_err(storage_err)?;
                Ok(())
            },
            |r| r,
        )
        .await
        .map_err(|_| EngineError::TaskFailed {
            what: "container extract",
        })??;
        self.event(&ctr, "extract-to-dir", &[]);
        Ok(())
    }
}

/// How a streaming request ended on its blocking thread, to be finished once the root
/// filesystem is let go.
enum Outcome<T> {
    /// Failed before the first byte: the answer is this error.
    Failed(oneshot::Sender<Result<T>>, EngineError),
    /// Streamed (to its end or to a failure).
    Streamed((ChannelWriter, Option<EngineError>)),
    /// The request went away before the stream started.
    Gone,
}

impl<T> Outcome<T> {
    fn finish(self) {
        match self {
            Outcome::Failed(tx, e) => {
                let _ = tx.send(Err(e));
            }
            Outcome::Streamed(s) => finish_stream(Some(s)),
            Outcome::Gone => {}
        }
    }
}

impl Containers {
    /// Runs `f` with the container's root filesystem (mounted for the call when it is
    /// stopped), holding its `op` lock: the build's COPY and WORKDIR steps write through it.
    pub(crate) async fn with_rootfs<T, F>(&self, reference: &str, f: F) -> Result<T>
    where
        F: FnOnce(&Root) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let ctr = self.get(reference)?;
        let dirs = self.dirs(&ctr.id);
        spawn_with_rootfs(ctr, dirs, self.snapshots_dir(), move |root| f(root?), |r| r)
            .await
            .map_err(|_| EngineError::TaskFailed {
                what: "container root filesystem",
            })?
    }

    /// The container's writable layer (overlay upper directory).
    pub(crate) fn upper_dir(&self, id: &str) -> PathBuf {
        self.dirs(id).upper()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_made_absolute_like_moby() {
        assert_eq!(abs_request("etc/passwd"), "/etc/passwd");
        assert_eq!(abs_request("/etc/"), "/etc/");
        assert_eq!(abs_request("/etc/."), "/etc/.");
        assert_eq!(abs_request("/etc/./"), "/etc/./");
        assert_eq!(abs_request("/"), "/");
        assert_eq!(abs_request(""), "/.");
        assert_eq!(abs_request("/../../etc//x/../passwd"), "/etc/passwd");
        assert_eq!(split("/etc/passwd"), (PathBuf::from("etc"), "passwd"));
        assert_eq!(split("/etc/"), (PathBuf::from("etc"), ""));
        assert_eq!(split("/etc/."), (PathBuf::from("etc"), "."));
        assert_eq!(split("/"), (PathBuf::from(""), ""));
        assert_eq!(go_base("/etc/."), ".");
        assert_eq!(go_base("/etc/"), "etc");
        assert_eq!(go_base("/"), "/");
    }

    fn stat(kind: FileKind, mode: u32) -> Stat {
        Stat {
            kind,
            mode,
            uid: 0,
            gid: 0,
            size: 0,
            nlink: 1,
            ino: 1,
            dev: 1,
            rdev_major: 0,
            rdev_minor: 0,
            mtime: 0,
            mtime_nsec: 0,
        }
    }

    #[test]
    fn go_file_modes() {
        assert_eq!(go_file_mode(&stat(FileKind::Dir, 0o755)), 2_147_484_141);
        assert_eq!(go_file_mode(&stat(FileKind::Symlink, 0o777)), 134_218_239);
        assert_eq!(go_file_mode(&stat(FileKind::File, 0o644)), 420);
        assert_eq!(
            go_file_mode(&stat(FileKind::File, 0o4755)),
            (1 << 23) | 0o755
        );
        assert_eq!(
            go_file_mode(&stat(FileKind::Dir, 0o1777)),
            (1 << 31) | (1 << 20) | 0o777
        );
        assert_eq!(
            go_file_mode(&stat(FileKind::CharDevice, 0o666)),
            (1 << 26) | (1 << 21) | 0o666
        );
        assert_eq!(
            go_file_mode(&stat(FileKind::Fifo, 0o600)),
            (1 << 25) | 0o600
        );
    }

    #[test]
    fn targets_resolve_inside_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path().join("r");
        std::fs::create_dir_all(r.join("etc")).unwrap();
        std::fs::write(r.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
        std::os::unix::fs::symlink("/", r.join("escape")).unwrap();
        std::os::unix::fs::symlink("../../../..", r.join("up")).unwrap();
        std::os::unix::fs::symlink("etc", r.join("etclink")).unwrap();
        std::os::unix::fs::symlink("/gone/x", r.join("dangling")).unwrap();
        let root = Root::open(&r).unwrap();
        let t = resolve_target(&root, "/up/etc/passwd", "c").unwrap();
        assert_eq!(t.rel, Path::new("etc/passwd"));
        let t = resolve_target(&root, "escape/escape/etc", "c").unwrap();
        assert_eq!(t.rel, Path::new("etc"));
        // The last element is not followed unless the path ends in `/` or `/.`.
        let t = resolve_target(&root, "/etclink", "c").unwrap();
        assert_eq!(t.stat.kind, FileKind::Symlink);
        let s = path_stat(&root, &t).unwrap();
        assert_eq!(
            (s.name.as_str(), s.link_target.as_str()),
            ("etclink", "/etc")
        );
        let t = resolve_target(&root, "/etclink/", "c").unwrap();
        assert_eq!(
            (t.rel.as_path(), t.stat.kind),
            (Path::new("etc"), FileKind::Dir)
        );
        let t = resolve_target(&root, "/etclink/.", "c").unwrap();
        assert_eq!(path_stat(&root, &t).unwrap().name, ".");
        let s = path_stat(&root, &resolve_target(&root, "/", "c").unwrap()).unwrap();
        assert_eq!((s.name.as_str(), s.mode >> 31), ("/", 1));
        let t = resolve_target(&root, "/dangling", "c").unwrap();
        assert_eq!(path_stat(&root, &t).unwrap().link_target, "/gone/x");
        let e = resolve_target(&root, "/nope", "web").err().unwrap();
        assert_eq!(
            e.to_string(),
            "Could not find the file /nope in container web"
        );
        assert_eq!(e.kind(), crate::ErrorKind::NotFound);
        assert!(resolve_target(&root, "/etc/passwd/x", "c").is_err());
        // The container's own passwd decides copyUIDGID's owner.
        assert_eq!(copy_owner(&root, "").unwrap(), None);
        assert_eq!(copy_owner(&root, "root").unwrap(), Some((0, 0)));
        assert_eq!(copy_owner(&root, "12:34").unwrap(), Some((12, 34)));
        assert!(copy_owner(&root, "nobody").is_err());
    }
}
