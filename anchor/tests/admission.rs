//! What an anchor admits from outside, with a real anchor (SQLite, and
//! PostgreSQL where the store matters) and real QUIC clients on loopback:
//! profile signatures before `Ack` (issue 9 item 11), post deposit quotas
//! (item 20), and verified addresses in address and bootstrap answers
//! (item 5).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;
use common::{code, start_anchor, LOOPBACK};

use distsoc_anchor::config::AnchorConfig;
use distsoc_protocol::error::ErrorCode;
use distsoc_protocol::ids::PostingId;
use distsoc_protocol::messages::identity::PublicProfile;
use distsoc_protocol::messages::signed::Signed;
use distsoc_protocol::messages::social::ProfileUpdate;
use distsoc_protocol::sign::SigningKey;

fn profile(posting: &SigningKey, signer: &SigningKey) -> ProfileUpdate {
    ProfileUpdate {
        version: 2,
        profile: Signed::sign(
            PublicProfile {
                posting_id: PostingId(posting.public()),
                display_name: "alice".into(),
                bio: String::new(),
                anchors: vec![],
                avatar: None,
                updated_at_ms: 1,
                network_id: None,
            },
            signer,
        ),
    }
}

/// `Ack` means "validated and accepted": a ProfileUpdate whose signature
/// does not verify is refused with `badSignature`, a good one is acked, and
/// the connection stays usable after the refusal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn profile_update_is_acked_only_with_a_valid_signature() {
    let a = start_anchor(AnchorConfig::default()).await;
    let alice = SigningKey::generate(&mut rand_core::OsRng);
    let mallory = SigningKey::generate(&mut rand_core::OsRng);
    let (_t, peer, _) = common::connect_as(&mallory, a.id, a.addr, LOOPBACK).await;
    // Mallory's signature over a profile naming Alice.
    let forged = profile(&alice, &mallory);
    assert_eq!(
        code(peer.push_acked(forged.into()).await),
        ErrorCode::BadSignature
    );
    let good = profile(&mallory, &mallory);
    peer.push_acked(good.into())
        .await
        .expect("a validly signed profile is acked");
}
