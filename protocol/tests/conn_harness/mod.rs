//! A deterministic two-endpoint harness for the connection rules
//! (`distsoc_protocol::conn`), in the shape of quinn-proto's `Pair`
//! (`quinn-proto/src/tests/util.rs`): two endpoints, a fake clock, a fixed
//! one-way latency, and a queue of frames in flight. No sockets, no sleeps:
//! time moves only when a test calls [`Pair::drive`] or [`Pair::advance`].
//!
//! An endpoint here is what the runtime's endpoint does around a
//! [`Handshake`]: it sends what `poll_transmit` yields, registers an
//! established connection with [`keep_existing`] (closing the loser with
//! `duplicate`), and closes what `poll_close` says.
//!
//! Reuse it from another test file with `mod conn_harness;`.

#![allow(dead_code, unreachable_pub)]

use std::collections::{HashMap, VecDeque};
use std::ops::RangeInclusive;
use std::time::Duration;

use distsoc_protocol::conn::{
    keep_existing, Close, CloseCode, Direction, Event, Handshake, Transmit, HELLO_TIMEOUT,
};
use distsoc_protocol::ids::NodeId;

/// Index of an endpoint in a [`Pair`]: `0` is `a`, `1` is `b`.
pub type Side = usize;

/// Index of a connection in [`Pair::conns`].
pub type ConnId = usize;

/// One endpoint: its identity, its version range and its peer table.
#[derive(Debug)]
pub struct Endpoint {
    /// Its NodeId.
    pub id: NodeId,
    /// The versions it speaks.
    pub versions: RangeInclusive<u16>,
    /// The established connection it keeps per peer, and its direction.
    pub peers: HashMap<NodeId, (ConnId, Direction)>,
}

/// What went over a connection, in order (for assertions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sent {
    /// A frame from `from`.
    Frame {
        /// The sender.
        from: Side,
        /// The frame.
        frame: Frame,
    },
    /// A close from `from`.
    Close {
        /// The closing side.
        from: Side,
        /// Code and reason.
        close: Close,
    },
}

/// A frame on the Hello stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// What a [`Handshake`] asked to send.
    Transmit(Transmit),
    /// A frame with this code sent as the first frame instead of `Hello`
    /// (a misbehaving initiator).
    Other(u8),
}

/// One connection between the two endpoints.
#[derive(Debug)]
pub struct Conn {
    /// The side that dialled.
    pub dialer: Side,
    /// Each side's state, indexed by [`Side`].
    pub hs: [Handshake; 2],
    /// The close that ended it, and who sent it.
    pub closed: Option<(Side, Close)>,
    /// Everything sent on it.
    pub log: Vec<Sent>,
}

impl Conn {
    /// Whether the connection is still open.
    pub fn is_open(&self) -> bool {
        self.closed.is_none()
    }

    /// The close code, if closed.
    pub fn close_code(&self) -> Option<CloseCode> {
        self.closed.map(|(_, c)| c.code)
    }
}

#[derive(Debug)]
enum Delivery {
    Frame(Frame),
    Close,
}

/// Two endpoints, a fake clock and the frames in flight between them.
#[derive(Debug)]
pub struct Pair {
    /// The fake clock.
    pub now: Duration,
    /// One-way latency of every frame.
    pub latency: Duration,
    /// The Hello timeout both sides use.
    pub hello_timeout: Duration,
    /// `a` (index 0) and `b` (index 1).
    pub endpoints: [Endpoint; 2],
    /// Every connection ever made, by [`ConnId`].
    pub conns: Vec<Conn>,
    in_flight: VecDeque<(Duration, ConnId, Side, Delivery)>,
}

impl Pair {
    /// Two endpoints with NodeIds `[1; 32]` (a) and `[2; 32]` (b) and the
    /// given version ranges; 10 ms latency, the protocol's Hello timeout.
    pub fn new(a: RangeInclusive<u16>, b: RangeInclusive<u16>) -> Self {
        Self::with_ids(NodeId([1; 32]), a, NodeId([2; 32]), b)
    }

    /// Two endpoints with explicit NodeIds.
    pub fn with_ids(
        a_id: NodeId,
        a: RangeInclusive<u16>,
        b_id: NodeId,
        b: RangeInclusive<u16>,
    ) -> Self {
        let endpoint = |id, versions| Endpoint {
            id,
            versions,
            peers: HashMap::new(),
        };
        Pair {
            now: Duration::ZERO,
            latency: Duration::from_millis(10),
            hello_timeout: HELLO_TIMEOUT,
            endpoints: [endpoint(a_id, a), endpoint(b_id, b)],
            conns: Vec::new(),
            in_flight: VecDeque::new(),
        }
    }

    /// `from` dials the other endpoint (the QUIC handshake is taken as
    /// done): both sides get their [`Handshake`], the initiator's `Hello`
    /// leaves now.
    pub fn dial(&mut self, from: Side) -> ConnId {
        let id = self.open(from);
        self.flush(id, from);
        id
    }

    /// `from` dials but sends nothing on the connection (a silent or
    /// stalled initiator).
    pub fn dial_silent(&mut self, from: Side) -> ConnId {
        let id = self.open(from);
        let _ = self.conns[id].hs[from].poll_transmit();
        id
    }

    /// `from` dials and sends a frame with `code` as its first frame
    /// instead of `Hello`.
    pub fn dial_with_first_frame(&mut self, from: Side, code: u8) -> ConnId {
        let id = self.open(from);
        let _ = self.conns[id].hs[from].poll_transmit();
        self.send(id, from, Delivery::Frame(Frame::Other(code)));
        id
    }

    /// Delivers frames in flight, moving the clock to each arrival (and
    /// firing timers that expire on the way), until none is left.
    pub fn drive(&mut self) {
        while let Some(at) = self.in_flight.iter().map(|f| f.0).min() {
            self.run_until(at);
        }
    }

    /// Moves the clock forward by `dt`, delivering frames and firing timers
    /// in time order.
    pub fn advance(&mut self, dt: Duration) {
        let until = self.now + dt;
        self.run_until(until);
    }

    /// The connection `side` keeps for the other endpoint, if any.
    pub fn kept(&self, side: Side) -> Option<ConnId> {
        let peer = self.endpoints[1 - side].id;
        self.endpoints[side].peers.get(&peer).map(|&(c, _)| c)
    }

    /// Connections still open.
    pub fn open_conns(&self) -> Vec<ConnId> {
        (0..self.conns.len())
            .filter(|&c| self.conns[c].is_open())
            .collect()
    }

    // ---- internals ----

    fn open(&mut self, from: Side) -> ConnId {
        let (a, b) = (
            self.endpoints[from].versions.clone(),
            self.endpoints[1 - from].versions.clone(),
        );
        let initiator = Handshake::initiator(a, self.now, self.hello_timeout);
        let responder = Handshake::responder(b, self.now, self.hello_timeout);
        let hs = if from == 0 {
            [initiator, responder]
        } else {
            [responder, initiator]
        };
        self.conns.push(Conn {
            dialer: from,
            hs,
            closed: None,
            log: Vec::new(),
        });
        self.conns.len() - 1
    }

    fn run_until(&mut self, until: Duration) {
        loop {
            let arrival = self.in_flight.iter().map(|f| f.0).min();
            let timer = self
                .conns
                .iter()
                .filter(|c| c.is_open())
                .flat_map(|c| c.hs.iter().filter_map(Handshake::poll_timeout))
                .min();
            let next = match (arrival, timer) {
                (Some(a), Some(t)) => a.min(t),
                (Some(a), None) => a,
                (None, Some(t)) => t,
                (None, None) => break,
            };
            if next > until {
                break;
            }
            self.now = self.now.max(next);
            // Frames first (in the order sent), then timers.
            while let Some(pos) = self.in_flight.iter().position(|f| f.0 <= self.now) {
                if let Some((_, conn, to, what)) = self.in_flight.remove(pos) {
                    self.deliver(conn, to, what);
                }
            }
            for conn in 0..self.conns.len() {
                for side in 0..2 {
                    if self.conns[conn].is_open() {
                        self.conns[conn].hs[side].handle_timeout(self.now);
                        self.flush(conn, side);
                    }
                }
            }
        }
        self.now = self.now.max(until);
    }

    fn deliver(&mut self, conn: ConnId, to: Side, what: Delivery) {
        let now = self.now;
        let from = self.endpoints[1 - to].versions.clone();
        let c = &mut self.conns[conn];
        if c.closed.is_some_and(|(by, _)| by == to) {
            return; // closed locally: late frames are dropped
        }
        let hs = &mut c.hs[to];
        match what {
            Delivery::Close => {
                hs.handle_closed();
                self.deregister(conn);
                return;
            }
            Delivery::Frame(Frame::Other(code)) => hs.handle_frame_before_hello(now, code),
            Delivery::Frame(Frame::Transmit(t)) => match t {
                Transmit::Hello {
                    min_version,
                    max_version,
                } => hs.handle_hello(now, min_version, max_version),
                Transmit::HelloResponse { version } => {
                    hs.handle_hello_response(now, version, *from.start(), *from.end());
                }
                Transmit::UnsupportedVersion { .. } => hs.handle_version_refused(now),
                Transmit::NotHelloFirst { .. } | Transmit::BadHello => {
                    hs.handle_hello_refused(now);
                }
                other => panic!("unexpected transmit {other:?}"),
            },
        }
        self.flush(conn, to);
    }

    /// Drains `side`'s outputs for `conn` in the documented order.
    fn flush(&mut self, conn: ConnId, side: Side) {
        if let Some(Event::Established { .. }) = self.conns[conn].hs[side].poll_event() {
            self.register(conn, side);
        }
        if !self.conns[conn].is_open() {
            return;
        }
        if let Some(t) = self.conns[conn].hs[side].poll_transmit() {
            self.send(conn, side, Delivery::Frame(Frame::Transmit(t)));
        }
        if let Some(close) = self.conns[conn].hs[side].poll_close() {
            self.close(conn, side, close);
        }
    }

    /// The endpoint rule: one established connection per peer.
    fn register(&mut self, conn: ConnId, side: Side) {
        let me = self.endpoints[side].id;
        let peer = self.endpoints[1 - side].id;
        let direction = self.conns[conn].hs[side].direction();
        if let Some(&(existing, existing_dir)) = self.endpoints[side].peers.get(&peer) {
            if existing != conn && self.conns[existing].is_open() {
                if keep_existing(existing_dir, direction, me, peer) {
                    self.close(conn, side, duplicate());
                    return;
                }
                self.close(existing, side, duplicate());
            }
        }
        self.endpoints[side].peers.insert(peer, (conn, direction));
    }

    fn deregister(&mut self, conn: ConnId) {
        for e in &mut self.endpoints {
            e.peers.retain(|_, (c, _)| *c != conn);
        }
    }

    fn close(&mut self, conn: ConnId, side: Side, close: Close) {
        let c = &mut self.conns[conn];
        if c.closed.is_some() {
            return;
        }
        c.closed = Some((side, close));
        c.hs[side].handle_closed();
        c.log.push(Sent::Close { from: side, close });
        self.deregister(conn);
        let at = self.now + self.latency;
        self.in_flight
            .push_back((at, conn, 1 - side, Delivery::Close));
    }

    fn send(&mut self, conn: ConnId, from: Side, what: Delivery) {
        if let Delivery::Frame(frame) = &what {
            self.conns[conn].log.push(Sent::Frame {
                from,
                frame: frame.clone(),
            });
        }
        let at = self.now + self.latency;
        self.in_flight.push_back((at, conn, 1 - from, what));
    }
}

fn duplicate() -> Close {
    Close {
        code: CloseCode::Duplicate,
        reason: "duplicate connection",
    }
}
