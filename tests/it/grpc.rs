//! End to end over gRPC: ingest → GetContext, idempotency, persistence,
//! per-event rejection, request validation, Embed, health.

use context_engine::domain::{Purpose, Scope};
use context_engine::pb;
use tonic::Code;

use crate::common::{chat, context, ev, ingest, now, with_props, TestServer};

pub const SOURCES: [&str; 6] = ["acme", "skyways", "nova", "foodie", "dailynews", "megastore"];

/// Three users with overlapping tastes; each event id carries its user.
fn activity(user: &str) -> Vec<pb::ActivityEvent> {
    let id = |s: &str| format!("{user}-{s}");
    let mut boots = ev(user, "acme", &id("boots"), "Purchase", "Trail Runner hiking boots");
    let data = boots.custom_data.as_mut().unwrap();
    data.content_category = "Footwear".into();
    data.value = Some(129.99);
    data.currency = "USD".into();
    boots.source_name = "Acme Outdoors".into();
    let mut flight = with_props(
        ev(user, "skyways", &id("flight"), "FlightBooked", ""),
        &[("origin", "Lisbon"), ("destination", "Reykjavik"), ("travel_date", "2026-12-12")],
    );
    flight.source_name = "SkyWays".into();
    let mut game = with_props(
        ev(user, "nova", &id("game"), "GamePlayed", "Galaxy Raiders"),
        &[("duration_minutes", "45"), ("level", "12")],
    );
    game.source_name = "Nova Games".into();
    let mut search = ev(user, "foodie", &id("search"), "Search", "");
    search.custom_data.as_mut().unwrap().search_string = "gluten free pasta recipes".into();
    let news = ev(user, "dailynews", &id("news"), "Subscribe", "Morning business newsletter");
    let tv = ev(user, "megastore", &id("tv"), "ViewContent", "65-inch OLED television");
    vec![boots, flight, game, search, news, tv]
}

#[tokio::test]
async fn relevant_events_first_and_never_another_users() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let mut client = server.client().await;
    server.grant("alice", &SOURCES, Purpose::ChatAssistant).await;
    server.grant("bob", &SOURCES, Purpose::ChatAssistant).await;
    server.grant("carol", &SOURCES, Purpose::ChatAssistant).await;
    server.grant("dave", &SOURCES, Purpose::ChatAssistant).await;
    for user in ["alice", "bob", "carol", "dave"] {
        let r = ingest(&mut client, activity(user)).await;
        assert_eq!((r.accepted, r.rejected), (6, 0), "{r:?}");
    }
    for user in ["alice", "bob", "carol", "dave"] {
        let snippets = context(&mut client, user, "what should I pack for my trip?", 6).await;
        assert_eq!(snippets.len(), 6);
        for s in &snippets {
            let p = s.provenance.as_ref().unwrap();
            assert!(p.event_id.starts_with(&format!("{user}-")), "{user} got {p:?}");
        }
        let top: Vec<&str> =
            snippets[..2].iter().map(|s| s.provenance.as_ref().unwrap().event_id.rsplit('-').next().unwrap()).collect();
        assert!(top.contains(&"flight") && top.contains(&"boots"), "{user}: top two were {top:?}: {snippets:#?}");
    }
    let games = context(&mut client, "bob", "recommend me a game like the one I played", 1).await;
    assert_eq!(games[0].provenance.as_ref().unwrap().event_id, "bob-game");
    let food = context(&mut client, "carol", "any good recipes for dinner tonight?", 1).await;
    assert_eq!(food[0].provenance.as_ref().unwrap().event_id, "carol-search");
    server.stop().await;
}

#[tokio::test]
async fn provenance_is_complete() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let mut client = server.client().await;
    server.grant("erin", &SOURCES, Purpose::ChatAssistant).await;
    let events = activity("erin");
    let r = ingest(&mut client, events.clone()).await;
    let boots_result = &r.results[0];
    assert_eq!(boots_result.text, "Purchased Trail Runner hiking boots (Footwear) for 129.99 USD at Acme Outdoors");
    let s = &context(&mut client, "erin", "hiking boots", 1).await[0];
    let p = s.provenance.as_ref().unwrap();
    assert_eq!(s.text, boots_result.text);
    assert_eq!((p.source_id.as_str(), p.event_id.as_str(), p.event_name.as_str()), ("acme", "erin-boots", "Purchase"));
    assert_eq!(p.event_time, events[0].event_time);
    assert!((now() - p.ingested_at).abs() < 120);
    assert_eq!(p.point_id, boots_result.point_id);
    assert_eq!(p.content_hash.len(), 64);
    server.stop().await;
}

#[tokio::test]
async fn reingest_replaces_and_never_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let mut client = server.client().await;
    server.grant("frank", &SOURCES, Purpose::ChatAssistant).await;
    let events = activity("frank");
    ingest(&mut client, events.clone()).await;
    ingest(&mut client, events.clone()).await;
    let mut changed = events[0].clone();
    changed.custom_data.as_mut().unwrap().content_name = "Summit Pro mountaineering boots".into();
    let r = ingest(&mut client, vec![changed]).await;
    assert_eq!(r.accepted, 1);
    let count = server.app.store.count(Scope::whole_user("frank")).await.unwrap();
    assert_eq!(count, events.len(), "re-sent events replace, never duplicate");
    let snippets = context(&mut client, "frank", "boots", 10).await;
    let boots: Vec<_> = snippets.iter().filter(|s| s.provenance.as_ref().unwrap().event_id == "frank-boots").collect();
    assert_eq!(boots.len(), 1);
    assert!(boots[0].text.contains("Summit Pro"), "latest version wins: {}", boots[0].text);
    server.stop().await;
}

#[tokio::test]
async fn data_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let mut client = server.client().await;
    server.grant("gina", &SOURCES, Purpose::ChatAssistant).await;
    ingest(&mut client, activity("gina")).await;
    let before = context(&mut client, "gina", "what should I pack for my trip?", 6).await;
    server.stop().await;

    let server = TestServer::start(dir.path()).await;
    let mut client = server.client().await;
    let after = context(&mut client, "gina", "what should I pack for my trip?", 6).await;
    assert_eq!(after.len(), 6);
    let ids = |s: &[pb::Snippet]| s.iter().map(|s| s.provenance.clone().unwrap().event_id).collect::<Vec<_>>();
    assert_eq!(ids(&before), ids(&after));
    assert_eq!(server.app.store.count(Scope::whole_user("gina")).await.unwrap(), 6);
    server.stop().await;
}

#[tokio::test]
async fn invalid_events_are_rejected_one_by_one_and_valid_ones_land() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let mut client = server.client().await;
    server.grant("hank", &SOURCES, Purpose::ChatAssistant).await;
    let good1 = ev("hank", "acme", "h1", "Purchase", "Camping stove");
    let mut bad_currency = ev("hank", "acme", "h2", "Purchase", "Tent");
    bad_currency.custom_data.as_mut().unwrap().value = Some(10.0);
    bad_currency.custom_data.as_mut().unwrap().currency = "dollars".into();
    let mut no_user = ev("", "acme", "h3", "ViewContent", "Lantern");
    no_user.user_id.clear();
    let mut future = ev("hank", "acme", "h4", "ViewContent", "Lantern");
    future.event_time = now() + 30 * 86_400;
    let mut bad_source = ev("hank", "acme", "h5", "ViewContent", "Lantern");
    bad_source.action_source = "telepathy".into();
    let good2 = ev("hank", "acme", "h6", "AddToCart", "Sleeping bag");
    let duplicate = ev("hank", "acme", "h1", "Purchase", "Camping stove again");
    let r = ingest(&mut client, vec![good1, bad_currency, no_user, future, bad_source, good2, duplicate]).await;
    assert_eq!((r.accepted, r.rejected), (2, 5));
    let status: Vec<(u32, i32, &str)> = r.results.iter().map(|x| (x.index, x.status, x.field.as_str())).collect();
    let (ok, rej) = (pb::IngestStatus::Accepted as i32, pb::IngestStatus::Rejected as i32);
    assert_eq!(
        status,
        vec![
            (0, ok, ""),
            (1, rej, "custom_data.currency"),
            (2, rej, "user_id"),
            (3, rej, "event_time"),
            (4, rej, "action_source"),
            (5, ok, ""),
            (6, rej, "event_id"),
        ]
    );
    assert_eq!(r.results[6].reason, pb::RejectReason::DuplicateInBatch as i32);
    assert_eq!(r.results[1].reason, pb::RejectReason::InvalidField as i32);
    assert!(!r.results[1].message.is_empty());
    assert_eq!(server.app.store.count(Scope::whole_user("hank")).await.unwrap(), 2);
    server.stop().await;
}

#[tokio::test]
async fn bad_requests_name_the_field_and_unknown_users_get_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let mut client = server.client().await;
    assert!(context(&mut client, "nobody", "anything at all", 5).await.is_empty());
    let cases = [
        (chat("", "q", 0), "user_id"),
        (chat("u", "  ", 0), "query"),
        (chat("u", "q", 1000), "max_snippets"),
        (chat("u", &"x".repeat(5000), 0), "query"),
        (chat("jane@example.com", "q", 0), "user_id"),
        (pb::GetContextRequest { purpose: pb::Purpose::Unspecified as i32, ..chat("u", "q", 0) }, "purpose"),
        (
            pb::GetContextRequest {
                time_window: Some(pb::TimeWindow { start_time: 20, end_time: 10 }),
                ..chat("u", "q", 0)
            },
            "time_window",
        ),
    ];
    for (request, field) in cases {
        let err = client.get_context(request).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        assert!(err.message().contains(field), "{field}: {}", err.message());
    }
    let too_many = vec![ev("u", "s", "e", "Purchase", "x"); 1001];
    let err = client.ingest(pb::IngestRequest { events: too_many }).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("events"));
    let err = client.embed(pb::EmbedRequest { texts: vec![] }).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    server.stop().await;
}

#[tokio::test]
async fn filters_restrict_results() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let mut client = server.client().await;
    server.grant("ivy", &SOURCES, Purpose::ChatAssistant).await;
    let mut events = activity("ivy");
    events[0].event_time = now() - 30 * 86_400;
    ingest(&mut client, events).await;
    let request = |f: &dyn Fn(&mut pb::GetContextRequest)| {
        let mut r = chat("ivy", "trip", 10);
        f(&mut r);
        r
    };
    let ids = |r: pb::GetContextResponse| {
        let mut v: Vec<String> = r.snippets.into_iter().map(|s| s.provenance.unwrap().event_id).collect();
        v.sort();
        v
    };
    let by_source = client.get_context(request(&|r| r.source_ids = vec!["acme".into(), "nova".into()])).await.unwrap();
    assert_eq!(ids(by_source.into_inner()), ["ivy-boots", "ivy-game"]);
    let by_name = client.get_context(request(&|r| r.event_names = vec!["Search".into()])).await.unwrap();
    assert_eq!(ids(by_name.into_inner()), ["ivy-search"]);
    let recent = client
        .get_context(request(&|r| r.time_window = Some(pb::TimeWindow { start_time: now() - 7 * 86_400, end_time: 0 })))
        .await
        .unwrap();
    let recent = ids(recent.into_inner());
    assert_eq!(recent.len(), 5);
    assert!(!recent.contains(&"ivy-boots".to_string()));
    server.stop().await;
}

#[tokio::test]
async fn stream_ingest_embed_and_health() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let mut client = server.client().await;
    server.grant("jack", &SOURCES, Purpose::ChatAssistant).await;
    let mut bad = ev("jack", "acme", "j-bad", "Purchase", "x");
    bad.event_name = "no spaces allowed".into();
    let batches = vec![
        pb::IngestRequest { events: activity("jack")[..3].to_vec() },
        pb::IngestRequest { events: [activity("jack")[3..].to_vec(), vec![bad]].concat() },
    ];
    let r = client.ingest_stream(tokio_stream::iter(batches)).await.unwrap().into_inner();
    assert_eq!((r.accepted, r.rejected), (6, 1));
    assert_eq!(r.results[0].index, 6, "indexes count across the stream");
    assert_eq!(r.results[0].field, "event_name");
    assert_eq!(server.app.store.count(Scope::whole_user("jack")).await.unwrap(), 6);

    let texts = vec!["Booked a flight to Reykjavik".to_string(), String::new()];
    let r = client.embed(pb::EmbedRequest { texts: texts.clone() }).await.unwrap().into_inner();
    assert_eq!((r.dimension, r.vectors.len()), (384, 2));
    let local = server.app.engine.embed(texts).await.unwrap();
    assert_eq!(r.vectors[0].values, local[0]);

    let channel =
        tonic::transport::Channel::from_shared(format!("http://{}", server.addr)).unwrap().connect().await.unwrap();
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    let status = health
        .check(tonic_health::pb::HealthCheckRequest { service: "context_engine.v1.ContextEngine".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status.status, tonic_health::pb::health_check_response::ServingStatus::Serving as i32);
    server.stop().await;
}

/// With a one-slot model queue, a burst of concurrent requests is partly
/// refused with RESOURCE_EXHAUSTED, never queued without bound, and an ingest
/// that is refused writes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn overload_is_refused_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    let app = tokio::task::spawn_blocking(move || {
        let mut config = crate::common::app_config(&path);
        config.batch = context_engine::embed::BatchConfig { queue_capacity: 1, max_batch_texts: 1 };
        context_engine::app::build(&config).unwrap()
    })
    .await
    .unwrap();
    let server = TestServer::serve(app).await;
    server.grant("olga", &["acme"], Purpose::ChatAssistant).await;
    let long = "hiking boots and trail maps for a long trip ".repeat(20);
    let mut calls = Vec::new();
    for i in 0..24 {
        let mut client = server.client().await;
        let long = long.clone();
        calls.push(tokio::spawn(async move {
            if i % 2 == 0 {
                client.embed(pb::EmbedRequest { texts: vec![long; 8] }).await.map(|_| 0)
            } else {
                let events =
                    (0..4).map(|j| ev("olga", "acme", &format!("o{i}-{j}"), "ViewContent", &long[..200])).collect();
                client.ingest(pb::IngestRequest { events }).await.map(|r| r.into_inner().accepted)
            }
        }));
    }
    let (mut ok, mut refused, mut stored) = (0, 0, 0);
    for call in calls {
        match call.await.unwrap() {
            Ok(accepted) => {
                ok += 1;
                stored += accepted as usize;
            }
            Err(status) => {
                assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
                refused += 1;
            }
        }
    }
    assert!(ok > 0 && refused > 0, "ok {ok}, refused {refused}");
    assert_eq!(
        server.app.store.count(Scope::whole_user("olga")).await.unwrap(),
        stored,
        "refused batches wrote nothing"
    );
    server.stop().await;
}

#[tokio::test]
async fn reflection_lists_the_services() {
    use tonic_reflection::pb::v1::{
        server_reflection_client::ServerReflectionClient, server_reflection_request::MessageRequest,
        server_reflection_response::MessageResponse, ServerReflectionRequest,
    };
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let mut client = ServerReflectionClient::new(server.channel().await);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = client.server_reflection_info(tokio_stream::iter(vec![request])).await.unwrap().into_inner();
    let response = responses.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else { panic!("{response:?}") };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for expected in ["context_engine.v1.ContextEngine", "context_engine.v1.Privacy", "grpc.health.v1.Health"] {
        assert!(names.contains(&expected.to_string()), "{names:?}");
    }
    server.stop().await;
}

/// Beyond `max_in_flight` calls a new call is refused at once with
/// RESOURCE_EXHAUSTED (not queued), the call in flight completes with
/// nothing lost, and the server serves again afterwards.
#[tokio::test(flavor = "multi_thread")]
async fn calls_beyond_the_in_flight_limit_are_shed() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_path_buf();
    let app = tokio::task::spawn_blocking(move || crate::common::build_app(&data)).await.unwrap();
    let options = context_engine::api::ServeOptions { max_in_flight: 1 };
    let server = TestServer::serve_with_options(app, Default::default(), options).await;
    server.grant("ann", &["shop"], context_engine::domain::Purpose::ChatAssistant).await;
    let mut slow = server.client().await;
    let mut other = server.client().await;
    // Long enough to be in flight while the second call arrives (several
    // hundred milliseconds of embedding).
    let events: Vec<pb::ActivityEvent> = (0..400)
        .map(|i| crate::common::ev("ann", "shop", &format!("e{i}"), "Purchase", &format!("Hiking boots model {i}")))
        .collect();
    let ingest = tokio::spawn(async move { slow.ingest(pb::IngestRequest { events }).await });
    tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    let shed = other.get_context(crate::common::chat("ann", "boots", 3)).await.unwrap_err();
    assert_eq!(shed.code(), tonic::Code::ResourceExhausted, "{shed:?}");
    assert!(shed.metadata().get("x-request-id").is_some(), "a shed call still gets a request id");
    // Health checks are never shed: a saturated replica is busy, not dead.
    let mut health = tonic_health::pb::health_client::HealthClient::new(server.channel().await);
    let status = health
        .check(tonic_health::pb::HealthCheckRequest { service: "context_engine.v1.ContextEngine".into() })
        .await
        .expect("health answers while the limit is reached")
        .into_inner();
    assert_eq!(status.status, tonic_health::pb::health_check_response::ServingStatus::Serving as i32);
    let done = ingest.await.unwrap().expect("the call in flight completes").into_inner();
    assert_eq!(done.accepted, 400, "nothing lost to shedding");
    let answer = other.get_context(crate::common::chat("ann", "boots", 3)).await.expect("served again");
    assert_eq!(answer.into_inner().snippets.len(), 3);
    server.stop().await;
}

/// `GetContextRequest` with `bytes` where the real message has `string`s, so
/// a test can send what a conforming client never would.
#[derive(Clone, PartialEq, prost::Message)]
struct RawGetContext {
    #[prost(bytes = "vec", tag = "1")]
    user_id: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    query: Vec<u8>,
}

async fn raw_get_context(server: &TestServer, message: RawGetContext) -> tonic::Status {
    let mut grpc = tonic::client::Grpc::new(server.channel().await)
        .max_encoding_message_size(64 << 20)
        .max_decoding_message_size(64 << 20);
    grpc.ready().await.unwrap();
    let path = http::uri::PathAndQuery::from_static("/context_engine.v1.ContextEngine/GetContext");
    let codec = tonic_prost::ProstCodec::<RawGetContext, pb::GetContextResponse>::default();
    grpc.unary(tonic::Request::new(message), path, codec).await.expect_err("refused")
}

#[tokio::test]
async fn undecodable_and_oversized_messages_are_the_callers_error() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let bad_utf8 = RawGetContext { user_id: b"ann".to_vec(), query: vec![b'h', 0xff, 0xfe, b'i'] };
    let status = raw_get_context(&server, bad_utf8).await;
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("UTF-8"), "{}", status.message());
    let huge = RawGetContext { user_id: b"ann".to_vec(), query: vec![b'a'; 9 << 20] };
    let status = raw_get_context(&server, huge).await;
    assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
    assert!(status.message().contains("too large"), "{}", status.message());
    // A well-formed call still works on the same server.
    let mut client = server.client().await;
    client.get_context(crate::common::chat("ann", "boots", 3)).await.expect("served");
    server.stop().await;
}
