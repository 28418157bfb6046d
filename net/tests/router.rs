//! The typed request API ([`Peer::call`], [`Peer::push_acked`]) against a
//! [`Router`] on real QUIC endpoints on 127.0.0.1: a call gets its own
//! response type, a handler's `Error` is `RequestError::Remote`, a guard
//! refuses before any handler, and a code nobody registered is answered
//! `unknownMessage` with the connection still usable.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use distsoc_net::transport::{Peer, RequestError, Router, Transport, TransportConfig};
use distsoc_protocol::codes::MessageCode;
use distsoc_protocol::error::ErrorCode;
use distsoc_protocol::frame::decode_frame;
use distsoc_protocol::ids::NodeId;
use distsoc_protocol::limits::PROTOCOL_VERSION;
use distsoc_protocol::messages::common::{PeerAddress, SocketAddress};
use distsoc_protocol::messages::discovery::{
    AddressRequest, BootstrapRequest, BootstrapResponse, RoutingDiff,
};
use distsoc_protocol::messages::mailbox::ListChannels;
use distsoc_protocol::messages::wire;
use distsoc_protocol::messages::Message;
use distsoc_protocol::sign::SigningKey;

const BOUND: Duration = Duration::from_secs(10);
/// `want` that makes the bootstrap handler refuse with `notFound`.
const WANT_REFUSED: u16 = 404;

/// The router's state: how many pushes it consumed.
#[derive(Default)]
struct State {
    pushes: AtomicUsize,
}

fn key(n: u8) -> SigningKey {
    SigningKey::from_seed(&[n; 32])
}

fn cfg() -> TransportConfig {
    TransportConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        ..TransportConfig::default()
    }
}

/// A server that serves `BootstrapRequest` (echoing the caller) and
/// consumes `RoutingDiff`; nothing else is registered.
fn server(state: Arc<State>) -> Transport {
    let router = Router::new(state, "a test server")
        .guard(|_, _, _| Ok(()))
        .request(|_, ctx, req: BootstrapRequest| async move {
            if req.want == WANT_REFUSED {
                return Err(wire::Error::new(ErrorCode::NotFound, 0, "nothing here"));
            }
            Ok(BootstrapResponse {
                version: PROTOCOL_VERSION,
                peers: vec![PeerAddress {
                    node_id: ctx.peer,
                    addresses: vec![SocketAddress(ctx.remote)],
                    is_anchor: false,
                    last_seen_ms: 1,
                }],
            })
        })
        .push(|state: Arc<State>, _, _: RoutingDiff| async move {
            state.pushes.fetch_add(1, Ordering::SeqCst);
            Ok(())
        });
    Transport::bind(&key(1), cfg(), Arc::new(router)).unwrap()
}

async fn client(server: &Transport) -> (Transport, Peer) {
    let client = Transport::bind(
        &key(2),
        cfg(),
        Arc::new(Router::new(Arc::new(()), "a client")),
    )
    .unwrap();
    let peer = tokio::time::timeout(
        BOUND,
        client.connect(server.node_id(), server.local_addr().unwrap()),
    )
    .await
    .unwrap()
    .unwrap();
    (client, peer)
}

fn bootstrap(want: u16) -> BootstrapRequest {
    BootstrapRequest {
        version: PROTOCOL_VERSION,
        want,
        exclude: Vec::new(),
    }
}

#[tokio::test]
async fn a_typed_call_gets_its_response_and_an_error_is_remote() {
    let state = Arc::new(State::default());
    let server = server(state.clone());
    let (client, peer) = client(&server).await;

    // The response type is the request's own: no match on a Message.
    let reply: BootstrapResponse = peer.call(bootstrap(1)).await.unwrap();
    assert_eq!(reply.peers.len(), 1);
    assert_eq!(reply.peers[0].node_id, client.node_id());

    match peer.call(bootstrap(WANT_REFUSED)).await {
        Err(RequestError::Remote(e)) => {
            assert_eq!(e.code, ErrorCode::NotFound);
            assert_eq!(e.request_code, MessageCode::BootstrapRequest.as_u8());
            assert_eq!(e.message, "nothing here");
        }
        other => panic!("expected Remote(notFound), got {other:?}"),
    }

    // A registered push is acknowledged and reaches its handler.
    let diff = RoutingDiff {
        version: PROTOCOL_VERSION,
        seq: 1,
        hop1_changes: Vec::new(),
        hop2_changes: Vec::new(),
    };
    let ack = peer.push_acked(diff).await.unwrap();
    assert_eq!(ack.request_code, MessageCode::RoutingDiff.as_u8());
    assert_eq!(state.pushes.load(Ordering::SeqCst), 1);
    assert!(!peer.is_closed());
}

#[tokio::test]
async fn an_unregistered_code_is_answered_unknown_message_and_the_connection_stays() {
    let server = server(Arc::new(State::default()));
    let (_client, peer) = client(&server).await;

    // A request nobody registered: the typed call sees Remote(unknownMessage).
    match peer.call(ListChannels::new(PROTOCOL_VERSION)).await {
        Err(RequestError::Remote(e)) => {
            assert_eq!(e.code, ErrorCode::UnknownMessage);
            assert_eq!(e.request_code, MessageCode::ListChannels.as_u8());
            assert_eq!(e.message, "ListChannels is not served by a test server");
        }
        other => panic!("expected Remote(unknownMessage), got {other:?}"),
    }

    // The same on the wire, byte for byte: exactly one Error frame.
    let request = AddressRequest {
        version: PROTOCOL_VERSION,
        targets: vec![NodeId([3; 32])],
        depth: 0,
    };
    let raw = peer
        .raw_exchange(&Message::from(request).to_frame().unwrap())
        .await
        .unwrap();
    let expected = Message::Error(wire::Error::new(
        ErrorCode::UnknownMessage,
        MessageCode::AddressRequest.as_u8(),
        "AddressRequest is not served by a test server",
    ))
    .to_frame()
    .unwrap();
    assert_eq!(raw, expected);
    decode_frame(&raw).unwrap();

    // The connection is still usable.
    assert!(!peer.is_closed());
    peer.call(bootstrap(1)).await.unwrap();
}

#[tokio::test]
async fn a_guard_refuses_before_any_handler_registered_or_not() {
    let state = Arc::new(State::default());
    let router = Router::new(state.clone(), "a guarded server")
        .guard(|_, _, code| {
            if code == MessageCode::RoutingDiff {
                Err(wire::Error::new(ErrorCode::RateLimited, 0, "slow down"))
            } else {
                Ok(())
            }
        })
        .push(|state: Arc<State>, _, _: RoutingDiff| async move {
            state.pushes.fetch_add(1, Ordering::SeqCst);
            Ok(())
        })
        .request(|_, _, _: BootstrapRequest| async move {
            Ok(BootstrapResponse {
                version: PROTOCOL_VERSION,
                peers: Vec::new(),
            })
        });
    let server = Transport::bind(&key(1), cfg(), Arc::new(router)).unwrap();
    let (_client, peer) = client(&server).await;
    let diff = RoutingDiff {
        version: PROTOCOL_VERSION,
        seq: 1,
        hop1_changes: Vec::new(),
        hop2_changes: Vec::new(),
    };
    match peer.push_acked(diff).await {
        Err(RequestError::Remote(e)) => assert_eq!(e.code, ErrorCode::RateLimited),
        other => panic!("expected Remote(rateLimited), got {other:?}"),
    }
    assert_eq!(state.pushes.load(Ordering::SeqCst), 0);
    peer.call(bootstrap(1)).await.unwrap();
}

/// The posts of a pull page: `n` public posts of `text_len` bytes each.
fn posts(n: usize, text_len: usize) -> Vec<distsoc_protocol::messages::content::SyncPost> {
    use distsoc_protocol::ids::PostingId;
    use distsoc_protocol::messages::content::{Post, PostVisibility, SyncPost};
    (0..n)
        .map(|i| {
            let k = key(10 + (i % 5) as u8);
            let p = Post::new_public(
                PostingId(k.public()),
                i as u64,
                "x".repeat(text_len),
                vec![],
            )
            .sign(&k)
            .unwrap();
            SyncPost::new(&k, p, PostVisibility::Public, None)
        })
        .collect()
}

/// A server answering `PullSyncRequest` with the page `limit` picks
/// (1: three small posts; 2: 160 posts of 60 KB, over the 8 MiB cap),
/// from stored bytes (`request_encoded`) or decoded (`request`).
fn pull_server(encoded: bool) -> Transport {
    use distsoc_protocol::codec::canonical_of;
    use distsoc_protocol::messages::social::{PullSyncRequest, PullSyncResponse};
    use distsoc_protocol::messages::stored::{StoredPullSyncResponse, StoredSyncPost};
    fn page(limit: u16) -> Vec<distsoc_protocol::messages::content::SyncPost> {
        if limit == 1 {
            posts(3, 10)
        } else {
            posts(160, 60_000)
        }
    }
    let router = Router::new(Arc::new(()), "a pull server");
    let router = if encoded {
        router.request_encoded(|_, _, req: PullSyncRequest| async move {
            Ok(StoredPullSyncResponse {
                version: PROTOCOL_VERSION,
                posts: page(req.limit)
                    .iter()
                    .map(|p| StoredSyncPost::new(&canonical_of(p), usize::MAX).unwrap())
                    .collect(),
                next_seq: 9,
                more: true,
                deletes: Vec::new(),
                profiles: Vec::new(),
            })
        })
    } else {
        router.request(|_, _, req: PullSyncRequest| async move {
            Ok(PullSyncResponse {
                version: PROTOCOL_VERSION,
                posts: page(req.limit),
                next_seq: 9,
                more: true,
                deletes: Vec::new(),
                profiles: Vec::new(),
            })
        })
    };
    Transport::bind(&key(1), cfg(), Arc::new(router)).unwrap()
}

/// A reply that encodes itself (`request_encoded`) goes out as the same
/// bytes as the decoded response, a typed call decodes it, and over the
/// frame cap it is refused the same way (`Error(internal)`).
#[tokio::test]
async fn an_encoded_reply_is_the_frame_of_its_response() {
    use distsoc_protocol::messages::social::{PullSyncRequest, PullSyncResponse};
    let request = |limit: u16| PullSyncRequest {
        version: PROTOCOL_VERSION,
        ids: Vec::new(),
        since_seq: 0,
        limit,
    };
    let mut frames = Vec::new();
    for encoded in [true, false] {
        let server = pull_server(encoded);
        let (_client, peer) = client(&server).await;
        let reply: PullSyncResponse = peer.call(request(1)).await.unwrap();
        assert_eq!(reply.posts, posts(3, 10));
        let mut raw = Vec::new();
        for limit in [1, 2] {
            raw.push(
                peer.raw_exchange(&Message::from(request(limit)).to_frame().unwrap())
                    .await
                    .unwrap(),
            );
        }
        match decode_frame(&raw[1]).map(|f| Message::from_frame(&f)) {
            Ok(Ok(Message::Error(e))) => {
                assert_eq!(e.code, ErrorCode::Internal, "{e:?}");
                assert_eq!(e.message, "reply too large");
            }
            other => panic!("expected Error(internal), got {other:?}"),
        }
        assert!(!peer.is_closed());
        frames.push(raw);
    }
    assert_eq!(frames[0], frames[1]);
}
