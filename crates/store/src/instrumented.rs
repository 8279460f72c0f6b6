//! [`Instrumented`]: any [`VectorStore`], with every operation's latency
//! and outcome recorded in `context_engine_store_operation_duration_seconds`.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use uuid::Uuid;

use crate::{
    AccessLog, Candidates, ConsentLedger, EventStore, Page, PurgeState, SearchRequest, StoreError, StoredPoint,
    VectorStore,
};
use ce_core::domain::{AccessRecord, ConsentGrant, Scope};
use ce_metrics::metrics;

/// Wraps a backend; behaves exactly like it.
pub struct Instrumented {
    inner: Arc<dyn VectorStore>,
}

impl Instrumented {
    pub fn new(inner: Arc<dyn VectorStore>) -> Self {
        Self { inner }
    }
}

async fn timed<T>(operation: &'static str, call: impl Future<Output = Result<T, StoreError>>) -> Result<T, StoreError> {
    let started = Instant::now();
    let result = call.await;
    let outcome = if result.is_ok() { "ok" } else { "error" };
    metrics().store_duration.with_label_values(&[operation, outcome]).observe(started.elapsed().as_secs_f64());
    result
}

#[async_trait]
impl EventStore for Instrumented {
    async fn upsert(&self, points: Vec<StoredPoint>) -> Result<(), StoreError> {
        timed("upsert", self.inner.upsert(points)).await
    }
    async fn search(&self, request: SearchRequest) -> Result<Candidates, StoreError> {
        timed("search", self.inner.search(request)).await
    }
    async fn count(&self, scope: Scope) -> Result<usize, StoreError> {
        timed("count", self.inner.count(scope)).await
    }
    async fn delete(&self, scope: Scope) -> Result<usize, StoreError> {
        timed("delete", self.inner.delete(scope)).await
    }
    async fn delete_ids(&self, ids: Vec<Uuid>) -> Result<(), StoreError> {
        timed("delete_ids", self.inner.delete_ids(ids)).await
    }
    async fn scroll(&self, scope: Scope, from: Option<Uuid>, limit: usize) -> Result<Page, StoreError> {
        timed("scroll", self.inner.scroll(scope, from, limit)).await
    }
    async fn scroll_with_vectors(&self, scope: Scope, from: Option<Uuid>, limit: usize) -> Result<Page, StoreError> {
        timed("scroll", self.inner.scroll_with_vectors(scope, from, limit)).await
    }
}

#[async_trait]
impl ConsentLedger for Instrumented {
    async fn consents(&self, user_ids: Vec<String>) -> Result<Vec<ConsentGrant>, StoreError> {
        timed("consents", self.inner.consents(user_ids)).await
    }
    async fn put_consent(&self, grant: ConsentGrant) -> Result<(), StoreError> {
        timed("put_consent", self.inner.put_consent(grant)).await
    }
    async fn put_consent_if(&self, grant: ConsentGrant, expected: Option<u64>) -> Result<bool, StoreError> {
        timed("put_consent", self.inner.put_consent_if(grant, expected)).await
    }
    async fn delete_consents(&self, user_id: String) -> Result<usize, StoreError> {
        timed("delete_consents", self.inner.delete_consents(user_id)).await
    }
}

#[async_trait]
impl AccessLog for Instrumented {
    async fn append_access(&self, record: AccessRecord) -> Result<(), StoreError> {
        timed("append_access", self.inner.append_access(record)).await
    }
    async fn access_log(&self, user_id: String, limit: usize) -> Result<Vec<AccessRecord>, StoreError> {
        timed("access_log", self.inner.access_log(user_id, limit)).await
    }
    async fn delete_access(&self, user_id: String) -> Result<usize, StoreError> {
        timed("delete_access", self.inner.delete_access(user_id)).await
    }

    async fn count_access(&self, user_id: String) -> Result<usize, StoreError> {
        timed("count_access", self.inner.count_access(user_id)).await
    }
}

#[async_trait]
impl VectorStore for Instrumented {
    async fn schedule_purge(&self) -> Result<u64, StoreError> {
        timed("schedule_purge", self.inner.schedule_purge()).await
    }

    async fn purge_status(&self, ticket: u64) -> Result<PurgeState, StoreError> {
        self.inner.purge_status(ticket).await
    }

    async fn flush(&self) -> Result<(), StoreError> {
        timed("flush", self.inner.flush()).await
    }
    fn close(&self) {
        self.inner.close();
    }
}
