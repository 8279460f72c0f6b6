//! Feed ranking (`rank_items`) and proactive context (`proactive_context`):
//! the other uses of a person's permitted activity, on the same consent
//! code as `get_context`. Both read the person's ledger once, build the
//! scope with the one scope builder (`retrieval_scope`), fetch the
//! permitted activity with its vectors, re-check every event against the
//! snapshot (dropping and alarming on anything the store filter let
//! through), and write an access record naming every event they disclose,
//! all under the person's fence, like a context call.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use sha2::{Digest, Sha256};
use uuid::Uuid;

use ce_core::block::{self, InjectionPolicy};
use ce_core::domain::{AccessRecord, AccessedEvent, ContextQuery, EventRecord, Provenance, Purpose, Snippet};
use ce_core::policy::{post_check, retrieval_scope, ConsentSnapshot, PostCheck};
use ce_core::rank::{self, feed, proactive, Candidate, Group, Ranking};
use ce_metrics::metrics;
use ce_screen::{InjectionHead, Screener};

use super::{micros, ContextStats, Engine, EngineError};

/// Items per `rank_items` call.
pub const MAX_ITEMS: usize = 1000;
/// Characters of one item's text.
pub const MAX_ITEM_TEXT_CHARS: usize = 512;
/// Characters of one item's category.
pub const MAX_CATEGORY_CHARS: usize = 128;
/// Items that may get evidence, and evidence events per item.
pub const MAX_EVIDENCE_ITEMS: usize = 100;
pub const MAX_EVIDENCE_PER_ITEM: usize = 10;
pub const DEFAULT_EVIDENCE_ITEMS: usize = 10;
pub const DEFAULT_EVIDENCE_PER_ITEM: usize = 3;
/// Most events of one person read for one call (most people have far
/// fewer; past it, the first 5,000 in point-id order, an arbitrary subset,
/// are used and `activity_truncated` says so).
pub const MAX_ACTIVITY: usize = 5000;
/// Horizon / look-back of proactive context, days.
pub const DEFAULT_DAYS: u32 = 30;
pub const MAX_DAYS: u32 = 365;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct FeedItem {
    pub item_id: String,
    pub text: String,
    pub category: String,
    pub source_id: String,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct RankItemsRequest {
    pub user_id: String,
    pub purpose: Option<Purpose>,
    /// Who asks (access log).
    pub caller: String,
    pub items: Vec<FeedItem>,
    /// 0 means the default.
    pub evidence_items: usize,
    pub evidence_per_item: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Evidence {
    pub text: String,
    pub provenance: Provenance,
    pub similarity: f32,
    pub recency: f32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RankedItem {
    pub item_id: String,
    pub score: f32,
    /// 1-based.
    pub rank: usize,
    pub similarity: f32,
    pub category_affinity: f32,
    pub source_affinity: f32,
    pub evidence: Vec<Evidence>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RankItemsStats {
    pub events_considered: usize,
    /// Events the consent post-check removed: 0 unless the store's filter
    /// failed (each also raises an alarm).
    pub consent_removed: usize,
    /// The person had more than [`MAX_ACTIVITY`] permitted events; the
    /// scores come from the first 5,000 in point-id order.
    pub activity_truncated: bool,
    pub items_embedded: usize,
    pub items_cached: usize,
    pub embed_us: u64,
    pub fetch_us: u64,
    pub score_us: u64,
    pub total_us: u64,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct RankItemsAnswer {
    /// Every item, best first.
    pub items: Vec<RankedItem>,
    pub stats: RankItemsStats,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProactiveRequest {
    pub user_id: String,
    pub purpose: Option<Purpose>,
    pub caller: String,
    /// 0 means the defaults (as `get_context`).
    pub max_snippets: usize,
    pub max_tokens: usize,
    /// 0 means [`DEFAULT_DAYS`].
    pub horizon_days: u32,
    pub recent_days: u32,
    /// `None` keeps the server's policy.
    pub injection_policy: Option<InjectionPolicy>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ProactiveItem {
    pub snippet: Snippet,
    pub reason: proactive::Reason,
    pub due_time: i64,
    pub cluster_size: usize,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProactiveAnswer {
    pub items: Vec<ProactiveItem>,
    pub rendered_context: String,
    pub stats: ContextStats,
}

/// What `permitted_activity` read.
struct Activity {
    snapshot: ConsentSnapshot,
    points: Vec<ActivityPoint>,
    /// Events the post-check removed (a broken store filter; alarmed).
    removed: usize,
    /// More than [`MAX_ACTIVITY`] events were permitted; the rest unread.
    truncated: bool,
}

/// One permitted event with its vector and the grant version that lets it out.
struct ActivityPoint {
    id: Uuid,
    record: EventRecord,
    vector: Vec<f32>,
    consent_version: u64,
}

fn visible_id(field: &str, value: &str, max: usize) -> Result<(), EngineError> {
    if value.is_empty() || value.len() > max || !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(EngineError::invalid(
            field,
            format!("expected a non-empty id of at most {max} visible ASCII characters without spaces"),
        ));
    }
    Ok(())
}

fn free_text(field: &str, value: &str, max_chars: usize, required: bool) -> Result<(), EngineError> {
    if required && value.trim().is_empty() {
        return Err(EngineError::invalid(field, "required"));
    }
    if value.chars().count() > max_chars {
        return Err(EngineError::invalid(field, format!("longer than {max_chars} characters")));
    }
    if value.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\t' | '\r')) {
        return Err(EngineError::invalid(field, "contains control characters"));
    }
    Ok(())
}

fn purpose_of(purpose: Option<Purpose>) -> Result<Purpose, EngineError> {
    purpose.ok_or_else(|| {
        EngineError::invalid("purpose", "required (FEED_RANKING or CHAT_ASSISTANT); there is no default")
    })
}

fn provenance(point: &ActivityPoint) -> Provenance {
    let e = &point.record.event;
    Provenance {
        source_id: e.source_id.clone(),
        event_id: e.event_id.clone(),
        event_name: e.event_name.clone(),
        event_time: e.event_time,
        ingested_at: point.record.ingested_at,
        point_id: point.id.to_string(),
        content_hash: point.record.content_hash.clone(),
        consent_version: point.consent_version,
    }
}

impl Engine {
    /// The person's activity permitted for `purpose` right now, re-checked
    /// against the snapshot it was read under. `None` when nothing is
    /// permitted (or the person is unknown).
    async fn permitted_activity(
        &self,
        user_id: &str,
        purpose: Purpose,
        stage: &'static str,
    ) -> Result<Activity, EngineError> {
        let snapshot = self.snapshots(vec![user_id.to_string()]).await?.remove(user_id).unwrap_or_default();
        let query = ContextQuery {
            user_id: user_id.to_string(),
            purpose,
            text: String::new(),
            limit: 0,
            time_window: Default::default(),
            event_names: Vec::new(),
            event_families: Vec::new(),
            source_ids: Vec::new(),
            max_tokens: 0,
        };
        let Some((scope, permitted)) = retrieval_scope(&query, &snapshot) else {
            // Nothing is permitted for the purpose: a consent denial.
            metrics().consent_denials.with_label_values(&[stage]).inc();
            return Ok(Activity { snapshot, points: Vec::new(), removed: 0, truncated: false });
        };
        let (mut points, mut removed, mut truncated) = (Vec::new(), 0, false);
        let mut from = None;
        loop {
            let page = self.store.scroll_with_vectors(scope.clone(), from, 1000).await?;
            for ((id, record), vector) in page.records.into_iter().zip(page.vectors) {
                let verdict = post_check(user_id, &permitted, &record.event.user_id, &record.event.source_id);
                let PostCheck::Allowed { consent_version } = verdict else {
                    // The store filter should have made this impossible.
                    tracing::error!(alarm = "consent_post_check", ?verdict, point = %id, "event dropped");
                    removed += 1;
                    continue;
                };
                points.push(ActivityPoint { id, record, vector, consent_version });
            }
            from = page.next;
            if from.is_none() {
                break;
            }
            if points.len() >= MAX_ACTIVITY {
                truncated = true;
                break;
            }
        }
        truncated |= points.len() > MAX_ACTIVITY;
        points.truncate(MAX_ACTIVITY);
        metrics().consent_post_check_removed.inc_by(removed as u64);
        Ok(Activity { snapshot, points, removed, truncated })
    }

    /// Writes the access record of a call that disclosed `events` (none for
    /// a person nobody knows, as in `get_context`).
    async fn log_access(
        &self,
        snapshot: &ConsentSnapshot,
        user_id: &str,
        caller: String,
        purpose: Purpose,
        events: Vec<AccessedEvent>,
        now: i64,
    ) -> Result<u64, EngineError> {
        if !snapshot.knows_user() {
            return Ok(0);
        }
        let record = AccessRecord {
            access_id: Uuid::new_v4().to_string(),
            user_id: user_id.to_string(),
            caller,
            purpose,
            at: now,
            events,
        };
        let t = Instant::now();
        self.store.append_access(record).await?;
        Ok(micros(t))
    }

    /// Whether an event's text may be shown (as evidence): not flagged by
    /// the learned head's decision (its score from ingest, or computed now
    /// if another head wrote it) with the rules run now; without a head, by
    /// no rule. CPU work: called on the blocking pool.
    fn shown_clean(screener: &dyn Screener, head: Option<&InjectionHead>, point: &ActivityPoint) -> bool {
        let signals = screener.screen(&point.record.text).signals;
        let record = &point.record;
        let score = head.and_then(|h| match (record.injection_score, record.injection_head.as_deref()) {
            (Some(p), Some(id)) if id == h.id() => Some(p),
            _ => (point.vector.len() == h.dimension()).then(|| h.probability(&point.vector, &record.text)),
        });
        match (head, score) {
            (Some(h), Some(p)) => !h.decide(p, &signals),
            _ => signals.is_empty(),
        }
    }

    /// Item vectors, from the bounded item cache where the same text was
    /// embedded before; the others in one batched call.
    async fn item_vectors(&self, items: &[FeedItem]) -> Result<(Vec<Arc<Vec<f32>>>, usize, usize), EngineError> {
        let keys: Vec<[u8; 32]> = items.iter().map(|i| Sha256::digest(i.text.as_bytes()).into()).collect();
        let mut out: Vec<Option<Arc<Vec<f32>>>> =
            keys.iter().map(|k| self.item_cache.as_ref().and_then(|c| c.get(k))).collect();
        let mut missing: Vec<usize> = Vec::new();
        let mut first_of: HashMap<[u8; 32], usize> = HashMap::new();
        for (i, slot) in out.iter().enumerate() {
            if slot.is_none() && !first_of.contains_key(&keys[i]) {
                first_of.insert(keys[i], i);
                missing.push(i);
            }
        }
        let cached = items.len() - out.iter().filter(|s| s.is_none()).count();
        if !missing.is_empty() {
            // In requests of at most `max_embed_texts`, one after another, so
            // queries and ingests queued behind a large ranking get in between.
            for chunk in missing.chunks(self.limits.max_embed_texts.max(1)) {
                let texts = chunk.iter().map(|&i| items[i].text.clone()).collect();
                let vectors = self.embedder.embed(texts).await?;
                for (&i, vector) in chunk.iter().zip(vectors) {
                    let vector = Arc::new(vector);
                    if let Some(cache) = &self.item_cache {
                        cache.insert(keys[i], vector.clone());
                    }
                    out[i] = Some(vector);
                }
            }
            for i in 0..out.len() {
                if out[i].is_none() {
                    out[i] = out[first_of[&keys[i]]].clone();
                }
            }
        }
        let vectors = out.into_iter().map(|v| v.expect("every item has a vector")).collect();
        Ok((vectors, missing.len(), cached))
    }

    fn validate_items(&self, request: &RankItemsRequest) -> Result<Purpose, EngineError> {
        self.user_id("user_id", &request.user_id)?;
        let purpose = purpose_of(request.purpose)?;
        if request.items.is_empty() || request.items.len() > MAX_ITEMS {
            return Err(EngineError::invalid(
                "items",
                format!("expected 1 to {MAX_ITEMS} items, got {}", request.items.len()),
            ));
        }
        let max_id = self.limits.event.max_id_len;
        let mut seen = HashMap::with_capacity(request.items.len());
        for (i, item) in request.items.iter().enumerate() {
            visible_id(&format!("items[{i}].item_id"), &item.item_id, max_id)?;
            if let Some(first) = seen.insert(item.item_id.as_str(), i) {
                return Err(EngineError::invalid(
                    format!("items[{i}].item_id"),
                    format!("{:?} repeats items[{first}].item_id", item.item_id),
                ));
            }
            free_text(&format!("items[{i}].text"), &item.text, MAX_ITEM_TEXT_CHARS, true)?;
            free_text(&format!("items[{i}].category"), &item.category, MAX_CATEGORY_CHARS, false)?;
            if !item.source_id.is_empty() {
                visible_id(&format!("items[{i}].source_id"), &item.source_id, max_id)?;
            }
        }
        if request.evidence_items > MAX_EVIDENCE_ITEMS {
            return Err(EngineError::invalid(
                "evidence_items",
                format!("at most {MAX_EVIDENCE_ITEMS}, got {}", request.evidence_items),
            ));
        }
        if request.evidence_per_item > MAX_EVIDENCE_PER_ITEM {
            return Err(EngineError::invalid(
                "evidence_per_item",
                format!("at most {MAX_EVIDENCE_PER_ITEM}, got {}", request.evidence_per_item),
            ));
        }
        Ok(purpose)
    }

    /// Scores every candidate item for the person from their activity
    /// permitted for the purpose (see `ce_core::rank::feed`); the best
    /// `evidence_items` items carry the events that made them relevant.
    /// Events flagged for injection are left out. Every event shown as
    /// evidence is in the call's access record.
    pub async fn rank_items(&self, request: RankItemsRequest, now: i64) -> Result<RankItemsAnswer, EngineError> {
        let started = Instant::now();
        let purpose = self.validate_items(&request)?;
        let evidence_items = if request.evidence_items == 0 { DEFAULT_EVIDENCE_ITEMS } else { request.evidence_items };
        let per_item =
            if request.evidence_per_item == 0 { DEFAULT_EVIDENCE_PER_ITEM } else { request.evidence_per_item };
        let mut stats = RankItemsStats::default();
        let t = Instant::now();
        let (vectors, embedded, cached) = self.item_vectors(&request.items).await?;
        stats.embed_us = micros(t);
        (stats.items_embedded, stats.items_cached) = (embedded, cached);

        let _fence = self.fence(&request.user_id).read().await;
        let t = Instant::now();
        let Activity { snapshot, points: activity, removed, truncated, .. } =
            self.permitted_activity(&request.user_id, purpose, "rank_items").await?;
        stats.fetch_us = micros(t);
        (stats.consent_removed, stats.activity_truncated) = (removed, truncated);
        let t = Instant::now();
        let ranking = self.ranking;
        let items = request.items;
        let (screener, head) = (self.screener.clone(), self.head.clone());
        let (items, activity, scores) = tokio::task::spawn_blocking(move || {
            let activity: Vec<ActivityPoint> =
                activity.into_iter().filter(|p| Self::shown_clean(&*screener, head.as_deref(), p)).collect();
            let inputs: Vec<feed::ItemInput<'_>> = items
                .iter()
                .zip(&vectors)
                .map(|(item, v)| feed::ItemInput { vector: v, category: &item.category, source_id: &item.source_id })
                .collect();
            let acts: Vec<feed::ActivityInput<'_>> =
                activity.iter().map(|p| feed::ActivityInput { record: &p.record, vector: &p.vector }).collect();
            let scores = feed::score_items(&inputs, &acts, &ranking, now, per_item);
            (items, activity, scores)
        })
        .await
        .map_err(|e| EngineError::Store(ce_store::StoreError::Backend { operation: "rank", message: e.to_string() }))?;
        stats.score_us = micros(t);
        stats.events_considered = activity.len();

        let mut answer = RankItemsAnswer::default();
        // Every event whose text or similarity an answer discloses: each
        // item's best match (its similarity is returned) and the evidence.
        // The affinities are shares of the whole permitted activity, not
        // attributable to single events, and are not itemised.
        let mut disclosed: BTreeMap<Uuid, AccessedEvent> = BTreeMap::new();
        let accessed = |point: &ActivityPoint| AccessedEvent {
            source_id: point.record.event.source_id.clone(),
            event_id: point.record.event.event_id.clone(),
            consent_version: point.consent_version,
        };
        for (rank, i) in feed::order(&scores).into_iter().enumerate() {
            let s = &scores[i];
            if let Some(best) = s.best {
                disclosed.entry(activity[best].id).or_insert_with(|| accessed(&activity[best]));
            }
            let evidence = if rank < evidence_items {
                s.evidence
                    .iter()
                    .map(|&(e, similarity, recency)| {
                        let point = &activity[e];
                        disclosed.entry(point.id).or_insert_with(|| accessed(point));
                        Evidence {
                            text: block::sanitize(&point.record.text),
                            provenance: provenance(point),
                            similarity,
                            recency,
                        }
                    })
                    .collect()
            } else {
                Vec::new()
            };
            answer.items.push(RankedItem {
                item_id: items[i].item_id.clone(),
                score: s.score,
                rank: rank + 1,
                similarity: s.similarity,
                category_affinity: s.category_affinity,
                source_affinity: s.source_affinity,
                evidence,
            });
        }
        let caller = request.caller;
        self.log_access(&snapshot, &request.user_id, caller, purpose, disclosed.into_values().collect(), now).await?;
        answer.stats = stats;
        answer.stats.total_us = micros(started);
        Ok(answer)
    }

    fn validate_proactive(&self, request: &ProactiveRequest) -> Result<Purpose, EngineError> {
        self.user_id("user_id", &request.user_id)?;
        let purpose = purpose_of(request.purpose)?;
        let limits = &self.limits;
        if request.max_snippets > limits.max_snippets {
            return Err(EngineError::invalid(
                "max_snippets",
                format!("at most {}, got {}", limits.max_snippets, request.max_snippets),
            ));
        }
        if request.max_tokens > limits.max_tokens {
            return Err(EngineError::invalid(
                "max_tokens",
                format!("at most {}, got {}", limits.max_tokens, request.max_tokens),
            ));
        }
        for (field, days) in [("horizon_days", request.horizon_days), ("recent_days", request.recent_days)] {
            if days > MAX_DAYS {
                return Err(EngineError::invalid(field, format!("at most {MAX_DAYS}, got {days}")));
            }
        }
        Ok(purpose)
    }

    /// What matters now for the person, without a query (see
    /// `ce_core::rank::proactive`): ranked, screened, packed into the token
    /// budget and rendered with the context block.
    pub async fn proactive_context(&self, request: ProactiveRequest, now: i64) -> Result<ProactiveAnswer, EngineError> {
        let started = Instant::now();
        let purpose = self.validate_proactive(&request)?;
        let limits = &self.limits;
        let max_snippets = if request.max_snippets == 0 { limits.default_snippets } else { request.max_snippets };
        let max_tokens = if request.max_tokens == 0 { limits.default_max_tokens } else { request.max_tokens };
        let horizon = if request.horizon_days == 0 { DEFAULT_DAYS } else { request.horizon_days };
        let recent = if request.recent_days == 0 { DEFAULT_DAYS } else { request.recent_days };
        let policy = request.injection_policy.unwrap_or(self.ranking.injection_policy);

        let _fence = self.fence(&request.user_id).read().await;
        let mut stats = ContextStats::default();
        let t = Instant::now();
        let Activity { snapshot, points: activity, removed, .. } =
            self.permitted_activity(&request.user_id, purpose, "get_proactive_context").await?;
        stats.search_us = micros(t);
        stats.consent_removed = removed;
        stats.candidates = activity.len();

        let t = Instant::now();
        let (counter, screener, head) = (self.counter.clone(), self.screener.clone(), self.head.clone());
        let (picks, packed, rank_us) = tokio::task::spawn_blocking(move || {
            let acts: Vec<proactive::ActivityInput<'_>> =
                activity.iter().map(|p| proactive::ActivityInput { record: &p.record, vector: &p.vector }).collect();
            let picks = proactive::select(&acts, now, horizon, recent);
            // The shown event of pick g is candidate g and group g. The rest
            // of an interest's cluster may come from other sources, so it is
            // named in the access record below, not collapsed as repeats.
            let candidates: Vec<Candidate> = picks
                .iter()
                .map(|pick| {
                    let p = &activity[pick.members[0]];
                    Candidate {
                        point_id: p.id.to_string(),
                        record: p.record.clone(),
                        vector: p.vector.clone(),
                        dense_rank: None,
                        sparse_rank: None,
                        sparse_score: None,
                        consent_version: p.consent_version,
                    }
                })
                .collect();
            let groups: Vec<Group> = picks
                .iter()
                .enumerate()
                .map(|(g, pick)| Group { members: vec![g], score: pick.score, note: proactive::note(pick, &acts, now) })
                .collect();
            let rank_us = micros(t);
            let ranking = Ranking { candidates, order: (0..groups.len()).collect(), groups, ..Default::default() };
            let packed =
                rank::pack_with(&ranking, max_snippets, max_tokens, policy, &*counter, &*screener, head.as_deref());
            let picks: HashMap<String, (proactive::Reason, i64, Vec<AccessedEvent>)> = picks
                .iter()
                .map(|p| {
                    let used = p
                        .members
                        .iter()
                        .map(|&a| AccessedEvent {
                            source_id: activity[a].record.event.source_id.clone(),
                            event_id: activity[a].record.event.event_id.clone(),
                            consent_version: activity[a].consent_version,
                        })
                        .collect();
                    (activity[p.members[0]].id.to_string(), (p.reason, p.due_time, used))
                })
                .collect();
            (picks, packed, rank_us)
        })
        .await
        .map_err(|e| EngineError::Store(ce_store::StoreError::Backend { operation: "rank", message: e.to_string() }))?;
        stats.rank_us = rank_us;
        stats.render_us = micros(t).saturating_sub(rank_us);
        stats.flagged = packed.flagged;
        stats.dropped_injection = packed.dropped_injection;
        stats.dropped_budget = packed.dropped_budget;
        stats.tokens_used = packed.tokens;
        stats.token_budget = max_tokens;

        // Every event a shown line stands for, an interest's whole cluster
        // included (its size is disclosed).
        let mut events = Vec::new();
        let mut items = Vec::with_capacity(packed.snippets.len());
        for snippet in packed.snippets {
            let Some((reason, due_time, used)) = picks.get(&snippet.provenance.point_id) else {
                continue;
            };
            let cluster_size = if *reason == proactive::Reason::Interest { used.len() } else { 0 };
            events.extend(used.iter().cloned());
            items.push(ProactiveItem { snippet, reason: *reason, due_time: *due_time, cluster_size });
        }
        stats.access_log_us =
            self.log_access(&snapshot, &request.user_id, request.caller, purpose, events, now).await?;
        stats.total_us = micros(started);
        Ok(ProactiveAnswer { items, rendered_context: packed.rendered, stats })
    }
}
