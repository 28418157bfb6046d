//! The suite's data model: what a case is, what a run produced.
//!
//! Everything here is plain data (serde), shared by the runner and every
//! report format (console, JSON, JUnit, HTML). The JSON report is this
//! model serialized; its field names are part of the suite's contract.

use serde::{Deserialize, Serialize};

/// Version of the suite (its case registry and report format).
pub const SUITE_VERSION: &str = env!("CARGO_PKG_VERSION");

/// How strongly the spec requires what a case tests (RFC 2119).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Level {
    /// Required; a failure is FAIL.
    Must,
    /// Recommended; a failure is NON_STRICT unless `--strict`.
    Should,
    /// Optional; a failure is INFORMATIONAL.
    May,
}

/// What kind of behaviour a case probes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Valid input gets the specified result.
    Positive,
    /// Invalid or hostile input is refused as the spec allows.
    Negative,
    /// Behaviour exactly at or just past a limit.
    Limit,
    /// A golden vector checked offline.
    Vector,
}

/// Which implementation role a case applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A user node.
    Node,
    /// An anchor (mailbox, channels, bootstrap, address cache).
    Anchor,
    /// Any implementation.
    Any,
}

impl Role {
    /// Whether a case declared for `self` applies to a target of role `target`.
    #[must_use]
    pub fn applies_to(self, target: Role) -> bool {
        self == Role::Any || target == Role::Any || self == target
    }
}

/// The outcome of one case.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Verdict {
    /// The target behaved as the spec requires.
    Pass,
    /// A MUST (or, with `--strict`, a SHOULD) requirement is violated.
    Fail,
    /// A SHOULD requirement is not met (not a failure without `--strict`).
    NonStrict,
    /// The target does not declare the capability the case needs.
    Unsupported,
    /// Reported for information (MAY cases, observed values).
    Informational,
    /// The suite could not run the case (connection lost, harness error).
    Error,
    /// Not run: the case needs state the suite cannot create on this target
    /// (the reason is given).
    Skipped,
    /// The case is for the other role (a node case when testing an anchor
    /// and vice versa). Left out of [`Summary::total`] and of every other
    /// count: the target is not judged on it.
    NotApplicable,
}

impl Verdict {
    /// The console / report spelling (`PASS`, `NON_STRICT`, …).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::Fail => "FAIL",
            Verdict::NonStrict => "NON_STRICT",
            Verdict::Unsupported => "UNSUPPORTED",
            Verdict::Informational => "INFORMATIONAL",
            Verdict::Error => "ERROR",
            Verdict::Skipped => "SKIPPED",
            Verdict::NotApplicable => "NOT_APPLICABLE",
        }
    }

    /// Whether this verdict makes the run fail (exit status 1).
    #[must_use]
    pub fn is_failure(self) -> bool {
        matches!(self, Verdict::Fail | Verdict::Error)
    }
}

/// The static description of one case, as listed by `--list` and reported.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseInfo {
    /// Stable id `AREA-SECTION-NNN` (e.g. `MBX-4.2-007`); never changed or reused.
    pub id: String,
    /// Area, the id's first component (e.g. `MBX`).
    pub area: String,
    /// One-line title.
    pub title: String,
    /// The requirement tested, quoted from the spec text.
    pub requirement: String,
    /// Where the requirement is written (e.g. `schema/README.md §9`).
    pub spec_ref: String,
    /// MUST / SHOULD / MAY.
    pub level: Level,
    /// Role under test.
    pub role: Role,
    /// Capability the target must declare in Hello, if any.
    pub capability: Option<String>,
    /// Positive / negative / limit / vector.
    pub kind: Kind,
}

/// The result of running one case (once; `--repeat` gives several).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseResult {
    /// The case.
    #[serde(flatten)]
    pub case: CaseInfo,
    /// The verdict after applying level, `--strict` and expected failures.
    pub verdict: Verdict,
    /// What the spec allows, in words.
    pub expected: String,
    /// What the target did, in words.
    pub actual: String,
    /// Wall time of the case, in milliseconds.
    pub duration_ms: u64,
    /// Which repetition (0-based) of `--repeat`.
    pub iteration: u32,
    /// Set when the case is listed in the expected-failures file: the reason given there.
    pub expected_failure: Option<String>,
    /// The command line that re-runs this one case against the same target
    /// with the same run id (empty for offline vectors and `NOT_APPLICABLE`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub rerun: String,
    /// The frames the case sent and received, in order, bounded (see
    /// [`FrameRecord`]): the first and last [`MAX_FRAMES_PER_CASE`]` / 2`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub frames: Vec<FrameRecord>,
    /// How many frames the case exchanged beyond those in `frames`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub frames_omitted: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// At most this many bytes of each frame are kept in [`FrameRecord::hex`].
pub const MAX_FRAME_BYTES: usize = 4096;

/// At most this many frames are kept per case (the first and the last
/// half); the others are counted in [`CaseResult::frames_omitted`].
pub const MAX_FRAMES_PER_CASE: usize = 24;

/// Which way a frame went.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// From the suite to the target.
    Sent,
    /// From the target to the suite.
    Received,
}

/// One stream direction's bytes as a case sent or received them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrameRecord {
    /// Sent or received.
    pub dir: Direction,
    /// The case's connection it went over (1 = the case's first), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conn: Option<u32>,
    /// The QUIC stream id, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<u64>,
    /// Milliseconds since the case started.
    pub at_ms: u64,
    /// How many bytes went over the stream (all of them, not only those in `hex`).
    pub len: u64,
    /// The first [`MAX_FRAME_BYTES`] bytes, lowercase hex.
    pub hex: String,
    /// The message: its name and code (`Hello (0x00)`), or why the bytes
    /// are not one frame.
    pub message: String,
    /// The message decoded with the schema bindings, in Cap'n Proto text
    /// form (bounded), when it reads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decoded: Option<String>,
    /// How the stream ended when no bytes were the point (a reset, a
    /// timeout, a closed connection).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Facts about the target learned from the Hello exchange.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetInfo {
    /// `NodeId@host:port` as given, or `offline` for vector mode.
    pub target: String,
    /// Role under test.
    pub role: Option<Role>,
    /// Negotiated protocol version.
    pub version: Option<u16>,
    /// Version range the target declared (min, max).
    pub versions: Option<(u16, u16)>,
    /// Roles the target declared.
    pub roles: Vec<String>,
    /// Capabilities the target declared.
    pub capabilities: Vec<String>,
    /// Software string the target declared, if any.
    pub software: Option<String>,
}

/// Verdict counts.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// Number of results (cases × repetitions), `NOT_APPLICABLE` excluded.
    pub total: u64,
    /// PASS.
    pub pass: u64,
    /// FAIL.
    pub fail: u64,
    /// NON_STRICT.
    pub non_strict: u64,
    /// UNSUPPORTED.
    pub unsupported: u64,
    /// INFORMATIONAL.
    pub informational: u64,
    /// ERROR.
    pub error: u64,
    /// SKIPPED.
    pub skipped: u64,
    /// NOT_APPLICABLE: cases of the other role, not in `total`.
    #[serde(default)]
    pub not_applicable: u64,
}

impl Summary {
    /// Counts `results`; `NOT_APPLICABLE` results are counted apart and
    /// not in `total`.
    #[must_use]
    pub fn of<'a>(results: impl IntoIterator<Item = &'a CaseResult>) -> Self {
        let mut s = Summary::default();
        for r in results {
            if r.verdict == Verdict::NotApplicable {
                s.not_applicable += 1;
                continue;
            }
            s.total += 1;
            match r.verdict {
                Verdict::Pass => s.pass += 1,
                Verdict::Fail => s.fail += 1,
                Verdict::NonStrict => s.non_strict += 1,
                Verdict::Unsupported => s.unsupported += 1,
                Verdict::Informational => s.informational += 1,
                Verdict::Error => s.error += 1,
                Verdict::Skipped => s.skipped += 1,
                Verdict::NotApplicable => {}
            }
        }
        s
    }
}

/// A whole run: what `--json` writes and every other report reads.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// [`SUITE_VERSION`].
    pub suite_version: String,
    /// Wire protocol version the suite was written against.
    pub spec_version: u16,
    /// The target and what it declared.
    pub target: TargetInfo,
    /// The run id (`--run-id`, alias `--seed`): the seed of all of the run's
    /// randomness, random unless given, so a run can be replayed exactly.
    pub seed: u64,
    /// Whether `--strict` was given.
    pub strict: bool,
    /// Start of the run, RFC 3339 UTC.
    pub started_at: String,
    /// Wall time of the whole run, in milliseconds.
    pub duration_ms: u64,
    /// Verdict counts.
    pub summary: Summary,
    /// Per-case results, in registry order.
    pub results: Vec<CaseResult>,
}

impl Report {
    /// The MUST cases that ran (not SKIPPED or NOT_APPLICABLE) and did not pass, without an
    /// expected failure, one line each: `ID VERDICT: expected … — actual …`.
    #[must_use]
    pub fn must_not_passing(&self) -> Vec<String> {
        self.results
            .iter()
            .filter(|r| {
                r.case.level == Level::Must
                    && !matches!(
                        r.verdict,
                        Verdict::Pass | Verdict::Skipped | Verdict::NotApplicable
                    )
                    && r.expected_failure.is_none()
            })
            .map(|r| {
                format!(
                    "{} {}: expected {} — actual {}",
                    r.case.id,
                    r.verdict.as_str(),
                    r.expected,
                    r.actual
                )
            })
            .collect()
    }

    /// Whether the run failed (any FAIL or ERROR not covered by an expected failure).
    #[must_use]
    pub fn failed(&self) -> bool {
        self.results
            .iter()
            .any(|r| r.verdict.is_failure() && r.expected_failure.is_none())
    }
}
