//! Request rate limits: a token bucket per identity and per IP address.
//!
//! Each request costs one token from the caller's identity bucket **and** one
//! from its IP bucket; a request is allowed only when both have a token. A
//! bucket refills at `per_second` tokens per second up to `burst`. A flood from
//! one identity empties only that identity's bucket (and its IP's), so other
//! identities are unaffected. Time is passed in (`now: Instant`), so the
//! limiter is deterministic under test. Idle buckets are dropped by
//! [`RateLimiter::prune`] so memory stays bounded by active callers.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use distsoc_protocol::ids::NodeId;

/// Settings of one limiter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateConfig {
    /// Sustained requests per second per identity and per IP.
    pub per_second: f64,
    /// Bucket size: how many requests may arrive at once.
    pub burst: f64,
}

impl Default for RateConfig {
    fn default() -> Self {
        Self {
            per_second: 50.0,
            burst: 50.0,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

#[derive(Debug)]
struct Buckets<K> {
    map: HashMap<K, Bucket>,
}

impl<K: Eq + Hash + Copy> Buckets<K> {
    fn new() -> Self {
        Self {
            map: HashMap::new(),
        }
    }

    /// Tokens available now (after refill), and the bucket's state.
    fn refill(&mut self, key: K, cfg: RateConfig, now: Instant) -> &mut Bucket {
        let b = self.map.entry(key).or_insert(Bucket {
            tokens: cfg.burst,
            updated: now,
        });
        let elapsed = now.saturating_duration_since(b.updated).as_secs_f64();
        b.tokens = (b.tokens + elapsed * cfg.per_second).min(cfg.burst);
        b.updated = now;
        b
    }

    fn prune(&mut self, cfg: RateConfig, now: Instant) {
        let full_after = Duration::from_secs_f64(
            (cfg.burst / cfg.per_second.max(f64::MIN_POSITIVE)).min(3600.0),
        );
        self.map
            .retain(|_, b| now.saturating_duration_since(b.updated) < full_after);
    }
}

/// Outcome of [`RateLimiter::check`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Go ahead; one token was taken from each bucket.
    Allow,
    /// Refuse with `rateLimited`; retry after this long.
    Limit {
        /// When a token will be available in the emptier bucket.
        retry_after: Duration,
    },
}

/// Token buckets per identity and per IP.
#[derive(Debug)]
pub struct RateLimiter {
    cfg: RateConfig,
    inner: Mutex<(Buckets<NodeId>, Buckets<IpAddr>)>,
}

impl RateLimiter {
    /// A limiter with `cfg` for both identities and IPs.
    pub fn new(cfg: RateConfig) -> Self {
        Self {
            cfg,
            inner: Mutex::new((Buckets::new(), Buckets::new())),
        }
    }

    /// The settings.
    pub fn config(&self) -> RateConfig {
        self.cfg
    }

    /// Charges one request by `id` from `ip` at `now`.
    pub fn check(&self, id: NodeId, ip: IpAddr, now: Instant) -> Decision {
        let cfg = self.cfg;
        let Ok(mut guard) = self.inner.lock() else {
            // A poisoned lock means a panic elsewhere; fail open rather than
            // refuse everyone.
            return Decision::Allow;
        };
        let (ids, ips) = &mut *guard;
        let id_tokens = ids.refill(id, cfg, now).tokens;
        let ip_tokens = ips.refill(ip, cfg, now).tokens;
        if id_tokens >= 1.0 && ip_tokens >= 1.0 {
            ids.refill(id, cfg, now).tokens -= 1.0;
            ips.refill(ip, cfg, now).tokens -= 1.0;
            return Decision::Allow;
        }
        let missing = 1.0 - id_tokens.min(ip_tokens);
        let secs = missing / cfg.per_second.max(f64::MIN_POSITIVE);
        Decision::Limit {
            retry_after: Duration::from_secs_f64(secs.clamp(0.001, 3600.0)),
        }
    }

    /// Drops buckets that have been full for a while (call periodically).
    pub fn prune(&self, now: Instant) {
        if let Ok(mut guard) = self.inner.lock() {
            let (ids, ips) = &mut *guard;
            ids.prune(self.cfg, now);
            ips.prune(self.cfg, now);
        }
    }

    /// Number of tracked buckets (identities + IPs).
    pub fn tracked(&self) -> usize {
        self.inner
            .lock()
            .map(|g| g.0.map.len() + g.1.map.len())
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::panic)]
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, last])
    }

    #[test]
    fn burst_then_limit_then_refill() {
        let l = RateLimiter::new(RateConfig {
            per_second: 50.0,
            burst: 50.0,
        });
        let t0 = Instant::now();
        let a = NodeId([1; 32]);
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
        let l = RateLimiter::new(RateConfig::default());
        let t = Instant::now();
        let (flood, other) = (NodeId([1; 32]), NodeId([2; 32]));
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
        // The flooding IP is limited for any identity (per-IP bucket).
        assert!(matches!(l.check(other, ip(1), t), Decision::Limit { .. }));
    }

    #[test]
    fn prune_keeps_memory_bounded() {
        let l = RateLimiter::new(RateConfig::default());
        let t = Instant::now();
        for i in 0..200u8 {
            l.check(NodeId([i; 32]), ip(i), t);
        }
        assert_eq!(l.tracked(), 400);
        l.prune(t + Duration::from_secs(5));
        assert_eq!(l.tracked(), 0);
    }
}
