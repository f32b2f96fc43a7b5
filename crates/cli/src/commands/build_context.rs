//! The build context `berth build` uploads, made as the docker CLI makes it for the legacy
//! builder (`cli/command/image/build.go` and `build/context.go`): a local directory is
//! resolved (symlinks followed), its `.dockerignore` applied client-side with the docker CLI's
//! rules (`builder::ignore`; `.dockerignore` and the Dockerfile are always sent), and it is
//! tarred on the fly with owners 0:0; a Dockerfile given with `-f` outside the context (or
//! `-f -`) travels inside the tar as `.dockerfile.<random>`, added to the sent `.dockerignore`
//! so the daemon drops it from the context; `-` reads an archive (sent as it is) or a
//! Dockerfile from stdin.
//!
//! Owns: paths, the walk, the tar stream. Must not know: HTTP or the daemon's messages.

use std::collections::HashMap;
use std::fs::{File, Metadata};
use std::io::{self, Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Component, Path, PathBuf};

use crate::client::CliError;

/// What `prepare` decided: the body to send and the `dockerfile` query value.
#[derive(Debug)]
pub(crate) struct Prepared {
    /// The tar to send.
    pub(crate) body: Body,
    /// The Dockerfile's path inside the context (`dockerfile=`), empty for the daemon's default.
    pub(crate) dockerfile: String,
}

/// Where the context's bytes come from.
#[derive(Debug)]
pub(crate) enum Body {
    /// A directory, tarred while it is sent.
    Dir(DirTar),
    /// Bytes already in memory (stdin's archive, or a tar holding stdin's Dockerfile).
    Memory(Vec<u8>),
}

/// A directory's entries to tar (already filtered by `.dockerignore`), in walk order.
#[derive(Debug)]
pub(crate) struct DirTar {
    items: Vec<Item>,
    /// A Dockerfile that is not in the context: its name in the tar and its content.
    extra: Option<(String, Vec<u8>)>,
}

#[derive(Debug)]
struct Item {
    /// `/`-separated path relative to the context.
    rel: String,
    path: PathBuf,
    meta: Metadata,
}

fn msg(text: impl Into<String>) -> CliError {
    CliError::Message(text.into())
}

/// An OS error worded as Go's: `lstat /x: no such file or directory`.
fn go_err(op: &str, path: &Path, e: &io::Error) -> String {
    let text = e.to_string();
    let text = text.split(" (os error").next().unwrap_or(&text);
    let mut chars = text.chars();
    let lowered = match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => String::new(),
    };
    format!("{op} {}: {lowered}", path.display())
}

/// `filepath.Abs`: joined to the current directory and cleaned (no symlinks resolved).
fn absolute(p: &str) -> Result<PathBuf, CliError> {
    let joined = std::env::current_dir()?.join(p);
    let mut out = PathBuf::from("/");
    for c in joined.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(n) => out.push(n),
            _ => {}
        }
    }
    Ok(out)
}

/// `filepath.Rel(base, target)` for two clean absolute paths.
fn relative(base: &Path, target: &Path) -> String {
    let b: Vec<_> = base.components().collect();
    let t: Vec<_> = target.components().collect();
    let common = b.iter().zip(&t).take_while(|(x, y)| x == y).count();
    let mut parts: Vec<String> = vec!["..".to_string(); b.len() - common];
    parts.extend(
        t[common..]
            .iter()
            .map(|c| c.as_os_str().to_string_lossy().into_owned()),
    );
    if parts.is_empty() {
        ".".to_string()
    } else {
        parts.join("/")
    }
}

/// Go's `IsArchive`: a compressed stream or something that reads as a tar header.
fn is_archive(head: &[u8]) -> bool {
    const MAGICS: [&[u8]; 4] = [
        &[0x1f, 0x8b, 0x08],
        b"BZh",
        &[0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00],
        &[0x28, 0xb5, 0x2f, 0xfd],
    ];
    if MAGICS.iter().any(|m| head.starts_with(m)) {
        return true;
    }
    if head.len() < 512 {
        return false;
    }
    let mut ar = tar::Archive::new(&head[..512]);
    ar.entries()
        .ok()
        .and_then(|mut e| e.next())
        .is_some_and(|e| e.is_ok())
}

/// Ten random bytes as hex (the `.dockerfile.` suffix, 20 characters as docker's).
fn random_suffix() -> Result<String, CliError> {
    let mut b = [0u8; 10];
    File::open("/dev/urandom")?.read_exact(&mut b)?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

/// Resolves the context and Dockerfile as `docker build` does. `stdin` is read when the context
/// or the Dockerfile is `-`.
pub(crate) fn prepare(
    context: &str,
    file: Option<&str>,
    stdin: &mut dyn Read,
) -> Result<Prepared, CliError> {
    let file = file.filter(|f| !f.is_empty());
    if context == "-" {
        if file == Some("-") {
            return Err(msg(
                "invalid argument: can't use stdin for both build context and dockerfile",
            ));
        }
        let mut data = Vec::new();
        stdin.read_to_end(&mut data)?;
        if is_archive(&data) {
            return Ok(Prepared {
                body: Body::Memory(data),
                dockerfile: file.unwrap_or("").to_string(),
            });
        }
        return Ok(Prepared {
            body: Body::Memory(single_file_tar("Dockerfile", &data, 0o644)?),
            dockerfile: "Dockerfile".to_string(),
        });
    }
    let ctx = resolve_context(context)?;
    let from_stdin = file == Some("-");
    let (rel_dockerfile, outside) = if from_stdin {
        ("-".to_string(), None)
    } else {
        let abs = match file {
            Some(f) => absolute(f)?,
            None => {
                let df = ctx.join("Dockerfile");
                let alt = ctx.join("dockerfile");
                if std::fs::symlink_metadata(&df).is_err()
                    && std::fs::symlink_metadata(&alt).is_ok()
                {
                    alt
                } else {
                    df
                }
            }
        };
        let real = std::fs::canonicalize(&abs).map_err(|e| {
            msg(format!(
                "unable to prepare context: unable to evaluate symlinks in Dockerfile path: {}",
                go_err("lstat", &abs, &e)
            ))
        })?;
        let rel = relative(&ctx, &real);
        let outside = rel.starts_with("../").then(|| abs.clone());
        (rel, outside)
    };
    let extra = if from_stdin {
        let mut data = Vec::new();
        stdin.read_to_end(&mut data)?;
        Some(data)
    } else if let Some(path) = &outside {
        Some(std::fs::read(path).map_err(|e| {
            msg(format!(
                "unable to open Dockerfile: {}",
                go_err("open", path, &e)
            ))
        })?)
    } else {
        None
    };
    let patterns = match std::fs::read_to_string(ctx.join(".dockerignore")) {
        Ok(text) => builder::ignore::read_patterns(&text),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(e) => {
            return Err(msg(format!(
                "failed to read dockerignore: {}",
                go_err("open", &ctx.join(".dockerignore"), &e)
            )));
        }
    };
    // The docker CLI keeps `.dockerignore` and the Dockerfile (unless it comes from stdin).
    let keep = if from_stdin {
        ".dockerignore"
    } else {
        rel_dockerfile.as_str()
    };
    let upload =
        builder::ignore::patterns_for_upload(&patterns, keep).map_err(|e| msg(e.to_string()))?;
    let ignore = builder::Ignore::new(&upload).map_err(|e| msg(e.to_string()))?;
    let mut items = Vec::new();
    walk(&ctx, "", &ignore, &mut items).map_err(|e| msg(format!("error checking context: {e}")))?;
    let (extra, dockerfile) = match extra {
        Some(content) => {
            let name = format!(".dockerfile.{}", random_suffix()?);
            (Some((name.clone(), content)), name)
        }
        None => (None, rel_dockerfile),
    };
    Ok(Prepared {
        body: Body::Dir(DirTar { items, extra }),
        dockerfile,
    })
}

/// `ResolveAndValidateContextPath`, with `DetectContextType`'s "not found" first.
fn resolve_context(context: &str) -> Result<PathBuf, CliError> {
    if std::fs::symlink_metadata(context).is_err() {
        return Err(msg(format!(
            "unable to prepare context: path {context:?} not found"
        )));
    }
    let abs = absolute(context)?;
    let real = std::fs::canonicalize(&abs).map_err(|e| {
        msg(format!(
            "unable to prepare context: unable to evaluate symlinks in context path: {}",
            go_err("lstat", &abs, &e)
        ))
    })?;
    if !real.is_dir() {
        return Err(msg(format!(
            "unable to prepare context: context must be a directory: {}",
            real.display()
        )));
    }
    Ok(real)
}

/// Lexical walk (Go's `filepath.Walk` order), skipping excluded entries and sockets; an
/// excluded directory is entered only when an exception could re-include something below it,
/// and then gets no entry of its own (moby's `TarWithOptions`).
fn walk(dir: &Path, prefix: &str, ignore: &builder::Ignore, out: &mut Vec<Item>) -> io::Result<()> {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| io::Error::new(e.kind(), go_err("open", dir, &e)))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<io::Result<_>>()?;
    names.sort_by(|a, b| a.as_encoded_bytes().cmp(b.as_encoded_bytes()));
    for name in names {
        let path = dir.join(&name);
        let rel = format!("{prefix}{}", name.to_string_lossy());
        let meta = std::fs::symlink_metadata(&path)
            .map_err(|e| io::Error::new(e.kind(), format!("can't stat '{}'", path.display())))?;
        let ft = meta.file_type();
        if ft.is_socket() {
            continue;
        }
        if ignore.excluded(&rel) {
            if ft.is_dir() && !ignore.can_skip_dir(&rel) {
                walk(&path, &format!("{rel}/"), ignore, out)?;
            }
            continue;
        }
        let is_dir = ft.is_dir();
        out.push(Item {
            rel: rel.clone(),
            path: path.clone(),
            meta,
        });
        if is_dir {
            walk(&path, &format!("{rel}/"), ignore, out)?;
        }
    }
    Ok(())
}

/// A tar holding one regular file (stdin's Dockerfile, as `WriteTempDockerfile` + `Tar`).
fn single_file_tar(name: &str, data: &[u8], mode: u32) -> io::Result<Vec<u8>> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = header(tar::EntryType::Regular, mode, data.len() as u64, now());
    b.append_data(&mut h, name, data)?;
    b.into_inner()
}

/// A ustar header owned by 0:0.
fn header(kind: tar::EntryType, mode: u32, size: u64, mtime: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_size(size);
    h.set_mtime(mtime);
    h
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn dev_major(rdev: u64) -> u32 {
    (((rdev >> 8) & 0xfff) | ((rdev >> 32) & !0xfff)) as u32
}

fn dev_minor(rdev: u64) -> u32 {
    ((rdev & 0xff) | ((rdev >> 12) & !0xff)) as u32
}

impl Body {
    /// Writes the tar to `w` (run on a blocking thread).
    pub(crate) fn write_to(self, mut w: impl Write) -> io::Result<()> {
        match self {
            Body::Memory(data) => {
                w.write_all(&data)?;
                w.flush()
            }
            Body::Dir(d) => d.write_to(w),
        }
    }
}

impl DirTar {
    fn write_to(self, w: impl Write) -> io::Result<()> {
        let mut b = tar::Builder::new(w);
        let mut links: HashMap<(u64, u64), String> = HashMap::new();
        let mut saw_ignore = false;
        for item in self.items {
            let meta = &item.meta;
            let ft = meta.file_type();
            let mut h = header(
                tar::EntryType::Regular,
                meta.mode() & 0o7777,
                0,
                u64::try_from(meta.mtime()).unwrap_or(0),
            );
            if ft.is_dir() {
                h.set_entry_type(tar::EntryType::Directory);
                b.append_data(&mut h, format!("{}/", item.rel), io::empty())?;
            } else if ft.is_symlink() {
                h.set_entry_type(tar::EntryType::Symlink);
                let target = std::fs::read_link(&item.path)?;
                b.append_link(&mut h, &item.rel, target)?;
            } else if ft.is_file() {
                if meta.nlink() > 1 {
                    if let Some(first) = links.get(&(meta.dev(), meta.ino())) {
                        h.set_entry_type(tar::EntryType::Link);
                        b.append_link(&mut h, &item.rel, first)?;
                        continue;
                    }
                    links.insert((meta.dev(), meta.ino()), item.rel.clone());
                }
                h.set_entry_type(tar::EntryType::Regular);
                if item.rel == ".dockerignore"
                    && let Some((name, _)) = &self.extra
                {
                    saw_ignore = true;
                    let mut text = std::fs::read(&item.path)?;
                    text.extend_from_slice(format!("\n{name}\n").as_bytes());
                    h.set_size(text.len() as u64);
                    b.append_data(&mut h, &item.rel, text.as_slice())?;
                    continue;
                }
                let len = meta.len();
                h.set_size(len);
                let f = File::open(&item.path)?;
                // Exactly `len` bytes even if the file changed meanwhile.
                let data = f.take(len).chain(io::repeat(0)).take(len);
                b.append_data(&mut h, &item.rel, data)?;
            } else {
                let rdev = meta.rdev();
                h.set_entry_type(if ft.is_fifo() {
                    tar::EntryType::Fifo
                } else if ft.is_char_device() {
                    tar::EntryType::Char
                } else {
                    tar::EntryType::Block
                });
                if !ft.is_fifo() {
                    h.set_device_major(dev_major(rdev))?;
                    h.set_device_minor(dev_minor(rdev))?;
                }
                b.append_data(&mut h, &item.rel, io::empty())?;
            }
        }
        if let Some((name, content)) = self.extra {
            let now = now();
            if !saw_ignore {
                let text = format!(".dockerignore\n{name}\n");
                let mut h = header(tar::EntryType::Regular, 0o600, text.len() as u64, 0);
                b.append_data(&mut h, ".dockerignore", text.as_bytes())?;
            }
            let mut h = header(tar::EntryType::Regular, 0o600, content.len() as u64, now);
            b.append_data(&mut h, &name, content.as_slice())?;
        }
        b.into_inner()?.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmpdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "berth-build-ctx-{tag}-{}-{}",
            std::process::id(),
            random_suffix().unwrap()
        ));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn names(p: Prepared) -> (Vec<(String, Vec<u8>)>, String) {
        let mut buf = Vec::new();
        p.body.write_to(&mut buf).unwrap();
        let mut ar = tar::Archive::new(buf.as_slice());
        let mut out = Vec::new();
        for e in ar.entries().unwrap() {
            let mut e = e.unwrap();
            assert_eq!(e.header().uid().unwrap(), 0);
            let name = e.path().unwrap().to_string_lossy().into_owned();
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            out.push((name, data));
        }
        (out, p.dockerfile)
    }

    #[test]
    fn dockerignore_is_applied_and_build_files_kept() {
        let d = tmpdir("ign");
        std::fs::write(d.join("Dockerfile"), "FROM x\n").unwrap();
        std::fs::write(d.join(".dockerignore"), "*\n!keep\n").unwrap();
        std::fs::write(d.join("keep"), "k").unwrap();
        std::fs::write(d.join("big"), "b").unwrap();
        std::fs::create_dir_all(d.join("sub/deep")).unwrap();
        std::fs::write(d.join("sub/deep/x"), "x").unwrap();
        let p = prepare(d.to_str().unwrap(), None, &mut io::empty()).unwrap();
        let (entries, df) = names(p);
        let n: Vec<&str> = entries.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(n, vec![".dockerignore", "Dockerfile", "keep"]);
        assert_eq!(df, "Dockerfile");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn dockerfile_outside_the_context_travels_under_a_random_name() {
        let d = tmpdir("out");
        std::fs::create_dir_all(d.join("ctx/dir")).unwrap();
        std::fs::write(d.join("ctx/dir/a"), "a").unwrap();
        std::fs::write(d.join("Other.df"), "FROM y\n").unwrap();
        let p = prepare(
            d.join("ctx").to_str().unwrap(),
            Some(d.join("Other.df").to_str().unwrap()),
            &mut io::empty(),
        )
        .unwrap();
        let (entries, df) = names(p);
        assert!(df.starts_with(".dockerfile.") && df.len() == ".dockerfile.".len() + 20);
        let n: Vec<&str> = entries.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(n, vec!["dir/", "dir/a", ".dockerignore", df.as_str()]);
        assert_eq!(entries[2].1, format!(".dockerignore\n{df}\n").into_bytes());
        assert_eq!(entries[3].1, b"FROM y\n");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn stdin_contexts_and_errors() {
        let p = prepare("-", None, &mut &b"FROM z\n"[..]).unwrap();
        let (entries, df) = names(p);
        assert_eq!(df, "Dockerfile");
        assert_eq!(
            entries,
            vec![("Dockerfile".to_string(), b"FROM z\n".to_vec())]
        );
        let tar = single_file_tar("sub/Df", b"FROM q\n", 0o600).unwrap();
        assert!(is_archive(&tar));
        let p = prepare("-", Some("sub/Df"), &mut tar.as_slice()).unwrap();
        assert_eq!(p.dockerfile, "sub/Df");
        assert!(matches!(p.body, Body::Memory(ref b) if *b == tar));
        let e = prepare("/nonexistent/ctx", None, &mut io::empty()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "unable to prepare context: path \"/nonexistent/ctx\" not found"
        );
        let d = tmpdir("nodf");
        let e = prepare(d.to_str().unwrap(), None, &mut io::empty()).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "unable to prepare context: unable to evaluate symlinks in Dockerfile path: lstat {}/Dockerfile: no such file or directory",
                d.display()
            )
        );
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn paths() {
        assert_eq!(relative(Path::new("/a/b"), Path::new("/a/b/c/D")), "c/D");
        assert_eq!(relative(Path::new("/a/b"), Path::new("/a/x/D")), "../x/D");
        assert_eq!(dev_major(0x0501), 5);
        assert_eq!(dev_minor(0x0501), 1);
    }
}
