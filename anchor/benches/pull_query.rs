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
//! batches of 1,000 from 4 threads (full validation, signatures included),
//! then `ANALYZE`d. Building 10^6 posts takes a few minutes; it is setup, not
//! measured. On PostgreSQL the tables are emptied (`TRUNCATE`) before each
//! size.
//!
//! # What is measured
//!
//! One [`AnchorStore::pull_stored`] of one page (limit 200, the anchor's
//! default `max_pull_batch`) by a reader who follows 100 authors and is a
//! recipient of some sealed posts: candidate query (index range scans per
//! id), reading the rows, the pull filter (the posts are not decoded).
//!
//! * `first_page/N`: from cursor 0 (a new follower).
//! * `catch_up/N`: from a cursor 1,000 posts behind the head (a node that
//!   was offline for a while).
//! * `up_to_date/N`: from the head (nothing new: the common poll).
//!
//! Each also as `…_reply`: the page and the `PullSyncResponse` frame the
//! anchor sends (posts copied from their stored bytes), and
//! `…_decoded_reply`: the same frame built the earlier way (every post
//! decoded, then the reply encoded).
//!
//! `DISTSOC_BENCH_CPU=ITERS` replaces criterion: per query, `ITERS`
//! replies of each kind, alternately, three times, reported as CPU per
//! reply of this process and (PostgreSQL) of the cluster's processes,
//! which holds on a loaded machine where wall times do not.
//!
//! If the query cost grows with `N` (a table scan), `catch_up` and
//! `up_to_date` at 10^6 are orders of magnitude slower than at 10^4.
//!
//! # Keeping the data between runs
//!
//! Storing 10^6 posts takes minutes. With `DISTSOC_BENCH_KEEP=DIR` the
//! SQLite databases are kept as `DIR/pull-N.sqlite`, and a database (SQLite
//! file or the PostgreSQL one) that already holds exactly `N` posts is
//! used as it is: no posts are built or stored. Only the last size stays
//! in the PostgreSQL database, so keep one size per run there.
//! `DISTSOC_BENCH_SQLITE=0` leaves SQLite out.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode};
use distsoc_anchor::store::AnchorStore;
use distsoc_protocol::ids::{NodeId, PostingId};
use distsoc_protocol::messages::content::{seal_post, Post, PostBody, PostVisibility, SyncPost};
use distsoc_protocol::messages::Message;
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
            rotation: None,
            archive: None,
            group: None,
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

/// Threads that build and store the data set (setup only; the queries
/// are measured on the benchmark's own runtime).
const SETUP_THREADS: usize = 4;

/// The data set of size `n` (built once, shared by the backends): built in
/// [`SETUP_THREADS`] contiguous parts, each with its own seeded RNG.
fn build_data(n: usize) -> Vec<SyncPost> {
    let authors: Vec<SigningKey> = (0..AUTHORS).map(key).collect();
    let started = Instant::now();
    let part = n.div_ceil(SETUP_THREADS);
    let posts: Vec<SyncPost> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..SETUP_THREADS)
            .map(|t| {
                let authors = &authors;
                s.spawn(move || {
                    let mut rng = ChaCha20Rng::seed_from_u64((n * SETUP_THREADS + t) as u64);
                    (t * part..((t + 1) * part).min(n))
                        .map(|i| post(i, authors, &mut rng))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    eprintln!("  {n} posts built in {:.1?}", started.elapsed());
    posts
}

/// Stores `posts` in batches of [`BATCH`] from [`SETUP_THREADS`] threads
/// (each validates its batches: the validation is most of the cost), then
/// `ANALYZE`s. Seqs interleave between the threads' batches.
fn fill(rt: &tokio::runtime::Runtime, store: &AnchorStore, posts: &[SyncPost]) {
    let n = posts.len();
    let started = Instant::now();
    let batches: Vec<&[SyncPost]> = posts.chunks(BATCH).collect();
    std::thread::scope(|s| {
        for t in 0..SETUP_THREADS {
            let batches = &batches;
            s.spawn(move || {
                for (k, batch) in batches.iter().enumerate().skip(t).step_by(SETUP_THREADS) {
                    for r in rt.block_on(store.insert_posts(batch, T0)).unwrap() {
                        r.unwrap();
                    }
                    let i = (k + 1) * BATCH;
                    if i.is_multiple_of(100_000) {
                        eprintln!("  ~{i} posts stored ({:.0?})", started.elapsed());
                    }
                }
            });
        }
    });
    rt.block_on(store.analyze()).unwrap();
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

/// The data sets, built on first use (a kept database needs none).
struct Sets(Vec<(usize, Option<Vec<SyncPost>>)>);

impl Sets {
    fn get(&mut self, i: usize) -> &[SyncPost] {
        let (n, set) = &mut self.0[i];
        set.get_or_insert_with(|| build_data(*n))
    }
}

fn keep_dir() -> Option<std::path::PathBuf> {
    std::env::var_os("DISTSOC_BENCH_KEEP").map(Into::into)
}

fn bench_store(c: &mut Criterion, backend: &str, url: Option<&str>, sets: &mut Sets) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (me, ids) = reader();
    let mut group = c.benchmark_group(format!("pull_query_{backend}"));
    group.sampling_mode(SamplingMode::Flat);
    for i in 0..sets.0.len() {
        let n = sets.0[i].0;
        let dir = tempfile::tempdir().unwrap();
        let keep = keep_dir();
        let store = rt.block_on(async {
            let url = match (url, &keep) {
                (Some(u), _) => u.to_owned(),
                (None, Some(k)) => {
                    format!("sqlite:{}", k.join(format!("pull-{n}.sqlite")).display())
                }
                (None, None) => format!("sqlite:{}", dir.path().join("bench.sqlite").display()),
            };
            AnchorStore::open(&url).await.unwrap()
        });
        let held = rt.block_on(store.stats()).unwrap().posts;
        if keep.is_some() && held == n as u64 {
            eprintln!("{backend}: using the {n} posts already stored");
        } else {
            if let Some(u) = url {
                rt.block_on(truncate(u));
            } else if held != 0 {
                panic!("{backend}: the kept database holds {held} posts, not {n}: remove it");
            }
            eprintln!("{backend}: storing {n} posts");
            fill(&rt, &store, sets.get(i));
        }
        let head = n as u64;
        let queries = [
            ("first_page", 0),
            ("catch_up", head.saturating_sub(1_000)),
            ("up_to_date", head),
        ];
        if let Some(iters) = cpu_iters() {
            for (name, since) in queries {
                cpu_per_op(&rt, &store, url, name, n, since, iters);
            }
            drop(store);
            continue;
        }
        for (name, since) in queries {
            let page = rt.block_on(store.pull(me, &ids, since, PAGE)).unwrap();
            eprintln!(
                "  {name}/{n}: {} posts in the page, more = {}",
                page.posts.len(),
                page.more
            );
            // The page as the anchor reads it (stored bytes, not decoded).
            group.bench_with_input(BenchmarkId::new(name, n), &since, |b, &since| {
                b.iter(|| {
                    rt.block_on(store.pull_stored(me, black_box(&ids), since, PAGE))
                        .unwrap()
                });
            });
            // The page and the reply frame the anchor sends for it.
            let reply = format!("{name}_reply");
            group.bench_with_input(BenchmarkId::new(reply, n), &since, |b, &since| {
                b.iter(|| reply_frame(&rt, &store, me, black_box(&ids), since));
            });
            // The same frame built the earlier way: every post decoded,
            // then the reply encoded.
            let decoded = format!("{name}_decoded_reply");
            group.bench_with_input(BenchmarkId::new(decoded, n), &since, |b, &since| {
                b.iter(|| decoded_reply_frame(&rt, &store, me, black_box(&ids), since));
            });
        }
        drop(store);
    }
    group.finish();
}

/// One page and its `PullSyncResponse` frame, as the anchor's handler
/// and its stream build them: the posts copied from their stored bytes.
fn reply_frame(
    rt: &tokio::runtime::Runtime,
    store: &AnchorStore,
    me: NodeId,
    ids: &[[u8; 32]],
    since: u64,
) -> Vec<u8> {
    let page = rt
        .block_on(store.pull_stored(me, ids, since, PAGE))
        .unwrap();
    page.into_response().to_frame().unwrap()
}

/// The same frame built by decoding every post and encoding the reply
/// (how the anchor built it before).
fn decoded_reply_frame(
    rt: &tokio::runtime::Runtime,
    store: &AnchorStore,
    me: NodeId,
    ids: &[[u8; 32]],
    since: u64,
) -> Vec<u8> {
    let page = rt.block_on(store.pull(me, ids, since, PAGE)).unwrap();
    Message::PullSyncResponse(page.into_response())
        .to_frame()
        .unwrap()
}

/// `DISTSOC_BENCH_CPU=N`: instead of criterion, time `N` replies of each
/// kind as CPU per reply (see [`cpu_per_op`]).
fn cpu_iters() -> Option<usize> {
    std::env::var("DISTSOC_BENCH_CPU").ok().map(|v| {
        v.parse()
            .expect("DISTSOC_BENCH_CPU: a number of iterations")
    })
}

/// utime + stime of a process, in clock ticks (1/100 s).
fn ticks(pid: &str) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces).
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    if f.len() < 13 {
        return 0;
    }
    f[11].parse::<u64>().unwrap_or(0) + f[12].parse::<u64>().unwrap_or(0)
}

/// The PostgreSQL cluster's processes: the postmaster (the parent of a
/// backend) and its children.
fn pg_pids(url: &str, rt: &tokio::runtime::Runtime) -> Vec<String> {
    let backend: i32 = rt.block_on(async {
        let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .unwrap();
        let driver = tokio::spawn(conn);
        let pid: i32 = client
            .query_one("SELECT pg_backend_pid()", &[])
            .await
            .unwrap()
            .get(0);
        drop(client);
        let _ = driver.await;
        pid
    });
    let ppid = |pid: &str| -> String {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
        rest.split_whitespace().nth(1).unwrap_or("").to_owned()
    };
    let master = ppid(&backend.to_string());
    let mut out = vec![master.clone()];
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.bytes().all(|b| b.is_ascii_digit()) && ppid(&name) == master {
            out.push(name);
        }
    }
    out
}

/// CPU per reply of one query, the stored-bytes reply and the decoded
/// one alternately (three rounds of `iters` each): this process (the
/// store calls, the reply built) and, on PostgreSQL, the cluster's
/// processes, in µs per reply, with the wall time.
fn cpu_per_op(
    rt: &tokio::runtime::Runtime,
    store: &AnchorStore,
    url: Option<&str>,
    name: &str,
    n: usize,
    since: u64,
    iters: usize,
) {
    let (me, ids) = reader();
    let pg = url.map(|u| pg_pids(u, rt)).unwrap_or_default();
    let pg_ticks = || pg.iter().map(|p| ticks(p)).sum::<u64>();
    for round in 0..3 {
        for stored in [true, false] {
            let (t0, p0, w0) = (ticks("self"), pg_ticks(), Instant::now());
            let mut bytes = 0usize;
            for _ in 0..iters {
                bytes = if stored {
                    reply_frame(rt, store, me, black_box(&ids), since).len()
                } else {
                    decoded_reply_frame(rt, store, me, black_box(&ids), since).len()
                };
            }
            let per = |t: u64| t as f64 * 10_000.0 / iters as f64;
            eprintln!(
                "cpu {name}/{n} round {round} {}: {:.0} µs self + {:.0} µs postgres per reply, wall {:.0} µs, {bytes} bytes, load {}",
                if stored { "stored " } else { "decoded" },
                per(ticks("self") - t0),
                per(pg_ticks() - p0),
                w0.elapsed().as_micros() as f64 / iters as f64,
                std::fs::read_to_string("/proc/loadavg")
                    .unwrap_or_default()
                    .split_whitespace()
                    .next()
                    .unwrap_or("?"),
            );
        }
    }
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
    let mut sets = Sets(sizes().into_iter().map(|n| (n, None)).collect());
    if std::env::var("DISTSOC_BENCH_SQLITE").as_deref() == Ok("0") {
        eprintln!("DISTSOC_BENCH_SQLITE=0: SQLite skipped");
    } else {
        bench_store(c, "sqlite", None, &mut sets);
    }
    match std::env::var("DISTSOC_BENCH_PG") {
        Ok(url) => bench_store(c, "postgres", Some(&url), &mut sets),
        Err(_) => eprintln!("DISTSOC_BENCH_PG not set: PostgreSQL skipped"),
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30);
    targets = pull_query
}
criterion_main!(benches);
