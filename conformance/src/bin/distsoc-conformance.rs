//! `distsoc-conformance`: the black-box wire conformance suite for distsoc
//! implementations (run against a live target), and the offline golden
//! vector check.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};
use distsoc_conformance::suite::model::{
    Report, Role, Summary, TargetInfo, Verdict, SUITE_VERSION,
};
use distsoc_conformance::suite::runner::{self, RunConfig};
use distsoc_conformance::suite::xfail::ExpectedFailures;
use distsoc_conformance::suite::{html, offline, registry, report};

#[derive(Parser)]
#[command(
    name = "distsoc-conformance",
    version,
    about = "Black-box conformance suite for distsoc implementations"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum RoleArg {
    Anchor,
    Node,
}

#[derive(Subcommand)]
enum Command {
    /// Run the wire cases against a live target (or list them with --list).
    Run {
        /// The target, `NodeId@host:port`.
        #[arg(long, required_unless_present = "list")]
        target: Option<String>,
        /// The role under test.
        #[arg(long, value_enum, default_value = "anchor")]
        role: RoleArg,
        /// Run only this case id or id prefix (repeatable).
        #[arg(long = "case")]
        cases: Vec<String>,
        /// Run only this area, e.g. FRM (repeatable).
        #[arg(long = "area")]
        areas: Vec<String>,
        /// SHOULD failures are FAIL instead of NON_STRICT.
        #[arg(long)]
        strict: bool,
        /// Print the selected cases without connecting.
        #[arg(long)]
        list: bool,
        /// Run each case N times.
        #[arg(long, default_value_t = 1)]
        repeat: u32,
        /// Run id: the seed of all of the run's randomness (each case gets its
        /// own RNG from it). Random unless given, so every run uses fresh
        /// identities; give a reported run id to replay that run exactly.
        #[arg(long = "run-id", alias = "seed", value_name = "RUN_ID")]
        seed: Option<u64>,
        /// Bound of one case, in ms (exceeded: ERROR).
        #[arg(long, default_value_t = 10_000)]
        timeout_ms: u64,
        /// How long to wait where silence is expected, in ms.
        #[arg(long, default_value_t = 400)]
        silence_ms: u64,
        /// Write the JSON report here.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Write the JUnit XML report here.
        #[arg(long)]
        junit: Option<PathBuf>,
        /// Write the HTML report here.
        #[arg(long)]
        html: Option<PathBuf>,
        /// Expected-failures file (TOML, `[[case]] id = "…" reason = "…"`).
        #[arg(long)]
        expected_failures: Option<PathBuf>,
        /// Show expected/actual for every case, not only the failed ones.
        #[arg(long, short)]
        verbose: bool,
        /// Run the cases that need this capability even though the target
        /// does not declare it (repeatable), e.g. to see how far an
        /// implementation that serves `mesh/1` without declaring it gets.
        /// The report still shows what the target declared.
        #[arg(long = "assume-capability", value_name = "CAP")]
        assume: Vec<String>,
    },
    /// Check the golden vector files offline (no target).
    Vectors {
        /// Directory of the vector files.
        #[arg(long, default_value = "conformance/vectors")]
        dir: PathBuf,
        /// Write the JSON report here.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Write the JUnit XML report here.
        #[arg(long)]
        junit: Option<PathBuf>,
    },
}

fn write(
    path: &Option<PathBuf>,
    text: impl FnOnce() -> anyhow::Result<String>,
) -> anyhow::Result<()> {
    if let Some(path) = path {
        std::fs::write(path, text()?)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

fn main() -> ExitCode {
    match real_main() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn real_main() -> anyhow::Result<ExitCode> {
    match Cli::parse().command {
        Command::Run {
            target,
            role,
            cases,
            areas,
            strict,
            list,
            repeat,
            seed,
            timeout_ms,
            silence_ms,
            json,
            junit,
            html: html_path,
            expected_failures,
            verbose,
            assume,
        } => {
            let role = match role {
                RoleArg::Anchor => Role::Anchor,
                RoleArg::Node => Role::Node,
            };
            let mut cfg = RunConfig::new(target.unwrap_or_default(), role);
            cfg.cases = cases;
            cfg.areas = areas;
            cfg.strict = strict;
            cfg.assume_capabilities = assume;
            cfg.repeat = repeat.max(1);
            if let Some(seed) = seed {
                cfg.seed = seed;
            }
            cfg.case_timeout = Duration::from_millis(timeout_ms);
            cfg.timeouts.silence = Duration::from_millis(silence_ms);
            if list {
                for c in runner::selection(&cfg)
                    .iter()
                    .filter(|c| c.info.role.applies_to(role))
                {
                    let i = &c.info;
                    println!(
                        "{:<12} {:<6} {:<8} {:<6} {:<16} {}",
                        i.id,
                        format!("{:?}", i.level).to_uppercase(),
                        format!("{:?}", i.kind).to_lowercase(),
                        format!("{:?}", i.role).to_lowercase(),
                        i.capability.as_deref().unwrap_or("-"),
                        i.title
                    );
                }
                return Ok(ExitCode::SUCCESS);
            }
            if let Some(path) = &expected_failures {
                cfg.expected_failures = ExpectedFailures::load(path)?;
                let known: std::collections::HashSet<String> =
                    registry::all().into_iter().map(|c| c.info.id).collect();
                for id in cfg
                    .expected_failures
                    .entries
                    .keys()
                    .filter(|id| !known.contains(*id))
                {
                    eprintln!("warning: expected-failures entry {id} names no case");
                }
            }
            let runtime = tokio::runtime::Runtime::new().context("cannot start tokio")?;
            let report = runtime.block_on(runner::run(cfg))?;
            print!("{}", report::console(&report, verbose));
            write(&json, || Ok(report::json(&report)?))?;
            write(&junit, || Ok(report::junit(&report)))?;
            write(&html_path, || Ok(html::render(&report)))?;
            Ok(if report.failed() {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            })
        }
        Command::Vectors { dir, json, junit } => {
            let started = std::time::Instant::now();
            let results = offline::check_all(&dir)?;
            let report = Report {
                suite_version: SUITE_VERSION.to_string(),
                spec_version: distsoc_conformance::suite::wire::PROTOCOL_VERSION,
                target: TargetInfo {
                    target: "offline".into(),
                    ..TargetInfo::default()
                },
                seed: 0,
                strict: false,
                started_at: runner::rfc3339_now(),
                duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
                summary: Summary::of(&results),
                results,
            };
            let failed: Vec<_> = report
                .results
                .iter()
                .filter(|r| r.verdict != Verdict::Pass)
                .collect();
            for r in &failed {
                println!(
                    "{} {} — expected {} — actual {}",
                    r.verdict.as_str(),
                    r.case.id,
                    r.expected,
                    r.actual
                );
            }
            println!("{}", report::summary_line(&report));
            write(&json, || Ok(report::json(&report)?))?;
            write(&junit, || Ok(report::junit(&report)))?;
            Ok(if report.failed() {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            })
        }
    }
}
