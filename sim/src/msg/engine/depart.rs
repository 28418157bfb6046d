//! Departure convergence: when a node that left is in no online node's map
//! any more. Measurement only (the meshes are read, never changed), on the
//! main thread between phases; a look at every online node runs a shard
//! at a time on the run's threads. (At 10⁴ nodes, looking at every node
//! that still held each followed departure at every check was a quarter of
//! the CPU of the simulated half hour after the warm-up, all of it on one
//! thread.)

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use distsoc_protocol::ids::NodeId;

use super::{lock, thread_cpu_ns, Node, Sim};

/// One check: the nodes to look at and the id their maps may hold.
type Query = (Vec<u32>, NodeId);
/// Which shared reported-hop-2 lists hold one id's fingerprint
/// (`Map::contains_memo`).
type Memo = HashMap<usize, bool>;

impl Sim {
    /// Every `check_interval`: has each followed departure (whose node is
    /// still gone) left every online node's map? The answer is the first
    /// check at which no online node's map finds it. A node that held it at
    /// the last check is the likeliest to hold it still, so the nodes that
    /// held it are kept in a list and looked at from the front until one
    /// still does (then not converged, one look in the usual round); the
    /// ones that no longer do are dropped (each once). Once none is left,
    /// every online node is looked at (a stale entry can spread to nodes
    /// that did not hold it at the departure): none → converged, else those
    /// that do are the new list. Looking at every listed node each round
    /// gives the same answers and costs a look per listed node per round.
    /// The lists' next nodes are looked at together, in rounds, on the
    /// run's threads (a look that misses is a search of every peer's
    /// reported hop-2 set when the map's filter holds stale bits; on the
    /// main thread alone these were ~4 % of a 10⁴-node run's CPU, all of it
    /// on the critical path).
    pub(super) fn check_departures(&mut self) {
        let now = self.now;
        // The departures to check: (departure, its id, its list, the
        // position of the list's first node not yet found to have dropped
        // it).
        let mut open: Vec<(usize, NodeId, Vec<u32>, usize)> = Vec::new();
        for d in 0..self.departures.len() {
            if self.departures[d].converged.is_some() || self.departures[d].censored {
                continue;
            }
            let x = self.departures[d].node;
            if self.w.inc(x) != self.departures[d].inc || self.w.online(x, now) {
                self.departures[d].censored = true;
                continue;
            }
            let id = self.w.topo.ids[x as usize];
            let holders = std::mem::take(&mut self.departures[d].holders);
            open.push((d, id, holders, 0));
        }
        // Every list's next node at once, in rounds, on the run's threads:
        // a list stops at its first node that still holds the id (usually
        // the first round) or at its end.
        // Each departure's lists searched so far (maps do not change
        // during a check; see `Map::contains_memo`).
        let memos: Vec<Mutex<Memo>> = open.iter().map(|_| Mutex::default()).collect();
        let mut left: Vec<usize> = (0..open.len()).collect();
        while !left.is_empty() {
            left.retain(|&o| open[o].3 < open[o].2.len());
            let nodes: Vec<u32> = left.iter().map(|&o| open[o].2[open[o].3]).collect();
            let ids: Vec<NodeId> = left.iter().map(|&o| open[o].1).collect();
            let held = self.on_nodes(&nodes, |pos, n| {
                let mut memo = lock(&memos[left[pos]]);
                n.mesh
                    .as_ref()
                    .is_some_and(|m| m.map().contains_memo(&ids[pos], &mut memo))
            });
            let mut still = Vec::new();
            for (&o, held) in left.iter().zip(held) {
                if !held {
                    open[o].3 += 1;
                    still.push(o);
                }
            }
            left = still;
        }
        let mut confirm = Vec::new();
        let mut again: Vec<Query> = Vec::new();
        for (d, id, mut holders, gone) in open {
            holders.drain(..gone);
            if holders.is_empty() {
                confirm.push(d);
                again.push((self.online.clone(), id));
            }
            self.departures[d].holders = holders;
        }
        for (d, holders) in confirm.into_iter().zip(self.holders_of(again)) {
            if holders.is_empty() {
                self.departures[d].converged = Some(now - self.departures[d].at);
            }
            self.departures[d].holders = holders;
        }
    }

    /// For each query, the nodes among its own whose map finds its id, in
    /// their order. The other threads' CPU beyond the main thread's counts
    /// toward the main thread's critical path.
    pub(super) fn holders_of(&mut self, queries: Vec<Query>) -> Vec<Vec<u32>> {
        let (w, shards) = (&*self.w, &*self.shards);
        // Each shard's share: (query, position in the query's list).
        let mut per_shard: Vec<Vec<(u32, u32)>> = vec![Vec::new(); shards.len()];
        for (q, (of, _)) in queries.iter().enumerate() {
            for (pos, &j) in of.iter().enumerate() {
                per_shard[w.shard_of(j)].push((q as u32, pos as u32));
            }
        }
        // A memo per query and thread: the lists a query's maps share are
        // searched once a thread.
        let check = |k: usize, memos: &mut HashMap<u32, Memo>| -> Vec<(u32, u32)> {
            let s = lock(&shards[k]);
            let mut kept = per_shard[k].clone();
            kept.retain(|&(q, pos)| {
                let (of, id) = &queries[q as usize];
                let memo = memos.entry(q).or_default();
                s.node(of[pos as usize])
                    .mesh
                    .as_ref()
                    .is_some_and(|m| m.map().contains_memo(id, memo))
            });
            kept
        };
        let next = AtomicUsize::new(0);
        let take = || {
            let started = thread_cpu_ns();
            let mut kept = Vec::new();
            let mut memos = HashMap::new();
            loop {
                let k = next.fetch_add(1, Ordering::Relaxed);
                if k >= shards.len() {
                    break;
                }
                if !per_shard[k].is_empty() {
                    kept.extend(check(k, &mut memos));
                }
            }
            (kept, thread_cpu_ns().saturating_sub(started))
        };
        let busy = per_shard.iter().filter(|p| !p.is_empty()).count();
        let helpers = self.threads().min(busy).saturating_sub(1);
        let (mut kept, extra) = std::thread::scope(|scope| {
            let others: Vec<_> = (0..helpers).map(|_| scope.spawn(take)).collect();
            let (mut kept, main) = take();
            let mut slowest = 0;
            for h in others {
                let (k, ns) = h.join().unwrap_or_else(|e| std::panic::resume_unwind(e));
                kept.extend(k);
                slowest = slowest.max(ns);
            }
            (kept, slowest.saturating_sub(main))
        });
        self.critical_ns += extra;
        // Back into each query's own order.
        kept.sort_unstable();
        let mut kept = kept.into_iter().peekable();
        queries
            .into_iter()
            .enumerate()
            .map(|(q, (of, _))| {
                let mut out = Vec::new();
                while let Some(&(_, pos)) = kept.peek().filter(|&&(kq, _)| kq as usize == q) {
                    out.push(of[pos as usize]);
                    kept.next();
                }
                out
            })
            .collect()
    }

    /// `f` of each of `nodes` (with its position), in their order,
    /// computed a shard at a time on the run's threads (measurement only:
    /// what `f` does to a node must not depend on the others). The other
    /// threads' CPU beyond the main thread's counts toward the critical
    /// path.
    pub(super) fn on_nodes<T: Send>(
        &mut self,
        nodes: &[u32],
        f: impl Fn(usize, &mut Node) -> T + Sync,
    ) -> Vec<T> {
        let (w, shards) = (&*self.w, &*self.shards);
        // Each shard's share: positions in `nodes`.
        let mut per_shard: Vec<Vec<u32>> = vec![Vec::new(); shards.len()];
        for (pos, &j) in nodes.iter().enumerate() {
            per_shard[w.shard_of(j)].push(pos as u32);
        }
        let next = AtomicUsize::new(0);
        let take = || {
            let started = thread_cpu_ns();
            let mut done = Vec::new();
            loop {
                let k = next.fetch_add(1, Ordering::Relaxed);
                if k >= shards.len() {
                    break;
                }
                if per_shard[k].is_empty() {
                    continue;
                }
                let mut s = lock(&shards[k]);
                for &pos in &per_shard[k] {
                    let n = s.node_mut(nodes[pos as usize]);
                    done.push((pos, f(pos as usize, n)));
                }
            }
            (done, thread_cpu_ns().saturating_sub(started))
        };
        let busy = per_shard.iter().filter(|p| !p.is_empty()).count();
        let helpers = self.threads().min(busy).saturating_sub(1);
        let (mut done, extra) = std::thread::scope(|scope| {
            let others: Vec<_> = (0..helpers).map(|_| scope.spawn(take)).collect();
            let (mut done, main) = take();
            let mut slowest = 0;
            for h in others {
                let (d, ns) = h.join().unwrap_or_else(|e| std::panic::resume_unwind(e));
                done.extend(d);
                slowest = slowest.max(ns);
            }
            (done, slowest.saturating_sub(main))
        });
        self.critical_ns += extra;
        done.sort_unstable_by_key(|&(pos, _)| pos);
        done.into_iter().map(|(_, t)| t).collect()
    }
}
