//! Embedding throughput by batch size and text length, on the CPU forward
//! pass the server would pick (`CONTEXT_ENGINE_CPU_KERNELS` overrides:
//! auto | blas | portable | candle; `CONTEXT_ENGINE_EMBED_THREADS`, default 2).
//!
//! `cargo bench --profile dev --bench embed` (see benches/README.md).

use context_engine::embed::Embedder;
use context_engine::embed::{CpuKernels, CpuPrecision, DeviceChoice, ModelOptions};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

fn model() -> context_engine::embed::BertEmbedder {
    let dir = std::env::var("CONTEXT_ENGINE_MODEL_DIR")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../models/all-MiniLM-L6-v2").into());
    let mut options = ModelOptions::new(dir);
    options.device = DeviceChoice::Cpu;
    options.threads = std::env::var("CONTEXT_ENGINE_EMBED_THREADS").ok().and_then(|v| v.parse().ok()).unwrap_or(2);
    options.cpu_precision = match std::env::var("CONTEXT_ENGINE_CPU_PRECISION").as_deref() {
        Ok("f32") => CpuPrecision::F32,
        Ok("bf16x3") => CpuPrecision::Bf16x3,
        Ok("bf16") => CpuPrecision::Bf16,
        _ => CpuPrecision::Auto,
    };
    options.cpu_kernels = match std::env::var("CONTEXT_ENGINE_CPU_KERNELS").as_deref() {
        Ok("blas") => CpuKernels::Blas,
        Ok("portable") => CpuKernels::Portable,
        Ok("candle") => CpuKernels::Candle,
        _ => CpuKernels::Auto,
    };
    context_engine::app::load_embedder_with(&options).expect("model loads (run models/fetch.sh)")
}

/// A text of about `tokens` word-piece tokens (activity-like words).
fn text(tokens: usize, seed: usize) -> String {
    const WORDS: &[&str] = &[
        "purchased",
        "trail",
        "running",
        "shoes",
        "for",
        "89.90",
        "EUR",
        "at",
        "outdoor",
        "store",
        "viewed",
        "wireless",
        "headphones",
        "played",
        "galaxy",
        "raiders",
        "minutes",
        "level",
        "searched",
        "hotel",
        "lisbon",
    ];
    let mut out = String::new();
    let mut i = seed;
    // Most of these words are one token; leave room for [CLS] and [SEP].
    while out.split_whitespace().count() + 2 < tokens {
        out.push_str(WORDS[i % WORDS.len()]);
        out.push(' ');
        i = i * 7 + 3;
    }
    out
}

fn bench(c: &mut Criterion) {
    let mut model = model();
    eprintln!("embedding backend: {}", model.backend());
    let mut group = c.benchmark_group("embed");
    group.sample_size(10);
    for &tokens in &[16usize, 64, 256] {
        for &batch in &[1usize, 8, 32, 128] {
            if tokens == 256 && batch == 128 {
                continue;
            }
            let texts: Vec<String> = (0..batch).map(|i| text(tokens, i)).collect();
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            group.throughput(Throughput::Elements(batch as u64));
            group.bench_with_input(BenchmarkId::new(format!("{tokens}tok"), batch), &refs, |b, refs| {
                b.iter(|| model.embed(refs).unwrap())
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
