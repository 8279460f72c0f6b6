//! Ranking (fusion, recency, collapse, MMR), then packing into the token
//! budget with the real tokenizer, which renders and screens each snippet:
//! the CPU work of one GetContext after the search, at the engine's default
//! 64 + 64 candidates.
//!
//! `cargo bench --profile dev --bench rank`

use context_engine::domain::{ActivityEvent, EventRecord};
use context_engine::rank::{pack, rank, Candidate, RankingOptions};
use context_engine::render::InjectionPolicy;
use context_engine::tokens::HfTokenCounter;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use rand::{Rng, SeedableRng};

fn unit(rng: &mut impl Rng, dim: usize) -> Vec<f32> {
    let v: Vec<f32> = (0..dim).map(|_| rng.random::<f32>() - 0.5).collect();
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.into_iter().map(|x| x / n).collect()
}

fn candidates(n: usize, now: i64) -> Vec<Candidate> {
    const ITEMS: &[&str] =
        &["Trail running shoes", "Wireless headphones", "Espresso machine", "Yoga mat", "Galaxy Raiders"];
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
    (0..n)
        .map(|i| {
            let item = ITEMS[i % ITEMS.len()];
            let event = ActivityEvent {
                event_id: format!("e{i}"),
                user_id: "ann".into(),
                source_id: format!("shop{}", i % 3),
                source_name: "Example Shop".into(),
                event_name: if i % 2 == 0 { "Purchase".into() } else { "ViewContent".into() },
                event_time: now - (i as i64) * 3_600 * 7,
                action_source: "website".into(),
                ..Default::default()
            };
            let text = format!("Purchased {item} (size {}) for {}.99 EUR at Example Shop", 38 + i % 8, 20 + i);
            Candidate {
                point_id: format!("p{i}"),
                record: EventRecord {
                    event,
                    text,
                    ingested_at: now,
                    content_hash: String::new(),
                    injection_score: None,
                    injection_head: None,
                },
                vector: unit(&mut rng, 384),
                dense_rank: Some(i),
                sparse_rank: (i % 3 == 0).then_some(i / 3),
                sparse_score: (i % 3 == 0).then_some(8.0 - i as f32 * 0.05),
                consent_version: 1,
            }
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let dir = std::env::var("CONTEXT_ENGINE_MODEL_DIR")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../models/all-MiniLM-L6-v2").into());
    let counter = HfTokenCounter::load(&std::path::Path::new(&dir).join("tokenizer.json")).expect("tokenizer");
    let now = 1_800_000_000;
    let options = RankingOptions::default();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
    let query = unit(&mut rng, 384);
    let mut group = c.benchmark_group("rank_pack");
    for n in [32usize, 128] {
        let input = candidates(n, now);
        group.bench_with_input(BenchmarkId::new("rank", n), &input, |b, input| {
            b.iter(|| rank(&query, input.clone(), &options, now))
        });
        let ranking = rank(&query, input.clone(), &options, now);
        group.bench_with_input(BenchmarkId::new("pack_render_512tok", n), &ranking, |b, ranking| {
            b.iter(|| pack(ranking, 8, 512, InjectionPolicy::Drop, &counter))
        });
    }
    group.finish();

    // The learned injection signal's cost per ingested event: the shipped
    // head on one sentence vector, against a jailguard-shaped head
    // (384→256→128→1, random weights) and the rule screen of one sentence.
    let mut group = c.benchmark_group("injection_signal");
    let shipped = context_engine::render::learned::default_head();
    let vector = unit(&mut rng, 384);
    let sentence = "Purchased Trail Runner 3 (size 42) for 129.00 EUR at Acme Outdoors";
    group.bench_function("shipped_head_with_ngrams", |b| {
        b.iter(|| shipped.probability(std::hint::black_box(&vector), std::hint::black_box(sentence)))
    });
    group.bench_function("shipped_head_layers_only", |b| {
        b.iter(|| shipped.embedding_logit(std::hint::black_box(&vector)))
    });
    if let Some(ngrams) = shipped.ngrams() {
        group.bench_function("shipped_ngrams_only", |b| b.iter(|| ngrams.logit(std::hint::black_box(sentence))));
    }
    // A candidate head file (`CONTEXT_ENGINE_BENCH_INJECTION_HEAD`, as
    // `context-eval injection-train --head-out` writes it), timed in the same
    // run as the shipped one so the two compare on the same noisy host.
    if let Ok(path) = std::env::var("CONTEXT_ENGINE_BENCH_INJECTION_HEAD") {
        let text = std::fs::read_to_string(&path).expect("CONTEXT_ENGINE_BENCH_INJECTION_HEAD: readable head file");
        let candidate = context_engine::render::InjectionHead::from_json("candidate", &text).expect("candidate head");
        group.bench_function("candidate_head_with_ngrams", |b| {
            b.iter(|| candidate.probability(std::hint::black_box(&vector), std::hint::black_box(sentence)))
        });
        if let Some(ngrams) = candidate.ngrams() {
            group.bench_function("candidate_ngrams_only", |b| b.iter(|| ngrams.logit(std::hint::black_box(sentence))));
        }
    }
    let dense = |outputs: usize, inputs: usize, activation, rng: &mut rand_chacha::ChaCha8Rng| {
        context_engine::render::learned::Dense {
            weights: (0..outputs).map(|_| (0..inputs).map(|_| rng.random::<f32>() - 0.5).collect()).collect(),
            bias: vec![0.0; outputs],
            activation,
        }
    };
    use context_engine::render::learned::Activation::{Relu, Sigmoid};
    let jailguard_shaped = context_engine::render::InjectionHead::from_layers(
        "jailguard-shaped",
        &[dense(256, 384, Relu, &mut rng), dense(128, 256, Relu, &mut rng), dense(1, 128, Sigmoid, &mut rng)],
        0.5,
    )
    .expect("head");
    group.bench_function("jailguard_shaped_384x256x128", |b| {
        b.iter(|| jailguard_shaped.probability(std::hint::black_box(&vector), ""))
    });
    group.bench_function("rules_one_sentence", |b| {
        b.iter(|| context_engine::render::screen(std::hint::black_box(sentence)))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
