//! The command-line surface shared by the `distsoc-sim` binary and
//! `distsoc sim` (the `tools` crate embeds [`SimCommand`]).

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::{Args, Subcommand};

use crate::graph::topology::DEFAULT_SOCIAL_REACH;
use crate::graph::{ForwardMode, Params, Report, WideMode};
use crate::SimError;

/// A simulator run. New simulators are new variants (the message-level
/// `discovery` comes next to `graph`).
#[derive(Debug, Subcommand)]
pub enum SimCommand {
    /// Graph-level model (no timing): exact BFS map sizes and worm routing
    /// on an implicit topology of up to 2×10⁹ nodes (clusters of 50, 81
    /// social + 20 wide links), forwarded by the protocol's own
    /// `route::forward_choice`. Writes a JSON report; same seed, same
    /// report (except wall_s).
    Graph(GraphArgs),
    /// Message-level simulator: real mesh states (slots, diffs, syncs,
    /// worm) of ~10⁴ nodes over a simulated network with latency, loss,
    /// churn and anchors. Writes a JSON report and SVG plots; same seed,
    /// same report (except wall_s).
    Discovery(crate::msg::cli::DiscoveryArgs),
}

/// `graph` options.
#[derive(Debug, Clone, Args)]
pub struct GraphArgs {
    /// Number of nodes (2 ..= 4294967295).
    #[arg(long)]
    pub nodes: u32,
    /// BFS sample nodes for the map sizes (each expands ~350K nodes at
    /// 2×10⁹).
    #[arg(long, default_value_t = 100)]
    pub samples: u32,
    /// Worm lookups, uniformly random origin and existing target.
    #[arg(long, default_value_t = 1000)]
    pub lookups: u32,
    /// Seed of the topology, the samples and the lookups.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Wide peers: Kademlia bucket partners chosen by `route::select_wide`,
    /// or 20 random matchings (the reference model).
    #[arg(long, value_enum, default_value_t = WideMode::Kademlia)]
    pub wide: WideMode,
    /// Worm forward step: `xor-fanout` is the protocol's (§13.5:
    /// `route::forward_choice` over the map and the fan-out answers'
    /// `closest`); `xor` without the answers; `random` a random unvisited
    /// peer.
    #[arg(long, value_enum, default_value_t = ForwardMode::XorFanout)]
    pub forward: ForwardMode,
    /// Largest cluster offset of a social link (16 offsets drawn from
    /// 1..=reach).
    #[arg(long, default_value_t = DEFAULT_SOCIAL_REACH)]
    pub social_reach: u32,
    /// A worm visit finds the target iff it lies within this distance
    /// (4 = the peers' 3-hop maps, the protocol's fan-out).
    #[arg(long, default_value_t = 4)]
    pub hit_radius: u32,
    /// Experiment: leave the N deepest Kademlia buckets out of the wide
    /// candidates (0 = the protocol's `select_wide` as it is).
    #[arg(long, default_value_t = 0)]
    pub wide_skip_deepest: u32,
    /// Wide links per node (18: a desktop node's 20 wide slots minus the 2
    /// anchors it keeps; anchors are not modelled).
    #[arg(long, default_value_t = distsoc_sim_wide_slots())]
    pub wide_slots: usize,
    /// Worker threads (the report does not depend on it).
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// Write the JSON report here (it is also summarized on stdout).
    #[arg(long)]
    pub json: Option<PathBuf>,
}

impl GraphArgs {
    /// The run parameters (progress bar when stderr is a terminal).
    pub fn params(&self) -> Params {
        Params {
            nodes: self.nodes,
            samples: self.samples,
            lookups: self.lookups,
            seed: self.seed,
            wide: self.wide,
            forward: self.forward,
            social_reach: self.social_reach,
            hit_radius: self.hit_radius,
            wide_skip_deepest: self.wide_skip_deepest,
            wide_slots: self.wide_slots,
            threads: self.threads,
            progress: std::io::stderr().is_terminal(),
        }
    }
}

/// Runs a simulator command: the report goes to `--json` and a summary to
/// stdout.
pub fn run(cmd: SimCommand) -> Result<(), SimError> {
    match cmd {
        SimCommand::Graph(args) => {
            let report = crate::graph::run(&args.params())?;
            if let Some(path) = &args.json {
                let text = serde_json::to_string_pretty(&report).map_err(SimError::Json)?;
                std::fs::write(path, text + "\n").map_err(|e| SimError::Io(path.clone(), e))?;
            }
            print!("{}", summary(&report));
            Ok(())
        }
        SimCommand::Discovery(args) => crate::msg::cli::run(&args),
    }
}

/// A few human-readable lines of a graph report.
pub fn summary(r: &Report) -> String {
    format!(
        "nodes {} seed {} wide {:?} forward {:?}: {:.1} s\n\
         degree p50 {} (social {}, wide {})\n\
         map p50: hop1 {} hop2 {} hop3 {} (total {}); fan-out entries p50 {}\n\
         worm: {}/{} found ({:.2} %), hops p50 {} p99 {}, messages p50 {} p99 {}\n",
        r.nodes,
        r.seed,
        r.params.wide,
        r.params.forward,
        r.wall_s,
        r.degree.total.p50,
        r.degree.social.p50,
        r.degree.wide.p50,
        r.map.hop1.p50,
        r.map.hop2.p50,
        r.map.hop3.p50,
        r.map.total.p50,
        r.fanout_entries.p50,
        r.worm.successes,
        r.worm.lookups,
        100.0 * r.worm.success_rate,
        r.worm.hops.p50,
        r.worm.hops.p99,
        r.worm.messages.p50,
        r.worm.messages.p99,
    )
}

const fn distsoc_sim_wide_slots() -> usize {
    crate::graph::topology::WIDE_SLOTS
}
