//! `context-bench`: in-process measurements that `benches/baselines/` sets
//! side by side with PyTorch and ONNX Runtime on the same texts.
//!
//! `context-bench embed --texts FILE --threads N --batch 32 --json` reads
//! `{"short": [...], "long": [...], "queries": [...]}` and prints one JSON
//! object with the same keys the Python baselines print.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use context_engine::config::ModelArgs;
use context_engine::embed::{cosine, Embedder};
use serde_json::json;

#[derive(Parser)]
#[command(name = "context-bench", about = "Embedding measurements for benches/baselines")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Short-text and 256-token throughput, single-query latency, parity.
    Embed(EmbedArgs),
}

#[derive(clap::Args)]
struct EmbedArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// JSON file with "short", "long" and "queries" text lists.
    #[arg(long)]
    texts: PathBuf,
    /// Threads for the model (the baselines get the same number).
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Texts per embedding call in the throughput passes.
    #[arg(long, default_value_t = 32)]
    batch: usize,
    /// Timed passes over each text set; the median is reported.
    #[arg(long, default_value_t = 3)]
    passes: usize,
    /// Single-query calls timed (after 20 warm-up calls).
    #[arg(long, default_value_t = 200)]
    queries: usize,
    /// sentence-transformers reference vectors for the parity figure
    /// (default: $CONTEXT_ENGINE_SHARED_DIR/reference/minilm_reference.jsonl).
    #[arg(long)]
    reference: Option<PathBuf>,
    /// Print only the JSON object.
    #[arg(long)]
    json: bool,
    /// Load the model folder without checking it against
    /// models/manifest.sha256: for the f16 copy of the weights that
    /// scripts/gpu-bundle.sh makes to fit the GPU machine's transfer limit.
    /// The parity figure still measures what was loaded.
    #[arg(long)]
    unverified_model: bool,
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Embed(args) => embed(args),
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn throughput(model: &mut dyn Embedder, texts: &[String], batch: usize, passes: usize) -> Result<f64> {
    let run = |model: &mut dyn Embedder| -> Result<f64> {
        let start = Instant::now();
        for chunk in texts.chunks(batch) {
            let refs: Vec<&str> = chunk.iter().map(String::as_str).collect();
            model.embed(&refs)?;
        }
        Ok(texts.len() as f64 / start.elapsed().as_secs_f64())
    };
    run(model)?; // warm-up pass
    (0..passes.max(1)).map(|_| run(model)).collect::<Result<Vec<_>>>().map(median)
}

fn reference_path(explicit: Option<PathBuf>) -> PathBuf {
    explicit.unwrap_or_else(|| {
        let shared =
            std::env::var_os("CONTEXT_ENGINE_SHARED_DIR").map(PathBuf::from).unwrap_or_else(|| "../shared".into());
        shared.join("reference/minilm_reference.jsonl")
    })
}

fn parity(model: &mut dyn Embedder, path: &PathBuf) -> Result<Option<f64>> {
    let Ok(text) = std::fs::read_to_string(path) else { return Ok(None) };
    let mut worst = f64::MAX;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let row: serde_json::Value = serde_json::from_str(line)?;
        let want: Vec<f32> = serde_json::from_value(row["embedding"].clone())?;
        let got = model.embed(&[row["text"].as_str().context("reference row without text")?])?.remove(0);
        worst = worst.min(f64::from(cosine(&got, &want)));
    }
    Ok(Some(worst))
}

fn embed(args: EmbedArgs) -> Result<()> {
    let texts: serde_json::Value = serde_json::from_slice(&std::fs::read(&args.texts)?)?;
    let list = |key: &str| -> Result<Vec<String>> {
        serde_json::from_value(texts[key].clone()).with_context(|| format!("{}: no list {key:?}", args.texts.display()))
    };
    let (short, long, queries) = (list("short")?, list("long")?, list("queries")?);
    let mut options = args.model.options();
    options.threads = args.threads;
    let mut model = if args.unverified_model {
        context_engine::embed::BertEmbedder::load(&options)?
    } else {
        context_engine::app::load_embedder_with(&options)?
    };
    let backend = model.backend();
    let tokens = |set: &[String]| -> Result<f64> {
        let n: usize = set.iter().map(|t| model.count_tokens(t)).sum::<Result<usize, _>>()?;
        Ok(n as f64 / set.len().max(1) as f64)
    };
    let (short_tokens, long_tokens) = (tokens(&short)?, tokens(&long)?);
    let short_rate = throughput(&mut model, &short, args.batch, args.passes)?;
    let long_rate = throughput(&mut model, &long, args.batch, args.passes)?;
    for q in queries.iter().cycle().take(20) {
        model.embed(&[q])?;
    }
    let mut times: Vec<f64> = queries
        .iter()
        .cycle()
        .take(args.queries)
        .map(|q| {
            let start = Instant::now();
            model.embed(&[q]).map(|_| start.elapsed().as_secs_f64() * 1e3)
        })
        .collect::<Result<_, _>>()?;
    times.sort_by(|a, b| a.total_cmp(b));
    let parity = parity(&mut model, &reference_path(args.reference))?;
    let out = json!({
        "backend": "context-engine",
        "engine_backend": backend,
        "device": format!("{:?}", args.model.device).to_lowercase(),
        "model_verified": !args.unverified_model,
        "threads": args.threads,
        "batch": args.batch,
        "short_texts_per_s": short_rate,
        "long_texts_per_s": long_rate,
        "query_p50_ms": percentile(&times, 0.50),
        "query_p99_ms": percentile(&times, 0.99),
        "short_mean_tokens": short_tokens,
        "long_mean_tokens": long_tokens,
        "parity_min_cosine": parity,
        "timing": format!("median of {} passes after one warm-up pass; {} single queries after 20 warm-up", args.passes, args.queries),
    });
    if args.json {
        println!("{out}");
    } else {
        println!("{}", serde_json::to_string_pretty(&out)?);
    }
    Ok(())
}
