//! In-memory stand-ins for the engine's collaborators, for the engine's unit
//! tests only: a store that keeps everything in maps, a deterministic hashing
//! embedder, and a word-counting token counter. They make engine logic
//! testable in milliseconds without the model or a store on disk; every
//! behaviour a user sees is still tested on the real model, the real Qdrant
//! Edge store and real gRPC (`tests/it`).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use async_trait::async_trait;
use ce_core::domain::{AccessRecord, ConsentGrant, RetrievalMode, Scope};
use ce_core::rank::CountTokens;
use ce_embed::{EmbedError, Embedder};
use ce_store::{
    AccessLog, Candidates, ConsentLedger, EventStore, Page, PurgeState, ScoredRecord, SearchRequest, StoreError,
    StoredPoint, VectorStore,
};
use parking_lot::Mutex;
use uuid::Uuid;

/// Runs once, right after the next event upsert (while the engine is between
/// its write and its consent re-check).
pub type UpsertHook = Box<dyn FnOnce(&MemoryStore) + Send>;

/// Everything in maps, with the same scope semantics as the Qdrant filter
/// (`ce_store::payload::scope_filter_json`): the user always, sources when
/// listed (an empty list matches nothing), names, families, an inclusive
/// time window.
#[derive(Default)]
pub struct MemoryStore {
    pub events: Mutex<BTreeMap<Uuid, StoredPoint>>,
    pub grants: Mutex<Vec<ConsentGrant>>,
    pub access: Mutex<Vec<AccessRecord>>,
    /// Search ignores the scope entirely: a broken backend filter, for the
    /// consent post-check.
    pub ignore_scope_in_search: Mutex<bool>,
    pub after_upsert: Mutex<Option<UpsertHook>>,
    /// Operations in call order (`upsert`, `delete`, `put_consent`, ...).
    pub calls: Mutex<Vec<&'static str>>,
    /// The next ledger read fails (a crash at that point, for the engine).
    pub fail_next_consents: Mutex<bool>,
    /// Purges asked for.
    pub purges: Mutex<u64>,
    /// The next this many conditional ledger writes lose their race (as if
    /// another replica wrote first) and write nothing.
    pub lose_cas: Mutex<u32>,
}

impl MemoryStore {
    fn page(&self, scope: &Scope, from: Option<Uuid>, limit: usize) -> Page {
        let ignore = *self.ignore_scope_in_search.lock();
        let events = self.events.lock();
        let mut rows: Vec<_> = events
            .range(from.unwrap_or(Uuid::nil())..)
            .filter(|(_, p)| ignore || in_scope(scope, p))
            .map(|(id, p)| (*id, p.record.clone(), p.vector.clone()))
            .take(limit + 1)
            .collect();
        let next = (rows.len() > limit).then(|| rows.pop().map(|(id, _, _)| id)).flatten();
        let vectors = rows.iter().map(|(_, _, v)| v.clone()).collect();
        Page { records: rows.into_iter().map(|(id, r, _)| (id, r)).collect(), next, vectors }
    }

    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    fn call(&self, name: &'static str) {
        self.calls.lock().push(name);
    }

    /// Writes a ledger entry directly (as another replica would).
    pub fn set_grant(&self, grant: ConsentGrant) {
        let mut grants = self.grants.lock();
        grants
            .retain(|g| !(g.user_id == grant.user_id && g.source_id == grant.source_id && g.purpose == grant.purpose));
        grants.push(grant);
    }
}

fn in_scope(scope: &Scope, point: &StoredPoint) -> bool {
    scope.admits(&point.record.event)
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_lowercase).collect()
}

#[async_trait]
impl EventStore for MemoryStore {
    async fn upsert(&self, points: Vec<StoredPoint>) -> Result<(), StoreError> {
        self.call("upsert");
        {
            let mut events = self.events.lock();
            for p in points {
                events.insert(p.id, p);
            }
        }
        let hook = self.after_upsert.lock().take();
        if let Some(hook) = hook {
            hook(self);
        }
        Ok(())
    }

    async fn search(&self, request: SearchRequest) -> Result<Candidates, StoreError> {
        self.call("search");
        let ignore = *self.ignore_scope_in_search.lock();
        let events = self.events.lock();
        let hits: Vec<&StoredPoint> = events.values().filter(|p| ignore || in_scope(&request.scope, p)).collect();
        let hit = |p: &StoredPoint, score: f32| ScoredRecord {
            id: p.id,
            score,
            record: p.record.clone(),
            vector: p.vector.clone(),
        };
        let mut out = Candidates::default();
        if matches!(request.mode, RetrievalMode::Dense | RetrievalMode::Hybrid) {
            let mut dense: Vec<ScoredRecord> = hits.iter().map(|p| hit(p, dot(&request.vector, &p.vector))).collect();
            dense.sort_by(|a, b| b.score.total_cmp(&a.score));
            dense.truncate(request.limit);
            out.dense = dense;
        }
        if matches!(request.mode, RetrievalMode::Sparse | RetrievalMode::Hybrid) {
            let query = words(&request.text);
            let mut sparse: Vec<ScoredRecord> = hits
                .iter()
                .map(|p| {
                    let text = words(&p.record.text);
                    hit(p, query.iter().filter(|w| text.contains(w)).count() as f32)
                })
                .filter(|h| h.score > 0.0)
                .collect();
            sparse.sort_by(|a, b| b.score.total_cmp(&a.score));
            sparse.truncate(request.limit);
            out.sparse = sparse;
        }
        Ok(out)
    }

    async fn count(&self, scope: Scope) -> Result<usize, StoreError> {
        self.call("count");
        Ok(self.events.lock().values().filter(|p| in_scope(&scope, p)).count())
    }

    async fn delete(&self, scope: Scope) -> Result<usize, StoreError> {
        self.call("delete");
        let mut events = self.events.lock();
        let before = events.len();
        events.retain(|_, p| !in_scope(&scope, p));
        Ok(before - events.len())
    }

    async fn delete_ids(&self, ids: Vec<Uuid>) -> Result<(), StoreError> {
        self.call("delete_ids");
        let mut events = self.events.lock();
        for id in ids {
            events.remove(&id);
        }
        Ok(())
    }

    async fn scroll(&self, scope: Scope, from: Option<Uuid>, limit: usize) -> Result<Page, StoreError> {
        self.call("scroll");
        let mut page = self.page(&scope, from, limit);
        page.vectors.clear();
        Ok(page)
    }

    async fn scroll_with_vectors(&self, scope: Scope, from: Option<Uuid>, limit: usize) -> Result<Page, StoreError> {
        self.call("scroll");
        Ok(self.page(&scope, from, limit))
    }
}

#[async_trait]
impl ConsentLedger for MemoryStore {
    async fn consents(&self, user_ids: Vec<String>) -> Result<Vec<ConsentGrant>, StoreError> {
        self.call("consents");
        if std::mem::take(&mut *self.fail_next_consents.lock()) {
            return Err(StoreError::Unavailable { operation: "consents", message: "injected".into() });
        }
        Ok(self.grants.lock().iter().filter(|g| user_ids.contains(&g.user_id)).cloned().collect())
    }

    async fn put_consent(&self, grant: ConsentGrant) -> Result<(), StoreError> {
        self.call("put_consent");
        self.set_grant(grant);
        Ok(())
    }

    async fn put_consent_if(&self, grant: ConsentGrant, expected: Option<u64>) -> Result<bool, StoreError> {
        self.call("put_consent");
        {
            let mut lose = self.lose_cas.lock();
            if *lose > 0 {
                *lose -= 1;
                return Ok(false);
            }
        }
        let mut grants = self.grants.lock();
        let stored = grants
            .iter()
            .find(|g| g.user_id == grant.user_id && g.source_id == grant.source_id && g.purpose == grant.purpose)
            .map(|g| g.version);
        if stored != expected {
            return Ok(false);
        }
        grants
            .retain(|g| !(g.user_id == grant.user_id && g.source_id == grant.source_id && g.purpose == grant.purpose));
        grants.push(grant);
        Ok(true)
    }

    async fn delete_consents(&self, user_id: String) -> Result<usize, StoreError> {
        self.call("delete_consents");
        let mut grants = self.grants.lock();
        let before = grants.len();
        grants.retain(|g| g.user_id != user_id);
        Ok(before - grants.len())
    }
}

#[async_trait]
impl AccessLog for MemoryStore {
    async fn append_access(&self, record: AccessRecord) -> Result<(), StoreError> {
        self.call("append_access");
        self.access.lock().push(record);
        Ok(())
    }

    async fn access_log(&self, user_id: String, limit: usize) -> Result<Vec<AccessRecord>, StoreError> {
        self.call("access_log");
        let mut records: Vec<AccessRecord> =
            self.access.lock().iter().filter(|r| r.user_id == user_id).cloned().collect();
        records.sort_by_key(|r| std::cmp::Reverse(r.at));
        records.truncate(limit);
        Ok(records)
    }

    async fn delete_access(&self, user_id: String) -> Result<usize, StoreError> {
        self.call("delete_access");
        let mut access = self.access.lock();
        let before = access.len();
        access.retain(|r| r.user_id != user_id);
        Ok(before - access.len())
    }

    async fn count_access(&self, user_id: String) -> Result<usize, StoreError> {
        Ok(self.access.lock().iter().filter(|r| r.user_id == user_id).count())
    }
}

#[async_trait]
impl VectorStore for MemoryStore {
    async fn flush(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// Nothing is on disk: a purge is done as soon as it is asked for.
    async fn schedule_purge(&self) -> Result<u64, StoreError> {
        let mut purges = self.purges.lock();
        *purges += 1;
        Ok(*purges)
    }

    async fn purge_status(&self, ticket: u64) -> Result<PurgeState, StoreError> {
        Ok(if ticket <= *self.purges.lock() { PurgeState::Purged { at: 0 } } else { PurgeState::Unknown })
    }
}

/// Deterministic bag-of-words embedder: each lower-cased word adds ±1 to one
/// of `dimension` coordinates (FNV-1a hash), then the vector is normalised.
/// Texts sharing words are close; identical texts are identical.
pub struct HashEmbedder {
    pub dimension: usize,
    /// Texts embedded so far, per call (to check batching and caching).
    pub calls: Arc<Mutex<Vec<Vec<String>>>>,
    /// When set, each call waits until the gate is opened (an ingest held
    /// in flight).
    pub gate: Option<Gate>,
}

/// A latch the embedder waits on; `open` releases every waiter.
#[derive(Clone, Default)]
pub struct Gate(Arc<(std::sync::Mutex<bool>, std::sync::Condvar)>);

impl Gate {
    pub fn open(&self) {
        *self.0 .0.lock().unwrap() = true;
        self.0 .1.notify_all();
    }

    fn wait(&self) {
        let mut open = self.0 .0.lock().unwrap();
        while !*open {
            open = self.0 .1.wait(open).unwrap();
        }
    }
}

impl HashEmbedder {
    pub fn new(dimension: usize) -> Self {
        Self { dimension, calls: Arc::default(), gate: None }
    }
}

pub fn hash_vector(text: &str, dimension: usize) -> Vec<f32> {
    let mut v = vec![0f32; dimension];
    for word in words(text) {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in word.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        let sign = if h >> 63 == 0 { 1.0 } else { -1.0 };
        v[(h % dimension as u64) as usize] += sign;
    }
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm == 0.0 {
        v[0] = 1.0;
    } else {
        v.iter_mut().for_each(|x| *x /= norm);
    }
    v
}

impl Embedder for HashEmbedder {
    fn model_id(&self) -> &str {
        "hash-bow"
    }

    fn dimension(&self) -> usize {
        self.dimension
    }

    fn embed(&mut self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        if let Some(gate) = &self.gate {
            gate.wait();
        }
        self.calls.lock().push(texts.iter().map(|t| t.to_string()).collect());
        Ok(texts.iter().map(|t| hash_vector(t, self.dimension)).collect())
    }
}

/// Counts whitespace-separated words.
pub struct WordCounter;

impl CountTokens for WordCounter {
    fn count(&self, text: &str) -> usize {
        text.split_whitespace().count()
    }
}

/// Grants by key, for assertions.
pub fn grants_by_key(store: &MemoryStore) -> HashMap<(String, String), Vec<ConsentGrant>> {
    let mut out: HashMap<(String, String), Vec<ConsentGrant>> = HashMap::new();
    for g in store.grants.lock().iter() {
        out.entry((g.user_id.clone(), g.source_id.clone())).or_default().push(g.clone());
    }
    out
}
