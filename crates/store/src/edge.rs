//! [`VectorStore`] on Qdrant Edge: Qdrant's engine in-process (WAL, segments,
//! payload indexes), one Edge shard per collection under `--data-dir`:
//! `activity/` (event points), `consent/` (the ledger), `access/` (the
//! access log).
//!
//! Qdrant Edge's API is synchronous, so every call runs on tokio's blocking
//! pool. Each shard sits behind a `RwLock`: reads and writes share it (the
//! shard synchronises them itself, and its WAL lock orders writes), while
//! `flush` and `close` take it exclusively, because `EdgeShard::flush`
//! expects to find its inner locks free.
//!
//! Durability: every write returns only after the shard has been flushed
//! (segments, id tracker and payload storage synced to disk). Qdrant Edge
//! 0.7 appends updates to a WAL but never replays it on load, so an update
//! that was applied but not flushed is lost when the process dies; we
//! measured exactly that (kill -9 after ingest: every event gone). Flushes
//! are group commits: writers that arrive while one runs share the next.
//! Events and access records (written by every Ingest and every GetContext)
//! are the exception: they are made durable by a journal of our own per
//! shard (one `fdatasync` instead of a shard flush), and those shards are
//! flushed at checkpoints; see [`super::journal`].

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use parking_lot::RwLock;
use qdrant_edge::bm25_embed::{EdgeBm25, EdgeBm25Config};
use qdrant_edge::{
    CountRequest, Distance, EdgeConfig, EdgeShard, EdgeSparseVectorParams, EdgeVectorParams, Filter, Modifier,
    NamedQuery, PayloadFieldSchema, PointId, PointInsertOperations, PointOperations, PointStruct, QueryEnum,
    ScoredPoint, ScrollRequest, SearchParams, SearchRequest as EdgeSearch, UpdateOperation, VectorInternal,
    VectorStructInternal, WithPayloadInterface, WithVector,
};
use serde_json::{json, Map, Value};
use uuid::Uuid;

use crate::journal::{self, Journal};
use crate::payload::{
    access_indexes, access_payload, consent_indexes, consent_payload, consent_point_id, event_indexes, event_page,
    event_payload, from_payload, scope_filter_json, user_filter_json, users_filter_json,
};
use crate::{
    AccessLog, Candidates, CollectionKind, ConsentLedger, EventStore, Page, PurgeState, RawPoint, RawStore,
    ScoredRecord, SearchRequest, StoreError, StoreManifest, StoredPoint, VectorStore, DENSE_VECTOR, SCHEMA_VERSION,
    SPARSE_VECTOR,
};
use ce_core::domain::{AccessRecord, ConsentGrant, EventRecord, RetrievalMode, Scope};

#[derive(Debug, Clone)]
pub struct EdgeOptions {
    pub data_dir: PathBuf,
    /// Dimension of the embedding model; checked against an existing store.
    pub dimension: usize,
    /// Model identity, recorded at creation and checked on every open.
    pub model_id: String,
    /// BM25 `avg_len`: the typical length of an indexed text in tokens. It is
    /// baked into every stored sparse vector, so it is recorded at creation
    /// and checked on every open.
    pub bm25_avg_len: f64,
}

/// Activity sentences are short: ~15-30 BM25 tokens.
pub const DEFAULT_BM25_AVG_LEN: f64 = 20.0;

const MANIFEST_FILE: &str = "engine_store.json";
/// The journals of the event and access shards, next to their directories.
const ACTIVITY_JOURNAL_FILE: &str = "activity.journal";
const ACCESS_JOURNAL_FILE: &str = "access.journal";
/// Purge bookkeeping (see `PurgeFile`).
const PURGE_FILE: &str = "purge.json";
/// The ledger and the access log carry no meaningful vector; Edge shards
/// want one, so they get a constant 1-d vector.
const NO_VECTOR: &str = "none";

fn backend(operation: &'static str) -> impl Fn(qdrant_edge::OperationError) -> StoreError {
    move |e| StoreError::Backend { operation, message: e.to_string() }
}

fn io(operation: &'static str) -> impl Fn(std::io::Error) -> StoreError {
    move |e| StoreError::Backend { operation, message: e.to_string() }
}

fn decode<T: serde::de::DeserializeOwned>(operation: &'static str, value: Value) -> Result<T, StoreError> {
    serde_json::from_value(value).map_err(|e| StoreError::Backend { operation, message: e.to_string() })
}

fn uuid_of(id: PointId) -> Result<Uuid, StoreError> {
    match id {
        PointId::Uuid(uuid) => Ok(uuid),
        PointId::NumId(n) => Err(StoreError::CorruptPayload { id: n.to_string(), message: "numeric point id".into() }),
    }
}

/// One Edge shard behind its lock, with its group-commit state.
#[derive(Clone)]
struct Collection {
    shard: Arc<RwLock<Option<EdgeShard>>>,
    /// Writes applied so far (counts up).
    applied: Arc<AtomicU64>,
    /// Writes known to be on disk; held while a flush runs, so concurrent
    /// writers wait for one flush instead of each running their own.
    durable: Arc<tokio::sync::Mutex<u64>>,
    /// Points written since the last optimisation, and whether one runs.
    unoptimized: Arc<AtomicU64>,
    optimizing: Arc<std::sync::atomic::AtomicBool>,
    /// Optimise (index, merge, vacuum) after this many written points; 0 =
    /// never on its own.
    optimize_every: u64,
    /// Makes upserts durable between flushes; `None`: every write flushes.
    journal: Option<Journal>,
}

impl Collection {
    fn open(
        path: &Path,
        config: EdgeConfig,
        indexes: Vec<(&'static str, Value)>,
        optimize_every: u64,
    ) -> Result<Self, StoreError> {
        std::fs::create_dir_all(path).map_err(io("create data dir"))?;
        remove_temp_segments(path).map_err(io("remove temp segments"))?;
        let freed = trim_wal(path).map_err(io("trim WAL"))?;
        if freed > 0 {
            tracing::info!(shard = %path.display(), freed_bytes = freed, "removed WAL segments Qdrant Edge never reads");
        }
        let shard = if path.join("edge_config.json").exists() {
            let shard = EdgeShard::load(path, None).map_err(backend("load shard"))?;
            // Stores made by earlier versions get today's index settings.
            shard.set_hnsw_config(config.hnsw_config).map_err(backend("set hnsw config"))?;
            shard.set_optimizers_config(config.optimizers.clone()).map_err(backend("set optimizers config"))?;
            // A store from before the merge setting (6 segments at 100k
            // events) is merged now rather than after its next 20k writes.
            // Only a speed-up: a failure (a full disk, say) is logged and
            // the store opens as it is. Once its segments are full (past
            // ~120k events) the merge planner finds nothing to do and this
            // costs a plan, not a merge.
            let segments = shard.info().segments_count;
            if let Some(target) = config.optimizers.default_segment_number.filter(|&t| segments > t + 1) {
                let started = std::time::Instant::now();
                match shard.optimize() {
                    Ok(true) => {
                        shard.flush();
                        tracing::info!(
                            shard = %path.display(),
                            segments_before = segments,
                            segments_after = shard.info().segments_count,
                            target,
                            elapsed_ms = started.elapsed().as_millis() as u64,
                            "merged segments at open"
                        );
                    }
                    Ok(false) => {}
                    Err(e) => {
                        tracing::warn!(shard = %path.display(), error = %e, "merging segments at open failed; opening as it is")
                    }
                }
            }
            shard
        } else {
            EdgeShard::new(path, config).map_err(backend("create shard"))?
        };
        // Created on every open when missing, so a crash between creating the
        // shard and its indexes is repaired on the next start.
        let existing = shard.info().payload_schema;
        for (field, schema) in indexes {
            let key = field.parse().map_err(|()| StoreError::Backend {
                operation: "create index",
                message: format!("bad field {field}"),
            })?;
            if existing.contains_key(&key) {
                continue;
            }
            let schema: PayloadFieldSchema = decode("create index", schema)?;
            let op = qdrant_edge::FieldIndexOperations::CreateIndex(qdrant_edge::CreateIndex {
                field_name: key,
                field_schema: Some(schema),
            });
            shard.update(UpdateOperation::FieldIndexOperation(op)).map_err(backend("create index"))?;
        }
        Ok(Self {
            shard: Arc::new(RwLock::new(Some(shard))),
            applied: Arc::new(AtomicU64::new(0)),
            durable: Arc::new(tokio::sync::Mutex::new(0)),
            unoptimized: Arc::new(AtomicU64::new(0)),
            optimizing: Arc::new(std::sync::atomic::AtomicBool::new(false)),
            optimize_every,
            journal: None,
        })
    }

    /// Puts a journal in front of the shard: first applies (again) what it
    /// holds, made into points by `point`, and checkpoints. Blocking.
    fn with_journal<P>(mut self, path: &Path, point: P) -> Result<Self, StoreError>
    where
        P: Fn(journal::Entry) -> Result<(Uuid, qdrant_edge::Vectors, Map<String, Value>), StoreError>,
    {
        let (journal, pending) = Journal::open(path)?;
        if !pending.is_empty() {
            // Writes acknowledged before a crash that the shard may have
            // lost: apply them again, in order, and checkpoint.
            let replayed = pending.len();
            {
                let guard = self.shard.read();
                let shard = guard.as_ref().ok_or(StoreError::Closed)?;
                // In order; an id seen again starts a new operation, so a
                // later version is applied after an earlier one.
                let mut batch = Vec::new();
                let mut ids = std::collections::HashSet::new();
                for entry in pending {
                    if !ids.insert(entry.id) {
                        shard
                            .update(upsert_operation(std::mem::take(&mut batch)))
                            .map_err(backend("replay journal"))?;
                        ids = std::iter::once(entry.id).collect();
                    }
                    batch.push(point(entry)?);
                }
                shard.update(upsert_operation(batch)).map_err(backend("replay journal"))?;
            }
            journal.checkpoint_blocking(|| self.flush_blocking())?;
            tracing::info!(journal = %path.display(), replayed, "replayed a journal");
        }
        self.journal = Some(journal);
        Ok(self)
    }

    /// Builds indexes for what was written since the last call (HNSW
    /// sub-graphs for large tenants, the compressed BM25 index), merges small
    /// segments and drops deleted points, then flushes. Synchronous in Qdrant
    /// Edge (no background optimiser): searches go on meanwhile, writes wait
    /// for it to finish before their flush. Returns whether anything changed.
    async fn optimize(&self) -> Result<bool, StoreError> {
        self.unoptimized.store(0, Ordering::SeqCst);
        let changed = self.run(|shard| shard.optimize().map_err(backend("optimize"))).await?;
        self.flush().await?;
        Ok(changed)
    }

    /// Counts written points and starts a background optimisation when
    /// enough have piled up (one at a time). Qdrant Edge's mutable BM25
    /// index costs O(posting list) per insert, so an appendable segment must
    /// not grow without bound: ingest slowed 50× from 10k to 100k points
    /// without this.
    fn note_written(&self, points: usize) {
        if self.optimize_every == 0 {
            return;
        }
        let pending = self.unoptimized.fetch_add(points as u64, Ordering::SeqCst) + points as u64;
        if pending < self.optimize_every
            || self.optimizing.compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst).is_err()
        {
            return;
        }
        let this = self.clone();
        tokio::spawn(async move {
            let started = std::time::Instant::now();
            match this.optimize().await {
                Ok(_) => tracing::info!(elapsed_ms = started.elapsed().as_millis() as u64, "store optimised"),
                Err(e) => tracing::warn!(error = %e, "store optimisation failed"),
            }
            this.optimizing.store(false, Ordering::SeqCst);
        });
    }

    /// Runs a write, then returns only once it is on disk (group commit:
    /// one flush covers every write applied before it started).
    async fn write<F>(&self, f: F) -> Result<(), StoreError>
    where
        F: FnOnce(&EdgeShard) -> Result<(), StoreError> + Send + 'static,
    {
        self.run(f).await?;
        let mine = self.applied.fetch_add(1, Ordering::SeqCst) + 1;
        let mut durable = self.durable.lock().await;
        if *durable >= mine {
            return Ok(());
        }
        let covered = self.applied.load(Ordering::SeqCst);
        self.flush().await?;
        *durable = covered;
        Ok(())
    }

    async fn run<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&EdgeShard) -> Result<T, StoreError> + Send + 'static,
    {
        let shard = Arc::clone(&self.shard);
        tokio::task::spawn_blocking(move || {
            let guard = shard.read();
            let shard = guard.as_ref().ok_or(StoreError::Closed)?;
            f(shard)
        })
        .await
        .map_err(|e| StoreError::Backend { operation: "blocking task", message: e.to_string() })?
    }

    /// Upserts and returns once the points are durable: journalled when the
    /// collection has a journal, else flushed.
    async fn upsert(&self, points: Vec<(Uuid, qdrant_edge::Vectors, Map<String, Value>)>) -> Result<(), StoreError> {
        if points.is_empty() {
            return Ok(());
        }
        let written = points.len();
        match &self.journal {
            Some(journal) => {
                let shard = Arc::clone(&self.shard);
                let frame =
                    journal::encode(points.iter().map(|(id, vectors, payload)| (id, payload, dense_in(vectors))))?;
                let pending = journal
                    .append(
                        move || Ok(frame),
                        // Journalled first, applied second, under the
                        // journal's lock: see `crate::journal`.
                        move || {
                            let guard = shard.read();
                            let shard = guard.as_ref().ok_or(StoreError::Closed)?;
                            shard.update(upsert_operation(points)).map_err(backend("upsert"))
                        },
                    )
                    .await
                    .inspect_err(|e| {
                        if matches!(e, StoreError::Unavailable { .. }) {
                            // The journal refuses writes until a checkpoint:
                            // try one now rather than at the next delete.
                            self.checkpoint_when_due(u64::MAX);
                        }
                    })?;
                self.checkpoint_when_due(pending);
            }
            None => {
                let operation = upsert_operation(points);
                self.write(move |shard| shard.update(operation).map_err(backend("upsert"))).await?;
            }
        }
        self.note_written(written);
        Ok(())
    }

    /// Starts a background checkpoint once the journal holds enough.
    fn checkpoint_when_due(&self, pending: u64) {
        let Some(journal) = &self.journal else { return };
        if pending < journal::CHECKPOINT_BYTES || !journal.claim_checkpoint() {
            return;
        }
        let this = self.clone();
        tokio::spawn(async move {
            if let Err(e) = this.checkpoint().await {
                // The journal keeps every write; the next checkpoint retries.
                tracing::warn!(error = %e, "journal checkpoint failed");
            }
            if let Some(journal) = &this.journal {
                journal.checkpoint_done();
            }
        });
    }

    /// Flushes the shard and empties its journal.
    async fn checkpoint(&self) -> Result<(), StoreError> {
        match &self.journal {
            Some(journal) => {
                let this = self.clone();
                journal.checkpoint(move || this.flush_blocking()).await
            }
            None => self.flush().await,
        }
    }

    /// Runs a delete so that no replay can bring back what it removed: with
    /// a journal, after a checkpoint and with journalled writes held off.
    async fn deleting<T, D>(&self, delete: D) -> Result<T, StoreError>
    where
        D: std::future::Future<Output = Result<T, StoreError>>,
    {
        match &self.journal {
            Some(journal) => {
                let this = self.clone();
                journal.exclusive(move || this.flush_blocking(), delete).await
            }
            None => delete.await,
        }
    }

    /// Deletes points by id.
    async fn delete_ids(&self, ids: Vec<PointId>) -> Result<(), StoreError> {
        self.deleting(self.write(move |shard| {
            shard
                .update(UpdateOperation::PointOperation(PointOperations::DeletePoints { ids }))
                .map_err(backend("delete"))
        }))
        .await
    }

    async fn count(&self, filter: Value) -> Result<usize, StoreError> {
        let filter: Filter = decode("build filter", filter)?;
        self.run(move |shard| shard.count(CountRequest { filter: Some(filter), exact: true }).map_err(backend("count")))
            .await
    }

    /// Deletes by filter; returns the count just before. Both run under one
    /// read guard, but other writers may interleave; the count is a receipt,
    /// and callers that must prove emptiness count again afterwards.
    async fn delete(&self, filter: Value) -> Result<usize, StoreError> {
        let filter: Filter = decode("build filter", filter)?;
        let count = filter.clone();
        self.deleting(async move {
            let n = self
                .run(move |shard| {
                    shard.count(CountRequest { filter: Some(count), exact: true }).map_err(backend("count"))
                })
                .await?;
            self.write(move |shard| {
                shard
                    .update(UpdateOperation::PointOperation(PointOperations::DeletePointsByFilter(filter)))
                    .map_err(backend("delete"))
            })
            .await?;
            Ok(n)
        })
        .await
    }

    async fn scroll(&self, request: Value) -> Result<(Vec<(Uuid, Map<String, Value>)>, Option<Uuid>), StoreError> {
        let (rows, next) = self.scroll_vectors(request).await?;
        Ok((rows.into_iter().map(|p| (p.id, p.payload)).collect(), next))
    }

    /// As `scroll`, with the dense vector when the request asks for it.
    async fn scroll_vectors(&self, request: Value) -> Result<(Vec<RawPoint>, Option<Uuid>), StoreError> {
        let request: ScrollRequest = decode("build scroll", request)?;
        let (records, next) = self.run(move |shard| shard.scroll(request).map_err(backend("scroll"))).await?;
        let next = next.map(uuid_of).transpose()?;
        let records = records
            .into_iter()
            .map(|r| {
                Ok(RawPoint {
                    id: uuid_of(r.id)?,
                    vector: r.vector.and_then(dense_of),
                    payload: r.payload.map(|p| p.0).unwrap_or_default().into_iter().collect(),
                })
            })
            .collect::<Result<_, StoreError>>()?;
        Ok((records, next))
    }

    async fn total(&self) -> Result<usize, StoreError> {
        self.run(move |shard| shard.count(CountRequest { filter: None, exact: true }).map_err(backend("count"))).await
    }

    async fn flush(&self) -> Result<(), StoreError> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.flush_blocking())
            .await
            .map_err(|e| StoreError::Backend { operation: "flush", message: e.to_string() })?
    }

    /// Flushes, then trims the WAL (see [`trim_wal`]) while no other
    /// operation can run on the shard.
    fn flush_blocking(&self) -> Result<(), StoreError> {
        let guard = self.shard.write();
        let shard = guard.as_ref().ok_or(StoreError::Closed)?;
        shard.flush();
        trim_wal(shard.path()).map_err(io("trim WAL"))?;
        Ok(())
    }

    /// Physically removes every deleted point from the shard's files: the
    /// segments that hold one are rebuilt from their live points (Qdrant's
    /// vacuum optimiser with both thresholds at 0), the old segment
    /// directories are deleted, and the WAL is rolled over twice with no-op
    /// records so that every segment holding an earlier record is closed
    /// and not the newest, and [`trim_wal`] deletes it. Blocking; searches
    /// and writes go on meanwhile (the optimiser swaps segments through
    /// proxies).
    fn purge_blocking(&self) -> Result<(), StoreError> {
        // One optimisation at a time: wait for a background one to finish.
        while self.optimizing.compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst).is_err() {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        /// Releases the flag however the pass ends (a panic included).
        struct Release<'a>(&'a std::sync::atomic::AtomicBool);
        impl Drop for Release<'_> {
            fn drop(&mut self) {
                self.0.store(false, Ordering::SeqCst);
            }
        }
        let _release = Release(&self.optimizing);
        self.vacuum_and_roll()
    }

    fn vacuum_and_roll(&self) -> Result<(), StoreError> {
        {
            let guard = self.shard.read();
            let shard = guard.as_ref().ok_or(StoreError::Closed)?;
            let saved = shard.config().optimizers.clone();
            let vacuum_all = qdrant_edge::EdgeOptimizersConfig {
                deleted_threshold: Some(0.0),
                vacuum_min_vector_number: Some(0),
                ..saved.clone()
            };
            shard.set_optimizers_config(vacuum_all).map_err(backend("purge"))?;
            let optimized = shard.optimize().map_err(backend("purge"));
            shard.set_optimizers_config(saved).map_err(backend("purge"))?;
            optimized?;
        }
        self.flush_blocking()?;
        {
            let guard = self.shard.read();
            let shard = guard.as_ref().ok_or(StoreError::Closed)?;
            // A record larger than the open segment's file cannot fit in it:
            // the open segment is retired and a new one sized to the record
            // takes it (full). The second record retires that one too.
            let open_capacity = wal_open_capacity(shard.path()).map_err(io("purge"))?;
            shard.update(no_op_record(open_capacity + 4096)).map_err(backend("purge"))?;
            shard.update(no_op_record(16)).map_err(backend("purge"))?;
        }
        self.flush_blocking()
    }

    /// Checkpoints (a failure leaves the journal to be replayed on the next
    /// open), then drops the shard, which flushes it. Blocking.
    fn close(&self) {
        if let Some(journal) = &self.journal {
            match journal.checkpoint_blocking(|| self.flush_blocking()) {
                Ok(()) | Err(StoreError::Closed) => {}
                Err(e) => tracing::warn!(error = %e, "journal checkpoint at close failed"),
            }
        }
        drop(self.shard.write().take());
    }
}

/// An event's vectors: its dense embedding and the BM25 vector of its text.
fn event_vectors(bm25: &EdgeBm25, dense: Vec<f32>, text: &str) -> qdrant_edge::Vectors {
    qdrant_edge::Vectors(VectorStructInternal::Named(
        [
            (DENSE_VECTOR.to_string(), VectorInternal::Dense(dense)),
            (SPARSE_VECTOR.to_string(), VectorInternal::Sparse(bm25.embed_document(text))),
        ]
        .into_iter()
        .collect(),
    ))
}

/// The dense vector of points about to be written, if they have one.
fn dense_in(vectors: &qdrant_edge::Vectors) -> Option<&[f32]> {
    match &vectors.0 {
        VectorStructInternal::Named(named) => match named.get(DENSE_VECTOR) {
            Some(VectorInternal::Dense(v)) => Some(v.as_slice()),
            _ => None,
        },
        _ => None,
    }
}

/// Deletes the shard's closed WAL segments but the newest; returns the bytes
/// freed.
///
/// Qdrant Edge 0.7 writes every update to its WAL and never reads the WAL
/// back nor truncates it (it has no replay and no acknowledgement; this
/// store's durability comes from flushes and our journals). Left
/// alone, the WAL grew without bound: ~3.4 KB per GetContext in the access
/// shard (1 GB after ~300k calls) and about the size of the segments in the
/// event shard, and it kept a copy of erased events and access records.
///
/// The newest closed segment is kept because its name carries the index the
/// next operation numbers continue from; with none left, numbering would
/// restart below the versions already stored, and Qdrant ignores an update
/// whose operation number is below the point's version. Called at open,
/// before the shard maps its WAL, and after each flush with the shard
/// locked exclusively: then every update is in the flushed segments, and the
/// open WAL never touches a closed segment again (they are only counted, in
/// memory), so truncating a file before unlinking it frees its blocks at
/// once although the shard still maps it.
fn trim_wal(shard_dir: &Path) -> std::io::Result<u64> {
    let dir = shard_dir.join("wal");
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut closed = Vec::new();
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        if let Some(start) = name.to_str().and_then(|n| n.strip_prefix("closed-")).and_then(|n| n.parse::<u64>().ok()) {
            closed.push((start, entry.path()));
        }
    }
    closed.sort();
    closed.pop();
    let mut freed = 0;
    for (_, path) in &closed {
        let file = std::fs::OpenOptions::new().write(true).open(path)?;
        freed += file.metadata()?.len();
        file.set_len(0)?;
        std::fs::remove_file(path)?;
    }
    if !closed.is_empty() {
        std::fs::File::open(&dir)?.sync_all()?;
    }
    Ok(freed)
}

/// The largest `open-*` WAL segment file of a shard (the open segment and
/// the spare one the WAL keeps ahead), in bytes.
fn wal_open_capacity(shard_dir: &Path) -> std::io::Result<usize> {
    let mut largest = 0;
    for entry in std::fs::read_dir(shard_dir.join("wal"))? {
        let entry = entry?;
        if entry.file_name().to_str().is_some_and(|n| n.starts_with("open-")) {
            largest = largest.max(entry.metadata()?.len() as usize);
        }
    }
    Ok(largest)
}

/// An update that changes nothing (a payload set on no point) but takes
/// `bytes` in the WAL: used to roll the WAL over.
fn no_op_record(bytes: usize) -> UpdateOperation {
    let mut payload = serde_json::Map::new();
    payload.insert("wal_roll".into(), Value::String("0".repeat(bytes)));
    UpdateOperation::PayloadOperation(qdrant_edge::PayloadOps::SetPayload(qdrant_edge::SetPayloadOp {
        payload: qdrant_edge::Payload(payload),
        points: Some(Vec::new()),
        filter: None,
        key: None,
    }))
}

/// Removes what an optimisation interrupted by a crash left behind: Qdrant
/// Edge builds segments under `temp_segments/` and renames them into place
/// when done, and does not clean that folder on load; a half-built segment
/// there holds copies of points, deleted ones' included.
fn remove_temp_segments(shard_dir: &Path) -> std::io::Result<()> {
    let temp = shard_dir.join("temp_segments");
    match std::fs::read_dir(&temp) {
        Ok(entries) => {
            for entry in entries {
                let path = entry?.path();
                if path.is_dir() {
                    std::fs::remove_dir_all(&path)?;
                } else {
                    std::fs::remove_file(&path)?;
                }
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

fn upsert_operation(points: Vec<(Uuid, qdrant_edge::Vectors, Map<String, Value>)>) -> UpdateOperation {
    let structs = points
        .into_iter()
        .map(|(id, vectors, payload)| PointStruct::new(PointId::Uuid(id), vectors, Value::Object(payload)).into())
        .collect();
    UpdateOperation::PointOperation(PointOperations::UpsertPoints(PointInsertOperations::PointsList(structs)))
}

/// Purge bookkeeping, persisted in `<data-dir>/purge.json` (counters and a
/// time: no personal data). `issued` counts deletions (each is counted
/// before it runs); a purge pass that started when `issued` was N sets
/// `purged` to N when it ends. A store opened with `purged < issued` (a
/// crash after a delete, before its purge) purges before it serves.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct PurgeFile {
    issued: u64,
    purged: u64,
    /// Unix seconds when the last pass ended.
    purged_at: i64,
}

struct Purger {
    path: PathBuf,
    state: parking_lot::Mutex<PurgeFile>,
    /// Held shared by each delete from its count (`intent`) until it has
    /// run; a pass takes it exclusively to read its target, so the target
    /// never covers a deletion that is counted but not yet applied.
    deletes: tokio::sync::RwLock<()>,
    /// One pass at a time; passes coalesce.
    running: tokio::sync::Mutex<()>,
}

impl Purger {
    fn open(data_dir: &Path) -> Result<Self, StoreError> {
        let path = data_dir.join(PURGE_FILE);
        let state = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| StoreError::Backend { operation: "read purge state", message: e.to_string() })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => PurgeFile::default(),
            Err(e) => return Err(io("read purge state")(e)),
        };
        Ok(Self {
            path,
            state: parking_lot::Mutex::new(state),
            deletes: tokio::sync::RwLock::new(()),
            running: tokio::sync::Mutex::new(()),
        })
    }

    /// Writes the state durably (temporary file, rename, directory sync).
    fn persist(&self, state: PurgeFile) -> Result<(), StoreError> {
        let tmp = self.path.with_extension("json.tmp");
        let bytes = serde_json::to_vec(&state)
            .map_err(|e| StoreError::Backend { operation: "write purge state", message: e.to_string() })?;
        let mut file = std::fs::File::create(&tmp).map_err(io("write purge state"))?;
        std::io::Write::write_all(&mut file, &bytes).map_err(io("write purge state"))?;
        file.sync_all().map_err(io("write purge state"))?;
        std::fs::rename(&tmp, &self.path).map_err(io("write purge state"))?;
        if let Some(dir) = self.path.parent() {
            std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io("write purge state"))?;
        }
        Ok(())
    }

    /// Counts one deletion about to run. Blocking (one small synced write).
    fn intent(&self) -> Result<u64, StoreError> {
        let mut state = self.state.lock();
        state.issued += 1;
        self.persist(*state)?;
        Ok(state.issued)
    }

    fn status(&self, ticket: u64) -> PurgeState {
        let state = *self.state.lock();
        if ticket > state.issued {
            PurgeState::Unknown
        } else if ticket <= state.purged {
            PurgeState::Purged { at: state.purged_at }
        } else {
            PurgeState::Pending
        }
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

#[derive(Clone)]
pub struct EdgeStore {
    activity: Collection,
    consent: Collection,
    access: Collection,
    purger: Arc<Purger>,
    bm25: Arc<EdgeBm25>,
    path: Arc<PathBuf>,
    manifest: Arc<StoreManifest>,
}

/// Qdrant's BM25 (its tokenizer, English stopwords and stemmer, murmur3 term
/// ids), so Edge and a Qdrant server index text identically.
pub(super) fn bm25(avg_len: f64) -> Result<EdgeBm25, StoreError> {
    let bad = |message: String| StoreError::Backend { operation: "bm25 model", message };
    let avg_len = qdrant_edge::external::ordered_float::NotNan::new(avg_len).map_err(|e| bad(e.to_string()))?;
    EdgeBm25::new(EdgeBm25Config { avg_len, ..Default::default() }).map_err(|e| bad(e.to_string()))
}

fn one_vector(name: &str, size: usize) -> EdgeConfig {
    EdgeConfig {
        vectors: [(name.to_string(), EdgeVectorParams::builder(size, Distance::Cosine).build())].into_iter().collect(),
        wal_options: Some(wal_options()),
        ..Default::default()
    }
}

/// WAL segments of 4 MiB instead of Qdrant's 32 MiB (for shards created
/// from now on; a shard keeps the options it was made with). Qdrant Edge
/// 0.7 only appends to its WAL (see [`trim_wal`]), and each shard keeps
/// the open segment, a spare and the newest closed one, preallocated: 3 ×
/// 32 MiB per shard was ~300 MB of WAL for an empty store, and a purge's
/// roll-over writes one segment's worth of no-op record.
fn wal_options() -> qdrant_edge::WalOptions {
    qdrant_edge::WalOptions {
        segment_capacity: 4 << 20,
        segment_queue_len: 0,
        retain_closed: std::num::NonZeroUsize::MIN,
    }
}

/// Event points written between two automatic optimisations.
const OPTIMIZE_EVERY_POINTS: u64 = 20_000;

/// The activity shard's target segment count (Qdrant's
/// `default_segment_number`): one merged segment and the appendable one.
const ACTIVITY_SEGMENTS: usize = 2;

/// Dense vector plus the BM25 sparse vector with Qdrant's IDF modifier.
///
/// Index: every search filters on one user, so there is no global HNSW graph
/// (`m = 0`); users with more points than `full_scan_threshold` get their own
/// graph (`payload_m`, through the `is_tenant` index on `user_id`), smaller
/// ones are scored exactly through the payload index, which is faster for
/// them. One indexing thread, so optimisation never takes both cores from
/// the model.
fn activity_config(dimension: usize) -> EdgeConfig {
    let mut config = one_vector(DENSE_VECTOR, dimension);
    config.hnsw_config = qdrant_edge::HnswIndexConfig {
        m: 0,
        payload_m: Some(16),
        ef_construct: 100,
        full_scan_threshold: 10_000,
        max_indexing_threads: 1,
        ..Default::default()
    };
    config.optimizers = qdrant_edge::EdgeOptimizersConfig {
        // Segments above ~13k points get indexed. Every segment costs each
        // search a filtered scan and each point read an id lookup, so small
        // segments are merged into one (plus the appendable one) until it
        // holds ~200 MB of vectors (~120k events); past that, new ones
        // start. At 100k events, 2 segments instead of 6 gave GetContext
        // 1.15× the calls/s at 32 clients (README, 2026-12-03), for merges
        // of ~3 s (writes wait) every 20k events.
        indexing_threshold: Some(20_000),
        default_segment_number: Some(ACTIVITY_SEGMENTS),
        max_segment_size: Some(200_000),
        ..Default::default()
    };
    config.sparse_vectors =
        [(SPARSE_VECTOR.to_string(), EdgeSparseVectorParams::builder().modifier(Modifier::Idf).build())]
            .into_iter()
            .collect();
    config
}

impl std::fmt::Debug for EdgeStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EdgeStore").field("path", &self.path).finish()
    }
}

fn no_vector() -> qdrant_edge::Vectors {
    qdrant_edge::Vectors::new_named([(NO_VECTOR, vec![1.0f32])])
}

impl EdgeStore {
    /// Opens (or creates) the store under `options.data_dir`. Blocking: call
    /// it at start-up or from `spawn_blocking`.
    pub fn open(options: &EdgeOptions) -> Result<Self, StoreError> {
        let dir = &options.data_dir;
        std::fs::create_dir_all(dir).map_err(io("create data dir"))?;
        let manifest = check_manifest(options)?;
        if !(options.bm25_avg_len.is_finite() && options.bm25_avg_len > 0.0) {
            return Err(StoreError::Backend {
                operation: "open",
                message: format!("bm25_avg_len must be a positive number, got {}", options.bm25_avg_len),
            });
        }
        let bm25 = Arc::new(bm25(options.bm25_avg_len)?);
        let activity = Collection::open(
            &dir.join("activity"),
            activity_config(options.dimension),
            event_indexes(),
            OPTIMIZE_EVERY_POINTS,
        )?
        .with_journal(&dir.join(ACTIVITY_JOURNAL_FILE), |entry| {
            let id = entry.id;
            let point = RawPoint { id, vector: entry.dense, payload: entry.payload };
            let (dense, text) = point.event_parts()?;
            Ok((id, event_vectors(&bm25, dense, &text), point.payload))
        })?;
        let access = Collection::open(&dir.join("access"), one_vector(NO_VECTOR, 1), access_indexes(), 0)?
            .with_journal(&dir.join(ACCESS_JOURNAL_FILE), |entry| Ok((entry.id, no_vector(), entry.payload)))?;
        let store = Self {
            activity,
            consent: Collection::open(&dir.join("consent"), one_vector(NO_VECTOR, 1), consent_indexes(), 0)?,
            access,
            purger: Arc::new(Purger::open(dir)?),
            bm25,
            path: Arc::new(dir.clone()),
            manifest: Arc::new(manifest),
        };
        let pending = *store.purger.state.lock();
        if pending.purged < pending.issued {
            // Deletions whose purge never ran (a crash in between): purge
            // now, before anything is served. A failure is logged, not
            // fatal: the store serves, and the next scheduled pass retries.
            let started = std::time::Instant::now();
            match store.purge_pass_blocking(pending.issued) {
                Ok(()) => tracing::info!(
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "purged deleted data left by an interrupted erasure"
                ),
                Err(e) => tracing::error!(error = %e, "purge at open failed; the next purge pass retries"),
            }
        }
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What an existing store under `data_dir` was made for, from its
    /// manifest (without opening it).
    pub fn read_manifest(data_dir: &Path) -> Result<StoreManifest, StoreError> {
        let path = data_dir.join(MANIFEST_FILE);
        let bytes = std::fs::read(&path).map_err(|e| StoreError::Backend {
            operation: "read store manifest",
            message: format!("{}: {e} (is this a context-engine data directory?)", path.display()),
        })?;
        serde_json::from_slice(&bytes).map_err(|e| StoreError::Backend {
            operation: "read store manifest",
            message: format!("{}: {e}", path.display()),
        })
    }

    fn collection(&self, kind: CollectionKind) -> &Collection {
        match kind {
            CollectionKind::Activity => &self.activity,
            CollectionKind::Consent => &self.consent,
            CollectionKind::Access => &self.access,
        }
    }

    /// One purge pass over the three shards; marks every deletion counted
    /// up to `target` as purged. Blocking.
    fn purge_pass_blocking(&self, target: u64) -> Result<(), StoreError> {
        for collection in [&self.activity, &self.consent, &self.access] {
            collection.purge_blocking()?;
        }
        let mut state = self.purger.state.lock();
        if state.purged < target {
            state.purged = target;
        }
        state.purged_at = unix_now();
        self.purger.persist(*state)
    }

    /// Counts a deletion before it runs (see `PurgeFile`).
    async fn purge_intent(&self) -> Result<u64, StoreError> {
        let purger = Arc::clone(&self.purger);
        tokio::task::spawn_blocking(move || purger.intent())
            .await
            .map_err(|e| StoreError::Backend { operation: "purge intent", message: e.to_string() })?
    }

    /// Runs a purge pass covering every deletion applied so far.
    async fn purge_now(&self) -> Result<(), StoreError> {
        let _running = self.purger.running.lock().await;
        let target = {
            let _applied = self.purger.deletes.write().await;
            self.purger.state.lock().issued
        };
        if self.purger.state.lock().purged >= target {
            return Ok(());
        }
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.purge_pass_blocking(target))
            .await
            .map_err(|e| StoreError::Backend { operation: "purge", message: e.to_string() })?
    }

    /// Optimises the event collection now (see `Collection::optimize`); the
    /// store also does this on its own every 20,000 written points.
    pub async fn optimize(&self) -> Result<bool, StoreError> {
        self.activity.optimize().await
    }

    /// Flushes and releases every shard (checkpointing the journals);
    /// later calls fail with [`StoreError::Closed`]. Blocking.
    pub fn close(&self) {
        self.activity.close();
        self.consent.close();
        self.access.close();
    }
}

fn check_manifest(options: &EdgeOptions) -> Result<StoreManifest, StoreError> {
    let wanted = StoreManifest {
        schema_version: SCHEMA_VERSION,
        model_id: options.model_id.clone(),
        dimension: options.dimension,
        bm25_avg_len: options.bm25_avg_len,
    };
    let path = options.data_dir.join(MANIFEST_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => {
            let found: StoreManifest = serde_json::from_slice(&bytes).map_err(|e| StoreError::Incompatible {
                path: path.display().to_string(),
                expected: wanted.describe(),
                found: format!("an unreadable manifest ({e})"),
            })?;
            if found != wanted {
                return Err(StoreError::Incompatible {
                    path: options.data_dir.display().to_string(),
                    expected: wanted.describe(),
                    found: found.describe(),
                });
            }
            Ok(wanted)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if options.data_dir.join("activity").exists() {
                return Err(StoreError::Incompatible {
                    path: options.data_dir.display().to_string(),
                    expected: wanted.describe(),
                    found: format!("a store without {MANIFEST_FILE}"),
                });
            }
            let bytes = serde_json::to_vec_pretty(&wanted)
                .map_err(|e| StoreError::Backend { operation: "write store manifest", message: e.to_string() })?;
            std::fs::write(&path, bytes).map_err(io("write store manifest"))?;
            Ok(wanted)
        }
        Err(e) => Err(io("read store manifest")(e)),
    }
}

/// The dense vector of a stored point, if it has one.
fn dense_of(vector: VectorStructInternal) -> Option<Vec<f32>> {
    match vector {
        VectorStructInternal::Named(mut named) => match named.remove(DENSE_VECTOR) {
            Some(VectorInternal::Dense(v)) => Some(v),
            _ => None,
        },
        VectorStructInternal::Single(v) => Some(v),
        _ => None,
    }
}

#[async_trait]
impl RawStore for EdgeStore {
    fn manifest(&self) -> &StoreManifest {
        &self.manifest
    }

    async fn total(&self, kind: CollectionKind) -> Result<usize, StoreError> {
        self.collection(kind).total().await
    }

    async fn export_page(
        &self,
        kind: CollectionKind,
        from: Option<Uuid>,
        limit: usize,
    ) -> Result<(Vec<RawPoint>, Option<Uuid>), StoreError> {
        let mut request = json!({"limit": limit.max(1), "with_payload": true});
        if kind == CollectionKind::Activity {
            request["with_vector"] = json!([DENSE_VECTOR]);
        }
        if let Some(from) = from {
            request["offset"] = json!(from.to_string());
        }
        self.collection(kind).scroll_vectors(request).await
    }

    async fn import(&self, kind: CollectionKind, points: Vec<RawPoint>) -> Result<(), StoreError> {
        let mut rows = Vec::with_capacity(points.len());
        for point in points {
            let vectors = match kind {
                CollectionKind::Activity => {
                    let (dense, text) = point.event_parts()?;
                    event_vectors(&self.bm25, dense, &text)
                }
                CollectionKind::Consent | CollectionKind::Access => no_vector(),
            };
            rows.push((point.id, vectors, point.payload));
        }
        self.collection(kind).upsert(rows).await
    }

    async fn fetch(&self, kind: CollectionKind, ids: Vec<Uuid>) -> Result<Vec<RawPoint>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut request = json!({
            "limit": ids.len(),
            "with_payload": true,
            "filter": {"must": [{"has_id": ids.iter().map(Uuid::to_string).collect::<Vec<_>>()}]},
        });
        if kind == CollectionKind::Activity {
            request["with_vector"] = json!([DENSE_VECTOR]);
        }
        Ok(self.collection(kind).scroll_vectors(request).await?.0)
    }
}

impl EdgeStore {
    /// One page of event points of `scope`, with vectors when asked.
    async fn event_page(
        &self,
        scope: Scope,
        from: Option<Uuid>,
        limit: usize,
        vectors: bool,
    ) -> Result<Page, StoreError> {
        if scope.is_empty() {
            return Ok(Page::default());
        }
        let mut request = json!({
            "limit": limit.max(1),
            "filter": scope_filter_json(&scope),
            "with_payload": true,
        });
        if vectors {
            request["with_vector"] = json!([DENSE_VECTOR]);
        }
        if let Some(from) = from {
            request["offset"] = json!(from.to_string());
        }
        let (rows, next) = self.activity.scroll_vectors(request).await?;
        event_page(rows.into_iter().map(|row| (row.id, row.vector, row.payload)), next, vectors)
    }
}

#[async_trait]
impl EventStore for EdgeStore {
    async fn upsert(&self, points: Vec<StoredPoint>) -> Result<(), StoreError> {
        let mut rows = Vec::with_capacity(points.len());
        for point in points {
            let payload = event_payload(&point.record)?;
            rows.push((point.id, event_vectors(&self.bm25, point.vector, &point.record.text), payload));
        }
        self.activity.upsert(rows).await
    }

    async fn search(&self, request: SearchRequest) -> Result<Candidates, StoreError> {
        if request.scope.is_empty() || request.limit == 0 {
            return Ok(Candidates::default());
        }
        let filter: Filter = decode("build filter", scope_filter_json(&request.scope))?;
        let want_dense = matches!(request.mode, RetrievalMode::Dense | RetrievalMode::Hybrid);
        // A query without indexable terms (only stopwords) has no sparse list.
        let sparse_query = match request.mode {
            RetrievalMode::Sparse | RetrievalMode::Hybrid => Some(self.bm25.embed_query(&request.text)),
            RetrievalMode::Dense => None,
        }
        .filter(|v| !v.indices.is_empty());
        let (limit, exact, vector, scope) = (request.limit, request.exact, request.vector, request.scope);
        self.activity
            .run(move |shard| {
                // Both lists are searched for ids and scores only; the points
                // are then read once each. Reading a point (its payload parsed
                // from JSON, its vector copied) is most of a search's cost, and
                // the two lists usually share many points.
                let search = |query: VectorInternal, using: &str| {
                    shard
                        .search(EdgeSearch {
                            query: QueryEnum::Nearest(NamedQuery { query, using: Some(using.to_string()) }),
                            filter: Some(filter.clone()),
                            params: exact.then(|| SearchParams { exact: true, ..Default::default() }),
                            limit,
                            offset: 0,
                            with_payload: Some(WithPayloadInterface::Bool(false)),
                            with_vector: Some(WithVector::Bool(false)),
                            score_threshold: None,
                        })
                        .map_err(backend("search"))
                };
                let dense = if want_dense { search(VectorInternal::Dense(vector), DENSE_VECTOR)? } else { Vec::new() };
                let sparse = match sparse_query {
                    Some(query) => search(VectorInternal::Sparse(query), SPARSE_VECTOR)?,
                    None => Vec::new(),
                };
                // Each point once, with how many lists name it.
                let mut ids: Vec<PointId> = Vec::with_capacity(dense.len() + sparse.len());
                let mut uses: HashMap<PointId, usize> = HashMap::with_capacity(dense.len() + sparse.len());
                for hit in dense.iter().chain(&sparse) {
                    let n = uses.entry(hit.id).or_insert(0);
                    if *n == 0 {
                        ids.push(hit.id);
                    }
                    *n += 1;
                }
                let points = shard
                    .retrieve(
                        &ids,
                        Some(WithPayloadInterface::Bool(true)),
                        Some(WithVector::Selector(vec![DENSE_VECTOR.to_string()])),
                    )
                    .map_err(backend("retrieve"))?;
                let mut read: HashMap<PointId, (usize, EventRecord, Vec<f32>)> = HashMap::with_capacity(points.len());
                for point in points {
                    let id = uuid_of(point.id)?;
                    let vector = point.vector.and_then(dense_of).unwrap_or_default();
                    if vector.is_empty() {
                        return Err(StoreError::CorruptPayload {
                            id: id.to_string(),
                            message: "point without its dense vector".into(),
                        });
                    }
                    let record: EventRecord =
                        from_payload(&id.to_string(), point.payload.map(|p| p.0).unwrap_or_default())?;
                    // The read is not the search: an upsert between the two
                    // may have moved the point out of the scope (a re-sent
                    // event with another time or name). What the filter
                    // would not pass now is left out.
                    if !scope.admits(&record.event) {
                        continue;
                    }
                    read.insert(point.id, (uses.get(&point.id).copied().unwrap_or(1), record, vector));
                }
                // A point deleted (or moved out of scope) between the search
                // and the read is left out: a deletion always wins.
                let mut list = |hits: Vec<ScoredPoint>| -> Result<Vec<ScoredRecord>, StoreError> {
                    let mut out = Vec::with_capacity(hits.len());
                    for hit in hits {
                        let Some((left, record, vector)) = read.get_mut(&hit.id) else { continue };
                        // The last list to name a point takes it; an earlier
                        // one takes a copy.
                        *left -= 1;
                        let (record, vector) = if *left == 0 {
                            let (_, record, vector) = read.remove(&hit.id).expect("present");
                            (record, vector)
                        } else {
                            (record.clone(), vector.clone())
                        };
                        out.push(ScoredRecord { id: uuid_of(hit.id)?, score: hit.score, record, vector });
                    }
                    Ok(out)
                };
                Ok(Candidates { dense: list(dense)?, sparse: list(sparse)? })
            })
            .await
    }

    async fn count(&self, scope: Scope) -> Result<usize, StoreError> {
        if scope.is_empty() {
            return Ok(0);
        }
        self.activity.count(scope_filter_json(&scope)).await
    }

    async fn delete(&self, scope: Scope) -> Result<usize, StoreError> {
        if scope.is_empty() {
            return Ok(0);
        }
        let _deleting = self.purger.deletes.read().await;
        self.purge_intent().await?;
        self.activity.delete(scope_filter_json(&scope)).await
    }

    async fn delete_ids(&self, ids: Vec<Uuid>) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        let _deleting = self.purger.deletes.read().await;
        self.purge_intent().await?;
        self.activity.delete_ids(ids.into_iter().map(PointId::Uuid).collect()).await
    }

    async fn scroll(&self, scope: Scope, from: Option<Uuid>, limit: usize) -> Result<Page, StoreError> {
        self.event_page(scope, from, limit, false).await
    }

    async fn scroll_with_vectors(&self, scope: Scope, from: Option<Uuid>, limit: usize) -> Result<Page, StoreError> {
        self.event_page(scope, from, limit, true).await
    }
}

#[async_trait]
impl ConsentLedger for EdgeStore {
    async fn consents(&self, user_ids: Vec<String>) -> Result<Vec<ConsentGrant>, StoreError> {
        if user_ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut grants = Vec::new();
        let mut from: Option<Uuid> = None;
        loop {
            let mut request = json!({"limit": 1000, "filter": users_filter_json(&user_ids), "with_payload": true});
            if let Some(from) = from {
                request["offset"] = json!(from.to_string());
            }
            let (rows, next) = self.consent.scroll(request).await?;
            for (id, payload) in rows {
                grants.push(from_payload(&id.to_string(), payload)?);
            }
            match next {
                Some(next) => from = Some(next),
                None => return Ok(grants),
            }
        }
    }

    async fn put_consent(&self, grant: ConsentGrant) -> Result<(), StoreError> {
        let payload = consent_payload(&grant)?;
        self.consent.upsert(vec![(consent_point_id(&grant), no_vector(), payload)]).await
    }

    /// One process owns an Edge store and the engine orders its ledger
    /// writes, so a read then a write is a compare-and-set here.
    async fn put_consent_if(&self, grant: ConsentGrant, expected: Option<u64>) -> Result<bool, StoreError> {
        let current = self.consents(vec![grant.user_id.clone()]).await?;
        let stored =
            current.iter().find(|g| g.source_id == grant.source_id && g.purpose == grant.purpose).map(|g| g.version);
        if stored != expected {
            return Ok(false);
        }
        self.put_consent(grant).await?;
        Ok(true)
    }

    async fn delete_consents(&self, user_id: String) -> Result<usize, StoreError> {
        let _deleting = self.purger.deletes.read().await;
        self.purge_intent().await?;
        self.consent.delete(user_filter_json(&user_id)).await
    }
}

#[async_trait]
impl AccessLog for EdgeStore {
    async fn append_access(&self, record: AccessRecord) -> Result<(), StoreError> {
        let id = Uuid::parse_str(&record.access_id)
            .map_err(|e| StoreError::Backend { operation: "append access", message: e.to_string() })?;
        let payload = access_payload(&record)?;
        self.access.upsert(vec![(id, no_vector(), payload)]).await
    }

    async fn access_log(&self, user_id: String, limit: usize) -> Result<Vec<AccessRecord>, StoreError> {
        let request = json!({
            "limit": limit.max(1),
            "filter": user_filter_json(&user_id),
            "with_payload": true,
            "order_by": {"key": "at", "direction": "desc"},
        });
        let (rows, _) = self.access.scroll(request).await?;
        rows.into_iter().map(|(id, payload)| from_payload(&id.to_string(), payload)).collect()
    }

    /// Checkpoints first (see `Collection::deleting`), so that no copy of
    /// the user's records stays in the journal once the shard deleted them.
    async fn delete_access(&self, user_id: String) -> Result<usize, StoreError> {
        let _deleting = self.purger.deletes.read().await;
        self.purge_intent().await?;
        self.access.delete(user_filter_json(&user_id)).await
    }

    async fn count_access(&self, user_id: String) -> Result<usize, StoreError> {
        self.access.count(user_filter_json(&user_id)).await
    }
}

#[async_trait]
impl VectorStore for EdgeStore {
    async fn schedule_purge(&self) -> Result<u64, StoreError> {
        let ticket = self.purger.state.lock().issued;
        let this = self.clone();
        tokio::spawn(async move {
            let started = std::time::Instant::now();
            let mut delay = std::time::Duration::from_secs(1);
            for attempt in 1..=5 {
                match this.purge_now().await {
                    Ok(()) => {
                        tracing::info!(elapsed_ms = started.elapsed().as_millis() as u64, "purge pass done");
                        return;
                    }
                    Err(e) => tracing::error!(error = %e, attempt, "purge pass failed; retrying"),
                }
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
            // Still pending: the next erasure's pass, or the next open, retries.
        });
        Ok(ticket)
    }

    async fn purge_status(&self, ticket: u64) -> Result<PurgeState, StoreError> {
        Ok(self.purger.status(ticket))
    }

    async fn flush(&self) -> Result<(), StoreError> {
        self.activity.checkpoint().await?;
        self.consent.flush().await?;
        self.access.checkpoint().await
    }

    fn close(&self) {
        EdgeStore::close(self);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn points(ids: std::ops::Range<u32>) -> Vec<(Uuid, qdrant_edge::Vectors, Map<String, Value>)> {
        ids.map(|i| {
            let vector = vec![1.0, i as f32, (i % 7) as f32, 0.5];
            let payload = json!({"n": i}).as_object().unwrap().clone();
            (Uuid::from_u128(i as u128 + 1), qdrant_edge::Vectors::new_named([("v", vector)]), payload)
        })
        .collect()
    }

    fn segments(collection: &Collection) -> usize {
        collection.shard.read().as_ref().unwrap().info().segments_count
    }

    /// A shard left with more segments than its setting allows (a store
    /// from before the merge setting) is merged when opened, and keeps
    /// every point.
    #[tokio::test]
    async fn a_shard_with_many_segments_is_merged_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shard");
        let mut config = one_vector("v", 4);
        // Every optimisation turns the appendable segment into an indexed
        // one; nothing merges below 8 segments.
        config.optimizers = qdrant_edge::EdgeOptimizersConfig {
            indexing_threshold: Some(1),
            default_segment_number: Some(8),
            max_segment_size: Some(200_000),
            ..Default::default()
        };
        let collection = Collection::open(&path, config.clone(), Vec::new(), 0).unwrap();
        for round in 0..5 {
            collection.upsert(points(round * 300..(round + 1) * 300)).await.unwrap();
            collection.optimize().await.unwrap();
        }
        let before = segments(&collection);
        assert!(before > 3, "the setup must leave more than 3 segments, got {before}");
        drop(collection);

        config.optimizers.default_segment_number = Some(2);
        let collection = Collection::open(&path, config, Vec::new(), 0).unwrap();
        let after = segments(&collection);
        assert!(after <= 3, "{before} segments became {after}, expected at most 3");
        assert_eq!(collection.count(json!({})).await.unwrap(), 1500);
        drop(collection);
        // And the merge is on disk: a plain reopen finds the same layout.
        let collection = Collection::open(&path, one_vector("v", 4), Vec::new(), 0).unwrap();
        assert_eq!(segments(&collection), after);
        assert_eq!(collection.count(json!({})).await.unwrap(), 1500);
    }
}
