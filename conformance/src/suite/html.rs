//! The self-contained HTML report.

use super::model::Report;

/// Renders `report` as one self-contained HTML page.
#[must_use]
pub fn render(report: &Report) -> String {
    let mut s =
        String::from("<!doctype html><meta charset=utf-8><title>distsoc conformance</title><pre>");
    for r in &report.results {
        s.push_str(&format!("{} {}\n", r.case.id, r.verdict.as_str()));
    }
    s.push_str("</pre>");
    s
}
