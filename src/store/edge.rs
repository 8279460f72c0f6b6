//! [`VectorStore`] on Qdrant Edge: Qdrant's engine in-process (WAL, segments,
//! payload indexes), persisted under `<data-dir>/activity`.
//!
//! Qdrant Edge's API is synchronous, so every call runs on tokio's blocking
//! pool. The shard sits behind a `RwLock`: reads and writes share it (the
//! shard synchronises them itself, and its WAL lock orders writes), while
//! `flush` and `close` take it exclusively, because `EdgeShard::flush`
//! expects to find its locks free.
//!
//! Durability: `upsert` returns after the operation is appended to the WAL
//! (a memory-mapped file) and applied; a crashed *process* loses nothing that
//! was acknowledged, because the kernel owns the mapped pages. `flush`
//! (called on shutdown) also syncs them to disk.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use parking_lot::RwLock;
use qdrant_edge::{
    CountRequest, Distance, EdgeConfig, EdgeShard, EdgeVectorParams, Filter, NamedQuery,
    PayloadFieldSchema, PointId as ExtendedPointId, PointInsertOperations, PointOperations,
    PointStruct, QueryEnum, SearchRequest as EdgeSearch, UpdateOperation, VectorInternal,
    WithPayloadInterface,
};
use serde::{Deserialize, Serialize};

use super::payload::{filter_json, from_payload, indexes, to_payload};
use super::{
    ScoredRecord, SearchRequest, StoreError, StoreFilter, StoredPoint, VectorStore, DENSE_VECTOR,
    SCHEMA_VERSION,
};

#[derive(Debug, Clone)]
pub struct EdgeOptions {
    pub data_dir: PathBuf,
    /// Dimension of the embedding model; checked against an existing store.
    pub dimension: usize,
    /// Model identity, recorded at creation and checked on every open.
    pub model_id: String,
}

/// What a data directory was made for; a mismatch refuses to open.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct StoreManifest {
    schema_version: u32,
    model_id: String,
    dimension: usize,
}

const MANIFEST_FILE: &str = "engine_store.json";

#[derive(Clone)]
pub struct EdgeStore {
    shard: Arc<RwLock<Option<EdgeShard>>>,
    path: Arc<PathBuf>,
}

impl std::fmt::Debug for EdgeStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EdgeStore")
            .field("path", &self.path)
            .finish()
    }
}

fn backend(operation: &'static str) -> impl Fn(qdrant_edge::OperationError) -> StoreError {
    move |e| StoreError::Backend {
        operation,
        message: e.to_string(),
    }
}

fn io(operation: &'static str) -> impl Fn(std::io::Error) -> StoreError {
    move |e| StoreError::Backend {
        operation,
        message: e.to_string(),
    }
}

fn qdrant_filter(filter: &StoreFilter) -> Result<Filter, StoreError> {
    serde_json::from_value(filter_json(filter)).map_err(|e| StoreError::Backend {
        operation: "build filter",
        message: e.to_string(),
    })
}

impl EdgeStore {
    /// Opens (or creates) the store under `options.data_dir`. Blocking: call
    /// it at start-up or from `spawn_blocking`.
    pub fn open(options: &EdgeOptions) -> Result<Self, StoreError> {
        let path = options.data_dir.join("activity");
        std::fs::create_dir_all(&path).map_err(io("create data dir"))?;
        let wanted = StoreManifest {
            schema_version: SCHEMA_VERSION,
            model_id: options.model_id.clone(),
            dimension: options.dimension,
        };
        let manifest_path = options.data_dir.join(MANIFEST_FILE);
        match std::fs::read(&manifest_path) {
            Ok(bytes) => {
                let found: StoreManifest =
                    serde_json::from_slice(&bytes).map_err(|e| StoreError::Incompatible {
                        path: manifest_path.display().to_string(),
                        expected: format!("{wanted:?}"),
                        found: format!("an unreadable manifest ({e})"),
                    })?;
                if found != wanted {
                    return Err(StoreError::Incompatible {
                        path: options.data_dir.display().to_string(),
                        expected: format!(
                            "schema {} / model {} / {} dimensions",
                            wanted.schema_version, wanted.model_id, wanted.dimension
                        ),
                        found: format!(
                            "schema {} / model {} / {} dimensions",
                            found.schema_version, found.model_id, found.dimension
                        ),
                    });
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io("read store manifest")(e)),
        }
        let shard = if path.join("edge_config.json").exists() {
            EdgeShard::load(&path, None).map_err(backend("load shard"))?
        } else {
            let config = EdgeConfig {
                vectors: [(
                    DENSE_VECTOR.to_string(),
                    EdgeVectorParams::builder(options.dimension, Distance::Cosine).build(),
                )]
                .into_iter()
                .collect(),
                ..Default::default()
            };
            EdgeShard::new(&path, config).map_err(backend("create shard"))?
        };
        ensure_indexes(&shard)?;
        if !manifest_path.exists() {
            let bytes = serde_json::to_vec_pretty(&wanted).map_err(|e| StoreError::Backend {
                operation: "write store manifest",
                message: e.to_string(),
            })?;
            std::fs::write(&manifest_path, bytes).map_err(io("write store manifest"))?;
        }
        Ok(Self {
            shard: Arc::new(RwLock::new(Some(shard))),
            path: Arc::new(path),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Flushes and releases the shard; later calls fail with
    /// [`StoreError::Closed`]. Blocking.
    pub fn close(&self) {
        // Dropping the shard flushes it.
        drop(self.shard.write().take());
    }

    async fn with_shard<T, F>(&self, f: F) -> Result<T, StoreError>
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
        .map_err(|e| StoreError::Backend {
            operation: "blocking task",
            message: e.to_string(),
        })?
    }
}

/// Creates the payload indexes that are not there yet (a crash between
/// creating the shard and its indexes is repaired on the next open).
fn ensure_indexes(shard: &EdgeShard) -> Result<(), StoreError> {
    let existing = shard.info().payload_schema;
    for (field, schema) in indexes() {
        let key = field.parse().map_err(|()| StoreError::Backend {
            operation: "create index",
            message: format!("bad field name {field}"),
        })?;
        if existing.contains_key(&key) {
            continue;
        }
        let schema: PayloadFieldSchema =
            serde_json::from_value(schema).map_err(|e| StoreError::Backend {
                operation: "create index",
                message: e.to_string(),
            })?;
        let op = qdrant_edge::FieldIndexOperations::CreateIndex(qdrant_edge::CreateIndex {
            field_name: key,
            field_schema: Some(schema),
        });
        shard
            .update(UpdateOperation::FieldIndexOperation(op))
            .map_err(backend("create index"))?;
    }
    Ok(())
}

#[async_trait]
impl VectorStore for EdgeStore {
    async fn upsert(&self, points: Vec<StoredPoint>) -> Result<(), StoreError> {
        if points.is_empty() {
            return Ok(());
        }
        let mut structs = Vec::with_capacity(points.len());
        for point in points {
            let payload = to_payload(&point.record)?;
            let vectors = qdrant_edge::Vectors::new_named([(DENSE_VECTOR, point.vector)]);
            structs.push(
                PointStruct::new(
                    ExtendedPointId::Uuid(point.id),
                    vectors,
                    serde_json::Value::Object(payload),
                )
                .into(),
            );
        }
        self.with_shard(move |shard| {
            shard
                .update(UpdateOperation::PointOperation(
                    PointOperations::UpsertPoints(PointInsertOperations::PointsList(structs)),
                ))
                .map_err(backend("upsert"))
        })
        .await
    }

    async fn search(&self, request: SearchRequest) -> Result<Vec<ScoredRecord>, StoreError> {
        let filter = qdrant_filter(&request.filter)?;
        let hits = self
            .with_shard(move |shard| {
                shard
                    .search(EdgeSearch {
                        query: QueryEnum::Nearest(NamedQuery {
                            query: VectorInternal::Dense(request.vector),
                            using: Some(DENSE_VECTOR.to_string()),
                        }),
                        filter: Some(filter),
                        params: None,
                        limit: request.limit,
                        offset: 0,
                        with_payload: Some(WithPayloadInterface::Bool(true)),
                        with_vector: None,
                        score_threshold: None,
                    })
                    .map_err(backend("search"))
            })
            .await?;
        hits.into_iter()
            .map(|hit| {
                let id = match hit.id {
                    ExtendedPointId::Uuid(uuid) => uuid,
                    ExtendedPointId::NumId(n) => {
                        return Err(StoreError::CorruptPayload {
                            id: n.to_string(),
                            message: "numeric point id".into(),
                        })
                    }
                };
                let payload = hit.payload.map(|p| p.0).unwrap_or_default();
                let record = from_payload(&id.to_string(), payload.into_iter().collect())?;
                Ok(ScoredRecord {
                    id,
                    score: hit.score,
                    record,
                })
            })
            .collect()
    }

    async fn count(&self, filter: StoreFilter) -> Result<usize, StoreError> {
        let filter = qdrant_filter(&filter)?;
        self.with_shard(move |shard| {
            shard
                .count(CountRequest {
                    filter: Some(filter),
                    exact: true,
                })
                .map_err(backend("count"))
        })
        .await
    }

    async fn flush(&self) -> Result<(), StoreError> {
        let shard = Arc::clone(&self.shard);
        tokio::task::spawn_blocking(move || {
            let guard = shard.write();
            let shard = guard.as_ref().ok_or(StoreError::Closed)?;
            shard.flush();
            Ok(())
        })
        .await
        .map_err(|e| StoreError::Backend {
            operation: "flush",
            message: e.to_string(),
        })?
    }
}
