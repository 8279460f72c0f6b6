//! User-filtered search on the Qdrant Edge store at growing sizes: the
//! dense list, and dense + BM25 (hybrid), for one person among many.
//! Random unit vectors; 200 events per person, so the person's share stays
//! fixed while the store grows. Sizes from `BENCH_STORE_SIZES` (default
//! `10000,100000`; add 1000000 for the full run: building it takes minutes).
//!
//! `cargo bench --profile dev --bench store`

use context_engine::domain::{point_id, ActivityEvent, EventRecord, RetrievalMode, Scope};
use context_engine::store::{EdgeOptions, EdgeStore, EventStore, SearchRequest, StoredPoint};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use rand::{Rng, SeedableRng};

const DIM: usize = 384;
const PER_USER: usize = 200;

fn unit(rng: &mut impl Rng) -> Vec<f32> {
    let v: Vec<f32> = (0..DIM).map(|_| rng.random::<f32>() - 0.5).collect();
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.into_iter().map(|x| x / n).collect()
}

fn point(rng: &mut impl Rng, i: usize) -> StoredPoint {
    const ITEMS: &[&str] = &["running shoes", "headphones", "espresso machine", "yoga mat", "hotel in Lisbon"];
    let user = format!("user-{}", i / PER_USER);
    let id = format!("e{i}");
    let event = ActivityEvent {
        event_id: id.clone(),
        user_id: user,
        source_id: "shop".into(),
        event_name: "Purchase".into(),
        event_time: 1_700_000_000 + i as i64,
        action_source: "website".into(),
        ..Default::default()
    };
    let text = format!("Purchased {} number {} at Example Shop", ITEMS[i % ITEMS.len()], i % 97);
    StoredPoint {
        id: point_id("shop", &id),
        vector: unit(rng),
        record: EventRecord {
            event,
            text,
            ingested_at: 1_700_000_000,
            content_hash: String::new(),
            injection_score: None,
            injection_head: None,
        },
    }
}

fn bench(c: &mut Criterion) {
    let sizes: Vec<usize> = std::env::var("BENCH_STORE_SIZES")
        .unwrap_or_else(|_| "10000,100000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let mut group = c.benchmark_group("store_search");
    group.sample_size(50);
    for size in sizes {
        let dir = tempfile::tempdir().unwrap();
        let options = EdgeOptions {
            data_dir: dir.path().to_path_buf(),
            dimension: DIM,
            model_id: "bench".into(),
            bm25_avg_len: 8.0,
        };
        let store = EdgeStore::open(&options).unwrap();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let started = std::time::Instant::now();
        for chunk in (0..size).collect::<Vec<_>>().chunks(2000) {
            let points = chunk.iter().map(|&i| point(&mut rng, i)).collect();
            let t = std::time::Instant::now();
            rt.block_on(store.upsert(points)).unwrap();
            if std::env::var_os("BENCH_VERBOSE").is_some() {
                eprintln!("upsert of points {}..: {:.0} ms", chunk[0], t.elapsed().as_secs_f64() * 1e3);
            }
        }
        eprintln!("store of {size} points built in {:.1} s", started.elapsed().as_secs_f64());
        let users = size / PER_USER;
        let query = unit(&mut rng);
        for (name, mode) in [("dense", RetrievalMode::Dense), ("hybrid", RetrievalMode::Hybrid)] {
            let mut n = 0usize;
            group.bench_function(BenchmarkId::new(name, size), |b| {
                b.iter(|| {
                    n += 1;
                    let request = SearchRequest {
                        vector: query.clone(),
                        text: "running shoes".into(),
                        scope: Scope::whole_user(format!("user-{}", (n * 7919) % users)),
                        limit: 64,
                        mode,
                        exact: false,
                    };
                    let found = rt.block_on(store.search(request)).unwrap();
                    assert_eq!(found.dense.len(), 64);
                })
            });
        }
        store.close();
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
