#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The connection rules (`schema/README.md` §1.3–§1.5) driven end to end by
//! the deterministic two-endpoint harness: no sockets, no sleeps, no tokio.

mod conn_harness;

use std::time::Duration;

use conn_harness::{Frame, Pair, Sent};
use distsoc_protocol::conn::{CloseCode, Transmit, HELLO_TIMEOUT};
use distsoc_protocol::ids::NodeId;

const A: usize = 0;
const B: usize = 1;

#[test]
fn handshake_selects_the_highest_common_version() {
    let mut pair = Pair::new(2..=4, 1..=3);
    let c = pair.dial(A);
    pair.drive();
    let conn = &pair.conns[c];
    assert!(conn.is_open());
    assert_eq!(conn.hs[A].version(), Some(3));
    assert_eq!(conn.hs[B].version(), Some(3));
    assert_eq!(
        conn.log,
        vec![
            Sent::Frame {
                from: A,
                frame: Frame::Transmit(Transmit::Hello {
                    min_version: 2,
                    max_version: 4
                })
            },
            Sent::Frame {
                from: B,
                frame: Frame::Transmit(Transmit::HelloResponse { version: 3 })
            },
        ]
    );
    assert_eq!(pair.kept(A), Some(c));
    assert_eq!(pair.kept(B), Some(c));
    // One round trip.
    assert_eq!(pair.now, 2 * pair.latency);
    // No timer is left once established.
    assert_eq!(conn.hs[A].poll_timeout(), None);
    assert_eq!(conn.hs[B].poll_timeout(), None);
}

/// Both sides dial at the same instant; they must converge on the
/// connection the lower NodeId initiated, whichever side that is.
fn simultaneous(lower_is_a: bool) {
    let (low, high) = (NodeId([1; 32]), NodeId([2; 32]));
    let (a, b) = if lower_is_a { (low, high) } else { (high, low) };
    let mut pair = Pair::with_ids(a, 2..=2, b, 2..=2);
    let from_a = pair.dial(A);
    let from_b = pair.dial(B);
    pair.drive();
    let winner = if lower_is_a { from_a } else { from_b };
    let loser = if lower_is_a { from_b } else { from_a };
    assert_eq!(pair.open_conns(), vec![winner], "exactly one survives");
    assert_eq!(pair.kept(A), Some(winner), "a keeps the lower id's dial");
    assert_eq!(pair.kept(B), Some(winner), "b keeps the lower id's dial");
    assert_eq!(pair.conns[loser].close_code(), Some(CloseCode::Duplicate));
    assert!(pair.conns[winner].hs.iter().all(|h| h.version() == Some(2)));
}

#[test]
fn simultaneous_dials_converge_on_the_lower_ids_dial() {
    simultaneous(true);
    simultaneous(false);
}

#[test]
fn a_peer_dialling_again_replaces_its_old_connection() {
    let mut pair = Pair::new(2..=2, 2..=2);
    let first = pair.dial(A);
    pair.drive();
    let second = pair.dial(A);
    pair.drive();
    // b: the newer inbound wins; a: its serialized dials would reuse the
    // first, so here a holds the second only because b closed the first.
    assert_eq!(pair.conns[first].close_code(), Some(CloseCode::Duplicate));
    assert_eq!(pair.open_conns(), vec![second]);
    assert_eq!(pair.kept(A), Some(second));
    assert_eq!(pair.kept(B), Some(second));
}

#[test]
fn hello_timeout_closes_with_0x4() {
    let mut pair = Pair::new(2..=2, 2..=2);
    let c = pair.dial_silent(A);
    pair.advance(HELLO_TIMEOUT - Duration::from_millis(1));
    assert!(pair.conns[c].is_open(), "not before the deadline");
    pair.advance(Duration::from_millis(1));
    let conn = &pair.conns[c];
    assert_eq!(conn.close_code(), Some(CloseCode::HelloTimeout));
    assert_eq!(CloseCode::HelloTimeout.as_u32(), 0x4);
    assert!(!conn.hs[B].is_established());
    assert_eq!(pair.kept(B), None);
}

#[test]
fn a_hello_after_the_deadline_is_too_late() {
    let mut pair = Pair::new(2..=2, 2..=2);
    pair.latency = HELLO_TIMEOUT; // the Hello arrives exactly at the deadline
    let c = pair.dial(A);
    pair.drive();
    let conn = &pair.conns[c];
    assert_eq!(conn.close_code(), Some(CloseCode::HelloTimeout));
    assert!(!conn.hs[B].is_established());
    assert!(
        !conn.log.iter().any(|s| matches!(
            s,
            Sent::Frame {
                from: B,
                frame: Frame::Transmit(Transmit::HelloResponse { .. })
            }
        )),
        "no HelloResponse after the deadline"
    );
}

/// The initiator's range is disjoint from the responder's: the responder
/// answers `Error(unsupportedVersion)` with its own range and closes 0x1.
fn mismatch(a: std::ops::RangeInclusive<u16>, b: std::ops::RangeInclusive<u16>) {
    let mut pair = Pair::new(a.clone(), b.clone());
    let c = pair.dial(A);
    pair.drive();
    let conn = &pair.conns[c];
    assert_eq!(
        conn.log[1],
        Sent::Frame {
            from: B,
            frame: Frame::Transmit(Transmit::UnsupportedVersion {
                ours: b,
                theirs: (*a.start(), *a.end())
            })
        }
    );
    assert_eq!(conn.closed.map(|(by, _)| by), Some(B));
    assert_eq!(conn.close_code(), Some(CloseCode::VersionMismatch));
    assert_eq!(CloseCode::VersionMismatch.as_u32(), 0x1);
    assert!(conn.hs.iter().all(|h| !h.is_established()));
    assert_eq!((pair.kept(A), pair.kept(B)), (None, None));
}

#[test]
fn version_mismatch_initiator_above() {
    mismatch(3..=4, 1..=2);
}

#[test]
fn version_mismatch_initiator_below() {
    mismatch(1..=2, 3..=4);
}

#[test]
fn initiator_refuses_a_version_outside_its_range() {
    use distsoc_protocol::conn::Handshake;
    let mut hs = Handshake::initiator(2..=2, Duration::ZERO, HELLO_TIMEOUT);
    assert!(matches!(hs.poll_transmit(), Some(Transmit::Hello { .. })));
    hs.handle_hello_response(Duration::from_millis(5), 3, 1, 3);
    assert_eq!(
        hs.poll_close().map(|c| c.code),
        Some(CloseCode::VersionMismatch)
    );
    // And one that selected outside its own declared range.
    let mut hs = Handshake::initiator(1..=3, Duration::ZERO, HELLO_TIMEOUT);
    hs.handle_hello_response(Duration::from_millis(5), 2, 3, 4);
    assert_eq!(
        hs.poll_close().map(|c| c.code),
        Some(CloseCode::VersionMismatch)
    );
}

#[test]
fn a_request_before_hello_is_refused_and_closes_0x2() {
    let mut pair = Pair::new(2..=2, 2..=2);
    let c = pair.dial_with_first_frame(A, 0x40);
    pair.drive();
    let conn = &pair.conns[c];
    assert_eq!(
        conn.log[1],
        Sent::Frame {
            from: B,
            frame: Frame::Transmit(Transmit::NotHelloFirst { request_code: 0x40 })
        }
    );
    assert_eq!(conn.closed.map(|(by, _)| by), Some(B));
    assert_eq!(conn.close_code(), Some(CloseCode::ProtocolViolation));
    assert_eq!(CloseCode::ProtocolViolation.as_u32(), 0x2);
    assert_eq!(pair.kept(B), None);
}
