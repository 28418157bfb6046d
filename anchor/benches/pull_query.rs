//! Pull-sync query time on the anchor's store at growing table sizes
//! (issue 4: "pull-sync query time at 10^4 and 10^6 stored posts"). Results
//! and the machine are recorded in `docs/BENCHMARKS.md`.
//!
//! ```sh
//! # SQLite only, 10^4 posts (the default):
//! cargo bench -p distsoc-anchor --bench pull_query
//! # Both sizes, and PostgreSQL too (an empty database you can write to):
//! DISTSOC_BENCH_POSTS=10000,1000000 \
//! DISTSOC_BENCH_PG="host=/tmp/pgb user=postgres dbname=distsoc" \
//!   cargo bench -p distsoc-anchor --bench pull_query
//! ```
//!
//! # The data
//!
//! `N` posts by 1,000 authors, round robin, 1 KiB of text each; every tenth
//! post is sealed to 3 distinct recipients drawn from 10,000 identities (so the
//! recipient index holds 30% of `N` rows), the rest are public. They are
//! built once per size, inserted with [`AnchorStore::insert_posts`] in
//! batches of 1,000 (full validation, signatures included), then
//! `ANALYZE`d. Building 10^6 posts takes a few minutes; it is setup, not
//! measured. On PostgreSQL the tables are emptied (`TRUNCATE`) before each
//! size.
//!
//! # What is measured
//!
//! One [`AnchorStore::pull`] of one page (limit 200, the anchor's default
//! `max_pull_batch`) by a reader who follows 100 authors and is a recipient
//! of some sealed posts: candidate query (index range scans per id), reading
//! and decoding the rows, the pull filter.
//!
//! * `first_page/N`: from cursor 0 (a new follower).
//! * `catch_up/N`: from a cursor 1,000 posts behind the head (a node that
//!   was offline for a while).
//! * `up_to_date/N`: from the head (nothing new: the common poll).
//!
//! If the query cost grows with `N` (a table scan), `catch_up` and
//! `up_to_date` at 10^6 are orders of magnitude slower than at 10^4.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode};
use distsoc_anchor::store::AnchorStore;
use distsoc_protocol::ids::{NodeId, PostingId};
use distsoc_protocol::messages::content::{seal_post, Post, PostBody, PostVisibility, SyncPost};
use distsoc_protocol::sign::SigningKey;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;

const AUTHORS: usize = 1_000;
const IDENTITIES: usize = 10_000;
const FOLLOWED: usize = 100;
const PAGE: usize = 200;
const BATCH: usize = 1_000;
const T0: u64 = 1_800_000_000_000;

fn key(i: usize) -> SigningKey {
    let mut seed = [0u8; 32];
    seed[..8].copy_from_slice(&(i as u64).to_le_bytes());
    seed[31] = 0xA5;
    SigningKey::from_seed(&seed)
}

fn sizes() -> Vec<usize> {
    std::env::var("DISTSOC_BENCH_POSTS")
        .unwrap_or_else(|_| "10000".into())
        .split(',')
        .map(|s| {
            s.trim()
                .parse()
                .expect("DISTSOC_BENCH_POSTS: comma-separated counts")
        })
        .collect()
}

/// Builds post `i` of the data set.
fn post(i: usize, authors: &[SigningKey], rng: &mut ChaCha20Rng) -> SyncPost {
    let k = &authors[i % AUTHORS];
    let ms = T0 + i as u64;
    let text = format!("{i:>1024}");
    if i % 10 == 9 {
        let mut to: Vec<PostingId> = Vec::with_capacity(3);
        while to.len() < 3 {
            let r = PostingId(key(AUTHORS + (rng.next_u32() as usize % IDENTITIES)).public());
            if !to.contains(&r) {
                to.push(r);
            }
        }
        let body = PostBody {
            text,
            attachments: vec![],
        };
        let (p, v) = seal_post(k, ms, &body, &to, rng).unwrap();
        SyncPost::new(k, p, v, None)
    } else {
        let p = Post::new_public(PostingId(k.public()), ms, text, vec![])
            .sign(k)
            .unwrap();
        SyncPost::new(k, p, PostVisibility::Public, None)
    }
}

/// The data set of size `n` (built once, shared by the backends).
fn data(n: usize) -> Vec<SyncPost> {
    let authors: Vec<SigningKey> = (0..AUTHORS).map(key).collect();
    let mut rng = ChaCha20Rng::seed_from_u64(n as u64);
    let started = Instant::now();
    let posts = (0..n).map(|i| post(i, &authors, &mut rng)).collect();
    eprintln!("  {n} posts built in {:.1?}", started.elapsed());
    posts
}

async fn fill(store: &AnchorStore, posts: &[SyncPost]) {
    let n = posts.len();
    let started = Instant::now();
    for (k, batch) in posts.chunks(BATCH).enumerate() {
        for r in store.insert_posts(batch, T0).await.unwrap() {
            r.unwrap();
        }
        let i = (k + 1) * BATCH;
        if i.is_multiple_of(100_000) {
            eprintln!("  {i} posts stored ({:.0?})", started.elapsed());
        }
    }
    store.analyze().await.unwrap();
    eprintln!("  {n} posts stored in {:.1?}", started.elapsed());
}

/// The reader: follows the first `FOLLOWED` authors and is identity
/// `AUTHORS` (a recipient of some sealed posts).
fn reader() -> (NodeId, Vec<[u8; 32]>) {
    let me = key(AUTHORS);
    let mut ids: Vec<[u8; 32]> = (0..FOLLOWED).map(|i| key(i).public()).collect();
    ids.push(me.public());
    (NodeId(me.public()), ids)
}

fn bench_store(c: &mut Criterion, backend: &str, url: Option<&str>, sets: &[Vec<SyncPost>]) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (me, ids) = reader();
    let mut group = c.benchmark_group(format!("pull_query_{backend}"));
    group.sampling_mode(SamplingMode::Flat);
    for posts in sets {
        let n = posts.len();
        let dir = tempfile::tempdir().unwrap();
        let store = rt.block_on(async {
            let url = match url {
                Some(u) => u.to_owned(),
                None => format!("sqlite:{}", dir.path().join("bench.sqlite").display()),
            };
            let store = AnchorStore::open(&url).await.unwrap();
            if url.starts_with("sqlite:") {
                store
            } else {
                truncate(&url).await;
                store
            }
        });
        eprintln!("{backend}: storing {n} posts");
        rt.block_on(fill(&store, posts));
        let head = n as u64;
        for (name, since) in [
            ("first_page", 0),
            ("catch_up", head.saturating_sub(1_000)),
            ("up_to_date", head),
        ] {
            let page = rt.block_on(store.pull(me, &ids, since, PAGE)).unwrap();
            eprintln!(
                "  {name}/{n}: {} posts in the page, more = {}",
                page.posts.len(),
                page.more
            );
            group.bench_with_input(BenchmarkId::new(name, n), &since, |b, &since| {
                b.iter(|| {
                    rt.block_on(store.pull(me, black_box(&ids), since, PAGE))
                        .unwrap()
                });
            });
        }
        drop(store);
    }
    group.finish();
}

/// Empties the posts tables of the PostgreSQL bench database.
async fn truncate(url: &str) {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    let driver = tokio::spawn(conn);
    client
        .batch_execute(
            "TRUNCATE posts, post_recipients; UPDATE counters SET value = 0 WHERE name = 'post_seq'",
        )
        .await
        .unwrap();
    drop(client);
    let _ = driver.await;
}

fn pull_query(c: &mut Criterion) {
    let sets: Vec<Vec<SyncPost>> = sizes().into_iter().map(data).collect();
    bench_store(c, "sqlite", None, &sets);
    match std::env::var("DISTSOC_BENCH_PG") {
        Ok(url) => bench_store(c, "postgres", Some(&url), &sets),
        Err(_) => eprintln!("DISTSOC_BENCH_PG not set: PostgreSQL skipped"),
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30);
    targets = pull_query
}
criterion_main!(benches);
