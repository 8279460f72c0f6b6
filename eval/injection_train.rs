//! `context-eval injection-train`: trains the learned injection head on the
//! development corpus and writes it in `ce-injection-head/2` format.
//!
//! Training material, all of it written for this project or generated here:
//! every development entry planted into each of the seven rendered fields
//! (`injection::FIELDS`) and verbalised exactly as ingest does, plus clean
//! sentences of the synthetic activity generator (a seed other than the
//! activity benchmark's). The frozen test corpus is never read here.
//!
//! Validation, one of three: `--by-author` (every corpus is scored by a
//! head trained on the other corpora, the thresholds are calibrated on all
//! of those out-of-author scores together, and the shipped head is trained
//! on every corpus), `--holdout FILE` (that corpus validates, the others
//! train), or entries split 80/20 by a hash of their id (all seven sentences
//! of an entry fall on one side). The head is a 384→H→1 MLP (H = 0: logistic
//! regression) over the sentence embedding plus a linear model over hashed
//! character n-grams and the rule signals, each trained full-batch on a
//! class-balanced, numerically stable logistic loss; their logits add. The
//! thresholds are the ones that detect the most while keeping the validation
//! false-positive rate within `--max-fp` on the look-alikes and within half
//! of it on clean activity sentences. The same validation figures are
//! computed for the rules alone, the layers alone, the n-grams alone, and
//! (if given) the `jailguard` crate's head.

use std::collections::HashSet;
use std::path::PathBuf;

use anyhow::Context;
use context_engine::engine::Engine;
use context_engine::render::screen;
use context_engine::verbalize::verbalize;
use sha2::{Digest, Sha256};

use crate::engine::{commit, machine, now_rfc3339, progress, EngineArgs, EvalEngine};
use crate::generator;
use crate::injection::{self, Label, Template, FIELDS};
use crate::mlp;
use context_engine::render::learned::sigmoid;
use context_engine::render::ngrams::{self, TrainRow};
use context_engine::render::{InjectionHead, NgramModel, NgramSpec, Signal};

/// Adam step size of the n-gram model.
const NGRAM_LR: f32 = 0.05;

/// The n-gram model fitted by `ce_screen`'s loop (optimised there), with a
/// progress bar.
fn train_ngrams(
    spec: NgramSpec,
    rule_features: bool,
    train: &[TrainRow<'_>],
    epochs: usize,
    l2: f32,
) -> anyhow::Result<NgramModel> {
    let bar = progress(epochs, "n-grams");
    let model = ngrams::train(spec, rule_features, train, epochs, l2, NGRAM_LR, || bar.inc(1));
    bar.finish_and_clear();
    model.map_err(anyhow::Error::msg)
}

/// Kind of the generated opaque-id sentences (`--id-negatives`).
const ID_KIND: &str = "clean_id";

/// The `corpus` of a training-only corpus's sentences: in no fold's
/// held-out part, in no author's validation.
const TRAIN_ONLY: usize = usize::MAX;

pub struct TrainArgs {
    /// Development corpora (never the frozen test corpus).
    pub dev: Vec<PathBuf>,
    /// Development corpora that are trained on in every fold and never
    /// validate or calibrate: authors who wrote with a head as their oracle
    /// (`dev23` to `dev27`), whose look-alikes were kept because a head
    /// trained on the other authors flagged them, so their out-of-author
    /// rate estimates nothing about an unseen author.
    pub train_only: Vec<PathBuf>,
    pub out: PathBuf,
    pub hidden: usize,
    pub epochs: usize,
    pub init_seed: u64,
    pub template: Template,
    pub max_fp: f64,
    /// With `author_share`: the share of authors (rounded up) whose own
    /// look-alike false-positive rate must be within `author_fp`.
    pub author_fp: f64,
    pub author_share: f64,
    pub clean: usize,
    /// Generated innocent values with opaque identifiers (`idgen`), as clean
    /// sentences (heads up to v7: none).
    pub id_negatives: usize,
    pub jailguard: Option<PathBuf>,
    pub seed: u64,
    pub cache_dir: PathBuf,
    /// Writes the samples (`samples.jsonl`) and their embeddings
    /// (`vectors.f32`, little-endian, one row per sample) here, for analysis
    /// outside the tool.
    pub dump: Option<PathBuf>,
    /// Entries of this corpus are the validation set (a cross-author
    /// estimate), instead of the 20 % hash split.
    pub holdout: Option<PathBuf>,
    /// The character n-gram model (`ce_screen::ngrams`).
    pub ngram_min: usize,
    pub ngram_max: usize,
    pub ngram_buckets: usize,
    pub ngram_epochs: usize,
    pub ngram_l2: f32,
    /// The folded text's n-grams as well.
    pub ngram_folded: bool,
    /// Rule signals as features of the n-gram model.
    pub rule_features: bool,
    /// Validate by author: every corpus is scored by a head trained on the
    /// others, thresholds are calibrated on all those scores together, and
    /// the shipped head is trained on every corpus.
    pub by_author: bool,
    /// Rule signals that flag only through the head's probability.
    pub soft_signals: Vec<String>,
    /// Highest soft threshold calibration may choose.
    pub max_soft_threshold: f32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Group {
    Malicious,
    LookAlike,
    Clean,
}

struct Sample {
    /// The corpus entry (or `clean-N`) the sentence comes from.
    entry: String,
    kind: String,
    text: String,
    group: Group,
    validation: bool,
    /// Index of the corpus (author) it comes from; clean sentences are
    /// spread over the corpora by a hash of their id.
    corpus: usize,
}

/// A head trained on some of the sentences.
struct Fitted {
    layers: Vec<serde_json::Value>,
    /// The layers with the n-gram model (thresholds not yet calibrated).
    head: InjectionHead,
    ngrams: NgramModel,
    last: f32,
}

/// Sentence embeddings on disk: a header line with the model id, then
/// records of a text's 16-byte sha256 prefix and its vector (little-endian
/// f32). New sentences are appended.
struct VectorCache {
    model_id: String,
    dim: usize,
    vectors: std::collections::HashMap<[u8; 16], Vec<f32>>,
}

impl VectorCache {
    fn key(text: &str) -> [u8; 16] {
        Sha256::digest(text.as_bytes())[..16].try_into().expect("16 bytes")
    }

    fn load(path: &std::path::Path) -> anyhow::Result<Self> {
        let mut cache = Self { model_id: String::new(), dim: 0, vectors: Default::default() };
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(cache),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        let newline = bytes.iter().position(|&b| b == b'\n').with_context(|| {
            format!("vector cache {}: no header line (delete the file to rebuild it)", path.display())
        })?;
        let header: serde_json::Value = serde_json::from_slice(&bytes[..newline])?;
        cache.model_id = header["model_id"].as_str().context("vector cache: model_id")?.to_string();
        cache.dim = header["dim"].as_u64().context("vector cache: dim")? as usize;
        let record = 16 + 4 * cache.dim;
        let body = &bytes[newline + 1..];
        for r in body.chunks_exact(record) {
            let v = r[16..].chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().expect("4"))).collect();
            cache.vectors.insert(r[..16].try_into().expect("16"), v);
        }
        // A record cut short by an interrupted write is dropped, and the
        // file cut back to the last whole record before anything is
        // appended (or every later record would be read shifted).
        if body.len() % record != 0 {
            let whole = newline + 1 + body.len() / record * record;
            std::fs::OpenOptions::new().write(true).open(path)?.set_len(whole as u64)?;
        }
        Ok(cache)
    }

    fn add(
        &mut self,
        path: &std::path::Path,
        model_id: &str,
        texts: &[String],
        vectors: Vec<Vec<f32>>,
    ) -> anyhow::Result<()> {
        use std::io::Write;
        let dim = vectors.first().map_or(384, Vec::len);
        if self.model_id != model_id {
            anyhow::ensure!(self.vectors.is_empty(), "vector cache {} is of model {:?}", path.display(), self.model_id);
            let header = serde_json::json!({"model_id": model_id, "dim": dim});
            std::fs::write(path, format!("{header}\n"))?;
            self.model_id = model_id.to_string();
            self.dim = dim;
        }
        anyhow::ensure!(texts.len() == vectors.len(), "{} texts, {} vectors", texts.len(), vectors.len());
        let mut out = Vec::new();
        for (text, v) in texts.iter().zip(vectors) {
            anyhow::ensure!(v.len() == self.dim, "a vector of {} values in a cache of {}", v.len(), self.dim);
            let key = Self::key(text);
            out.extend_from_slice(&key);
            out.extend(v.iter().flat_map(|x| x.to_le_bytes()));
            self.vectors.insert(key, v);
        }
        std::fs::OpenOptions::new().append(true).open(path)?.write_all(&out)?;
        Ok(())
    }
}

/// Whether a corpus entry's sentences validate: never for a training-only
/// corpus; by author, every other; with a holdout corpus, its entries; else
/// the 20 % hash split.
fn validates(corpus: usize, id: &str, by_author: bool, held_out: Option<&HashSet<String>>) -> bool {
    corpus != TRAIN_ONLY
        && (by_author
            || match held_out {
                Some(h) => h.contains(id),
                None => in_validation(id),
            })
}

fn in_validation(id: &str) -> bool {
    Sha256::digest(id.as_bytes())[0] < 51 // 51/256 ≈ 20 %
}

async fn embed_all(engine: &Engine, texts: Vec<String>) -> anyhow::Result<Vec<Vec<f32>>> {
    let bar = progress(texts.len(), "embed");
    let mut out = Vec::with_capacity(texts.len());
    for chunk in texts.chunks(256) {
        out.extend(engine.embed(chunk.to_vec()).await?);
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    Ok(out)
}

/// Rates of one detector on the validation samples. The generated
/// opaque-id sentences (`clean_id`) are counted apart from the activity
/// generator's clean sentences, and each must keep within the clean bound:
/// pooled, the near-zero rate of the one would loosen the bound for the
/// other.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
struct Rates {
    detection: f64,
    fp_look_alike: f64,
    fp_clean: f64,
    fp_ids: f64,
}

/// What calibration may cost in validation false positives: `max_fp` on
/// look-alikes pooled over every author (half of it on each kind of clean
/// sentence), and, when `author_share > 0`, at least that share of the
/// authors (corpora, rounded up) each within `author_fp` on their own
/// look-alikes. The pooled rate is what an average author sees; the
/// target is met or missed on one unseen author's corpus, and by author
/// v9's pooled 0.8 % left 6 of 16 authors above 1 % (0.0 %–1.6 %).
#[derive(Debug, Clone, Copy)]
struct Bounds {
    max_fp: f64,
    author_fp: f64,
    author_share: f64,
}

impl Bounds {
    /// The rates of `flagged` on `samples` if they keep within the bounds.
    fn admits(&self, samples: &[&Sample], flagged: impl Fn(usize) -> bool) -> Option<Rates> {
        let mut per_author: Vec<[usize; 2]> = Vec::new();
        let r = rates_with(samples, &flagged, |s, f| {
            // A training-only corpus is no author (it never reaches
            // validation; guarded all the same).
            if s.group == Group::LookAlike && s.corpus != TRAIN_ONLY {
                if per_author.len() <= s.corpus {
                    per_author.resize(s.corpus + 1, [0, 0]);
                }
                per_author[s.corpus][0] += 1;
                per_author[s.corpus][1] += usize::from(f);
            }
        });
        let pooled = r.fp_look_alike <= self.max_fp && r.fp_clean <= self.max_fp / 2.0 && r.fp_ids <= self.max_fp / 2.0;
        (pooled && self.authors_ok(&per_author)).then_some(r)
    }

    /// `per_author`: each author's look-alikes and how many are flagged.
    fn authors_ok(&self, per_author: &[[usize; 2]]) -> bool {
        if self.author_share <= 0.0 {
            return true;
        }
        let authors: Vec<&[usize; 2]> = per_author.iter().filter(|a| a[0] > 0).collect();
        let within = authors.iter().filter(|a| a[1] as f64 <= self.author_fp * a[0] as f64).count();
        within as f64 >= (self.author_share * authors.len() as f64 - 1e-9).ceil()
    }
}

fn rates(samples: &[&Sample], flagged: impl Fn(usize) -> bool) -> Rates {
    rates_with(samples, flagged, |_, _| {})
}

/// [`rates`], also showing `each` every sample and whether it is flagged.
fn rates_with(samples: &[&Sample], flagged: impl Fn(usize) -> bool, mut each: impl FnMut(&Sample, bool)) -> Rates {
    let (mut n, mut k) = ([0usize; 4], [0usize; 4]);
    for (i, s) in samples.iter().enumerate() {
        let g = if s.group == Group::Clean && s.kind == ID_KIND { 3 } else { s.group as usize };
        let f = flagged(i);
        each(s, f);
        n[g] += 1;
        k[g] += usize::from(f);
    }
    let r = |g: usize| if n[g] == 0 { 0.0 } else { k[g] as f64 / n[g] as f64 };
    Rates { detection: r(0), fp_look_alike: r(1), fp_clean: r(2), fp_ids: r(3) }
}

/// The lowest threshold whose false positives stay within the bounds.
/// `forced`: samples flagged whatever their score.
fn calibrate(scores: &[f32], forced: &[bool], samples: &[&Sample], bounds: Bounds) -> f32 {
    let mut candidates: Vec<f32> = scores.iter().copied().filter(|&t| t < 1.0).collect();
    candidates.sort_by(f32::total_cmp);
    candidates.dedup();
    candidates.push(1.0);
    lowest_fitting(&candidates, |t| bounds.admits(samples, |i| forced[i] || scores[i] >= t).is_some()).unwrap_or(1.0)
}

/// The lowest of the ascending `candidates` that `fits`, by bisection
/// (false positives fall as a threshold rises, so what fits is a suffix);
/// `None` when not even the last does.
fn lowest_fitting(candidates: &[f32], fits: impl Fn(f32) -> bool) -> Option<f32> {
    let (mut lo, mut hi) = (0usize, candidates.len().checked_sub(1)?);
    if !fits(candidates[hi]) {
        return None;
    }
    while lo < hi {
        let mid = (lo + hi) / 2;
        if fits(candidates[mid]) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    Some(candidates[lo])
}

/// The two thresholds of the decision `hard || p ≥ t || (soft && p ≥ v)`
/// (`v ≤ t`) that detect the most malicious samples with false positives
/// within the bounds; among equals the lowest `v` (soft rules overruled
/// least). Tries ~400 values of `v` (quantiles of the scores, and 0); for
/// each, the lowest `t` that fits (false positives fall as `t` rises).
fn calibrate_soft(
    scores: &[f32],
    hard: &[bool],
    soft: &[bool],
    samples: &[&Sample],
    bounds: Bounds,
    max_soft: f32,
) -> (f32, f32) {
    let mut values: Vec<f32> = scores.to_vec();
    values.sort_by(f32::total_cmp);
    values.dedup();
    let step = (values.len() / 400).max(1);
    let mut vs: Vec<f32> = std::iter::once(0.0)
        .chain(values.iter().copied().step_by(step))
        .chain([max_soft])
        .filter(|&v| v <= max_soft)
        .collect();
    vs.sort_by(f32::total_cmp);
    vs.dedup();
    let fits = |t: f32, v: f32| {
        bounds.admits(samples, |i| hard[i] || scores[i] >= t || (soft[i] && scores[i] >= v)).map(|r| r.detection)
    };
    let mut best: Option<(f64, f32, f32)> = None;
    for &v in &vs {
        // Candidate thresholds t ≥ v, up to 1.0 (what ships: a sigmoid in
        // f32 reaches 1.0 itself for logits above ~17).
        let mut ts: Vec<f32> = values.iter().copied().filter(|&t| t >= v && t < 1.0).collect();
        ts.push(1.0);
        let Some(t) = lowest_fitting(&ts, |t| fits(t, v).is_some()) else {
            continue;
        };
        let d = fits(t, v).unwrap_or(0.0);
        if best.is_none_or(|(bd, _, _)| d > bd) {
            best = Some((d, t, v));
        }
    }
    // Nothing fits: the most conservative head (every rule flags on its own).
    best.map_or_else(
        || {
            eprintln!("warning: no thresholds keep false positives within the bounds; soft rules disabled");
            (1.0, 0.0)
        },
        |(_, t, v)| (t, v.min(t)),
    )
}

pub async fn run(args: &TrainArgs, engine_args: &EngineArgs) -> anyhow::Result<()> {
    let mut entries = Vec::new();
    let mut dev_files = Vec::new();
    let mut held_out = HashSet::new();
    let mut corpora = args.dev.clone();
    if let Some(h) = &args.holdout {
        if !corpora.contains(h) {
            corpora.push(h.clone());
        }
    }
    let mut corpus_of = std::collections::HashMap::new();
    for (c, path) in corpora.iter().enumerate() {
        let (mut loaded, sha) = injection::load(path)?;
        corpus_of.extend(loaded.iter().map(|e| (e.id.clone(), c)));
        dev_files.push(serde_json::json!({"file": path.display().to_string(), "sha256": sha, "entries": loaded.len()}));
        if args.holdout.as_ref() == Some(path) {
            held_out.extend(loaded.iter().map(|e| e.id.clone()));
        }
        entries.append(&mut loaded);
    }
    for path in &args.train_only {
        anyhow::ensure!(
            !corpora.contains(path),
            "{} is both a validating (--dev or --holdout) and a --train-only corpus",
            path.display()
        );
        let (mut loaded, sha) = injection::load(path)?;
        corpus_of.extend(loaded.iter().map(|e| (e.id.clone(), TRAIN_ONLY)));
        dev_files.push(
            serde_json::json!({"file": path.display().to_string(), "sha256": sha, "entries": loaded.len(), "train_only": true}),
        );
        entries.append(&mut loaded);
    }
    let mut ids = HashSet::new();
    if let Some(dup) = entries.iter().find(|e| !ids.insert(e.id.as_str())) {
        anyhow::bail!("entry id {:?} occurs twice across the corpora (the split goes by id)", dup.id);
    }
    anyhow::ensure!(
        !(args.by_author && args.holdout.is_some()),
        "--by-author validates on every corpus: drop --holdout"
    );
    anyhow::ensure!(!args.by_author || corpora.len() >= 2, "--by-author needs at least two corpora");
    anyhow::ensure!(
        args.rule_features || args.soft_signals.is_empty(),
        "--soft-signals need the rule signals as features (drop --no-rule-features)"
    );
    let now = chrono::Utc::now().timestamp();
    let mut samples = Vec::new();
    for e in &entries {
        let group = match e.label {
            Label::Malicious => Group::Malicious,
            Label::Benign => Group::LookAlike,
        };
        let validation =
            validates(corpus_of[&e.id], &e.id, args.by_author, args.holdout.is_some().then_some(&held_out));
        for field in FIELDS {
            let variant = injection::variant(args.template, &e.id, field);
            let event = injection::plant_varied(&e.text, field, "u", "e", now, variant);
            if event.validate(&Default::default(), now).is_err() {
                continue;
            }
            samples.push(Sample {
                entry: e.id.clone(),
                kind: e.kind.clone(),
                text: verbalize(&event),
                group,
                validation,
                corpus: corpus_of[&e.id],
            });
        }
    }
    // Clean activity sentences of another seed than the benchmark's.
    let dataset = generator::generate(&generator::GenConfig { seed: args.seed, users: 400, ..Default::default() });
    let mut seen = HashSet::new();
    let mut clean = 0;
    'users: for user in &dataset.users {
        for event in &user.events {
            if dataset.truth_of(&event.source_id, &event.event_id).is_some_and(|t| t.injected) {
                continue;
            }
            let text = verbalize(event);
            if seen.insert(text.clone()) {
                let id = format!("clean-{clean}");
                let validation = in_validation(&id) || args.by_author;
                let corpus = usize::from(Sha256::digest(id.as_bytes())[2]) % corpora.len();
                samples.push(Sample {
                    entry: format!("clean-{clean}"),
                    kind: "clean".into(),
                    text,
                    group: Group::Clean,
                    validation,
                    corpus,
                });
                clean += 1;
                if clean >= args.clean {
                    break 'users;
                }
            }
        }
    }
    // Generated innocent values full of opaque identifiers, planted like the
    // corpora's texts (`idgen`), counted as clean activity sentences.
    for (k, value) in crate::idgen::values(args.id_negatives, args.seed).iter().enumerate() {
        let id = format!("clean-id-{k}");
        let digest = Sha256::digest(id.as_bytes());
        let field = FIELDS[usize::from(digest[0]) % FIELDS.len()];
        // Not `injection::variant` (a hash of id and field): heads v8 and v9
        // were trained on these variants, and either hash varies alike.
        let variant = match args.template {
            Template::Fixed => 0,
            Template::Varied => u64::from_le_bytes(digest[8..16].try_into().expect("8 bytes")),
        };
        let event = injection::plant_varied(value, field, "u", "e", now, variant);
        if event.validate(&Default::default(), now).is_err() {
            continue;
        }
        samples.push(Sample {
            entry: id.clone(),
            kind: ID_KIND.into(),
            text: verbalize(&event),
            group: Group::Clean,
            validation: in_validation(&id) || args.by_author,
            corpus: usize::from(digest[2]) % corpora.len(),
        });
    }
    // Sentences the shipped head is trained on (`false`) and validated on
    // (`true`); by author, every sentence is both (validated out of author).
    let count = |g: Group, v: bool| {
        samples
            .iter()
            .filter(|s| s.group == g && (s.validation == v || (args.by_author && s.corpus != TRAIN_ONLY)))
            .count()
    };
    eprintln!(
        "training sentences: {} malicious, {} look-alike, {} clean; validation: {} / {} / {}",
        count(Group::Malicious, false),
        count(Group::LookAlike, false),
        count(Group::Clean, false),
        count(Group::Malicious, true),
        count(Group::LookAlike, true),
        count(Group::Clean, true)
    );

    // Embeddings are cached sentence by sentence (keyed by the text's hash),
    // one file per model setting, so adding a corpus embeds only its own
    // sentences.
    let mut key = Sha256::new();
    key.update(format!("{:?}", engine_args.model).as_bytes());
    let cache = args.cache_dir.join(format!("injection-vectors-{}.bin", &hex::encode(key.finalize())[..16]));
    let mut cached = VectorCache::load(&cache)?;
    let missing: Vec<String> = {
        let mut seen = HashSet::new();
        samples
            .iter()
            .filter(|s| !cached.vectors.contains_key(&VectorCache::key(&s.text)) && seen.insert(s.text.as_str()))
            .map(|s| s.text.clone())
            .collect()
    };
    if !missing.is_empty() || cached.model_id.is_empty() {
        eprintln!("embedding {} sentences not in {}", missing.len(), cache.display());
        let dir = tempfile::tempdir()?;
        let eval = EvalEngine::open(engine_args, dir.path(), 12.0, 512).await?;
        let model_id = eval.engine().embedder().model_id().to_string();
        let vectors = embed_all(eval.engine(), missing.clone()).await;
        eval.close().await?;
        std::fs::create_dir_all(&args.cache_dir)?;
        cached.add(&cache, &model_id, &missing, vectors?)?;
    }
    let model_id = cached.model_id.clone();
    let vectors: Vec<Vec<f32>> = samples.iter().map(|s| cached.vectors[&VectorCache::key(&s.text)].clone()).collect();
    drop(cached);
    let dim = vectors[0].len();
    if let Some(dir) = &args.dump {
        std::fs::create_dir_all(dir)?;
        let mut lines = String::new();
        for s in &samples {
            let group = match s.group {
                Group::Malicious => "malicious",
                Group::LookAlike => "look_alike",
                Group::Clean => "clean",
            };
            let row = serde_json::json!({"entry": s.entry, "text": s.text, "kind": s.kind, "group": group, "validation": s.validation, "rules": screen(&s.text).flagged(), "signals": screen(&s.text).signals.iter().map(|x| x.as_str()).collect::<Vec<_>>()});
            lines.push_str(&row.to_string());
            lines.push('\n');
        }
        std::fs::write(dir.join("samples.jsonl"), lines)?;
        let bytes: Vec<u8> = vectors.iter().flatten().flat_map(|v| v.to_le_bytes()).collect();
        std::fs::write(dir.join("vectors.f32"), bytes)?;
        eprintln!("dumped {} samples to {}", samples.len(), dir.display());
    }

    // The character n-gram model's features (with the rule signals unless
    // `--no-rule-features`), for every sentence.
    let spec = NgramSpec::new(args.ngram_min, args.ngram_max, args.ngram_buckets)
        .map_err(anyhow::Error::msg)?
        .with_folded(args.ngram_folded);
    let features: Vec<Vec<(u32, f32)>> = samples.iter().map(|s| spec.features(&s.text)).collect();
    let signals: Vec<Vec<Signal>> = samples.iter().map(|s| screen(&s.text).signals).collect();
    let with_rules: Vec<Vec<(u32, f32)>> = (0..samples.len())
        .map(|i| {
            let mut f = features[i].clone();
            if args.rule_features {
                for s in &signals[i] {
                    if let Some(k) = Signal::RULES.iter().position(|r| r == s) {
                        f.push(((spec.buckets + k) as u32, 1.0));
                    }
                }
            }
            f
        })
        .collect();
    // Trains the embedding layers and the n-gram model on the sentences
    // `idx`, each class weighing as much in total (clean sentences as much
    // as look-alikes within the benign half).
    let fit = |idx: &[usize], label: &'static str| -> anyhow::Result<Fitted> {
        let x: Vec<f32> = idx.iter().flat_map(|&i| vectors[i].iter().copied()).collect();
        let labels: Vec<f32> =
            idx.iter().map(|&i| if samples[i].group == Group::Malicious { 1.0 } else { 0.0 }).collect();
        let n_of = |g: Group| idx.iter().filter(|&&i| samples[i].group == g).count().max(1) as f32;
        let (n_mal, n_look, n_clean) = (n_of(Group::Malicious), n_of(Group::LookAlike), n_of(Group::Clean));
        let weight = |i: usize| match samples[i].group {
            Group::Malicious => 1.0 / n_mal,
            Group::LookAlike => 0.5 / n_look,
            Group::Clean => 0.5 / n_clean,
        };
        let w: Vec<f32> = idx.iter().map(|&i| weight(i)).collect();
        let started = std::time::Instant::now();
        let bar = progress(args.epochs, label);
        let net = mlp::train(&x, dim, &labels, &w, args.hidden, args.epochs, args.init_seed, || bar.inc(1));
        bar.finish_and_clear();
        let layers_s = started.elapsed().as_secs_f64();
        let mut layers = Vec::new();
        if let Some((w1, b1)) = &net.hidden {
            layers.push(serde_json::json!({
                "weights": w1.chunks(dim).collect::<Vec<_>>(),
                "bias": b1,
                "activation": "relu",
            }));
        }
        layers.push(serde_json::json!({
            "weights": [&net.out.0],
            "bias": [net.out.1],
            "activation": "sigmoid",
        }));
        let last = net.last_loss;
        let dense: Vec<context_engine::render::learned::Dense> = serde_json::from_value(serde_json::json!(layers))?;
        let layers_only = InjectionHead::from_layers("trained", &dense, 0.5).map_err(anyhow::Error::msg)?;
        let rows: Vec<TrainRow<'_>> =
            idx.iter().map(|&i| (&with_rules[i][..], samples[i].group == Group::Malicious, weight(i))).collect();
        let started = std::time::Instant::now();
        let ngrams = train_ngrams(spec, args.rule_features, &rows, args.ngram_epochs, args.ngram_l2)?;
        eprintln!(
            "  {label}: {} sentences, layers {layers_s:.1} s, n-grams {:.1} s",
            idx.len(),
            started.elapsed().as_secs_f64()
        );
        Ok(Fitted { layers, head: layers_only.with_ngrams(ngrams.clone()), ngrams, last })
    };
    // Scores of the sentences `idx` by a fitted model: the whole head, the
    // layers alone, the n-grams alone.
    let score = |f: &Fitted, i: usize| -> [f32; 3] {
        [
            f.head.probability(&vectors[i], &samples[i].text),
            sigmoid(f.head.embedding_logit(&vectors[i])),
            sigmoid(f.ngrams.logit_of(&features[i], &signals[i])),
        ]
    };
    let (fitted, val_idx, oof): (Fitted, Vec<usize>, Vec<[f32; 3]>) = if args.by_author {
        // Every sentence is scored by a model trained without its author's
        // corpus (clean sentences: without their fold), then the shipped
        // model is trained on everything.
        let mut oof = vec![[0f32; 3]; samples.len()];
        for c in 0..corpora.len() {
            let (train, held): (Vec<usize>, Vec<usize>) = (0..samples.len()).partition(|&i| samples[i].corpus != c);
            eprintln!(
                "fold {}/{}: without {} ({} sentences held out)",
                c + 1,
                corpora.len(),
                corpora[c].display(),
                held.len()
            );
            let f = fit(&train, "fold")?;
            for i in held {
                oof[i] = score(&f, i);
            }
        }
        let all: Vec<usize> = (0..samples.len()).collect();
        let val_idx: Vec<usize> = all.iter().copied().filter(|&i| samples[i].corpus != TRAIN_ONLY).collect();
        let oof = val_idx.iter().map(|&i| oof[i]).collect();
        (fit(&all, "train")?, val_idx, oof)
    } else {
        let (train_idx, val_idx): (Vec<usize>, Vec<usize>) = (0..samples.len()).partition(|&i| !samples[i].validation);
        let f = fit(&train_idx, "train")?;
        let oof = val_idx.iter().map(|&i| score(&f, i)).collect();
        (f, val_idx, oof)
    };
    let Fitted { layers, head, ngrams, last } = fitted;
    eprintln!("final training loss {last:.4}");
    let soft: Vec<Signal> = args
        .soft_signals
        .iter()
        .map(|n| Signal::from_name(n).filter(|s| Signal::RULES.contains(s)))
        .collect::<Option<_>>()
        .context("--soft-signals: unknown rule signal")?;

    let bounds = Bounds { max_fp: args.max_fp, author_fp: args.author_fp, author_share: args.author_share };
    // One calibrated decision: the threshold is the lowest whose decisions
    // (score at or above it, or a rule signal that is not soft) keep false
    // positives within the bounds.
    let val: Vec<&Sample> = val_idx.iter().map(|&i| &samples[i]).collect();
    let val_signals: Vec<&[Signal]> = val_idx.iter().map(|&i| &signals[i][..]).collect();
    let val_scores: Vec<f32> = oof.iter().map(|s| s[0]).collect();
    if let Some(dir) = &args.dump {
        // The validation scores (head, layers alone, n-grams alone), to
        // study other decisions without training again.
        let lines: String = val_idx
            .iter()
            .zip(&oof)
            .map(|(&i, s)| format!("{}\n", serde_json::json!({"sample": i, "scores": s})))
            .collect();
        std::fs::write(dir.join("validation_scores.jsonl"), lines)?;
    }
    let hard: Vec<bool> = val_signals.iter().map(|s| s.iter().any(|x| !soft.contains(x))).collect();
    let soft_fired: Vec<bool> = val_signals.iter().map(|s| s.iter().any(|x| soft.contains(x))).collect();
    let (threshold, soft_threshold) =
        calibrate_soft(&val_scores, &hard, &soft_fired, &val, bounds, args.max_soft_threshold);
    let head =
        head.with_threshold(threshold).with_soft_signals(soft.clone(), soft_threshold).map_err(anyhow::Error::msg)?;
    let decision = |i: usize| head.decide(val_scores[i], val_signals[i]);
    let rule_flags: Vec<bool> = val_signals.iter().map(|s| !s.is_empty()).collect();
    let head_rates = rates(&val, decision);
    let rule_rates = rates(&val, |i| rule_flags[i]);
    // For comparison only: what v10-v12's calibration (90 % of the authors
    // each within the bound) would choose on the same out-of-author scores.
    if args.author_share > 0.0 && (args.author_share - 0.9).abs() > 1e-9 {
        let v12 = Bounds { author_share: 0.9, ..bounds };
        let (t, st) = calibrate_soft(&val_scores, &hard, &soft_fired, &val, v12, args.max_soft_threshold);
        let other = head.clone().with_threshold(t).with_soft_signals(soft.clone(), st).map_err(anyhow::Error::msg)?;
        let r = rates(&val, |i| other.decide(val_scores[i], val_signals[i]));
        eprintln!("for comparison, --author-share 0.9 would choose {t:.4} / {st:.4}: {r:?}");
    }
    // Ablations, each calibrated the same way with every rule signal hard:
    // the embedding layers alone (the previous head's design), the n-gram
    // model alone, both without soft signals.
    let layer_scores: Vec<f32> = oof.iter().map(|s| s[1]).collect();
    let t_layers = calibrate(&layer_scores, &rule_flags, &val, bounds);
    let layers_rates = rates(&val, |i| rule_flags[i] || layer_scores[i] >= t_layers);
    let ngram_scores: Vec<f32> = oof.iter().map(|s| s[2]).collect();
    let t_ngrams = calibrate(&ngram_scores, &rule_flags, &val, bounds);
    let ngram_rates = rates(&val, |i| rule_flags[i] || ngram_scores[i] >= t_ngrams);
    let t_all_hard = calibrate(&val_scores, &rule_flags, &val, bounds);
    let all_hard_rates = rates(&val, |i| rule_flags[i] || val_scores[i] >= t_all_hard);
    eprintln!(
        "validation (threshold {threshold:.4}; soft signals {:?} flag at {soft_threshold:.4}):",
        args.soft_signals
    );
    eprintln!("  rules alone                               {rule_rates:?}");
    eprintln!("  detector (one decision)                   {head_rates:?}");
    eprintln!("  rules + same head, every rule hard ({t_all_hard:.4})  {all_hard_rates:?}");
    eprintln!("  rules + embedding layers alone ({t_layers:.4})      {layers_rates:?}");
    eprintln!("  rules + n-grams alone ({t_ngrams:.4})               {ngram_rates:?}");
    let mut kinds: std::collections::BTreeMap<&str, [usize; 4]> = Default::default();
    for (i, s) in val.iter().enumerate() {
        let k = kinds.entry(&s.kind).or_default();
        k[0] += 1;
        k[1] += usize::from(rule_flags[i]);
        k[2] += usize::from(val_scores[i] >= threshold);
        k[3] += usize::from(decision(i));
    }
    for (kind, [n, r, h, b]) in kinds {
        eprintln!(
            "    {kind:<20} n={n:<5} rules {r:<5} score {h:<5} decision {b:<5} ({:.1} %)",
            100.0 * b as f64 / n as f64
        );
    }
    // What other choices of soft rules and soft-threshold cap would have
    // given on the same scores (diagnostic; the head ships the choice above).
    for (name, soft_set) in [("soft as given", soft.clone()), ("every rule soft", Signal::RULES.to_vec())] {
        let hard: Vec<bool> = val_signals.iter().map(|s| s.iter().any(|x| !soft_set.contains(x))).collect();
        let fired: Vec<bool> = val_signals.iter().map(|s| s.iter().any(|x| soft_set.contains(x))).collect();
        for cap in [0.1f32, 0.3, 0.5, 0.9, 1.0] {
            let (t, v) = calibrate_soft(&val_scores, &hard, &fired, &val, bounds, cap);
            let r = rates(&val, |i| hard[i] || val_scores[i] >= t || (fired[i] && val_scores[i] >= v));
            eprintln!("  grid: {name:<16} cap {cap:<4} threshold {t:.4} soft {v:.4}  {r:?}");
        }
    }
    // Each author's sentences under the calibrated decision (by author:
    // scored by the head trained without them).
    let mut per_corpus = Vec::new();
    let mut authors_within = 0usize;
    for (c, path) in corpora.iter().enumerate() {
        let pos: Vec<usize> = (0..val.len()).filter(|&k| val[k].corpus == c).collect();
        if pos.is_empty() {
            continue;
        }
        let sub: Vec<&Sample> = pos.iter().map(|&k| val[k]).collect();
        let r = rates(&sub, |j| decision(pos[j]));
        eprintln!("  {:<32} {r:?}", path.display());
        per_corpus.push(serde_json::json!({"file": path.display().to_string(), "rates": r}));
        authors_within += usize::from(r.fp_look_alike <= args.author_fp);
    }
    eprintln!(
        "  authors with look-alike false positives ≤ {}: {authors_within} of {}",
        args.author_fp,
        per_corpus.len()
    );
    let mut jailguard = serde_json::Value::Null;
    if let Some(path) = &args.jailguard {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        let jg = InjectionHead::from_jailguard_json("jailguard 0.1.2", &text).map_err(anyhow::Error::msg)?;
        let scores: Vec<f32> = val_idx.iter().map(|&i| jg.probability(&vectors[i], "")).collect();
        let at_half = rates(&val, |i| scores[i] >= 0.5);
        let t = calibrate(&scores, &vec![false; val.len()], &val, bounds);
        let calibrated = rates(&val, |i| scores[i] >= t);
        let combined = rates(&val, |i| rule_flags[i] || scores[i] >= t);
        eprintln!("  jailguard@0.5          {at_half:?}");
        eprintln!("  jailguard@{t:.4}       {calibrated:?}");
        eprintln!("  rules+jailguard@{t:.4} {combined:?}");
        jailguard = serde_json::json!({
            "file": path.display().to_string(),
            "at_0_5": at_half, "calibrated_threshold": t, "calibrated": calibrated, "with_rules": combined,
        });
    }

    let file = serde_json::json!({
        "format": context_engine::render::learned::FORMAT,
        "ngrams": ngrams.to_file(),
        "soft_signals": args.soft_signals,
        "soft_threshold": soft_threshold,
        "embedding": format!("{model_id}, mean-pooled, L2-normalised ({dim} values) of the verbalised event sentence"),
        "threshold": threshold,
        "layers": layers,
        "provenance": {
            "trained_by": "context-eval injection-train",
            "date": now_rfc3339(),
            "commit": commit(),
            "machine": machine(),
            "dev_corpora": dev_files,
            "licence": "training texts written for this project by its own authors (the development corpora listed above, eval/injection/README.md), sentences of its synthetic activity generator and generated opaque-identifier values (eval/idgen.rs); no third-party data",
            "fields": FIELDS,
            "clean_generator_seed": args.seed,
            "id_negatives": {"generator": "eval/idgen.rs", "values": args.id_negatives, "seed": args.seed},
            "sentences": {
                "train": {"malicious": count(Group::Malicious, false), "look_alike": count(Group::LookAlike, false), "clean": count(Group::Clean, false)},
                "validation": {"malicious": count(Group::Malicious, true), "look_alike": count(Group::LookAlike, true), "clean": count(Group::Clean, true)},
            },
            "architecture": format!(
                "{}, plus a linear model over {} hashed character {}..={}-grams (read forwards and backwards) of the sentence{}{}; probability = sigmoid(sum of both logits)",
                if args.hidden > 0 { format!("{dim}→{}→1 MLP (ReLU) over the embedding", args.hidden) } else { format!("{dim}→1 logistic regression over the embedding") },
                spec.buckets, spec.min_n, spec.max_n,
                if spec.folded { " and of its folded text" } else { "" },
                if args.rule_features { " and its rule signals" } else { "" },
            ),
            "ngram_training": {"optimizer": "Adam, full batch", "lr": NGRAM_LR, "l2": args.ngram_l2, "epochs": args.ngram_epochs, "loss": "class-balanced logistic (same weights as the layers)"},
            "training": {"optimizer": "AdamW", "lr": mlp::LR, "weight_decay": mlp::WEIGHT_DECAY, "epochs": args.epochs, "batch": "full", "loss": "class-balanced logistic", "init": "Kaiming-normal weights, uniform biases (candle_nn::linear's)", "init_seed": args.init_seed, "final_loss": last},
            "calibration": format!("the threshold and soft threshold (at most {}) whose decisions (score at or above the threshold, a rule signal that is not soft, or a soft one with a score at or above the soft threshold) detect the most with validation false positives ≤ {} on look-alikes and ≤ {} on clean sentences (the activity generator's and the generated opaque-id ones each){}", args.max_soft_threshold, args.max_fp, args.max_fp / 2.0, if args.author_share > 0.0 { format!(", and at least {} % of the authors (rounded up) each ≤ {} on their own look-alikes", 100.0 * args.author_share, args.author_fp) } else { String::new() }),
            "validation": {
                "split": match &args.holdout {
                    Some(h) => format!("entries of {} (cross-author)", h.display()),
                    None if args.by_author => format!("by author: every corpus scored by a head trained without it (clean sentences: without their fold); thresholds calibrated on all of them together; the shipped head trained on every corpus{}", if args.train_only.is_empty() { "" } else { "; training-only corpora (marked in dev_corpora) in every fold, never scored" }),
                    None => "20 % of entries by id hash".into(),
                },
                "per_corpus": per_corpus,
                "rules": rule_rates, "detector": head_rates,
                "rules_and_same_head_every_rule_hard": all_hard_rates,
                "rules_and_embedding_layers_alone": layers_rates, "rules_and_ngrams_alone": ngram_rates,
                "jailguard": jailguard,
            },
        }
    });
    if let Some(parent) = args.out.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&args.out, serde_json::to_string(&file)?)?;
    let written = std::fs::read(&args.out)?;
    eprintln!("wrote {} (sha256 {})", args.out.display(), hex::encode(Sha256::digest(&written)));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(group: Group, corpus: usize) -> Sample {
        Sample { entry: String::new(), kind: "k".into(), text: String::new(), group, validation: true, corpus }
    }

    #[test]
    fn bounds_count_each_author_apart() {
        // Two authors of 100 look-alikes each: author 0 has 2 flagged (2 %),
        // author 1 none; pooled 1 %.
        let samples: Vec<Sample> = (0..200).map(|i| sample(Group::LookAlike, i / 100)).collect();
        let refs: Vec<&Sample> = samples.iter().collect();
        let flagged = |i: usize| i < 2;
        let pooled_only = Bounds { max_fp: 0.01, author_fp: 0.01, author_share: 0.0 };
        assert!(pooled_only.admits(&refs, flagged).is_some());
        let half = Bounds { author_share: 0.5, ..pooled_only };
        assert!(half.admits(&refs, flagged).is_some(), "one of two authors within is half");
        let most = Bounds { author_share: 0.9, ..pooled_only };
        assert!(most.admits(&refs, flagged).is_none(), "90 % of two authors rounds up to both");
        let loose = Bounds { author_fp: 0.02, ..most };
        assert!(loose.admits(&refs, flagged).is_some(), "2 of 100 is within 2 %");
        let tight_pool = Bounds { max_fp: 0.005, ..pooled_only };
        assert!(tight_pool.admits(&refs, flagged).is_none());
    }

    #[test]
    fn training_only_corpora_never_validate() {
        let ids: Vec<String> = (0..200).map(|k| format!("d-{k}")).collect();
        let held: HashSet<String> = ids[..50].iter().cloned().collect();
        for id in &ids {
            assert!(!validates(TRAIN_ONLY, id, true, None));
            assert!(!validates(TRAIN_ONLY, id, false, None));
            assert!(!validates(TRAIN_ONLY, id, false, Some(&held)));
            assert!(validates(3, id, true, None));
            assert_eq!(validates(3, id, false, Some(&held)), held.contains(id));
        }
        // The hash split validates about a fifth of an ordinary corpus.
        let split = ids.iter().filter(|id| validates(0, id, false, None)).count();
        assert!((20..=60).contains(&split), "{split}");
    }

    #[test]
    fn calibrate_finds_the_lowest_threshold_within_the_bounds() {
        // One author: look-alike scores 0.00..0.99; a malicious sample at 0.5.
        let mut samples: Vec<Sample> = (0..100).map(|_| sample(Group::LookAlike, 0)).collect();
        samples.push(sample(Group::Malicious, 0));
        let refs: Vec<&Sample> = samples.iter().collect();
        let mut scores: Vec<f32> = (0..100).map(|i| i as f32 / 100.0).collect();
        scores.push(0.5);
        let forced = vec![false; scores.len()];
        let bounds = Bounds { max_fp: 0.03, author_fp: 0.01, author_share: 0.0 };
        // At most 3 of 100 flagged: scores 0.97, 0.98, 0.99.
        assert_eq!(calibrate(&scores, &forced, &refs, bounds), 0.97);
        // The author bound (1 of 100) is stricter.
        assert_eq!(calibrate(&scores, &forced, &refs, Bounds { author_share: 1.0, ..bounds }), 0.99);
        // Nothing fits when a forced look-alike alone breaks the bound.
        let mut forced = forced;
        forced[..5].iter_mut().for_each(|f| *f = true);
        assert_eq!(calibrate(&scores, &forced, &refs, bounds), 1.0);
    }
}
