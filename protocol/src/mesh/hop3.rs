//! Hop 3 of the map, compact (DESIGN.md decision 12, `schema/README.md` §13.1).
//!
//! Hop 3 is only ever *checked* ("is T within three hops, and which peer
//! reported it?"), never dialled, so it keeps no ids: each peer's reported
//! hop-2 set is a sorted `Vec<u32>` of keyed 32-bit fingerprints, and one
//! blocked Bloom filter over their union answers misses in O(1). A Bloom
//! hit is confirmed by binary search in the peers' lists, which also names
//! the reporting peers for the referral chain.
//!
//! The fingerprint key comes from the node's own randomness, so nobody can
//! grind an id that collides with a chosen one. A random id collides with
//! one of `n` entries with probability ≈ n / 2³² (8·10⁻⁵ at 350K); such a
//! false positive sends the referral chain to a peer that does not know the
//! target, which answers "not found", and resolution moves to the next tier.

use std::sync::Arc;

use super::chunked::{edit_chunked, rechunk, Chunked, Entry};
use super::share::{lock, SharedReports};

use crate::ids::NodeId;

/// The keyed 32-bit fingerprint function of one node: multilinear hashing
/// over the id's four 64-bit words with a secret key (strongly universal
/// for a fixed key: two distinct ids collide with probability ≈ 2⁻³²
/// over the key, whatever ids an attacker picks).
#[derive(Clone)]
pub struct Fingerprinter {
    key: [u64; 5],
}

impl std::fmt::Debug for Fingerprinter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Fingerprinter { key: <secret> }")
    }
}

impl Fingerprinter {
    /// A fingerprinter keyed with 40 secret bytes.
    pub fn new(seed: [u8; 40]) -> Self {
        let mut key = [0u64; 5];
        for (k, chunk) in key.iter_mut().zip(seed.chunks_exact(8)) {
            let mut b = [0u8; 8];
            b.copy_from_slice(chunk);
            *k = u64::from_le_bytes(b) | 1;
        }
        Fingerprinter { key }
    }

    /// The fingerprint of `id`.
    pub fn fp(&self, id: &NodeId) -> u32 {
        let mut h = self.key[0] as u128;
        for (i, chunk) in id.0.chunks_exact(8).enumerate() {
            let mut b = [0u8; 8];
            b.copy_from_slice(chunk);
            h = h.wrapping_add((u64::from_le_bytes(b) as u128) * (self.key[i + 1] as u128));
        }
        ((h >> 64) as u64 ^ (h as u64 >> 32)) as u32
    }
}

/// A blocked Bloom filter over 32-bit fingerprints: 512-bit blocks, 7 bits
/// per key inside one block (one cache line per check), 8 bits per key
/// (≈ 3 % false positives, each confirmed or refuted by the peers' lists).
#[derive(Debug, Clone, Default)]
struct Bloom {
    blocks: Vec<Block>,
}

/// One 512-bit block, aligned to a cache line: a check reads one line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[repr(align(64))]
struct Block([u64; 8]);

const BLOOM_BITS_PER_KEY: usize = 8;
const BLOOM_K: u32 = 6;

fn mix(fp: u32) -> u64 {
    let mut x = (fp as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x ^= x >> 29;
    x.wrapping_mul(0xBF58_476D_1CE4_E5B9)
}

impl Bloom {
    fn with_capacity(keys: usize) -> Self {
        let blocks = (keys * BLOOM_BITS_PER_KEY).div_ceil(512).max(1);
        Bloom {
            blocks: vec![Block::default(); blocks],
        }
    }

    /// The block is chosen by the fingerprint's top bits (fingerprints are
    /// keyed hashes, uniform already), so fingerprints in ascending order
    /// visit the blocks in ascending order: a sorted map sync's thousands of
    /// checks, and a rebuild range by range, walk the filter sequentially
    /// instead of missing the cache once per key. The bits inside the block
    /// come from a mix of the fingerprint.
    fn positions(&self, fp: u32) -> (usize, impl Iterator<Item = u32>) {
        let block = (u64::from(fp) * self.blocks.len() as u64) >> 32;
        let bits = mix(fp) >> 10;
        (
            block as usize,
            (0..BLOOM_K).map(move |i| ((bits >> (i * 9)) & 511) as u32),
        )
    }

    fn insert(&mut self, fp: u32) {
        let (b, bits) = self.positions(fp);
        // The bits' mask first (no list of positions to allocate).
        let mut mask = [0u64; 8];
        for bit in bits {
            mask[(bit / 64) as usize] |= 1 << (bit % 64);
        }
        if let Some(block) = self.blocks.get_mut(b) {
            for (w, m) in block.0.iter_mut().zip(mask) {
                *w |= m;
            }
        }
    }

    fn may_contain(&self, fp: u32) -> bool {
        let (b, mut bits) = self.positions(fp);
        match self.blocks.get(b) {
            Some(block) => bits.all(|bit| block.0[(bit / 64) as usize] & (1 << (bit % 64)) != 0),
            None => false,
        }
    }

    fn bytes(&self) -> usize {
        self.blocks.capacity() * std::mem::size_of::<Block>()
    }
}

/// One peer's reported hop-2 set, as sorted unique fingerprints: one
/// exact-size chunk, or with [`SharedReports`] content-defined chunks
/// shared between meshes ([`super::chunked`]); each change builds the new
/// set.
#[derive(Debug, Clone, Default)]
pub(crate) struct FpSet {
    pub(crate) fps: Chunked<u32>,
}

impl Entry for u32 {
    // ~256 bytes a chunk.
    const SPAN: u64 = 64;
    const MAX: usize = 256;
    fn key_hash(&self) -> u64 {
        u64::from(*self)
    }
    fn order(&self, other: &Self) -> std::cmp::Ordering {
        self.cmp(other)
    }
}

impl FpSet {
    pub(crate) fn len(&self) -> usize {
        self.fps.len()
    }

    pub(crate) fn contains(&self, fp: u32) -> bool {
        self.fps.find_by(|x| x.cmp(&fp)).is_some()
    }

    /// The set's storage, as an address: two sets with the same identity
    /// hold the same fingerprints while both live.
    pub(crate) fn identity(&self) -> usize {
        Arc::as_ptr(&self.fps.spine).cast::<u8>() as usize
    }

    /// Apply additions and removals (any order); returns how many
    /// fingerprints were newly added. At most `cap` are kept (additions
    /// beyond it are dropped, smallest first kept). With a `pool` the
    /// result is looked up or stored there, so meshes that hold the same
    /// set and apply the same change share one copy (same result either
    /// way).
    #[cfg(test)]
    pub(crate) fn apply(
        &mut self,
        mut add: Vec<u32>,
        mut remove: Vec<u32>,
        cap: usize,
        shared: Option<&SharedReports>,
    ) -> usize {
        add.sort_unstable();
        add.dedup();
        remove.sort_unstable();
        remove.dedup();
        self.apply_sorted(&add, &remove, cap, shared).0
    }

    /// [`FpSet::apply`] with `add` and `remove` sorted and free of
    /// duplicates; also says whether every addition was kept (none
    /// dropped by `cap`): then exactly the additions not in `remove` are in
    /// the set.
    pub(crate) fn apply_sorted(
        &mut self,
        add: &[u32],
        remove: &[u32],
        cap: usize,
        shared: Option<&SharedReports>,
    ) -> (usize, bool) {
        // A whole map onto an empty set (a map sync): the additions are the
        // set, as the merge would copy them.
        let whole = self.fps.is_empty() && remove.is_empty() && add.len() <= cap;
        let Some(shared) = shared else {
            let (out, added, all) = if whole {
                (add.to_vec(), add.len(), true)
            } else {
                merge(self.fps.iter().copied(), self.fps.len(), add, remove, cap)
            };
            let chunks = rechunk(&self.fps.spine, &out, false, |p| Arc::from(p));
            self.fps = Chunked::from_spine(Arc::<[_]>::from(chunks));
            return (added, all);
        };
        // Looked up by the slices (they hash as the stored `Vec`s do).
        let old = &self.fps.spine;
        let key = super::share::transition_key(old, &(add, remove, cap));
        let hit =
            lock(&shared.fps).get_with(old, key, |e| e.0 == add && e.1 == remove && e.2 == cap);
        if let Some((spine, outcome)) = hit {
            self.fps = Chunked::from_spine(spine);
            return outcome;
        }
        let (chunks, added, all) = if !self.fps.is_empty() && self.fps.len() + add.len() <= cap {
            // Nothing can be dropped by the bound: edit the chunks the
            // changes fall in (a diff's few changes to a set of thousands).
            let mut pool = lock(&shared.fp_chunks);
            let (chunks, added) = edit_chunked(old, add, remove, |piece| pool.intern(piece));
            (chunks, added, true)
        } else if whole {
            let mut pool = lock(&shared.fp_chunks);
            let chunks = rechunk(old, add, true, |piece| pool.intern(piece));
            (chunks, add.len(), true)
        } else {
            let (out, added, all) =
                merge(self.fps.iter().copied(), self.fps.len(), add, remove, cap);
            let mut pool = lock(&shared.fp_chunks);
            let chunks = rechunk(old, &out, true, |piece| pool.intern(piece));
            (chunks, added, all)
        };
        let edit = (!self.fps.is_empty()).then(|| (add.to_vec(), remove.to_vec(), cap));
        let spine = lock(&shared.fps).put(old, edit, chunks, (added, all));
        self.fps = Chunked::from_spine(spine);
        (added, all)
    }

    #[cfg(test)]
    pub(crate) fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.fps.iter().copied()
    }

    /// Heap bytes of the set as one node holds it (unshared).
    pub(crate) fn bytes(&self) -> usize {
        self.fps.bytes()
    }
}

/// `old` (sorted, unique) with `add` merged in and `remove` taken out (both
/// sorted, unique), at most `cap` kept; how many were newly added, and
/// whether nothing was dropped by `cap`.
fn merge(
    old: impl Iterator<Item = u32>,
    old_len: usize,
    add: &[u32],
    remove: &[u32],
    cap: usize,
) -> (Vec<u32>, usize, bool) {
    let mut out = Vec::with_capacity((old_len + add.len()).min(cap));
    let mut old = old.peekable();
    let mut j = 0;
    let mut added = 0;
    let mut all = true;
    let removed = |x: u32| remove.binary_search(&x).is_ok();
    while old.peek().is_some() || j < add.len() {
        let take_old = match (old.peek(), add.get(j)) {
            (Some(a), Some(b)) => a <= b,
            (Some(_), None) => true,
            _ => false,
        };
        let (x, new) = if take_old {
            let Some(x) = old.next() else { break };
            if add.get(j) == Some(&x) {
                j += 1;
            }
            (x, false)
        } else {
            let x = add[j];
            j += 1;
            (x, true)
        };
        if removed(x) {
            continue;
        }
        if out.len() >= cap {
            all = false;
            continue;
        }
        added += usize::from(new);
        out.push(x);
    }
    (out, added, all)
}

/// Sorts fingerprints: LSD radix sort (four passes of 8 bits, the counts
/// on the stack) from 256 of them (a diff's or a map sync's hop 2:
/// hundreds to thousands), where it is several times faster than a
/// comparison sort. Eight-bit digits keep each pass's 256 write positions
/// in cache; three passes of 11 bits (2,048 positions, 48 KB of counts
/// zeroed per call) cost more at these sizes.
pub(crate) fn sort_fps(v: &mut Vec<u32>) {
    if v.len() < 256 {
        v.sort_unstable();
        return;
    }
    let mut counts = [[0u32; 256]; 4];
    for &x in v.iter() {
        for (p, c) in counts.iter_mut().enumerate() {
            c[((x >> (8 * p)) & 0xff) as usize] += 1;
        }
    }
    let mut buf = vec![0u32; v.len()];
    for (p, c) in counts.iter_mut().enumerate() {
        let mut sum = 0;
        for n in c.iter_mut() {
            let k = *n;
            *n = sum;
            sum += k;
        }
        let shift = 8 * p;
        for &x in v.iter() {
            let b = ((x >> shift) & 0xff) as usize;
            buf[c[b] as usize] = x;
            c[b] += 1;
        }
        std::mem::swap(v, &mut buf);
    }
}

/// `a` without the elements of `r` (both sorted and unique), by one
/// merge pass.
pub(crate) fn minus(mut a: Vec<u32>, r: &[u32]) -> Vec<u32> {
    if r.is_empty() {
        return a;
    }
    let mut i = 0;
    a.retain(|&x| {
        while r.get(i).is_some_and(|&y| y < x) {
            i += 1;
        }
        r.get(i) != Some(&x)
    });
    a
}

/// A set of fingerprints by open addressing (linear probing, at most half
/// full; 0 kept aside as the empty slot's mark).
struct FpTable {
    slots: Vec<u32>,
    len: usize,
    zero: bool,
}

impl FpTable {
    fn with_capacity(n: usize) -> Self {
        FpTable {
            slots: vec![0; (2 * n).next_power_of_two().max(64)],
            len: 0,
            zero: false,
        }
    }

    fn insert(&mut self, fp: u32) {
        if fp == 0 {
            self.zero = true;
            return;
        }
        let mask = self.slots.len() - 1;
        // Fingerprints are uniform keyed hashes: their low bits index.
        let mut i = fp as usize & mask;
        loop {
            match self.slots[i] {
                0 => break,
                x if x == fp => return,
                _ => i = (i + 1) & mask,
            }
        }
        self.slots[i] = fp;
        self.len += 1;
        if 2 * self.len > self.slots.len() {
            let old = std::mem::replace(&mut self.slots, vec![0; 2 * (mask + 1)]);
            self.len = 0;
            for x in old.into_iter().filter(|x| *x != 0) {
                self.insert(x);
            }
        }
    }

    /// Moves the fingerprints into `out` and leaves the table empty.
    fn drain_into(&mut self, out: &mut Vec<u32>) {
        if self.zero {
            out.push(0);
        }
        if self.len > 0 {
            for x in self.slots.iter_mut().filter(|x| **x != 0) {
                out.push(std::mem::take(x));
            }
        }
        self.len = 0;
        self.zero = false;
    }
}

/// A read position in one [`FpSet`]: its chunks, and the unread rest of
/// the current one.
struct Cursor<'a> {
    chunks: std::slice::Iter<'a, super::chunked::Chunk<u32>>,
    rest: &'a [u32],
}

impl Cursor<'_> {
    /// Hands `f` every fingerprint below `end`, in order, and stops there.
    fn take_below(&mut self, end: u64, mut f: impl FnMut(u32)) {
        loop {
            let n = if self.rest.last().is_some_and(|&x| u64::from(x) < end) {
                self.rest.len()
            } else {
                self.rest.partition_point(|&x| u64::from(x) < end)
            };
            for &x in &self.rest[..n] {
                f(x);
            }
            if n < self.rest.len() {
                self.rest = &self.rest[n..];
                return;
            }
            match self.chunks.next() {
                Some(c) => self.rest = &c.0,
                None => {
                    self.rest = &[];
                    return;
                }
            }
        }
    }
}

/// The Bloom filter over the union of all peers' [`FpSet`]s, with the
/// bookkeeping that decides when it is rebuilt: removals leave stale bits
/// (more confirmations, never a wrong answer), so it is rebuilt once the
/// stale share or the growth since the last build passes a quarter.
#[derive(Debug, Clone, Default)]
pub(crate) struct Union {
    bloom: Bloom,
    built_unique: usize,
    built_raw: usize,
    /// Fingerprints inserted since the rebuild that were not in the filter.
    inserted_since: usize,
    /// Fingerprints removed from the peers' sets since the rebuild.
    removed_since: usize,
    /// Unique fingerprints in the union at the last rebuild.
    pub(crate) unique: usize,
}

impl Union {
    pub(crate) fn note_insert(&mut self, fp: u32) {
        // Most inserts are already there (another peer reports the same
        // node): only new ones count toward a rebuild.
        if !self.bloom.may_contain(fp) {
            self.inserted_since += 1;
            self.bloom.insert(fp);
        }
    }

    pub(crate) fn note_removed(&mut self, n: usize) {
        self.removed_since += n;
    }

    /// The unique count is more than ~5 % stale (what [`super::Map::stats`]
    /// refreshes before it reports).
    pub(crate) fn count_stale(&self) -> bool {
        self.inserted_since * 20 > self.built_unique.max(64)
            || self.removed_since * 20 > self.built_raw.max(64)
    }

    /// Rebuild once the filter holds a quarter more entries than it was
    /// sized for (its false-positive rate climbs), or half of the reported
    /// fingerprints it was built from are gone (stale bits).
    pub(crate) fn needs_rebuild(&self) -> bool {
        self.inserted_since * 4 > self.built_unique.max(256)
            || self.removed_since * 2 > self.built_raw.max(256)
            || self.bloom.blocks.is_empty()
    }

    /// Rebuild from the peers' sets. Each fingerprint is reported by many
    /// peers (~40 copies each in a simulated 5×10³-node join), so the
    /// unique ones are collected first, range of fingerprints by range:
    /// every sorted set is read once, front to back, and each range's
    /// copies meet in an open-addressing table of ~1,000 entries that stays
    /// in the first-level cache (one table for the whole union missed it
    /// on most copies). The filter's bits do not depend on the order of its
    /// inserts; the unique fingerprints arrive range by range, so the
    /// inserts walk the filter front to back.
    pub(crate) fn rebuild<'a>(&mut self, sets: impl Iterator<Item = &'a FpSet> + Clone) {
        const PER_RANGE: usize = 1024;
        let raw: usize = sets.clone().map(FpSet::len).sum();
        let expect = (self.built_unique + self.inserted_since).clamp(256, raw.max(256));
        let ranges = expect.div_ceil(PER_RANGE).next_power_of_two();
        let width = (1u64 << 32) / ranges as u64;
        // Each cursor starts before its first chunk (`take_below` moves on
        // when the rest is empty).
        let mut cursors: Vec<Cursor<'a>> = sets
            .map(|s| Cursor {
                chunks: s.fps.spine.iter(),
                rest: &[],
            })
            .collect();
        let mut seen = FpTable::with_capacity(2 * PER_RANGE);
        let mut unique = Vec::with_capacity(expect + expect / 8);
        for r in 1..=ranges as u64 {
            let end = r * width;
            for c in &mut cursors {
                c.take_below(end, |fp| seen.insert(fp));
            }
            seen.drain_into(&mut unique);
        }
        let mut bloom = Bloom::with_capacity(unique.len().max(64));
        for &fp in &unique {
            bloom.insert(fp);
        }
        self.bloom = bloom;
        self.unique = unique.len();
        self.built_unique = unique.len();
        self.built_raw = raw;
        self.inserted_since = 0;
        self.removed_since = 0;
    }

    pub(crate) fn may_contain(&self, fp: u32) -> bool {
        self.bloom.may_contain(fp)
    }

    pub(crate) fn bytes(&self) -> usize {
        self.bloom.bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fpset_merge_applies_adds_and_removes() {
        let mut s = FpSet::default();
        assert_eq!(s.apply(vec![5, 1, 3, 3], vec![], 100, None), 3);
        assert_eq!(s.iter().collect::<Vec<_>>(), vec![1, 3, 5]);
        assert_eq!(s.apply(vec![5, 2, 2], vec![1, 9], 100, None), 1);
        assert_eq!(s.iter().collect::<Vec<_>>(), vec![2, 3, 5]);
        // At the bound, shared or not: the smallest additions are kept.
        let mut t = s.clone();
        let pool = SharedReports::new([5; 40]);
        assert_eq!(t.apply(vec![9, 7, 8], vec![], 4, Some(&pool)), 1);
        assert_eq!(s.apply(vec![7, 8, 9], vec![], 4, None), 1);
        assert_eq!(s.len(), 4);
        assert!(s.iter().eq(t.iter()));
        let mut big = FpSet::default();
        big.apply((0..1000).map(|x| x * 2).collect(), vec![], usize::MAX, None);
        assert_eq!(big.apply(vec![3, 4, 5], vec![0, 4, 7], usize::MAX, None), 2);
        assert!(big.contains(3) && big.contains(5) && !big.contains(0) && !big.contains(4));
        assert_eq!(big.len(), 1000);
    }

    #[test]
    fn minus_is_a_set_difference() {
        assert_eq!(minus(vec![1, 3, 5, 7], &[]), vec![1, 3, 5, 7]);
        assert_eq!(minus(vec![1, 3, 5, 7], &[0, 3, 4, 7, 9]), vec![1, 5]);
        assert_eq!(minus(vec![2, 4], &[1, 2, 3, 4]), Vec::<u32>::new());
        assert_eq!(minus(vec![], &[1]), Vec::<u32>::new());
        assert_eq!(minus(vec![0, u32::MAX], &[u32::MAX]), vec![0]);
    }

    #[test]
    fn shared_sets_are_stored_once_and_give_the_same_results() {
        let pool = SharedReports::new([5; 40]);
        // Three neighbours of one peer receive its map and then the same
        // diffs; a fourth received the map at another moment.
        let base: Vec<u32> = (0..500).map(|x| x * 3).collect();
        let mut held: Vec<FpSet> = (0..3).map(|_| FpSet::default()).collect();
        for s in &mut held {
            assert_eq!(s.apply(base.clone(), vec![], 1000, Some(&pool)), 500);
        }
        let mut late = FpSet::default();
        late.apply(base[..499].to_vec(), vec![], 1000, Some(&pool));
        late.apply(vec![base[499], 7], vec![], 1000, Some(&pool));
        let mut plain = FpSet::default();
        plain.apply(base.clone(), vec![], 1000, None);
        for (add, rem) in [
            (vec![7, 1], vec![3, 6, 4]),
            (vec![], vec![0]),
            (vec![2; 3], vec![]),
            // Unsorted, repeated, and an addition also removed.
            (vec![31, 13, 31, 5, 8], vec![8, 9, 12]),
        ] {
            let want = plain.apply(add.clone(), rem.clone(), 1000, None);
            for s in &mut held {
                assert_eq!(s.apply(add.clone(), rem.clone(), 1000, Some(&pool)), want);
                assert_eq!(
                    s.iter().collect::<Vec<_>>(),
                    plain.iter().collect::<Vec<_>>()
                );
            }
        }
        // One allocation for the three; the late one converged onto it by
        // content after the same diffs (7 was already there).
        let same = |a: &FpSet, b: &FpSet| Arc::ptr_eq(&a.fps.spine, &b.fps.spine);
        assert!(same(&held[0], &held[1]) && same(&held[1], &held[2]));
        late.apply(vec![1], vec![3, 6, 4], 1000, Some(&pool));
        late.apply(vec![], vec![0], 1000, Some(&pool));
        late.apply(vec![2], vec![], 1000, Some(&pool));
        late.apply(vec![5, 13, 31], vec![9, 12, 8], 1000, Some(&pool));
        assert!(same(&late, &held[0]));
        // Dead sets are purged from the pool once it has grown.
        drop(held);
        drop(late);
        for i in 0..5000u32 {
            let mut s = FpSet::default();
            s.apply(vec![i, i + 1], vec![], 10, Some(&pool));
        }
        let entries = lock(&pool.fps).entries();
        assert!(entries < 3 * 8192, "{entries} entries");
    }

    #[test]
    fn the_union_counts_each_fingerprint_once_and_sets_the_bits_of_a_sorted_build() {
        let mut x = 0x0bad_cafeu32;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x
        };
        // Overlapping sets (the same fingerprints reported by many peers),
        // 0 and the largest among them, growing past the table's first size;
        // some cut into chunks as shared sets are.
        let pool: Vec<u32> = (0..24_000)
            .map(|i| match i {
                7 => 0,
                8 => u32::MAX,
                _ => next(),
            })
            .collect();
        let shared = SharedReports::new([5; 40]);
        let mut sets = Vec::new();
        for k in 0..40 {
            let mut s = FpSet::default();
            let mut add: Vec<u32> = (0..400 + 40 * k)
                .map(|_| pool[next() as usize % pool.len()])
                .collect();
            add.extend_from_slice(&pool[..10]);
            s.apply(add, vec![], usize::MAX, (k % 2 == 0).then_some(&shared));
            sets.push(s);
        }
        // A union built before from many or few: its size sizes the next
        // rebuild's table.
        let mut before = [Union::default(), Union::default(), Union::default()];
        before[1].rebuild(sets[..3].iter());
        before[2].rebuild(sets.iter());
        assert!(
            before[2].built_unique > 16 * 1024,
            "{}",
            before[2].built_unique
        );
        for (upto, b) in [0usize, 1, 5, 40]
            .into_iter()
            .flat_map(|n| (0..3).map(move |b| (n, b)))
        {
            let mut u = before[b].clone();
            u.rebuild(sets[..upto].iter());
            let mut all: Vec<u32> = sets[..upto].iter().flat_map(|s| s.iter()).collect();
            all.sort_unstable();
            all.dedup();
            assert_eq!(u.unique, all.len());
            let mut want = Bloom::with_capacity(all.len().max(64));
            for &fp in &all {
                want.insert(fp);
            }
            assert_eq!(u.bloom.blocks, want.blocks);
            assert_eq!(
                u.built_raw,
                sets[..upto].iter().map(FpSet::len).sum::<usize>()
            );
        }
    }

    /// Fingerprints in ascending order visit the filter's blocks in
    /// ascending order, every block in turn (what makes a sorted map sync's
    /// checks and a range-by-range rebuild walk it front to back).
    #[test]
    fn bloom_blocks_follow_fingerprint_order() {
        let bloom = Bloom::with_capacity(10_000);
        let n = bloom.blocks.len();
        let mut last = 0;
        let mut seen = vec![false; n];
        for i in 0..=(1u64 << 16) {
            let fp = (i * ((1 << 16) + 1)).min(u64::from(u32::MAX)) as u32;
            let (b, _) = bloom.positions(fp);
            assert!(b >= last && b < n, "{fp}: block {b} after {last}");
            seen[b] = true;
            last = b;
        }
        assert!(seen.iter().all(|s| *s));
    }

    #[test]
    fn radix_sort_sorts() {
        let mut x = 0x1234_5678u32;
        for n in [
            0usize, 5, 255, 256, 257, 1023, 1024, 4095, 4096, 10_000, 100_003,
        ] {
            let mut v: Vec<u32> = (0..n)
                .map(|i| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    if i % 7 == 0 {
                        u32::MAX - (i as u32 % 3)
                    } else {
                        x
                    }
                })
                .collect();
            let mut want = v.clone();
            want.sort_unstable();
            sort_fps(&mut v);
            assert_eq!(v, want, "{n}");
        }
    }

    #[test]
    fn bloom_has_no_false_negatives_and_few_false_positives() {
        let f = Fingerprinter::new([7; 40]);
        let mut set = FpSet::default();
        let ids: Vec<u32> = (0..20_000u32)
            .map(|i| {
                let mut b = [0u8; 32];
                b[..4].copy_from_slice(&i.to_le_bytes());
                f.fp(&NodeId(b))
            })
            .collect();
        set.apply(ids.clone(), vec![], usize::MAX, None);
        let mut u = Union::default();
        u.rebuild(std::iter::once(&set));
        assert!(ids.iter().all(|&x| u.may_contain(x)));
        let fp = (1_000_000..1_100_000u32)
            .filter(|&x| u.may_contain(x.wrapping_mul(2_654_435_761)))
            .count();
        assert!(fp < 5_000, "false positive rate {fp}/100000");
    }
}
