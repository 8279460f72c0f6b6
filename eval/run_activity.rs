//! Activity benchmark runner: generates synthetic people (seeded), applies
//! their consent grants, ingests their events through `Engine::ingest`,
//! applies the revocations (which purge), then asks every labelled chat turn
//! in each ranking configuration and scores the answers against the
//! generator's ground truth: nDCG@10 / Recall@10 over allowed items, leak
//! rate, injection pass-through, budget adherence and latency.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context};
use context_engine::domain::RetrievalMode;
use context_engine::engine::{ContextAnswer, ContextRequest, Engine, EventOutcome, RejectReason};
use context_engine::rank::{CountTokens, RankingOverrides};
use context_engine::render::InjectionPolicy;
use context_engine::tokens::HfTokenCounter;
use serde_json::json;

use crate::engine::{commit, machine, now_rfc3339, progress, EngineArgs, EvalEngine};
use crate::generator::{self, Dataset, GenConfig, LabeledQuery, GENERATOR_VERSION};
use crate::metrics::{Aggregate, Latency};
use crate::report::{Report, RunResult};
use context_engine::verbalize::verbalize;

/// Snippets asked for per chat turn, and the token budget.
const SNIPPETS: usize = 10;
const BUDGET: usize = 512;
/// Events per ingest call (the engine's limit is 1,000).
const INGEST_BATCH: usize = 500;

#[derive(Debug, Clone)]
pub struct ActivityArgs {
    pub config: GenConfig,
    /// Where the store lives; a fresh temporary folder when `None`.
    pub data_dir: Option<PathBuf>,
}

/// A ranking configuration under test.
#[derive(Debug, Clone)]
pub struct Mode {
    pub name: &'static str,
    pub ranking: RankingOverrides,
}

/// Plain top-k, the way memory layers answer (cosine or fused, nothing else),
/// then the full pipeline and one ablation per step.
pub fn modes() -> Vec<Mode> {
    let plain = |mode| RankingOverrides {
        mode: Some(mode),
        recency: Some(false),
        collapse: Some(false),
        diversity: Some(0.0),
        ..Default::default()
    };
    vec![
        Mode { name: "dense-topk", ranking: plain(RetrievalMode::Dense) },
        Mode { name: "hybrid-topk", ranking: plain(RetrievalMode::Hybrid) },
        Mode { name: "ranked", ranking: RankingOverrides::default() },
        Mode {
            name: "ranked-dense",
            ranking: RankingOverrides { mode: Some(RetrievalMode::Dense), ..Default::default() },
        },
        Mode { name: "ranked-no-recency", ranking: RankingOverrides { recency: Some(false), ..Default::default() } },
        Mode { name: "ranked-no-collapse", ranking: RankingOverrides { collapse: Some(false), ..Default::default() } },
        Mode { name: "ranked-no-diversity", ranking: RankingOverrides { diversity: Some(0.0), ..Default::default() } },
    ]
}

/// What ingest did, checked against the generator's truth.
#[derive(Debug, Default)]
struct IngestTally {
    accepted: usize,
    rejected_ldu: usize,
    rejected_other: usize,
}

async fn load(engine: &Engine, dataset: &Dataset, now: i64) -> anyhow::Result<IngestTally> {
    let mut tally = IngestTally::default();
    let bar = progress(dataset.users.len(), "ingesting");
    for user in &dataset.users {
        for op in &user.grants {
            engine.set_consent(&op.user_id, &op.source_id, Some(op.purpose), Some(op.state), now).await?;
        }
        for batch in user.events.chunks(INGEST_BATCH) {
            let outcomes = engine.ingest(batch.to_vec(), now).await.context("ingest")?;
            for (event, outcome) in batch.iter().zip(outcomes) {
                match outcome {
                    EventOutcome::Accepted { .. } => tally.accepted += 1,
                    EventOutcome::Rejected { reason: RejectReason::LimitedDataUse, .. } => tally.rejected_ldu += 1,
                    EventOutcome::Rejected { reason, field, message } => {
                        tally.rejected_other += 1;
                        let truth = dataset.truth_of(&event.source_id, &event.event_id);
                        // Events of sources never granted are expected to bounce.
                        if reason != RejectReason::NoConsent {
                            bail!("event {} rejected: {reason:?} {field}: {message} ({truth:?})", event.event_id);
                        }
                    }
                }
            }
        }
        for op in &user.revocations {
            engine.set_consent(&op.user_id, &op.source_id, Some(op.purpose), Some(op.state), now).await?;
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(tally)
}

/// Letters and digits only, lowercased: payloads are compared after the
/// engine's cleaning, which drops invisible characters.
fn fold(text: &str) -> String {
    text.chars().filter(|c| c.is_alphanumeric()).flat_map(char::to_lowercase).collect()
}

/// Events whose canonical sentence (what a snippet shows) carries an
/// injection payload. Payloads in the page URL or in a property the
/// templates do not quote never reach the rendered block.
fn payload_in_sentence(dataset: &Dataset) -> HashSet<(String, String)> {
    let prefixes: Vec<String> = generator::PAYLOADS
        .iter()
        .map(|p| fold(p).chars().take(12).collect())
        .filter(|p: &String| p.len() >= 6)
        .collect();
    let mut carried = HashSet::new();
    for event in dataset.users.iter().flat_map(|u| &u.events) {
        if !dataset.truth_of(&event.source_id, &event.event_id).is_some_and(|t| t.injected) {
            continue;
        }
        let sentence = fold(&verbalize(event));
        if prefixes.iter().any(|p| sentence.contains(p.as_str())) {
            carried.insert((event.source_id.clone(), event.event_id.clone()));
        }
    }
    carried
}

/// Per-mode counters beyond the ranking metrics.
#[derive(Debug, Default)]
struct Safety {
    snippets: usize,
    leaks: usize,
    injected_rendered: usize,
    over_budget: usize,
    answers: usize,
}

fn request(query: &LabeledQuery, ranking: RankingOverrides) -> ContextRequest {
    ContextRequest {
        user_id: query.user_id.clone(),
        purpose: Some(query.purpose),
        caller: "context-eval".into(),
        query: query.text.clone(),
        max_snippets: SNIPPETS,
        max_tokens: BUDGET,
        ranking,
        ..Default::default()
    }
}

/// Item keys of the answer in order (one per snippet), counting leaks and
/// injected snippets on the way.
fn score_answer(
    dataset: &Dataset,
    carried: &HashSet<(String, String)>,
    query: &LabeledQuery,
    answer: &ContextAnswer,
    safety: &mut Safety,
) -> Vec<String> {
    let mut items = Vec::with_capacity(answer.snippets.len());
    for s in &answer.snippets {
        safety.snippets += 1;
        let p = &s.provenance;
        let events = std::iter::once(&p.event_id).chain(&s.collapsed_event_ids);
        let mut leaked = false;
        for event_id in events {
            match dataset.truth_of(&p.source_id, event_id) {
                Some(t) if t.user_id == query.user_id && t.allowed_for.contains(&query.purpose) && !t.ldu => {}
                _ => leaked = true,
            }
        }
        if leaked {
            safety.leaks += 1;
        }
        let truth = dataset.truth_of(&p.source_id, &p.event_id);
        if carried.contains(&(p.source_id.clone(), p.event_id.clone())) {
            safety.injected_rendered += 1;
        }
        items.push(truth.map_or_else(|| format!("?{}", p.event_id), |t| t.item_key.clone()));
    }
    items
}

pub async fn run(args: &ActivityArgs, engine_args: &EngineArgs) -> anyhow::Result<Report> {
    let config = &args.config;
    let started = Instant::now();
    let dataset = generator::generate(config);
    let stats = dataset.stats();
    eprintln!(
        "generated {} people, {} events, {} questions in {:.1} s",
        stats.users,
        stats.events,
        stats.queries,
        started.elapsed().as_secs_f64()
    );
    let temp;
    let dir = match &args.data_dir {
        Some(dir) => dir.clone(),
        None => {
            temp = tempfile::tempdir()?;
            temp.path().to_path_buf()
        }
    };
    let eval = EvalEngine::open(engine_args, &dir, context_engine::store::DEFAULT_BM25_AVG_LEN, BUDGET).await?;
    let engine = eval.engine().clone();
    let started = Instant::now();
    // A kept store that already holds exactly this dataset is reused.
    let marker = dir.join("context-eval-activity.json");
    let fingerprint = serde_json::to_string(&json!({"generator": GENERATOR_VERSION, "config": config}))?;
    let reusable = std::fs::read_to_string(&marker).is_ok_and(|m| m == fingerprint);
    if args.data_dir.is_some() && !reusable && marker.exists() {
        bail!(
            "{} holds another activity dataset ({}); remove it or choose another --data-dir",
            dir.display(),
            marker.display()
        );
    }
    let tally = if reusable {
        eprintln!("reusing the ingested store in {}", dir.display());
        IngestTally { accepted: stats.events - stats.ldu_events, rejected_ldu: stats.ldu_events, rejected_other: 0 }
    } else {
        let tally = load(&engine, &dataset, config.now).await?;
        if args.data_dir.is_some() {
            std::fs::write(&marker, &fingerprint)?;
        }
        tally
    };
    let ingest_secs = started.elapsed().as_secs_f64();
    eprintln!(
        "ingested {} events ({} LDU refused, {} without consent) in {ingest_secs:.0} s",
        tally.accepted, tally.rejected_ldu, tally.rejected_other
    );
    if tally.rejected_ldu != stats.ldu_events {
        bail!("{} LDU events were refused, the generator made {}", tally.rejected_ldu, stats.ldu_events);
    }
    let counter = HfTokenCounter::load(&engine_args.model.model_dir.join("tokenizer.json"))?;
    let queries: Vec<&LabeledQuery> = dataset.users.iter().flat_map(|u| &u.queries).collect();
    let carried = payload_in_sentence(&dataset);

    let mut report = Report::new("activity", GENERATOR_VERSION);
    report.model = "all-MiniLM-L6-v2".into();
    report.commit = commit();
    report.date = now_rfc3339();
    report.machine = machine();
    report.config = json!({
        "generator": GENERATOR_VERSION,
        "generator_config": config,
        "dataset": stats,
        "snippets_per_answer": SNIPPETS,
        "token_budget": BUDGET,
        "ingest_seconds": (ingest_secs * 10.0).round() / 10.0,
        "server_defaults": format!("{:?}", engine.ranking()),
    });
    let mut by_kind: BTreeMap<&str, BTreeMap<String, f64>> = BTreeMap::new();
    for mode in modes() {
        let bar = progress(queries.len(), mode.name);
        let (mut aggregate, mut latency, mut safety) = (Aggregate::new(), Vec::new(), Safety::default());
        let mut kinds: HashMap<&str, Aggregate> = HashMap::new();
        for query in &queries {
            let started = Instant::now();
            let answer = engine.get_context(request(query, mode.ranking.clone()), config.now).await?;
            latency.push(started.elapsed().as_secs_f64() * 1e3);
            safety.answers += 1;
            if counter.count(&answer.rendered_context) > BUDGET || answer.stats.tokens_used > BUDGET {
                safety.over_budget += 1;
            }
            let items = score_answer(&dataset, &carried, query, &answer, &mut safety);
            aggregate.add(&items, &query.relevant);
            kinds.entry(query.kind).or_default().add(&items, &query.relevant);
            bar.inc(1);
        }
        bar.finish_and_clear();
        let mut metrics = aggregate.metrics();
        metrics.retain(|k, _| k.starts_with("ndcg@") || k.starts_with("recall@") || k.starts_with("mrr@"));
        if let Some(l) = Latency::of(&latency) {
            metrics.extend(l.metrics());
        }
        let rate = |n: usize, d: usize| if d == 0 { 0.0 } else { n as f64 / d as f64 };
        metrics.insert("queries".into(), queries.len() as f64);
        metrics.insert("leak_rate".into(), rate(safety.leaks, safety.snippets));
        metrics.insert("leaked_snippets".into(), safety.leaks as f64);
        metrics.insert("budget_adherence".into(), 1.0 - rate(safety.over_budget, safety.answers));
        metrics.insert("injected_snippets_rendered".into(), safety.injected_rendered as f64);
        eprintln!(
            "{:>20}: nDCG@10 {:.4}  recall@10 {:.4}  leaks {}  injected rendered {}  p50 {:.1} ms",
            mode.name,
            aggregate.ndcg_at(10),
            aggregate.recall_at(10),
            safety.leaks,
            safety.injected_rendered,
            Latency::of(&latency).map_or(0.0, |l| l.p50)
        );
        if mode.name == "ranked" || mode.name == "dense-topk" {
            for (kind, agg) in &kinds {
                by_kind.entry(kind).or_default().insert(mode.name.to_string(), agg.ndcg_at(10));
            }
        }
        report.runs.push(RunResult {
            mode: mode.name.into(),
            metrics,
            curves: aggregate.curves(),
            latency_ms: latency,
        });
    }

    // Injection screening measured on what retrieval surfaces: with the
    // neutralise policy every retrieved snippet is kept and flagged or not.
    // Pass-through counts payloads in the shown sentence that were not
    // flagged; payloads only in the URL or an unquoted property are flagged
    // or not, but never shown.
    let (mut caught, mut missed, mut false_flags, mut clean) = (0usize, 0usize, 0usize, 0usize);
    let (mut unshown_flagged, mut unshown_unflagged) = (0usize, 0usize);
    let mut seen = HashSet::new();
    for query in &queries {
        let ranking = RankingOverrides { injection_policy: Some(InjectionPolicy::Neutralize), ..Default::default() };
        let answer = engine.get_context(request(query, ranking), config.now).await?;
        for s in &answer.snippets {
            if !seen.insert((s.provenance.source_id.clone(), s.provenance.event_id.clone())) {
                continue;
            }
            let key = (s.provenance.source_id.clone(), s.provenance.event_id.clone());
            let injected = dataset.truth_of(&key.0, &key.1).is_some_and(|t| t.injected);
            let shown = carried.contains(&key);
            match (injected, shown, s.flags.is_empty()) {
                (true, true, false) => caught += 1,
                (true, true, true) => {
                    missed += 1;
                    eprintln!("injection: a planted payload passed unflagged: {:?}", s.text);
                }
                (true, false, false) => unshown_flagged += 1,
                (true, false, true) => unshown_unflagged += 1,
                (false, _, false) => false_flags += 1,
                (false, _, true) => clean += 1,
            }
        }
    }
    let rate = |n: usize, d: usize| if d == 0 { 0.0 } else { n as f64 / d as f64 };
    if let Some(ranked) = report.runs.iter_mut().find(|r| r.mode == "ranked") {
        ranked.metrics.insert("injection_pass_through_rate".into(), rate(missed, caught + missed));
        ranked.metrics.insert("injection_false_positive_rate".into(), rate(false_flags, false_flags + clean));
        ranked.metrics.insert("injected_snippets_surfaced".into(), (caught + missed) as f64);
        ranked.metrics.insert("injection_unshown_flagged".into(), unshown_flagged as f64);
    }
    report.notes.push(format!(
        "Injection screening over {} distinct snippets surfaced by the ranked mode (neutralise policy): payload in \
         the shown sentence: {caught} caught, {missed} missed (passed through); payload only in the URL or an \
         unquoted property (never shown): {unshown_flagged} flagged anyway, {unshown_unflagged} not flagged; \
         clean snippets: {false_flags} flagged, {clean} passed. Under the default drop policy the caught ones \
         never reach rendered_context.",
        caught + missed + unshown_flagged + unshown_unflagged + false_flags + clean
    ));
    let kinds: Vec<String> = generator::QUERY_KINDS
        .iter()
        .filter_map(|kind| by_kind.get(kind).map(|m| (kind, m)))
        .map(|(kind, m)| {
            format!(
                "{kind}: {:.3} → {:.3}",
                m.get("dense-topk").copied().unwrap_or(0.0),
                m.get("ranked").copied().unwrap_or(0.0)
            )
        })
        .collect();
    report.notes.push(format!("nDCG@10 by question kind, dense-topk → ranked: {}", kinds.join("; ")));
    report.notes.push(
        "Relevance is graded per item (repeats of one item share it); a later snippet about an item already \
         shown gains nothing, so duplicates cost context slots as they do in a prompt."
            .into(),
    );
    crate::run_feed::run(&eval, &dataset, config.now, &mut report).await?;
    eval.close().await?;
    Ok(report)
}
