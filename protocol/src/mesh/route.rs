//! The pure decision functions of worm routing and wide-peer choice
//! (`schema/README.md` §13.5–§13.6): XOR distance in the id space, the
//! Kademlia bucket of a peer, the worm's forward step and the choice of
//! wide peers.
//!
//! These are the functions the graph-level simulator (`distsoc-sim`) calls
//! on a 2×10⁹-node implicit topology, so the routing it measures is the
//! routing a node runs.

use crate::ids::NodeId;

/// The number of leading bits two ids have in common (0..=256). A peer's
/// **bucket** relative to me is this number: bucket `b` holds ids that agree
/// with mine on the first `b` bits and differ at bit `b`.
pub fn common_prefix_len(a: &[u8; 32], b: &[u8; 32]) -> u32 {
    for (i, (x, y)) in a.iter().zip(b.iter()).enumerate() {
        let d = x ^ y;
        if d != 0 {
            return i as u32 * 8 + d.leading_zeros();
        }
    }
    256
}

/// True if `a` is strictly closer to `target` than `b` in XOR distance
/// (big-endian comparison of `a ^ target` and `b ^ target`).
pub fn closer(target: &[u8; 32], a: &[u8; 32], b: &[u8; 32]) -> bool {
    for i in 0..32 {
        let da = a[i] ^ target[i];
        let db = b[i] ^ target[i];
        if da != db {
            return da < db;
        }
    }
    false
}

/// One way to move a worm on: send it to the connected peer `via`, through
/// which the node `known` is reachable (`known == via` for the peer itself,
/// or a hop-2 node `via` reported).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hop {
    /// The connected (hop-1) peer the WormRequest goes to.
    pub via: NodeId,
    /// The node whose id is compared with the target.
    pub known: NodeId,
}

impl Hop {
    /// The peer itself.
    pub fn direct(peer: NodeId) -> Self {
        Hop {
            via: peer,
            known: peer,
        }
    }

    /// A node `via` reported.
    pub fn reported(via: NodeId, known: NodeId) -> Self {
        Hop { via, known }
    }
}

/// The worm's forward step (§13.5): of the candidate hops whose `via` is
/// not excluded (visited, the sender, already asked), the one whose `known`
/// node is XOR-closest to `target`. Ties go to the direct hop
/// (`known == via`), then to the smaller `via` id, so the choice does not
/// depend on the order of `candidates`. `None` when every candidate is
/// excluded.
///
/// A chain of these steps moves toward the target in the id space; with
/// wide peers chosen by bucket ([`select_wide`]) each step gains bits of
/// common prefix, which is what lets a TTL-5 worm find a uniformly random
/// node among 2×10⁹ (an undirected chain does not: `docs/DESIGN-NUMBERS.md`).
pub fn forward_choice(
    target: &NodeId,
    candidates: impl IntoIterator<Item = Hop>,
    mut excluded: impl FnMut(&NodeId) -> bool,
) -> Option<Hop> {
    let mut best: Option<Hop> = None;
    for c in candidates {
        if excluded(&c.via) {
            continue;
        }
        best = match best {
            None => Some(c),
            Some(b) => {
                if better(target, &c, &b) {
                    Some(c)
                } else {
                    Some(b)
                }
            }
        };
    }
    best
}

fn better(target: &NodeId, c: &Hop, b: &Hop) -> bool {
    if closer(&target.0, &c.known.0, &b.known.0) {
        return true;
    }
    if c.known != b.known {
        return false;
    }
    let c_direct = c.known == c.via;
    let b_direct = b.known == b.via;
    if c_direct != b_direct {
        return c_direct;
    }
    c.via.0 < b.via.0
}

/// A node that could be chosen as a wide peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WideCandidate {
    /// Its NodeId.
    pub id: NodeId,
    /// It declared the anchor role.
    pub is_anchor: bool,
    /// It is one of my wide peers now.
    pub current: bool,
}

/// The rule for wide peers (§13.6), a pure function of the candidates:
///
/// 1. `min_anchors` anchors, current ones first;
/// 2. then one peer per Kademlia bucket (the common-prefix length of its id
///    with `me`), deepest bucket first, a current peer kept over a new one
///    in the same bucket (hysteresis: a wide peer is only replaced by a
///    peer in a deeper, unfilled bucket);
/// 3. remaining slots: current peers first, then the candidates in the
///    order `tiebreak` gives (callers pass a random order).
///
/// Returns at most `slots` ids, no duplicates, never `me`. An id given more
/// than once counts once: current if any of its entries is, an anchor if
/// any says so.
pub fn select_wide(
    me: &NodeId,
    candidates: &[WideCandidate],
    slots: usize,
    min_anchors: usize,
    mut tiebreak: impl FnMut(&NodeId) -> u64,
) -> Vec<NodeId> {
    // The pool: each candidate id once, current if any of its entries is,
    // an anchor if any says so, in the order (current first, tie-break,
    // id). The rule reads only a few entries of it: the first anchors, the
    // first entries of each bucket (skipping at most the anchors taken)
    // and the first entries overall (skipping at most the ids already
    // taken). The current candidates (a node's wide peers, a few dozen) are
    // all kept; of the others one pass keeps those first few, so a
    // re-evaluation over ~4,000 candidates sorts a few dozen.
    let pooled =
        |c: &WideCandidate, current: bool, tiebreak: &mut dyn FnMut(&NodeId) -> u64| Pooled {
            key: (!current, tiebreak(&c.id), c.id.0),
            anchor: c.is_anchor,
            bucket: common_prefix_len(&me.0, &c.id.0),
        };
    let mut current: Vec<Pooled> = candidates
        .iter()
        .filter(|c| c.current && c.id != *me)
        .map(|c| pooled(c, true, &mut tiebreak))
        .collect();
    current.sort_unstable_by_key(|x| x.key.2);
    current.dedup_by(merge_same);
    // Searched by the ids' first eight bytes (no `memcmp` per step).
    let heads: Vec<u64> = current.iter().map(|p| head(&p.key.2)).collect();
    let anchors = min_anchors.min(slots);
    let mut first_anchors: Vec<Pooled> = Vec::new();
    let mut first_overall: Vec<Pooled> = Vec::new();
    let mut buckets: Vec<Vec<Pooled>> = vec![Vec::new(); 257];
    for c in candidates {
        if c.current || c.id == *me {
            continue;
        }
        let h = head(&c.id.0);
        let from = heads.partition_point(|&x| x < h);
        if let Some(i) = (from..heads.len())
            .take_while(|&i| heads[i] == h)
            .find(|&i| current[i].key.2 == c.id.0)
        {
            current[i].anchor |= c.is_anchor;
            continue;
        }
        let p = pooled(c, false, &mut tiebreak);
        keep_first(&mut first_overall, 2 * slots + 1, &p);
        keep_first(&mut buckets[p.bucket as usize], anchors + 1, &p);
        if p.anchor {
            keep_first(&mut first_anchors, anchors, &p);
        }
    }
    let mut pool = current;
    pool.extend(first_overall);
    pool.extend(first_anchors);
    pool.extend(buckets.into_iter().flatten());
    pool.sort_unstable_by_key(|x| x.key);
    pool.dedup_by(merge_same);

    let pool: Vec<(NodeId, bool, u32)> = pool
        .iter()
        .map(|c| (NodeId(c.key.2), c.anchor, c.bucket))
        .collect();
    choose_wide(&pool, slots, anchors)
}

/// The three steps of [`select_wide`] over the pool in its order: each
/// entry (id, anchor, bucket), each id once.
fn choose_wide(pool: &[(NodeId, bool, u32)], slots: usize, anchors: usize) -> Vec<NodeId> {
    let mut chosen: Vec<NodeId> = Vec::with_capacity(slots);
    let taken = |chosen: &mut Vec<NodeId>, id: NodeId| {
        if chosen.len() < slots && !chosen.contains(&id) {
            chosen.push(id);
        }
    };
    for (id, _, _) in pool.iter().filter(|c| c.1).take(anchors) {
        taken(&mut chosen, *id);
    }
    // Deepest bucket first; within a bucket the pool order (current first).
    let mut by_bucket: Vec<(u32, usize)> = pool.iter().enumerate().map(|(i, c)| (c.2, i)).collect();
    by_bucket.sort_by_key(|&(b, i)| (std::cmp::Reverse(b), i));
    let mut last_bucket = None;
    for (b, i) in by_bucket {
        if last_bucket == Some(b) {
            continue;
        }
        let id = pool[i].0;
        if chosen.contains(&id) {
            continue;
        }
        last_bucket = Some(b);
        taken(&mut chosen, id);
    }
    for (id, _, _) in pool {
        taken(&mut chosen, *id);
    }
    chosen
}

/// A wide candidate in the pool of [`select_wide`]: its sort key (not
/// current, tie-break, id), anchor flag and bucket.
#[derive(Clone)]
struct Pooled {
    key: (bool, u64, [u8; 32]),
    anchor: bool,
    bucket: u32,
}

/// Keeps in `first` (sorted by key, at most `n`, each key once) the `n`
/// entries that come first in the pool, offered `p` (an entry of an id
/// already there adds its anchor flag).
fn keep_first(first: &mut Vec<Pooled>, n: usize, p: &Pooled) {
    if n == 0 || (first.len() == n && p.key > first[n - 1].key) {
        return;
    }
    let at = first.partition_point(|x| x.key < p.key);
    if let Some(x) = first.get_mut(at).filter(|x| x.key == p.key) {
        x.anchor |= p.anchor;
        return;
    }
    if first.len() == n {
        first.pop();
    }
    first.insert(at, p.clone());
}

/// An id's first eight bytes as a big-endian integer (the ids' byte order).
fn head(id: &[u8; 32]) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&id[..8]);
    u64::from_be_bytes(b)
}

/// `dedup_by` for entries of one id (equal keys): the kept one takes the
/// other's anchor flag.
fn merge_same(later: &mut Pooled, kept: &mut Pooled) -> bool {
    let same = later.key.2 == kept.key.2;
    if same {
        kept.anchor |= later.anchor;
    }
    same
}

/// The id a bucket-refresh lookup searches for: `me` with bit `bucket`
/// flipped and the bits after it taken from `random`. The closest node a
/// lookup for it finds (`WormResponse.closest`) lies in bucket `bucket`.
pub fn bucket_probe(me: &NodeId, bucket: u32, random: [u8; 32]) -> NodeId {
    let mut out = me.0;
    let bucket = bucket.min(255) as usize;
    let (byte, bit) = (bucket / 8, bucket % 8);
    let flip = 0x80u8 >> bit;
    // Keep the prefix, flip the bit, randomize the rest.
    let keep_mask = !(0xFFu8 >> bit); // bits before `bit` in this byte
    out[byte] =
        (me.0[byte] & keep_mask) | ((me.0[byte] ^ flip) & flip) | (random[byte] & (flip - 1));
    out[byte + 1..].copy_from_slice(&random[byte + 1..]);
    NodeId(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The pool as stated: every candidate sorted (what `select_wide` did
    /// before it kept only the entries the rule reads), then the rule.
    fn select_wide_by_sort(
        me: &NodeId,
        candidates: &[WideCandidate],
        slots: usize,
        min_anchors: usize,
        mut tiebreak: impl FnMut(&NodeId) -> u64,
    ) -> Vec<NodeId> {
        let mut ids: std::collections::BTreeMap<NodeId, (bool, bool)> = Default::default();
        for c in candidates.iter().filter(|c| c.id != *me) {
            let e = ids.entry(c.id).or_default();
            *e = (e.0 || c.current, e.1 || c.is_anchor);
        }
        let all: Vec<WideCandidate> = ids
            .into_iter()
            .map(|(id, (current, is_anchor))| WideCandidate {
                id,
                is_anchor,
                current,
            })
            .collect();
        let mut pool: Vec<&WideCandidate> = all.iter().collect();
        pool.sort_by_key(|c| (!c.current, tiebreak(&c.id), c.id.0));
        let pool: Vec<(NodeId, bool, u32)> = pool
            .iter()
            .map(|c| (c.id, c.is_anchor, common_prefix_len(&me.0, &c.id.0)))
            .collect();
        choose_wide(&pool, slots, min_anchors.min(slots))
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig {
            cases: 300,
            ..proptest::prelude::ProptestConfig::default()
        })]
        /// The selection equals the rule over the whole sorted pool, with
        /// repeated ids (current and not, anchor flags that disagree), few
        /// and many candidates, deep buckets and ties of the tie-break.
        #[test]
        fn select_wide_equals_the_sorted_rule(
            seed in proptest::prelude::any::<u64>(),
            n in 0usize..400,
            slots in 0usize..25,
            min_anchors in 0usize..5,
        ) {
            let mut x = seed | 1;
            let mut next = move || {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x
            };
            let me = NodeId([0x5a; 32]);
            let mut ids: Vec<NodeId> = Vec::new();
            let mut cands = Vec::new();
            for _ in 0..n {
                let r = next();
                let id = if r % 5 == 0 && !ids.is_empty() {
                    ids[(r >> 8) as usize % ids.len()]
                } else {
                    // Near `me` (deep buckets) or anywhere.
                    let mut b = me.0;
                    let keep = ((r >> 16) % 40) as usize;
                    for (i, byte) in b.iter_mut().enumerate().skip(keep / 8) {
                        if i * 8 >= keep {
                            *byte = (next() & 0xff) as u8;
                        }
                    }
                    if r % 97 == 0 {
                        b = me.0;
                    }
                    NodeId(b)
                };
                ids.push(id);
                cands.push(WideCandidate {
                    id,
                    is_anchor: (r >> 32) % 6 == 0,
                    current: (r >> 40) % 4 == 0,
                });
            }
            let salt = next();
            // A coarse tie-break (many ties, broken by id).
            let tb = |id: &NodeId| u64::from(id.0[31] & 7) ^ (salt & 3);
            proptest::prop_assert_eq!(
                select_wide(&me, &cands, slots, min_anchors, tb),
                select_wide_by_sort(&me, &cands, slots, min_anchors, tb)
            );
        }
    }

    fn id(first: u8) -> NodeId {
        let mut b = [0u8; 32];
        b[0] = first;
        NodeId(b)
    }

    #[test]
    fn prefix_lengths() {
        assert_eq!(common_prefix_len(&[0; 32], &[0; 32]), 256);
        assert_eq!(common_prefix_len(&id(0x80).0, &id(0).0), 0);
        assert_eq!(common_prefix_len(&id(0x01).0, &id(0).0), 7);
        let mut b = [0u8; 32];
        b[3] = 0x10;
        assert_eq!(common_prefix_len(&b, &[0; 32]), 27);
    }

    #[test]
    fn forward_picks_xor_closest_known_and_skips_excluded() {
        let target = id(0b0000_0001);
        let a = id(0b1000_0000);
        let b = id(0b0100_0000);
        let near = id(0b0000_0011); // reported by a
        let hops = [
            Hop { via: a, known: a },
            Hop { via: b, known: b },
            Hop {
                via: a,
                known: near,
            },
        ];
        assert_eq!(
            forward_choice(&target, hops, |_| false).map(|h| h.via),
            Some(a)
        );
        assert_eq!(
            forward_choice(&target, hops, |v| *v == a).map(|h| h.via),
            Some(b)
        );
        assert!(forward_choice(&target, hops, |_| true).is_none());
        // Order does not matter.
        let mut rev = hops;
        rev.reverse();
        assert_eq!(
            forward_choice(&target, rev, |_| false),
            forward_choice(&target, hops, |_| false)
        );
    }

    #[test]
    fn wide_keeps_anchors_then_deepest_buckets() {
        let me = id(0);
        let c = |first: u8, is_anchor: bool, current: bool| WideCandidate {
            id: id(first),
            is_anchor,
            current,
        };
        let cands = [
            c(0x80, true, false),  // bucket 0, anchor
            c(0x81, false, false), // bucket 0
            c(0x40, false, false), // bucket 1
            c(0x41, false, true),  // bucket 1, current: kept over 0x40
            c(0x02, false, false), // bucket 6
            c(0x90, true, true),   // bucket 0, anchor, current
        ];
        let w = select_wide(&me, &cands, 3, 1, |n| n.0[0] as u64);
        assert_eq!(w, vec![id(0x90), id(0x02), id(0x41)]);
        let all = select_wide(&me, &cands, 10, 2, |n| n.0[0] as u64);
        assert_eq!(all.len(), 6);
    }

    #[test]
    fn bucket_probe_lands_in_its_bucket() {
        let me = NodeId([0x5a; 32]);
        for b in [0u32, 3, 7, 8, 13, 100, 255] {
            let p = bucket_probe(&me, b, [0xc3; 32]);
            assert_eq!(common_prefix_len(&me.0, &p.0), b, "bucket {b}");
        }
    }
}
