//! `distsoc keys`: Ed25519 identity key files.
//!
//! A key file holds the 32-byte secret seed as 64 lowercase hex digits and a
//! newline, created with mode 0600 and never overwritten.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Subcommand;
use distsoc_protocol::ids::NodeId;
use distsoc_protocol::sign::SigningKey;

/// Key subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum KeysCommand {
    /// Generate a new identity and write its secret seed to a new file (0600).
    Generate {
        /// Where to write the key; refuses to overwrite.
        #[arg(long)]
        out: PathBuf,
    },
    /// Print the NodeId (public key) of a key file.
    Show {
        /// The key file.
        file: PathBuf,
    },
}

pub(crate) fn run(cmd: KeysCommand) -> anyhow::Result<()> {
    match cmd {
        KeysCommand::Generate { out } => {
            let key = SigningKey::generate(&mut rand_core::OsRng);
            write_key_file(&out, &key)?;
            outln!("{}", NodeId(key.public()));
            eprintln!("secret key written to {} (mode 0600)", out.display());
        }
        KeysCommand::Show { file } => {
            let key = read_key_file(&file)?;
            outln!("{}", NodeId(key.public()));
        }
    }
    Ok(())
}

/// Writes a new key file with mode 0600; fails if it exists.
pub(crate) fn write_key_file(path: &Path, key: &SigningKey) -> anyhow::Result<()> {
    let mut opts = OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    let mut line = hex::encode(key.seed().as_ref());
    line.push('\n');
    f.write_all(line.as_bytes())?;
    f.sync_all()?;
    Ok(())
}

/// Reads a key file written by [`write_key_file`].
pub(crate) fn read_key_file(path: &Path) -> anyhow::Result<SigningKey> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut seed = [0u8; 32];
    if hex::decode_to_slice(text.trim(), &mut seed).is_err() {
        bail!(
            "{} is not a distsoc key file (expected 64 hex digits)",
            path.display()
        );
    }
    Ok(SigningKey::from_seed(&seed))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn key_file_round_trip_mode_and_no_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        let key = SigningKey::from_seed(&[9; 32]);
        write_key_file(&path, &key).unwrap();
        assert_eq!(read_key_file(&path).unwrap().public(), key.public());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        assert!(write_key_file(&path, &key).is_err());
        std::fs::write(dir.path().join("bad"), "xyz").unwrap();
        assert!(read_key_file(&dir.path().join("bad")).is_err());
    }
}
