//! QUIC transport: one quinn endpoint (server and client), identities pinned
//! in TLS, the Hello exchange, and the stream dispatcher.
//!
//! # Shape
//!
//! * [`Transport::bind`] opens a UDP socket and starts accepting connections;
//!   [`Transport::connect`] dials `NodeId@addr`. Both ends present a
//!   self-signed Ed25519 certificate of their network key ([`tls`]); the
//!   dialled key is pinned, an incoming peer is identified by its key.
//! * **One connection per peer.** `connect` reuses any live connection to the
//!   NodeId, incoming or outgoing; dials to one NodeId are serialized. When
//!   both sides dial each other at once, the connection *initiated by the
//!   lower NodeId* is kept on both sides and the other is closed with
//!   [`CLOSE_DUPLICATE`]; a peer that dials us again while its previous
//!   connection is live replaces it (newest wins).
//! * **Hello.** The initiator opens the first bidirectional stream with
//!   `Hello`; the responder answers `HelloResponse` (the highest version in
//!   both ranges, `observed_address` = the initiator's address as seen), or
//!   `Error(unsupportedVersion)` with its range followed by closing the
//!   connection with [`CLOSE_VERSION_MISMATCH`]. Both phases (QUIC handshake,
//!   then Hello) are bounded by `hello_timeout` (10 s); a responder that
//!   gets no Hello in time closes with [`CLOSE_HELLO_TIMEOUT`].
//! * **Streams before Hello** are not refused: neither side accepts any
//!   stream but the Hello stream until the exchange is complete, so early
//!   streams simply wait in quinn, bounded by the stream limits and flow
//!   control windows below, and are served once the connection is
//!   established. If the initiator's *first* stream is not a `Hello`, it is
//!   answered `Error(unauthorized)` and the connection is closed with
//!   [`CLOSE_PROTOCOL_VIOLATION`]; a later `Hello` on an established
//!   connection is answered `Error(unknownMessage)`.
//! * **Dispatch** (see `dispatch.rs`): every stream carries one frame each way;
//!   a bad frame gets an `Error` on its stream and the connection stays up.
//!
//! # Memory bounds (per connection)
//!
//! | what | bound | default |
//! |---|---|---|
//! | quinn receive buffer, one stream | `stream_receive_window` | 1 MiB |
//! | quinn receive buffer, whole connection | `connection_receive_window` | 2 MiB |
//! | quinn unacknowledged send data | `send_window` | 4 MiB |
//! | frames being received or handled | `connection_frame_budget` | 16 MiB + 2,057 B |
//! | frames being received or handled, one remote IP | `ip_frame_budget` | 32 MiB |
//! | frames being received or handled, whole endpoint | `endpoint_frame_budget` | 64 MiB |
//! | frame headers being read | `max_inflight_per_connection` × 2,057 B | 32 × 2 KiB |
//! | streams open at once | `max_concurrent_bidi` / `max_concurrent_uni` | 32 / 32 |
//!
//! The flow-control windows bound what quinn holds *unread*; they need not
//! hold a whole frame, because the frame decoder consumes data as it
//! arrives and quinn then extends the credit. Frames are bounded separately:
//! a stream charges its frame's buffer to the connection's, the remote IP's
//! and the endpoint's budget *as the bytes arrive* (64 KiB, then doubling,
//! at most the declared size, which is already checked against the code's
//! cap), never for bytes only declared, and keeps the charge until its
//! handler returns. Each budget is at least the largest code cap (16 MiB,
//! `InitialMapSync`/`FetchResponse`) plus a header, so any single valid
//! frame fits; a stream that cannot get budget within the stream idle
//! timeout is answered `Error(unavailable)` with `retryAfterMs`. Connection
//! windows are kept small (2 MiB, 2× the stream window) because they multiply
//! by `max_connections`; 2 MiB per round trip is still 20 MiB/s at 100 ms.
//!
//! # Time and connection bounds
//!
//! * A frame must arrive within `frame_deadline_floor + n /
//!   frame_min_rate` (5 s + n / 32 KiB/s) of its stream's first read, and
//!   with no gap over `stream_idle_timeout` (10 s); otherwise the stream is
//!   abandoned (STOP_SENDING 0, RESET_STREAM 1) and the connection stays.
//! * Connections are counted in a slot table (`slots.rs`): at most
//!   `max_connections` in all and `max_connections_per_ip` incoming from one
//!   IP (closed with [`CLOSE_TOO_MANY_CONNECTIONS`] after the handshake).
//!   When full, an idle incoming connection is evicted
//!   ([`CLOSE_IDLE_EVICTED`]) to admit a new one. When the endpoint is at
//!   least 3/4 full or an IP holds half its cap, a new connection must first
//!   validate its address with a QUIC Retry, so that spoofed Initials can
//!   neither evict connections nor use up an address's share.
//! * [`Handler::admit`] is asked about every incoming peer right after the
//!   TLS handshake; a refused one is closed with [`CLOSE_REFUSED`].
//! * The stateless-reset key is derived from the network key (`reset.rs`),
//!   so a restarted endpoint resets its peers' stale connections at once.
//!
//! The Hello rules (who sends first, version selection, the timeout, the
//! close code of each failure) and the duplicate tie-break are decided by
//! the sans-IO [`distsoc_protocol::conn`]; this module does the I/O and the
//! timers around it.
//!
//! # Application close codes
//!
//! [`CloseCode`] (from `distsoc_protocol::conn`); the `CLOSE_*` constants are
//! its wire values:
//! [`CLOSE_NORMAL`] (0x0), [`CLOSE_VERSION_MISMATCH`] (0x1),
//! [`CLOSE_PROTOCOL_VIOLATION`] (0x2), [`CLOSE_DUPLICATE`] (0x3),
//! [`CLOSE_HELLO_TIMEOUT`] (0x4), [`CLOSE_REFUSED`] (0x5),
//! [`CLOSE_TOO_MANY_CONNECTIONS`] (0x6), [`CLOSE_IDLE_EVICTED`] (0x7).

use crate::clock::now_ms;
use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use distsoc_protocol::codes::MessageCode;
use distsoc_protocol::conn::{self as rules, Handshake, Transmit};
use distsoc_protocol::error::{ErrorCode, WireCode};
use distsoc_protocol::ids::NodeId;
use distsoc_protocol::limits::ALPN;
use distsoc_protocol::messages::common::{Role, SocketAddress};
use distsoc_protocol::messages::wire::{self, Hello, HelloResponse, Limits};
use distsoc_protocol::messages::Message;
use distsoc_protocol::sign::SigningKey;
use quinn::crypto::rustls::{HandshakeData, QuicClientConfig, QuicServerConfig};
use quinn::VarInt;
use tokio::sync::Semaphore;
use tracing::{debug, trace, warn};

mod config;
mod dispatch;
mod errors;
mod frame_io;
mod reset;
mod router;
mod slots;
mod stream;
pub mod tls;

pub use config::{
    TransportConfig, DEFAULT_CONNECTION_RECEIVE_WINDOW, DEFAULT_ENDPOINT_FRAME_BUDGET,
    DEFAULT_FRAME_DEADLINE_FLOOR, DEFAULT_FRAME_MIN_RATE, DEFAULT_IDLE_SLOT_GRACE,
    DEFAULT_IP_FRAME_BUDGET, DEFAULT_MAX_CONNECTIONS_PER_IP, DEFAULT_SEND_WINDOW,
    DEFAULT_STREAM_RECEIVE_WINDOW, MIN_CONNECTION_FRAME_BUDGET,
};
pub use dispatch::{Handler, HandlerFuture, Reply, ReplyFuture, RequestCtx, UNKNOWN_REQUEST_CODE};
pub use distsoc_protocol::conn::{CloseCode, Direction};
pub use errors::{CloseReason, TransportError};
pub use router::Router;
pub use stream::{Peer, RequestError, Traffic};
pub use tls::TlsError;

use config::{quic_transport_config, validate, End};
use dispatch::{serve_connection, ConnShared};
use frame_io::{read_frame, write_frame, FrameBudget, Pool, ReadFailure, WriteFailure};
use slots::{Refusal, SlotGuard, Slots};

/// Application close code: normal close (shutdown, [`Peer::close`]).
pub const CLOSE_NORMAL: u32 = CloseCode::Normal.as_u32();
/// Application close code: the Hello version ranges do not overlap.
pub const CLOSE_VERSION_MISMATCH: u32 = CloseCode::VersionMismatch.as_u32();
/// Application close code: the peer broke the connection rules (no Hello
/// first, undecodable Hello or HelloResponse, wrong ALPN or key).
pub const CLOSE_PROTOCOL_VIOLATION: u32 = CloseCode::ProtocolViolation.as_u32();
/// Application close code: a second connection between the same two nodes;
/// the other one is kept.
pub const CLOSE_DUPLICATE: u32 = CloseCode::Duplicate.as_u32();
/// Application close code: the Hello exchange did not complete in time.
pub const CLOSE_HELLO_TIMEOUT: u32 = CloseCode::HelloTimeout.as_u32();
/// Application close code: this peer is not admitted (for example banned by
/// the operator); sent right after the QUIC handshake, before Hello.
pub const CLOSE_REFUSED: u32 = CloseCode::NotAdmitted.as_u32();
/// Application close code: the peer's IP address already holds
/// `max_connections_per_ip` connections; sent right after the QUIC
/// handshake, before Hello.
pub const CLOSE_TOO_MANY_CONNECTIONS: u32 = CloseCode::TooManyConnections.as_u32();
/// Application close code: every connection slot was taken, and this
/// connection was the idle one (no request for a while, none running) that
/// made room for a new one. The peer may redial.
pub const CLOSE_IDLE_EVICTED: u32 = CloseCode::IdleEvicted.as_u32();

/// How long a responder waits for its error reply to be acknowledged before
/// closing the connection (so that `Error(unsupportedVersion)` arrives).
const CLOSE_LINGER: Duration = Duration::from_secs(2);

/// An established connection's peer: its key and what it said in Hello.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerInfo {
    /// The peer's NodeId (its TLS key).
    pub node_id: NodeId,
    /// The peer's address when the connection was established.
    pub remote: SocketAddr,
    /// Who dialled whom.
    pub direction: Direction,
    /// The connection's id ([`Peer::connection_id`]).
    pub connection_id: usize,
    /// Negotiated protocol version.
    pub version: u16,
    /// The peer's lowest version.
    pub min_version: u16,
    /// The peer's highest version.
    pub max_version: u16,
    /// The peer's roles.
    pub roles: Vec<Role>,
    /// The peer's capability tokens.
    pub capabilities: Vec<String>,
    /// The peer's advertised limits.
    pub limits: Limits,
    /// The addresses the peer announced.
    pub listen_addresses: Vec<SocketAddr>,
    /// The peer's implementation name.
    pub agent: String,
    /// The peer's clock in its Hello / HelloResponse, ms since the epoch.
    pub time_ms: u64,
    /// Outbound connections: our address as the responder saw it.
    pub observed_address: Option<SocketAddr>,
}

/// The node's QUIC endpoint. Dropping it closes the endpoint; call
/// [`Transport::close`] to close gracefully.
pub struct Transport {
    inner: Arc<Inner>,
    accept_task: tokio::task::JoinHandle<()>,
}

impl fmt::Debug for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transport")
            .field("node_id", &self.inner.node_id)
            .field("local_addr", &self.local_addr().ok())
            .finish_non_exhaustive()
    }
}

struct Inner {
    endpoint: quinn::Endpoint,
    identity: tls::Identity,
    node_id: NodeId,
    cfg: TransportConfig,
    quic: Arc<quinn::TransportConfig>,
    handler: Arc<dyn Handler>,
    /// Live, Hello-complete connections by peer.
    registry: Mutex<HashMap<NodeId, Entry>>,
    /// Per-target dial locks (one dial at a time per NodeId).
    dials: Mutex<HashMap<NodeId, Arc<tokio::sync::Mutex<()>>>>,
    /// The endpoint's share of frame memory.
    endpoint_budget: Pool,
    /// Connection slots (total and per-IP caps, eviction, per-IP budget).
    slots: Arc<Slots>,
    closing: AtomicBool,
}

#[derive(Clone)]
struct Entry {
    conn: quinn::Connection,
    info: Arc<PeerInfo>,
}

/// Outcome of registering a Hello-complete connection.
enum Registration {
    /// The new connection is the peer's connection now.
    Registered,
    /// An existing connection wins; the new one must be closed.
    Existing(Entry),
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Transport {
    /// Binds the endpoint on `cfg.listen` with the identity of `key` and
    /// starts accepting connections; `handler` serves every connection's
    /// streams. Must be called inside a tokio runtime.
    pub fn bind(
        key: &SigningKey,
        cfg: TransportConfig,
        handler: Arc<dyn Handler>,
    ) -> Result<Transport, TransportError> {
        validate(&cfg)?;
        let identity = tls::Identity::new(key)?;
        let quic = Arc::new(quic_transport_config(&cfg, End::Dialer)?);
        let server_tls = QuicServerConfig::try_from(tls::server_config(&identity)?)
            .map_err(|e| TransportError::Config(e.to_string()))?;
        let mut server = quinn::ServerConfig::with_crypto(Arc::new(server_tls));
        server
            .transport_config(Arc::new(quic_transport_config(&cfg, End::Listener)?))
            .max_incoming(cfg.max_connections);
        // The stateless-reset key is derived from the network key, so that a
        // restarted endpoint resets its peers' old connections (`reset.rs`).
        let mut endpoint_cfg = quinn::EndpointConfig::new(Arc::new(reset::ResetKey::derive(key)));
        endpoint_cfg.cid_generator(reset::cid_generator(key));
        let bind_err = |source| TransportError::Bind {
            addr: cfg.listen,
            source,
        };
        let socket = std::net::UdpSocket::bind(cfg.listen).map_err(bind_err)?;
        let runtime = quinn::default_runtime()
            .ok_or_else(|| bind_err(std::io::Error::other("no tokio runtime")))?;
        let endpoint =
            quinn::Endpoint::new(endpoint_cfg, Some(server), socket, runtime).map_err(bind_err)?;
        let endpoint_capacity = cfg.endpoint_frame_budget.max(MIN_CONNECTION_FRAME_BUDGET);
        let slots = Arc::new(Slots::new(
            cfg.max_connections,
            cfg.max_connections_per_ip,
            cfg.idle_slot_grace,
            cfg.ip_frame_budget.max(MIN_CONNECTION_FRAME_BUDGET),
        ));
        let inner = Arc::new(Inner {
            endpoint,
            node_id: identity.node_id(),
            identity,
            quic,
            handler,
            registry: Mutex::new(HashMap::new()),
            dials: Mutex::new(HashMap::new()),
            endpoint_budget: Pool::new(endpoint_capacity),
            slots,
            closing: AtomicBool::new(false),
            cfg,
        });
        let accept_task = tokio::spawn(accept_loop(inner.clone()));
        debug!(
            node = %inner.node_id,
            addr = %inner
                .endpoint
                .local_addr()
                .map_or_else(|e| e.to_string(), |a| a.to_string()),
            "transport bound"
        );
        Ok(Transport { inner, accept_task })
    }

    /// The bound UDP address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.inner.endpoint.local_addr()
    }

    /// Our NodeId (the network key's public half).
    pub fn node_id(&self) -> NodeId {
        self.inner.node_id
    }

    /// Connects to `target` at `addr`, pinning its key, and runs the Hello
    /// exchange; returns the live connection to `target` instead if there is
    /// one (incoming or outgoing).
    pub async fn connect(&self, target: NodeId, addr: SocketAddr) -> Result<Peer, TransportError> {
        let inner = &self.inner;
        if inner.closing.load(Ordering::SeqCst) {
            return Err(TransportError::Closed);
        }
        if target == inner.node_id {
            return Err(TransportError::SelfConnect);
        }
        if let Some(peer) = inner.live_peer(&target) {
            return Ok(peer);
        }
        let dial_lock = inner.dial_lock(target);
        let result = {
            let _guard = dial_lock.lock().await;
            match inner.live_peer(&target) {
                Some(peer) => Ok(peer),
                None => inner.dial(target, addr).await,
            }
        };
        inner.release_dial_lock(target, dial_lock);
        result
    }

    /// The live connection to `node`, if any.
    pub fn peer(&self, node: &NodeId) -> Option<Peer> {
        self.inner.live_peer(node)
    }

    /// Every peer with a live, Hello-complete connection.
    pub fn peers(&self) -> Vec<PeerInfo> {
        lock(&self.inner.registry)
            .values()
            .filter(|e| e.conn.close_reason().is_none())
            .map(|e| (*e.info).clone())
            .collect()
    }

    /// Closes every connection ([`CLOSE_NORMAL`]) and the endpoint, then waits
    /// (at most `close_timeout`) for the peers to acknowledge.
    pub async fn close(&self) {
        self.inner.closing.store(true, Ordering::SeqCst);
        self.inner
            .endpoint
            .close(VarInt::from_u32(CLOSE_NORMAL), b"shutdown");
        let wait = self.inner.endpoint.wait_idle();
        if tokio::time::timeout(self.inner.cfg.close_timeout, wait)
            .await
            .is_err()
        {
            debug!("endpoint not idle after close timeout");
        }
    }
}

impl Drop for Transport {
    fn drop(&mut self) {
        if !self.inner.closing.swap(true, Ordering::SeqCst) {
            self.inner
                .endpoint
                .close(VarInt::from_u32(CLOSE_NORMAL), b"shutdown");
        }
        self.accept_task.abort();
    }
}

/// Accepts incoming connections until the endpoint closes.
async fn accept_loop(inner: Arc<Inner>) {
    while let Some(incoming) = inner.endpoint.accept().await {
        let remote = incoming.remote_address();
        if inner.closing.load(Ordering::SeqCst) {
            incoming.refuse();
            continue;
        }
        // Under pressure, a new address must first prove it can receive
        // (a stateless Retry round trip) before it may take or evict a slot.
        if !incoming.remote_address_validated()
            && incoming.may_retry()
            && inner.slots.under_pressure(remote.ip())
        {
            if let Err(e) = incoming.retry() {
                e.into_incoming().refuse();
            }
            continue;
        }
        let slot = match inner.slots.admit_incoming(remote.ip()) {
            Ok(slot) => slot,
            Err(Refusal::PerIp { tell: true }) => {
                // Complete the handshake only to say why (bounded per IP).
                let refusing = inner.slots.refusing(remote.ip());
                debug!(%remote, limit = inner.cfg.max_connections_per_ip, "per-IP connection limit: refused");
                if let Ok(connecting) = incoming.accept() {
                    let after = inner.cfg.hello_timeout;
                    tokio::spawn(async move {
                        if let Ok(Ok(conn)) = tokio::time::timeout(after, connecting).await {
                            close(
                                &conn,
                                CloseCode::TooManyConnections,
                                "too many connections from your address",
                            );
                        }
                        drop(refusing);
                    });
                }
                continue;
            }
            Err(Refusal::PerIp { tell: false }) => {
                incoming.refuse();
                continue;
            }
            Err(Refusal::Full) => {
                warn!(%remote, limit = inner.cfg.max_connections, "connection limit: refused");
                incoming.refuse();
                continue;
            }
        };
        match incoming.accept() {
            Ok(connecting) => {
                tokio::spawn(inner.clone().handle_incoming(connecting, remote, slot));
            }
            Err(error) => debug!(%remote, %error, "incoming connection failed"),
        }
    }
}

/// Whether the connection negotiated our ALPN (rustls enforces it for QUIC;
/// checked again here).
fn alpn_ok(conn: &quinn::Connection) -> bool {
    conn.handshake_data()
        .and_then(|d| d.downcast::<HandshakeData>().ok())
        .and_then(|d| d.protocol)
        .is_some_and(|p| p == ALPN)
}

fn close(conn: &quinn::Connection, code: CloseCode, reason: &str) {
    conn.close(VarInt::from_u32(code.as_u32()), reason.as_bytes());
}

/// Closes `conn` as the Hello exchange decided, if it did; `true` if that
/// close was the Hello timeout.
fn close_as_decided(conn: &quinn::Connection, hs: &mut Handshake) -> bool {
    match hs.poll_close() {
        Some(c) => {
            close(conn, c.code, c.reason);
            c.code == CloseCode::HelloTimeout
        }
        None => false,
    }
}

impl Inner {
    fn peer_from(&self, entry: &Entry) -> Peer {
        Peer {
            conn: entry.conn.clone(),
            info: entry.info.clone(),
            request_timeout: self.cfg.request_timeout,
        }
    }

    fn live_peer(&self, node: &NodeId) -> Option<Peer> {
        let registry = lock(&self.registry);
        let entry = registry.get(node)?;
        entry
            .conn
            .close_reason()
            .is_none()
            .then(|| self.peer_from(entry))
    }

    fn dial_lock(&self, target: NodeId) -> Arc<tokio::sync::Mutex<()>> {
        lock(&self.dials).entry(target).or_default().clone()
    }

    fn release_dial_lock(&self, target: NodeId, dial_lock: Arc<tokio::sync::Mutex<()>>) {
        drop(dial_lock);
        let mut dials = lock(&self.dials);
        if dials
            .get(&target)
            .is_some_and(|m| Arc::strong_count(m) == 1)
        {
            dials.remove(&target);
        }
    }

    /// Makes `conn` the peer's connection unless a live one wins
    /// ([`rules::keep_existing`]); a losing existing connection is closed here.
    fn register(&self, conn: &quinn::Connection, info: &Arc<PeerInfo>) -> Registration {
        let mut registry = lock(&self.registry);
        if let Some(existing) = registry.get(&info.node_id) {
            if existing.conn.close_reason().is_none()
                && existing.conn.stable_id() != conn.stable_id()
            {
                if rules::keep_existing(
                    existing.info.direction,
                    info.direction,
                    self.node_id,
                    info.node_id,
                ) {
                    return Registration::Existing(existing.clone());
                }
                debug!(peer = %info.node_id, "replacing a duplicate connection");
                close(&existing.conn, CloseCode::Duplicate, "duplicate connection");
            }
        }
        registry.insert(
            info.node_id,
            Entry {
                conn: conn.clone(),
                info: info.clone(),
            },
        );
        Registration::Registered
    }

    fn deregister(&self, node: NodeId, connection_id: usize) {
        let mut registry = lock(&self.registry);
        if registry
            .get(&node)
            .is_some_and(|e| e.conn.stable_id() == connection_id)
        {
            registry.remove(&node);
        }
    }

    fn advertised_limits(&self) -> Limits {
        let mut limits = self.cfg.limits;
        if limits.max_concurrent_streams == 0 {
            limits.max_concurrent_streams =
                u16::try_from(self.cfg.max_concurrent_bidi).unwrap_or(u16::MAX);
        }
        limits
    }

    /// The announced listen addresses; port 0 ("whatever port I am bound
    /// to") becomes the endpoint's bound port.
    fn listen_addresses(&self) -> Vec<SocketAddress> {
        let bound = self.endpoint.local_addr().map(|a| a.port()).unwrap_or(0);
        self.cfg
            .listen_addresses
            .iter()
            .map(|a| {
                if a.port() == 0 {
                    SocketAddr::new(a.ip(), bound)
                } else {
                    *a
                }
            })
            .filter(|a| a.port() != 0)
            .map(SocketAddress)
            .collect()
    }

    fn hello(&self) -> Hello {
        Hello {
            version: *self.cfg.version_range.end(),
            min_version: *self.cfg.version_range.start(),
            max_version: *self.cfg.version_range.end(),
            roles: self.cfg.roles.clone(),
            capabilities: self.cfg.capabilities.clone(),
            limits: self.advertised_limits(),
            listen_addresses: self.listen_addresses(),
            agent: self.cfg.agent.clone(),
            time_ms: now_ms(),
        }
    }

    fn hello_response(&self, version: u16, observed: SocketAddr) -> HelloResponse {
        HelloResponse {
            version,
            min_version: *self.cfg.version_range.start(),
            max_version: *self.cfg.version_range.end(),
            roles: self.cfg.roles.clone(),
            capabilities: self.cfg.capabilities.clone(),
            limits: self.advertised_limits(),
            listen_addresses: self.listen_addresses(),
            observed_address: Some(SocketAddress(observed)),
            agent: self.cfg.agent.clone(),
            time_ms: now_ms(),
        }
    }

    /// Starts serving an established, registered connection; deregisters it
    /// once closed.
    fn spawn_serve(
        self: &Arc<Self>,
        conn: quinn::Connection,
        info: Arc<PeerInfo>,
        slot: SlotGuard,
    ) {
        let inner = self.clone();
        tokio::spawn(async move { inner.serve(conn, info, slot).await });
    }

    /// Serves the connection's streams until it closes; its slot is freed
    /// at the end.
    async fn serve(self: Arc<Self>, conn: quinn::Connection, info: Arc<PeerInfo>, slot: SlotGuard) {
        let since = std::time::Instant::now();
        trace!(peer = %info.node_id, remote = %info.remote, "peer connected");
        self.handler.on_connected(info.clone());
        let shared = Arc::new(ConnShared {
            conn: conn.clone(),
            info: info.clone(),
            handler: self.handler.clone(),
            inflight: Arc::new(Semaphore::new(self.cfg.max_inflight_per_connection)),
            budget: FrameBudget {
                conn: Pool::new(
                    self.cfg
                        .connection_frame_budget
                        .max(MIN_CONNECTION_FRAME_BUDGET),
                ),
                ip: slot.ip_budget.clone(),
                global: self.endpoint_budget.clone(),
                wait: self.cfg.stream_idle_timeout,
                deadline_floor: self.cfg.frame_deadline_floor,
                min_rate: self.cfg.frame_min_rate,
            },
            activity: slot.activity.clone(),
            stream_idle: self.cfg.stream_idle_timeout,
        });
        serve_connection(shared).await;
        let reason = CloseReason::from(conn.closed().await);
        self.deregister(info.node_id, conn.stable_id());
        // One line per connection, at DEBUG: an anchor sees thousands.
        debug!(
            peer = %info.node_id,
            remote = %info.remote,
            direction = ?info.direction,
            version = info.version,
            agent = %info.agent,
            duration_ms = u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX),
            %reason,
            "connection closed"
        );
        self.handler.on_disconnected(info);
    }

    /// Dials `target` (the caller holds its dial lock).
    async fn dial(
        self: &Arc<Self>,
        target: NodeId,
        addr: SocketAddr,
    ) -> Result<Peer, TransportError> {
        let Some(slot) = self.slots.admit_outgoing() else {
            return Err(TransportError::ConnectionLimit(self.cfg.max_connections));
        };
        let (client_tls, presented) = tls::client_config(&self.identity, target)?;
        let client_tls = QuicClientConfig::try_from(client_tls)
            .map_err(|e| TransportError::Config(e.to_string()))?;
        let mut client = quinn::ClientConfig::new(Arc::new(client_tls));
        client.transport_config(self.quic.clone());
        let connecting = self
            .endpoint
            .connect_with(client, addr, tls::SERVER_NAME)
            .map_err(TransportError::Connect)?;
        let after = self.cfg.hello_timeout;
        let conn = match tokio::time::timeout(after, connecting).await {
            Err(_) => {
                return Err(TransportError::Timeout {
                    phase: "QUIC handshake",
                    after,
                })
            }
            Ok(Err(error)) => {
                return Err(match presented.get() {
                    Some(got) if got != target => {
                        warn!(expected = %target, got = %got, "pinned key mismatch");
                        TransportError::PinMismatch {
                            expected: target,
                            got,
                        }
                    }
                    _ => TransportError::Handshake(error),
                })
            }
            Ok(Ok(conn)) => conn,
        };
        slot.attach(&conn);
        if !alpn_ok(&conn) {
            close(&conn, CloseCode::ProtocolViolation, "ALPN");
            return Err(TransportError::Hello(
                "ALPN distsoc/2 not negotiated".into(),
            ));
        }
        let started = tokio::time::Instant::now();
        let mut hs = Handshake::initiator(
            self.cfg.version_range.clone(),
            Duration::ZERO,
            self.cfg.hello_timeout,
        );
        let deadline = started + hs.poll_timeout().unwrap_or(after);
        let hello = self.initiate_hello(&conn, target, &mut hs, started);
        let info = match tokio::time::timeout_at(deadline, hello).await {
            Err(_) => {
                hs.handle_timeout(started.elapsed());
                close_as_decided(&conn, &mut hs);
                return Err(TransportError::Timeout {
                    phase: "Hello",
                    after,
                });
            }
            Ok(Err(TransportError::ConnectionLost(reason))) => {
                // The responder kept a simultaneous connection instead.
                if let CloseReason::Application { code, .. } = &reason {
                    if *code == u64::from(CLOSE_DUPLICATE) {
                        if let Some(peer) = self.live_peer(&target) {
                            return Ok(peer);
                        }
                    }
                }
                return Err(TransportError::ConnectionLost(reason));
            }
            Ok(Err(error)) => return Err(error),
            Ok(Ok(info)) => info,
        };
        match self.register(&conn, &info) {
            Registration::Existing(entry) => {
                debug!(peer = %target, "simultaneous connection: keeping the other one");
                close(&conn, CloseCode::Duplicate, "duplicate connection");
                Ok(self.peer_from(&entry))
            }
            Registration::Registered => {
                self.spawn_serve(conn.clone(), info.clone(), slot);
                Ok(Peer {
                    conn,
                    info,
                    request_timeout: self.cfg.request_timeout,
                })
            }
        }
    }

    /// The initiator's half of the Hello exchange; `hs` decides the outcome
    /// (its clock started at `started`).
    async fn initiate_hello(
        &self,
        conn: &quinn::Connection,
        target: NodeId,
        hs: &mut Handshake,
        started: tokio::time::Instant,
    ) -> Result<Arc<PeerInfo>, TransportError> {
        let lost = |conn: &quinn::Connection, what: String| match conn.close_reason() {
            Some(reason) => TransportError::ConnectionLost(reason.into()),
            None => TransportError::Hello(what),
        };
        // The first transmit is always our Hello, which `self.hello()` builds.
        let first = hs.poll_transmit();
        debug_assert!(matches!(first, Some(Transmit::Hello { .. })));
        let bytes = Message::Hello(self.hello())
            .to_frame()
            .map_err(|e| TransportError::Hello(format!("cannot encode Hello: {e}")))?;
        let idle = self.cfg.hello_timeout;
        let (mut send, mut recv) = conn
            .open_bi()
            .await
            .map_err(|e| TransportError::ConnectionLost(e.into()))?;
        match write_frame(&mut send, &bytes, idle).await {
            Ok(()) | Err(WriteFailure::Stopped) => {}
            Err(WriteFailure::Idle) => {
                return Err(TransportError::Timeout {
                    phase: "Hello",
                    after: idle,
                })
            }
            Err(WriteFailure::Stream(e)) => return Err(lost(conn, e)),
        }
        let read = read_frame(
            &mut recv,
            |c| MessageCode::Hello.accepts_reply(c),
            idle,
            None,
        )
        .await;
        let timed_out = TransportError::Timeout {
            phase: "Hello",
            after: idle,
        };
        let frame = match read {
            Ok((frame, _)) => frame,
            Err(ReadFailure::Idle) => return Err(timed_out),
            Err(ReadFailure::Stream(e)) => return Err(lost(conn, e)),
            Err(failure) => {
                hs.handle_bad_response(started.elapsed());
                if close_as_decided(conn, hs) {
                    return Err(timed_out);
                }
                return Err(TransportError::Hello(format!(
                    "bad HelloResponse: {failure:?}"
                )));
            }
        };
        let ours = self.cfg.version_range.clone();
        let now = started.elapsed();
        let (failure, response) = match Message::from_frame(&frame) {
            Ok(Message::HelloResponse(r)) => {
                hs.handle_hello_response(now, r.version, r.min_version, r.max_version);
                let theirs = r.min_version..=r.max_version;
                (TransportError::VersionMismatch { ours, theirs }, Some(r))
            }
            Ok(Message::Error(e)) if e.code == ErrorCode::UnsupportedVersion => {
                hs.handle_version_refused(now);
                let theirs = e.min_version..=e.max_version;
                (TransportError::VersionMismatch { ours, theirs }, None)
            }
            Ok(Message::Error(e)) => {
                hs.handle_hello_refused(now);
                (TransportError::HelloRefused(e), None)
            }
            Ok(other) => {
                hs.handle_bad_response(now);
                let what = format!("unexpected reply {}", other.code());
                (TransportError::Hello(what), None)
            }
            Err(e) => {
                hs.handle_bad_response(now);
                let what = format!("bad HelloResponse: {e}");
                (TransportError::Hello(what), None)
            }
        };
        let version = match (hs.poll_event(), response) {
            (Some(rules::Event::Established { version }), Some(r)) => (version, r),
            _ => {
                return Err(if close_as_decided(conn, hs) {
                    timed_out
                } else {
                    failure
                })
            }
        };
        let (version, r) = version;
        Ok(Arc::new(PeerInfo {
            node_id: target,
            remote: conn.remote_address(),
            direction: Direction::Outbound,
            connection_id: conn.stable_id(),
            version,
            min_version: r.min_version,
            max_version: r.max_version,
            roles: r.roles,
            capabilities: r.capabilities,
            limits: r.limits,
            listen_addresses: r.listen_addresses.iter().map(|a| a.0).collect(),
            agent: r.agent,
            time_ms: r.time_ms,
            observed_address: r.observed_address.map(|a| a.0),
        }))
    }

    /// An incoming connection: TLS handshake, Hello, then serve.
    async fn handle_incoming(
        self: Arc<Self>,
        connecting: quinn::Connecting,
        remote: SocketAddr,
        slot: SlotGuard,
    ) {
        let after = self.cfg.hello_timeout;
        let conn = match tokio::time::timeout(after, connecting).await {
            Err(_) => {
                debug!(%remote, "incoming handshake timed out");
                return;
            }
            Ok(Err(error)) => {
                debug!(%remote, %error, "incoming handshake failed");
                return;
            }
            Ok(Ok(conn)) => conn,
        };
        slot.attach(&conn);
        if !alpn_ok(&conn) {
            close(&conn, CloseCode::ProtocolViolation, "ALPN");
            return;
        }
        let Some(peer) = tls::peer_node_id(&conn) else {
            close(&conn, CloseCode::ProtocolViolation, "no client key");
            return;
        };
        if peer == self.node_id {
            close(&conn, CloseCode::ProtocolViolation, "own key");
            return;
        }
        // Admission before any work for the peer: no Hello, no stream.
        if !self.handler.admit(&peer, remote) {
            debug!(peer = %peer, %remote, "peer not admitted");
            close(&conn, CloseCode::NotAdmitted, "not admitted");
            return;
        }
        let started = tokio::time::Instant::now();
        let mut hs = Handshake::responder(
            self.cfg.version_range.clone(),
            Duration::ZERO,
            self.cfg.hello_timeout,
        );
        let deadline = started + hs.poll_timeout().unwrap_or(after);
        let hello = self.respond_hello(&conn, peer, &mut hs, started);
        let info = match tokio::time::timeout_at(deadline, hello).await {
            Err(_) => {
                debug!(peer = %peer, %remote, "no Hello in time");
                hs.handle_timeout(started.elapsed());
                close_as_decided(&conn, &mut hs);
                return;
            }
            Ok(None) => return,
            Ok(Some(info)) => info,
        };
        self.serve(conn, info, slot).await;
    }

    /// The responder's half of the Hello exchange; `hs` decides the outcome
    /// (its clock started at `started`). `None` if the connection was
    /// closed (the reason is logged).
    async fn respond_hello(
        &self,
        conn: &quinn::Connection,
        peer: NodeId,
        hs: &mut Handshake,
        started: tokio::time::Instant,
    ) -> Option<Arc<PeerInfo>> {
        let short = peer.to_hex();
        let hello_code = MessageCode::Hello.as_u8();
        let (mut send, mut recv) = match conn.accept_bi().await {
            Ok(streams) => streams,
            Err(error) => {
                debug!(peer = %short, %error, "connection lost before Hello");
                hs.handle_closed();
                return None;
            }
        };
        let idle = self.cfg.hello_timeout;
        let read = read_frame(&mut recv, |c| c == MessageCode::Hello, idle, None).await;
        let now = started.elapsed();
        // The defect's own Error, for `Transmit::BadHello`.
        let mut defect = None;
        let mut hello = None;
        match read {
            Ok((frame, _)) => match Message::from_frame(&frame) {
                Ok(Message::Hello(h)) => {
                    hs.handle_hello(now, h.min_version, h.max_version);
                    hello = Some(h);
                }
                // Unreachable: read_frame only accepted the Hello code.
                Ok(other) => hs.handle_frame_before_hello(now, other.code().as_u8()),
                Err(e) => {
                    defect = Some(wire::Error::new(e.error_code(), hello_code, e.to_string()));
                    hs.handle_bad_hello(now);
                }
            },
            Err(ReadFailure::Frame { error, code }) => {
                defect = Some(wire::Error::new(
                    error.error_code(),
                    dispatch::refused_request_code(&error, code),
                    error.to_string(),
                ));
                hs.handle_bad_hello(now);
            }
            Err(ReadFailure::Refused(code)) => hs.handle_frame_before_hello(now, code.as_u8()),
            Err(ReadFailure::Idle | ReadFailure::Deadline) => hs.handle_timeout(now),
            Err(ReadFailure::NoBudget(_)) | Err(ReadFailure::Stream(_)) => {
                hs.handle_hello_stream_failed(now);
            }
        }
        if let (Some(rules::Event::Established { version }), Some(hello)) = (hs.poll_event(), hello)
        {
            return self.complete_hello(conn, peer, hello, version, send).await;
        }
        let reply = match hs.poll_transmit() {
            Some(Transmit::UnsupportedVersion { ours, theirs }) => {
                let mut e = wire::Error::new(
                    ErrorCode::UnsupportedVersion,
                    hello_code,
                    format!(
                        "no common version: ours {ours:?}, theirs {}..={}",
                        theirs.0, theirs.1
                    ),
                );
                e.min_version = *ours.start();
                e.max_version = *ours.end();
                Some(e)
            }
            Some(Transmit::NotHelloFirst { request_code }) => Some(wire::Error::new(
                ErrorCode::Unauthorized,
                request_code,
                "the first request on a connection must be Hello",
            )),
            Some(Transmit::BadHello) => defect,
            _ => None,
        };
        if let Some(reply) = reply {
            debug!(peer = %short, error = ?reply.code, "Hello refused");
            let _ = recv.stop(VarInt::from_u32(0));
            if let Ok(bytes) = Message::Error(reply).to_frame() {
                if write_frame(&mut send, &bytes, idle).await.is_ok() {
                    // Let the error reach the peer before the close discards
                    // it (if the Hello deadline cuts this short, the caller
                    // still closes as decided here).
                    let _ = tokio::time::timeout(CLOSE_LINGER, send.stopped()).await;
                }
            }
        }
        close_as_decided(conn, hs);
        None
    }

    /// Registers the connection and answers HelloResponse.
    async fn complete_hello(
        &self,
        conn: &quinn::Connection,
        peer: NodeId,
        hello: Hello,
        version: u16,
        mut send: quinn::SendStream,
    ) -> Option<Arc<PeerInfo>> {
        let remote = conn.remote_address();
        let info = Arc::new(PeerInfo {
            node_id: peer,
            remote,
            direction: Direction::Inbound,
            connection_id: conn.stable_id(),
            version,
            min_version: hello.min_version,
            max_version: hello.max_version,
            roles: hello.roles,
            capabilities: hello.capabilities,
            limits: hello.limits,
            listen_addresses: hello.listen_addresses.iter().map(|a| a.0).collect(),
            agent: hello.agent,
            time_ms: hello.time_ms,
            observed_address: None,
        });
        // Registered before the HelloResponse leaves, so that when the
        // initiator's `connect` returns, our `connect` to it reuses this.
        if let Registration::Existing(_) = self.register(conn, &info) {
            debug!(peer = %peer, "simultaneous connection: keeping the other one");
            close(conn, CloseCode::Duplicate, "duplicate connection");
            return None;
        }
        let reply = Message::HelloResponse(self.hello_response(version, remote));
        let sent = match reply.to_frame() {
            Ok(bytes) => write_frame(&mut send, &bytes, self.cfg.hello_timeout)
                .await
                .is_ok(),
            Err(_) => false,
        };
        if !sent {
            close(conn, CloseCode::ProtocolViolation, "HelloResponse not sent");
            self.deregister(peer, conn.stable_id());
            return None;
        }
        Some(info)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn default_config_is_valid() {
        validate(&TransportConfig::default()).unwrap();
        quic_transport_config(&TransportConfig::default(), End::Dialer).unwrap();
        quic_transport_config(&TransportConfig::default(), End::Listener).unwrap();
        assert_eq!(MIN_CONNECTION_FRAME_BUDGET, 16 * 1024 * 1024 + 2057);
    }
}
