//! Pull-sync throughput between two user nodes (issue 3). Results and the
//! machine they were taken on are recorded in `docs/BENCHMARKS.md`.
//!
//! ```sh
//! cargo bench -p distsoc-node --bench pull_sync
//! ```
//!
//! # `pull_sync/*`: end to end
//!
//! Two real nodes in one process (real quinn endpoints on 127.0.0.1, real
//! SQLite files with the node's pragmas — WAL, `synchronous = FULL` — in
//! temporary directories on the machine's disk):
//!
//! * **A**, the author, holds `N` posts with a 1 KiB text each, built once
//!   with `compose::compose` by A's posting key and stored with
//!   `Store::insert_posts`; A serves pages of `max_pull_batch` (200, the
//!   default) posts.
//! * **B**, the reader, starts empty for every iteration: a copy of a
//!   template node directory (fixed key, empty store) opened with
//!   `Node::open`, started, and connected to A (QUIC handshake, `Hello`,
//!   profile exchange). All of that is setup, outside the measurement.
//!
//! One iteration is one `Running::sync_with(A)` from cursor 0: every page
//! requested, validated (signatures) and stored in B's store, its posts
//! checked for attachment blobs to fetch (there are none), until A says
//! there is no more. Throughput is posts per second.
//!
//! * `public/N`: public posts; B follows A (the author arm of the pull).
//! * `encrypted_to_reader/N`: posts sealed to B (recipients: A and B); B
//!   does not follow A, so it gets them by recipient match only. Each
//!   carries a visibility signature, so B verifies two signatures per post.
//!
//! `pull_sync_cpu/*` runs the same syncs and reports the process's CPU time
//! (both nodes, every thread) instead of wall time: on a shared machine it
//! stays put where wall time swings with the load.
//!
//! # `pull_sync_parts/*`: where the time goes
//!
//! The pieces of one 200-post page, measured alone:
//!
//! * `validate/*`: `SyncPost::validate` of one post alone;
//! * `validate_page_batched/*`: `SyncPost::validate_all` of a page, per post
//!   (what `Store::insert_posts` does: the page's signatures in one batch);
//! * `readable_attachments/*`: B's per-post check for attachment blobs to
//!   fetch after storing a page (`Running::fetch_missing_blobs`), which
//!   opens the post with each of B's keys;
//! * `store_insert_page/*`: `Store::insert_posts` of a page into an empty
//!   on-disk store (validation + SQL + one commit);
//! * `store_pull_page/*`: `Store::pull` of a page from A's store (A's side:
//!   the candidate query, reading and decoding each post, the pull filter).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::cell::OnceCell;
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use criterion::{
    criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, SamplingMode, Throughput,
};
use distsoc_net::now_ms;
use distsoc_net::transport::Peer;
use distsoc_node::compose::compose;
use distsoc_node::node::{Node, Running};
use distsoc_node::store::Store;
use distsoc_protocol::ids::{ConnectString, NodeId, PostingId};
use distsoc_protocol::messages::content::SyncPost;
use tempfile::TempDir;
use tokio::runtime::Runtime;

const LOOPBACK: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0);

/// Bytes of text in every post.
const TEXT_BYTES: usize = 1024;

/// Posts per pull page (the node's default `max_pull_batch`).
const PAGE: usize = 200;

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A 1 KiB text, distinct per `i`.
fn text(i: usize) -> String {
    let mut s = format!("post {i:07} ");
    s.extend(std::iter::repeat_n('x', TEXT_BYTES - s.len()));
    s
}

/// `n` posts by `author`, public or sealed to `audience`, oldest first.
fn build_posts(author: &Node, n: usize, audience: Option<&[PostingId]>) -> Vec<SyncPost> {
    let key = author.posting_key().unwrap();
    let base = now_ms() - n as u64;
    (0..n)
        .map(|i| {
            compose(
                &key,
                base + i as u64,
                text(i),
                Vec::new(),
                audience,
                &mut rand_core::OsRng,
            )
            .unwrap()
        })
        .collect()
}

/// The author node A, serving its posts.
struct Author {
    _dir: TempDir,
    running: Running,
    id: PostingId,
    connect: ConnectString,
}

impl Author {
    /// A started node holding `n` posts (sealed to `audience` if given).
    fn new(rt: &Runtime, n: usize, audience: Option<&[PostingId]>) -> Author {
        let dir = tempfile::tempdir().unwrap();
        let node = Node::init(dir.path(), None).unwrap();
        let posts = build_posts(&node, n, audience);
        for chunk in posts.chunks(1000) {
            let results = node.store().insert_posts(chunk, now_ms()).unwrap();
            assert!(results.iter().all(Result::is_ok));
        }
        let running = rt.block_on(node.start(Some(LOOPBACK))).unwrap();
        let connect = running.connect_string().unwrap().parse().unwrap();
        Author {
            _dir: dir,
            id: PostingId(node.node_id().0),
            running,
            connect,
        }
    }
}

/// A node directory with a fixed key and an empty store, copied for every
/// fresh reader (so that posts can be sealed to the reader in advance).
struct Template {
    dir: TempDir,
    id: PostingId,
}

impl Template {
    fn new() -> Template {
        let dir = tempfile::tempdir().unwrap();
        let node = Node::init(dir.path(), None).unwrap();
        let id = PostingId(node.node_id().0);
        drop(node); // closes the store: the file is complete on disk
        Template { dir, id }
    }

    /// A copy of the template directory.
    fn copy(&self) -> TempDir {
        let dir = tempfile::tempdir().unwrap();
        copy_files(self.dir.path(), dir.path());
        dir
    }
}

fn copy_files(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

/// The reader B for one iteration: empty store, connected to A.
struct Reader {
    _dir: TempDir,
    running: Running,
    peer: Peer,
    rt: tokio::runtime::Handle,
}

impl Reader {
    fn new(rt: &Runtime, template: &Template, author: &Author, follow: bool) -> Reader {
        let dir = template.copy();
        let node = Node::open(dir.path()).unwrap();
        if follow {
            node.store().follow(author.id, 1).unwrap();
        }
        let running = rt.block_on(node.start(Some(LOOPBACK))).unwrap();
        let peer = rt.block_on(running.connect(&author.connect)).unwrap();
        Reader {
            _dir: dir,
            running,
            peer,
            rt: rt.handle().clone(),
        }
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        // The node's service holds the transport and the transport holds the
        // service (an `Arc` cycle), so dropping `Running` never closes the
        // endpoint: close it here (outside the timing).
        self.rt.block_on(self.running.transport().close());
    }
}

/// CPU time of this process so far (`CLOCK_PROCESS_CPUTIME_ID`: every
/// thread of both nodes).
fn process_cpu_time() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    Duration::new(
        u64::try_from(t.tv_sec).unwrap_or(0),
        u32::try_from(t.tv_nsec).unwrap_or(0),
    )
}

fn end_to_end(c: &mut Criterion) {
    let rt = runtime();
    let template = Template::new();
    let public_1k: OnceCell<Author> = OnceCell::new();
    let public_10k: OnceCell<Author> = OnceCell::new();
    let sealed_1k: OnceCell<Author> = OnceCell::new();

    let mut group = c.benchmark_group("pull_sync");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1));
    let cases: [(&str, usize, &OnceCell<Author>, bool, u64); 3] = [
        ("public", 1_000, &public_1k, false, 5),
        ("public", 10_000, &public_10k, false, 30),
        ("encrypted_to_reader", 1_000, &sealed_1k, true, 8),
    ];
    for (name, n, cell, sealed, secs) in cases {
        group
            .throughput(Throughput::Elements(n as u64))
            .measurement_time(Duration::from_secs(secs));
        group.bench_function(BenchmarkId::new(name, n), |b| {
            let author = cell.get_or_init(|| {
                let audience = [template.id];
                Author::new(&rt, n, sealed.then_some(&audience[..]))
            });
            b.iter_batched(
                || Reader::new(&rt, &template, author, !sealed),
                |reader| {
                    let report = rt.block_on(reader.running.sync_with(&reader.peer)).unwrap();
                    assert_eq!(report.new_posts, n, "{report:?}");
                    reader
                },
                BatchSize::PerIteration,
            );
        });
    }
    group.finish();

    // The same syncs in CPU time of the whole process (both nodes): the
    // figure that holds on a shared machine, where wall time swings with
    // the load.
    let mut group = c.benchmark_group("pull_sync_cpu");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1));
    for (name, n, cell, sealed, secs) in cases {
        group
            .throughput(Throughput::Elements(n as u64))
            .measurement_time(Duration::from_secs(secs));
        group.bench_function(BenchmarkId::new(name, n), |b| {
            let author = cell.get_or_init(|| {
                let audience = [template.id];
                Author::new(&rt, n, sealed.then_some(&audience[..]))
            });
            b.iter_custom(|iters| {
                let mut cpu = Duration::ZERO;
                for _ in 0..iters {
                    let reader = Reader::new(&rt, &template, author, !sealed);
                    let start = process_cpu_time();
                    let report = rt.block_on(reader.running.sync_with(&reader.peer)).unwrap();
                    cpu += process_cpu_time().saturating_sub(start);
                    assert_eq!(report.new_posts, n, "{report:?}");
                }
                cpu
            });
        });
    }
    group.finish();
    for cell in [public_1k, public_10k, sealed_1k] {
        if let Some(author) = cell.into_inner() {
            rt.block_on(author.running.transport().close());
        }
    }
}

fn parts(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let author = Node::init(dir.path(), None).unwrap();
    let reader = Template::new();
    let public = build_posts(&author, PAGE, None);
    let sealed = build_posts(&author, PAGE, Some(&[reader.id]));

    let reader_dir = reader.copy();
    let reader_node = Node::open(reader_dir.path()).unwrap();

    let mut group = c.benchmark_group("pull_sync_parts");
    // Flat: the page benchmarks take tens of milliseconds per iteration.
    group
        .sample_size(20)
        .sampling_mode(SamplingMode::Flat)
        .measurement_time(Duration::from_secs(5));
    for (name, posts) in [("public", &public), ("encrypted", &sealed)] {
        group.throughput(Throughput::Elements(1));
        group.bench_function(BenchmarkId::new("validate", name), |b| {
            b.iter(|| black_box(&posts[0]).validate(None).unwrap());
        });
        group.bench_function(BenchmarkId::new("validate_page_batched", name), |b| {
            let mut rng = rand_core::OsRng;
            b.iter_custom(|iters| {
                let start = std::time::Instant::now();
                for _ in 0..iters {
                    let ids = SyncPost::validate_all(black_box(posts.as_slice()), &mut rng);
                    assert!(ids.iter().all(Result::is_ok));
                }
                // Per post, like `validate`.
                start.elapsed() / PAGE as u32
            });
        });
        group.bench_function(BenchmarkId::new("readable_attachments", name), |b| {
            let keys = reader_node.reading_keys().unwrap();
            b.iter(|| Node::readable_attachments(black_box(&posts[0]), &keys));
        });
        group.throughput(Throughput::Elements(PAGE as u64));
        group.bench_function(BenchmarkId::new("store_insert_page", name), |b| {
            b.iter_batched(
                || {
                    let dir = tempfile::tempdir().unwrap();
                    let store = Store::open(dir.path().join("store.sqlite")).unwrap();
                    (dir, store)
                },
                |(dir, store)| {
                    let results = store.insert_posts(posts, now_ms()).unwrap();
                    assert!(results.iter().all(Result::is_ok));
                    (dir, store)
                },
                BatchSize::PerIteration,
            );
        });
    }
    // A's side: one page of each kind from a store holding both.
    author.store().insert_posts(&public, now_ms()).unwrap();
    author.store().insert_posts(&sealed, now_ms()).unwrap();
    let author_id = author.node_id().0;
    let requester = NodeId(reader.id.0);
    for (name, ids) in [
        ("public_follower", vec![reader.id.0, author_id]),
        ("encrypted_recipient", vec![reader.id.0]),
    ] {
        group.throughput(Throughput::Elements(PAGE as u64));
        group.bench_function(BenchmarkId::new("store_pull_page", name), |b| {
            b.iter(|| {
                let page = author.store().pull(requester, &ids, 0, PAGE).unwrap();
                assert_eq!(page.posts.len(), PAGE);
                page
            });
        });
    }
    group.finish();
}

criterion_group!(benches, end_to_end, parts);
criterion_main!(benches);
