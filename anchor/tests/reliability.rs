//! Process-level reliability of the anchor, with real processes and a real
//! PostgreSQL server:
//!
//! - `kill -9` of the `distsoc-anchor` binary in the middle of a bounded
//!   concurrent enqueue load: after a restart on the same store, every
//!   message that was acknowledged is fetchable (SQLite and PostgreSQL).
//! - PostgreSQL stopped under a running anchor: requests get a typed
//!   `unavailable` error within a bound (never a hang), the connection stays
//!   usable, and once the server is back the anchor serves again by itself,
//!   FetchWait included.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs,
    unreachable_pub
)]

mod common;
mod pg_harness;

use std::collections::HashSet;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{code, create_channel as create, AnchorProc, LOOPBACK};
use distsoc_anchor::config::AnchorConfig;
use distsoc_anchor::run::{Anchor, RunOptions};
use distsoc_net::identity::NetworkKey;
use distsoc_net::transport::{Peer, RequestError};
use distsoc_protocol::error::ErrorCode;
use distsoc_protocol::ids::{ChannelId, NodeId};
use distsoc_protocol::messages::mailbox::{Enqueue, Fetch, FetchWait};
use distsoc_protocol::sign::SigningKey;

const BIN: &str = env!("CARGO_BIN_EXE_distsoc-anchor");
/// Acknowledged enqueues to wait for before the kill.
const ACKED_BEFORE_KILL: usize = 300;
/// Concurrent senders (each on its own QUIC stream per request).
const SENDERS: usize = 8;
/// Upper bound on each sender's requests (the load is bounded in count).
const MAX_PER_SENDER: usize = 5_000;
/// Upper bound on any one phase (the load is bounded in time).
const PHASE: Duration = Duration::from_secs(60);

fn init(dir: &Path) {
    let out = Command::new(BIN)
        .arg("--data-dir")
        .arg(dir)
        .arg("init")
        .output()
        .unwrap();
    assert!(out.status.success(), "init: {out:?}");
    // Loopback load from two identities: lift the per-identity and per-IP
    // rate limit so the kill lands in the middle of a real burst.
    let cfg = dir.join("anchor.toml");
    let text = std::fs::read_to_string(&cfg).unwrap();
    let text = text
        .replace(
            "ip_rate_limit_per_second = 500\n",
            "ip_rate_limit_per_second = 1000000\n",
        )
        .replace(
            "ip_rate_limit_burst = 500\n",
            "ip_rate_limit_burst = 1000000\n",
        )
        .replace(
            "\nrate_limit_per_second = 50\n",
            "\nrate_limit_per_second = 1000000\n",
        )
        .replace(
            "\nrate_limit_burst = 50\n",
            "\nrate_limit_burst = 1000000\n",
        );
    assert!(text.contains("\nrate_limit_per_second = 1000000"), "{text}");
    assert!(
        text.contains("ip_rate_limit_per_second = 1000000"),
        "{text}"
    );
    assert!(text.contains("rate_limit_per_second = 1000000"), "{text}");
    std::fs::write(&cfg, text).unwrap();
}

/// Starts `distsoc-anchor run` and reads the connect string it prints on
/// stdout once it is serving.
fn spawn(dir: &Path, store: &str) -> AnchorProc {
    common::spawn_anchor_process(dir, &["--listen", "127.0.0.1:0", "--store", store])
}

fn enqueue_msg(channel: ChannelId, to: NodeId, payload: Vec<u8>) -> Enqueue {
    Enqueue {
        version: 2,
        channel_id: Some(channel),
        recipient: to,
        payload,
        client_message_id: None,
    }
}

/// Every payload queued for the caller of `peer` in `channel`, acknowledging
/// page by page.
async fn drain(peer: &Peer, channel: ChannelId) -> Vec<Vec<u8>> {
    let mut ack = 0;
    let mut out = Vec::new();
    loop {
        let msg = Fetch {
            version: 2,
            channel_id: Some(channel),
            ack_through: ack,
            max_messages: 0,
            max_bytes: 0,
        };
        let page = peer.call(msg).await.unwrap();
        let Some(last) = page.messages.last() else {
            return out;
        };
        ack = last.message_id;
        out.extend(page.messages.into_iter().map(|m| m.payload));
    }
}

/// Runs the kill -9 scenario against `store` (a store URL both processes use).
async fn kill9_loses_nothing_acknowledged(store: &str) {
    let dir = tempfile::tempdir().unwrap();
    init(dir.path());
    let sender_key = SigningKey::generate(&mut rand_core::OsRng);
    let recipient_key = SigningKey::generate(&mut rand_core::OsRng);
    let recipient = NodeId(recipient_key.public());

    let mut first = spawn(dir.path(), store);
    let (_t, peer, _) = common::connect_as(&sender_key, first.id, first.addr, LOOPBACK).await;
    let channel = create(&peer, recipient).await;

    let acked: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
    let count = Arc::new(AtomicUsize::new(0));
    let enough = Arc::new(tokio::sync::Notify::new());
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for s in 0..SENDERS {
        let (peer, acked, count, enough, stop) = (
            peer.clone(),
            acked.clone(),
            count.clone(),
            enough.clone(),
            stop.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut errors = 0usize;
            for i in 0..MAX_PER_SENDER {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let payload = format!("sender {s} message {i}").into_bytes();
                let r = peer
                    .call_with_timeout(
                        enqueue_msg(channel, recipient, payload.clone()),
                        Duration::from_secs(5),
                    )
                    .await;
                match r {
                    Ok(_) => {
                        acked.lock().unwrap().push(payload);
                        if count.fetch_add(1, Ordering::SeqCst) + 1 == ACKED_BEFORE_KILL {
                            enough.notify_one();
                        }
                    }
                    // The process is gone (or going): not acknowledged.
                    Err(_) => {
                        errors += 1;
                        break;
                    }
                }
            }
            errors
        }));
    }
    tokio::time::timeout(PHASE, enough.notified())
        .await
        .expect("the load did not reach the kill point");
    // SIGKILL while the senders keep going: no shutdown path runs.
    first.child.kill().unwrap();
    first.child.wait().unwrap();
    stop.store(true, Ordering::SeqCst);
    let mut interrupted = 0;
    for t in tasks {
        interrupted += tokio::time::timeout(PHASE, t).await.unwrap().unwrap();
    }
    let acked: Vec<Vec<u8>> = std::mem::take(&mut *acked.lock().unwrap());
    assert!(acked.len() >= ACKED_BEFORE_KILL);
    assert!(
        interrupted > 0,
        "no sender saw the kill: the load was not in flight"
    );
    peer.close();

    let mut second = spawn(dir.path(), store);
    let (_t2, peer2, _) =
        common::connect_as(&recipient_key, second.id, second.addr, LOOPBACK).await;
    let got: HashSet<Vec<u8>> = drain(&peer2, channel).await.into_iter().collect();
    let lost: Vec<String> = acked
        .iter()
        .filter(|p| !got.contains(*p))
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged messages lost after kill -9: {:?}",
        lost.len(),
        acked.len(),
        &lost[..lost.len().min(5)]
    );
    // At-least-once: an unacknowledged in-flight message may or may not
    // have been committed, but nothing was invented.
    assert!(got.len() <= acked.len() + SENDERS);
    eprintln!(
        "kill -9 on {}: {} acknowledged, {} fetched after restart",
        if store.starts_with("sqlite:") {
            "SQLite"
        } else {
            "PostgreSQL"
        },
        acked.len(),
        got.len()
    );
    second.child.kill().unwrap();
    second.child.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_during_enqueue_load_sqlite() {
    let db = tempfile::tempdir().unwrap();
    let store = format!("sqlite:{}", db.path().join("anchor.sqlite").display());
    kill9_loses_nothing_acknowledged(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_during_enqueue_load_postgres() {
    if pg_harness::skip() {
        return;
    }
    let cluster = tokio::task::spawn_blocking(pg_harness::shared)
        .await
        .unwrap();
    let url = cluster.create_database().await;
    kill9_loses_nothing_acknowledged(&url).await;
}

/// Stop PostgreSQL under a running anchor: typed `unavailable` within a
/// bound, the QUIC connection stays up; start it again: the anchor serves
/// again by itself, and a FetchWait held across the outage's end is woken.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restart_under_running_anchor() {
    if pg_harness::skip() {
        return;
    }
    let cluster = Arc::new(
        tokio::task::spawn_blocking(|| pg_harness::Cluster::start("restart"))
            .await
            .unwrap(),
    );
    let url = cluster.create_database().await;
    let dir = tempfile::tempdir().unwrap();
    let key = NetworkKey::new(SigningKey::generate(&mut rand_core::OsRng));
    let cfg = AnchorConfig {
        listen: LOOPBACK,
        admin_listen: String::new(),
        metrics_listen: String::new(),
        store: url,
        ..AnchorConfig::default()
    };
    let opts = RunOptions {
        data_dir: dir.path().into(),
        drain_timeout: Duration::from_secs(5),
    };
    let anchor = Anchor::start(&key, &cfg, &opts).await.unwrap();
    let addr = anchor.local_addr().unwrap();
    let (_ta, alice, _) = common::connect(key.node_id(), addr, LOOPBACK).await;
    let bob_key = SigningKey::generate(&mut rand_core::OsRng);
    let bob = NodeId(bob_key.public());
    let (_tb, bob_peer, _) = common::connect_as(&bob_key, key.node_id(), addr, LOOPBACK).await;
    let channel = create(&alice, bob).await;
    alice
        .call(enqueue_msg(channel, bob, b"before".to_vec()))
        .await
        .unwrap();

    let c = cluster.clone();
    tokio::task::spawn_blocking(move || c.stop_server())
        .await
        .unwrap();

    // The store's bounds: connect 3 s, operation 10 s (queued writes 2×).
    let bound = Duration::from_secs(25);
    let t = Instant::now();
    let r = alice
        .call_with_timeout(enqueue_msg(channel, bob, b"during".to_vec()), bound)
        .await;
    assert_eq!(code(r), ErrorCode::Unavailable);
    let fetch = Fetch {
        version: 2,
        channel_id: Some(channel),
        ack_through: 0,
        max_messages: 0,
        max_bytes: 0,
    };
    let r = bob_peer.call_with_timeout(fetch, bound).await;
    assert_eq!(code(r), ErrorCode::Unavailable);
    eprintln!(
        "two requests during the outage answered in {:?}",
        t.elapsed()
    );
    assert!(!alice.is_closed() && !bob_peer.is_closed());

    // Bob long-polls across the restart.
    let wait = {
        let bob_peer = bob_peer.clone();
        tokio::spawn(async move {
            bob_peer
                .call_with_timeout(
                    FetchWait {
                        version: 2,
                        channel_id: Some(channel),
                        ack_through: 0,
                        max_messages: 0,
                        max_bytes: 0,
                        timeout_ms: 30_000,
                    },
                    Duration::from_secs(40),
                )
                .await
        })
    };

    let c = cluster.clone();
    tokio::task::spawn_blocking(move || c.start_server())
        .await
        .unwrap();

    // Recovers by itself: Alice retries the way a client would.
    let t = Instant::now();
    loop {
        match alice
            .call_with_timeout(enqueue_msg(channel, bob, b"after".to_vec()), bound)
            .await
        {
            Ok(_) => break,
            Err(RequestError::Remote(e)) if e.code == ErrorCode::Unavailable => {
                assert!(t.elapsed() < PHASE, "no recovery after {:?}", t.elapsed());
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            other => panic!("{other:?}"),
        }
    }
    eprintln!("serving again {:?} after the server restarted", t.elapsed());
    // The FetchWait either failed during the outage or returns messages.
    match wait.await.unwrap() {
        Ok(r) => assert!(!r.0.messages.is_empty()),
        Err(RequestError::Remote(e)) => assert_eq!(e.code, ErrorCode::Unavailable),
        other => panic!("{other:?}"),
    }
    let got = drain(&bob_peer, channel).await;
    assert_eq!(got, vec![b"before".to_vec(), b"after".to_vec()]);
    anchor.stop(Duration::from_secs(5)).await;
    drop(cluster);
}
