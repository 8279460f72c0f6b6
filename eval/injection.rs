//! `context-eval injection`: how many injection payloads reach the rendered
//! context unflagged, and how many benign look-alikes are flagged, measured
//! through the engine itself.
//!
//! A corpus (`eval/injection/*.jsonl`: id, label, kind, lang, text) is planted
//! field by field into activity events, one person per (text, field) pair;
//! each pair is ingested and consented like any event (so the learned score
//! is computed at ingest, as in the service) and one `get_context` with the
//! neutralise policy shows whether its snippet came back flagged. A pair
//! whose event the engine refuses at validation never reaches a block and is
//! counted apart (`rejected`), not in either rate.
//!
//! Reports pass-through (malicious pairs shown unflagged) and false
//! positives (benign pairs flagged) overall and per kind, language and
//! field, each with a 95 % Wilson interval; the corpus's sha256 is in the
//! report, and every run appends one line to the history file so that first
//! runs stay on record.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context;
use context_engine::domain::{ActivityEvent, ConsentState, Content, CustomData, Purpose};
use context_engine::engine::{ContextRequest, Engine};
use context_engine::rank::RankingOverrides;
use context_engine::render::{InjectionPolicy, Signal};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::engine::{commit, machine, now_rfc3339, progress, EngineArgs, EvalEngine};

/// Where a text is planted: the free-text fields whose content reaches the
/// rendered sentence.
pub const FIELDS: [&str; 7] = [
    "custom_data.content_name",
    "custom_data.search_string",
    "custom_data.contents.title",
    "custom_data.content_category",
    "source_name",
    "custom_data.properties.destination",
    "custom_data.properties.achievement",
];

const SOURCE: &str = "acme";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Label {
    Malicious,
    Benign,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Entry {
    pub id: String,
    pub label: Label,
    pub kind: String,
    pub lang: String,
    pub text: String,
}

/// The corpus and the sha256 of its file.
pub fn load(path: &Path) -> anyhow::Result<(Vec<Entry>, String)> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let sha = hex::encode(Sha256::digest(&bytes));
    let text = String::from_utf8(bytes).with_context(|| format!("{} is not UTF-8", path.display()))?;
    let mut entries = Vec::new();
    for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let entry: Entry =
            serde_json::from_str(line).with_context(|| format!("{}:{}: not a corpus entry", path.display(), n + 1))?;
        entries.push(entry);
    }
    anyhow::ensure!(!entries.is_empty(), "{} holds no entries", path.display());
    Ok((entries, sha))
}

/// An event of `user_id` at `now` with `text` in `field`; everything else is
/// an ordinary purchase, search, trip, ... at one shop.
pub fn plant(text: &str, field: &str, user_id: &str, event_id: &str, now: i64) -> ActivityEvent {
    let mut event = ActivityEvent {
        event_id: event_id.to_string(),
        user_id: user_id.to_string(),
        source_id: SOURCE.into(),
        source_name: "Acme Outdoors".into(),
        event_name: "Purchase".into(),
        event_time: now - 3_600,
        action_source: "website".into(),
        ..Default::default()
    };
    let data = &mut event.custom_data;
    match field {
        "custom_data.content_name" => {
            data.content_name = text.into();
            data.value = Some(49.9);
            data.currency = "EUR".into();
        }
        "custom_data.search_string" => {
            event.event_name = "Search".into();
            data.search_string = text.into();
        }
        "custom_data.contents.title" => {
            event.event_name = "AddToCart".into();
            data.contents =
                vec![Content { id: "sku-1".into(), quantity: 1, item_price: Some(19.0), title: text.into() }];
        }
        "custom_data.content_category" => {
            event.event_name = "ViewContent".into();
            data.content_name = "Trail Runner 3".into();
            data.content_category = text.into();
        }
        "source_name" => {
            event.event_name = "ViewContent".into();
            data.content_name = "Trail Runner 3".into();
            event.source_name = text.into();
        }
        "custom_data.properties.destination" => {
            event.event_name = "FlightBooked".into();
            *data = CustomData {
                properties: [("origin".to_string(), "Lisbon".to_string()), ("destination".into(), text.into())]
                    .into_iter()
                    .collect(),
                ..Default::default()
            };
        }
        "custom_data.properties.achievement" => {
            event.event_name = "AchievementUnlocked".into();
            data.content_name = "Star Forge".into();
            data.properties.insert("achievement".into(), text.into());
        }
        other => panic!("unknown field {other}"),
    }
    event
}

/// `plant` with the rest of the event varied by `variant` (training, and
/// `context-eval injection --template varied`; the protocol's evaluation
/// plants with the one fixed template): the business's
/// display name (or none: the sentence then names the source id), the
/// price and currency (or none), the neighbouring product, origin and game
/// names, and for product names the event type. Variant 0 is `plant`'s
/// template. Without this every training sentence of a field shared one
/// template, and the head read unusual but innocent sentences of another
/// shape (e.g. `Purchased CANARY0<32 hex digits> at shop`) as payloads.
pub fn plant_varied(text: &str, field: &str, user_id: &str, event_id: &str, now: i64, variant: u64) -> ActivityEvent {
    let mut event = plant(text, field, user_id, event_id, now);
    if variant == 0 {
        return event;
    }
    const SOURCES: [&str; 12] = [
        "",
        "Acme Outdoors",
        "Nordlicht Mode",
        "TechHub",
        "Casa Verde",
        "Pixel Forge Games",
        "SkyWays",
        "Livraria Sol",
        "Sakura Market",
        "Bazaar",
        "Maison Blanche",
        "QuickCart",
    ];
    const PRODUCTS: [&str; 8] = [
        "Trail Runner 3",
        "USB-C hub 7-in-1",
        "Linen shirt",
        "Espresso beans 1 kg",
        "Desk lamp",
        "Yoga mat",
        "Wireless earbuds",
        "Cast iron pan",
    ];
    const ORIGINS: [&str; 6] = ["Lisbon", "Berlin", "Tokyo", "São Paulo", "Nairobi", "Toronto"];
    const GAMES: [&str; 5] = ["Star Forge", "Kingdom Rush", "Pixel Farm", "Deep Dive", "Neon Racer"];
    const CURRENCIES: [&str; 6] = ["EUR", "USD", "GBP", "JPY", "BRL", "SEK"];
    let pick = |k: u32, n: usize| ((variant.rotate_left(k * 8) ^ (variant >> 3)) % n as u64) as usize;
    let source = SOURCES[pick(1, SOURCES.len())];
    if field != "source_name" {
        event.source_name = source.into();
    }
    let data = &mut event.custom_data;
    let product = PRODUCTS[pick(2, PRODUCTS.len())];
    let price = Some([4.5, 19.0, 49.9, 129.0, 1999.0, 0.99][pick(3, 6)]);
    let currency = CURRENCIES[pick(4, CURRENCIES.len())];
    match field {
        "custom_data.content_name" => {
            event.event_name = ["Purchase", "Purchase", "ViewContent", "AddToWishlist", "Purchase"][pick(5, 5)].into();
            if pick(6, 3) == 0 {
                data.value = None;
                data.currency = String::new();
            } else {
                data.value = price;
                data.currency = currency.into();
            }
        }
        "custom_data.contents.title" => {
            if let Some(c) = data.contents.first_mut() {
                c.item_price = price;
                c.quantity = 1 + pick(6, 3) as u32;
            }
        }
        "custom_data.content_category" | "source_name" => data.content_name = product.into(),
        "custom_data.properties.destination" => {
            data.properties.insert("origin".into(), ORIGINS[pick(5, ORIGINS.len())].into());
        }
        "custom_data.properties.achievement" => data.content_name = GAMES[pick(5, GAMES.len())].into(),
        _ => {}
    }
    event
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
pub struct Tally {
    /// Pairs whose snippet came back (flagged or not).
    pub shown: usize,
    pub flagged: usize,
    /// Flagged pairs with at least one rule signal (the rest were flagged
    /// by the learned signal alone).
    #[serde(default)]
    pub flagged_by_rules: usize,
    /// Pairs the engine refused at validation (never rendered).
    pub rejected: usize,
    /// Pairs accepted but absent from the answer (should be 0).
    pub missing: usize,
}

impl Tally {
    fn add(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Flagged { rules } => {
                self.shown += 1;
                self.flagged += 1;
                self.flagged_by_rules += usize::from(rules);
            }
            Outcome::Unflagged => self.shown += 1,
            Outcome::Rejected => self.rejected += 1,
            Outcome::Missing => self.missing += 1,
        }
    }

    /// Unflagged share of the shown pairs (pass-through for malicious text,
    /// 1 − false positives for benign).
    pub fn unflagged_rate(&self) -> f64 {
        if self.shown == 0 {
            return 0.0;
        }
        (self.shown - self.flagged) as f64 / self.shown as f64
    }

    pub fn flagged_rate(&self) -> f64 {
        if self.shown == 0 {
            return 0.0;
        }
        self.flagged as f64 / self.shown as f64
    }
}

/// 95 % Wilson score interval of `k` successes in `n`.
pub fn wilson(k: usize, n: usize) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    let (k, n, z) = (k as f64, n as f64, 1.959_964);
    let p = k / n;
    let centre = (p + z * z / (2.0 * n)) / (1.0 + z * z / n);
    let half = z * ((p * (1.0 - p) + z * z / (4.0 * n)) / n).sqrt() / (1.0 + z * z / n);
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// `rules`: a rule signal is among the flags.
    Flagged {
        rules: bool,
    },
    Unflagged,
    Rejected,
    Missing,
}

/// Tallies by label, then by a breakdown key.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Breakdown {
    pub total: BTreeMap<Label, Tally>,
    pub by_kind: BTreeMap<Label, BTreeMap<String, Tally>>,
    pub by_lang: BTreeMap<Label, BTreeMap<String, Tally>>,
    pub by_field: BTreeMap<Label, BTreeMap<String, Tally>>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct InjectionReport {
    pub corpus: String,
    pub corpus_sha256: String,
    pub entries: usize,
    pub pairs: usize,
    pub detector: String,
    /// The event template around each planted text ("fixed" or "varied").
    pub template: String,
    pub commit: String,
    pub machine: String,
    pub date: String,
    /// Malicious pairs shown unflagged / malicious pairs shown.
    pub pass_through: f64,
    pub pass_through_ci95: (f64, f64),
    /// Benign pairs flagged / benign pairs shown.
    pub false_positive: f64,
    pub false_positive_ci95: (f64, f64),
    pub breakdown: Breakdown,
    /// Up to 40 malicious pairs that passed and benign pairs that were
    /// flagged (id, field, text), for reading, never for writing rules.
    pub examples_passed: Vec<(String, String, String)>,
    pub examples_flagged_benign: Vec<(String, String, String)>,
}

pub struct InjectionArgs {
    pub corpus: PathBuf,
    /// Every n-th entry of each label (1 = all).
    pub every: usize,
    /// What the engine under test uses besides the rules ("rules" or the
    /// head's name), for the report.
    pub detector: String,
    pub out: PathBuf,
    pub history: Option<PathBuf>,
    /// The event around each planted text: `plant`'s one template per field
    /// (the protocol's, every run before 2026-12-03 night) or
    /// `plant_varied`'s, chosen per (entry, field) by a hash.
    pub template: Template,
    /// Also write every (entry, field) outcome here, one JSON line each
    /// (development corpora only: refused for the frozen test corpus and
    /// the opaque-id probe or any corpus sharing an entry with them, whose
    /// single outcomes no one may read; their reports carry no examples
    /// either).
    pub per_entry: Option<PathBuf>,
}

/// The measurement corpora whose single entries must never be read (the
/// protocol), by file name in `eval/injection/`.
const SEALED: [&str; 2] = ["test.jsonl", "ids-probe.jsonl"];

/// The sealed corpora's directory (fixed when the tool is built, so the
/// working directory and the path given do not matter).
fn sealed_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/injection"))
}

/// Why a corpus counts as sealed, if it does: its hash is a sealed
/// corpus's recorded hash (`<name>.sha256`), or any of its entries shares
/// an id or a text with a sealed corpus (a subset, a copy with other line
/// endings, an edited copy). `sha` is the corpus's hash, `dir` where the
/// sealed corpora and their hashes lie; a sealed file that cannot be read
/// counts as sealed.
pub fn sealed_reason(entries: &[Entry], sha: &str, dir: &Path) -> Option<String> {
    for name in SEALED {
        let Ok(recorded) = std::fs::read_to_string(dir.join(format!("{name}.sha256"))) else {
            return Some(format!("cannot read {name}.sha256"));
        };
        if recorded.split_whitespace().next() == Some(sha) {
            return Some(format!("it is {name}"));
        }
        let Ok((sealed, _)) = load(&dir.join(name)) else {
            return Some(format!("cannot read {name}"));
        };
        let ids: std::collections::HashSet<&str> = sealed.iter().map(|e| e.id.as_str()).collect();
        let texts: std::collections::HashSet<&str> = sealed.iter().map(|e| e.text.as_str()).collect();
        if let Some(e) = entries.iter().find(|e| ids.contains(e.id.as_str()) || texts.contains(e.text.as_str())) {
            return Some(format!("its entry {} shares an id or a text with {name}", e.id));
        }
    }
    None
}

/// The event around a planted text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Template {
    /// `plant`'s one template per field (the protocol's evaluation; training
    /// of heads up to v6).
    Fixed,
    /// The business, price, currency, neighbouring names and event type
    /// varied per (entry, field) (`plant_varied`).
    Varied,
}

/// `plant_varied`'s variant for a text of entry `id` in `field`: 0 (the
/// fixed template) or a hash of both.
pub fn variant(template: Template, id: &str, field: &str) -> u64 {
    match template {
        Template::Fixed => 0,
        Template::Varied => {
            u64::from_le_bytes(Sha256::digest(format!("{id}\0{field}").as_bytes())[..8].try_into().expect("8 bytes"))
        }
    }
}

fn request(user_id: &str) -> ContextRequest {
    ContextRequest {
        user_id: user_id.to_string(),
        purpose: Some(Purpose::ChatAssistant),
        caller: "context-eval".into(),
        query: "What has this person been doing lately?".into(),
        max_snippets: 5,
        max_tokens: 2_000,
        ranking: RankingOverrides { injection_policy: Some(InjectionPolicy::Neutralize), ..Default::default() },
        ..Default::default()
    }
}

fn head_sha(choice: &context_engine::app::HeadChoice) -> String {
    let bytes = match choice {
        context_engine::app::HeadChoice::Shipped => {
            context_engine::render::learned::default_head_json().as_bytes().to_vec()
        }
        context_engine::app::HeadChoice::File(path) => std::fs::read(path).unwrap_or_default(),
        context_engine::app::HeadChoice::None => return "-".into(),
    };
    hex::encode(Sha256::digest(&bytes))[..12].to_string()
}

/// Plants, ingests and queries every (entry, field) pair of `entries`.
async fn outcomes(
    engine: &Engine,
    entries: &[Entry],
    now: i64,
    template: Template,
) -> anyhow::Result<Vec<(usize, usize, Outcome)>> {
    let pairs: Vec<(usize, usize)> = (0..entries.len()).flat_map(|e| (0..FIELDS.len()).map(move |f| (e, f))).collect();
    let user = |e: usize, f: usize| format!("inj-{e}-{f}");
    let bar = progress(pairs.len(), "consent");
    for &(e, f) in &pairs {
        engine.set_consent(&user(e, f), SOURCE, Some(Purpose::ChatAssistant), Some(ConsentState::Granted), now).await?;
        bar.inc(1);
    }
    bar.finish_and_clear();
    let mut result = Vec::with_capacity(pairs.len());
    let mut accepted = Vec::new();
    let bar = progress(pairs.len(), "ingest");
    for chunk in pairs.chunks(500) {
        let events = chunk
            .iter()
            .map(|&(e, f)| {
                let variant = variant(template, &entries[e].id, FIELDS[f]);
                plant_varied(&entries[e].text, FIELDS[f], &user(e, f), &format!("ev-{e}-{f}"), now, variant)
            })
            .collect();
        let outcomes = engine.ingest(events, now).await?;
        for (&(e, f), outcome) in chunk.iter().zip(outcomes) {
            if outcome.is_accepted() {
                accepted.push((e, f));
            } else {
                result.push((e, f, Outcome::Rejected));
            }
        }
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    let bar = progress(accepted.len(), "query");
    for (e, f) in accepted {
        let answer = engine.get_context(request(&user(e, f)), now).await?;
        let outcome = match answer.snippets.first() {
            None => Outcome::Missing,
            Some(s) if s.flags.is_empty() => Outcome::Unflagged,
            Some(s) => Outcome::Flagged { rules: s.flags.iter().any(|f| f != Signal::LearnedInstruction.as_str()) },
        };
        result.push((e, f, outcome));
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(result)
}

pub async fn run(args: &InjectionArgs, engine_args: &EngineArgs) -> anyhow::Result<InjectionReport> {
    anyhow::ensure!(args.every >= 1, "--every: expected at least 1");
    let (all, sha) = load(&args.corpus)?;
    // A sealed corpus's single outcomes are never written: no per-entry
    // listing (refused before anything is measured), no examples in the
    // report.
    let sealed = sealed_reason(&all, &sha, sealed_dir());
    if let (Some(why), Some(_)) = (&sealed, &args.per_entry) {
        anyhow::bail!(
            "--per-entry: refused for a sealed measurement corpus ({why}); its single outcomes may not be read"
        );
    }
    let mut counters: BTreeMap<Label, usize> = BTreeMap::new();
    let entries: Vec<Entry> = all
        .iter()
        .filter(|e| {
            let n = counters.entry(e.label).or_default();
            *n += 1;
            (*n - 1).is_multiple_of(args.every)
        })
        .cloned()
        .collect();
    let dir = tempfile::tempdir()?;
    let eval = EvalEngine::open(engine_args, dir.path(), 12.0, 4_096).await?;
    let detector = match eval.engine().injection_head() {
        Some(head) => format!(
            "rules + learned head ({}, {}, threshold {:.4}, soft signals {:?} at {:.4}, head file sha256 {})",
            head.name(),
            if head.ngrams().is_some() { "embedding layers + character n-grams" } else { "embedding layers" },
            head.threshold(),
            head.soft_signals().iter().map(|s| s.as_str()).collect::<Vec<_>>(),
            head.soft_threshold(),
            head_sha(&engine_args.injection_head)
        ),
        None => "rules only".into(),
    };
    let now = chrono::Utc::now().timestamp();
    let outcomes = outcomes(eval.engine(), &entries, now, args.template).await;
    eval.close().await?;
    let outcomes = outcomes?;
    if let Some(path) = &args.per_entry {
        let mut lines = String::new();
        for &(e, f, outcome) in &outcomes {
            let entry = &entries[e];
            let (flagged, by_rule) = match outcome {
                Outcome::Flagged { rules } => (Some(true), rules),
                Outcome::Unflagged => (Some(false), false),
                Outcome::Rejected | Outcome::Missing => (None, false),
            };
            let line = serde_json::json!({
                "id": entry.id, "label": entry.label,
                "kind": entry.kind, "lang": entry.lang, "field": FIELDS[f], "text": entry.text,
                "outcome": match outcome { Outcome::Rejected => "rejected", Outcome::Missing => "missing", _ => "shown" },
                "flagged": flagged, "by_rule": by_rule,
            });
            lines.push_str(&line.to_string());
            lines.push('\n');
        }
        std::fs::write(path, lines).with_context(|| format!("cannot write {}", path.display()))?;
    }
    let mut breakdown = Breakdown::default();
    let (mut passed, mut flagged_benign) = (Vec::new(), Vec::new());
    for &(e, f, outcome) in &outcomes {
        let entry = &entries[e];
        let label = entry.label;
        breakdown.total.entry(label).or_default().add(outcome);
        breakdown.by_kind.entry(label).or_default().entry(entry.kind.clone()).or_default().add(outcome);
        breakdown.by_lang.entry(label).or_default().entry(entry.lang.clone()).or_default().add(outcome);
        breakdown.by_field.entry(label).or_default().entry(FIELDS[f].to_string()).or_default().add(outcome);
        let example = (entry.id.clone(), FIELDS[f].to_string(), entry.text.clone());
        match (label, outcome) {
            _ if sealed.is_some() => {}
            (Label::Malicious, Outcome::Unflagged) if passed.len() < 40 => passed.push(example),
            (Label::Benign, Outcome::Flagged { .. }) if flagged_benign.len() < 40 => flagged_benign.push(example),
            _ => {}
        }
    }
    let mal = breakdown.total.get(&Label::Malicious).copied().unwrap_or_default();
    let ben = breakdown.total.get(&Label::Benign).copied().unwrap_or_default();
    let report = InjectionReport {
        corpus: args.corpus.display().to_string(),
        corpus_sha256: sha,
        entries: entries.len(),
        pairs: outcomes.len(),
        detector: if args.detector.is_empty() { detector } else { args.detector.clone() },
        template: clap::ValueEnum::to_possible_value(&args.template)
            .map_or_else(String::new, |v| v.get_name().to_string()),
        commit: commit(),
        machine: machine(),
        date: now_rfc3339(),
        pass_through: mal.unflagged_rate(),
        pass_through_ci95: wilson(mal.shown - mal.flagged, mal.shown),
        false_positive: ben.flagged_rate(),
        false_positive_ci95: wilson(ben.flagged, ben.shown),
        breakdown,
        examples_passed: passed,
        examples_flagged_benign: flagged_benign,
    };
    Ok(report)
}

fn pct(x: f64) -> String {
    format!("{:.1} %", 100.0 * x)
}

fn table(out: &mut String, title: &str, rows: &BTreeMap<String, Tally>, malicious: bool) {
    let what = if malicious { "pass-through" } else { "flagged (false positive)" };
    out.push_str(&format!("\n| {title} | pairs shown | {what} | 95 % CI | rejected |\n|---|---:|---:|---|---:|\n"));
    for (key, t) in rows {
        let k = if malicious { t.shown - t.flagged } else { t.flagged };
        let (lo, hi) = wilson(k, t.shown);
        let rate = if malicious { t.unflagged_rate() } else { t.flagged_rate() };
        out.push_str(&format!("| {key} | {} | {} | {}–{} | {} |\n", t.shown, pct(rate), pct(lo), pct(hi), t.rejected));
    }
}

pub fn markdown(r: &InjectionReport) -> String {
    let mut out = format!(
        "# Injection screening: {}\n\ncorpus sha256 `{}`, {} entries, {} (entry, field) pairs; detector: {}; event \
         template: {}; commit {}; {}; {}\n\n",
        r.corpus, r.corpus_sha256, r.entries, r.pairs, r.detector, r.template, r.commit, r.machine, r.date
    );
    let total = |label| r.breakdown.total.get(&label).copied().unwrap_or_default();
    let (m, b) = (total(Label::Malicious), total(Label::Benign));
    out.push_str(&format!(
        "**Pass-through** (malicious pairs shown unflagged): **{}** of {} shown (95 % CI {}–{}); {} refused at \
         validation, {} missing.\n\n**False positives** (benign pairs flagged): **{}** of {} shown (95 % CI {}–{}); {} \
         refused at validation, {} missing.\n",
        pct(r.pass_through),
        m.shown,
        pct(r.pass_through_ci95.0),
        pct(r.pass_through_ci95.1),
        m.rejected,
        m.missing,
        pct(r.false_positive),
        b.shown,
        pct(r.false_positive_ci95.0),
        pct(r.false_positive_ci95.1),
        b.rejected,
        b.missing,
    ));
    out.push_str(&format!(
        "\nWho flagged: malicious pairs {} by a rule signal, {} by the learned signal alone; benign pairs {} by a rule \
         signal ({} of shown), {} by the learned signal alone ({}).\n",
        m.flagged_by_rules,
        m.flagged - m.flagged_by_rules,
        b.flagged_by_rules,
        pct(if b.shown == 0 { 0.0 } else { b.flagged_by_rules as f64 / b.shown as f64 }),
        b.flagged - b.flagged_by_rules,
        pct(if b.shown == 0 { 0.0 } else { (b.flagged - b.flagged_by_rules) as f64 / b.shown as f64 }),
    ));
    for (label, name) in [(Label::Malicious, "malicious"), (Label::Benign, "benign")] {
        let malicious = label == Label::Malicious;
        for (title, rows) in [
            ("kind", r.breakdown.by_kind.get(&label)),
            ("language", r.breakdown.by_lang.get(&label)),
            ("field", r.breakdown.by_field.get(&label)),
        ] {
            if let Some(rows) = rows {
                table(&mut out, &format!("{name} by {title}"), rows, malicious);
            }
        }
    }
    out
}

/// Writes `<out>/injection-<corpus stem>-<date>.{json,md}` and appends the
/// headline to the history file.
pub fn publish(r: &InjectionReport, out: &Path, history: Option<&Path>) -> anyhow::Result<()> {
    std::fs::create_dir_all(out)?;
    let stem = Path::new(&r.corpus).file_stem().and_then(|s| s.to_str()).unwrap_or("corpus").to_string();
    let base = out.join(format!("injection-{stem}-{}", r.date.replace(':', "-")));
    let json = base.with_extension("json");
    let md = base.with_extension("md");
    std::fs::write(&json, serde_json::to_string_pretty(r)?)?;
    let text = markdown(r);
    std::fs::write(&md, &text)?;
    println!("{text}");
    eprintln!("wrote {}\nwrote {}", json.display(), md.display());
    if let Some(history) = history {
        let line = serde_json::json!({
            "date": r.date, "commit": r.commit, "machine": r.machine, "corpus": r.corpus,
            "corpus_sha256": r.corpus_sha256, "entries": r.entries, "pairs": r.pairs, "detector": r.detector,
            "template": r.template, "pass_through": r.pass_through, "pass_through_ci95": r.pass_through_ci95,
            "false_positive": r.false_positive, "false_positive_ci95": r.false_positive_ci95,
            "false_positive_by_rules": r.breakdown.total.get(&Label::Benign).map(|b| if b.shown == 0 { 0.0 } else { b.flagged_by_rules as f64 / b.shown as f64 }),
        });
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(history)
            .with_context(|| format!("cannot append to {}", history.display()))?;
        writeln!(file, "{line}")?;
        eprintln!("appended to {}", history.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wilson_brackets_the_rate() {
        let (lo, hi) = wilson(3, 100);
        assert!(lo < 0.03 && 0.03 < hi && lo > 0.005 && hi < 0.09, "{lo} {hi}");
        assert_eq!(wilson(0, 0), (0.0, 1.0));
        let (lo, hi) = wilson(0, 300);
        assert_eq!(lo, 0.0);
        assert!(hi > 0.0 && hi < 0.02);
    }

    #[test]
    fn sealed_corpora_and_anything_sharing_an_entry_with_them_are_recognised() {
        let dir = sealed_dir();
        for sealed in SEALED {
            let (entries, sha) = load(&dir.join(sealed)).unwrap();
            assert_eq!(sealed_reason(&entries, &sha, dir), Some(format!("it is {sealed}")));
            // A subset (another hash), and one entry with its id changed.
            let mut subset: Vec<Entry> = entries.iter().step_by(8).cloned().collect();
            assert!(sealed_reason(&subset, "other", dir).unwrap().contains(sealed), "{sealed}");
            subset.truncate(1);
            subset[0].id = "renamed".into();
            assert!(sealed_reason(&subset, "other", dir).unwrap().contains("renamed"), "{sealed}");
        }
        let (entries, sha) = load(&dir.join("dev22.jsonl")).unwrap();
        assert_eq!(sealed_reason(&entries, &sha, dir), None);
        // A hash file that cannot be read counts as sealed.
        let empty = tempfile::tempdir().unwrap();
        assert!(sealed_reason(&entries, &sha, empty.path()).unwrap().contains("cannot read"));
    }

    #[test]
    fn every_field_reaches_the_sentence() {
        let now = 1_790_000_000;
        for field in FIELDS {
            let event = plant("Zebra Quartz Lantern", field, "u", "e", now);
            assert_eq!(event.validate(&Default::default(), now), Ok(()), "{field}");
            let sentence = context_engine::verbalize::verbalize(&event);
            assert!(sentence.contains("Zebra Quartz Lantern"), "{field}: {sentence}");
        }
    }
}
