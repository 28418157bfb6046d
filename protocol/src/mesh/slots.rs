//! Connection slots (`schema/README.md` §13.6): which peers this node holds,
//! dials, redials and lets go.
//!
//! Social slots follow the runtime's wish list by priority, with the
//! hysteresis that answers the seed's Q1: a candidate replaces the
//! lowest-priority social peer only if its priority is strictly higher and
//! that peer has held its slot for `min_social_tenure`; at most
//! `max_evictions` evictions per `wide_interval`. Wide slots follow
//! [`route::select_wide`] every `wide_interval` (the first at a random
//! point of ½–1½ periods after the start, so nodes started together do not
//! re-evaluate in step), plus a bucket refresh whose answer (from the map,
//! the node's fan-out or a worm) becomes a candidate for a deeper bucket.
//! Failed dials back off exponentially, 1 s doubling to 5 min.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::Duration;

use super::map::{IdMap, SlotClass};
use super::route::{self, WideCandidate};
use super::{Mesh, OutEvent, PeerInfo, SocialCandidate};
use crate::ids::NodeId;
use crate::messages::common::PeerAddress;

/// First redial delay after a failed dial.
pub const BACKOFF_MIN: Duration = Duration::from_secs(1);
/// Longest redial delay.
pub const BACKOFF_MAX: Duration = Duration::from_secs(300);
/// A connection that closes sooner than this counts as a failed dial (the
/// backoff keeps growing); one that lasted resets it.
pub const STABLE_AFTER: Duration = Duration::from_secs(60);
/// Most nodes remembered as wide candidates from outside the map.
pub const MAX_KNOWN: usize = 4096;
/// How long after an unproductive bucket refresh the next one waits.
pub const REFRESH_IDLE: Duration = Duration::from_secs(3600);
/// Lookup ids at or above this are the mesh's own bucket refreshes (the
/// low byte is the bucket asked for).
pub const REFRESH_LOOKUP_BASE: u64 = 1 << 62;

#[derive(Debug, Clone)]
struct Known {
    addresses: Vec<SocketAddr>,
    is_anchor: bool,
}

#[derive(Debug, Clone, Copy)]
struct Backoff {
    fails: u32,
    next: Duration,
}

/// Slot bookkeeping of one node.
#[derive(Debug, Default)]
pub(crate) struct Slots {
    social: Vec<SocialCandidate>,
    known: IdMap<Known>,
    dialing: IdMap<(SlotClass, Duration)>,
    since: IdMap<Duration>,
    backoff: IdMap<Backoff>,
    evictions: VecDeque<Duration>,
    next_refresh: u64,
    /// When the next bucket refresh may start.
    refresh_due: Option<Duration>,
    /// The bucket the last refresh asked for and found empty (its next ask
    /// is a fan-out only).
    refresh_missed: Option<u32>,
}

impl Slots {
    /// Empty tables keyed with the node's seeded hasher (the map's: the
    /// ids are chosen by peers).
    pub(crate) fn new(hasher: foldhash::fast::FixedState) -> Self {
        Slots {
            known: HashMap::with_hasher(hasher.clone()),
            dialing: HashMap::with_hasher(hasher.clone()),
            since: HashMap::with_hasher(hasher.clone()),
            backoff: HashMap::with_hasher(hasher),
            ..Slots::default()
        }
    }

    pub(crate) fn set_social(&mut self, mut list: Vec<SocialCandidate>) {
        list.sort_by_key(|c| (std::cmp::Reverse(c.priority), c.id.0));
        list.dedup_by_key(|c| c.id);
        self.social = list;
    }

    pub(crate) fn add_known(&mut self, p: &PeerAddress) {
        if p.addresses.is_empty()
            || (self.known.len() >= MAX_KNOWN && !self.known.contains_key(&p.node_id))
        {
            return;
        }
        self.known.insert(
            p.node_id,
            Known {
                addresses: p.addresses.iter().map(|a| a.0).collect(),
                is_anchor: p.is_anchor,
            },
        );
    }

    fn priority(&self, id: &NodeId) -> Option<u8> {
        self.social.iter().find(|c| c.id == *id).map(|c| c.priority)
    }

    pub(crate) fn class_for(&self, id: &NodeId, info: &PeerInfo, _now: Duration) -> SlotClass {
        if let Some((class, _)) = self.dialing.get(id) {
            return *class;
        }
        if self.priority(id).is_some() {
            return SlotClass::Social;
        }
        if info.outbound {
            return if info.is_anchor {
                SlotClass::Anchor
            } else {
                SlotClass::Wide
            };
        }
        SlotClass::Inbound
    }

    pub(crate) fn connected(&mut self, id: NodeId, info: PeerInfo, now: Duration) {
        self.dialing.remove(&id);
        // The backoff is reset only once the connection has lasted (see
        // `disconnected`): a peer that accepts and closes at once (full)
        // must not be redialled every second.
        self.since.insert(id, now);
        if !info.addresses.is_empty() {
            self.known.entry(id).or_insert(Known {
                addresses: info.addresses,
                is_anchor: info.is_anchor,
            });
        }
    }

    pub(crate) fn disconnected(&mut self, id: &NodeId, now: Duration) {
        let lived = self.since.remove(id).map(|t| now.saturating_sub(t));
        if lived.is_some_and(|l| l >= STABLE_AFTER) {
            // A connection that lasted: redial after the first backoff step.
            self.backoff.insert(
                *id,
                Backoff {
                    fails: 0,
                    next: now + BACKOFF_MIN,
                },
            );
        } else {
            // Closed soon after it opened (a full peer, a flapping link):
            // counts as a failed dial, so the redials back off exponentially.
            self.dial_failed(id, now);
        }
    }

    pub(crate) fn dial_failed(&mut self, id: &NodeId, now: Duration) {
        self.dialing.remove(id);
        let b = self.backoff.entry(*id).or_insert(Backoff {
            fails: 0,
            next: now,
        });
        b.fails = b.fails.saturating_add(1);
        let wait = BACKOFF_MIN
            .saturating_mul(1 << b.fails.min(9).saturating_sub(1))
            .min(BACKOFF_MAX);
        b.next = now + wait;
    }

    /// Is `id` remembered as a wide candidate from outside the map?
    #[cfg(test)]
    pub(crate) fn is_known(&self, id: &NodeId) -> bool {
        self.known.contains_key(id)
    }

    fn may_dial(&self, id: &NodeId, now: Duration) -> bool {
        !self.dialing.contains_key(id) && self.backoff.get(id).is_none_or(|b| now >= b.next)
    }
}

impl Mesh {
    fn dial(&mut self, now: Duration, peer: NodeId, addresses: Vec<SocketAddr>, class: SlotClass) {
        if addresses.is_empty() || peer == self.me {
            return;
        }
        self.slots.dialing.insert(peer, (class, now));
        self.out.push_back(OutEvent::Connect {
            peer,
            addresses,
            class,
        });
    }

    fn count(&self, pred: impl Fn(SlotClass) -> bool) -> usize {
        let held = self.map.hop1_count(&pred);
        held + self
            .slots
            .dialing
            .values()
            .filter(|(c, _)| pred(*c))
            .count()
    }

    /// Addresses to dial a node at: the wish list, the map, known nodes.
    fn addresses_of(&self, id: &NodeId, hint: &[SocketAddr]) -> Vec<SocketAddr> {
        if !hint.is_empty() {
            return hint.to_vec();
        }
        if let Some(super::Found::Hop2 { addr: Some(a), .. }) = self.map.find(id) {
            return vec![a];
        }
        self.slots
            .known
            .get(id)
            .map(|k| k.addresses.clone())
            .unwrap_or_default()
    }

    /// Every `maintain_interval`: forget stale dials, fill social slots,
    /// evict with hysteresis, top up wide slots when below half.
    pub(crate) fn maintain(&mut self, now: Duration) {
        let stale = self.config.maintain_interval * 3;
        let expired: Vec<NodeId> = self
            .slots
            .dialing
            .iter()
            .filter(|(_, (_, t))| now.saturating_sub(*t) > stale)
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            self.slots.dial_failed(&id, now);
        }
        self.fill_social(now);
        if self.count(SlotClass::is_wide) * 2 < self.config.wide_slots {
            self.reevaluate_wide(now, false);
        }
    }

    fn fill_social(&mut self, now: Duration) {
        let mut social = self.count(|k| k == SlotClass::Social);
        for i in 0..self.slots.social.len() {
            let c = &self.slots.social[i];
            let id = c.id;
            if let Some(p) = self.map.peer(&id) {
                // Already connected for another reason: it takes a social slot.
                if p.class == SlotClass::Inbound && social < self.config.social_slots {
                    let p = super::Hop1Peer {
                        class: SlotClass::Social,
                        ..p.clone()
                    };
                    self.map.set_hop1(id, p);
                    social += 1;
                }
                continue;
            }
            if !self.slots.may_dial(&id, now) {
                continue;
            }
            let priority = c.priority;
            let addrs = self.addresses_of(&id, &c.addresses);
            if addrs.is_empty() {
                continue;
            }
            if social < self.config.social_slots {
                self.dial(now, id, addrs, SlotClass::Social);
                social += 1;
            } else if let Some(victim) = self.eviction_victim(now, priority) {
                self.slots.evictions.push_back(now);
                self.out.push_back(OutEvent::Disconnect { peer: victim });
                self.dial(now, id, addrs, SlotClass::Social);
            } else {
                break;
            }
        }
    }

    /// The social peer `candidate_priority` may replace, if any (Q1).
    fn eviction_victim(&mut self, now: Duration, candidate_priority: u8) -> Option<NodeId> {
        let window = self.config.wide_interval;
        while self
            .slots
            .evictions
            .front()
            .is_some_and(|t| now.saturating_sub(*t) >= window)
        {
            self.slots.evictions.pop_front();
        }
        if self.slots.evictions.len() >= self.config.max_evictions {
            return None;
        }
        let tenure = self.config.min_social_tenure;
        self.map
            .hop1()
            .filter(|(_, p)| p.class == SlotClass::Social)
            .filter(|(id, _)| {
                self.slots
                    .since
                    .get(*id)
                    .is_some_and(|t| now.saturating_sub(*t) >= tenure)
            })
            .map(|(id, _)| {
                let since = self.slots.since.get(id).copied().unwrap_or_default();
                (self.slots.priority(id).unwrap_or(0), since, *id)
            })
            .filter(|(p, _, _)| *p < candidate_priority)
            // The lowest priority; among equals the one connected longest.
            .min_by_key(|(p, since, id)| (*p, *since, id.0))
            .map(|(_, _, id)| id)
    }

    /// Every `wide_interval` (or when wide slots are below half): choose
    /// the wide set with [`route::select_wide`], dial the new ones, let go
    /// of the dropped ones, and start one bucket-refresh lookup.
    pub(crate) fn reevaluate_wide(&mut self, now: Duration, refresh: bool) {
        let mut cands: Vec<WideCandidate> = Vec::with_capacity(
            self.map.hop2_len_bound() + self.slots.known.len() + self.config.wide_slots,
        );
        for (id, p) in self.map.hop1() {
            if p.class == SlotClass::Social {
                continue;
            }
            cands.push(WideCandidate {
                id: *id,
                is_anchor: p.is_anchor,
                current: p.class.is_wide(),
            });
        }
        // Each hop-2 node a report gives an address for is one candidate
        // (the map's hop-2 index holds each once, in id order, its anchor
        // flag set if any report says so; the order does not matter, as
        // `select_wide` sorts). Its address is looked up only if it is
        // chosen and dialed.
        for (id, is_anchor) in self.map.hop2_addressed() {
            cands.push(WideCandidate {
                id,
                is_anchor,
                current: false,
            });
        }
        for (id, k) in &self.slots.known {
            if self.map.peer(id).is_none() {
                cands.push(WideCandidate {
                    id: *id,
                    is_anchor: k.is_anchor,
                    current: false,
                });
            }
        }
        let salt = self.random_u64();
        let chosen = route::select_wide(
            &self.me,
            &cands,
            self.config.wide_slots,
            self.config.min_anchors,
            |id| {
                let mut b = [0u8; 8];
                b.copy_from_slice(&id.0[..8]);
                u64::from_le_bytes(b) ^ salt
            },
        );
        let current: Vec<NodeId> = self
            .map
            .hop1()
            .filter(|(_, p)| p.class.is_wide())
            .map(|(id, _)| *id)
            .collect();
        for id in &current {
            if !chosen.contains(id) {
                self.out.push_back(OutEvent::Disconnect { peer: *id });
            }
        }
        for id in chosen {
            if current.contains(&id) || !self.slots.may_dial(&id, now) {
                continue;
            }
            let is_anchor = cands.iter().any(|c| c.id == id && c.is_anchor);
            let class = if is_anchor {
                SlotClass::Anchor
            } else {
                SlotClass::Wide
            };
            if self.map.peer(&id).is_some() {
                // An inbound peer chosen as wide: it takes the slot as is.
                if let Some(p) = self.map.peer(&id).cloned() {
                    self.map.set_hop1(id, super::Hop1Peer { class, ..p });
                }
                continue;
            }
            // A report's address first, then a known node's.
            let a = self.addresses_of(&id, &[]);
            self.dial(now, id, a, class);
        }
        if refresh && self.slots.refresh_due.is_none_or(|t| now >= t) {
            self.bucket_refresh(now, &current);
        }
    }

    /// One bucket refresh (§13.6): a node of the bucket just below the
    /// deepest one the wide set (`current`) covers, or of a deeper one —
    /// from the map if it holds one, else by a lookup of a probe id in
    /// that bucket (a fan-out only if the last refresh asked for the same
    /// bucket and found none; the worm is not forwarded once the fan-out
    /// names one). After a refresh that finds one, the next comes a period
    /// after it ended; after one that does not, after an hour.
    pub(crate) fn bucket_refresh(&mut self, now: Duration, current: &[NodeId]) {
        let deepest = current
            .iter()
            .map(|id| route::common_prefix_len(&self.me.0, &id.0))
            .max()
            .unwrap_or(0);
        let bucket = (deepest + 1).min(255);
        let mut random = [0u8; 32];
        for chunk in random.chunks_mut(8) {
            chunk.copy_from_slice(&self.random_u64().to_le_bytes());
        }
        let probe = route::bucket_probe(&self.me, bucket, random);
        let id = REFRESH_LOOKUP_BASE + (self.slots.next_refresh << 8) + u64::from(bucket);
        self.slots.next_refresh += 1;
        self.slots.refresh_due = Some(now + REFRESH_IDLE);
        self.stats.refreshes += 1;
        // A node of the bucket in the map already (the probe's XOR-closest
        // addressable node is in the bucket iff any is): it is the answer,
        // no lookup needed.
        let local = self
            .map
            .closest_addressable(&probe, &self.me)
            .filter(|x| self.answers_refresh(id, x))
            .and_then(|x| self.map.address_of(&x));
        if let Some(pa) = local {
            self.refresh_done(now, id, Some(&pa), false);
            return;
        }
        // Asking again for a bucket the last refresh found empty: the
        // node's own fan-out only (ttl 0). A node that joined that bucket
        // since is near this one in the id space, and its own refreshes
        // and wide slots connect it to this node's neighbourhood.
        let ttl = if self.slots.refresh_missed == Some(bucket) {
            0
        } else {
            self.config.worm_ttl
        };
        self.start_lookup_with(now, probe, id, ttl);
    }

    /// Does `node` answer bucket refresh `id`: is it in the bucket asked
    /// for, or a deeper one (closer to this node: a probe for bucket `b`
    /// finds one only where `b` is empty)?
    pub(crate) fn answers_refresh(&self, id: u64, node: &NodeId) -> bool {
        id >= REFRESH_LOOKUP_BASE
            && route::common_prefix_len(&self.me.0, &node.0) >= (id & 0xFF) as u32
            && *node != self.me
    }

    /// The answer of a bucket refresh (lookup `id`): a candidate, and
    /// whether the next refresh comes soon.
    /// `forwarded`: the lookup's worm went beyond this node's fan-out.
    pub(crate) fn refresh_done(
        &mut self,
        now: Duration,
        id: u64,
        answer: Option<&PeerAddress>,
        forwarded: bool,
    ) {
        let found = answer.is_some_and(|c| self.answers_refresh(id, &c.node_id));
        if found {
            self.stats.refreshes_found += 1;
            self.stats.refreshes_found_unforwarded += u64::from(!forwarded);
            self.slots.refresh_missed = None;
        } else {
            self.stats.refreshes_missed += 1;
            self.slots.refresh_missed = Some((id & 0xFF) as u32);
        }
        let Some(c) = answer else { return };
        self.slots.add_known(c);
        if found {
            self.slots.refresh_due = Some(now + self.config.wide_interval);
        }
    }
}
