//! Feed ranking: scores candidate items (posts, products, offers) from one
//! person's permitted activity. Pure: the engine fetches the activity and
//! embeds the items.
//!
//! ```text
//! weighted(i, e) = max(0, cos(item i, event e)) · recency(e)
//! similarity(i)  = cos(i, e*) where e* maximises weighted(i, ·)
//! category(i)    = Σ recency(e) over events whose content_category matches the item's
//!                  / Σ recency(e) over all events
//! source(i)      = the same share for events from the item's source_id
//! score(i)       = 0.8 · weighted(i, e*) + 0.1 · category(i) + 0.1 · source(i)
//! ```
//!
//! recency is the context ranking's (per-family half-life, floor), so an old
//! purchase still counts and last week's search counts more than last
//! year's. Affinities are shares of the person's weighted activity, so a
//! person who only ever shops one category gives its items a tenth more.

use super::options::RankingOptions;
use super::score::recency_weight;
use crate::domain::EventRecord;
use ce_screen::learned::dot;

/// Weights of the three signals; they sum to 1 so scores stay in [0, 1].
pub const SIMILARITY_WEIGHT: f32 = 0.8;
pub const CATEGORY_WEIGHT: f32 = 0.1;
pub const SOURCE_WEIGHT: f32 = 0.1;

/// One candidate item, embedded.
#[derive(Debug, Clone)]
pub struct ItemInput<'a> {
    pub vector: &'a [f32],
    /// Empty when unknown.
    pub category: &'a str,
    pub source_id: &'a str,
}

/// One event of the person's permitted activity.
#[derive(Debug, Clone)]
pub struct ActivityInput<'a> {
    pub record: &'a EventRecord,
    pub vector: &'a [f32],
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ItemScore {
    pub score: f32,
    /// Cosine to the best-matching event; 0 when no event matches.
    pub similarity: f32,
    /// That event (an activity index), when one matches.
    pub best: Option<usize>,
    pub category_affinity: f32,
    pub source_affinity: f32,
    /// Up to `evidence` events, best weighted similarity first:
    /// (activity index, cosine, recency weight).
    pub evidence: Vec<(usize, f32, f32)>,
}

/// "Footwear > Running" matches "running" and "footwear > running".
fn category_key(category: &str) -> String {
    category.rsplit(['>', '/', '|']).next().unwrap_or("").trim().to_lowercase()
}

/// Scores every item; `evidence` events are kept for each.
pub fn score_items(
    items: &[ItemInput<'_>],
    activity: &[ActivityInput<'_>],
    options: &RankingOptions,
    now: i64,
    evidence: usize,
) -> Vec<ItemScore> {
    let recency: Vec<f32> = activity
        .iter()
        .map(|a| {
            let e = &a.record.event;
            if options.recency {
                recency_weight(now - e.event_time, options.half_lives.days(e.family()), options.recency_floor)
            } else {
                1.0
            }
        })
        .collect();
    let total: f32 = recency.iter().sum();
    let categories: Vec<String> =
        activity.iter().map(|a| category_key(&a.record.event.custom_data.content_category)).collect();
    let mut best: Vec<(usize, f32, f32, f32)> = Vec::with_capacity(activity.len());
    items
        .iter()
        .map(|item| {
            let mut out = ItemScore::default();
            if activity.is_empty() || total <= 0.0 {
                return out;
            }
            best.clear();
            for (e, a) in activity.iter().enumerate() {
                let cos = dot(item.vector, a.vector);
                let weighted = cos.max(0.0) * recency[e];
                best.push((e, weighted, cos, recency[e]));
            }
            let top = best.iter().copied().fold(
                (0usize, -1.0f32, 0.0f32),
                |acc, (e, w, c, _)| {
                    if w > acc.1 {
                        (e, w, c)
                    } else {
                        acc
                    }
                },
            );
            let weighted = top.1.max(0.0);
            if weighted > 0.0 {
                out.similarity = top.2;
                out.best = Some(top.0);
            }
            if !item.category.trim().is_empty() {
                let key = category_key(item.category);
                let share: f32 =
                    categories.iter().zip(&recency).filter(|(c, _)| !c.is_empty() && **c == key).map(|(_, r)| r).sum();
                out.category_affinity = share / total;
            }
            if !item.source_id.is_empty() {
                let share: f32 = activity
                    .iter()
                    .zip(&recency)
                    .filter(|(a, _)| a.record.event.source_id == item.source_id)
                    .map(|(_, r)| r)
                    .sum();
                out.source_affinity = share / total;
            }
            out.score = SIMILARITY_WEIGHT * weighted
                + CATEGORY_WEIGHT * out.category_affinity
                + SOURCE_WEIGHT * out.source_affinity;
            if evidence > 0 {
                let k = evidence.min(best.len());
                best.select_nth_unstable_by(k.saturating_sub(1), |a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
                best[..k].sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
                out.evidence =
                    best[..k].iter().filter(|(_, w, _, _)| *w > 0.0).map(|&(e, _, c, r)| (e, c, r)).collect();
            }
            out
        })
        .collect()
}

/// Item indexes best first; ties keep request order.
pub fn order(scores: &[ItemScore]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].score.total_cmp(&scores[a].score).then(a.cmp(&b)));
    order
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{ActivityEvent, CustomData};

    const NOW: i64 = 1_790_000_000;
    const DAY: i64 = 86_400;

    fn record(source: &str, name: &str, category: &str, age_days: i64) -> EventRecord {
        EventRecord {
            event: ActivityEvent {
                event_id: format!("{source}-{category}-{age_days}"),
                user_id: "u".into(),
                source_id: source.into(),
                event_name: name.into(),
                event_time: NOW - age_days * DAY,
                custom_data: CustomData { content_category: category.into(), ..Default::default() },
                ..Default::default()
            },
            text: String::new(),
            ingested_at: NOW,
            content_hash: String::new(),
            injection_score: None,
            injection_head: None,
        }
    }

    fn unit(v: &[f32]) -> Vec<f32> {
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.iter().map(|x| x / n).collect()
    }

    #[test]
    fn closest_recent_activity_wins_and_evidence_names_it() {
        let hiking = unit(&[1.0, 0.0, 0.0]);
        let cooking = unit(&[0.0, 1.0, 0.0]);
        let records = [record("shop", "Purchase", "Outdoor", 2), record("shop", "Purchase", "Kitchen", 400)];
        let activity = [
            ActivityInput { record: &records[0], vector: &hiking },
            ActivityInput { record: &records[1], vector: &cooking },
        ];
        let boots = unit(&[0.9, 0.1, 0.0]);
        let pans = unit(&[0.1, 0.9, 0.0]);
        let items = [
            ItemInput { vector: &pans, category: "", source_id: "" },
            ItemInput { vector: &boots, category: "", source_id: "" },
        ];
        let scores = score_items(&items, &activity, &RankingOptions::default(), NOW, 2);
        assert_eq!(order(&scores), [1, 0], "the recent interest ranks first: {scores:?}");
        assert_eq!(scores[1].evidence[0].0, 0);
        assert_eq!(scores[1].best, Some(0));
        assert!((scores[1].similarity - dot(&boots, &hiking)).abs() < 1e-6);
        assert!(scores.iter().all(|s| (0.0..=1.0).contains(&s.score)));
    }

    #[test]
    fn category_and_source_affinity_break_ties() {
        let v = unit(&[1.0, 1.0]);
        let records =
            [record("acme", "Purchase", "Footwear > Running", 1), record("acme", "ViewContent", "Running", 1)];
        let activity: Vec<ActivityInput<'_>> =
            records.iter().map(|r| ActivityInput { record: r, vector: &v }).collect();
        let items = [
            ItemInput { vector: &v, category: "Books", source_id: "other" },
            ItemInput { vector: &v, category: "running", source_id: "acme" },
        ];
        let scores = score_items(&items, &activity, &RankingOptions::default(), NOW, 0);
        assert_eq!(scores[1].category_affinity, 1.0);
        assert_eq!(scores[1].source_affinity, 1.0);
        assert_eq!(scores[0].category_affinity, 0.0);
        assert_eq!(order(&scores), [1, 0]);
        assert!(scores[0].evidence.is_empty(), "no evidence asked");
    }

    #[test]
    fn no_activity_scores_zero_and_keeps_request_order() {
        let v = unit(&[1.0]);
        let items = vec![ItemInput { vector: &v, category: "x", source_id: "y" }; 3];
        let scores = score_items(&items, &[], &RankingOptions::default(), NOW, 3);
        assert!(scores.iter().all(|s| s.score == 0.0 && s.evidence.is_empty() && s.best.is_none()));
        assert_eq!(order(&scores), [0, 1, 2]);
    }

    #[test]
    fn dot_matches_the_plain_sum() {
        let a: Vec<f32> = (0..21).map(|i| i as f32 * 0.5).collect();
        let b: Vec<f32> = (0..21).map(|i| 1.0 - i as f32 * 0.1).collect();
        let plain: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!((dot(&a, &b) - plain).abs() < 1e-4);
    }
}
