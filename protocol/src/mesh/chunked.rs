//! A sorted list of a peer's report ([`super::map`]'s reported hop 1,
//! [`super::hop3`]'s reported hop 2) stored as a spine of immutable chunks.
//!
//! A real node keeps each list in one chunk (one exact-size allocation, as
//! before). With [`super::share::SharedReports`] (simulation) a list is cut
//! into content-defined chunks: a chunk ends after an element whose own
//! hash says so ([`Entry::cut`], on average every [`Entry::SPAN`]
//! elements) or at [`Entry::MAX`] elements, so two lists that differ in a
//! few elements — a peer's report as its neighbours received it at
//! different moments — differ in a few chunks only, and the chunks are
//! interned by content: each neighbour's list costs its spine (16 bytes a
//! chunk) and the chunks nobody else holds. Same elements, same order,
//! same answers either way.

use std::cmp::Ordering;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// An element of a chunked list.
pub(crate) trait Entry: Clone + Eq + Hash {
    /// Average elements per chunk (a power of two), when cut.
    const SPAN: u64;
    /// Most elements per chunk, when cut.
    const MAX: usize;
    /// A hash of the element's key (the list's order is by key).
    fn key_hash(&self) -> u64;
    /// The list's order.
    fn order(&self, other: &Self) -> Ordering;
    /// Does a chunk end after this element?
    fn cut(&self) -> bool {
        self.key_hash()
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .rotate_left(29)
            .is_multiple_of(Self::SPAN)
    }
}

/// One chunk; two chunks are equal if they are the same allocation (chunks
/// of a shared list are interned, so equal content is the same allocation
/// while it lives).
#[derive(Debug)]
pub(crate) struct Chunk<T>(pub(crate) Arc<[T]>);

impl<T> Clone for Chunk<T> {
    fn clone(&self) -> Self {
        Chunk(self.0.clone())
    }
}

impl<T> PartialEq for Chunk<T> {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl<T> Eq for Chunk<T> {}

impl<T> Hash for Chunk<T> {
    fn hash<H: Hasher>(&self, h: &mut H) {
        (Arc::as_ptr(&self.0) as *const T as usize).hash(h);
    }
}

/// A sorted list as a spine of non-empty chunks.
#[derive(Debug)]
pub(crate) struct Chunked<T> {
    pub(crate) spine: Arc<[Chunk<T>]>,
    len: usize,
}

impl<T> Clone for Chunked<T> {
    fn clone(&self) -> Self {
        Chunked {
            spine: self.spine.clone(),
            len: self.len,
        }
    }
}

impl<T> Default for Chunked<T> {
    fn default() -> Self {
        Chunked {
            spine: Arc::from([]),
            len: 0,
        }
    }
}

impl<T> Chunked<T> {
    /// A list of these chunks (`len` elements in all).
    pub(crate) fn from_spine(spine: Arc<[Chunk<T>]>) -> Self {
        let len = spine.iter().map(|c| c.0.len()).sum();
        Chunked { spine, len }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &T> + '_ {
        self.spine.iter().flat_map(|c| c.0.iter())
    }

    /// The element `cmp` finds (`cmp(x)`: x's order against the sought key),
    /// by a binary search of the spine.
    pub(crate) fn find_by(&self, cmp: impl Fn(&T) -> Ordering) -> Option<&T> {
        // The last chunk whose first element is not after the key.
        let i = self
            .spine
            .partition_point(|c| c.0.first().is_some_and(|x| cmp(x) != Ordering::Greater));
        let chunk = &self.spine.get(i.checked_sub(1)?)?.0;
        chunk.binary_search_by(cmp).ok().map(|j| &chunk[j])
    }

    /// The elements, copied into one vector.
    pub(crate) fn to_vec(&self) -> Vec<T>
    where
        T: Clone,
    {
        let mut v = Vec::with_capacity(self.len);
        for c in self.spine.iter() {
            v.extend_from_slice(&c.0);
        }
        v
    }

    /// Heap bytes of the list as one node holds it (unshared): the spine,
    /// and each chunk with its counts.
    pub(crate) fn bytes(&self) -> usize {
        16 + self.spine.len() * (16 + std::mem::size_of::<Chunk<T>>())
            + self.len * std::mem::size_of::<T>()
    }
}

/// The chunks of the sorted list `flat`: one chunk made by `make` if
/// `!cut`; else cut as the module says, where a chunk equal to one of
/// `old`'s is that chunk (the same allocation) and others are made by
/// `make`.
pub(crate) fn rechunk<T: Entry>(
    old: &[Chunk<T>],
    flat: &[T],
    cut: bool,
    mut make: impl FnMut(&[T]) -> Arc<[T]>,
) -> Vec<Chunk<T>> {
    let mut out = Vec::new();
    if !cut {
        if !flat.is_empty() {
            out.push(Chunk(make(flat)));
        }
        return out;
    }
    let mut j = 0; // cursor in `old`, by first element
    let mut take = |piece: &[T], out: &mut Vec<Chunk<T>>| {
        let Some(first) = piece.first() else { return };
        while old
            .get(j)
            .and_then(|c| c.0.first())
            .is_some_and(|x| x.order(first) == Ordering::Less)
        {
            j += 1;
        }
        match old.get(j) {
            Some(c) if *c.0 == *piece => out.push(c.clone()),
            _ => out.push(Chunk(make(piece))),
        }
    };
    let mut start = 0;
    for (i, x) in flat.iter().enumerate() {
        if x.cut() || i + 1 - start >= T::MAX {
            take(&flat[start..=i], &mut out);
            start = i + 1;
        }
    }
    take(&flat[start..], &mut out);
    out
}

/// The chunks of the sorted list `old` (cut by [`rechunk`]'s rule) with
/// the sorted, duplicate-free `add` merged in and `remove` taken out (the
/// set `(old ∪ add) ∖ remove`), cut exactly as [`rechunk`] would cut the
/// whole new list, but re-cutting only from the first chunk a change falls
/// in until a cut lands on an old chunk's end again: the chunks between
/// changes are the old ones, so a diff costs its changes and the spine, not
/// the whole list. New pieces are made by `make`. Also returns how many
/// elements of `add` were new.
pub(crate) fn edit_chunked<T: Entry + Copy>(
    old: &[Chunk<T>],
    add: &[T],
    remove: &[T],
    mut make: impl FnMut(&[T]) -> Arc<[T]>,
) -> (Vec<Chunk<T>>, usize) {
    let mut out = Vec::with_capacity(old.len() + 2);
    let mut piece: Vec<T> = Vec::new();
    let mut added = 0;
    let (mut ai, mut ri) = (0, 0);
    // A piece equal to the old chunk its elements came from is that chunk.
    let mut emit = |x: T, piece: &mut Vec<T>, out: &mut Vec<Chunk<T>>, from: Option<&Chunk<T>>| {
        piece.push(x);
        if x.cut() || piece.len() >= T::MAX {
            match from {
                Some(c) if *c.0 == **piece => out.push(c.clone()),
                _ => out.push(Chunk(make(piece))),
            }
            piece.clear();
        }
    };
    let below = |v: &[T], from: usize, bound: Option<&T>| match bound {
        Some(f) => from + v[from..].partition_point(|x| x.order(f) == Ordering::Less),
        None => v.len(),
    };
    let mut i = 0;
    loop {
        // Chunk i covers the keys below the next chunk's first one (the
        // first chunk also everything below its own, the last everything
        // above); with no chunk left, what remains of `add`.
        let chunk: &[T] = old.get(i).map_or(&[], |c| &c.0);
        let bound = old.get(i + 1).and_then(|c| c.0.first());
        let (a_end, r_end) = (below(add, ai, bound), below(remove, ri, bound));
        if i < old.len() && a_end == ai && r_end == ri && piece.is_empty() {
            // Untouched and starting where a cut of the new list lands.
            out.push(old[i].clone());
            i += 1;
            continue;
        }
        let (adds, rems) = (&add[ai..a_end], &remove[ri..r_end]);
        let gone = |x: &T| rems.binary_search_by(|r| r.order(x)).is_ok();
        let (mut j, mut k) = (0, 0);
        while j < chunk.len() || k < adds.len() {
            let (x, new) = match (chunk.get(j), adds.get(k)) {
                (Some(a), Some(b)) => match a.order(b) {
                    Ordering::Less => {
                        j += 1;
                        (*a, false)
                    }
                    Ordering::Equal => {
                        j += 1;
                        k += 1;
                        (*a, false)
                    }
                    Ordering::Greater => {
                        k += 1;
                        (*b, true)
                    }
                },
                (Some(a), None) => {
                    j += 1;
                    (*a, false)
                }
                (None, Some(b)) => {
                    k += 1;
                    (*b, true)
                }
                (None, None) => break,
            };
            if !gone(&x) {
                added += usize::from(new);
                emit(x, &mut piece, &mut out, old.get(i));
            }
        }
        ai = a_end;
        ri = r_end;
        i += 1;
        if i >= old.len() && ai >= add.len() {
            break;
        }
    }
    match old.last() {
        _ if piece.is_empty() => {}
        Some(c) if *c.0 == *piece => out.push(c.clone()),
        _ => out.push(Chunk(make(&piece))),
    }
    (out, added)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An element with small chunks (~4, at most 6), to exercise the cuts.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
    struct Small(u32);

    impl Entry for Small {
        const SPAN: u64 = 4;
        const MAX: usize = 6;
        fn key_hash(&self) -> u64 {
            u64::from(self.0)
        }
        fn order(&self, other: &Self) -> Ordering {
            self.cmp(other)
        }
    }

    #[test]
    fn a_chunk_local_edit_cuts_as_a_whole_rechunk_and_keeps_untouched_chunks() {
        let mut r = 0x1357_9bdf_2468_ace0u64;
        let mut rnd = |m: u64| {
            r ^= r << 13;
            r ^= r >> 7;
            r ^= r << 17;
            r % m
        };
        let mk = |p: &[Small]| -> Arc<[Small]> { Arc::from(p) };
        for round in 0..3000 {
            let n = rnd(if round % 10 == 0 { 5 } else { 400 }) as usize;
            let mut flat: Vec<Small> = (0..n).map(|_| Small(rnd(1000) as u32)).collect();
            flat.sort_unstable();
            flat.dedup();
            let old = rechunk(&[], &flat, true, mk);
            let mut add: Vec<Small> = (0..rnd(12)).map(|_| Small(rnd(1100) as u32)).collect();
            let mut rem: Vec<Small> = (0..rnd(12))
                .map(|_| match flat.get(rnd(flat.len() as u64 + 1) as usize) {
                    Some(x) if rnd(4) != 0 => *x,
                    _ => Small(rnd(1100) as u32),
                })
                .collect();
            if rnd(3) == 0 {
                // Some additions removed in the same change.
                rem.extend(add.iter().take(2));
            }
            add.sort_unstable();
            add.dedup();
            rem.sort_unstable();
            rem.dedup();
            let mut want: Vec<Small> = flat.iter().chain(&add).copied().collect();
            want.sort_unstable();
            want.dedup();
            want.retain(|x| rem.binary_search(x).is_err());
            let want_added = add
                .iter()
                .filter(|x| flat.binary_search(x).is_err() && rem.binary_search(x).is_err())
                .count();
            let whole = rechunk(&old, &want, true, mk);
            let (got, added) = edit_chunked(&old, &add, &rem, mk);
            assert_eq!(added, want_added, "round {round}");
            let cuts = |c: &[Chunk<Small>]| c.iter().map(|c| c.0.to_vec()).collect::<Vec<_>>();
            assert_eq!(cuts(&got), cuts(&whole), "round {round}");
            // Every chunk the whole rechunk took from `old` is taken here too.
            for (g, w) in got.iter().zip(&whole) {
                if old.iter().any(|o| o == w) {
                    assert!(g == w, "round {round}");
                }
            }
        }
    }

    // `u32` (fingerprints) chunks by `hop3`'s rule: ~64 a chunk, at most 256.

    fn list(flat: &[u32], old: &Chunked<u32>) -> Chunked<u32> {
        Chunked::from_spine(Arc::from(rechunk(&old.spine, flat, true, |p| Arc::from(p))))
    }

    #[test]
    fn chunked_lists_find_iterate_and_share_unchanged_chunks() {
        let flat: Vec<u32> = (0..20_000).map(|x| x * 3).collect();
        let a = list(&flat, &Chunked::default());
        assert_eq!(a.len(), 20_000);
        assert!(a.iter().copied().eq(flat.iter().copied()));
        assert_eq!(a.to_vec(), flat);
        assert!(
            (150..650).contains(&a.spine.len()),
            "{} chunks",
            a.spine.len()
        );
        assert!(a.spine.iter().all(|c| !c.0.is_empty() && c.0.len() <= 256));
        for x in 0..60_001 {
            let got = a.find_by(|y| y.cmp(&x)).copied();
            assert_eq!(got, (x % 3 == 0 && x < 60_000).then_some(x), "{x}");
        }
        // One element added: all but one or two chunks are the old ones.
        let mut flat2 = flat.clone();
        flat2.insert(700, 2101);
        flat2.sort_unstable();
        let b = list(&flat2, &a);
        assert!(b.iter().copied().eq(flat2.iter().copied()));
        let new = b
            .spine
            .iter()
            .filter(|c| !a.spine.iter().any(|o| o == *c))
            .count();
        assert!(new <= 2, "{new} new chunks");
        // Unchunked: one chunk.
        let one = Chunked::from_spine(Arc::from(rechunk(&[], &flat, false, |p| Arc::from(p))));
        assert_eq!(one.spine.len(), 1);
        assert_eq!(one.find_by(|y| y.cmp(&300)), Some(&300));
        assert_eq!(Chunked::<u32>::default().find_by(|y| y.cmp(&3)), None);
    }
}
