//! The node's network key on disk.
//!
//! The network key (whose public half is the NodeId) lives in its own file,
//! `node.key` in the data directory: 64 lowercase hex digits of the Ed25519
//! seed and a newline, created with mode 0600 and never overwritten. Posting
//! keys (personas) live in the store. Neither is ever logged: [`NetworkKey`]'s
//! `Debug` prints only the NodeId.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use distsoc_protocol::ids::NodeId;
use distsoc_protocol::sign::SigningKey;

/// File name of the network key inside the data directory.
pub const KEY_FILE: &str = "node.key";

/// Why the key file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// Reading or creating the file failed.
    #[error("{path}: {source}")]
    Io {
        /// The key file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file does not hold 64 hex digits.
    #[error("{0} is not a distsoc key file (expected 64 hex digits)")]
    Malformed(PathBuf),
    /// The file is readable by others than its owner.
    #[error("{0} is readable by group or others; run `chmod 600` on it")]
    TooOpen(PathBuf),
    /// `init` found an existing key.
    #[error("{0} already exists; refusing to overwrite an identity")]
    Exists(PathBuf),
}

/// The node's network key.
pub struct NetworkKey {
    key: SigningKey,
}

impl std::fmt::Debug for NetworkKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NetworkKey({})", self.node_id().short())
    }
}

impl NetworkKey {
    /// Wraps a signing key.
    pub fn new(key: SigningKey) -> Self {
        Self { key }
    }

    /// The NodeId (public key).
    pub fn node_id(&self) -> NodeId {
        NodeId(self.key.public())
    }

    /// The signing key.
    pub fn signing_key(&self) -> &SigningKey {
        &self.key
    }

    /// Creates a new key file with a fresh key; fails if one exists.
    pub fn create(path: &Path) -> Result<Self, KeyFileError> {
        Self::create_with(path, SigningKey::generate(&mut rand_core::OsRng))
    }

    /// Creates a new key file (mode 0600, fsynced) holding `key`, e.g. one
    /// restored from an identity bundle; fails if the file exists.
    pub fn create_with(path: &Path, key: SigningKey) -> Result<Self, KeyFileError> {
        let mut opts = OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(path).map_err(|source| {
            if source.kind() == std::io::ErrorKind::AlreadyExists {
                KeyFileError::Exists(path.to_path_buf())
            } else {
                KeyFileError::Io {
                    path: path.to_path_buf(),
                    source,
                }
            }
        })?;
        let mut line = zeroize::Zeroizing::new(hex::encode(key.seed().as_ref()));
        line.push('\n');
        f.write_all(line.as_bytes())
            .and_then(|()| f.sync_all())
            .map_err(|source| KeyFileError::Io {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(Self { key })
    }

    /// Loads a key file, refusing one that others can read.
    pub fn load(path: &Path) -> Result<Self, KeyFileError> {
        let io = |source| KeyFileError::Io {
            path: path.to_path_buf(),
            source,
        };
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(path).map_err(io)?.permissions().mode();
            if mode & 0o077 != 0 {
                return Err(KeyFileError::TooOpen(path.to_path_buf()));
            }
        }
        let text = zeroize::Zeroizing::new(std::fs::read_to_string(path).map_err(io)?);
        let mut seed = zeroize::Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(text.trim(), seed.as_mut())
            .map_err(|_| KeyFileError::Malformed(path.to_path_buf()))?;
        Ok(Self {
            key: SigningKey::from_seed(&seed),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn create_load_refuse_overwrite_and_open_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(KEY_FILE);
        let k = NetworkKey::create(&path).unwrap();
        assert_eq!(NetworkKey::load(&path).unwrap().node_id(), k.node_id());
        assert!(matches!(
            NetworkKey::create(&path),
            Err(KeyFileError::Exists(_))
        ));
        assert!(!format!("{k:?}").contains(&hex::encode(k.signing_key().seed().as_ref())));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            assert!(matches!(
                NetworkKey::load(&path),
                Err(KeyFileError::TooOpen(_))
            ));
        }
        std::fs::write(dir.path().join("bad"), "nothex").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(
                dir.path().join("bad"),
                std::fs::Permissions::from_mode(0o600),
            )
            .unwrap();
        }
        assert!(matches!(
            NetworkKey::load(&dir.path().join("bad")),
            Err(KeyFileError::Malformed(_))
        ));
    }
}
