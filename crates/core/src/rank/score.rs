//! Relevance (fusion of the dense and sparse lists) and recency decay.
//!
//! Every candidate carries its dense vector, so its dense similarity is
//! computed exactly even when only the sparse list found it.
//!
//! ```text
//! relevance  dense:  cos(q, d)                            (clamped to [0, 1])
//!            sparse: bm25(q, d) / max bm25 over the candidates
//!            hybrid, RRF:    (1/(k + r_dense) + 1/(k + r_sparse)) / (2/(k + 1))
//!                            (ranks from 1; a list that missed d adds 0)
//!            hybrid, convex: w · cos(q, d) + (1 − w) · bm25 / max bm25
//! recency    weight(age) = floor + (1 − floor) · 2^(−age / half_life(family))
//! score      relevance · weight(age)   (relevance alone with recency off)
//! ```

use super::options::{Fusion, RankingOptions};
use super::Candidate;
use crate::domain::RetrievalMode;

const SECONDS_PER_DAY: f64 = 86_400.0;

pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Relevance of every candidate, in `[0, 1]`.
pub fn relevance(query: &[f32], candidates: &[Candidate], options: &RankingOptions) -> Vec<f32> {
    let max_sparse = candidates.iter().filter_map(|c| c.sparse_score).fold(0.0f32, f32::max);
    let sparse_norm = |c: &Candidate| match c.sparse_score {
        Some(s) if max_sparse > 0.0 => (s / max_sparse).clamp(0.0, 1.0),
        _ => 0.0,
    };
    candidates
        .iter()
        .map(|c| {
            let cosine = dot(query, &c.vector).clamp(0.0, 1.0);
            match options.mode {
                RetrievalMode::Dense => cosine,
                RetrievalMode::Sparse => sparse_norm(c),
                RetrievalMode::Hybrid => match options.fusion {
                    Fusion::Rrf { k } => {
                        let part = |rank: Option<usize>| rank.map_or(0.0, |r| 1.0 / (k + r as f32 + 1.0));
                        (part(c.dense_rank) + part(c.sparse_rank)) / (2.0 / (k + 1.0))
                    }
                    Fusion::Convex { dense_weight } => dense_weight * cosine + (1.0 - dense_weight) * sparse_norm(c),
                },
            }
        })
        .collect()
}

/// Weight in `[floor, 1]` of an event `age_secs` old (future events count as new).
pub fn recency_weight(age_secs: i64, half_life_days: f64, floor: f32) -> f32 {
    let age_days = age_secs.max(0) as f64 / SECONDS_PER_DAY;
    let decay = 0.5f64.powf(age_days / half_life_days) as f32;
    floor + (1.0 - floor) * decay
}

/// Final score of every candidate.
pub fn scores(query: &[f32], candidates: &[Candidate], options: &RankingOptions, now: i64) -> Vec<f32> {
    let relevance = relevance(query, candidates, options);
    if !options.recency {
        return relevance;
    }
    candidates
        .iter()
        .zip(relevance)
        .map(|(c, r)| {
            let event = &c.record.event;
            let half_life = options.half_lives.days(event.family());
            r * recency_weight(now - event.event_time, half_life, options.recency_floor)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recency_halves_at_the_half_life_and_stops_at_the_floor() {
        let day = 86_400;
        assert_eq!(recency_weight(0, 10.0, 0.0), 1.0);
        assert!((recency_weight(10 * day, 10.0, 0.0) - 0.5).abs() < 1e-6);
        assert!((recency_weight(10 * day, 10.0, 0.5) - 0.75).abs() < 1e-6);
        assert!((recency_weight(100_000 * day, 10.0, 0.3) - 0.3).abs() < 1e-6);
        assert_eq!(recency_weight(-5 * day, 10.0, 0.3), 1.0);
    }
}
