//! Validation of deposited posts off the network threads, with the
//! signatures of concurrent deposits verified in one batch, and the batch
//! handed to the store's writer as one job.
//!
//! A `PushPost` handler hands its post to `IngestVerifier::deposit` and
//! awaits the outcome: one hand-off to a verifier thread and one answer
//! back, after the commit. Each verifier thread takes whatever deposits
//! are queued (up to [`MAX_BATCH_POSTS`]), validates them with
//! [`SyncPost::validate_all`] (every check of [`SyncPost::validate`], the
//! signatures of all the posts verified with one
//! [`verify_each`](distsoc_protocol::sign::verify_each)), encodes each valid
//! post's canonical bytes for the store (`PreparedPost`), charges it to the
//! deposit quotas, and hands the charged posts to the store's post writer
//! as one batch (`AnchorStore::submit_posts`). The writer answers each
//! handler after the commit (acknowledged means committed); a post the
//! store did not keep (duplicate, tombstoned, failed) is refunded then.
//!
//! The verdict of every post is exactly what `validate` says of it alone:
//! `verify_each` gives each signature the verdict of its single
//! verification (a batch equation holds whenever every single equation
//! does; when it does not, each signature is checked on its own, reusing its
//! decoded points), and `finish` reports the first failing check in
//! `validate`'s order. A bad signature therefore costs the others of its
//! batch at most one more single verification each, never a different
//! verdict.
//!
//! The queue holds only posts whose handlers are waiting for them, so it is
//! bounded by what the transport lets peers have in flight; it allocates
//! nothing beyond the posts themselves. A full writer queue blocks the
//! verifier thread, which stops taking deposits (backpressure).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};

use distsoc_net::now_ms;
use distsoc_protocol::error::ToWireError;
use distsoc_protocol::ids::NodeId;
use distsoc_protocol::messages::content::SyncPost;
use distsoc_protocol::messages::wire;
use rand_chacha::rand_core::{OsRng, RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use tokio::sync::oneshot;
use tracing::{debug, warn};

use crate::quota::{Charge, QuotaKind, Quotas};
use crate::service::Counters;
use crate::store::{AnchorStore, Inserted, PreparedPost, StoreError};

/// Most posts one verifier thread validates together.
pub const MAX_BATCH_POSTS: usize = 64;

/// What became of a deposit.
#[derive(Debug)]
pub(crate) enum Deposited {
    /// Refused by a deposit quota; nothing charged, nothing stored.
    Refused(wire::Error),
    /// Invalid (its validation error), or not handed to the store;
    /// nothing charged.
    Failed(StoreError),
    /// Charged and handed to the store: the store's result, after the
    /// commit. A post not stored new (duplicate, tombstoned, failed) has
    /// been refunded.
    Stored(Result<Inserted, StoreError>),
}

/// The deposit quotas and their refusal counters, shared by the service
/// and the verifier threads.
#[derive(Debug, Clone)]
pub(crate) struct Admission {
    pub(crate) quotas: Arc<Quotas>,
    pub(crate) counters: Arc<Counters>,
}

impl Admission {
    /// Charges a deposit of `stored_len` canonical bytes by `post`'s author
    /// from `depositor` to their quotas, or refuses it (charging nothing).
    pub(crate) fn admit(
        &self,
        post: &SyncPost,
        depositor: NodeId,
        stored_len: usize,
        now_ms: u64,
    ) -> Result<Charge, wire::Error> {
        let bytes = u64::try_from(stored_len).unwrap_or(u64::MAX);
        self.quotas
            .admit(post.post.body().author, depositor, bytes, now_ms)
            .map_err(|r| {
                let counter = match r.kind {
                    QuotaKind::Author => &self.counters.quota_refused_author,
                    QuotaKind::Depositor | QuotaKind::Anchor => {
                        &self.counters.quota_refused_depositor
                    }
                };
                counter.fetch_add(1, Ordering::Relaxed);
                debug!(peer = %depositor.short(), quota = r.kind.name(), "deposit refused: quota");
                r.to_wire_error()
            })
    }

    /// Refunds `charge` unless `result` says the post was stored new.
    fn settle(&self, result: &Result<Inserted, StoreError>, charge: Charge) {
        if !matches!(result, Ok(Inserted::New { .. })) {
            self.quotas.refund(charge);
        }
    }
}

type Reply = oneshot::Sender<Deposited>;

struct Job {
    post: SyncPost,
    depositor: NodeId,
    reply: Reply,
}

/// Where verified posts go: the quotas, then the store.
#[derive(Debug, Clone)]
struct Sink {
    admission: Admission,
    store: AnchorStore,
}

/// The verifier threads and their queue.
#[derive(Debug)]
pub struct IngestVerifier {
    /// `None` when no thread could be started: posts are then validated on
    /// the caller's task.
    jobs: Option<mpsc::Sender<Job>>,
    sink: Sink,
}

impl IngestVerifier {
    /// Starts `threads` verifier threads (0: one per two cores, at least
    /// one) that charge valid posts to `admission`'s quotas and hand them
    /// to `store`.
    pub(crate) fn start(threads: usize, admission: Admission, store: AnchorStore) -> Self {
        let threads = match threads {
            0 => std::thread::available_parallelism()
                .map_or(1, |n| n.get() / 2)
                .max(1),
            n => n,
        };
        let sink = Sink { admission, store };
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        let mut started = 0;
        for i in 0..threads {
            let rx = Arc::clone(&rx);
            let sink = sink.clone();
            match std::thread::Builder::new()
                .name(format!("anchor-ingest-verify-{i}"))
                .spawn(move || verifier_loop(&rx, &sink))
            {
                Ok(_) => started += 1,
                Err(e) => warn!(error = %e, "could not start an ingest verifier thread"),
            }
        }
        Self {
            jobs: (started > 0).then_some(tx),
            sink,
        }
    }

    /// Validates `post` (exactly [`SyncPost::validate`]), charges it to the
    /// quotas of its author and of `depositor`, and stores it, on a
    /// verifier thread together with the other deposits queued at the same
    /// time; answers after the commit.
    pub(crate) async fn deposit(&self, post: SyncPost, depositor: NodeId) -> Deposited {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            post,
            depositor,
            reply,
        };
        let job = match &self.jobs {
            Some(tx) => match tx.send(job) {
                Ok(()) => {
                    return answer.await.unwrap_or_else(|_| {
                        Deposited::Failed(StoreError::unavailable("post ingest stopped"))
                    })
                }
                Err(mpsc::SendError(job)) => job,
            },
            None => job,
        };
        // No verifier thread (or they went away): everything here, in a
        // box (the store future it nests is large; see `serve_push_post`).
        Box::pin(self.deposit_here(job)).await
    }

    /// [`IngestVerifier::deposit`] on the caller's task.
    async fn deposit_here(&self, job: Job) -> Deposited {
        let depositor = job.depositor;
        let prepared = match PreparedPost::new(&job.post) {
            Ok(p) => p,
            Err(e) => return Deposited::Failed(e),
        };
        let now = now_ms();
        let charge =
            match self
                .sink
                .admission
                .admit(&job.post, depositor, prepared.bytes.len(), now)
            {
                Ok(c) => c,
                Err(e) => return Deposited::Refused(e),
            };
        let result = match self.sink.store.insert_prepared(vec![prepared], now).await {
            Ok(r) => r.into_iter().next().unwrap_or_else(|| {
                Err(StoreError::corrupt(
                    "insert_posts",
                    "backend returned too few results",
                ))
            }),
            Err(e) => Err(e),
        };
        self.sink.admission.settle(&result, charge);
        Deposited::Stored(result)
    }
}

fn verifier_loop(rx: &Mutex<mpsc::Receiver<Job>>, sink: &Sink) {
    let mut rng = ChaCha20Rng::from_seed({
        let mut seed = [0u8; 32];
        OsRng.fill_bytes(&mut seed);
        seed
    });
    let mut jobs: Vec<Job> = Vec::with_capacity(MAX_BATCH_POSTS);
    loop {
        {
            let rx = rx.lock().unwrap_or_else(PoisonError::into_inner);
            match rx.recv() {
                Ok(job) => jobs.push(job),
                Err(_) => return,
            }
            while jobs.len() < MAX_BATCH_POSTS {
                match rx.try_recv() {
                    Ok(job) => jobs.push(job),
                    Err(_) => break,
                }
            }
        }
        // A panic drops this batch's replies (their handlers answer
        // `unavailable`); the thread goes on with the next batch.
        let batch = std::mem::take(&mut jobs);
        if catch_unwind(AssertUnwindSafe(|| ingest_batch(batch, sink, &mut rng))).is_err() {
            warn!("an ingest batch panicked");
        }
        jobs.reserve(MAX_BATCH_POSTS);
    }
}

/// Validates `jobs`, charges the valid posts and hands them to the store
/// as one batch; the refused ones are answered here, the others by the
/// store after the commit.
fn ingest_batch(jobs: Vec<Job>, sink: &Sink, rng: &mut ChaCha20Rng) {
    let results = validate_batch(&jobs, rng);
    let now = now_ms();
    let mut posts = Vec::with_capacity(jobs.len());
    let mut waiting: Vec<(Reply, Charge)> = Vec::with_capacity(jobs.len());
    for (job, result) in jobs.into_iter().zip(results) {
        let prepared = match result {
            Ok(p) => p,
            Err(e) => {
                // The handler may have gone away (cancelled request).
                let _ = job.reply.send(Deposited::Failed(e));
                continue;
            }
        };
        match sink
            .admission
            .admit(&job.post, job.depositor, prepared.bytes.len(), now)
        {
            Ok(charge) => {
                posts.push(prepared);
                waiting.push((job.reply, charge));
            }
            Err(e) => {
                let _ = job.reply.send(Deposited::Refused(e));
            }
        }
    }
    if posts.is_empty() {
        return;
    }
    let admission = sink.admission.clone();
    sink.store.submit_posts(
        posts,
        now,
        Box::new(move |stored| {
            let mut stored = stored.map(Vec::into_iter).map_err(Arc::new);
            for (reply, charge) in waiting {
                let result = match &mut stored {
                    Ok(results) => results.next().unwrap_or_else(|| {
                        Err(StoreError::corrupt(
                            "insert_posts",
                            "backend returned too few results",
                        ))
                    }),
                    Err(e) => Err(StoreError::Batch(Arc::clone(e))),
                };
                admission.settle(&result, charge);
                let _ = reply.send(Deposited::Stored(result));
            }
        }),
    );
}

/// Validates every post of `jobs`, their signatures in one batch.
fn validate_batch(jobs: &[Job], rng: &mut ChaCha20Rng) -> Vec<Result<PreparedPost, StoreError>> {
    let ids = SyncPost::validate_all(jobs.iter().map(|j| &j.post), rng);
    jobs.iter()
        .zip(ids)
        .map(|(job, id)| PreparedPost::from_validated(&job.post, id?))
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use distsoc_protocol::ids::PostingId;
    use distsoc_protocol::messages::content::{
        CommentPolicy, Post, PostHeader, PostVisibility, SignedPost,
    };
    use distsoc_protocol::messages::signed::Signed;
    use distsoc_protocol::sign::SigningKey;

    use distsoc_protocol::codec;

    use super::*;
    use crate::quota::QuotaConfig;

    fn post(author: u8, n: u8) -> SyncPost {
        let k = SigningKey::from_seed(&[author; 32]);
        let p = Post::new_public(
            PostingId(k.public()),
            1_700_000_000_000 + u64::from(n),
            "hi",
            vec![],
        )
        .sign(&k)
        .unwrap();
        SyncPost::new(&k, p, PostVisibility::Public, None)
    }

    fn bad(mut p: SyncPost) -> SyncPost {
        let mut sig = *p.post.signature();
        sig[9] ^= 1;
        p.post = SignedPost::decode(Ok(p.post.bytes()), Ok(&sig)).unwrap();
        p
    }

    fn admission(quota: QuotaConfig) -> Admission {
        Admission {
            quotas: Arc::new(Quotas::new(quota)),
            counters: Arc::new(Counters::default()),
        }
    }

    /// Concurrent deposits, a few with bad signatures, on one verifier
    /// thread and on two: every verdict is the verdict of
    /// `PreparedPost::new` alone, every valid post is stored (committed
    /// before its answer) with exactly its canonical bytes, and a
    /// duplicate deposit is refunded.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn batched_deposits_get_single_verdicts_and_are_stored() {
        for threads in [1, 2] {
            let store = AnchorStore::open("sqlite::memory:").await.unwrap();
            let quota = QuotaConfig {
                window: std::time::Duration::from_secs(3600),
                author_posts: 10,
                author_bytes: 0,
                depositor_posts: 0,
                depositor_bytes: 0,
            };
            let adm = admission(quota);
            let v = Arc::new(IngestVerifier::start(threads, adm.clone(), store.clone()));
            let posts: Vec<SyncPost> = (0..40u8)
                .map(|i| {
                    let p = post(i % 5, i);
                    if i % 7 == 3 {
                        bad(p)
                    } else {
                        p
                    }
                })
                .collect();
            let depositor = NodeId([9; 32]);
            let tasks: Vec<_> = posts
                .iter()
                .map(|p| {
                    let (v, p) = (Arc::clone(&v), p.clone());
                    tokio::spawn(async move { v.deposit(p, depositor).await })
                })
                .collect();
            let mut valid = Vec::new();
            for (p, t) in posts.iter().zip(tasks) {
                let got = t.await.unwrap();
                match PreparedPost::new(p) {
                    Ok(want) => {
                        assert!(
                            matches!(got, Deposited::Stored(Ok(Inserted::New { .. }))),
                            "{got:?}"
                        );
                        valid.push(want);
                    }
                    Err(want) => match got {
                        Deposited::Failed(e) => assert_eq!(e.to_string(), want.to_string()),
                        other => panic!("{other:?}"),
                    },
                }
            }
            // Stored, with the canonical bytes of each.
            for want in &valid {
                let page = store.pull(NodeId(want.author), &[], 0, 1000).await.unwrap();
                let found = page
                    .posts
                    .iter()
                    .map(codec::canonical_of)
                    .any(|b| b == want.bytes);
                assert!(found, "post {:?} not stored", &want.post_id[..4]);
            }
            // A duplicate is answered as such and refunded: with 9 of its
            // author's 10 posts stored, a duplicate and then a tenth new
            // post are both taken; an eleventh is refused.
            for n in 0..9 {
                let got = v.deposit(post(50, n), depositor).await;
                assert!(matches!(got, Deposited::Stored(Ok(Inserted::New { .. }))));
            }
            let got = v.deposit(post(50, 3), depositor).await;
            assert!(
                matches!(got, Deposited::Stored(Ok(Inserted::Duplicate))),
                "{got:?}"
            );
            let got = v.deposit(post(50, 9), depositor).await;
            assert!(matches!(got, Deposited::Stored(Ok(Inserted::New { .. }))));
            let got = v.deposit(post(50, 10), depositor).await;
            assert!(matches!(got, Deposited::Refused(_)), "{got:?}");
            assert_eq!(adm.counters.quota_refused_author.load(Ordering::Relaxed), 1);
        }
    }

    /// A post with a signed header: two signatures to verify.
    fn with_header(mut p: SyncPost, author: u8) -> SyncPost {
        let k = SigningKey::from_seed(&[author; 32]);
        let h =
            PostHeader::new(p.post_id(), PostingId(k.public()), CommentPolicy::Public, 5).unwrap();
        p.header = Some(Signed::sign(h, &k));
        p
    }

    /// Posts of two signatures (post, header) whose first one is bad: their
    /// validation stops before the header's verdict, which must not be
    /// taken as the next post's.
    #[test]
    fn a_bad_first_signature_does_not_shift_the_next_verdicts() {
        let mut posts = Vec::new();
        for i in 0..12u8 {
            let p = with_header(post(i % 3, i), i % 3);
            posts.push(if i % 4 == 1 { bad(p) } else { p });
        }
        // Right after a bad one: a good post whose header signature is
        // bad (refused with the header's verdict, which a shifted verdict
        // would hide).
        let mut forged = with_header(post(1, 40), 1);
        if let Some(h) = &forged.header {
            let mut sig = *h.signature();
            sig[3] ^= 1;
            forged.header = Some(Signed::from_parts_unchecked(
                h.body().clone(),
                h.bytes().to_vec(),
                sig,
            ));
        }
        posts.insert(2, forged);
        let jobs: Vec<Job> = posts
            .iter()
            .map(|p| Job {
                post: p.clone(),
                depositor: NodeId([9; 32]),
                reply: oneshot::channel().0,
            })
            .collect();
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        let got = validate_batch(&jobs, &mut rng);
        for (p, r) in posts.iter().zip(got) {
            let want = PreparedPost::new(p).map(|pp| (pp.post_id, pp.bytes));
            assert_eq!(
                format!("{:?}", r.map(|pp| (pp.post_id, pp.bytes))),
                format!("{want:?}")
            );
        }
        assert!(posts.iter().filter(|p| p.validate(None).is_err()).count() >= 4);
    }

    #[test]
    fn a_batch_with_bad_posts_gives_each_its_own_verdict() {
        let jobs: Vec<Job> = (0..10u8)
            .map(|i| Job {
                depositor: NodeId([9; 32]),
                post: (if i == 2 || i == 8 {
                    bad(post(1, i))
                } else {
                    post(i % 3, i)
                }),
                reply: oneshot::channel().0,
            })
            .collect();
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let results = validate_batch(&jobs, &mut rng);
        for (i, r) in results.iter().enumerate() {
            assert_eq!(r.is_err(), i == 2 || i == 8, "{i}: {r:?}");
        }
    }
}
