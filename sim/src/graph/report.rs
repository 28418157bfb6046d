//! The JSON report of a graph-level run.

use serde::Serialize;

use super::Params;

/// Order statistics of a sample (nearest-rank percentiles).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Default)]
pub struct Summary {
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// Smallest value.
    pub min: u64,
    /// Largest value.
    pub max: u64,
    /// Arithmetic mean.
    pub mean: f64,
}

impl Summary {
    /// The summary of `values` (all zeros when empty).
    pub fn of(values: &[u64]) -> Self {
        if values.is_empty() {
            return Summary::default();
        }
        let mut v = values.to_vec();
        v.sort_unstable();
        let rank = |q: f64| {
            let k = (q * v.len() as f64).ceil() as usize;
            v[k.clamp(1, v.len()) - 1]
        };
        let sum: u128 = v.iter().map(|&x| u128::from(x)).sum();
        Summary {
            p50: rank(0.50),
            p90: rank(0.90),
            p99: rank(0.99),
            min: v[0],
            max: v[v.len() - 1],
            mean: round3(sum as f64 / v.len() as f64),
        }
    }
}

/// Rounds to 3 decimals (stable, readable JSON).
pub fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Map sizes over the sample nodes.
#[derive(Debug, Clone, Serialize)]
pub struct MapReport {
    /// Distinct nodes at distance 1.
    pub hop1: Summary,
    /// Distinct nodes at distance 2.
    pub hop2: Summary,
    /// Distinct nodes at distance 3.
    pub hop3: Summary,
    /// hop1 + hop2 + hop3: the entries of one node's 3-hop map.
    pub total: Summary,
}

/// Degrees of the sample nodes.
#[derive(Debug, Clone, Serialize)]
pub struct DegreeReport {
    /// Distinct social neighbours.
    pub social: Summary,
    /// Wide links (both ends chose them).
    pub wide: Summary,
    /// Distinct neighbours.
    pub total: Summary,
}

/// Worm lookups for uniformly random existing targets.
#[derive(Debug, Clone, Serialize)]
pub struct WormReport {
    /// Lookups run.
    pub lookups: u64,
    /// Lookups that found the target within the ttl.
    pub successes: u64,
    /// successes / lookups.
    pub success_rate: f64,
    /// Forward steps until the hit, over the successful lookups.
    pub hops: Summary,
    /// Successful lookups by hit hop: index h = found at the h-th visited
    /// node (0 = the originator's fan-out).
    pub hit_at_hop: Vec<u64>,
    /// Requests per lookup (WormRequest + WormQuery; responses not
    /// counted), over all lookups.
    pub messages: Summary,
    /// Requests per lookup over the successful lookups.
    pub messages_success: Summary,
    /// What `messages` counts.
    pub messages_counted: &'static str,
}

/// The report of one `distsoc-sim graph` run. Everything except `wall_s`
/// is a function of the parameters.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// N.
    pub nodes: u32,
    /// The seed.
    pub seed: u64,
    /// Wall-clock seconds of the run (the only field that varies).
    pub wall_s: f64,
    /// The parameters of the run.
    pub params: Params,
    /// The model's fixed parameters.
    pub model: ModelReport,
    /// Degrees of the BFS sample nodes.
    pub degree: DegreeReport,
    /// 3-hop map sizes of the sample nodes.
    pub map: MapReport,
    /// Distinct nodes within distance 4 of a sample node: the entries one
    /// fan-out checks.
    pub fanout_entries: Summary,
    /// Worm lookups.
    pub worm: WormReport,
}

/// The fixed parameters of the model, written into the report.
#[derive(Debug, Clone, Serialize)]
pub struct ModelReport {
    /// L = ⌈log2 N⌉: the id bits π fixes.
    pub id_prefix_bits: u32,
    /// Nodes per social cluster.
    pub cluster_size: u32,
    /// The cluster offsets d (links to c + d and c − d).
    pub social_offsets: Vec<u32>,
    /// Wide slots per node.
    pub wide_slots: usize,
    /// The worm's ttl at the originator.
    pub ttl: u32,
}
