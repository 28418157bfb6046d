//! The channel membership cache, and the acknowledgements already applied.
//!
//! A channel's id and members never change after it is created (nothing
//! updates or deletes a `channels` row, `schema/README.md` §9), so a
//! channel read once may be served from memory for good: the membership
//! checks of `Enqueue`, `Fetch` and `FetchWait` then cost no database
//! work. Only channels that exist are cached — an unknown id is looked up
//! every time, since another anchor process on the same database may
//! create it at any moment.
//!
//! Bounded: at most [`CHANNEL_CACHE_ENTRIES`] channels (≈ 100 bytes each,
//! ~6.5 MB at the bound); when full, an arbitrary half is dropped (they are
//! read again on their next use).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Mutex, MutexGuard, PoisonError};

use distsoc_protocol::ids::ChannelId;

use super::wake::QueueKey;
use super::Channel;

/// Most channels kept in memory per store.
pub const CHANNEL_CACHE_ENTRIES: usize = 65_536;

/// Most queues whose applied acknowledgement is kept in memory per store.
pub(crate) const APPLIED_ACK_ENTRIES: usize = 65_536;

/// A map of at most `cap` entries behind a mutex: a new key arriving when
/// it is full first drops an arbitrary half (both caches below only ever
/// lose a shortcut by forgetting).
#[derive(Debug)]
struct Bounded<K, V> {
    map: Mutex<HashMap<K, V>>,
    cap: usize,
}

impl<K: Eq + Hash, V> Bounded<K, V> {
    fn new(cap: usize) -> Self {
        Self {
            map: Mutex::new(HashMap::new()),
            cap: cap.max(1),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<K, V>> {
        self.map.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The map, with room made for `key`.
    fn room_for(&self, key: &K) -> MutexGuard<'_, HashMap<K, V>> {
        let mut map = self.lock();
        if map.len() >= self.cap && !map.contains_key(key) {
            let keep = self.cap / 2;
            let mut n = 0usize;
            map.retain(|_, _| {
                n += 1;
                n <= keep
            });
        }
        map
    }
}

/// Channels read or created by this store, by id.
#[derive(Debug)]
pub(crate) struct ChannelCache {
    map: Bounded<ChannelId, Channel>,
}

impl Default for ChannelCache {
    fn default() -> Self {
        Self::with_capacity(CHANNEL_CACHE_ENTRIES)
    }
}

impl ChannelCache {
    pub(crate) fn with_capacity(cap: usize) -> Self {
        Self {
            map: Bounded::new(cap),
        }
    }

    pub(crate) fn get(&self, id: &ChannelId) -> Option<Channel> {
        self.map.lock().get(id).copied()
    }

    pub(crate) fn insert(&self, c: Channel) {
        self.map.room_for(&c.id).insert(c.id, c);
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.map.lock().len()
    }
}

/// Per queue, the highest `ack_through` whose delete this store has
/// committed. Message ids never go back (SQLite `AUTOINCREMENT`; on
/// PostgreSQL a sequence drawn under the queue's lock), so once the delete
/// of `id <= n` is committed no message of that queue with an id `<= n`
/// can appear again, in this process or another on the same database: a
/// later fetch acknowledging `<= n` has nothing to delete and is served as
/// a read, without a write transaction. Forgetting an entry only costs
/// that write again.
///
/// Bounded: at most [`APPLIED_ACK_ENTRIES`] queues; when full, an
/// arbitrary half is dropped.
#[derive(Debug)]
pub(crate) struct AppliedAcks {
    map: Bounded<QueueKey, u64>,
}

impl Default for AppliedAcks {
    fn default() -> Self {
        Self::with_capacity(APPLIED_ACK_ENTRIES)
    }
}

impl AppliedAcks {
    pub(crate) fn with_capacity(cap: usize) -> Self {
        Self {
            map: Bounded::new(cap),
        }
    }

    /// Whether the delete of `id <= ack` in `queue` is known committed.
    pub(crate) fn covers(&self, queue: &QueueKey, ack: u64) -> bool {
        self.map.lock().get(queue).is_some_and(|&done| ack <= done)
    }

    /// Records that the delete of `id <= ack` in `queue` was committed.
    pub(crate) fn applied(&self, queue: QueueKey, ack: u64) {
        let mut map = self.map.room_for(&queue);
        let done = map.entry(queue).or_insert(0);
        *done = (*done).max(ack);
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.map.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use distsoc_protocol::ids::NodeId;

    fn channel(i: u16) -> Channel {
        let mut id = [0u8; 16];
        id[..2].copy_from_slice(&i.to_be_bytes());
        Channel {
            id: ChannelId(id),
            members: [NodeId([1; 32]), NodeId([2; 32])],
            created_at_ms: u64::from(i),
        }
    }

    #[test]
    fn bounded_and_keeps_what_it_was_given() {
        let cache = ChannelCache::with_capacity(8);
        for i in 0..100 {
            cache.insert(channel(i));
            assert!(cache.len() <= 8);
            assert_eq!(cache.get(&channel(i).id), Some(channel(i)));
        }
        assert_eq!(cache.get(&channel(1000).id), None);
    }

    #[test]
    fn applied_acks_only_grow_and_are_bounded() {
        let acks = AppliedAcks::with_capacity(8);
        let q = QueueKey::new(&NodeId([1; 32]), Some(&ChannelId([3; 16])));
        let other = QueueKey::new(&NodeId([1; 32]), None);
        assert!(!acks.covers(&q, 1), "nothing known: the delete runs");
        acks.applied(q, 10);
        assert!(acks.covers(&q, 10));
        assert!(acks.covers(&q, 3));
        assert!(!acks.covers(&q, 11));
        assert!(!acks.covers(&other, 1), "per queue");
        acks.applied(q, 4);
        assert!(
            acks.covers(&q, 10),
            "an older acknowledgement does not lower it"
        );
        for i in 0..100u8 {
            acks.applied(QueueKey::new(&NodeId([i; 32]), None), u64::from(i));
            assert!(acks.len() <= 8);
        }
    }
}
