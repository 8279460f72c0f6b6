//! Run reports: the JSON a run leaves behind, its Markdown rendering, and a
//! side-by-side comparison of two reports.
//!
//! Owns the report's schema, which is a contract: dashboards and later runs
//! read old files, so keys are only ever added, never renamed or removed
//! (a breaking change gets a new `schema` string). It does not compute
//! metrics (`metrics` does) or draw anything (`plot` does).
//!
//! Schema `context-eval-report/v1`, every key always present:
//!
//! | key | type | meaning |
//! | --- | --- | --- |
//! | `schema` | string | `"context-eval-report/v1"` |
//! | `kind` | string | `"beir"` or `"activity"` |
//! | `dataset` | string | `scifact`, `activity-v1`, … |
//! | `model` | string | embedding model, e.g. `all-MiniLM-L6-v2` |
//! | `commit` | string | git commit of the engine that ran |
//! | `date` | string | RFC 3339 UTC start of the run |
//! | `machine` | string | free text: CPU, cores, GPU |
//! | `config` | object | the run's settings, free form |
//! | `runs` | array | one entry per retrieval mode, below |
//! | `notes` | array of strings | caveats worth reading with the numbers |
//!
//! Each run: `mode` (`dense`, `sparse`, `hybrid`, `ranked`, …), `metrics`
//! (name → number; names such as `ndcg@10`, `recall@100`, `mrr@10`,
//! `map@100`, `p@10`, `leak_rate`, `injection_pass_through_rate`,
//! `budget_adherence`, `latency_ms_p50`, `queries`), `curves` (name → values
//! for k = 1, 2, …: `ndcg@k`, `recall@k`) and `latency_ms` (every query's
//! latency in milliseconds, in query order). A single-mode report has one run.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};

pub const SCHEMA: &str = "context-eval-report/v1";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub schema: String,
    pub kind: String,
    pub dataset: String,
    pub model: String,
    pub commit: String,
    pub date: String,
    pub machine: String,
    pub config: serde_json::Value,
    pub runs: Vec<RunResult>,
    pub notes: Vec<String>,
}

/// The results of one retrieval mode.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunResult {
    pub mode: String,
    pub metrics: BTreeMap<String, f64>,
    pub curves: BTreeMap<String, Vec<f64>>,
    pub latency_ms: Vec<f64>,
}

impl Report {
    /// An empty report of `kind` over `dataset`; the caller fills the rest.
    pub fn new(kind: &str, dataset: &str) -> Self {
        Self {
            schema: SCHEMA.to_string(),
            kind: kind.to_string(),
            dataset: dataset.to_string(),
            model: String::new(),
            commit: String::new(),
            date: String::new(),
            machine: String::new(),
            config: serde_json::Value::Object(Default::default()),
            runs: Vec::new(),
            notes: Vec::new(),
        }
    }

    pub fn run(&self, mode: &str) -> Option<&RunResult> {
        self.runs.iter().find(|r| r.mode == mode)
    }

    /// File name without extension: `<kind>-<dataset>-<date>`, with anything
    /// but ASCII letters, digits, `-`, `_` and `.` replaced by `-` (the
    /// colons of an RFC 3339 time are not portable in file names).
    pub fn file_stem(&self) -> String {
        format!("{}-{}-{}", self.kind, self.dataset, self.date)
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') { c } else { '-' })
            .collect()
    }

    /// JSON cannot carry NaN or infinities (serde_json writes them as null,
    /// which then fails to read back), so they are refused at write time.
    fn check_finite(&self) -> anyhow::Result<()> {
        for run in &self.runs {
            let values = run.metrics.iter().map(|(name, v)| (name.as_str(), *v));
            let curves = run.curves.iter().flat_map(|(name, vs)| vs.iter().map(move |v| (name.as_str(), *v)));
            let latency = run.latency_ms.iter().map(|v| ("latency_ms", *v));
            if let Some((name, value)) = values.chain(curves).chain(latency).find(|(_, v)| !v.is_finite()) {
                bail!("run {:?}: {name} is {value}; reports hold finite numbers only", run.mode);
            }
        }
        Ok(())
    }
}

/// Writes `<dir>/<stem>.json` and `<dir>/<stem>.md`; returns both paths.
pub fn write(report: &Report, dir: &Path) -> anyhow::Result<(PathBuf, PathBuf)> {
    report.check_finite()?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let stem = report.file_stem();
    let json_path = dir.join(format!("{stem}.json"));
    let md_path = dir.join(format!("{stem}.md"));
    let mut json = serde_json::to_string_pretty(report)?;
    json.push('\n');
    std::fs::write(&json_path, json).with_context(|| format!("cannot write {}", json_path.display()))?;
    std::fs::write(&md_path, markdown(report)).with_context(|| format!("cannot write {}", md_path.display()))?;
    Ok((json_path, md_path))
}

/// Reads a report written by [`write`], refusing other schemas.
pub fn read(path: &Path) -> anyhow::Result<Report> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let report: Report =
        serde_json::from_str(&text).with_context(|| format!("{}: not a context-eval report", path.display()))?;
    if report.schema != SCHEMA {
        bail!("{}: schema {:?}, this build reads {SCHEMA:?}", path.display(), report.schema);
    }
    Ok(report)
}

/// Which way a metric should move.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Better {
    Higher,
    Lower,
    /// Counts and sizes: a change is neither good nor bad.
    Neither,
}

/// Latencies, leaks, injection pass-through and errors are better low;
/// counts carry no verdict; retrieval quality and budget adherence are
/// better high.
pub fn better(metric: &str) -> Better {
    let lower = ["latency", "leak", "pass_through", "error", "violation", "over_budget"];
    let neutral = ["queries", "count", "events", "items", "docs"];
    if lower.iter().any(|w| metric.contains(w)) || metric.ends_with("_ms") {
        Better::Lower
    } else if neutral.iter().any(|w| metric == *w || metric.starts_with(&format!("{w}_"))) {
        Better::Neither
    } else {
        Better::Higher
    }
}

/// Table order: quality metrics by family and cut-off, then safety, then
/// latency, then everything else alphabetically.
fn order_key(metric: &str) -> (usize, u64, String) {
    const FAMILIES: [&str; 5] = ["ndcg", "recall", "mrr", "map", "p"];
    const NAMED: [&str; 11] = [
        "leak_rate",
        "injection_pass_through_rate",
        "budget_adherence",
        "latency_ms_mean",
        "latency_ms_p50",
        "latency_ms_p95",
        "latency_ms_p99",
        "latency_ms_max",
        "queries",
        "events",
        "docs",
    ];
    if let Some((family, k)) = metric.split_once('@') {
        if let (Some(rank), Ok(k)) = (FAMILIES.iter().position(|f| *f == family), k.parse::<u64>()) {
            return (rank, k, String::new());
        }
    }
    match NAMED.iter().position(|n| *n == metric) {
        Some(i) => (FAMILIES.len() + i, 0, String::new()),
        None => (FAMILIES.len() + NAMED.len(), 0, metric.to_string()),
    }
}

fn sorted_names<'a>(names: impl Iterator<Item = &'a String>) -> Vec<&'a String> {
    let mut names: Vec<&String> = names.collect();
    names.sort_by_key(|n| order_key(n));
    names.dedup();
    names
}

/// Counts as integers, milliseconds with 2 decimals, rates with 4.
fn format_value(metric: &str, value: f64) -> String {
    if better(metric) == Better::Neither && value.fract() == 0.0 {
        format!("{value:.0}")
    } else if metric.contains("_ms") {
        format!("{value:.2}")
    } else {
        format!("{value:.4}")
    }
}

fn format_delta(metric: &str, delta: f64) -> String {
    let body = format_value(metric, delta.abs());
    if delta < 0.0 {
        format!("−{body}")
    } else {
        format!("+{body}")
    }
}

/// The Markdown rendering: header, one metrics column per mode, config, notes.
pub fn markdown(report: &Report) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# context-eval: {} / {}\n", report.kind, report.dataset);
    let _ = writeln!(s, "| | |\n| --- | --- |");
    for (key, value) in [
        ("dataset", &report.dataset),
        ("model", &report.model),
        ("commit", &report.commit),
        ("date", &report.date),
        ("machine", &report.machine),
    ] {
        let _ = writeln!(s, "| {key} | {} |", cell(value));
    }
    let _ = writeln!(s, "\n## Metrics\n");
    if report.runs.is_empty() {
        let _ = writeln!(s, "No runs.");
    } else {
        let modes: Vec<String> = report.runs.iter().map(|r| cell(&r.mode)).collect();
        let _ = writeln!(s, "| metric | {} |", modes.join(" | "));
        let _ = writeln!(s, "| --- |{}", " ---: |".repeat(modes.len()));
        for name in sorted_names(report.runs.iter().flat_map(|r| r.metrics.keys())) {
            let values: Vec<String> = report
                .runs
                .iter()
                .map(|r| r.metrics.get(name).map_or_else(|| "—".to_string(), |v| format_value(name, *v)))
                .collect();
            let _ = writeln!(s, "| {name} | {} |", values.join(" | "));
        }
    }
    if report.config.as_object().is_none_or(|o| !o.is_empty()) {
        let config = serde_json::to_string_pretty(&report.config).unwrap_or_default();
        let _ = writeln!(s, "\n## Configuration\n\n```json\n{config}\n```");
    }
    if !report.notes.is_empty() {
        let _ = writeln!(s, "\n## Notes\n");
        for note in &report.notes {
            let _ = writeln!(s, "- {note}");
        }
    }
    s
}

/// Table cells cannot hold `|` or line breaks.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace(['\n', '\r'], " ")
}

/// Markdown comparison of `b` against baseline `a`: for every mode both
/// reports ran (or their only runs, when each holds one), every shared
/// metric with `a`, `b`, the delta `b − a` and a verdict.
pub fn compare(a: &Report, b: &Report) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# context-eval comparison\n");
    let _ = writeln!(s, "- a: {}", describe(a));
    let _ = writeln!(s, "- b: {}", describe(b));
    if a.kind != b.kind || a.dataset != b.dataset {
        let _ = writeln!(s, "\n**Warning:** the reports are on different data; deltas compare unlike things.");
    }
    let mut pairs: Vec<(&RunResult, &RunResult)> =
        a.runs.iter().filter_map(|ra| b.run(&ra.mode).map(|rb| (ra, rb))).collect();
    if pairs.is_empty() && a.runs.len() == 1 && b.runs.len() == 1 {
        pairs.push((&a.runs[0], &b.runs[0]));
    }
    for (ra, rb) in &pairs {
        let title =
            if ra.mode == rb.mode { cell(&ra.mode) } else { format!("{} vs {}", cell(&ra.mode), cell(&rb.mode)) };
        let _ = writeln!(s, "\n## {title}\n");
        let _ = writeln!(s, "| metric | a | b | Δ (b − a) | verdict |\n| --- | ---: | ---: | ---: | --- |");
        for name in sorted_names(ra.metrics.keys().filter(|n| rb.metrics.contains_key(*n))) {
            let (va, vb) = (ra.metrics[name], rb.metrics[name]);
            let delta = vb - va;
            let verdict = match better(name) {
                Better::Neither => "",
                _ if delta.abs() < 1e-12 => "same",
                Better::Higher if delta > 0.0 => "▲ better",
                Better::Lower if delta < 0.0 => "▲ better",
                _ => "▼ worse",
            };
            let _ = writeln!(
                s,
                "| {name} | {} | {} | {} | {verdict} |",
                format_value(name, va),
                format_value(name, vb),
                format_delta(name, delta)
            );
        }
    }
    let paired: Vec<&str> = pairs.iter().flat_map(|(ra, rb)| [ra.mode.as_str(), rb.mode.as_str()]).collect();
    for (label, report) in [("a", a), ("b", b)] {
        let only: Vec<&str> = report.runs.iter().map(|r| r.mode.as_str()).filter(|m| !paired.contains(m)).collect();
        if !only.is_empty() {
            let _ = writeln!(s, "\nOnly in {label}: {}", only.join(", "));
        }
    }
    s
}

fn describe(r: &Report) -> String {
    format!("{} / {} · model {} · commit {} · {} · {}", r.kind, r.dataset, r.model, r.commit, r.date, r.machine)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(ndcg: f64, p50: f64) -> Report {
        let mut r = Report::new("beir", "scifact");
        r.model = "all-MiniLM-L6-v2".into();
        r.commit = "abc1234".into();
        r.date = "2026-09-21T10:00:00Z".into();
        r.machine = "2 vCPU".into();
        r.config = serde_json::json!({"limit": 100});
        r.notes.push("first run".into());
        for (mode, bump) in [("dense", 0.0), ("hybrid", 0.02)] {
            r.runs.push(RunResult {
                mode: mode.into(),
                metrics: [("ndcg@10", ndcg + bump), ("recall@100", 0.9), ("latency_ms_p50", p50), ("queries", 300.0)]
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v))
                    .collect(),
                curves: [("ndcg@k".to_string(), vec![0.5, 0.6])].into_iter().collect(),
                latency_ms: vec![1.0, 2.5],
            });
        }
        r
    }

    #[test]
    fn json_round_trip_with_stable_keys() {
        let tmp = tempfile::tempdir().unwrap();
        let report = sample(0.645, 3.0);
        let (json, md) = write(&report, tmp.path()).unwrap();
        assert_eq!(json.file_name().unwrap(), "beir-scifact-2026-09-21T10-00-00Z.json");
        assert!(md.exists());
        assert_eq!(read(&json).unwrap(), report);
        let value: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
        let keys: Vec<&str> = value.as_object().unwrap().keys().map(String::as_str).collect();
        for key in ["schema", "kind", "dataset", "model", "commit", "date", "machine", "config", "runs", "notes"] {
            assert!(keys.contains(&key), "missing {key}");
        }
        assert_eq!(value["schema"], SCHEMA);
        assert_eq!(value["runs"][0]["metrics"]["ndcg@10"], 0.645);
    }

    #[test]
    fn non_finite_numbers_are_refused() {
        let mut report = sample(0.5, 1.0);
        report.runs[0].metrics.insert("recall@10".into(), f64::NAN);
        let tmp = tempfile::tempdir().unwrap();
        let e = write(&report, tmp.path()).unwrap_err().to_string();
        assert!(e.contains("recall@10 is NaN"), "{e}");
    }

    #[test]
    fn markdown_has_header_columns_and_numbers() {
        let md = markdown(&sample(0.645, 3.0));
        for needle in [
            "| model | all-MiniLM-L6-v2 |",
            "| commit | abc1234 |",
            "| metric | dense | hybrid |",
            "| ndcg@10 | 0.6450 | 0.6650 |",
            "| latency_ms_p50 | 3.00 | 3.00 |",
            "| queries | 300 | 300 |",
            "- first run",
            "\"limit\": 100",
        ] {
            assert!(md.contains(needle), "missing {needle:?} in\n{md}");
        }
        // Quality metrics come before latency.
        assert!(md.find("ndcg@10").unwrap() < md.find("recall@100").unwrap());
        assert!(md.find("recall@100").unwrap() < md.find("latency_ms_p50").unwrap());
    }

    #[test]
    fn compare_reports_deltas_and_direction() {
        let a = sample(0.60, 4.0);
        let mut b = sample(0.65, 3.0);
        b.runs[0].metrics.insert("leak_rate".into(), 0.01);
        b.runs.push(RunResult { mode: "sparse".into(), ..Default::default() });
        let md = compare(&a, &b);
        assert!(md.contains("## dense"), "{md}");
        assert!(md.contains("| ndcg@10 | 0.6000 | 0.6500 | +0.0500 | ▲ better |"), "{md}");
        assert!(md.contains("| latency_ms_p50 | 4.00 | 3.00 | −1.00 | ▲ better |"), "{md}");
        assert!(md.contains("| recall@100 | 0.9000 | 0.9000 | +0.0000 | same |"), "{md}");
        assert!(md.contains("| queries | 300 | 300 | +0 |  |"), "{md}");
        // leak_rate is only in b: not a shared metric.
        assert!(!md.contains("| leak_rate"), "{md}");
        assert!(md.contains("Only in b: sparse"), "{md}");
        let worse = compare(&b, &a);
        assert!(worse.contains("| ndcg@10 | 0.6500 | 0.6000 | −0.0500 | ▼ worse |"), "{worse}");
        assert!(worse.contains("| latency_ms_p50 | 3.00 | 4.00 | +1.00 | ▼ worse |"), "{worse}");
    }

    #[test]
    fn single_runs_with_different_modes_are_compared() {
        let mut a = sample(0.6, 1.0);
        a.runs.truncate(1);
        let mut b = a.clone();
        b.runs[0].mode = "ranked".into();
        let md = compare(&a, &b);
        assert!(md.contains("## dense vs ranked"), "{md}");
    }

    #[test]
    fn directions() {
        assert_eq!(better("ndcg@10"), Better::Higher);
        assert_eq!(better("budget_adherence"), Better::Higher);
        assert_eq!(better("latency_ms_p99"), Better::Lower);
        assert_eq!(better("leak_rate"), Better::Lower);
        assert_eq!(better("injection_pass_through_rate"), Better::Lower);
        assert_eq!(better("queries"), Better::Neither);
    }
}
