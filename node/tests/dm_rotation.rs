//! Rotating DM ids (`schema/README.md` §9.1) through the `distsoc-node`
//! binary against a real anchor (SQLite store in a temp dir, QUIC on
//! 127.0.0.1): a rotated thread both ways reads back in order, what the
//! anchor stores ties no two rotated messages together nor to the people in
//! the thread, a message dropped at the anchor does not break the thread,
//! and the archive shows the whole thread after the anchor restarts.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use distsoc_anchor::config::AnchorConfig;
use distsoc_anchor::run::{Anchor, RunOptions};
use distsoc_net::identity::NetworkKey;
use distsoc_protocol::codec;
use distsoc_protocol::limits::MAX_MAILBOX_PAYLOAD_BYTES;
use distsoc_protocol::messages::content::SyncPost;
use distsoc_protocol::sign::SigningKey;
use serde_json::Value;

const LOOPBACK: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 0);

struct Net {
    dir: tempfile::TempDir,
    key: NetworkKey,
    anchor: Option<Anchor>,
    addr: SocketAddr,
}

impl Net {
    async fn start() -> Net {
        let dir = tempfile::tempdir().unwrap();
        let key = NetworkKey::new(SigningKey::generate(&mut rand_core::OsRng));
        let anchor = start_anchor(&key, dir.path(), LOOPBACK).await;
        let addr = anchor.local_addr().unwrap();
        Net {
            dir,
            key,
            anchor: Some(anchor),
            addr,
        }
    }

    fn anchor_cs(&self) -> String {
        format!("{}@{}", self.key.node_id(), self.addr)
    }

    /// The anchor's SQLite database, opened beside the running anchor.
    fn anchor_db(&self) -> rusqlite::Connection {
        let c = rusqlite::Connection::open(self.dir.path().join("anchor/anchor.sqlite")).unwrap();
        c.busy_timeout(Duration::from_secs(10)).unwrap();
        c
    }

    async fn restart_anchor(&mut self) {
        self.anchor
            .take()
            .unwrap()
            .stop(Duration::from_secs(5))
            .await;
        self.anchor = Some(start_anchor(&self.key, self.dir.path(), self.addr).await);
    }

    async fn stop(mut self) {
        if let Some(a) = self.anchor.take() {
            a.stop(Duration::from_secs(5)).await;
        }
    }

    /// A node initialised by the binary; returns its directory and NodeId.
    async fn node(&self, name: &str) -> (PathBuf, String) {
        let dir = self.dir.path().join(name);
        let v = run(&dir, &["init", "--listen", "127.0.0.1:0"]).await;
        (dir, v["node_id"].as_str().unwrap().to_string())
    }
}

async fn start_anchor(key: &NetworkKey, dir: &Path, listen: SocketAddr) -> Anchor {
    let cfg = AnchorConfig {
        listen,
        admin_listen: String::new(),
        metrics_listen: String::new(),
        ..AnchorConfig::default()
    };
    let opts = RunOptions {
        data_dir: dir.join("anchor"),
        drain_timeout: Duration::from_secs(5),
    };
    std::fs::create_dir_all(&opts.data_dir).unwrap();
    Anchor::start(key, &cfg, &opts).await.unwrap()
}

/// `distsoc-node --data-dir DIR --json ARGS…`, which must succeed, off the
/// runtime's threads (the anchor runs on them).
async fn run(dir: &Path, args: &[&str]) -> Value {
    let dir = dir.to_path_buf();
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        common::cli(&dir, &args)
    })
    .await
    .unwrap()
}

async fn send(net: &Net, from: &Path, to: &str, text: &str) -> Value {
    run(
        from,
        &["dm", "send", "--anchor", &net.anchor_cs(), "--to", to, text],
    )
    .await
}

/// `dm read`: the texts, each with whether it came over a rotated thread.
async fn read(net: &Net, dir: &Path) -> Vec<(String, bool)> {
    let v = run(dir, &["dm", "read", "--anchor", &net.anchor_cs()]).await;
    v.as_array()
        .unwrap()
        .iter()
        .map(|m| {
            assert!(m.get("error").is_none(), "unreadable DM: {m}");
            (
                m["text"].as_str().unwrap().to_string(),
                m["rotated"].as_bool().unwrap(),
            )
        })
        .collect()
}

/// `dm history PEER`: (outgoing, text), oldest first.
async fn history(dir: &Path, peer: &str) -> Vec<(bool, String)> {
    let v = run(dir, &["dm", "history", peer, "--limit", "1000"]).await;
    v.as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["outgoing"].as_bool().unwrap(),
                m["text"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The 32 bytes of a hex NodeId.
fn id_bytes(hex: &str) -> Vec<u8> {
    hex.parse::<distsoc_protocol::ids::NodeId>()
        .unwrap()
        .0
        .to_vec()
}

fn rotated(texts: &[&str]) -> Vec<(String, bool)> {
    texts.iter().map(|t| (t.to_string(), true)).collect()
}

/// Starts the thread both ways: each side's first message goes on the
/// identity channel and carries the seed of its chain.
async fn handshake(net: &Net, a: (&Path, &str), b: (&Path, &str)) {
    let first = send(net, a.0, b.1, "hello B").await;
    assert_eq!(first["chain_n"], 0);
    assert_eq!(first["send_id"], a.1);
    assert_eq!(read(net, b.0).await, [("hello B".to_string(), false)]);
    let reply = send(net, b.0, a.1, "hello A").await;
    assert_eq!(reply["chain_n"], 0);
    assert_eq!(read(net, a.0).await, [("hello A".to_string(), false)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_thread_reads_back_in_order_both_ways_and_after_a_restart() {
    let mut net = Net::start().await;
    let (a, a_id) = net.node("alice").await;
    let (b, b_id) = net.node("bob").await;
    handshake(&net, (&a, &a_id), (&b, &b_id)).await;

    let mut expected = vec![
        (true, "hello B".to_string()),
        (false, "hello A".to_string()),
    ];
    // Five rounds of two messages each way: 10 rotated messages per
    // direction, each read in one go (the window slides within a read).
    for round in 1..=5 {
        let (a1, a2) = (format!("a{round}.1"), format!("a{round}.2"));
        for (i, t) in [&a1, &a2].into_iter().enumerate() {
            let s = send(&net, &a, &b_id, t).await;
            assert_eq!(s["chain_n"], 2 * (round - 1) + i as u64 + 1, "{s}");
            assert_ne!(s["send_id"], a_id.as_str());
            assert_ne!(s["recv_id"], b_id.as_str());
        }
        assert_eq!(read(&net, &b).await, rotated(&[&a1, &a2]));
        let (b1, b2) = (format!("b{round}.1"), format!("b{round}.2"));
        send(&net, &b, &a_id, &b1).await;
        send(&net, &b, &a_id, &b2).await;
        assert_eq!(read(&net, &a).await, rotated(&[&b1, &b2]));
        expected.extend([(true, a1), (true, a2), (false, b1), (false, b2)]);
    }
    // Nothing comes twice.
    assert!(read(&net, &a).await.is_empty());
    assert!(read(&net, &b).await.is_empty());

    // The anchor restarts (same store, same address); every node command
    // is a new process: the chains continue from the nodes' stores.
    net.restart_anchor().await;
    send(&net, &a, &b_id, "after the restart").await;
    assert_eq!(read(&net, &b).await, rotated(&["after the restart"]));
    send(&net, &b, &a_id, "still here").await;
    assert_eq!(read(&net, &a).await, rotated(&["still here"]));
    expected.extend([
        (true, "after the restart".to_string()),
        (false, "still here".to_string()),
    ]);

    // Both archives hold the whole thread, in order, under the peer's
    // NodeId, whatever ids it travelled under.
    let mirrored: Vec<(bool, String)> = expected.iter().map(|(o, t)| (!o, t.clone())).collect();
    assert_eq!(history(&a, &b_id).await, expected);
    assert_eq!(history(&b, &a_id).await, mirrored);
    net.stop().await;
}

/// What the anchor stored for one message.
#[derive(Debug)]
struct Stored {
    channel: Vec<u8>,
    sender: Vec<u8>,
    recipient: Vec<u8>,
    members: [Vec<u8>; 2],
    author: [u8; 32],
    envelope: Vec<[u8; 32]>,
}

fn stored_messages(db: &rusqlite::Connection) -> Vec<Stored> {
    let mut st = db
        .prepare(
            "SELECT m.channel, m.sender, m.recipient, c.member_a, c.member_b, m.payload
               FROM messages m JOIN channels c ON c.id = m.channel ORDER BY m.id",
        )
        .unwrap();
    st.query_map([], |r| {
        Ok((
            r.get::<_, Vec<u8>>(0)?,
            r.get::<_, Vec<u8>>(1)?,
            r.get::<_, Vec<u8>>(2)?,
            r.get::<_, Vec<u8>>(3)?,
            r.get::<_, Vec<u8>>(4)?,
            r.get::<_, Vec<u8>>(5)?,
        ))
    })
    .unwrap()
    .map(|row| {
        let (channel, sender, recipient, ma, mb, payload) = row.unwrap();
        let sync: SyncPost =
            codec::from_canonical("payload", &payload, MAX_MAILBOX_PAYLOAD_BYTES).unwrap();
        sync.validate(None).unwrap();
        Stored {
            channel,
            sender,
            recipient,
            members: [ma, mb],
            author: sync.post.body().author.0,
            envelope: sync
                .visibility
                .recipients()
                .iter()
                .map(|w| w.recipient)
                .collect(),
        }
    })
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_anchor_sees_no_two_rotated_messages_share_an_id() {
    let net = Net::start().await;
    let (a, a_id) = net.node("alice").await;
    let (b, b_id) = net.node("bob").await;
    handshake(&net, (&a, &a_id), (&b, &b_id)).await;
    let texts_a: Vec<String> = (1..=10).map(|i| format!("from A #{i}")).collect();
    let texts_b: Vec<String> = (1..=10).map(|i| format!("from B #{i}")).collect();
    for i in 0..10 {
        send(&net, &a, &b_id, &texts_a[i]).await;
        send(&net, &b, &a_id, &texts_b[i]).await;
    }

    // Before anyone reads: the anchor holds the 20 rotated messages.
    let stored = stored_messages(&net.anchor_db());
    assert_eq!(stored.len(), 20);
    let people: HashSet<Vec<u8>> = [&a_id, &b_id].iter().map(|h| id_bytes(h)).collect();
    let mut seen: HashSet<Vec<u8>> = HashSet::new();
    let mut fresh = |what: &str, id: &[u8]| {
        assert!(!people.contains(id), "{what} is Alice's or Bob's NodeId");
        assert!(seen.insert(id.to_vec()), "{what} {id:02x?} appears twice");
    };
    for m in &stored {
        fresh("channel", &m.channel);
        // One sender and one recipient per message: the channel's members.
        let mut members = [m.sender.clone(), m.recipient.clone()];
        members.sort();
        assert_eq!(members, m.members);
        fresh("sender", &m.sender);
        fresh("recipient", &m.recipient);
        // The post's author is the sender, and the envelope names exactly
        // the two members.
        assert_eq!(m.author.to_vec(), m.sender);
        let mut env: Vec<Vec<u8>> = m.envelope.iter().map(|r| r.to_vec()).collect();
        env.sort();
        assert_eq!(env, m.members);
    }
    // 20 channels + 20 senders + 20 recipients, all distinct.
    assert_eq!(seen.len(), 60);
    // No channel of the anchor has Alice or Bob in it except the identity
    // channel of their first messages.
    let db = net.anchor_db();
    let with_people: i64 = db
        .query_row(
            "SELECT count(*) FROM channels WHERE member_a IN (?1, ?2) OR member_b IN (?1, ?2)",
            rusqlite::params![people.iter().next().unwrap(), people.iter().nth(1).unwrap()],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(with_people, 1);
    let channels: i64 = db
        .query_row("SELECT count(*) FROM channels", [], |r| r.get(0))
        .unwrap();
    assert_eq!(channels, 21);

    // And both read their thread, in order.
    let want_b: Vec<&str> = texts_a.iter().map(String::as_str).collect();
    let want_a: Vec<&str> = texts_b.iter().map(String::as_str).collect();
    assert_eq!(read(&net, &b).await, rotated(&want_b));
    assert_eq!(read(&net, &a).await, rotated(&want_a));
    net.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_dropped_at_the_anchor_does_not_break_the_thread() {
    let net = Net::start().await;
    let (a, a_id) = net.node("alice").await;
    let (b, b_id) = net.node("bob").await;
    handshake(&net, (&a, &a_id), (&b, &b_id)).await;

    send(&net, &a, &b_id, "one").await;
    let two = send(&net, &a, &b_id, "two (lost)").await;
    send(&net, &a, &b_id, "three").await;
    // The anchor loses message two.
    let lost = id_bytes(two["recv_id"].as_str().unwrap());
    let deleted = net
        .anchor_db()
        .execute("DELETE FROM messages WHERE recipient = ?1", [&lost])
        .unwrap();
    assert_eq!(deleted, 1);
    assert_eq!(read(&net, &b).await, rotated(&["one", "three"]));
    send(&net, &a, &b_id, "four").await;
    assert_eq!(read(&net, &b).await, rotated(&["four"]));

    // Nine lost in a row are still within the window of ten.
    let mut lost = Vec::new();
    for i in 0..9 {
        lost.push(send(&net, &a, &b_id, &format!("lost {i}")).await);
    }
    send(&net, &a, &b_id, "five").await;
    let db = net.anchor_db();
    for s in &lost {
        let id = id_bytes(s["recv_id"].as_str().unwrap());
        assert_eq!(
            db.execute("DELETE FROM messages WHERE recipient = ?1", [&id])
                .unwrap(),
            1
        );
    }
    assert_eq!(read(&net, &b).await, rotated(&["five"]));

    // Ten lost in a row put the thread outside the window: the next message
    // is not found, until the sender re-seeds from its NodeId.
    for i in 0..10 {
        let s = send(&net, &a, &b_id, &format!("gone {i}")).await;
        let id = id_bytes(s["recv_id"].as_str().unwrap());
        assert_eq!(
            db.execute("DELETE FROM messages WHERE recipient = ?1", [&id])
                .unwrap(),
            1
        );
    }
    send(&net, &a, &b_id, "beyond the window").await;
    assert!(read(&net, &b).await.is_empty());
    let reseed = run(
        &a,
        &[
            "dm",
            "send",
            "--anchor",
            &net.anchor_cs(),
            "--to",
            &b_id,
            "--reseed",
            "re-seeded",
        ],
    )
    .await;
    assert_eq!(reseed["chain_n"], 0);
    send(&net, &a, &b_id, "back on track").await;
    assert_eq!(
        read(&net, &b).await,
        [
            ("re-seeded".to_string(), false),
            ("back on track".to_string(), true)
        ]
    );

    let got: Vec<String> = history(&b, &a_id)
        .await
        .into_iter()
        .filter(|(out, _)| !out)
        .map(|(_, t)| t)
        .collect();
    assert_eq!(
        got,
        [
            "hello B",
            "one",
            "three",
            "four",
            "five",
            "re-seeded",
            "back on track"
        ]
    );
    net.stop().await;
}

/// (wall s, user+sys CPU s) of one binary run.
async fn timed(dir: &Path, args: &[&str]) -> (f64, f64) {
    let dir = dir.to_path_buf();
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let out = std::process::Command::new("/usr/bin/time")
            .args(["-f", "TIMED %e %U %S"])
            .arg(common::BIN)
            .arg("--data-dir")
            .arg(&dir)
            .arg("--json")
            .args(&args)
            .env("RUST_LOG", "warn")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let err = String::from_utf8_lossy(&out.stderr);
        let line = err.lines().find(|l| l.starts_with("TIMED")).unwrap();
        let v: Vec<f64> = line
            .split_whitespace()
            .skip(1)
            .map(|x| x.parse().unwrap())
            .collect();
        (v[0], v[1] + v[2])
    })
    .await
    .unwrap()
}

/// The cost of rotation, printed (`--no-capture`) for docs/BENCHMARKS.md:
/// wall and CPU (user + system, of the `distsoc-node` process) of each
/// command. The CPU bounds are loose (10x the figures measured): they catch
/// a read that does far more work than its window, not a slow machine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_a_rotated_thread_costs() {
    let net = Net::start().await;
    let (a, a_id) = net.node("alice").await;
    let (b, b_id) = net.node("bob").await;
    let cs = net.anchor_cs();
    let read = ["dm", "read", "--anchor", cs.as_str()];
    let none = timed(&b, &read).await;
    eprintln!(
        "COST dm read, no thread: wall {:.2} s, cpu {:.2} s",
        none.0, none.1
    );
    let first = timed(&a, &["dm", "send", "--anchor", &cs, "--to", &b_id, "first"]).await;
    eprintln!(
        "COST dm send, identity channel: wall {:.2} s, cpu {:.2} s",
        first.0, first.1
    );
    timed(&b, &read).await;
    let mut sends = Vec::new();
    for i in 0..10 {
        let text = format!("m{i}");
        sends.push(timed(&a, &["dm", "send", "--anchor", &cs, "--to", &b_id, &text]).await);
    }
    let mean = |v: &[(f64, f64)]| {
        let n = v.len() as f64;
        (
            v.iter().map(|x| x.0).sum::<f64>() / n,
            v.iter().map(|x| x.1).sum::<f64>() / n,
        )
    };
    let send = mean(&sends);
    eprintln!(
        "COST dm send, rotated (mean of 10): wall {:.2} s, cpu {:.3} s",
        send.0, send.1
    );
    let ten = timed(&b, &read).await;
    eprintln!(
        "COST dm read, 10 rotated messages: wall {:.2} s, cpu {:.2} s",
        ten.0, ten.1
    );
    let mut empties = Vec::new();
    for _ in 0..5 {
        empties.push(timed(&b, &read).await);
    }
    let empty = mean(&empties);
    eprintln!(
        "COST dm read, one thread, nothing new (mean of 5): wall {:.2} s, cpu {:.3} s",
        empty.0, empty.1
    );
    assert!(
        send.1 < 0.5 && ten.1 < 5.0 && empty.1 < 1.0,
        "{send:?} {ten:?} {empty:?}"
    );
    assert_eq!(history(&b, &a_id).await.len(), 11);
    net.stop().await;
}

/// The bundle carries the thread state: an identity exported mid-thread
/// and imported into a fresh directory goes on reading the peer's rotated
/// messages and sending on its own chain, with no new first message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_imported_identity_goes_on_with_its_rotated_threads() {
    let net = Net::start().await;
    let (a, a_id) = net.node("alice").await;
    let (b, b_id) = net.node("bob").await;
    handshake(&net, (&a, &a_id), (&b, &b_id)).await;
    send(&net, &a, &b_id, "a1").await;
    assert_eq!(read(&net, &b).await, rotated(&["a1"]));
    let before = send(&net, &b, &a_id, "b1").await;
    assert_eq!(read(&net, &a).await, rotated(&["b1"]));

    // Bob moves to a new machine.
    let pass = net.dir.path().join("pass");
    std::fs::write(&pass, "a long enough passphrase").unwrap();
    let file = net.dir.path().join("bob.bundle");
    let (file_s, pass_s) = (file.to_str().unwrap(), pass.to_str().unwrap());
    run(
        &b,
        &["export", "--out", file_s, "--passphrase-file", pass_s],
    )
    .await;
    let b2 = net.dir.path().join("bob2");
    run(&b2, &["import", file_s, "--passphrase-file", pass_s]).await;

    // Alice's next rotated message is read on the new machine.
    send(&net, &a, &b_id, "a2").await;
    assert_eq!(read(&net, &b2).await, rotated(&["a2"]));
    // Bob's next message continues his chain: rotated, the next position.
    let after = send(&net, &b2, &a_id, "b2").await;
    assert_eq!(
        after["chain_n"].as_u64().unwrap(),
        before["chain_n"].as_u64().unwrap() + 1,
        "{after}"
    );
    assert_eq!(read(&net, &a).await, rotated(&["b2"]));
    net.stop().await;
}

/// `dm history PEER` with times: (outgoing, text, sent_at_ms), oldest first.
async fn history_timed(dir: &Path, peer: &str) -> Vec<(bool, String, u64)> {
    let v = run(dir, &["dm", "history", peer, "--limit", "1000"]).await;
    v.as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["outgoing"].as_bool().unwrap(),
                m["text"].as_str().unwrap().to_string(),
                m["sent_at_ms"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// The posts the anchor holds by `author`, decoded.
fn anchor_posts_by(db: &rusqlite::Connection, author: &[u8]) -> Vec<SyncPost> {
    let mut st = db
        .prepare("SELECT sync_post FROM posts WHERE author = ?1 ORDER BY seq")
        .unwrap();
    st.query_map([author], |r| r.get::<_, Vec<u8>>(0))
        .unwrap()
        .map(|b| codec::from_canonical("post", &b.unwrap(), usize::MAX).unwrap())
        .collect()
}

/// The secret seed in a data directory's `node.key`.
fn node_seed(dir: &Path) -> [u8; 32] {
    let hex_seed = std::fs::read_to_string(dir.join("node.key")).unwrap();
    hex::decode(hex_seed.trim()).unwrap().try_into().unwrap()
}

/// The DM archive travels to a second device (issue 13): Alice's DMs with
/// Bob (first messages and rotated ones, both ways) are deposited at the
/// anchor as posts sealed to her NodeId alone; after export → import on a
/// fresh directory, the first `sync` (with the anchor the bundle names)
/// restores the whole thread, in order, with the same times, next to her
/// feed, follows and circles; a second sync duplicates nothing; nobody
/// else (Bob, the anchor) can open an archive post, Bob is never served
/// one, and no feed shows one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dm_history_comes_back_on_a_second_device() {
    use distsoc_node::archive::is_archive_post;
    use distsoc_protocol::ids::NodeId;
    use distsoc_protocol::messages::content::open_post;

    let net = Net::start().await;
    let (a, a_id) = net.node("alice").await;
    let (b, b_id) = net.node("bob").await;
    // Alice's social state and a public post, before any DM: the DM
    // commands deposit it at the anchor with the archive.
    run(&a, &["post", "a public post before the move"]).await;
    run(&a, &["follow", &b_id, "--offline"]).await;
    run(&a, &["circle", "create", "close"]).await;
    run(&a, &["circle", "add", "close", &b_id]).await;
    handshake(&net, (&a, &a_id), (&b, &b_id)).await;
    for round in 1..=3 {
        send(&net, &a, &b_id, &format!("a{round}")).await;
        assert_eq!(read(&net, &b).await, rotated(&[&format!("a{round}")]));
        send(&net, &b, &a_id, &format!("b{round}")).await;
        assert_eq!(read(&net, &a).await, rotated(&[&format!("b{round}")]));
    }
    let thread = history_timed(&a, &b_id).await;
    let texts: Vec<&str> = thread.iter().map(|(_, t, _)| t.as_str()).collect();
    assert_eq!(
        texts,
        ["hello B", "hello A", "a1", "b1", "a2", "b2", "a3", "b3"]
    );
    assert!(thread.windows(2).all(|w| w[0].2 <= w[1].2), "in time order");

    // What the anchor holds of Alice: her public post and archive posts
    // sealed to her NodeId alone, which only her key opens.
    let alice = NodeId(id_bytes(&a_id).try_into().unwrap());
    let held = anchor_posts_by(&net.anchor_db(), &alice.0);
    let archive: Vec<&SyncPost> = held.iter().filter(|p| is_archive_post(p, alice)).collect();
    assert!(
        !archive.is_empty() && archive.len() < held.len(),
        "{held:?}"
    );
    let (a_seed, b_seed) = (node_seed(&a), node_seed(&b));
    let anchor_seed = net.key.signing_key().seed();
    let mut carried = 0;
    for p in &archive {
        assert!(open_post(&b_seed, &p.post, &p.visibility).is_err());
        assert!(open_post(&anchor_seed, &p.post, &p.visibility).is_err());
        let body = open_post(&a_seed, &p.post, &p.visibility).unwrap();
        assert!(body.text.is_empty());
        carried += body.archive.unwrap().entries.len();
    }
    assert_eq!(carried, thread.len(), "every archived DM deposited once");

    // Bob follows Alice and syncs with the anchor: he gets her public post,
    // never an archive post.
    run(&b, &["anchor", "add", &net.anchor_cs()]).await;
    run(&b, &["follow", &a_id, "--offline"]).await;
    run(&b, &["sync"]).await;
    let bob_feed = run(&b, &["feed"]).await;
    let from_alice: Vec<&Value> = bob_feed
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["author"] == a_id.as_str())
        .collect();
    assert_eq!(from_alice.len(), 1, "{bob_feed}");
    assert_eq!(from_alice[0]["text"], "a public post before the move");

    // Alice exports and imports into a fresh directory (her second device).
    let before_social = (
        run(&a, &["following"]).await,
        run(&a, &["circle", "list"]).await,
        run(&a, &["circle", "members", "close"]).await,
    );
    let pass = net.dir.path().join("pass");
    std::fs::write(&pass, "a long enough passphrase").unwrap();
    let file = net.dir.path().join("alice.bundle");
    let (file_s, pass_s) = (file.to_str().unwrap(), pass.to_str().unwrap());
    run(
        &a,
        &["export", "--out", file_s, "--passphrase-file", pass_s],
    )
    .await;
    let a2 = net.dir.path().join("alice2");
    let imported = run(&a2, &["import", file_s, "--passphrase-file", pass_s]).await;
    assert_eq!(
        imported["archive_anchors"],
        serde_json::json!([net.anchor_cs()]),
        "the bundle names the anchor holding the archive"
    );
    assert!(history_timed(&a2, &b_id).await.is_empty(), "not yet synced");

    // The first sync restores the thread: same order, same times.
    run(&a2, &["sync"]).await;
    assert_eq!(history_timed(&a2, &b_id).await, thread);
    // A second sync (and a restore of what is already there) adds nothing.
    run(&a2, &["sync"]).await;
    assert_eq!(history_timed(&a2, &b_id).await, thread);
    // Follows, circles and the feed are intact; no archive post shows.
    let after_social = (
        run(&a2, &["following"]).await,
        run(&a2, &["circle", "list"]).await,
        run(&a2, &["circle", "members", "close"]).await,
    );
    assert_eq!(after_social, before_social);
    let feed = run(&a2, &["feed"]).await;
    let texts: Vec<&str> = feed
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["text"].as_str().unwrap_or("<unreadable>"))
        .collect();
    assert_eq!(texts, ["a public post before the move"], "{feed}");

    // The thread goes on from the new device, and its archive grows there.
    send(&net, &b, &a_id, "b4").await;
    assert_eq!(read(&net, &a2).await, rotated(&["b4"]));
    let grown = history_timed(&a2, &b_id).await;
    assert_eq!(grown.len(), thread.len() + 1);
    assert_eq!(grown.last().unwrap().1, "b4");
    // Restored rows do not travel again: the new device deposited only b4.
    let held = anchor_posts_by(&net.anchor_db(), &alice.0);
    let carried: usize = held
        .iter()
        .filter(|p| is_archive_post(p, alice))
        .map(|p| {
            open_post(&a_seed, &p.post, &p.visibility)
                .unwrap()
                .archive
                .unwrap()
                .entries
                .len()
        })
        .sum();
    assert_eq!(carried, thread.len() + 1);
    net.stop().await;
}
