//! Departure convergence: which online nodes' maps still find a node that
//! left. Measurement only (the meshes are read, never changed), on the
//! main thread between windows; the checks of a round run a shard at a
//! time on the run's threads, as each node's map is read under its shard's
//! lock and one round reads up to every online node's map once per
//! followed departure (at 10⁴ nodes this was a quarter of the CPU of the
//! simulated half hour after the warm-up, all of it on one thread).

use std::sync::atomic::{AtomicUsize, Ordering};

use distsoc_protocol::ids::NodeId;

use super::{lock, thread_cpu_ns, Sim};

/// One check: the nodes to look at and the id their maps may hold.
type Query = (Vec<u32>, NodeId);

impl Sim {
    /// Every `check_interval`: each followed departure whose node is still
    /// gone drops the nodes that no longer hold it; once none does, every
    /// online node is checked (a stale entry can spread to nodes that did
    /// not hold it at the departure) and, if none holds it, it converged.
    pub(super) fn check_departures(&mut self) {
        let now = self.now;
        let mut pending = Vec::new();
        let mut queries: Vec<Query> = Vec::new();
        for d in 0..self.departures.len() {
            if self.departures[d].converged.is_some() || self.departures[d].censored {
                continue;
            }
            let x = self.departures[d].node;
            if self.w.inc(x) != self.departures[d].inc || self.w.online(x) {
                self.departures[d].censored = true;
                continue;
            }
            let id = self.w.topo.ids[x as usize];
            pending.push(d);
            queries.push((std::mem::take(&mut self.departures[d].holders), id));
        }
        let mut confirm = Vec::new();
        let mut again: Vec<Query> = Vec::new();
        for (d, holders) in pending.into_iter().zip(self.holders_of(queries)) {
            if holders.is_empty() {
                let id = self.w.topo.ids[self.departures[d].node as usize];
                confirm.push(d);
                again.push((self.online.clone(), id));
            } else {
                self.departures[d].holders = holders;
            }
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
    /// toward the critical path, as a parallel window's does.
    pub(super) fn holders_of(&mut self, queries: Vec<Query>) -> Vec<Vec<u32>> {
        let (w, shards) = (&*self.w, &*self.shards);
        // Each shard's share: (query, position in the query's list).
        let mut per_shard: Vec<Vec<(u32, u32)>> = vec![Vec::new(); shards.len()];
        for (q, (of, _)) in queries.iter().enumerate() {
            for (pos, &j) in of.iter().enumerate() {
                per_shard[w.shard_of(j)].push((q as u32, pos as u32));
            }
        }
        let check = |k: usize| -> Vec<(u32, u32)> {
            let s = lock(&shards[k]);
            let mut kept = per_shard[k].clone();
            kept.retain(|&(q, pos)| {
                let (of, id) = &queries[q as usize];
                s.node(of[pos as usize])
                    .mesh
                    .as_ref()
                    .is_some_and(|m| m.map().contains(id))
            });
            kept
        };
        let next = AtomicUsize::new(0);
        let take = || {
            let started = thread_cpu_ns();
            let mut kept = Vec::new();
            loop {
                let k = next.fetch_add(1, Ordering::Relaxed);
                if k >= shards.len() {
                    break;
                }
                if !per_shard[k].is_empty() {
                    kept.extend(check(k));
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
}
