//! Persistence of embedded events behind the [`VectorStore`] trait.
//!
//! Owns how records, vectors and filters are laid out in Qdrant; knows nothing
//! about embedding, ranking or gRPC. No Qdrant type leaves this module: the
//! engine speaks in [`StoredPoint`], [`StoreFilter`] and [`ScoredRecord`].
//!
//! Every read is scoped by a [`StoreFilter`], and a `StoreFilter` cannot be
//! built without a user id: there is no code path that searches across users.

mod edge;
mod payload;

use async_trait::async_trait;
use uuid::Uuid;

pub use edge::{EdgeOptions, EdgeStore};

use crate::domain::{EventRecord, TimeWindow};

/// Name of the dense vector in every backend.
pub const DENSE_VECTOR: &str = "dense";
/// Version of the payload layout written by this build. Stored with every
/// point so that a later layout change can be detected and migrated.
pub const SCHEMA_VERSION: u32 = 1;

/// One event ready to be written.
#[derive(Debug, Clone)]
pub struct StoredPoint {
    pub id: Uuid,
    pub vector: Vec<f32>,
    pub record: EventRecord,
}

/// A search hit.
#[derive(Debug, Clone)]
pub struct ScoredRecord {
    pub id: Uuid,
    pub score: f32,
    pub record: EventRecord,
}

/// Which points a read may touch. Always one user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreFilter {
    user_id: String,
    pub source_ids: Vec<String>,
    pub event_names: Vec<String>,
    pub time_window: TimeWindow,
}

impl StoreFilter {
    pub fn for_user(user_id: impl Into<String>) -> Self {
        Self {
            user_id: user_id.into(),
            source_ids: Vec::new(),
            event_names: Vec::new(),
            time_window: TimeWindow::default(),
        }
    }

    pub fn user_id(&self) -> &str {
        &self.user_id
    }
}

#[derive(Debug, Clone)]
pub struct SearchRequest {
    pub vector: Vec<f32>,
    pub filter: StoreFilter,
    pub limit: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The data directory holds a store made for another model or layout.
    #[error("store at {path} was created with {found}, but this engine expects {expected}")]
    Incompatible {
        path: String,
        expected: String,
        found: String,
    },
    /// A stored point could not be read back into a record.
    #[error("stored point {id} has an unreadable payload: {message}")]
    CorruptPayload { id: String, message: String },
    /// The backend refused or failed an operation.
    #[error("store operation {operation} failed: {message}")]
    Backend {
        operation: &'static str,
        message: String,
    },
    /// The store was closed (shutdown in progress).
    #[error("store is closed")]
    Closed,
}

/// A vector store for event points. Implementations must make an `upsert`
/// durable (at least against a process crash) before returning `Ok`.
#[async_trait]
pub trait VectorStore: Send + Sync + 'static {
    /// Inserts or replaces points by id.
    async fn upsert(&self, points: Vec<StoredPoint>) -> Result<(), StoreError>;
    /// Nearest neighbours of `request.vector` among the points `request.filter` admits.
    async fn search(&self, request: SearchRequest) -> Result<Vec<ScoredRecord>, StoreError>;
    /// Exact number of points the filter admits.
    async fn count(&self, filter: StoreFilter) -> Result<usize, StoreError>;
    /// Writes everything buffered to disk.
    async fn flush(&self) -> Result<(), StoreError>;
}
