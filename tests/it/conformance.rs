//! One conformance suite for every store backend: upsert and idempotency,
//! filters by user, source, event name, family and time, delete by filter
//! and by id (count after delete = 0), scroll pagination, the consent
//! ledger, the access log, dense, sparse and hybrid search, persistence
//! across a reopen, and whole-store migration. Qdrant Edge runs always; a
//! Qdrant server runs when `QDRANT_URL` is set (its gRPC URL, e.g.
//! `http://localhost:6334`), and then both backends must also return the
//! same top results for the same data.

use std::path::PathBuf;
use std::sync::Arc;

use context_engine::domain::{
    point_id, AccessRecord, ActivityEvent, ConsentGrant, ConsentState, CustomData, EventRecord, Purpose, RetrievalMode,
    Scope, TimeWindow,
};
use context_engine::embed::Embedder;
use context_engine::migrate::{self, MigrateOptions};
use context_engine::store::{
    CollectionKind, EdgeOptions, EdgeStore, QdrantOptions, QdrantStore, RawStore, SearchRequest, StoreManifest,
    StoredPoint, VectorStore,
};

use crate::common::model_dir;

/// A backend under test, reopenable.
#[derive(Clone)]
enum Backend {
    Edge(PathBuf),
    Qdrant(QdrantOptions),
}

const T0: i64 = 1_760_000_000;
const DAY: i64 = 86_400;

fn manifest() -> StoreManifest {
    StoreManifest::current("all-MiniLM-L6-v2", 384, 20.0)
}

impl Backend {
    fn name(&self) -> &'static str {
        match self {
            Self::Edge(_) => "edge",
            Self::Qdrant(_) => "qdrant-server",
        }
    }

    async fn open(&self) -> (Arc<dyn VectorStore>, Arc<dyn RawStore>) {
        match self {
            Self::Edge(dir) => {
                let m = manifest();
                let store = EdgeStore::open(&EdgeOptions {
                    data_dir: dir.clone(),
                    dimension: m.dimension,
                    model_id: m.model_id,
                    bm25_avg_len: m.bm25_avg_len,
                })
                .expect("edge store opens");
                (Arc::new(store.clone()), Arc::new(store))
            }
            Self::Qdrant(options) => {
                let store = QdrantStore::connect(options, &manifest()).await.expect("Qdrant server reachable");
                (Arc::new(store.clone()), Arc::new(store))
            }
        }
    }
}

/// The Qdrant server of `QDRANT_URL` with collections unique to this run,
/// or `None` after printing the skip line.
fn server(label: &str) -> Option<QdrantOptions> {
    match std::env::var("QDRANT_URL") {
        Ok(url) if !url.is_empty() => {
            let mut options = QdrantOptions::new(url);
            options.api_key = std::env::var("QDRANT_API_KEY").ok().filter(|k| !k.is_empty());
            options.collection_prefix = format!("ce_test_{label}_{}", uuid::Uuid::new_v4().simple());
            Some(options)
        }
        _ => {
            crate::common::skip(&format!("QDRANT_URL not set ({label} against a Qdrant server)"));
            None
        }
    }
}

struct Fixture {
    points: Vec<StoredPoint>,
}

fn event(user: &str, source: &str, id: &str, name: &str, content: &str, days_ago: i64) -> ActivityEvent {
    ActivityEvent {
        event_id: id.into(),
        user_id: user.into(),
        source_id: source.into(),
        event_name: name.into(),
        event_time: T0 - days_ago * DAY,
        action_source: "website".into(),
        custom_data: CustomData { content_name: content.into(), ..Default::default() },
        ..Default::default()
    }
}

/// Two people's activity across two sources, embedded by the real model.
fn fixture() -> Fixture {
    let events = vec![
        event("c-ann", "shop", "a1", "Purchase", "Brannoc Vell hiking boots", 1),
        event("c-ann", "shop", "a2", "ViewContent", "a red rain jacket", 3),
        event("c-ann", "shop", "a3", "Purchase", "a camping stove", 10),
        event("c-ann", "shop", "a4", "AddToCart", "wool socks", 20),
        event("c-ann", "games", "a5", "ViewContent", "a strategy game about trains", 2),
        event("c-ann", "games", "a6", "Purchase", "Quorvath Saga expansion pack", 40),
        event("c-ann", "games", "a7", "Search", "racing games for two players", 5),
        event("c-bob", "shop", "b1", "Purchase", "Brannoc Vell hiking boots", 1),
        event("c-bob", "shop", "b2", "ViewContent", "a garden hose", 4),
        event("c-bob", "games", "b3", "Purchase", "a puzzle game", 8),
    ];
    let texts: Vec<String> = events.iter().map(context_engine::verbalize::verbalize).collect();
    let mut embedder =
        context_engine::app::load_embedder(&model_dir(), context_engine::embed::DeviceChoice::Cpu).unwrap();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let vectors = embedder.embed(&refs).unwrap();
    let points = events
        .into_iter()
        .zip(texts)
        .zip(vectors)
        .map(|((event, text), vector)| StoredPoint {
            id: point_id(&event.source_id, &event.event_id),
            vector,
            record: EventRecord {
                event,
                text,
                ingested_at: T0,
                content_hash: "h".into(),
                injection_score: None,
                injection_head: None,
            },
        })
        .collect();
    Fixture { points }
}

fn query_vector(text: &str) -> Vec<f32> {
    let mut embedder =
        context_engine::app::load_embedder(&model_dir(), context_engine::embed::DeviceChoice::Cpu).unwrap();
    embedder.embed(&[text]).unwrap().pop().unwrap()
}

fn search(vector: Vec<f32>, text: &str, scope: Scope, mode: RetrievalMode) -> SearchRequest {
    SearchRequest { vector, text: text.into(), scope, limit: 10, mode, exact: false }
}

fn ids(hits: &[context_engine::store::ScoredRecord]) -> Vec<String> {
    hits.iter().map(|h| h.record.event.event_id.clone()).collect()
}

fn grant(user: &str, source: &str, purpose: Purpose, state: ConsentState, version: u64) -> ConsentGrant {
    ConsentGrant {
        user_id: user.into(),
        source_id: source.into(),
        purpose,
        state,
        version,
        created_at: T0,
        updated_at: T0 + version as i64,
    }
}

fn access(user: &str, at: i64) -> AccessRecord {
    crate::common::access_record(user, at, 1)
}

/// Everything a backend must do, in order, on one fresh store.
async fn conformance(backend: &Backend, fx: &Fixture) {
    let name = backend.name();
    let (store, _) = backend.open().await;

    // Upsert, then the same points again: idempotent.
    store.upsert(fx.points.clone()).await.unwrap();
    store.upsert(fx.points.clone()).await.unwrap();
    let ann = Scope::whole_user("c-ann");
    assert_eq!(store.count(ann.clone()).await.unwrap(), 7, "{name}: upsert is idempotent");
    assert_eq!(store.count(Scope::whole_user("c-bob")).await.unwrap(), 3, "{name}");
    assert_eq!(store.count(Scope::whole_user("nobody")).await.unwrap(), 0, "{name}");
    // Same id, new content: replaced, not added.
    let mut changed = fx.points[3].clone();
    changed.record.text = "Changed text of a4".into();
    store.upsert(vec![changed]).await.unwrap();
    assert_eq!(store.count(ann.clone()).await.unwrap(), 7, "{name}");

    // Filters: source, event name, family, time, and the empty source list.
    assert_eq!(store.count(Scope::user_sources("c-ann", vec!["shop".into()])).await.unwrap(), 4, "{name}");
    assert_eq!(store.count(Scope::user_sources("c-ann", vec![])).await.unwrap(), 0, "{name}: empty scope");
    let mut by_name = ann.clone();
    by_name.event_names = vec!["Purchase".into()];
    assert_eq!(store.count(by_name).await.unwrap(), 3, "{name}: event name");
    let mut by_family = ann.clone();
    by_family.event_families = vec!["view".into()];
    assert_eq!(store.count(by_family).await.unwrap(), 2, "{name}: family");
    let mut recent = ann.clone();
    recent.time_window = TimeWindow { start: Some(T0 - 5 * DAY), end: None };
    assert_eq!(store.count(recent.clone()).await.unwrap(), 4, "{name}: since 5 days");
    recent.time_window = TimeWindow { start: Some(T0 - 20 * DAY), end: Some(T0 - 3 * DAY) };
    assert_eq!(store.count(recent).await.unwrap(), 4, "{name}: window");

    // Search: dense finds the right event, only in scope; sparse finds an
    // invented name; hybrid returns both lists; no other user's points.
    let q = "what boots did I buy?";
    let found = store.search(search(query_vector(q), q, ann.clone(), RetrievalMode::Hybrid)).await.unwrap();
    assert_eq!(ids(&found.dense)[0], "a1", "{name}: dense top hit");
    assert!(!found.sparse.is_empty(), "{name}: hybrid has a sparse list");
    assert!(found.dense.iter().chain(&found.sparse).all(|h| h.record.event.user_id == "c-ann"), "{name}");
    assert!(found.dense.iter().chain(&found.sparse).all(|h| h.vector.len() == 384), "{name}: hits carry vectors");
    // A point both lists name (each point is read once) carries the same
    // record and vector in both, and each list keeps its own score.
    let mut shared = 0;
    for d in &found.dense {
        if let Some(s) = found.sparse.iter().find(|s| s.id == d.id) {
            shared += 1;
            assert_eq!(d.record, s.record, "{name}: {}", d.id);
            assert_eq!(d.vector, s.vector, "{name}: {}", d.id);
            assert_ne!(d.score, s.score, "{name}: cosine and BM25 scores differ");
        }
    }
    assert!(shared > 0, "{name}: the two lists share the boots purchase");
    let fx_vector = |id: &str| fx.points.iter().find(|p| p.record.event.event_id == id).map(|p| p.vector.clone());
    for hit in found.dense.iter().chain(&found.sparse) {
        let want = fx_vector(&hit.record.event.event_id).expect("a fixture point");
        assert!(hit.vector.iter().zip(&want).all(|(a, b)| (a - b).abs() < 1e-5), "{name}: {} its own vector", hit.id);
    }
    let q = "Quorvath";
    let sparse = store.search(search(Vec::new(), q, ann.clone(), RetrievalMode::Sparse)).await.unwrap();
    assert!(sparse.dense.is_empty(), "{name}");
    assert_eq!(ids(&sparse.sparse), vec!["a6"], "{name}: BM25 finds the invented name only");
    let games = Scope::user_sources("c-ann", vec!["games".into()]);
    let q = "hiking boots";
    let found = store.search(search(query_vector(q), q, games, RetrievalMode::Dense)).await.unwrap();
    assert!(found.dense.iter().all(|h| h.record.event.source_id == "games"), "{name}: source filter");

    // Scroll: pages of 3 cover every point once.
    let (mut seen, mut from) = (Vec::new(), None);
    loop {
        let page = store.scroll(ann.clone(), from, 3).await.unwrap();
        assert!(page.records.len() <= 3);
        seen.extend(page.records.iter().map(|(_, r)| r.event.event_id.clone()));
        match page.next {
            Some(next) => from = Some(next),
            None => break,
        }
    }
    seen.sort();
    assert_eq!(seen, vec!["a1", "a2", "a3", "a4", "a5", "a6", "a7"], "{name}: scroll");
    let page = store.scroll(ann.clone(), None, 10).await.unwrap();
    let a4 = page.records.iter().find(|(_, r)| r.event.event_id == "a4").unwrap();
    assert_eq!(a4.1.text, "Changed text of a4", "{name}: the upsert replaced the payload");
    assert!(page.vectors.is_empty(), "{name}: plain scroll carries no vectors");

    // Scroll with vectors: each record with its own stored vector.
    let with = store.scroll_with_vectors(ann.clone(), None, 10).await.unwrap();
    assert_eq!(with.records.len(), 7, "{name}: scroll with vectors");
    assert_eq!(with.vectors.len(), with.records.len());
    let mut embedder =
        context_engine::app::load_embedder(&model_dir(), context_engine::embed::DeviceChoice::Cpu).unwrap();
    let texts: Vec<&str> = with.records.iter().map(|(_, r)| r.text.as_str()).collect();
    let expected = embedder.embed(&texts).unwrap();
    for (((_, record), vector), expected) in with.records.iter().zip(&with.vectors).zip(&expected) {
        if record.event.event_id == "a4" {
            continue; // its payload was replaced above, its vector kept
        }
        let cos: f32 = expected.iter().zip(vector).map(|(a, b)| a * b).sum();
        assert!(cos > 0.999, "{name}: {} carries its own vector (cos {cos})", record.event.event_id);
    }

    // Consent ledger: one entry per (user, source, purpose), replaced in place.
    store.put_consent(grant("c-ann", "shop", Purpose::ChatAssistant, ConsentState::Granted, 1)).await.unwrap();
    store.put_consent(grant("c-ann", "games", Purpose::ChatAssistant, ConsentState::Granted, 1)).await.unwrap();
    store.put_consent(grant("c-bob", "shop", Purpose::ChatAssistant, ConsentState::Granted, 1)).await.unwrap();
    store.put_consent(grant("c-ann", "shop", Purpose::ChatAssistant, ConsentState::Revoked, 2)).await.unwrap();
    let mut ledger = store.consents(vec!["c-ann".into()]).await.unwrap();
    ledger.sort_by(|a, b| a.source_id.cmp(&b.source_id));
    assert_eq!(ledger.len(), 2, "{name}: one entry per key");
    assert_eq!((ledger[1].source_id.as_str(), ledger[1].state, ledger[1].version), ("shop", ConsentState::Revoked, 2));
    assert_eq!(store.consents(vec!["c-ann".into(), "c-bob".into()]).await.unwrap().len(), 3, "{name}");

    // Access log: most recent first, bounded by the limit.
    for at in [T0 + 1, T0 + 3, T0 + 2] {
        store.append_access(access("c-ann", at)).await.unwrap();
    }
    store.append_access(access("c-bob", T0 + 9)).await.unwrap();
    let log = store.access_log("c-ann".into(), 2).await.unwrap();
    assert_eq!(log.iter().map(|r| r.at).collect::<Vec<_>>(), vec![T0 + 3, T0 + 2], "{name}: access log order");

    // Persistence: a reopened store (a new connection for a server) has it all.
    store.flush().await.unwrap();
    store.close();
    drop(store);
    let (store, raw) = backend.open().await;
    assert_eq!(store.count(ann.clone()).await.unwrap(), 7, "{name}: events persist");
    assert_eq!(store.consents(vec!["c-ann".into()]).await.unwrap().len(), 2, "{name}: ledger persists");
    assert_eq!(store.access_log("c-ann".into(), 10).await.unwrap().len(), 3, "{name}: access log persists");
    assert_eq!(raw.total(CollectionKind::Activity).await.unwrap(), 10, "{name}");

    // Deletes: by id, by filter (returns the count; 0 after), per user.
    store.delete_ids(vec![point_id("shop", "a1"), point_id("shop", "missing")]).await.unwrap();
    assert_eq!(store.count(ann.clone()).await.unwrap(), 6, "{name}: delete by id");
    let games = Scope::user_sources("c-ann", vec!["games".into()]);
    assert_eq!(store.delete(games.clone()).await.unwrap(), 3, "{name}: delete returns the count");
    assert_eq!(store.count(games).await.unwrap(), 0, "{name}: count after delete = 0");
    assert_eq!(store.count(Scope::whole_user("c-bob")).await.unwrap(), 3, "{name}: other users untouched");
    assert_eq!(store.delete_consents("c-ann".into()).await.unwrap(), 2, "{name}");
    assert!(store.consents(vec!["c-ann".into()]).await.unwrap().is_empty(), "{name}");
    assert_eq!(store.delete_access("c-ann".into()).await.unwrap(), 3, "{name}");
    assert!(store.access_log("c-ann".into(), 10).await.unwrap().is_empty(), "{name}");
    assert_eq!(store.access_log("c-bob".into(), 10).await.unwrap().len(), 1, "{name}");
    store.close();
}

#[tokio::test(flavor = "multi_thread")]
async fn edge_store_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let fx = tokio::task::spawn_blocking(fixture).await.unwrap();
    conformance(&Backend::Edge(dir.path().join("store")), &fx).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn qdrant_server_conforms() {
    let Some(options) = server("conformance") else { return };
    let fx = tokio::task::spawn_blocking(fixture).await.unwrap();
    let backend = Backend::Qdrant(options.clone());
    conformance(&backend, &fx).await;
    QdrantStore::connect(&options, &manifest()).await.unwrap().drop_collections().await.unwrap();
}

/// Both backends return the same top results for the same data.
#[tokio::test(flavor = "multi_thread")]
async fn edge_and_server_return_the_same_top_results() {
    let Some(options) = server("parity") else { return };
    let dir = tempfile::tempdir().unwrap();
    let fx = tokio::task::spawn_blocking(fixture).await.unwrap();
    let (edge, _) = Backend::Edge(dir.path().join("store")).open().await;
    let (server, _) = Backend::Qdrant(options.clone()).open().await;
    edge.upsert(fx.points.clone()).await.unwrap();
    server.upsert(fx.points.clone()).await.unwrap();
    for q in ["what boots did I buy?", "games", "Quorvath", "rain jacket", "something for camping"] {
        let vector = query_vector(q);
        for mode in [RetrievalMode::Dense, RetrievalMode::Sparse, RetrievalMode::Hybrid] {
            let request = search(vector.clone(), q, Scope::whole_user("c-ann"), mode);
            let (a, b) = (edge.search(request.clone()).await.unwrap(), server.search(request).await.unwrap());
            assert_eq!(ids(&a.dense), ids(&b.dense), "dense {q:?} {mode:?}");
            assert_eq!(ids(&a.sparse), ids(&b.sparse), "sparse {q:?} {mode:?}");
            for (x, y) in a.dense.iter().zip(&b.dense) {
                assert!((x.score - y.score).abs() < 1e-4, "{q:?}: {} vs {}", x.score, y.score);
            }
        }
    }
    edge.close();
    QdrantStore::connect(&options, &manifest()).await.unwrap().drop_collections().await.unwrap();
}

async fn fill(store: &dyn VectorStore, fx: &Fixture) {
    store.upsert(fx.points.clone()).await.unwrap();
    store.put_consent(grant("c-ann", "shop", Purpose::ChatAssistant, ConsentState::Granted, 1)).await.unwrap();
    store.put_consent(grant("c-bob", "games", Purpose::FeedRanking, ConsentState::Granted, 3)).await.unwrap();
    store.append_access(access("c-ann", T0 + 5)).await.unwrap();
}

/// `migrate` copies all three collections, verifies, is idempotent, and
/// re-embeds from the stored events when asked.
#[tokio::test(flavor = "multi_thread")]
async fn migration_copies_verifies_and_reembeds() {
    let dir = tempfile::tempdir().unwrap();
    let fx = tokio::task::spawn_blocking(fixture).await.unwrap();
    let source = Backend::Edge(dir.path().join("a"));
    let (store, raw_source) = source.open().await;
    fill(&*store, &fx).await;

    let mut targets = vec![Backend::Edge(dir.path().join("b"))];
    targets.extend(server("migrate").map(Backend::Qdrant));
    for target in targets {
        let (copy, raw_copy) = target.open().await;
        let options = MigrateOptions { batch: 3, verify_sample: 5, reembed: None, progress: false };
        for _ in 0..2 {
            let report = migrate::migrate(&*raw_source, &*raw_copy, &options).await.unwrap();
            let counts: Vec<(String, usize)> = report.collections.iter().map(|c| (c.0.clone(), c.3)).collect();
            assert_eq!(
                counts,
                vec![("consent".into(), 2), ("access".into(), 1), ("activity".into(), 10)],
                "{}: run twice, same counts",
                target.name()
            );
            assert!(report.verified_sample >= 7, "{}", report.verified_sample);
        }
        // The copy answers like the original.
        let q = "what boots did I buy?";
        let request = search(query_vector(q), q, Scope::whole_user("c-ann"), RetrievalMode::Hybrid);
        let (a, b) = (store.search(request.clone()).await.unwrap(), copy.search(request).await.unwrap());
        assert_eq!(ids(&a.dense), ids(&b.dense), "{}", target.name());
        assert_eq!(ids(&a.sparse), ids(&b.sparse), "{}", target.name());
        assert_eq!(copy.consents(vec!["c-bob".into()]).await.unwrap()[0].version, 3);
        // A destination holding other points fails verification, loudly.
        copy.append_access(access("c-zed", T0)).await.unwrap();
        let err = migrate::migrate(&*raw_source, &*raw_copy, &options).await.unwrap_err();
        assert!(err.to_string().contains("access: source has 1 points"), "{err}");
        copy.close();
        if let Backend::Qdrant(options) = &target {
            QdrantStore::connect(options, &manifest()).await.unwrap().drop_collections().await.unwrap();
        }
    }

    // Re-embedding: vectors recomputed by the model from the stored events
    // (a deliberately wrong vector in the source comes out right).
    let mut wrong = fx.points[0].clone();
    wrong.vector = vec![0.0; 384];
    wrong.vector[0] = 1.0;
    store.upsert(vec![wrong]).await.unwrap();
    let (_, raw_reembedded) = Backend::Edge(dir.path().join("c")).open().await;
    let embedder = tokio::task::spawn_blocking(|| {
        context_engine::app::load_embedder(&model_dir(), context_engine::embed::DeviceChoice::Cpu).unwrap()
    })
    .await
    .unwrap();
    let handle = context_engine::embed::EmbedHandle::spawn(Box::new(embedder), Default::default()).unwrap();
    let options = MigrateOptions { batch: 4, verify_sample: 5, reembed: Some((handle, manifest())), progress: false };
    migrate::migrate(&*raw_source, &*raw_reembedded, &options).await.unwrap();
    let fixed = raw_reembedded.fetch(CollectionKind::Activity, vec![fx.points[0].id]).await.unwrap();
    let cosine: f32 = fixed[0].vector.as_ref().unwrap().iter().zip(&fx.points[0].vector).map(|(a, b)| a * b).sum();
    assert!(cosine > 0.9999, "re-embedded vector matches the model's: {cosine}");
    store.close();
}

/// Without a server the backend fails fast with an error that says so.
#[tokio::test]
async fn an_unreachable_qdrant_server_is_a_clear_error() {
    let addr = crate::common::free_port(); // nothing listens there
    let mut options = QdrantOptions::new(format!("http://{addr}"));
    options.timeout = std::time::Duration::from_secs(2);
    let started = std::time::Instant::now();
    let err = QdrantStore::connect(&options, &manifest()).await.unwrap_err();
    assert!(err.to_string().contains("does not answer"), "{err}");
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
}

/// Two engine replicas on one Qdrant server, racing SetConsent on the same
/// key: every change either side reported as made is counted in the
/// entry's version (none lost: a compare-and-set on the stored version).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicas_racing_set_consent_lose_no_update() {
    use context_engine::domain::{ConsentState, Purpose};
    use context_engine::engine::{Engine, EngineConfig};
    let Some(options) = server("consent_race") else { return };
    let embedder = context_engine::app::load_embedder(&model_dir(), context_engine::embed::DeviceChoice::Cpu).unwrap();
    let handle = context_engine::embed::EmbedHandle::spawn(Box::new(embedder), Default::default()).unwrap();
    let counter: Arc<dyn context_engine::rank::CountTokens> =
        Arc::new(context_engine::tokens::HfTokenCounter::load(&model_dir().join("tokenizer.json")).unwrap());
    let replica = |store: QdrantStore| {
        Arc::new(Engine::new(handle.clone(), Arc::new(store), counter.clone(), EngineConfig::default()))
    };
    let a = replica(QdrantStore::connect(&options, &manifest()).await.unwrap());
    let b = replica(QdrantStore::connect(&options, &manifest()).await.unwrap());
    let rounds = 25;
    let mut tasks = Vec::new();
    for (engine, first) in [(a.clone(), ConsentState::Granted), (b.clone(), ConsentState::Revoked)] {
        tasks.push(tokio::spawn(async move {
            let mut changed = 0u64;
            for i in 0..rounds {
                let state = if i % 2 == 0 {
                    first
                } else if first == ConsentState::Granted {
                    ConsentState::Revoked
                } else {
                    ConsentState::Granted
                };
                let change = engine
                    .set_consent("race-user", "shop", Some(Purpose::ChatAssistant), Some(state), T0 + i)
                    .await
                    .expect("set consent");
                changed += u64::from(change.changed);
            }
            changed
        }));
    }
    let mut changed = 0;
    for t in tasks {
        changed += t.await.unwrap();
    }
    let grants = a.list_consents("race-user").await.unwrap();
    assert_eq!(grants.len(), 1);
    assert_eq!(grants[0].version, changed, "{changed} changes reported, the entry counts {}", grants[0].version);
    assert!(changed >= rounds as u64, "both replicas made changes ({changed})");
    println!("consent race on a Qdrant server: {changed} changes from two replicas, version {}", grants[0].version);
}

/// On a Qdrant server an erasure forces Qdrant's vacuum on the three
/// collections and reports it (`SegmentsVacuumed`), never `Purged`: the
/// server's WAL keeps copies until Qdrant truncates it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erasure_on_a_server_forces_the_vacuum_and_says_what_remains() {
    use context_engine::domain::{ConsentState, Purpose};
    use context_engine::engine::{Engine, EngineConfig};
    use context_engine::store::PurgeState;
    let Some(options) = server("vacuum") else { return };
    let embedder = context_engine::app::load_embedder(&model_dir(), context_engine::embed::DeviceChoice::Cpu).unwrap();
    let handle = context_engine::embed::EmbedHandle::spawn(Box::new(embedder), Default::default()).unwrap();
    let counter: Arc<dyn context_engine::rank::CountTokens> =
        Arc::new(context_engine::tokens::HfTokenCounter::load(&model_dir().join("tokenizer.json")).unwrap());
    let store = QdrantStore::connect(&options, &manifest()).await.unwrap();
    let engine = Engine::new(handle, Arc::new(store), counter, EngineConfig::default());
    let now = T0 + 100 * DAY;
    engine
        .set_consent("vac-ann", "shop", Some(Purpose::ChatAssistant), Some(ConsentState::Granted), now)
        .await
        .unwrap();
    let events = (0..5).map(|i| event("vac-ann", "shop", &format!("v{i}"), "Purchase", "a tent", 1)).collect();
    assert!(engine.ingest(events, now).await.unwrap().iter().all(|o| o.is_accepted()));
    let receipt = engine.erase_user("vac-ann", now).await.unwrap();
    assert_eq!((receipt.events_removed, receipt.remaining_points, receipt.remaining_consents), (5, 0, 0));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        match engine.erasure_status(receipt.purge_ticket).await.unwrap() {
            PurgeState::SegmentsVacuumed { at } => {
                assert!(at > 0);
                break;
            }
            PurgeState::Pending => {}
            other => panic!("a server reports the vacuum, not {other:?}"),
        }
        assert!(std::time::Instant::now() < deadline, "the forced vacuum did not finish");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}
