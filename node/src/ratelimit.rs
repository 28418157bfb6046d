//! The user node's per-peer push limit: a token bucket per NodeId, in
//! memory.
//!
//! Every push a peer sends (see [`distsoc_protocol::codes::Kind::Push`])
//! costs one token from that peer's bucket; the bucket refills at
//! `per_second` up to `burst`. An empty bucket means the push is refused
//! with `rateLimited` and the time until the next token. Time is passed in,
//! so the limiter is deterministic under test. Buckets that have refilled
//! completely carry no state and are dropped once the map grows past
//! [`PRUNE_AT`], so memory is bounded by the peers active in the last
//! `burst / per_second` seconds.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use distsoc_protocol::ids::NodeId;

/// Buckets held before full ones are pruned.
pub const PRUNE_AT: usize = 1024;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// Per-peer token buckets.
#[derive(Debug)]
pub struct PushLimiter {
    per_second: f64,
    burst: f64,
    buckets: Mutex<HashMap<NodeId, Bucket>>,
}

impl PushLimiter {
    /// A limiter allowing `per_second` pushes per peer, sustained, and
    /// `burst` at once (both at least 1).
    pub fn new(per_second: u32, burst: u32) -> Self {
        Self {
            per_second: f64::from(per_second.max(1)),
            burst: f64::from(burst.max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes a token for `peer` at `now`: `Ok` if allowed, else `Err` with
    /// how long until the next token.
    pub fn check(&self, peer: NodeId, now: Instant) -> Result<(), Duration> {
        let mut map = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if map.len() >= PRUNE_AT && !map.contains_key(&peer) {
            let full_after = Duration::from_secs_f64(self.burst / self.per_second);
            map.retain(|_, b| now.saturating_duration_since(b.updated) < full_after);
        }
        let b = map.entry(peer).or_insert(Bucket {
            tokens: self.burst,
            updated: now,
        });
        let elapsed = now.saturating_duration_since(b.updated).as_secs_f64();
        b.tokens = (b.tokens + elapsed * self.per_second).min(self.burst);
        b.updated = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - b.tokens) / self.per_second))
        }
    }

    /// Buckets currently held.
    pub fn tracked(&self) -> usize {
        self.buckets.lock().map(|m| m.len()).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn burst_then_rate_per_peer_and_bounded_memory() {
        let l = PushLimiter::new(10, 5);
        let t0 = Instant::now();
        let a = NodeId([1; 32]);
        for _ in 0..5 {
            l.check(a, t0).unwrap();
        }
        let wait = l.check(a, t0).unwrap_err();
        assert!(wait > Duration::ZERO && wait <= Duration::from_millis(100));
        // Another peer is unaffected.
        l.check(NodeId([2; 32]), t0).unwrap();
        // One token back after 100 ms.
        l.check(a, t0 + Duration::from_millis(100)).unwrap();
        assert!(l.check(a, t0 + Duration::from_millis(100)).is_err());
        // Many one-off peers: the map stays bounded once their buckets refill.
        let later = t0 + Duration::from_secs(10);
        for i in 0..3 * PRUNE_AT {
            let mut id = [0u8; 32];
            id[..8].copy_from_slice(&(i as u64).to_le_bytes());
            id[31] = 9;
            let at = later + Duration::from_secs(i as u64);
            l.check(NodeId(id), at).unwrap();
        }
        assert!(l.tracked() <= PRUNE_AT + 1, "{}", l.tracked());
    }
}
