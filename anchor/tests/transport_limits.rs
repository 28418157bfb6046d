//! Transport-level behaviour of the real anchor: a restarted `distsoc-anchor`
//! process is reconnected to within seconds (its stateless resets are
//! recognised), and a banned identity is refused when it connects, before
//! any request is served or stored.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs,
    unreachable_pub
)]

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{connect, try_connect_as, AnchorProc, Refuse, LOOPBACK};
use distsoc_anchor::config::AnchorConfig;
use distsoc_anchor::run::{Anchor, RunOptions};
use distsoc_net::identity::NetworkKey;
use distsoc_net::transport::{
    CloseReason, RequestError, Transport, TransportConfig, TransportError, CLOSE_REFUSED,
};
use distsoc_protocol::ids::NodeId;
use distsoc_protocol::messages::discovery::BootstrapRequest;
use distsoc_protocol::sign::SigningKey;

const BIN: &str = env!("CARGO_BIN_EXE_distsoc-anchor");

fn init(dir: &Path) {
    let out = Command::new(BIN)
        .arg("--data-dir")
        .arg(dir)
        .arg("init")
        .output()
        .unwrap();
    assert!(out.status.success(), "init: {out:?}");
}

/// Starts `distsoc-anchor run` on `listen` and reads the connect string it
/// prints once it is serving.
fn spawn(dir: &Path, listen: SocketAddr) -> AnchorProc {
    common::spawn_anchor_process(dir, &["--listen", &listen.to_string()])
}

fn bootstrap() -> BootstrapRequest {
    BootstrapRequest {
        version: 2,
        want: 1,
        exclude: Vec::new(),
    }
}

/// One request the way a long-running client makes it: on the cached
/// connection if there is a live one, else on a new one.
async fn request_once(client: &Transport, anchor: NodeId, addr: SocketAddr) -> Result<(), String> {
    let peer = client
        .connect(anchor, addr)
        .await
        .map_err(|e| e.to_string())?;
    match peer.call(bootstrap()).await {
        Ok(_) => Ok(()),
        Err(RequestError::Closed(reason)) => Err(format!("closed: {reason}")),
        Err(e) => Err(e.to_string()),
    }
}

#[tokio::test]
async fn restarted_anchor_is_reconnected_to_within_seconds() {
    let dir = tempfile::tempdir().unwrap();
    init(dir.path());
    let first = spawn(dir.path(), LOOPBACK);
    let (anchor, addr) = (first.id, first.addr);
    let client = Transport::bind(
        &SigningKey::generate(&mut rand_core::OsRng),
        TransportConfig {
            listen: LOOPBACK,
            // The connection must not be saved by an early keep-alive: the
            // next request is what finds out that the anchor restarted.
            keep_alive: Duration::from_secs(20),
            ..TransportConfig::default()
        },
        std::sync::Arc::new(Refuse),
    )
    .unwrap();
    request_once(&client, anchor, addr).await.unwrap();

    // kill -9: the old connection gets no CONNECTION_CLOSE.
    drop(first);
    let second = spawn(dir.path(), addr);
    assert_eq!((second.id, second.addr), (anchor, addr));

    // The first request on the dead connection draws a stateless reset from
    // the new process (same key, same reset key) and fails at once; the
    // next one redials.
    let started = Instant::now();
    let mut attempts = Vec::new();
    loop {
        let attempt =
            tokio::time::timeout(Duration::from_secs(30), request_once(&client, anchor, addr))
                .await
                .unwrap_or_else(|_| Err("no answer within 30 s".into()));
        match attempt {
            Ok(()) => break,
            Err(e) => attempts.push(e),
        }
        assert!(attempts.len() < 3, "{attempts:?}");
    }
    let took = started.elapsed();
    println!("reconnected {took:?} after the restart; failed attempts first: {attempts:?}");
    assert!(
        took < Duration::from_secs(5),
        "took {took:?} to reach the restarted anchor: {attempts:?}"
    );
    // At most the one request that found the dead connection failed.
    assert!(attempts.len() <= 1, "{attempts:?}");
}

#[tokio::test]
async fn banned_identity_is_refused_at_connection_time_without_storage_work() {
    let dir = tempfile::tempdir().unwrap();
    let key = NetworkKey::new(SigningKey::generate(&mut rand_core::OsRng));
    let cfg = AnchorConfig {
        listen: LOOPBACK,
        admin_listen: String::new(),
        metrics_listen: String::new(),
        ..AnchorConfig::default()
    };
    let opts = RunOptions {
        data_dir: dir.path().into(),
        drain_timeout: Duration::from_secs(5),
    };
    let anchor = Anchor::start(&key, &cfg, &opts).await.unwrap();
    let addr = anchor.local_addr().unwrap();

    let banned = SigningKey::generate(&mut rand_core::OsRng);
    let banned_id = NodeId(banned.public());
    assert!(anchor.service.ban(banned_id).await.unwrap());
    let audit_before = anchor
        .service
        .store()
        .recent_audit(1000)
        .await
        .unwrap()
        .len();

    let (client, first) = try_connect_as(&banned, key.node_id(), addr, LOOPBACK).await;
    assert!(first.is_err(), "{first:?}");
    for _ in 0..3 {
        let started = Instant::now();
        let err = client.connect(key.node_id(), addr).await.unwrap_err();
        match &err {
            TransportError::ConnectionLost(CloseReason::Application { code, .. }) => {
                assert_eq!(*code, u64::from(CLOSE_REFUSED), "{err}");
            }
            other => panic!("expected a close with CLOSE_REFUSED, got {other:?}"),
        }
        assert!(started.elapsed() < Duration::from_secs(5), "{err}");
    }
    // Nothing was stored for the refused connections: no audit row, and the
    // peer never became a served connection (no check-in either).
    let audit_after = anchor
        .service
        .store()
        .recent_audit(1000)
        .await
        .unwrap()
        .len();
    assert_eq!(audit_before, audit_after);
    assert!(anchor
        .transport
        .peers()
        .iter()
        .all(|p| p.node_id != banned_id));

    // Others are served as before.
    let (_t, peer, _) = connect(key.node_id(), addr, LOOPBACK).await;
    peer.call(bootstrap()).await.unwrap();
    anchor.stop(Duration::from_secs(2)).await;
}
