//! The connection rules after the TLS handshake, as a sans-IO state machine
//! (`schema/README.md` §1.3–§1.5).
//!
//! One [`Handshake`] per connection and side decides everything between the
//! end of the QUIC handshake and an established connection: who sends
//! `Hello` first, which version is selected ([`select_version`]), when the
//! Hello exchange has timed out, and which application close code
//! ([`CloseCode`]) ends a failed exchange. An endpoint keeps at most one
//! established connection per peer; [`keep_existing`] is the tie-break both
//! sides of a simultaneous dial agree on.
//!
//! It is shaped like `quinn-proto`'s `Connection`: no sockets, no clock, no
//! randomness. The runtime feeds it what happened through the `handle_*`
//! methods, each with the current time `now` (any monotonic origin the
//! runtime chooses, as a [`Duration`]), and after every input drains the
//! outputs in this order:
//!
//! 1. [`Handshake::poll_event`] — the exchange completed: register the
//!    connection with the endpoint first (a responder whose registration
//!    loses the tie-break closes with [`CloseCode::Duplicate`] and sends
//!    nothing more);
//! 2. [`Handshake::poll_transmit`] — the frame to send on the Hello stream;
//! 3. [`Handshake::poll_close`] — then close the connection with this code;
//! 4. [`Handshake::poll_timeout`] — when to call [`Handshake::handle_timeout`].
//!
//! The runtime (`net/src/transport`) builds and parses the actual frames;
//! this module only sees what decides the outcome (version ranges, the
//! code of a refused first frame). `protocol/tests/conn.rs` drives two
//! endpoints of it against each other with a fake clock.

use std::ops::RangeInclusive;
use std::time::Duration;

use crate::ids::NodeId;

/// How long the Hello exchange may take after the QUIC handshake: 10 s.
/// A responder that has not received `Hello` by then closes with
/// [`CloseCode::HelloTimeout`]; so does an initiator without a reply.
pub const HELLO_TIMEOUT: Duration = Duration::from_secs(10);

/// An application close code (QUIC `CONNECTION_CLOSE` type 0x1d),
/// `schema/README.md` §1.5.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CloseCode {
    /// 0x0: orderly shutdown, or the peer is done.
    Normal,
    /// 0x1: the Hello version ranges do not overlap.
    VersionMismatch,
    /// 0x2: the connection rules were broken (no `Hello` first, an
    /// undecodable `Hello` or `HelloResponse`, wrong ALPN or key).
    ProtocolViolation,
    /// 0x3: a second connection between the same two nodes lost the
    /// tie-break ([`keep_existing`]).
    Duplicate,
    /// 0x4: the Hello exchange did not complete within [`HELLO_TIMEOUT`].
    HelloTimeout,
    /// 0x5: the peer's NodeId is not admitted (e.g. banned); sent before Hello.
    NotAdmitted,
    /// 0x6: too many connections from the peer's IP address; sent before Hello.
    TooManyConnections,
    /// 0x7: an idle connection was closed to admit a new one.
    IdleEvicted,
}

impl CloseCode {
    /// The code on the wire.
    #[must_use]
    pub const fn as_u32(self) -> u32 {
        match self {
            CloseCode::Normal => 0x0,
            CloseCode::VersionMismatch => 0x1,
            CloseCode::ProtocolViolation => 0x2,
            CloseCode::Duplicate => 0x3,
            CloseCode::HelloTimeout => 0x4,
            CloseCode::NotAdmitted => 0x5,
            CloseCode::TooManyConnections => 0x6,
            CloseCode::IdleEvicted => 0x7,
        }
    }

    /// The code for a wire value; `None` for an unknown one (which a
    /// receiver treats as [`CloseCode::Normal`], §1.5).
    #[must_use]
    pub const fn from_u32(code: u32) -> Option<Self> {
        Some(match code {
            0x0 => CloseCode::Normal,
            0x1 => CloseCode::VersionMismatch,
            0x2 => CloseCode::ProtocolViolation,
            0x3 => CloseCode::Duplicate,
            0x4 => CloseCode::HelloTimeout,
            0x5 => CloseCode::NotAdmitted,
            0x6 => CloseCode::TooManyConnections,
            0x7 => CloseCode::IdleEvicted,
            _ => return None,
        })
    }

    /// The name `schema/README.md` §1.5 gives the code.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            CloseCode::Normal => "normal",
            CloseCode::VersionMismatch => "versionMismatch",
            CloseCode::ProtocolViolation => "protocolViolation",
            CloseCode::Duplicate => "duplicate",
            CloseCode::HelloTimeout => "helloTimeout",
            CloseCode::NotAdmitted => "notAdmitted",
            CloseCode::TooManyConnections => "tooManyConnections",
            CloseCode::IdleEvicted => "idleEvicted",
        }
    }
}

/// Which side opened a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// We dialled the peer (we sent Hello).
    Outbound,
    /// The peer dialled us (we answered Hello).
    Inbound,
}

/// The selected version: the highest version in both `ours` and
/// `[min, max]`, or `None` when the ranges do not overlap (or `min > max`).
#[must_use]
pub fn select_version(ours: &RangeInclusive<u16>, min: u16, max: u16) -> Option<u16> {
    let hi = max.min(*ours.end());
    let lo = min.max(*ours.start());
    (min <= max && lo <= hi).then_some(hi)
}

/// Whether an established connection to `peer` stays when another one to
/// the same peer completes its Hello (§1.4); the loser is closed with
/// [`CloseCode::Duplicate`]. `me` is our NodeId.
///
/// Both sides of a simultaneous dial decide the same: the connection
/// initiated by the lower NodeId survives.
#[must_use]
pub fn keep_existing(existing: Direction, new: Direction, me: NodeId, peer: NodeId) -> bool {
    match (existing, new) {
        // Our dials are serialized per peer: keep the first.
        (Direction::Outbound, Direction::Outbound) => true,
        // The peer dialled again (e.g. it restarted): newest wins.
        (Direction::Inbound, Direction::Inbound) => false,
        // Simultaneous open: keep the one initiated by the lower NodeId.
        (Direction::Outbound, Direction::Inbound) => me < peer,
        (Direction::Inbound, Direction::Outbound) => peer < me,
    }
}

/// A frame the runtime must send on the Hello stream.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transmit {
    /// Initiator: `Hello` advertising `[min_version, max_version]` (ours).
    Hello {
        /// Our lowest version.
        min_version: u16,
        /// Our highest version (also the Hello's `version`).
        max_version: u16,
    },
    /// Responder: `HelloResponse` with the selected version.
    HelloResponse {
        /// The selected version ([`select_version`]).
        version: u16,
    },
    /// Responder: `Error(unsupportedVersion)` carrying our range,
    /// `requestCode` 0x00; a close with [`CloseCode::VersionMismatch`] follows.
    UnsupportedVersion {
        /// Our range (goes into the Error's `minVersion`/`maxVersion`).
        ours: RangeInclusive<u16>,
        /// The range the Hello offered (for the error text).
        theirs: (u16, u16),
    },
    /// Responder: `Error(unauthorized)` with `requestCode` = `request_code`:
    /// the first frame was not `Hello`. A close with
    /// [`CloseCode::ProtocolViolation`] follows.
    NotHelloFirst {
        /// The code byte of the refused frame.
        request_code: u8,
    },
    /// Responder: the Hello stream's frame was defective; the runtime answers
    /// with the `Error` of the defect (§2), which it holds. A close with
    /// [`CloseCode::ProtocolViolation`] follows.
    BadHello,
}

/// Close the connection with this code; the reason is free text for logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Close {
    /// The application close code.
    pub code: CloseCode,
    /// The reason phrase.
    pub reason: &'static str,
}

/// What the exchange produced besides frames and a close.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// The Hello exchange completed: the connection is established at
    /// `version`. Register it with the endpoint ([`keep_existing`]).
    Established {
        /// The agreed version.
        version: u16,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Initiator: Hello sent, waiting for its reply.
    AwaitingResponse,
    /// Responder: waiting for the first frame of the first stream.
    AwaitingHello,
    /// Exchange complete.
    Established { version: u16 },
    /// Closed (by a rule here or by the runtime).
    Closed,
}

/// The Hello exchange of one connection, one side (see the module docs for
/// the order of calls).
#[derive(Debug, Clone)]
pub struct Handshake {
    direction: Direction,
    ours: RangeInclusive<u16>,
    deadline: Duration,
    state: State,
    transmit: Option<Transmit>,
    event: Option<Event>,
    close: Option<Close>,
}

impl Handshake {
    /// The initiator's side, at `now` (right after the QUIC handshake):
    /// [`Handshake::poll_transmit`] yields the `Hello` to send on the first
    /// bidirectional stream. `ours` must not be empty.
    #[must_use]
    pub fn initiator(ours: RangeInclusive<u16>, now: Duration, timeout: Duration) -> Self {
        let transmit = Some(Transmit::Hello {
            min_version: *ours.start(),
            max_version: *ours.end(),
        });
        Handshake {
            direction: Direction::Outbound,
            ours,
            deadline: now.saturating_add(timeout),
            state: State::AwaitingResponse,
            transmit,
            event: None,
            close: None,
        }
    }

    /// The responder's side, at `now` (right after the QUIC handshake).
    #[must_use]
    pub fn responder(ours: RangeInclusive<u16>, now: Duration, timeout: Duration) -> Self {
        Handshake {
            direction: Direction::Inbound,
            ours,
            deadline: now.saturating_add(timeout),
            state: State::AwaitingHello,
            transmit: None,
            event: None,
            close: None,
        }
    }

    // ---- getters ----

    /// Which side this is.
    #[must_use]
    pub fn direction(&self) -> Direction {
        self.direction
    }

    /// The agreed version once established.
    #[must_use]
    pub fn version(&self) -> Option<u16> {
        match self.state {
            State::Established { version } => Some(version),
            _ => None,
        }
    }

    /// Whether the exchange completed.
    #[must_use]
    pub fn is_established(&self) -> bool {
        matches!(self.state, State::Established { .. })
    }

    /// Whether the exchange failed and the connection is to be (or was) closed.
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    // ---- inputs ----

    /// Responder: the first frame of the first stream is a valid `Hello`
    /// offering `[min_version, max_version]`. Answers `HelloResponse` with
    /// the selected version, or `Error(unsupportedVersion)` and closes with
    /// [`CloseCode::VersionMismatch`].
    pub fn handle_hello(&mut self, now: Duration, min_version: u16, max_version: u16) {
        if !self.awaiting(now, State::AwaitingHello) {
            return;
        }
        match select_version(&self.ours, min_version, max_version) {
            Some(version) => self.establish(version, Some(Transmit::HelloResponse { version })),
            None => {
                self.transmit = Some(Transmit::UnsupportedVersion {
                    ours: self.ours.clone(),
                    theirs: (min_version, max_version),
                });
                self.fail(CloseCode::VersionMismatch, "unsupported version");
            }
        }
    }

    /// Responder: the first frame of the first stream is a well-formed frame
    /// with code `request_code` that is not `Hello` (a request, push or
    /// response sent before Hello). Answers `Error(unauthorized)` and closes
    /// with [`CloseCode::ProtocolViolation`].
    pub fn handle_frame_before_hello(&mut self, now: Duration, request_code: u8) {
        if !self.awaiting(now, State::AwaitingHello) {
            return;
        }
        self.transmit = Some(Transmit::NotHelloFirst { request_code });
        self.fail(CloseCode::ProtocolViolation, "no Hello first");
    }

    /// Responder: the first frame of the first stream is defective (unknown
    /// code, over the Hello cap, truncated, undecodable, `minVersion >
    /// maxVersion`). Answers the defect's `Error` ([`Transmit::BadHello`])
    /// and closes with [`CloseCode::ProtocolViolation`].
    pub fn handle_bad_hello(&mut self, now: Duration) {
        if !self.awaiting(now, State::AwaitingHello) {
            return;
        }
        self.transmit = Some(Transmit::BadHello);
        self.fail(CloseCode::ProtocolViolation, "bad Hello");
    }

    /// Responder: the Hello stream failed before a frame arrived (reset,
    /// no frame budget). Closes with [`CloseCode::ProtocolViolation`].
    pub fn handle_hello_stream_failed(&mut self, now: Duration) {
        if !self.awaiting(now, State::AwaitingHello) {
            return;
        }
        self.fail(CloseCode::ProtocolViolation, "Hello stream failed");
    }

    /// Initiator: the reply is a valid `HelloResponse` selecting `version`
    /// and declaring `[min_version, max_version]`. Established if the version
    /// is inside both ranges; otherwise closes with
    /// [`CloseCode::VersionMismatch`].
    pub fn handle_hello_response(
        &mut self,
        now: Duration,
        version: u16,
        min_version: u16,
        max_version: u16,
    ) {
        if !self.awaiting(now, State::AwaitingResponse) {
            return;
        }
        if self.ours.contains(&version) && (min_version..=max_version).contains(&version) {
            self.establish(version, None);
        } else {
            self.fail(CloseCode::VersionMismatch, "unsupported version");
        }
    }

    /// Initiator: the reply is `Error(unsupportedVersion)`. Closes with
    /// [`CloseCode::VersionMismatch`].
    pub fn handle_version_refused(&mut self, now: Duration) {
        if !self.awaiting(now, State::AwaitingResponse) {
            return;
        }
        self.fail(CloseCode::VersionMismatch, "unsupported version");
    }

    /// Initiator: the reply is another `Error`. Closes with
    /// [`CloseCode::ProtocolViolation`].
    pub fn handle_hello_refused(&mut self, now: Duration) {
        if !self.awaiting(now, State::AwaitingResponse) {
            return;
        }
        self.fail(CloseCode::ProtocolViolation, "Hello refused");
    }

    /// Initiator: the reply is neither `HelloResponse` nor `Error`, or is
    /// defective. Closes with [`CloseCode::ProtocolViolation`].
    pub fn handle_bad_response(&mut self, now: Duration) {
        if !self.awaiting(now, State::AwaitingResponse) {
            return;
        }
        self.fail(CloseCode::ProtocolViolation, "bad HelloResponse");
    }

    /// A timer returned by [`Handshake::poll_timeout`] expired. At or after
    /// the deadline an exchange still in progress closes with
    /// [`CloseCode::HelloTimeout`]; earlier, nothing happens.
    pub fn handle_timeout(&mut self, now: Duration) {
        if self.in_progress() && now >= self.deadline {
            self.transmit = None;
            self.fail(CloseCode::HelloTimeout, "Hello timeout");
        }
    }

    /// The runtime closed the connection (or the peer did): the exchange
    /// stops without a close of its own.
    pub fn handle_closed(&mut self) {
        self.transmit = None;
        self.state = State::Closed;
    }

    // ---- outputs ----

    /// The next frame to send on the Hello stream.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmit.take()
    }

    /// The exchange's outcome, once.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.event.take()
    }

    /// Close the connection with this code (after sending any transmit).
    pub fn poll_close(&mut self) -> Option<Close> {
        self.close.take()
    }

    /// When [`Handshake::handle_timeout`] must be called, while the
    /// exchange is in progress.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Duration> {
        self.in_progress().then_some(self.deadline)
    }

    // ---- internals ----

    fn in_progress(&self) -> bool {
        matches!(self.state, State::AwaitingHello | State::AwaitingResponse)
    }

    /// Whether an input for `expected` is to be acted on: the exchange is
    /// in that state and not past its deadline (then it times out instead).
    fn awaiting(&mut self, now: Duration, expected: State) -> bool {
        self.handle_timeout(now);
        self.state == expected
    }

    fn establish(&mut self, version: u16, transmit: Option<Transmit>) {
        self.state = State::Established { version };
        self.transmit = transmit;
        self.event = Some(Event::Established { version });
    }

    fn fail(&mut self, code: CloseCode, reason: &'static str) {
        self.state = State::Closed;
        self.close = Some(Close { code, reason });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_codes_round_trip() {
        for v in 0..=7 {
            let code = CloseCode::from_u32(v);
            assert_eq!(code.map(CloseCode::as_u32), Some(v));
        }
        assert_eq!(CloseCode::from_u32(8), None);
        assert_eq!(CloseCode::HelloTimeout.as_u32(), 0x4);
        assert_eq!(CloseCode::Duplicate.name(), "duplicate");
    }

    #[test]
    fn version_selection() {
        let ours = 2..=2;
        assert_eq!(select_version(&ours, 2, 2), Some(2));
        assert_eq!(select_version(&ours, 1, 5), Some(2));
        assert_eq!(select_version(&ours, 3, 3), None);
        assert_eq!(select_version(&ours, 1, 1), None);
        assert_eq!(select_version(&ours, 3, 1), None);
        assert_eq!(select_version(&(2..=4), 3, 9), Some(4));
        assert_eq!(select_version(&(2..=4), 0, 3), Some(3));
    }

    #[test]
    fn duplicate_rule_agrees_on_both_sides() {
        let a = NodeId([1; 32]);
        let b = NodeId([2; 32]);
        // A's view: existing = A's dial (outbound), new = B's dial (inbound).
        // B's view: existing = B's dial (outbound), new = A's dial (inbound).
        // Both must keep the connection A (the lower id) initiated.
        assert!(keep_existing(Direction::Outbound, Direction::Inbound, a, b));
        assert!(!keep_existing(
            Direction::Outbound,
            Direction::Inbound,
            b,
            a
        ));
        assert!(keep_existing(Direction::Inbound, Direction::Outbound, b, a));
        assert!(!keep_existing(
            Direction::Inbound,
            Direction::Outbound,
            a,
            b
        ));
    }

    #[test]
    fn a_late_input_times_out_instead() {
        let mut hs = Handshake::responder(2..=2, Duration::ZERO, HELLO_TIMEOUT);
        hs.handle_hello(HELLO_TIMEOUT, 2, 2);
        assert_eq!(hs.poll_transmit(), None);
        assert_eq!(
            hs.poll_close().map(|c| c.code),
            Some(CloseCode::HelloTimeout)
        );
        assert_eq!(hs.poll_event(), None);
    }

    #[test]
    fn an_early_timer_does_nothing() {
        let mut hs = Handshake::initiator(2..=2, Duration::ZERO, HELLO_TIMEOUT);
        hs.handle_timeout(HELLO_TIMEOUT - Duration::from_millis(1));
        assert_eq!(hs.poll_close(), None);
        assert_eq!(hs.poll_timeout(), Some(HELLO_TIMEOUT));
    }
}
