//! Rate limits of the mesh requests (`schema/README.md` §13.5): token
//! buckets per connection and per claimed worm originator, on the caller's
//! clock.

use std::collections::HashMap;
use std::time::Duration;

use crate::ids::NodeId;

/// Which request a limit counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Kind {
    Worm,
    Query,
    Address,
}

impl Kind {
    /// Requests per minute (also the burst).
    pub(crate) fn per_minute(self) -> u32 {
        match self {
            Kind::Worm => WORM_PER_MINUTE,
            Kind::Query => QUERY_PER_MINUTE,
            Kind::Address => ADDRESS_PER_MINUTE,
        }
    }
}

/// WormRequests admitted per minute, per connection and per originator.
pub const WORM_PER_MINUTE: u32 = 20;
/// WormQueries admitted per minute and connection.
pub const QUERY_PER_MINUTE: u32 = 120;
/// AddressRequests admitted per minute and connection.
pub const ADDRESS_PER_MINUTE: u32 = 120;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: Duration,
}

/// The buckets of one node.
#[derive(Debug, Default)]
pub(crate) struct Limits {
    buckets: HashMap<(Kind, NodeId, bool), Bucket>,
}

impl Limits {
    /// Take one token for `kind` from `who` (`origin` = keyed by claimed
    /// originator rather than by connection). `Err(wait)` when empty.
    pub(crate) fn take(
        &mut self,
        now: Duration,
        kind: Kind,
        who: NodeId,
        origin: bool,
    ) -> Result<(), Duration> {
        let cap = kind.per_minute() as f64;
        let rate = cap / 60.0;
        let b = self.buckets.entry((kind, who, origin)).or_insert(Bucket {
            tokens: cap,
            last: now,
        });
        let dt = now.saturating_sub(b.last).as_secs_f64();
        b.tokens = (b.tokens + dt * rate).min(cap);
        b.last = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - b.tokens) / rate))
        }
    }

    pub(crate) fn forget_peer(&mut self, peer: &NodeId) {
        self.buckets
            .retain(|(_, who, origin), _| *origin || who != peer);
    }

    /// Drop full buckets that have been idle for a minute.
    pub(crate) fn purge(&mut self, now: Duration) {
        if self.buckets.len() < 1024 {
            return;
        }
        self.buckets
            .retain(|_, b| now.saturating_sub(b.last) < Duration::from_secs(60));
    }
}
