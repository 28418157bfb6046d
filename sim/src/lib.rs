//! `distsoc-sim` — the distsoc mesh simulator.
//!
//! [`graph`]: the graph-level model (issue 11, "Mesh simulator", graph
//! level). An implicit topology of up to 2×10⁹ nodes (u32 indices; every
//! link a seeded hash function of a node's index, never materialized) with
//! clustered social links and Kademlia-bucket (or random) wide links,
//! exact BFS map sizes (hop 1–3 and the entries one fan-out checks) and worm
//! lookups forwarded by the protocol's own
//! [`distsoc_protocol::mesh::route`] functions. It measures topology,
//! coverage and routing; it has no time, no messages on a wire, no churn, no
//! anchors and no state machines (see [`graph`] for the model and its
//! limits). Deterministic: the same parameters and seed give the same
//! report, except `wall_s`.
//!
//! [`msg`]: the message-level simulator (issue 11, "Mesh simulator",
//! message level). ~10⁴ real sans-IO mesh states driven over a simulated
//! network with latency, loss, churn, anchors and a desktop/mobile mix, for
//! the protocol mechanics (diffs, seq gaps, convergence after churn,
//! bandwidth, slots, worm latency). Its [`cli::SimCommand`] variant is
//! `discovery`.
//!
//! Entry points: [`graph::run()`] and [`msg::run()`] (library), [`cli::SimCommand`] (the clap
//! types shared by the `distsoc-sim` binary and `distsoc sim`).

pub mod cli;
pub mod graph;
pub mod msg;

use std::fmt;

/// Why a simulation could not run or write its report.
#[derive(Debug)]
pub enum SimError {
    /// The parameters are out of range; the message names the flag.
    InvalidParams(String),
    /// The report could not be written (path and cause).
    Io(std::path::PathBuf, std::io::Error),
    /// The report could not be serialized.
    Json(serde_json::Error),
}

impl fmt::Display for SimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SimError::InvalidParams(m) => write!(f, "invalid parameters: {m}"),
            SimError::Io(p, e) => write!(f, "cannot write {}: {e}", p.display()),
            SimError::Json(e) => write!(f, "cannot serialize the report: {e}"),
        }
    }
}

impl std::error::Error for SimError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SimError::InvalidParams(_) => None,
            SimError::Io(_, e) => Some(e),
            SimError::Json(e) => Some(e),
        }
    }
}
