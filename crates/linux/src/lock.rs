//! Exclusive lock files (flock), e.g. one berthd per data root.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

use crate::{LinuxError, Result};

/// An exclusive `flock` on a file, held until dropped. The file holds the holder's pid.
#[derive(Debug)]
pub struct LockFile {
    file: Flock<File>,
    path: PathBuf,
}

impl LockFile {
    /// Creates or opens `path` (mode 0600), takes a non-blocking exclusive `flock` on it and
    /// writes our pid into it. Fails with [`LinuxError::Locked`] if another process holds it.
    pub fn acquire(path: &Path) -> Result<LockFile> {
        let io_err = |op, source| LinuxError::Io {
            op,
            path: path.to_path_buf(),
            source,
        };
        let file = open_lock_file(path).map_err(|e| io_err("open lock file", e))?;
        let file = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(f) => f,
            Err((_, Errno::EWOULDBLOCK)) => {
                return Err(LinuxError::Locked {
                    path: path.to_path_buf(),
                });
            }
            Err((_, errno)) => {
                return Err(LinuxError::Sys {
                    op: "flock",
                    path: path.to_path_buf(),
                    errno,
                });
            }
        };
        let mut lock = LockFile {
            file,
            path: path.to_path_buf(),
        };
        lock.write_pid()
            .map_err(|e| io_err("write pid to lock file", e))?;
        Ok(lock)
    }

    /// Like [`LockFile::acquire`], but waits for another holder to release the lock. Holders
    /// may delete the file when done ([`LockFile::remove`]): after locking we check that the
    /// path still names the file we locked, and start over if not.
    pub fn acquire_wait(path: &Path) -> Result<LockFile> {
        use std::os::unix::fs::MetadataExt;
        let io_err = |op, source| LinuxError::Io {
            op,
            path: path.to_path_buf(),
            source,
        };
        loop {
            let file = open_lock_file(path).map_err(|e| io_err("open lock file", e))?;
            let mut file = file;
            let locked = loop {
                match Flock::lock(file, FlockArg::LockExclusive) {
                    Ok(f) => break f,
                    Err((f, Errno::EINTR)) => file = f,
                    Err((_, errno)) => {
                        return Err(LinuxError::Sys {
                            op: "flock",
                            path: path.to_path_buf(),
                            errno,
                        });
                    }
                }
            };
            let ours = locked.metadata().map_err(|e| io_err("stat lock file", e))?;
            match std::fs::symlink_metadata(path) {
                Ok(m) if m.ino() == ours.ino() && m.dev() == ours.dev() => {
                    let mut lock = LockFile {
                        file: locked,
                        path: path.to_path_buf(),
                    };
                    lock.write_pid()
                        .map_err(|e| io_err("write pid to lock file", e))?;
                    return Ok(lock);
                }
                Ok(_) => continue,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_err("stat lock file", e)),
            }
        }
    }

    /// Deletes the lock file while still holding the lock, then releases it.
    pub fn remove(self) -> Result<()> {
        let res = std::fs::remove_file(&self.path);
        match res {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(LinuxError::Io {
                op: "remove lock file",
                path: self.path,
                source,
            }),
        }
    }

    fn write_pid(&mut self) -> std::io::Result<()> {
        let f: &mut File = &mut self.file;
        f.set_len(0)?;
        let mut f: &File = f;
        std::io::Seek::seek(&mut f, std::io::SeekFrom::Start(0))?;
        f.write_all(format!("{}\n", std::process::id()).as_bytes())?;
        f.sync_all()
    }

    /// The lock file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Creates or opens a lock file: read-write, 0600, close-on-exec, never truncated.
fn open_lock_file(path: &Path) -> std::io::Result<std::fs::File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(nix::libc::O_CLOEXEC)
        .open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_acquire_is_refused_until_drop() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("berthd.lock");
        let l = LockFile::acquire(&p).unwrap();
        let pid = std::fs::read_to_string(&p).unwrap();
        assert_eq!(pid.trim(), std::process::id().to_string());
        // flock locks belong to the open file description, so a second open conflicts even
        // within one process.
        assert!(matches!(
            LockFile::acquire(&p),
            Err(LinuxError::Locked { .. })
        ));
        drop(l);
        let l = LockFile::acquire(&p).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        l.remove().unwrap();
        assert!(!p.exists());
    }
}

#[cfg(test)]
mod wait_tests {
    use super::*;

    #[test]
    fn acquire_wait_waits_and_survives_removal() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.lock");
        let first = LockFile::acquire_wait(&p).unwrap();
        let p2 = p.clone();
        let t = std::thread::spawn(move || {
            let l = LockFile::acquire_wait(&p2).unwrap();
            assert!(p2.exists());
            l.remove().unwrap();
        });
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert!(!t.is_finished());
        first.remove().unwrap();
        t.join().unwrap();
        assert!(!p.exists());
    }
}
