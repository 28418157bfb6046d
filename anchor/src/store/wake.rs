//! In-process wakeups for FetchWait: one `watch` channel per queue with
//! waiters.
//!
//! A [`Waiter`] holds a `watch::Receiver` subscribed at registration, so a
//! wake that happens between registration and the `.await` is not lost (the
//! receiver sees the version change). The registry keeps an entry only
//! while a waiter for that queue exists: the last waiter to drop removes
//! it, under the same lock that creates entries, so the map never grows
//! with queues nobody waits on.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use distsoc_protocol::ids::{ChannelId, NodeId};
use tokio::sync::watch;

/// A queue: `(recipient, channel)`; the legacy mailbox has no channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct QueueKey {
    recipient: [u8; 32],
    channel: Option<[u8; 16]>,
}

impl QueueKey {
    pub(crate) fn new(recipient: &NodeId, channel: Option<&ChannelId>) -> Self {
        Self {
            recipient: recipient.0,
            channel: channel.map(|c| c.0),
        }
    }

    /// The `NOTIFY` payload: `hex(recipient) ':' hex(channel or empty)`.
    pub(crate) fn notify_payload(&self) -> String {
        let mut s = hex::encode(self.recipient);
        s.push(':');
        if let Some(c) = &self.channel {
            s.push_str(&hex::encode(c));
        }
        s
    }

    /// Parses a `NOTIFY` payload; `None` if it is not one of ours.
    pub(crate) fn from_notify_payload(p: &str) -> Option<Self> {
        let (r, c) = p.split_once(':')?;
        let mut recipient = [0u8; 32];
        hex::decode_to_slice(r, &mut recipient).ok()?;
        let channel = if c.is_empty() {
            None
        } else {
            let mut ch = [0u8; 16];
            hex::decode_to_slice(c, &mut ch).ok()?;
            Some(ch)
        };
        Some(Self { recipient, channel })
    }

    /// A 32-bit lock key for this queue (PostgreSQL advisory locks).
    pub(crate) fn lock_key(&self) -> i32 {
        let mut h = blake3::Hasher::new();
        h.update(&self.recipient);
        h.update(self.channel.as_ref().map_or(&[][..], |c| &c[..]));
        let b = h.finalize();
        let b = b.as_bytes();
        i32::from_le_bytes([b[0], b[1], b[2], b[3]])
    }
}

/// The waiters of one store.
#[derive(Default)]
pub(crate) struct Registry {
    queues: Mutex<HashMap<QueueKey, watch::Sender<u64>>>,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("queues", &self.len())
            .finish()
    }
}

impl Registry {
    fn lock(&self) -> MutexGuard<'_, HashMap<QueueKey, watch::Sender<u64>>> {
        // Nothing panics while holding the lock; a poisoned map is still
        // consistent.
        self.queues.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers a waiter for `key`.
    pub(crate) fn waiter(self: &Arc<Self>, key: QueueKey) -> Waiter {
        let rx = {
            let mut map = self.lock();
            map.entry(key)
                .or_insert_with(|| watch::channel(0).0)
                .subscribe()
        };
        Waiter {
            rx,
            key,
            registry: Arc::clone(self),
        }
    }

    /// Wakes the waiters of `key` (if any).
    pub(crate) fn wake(&self, key: &QueueKey) {
        let map = self.lock();
        if let Some(tx) = map.get(key) {
            tx.send_modify(|v| *v = v.wrapping_add(1));
        }
    }

    /// Wakes every waiter (they re-check their queue).
    pub(crate) fn wake_all(&self) {
        let map = self.lock();
        for tx in map.values() {
            tx.send_modify(|v| *v = v.wrapping_add(1));
        }
    }

    /// Queues with waiters.
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }
}

/// Resolves once a message for its queue is committed after it was made
/// (see `AnchorStore::waiter`). Dropping it unregisters it.
pub struct Waiter {
    rx: watch::Receiver<u64>,
    key: QueueKey,
    registry: Arc<Registry>,
}

impl fmt::Debug for Waiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Waiter").field("key", &self.key).finish()
    }
}

impl Waiter {
    /// Waits for the wake. It may also resolve spuriously (e.g. when the
    /// PostgreSQL listener reconnects): always re-check the queue.
    /// Cancel-safe: wrap it in `tokio::time::timeout`.
    pub async fn wait(mut self) {
        // An error means the sender is gone, which cannot happen while we
        // are registered; resolve rather than hang.
        let _ = self.rx.changed().await;
    }

    /// Whether a wake already happened (without waiting).
    pub fn is_woken(&self) -> bool {
        self.rx.has_changed().unwrap_or(true)
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        let mut map = self.registry.lock();
        // Our own receiver is still alive here: the last waiter sees 1.
        if map
            .get(&self.key)
            .is_some_and(|tx| tx.receiver_count() <= 1)
        {
            map.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn payload_round_trip() {
        let k = QueueKey::new(&NodeId([0xab; 32]), Some(&ChannelId([0x01; 16])));
        assert_eq!(QueueKey::from_notify_payload(&k.notify_payload()), Some(k));
        let l = QueueKey::new(&NodeId([0xab; 32]), None);
        assert!(l.notify_payload().ends_with(':'));
        assert_eq!(QueueKey::from_notify_payload(&l.notify_payload()), Some(l));
        assert_ne!(k.lock_key(), l.lock_key());
        assert_eq!(QueueKey::from_notify_payload("zz:"), None);
        assert_eq!(QueueKey::from_notify_payload("nocolon"), None);
    }

    #[tokio::test]
    async fn wake_before_await_is_not_lost_and_registry_cleans_up() {
        let reg = Arc::new(Registry::default());
        let k = QueueKey::new(&NodeId([1; 32]), None);
        let w1 = reg.waiter(k);
        let w2 = reg.waiter(k);
        assert_eq!(reg.len(), 1);
        assert!(!w1.is_woken());
        reg.wake(&k);
        assert!(w1.is_woken());
        w1.wait().await;
        assert_eq!(reg.len(), 1, "w2 still registered");
        drop(w2);
        assert_eq!(reg.len(), 0);
        // A wake with nobody waiting is a no-op and creates nothing.
        reg.wake(&k);
        assert_eq!(reg.len(), 0);
    }
}
