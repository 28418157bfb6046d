//! What a message-level run measures, its JSON report and its plots.

use std::path::Path;

use distsoc_protocol::mesh::{Counters, MapStats};
use plotters::prelude::*;
use serde::Serialize;

use super::engine::{Ns, Sim};
use super::topology::Profile;
use crate::SimError;

/// Kinds of mesh messages, for the bandwidth breakdown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Diff,
    Sync,
    SyncRequest,
    WormRequest,
    WormQuery,
    WormResponse,
    AddressRequest,
    AddressResponse,
    Error,
}

const KINDS: [&str; 9] = [
    "routing_diff",
    "initial_map_sync",
    "map_sync_request",
    "worm_request",
    "worm_query",
    "worm_response",
    "address_request",
    "address_response",
    "error",
];

/// Order statistics of a sample (nearest rank).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Default)]
pub struct Summary {
    /// Values summarized.
    pub count: usize,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest value.
    pub max: f64,
    /// Arithmetic mean.
    pub mean: f64,
}

impl Summary {
    /// The summary of `v` (zeros when empty).
    pub fn of(v: &[f64]) -> Self {
        if v.is_empty() {
            return Summary::default();
        }
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        let rank = |q: f64| {
            let k = (q * v.len() as f64).ceil() as usize;
            v[k.clamp(1, v.len()) - 1]
        };
        Summary {
            count: v.len(),
            p50: rank(0.5),
            p90: rank(0.9),
            p99: rank(0.99),
            max: v[v.len() - 1],
            mean: v.iter().sum::<f64>() / v.len() as f64,
        }
    }

    fn of_u64(v: &[u64]) -> Self {
        Self::of(&v.iter().map(|&x| x as f64).collect::<Vec<_>>())
    }
}

/// One point of the time series (every `sample_interval`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SamplePoint {
    /// Simulated time, seconds.
    pub t_s: f64,
    /// Online nodes.
    pub online: usize,
    /// Median connections per online node.
    pub connections_p50: f64,
    /// Median hop-1 / hop-2 / hop-3 sizes over the sampled nodes.
    pub hop1_p50: f64,
    /// See `hop1_p50`.
    pub hop2_p50: f64,
    /// See `hop1_p50`.
    pub hop3_p50: f64,
    /// Median map bytes over the sampled nodes.
    pub map_bytes_p50: f64,
    /// Mesh bytes sent in the interval that ends here, per online node,
    /// scaled to a day.
    pub bytes_per_node_per_day: f64,
}

/// Counters collected while the simulation runs.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    step: Ns,
    bucket_bytes: Vec<u64>,
    bytes_by_kind: [u64; 9],
    msgs_by_kind: [u64; 9],
    pub(crate) lost: u64,
    pub(crate) refused_rate_limited: u64,
    pub(crate) refused_malformed: u64,
    pub(crate) joins: u64,
    pub(crate) leaves: u64,
    pub(crate) crashes: u64,
    pub(crate) lookups_no_target: u64,
    counters: Counters,
    pub(crate) samples: Vec<SamplePoint>,
}

impl Metrics {
    pub(crate) fn new(end: Ns, step: Ns) -> Self {
        let step = step.max(1);
        Metrics {
            step,
            bucket_bytes: vec![0; (end / step + 2) as usize],
            ..Metrics::default()
        }
    }

    pub(crate) fn sent(&mut self, now: Ns, kind: Kind, bytes: u64, in_window: bool) {
        if let Some(b) = self.bucket_bytes.get_mut((now / self.step) as usize) {
            *b += bytes;
        }
        if in_window {
            self.bytes_by_kind[kind as usize] += bytes;
            self.msgs_by_kind[kind as usize] += 1;
        }
    }

    /// Adds another's traffic counters (a shard's) to these and zeroes
    /// them there (sums: the order of shards does not matter).
    pub(crate) fn absorb(&mut self, o: &mut Metrics) {
        for (a, b) in self.bucket_bytes.iter_mut().zip(o.bucket_bytes.iter_mut()) {
            *a += std::mem::take(b);
        }
        for k in 0..KINDS.len() {
            self.bytes_by_kind[k] += std::mem::take(&mut o.bytes_by_kind[k]);
            self.msgs_by_kind[k] += std::mem::take(&mut o.msgs_by_kind[k]);
        }
        self.lost += std::mem::take(&mut o.lost);
        self.refused_rate_limited += std::mem::take(&mut o.refused_rate_limited);
        self.refused_malformed += std::mem::take(&mut o.refused_malformed);
    }

    pub(crate) fn add_counters(&mut self, c: &Counters) {
        let t = &mut self.counters;
        t.diffs_sent += c.diffs_sent;
        t.diff_changes_sent += c.diff_changes_sent;
        t.syncs_sent += c.syncs_sent;
        t.sync_entries_sent += c.sync_entries_sent;
        t.gaps += c.gaps;
        t.rate_limited += c.rate_limited;
        t.view_changes += c.view_changes;
        t.refreshes += c.refreshes;
        t.refreshes_found += c.refreshes_found;
        t.refreshes_found_unforwarded += c.refreshes_found_unforwarded;
        t.refreshes_missed += c.refreshes_missed;
    }

    pub(crate) fn sample(&mut self, now: Ns, online: usize, conns: &[u64], maps: &[MapStats]) {
        let col = |f: fn(&MapStats) -> usize| {
            Summary::of(&maps.iter().map(|m| f(m) as f64).collect::<Vec<_>>()).p50
        };
        let bucket = (now / self.step).saturating_sub(1) as usize;
        let bytes = self.bucket_bytes.get(bucket).copied().unwrap_or(0);
        let secs = self.step as f64 / 1e9;
        self.samples.push(SamplePoint {
            t_s: now as f64 / 1e9,
            online,
            connections_p50: Summary::of_u64(conns).p50,
            hop1_p50: col(|m| m.hop1),
            hop2_p50: col(|m| m.hop2),
            hop3_p50: col(|m| m.hop3),
            map_bytes_p50: col(|m| m.bytes),
            bytes_per_node_per_day: bytes as f64 / online.max(1) as f64 / secs * 86_400.0,
        });
    }
}

/// Map sizes (over the sampled online nodes at the end).
#[derive(Debug, Clone, Serialize)]
pub struct MapReport {
    /// Nodes whose map was measured.
    pub sampled_nodes: usize,
    /// Hop-1 entries (direct peers).
    pub hop1: Summary,
    /// Hop-2 entries.
    pub hop2: Summary,
    /// Hop-3 fingerprints (unique).
    pub hop3: Summary,
    /// Heap bytes of the map (`Mesh::map_stats`).
    pub bytes_per_node: Summary,
    /// The same per profile: (profile, hop1 p50, hop2 p50, hop3 p50, bytes
    /// p50).
    pub by_profile: Vec<(String, f64, f64, f64, f64)>,
}

/// Departure convergence: time until no online node's map finds a node
/// that left.
#[derive(Debug, Clone, Serialize)]
pub struct ConvergenceReport {
    /// Departures followed (the first ones after the warm-up).
    pub sampled: usize,
    /// Departures that converged before the end.
    pub converged: usize,
    /// Still found somewhere at the end.
    pub unconverged: usize,
    /// The node came back before it converged (not counted).
    pub censored: usize,
    /// Resolution of the measurement (the check interval), seconds.
    pub resolution_s: f64,
    /// Median (converged departures), seconds.
    pub p50: f64,
    /// 90th percentile, seconds.
    pub p90: f64,
    /// 99th percentile, seconds.
    pub p99: f64,
    /// Largest, seconds.
    pub max: f64,
    /// Crashes only.
    pub crash: Summary,
    /// Clean leaves only.
    pub leave: Summary,
    /// Elapsed time of the unconverged ones at the end (lower bounds),
    /// seconds.
    pub unconverged_age_s: Vec<f64>,
}

/// Worm lookups for uniformly random online targets not in the
/// originator's map.
#[derive(Debug, Clone, Serialize)]
pub struct WormReport {
    /// Lookups started.
    pub lookups: usize,
    /// Lookup events that found no online target outside the originator's
    /// map (skipped).
    pub no_eligible_target: u64,
    /// Lookups whose LookupDone arrived before the end.
    pub finished: usize,
    /// Found the target / lookups started.
    pub success_rate: f64,
    /// Successful lookups by the tier that answered.
    pub by_tier: Vec<(String, usize)>,
    /// WormRequests carrying the lookup's worm id (successful lookups).
    pub hops: Summary,
    /// `LookupOutcome::hops` as the mesh reports it (successful lookups).
    pub mesh_hops: Summary,
    /// `LookupOutcome::elapsed` of successful lookups, ms.
    pub latency_ms: Summary,
    /// WormRequests + WormQueries carrying the worm id (all finished
    /// lookups).
    pub messages_per_lookup: Summary,
    /// Requests the originator sent (`LookupOutcome::messages`).
    pub originator_messages: Summary,
    /// Failed lookups: (target's hop distance in no map, count) — here the
    /// failed count by whether the worm started.
    pub failed_without_worm: usize,
}

/// Gossip mechanics over the whole run.
#[derive(Debug, Clone, Serialize)]
pub struct GossipReport {
    /// RoutingDiffs sent.
    pub diffs_sent: u64,
    /// Changes they carried.
    pub diff_changes_sent: u64,
    /// InitialMapSync chunks sent.
    pub sync_chunks_sent: u64,
    /// Entries they carried.
    pub sync_entries_sent: u64,
    /// seq gaps detected (each asks for a resync).
    pub gaps: u64,
    /// MapSyncRequests sent in the measurement window.
    pub map_sync_requests: u64,
    /// Changes of the nodes' own views.
    pub view_changes: u64,
    /// Messages the simulated network lost (`--loss`).
    pub lost_messages: u64,
    /// Requests refused `rateLimited` (answers the simulator routed).
    pub refused_rate_limited: u64,
    /// Requests refused `malformed` or `tooLarge`.
    pub refused_malformed: u64,
    /// `Counters::rate_limited` summed over the nodes.
    pub rate_limited_counter: u64,
}

/// Bucket-refresh lookups (§13.6) of every node over the whole run
/// (warm-up included), by outcome; a refresh still running at the end or
/// when its node left is in `started` only.
#[derive(Debug, Clone, Serialize)]
pub struct RefreshReport {
    /// Refreshes started.
    pub started: u64,
    /// Answered with a node in the bucket asked for or a deeper one.
    pub found: u64,
    /// Of `found`, without a forwarded worm (from the node's own map or
    /// its own fan-out's answers).
    pub found_unforwarded: u64,
    /// Answered without such a node.
    pub missed: u64,
}

/// L1 bandwidth: mesh bytes each node sends.
#[derive(Debug, Clone, Serialize)]
pub struct BandwidthReport {
    /// Per node with ≥ 10 min online in the window, scaled to a day.
    pub all: Summary,
    /// The same per profile.
    pub by_profile: Vec<(String, Summary)>,
    /// Share of the window's bytes and messages by message kind.
    pub by_kind: Vec<KindShare>,
}

/// One message kind's traffic in the measurement window.
#[derive(Debug, Clone, Serialize)]
pub struct KindShare {
    /// Message kind.
    pub kind: String,
    /// Messages sent.
    pub messages: u64,
    /// Bytes sent.
    pub bytes: u64,
    /// Share of all bytes.
    pub share: f64,
}

/// The JSON report of a message-level run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Identities online at the start (anchors included).
    pub nodes: u32,
    /// The seed.
    pub seed: u64,
    /// Wall-clock seconds (with `cpu_s`, `events_per_s`, `threads`,
    /// `parallel_chunks`, `worker_chunks` and `critical_path_cpu_s`, the
    /// only fields that differ between runs with the same parameters).
    pub wall_s: f64,
    /// CPU seconds of the process (user + system) at the end of the run:
    /// the cost figure that holds on a loaded machine.
    pub cpu_s: f64,
    /// Threads the run used (`--threads`; the report is the same for any
    /// number, apart from this, `parallel_chunks`, `worker_chunks`,
    /// `wall_s`, `cpu_s` and `events_per_s`).
    pub threads: usize,
    /// Chunks of node events (one shard's events up to its horizon) that
    /// started while another thread ran one.
    pub parallel_chunks: u64,
    /// Chunks run by the threads other than the main one.
    pub worker_chunks: u64,
    /// CPU seconds on the run's critical path: the CPU time of the busiest
    /// thread (the main thread's includes the global events, and for the
    /// measurement run on several threads how much longer the slowest
    /// other thread ran). On an idle machine with a core per thread the
    /// run's wall time is at least this; the rest is the time the threads
    /// waited for each other. Like `cpu_s`, not part of the deterministic
    /// report.
    pub critical_path_cpu_s: f64,
    /// The run parameters.
    pub params: super::ParamsReport,
    /// Anchors among the nodes.
    pub anchors: u32,
    /// Identities in the reserve (join by churn).
    pub reserve: u32,
    /// Measurements (bandwidth, lookups, departures) start here, seconds.
    pub warmup_s: f64,
    /// Events processed.
    pub events: u64,
    /// Events per wall-clock second.
    pub events_per_s: f64,
    /// Online at the end.
    pub online_end: usize,
    /// Joins (initial included), clean leaves and crashes.
    pub joins: u64,
    /// Clean leaves.
    pub leaves: u64,
    /// Crashes.
    pub crashes: u64,
    /// Connections (hop 1) of every online node at the end.
    pub connections_per_node: Summary,
    /// The same per profile.
    pub connections_by_profile: Vec<(String, Summary)>,
    /// Map sizes at the end.
    pub map: MapReport,
    /// Mesh bytes sent per node per day.
    pub l1_bytes_per_node_per_day: Summary,
    /// The bandwidth breakdown.
    pub bandwidth: BandwidthReport,
    /// Departure convergence.
    pub departure_convergence_s: ConvergenceReport,
    /// Worm lookups.
    pub worm: WormReport,
    /// Diffs, syncs, gaps, refusals.
    pub gossip: GossipReport,
    /// Bucket refreshes of the wide re-evaluations (§13.6), over the run.
    pub refresh: RefreshReport,
    /// The time series behind the plots.
    pub series: Vec<SamplePoint>,
    /// Latency (ms) of every successful lookup, sorted (the CDF).
    pub worm_latencies_ms: Vec<f64>,
}

fn by_profile<T: Copy>(
    items: &[(Profile, T)],
    f: impl Fn(&[T]) -> Summary,
) -> Vec<(String, Summary)> {
    [Profile::Anchor, Profile::Desktop, Profile::Mobile]
        .iter()
        .filter_map(|p| {
            let v: Vec<T> = items
                .iter()
                .filter(|(q, _)| q == p)
                .map(|(_, x)| *x)
                .collect();
            (!v.is_empty()).then(|| (p.as_str().to_string(), f(&v)))
        })
        .collect()
}

/// Builds the report from a finished simulation.
pub(crate) fn build(sim: &mut Sim, wall_s: f64) -> Report {
    sim.final_counters();
    let (maps, conns) = sim.final_maps(sim.p.map_samples as usize);
    let conn_vals: Vec<u64> = conns.iter().map(|(_, c)| *c).collect();
    let col = |f: fn(&MapStats) -> usize| {
        Summary::of(&maps.iter().map(|(_, m)| f(m) as f64).collect::<Vec<_>>())
    };
    let map_by_profile = [Profile::Anchor, Profile::Desktop, Profile::Mobile]
        .iter()
        .filter_map(|p| {
            let v: Vec<&MapStats> = maps
                .iter()
                .filter(|(q, _)| q == p)
                .map(|(_, m)| m)
                .collect();
            let med = |f: fn(&MapStats) -> usize| {
                Summary::of(&v.iter().map(|m| f(m) as f64).collect::<Vec<_>>()).p50
            };
            (!v.is_empty()).then(|| {
                (
                    p.as_str().to_string(),
                    med(|m| m.hop1),
                    med(|m| m.hop2),
                    med(|m| m.hop3),
                    med(|m| m.bytes),
                )
            })
        })
        .collect();
    let map = MapReport {
        sampled_nodes: maps.len(),
        hop1: col(|m| m.hop1),
        hop2: col(|m| m.hop2),
        hop3: col(|m| m.hop3),
        bytes_per_node: col(|m| m.bytes),
        by_profile: map_by_profile,
    };
    // Bandwidth per node, scaled to a day.
    let min_online: Ns = 600 * 1_000_000_000;
    let mut bw: Vec<(Profile, f64)> = Vec::new();
    for (i, (online, bytes)) in sim.windows().into_iter().enumerate() {
        if online >= min_online {
            let per_day = bytes as f64 / (online as f64 / 1e9) * 86_400.0;
            bw.push((sim.w.topo.profile[i], per_day));
        }
    }
    let bw_vals: Vec<f64> = bw.iter().map(|(_, b)| *b).collect();
    let total: u64 = sim.m.bytes_by_kind.iter().sum();
    let by_kind = KINDS
        .iter()
        .enumerate()
        .map(|(i, k)| KindShare {
            kind: (*k).to_string(),
            messages: sim.m.msgs_by_kind[i],
            bytes: sim.m.bytes_by_kind[i],
            share: sim.m.bytes_by_kind[i] as f64 / total.max(1) as f64,
        })
        .collect();
    let bandwidth = BandwidthReport {
        all: Summary::of(&bw_vals),
        by_profile: by_profile(&bw, Summary::of),
        by_kind,
    };
    // Departures.
    let deps = &sim.departures;
    let conv: Vec<f64> = deps
        .iter()
        .filter_map(|d| d.converged.map(|c| c as f64 / 1e9))
        .collect();
    let conv_kind = |crash: bool| {
        Summary::of(
            &deps
                .iter()
                .filter(|d| d.crash == crash)
                .filter_map(|d| d.converged.map(|c| c as f64 / 1e9))
                .collect::<Vec<_>>(),
        )
    };
    let s = Summary::of(&conv);
    let departure = ConvergenceReport {
        sampled: deps.len(),
        converged: conv.len(),
        unconverged: deps
            .iter()
            .filter(|d| d.converged.is_none() && !d.censored)
            .count(),
        censored: deps.iter().filter(|d| d.censored).count(),
        resolution_s: sim.p.check_interval.as_secs_f64(),
        p50: s.p50,
        p90: s.p90,
        p99: s.p99,
        max: s.max,
        crash: conv_kind(true),
        leave: conv_kind(false),
        unconverged_age_s: deps
            .iter()
            .filter(|d| d.converged.is_none() && !d.censored)
            .map(|d| (sim.end - d.at) as f64 / 1e9)
            .collect(),
    };
    // Worm.
    let ls = &sim.lookups;
    let ok: Vec<_> = ls
        .iter()
        .filter(|l| l.done.is_some_and(|d| d.found))
        .collect();
    let finished: Vec<_> = ls.iter().filter(|l| l.done.is_some()).collect();
    let mut tiers: Vec<(String, usize)> = Vec::new();
    for l in &ok {
        let t = l.done.and_then(|d| d.tier).unwrap_or("none").to_string();
        match tiers.iter_mut().find(|(k, _)| *k == t) {
            Some(e) => e.1 += 1,
            None => tiers.push((t, 1)),
        }
    }
    tiers.sort();
    let mut lat: Vec<f64> = ok
        .iter()
        .filter_map(|l| l.done.map(|d| d.elapsed.as_secs_f64() * 1e3))
        .collect();
    lat.sort_by(f64::total_cmp);
    let worm = WormReport {
        lookups: ls.len(),
        no_eligible_target: sim.m.lookups_no_target,
        finished: finished.len(),
        success_rate: ok.len() as f64 / ls.len().max(1) as f64,
        by_tier: tiers,
        hops: Summary::of(&ok.iter().map(|l| f64::from(l.forwards)).collect::<Vec<_>>()),
        mesh_hops: Summary::of(
            &ok.iter()
                .filter_map(|l| l.done.map(|d| f64::from(d.hops)))
                .collect::<Vec<_>>(),
        ),
        latency_ms: Summary::of(&lat),
        messages_per_lookup: Summary::of(
            &finished
                .iter()
                .map(|l| f64::from(l.messages))
                .collect::<Vec<_>>(),
        ),
        originator_messages: Summary::of(
            &finished
                .iter()
                .filter_map(|l| l.done.map(|d| f64::from(d.messages)))
                .collect::<Vec<_>>(),
        ),
        failed_without_worm: finished
            .iter()
            .filter(|l| l.done.is_some_and(|d| !d.found) && l.worm.is_none())
            .count(),
    };
    let c = sim.m.counters;
    let gossip = GossipReport {
        diffs_sent: c.diffs_sent,
        diff_changes_sent: c.diff_changes_sent,
        sync_chunks_sent: c.syncs_sent,
        sync_entries_sent: c.sync_entries_sent,
        gaps: c.gaps,
        map_sync_requests: sim.m.msgs_by_kind[Kind::SyncRequest as usize],
        view_changes: c.view_changes,
        lost_messages: sim.m.lost,
        refused_rate_limited: sim.m.refused_rate_limited,
        refused_malformed: sim.m.refused_malformed,
        rate_limited_counter: c.rate_limited,
    };
    Report {
        nodes: sim.p.nodes,
        seed: sim.p.seed,
        wall_s,
        cpu_s: super::cpu_seconds(),
        threads: sim.threads(),
        parallel_chunks: sim.parallel_chunks,
        worker_chunks: sim.worker_chunks,
        critical_path_cpu_s: sim.critical_ns as f64 / 1e9,
        params: super::ParamsReport::of(&sim.p),
        anchors: sim.w.topo.anchors,
        reserve: sim.w.topo.len() - sim.w.topo.initial,
        warmup_s: sim.warmup as f64 / 1e9,
        events: sim.events,
        events_per_s: sim.events as f64 / wall_s.max(1e-9),
        online_end: sim.online.len(),
        joins: sim.m.joins,
        leaves: sim.m.leaves,
        crashes: sim.m.crashes,
        connections_per_node: Summary::of_u64(&conn_vals),
        connections_by_profile: by_profile(&conns, Summary::of_u64),
        map,
        l1_bytes_per_node_per_day: bandwidth.all,
        bandwidth,
        departure_convergence_s: departure,
        worm,
        gossip,
        refresh: RefreshReport {
            started: c.refreshes,
            found: c.refreshes_found,
            found_unforwarded: c.refreshes_found_unforwarded,
            missed: c.refreshes_missed,
        },
        series: sim.m.samples.clone(),
        worm_latencies_ms: lat,
    }
}

/// A few human-readable lines of a report.
pub fn summary(r: &Report) -> String {
    format!(
        "nodes {} (+{} reserve, {} anchors) seed {} churn {} %/h loss {}: {:.1} s wall, {:.1} s CPU ({} threads, {:.1} s on the critical path), {} events\n\
         connections p50 {} max {}\n\
         map p50: hop1 {} hop2 {} hop3 {}, {:.0} KB\n\
         L1 bytes/node/day p50 {:.1} MB (p90 {:.1} MB)\n\
         departure convergence: {}/{} converged, p50 {:.0} s p99 {:.0} s ({} unconverged)\n\
         worm: {} lookups, {:.1} % found, hops p50 {} p99 {}, latency p50 {:.0} ms p99 {:.0} ms, messages p50 {}\n\
         gaps {} resync requests {} rate-limited {}\n",
        r.nodes,
        r.reserve,
        r.anchors,
        r.seed,
        r.params.churn_percent_per_hour,
        r.params.loss,
        r.wall_s,
        r.cpu_s,
        r.threads,
        r.critical_path_cpu_s,
        r.events,
        r.connections_per_node.p50,
        r.connections_per_node.max,
        r.map.hop1.p50,
        r.map.hop2.p50,
        r.map.hop3.p50,
        r.map.bytes_per_node.p50 / 1e3,
        r.l1_bytes_per_node_per_day.p50 / 1e6,
        r.l1_bytes_per_node_per_day.p90 / 1e6,
        r.departure_convergence_s.converged,
        r.departure_convergence_s.sampled,
        r.departure_convergence_s.p50,
        r.departure_convergence_s.p99,
        r.departure_convergence_s.unconverged,
        r.worm.lookups,
        100.0 * r.worm.success_rate,
        r.worm.hops.p50,
        r.worm.hops.p99,
        r.worm.latency_ms.p50,
        r.worm.latency_ms.p99,
        r.worm.messages_per_lookup.p50,
        r.gossip.gaps,
        r.gossip.map_sync_requests,
        r.gossip.refused_rate_limited,
    )
}

fn plot_err(path: &Path, e: impl std::fmt::Display) -> SimError {
    SimError::Io(path.to_path_buf(), std::io::Error::other(e.to_string()))
}

/// A named, coloured line of points.
type Line<'a> = (&'a str, Vec<(f64, f64)>, RGBColor);

fn line_chart(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Line<'_>],
) -> Result<(), SimError> {
    let xmax = series
        .iter()
        .flat_map(|(_, v, _)| v.iter().map(|p| p.0))
        .fold(1e-9, f64::max);
    let ymax = series
        .iter()
        .flat_map(|(_, v, _)| v.iter().map(|p| p.1))
        .fold(1e-9, f64::max)
        * 1.05;
    let root = SVGBackend::new(path, (900, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| plot_err(path, e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..xmax, 0.0..ymax)
        .map_err(|e| plot_err(path, e))?;
    chart
        .configure_mesh()
        .x_desc(x_label)
        .y_desc(y_label)
        .draw()
        .map_err(|e| plot_err(path, e))?;
    for (name, pts, color) in series {
        let c = *color;
        chart
            .draw_series(LineSeries::new(pts.iter().copied(), c.stroke_width(2)))
            .map_err(|e| plot_err(path, e))?
            .label(*name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| plot_err(path, e))?;
    root.present().map_err(|e| plot_err(path, e))?;
    Ok(())
}

/// Writes `map_per_hop.svg`, `worm_latency_cdf.svg` and `bandwidth.svg`
/// into `dir`.
pub fn plots(r: &Report, dir: &Path) -> Result<(), SimError> {
    std::fs::create_dir_all(dir).map_err(|e| SimError::Io(dir.to_path_buf(), e))?;
    let mins = |f: fn(&SamplePoint) -> f64| -> Vec<(f64, f64)> {
        r.series.iter().map(|s| (s.t_s / 60.0, f(s))).collect()
    };
    line_chart(
        &dir.join("map_per_hop.svg"),
        &format!("Map size per hop (p50 of sampled nodes), {} nodes", r.nodes),
        "simulated time (min)",
        "entries",
        &[
            ("hop 1", mins(|s| s.hop1_p50), RED),
            ("hop 2", mins(|s| s.hop2_p50), BLUE),
            ("hop 3 (fingerprints)", mins(|s| s.hop3_p50), GREEN),
        ],
    )?;
    let n = r.worm_latencies_ms.len().max(1) as f64;
    let cdf: Vec<(f64, f64)> = r
        .worm_latencies_ms
        .iter()
        .enumerate()
        .map(|(i, &ms)| (ms, (i + 1) as f64 / n))
        .collect();
    line_chart(
        &dir.join("worm_latency_cdf.svg"),
        &format!(
            "Worm lookup latency CDF ({} found of {})",
            r.worm_latencies_ms.len(),
            r.worm.lookups
        ),
        "latency (ms)",
        "fraction of successful lookups",
        &[("latency", cdf, BLUE)],
    )?;
    line_chart(
        &dir.join("bandwidth.svg"),
        "Mesh bytes sent per online node, scaled to a day",
        "simulated time (min)",
        "MB per node per day",
        &[(
            "L1 bandwidth",
            mins(|s| s.bytes_per_node_per_day / 1e6),
            RED,
        )],
    )?;
    Ok(())
}
