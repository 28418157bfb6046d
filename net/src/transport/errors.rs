//! Why a connection closed ([`CloseReason`]) and why binding or connecting
//! failed ([`TransportError`]).

use std::fmt;
use std::ops::RangeInclusive;
use std::time::Duration;

use distsoc_protocol::ids::NodeId;
use distsoc_protocol::messages::wire;

use super::TlsError;

/// Why a connection closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseReason {
    /// Closed by us (any code).
    Local,
    /// Closed by the peer with an application code (`CLOSE_*`).
    Application {
        /// The peer's close code.
        code: u64,
        /// The peer's reason text.
        reason: String,
    },
    /// No traffic for the idle timeout.
    IdleTimeout,
    /// The peer reset the connection (stateless reset).
    Reset,
    /// The peer closed with a QUIC transport error (e.g. a TLS failure).
    Transport(String),
    /// Anything else quinn reports.
    Other(String),
}

impl From<quinn::ConnectionError> for CloseReason {
    fn from(e: quinn::ConnectionError) -> Self {
        match e {
            quinn::ConnectionError::ApplicationClosed(c) => CloseReason::Application {
                code: c.error_code.into_inner(),
                reason: String::from_utf8_lossy(&c.reason).into_owned(),
            },
            quinn::ConnectionError::LocallyClosed => CloseReason::Local,
            quinn::ConnectionError::TimedOut => CloseReason::IdleTimeout,
            quinn::ConnectionError::Reset => CloseReason::Reset,
            quinn::ConnectionError::ConnectionClosed(c) => CloseReason::Transport(c.to_string()),
            other => CloseReason::Other(other.to_string()),
        }
    }
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CloseReason::Local => f.write_str("closed locally"),
            CloseReason::Application { code, reason } => {
                write!(f, "closed by peer (code {code:#x}: {reason})")
            }
            CloseReason::IdleTimeout => f.write_str("idle timeout"),
            CloseReason::Reset => f.write_str("reset by peer"),
            CloseReason::Transport(e) => write!(f, "transport error: {e}"),
            CloseReason::Other(e) => f.write_str(e),
        }
    }
}

/// Why binding or connecting failed.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The configuration is unusable (the text says which field).
    #[error("invalid transport configuration: {0}")]
    Config(String),
    /// The UDP socket could not be bound (the address is in use, not
    /// local, or needs privileges; or no tokio runtime is running).
    #[error("cannot bind UDP {addr}: {source}")]
    Bind {
        /// The address asked for (the `listen` setting).
        addr: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The TLS configuration could not be built.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// quinn refused to start the connection (bad address, endpoint stopping).
    #[error("cannot connect: {0}")]
    Connect(#[source] quinn::ConnectError),
    /// The QUIC/TLS handshake failed (unreachable, wrong ALPN, refused, ...).
    #[error("handshake failed: {0}")]
    Handshake(#[source] quinn::ConnectionError),
    /// The server's key is not the NodeId we dialled.
    #[error("peer key {got} does not match the pinned NodeId {expected}")]
    PinMismatch {
        /// The NodeId we dialled.
        expected: NodeId,
        /// The key the server presented.
        got: NodeId,
    },
    /// The Hello version ranges do not overlap.
    #[error("no common protocol version: ours {ours:?}, theirs {theirs:?}")]
    VersionMismatch {
        /// Our range.
        ours: RangeInclusive<u16>,
        /// The peer's range.
        theirs: RangeInclusive<u16>,
    },
    /// The peer answered Hello with an `Error` other than `unsupportedVersion`.
    #[error("peer refused Hello: {} ({})", .0.code, .0.message)]
    HelloRefused(wire::Error),
    /// The peer broke the Hello exchange (bad frame or message).
    #[error("Hello exchange failed: {0}")]
    Hello(String),
    /// The connection closed during the Hello exchange.
    #[error("connection closed during Hello: {0}")]
    ConnectionLost(CloseReason),
    /// A phase did not complete in time.
    #[error("{phase} timed out after {after:?}")]
    Timeout {
        /// `"QUIC handshake"` or `"Hello"`.
        phase: &'static str,
        /// The bound.
        after: Duration,
    },
    /// `max_connections` connections are open.
    #[error("connection limit of {0} reached")]
    ConnectionLimit(usize),
    /// The NodeId is our own.
    #[error("cannot connect to our own NodeId")]
    SelfConnect,
    /// The transport was closed.
    #[error("transport closed")]
    Closed,
}
