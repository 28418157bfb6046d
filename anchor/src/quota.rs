//! Deposit quotas: how many posts, and how many bytes of them, one author
//! and one depositor may store at this anchor over a rolling window
//! (`schema/README.md` §12, `docs/OPERATING-AN-ANCHOR.md`).
//!
//! The accounting is in memory and checked before any storage work: a
//! deposit is *charged* when it is admitted and *refunded* when the store
//! did not keep it (a duplicate, an invalid post, a database failure). The
//! window is cut into [`BUCKETS`] equal buckets; a bucket leaves the window
//! whole, so the effective window is between `window × (1 − 1/BUCKETS)` and
//! `window`, and `retryAfterMs` is the time until enough buckets have left.
//!
//! At start the per-author usage is seeded from the store
//! ([`crate::store::AnchorStore::post_volume_since`]), so a restart does not
//! reset an author's quota; depositors are not stored with their posts, so
//! their usage starts at zero after a restart. Several anchors on one
//! database each keep their own accounting: together they store at most
//! (number of anchors) × the quota per window for one author or depositor.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use distsoc_protocol::error::{ErrorCode, ToWireError, WireCode};
use distsoc_protocol::ids::{NodeId, PostingId};

/// Buckets per window.
pub const BUCKETS: u64 = 24;

/// Most authors and depositors tracked at once (about 200 bytes each).
/// When full after dropping what left the window, deposits from new
/// authors or depositors are refused (anchor-wide quota) rather than
/// admitted untracked.
pub const MAX_TRACKED: usize = 250_000;

/// Quota settings (from `anchor.toml`); a zero limit is no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaConfig {
    /// The rolling window.
    pub window: Duration,
    /// Posts per author per window.
    pub author_posts: u64,
    /// Canonical `SyncPost` bytes per author per window.
    pub author_bytes: u64,
    /// Posts per depositor (the QUIC-authenticated caller) per window.
    pub depositor_posts: u64,
    /// Canonical `SyncPost` bytes per depositor per window.
    pub depositor_bytes: u64,
}

/// Whose quota refused a deposit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuotaKind {
    /// The post's author.
    Author,
    /// The identity that deposited it.
    Depositor,
    /// The anchor-wide accounting is full ([`MAX_TRACKED`]).
    Anchor,
}

impl QuotaKind {
    /// `author` / `depositor`.
    pub fn name(self) -> &'static str {
        match self {
            QuotaKind::Author => "author",
            QuotaKind::Depositor => "depositor",
            QuotaKind::Anchor => "anchor",
        }
    }
}

/// A refused deposit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaRefusal {
    /// Whose quota.
    pub kind: QuotaKind,
    /// Posts (`true`) or bytes (`false`).
    pub posts: bool,
    /// When the window frees enough room, ms from now; 0 = never (the post
    /// alone is over the byte quota).
    pub retry_after_ms: u64,
}

impl std::fmt::Display for QuotaRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = if self.posts { "post count" } else { "bytes" };
        if self.kind == QuotaKind::Anchor {
            write!(
                f,
                "the anchor tracks too many depositing identities; retry in {} ms",
                self.retry_after_ms
            )
        } else if self.retry_after_ms == 0 {
            write!(
                f,
                "the post alone exceeds the per-{} quota of {what}",
                self.kind.name()
            )
        } else {
            write!(
                f,
                "per-{} deposit quota ({what}) used up; room again in {} ms",
                self.kind.name(),
                self.retry_after_ms
            )
        }
    }
}

impl WireCode for QuotaRefusal {
    fn error_code(&self) -> ErrorCode {
        ErrorCode::QuotaExceeded
    }
}

impl ToWireError for QuotaRefusal {
    /// When the window frees room (0: waiting does not help).
    fn retry_after_ms(&self) -> u32 {
        u32::try_from(self.retry_after_ms).unwrap_or(u32::MAX)
    }
}

/// What [`Quotas::admit`] charged; give it back with [`Quotas::refund`] if
/// the post was not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub struct Charge {
    author: PostingId,
    depositor: NodeId,
    bucket: u64,
    bytes: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Key {
    Author([u8; 32]),
    Depositor([u8; 32]),
}

/// Per-bucket usage, oldest first; only non-empty buckets in the window.
#[derive(Debug, Default)]
struct Usage(VecDeque<(u64, u64, u64)>);

impl Usage {
    /// Drops buckets that left the window ending at bucket `now_bucket`.
    fn expire(&mut self, now_bucket: u64) {
        while let Some(&(b, _, _)) = self.0.front() {
            if b + BUCKETS <= now_bucket {
                self.0.pop_front();
            } else {
                break;
            }
        }
    }

    fn totals(&self) -> (u64, u64) {
        self.0
            .iter()
            .fold((0, 0), |(n, s), &(_, bn, bs)| (n + bn, s + bs))
    }

    fn add(&mut self, bucket: u64, posts: u64, bytes: u64) {
        match self.0.iter_mut().find(|(b, _, _)| *b == bucket) {
            Some(e) => {
                e.1 += posts;
                e.2 += bytes;
            }
            None => {
                let at = self.0.iter().position(|(b, _, _)| *b > bucket);
                self.0
                    .insert(at.unwrap_or(self.0.len()), (bucket, posts, bytes));
            }
        }
    }

    fn sub(&mut self, bucket: u64, bytes: u64) {
        if let Some(e) = self.0.iter_mut().find(|(b, _, _)| *b == bucket) {
            e.1 = e.1.saturating_sub(1);
            e.2 = e.2.saturating_sub(bytes);
        }
        self.0.retain(|(_, n, s)| *n > 0 || *s > 0);
    }

    /// Checks one more post of `bytes` against the limits (0 = none);
    /// `Err((posts?, retry_after_ms))` if it does not fit.
    fn check(
        &self,
        bytes: u64,
        max_posts: u64,
        max_bytes: u64,
        bucket_ms: u64,
        now_ms: u64,
    ) -> Result<(), (bool, u64)> {
        let (n, s) = self.totals();
        let posts_over = max_posts > 0 && n + 1 > max_posts;
        let bytes_over = max_bytes > 0 && s + bytes > max_bytes;
        if !posts_over && !bytes_over {
            return Ok(());
        }
        if bytes_over && bytes > max_bytes {
            return Err((false, 0));
        }
        // Oldest buckets leave first: find the first one whose departure
        // makes room.
        let (mut n, mut s) = (n, s);
        for &(b, bn, bs) in &self.0 {
            n -= bn;
            s -= bs;
            let fits =
                (max_posts == 0 || n < max_posts) && (max_bytes == 0 || s + bytes <= max_bytes);
            if fits {
                let leaves_at = (b + BUCKETS).saturating_mul(bucket_ms);
                return Err((posts_over, leaves_at.saturating_sub(now_ms).max(1)));
            }
        }
        Err((posts_over, bucket_ms.max(1)))
    }
}

/// The per-author and per-depositor accounting of one anchor process.
#[derive(Debug)]
pub struct Quotas {
    cfg: QuotaConfig,
    bucket_ms: u64,
    max_tracked: usize,
    usage: Mutex<HashMap<Key, Usage>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Quotas {
    /// Empty accounting under `cfg`.
    pub fn new(cfg: QuotaConfig) -> Self {
        let window_ms = u64::try_from(cfg.window.as_millis()).unwrap_or(u64::MAX);
        Self {
            cfg,
            bucket_ms: (window_ms / BUCKETS).max(1),
            max_tracked: MAX_TRACKED,
            usage: Mutex::new(HashMap::new()),
        }
    }

    /// The settings.
    pub fn config(&self) -> QuotaConfig {
        self.cfg
    }

    /// The length of one bucket, ms (what
    /// [`crate::store::AnchorStore::post_volume_since`] groups by).
    pub fn bucket_ms(&self) -> u64 {
        self.bucket_ms
    }

    /// Where the window ending now starts, ms.
    pub fn window_start_ms(&self, now_ms: u64) -> u64 {
        (now_ms / self.bucket_ms)
            .saturating_sub(BUCKETS - 1)
            .saturating_mul(self.bucket_ms)
    }

    fn disabled(&self) -> bool {
        let c = &self.cfg;
        c.author_posts == 0
            && c.author_bytes == 0
            && c.depositor_posts == 0
            && c.depositor_bytes == 0
    }

    /// Adds stored usage of `author` (`posts` posts of `bytes` bytes
    /// received in the bucket starting at `bucket_start_ms`): seeding at
    /// start.
    pub fn seed(&self, author: PostingId, bucket_start_ms: u64, posts: u64, bytes: u64) {
        let bucket = bucket_start_ms / self.bucket_ms;
        lock(&self.usage)
            .entry(Key::Author(author.0))
            .or_default()
            .add(bucket, posts, bytes);
    }

    /// Admits one post of `bytes` canonical bytes by `author`, deposited by
    /// `depositor`, and charges it to both; or refuses it, charging nothing.
    pub fn admit(
        &self,
        author: PostingId,
        depositor: NodeId,
        bytes: u64,
        now_ms: u64,
    ) -> Result<Charge, QuotaRefusal> {
        let bucket = now_ms / self.bucket_ms;
        let charge = Charge {
            author,
            depositor,
            bucket,
            bytes,
        };
        if self.disabled() {
            return Ok(charge);
        }
        let c = self.cfg;
        let mut usage = lock(&self.usage);
        let checks = [
            (
                Key::Author(author.0),
                QuotaKind::Author,
                c.author_posts,
                c.author_bytes,
            ),
            (
                Key::Depositor(depositor.0),
                QuotaKind::Depositor,
                c.depositor_posts,
                c.depositor_bytes,
            ),
        ];
        for (key, kind, max_posts, max_bytes) in checks {
            if let Some(u) = usage.get_mut(&key) {
                u.expire(bucket);
                if let Err((posts, retry_after_ms)) =
                    u.check(bytes, max_posts, max_bytes, self.bucket_ms, now_ms)
                {
                    return Err(QuotaRefusal {
                        kind,
                        posts,
                        retry_after_ms,
                    });
                }
            } else if max_bytes > 0 && bytes > max_bytes {
                return Err(QuotaRefusal {
                    kind,
                    posts: false,
                    retry_after_ms: 0,
                });
            }
        }
        let new_keys = checks
            .iter()
            .filter(|(k, ..)| !usage.contains_key(k))
            .count();
        if usage.len() + new_keys > self.max_tracked {
            usage.retain(|_, u| {
                u.expire(bucket);
                !u.0.is_empty()
            });
            if usage.len() + new_keys > self.max_tracked {
                return Err(QuotaRefusal {
                    kind: QuotaKind::Anchor,
                    posts: true,
                    retry_after_ms: self.bucket_ms,
                });
            }
        }
        for (key, ..) in checks {
            usage.entry(key).or_default().add(bucket, 1, bytes);
        }
        Ok(charge)
    }

    /// Gives back a charge for a post that was not stored.
    pub fn refund(&self, charge: Charge) {
        if self.disabled() {
            return;
        }
        let mut usage = lock(&self.usage);
        for key in [
            Key::Author(charge.author.0),
            Key::Depositor(charge.depositor.0),
        ] {
            if let Some(u) = usage.get_mut(&key) {
                u.sub(charge.bucket, charge.bytes);
                if u.0.is_empty() {
                    usage.remove(&key);
                }
            }
        }
    }

    /// Drops the accounting of keys with nothing left in the window (call
    /// periodically: memory is proportional to the authors and depositors
    /// active in one window).
    pub fn prune(&self, now_ms: u64) {
        let bucket = now_ms / self.bucket_ms;
        lock(&self.usage).retain(|_, u| {
            u.expire(bucket);
            !u.0.is_empty()
        });
    }

    /// Authors and depositors being tracked.
    pub fn tracked(&self) -> usize {
        lock(&self.usage).len()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn refusal_reaches_the_wire_as_quota_exceeded() {
        let r = QuotaRefusal {
            kind: QuotaKind::Author,
            posts: false,
            retry_after_ms: 1234,
        };
        let w = r.to_wire_error();
        assert_eq!(w.code, ErrorCode::QuotaExceeded);
        assert_eq!(w.retry_after_ms, 1234);
        assert_eq!(w.message, r.to_string());
        let never = QuotaRefusal {
            retry_after_ms: 0,
            ..r
        };
        assert_eq!(never.to_wire_error().retry_after_ms, 0);
    }

    const H: u64 = 3_600_000;

    fn cfg() -> QuotaConfig {
        QuotaConfig {
            window: Duration::from_secs(24 * 3600),
            author_posts: 3,
            author_bytes: 1000,
            depositor_posts: 5,
            depositor_bytes: 0,
        }
    }

    #[test]
    fn counts_refuses_and_frees_with_the_window() {
        let q = Quotas::new(cfg());
        let (a, d) = (PostingId([1; 32]), NodeId([2; 32]));
        let t0 = 10 * H + 5;
        for i in 0..3 {
            let _ = q.admit(a, d, 10, t0 + i * H).unwrap();
        }
        let r = q.admit(a, d, 10, t0 + 3 * H).unwrap_err();
        assert_eq!((r.kind, r.posts), (QuotaKind::Author, true));
        // The first post's bucket (hour 10) leaves the window at hour 34.
        assert_eq!(r.retry_after_ms, 34 * H - (t0 + 3 * H));
        assert!(q.admit(a, d, 10, 34 * H).is_ok());
        // A refund gives the room back.
        let c = q.admit(PostingId([3; 32]), d, 10, 34 * H).unwrap();
        q.refund(c);
        assert_eq!(q.tracked(), 2);
    }

    #[test]
    fn bytes_and_depositor_limits() {
        let q = Quotas::new(cfg());
        let d = NodeId([9; 32]);
        let r = q.admit(PostingId([1; 32]), d, 1001, H).unwrap_err();
        assert_eq!(
            (r.kind, r.posts, r.retry_after_ms),
            (QuotaKind::Author, false, 0)
        );
        let _ = q.admit(PostingId([1; 32]), d, 900, H).unwrap();
        let r = q.admit(PostingId([1; 32]), d, 200, H).unwrap_err();
        assert_eq!((r.kind, r.posts), (QuotaKind::Author, false));
        for i in 2..6 {
            let _ = q.admit(PostingId([i; 32]), d, 1, H).unwrap();
        }
        let r = q.admit(PostingId([7; 32]), d, 1, H).unwrap_err();
        assert_eq!((r.kind, r.posts), (QuotaKind::Depositor, true));
        q.prune(100 * H);
        assert_eq!(q.tracked(), 0);
    }

    #[test]
    fn tracking_is_capped() {
        let mut q = Quotas::new(cfg());
        q.max_tracked = 4;
        let d = NodeId([9; 32]);
        let _ = q.admit(PostingId([1; 32]), d, 1, H).unwrap();
        let _ = q.admit(PostingId([2; 32]), d, 1, H).unwrap();
        let _ = q.admit(PostingId([3; 32]), d, 1, H).unwrap();
        let r = q.admit(PostingId([4; 32]), d, 1, H).unwrap_err();
        assert_eq!(r.kind, QuotaKind::Anchor);
        assert!(r.retry_after_ms > 0);
        // Known keys still work; a new window frees the table.
        let _ = q.admit(PostingId([1; 32]), d, 1, H).unwrap();
        let _ = q.admit(PostingId([4; 32]), d, 1, 100 * H).unwrap();
    }

    #[test]
    fn zero_is_no_limit() {
        let q = Quotas::new(QuotaConfig {
            author_posts: 0,
            author_bytes: 0,
            depositor_posts: 0,
            depositor_bytes: 0,
            ..cfg()
        });
        for _ in 0..100 {
            let _ = q
                .admit(PostingId([1; 32]), NodeId([2; 32]), 1 << 20, H)
                .unwrap();
        }
        assert_eq!(q.tracked(), 0);
    }
}
