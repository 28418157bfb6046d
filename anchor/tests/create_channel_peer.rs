//! `CreateChannel` accepts only a peer that is a valid Ed25519 public key (a
//! NodeId that could complete a handshake and fetch): an all-zero key, a
//! small-order key, a non-canonical encoding or bytes that are no curve point
//! are refused with `malformed` and the connection keeps serving. A real anchor on SQLite and a real QUIC client on 127.0.0.1.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;
use common::{code, LOOPBACK};

use std::time::Duration;

use distsoc_anchor::config::AnchorConfig;
use distsoc_anchor::run::{Anchor, RunOptions};
use distsoc_net::identity::NetworkKey;
use distsoc_protocol::error::ErrorCode;
use distsoc_protocol::ids::NodeId;
use distsoc_protocol::messages::mailbox::CreateChannel;
use distsoc_protocol::sign::{check_public_key, SignatureError, SigningKey};

/// The first 32-byte string `[b, 0, …]` whose key check fails with `want`.
fn first_key_failing(want: SignatureError) -> [u8; 32] {
    (0u8..=255)
        .map(|b| {
            let mut k = [0u8; 32];
            k[0] = b;
            k
        })
        .find(|k| check_public_key(k).err() == Some(want))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_channel_refuses_peers_that_are_not_valid_keys() {
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
        drain_timeout: Duration::from_secs(2),
    };
    let anchor = Anchor::start(&key, &cfg, &opts).await.unwrap();
    let addr = anchor.local_addr().unwrap();
    let (_t, peer, _me) = common::connect(key.node_id(), addr, LOOPBACK).await;

    // y = 2^255 - 20 (≥ p) re-encodes differently: not canonical.
    let mut non_canonical = [0xff; 32];
    non_canonical[0] = 0xed;
    non_canonical[31] = 0x7f;
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let bad: [(&str, [u8; 32]); 4] = [
        ("all-zero key (a point of order 4)", [0; 32]),
        ("the identity point (order 1)", identity),
        (
            "bytes that are not a curve point",
            first_key_failing(SignatureError::MalformedKey),
        ),
        ("a non-canonical encoding", non_canonical),
    ];
    for (what, peer_key) in bad {
        assert!(check_public_key(&peer_key).is_err(), "{what}");
        let r = peer
            .call(CreateChannel {
                version: 2,
                peer: NodeId(peer_key),
            })
            .await;
        assert_eq!(code(r), ErrorCode::Malformed, "{what}");
    }
    // The connection still serves: a valid peer gets its channel, and
    // asking again returns the same one.
    let friend = NodeId(SigningKey::generate(&mut rand_core::OsRng).public());
    let channel = common::create_channel(&peer, friend).await;
    assert_eq!(common::create_channel(&peer, friend).await, channel);
    anchor.stop(Duration::from_secs(2)).await;
}
