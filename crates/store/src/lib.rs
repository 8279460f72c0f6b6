//! # ce-store: persistence of events, the consent ledger and the access log
//!
//! Three small traits, one per concern ([`EventStore`], [`ConsentLedger`],
//! [`AccessLog`]), and [`VectorStore`], a whole backend that is all three
//! plus its lifecycle (`flush`, `close`). Backends: [`EdgeStore`] (Qdrant
//! Edge in process, with our journals) and [`QdrantStore`] (a Qdrant server
//! or cluster); [`Instrumented`] wraps either with latency metrics.
//!
//! Owns how records, vectors and filters are laid out in Qdrant; knows nothing
//! about embedding, ranking or gRPC. No Qdrant type leaves this crate: the
//! engine speaks in [`StoredPoint`], [`Scope`] and [`ScoredRecord`].
//!
//! Every read and delete of events is bounded by a [`Scope`], and a `Scope`
//! cannot be built without a user id: there is no code path that searches
//! across users.

mod edge;
mod instrumented;
mod journal;
pub mod payload;
mod qdrant;

use async_trait::async_trait;
use uuid::Uuid;

pub use edge::{EdgeOptions, EdgeStore, DEFAULT_BM25_AVG_LEN};
pub use instrumented::Instrumented;
pub use payload::{event_payload, from_payload};
pub use qdrant::{QdrantOptions, QdrantStore};

use ce_core::domain::{AccessRecord, ConsentGrant, EventRecord, RetrievalMode, Scope};

/// Name of the dense vector in every backend.
pub const DENSE_VECTOR: &str = "dense";
/// Name of the sparse BM25 vector in every backend (IDF applied by Qdrant
/// at query time, so document vectors carry term frequencies only).
pub const SPARSE_VECTOR: &str = "bm25";
/// Version of the payload layout written by this build. Stored with every
/// point so that a later layout change can be detected and migrated.
/// 3: sparse BM25 vector and the indexed `family` field.
pub const SCHEMA_VERSION: u32 = 3;

/// One event ready to be written.
#[derive(Debug, Clone)]
pub struct StoredPoint {
    pub id: Uuid,
    pub vector: Vec<f32>,
    pub record: EventRecord,
}

/// A search hit, with its dense vector (ranking compares hits with each
/// other and rescores lexical hits densely).
#[derive(Debug, Clone)]
pub struct ScoredRecord {
    pub id: Uuid,
    pub score: f32,
    pub record: EventRecord,
    pub vector: Vec<f32>,
}

#[derive(Debug, Clone)]
pub struct SearchRequest {
    /// Query embedding (dense list).
    pub vector: Vec<f32>,
    /// Query text (sparse list; the backend turns it into BM25 terms).
    pub text: String,
    pub scope: Scope,
    /// Length of each candidate list.
    pub limit: usize,
    pub mode: RetrievalMode,
    /// Exact (brute-force) dense search instead of the ANN index; for
    /// measuring ANN recall.
    pub exact: bool,
}

/// The candidate lists of one query, each best first. A list the mode does
/// not ask for is empty.
#[derive(Debug, Clone, Default)]
pub struct Candidates {
    pub dense: Vec<ScoredRecord>,
    pub sparse: Vec<ScoredRecord>,
}

/// A page of a scroll through one scope, in point-id order.
#[derive(Debug, Clone, Default)]
pub struct Page {
    pub records: Vec<(Uuid, EventRecord)>,
    /// Where the next page starts; `None` after the last page.
    pub next: Option<Uuid>,
    /// The dense vector of each record (same order), from
    /// [`EventStore::scroll_with_vectors`]; empty from `scroll`.
    pub vectors: Vec<Vec<f32>>,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The data directory holds a store made for another model or layout.
    #[error("store at {path} was created with {found}, but this engine expects {expected}")]
    Incompatible { path: String, expected: String, found: String },
    /// A stored point could not be read back into a record.
    #[error("stored point {id} has an unreadable payload: {message}")]
    CorruptPayload { id: String, message: String },
    /// The backend refused or failed an operation.
    #[error("store operation {operation} failed: {message}")]
    Backend { operation: &'static str, message: String },
    /// The backend could not be reached, or stayed overloaded, through every
    /// retry; the caller may retry later.
    #[error("store operation {operation} failed: backend unavailable: {message}")]
    Unavailable { operation: &'static str, message: String },
    /// The store was closed (shutdown in progress).
    #[error("store is closed")]
    Closed,
    /// A compare-and-set lost to concurrent writers every time it was tried.
    #[error("store operation {operation} kept conflicting with concurrent writes; retry")]
    Conflict { operation: &'static str },
}

/// Event points: the person's activity, embedded. Every read and delete is
/// bounded by a [`Scope`] (one user).
#[async_trait]
pub trait EventStore: Send + Sync + 'static {
    /// Inserts or replaces event points by id.
    async fn upsert(&self, points: Vec<StoredPoint>) -> Result<(), StoreError>;
    /// The candidate lists of `request` among the points of `request.scope`.
    async fn search(&self, request: SearchRequest) -> Result<Candidates, StoreError>;
    /// Exact number of event points in `scope`.
    async fn count(&self, scope: Scope) -> Result<usize, StoreError>;
    /// Deletes the event points of `scope`; returns how many there were.
    async fn delete(&self, scope: Scope) -> Result<usize, StoreError>;
    /// Deletes event points by id (absent ids are ignored).
    async fn delete_ids(&self, ids: Vec<Uuid>) -> Result<(), StoreError>;
    /// One page of the event points of `scope`, starting at `from`.
    async fn scroll(&self, scope: Scope, from: Option<Uuid>, limit: usize) -> Result<Page, StoreError>;
    /// As `scroll`, with every point's dense vector (feed ranking and
    /// proactive context score a person's whole permitted activity).
    async fn scroll_with_vectors(&self, scope: Scope, from: Option<Uuid>, limit: usize) -> Result<Page, StoreError>;
}

/// The consent ledger: one entry per `(user, source, purpose)`.
#[async_trait]
pub trait ConsentLedger: Send + Sync + 'static {
    /// The ledger entries of these users.
    async fn consents(&self, user_ids: Vec<String>) -> Result<Vec<ConsentGrant>, StoreError>;
    /// Writes one ledger entry (replacing the entry with the same key).
    async fn put_consent(&self, grant: ConsentGrant) -> Result<(), StoreError>;
    /// Writes `grant` only if the stored entry of its key has version
    /// `expected` (`None`: only if there is none): a compare-and-set, so
    /// two engine replicas changing one key at once cannot lose an update.
    /// Returns whether it was written.
    async fn put_consent_if(&self, grant: ConsentGrant, expected: Option<u64>) -> Result<bool, StoreError>;
    /// Deletes a user's ledger entries; returns how many there were.
    async fn delete_consents(&self, user_id: String) -> Result<usize, StoreError>;
}

/// The access log: one record per context call.
#[async_trait]
pub trait AccessLog: Send + Sync + 'static {
    async fn append_access(&self, record: AccessRecord) -> Result<(), StoreError>;
    /// A user's access records, most recent first.
    async fn access_log(&self, user_id: String, limit: usize) -> Result<Vec<AccessRecord>, StoreError>;
    /// Deletes a user's access records; returns how many there were.
    async fn delete_access(&self, user_id: String) -> Result<usize, StoreError>;
    /// Exact number of a user's access records.
    async fn count_access(&self, user_id: String) -> Result<usize, StoreError>;
}

/// A whole backend: event points, the consent ledger and the access log in
/// one place, so that engine replicas sharing a backend share all of it,
/// plus its lifecycle. Every write is durable (at least against a process
/// crash) and visible to every later read when it returns `Ok`.
#[async_trait]
pub trait VectorStore: EventStore + ConsentLedger + AccessLog {
    /// Writes everything buffered to disk.
    async fn flush(&self) -> Result<(), StoreError>;

    /// Asks for the physical removal of everything deleted so far (an
    /// erasure, a revocation purge): after the purge the deleted points'
    /// payloads, vectors and ids are in no file the backend keeps. Returns
    /// at once with a ticket; [`VectorStore::purge_status`] tells when it
    /// is done. Purges coalesce: one pass covers every ticket issued before
    /// it started.
    async fn schedule_purge(&self) -> Result<u64, StoreError> {
        Ok(0)
    }

    /// Where the purge of `ticket` stands.
    async fn purge_status(&self, ticket: u64) -> Result<PurgeState, StoreError> {
        let _ = ticket;
        Ok(PurgeState::NotSupported)
    }

    /// Flushes and releases local resources; later calls may fail with
    /// [`StoreError::Closed`]. Blocking. A no-op for remote backends.
    fn close(&self) {}
}

/// Where a physical purge stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PurgeState {
    /// Deleted (unreadable), not yet removed from the files.
    Pending,
    /// Removed from every file; unix seconds when the pass finished.
    Purged { at: i64 },
    /// A Qdrant server's segments holding deleted points were vacuumed at
    /// `at`; the server's WAL keeps copies until Qdrant truncates it
    /// (docs/deployment.md).
    SegmentsVacuumed { at: i64 },
    /// The backend cannot remove deleted data on demand.
    NotSupported,
    /// No such ticket was issued.
    Unknown,
}

/// The three collections every backend keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CollectionKind {
    /// Event points (dense + BM25 vectors, full event in the payload).
    Activity,
    /// The consent ledger.
    Consent,
    /// The access log.
    Access,
}

impl CollectionKind {
    pub const ALL: [CollectionKind; 3] = [Self::Consent, Self::Access, Self::Activity];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Activity => "activity",
            Self::Consent => "consent",
            Self::Access => "access",
        }
    }
}

/// A point as stored, for copying between backends: its id, dense vector
/// (event points only) and payload. Sparse vectors are not copied: they are
/// recomputed from the record's text by the same BM25.
#[derive(Debug, Clone, PartialEq)]
pub struct RawPoint {
    pub id: Uuid,
    pub vector: Option<Vec<f32>>,
    pub payload: serde_json::Map<String, serde_json::Value>,
}

impl RawPoint {
    /// An event point's dense vector and canonical text (from which every
    /// backend computes the BM25 vector on import).
    pub(crate) fn event_parts(&self) -> Result<(Vec<f32>, String), StoreError> {
        let record: EventRecord = from_payload(&self.id.to_string(), self.payload.clone())?;
        let dense = self.vector.clone().ok_or_else(|| StoreError::CorruptPayload {
            id: self.id.to_string(),
            message: "event point without its dense vector".into(),
        })?;
        Ok((dense, record.text))
    }
}

/// Whole-collection access for `migrate`. Deliberately not part of
/// [`VectorStore`]: the engine never reads across users; only the offline
/// migration tool does.
#[async_trait]
pub trait RawStore: Send + Sync {
    /// What the store was made for.
    fn manifest(&self) -> &StoreManifest;
    /// Points in the collection.
    async fn total(&self, kind: CollectionKind) -> Result<usize, StoreError>;
    /// One page in id order, starting at `from`; the id of the next page.
    async fn export_page(
        &self,
        kind: CollectionKind,
        from: Option<Uuid>,
        limit: usize,
    ) -> Result<(Vec<RawPoint>, Option<Uuid>), StoreError>;
    /// Writes points as they are (replacing those with the same ids).
    async fn import(&self, kind: CollectionKind, points: Vec<RawPoint>) -> Result<(), StoreError>;
    /// The points with these ids (absent ones are left out).
    async fn fetch(&self, kind: CollectionKind, ids: Vec<Uuid>) -> Result<Vec<RawPoint>, StoreError>;
}

/// What a store was made for (schema, model, dimension, BM25 `avg_len`):
/// recorded when it is created (Edge: `engine_store.json`; Qdrant server:
/// collection metadata) and checked on every open; a mismatch refuses to
/// open rather than mixing vectors of two models.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StoreManifest {
    pub schema_version: u32,
    pub model_id: String,
    pub dimension: usize,
    pub bm25_avg_len: f64,
}

impl StoreManifest {
    /// Today's schema for this model.
    pub fn current(model_id: impl Into<String>, dimension: usize, bm25_avg_len: f64) -> Self {
        Self { schema_version: SCHEMA_VERSION, model_id: model_id.into(), dimension, bm25_avg_len }
    }

    pub fn describe(&self) -> String {
        format!(
            "schema {} / model {} / {} dimensions / bm25 avg_len {}",
            self.schema_version, self.model_id, self.dimension, self.bm25_avg_len
        )
    }
}
