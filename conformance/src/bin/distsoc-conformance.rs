//! `distsoc-conformance`: the black-box wire conformance suite for distsoc
//! implementations (run against a live target), and the offline golden
//! vector check.

use std::io::{IsTerminal, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};
use distsoc_conformance::suite::model::{
    Report, Role, Summary, TargetInfo, Verdict, SUITE_VERSION,
};
use distsoc_conformance::suite::runner::{self, Progress, ProgressFn, RunConfig};
use distsoc_conformance::suite::xfail::ExpectedFailures;
use distsoc_conformance::suite::{fixtures, html, offline, registry, report};

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
        /// Write the JSON report here (`-`: to stdout, instead of the
        /// console table).
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
        /// No progress on stderr.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Check the golden vector files offline (no target). Without --dir,
    /// the vectors built into this binary (works from any directory).
    Vectors {
        /// Check the vector files in this directory instead (e.g. a
        /// checkout's `conformance/vectors`).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Write the JSON report here.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Write the JUnit XML report here.
        #[arg(long)]
        junit: Option<PathBuf>,
    },
    /// Print the fixture identities a target must know (and what else it
    /// needs) so that no case is SKIPPED for lack of them, with the
    /// commands that prepare our own node.
    Fixtures {
        /// The role of the target.
        #[arg(long, value_enum, default_value = "node")]
        role: RoleArg,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// Progress on stderr: a bar redrawn in place when stderr is a terminal,
/// and one line per finished area either way.
fn progress_reporter() -> ProgressFn {
    let tty = std::io::stderr().is_terminal();
    let bar: Mutex<Option<indicatif::ProgressBar>> = Mutex::new(None);
    ProgressFn::new(move |p| {
        let mut bar = bar
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match p {
            Progress::Start { areas } => {
                if tty {
                    let total: u64 = areas.iter().map(|(_, n, _)| n).sum();
                    let b = indicatif::ProgressBar::with_draw_target(
                        Some(total),
                        indicatif::ProgressDrawTarget::stderr(),
                    );
                    if let Ok(style) = indicatif::ProgressStyle::with_template(
                        "{bar:30} {pos}/{len} {elapsed} {wide_msg}",
                    ) {
                        b.set_style(style);
                    }
                    *bar = Some(b);
                }
            }
            Progress::Case { case, .. } => {
                if let Some(b) = bar.as_ref() {
                    b.set_message(format!("{} {}", case.id, case.title));
                }
            }
            Progress::Result(r) => {
                if let Some(b) = bar.as_ref() {
                    if r.verdict != Verdict::NotApplicable {
                        b.inc(1);
                    }
                }
            }
            Progress::Finished => {
                if let Some(b) = bar.take() {
                    b.finish_and_clear();
                }
            }
            Progress::AreaDone {
                area,
                summary,
                elapsed,
            } => {
                let line = report::area_line(area, summary, Some(*elapsed));
                match bar.as_ref() {
                    Some(b) => b.println(line),
                    None => {
                        let _ = writeln!(std::io::stderr(), "{line}");
                    }
                }
            }
        }
    })
}

/// `print!` that ends the program quietly when stdout is a closed pipe
/// (`distsoc-conformance run --list | head`).
macro_rules! out {
    ($($arg:tt)*) => {
        if let Err(e) = write!(std::io::stdout().lock(), $($arg)*) {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                std::process::exit(0);
            }
            return Err(e.into());
        }
    };
}

/// `println!` with the manners of [`out!`].
macro_rules! outln {
    ($($arg:tt)*) => {
        out!("{}\n", format_args!($($arg)*))
    };
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
            quiet,
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
                let selected = runner::selection(&cfg);
                let other = selected
                    .iter()
                    .filter(|c| !c.info.role.applies_to(role))
                    .count();
                for c in selected.iter().filter(|c| c.info.role.applies_to(role)) {
                    let i = &c.info;
                    outln!(
                        "{:<12} {:<6} {:<8} {:<6} {:<16} {}",
                        i.id,
                        format!("{:?}", i.level).to_uppercase(),
                        format!("{:?}", i.kind).to_lowercase(),
                        format!("{:?}", i.role).to_lowercase(),
                        i.capability.as_deref().unwrap_or("-"),
                        i.title
                    );
                }
                if other > 0 {
                    eprintln!("({other} cases of the other role not listed: not applicable)");
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
            if !quiet {
                cfg.progress = Some(progress_reporter());
            }
            let runtime = tokio::runtime::Runtime::new().context("cannot start tokio")?;
            let report = runtime.block_on(runner::run(cfg))?;
            let json_stdout = json.as_deref() == Some(std::path::Path::new("-"));
            if json_stdout {
                outln!("{}", report::json(&report)?);
                eprintln!("{}", report::summary_line(&report));
            } else {
                out!("{}", report::console(&report, verbose));
                write(&json, || Ok(report::json(&report)?))?;
            }
            write(&junit, || Ok(report::junit(&report)))?;
            write(&html_path, || Ok(html::render(&report)))?;
            Ok(if report.failed() {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            })
        }
        Command::Fixtures { role, json } => {
            let f = fixtures::for_role(match role {
                RoleArg::Anchor => Role::Anchor,
                RoleArg::Node => Role::Node,
            });
            if json {
                outln!("{}", serde_json::to_string_pretty(&f)?);
            } else {
                out!("{}", fixtures::text(&f));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Vectors { dir, json, junit } => {
            let started = std::time::Instant::now();
            let results = match &dir {
                Some(dir) => offline::check_all(dir)?,
                None => offline::check_embedded()?,
            };
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
                outln!(
                    "{} {} — expected {} — actual {}",
                    r.verdict.as_str(),
                    r.case.id,
                    r.expected,
                    r.actual
                );
            }
            outln!(
                "{} ({})",
                report::summary_line(&report),
                match &dir {
                    Some(d) => format!("vector files in {}", d.display()),
                    None => format!(
                        "the {} vector files built into this binary",
                        offline::EMBEDDED.len()
                    ),
                }
            );
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
