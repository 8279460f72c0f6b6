//! RankItems and GetProactiveContext over real gRPC, the real model and
//! Qdrant Edge: relevance, evidence and its provenance, consent per purpose,
//! no leak across people, sources or purposes, revocation racing RankItems,
//! validation, roles and the access log.

use std::sync::Arc;
use std::time::{Duration, Instant};

use context_engine::domain::{ConsentState, Purpose};
use context_engine::pb;
use tonic::Code;

use crate::common::{ev, ingest, now, with_props, TestServer};

fn item(id: &str, text: &str) -> pb::CandidateItem {
    pb::CandidateItem { item_id: id.into(), text: text.into(), ..Default::default() }
}

fn rank(user: &str, purpose: pb::Purpose, items: Vec<pb::CandidateItem>) -> pb::RankItemsRequest {
    pb::RankItemsRequest { user_id: user.into(), purpose: purpose as i32, items, ..Default::default() }
}

fn catalogue() -> Vec<pb::CandidateItem> {
    vec![
        item("post-knit", "Ten cosy knitting patterns for winter scarves"),
        item("post-boots", "Review: the best waterproof hiking boots of the year"),
        item("post-vienna", "A weekend in Vienna: coffee houses and museums"),
        item("post-crypto", "Why crypto exchanges froze withdrawals this week"),
        item("post-guitar", "Beginner electric guitar buying guide"),
    ]
}

fn evidence_sources(r: &pb::RankItemsResponse) -> Vec<String> {
    r.items.iter().flat_map(|i| &i.evidence).map(|e| e.provenance.as_ref().unwrap().source_id.clone()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rank_items_ranks_from_permitted_activity_with_evidence() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let mut client = server.client().await;
    server.grant("ana", &["outdoor", "travel"], Purpose::FeedRanking).await;
    server.grant("ana", &["music"], Purpose::ChatAssistant).await;
    server.grant("ben", &["crafts"], Purpose::FeedRanking).await;
    let trip = with_props(ev("ana", "travel", "t1", "FlightBooked", ""), &[("destination", "Vienna")]);
    let r = ingest(
        &mut client,
        vec![
            ev("ana", "outdoor", "o1", "Purchase", "Waterproof hiking boots"),
            ev("ana", "outdoor", "o2", "ViewContent", "Trekking poles"),
            trip,
            // Chat only: must not count for the feed.
            ev("ana", "music", "m1", "Purchase", "Electric guitar starter pack"),
            ev("ben", "crafts", "b1", "Purchase", "Merino knitting yarn"),
        ],
    )
    .await;
    assert_eq!(r.accepted, 5, "{r:?}");

    let feed = client.rank_items(rank("ana", pb::Purpose::FeedRanking, catalogue())).await.unwrap().into_inner();
    let order: Vec<&str> = feed.items.iter().map(|i| i.item_id.as_str()).collect();
    assert_eq!(feed.items.len(), 5, "every item comes back");
    assert!(order[..2].contains(&"post-boots") && order[..2].contains(&"post-vienna"), "{order:?}");
    assert!(feed.items.windows(2).all(|w| w[0].score >= w[1].score));
    assert_eq!(feed.items.iter().map(|i| i.rank).collect::<Vec<_>>(), [1, 2, 3, 4, 5]);
    let boots = feed.items.iter().find(|i| i.item_id == "post-boots").unwrap();
    let p = boots.evidence[0].provenance.as_ref().unwrap();
    assert_eq!((p.source_id.as_str(), p.event_id.as_str()), ("outdoor", "o1"), "{boots:?}");
    assert!(boots.evidence[0].text.contains("hiking boots"));
    assert!(p.consent_version >= 1);
    let guitar = feed.items.iter().find(|i| i.item_id == "post-guitar").unwrap();
    assert!(guitar.score < boots.score);
    let sources = evidence_sources(&feed);
    assert!(!sources.iter().any(|s| s == "music" || s == "crafts"), "chat-only and other people's events: {sources:?}");
    let stats = feed.stats.unwrap();
    assert_eq!((stats.events_considered, stats.items_embedded), (3, 5));

    // The same items again: served from the item cache.
    let again = client.rank_items(rank("ana", pb::Purpose::FeedRanking, catalogue())).await.unwrap().into_inner();
    assert_eq!(again.stats.unwrap().items_cached, 5);
    assert_eq!(
        again.items.iter().map(|i| &i.item_id).collect::<Vec<_>>(),
        feed.items.iter().map(|i| &i.item_id).collect::<Vec<_>>()
    );

    // Chat purpose: only the guitar is permitted for it.
    let chat = client.rank_items(rank("ana", pb::Purpose::ChatAssistant, catalogue())).await.unwrap().into_inner();
    assert_eq!(chat.items[0].item_id, "post-guitar");
    assert!(evidence_sources(&chat).iter().all(|s| s == "music"));

    // Nobody's activity: scores 0, no evidence, no error.
    let stranger = client.rank_items(rank("zed", pb::Purpose::FeedRanking, catalogue())).await.unwrap().into_inner();
    assert!(stranger.items.iter().all(|i| i.score == 0.0 && i.evidence.is_empty()));

    // The access log names exactly the evidence events, under the feed purpose.
    let mut privacy = server.privacy(None).await;
    let log = privacy
        .explain_access(pb::ExplainAccessRequest { user_id: "ana".into(), limit: 10 })
        .await
        .unwrap()
        .into_inner();
    let feed_record = log.records.iter().find(|r| r.purpose == pb::Purpose::FeedRanking as i32).unwrap();
    let logged: std::collections::BTreeSet<String> = feed_record.events.iter().map(|e| e.event_id.clone()).collect();
    let shown: std::collections::BTreeSet<String> =
        feed.items.iter().flat_map(|i| &i.evidence).map(|e| e.provenance.as_ref().unwrap().event_id.clone()).collect();
    assert!(!shown.is_empty());
    assert!(shown.is_subset(&logged), "{shown:?} ⊄ {logged:?}");
    // Besides the evidence, each item's best match (its similarity is
    // returned): only ever ana's feed-permitted events.
    let permitted: std::collections::BTreeSet<String> = ["o1", "o2", "t1"].map(String::from).into();
    assert!(logged.is_subset(&permitted), "{logged:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rank_items_validates_every_field() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let mut client = server.client().await;
    let many: Vec<pb::CandidateItem> = (0..1001).map(|i| item(&format!("i{i}"), "x")).collect();
    let mut no_purpose = rank("ana", pb::Purpose::FeedRanking, catalogue());
    no_purpose.purpose = 0;
    let mut dup = catalogue();
    dup[3].item_id = "post-knit".into();
    let mut empty_text = catalogue();
    empty_text[1].text = "  ".into();
    let mut bad_source = catalogue();
    bad_source[2].source_id = "has space".into();
    let mut long_category = catalogue();
    long_category[0].category = "c".repeat(129);
    let mut too_much_evidence = rank("ana", pb::Purpose::FeedRanking, catalogue());
    too_much_evidence.evidence_per_item = 11;
    let cases = vec![
        (rank("ana", pb::Purpose::FeedRanking, many), "items"),
        (rank("ana", pb::Purpose::FeedRanking, vec![]), "items"),
        (no_purpose, "purpose"),
        (rank("", pb::Purpose::FeedRanking, catalogue()), "user_id"),
        (rank("ana", pb::Purpose::FeedRanking, dup), "items[3].item_id"),
        (rank("ana", pb::Purpose::FeedRanking, empty_text), "items[1].text"),
        (rank("ana", pb::Purpose::FeedRanking, bad_source), "items[2].source_id"),
        (rank("ana", pb::Purpose::FeedRanking, long_category), "items[0].category"),
        (too_much_evidence, "evidence_per_item"),
    ];
    for (request, field) in cases {
        let err = client.rank_items(request).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{field}: {err:?}");
        assert!(err.message().starts_with(&format!("invalid {field}:")), "{field}: {}", err.message());
    }
    let thousand: Vec<pb::CandidateItem> =
        (0..1000).map(|i| item(&format!("i{i}"), &format!("item {}", i % 7))).collect();
    let ok = client.rank_items(rank("ana", pb::Purpose::FeedRanking, thousand)).await.unwrap().into_inner();
    assert_eq!(ok.items.len(), 1000);
    assert_eq!(ok.stats.unwrap().items_embedded, 7, "repeated texts are embedded once");

    let err = client
        .get_proactive_context(pb::GetProactiveContextRequest {
            user_id: "ana".into(),
            purpose: pb::Purpose::ChatAssistant as i32,
            horizon_days: 366,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().starts_with("invalid horizon_days:"), "{}", err.message());
    let err = client
        .get_proactive_context(pb::GetProactiveContextRequest { user_id: "ana".into(), ..Default::default() })
        .await
        .unwrap_err();
    assert!(err.message().starts_with("invalid purpose:"), "{}", err.message());
    server.stop().await;
}

/// Workers rank while a source is revoked; no call that *finished* after the
/// revoke returned shows evidence from it (a call in flight when the revoke
/// began holds the person's fence, so the revoke waits for it; one that
/// began while the revoke ran waits for the revoke and then reads the new
/// ledger).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_evidence_from_a_source_revoked_while_ranking() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let engine = server.app.engine.clone();
    let mut client = server.client().await;
    let (rounds, workers) = (4, 8);
    let (mut checked, mut leaks) = (0usize, 0usize);
    for round in 0..rounds {
        server.grant("max", &["acme", "rival"], Purpose::FeedRanking).await;
        let events: Vec<pb::ActivityEvent> = (0..4)
            .flat_map(|i| {
                [
                    ev("max", "acme", &format!("a{round}-{i}"), "Purchase", &format!("Trail running shoes model {i}")),
                    ev("max", "rival", &format!("r{round}-{i}"), "Purchase", &format!("Hiking boots edition {i}")),
                ]
            })
            .collect();
        assert_eq!(ingest(&mut client, events).await.accepted, 8);
        let revoked_at: Arc<std::sync::OnceLock<Instant>> = Arc::new(std::sync::OnceLock::new());
        let mut tasks = Vec::new();
        for _ in 0..workers {
            let mut client = server.client().await;
            let revoked_at = Arc::clone(&revoked_at);
            tasks.push(tokio::spawn(async move {
                let mut seen = Vec::new();
                let cap = Instant::now() + Duration::from_secs(60);
                let mut after = 0;
                while after < 2 && Instant::now() < cap {
                    let mut request = rank("max", pb::Purpose::FeedRanking, catalogue());
                    request.evidence_items = 5;
                    let r = client.rank_items(request).await.unwrap().into_inner();
                    let finished = Instant::now();
                    seen.push((finished, evidence_sources(&r).iter().any(|s| s == "rival")));
                    if revoked_at.get().is_some_and(|t| finished > *t) {
                        after += 1;
                    }
                }
                seen
            }));
        }
        tokio::time::sleep(Duration::from_millis(20 + (round as u64 * 37) % 120)).await;
        engine
            .set_consent("max", "rival", Some(Purpose::FeedRanking), Some(ConsentState::Revoked), now())
            .await
            .unwrap();
        let t = Instant::now();
        revoked_at.set(t).unwrap();
        for task in tasks {
            for (finished, rival) in task.await.unwrap() {
                if finished > t {
                    checked += 1;
                    leaks += usize::from(rival);
                }
            }
        }
    }
    println!("rank_items revocation: {checked} calls finished after the revoke, {leaks} leaks");
    assert!(checked >= 2 * rounds * workers);
    assert_eq!(leaks, 0);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proactive_context_shows_upcoming_purchases_and_interests() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let mut client = server.client().await;
    server.grant("eva", &["air", "shop", "games"], Purpose::ChatAssistant).await;
    server.grant("eva", &["secret"], Purpose::FeedRanking).await;
    server.grant("leo", &["air"], Purpose::ChatAssistant).await;
    let day = 86_400;
    let date =
        |offset: i64| chrono::DateTime::from_timestamp(now() + offset, 0).unwrap().format("%Y-%m-%d").to_string();
    let mut boots = ev("eva", "shop", "p1", "Purchase", "Hiking boots");
    boots.custom_data.as_mut().unwrap().value = Some(180.0);
    boots.custom_data.as_mut().unwrap().currency = "EUR".into();
    let mut socks = ev("eva", "shop", "p2", "Purchase", "Socks");
    socks.custom_data.as_mut().unwrap().value = Some(6.0);
    socks.custom_data.as_mut().unwrap().currency = "EUR".into();
    let events = vec![
        with_props(
            ev("eva", "air", "f1", "FlightBooked", ""),
            &[("destination", "Vienna"), ("travel_date", &date(6 * day))],
        ),
        with_props(
            ev("eva", "air", "f0", "FlightBooked", ""),
            &[("destination", "Oslo"), ("travel_date", &date(-90 * day))],
        ),
        boots,
        socks,
        ev("eva", "games", "g1", "GamePlayed", "Star Forge space strategy"),
        ev("eva", "games", "g2", "ViewContent", "Star Forge expansion pack"),
        ev("eva", "games", "g3", "Search", "star forge strategy guide"),
        // Feed-only source and another person: never in chat's proactive context.
        with_props(
            ev("eva", "secret", "s1", "FlightBooked", ""),
            &[("destination", "Lisbon"), ("travel_date", &date(3 * day))],
        ),
        with_props(
            ev("leo", "air", "l1", "FlightBooked", ""),
            &[("destination", "Rome"), ("travel_date", &date(2 * day))],
        ),
    ];
    assert_eq!(ingest(&mut client, events).await.accepted, 9);
    let request = |user: &str| pb::GetProactiveContextRequest {
        user_id: user.into(),
        purpose: pb::Purpose::ChatAssistant as i32,
        max_snippets: 6,
        ..Default::default()
    };
    let r = client.get_proactive_context(request("eva")).await.unwrap().into_inner();
    let first = &r.items[0];
    assert_eq!(first.reason, pb::ProactiveReason::Upcoming as i32, "{r:?}");
    assert_eq!(first.snippet.as_ref().unwrap().provenance.as_ref().unwrap().event_id, "f1");
    assert!(first.due_time > now());
    let ids: Vec<&str> =
        r.items.iter().map(|i| i.snippet.as_ref().unwrap().provenance.as_ref().unwrap().event_id.as_str()).collect();
    assert!(ids.contains(&"p1"), "the big recent purchase: {ids:?}");
    assert!(!ids.contains(&"p2") && !ids.contains(&"f0"), "small purchase, past trip: {ids:?}");
    assert!(!ids.contains(&"s1") && !ids.contains(&"l1"), "feed-only source, another person: {ids:?}");
    let interest = r.items.iter().find(|i| i.reason == pb::ProactiveReason::Interest as i32).expect("an interest");
    assert!(interest.cluster_size >= 2, "{interest:?}");
    assert!(r.rendered_context.contains("Vienna") && r.rendered_context.contains("upcoming: in"));
    assert!(!r.rendered_context.contains("Lisbon") && !r.rendered_context.contains("Rome"));
    let stats = r.stats.unwrap();
    assert!(stats.tokens_used > 0 && stats.tokens_used <= stats.token_budget);

    let mut privacy = server.privacy(None).await;
    let log = privacy
        .explain_access(pb::ExplainAccessRequest { user_id: "eva".into(), limit: 1 })
        .await
        .unwrap()
        .into_inner();
    let logged: Vec<&str> = log.records[0].events.iter().map(|e| e.event_id.as_str()).collect();
    for id in &ids {
        assert!(logged.contains(id), "{id} shown but not logged: {logged:?}");
    }
    assert_eq!(
        logged.len(),
        r.items.iter().map(|i| if i.cluster_size > 0 { i.cluster_size as usize } else { 1 }).sum::<usize>(),
        "an interest logs its whole cluster"
    );
    server.stop().await;
}
