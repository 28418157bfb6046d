//! Moving an identity to another machine: `distsoc-node export` seals the
//! network key, every posting key, the follows and the circles into one
//! passphrase-protected file (an `EncryptedIdentityBundle`,
//! `schema/README.md` §14); `distsoc-node import` restores them into a new
//! data directory.
//!
//! It also carries the archive pointers (`archiveAnchors`): the anchors
//! holding this identity's archive posts ([`crate::archive`]), which an
//! import adds to `anchors.json`, so the first sync restores the DM history.
//!
//! What a bundle does not carry: stored posts, attachments and cached
//! profiles (the restored node pulls them again from the network and its
//! anchors; the DM archive comes back that way too, as archive posts), the
//! peer table, `config.toml` and the DMs an anchor still queues (they wait
//! there for the same identity).
//!
//! An import never leaves a half-written data directory: the bundle is read,
//! decrypted and checked in memory, the new directory is built beside the
//! target under a temporary name, and only a complete directory is renamed
//! into place. `--replace` sets an existing identity aside (renamed, never
//! deleted) instead of refusing.

use std::io::Read;
use std::path::{Path, PathBuf};

use distsoc_net::datadir::{self, DataDirLock};
use distsoc_net::identity::{NetworkKey, KEY_FILE};
use distsoc_protocol::error::DecodeError;
use distsoc_protocol::ids::ConnectString;
use distsoc_protocol::messages::identity::{
    BundleDmThread, EncryptedIdentityBundle, IdentityBundle, IdentityError, KdfParams,
    BUNDLE_VERSION, ENCRYPTED_BUNDLE_VERSION, MAX_BUNDLE_ANCHOR_BYTES, MAX_BUNDLE_ARCHIVE_ANCHORS,
    MAX_BUNDLE_CIRCLES, MAX_BUNDLE_CIRCLE_MEMBERS, MAX_BUNDLE_DM_THREADS, MAX_BUNDLE_FILE_BYTES,
    MAX_BUNDLE_FOLLOWS, MAX_POSTING_IDENTITIES, SALT_LEN,
};
use distsoc_protocol::passphrase::PassphraseError;
use distsoc_protocol::sign::SigningKey;
use rand_core::{OsRng, RngCore};
use zeroize::Zeroizing;

use crate::config::{self, Config};
use crate::node::{Node, NodeError};
use crate::store::SocialState;

/// Why an export or an import failed. Each names the file or directory
/// and what to do.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// An empty passphrase would protect nothing.
    #[error("the passphrase is empty; a bundle holds every secret key of the identity")]
    EmptyPassphrase,
    /// The passphrase typed twice differed.
    #[error("the two passphrases typed differ; nothing was written")]
    PassphraseMismatch,
    /// The export file exists; an export never overwrites.
    #[error("{0} already exists; an export never overwrites a file (choose another --out)")]
    OutputExists(PathBuf),
    /// The identity is larger than a bundle holds.
    #[error("the identity does not fit in a bundle: {0}")]
    TooLarge(String),
    /// The file is larger than any bundle.
    #[error("{path} is {got} bytes, larger than any identity bundle ({max} bytes): not a bundle")]
    FileTooLarge {
        /// The file.
        path: PathBuf,
        /// Its size.
        got: u64,
        /// The largest bundle file.
        max: usize,
    },
    /// The file is not a bundle, or it is damaged or truncated.
    #[error("{path} is not a distsoc identity bundle, or it is damaged or truncated ({reason})")]
    Damaged {
        /// The file.
        path: PathBuf,
        /// What the decoder found.
        reason: String,
    },
    /// The bundle was written by a newer version of the format.
    #[error(
        "{path} was written by a newer distsoc ({what} version {got}; this distsoc-node \
         reads version {supported}): upgrade distsoc-node to import it"
    )]
    NewerVersion {
        /// The file.
        path: PathBuf,
        /// Which version: the file format or the bundle inside it.
        what: &'static str,
        /// The version found.
        got: u16,
        /// The version this build reads.
        supported: u16,
    },
    /// Authentication failed: the passphrase is wrong, or the file was
    /// altered after export (the two cannot be told apart).
    #[error("wrong passphrase for {0} (or the file was altered after it was exported)")]
    WrongPassphrase(PathBuf),
    /// The target directory already holds an identity.
    #[error(
        "{dir} already holds an identity ({node_id}); import into a new directory \
         (--data-dir), or pass --replace to set the current one aside (renamed, not deleted)"
    )]
    HasIdentity {
        /// The target directory.
        dir: PathBuf,
        /// The identity it holds.
        node_id: String,
    },
    /// The target directory holds files but no identity.
    #[error(
        "{0} is not empty; import into a new directory (--data-dir), or pass --replace to \
         set its contents aside"
    )]
    NotEmpty(PathBuf),
    /// A node operation failed.
    #[error(transparent)]
    Node(#[from] NodeError),
    /// A file or directory operation failed.
    #[error("{path}: {source}")]
    Io {
        /// What was accessed.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

impl BundleError {
    /// A stable, machine-readable name of the kind of error (the `code` of
    /// `distsoc-node --json` errors).
    pub fn code(&self) -> &'static str {
        match self {
            BundleError::EmptyPassphrase | BundleError::PassphraseMismatch => "invalidInput",
            BundleError::OutputExists(_) => "exists",
            BundleError::TooLarge(_) => "tooLarge",
            BundleError::FileTooLarge { .. } | BundleError::Damaged { .. } => "damagedBundle",
            BundleError::NewerVersion { .. } => "unsupportedVersion",
            BundleError::WrongPassphrase(_) => "wrongPassphrase",
            BundleError::HasIdentity { .. } => "hasIdentity",
            BundleError::NotEmpty(_) => "notEmpty",
            BundleError::Node(e) => e.code(),
            BundleError::Io { .. } => "io",
        }
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BundleError + '_ {
    move |source| BundleError::Io {
        path: path.into(),
        source,
    }
}

/// What an export wrote.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ExportSummary {
    /// The file written.
    pub path: PathBuf,
    /// Its size, bytes.
    pub bytes: usize,
    /// The NodeId of the identity.
    pub node_id: String,
    /// Posting identities sealed.
    pub posting_identities: usize,
    /// Follows sealed.
    pub follows: usize,
    /// Circles sealed.
    pub circles: usize,
}

/// What an import restored.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ImportSummary {
    /// The data directory now holding the identity.
    pub data_dir: PathBuf,
    /// The NodeId restored.
    pub node_id: String,
    /// Posting identities restored.
    pub posting_identities: usize,
    /// Follows restored.
    pub follows: usize,
    /// Circles restored.
    pub circles: usize,
    /// Where the directory's previous contents were set aside (`--replace`).
    pub set_aside: Option<PathBuf>,
    /// Vouch keys and group keys in the bundle that this node does not use
    /// (written by another implementation); they are not restored.
    pub unused_keys: usize,
    /// When the bundle was exported, ms since epoch.
    pub exported_at_ms: u64,
    /// The anchors holding the identity's archive posts (added to
    /// anchors.json): the first `sync` or `run` restores the DM history
    /// from them.
    pub archive_anchors: Vec<String>,
}

/// The KDF parameters of a new export: the recommended ones
/// ([`KdfParams::recommended`]: Argon2id, 64 MiB, 3 passes, 1 lane) with a
/// fresh salt.
pub fn export_kdf_params() -> KdfParams {
    let mut salt = [0u8; SALT_LEN];
    OsRng.fill_bytes(&mut salt);
    KdfParams::recommended(salt)
}

/// The bundle of `node`'s identity: the network key, every posting key, the
/// default, the follows and the circles. Fails with
/// [`BundleError::TooLarge`] when a list is over its bundle limit.
pub fn bundle_of(node: &Node, now_ms: u64) -> Result<IdentityBundle, BundleError> {
    let state = node.store.social_state().map_err(NodeError::from)?;
    let over = |what: &str, got: usize, max: usize| {
        BundleError::TooLarge(format!("{got} {what}; a bundle holds at most {max}"))
    };
    if state.identities.len() > MAX_POSTING_IDENTITIES {
        return Err(over(
            "posting identities",
            state.identities.len(),
            MAX_POSTING_IDENTITIES,
        ));
    }
    if state.follows.len() > MAX_BUNDLE_FOLLOWS {
        return Err(over("follows", state.follows.len(), MAX_BUNDLE_FOLLOWS));
    }
    if state.circles.len() > MAX_BUNDLE_CIRCLES {
        return Err(over("circles", state.circles.len(), MAX_BUNDLE_CIRCLES));
    }
    if let Some(c) = state
        .circles
        .iter()
        .find(|c| c.members.len() > MAX_BUNDLE_CIRCLE_MEMBERS)
    {
        return Err(BundleError::TooLarge(format!(
            "circle {:?} has {} members; a bundle holds at most {MAX_BUNDLE_CIRCLE_MEMBERS} per circle",
            c.name,
            c.members.len()
        )));
    }
    let mut bundle = IdentityBundle::new(node.key.signing_key().seed(), now_ms);
    if let Some(d) = state.default {
        bundle.default_posting_id = d;
    }
    bundle.posting_identities = state.identities;
    bundle.follows = state.follows;
    bundle.circles = state.circles;
    let threads = node
        .store
        .dm_chains(&node.archive_key())
        .map_err(NodeError::from)?;
    if threads.len() > MAX_BUNDLE_DM_THREADS {
        return Err(over(
            "DM thread directions",
            threads.len(),
            MAX_BUNDLE_DM_THREADS,
        ));
    }
    bundle.dm_threads = threads
        .into_iter()
        .map(|(peer, outgoing, c)| BundleDmThread {
            peer,
            outgoing,
            n: c.n,
            at_ms: c.at_ms,
            seed: zeroize::Zeroizing::new(*c.seed.as_bytes()),
        })
        .collect();
    bundle.archive_anchors = archive_anchors(node)?;
    Ok(bundle)
}

/// Where this identity's archive posts can be pulled back from (the
/// bundle's `archiveAnchors`): the connect strings of anchors.json, then
/// those of the anchors our posts were deposited at (a DM command's
/// `--anchor`), at their last known address; each anchor once, at most
/// [`MAX_BUNDLE_ARCHIVE_ANCHORS`], none over [`MAX_BUNDLE_ANCHOR_BYTES`].
pub fn archive_anchors(node: &Node) -> Result<Vec<String>, BundleError> {
    let path = node.config().anchors_path(node.dir());
    let mut found: Vec<ConnectString> = config::read_anchors(&path)
        .map_err(NodeError::from)?
        .iter()
        .filter_map(|s| s.parse().ok())
        .collect();
    let peers = node.store.peers(4096).map_err(NodeError::from)?;
    for anchor in node.store.deposit_anchors().map_err(NodeError::from)? {
        if found.iter().any(|c| c.node_id == anchor) {
            continue;
        }
        let addr = peers
            .iter()
            .find(|p| p.node_id == anchor)
            .and_then(|p| p.addresses.first());
        if let Some(addr) = addr {
            if let Ok(cs) = format!("{anchor}@{addr}").parse() {
                found.push(cs);
            }
        }
    }
    let mut out: Vec<String> = Vec::new();
    for cs in found {
        let s = cs.to_string();
        if s.len() <= MAX_BUNDLE_ANCHOR_BYTES && out.len() < MAX_BUNDLE_ARCHIVE_ANCHORS {
            out.push(s);
        }
    }
    Ok(out)
}

/// Exports `node`'s identity to `out`, sealed under `passphrase` with
/// `params`: the file is written under a temporary name in the same
/// directory, fsynced, and linked to `out` only if `out` does not exist.
pub fn export(
    node: &Node,
    out: &Path,
    passphrase: &[u8],
    params: KdfParams,
    now_ms: u64,
) -> Result<ExportSummary, BundleError> {
    if passphrase.is_empty() {
        return Err(BundleError::EmptyPassphrase);
    }
    if out.exists() {
        return Err(BundleError::OutputExists(out.into()));
    }
    let bundle = bundle_of(node, now_ms)?;
    let mut nonce = [0u8; 12];
    OsRng.fill_bytes(&mut nonce);
    let sealed = EncryptedIdentityBundle::seal(&bundle, passphrase, params, nonce)
        .map_err(|e| BundleError::TooLarge(e.to_string()))?;
    let bytes = sealed.to_file_bytes();
    let tmp = sibling(out, &format!("export-{}", std::process::id()), true);
    let _ = std::fs::remove_file(&tmp);
    datadir::write_new_private_file(&tmp, &bytes).map_err(io(&tmp))?;
    let linked = std::fs::hard_link(&tmp, out);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(BundleError::OutputExists(out.into()))
        }
        Err(e) => return Err(io(out)(e)),
    }
    sync_parent(out);
    Ok(ExportSummary {
        path: out.into(),
        bytes: bytes.len(),
        node_id: bundle.node_id().to_hex(),
        posting_identities: bundle.posting_identities.len(),
        follows: bundle.follows.len(),
        circles: bundle.circles.len(),
    })
}

/// Reads and parses a bundle file (at most [`MAX_BUNDLE_FILE_BYTES`],
/// checked before reading), without decrypting it.
pub fn read_file(path: &Path) -> Result<EncryptedIdentityBundle, BundleError> {
    let file = std::fs::File::open(path).map_err(io(path))?;
    let len = file.metadata().map_err(io(path))?.len();
    if len > MAX_BUNDLE_FILE_BYTES as u64 {
        return Err(BundleError::FileTooLarge {
            path: path.into(),
            got: len,
            max: MAX_BUNDLE_FILE_BYTES,
        });
    }
    let mut bytes = Vec::with_capacity(len as usize);
    file.take(MAX_BUNDLE_FILE_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(io(path))?;
    EncryptedIdentityBundle::from_file_bytes(&bytes).map_err(|e| match e {
        DecodeError::UnsupportedVersion { got, .. } if got > ENCRYPTED_BUNDLE_VERSION => {
            BundleError::NewerVersion {
                path: path.into(),
                what: "file format",
                got,
                supported: ENCRYPTED_BUNDLE_VERSION,
            }
        }
        e => BundleError::Damaged {
            path: path.into(),
            reason: e.to_string(),
        },
    })
}

/// Decrypts a parsed bundle file.
pub fn open(
    path: &Path,
    sealed: &EncryptedIdentityBundle,
    passphrase: &[u8],
) -> Result<IdentityBundle, BundleError> {
    sealed.open(passphrase).map_err(|e| match e {
        IdentityError::Passphrase(PassphraseError::WrongPassphraseOrCorrupt) => {
            BundleError::WrongPassphrase(path.into())
        }
        IdentityError::Decode(DecodeError::UnsupportedVersion { got, .. })
            if got > BUNDLE_VERSION =>
        {
            BundleError::NewerVersion {
                path: path.into(),
                what: "bundle",
                got,
                supported: BUNDLE_VERSION,
            }
        }
        e => BundleError::Damaged {
            path: path.into(),
            reason: e.to_string(),
        },
    })
}

/// Imports the bundle in `file` into the data directory `dir`: refused when
/// `dir` holds anything unless `replace`, in which case its contents are
/// renamed to `DIR.replaced-<ms>` once the new directory is complete.
/// Nothing is written before the bundle has decrypted and checked.
pub fn import(
    dir: &Path,
    file: &Path,
    passphrase: &[u8],
    replace: bool,
    now_ms: u64,
) -> Result<ImportSummary, BundleError> {
    let sealed = read_file(file)?;
    let existing = existing_contents(dir)?;
    if !replace {
        match existing {
            Existing::Nothing => {}
            Existing::Identity(id) => {
                return Err(BundleError::HasIdentity {
                    dir: dir.into(),
                    node_id: id,
                })
            }
            Existing::Files => return Err(BundleError::NotEmpty(dir.into())),
        }
    }
    let bundle = open(file, &sealed, passphrase)?;
    let staging = sibling(dir, &format!("import-{}", std::process::id()), true);
    if staging.exists() {
        std::fs::remove_dir_all(&staging).map_err(io(&staging))?;
    }
    let built = build_staging(
        &staging,
        dir,
        &bundle,
        !matches!(existing, Existing::Nothing),
    );
    if let Err(e) = built {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(e);
    }
    let set_aside = match swap_in(&staging, dir, existing, now_ms) {
        Ok(s) => s,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(e);
        }
    };
    Ok(ImportSummary {
        data_dir: dir.into(),
        node_id: bundle.node_id().to_hex(),
        posting_identities: bundle.posting_identities.len(),
        follows: bundle.follows.len(),
        circles: bundle.circles.len(),
        set_aside,
        unused_keys: bundle.vouch_keys.len() + bundle.group_keys.len(),
        exported_at_ms: bundle.created_at_ms,
        archive_anchors: bundle.archive_anchors.clone(),
    })
}

/// What a target directory holds.
enum Existing {
    /// Nothing (absent or empty).
    Nothing,
    /// An identity (its NodeId, or why it could not be read).
    Identity(String),
    /// Files, but no identity.
    Files,
}

fn existing_contents(dir: &Path) -> Result<Existing, BundleError> {
    let mut entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Existing::Nothing),
        Err(e) => return Err(io(dir)(e)),
    };
    if entries.next().is_none() {
        return Ok(Existing::Nothing);
    }
    let key = dir.join(KEY_FILE);
    if key.exists() {
        let id = NetworkKey::load(&key)
            .map(|k| k.node_id().to_hex())
            .unwrap_or_else(|e| format!("its {KEY_FILE} does not load: {e}"));
        return Ok(Existing::Identity(id));
    }
    if dir.join(config::STORE_FILE).exists() {
        return Ok(Existing::Identity(format!(
            "a store whose {KEY_FILE} is missing"
        )));
    }
    Ok(Existing::Files)
}

/// Builds the complete new data directory in `staging`: the network key,
/// the configuration (the replaced directory's own, when there is one), the
/// store with the bundle's social state.
fn build_staging(
    staging: &Path,
    dir: &Path,
    bundle: &IdentityBundle,
    keep_config: bool,
) -> Result<(), BundleError> {
    let config = if keep_config && dir.join(config::CONFIG_FILE).exists() {
        Some(Config::load(dir).map_err(NodeError::from)?)
    } else {
        None
    };
    let key = SigningKey::from_seed(&bundle.network_seed);
    let node = Node::init_with_key(staging, config, Some(key))?;
    let state = SocialState {
        identities: bundle.posting_identities.clone(),
        default: Some(bundle.default_posting_id),
        follows: bundle.follows.clone(),
        circles: bundle.circles.clone(),
    };
    node.store
        .restore_social_state(&state)
        .map_err(NodeError::from)?;
    let key = node.archive_key();
    for t in &bundle.dm_threads {
        let chain = crate::store::DmChain {
            seed: distsoc_protocol::dm_rotation::ChainSeed::from_bytes(*t.seed),
            n: t.n,
            at_ms: t.at_ms,
        };
        node.store
            .set_dm_chain(&key, t.peer, t.outgoing, &chain)
            .map_err(NodeError::from)?;
    }
    if keep_config {
        let anchors = node.config().anchors_path(dir);
        let to = node.config().anchors_path(staging);
        // An absolute anchors_file is shared, not copied.
        if anchors != to && anchors.exists() {
            let _ = std::fs::remove_file(&to);
            let text = Zeroizing::new(std::fs::read(&anchors).map_err(io(&anchors))?);
            datadir::write_new_private_file(&to, &text).map_err(io(&to))?;
        }
    }
    // The archive pointers: the anchors holding the archive posts join the
    // anchors, so the first sync pulls them back (and restores the DMs).
    if !bundle.archive_anchors.is_empty() {
        let path = node.config().anchors_path(staging);
        let mut list = config::read_anchors(&path).map_err(NodeError::from)?;
        let before = list.len();
        for a in &bundle.archive_anchors {
            let Ok(cs) = a.parse::<ConnectString>() else {
                continue;
            };
            let known = list
                .iter()
                .any(|s| s.parse::<ConnectString>().ok().map(|c| c.node_id) == Some(cs.node_id));
            if !known {
                list.push(cs.to_string());
            }
        }
        if list.len() != before {
            config::write_anchors(&path, &list).map_err(NodeError::from)?;
        }
    }
    Ok(())
}

/// Moves the complete `staging` directory to `dir`, setting the previous
/// contents of `dir` aside first (under its lock, so not while a node runs
/// there).
fn swap_in(
    staging: &Path,
    dir: &Path,
    existing: Existing,
    now_ms: u64,
) -> Result<Option<PathBuf>, BundleError> {
    let set_aside = match existing {
        Existing::Nothing => {
            if dir.exists() {
                std::fs::remove_dir(dir).map_err(io(dir))?;
            }
            None
        }
        Existing::Identity(_) | Existing::Files => {
            let lock = DataDirLock::acquire(dir).map_err(NodeError::from)?;
            let aside = sibling(dir, &format!("replaced-{now_ms}"), false);
            std::fs::rename(dir, &aside).map_err(io(dir))?;
            drop(lock);
            Some(aside)
        }
    };
    std::fs::rename(staging, dir).map_err(io(dir))?;
    sync_parent(dir);
    Ok(set_aside)
}

/// `NAME.TAG` beside `path` (`.NAME.TAG`, hidden, for a temporary name).
fn sibling(path: &Path, tag: &str, hidden: bool) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "distsoc".into());
    let dot = if hidden { "." } else { "" };
    path.with_file_name(format!("{dot}{name}.{tag}"))
}

/// Makes a rename or link in `path`'s directory durable (best effort).
fn sync_parent(path: &Path) {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if let Ok(d) = std::fs::File::open(parent) {
        let _ = d.sync_all();
    }
}

/// The passphrase for an export or import, as the bytes the KDF takes: the
/// first line of `file` (its line ending removed), or else typed at the
/// terminal without echo (twice when `confirm`). Normalized to Unicode NFC,
/// so the same passphrase typed on another system gives the same bytes.
pub fn read_passphrase(
    file: Option<&Path>,
    confirm: bool,
) -> Result<Zeroizing<Vec<u8>>, BundleError> {
    let typed = match file {
        Some(path) => {
            let text = Zeroizing::new(std::fs::read_to_string(path).map_err(io(path))?);
            let line = text.split('\n').next().unwrap_or("");
            Zeroizing::new(line.strip_suffix('\r').unwrap_or(line).to_owned())
        }
        None => {
            let prompt = |p: &str| {
                rpassword::prompt_password(p)
                    .map(Zeroizing::new)
                    .map_err(|source| BundleError::Io {
                        path: "the terminal (use --passphrase-file when there is none)".into(),
                        source,
                    })
            };
            let first = prompt("Passphrase: ")?;
            if confirm && *prompt("Repeat the passphrase: ")? != *first {
                return Err(BundleError::PassphraseMismatch);
            }
            first
        }
    };
    use unicode_normalization::UnicodeNormalization;
    let nfc: Zeroizing<String> = Zeroizing::new(typed.nfc().collect());
    if nfc.is_empty() {
        return Err(BundleError::EmptyPassphrase);
    }
    Ok(Zeroizing::new(nfc.as_bytes().to_vec()))
}
