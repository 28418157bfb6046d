//! Integration tests of the node store (`distsoc_node::store`): every
//! operation, persistence across reopen, the pull filter against
//! `PullFilter` (scenarios and a property test), migration from the
//! committed version-1 fixture, refusal of a newer schema, file modes, and
//! two stores (node + CLI) writing to one file.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use distsoc_node::store::migrations::{supported_version, MIGRATIONS};
use distsoc_node::store::{
    DeleteOutcome, Inserted, PullPage, Store, StoreError, Upsert, VisibilityOutcome,
};
use distsoc_protocol::codec;
use distsoc_protocol::envelope::Cek;
use distsoc_protocol::ids::{BlobId, NodeId, PostId, PostingId};
use distsoc_protocol::limits::MAX_BLOB_BYTES;
use distsoc_protocol::messages::common::VisibilityHint;
use distsoc_protocol::messages::content::{
    seal_post, AuthorRecentPosts, DeleteRecordBody, EncryptedVisibility, IngestError, Post,
    PostBody, PostVisibility, RecentPost, SignedAuthorRecentPosts, SignedDeleteRecord,
    SignedVisibilityUpdate, SyncPost, VisibilityUpdateBody,
};
use distsoc_protocol::messages::identity::{PostingIdentity, PublicProfile, SignedProfile};
use distsoc_protocol::messages::signed::Signed;
use distsoc_protocol::messages::social::AudienceRequestBody;
use distsoc_protocol::recent::RecentDecision;
use distsoc_protocol::sign::SigningKey;
use distsoc_protocol::sync::{Audience, PullFilter};
use proptest::prelude::*;
use rand_core::{CryptoRng, RngCore};
use rusqlite::Connection;

// ---------------------------------------------------------------------------
// Test data
// ---------------------------------------------------------------------------

/// A deterministic CSPRNG stand-in (BLAKE3 XOF of a counter), so that sealed
/// posts, and hence the fixture, are reproducible.
struct DetRng {
    key: [u8; 32],
    counter: u64,
}

impl DetRng {
    fn new(seed: u8) -> Self {
        Self {
            key: [seed; 32],
            counter: 0,
        }
    }
}

impl RngCore for DetRng {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.fill_bytes(&mut b);
        u32::from_le_bytes(b)
    }
    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.fill_bytes(&mut b);
        u64::from_le_bytes(b)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        let mut h = blake3::Hasher::new_keyed(&self.key);
        h.update(&self.counter.to_le_bytes());
        self.counter += 1;
        h.finalize_xof().fill(dest);
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl CryptoRng for DetRng {}

fn key(i: u8) -> SigningKey {
    SigningKey::from_seed(&[i; 32])
}

fn pid(k: &SigningKey) -> PostingId {
    PostingId(k.public())
}

fn nid(k: &SigningKey) -> NodeId {
    NodeId(k.public())
}

fn public_post(k: &SigningKey, ms: u64, text: &str) -> SyncPost {
    let p = Post::new_public(pid(k), ms, text, vec![]).sign(k).unwrap();
    SyncPost::new(k, p, PostVisibility::Public, None)
}

fn sealed_post(k: &SigningKey, ms: u64, to: &[PostingId], rng: &mut DetRng) -> SyncPost {
    let body = PostBody {
        text: format!("sealed at {ms}"),
        attachments: vec![],
        rotation: None,
        archive: None,
        group: None,
    };
    let (p, v) = seal_post(k, ms, &body, to, rng).unwrap();
    SyncPost::new(k, p, v, None)
}

fn delete_record(k: &SigningKey, post_id: PostId, ms: u64) -> SignedDeleteRecord {
    Signed::sign(
        DeleteRecordBody {
            post_id,
            author: pid(k),
            deleted_at_ms: ms,
            replaced_by: None,
        },
        k,
    )
}

fn encrypted_to(to: &[PostingId]) -> PostVisibility {
    PostVisibility::Encrypted(
        EncryptedVisibility::wrap(&Cek::from_bytes([7; 32]), &[9; 32], to).unwrap(),
    )
}

fn vis_update(
    k: &SigningKey,
    post_id: PostId,
    to: &[PostingId],
    ms: u64,
) -> SignedVisibilityUpdate {
    Signed::sign(
        VisibilityUpdateBody {
            post_id,
            author: pid(k),
            visibility: encrypted_to(to),
            updated_at_ms: ms,
        },
        k,
    )
}

fn profile(k: &SigningKey, name: &str, anchors: Vec<NodeId>, ms: u64) -> SignedProfile {
    Signed::sign(
        PublicProfile {
            posting_id: pid(k),
            display_name: name.into(),
            bio: format!("bio of {name}"),
            anchors,
            avatar: None,
            updated_at_ms: ms,
            network_id: None,
        },
        k,
    )
}

fn recent(k: &SigningKey, seq: u64, ms: u64, n: u8) -> SignedAuthorRecentPosts {
    Signed::sign(
        AuthorRecentPosts {
            author: pid(k),
            seq,
            updated_at_ms: ms,
            posts: (0..n)
                .map(|i| RecentPost {
                    post_id: PostId([i; 32]),
                    created_at_ms: u64::from(i),
                    hint: VisibilityHint::Public,
                })
                .collect(),
        },
        k,
    )
}

fn new_seq(i: Inserted) -> u64 {
    match i {
        Inserted::New { seq } => seq,
        other => panic!("expected New, got {other:?}"),
    }
}

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

// ---------------------------------------------------------------------------
// Open, pragmas, files
// ---------------------------------------------------------------------------

#[cfg(unix)]
fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[cfg(unix)]
fn sidecar(p: &Path, suffix: &str) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

#[cfg(unix)]
#[test]
fn database_files_are_created_0600() {
    let dir = tmp();
    let path = dir.path().join("node.sqlite");
    let store = Store::open(&path).unwrap();
    with_me(&store);
    store.follow(pid(&key(2)), 1).unwrap();
    assert_eq!(mode(&path), 0o600);
    // WAL mode: the -wal and -shm files exist while the store is open.
    for s in ["-wal", "-shm"] {
        let side = sidecar(&path, s);
        assert!(side.exists(), "{s} missing");
        assert_eq!(mode(&side), 0o600, "{s}");
    }
}

#[cfg(unix)]
#[test]
fn loose_permissions_are_tightened_on_open() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tmp();
    let path = dir.path().join("node.sqlite");
    drop(Store::open(&path).unwrap());
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let _store = Store::open(&path).unwrap();
    assert_eq!(mode(&path), 0o600);
}

#[test]
fn open_sets_wal_and_current_version() {
    let dir = tmp();
    let path = dir.path().join("node.sqlite");
    let store = Store::open(&path).unwrap();
    assert_eq!(store.schema_version().unwrap(), supported_version());
    assert_eq!(supported_version() as usize, MIGRATIONS.len());
    let raw = Connection::open(&path).unwrap();
    let jm: String = raw
        .pragma_query_value(None, "journal_mode", |r| r.get(0))
        .unwrap();
    assert_eq!(jm, "wal");
}

#[test]
fn newer_schema_is_refused_and_left_alone() {
    let dir = tmp();
    let path = dir.path().join("node.sqlite");
    let future = supported_version() + 1;
    {
        // A database written by a future build (rollback journal).
        let raw = Connection::open(&path).unwrap();
        raw.execute_batch("CREATE TABLE from_the_future (x INTEGER)")
            .unwrap();
        raw.pragma_update(None, "user_version", future).unwrap();
    }
    let before = std::fs::read(&path).unwrap();
    match Store::open(&path) {
        Err(StoreError::TooNew { found, supported }) => {
            assert_eq!(found, future);
            assert_eq!(supported, supported_version());
        }
        other => panic!("expected TooNew, got {other:?}"),
    }
    assert_eq!(std::fs::read(&path).unwrap(), before, "file untouched");
    let raw = Connection::open(&path).unwrap();
    let jm: String = raw
        .pragma_query_value(None, "journal_mode", |r| r.get(0))
        .unwrap();
    assert_eq!(jm, "delete", "journal mode not switched to WAL");
}

#[test]
fn debug_never_prints_seeds() {
    let store = Store::open_in_memory().unwrap();
    let k = key(5);
    let id = PostingIdentity::from_key(&k, "me", 1, false);
    store.add_posting_identity(&id).unwrap();
    let seed_hex = hex::encode(*k.seed());
    let got = store.posting_identity(pid(&k)).unwrap().unwrap();
    for s in [
        format!("{got:?}"),
        format!("{:?}", store.posting_identities().unwrap()),
        format!("{:?}", store.default_posting_identity().unwrap()),
        format!("{store:?}"),
    ] {
        assert!(!s.contains(&seed_hex), "seed printed: {s}");
    }
}

// ---------------------------------------------------------------------------
// Posting identities
// ---------------------------------------------------------------------------

#[test]
fn posting_identities() {
    let store = Store::open_in_memory().unwrap();
    assert!(store.default_posting_identity().unwrap().is_none());
    let (a, b) = (key(1), key(2));
    let ia = PostingIdentity::from_key(&a, "main", 10, false);
    let ib = PostingIdentity::from_key(&b, "dm", 20, true);
    assert!(store.add_posting_identity(&ia).unwrap());
    assert!(!store.add_posting_identity(&ia).unwrap());
    assert!(store.add_posting_identity(&ib).unwrap());

    // The first one stored is the default.
    assert_eq!(store.default_posting_identity().unwrap().unwrap(), ia);
    let list = store.posting_identities().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0].posting_id, pid(&a));
    assert!(list[0].is_default && !list[1].is_default);
    assert!(list[1].ephemeral);
    assert_eq!(list[1].display_name, "dm");

    // Seeds come back and sign.
    let got = store.posting_identity(pid(&b)).unwrap().unwrap();
    assert_eq!(*got.secret_seed, *b.seed());
    assert_eq!(got.signing_key().public(), b.public());
    assert!(store.posting_identity(pid(&key(3))).unwrap().is_none());

    store.set_default_posting_identity(pid(&b)).unwrap();
    assert_eq!(store.default_posting_identity().unwrap().unwrap(), ib);
    assert!(matches!(
        store.set_default_posting_identity(pid(&key(3))),
        Err(StoreError::NotFound { .. })
    ));

    // A seed that is not the key's is refused.
    let mut bad = PostingIdentity::from_key(&key(4), "bad", 1, false);
    bad.posting_id = pid(&key(6));
    assert!(matches!(
        store.add_posting_identity(&bad),
        Err(StoreError::InvalidArgument(_))
    ));

    // Removing the default leaves no default.
    assert!(store.remove_posting_identity(pid(&b)).unwrap());
    assert!(!store.remove_posting_identity(pid(&b)).unwrap());
    assert!(store.default_posting_identity().unwrap().is_none());
    assert_eq!(store.posting_identities().unwrap().len(), 1);
}

// ---------------------------------------------------------------------------
// Posts
// ---------------------------------------------------------------------------

#[test]
fn insert_and_read_posts() {
    let store = Store::open_in_memory().unwrap();
    let (alice, bob) = (key(2), key(3));
    let mut rng = DetRng::new(1);
    let p1 = public_post(&alice, 100, "one");
    let p2 = sealed_post(&alice, 200, &[pid(&bob)], &mut rng);
    let p3 = public_post(&bob, 150, "bob");

    let s1 = new_seq(store.insert_post(&p1, 1_000).unwrap());
    let s2 = new_seq(store.insert_post(&p2, 1_001).unwrap());
    let s3 = new_seq(store.insert_post(&p3, 1_002).unwrap());
    assert!(s1 < s2 && s2 < s3, "seq is monotonic");
    assert_eq!(store.insert_post(&p1, 2_000).unwrap(), Inserted::Duplicate);
    assert_eq!(store.post_seq(p1.post_id()).unwrap(), Some(s1));

    assert_eq!(store.get_post(p2.post_id()).unwrap().unwrap(), p2);
    assert!(store.get_post(PostId([0; 32])).unwrap().is_none());

    // Feed: reverse chronological, paged by (created_at, post_id).
    let feed = store.feed(10, None).unwrap();
    assert_eq!(feed, vec![p2.clone(), p3.clone(), p1.clone()]);
    let page1 = store.feed(2, None).unwrap();
    assert_eq!(page1, vec![p2.clone(), p3.clone()]);
    let last = &page1[1];
    let page2 = store
        .feed(2, Some((last.post.body().created_at_ms, last.post_id())))
        .unwrap();
    assert_eq!(page2, vec![p1.clone()]);

    assert_eq!(
        store.posts_by_author(pid(&alice), 10, None).unwrap(),
        vec![p2.clone(), p1.clone()]
    );
    assert_eq!(
        store
            .posts_by_author(pid(&alice), 10, Some((200, p2.post_id())))
            .unwrap(),
        vec![p1.clone()]
    );
    assert_eq!(
        store.posts_to_recipient(pid(&bob), 10).unwrap(),
        vec![p2.clone()]
    );
    assert!(store
        .posts_to_recipient(pid(&alice), 10)
        .unwrap()
        .is_empty());
}

#[test]
fn invalid_posts_are_refused() {
    let store = Store::open_in_memory().unwrap();
    let alice = key(2);
    let good = public_post(&alice, 1, "x");
    // Tampered signature.
    let bad_sig = SyncPost {
        post: Signed::from_parts_unchecked(
            good.post.body().clone(),
            good.post.bytes().to_vec(),
            [0; 64],
        ),
        ..good.clone()
    };
    assert!(matches!(
        store.insert_post(&bad_sig, 1),
        Err(StoreError::Invalid(IngestError::BadSignature { .. }))
    ));
    // Encrypted visibility on a plain post.
    let mismatch = SyncPost {
        visibility: encrypted_to(&[pid(&key(3))]),
        ..good.clone()
    };
    assert!(matches!(
        store.insert_post(&mismatch, 1),
        Err(StoreError::Invalid(IngestError::Malformed { .. }))
    ));
    assert!(store.feed(10, None).unwrap().is_empty());

    // Batch: the invalid one fails alone.
    let out = store
        .insert_posts(&[good.clone(), bad_sig, good.clone()], 5)
        .unwrap();
    assert!(matches!(out[0], Ok(Inserted::New { .. })));
    assert!(matches!(out[1], Err(StoreError::Invalid(_))));
    assert!(matches!(out[2], Ok(Inserted::Duplicate)));
    assert_eq!(store.feed(10, None).unwrap(), vec![good]);
}

/// A pull page and the cursor past it commit together; without a cursor
/// the stored one stays.
#[test]
fn insert_page_sets_the_cursor_with_the_posts() {
    let store = Store::open_in_memory().unwrap();
    let alice = key(2);
    let peer = nid(&key(9));
    let posts = [public_post(&alice, 1, "a"), public_post(&alice, 2, "b")];
    let out = store.insert_page(&posts, 5, Some((peer, 42))).unwrap();
    assert!(out.iter().all(|r| matches!(r, Ok(Inserted::New { .. }))));
    assert_eq!(store.get_cursor(peer).unwrap(), 42);
    let more = [public_post(&alice, 3, "c")];
    store.insert_page(&more, 6, None).unwrap();
    assert_eq!(store.get_cursor(peer).unwrap(), 42);
    store.insert_page(&more, 7, Some((peer, 50))).unwrap();
    assert_eq!(store.get_cursor(peer).unwrap(), 50);
    assert_eq!(store.feed(10, None).unwrap().len(), 3);
}

// ---------------------------------------------------------------------------
// Pull
// ---------------------------------------------------------------------------

#[test]
fn pull_follows_the_filter_rules() {
    let store = Store::open_in_memory().unwrap();
    let (me, alice, bob, carol) = (key(1), key(2), key(3), key(4));
    let mut rng = DetRng::new(2);
    let own_public = public_post(&me, 1, "mine");
    let alice_public = public_post(&alice, 2, "alice");
    let bob_public = public_post(&bob, 3, "bob, not followed");
    let alice_to_carol = sealed_post(&alice, 4, &[pid(&carol)], &mut rng);
    let bob_to_me = sealed_post(&bob, 5, &[PostingId(me.public())], &mut rng);
    let alice_self_wrap = sealed_post(&alice, 6, &[pid(&alice), pid(&bob)], &mut rng);
    let own_to_bob = sealed_post(&me, 7, &[pid(&bob)], &mut rng);
    for p in [
        &own_public,
        &alice_public,
        &bob_public,
        &alice_to_carol,
        &bob_to_me,
        &alice_self_wrap,
        &own_to_bob,
    ] {
        store.insert_post(p, 1).unwrap();
    }
    let ids = [alice.public(), me.public()];
    let page = store.pull(nid(&me), &ids, 0, 100).unwrap();
    assert_eq!(
        page.posts,
        vec![own_public, alice_public, bob_to_me, own_to_bob.clone()]
    );
    assert!(!page.more);
    assert_eq!(
        page.next_seq,
        store.post_seq(own_to_bob.post_id()).unwrap().unwrap()
    );

    // Carol finds Alice's post to her without following anyone.
    let page = store.pull(nid(&carol), &[carol.public()], 0, 100).unwrap();
    assert_eq!(page.posts, vec![alice_to_carol]);
    // Nothing after the cursor.
    let again = store
        .pull(nid(&carol), &[carol.public()], page.next_seq, 100)
        .unwrap();
    assert!(again.posts.is_empty() && !again.more);
    assert_eq!(again.next_seq, page.next_seq);
}

#[test]
fn pull_pages_by_cursor() {
    let store = Store::open_in_memory().unwrap();
    let (me, alice, bob) = (key(1), key(2), key(3));
    let mut all = Vec::new();
    for i in 0..10 {
        let p = public_post(&alice, i, &format!("a{i}"));
        store.insert_post(&p, 1).unwrap();
        all.push(p);
        // Interleave posts that do not match.
        store
            .insert_post(&public_post(&bob, i, &format!("b{i}")), 1)
            .unwrap();
    }
    let ids = [alice.public()];
    let mut since = 0;
    let mut got = Vec::new();
    let mut pages = Vec::new();
    loop {
        let page = store.pull(nid(&me), &ids, since, 3).unwrap();
        assert!(page.posts.len() <= 3);
        assert!(page.next_seq >= since);
        got.extend(page.posts.clone());
        pages.push(page.more);
        since = page.next_seq;
        if !page.more {
            break;
        }
    }
    assert_eq!(got, all);
    assert_eq!(pages, vec![true, true, true, false]);

    // limit 0: nothing examined, but `more` tells there is something.
    let page = store.pull(nid(&me), &ids, 0, 0).unwrap();
    assert!(page.posts.is_empty() && page.more && page.next_seq == 0);
}

/// A pool of distinct posts by four authors (public, and encrypted to every
/// non-empty subset of the four), built once: sealing is the slow part.
fn pool() -> &'static (Vec<SigningKey>, Vec<SyncPost>) {
    static POOL: OnceLock<(Vec<SigningKey>, Vec<SyncPost>)> = OnceLock::new();
    POOL.get_or_init(|| {
        let keys: Vec<SigningKey> = (1..=4).map(key).collect();
        let mut rng = DetRng::new(3);
        let mut posts = Vec::new();
        let mut ms = 0;
        for k in &keys {
            for _ in 0..2 {
                ms += 1;
                posts.push(public_post(k, ms, "pool"));
            }
            for mask in 1u8..16 {
                ms += 1;
                let to: Vec<PostingId> = keys
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| mask & (1 << i) != 0)
                    .map(|(_, k)| pid(k))
                    .collect();
                posts.push(sealed_post(k, ms, &to, &mut rng));
            }
        }
        (keys, posts)
    })
}

enum Row {
    Post(Box<SyncPost>),
    /// A tombstone and the post it deleted (a delete goes where the post
    /// went).
    Delete(SignedDeleteRecord, Box<SyncPost>),
}

/// The pull computed in Rust over everything stored: all rows after
/// `since` that `PullFilter` lets through, in seq order, first `limit`.
fn expected_pull(
    rows: &[(u64, Row)],
    requester: NodeId,
    ids: &[[u8; 32]],
    since: u64,
    limit: usize,
) -> PullPage {
    let filter = PullFilter::new(requester, ids.iter().copied());
    let mut matching: Vec<&(u64, Row)> = rows
        .iter()
        .filter(|(seq, _)| *seq > since)
        .filter(|(_, row)| match row {
            Row::Post(p) | Row::Delete(_, p) => {
                let author = p.post.body().author;
                let recips: Vec<PostingId> = p
                    .visibility
                    .recipients()
                    .iter()
                    .map(|w| PostingId(w.recipient))
                    .collect();
                let audience = if p.visibility.is_encrypted() {
                    Audience::Encrypted(&recips)
                } else {
                    Audience::Public
                };
                filter.decide(&author, audience).is_some()
            }
        })
        .collect();
    matching.sort_by_key(|(seq, _)| *seq);
    let more = matching.len() > limit;
    let taken = &matching[..matching.len().min(limit)];
    PullPage {
        posts: taken
            .iter()
            .filter_map(|(_, r)| match r {
                Row::Post(p) => Some((**p).clone()),
                Row::Delete(..) => None,
            })
            .collect(),
        deletes: taken
            .iter()
            .filter_map(|(_, r)| match r {
                Row::Delete(d, _) => Some(d.clone()),
                Row::Post(_) => None,
            })
            .collect(),
        next_seq: taken.last().map_or(since, |(s, _)| *s),
        more,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    /// The SQL pull returns exactly what filtering every stored post and
    /// tombstone through `PullFilter` in Rust returns, page by page.
    #[test]
    fn pull_matches_pull_filter(
        picks in proptest::sample::subsequence((0..68usize).collect::<Vec<_>>(), 0..24)
            .prop_shuffle(),
        deleted in proptest::collection::vec(any::<bool>(), 24),
        requester in 0usize..5,
        id_mask in 0u8..32,
        since in 0u64..40,
        limit in 0usize..12,
    ) {
        let (keys, posts) = pool();
        let store = Store::open_in_memory().unwrap();
        let mut rows: Vec<(u64, Row)> = Vec::new();
        for &i in &picks {
            let seq = new_seq(store.insert_post(&posts[i], 1).unwrap());
            rows.push((seq, Row::Post(Box::new(posts[i].clone()))));
        }
        // Delete some of them (by their authors): the post leaves, a
        // tombstone with a new seq comes in.
        for (n, &i) in picks.iter().enumerate() {
            if !deleted[n] {
                continue;
            }
            let author = keys.iter().find(|k| pid(k) == posts[i].post.body().author).unwrap();
            let record = delete_record(author, posts[i].post_id(), 9);
            let DeleteOutcome::Deleted { seq } = store.apply_delete(&record).unwrap() else {
                panic!("expected Deleted");
            };
            rows.retain(|(_, r)| !matches!(r, Row::Post(p) if p.post_id() == posts[i].post_id()));
            rows.push((seq, Row::Delete(record, Box::new(posts[i].clone()))));
        }
        // Requester: one of the four authors or a stranger; ids: any subset
        // of the authors plus, with bit 4, an unrelated id.
        let requester = keys.get(requester).map_or(NodeId([0xee; 32]), nid);
        let mut ids: Vec<[u8; 32]> = keys
            .iter()
            .enumerate()
            .filter(|(i, _)| id_mask & (1 << i) != 0)
            .map(|(_, k)| k.public())
            .collect();
        if id_mask & 16 != 0 {
            ids.push([0xdd; 32]);
        }

        let got = store.pull(requester, &ids, since, limit).unwrap();
        prop_assert_eq!(&got, &expected_pull(&rows, requester, &ids, since, limit));

        // Paging from 0 with a small limit ends with everything, once.
        let mut cursor = 0;
        let mut paged = PullPage { posts: vec![], deletes: vec![], next_seq: 0, more: false };
        for _ in 0..200 {
            let page = store.pull(requester, &ids, cursor, 3).unwrap();
            paged.posts.extend(page.posts);
            paged.deletes.extend(page.deletes);
            cursor = page.next_seq;
            if !page.more {
                break;
            }
        }
        let all = expected_pull(&rows, requester, &ids, 0, usize::MAX);
        prop_assert_eq!(paged.posts, all.posts);
        prop_assert_eq!(paged.deletes, all.deletes);
    }
}

// ---------------------------------------------------------------------------
// Deletes
// ---------------------------------------------------------------------------

#[test]
fn deletes_and_tombstones() {
    let store = Store::open_in_memory().unwrap();
    let (me, alice, mallory) = (key(1), key(2), key(9));
    let mut rng = DetRng::new(4);
    let post = sealed_post(&alice, 1, &[pid(&me)], &mut rng);
    let id = post.post_id();
    let post_seq = new_seq(store.insert_post(&post, 1).unwrap());

    // Only the author may delete a held post.
    assert!(matches!(
        store.apply_delete(&delete_record(&mallory, id, 5)),
        Err(StoreError::Invalid(IngestError::Unauthorized { .. }))
    ));
    // A bad signature is refused whether or not the post is held.
    let good = delete_record(&alice, id, 5);
    let forged = Signed::from_parts_unchecked(good.body().clone(), good.bytes().to_vec(), [1; 64]);
    assert!(matches!(
        store.apply_delete(&forged),
        Err(StoreError::Invalid(IngestError::BadSignature { .. }))
    ));
    assert!(store.get_post(id).unwrap().is_some());

    let DeleteOutcome::Deleted { seq } = store.apply_delete(&good).unwrap() else {
        panic!("expected Deleted");
    };
    assert!(seq > post_seq);
    assert!(store.get_post(id).unwrap().is_none());
    assert!(store.posts_to_recipient(pid(&me), 10).unwrap().is_empty());
    assert!(store.is_tombstoned(id).unwrap());
    assert_eq!(
        store.apply_delete(&good).unwrap(),
        DeleteOutcome::AlreadyDeleted
    );
    assert_eq!(store.insert_post(&post, 2).unwrap(), Inserted::Tombstoned);

    // The delete travels by pull, on the same cursor, to whoever the post
    // went to: the post was encrypted for me, so by recipient match...
    let page = store
        .pull(nid(&me), &[alice.public(), me.public()], post_seq, 10)
        .unwrap();
    assert!(page.posts.is_empty());
    assert_eq!(page.deletes, vec![good.clone()]);
    assert_eq!(page.next_seq, seq);
    // ... to its author, but not to a follower of Alice who was no
    // recipient (that would reveal the encrypted post existed) ...
    let page = store.pull(nid(&alice), &[], 0, 10).unwrap();
    assert_eq!(page.deletes, vec![good.clone()]);
    let page = store.pull(nid(&mallory), &[alice.public()], 0, 10).unwrap();
    assert!(page.deletes.is_empty());
    // ... and not to others.
    let page = store.pull(nid(&me), &[mallory.public()], 0, 10).unwrap();
    assert!(page.deletes.is_empty());

    let since = store.deletes_since(&[pid(&alice)], 0, 10).unwrap();
    assert_eq!(since.len(), 1);
    assert_eq!(since[0].seq, seq);
    assert_eq!(since[0].record, good);
    assert!(store
        .deletes_since(&[pid(&alice)], seq, 10)
        .unwrap()
        .is_empty());
    assert!(store.deletes_since(&[pid(&me)], 0, 10).unwrap().is_empty());
}

#[test]
fn deletes_for_posts_not_held() {
    let store = Store::open_in_memory().unwrap();
    let (alice, mallory) = (key(2), key(9));
    let post = public_post(&alice, 1, "later");
    let id = post.post_id();

    // A forged tombstone (Mallory claims Alice's post) cannot be checked
    // without the post; it is recorded, but does not keep the post out.
    assert!(matches!(
        store.apply_delete(&delete_record(&mallory, id, 2)).unwrap(),
        DeleteOutcome::Recorded { .. }
    ));
    assert!(matches!(
        store.insert_post(&post, 3).unwrap(),
        Inserted::New { .. }
    ));
    // ... and is dropped once the post shows its real author.
    assert!(store
        .deletes_since(&[pid(&mallory)], 0, 10)
        .unwrap()
        .is_empty());

    // The real author's delete for a post we do not hold keeps it out.
    let other = public_post(&alice, 5, "deleted before we saw it");
    assert!(matches!(
        store
            .apply_delete(&delete_record(&alice, other.post_id(), 6))
            .unwrap(),
        DeleteOutcome::Recorded { .. }
    ));
    assert_eq!(store.insert_post(&other, 7).unwrap(), Inserted::Tombstoned);
}

// ---------------------------------------------------------------------------
// Visibility updates
// ---------------------------------------------------------------------------

#[test]
fn visibility_updates() {
    let store = Store::open_in_memory().unwrap();
    let (alice, bob, carol, mallory) = (key(2), key(3), key(4), key(9));
    let mut rng = DetRng::new(5);
    let post = sealed_post(&alice, 1, &[pid(&bob)], &mut rng);
    let id = post.post_id();
    let s1 = new_seq(store.insert_post(&post, 1).unwrap());

    // Carol is past the post already and not a recipient.
    assert!(store
        .pull(nid(&carol), &[carol.public()], 0, 10)
        .unwrap()
        .posts
        .is_empty());

    let add_carol = vis_update(&alice, id, &[pid(&bob), pid(&carol)], 10);
    let VisibilityOutcome::Applied { seq: s2 } = store.apply_visibility_update(&add_carol).unwrap()
    else {
        panic!("expected Applied");
    };
    assert!(s2 > s1);
    let stored = store.get_post(id).unwrap().unwrap();
    assert_eq!(stored.visibility_update.as_ref(), Some(&add_carol));
    assert_eq!(stored.visibility, add_carol.body().visibility);
    assert!(stored.visibility_signature.is_none());
    stored.validate(Some(id)).unwrap();

    // The post moved in store order: Carol finds it past her old cursor.
    let page = store.pull(nid(&carol), &[carol.public()], s1, 10).unwrap();
    assert_eq!(page.posts, vec![stored.clone()]);
    assert_eq!(store.posts_to_recipient(pid(&bob), 10).unwrap().len(), 1);

    // Sync access list: drop Bob.
    let only_carol = vis_update(&alice, id, &[pid(&carol)], 20);
    assert!(matches!(
        store.apply_visibility_update(&only_carol).unwrap(),
        VisibilityOutcome::Applied { .. }
    ));
    assert!(store
        .pull(nid(&bob), &[bob.public()], 0, 10)
        .unwrap()
        .posts
        .is_empty());
    assert!(store.posts_to_recipient(pid(&bob), 10).unwrap().is_empty());

    assert_eq!(
        store.apply_visibility_update(&only_carol).unwrap(),
        VisibilityOutcome::Unchanged
    );
    assert_eq!(
        store.apply_visibility_update(&add_carol).unwrap(),
        VisibilityOutcome::Stale {
            held_ms: 20,
            got_ms: 10
        }
    );
    assert!(matches!(
        store.apply_visibility_update(&vis_update(&mallory, id, &[pid(&mallory)], 30)),
        Err(StoreError::Invalid(IngestError::Unauthorized { .. }))
    ));
    assert_eq!(
        store
            .apply_visibility_update(&vis_update(&alice, PostId([3; 32]), &[pid(&bob)], 30))
            .unwrap(),
        VisibilityOutcome::NotHeld
    );
}

// ---------------------------------------------------------------------------
// Profiles, follows, circles, audience
// ---------------------------------------------------------------------------

#[test]
fn profiles_newest_wins() {
    let store = Store::open_in_memory().unwrap();
    let alice = key(2);
    let anchors = vec![NodeId([7; 32]), NodeId([8; 32])];
    let v1 = profile(&alice, "Alice", anchors.clone(), 10);
    assert_eq!(store.upsert_profile(&v1).unwrap(), Upsert::Updated);
    assert_eq!(store.upsert_profile(&v1).unwrap(), Upsert::Same);
    let got = store.get_profile(pid(&alice)).unwrap().unwrap();
    assert_eq!(got, v1);
    assert_eq!(got.body().anchors, anchors);

    let v2 = profile(&alice, "Alice B.", vec![NodeId([9; 32])], 20);
    assert_eq!(store.upsert_profile(&v2).unwrap(), Upsert::Updated);
    assert_eq!(store.upsert_profile(&v1).unwrap(), Upsert::Stale);
    // Same time, other bytes: the first one seen is kept.
    let v2b = profile(&alice, "Other", vec![], 20);
    assert_eq!(store.upsert_profile(&v2b).unwrap(), Upsert::Stale);
    assert_eq!(store.get_profile(pid(&alice)).unwrap().unwrap(), v2);
    assert_eq!(store.profiles().unwrap(), vec![v2.clone()]);

    let forged = Signed::from_parts_unchecked(v2.body().clone(), v2.bytes().to_vec(), [0; 64]);
    assert!(matches!(
        store.upsert_profile(&forged),
        Err(StoreError::Invalid(_))
    ));
    assert!(store.get_profile(pid(&key(3))).unwrap().is_none());
}

/// Gives `store` a default posting identity (key 1, "me"): follows
/// belong to a persona.
fn with_me(store: &Store) -> PostingId {
    let me = PostingIdentity::from_key(&key(1), "me", 1, false);
    store.add_posting_identity(&me).unwrap();
    me.posting_id
}

#[test]
fn follows() {
    let store = Store::open_in_memory().unwrap();
    // No persona to follow from: refused, nothing written.
    assert!(store.follow(pid(&key(2)), 1).is_err());
    let me = with_me(&store);
    let (a, b) = (pid(&key(2)), pid(&key(3)));
    assert!(store.follow(b, 2).unwrap());
    assert!(store.follow(a, 3).unwrap());
    assert!(!store.follow(a, 4).unwrap());
    assert_eq!(store.follows().unwrap(), vec![b, a]);
    assert!(store.is_following(a).unwrap());
    assert_eq!(store.unfollow(a).unwrap(), 1);
    assert_eq!(store.unfollow(a).unwrap(), 0);
    assert!(!store.is_following(a).unwrap());
    assert_eq!(store.follows().unwrap(), vec![b]);

    // Follows belong to personas: one id, two personas, listed once.
    let work = PostingIdentity::from_key(&key(4), "work", 2, false);
    store.add_posting_identity(&work).unwrap();
    assert!(store.follow_as(b, work.posting_id, 5).unwrap());
    assert!(store.follow_as(a, work.posting_id, 6).unwrap());
    assert_eq!(store.follows().unwrap(), vec![b, a]);
    assert_eq!(store.follows_of(me).unwrap(), vec![b]);
    assert_eq!(store.follows_of(work.posting_id).unwrap(), vec![b, a]);
    assert!(store.unfollow_as(b, work.posting_id).unwrap());
    assert!(!store.unfollow_as(b, work.posting_id).unwrap());
    assert_eq!(store.follows_of(me).unwrap(), vec![b]);
    // Removing a persona removes its follows.
    assert!(store.remove_posting_identity(work.posting_id).unwrap());
    assert_eq!(store.follows().unwrap(), vec![b]);
    assert_eq!(
        store
            .follow_entries()
            .unwrap()
            .iter()
            .map(|f| (f.posting_id, f.persona))
            .collect::<Vec<_>>(),
        vec![(b, me)]
    );
}

#[test]
fn circles() {
    let store = Store::open_in_memory().unwrap();
    let (a, b) = (pid(&key(2)), pid(&key(3)));
    store.create_circle("friends", 1).unwrap();
    store.create_circle("work", 2).unwrap();
    assert!(matches!(
        store.create_circle("friends", 3),
        Err(StoreError::AlreadyExists { .. })
    ));
    assert!(matches!(
        store.create_circle("  ", 3),
        Err(StoreError::InvalidArgument(_))
    ));
    assert!(store.add_circle_member("friends", a, 5).unwrap());
    assert!(store.add_circle_member("friends", b, 6).unwrap());
    assert!(!store.add_circle_member("friends", a, 7).unwrap());
    assert!(matches!(
        store.add_circle_member("nope", a, 7),
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(store.circle_members("friends").unwrap(), vec![a, b]);

    assert!(matches!(
        store.rename_circle("friends", "work"),
        Err(StoreError::AlreadyExists { .. })
    ));
    assert!(matches!(
        store.rename_circle("nope", "x"),
        Err(StoreError::NotFound { .. })
    ));
    store.rename_circle("friends", "close friends").unwrap();
    assert_eq!(store.circle_members("close friends").unwrap(), vec![a, b]);
    assert!(matches!(
        store.circle_members("friends"),
        Err(StoreError::NotFound { .. })
    ));

    assert!(store.remove_circle_member("close friends", a).unwrap());
    assert!(!store.remove_circle_member("close friends", a).unwrap());
    let list = store.circles().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0].name, "close friends");
    assert_eq!(list[0].members, 1);
    assert_eq!(list[1].name, "work");
    assert_eq!(list[1].members, 0);

    assert!(store.delete_circle("close friends").unwrap());
    assert!(!store.delete_circle("close friends").unwrap());
    // The name is free again, with no members left over.
    store.create_circle("close friends", 9).unwrap();
    assert!(store.circle_members("close friends").unwrap().is_empty());
}

#[test]
fn audience_requests_and_members() {
    let store = Store::open_in_memory().unwrap();
    let (me, bob, carol) = (key(1), key(3), key(4));
    let request = |k: &SigningKey, msg: &str, ms: u64| {
        Signed::sign(
            AudienceRequestBody {
                requester: pid(k),
                author: pid(&me),
                message: msg.into(),
                created_at_ms: ms,
            },
            k,
        )
    };
    let r1 = request(&bob, "hi", 10);
    assert!(store.add_audience_request(&r1, 11).unwrap());
    assert!(!store.add_audience_request(&r1, 12).unwrap());
    let r2 = request(&bob, "hi again", 20);
    assert!(store.add_audience_request(&r2, 21).unwrap());
    assert!(store
        .add_audience_request(&request(&carol, "me too", 15), 16)
        .unwrap());
    assert_eq!(
        store.audience_requests(pid(&me)).unwrap(),
        vec![request(&carol, "me too", 15), r2.clone()]
    );
    let forged = Signed::from_parts_unchecked(r2.body().clone(), r2.bytes().to_vec(), [0; 64]);
    assert!(matches!(
        store.add_audience_request(&forged, 1),
        Err(StoreError::Invalid(_))
    ));

    assert!(store
        .approve_audience_member(pid(&me), pid(&bob), 30)
        .unwrap());
    assert!(!store
        .approve_audience_member(pid(&me), pid(&bob), 31)
        .unwrap());
    assert!(store.is_audience_member(pid(&me), pid(&bob)).unwrap());
    // A member's further requests are not pending.
    assert!(!store
        .add_audience_request(&request(&bob, "again", 40), 41)
        .unwrap());
    assert!(store.deny_audience_request(pid(&me), pid(&carol)).unwrap());
    assert!(!store.deny_audience_request(pid(&me), pid(&carol)).unwrap());
    assert!(store.audience_requests(pid(&me)).unwrap().is_empty());
    let members = store.audience_members(pid(&me)).unwrap();
    assert_eq!(members.len(), 1);
    assert_eq!(members[0].member, pid(&bob));
    assert_eq!(members[0].approved_at_ms, 30);
    assert!(store.remove_audience_member(pid(&me), pid(&bob)).unwrap());
    assert!(!store.is_audience_member(pid(&me), pid(&bob)).unwrap());
}

// ---------------------------------------------------------------------------
// Peers, cursors, recent lists, blobs
// ---------------------------------------------------------------------------

#[test]
fn peers_and_cursors() {
    let store = Store::open_in_memory().unwrap();
    let (p1, p2) = (NodeId([1; 32]), NodeId([2; 32]));
    let v4: SocketAddr = "192.0.2.1:4433".parse().unwrap();
    let v6: SocketAddr = "[2001:db8::1]:443".parse().unwrap();
    store.upsert_peer(p1, &[v4, v6], false, 100).unwrap();
    store.upsert_peer(p2, &[], true, 200).unwrap();
    let got = store.get_peer(p1).unwrap().unwrap();
    assert_eq!(got.addresses, vec![v4, v6]);
    assert!(!got.is_anchor);
    assert_eq!(got.last_seen_ms, 100);
    let list = store.peers(10).unwrap();
    assert_eq!(
        list.iter().map(|p| p.node_id).collect::<Vec<_>>(),
        vec![p2, p1]
    );
    assert_eq!(store.peers(1).unwrap().len(), 1);

    // Upsert replaces addresses and flag; last_seen never moves back.
    store.upsert_peer(p1, &[v6], true, 50).unwrap();
    let got = store.get_peer(p1).unwrap().unwrap();
    assert_eq!(got.addresses, vec![v6]);
    assert!(got.is_anchor);
    assert_eq!(got.last_seen_ms, 100);
    store.upsert_peer(p1, &[v6], true, 300).unwrap();
    assert_eq!(store.peers(10).unwrap()[0].node_id, p1);

    assert_eq!(store.get_cursor(p1).unwrap(), 0);
    store.set_cursor(p1, 42).unwrap();
    store.set_cursor(p1, 43).unwrap();
    assert_eq!(store.get_cursor(p1).unwrap(), 43);
    assert_eq!(store.get_cursor(p2).unwrap(), 0);

    assert!(store.remove_peer(p1).unwrap());
    assert!(store.get_peer(p1).unwrap().is_none());
    assert_eq!(store.get_cursor(p1).unwrap(), 0);
    assert!(store.get_peer(NodeId([3; 32])).unwrap().is_none());
}

#[test]
fn recent_posts_seq_rule() {
    let store = Store::open_in_memory().unwrap();
    let alice = key(2);
    let l45 = recent(&alice, 45, 1, 2);
    let l50 = recent(&alice, 50, 2, 3);
    let l50b = recent(&alice, 50, 3, 1);
    assert!(store.get_recent(pid(&alice)).unwrap().is_none());
    assert_eq!(store.put_recent(&l45).unwrap(), RecentDecision::Accept);
    assert_eq!(store.put_recent(&l50).unwrap(), RecentDecision::Accept);
    assert_eq!(store.put_recent(&l45).unwrap(), RecentDecision::Stale);
    assert_eq!(store.put_recent(&l50).unwrap(), RecentDecision::Duplicate);
    assert_eq!(store.put_recent(&l50b).unwrap(), RecentDecision::Conflict);
    assert_eq!(store.get_recent(pid(&alice)).unwrap().unwrap(), l50);
    let forged = Signed::from_parts_unchecked(l50.body().clone(), l50.bytes().to_vec(), [0; 64]);
    assert!(matches!(
        store.put_recent(&forged),
        Err(StoreError::Invalid(_))
    ));
    // The full u64 range of seq is honoured (no SQL integer clamp).
    let huge = recent(&alice, u64::MAX, 4, 1);
    assert_eq!(store.put_recent(&huge).unwrap(), RecentDecision::Accept);
    let max_minus = recent(&alice, u64::MAX - 1, 5, 1);
    assert_eq!(store.put_recent(&max_minus).unwrap(), RecentDecision::Stale);
}

#[test]
fn blobs() {
    let store = Store::open_in_memory().unwrap();
    let data = vec![0xab; 1000];
    let id = store.put_blob(&data, 1).unwrap();
    assert_eq!(id, BlobId::of_blob(&data));
    assert_eq!(store.put_blob(&data, 2).unwrap(), id);
    assert!(store.has_blob(id).unwrap());
    assert_eq!(store.get_blob(id).unwrap().unwrap(), data);
    assert!(!store.has_blob(BlobId([0; 32])).unwrap());
    assert!(store.get_blob(BlobId([0; 32])).unwrap().is_none());

    let max = vec![1u8; MAX_BLOB_BYTES];
    assert!(store.put_blob(&max, 3).is_ok());
    assert!(matches!(
        store.put_blob(&[0u8; MAX_BLOB_BYTES + 1], 3),
        Err(StoreError::TooLarge { got, .. }) if got == MAX_BLOB_BYTES + 1
    ));
}

// ---------------------------------------------------------------------------
// Persistence
// ---------------------------------------------------------------------------

#[test]
fn everything_survives_reopen() {
    let dir = tmp();
    let path = dir.path().join("node.sqlite");
    let (me, alice, bob) = (key(1), key(2), key(3));
    let mut rng = DetRng::new(6);
    let public = public_post(&alice, 10, "persist");
    let sealed = sealed_post(&alice, 20, &[pid(&me)], &mut rng);
    let gone = public_post(&alice, 30, "deleted");
    let identity = PostingIdentity::from_key(&me, "me", 1, false);
    let prof = profile(&alice, "Alice", vec![NodeId([7; 32])], 5);
    let list = recent(&alice, 3, 4, 2);
    let addr: SocketAddr = "198.51.100.7:9000".parse().unwrap();
    let request = Signed::sign(
        AudienceRequestBody {
            requester: pid(&bob),
            author: pid(&me),
            message: "let me in".into(),
            created_at_ms: 8,
        },
        &bob,
    );
    let (blob_id, seq_before);
    {
        let store = Store::open(&path).unwrap();
        store.add_posting_identity(&identity).unwrap();
        store.insert_post(&public, 1).unwrap();
        store.insert_post(&sealed, 1).unwrap();
        store.insert_post(&gone, 1).unwrap();
        store
            .apply_delete(&delete_record(&alice, gone.post_id(), 31))
            .unwrap();
        store.upsert_profile(&prof).unwrap();
        store.follow(pid(&alice), 2).unwrap();
        store.create_circle("friends", 3).unwrap();
        store.add_circle_member("friends", pid(&bob), 3).unwrap();
        store.upsert_peer(nid(&bob), &[addr], true, 9).unwrap();
        store.set_cursor(nid(&bob), 17).unwrap();
        store.put_recent(&list).unwrap();
        blob_id = store.put_blob(b"avatar", 4).unwrap();
        store.add_audience_request(&request, 9).unwrap();
        store
            .approve_audience_member(pid(&me), pid(&alice), 9)
            .unwrap();
        seq_before = store.post_seq(sealed.post_id()).unwrap().unwrap();
    }
    let store = Store::open(&path).unwrap();
    assert_eq!(store.default_posting_identity().unwrap().unwrap(), identity);
    assert_eq!(
        store.feed(10, None).unwrap(),
        vec![sealed.clone(), public.clone()]
    );
    assert_eq!(store.insert_post(&gone, 5).unwrap(), Inserted::Tombstoned);
    assert_eq!(store.get_profile(pid(&alice)).unwrap().unwrap(), prof);
    assert_eq!(store.follows().unwrap(), vec![pid(&alice)]);
    assert_eq!(store.circle_members("friends").unwrap(), vec![pid(&bob)]);
    let peer = store.get_peer(nid(&bob)).unwrap().unwrap();
    assert_eq!((peer.addresses, peer.is_anchor), (vec![addr], true));
    assert_eq!(store.get_cursor(nid(&bob)).unwrap(), 17);
    assert_eq!(store.get_recent(pid(&alice)).unwrap().unwrap(), list);
    assert_eq!(store.get_blob(blob_id).unwrap().unwrap(), b"avatar");
    assert_eq!(store.audience_requests(pid(&me)).unwrap(), vec![request]);
    assert!(store.is_audience_member(pid(&me), pid(&alice)).unwrap());
    // Store order continues after the tombstone, never reuses a seq.
    let next = new_seq(
        store
            .insert_post(&public_post(&alice, 40, "after"), 6)
            .unwrap(),
    );
    assert!(next > seq_before + 1);
    let page = store.pull(nid(&me), &[me.public()], 0, 10).unwrap();
    assert_eq!(page.posts, vec![sealed]);
}

// ---------------------------------------------------------------------------
// Two processes (node + CLI) on one file
// ---------------------------------------------------------------------------

#[test]
fn two_stores_on_one_file_both_write() {
    let dir = tmp();
    let path = dir.path().join("node.sqlite");
    let node = Store::open(&path).unwrap();
    with_me(&node);
    let cli = Store::open(&path).unwrap();
    let writers: Vec<_> = [(node.clone(), 0u8), (cli.clone(), 1u8)]
        .into_iter()
        .map(|(store, who)| {
            std::thread::spawn(move || {
                for i in 0..60u8 {
                    store.follow(PostingId([who * 100 + i; 32]), 1).unwrap();
                    store.set_cursor(NodeId([who; 32]), u64::from(i)).unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    assert_eq!(node.follows().unwrap().len(), 120);
    assert_eq!(cli.follows().unwrap().len(), 120);
    assert_eq!(cli.get_cursor(NodeId([0; 32])).unwrap(), 59);
}

#[test]
fn writer_waits_for_the_other_process_lock() {
    let dir = tmp();
    let path = dir.path().join("node.sqlite");
    let store = Store::open(&path).unwrap();
    with_me(&store);
    // Another process holds the write lock for a while.
    let other = Connection::open(&path).unwrap();
    other
        .execute_batch(
            "BEGIN IMMEDIATE;
             INSERT INTO follows (posting_id, persona, followed_at_ms)
             VALUES (zeroblob(32), (SELECT posting_id FROM default_posting_identity), 1);",
        )
        .unwrap();
    let release = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(400));
        other.execute_batch("COMMIT").unwrap();
    });
    let t0 = Instant::now();
    assert!(store.follow(PostingId([5; 32]), 2).unwrap());
    assert!(t0.elapsed() >= Duration::from_millis(300));
    release.join().unwrap();
    assert_eq!(store.follows().unwrap().len(), 2);
}

#[test]
fn clones_share_one_connection_across_threads() {
    let store = Store::open_in_memory().unwrap();
    with_me(&store);
    let handles: Vec<_> = (0..4u8)
        .map(|t| {
            let s = store.clone();
            std::thread::spawn(move || {
                for i in 0..10u8 {
                    s.follow(PostingId([t * 16 + i; 32]), 1).unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(store.follows().unwrap().len(), 40);
}

// ---------------------------------------------------------------------------
// Migration from the committed version-1 fixture
// ---------------------------------------------------------------------------

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/store-v1.sqlite"
);

/// What the version-1 fixture holds; deterministic, so the test can compare
/// against values rebuilt here.
struct V1Data {
    me: PostingIdentity,
    alice: SigningKey,
    bob: SigningKey,
    public: SyncPost,
    sealed: SyncPost,
    profile: SignedProfile,
}

fn v1_data() -> V1Data {
    let (me, alice, bob) = (key(1), key(2), key(3));
    let mut rng = DetRng::new(42);
    V1Data {
        me: PostingIdentity::from_key(&me, "me", 1_700_000_000_000, false),
        public: public_post(&alice, 1_700_000_001_000, "hello from schema v1"),
        sealed: sealed_post(&alice, 1_700_000_002_000, &[pid(&bob), pid(&me)], &mut rng),
        profile: profile(&alice, "Alice", vec![NodeId([0xa1; 32])], 1_700_000_000_500),
        alice,
        bob,
    }
}

/// Writes a version-1 database the way version-1 code laid it out: the
/// migration-1 SQL and raw inserts (no current-code paths), so the fixture
/// stays a faithful old file.
fn write_v1_db(path: &Path) {
    let d = v1_data();
    let conn = Connection::open(path).unwrap();
    conn.execute_batch(MIGRATIONS[0]).unwrap();
    conn.pragma_update(None, "user_version", 1).unwrap();
    conn.execute(
        "INSERT INTO posting_identities VALUES (?1, ?2, ?3, ?4, 0)",
        rusqlite::params![
            &d.me.posting_id.0[..],
            &d.me.secret_seed[..],
            d.me.display_name,
            1_700_000_000_000i64
        ],
    )
    .unwrap();
    conn.execute(
        "INSERT INTO default_posting_identity VALUES (1, ?1)",
        [&d.me.posting_id.0[..]],
    )
    .unwrap();
    for (seq, p) in [(1i64, &d.public), (2, &d.sealed)] {
        let id = p.post_id();
        conn.execute(
            "INSERT INTO posts (post_id, seq, author, created_at_ms, encrypted, received_at_ms, sync_post)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            rusqlite::params![
                &id.0[..],
                seq,
                &p.post.body().author.0[..],
                p.post.body().created_at_ms as i64,
                p.visibility.is_encrypted(),
                1_700_000_003_000i64,
                codec::canonical_of(p),
            ],
        )
        .unwrap();
        for w in p.visibility.recipients() {
            conn.execute(
                "INSERT INTO post_recipients (post_id, recipient) VALUES (?1, ?2)",
                rusqlite::params![&id.0[..], &w.recipient[..]],
            )
            .unwrap();
        }
    }
    conn.execute("UPDATE counters SET value = 2 WHERE name = 'seq'", [])
        .unwrap();
    conn.execute(
        "INSERT INTO follows VALUES (?1, 1700000000100)",
        [&d.alice.public()[..]],
    )
    .unwrap();
    conn.execute(
        "INSERT INTO profiles VALUES (?1, ?2, ?3, ?4)",
        rusqlite::params![
            &d.alice.public()[..],
            d.profile.body().updated_at_ms as i64,
            d.profile.bytes(),
            &d.profile.signature()[..]
        ],
    )
    .unwrap();
    conn.execute_batch("VACUUM").unwrap();
}

/// Generates the version-1 fixture. Always builds it in a temporary
/// directory and checks that it upgrades; with `DISTSOC_WRITE_FIXTURES=1`
/// also (re)writes `node/tests/fixtures/store-v1.sqlite`.
#[test]
fn v1_fixture_generator() {
    let dir = tmp();
    let path = dir.path().join("v1.sqlite");
    write_v1_db(&path);
    check_upgraded_v1(&path);
    if std::env::var("DISTSOC_WRITE_FIXTURES").as_deref() == Ok("1") {
        let out = Path::new(FIXTURE);
        std::fs::create_dir_all(out.parent().unwrap()).unwrap();
        let _ = std::fs::remove_file(out);
        write_v1_db(out);
    }
}

#[test]
fn v1_fixture_upgrades_to_current_schema() {
    let dir = tmp();
    let path = dir.path().join("copy.sqlite");
    std::fs::copy(FIXTURE, &path).expect("committed fixture tests/fixtures/store-v1.sqlite");
    {
        let raw = Connection::open(&path).unwrap();
        let v: u32 = raw
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(v, 1, "the fixture is a version-1 database");
    }
    check_upgraded_v1(&path);
}

fn check_upgraded_v1(path: &Path) {
    let d = v1_data();
    let store = Store::open(path).unwrap();
    assert_eq!(store.schema_version().unwrap(), supported_version());

    // The version-1 data survived.
    assert_eq!(store.default_posting_identity().unwrap().unwrap(), d.me);
    assert_eq!(
        store.get_post(d.public.post_id()).unwrap().unwrap(),
        d.public
    );
    assert_eq!(
        store.get_post(d.sealed.post_id()).unwrap().unwrap(),
        d.sealed
    );
    assert_eq!(store.follows().unwrap(), vec![pid(&d.alice)]);
    let prof = store.get_profile(pid(&d.alice)).unwrap().unwrap();
    assert_eq!(prof, d.profile);
    assert_eq!(prof.body().anchors, vec![NodeId([0xa1; 32])]);

    // Migration 2 backfilled the recipient index: Bob, who follows no one,
    // finds the sealed post by recipient match.
    let page = store.pull(nid(&d.bob), &[d.bob.public()], 0, 10).unwrap();
    assert_eq!(page.posts, vec![d.sealed.clone()]);
    assert_eq!(page.next_seq, 2);
    assert_eq!(
        store.posts_to_recipient(pid(&d.bob), 10).unwrap(),
        vec![d.sealed.clone()]
    );

    // The new tables and index exist and work.
    {
        let raw = Connection::open(path).unwrap();
        for (kind, name) in [
            ("index", "post_recipients_by_recipient"),
            ("table", "audience_requests"),
            ("table", "audience_members"),
        ] {
            let n: i64 = raw
                .query_row(
                    "SELECT count(*) FROM sqlite_schema WHERE type = ?1 AND name = ?2",
                    [kind, name],
                    |r| r.get(0),
                )
                .unwrap();
            assert_eq!(n, 1, "{kind} {name} missing after upgrade");
        }
        let zero: i64 = raw
            .query_row(
                "SELECT count(*) FROM post_recipients WHERE seq = 0",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(zero, 0, "every recipient row has its post's seq");
    }
    assert!(store
        .approve_audience_member(d.me.posting_id, pid(&d.bob), 5)
        .unwrap());
    // Store order continues from the version-1 counter.
    let next = new_seq(
        store
            .insert_post(&public_post(&d.alice, 1_800_000_000_000, "v2"), 7)
            .unwrap(),
    );
    assert_eq!(next, 3);
}
