//! The Qdrant Edge store directly: user scoping, counts, reopen checks.

use context_engine::domain::{point_id, ActivityEvent, EventRecord, RetrievalMode, Scope};
use context_engine::store::{EdgeOptions, EdgeStore, SearchRequest, StoreError, StoredPoint, VectorStore};

fn point(user: &str, id: &str, vector: Vec<f32>) -> StoredPoint {
    let event = ActivityEvent {
        event_id: id.into(),
        user_id: user.into(),
        source_id: "src".into(),
        event_name: "Purchase".into(),
        event_time: 1_700_000_000,
        action_source: "website".into(),
        ..Default::default()
    };
    StoredPoint {
        id: point_id("src", id),
        vector,
        record: EventRecord { event, text: format!("text {id}"), ingested_at: 1_700_000_001, content_hash: "h".into() },
    }
}

fn options(dir: &std::path::Path, dimension: usize) -> EdgeOptions {
    EdgeOptions { data_dir: dir.to_path_buf(), dimension, model_id: "test-model".into(), bm25_avg_len: 20.0 }
}

fn search(vector: Vec<f32>, text: &str, scope: Scope, limit: usize, mode: RetrievalMode) -> SearchRequest {
    SearchRequest { vector, text: text.into(), scope, limit, mode, exact: false }
}

#[tokio::test]
async fn search_and_count_are_scoped_to_one_user() {
    let dir = tempfile::tempdir().unwrap();
    let store = EdgeStore::open(&options(dir.path(), 4)).unwrap();
    store
        .upsert(vec![
            point("u1", "a", vec![1.0, 0.0, 0.0, 0.0]),
            point("u1", "b", vec![0.0, 1.0, 0.0, 0.0]),
            point("u2", "c", vec![1.0, 0.0, 0.0, 0.0]),
        ])
        .await
        .unwrap();
    assert_eq!(store.count(Scope::whole_user("u1")).await.unwrap(), 2);
    assert_eq!(store.count(Scope::whole_user("u2")).await.unwrap(), 1);
    assert_eq!(store.count(Scope::whole_user("u3")).await.unwrap(), 0);
    let found = store
        .search(search(vec![1.0, 0.0, 0.0, 0.0], "text", Scope::whole_user("u1"), 10, RetrievalMode::Dense))
        .await
        .unwrap();
    assert!(found.sparse.is_empty(), "dense mode asks for no sparse list");
    let hits = found.dense;
    assert_eq!(hits.len(), 2);
    assert_eq!(hits[0].vector, vec![1.0, 0.0, 0.0, 0.0], "hits carry their dense vector");
    assert_eq!(hits[0].record.event.event_id, "a");
    assert!((hits[0].score - 1.0).abs() < 1e-5);
    assert!(hits.iter().all(|h| h.record.event.user_id == "u1"));
    store.close();
    assert!(matches!(store.count(Scope::whole_user("u1")).await, Err(StoreError::Closed)));
}

#[tokio::test]
async fn reopening_with_another_model_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = EdgeStore::open(&options(dir.path(), 4)).unwrap();
    store.upsert(vec![point("u1", "a", vec![1.0, 0.0, 0.0, 0.0])]).await.unwrap();
    store.close();
    let err = EdgeStore::open(&options(dir.path(), 8)).unwrap_err();
    assert!(matches!(err, StoreError::Incompatible { .. }), "{err}");
    let store = EdgeStore::open(&options(dir.path(), 4)).unwrap();
    assert_eq!(store.count(Scope::whole_user("u1")).await.unwrap(), 1);
    store.close();
}

#[tokio::test]
async fn delete_scroll_ledger_and_access_log() {
    use context_engine::domain::{AccessRecord, AccessedEvent, ConsentGrant, ConsentState, Purpose};
    let dir = tempfile::tempdir().unwrap();
    let store = EdgeStore::open(&options(dir.path(), 4)).unwrap();
    let mut points: Vec<StoredPoint> =
        (0..25).map(|i| point("u1", &format!("e{i}"), vec![1.0, i as f32, 0.0, 0.0])).collect();
    points.push(point("u2", "other", vec![1.0, 0.0, 0.0, 0.0]));
    store.upsert(points).await.unwrap();

    // Scroll pages through exactly the user's points.
    let (mut seen, mut from) = (Vec::new(), None);
    loop {
        let page = store.scroll(Scope::whole_user("u1"), from, 10).await.unwrap();
        assert!(page.records.len() <= 10);
        seen.extend(page.records.into_iter().map(|(_, r)| r.event.event_id));
        match page.next {
            Some(next) => from = Some(next),
            None => break,
        }
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 25);

    // An empty source list admits nothing, for every operation.
    let empty = Scope::user_sources("u1", vec![]);
    assert_eq!(store.count(empty.clone()).await.unwrap(), 0);
    assert_eq!(store.delete(empty.clone()).await.unwrap(), 0);
    let found =
        store.search(search(vec![1.0, 0.0, 0.0, 0.0], "text e1", empty, 5, RetrievalMode::Hybrid)).await.unwrap();
    assert!(found.dense.is_empty() && found.sparse.is_empty());

    assert_eq!(store.delete(Scope::user_sources("u1", vec!["elsewhere".into()])).await.unwrap(), 0);
    assert_eq!(store.delete(Scope::whole_user("u1")).await.unwrap(), 25);
    assert_eq!(store.count(Scope::whole_user("u1")).await.unwrap(), 0);
    assert_eq!(store.count(Scope::whole_user("u2")).await.unwrap(), 1, "other users untouched");

    let grant = |user: &str, source: &str, version| ConsentGrant {
        user_id: user.into(),
        source_id: source.into(),
        purpose: Purpose::ChatAssistant,
        state: ConsentState::Granted,
        version,
        created_at: 1,
        updated_at: 1,
    };
    store.put_consent(grant("u1", "a", 1)).await.unwrap();
    store.put_consent(grant("u1", "a", 2)).await.unwrap();
    store.put_consent(grant("u1", "b", 1)).await.unwrap();
    store.put_consent(grant("u2", "a", 1)).await.unwrap();
    let mut mine = store.consents(vec!["u1".into()]).await.unwrap();
    mine.sort_by(|a, b| a.source_id.cmp(&b.source_id));
    assert_eq!(mine.len(), 2, "one entry per (user, source, purpose)");
    assert_eq!(mine[0].version, 2);
    assert_eq!(store.consents(vec!["u1".into(), "u2".into()]).await.unwrap().len(), 3);

    for at in [30, 10, 20] {
        store
            .append_access(AccessRecord {
                access_id: uuid::Uuid::new_v4().to_string(),
                user_id: "u1".into(),
                caller: "orchestrator".into(),
                purpose: Purpose::ChatAssistant,
                at,
                events: vec![AccessedEvent { source_id: "a".into(), event_id: "e1".into(), consent_version: 2 }],
            })
            .await
            .unwrap();
    }
    let log = store.access_log("u1".into(), 10).await.unwrap();
    assert_eq!(log.iter().map(|r| r.at).collect::<Vec<_>>(), [30, 20, 10], "most recent first");
    assert_eq!(store.delete_access("u1".into()).await.unwrap(), 3);
    assert!(store.access_log("u1".into(), 10).await.unwrap().is_empty());
    assert_eq!(store.delete_consents("u1".into()).await.unwrap(), 2);
    assert_eq!(store.consents(vec!["u2".into()]).await.unwrap().len(), 1);
    store.close();
}

/// The sparse list is Qdrant's BM25 with IDF: a rare exact word ranks its
/// event first whatever the dense vectors say; stopword-only queries have no
/// sparse list; the family filter and exact search work.
#[tokio::test]
async fn sparse_bm25_list_and_family_filter() {
    let dir = tempfile::tempdir().unwrap();
    let store = EdgeStore::open(&options(dir.path(), 4)).unwrap();
    let mut points: Vec<StoredPoint> = (0..20)
        .map(|i| {
            let mut p = point("u1", &format!("e{i}"), vec![1.0, 0.0, 0.0, 0.0]);
            p.record.text = format!("Viewed running shoes model {i} at Acme");
            p.record.event.event_name = "ViewContent".into();
            p
        })
        .collect();
    let mut rare = point("u1", "rare", vec![0.0, 1.0, 0.0, 0.0]);
    rare.record.text = "Purchased Kestrel Ridge boots at Acme".into();
    points.push(rare);
    store.upsert(points).await.unwrap();

    let query = |text: &str, mode| search(vec![1.0, 0.0, 0.0, 0.0], text, Scope::whole_user("u1"), 5, mode);
    let found = store.search(query("kestrel", RetrievalMode::Sparse)).await.unwrap();
    assert!(found.dense.is_empty());
    assert_eq!(found.sparse.len(), 1, "only the event containing the word matches");
    assert_eq!(found.sparse[0].record.event.event_id, "rare");
    assert_eq!(found.sparse[0].vector, vec![0.0, 1.0, 0.0, 0.0]);

    let found = store.search(query("Kestrel running shoes", RetrievalMode::Hybrid)).await.unwrap();
    assert_eq!(found.dense.len(), 5);
    assert_ne!(found.dense[0].record.event.event_id, "rare", "dense alone prefers the shoes");
    assert_eq!(found.sparse[0].record.event.event_id, "rare", "IDF: the rare word outweighs common ones");

    assert!(store.search(query("the and of", RetrievalMode::Sparse)).await.unwrap().sparse.is_empty());

    let mut views = Scope::whole_user("u1");
    views.event_families = vec!["purchase".into()];
    let exact = SearchRequest { exact: true, ..search(vec![1.0, 0.0, 0.0, 0.0], "x", views, 50, RetrievalMode::Dense) };
    let found = store.search(exact).await.unwrap();
    assert_eq!(found.dense.len(), 1);
    assert_eq!(found.dense[0].record.event.event_id, "rare");
    store.close();
}
