//! The node's DM client (`distsoc_node::dm`) against a real anchor: SQLite
//! store in a temp dir, QUIC on 127.0.0.1, real nodes with their own stores.
//! A DM to an offline recipient, idempotent retries, at-least-once delivery
//! with acknowledgements, FetchWait, authorization, and payloads that must not
//! open; DMs over the protocol's limits: the sender refuses them before
//! anything reaches the anchor, and a recipient never lets an
//! acknowledgement destroy a message it could not open.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use distsoc_anchor::config::AnchorConfig;
use distsoc_anchor::run::{Anchor, RunOptions};
use distsoc_net::identity::NetworkKey;
use distsoc_net::now_ms;
use distsoc_node::config::Config;
use distsoc_node::dm::{open_payload, DmClient, OpenError, OutgoingDm};
use distsoc_node::node::{Node, Running};
use distsoc_protocol::codec;
use distsoc_protocol::error::ErrorCode;
use distsoc_protocol::ids::{ChannelId, ConnectString, PostingId};
use distsoc_protocol::messages::content::{seal_post, PostBody, SyncPost, MAX_POST_TEXT_BYTES};
use distsoc_protocol::sign::SigningKey;

const LOOPBACK: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 0);

/// Bounds every network step of these tests.
const STEP: Duration = Duration::from_secs(20);

struct Net {
    dir: tempfile::TempDir,
    anchor: Anchor,
    anchor_cs: ConnectString,
}

async fn net() -> Net {
    net_with(|_| {}).await
}

/// [`net`] with the anchor's configuration adjusted by `adjust`.
async fn net_with(adjust: impl FnOnce(&mut AnchorConfig)) -> Net {
    let dir = tempfile::tempdir().unwrap();
    let key = NetworkKey::new(SigningKey::generate(&mut rand_core::OsRng));
    let mut cfg = AnchorConfig {
        listen: LOOPBACK,
        admin_listen: String::new(),
        metrics_listen: String::new(),
        ..AnchorConfig::default()
    };
    adjust(&mut cfg);
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
    let client = tokio::time::timeout(STEP, DmClient::connect(&running, &net.anchor_cs))
        .await
        .unwrap()
        .unwrap();
    (running, client)
}

fn texts(received: &[distsoc_node::dm::Received]) -> Vec<String> {
    received
        .iter()
        .map(|r| r.content.as_ref().unwrap().text.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dm_to_an_offline_recipient_is_read_once_it_comes_back() {
    let net = net().await;
    let (alice, bob) = (node(&net, "alice"), node(&net, "bob"));

    // Bob has never been online; Alice sends through the anchor.
    let (alice_run, alice_dm) = online(&net, &alice).await;
    let channel = alice_dm.channel_with(bob.node_id()).await.unwrap();
    assert_eq!(channel.peer, bob.node_id());
    let out = alice_dm.seal(bob.node_id(), "see you at 8").unwrap();
    let first = alice_dm.enqueue(channel.id, &out).await.unwrap();
    // A retry of the same message (same clientMessageId) stores nothing new.
    let retry = alice_dm.enqueue(channel.id, &out).await.unwrap();
    assert_eq!(first.message_id, retry.message_id);
    let second = alice_dm.send(bob.node_id(), "bring the map").await.unwrap();
    assert!(second.message_id > first.message_id);
    assert_eq!(second.channel, channel.id, "one channel per pair");
    // The anchor holds ciphertext only.
    assert!(!String::from_utf8_lossy(&out.payload).contains("see you at 8"));
    // Alice's own queue in the channel is empty.
    assert!(alice_dm
        .fetch(Some(channel.id), 0)
        .await
        .unwrap()
        .messages
        .is_empty());

    // Bob comes online: the channel lists two waiting messages.
    let (bob_run, bob_dm) = online(&net, &bob).await;
    let channels = bob_dm.list_channels().await.unwrap();
    assert_eq!(channels.len(), 1);
    assert_eq!(
        (channels[0].channel_id, channels[0].peer, channels[0].queued),
        (channel.id, alice.node_id(), 2)
    );
    // Without ack they stay queued (at-least-once)...
    let peek = bob_dm.read_all(false).await.unwrap();
    assert_eq!(texts(&peek), ["see you at 8", "bring the map"]);
    assert!(peek.iter().all(|r| r.sender == alice.node_id()));
    // ...and come again; with ack they are gone.
    let read = bob_dm.read_all(true).await.unwrap();
    assert_eq!(texts(&read), ["see you at 8", "bring the map"]);
    assert!(bob_dm.read_all(true).await.unwrap().is_empty());
    assert_eq!(bob_dm.list_channels().await.unwrap()[0].queued, 0);

    alice_run.transport().close().await;
    bob_run.transport().close().await;
    net.anchor.stop(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_wait_wakes_on_a_new_dm() {
    let net = net().await;
    let (alice, bob) = (node(&net, "alice"), node(&net, "bob"));
    let (alice_run, alice_dm) = online(&net, &alice).await;
    let (bob_run, bob_dm) = online(&net, &bob).await;
    let channel = bob_dm.channel_with(alice.node_id()).await.unwrap();
    let started = Instant::now();
    let waiter = tokio::spawn({
        let bob_dm = bob_dm.clone();
        async move {
            bob_dm
                .fetch_wait(Some(channel.id), 0, Duration::from_secs(30))
                .await
        }
    });
    // Sent while the wait is held (or just before it registered: both
    // deliver).
    alice_dm.send(bob.node_id(), "ping").await.unwrap();
    let page = tokio::time::timeout(STEP, waiter)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(texts(&page.messages), ["ping"]);
    assert!(started.elapsed() < STEP, "woken, not timed out");
    bob_dm
        .ack(Some(channel.id), page.last_message_id())
        .await
        .unwrap();
    assert!(bob_dm
        .fetch(Some(channel.id), 0)
        .await
        .unwrap()
        .messages
        .is_empty());
    alice_run.transport().close().await;
    bob_run.transport().close().await;
    net.anchor.stop(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outsiders_are_refused_and_bad_payloads_do_not_open() {
    let net = net().await;
    let (alice, bob, mallory) = (
        node(&net, "alice"),
        node(&net, "bob"),
        node(&net, "mallory"),
    );
    let (alice_run, alice_dm) = online(&net, &alice).await;
    let (mallory_run, mallory_dm) = online(&net, &mallory).await;
    let channel = alice_dm.channel_with(bob.node_id()).await.unwrap();
    // Mallory cannot read or write the Alice–Bob channel, nor probe ids.
    let e = mallory_dm.fetch(Some(channel.id), 0).await.unwrap_err();
    assert_eq!(e.remote_code(), Some(ErrorCode::Unauthorized));
    let out = mallory_dm.seal(bob.node_id(), "hi").unwrap();
    let e = mallory_dm.enqueue(channel.id, &out).await.unwrap_err();
    assert_eq!(e.remote_code(), Some(ErrorCode::Unauthorized));
    let e = mallory_dm
        .fetch(Some(ChannelId([0x5a; 16])), 0)
        .await
        .unwrap_err();
    assert_eq!(e.remote_code(), Some(ErrorCode::Unauthorized));
    // Local refusals.
    assert!(alice_dm.channel_with(alice.node_id()).await.is_err());
    assert!(alice_dm.seal(bob.node_id(), "").is_err());

    // Payloads: Alice's DM to Bob, opened with the wrong keys, from the
    // wrong sender, tampered, or not a DM at all.
    let dm = alice_dm.seal(bob.node_id(), "for bob").unwrap();
    let bob_seeds = bob.reading_seeds().unwrap();
    let ok = open_payload(&bob_seeds, alice.node_id(), &dm.payload).unwrap();
    assert_eq!(ok.text, "for bob");
    assert_eq!(ok.post_id, dm.post_id);
    // The sender keeps a readable copy.
    let alice_seeds = alice.reading_seeds().unwrap();
    assert_eq!(
        open_payload(&alice_seeds, alice.node_id(), &dm.payload)
            .unwrap()
            .text,
        "for bob"
    );
    let mallory_seeds = mallory.reading_seeds().unwrap();
    assert_eq!(
        open_payload(&mallory_seeds, alice.node_id(), &dm.payload),
        Err(OpenError::NotForUs)
    );
    assert!(matches!(
        open_payload(&bob_seeds, mallory.node_id(), &dm.payload),
        Err(OpenError::SenderMismatch { .. })
    ));
    let mut tampered = dm.payload.clone();
    let n = tampered.len();
    tampered[n - 20] ^= 0x01;
    assert!(open_payload(&bob_seeds, alice.node_id(), &tampered).is_err());
    assert!(matches!(
        open_payload(&bob_seeds, alice.node_id(), b"plain text, not a DM"),
        Err(OpenError::Malformed(_))
    ));

    alice_run.transport().close().await;
    mallory_run.transport().close().await;
    net.anchor.stop(Duration::from_secs(5)).await;
}

/// Store-and-forward of posts: Alice deposits her posts at the anchor when
/// she syncs with it (public and encrypted), then goes offline; Bob, who has
/// never met Alice, gets the post sealed for him from the anchor by
/// recipient-match pull and reads it. A second sync deposits nothing again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posts_deposited_at_the_anchor_reach_an_offline_recipient() {
    use distsoc_node::compose::VisibilityIntent;
    use distsoc_protocol::ids::PostingId;

    let net = net().await;
    let (alice, bob) = (node(&net, "alice"), node(&net, "bob"));
    alice
        .post("hello, anyone".into(), vec![], &VisibilityIntent::Public)
        .unwrap();
    let sealed = alice
        .post(
            "for Bob only".into(),
            vec![],
            &VisibilityIntent::Direct(vec![PostingId(bob.node_id().0)]),
        )
        .unwrap();

    let alice_run = alice.start(Some(LOOPBACK)).await.unwrap();
    let anchor = tokio::time::timeout(STEP, alice_run.connect(&net.anchor_cs))
        .await
        .unwrap()
        .unwrap();
    let report = alice_run.sync_with(&anchor).await.unwrap();
    assert_eq!(report.deposited, 2, "{report:?}");
    let again = alice_run.sync_with(&anchor).await.unwrap();
    assert_eq!(again.deposited, 0, "the cursor remembers: {again:?}");
    alice_run.transport().close().await;
    drop(alice_run);

    // Bob follows nobody and never saw Alice: recipient match only.
    let bob_run = bob.start(Some(LOOPBACK)).await.unwrap();
    let anchor = tokio::time::timeout(STEP, bob_run.connect(&net.anchor_cs))
        .await
        .unwrap()
        .unwrap();
    let report = bob_run.sync_with(&anchor).await.unwrap();
    assert_eq!(
        report.new_posts, 1,
        "only the post sealed for Bob: {report:?}"
    );
    let feed = bob.feed(10).unwrap();
    assert_eq!(feed.len(), 1);
    assert_eq!(feed[0].id, sealed.post_id().to_hex());
    assert!(feed[0].encrypted);
    assert_eq!(feed[0].text.as_deref(), Some("for Bob only"));
    bob_run.transport().close().await;
    net.anchor.stop(Duration::from_secs(2)).await;
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
        rotation: None,
        archive: None,
        group: None,
    };
    let to = [PostingId(bob.node_id().0), PostingId(alice.node_id().0)];
    let (post, visibility) = seal_post(&key, now_ms(), &body, &to, &mut rand_core::OsRng).unwrap();
    let sync = SyncPost::new(&key, post, visibility, None);
    let bad = OutgoingDm {
        recipient: bob.node_id(),
        payload: codec::canonical_of(&sync),
        client_message_id: [7; 16],
        post_id: sync.post_id(),
        sent_at_ms: now_ms(),
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_100_message_thread_reads_back_from_the_archive_after_a_restart() {
    // A chatty thread: the anchor's per-identity rate limit is not under test.
    let net = net_with(|c| {
        c.rate_limit_per_second = 1000;
        c.rate_limit_burst = 1000;
        c.ip_rate_limit_per_second = 1000;
        c.ip_rate_limit_burst = 1000;
        // `send` asks for the channel each time.
        c.channel_create_per_minute = 1000;
        c.channel_create_burst = 1000;
        c.channel_create_ip_per_minute = 1000;
        c.channel_create_ip_burst = 1000;
    })
    .await;
    let (alice, bob) = (node(&net, "alice"), node(&net, "bob"));
    let (alice_run, alice_dm) = online(&net, &alice).await;
    let (bob_run, bob_dm) = online(&net, &bob).await;
    let mut sent: Vec<(bool, String)> = Vec::new(); // (by alice, text)
    for i in 0..100 {
        let text = format!("message {i:03}");
        let by_alice = (i / 5) % 2 == 0;
        let (client, to) = if by_alice {
            (&alice_dm, bob.node_id())
        } else {
            (&bob_dm, alice.node_id())
        };
        tokio::time::timeout(STEP, client.send(to, &text))
            .await
            .unwrap()
            .unwrap();
        sent.push((by_alice, text));
        if i % 10 == 9 {
            alice_dm.read_all(true).await.unwrap();
            bob_dm.read_all(true).await.unwrap();
        }
    }
    alice_run.transport().close().await;
    bob_run.transport().close().await;
    net.anchor.stop(Duration::from_secs(5)).await;

    // Reopened from disk, each side has the whole thread.
    for (me, peer, am_alice) in [(&alice, &bob, true), (&bob, &alice, false)] {
        let node = Node::open(me.dir()).unwrap();
        let thread = node
            .store()
            .dm_history(&node.archive_key(), peer.node_id(), 1000)
            .unwrap();
        assert_eq!(thread.len(), 100);
        assert!(thread
            .windows(2)
            .all(|w| w[0].sent_at_ms <= w[1].sent_at_ms));
        // Each side's messages in the order they were written, with the
        // right direction.
        for mine in [true, false] {
            let want: Vec<&str> = sent
                .iter()
                .filter(|(by_alice, _)| (*by_alice == am_alice) == mine)
                .map(|(_, t)| t.as_str())
                .collect();
            let got: Vec<&str> = thread
                .iter()
                .filter(|m| m.outgoing == mine)
                .map(|m| m.text.as_str())
                .collect();
            assert_eq!(got, want);
        }
        // The last 10 only, when asked.
        let tail = node
            .store()
            .dm_history(&node.archive_key(), peer.node_id(), 10)
            .unwrap();
        assert_eq!(tail, thread[90..].to_vec());
        // Sealed at rest: no text in the store's files.
        drop(node);
        for entry in std::fs::read_dir(me.dir()).unwrap() {
            let bytes = std::fs::read(entry.unwrap().path()).unwrap_or_default();
            assert!(!String::from_utf8_lossy(&bytes).contains("message 0"));
        }
        // Another identity's key does not open it.
        let other = distsoc_node::store::archive_key(&[9; 32]);
        assert!(Node::open(me.dir())
            .unwrap()
            .store()
            .dm_history(&other, peer.node_id(), 10)
            .is_err());
    }
}
