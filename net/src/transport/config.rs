//! [`TransportConfig`]: the settings of a [`Transport`](super::Transport),
//! their defaults, and their translation into quinn's transport settings.

use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::time::Duration;

use distsoc_protocol::codes::MessageCode;
use distsoc_protocol::frame::MAX_HEADER_BYTES;
use distsoc_protocol::limits::{MIN_PROTOCOL_VERSION, PROTOCOL_VERSION};
use distsoc_protocol::messages::common::Role;
use distsoc_protocol::messages::wire::{
    Limits, MAX_AGENT_BYTES, MAX_CAPABILITIES, MAX_CAPABILITY_BYTES,
};
use quinn::VarInt;

use super::TransportError;

/// Default quinn per-stream receive window: 1 MiB.
pub const DEFAULT_STREAM_RECEIVE_WINDOW: u32 = 1024 * 1024;
/// Default quinn per-connection receive window: 2 MiB (2× the stream window).
pub const DEFAULT_CONNECTION_RECEIVE_WINDOW: u32 = 2 * 1024 * 1024;
/// Default quinn per-connection send window: 4 MiB.
pub const DEFAULT_SEND_WINDOW: u64 = 4 * 1024 * 1024;
/// Smallest (and default) per-connection frame budget: the largest frame
/// cap plus the longest header, so that any valid frame can be received.
pub const MIN_CONNECTION_FRAME_BUDGET: usize = MessageCode::largest_cap() + MAX_HEADER_BYTES;
/// Default endpoint-wide frame budget: 64 MiB.
pub const DEFAULT_ENDPOINT_FRAME_BUDGET: usize = 64 * 1024 * 1024;
/// Default frame budget of one remote IP address (all its connections):
/// 32 MiB, half the endpoint's.
pub const DEFAULT_IP_FRAME_BUDGET: usize = 32 * 1024 * 1024;
/// Default time any frame has to arrive, and a header alone: 5 s.
pub const DEFAULT_FRAME_DEADLINE_FLOOR: Duration = Duration::from_secs(5);
/// Default minimum rate of a frame beyond the floor: 32 KiB/s (a 16 MiB
/// frame has 5 s + 512 s).
pub const DEFAULT_FRAME_MIN_RATE: u64 = 32 * 1024;
/// Default cap on incoming connections from one IP address (user node).
pub const DEFAULT_MAX_CONNECTIONS_PER_IP: usize = 32;
/// Default time a connection may sit idle before it can be evicted to make
/// room for a new one when every slot is taken: 10 s.
pub const DEFAULT_IDLE_SLOT_GRACE: Duration = Duration::from_secs(10);

/// Settings of a [`Transport`](super::Transport). `Default` gives the protocol's defaults,
/// listening on `0.0.0.0:0`.
#[derive(Debug, Clone)]
pub struct TransportConfig {
    /// UDP address to bind.
    pub listen: SocketAddr,
    /// Roles announced in Hello (empty = node).
    pub roles: Vec<Role>,
    /// Capability tokens announced in Hello (at most 64 of at most 64 bytes).
    pub capabilities: Vec<String>,
    /// Limits announced in Hello. A zero `max_concurrent_streams` is filled
    /// in from `max_concurrent_bidi`.
    pub limits: Limits,
    /// Implementation name announced in Hello (at most 128 bytes).
    pub agent: String,
    /// Addresses announced in Hello (where peers may reach us).
    pub listen_addresses: Vec<SocketAddr>,
    /// A connection with no traffic for this long is closed (60 s). The
    /// effective value is the smaller of both peers'.
    pub idle_timeout: Duration,
    /// Interval of QUIC keep-alive pings on the connections this endpoint
    /// dials (20 s); zero disables them. Accepted connections are kept
    /// alive by their dialer (`schema/README.md` §1).
    pub keep_alive: Duration,
    /// Most concurrent bidirectional streams a peer may open (32).
    pub max_concurrent_bidi: u32,
    /// Most concurrent unidirectional streams a peer may open (32).
    pub max_concurrent_uni: u32,
    /// Most connections (incoming and outgoing) at once (200). When all are
    /// taken, an idle incoming connection (see `idle_slot_grace`) is evicted
    /// to make room; if none is idle, further incoming connections are
    /// refused and further dials fail.
    pub max_connections: usize,
    /// Most incoming connections from one IP address (32); further ones are
    /// closed with [`CLOSE_TOO_MANY_CONNECTIONS`](super::CLOSE_TOO_MANY_CONNECTIONS) right after the handshake.
    pub max_connections_per_ip: usize,
    /// An incoming connection with no handler running and no request for at
    /// least this long (10 s) may be evicted ([`CLOSE_IDLE_EVICTED`](super::CLOSE_IDLE_EVICTED)) when
    /// every slot is taken; never-used connections go first.
    pub idle_slot_grace: Duration,
    /// Bound of the QUIC handshake, and separately of the Hello exchange
    /// (10 s).
    pub hello_timeout: Duration,
    /// A stream is dropped when its next bytes take longer than this, in
    /// either direction (10 s). Also the longest wait for frame budget.
    pub stream_idle_timeout: Duration,
    /// Default timeout of [`Peer::call`](super::Peer::call) and pushes (30 s).
    pub request_timeout: Duration,
    /// Streams of one connection being read or handled at once (32).
    pub max_inflight_per_connection: usize,
    /// quinn per-stream receive window, bytes (1 MiB).
    pub stream_receive_window: u32,
    /// quinn per-connection receive window, bytes (2 MiB).
    pub connection_receive_window: u32,
    /// quinn per-connection send window, bytes (4 MiB).
    pub send_window: u64,
    /// Bytes of frames one connection may have in reception or handling
    /// (raised to at least [`MIN_CONNECTION_FRAME_BUDGET`]).
    pub connection_frame_budget: usize,
    /// Bytes of frames the whole endpoint may have in reception or handling
    /// (raised to at least [`MIN_CONNECTION_FRAME_BUDGET`]; 64 MiB).
    pub endpoint_frame_budget: usize,
    /// Bytes of frames all connections from one remote IP address may have
    /// in reception or handling (raised to at least
    /// [`MIN_CONNECTION_FRAME_BUDGET`]; 32 MiB).
    pub ip_frame_budget: usize,
    /// Time any frame has to arrive completely, counted from its stream's
    /// first read; also the bound for a frame header alone (5 s).
    pub frame_deadline_floor: Duration,
    /// Bytes per second a frame must arrive at beyond the floor: a frame
    /// declaring `n` bytes has `frame_deadline_floor + n / frame_min_rate`
    /// (32 KiB/s).
    pub frame_min_rate: u64,
    /// Longest wait for connections to drain in [`Transport::close`](super::Transport::close) (5 s).
    pub close_timeout: Duration,
    /// Protocol versions spoken. **Test hook**: the default
    /// `MIN_PROTOCOL_VERSION..=PROTOCOL_VERSION` is the only conforming value.
    pub version_range: RangeInclusive<u16>,
}

impl Default for TransportConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([0, 0, 0, 0], 0)),
            roles: vec![Role::Node],
            capabilities: Vec::new(),
            limits: Limits::default(),
            agent: concat!("distsoc-node/", env!("CARGO_PKG_VERSION")).to_string(),
            listen_addresses: Vec::new(),
            idle_timeout: Duration::from_secs(60),
            keep_alive: Duration::from_secs(20),
            max_concurrent_bidi: 32,
            max_concurrent_uni: 32,
            max_connections: 200,
            max_connections_per_ip: DEFAULT_MAX_CONNECTIONS_PER_IP,
            idle_slot_grace: DEFAULT_IDLE_SLOT_GRACE,
            hello_timeout: Duration::from_secs(10),
            stream_idle_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            max_inflight_per_connection: 32,
            stream_receive_window: DEFAULT_STREAM_RECEIVE_WINDOW,
            connection_receive_window: DEFAULT_CONNECTION_RECEIVE_WINDOW,
            send_window: DEFAULT_SEND_WINDOW,
            connection_frame_budget: MIN_CONNECTION_FRAME_BUDGET,
            endpoint_frame_budget: DEFAULT_ENDPOINT_FRAME_BUDGET,
            ip_frame_budget: DEFAULT_IP_FRAME_BUDGET,
            frame_deadline_floor: DEFAULT_FRAME_DEADLINE_FLOOR,
            frame_min_rate: DEFAULT_FRAME_MIN_RATE,
            close_timeout: Duration::from_secs(5),
            version_range: MIN_PROTOCOL_VERSION..=PROTOCOL_VERSION,
        }
    }
}

pub(super) fn validate(cfg: &TransportConfig) -> Result<(), TransportError> {
    let bad = |what: &str| Err(TransportError::Config(what.to_string()));
    if cfg.version_range.is_empty() {
        return bad("version_range is empty");
    }
    if cfg.capabilities.len() > MAX_CAPABILITIES
        || cfg
            .capabilities
            .iter()
            .any(|c| c.len() > MAX_CAPABILITY_BYTES)
    {
        return bad("too many or too long capabilities");
    }
    if cfg.agent.len() > MAX_AGENT_BYTES {
        return bad("agent is longer than 128 bytes");
    }
    if cfg.idle_timeout.is_zero() {
        return bad("idle_timeout is zero");
    }
    if cfg.max_inflight_per_connection == 0 {
        return bad("max_inflight_per_connection is zero");
    }
    if cfg.max_connections == 0 {
        return bad("max_connections is zero");
    }
    if cfg.max_connections_per_ip == 0 {
        return bad("max_connections_per_ip is zero");
    }
    if cfg.frame_deadline_floor.is_zero() || cfg.frame_min_rate == 0 {
        return bad("frame_deadline_floor and frame_min_rate must be positive");
    }
    Ok(())
}

/// Which end of a connection a quinn transport configuration is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum End {
    /// Connections this endpoint dials: it keeps them alive.
    Dialer,
    /// Connections this endpoint accepts: the dialer keeps them alive
    /// (`schema/README.md` §1), so the listener sends no keep-alive, which
    /// halves an idle connection's traffic.
    Listener,
}

pub(super) fn quic_transport_config(
    cfg: &TransportConfig,
    end: End,
) -> Result<quinn::TransportConfig, TransportError> {
    let mut t = quinn::TransportConfig::default();
    let idle = quinn::IdleTimeout::try_from(cfg.idle_timeout)
        .map_err(|_| TransportError::Config("idle_timeout too long".into()))?;
    let keep_alive = (end == End::Dialer && !cfg.keep_alive.is_zero()).then_some(cfg.keep_alive);
    t.max_idle_timeout(Some(idle))
        .keep_alive_interval(keep_alive)
        .max_concurrent_bidi_streams(VarInt::from_u32(cfg.max_concurrent_bidi))
        .max_concurrent_uni_streams(VarInt::from_u32(cfg.max_concurrent_uni))
        .stream_receive_window(VarInt::from_u32(cfg.stream_receive_window))
        .receive_window(VarInt::from_u32(cfg.connection_receive_window))
        .send_window(cfg.send_window)
        // distsoc uses no datagrams: buffer none.
        .datagram_receive_buffer_size(None);
    Ok(t)
}
