//! Report formats: the console table (grouped by area, h2spec / Autobahn
//! style, readable in a CI log), JSON (`serde_json` of [`Report`]) and
//! JUnit XML (one testsuite per area). HTML is [`super::html::render`].

use std::collections::BTreeMap;
use std::fmt::Write as _;

use std::time::Duration;

use super::model::{CaseResult, Direction, Report, Summary, Verdict, MAX_FRAMES_PER_CASE};

fn areas(report: &Report) -> BTreeMap<&str, Vec<&CaseResult>> {
    let mut by: BTreeMap<&str, Vec<&CaseResult>> = BTreeMap::new();
    for r in &report.results {
        by.entry(&r.case.area).or_default().push(r);
    }
    by
}

/// The one-line summary.
#[must_use]
pub fn summary_line(report: &Report) -> String {
    let s = &report.summary;
    let xfail = report
        .results
        .iter()
        .filter(|r| r.expected_failure.is_some() && r.verdict.is_failure())
        .count();
    format!(
        "{} results: {} passed, {} failed, {} non-strict, {} unsupported, {} informational, {} errors, {} skipped ({} expected failures; {} not applicable, not counted) in {} ms — {}",
        s.total,
        s.pass,
        s.fail,
        s.non_strict,
        s.unsupported,
        s.informational,
        s.error,
        s.skipped,
        xfail,
        s.not_applicable,
        report.duration_ms,
        if report.failed() { "FAILED" } else { "OK" }
    )
}

/// One line for an area: `MBX    12/12 pass, 1 skip` (counts of the
/// verdicts that occur; `NOT_APPLICABLE` as `n/a`), or `NODE   n/a (29
/// cases of the other role)` when no case applies; with the time when given.
#[must_use]
pub fn area_line(area: &str, s: &Summary, elapsed: Option<Duration>) -> String {
    let mut line = format!("{area:<5} ");
    if s.total == 0 {
        let _ = write!(
            line,
            "n/a ({} case{} of the other role)",
            s.not_applicable,
            if s.not_applicable == 1 { "" } else { "s" }
        );
    } else {
        let _ = write!(line, "{}/{} pass", s.pass, s.total);
        for (n, word) in [
            (s.fail, "FAIL"),
            (s.error, "ERROR"),
            (s.non_strict, "non-strict"),
            (s.informational, "informational"),
            (s.unsupported, "unsupported"),
            (s.skipped, "skip"),
            (s.not_applicable, "n/a"),
        ] {
            if n > 0 {
                let _ = write!(line, ", {n} {word}");
            }
        }
    }
    if let Some(d) = elapsed {
        let _ = write!(line, " ({:.1} s)", d.as_secs_f64());
    }
    line
}

/// The console report.
#[must_use]
pub fn console(report: &Report, verbose: bool) -> String {
    let mut out = String::new();
    let t = &report.target;
    let _ = writeln!(
        out,
        "distsoc-conformance {} (spec v{}) — target {} role {} — version {:?} range {:?} — agent {} — run id {} (replay with --run-id){}",
        report.suite_version,
        report.spec_version,
        t.target,
        t.role.map_or("?".to_string(), |r| format!("{r:?}").to_lowercase()),
        t.version,
        t.versions,
        t.software.as_deref().unwrap_or("?"),
        report.seed,
        if report.strict { " — strict" } else { "" }
    );
    let _ = writeln!(out, "capabilities: {}", t.capabilities.join(", "));
    for (area, results) in areas(report) {
        let s = Summary::of(results.iter().copied());
        let _ = writeln!(out, "\n{}", area_line(area, &s, None));
        for r in results {
            if r.verdict == Verdict::NotApplicable && !verbose {
                continue;
            }
            let mark = match (r.verdict, &r.expected_failure) {
                (v, Some(_)) if v.is_failure() => "XFAIL",
                (Verdict::Pass, Some(_)) => "XPASS",
                (v, _) => v.as_str(),
            };
            let rep = if r.iteration > 0 {
                format!(" #{}", r.iteration)
            } else {
                String::new()
            };
            let _ = writeln!(
                out,
                "  {mark:<13} {:<12} {:<6} {:<8} {}{rep} ({} ms)",
                r.case.id,
                format!("{:?}", r.case.level).to_uppercase(),
                format!("{:?}", r.case.kind).to_lowercase(),
                r.case.title,
                r.duration_ms
            );
            let interesting = !matches!(
                r.verdict,
                Verdict::Pass | Verdict::Skipped | Verdict::Unsupported
            );
            if verbose || interesting {
                let _ = writeln!(out, "                expected: {}", r.expected);
                let _ = writeln!(out, "                actual:   {}", r.actual);
            }
            if interesting && r.verdict != Verdict::NotApplicable {
                frame_lines(&mut out, r);
            }
            if let Some(reason) = &r.expected_failure {
                if r.verdict == Verdict::Pass {
                    let _ = writeln!(out, "                listed as an expected failure but PASSES: remove it from the file ({reason})");
                } else {
                    let _ = writeln!(out, "                expected failure: {reason}");
                }
            }
        }
    }
    let _ = writeln!(out, "\n{}", summary_line(report));
    out
}

/// The re-run command and one line per recorded frame of `r`, indented
/// under its row (`→ conn 1 stream 0 +3 ms  Hello (0x00), 113 B`).
fn frame_lines(out: &mut String, r: &CaseResult) {
    const PAD: &str = "                ";
    if !r.rerun.is_empty() {
        let _ = writeln!(out, "{PAD}re-run:   {}", r.rerun);
    }
    if r.frames.is_empty() {
        return;
    }
    let _ = writeln!(out, "{PAD}frames:");
    for (i, f) in r.frames.iter().enumerate() {
        if r.frames_omitted > 0 && i == MAX_FRAMES_PER_CASE / 2 {
            let _ = writeln!(out, "{PAD}  … {} more (not kept)", r.frames_omitted);
        }
        let arrow = match f.dir {
            Direction::Sent => "\u{2192}",
            Direction::Received => "\u{2190}",
        };
        let mut place = String::new();
        if let Some(c) = f.conn {
            let _ = write!(place, "conn {c} ");
        }
        if let Some(st) = f.stream {
            let _ = write!(place, "stream {st} ");
        }
        let _ = write!(
            out,
            "{PAD}  {arrow} {place}+{} ms  {}, {} B",
            f.at_ms, f.message, f.len
        );
        if let Some(note) = &f.note {
            let _ = write!(out, " ({note})");
        }
        out.push('\n');
    }
}

/// Escapes text for XML attributes and content; characters XML 1.0 cannot
/// carry are replaced by U+FFFD.
#[must_use]
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// The JUnit XML report: one testsuite per area; FAIL as `failure`, ERROR
/// as `error`, SKIPPED and UNSUPPORTED as `skipped`; NON_STRICT,
/// INFORMATIONAL and expected failures pass with their text in `system-out`.
#[must_use]
pub fn junit(report: &Report) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let failures = |rs: &[&CaseResult], v: Verdict| {
        rs.iter()
            .filter(|r| r.verdict == v && r.expected_failure.is_none())
            .count()
    };
    // Cases of the other role are left out: they are not results.
    let all: Vec<&CaseResult> = report
        .results
        .iter()
        .filter(|r| r.verdict != Verdict::NotApplicable)
        .collect();
    let _ = writeln!(
        out,
        "<testsuites name=\"distsoc-conformance\" tests=\"{}\" failures=\"{}\" errors=\"{}\" time=\"{:.3}\">",
        all.len(),
        failures(&all, Verdict::Fail),
        failures(&all, Verdict::Error),
        report.duration_ms as f64 / 1000.0
    );
    for (area, mut results) in areas(report) {
        results.retain(|r| r.verdict != Verdict::NotApplicable);
        if results.is_empty() {
            continue;
        }
        let skipped = results
            .iter()
            .filter(|r| matches!(r.verdict, Verdict::Skipped | Verdict::Unsupported))
            .count();
        let time: u64 = results.iter().map(|r| r.duration_ms).sum();
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{skipped}\" time=\"{:.3}\">",
            xml_escape(area),
            results.len(),
            failures(&results, Verdict::Fail),
            failures(&results, Verdict::Error),
            time as f64 / 1000.0
        );
        for r in results {
            let name = if r.iteration > 0 {
                format!("{} {} #{}", r.case.id, r.case.title, r.iteration)
            } else {
                format!("{} {}", r.case.id, r.case.title)
            };
            let _ = write!(
                out,
                "    <testcase classname=\"distsoc.{}\" name=\"{}\" time=\"{:.3}\"",
                xml_escape(area),
                xml_escape(&name),
                r.duration_ms as f64 / 1000.0
            );
            let detail = format!(
                "{} ({:?}, {})\nrequirement: {}\nexpected: {}\nactual: {}",
                r.verdict.as_str(),
                r.case.level,
                r.case.spec_ref,
                r.case.requirement,
                r.expected,
                r.actual
            );
            let body = match (r.verdict, &r.expected_failure) {
                (v, Some(reason)) if v.is_failure() => Some(format!(
                    "      <system-out>{}</system-out>\n",
                    xml_escape(&format!("expected failure: {reason}\n{detail}"))
                )),
                (Verdict::Fail, None) => Some(format!(
                    "      <failure message=\"{}\" type=\"FAIL\">{}</failure>\n",
                    xml_escape(&r.actual),
                    xml_escape(&detail)
                )),
                (Verdict::Error, None) => Some(format!(
                    "      <error message=\"{}\" type=\"ERROR\">{}</error>\n",
                    xml_escape(&r.actual),
                    xml_escape(&detail)
                )),
                (Verdict::Skipped | Verdict::Unsupported, _) => Some(format!(
                    "      <skipped message=\"{}\"/>\n",
                    xml_escape(&format!("{}: {}", r.verdict.as_str(), r.actual))
                )),
                (Verdict::NonStrict | Verdict::Informational, _) => Some(format!(
                    "      <system-out>{}</system-out>\n",
                    xml_escape(&detail)
                )),
                _ => None,
            };
            match body {
                Some(b) => {
                    out.push_str(">\n");
                    out.push_str(&b);
                    out.push_str("    </testcase>\n");
                }
                None => out.push_str("/>\n"),
            }
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

/// The JSON report.
pub fn json(report: &Report) -> Result<String, serde_json::Error> {
    serde_json::to_string_pretty(report)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use crate::suite::model::{CaseInfo, Kind, Level, Role, Summary, TargetInfo};

    fn report() -> Report {
        let case = |id: &str, v: Verdict, x: Option<&str>| CaseResult {
            case: CaseInfo {
                id: id.into(),
                area: id.split('-').next().unwrap().into(),
                title: "a <title> & \"quotes\"".into(),
                requirement: "MUST \u{1} be".into(),
                spec_ref: "schema/README.md §2".into(),
                level: Level::Must,
                role: Role::Any,
                capability: Some("mailbox/1".into()),
                kind: Kind::Negative,
            },
            verdict: v,
            expected: "Error(malformed)".into(),
            actual: "got <b>".into(),
            duration_ms: 3,
            iteration: 0,
            expected_failure: x.map(str::to_string),
            rerun: String::new(),
            frames: Vec::new(),
            frames_omitted: 0,
        };
        let results = vec![
            case("FRM-2-001", Verdict::Pass, None),
            case("FRM-2-002", Verdict::Fail, None),
            case("FRM-2-003", Verdict::Fail, Some("known & tracked")),
            case("HS-1-001", Verdict::Error, None),
            case("HS-1-002", Verdict::Unsupported, None),
            case("HS-1-003", Verdict::Pass, Some("stale entry")),
        ];
        Report {
            suite_version: "0.1.0".into(),
            spec_version: 2,
            target: TargetInfo {
                target: "x@127.0.0.1:1".into(),
                ..TargetInfo::default()
            },
            seed: 7,
            strict: false,
            started_at: "2025-01-01T00:00:00Z".into(),
            duration_ms: 12,
            summary: Summary::of(&results),
            results,
        }
    }

    #[test]
    fn json_round_trip() {
        let r = report();
        let back: Report = serde_json::from_str(&json(&r).unwrap()).unwrap();
        assert_eq!(back, r);
        assert!(r.failed());
    }

    #[test]
    fn junit_escapes_and_classifies() {
        let x = junit(&report());
        assert!(x.contains("a &lt;title&gt; &amp; &quot;quotes&quot;"));
        assert!(!x.contains("<title>"));
        assert!(!x.contains('\u{1}'));
        assert!(x.contains("<failure message=\"got &lt;b&gt;\""));
        assert!(x.contains("<error message="));
        assert!(x.contains("<skipped message=\"UNSUPPORTED"));
        assert!(x.contains("expected failure: known &amp; tracked"));
        assert_eq!(x.matches("<failure ").count(), 1);
        assert_eq!(x.matches("<testsuite ").count(), 2);
        assert_eq!(xml_escape("a'b\u{0}"), "a&apos;b\u{fffd}");
    }

    #[test]
    fn not_applicable_is_left_out_of_counts() {
        let mut r = report();
        let mut na = r.results[0].clone();
        na.case.id = "NODE-4-001".into();
        na.case.area = "NODE".into();
        na.verdict = Verdict::NotApplicable;
        r.results.push(na);
        r.summary = Summary::of(&r.results);
        assert_eq!((r.summary.total, r.summary.not_applicable), (6, 1));
        assert_eq!(r.summary.skipped, 0);
        let x = junit(&r);
        assert!(!x.contains("NODE"), "{x}");
        let c = console(&r, false);
        assert!(c.contains("NODE  n/a (1 case of the other role)"), "{c}");
        assert!(c.contains("1 not applicable, not counted"));
        assert!(!c.contains("NODE-4-001"));
        let s = Summary::of(&r.results[..3]);
        assert_eq!(
            area_line("FRM", &s, Some(Duration::from_millis(1500))),
            "FRM   1/3 pass, 2 FAIL (1.5 s)"
        );
    }

    #[test]
    fn console_marks_expected_failures() {
        let mut rep = report();
        rep.results[1].rerun = "distsoc-conformance run --case FRM-2-002".into();
        rep.results[1].frames = vec![crate::suite::model::FrameRecord {
            dir: Direction::Sent,
            conn: Some(1),
            stream: Some(4),
            at_ms: 3,
            len: 65,
            hex: "00".into(),
            message: "Hello (0x00)".into(),
            decoded: None,
            note: None,
        }];
        let c = console(&rep, false);
        assert!(
            c.contains("re-run:   distsoc-conformance run --case FRM-2-002"),
            "{c}"
        );
        assert!(
            c.contains("\u{2192} conn 1 stream 4 +3 ms  Hello (0x00), 65 B"),
            "{c}"
        );
        assert!(c.contains("XFAIL"));
        assert!(c.contains("XPASS"));
        assert!(c.contains("remove it from the file"));
        assert!(c.contains("FAILED"));
    }
}
