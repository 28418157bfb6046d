//! Revocation through an anchor (issue 9 item 18), end to end: real nodes
//! with their own SQLite stores, a real anchor (SQLite), QUIC on 127.0.0.1.
//!
//! Alice posts to a circle {Bob, Carol, Dave}, deposits at the anchor, and
//! everyone pulls the post from the anchor. Alice then revokes Carol and
//! Dave (re-encrypt: a replacement for Bob, and an author delete of each
//! older copy) and syncs with the anchor again. Afterwards:
//! * neither Carol nor Dave can pull any copy from the anchor, from scratch;
//! * Carol's copy is deleted by the delete the anchor serves her (she does
//!   not follow Alice: recipient match on the tombstone);
//! * Dave's copy is deleted when he pulls from Alice directly, also without
//!   following her;
//! * Bob (who follows Alice) sees exactly one copy, the new one.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::net::SocketAddr;
use std::time::Duration;

use distsoc_anchor::config::AnchorConfig;
use distsoc_anchor::run::{Anchor, RunOptions};
use distsoc_net::identity::NetworkKey;
use distsoc_net::now_ms;
use distsoc_net::transport::Peer;
use distsoc_node::compose::{self, VisibilityIntent};
use distsoc_node::config::Config;
use distsoc_node::node::{Node, Revocation, Running};
use distsoc_protocol::ids::{ConnectString, PostId, PostingId};
use distsoc_protocol::limits::PROTOCOL_VERSION;
use distsoc_protocol::messages::social::PullSyncRequest;
use distsoc_protocol::sign::SigningKey;

const LOOPBACK: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 0);

/// Bounds every network step of these tests.
const STEP: Duration = Duration::from_secs(20);

async fn anchor(dir: &std::path::Path) -> (Anchor, ConnectString) {
    let key = NetworkKey::new(SigningKey::generate(&mut rand_core::OsRng));
    let cfg = AnchorConfig {
        listen: LOOPBACK,
        admin_listen: String::new(),
        metrics_listen: String::new(),
        ..AnchorConfig::default()
    };
    let opts = RunOptions {
        data_dir: dir.join("anchor"),
        drain_timeout: Duration::from_secs(5),
    };
    std::fs::create_dir_all(&opts.data_dir).unwrap();
    let anchor = Anchor::start(&key, &cfg, &opts).await.unwrap();
    let cs = format!("{}@{}", key.node_id(), anchor.local_addr().unwrap())
        .parse()
        .unwrap();
    (anchor, cs)
}

fn node(dir: &std::path::Path, name: &str) -> Node {
    let config = Config {
        listen: LOOPBACK,
        ..Config::default()
    };
    Node::init(&dir.join(name), Some(config)).unwrap()
}

fn pid(n: &Node) -> PostingId {
    PostingId(n.node_id().0)
}

/// Starts `n`, connects to `target` and pulls (and deposits, for an anchor).
async fn sync(n: &Node, target: &ConnectString) -> Running {
    let running = n.start(Some(LOOPBACK)).await.unwrap();
    let peer = tokio::time::timeout(STEP, running.connect(target))
        .await
        .unwrap()
        .unwrap();
    tokio::time::timeout(STEP, running.sync_with(&peer))
        .await
        .unwrap()
        .unwrap();
    running
}

/// Everything `peer` serves us from cursor 0 for `ids`: post ids and
/// deleted post ids.
async fn pull_all(peer: &Peer, ids: &[PostingId]) -> (Vec<PostId>, Vec<PostId>) {
    let (mut posts, mut deletes, mut since) = (Vec::new(), Vec::new(), 0);
    loop {
        let req = PullSyncRequest {
            version: PROTOCOL_VERSION,
            ids: ids.to_vec(),
            since_seq: since,
            limit: 0,
        };
        let page = peer.call(req).await.unwrap();
        posts.extend(page.posts.iter().map(|p| p.post_id()));
        deletes.extend(page.deletes.iter().map(|d| d.body().post_id));
        since = page.next_seq;
        if !page.more {
            return (posts, deletes);
        }
    }
}

fn feed_ids(n: &Node) -> Vec<(String, Option<String>)> {
    n.feed(50)
        .unwrap()
        .into_iter()
        .map(|i| (i.id, i.text))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_reaches_every_copy_through_the_anchor_and_the_author() {
    let dir = tempfile::tempdir().unwrap();
    let (anchor, anchor_cs) = anchor(dir.path()).await;
    let [alice, bob, carol, dave] =
        ["alice", "bob", "carol", "dave"].map(|name| node(dir.path(), name));
    alice.store().create_circle("close", 1).unwrap();
    for m in [&bob, &carol, &dave] {
        alice.store().add_circle_member("close", pid(m), 1).unwrap();
    }
    bob.store().follow(pid(&alice), 1).unwrap();
    let old = alice
        .post(
            "the plan".into(),
            vec![],
            &VisibilityIntent::Circle("close".into()),
        )
        .unwrap();

    // Alice deposits; Bob, Carol and Dave each pull their copy from the anchor.
    let a = sync(&alice, &anchor_cs).await;
    a.transport().close().await;
    for n in [&bob, &carol, &dave] {
        let r = sync(n, &anchor_cs).await;
        r.transport().close().await;
        assert_eq!(
            feed_ids(n),
            vec![(old.post_id().to_hex(), Some("the plan".into()))]
        );
    }

    // Revoke Carol, then Dave: each re-encrypts and deletes the older copy.
    for m in [&carol, &dave] {
        let changed = alice
            .remove_from_circle("close", pid(m), Some(Revocation::Reencrypt))
            .unwrap();
        assert_eq!(changed, 1);
    }
    let feed = alice.feed(10).unwrap();
    assert_eq!(feed.len(), 1, "{feed:?}");
    let new_id = feed[0].id.clone();
    assert_ne!(new_id, old.post_id().to_hex());

    // Alice's revocation sync deposits the replacement and the deletes.
    let alice_run = alice.start(Some(LOOPBACK)).await.unwrap();
    let to_anchor = tokio::time::timeout(STEP, alice_run.connect(&anchor_cs))
        .await
        .unwrap()
        .unwrap();
    let report = alice_run.sync_with(&to_anchor).await.unwrap();
    assert_eq!(report.deposited, 3, "replacement + two deletes: {report:?}");
    let alice_cs: ConnectString = alice_run.connect_string().unwrap().parse().unwrap();

    // Carol and Dave cannot pull any copy from the anchor, even from scratch.
    for m in [&carol, &dave] {
        let r = m.start(Some(LOOPBACK)).await.unwrap();
        let p = tokio::time::timeout(STEP, r.connect(&anchor_cs))
            .await
            .unwrap()
            .unwrap();
        let (posts, deletes) = pull_all(&p, &[pid(m), pid(&alice)]).await;
        assert!(posts.is_empty(), "the anchor still serves {posts:?}");
        assert!(deletes.contains(&old.post_id()));
        r.transport().close().await;
    }

    // Carol's copy goes by the anchor's delete (she does not follow Alice).
    let r = sync(&carol, &anchor_cs).await;
    r.transport().close().await;
    assert!(carol.store().get_post(old.post_id()).unwrap().is_none());
    assert!(feed_ids(&carol).is_empty());

    // Dave's copy goes by pulling from Alice directly (no follow either).
    let r = sync(&dave, &alice_cs).await;
    r.transport().close().await;
    assert!(dave.store().get_post(old.post_id()).unwrap().is_none());
    assert!(feed_ids(&dave).is_empty());

    // Bob sees exactly one copy, the new one, readable.
    let r = sync(&bob, &anchor_cs).await;
    r.transport().close().await;
    assert_eq!(feed_ids(&bob), vec![(new_id, Some("the plan".into()))]);
    assert!(bob.store().get_post(old.post_id()).unwrap().is_none());

    alice_run.transport().close().await;
    anchor.stop(Duration::from_secs(2)).await;
}

/// A replacement supersedes the post it `replaces` in the feed even before
/// the author's delete of the old copy arrives.
#[test]
fn a_replacement_supersedes_the_old_copy_in_the_feed() {
    let dir = tempfile::tempdir().unwrap();
    let (alice, bob) = (node(dir.path(), "alice"), node(dir.path(), "bob"));
    let key = alice.posting_key().unwrap();
    let old = alice
        .post(
            "v1".into(),
            vec![],
            &VisibilityIntent::Direct(vec![pid(&bob)]),
        )
        .unwrap();
    let (replacement, _delete) =
        compose::reencrypt(&key, &old, &[pid(&bob)], now_ms(), &mut rand_core::OsRng).unwrap();
    for p in [&old, &replacement] {
        bob.store().insert_post(p, now_ms()).unwrap();
    }
    assert_eq!(
        feed_ids(&bob),
        vec![(replacement.post_id().to_hex(), Some("v1".into()))]
    );
    // Only the same author's replacement counts: Bob's "replacement" of
    // Alice's post does not hide it.
    let bob_key = bob.posting_key().unwrap();
    let mut forged =
        distsoc_protocol::messages::content::Post::new_public(pid(&bob), 5, "x", vec![]);
    forged.replaces = Some(replacement.post_id());
    let forged = distsoc_protocol::messages::content::SyncPost::new(
        &bob_key,
        forged.sign(&bob_key).unwrap(),
        distsoc_protocol::messages::content::PostVisibility::Public,
        None,
    );
    bob.store().insert_post(&forged, now_ms()).unwrap();
    assert_eq!(feed_ids(&bob).len(), 2);
}

/// Re-wrap (sync access list) through an anchor: the author's next sync
/// re-deposits the post with its visibility update; the anchor applies it,
/// so a dropped member who never fetched the post cannot pull it there,
/// while the remaining member still can.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rewrap_deposited_at_the_anchor_drops_the_member_there() {
    let dir = tempfile::tempdir().unwrap();
    let (anchor, anchor_cs) = anchor(dir.path()).await;
    let [alice, bob, dave] = ["alice", "bob", "dave"].map(|name| node(dir.path(), name));
    alice.store().create_circle("close", 1).unwrap();
    for m in [&bob, &dave] {
        alice.store().add_circle_member("close", pid(m), 1).unwrap();
    }
    let post = alice
        .post(
            "rewrapped".into(),
            vec![],
            &VisibilityIntent::Circle("close".into()),
        )
        .unwrap();
    let a = sync(&alice, &anchor_cs).await;
    a.transport().close().await;
    assert_eq!(
        alice
            .remove_from_circle("close", pid(&dave), Some(Revocation::Rewrap))
            .unwrap(),
        1
    );
    let a = alice.start(Some(LOOPBACK)).await.unwrap();
    let p = tokio::time::timeout(STEP, a.connect(&anchor_cs))
        .await
        .unwrap()
        .unwrap();
    let report = a.sync_with(&p).await.unwrap();
    assert_eq!(report.deposited, 1, "the updated post again: {report:?}");
    a.transport().close().await;

    for (m, sees) in [(&dave, false), (&bob, true)] {
        let r = m.start(Some(LOOPBACK)).await.unwrap();
        let p = tokio::time::timeout(STEP, r.connect(&anchor_cs))
            .await
            .unwrap()
            .unwrap();
        let (posts, _) = pull_all(&p, &[pid(m)]).await;
        assert_eq!(posts.contains(&post.post_id()), sees);
        r.transport().close().await;
    }
    anchor.stop(Duration::from_secs(2)).await;
}
