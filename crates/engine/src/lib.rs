//! # ce-engine: the one core behind every client.
//!
//! `Engine` validates, verbalises, embeds
//! and stores events, and answers context queries; the gRPC service and the
//! `context-eval` binary both drive it and hold no logic of their own.
//!
//! It sees its collaborators only through [`EmbedHandle`] (an async face of
//! any `Embedder`) and [`VectorStore`]; the composition root (`app`) picks the
//! concrete ones. It reads no clock: callers pass `now` (unix seconds).

#[cfg(test)]
mod fakes;
pub mod feed;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use sha2::{Digest, Sha256};
use uuid::Uuid;

use ce_core::domain::{
    point_id, validate_user_id, AccessRecord, AccessedEvent, ActivityEvent, ConsentGrant, ConsentState, ContextQuery,
    EventFamily, EventRecord, FieldError, Limits, Purpose, RetrievalMode, Scope, Snippet,
};
use ce_core::policy::{post_check, retrieval_scope, ConsentSnapshot, IngestDenial, PostCheck};
use ce_core::rank::{self, Candidate, CountTokens, RankingOptions, RankingOverrides};
use ce_core::verbalize::verbalize;
use ce_embed::{EmbedError, EmbedHandle};
use ce_metrics::metrics;
use ce_screen::{InjectionHead, RuleScreener, Screener};
use ce_store::{Candidates, Page, PurgeState, ScoredRecord, SearchRequest, StoreError, StoredPoint, VectorStore};

/// Request-size limits enforced by the engine (on top of per-event [`Limits`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineLimits {
    pub event: Limits,
    /// Events per `ingest` call.
    pub max_batch_events: usize,
    /// Characters in a context query.
    pub max_query_chars: usize,
    /// Snippets per answer, and the default when the request says 0.
    pub max_snippets: usize,
    pub default_snippets: usize,
    /// Texts per `embed` call and characters per text.
    pub max_embed_texts: usize,
    pub max_embed_chars: usize,
    /// Entries in a request's source / event-name restriction lists.
    pub max_filter_values: usize,
    /// Token budget of the rendered block when the request says 0, and the
    /// largest a request may ask for.
    pub default_max_tokens: usize,
    pub max_tokens: usize,
    /// How long `set_consent` keeps retrying a compare-and-set that another
    /// replica keeps winning before it answers `Conflict` (ABORTED).
    pub consent_retry_budget: std::time::Duration,
}

impl Default for EngineLimits {
    fn default() -> Self {
        Self {
            event: Limits::default(),
            max_batch_events: 1000,
            max_query_chars: 2048,
            max_snippets: 100,
            default_snippets: 8,
            max_embed_texts: 256,
            max_embed_chars: 8192,
            max_filter_values: 64,
            default_max_tokens: 512,
            max_tokens: 16_384,
            consent_retry_budget: std::time::Duration::from_secs(5),
        }
    }
}

/// Why an event was not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectReason {
    /// A field is missing or malformed.
    InvalidField,
    /// The same `(source_id, event_id)` came earlier in the same request.
    DuplicateInBatch,
    /// No purpose is granted for the event's (user, source).
    NoConsent,
    /// The event is flagged Limited Data Use.
    LimitedDataUse,
}

impl RejectReason {
    /// Metric label.
    pub fn label(self) -> &'static str {
        match self {
            Self::InvalidField => "invalid_field",
            Self::DuplicateInBatch => "duplicate_in_batch",
            Self::NoConsent => "no_consent",
            Self::LimitedDataUse => "limited_data_use",
        }
    }
}

/// What happened to one event of an ingest request.
#[derive(Debug, Clone, PartialEq)]
pub enum EventOutcome {
    Accepted { point_id: String, text: String },
    Rejected { reason: RejectReason, field: String, message: String },
}

impl EventOutcome {
    pub fn is_accepted(&self) -> bool {
        matches!(self, Self::Accepted { .. })
    }
}

/// A context request as it arrives, before validation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContextRequest {
    pub user_id: String,
    /// Required; `None` is an error, never "any purpose".
    pub purpose: Option<Purpose>,
    /// Who asks (recorded in the access log), e.g. `orchestrator`.
    pub caller: String,
    pub query: String,
    /// 0 means the default.
    pub max_snippets: usize,
    /// Token budget of the rendered block; 0 means the default.
    pub max_tokens: usize,
    pub start_time: Option<i64>,
    pub end_time: Option<i64>,
    pub event_names: Vec<String>,
    /// Event families (`purchase`, `view`, ...).
    pub event_families: Vec<String>,
    pub source_ids: Vec<String>,
    pub ranking: RankingOverrides,
    /// Exact instead of approximate dense search (for measuring ANN recall).
    pub exact_search: bool,
}

/// Counts and timings of one `get_context`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ContextStats {
    /// Distinct events the candidate lists returned.
    pub candidates: usize,
    /// Candidates the consent post-check removed: 0 unless the store's
    /// filter failed (each one also raises an alarm). How much of the
    /// person's activity is held back for this purpose is deliberately not
    /// reported: the count would reveal activity they did not permit for it.
    pub consent_removed: usize,
    pub below_min_score: usize,
    /// Events merged into another event's snippet.
    pub collapsed: usize,
    /// Snippets kept but neutralised for injection signals.
    pub flagged: usize,
    /// Snippets dropped for injection signals.
    pub dropped_injection: usize,
    /// Snippets that did not fit the token budget (those past
    /// `max_snippets` are not counted).
    pub dropped_budget: usize,
    pub tokens_used: usize,
    pub token_budget: usize,
    /// The query vector came from the query-embedding cache.
    pub embedding_cached: bool,
    pub embed_us: u64,
    pub search_us: u64,
    pub rank_us: u64,
    pub render_us: u64,
    /// Reading the ledger, and writing the access record.
    pub ledger_us: u64,
    pub access_log_us: u64,
    pub total_us: u64,
}

/// What `get_context` returns.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContextAnswer {
    /// Best first; `citation_id` ties each to its line in `rendered_context`.
    pub snippets: Vec<Snippet>,
    /// Prompt-ready block: header, one delimited line per snippet, footer.
    pub rendered_context: String,
    pub stats: ContextStats,
}

/// Engine configuration beyond the request limits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EngineConfig {
    pub limits: EngineLimits,
    /// Query embeddings kept for repeated queries (0 = no cache).
    pub query_cache: usize,
    /// Server-wide ranking defaults; requests may override some.
    pub ranking: RankingOptions,
    /// Item vectors kept for `rank_items` (by text; 0 = no cache).
    pub item_cache: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            limits: EngineLimits::default(),
            query_cache: 1024,
            ranking: RankingOptions::default(),
            item_cache: 10_000,
        }
    }
}

fn micros(since: Instant) -> u64 {
    since.elapsed().as_micros().min(u128::from(u64::MAX)) as u64
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The request itself is malformed; `field` names the culprit.
    #[error("invalid {field}: {message}")]
    InvalidArgument { field: String, message: String },
    #[error(transparent)]
    Embed(#[from] EmbedError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl EngineError {
    fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::InvalidArgument { field: field.into(), message: message.into() }
    }
}

impl From<FieldError> for EngineError {
    fn from(e: FieldError) -> Self {
        Self::InvalidArgument { field: e.field, message: e.message }
    }
}

pub struct Engine {
    embedder: EmbedHandle,
    store: Arc<dyn VectorStore>,
    counter: Arc<dyn CountTokens>,
    /// The injection detector every candidate line goes through.
    screener: Arc<dyn Screener>,
    /// The learned injection head: scores every event's embedding at ingest
    /// (stored with the record); packing flags what scored at or above its
    /// threshold. `None`: rules only.
    head: Option<Arc<InjectionHead>>,
    limits: EngineLimits,
    ranking: RankingOptions,
    /// Recent query vectors by SHA-256(user id NUL query text): an
    /// orchestrator often asks twice in one turn (retry, second purpose). Keyed
    /// per person, so a query's speed never reveals what someone else asked;
    /// the key holds no query text.
    query_cache: Option<quick_cache::sync::Cache<[u8; 32], CachedQuery>>,
    /// Orders this replica's ledger read-modify-writes, so versions count up
    /// without gaps under concurrent SetConsent calls for the same key.
    consent_lock: tokio::sync::Mutex<()>,
    /// Per-person fences (striped by a hash of the user id): every call
    /// that reads or writes a person's data holds their stripe shared for
    /// its whole length (ingest through its consent re-check, get_context
    /// through its access record); erasure and consent changes hold it
    /// exclusively. So no call that started before an erasure writes
    /// anything after it began, and no ingest is between its consent check
    /// and its re-check while a revocation purges.
    fences: Vec<tokio::sync::RwLock<()>>,
    /// Feed item vectors by SHA-256 of the item text (items are the
    /// orchestrator's catalogue, not a person's data, so the cache is
    /// shared across people).
    item_cache: Option<quick_cache::sync::Cache<[u8; 32], Arc<Vec<f32>>>>,
}

/// Stripes of `Engine::fences`: erasures and consent changes are rare, so
/// a collision only makes another person's calls wait a few milliseconds.
const FENCE_STRIPES: usize = 256;

/// A cached query vector and whose it is (SHA-256 of the user id), so an
/// erasure can drop the person's entries without the cache keeping ids.
#[derive(Clone)]
struct CachedQuery {
    user: [u8; 32],
    vector: Arc<Vec<f32>>,
}

fn user_digest(user_id: &str) -> [u8; 32] {
    Sha256::digest(user_id.as_bytes()).into()
}

fn stripe(user_id: &str) -> usize {
    let digest = user_digest(user_id);
    usize::from(u16::from_le_bytes([digest[0], digest[1]])) % FENCE_STRIPES
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("embedder", &self.embedder)
            .field("limits", &self.limits)
            .field("ranking", &self.ranking)
            .finish()
    }
}

/// Hex sha256 of the event's canonical JSON (struct field order, sorted maps).
pub fn content_hash(event: &ActivityEvent) -> String {
    let bytes = serde_json::to_vec(event).unwrap_or_default();
    hex::encode(Sha256::digest(bytes))
}

/// Result of a consent change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentChange {
    pub grant: ConsentGrant,
    pub changed: bool,
    pub purged_events: usize,
    /// The physical purge of the purged events; 0 when none were purged.
    pub purge_ticket: u64,
}

/// What `erase_user` removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErasureReceipt {
    pub user_id: String,
    pub events_removed: usize,
    pub consents_removed: usize,
    pub access_records_removed: usize,
    pub erased_at: i64,
    /// The user's event points, ledger entries and access records counted
    /// in the store after erasure (0 each).
    pub remaining_points: usize,
    pub remaining_consents: usize,
    pub remaining_access_records: usize,
    /// The physical purge that follows (`Engine::erasure_status`).
    pub purge_ticket: u64,
    pub purge_state: PurgeState,
    /// `erased_at` + [`PURGE_BOUND_SECS`].
    pub purge_due_by: i64,
}

/// The bound the engine promises between an erasure (or a revocation
/// purge) and its physical purge, in seconds. A purge pass starts at once
/// and passes coalesce; README "Erasure" gives the measured pass times.
pub const PURGE_BOUND_SECS: i64 = 60;

impl Engine {
    pub fn new(
        embedder: EmbedHandle,
        store: Arc<dyn VectorStore>,
        counter: Arc<dyn CountTokens>,
        config: EngineConfig,
    ) -> Self {
        Self {
            embedder,
            store,
            counter,
            screener: Arc::new(RuleScreener),
            head: None,
            limits: config.limits,
            ranking: config.ranking,
            query_cache: (config.query_cache > 0).then(|| quick_cache::sync::Cache::new(config.query_cache)),
            consent_lock: tokio::sync::Mutex::new(()),
            fences: (0..FENCE_STRIPES).map(|_| tokio::sync::RwLock::new(())).collect(),
            item_cache: (config.item_cache > 0).then(|| quick_cache::sync::Cache::new(config.item_cache)),
        }
    }

    /// The same engine with another injection detector (the rule-based
    /// `ce_screen::RuleScreener` by default).
    pub fn with_screener(mut self, screener: Arc<dyn Screener>) -> Self {
        self.screener = screener;
        self
    }

    /// The same engine with a learned injection head (none by default
    /// here; the server's composition root installs the shipped one).
    pub fn with_injection_head(mut self, head: Option<Arc<InjectionHead>>) -> Self {
        self.head = head;
        self
    }

    pub fn injection_head(&self) -> Option<&InjectionHead> {
        self.head.as_deref()
    }

    pub fn ranking(&self) -> &RankingOptions {
        &self.ranking
    }

    pub fn limits(&self) -> &EngineLimits {
        &self.limits
    }

    pub fn embedder(&self) -> &EmbedHandle {
        &self.embedder
    }

    fn fence(&self, user_id: &str) -> &tokio::sync::RwLock<()> {
        &self.fences[stripe(user_id)]
    }

    /// Shared fences of several people, taken in stripe order (so two
    /// callers never wait on each other in a cycle).
    async fn fence_shared(&self, user_ids: &[String]) -> Vec<tokio::sync::RwLockReadGuard<'_, ()>> {
        let stripes: std::collections::BTreeSet<usize> = user_ids.iter().map(|u| stripe(u)).collect();
        let mut guards = Vec::with_capacity(stripes.len());
        for i in stripes {
            guards.push(self.fences[i].read().await);
        }
        guards
    }

    fn user_id(&self, field: &str, user_id: &str) -> Result<(), EngineError> {
        Ok(validate_user_id(field, user_id, &self.limits.event)?)
    }

    async fn snapshots(&self, user_ids: Vec<String>) -> Result<HashMap<String, ConsentSnapshot>, EngineError> {
        let grants = self.store.consents(user_ids.clone()).await?;
        let mut by_user: HashMap<String, Vec<ConsentGrant>> = HashMap::new();
        for grant in grants {
            by_user.entry(grant.user_id.clone()).or_default().push(grant);
        }
        Ok(user_ids
            .into_iter()
            .map(|user| {
                let grants = by_user.remove(&user).unwrap_or_default();
                (user.clone(), ConsentSnapshot::new(user, grants))
            })
            .collect())
    }

    /// Validates every event, checks consent, stores the admitted ones, and
    /// reports per event.
    ///
    /// All-or-nothing for the admitted events: they are embedded together and
    /// written in one store operation, so an overload or store failure returns
    /// an error with nothing written, never a half-applied batch.
    ///
    /// Consent is checked before the write and again after it: an event whose
    /// consent was revoked while it was being embedded is deleted again and
    /// reported as `NoConsent`, so a revocation's purge cannot be undone by a
    /// write that was already in flight.
    pub async fn ingest(&self, events: Vec<ActivityEvent>, now: i64) -> Result<Vec<EventOutcome>, EngineError> {
        if events.len() > self.limits.max_batch_events {
            return Err(EngineError::invalid(
                "events",
                format!("at most {} events per request, got {}", self.limits.max_batch_events, events.len()),
            ));
        }
        let mut outcomes = Vec::with_capacity(events.len());
        let mut seen = HashSet::with_capacity(events.len());
        let mut valid = Vec::new();
        for (index, event) in events.into_iter().enumerate() {
            if let Err(e) = event.validate(&self.limits.event, now) {
                outcomes.push(Some(EventOutcome::Rejected {
                    reason: RejectReason::InvalidField,
                    field: e.field,
                    message: e.message,
                }));
                continue;
            }
            let id = point_id(&event.source_id, &event.event_id);
            if !seen.insert(id) {
                outcomes.push(Some(EventOutcome::Rejected {
                    reason: RejectReason::DuplicateInBatch,
                    field: "event_id".into(),
                    message: format!("({}, {}) appears earlier in this request", event.source_id, event.event_id),
                }));
                continue;
            }
            outcomes.push(None);
            valid.push((index, id, event));
        }
        let users: Vec<String> =
            valid.iter().map(|(_, _, e)| e.user_id.clone()).collect::<HashSet<_>>().into_iter().collect();
        // Held until the consent re-check below: a revocation or erasure of
        // one of these people waits for this batch (and then purges it), so
        // no event is between its check and its re-check while they run.
        let _fences = self.fence_shared(&users).await;
        let snapshots = self.snapshots(users.clone()).await?;
        let mut admitted = Vec::new();
        // A re-sent event now flagged LDU withdraws the copy stored earlier.
        let mut withdrawn = Vec::new();
        for (index, id, event) in valid {
            let decision =
                snapshots.get(&event.user_id).map_or(Err(IngestDenial::NoConsent), |s| s.ingest_decision(&event));
            match decision {
                Ok(()) => {
                    let text = verbalize(&event);
                    let record = EventRecord {
                        content_hash: content_hash(&event),
                        event,
                        text,
                        ingested_at: now,
                        injection_score: None,
                        injection_head: None,
                    };
                    admitted.push((index, id, record));
                }
                Err(denial) => {
                    if denial == IngestDenial::LimitedDataUse {
                        withdrawn.push(id);
                    }
                    outcomes[index] = Some(denied(denial, &event));
                }
            }
        }
        if !withdrawn.is_empty() {
            self.store.delete_ids(withdrawn).await?;
            self.store.schedule_purge().await?;
        }
        if !admitted.is_empty() {
            let texts = admitted.iter().map(|(_, _, r)| r.text.clone()).collect();
            let vectors = self.embedder.embed(texts).await?;
            let head = self.head.as_deref();
            let points = admitted
                .iter()
                .zip(vectors)
                .map(|((_, id, record), vector)| {
                    let mut record = record.clone();
                    record.injection_score = head.map(|h| h.probability(&vector, &record.text));
                    record.injection_head = head.map(|h| h.id().to_string());
                    StoredPoint { id: *id, vector, record }
                })
                .collect();
            self.store.upsert(points).await?;
            let after = self.snapshots(users).await?;
            let mut lost = Vec::new();
            for (index, id, record) in admitted {
                let still =
                    after.get(&record.event.user_id).is_some_and(|s| s.any_purpose_granted(&record.event.source_id));
                if still {
                    outcomes[index] = Some(EventOutcome::Accepted { point_id: id.to_string(), text: record.text });
                } else {
                    lost.push(id);
                    outcomes[index] = Some(denied(IngestDenial::NoConsent, &record.event));
                }
            }
            if !lost.is_empty() {
                tracing::info!(events = lost.len(), "consent revoked during ingest; removing the events again");
                self.store.delete_ids(lost).await?;
                self.store.schedule_purge().await?;
            }
        }
        let outcomes: Vec<EventOutcome> = outcomes.into_iter().flatten().collect();
        record_ingest(&outcomes);
        Ok(outcomes)
    }

    /// Checks a raw request and turns it into a [`ContextQuery`] and the
    /// ranking options it asks for.
    pub fn validate_context(&self, request: &ContextRequest) -> Result<(ContextQuery, RankingOptions), EngineError> {
        let limits = &self.limits;
        self.user_id("user_id", &request.user_id)?;
        let purpose = request.purpose.ok_or_else(|| {
            EngineError::invalid("purpose", "required (CHAT_ASSISTANT or FEED_RANKING); there is no default")
        })?;
        let query = request.query.trim();
        if query.is_empty() {
            return Err(EngineError::invalid("query", "required"));
        }
        if query.chars().count() > limits.max_query_chars {
            return Err(EngineError::invalid("query", format!("longer than {} characters", limits.max_query_chars)));
        }
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
        if let (Some(start), Some(end)) = (request.start_time, request.end_time) {
            if start > end {
                return Err(EngineError::invalid("time_window", format!("start_time {start} is after end_time {end}")));
            }
        }
        for (field, values) in [
            ("event_names", &request.event_names),
            ("event_families", &request.event_families),
            ("source_ids", &request.source_ids),
        ] {
            if values.len() > limits.max_filter_values {
                return Err(EngineError::invalid(field, format!("at most {} entries", limits.max_filter_values)));
            }
            for (i, v) in values.iter().enumerate() {
                if v.is_empty() || v.len() > limits.event.max_id_len || !v.bytes().all(|b| b.is_ascii_graphic()) {
                    return Err(EngineError::invalid(
                        format!("{field}[{i}]"),
                        format!(
                            "expected a non-empty id of at most {} visible ASCII characters without spaces, got {v:?}",
                            limits.event.max_id_len
                        ),
                    ));
                }
            }
        }
        if let Some(bad) = request.event_families.iter().find(|f| EventFamily::from_name(f).is_none()) {
            let known: Vec<&str> = EventFamily::ALL.iter().map(|f| f.as_str()).collect();
            return Err(EngineError::invalid(
                "event_families",
                format!("unknown event family {bad:?}; known: {}", known.join(", ")),
            ));
        }
        let options = self.ranking.with(&request.ranking)?;
        let query = ContextQuery {
            user_id: request.user_id.clone(),
            purpose,
            text: query.to_string(),
            limit: if request.max_snippets == 0 { limits.default_snippets } else { request.max_snippets },
            time_window: ce_core::domain::TimeWindow { start: request.start_time, end: request.end_time },
            event_names: request.event_names.clone(),
            event_families: request.event_families.clone(),
            source_ids: request.source_ids.clone(),
            max_tokens: if request.max_tokens == 0 { limits.default_max_tokens } else { request.max_tokens },
        };
        Ok((query, options))
    }

    /// The context for one chat turn: the user's permitted events that best
    /// serve the query, ranked, collapsed, diversified, screened for
    /// injection and packed into the token budget, plus the rendered block.
    ///
    /// The consent ledger is read when the query starts; only sources granted
    /// for the purpose at that moment are searched, and every candidate is
    /// checked again against that snapshot before ranking. An unknown user,
    /// or one who permitted nothing for the purpose, gets an empty answer.
    /// Every call is recorded in the access log (with every event a returned
    /// snippet stands for) before the answer is returned.
    pub async fn get_context(&self, request: ContextRequest, now: i64) -> Result<ContextAnswer, EngineError> {
        let started = Instant::now();
        let (query, options) = self.validate_context(&request)?;
        // Held through the access record: an erasure that begins after this
        // call started waits for it, and one that began before makes this
        // call wait and then find nothing.
        let _fence = self.fence(&query.user_id).read().await;
        let t = Instant::now();
        let snapshot = self.snapshots(vec![query.user_id.clone()]).await?.remove(&query.user_id).unwrap_or_default();
        let ledger_us = micros(t);
        let mut answer = match retrieval_scope(&query, &snapshot) {
            None => {
                metrics().consent_denials.with_label_values(&["get_context"]).inc();
                ContextAnswer::default()
            }
            Some((scope, permitted)) => {
                self.answer(&query, &options, scope, &permitted, request.exact_search, now).await?
            }
        };
        answer.stats.token_budget = query.max_tokens;
        answer.stats.ledger_us = ledger_us;
        let mut events = Vec::new();
        for s in &answer.snippets {
            let p = &s.provenance;
            for event_id in std::iter::once(&p.event_id).chain(&s.collapsed_event_ids) {
                events.push(AccessedEvent {
                    source_id: p.source_id.clone(),
                    event_id: event_id.clone(),
                    consent_version: p.consent_version,
                });
            }
        }
        if !snapshot.knows_user() {
            // Nobody with this id has a ledger entry (never granted anything,
            // or erased): nothing of theirs exists to be disclosed, so no
            // record is kept that would hold the id again.
            answer.stats.total_us = micros(started);
            return Ok(answer);
        }
        let record = AccessRecord {
            access_id: Uuid::new_v4().to_string(),
            user_id: query.user_id.clone(),
            caller: request.caller,
            purpose: query.purpose,
            at: now,
            events,
        };
        let t = Instant::now();
        self.store.append_access(record).await?;
        answer.stats.access_log_us = micros(t);
        answer.stats.total_us = micros(started);
        Ok(answer)
    }

    /// The query's vector, from the cache when this person asked the same
    /// text recently; `true` when it was cached.
    async fn query_vector(&self, user_id: &str, text: &str) -> Result<(Vec<f32>, bool), EngineError> {
        let Some(cache) = &self.query_cache else {
            return Ok((self.embedder.embed_one(text.to_string()).await?, false));
        };
        use sha2::Digest;
        let mut hasher = sha2::Sha256::new();
        hasher.update(user_id.as_bytes());
        hasher.update([0u8]);
        hasher.update(text.as_bytes());
        let key: [u8; 32] = hasher.finalize().into();
        if let Some(cached) = cache.get(&key) {
            metrics().query_cache.with_label_values(&["hit"]).inc();
            return Ok((cached.vector.as_ref().clone(), true));
        }
        metrics().query_cache.with_label_values(&["miss"]).inc();
        let vector = self.embedder.embed_one(text.to_string()).await?;
        cache.insert(key, CachedQuery { user: user_digest(user_id), vector: Arc::new(vector.clone()) });
        Ok((vector, false))
    }

    async fn answer(
        &self,
        query: &ContextQuery,
        options: &RankingOptions,
        scope: Scope,
        permitted: &BTreeMap<String, u64>,
        exact: bool,
        now: i64,
    ) -> Result<ContextAnswer, EngineError> {
        let mut stats = ContextStats::default();
        let t = Instant::now();
        let vector = match options.mode {
            // The sparse list needs no embedding; ranking then compares
            // candidates by their stored vectors only.
            RetrievalMode::Sparse => Vec::new(),
            RetrievalMode::Dense | RetrievalMode::Hybrid => {
                let (vector, cached) = self.query_vector(&query.user_id, &query.text).await?;
                stats.embedding_cached = cached;
                vector
            }
        };
        stats.embed_us = micros(t);

        let t = Instant::now();
        let search = SearchRequest {
            vector: vector.clone(),
            text: query.text.clone(),
            scope,
            limit: options.candidates.max(query.limit),
            mode: options.mode,
            exact,
        };
        let list_len = search.limit;
        let found = self.store.search(search).await?;
        stats.search_us = micros(t);
        let lists_full = found.dense.len() >= list_len || found.sparse.len() >= list_len;

        let (candidates, removed) = merge(&query.user_id, permitted, found);
        stats.consent_removed = removed;
        // Ranking and packing are CPU work (screening, tokenising, MMR):
        // off the async runtime, so one large request cannot stall others.
        let (options, limit, max_tokens) = (*options, query.limit, query.max_tokens);
        let (counter, screener, head) = (self.counter.clone(), self.screener.clone(), self.head.clone());
        let (ranking_stats, packed, rank_us, render_us) = tokio::task::spawn_blocking(move || {
            let t = Instant::now();
            let mut ranking = rank::rank(&vector, candidates, &options, now);
            ranking.lists_full = lists_full;
            let rank_us = micros(t);
            let t = Instant::now();
            let packed = rank::pack_with(
                &ranking,
                limit,
                max_tokens,
                options.injection_policy,
                &*counter,
                &*screener,
                head.as_deref(),
            );
            (ranking.stats, packed, rank_us, micros(t))
        })
        .await
        .map_err(|e| EngineError::Store(StoreError::Backend { operation: "rank", message: e.to_string() }))?;
        stats.candidates = ranking_stats.candidates;
        stats.below_min_score = ranking_stats.below_min_score;
        stats.collapsed = ranking_stats.collapsed;
        stats.rank_us = rank_us;
        stats.render_us = render_us;
        stats.flagged = packed.flagged;
        stats.dropped_injection = packed.dropped_injection;
        stats.dropped_budget = packed.dropped_budget;
        stats.tokens_used = packed.tokens;
        let m = metrics();
        m.consent_post_check_removed.inc_by(removed as u64);
        m.snippets.with_label_values(&["returned"]).inc_by(packed.snippets.len() as u64);
        m.snippets.with_label_values(&["flagged"]).inc_by(packed.flagged as u64);
        m.snippets.with_label_values(&["dropped_injection"]).inc_by(packed.dropped_injection as u64);
        m.snippets.with_label_values(&["dropped_budget"]).inc_by(packed.dropped_budget as u64);
        Ok(ContextAnswer { snippets: packed.snippets, rendered_context: packed.rendered, stats })
    }

    /// Stores pre-written documents as one user's events from one source,
    /// bypassing the event templates: for evaluating retrieval on document
    /// collections (BEIR) through the same store and ranking as activity.
    /// The (user, source) pair must already be permitted, as for any event.
    /// Each document becomes a custom `Document` event; `event_time` is
    /// `now`.
    pub async fn index_documents(
        &self,
        user_id: &str,
        source_id: &str,
        documents: Vec<(String, String)>,
        now: i64,
    ) -> Result<usize, EngineError> {
        self.user_id("user_id", user_id)?;
        let snapshot = self.snapshots(vec![user_id.to_string()]).await?.remove(user_id).unwrap_or_default();
        if !snapshot.any_purpose_granted(source_id) {
            return Err(EngineError::invalid("source_id", format!("no purpose is granted for {user_id}/{source_id}")));
        }
        let mut records = Vec::with_capacity(documents.len());
        for (doc_id, text) in documents {
            let event = ActivityEvent {
                event_id: doc_id,
                user_id: user_id.to_string(),
                source_id: source_id.to_string(),
                event_name: "Document".into(),
                event_time: now,
                action_source: "system_generated".into(),
                ..Default::default()
            };
            event.validate(&self.limits.event, now)?;
            let id = point_id(&event.source_id, &event.event_id);
            records.push((
                id,
                EventRecord {
                    content_hash: content_hash(&event),
                    event,
                    text,
                    ingested_at: now,
                    injection_score: None,
                    injection_head: None,
                },
            ));
        }
        let vectors = self.embedder.embed(records.iter().map(|(_, r)| r.text.clone()).collect()).await?;
        let n = records.len();
        let head = self.head.as_deref();
        let points = records
            .into_iter()
            .zip(vectors)
            .map(|((id, mut record), vector)| {
                record.injection_score = head.map(|h| h.probability(&vector, &record.text));
                record.injection_head = head.map(|h| h.id().to_string());
                StoredPoint { id, vector, record }
            })
            .collect();
        self.store.upsert(points).await?;
        Ok(n)
    }

    /// Grants or revokes one `(user, source, purpose)`. Idempotent. When a
    /// revoke leaves no purpose granted for `(user, source)`, the pair's
    /// events are deleted before this returns (so a later re-grant finds
    /// nothing to resurrect).
    pub async fn set_consent(
        &self,
        user_id: &str,
        source_id: &str,
        purpose: Option<Purpose>,
        state: Option<ConsentState>,
        now: i64,
    ) -> Result<ConsentChange, EngineError> {
        self.user_id("user_id", user_id)?;
        if source_id.is_empty()
            || source_id.len() > self.limits.event.max_id_len
            || !source_id.bytes().all(|b| b.is_ascii_graphic())
        {
            return Err(EngineError::invalid("source_id", "required: visible ASCII, at most 128 bytes"));
        }
        let purpose = purpose.ok_or_else(|| EngineError::invalid("purpose", "required"))?;
        let state = state.ok_or_else(|| EngineError::invalid("state", "required (GRANTED or REVOKED)"))?;
        // Exclusive: no ingest of this person is between its consent check
        // and its re-check while the ledger changes and the pair is purged.
        let _fence = self.fence(user_id).write().await;
        let _guard = self.consent_lock.lock().await;
        let pair = || Scope::user_sources(user_id, vec![source_id.to_string()]);
        let mut purged_events = 0;
        let mut attempts = 0;
        let deadline = Instant::now() + self.limits.consent_retry_budget;
        // Compare-and-set on the entry's version: another engine replica
        // may change the same key between our read and our write; then we
        // read again and decide again (its change counted, ours on top).
        let (grant, changed, current) = loop {
            let current = self.store.consents(vec![user_id.to_string()]).await?;
            let previous = current.iter().find(|g| g.source_id == source_id && g.purpose == purpose).cloned();
            let transition = ConsentGrant::transition(previous.as_ref(), (user_id, source_id, purpose), state, now);
            // Already in the asked state, as far as this read shows: on a
            // replicated ledger the entry may come from a write that failed
            // after reaching only some replicas (its caller was told
            // UNAVAILABLE and is now retrying), so it is written again, as it
            // is, to be on every replica before this call says OK.
            let (write, changed) = match transition {
                Some(next) => (next, true),
                None => (previous.clone().ok_or_else(|| EngineError::invalid("state", "no change"))?, false),
            };
            if changed
                && state == ConsentState::Granted
                && !current.iter().any(|g| g.source_id == source_id && g.is_granted())
            {
                // The pair goes from no grant to granted. Events it holds now
                // were stored without a grant in force: written by an ingest
                // whose re-check never ran (a crash between its write and its
                // re-check, or another replica's ingest racing a revocation).
                // They must not come back with the new grant.
                if self.store.count(pair()).await? > 0 {
                    let removed = self.store.delete(pair()).await?;
                    purged_events += removed;
                    tracing::warn!(removed, "events stored without a grant removed before a re-grant");
                }
            }
            if self.store.put_consent_if(write.clone(), previous.map(|p| p.version)).await? {
                break (write, changed, current);
            }
            attempts += 1;
            // Back off a random 0..2^attempts ms (at most 128 ms): two
            // replicas retrying in lockstep can otherwise lose to each other
            // every time. The limit is a time, not a count: a replica that
            // keeps writing the same key wins most rounds against one that
            // waits, so a count is spent while the other is still busy (a
            // 2-core host saw eight losses in a row, 2 of 4 CI runs).
            let wait = cas_backoff(attempts);
            if Instant::now() + wait >= deadline {
                tracing::warn!(attempts, "consent entry kept changing concurrently; giving up");
                return Err(StoreError::Conflict { operation: "set consent" }.into());
            }
            tracing::info!(attempts, "consent entry changed concurrently; reading it again");
            tokio::time::sleep(wait).await;
        };
        let mut deleted = purged_events > 0;
        if state == ConsentState::Revoked {
            let still = current.iter().any(|g| g.source_id == source_id && g.purpose != purpose && g.is_granted());
            if !still {
                purged_events += self.store.delete(pair()).await?;
                deleted = true;
            }
        }
        // Every delete is purged physically; a purge that finds nothing to
        // rebuild is cheap. The ticket is reported when events went.
        let ticket = if deleted { self.store.schedule_purge().await? } else { 0 };
        let purge_ticket = if purged_events > 0 { ticket } else { 0 };
        Ok(ConsentChange { grant, changed, purged_events, purge_ticket })
    }

    /// Where the physical purge of a ticket (from an erasure receipt or a
    /// consent change) stands.
    pub async fn erasure_status(&self, ticket: u64) -> Result<PurgeState, EngineError> {
        if ticket == 0 {
            return Err(EngineError::invalid("purge_ticket", "required (from EraseUser or SetConsent)"));
        }
        match self.store.purge_status(ticket).await? {
            PurgeState::Unknown => Err(EngineError::invalid("purge_ticket", format!("no purge {ticket} was issued"))),
            state => Ok(state),
        }
    }

    pub async fn list_consents(&self, user_id: &str) -> Result<Vec<ConsentGrant>, EngineError> {
        self.user_id("user_id", user_id)?;
        let mut grants = self.store.consents(vec![user_id.to_string()]).await?;
        grants.retain(|g| g.user_id == user_id);
        grants.sort_by(|a, b| (&a.source_id, a.purpose).cmp(&(&b.source_id, b.purpose)));
        Ok(grants)
    }

    /// Removes every event, consent record and access record of the user,
    /// drops their cached query vectors, and schedules the physical purge.
    ///
    /// Fenced: calls for this person that started earlier finish first;
    /// calls that arrive meanwhile wait and then find nothing (an unknown
    /// person gets no access record). Consents go first, so no ingest can
    /// store new events for the user while the rest is deleted. The counts
    /// of what remains are read from the store afterwards.
    pub async fn erase_user(&self, user_id: &str, now: i64) -> Result<ErasureReceipt, EngineError> {
        self.user_id("user_id", user_id)?;
        let _fence = self.fence(user_id).write().await;
        let consents_removed = {
            let _guard = self.consent_lock.lock().await;
            self.store.delete_consents(user_id.to_string()).await?
        };
        let events_removed = self.store.delete(Scope::whole_user(user_id)).await?;
        let access_records_removed = self.store.delete_access(user_id.to_string()).await?;
        if let Some(cache) = &self.query_cache {
            let digest = user_digest(user_id);
            cache.retain(|_, cached| cached.user != digest);
        }
        let remaining_points = self.store.count(Scope::whole_user(user_id)).await?;
        let remaining_consents =
            self.store.consents(vec![user_id.to_string()]).await?.iter().filter(|g| g.user_id == user_id).count();
        let remaining_access_records = self.store.count_access(user_id.to_string()).await?;
        let purge_ticket = self.store.schedule_purge().await?;
        let purge_state = self.store.purge_status(purge_ticket).await?;
        tracing::info!(
            events_removed,
            consents_removed,
            access_records_removed,
            remaining_points,
            remaining_consents,
            remaining_access_records,
            purge_ticket,
            "user erased"
        );
        Ok(ErasureReceipt {
            user_id: user_id.to_string(),
            events_removed,
            consents_removed,
            access_records_removed,
            erased_at: now,
            remaining_points,
            remaining_consents,
            remaining_access_records,
            purge_ticket,
            purge_state,
            purge_due_by: now + PURGE_BOUND_SECS,
        })
    }

    /// The user's access records, most recent first.
    pub async fn explain_access(&self, user_id: &str, limit: usize) -> Result<Vec<AccessRecord>, EngineError> {
        self.user_id("user_id", user_id)?;
        if limit > 1000 {
            return Err(EngineError::invalid("limit", format!("at most 1000, got {limit}")));
        }
        let limit = if limit == 0 { 100 } else { limit };
        Ok(self.store.access_log(user_id.to_string(), limit).await?)
    }

    /// One page of the user's stored events (data portability).
    pub async fn export_page(&self, user_id: &str, from: Option<Uuid>, limit: usize) -> Result<Page, EngineError> {
        self.user_id("user_id", user_id)?;
        Ok(self.store.scroll(Scope::whole_user(user_id), from, limit.clamp(1, 1000)).await?)
    }

    /// Embeds arbitrary texts with the engine's model.
    pub async fn embed(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, EngineError> {
        if texts.is_empty() {
            return Err(EngineError::invalid("texts", "at least one text is required"));
        }
        if texts.len() > self.limits.max_embed_texts {
            return Err(EngineError::invalid(
                "texts",
                format!("at most {} texts per request, got {}", self.limits.max_embed_texts, texts.len()),
            ));
        }
        if let Some(i) = texts.iter().position(|t| t.chars().count() > self.limits.max_embed_chars) {
            return Err(EngineError::invalid(
                format!("texts[{i}]"),
                format!("longer than {} characters", self.limits.max_embed_chars),
            ));
        }
        Ok(self.embedder.embed(texts).await?)
    }

    /// Flushes the store (shutdown, tests).
    pub async fn flush(&self) -> Result<(), EngineError> {
        Ok(self.store.flush().await?)
    }
}

/// One candidate per distinct point, with its rank in each list; hits that
/// fail the consent post-check never reach ranking (returned: how many).
fn merge(user_id: &str, permitted: &BTreeMap<String, u64>, found: Candidates) -> (Vec<Candidate>, usize) {
    let mut removed = 0;
    let mut out: Vec<Candidate> = Vec::with_capacity(found.dense.len() + found.sparse.len());
    let mut index: HashMap<Uuid, usize> = HashMap::new();
    let lists = [(true, found.dense), (false, found.sparse)];
    for (dense, hits) in lists {
        for (rank, ScoredRecord { id, score, record, vector }) in hits.into_iter().enumerate() {
            let consent_version = match post_check(user_id, permitted, &record.event.user_id, &record.event.source_id) {
                PostCheck::Allowed { consent_version } => consent_version,
                verdict => {
                    // The store filter should have made this impossible.
                    tracing::error!(alarm = "consent_post_check", ?verdict, point = %id, "hit dropped");
                    removed += 1;
                    continue;
                }
            };
            let slot = *index.entry(id).or_insert_with(|| {
                out.push(Candidate {
                    point_id: id.to_string(),
                    record,
                    vector,
                    dense_rank: None,
                    sparse_rank: None,
                    sparse_score: None,
                    consent_version,
                });
                out.len() - 1
            });
            if dense {
                out[slot].dense_rank = Some(rank);
            } else {
                out[slot].sparse_rank = Some(rank);
                out[slot].sparse_score = Some(score);
            }
        }
    }
    (out, removed)
}

/// Counts one ingest request's outcomes by reason.
fn record_ingest(outcomes: &[EventOutcome]) {
    let m = metrics();
    for outcome in outcomes {
        let (result, reason) = match outcome {
            EventOutcome::Accepted { .. } => ("accepted", "none"),
            EventOutcome::Rejected { reason, .. } => ("rejected", reason.label()),
        };
        m.ingest_events.with_label_values(&[result, reason]).inc();
        if let EventOutcome::Rejected { reason: RejectReason::NoConsent, .. } = outcome {
            m.consent_denials.with_label_values(&["ingest"]).inc();
        }
    }
}

fn denied(denial: IngestDenial, event: &ActivityEvent) -> EventOutcome {
    match denial {
        IngestDenial::NoConsent => EventOutcome::Rejected {
            reason: RejectReason::NoConsent,
            field: "user_id".into(),
            message: format!("no purpose is granted for user {} and source {}", event.user_id, event.source_id),
        },
        IngestDenial::LimitedDataUse => EventOutcome::Rejected {
            reason: RejectReason::LimitedDataUse,
            field: "data_processing_options".into(),
            message: "the event is flagged Limited Data Use (LDU) and is not stored".into(),
        },
    }
}

/// A random wait before compare-and-set attempt `attempt + 1`: uniform in
/// `0..2^attempt` ms, the window capped at 128 ms.
fn cas_backoff(attempt: u32) -> std::time::Duration {
    let window_us = 1_000u64 << attempt.min(7);
    let random = u64::from_le_bytes(Uuid::new_v4().as_bytes()[..8].try_into().expect("8 bytes"));
    std::time::Duration::from_micros(random % window_us)
}
