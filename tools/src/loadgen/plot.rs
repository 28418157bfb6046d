//! `--plot FILE.svg`: the latency of every operation as a picture.
//!
//! Two panels over one logarithmic latency axis (ms): the cumulative
//! distribution (the share of requests at most that slow) and the
//! distribution itself (the share of requests per twentieth of a decade),
//! one line per operation. A percentile table hides a bimodal latency —
//! a FetchWait is either woken at once or held until its timeout — the
//! second panel shows the two peaks.

use std::path::Path;

use hdrhistogram::Histogram;
use plotters::prelude::*;

use super::report::{OpReport, Report};
use super::LoadgenError;

/// Bins per decade of the distribution panel.
const BINS_PER_DECADE: f64 = 20.0;
/// Picture size, pixels.
const SIZE: (u32, u32) = (1100, 900);

/// Points of one line: `(latency ms, fraction)`.
type Points = Vec<(f64, f64)>;

/// `(latency ms, cumulative fraction)` at each distinct recorded value.
fn cdf(h: &Histogram<u64>) -> Vec<(f64, f64)> {
    let total = h.len() as f64;
    let mut seen = 0u64;
    let mut points = Vec::new();
    for v in h.iter_recorded() {
        let ms = h.highest_equivalent(v.value_iterated_to()) as f64 / 1000.0;
        // A step: flat up to the value, then up by its share.
        points.push((ms, seen as f64 / total));
        seen += v.count_at_value();
        points.push((ms, seen as f64 / total));
    }
    points
}

/// `(bin centre ms, fraction of requests)` for every bin from the first to
/// the last non-empty one (empty bins inside drawn as 0).
fn density(h: &Histogram<u64>) -> Vec<(f64, f64)> {
    let total = h.len() as f64;
    let mut bins: std::collections::BTreeMap<i64, u64> = Default::default();
    for v in h.iter_recorded() {
        let ms = v.value_iterated_to() as f64 / 1000.0;
        let bin = (ms.max(1e-3).log10() * BINS_PER_DECADE).floor() as i64;
        *bins.entry(bin).or_default() += v.count_at_value();
    }
    let (Some(&lo), Some(&hi)) = (bins.keys().next(), bins.keys().next_back()) else {
        return Vec::new();
    };
    (lo..=hi)
        .map(|b| {
            let centre = 10f64.powf((b as f64 + 0.5) / BINS_PER_DECADE);
            (centre, bins.get(&b).copied().unwrap_or(0) as f64 / total)
        })
        .collect()
}

fn fmt_ms(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.2}"))
}

fn label(o: &OpReport) -> String {
    format!(
        "{} (n={}, p50 {} ms, p99 {} ms, max {} ms)",
        o.op,
        o.latency_us.len(),
        fmt_ms(o.p50_ms),
        fmt_ms(o.p99_ms),
        fmt_ms(o.max_ms)
    )
}

fn err(path: &Path, e: impl std::fmt::Display) -> LoadgenError {
    LoadgenError::Io {
        what: format!("cannot draw {}", path.display()),
        source: std::io::Error::other(e.to_string()),
    }
}

/// Writes the latency picture of `report` to `path` (SVG).
pub fn write_svg(report: &Report, path: &Path) -> Result<(), LoadgenError> {
    let ops: Vec<&OpReport> = report
        .ops
        .iter()
        .filter(|o| !o.latency_us.is_empty())
        .collect();
    // The x range: every operation's fastest to slowest, with a margin.
    let lo = ops
        .iter()
        .map(|o| o.latency_us.min() as f64 / 1000.0)
        .fold(f64::INFINITY, f64::min);
    let hi = ops
        .iter()
        .map(|o| o.latency_us.max() as f64 / 1000.0)
        .fold(0.0, f64::max);
    let (lo, hi) = if ops.is_empty() {
        (0.01, 1000.0)
    } else {
        ((lo / 1.5).max(1e-3), (hi * 1.5).max(lo * 10.0))
    };
    let series: Vec<(String, Points, Points)> = ops
        .iter()
        .map(|o| (label(o), cdf(&o.latency_us), density(&o.latency_us)))
        .collect();

    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(path, e))?;
    let root = root
        .titled(
            &format!(
                "distsoc loadgen: scenario {} against {}, latency per operation",
                report.scenario, report.target
            ),
            ("sans-serif", 18),
        )
        .map_err(|e| err(path, e))?;
    let (upper, lower) = root.split_vertically(SIZE.1 / 2 - 20);

    let mut top = ChartBuilder::on(&upper)
        .caption(
            "cumulative: share of requests at most this slow",
            ("sans-serif", 15),
        )
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(50)
        .build_cartesian_2d((lo..hi).log_scale(), 0.0..1.0)
        .map_err(|e| err(path, e))?;
    top.configure_mesh()
        .x_desc("latency, ms (log scale)")
        .y_desc("fraction")
        .draw()
        .map_err(|e| err(path, e))?;
    for (i, (name, points, _)) in series.iter().enumerate() {
        let colour = Palette99::pick(i).to_rgba();
        top.draw_series(LineSeries::new(
            points.iter().copied(),
            colour.stroke_width(2),
        ))
        .map_err(|e| err(path, e))?
        .label(name.as_str())
        .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], colour.stroke_width(2)));
    }
    top.configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| err(path, e))?;

    // One distribution panel per operation, each with its own scale.
    let cols = if series.len() > 4 { 3 } else { 2 };
    let rows = series.len().div_ceil(cols).max(1);
    let panels = lower.split_evenly((rows, cols));
    for (i, ((name, _, points), panel)) in series.iter().zip(panels.iter()).enumerate() {
        let colour = Palette99::pick(i).to_rgba();
        let peak = points.iter().map(|p| p.1).fold(0.0, f64::max).max(0.01);
        let mut chart = ChartBuilder::on(panel)
            .caption(name.as_str(), ("sans-serif", 12))
            .margin(6)
            .x_label_area_size(28)
            .y_label_area_size(40)
            .build_cartesian_2d((lo..hi).log_scale(), 0.0..peak * 1.1)
            .map_err(|e| err(path, e))?;
        chart
            .configure_mesh()
            .x_desc("latency, ms (log scale)")
            .y_desc("share per 1/20 decade")
            .label_style(("sans-serif", 10))
            .draw()
            .map_err(|e| err(path, e))?;
        chart
            .draw_series(LineSeries::new(
                points.iter().copied(),
                colour.stroke_width(2),
            ))
            .map_err(|e| err(path, e))?;
    }
    root.present().map_err(|e| err(path, e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::super::stats::histogram;
    use super::*;

    #[test]
    fn cdf_and_density_of_a_bimodal_latency() {
        let mut h = histogram();
        for _ in 0..90 {
            h.record(2_000).unwrap(); // 2 ms: woken at once
        }
        for _ in 0..10 {
            h.record(5_000_000).unwrap(); // 5 s: held until the timeout
        }
        let c = cdf(&h);
        // Steps: 0 -> 0.9 at 2 ms, 0.9 -> 1 at 5 s.
        assert_eq!(c.len(), 4);
        assert!(c[0].1 == 0.0 && (c[1].1 - 0.9).abs() < 1e-9);
        assert!((c[2].1 - 0.9).abs() < 1e-9 && (c[3].1 - 1.0).abs() < 1e-9);
        let d = density(&h);
        let peaks: Vec<_> = d.iter().filter(|p| p.1 > 0.0).collect();
        assert_eq!(peaks.len(), 2, "{d:?}");
        assert!((peaks[0].1 - 0.9).abs() < 1e-9);
        assert!(peaks[0].0 > 1.5 && peaks[0].0 < 2.5, "{peaks:?}");
        assert!(peaks[1].0 > 4000.0 && peaks[1].0 < 6000.0, "{peaks:?}");
        // Empty bins between the peaks are drawn as zero.
        assert!(d.len() > 60);
    }
}
