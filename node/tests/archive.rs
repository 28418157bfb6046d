//! The archive deposit (`distsoc_node::archive`, `schema/README.md` §9.1) on
//! real SQLite stores: archived DMs are packed into posts sealed to the
//! NodeId alone, a second device with the same network key restores them
//! once however often it looks, restored rows never travel again, chunks
//! respect their limits, and no feed shows an archive post. (Through the
//! binaries and a real anchor: `dm_rotation.rs`,
//! `the_dm_history_comes_back_on_a_second_device`.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use distsoc_node::archive::{is_archive_post, CHUNK_MAX_ENTRIES};
use distsoc_node::node::Node;
use distsoc_node::store::ArchivedDm;
use distsoc_protocol::ids::NodeId;
use distsoc_protocol::messages::content::{open_post, SyncPost};
use distsoc_protocol::sign::SigningKey;

fn dm(i: u64, text: String) -> (ArchivedDm, [u8; 32]) {
    (
        ArchivedDm {
            peer: NodeId([0xb0; 32]),
            outgoing: i.is_multiple_of(2),
            sent_at_ms: 1_700_000_000_000 + i,
            text,
        },
        *blake3::hash(&i.to_be_bytes()).as_bytes(),
    )
}

/// Every post `node` holds by its NodeId.
fn own_posts(node: &Node) -> Vec<SyncPost> {
    node.store()
        .posts_by_authors_since(
            &[distsoc_protocol::ids::PostingId(node.node_id().0)],
            0,
            10_000,
        )
        .unwrap()
        .into_iter()
        .map(|(_, p)| p)
        .collect()
}

#[test]
fn archived_dms_restore_once_on_a_second_device_and_never_travel_again() {
    let root = tempfile::tempdir().unwrap();
    let seed = [0x42; 32];
    let one = Node::init_with_key(
        &root.path().join("one"),
        None,
        Some(SigningKey::from_seed(&seed)),
    )
    .unwrap();
    let key = one.archive_key();
    // 300 short messages and 4 of 60 KiB: more than one chunk by count and
    // by bytes.
    let mut all = Vec::new();
    for i in 0..300 {
        all.push(dm(i, format!("message {i}")));
    }
    for i in 300..304 {
        all.push(dm(i, "y".repeat(60 * 1024)));
    }
    for (d, dedup) in &all {
        assert!(one.store().archive_dm(&key, d, *dedup, 1).unwrap());
    }
    assert_eq!(one.store().archive_pending_count().unwrap(), 304);

    let deposit = one.deposit_archive().unwrap();
    assert_eq!(deposit.entries, 304);
    // 256 + 44 short ones with the first long ones up to 192 KiB, then
    // the rest: at least 3 posts.
    assert!(deposit.posts >= 3, "{deposit:?}");
    assert_eq!(one.store().archive_pending_count().unwrap(), 0);
    assert_eq!(one.deposit_archive().unwrap().posts, 0, "nothing new");
    let posts = own_posts(&one);
    assert_eq!(posts.len(), deposit.posts);
    let me = one.node_id();
    let mut carried = 0;
    for p in &posts {
        assert!(is_archive_post(p, me));
        let body = open_post(&seed, &p.post, &p.visibility).unwrap();
        let n = body.archive.unwrap().entries.len();
        assert!((1..=CHUNK_MAX_ENTRIES).contains(&n));
        carried += n;
        // Nobody else opens it.
        assert!(open_post(&[0x43; 32], &p.post, &p.visibility).is_err());
    }
    assert_eq!(carried, 304);
    assert!(one.feed(50).unwrap().is_empty(), "the feed hides them");

    // The second device: same network key, the posts arrive (as a pull
    // stores them).
    let two = Node::init_with_key(
        &root.path().join("two"),
        None,
        Some(SigningKey::from_seed(&seed)),
    )
    .unwrap();
    for p in &posts {
        two.store().insert_post(p, 2).unwrap();
    }
    let r = two.restore_archive().unwrap();
    assert_eq!((r.posts, r.restored, r.known), (deposit.posts, 304, 0));
    assert_eq!(
        two.restore_archive().unwrap().posts,
        0,
        "cursor: nothing new"
    );
    let history = two
        .store()
        .dm_history(&key, NodeId([0xb0; 32]), 1000)
        .unwrap();
    let expected: Vec<ArchivedDm> = all.iter().map(|(d, _)| d.clone()).collect();
    assert_eq!(history, expected, "the whole thread, in order");
    // Restored rows are deposited already: they never travel again.
    assert_eq!(two.store().archive_pending_count().unwrap(), 0);
    assert_eq!(two.deposit_archive().unwrap().posts, 0);
    assert!(two.feed(50).unwrap().is_empty());

    // The first device looking at its own archive posts, and a second
    // restore of the same entries, add nothing.
    let r = one.restore_archive().unwrap();
    assert_eq!((r.restored, r.known), (0, 304));
    let history = one
        .store()
        .dm_history(&key, NodeId([0xb0; 32]), 1000)
        .unwrap();
    assert_eq!(history.len(), 304);

    // A row archived on the second device before its archive post arrived
    // is kept once and no longer waits for a deposit once the post is read.
    let three = Node::init_with_key(
        &root.path().join("three"),
        None,
        Some(SigningKey::from_seed(&seed)),
    )
    .unwrap();
    let (d, dedup) = &all[7];
    three.store().archive_dm(&key, d, *dedup, 3).unwrap();
    assert_eq!(three.store().archive_pending_count().unwrap(), 1);
    for p in &posts {
        three.store().insert_post(p, 4).unwrap();
    }
    let r = three.restore_archive().unwrap();
    assert_eq!((r.restored, r.known), (303, 1));
    assert_eq!(three.store().archive_pending_count().unwrap(), 0);
}
