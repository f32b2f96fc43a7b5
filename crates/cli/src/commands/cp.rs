//! `berth cp` (docker's rules for files, directories, trailing `/` and `/.`, missing
//! destinations, `-` for a tar on stdin/stdout) and `berth export`.
//!
//! The daemon only archives and extracts; deciding what goes where is the client's job, as in
//! docker: the destination is stat'ed (`HEAD …/archive`, or the local file system), the archive
//! is renamed on the fly so that extracting it into a directory gives the wanted result, and a
//! copy out of a container is extracted here. Local extraction refuses names with `..`,
//! symlinks whose target leaves the destination (as moby does) and writing through any
//! symlink below the destination, so a hostile container cannot write outside it.

use std::collections::VecDeque;
use std::io::{IsTerminal, Read, Write};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bollard::container::PathStatResponse;
use bollard::query_parameters::{
    ContainerArchiveInfoOptions, DownloadFromContainerOptions, UploadToContainerOptions,
};
use bytes::Bytes;
use clap::Args;
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;

use crate::client::{CliError, Client};
use crate::format::units::human_size_with_precision;

const MODE_DIR: u32 = 1 << 31;
const MODE_SYMLINK: u32 = 1 << 27;
/// Go's `os.ModeType`: every type bit.
const MODE_TYPE: u32 =
    (1 << 31) | (1 << 27) | (1 << 26) | (1 << 25) | (1 << 24) | (1 << 21) | (1 << 19);

#[derive(Debug, Args)]
#[command(
    override_usage = "berth cp [OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n\tberth cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH"
)]
pub(crate) struct CpArgs {
    /// Archive mode (copy all uid/gid information)
    #[arg(short = 'a', long)]
    pub(crate) archive: bool,
    /// Always follow symlinks in SRC_PATH
    #[arg(short = 'L', long = "follow-link")]
    pub(crate) follow_link: bool,
    /// Suppress progress output during copy. Progress output is automatically suppressed if
    /// no terminal is attached
    #[arg(short = 'q', long)]
    pub(crate) quiet: bool,
    #[arg(value_name = "SRC")]
    pub(crate) source: String,
    #[arg(value_name = "DEST")]
    pub(crate) destination: String,
}

#[derive(Debug, Args)]
pub(crate) struct ExportArgs {
    /// Write to a file, instead of STDOUT
    #[arg(short = 'o', long = "output", value_name = "string")]
    pub(crate) output: Option<String>,
    #[arg(value_name = "CONTAINER")]
    pub(crate) container: String,
}

/// docker's `splitCpArg`: `CONTAINER:PATH`, unless the argument is an absolute local path or
/// starts with `.` (`./file:name`).
fn split_cp_arg(arg: &str) -> (Option<&str>, &str) {
    if arg.starts_with('/') {
        return (None, arg);
    }
    match arg.split_once(':') {
        Some((c, p)) if !c.starts_with('.') => (Some(c), p),
        _ => (None, arg),
    }
}

/// Go's `filepath.Clean`.
fn clean(path: &str) -> String {
    let abs = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|p| *p != "..") {
                    parts.pop();
                } else if !abs {
                    parts.push("..");
                }
            }
            c => parts.push(c),
        }
    }
    let joined = parts.join("/");
    match (abs, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

/// Go's `filepath.Base`.
fn base(path: &str) -> &str {
    if path.is_empty() {
        return ".";
    }
    let t = path.trim_end_matches('/');
    if t.is_empty() {
        return "/";
    }
    t.rsplit('/').next().unwrap_or(t)
}

fn specifies_current_dir(path: &str) -> bool {
    base(path) == "."
}

fn asserts_directory(path: &str) -> bool {
    path.ends_with('/') || specifies_current_dir(path)
}

/// moby's `PreserveTrailingDotOrSeparator`.
fn preserve_trailing(cleaned: &str, original: &str) -> String {
    let mut c = cleaned.to_string();
    if !specifies_current_dir(&c) && specifies_current_dir(original) {
        if !c.ends_with('/') {
            c.push('/');
        }
        c.push('.');
    }
    if !c.ends_with('/') && original.ends_with('/') {
        c.push('/');
    }
    c
}

/// moby's `SplitPathDirEntry`: directory and base name, a trailing `.` kept.
fn split_dir_entry(path: &str) -> (String, String) {
    let mut cleaned = clean(path);
    if specifies_current_dir(path) {
        cleaned.push_str("/.");
    }
    let (dir, b) = match cleaned.rfind('/') {
        Some(0) => ("/".to_string(), cleaned[1..].to_string()),
        Some(i) => (cleaned[..i].to_string(), cleaned[i + 1..].to_string()),
        None => (".".to_string(), cleaned.clone()),
    };
    (dir, if b.is_empty() { "/".into() } else { b })
}

/// moby's `GetRebaseName`.
fn rebase_name(path: &str, resolved: &str) -> (String, Option<String>) {
    let mut r = resolved.to_string();
    if specifies_current_dir(path) && !specifies_current_dir(&r) {
        r.push_str("/.");
    }
    if path.ends_with('/') && !r.ends_with('/') {
        r.push('/');
    }
    let rebase = (base(path) != base(&r)).then(|| base(path).to_string());
    (r, rebase)
}

fn abs_local(path: &str) -> Result<String, CliError> {
    let joined = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("{}/{path}", std::env::current_dir()?.display())
    };
    Ok(preserve_trailing(&clean(&joined), path))
}

/// What one side of a copy is (moby's `CopyInfo`).
#[derive(Debug, Clone, Default)]
struct CopyInfo {
    path: String,
    exists: bool,
    is_dir: bool,
    rebase: Option<String>,
}

/// docker's `progressHumanSize`.
fn progress_size(n: u64) -> String {
    human_size_with_precision(n as f64, 3)
}

/// `berth cp`.
pub(crate) async fn cp(client: &Client, args: &CpArgs) -> Result<(), CliError> {
    if args.source.is_empty() {
        return Err(CliError::Message("source can not be empty".into()));
    }
    if args.destination.is_empty() {
        return Err(CliError::Message("destination can not be empty".into()));
    }
    let quiet = args.quiet || !std::io::stdout().is_terminal();
    match (split_cp_arg(&args.source), split_cp_arg(&args.destination)) {
        ((Some(_), _), (Some(_), _)) => Err(CliError::Message(
            "copying between containers is not supported".into(),
        )),
        ((Some(c), src), (None, dst)) => copy_from(client, args, quiet, c, src, dst).await,
        ((None, src), (Some(c), dst)) => copy_to(client, args, quiet, c, src, dst).await,
        _ => Err(CliError::Message(
            "must specify at least one container source".into(),
        )),
    }
}

async fn stat(client: &Client, container: &str, path: &str) -> Result<PathStatResponse, CliError> {
    let opts = ContainerArchiveInfoOptions {
        path: path.to_string(),
    };
    client
        .docker
        .get_container_archive_info(container, Some(opts))
        .await
        .map_err(|e| client.error(e))
}

/// docker's `ValidateOutputPath`.
fn validate_output_path(path: &str) -> Result<(), CliError> {
    let dir = {
        let (d, _) = split_dir_entry(&clean(path));
        d
    };
    if dir != "." && !Path::new(&dir).exists() {
        return Err(CliError::Message(format!(
            "invalid output path: directory {dir:?} does not exist"
        )));
    }
    if let Ok(m) = std::fs::metadata(path)
        && !m.is_dir()
        && !m.is_file()
    {
        return Err(CliError::Message(format!(
            "invalid output path: {path:?} must be a directory or a regular file"
        )));
    }
    Ok(())
}

async fn copy_from(
    client: &Client,
    args: &CpArgs,
    quiet: bool,
    container: &str,
    src: &str,
    dst: &str,
) -> Result<(), CliError> {
    let dst = if dst == "-" {
        dst.to_string()
    } else {
        abs_local(dst)?
    };
    validate_output_path(&dst)?;
    let mut src = src.to_string();
    let mut rebase = None;
    if args.follow_link
        && let Ok(st) = stat(client, container, &src).await
        && st.file_mode & MODE_SYMLINK != 0
    {
        let mut target = st.link_target;
        if !target.starts_with('/') {
            let (parent, _) = split_dir_entry(&src);
            target = clean(&format!("{parent}/{target}"));
        }
        let (t, r) = rebase_name(&src, &target);
        src = t;
        rebase = r;
    }
    // The stat first (the archive request holds the container until it is read), then the
    // archive; a failed stat is reported with the archive request's message.
    let st = match stat(client, container, &src).await {
        Ok(st) => st,
        Err(stat_err) => {
            let opts = DownloadFromContainerOptions { path: src.clone() };
            let mut body = Box::pin(client.docker.download_from_container(container, Some(opts)));
            return match body.next().await {
                Some(Err(e)) => Err(client.error(e)),
                _ => Err(stat_err),
            };
        }
    };
    let opts = DownloadFromContainerOptions { path: src.clone() };
    let mut body = Box::pin(client.docker.download_from_container(container, Some(opts)));
    if dst == "-" {
        let mut out = tokio::io::stdout();
        while let Some(chunk) = body.next().await {
            out.write_all(&chunk.map_err(|e| client.error(e))?).await?;
        }
        out.flush().await?;
        return Ok(());
    }
    let info = CopyInfo {
        path: src,
        exists: true,
        is_dir: st.file_mode & MODE_DIR != 0,
        rebase,
    };
    // Extract on a blocking thread, fed chunk by chunk.
    let (tx, rx) = std::sync::mpsc::sync_channel::<Result<Bytes, String>>(8);
    let dst2 = dst.clone();
    let worker =
        tokio::task::spawn_blocking(move || copy_to_local(ChannelReader::new(rx), &info, &dst2));
    let mut copied: u64 = 0;
    let mut failed = None;
    while let Some(chunk) = body.next().await {
        match chunk {
            Ok(c) => {
                copied += c.len() as u64;
                if tx.send(Ok(c)).is_err() {
                    break;
                }
            }
            Err(e) => {
                let _ = tx.send(Err(e.to_string()));
                failed = Some(client.error(e));
                break;
            }
        }
    }
    drop(tx);
    let res = worker
        .await
        .map_err(|e| CliError::Message(format!("extraction failed: {e}")))?;
    if let Some(e) = failed {
        return Err(e);
    }
    res?;
    if !quiet {
        eprintln!("Successfully copied {} to {dst}", progress_size(copied));
    }
    Ok(())
}

/// A blocking reader over chunks sent from the async side.
struct ChannelReader {
    rx: std::sync::mpsc::Receiver<Result<Bytes, String>>,
    buf: Bytes,
}

impl ChannelReader {
    fn new(rx: std::sync::mpsc::Receiver<Result<Bytes, String>>) -> Self {
        Self {
            rx,
            buf: Bytes::new(),
        }
    }
}

impl Read for ChannelReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.buf.is_empty() {
            match self.rx.recv() {
                Ok(Ok(b)) => self.buf = b,
                Ok(Err(e)) => return Err(std::io::Error::other(e)),
                Err(_) => return Ok(0),
            }
        }
        let n = out.len().min(self.buf.len());
        out[..n].copy_from_slice(&self.buf[..n]);
        self.buf = self.buf.slice(n..);
        Ok(n)
    }
}

/// moby's `CopyInfoDestinationPath` (local side).
fn local_destination(path: &str) -> Result<CopyInfo, CliError> {
    let mut path = path.to_string();
    for _ in 0..=10 {
        match std::fs::symlink_metadata(&path) {
            Ok(m) if m.file_type().is_symlink() => {
                let target = std::fs::read_link(&path)?;
                let t = target.to_string_lossy();
                path = if t.starts_with('/') {
                    t.into_owned()
                } else {
                    let (parent, _) = split_dir_entry(&path);
                    clean(&format!("{parent}/{t}"))
                };
            }
            Ok(m) => {
                return Ok(CopyInfo {
                    path,
                    exists: true,
                    is_dir: m.is_dir(),
                    rebase: None,
                });
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let (parent, _) = split_dir_entry(&path);
                let m = std::fs::metadata(&parent)
                    .map_err(|e| CliError::Message(format!("stat {parent}: {e}")))?;
                if !m.is_dir() {
                    return Err(CliError::Message("not a directory".into()));
                }
                return Ok(CopyInfo {
                    path,
                    ..Default::default()
                });
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(CliError::Message(format!("too many symlinks in {path}")))
}

/// moby's `PrepareArchiveCopy`: the directory to extract into, and the renaming of the
/// archive's first path element (old, new) to apply on the way.
fn prepare_copy(
    src: &CopyInfo,
    dst: &CopyInfo,
) -> Result<(String, Option<(String, String)>), CliError> {
    let (dst_dir, dst_base) = split_dir_entry(&dst.path);
    let (_, mut src_base) = split_dir_entry(&src.path);
    if let Some(r) = &src.rebase {
        src_base.clone_from(r);
    }
    if dst.exists && dst.is_dir {
        return Ok((dst.path.clone(), None));
    }
    if dst.exists && src.is_dir {
        return Err(CliError::Message("cannot copy directory".into()));
    }
    if !dst.exists && !src.is_dir && asserts_directory(&dst.path) {
        return Err(CliError::Message("no such directory".into()));
    }
    Ok((dst_dir, Some((src_base, dst_base))))
}

/// Replaces the first path element `old` of `name` with `new` (`/` as `old` matches the
/// leading slash of absolute names).
fn rebase_entry(name: &[u8], old: &str, new: &str) -> Vec<u8> {
    let old = if old == "/" { "" } else { old };
    match name.strip_prefix(old.as_bytes()) {
        Some(rest) if rest.is_empty() || rest.starts_with(b"/") || old.is_empty() => {
            let mut out = new.as_bytes().to_vec();
            if old.is_empty() && !rest.starts_with(b"/") && !rest.is_empty() {
                out.push(b'/');
            }
            out.extend_from_slice(rest);
            out
        }
        _ => name.to_vec(),
    }
}

/// moby's `CopyTo` on the local side.
fn copy_to_local(content: impl Read, src: &CopyInfo, dst: &str) -> Result<(), CliError> {
    let dst_info = local_destination(dst)?;
    let (dir, rebase) = prepare_copy(src, &dst_info)?;
    // With `-L`, the archive is of the link's target: its name goes back to the link's first.
    let mut rebases = Vec::new();
    if let Some(r) = &src.rebase {
        let (_, b) = split_dir_entry(&src.path);
        rebases.push((b, r.clone()));
    }
    rebases.extend(rebase);
    untar(content, Path::new(&dir), &rebases)
}

fn outside(name: &str, dest: &Path) -> CliError {
    CliError::Message(format!(
        "{name:?} is outside of {:?}",
        dest.display().to_string()
    ))
}

/// The entry's path under `dest`, lexically: `..` refused, a leading `/` anchored at `dest`.
fn entry_path(dest: &Path, name: &[u8]) -> Result<Option<PathBuf>, CliError> {
    let text = String::from_utf8_lossy(name).into_owned();
    let mut rel = PathBuf::new();
    for c in Path::new(&text).components() {
        match c {
            Component::Normal(n) => rel.push(n),
            Component::ParentDir => return Err(outside(&text, dest)),
            _ => {}
        }
    }
    Ok((!rel.as_os_str().is_empty()).then(|| dest.join(rel)))
}

/// Refuses a path under `dest` whose existing parents (below `dest`) include a symlink.
fn check_no_symlink_parents(dest: &Path, path: &Path) -> Result<(), CliError> {
    let rel = path.strip_prefix(dest).unwrap_or(path);
    let mut cur = dest.to_path_buf();
    let comps: Vec<_> = rel.components().collect();
    for c in comps.iter().take(comps.len().saturating_sub(1)) {
        cur.push(c);
        if let Ok(m) = std::fs::symlink_metadata(&cur)
            && m.file_type().is_symlink()
        {
            return Err(CliError::Message(format!(
                "refusing to extract through the symlink {}",
                cur.display()
            )));
        }
    }
    Ok(())
}

/// Unpacks `content` into the existing directory `dest` (no chown, no overwriting a directory
/// with a non-directory or the reverse), renaming the first path element if asked.
fn untar(content: impl Read, dest: &Path, rebases: &[(String, String)]) -> Result<(), CliError> {
    use std::os::unix::fs::PermissionsExt;
    let mut archive = tar::Archive::new(content);
    let mut dirs: VecDeque<(PathBuf, u32, u64)> = VecDeque::new();
    for entry in archive.entries()? {
        let mut entry = entry?;
        let kind = entry.header().entry_type();
        let raw = entry.path_bytes().into_owned();
        let name = rebases
            .iter()
            .fold(raw, |n, (old, new)| rebase_entry(&n, old, new));
        let Some(path) = entry_path(dest, &name)? else {
            continue;
        };
        check_no_symlink_parents(dest, &path)?;
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let shown = path.display().to_string();
        let existing = std::fs::symlink_metadata(&path).ok();
        if let Some(m) = &existing {
            if m.is_dir() && !kind.is_dir() {
                return Err(CliError::Message(format!(
                    "cannot overwrite directory {shown:?} with non-directory {:?}",
                    dest.display().to_string()
                )));
            }
            if !m.is_dir() && kind.is_dir() {
                return Err(CliError::Message(format!(
                    "cannot overwrite non-directory {shown:?} with directory {:?}",
                    dest.display().to_string()
                )));
            }
            if !m.is_dir() {
                std::fs::remove_file(&path)?;
            }
        }
        let mode = entry.header().mode().unwrap_or(0o644) & 0o7777;
        let mtime = entry.header().mtime().unwrap_or(0);
        match kind {
            tar::EntryType::Directory => {
                if existing.is_none() {
                    std::fs::create_dir(&path)?;
                }
                dirs.push_back((path, mode, mtime));
                continue;
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let mut f = std::fs::File::create(&path)?;
                std::io::copy(&mut entry, &mut f)?;
                f.set_permissions(std::fs::Permissions::from_mode(mode))?;
                f.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(mtime))?;
            }
            tar::EntryType::Symlink => {
                let target = entry.link_name_bytes().unwrap_or_default().into_owned();
                let t = String::from_utf8_lossy(&target).into_owned();
                // moby: the target, joined to the link's directory, must stay inside.
                let parent = path.parent().unwrap_or(dest);
                let joined = clean(&format!("{}/{t}", parent.display()));
                if !Path::new(&joined).starts_with(dest) {
                    return Err(CliError::Message(format!(
                        "invalid symlink {shown:?} -> {t:?}"
                    )));
                }
                std::os::unix::fs::symlink(Path::new(&t), &path)?;
            }
            tar::EntryType::Link => {
                let target = entry.link_name_bytes().unwrap_or_default().into_owned();
                let target = rebases
                    .iter()
                    .fold(target, |n, (old, new)| rebase_entry(&n, old, new));
                let Some(t) = entry_path(dest, &target)? else {
                    return Err(CliError::Message(format!("invalid hardlink {shown:?}")));
                };
                check_no_symlink_parents(dest, &t)?;
                std::fs::hard_link(&t, &path)?;
            }
            // Device nodes and fifos need privileges a client may not have: skipped.
            _ => {}
        }
    }
    // Directories last, deepest first, so their entries do not move their mtimes.
    let mut dirs: Vec<_> = dirs.into_iter().collect();
    dirs.sort_by_key(|d| std::cmp::Reverse(d.0.components().count()));
    for (path, mode, mtime) in dirs {
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))?;
        if let Ok(f) = std::fs::File::open(&path) {
            let _ = f.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(mtime));
        }
    }
    Ok(())
}

/// moby's `CopyInfoSourcePath` (local side).
fn local_source(path: &str, follow: bool) -> Result<CopyInfo, CliError> {
    let lstat_err =
        |p: &str, e: std::io::Error| CliError::Message(format!("lstat {p}: {}", go_io_text(&e)));
    let (resolved, rebase) = if follow {
        let r = std::fs::canonicalize(path).map_err(|e| lstat_err(path, e))?;
        rebase_name(path, &r.display().to_string())
    } else {
        let i = path.rfind('/').map_or(0, |i| i + 1);
        let (dir, b) = (&path[..i], &path[i..]);
        let dir = if dir.is_empty() { "." } else { dir };
        let rd = std::fs::canonicalize(dir).map_err(|e| lstat_err(path, e))?;
        let r = format!("{}/{b}", rd.display());
        let rebase =
            (path.ends_with('/') && base(path) != base(&r)).then(|| base(path).to_string());
        (r, rebase)
    };
    let m = std::fs::symlink_metadata(&resolved).map_err(|e| lstat_err(&resolved, e))?;
    Ok(CopyInfo {
        path: resolved,
        exists: true,
        is_dir: m.is_dir(),
        rebase,
    })
}

fn go_io_text(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string(),
    }
}

/// Writes a tar of the local `src` with its top entry named `top` (moby's
/// `TarResourceRebase` + `PrepareArchiveCopy` in one pass) to `out`.
fn local_tar(src: &CopyInfo, top: &str, out: impl Write) -> std::io::Result<()> {
    let mut b = tar::Builder::new(out);
    b.follow_symlinks(false);
    let (dir, sbase) = split_dir_entry(&src.path);
    let root = if sbase == "." {
        PathBuf::from(&dir)
    } else {
        Path::new(&dir).join(&sbase)
    };
    let top = top.trim_end_matches('/');
    let name_of = |rel: &Path| -> PathBuf {
        match (top.is_empty() || top == ".", rel.as_os_str().is_empty()) {
            (true, true) => PathBuf::from("."),
            (true, false) => rel.to_path_buf(),
            (false, true) => PathBuf::from(top),
            (false, false) => Path::new(top).join(rel),
        }
    };
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let path = if rel.as_os_str().is_empty() {
            root.clone()
        } else {
            root.join(&rel)
        };
        let m = std::fs::symlink_metadata(&path)?;
        if m.file_type().is_socket_like() {
            continue;
        }
        b.append_path_with_name(&path, name_of(&rel))?;
        if m.is_dir() {
            let mut names: Vec<_> = std::fs::read_dir(&path)?
                .filter_map(|e| e.ok().map(|e| e.file_name()))
                .collect();
            names.sort();
            for n in names.into_iter().rev() {
                stack.push(rel.join(n));
            }
        }
    }
    b.finish()
}

trait SocketLike {
    fn is_socket_like(&self) -> bool;
}

impl SocketLike for std::fs::FileType {
    fn is_socket_like(&self) -> bool {
        use std::os::unix::fs::FileTypeExt;
        self.is_socket()
    }
}

/// A request body being produced.
type ByteBody =
    std::pin::Pin<Box<dyn futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send>>;

/// Host → container: stat the destination, tar the source renamed for it, upload.
async fn copy_to(
    client: &Client,
    args: &CpArgs,
    quiet: bool,
    container: &str,
    src: &str,
    dst: &str,
) -> Result<(), CliError> {
    let src = if src == "-" {
        src.to_string()
    } else {
        abs_local(src)?
    };
    let mut dst_info = CopyInfo {
        path: dst.to_string(),
        ..Default::default()
    };
    if let Ok(mut st) = stat(client, container, dst).await {
        let mut ok = true;
        if st.file_mode & MODE_SYMLINK != 0 {
            let mut target = st.link_target.clone();
            if !target.starts_with('/') {
                let (parent, _) = split_dir_entry(dst);
                target = clean(&format!("{parent}/{target}"));
            }
            dst_info.path = target.clone();
            match stat(client, container, &target).await {
                Ok(s) => st = s,
                Err(_) => ok = false,
            }
        }
        if ok {
            let kind = st.file_mode & MODE_TYPE;
            if kind != 0 && kind != MODE_DIR {
                return Err(CliError::Message(format!(
                    "destination \"{container}:{dst}\" must be a directory or a regular file"
                )));
            }
            dst_info.exists = true;
            dst_info.is_dir = st.file_mode & MODE_DIR != 0;
        }
    }
    let counted = Arc::new(AtomicU64::new(0));
    let (target_dir, body): (String, ByteBody) = if src == "-" {
        if !dst_info.is_dir {
            return Err(CliError::Message(format!(
                "destination \"{container}:{dst}\" must be a directory"
            )));
        }
        let stdin = tokio_util::io::ReaderStream::with_capacity(tokio::io::stdin(), 256 * 1024);
        (dst_info.path.clone(), Box::pin(stdin))
    } else {
        let src_info = local_source(&src, args.follow_link)?;
        let (dir, rebase) = prepare_copy(&src_info, &dst_info)?;
        let (_, sbase) = split_dir_entry(&src_info.path);
        let top = match rebase {
            Some((_, new)) => new,
            None => src_info.rebase.clone().unwrap_or(sbase),
        };
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(8);
        let count = Arc::clone(&counted);
        std::thread::spawn(move || {
            let w = ChannelWriter {
                tx: tx.clone(),
                count,
            };
            if let Err(e) = local_tar(
                &src_info,
                &top,
                std::io::BufWriter::with_capacity(64 * 1024, w),
            ) {
                let _ = tx.blocking_send(Err(e));
            }
        });
        let stream = tokio_stream_of(rx);
        (dir, Box::pin(stream))
    };
    let opts = UploadToContainerOptions {
        path: target_dir,
        no_overwrite_dir_non_dir: Some("true".into()),
        copy_uidgid: args.archive.then(|| "true".into()),
    };
    client
        .docker
        .upload_to_container(container, Some(opts), bollard::body_try_stream(body))
        .await
        .map_err(|e| client.error(e))?;
    if !quiet {
        eprintln!(
            "Successfully copied {} to {container}:{}",
            progress_size(counted.load(Ordering::Relaxed)),
            dst_info.path
        );
    }
    Ok(())
}

/// A blocking `Write` feeding a request body.
struct ChannelWriter {
    tx: tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
    /// Bytes sent, for the final report.
    count: Arc<AtomicU64>,
}

impl Write for ChannelWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.tx
            .blocking_send(Ok(Bytes::copy_from_slice(b)))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "upload ended"))?;
        self.count.fetch_add(b.len() as u64, Ordering::Relaxed);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn tokio_stream_of(
    mut rx: tokio::sync::mpsc::Receiver<Result<Bytes, std::io::Error>>,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// `berth export`.
pub(crate) async fn export(client: &Client, args: &ExportArgs) -> Result<(), CliError> {
    let output = args.output.as_deref().filter(|o| !o.is_empty());
    if output.is_none() && std::io::stdout().is_terminal() {
        return Err(CliError::Message(
            "cowardly refusing to save to a terminal. Use the -o flag or redirect".into(),
        ));
    }
    let mut stream = Box::pin(client.docker.export_container(&args.container));
    match output {
        None => {
            let mut out = tokio::io::stdout();
            while let Some(chunk) = stream.next().await {
                out.write_all(&chunk.map_err(|e| client.error(e))?).await?;
            }
            out.flush().await?;
        }
        Some(path) => {
            let mut f = tokio::fs::File::create(path).await?;
            while let Some(chunk) = stream.next().await {
                f.write_all(&chunk.map_err(|e| client.error(e))?).await?;
            }
            f.flush().await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cp_args_split_like_docker() {
        assert_eq!(split_cp_arg("c:/etc"), (Some("c"), "/etc"));
        assert_eq!(split_cp_arg("/abs:x"), (None, "/abs:x"));
        assert_eq!(split_cp_arg("./f:x"), (None, "./f:x"));
        assert_eq!(split_cp_arg("file"), (None, "file"));
        assert_eq!(split_cp_arg("-"), (None, "-"));
    }

    #[test]
    fn path_helpers_match_go() {
        assert_eq!(clean("/a/./b/../c/"), "/a/c");
        assert_eq!(clean("a/../.."), "..");
        assert_eq!(preserve_trailing("/a/b", "a/b/."), "/a/b/.");
        assert_eq!(preserve_trailing("/a/b", "a/b/"), "/a/b/");
        assert_eq!(
            split_dir_entry("/a/b/."),
            ("/a/b".to_string(), ".".to_string())
        );
        assert_eq!(
            split_dir_entry("/a/b/"),
            ("/a".to_string(), "b".to_string())
        );
        assert_eq!(split_dir_entry("/"), ("/".to_string(), "/".to_string()));
        assert_eq!(
            rebase_name("/l/", "/target"),
            ("/target/".to_string(), Some("l".into()))
        );
        assert_eq!(rebase_entry(b"etc/passwd", "etc", "x"), b"x/passwd");
        assert_eq!(rebase_entry(b"etcx/passwd", "etc", "x"), b"etcx/passwd");
        assert_eq!(rebase_entry(b"./sub", ".", "dd"), b"dd/sub");
        assert_eq!(rebase_entry(b"/bin/sh", "/", "root"), b"root/bin/sh");
        assert_eq!(progress_size(2048), "2.05kB");
    }

    #[test]
    fn prepare_copy_follows_moby() {
        let dir = |p: &str, exists, is_dir| CopyInfo {
            path: p.into(),
            exists,
            is_dir,
            rebase: None,
        };
        let (d, r) = prepare_copy(&dir("/c/etc", true, true), &dir("/h/out", true, true)).unwrap();
        assert_eq!((d.as_str(), r), ("/h/out", None));
        let (d, r) =
            prepare_copy(&dir("/c/etc", true, true), &dir("/h/new", false, false)).unwrap();
        assert_eq!((d.as_str(), r), ("/h", Some(("etc".into(), "new".into()))));
        assert!(prepare_copy(&dir("/c/etc", true, true), &dir("/h/f", true, false)).is_err());
        assert!(prepare_copy(&dir("/c/pw", true, false), &dir("/h/new/", false, false)).is_err());
    }

    fn raw(name: &[u8], kind: tar::EntryType, link: &[u8], data: &[u8]) -> Vec<u8> {
        let mut h = tar::Header::new_gnu();
        h.as_old_mut().name[..name.len()].copy_from_slice(name);
        h.as_old_mut().linkname[..link.len()].copy_from_slice(link);
        h.set_entry_type(kind);
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        let mut out = h.as_bytes().to_vec();
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
        out
    }

    #[test]
    fn local_extraction_refuses_escapes() {
        let d = tempfile_dir();
        let dest = d.join("dest");
        std::fs::create_dir_all(&dest).unwrap();
        let t = [
            raw(b"../evil", tar::EntryType::Regular, b"", b"x"),
            vec![0; 1024],
        ]
        .concat();
        assert!(untar(t.as_slice(), &dest, &[]).is_err());
        assert!(!d.join("evil").exists());
        let t = [
            raw(b"l", tar::EntryType::Symlink, b"../..", b""),
            vec![0; 1024],
        ]
        .concat();
        assert!(untar(t.as_slice(), &dest, &[]).is_err());
        // An absolute symlink is joined under the link's directory by moby's check, so it is
        // created; writing through it is refused.
        let t = [
            raw(
                b"abs",
                tar::EntryType::Symlink,
                d.to_str().unwrap().as_bytes(),
                b"",
            ),
            raw(b"abs/escaped", tar::EntryType::Regular, b"", b"x"),
            vec![0; 1024],
        ]
        .concat();
        assert!(untar(t.as_slice(), &dest, &[]).is_err());
        assert!(!d.join("escaped").exists());
        let t = [
            raw(b"ok/f", tar::EntryType::Regular, b"", b"fine"),
            vec![0; 1024],
        ]
        .concat();
        untar(t.as_slice(), &dest, &[("ok".into(), "renamed".into())]).unwrap();
        assert_eq!(std::fs::read(dest.join("renamed/f")).unwrap(), b"fine");
        std::fs::remove_dir_all(&d).unwrap();
    }

    fn tempfile_dir() -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "berth-cli-cp-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let d = PathBuf::from(d.to_string_lossy().replace(['(', ')'], ""));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }
}
