//! Feed and proactive tasks of the activity benchmark, on the store the
//! chat questions ran on (same people, grants and revocations).
//!
//! **Feed.** For every person with activity permitted for FEED_RANKING, 50
//! catalogue products: every product they have a feed-permitted event about
//! (grade 2), other products of those (shop, category) pairs (grade 1), and
//! products of categories the person never touched at all (grade 0), drawn
//! with a seeded generator. `RankItems` is compared in the same run with
//! two baselines: popularity (events per product over everyone) and plain
//! query-less dense similarity of each item to the mean vector of the
//! person's feed-permitted activity. Leak rate: evidence events that are not
//! the person's, not permitted for the feed, from a revoked source or LDU,
//! over all evidence events (must be 0).
//!
//! **Proactive.** For every person, the trips, hotel stays and tours
//! permitted for CHAT_ASSISTANT whose travel date lies within the next 30
//! days are the expected upcoming items; recall is the share of them that
//! `GetProactiveContext` (8 snippets, 512 tokens) returns. Leak rate as for
//! the feed, under the chat purpose.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::Instant;

use context_engine::domain::{Purpose, Scope};
use context_engine::engine::feed::{FeedItem, ProactiveRequest, RankItemsRequest};
use rand::seq::SliceRandom;
use rand::SeedableRng;

use crate::engine::{progress, EvalEngine};
use crate::generator::{Dataset, SHOPS};
use crate::metrics::{ndcg_at, Latency};
use crate::report::{Report, RunResult};

const ITEMS: usize = 50;
const DAY: i64 = 86_400;

struct Product {
    key: String,
    shop: usize,
    category: usize,
    text: String,
    label: &'static str,
    source_id: &'static str,
}

fn catalogue() -> Vec<Product> {
    SHOPS
        .iter()
        .enumerate()
        .flat_map(|(s, shop)| {
            shop.products.iter().map(move |p| Product {
                key: format!("{}/{}", shop.source_id, p.id),
                shop: s,
                category: p.category,
                text: format!("{} ({})", p.name, shop.categories[p.category].label),
                label: shop.categories[p.category].label,
                source_id: shop.source_id,
            })
        })
        .collect()
}

/// (shop, category) of an item key: a product or a shop search.
fn category_of(key: &str, by_key: &HashMap<String, (usize, usize)>) -> Option<(usize, usize)> {
    by_key.get(key).copied()
}

fn mean(vectors: &[Vec<f32>]) -> Option<Vec<f32>> {
    let first = vectors.first()?;
    let mut sum = vec![0.0f32; first.len()];
    for v in vectors {
        sum.iter_mut().zip(v).for_each(|(s, x)| *s += x);
    }
    let norm = sum.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-9);
    Some(sum.into_iter().map(|x| x / norm).collect())
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn ranked_keys(keys: &[String], scores: &[f32]) -> Vec<String> {
    let mut order: Vec<usize> = (0..keys.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    order.into_iter().map(|i| keys[i].clone()).collect()
}

pub async fn run(eval: &EvalEngine, dataset: &Dataset, now: i64, report: &mut Report) -> anyhow::Result<()> {
    let engine = eval.engine();
    let products = catalogue();
    let mut by_key: HashMap<String, (usize, usize)> =
        products.iter().map(|p| (p.key.clone(), (p.shop, p.category))).collect();
    for (s, shop) in SHOPS.iter().enumerate() {
        for (c, cat) in shop.categories.iter().enumerate() {
            by_key.insert(format!("{}/search-{}", shop.source_id, cat.key), (s, c));
        }
    }
    let mut popularity: HashMap<&str, f32> = HashMap::new();
    for t in dataset.truth.values() {
        *popularity.entry(t.item_key.as_str()).or_default() += 1.0;
    }
    let texts: Vec<String> = products.iter().map(|p| p.text.clone()).collect();
    let mut item_vectors = Vec::with_capacity(texts.len());
    for chunk in texts.chunks(256) {
        item_vectors.extend(engine.embed(chunk.to_vec()).await?);
    }

    let (mut ndcg_engine, mut ndcg_pop, mut ndcg_mean) = (Vec::new(), Vec::new(), Vec::new());
    let (mut evidence_total, mut evidence_leaks) = (0usize, 0usize);
    let mut latency = Vec::new();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(dataset.config.seed ^ 0xfeed);
    let bar = progress(dataset.users.len(), "feed");
    for user in &dataset.users {
        bar.inc(1);
        let uid = &user.user_id;
        let truths: Vec<_> = dataset.truth.values().filter(|t| &t.user_id == uid).collect();
        let permitted: Vec<_> = truths.iter().filter(|t| t.allowed_for.contains(&Purpose::FeedRanking)).collect();
        if permitted.is_empty() {
            continue;
        }
        let direct: HashSet<&str> = permitted.iter().map(|t| t.item_key.as_str()).collect();
        let cats: HashSet<(usize, usize)> =
            permitted.iter().filter_map(|t| category_of(&t.item_key, &by_key)).collect();
        let touched: HashSet<(usize, usize)> =
            truths.iter().filter_map(|t| category_of(&t.item_key, &by_key)).collect();
        let mut grade2: Vec<usize> =
            (0..products.len()).filter(|&i| direct.contains(products[i].key.as_str())).collect();
        let mut grade1: Vec<usize> = (0..products.len())
            .filter(|&i| {
                !direct.contains(products[i].key.as_str()) && cats.contains(&(products[i].shop, products[i].category))
            })
            .collect();
        let mut grade0: Vec<usize> =
            (0..products.len()).filter(|&i| !touched.contains(&(products[i].shop, products[i].category))).collect();
        if grade2.is_empty() {
            continue;
        }
        grade2.shuffle(&mut rng);
        grade1.shuffle(&mut rng);
        grade0.shuffle(&mut rng);
        grade2.truncate(10);
        grade1.truncate(15);
        let mut chosen: Vec<usize> = grade2.iter().chain(&grade1).copied().collect();
        chosen.extend(grade0.iter().take(ITEMS.saturating_sub(chosen.len())));
        chosen.shuffle(&mut rng);
        let qrels: HashMap<String, u32> = chosen
            .iter()
            .filter_map(|&i| {
                let p = &products[i];
                if direct.contains(p.key.as_str()) {
                    Some((p.key.clone(), 2))
                } else if cats.contains(&(p.shop, p.category)) {
                    Some((p.key.clone(), 1))
                } else {
                    None
                }
            })
            .collect();
        let keys: Vec<String> = chosen.iter().map(|&i| products[i].key.clone()).collect();

        let request = RankItemsRequest {
            user_id: uid.clone(),
            purpose: Some(Purpose::FeedRanking),
            caller: "context-eval".into(),
            items: chosen
                .iter()
                .map(|&i| FeedItem {
                    item_id: products[i].key.clone(),
                    text: products[i].text.clone(),
                    category: products[i].label.into(),
                    source_id: products[i].source_id.into(),
                })
                .collect(),
            evidence_items: 10,
            evidence_per_item: 3,
        };
        let t = Instant::now();
        let answer = engine.rank_items(request, now).await?;
        latency.push(t.elapsed().as_secs_f64() * 1e3);
        let ranked: Vec<String> = answer.items.iter().map(|i| i.item_id.clone()).collect();
        ndcg_engine.push(ndcg_at(&ranked, &qrels, 10));
        for e in answer.items.iter().flat_map(|i| &i.evidence) {
            evidence_total += 1;
            let ok = dataset
                .truth_of(&e.provenance.source_id, &e.provenance.event_id)
                .is_some_and(|t| &t.user_id == uid && !t.ldu && t.allowed_for.contains(&Purpose::FeedRanking));
            evidence_leaks += usize::from(!ok);
        }

        let pop: Vec<f32> = keys.iter().map(|k| popularity.get(k.as_str()).copied().unwrap_or(0.0)).collect();
        ndcg_pop.push(ndcg_at(&ranked_keys(&keys, &pop), &qrels, 10));

        let sources: BTreeSet<String> = permitted.iter().map(|t| t.source_id.clone()).collect();
        let scope = Scope::user_sources(uid.clone(), sources.into_iter().collect());
        let mut vectors = Vec::new();
        let mut from = None;
        loop {
            let page = eval.app.store.scroll_with_vectors(scope.clone(), from, 1000).await?;
            for ((_, record), v) in page.records.iter().zip(page.vectors) {
                if dataset
                    .truth_of(&record.event.source_id, &record.event.event_id)
                    .is_some_and(|t| t.allowed_for.contains(&Purpose::FeedRanking))
                {
                    vectors.push(v);
                }
            }
            from = page.next;
            if from.is_none() {
                break;
            }
        }
        let centre = mean(&vectors).unwrap_or_default();
        let sims: Vec<f32> = chosen.iter().map(|&i| dot(&item_vectors[i], &centre)).collect();
        ndcg_mean.push(ndcg_at(&ranked_keys(&keys, &sims), &qrels, 10));
    }
    bar.finish_and_clear();

    // Proactive: upcoming trips within 30 days, chat purpose.
    let today = chrono::DateTime::from_timestamp(now - now.rem_euclid(DAY), 0).unwrap().format("%Y-%m-%d").to_string();
    let horizon = chrono::DateTime::from_timestamp(now + 30 * DAY, 0).unwrap().format("%Y-%m-%d").to_string();
    let (mut expected, mut found, mut shown, mut leaks) = (0usize, 0usize, 0usize, 0usize);
    let mut proactive_latency = Vec::new();
    let mut people = 0usize;
    for user in &dataset.users {
        let uid = &user.user_id;
        let upcoming: HashSet<(String, String)> = user
            .events
            .iter()
            .filter(|e| {
                e.custom_data.properties.get("travel_date").is_some_and(|d| *d >= today && *d <= horizon)
                    && dataset
                        .truth_of(&e.source_id, &e.event_id)
                        .is_some_and(|t| t.allowed_for.contains(&Purpose::ChatAssistant))
            })
            .map(|e| (e.source_id.clone(), e.event_id.clone()))
            .collect();
        let t = Instant::now();
        let answer = engine
            .proactive_context(
                ProactiveRequest {
                    user_id: uid.clone(),
                    purpose: Some(Purpose::ChatAssistant),
                    caller: "context-eval".into(),
                    max_snippets: 8,
                    max_tokens: 512,
                    ..Default::default()
                },
                now,
            )
            .await?;
        proactive_latency.push(t.elapsed().as_secs_f64() * 1e3);
        people += 1;
        let returned: HashSet<(String, String)> = answer
            .items
            .iter()
            .map(|i| (i.snippet.provenance.source_id.clone(), i.snippet.provenance.event_id.clone()))
            .collect();
        expected += upcoming.len();
        found += upcoming.intersection(&returned).count();
        for (source, event) in &returned {
            shown += 1;
            let ok = dataset
                .truth_of(source, event)
                .is_some_and(|t| &t.user_id == uid && !t.ldu && t.allowed_for.contains(&Purpose::ChatAssistant));
            leaks += usize::from(!ok);
        }
    }

    let avg = |v: &[f64]| if v.is_empty() { 0.0 } else { v.iter().sum::<f64>() / v.len() as f64 };
    let rate = |n: usize, d: usize| if d == 0 { 0.0 } else { n as f64 / d as f64 };
    for (mode, values, lat) in [
        ("feed-rank-items", &ndcg_engine, latency.clone()),
        ("feed-popularity", &ndcg_pop, Vec::new()),
        ("feed-mean-vector", &ndcg_mean, Vec::new()),
    ] {
        let mut metrics = std::collections::BTreeMap::new();
        metrics.insert("feed_ndcg@10".to_string(), avg(values));
        metrics.insert("feed_people".to_string(), values.len() as f64);
        if mode == "feed-rank-items" {
            metrics.insert("feed_evidence_events".into(), evidence_total as f64);
            metrics.insert("feed_leak_rate".into(), rate(evidence_leaks, evidence_total));
            if let Some(l) = Latency::of(&lat) {
                metrics.insert("feed_p50_ms".into(), l.p50);
            }
        }
        report.runs.push(RunResult { mode: mode.into(), metrics, curves: Default::default(), latency_ms: lat });
    }
    let mut metrics = std::collections::BTreeMap::new();
    metrics.insert("proactive_upcoming_recall".to_string(), rate(found, expected));
    metrics.insert("proactive_upcoming_expected".to_string(), expected as f64);
    metrics.insert("proactive_people".to_string(), people as f64);
    metrics.insert("proactive_snippets".to_string(), shown as f64);
    metrics.insert("proactive_leak_rate".to_string(), rate(leaks, shown));
    if let Some(l) = Latency::of(&proactive_latency) {
        metrics.insert("proactive_p50_ms".into(), l.p50);
    }
    report.runs.push(RunResult {
        mode: "proactive".into(),
        metrics,
        curves: Default::default(),
        latency_ms: proactive_latency,
    });
    report.notes.push(format!(
        "Feed (RankItems, FEED_RANKING): {} people, 50 candidate products each (grade 2: products with a \
         feed-permitted event; 1: other products of those categories; 0: products of untouched categories); \
         nDCG@10 RankItems {:.4}, popularity {:.4}, mean activity vector {:.4}; {} evidence events, leak rate {}. \
         Proactive (CHAT_ASSISTANT, 8 snippets): {found} of {expected} upcoming trips within 30 days returned \
         (recall {:.4}) over {people} people; {shown} snippets, leak rate {}.",
        ndcg_engine.len(),
        avg(&ndcg_engine),
        avg(&ndcg_pop),
        avg(&ndcg_mean),
        evidence_total,
        rate(evidence_leaks, evidence_total),
        rate(found, expected),
        rate(leaks, shown),
    ));
    Ok(())
}
