//! Transport tests on real quinn endpoints over 127.0.0.1: identity pinning,
//! ALPN, the Hello exchange, the stream dispatcher's handling of hostile
//! bytes, one connection per peer, idle timeout, handler failures.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use distsoc_net::transport::{
    tls, CloseReason, Direction, Handler, HandlerFuture, Peer, RequestCtx, RequestError, Transport,
    TransportConfig, TransportError, CLOSE_HELLO_TIMEOUT, CLOSE_IDLE_EVICTED, CLOSE_NORMAL,
    CLOSE_PROTOCOL_VIOLATION, CLOSE_TOO_MANY_CONNECTIONS, CLOSE_VERSION_MISMATCH,
};
use distsoc_protocol::codes::MessageCode;
use distsoc_protocol::error::ErrorCode;
use distsoc_protocol::frame::decode_frame;
use distsoc_protocol::ids::NodeId;
use distsoc_protocol::limits::{ALPN, MAX_MAILBOX_PAYLOAD_BYTES, PROTOCOL_VERSION};
use distsoc_protocol::messages::common::{PeerAddress, Role, SocketAddress};
use distsoc_protocol::messages::discovery::{BootstrapRequest, BootstrapResponse, RoutingDiff};
use distsoc_protocol::messages::mailbox::{Enqueue, EnqueueResponse};
use distsoc_protocol::messages::wire::{self, Ack, Hello, Limits};
use distsoc_protocol::messages::Message;
use distsoc_protocol::sign::SigningKey;
use tokio::sync::mpsc;

/// Upper bound for anything that should happen "now" on loopback.
const BOUND: Duration = Duration::from_secs(10);

/// `want` values that make the test handler misbehave.
const WANT_PANIC: u16 = 666;
const WANT_WRONG_TYPE: u16 = 777;
const WANT_NOT_FOUND: u16 = 404;
const WANT_HANG: u16 = 999;
/// First payload byte of an `Enqueue` that makes the test handler hang.
const HANG_BYTE: u8 = 0xFF;

fn key(n: u8) -> SigningKey {
    SigningKey::from_seed(&[n; 32])
}

fn id(n: u8) -> NodeId {
    NodeId(key(n).public())
}

fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .try_init();
}

fn cfg() -> TransportConfig {
    TransportConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        ..TransportConfig::default()
    }
}

/// What the handler saw: sender, message, bidirectional.
type Seen = (NodeId, Message, bool);

/// Answers `BootstrapRequest` by echoing `exclude` followed by the caller's
/// NodeId; misbehaves on purpose for some `want` values. Records pushes.
struct TestHandler {
    seen: mpsc::UnboundedSender<Seen>,
    cancelled: mpsc::UnboundedSender<()>,
}

/// Signals when dropped (the handler future was cancelled).
struct DropSignal(mpsc::UnboundedSender<()>);

impl Drop for DropSignal {
    fn drop(&mut self) {
        let _ = self.0.send(());
    }
}

impl Handler for TestHandler {
    fn handle<'a>(&'a self, ctx: RequestCtx, msg: Message) -> HandlerFuture<'a> {
        Box::pin(async move {
            let _ = self.seen.send((ctx.peer, msg.clone(), ctx.bidirectional));
            match msg {
                Message::BootstrapRequest(r) => match r.want {
                    WANT_PANIC => panic!("test handler panics on purpose"),
                    WANT_WRONG_TYPE => Ok(Some(Message::Ack(Ack {
                        version: PROTOCOL_VERSION,
                        request_code: 0x03,
                    }))),
                    WANT_NOT_FOUND => Err(wire::Error::new(ErrorCode::NotFound, 0, "nothing")),
                    WANT_HANG => {
                        let _signal = DropSignal(self.cancelled.clone());
                        std::future::pending::<()>().await;
                        Ok(None)
                    }
                    _ => {
                        let mut peers: Vec<PeerAddress> = r
                            .exclude
                            .iter()
                            .map(|n| PeerAddress {
                                node_id: *n,
                                addresses: Vec::new(),
                                is_anchor: false,
                                last_seen_ms: 0,
                            })
                            .collect();
                        peers.push(PeerAddress {
                            node_id: ctx.peer,
                            addresses: vec![SocketAddress(ctx.remote)],
                            is_anchor: false,
                            last_seen_ms: 0,
                        });
                        Ok(Some(Message::BootstrapResponse(BootstrapResponse {
                            version: PROTOCOL_VERSION,
                            peers,
                        })))
                    }
                },
                Message::RoutingDiff(_) => Ok(None),
                Message::Enqueue(e) if e.payload.first() == Some(&HANG_BYTE) => {
                    let _signal = DropSignal(self.cancelled.clone());
                    std::future::pending::<()>().await;
                    Ok(None)
                }
                Message::Enqueue(e) => Ok(Some(Message::EnqueueResponse(EnqueueResponse {
                    version: PROTOCOL_VERSION,
                    message_id: e.payload.len() as u64,
                    received_at_ms: 1,
                    expires_at_ms: 2,
                }))),
                other => Err(wire::Error::new(
                    ErrorCode::UnknownMessage,
                    other.code().as_u8(),
                    "not served by the test handler",
                )),
            }
        })
    }
}

struct Node {
    transport: Transport,
    seen: mpsc::UnboundedReceiver<Seen>,
    cancelled: mpsc::UnboundedReceiver<()>,
}

impl Node {
    fn addr(&self) -> SocketAddr {
        self.transport.local_addr().unwrap()
    }
}

fn node_with(n: u8, config: TransportConfig) -> Node {
    init_tracing();
    let (seen_tx, seen) = mpsc::unbounded_channel();
    let (cancel_tx, cancelled) = mpsc::unbounded_channel();
    let handler = Arc::new(TestHandler {
        seen: seen_tx,
        cancelled: cancel_tx,
    });
    let transport = Transport::bind(&key(n), config, handler).unwrap();
    Node {
        transport,
        seen,
        cancelled,
    }
}

fn node(n: u8) -> Node {
    node_with(n, cfg())
}

fn bootstrap(want: u16, exclude: Vec<NodeId>) -> BootstrapRequest {
    BootstrapRequest {
        version: PROTOCOL_VERSION,
        want,
        exclude,
    }
}

fn routing_diff(seq: u64) -> RoutingDiff {
    RoutingDiff {
        version: PROTOCOL_VERSION,
        seq,
        hop1_changes: Vec::new(),
        hop2_changes: Vec::new(),
    }
}

async fn connect(from: &Node, to: &Node, to_n: u8) -> Peer {
    tokio::time::timeout(BOUND, from.transport.connect(id(to_n), to.addr()))
        .await
        .expect("connect timed out")
        .expect("connect failed")
}

/// A normal request works and returns the echo.
async fn assert_echo(peer: &Peer, expect_caller: NodeId) {
    let r = peer
        .call(bootstrap(5, vec![NodeId([7; 32])]))
        .await
        .unwrap();
    assert_eq!(r.peers.len(), 2);
    assert_eq!(r.peers[0].node_id, NodeId([7; 32]));
    assert_eq!(r.peers[1].node_id, expect_caller);
}

/// Decodes a raw reply as an `Error`.
fn error_of(reply: &[u8]) -> wire::Error {
    let frame = decode_frame(reply).expect("reply is a valid frame");
    wire::Error::try_from(Message::from_frame(&frame).expect("reply decodes"))
        .unwrap_or_else(|other| panic!("expected an Error, got {other:?}"))
}

/// A raw quinn client with our identity, pinning `server`, offering `alpn`.
async fn raw_client(
    client_key: &SigningKey,
    server: NodeId,
    addr: SocketAddr,
    alpn: &[u8],
) -> (
    quinn::Endpoint,
    Result<quinn::Connection, quinn::ConnectionError>,
) {
    let identity = tls::Identity::new(client_key).unwrap();
    let (mut config, _) = tls::client_config(&identity, server).unwrap();
    config.alpn_protocols = vec![alpn.to_vec()];
    let quic = quinn::crypto::rustls::QuicClientConfig::try_from(config).unwrap();
    let endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    let connecting = endpoint
        .connect_with(
            quinn::ClientConfig::new(Arc::new(quic)),
            addr,
            tls::SERVER_NAME,
        )
        .unwrap();
    let conn = tokio::time::timeout(BOUND, connecting).await.unwrap();
    (endpoint, conn)
}

/// Writes `bytes` on a new bidirectional stream of a raw connection and reads
/// the whole reply.
async fn raw_bi(conn: &quinn::Connection, bytes: &[u8]) -> Vec<u8> {
    let (mut send, mut recv) = conn.open_bi().await.unwrap();
    send.write_all(bytes).await.unwrap();
    send.finish().unwrap();
    tokio::time::timeout(BOUND, recv.read_to_end(1 << 20))
        .await
        .unwrap()
        .unwrap()
}

fn hello(min: u16, max: u16) -> Message {
    Message::Hello(Hello {
        version: max,
        min_version: min,
        max_version: max,
        roles: vec![Role::Node],
        capabilities: Vec::new(),
        limits: Limits::default(),
        listen_addresses: Vec::new(),
        agent: "raw test client".into(),
        time_ms: 1,
    })
}

async fn closed_code(conn: &quinn::Connection) -> u64 {
    match tokio::time::timeout(BOUND, conn.closed()).await.unwrap() {
        quinn::ConnectionError::ApplicationClosed(c) => c.error_code.into_inner(),
        other => panic!("unexpected close {other:?}"),
    }
}

#[tokio::test]
async fn hello_handshake_both_ways() {
    let a = node_with(
        1,
        TransportConfig {
            capabilities: vec!["test/1".into()],
            agent: "node-a".into(),
            roles: vec![Role::Node],
            listen_addresses: vec!["192.0.2.1:4433".parse().unwrap()],
            ..cfg()
        },
    );
    let b = node_with(
        2,
        TransportConfig {
            capabilities: vec!["mailbox/1".into()],
            agent: "node-b".into(),
            roles: vec![Role::Anchor],
            ..cfg()
        },
    );
    let peer = connect(&a, &b, 2).await;

    // Initiator's view: B's HelloResponse.
    assert_eq!(peer.node_id(), id(2));
    assert_eq!(peer.version(), PROTOCOL_VERSION);
    assert_eq!(peer.remote_address(), b.addr());
    let info = peer.info();
    assert_eq!(info.direction, Direction::Outbound);
    assert_eq!(info.roles, vec![Role::Anchor]);
    assert_eq!(info.capabilities, vec!["mailbox/1".to_string()]);
    assert_eq!(info.agent, "node-b");
    assert_eq!(info.observed_address, Some(a.addr()));
    assert_eq!(
        u32::from(info.limits.max_concurrent_streams),
        TransportConfig::default().max_concurrent_bidi
    );

    // Responder's view: A's Hello, identified by A's key.
    let b_peers = b.transport.peers();
    assert_eq!(b_peers.len(), 1);
    let seen_by_b = &b_peers[0];
    assert_eq!(seen_by_b.node_id, id(1));
    assert_eq!(seen_by_b.direction, Direction::Inbound);
    assert_eq!(seen_by_b.version, PROTOCOL_VERSION);
    assert_eq!(seen_by_b.capabilities, vec!["test/1".to_string()]);
    assert_eq!(seen_by_b.agent, "node-a");
    assert_eq!(
        seen_by_b.listen_addresses,
        vec!["192.0.2.1:4433".parse::<SocketAddr>().unwrap()]
    );
    assert_eq!(seen_by_b.remote, a.addr());

    // Requests work in both directions on the one connection.
    assert_echo(&peer, id(1)).await;
    let back = b.transport.peer(&id(1)).expect("B has a connection to A");
    assert_echo(&back, id(2)).await;
}

#[tokio::test]
async fn incoming_peer_is_identified_by_its_key() {
    let mut a = node(3);
    let b = node(4);
    let peer = connect(&b, &a, 3).await;
    assert_echo(&peer, id(4)).await;
    let (sender, msg, bidi) = a.seen.recv().await.unwrap();
    assert_eq!(sender, id(4));
    assert!(bidi);
    assert_eq!(msg.code(), MessageCode::BootstrapRequest);
}

#[tokio::test]
async fn wrong_pinned_node_id_fails_and_server_stays_up() {
    let server = node(5);
    let client = node(6);
    let wrong = id(99);
    let err = client
        .transport
        .connect(wrong, server.addr())
        .await
        .unwrap_err();
    match err {
        TransportError::PinMismatch { expected, got } => {
            assert_eq!(expected, wrong);
            assert_eq!(got, id(5));
        }
        other => panic!("expected PinMismatch, got {other:?}"),
    }
    assert!(client.transport.peers().is_empty());
    assert!(server.transport.peers().is_empty());

    // The server still serves the next, correct client.
    let peer = connect(&client, &server, 5).await;
    assert_echo(&peer, id(6)).await;
}

#[tokio::test]
async fn wrong_alpn_fails_the_handshake() {
    let server = node(7);
    let (_endpoint, conn) = raw_client(&key(8), id(7), server.addr(), b"distsoc/1").await;
    assert!(conn.is_err(), "a client offering distsoc/1 must be refused");
    let (_endpoint, conn) = raw_client(&key(8), id(7), server.addr(), b"h3").await;
    assert!(conn.is_err(), "a client offering h3 must be refused");
    assert!(server.transport.peers().is_empty());

    // Same client, right ALPN: accepted.
    let (_endpoint, conn) = raw_client(&key(8), id(7), server.addr(), ALPN).await;
    let conn = conn.expect("distsoc/2 is accepted");
    let reply = raw_bi(&conn, &hello(2, 2).to_frame().unwrap()).await;
    let frame = decode_frame(&reply).unwrap();
    assert_eq!(frame.code(), MessageCode::HelloResponse);
}

#[tokio::test]
async fn request_response_round_trip() {
    let a = node(9);
    let b = node(10);
    let peer = connect(&a, &b, 10).await;
    for i in 0..20u8 {
        let reply = peer
            .call(bootstrap(1, vec![NodeId([i; 32]), NodeId([i + 1; 32])]))
            .await
            .unwrap();
        let r = reply;
        let ids: Vec<NodeId> = r.peers.iter().map(|p| p.node_id).collect();
        assert_eq!(ids, vec![NodeId([i; 32]), NodeId([i + 1; 32]), id(9)]);
    }
    // Concurrent requests on one connection.
    let results =
        futures_util::future::join_all((0..16).map(|_| peer.call(bootstrap(2, Vec::new())))).await;
    assert!(results.iter().all(Result::is_ok));
}

#[tokio::test]
async fn version_mismatch_closes_the_connection() {
    let server = node(11);
    let client = node_with(
        12,
        TransportConfig {
            version_range: 3..=3,
            ..cfg()
        },
    );
    let err = client
        .transport
        .connect(id(11), server.addr())
        .await
        .unwrap_err();
    match err {
        TransportError::VersionMismatch { ours, theirs } => {
            assert_eq!(ours, 3..=3);
            assert_eq!(theirs, 2..=2);
        }
        other => panic!("expected VersionMismatch, got {other:?}"),
    }
    assert!(client.transport.peers().is_empty());
    assert!(server.transport.peers().is_empty());

    // On the wire: Error(unsupportedVersion) with the server's range, then
    // the server closes with CLOSE_VERSION_MISMATCH.
    let (_endpoint, conn) = raw_client(&key(12), id(11), server.addr(), ALPN).await;
    let conn = conn.unwrap();
    let reply = raw_bi(&conn, &hello(3, 3).to_frame().unwrap()).await;
    let e = error_of(&reply);
    assert_eq!(e.code, ErrorCode::UnsupportedVersion);
    assert_eq!((e.min_version, e.max_version), (2, 2));
    assert_eq!(e.request_code, MessageCode::Hello.as_u8());
    assert_eq!(closed_code(&conn).await, u64::from(CLOSE_VERSION_MISMATCH));
}

#[tokio::test]
async fn first_stream_must_be_hello() {
    let server = node(13);
    let (_endpoint, conn) = raw_client(&key(14), id(13), server.addr(), ALPN).await;
    let conn = conn.unwrap();
    let reply = raw_bi(
        &conn,
        &Message::from(bootstrap(1, Vec::new())).to_frame().unwrap(),
    )
    .await;
    let e = error_of(&reply);
    assert_eq!(e.code, ErrorCode::Unauthorized);
    assert_eq!(e.request_code, MessageCode::BootstrapRequest.as_u8());
    assert_eq!(
        closed_code(&conn).await,
        u64::from(CLOSE_PROTOCOL_VIOLATION)
    );
    assert!(server.transport.peers().is_empty());
}

#[tokio::test]
async fn streams_opened_before_hello_completes_wait_and_are_served() {
    let server = node(15);
    let (_endpoint, conn) = raw_client(&key(16), id(15), server.addr(), ALPN).await;
    let conn = conn.unwrap();
    // Stream 0: Hello; stream 1: a request, sent before any reply arrived.
    let (mut hello_send, mut hello_recv) = conn.open_bi().await.unwrap();
    let (mut req_send, mut req_recv) = conn.open_bi().await.unwrap();
    req_send
        .write_all(&Message::from(bootstrap(1, Vec::new())).to_frame().unwrap())
        .await
        .unwrap();
    req_send.finish().unwrap();
    hello_send
        .write_all(&hello(2, 2).to_frame().unwrap())
        .await
        .unwrap();
    hello_send.finish().unwrap();
    let hello_reply = tokio::time::timeout(BOUND, hello_recv.read_to_end(1 << 20))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        decode_frame(&hello_reply).unwrap().code(),
        MessageCode::HelloResponse
    );
    let reply = tokio::time::timeout(BOUND, req_recv.read_to_end(1 << 20))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        decode_frame(&reply).unwrap().code(),
        MessageCode::BootstrapResponse
    );
}

#[tokio::test]
async fn hostile_bytes_get_typed_errors_and_the_connection_survives() {
    let a = node(17);
    let b = node(18);
    let peer = connect(&a, &b, 18).await;
    let conn_id = peer.connection_id();

    let valid = Message::from(bootstrap(3, vec![NodeId([1; 32])]))
        .to_frame()
        .unwrap();
    let mut unknown_code = valid.clone();
    unknown_code[0] = 0x99;
    // FileRequest (cap 4 KiB) whose table claims one 1 MiB segment; no body.
    let mut oversize = vec![0x30];
    oversize.extend_from_slice(&0u32.to_le_bytes());
    oversize.extend_from_slice(&((1024 * 1024 / 8) as u32).to_le_bytes());
    let truncated = valid[..valid.len() - 8].to_vec();
    let ack = Message::Ack(Ack {
        version: PROTOCOL_VERSION,
        request_code: 0x01,
    })
    .to_frame()
    .unwrap();
    let mut trailing = valid.clone();
    trailing.extend_from_slice(&[0u8; 8]);
    let version3 = Message::BootstrapRequest(BootstrapRequest {
        version: 3,
        want: 1,
        exclude: Vec::new(),
    })
    .to_frame()
    .unwrap();
    let mut many_segments = vec![0x03];
    many_segments.extend_from_slice(&[0xEE; 16]);

    let cases: Vec<(&str, Vec<u8>, ErrorCode, u8)> = vec![
        // An unknown code is echoed as received (schema/README.md §2).
        (
            "text garbage",
            b"GET / HTTP/1.1\r\n\r\n".to_vec(),
            ErrorCode::UnknownMessage,
            b'G',
        ),
        (
            "garbage segment table",
            many_segments,
            ErrorCode::Malformed,
            0x03,
        ),
        (
            "unknown code 0x99",
            unknown_code,
            ErrorCode::UnknownMessage,
            0x99,
        ),
        ("oversize frame header", oversize, ErrorCode::TooLarge, 0x30),
        ("truncated frame", truncated, ErrorCode::Malformed, 0x03),
        ("empty stream", Vec::new(), ErrorCode::Malformed, 0xFF),
        (
            "response code as request",
            ack,
            ErrorCode::UnknownMessage,
            0x7E,
        ),
        ("trailing bytes", trailing, ErrorCode::Malformed, 0x03),
        (
            "version 3 message",
            version3,
            ErrorCode::UnsupportedVersion,
            0x03,
        ),
    ];
    for (name, bytes, code, request_code) in cases {
        let reply = peer.raw_exchange(&bytes).await.unwrap();
        let e = error_of(&reply);
        assert_eq!(e.code, code, "{name}: {}", e.message);
        assert_eq!(e.request_code, request_code, "{name}");
        if code == ErrorCode::UnsupportedVersion {
            assert_eq!((e.min_version, e.max_version), (2, 2), "{name}");
        }
        // The connection is still open and serves a normal request.
        assert!(!peer.is_closed(), "{name} closed the connection");
        assert_echo(&peer, id(17)).await;
    }
    assert_eq!(a.transport.peer(&id(18)).unwrap().connection_id(), conn_id);
    assert_eq!(a.transport.peers().len(), 1);
}

#[tokio::test]
async fn pushes_are_acked_on_bidi_and_delivered_on_uni() {
    let a = node(19);
    let mut b = node(20);
    let peer = connect(&a, &b, 20).await;

    let ack = peer.push_acked(routing_diff(7)).await.unwrap();
    assert_eq!(ack.request_code, MessageCode::RoutingDiff.as_u8());
    let (sender, msg, bidi) = b.seen.recv().await.unwrap();
    assert_eq!(
        (sender, msg.code(), bidi),
        (id(19), MessageCode::RoutingDiff, true)
    );

    peer.push(routing_diff(8)).await.unwrap();
    let (sender, msg, bidi) = tokio::time::timeout(BOUND, b.seen.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(sender, id(19));
    assert!(!bidi);
    assert_eq!(msg, Message::from(routing_diff(8)));

    // A push the handler refuses: Error on a bidirectional stream.
    let refused = peer
        .push_acked(distsoc_protocol::messages::files::PostNotification {
            version: PROTOCOL_VERSION,
            author: distsoc_protocol::ids::PostingId([1; 32]),
            post_id: distsoc_protocol::ids::PostId([2; 32]),
            hint: distsoc_protocol::messages::common::VisibilityHint::Public,
            recent: None,
        })
        .await;
    match refused {
        Err(RequestError::Remote(e)) => {
            assert_eq!(e.code, ErrorCode::UnknownMessage);
            assert_eq!(e.request_code, MessageCode::PostNotification.as_u8());
        }
        other => panic!("expected a remote error, got {other:?}"),
    }
}

#[tokio::test]
async fn one_connection_per_peer() {
    let a = node(21);
    let mut b = node(22);
    let first = connect(&a, &b, 22).await;
    let second = connect(&a, &b, 22).await;
    assert_eq!(first.connection_id(), second.connection_id());

    // Concurrent dials share one connection too.
    let (x, y) = tokio::join!(
        a.transport.connect(id(22), b.addr()),
        a.transport.connect(id(22), b.addr())
    );
    assert_eq!(x.unwrap().connection_id(), first.connection_id());
    assert_eq!(y.unwrap().connection_id(), first.connection_id());

    // From the other side: B reuses the incoming connection.
    let b_peers = b.transport.peers();
    assert_eq!(b_peers.len(), 1);
    let back = connect(&b, &a, 21).await;
    assert_eq!(back.connection_id(), b_peers[0].connection_id);
    assert_eq!(back.info().direction, Direction::Inbound);
    assert_eq!(a.transport.peers().len(), 1);
    assert_eq!(b.transport.peers().len(), 1);
    assert_echo(&back, id(22)).await;
    assert_echo(&first, id(21)).await;
    let (sender, _, _) = b.seen.recv().await.unwrap();
    assert_eq!(sender, id(21));

    // No self connections.
    assert!(matches!(
        a.transport.connect(id(21), b.addr()).await,
        Err(TransportError::SelfConnect)
    ));
}

#[tokio::test]
async fn simultaneous_dials_converge_on_one_connection() {
    let a = node(23);
    let b = node(24);
    let (from_a, from_b) = tokio::join!(
        a.transport.connect(id(24), b.addr()),
        b.transport.connect(id(23), a.addr())
    );
    let (from_a, from_b) = (from_a.unwrap(), from_b.unwrap());
    // Both sides keep the connection initiated by the lower NodeId. The lower
    // side's dial returns it; the higher side's dial returns either it
    // (inbound) or its own connection (outbound), which is then closed as a
    // duplicate.
    let a_is_lower = id(23) < id(24);
    let (lower, higher) = if a_is_lower { (&a, &b) } else { (&b, &a) };
    let (from_lower, from_higher) = if a_is_lower {
        (&from_a, &from_b)
    } else {
        (&from_b, &from_a)
    };
    assert_eq!(from_lower.info().direction, Direction::Outbound);
    if from_higher.info().direction == Direction::Outbound {
        let reason = tokio::time::timeout(BOUND, from_higher.closed())
            .await
            .expect("the duplicate connection was not closed");
        assert!(
            matches!(&reason, CloseReason::Local)
                || matches!(&reason, CloseReason::Application { code, .. } if *code == 3),
            "{reason:?}"
        );
    }
    let lower_peers = lower.transport.peers();
    let higher_peers = higher.transport.peers();
    assert_eq!(lower_peers.len(), 1);
    assert_eq!(higher_peers.len(), 1);
    assert_eq!(lower_peers[0].direction, Direction::Outbound);
    assert_eq!(higher_peers[0].direction, Direction::Inbound);
    assert_eq!(lower_peers[0].connection_id, from_lower.connection_id());
    // The echo names the caller.
    assert_echo(from_lower, lower.transport.node_id()).await;
    let back = higher
        .transport
        .connect(lower.transport.node_id(), lower.addr())
        .await
        .unwrap();
    assert_eq!(back.connection_id(), higher_peers[0].connection_id);
    assert_echo(&back, higher.transport.node_id()).await;
}

#[tokio::test]
async fn idle_timeout_closes_an_idle_connection() {
    let short = || TransportConfig {
        idle_timeout: Duration::from_millis(300),
        keep_alive: Duration::ZERO,
        ..cfg()
    };
    let a = node_with(25, short());
    let b = node_with(26, short());
    let peer = connect(&a, &b, 26).await;
    assert_echo(&peer, id(25)).await;
    let reason = tokio::time::timeout(BOUND, peer.closed())
        .await
        .expect("idle connection was not closed");
    assert_eq!(reason, CloseReason::IdleTimeout);
    assert!(a.transport.peers().is_empty());
    assert!(a.transport.peer(&id(26)).is_none());
}

#[tokio::test]
async fn the_dialers_keep_alive_holds_an_idle_connection_open() {
    let config = |keep_alive_ms| TransportConfig {
        idle_timeout: Duration::from_millis(600),
        keep_alive: Duration::from_millis(keep_alive_ms),
        ..cfg()
    };
    // The dialer pings; the listener does not (§1).
    let a = node_with(27, config(100));
    let b = node_with(28, config(0));
    let peer = connect(&a, &b, 28).await;
    // Several idle timeouts pass without traffic from us.
    let closed = tokio::time::timeout(Duration::from_millis(2000), peer.closed()).await;
    assert!(closed.is_err(), "keep-alive did not keep the connection");
    assert_echo(&peer, id(27)).await;
}

#[tokio::test]
async fn a_listener_sends_no_keep_alive() {
    let config = |keep_alive_ms| TransportConfig {
        idle_timeout: Duration::from_millis(400),
        keep_alive: Duration::from_millis(keep_alive_ms),
        ..cfg()
    };
    // The listener is configured with keep-alives, the dialer without: the
    // listener leaves keeping the connection to the dialer, so it idles out.
    let a = node_with(90, config(0));
    let b = node_with(91, config(100));
    let peer = connect(&a, &b, 91).await;
    assert_echo(&peer, id(90)).await;
    let reason = tokio::time::timeout(BOUND, peer.closed())
        .await
        .expect("the listener kept an idle connection open");
    assert_eq!(reason, CloseReason::IdleTimeout);
}

#[tokio::test]
async fn handler_failures_become_errors_and_the_connection_survives() {
    let a = node(29);
    let b = node(30);
    let peer = connect(&a, &b, 30).await;

    let expect_remote = |r: Result<BootstrapResponse, RequestError>, code: ErrorCode| match r {
        Err(RequestError::Remote(e)) => {
            assert_eq!(e.code, code);
            assert_eq!(e.request_code, MessageCode::BootstrapRequest.as_u8());
        }
        other => panic!("expected Remote({code}), got {other:?}"),
    };
    expect_remote(
        peer.call(bootstrap(WANT_PANIC, Vec::new())).await,
        ErrorCode::Internal,
    );
    assert_echo(&peer, id(29)).await;
    expect_remote(
        peer.call(bootstrap(WANT_WRONG_TYPE, Vec::new())).await,
        ErrorCode::Internal,
    );
    expect_remote(
        peer.call(bootstrap(WANT_NOT_FOUND, Vec::new())).await,
        ErrorCode::NotFound,
    );
    assert!(!peer.is_closed());
    assert_echo(&peer, id(29)).await;
}

#[tokio::test]
async fn request_timeout_abandons_the_stream_and_cancels_the_handler() {
    let a = node(31);
    let mut b = node(32);
    let peer = connect(&a, &b, 32).await;
    let r = peer
        .call_with_timeout(bootstrap(WANT_HANG, Vec::new()), Duration::from_millis(200))
        .await;
    assert!(matches!(r, Err(RequestError::Timeout(_))), "{r:?}");
    tokio::time::timeout(BOUND, b.cancelled.recv())
        .await
        .expect("handler not cancelled")
        .unwrap();
    assert_echo(&peer, id(31)).await;
}

#[tokio::test]
async fn close_is_graceful_and_final() {
    let a = node(33);
    let b = node(34);
    let peer = connect(&a, &b, 34).await;
    let back = b.transport.peer(&id(33)).unwrap();
    a.transport.close().await;
    assert_eq!(peer.closed().await, CloseReason::Local);
    match tokio::time::timeout(BOUND, back.closed()).await.unwrap() {
        CloseReason::Application { code, .. } => assert_eq!(code, u64::from(CLOSE_NORMAL)),
        other => panic!("unexpected close {other:?}"),
    }
    assert!(matches!(
        a.transport.connect(id(34), b.addr()).await,
        Err(TransportError::Closed)
    ));
}

#[tokio::test]
async fn unreachable_peer_times_out() {
    // A bound UDP socket that never answers.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let a = node_with(
        35,
        TransportConfig {
            hello_timeout: Duration::from_millis(300),
            ..cfg()
        },
    );
    let err = a
        .transport
        .connect(id(36), silent.local_addr().unwrap())
        .await
        .unwrap_err();
    assert!(
        matches!(err, TransportError::Timeout { .. }),
        "expected a timeout, got {err:?}"
    );
}

#[tokio::test]
async fn hello_timeout_closes_the_connection() {
    let server = node_with(
        39,
        TransportConfig {
            hello_timeout: Duration::from_millis(300),
            ..cfg()
        },
    );
    let (_endpoint, conn) = raw_client(&key(40), id(39), server.addr(), ALPN).await;
    let conn = conn.unwrap();
    // Connected, but no Hello: the server gives up.
    assert_eq!(closed_code(&conn).await, u64::from(CLOSE_HELLO_TIMEOUT));
    assert!(server.transport.peers().is_empty());
}

#[tokio::test]
async fn silent_stream_is_dropped_and_the_connection_survives() {
    let server = node_with(
        41,
        TransportConfig {
            stream_idle_timeout: Duration::from_millis(300),
            ..cfg()
        },
    );
    let (_endpoint, conn) = raw_client(&key(42), id(41), server.addr(), ALPN).await;
    let conn = conn.unwrap();
    let reply = raw_bi(&conn, &hello(2, 2).to_frame().unwrap()).await;
    assert_eq!(
        decode_frame(&reply).unwrap().code(),
        MessageCode::HelloResponse
    );
    // Three bytes of a header, then silence (the send side stays open).
    let (mut send, mut recv) = conn.open_bi().await.unwrap();
    send.write_all(&[0x03, 0x00, 0x00]).await.unwrap();
    let read = tokio::time::timeout(BOUND, recv.read_to_end(1 << 20))
        .await
        .expect("silent stream was not dropped");
    assert!(
        matches!(
            read,
            Err(quinn::ReadToEndError::Read(quinn::ReadError::Reset(_)))
        ),
        "{read:?}"
    );
    // The connection still serves requests.
    let reply = raw_bi(
        &conn,
        &Message::from(bootstrap(1, Vec::new())).to_frame().unwrap(),
    )
    .await;
    assert_eq!(
        decode_frame(&reply).unwrap().code(),
        MessageCode::BootstrapResponse
    );
    assert!(conn.close_reason().is_none());
}

fn enqueue(first_byte: u8) -> Enqueue {
    let mut payload = vec![0u8; MAX_MAILBOX_PAYLOAD_BYTES];
    payload[0] = first_byte;
    Enqueue {
        version: PROTOCOL_VERSION,
        channel_id: None,
        recipient: NodeId([1; 32]),
        payload,
        client_message_id: None,
    }
}

#[tokio::test]
async fn frame_budget_bounds_what_a_connection_buffers() {
    let a = node(43);
    let mut b = node_with(
        44,
        TransportConfig {
            stream_idle_timeout: Duration::from_millis(500),
            ..cfg()
        },
    );
    let peer = connect(&a, &b, 44).await;

    // Three 5 MiB requests whose handler hangs hold ~15 MiB of the 16 MiB
    // connection budget (the reservation lasts until the handler returns).
    let holders: Vec<_> = (0..3)
        .map(|_| {
            let peer = peer.clone();
            tokio::spawn(async move {
                peer.call_with_timeout(enqueue(HANG_BYTE), Duration::from_secs(60))
                    .await
            })
        })
        .collect();
    for _ in 0..3 {
        let (_, msg, _) = tokio::time::timeout(BOUND, b.seen.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(msg.code(), MessageCode::Enqueue);
    }

    // A fourth large frame cannot be reserved: unavailable, retry later.
    match peer.call(enqueue(0)).await {
        Err(RequestError::Remote(e)) => {
            assert_eq!(e.code, ErrorCode::Unavailable, "{}", e.message);
            assert_eq!(e.request_code, MessageCode::Enqueue.as_u8());
            assert!(e.retry_after_ms > 0);
        }
        other => panic!("expected unavailable, got {other:?}"),
    }
    // Small frames still fit, and the connection is fine.
    assert_echo(&peer, id(43)).await;

    // Abandoning the holders cancels their handlers and frees the budget.
    for holder in holders {
        holder.abort();
    }
    for _ in 0..3 {
        tokio::time::timeout(BOUND, b.cancelled.recv())
            .await
            .expect("holder not cancelled")
            .unwrap();
    }
    let r = peer.call(enqueue(0)).await.unwrap();
    assert_eq!(r.message_id, MAX_MAILBOX_PAYLOAD_BYTES as u64);
}

#[tokio::test]
async fn connection_limit_refuses_extra_connections() {
    let server = node_with(
        45,
        TransportConfig {
            max_connections: 1,
            ..cfg()
        },
    );
    let first = node(46);
    let second = node(47);
    let peer = connect(&first, &server, 45).await;
    let err = second
        .transport
        .connect(id(45), server.addr())
        .await
        .unwrap_err();
    assert!(matches!(err, TransportError::Handshake(_)), "{err:?}");
    // The admitted peer is unaffected; the limit also applies to dials.
    assert_echo(&peer, id(46)).await;
    let err = server
        .transport
        .connect(id(47), second.addr())
        .await
        .unwrap_err();
    assert!(matches!(err, TransportError::ConnectionLimit(1)), "{err:?}");
}

/// A raw client that completed the Hello exchange with `server`, bound to
/// `local` (a loopback address of its own).
async fn raw_hello_client(
    client_key: &SigningKey,
    server: NodeId,
    addr: SocketAddr,
    local: SocketAddr,
) -> (quinn::Endpoint, quinn::Connection) {
    let identity = tls::Identity::new(client_key).unwrap();
    let (config, _) = tls::client_config(&identity, server).unwrap();
    let quic = quinn::crypto::rustls::QuicClientConfig::try_from(config).unwrap();
    let endpoint = quinn::Endpoint::client(local).unwrap();
    let conn = tokio::time::timeout(
        BOUND,
        endpoint
            .connect_with(
                quinn::ClientConfig::new(Arc::new(quic)),
                addr,
                tls::SERVER_NAME,
            )
            .unwrap(),
    )
    .await
    .unwrap()
    .unwrap();
    let reply = raw_bi(&conn, &hello(2, 2).to_frame().unwrap()).await;
    assert_eq!(
        decode_frame(&reply).unwrap().code(),
        MessageCode::HelloResponse
    );
    (endpoint, conn)
}

/// The header of a one-segment frame of `code` declaring `words` words.
fn declared_header(code: MessageCode, words: u32) -> Vec<u8> {
    let mut h = vec![code.as_u8()];
    h.extend_from_slice(&0u32.to_le_bytes());
    h.extend_from_slice(&words.to_le_bytes());
    h
}

/// The 99th percentile of `samples` (sorted in place).
fn p99(samples: &mut [Duration]) -> Duration {
    samples.sort();
    samples[(samples.len() * 99).div_ceil(100) - 1]
}

#[tokio::test]
async fn slow_frames_do_not_starve_other_clients() {
    // Every frame must arrive within 1.5 s (the rate term is negligible
    // here), so the test stays short; budgets are the defaults.
    let deadline = Duration::from_millis(1500);
    let server = node_with(
        50,
        TransportConfig {
            frame_deadline_floor: deadline,
            frame_min_rate: 1 << 40,
            ..cfg()
        },
    );
    // Four attackers each declare a frame at the 16 MiB cap of
    // InitialMapSync and trickle its body, one byte every 100 ms: together
    // they declare the whole 64 MiB endpoint budget.
    let cap_words = u32::try_from((MessageCode::InitialMapSync.max_frame_bytes() - 8) / 8).unwrap();
    let mut attackers = Vec::new();
    for n in 0..4u8 {
        let (endpoint, conn) = raw_hello_client(
            &key(51 + n),
            id(50),
            server.addr(),
            "127.0.0.1:0".parse().unwrap(),
        )
        .await;
        let (mut send, recv) = conn.open_bi().await.unwrap();
        send.write_all(&declared_header(MessageCode::InitialMapSync, cap_words))
            .await
            .unwrap();
        let started = tokio::time::Instant::now();
        let trickle = tokio::spawn(async move {
            // Until the server stops the stream (or 10 s, a failure).
            while started.elapsed() < Duration::from_secs(10) {
                if send.write_all(&[0]).await.is_err() {
                    return Some(started.elapsed());
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            None
        });
        attackers.push((endpoint, conn, recv, trickle));
    }

    // Meanwhile a well-behaved client keeps its loopback latency.
    let good = node(55);
    let peer = connect(&good, &server, 50).await;
    let mut latencies = Vec::new();
    let window = tokio::time::Instant::now();
    while window.elapsed() < Duration::from_millis(1000) || latencies.len() < 30 {
        let t = tokio::time::Instant::now();
        let reply = tokio::time::timeout(BOUND, peer.call(bootstrap(1, Vec::new())))
            .await
            .expect("request starved")
            .expect("request failed");
        latencies.push(t.elapsed());
        assert_eq!(reply.peers.len(), 1);
    }
    let n = latencies.len();
    let p = p99(&mut latencies);
    println!("{n} requests during the attack: p99 {p:?}");
    assert!(
        p < Duration::from_millis(100),
        "p99 {p:?} over {n} requests"
    );

    // The trickling streams are cut at their deadline.
    for (_endpoint, conn, _recv, trickle) in attackers {
        let cut_after = trickle.await.unwrap().expect("slow stream was never cut");
        assert!(
            cut_after >= deadline - Duration::from_millis(200)
                && cut_after < Duration::from_secs(5),
            "cut after {cut_after:?}"
        );
        // Only the stream: the connection is still open.
        assert!(conn.close_reason().is_none());
    }
}

#[tokio::test]
async fn one_ip_cannot_exceed_its_connection_cap() {
    let server = node_with(
        60,
        TransportConfig {
            max_connections_per_ip: 3,
            ..cfg()
        },
    );
    let local: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let mut held = Vec::new();
    for n in 0..3u8 {
        held.push(raw_hello_client(&key(61 + n), id(60), server.addr(), local).await);
    }
    // The fourth from the same IP is closed right after the handshake.
    let (_endpoint, conn) = raw_client(&key(64), id(60), server.addr(), ALPN).await;
    let conn = conn.expect("the handshake completes so the refusal can be told");
    assert_eq!(
        closed_code(&conn).await,
        u64::from(CLOSE_TOO_MANY_CONNECTIONS)
    );
    // The same through the transport: a clear error naming the close code.
    let client = node(65);
    match client.transport.connect(id(60), server.addr()).await {
        Err(TransportError::ConnectionLost(CloseReason::Application { code, .. })) => {
            assert_eq!(code, u64::from(CLOSE_TOO_MANY_CONNECTIONS));
        }
        other => panic!("expected a per-IP refusal, got {other:?}"),
    }
    // Another address is not affected, and the admitted ones still work.
    let other_ip = node_with(
        66,
        TransportConfig {
            listen: "127.0.0.2:0".parse().unwrap(),
            ..cfg()
        },
    );
    let peer = connect(&other_ip, &server, 60).await;
    assert_echo(&peer, id(66)).await;
    let reply = raw_bi(
        &held[0].1,
        &Message::from(bootstrap(1, Vec::new())).to_frame().unwrap(),
    )
    .await;
    assert_eq!(
        decode_frame(&reply).unwrap().code(),
        MessageCode::BootstrapResponse
    );
    // A freed slot is available again.
    let (endpoint, conn) = held.pop().unwrap();
    conn.close(0u32.into(), b"bye");
    endpoint.wait_idle().await;
    tokio::time::timeout(BOUND, async {
        loop {
            if client
                .transport
                .connect(id(60), server.addr())
                .await
                .is_ok()
            {
                break;
            }
        }
    })
    .await
    .expect("the freed slot was not reused");
}

#[tokio::test]
async fn idle_connections_are_evicted_to_let_a_new_client_in() {
    let server = node_with(
        70,
        TransportConfig {
            max_connections: 3,
            idle_slot_grace: Duration::ZERO,
            ..cfg()
        },
    );
    // Three slots: one connection busy with a running handler, two that
    // completed Hello and never sent a request.
    let busy = node(71);
    let busy_peer = connect(&busy, &server, 70).await;
    let hanging = {
        let busy_peer = busy_peer.clone();
        tokio::spawn(async move {
            busy_peer
                .call_with_timeout(bootstrap(WANT_HANG, Vec::new()), Duration::from_secs(60))
                .await
        })
    };
    let mut server = server;
    let (_, msg, _) = tokio::time::timeout(BOUND, server.seen.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(msg.code(), MessageCode::BootstrapRequest);
    let local: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let idle_a = raw_hello_client(&key(72), id(70), server.addr(), local).await;
    let idle_b = raw_hello_client(&key(73), id(70), server.addr(), local).await;

    // A new client gets in and is served: an idle one made room.
    let newcomer = node(74);
    let peer = connect(&newcomer, &server, 70).await;
    assert_echo(&peer, id(74)).await;
    let evicted = tokio::time::timeout(BOUND, async {
        tokio::select! {
            e = idle_a.1.closed() => e,
            e = idle_b.1.closed() => e,
        }
    })
    .await
    .unwrap();
    match evicted {
        quinn::ConnectionError::ApplicationClosed(c) => {
            assert_eq!(c.error_code.into_inner(), u64::from(CLOSE_IDLE_EVICTED));
        }
        other => panic!("unexpected close {other:?}"),
    }
    // Exactly one was evicted, and never the busy connection.
    assert!(idle_a.1.close_reason().is_none() || idle_b.1.close_reason().is_none());
    assert!(!busy_peer.is_closed());
    hanging.abort();
}
