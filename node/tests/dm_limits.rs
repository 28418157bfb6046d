//! DMs over the protocol's limits, against a real anchor on 127.0.0.1: the
//! sender refuses them before anything reaches the anchor, and a recipient
//! never lets an acknowledgement destroy a message it could not open.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::net::SocketAddr;
use std::time::Duration;

use distsoc_anchor::config::AnchorConfig;
use distsoc_anchor::run::{Anchor, RunOptions};
use distsoc_node::config::Config;
use distsoc_node::dm::{DmClient, OutgoingDm};
use distsoc_node::identity::NetworkKey;
use distsoc_node::node::{now_ms, Node, Running};
use distsoc_protocol::codec;
use distsoc_protocol::ids::{ConnectString, PostingId};
use distsoc_protocol::messages::content::{seal_post, PostBody, SyncPost, MAX_POST_TEXT_BYTES};
use distsoc_protocol::sign::SigningKey;

const LOOPBACK: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 0);

struct Net {
    dir: tempfile::TempDir,
    anchor: Anchor,
    anchor_cs: ConnectString,
}

async fn net() -> Net {
    let dir = tempfile::tempdir().unwrap();
    let key = NetworkKey::new(SigningKey::generate(&mut rand_core::OsRng));
    let cfg = AnchorConfig {
        listen: LOOPBACK,
        admin_listen: String::new(),
        metrics_listen: String::new(),
        ..AnchorConfig::default()
    };
    let opts = RunOptions {
        data_dir: dir.path().join("anchor"),
        drain_timeout: Duration::from_secs(5),
    };
    std::fs::create_dir_all(&opts.data_dir).unwrap();
    let anchor = Anchor::start(&key, &cfg, &opts).await.unwrap();
    let anchor_cs = format!("{}@{}", key.node_id(), anchor.local_addr().unwrap())
        .parse()
        .unwrap();
    Net {
        dir,
        anchor,
        anchor_cs,
    }
}

fn node(net: &Net, name: &str) -> Node {
    let config = Config {
        listen: LOOPBACK,
        ..Config::default()
    };
    Node::init(&net.dir.path().join(name), Some(config)).unwrap()
}

async fn online(net: &Net, node: &Node) -> (Running, DmClient) {
    let running = node.start(Some(LOOPBACK)).await.unwrap();
    let client = tokio::time::timeout(
        Duration::from_secs(20),
        DmClient::connect(&running, &net.anchor_cs),
    )
    .await
    .unwrap()
    .unwrap();
    (running, client)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_long_dm_is_refused_before_the_anchor_sees_anything() {
    let net = net().await;
    let (alice, bob) = (node(&net, "alice"), node(&net, "bob"));
    let (alice_run, alice_dm) = online(&net, &alice).await;
    let err = alice_dm
        .send(bob.node_id(), &"x".repeat(MAX_POST_TEXT_BYTES + 1))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("text"), "{err}");
    assert!(err.contains(&MAX_POST_TEXT_BYTES.to_string()), "{err}");
    // No channel was even created.
    assert!(alice_dm.list_channels().await.unwrap().is_empty());
    // At the limit it goes.
    alice_dm
        .send(bob.node_id(), &"x".repeat(MAX_POST_TEXT_BYTES))
        .await
        .unwrap();
    alice_run.transport().close().await;
    net.anchor.stop(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undecryptable_dm_is_kept_before_it_is_acknowledged() {
    let net = net().await;
    let (alice, bob) = (node(&net, "alice"), node(&net, "bob"));
    let (alice_run, alice_dm) = online(&net, &alice).await;
    let channel = alice_dm.channel_with(bob.node_id()).await.unwrap();

    // What an older sender produced: a sealed body over the text limit.
    let key = alice.posting_key().unwrap();
    let body = PostBody {
        text: "x".repeat(MAX_POST_TEXT_BYTES + 1),
        attachments: Vec::new(),
    };
    let to = [PostingId(bob.node_id().0), PostingId(alice.node_id().0)];
    let (post, visibility) = seal_post(&key, now_ms(), &body, &to, &mut rand_core::OsRng).unwrap();
    let sync = SyncPost::new(&key, post, visibility, None);
    let bad = OutgoingDm {
        recipient: bob.node_id(),
        payload: codec::canonical_of(&sync),
        client_message_id: [7; 16],
        post_id: sync.post_id(),
    };
    alice_dm.enqueue(channel.id, &bad).await.unwrap();
    alice_dm
        .send(bob.node_id(), "and a readable one")
        .await
        .unwrap();

    let (bob_run, bob_dm) = online(&net, &bob).await;
    let read = bob_dm.read_all(true).await.unwrap();
    assert_eq!(read.len(), 2);
    assert!(read[0].content.is_err(), "{:?}", read[0].content);
    assert_eq!(read[1].content.as_ref().unwrap().text, "and a readable one");
    // Acknowledged at the anchor, so gone there ...
    assert_eq!(bob_dm.list_channels().await.unwrap()[0].queued, 0);
    // ... but kept here, payload and all, with the reason.
    let kept = bob.store().undecryptable_dms().unwrap();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].payload, bad.payload);
    assert_eq!(kept[0].sender, alice.node_id());
    assert_eq!(kept[0].channel, Some(channel.id));
    assert!(kept[0].reason.contains("text"), "{}", kept[0].reason);

    alice_run.transport().close().await;
    bob_run.transport().close().await;
    net.anchor.stop(Duration::from_secs(5)).await;
}
