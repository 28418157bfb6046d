//! The anchor library's error: why starting or running an anchor failed.
//!
//! The library returns this typed error; `anyhow` is used only by the
//! binary (`src/bin/`).

use std::net::SocketAddr;

use distsoc_net::transport::TransportError;

use crate::store::StoreError;

/// Why an anchor could not start or run.
#[derive(Debug, thiserror::Error)]
pub enum AnchorError {
    /// Opening or migrating the store failed: `target` says which database
    /// ([`crate::store::describe_target`]: backend, database, user, host and
    /// port), `source` what the server or the client said.
    #[error("cannot open the store ({target}): {source}")]
    OpenStore {
        /// The database, user, host and port (never a password).
        target: String,
        /// Why.
        source: StoreError,
    },
    /// Reading the store at start failed (bans, retention, quota seeds).
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// The QUIC endpoint (or the verifier's) could not be set up.
    #[error("transport: {0}")]
    Transport(#[from] TransportError),
    /// An operator listener (`admin_listen`, `metrics_listen`) could not be
    /// bound.
    #[error("{what}: cannot bind TCP {addr}: {source}")]
    Bind {
        /// The config key of the listener.
        what: &'static str,
        /// The address asked for.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// Any other I/O failure (reading a bound address).
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}
