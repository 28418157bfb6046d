//! What an anchor admits from outside, with a real anchor (SQLite, and
//! PostgreSQL where the store matters) and real QUIC clients on loopback:
//! profile signatures before `Ack` (issue 9 item 11), post deposit quotas
//! (item 20), and verified addresses in address and bootstrap answers
//! (item 5).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs,
    unreachable_pub
)]

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

// ---- item 20: deposit quotas ------------------------------------------------

mod pg_harness;

use distsoc_node::transport::{Peer, RequestError};
use distsoc_protocol::messages::content::{Post, PostVisibility, SyncPost};
use distsoc_protocol::messages::social::PushPost;
use std::time::Duration;

fn public_post(k: &SigningKey, ms: u64, text_len: usize) -> SyncPost {
    let p = Post::new_public(PostingId(k.public()), ms, "x".repeat(text_len), vec![])
        .sign(k)
        .unwrap();
    SyncPost::new(k, p, PostVisibility::Public, None)
}

async fn deposit(peer: &Peer, post: &SyncPost) -> Result<(), RequestError> {
    peer.push_acked(
        PushPost {
            version: 2,
            post: post.clone(),
            recent: None,
        }
        .into(),
    )
    .await
    .map(|_| ())
}

fn quota_config(store: String) -> AnchorConfig {
    AnchorConfig {
        store,
        post_quota_author_posts: 3,
        post_quota_author_bytes: 16 * 1024,
        post_quota_depositor_posts: 5,
        post_quota_depositor_bytes: 0,
        ..AnchorConfig::default()
    }
}

/// Per-author and per-depositor quotas refuse with `quotaExceeded` and a
/// `retryAfterMs` within the window, before anything is stored; duplicates
/// and refused posts cost nothing; the refusals are counted; a restarted
/// anchor remembers the authors' usage from the store.
async fn quotas_hold(store: String) {
    let a = start_anchor(quota_config(store.clone())).await;
    let alice = SigningKey::generate(&mut rand_core::OsRng);
    let (_t, peer, _) = common::connect_as(&alice, a.id, a.addr, LOOPBACK).await;
    let posts: Vec<SyncPost> = (1..=4).map(|i| public_post(&alice, i, 10)).collect();
    deposit(&peer, &posts[0]).await.unwrap();
    // A duplicate is acked and not charged.
    deposit(&peer, &posts[0]).await.unwrap();
    deposit(&peer, &posts[1]).await.unwrap();
    deposit(&peer, &posts[2]).await.unwrap();
    let refused = peer
        .push_acked(
            PushPost {
                version: 2,
                post: posts[3].clone(),
                recent: None,
            }
            .into(),
        )
        .await;
    let Err(RequestError::Remote(e)) = refused else {
        panic!("4th post of one author in a window: {refused:?}")
    };
    assert_eq!(e.code, ErrorCode::QuotaExceeded, "{e:?}");
    let day_ms = 24 * 3600 * 1000;
    assert!(
        e.retry_after_ms > 0 && u64::from(e.retry_after_ms) <= day_ms,
        "{e:?}"
    );
    // A post over the author byte quota alone: waiting does not help.
    let bob = SigningKey::generate(&mut rand_core::OsRng);
    let huge = public_post(&bob, 1, 20 * 1024);
    match deposit(&peer, &huge).await {
        Err(RequestError::Remote(e)) => {
            assert_eq!((e.code, e.retry_after_ms), (ErrorCode::QuotaExceeded, 0))
        }
        other => panic!("{other:?}"),
    }
    // Mallory deposits other authors' posts: the depositor quota (5) stops
    // her, whoever the authors are; the connection stays usable.
    let mallory = SigningKey::generate(&mut rand_core::OsRng);
    let (_t2, m, _) = common::connect_as(&mallory, a.id, a.addr, LOOPBACK).await;
    for i in 0..5 {
        let k = SigningKey::generate(&mut rand_core::OsRng);
        deposit(&m, &public_post(&k, i, 10)).await.unwrap();
    }
    let k = SigningKey::generate(&mut rand_core::OsRng);
    assert_eq!(
        code(deposit(&m, &public_post(&k, 9, 10)).await),
        ErrorCode::QuotaExceeded
    );
    let profile = profile(&mallory, &mallory);
    m.push_acked(profile.into()).await.unwrap();
    let stats = a.anchor.service.store().stats().await.unwrap();
    assert_eq!(stats.posts, 3 + 5, "refused posts are not stored");
    let c = a.anchor.service.counters();
    use std::sync::atomic::Ordering::Relaxed;
    assert_eq!(c.quota_refused_author.load(Relaxed), 2);
    assert_eq!(c.quota_refused_depositor.load(Relaxed), 1);
    // Restart on the same store: Alice's 3 posts are still counted.
    let TestAnchorParts { dir, anchor } = TestAnchorParts::from(a);
    anchor.stop(Duration::from_secs(2)).await;
    let b = start_anchor(quota_config(store)).await;
    let (_t3, peer, _) = common::connect_as(&alice, b.id, b.addr, LOOPBACK).await;
    assert_eq!(
        code(deposit(&peer, &posts[3]).await),
        ErrorCode::QuotaExceeded
    );
    drop(dir);
}

struct TestAnchorParts {
    dir: tempfile::TempDir,
    anchor: distsoc_anchor::run::Anchor,
}

impl From<common::TestAnchor> for TestAnchorParts {
    fn from(a: common::TestAnchor) -> Self {
        Self {
            dir: a.dir,
            anchor: a.anchor,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deposit_quotas_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    quotas_hold(format!("sqlite:{}", dir.path().join("q.sqlite").display())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deposit_quotas_postgres() {
    if pg_harness::skip() {
        return;
    }
    let url = pg_harness::shared().create_database().await;
    quotas_hold(url).await;
}
