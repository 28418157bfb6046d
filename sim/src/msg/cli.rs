//! `discovery` options (shared by `distsoc-sim discovery` and
//! `distsoc sim discovery`).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::{Params, Report};
use crate::SimError;

/// Parses `90`, `90s`, `30m`, `2h`, `1h30m` into a duration.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if let Ok(secs) = s.parse::<f64>() {
        if secs.is_finite() && secs >= 0.0 {
            return Ok(Duration::from_secs_f64(secs));
        }
    }
    let mut total = 0.0;
    let mut num = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() || c == '.' {
            num.push(c);
            continue;
        }
        let unit = match c {
            'h' => 3600.0,
            'm' => 60.0,
            's' => 1.0,
            'd' => 86_400.0,
            _ => return Err(format!("bad duration {s:?}: unit {c:?}")),
        };
        let v: f64 = num
            .parse()
            .map_err(|_| format!("bad duration {s:?}: number before {c:?}"))?;
        total += v * unit;
        num.clear();
    }
    if !num.is_empty() {
        return Err(format!(
            "bad duration {s:?}: number without a unit at the end"
        ));
    }
    Ok(Duration::from_secs_f64(total))
}

/// `discovery` options.
#[derive(Debug, Clone, Args)]
pub struct DiscoveryArgs {
    /// Nodes online at the start, anchors included (a reserve of
    /// max(nodes/10, 10) more joins by churn).
    #[arg(long)]
    pub nodes: u32,
    /// Simulated time (e.g. 2h, 30m, 900s).
    #[arg(long, value_parser = parse_duration, default_value = "2h")]
    pub duration: Duration,
    /// Percent of the non-anchor nodes leaving per hour (half crash, half
    /// leave cleanly); as many join.
    #[arg(long, default_value_t = 0.0)]
    pub churn: f64,
    /// Seed of the topology, the network and every node.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Share of mobile nodes (10 social + 5 wide slots) among non-anchors.
    #[arg(long, default_value_t = 0.0)]
    pub mobile_share: f64,
    /// Per-message loss probability.
    #[arg(long, default_value_t = 0.0)]
    pub loss: f64,
    /// Measured worm lookups (random online targets outside the
    /// originator's map, after the warm-up).
    #[arg(long, default_value_t = 200)]
    pub lookups: u32,
    /// Share of anchors (at least 2; each takes up to 400 connections).
    #[arg(long, default_value_t = 0.01)]
    pub anchor_share: f64,
    /// Measurements start after this (at most half the run).
    #[arg(long, value_parser = parse_duration, default_value = "30m")]
    pub warmup: Duration,
    /// Departures whose convergence is followed.
    #[arg(long, default_value_t = 100)]
    pub departure_samples: u32,
    /// Nodes whose maps are measured per sample and at the end.
    #[arg(long, default_value_t = 300)]
    pub map_samples: u32,
    /// Write the JSON report here (a summary goes to stdout).
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write SVG plots (map per hop, worm latency CDF, bandwidth) here.
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// Show progress on stderr even when it is not a terminal.
    #[arg(long)]
    pub progress: bool,
    /// Threads running the nodes' events (default: the available cores);
    /// the report is the same for any number.
    #[arg(long)]
    pub threads: Option<usize>,
}

impl DiscoveryArgs {
    /// The run parameters.
    pub fn params(&self) -> Params {
        let mut p = Params::new(self.nodes, self.duration, self.seed);
        p.churn = self.churn;
        p.mobile_share = self.mobile_share;
        p.loss = self.loss;
        p.lookups = self.lookups;
        p.anchor_share = self.anchor_share;
        p.warmup = self.warmup;
        p.departure_samples = self.departure_samples;
        p.map_samples = self.map_samples;
        p.progress = self.progress || std::io::stderr().is_terminal();
        if let Some(t) = self.threads {
            p.threads = t;
        }
        p
    }
}

/// Writes the report as pretty JSON.
pub fn write_json(report: &Report, path: &std::path::Path) -> Result<(), SimError> {
    let text = serde_json::to_string_pretty(report).map_err(SimError::Json)?;
    std::fs::write(path, text + "\n").map_err(|e| SimError::Io(path.to_path_buf(), e))
}

/// Runs `discovery`: report to `--json`, plots to `--plot`, summary to
/// stdout.
pub fn run(args: &DiscoveryArgs) -> Result<(), SimError> {
    let report = super::run(&args.params())?;
    if let Some(path) = &args.json {
        write_json(&report, path)?;
    }
    if let Some(dir) = &args.plot {
        super::report::plots(&report, dir)?;
    }
    print!("{}", super::report::summary(&report));
    Ok(())
}
