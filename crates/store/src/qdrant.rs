//! [`VectorStore`] on a Qdrant server or cluster, over gRPC with
//! `qdrant-client`: the same three collections as the embedded store
//! (`<prefix>_activity`, `<prefix>_consent`, `<prefix>_access`), the same
//! payload layout, filters (translated from the one JSON form in
//! [`super::payload`]), BM25 sparse vectors and tenant index, so both
//! backends answer identically (the conformance suite checks it).
//!
//! Writes: `wait=true`, so a call returns only once Qdrant has applied the
//! update (and written it to its WAL) on `write_consistency_factor`
//! replicas; `ordering=medium` (through the shard's current leader), so two
//! writes of one replica are applied in the order they were sent. The
//! consent ledger is created with `write_consistency_factor` equal to its
//! replication factor: a revocation is on every replica before SetConsent
//! returns, so no replica can serve a revoked source afterwards.
//!
//! Errors: transient ones (UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED,
//! ABORTED, connection failures) are retried with exponential backoff a
//! bounded number of times; every write is idempotent (points have
//! deterministic ids, deletes are by id or filter), so a retried write that
//! had in fact landed does no harm.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use qdrant_client::qdrant::{
    self, point_id::PointIdOptions, vector_output, vectors_config, Condition, CountPointsBuilder,
    CreateCollectionBuilder, CreateFieldIndexCollectionBuilder, DeletePointsBuilder, Direction, Distance, FieldType,
    Filter, HnswConfigDiff, NamedVectors, OrderByBuilder, PointId, PointStruct, PointsIdsList, Query,
    QueryBatchPointsBuilder, QueryPointsBuilder, ScrollPointsBuilder, SearchParamsBuilder, SparseVectorConfig,
    SparseVectorParams, UpsertPointsBuilder, Vector, VectorParams, VectorParamsMap, VectorsConfig, VectorsSelector,
    WriteOrdering, WriteOrderingType,
};
use qdrant_client::{Payload, Qdrant, QdrantError};
use qdrant_edge::bm25_embed::EdgeBm25;
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::edge::bm25;
use crate::payload::{
    access_indexes, access_payload, consent_indexes, consent_payload, consent_point_id, event_indexes, event_page,
    event_payload, from_payload, scope_filter_json, user_filter_json, users_filter_json,
};
use crate::{
    AccessLog, Candidates, CollectionKind, ConsentLedger, EventStore, Page, PurgeState, RawPoint, RawStore,
    ScoredRecord, SearchRequest, StoreError, StoreManifest, StoredPoint, VectorStore, DENSE_VECTOR, SPARSE_VECTOR,
};
use ce_core::domain::{AccessRecord, ConsentGrant, RetrievalMode, Scope};

/// How to reach and lay out the server's collections.
#[derive(Clone)]
pub struct QdrantOptions {
    /// gRPC URL, e.g. `http://localhost:6334`.
    pub url: String,
    pub api_key: Option<String>,
    /// Collections are `<prefix>_activity`, `<prefix>_consent`, `<prefix>_access`.
    pub collection_prefix: String,
    /// Used when the collections are created; existing ones keep theirs.
    pub shard_number: Option<u32>,
    pub replication_factor: Option<u32>,
    /// Replication factor of the consent ledger when it is created
    /// (default: `replication_factor`); its write consistency factor is set
    /// to the same, so every acknowledged ledger write is on every replica.
    pub consent_replication_factor: Option<u32>,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Retries of a transiently failed request (so `retries + 1` attempts).
    pub retries: u32,
}

impl std::fmt::Debug for QdrantOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QdrantOptions")
            .field("url", &self.url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("collection_prefix", &self.collection_prefix)
            .field("shard_number", &self.shard_number)
            .field("replication_factor", &self.replication_factor)
            .field("consent_replication_factor", &self.consent_replication_factor)
            .field("timeout", &self.timeout)
            .field("retries", &self.retries)
            .finish()
    }
}

impl QdrantOptions {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            api_key: None,
            collection_prefix: "context_engine".into(),
            shard_number: None,
            replication_factor: None,
            consent_replication_factor: None,
            timeout: Duration::from_secs(10),
            retries: 3,
        }
    }
}

/// Collection metadata keys recording what a collection was made for.
const META_SCHEMA: &str = "context_engine_schema";
const META_MODEL: &str = "context_engine_model";
const META_DIMENSION: &str = "context_engine_dimension";
const META_BM25_AVG_LEN: &str = "context_engine_bm25_avg_len";
/// The ledger and the access log carry a constant 1-d vector, as in Edge.
const NO_VECTOR: &str = "none";

#[derive(Clone)]
pub struct QdrantStore {
    client: Arc<Qdrant>,
    activity: Arc<str>,
    consent: Arc<str>,
    access: Arc<str>,
    bm25: Arc<EdgeBm25>,
    retries: u32,
    manifest: Arc<StoreManifest>,
    /// Replicas every ledger read must hear from: `replication_factor −
    /// write_consistency_factor + 1` of the consent collection as it is
    /// (read at connect), so every read overlaps every acknowledged write.
    ledger_read_factor: Arc<std::sync::atomic::AtomicU64>,
    purge: Arc<ServerPurge>,
}

/// Vacuum passes forced after deletions (see `VectorStore::schedule_purge`).
#[derive(Default)]
struct ServerPurge {
    issued: std::sync::atomic::AtomicU64,
    purged: std::sync::atomic::AtomicU64,
    purged_at: std::sync::atomic::AtomicI64,
    running: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for QdrantStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QdrantStore").field("activity", &self.activity).finish()
    }
}

fn backend(operation: &'static str, e: QdrantError) -> StoreError {
    StoreError::Backend { operation, message: e.to_string() }
}

/// Worth another attempt: the server (or the way to it) was briefly unable,
/// not unwilling.
fn transient(e: &QdrantError) -> bool {
    use tonic::Code;
    match e {
        QdrantError::ResponseError { status } => {
            matches!(
                status.code(),
                Code::Unavailable | Code::DeadlineExceeded | Code::ResourceExhausted | Code::Aborted | Code::Unknown
            ) || peer_unreachable(status)
        }
        QdrantError::ResourceExhaustedError { .. } => true,
        QdrantError::Io(_) => true,
        _ => false,
    }
}

/// In a cluster, a write that must reach a peer that is down comes back as
/// INTERNAL ("Failed to apply update … via leader peer …: The service is
/// currently unavailable", seen on Qdrant 1.18.3 with a killed peer). It is
/// an unavailable replica, not a bug: retried, then reported UNAVAILABLE, so
/// a ledger write that cannot reach every replica fails closed as such.
/// While the cluster is still settling a killed peer's replicas, the same
/// write can come back as FAILED_PRECONDITION "No target shard N found for
/// update" (seen once on Qdrant 1.18.3 in CI, 2026-12-03): nothing was
/// applied, and the cause is the same missing peer, so it is treated the
/// same way.
fn peer_unreachable(status: &tonic::Status) -> bool {
    let message = status.message();
    match status.code() {
        tonic::Code::Internal => {
            ["The service is currently unavailable", "tcp connect error", "Connection refused", "consistency"]
                .iter()
                .any(|m| message.contains(m))
        }
        tonic::Code::FailedPrecondition => message.contains("No target shard") && message.contains("found for update"),
        _ => false,
    }
}

fn ordering() -> WriteOrdering {
    WriteOrdering { r#type: WriteOrderingType::Medium as i32 }
}

fn point_id(id: Uuid) -> PointId {
    PointId::from(id.to_string())
}

fn uuid_of(id: Option<PointId>) -> Result<Uuid, StoreError> {
    match id.and_then(|id| id.point_id_options) {
        Some(PointIdOptions::Uuid(text)) => {
            Uuid::parse_str(&text).map_err(|e| StoreError::CorruptPayload { id: text.clone(), message: e.to_string() })
        }
        Some(PointIdOptions::Num(n)) => {
            Err(StoreError::CorruptPayload { id: n.to_string(), message: "numeric point id".into() })
        }
        None => Err(StoreError::CorruptPayload { id: "?".into(), message: "point without id".into() }),
    }
}

/// Recent write ids kept in a consent entry (see `put_consent_if`): a write
/// is judged lost only if more writes than this land on the same entry
/// between its write and its read-back.
const CONSENT_WRITES_KEPT: usize = 16;

/// The write ids of a consent entry's payload, oldest first.
fn consent_writes(payload: &Map<String, Value>) -> Vec<String> {
    payload
        .get("writes")
        .and_then(Value::as_array)
        .map(|ids| ids.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

fn json_payload(payload: HashMap<String, qdrant::Value>) -> Map<String, Value> {
    Map::from(Payload::from(payload))
}

/// Translates the filter JSON of [`super::payload`] (the subset it
/// produces: `must` of keyword `value`/`any` matches, integer ranges and
/// `has_id`) into the gRPC type. Anything else is refused, never widened.
pub(crate) fn grpc_filter(filter: &Value) -> Result<Filter, StoreError> {
    let bad = |message: String| StoreError::Backend { operation: "build filter", message };
    let must = filter
        .get("must")
        .and_then(Value::as_array)
        .ok_or_else(|| bad(format!("expected {{\"must\": [...]}}, got {filter}")))?;
    if filter.as_object().is_some_and(|o| o.len() != 1) {
        return Err(bad(format!("only `must` filters are translated, got {filter}")));
    }
    let mut conditions = Vec::with_capacity(must.len());
    for condition in must {
        if let Some(ids) = condition.get("has_id") {
            let ids = ids.as_array().ok_or_else(|| bad(format!("bad has_id {condition}")))?;
            let ids = ids
                .iter()
                .map(|id| id.as_str().map(|s| PointId::from(s.to_string())))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| bad(format!("bad has_id {condition}")))?;
            conditions.push(Condition::has_id(ids));
            continue;
        }
        let key = condition
            .get("key")
            .and_then(Value::as_str)
            .ok_or_else(|| bad(format!("condition without key: {condition}")))?;
        if let Some(m) = condition.get("match") {
            if let Some(value) = m.get("value").and_then(Value::as_str) {
                conditions.push(Condition::matches(key, value.to_string()));
            } else if let Some(any) = m.get("any").and_then(Value::as_array) {
                let values = any
                    .iter()
                    .map(|v| v.as_str().map(str::to_string))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| bad(format!("non-string match.any in {condition}")))?;
                conditions.push(Condition::matches(key, values));
            } else {
                return Err(bad(format!("unsupported match {condition}")));
            }
        } else if let Some(range) = condition.get("range") {
            let bound = |name: &str| range.get(name).and_then(Value::as_f64);
            conditions.push(Condition::range(
                key,
                qdrant::Range { gte: bound("gte"), lte: bound("lte"), gt: bound("gt"), lt: bound("lt") },
            ));
        } else {
            return Err(bad(format!("unsupported condition {condition}")));
        }
    }
    Ok(Filter::must(conditions))
}

impl StoreManifest {
    fn metadata(&self) -> HashMap<String, Value> {
        [
            (META_SCHEMA.to_string(), Value::from(self.schema_version)),
            (META_MODEL.to_string(), Value::from(self.model_id.clone())),
            (META_DIMENSION.to_string(), Value::from(self.dimension as u64)),
            (META_BM25_AVG_LEN.to_string(), Value::from(self.bm25_avg_len)),
        ]
        .into_iter()
        .collect()
    }

    /// Reads a manifest back from collection metadata; `None` when the
    /// collection carries none of ours.
    fn from_metadata(metadata: HashMap<String, qdrant::Value>) -> Option<Self> {
        let map = json_payload(metadata);
        Some(Self {
            schema_version: map.get(META_SCHEMA)?.as_u64()? as u32,
            model_id: map.get(META_MODEL)?.as_str()?.to_string(),
            dimension: map.get(META_DIMENSION)?.as_u64()? as usize,
            bm25_avg_len: map.get(META_BM25_AVG_LEN)?.as_f64()?,
        })
    }
}

/// Index JSON of [`super::payload`] → gRPC field type and parameters.
fn index_params(schema: &Value) -> Result<(FieldType, qdrant::payload_index_params::IndexParams), StoreError> {
    use qdrant::payload_index_params::IndexParams;
    let flag = |name: &str| schema.get(name).and_then(Value::as_bool);
    match schema.get("type").and_then(Value::as_str) {
        Some("keyword") => Ok((
            FieldType::Keyword,
            IndexParams::KeywordIndexParams(qdrant::KeywordIndexParams {
                is_tenant: flag("is_tenant"),
                enable_hnsw: flag("enable_hnsw"),
                ..Default::default()
            }),
        )),
        Some("integer") => Ok((
            FieldType::Integer,
            IndexParams::IntegerIndexParams(qdrant::IntegerIndexParams {
                lookup: flag("lookup"),
                range: flag("range"),
                enable_hnsw: flag("enable_hnsw"),
                ..Default::default()
            }),
        )),
        other => {
            Err(StoreError::Backend { operation: "create index", message: format!("unsupported index {other:?}") })
        }
    }
}

impl QdrantStore {
    /// Connects, creates missing collections and indexes, and checks that
    /// existing collections were made for `manifest` (model and schema).
    pub async fn connect(options: &QdrantOptions, manifest: &StoreManifest) -> Result<Self, StoreError> {
        let mut builder = Qdrant::from_url(&options.url)
            .timeout(options.timeout)
            .connect_timeout(options.timeout)
            .skip_compatibility_check();
        if let Some(key) = &options.api_key {
            builder = builder.api_key(key.clone());
        }
        let client = builder.build().map_err(|e| backend("connect", e))?;
        let prefix = &options.collection_prefix;
        let store = Self {
            client: Arc::new(client),
            activity: format!("{prefix}_activity").into(),
            consent: format!("{prefix}_consent").into(),
            access: format!("{prefix}_access").into(),
            bm25: Arc::new(bm25(manifest.bm25_avg_len)?),
            retries: options.retries,
            manifest: Arc::new(manifest.clone()),
            ledger_read_factor: Arc::new(std::sync::atomic::AtomicU64::new(1)),
            purge: Arc::default(),
        };
        store.client.health_check().await.map_err(|e| StoreError::Backend {
            operation: "connect",
            message: format!("Qdrant at {} does not answer: {e}", options.url),
        })?;
        let dense = [(DENSE_VECTOR.to_string(), manifest.dimension as u64)];
        let sparse = Some(SPARSE_VECTOR);
        store.ensure(&store.activity, &dense, sparse, event_indexes(), options, false).await?;
        let none = [(NO_VECTOR.to_string(), 1u64)];
        store.ensure(&store.consent, &none, None, consent_indexes(), options, true).await?;
        store.ensure(&store.access, &none, None, access_indexes(), options, false).await?;
        let (replicas, write_factor) = store.ledger_replication().await?;
        let read_factor = u64::from(replicas.saturating_sub(write_factor) + 1);
        store.ledger_read_factor.store(read_factor, std::sync::atomic::Ordering::SeqCst);
        tracing::info!(
            replicas,
            write_factor,
            read_factor,
            "consent ledger: every read hears from read_factor replicas, so it overlaps every acknowledged write"
        );
        Ok(store)
    }

    /// What the existing collections at `options` were made for (their
    /// metadata).
    pub async fn read_manifest(options: &QdrantOptions) -> Result<StoreManifest, StoreError> {
        let mut builder = Qdrant::from_url(&options.url).timeout(options.timeout).skip_compatibility_check();
        if let Some(key) = &options.api_key {
            builder = builder.api_key(key.clone());
        }
        let client = builder.build().map_err(|e| backend("connect", e))?;
        let name = format!("{}_activity", options.collection_prefix);
        let info = client.collection_info(&name).await.map_err(|e| backend("collection info", e))?;
        let metadata = info.result.and_then(|r| r.config).map(|c| c.metadata).unwrap_or_default();
        StoreManifest::from_metadata(metadata).ok_or_else(|| StoreError::Backend {
            operation: "read store manifest",
            message: format!("collection {name} at {} carries no context-engine metadata", options.url),
        })
    }

    /// The consent collection's replication factor and write consistency
    /// factor, as the server reports them now.
    async fn ledger_replication(&self) -> Result<(u32, u32), StoreError> {
        let info = self.retry("collection info", || self.client.collection_info(&*self.consent)).await?;
        let params = info.result.and_then(|r| r.config).and_then(|c| c.params).unwrap_or_default();
        let replicas = params.replication_factor.unwrap_or(1).max(1);
        let write_factor = params.write_consistency_factor.unwrap_or(1).clamp(1, replicas);
        Ok((replicas, write_factor))
    }

    fn collection(&self, kind: CollectionKind) -> &str {
        match kind {
            CollectionKind::Activity => &self.activity,
            CollectionKind::Consent => &self.consent,
            CollectionKind::Access => &self.access,
        }
    }

    /// Runs `call` with bounded retries of transient failures.
    async fn retry<T, F, Fut>(&self, operation: &'static str, mut call: F) -> Result<T, StoreError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, QdrantError>>,
    {
        let mut delay = Duration::from_millis(50);
        let mut attempt = 0;
        loop {
            match call().await {
                Ok(value) => return Ok(value),
                Err(e) if attempt < self.retries && transient(&e) => {
                    attempt += 1;
                    tracing::warn!(operation, attempt, error = %e, "Qdrant request failed; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(2));
                }
                Err(e) if transient(&e) => {
                    return Err(StoreError::Unavailable {
                        operation,
                        message: format!("{e} (after {attempt} retries)"),
                    })
                }
                Err(e) => return Err(backend(operation, e)),
            }
        }
    }

    async fn ensure(
        &self,
        name: &str,
        dense: &[(String, u64)],
        sparse: Option<&str>,
        indexes: Vec<(&'static str, Value)>,
        options: &QdrantOptions,
        write_all: bool,
    ) -> Result<(), StoreError> {
        let exists = self.retry("collection exists", || self.client.collection_exists(name)).await?;
        let manifest = &*self.manifest;
        if exists {
            let info = self.retry("collection info", || self.client.collection_info(name)).await?;
            let config = info.result.and_then(|r| r.config).unwrap_or_default();
            let found_vectors: HashMap<String, u64> =
                match config.params.as_ref().and_then(|p| p.vectors_config.as_ref()).and_then(|v| v.config.clone()) {
                    Some(vectors_config::Config::ParamsMap(map)) => {
                        map.map.into_iter().map(|(name, params)| (name, params.size)).collect()
                    }
                    Some(vectors_config::Config::Params(params)) => {
                        [(String::new(), params.size)].into_iter().collect()
                    }
                    None => HashMap::new(),
                };
            for (vector, size) in dense {
                if found_vectors.get(vector) != Some(size) {
                    return Err(StoreError::Incompatible {
                        path: format!("Qdrant collection {name}"),
                        expected: format!("vector {vector:?} of {size} dimensions"),
                        found: format!("vectors {found_vectors:?}"),
                    });
                }
            }
            match StoreManifest::from_metadata(config.metadata) {
                Some(found) if &found != manifest => {
                    return Err(StoreError::Incompatible {
                        path: format!("Qdrant collection {name}"),
                        expected: manifest.describe(),
                        found: found.describe(),
                    })
                }
                Some(_) => {}
                None => tracing::warn!(
                    collection = name,
                    "collection carries no engine metadata (made by hand, or a server older than 1.16); \
                     only its vector dimension was checked"
                ),
            }
        } else {
            let vectors = VectorsConfig {
                config: Some(vectors_config::Config::ParamsMap(VectorParamsMap {
                    map: dense
                        .iter()
                        .map(|(name, size)| {
                            (
                                name.clone(),
                                VectorParams { size: *size, distance: Distance::Cosine as i32, ..Default::default() },
                            )
                        })
                        .collect(),
                })),
            };
            let mut create = CreateCollectionBuilder::new(name)
                .vectors_config(vectors)
                // Every search filters on one user: no global graph, a graph
                // per large tenant (see the Edge store).
                .hnsw_config(HnswConfigDiff { m: Some(0), payload_m: Some(16), ..Default::default() })
                .metadata(manifest.metadata());
            if let Some(sparse) = sparse {
                create = create.sparse_vectors_config(SparseVectorConfig {
                    map: [(
                        sparse.to_string(),
                        SparseVectorParams { modifier: Some(qdrant::Modifier::Idf as i32), ..Default::default() },
                    )]
                    .into_iter()
                    .collect(),
                });
            }
            if let Some(shards) = options.shard_number {
                create = create.shard_number(shards);
            }
            let replicas = if write_all {
                options.consent_replication_factor.or(options.replication_factor)
            } else {
                options.replication_factor
            };
            if let Some(replicas) = replicas {
                create = create.replication_factor(replicas);
                if write_all {
                    create = create.write_consistency_factor(replicas);
                }
            }
            let create = create.build();
            match self.retry("create collection", || self.client.create_collection(create.clone())).await {
                Ok(_) => tracing::info!(collection = name, "Qdrant collection created"),
                // Another replica created it first.
                Err(_) if self.client.collection_exists(name).await.unwrap_or(false) => {}
                Err(e) => return Err(e),
            }
        }
        // Idempotent: Qdrant keeps an existing index with the same schema.
        for (field, schema) in indexes {
            let (field_type, params) = index_params(&schema)?;
            let request = CreateFieldIndexCollectionBuilder::new(name, field, field_type)
                .field_index_params(params)
                .wait(true)
                .build();
            self.retry("create index", || self.client.create_field_index(request.clone())).await?;
        }
        Ok(())
    }

    async fn upsert_points(&self, collection: &str, points: Vec<PointStruct>) -> Result<(), StoreError> {
        if points.is_empty() {
            return Ok(());
        }
        let request = UpsertPointsBuilder::new(collection, points).wait(true).ordering(ordering()).build();
        self.retry("upsert", || self.client.upsert_points(request.clone())).await.map(|_| ())
    }

    async fn count_filter(&self, collection: &str, filter: Filter) -> Result<usize, StoreError> {
        let request = CountPointsBuilder::new(collection).filter(filter).exact(true).build();
        let response = self.retry("count", || self.client.count(request.clone())).await?;
        Ok(response.result.map_or(0, |r| r.count as usize))
    }

    /// Deletes by filter; returns the count just before (a receipt; see
    /// the Edge store).
    async fn delete_filter(&self, collection: &str, filter: Filter) -> Result<usize, StoreError> {
        let n = self.count_filter(collection, filter.clone()).await?;
        let request = DeletePointsBuilder::new(collection).points(filter).wait(true).ordering(ordering()).build();
        self.retry("delete", || self.client.delete_points(request.clone())).await?;
        Ok(n)
    }

    /// One page of `collection` in id order (payloads, and the dense vector
    /// when `vectors`).
    pub(crate) async fn scroll_raw(
        &self,
        collection: &str,
        filter: Option<Filter>,
        from: Option<Uuid>,
        limit: usize,
        vectors: bool,
    ) -> Result<(Vec<(Uuid, Option<Vec<f32>>, Map<String, Value>)>, Option<Uuid>), StoreError> {
        self.scroll_consistent(collection, filter, from, limit, vectors, 1).await
    }

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
        let filter = grpc_filter(&scope_filter_json(&scope))?;
        let (rows, next) = self.scroll_raw(&self.activity, Some(filter), from, limit, vectors).await?;
        event_page(rows, next, vectors)
    }

    /// As `scroll_raw`, hearing from `replicas` replicas of each shard.
    /// The raw payload of one consent ledger entry, read as `consents`
    /// reads (from every replica the ledger is written to).
    async fn consent_entry(&self, id: Uuid) -> Result<Option<Map<String, Value>>, StoreError> {
        let filter = Filter::must([Condition::has_id([point_id(id)])]);
        let replicas = self.ledger_read_factor.load(std::sync::atomic::Ordering::SeqCst);
        let (rows, _) = self.scroll_consistent(&self.consent, Some(filter), None, 1, false, replicas).await?;
        Ok(rows.into_iter().next().map(|(_, _, payload)| payload))
    }

    async fn scroll_consistent(
        &self,
        collection: &str,
        filter: Option<Filter>,
        from: Option<Uuid>,
        limit: usize,
        vectors: bool,
        replicas: u64,
    ) -> Result<(Vec<(Uuid, Option<Vec<f32>>, Map<String, Value>)>, Option<Uuid>), StoreError> {
        let mut request = ScrollPointsBuilder::new(collection).limit(limit.max(1) as u32).with_payload(true);
        if replicas > 1 {
            request = request.read_consistency(qdrant::read_consistency::Value::Factor(replicas));
        }
        if vectors {
            request = request.with_vectors(VectorsSelector { names: vec![DENSE_VECTOR.to_string()] });
        }
        if let Some(filter) = filter {
            request = request.filter(filter);
        }
        if let Some(from) = from {
            request = request.offset(point_id(from));
        }
        let request = request.build();
        let response = self.retry("scroll", || self.client.scroll(request.clone())).await?;
        let next = response.next_page_offset.map(|id| uuid_of(Some(id))).transpose()?;
        let rows = response
            .result
            .into_iter()
            .map(|point| {
                let vector = point.vectors.and_then(|v| v.get_vector_by_name(DENSE_VECTOR)).and_then(|v| match v {
                    vector_output::Vector::Dense(dense) => Some(dense.data),
                    _ => None,
                });
                Ok((uuid_of(point.id)?, vector, json_payload(point.payload)))
            })
            .collect::<Result<_, StoreError>>()?;
        Ok((rows, next))
    }

    /// Forces Qdrant's vacuum optimiser on each collection: `deleted_threshold`
    /// 0 and `vacuum_min_vector_number` 100 (the smallest the server
    /// accepts), waits until the collection is green again (at most 60 s),
    /// then restores the thresholds it found.
    async fn vacuum_all(&self) -> Result<(), StoreError> {
        use qdrant_client::qdrant::{CollectionStatus, OptimizersConfigDiff, UpdateCollectionBuilder};
        for name in self.collections() {
            let info = self.retry("collection info", || self.client.collection_info(name)).await?;
            let found = info.result.and_then(|r| r.config).and_then(|c| c.optimizer_config).unwrap_or_default();
            let saved = OptimizersConfigDiff {
                deleted_threshold: Some(found.deleted_threshold.unwrap_or(0.2)),
                vacuum_min_vector_number: Some(found.vacuum_min_vector_number.unwrap_or(1000)),
                ..Default::default()
            };
            let force = OptimizersConfigDiff {
                deleted_threshold: Some(0.0),
                vacuum_min_vector_number: Some(100),
                ..Default::default()
            };
            let update = UpdateCollectionBuilder::new(name).optimizers_config(force).build();
            self.retry("force vacuum", || self.client.update_collection(update.clone())).await?;
            let deadline = std::time::Instant::now() + Duration::from_secs(60);
            loop {
                let info = self.retry("collection info", || self.client.collection_info(name)).await?;
                let status = info.result.map(|r| r.status).unwrap_or_default();
                if status == CollectionStatus::Green as i32 || std::time::Instant::now() > deadline {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            let restore = UpdateCollectionBuilder::new(name).optimizers_config(saved).build();
            self.retry("restore optimizers", || self.client.update_collection(restore.clone())).await?;
        }
        Ok(())
    }

    /// Names of the three collections (activity, consent, access).
    pub fn collections(&self) -> [&str; 3] {
        [&self.activity, &self.consent, &self.access]
    }

    /// Drops the three collections (tests; an operator's `migrate` back).
    pub async fn drop_collections(&self) -> Result<(), StoreError> {
        for name in self.collections() {
            self.retry("delete collection", || self.client.delete_collection(name)).await?;
        }
        Ok(())
    }

    fn event_point(&self, point: StoredPoint) -> Result<PointStruct, StoreError> {
        let payload = event_payload(&point.record)?;
        let sparse = self.bm25.embed_document(&point.record.text);
        let vectors = NamedVectors::default()
            .add_vector(DENSE_VECTOR, Vector::new_dense(point.vector))
            .add_vector(SPARSE_VECTOR, Vector::new_sparse(sparse.indices, sparse.values));
        Ok(PointStruct::new(point_id(point.id), vectors, Payload::from(payload)))
    }
}

fn no_vector() -> NamedVectors {
    NamedVectors::default().add_vector(NO_VECTOR, Vector::new_dense(vec![1.0f32]))
}

fn scored(hits: Vec<qdrant::ScoredPoint>) -> Result<Vec<ScoredRecord>, StoreError> {
    hits.into_iter()
        .map(|hit| {
            let id = uuid_of(hit.id)?;
            let vector = hit
                .vectors
                .and_then(|v| v.get_vector_by_name(DENSE_VECTOR))
                .and_then(|v| match v {
                    vector_output::Vector::Dense(dense) => Some(dense.data),
                    _ => None,
                })
                .filter(|v| !v.is_empty())
                .ok_or_else(|| StoreError::CorruptPayload {
                    id: id.to_string(),
                    message: "hit without its dense vector".into(),
                })?;
            let record = from_payload(&id.to_string(), json_payload(hit.payload))?;
            Ok(ScoredRecord { id, score: hit.score, record, vector })
        })
        .collect()
}

#[async_trait]
impl RawStore for QdrantStore {
    fn manifest(&self) -> &StoreManifest {
        &self.manifest
    }

    async fn total(&self, kind: CollectionKind) -> Result<usize, StoreError> {
        let request = CountPointsBuilder::new(self.collection(kind)).exact(true).build();
        let response = self.retry("count", || self.client.count(request.clone())).await?;
        Ok(response.result.map_or(0, |r| r.count as usize))
    }

    async fn export_page(
        &self,
        kind: CollectionKind,
        from: Option<Uuid>,
        limit: usize,
    ) -> Result<(Vec<RawPoint>, Option<Uuid>), StoreError> {
        let vectors = kind == CollectionKind::Activity;
        let (rows, next) = self.scroll_raw(self.collection(kind), None, from, limit, vectors).await?;
        Ok((rows.into_iter().map(|(id, vector, payload)| RawPoint { id, vector, payload }).collect(), next))
    }

    async fn import(&self, kind: CollectionKind, points: Vec<RawPoint>) -> Result<(), StoreError> {
        let mut structs = Vec::with_capacity(points.len());
        for point in points {
            let vectors = match kind {
                CollectionKind::Activity => {
                    let (dense, text) = point.event_parts()?;
                    let sparse = self.bm25.embed_document(&text);
                    NamedVectors::default()
                        .add_vector(DENSE_VECTOR, Vector::new_dense(dense))
                        .add_vector(SPARSE_VECTOR, Vector::new_sparse(sparse.indices, sparse.values))
                }
                CollectionKind::Consent | CollectionKind::Access => no_vector(),
            };
            structs.push(PointStruct::new(point_id(point.id), vectors, Payload::from(point.payload)));
        }
        self.upsert_points(self.collection(kind), structs).await
    }

    async fn fetch(&self, kind: CollectionKind, ids: Vec<Uuid>) -> Result<Vec<RawPoint>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let n = ids.len();
        let filter = Filter::must([Condition::has_id(ids.into_iter().map(point_id))]);
        let vectors = kind == CollectionKind::Activity;
        let (rows, _) = self.scroll_raw(self.collection(kind), Some(filter), None, n, vectors).await?;
        Ok(rows.into_iter().map(|(id, vector, payload)| RawPoint { id, vector, payload }).collect())
    }
}

#[async_trait]
impl EventStore for QdrantStore {
    async fn upsert(&self, points: Vec<StoredPoint>) -> Result<(), StoreError> {
        let points = points.into_iter().map(|p| self.event_point(p)).collect::<Result<Vec<_>, _>>()?;
        self.upsert_points(&self.activity, points).await
    }

    async fn search(&self, request: SearchRequest) -> Result<Candidates, StoreError> {
        if request.scope.is_empty() || request.limit == 0 {
            return Ok(Candidates::default());
        }
        let filter = grpc_filter(&scope_filter_json(&request.scope))?;
        let want_dense = matches!(request.mode, RetrievalMode::Dense | RetrievalMode::Hybrid);
        let sparse_query = match request.mode {
            RetrievalMode::Sparse | RetrievalMode::Hybrid => Some(self.bm25.embed_query(&request.text)),
            RetrievalMode::Dense => None,
        }
        .filter(|v| !v.indices.is_empty());
        let query = |query: Query, using: &str| {
            let mut q = QueryPointsBuilder::new(self.activity.to_string())
                .query(query)
                .using(using)
                .filter(filter.clone())
                .limit(request.limit as u64)
                .with_payload(true)
                .with_vectors(VectorsSelector { names: vec![DENSE_VECTOR.to_string()] });
            if request.exact {
                q = q.params(SearchParamsBuilder::default().exact(true));
            }
            q.build()
        };
        let mut queries = Vec::new();
        if want_dense {
            queries.push(query(Query::new_nearest(request.vector.clone()), DENSE_VECTOR));
        }
        if let Some(sparse) = &sparse_query {
            let vector = qdrant::VectorInput::new_sparse(sparse.indices.clone(), sparse.values.clone());
            queries.push(query(Query::new_nearest(vector), SPARSE_VECTOR));
        }
        if queries.is_empty() {
            return Ok(Candidates::default());
        }
        // Both lists in one round trip.
        let batch = QueryBatchPointsBuilder::new(self.activity.to_string(), queries).build();
        let response = self.retry("search", || self.client.query_batch(batch.clone())).await?;
        let mut lists = response.result.into_iter().map(|r| r.result);
        let dense = if want_dense { lists.next().unwrap_or_default() } else { Vec::new() };
        let sparse = if sparse_query.is_some() { lists.next().unwrap_or_default() } else { Vec::new() };
        Ok(Candidates { dense: scored(dense)?, sparse: scored(sparse)? })
    }

    async fn count(&self, scope: Scope) -> Result<usize, StoreError> {
        if scope.is_empty() {
            return Ok(0);
        }
        self.count_filter(&self.activity, grpc_filter(&scope_filter_json(&scope))?).await
    }

    async fn delete(&self, scope: Scope) -> Result<usize, StoreError> {
        if scope.is_empty() {
            return Ok(0);
        }
        self.delete_filter(&self.activity, grpc_filter(&scope_filter_json(&scope))?).await
    }

    async fn delete_ids(&self, ids: Vec<Uuid>) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        let ids = PointsIdsList { ids: ids.into_iter().map(point_id).collect() };
        let request =
            DeletePointsBuilder::new(self.activity.to_string()).points(ids).wait(true).ordering(ordering()).build();
        self.retry("delete", || self.client.delete_points(request.clone())).await.map(|_| ())
    }

    async fn scroll(&self, scope: Scope, from: Option<Uuid>, limit: usize) -> Result<Page, StoreError> {
        self.event_page(scope, from, limit, false).await
    }

    async fn scroll_with_vectors(&self, scope: Scope, from: Option<Uuid>, limit: usize) -> Result<Page, StoreError> {
        self.event_page(scope, from, limit, true).await
    }
}

#[async_trait]
impl ConsentLedger for QdrantStore {
    async fn consents(&self, user_ids: Vec<String>) -> Result<Vec<ConsentGrant>, StoreError> {
        if user_ids.is_empty() {
            return Ok(Vec::new());
        }
        let filter = grpc_filter(&users_filter_json(&user_ids))?;
        let mut grants = Vec::new();
        let mut from = None;
        loop {
            let replicas = self.ledger_read_factor.load(std::sync::atomic::Ordering::SeqCst);
            let (rows, next) =
                self.scroll_consistent(&self.consent, Some(filter.clone()), from, 1000, false, replicas).await?;
            for (id, _, payload) in rows {
                grants.push(from_payload(&id.to_string(), payload)?);
            }
            match next {
                Some(next) => from = Some(next),
                None => return Ok(grants),
            }
        }
    }

    async fn put_consent(&self, grant: ConsentGrant) -> Result<(), StoreError> {
        let id = consent_point_id(&grant);
        let mut payload = consent_payload(&grant)?;
        // Carried forward, so a conditional writer's read-back still finds
        // its id (`put_consent_if`).
        let writes = self.consent_entry(id).await?.as_ref().map(consent_writes).unwrap_or_default();
        payload.insert("writes".into(), Value::from(writes));
        let point = PointStruct::new(point_id(id), no_vector(), Payload::from(payload));
        self.upsert_points(&self.consent, vec![point]).await
    }

    /// Qdrant's conditional upsert: `update_filter` on the stored version
    /// (an entry written before the `version` field existed matches too),
    /// or `insert_only` for a new key; Qdrant does not say whether the
    /// point was written, so the entry is read back (from as many replicas
    /// as every ledger read) and compared.
    /// Conditional write of one ledger entry. Whether *this* write applied
    /// is told by a write id: each write appends a fresh one to the list of
    /// recent write ids it read from the entry at `expected` (the condition
    /// guarantees it applies only on that entry), and a later write carries
    /// the list forward. Reading the entry back and comparing it with
    /// `grant` cannot tell: another replica's write made right after ours
    /// hides ours, and the engine would then apply its change twice.
    async fn put_consent_if(&self, grant: ConsentGrant, expected: Option<u64>) -> Result<bool, StoreError> {
        let id = consent_point_id(&grant);
        let current = self.consent_entry(id).await?;
        let stored_version = current.as_ref().and_then(|p| p.get("version")).and_then(Value::as_u64);
        if stored_version.is_some() && stored_version != expected {
            return Ok(false);
        }
        let mut writes = current.as_ref().map(consent_writes).unwrap_or_default();
        let write_id = Uuid::new_v4().to_string();
        writes.push(write_id.clone());
        let keep = writes.len().saturating_sub(CONSENT_WRITES_KEPT);
        writes.drain(..keep);
        let mut payload = consent_payload(&grant)?;
        payload.insert("writes".into(), Value::from(writes));
        let point = PointStruct::new(point_id(id), no_vector(), Payload::from(payload));
        let mut request =
            UpsertPointsBuilder::new(self.consent.to_string(), vec![point]).wait(true).ordering(ordering());
        if let Some(version) = expected {
            request = request.update_filter(Filter::should([
                Condition::matches("version", version as i64),
                Condition::is_empty("version"),
            ]));
        }
        request = match expected {
            // A new version: update only (a filtered upsert still inserts a
            // missing point, which would bring back an entry another replica
            // just erased).
            Some(version) if version != grant.version => request.update_mode(qdrant::UpdateMode::UpdateOnly),
            // The same version written again (the engine's repair of an entry
            // a failed write left on only some replicas): a replica that
            // lacks the point must get it, so missing points are inserted.
            Some(_) => request,
            None => request.update_mode(qdrant::UpdateMode::InsertOnly),
        };
        let request = request.build();
        self.retry("put consent", || self.client.upsert_points(request.clone())).await?;
        let after = self.consent_entry(id).await?;
        Ok(after.as_ref().is_some_and(|p| consent_writes(p).contains(&write_id)))
    }

    async fn delete_consents(&self, user_id: String) -> Result<usize, StoreError> {
        self.delete_filter(&self.consent, grpc_filter(&user_filter_json(&user_id))?).await
    }
}

#[async_trait]
impl AccessLog for QdrantStore {
    async fn append_access(&self, record: AccessRecord) -> Result<(), StoreError> {
        let id = Uuid::parse_str(&record.access_id)
            .map_err(|e| StoreError::Backend { operation: "append access", message: e.to_string() })?;
        let payload = access_payload(&record)?;
        let point = PointStruct::new(point_id(id), no_vector(), Payload::from(payload));
        self.upsert_points(&self.access, vec![point]).await
    }

    async fn access_log(&self, user_id: String, limit: usize) -> Result<Vec<AccessRecord>, StoreError> {
        let request = ScrollPointsBuilder::new(self.access.to_string())
            .filter(grpc_filter(&user_filter_json(&user_id))?)
            .limit(limit.max(1) as u32)
            .with_payload(true)
            .order_by(OrderByBuilder::new("at").direction(Direction::Desc as i32))
            .build();
        let response = self.retry("access log", || self.client.scroll(request.clone())).await?;
        response
            .result
            .into_iter()
            .map(|point| {
                let id = uuid_of(point.id)?;
                from_payload(&id.to_string(), json_payload(point.payload))
            })
            .collect()
    }

    async fn delete_access(&self, user_id: String) -> Result<usize, StoreError> {
        self.delete_filter(&self.access, grpc_filter(&user_filter_json(&user_id))?).await
    }

    async fn count_access(&self, user_id: String) -> Result<usize, StoreError> {
        self.count_filter(&self.access, grpc_filter(&user_filter_json(&user_id))?).await
    }
}

#[async_trait]
impl VectorStore for QdrantStore {
    async fn schedule_purge(&self) -> Result<u64, StoreError> {
        use std::sync::atomic::Ordering::SeqCst;
        // Counted after the delete returned (wait=true): a pass that reads
        // this count covers it.
        let ticket = self.purge.issued.fetch_add(1, SeqCst) + 1;
        let this = self.clone();
        tokio::spawn(async move {
            let _running = this.purge.running.lock().await;
            let target = this.purge.issued.load(SeqCst);
            if this.purge.purged.load(SeqCst) >= target {
                return;
            }
            match this.vacuum_all().await {
                Ok(()) => {
                    let now = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.as_secs() as i64);
                    this.purge.purged_at.store(now, SeqCst);
                    this.purge.purged.fetch_max(target, SeqCst);
                }
                Err(e) => tracing::error!(error = %e, "forcing Qdrant's vacuum failed; the next erasure retries"),
            }
        });
        Ok(ticket)
    }

    async fn purge_status(&self, ticket: u64) -> Result<PurgeState, StoreError> {
        use std::sync::atomic::Ordering::SeqCst;
        Ok(if ticket > self.purge.issued.load(SeqCst) {
            PurgeState::Unknown
        } else if ticket <= self.purge.purged.load(SeqCst) {
            PurgeState::SegmentsVacuumed { at: self.purge.purged_at.load(SeqCst) }
        } else {
            PurgeState::Pending
        })
    }

    /// Every acknowledged write is already applied and in Qdrant's WAL.
    async fn flush(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SCHEMA_VERSION;
    use ce_core::domain::TimeWindow;

    #[test]
    fn a_missing_peer_is_unavailable_and_a_refusal_is_not() {
        use tonic::{Code, Status};
        let transient =
            |code, message: &str| transient(&QdrantError::ResponseError { status: Status::new(code, message) });
        // Both as Qdrant 1.18.3 reported them with a peer of three killed.
        assert!(transient(
            Code::Internal,
            "Failed to apply update via leader peer 1: The service is currently unavailable"
        ));
        assert!(transient(
            Code::FailedPrecondition,
            "Pre-condition failure: Precondition failed: No target shard 2 found for update"
        ));
        // A refused conditional write or a bad request is an answer, not an outage.
        assert!(!transient(Code::FailedPrecondition, "Pre-condition failure: version mismatch"));
        assert!(!transient(Code::InvalidArgument, "No target shard 2 found for update"));
        assert!(!transient(Code::Internal, "segment is corrupted"));
    }

    #[test]
    fn every_scope_filter_translates() {
        let mut scope = Scope::user_sources("u1", vec!["a".into(), "b".into()]);
        scope.event_names = vec!["Purchase".into()];
        scope.event_families = vec!["purchase".into()];
        scope.time_window = TimeWindow { start: Some(10), end: Some(20) };
        let filter = grpc_filter(&scope_filter_json(&scope)).unwrap();
        assert_eq!(filter.must.len(), 5);
        assert!(filter.should.is_empty() && filter.must_not.is_empty());
        let nothing = grpc_filter(&scope_filter_json(&Scope::user_sources("u1", vec![]))).unwrap();
        assert_eq!(nothing.must.len(), 2);
        assert!(grpc_filter(&user_filter_json("u")).is_ok());
        assert!(grpc_filter(&users_filter_json(&["u".into(), "v".into()])).is_ok());
    }

    #[test]
    fn unknown_filters_are_refused_not_widened() {
        for bad in [
            serde_json::json!({"should": []}),
            serde_json::json!({"must": [{"key": "x", "geo_radius": {}}]}),
            serde_json::json!({"must": [{"match": {"value": "u"}}]}),
            serde_json::json!({"must": [], "must_not": []}),
        ] {
            assert!(grpc_filter(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn manifest_round_trips_through_collection_metadata() {
        let manifest =
            StoreManifest { schema_version: SCHEMA_VERSION, model_id: "m".into(), dimension: 384, bm25_avg_len: 20.0 };
        let metadata = manifest.metadata().into_iter().map(|(k, v)| (k, qdrant::Value::from(v))).collect();
        assert_eq!(StoreManifest::from_metadata(metadata), Some(manifest));
    }
}
