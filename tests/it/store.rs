//! The Qdrant Edge store directly: user scoping, counts, reopen checks.

use context_engine::domain::{point_id, ActivityEvent, EventRecord, RetrievalMode, Scope};
use context_engine::store::{
    AccessLog, ConsentLedger, EdgeOptions, EdgeStore, EventStore, SearchRequest, StoreError, StoredPoint, VectorStore,
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
            injection_score: None,
            injection_head: None,
        },
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

/// A copy of the directory `from` as it is now, in a new temporary folder.
fn copy_dir(from: &std::path::Path) -> (tempfile::TempDir, std::path::PathBuf) {
    let copy = tempfile::tempdir().unwrap();
    let to = copy.path().join("d");
    let status = std::process::Command::new("cp").arg("-a").arg(from).arg(&to).status().unwrap();
    assert!(status.success());
    (copy, to)
}

/// What a crash leaves of a store: its handles are leaked (nothing flushed,
/// nothing dropped, its file locks held), and the files as they are now are
/// copied to a new directory, which the caller opens.
async fn crash(store: EdgeStore, dir: &std::path::Path) -> (tempfile::TempDir, std::path::PathBuf) {
    std::mem::forget(store);
    copy_dir(dir)
}

/// The crashed store `crashed` opened from a copy without `journal`: what
/// the shards alone kept.
fn shards_alone(crashed: &std::path::Path, journal: &str) -> (tempfile::TempDir, EdgeStore) {
    let (copy, dir) = copy_dir(crashed);
    std::fs::remove_file(dir.join(journal)).unwrap();
    let store = EdgeStore::open(&options(&dir, 4)).unwrap();
    (copy, store)
}

/// Access records are durable through the journal: a store that crashed
/// (never closed or flushed) still has every acknowledged record when
/// reopened, and the replay empties the journal. The shard alone, without
/// the journal, lost them.
#[tokio::test(flavor = "multi_thread")]
async fn access_records_survive_a_crash_through_the_journal() {
    let dir = tempfile::tempdir().unwrap();
    let store = EdgeStore::open(&options(dir.path(), 4)).unwrap();
    for at in 0..40 {
        store.append_access(crate::common::access_record(if at % 4 == 0 { "bo" } else { "al" }, at, 3)).await.unwrap();
    }
    assert!(std::fs::metadata(dir.path().join("access.journal")).unwrap().len() > 0, "the records wait in the journal");
    let (_keep, crashed) = crash(store, dir.path()).await;

    let (_bare, shard_only) = shards_alone(&crashed, "access.journal");
    let kept = shard_only.access_log("al".into(), 100).await.unwrap().len();
    shard_only.close();

    let store = EdgeStore::open(&options(&crashed, 4)).unwrap();
    let al = store.access_log("al".into(), 100).await.unwrap();
    assert_eq!(al.len(), 30);
    assert_eq!(al[0].at, 39, "most recent first");
    assert_eq!(al[0].events.len(), 3);
    assert_eq!(store.access_log("bo".into(), 100).await.unwrap().len(), 10);
    assert_eq!(std::fs::metadata(crashed.join("access.journal")).unwrap().len(), 0, "replayed and checkpointed");
    store.close();
    println!("access journal: all 40 records back after a simulated crash; the shard alone kept {kept} of al's 30");
    assert!(kept < 30, "the shard alone kept every record, so this test does not exercise the journal");
}

/// Erasure checkpoints first: no byte of the erased person's records stays
/// in the journal, and a crash right after erasure brings none of them
/// back; the other person's records stay.
#[tokio::test(flavor = "multi_thread")]
async fn erased_access_records_do_not_come_back_from_the_journal() {
    let dir = tempfile::tempdir().unwrap();
    let store = EdgeStore::open(&options(dir.path(), 4)).unwrap();
    for at in 0..10 {
        store.append_access(crate::common::access_record("erased-person", at, 2)).await.unwrap();
        store.append_access(crate::common::access_record("kept-person", at, 2)).await.unwrap();
    }
    assert_eq!(store.delete_access("erased-person".into()).await.unwrap(), 10);
    let bytes = std::fs::read(dir.path().join("access.journal")).unwrap();
    assert!(!bytes.windows(13).any(|w| w == b"erased-person"), "the journal holds no copy");
    store.append_access(crate::common::access_record("kept-person", 99, 2)).await.unwrap();
    let (_keep, crashed) = crash(store, dir.path()).await;

    let store = EdgeStore::open(&options(&crashed, 4)).unwrap();
    assert!(store.access_log("erased-person".into(), 100).await.unwrap().is_empty());
    assert_eq!(store.access_log("kept-person".into(), 100).await.unwrap().len(), 11);
    store.close();
}

/// The journal is checkpointed once it passes its size limit (4 MiB), in
/// the background, and the records stay readable throughout.
#[tokio::test(flavor = "multi_thread")]
async fn the_access_journal_is_checkpointed_when_it_grows() {
    let dir = tempfile::tempdir().unwrap();
    let store = EdgeStore::open(&options(dir.path(), 4)).unwrap();
    let journal = dir.path().join("access.journal");
    // ~90 KB per record: 80 records are ~7 MiB, well past the limit.
    for at in 0..80 {
        store.append_access(crate::common::access_record("heavy-reader", at, 1500)).await.unwrap();
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::fs::metadata(&journal).unwrap().len() >= 4 << 20 {
        assert!(std::time::Instant::now() < deadline, "no checkpoint within 30 s");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(store.access_log("heavy-reader".into(), 100).await.unwrap().len(), 80);
    store.close();
}

/// The disk space (allocated blocks: open segments are sparse files of
/// 32 MiB) and the closed segments' start indexes of a shard's WAL.
fn wal_files(shard: &std::path::Path) -> (u64, Vec<u64>) {
    use std::os::unix::fs::MetadataExt;
    let mut bytes = 0;
    let mut closed = Vec::new();
    for entry in std::fs::read_dir(shard.join("wal")).unwrap() {
        let entry = entry.unwrap();
        bytes += entry.metadata().unwrap().blocks() * 512;
        if let Some(start) = entry.file_name().to_str().unwrap().strip_prefix("closed-") {
            closed.push(start.parse().unwrap());
        }
    }
    (bytes, closed)
}

/// Qdrant Edge 0.7 never reads its WAL back nor truncates it; the store
/// trims it after flushes and at open. ~100 MB of access records (three WAL
/// segments' worth) leave at most one closed segment, and afterwards, across
/// a reopen, the store is whole: every record is there, and an update and a
/// delete still take effect (operation numbers continue from the kept
/// segment; restarted numbering would make Qdrant ignore both).
#[tokio::test(flavor = "multi_thread")]
async fn the_wal_is_trimmed_and_the_store_stays_whole() {
    let dir = tempfile::tempdir().unwrap();
    let store = EdgeStore::open(&options(dir.path(), 4)).unwrap();
    store.upsert(vec![point("u1", "kept", vec![1.0, 0.0, 0.0, 0.0])]).await.unwrap();
    for at in 0..1100 {
        store.append_access(crate::common::access_record("heavy-reader", at, 1500)).await.unwrap();
    }
    store.flush().await.unwrap();
    let (bytes, closed) = wal_files(&dir.path().join("access"));
    assert!(closed.len() <= 1, "closed WAL segments left: {closed:?}");
    assert!(closed.first().is_some_and(|&start| start > 0), "the WAL never rolled over twice: {closed:?}");
    // Without the trim: ~100 MB in three or more closed segments.
    assert!(bytes < 80 << 20, "the access WAL holds {bytes} bytes on disk");
    store.close();

    let store = EdgeStore::open(&options(dir.path(), 4)).unwrap();
    assert_eq!(store.access_log("heavy-reader".into(), 1000).await.unwrap().len(), 1000);
    let mut changed = point("u1", "kept", vec![0.0, 1.0, 0.0, 0.0]);
    changed.record.text = "changed after the trim".into();
    store.upsert(vec![changed]).await.unwrap();
    let page = store.scroll(Scope::whole_user("u1"), None, 10).await.unwrap();
    assert_eq!(page.records.len(), 1);
    assert_eq!(page.records[0].1.text, "changed after the trim", "an update after the trim is applied");
    assert_eq!(store.delete_access("heavy-reader".into()).await.unwrap(), 1100);
    store.close();

    let store = EdgeStore::open(&options(dir.path(), 4)).unwrap();
    assert!(store.access_log("heavy-reader".into(), 10).await.unwrap().is_empty(), "the delete after the trim held");
    assert_eq!(
        store.scroll(Scope::whole_user("u1"), None, 10).await.unwrap().records[0].1.text,
        "changed after the trim"
    );
    store.close();
    println!("WAL trim: access WAL {bytes} bytes after ~100 MB of records, closed segments {closed:?}");
}

/// Events are durable through their journal: after a crash every
/// acknowledged write is back, in the order it was made (a re-ingested
/// event keeps its new text), with both vectors (the BM25 one is made again
/// from the text), and what was deleted before the crash stays deleted.
/// The shard alone, without the journal, lost the writes.
#[tokio::test(flavor = "multi_thread")]
async fn events_survive_a_crash_through_the_journal_and_deletes_hold() {
    let dir = tempfile::tempdir().unwrap();
    let store = EdgeStore::open(&options(dir.path(), 4)).unwrap();
    for batch in 0..3 {
        let points = (0..10).map(|i| point("u1", &format!("e{}", batch * 10 + i), vec![0.0, 0.0, 1.0, 0.0])).collect();
        store.upsert(points).await.unwrap();
    }
    store.upsert((0..5).map(|i| point("u2", &format!("f{i}"), vec![0.0, 0.0, 1.0, 0.0])).collect()).await.unwrap();
    store.delete_ids(vec![point_id("src", "e1")]).await.unwrap();
    assert_eq!(store.delete(Scope::whole_user("u2")).await.unwrap(), 5);
    // After the deletes (which checkpoint), so these wait in the journal:
    // two versions of e0, the later must win.
    for version in ["first new text", "re-ingested with new text"] {
        let mut again = point("u1", "e0", vec![0.0, 0.0, 1.0, 0.0]);
        again.record.text = version.into();
        store.upsert(vec![again]).await.unwrap();
    }
    let mut kayak = point("u1", "e30", vec![0.0, 1.0, 0.0, 0.0]);
    kayak.record.text = "Bought a kayak paddle".into();
    store.upsert(vec![kayak]).await.unwrap();
    let (_keep, crashed) = crash(store, dir.path()).await;

    let (_bare, shard_only) = shards_alone(&crashed, "activity.journal");
    let kept = shard_only.count(Scope::whole_user("u1")).await.unwrap();
    let old = shard_only.scroll(Scope::whole_user("u1"), None, 100).await.unwrap();
    let old_e0 = old.records.iter().find(|(_, r)| r.event.event_id == "e0").map(|(_, r)| r.text.clone());
    shard_only.close();
    assert_eq!(old_e0.as_deref(), Some("text e0"), "the shard alone has the old text");

    let store = EdgeStore::open(&options(&crashed, 4)).unwrap();
    assert_eq!(store.count(Scope::whole_user("u1")).await.unwrap(), 30, "e0..e30 without e1");
    assert_eq!(store.count(Scope::whole_user("u2")).await.unwrap(), 0, "deleted before the crash, still deleted");
    let page = store.scroll(Scope::whole_user("u1"), None, 100).await.unwrap();
    let text = |id: &str| page.records.iter().find(|(_, r)| r.event.event_id == id).map(|(_, r)| r.text.clone());
    assert_eq!(text("e0").as_deref(), Some("re-ingested with new text"));
    assert_eq!(text("e1"), None);
    let found = store
        .search(search(vec![0.0, 1.0, 0.0, 0.0], "kayak", Scope::whole_user("u1"), 5, RetrievalMode::Hybrid))
        .await
        .unwrap();
    assert_eq!(found.dense[0].record.event.event_id, "e30", "dense vector replayed");
    assert_eq!(found.sparse.len(), 1, "BM25 vector made again from the text");
    assert_eq!(found.sparse[0].record.event.event_id, "e30");
    assert_eq!(std::fs::metadata(crashed.join("activity.journal")).unwrap().len(), 0, "replayed and checkpointed");
    store.close();
    println!("activity journal: 30 events back after a simulated crash; the shard alone kept {kept}");
    assert!(kept < 30, "the shard alone kept every event, so this test does not exercise the journal");
}
