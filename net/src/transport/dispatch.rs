//! The stream dispatcher: serves the streams a peer opens on an established
//! connection (after the Hello exchange).
//!
//! For every accepted **bidirectional** stream:
//!
//! 1. read exactly one frame (see `frame_io`): the header first, refused as
//!    soon as the code is unknown, a response code, or the segment table
//!    declares more than the code's cap; then the body, charged to the
//!    connection's, the remote IP's and the endpoint's frame budget as its
//!    bytes arrive; then the end of the stream (bytes after the frame are
//!    `malformed`). A stream that sends nothing for the idle period (10 s),
//!    or whose frame is not complete by its deadline (5 s + size / 32 KiB/s),
//!    is dropped (STOP_SENDING, RESET_STREAM); the connection stays;
//! 2. a refused frame gets an `Error` with the frame error's wire code
//!    (`requestCode` = the code byte if known, else `0xFF`) and the stream is
//!    finished — the connection stays open;
//! 3. the frame is decoded ([`Message::from_frame`]); a decode error gets an
//!    `Error` with the decode error's [`WireCode`];
//! 4. the [`Handler`] runs on the stream's task, with no further hand-off
//!    (a panic becomes `Error(internal)`; the peer stopping the stream
//!    cancels it), and its
//!    answer is checked with [`MessageCode::accepts_reply`]: a request gets its
//!    response or `Error`, a push gets `Ack` (`Ok(None)`) or `Error`; anything
//!    else is a handler bug, answered `Error(internal)`.
//!
//! **Unidirectional** streams carry pushes (and `WormResponse`, which is also
//! pushed to a worm's originator): they are read the same way and handled
//! without a reply; failures are logged with the fields `peer` and `code`.
//!
//! Concurrency per connection is bounded by quinn's stream limits and by a
//! semaphore of in-flight streams (reading + handling), acquired before a
//! stream is accepted: beyond it, streams wait in quinn, within its flow
//! control windows.

use std::future::Future;
use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use distsoc_protocol::codes::{Kind, MessageCode};
use distsoc_protocol::error::{ErrorCode, WireCode};
use distsoc_protocol::frame::FrameError;
use distsoc_protocol::ids::NodeId;
use distsoc_protocol::messages::wire::{self, Ack};
use distsoc_protocol::messages::{EncodeReply, Message};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tracing::{debug, error, warn};

use super::frame_io::{read_frame, write_frame, FrameBudget, ReadFailure, WriteFailure};
use super::slots::Activity;
use super::PeerInfo;

/// `requestCode` of an error about a frame whose code byte is unknown.
pub const UNKNOWN_REQUEST_CODE: u8 = 0xFF;

/// The `requestCode` of the `Error` for a frame that could not be read
/// (schema/README.md §2): its code when known, the code byte as received when
/// it is an unknown code, [`UNKNOWN_REQUEST_CODE`] when no code byte arrived.
pub(super) fn refused_request_code(error: &FrameError, code: Option<MessageCode>) -> u8 {
    match (code, error) {
        (Some(code), _) => code.as_u8(),
        (None, FrameError::UnknownCode(byte)) => *byte,
        (None, _) => UNKNOWN_REQUEST_CODE,
    }
}

/// Stream error code sent with STOP_SENDING when we stop reading a stream
/// early (its frame was refused, or it went idle).
const STREAM_STOP: u32 = 0;
/// Stream error code of a RESET when we abandon a reply (idle peer).
const STREAM_ABANDONED: u32 = 1;

/// What a [`Handler`] returns: the reply (requests), `None` for a push
/// (answered `Ack` on a bidirectional stream), or an `Error` to send back.
pub type HandlerFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Option<Message>, wire::Error>> + Send + 'a>>;

/// A handler's reply: a [`Message`], or a reply encoded when it is sent
/// ([`EncodeReply`], e.g. built from stored canonical bytes).
// Held inline like `Message` itself: one reply per stream, never stored
// in bulk, so its size costs nothing that matters.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Reply {
    /// A decoded message, encoded by the transport.
    Message(Message),
    /// A reply that encodes itself into the same frame as its message.
    Encoded(Box<dyn EncodeReply>),
}

impl Reply {
    /// The reply's message code.
    pub fn code(&self) -> MessageCode {
        match self {
            Reply::Message(m) => m.code(),
            Reply::Encoded(e) => e.code(),
        }
    }

    /// Encodes the frame (fails over the code's cap).
    pub fn to_frame(&self) -> Result<Vec<u8>, FrameError> {
        match self {
            Reply::Message(m) => m.to_frame(),
            Reply::Encoded(e) => e.to_frame(),
        }
    }
}

impl From<Message> for Reply {
    fn from(m: Message) -> Self {
        Reply::Message(m)
    }
}

/// What [`Handler::handle_reply`] returns: [`HandlerFuture`] with a
/// [`Reply`].
pub type ReplyFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Option<Reply>, wire::Error>> + Send + 'a>>;

/// The application side of the transport: answers requests and consumes
/// pushes. One handler serves every connection of a [`Transport`](super::Transport).
pub trait Handler: Send + Sync + 'static {
    /// Handles one decoded message (never `Hello`, never a response code
    /// other than a `WormResponse` push).
    ///
    /// * request (bidirectional stream): return `Ok(Some(response))` with the
    ///   request's response code, or `Err(error)`;
    /// * push on a bidirectional stream: `Ok(None)` is answered with `Ack`,
    ///   `Err(error)` with that `Error`;
    /// * push on a unidirectional stream: the result is only logged.
    ///
    /// The `requestCode` of a returned error is set by the transport. A panic
    /// is answered with `Error(internal)` and does not affect the connection.
    /// The future is dropped if the peer abandons the stream.
    fn handle<'a>(&'a self, ctx: RequestCtx, msg: Message) -> HandlerFuture<'a>;

    /// [`Handler::handle`] with a [`Reply`] that may encode itself: what the
    /// transport calls. The default wraps [`Handler::handle`]; a handler
    /// with encoded replies ([`super::Router::request_encoded`]) overrides
    /// both, and a wrapper forwards both.
    fn handle_reply<'a>(&'a self, ctx: RequestCtx, msg: Message) -> ReplyFuture<'a> {
        let fut = self.handle(ctx, msg);
        Box::pin(async move { fut.await.map(|r| r.map(Reply::Message)) })
    }

    /// Called once for every connection, in either direction, when its Hello
    /// exchange has completed and before any of its streams is served (an
    /// anchor records the peer's check-in here). Must not block: spawn any
    /// I/O. The default does nothing.
    fn on_connected(&self, info: Arc<PeerInfo>) {
        let _ = info;
    }

    /// Called once for every connection [`Handler::on_connected`] was
    /// called for, after it has closed and left the endpoint's registry
    /// (so [`Transport::peer`](super::Transport::peer) no longer returns
    /// it). `info.connection_id` tells which connection: a peer that
    /// reconnected may already have a newer one. Must not block. The
    /// default does nothing.
    fn on_disconnected(&self, info: Arc<PeerInfo>) {
        let _ = info;
    }

    /// Whether `peer`, connecting from `remote`, may use this endpoint.
    /// Called for every incoming connection as soon as the peer's NodeId is
    /// known from the TLS handshake — before the Hello exchange and before
    /// any stream is read. A refused connection is closed with
    /// [`CLOSE_REFUSED`](super::CLOSE_REFUSED). Must be cheap: consult
    /// in-memory state only, no I/O, no blocking. The default admits all.
    fn admit(&self, peer: &NodeId, remote: SocketAddr) -> bool {
        let _ = (peer, remote);
        true
    }
}

/// Who sent a message, and how.
#[derive(Debug, Clone)]
pub struct RequestCtx {
    /// The sender's NodeId (its TLS key).
    pub peer: NodeId,
    /// The sender's address as seen by us.
    pub remote: SocketAddr,
    /// What the sender said in the Hello exchange.
    pub peer_info: Arc<PeerInfo>,
    /// Whether the message came on a bidirectional stream (a reply is
    /// expected).
    pub bidirectional: bool,
}

/// Per-connection state shared by the dispatcher's tasks.
pub(crate) struct ConnShared {
    pub(crate) conn: quinn::Connection,
    pub(crate) info: Arc<PeerInfo>,
    pub(crate) handler: Arc<dyn Handler>,
    /// In-flight streams (reading + handling).
    pub(crate) inflight: Arc<Semaphore>,
    pub(crate) budget: FrameBudget,
    /// What the connection did (for idle-slot eviction).
    pub(crate) activity: Arc<Activity>,
    /// Longest wait for the next bytes of a stream (read or write).
    pub(crate) stream_idle: Duration,
}

impl ConnShared {
    /// The peer's NodeId for logs, hex-encoded only when a log line is
    /// actually written (not on every stream).
    fn peer_hex(&self) -> PeerHex {
        PeerHex(self.info.node_id)
    }

    fn ctx(&self, bidirectional: bool) -> RequestCtx {
        RequestCtx {
            peer: self.info.node_id,
            remote: self.conn.remote_address(),
            peer_info: self.info.clone(),
            bidirectional,
        }
    }
}

/// A NodeId shown as hex in log lines.
#[derive(Clone, Copy)]
struct PeerHex(NodeId);

impl std::fmt::Display for PeerHex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for b in self.0.as_bytes() {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// Accepts and serves the peer's streams until the connection closes.
pub(crate) async fn serve_connection(shared: Arc<ConnShared>) {
    let bidi = {
        let shared = shared.clone();
        async move {
            loop {
                let Ok(permit) = shared.inflight.clone().acquire_owned().await else {
                    break;
                };
                match shared.conn.accept_bi().await {
                    Ok((send, recv)) => {
                        tokio::spawn(serve_bidi(shared.clone(), send, recv, permit));
                    }
                    Err(_) => break,
                }
            }
        }
    };
    let uni = {
        let shared = shared.clone();
        async move {
            loop {
                let Ok(permit) = shared.inflight.clone().acquire_owned().await else {
                    break;
                };
                match shared.conn.accept_uni().await {
                    Ok(recv) => {
                        tokio::spawn(serve_uni(shared.clone(), recv, permit));
                    }
                    Err(_) => break,
                }
            }
        }
    };
    tokio::join!(bidi, uni);
}

/// An `Error` reply about a message with code `request_code`.
fn error_reply(code: ErrorCode, request_code: u8, message: impl Into<String>) -> Message {
    Message::Error(wire::Error::new(code, request_code, message))
}

/// Serves one bidirectional stream: one frame in, one reply out.
async fn serve_bidi(
    shared: Arc<ConnShared>,
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
    _permit: OwnedSemaphorePermit,
) {
    let peer = shared.peer_hex();
    let read = read_frame(
        &mut recv,
        |code| code.kind() != Kind::Response,
        shared.stream_idle,
        Some(&shared.budget),
    )
    .await;
    let (frame, reservation) = match read {
        Ok(read) => read,
        Err(failure) => {
            let _ = recv.stop(STREAM_STOP.into());
            let reply = match failure {
                ReadFailure::Frame { error, code } => {
                    let request_code = refused_request_code(&error, code);
                    debug!(%peer, code = request_code, %error, "refused frame");
                    error_reply(error.error_code(), request_code, error.to_string())
                }
                ReadFailure::Refused(code) => {
                    debug!(%peer, %code, "response code sent as a request");
                    error_reply(
                        ErrorCode::UnknownMessage,
                        code.as_u8(),
                        format!("{code} is a response, not a request"),
                    )
                }
                ReadFailure::NoBudget(code) => {
                    warn!(%peer, %code, "frame budget exhausted");
                    Message::Error(
                        wire::Error::new(
                            ErrorCode::Unavailable,
                            code.as_u8(),
                            "too much data in flight on this connection",
                        )
                        .with_retry_after(1000),
                    )
                }
                ReadFailure::Idle | ReadFailure::Deadline => {
                    debug!(%peer, "stream idle or past its frame deadline: dropped");
                    let _ = send.reset(STREAM_ABANDONED.into());
                    return;
                }
                ReadFailure::Stream(error) => {
                    debug!(%peer, %error, "stream failed while reading");
                    return;
                }
            };
            send_reply(&shared, &mut send, reply).await;
            return;
        }
    };
    // A complete frame: the connection is in use until it is handled.
    let _busy = shared.activity.request();
    let code = frame.code();
    let decoded = Message::from_frame(&frame);
    drop(frame);
    let msg = match decoded {
        Ok(msg) => msg,
        Err(error) => {
            debug!(%peer, %code, %error, "undecodable message");
            let reply = error_reply(error.error_code(), code.as_u8(), error.to_string());
            send_reply(&shared, &mut send, reply).await;
            return;
        }
    };
    if code == MessageCode::Hello {
        let reply = error_reply(
            ErrorCode::UnknownMessage,
            code.as_u8(),
            "Hello was already exchanged on this connection",
        );
        send_reply(&shared, &mut send, reply).await;
        return;
    }

    let handler = shared.handler.clone();
    let ctx = shared.ctx(true);
    // Run here rather than in a task of its own: one wake-up less per
    // request. Dropping the future cancels the handler.
    let task = CatchUnwind::new(&*handler, ctx, msg);
    let stopped = send.stopped();
    let outcome = tokio::select! {
        outcome = task => outcome,
        _ = stopped => {
            debug!(%peer, %code, "peer abandoned the stream: handler cancelled");
            return;
        }
    };
    drop(reservation);

    let internal = |why: &str| Reply::from(error_reply(ErrorCode::Internal, code.as_u8(), why));
    let reply: Reply = match outcome {
        Err(_) => {
            error!(%peer, %code, "handler panicked");
            internal("handler failed")
        }
        Ok(Err(mut e)) => {
            e.request_code = code.as_u8();
            Message::Error(e).into()
        }
        Ok(Ok(Some(reply))) if code.accepts_reply(reply.code()) => {
            if let Reply::Message(Message::Error(mut e)) = reply {
                e.request_code = code.as_u8();
                Message::Error(e).into()
            } else {
                reply
            }
        }
        Ok(Ok(Some(reply))) => {
            error!(%peer, %code, reply = %reply.code(), "handler returned a reply of the wrong type");
            internal("handler returned a reply of the wrong type")
        }
        Ok(Ok(None)) if code.kind() == Kind::Push => Message::Ack(Ack {
            version: shared.info.version,
            request_code: code.as_u8(),
        })
        .into(),
        Ok(Ok(None)) => {
            error!(%peer, %code, "handler returned no response to a request");
            internal("handler returned no response")
        }
    };
    send_reply(&shared, &mut send, reply).await;
}

/// Encodes and writes a reply, then finishes the stream. A reply that cannot
/// be encoded (over its cap) is replaced by `Error(internal)`.
async fn send_reply(shared: &ConnShared, send: &mut quinn::SendStream, reply: impl Into<Reply>) {
    let peer = shared.peer_hex();
    let reply = reply.into();
    let request_code = match &reply {
        Reply::Message(Message::Error(e)) => e.request_code,
        Reply::Message(Message::Ack(a)) => a.request_code,
        _ => UNKNOWN_REQUEST_CODE,
    };
    let bytes = match reply.to_frame() {
        Ok(bytes) => bytes,
        Err(error) => {
            error!(%peer, code = %reply.code(), %error, "reply cannot be encoded");
            let fallback = error_reply(ErrorCode::Internal, request_code, "reply too large");
            match fallback.to_frame() {
                Ok(bytes) => bytes,
                Err(_) => return,
            }
        }
    };
    match write_frame(send, &bytes, shared.stream_idle).await {
        Ok(()) => {}
        Err(WriteFailure::Stopped) => debug!(%peer, "peer stopped reading the reply"),
        Err(WriteFailure::Idle) => {
            debug!(%peer, "peer not reading the reply: abandoned");
            let _ = send.reset(STREAM_ABANDONED.into());
        }
        Err(WriteFailure::Stream(error)) => debug!(%peer, %error, "reply not sent"),
    }
}

/// Serves one unidirectional stream: one push in, no reply.
async fn serve_uni(
    shared: Arc<ConnShared>,
    mut recv: quinn::RecvStream,
    _permit: OwnedSemaphorePermit,
) {
    let peer = shared.peer_hex();
    let read = read_frame(
        &mut recv,
        |code| code.kind() == Kind::Push || code == MessageCode::WormResponse,
        shared.stream_idle,
        Some(&shared.budget),
    )
    .await;
    let (frame, reservation) = match read {
        Ok(read) => read,
        Err(failure) => {
            let _ = recv.stop(STREAM_STOP.into());
            match failure {
                ReadFailure::Frame { error, code } => {
                    let code = refused_request_code(&error, code);
                    warn!(%peer, code, %error, "refused push frame");
                }
                ReadFailure::Refused(code) => {
                    warn!(%peer, %code, "not a push: unidirectional stream dropped");
                }
                ReadFailure::NoBudget(code) => warn!(%peer, %code, "frame budget exhausted"),
                ReadFailure::Idle => debug!(%peer, "push stream idle: dropped"),
                ReadFailure::Deadline => debug!(%peer, "push frame past its deadline: dropped"),
                ReadFailure::Stream(error) => debug!(%peer, %error, "push stream failed"),
            }
            return;
        }
    };
    // A complete frame: the connection is in use until it is handled.
    let _busy = shared.activity.request();
    let code = frame.code();
    let decoded = Message::from_frame(&frame);
    drop(frame);
    let msg = match decoded {
        Ok(msg) => msg,
        Err(error) => {
            warn!(%peer, %code, %error, error_code = %error.error_code(), "undecodable push");
            return;
        }
    };
    let handler = shared.handler.clone();
    let ctx = shared.ctx(false);
    let outcome = CatchUnwind::new(&*handler, ctx, msg).await;
    drop(reservation);
    match outcome {
        Err(_) => error!(%peer, %code, "push handler panicked"),
        Ok(Err(e)) => {
            warn!(%peer, %code, error_code = %e.code, message = %e.message, "push refused")
        }
        Ok(Ok(Some(reply))) => {
            debug!(%peer, %code, reply = %reply.code(), "reply to a unidirectional push dropped");
        }
        Ok(Ok(None)) => debug!(%peer, %code, "push handled"),
    }
}

/// A handler's future run on the stream's task, a panic (in `handle` or
/// in the future) caught as `Err`: what a task of its own gave, without
/// the hand-off.
struct CatchUnwind<'a>(Result<ReplyFuture<'a>, Option<Box<dyn std::any::Any + Send>>>);

impl<'a> CatchUnwind<'a> {
    fn new(handler: &'a dyn Handler, ctx: RequestCtx, msg: Message) -> Self {
        Self(catch_unwind(AssertUnwindSafe(|| handler.handle_reply(ctx, msg))).map_err(Some))
    }
}

impl Future for CatchUnwind<'_> {
    type Output = std::thread::Result<Result<Option<Reply>, wire::Error>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.0 {
            Ok(fut) => match catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(cx))) {
                Ok(Poll::Pending) => Poll::Pending,
                Ok(Poll::Ready(out)) => Poll::Ready(Ok(out)),
                Err(panic) => Poll::Ready(Err(panic)),
            },
            Err(panic) => Poll::Ready(Err(panic
                .take()
                .unwrap_or_else(|| Box::new("polled after completion")))),
        }
    }
}
