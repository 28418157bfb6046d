//! Report storage shared by the meshes of one process — **for
//! simulation** ([`SharedReports`], [`super::MeshConfig::shared_reports`]).
//!
//! Every neighbour of a peer P holds P's reported hop 1 and hop 2, and
//! after each diff round they all hold the same content. A simulator that
//! runs thousands of meshes in one process stores each such list once:
//! lists are immutable spines of chunks (module `chunked`), the chunks
//! interned by content and the spines by their chunks, and the result of
//! applying one change to one list is remembered (a transition), so the
//! first neighbour computes it and the others take it. Between diff rounds
//! (in a join, a peer's neighbours received its map at different moments)
//! their lists differ in a few elements, hence in a few chunks: each holds
//! its spine and those chunks. A mesh's results are the same with or
//! without sharing; only the storage is shared.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

use super::chunked::Chunk;
use super::map::Hop1Outcome;
use super::map::Reported;
use crate::ids::NodeId;

/// A change to a reported hop-2 set: sorted additions, sorted removals,
/// the bound.
pub(crate) type FpEdit = (Vec<u32>, Vec<u32>, usize);
/// Interned spines of reported hop-2 fingerprint sets; a transition keeps
/// how many were added and whether the bound dropped none.
pub(crate) type FpPool = Pool<Chunk<u32>, FpEdit, (usize, bool)>;
/// Interned spines of reported hop-1 lists; a transition keeps each
/// change's outcomes.
pub(crate) type Hop1Pool = Pool<Chunk<(NodeId, Reported)>, Hop1Edit, Arc<[Hop1Outcome]>>;
/// Interned chunks (no transitions).
pub(crate) type ChunkPool<T> = Pool<T, (), ()>;
/// A change to a reported hop 1: the reporter and its changes in order
/// (`None`: removed).
pub(crate) type Hop1Edit = (NodeId, Vec<(NodeId, Option<Reported>)>);

/// Shared report storage; clone it into every mesh's
/// [`super::MeshConfig::shared_reports`]. Simulation only: the meshes also
/// share one hop-3 fingerprint key (a real node derives its own secret key
/// from its seed, so that nobody can grind collisions against it).
#[derive(Clone)]
pub struct SharedReports {
    key: [u8; 40],
    pub(crate) fps: Arc<Mutex<FpPool>>,
    pub(crate) fp_chunks: Arc<Mutex<ChunkPool<u32>>>,
    pub(crate) hop1: Arc<Mutex<Hop1Pool>>,
    pub(crate) hop1_chunks: Arc<Mutex<ChunkPool<(NodeId, Reported)>>>,
}

/// What the shared storage holds (live lists and chunks, and their heap
/// bytes), for the simulator's progress lines.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SharedStats {
    /// Reported hop-1 lists (spines) alive.
    pub hop1_lists: usize,
    /// Their chunks alive.
    pub hop1_chunks: usize,
    /// Heap bytes of both (allocations, not counting allocator slack).
    pub hop1_bytes: usize,
    /// Reported hop-2 fingerprint sets (spines) alive.
    pub fp_sets: usize,
    /// Their chunks alive.
    pub fp_chunks: usize,
    /// Heap bytes of both.
    pub fp_bytes: usize,
    /// Heap bytes of the pools' own tables (interning and transitions).
    pub table_bytes: usize,
}

impl std::fmt::Debug for SharedReports {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SharedReports { .. }")
    }
}

impl SharedReports {
    /// Shared storage whose meshes all fingerprint hop 3 with `key`.
    pub fn new(key: [u8; 40]) -> Self {
        SharedReports {
            key,
            fps: Arc::new(Mutex::new(Pool::default())),
            fp_chunks: Arc::new(Mutex::new(Pool::default())),
            hop1: Arc::new(Mutex::new(Pool::default())),
            hop1_chunks: Arc::new(Mutex::new(Pool::default())),
        }
    }

    /// What is stored now (walks every pool: for progress lines, not per
    /// event).
    pub fn stats(&self) -> SharedStats {
        let (hop1_lists, b1, t1) = lock(&self.hop1).live();
        let (hop1_chunks, c1, t2) = lock(&self.hop1_chunks).live();
        let (fp_sets, b2, t3) = lock(&self.fps).live();
        let (fp_chunks, c2, t4) = lock(&self.fp_chunks).live();
        SharedStats {
            hop1_lists,
            hop1_chunks,
            hop1_bytes: b1 + c1,
            fp_sets,
            fp_chunks,
            fp_bytes: b2 + c2,
            table_bytes: t1 + t2 + t3 + t4,
        }
    }

    /// The fingerprint key of every mesh sharing this storage.
    pub(crate) fn key(&self) -> [u8; 40] {
        self.key
    }
}

/// Lock a pool (a poisoned lock only means another mesh panicked).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One remembered change: `from` changed by `edit` is `to` (with the
/// change's `extra` result).
struct Transition<T, E, X> {
    from: Weak<[T]>,
    edit: E,
    to: Weak<[T]>,
    extra: X,
}

/// The hasher of the pools' tables, whose keys are 64-bit hashes already
/// (of a list's content, of a transition): the key is its own hash. The
/// default hasher (SipHash) cost ~20 ns per lookup, and every interned
/// chunk is looked up.
#[derive(Default)]
pub(crate) struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `u64` keys are hashed; anything else is folded in.
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }

    fn write_u64(&mut self, x: u64) {
        self.0 = x;
    }
}

/// A table keyed by a 64-bit hash.
type Keyed<V> = HashMap<u64, V, BuildHasherDefault<KeyHasher>>;

/// Interned lists of `T` and the transitions between them. One entry per
/// hash: a live entry that a different list or change hashes to (a 64-bit
/// collision) stays, and the newcomer is simply not interned (interning
/// only saves memory; results never depend on it).
pub(crate) struct Pool<T, E, X> {
    /// Lists by content hash.
    lists: Keyed<Weak<[T]>>,
    /// Transitions by hash of (source list's address, change). A `Weak`
    /// keeps its allocation, so a live source's address is never another
    /// list's while its transition is kept.
    transitions: Keyed<Transition<T, E, X>>,
    /// Entries now and after the last purge of dead ones.
    entries: usize,
    after_purge: usize,
}

impl<T, E, X> Default for Pool<T, E, X> {
    fn default() -> Self {
        Pool {
            lists: Keyed::default(),
            transitions: Keyed::default(),
            entries: 0,
            after_purge: 0,
        }
    }
}

fn hasher() -> impl Hasher {
    foldhash::fast::FixedState::with_seed(0x7368_6172_6564).build_hasher()
}

/// The table key of a transition: `edit` may be a borrowed form of the
/// stored edit that hashes the same (a tuple of slices for one of `Vec`s).
pub(crate) fn transition_key<T, E: Hash + ?Sized>(from: &Arc<[T]>, edit: &E) -> u64 {
    let mut h = hasher();
    (Arc::as_ptr(from) as *const T as usize).hash(&mut h);
    edit.hash(&mut h);
    h.finish()
}

impl<T: Eq + Hash, E: Eq + Hash, X: Clone> Pool<T, E, X> {
    /// The remembered result of an edit on `from`, if it is still alive,
    /// by the edit's table key ([`transition_key`]) and a test for it (the
    /// edit need not be built to be looked up: a borrowed form of it hashes
    /// the same).
    pub(crate) fn get_with(
        &self,
        from: &Arc<[T]>,
        key: u64,
        is_edit: impl Fn(&E) -> bool,
    ) -> Option<(Arc<[T]>, X)> {
        let t = self.transitions.get(&key)?;
        // `from` is alive (held by the caller) and the entry's `Weak`
        // keeps its own source's allocation: equal addresses, same list.
        let same = std::ptr::eq(t.from.as_ptr() as *const T, Arc::as_ptr(from) as *const T)
            && is_edit(&t.edit);
        same.then(|| t.to.upgrade().map(|to| (to, t.extra.clone())))
            .flatten()
    }

    /// The live list equal to `out`, or `out` made one (interned by
    /// content unless another live list holds its hash).
    fn intern_with<S: AsRef<[T]> + Into<Arc<[T]>>>(&mut self, out: S) -> Arc<[T]> {
        let mut h = hasher();
        out.as_ref().hash(&mut h);
        let ckey = h.finish();
        match self.lists.entry(ckey) {
            Entry::Occupied(mut o) => match o.get().upgrade() {
                Some(s) if *s == *out.as_ref() => s,
                Some(_) => out.into(),
                None => {
                    let s: Arc<[T]> = out.into();
                    o.insert(Arc::downgrade(&s));
                    s
                }
            },
            Entry::Vacant(v) => {
                let s: Arc<[T]> = out.into();
                v.insert(Arc::downgrade(&s));
                self.entries += 1;
                s
            }
        }
    }

    /// Remember that `edit` on `from` gives `out`: `out` is interned by
    /// content (an equal live list is reused) and returned. The transition
    /// is remembered only if there is an `edit` (a whole map sync onto an
    /// empty list rarely repeats and would keep a large edit: its caller
    /// does not copy it).
    pub(crate) fn put(
        &mut self,
        from: &Arc<[T]>,
        edit: Option<E>,
        out: Vec<T>,
        extra: X,
    ) -> Arc<[T]> {
        let to = self.intern_with(out);
        if let Some(edit) = edit {
            let tkey = transition_key(from, &edit);
            let t = Transition {
                from: Arc::downgrade(from),
                edit,
                to: Arc::downgrade(&to),
                extra,
            };
            match self.transitions.entry(tkey) {
                Entry::Occupied(mut o) => {
                    let old = o.get();
                    let dead = old.from.strong_count() == 0 || old.to.strong_count() == 0;
                    let same =
                        std::ptr::eq(old.from.as_ptr() as *const T, Arc::as_ptr(from) as *const T)
                            && old.edit == t.edit;
                    if dead || same {
                        o.insert(t);
                    }
                }
                Entry::Vacant(v) => {
                    v.insert(t);
                    self.entries += 1;
                }
            }
        }
        self.maybe_purge();
        to
    }

    /// The live list equal to `piece`, or a new one (interned by content).
    pub(crate) fn intern(&mut self, piece: &[T]) -> Arc<[T]>
    where
        T: Clone,
    {
        let s = self.intern_with(piece);
        self.maybe_purge();
        s
    }

    /// A `Weak` keeps a dead list's memory: purge whenever the tables grew
    /// by a quarter since the last purge (amortized O(1) per entry).
    fn maybe_purge(&mut self) {
        if 4 * self.entries > 5 * self.after_purge + 16_384 {
            self.purge();
        }
    }

    /// Live lists, their heap bytes, and the tables' heap bytes.
    fn live(&self) -> (usize, usize, usize) {
        let (mut n, mut bytes) = (0, 0);
        for w in self.lists.values() {
            if let Some(s) = w.upgrade() {
                n += 1;
                bytes += 16 + std::mem::size_of_val::<[T]>(&*s);
            }
        }
        let tables = self.lists.capacity() * 25
            + self.transitions.capacity() * (1 + std::mem::size_of::<(u64, Transition<T, E, X>)>());
        (n, bytes, tables)
    }

    fn purge(&mut self) {
        self.lists.retain(|_, w| w.strong_count() > 0);
        self.transitions
            .retain(|_, t| t.from.strong_count() > 0 && t.to.strong_count() > 0);
        self.entries = self.lists.len() + self.transitions.len();
        self.after_purge = self.entries;
    }

    /// Entries held (lists and transitions, dead ones until the next purge).
    #[cfg(test)]
    pub(crate) fn entries(&self) -> usize {
        self.entries
    }
}
