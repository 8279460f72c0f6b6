//! Retrieval metrics with the trec_eval definitions that pytrec_eval (and so
//! BEIR and MTEB) report, their means over many queries, and latency
//! percentiles.
//!
//! Owns the arithmetic only: a ranked list of item ids (best first) and the
//! query's graded judgements go in, numbers come out. It does not know what an
//! item is (a BEIR document, an activity item key) or how the ranking was
//! produced, and it never rounds: formatting is `report`'s job.
//!
//! Conventions shared by every function:
//! - a grade of 0 means "judged, not relevant"; only grades > 0 count as
//!   relevant, and the gain of a hit is its grade (trec_eval's linear gain);
//! - a ranked list may repeat an id; the first occurrence is scored and later
//!   ones keep their rank position but gain nothing, so an engine cannot earn
//!   credit by returning the same item twice;
//! - `k` cuts the ranked list; a list shorter than `k` is scored as is (the
//!   missing ranks are misses), and precision still divides by `k`;
//! - a query without relevant items scores 0 on every metric.
//!
//! The per-query functions are the reference definitions; the runners use
//! [`Aggregate`], which the tests check against them.
#![cfg_attr(not(test), allow(dead_code))]

use std::collections::{BTreeMap, HashMap, HashSet};

/// Largest cut-off the aggregate keeps a curve for (k = 1..=MAX_K).
pub const MAX_K: usize = 100;

/// Cut-offs reported as single numbers by [`Aggregate::metrics`].
const REPORTED_K: [usize; 6] = [1, 3, 5, 10, 20, 100];

/// Gain of each of the first `k` ranks: the item's grade at its first
/// occurrence, 0 for misses and repeats.
fn gains(ranked: &[String], qrels: &HashMap<String, u32>, k: usize) -> Vec<u32> {
    let mut seen = HashSet::with_capacity(k.min(ranked.len()));
    ranked
        .iter()
        .take(k)
        .map(|id| if seen.insert(id.as_str()) { qrels.get(id).copied().unwrap_or(0) } else { 0 })
        .collect()
}

fn relevant_count(qrels: &HashMap<String, u32>) -> usize {
    qrels.values().filter(|&&grade| grade > 0).count()
}

/// Rank discount 1 / log2(rank + 1) for a 0-based position.
fn discount(position: usize) -> f64 {
    1.0 / ((position + 2) as f64).log2()
}

/// nDCG@k with linear gain; the ideal ranking orders the query's grades
/// descending.
pub fn ndcg_at(ranked: &[String], qrels: &HashMap<String, u32>, k: usize) -> f64 {
    let idcg = ideal_dcg(qrels, k);
    if idcg == 0.0 {
        return 0.0;
    }
    let dcg: f64 = gains(ranked, qrels, k).iter().enumerate().map(|(i, &g)| f64::from(g) * discount(i)).sum();
    dcg / idcg
}

fn ideal_dcg(qrels: &HashMap<String, u32>, k: usize) -> f64 {
    let mut grades: Vec<u32> = qrels.values().copied().filter(|&g| g > 0).collect();
    grades.sort_unstable_by(|a, b| b.cmp(a));
    grades.iter().take(k).enumerate().map(|(i, &g)| f64::from(g) * discount(i)).sum()
}

/// Relevant items among the first `k`, over all relevant items.
pub fn recall_at(ranked: &[String], qrels: &HashMap<String, u32>, k: usize) -> f64 {
    let relevant = relevant_count(qrels);
    if relevant == 0 {
        return 0.0;
    }
    let hits = gains(ranked, qrels, k).iter().filter(|&&g| g > 0).count();
    hits as f64 / relevant as f64
}

/// Relevant items among the first `k`, over `k`.
pub fn precision_at(ranked: &[String], qrels: &HashMap<String, u32>, k: usize) -> f64 {
    if k == 0 {
        return 0.0;
    }
    let hits = gains(ranked, qrels, k).iter().filter(|&&g| g > 0).count();
    hits as f64 / k as f64
}

/// Reciprocal rank of the first relevant item within `k`, else 0.
pub fn mrr_at(ranked: &[String], qrels: &HashMap<String, u32>, k: usize) -> f64 {
    gains(ranked, qrels, k).iter().position(|&g| g > 0).map_or(0.0, |i| 1.0 / (i + 1) as f64)
}

/// trec_eval `map_cut`: the sum of precision at each relevant hit within
/// `k`, divided by the number of relevant items (not by `min(k, R)`).
pub fn map_at(ranked: &[String], qrels: &HashMap<String, u32>, k: usize) -> f64 {
    let relevant = relevant_count(qrels);
    if relevant == 0 {
        return 0.0;
    }
    let mut hits = 0usize;
    let mut sum = 0.0;
    for (i, &g) in gains(ranked, qrels, k).iter().enumerate() {
        if g > 0 {
            hits += 1;
            sum += hits as f64 / (i + 1) as f64;
        }
    }
    sum / relevant as f64
}

/// Running sums over many queries; [`Aggregate::metrics`] and
/// [`Aggregate::curves`] turn them into means.
///
/// nDCG and recall are kept for every k in 1..=[`MAX_K`] so a plot can draw
/// whole curves; MRR, MAP and precision only at the reported cut-offs.
#[derive(Debug, Clone, PartialEq)]
pub struct Aggregate {
    queries: usize,
    ndcg: Vec<f64>,
    recall: Vec<f64>,
    mrr: [f64; REPORTED_K.len()],
    map: [f64; REPORTED_K.len()],
    precision: [f64; REPORTED_K.len()],
}

impl Default for Aggregate {
    fn default() -> Self {
        Self::new()
    }
}

impl Aggregate {
    pub fn new() -> Self {
        Self {
            queries: 0,
            ndcg: vec![0.0; MAX_K],
            recall: vec![0.0; MAX_K],
            mrr: [0.0; REPORTED_K.len()],
            map: [0.0; REPORTED_K.len()],
            precision: [0.0; REPORTED_K.len()],
        }
    }

    /// Number of queries added so far.
    pub fn queries(&self) -> usize {
        self.queries
    }

    /// Scores one query. A query without relevant items still counts (and
    /// scores 0), as in pytrec_eval for a query present in the qrels.
    pub fn add(&mut self, ranked: &[String], qrels: &HashMap<String, u32>) {
        self.queries += 1;
        let gains = gains(ranked, qrels, MAX_K);
        let idcg = ideal_prefix(qrels);
        let relevant = relevant_count(qrels);
        // One pass over the gains gives DCG and hit counts for every prefix.
        let mut dcg = 0.0;
        let mut hits = 0usize;
        for k in 1..=MAX_K {
            if let Some(&g) = gains.get(k - 1) {
                dcg += f64::from(g) * discount(k - 1);
                hits += usize::from(g > 0);
            }
            if idcg[k - 1] > 0.0 {
                self.ndcg[k - 1] += dcg / idcg[k - 1];
            }
            if relevant > 0 {
                self.recall[k - 1] += hits as f64 / relevant as f64;
            }
        }
        for (i, &k) in REPORTED_K.iter().enumerate() {
            self.mrr[i] += mrr_at(ranked, qrels, k);
            self.map[i] += map_at(ranked, qrels, k);
            self.precision[i] += precision_at(ranked, qrels, k);
        }
    }

    fn mean(&self, sum: f64) -> f64 {
        if self.queries == 0 {
            0.0
        } else {
            sum / self.queries as f64
        }
    }

    /// Mean nDCG@k; 0 outside 1..=MAX_K.
    pub fn ndcg_at(&self, k: usize) -> f64 {
        k.checked_sub(1).and_then(|i| self.ndcg.get(i)).map_or(0.0, |&s| self.mean(s))
    }

    /// Mean recall@k; 0 outside 1..=MAX_K.
    pub fn recall_at(&self, k: usize) -> f64 {
        k.checked_sub(1).and_then(|i| self.recall.get(i)).map_or(0.0, |&s| self.mean(s))
    }

    /// Means under the report's metric names: `ndcg@k`, `recall@k`, `mrr@k`,
    /// `map@k`, `p@k` for k in 1, 3, 5, 10, 20, 100, plus `queries`.
    pub fn metrics(&self) -> BTreeMap<String, f64> {
        let mut out = BTreeMap::new();
        for (i, &k) in REPORTED_K.iter().enumerate() {
            out.insert(format!("ndcg@{k}"), self.ndcg_at(k));
            out.insert(format!("recall@{k}"), self.recall_at(k));
            out.insert(format!("mrr@{k}"), self.mean(self.mrr[i]));
            out.insert(format!("map@{k}"), self.mean(self.map[i]));
            out.insert(format!("p@{k}"), self.mean(self.precision[i]));
        }
        out.insert("queries".into(), self.queries as f64);
        out
    }

    /// `ndcg@k` and `recall@k`: the mean for k = 1..=MAX_K (index 0 is k = 1).
    pub fn curves(&self) -> BTreeMap<String, Vec<f64>> {
        let mut out = BTreeMap::new();
        out.insert("ndcg@k".into(), (1..=MAX_K).map(|k| self.ndcg_at(k)).collect());
        out.insert("recall@k".into(), (1..=MAX_K).map(|k| self.recall_at(k)).collect());
        out
    }
}

/// Ideal DCG of every prefix length 1..=MAX_K.
fn ideal_prefix(qrels: &HashMap<String, u32>) -> Vec<f64> {
    let mut grades: Vec<u32> = qrels.values().copied().filter(|&g| g > 0).collect();
    grades.sort_unstable_by(|a, b| b.cmp(a));
    let mut sum = 0.0;
    (0..MAX_K)
        .map(|i| {
            if let Some(&g) = grades.get(i) {
                sum += f64::from(g) * discount(i);
            }
            sum
        })
        .collect()
}

/// Latency summary in milliseconds; percentiles by nearest rank (the
/// smallest sample with at least p% of samples at or below it).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Latency {
    pub count: usize,
    pub mean: f64,
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
}

impl Latency {
    /// `None` for no samples; NaN samples are ignored.
    pub fn of(samples_ms: &[f64]) -> Option<Self> {
        let mut sorted: Vec<f64> = samples_ms.iter().copied().filter(|v| !v.is_nan()).collect();
        if sorted.is_empty() {
            return None;
        }
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let rank = |p: f64| {
            let r = ((p / 100.0) * n as f64).ceil() as usize;
            sorted[r.clamp(1, n) - 1]
        };
        Some(Self {
            count: n,
            mean: sorted.iter().sum::<f64>() / n as f64,
            p50: rank(50.0),
            p95: rank(95.0),
            p99: rank(99.0),
            max: sorted[n - 1],
        })
    }

    /// The report's metric names: `latency_ms_mean`, `latency_ms_p50`,
    /// `latency_ms_p95`, `latency_ms_p99`, `latency_ms_max`.
    pub fn metrics(&self) -> BTreeMap<String, f64> {
        [
            ("latency_ms_mean", self.mean),
            ("latency_ms_p50", self.p50),
            ("latency_ms_p95", self.p95),
            ("latency_ms_p99", self.p99),
            ("latency_ms_max", self.max),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_string(), value))
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn qrels(pairs: &[(&str, u32)]) -> HashMap<String, u32> {
        pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-9, "{a} != {b}");
    }

    /// d1 (grade 2) at rank 2, d3 (grade 1) at rank 3; d2 relevant, missed.
    /// DCG@3 = 2/log2(3) + 1/log2(4) = 1.2618595 + 0.5 = 1.7618595
    /// IDCG@3 = 2/1 + 1/log2(3) + 1/2 = 3.1309298
    #[test]
    fn graded_example() {
        let ranked = ids(&["x", "d1", "d3", "y"]);
        let q = qrels(&[("d1", 2), ("d2", 1), ("d3", 1), ("z", 0)]);
        close(ndcg_at(&ranked, &q, 3), 1.761_859_507_142_915 / 3.130_929_753_571_457);
        close(ndcg_at(&ranked, &q, 1), 0.0);
        close(recall_at(&ranked, &q, 3), 2.0 / 3.0);
        close(recall_at(&ranked, &q, 1), 0.0);
        close(precision_at(&ranked, &q, 2), 0.5);
        close(mrr_at(&ranked, &q, 10), 0.5);
        close(mrr_at(&ranked, &q, 1), 0.0);
        // Hits at ranks 2 and 3: (1/2 + 2/3) / 3 relevant.
        close(map_at(&ranked, &q, 10), (0.5 + 2.0 / 3.0) / 3.0);
    }

    #[test]
    fn perfect_ranking_scores_one() {
        let q = qrels(&[("a", 2), ("b", 1)]);
        let ranked = ids(&["a", "b"]);
        close(ndcg_at(&ranked, &q, 10), 1.0);
        close(map_at(&ranked, &q, 10), 1.0);
        close(recall_at(&ranked, &q, 2), 1.0);
        // The wrong order loses: DCG = 1 + 2/log2(3); IDCG = 2 + 1/log2(3).
        let swapped = ids(&["b", "a"]);
        close(ndcg_at(&swapped, &q, 10), (1.0 + 2.0 / 3f64.log2()) / (2.0 + 1.0 / 3f64.log2()));
    }

    #[test]
    fn duplicates_gain_nothing_but_keep_their_rank() {
        let q = qrels(&[("a", 1), ("b", 1)]);
        let ranked = ids(&["a", "a", "b"]);
        close(recall_at(&ranked, &q, 2), 0.5);
        close(precision_at(&ranked, &q, 3), 2.0 / 3.0);
        // b at rank 3: DCG = 1 + 1/2; IDCG = 1 + 1/log2(3).
        close(ndcg_at(&ranked, &q, 3), 1.5 / (1.0 + 1.0 / 3f64.log2()));
        close(map_at(&ranked, &q, 3), (1.0 + 2.0 / 3.0) / 2.0);
    }

    #[test]
    fn no_relevant_items_score_zero() {
        let ranked = ids(&["a", "b"]);
        let q = qrels(&[("a", 0)]);
        for value in [
            ndcg_at(&ranked, &q, 10),
            recall_at(&ranked, &q, 10),
            mrr_at(&ranked, &q, 10),
            map_at(&ranked, &q, 10),
            precision_at(&ranked, &q, 10),
        ] {
            close(value, 0.0);
        }
        close(ndcg_at(&[], &HashMap::new(), 10), 0.0);
    }

    #[test]
    fn k_beyond_the_list() {
        let q = qrels(&[("a", 1), ("b", 1), ("c", 1)]);
        let ranked = ids(&["a"]);
        close(recall_at(&ranked, &q, 100), 1.0 / 3.0);
        close(precision_at(&ranked, &q, 10), 0.1);
        // IDCG@100 = 1 + 1/log2(3) + 1/2.
        close(ndcg_at(&ranked, &q, 100), 1.0 / (1.5 + 1.0 / 3f64.log2()));
        close(map_at(&ranked, &q, 100), 1.0 / 3.0);
        close(precision_at(&ranked, &q, 0), 0.0);
    }

    #[test]
    fn aggregate_means_and_curves_match_the_single_query_functions() {
        let q1 = qrels(&[("d1", 2), ("d2", 1), ("d3", 1)]);
        let r1 = ids(&["x", "d1", "d3", "y"]);
        let q2 = qrels(&[("a", 1)]);
        let r2 = ids(&["a"]);
        let mut agg = Aggregate::new();
        agg.add(&r1, &q1);
        agg.add(&r2, &q2);
        assert_eq!(agg.queries(), 2);
        for k in [1, 2, 3, 10, 100] {
            close(agg.ndcg_at(k), (ndcg_at(&r1, &q1, k) + ndcg_at(&r2, &q2, k)) / 2.0);
            close(agg.recall_at(k), (recall_at(&r1, &q1, k) + recall_at(&r2, &q2, k)) / 2.0);
        }
        let metrics = agg.metrics();
        close(metrics["mrr@10"], (0.5 + 1.0) / 2.0);
        close(metrics["map@100"], (map_at(&r1, &q1, 100) + 1.0) / 2.0);
        close(metrics["p@1"], 0.5);
        close(metrics["queries"], 2.0);
        let curves = agg.curves();
        assert_eq!(curves["ndcg@k"].len(), MAX_K);
        close(curves["recall@k"][2], agg.recall_at(3));
        close(agg.ndcg_at(0), 0.0);
        close(Aggregate::new().ndcg_at(10), 0.0);
    }

    #[test]
    fn latency_nearest_rank() {
        let samples: Vec<f64> = (1..=100).map(f64::from).rev().collect();
        let l = Latency::of(&samples).unwrap();
        assert_eq!((l.count, l.p50, l.p95, l.p99, l.max), (100, 50.0, 95.0, 99.0, 100.0));
        close(l.mean, 50.5);
        let small = Latency::of(&[3.0, 1.0, 2.0]).unwrap();
        // ceil(0.5 * 3) = 2nd smallest; ceil(0.95 * 3) = 3rd.
        assert_eq!((small.p50, small.p95, small.p99), (2.0, 3.0, 3.0));
        assert_eq!(Latency::of(&[]), None);
        assert_eq!(Latency::of(&[f64::NAN, 4.0]).unwrap().p50, 4.0);
        assert_eq!(l.metrics()["latency_ms_p95"], 95.0);
    }
}
