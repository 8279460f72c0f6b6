//! `context-eval`: offline retrieval evaluation through the same `Engine`
//! the service runs, in process.
//!
//! * `beir`: any dataset in BEIR layout (SciFact in `../shared`), dense,
//!   sparse and hybrid retrieval, nDCG/Recall/MRR/MAP and ANN recall;
//! * `activity`: the seeded consent-aware activity benchmark (ranking
//!   quality, leak rate, injection pass-through, budget adherence, latency);
//! * `injection`: injection pass-through and false positives on a corpus
//!   (`eval/injection/test.jsonl`, frozen), per kind, language and field;
//! * `compare`: two reports side by side.
//!
//! Every run writes `<kind>-<dataset>-<date>.{json,md}` and SVG plots under
//! `--out` (default `eval/results/`).

mod beir;
mod engine;
mod generator;
mod idgen;
mod injection;
mod injection_train;
mod metrics;
mod mlp;
mod plot;
mod report;
mod run_activity;
mod run_beir;
mod run_feed;
#[cfg(test)]
mod smoke;

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use context_engine::app::HeadChoice;
use context_engine::config::ModelArgs;
use context_engine::domain::RetrievalMode;
use context_engine::rank::{Fusion, FusionKind, RankingOptions};

use engine::EngineArgs;

#[derive(Debug, Parser)]
#[command(name = "context-eval", version, about = "Offline retrieval evaluation of the context engine")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Retrieval quality on a BEIR-layout dataset.
    Beir(BeirCmd),
    /// The consent-aware activity benchmark.
    Activity(ActivityCmd),
    /// Injection pass-through and false positives on a labelled corpus,
    /// through the engine (ingest, then context with the neutralise policy).
    Injection(InjectionCmd),
    /// Trains the learned injection head on the development corpus.
    InjectionTrain(TrainCmd),
    /// Two reports side by side (b − a).
    Compare {
        a: PathBuf,
        b: PathBuf,
        /// Write the comparison here instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Debug, Clone, Args)]
struct Common {
    /// The embedding model, with the server's flags (folder, device, CPU
    /// kernels, precision, threads).
    #[command(flatten)]
    model: ModelArgs,
    /// Where reports and plots go.
    #[arg(long, default_value = "eval/results")]
    out: PathBuf,
    /// Hybrid fusion of the engine under test (default: the service's, convex).
    #[arg(long, value_enum)]
    fusion: Option<FusionKind>,
    /// Dense weight for `--fusion convex`.
    #[arg(long, default_value_t = 0.7)]
    dense_weight: f32,
    /// Recency floor of the engine under test.
    #[arg(long)]
    recency_floor: Option<f32>,
    /// MMR diversity default of the engine under test.
    #[arg(long)]
    diversity: Option<f32>,
    /// The learned injection head: `shipped`, `none` (rules only) or a head file.
    #[arg(long, default_value = "shipped")]
    injection_head: String,
}

#[derive(Debug, Args)]
struct BeirCmd {
    #[command(flatten)]
    common: Common,
    /// Dataset folder (corpus.jsonl, queries.jsonl, qrels/<split>.tsv).
    #[arg(long, default_value = "../shared/datasets/scifact")]
    dataset: PathBuf,
    #[arg(long, default_value = "test")]
    split: String,
    #[arg(long, value_enum, value_delimiter = ',', default_value = "dense,sparse,hybrid")]
    modes: Vec<RetrievalMode>,
    /// Only the first N judged queries.
    #[arg(long)]
    max_queries: Option<usize>,
    /// Index only the judged documents of the chosen queries plus others up
    /// to this many (a quick run; not comparable with published figures).
    #[arg(long)]
    max_docs: Option<usize>,
    /// Indexed corpora are kept here and reused by later runs.
    #[arg(long, default_value = "eval/cache")]
    cache_dir: PathBuf,
    /// Skip the exact-search pass that measures ANN recall.
    #[arg(long)]
    no_ann_recall: bool,
}

#[derive(Debug, Args)]
struct ActivityCmd {
    #[command(flatten)]
    common: Common,
    #[arg(long, default_value_t = 100)]
    users: usize,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    #[arg(long, default_value_t = 6)]
    queries_per_user: usize,
    /// Keep the store here instead of a temporary folder.
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct InjectionCmd {
    #[command(flatten)]
    common: Common,
    /// The labelled corpus (JSON lines: id, label, kind, lang, text).
    #[arg(long, default_value = "eval/injection/test.jsonl")]
    corpus: PathBuf,
    /// Every n-th entry of each label (CI runs a subset).
    #[arg(long, default_value_t = 1)]
    every: usize,
    /// The run's headline is appended here (`--history ''`: not recorded).
    #[arg(long, default_value = "eval/injection/history.jsonl")]
    history: String,
    /// The event around each planted text: the protocol's fixed template
    /// per field, or varied business, price, currency, neighbours and event
    /// type per (entry, field) (the same variation as training's).
    #[arg(long, value_enum, default_value = "fixed")]
    template: injection::Template,
    /// Also write every (entry, field) outcome to this file, one JSON line
    /// each (refused for the frozen test corpus, the opaque-id probe and
    /// any corpus sharing an id or a text with them).
    #[arg(long)]
    per_entry: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct TrainCmd {
    #[command(flatten)]
    common: Common,
    /// Development corpora, comma-separated (never the frozen test corpus).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "eval/injection/dev.jsonl,eval/injection/dev2.jsonl,eval/injection/dev4.jsonl,eval/injection/dev5.jsonl,eval/injection/dev6.jsonl,eval/injection/dev7.jsonl,eval/injection/dev8.jsonl,eval/injection/dev3.jsonl,eval/injection/dev9.jsonl,eval/injection/dev10.jsonl,eval/injection/dev11.jsonl,eval/injection/dev12.jsonl,eval/injection/dev13.jsonl,eval/injection/dev14.jsonl,eval/injection/dev15.jsonl,eval/injection/dev16.jsonl,eval/injection/dev17.jsonl,eval/injection/dev18.jsonl,eval/injection/dev19.jsonl,eval/injection/dev20.jsonl,eval/injection/dev21.jsonl,eval/injection/dev22.jsonl"
    )]
    dev: Vec<PathBuf>,
    /// Development corpora trained on in every fold that never validate or
    /// calibrate (authors who wrote with a head as their oracle: their
    /// look-alikes were kept because a head flagged them, so their
    /// out-of-author rate says nothing about an unseen author).
    /// Head v15's plan: dev23 to dev27 (v14:
    /// `eval/injection/dev23.jsonl,eval/injection/dev24.jsonl`;
    /// `--train-only ''`: none, as heads up to v13).
    // Strings, not paths: clap refuses an empty path.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "eval/injection/dev23.jsonl,eval/injection/dev24.jsonl,eval/injection/dev25.jsonl,eval/injection/dev26.jsonl,eval/injection/dev27.jsonl"
    )]
    train_only: Vec<String>,
    /// Where the head file goes.
    #[arg(long, default_value = "crates/screen/data/injection_head.json")]
    head_out: PathBuf,
    /// Hidden units (0: logistic regression).
    #[arg(long, default_value_t = 32)]
    hidden: usize,
    #[arg(long, default_value_t = 600)]
    epochs: usize,
    /// Seed of the layers' initial weights (heads up to v5 were trained
    /// through candle with unseeded weights).
    #[arg(long, default_value_t = 1)]
    init_seed: u64,
    /// The event around each planted training text (heads up to v6: fixed).
    #[arg(long, value_enum, default_value = "varied")]
    template: injection::Template,
    /// Largest validation false-positive rate on look-alikes the threshold
    /// may cost (half of it on clean activity sentences); the shipped head
    /// was calibrated at 0.008 (this default was 0.005 before, so a run with
    /// defaults did not reproduce it).
    #[arg(long, default_value_t = 0.008)]
    max_fp: f64,
    /// Share of the development authors whose own look-alikes must each
    /// keep within `--author-fp` (rounded up; 0: no per-author bound, heads
    /// up to v9). By author, each author is scored by a head that never saw
    /// them: the bound asks the threshold to hold for most unseen authors,
    /// not only for their pooled average. 1.0 (every author) since head
    /// v13; 0.9 for heads v10-v12.
    #[arg(long, default_value_t = 1.0)]
    author_share: f64,
    /// The per-author false-positive bound (the 1 % target).
    #[arg(long, default_value_t = 0.01)]
    author_fp: f64,
    /// Clean activity sentences from the generator.
    #[arg(long, default_value_t = 4000)]
    clean: usize,
    /// Generated innocent field values full of opaque identifiers (UUIDs,
    /// hashes, serials, tracking numbers; `eval/idgen.rs`), trained and
    /// validated as clean sentences (heads up to v7: 0).
    #[arg(long, default_value_t = 3000)]
    id_negatives: usize,
    /// Generator seed for the clean sentences (not the benchmark's 42).
    #[arg(long, default_value_t = 1001)]
    seed: u64,
    /// The jailguard crate's neural_binary_200k.json, to compare against.
    #[arg(long)]
    jailguard: Option<PathBuf>,
    /// Sentence embeddings are cached here between runs.
    #[arg(long, default_value = "eval/cache")]
    cache_dir: PathBuf,
    /// Also write the samples and their embeddings to this directory.
    #[arg(long)]
    dump: Option<PathBuf>,
    /// Validate on the entries of this corpus (a cross-author estimate)
    /// instead of a 20 % split of all entries; it is added to the corpora.
    #[arg(long)]
    holdout: Option<PathBuf>,
    /// Shortest character n-gram of the n-gram model.
    #[arg(long, default_value_t = 2)]
    ngram_min: usize,
    /// Longest character n-gram.
    #[arg(long, default_value_t = 5)]
    ngram_max: usize,
    /// Hash buckets (a power of two; 262,144 since head v12, 65,536 before).
    #[arg(long, default_value_t = 262144)]
    ngram_buckets: usize,
    #[arg(long, default_value_t = 300)]
    ngram_epochs: usize,
    /// L2 penalty of the n-gram weights (chosen on the cross-author split
    /// dev.jsonl → dev2.jsonl: 1e-4, 1e-5, 3e-6, 1e-6, 1e-7, 0).
    #[arg(long, default_value_t = 1e-7)]
    ngram_l2: f32,
    /// Also the n-grams of the folded text (homoglyphs, leetspeak, spacing
    /// and invisible characters undone).
    #[arg(long)]
    ngram_folded: bool,
    /// Leave the rule signals out of the n-gram model's features.
    #[arg(long)]
    no_rule_features: bool,
    /// Validate by author instead of on `--holdout`: each corpus is scored by
    /// a head trained on the others, the thresholds are calibrated on all of
    /// those scores, and the shipped head is trained on every corpus.
    #[arg(long)]
    by_author: bool,
    /// Rule signals that flag only through the head's probability (empty:
    /// every rule flags on its own). Head v5: every rule signal (by-author
    /// validation at 0.8 % false positives: 92.2 % detected; with v4's three
    /// soft rules and its 0.1 cap, 85.5 % in an earlier run of the same
    /// training; with every rule hard 0.8 % cannot be reached; README).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "override_phrase,role_marker,encoded_payload,prompt_url,delimiter_forgery,hidden_markup,obfuscation,tool_call"
    )]
    soft_signals: Vec<String>,
    /// Highest probability the soft threshold may be: a soft rule finding is
    /// overruled only where the model, having weighed that finding, still
    /// finds the text less likely than this to carry instructions. The rule,
    /// set before head v5 was trained: the highest cap whose head still
    /// catches at least 54 of the activity benchmark's 55 planted payloads
    /// (v3/v4: 0.1; with 0.86 then, 8 of 55 were missed). Head v5: uncapped
    /// (1.0) it missed 2, at 0.5 it misses 1.
    #[arg(long, default_value_t = 0.5)]
    max_soft_threshold: f32,
}

fn unit<T: PartialOrd + std::fmt::Display + From<f32>>(flag: &str, v: T) -> anyhow::Result<T> {
    anyhow::ensure!(v >= T::from(0.0) && v <= T::from(1.0), "--{flag}: expected a number in [0, 1], got {v}");
    Ok(v)
}

fn engine_args(c: &Common) -> anyhow::Result<EngineArgs> {
    unit("dense-weight", c.dense_weight)?;
    let mut ranking = RankingOptions::default();
    match c.fusion {
        Some(FusionKind::Rrf) => ranking.fusion = Fusion::Rrf { k: 60.0 },
        Some(FusionKind::Convex) => ranking.fusion = Fusion::Convex { dense_weight: c.dense_weight },
        None => {}
    }
    if let Some(floor) = c.recency_floor {
        ranking.recency_floor = unit("recency-floor", floor)?;
    }
    if let Some(diversity) = c.diversity {
        ranking.diversity = unit("diversity", diversity)?;
    }
    let injection_head = match c.injection_head.as_str() {
        "shipped" => HeadChoice::Shipped,
        "none" => HeadChoice::None,
        path => HeadChoice::File(PathBuf::from(path)),
    };
    Ok(EngineArgs { model: c.model.options(), ranking, injection_head })
}

/// Writes the report, its Markdown and its plots; prints where.
fn publish(report: &report::Report, out: &Path) -> anyhow::Result<()> {
    let (json, md) = report::write(report, out)?;
    let stem = report.file_stem();
    let curves = out.join(format!("{stem}-curves.svg"));
    let latency = out.join(format!("{stem}-latency.svg"));
    plot::plot_curves(report, &curves)?;
    plot::plot_latency(report, &latency)?;
    println!("{}", report::markdown(report));
    for path in [json, md, curves, latency] {
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,qdrant_edge=error")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    match cli.command {
        Command::Beir(cmd) => {
            let args = run_beir::BeirArgs {
                dataset: cmd.dataset,
                split: cmd.split,
                modes: cmd.modes,
                max_queries: cmd.max_queries,
                max_docs: cmd.max_docs,
                cache_dir: cmd.cache_dir,
                ann_recall: !cmd.no_ann_recall,
            };
            let report = runtime.block_on(run_beir::run(&args, &engine_args(&cmd.common)?))?;
            publish(&report, &cmd.common.out)
        }
        Command::Activity(cmd) => {
            let args = run_activity::ActivityArgs {
                config: generator::GenConfig {
                    seed: cmd.seed,
                    users: cmd.users,
                    queries_per_user: cmd.queries_per_user,
                    ..Default::default()
                },
                data_dir: cmd.data_dir,
            };
            let report = runtime.block_on(run_activity::run(&args, &engine_args(&cmd.common)?))?;
            publish(&report, &cmd.common.out)
        }
        Command::Injection(cmd) => {
            let engine = engine_args(&cmd.common)?;
            let args = injection::InjectionArgs {
                corpus: cmd.corpus,
                every: cmd.every,
                detector: String::new(),
                out: cmd.common.out.clone(),
                history: (!cmd.history.is_empty()).then(|| PathBuf::from(&cmd.history)),
                template: cmd.template,
                per_entry: cmd.per_entry,
            };
            let report = runtime.block_on(injection::run(&args, &engine))?;
            injection::publish(&report, &args.out, args.history.as_deref())
        }
        Command::InjectionTrain(cmd) => {
            let args = injection_train::TrainArgs {
                dev: cmd.dev,
                train_only: train_only(&cmd.train_only),
                out: cmd.head_out,
                hidden: cmd.hidden,
                epochs: cmd.epochs,
                init_seed: cmd.init_seed,
                template: cmd.template,
                max_fp: cmd.max_fp,
                author_fp: unit("author-fp", cmd.author_fp)?,
                author_share: unit("author-share", cmd.author_share)?,
                clean: cmd.clean,
                id_negatives: cmd.id_negatives,
                jailguard: cmd.jailguard,
                seed: cmd.seed,
                cache_dir: cmd.cache_dir,
                dump: cmd.dump,
                holdout: cmd.holdout,
                ngram_min: cmd.ngram_min,
                ngram_max: cmd.ngram_max,
                ngram_buckets: cmd.ngram_buckets,
                ngram_epochs: cmd.ngram_epochs,
                ngram_l2: cmd.ngram_l2,
                rule_features: !cmd.no_rule_features,
                by_author: cmd.by_author,
                ngram_folded: cmd.ngram_folded,
                soft_signals: cmd.soft_signals.into_iter().filter(|s| !s.is_empty()).collect(),
                max_soft_threshold: unit("max-soft-threshold", cmd.max_soft_threshold)?,
            };
            runtime.block_on(injection_train::run(&args, &engine_args(&cmd.common)?))
        }
        Command::Compare { a, b, out } => {
            let text = report::compare(&report::read(&a)?, &report::read(&b)?);
            match out {
                Some(path) => std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display())),
                None => {
                    println!("{text}");
                    Ok(())
                }
            }
        }
    }
}

/// `--train-only`'s corpora, empty values dropped (`--train-only ''`: none).
fn train_only(values: &[String]) -> Vec<PathBuf> {
    values.iter().filter(|v| !v.is_empty()).map(PathBuf::from).collect()
}

#[cfg(test)]
mod cli_tests {
    use super::*;

    fn train_only_of(args: &[&str]) -> Vec<PathBuf> {
        let cli = Cli::try_parse_from([&["context-eval", "injection-train"], args].concat()).unwrap();
        let Command::InjectionTrain(cmd) = cli.command else { panic!("not injection-train") };
        train_only(&cmd.train_only)
    }

    #[test]
    fn train_only_defaults_to_the_oracle_authors_and_can_be_emptied() {
        let defaults: Vec<PathBuf> = (23..=27).map(|n| PathBuf::from(format!("eval/injection/dev{n}.jsonl"))).collect();
        assert_eq!(train_only_of(&[]), defaults);
        assert!(train_only_of(&["--train-only", ""]).is_empty());
        assert_eq!(train_only_of(&["--train-only", "a.jsonl"]), [PathBuf::from("a.jsonl")]);
        assert_eq!(
            train_only_of(&["--train-only", "eval/injection/dev23.jsonl,eval/injection/dev24.jsonl"]),
            defaults[..2]
        );
    }
}
