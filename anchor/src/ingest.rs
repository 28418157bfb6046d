//! Validation of deposited posts off the network threads, with the
//! signatures of concurrent deposits verified in one batch.
//!
//! A `PushPost` handler hands its post to `IngestVerifier::prepare` and
//! awaits the verdict. Each verifier thread takes whatever deposits are
//! queued (up to [`MAX_BATCH_POSTS`]), validates them with
//! [`SyncPost::validate_all`] (every check of [`SyncPost::validate`], the
//! signatures of all the posts verified with one
//! [`verify_each`](distsoc_protocol::sign::verify_each)), and encodes each
//! valid post's canonical bytes for the store (`PreparedPost`).
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
//! nothing beyond the posts themselves.

use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};

use distsoc_protocol::messages::content::SyncPost;
use rand_chacha::rand_core::{OsRng, RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use tokio::sync::oneshot;
use tracing::warn;

use crate::store::{PreparedPost, StoreError};

/// Most posts one verifier thread validates together.
pub const MAX_BATCH_POSTS: usize = 64;

type Reply = oneshot::Sender<Result<PreparedPost, StoreError>>;

struct Job {
    post: Arc<SyncPost>,
    reply: Reply,
}

/// The verifier threads and their queue.
#[derive(Debug)]
pub struct IngestVerifier {
    /// `None` when no thread could be started: posts are then validated on
    /// the caller's task.
    jobs: Option<mpsc::Sender<Job>>,
}

impl IngestVerifier {
    /// Starts `threads` verifier threads (0: one per two cores, at least
    /// one).
    pub fn start(threads: usize) -> Self {
        let threads = match threads {
            0 => std::thread::available_parallelism()
                .map_or(1, |n| n.get() / 2)
                .max(1),
            n => n,
        };
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        let mut started = 0;
        for i in 0..threads {
            let rx = Arc::clone(&rx);
            match std::thread::Builder::new()
                .name(format!("anchor-ingest-verify-{i}"))
                .spawn(move || verifier_loop(&rx))
            {
                Ok(_) => started += 1,
                Err(e) => warn!(error = %e, "could not start an ingest verifier thread"),
            }
        }
        Self {
            jobs: (started > 0).then_some(tx),
        }
    }

    /// Validates `post` (exactly [`SyncPost::validate`]) and prepares it for
    /// the store, on a verifier thread together with the other deposits
    /// queued at the same time.
    pub(crate) async fn prepare(&self, post: Arc<SyncPost>) -> Result<PreparedPost, StoreError> {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            post: Arc::clone(&post),
            reply,
        };
        let sent = match &self.jobs {
            Some(tx) => tx.send(job).is_ok(),
            None => false,
        };
        if sent {
            if let Ok(result) = answer.await {
                return result;
            }
        }
        // No verifier thread (or it went away): validate here.
        PreparedPost::new(&post)
    }
}

fn verifier_loop(rx: &Mutex<mpsc::Receiver<Job>>) {
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
        let results = validate_batch(&jobs, &mut rng);
        for (job, result) in jobs.drain(..).zip(results) {
            // The handler may have gone away (cancelled request).
            let _ = job.reply.send(result);
        }
    }
}

/// Validates every post of `jobs`, their signatures in one batch.
fn validate_batch(jobs: &[Job], rng: &mut ChaCha20Rng) -> Vec<Result<PreparedPost, StoreError>> {
    let ids = SyncPost::validate_all(jobs.iter().map(|j| &*j.post), rng);
    jobs.iter()
        .zip(ids)
        .map(|(job, id)| PreparedPost::from_validated(&job.post, id?))
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use distsoc_protocol::ids::PostingId;
    use distsoc_protocol::messages::content::{
        CommentPolicy, Post, PostHeader, PostVisibility, SignedPost,
    };
    use distsoc_protocol::messages::signed::Signed;
    use distsoc_protocol::sign::SigningKey;

    use super::*;

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

    /// Concurrent deposits, a few with bad signatures: every verdict is the
    /// verdict of `PreparedPost::new` alone, on one thread and on two.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn batched_verdicts_equal_single_validation() {
        for threads in [1, 2] {
            let v = Arc::new(IngestVerifier::start(threads));
            let posts: Vec<Arc<SyncPost>> = (0..40u8)
                .map(|i| {
                    let p = post(i % 5, i);
                    Arc::new(if i % 7 == 3 { bad(p) } else { p })
                })
                .collect();
            let tasks: Vec<_> = posts
                .iter()
                .map(|p| {
                    let (v, p) = (Arc::clone(&v), Arc::clone(p));
                    tokio::spawn(async move { v.prepare(p).await })
                })
                .collect();
            for (p, t) in posts.iter().zip(tasks) {
                let got = t.await.unwrap().map(|pp| (pp.post_id, pp.bytes));
                let want = PreparedPost::new(p).map(|pp| (pp.post_id, pp.bytes));
                assert_eq!(format!("{got:?}"), format!("{want:?}"));
            }
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
                post: Arc::new(p.clone()),
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
                post: Arc::new(if i == 2 || i == 8 {
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
