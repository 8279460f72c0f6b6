//! BEIR runner: indexes a corpus as one synthetic user's documents (cached
//! per dataset, model and corpus), runs every query through
//! `Engine::get_context` in each retrieval mode with the ranking extras
//! (recency, collapse, diversity) off, scores the top 100, and measures ANN
//! recall against exact search on the same vectors.

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context};
use context_engine::domain::{ConsentState, Purpose, RetrievalMode, Scope};
use context_engine::engine::ContextRequest;
use context_engine::rank::RankingOverrides;
use context_engine::render::InjectionPolicy;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::beir::{self, BeirDataset};
use crate::engine::{commit, machine, now_rfc3339, progress, EngineArgs, EvalEngine};
use crate::metrics::{Aggregate, Latency, MAX_K};
use crate::report::{Report, RunResult};

const USER: &str = "beir";
/// Time the documents are stored at (recency is off; any valid time works).
const DOC_TIME: i64 = 1_700_000_000;
/// A budget no top-100 of long documents reaches: BEIR scores ranking only.
const NO_BUDGET: usize = 4_000_000;
/// Documents per embed/store call while indexing.
const INDEX_BATCH: usize = 32;

#[derive(Debug, Clone)]
pub struct BeirArgs {
    pub dataset: PathBuf,
    pub split: String,
    pub modes: Vec<RetrievalMode>,
    /// Only the first N judged queries.
    pub max_queries: Option<usize>,
    /// A smaller corpus: every document judged for the chosen queries, then
    /// others in file order up to this many.
    pub max_docs: Option<usize>,
    pub cache_dir: PathBuf,
    pub ann_recall: bool,
}

/// The documents to index: all of them, or the judged ones plus fillers.
fn select(dataset: &mut BeirDataset, args: &BeirArgs) {
    if let Some(n) = args.max_queries {
        dataset.queries.truncate(n);
    }
    let Some(max_docs) = args.max_docs else { return };
    let judged: HashSet<&String> =
        dataset.queries.iter().filter_map(|q| dataset.qrels.get(&q.id)).flat_map(|r| r.keys()).collect();
    let mut kept = Vec::with_capacity(max_docs);
    let mut fillers = max_docs.saturating_sub(judged.len());
    for doc in &dataset.docs {
        if judged.contains(&doc.id) {
            kept.push(doc.clone());
        } else if fillers > 0 {
            fillers -= 1;
            kept.push(doc.clone());
        }
    }
    dataset.docs = kept;
}

/// Mean whitespace-token count: BM25's `avg_len` for this corpus.
fn avg_len(dataset: &BeirDataset) -> f64 {
    let total: usize = dataset.docs.iter().map(|d| d.embed_text().split_whitespace().count()).sum();
    let mean = total as f64 / dataset.docs.len().max(1) as f64;
    (mean * 10.0).round() / 10.0
}

/// Bump when what is indexed per document changes (text, event shape).
const CACHE_FORMAT: &str = "beir-cache-v1";

/// A cache folder per dataset, model, forward pass and exact document set
/// (ids and the texts embedded), so a changed corpus, device, kernel or
/// precision never reuses vectors another forward pass computed.
fn cache_dir(args: &BeirArgs, dataset: &BeirDataset, model: &str, forward: &str) -> PathBuf {
    let mut hash = Sha256::new();
    hash.update(CACHE_FORMAT.as_bytes());
    hash.update(forward.as_bytes());
    hash.update([0]);
    for doc in &dataset.docs {
        hash.update(doc.id.as_bytes());
        hash.update([0]);
        hash.update(doc.embed_text().as_bytes());
        hash.update([0]);
    }
    let fingerprint = hex::encode(&hash.finalize()[..6]);
    let model = model.replace(|c: char| !c.is_ascii_alphanumeric(), "-");
    args.cache_dir.join(format!("{}-{}-{}docs-{fingerprint}", dataset.name, model, dataset.docs.len()))
}

/// What computes the vectors, for the cache key: device, kernels (BLAS or
/// packed, and which CPU path) and precision, as the loaded model reports
/// them, without the thread count (threads do not change the vectors).
async fn forward_pass(engine_args: &EngineArgs) -> anyhow::Result<String> {
    let options = engine_args.model.clone();
    let embedder = tokio::task::spawn_blocking(move || context_engine::app::load_embedder_with(&options)).await??;
    let backend = embedder.backend();
    let forward = match backend.rsplit_once(", ") {
        Some((head, tail)) if tail.ends_with(" threads") => head.to_string(),
        _ => backend,
    };
    Ok(format!("{forward} / {:?}", engine_args.model.cpu_precision))
}

fn request(query: &str, mode: RetrievalMode, exact: bool) -> ContextRequest {
    ContextRequest {
        user_id: USER.into(),
        purpose: Some(Purpose::ChatAssistant),
        caller: "context-eval".into(),
        query: query.into(),
        max_snippets: MAX_K,
        max_tokens: NO_BUDGET,
        ranking: RankingOverrides {
            mode: Some(mode),
            recency: Some(false),
            collapse: Some(false),
            diversity: Some(0.0),
            injection_policy: Some(InjectionPolicy::Neutralize),
            ..Default::default()
        },
        exact_search: exact,
        ..Default::default()
    }
}

pub async fn run(args: &BeirArgs, engine_args: &EngineArgs) -> anyhow::Result<Report> {
    let mut dataset = beir::load(&args.dataset, &args.split)?;
    select(&mut dataset, args);
    if dataset.queries.is_empty() || dataset.docs.is_empty() {
        bail!("{}: no queries or documents selected", args.dataset.display());
    }
    let source = format!("beir-{}", dataset.name.replace(|c: char| !c.is_ascii_alphanumeric(), "-"));
    let avg_len = avg_len(&dataset);
    let model = "all-MiniLM-L6-v2";
    let forward = forward_pass(engine_args).await?;
    let dir = cache_dir(args, &dataset, model, &forward);
    eprintln!(
        "{}: {} documents (bm25 avg_len {avg_len}), {} queries; store {}",
        dataset.name,
        dataset.docs.len(),
        dataset.queries.len(),
        dir.display()
    );
    let eval = EvalEngine::open(engine_args, &dir, avg_len, NO_BUDGET).await?;
    let engine = eval.engine().clone();
    engine.set_consent(USER, &source, Some(Purpose::ChatAssistant), Some(ConsentState::Granted), DOC_TIME).await?;

    // Index what the cache does not hold yet.
    let scope = Scope::user_sources(USER, vec![source.clone()]);
    let mut stored = HashSet::new();
    let mut from = None;
    loop {
        let page = eval.app.store.scroll(scope.clone(), from, 1000).await?;
        stored.extend(page.records.into_iter().map(|(_, r)| r.event.event_id));
        match page.next {
            Some(next) => from = Some(next),
            None => break,
        }
    }
    let missing: Vec<_> = dataset.docs.iter().filter(|d| !stored.contains(&d.id)).collect();
    let started = Instant::now();
    if !missing.is_empty() {
        let bar = progress(missing.len(), "indexing");
        for chunk in missing.chunks(INDEX_BATCH) {
            let docs = chunk.iter().map(|d| (d.id.clone(), d.embed_text())).collect();
            engine.index_documents(USER, &source, docs, DOC_TIME).await.context("indexing documents")?;
            bar.inc(chunk.len() as u64);
        }
        bar.finish_and_clear();
        engine.flush().await?;
    }
    let index_secs = started.elapsed().as_secs_f64();
    let count = eval.app.store.count(scope).await?;
    if count != dataset.docs.len() {
        bail!("store holds {count} documents, expected {}", dataset.docs.len());
    }

    let mut report = Report::new("beir", &dataset.name);
    report.model = model.into();
    report.commit = commit();
    report.date = now_rfc3339();
    report.machine = machine();
    report.config = json!({
        "split": args.split,
        "docs": dataset.docs.len(),
        "queries": dataset.queries.len(),
        "max_queries": args.max_queries,
        "max_docs": args.max_docs,
        "bm25_avg_len": avg_len,
        "candidates_per_list": MAX_K,
        "fusion": format!("{:?}", engine.ranking().fusion),
        "ranking": "recency, collapse and diversity off; top 100 scored",
        "indexed_now": missing.len(),
        "index_seconds": (index_secs * 10.0).round() / 10.0,
    });
    for mode in &args.modes {
        let bar = progress(dataset.queries.len(), mode.as_str());
        let (mut aggregate, mut latency) = (Aggregate::new(), Vec::new());
        let (mut ann_found, mut ann_total) = (0usize, 0usize);
        for query in &dataset.queries {
            let started = Instant::now();
            let answer = engine.get_context(request(&query.text, *mode, false), DOC_TIME).await?;
            latency.push(started.elapsed().as_secs_f64() * 1e3);
            let mut ranked: Vec<String> = answer.snippets.into_iter().map(|s| s.provenance.event_id).collect();
            if args.ann_recall && *mode == RetrievalMode::Dense {
                let exact = engine.get_context(request(&query.text, *mode, true), DOC_TIME).await?;
                let approx: HashSet<&String> = ranked.iter().collect();
                ann_total += exact.snippets.len();
                ann_found += exact.snippets.iter().filter(|s| approx.contains(&s.provenance.event_id)).count();
            }
            beir::drop_identical_ids(&query.id, &mut ranked);
            let empty = Default::default();
            aggregate.add(&ranked, dataset.qrels.get(&query.id).unwrap_or(&empty));
            bar.inc(1);
        }
        bar.finish_and_clear();
        let mut metrics = aggregate.metrics();
        if let Some(l) = Latency::of(&latency) {
            metrics.extend(l.metrics());
        }
        metrics.insert("queries".into(), dataset.queries.len() as f64);
        metrics.insert("docs".into(), dataset.docs.len() as f64);
        if ann_total > 0 {
            metrics.insert("ann_recall@100".into(), ann_found as f64 / ann_total as f64);
        }
        eprintln!(
            "{:>7}: nDCG@10 {:.4}  recall@100 {:.4}  p50 {:.1} ms",
            mode.as_str(),
            aggregate.ndcg_at(10),
            aggregate.recall_at(100),
            Latency::of(&latency).map_or(0.0, |l| l.p50)
        );
        report.runs.push(RunResult {
            mode: mode.as_str().into(),
            metrics,
            curves: aggregate.curves(),
            latency_ms: latency,
        });
    }
    if dataset.name == "scifact" && args.max_docs.is_none() && args.max_queries.is_none() {
        report.notes.push(
            "Published references on SciFact (test): all-MiniLM-L6-v2 nDCG@10 = 0.645 (MTEB); \
             BM25 0.665 (BEIR, Anserini multifield)."
                .into(),
        );
    }
    report.notes.push(
        "Latency is wall time of Engine::get_context in process (embed + search + rank + render of the top 100), \
         not over gRPC."
            .into(),
    );
    eval.close().await?;
    Ok(report)
}
