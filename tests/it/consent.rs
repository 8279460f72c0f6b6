//! Consent as a retrieval predicate, revocation under concurrency, erasure,
//! provenance and the access log, and caller roles.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use context_engine::api::ApiKeys;
use context_engine::domain::{Purpose, Scope};
use context_engine::pb;
use tokio_stream::StreamExt;
use tonic::Code;

use crate::common::{chat, context, ev, ingest, now, TestServer};

fn set(user: &str, source: &str, purpose: pb::Purpose, state: pb::ConsentState) -> pb::SetConsentRequest {
    pb::SetConsentRequest {
        user_id: user.into(),
        source_id: source.into(),
        purpose: purpose as i32,
        state: state as i32,
    }
}

fn sources_of(snippets: &[pb::Snippet]) -> HashSet<String> {
    snippets.iter().map(|s| s.provenance.clone().unwrap().source_id).collect()
}

#[tokio::test]
async fn ingest_needs_consent_refuses_ldu_and_stores_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let mut client = server.client().await;
    server.grant("kim", &["acme"], Purpose::FeedRanking).await;
    let mut ldu = ev("kim", "acme", "k3", "Purchase", "Tent");
    ldu.data_processing_options = vec!["LDU".into()];
    let r = ingest(
        &mut client,
        vec![
            ev("kim", "acme", "k1", "Purchase", "Stove"),
            ev("kim", "other", "k2", "Purchase", "Lamp"),
            ldu,
            ev("stranger", "acme", "k4", "Purchase", "Lamp"),
        ],
    )
    .await;
    let reasons: Vec<i32> = r.results.iter().map(|x| x.reason).collect();
    assert_eq!(
        reasons,
        [
            pb::RejectReason::Unspecified as i32,
            pb::RejectReason::NoConsent as i32,
            pb::RejectReason::LimitedDataUse as i32,
            pb::RejectReason::NoConsent as i32
        ]
    );
    assert_eq!(r.results[2].field, "data_processing_options");
    assert_eq!(server.app.store.count(Scope::whole_user("kim")).await.unwrap(), 1);
    assert_eq!(server.app.store.count(Scope::whole_user("stranger")).await.unwrap(), 0);
    // Stored under a feed-ranking grant, but not usable for the chat assistant.
    assert!(context(&mut client, "kim", "camping stove", 5).await.is_empty());
    let feed = pb::GetContextRequest { purpose: pb::Purpose::FeedRanking as i32, ..chat("kim", "camping stove", 5) };
    let snippets = client.get_context(feed).await.unwrap().into_inner().snippets;
    assert_eq!(snippets.len(), 1);
    assert_eq!(snippets[0].provenance.as_ref().unwrap().consent_version, 1);
    server.stop().await;
}

#[tokio::test]
async fn revocation_purges_and_regrant_does_not_resurrect() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let mut client = server.client().await;
    let mut privacy = server.privacy(None).await;
    use pb::{ConsentState::*, Purpose::*};
    for request in [
        set("lea", "acme", ChatAssistant, Granted),
        set("lea", "acme", FeedRanking, Granted),
        set("lea", "nova", ChatAssistant, Granted),
    ] {
        assert!(privacy.set_consent(request).await.unwrap().into_inner().changed);
    }
    let again = privacy.set_consent(set("lea", "acme", ChatAssistant, Granted)).await.unwrap().into_inner();
    assert!(!again.changed, "idempotent");
    assert_eq!(again.grant.unwrap().version, 1);
    ingest(
        &mut client,
        vec![
            ev("lea", "acme", "l1", "Purchase", "Hiking boots"),
            ev("lea", "nova", "l2", "GamePlayed", "Galaxy Raiders"),
        ],
    )
    .await;

    // Revoking one purpose hides the source for it; another purpose still permits storage.
    let r = privacy.set_consent(set("lea", "acme", ChatAssistant, Revoked)).await.unwrap().into_inner();
    assert_eq!((r.changed, r.purged_events, r.grant.as_ref().unwrap().version), (true, 0, 2));
    assert_eq!(sources_of(&context(&mut client, "lea", "boots", 5).await), HashSet::from(["nova".to_string()]));
    assert_eq!(server.app.store.count(Scope::whole_user("lea")).await.unwrap(), 2);

    // Revoking the last purpose purges the pair's events before returning.
    let r = privacy.set_consent(set("lea", "acme", FeedRanking, Revoked)).await.unwrap().into_inner();
    assert_eq!(r.purged_events, 1);
    assert_eq!(server.app.store.count(Scope::user_sources("lea", vec!["acme".into()])).await.unwrap(), 0);

    // A later re-grant finds nothing to bring back.
    privacy.set_consent(set("lea", "acme", ChatAssistant, Granted)).await.unwrap();
    assert_eq!(sources_of(&context(&mut client, "lea", "boots", 5).await), HashSet::from(["nova".to_string()]));
    let grants =
        privacy.list_consents(pb::ListConsentsRequest { user_id: "lea".into() }).await.unwrap().into_inner().grants;
    assert_eq!(grants.len(), 3);
    let acme_chat = grants.iter().find(|g| g.source_id == "acme" && g.purpose == ChatAssistant as i32).unwrap();
    assert_eq!((acme_chat.version, acme_chat.state), (3, Granted as i32));

    let bad = privacy.set_consent(set("lea", "acme", pb::Purpose::Unspecified, Granted)).await.unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert!(bad.message().contains("purpose"));
    server.stop().await;
}

/// 16 workers query while another task revokes one source; every query that
/// started after the revoke returned must hold no snippet of that source.
/// Odd rounds revoke only the chat purpose (the source stays stored under a
/// feed grant, so only the retrieval predicate protects it); even rounds
/// revoke everything (purge).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn zero_leakage_under_concurrent_revocation() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let engine = server.app.engine.clone();
    let mut client = server.client().await;
    let (rounds, workers) = (8, 16);
    let (mut total_queries, mut checked_queries, mut checked_snippets, mut leaks) = (0usize, 0usize, 0usize, 0usize);
    for round in 0..rounds {
        server.grant("max", &["acme", "rival"], Purpose::ChatAssistant).await;
        server.grant("max", &["rival"], Purpose::FeedRanking).await;
        let events: Vec<pb::ActivityEvent> = (0..6)
            .flat_map(|i| {
                [
                    ev("max", "acme", &format!("a{i}"), "Purchase", &format!("Trail running shoes model {i}")),
                    ev("max", "rival", &format!("r{i}"), "Purchase", &format!("Trail running shoes edition {i}")),
                ]
            })
            .collect();
        let r = ingest(&mut client, events).await;
        assert_eq!(r.accepted, 12);
        let revoked_at: Arc<std::sync::OnceLock<Instant>> = Arc::new(std::sync::OnceLock::new());
        let mut tasks = Vec::new();
        for _ in 0..workers {
            let mut client = server.client().await;
            let revoked_at = Arc::clone(&revoked_at);
            tasks.push(tokio::spawn(async move {
                let mut seen = Vec::new();
                // Query until two queries have started after the revoke
                // returned (bounded, in case the revoke never comes).
                let cap = Instant::now() + Duration::from_secs(60);
                let mut after = 0;
                while after < 2 && Instant::now() < cap {
                    let started = Instant::now();
                    let snippets = context(&mut client, "max", "trail running shoes", 12).await;
                    seen.push((started, sources_of(&snippets).contains("rival"), snippets.len()));
                    if revoked_at.get().is_some_and(|t| started > *t) {
                        after += 1;
                    }
                }
                seen
            }));
        }
        tokio::time::sleep(Duration::from_millis(20 + (round as u64 * 37) % 150)).await;
        let purpose = if round % 2 == 0 {
            vec![Purpose::ChatAssistant, Purpose::FeedRanking]
        } else {
            vec![Purpose::ChatAssistant]
        };
        for p in purpose {
            engine
                .set_consent("max", "rival", Some(p), Some(context_engine::domain::ConsentState::Revoked), now())
                .await
                .unwrap();
        }
        let t = Instant::now();
        revoked_at.set(t).unwrap();
        for task in tasks {
            for (started, has_rival, n) in task.await.unwrap() {
                total_queries += 1;
                if started > t {
                    checked_queries += 1;
                    checked_snippets += n;
                    leaks += usize::from(has_rival);
                }
            }
        }
    }
    println!(
        "revocation: {rounds} rounds × {workers} workers: {total_queries} queries, {checked_queries} started after \
         the revoke returned, {checked_snippets} of their snippets checked, {leaks} leaks"
    );
    assert!(checked_queries >= 2 * rounds * workers, "every worker queried twice after each revoke");
    assert_eq!(leaks, 0);
    server.stop().await;
}

/// Many users with near-identical activity and per-user canary tokens;
/// thousands of queries, including other users' canaries: no foreign snippet.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_cross_user_leakage() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let mut client = server.client().await;
    let users: Vec<String> = (0..40).map(|i| format!("user{i:02}")).collect();
    let canary = |u: &str| format!("canary-{u}-zq{}x", u.len() * 7 + u.bytes().map(u32::from).sum::<u32>() as usize);
    for user in &users {
        server.grant(user, &["shop"], Purpose::ChatAssistant).await;
        let events = vec![
            ev(user, "shop", &format!("{user}-1"), "Purchase", "Trail Runner hiking boots"),
            ev(user, "shop", &format!("{user}-2"), "ViewContent", &format!("Limited edition {}", canary(user))),
            ev(user, "shop", &format!("{user}-3"), "AddToCart", "Waterproof jacket"),
        ];
        assert_eq!(ingest(&mut client, events).await.accepted, 3);
    }
    let users = Arc::new(users);
    let mut tasks = Vec::new();
    for w in 0..8 {
        let mut client = server.client().await;
        let users = Arc::clone(&users);
        tasks.push(tokio::spawn(async move {
            let (mut queries, mut snippets, mut foreign, mut flagged) = (0, 0, 0, 0);
            for i in 0..250 {
                let me = &users[(w * 5 + i) % users.len()];
                let other = &users[(w * 7 + i * 3 + 1) % users.len()];
                let query = match i % 3 {
                    0 => format!("Limited edition {}", canary(other)),
                    1 => canary(other),
                    _ => "hiking boots".to_string(),
                };
                // Neutralise, not drop: this test is about whose events come
                // back, so none may be held back by the injection screen
                // (the learned head flags the made-up canary tokens).
                let mut request = chat(me, &query, 10);
                request.ranking = Some(pb::RankingOptions {
                    injection_policy: pb::InjectionPolicy::Neutralize as i32,
                    ..Default::default()
                });
                let got = client.get_context(request).await.expect("get_context succeeds").into_inner().snippets;
                flagged += got.iter().filter(|s| !s.flags.is_empty()).count();
                queries += 1;
                snippets += got.len();
                foreign += got
                    .iter()
                    .filter(|s| {
                        let p = s.provenance.as_ref().unwrap();
                        !p.event_id.starts_with(&format!("{me}-")) || (other != me && s.text.contains(&canary(other)))
                    })
                    .count();
            }
            (queries, snippets, foreign, flagged)
        }));
    }
    let (mut queries, mut snippets, mut foreign, mut flagged) = (0, 0, 0, 0);
    for task in tasks {
        let (q, s, f, g) = task.await.unwrap();
        queries += q;
        snippets += s;
        foreign += f;
        flagged += g;
    }
    println!("cross-user: {queries} queries, {snippets} snippets checked ({flagged} flagged), {foreign} foreign");
    assert_eq!(queries, 2000);
    assert_eq!(snippets, 2000 * 3, "each user sees exactly their own three events");
    assert_eq!(foreign, 0);
    server.stop().await;
}

#[tokio::test]
async fn erasure_export_and_access_log() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let mut client = server.client().await;
    let mut privacy = server.privacy(None).await;
    server.grant("noa", &["acme", "nova"], Purpose::ChatAssistant).await;
    server.grant("zed", &["acme"], Purpose::ChatAssistant).await;
    let events: Vec<pb::ActivityEvent> = (0..1200)
        .map(|i| {
            ev("noa", if i % 2 == 0 { "acme" } else { "nova" }, &format!("n{i}"), "ViewContent", &format!("Item {i}"))
        })
        .collect();
    for chunk in events.chunks(600) {
        assert_eq!(ingest(&mut client, chunk.to_vec()).await.accepted, 600);
    }
    ingest(&mut client, vec![ev("zed", "acme", "z1", "Purchase", "Tent")]).await;
    let first = context(&mut client, "noa", "item 7", 3).await;
    context(&mut client, "noa", "item 8", 2).await;

    let log = privacy
        .explain_access(pb::ExplainAccessRequest { user_id: "noa".into(), limit: 0 })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(log.records.len(), 2);
    let newest_first = &log.records[1];
    assert_eq!(newest_first.caller, "local-dev");
    assert_eq!(newest_first.purpose, pb::Purpose::ChatAssistant as i32);
    let logged: Vec<String> = log.records.iter().flat_map(|r| r.events.iter().map(|e| e.event_id.clone())).collect();
    for s in &first {
        assert!(logged.contains(&s.provenance.as_ref().unwrap().event_id));
    }
    assert!(log.records.iter().flat_map(|r| &r.events).all(|e| e.consent_version == 1));

    let mut stream = privacy.export_user(pb::ExportUserRequest { user_id: "noa".into() }).await.unwrap().into_inner();
    let (mut exported, mut consents, mut messages) = (HashSet::new(), 0, 0);
    while let Some(message) = stream.next().await {
        let message = message.unwrap();
        messages += 1;
        consents += message.consents.len();
        for e in message.events {
            let event = e.event.unwrap();
            assert_eq!(event.user_id, "noa");
            exported.insert(event.event_id);
        }
    }
    assert_eq!(exported.len(), 1200, "export returns every event");
    assert_eq!(consents, 2);
    assert!(messages >= 3, "paged");

    let receipt = privacy.erase_user(pb::EraseUserRequest { user_id: "noa".into() }).await.unwrap().into_inner();
    assert_eq!(
        (receipt.events_removed, receipt.consents_removed, receipt.access_records_removed, receipt.remaining_points),
        (1200, 2, 2, 0)
    );
    assert_eq!((receipt.remaining_consents, receipt.remaining_access_records), (0, 0));
    assert!((receipt.erased_at - now()).abs() < 120);
    assert!(receipt.purge_ticket > 0 && receipt.purge_due_by == receipt.erased_at + 60);
    assert_ne!(receipt.state, pb::ErasureState::PurgeNotSupported as i32);
    let status = crate::common::wait_purged(&mut privacy, receipt.purge_ticket).await;
    assert!(status.purged_at >= receipt.erased_at && status.purged_at <= receipt.purge_due_by, "{status:?}");
    let bad = privacy.get_erasure_status(pb::GetErasureStatusRequest { purge_ticket: 0 }).await.unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert!(bad.message().contains("purge_ticket"), "{}", bad.message());
    // The store itself, not just the API.
    assert_eq!(server.app.store.count(Scope::whole_user("noa")).await.unwrap(), 0);
    assert!(server.app.store.consents(vec!["noa".into()]).await.unwrap().is_empty());
    assert!(server.app.store.access_log("noa".into(), 10).await.unwrap().is_empty());
    assert_eq!(server.app.store.count(Scope::whole_user("zed")).await.unwrap(), 1, "other users untouched");
    assert!(context(&mut client, "noa", "item 7", 3).await.is_empty());
    let r = ingest(&mut client, vec![ev("noa", "acme", "n-after", "Purchase", "Tent")]).await;
    assert_eq!(r.results[0].reason, pb::RejectReason::NoConsent as i32, "erased consents stay erased");
    server.stop().await;
}

const BUSINESS: &str = "acme-key-0123456789";
const ORCHESTRATOR: &str = "orch-key-0123456789";
const PRIVACY: &str = "priv-key-0123456789";

async fn call(server: &TestServer, key: Option<&str>, rpc: &str) -> Result<(), tonic::Status> {
    let mut client = server.client_with_key(key).await;
    let mut privacy = server.privacy(key).await;
    let user = "rolf";
    match rpc {
        "Ingest" => {
            client.ingest(pb::IngestRequest { events: vec![ev(user, "acme", "r1", "Purchase", "x")] }).await.map(drop)
        }
        "IngestStream" => client
            .ingest_stream(tokio_stream::iter(vec![pb::IngestRequest {
                events: vec![ev(user, "acme", "r2", "Purchase", "x")],
            }]))
            .await
            .map(drop),
        "GetContext" => client.get_context(chat(user, "x", 1)).await.map(drop),
        "Embed" => client.embed(pb::EmbedRequest { texts: vec!["x".into()] }).await.map(drop),
        "RankItems" => client
            .rank_items(pb::RankItemsRequest {
                user_id: user.into(),
                purpose: pb::Purpose::ChatAssistant as i32,
                items: vec![pb::CandidateItem { item_id: "i1".into(), text: "x".into(), ..Default::default() }],
                ..Default::default()
            })
            .await
            .map(drop),
        "GetProactiveContext" => client
            .get_proactive_context(pb::GetProactiveContextRequest {
                user_id: user.into(),
                purpose: pb::Purpose::ChatAssistant as i32,
                ..Default::default()
            })
            .await
            .map(drop),
        "SetConsent" => privacy
            .set_consent(set(user, "acme", pb::Purpose::ChatAssistant, pb::ConsentState::Granted))
            .await
            .map(drop),
        "ListConsents" => privacy.list_consents(pb::ListConsentsRequest { user_id: user.into() }).await.map(drop),
        "EraseUser" => privacy.erase_user(pb::EraseUserRequest { user_id: "nobody".into() }).await.map(drop),
        // Ticket 1 exists once the privacy key's EraseUser above has run.
        "GetErasureStatus" => {
            privacy.get_erasure_status(pb::GetErasureStatusRequest { purge_ticket: 1 }).await.map(drop)
        }
        "ExplainAccess" => {
            privacy.explain_access(pb::ExplainAccessRequest { user_id: user.into(), limit: 1 }).await.map(drop)
        }
        "ExportUser" => privacy.export_user(pb::ExportUserRequest { user_id: user.into() }).await.map(drop),
        other => panic!("unknown rpc {other}"),
    }
}

#[tokio::test]
async fn every_rpc_checks_the_callers_role() {
    let dir = tempfile::tempdir().unwrap();
    let mut keys = ApiKeys::default();
    keys.add_from_text(&format!("business:acme={BUSINESS}, orchestrator={ORCHESTRATOR}, privacy={PRIVACY}")).unwrap();
    let server = TestServer::start_with_keys(dir.path(), keys).await;
    server.grant("rolf", &["acme", "rival"], Purpose::ChatAssistant).await;
    let rpcs = [
        "Ingest",
        "IngestStream",
        "GetContext",
        "Embed",
        "RankItems",
        "GetProactiveContext",
        "SetConsent",
        "ListConsents",
        "EraseUser",
        "GetErasureStatus",
        "ExplainAccess",
        "ExportUser",
    ];
    let table: [(&str, &[&str]); 3] = [
        (BUSINESS, &["Ingest", "IngestStream"]),
        (ORCHESTRATOR, &["GetContext", "Embed", "RankItems", "GetProactiveContext"]),
        (PRIVACY, &["SetConsent", "ListConsents", "EraseUser", "GetErasureStatus", "ExplainAccess", "ExportUser"]),
    ];
    for (key, permitted) in table {
        for rpc in rpcs {
            let result = call(&server, Some(key), rpc).await;
            if permitted.contains(&rpc) {
                assert!(result.is_ok(), "{key} {rpc}: {result:?}");
            } else {
                assert_eq!(result.map_err(|e| e.code()), Err(Code::PermissionDenied), "{key} {rpc}");
            }
        }
    }
    for rpc in rpcs {
        assert_eq!(call(&server, None, rpc).await.map_err(|e| e.code()), Err(Code::Unauthenticated), "no key: {rpc}");
        let wrong = call(&server, Some("wrong-key-0123456789"), rpc).await.map_err(|e| e.code());
        assert_eq!(wrong, Err(Code::Unauthenticated), "wrong key: {rpc}");
    }

    // A business may not ingest another source's events: the whole batch is refused.
    let mut business = server.client_with_key(Some(BUSINESS)).await;
    let spoofed = vec![ev("rolf", "acme", "s1", "Purchase", "x"), ev("rolf", "rival", "s2", "Purchase", "y")];
    let err = business.ingest(pb::IngestRequest { events: spoofed }).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    assert!(err.message().contains("events[1].source_id"), "{}", err.message());
    assert_eq!(server.app.store.count(Scope::user_sources("rolf", vec!["rival".into()])).await.unwrap(), 0);
    assert_eq!(
        server.app.store.count(Scope::whole_user("rolf")).await.unwrap(),
        2,
        "r1, r2 from the table; nothing of s1/s2"
    );

    // The same over a stream: own events in the first message, a foreign one
    // in the third. Nothing of the stream is stored, as with one request.
    let messages = vec![
        pb::IngestRequest { events: vec![ev("rolf", "acme", "t1", "Purchase", "x")] },
        pb::IngestRequest { events: vec![ev("rolf", "acme", "t2", "Purchase", "y")] },
        pb::IngestRequest {
            events: vec![ev("rolf", "acme", "t3", "Purchase", "z"), ev("rolf", "rival", "t4", "Purchase", "w")],
        },
    ];
    let err = business.ingest_stream(tokio_stream::iter(messages)).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    assert!(err.message().contains("events[3].source_id"), "{}", err.message());
    assert!(err.message().contains("nothing was stored"), "{}", err.message());
    assert_eq!(
        server.app.store.count(Scope::whole_user("rolf")).await.unwrap(),
        2,
        "nothing of t1..t4: the stream is refused as a whole"
    );

    // The access log names the caller.
    let mut privacy = server.privacy(Some(PRIVACY)).await;
    let log = privacy
        .explain_access(pb::ExplainAccessRequest { user_id: "rolf".into(), limit: 5 })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(log.records[0].caller, "orchestrator");
    server.stop().await;
}
