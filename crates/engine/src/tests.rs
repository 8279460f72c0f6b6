//! Engine logic on in-memory fakes (`fakes.rs`): ingest decisions, scope,
//! post-check, ranking plumbing, consent changes, erasure bookkeeping, stats.
//! No model, no disk: the whole file runs in well under a second.

use std::sync::Arc;

use ce_core::domain::{ActivityEvent, ConsentGrant, ConsentState, CustomData, Purpose};
use ce_embed::{BatchConfig, EmbedHandle};

use crate::fakes::{grants_by_key, Gate, HashEmbedder, MemoryStore, WordCounter};
use crate::*;

const NOW: i64 = 1_790_000_000;
const DAY: i64 = 86_400;

struct Fixture {
    engine: Engine,
    store: Arc<MemoryStore>,
    embedded: Arc<parking_lot::Mutex<Vec<Vec<String>>>>,
}

fn fixture() -> Fixture {
    fixture_with(None)
}

fn fixture_with(gate: Option<Gate>) -> Fixture {
    let store = MemoryStore::new();
    let mut embedder = HashEmbedder::new(64);
    embedder.gate = gate;
    let embedded = embedder.calls.clone();
    let handle = EmbedHandle::spawn(Box::new(embedder), BatchConfig::default()).unwrap();
    let engine = Engine::new(handle, store.clone(), Arc::new(WordCounter), EngineConfig::default());
    Fixture { engine, store, embedded }
}

fn purchase(user: &str, source: &str, id: &str, name: &str, age_days: i64) -> ActivityEvent {
    ActivityEvent {
        event_id: id.into(),
        user_id: user.into(),
        source_id: source.into(),
        event_name: "Purchase".into(),
        event_time: NOW - age_days * DAY,
        action_source: "website".into(),
        custom_data: CustomData {
            content_name: name.into(),
            value: Some(10.0),
            currency: "EUR".into(),
            ..Default::default()
        },
        ..Default::default()
    }
}

async fn grant(f: &Fixture, user: &str, source: &str, purpose: Purpose) {
    f.engine.set_consent(user, source, Some(purpose), Some(ConsentState::Granted), NOW).await.unwrap();
}

fn request(user: &str, purpose: Purpose, query: &str) -> ContextRequest {
    ContextRequest {
        user_id: user.into(),
        purpose: Some(purpose),
        caller: "orchestrator".into(),
        query: query.into(),
        ..Default::default()
    }
}

fn reason(outcome: &EventOutcome) -> Option<RejectReason> {
    match outcome {
        EventOutcome::Rejected { reason, .. } => Some(*reason),
        EventOutcome::Accepted { .. } => None,
    }
}

#[tokio::test]
async fn ingest_stores_only_events_whose_pair_has_a_grant() {
    let f = fixture();
    grant(&f, "u1", "shop", Purpose::ChatAssistant).await;
    let out = f
        .engine
        .ingest(vec![purchase("u1", "shop", "e1", "Trail Runner", 1), purchase("u1", "other", "e2", "Kettle", 1)], NOW)
        .await
        .unwrap();
    assert!(out[0].is_accepted(), "{out:?}");
    assert_eq!(reason(&out[1]), Some(RejectReason::NoConsent));
    let stored = f.store.events.lock();
    assert_eq!(stored.len(), 1);
    let record = &stored.values().next().unwrap().record;
    assert_eq!(record.event.event_id, "e1");
    assert!(record.text.contains("Trail Runner"), "{}", record.text);
    assert_eq!(record.content_hash, content_hash(&record.event));
}

#[tokio::test]
async fn invalid_and_duplicate_events_are_reported_per_event_and_nothing_is_embedded_for_them() {
    let f = fixture();
    grant(&f, "u1", "shop", Purpose::ChatAssistant).await;
    let mut bad = purchase("u1", "shop", "e2", "X", 1);
    bad.event_name = "not a name".into();
    let out = f
        .engine
        .ingest(vec![purchase("u1", "shop", "e1", "A", 1), purchase("u1", "shop", "e1", "B", 1), bad], NOW)
        .await
        .unwrap();
    assert!(out[0].is_accepted());
    assert_eq!(reason(&out[1]), Some(RejectReason::DuplicateInBatch));
    match &out[2] {
        EventOutcome::Rejected { reason: RejectReason::InvalidField, field, .. } => assert_eq!(field, "event_name"),
        other => panic!("{other:?}"),
    }
    assert_eq!(f.embedded.lock().len(), 1, "one embed call for the batch");
    assert_eq!(f.embedded.lock()[0].len(), 1, "only the admitted event is embedded");
}

#[tokio::test]
async fn a_batch_over_the_limit_is_refused_whole() {
    let f = fixture();
    let events: Vec<ActivityEvent> = (0..1001).map(|i| purchase("u1", "shop", &format!("e{i}"), "A", 1)).collect();
    match f.engine.ingest(events, NOW).await {
        Err(EngineError::InvalidArgument { field, .. }) => assert_eq!(field, "events"),
        other => panic!("{other:?}"),
    }
    assert!(f.store.calls.lock().is_empty(), "nothing read or written");
}

#[tokio::test]
async fn a_limited_data_use_event_is_refused_and_withdraws_its_earlier_copy() {
    let f = fixture();
    grant(&f, "u1", "shop", Purpose::ChatAssistant).await;
    assert!(f.engine.ingest(vec![purchase("u1", "shop", "e1", "A", 1)], NOW).await.unwrap()[0].is_accepted());
    let mut ldu = purchase("u1", "shop", "e1", "A", 1);
    ldu.data_processing_options = vec!["LDU".into()];
    let out = f.engine.ingest(vec![ldu], NOW).await.unwrap();
    assert_eq!(reason(&out[0]), Some(RejectReason::LimitedDataUse));
    assert!(f.store.events.lock().is_empty(), "the earlier copy is withdrawn");
}

#[tokio::test]
async fn a_revocation_landing_between_write_and_recheck_removes_the_event() {
    let f = fixture();
    grant(&f, "u1", "shop", Purpose::ChatAssistant).await;
    let current = f.store.grants.lock()[0].clone();
    let revoked =
        ConsentGrant::transition(Some(&current), ("u1", "shop", Purpose::ChatAssistant), ConsentState::Revoked, NOW)
            .unwrap();
    *f.store.after_upsert.lock() = Some(Box::new(move |s: &MemoryStore| s.set_grant(revoked)));
    let out = f.engine.ingest(vec![purchase("u1", "shop", "e1", "A", 1)], NOW).await.unwrap();
    assert_eq!(reason(&out[0]), Some(RejectReason::NoConsent));
    assert!(f.store.events.lock().is_empty(), "the written event is deleted again");
}

#[tokio::test]
async fn context_searches_only_the_sources_granted_for_the_purpose() {
    let f = fixture();
    grant(&f, "u1", "chat-shop", Purpose::ChatAssistant).await;
    grant(&f, "u1", "feed-shop", Purpose::FeedRanking).await;
    f.engine
        .ingest(
            vec![
                purchase("u1", "chat-shop", "e1", "hiking boots", 2),
                purchase("u1", "feed-shop", "e2", "hiking boots", 1),
            ],
            NOW,
        )
        .await
        .unwrap();
    let chat = f.engine.get_context(request("u1", Purpose::ChatAssistant, "hiking boots"), NOW).await.unwrap();
    let sources: Vec<&str> = chat.snippets.iter().map(|s| s.provenance.source_id.as_str()).collect();
    assert_eq!(sources, ["chat-shop"]);
    let feed = f.engine.get_context(request("u1", Purpose::FeedRanking, "hiking boots"), NOW).await.unwrap();
    let sources: Vec<&str> = feed.snippets.iter().map(|s| s.provenance.source_id.as_str()).collect();
    assert_eq!(sources, ["feed-shop"]);
    assert!(chat.rendered_context.contains("[c1]"), "{}", chat.rendered_context);
}

#[tokio::test]
async fn no_grant_for_the_purpose_answers_empty_without_searching_and_is_still_logged() {
    let f = fixture();
    grant(&f, "u1", "shop", Purpose::FeedRanking).await;
    f.engine.ingest(vec![purchase("u1", "shop", "e1", "boots", 1)], NOW).await.unwrap();
    let answer = f.engine.get_context(request("u1", Purpose::ChatAssistant, "boots"), NOW).await.unwrap();
    assert!(answer.snippets.is_empty() && answer.rendered_context.is_empty());
    assert!(!f.store.calls.lock().contains(&"search"), "{:?}", f.store.calls.lock());
    let log = f.store.access.lock();
    assert_eq!(log.len(), 1);
    assert!(log[0].events.is_empty());
    assert_eq!(log[0].purpose, Purpose::ChatAssistant);
}

#[tokio::test]
async fn the_post_check_drops_hits_a_broken_filter_lets_through() {
    let f = fixture();
    grant(&f, "u1", "shop", Purpose::ChatAssistant).await;
    grant(&f, "u2", "shop", Purpose::ChatAssistant).await;
    grant(&f, "u1", "revoked-shop", Purpose::ChatAssistant).await;
    f.engine
        .ingest(
            vec![
                purchase("u1", "shop", "mine", "red kettle", 3),
                purchase("u2", "shop", "theirs", "red kettle", 1),
                purchase("u1", "revoked-shop", "gone", "red kettle", 1),
            ],
            NOW,
        )
        .await
        .unwrap();
    // Revoke the pair the ledger way, but put the event back behind the
    // engine's back, as a store that lost a delete would.
    let gone = f.store.events.lock().values().find(|p| p.record.event.event_id == "gone").cloned().unwrap();
    f.engine
        .set_consent("u1", "revoked-shop", Some(Purpose::ChatAssistant), Some(ConsentState::Revoked), NOW)
        .await
        .unwrap();
    f.store.events.lock().insert(gone.id, gone);
    *f.store.ignore_scope_in_search.lock() = true;
    let answer = f.engine.get_context(request("u1", Purpose::ChatAssistant, "red kettle"), NOW).await.unwrap();
    let ids: Vec<&str> = answer.snippets.iter().map(|s| s.provenance.event_id.as_str()).collect();
    assert_eq!(ids, ["mine"]);
    assert!(answer.stats.consent_removed >= 2, "{:?}", answer.stats);
    assert!(!answer.rendered_context.contains("theirs"));
}

#[tokio::test]
async fn feed_and_proactive_post_check_what_a_broken_filter_lets_through() {
    let f = fixture();
    grant(&f, "u1", "shop", Purpose::FeedRanking).await;
    grant(&f, "u2", "shop", Purpose::FeedRanking).await;
    grant(&f, "u1", "chat-only", Purpose::ChatAssistant).await;
    let mut big = purchase("u1", "shop", "mine", "red kettle", 1);
    big.custom_data.value = Some(500.0);
    let mut theirs = purchase("u2", "shop", "theirs", "red kettle", 1);
    theirs.custom_data.value = Some(900.0);
    let mut chat = purchase("u1", "chat-only", "chat", "red kettle", 1);
    chat.custom_data.value = Some(700.0);
    f.engine.ingest(vec![big, theirs, chat], NOW).await.unwrap();
    *f.store.ignore_scope_in_search.lock() = true;
    let request = feed::RankItemsRequest {
        user_id: "u1".into(),
        purpose: Some(Purpose::FeedRanking),
        items: vec![feed::FeedItem { item_id: "k".into(), text: "red kettle".into(), ..Default::default() }],
        evidence_per_item: 10,
        ..Default::default()
    };
    let ranked = f.engine.rank_items(request, NOW).await.unwrap();
    let ids: Vec<&str> = ranked.items[0].evidence.iter().map(|e| e.provenance.event_id.as_str()).collect();
    assert_eq!(ids, ["mine"]);
    assert_eq!(ranked.stats.events_considered, 1);
    assert_eq!(ranked.stats.consent_removed, 2, "the other person's and the chat-only event");
    let proactive =
        feed::ProactiveRequest { user_id: "u1".into(), purpose: Some(Purpose::FeedRanking), ..Default::default() };
    let answer = f.engine.proactive_context(proactive, NOW).await.unwrap();
    let ids: Vec<&str> = answer.items.iter().map(|i| i.snippet.provenance.event_id.as_str()).collect();
    assert_eq!(ids, ["mine"]);
    assert_eq!(answer.stats.consent_removed, 2);
    let log = f.store.access.lock().clone();
    assert!(log.iter().all(|r| r.user_id == "u1" && r.events.iter().all(|e| e.event_id == "mine")), "{log:?}");
}

#[tokio::test]
async fn the_best_match_comes_first_and_the_limits_hold() {
    let f = fixture();
    grant(&f, "u1", "shop", Purpose::ChatAssistant).await;
    let names = ["espresso machine", "yoga mat", "trail running shoes", "garden hose", "winter jacket"];
    let events: Vec<ActivityEvent> =
        names.iter().enumerate().map(|(i, n)| purchase("u1", "shop", &format!("e{i}"), n, 1)).collect();
    f.engine.ingest(events, NOW).await.unwrap();
    let mut req = request("u1", Purpose::ChatAssistant, "trail running shoes");
    req.max_snippets = 3;
    let answer = f.engine.get_context(req, NOW).await.unwrap();
    assert_eq!(answer.snippets.len(), 3);
    assert_eq!(answer.snippets[0].provenance.event_id, "e2");
    assert_eq!(answer.stats.candidates, 5);
    assert!(answer.stats.tokens_used <= answer.stats.token_budget && answer.stats.token_budget == 512);
    assert_eq!(answer.rendered_context.split_whitespace().count(), answer.stats.tokens_used);

    let mut tight = request("u1", Purpose::ChatAssistant, "trail running shoes");
    tight.max_tokens = 60;
    let answer = f.engine.get_context(tight, NOW).await.unwrap();
    assert!(answer.rendered_context.split_whitespace().count() <= 60);
    assert!(answer.stats.dropped_budget > 0, "{:?}", answer.stats);
}

#[tokio::test]
async fn a_repeated_query_reuses_the_vector_for_the_same_person_only() {
    let f = fixture();
    grant(&f, "u1", "shop", Purpose::ChatAssistant).await;
    grant(&f, "u2", "shop", Purpose::ChatAssistant).await;
    let first = f.engine.get_context(request("u1", Purpose::ChatAssistant, "gift ideas"), NOW).await.unwrap();
    let again = f.engine.get_context(request("u1", Purpose::ChatAssistant, "gift ideas"), NOW).await.unwrap();
    let other = f.engine.get_context(request("u2", Purpose::ChatAssistant, "gift ideas"), NOW).await.unwrap();
    assert!(!first.stats.embedding_cached && again.stats.embedding_cached && !other.stats.embedding_cached);
    let queries = f.embedded.lock().iter().flatten().filter(|t| *t == "gift ideas").count();
    assert_eq!(queries, 2, "embedded for u1 once and for u2 once");
}

#[tokio::test]
async fn the_access_record_lists_every_event_a_snippet_stands_for() {
    let f = fixture();
    grant(&f, "u1", "shop", Purpose::ChatAssistant).await;
    let events: Vec<ActivityEvent> = (0..3).map(|i| purchase("u1", "shop", &format!("e{i}"), "oat milk", i)).collect();
    f.engine.ingest(events, NOW).await.unwrap();
    let answer = f.engine.get_context(request("u1", Purpose::ChatAssistant, "oat milk"), NOW).await.unwrap();
    assert_eq!(answer.snippets.len(), 1, "three repeats collapse into one snippet");
    assert_eq!(answer.snippets[0].occurrences, 3);
    let log = f.engine.explain_access("u1", 0).await.unwrap();
    let mut ids: Vec<&str> = log[0].events.iter().map(|e| e.event_id.as_str()).collect();
    ids.sort();
    assert_eq!(ids, ["e0", "e1", "e2"]);
    assert!(log[0].events.iter().all(|e| e.consent_version == 1));
}

#[tokio::test]
async fn revoking_the_last_purpose_purges_the_pair_and_only_then() {
    let f = fixture();
    grant(&f, "u1", "shop", Purpose::ChatAssistant).await;
    grant(&f, "u1", "shop", Purpose::FeedRanking).await;
    grant(&f, "u1", "keep", Purpose::ChatAssistant).await;
    f.engine
        .ingest(
            vec![
                purchase("u1", "shop", "e1", "A", 1),
                purchase("u1", "shop", "e2", "B", 1),
                purchase("u1", "keep", "e3", "C", 1),
            ],
            NOW,
        )
        .await
        .unwrap();
    let first =
        f.engine.set_consent("u1", "shop", Some(Purpose::FeedRanking), Some(ConsentState::Revoked), NOW).await.unwrap();
    assert_eq!((first.changed, first.purged_events, first.grant.version), (true, 0, 2));
    let again =
        f.engine.set_consent("u1", "shop", Some(Purpose::FeedRanking), Some(ConsentState::Revoked), NOW).await.unwrap();
    assert!(!again.changed, "idempotent");
    let last = f
        .engine
        .set_consent("u1", "shop", Some(Purpose::ChatAssistant), Some(ConsentState::Revoked), NOW)
        .await
        .unwrap();
    assert_eq!(last.purged_events, 2);
    let left: Vec<String> = f.store.events.lock().values().map(|p| p.record.event.event_id.clone()).collect();
    assert_eq!(left, ["e3"]);
    let key = ("u1".to_string(), "shop".to_string());
    assert!(grants_by_key(&f.store)[&key].iter().all(|g| !g.is_granted()));
}

#[tokio::test]
async fn set_consent_names_the_bad_field() {
    let f = fixture();
    for (source, purpose, state, field) in [
        ("", Some(Purpose::ChatAssistant), Some(ConsentState::Granted), "source_id"),
        ("bad id", Some(Purpose::ChatAssistant), Some(ConsentState::Granted), "source_id"),
        ("shop", None, Some(ConsentState::Granted), "purpose"),
        ("shop", Some(Purpose::ChatAssistant), None, "state"),
    ] {
        match f.engine.set_consent("u1", source, purpose, state, NOW).await {
            Err(EngineError::InvalidArgument { field: got, .. }) => assert_eq!(got, field),
            other => panic!("{source:?}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn erasure_removes_everything_of_the_person_and_counts_it() {
    let f = fixture();
    grant(&f, "u1", "a", Purpose::ChatAssistant).await;
    grant(&f, "u1", "b", Purpose::FeedRanking).await;
    grant(&f, "u2", "a", Purpose::ChatAssistant).await;
    f.engine
        .ingest(
            vec![
                purchase("u1", "a", "e1", "A", 1),
                purchase("u1", "b", "e2", "B", 1),
                purchase("u2", "a", "e3", "C", 1),
            ],
            NOW,
        )
        .await
        .unwrap();
    f.engine.get_context(request("u1", Purpose::ChatAssistant, "A"), NOW).await.unwrap();
    f.engine.get_context(request("u2", Purpose::ChatAssistant, "C"), NOW).await.unwrap();
    f.store.calls.lock().clear();
    let receipt = f.engine.erase_user("u1", NOW).await.unwrap();
    assert_eq!(
        (receipt.events_removed, receipt.consents_removed, receipt.access_records_removed, receipt.remaining_points),
        (2, 2, 1, 0)
    );
    let calls = f.store.calls.lock().clone();
    let pos = |name| calls.iter().position(|c| *c == name).unwrap();
    assert!(pos("delete_consents") < pos("delete"), "consents go first: {calls:?}");
    assert_eq!(f.store.events.lock().len(), 1);
    assert!(f.store.grants.lock().iter().all(|g| g.user_id == "u2"));
    assert!(f.store.access.lock().iter().all(|r| r.user_id == "u2"));
}

#[tokio::test]
async fn context_requests_are_validated_field_by_field() {
    let f = fixture();
    let cases: Vec<(ContextRequest, &str)> = vec![
        (ContextRequest { purpose: None, ..request("u1", Purpose::ChatAssistant, "q") }, "purpose"),
        (request("u1", Purpose::ChatAssistant, "   "), "query"),
        (request("", Purpose::ChatAssistant, "q"), "user_id"),
        (ContextRequest { max_snippets: 101, ..request("u1", Purpose::ChatAssistant, "q") }, "max_snippets"),
        (ContextRequest { max_tokens: 16_385, ..request("u1", Purpose::ChatAssistant, "q") }, "max_tokens"),
        (
            ContextRequest { start_time: Some(10), end_time: Some(5), ..request("u1", Purpose::ChatAssistant, "q") },
            "time_window",
        ),
        (
            ContextRequest { event_families: vec!["nope".into()], ..request("u1", Purpose::ChatAssistant, "q") },
            "event_families",
        ),
        (
            ContextRequest { source_ids: vec![String::new()], ..request("u1", Purpose::ChatAssistant, "q") },
            "source_ids[0]",
        ),
        (
            ContextRequest {
                source_ids: vec!["shop".into(), "bad id\u{0}".into()],
                ..request("u1", Purpose::ChatAssistant, "q")
            },
            "source_ids[1]",
        ),
        (
            ContextRequest { event_names: vec!["Purchase\n".into()], ..request("u1", Purpose::ChatAssistant, "q") },
            "event_names[0]",
        ),
    ];
    for (req, field) in cases {
        match f.engine.get_context(req, NOW).await {
            Err(EngineError::InvalidArgument { field: got, .. }) => assert_eq!(got, field),
            other => panic!("{field}: {other:?}"),
        }
    }
    assert!(f.store.access.lock().is_empty(), "a refused call is not logged");
}

#[tokio::test]
async fn export_pages_through_every_event_of_the_person() {
    let f = fixture();
    grant(&f, "u1", "shop", Purpose::ChatAssistant).await;
    grant(&f, "u2", "shop", Purpose::ChatAssistant).await;
    let mut events: Vec<ActivityEvent> = (0..7).map(|i| purchase("u1", "shop", &format!("e{i}"), "A", 1)).collect();
    events.push(purchase("u2", "shop", "x", "A", 1));
    f.engine.ingest(events, NOW).await.unwrap();
    let mut seen = Vec::new();
    let mut from = None;
    loop {
        let page = f.engine.export_page("u1", from, 3).await.unwrap();
        assert!(page.records.len() <= 3);
        seen.extend(page.records.into_iter().map(|(_, r)| r.event.event_id));
        match page.next {
            Some(next) => from = Some(next),
            None => break,
        }
    }
    seen.sort();
    assert_eq!(seen, ["e0", "e1", "e2", "e3", "e4", "e5", "e6"]);
}

#[tokio::test]
async fn embed_validates_its_texts() {
    let f = fixture();
    assert!(matches!(f.engine.embed(vec![]).await, Err(EngineError::InvalidArgument { .. })));
    match f.engine.embed(vec!["ok".into(), "x".repeat(8193)]).await {
        Err(EngineError::InvalidArgument { field, .. }) => assert_eq!(field, "texts[1]"),
        other => panic!("{other:?}"),
    }
    let v = f.engine.embed(vec!["a b".into()]).await.unwrap();
    assert_eq!(v[0].len(), 64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_waits_for_an_ingest_in_flight_and_then_purges_it() {
    let gate = Gate::default();
    let f = Arc::new(fixture_with(Some(gate.clone())));
    grant(&f, "u1", "shop", Purpose::ChatAssistant).await;
    let ingest = {
        let f = f.clone();
        tokio::spawn(async move { f.engine.ingest(vec![purchase("u1", "shop", "e1", "tent", 1)], NOW).await })
    };
    // The ingest has read the ledger and waits in the embedder.
    while f.store.calls.lock().iter().filter(|c| **c == "consents").count() < 2 {
        tokio::task::yield_now().await;
    }
    let revoke = {
        let f = f.clone();
        tokio::spawn(async move {
            f.engine.set_consent("u1", "shop", Some(Purpose::ChatAssistant), Some(ConsentState::Revoked), NOW).await
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert!(!revoke.is_finished(), "the revocation waits for the ingest in flight");
    gate.open();
    let out = ingest.await.unwrap().unwrap();
    let change = revoke.await.unwrap().unwrap();
    assert!(out[0].is_accepted(), "accepted under the grant in force when it ran: {out:?}");
    assert_eq!(change.purged_events, 1, "and purged by the revocation that followed");
    assert!(change.purge_ticket > 0);
    assert!(f.store.events.lock().is_empty());
    grant(&f, "u1", "shop", Purpose::ChatAssistant).await;
    assert!(f
        .engine
        .get_context(request("u1", Purpose::ChatAssistant, "tent"), NOW)
        .await
        .unwrap()
        .snippets
        .is_empty());
}

#[tokio::test]
async fn an_event_left_by_a_crash_before_the_recheck_is_purged_at_the_next_grant() {
    let f = fixture();
    grant(&f, "u1", "shop", Purpose::ChatAssistant).await;
    let current = f.store.grants.lock()[0].clone();
    let revoked =
        ConsentGrant::transition(Some(&current), ("u1", "shop", Purpose::ChatAssistant), ConsentState::Revoked, NOW)
            .unwrap();
    // Another replica revokes right after the write; this process dies
    // before its re-check (the ledger read fails, as a crash would stop it).
    let store = f.store.clone();
    *f.store.after_upsert.lock() = Some(Box::new(move |s: &MemoryStore| {
        s.set_grant(revoked);
        *store.fail_next_consents.lock() = true;
    }));
    assert!(f.engine.ingest(vec![purchase("u1", "shop", "e1", "tent", 1)], NOW).await.is_err());
    assert_eq!(f.store.events.lock().len(), 1, "the crash left the event behind");
    // Not retrievable while no grant is in force...
    assert!(f
        .engine
        .get_context(request("u1", Purpose::ChatAssistant, "tent"), NOW)
        .await
        .unwrap()
        .snippets
        .is_empty());
    // ...and not after a new grant either.
    let change = f
        .engine
        .set_consent("u1", "shop", Some(Purpose::ChatAssistant), Some(ConsentState::Granted), NOW)
        .await
        .unwrap();
    assert_eq!(change.purged_events, 1);
    assert!(f.store.events.lock().is_empty());
    assert!(f
        .engine
        .get_context(request("u1", Purpose::ChatAssistant, "tent"), NOW)
        .await
        .unwrap()
        .snippets
        .is_empty());
    // A grant of a second purpose while one is in force purges nothing.
    f.engine.ingest(vec![purchase("u1", "shop", "e2", "tent", 1)], NOW).await.unwrap();
    let change =
        f.engine.set_consent("u1", "shop", Some(Purpose::FeedRanking), Some(ConsentState::Granted), NOW).await.unwrap();
    assert_eq!(change.purged_events, 0);
    assert_eq!(f.store.events.lock().len(), 1);
}

#[tokio::test]
async fn erasure_drops_the_persons_cached_query_vectors_only() {
    let f = fixture();
    grant(&f, "u1", "shop", Purpose::ChatAssistant).await;
    grant(&f, "u2", "shop", Purpose::ChatAssistant).await;
    f.engine.get_context(request("u1", Purpose::ChatAssistant, "gift ideas"), NOW).await.unwrap();
    f.engine.get_context(request("u2", Purpose::ChatAssistant, "gift ideas"), NOW).await.unwrap();
    let cache = f.engine.query_cache.as_ref().unwrap();
    assert_eq!(cache.len(), 2);
    let receipt = f.engine.erase_user("u1", NOW).await.unwrap();
    assert_eq!(cache.len(), 1);
    let (u1, u2) = (user_digest("u1"), user_digest("u2"));
    assert!(cache.iter().all(|(_, c)| c.user == u2 && c.user != u1));
    assert_eq!((receipt.remaining_consents, receipt.remaining_access_records), (0, 0));
    assert_eq!(receipt.purge_state, PurgeState::Purged { at: 0 });
    assert_eq!(receipt.purge_due_by, NOW + PURGE_BOUND_SECS);
    assert!(matches!(f.engine.erasure_status(receipt.purge_ticket).await, Ok(PurgeState::Purged { .. })));
    assert!(matches!(f.engine.erasure_status(0).await, Err(EngineError::InvalidArgument { .. })));
    assert!(matches!(f.engine.erasure_status(999).await, Err(EngineError::InvalidArgument { .. })));
}

#[tokio::test]
async fn calls_for_an_unknown_or_erased_person_leave_no_record() {
    let f = fixture();
    grant(&f, "u1", "shop", Purpose::ChatAssistant).await;
    f.engine.get_context(request("u1", Purpose::ChatAssistant, "q"), NOW).await.unwrap();
    f.engine.get_context(request("stranger", Purpose::ChatAssistant, "q"), NOW).await.unwrap();
    assert_eq!(f.store.access.lock().len(), 1, "only the known person's call is logged");
    f.engine.erase_user("u1", NOW).await.unwrap();
    f.engine.get_context(request("u1", Purpose::ChatAssistant, "q"), NOW).await.unwrap();
    assert!(f.store.access.lock().is_empty(), "nothing holds the erased id again");
}

/// The compare-and-set backoff waits a random time inside a window that
/// doubles per attempt up to 128 ms: never longer, and not the same wait
/// every time (two replicas in lockstep must fall out of it).
#[test]
fn cas_backoff_is_random_within_a_doubling_window() {
    for attempt in 0..12u32 {
        let window = std::time::Duration::from_millis(1 << attempt.min(7));
        let waits: Vec<_> = (0..64).map(|_| cas_backoff(attempt)).collect();
        assert!(waits.iter().all(|w| *w < window), "attempt {attempt}: {waits:?} within {window:?}");
        assert!(waits.iter().any(|w| *w != waits[0]), "attempt {attempt}: every wait {:?}", waits[0]);
    }
}

/// A compare-and-set that another replica keeps winning is retried for a
/// time, not a count: twelve losses in a row (more than the eight the
/// limit once was) still end in the change, counted once.
#[tokio::test]
async fn set_consent_outlasts_a_run_of_lost_races() {
    let f = fixture();
    *f.store.lose_cas.lock() = 12;
    let change = f
        .engine
        .set_consent("u1", "shop", Some(Purpose::ChatAssistant), Some(ConsentState::Granted), NOW)
        .await
        .unwrap();
    assert!(change.changed);
    assert_eq!(*f.store.lose_cas.lock(), 0, "every lost race was retried");
    let grants = f.engine.list_consents("u1").await.unwrap();
    assert_eq!((grants.len(), grants[0].version), (1, 1));
}

/// When the races keep being lost past the retry budget the caller gets
/// `Conflict` (ABORTED) within about that budget, and nothing is written.
#[tokio::test]
async fn set_consent_gives_up_with_conflict_after_its_retry_budget() {
    let store = MemoryStore::new();
    *store.lose_cas.lock() = u32::MAX;
    let handle = EmbedHandle::spawn(Box::new(HashEmbedder::new(64)), BatchConfig::default()).unwrap();
    let budget = std::time::Duration::from_secs(1);
    let config = EngineConfig {
        limits: EngineLimits { consent_retry_budget: budget, ..EngineLimits::default() },
        ..EngineConfig::default()
    };
    let engine = Engine::new(handle, store.clone(), Arc::new(WordCounter), config);
    let started = std::time::Instant::now();
    let err = engine
        .set_consent("u1", "shop", Some(Purpose::ChatAssistant), Some(ConsentState::Granted), NOW)
        .await
        .unwrap_err();
    assert!(matches!(err, EngineError::Store(StoreError::Conflict { .. })), "{err:?}");
    assert!(started.elapsed() < budget + std::time::Duration::from_secs(2), "{:?}", started.elapsed());
    let tries = store.calls.lock().iter().filter(|c| **c == "put_consent").count();
    assert!(tries > 8, "retried for the budget, not a count ({tries} tries)");
    assert!(store.grants.lock().is_empty());
}
