//! Running the suite against a target: discovery (one Hello exchange),
//! filtering, capability checks, per-case timeout, verdict mapping and
//! expected failures.

use std::collections::BTreeMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use super::ctx::{CaseError, Ctx, HelloInfo, Outcome, Target, Timeouts};
use super::model::{
    CaseInfo, CaseResult, Level, Report, Role, Summary, TargetInfo, Verdict, SUITE_VERSION,
};
use super::registry::{self, Case};
use super::trace::Trace;
use super::wire::PROTOCOL_VERSION;
use super::xfail::ExpectedFailures;

/// How to run the suite.
#[derive(Clone, Debug)]
pub struct RunConfig {
    /// `NodeId@host:port` of the target.
    pub target: String,
    /// Role under test.
    pub role: Role,
    /// Case ids or id prefixes to run (empty = all).
    pub cases: Vec<String>,
    /// Areas to run (empty = all).
    pub areas: Vec<String>,
    /// SHOULD failures become FAIL.
    pub strict: bool,
    /// Runs of each case (at least 1).
    pub repeat: u32,
    /// The run id: the seed of all of the run's randomness (client keys,
    /// channel members, post content). [`RunConfig::new`] draws a fresh one
    /// from the OS, so every run against a live target uses identities no
    /// earlier run used; give an earlier run's id to replay it exactly.
    pub seed: u64,
    /// Bound of each case (→ ERROR when exceeded).
    pub case_timeout: Duration,
    /// Time bounds inside cases.
    pub timeouts: Timeouts,
    /// Expected failures.
    pub expected_failures: ExpectedFailures,
    /// Capabilities treated as declared even when the target does not
    /// declare them (`--assume-capability`).
    pub assume_capabilities: Vec<String>,
    /// Told about every result as it is made, and about every finished area.
    pub progress: Option<ProgressFn>,
    /// The program name the per-case re-run commands start with.
    pub program: String,
}

/// What [`RunConfig::progress`] is told while the suite runs.
#[derive(Debug)]
pub enum Progress<'a> {
    /// The run starts: the selected areas in order, each with its number of
    /// applicable results (cases × repetitions) and of not-applicable cases.
    Start {
        /// `(area, applicable, not applicable)`, in run order.
        areas: &'a [(String, u64, u64)],
    },
    /// A case is about to run.
    Case {
        /// The case.
        case: &'a CaseInfo,
        /// Its iteration.
        iteration: u32,
    },
    /// A result was made.
    Result(&'a CaseResult),
    /// Every result of `area` is made; `summary` counts them.
    AreaDone {
        /// The area.
        area: &'a str,
        /// Its counts (`total` excludes `NOT_APPLICABLE`).
        summary: &'a Summary,
        /// Wall time the area took.
        elapsed: Duration,
    },
    /// Every result is made (the report follows).
    Finished,
}

/// The progress callback of a run.
#[derive(Clone)]
pub struct ProgressFn(pub Arc<dyn Fn(&Progress<'_>) + Send + Sync>);

impl std::fmt::Debug for ProgressFn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ProgressFn(..)")
    }
}

impl ProgressFn {
    /// Wraps `f`.
    pub fn new(f: impl Fn(&Progress<'_>) + Send + Sync + 'static) -> Self {
        ProgressFn(Arc::new(f))
    }
}

impl RunConfig {
    /// Defaults for `target` and `role`: all cases, a fresh run id
    /// ([`fresh_run_id`]), 10 s per case.
    #[must_use]
    pub fn new(target: impl Into<String>, role: Role) -> Self {
        Self {
            target: target.into(),
            role,
            cases: Vec::new(),
            areas: Vec::new(),
            strict: false,
            repeat: 1,
            seed: fresh_run_id(),
            case_timeout: Duration::from_secs(10),
            timeouts: Timeouts::default(),
            expected_failures: ExpectedFailures::default(),
            assume_capabilities: Vec::new(),
            progress: None,
            program: "distsoc-conformance".into(),
        }
    }

    /// The command line that re-runs case `id` (iteration `iteration`) of
    /// this run: same target, role, run id, strictness, time bounds and
    /// assumed capabilities, only that case.
    #[must_use]
    pub fn rerun_command(&self, id: &str, iteration: u32) -> String {
        let mut args = vec![
            self.program.clone(),
            "run".into(),
            "--target".into(),
            self.target.clone(),
            "--role".into(),
            match self.role {
                Role::Node => "node".into(),
                _ => "anchor".into(),
            },
            "--case".into(),
            id.into(),
            "--run-id".into(),
            self.seed.to_string(),
        ];
        if iteration > 0 {
            args.extend(["--repeat".into(), (iteration + 1).to_string()]);
        }
        if self.strict {
            args.push("--strict".into());
        }
        let defaults = RunConfig::new("", self.role);
        if self.case_timeout != defaults.case_timeout {
            args.extend([
                "--timeout-ms".into(),
                self.case_timeout.as_millis().to_string(),
            ]);
        }
        if self.timeouts.silence != defaults.timeouts.silence {
            args.extend([
                "--silence-ms".into(),
                self.timeouts.silence.as_millis().to_string(),
            ]);
        }
        for cap in &self.assume_capabilities {
            args.extend(["--assume-capability".into(), cap.clone()]);
        }
        args.push("-v".into());
        args.iter()
            .map(|a| shell_quote(a))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// `s` as one POSIX shell word: as is when it only has safe characters,
/// else in single quotes.
#[must_use]
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'-' | b'_' | b'.' | b'/' | b':' | b'@' | b'=' | b',' | b'+'
                )
        })
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// A random run id from the operating system's RNG.
///
/// Every case derives its identities and content from the run id
/// ([`case_rng`]), so two runs with different ids never share a client key,
/// a DM channel or a post, and state a target kept from an earlier run
/// cannot change this run's verdicts. The fixture authors
/// (`cases::post::fixture_ids`) are the only identities shared by every run;
/// their posts carry run-specific content.
#[must_use]
pub fn fresh_run_id() -> u64 {
    rand_core::RngCore::next_u64(&mut rand_core::OsRng)
}

/// Why the suite could not run at all.
#[derive(Debug, thiserror::Error)]
pub enum SuiteError {
    /// The target string is not `NodeId@host:port`.
    #[error("bad target {0:?}: expected NodeId@host:port ({1})")]
    Target(String, String),
    /// The first connection and Hello exchange (capability discovery) failed.
    #[error("cannot reach the target for discovery: {0}")]
    Discovery(String),
}

/// Parses `NodeId@host:port` (host may be a name; the first address is used).
pub fn parse_target(s: &str) -> Result<Target, SuiteError> {
    let bad = |why: &str| SuiteError::Target(s.to_string(), why.to_string());
    let (id, addr) = s.split_once('@').ok_or_else(|| bad("missing '@'"))?;
    let bytes = hex::decode(id).map_err(|_| bad("NodeId is not hex"))?;
    let node_id =
        <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| bad("NodeId is not 32 bytes"))?;
    let addr: SocketAddr = match addr.parse() {
        Ok(a) => a,
        Err(_) => addr
            .to_socket_addrs()
            .map_err(|e| bad(&e.to_string()))?
            .next()
            .ok_or_else(|| bad("host has no address"))?,
    };
    Ok(Target { node_id, addr })
}

/// Whether `case` is selected by `--case` (exact id or prefix) and `--area`.
#[must_use]
pub fn selected(case: &CaseInfo, ids: &[String], areas: &[String]) -> bool {
    let by_id = ids.is_empty()
        || ids
            .iter()
            .any(|i| case.id == *i || case.id.starts_with(i.as_str()));
    let by_area = areas.is_empty() || areas.iter().any(|a| case.area.eq_ignore_ascii_case(a));
    by_id && by_area
}

/// The verdict of a case outcome: PASS, or by level (MUST → FAIL; SHOULD →
/// NON_STRICT, FAIL with `strict`; MAY → INFORMATIONAL).
#[must_use]
pub fn verdict_of(passed: bool, level: Level, strict: bool) -> Verdict {
    match (passed, level) {
        (true, _) => Verdict::Pass,
        (false, Level::Must) => Verdict::Fail,
        (false, Level::Should) if strict => Verdict::Fail,
        (false, Level::Should) => Verdict::NonStrict,
        (false, Level::May) => Verdict::Informational,
    }
}

/// The per-case RNG: ChaCha20 seeded from BLAKE3(label ‖ run id (u64 LE) ‖
/// case id ‖ iteration (u32 LE)).
#[must_use]
pub fn case_rng(seed: u64, id: &str, iteration: u32) -> ChaCha20Rng {
    let mut h = blake3::Hasher::new();
    h.update(b"distsoc-conformance case rng");
    h.update(&seed.to_le_bytes());
    h.update(id.as_bytes());
    h.update(&iteration.to_le_bytes());
    ChaCha20Rng::from_seed(*h.finalize().as_bytes())
}

/// The cases `cfg` selects, in registry order (role not applied).
#[must_use]
pub fn selection(cfg: &RunConfig) -> Vec<Case> {
    registry::all()
        .into_iter()
        .filter(|c| selected(&c.info, &cfg.cases, &cfg.areas))
        .collect()
}

async fn discover(
    target: &Target,
    role: Role,
    display: &str,
    timeouts: Timeouts,
) -> Result<TargetInfo, SuiteError> {
    let mut ctx = Ctx::new(
        target.clone(),
        role,
        TargetInfo::default(),
        timeouts,
        case_rng(0, "discovery", 0),
    );
    let s = ctx
        .connect()
        .await
        .map_err(|e| SuiteError::Discovery(e.to_string()))?;
    let h: &HelloInfo = &s.hello;
    Ok(TargetInfo {
        target: display.to_string(),
        role: Some(role),
        version: Some(h.version),
        versions: Some((h.min_version, h.max_version)),
        roles: h
            .roles
            .iter()
            .map(|r| match r {
                0 => "node".to_string(),
                1 => "anchor".to_string(),
                n => format!("unknown({n})"),
            })
            .collect(),
        capabilities: h.capabilities.clone(),
        software: (!h.agent.is_empty()).then(|| h.agent.clone()),
    })
}

fn result(
    case: &CaseInfo,
    verdict: Verdict,
    expected: String,
    actual: String,
    duration: Duration,
    iteration: u32,
) -> CaseResult {
    CaseResult {
        case: case.clone(),
        verdict,
        expected,
        actual,
        duration_ms: u64::try_from(duration.as_millis()).unwrap_or(u64::MAX),
        iteration,
        expected_failure: None,
        rerun: String::new(),
        frames: Vec::new(),
        frames_omitted: 0,
    }
}

/// Runs the suite and returns the report (console output is the caller's).
pub async fn run(cfg: RunConfig) -> Result<Report, SuiteError> {
    let started = Instant::now();
    let started_at = rfc3339_now();
    let target = parse_target(&cfg.target)?;
    let info = discover(&target, cfg.role, &cfg.target, cfg.timeouts).await?;
    let selected = selection(&cfg);
    let repeat = cfg.repeat.max(1);
    // Areas in run order with their applicable results and n/a cases.
    let mut plan: Vec<(String, u64, u64)> = Vec::new();
    for case in &selected {
        let c = &case.info;
        if plan.last().is_none_or(|(a, _, _)| *a != c.area) {
            plan.push((c.area.clone(), 0, 0));
        }
        if let Some(last) = plan.last_mut() {
            if c.role.applies_to(cfg.role) {
                last.1 += u64::from(repeat);
            } else {
                last.2 += 1;
            }
        }
    }
    let tell = |p: &Progress<'_>| {
        if let Some(f) = &cfg.progress {
            (f.0)(p);
        }
    };
    tell(&Progress::Start { areas: &plan });
    let mut results: Vec<CaseResult> = Vec::new();
    let mut area_started: BTreeMap<String, (Instant, usize)> = BTreeMap::new();
    for (i, case) in selected.iter().enumerate() {
        let c = &case.info;
        area_started
            .entry(c.area.clone())
            .or_insert((Instant::now(), results.len()));
        if !c.role.applies_to(cfg.role) {
            // Reported once, whatever --repeat says, and never run.
            let r = result(
                c,
                Verdict::NotApplicable,
                format!("a target of role {}", role_word(c.role)),
                format!("the target is tested as {}", role_word(cfg.role)),
                Duration::ZERO,
                0,
            );
            tell(&Progress::Result(&r));
            results.push(r);
        }
        for iteration in 0..repeat {
            if !c.role.applies_to(cfg.role) {
                break;
            }
            tell(&Progress::Case { case: c, iteration });
            let t0 = Instant::now();
            let trace = Trace::new();
            let mut r = if let Some(cap) = c.capability.as_deref().filter(|cap| {
                !info.capabilities.iter().any(|d| d == cap)
                    && !cfg.assume_capabilities.iter().any(|d| d == cap)
            }) {
                result(
                    c,
                    Verdict::Unsupported,
                    format!("capability {cap}"),
                    "not declared in HelloResponse".into(),
                    t0.elapsed(),
                    iteration,
                )
            } else {
                let mut ctx = Ctx::new(
                    target.clone(),
                    cfg.role,
                    info.clone(),
                    cfg.timeouts,
                    case_rng(cfg.seed, &c.id, iteration),
                );
                let bound = case
                    .needs
                    .map_or(cfg.case_timeout, |d| d.max(cfg.case_timeout));
                let outcome: Result<Result<Outcome, CaseError>, _> = trace
                    .clone()
                    .scope(tokio::time::timeout(bound, (case.run)(&mut ctx)))
                    .await;
                match outcome {
                    Err(_) => result(
                        c,
                        Verdict::Error,
                        "the case completes".into(),
                        format!("timed out after {bound:?}"),
                        t0.elapsed(),
                        iteration,
                    ),
                    Ok(Err(CaseError::Unsupported(why))) => result(
                        c,
                        Verdict::Unsupported,
                        "the target serves what the case needs".into(),
                        why,
                        t0.elapsed(),
                        iteration,
                    ),
                    Ok(Err(CaseError::Skipped(why))) => result(
                        c,
                        Verdict::Skipped,
                        "the suite can create the state the case needs".into(),
                        why,
                        t0.elapsed(),
                        iteration,
                    ),
                    Ok(Err(e)) => result(
                        c,
                        Verdict::Error,
                        "the case can run".into(),
                        e.to_string(),
                        t0.elapsed(),
                        iteration,
                    ),
                    Ok(Ok(o)) => result(
                        c,
                        verdict_of(o.passed, c.level, cfg.strict),
                        o.expected,
                        o.actual,
                        t0.elapsed(),
                        iteration,
                    ),
                }
            };
            r.expected_failure = cfg.expected_failures.reason(&c.id).map(str::to_string);
            r.rerun = cfg.rerun_command(&c.id, iteration);
            (r.frames, r.frames_omitted) = trace.frames();
            tell(&Progress::Result(&r));
            results.push(r);
        }
        let area_ends = selected.get(i + 1).is_none_or(|n| n.info.area != c.area);
        if area_ends {
            if let Some((t0, from)) = area_started.remove(&c.area) {
                let summary = Summary::of(&results[from..]);
                tell(&Progress::AreaDone {
                    area: &c.area,
                    summary: &summary,
                    elapsed: t0.elapsed(),
                });
            }
        }
    }
    tell(&Progress::Finished);
    Ok(Report {
        suite_version: SUITE_VERSION.to_string(),
        spec_version: PROTOCOL_VERSION,
        target: info,
        seed: cfg.seed,
        strict: cfg.strict,
        started_at,
        duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        summary: Summary::of(&results),
        results,
    })
}

fn role_word(r: Role) -> &'static str {
    match r {
        Role::Node => "node",
        Role::Anchor => "anchor",
        Role::Any => "any",
    }
}

/// The current time as RFC 3339 UTC (`2025-01-31T12:00:00Z`).
#[must_use]
pub fn rfc3339_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    rfc3339(secs)
}

/// `secs` since the epoch as RFC 3339 UTC.
#[must_use]
pub fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil from days (H. Hinnant).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use crate::suite::model::Kind;

    fn info(id: &str) -> CaseInfo {
        CaseInfo {
            id: id.into(),
            area: id.split('-').next().unwrap().into(),
            title: "t".into(),
            requirement: "r".into(),
            spec_ref: "s".into(),
            level: Level::Must,
            role: Role::Any,
            capability: None,
            kind: Kind::Negative,
        }
    }

    #[test]
    fn filtering() {
        let c = info("FRM-2-004");
        assert!(selected(&c, &[], &[]));
        assert!(selected(&c, &["FRM-2-004".into()], &[]));
        assert!(selected(&c, &["FRM-2".into()], &[]));
        assert!(!selected(&c, &["FRM-2-005".into()], &[]));
        assert!(selected(&c, &[], &["frm".into()]));
        assert!(!selected(&c, &[], &["HS".into()]));
        assert!(!selected(&c, &["FRM".into()], &["HS".into()]));
        let cfg = RunConfig {
            areas: vec!["VER".into()],
            ..RunConfig::new("x", Role::Anchor)
        };
        let sel = selection(&cfg);
        assert!(!sel.is_empty() && sel.iter().all(|c| c.info.area == "VER"));
        assert!(
            Role::Anchor.applies_to(Role::Anchor)
                && Role::Any.applies_to(Role::Node)
                && !Role::Node.applies_to(Role::Anchor)
        );
    }

    #[test]
    fn rerun_commands() {
        let mut cfg = RunConfig::new(format!("{}@127.0.0.1:4433", "ab".repeat(32)), Role::Node);
        cfg.seed = 42;
        assert_eq!(
            cfg.rerun_command("FRM-2-004", 0),
            format!(
                "distsoc-conformance run --target {}@127.0.0.1:4433 --role node --case FRM-2-004 --run-id 42 -v",
                "ab".repeat(32)
            )
        );
        cfg.strict = true;
        cfg.case_timeout = Duration::from_secs(30);
        cfg.assume_capabilities = vec!["mesh/1".into()];
        cfg.target = "x y'z".into();
        assert_eq!(
            cfg.rerun_command("FRM-2-004", 2),
            "distsoc-conformance run --target 'x y'\\''z' --role node --case FRM-2-004 --run-id 42 --repeat 3 --strict --timeout-ms 30000 --assume-capability mesh/1 -v"
        );
        assert_eq!(shell_quote(""), "''");
    }

    #[test]
    fn verdicts() {
        assert_eq!(verdict_of(true, Level::Must, false), Verdict::Pass);
        assert_eq!(verdict_of(false, Level::Must, false), Verdict::Fail);
        assert_eq!(verdict_of(false, Level::Should, false), Verdict::NonStrict);
        assert_eq!(verdict_of(false, Level::Should, true), Verdict::Fail);
        assert_eq!(verdict_of(false, Level::May, true), Verdict::Informational);
        assert_eq!(verdict_of(true, Level::May, true), Verdict::Pass);
    }

    #[test]
    fn rng_is_per_case_and_reproducible() {
        use rand_core::RngCore;
        let a = case_rng(1, "HS-1-001", 0).next_u64();
        assert_eq!(a, case_rng(1, "HS-1-001", 0).next_u64());
        assert_ne!(a, case_rng(2, "HS-1-001", 0).next_u64());
        assert_ne!(a, case_rng(1, "HS-1-002", 0).next_u64());
        assert_ne!(a, case_rng(1, "HS-1-001", 1).next_u64());
    }

    #[test]
    fn targets_and_time() {
        let t = parse_target(&format!("{}@127.0.0.1:4433", "ab".repeat(32))).unwrap();
        assert_eq!(t.node_id, [0xab; 32]);
        assert_eq!(t.addr.port(), 4433);
        assert!(parse_target("nope").is_err());
        assert!(parse_target(&format!("{}@127.0.0.1:1", "ab".repeat(31))).is_err());
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400 + 3661), "2000-02-29T01:01:01Z");
    }
}
