//! How the run's threads share the shards: conservative synchronization
//! with a lookahead per pair of shards, no lock-step.
//!
//! Each shard has a lower bound `lb`: no event it has yet to run is
//! earlier (the earliest of its queue and its inbox; while a thread runs
//! it, the time of the chunk's first event). A free thread takes the
//! shard furthest behind among those that may run and runs its events up
//! to its horizon `min(stop, min over other shards j of lb[j] + la[j][k])`
//! (`la` the shortest one-way delay from `j` to `k`, closed over paths
//! through the other shards, so a chain of effects through a third shard
//! is covered too): a chunk. What the chunk causes to another shard's
//! nodes is handed over when it ends, into that shard's inbox, lowering
//! its bound. Every bound is read and changed under one lock, so a
//! horizon is computed from one consistent state: every event that can
//! still reach shard `k` derives from an event that exists at that moment
//! (queued, in an inbox or in a running chunk, the latter at or after the
//! chunk's bound), and so arrives at or after the horizon. Each shard
//! therefore runs its events in key order with nothing arriving in its
//! past, the same order as any other placement: same report.
//!
//! `stop` is the next global event: node events before it run first; once
//! no shard may run and none is running, every shard is at `stop` and the
//! main thread runs the global events alone (the workers wait).
//!
//! A heavy event in one shard no longer holds up every thread at the end
//! of a fixed window: the other thread goes on with any shard whose
//! horizon allows (up to 35–110 simulated ms ahead, by the region pair).

use std::any::Any;
use std::sync::Condvar;
use std::time::Instant;

use super::*;

/// How often (wall time) the main thread reports progress.
const TICK: Duration = Duration::from_millis(500);

/// Events a chunk runs between two hand-overs.
const PROGRESS: u32 = 64;

/// Moves events that arrived for shard `k` into its queue.
fn absorb(s: &mut Shard, k: usize, inbox: Vec<(Key, Ev)>) {
    for (key, ev) in inbox {
        // Nothing arrives in the past of what the shard has run: the
        // scheduler's promise, checked (one comparison an event).
        assert!(
            key.0 > s.last.0,
            "shard {k} got an event at {key:?} after running to {:?}",
            s.last
        );
        s.enqueue(key, ev);
    }
}

/// What the threads share, under [`Engine::state`].
struct Sched {
    /// Per shard: no event it has yet to run is earlier (see the module
    /// docs); `Ns::MAX` when it has none.
    lb: Vec<Ns>,
    /// Per shard: a thread runs a chunk of it.
    running: Vec<bool>,
    /// Per shard: events other shards' chunks caused to its nodes, not yet
    /// in its queue, and the earliest of their times.
    inbox: Vec<Vec<(Key, Ev)>>,
    inbox_min: Vec<Ns>,
    /// Node events before this run in this phase.
    stop: Ns,
    /// Chunks running now.
    active: usize,
    /// Threads waiting for a shard to become runnable.
    waiting: usize,
    /// Chunks that started while another ran.
    parallel: u64,
    /// Chunks run by the threads other than the main one.
    by_workers: u64,
    /// The run is over (or failed): workers return.
    quit: bool,
    /// A worker's panic, handed to the main thread.
    failed: Option<Box<dyn Any + Send>>,
}

impl Sched {
    /// The shard a free thread runs next and its horizon: the one whose
    /// bound is lowest among those with an event before their horizon.
    fn pick(&self, la: &[Vec<Ns>]) -> Option<(usize, Ns)> {
        let mut best: Option<(Ns, usize, Ns)> = None;
        for (k, &lb) in self.lb.iter().enumerate() {
            if self.running[k] || lb >= self.stop || best.is_some_and(|(b, _, _)| b <= lb) {
                continue;
            }
            let h = self.horizon(k, la);
            if lb < h {
                best = Some((lb, k, h));
            }
        }
        best.map(|(_, k, h)| (k, h))
    }

    /// How far shard `k` may run: every shard's bound plus its lookahead
    /// to `k` (`k`'s own included: a round trip through another shard),
    /// and never to `stop`.
    fn horizon(&self, k: usize, la: &[Vec<Ns>]) -> Ns {
        let mut h = self.stop;
        for (j, &other) in self.lb.iter().enumerate() {
            h = h.min(other.saturating_add(la[j][k]));
        }
        h
    }
}

/// Why [`Engine::take_chunks`] returned.
pub(super) enum Step {
    /// Every shard is at `stop`.
    Stopped,
    /// Time for the progress display: no shard has events left before
    /// this simulated time.
    Tick(Ns),
    /// The run ended (or a worker failed).
    Quit,
}

/// The scheduler of one run.
pub(super) struct Engine {
    state: Mutex<Sched>,
    /// Signalled when a chunk ends and when a phase starts or the run ends.
    changed: Condvar,
}

impl Engine {
    pub(super) fn new(shards: usize) -> Self {
        Engine {
            state: Mutex::new(Sched {
                lb: vec![Ns::MAX; shards],
                running: vec![false; shards],
                inbox: (0..shards).map(|_| Vec::new()).collect(),
                inbox_min: vec![Ns::MAX; shards],
                stop: 0,
                active: 0,
                waiting: 0,
                parallel: 0,
                by_workers: 0,
                quit: false,
                failed: None,
            }),
            changed: Condvar::new(),
        }
    }

    /// Runs chunks until every shard is at `stop` (the main thread: then
    /// [`Step::Stopped`]), the run ends ([`Step::Quit`]) or, on the main
    /// thread, `tick_at` has passed ([`Step::Tick`], for the progress
    /// display: the phase goes on at the next call). Adds the CPU time
    /// the calling thread spent in chunks to `cpu`.
    pub(super) fn take_chunks(
        &self,
        w: &World,
        shards: &[Mutex<Shard>],
        main: Option<Instant>,
        cpu: &mut u64,
    ) -> Step {
        let mut g = lock(&self.state);
        loop {
            if g.quit || g.failed.is_some() {
                return Step::Quit;
            }
            if main.is_some_and(|at| Instant::now() >= at) {
                let t = g.lb.iter().copied().min().unwrap_or(Ns::MAX);
                return Step::Tick(t.min(g.stop));
            }
            if let Some((k, h)) = g.pick(&w.la) {
                g.running[k] = true;
                if g.active > 0 {
                    g.parallel += 1;
                }
                g.active += 1;
                g.by_workers += u64::from(main.is_none());
                let inbox = std::mem::take(&mut g.inbox[k]);
                g.inbox_min[k] = Ns::MAX;
                drop(g);
                let started = thread_cpu_ns();
                self.run_chunk(w, &shards[k], k, h, inbox);
                *cpu += thread_cpu_ns().saturating_sub(started);
                g = lock(&self.state);
                continue;
            }
            if main.is_some() && g.active == 0 {
                return Step::Stopped;
            }
            g.waiting += 1;
            g = self.changed.wait(g).unwrap_or_else(PoisonError::into_inner);
            g.waiting -= 1;
        }
    }

    /// Shard `k`'s events before `h`, handing over what they cause to
    /// other shards every [`PROGRESS`] events, raising its bound and moving
    /// its horizon on (so the other threads need not wait for the chunk's
    /// end, and the chunk goes on while no other shard is further behind).
    fn run_chunk(
        &self,
        w: &World,
        shard: &Mutex<Shard>,
        k: usize,
        mut h: Ns,
        inbox: Vec<(Key, Ev)>,
    ) {
        let mut s = lock(shard);
        absorb(&mut s, k, inbox);
        loop {
            s.wend = h;
            s.run_window(w, PROGRESS);
            let mut g = lock(&self.state);
            if s.out_min != Ns::MAX {
                s.out_min = Ns::MAX;
                for (j, v) in s.out.iter_mut().enumerate() {
                    if let Some(t) = v.iter().map(|(key, _)| key.0).min() {
                        g.inbox_min[j] = g.inbox_min[j].min(t);
                        g.lb[j] = g.lb[j].min(t);
                        g.inbox[j].append(v);
                    }
                }
            }
            // What arrived meanwhile (at or after the horizon) joins the
            // queue, so the bound is the queue's earliest.
            let inbox = std::mem::take(&mut g.inbox[k]);
            g.inbox_min[k] = Ns::MAX;
            absorb(&mut s, k, inbox);
            let lb = s.next_time().unwrap_or(Ns::MAX);
            g.lb[k] = lb;
            h = g.horizon(k, &w.la);
            let behind = (0..g.lb.len())
                .any(|j| j != k && !g.running[j] && g.lb[j] < lb && g.lb[j] < g.horizon(j, &w.la));
            let wake = g.waiting > 0;
            if lb >= h || behind {
                g.running[k] = false;
                g.active -= 1;
                drop(g);
                drop(s);
                self.changed.notify_all();
                return;
            }
            drop(g);
            if wake {
                self.changed.notify_all();
            }
        }
    }

    /// Starts a phase: every shard's inbox is empty (the main thread moved
    /// them into the queues) and its bound is its queue's earliest.
    fn start_phase(&self, shards: &[Mutex<Shard>], stop: Ns) {
        let lb: Vec<Ns> = shards
            .iter()
            .map(|s| lock(s).next_time().unwrap_or(Ns::MAX))
            .collect();
        let mut g = lock(&self.state);
        g.lb = lb;
        g.stop = stop;
        drop(g);
        self.changed.notify_all();
    }

    /// Moves every inbox into its shard's queue (between phases).
    fn absorb_inboxes(&self, shards: &[Mutex<Shard>]) {
        let inboxes: Vec<Vec<(Key, Ev)>> = {
            let mut g = lock(&self.state);
            g.inbox_min.fill(Ns::MAX);
            g.inbox.iter_mut().map(std::mem::take).collect()
        };
        for (s, v) in shards.iter().zip(inboxes) {
            if !v.is_empty() {
                let mut s = lock(s);
                for (key, ev) in v {
                    s.enqueue(key, ev);
                }
            }
        }
    }

    /// Ends the run (or hands a worker's panic over): workers return.
    fn quit(&self, failed: Option<Box<dyn Any + Send>>) {
        let mut g = lock(&self.state);
        g.quit = true;
        if failed.is_some() {
            g.failed = failed;
        }
        drop(g);
        self.changed.notify_all();
    }

    fn take_failure(&self) -> Option<Box<dyn Any + Send>> {
        lock(&self.state).failed.take()
    }

    /// Chunks that started while another ran, and chunks the workers ran.
    fn counts(&self) -> (u64, u64) {
        let g = lock(&self.state);
        (g.parallel, g.by_workers)
    }
}

impl Sim {
    /// Runs to the end; `tick` is called about twice a second (wall time)
    /// with how far the run is (simulated ns) and the critical-path CPU
    /// seconds so far.
    pub(crate) fn run(&mut self, mut tick: impl FnMut(Ns, f64)) {
        let started = thread_cpu_ns();
        self.started_cpu = started;
        let threads = self.threads();
        let eng = Arc::new(Engine::new(self.shards.len()));
        let workers = std::thread::scope(|scope| {
            let handles: Vec<_> = (1..threads)
                .map(|_| {
                    let (w, shards, eng) = (
                        Arc::clone(&self.w),
                        Arc::clone(&self.shards),
                        Arc::clone(&eng),
                    );
                    scope.spawn(move || {
                        let started = thread_cpu_ns();
                        let mut cpu = 0;
                        let r = catch_unwind(AssertUnwindSafe(|| {
                            eng.take_chunks(&w, &shards, None, &mut cpu)
                        }));
                        if let Err(e) = r {
                            eng.quit(Some(e));
                        }
                        thread_cpu_ns().saturating_sub(started)
                    })
                })
                .collect();
            let r = catch_unwind(AssertUnwindSafe(|| self.run_loop(&eng, &mut tick)));
            eng.quit(None);
            let cpu: Vec<u64> = handles.into_iter().map(|h| h.join().unwrap_or(0)).collect();
            if let Err(e) = r {
                resume_unwind(e);
            }
            cpu
        });
        if let Some(e) = eng.take_failure() {
            resume_unwind(e);
        }
        (self.parallel_chunks, self.worker_chunks) = eng.counts();
        // The critical path: the busiest thread (the main thread's CPU
        // includes the global events and the measurement's extra).
        let main = self.critical_ns + thread_cpu_ns().saturating_sub(started);
        self.critical_ns = workers.into_iter().fold(main, u64::max);
        self.now = self.end;
        self.initial_joins(self.end);
        self.absorb_metrics();
        for i in 0..self.w.topo.len() {
            if self.w.online(i, self.end) {
                self.close_window(i);
            }
        }
    }

    fn run_loop(&mut self, eng: &Engine, tick: &mut impl FnMut(Ns, f64)) {
        let mut chunks_cpu = 0;
        let mut next_tick = Instant::now() + TICK;
        'run: loop {
            // Between phases: every node event before the last `stop` has
            // run and none after; the global events of this time run now,
            // alone, before the node events of their own time.
            eng.absorb_inboxes(&self.shards);
            self.collect(true);
            let more = loop {
                let tn = self.shards.iter().filter_map(|s| lock(s).next_time()).min();
                let tg = self.gheap.peek().map(|Reverse((t, _, _))| *t);
                match (tg, tn) {
                    (Some(g), n) if g <= self.end && n.is_none_or(|n| g <= n) => {
                        if let Some(Reverse((t, _, ev))) = self.gheap.pop() {
                            self.now = t;
                            self.events += 1;
                            self.initial_joins(t);
                            self.global(ev);
                        }
                    }
                    _ => break tn.is_some_and(|n| n <= self.end),
                }
            };
            if !more {
                break;
            }
            let tg = self.gheap.peek().map(|Reverse((t, _, _))| *t);
            let stop = tg.unwrap_or(Ns::MAX).min(self.end + 1);
            eng.start_phase(&self.shards, stop);
            loop {
                match eng.take_chunks(&self.w, &self.shards, Some(next_tick), &mut chunks_cpu) {
                    Step::Stopped => break,
                    Step::Quit => break 'run,
                    Step::Tick(t) => {
                        next_tick = Instant::now() + TICK;
                        let main = thread_cpu_ns().saturating_sub(self.started_cpu);
                        tick(t.min(self.end), (self.critical_ns + main) as f64 / 1e9);
                    }
                }
            }
        }
        if let Some(e) = eng.take_failure() {
            resume_unwind(e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three shards 10 apart (one way), so a round trip is 20.
    fn sched(lb: [Ns; 3], stop: Ns) -> (Sched, Vec<Vec<Ns>>) {
        let la = vec![vec![20, 10, 10], vec![10, 20, 10], vec![10, 10, 20]];
        let mut s = match Engine::new(3).state.into_inner() {
            Ok(s) => s,
            Err(e) => e.into_inner(),
        };
        s.lb = lb.to_vec();
        s.stop = stop;
        (s, la)
    }

    #[test]
    fn a_shard_never_runs_past_its_own_round_trip() {
        // The others are far ahead: shard 0 is still bound by what its own
        // events can cause to come back through them.
        let (s, la) = sched([100, 1_000, 1_000], Ns::MAX);
        assert_eq!(s.horizon(0, &la), 120);
        // The others bound it when closer.
        let (s, la) = sched([100, 105, 1_000], Ns::MAX);
        assert_eq!(s.horizon(0, &la), 115);
        // And the next global event.
        let (s, la) = sched([100, 1_000, 1_000], 110);
        assert_eq!(s.horizon(0, &la), 110);
    }

    #[test]
    fn the_shard_furthest_behind_runs_first_unless_taken() {
        let (mut s, la) = sched([105, 100, 130], Ns::MAX);
        assert_eq!(s.pick(&la), Some((1, 115)));
        s.running[1] = true;
        assert_eq!(s.pick(&la), Some((0, 110)));
        s.running[0] = true;
        // Shard 2 must wait: shard 1 may still send it something at 110.
        assert_eq!(s.pick(&la), None);
        // Nothing before `stop` is left: nothing to run.
        let (s, la) = sched([100, 100, Ns::MAX], 100);
        assert_eq!(s.pick(&la), None);
    }
}
