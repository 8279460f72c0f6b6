//! SVG charts of a report: nDCG@k and recall@k curves, and per-mode latency
//! histograms.
//!
//! Owns drawing only; it reads a [`Report`] and never computes a metric. It
//! uses plotters' SVG backend without its `ttf` feature: plotters then sizes
//! text by a rough estimate and writes `<text>` elements that the viewer
//! renders with its own fonts, so charts need no system fonts at build or
//! run time.

use std::path::Path;

use anyhow::{bail, Context};
use plotters::prelude::*;

use crate::report::{Report, RunResult};

/// Distinct line colours, one per mode (cycled past eight modes).
const COLORS: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(23, 190, 207),
];

/// The colour a mode is drawn in: by its position in the report.
pub fn color_of(index: usize) -> RGBColor {
    COLORS[index % COLORS.len()]
}

/// The curves the left and right panels draw.
const PANELS: [(&str, &str); 2] = [("ndcg@k", "nDCG@k"), ("recall@k", "Recall@k")];

/// One SVG with two panels (nDCG@k left, recall@k right), k on a log axis
/// from 1 to the longest curve, one line per mode that has the curve.
pub fn plot_curves(report: &Report, path: &Path) -> anyhow::Result<()> {
    let has_curve = |run: &RunResult| PANELS.iter().any(|(key, _)| run.curves.get(*key).is_some_and(|c| !c.is_empty()));
    if !report.runs.iter().any(has_curve) {
        bail!("no run of {} / {} has an ndcg@k or recall@k curve", report.kind, report.dataset);
    }
    let root = SVGBackend::new(path, (1200, 520)).into_drawing_area();
    root.fill(&WHITE)?;
    let title = format!("{} / {} · {}", report.kind, report.dataset, report.model);
    let root = root.titled(&title, ("sans-serif", 22))?;
    let panels = root.split_evenly((1, 2));
    for (panel, (key, label)) in panels.iter().zip(PANELS) {
        let longest = report.runs.iter().filter_map(|r| r.curves.get(key)).map(Vec::len).max().unwrap_or(0);
        // A log axis needs a range wider than one point.
        let k_max = longest.max(2) as f64;
        let mut chart = ChartBuilder::on(panel)
            .caption(label, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d((1f64..k_max).log_scale(), 0f64..1f64)?;
        chart.configure_mesh().x_desc("k").y_desc(label).draw()?;
        for (i, run) in report.runs.iter().enumerate() {
            let Some(values) = run.curves.get(key).filter(|c| !c.is_empty()) else {
                continue;
            };
            let color = color_of(i);
            let points = values.iter().enumerate().map(|(j, v)| ((j + 1) as f64, *v));
            chart
                .draw_series(LineSeries::new(points, color.stroke_width(2)))?
                .label(run.mode.as_str())
                // A filled square, not a line, so the SVG holds exactly one
                // polyline per mode and panel.
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], color.filled()));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()?;
    }
    root.present().with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// Histogram bins per mode.
const BINS: usize = 40;

/// One SVG with a latency histogram per mode, stacked, on a shared x axis
/// that ends at the largest p99 (slower samples are counted in the last bin,
/// so one stall does not squash every other bar).
pub fn plot_latency(report: &Report, path: &Path) -> anyhow::Result<()> {
    let runs: Vec<(usize, &RunResult)> =
        report.runs.iter().enumerate().filter(|(_, r)| r.latency_ms.iter().any(|v| v.is_finite())).collect();
    if runs.is_empty() {
        bail!("no run of {} / {} has latency samples", report.kind, report.dataset);
    }
    let x_max = runs
        .iter()
        .filter_map(|(_, r)| crate::metrics::Latency::of(&r.latency_ms))
        .map(|l| l.p99)
        .fold(0.0f64, f64::max)
        .max(1e-3)
        * 1.05;
    let width = x_max / BINS as f64;
    let root = SVGBackend::new(path, (900, 220 * runs.len() as u32 + 60)).into_drawing_area();
    root.fill(&WHITE)?;
    let title = format!("Latency · {} / {}", report.kind, report.dataset);
    let root = root.titled(&title, ("sans-serif", 22))?;
    for (area, (i, run)) in root.split_evenly((runs.len(), 1)).iter().zip(runs) {
        let mut counts = [0u32; BINS];
        for v in run.latency_ms.iter().filter(|v| v.is_finite()) {
            let bin = ((v.max(0.0) / width) as usize).min(BINS - 1);
            counts[bin] += 1;
        }
        let y_max = f64::from(counts.iter().copied().max().unwrap_or(0).max(1)) * 1.1;
        let caption = match crate::metrics::Latency::of(&run.latency_ms) {
            Some(l) => format!("{}: p50 {:.2} ms · p95 {:.2} ms · p99 {:.2} ms", run.mode, l.p50, l.p95, l.p99),
            None => run.mode.clone(),
        };
        let mut chart = ChartBuilder::on(area)
            .caption(caption, ("sans-serif", 16))
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(50)
            .build_cartesian_2d(0f64..x_max, 0f64..y_max)?;
        chart.configure_mesh().disable_x_mesh().x_desc("ms").y_desc("queries").draw()?;
        let color = color_of(i);
        chart.draw_series(counts.iter().enumerate().filter(|(_, c)| **c > 0).map(|(b, c)| {
            let x0 = b as f64 * width;
            Rectangle::new([(x0, 0.0), (x0 + width, f64::from(*c))], color.filled())
        }))?;
    }
    root.present().with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> Report {
        let mut r = Report::new("beir", "scifact");
        r.model = "all-MiniLM-L6-v2".into();
        for (mode, scale) in [("dense", 1.0), ("hybrid", 1.2), ("no-curves", 1.0)] {
            let mut run = RunResult { mode: mode.into(), ..Default::default() };
            if mode != "no-curves" {
                let curve: Vec<f64> = (1..=100).map(|k| (f64::from(k).ln() / 5.0 * scale).min(1.0)).collect();
                run.curves.insert("ndcg@k".into(), curve.clone());
                run.curves.insert("recall@k".into(), curve);
                run.latency_ms = (0..200).map(|i| scale * (1.0 + f64::from(i % 17))).collect();
            }
            r.runs.push(run);
        }
        r
    }

    fn polylines_in(svg: &str, color: RGBColor) -> usize {
        let stroke = format!("stroke=\"#{:02X}{:02X}{:02X}\"", color.0, color.1, color.2);
        svg.split('<').filter(|tag| tag.starts_with("polyline") && tag.contains(&stroke)).count()
    }

    #[test]
    fn curves_svg_has_one_line_per_mode_and_panel() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("curves.svg");
        plot_curves(&report(), &path).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..80]);
        assert_eq!(polylines_in(&svg, color_of(0)), 2);
        assert_eq!(polylines_in(&svg, color_of(1)), 2);
        assert_eq!(polylines_in(&svg, color_of(2)), 0);
        // Text renders without any font feature.
        assert!(svg.contains("nDCG@k\n</text>") && svg.contains("hybrid\n</text>"), "labels missing");
    }

    #[test]
    fn latency_svg_has_bars_per_mode() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("latency.svg");
        plot_latency(&report(), &path).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        for i in 0..2 {
            let fill = format!("fill=\"#{:02X}{:02X}{:02X}\"", color_of(i).0, color_of(i).1, color_of(i).2);
            let bars = svg.split('<').filter(|t| t.starts_with("rect") && t.contains(&fill)).count();
            assert!(bars >= 10, "mode {i}: {bars} bars");
        }
        assert!(svg.contains("dense: p50"));
    }

    #[test]
    fn nothing_to_draw_is_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        let empty = Report::new("activity", "activity-v1");
        assert!(plot_curves(&empty, &tmp.path().join("a.svg")).is_err());
        assert!(plot_latency(&empty, &tmp.path().join("b.svg")).is_err());
    }
}
