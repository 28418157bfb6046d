//! Report storage shared by the meshes of one process — **for
//! simulation** ([`SharedReports`], [`super::MeshConfig::shared_reports`]).
//!
//! Every neighbour of a peer P holds P's reported hop 1 and hop 2, and
//! after each diff round they all hold the same content. A simulator that
//! runs thousands of meshes in one process stores each such list once:
//! lists are immutable `Arc<[T]>`, interned by content, and the result of
//! applying one change to one list is remembered (a transition), so the
//! first neighbour computes it and the others take it. A mesh's results
//! are the same with or without sharing; only the storage is shared.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

use super::map::Hop1Outcome;
use super::map::Reported;
use crate::ids::NodeId;

/// A change to a reported hop-2 set: sorted additions, sorted removals,
/// the bound.
pub(crate) type FpEdit = (Vec<u32>, Vec<u32>, usize);
/// Interned reported hop-2 fingerprint sets; a transition keeps how many
/// were added and whether the bound dropped none.
pub(crate) type FpPool = Pool<u32, FpEdit, (usize, bool)>;
/// Interned reported hop-1 lists; a transition keeps each change's outcomes.
pub(crate) type Hop1Pool = Pool<(NodeId, Reported), Hop1Edit, Arc<[Hop1Outcome]>>;
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
    pub(crate) hop1: Arc<Mutex<Hop1Pool>>,
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
            hop1: Arc::new(Mutex::new(Pool::default())),
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

/// Interned lists of `T` and the transitions between them.
pub(crate) struct Pool<T, E, X> {
    /// Lists by content hash.
    lists: HashMap<u64, Vec<Weak<[T]>>>,
    /// Transitions by hash of (source list's address, change).
    transitions: HashMap<u64, Vec<Transition<T, E, X>>>,
    /// Entries now and after the last purge of dead ones.
    entries: usize,
    after_purge: usize,
}

impl<T, E, X> Default for Pool<T, E, X> {
    fn default() -> Self {
        Pool {
            lists: HashMap::new(),
            transitions: HashMap::new(),
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
    /// The remembered result of `edit` on `from`, if it is still alive.
    pub(crate) fn get(&self, from: &Arc<[T]>, edit: &E) -> Option<(Arc<[T]>, X)> {
        self.get_with(from, transition_key(from, edit), |e| e == edit)
    }

    /// [`Pool::get`] by the edit's table key ([`transition_key`]) and a
    /// test for it (the edit need not be built to be looked up).
    pub(crate) fn get_with(
        &self,
        from: &Arc<[T]>,
        key: u64,
        is_edit: impl Fn(&E) -> bool,
    ) -> Option<(Arc<[T]>, X)> {
        self.transitions.get(&key)?.iter().find_map(|t| {
            let same = is_edit(&t.edit) && t.from.upgrade().is_some_and(|f| Arc::ptr_eq(&f, from));
            same.then(|| t.to.upgrade().map(|to| (to, t.extra.clone())))
                .flatten()
        })
    }

    /// Remember that `edit` on `from` gives `out`: `out` is interned by
    /// content (an equal live list is reused) and returned. The transition
    /// is remembered only if `remember` (a whole map sync onto an empty
    /// list rarely repeats and would keep a large edit).
    pub(crate) fn put(
        &mut self,
        from: &Arc<[T]>,
        edit: E,
        out: Vec<T>,
        extra: X,
        remember: bool,
    ) -> Arc<[T]> {
        let tkey = transition_key(from, &edit);
        let mut h = hasher();
        out.hash(&mut h);
        let ckey = h.finish();
        let existing = self
            .lists
            .get(&ckey)
            .and_then(|v| v.iter().filter_map(Weak::upgrade).find(|s| **s == *out));
        let to = match existing {
            Some(s) => s,
            None => {
                let s: Arc<[T]> = Arc::from(out);
                self.lists.entry(ckey).or_default().push(Arc::downgrade(&s));
                self.entries += 1;
                s
            }
        };
        if remember {
            self.transitions.entry(tkey).or_default().push(Transition {
                from: Arc::downgrade(from),
                edit,
                to: Arc::downgrade(&to),
                extra,
            });
            self.entries += 1;
        }
        // A `Weak` keeps a dead list's memory: purge whenever the tables
        // grew by half since the last purge (amortized O(1) per entry).
        if 2 * self.entries > 3 * self.after_purge + 8192 {
            self.purge();
        }
        to
    }

    fn purge(&mut self) {
        self.lists.retain(|_, v| {
            v.retain(|w| w.strong_count() > 0);
            !v.is_empty()
        });
        self.transitions.retain(|_, v| {
            v.retain(|t| t.from.strong_count() > 0 && t.to.strong_count() > 0);
            !v.is_empty()
        });
        self.entries = self.lists.values().map(Vec::len).sum::<usize>()
            + self.transitions.values().map(Vec::len).sum::<usize>();
        self.after_purge = self.entries;
    }

    /// Entries held (lists and transitions, dead ones until the next purge).
    #[cfg(test)]
    pub(crate) fn entries(&self) -> usize {
        self.entries
    }
}
