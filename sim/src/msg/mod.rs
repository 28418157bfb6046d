//! The message-level mesh simulator (issue 11, "Mesh simulator", message
//! level): thousands of real [`distsoc_protocol::mesh::Mesh`] states — the
//! code the node and the anchor run — driven over a simulated network with
//! latency, loss, churn, anchors and a desktop/mobile mix.
//!
//! # Model
//!
//! - **Time and order**: node events (timers, handshakes, messages,
//!   answers, close notices) are ordered by (time in ns, the node that
//!   emitted them, that node's own emission counter; an initial join is
//!   its node's event (time, node, 0)); global events (churn joins and
//!   departures, measured lookups, samples, departure checks) run alone,
//!   before the node events of their own time. The nodes are partitioned
//!   into shards (2–6 threads: a shard per region; more: node `i` in shard
//!   `i % threads`; one thread: one shard); no node affects one of another
//!   shard sooner than the pair's lookahead (RTT/2 of the closest regions
//!   in the two shards: 35–110 ms with a shard per region, else 10 ms),
//!   so each shard runs ahead of the others as far as their progress and
//!   the lookahead allow, each node's events in order, including those it
//!   causes to nodes of its own shard; see [`engine`].
//!   Each node's
//!   [`Mesh::poll_timeout`](distsoc_protocol::mesh::Mesh::poll_timeout)
//!   becomes a timer event; every output of
//!   [`Mesh::poll`](distsoc_protocol::mesh::Mesh::poll) becomes a delivery.
//!   Messages are moved through the queue, never cloned. Deterministic:
//!   same parameters and seed → same report **whatever the number of
//!   threads** (except `wall_s`, `cpu_s`, `events_per_s`, `threads`,
//!   `parallel_chunks`, `worker_chunks`, `critical_path_cpu_s` and the
//!   maps' heap-byte estimates, which follow the capacity of std
//!   `HashMap`s inside the mesh and so their per-process random hash
//!   keys); see [`engine`] for how the run is kept independent of
//!   hash-map iteration order inside the mesh. (Before 2026-12-06 the
//!   engine was one queue ordered by insertion: a close and a handshake
//!   then took effect at both ends at once, which a window
//!   cannot do; the connection model below replaced it, so reports from
//!   before differ.)
//! - **Population and social graph**: see [`topology`] (communities of 50
//!   on a ring, cross links to the neighbouring communities, priorities,
//!   anchors, regions, RTT 20–250 ms).
//! - **Connections**: the mesh's own slot and wide-peer code decides whom
//!   to dial (the simulator hands each node only its social wish list and
//!   the anchors). Each end of a connection has its own state. `Connect`
//!   to an online node: the dial reaches it after RTT/2 and is accepted
//!   (an answer RTT/2 later); the dialer gets `PeerUp` (`outbound`) one
//!   RTT after the dial, the acceptor when the dialer's handshake or first
//!   message arrives, RTT/2 later (if the dialer dropped the connection in
//!   its `PeerUp`, the acceptor never sees it). Two nodes that dial each
//!   other at once keep the dial of the lower index. To an offline node →
//!   `DialFailed` after 5 s; to one that leaves before the dial arrives →
//!   `DialFailed` one RTT after the dial. `Disconnect` → the closer gets
//!   `PeerDown` at once, the other side after the one-way delay; messages
//!   in flight towards the closer are dropped, those it sent before
//!   closing still arrive.
//! - **Messages**: a push or request arrives after RTT/2 + 0–2 ms jitter on
//!   an open connection, or is lost with probability `loss` (per message).
//!   A lost push is gone (the receiver's seq-gap logic must recover). Every
//!   request gets `RequestFailed::Failed` at its `timeout` unless its answer
//!   arrived first (a lost request or answer, a crashed responder). A
//!   refusal arrives as `RequestFailed::Refused`. A message is delivered
//!   only if the receiver's end of the connection it was sent on is still
//!   open.
//! - **Churn** (`churn` % of the non-anchor nodes per hour, starting after
//!   the join window): departures and joins are two Poisson processes of
//!   the same rate. A departure is a crash (peers learn after
//!   `crash_idle`, 30 s: QUIC's idle timeout over its 20 s keep-alive) or a
//!   clean leave (peers learn after the one-way delay), half each; until
//!   then what they send to it is lost on arrival. A join
//!   takes the identity that has been offline longest (the reserve first);
//!   a returning node starts with a fresh `Mesh` (nothing persisted).
//! - **Joins**: anchors at t = 0, every other node at a uniform time in the
//!   join window (5 min), like real bootstraps.
//!
//! # Measurements
//!
//! Bandwidth, lookups and departure samples are taken after the warm-up
//! (30 min, at most half the run); connections and map sizes at the end
//! (map sizes over `map_samples` evenly spread online nodes) and in a time
//! series every `sample_interval`. L1 bytes are the wire sizes of every
//! mesh message a node sends ([`sizes`]: a model calibrated against the
//! real encoder, checked by a test). Departure convergence: for the first
//! `departure_samples` departures after the warm-up (and at least
//! `min_observation` before the end), the time until no online node's
//! `map().find(x)` is `Some`, checked every `check_interval`. Lookups:
//! `Command::Lookup` from a uniformly random online non-anchor node for a
//! uniformly random online node not in its map, at uniform times after the
//! warm-up; hops = WormRequests carrying the lookup's worm id, messages =
//! WormRequests + WormQueries carrying it, latency = `LookupDone.elapsed`.
//!
//! # Limits
//!
//! At 10⁴ nodes the 3-hop map covers nearly the whole network, so this
//! says nothing about coverage or routing at scale (that is the graph-level
//! model's job). No NAT, no bandwidth limits or queueing delay, no CPU
//! time; QUIC/TLS overhead is not counted in the bytes.

pub mod cli;
pub mod engine;
pub mod report;
pub mod sizes;
pub mod topology;

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use serde::Serialize;

pub use report::{Report, Summary};

use crate::SimError;

/// Parameters of a message-level run.
#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    /// Nodes online at the start (anchors included).
    pub nodes: u32,
    /// Simulated time.
    pub duration: Duration,
    /// Percent of the non-anchor nodes that leave per hour (as many join).
    pub churn: f64,
    /// The seed of everything.
    pub seed: u64,
    /// Share of mobile nodes among the non-anchors.
    pub mobile_share: f64,
    /// Per-message loss probability.
    pub loss: f64,
    /// Measured lookups.
    pub lookups: u32,
    /// Share of anchors (at least 2).
    pub anchor_share: f64,
    /// Community size.
    pub community: u32,
    /// Cross-community links each node draws.
    pub cross: u32,
    /// Nodes join at uniform times in this window.
    pub join_window: Duration,
    /// Measurements start after this (at most half the run).
    pub warmup: Duration,
    /// Peers of a crashed node learn after this (QUIC idle timeout).
    pub crash_idle: Duration,
    /// Departures whose convergence is followed.
    pub departure_samples: u32,
    /// A followed departure happens at least this long before the end.
    pub min_observation: Duration,
    /// Convergence check interval.
    pub check_interval: Duration,
    /// Nodes whose maps are measured per sample and at the end.
    pub map_samples: u32,
    /// Time-series interval.
    pub sample_interval: Duration,
    /// Draws to find a lookup target outside the originator's map.
    pub target_draws: u32,
    /// Lookup targets must lie outside the originator's map (the worm's
    /// case); if false, any online node (every tier of the chain).
    pub targets_outside_map: bool,
    /// Show a progress bar on stderr.
    pub progress: bool,
    /// Threads running the shards' events; the report
    /// does not depend on it.
    pub threads: usize,
}

impl Params {
    /// Defaults for `nodes` nodes over `duration`.
    pub fn new(nodes: u32, duration: Duration, seed: u64) -> Self {
        Params {
            nodes,
            duration,
            churn: 0.0,
            seed,
            mobile_share: 0.0,
            loss: 0.0,
            lookups: 200,
            anchor_share: 0.01,
            community: 50,
            cross: 16,
            join_window: Duration::from_secs(300),
            warmup: Duration::from_secs(1800),
            crash_idle: Duration::from_secs(30),
            departure_samples: 100,
            min_observation: Duration::from_secs(900),
            check_interval: Duration::from_secs(10),
            map_samples: 300,
            sample_interval: Duration::from_secs(300),
            target_draws: 50,
            targets_outside_map: true,
            progress: std::io::stderr().is_terminal(),
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }

    fn check(&self) -> Result<(), SimError> {
        let bad = |m: &str| Err(SimError::InvalidParams(m.to_string()));
        if self.nodes < 3 {
            return bad("--nodes must be at least 3");
        }
        if self.duration < Duration::from_secs(1) {
            return bad("--duration must be at least 1 s");
        }
        if !(0.0..=100.0).contains(&self.churn) {
            return bad("--churn is a percentage per hour (0..=100)");
        }
        if !(0.0..=1.0).contains(&self.mobile_share) {
            return bad("--mobile-share is a fraction (0..=1)");
        }
        if !(0.0..1.0).contains(&self.loss) {
            return bad("--loss is a probability (0..1)");
        }
        if !(0.0..=0.5).contains(&self.anchor_share) {
            return bad("--anchor-share is a fraction (0..=0.5)");
        }
        if self.threads < 1 {
            return bad("--threads must be at least 1");
        }
        if self.community < 2 {
            return bad("--community must be at least 2");
        }
        if self.sample_interval < Duration::from_secs(1)
            || self.check_interval < Duration::from_millis(100)
        {
            return bad("--sample-interval ≥ 1 s, --check-interval ≥ 100 ms");
        }
        Ok(())
    }
}

/// The parameters as the report records them.
#[derive(Debug, Clone, Serialize)]
pub struct ParamsReport {
    /// Simulated seconds.
    pub duration_s: f64,
    /// `--churn`.
    pub churn_percent_per_hour: f64,
    /// `--mobile-share`.
    pub mobile_share: f64,
    /// `--loss`.
    pub loss: f64,
    /// `--lookups`.
    pub lookups: u32,
    /// `--anchor-share`.
    pub anchor_share: f64,
    /// Community size.
    pub community: u32,
    /// Cross-community links drawn per node.
    pub cross: u32,
    /// Join window, seconds.
    pub join_window_s: f64,
    /// Crash detection delay, seconds.
    pub crash_idle_s: f64,
    /// Departures followed.
    pub departure_samples: u32,
    /// Map samples.
    pub map_samples: u32,
    /// Time-series interval, seconds.
    pub sample_interval_s: f64,
}

impl ParamsReport {
    fn of(p: &Params) -> Self {
        ParamsReport {
            duration_s: p.duration.as_secs_f64(),
            churn_percent_per_hour: p.churn,
            mobile_share: p.mobile_share,
            loss: p.loss,
            lookups: p.lookups,
            anchor_share: p.anchor_share,
            community: p.community,
            cross: p.cross,
            join_window_s: p.join_window.as_secs_f64(),
            crash_idle_s: p.crash_idle.as_secs_f64(),
            departure_samples: p.departure_samples,
            map_samples: p.map_samples,
            sample_interval_s: p.sample_interval.as_secs_f64(),
        }
    }
}

/// A 64-bit mixer (splitmix64 of `a` and `b`): the simulator's
/// order-independent randomness.
pub fn mix(a: u64, b: u64) -> u64 {
    let mut z = a ^ b.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// CPU time of this process so far (user + system, from `/proc/self/stat`;
/// 0 where that is not available).
pub fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the command name (which may hold spaces): utime and
    // stime are the 12th and 13th, in clock ticks (100 per second on
    // Linux).
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|x| x.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

/// Resident memory of this process now (from `/proc/self/statm`; 0 where
/// that is not available).
pub fn rss_bytes() -> usize {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<usize>().ok())
        .map_or(0, |pages| pages * 4096)
}

/// Runs a simulation and returns its report.
pub fn run(p: &Params) -> Result<Report, SimError> {
    p.check()?;
    let started = Instant::now();
    let topo = topology::Topology::new(&topology::TopologyParams {
        nodes: p.nodes,
        anchor_share: p.anchor_share,
        mobile_share: p.mobile_share,
        community: p.community,
        cross: p.cross,
        seed: p.seed,
    });
    let sizes = sizes::SizeModel::calibrate();
    let mut sim = engine::Sim::new(p.clone(), topo, sizes);
    let bar = (p.progress && std::io::stderr().is_terminal()).then(|| {
        let bar = indicatif::ProgressBar::with_draw_target(
            Some(p.duration.as_secs()),
            indicatif::ProgressDrawTarget::stderr(),
        );
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{elapsed_precise} [{bar:40}] {pos}/{len} simulated s {msg}",
        ) {
            bar.set_style(style);
        }
        bar
    });
    // Not a terminal (with --progress): a plain line every 5 % of the run
    // or every simulated minute, whichever comes first.
    let lines = p.progress && !std::io::stderr().is_terminal();
    let step = (p.duration.as_nanos() as u64 / 20).clamp(1, 60_000_000_000);
    let mut next_line = step;
    let shared = sim.shared_reports();
    sim.run(|t, critical| {
        if let Some(b) = &bar {
            b.set_position(t / 1_000_000_000);
        }
        if lines && t >= next_line {
            next_line = t + step;
            let s = shared.stats();
            let mb = |b: usize| b as f64 / 1e6;
            eprintln!(
                "distsoc-sim discovery: {:.0}/{:.0} simulated s after {:.0} s (CPU {:.0} s, critical path {:.0} s; RSS {:.0} MB; shared hop-1 lists {} in {} chunks {:.0} MB, hop-2 sets {} in {} chunks {:.0} MB, tables {:.0} MB)",
                t as f64 / 1e9,
                p.duration.as_secs_f64(),
                started.elapsed().as_secs_f64(),
                cpu_seconds(),
                critical,
                mb(rss_bytes()),
                s.hop1_lists,
                s.hop1_chunks,
                mb(s.hop1_bytes),
                s.fp_sets,
                s.fp_chunks,
                mb(s.fp_bytes),
                mb(s.table_bytes),
            );
        }
    });
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let wall = started.elapsed().as_secs_f64();
    Ok(report::build(&mut sim, wall))
}
