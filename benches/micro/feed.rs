//! Feed ranking's server time: `Engine::rank_items` for 200 candidate items
//! whose embeddings are cached (the steady state of a feed service that
//! re-ranks its catalogue), for one person with 500 permitted events, on the
//! real model and Qdrant Edge store, against the naive alternative in the
//! same run: one user-filtered dense search per item (200 searches).
//!
//! `cargo bench --profile dev --bench feed`

use std::sync::Arc;

use context_engine::app::{self, AppConfig};
use context_engine::domain::{ActivityEvent, ConsentState, CustomData, Purpose, RetrievalMode, Scope};
use context_engine::engine::feed::{FeedItem, RankItemsRequest};
use context_engine::store::SearchRequest;
use criterion::{criterion_group, criterion_main, Criterion};

const NOW: i64 = 1_790_000_000;
const WORDS: &[&str] = &[
    "trail",
    "running",
    "shoes",
    "espresso",
    "machine",
    "yoga",
    "mat",
    "hotel",
    "Lisbon",
    "flight",
    "Vienna",
    "guitar",
    "strings",
    "novel",
    "thriller",
    "garden",
    "hose",
    "winter",
    "jacket",
    "headphones",
    "board",
    "game",
];

fn text(i: usize) -> String {
    (0..4).map(|k| WORDS[(i * 7 + k * 13 + k * i) % WORDS.len()]).collect::<Vec<_>>().join(" ")
}

fn bench(c: &mut Criterion) {
    let model = std::env::var("CONTEXT_ENGINE_MODEL_DIR")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../models/all-MiniLM-L6-v2").into());
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let app = app::build(&AppConfig::new(&model, dir.path())).expect("engine");
    let engine = Arc::clone(&app.engine);
    rt.block_on(async {
        engine.set_consent("ann", "shop", Some(Purpose::FeedRanking), Some(ConsentState::Granted), NOW).await.unwrap();
        let events: Vec<ActivityEvent> = (0..500)
            .map(|i| ActivityEvent {
                event_id: format!("e{i}"),
                user_id: "ann".into(),
                source_id: "shop".into(),
                event_name: if i % 3 == 0 { "Purchase".into() } else { "ViewContent".into() },
                event_time: NOW - (i as i64) * 3_600 * 5,
                action_source: "website".into(),
                custom_data: CustomData { content_name: text(i), ..Default::default() },
                ..Default::default()
            })
            .collect();
        for chunk in events.chunks(250) {
            engine.ingest(chunk.to_vec(), NOW).await.unwrap();
        }
    });
    let items: Vec<FeedItem> =
        (0..200).map(|i| FeedItem { item_id: format!("i{i}"), text: text(i + 1000), ..Default::default() }).collect();
    let request = RankItemsRequest {
        user_id: "ann".into(),
        purpose: Some(Purpose::FeedRanking),
        caller: "bench".into(),
        items: items.clone(),
        ..Default::default()
    };
    // Warm the item cache.
    let warm = rt.block_on(engine.rank_items(request.clone(), NOW)).unwrap();
    assert_eq!(warm.stats.events_considered, 500);
    let vectors = rt.block_on(engine.embed(items.iter().map(|i| i.text.clone()).collect())).unwrap();
    let mut group = c.benchmark_group("feed");
    group.sample_size(30);
    group.bench_function("rank_items_200_cached_500_events", |b| {
        b.iter(|| rt.block_on(engine.rank_items(request.clone(), NOW)).unwrap())
    });
    let store = app.store.clone();
    group.bench_function("per_item_dense_search_200", |b| {
        b.iter(|| {
            rt.block_on(async {
                for v in &vectors {
                    let search = SearchRequest {
                        vector: v.clone(),
                        text: String::new(),
                        scope: Scope::user_sources("ann", vec!["shop".into()]),
                        limit: 3,
                        mode: RetrievalMode::Dense,
                        exact: false,
                    };
                    store.search(search).await.unwrap();
                }
            })
        })
    });
    group.finish();
    rt.block_on(engine.flush()).unwrap();
    app.store.close();
}

criterion_group!(benches, bench);
criterion_main!(benches);
