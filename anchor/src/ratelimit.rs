//! Request rate limits: a token bucket per identity, and a per-IP limit
//! shared fairly between the identities behind one IP.
//!
//! Each request costs one token from the caller's **identity bucket**
//! (`identity`: 50/s, burst 50 by default) **and** one from its **share of
//! its IP's limit**; it is allowed only when both have a token. The IP limit
//! (`ip`: 500/s, burst 500 by default) is not one bucket that anyone can
//! drain: it is divided equally between the identities active on that IP in
//! the last [`ACTIVE_WINDOW`] — with `n` of them, each has its own share
//! bucket refilling at `ip.per_second / n` up to `max(1, ip.burst / n)`.
//! So:
//!
//! * a flooding identity empties its own bucket and at most its own share:
//!   the other identities behind the same IP (a NAT, a household, a campus)
//!   keep being served;
//! * many identities on one IP together get about `ip.per_second` (the sum
//!   of the shares), however many keys an attacker makes;
//! * one identity alone on an IP is limited only by its identity bucket
//!   (its share is the whole IP limit, which is larger).
//!
//! A bucket refills continuously at `per_second` tokens per second up to
//! `burst`. Time is passed in (`now: Instant`), so the limiter is
//! deterministic under test. Idle buckets are dropped by
//! [`RateLimiter::prune`] (and an IP's idle identities as it is used), so
//! memory stays bounded by active callers.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use distsoc_protocol::ids::NodeId;

/// An identity counts towards its IP's share count `n` for this long after
/// its last request.
pub const ACTIVE_WINDOW: Duration = Duration::from_secs(10);

/// How often an IP's idle identities are dropped from its share count.
const SHARE_SWEEP: Duration = Duration::from_secs(1);

/// Settings of one token bucket.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateConfig {
    /// Sustained tokens (requests) per second.
    pub per_second: f64,
    /// Bucket size: how many requests may arrive at once.
    pub burst: f64,
}

impl Default for RateConfig {
    /// The per-identity request limit: 50/s, burst 50.
    fn default() -> Self {
        Self {
            per_second: 50.0,
            burst: 50.0,
        }
    }
}

impl RateConfig {
    /// `per_second`/`burst` as given.
    pub fn new(per_second: f64, burst: f64) -> Self {
        Self { per_second, burst }
    }

    /// `per_minute`/`burst` (for slow actions such as channel creation).
    pub fn per_minute(per_minute: f64, burst: f64) -> Self {
        Self {
            per_second: per_minute / 60.0,
            burst,
        }
    }

    /// Time for the bucket to refill `missing` tokens.
    /// Whole milliseconds, rounded up: `retryAfterMs` is in ms, and a
    /// caller that waits exactly that long must then be admitted (a
    /// truncated value would refuse it once more).
    fn time_for(&self, missing: f64) -> Duration {
        let secs = missing.max(0.0) / self.per_second.max(f64::MIN_POSITIVE);
        let ms = (secs.clamp(0.001, 3600.0) * 1000.0).ceil();
        Duration::from_secs_f64(ms / 1000.0)
    }

    /// Time an untouched bucket takes to become full again.
    fn full_after(&self) -> Duration {
        Duration::from_secs_f64(
            (self.burst / self.per_second.max(f64::MIN_POSITIVE)).clamp(0.0, 3600.0),
        )
    }
}

/// Settings of a [`RateLimiter`]: the per-identity bucket and the per-IP
/// limit that the identities on one IP share.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LimitConfig {
    /// Per identity.
    pub identity: RateConfig,
    /// Per IP address, shared equally by the identities active on it.
    pub ip: RateConfig,
}

impl Default for LimitConfig {
    /// Requests: 50/s (burst 50) per identity, 500/s (burst 500) per IP.
    fn default() -> Self {
        Self {
            identity: RateConfig::default(),
            ip: RateConfig::new(500.0, 500.0),
        }
    }
}

impl LimitConfig {
    /// The default channel-creation limit: 30 per minute (burst 10) per
    /// identity, 600 per minute (burst 200) per IP.
    pub fn channel_creation() -> Self {
        Self {
            identity: RateConfig::per_minute(30.0, 10.0),
            ip: RateConfig::per_minute(600.0, 200.0),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

impl Bucket {
    fn full(cfg: RateConfig, now: Instant) -> Self {
        Self {
            tokens: cfg.burst,
            updated: now,
        }
    }

    /// Refills up to `now` under `cfg` and returns the tokens available.
    fn refill(&mut self, cfg: RateConfig, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * cfg.per_second).min(cfg.burst);
        self.updated = self.updated.max(now);
        self.tokens
    }
}

/// One IP: a share bucket per identity active on it.
#[derive(Debug)]
struct IpShares {
    members: HashMap<NodeId, (Bucket, Instant)>,
    swept: Instant,
}

impl IpShares {
    /// Drops identities idle for [`ACTIVE_WINDOW`] (at most once per
    /// [`SHARE_SWEEP`]).
    fn sweep(&mut self, now: Instant, force: bool) {
        if force || now.saturating_duration_since(self.swept) >= SHARE_SWEEP {
            self.members
                .retain(|_, (_, seen)| now.saturating_duration_since(*seen) < ACTIVE_WINDOW);
            self.swept = now;
        }
    }
}

/// The share of `ip` for one of `n` identities.
fn share(ip: RateConfig, n: usize) -> RateConfig {
    let n = n.max(1) as f64;
    RateConfig {
        per_second: ip.per_second / n,
        burst: (ip.burst / n).max(1.0),
    }
}

/// Outcome of [`RateLimiter::check`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Go ahead; one token was taken from the identity bucket and one from
    /// its IP share.
    Allow,
    /// Refuse with `rateLimited`; retry after this long.
    Limit {
        /// When a token will be available in the emptier bucket.
        retry_after: Duration,
    },
}

#[derive(Debug)]
struct State {
    ids: HashMap<NodeId, Bucket>,
    ips: HashMap<IpAddr, IpShares>,
}

/// Token buckets per identity and fair shares per IP (see the module docs).
#[derive(Debug)]
pub struct RateLimiter {
    cfg: LimitConfig,
    inner: Mutex<State>,
}

impl RateLimiter {
    /// A limiter with `cfg`.
    pub fn new(cfg: LimitConfig) -> Self {
        Self {
            cfg,
            inner: Mutex::new(State {
                ids: HashMap::new(),
                ips: HashMap::new(),
            }),
        }
    }

    /// The settings.
    pub fn config(&self) -> LimitConfig {
        self.cfg
    }

    /// Charges one request by `id` from `ip` at `now`. A refused request
    /// takes no token.
    pub fn check(&self, id: NodeId, ip: IpAddr, now: Instant) -> Decision {
        let cfg = self.cfg;
        let Ok(mut guard) = self.inner.lock() else {
            // A poisoned lock means a panic elsewhere; fail open rather than
            // refuse everyone.
            return Decision::Allow;
        };
        let state = &mut *guard;
        let own = state
            .ids
            .entry(id)
            .or_insert_with(|| Bucket::full(cfg.identity, now));
        let own_tokens = own.refill(cfg.identity, now);
        let shares = state.ips.entry(ip).or_insert_with(|| IpShares {
            members: HashMap::new(),
            swept: now,
        });
        shares.sweep(now, false);
        let n = shares.members.len() + usize::from(!shares.members.contains_key(&id));
        let mine = share(cfg.ip, n);
        let (bucket, seen) = shares
            .members
            .entry(id)
            .or_insert_with(|| (Bucket::full(mine, now), now));
        *seen = now;
        let share_tokens = bucket.refill(mine, now);
        if own_tokens >= 1.0 && share_tokens >= 1.0 {
            bucket.tokens -= 1.0;
            own.tokens -= 1.0;
            return Decision::Allow;
        }
        let wait_own = if own_tokens >= 1.0 {
            Duration::ZERO
        } else {
            cfg.identity.time_for(1.0 - own_tokens)
        };
        let wait_share = if share_tokens >= 1.0 {
            Duration::ZERO
        } else {
            mine.time_for(1.0 - share_tokens)
        };
        Decision::Limit {
            retry_after: wait_own.max(wait_share),
        }
    }

    /// Drops identity buckets that are full again and IP shares of
    /// identities idle for [`ACTIVE_WINDOW`] (call periodically).
    pub fn prune(&self, now: Instant) {
        if let Ok(mut guard) = self.inner.lock() {
            let full_after = self.cfg.identity.full_after();
            guard
                .ids
                .retain(|_, b| now.saturating_duration_since(b.updated) < full_after);
            guard.ips.retain(|_, s| {
                s.sweep(now, true);
                !s.members.is_empty()
            });
        }
    }

    /// Number of tracked entries (identity buckets + IP shares).
    pub fn tracked(&self) -> usize {
        self.inner
            .lock()
            .map(|g| g.ids.len() + g.ips.values().map(|s| s.members.len()).sum::<usize>())
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::panic)]
    use super::*;
    use proptest::prelude::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, last])
    }

    fn id(i: u8) -> NodeId {
        NodeId([i; 32])
    }

    #[test]
    fn burst_then_limit_then_refill() {
        let l = RateLimiter::new(LimitConfig::default());
        let t0 = Instant::now();
        let a = id(1);
        for _ in 0..50 {
            assert_eq!(l.check(a, ip(1), t0), Decision::Allow);
        }
        let Decision::Limit { retry_after } = l.check(a, ip(1), t0) else {
            panic!("should limit")
        };
        assert!(
            retry_after <= Duration::from_millis(21) && retry_after >= Duration::from_millis(19)
        );
        // 100 ms later, 5 tokens are back.
        let t1 = t0 + Duration::from_millis(100);
        for _ in 0..5 {
            assert_eq!(l.check(a, ip(1), t1), Decision::Allow);
        }
        assert!(matches!(l.check(a, ip(1), t1), Decision::Limit { .. }));
    }

    #[test]
    fn one_flooding_identity_does_not_slow_others() {
        let l = RateLimiter::new(LimitConfig::default());
        let t = Instant::now();
        let (flood, other) = (id(1), id(2));
        let mut limited = 0;
        for _ in 0..1000 {
            if l.check(flood, ip(1), t) != Decision::Allow {
                limited += 1;
            }
        }
        assert_eq!(limited, 950);
        // Another identity from another IP is untouched.
        for _ in 0..50 {
            assert_eq!(l.check(other, ip(2), t), Decision::Allow);
        }
        // Another identity behind the flooding IP (a NAT) is served too:
        // the flood emptied only its own bucket.
        let nat = id(3);
        for _ in 0..50 {
            assert_eq!(l.check(nat, ip(1), t), Decision::Allow);
        }
    }

    #[test]
    fn many_identities_on_one_ip_share_its_limit_fairly() {
        // IP limit 100/s (burst 100) shared; identities 50/s each.
        let l = RateLimiter::new(LimitConfig {
            identity: RateConfig::new(50.0, 50.0),
            ip: RateConfig::new(100.0, 100.0),
        });
        let t0 = Instant::now();
        // Ten sybils flood for two seconds in 10 ms steps.
        let mut sybil_allowed = 0u32;
        let mut honest_allowed = 0u32;
        let mut honest_refused = 0u32;
        for step in 0..200u64 {
            let t = t0 + Duration::from_millis(step * 10);
            for s in 0..10u8 {
                for _ in 0..5 {
                    if l.check(id(100 + s), ip(1), t) == Decision::Allow {
                        sybil_allowed += 1;
                    }
                }
            }
            // The honest identity sends 2 requests/s.
            if step % 50 == 0 {
                match l.check(id(1), ip(1), t) {
                    Decision::Allow => honest_allowed += 1,
                    Decision::Limit { .. } => honest_refused += 1,
                }
            }
        }
        // The sybils together get about the IP's 100/s over 2 s plus its
        // burst (and what each took before the next one shrank the shares),
        // never their 10 × 50/s.
        assert!(sybil_allowed <= 100 * 2 + 100 + 10 * 5, "{sybil_allowed}");
        assert!(sybil_allowed >= 200, "{sybil_allowed}");
        // The honest identity, well under its 1/11 share, is always served.
        assert_eq!((honest_allowed, honest_refused), (4, 0));
    }

    #[test]
    fn retry_after_names_the_emptier_bucket() {
        let l = RateLimiter::new(LimitConfig {
            identity: RateConfig::new(50.0, 50.0),
            ip: RateConfig::new(10.0, 1.0),
        });
        let t = Instant::now();
        assert_eq!(l.check(id(1), ip(1), t), Decision::Allow);
        // Share empty (10/s): a token in 100 ms.
        let Decision::Limit { retry_after } = l.check(id(1), ip(1), t) else {
            panic!("should limit")
        };
        assert!(retry_after >= Duration::from_millis(99), "{retry_after:?}");
        assert_eq!(
            l.check(id(1), ip(1), t + Duration::from_millis(100)),
            Decision::Allow
        );
    }

    #[test]
    fn per_minute_limits() {
        let l = RateLimiter::new(LimitConfig::channel_creation());
        let t = Instant::now();
        for _ in 0..10 {
            assert_eq!(l.check(id(1), ip(1), t), Decision::Allow);
        }
        let Decision::Limit { retry_after } = l.check(id(1), ip(1), t) else {
            panic!("should limit")
        };
        // 30 per minute: one every 2 s.
        assert!(
            retry_after >= Duration::from_millis(1990) && retry_after <= Duration::from_secs(2)
        );
        assert_eq!(l.check(id(2), ip(1), t), Decision::Allow);
    }

    #[test]
    fn prune_keeps_memory_bounded() {
        let l = RateLimiter::new(LimitConfig::default());
        let t = Instant::now();
        for i in 0..200u8 {
            l.check(id(i), ip(i), t);
        }
        assert_eq!(l.tracked(), 400);
        l.prune(t + ACTIVE_WINDOW);
        assert_eq!(l.tracked(), 0);
    }

    /// RL-9-002: after a refusal, one request sent exactly `retry_after`
    /// later is admitted, whatever the fractional state of the buckets.
    #[test]
    fn waiting_retry_after_is_always_enough() {
        let cfg = LimitConfig {
            identity: RateConfig::new(7.0, 3.0),
            ip: RateConfig::new(500.0, 500.0),
        };
        for offset_us in [0u64, 1, 333, 499, 999, 1234, 35_917] {
            let l = RateLimiter::new(cfg);
            let mut t = Instant::now() + Duration::from_micros(offset_us);
            // Other identities share the IP, so the share is fractional too.
            for other in 2..40u8 {
                l.check(id(other), ip(1), t);
            }
            let mut refused = 0;
            for _ in 0..200 {
                t += Duration::from_micros(offset_us % 977 + 1);
                if let Decision::Limit { retry_after } = l.check(id(1), ip(1), t) {
                    refused += 1;
                    assert_eq!(retry_after.subsec_nanos() % 1_000_000, 0, "{retry_after:?}");
                    assert_eq!(
                        l.check(id(1), ip(1), t + retry_after),
                        Decision::Allow,
                        "offset {offset_us} us: {retry_after:?} was not enough"
                    );
                    t += retry_after;
                }
            }
            assert!(refused > 0);
        }
    }

    proptest! {
        /// Whatever the arrival pattern, over any run each identity gets at
        /// most its own burst + rate × time, and an IP at most its burst +
        /// rate × time (plus one share burst per identity newly seen).
        #[test]
        fn never_more_than_the_limits(
            steps in proptest::collection::vec((0u8..6, 0u8..2, 0u64..40), 1..400),
        ) {
            let cfg = LimitConfig {
                identity: RateConfig::new(20.0, 10.0),
                ip: RateConfig::new(40.0, 30.0),
            };
            let l = RateLimiter::new(cfg);
            let t0 = Instant::now();
            let mut t = t0;
            let mut per_id = HashMap::new();
            let mut per_ip = HashMap::new();
            for (who, from, gap_ms) in steps {
                t += Duration::from_millis(gap_ms);
                if l.check(id(who), ip(from), t) == Decision::Allow {
                    *per_id.entry(who).or_insert(0u32) += 1;
                    *per_ip.entry(from).or_insert(0u32) += 1;
                }
            }
            let secs = t.duration_since(t0).as_secs_f64();
            for n in per_id.values() {
                prop_assert!(f64::from(*n) <= 10.0 + 20.0 * secs + 1e-9);
            }
            for n in per_ip.values() {
                // Six identities may each arrive with a fresh share.
                prop_assert!(f64::from(*n) <= 30.0 * 6.0 + 40.0 * secs + 1e-9);
            }
        }

        /// An identity that sends at most one request per second on an IP
        /// shared with at most 4 others is never refused, whatever they send.
        #[test]
        fn a_quiet_identity_is_never_starved(
            flood in proptest::collection::vec((0u8..4, 0u8..20), 1..200),
        ) {
            let l = RateLimiter::new(LimitConfig {
                identity: RateConfig::new(50.0, 50.0),
                ip: RateConfig::new(100.0, 100.0),
            });
            let t0 = Instant::now();
            for (i, (who, burst)) in flood.into_iter().enumerate() {
                let t = t0 + Duration::from_millis(i as u64 * 100);
                for _ in 0..burst {
                    let _ = l.check(id(10 + who), ip(1), t);
                }
                if i % 10 == 0 {
                    prop_assert_eq!(l.check(id(1), ip(1), t), Decision::Allow);
                }
            }
        }
    }
}
