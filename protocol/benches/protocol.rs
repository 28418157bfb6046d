//! Hot-path benchmarks of the protocol core. Results and the machine they
//! were taken on are recorded in docs/BENCHMARKS.md.
//!
//! ```sh
//! cargo bench -p distsoc-protocol --bench protocol
//! ```
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use distsoc_protocol::codec;
use distsoc_protocol::envelope::{self, Cek};
use distsoc_protocol::frame::decode_frame;
use distsoc_protocol::ids::{PostId, PostingId};
use distsoc_protocol::messages::content::{Post, PostVisibility, SyncPost};
use distsoc_protocol::messages::social::PushPost;
use distsoc_protocol::messages::Message;
use distsoc_protocol::sign::{self, Purpose, SigningKey};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

fn key(i: u8) -> SigningKey {
    SigningKey::from_seed(&[i; 32])
}

/// A public post whose canonical encoding is about 1 KiB.
fn post_1k() -> SyncPost {
    let k = key(1);
    let post = Post::new_public(
        PostingId(k.public()),
        1_700_000_000_000,
        "x".repeat(950),
        vec![],
    )
    .sign(&k)
    .unwrap();
    SyncPost::new(&k, post, PostVisibility::Public, None)
}

fn posts(c: &mut Criterion) {
    let post = post_1k();
    let frame = Message::from(PushPost {
        version: 2,
        post: post.clone(),
        recent: None,
    })
    .to_frame()
    .unwrap();
    let mut g = c.benchmark_group("post_1k");
    g.throughput(Throughput::Bytes(post.post.bytes().len() as u64));
    g.bench_function("encode_frame", |b| {
        b.iter(|| {
            Message::from(PushPost {
                version: 2,
                post: black_box(post.clone()),
                recent: None,
            })
            .to_frame()
            .unwrap()
        })
    });
    g.bench_function("decode_frame_and_validate_message", |b| {
        b.iter(|| {
            let f = decode_frame(black_box(&frame)).unwrap();
            Message::from_frame(&f).unwrap()
        })
    });
    g.bench_function("canonical_bytes", |b| {
        b.iter(|| codec::canonical_of(black_box(post.post.body())))
    });
    g.bench_function("post_id_blake3", |b| {
        b.iter(|| PostId::of_canonical(black_box(post.post.bytes())))
    });
    g.bench_function("ingest_validate_with_signature", |b| {
        b.iter(|| black_box(&post).validate(None).unwrap())
    });
    g.finish();
}

/// CPU time of this thread so far (`CLOCK_THREAD_CPUTIME_ID`). The
/// verifier benchmarks report CPU time per operation: on a shared machine it
/// stays put where wall time swings with the load (docs/BENCHMARKS.md).
fn thread_cpu_time() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(
        u64::try_from(t.tv_sec).unwrap_or(0),
        u32::try_from(t.tv_nsec).unwrap_or(0),
    )
}

/// Criterion's `iter`, timed in thread CPU time.
fn iter_cpu<O>(b: &mut criterion::Bencher<'_>, mut f: impl FnMut() -> O) {
    b.iter_custom(|iters| {
        let start = thread_cpu_time();
        for _ in 0..iters {
            black_box(f());
        }
        thread_cpu_time().saturating_sub(start)
    })
}

/// The verifiers, in thread CPU time: one-pass single (`verify_1k`), the
/// two-pass reference it replaced (`verify_1k_two_pass`), and batches of
/// distinct authors and of 16 authors (the load generator's shape), new and
/// reference.
fn signatures(c: &mut Criterion) {
    let k = key(2);
    let msg = vec![7u8; 1024];
    let sig = k.sign(Purpose::Post, &msg);
    let public = k.public();
    let mut g = c.benchmark_group("ed25519");
    g.bench_function("sign_1k", |b| {
        iter_cpu(b, || k.sign(Purpose::Post, black_box(&msg)))
    });
    g.bench_function("verify_1k", |b| {
        iter_cpu(b, || {
            sign::verify(&public, Purpose::Post, black_box(&msg), &sig).unwrap()
        })
    });
    let input = sign::signing_input(Purpose::Post, &msg);
    g.bench_function("verify_1k_two_pass", |b| {
        iter_cpu(b, || {
            sign::reference::verify_raw(&public, black_box(&input), &sig).unwrap()
        })
    });
    for (n, authors) in [(16usize, 16usize), (64, 64), (64, 16), (256, 256)] {
        let keys: Vec<SigningKey> = (0..authors).map(|i| key(i as u8)).collect();
        let msgs: Vec<Vec<u8>> = (0..n).map(|i| vec![i as u8; 1024]).collect();
        let sigs: Vec<[u8; 64]> = (0..n)
            .map(|i| keys[i % authors].sign(Purpose::Post, &msgs[i]))
            .collect();
        let items: Vec<_> = (0..n)
            .map(|i| {
                (
                    keys[i % authors].public(),
                    Purpose::Post,
                    msgs[i].as_slice(),
                    sigs[i],
                )
            })
            .collect();
        let id = format!("{n}x{authors}authors");
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(
            BenchmarkId::new("verify_batch_1k", &id),
            &items,
            |b, items| {
                let mut rng = ChaCha20Rng::seed_from_u64(1);
                iter_cpu(b, || {
                    sign::verify_batch(black_box(items), &mut rng).unwrap()
                })
            },
        );
        if n <= 64 {
            g.bench_with_input(
                BenchmarkId::new("verify_batch_1k_two_pass", &id),
                &items,
                |b, items| {
                    let mut rng = ChaCha20Rng::seed_from_u64(1);
                    iter_cpu(b, || {
                        sign::reference::verify_batch(black_box(items), &mut rng).unwrap()
                    })
                },
            );
        }
    }
    g.finish();
}

fn envelopes(c: &mut Criterion) {
    let body = vec![3u8; 1024];
    let mut g = c.benchmark_group("envelope");
    for n in [1usize, 10, 100, 1000] {
        let recipients: Vec<SigningKey> = (0..n)
            .map(|i| SigningKey::from_seed(&blake3::hash(&(i as u64).to_le_bytes()).into()))
            .collect();
        let ids: Vec<[u8; 32]> = recipients.iter().map(SigningKey::public).collect();
        let cek = Cek::from_bytes([9; 32]);
        let sealed = envelope::seal_with(&body, &ids, &cek, &[1; 12], &[5; 32]).unwrap();
        let last = recipients[n - 1].seed();
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::new("seal_1k", n), &ids, |b, ids| {
            b.iter(|| envelope::seal_with(black_box(&body), ids, &cek, &[1; 12], &[5; 32]).unwrap())
        });
        // Opening cost for the recipient listed last (worst case lookup).
        g.bench_with_input(
            BenchmarkId::new("open_1k_last_recipient", n),
            &sealed,
            |b, sealed| b.iter(|| envelope::open(&last, black_box(sealed)).unwrap()),
        );
    }
    g.finish();
}

/// Sealing and opening an identity bundle with the parameters an export
/// uses (Argon2id 64 MiB, 3 passes, 1 lane): a person with one persona,
/// 200 follows and 5 circles of 20. Argon2id dominates; the target is that a
/// person waits well under a second on a laptop and an attacker pays the
/// same per guess.
fn bundles(c: &mut Criterion) {
    use distsoc_protocol::messages::identity::{
        BundleCircle, BundleFollow, EncryptedIdentityBundle, IdentityBundle, KdfParams,
    };
    let id = |i: u64| PostingId(*blake3::hash(&i.to_le_bytes()).as_bytes());
    let mut bundle = IdentityBundle::new(key(1).seed(), 1);
    bundle.follows = (0..200)
        .map(|i| BundleFollow {
            posting_id: id(i),
            followed_at_ms: i,
            persona: None,
        })
        .collect();
    bundle.circles = (0..5)
        .map(|c| BundleCircle {
            name: format!("circle {c}"),
            created_at_ms: c,
            members: (0..20).map(|m| id(1000 + c * 20 + m)).collect(),
        })
        .collect();
    let params = KdfParams::recommended([7; 16]);
    let pass = b"correct horse battery staple";
    let sealed = EncryptedIdentityBundle::seal(&bundle, pass, params, [1; 12]).unwrap();
    let mut g = c.benchmark_group("bundle");
    g.sample_size(10);
    g.bench_function("seal_64MiB_t3", |b| {
        b.iter(|| EncryptedIdentityBundle::seal(black_box(&bundle), pass, params, [1; 12]).unwrap())
    });
    g.bench_function("open_64MiB_t3", |b| {
        b.iter(|| black_box(&sealed).open(pass).unwrap())
    });
    g.finish();
}

criterion_group!(benches, posts, signatures, envelopes, bundles);
criterion_main!(benches);
