//! The Qdrant Edge store directly: user scoping, counts, reopen checks.

use context_engine::domain::{point_id, ActivityEvent, EventRecord};
use context_engine::store::{
    EdgeOptions, EdgeStore, SearchRequest, StoreError, StoreFilter, StoredPoint, VectorStore,
};

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
        record: EventRecord {
            event,
            text: format!("text {id}"),
            ingested_at: 1_700_000_001,
            content_hash: "h".into(),
        },
    }
}

fn options(dir: &std::path::Path, dimension: usize) -> EdgeOptions {
    EdgeOptions {
        data_dir: dir.to_path_buf(),
        dimension,
        model_id: "test-model".into(),
    }
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
    assert_eq!(store.count(StoreFilter::for_user("u1")).await.unwrap(), 2);
    assert_eq!(store.count(StoreFilter::for_user("u2")).await.unwrap(), 1);
    assert_eq!(store.count(StoreFilter::for_user("u3")).await.unwrap(), 0);
    let hits = store
        .search(SearchRequest {
            vector: vec![1.0, 0.0, 0.0, 0.0],
            filter: StoreFilter::for_user("u1"),
            limit: 10,
        })
        .await
        .unwrap();
    assert_eq!(hits.len(), 2);
    assert_eq!(hits[0].record.event.event_id, "a");
    assert!((hits[0].score - 1.0).abs() < 1e-5);
    assert!(hits.iter().all(|h| h.record.event.user_id == "u1"));
    store.close();
    assert!(matches!(
        store.count(StoreFilter::for_user("u1")).await,
        Err(StoreError::Closed)
    ));
}

#[tokio::test]
async fn reopening_with_another_model_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = EdgeStore::open(&options(dir.path(), 4)).unwrap();
    store
        .upsert(vec![point("u1", "a", vec![1.0, 0.0, 0.0, 0.0])])
        .await
        .unwrap();
    store.close();
    let err = EdgeStore::open(&options(dir.path(), 8)).unwrap_err();
    assert!(matches!(err, StoreError::Incompatible { .. }), "{err}");
    let store = EdgeStore::open(&options(dir.path(), 4)).unwrap();
    assert_eq!(store.count(StoreFilter::for_user("u1")).await.unwrap(), 1);
    store.close();
}
