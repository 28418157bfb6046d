//! [`NodeError`]: why a node operation failed, and its stable code.

use std::path::PathBuf;

use distsoc_net::identity::{KeyFileError, KEY_FILE};
use distsoc_protocol::error::ErrorCode;
use distsoc_protocol::ids::NodeId;

use crate::compose::ComposeError;
use crate::config;
use crate::store::StoreError;

/// Why a node operation failed.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The data directory has no node (run `init`).
    #[error("no node in {0}: run `distsoc-node init` first")]
    NotInitialized(PathBuf),
    /// The data directory holds a store but its `node.key` is missing: the
    /// identity's network key is lost. Neither `init` nor any other command
    /// creates a new identity over an existing store.
    #[error(
        "{0} holds a node's store but no {KEY_FILE}: the network key of that identity is \
         missing, and `init` will not create a new identity over an existing store. \
         To recover, restore {KEY_FILE} (mode 0600) from a backup into {0}; or start a new \
         node in an empty directory (`distsoc-node --data-dir NEW_DIR init`)"
    )]
    KeyLost(PathBuf),
    /// Another process is serving this data directory.
    #[error(transparent)]
    Locked(#[from] distsoc_net::datadir::LockError),
    /// Key file problem.
    #[error(transparent)]
    Key(#[from] KeyFileError),
    /// Configuration problem.
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    /// Store problem.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Building a post failed.
    #[error(transparent)]
    Compose(#[from] ComposeError),
    /// Network problem.
    #[error(transparent)]
    Transport(#[from] distsoc_net::transport::TransportError),
    /// Dialing a peer failed: names the peer and its address, and for a
    /// timeout, the setting that bounds it.
    #[error("cannot reach {target} at {addr}: {source}{}", timeout_hint(source))]
    Unreachable {
        /// The peer's NodeId.
        target: NodeId,
        /// The address dialed.
        addr: std::net::SocketAddr,
        /// Why.
        source: Box<distsoc_net::transport::TransportError>,
    },
    /// A peer refused or failed a request.
    #[error(transparent)]
    Request(#[from] distsoc_net::transport::RequestError),
    /// The mesh could not run a lookup.
    #[error(transparent)]
    Mesh(#[from] distsoc_net::mesh::MeshError),
    /// The mesh and the anchors did not find a node.
    #[error("{0} was not found (not in the mesh map, not by the worm, not at the anchors)")]
    NotFound(NodeId),
    /// Bad user input.
    #[error("{0}")]
    Invalid(String),
    /// A peer sent something invalid.
    #[error("peer sent bad data ({0}): {1}")]
    Peer(ErrorCode, String),
    /// A directory or file operation failed.
    #[error("{path}: {source}")]
    Io {
        /// What was accessed.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A blocking task failed.
    #[error("internal task failed: {0}")]
    Task(String),
}

/// After a dial that timed out: where the bound is set.
fn timeout_hint(e: &distsoc_net::transport::TransportError) -> &'static str {
    match e {
        distsoc_net::transport::TransportError::Timeout { .. } => {
            " (no answer; the bound is connect_timeout_secs in config.toml)"
        }
        _ => "",
    }
}

impl NodeError {
    /// A stable, machine-readable name of the kind of error (the `code` of
    /// `distsoc-node --json` errors).
    pub fn code(&self) -> &'static str {
        match self {
            NodeError::NotInitialized(_) => "notInitialized",
            NodeError::KeyLost(_) => "keyLost",
            NodeError::Locked(_) => "inUse",
            NodeError::Key(_) => "keyFile",
            NodeError::Config(_) => "config",
            NodeError::Store(_) => "store",
            NodeError::Compose(_) => "invalidPost",
            NodeError::Transport(_) => "network",
            NodeError::Unreachable { .. } => "unreachable",
            NodeError::Request(_) => "peerRefused",
            NodeError::Mesh(_) => "mesh",
            NodeError::NotFound(_) => "notFound",
            NodeError::Invalid(_) => "invalidInput",
            NodeError::Peer(..) => "peerBadData",
            NodeError::Io { .. } => "io",
            NodeError::Task(_) => "internal",
        }
    }
}
