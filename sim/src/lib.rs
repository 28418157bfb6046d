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

/// mimalloc's option: how long freed pages wait before they go back to the
/// operating system (ms; -1: never).
const PURGE_ENV: &str = "MIMALLOC_PURGE_DELAY";

/// Re-executes this process with mimalloc's page purging off
/// (`MIMALLOC_PURGE_DELAY=-1`) unless the variable is already set; returns
/// only when that is not needed or not possible (the run is then the same,
/// only slower). For the binaries whose global allocator is mimalloc: a
/// message-level run frees and re-uses the same memory all the time, and
/// returning it to the system after 10 ms (the default) and faulting it
/// back in, zeroed by the kernel, cost ~14 % of a run's CPU (2×10³ nodes,
/// 6 simulated minutes: 44.1 against 51.2 CPU s, same report, peak RSS
/// +2 %). mimalloc reads its options from the environment when the process
/// starts, hence the re-exec.
#[cfg(unix)]
pub fn keep_freed_pages() {
    use std::os::unix::process::CommandExt;
    if std::env::var_os(PURGE_ENV).is_some() {
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let err = std::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env(PURGE_ENV, "-1")
        .exec();
    eprintln!("note: could not re-execute with {PURGE_ENV}=-1 ({err}); running without it");
}

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
