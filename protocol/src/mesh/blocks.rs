//! Hop 2 of the map by id: a sorted map in blocks of exact size.
//!
//! A `BTreeMap<Key, _>` of hop 2 took 60–75 bytes an entry (40 of key and
//! value; a leaf holds 11 in 456 bytes and is 55–70 % full), and hop 2 is
//! ~5,500 nodes a node at 10⁴ simulated nodes: the largest part of that
//! simulation's memory. Here the entries lie in sorted blocks of at most
//! [`BLOCK`] entries, each allocated to its exact length (an insert or a
//! removal resizes its block, which the allocator mostly does in place),
//! with the first key of each block kept aside for the search: ~41 bytes
//! an entry. Same order, same answers.

use std::cmp::Ordering;

use super::map::Key;
use crate::ids::NodeId;

/// Most entries of a block; a full block splits in two.
const BLOCK: usize = 64;

/// A sorted map from [`Key`] to `V`.
#[derive(Debug, Clone)]
pub(crate) struct Blocks<V> {
    /// Each block's first key, by the first eight bytes (the search).
    heads: Vec<u64>,
    /// Non-empty sorted blocks, in order.
    blocks: Vec<Vec<(Key, V)>>,
    len: usize,
}

impl<V> Default for Blocks<V> {
    fn default() -> Self {
        Blocks {
            heads: Vec::new(),
            blocks: Vec::new(),
            len: 0,
        }
    }
}

/// A position: (block, index in it).
pub(crate) type Pos = (usize, usize);

/// `v.partition_point(pred)` (`pred` true on a prefix of `v`), searched
/// from `guess` outward by galloping: O(log |answer − guess|) probes.
fn partition_from<T>(v: &[T], guess: usize, pred: impl Fn(&T) -> bool) -> usize {
    let n = v.len();
    let g = guess.min(n);
    let (lo, hi) = if v.get(g).is_some_and(&pred) {
        // The answer is above g.
        let mut lo = g + 1;
        let mut step = 1;
        loop {
            let probe = lo + step - 1;
            match v.get(probe) {
                None => break (lo, n),
                Some(x) if pred(x) => {
                    lo = probe + 1;
                    step *= 2;
                }
                Some(_) => break (lo, probe),
            }
        }
    } else {
        // The answer is at most g.
        let mut hi = g;
        let mut step = 1;
        loop {
            let Some(probe) = hi.checked_sub(step) else {
                break (0, hi);
            };
            if pred(&v[probe]) {
                break (probe + 1, hi);
            }
            hi = probe;
            step *= 2;
        }
    };
    lo + v[lo..hi].partition_point(pred)
}

impl<V> Blocks<V> {
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The block that holds `k` if anything does (the last whose first key
    /// is not above `k`; the first block if none), and where `k` is or
    /// would go in it.
    ///
    /// Ids are uniform in practice, so both searches start where `k`'s head
    /// falls by interpolation and gallop from there (O(log distance): a
    /// skewed set of ids costs a binary search, no more): ~2 cache lines
    /// instead of ~13 for a binary search of the heads and of a block
    /// (those misses were ~11 % of a simulated join).
    fn locate(&self, k: &Key) -> (usize, Result<usize, usize>) {
        let head = k.head();
        let n = self.heads.len();
        let guess = ((u128::from(head) * n as u128) >> 64) as usize;
        let mut b = partition_from(&self.heads, guess, |h| *h <= head);
        // Blocks that start with the same head may start above `k`.
        while b > 0
            && self.heads[b - 1] == head
            && self.blocks[b - 1]
                .first()
                .is_some_and(|(f, _)| f.cmp(k) == Ordering::Greater)
        {
            b -= 1;
        }
        let b = b.saturating_sub(1);
        let Some(block) = self.blocks.get(b) else {
            return (0, Err(0));
        };
        // Where `head` falls between this block's first head and the next's.
        let lo = self.heads[b];
        let hi = self.heads.get(b + 1).copied().unwrap_or(u64::MAX);
        let guess = if head <= lo || hi <= lo {
            0
        } else {
            ((u128::from(head - lo) * block.len() as u128) / (u128::from(hi - lo) + 1)) as usize
        };
        let i = partition_from(block, guess, |(x, _)| x.cmp(k) == Ordering::Less);
        match block.get(i) {
            Some((x, _)) if x == k => (b, Ok(i)),
            _ => (b, Err(i)),
        }
    }

    /// Where `k` is.
    pub(crate) fn find(&self, k: &Key) -> Option<Pos> {
        match self.locate(k) {
            (b, Ok(i)) => Some((b, i)),
            _ => None,
        }
    }

    pub(crate) fn get(&self, k: &Key) -> Option<&V> {
        self.find(k).map(|(b, i)| &self.blocks[b][i].1)
    }

    pub(crate) fn get_mut(&mut self, k: &Key) -> Option<&mut V> {
        self.find(k).map(|(b, i)| &mut self.blocks[b][i].1)
    }

    pub(crate) fn contains_key(&self, k: &Key) -> bool {
        self.find(k).is_some()
    }

    pub(crate) fn at_mut(&mut self, (b, i): Pos) -> &mut V {
        &mut self.blocks[b][i].1
    }

    /// The entry of `k`, made by `make` if absent; and whether it is new.
    pub(crate) fn entry_or_insert(&mut self, k: Key, make: impl FnOnce() -> V) -> (&mut V, bool) {
        let (b, at) = self.locate(&k);
        let i = match at {
            Ok(i) => return (&mut self.blocks[b][i].1, false),
            Err(i) => i,
        };
        self.len += 1;
        if self.blocks.is_empty() {
            self.heads.push(k.head());
            self.blocks.push(vec![(k, make())]);
            return (&mut self.blocks[0][0].1, true);
        }
        let block = &mut self.blocks[b];
        if block.len() >= BLOCK {
            // Split: the upper half goes to a new block after this one.
            let upper: Vec<(Key, V)> = block.drain(BLOCK / 2..).collect();
            block.shrink_to_fit();
            let upper_head = upper[0].0.head();
            self.blocks.insert(b + 1, upper);
            self.heads.insert(b + 1, upper_head);
            let (b, i) = if i > BLOCK / 2 {
                (b + 1, i - BLOCK / 2)
            } else {
                (b, i)
            };
            return self.insert_at(b, i, k, make());
        }
        self.insert_at(b, i, k, make())
    }

    fn insert_at(&mut self, b: usize, i: usize, k: Key, v: V) -> (&mut V, bool) {
        let block = &mut self.blocks[b];
        block.reserve_exact(1);
        block.insert(i, (k, v));
        if i == 0 {
            self.heads[b] = k.head();
        }
        (&mut self.blocks[b][i].1, true)
    }

    /// Remove the entry at `pos`.
    pub(crate) fn remove_at(&mut self, (b, i): Pos) {
        let block = &mut self.blocks[b];
        block.remove(i);
        self.len -= 1;
        if block.is_empty() {
            self.blocks.remove(b);
            self.heads.remove(b);
            return;
        }
        block.shrink_to_fit();
        if i == 0 {
            self.heads[b] = block[0].0.head();
        }
    }

    /// Entries in key order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&Key, &V)> + '_ {
        self.blocks.iter().flatten().map(|(k, v)| (k, v))
    }

    /// Entries from `k` on (from the first above `k` if `excl`), in order.
    fn iter_from(&self, k: &Key, excl: bool) -> impl Iterator<Item = (&Key, &V)> + '_ {
        let (b, at) = self.locate(k);
        let i = match at {
            Ok(i) => i + usize::from(excl),
            Err(i) => i,
        };
        let first = self
            .blocks
            .get(b)
            .map_or(&[][..], |x| x.get(i..).unwrap_or(&[]));
        first
            .iter()
            .chain(self.blocks.iter().skip(b + 1).flatten())
            .map(|(k, v)| (k, v))
    }

    /// Entries up to `k` (below `k` if `excl`), in reverse order.
    fn iter_back(&self, k: &Key, excl: bool) -> impl Iterator<Item = (&Key, &V)> + '_ {
        let (b, at) = self.locate(k);
        let end = match at {
            Ok(i) => i + usize::from(!excl),
            Err(i) => i,
        };
        let first = self
            .blocks
            .get(b)
            .map_or(&[][..], |x| &x[..end.min(x.len())]);
        let before = self.blocks.get(..b).unwrap_or(&[]);
        first
            .iter()
            .rev()
            .chain(before.iter().rev().flat_map(|x| x.iter().rev()))
            .map(|(k, v)| (k, v))
    }

    /// The greatest key up to `k` (below it if `excl`) whose entry passes
    /// `ok`.
    pub(crate) fn prev_ok(
        &self,
        k: &Key,
        excl: bool,
        ok: impl Fn(&NodeId, &V) -> bool,
    ) -> Option<NodeId> {
        self.iter_back(k, excl)
            .find(|(x, v)| ok(&x.0, v))
            .map(|(x, _)| x.0)
    }

    /// The least key above `k` whose entry passes `ok`.
    pub(crate) fn next_ok(&self, k: &Key, ok: impl Fn(&NodeId, &V) -> bool) -> Option<NodeId> {
        self.iter_from(k, true)
            .find(|(x, v)| ok(&x.0, v))
            .map(|(x, _)| x.0)
    }

    /// Heap bytes (blocks at their length, the heads, the block table).
    pub(crate) fn bytes(&self) -> usize {
        self.len * std::mem::size_of::<(Key, V)>()
            + self.heads.capacity() * 8
            + self.blocks.capacity() * std::mem::size_of::<Vec<(Key, V)>>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn key(x: u64, tail: u8) -> Key {
        let mut b = [0u8; 32];
        b[..8].copy_from_slice(&x.to_be_bytes());
        b[31] = tail;
        Key(NodeId(b))
    }

    #[test]
    fn galloping_finds_the_partition_point_from_any_guess() {
        let mut r = 0x9e37_79b9_7f4a_7c15u64;
        for n in [0usize, 1, 2, 3, 7, 64, 300] {
            let mut v: Vec<u64> = (0..n)
                .map(|_| {
                    r ^= r << 13;
                    r ^= r >> 7;
                    r ^= r << 17;
                    r % 50
                })
                .collect();
            v.sort_unstable();
            for x in 0..52u64 {
                let want = v.partition_point(|y| *y <= x);
                for guess in 0..n + 3 {
                    assert_eq!(
                        partition_from(&v, guess, |y| *y <= x),
                        want,
                        "{n} {x} {guess}"
                    );
                }
            }
        }
    }

    #[test]
    fn blocks_behave_like_a_btree() {
        let mut r = 0x2545_f491_4f6c_dd1du64;
        let mut t: Blocks<u32> = Blocks::default();
        let mut m: BTreeMap<Key, u32> = BTreeMap::new();
        for step in 0..40_000u32 {
            r ^= r << 13;
            r ^= r >> 7;
            r ^= r << 17;
            // Few heads, so that equal heads span blocks.
            let k = key((r >> 8) % 300, (r % 7) as u8);
            match (r >> 40) % 4 {
                0 | 1 => {
                    let (v, fresh) = t.entry_or_insert(k, || step);
                    assert_eq!(fresh, !m.contains_key(&k));
                    *v += 1;
                    *m.entry(k).or_insert(step) += 1;
                }
                2 => {
                    if let Some(p) = t.find(&k) {
                        t.remove_at(p);
                    }
                    m.remove(&k);
                }
                _ => {
                    assert_eq!(t.get(&k), m.get(&k));
                    let ok = |_: &NodeId, v: &u32| !v.is_multiple_of(3);
                    for excl in [false, true] {
                        let want = if excl {
                            m.range(..k).rev().find(|(_, v)| ok(&k.0, v))
                        } else {
                            m.range(..=k).rev().find(|(_, v)| ok(&k.0, v))
                        };
                        assert_eq!(t.prev_ok(&k, excl, ok), want.map(|(x, _)| x.0));
                    }
                    let want = m
                        .range((std::ops::Bound::Excluded(k), std::ops::Bound::Unbounded))
                        .find(|(_, v)| ok(&k.0, v));
                    assert_eq!(t.next_ok(&k, ok), want.map(|(x, _)| x.0));
                }
            }
            assert_eq!(t.len(), m.len());
            if step % 997 == 0 {
                assert!(t
                    .iter()
                    .map(|(k, v)| (*k, *v))
                    .eq(m.iter().map(|(k, v)| (*k, *v))));
                assert!(t.blocks.iter().all(|b| !b.is_empty() && b.len() <= BLOCK));
                assert!(t
                    .blocks
                    .iter()
                    .zip(&t.heads)
                    .all(|(b, h)| b[0].0.head() == *h));
            }
        }
    }
}
