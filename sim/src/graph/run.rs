//! Runs a graph-level simulation: BFS samples and worm lookups, spread over
//! worker threads (`std::thread::scope`), each item seeded by its index so
//! the report does not depend on the thread count or the schedule.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

use super::bfs::{map_sizes, BfsBuffers, MapSizes};
use super::perm::derive_seed;
use super::report::{round3, DegreeReport, MapReport, ModelReport, Report, Summary, WormReport};
use super::topology::{Scratch, Topology, CLUSTER, WIDE_SLOTS};
use super::worm::{lookup, LookupOutcome, WormBuffers, WormConfig, WORM_TTL};
use super::Params;
use crate::SimError;

/// The result of one BFS sample.
#[derive(Debug, Clone, Copy)]
struct SampleResult {
    map: MapSizes,
    social: u64,
    wide: u64,
    degree: u64,
}

/// A uniform draw from `0..n`.
fn below(rng: &mut impl RngCore, n: u32) -> u32 {
    ((u64::from(rng.next_u32()) * u64::from(n)) >> 32) as u32
}

/// Runs `params` and returns the report.
pub fn run(params: &Params) -> Result<Report, SimError> {
    params.validate()?;
    let start = Instant::now();
    let topo = Topology::new(params);
    let total = u64::from(params.samples) + u64::from(params.lookups);
    let bar = if params.progress {
        let b = ProgressBar::new(total);
        if let Ok(style) = ProgressStyle::with_template(
            "{elapsed_precise} [{bar:40}] {pos}/{len} {msg} (eta {eta})",
        ) {
            b.set_style(style);
        }
        b
    } else {
        ProgressBar::hidden()
    };
    bar.set_message("map samples");
    let samples = parallel(
        params.threads,
        params.samples as usize,
        &bar,
        || (Scratch::new(), BfsBuffers::new(), Vec::new()),
        |(scratch, buf, nb), k| {
            let mut rng = ChaCha8Rng::from_seed(derive_seed(params.seed, "sample", k as u64));
            let s = below(&mut rng, params.nodes);
            let map = map_sizes(&topo, s, scratch, buf);
            nb.clear();
            topo.social_neighbors(s, nb);
            nb.sort_unstable();
            nb.dedup();
            let social = nb.len() as u64;
            nb.clear();
            topo.wide_neighbors(s, scratch, nb);
            let wide = nb.len() as u64;
            nb.clear();
            topo.neighbors_dedup(s, scratch, nb);
            SampleResult {
                map,
                social,
                wide,
                degree: nb.len() as u64,
            }
        },
    );
    bar.set_message("worm lookups");
    let cfg = WormConfig {
        forward: params.forward,
        hit_radius: params.hit_radius,
        ttl: WORM_TTL,
    };
    let lookups = parallel(
        params.threads,
        params.lookups as usize,
        &bar,
        || (Scratch::new(), WormBuffers::new()),
        |(scratch, buf), k| {
            let mut rng = ChaCha8Rng::from_seed(derive_seed(params.seed, "lookup", k as u64));
            let origin = below(&mut rng, params.nodes);
            let mut target = below(&mut rng, params.nodes - 1);
            if target >= origin {
                target += 1;
            }
            lookup(&topo, origin, target, &cfg, &mut rng, scratch, buf)
        },
    );
    bar.finish_and_clear();
    Ok(build_report(
        params,
        &topo,
        &samples,
        &lookups,
        start.elapsed().as_secs_f64(),
    ))
}

/// Runs `work(state, k)` for k in 0..count on `threads` threads, each with
/// its own `state`; results in index order.
fn parallel<S, R: Send>(
    threads: usize,
    count: usize,
    bar: &ProgressBar,
    init: impl Fn() -> S + Sync,
    work: impl Fn(&mut S, usize) -> R + Sync,
) -> Vec<R> {
    let next = AtomicUsize::new(0);
    let mut parts: Vec<Vec<(usize, R)>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads.max(1))
            .map(|_| {
                scope.spawn(|| {
                    let mut state = init();
                    let mut out = Vec::new();
                    loop {
                        let k = next.fetch_add(1, Ordering::Relaxed);
                        if k >= count {
                            break;
                        }
                        out.push((k, work(&mut state, k)));
                        bar.inc(1);
                    }
                    out
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    });
    let mut all: Vec<(usize, R)> = parts.drain(..).flatten().collect();
    all.sort_by_key(|(k, _)| *k);
    all.into_iter().map(|(_, r)| r).collect()
}

fn build_report(
    params: &Params,
    topo: &Topology,
    samples: &[SampleResult],
    lookups: &[LookupOutcome],
    wall_s: f64,
) -> Report {
    let col =
        |f: &dyn Fn(&SampleResult) -> u64| Summary::of(&samples.iter().map(f).collect::<Vec<_>>());
    let ok: Vec<&LookupOutcome> = lookups.iter().filter(|l| l.success).collect();
    let mut hit_at_hop = vec![0u64; WORM_TTL as usize + 1];
    for l in &ok {
        if let Some(c) = hit_at_hop.get_mut(l.hops as usize) {
            *c += 1;
        }
    }
    let successes = ok.len() as u64;
    let n_lookups = lookups.len() as u64;
    Report {
        nodes: params.nodes,
        seed: params.seed,
        wall_s: round3(wall_s),
        params: params.clone(),
        model: ModelReport {
            id_prefix_bits: topo.prefix_bits(),
            cluster_size: CLUSTER,
            social_offsets: topo.social_offsets().to_vec(),
            wide_slots: WIDE_SLOTS,
            ttl: WORM_TTL,
        },
        degree: DegreeReport {
            social: col(&|s| s.social),
            wide: col(&|s| s.wide),
            total: col(&|s| s.degree),
        },
        map: MapReport {
            hop1: col(&|s| s.map.hop1),
            hop2: col(&|s| s.map.hop2),
            hop3: col(&|s| s.map.hop3),
            total: col(&|s| s.map.hop1 + s.map.hop2 + s.map.hop3),
        },
        fanout_entries: col(&|s| s.map.fanout_entries),
        worm: WormReport {
            lookups: n_lookups,
            successes,
            success_rate: if n_lookups == 0 {
                0.0
            } else {
                successes as f64 / n_lookups as f64
            },
            hops: Summary::of(&ok.iter().map(|l| u64::from(l.hops)).collect::<Vec<_>>()),
            hit_at_hop,
            messages: Summary::of(&lookups.iter().map(|l| l.messages).collect::<Vec<_>>()),
            messages_success: Summary::of(&ok.iter().map(|l| l.messages).collect::<Vec<_>>()),
            messages_counted: "requests: one WormRequest per visited node after the \
                originator + one WormQuery per peer that is neither visited nor the sender; \
                responses not counted",
        },
    }
}
