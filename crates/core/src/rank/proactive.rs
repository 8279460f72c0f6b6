//! Proactive context: what matters now for a person, without a query.
//! Pure: picks and orders from the person's permitted activity; the engine
//! fetches it, then packs and renders the picks like any context.
//!
//! Three kinds of pick, scored so they interleave sensibly:
//!
//! * **upcoming**: an event with a date within the horizon (a property such
//!   as `travel_date`, `check_in`, `event_date`, `renewal_date`,
//!   `trial_end_date`; or a `StartTrial` with `trial_days`). Score
//!   `1 + 0.5 · (1 − days_until / horizon)`: sooner is higher, and every
//!   upcoming item outranks the other kinds (it is the most time-critical).
//! * **recent purchase**: a purchase within `recent_days` whose value is at
//!   least the person's median purchase value. Score
//!   `0.5 + 0.4 · 2^(−age / (recent_days / 2))`.
//! * **interest**: events of the last `3 · recent_days` clustered greedily by
//!   cosine ≥ [`CLUSTER_COSINE`] to a cluster's centroid; a cluster of at
//!   least [`MIN_CLUSTER`] events is an interest, weighed by its members'
//!   recency (half-life `recent_days`). The three heaviest are kept, each
//!   shown by its most central member, scored `0.3 + 0.5 · weight / heaviest`.
//!
//! A cluster that holds an event picked as upcoming or as a purchase is not
//! an interest of its own (the topic is already shown).

use chrono::{DateTime, NaiveDate};

use super::score::recency_weight;
use crate::domain::{EventFamily, EventRecord};

const DAY: i64 = 86_400;
/// Cosine to a cluster centroid that joins the cluster.
pub const CLUSTER_COSINE: f32 = 0.55;
/// Smallest cluster that counts as an interest.
pub const MIN_CLUSTER: usize = 2;
/// Interests kept.
pub const MAX_INTERESTS: usize = 3;

/// Property keys that date an event's future occurrence, in order of trust.
pub const DATE_KEYS: &[&str] = &[
    "travel_date",
    "departure_date",
    "check_in",
    "checkin_date",
    "start_date",
    "event_date",
    "appointment_date",
    "renewal_date",
    "next_billing_date",
    "trial_end_date",
    "trial_end",
    "expiry_date",
    "expires_at",
    "due_date",
    "date",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    Upcoming,
    RecentPurchase,
    Interest,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Pick {
    pub reason: Reason,
    /// Activity indexes; the first is the one shown, the others the rest of
    /// an interest's cluster.
    pub members: Vec<usize>,
    pub score: f32,
    /// Upcoming: unix seconds (00:00 UTC of the date).
    pub due_time: i64,
}

/// One event of the person's permitted activity.
#[derive(Debug, Clone, Copy)]
pub struct ActivityInput<'a> {
    pub record: &'a EventRecord,
    pub vector: &'a [f32],
}

fn parse_date(value: &str) -> Option<i64> {
    let head = value.trim().get(..10)?;
    let date = NaiveDate::parse_from_str(head, "%Y-%m-%d").ok()?;
    Some(date.and_hms_opt(0, 0, 0)?.and_utc().timestamp())
}

/// When the event's dated occurrence is due, if it says.
pub fn due_time(record: &EventRecord) -> Option<i64> {
    let props = &record.event.custom_data.properties;
    if let Some(t) = DATE_KEYS.iter().find_map(|k| props.get(*k).and_then(|v| parse_date(v))) {
        return Some(t);
    }
    if record.event.event_name == "StartTrial" {
        let days: i64 = props.get("trial_days").and_then(|d| d.trim().parse().ok())?;
        return (1..=366).contains(&days).then(|| record.event.event_time + days * DAY);
    }
    None
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn date(unix: i64) -> String {
    DateTime::from_timestamp(unix, 0).map(|d| d.format("%Y-%m-%d").to_string()).unwrap_or_default()
}

/// The picks, best first.
pub fn select(activity: &[ActivityInput<'_>], now: i64, horizon_days: u32, recent_days: u32) -> Vec<Pick> {
    let today = now - now.rem_euclid(DAY);
    let horizon = i64::from(horizon_days.max(1)) * DAY;
    let recent = i64::from(recent_days.max(1)) * DAY;
    let mut picks = Vec::new();
    let mut used = vec![false; activity.len()];

    for (i, a) in activity.iter().enumerate() {
        if let Some(due) = due_time(a.record) {
            if due >= today && due <= now + horizon {
                let until = (due - now).max(0) as f32 / horizon as f32;
                picks.push(Pick {
                    reason: Reason::Upcoming,
                    members: vec![i],
                    score: 1.0 + 0.5 * (1.0 - until),
                    due_time: due,
                });
                used[i] = true;
            }
        }
    }

    let mut values: Vec<f64> = activity
        .iter()
        .filter(|a| a.record.event.family() == EventFamily::Purchase)
        .filter_map(|a| a.record.event.custom_data.value)
        .filter(|v| *v > 0.0)
        .collect();
    values.sort_by(f64::total_cmp);
    if let Some(&median) = values.get(values.len() / 2) {
        for (i, a) in activity.iter().enumerate() {
            let e = &a.record.event;
            let age = now - e.event_time;
            let significant = e.custom_data.value.is_some_and(|v| v > 0.0 && v >= median);
            if !used[i] && e.family() == EventFamily::Purchase && (0..=recent).contains(&age) && significant {
                let score = 0.5 + 0.4 * recency_weight(age, f64::from(recent_days.max(1)) / 2.0, 0.0);
                picks.push(Pick { reason: Reason::RecentPurchase, members: vec![i], score, due_time: 0 });
                used[i] = true;
            }
        }
    }

    // Interests: greedy clusters of recent activity, newest first.
    let mut recent_idx: Vec<usize> = (0..activity.len())
        .filter(|&i| (0..=3 * recent).contains(&(now - activity[i].record.event.event_time)))
        .collect();
    recent_idx.sort_by_key(|&i| (std::cmp::Reverse(activity[i].record.event.event_time), i));
    let mut clusters: Vec<(Vec<f32>, Vec<usize>)> = Vec::new();
    for &i in &recent_idx {
        let v = activity[i].vector;
        let best = clusters
            .iter()
            .enumerate()
            .map(|(c, (sum, _))| {
                let norm = sum.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-9);
                (c, dot(sum, v) / norm)
            })
            .filter(|(_, cos)| *cos >= CLUSTER_COSINE)
            .max_by(|a, b| a.1.total_cmp(&b.1));
        match best {
            Some((c, _)) => {
                clusters[c].0.iter_mut().zip(v).for_each(|(s, x)| *s += x);
                clusters[c].1.push(i);
            }
            None => clusters.push((v.to_vec(), vec![i])),
        }
    }
    let half_life = f64::from(recent_days.max(1));
    let mut interests: Vec<(f32, Vec<f32>, Vec<usize>)> = clusters
        .into_iter()
        .filter(|(_, members)| members.len() >= MIN_CLUSTER)
        .map(|(sum, members)| {
            let weight = members
                .iter()
                .map(|&i| recency_weight(now - activity[i].record.event.event_time, half_life, 0.0))
                .sum();
            (weight, sum, members)
        })
        .collect();
    interests.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.2[0].cmp(&b.2[0])));
    let heaviest = interests.first().map_or(1.0, |i| i.0.max(1e-9));
    // A cluster holding an event already shown (as upcoming or a purchase)
    // is that topic again: skipped.
    interests.retain(|(_, _, members)| members.iter().all(|&i| !used[i]));
    for (weight, sum, members) in interests.into_iter().take(MAX_INTERESTS) {
        // The most central member.
        let Some(&shown) = members
            .iter()
            .max_by(|&&a, &&b| dot(&sum, activity[a].vector).total_cmp(&dot(&sum, activity[b].vector)).then(b.cmp(&a)))
        else {
            continue;
        };
        used[shown] = true;
        let mut ordered = vec![shown];
        ordered.extend(members.iter().copied().filter(|&i| i != shown));
        picks.push(Pick {
            reason: Reason::Interest,
            members: ordered,
            score: 0.3 + 0.5 * weight / heaviest,
            due_time: 0,
        });
    }
    picks.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.members[0].cmp(&b.members[0])));
    picks
}

/// What the rendered line adds to the shown event's sentence.
pub fn note(pick: &Pick, activity: &[ActivityInput<'_>], now: i64) -> Option<String> {
    match pick.reason {
        Reason::Upcoming => {
            let days = (pick.due_time - (now - now.rem_euclid(DAY))) / DAY;
            Some(match days {
                0 => format!(" (upcoming: today, {})", date(pick.due_time)),
                1 => format!(" (upcoming: tomorrow, {})", date(pick.due_time)),
                d => format!(" (upcoming: in {d} days, {})", date(pick.due_time)),
            })
        }
        Reason::RecentPurchase => None,
        Reason::Interest => {
            let first = pick.members.iter().map(|&i| activity[i].record.event.event_time).min().unwrap_or(now);
            Some(format!(" (one of {} related activities since {})", pick.members.len(), date(first)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{ActivityEvent, CustomData};

    const NOW: i64 = 1_790_000_000;

    fn record(name: &str, age_days: i64, value: Option<f64>, props: &[(&str, &str)]) -> EventRecord {
        EventRecord {
            event: ActivityEvent {
                event_id: format!("{name}-{age_days}"),
                user_id: "u".into(),
                source_id: "s".into(),
                event_name: name.into(),
                event_time: NOW - age_days * DAY,
                custom_data: CustomData {
                    value,
                    currency: "EUR".into(),
                    properties: props.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
                    ..Default::default()
                },
                ..Default::default()
            },
            text: format!("{name} {age_days}"),
            ingested_at: NOW,
            content_hash: String::new(),
            injection_score: None,
            injection_head: None,
        }
    }

    #[test]
    fn upcoming_first_then_purchases_then_interests() {
        let in_5_days = date(NOW + 5 * DAY);
        let last_year = date(NOW - 300 * DAY);
        let records = [
            record("FlightBooked", 10, Some(300.0), &[("travel_date", &in_5_days)]),
            record("FlightBooked", 400, Some(300.0), &[("travel_date", &last_year)]),
            record("Purchase", 3, Some(200.0), &[]),
            record("Purchase", 4, Some(5.0), &[]),
            record("Purchase", 200, Some(900.0), &[]),
            record("ViewContent", 1, None, &[]),
            record("ViewContent", 2, None, &[]),
            record("Search", 6, None, &[]),
        ];
        let hiking = [1.0f32, 0.0];
        let other = [0.0f32, 1.0];
        let vectors: Vec<&[f32]> = vec![&other, &other, &other, &other, &other, &hiking, &hiking, &hiking];
        let activity: Vec<ActivityInput<'_>> =
            records.iter().zip(vectors).map(|(record, vector)| ActivityInput { record, vector }).collect();
        let picks = select(&activity, NOW, 30, 30);
        let reasons: Vec<(Reason, usize)> = picks.iter().map(|p| (p.reason, p.members[0])).collect();
        assert_eq!(reasons[0], (Reason::Upcoming, 0), "{picks:?}");
        assert_eq!(reasons[1], (Reason::RecentPurchase, 2), "{picks:?}");
        assert!(!reasons.contains(&(Reason::RecentPurchase, 3)), "below the median");
        assert!(!reasons.iter().any(|(_, i)| *i == 1), "past trip");
        assert!(!reasons.iter().any(|(_, i)| *i == 4), "old purchase");
        let interest = picks.iter().find(|p| p.reason == Reason::Interest).expect("an interest");
        assert_eq!(interest.members.len(), 3);
        assert!(note(&picks[0], &activity, NOW).unwrap().contains("in 5 days"));
        assert!(note(interest, &activity, NOW).unwrap().contains("one of 3 related activities"));
    }

    #[test]
    fn trials_and_dates_are_read() {
        let r = record("StartTrial", 10, None, &[("trial_days", "14")]);
        assert_eq!(due_time(&r), Some(NOW + 4 * DAY));
        let r = record("HotelBooked", 1, None, &[("check_in", "2026-12-24T15:00:00Z")]);
        assert_eq!(due_time(&r).map(date).as_deref(), Some("2026-12-24"));
        assert_eq!(due_time(&record("HotelBooked", 1, None, &[("check_in", "soon")])), None);
        assert_eq!(due_time(&record("StartTrial", 1, None, &[("trial_days", "9999")])), None);
    }

    #[test]
    fn nothing_recent_means_no_picks() {
        let records = [record("ViewContent", 500, None, &[])];
        let v = [1.0f32];
        let activity = [ActivityInput { record: &records[0], vector: &v }];
        assert!(select(&activity, NOW, 30, 30).is_empty());
        assert!(select(&[], NOW, 30, 30).is_empty());
    }
}
