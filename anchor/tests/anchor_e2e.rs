//! A real anchor (SQLite store in a temp dir, quinn endpoint on 127.0.0.1)
//! and real QUIC clients: the mailbox and DM channels, authorization, limits,
//! FetchWait, check-in, bootstrap, rate limiting and graceful stop.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;
use common::{code, LOOPBACK};

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use distsoc_anchor::config::AnchorConfig;
use distsoc_anchor::run::{Anchor, RunOptions};
use distsoc_net::identity::NetworkKey;
use distsoc_net::transport::{Peer, RequestError, Transport};
use distsoc_protocol::error::ErrorCode;
use distsoc_protocol::ids::{ChannelId, NodeId};
use distsoc_protocol::messages::discovery::{AddressRequest, BootstrapRequest};
use distsoc_protocol::messages::mailbox::{CreateChannel, Enqueue, Fetch, FetchWait, ListChannels};
use distsoc_protocol::sign::SigningKey;

struct TestAnchor {
    _dir: tempfile::TempDir,
    anchor: Anchor,
    id: NodeId,
    addr: SocketAddr,
}

async fn anchor_with(cfg: AnchorConfig) -> TestAnchor {
    let dir = tempfile::tempdir().unwrap();
    let key = NetworkKey::new(SigningKey::generate(&mut rand_core::OsRng));
    let opts = RunOptions {
        data_dir: dir.path().into(),
        drain_timeout: Duration::from_secs(5),
    };
    let cfg = AnchorConfig {
        listen: LOOPBACK,
        // The admin API and metrics (fixed default ports) are in tests/admin.rs.
        admin_listen: String::new(),
        metrics_listen: String::new(),
        ..cfg
    };
    let anchor = Anchor::start(&key, &cfg, &opts).await.unwrap();
    let addr = anchor.local_addr().unwrap();
    TestAnchor {
        _dir: dir,
        anchor,
        id: key.node_id(),
        addr,
    }
}

async fn anchor() -> TestAnchor {
    anchor_with(AnchorConfig::default()).await
}

struct Client {
    _transport: Transport,
    peer: Peer,
    id: NodeId,
}

async fn client(a: &TestAnchor) -> Client {
    client_from(a, LOOPBACK).await
}

/// A client bound to `local` (any 127.x address: distinct source IPs).
async fn client_from(a: &TestAnchor, local: SocketAddr) -> Client {
    let (t, peer, id) = common::connect(a.id, a.addr, local).await;
    Client {
        _transport: t,
        peer,
        id,
    }
}

async fn create(c: &Client, other: NodeId) -> ChannelId {
    common::create_channel(&c.peer, other).await
}

async fn enqueue(
    c: &Client,
    channel: Option<ChannelId>,
    to: NodeId,
    payload: &[u8],
) -> Result<u64, RequestError> {
    let msg = Enqueue {
        version: 2,
        channel_id: channel,
        recipient: to,
        payload: payload.to_vec(),
        client_message_id: None,
    };
    Ok(c.peer.call(msg).await?.message_id)
}

async fn fetch(
    c: &Client,
    channel: Option<ChannelId>,
    ack: u64,
) -> Result<Vec<(u64, Vec<u8>)>, RequestError> {
    let msg = Fetch {
        version: 2,
        channel_id: channel,
        ack_through: ack,
        max_messages: 0,
        max_bytes: 0,
    };
    let r = c.peer.call(msg).await?;
    Ok(r.messages
        .into_iter()
        .map(|m| (m.message_id, m.payload))
        .collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channel_enqueue_fetch_ack() {
    let a = anchor().await;
    let (alice, bob) = (client(&a).await, client(&a).await);
    let ch = create(&alice, bob.id).await;
    assert_eq!(create(&bob, alice.id).await, ch, "one channel per pair");
    let id1 = enqueue(&alice, Some(ch), bob.id, b"hello bob")
        .await
        .unwrap();
    let id2 = enqueue(&alice, Some(ch), bob.id, b"second").await.unwrap();
    assert!(id2 > id1);
    // Bob gets both; Alice's own queue in the channel is empty.
    let got = fetch(&bob, Some(ch), 0).await.unwrap();
    assert_eq!(
        got,
        vec![(id1, b"hello bob".to_vec()), (id2, b"second".to_vec())]
    );
    assert!(fetch(&alice, Some(ch), 0).await.unwrap().is_empty());
    // At-least-once: unacknowledged messages come again; acknowledged ones go.
    assert_eq!(fetch(&bob, Some(ch), 0).await.unwrap().len(), 2);
    assert_eq!(
        fetch(&bob, Some(ch), id1).await.unwrap(),
        vec![(id2, b"second".to_vec())]
    );
    assert!(fetch(&bob, Some(ch), id2).await.unwrap().is_empty());
    // ListChannels.
    let r = bob.peer.call(ListChannels::new(2)).await.unwrap();
    assert_eq!(r.channels.len(), 1);
    assert_eq!(r.channels[0].peer, alice.id);
    // Legacy mailbox (no channel): any recipient, separate queue.
    enqueue(&alice, None, bob.id, b"legacy").await.unwrap();
    assert_eq!(fetch(&bob, None, 0).await.unwrap()[0].1, b"legacy".to_vec());
    assert!(fetch(&bob, Some(ch), 0).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_requests_get_typed_errors_and_store_nothing() {
    let a = anchor().await;
    let (alice, bob, mallory) = (client(&a).await, client(&a).await, client(&a).await);
    let ch = create(&alice, bob.id).await;
    // Non-member enqueue and fetch; forged channel id; wrong recipient.
    assert_eq!(
        code(enqueue(&mallory, Some(ch), bob.id, b"x").await),
        ErrorCode::Unauthorized
    );
    assert_eq!(
        code(fetch(&mallory, Some(ch), 0).await),
        ErrorCode::Unauthorized
    );
    let forged = ChannelId([0x5a; 16]);
    assert_eq!(
        code(enqueue(&alice, Some(forged), bob.id, b"x").await),
        ErrorCode::Unauthorized
    );
    assert_eq!(
        code(fetch(&alice, Some(forged), 0).await),
        ErrorCode::Unauthorized
    );
    assert_eq!(
        code(enqueue(&alice, Some(ch), mallory.id, b"x").await),
        ErrorCode::Unauthorized
    );
    // Channel with oneself.
    assert_eq!(
        code(
            alice
                .peer
                .call(CreateChannel {
                    version: 2,
                    peer: alice.id
                })
                .await
        ),
        ErrorCode::Malformed
    );
    // Payload over 5 MiB.
    let big = vec![0u8; 5 * 1024 * 1024 + 1];
    assert_eq!(
        code(enqueue(&alice, Some(ch), bob.id, &big).await),
        ErrorCode::TooLarge
    );
    // Version above ours.
    let v3 = Enqueue {
        version: 3,
        channel_id: Some(ch),
        recipient: bob.id,
        payload: vec![1],
        client_message_id: None,
    };
    assert_eq!(
        code(alice.peer.call(v3).await),
        ErrorCode::UnsupportedVersion
    );
    // Nothing was stored by any of that, and the connection still works.
    assert!(fetch(&bob, Some(ch), 0).await.unwrap().is_empty());
    enqueue(&alice, Some(ch), bob.id, b"ok").await.unwrap();
    assert_eq!(fetch(&bob, Some(ch), 0).await.unwrap().len(), 1);
    assert_eq!(
        a.anchor
            .service
            .store()
            .stats()
            .await
            .unwrap()
            .queued_messages,
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_wait_wakes_at_once_and_times_out_empty() {
    let a = anchor().await;
    let (alice, bob) = (client(&a).await, client(&a).await);
    let ch = create(&alice, bob.id).await;
    let wait = FetchWait {
        version: 2,
        channel_id: Some(ch),
        ack_through: 0,
        max_messages: 0,
        max_bytes: 0,
        timeout_ms: 30_000,
    };
    let started = Instant::now();
    let waiter = tokio::spawn({
        let peer = bob.peer.clone();
        async move { peer.call_with_timeout(wait, Duration::from_secs(40)).await }
    });
    // The enqueue happens while the wait is held (or before it registered:
    // both must deliver).
    enqueue(&alice, Some(ch), bob.id, b"wake up").await.unwrap();
    let r = waiter.await.unwrap().unwrap();
    assert_eq!(r.0.messages[0].payload, b"wake up".to_vec());
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "woken, not timed out"
    );
    // Timeout: an empty response after about timeout_ms.
    let short = FetchWait {
        version: 2,
        channel_id: Some(ch),
        ack_through: u64::MAX,
        max_messages: 0,
        max_bytes: 0,
        timeout_ms: 300,
    };
    let t = Instant::now();
    let r = bob.peer.call(short).await.unwrap();
    assert!(r.0.messages.is_empty());
    assert!(t.elapsed() >= Duration::from_millis(250));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_in_address_and_bootstrap() {
    let a = anchor().await;
    // Alice listens where she says: connecting is checking in (the
    // on_connected hook verifies the address by dialling back, then
    // records it). Bob announces nothing and is never handed out.
    let alice_key = SigningKey::generate(&mut rand_core::OsRng);
    let (_alice_endpoint, _alice_peer, _) = common::listening_as(&alice_key, a.id, a.addr).await;
    let alice_id = NodeId(alice_key.public());
    let bob = client(&a).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let reply = bob
            .peer
            .call(AddressRequest {
                version: 2,
                targets: vec![alice_id, NodeId([9; 32])],
                depth: 0,
            })
            .await;
        // Polling until the check-in is recorded may meet Bob's rate limit
        // on a slow machine: the refusal says when to ask again.
        let r = match reply {
            Ok(r) => r,
            Err(RequestError::Remote(w)) if w.code == ErrorCode::RateLimited => {
                assert!(Instant::now() < deadline, "check-in never recorded");
                tokio::time::sleep(Duration::from_millis(u64::from(w.retry_after_ms))).await;
                continue;
            }
            Err(e) => panic!("AddressRequest failed: {e}"),
        };
        if let Some(p) = &r.entries[0].peer {
            assert_eq!(p.node_id, alice_id);
            assert!(r.entries[1].peer.is_none());
            break;
        }
        assert!(Instant::now() < deadline, "check-in never recorded");
        tokio::task::yield_now().await;
    }
    // The polling above may have spent Bob's rate limit: wait as told.
    let r = loop {
        let reply = bob
            .peer
            .call(BootstrapRequest {
                version: 2,
                want: 200,
                exclude: vec![],
            })
            .await;
        match reply {
            Err(RequestError::Remote(w)) if w.code == ErrorCode::RateLimited => {
                assert!(Instant::now() < deadline, "bootstrap always rate limited");
                tokio::time::sleep(Duration::from_millis(u64::from(w.retry_after_ms))).await;
            }
            r => break r.unwrap(),
        }
    };
    let ids: Vec<NodeId> = r.peers.iter().map(|p| p.node_id).collect();
    assert!(ids.contains(&alice_id));
    assert!(
        !ids.contains(&bob.id),
        "the requester is not sent to itself"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_per_identity_does_not_slow_others() {
    let a = anchor_with(AnchorConfig {
        rate_limit_per_second: 5,
        rate_limit_burst: 5,
        ..AnchorConfig::default()
    })
    .await;
    let flood = client_from(&a, "127.0.0.2:0".parse().unwrap()).await;
    let calm = client_from(&a, "127.0.0.3:0".parse().unwrap()).await;
    let mut limited = None;
    for _ in 0..20 {
        match flood.peer.call(ListChannels::new(2)).await {
            Err(RequestError::Remote(e)) if e.code == ErrorCode::RateLimited => {
                limited = Some(e);
                break;
            }
            Ok(_) => {}
            other => panic!("{other:?}"),
        }
    }
    let e = limited.expect("the flood is rate limited");
    assert!(e.retry_after_ms > 0);
    // Another identity from another address is served its whole burst, while
    // the flooding identity is still limited.
    for _ in 0..5 {
        calm.peer.call(ListChannels::new(2)).await.unwrap();
    }
    assert_eq!(
        code(flood.peer.call(ListChannels::new(2)).await),
        ErrorCode::RateLimited
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_refuses_new_requests() {
    let a = anchor().await;
    let alice = client(&a).await;
    a.anchor.service.drain();
    assert_eq!(
        code(alice.peer.call(ListChannels::new(2)).await),
        ErrorCode::Unavailable
    );
}

/// Store-and-forward: an author deposits a public and an encrypted post at
/// the anchor with PushPost and goes away; each reader later pulls what the
/// pull filter allows it — the encrypted post only by recipient match, never
/// to a follower who is not a recipient.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deposited_posts_are_served_by_recipient_match_pull() {
    use distsoc_protocol::ids::PostingId;
    use distsoc_protocol::messages::content::{
        seal_post, Post, PostBody, PostVisibility, SyncPost,
    };
    use distsoc_protocol::messages::social::{PullSyncRequest, PushPost};

    let a = anchor().await;
    let alice = SigningKey::generate(&mut rand_core::OsRng);
    let bob = SigningKey::generate(&mut rand_core::OsRng);
    let carol = SigningKey::generate(&mut rand_core::OsRng);
    let pid = |k: &SigningKey| PostingId(k.public());
    let public = {
        let p = Post::new_public(pid(&alice), 1, "hello everyone", vec![])
            .sign(&alice)
            .unwrap();
        SyncPost::new(&alice, p, PostVisibility::Public, None)
    };
    let for_bob = {
        let body = PostBody {
            text: "for Bob".into(),
            attachments: vec![],
            rotation: None,
            archive: None,
            group: None,
        };
        let (p, v) = seal_post(
            &alice,
            2,
            &body,
            &[pid(&bob), pid(&alice)],
            &mut rand_core::OsRng,
        )
        .unwrap();
        SyncPost::new(&alice, p, v, None)
    };
    {
        let (_t, peer, _) = common::connect_as(&alice, a.id, a.addr, LOOPBACK).await;
        for post in [public.clone(), for_bob.clone()] {
            peer.push_acked(PushPost {
                version: 2,
                post,
                recent: None,
            })
            .await
            .expect("the anchor stores the deposit");
        }
        peer.close();
    }
    let pull = |key: SigningKey, ids: Vec<PostingId>| {
        let a = (a.id, a.addr);
        async move {
            let (_t, peer, _) = common::connect_as(&key, a.0, a.1, LOOPBACK).await;
            let req = PullSyncRequest {
                version: 2,
                ids,
                since_seq: 0,
                limit: 0,
            };
            let r = peer.call(req).await.unwrap();
            r.posts.into_iter().map(|p| p.post_id()).collect::<Vec<_>>()
        }
    };
    // Bob follows Alice and is a recipient: both.
    assert_eq!(
        pull(bob.clone(), vec![pid(&bob), pid(&alice)]).await,
        vec![public.post_id(), for_bob.post_id()]
    );
    // Bob as a recipient only (not following): the encrypted post.
    assert_eq!(
        pull(bob.clone(), vec![pid(&bob)]).await,
        vec![for_bob.post_id()]
    );
    // Carol follows Alice but is no recipient: the public post only, even
    // though Alice wrapped the key for herself (author self-wrap excluded).
    assert_eq!(pull(carol, vec![pid(&alice)]).await, vec![public.post_id()]);
}
