//! Collapse of repeats: events of one kind about one item (five views of a
//! product, daily sessions of one game) become one group, shown as one
//! snippet that says how often and when last.

use std::collections::HashMap;

use super::Candidate;
use crate::domain::ActivityEvent;

/// What an event is about, for collapsing: the first content id, else the
/// first line item's id, else the item name or search string (case- and
/// space-insensitive). `None` when the event names no item: it stays alone.
pub fn item_key(event: &ActivityEvent) -> Option<String> {
    let data = &event.custom_data;
    let id = data
        .content_ids
        .first()
        .map(|s| s.trim().to_string())
        .or_else(|| data.contents.first().map(|c| c.id.trim().to_string()))
        .filter(|s| !s.is_empty());
    if let Some(id) = id {
        return Some(format!("id:{id}"));
    }
    let name = if data.content_name.trim().is_empty() { &data.search_string } else { &data.content_name };
    let folded: String = name.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase();
    (!folded.is_empty()).then(|| format!("name:{folded}"))
}

/// Candidates that became one snippet.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    /// Candidate indexes, most recent event first.
    pub members: Vec<usize>,
    /// Best member score.
    pub score: f32,
    /// Said after the shown event's sentence instead of "(N times since
    /// …)" (proactive context: "one of 7 related activities since …").
    pub note: Option<String>,
}

impl Group {
    /// The member shown (and cited): the most recent event.
    pub fn latest(&self) -> usize {
        self.members[0]
    }
}

/// Groups the candidates (one group each when `collapse` is off), best
/// score first; ties broken by point id so the order is deterministic.
pub fn group(candidates: &[Candidate], scores: &[f32], collapse: bool) -> Vec<Group> {
    let mut groups: Vec<Group> = Vec::new();
    let mut by_key: HashMap<(String, String, String), usize> = HashMap::new();
    for (i, candidate) in candidates.iter().enumerate() {
        let event = &candidate.record.event;
        let key = collapse
            .then(|| item_key(event))
            .flatten()
            .map(|item| (event.source_id.clone(), event.event_name.clone(), item));
        match key.as_ref().and_then(|k| by_key.get(k)) {
            Some(&g) => {
                groups[g].members.push(i);
                groups[g].score = groups[g].score.max(scores[i]);
            }
            None => {
                if let Some(key) = key {
                    by_key.insert(key, groups.len());
                }
                groups.push(Group { members: vec![i], score: scores[i], note: None });
            }
        }
    }
    for g in &mut groups {
        g.members.sort_by(|&a, &b| {
            let (ea, eb) = (&candidates[a].record.event, &candidates[b].record.event);
            eb.event_time.cmp(&ea.event_time).then_with(|| candidates[a].point_id.cmp(&candidates[b].point_id))
        });
    }
    groups.sort_by(|a, b| {
        b.score.total_cmp(&a.score).then_with(|| candidates[a.latest()].point_id.cmp(&candidates[b.latest()].point_id))
    });
    groups
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Content, CustomData, EventRecord};

    fn candidate(id: &str, name: &str, data: CustomData, time: i64) -> Candidate {
        Candidate {
            point_id: id.into(),
            record: EventRecord {
                event: ActivityEvent {
                    event_id: id.into(),
                    source_id: "shop".into(),
                    event_name: name.into(),
                    event_time: time,
                    custom_data: data,
                    ..Default::default()
                },
                text: String::new(),
                ingested_at: 0,
                content_hash: String::new(),
                injection_score: None,
                injection_head: None,
            },
            vector: vec![1.0],
            dense_rank: None,
            sparse_rank: None,
            sparse_score: None,
            consent_version: 1,
        }
    }

    #[test]
    fn item_keys_prefer_ids_and_fold_names() {
        let named = |n: &str| CustomData { content_name: n.into(), ..Default::default() };
        let e = |data| candidate("x", "ViewContent", data, 0).record.event;
        assert_eq!(item_key(&e(CustomData { content_ids: vec!["sku1".into()], ..named("A") })).unwrap(), "id:sku1");
        let contents = vec![Content { id: "sku2".into(), ..Default::default() }];
        assert_eq!(item_key(&e(CustomData { contents, ..Default::default() })).unwrap(), "id:sku2");
        assert_eq!(item_key(&e(named("  Trail   Runner "))), item_key(&e(named("trail runner"))));
        assert_eq!(item_key(&e(CustomData::default())), None);
    }

    #[test]
    fn repeats_group_latest_first_and_kinds_stay_apart() {
        let named = || CustomData { content_name: "Poles".into(), ..Default::default() };
        let cands = vec![
            candidate("a", "ViewContent", named(), 10),
            candidate("b", "ViewContent", named(), 30),
            candidate("c", "Purchase", named(), 20),
            candidate("d", "ViewContent", CustomData::default(), 5),
            candidate("e", "ViewContent", CustomData::default(), 6),
        ];
        let scores = [0.9, 0.5, 0.7, 0.1, 0.2];
        let groups = group(&cands, &scores, true);
        assert_eq!(groups.len(), 4, "views of Poles merge; the purchase and item-less events stay alone");
        assert_eq!(groups[0].members, vec![1, 0], "latest first");
        assert_eq!(groups[0].score, 0.9, "best member's score");
        assert_eq!(group(&cands, &scores, false).len(), 5);
    }
}
