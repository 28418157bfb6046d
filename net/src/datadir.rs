//! Private files and directories, and the data-directory lock, shared by
//! the node and the anchor.
//!
//! Everything a node or an anchor keeps on disk is private to its owner,
//! whatever the process umask: directories are created with mode 0700 and
//! files with mode 0600 (a umask can only remove permission bits, so an
//! explicit 0600/0700 is never widened by `umask 000`). The store's SQLite
//! files use [`prepare_file`] (and [`tighten_sidecars`]) for the same rule.
//!
//! One data directory serves one process: [`DataDirLock`] takes an exclusive
//! advisory lock (`flock`) on the file `lock` inside it for as long as the
//! value lives, so a second `run` on the same directory (which would serve
//! the same identity twice) fails at once with [`LockError::Held`]. The lock
//! is released by the kernel when the process exits, however it exits.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

/// File name of the lock inside a data directory.
pub const LOCK_FILE: &str = "lock";

/// Creates `dir` (and missing parents) with mode 0700, and tightens `dir`
/// itself to 0700 if it already existed with group or other bits.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        builder.mode(0o700);
        builder.create(dir)?;
        let mode = std::fs::metadata(dir)?.permissions().mode();
        if mode & 0o077 != 0 {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        }
        Ok(())
    }
    #[cfg(not(unix))]
    {
        builder.create(dir)
    }
}

/// Options for a new private file: mode 0600 on Unix.
fn private_options() -> OpenOptions {
    let mut opts = OpenOptions::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts
}

/// Creates `path` with mode 0600 and writes `contents`, fsynced; fails with
/// [`std::io::ErrorKind::AlreadyExists`] if the file exists (it is never
/// overwritten).
pub fn write_new_private_file(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let mut file = private_options().write(true).create_new(true).open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

/// Why a data directory could not be locked.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process holds the lock: it is serving this data directory.
    #[error(
        "{dir} is in use by another process{}: one data directory serves one \
         process (stop the other one, or use another --data-dir)",
        .holder.as_deref().map(|p| format!(" (pid {p})")).unwrap_or_default()
    )]
    Held {
        /// The data directory.
        dir: PathBuf,
        /// The pid the holder wrote into the lock file, if readable.
        holder: Option<String>,
    },
    /// The lock file could not be created or locked.
    #[error("{path}: {source}")]
    Io {
        /// The lock file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// An exclusive lock on a data directory, held until dropped (or until the
/// process exits).
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
}

impl DataDirLock {
    /// Takes the lock on `dir` without waiting: creates `dir/lock` (0600) if
    /// needed, locks it exclusively, and writes this process's pid into it.
    pub fn acquire(dir: &Path) -> Result<Self, LockError> {
        let path = dir.join(LOCK_FILE);
        let io = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        let mut file = private_options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut text = String::new();
                let holder = file
                    .read_to_string(&mut text)
                    .ok()
                    .map(|_| text.trim().to_string())
                    .filter(|t| !t.is_empty() && t.len() <= 20);
                return Err(LockError::Held {
                    dir: dir.to_path_buf(),
                    holder,
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
        }
        file.set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| writeln!(file, "{}", std::process::id()))
            .map_err(io)?;
        Ok(Self { _file: file })
    }
}

/// Creates a SQLite database file with mode 0600 if it does not exist, and
/// tightens an existing one to 0600 (the node's and the anchor's stores).
#[cfg(unix)]
pub fn prepare_file(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)?;
    let meta = file.metadata()?;
    if meta.permissions().mode() & 0o077 != 0 {
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

/// Creates a SQLite database file (no permissions to set on this platform).
#[cfg(not(unix))]
pub fn prepare_file(_path: &Path) -> std::io::Result<()> {
    Ok(())
}

/// Tightens a SQLite database's `-wal`, `-shm` and `-journal` files to 0600
/// if they exist with a looser mode (they may predate this code).
#[cfg(unix)]
pub fn tighten_sidecars(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    for suffix in ["-wal", "-shm", "-journal"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        let side = Path::new(&name);
        match std::fs::metadata(side) {
            Ok(meta) if meta.permissions().mode() & 0o077 != 0 => {
                std::fs::set_permissions(side, std::fs::Permissions::from_mode(0o600))?;
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Tightens SQLite side files (no permissions to set on this platform).
#[cfg(not(unix))]
pub fn tighten_sidecars(_path: &Path) -> std::io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn second_lock_on_a_dir_is_refused_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let first = DataDirLock::acquire(dir.path()).unwrap();
        let err = DataDirLock::acquire(dir.path()).unwrap_err();
        assert!(matches!(err, LockError::Held { .. }), "{err}");
        assert!(
            err.to_string()
                .contains(&format!("pid {}", std::process::id())),
            "{err}"
        );
        drop(first);
        DataDirLock::acquire(dir.path()).unwrap();
    }

    #[test]
    fn new_private_file_is_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        write_new_private_file(&p, b"one").unwrap();
        let e = write_new_private_file(&p, b"two").unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(&p).unwrap(), b"one");
    }
}
