//! The client side of streams: [`Peer`], a handle on an established
//! connection, and its request, push and raw-exchange operations.
//!
//! Memory: a reply is read with the cap of the codes the request accepts
//! (its response code, or `Ack`, and `Error`); any other code is refused as
//! soon as its first byte arrives, so a reply never buffers more than the
//! accepted codes' caps. Replies are not charged to the frame budget: they
//! answer our own requests, whose number the caller controls.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use distsoc_protocol::codec::{from_frame, to_frame, WireMessage};
use distsoc_protocol::codes::MessageCode;
use distsoc_protocol::error::DecodeError;
use distsoc_protocol::frame::{Frame, FrameError, MAX_HEADER_BYTES};
use distsoc_protocol::ids::NodeId;
use distsoc_protocol::messages::wire::{self, Ack};
use distsoc_protocol::request::{Push, Request};

use super::frame_io::{read_frame, write_frame, ReadFailure, WriteFailure};
use super::{CloseReason, PeerInfo, CLOSE_NORMAL};

/// Why a request (or push) failed.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// Our own message could not be encoded (larger than its code's cap).
    #[error("cannot encode the message: {0}")]
    Encode(#[source] FrameError),
    /// The peer answered with an `Error`.
    #[error("peer refused: {} ({})", .0.code, .0.message)]
    Remote(wire::Error),
    /// The reply's code is not an acceptable answer (not the response code,
    /// `Ack` or `Error`): refused by the frame reader as soon as the code
    /// byte arrives, before anything is decoded.
    #[error("unexpected reply {got} to {request}")]
    UnexpectedReply {
        /// What we sent.
        request: MessageCode,
        /// What came back.
        got: MessageCode,
    },
    /// The reply is not a valid frame (unknown code, over its cap, malformed,
    /// truncated, trailing bytes).
    #[error("invalid reply frame: {0}")]
    BadFrame(#[source] FrameError),
    /// The reply frame is valid but its message is not.
    #[error("invalid reply: {0}")]
    BadReply(#[source] DecodeError),
    /// No complete reply within the timeout (the stream is abandoned).
    #[error("no reply within {0:?}")]
    Timeout(Duration),
    /// The connection is closed.
    #[error("connection closed: {0}")]
    Closed(CloseReason),
    /// The stream failed (reset by the peer, or a local stream error).
    #[error("stream failed: {0}")]
    Stream(String),
}

/// A connection's UDP traffic so far ([`Peer::traffic`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Traffic {
    /// Datagrams sent.
    pub tx_datagrams: u64,
    /// Bytes sent (UDP payload).
    pub tx_bytes: u64,
    /// Datagrams received.
    pub rx_datagrams: u64,
    /// Bytes received (UDP payload).
    pub rx_bytes: u64,
}

/// A live connection to a peer that completed the Hello exchange. Cheap to
/// clone; all clones share the connection.
#[derive(Debug, Clone)]
pub struct Peer {
    pub(crate) conn: quinn::Connection,
    pub(crate) info: Arc<PeerInfo>,
    pub(crate) request_timeout: Duration,
}

impl Peer {
    /// The peer's NodeId (its TLS key).
    pub fn node_id(&self) -> NodeId {
        self.info.node_id
    }

    /// The peer's current address.
    pub fn remote_address(&self) -> SocketAddr {
        self.conn.remote_address()
    }

    /// The negotiated protocol version.
    pub fn version(&self) -> u16 {
        self.info.version
    }

    /// What the peer said in the Hello exchange, and how we are connected.
    pub fn info(&self) -> &Arc<PeerInfo> {
        &self.info
    }

    /// Identifies the underlying connection (unique among this endpoint's
    /// live connections): two `Peer`s with the same id share one connection.
    pub fn connection_id(&self) -> usize {
        self.conn.stable_id()
    }

    /// The default timeout of [`Peer::call`] and the pushes
    /// (`TransportConfig::request_timeout`).
    pub fn request_timeout(&self) -> Duration {
        self.request_timeout
    }

    /// What the connection has sent and received so far, in UDP datagrams
    /// and bytes (QUIC headers, encryption and acknowledgements included).
    pub fn traffic(&self) -> Traffic {
        let s = self.conn.stats();
        Traffic {
            tx_datagrams: s.udp_tx.datagrams,
            tx_bytes: s.udp_tx.bytes,
            rx_datagrams: s.udp_rx.datagrams,
            rx_bytes: s.udp_rx.bytes,
        }
    }

    /// Whether the connection is closed (or closing).
    pub fn is_closed(&self) -> bool {
        self.conn.close_reason().is_some()
    }

    /// Waits until the connection is closed and tells why.
    pub async fn closed(&self) -> CloseReason {
        CloseReason::from(self.conn.closed().await)
    }

    /// Closes the connection (application code [`CLOSE_NORMAL`]); streams
    /// in flight are aborted.
    pub fn close(&self) {
        self.conn.close(CLOSE_NORMAL.into(), b"closed");
    }

    /// Sends a request and returns its own response type, with the default
    /// timeout (`TransportConfig::request_timeout`). An `Error` reply is
    /// [`RequestError::Remote`].
    pub async fn call<R: Request>(&self, req: R) -> Result<R::Response, RequestError> {
        self.call_with_timeout(req, self.request_timeout).await
    }

    /// [`Peer::call`] with an explicit timeout (long polls such as
    /// `FetchWait` pass a longer one). On timeout the stream is abandoned,
    /// which cancels the peer's handler.
    pub async fn call_with_timeout<R: Request>(
        &self,
        req: R,
        timeout: Duration,
    ) -> Result<R::Response, RequestError> {
        let bytes = encode(&req)?;
        self.exchange::<R::Response>(R::CODE, &bytes, timeout).await
    }

    /// Sends a push on a unidirectional stream (no answer). Returns once the
    /// frame is handed to QUIC and the stream finished; delivery is QUIC's.
    pub async fn push<P: Push>(&self, msg: P) -> Result<(), RequestError> {
        let bytes = encode(&msg)?;
        let timeout = self.request_timeout;
        let send = async {
            let mut send = self.conn.open_uni().await.map_err(|e| self.lost(e))?;
            write_frame(&mut send, &bytes, timeout)
                .await
                .map_err(|e| self.write_failure(e, timeout))
        };
        tokio::time::timeout(timeout, send)
            .await
            .map_err(|_| RequestError::Timeout(timeout))?
    }

    /// Sends a push on a bidirectional stream and waits for its `Ack` (an
    /// `Error` reply is [`RequestError::Remote`]).
    pub async fn push_acked<P: Push>(&self, msg: P) -> Result<Ack, RequestError> {
        let bytes = encode(&msg)?;
        self.exchange::<Ack>(P::CODE, &bytes, self.request_timeout)
            .await
    }

    /// Sends `bytes` as is on a new bidirectional stream, finishes it, and
    /// returns the raw bytes of the reply (at most the largest frame cap plus
    /// a header). For conformance and hostile-peer tests: nothing is checked.
    pub async fn raw_exchange(&self, bytes: &[u8]) -> Result<Vec<u8>, RequestError> {
        let timeout = self.request_timeout;
        let exchange = async {
            let (mut send, mut recv) = self.conn.open_bi().await.map_err(|e| self.lost(e))?;
            match write_frame(&mut send, bytes, timeout).await {
                // The peer may refuse the frame before reading all of it.
                Ok(()) | Err(WriteFailure::Stopped) => {}
                Err(e) => return Err(self.write_failure(e, timeout)),
            }
            let limit = MessageCode::largest_cap() + MAX_HEADER_BYTES;
            recv.read_to_end(limit).await.map_err(|e| match e {
                quinn::ReadToEndError::Read(quinn::ReadError::ConnectionLost(c)) => {
                    RequestError::Closed(c.into())
                }
                other => RequestError::Stream(other.to_string()),
            })
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| RequestError::Timeout(timeout))?
    }

    /// One frame out, one validated reply in: a `T`, or an `Error`
    /// ([`RequestError::Remote`]). Any other code is refused by the frame
    /// reader as soon as its code byte arrives.
    async fn exchange<T: WireMessage>(
        &self,
        code: MessageCode,
        bytes: &[u8],
        timeout: Duration,
    ) -> Result<T, RequestError> {
        let accept = |c: MessageCode| c == T::CODE || c == MessageCode::Error;
        let frame = self.exchange_frame(code, bytes, timeout, accept).await?;
        if frame.code() == MessageCode::Error {
            let error = from_frame::<wire::Error>(&frame).map_err(RequestError::BadReply)?;
            return Err(RequestError::Remote(error));
        }
        from_frame::<T>(&frame).map_err(RequestError::BadReply)
    }

    /// One frame out on a new bidirectional stream, one reply frame in whose
    /// code `accept` allows, within `timeout`.
    async fn exchange_frame(
        &self,
        code: MessageCode,
        bytes: &[u8],
        timeout: Duration,
        accept: impl Fn(MessageCode) -> bool,
    ) -> Result<Frame, RequestError> {
        let exchange = async {
            let (mut send, mut recv) = self.conn.open_bi().await.map_err(|e| self.lost(e))?;
            match write_frame(&mut send, bytes, timeout).await {
                // Stopped early: the peer refused the frame; its Error follows.
                Ok(()) | Err(WriteFailure::Stopped) => {}
                Err(e) => return Err(self.write_failure(e, timeout)),
            }
            let (frame, _) = read_frame(&mut recv, accept, timeout, None).await.map_err(
                |failure| match failure {
                    ReadFailure::Frame { error, .. } => RequestError::BadFrame(error),
                    ReadFailure::Refused(got) => {
                        RequestError::UnexpectedReply { request: code, got }
                    }
                    ReadFailure::Idle | ReadFailure::Deadline => RequestError::Timeout(timeout),
                    ReadFailure::NoBudget(_) => RequestError::Stream("no budget".into()),
                    ReadFailure::Stream(e) => self.stream_failure(e),
                },
            )?;
            Ok(frame)
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| RequestError::Timeout(timeout))?
    }

    fn lost(&self, e: quinn::ConnectionError) -> RequestError {
        RequestError::Closed(e.into())
    }

    fn stream_failure(&self, e: String) -> RequestError {
        match self.conn.close_reason() {
            Some(reason) => RequestError::Closed(reason.into()),
            None => RequestError::Stream(e),
        }
    }

    fn write_failure(&self, e: WriteFailure, timeout: Duration) -> RequestError {
        match e {
            WriteFailure::Idle => RequestError::Timeout(timeout),
            WriteFailure::Stopped => RequestError::Stream("peer stopped the stream".into()),
            WriteFailure::Stream(e) => self.stream_failure(e),
        }
    }
}

/// A message as a frame (fails when larger than its code's cap).
fn encode<M: WireMessage>(msg: &M) -> Result<Vec<u8>, RequestError> {
    to_frame(msg).map_err(RequestError::Encode)
}
