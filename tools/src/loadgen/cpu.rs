//! Server CPU per operation, read from `/proc` (Linux): the stable figure
//! on a shared machine, where throughput swings with the load
//! (`docs/BENCHMARKS.md`).
//!
//! A process's CPU is `utime + stime` of `/proc/PID/stat` (every thread,
//! exited ones included). A PostgreSQL cluster's is its postmaster's
//! `utime + stime + cutime + cstime` (the last two: children it has reaped)
//! plus `utime + stime` of every live child, so a backend that exits
//! between two samples moves from one term to the other and is counted
//! once.

use serde::Serialize;

/// Clock ticks of `/proc/PID/stat` per second.
fn ticks_per_second() -> f64 {
    rustix::param::clock_ticks_per_second() as f64
}

/// The fields of `/proc/PID/stat` after the command name: `[0]` is the
/// state (field 3), `[1]` the parent pid (field 4), `[11..=14]` utime,
/// stime, cutime, cstime (fields 14–17).
fn stat_fields(pid: u32) -> Option<Vec<u64>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces or ')'.
    let rest = &text[text.rfind(')')? + 1..];
    Some(
        rest.split_whitespace()
            .map(|f| f.parse::<u64>().unwrap_or(0))
            .collect(),
    )
}

/// `utime + stime` (+ `cutime + cstime` with `children`), in ticks.
fn process_ticks(pid: u32, children: bool) -> Option<u64> {
    let f = stat_fields(pid)?;
    let own = f.get(11)? + f.get(12)?;
    Some(if children {
        own + f.get(13)? + f.get(14)?
    } else {
        own
    })
}

/// The live children of `parent`.
fn children_of(parent: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| stat_fields(*pid).and_then(|f| f.get(1).copied()) == Some(u64::from(parent)))
        .collect()
}

/// CPU ticks used so far by a PostgreSQL cluster (see the module docs).
fn cluster_ticks(postmaster: u32) -> Option<u64> {
    let own = process_ticks(postmaster, true)?;
    Some(
        own + children_of(postmaster)
            .into_iter()
            .filter_map(|c| process_ticks(c, false))
            .sum::<u64>(),
    )
}

/// CPU counters at one instant: the server's, the PostgreSQL cluster's and
/// this process's.
#[derive(Debug, Clone, Copy)]
pub(super) struct CpuSample {
    server: Option<u64>,
    postgres: Option<u64>,
    loadgen: Option<u64>,
}

/// What to sample.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct CpuWatch {
    /// The server process.
    pub(super) server_pid: Option<u32>,
    /// The PostgreSQL postmaster.
    pub(super) postgres_pid: Option<u32>,
}

impl CpuWatch {
    /// Samples every counter; `None` for a process that cannot be read.
    pub(super) fn sample(&self) -> CpuSample {
        CpuSample {
            server: self.server_pid.and_then(|p| process_ticks(p, false)),
            postgres: self.postgres_pid.and_then(cluster_ticks),
            loadgen: process_ticks(std::process::id(), false),
        }
    }

    /// Whether anything beyond this process is watched.
    pub(super) fn any(&self) -> bool {
        self.server_pid.is_some() || self.postgres_pid.is_some()
    }
}

/// CPU per operation over the load phase.
#[derive(Debug, Clone, Serialize)]
pub struct CpuReport {
    /// What one operation is: `push_post` (a post acknowledged), `enqueue`
    /// (a message acknowledged; in `mailbox` it is also fetched), or
    /// `request` (`mixed`: any successful request).
    pub op: String,
    /// Operations completed in the load phase.
    pub ops: u64,
    /// The server's pid (`--server-pid`).
    pub server_pid: Option<u32>,
    /// Server CPU over the load phase, seconds.
    pub server_cpu_s: Option<f64>,
    /// Server CPU per operation, µs.
    pub server_us_per_op: Option<f64>,
    /// The PostgreSQL postmaster's pid (`--postgres-pid`).
    pub postgres_pid: Option<u32>,
    /// PostgreSQL CPU (postmaster and every backend) over the load phase,
    /// seconds.
    pub postgres_cpu_s: Option<f64>,
    /// PostgreSQL CPU per operation, µs.
    pub postgres_us_per_op: Option<f64>,
    /// This load generator's CPU per operation, µs.
    pub loadgen_us_per_op: Option<f64>,
    /// `/proc/loadavg` (1, 5, 15 minutes) at the end of the load phase.
    pub load_average: Option<[f64; 3]>,
}

fn load_average() -> Option<[f64; 3]> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    let mut it = text.split_whitespace().map(|v| v.parse::<f64>().ok());
    Some([it.next()??, it.next()??, it.next()??])
}

impl CpuReport {
    /// The report between two samples, for `ops` operations named `op`.
    pub(super) fn between(
        watch: &CpuWatch,
        start: CpuSample,
        end: CpuSample,
        op: &str,
        ops: u64,
    ) -> Self {
        let hz = ticks_per_second();
        let secs = |a: Option<u64>, b: Option<u64>| Some(b?.saturating_sub(a?) as f64 / hz);
        let per_op = |s: Option<f64>| s.filter(|_| ops > 0).map(|s| s * 1e6 / ops as f64);
        let server_cpu_s = secs(start.server, end.server);
        let postgres_cpu_s = secs(start.postgres, end.postgres);
        CpuReport {
            op: op.to_string(),
            ops,
            server_pid: watch.server_pid,
            server_cpu_s,
            server_us_per_op: per_op(server_cpu_s),
            postgres_pid: watch.postgres_pid,
            postgres_cpu_s,
            postgres_us_per_op: per_op(postgres_cpu_s),
            loadgen_us_per_op: per_op(secs(start.loadgen, end.loadgen)),
            load_average: load_average(),
        }
    }

    /// The line printed under the table.
    pub(super) fn line(&self) -> String {
        let us = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |v| format!("{v:.1}"));
        let mut s = format!(
            "cpu per {} ({} ops): server {} µs",
            self.op,
            self.ops,
            us(self.server_us_per_op)
        );
        if self.postgres_pid.is_some() {
            s.push_str(&format!(", postgres {} µs", us(self.postgres_us_per_op)));
        }
        s.push_str(&format!(", loadgen {} µs", us(self.loadgen_us_per_op)));
        if let Some([a, b, c]) = self.load_average {
            s.push_str(&format!("; load average {a:.2} {b:.2} {c:.2}"));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn own_process_and_a_child_tree_are_read() {
        let me = std::process::id();
        assert!(process_ticks(me, true).is_some());
        // A child shows up under its parent.
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        assert!(children_of(me).contains(&child.id()));
        let watch = CpuWatch {
            server_pid: Some(child.id()),
            postgres_pid: Some(me),
        };
        let start = watch.sample();
        assert!(start.server.is_some() && start.postgres.is_some());
        let _ = child.kill();
        let _ = child.wait();
        let end = watch.sample();
        let r = CpuReport::between(&watch, start, end, "push_post", 10);
        assert!(r.postgres_cpu_s.is_some_and(|s| s >= 0.0));
        // The child is gone: its own counter cannot be read any more.
        assert_eq!(r.server_cpu_s, None);
        assert!(r.line().contains("cpu per push_post (10 ops)"));
    }
}
