//! The self-contained HTML report (`--html FILE`).
//!
//! [`render`] turns a [`Report`] into one HTML5 page that needs nothing but a
//! browser: the CSS is inline, a few lines of inline JavaScript add
//! "expand all / collapse all" and open a row when its anchor is followed, and
//! nothing is fetched (no fonts, no CDN, no images). Without JavaScript the page
//! still works: rows expand with `<details>`, and the verdict tiles of the
//! summary filter rows with CSS alone.
//!
//! Everything taken from the report is HTML-escaped ([`escape`]), including what
//! a (possibly hostile) target said about itself and what it sent back. Very
//! long free-text fields are cut at [`MAX_FIELD_BYTES`] (the JSON report keeps
//! them whole), and control characters are shown as visible symbols.
//!
//! # Stable hooks
//!
//! Tests and scripts may rely on these ids, classes and attributes:
//!
//! - `#outcome` (`data-failed="true|false"`) and `#run-info`, whose
//!   `dd[data-field=…]` hold `suite_version`, `spec_version`, `target`, `role`,
//!   `version`, `versions`, `roles`, `capabilities`, `software`, `seed`,
//!   `strict`, `started_at`, `duration`;
//! - `#summary` (`data-total`), with one `.count[data-verdict=V]` tile per
//!   verdict whose `.n` is the count and whose checkbox `#show-V` hides or shows
//!   that verdict's rows;
//! - `#failures` (`data-count`): FAIL and ERROR results, each `li` linking to
//!   its row; `#non-strict` likewise for NON_STRICT (only when there are some);
//! - `section.area[data-area=A]` (`id="area-A"`, `data-total`), with
//!   `.area-counts .chip[data-verdict=V][data-count=N]` for the non-zero verdicts;
//! - `details.result` rows with `data-case`, `data-iteration`, `data-verdict`,
//!   `data-level`, `data-kind` and (for expected failures) `data-xfail="true"`;
//!   their `id` is the anchor `CASE-ID-ITERATION` (e.g. `MBX-4.2-007-0`), other
//!   characters than `[A-Za-z0-9._:-]` replaced by `_` and `~2`, `~3`, …
//!   appended should two results still collide; inside, `.requirement`,
//!   `.expected`, `.actual` and `dd[data-field=…]` (`spec_ref`, `role`,
//!   `capability`, `iteration`, `expected_failure`);
//! - `script#report-js`, the page's only script.

use std::collections::{HashMap, HashSet};
use std::fmt::{self, Write as _};

use super::model::{CaseResult, Kind, Level, Report, Role, Summary, Verdict};

/// Free-text fields (expected, actual, reasons, declared strings) longer than
/// this many bytes are cut in the page; the JSON report keeps them whole.
pub const MAX_FIELD_BYTES: usize = 16 * 1024;

/// Every verdict, in the order the report shows them.
const VERDICTS: [Verdict; 8] = [
    Verdict::Pass,
    Verdict::Fail,
    Verdict::NonStrict,
    Verdict::Unsupported,
    Verdict::Informational,
    Verdict::Error,
    Verdict::Skipped,
    Verdict::NotApplicable,
];

/// Ids the page uses itself; data-derived ids never take these.
const FIXED_IDS: [&str; 11] = [
    "top",
    "outcome",
    "run-info",
    "summary",
    "tools",
    "expand-all",
    "collapse-all",
    "failures",
    "non-strict",
    "areas",
    "report-js",
];

/// Renders `report` as one self-contained HTML page.
#[must_use]
pub fn render(report: &Report) -> String {
    let mut out = String::with_capacity(16 * 1024 + report.results.len() * 1024);
    // Writing into a `String` cannot fail.
    if write_page(&mut out, report).is_err() {
        out.clear();
    }
    out
}

/// Escapes `s` for use as HTML text or as a double- or single-quoted attribute
/// value: `& < > " '` become character references, and control characters
/// (which HTML does not allow) become visible symbols: C0 controls their
/// Unicode "control pictures" (`␛` for ESC), DEL `␡`, C1 controls and
/// noncharacters U+FFFD. Tab, line feed and carriage return are kept.
#[must_use]
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + s.len() / 8);
    escape_into(&mut out, s);
    out
}

fn escape_into(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\t' | '\n' | '\r' => out.push(c),
            '\0'..='\u{1f}' => {
                out.push(char::from_u32(0x2400 + u32::from(c)).unwrap_or('\u{fffd}'))
            }
            '\u{7f}' => out.push('\u{2421}'),
            '\u{80}'..='\u{9f}' => out.push('\u{fffd}'),
            c if is_noncharacter(c) => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
}

fn is_noncharacter(c: char) -> bool {
    let u = u32::from(c);
    (0xfdd0..=0xfdef).contains(&u) || u & 0xfffe == 0xfffe
}

/// `s` escaped, cut at [`MAX_FIELD_BYTES`] with a note saying how much was left out.
fn escape_clipped(out: &mut String, s: &str) {
    if s.len() <= MAX_FIELD_BYTES {
        escape_into(out, s);
        return;
    }
    let mut end = MAX_FIELD_BYTES;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    escape_into(out, &s[..end]);
    out.push_str("<span class=\"clipped\">… [");
    out.push_str(&(s.len() - end).to_string());
    out.push_str(" more bytes; see the JSON report]</span>");
}

/// A string usable in an `id` and in a `#fragment` without encoding.
fn id_token(s: &str) -> String {
    let t: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if t.is_empty() {
        "_".to_owned()
    } else {
        t
    }
}

/// Hands out unique element ids.
struct Ids(HashSet<String>);

impl Ids {
    fn new() -> Self {
        let mut set = HashSet::new();
        for id in FIXED_IDS {
            set.insert(id.to_owned());
        }
        for v in VERDICTS {
            set.insert(show_id(v));
        }
        Ids(set)
    }

    fn claim(&mut self, base: String) -> String {
        if self.0.insert(base.clone()) {
            return base;
        }
        let mut n = 2u64;
        loop {
            let candidate = format!("{base}~{n}");
            if self.0.insert(candidate.clone()) {
                return candidate;
            }
            n += 1;
        }
    }
}

fn show_id(v: Verdict) -> String {
    format!("show-{}", v.as_str())
}

fn slot(v: Verdict) -> usize {
    match v {
        Verdict::Pass => 0,
        Verdict::Fail => 1,
        Verdict::NonStrict => 2,
        Verdict::Unsupported => 3,
        Verdict::Informational => 4,
        Verdict::Error => 5,
        Verdict::Skipped => 6,
        Verdict::NotApplicable => 7,
    }
}

fn class(v: Verdict) -> &'static str {
    match v {
        Verdict::Pass => "v-pass",
        Verdict::Fail => "v-fail",
        Verdict::NonStrict => "v-non-strict",
        Verdict::Unsupported => "v-unsupported",
        Verdict::Informational => "v-informational",
        Verdict::Error => "v-error",
        Verdict::Skipped => "v-skipped",
        Verdict::NotApplicable => "v-na",
    }
}

fn meaning(v: Verdict) -> &'static str {
    match v {
        Verdict::Pass => "The target behaved as the spec requires.",
        Verdict::Fail => "A MUST (or, with --strict, a SHOULD) requirement is violated.",
        Verdict::NonStrict => "A SHOULD requirement is not met.",
        Verdict::Unsupported => "The target does not declare the capability the case needs.",
        Verdict::Informational => "Reported for information (MAY cases, observed values).",
        Verdict::Error => "The suite could not run the case.",
        Verdict::Skipped => "Not run: the case needs state the suite cannot create on this target.",
        Verdict::NotApplicable => "A case for the other role; not run, not counted in the totals.",
    }
}

fn level_str(l: Level) -> &'static str {
    match l {
        Level::Must => "MUST",
        Level::Should => "SHOULD",
        Level::May => "MAY",
    }
}

fn kind_str(k: Kind) -> &'static str {
    match k {
        Kind::Positive => "positive",
        Kind::Negative => "negative",
        Kind::Limit => "limit",
        Kind::Vector => "vector",
    }
}

fn role_str(r: Role) -> &'static str {
    match r {
        Role::Node => "node",
        Role::Anchor => "anchor",
        Role::Any => "any",
    }
}

/// `1234` → `1.23 s`; `950` → `950 ms`; `125000` → `2 min 5 s`.
fn fmt_ms(ms: u64) -> String {
    if ms < 1_000 {
        format!("{ms} ms")
    } else if ms < 60_000 {
        format!("{}.{:02} s", ms / 1_000, (ms % 1_000) / 10)
    } else if ms < 3_600_000 {
        format!("{} min {} s", ms / 60_000, (ms % 60_000) / 1_000)
    } else {
        format!("{} h {} min", ms / 3_600_000, (ms % 3_600_000) / 60_000)
    }
}

fn counts<'a>(results: impl IntoIterator<Item = &'a CaseResult>) -> [u64; 8] {
    let mut c = [0u64; 8];
    for r in results {
        c[slot(r.verdict)] += 1;
    }
    c
}

fn summary_counts(s: &Summary) -> [u64; 8] {
    [
        s.pass,
        s.fail,
        s.non_strict,
        s.unsupported,
        s.informational,
        s.error,
        s.skipped,
        s.not_applicable,
    ]
}

/// Results that count (all but `NOT_APPLICABLE`).
fn applicable(c: &[u64; 8]) -> u64 {
    c.iter().sum::<u64>() - c[slot(Verdict::NotApplicable)]
}

/// What the page needs to know about each result besides the result itself.
struct Row<'a> {
    r: &'a CaseResult,
    anchor: String,
    /// How many results the report holds for this case id (`--repeat`).
    runs: u32,
}

fn write_page(out: &mut String, report: &Report) -> fmt::Result {
    let mut ids = Ids::new();
    let mut runs: HashMap<&str, u32> = HashMap::new();
    for r in &report.results {
        *runs.entry(r.case.id.as_str()).or_insert(0) += 1;
    }
    let rows: Vec<Row<'_>> = report
        .results
        .iter()
        .map(|r| Row {
            r,
            anchor: ids.claim(format!("{}-{}", id_token(&r.case.id), r.iteration)),
            runs: runs.get(r.case.id.as_str()).copied().unwrap_or(1),
        })
        .collect();

    // Areas in order of first appearance (the registry's order).
    let mut areas: Vec<(&str, String, Vec<&Row<'_>>)> = Vec::new();
    let mut area_index: HashMap<&str, usize> = HashMap::new();
    for row in &rows {
        let area = row.r.case.area.as_str();
        let i = match area_index.get(area) {
            Some(&i) => i,
            None => {
                let id = ids.claim(format!("area-{}", id_token(area)));
                areas.push((area, id, Vec::new()));
                area_index.insert(area, areas.len() - 1);
                areas.len() - 1
            }
        };
        areas[i].2.push(row);
    }

    let total = counts(&report.results);
    let failures: Vec<&Row<'_>> = rows.iter().filter(|r| r.r.verdict.is_failure()).collect();
    let unexpected = failures
        .iter()
        .filter(|r| r.r.expected_failure.is_none())
        .count();
    let non_strict: Vec<&Row<'_>> = rows
        .iter()
        .filter(|r| r.r.verdict == Verdict::NonStrict)
        .collect();
    let failed = report.failed();

    // Head.
    out.push_str(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"color-scheme\" content=\"light dark\">\n\
         <meta name=\"generator\" content=\"distsoc-conformance ",
    );
    escape_into(out, &report.suite_version);
    out.push_str("\">\n<title>distsoc conformance: ");
    out.push_str(if failed { "FAIL" } else { "PASS" });
    out.push_str(" \u{2014} ");
    escape_clipped(out, &report.target.target);
    out.push_str("</title>\n<style>\n");
    out.push_str(CSS);
    for v in VERDICTS {
        writeln!(
            out,
            "body:has(#{id}:not(:checked)) .result[data-verdict=\"{v}\"]{{display:none}}",
            id = show_id(v),
            v = v.as_str()
        )?;
    }
    out.push_str("</style>\n</head>\n<body>\n");

    // Header: the run.
    out.push_str("<header id=\"top\">\n<h1>distsoc conformance report</h1>\n");
    write!(
        out,
        "<p id=\"outcome\" class=\"outcome {}\" data-failed=\"{failed}\">",
        if failed { "bad" } else { "good" }
    )?;
    let expected_failures = failures.len() - unexpected;
    if failed {
        write!(
            out,
            "<strong>FAILED</strong> \u{2014} {unexpected} unexpected failure{}",
            plural(unexpected)
        )?;
    } else {
        out.push_str("<strong>PASSED</strong> \u{2014} no unexpected failures");
    }
    if expected_failures > 0 {
        write!(out, " ({expected_failures} expected)")?;
    }
    let counted = applicable(&total) as usize;
    write!(out, "; {counted} result{}", plural(counted))?;
    let na = total[slot(Verdict::NotApplicable)];
    if na > 0 {
        write!(
            out,
            " ({na} case{} of the other role not applicable)",
            plural(na as usize)
        )?;
    }
    out.push_str(".</p>\n");

    out.push_str("<dl id=\"run-info\">\n");
    let t = &report.target;
    field(out, "Target", "target", |o| {
        o.push_str("<code class=\"u\">");
        escape_clipped(o, &t.target);
        o.push_str("</code>");
    });
    field(out, "Role", "role", |o| {
        o.push_str(t.role.map_or("\u{2014}", role_str));
    });
    field(out, "Negotiated version", "version", |o| match t.version {
        Some(v) => o.push_str(&v.to_string()),
        None => o.push('\u{2014}'),
    });
    field(out, "Declared versions", "versions", |o| match t.versions {
        Some((lo, hi)) => o.push_str(&format!("{lo}\u{2013}{hi}")),
        None => o.push('\u{2014}'),
    });
    field(out, "Declared roles", "roles", |o| chips(o, &t.roles));
    field(out, "Declared capabilities", "capabilities", |o| {
        chips(o, &t.capabilities);
    });
    field(out, "Software", "software", |o| match &t.software {
        Some(s) => {
            o.push_str("<span class=\"u\">");
            escape_clipped(o, s);
            o.push_str("</span>");
        }
        None => o.push('\u{2014}'),
    });
    field(out, "Suite version", "suite_version", |o| {
        escape_into(o, &report.suite_version);
    });
    field(out, "Spec version", "spec_version", |o| {
        o.push_str(&report.spec_version.to_string());
    });
    field(out, "Run id", "seed", |o| {
        o.push_str("<code>");
        o.push_str(&report.seed.to_string());
        o.push_str("</code>");
    });
    field(out, "Strict", "strict", |o| {
        o.push_str(if report.strict { "yes" } else { "no" });
    });
    field(out, "Started", "started_at", |o| {
        escape_into(o, &report.started_at);
    });
    field(out, "Duration", "duration", |o| {
        o.push_str(&fmt_ms(report.duration_ms));
    });
    out.push_str("</dl>\n</header>\n<main>\n");

    // Summary bar and verdict tiles (the tiles' checkboxes filter rows).
    write!(
        out,
        "<section id=\"summary\" aria-label=\"Summary\" data-total=\"{counted}\">\n<div class=\"bar\" aria-hidden=\"true\">"
    )?;
    for v in VERDICTS
        .into_iter()
        .filter(|v| *v != Verdict::NotApplicable)
    {
        let n = total[slot(v)];
        if n > 0 {
            write!(
                out,
                "<span class=\"seg {}\" style=\"flex-grow:{n}\" title=\"{n} {}\"></span>",
                class(v),
                v.as_str()
            )?;
        }
    }
    out.push_str("</div>\n<ul class=\"counts\">\n");
    for v in VERDICTS {
        let n = total[slot(v)];
        writeln!(
            out,
            "<li class=\"count {c}{z}\" data-verdict=\"{v}\" title=\"{m} Untick to hide these rows.\">\
             <label><input type=\"checkbox\" id=\"{id}\"{on}> \
             <span class=\"n\">{n}</span> <span class=\"name\">{v}</span></label></li>",
            c = class(v),
            z = if n == 0 { " zero" } else { "" },
            v = v.as_str(),
            m = meaning(v),
            id = show_id(v),
            // Rows of the other role are hidden until asked for.
            on = if v == Verdict::NotApplicable { "" } else { " checked" },
        )?;
    }
    writeln!(
        out,
        "<li class=\"count total\" title=\"Every result but NOT_APPLICABLE\"><span class=\"n\">{counted}</span> <span class=\"name\">TOTAL</span></li>\n</ul>"
    )?;
    if summary_counts(&report.summary) != total || report.summary.total != counted as u64 {
        out.push_str(
            "<p class=\"warn\" id=\"summary-mismatch\">The report's stored summary does not \
             match its results; the counts above are recounted from the results.</p>\n",
        );
    }
    out.push_str(
        "<div id=\"tools\" hidden><button type=\"button\" id=\"expand-all\">Expand all</button> \
         <button type=\"button\" id=\"collapse-all\">Collapse all</button></div>\n</section>\n",
    );

    // Failures first.
    writeln!(
        out,
        "<section id=\"failures\" class=\"attention\" data-count=\"{}\">",
        failures.len()
    )?;
    if failures.is_empty() {
        out.push_str("<h2>Failures</h2>\n<p class=\"none\">No failures.</p>\n");
    } else {
        writeln!(out, "<h2>Failures ({})</h2>\n<ol>", failures.len())?;
        for row in &failures {
            attention_item(out, row)?;
        }
        out.push_str("</ol>\n");
    }
    out.push_str("</section>\n");
    if !non_strict.is_empty() {
        writeln!(
            out,
            "<section id=\"non-strict\" class=\"attention\" data-count=\"{}\">\n\
             <h2>Not strictly conforming ({})</h2>\n<ol>",
            non_strict.len(),
            non_strict.len()
        )?;
        for row in &non_strict {
            attention_item(out, row)?;
        }
        out.push_str("</ol>\n</section>\n");
    }

    // Table of areas.
    if areas.is_empty() {
        out.push_str("<p class=\"none\">No results.</p>\n");
    } else {
        out.push_str("<nav id=\"areas\" aria-label=\"Areas\">\n<h2>Areas</h2>\n<ul>\n");
        for (area, id, area_rows) in &areas {
            let c = counts(area_rows.iter().map(|row| row.r));
            let bad = c[slot(Verdict::Fail)] + c[slot(Verdict::Error)];
            write!(out, "<li><a href=\"#{id}\">")?;
            escape_into(out, area);
            if applicable(&c) == 0 {
                out.push_str("</a> <span class=\"muted\">n/a</span>");
            } else {
                write!(out, "</a> <span class=\"muted\">{}</span>", applicable(&c))?;
            }
            if bad > 0 {
                write!(out, " <span class=\"badge v-fail\">{bad} failed</span>")?;
            }
            out.push_str("</li>\n");
        }
        out.push_str("</ul>\n</nav>\n");
    }

    // One section per area.
    for (area, id, area_rows) in &areas {
        let c = counts(area_rows.iter().map(|row| row.r));
        let n_app = applicable(&c) as usize;
        let n_na = c[slot(Verdict::NotApplicable)];
        write!(
            out,
            "<section class=\"area\" id=\"{id}\" data-area=\"{}\" data-total=\"{n_app}\" data-not-applicable=\"{n_na}\">\n<h2><a href=\"#{id}\">",
            escape(area),
        )?;
        escape_into(out, area);
        if n_app == 0 {
            writeln!(
                out,
                "</a> <span class=\"muted\">n/a \u{2014} {n_na} case{} of the other role</span></h2>\n\
                 <p class=\"none na-note\">No case of this area applies to a target of this role; \
                 tick NOT_APPLICABLE above to list them.</p>",
                plural(n_na as usize)
            )?;
        } else {
            writeln!(
                out,
                "</a> <span class=\"muted\">{n_app} result{}</span></h2>",
                plural(n_app)
            )?;
        }
        out.push_str("<ul class=\"area-counts\">");
        for v in VERDICTS {
            let n = c[slot(v)];
            if n > 0 {
                write!(
                    out,
                    "<li class=\"chip {}\" data-verdict=\"{v}\" data-count=\"{n}\"><span class=\"n\">{n}</span> {v}</li>",
                    class(v),
                    v = v.as_str()
                )?;
            }
        }
        out.push_str(
            "</ul>\n<div class=\"results\">\n<div class=\"thead\" aria-hidden=\"true\">\
             <span>Case</span><span>Title</span><span>Level</span><span>Kind</span>\
             <span>Verdict</span><span class=\"num\">Time</span></div>\n",
        );
        for row in area_rows {
            result_row(out, row)?;
        }
        out.push_str("</div>\n</section>\n");
    }

    out.push_str("</main>\n<footer>Generated by distsoc-conformance ");
    escape_into(out, &report.suite_version);
    writeln!(
        out,
        " for wire protocol version {} \u{b7} <a href=\"#top\">Back to top</a></footer>",
        report.spec_version
    )?;
    out.push_str("<script id=\"report-js\">");
    out.push_str(JS);
    out.push_str("</script>\n</body>\n</html>\n");
    Ok(())
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// One `<div><dt>…</dt><dd data-field=…>…</dd></div>` of the run information.
fn field(out: &mut String, label: &str, key: &str, value: impl FnOnce(&mut String)) {
    out.push_str("<div><dt>");
    out.push_str(label);
    out.push_str("</dt><dd data-field=\"");
    out.push_str(key);
    out.push_str("\">");
    value(out);
    out.push_str("</dd></div>\n");
}

fn chips(out: &mut String, items: &[String]) {
    if items.is_empty() {
        out.push_str("<span class=\"muted\">none</span>");
        return;
    }
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str("<code class=\"tag u\">");
        escape_clipped(out, item);
        out.push_str("</code>");
    }
}

fn badge(out: &mut String, v: Verdict) -> fmt::Result {
    write!(
        out,
        "<span class=\"badge {}\" title=\"{}\">{}</span>",
        class(v),
        meaning(v),
        v.as_str()
    )
}

fn attention_item(out: &mut String, row: &Row<'_>) -> fmt::Result {
    let r = row.r;
    write!(
        out,
        "<li data-verdict=\"{}\"><a href=\"#{}\"><code>",
        r.verdict.as_str(),
        row.anchor
    )?;
    escape_into(out, &r.case.id);
    out.push_str("</code>");
    if row.runs > 1 {
        write!(out, " <span class=\"iter\">#{}</span>", r.iteration)?;
    }
    out.push_str("</a> ");
    badge(out, r.verdict)?;
    out.push_str(" <span class=\"u\">");
    escape_into(out, &r.case.title);
    out.push_str("</span>");
    if let Some(reason) = &r.expected_failure {
        out.push_str(" <span class=\"xfail\">expected failure: <span class=\"u\">");
        escape_clipped(out, reason);
        out.push_str("</span></span>");
    }
    out.push_str("</li>\n");
    Ok(())
}

fn result_row(out: &mut String, row: &Row<'_>) -> fmt::Result {
    let r = row.r;
    let c = &r.case;
    let xfail = r.expected_failure.is_some();
    write!(
        out,
        "<details class=\"result {cls}\" id=\"{id}\" data-case=\"{case}\" data-iteration=\"{it}\" \
         data-verdict=\"{v}\" data-level=\"{lvl}\" data-kind=\"{kind}\"{x}>\n<summary>",
        cls = class(r.verdict),
        id = row.anchor,
        case = escape(&c.id),
        it = r.iteration,
        v = r.verdict.as_str(),
        lvl = level_str(c.level),
        kind = kind_str(c.kind),
        x = if xfail { " data-xfail=\"true\"" } else { "" },
    )?;
    out.push_str("<span class=\"c-id\"><code>");
    escape_into(out, &c.id);
    out.push_str("</code>");
    if row.runs > 1 {
        write!(out, " <span class=\"iter\">#{}</span>", r.iteration)?;
    }
    out.push_str("</span><span class=\"c-title u\">");
    escape_into(out, &c.title);
    write!(
        out,
        "</span><span class=\"c-level lvl-{lc}\">{uc}</span><span class=\"c-kind\">{k}</span><span class=\"c-verdict\">",
        lc = level_str(c.level).to_ascii_lowercase(),
        uc = level_str(c.level),
        k = kind_str(c.kind),
    )?;
    badge(out, r.verdict)?;
    if xfail {
        out.push_str(
            " <span class=\"xfail\" title=\"Listed in the expected-failures file\">expected</span>",
        );
    }
    writeln!(
        out,
        "</span><span class=\"c-dur num\">{}</span></summary>",
        fmt_ms(r.duration_ms)
    )?;

    out.push_str("<div class=\"body\">\n<blockquote class=\"requirement u\">");
    escape_into(out, &c.requirement);
    out.push_str("</blockquote>\n<dl class=\"facts\">\n");
    field(out, "Spec", "spec_ref", |o| {
        o.push_str("<span class=\"u\">");
        escape_into(o, &c.spec_ref);
        o.push_str("</span>");
    });
    field(out, "Role", "role", |o| o.push_str(role_str(c.role)));
    field(out, "Capability", "capability", |o| match &c.capability {
        Some(cap) => {
            o.push_str("<code class=\"tag u\">");
            escape_into(o, cap);
            o.push_str("</code>");
        }
        None => o.push_str("<span class=\"muted\">none</span>"),
    });
    if row.runs > 1 || r.iteration > 0 {
        field(out, "Iteration", "iteration", |o| {
            o.push_str(&format!(
                "{} <span class=\"muted\">(0-based; {} runs of this case)</span>",
                r.iteration, row.runs
            ));
        });
    }
    if let Some(reason) = &r.expected_failure {
        field(out, "Expected failure", "expected_failure", |o| {
            o.push_str("<span class=\"u\">");
            escape_clipped(o, reason);
            o.push_str("</span>");
        });
    }
    // The parser drops one newline right after `<pre>`: emit one so a leading
    // newline of the text survives.
    out.push_str("</dl>\n<div class=\"ea\">\n<div><div class=\"label\">Expected</div><pre class=\"expected u\">\n");
    escape_clipped(out, &r.expected);
    out.push_str("</pre></div>\n<div><div class=\"label\">Actual</div><pre class=\"actual u\">\n");
    escape_clipped(out, &r.actual);
    out.push_str("</pre></div>\n</div>\n");
    if !r.rerun.is_empty() {
        out.push_str("<div class=\"label\">Re-run this case</div><pre class=\"rerun u\"><code>");
        escape_clipped(out, &r.rerun);
        out.push_str("</code></pre>\n");
    }
    frames(out, r)?;
    write!(
        out,
        "<p class=\"permalink\"><a href=\"#{}\">Link to this result</a></p>\n</div>\n</details>\n",
        row.anchor
    )?;
    Ok(())
}

/// The frames of a result: one `<details class="frame">` each, with the
/// direction, connection, stream, message name, the decoded message and
/// the hex (the first [`crate::suite::model::MAX_FRAME_BYTES`] bytes).
fn frames(out: &mut String, r: &CaseResult) -> fmt::Result {
    if r.frames.is_empty() {
        return Ok(());
    }
    write!(
        out,
        "<div class=\"frames\" data-count=\"{}\" data-omitted=\"{}\"><div class=\"label\">Frames ({}",
        r.frames.len(),
        r.frames_omitted,
        r.frames.len()
    )?;
    if r.frames_omitted > 0 {
        write!(
            out,
            "; {} more between the first and the last {} not kept",
            r.frames_omitted,
            crate::suite::model::MAX_FRAMES_PER_CASE / 2
        )?;
    }
    out.push_str(")</div>\n");
    for f in &r.frames {
        let dir = match f.dir {
            crate::suite::model::Direction::Sent => "sent",
            crate::suite::model::Direction::Received => "received",
        };
        write!(
            out,
            "<details class=\"frame {dir}\" data-dir=\"{dir}\"><summary><span class=\"dir\">{}</span> ",
            if dir == "sent" { "\u{2192} sent" } else { "\u{2190} received" }
        )?;
        write!(out, "<span class=\"muted\">+{} ms", f.at_ms)?;
        if let Some(c) = f.conn {
            write!(out, " conn {c}")?;
        }
        if let Some(st) = f.stream {
            write!(out, " stream {st}")?;
        }
        write!(out, " \u{b7} {} B</span> <span class=\"msg u\">", f.len)?;
        escape_clipped(out, &f.message);
        out.push_str("</span>");
        if let Some(note) = &f.note {
            out.push_str(" <span class=\"note u\">");
            escape_clipped(out, note);
            out.push_str("</span>");
        }
        out.push_str("</summary>\n");
        if let Some(d) = &f.decoded {
            out.push_str("<pre class=\"decoded u\">\n");
            escape_clipped(out, d);
            out.push_str("</pre>\n");
        }
        if !f.hex.is_empty() {
            out.push_str("<pre class=\"hex\">\n");
            for (i, line) in f.hex.as_bytes().chunks(64).enumerate() {
                write!(out, "{:06x}  ", i * 32)?;
                for (j, pair) in line.chunks(2).enumerate() {
                    if j > 0 {
                        out.push(' ');
                    }
                    // Hex digits only in our reports; escaped all the same.
                    escape_into(out, &String::from_utf8_lossy(pair));
                }
                out.push('\n');
            }
            let kept = f.hex.len() / 2;
            if f.len > kept as u64 {
                write!(out, "\u{2026} {} more bytes not kept", f.len - kept as u64)?;
            }
            out.push_str("</pre>\n");
        }
        out.push_str("</details>\n");
    }
    out.push_str("</div>\n");
    Ok(())
}

const CSS: &str = r#":root{color-scheme:light dark;--bg:#fff;--fg:#1f2328;--muted:#59636e;--line:#d1d9e0;--panel:#f6f8fa;--hover:#eef1f4;--link:#0969da;--on:#fff;
--pass:#1a7f37;--fail:#cf222e;--non-strict:#9a6700;--unsupported:#1b7c83;--informational:#0969da;--error:#8250df;--skipped:#6e7781;--na:#afb8c1}
@media (prefers-color-scheme:dark){:root{--bg:#0d1117;--fg:#e6edf3;--muted:#9198a1;--line:#3d444d;--panel:#151b23;--hover:#1c2330;--link:#4493f8;--on:#0d1117;
--pass:#3fb950;--fail:#f85149;--non-strict:#d29922;--unsupported:#39c5cf;--informational:#58a6ff;--error:#bc8cff;--skipped:#8b949e;--na:#484f58}}
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%;text-size-adjust:100%}
body{margin:0 auto;max-width:1240px;padding:1rem;background:var(--bg);color:var(--fg);font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
a{color:var(--link)}
code,pre{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,"Liberation Mono",monospace;font-size:.92em}
h1{font-size:1.5rem;margin:.2rem 0 .5rem}
h2{font-size:1.15rem;margin:1.4rem 0 .5rem}
h2 a{color:inherit;text-decoration:none}
.muted{color:var(--muted);font-weight:normal}
.u{unicode-bidi:isolate;overflow-wrap:anywhere}
.outcome{margin:.3rem 0 .8rem;padding:.5rem .75rem;border-radius:6px;border-left:6px solid}
.outcome.good{border-color:var(--pass);background:color-mix(in srgb,var(--pass) 12%,transparent)}
.outcome.bad{border-color:var(--fail);background:color-mix(in srgb,var(--fail) 12%,transparent)}
#run-info{display:grid;grid-template-columns:repeat(auto-fill,minmax(15rem,1fr));gap:.35rem 1.2rem;margin:0;padding:.75rem;background:var(--panel);border:1px solid var(--line);border-radius:6px}
#run-info div{min-width:0}
#run-info dt{color:var(--muted);font-size:.8rem;text-transform:uppercase;letter-spacing:.03em}
#run-info dd{margin:0;overflow-wrap:anywhere}
.tag{display:inline-block;padding:0 .35rem;margin:.05rem 0;border:1px solid var(--line);border-radius:4px;background:var(--bg)}
#summary{margin-top:1rem}
.bar{display:flex;height:14px;border-radius:7px;overflow:hidden;background:var(--line)}
.seg{display:block;flex-basis:0;min-width:4px}
.seg.v-pass{background:var(--pass)}.seg.v-fail{background:var(--fail)}.seg.v-non-strict{background:var(--non-strict)}.seg.v-unsupported{background:var(--unsupported)}
.seg.v-informational{background:var(--informational)}.seg.v-error{background:var(--error)}.seg.v-skipped{background:var(--skipped)}
.counts{display:flex;flex-wrap:wrap;gap:.5rem;list-style:none;margin:.6rem 0;padding:0}
.count{border:1px solid var(--line);border-left:6px solid var(--c,var(--line));border-radius:6px;background:var(--panel);padding:.3rem .6rem;min-width:7.5rem}
.count label{cursor:pointer;display:flex;align-items:baseline;gap:.35rem}
.count input{margin:0;accent-color:var(--c)}
.count .n{font-size:1.25rem;font-weight:700;color:var(--c,var(--fg))}
.count .name{font-size:.8rem;color:var(--muted)}
.count.zero{opacity:.55}
.count:has(input:not(:checked)){opacity:.35;text-decoration:line-through}
.v-pass{--c:var(--pass)}.v-fail{--c:var(--fail)}.v-non-strict{--c:var(--non-strict)}.v-unsupported{--c:var(--unsupported)}
.v-informational{--c:var(--informational)}.v-error{--c:var(--error)}.v-skipped{--c:var(--skipped)}.v-na{--c:var(--na)}
.badge{display:inline-block;padding:.05rem .45rem;border-radius:999px;background:var(--c,var(--skipped));color:var(--on);font-size:.75rem;font-weight:700;letter-spacing:.02em;white-space:nowrap}
.xfail{display:inline-block;font-size:.75rem;color:var(--muted);border:1px dashed var(--muted);border-radius:6px;padding:0 .4rem}
.iter{color:var(--muted);font-size:.85em}
.warn{color:var(--fail)}
#tools{margin:.2rem 0}
button{font:inherit;color:inherit;background:var(--panel);border:1px solid var(--line);border-radius:6px;padding:.2rem .7rem;cursor:pointer}
.attention{border:1px solid var(--line);border-left:6px solid var(--fail);border-radius:6px;padding:.1rem .9rem .4rem;margin-top:1rem}
#non-strict{border-left-color:var(--non-strict)}
#failures[data-count="0"]{border-left-color:var(--pass)}
.attention h2{margin:.6rem 0 .3rem}
.attention ol{margin:.2rem 0;padding-left:1.5rem}
.attention li{margin:.2rem 0}
.none{color:var(--muted)}
#areas ul{display:flex;flex-wrap:wrap;gap:.4rem 1.2rem;list-style:none;padding:0;margin:0}
.area{margin-top:1.5rem}
.area h2{border-bottom:1px solid var(--line);padding-bottom:.2rem}
.area-counts{display:flex;flex-wrap:wrap;gap:.35rem;list-style:none;padding:0;margin:.3rem 0 .6rem}
.chip{font-size:.8rem;border:1px solid var(--c);border-radius:999px;padding:0 .5rem;color:var(--c)}
.chip .n{font-weight:700}
.results{border:1px solid var(--line);border-radius:6px;overflow:hidden}
.thead,.result>summary{display:grid;grid-template-columns:minmax(9rem,12rem) minmax(0,1fr) 4.5rem 5.5rem minmax(8rem,11rem) 5.5rem;gap:.6rem;align-items:center;padding:.35rem .6rem}
.thead{background:var(--panel);color:var(--muted);font-size:.8rem;font-weight:600;text-transform:uppercase;letter-spacing:.03em}
.result{border-top:1px solid var(--line);border-left:4px solid var(--c)}
.result>summary{cursor:pointer;list-style:none}
.result>summary::-webkit-details-marker{display:none}
.result>summary:hover{background:var(--hover)}
.result>summary:focus-visible{outline:2px solid var(--link);outline-offset:-2px}
.c-id::before{content:"\25B8";display:inline-block;width:1em;color:var(--muted)}
.result[open] .c-id::before{content:"\25BE"}
.c-id,.c-title{min-width:0;overflow-wrap:anywhere}
.num{text-align:right;font-variant-numeric:tabular-nums}
.c-level,.c-kind{font-size:.85em;color:var(--muted)}
.lvl-must{font-weight:700;color:var(--fg)}
.result:target>summary,.result:target{background:color-mix(in srgb,var(--link) 10%,transparent)}
.result .body{padding:.3rem .9rem .6rem 1.6rem;background:var(--panel);border-top:1px dashed var(--line)}
.requirement{margin:.5rem 0;padding:.2rem .8rem;border-left:3px solid var(--muted);font-style:italic}
.requirement::before{content:"\201C"}.requirement::after{content:"\201D"}
.facts{display:grid;grid-template-columns:repeat(auto-fill,minmax(14rem,1fr));gap:.3rem 1rem;margin:.4rem 0}
.facts dt{color:var(--muted);font-size:.75rem;text-transform:uppercase;letter-spacing:.03em}
.facts dd{margin:0;overflow-wrap:anywhere}
.ea{display:grid;grid-template-columns:1fr 1fr;gap:.8rem}
.ea>div{min-width:0}
.label{color:var(--muted);font-size:.75rem;text-transform:uppercase;letter-spacing:.03em}
.ea pre{margin:.2rem 0;padding:.5rem;white-space:pre-wrap;overflow-wrap:anywhere;background:var(--bg);border:1px solid var(--line);border-radius:4px;max-height:30rem;overflow:auto}
.actual{border-left:3px solid var(--c)!important}
.clipped{color:var(--muted);font-style:italic}
.permalink{margin:.3rem 0 0;font-size:.8rem}
footer{margin:2rem 0 1rem;color:var(--muted);font-size:.85rem;border-top:1px solid var(--line);padding-top:.5rem}
@media (max-width:720px){
body{padding:.6rem}
#run-info{grid-template-columns:repeat(auto-fill,minmax(9rem,1fr))}
.thead{display:none}
.result>summary{display:flex;flex-wrap:wrap;gap:.15rem .6rem}
.c-id{order:1}.c-verdict{order:2;margin-left:auto}.c-title{order:3;flex-basis:100%}.c-level{order:4}.c-kind{order:5}.c-dur{order:6;margin-left:auto}
.ea{grid-template-columns:1fr}
.result .body{padding-left:.7rem}
}
@media print{#tools{display:none}.result>.body{display:block}}
.frames{margin:.4rem 0}
.frame{border-left:3px solid var(--line);margin:.15rem 0;padding-left:.5rem}
.frame.sent{border-left-color:var(--informational)}.frame.received{border-left-color:var(--pass)}
.frame summary{cursor:pointer;font-size:.88em}
.frame .dir{font-weight:600}
.frame .note{color:var(--non-strict)}
.frame pre,.rerun{margin:.2rem 0;padding:.4rem;white-space:pre-wrap;overflow-wrap:anywhere;background:var(--panel);border:1px solid var(--line);border-radius:4px;max-height:24rem;overflow:auto}
body:has(#show-NOT_APPLICABLE:not(:checked)) .area[data-total="0"] .thead{display:none}
body:has(#show-NOT_APPLICABLE:checked) .na-note{display:none}
"#;

const JS: &str = r#"
(function(){"use strict";
var d=document;
function openTarget(){var h=location.hash.slice(1);if(!h)return;try{h=decodeURIComponent(h);}catch(e){}
var e=d.getElementById(h);if(e&&e.tagName==="DETAILS"){e.open=true;}}
addEventListener("hashchange",openTarget);openTarget();
function setAll(open){var r=d.querySelectorAll("details.result");
for(var i=0;i<r.length;i++){if(!open||r[i].offsetParent!==null){r[i].open=open;}}}
var t=d.getElementById("tools");if(t){t.hidden=false;
d.getElementById("expand-all").addEventListener("click",function(){setAll(true);});
d.getElementById("collapse-all").addEventListener("click",function(){setAll(false);});}
})();
"#;

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::suite::model::{CaseInfo, TargetInfo};

    fn result(id: &str, verdict: Verdict, iteration: u32) -> CaseResult {
        let area = id.split('-').next().unwrap_or("X").to_owned();
        CaseResult {
            case: CaseInfo {
                id: id.to_owned(),
                area,
                title: format!("title of {id}"),
                requirement: "A node MUST do the thing.".to_owned(),
                spec_ref: "schema/README.md §9".to_owned(),
                level: Level::Must,
                role: Role::Any,
                capability: None,
                kind: Kind::Positive,
            },
            verdict,
            expected: "the thing".to_owned(),
            actual: "the thing".to_owned(),
            duration_ms: 3,
            iteration,
            expected_failure: None,
            rerun: String::new(),
            frames: Vec::new(),
            frames_omitted: 0,
        }
    }

    fn report(results: Vec<CaseResult>) -> Report {
        Report {
            suite_version: "0.1.0".to_owned(),
            spec_version: 1,
            target: TargetInfo {
                target: "offline".to_owned(),
                ..TargetInfo::default()
            },
            seed: 42,
            strict: false,
            started_at: "2025-01-01T00:00:00Z".to_owned(),
            duration_ms: 1234,
            summary: Summary::of(&results),
            results,
        }
    }

    /// Values of every `name="…"` attribute in `html`.
    fn attr_values<'a>(html: &'a str, name: &str) -> Vec<&'a str> {
        let needle = format!(" {name}=\"");
        let mut out = Vec::new();
        let mut rest = html;
        while let Some(i) = rest.find(&needle) {
            rest = &rest[i + needle.len()..];
            let end = rest.find('"').unwrap();
            out.push(&rest[..end]);
            rest = &rest[end..];
        }
        out
    }

    /// Checks that every non-void element outside `<script>`/`<style>` is closed in order.
    fn assert_balanced(html: &str) {
        const VOID: [&str; 6] = ["meta", "input", "br", "hr", "img", "link"];
        let mut stack: Vec<String> = Vec::new();
        let mut rest = html;
        while let Some(i) = rest.find('<') {
            rest = &rest[i + 1..];
            if rest.starts_with('!') {
                continue;
            }
            let end = rest.find('>').unwrap();
            let tag = &rest[..end];
            let closing = tag.starts_with('/');
            let name: String = tag
                .trim_start_matches('/')
                .chars()
                .take_while(char::is_ascii_alphanumeric)
                .collect();
            assert!(
                !name.is_empty(),
                "stray '<' before {:?}",
                &rest[..end.min(40)]
            );
            rest = &rest[end + 1..];
            if closing {
                let open = stack.pop().unwrap_or_default();
                assert_eq!(open, name, "</{name}> closes <{open}>");
            } else if !VOID.contains(&name.as_str()) {
                if name == "script" || name == "style" {
                    let close = format!("</{name}>");
                    let j = rest.find(&close).unwrap();
                    rest = &rest[j + close.len()..];
                } else {
                    stack.push(name);
                }
            }
        }
        assert!(stack.is_empty(), "unclosed: {stack:?}");
    }

    #[test]
    fn escape_neutralises_markup() {
        assert_eq!(
            escape(r#"<script>alert("x") & 'y'</script>"#),
            "&lt;script&gt;alert(&quot;x&quot;) &amp; &#39;y&#39;&lt;/script&gt;"
        );
        assert_eq!(
            escape("\"><img src=x onerror=alert(1)>"),
            "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;"
        );
        assert_eq!(escape("&amp;"), "&amp;amp;");
        assert_eq!(escape("plain é 日本 🦀"), "plain é 日本 🦀");
        assert_eq!(escape(""), "");
    }

    #[test]
    fn escape_makes_controls_visible() {
        assert_eq!(escape("a\u{1b}[31mb\0c"), "a\u{241b}[31mb\u{2400}c");
        assert_eq!(escape("tab\tnl\ncr\r"), "tab\tnl\ncr\r");
        assert_eq!(
            escape("\u{7f}\u{85}\u{fdd0}\u{fffe}\u{1ffff}"),
            "\u{2421}\u{fffd}\u{fffd}\u{fffd}\u{fffd}"
        );
    }

    #[test]
    fn long_fields_are_clipped_on_a_char_boundary() {
        let mut r = result("MBX-1-001", Verdict::Fail, 0);
        r.actual = "é".repeat(MAX_FIELD_BYTES);
        let html = render(&report(vec![r]));
        assert!(html.contains(&format!("{} more bytes", MAX_FIELD_BYTES)));
        assert!(html.len() < 3 * MAX_FIELD_BYTES);
    }

    #[test]
    fn id_tokens_are_fragment_safe() {
        assert_eq!(id_token("MBX-4.2-007"), "MBX-4.2-007");
        assert_eq!(id_token("a b\"<#%"), "a_b____");
        assert_eq!(id_token(""), "_");
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(fmt_ms(0), "0 ms");
        assert_eq!(fmt_ms(999), "999 ms");
        assert_eq!(fmt_ms(1_234), "1.23 s");
        assert_eq!(fmt_ms(125_000), "2 min 5 s");
        assert_eq!(fmt_ms(3_725_000), "1 h 2 min");
    }

    #[test]
    fn every_row_once_with_unique_anchors() {
        let results = vec![
            result("MBX-1-001", Verdict::Pass, 0),
            result("MBX-1-002", Verdict::Fail, 0),
            result("MBX-1-002", Verdict::Pass, 1),
            result("HS-2-001", Verdict::Error, 0),
            result("HS-2-002", Verdict::NonStrict, 0),
            result("VEC-3-001", Verdict::Skipped, 0),
            // A duplicate (a runner bug) must still get its own anchor.
            result("VEC-3-001", Verdict::Skipped, 0),
        ];
        let html = render(&report(results.clone()));
        assert_balanced(&html);

        assert_eq!(
            html.matches("<details class=\"result ").count(),
            results.len()
        );
        for r in &results {
            let n = html
                .matches(&format!("data-case=\"{}\"", r.case.id))
                .count();
            let want = results.iter().filter(|x| x.case.id == r.case.id).count();
            assert_eq!(n, want, "{}", r.case.id);
        }

        let ids = attr_values(&html, "id");
        let unique: HashSet<&str> = ids.iter().copied().collect();
        assert_eq!(unique.len(), ids.len(), "duplicate ids in {ids:?}");
        for a in [
            "MBX-1-001-0",
            "MBX-1-002-0",
            "MBX-1-002-1",
            "VEC-3-001-0",
            "VEC-3-001-0~2",
        ] {
            assert!(unique.contains(a), "{a} missing from {ids:?}");
        }
        for href in attr_values(&html, "href") {
            let target = href.strip_prefix('#').unwrap();
            assert!(unique.contains(target), "dangling link {href}");
        }

        // Failures first: FAIL and ERROR listed before the area tables.
        let failures = html.find("id=\"failures\"").unwrap();
        assert!(failures < html.find("class=\"area\"").unwrap());
        assert!(html.contains("<section id=\"failures\" class=\"attention\" data-count=\"2\">"));
        assert!(html.contains("<a href=\"#MBX-1-002-0\">"));
        assert!(html.contains("<a href=\"#HS-2-001-0\">"));
        assert!(html.contains("<section id=\"non-strict\""));

        // Areas in registry order, each with its count.
        let mbx = html.find("data-area=\"MBX\" data-total=\"3\"").unwrap();
        let hs = html.find("data-area=\"HS\" data-total=\"2\"").unwrap();
        let vec = html.find("data-area=\"VEC\" data-total=\"2\"").unwrap();
        assert!(mbx < hs && hs < vec);
        assert!(html.contains("data-field=\"iteration\">1 "));
        assert!(!html.contains("summary-mismatch"));
    }

    #[test]
    fn hostile_strings_stay_text() {
        let mut r = result("MBX-1-001", Verdict::Fail, 0);
        r.actual = "</pre><script>alert(1)</script>\"quotes\" & 'single'".to_owned();
        r.case.title = "<b onmouseover=alert(2)>".to_owned();
        r.expected_failure = Some("\"><script>alert(3)</script>".to_owned());
        let mut rep = report(vec![r]);
        rep.target.target = "</title><script>alert(4)</script>".to_owned();
        rep.target.capabilities = vec!["x\" onload=\"alert(5)".to_owned()];
        rep.target.software = Some("<img src=x onerror=alert(6)>".to_owned());
        rep.suite_version = "\"><script>".to_owned();
        let html = render(&rep);
        assert_balanced(&html);
        assert_eq!(
            html.matches("<script").count(),
            1,
            "only the report's own script"
        );
        assert!(!html.contains("<img"));
        assert!(!html.contains("<b "));
        assert!(!html.contains("\" onload"));
        assert!(html.contains(
            "&lt;/pre&gt;&lt;script&gt;alert(1)&lt;/script&gt;&quot;quotes&quot; &amp; &#39;single&#39;"
        ));
        // Its only failure is an expected one.
        assert!(html.contains("data-failed=\"false\""));
        assert!(html.contains("no unexpected failures (1 expected)"));
    }

    #[test]
    fn self_contained() {
        let html = render(&report(vec![result("MBX-1-001", Verdict::Pass, 0)]));
        assert_balanced(&html);
        for needle in [
            "http:",
            "https:",
            "src=",
            "url(",
            "@import",
            "<link",
            "@font-face",
        ] {
            assert!(!html.contains(needle), "{needle} in page");
        }
        assert!(html.starts_with("<!DOCTYPE html>\n<html lang=\"en\">"));
        assert!(html.contains("data-failed=\"false\""));
        assert!(html.contains("<section id=\"failures\" class=\"attention\" data-count=\"0\">"));
        assert!(!html.contains("id=\"non-strict\""));
    }

    #[test]
    fn empty_report_and_stale_summary() {
        let html = render(&report(Vec::new()));
        assert_balanced(&html);
        assert!(html.contains("No results."));
        let mut rep = report(vec![result("MBX-1-001", Verdict::Pass, 0)]);
        rep.summary = Summary::default();
        let html = render(&rep);
        assert!(html.contains("summary-mismatch"));
        assert!(html.contains("data-verdict=\"PASS\" title=\"The target behaved as the spec requires. Untick to hide these rows.\"><label><input type=\"checkbox\" id=\"show-PASS\" checked> <span class=\"n\">1</span>"));
    }
}
