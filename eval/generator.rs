//! The consent-aware activity benchmark: synthetic people, their permitted
//! (and unpermitted) activity across shops, games, apps, travel and
//! subscriptions, the consent operations a runner applies, chat-turn
//! questions with graded item-level labels, and per-event ground truth for
//! leak and injection checks.
//!
//! Owns generation only. It is pure and seeded: the same [`GenConfig`] and
//! [`GENERATOR_VERSION`] give byte-identical output, and each person is drawn
//! from their own ChaCha stream, so person `i` is the same whether 100 or
//! 100,000 people are generated (and [`generate_user`] can stream them). It
//! does not talk to the engine, apply consent, or score anything: the runner
//! ingests `events`, applies `grants` before and `revocations` after, asks
//! the `queries`, and checks snippets against `truth`.
//!
//! The world (businesses, items, questions) is in `generator/catalog.rs`,
//! item identity in `generator/items.rs`, the stories that make events in
//! `generator/activity.rs` (and `activity/threads.rs`), the questions and
//! grading rules in `generator/queries.rs`, the injection payloads in
//! `generator/payloads.rs`.

mod activity;
mod catalog;
mod items;
mod payloads;
mod queries;

use std::collections::HashMap;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Serialize, Serializer};

use context_engine::domain::{ActivityEvent, ConsentState, Purpose};

pub use catalog::SHOPS;
pub use payloads::PAYLOADS;

use activity::Persona;
use items::{Draft, Source};
use queries::{Ask, Knowledge};

/// Every kind of question, as tagged in [`LabeledQuery::kind`].
pub const QUERY_KINDS: [&str; 10] = queries::KINDS;

/// Bump when anything that changes output changes (catalogs, stories,
/// probabilities, phrasings): reports quote it so runs compare like with like.
pub const GENERATOR_VERSION: &str = "activity-v1";

/// 2026-09-21T13:46:40Z: a fixed default "now", so a default run is
/// reproducible. Pass the same `now` to the engine when ingesting and
/// querying.
pub const DEFAULT_NOW: i64 = 1_790_000_000;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GenConfig {
    pub seed: u64,
    pub users: usize,
    /// Unix seconds; every event is at or before it.
    pub now: i64,
    /// Events spread over this many days before `now`.
    pub days: i64,
    /// Inclusive range of events per person.
    pub events_per_user: (usize, usize),
    /// Questions asked per person (fewer when their allowed activity cannot
    /// answer that many).
    pub queries_per_user: usize,
    /// Share of events carrying a prompt-injection payload.
    pub injection_rate: f64,
    /// Share of events flagged Limited Data Use.
    pub ldu_rate: f64,
}

impl Default for GenConfig {
    fn default() -> Self {
        Self {
            seed: 42,
            users: 100,
            now: DEFAULT_NOW,
            days: 180,
            events_per_user: (30, 100),
            queries_per_user: 6,
            injection_rate: 0.03,
            ldu_rate: 0.03,
        }
    }
}

/// One consent change for a runner to apply, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConsentOp {
    pub user_id: String,
    pub source_id: String,
    pub purpose: Purpose,
    pub state: ConsentState,
}

/// A chat turn and its graded item-level labels (`"{source_id}/{item_id}"`
/// → grade 1 or 2). Only items allowed for `purpose` are labelled.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LabeledQuery {
    pub query_id: String,
    pub user_id: String,
    /// One of [`QUERY_KINDS`].
    pub kind: &'static str,
    pub text: String,
    pub purpose: Purpose,
    #[serde(serialize_with = "sorted_map")]
    pub relevant: HashMap<String, u32>,
}

/// (source_id, event_id): the engine's idempotency key, and the truth's.
pub type TruthKey = (String, String);

/// What the generator knows about one event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventTruth {
    pub user_id: String,
    pub source_id: String,
    pub item_key: String,
    /// Purposes the event may serve once every consent op (grants, then
    /// revocations) is applied; empty for LDU events.
    pub allowed_for: Vec<Purpose>,
    pub ldu: bool,
    pub injected: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UserData {
    pub user_id: String,
    /// Applied before ingest, in order.
    pub grants: Vec<ConsentOp>,
    /// In time order.
    pub events: Vec<ActivityEvent>,
    /// Applied after ingest: every purpose of a few sources.
    pub revocations: Vec<ConsentOp>,
    pub queries: Vec<LabeledQuery>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Dataset {
    pub version: &'static str,
    pub config: GenConfig,
    pub users: Vec<UserData>,
    /// Keyed by (source_id, event_id).
    #[serde(serialize_with = "sorted_truth")]
    pub truth: HashMap<TruthKey, EventTruth>,
}

/// Totals, for reports and sanity checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Stats {
    pub users: usize,
    pub events: usize,
    /// Distinct (user, item key) pairs.
    pub items: usize,
    pub queries: usize,
    pub ldu_events: usize,
    pub injected_events: usize,
    pub chat_allowed_events: usize,
    pub revoked_sources: usize,
}

impl Dataset {
    pub fn truth_of(&self, source_id: &str, event_id: &str) -> Option<&EventTruth> {
        self.truth.get(&(source_id.to_string(), event_id.to_string()))
    }

    pub fn stats(&self) -> Stats {
        let items: std::collections::HashSet<(&str, &str)> =
            self.truth.values().map(|t| (t.user_id.as_str(), t.item_key.as_str())).collect();
        let count = |f: fn(&EventTruth) -> bool| self.truth.values().filter(|t| f(t)).count();
        Stats {
            users: self.users.len(),
            events: self.users.iter().map(|u| u.events.len()).sum(),
            items: items.len(),
            queries: self.users.iter().map(|u| u.queries.len()).sum(),
            ldu_events: count(|t| t.ldu),
            injected_events: count(|t| t.injected),
            chat_allowed_events: count(|t| t.allowed_for.contains(&Purpose::ChatAssistant)),
            revoked_sources: self.users.iter().map(|u| u.revocations.len() / Purpose::ALL.len()).sum(),
        }
    }
}

fn sorted_map<S: Serializer>(map: &HashMap<String, u32>, s: S) -> Result<S::Ok, S::Error> {
    let sorted: std::collections::BTreeMap<&String, &u32> = map.iter().collect();
    sorted.serialize(s)
}

/// JSON object keys must be strings, and a HashMap's order is random: write
/// the truth as a list sorted by (source_id, event_id).
fn sorted_truth<S: Serializer>(map: &HashMap<TruthKey, EventTruth>, s: S) -> Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    struct Row<'a> {
        source_id: &'a str,
        event_id: &'a str,
        #[serde(flatten)]
        truth: &'a EventTruth,
    }
    let mut rows: Vec<Row> =
        map.iter().map(|((source_id, event_id), truth)| Row { source_id, event_id, truth }).collect();
    rows.sort_by(|a, b| (a.source_id, a.event_id).cmp(&(b.source_id, b.event_id)));
    rows.serialize(s)
}

/// Generates the whole dataset.
pub fn generate(config: &GenConfig) -> Dataset {
    let mut users = Vec::with_capacity(config.users);
    // Growing a map of ~10^6 keys by doubling costs as much as filling it.
    let (lo, hi) = config.events_per_user;
    let mut truth = HashMap::with_capacity(config.users.saturating_mul(lo.saturating_add(hi) / 2));
    for index in 0..config.users {
        let (user, user_truth) = generate_user(config, index);
        truth.extend(user_truth);
        users.push(user);
    }
    Dataset { version: GENERATOR_VERSION, config: config.clone(), users, truth }
}

/// The person's final consent per source: `[chat, feed]`.
struct SourceConsent {
    source: Source,
    allowed: [bool; 2],
}

fn purpose_index(purpose: Purpose) -> usize {
    match purpose {
        Purpose::ChatAssistant => 0,
        Purpose::FeedRanking => 1,
    }
}

/// Grants (with some churn) and post-ingest revocations for each source.
/// Every source keeps at least one purpose until the revocations, so all its
/// events (but LDU ones) are stored and a revocation has something to purge.
fn consent(
    rng: &mut ChaCha8Rng,
    user_id: &str,
    sources: &[Source],
) -> (Vec<ConsentOp>, Vec<ConsentOp>, Vec<SourceConsent>) {
    let op = |source: Source, purpose, state| ConsentOp {
        user_id: user_id.to_string(),
        source_id: source.id().to_string(),
        purpose,
        state,
    };
    let (mut grants, mut revocations, mut finals) = (Vec::new(), Vec::new(), Vec::new());
    for &source in sources {
        let r: f64 = rng.random();
        let (mut chat, feed) = if r < 0.68 {
            (true, true)
        } else if r < 0.82 {
            (true, false)
        } else {
            (false, true)
        };
        if chat {
            grants.push(op(source, Purpose::ChatAssistant, ConsentState::Granted));
        }
        if feed {
            grants.push(op(source, Purpose::FeedRanking, ConsentState::Granted));
        }
        // People change their minds: revoke chat, and re-grant it unless
        // feed ranking still holds the source.
        if chat && rng.random_bool(0.06) {
            grants.push(op(source, Purpose::ChatAssistant, ConsentState::Revoked));
            chat = !feed || rng.random_bool(0.5);
            if chat {
                grants.push(op(source, Purpose::ChatAssistant, ConsentState::Granted));
            }
        }
        let mut allowed = [chat, feed];
        if rng.random_bool(0.07) {
            for purpose in Purpose::ALL {
                revocations.push(op(source, purpose, ConsentState::Revoked));
            }
            allowed = [false, false];
        }
        finals.push(SourceConsent { source, allowed });
    }
    (grants, revocations, finals)
}

/// Generates person `index` alone: their data and the truth about each of
/// their events, keyed by (source_id, event_id).
pub fn generate_user(config: &GenConfig, index: usize) -> (UserData, Vec<(TruthKey, EventTruth)>) {
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    rng.set_stream(index as u64);
    let user_id = format!("u{index:06}");
    let persona = Persona::draw(&mut rng);
    let (grants, revocations, consents) = consent(&mut rng, &user_id, &persona.sources);

    let (lo, hi) = config.events_per_user;
    let target = rng.random_range(lo.min(hi)..=hi.max(lo));
    let mut drafts = activity::events(&mut rng, &user_id, &persona, config.now, config.days, target);

    let mut ldu = vec![false; drafts.len()];
    let mut injected = vec![false; drafts.len()];
    for (i, draft) in drafts.iter_mut().enumerate() {
        if rng.random_bool(config.ldu_rate.clamp(0.0, 1.0)) {
            draft.event.data_processing_options = vec!["LDU".into()];
            ldu[i] = true;
        }
        if rng.random_bool(config.injection_rate.clamp(0.0, 1.0)) {
            payloads::inject(&mut draft.event, &mut rng);
            injected[i] = true;
        }
    }

    let allowed_for = |draft: &Draft, i: usize| -> Vec<Purpose> {
        if ldu[i] {
            return Vec::new();
        }
        let consent = consents.iter().find(|c| c.source.id() == draft.event.source_id);
        Purpose::ALL.into_iter().filter(|&p| consent.is_some_and(|c| c.allowed[purpose_index(p)])).collect()
    };
    let allowed: Vec<Vec<Purpose>> = drafts.iter().enumerate().map(|(i, d)| allowed_for(d, i)).collect();

    let queries = questions(&mut rng, config, &user_id, &persona, &drafts, &allowed);

    let truth = drafts
        .iter()
        .zip(&allowed)
        .enumerate()
        .map(|(i, (draft, allowed_for))| {
            let key = (draft.event.source_id.clone(), draft.event.event_id.clone());
            let truth = EventTruth {
                user_id: user_id.clone(),
                source_id: draft.event.source_id.clone(),
                item_key: draft.item_key.clone(),
                allowed_for: allowed_for.clone(),
                ldu: ldu[i],
                injected: injected[i],
            };
            (key, truth)
        })
        .collect();
    let events = drafts.into_iter().map(|d| d.event).collect();
    (UserData { user_id, grants, events, revocations, queries }, truth)
}

/// Up to `queries_per_user` questions spread over kinds, each with at least
/// one relevant allowed item.
fn questions(
    rng: &mut ChaCha8Rng,
    config: &GenConfig,
    user_id: &str,
    persona: &Persona,
    drafts: &[Draft],
    allowed: &[Vec<Purpose>],
) -> Vec<LabeledQuery> {
    let knowledge: Vec<Knowledge> = Purpose::ALL
        .iter()
        .map(|p| {
            let mask: Vec<bool> = allowed.iter().map(|a| a.contains(p)).collect();
            Knowledge::new(drafts, &mask, config.now)
        })
        .collect();
    let asks: Vec<Ask> = queries::interleave(queries::candidates(drafts, config.now), rng);
    let mut out = Vec::new();
    for ask in asks {
        if out.len() >= config.queries_per_user {
            break;
        }
        let purpose = ask.purpose(rng);
        let relevant = knowledge[purpose_index(purpose)].labels(ask);
        if relevant.is_empty() {
            continue;
        }
        out.push(LabeledQuery {
            query_id: format!("q-{user_id}-{}", out.len() + 1),
            user_id: user_id.to_string(),
            kind: ask.kind(),
            text: ask.text(rng, persona.course),
            purpose,
            relevant,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::time::Instant;

    use context_engine::domain::Limits;

    use super::*;

    fn small() -> GenConfig {
        GenConfig { users: 60, ..GenConfig::default() }
    }

    #[test]
    fn same_seed_same_bytes_and_another_seed_differs() {
        let a = serde_json::to_string(&generate(&small())).unwrap();
        let b = serde_json::to_string(&generate(&small())).unwrap();
        assert_eq!(a, b);
        let c = serde_json::to_string(&generate(&GenConfig { seed: 7, ..small() })).unwrap();
        assert_ne!(a, c);
    }

    #[test]
    fn a_person_does_not_depend_on_how_many_are_generated() {
        let few = generate(&GenConfig { users: 3, ..small() });
        let many = generate(&small());
        assert_eq!(few.users[..], many.users[..3]);
    }

    #[test]
    fn every_event_validates_and_ids_are_unique() {
        let config = small();
        let data = generate(&config);
        let mut ids = HashSet::new();
        for user in &data.users {
            assert!(config.events_per_user.0 <= user.events.len() && user.events.len() <= config.events_per_user.1);
            for e in &user.events {
                assert_eq!(e.validate(&Limits::default(), config.now), Ok(()), "{e:?}");
                assert!(e.event_time >= config.now - config.days * 86_400, "{e:?}");
                assert!(ids.insert((e.source_id.clone(), e.event_id.clone())), "duplicate {}", e.event_id);
                assert!(data.truth_of(&e.source_id, &e.event_id).is_some());
            }
            assert!(user.events.windows(2).all(|w| w[0].event_time <= w[1].event_time));
        }
        assert_eq!(ids.len(), data.truth.len());
    }

    #[test]
    fn labels_reference_only_allowed_items_of_the_same_user() {
        let data = generate(&small());
        let mut kinds = HashSet::new();
        for user in &data.users {
            let mut allowed: HashMap<Purpose, HashSet<&str>> = HashMap::new();
            for e in &user.events {
                let t = data.truth_of(&e.source_id, &e.event_id).unwrap();
                assert_eq!(t.user_id, user.user_id);
                for p in &t.allowed_for {
                    allowed.entry(*p).or_default().insert(t.item_key.as_str());
                }
            }
            for q in &user.queries {
                kinds.insert(q.kind);
                assert_eq!(q.user_id, user.user_id);
                assert!(!q.relevant.is_empty(), "{q:?}");
                for (key, grade) in &q.relevant {
                    assert!((1..=2).contains(grade));
                    assert!(allowed.get(&q.purpose).is_some_and(|s| s.contains(key.as_str())), "{key} in {q:?}");
                }
            }
        }
        // Sixty people exercise every kind of question.
        assert_eq!(kinds.len(), QUERY_KINDS.len(), "{kinds:?}");
    }

    #[test]
    fn revoked_and_feed_only_sources_have_no_chat_labels() {
        let data = generate(&GenConfig { users: 150, ..small() });
        let (mut revoked_seen, mut feed_only_seen) = (0, 0);
        for user in &data.users {
            let revoked: HashSet<&str> = user.revocations.iter().map(|op| op.source_id.as_str()).collect();
            // Replay the grants to find sources where chat ends revoked or
            // was never granted while feed ranking is.
            let mut state: HashMap<(&str, Purpose), ConsentState> = HashMap::new();
            for op in &user.grants {
                state.insert((op.source_id.as_str(), op.purpose), op.state);
            }
            let chat_off = |source: &str| state.get(&(source, Purpose::ChatAssistant)) != Some(&ConsentState::Granted);
            let feed_only: HashSet<&str> = state
                .keys()
                .map(|(s, _)| *s)
                .filter(|s| chat_off(s) && state.get(&(*s, Purpose::FeedRanking)) == Some(&ConsentState::Granted))
                .collect();
            revoked_seen += revoked.len();
            feed_only_seen += feed_only.len();
            for q in user.queries.iter().filter(|q| q.purpose == Purpose::ChatAssistant) {
                for key in q.relevant.keys() {
                    let source = key.split('/').next().unwrap();
                    assert!(!revoked.contains(source), "revoked {key} in {q:?}");
                    assert!(!feed_only.contains(source), "feed-only {key} in {q:?}");
                }
            }
            for q in user.queries.iter().filter(|q| q.purpose == Purpose::FeedRanking) {
                for key in q.relevant.keys() {
                    assert!(!revoked.contains(key.split('/').next().unwrap()), "{key}");
                }
            }
        }
        assert!(revoked_seen > 0 && feed_only_seen > 0, "{revoked_seen} {feed_only_seen}");
    }

    #[test]
    fn injection_and_ldu_shares_are_near_their_rates() {
        let data = generate(&GenConfig { users: 200, ..small() });
        let stats = data.stats();
        let injected = stats.injected_events as f64 / stats.events as f64;
        let ldu = stats.ldu_events as f64 / stats.events as f64;
        assert!((injected - 0.03).abs() < 0.008, "{injected}");
        assert!((ldu - 0.03).abs() < 0.008, "{ldu}");
        for t in data.truth.values().filter(|t| t.ldu) {
            assert!(t.allowed_for.is_empty());
        }
        let none = generate(&GenConfig { users: 20, injection_rate: 0.0, ldu_rate: 0.0, ..small() }).stats();
        assert_eq!((none.injected_events, none.ldu_events), (0, 0));
    }

    #[test]
    fn repeats_make_items_fewer_than_events() {
        let stats = generate(&small()).stats();
        assert!(stats.items * 2 < stats.events, "{stats:?}");
        assert!(stats.queries >= stats.users * 4, "{stats:?}");
    }

    #[test]
    #[ignore = "timing: run with --ignored in release for the 10k-user figure"]
    fn ten_thousand_users_generate_quickly() {
        let start = Instant::now();
        let data = generate(&GenConfig { users: 10_000, ..GenConfig::default() });
        let elapsed = start.elapsed();
        eprintln!("10k users: {:?} in {elapsed:?}", data.stats());
        assert!(elapsed.as_secs() < 30, "{elapsed:?}");
    }
}
